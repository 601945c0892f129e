//! Validation after an apply: re-read the rotation status of every key the
//! journal says was enabled, and count what was asked, done and confirmed.

use std::collections::HashMap;

use aws_config::SdkConfig;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::journal::{Line, Replay, Verdict};
use crate::aws::{self, ErrorInfo};

#[derive(Debug, Clone, Serialize)]
pub struct Discrepancy {
    pub action_id: String,
    pub key_arn: String,
    pub region: String,
    pub expected: String,
    pub observed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub journal: String,
    pub plan_sha256: Option<String>,
    pub verified_at: String,
    pub requested: usize,
    pub enabled: usize,
    pub confirmed: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Approved actions with no outcome in the journal.
    pub missing: usize,
    pub discrepancies: Vec<Discrepancy>,
    pub skipped_keys: Vec<KeyNote>,
    pub failed_keys: Vec<KeyNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyNote {
    pub key_arn: String,
    pub region: String,
    pub reason: Option<String>,
    pub error_code: Option<String>,
}

/// Re-reads every enabled key; anything but rotation on at the journaled
/// period (where KMS reports a period) is a discrepancy, and so is an
/// approved action without an outcome.
pub async fn verify(config: &SdkConfig, journal_path: &str, replay: &Replay) -> Validation {
    let mut v = Validation {
        journal: journal_path.to_string(),
        plan_sha256: replay.plan_sha256.clone(),
        verified_at: crate::frames::time::rfc3339(chrono::Utc::now()),
        requested: replay.requested.len(),
        enabled: 0,
        confirmed: 0,
        skipped: 0,
        failed: 0,
        missing: 0,
        discrepancies: Vec::new(),
        skipped_keys: Vec::new(),
        failed_keys: Vec::new(),
    };
    let mut enabled = Vec::new();
    for q in &replay.requested {
        let Some((
            verdict,
            Line::Outcome {
                reason, error_code, ..
            },
        )) = replay.outcome(&q.action_id)
        else {
            v.missing += 1;
            v.discrepancies.push(Discrepancy {
                action_id: q.action_id.clone(),
                key_arn: q.key_arn.clone(),
                region: q.region.clone(),
                expected: "an outcome in the journal".into(),
                observed: if replay.in_flight.contains_key(&q.action_id) {
                    "an attempt without outcome (run `kmsrot apply --execute` again to resolve it)"
                        .into()
                } else {
                    "no outcome (the apply did not finish)".into()
                },
            });
            continue;
        };
        let note = KeyNote {
            key_arn: q.key_arn.clone(),
            region: q.region.clone(),
            reason: reason.clone(),
            error_code: error_code.clone(),
        };
        match verdict {
            Verdict::Enabled => {
                v.enabled += 1;
                enabled.push(q.clone());
            }
            Verdict::Skipped => {
                v.skipped += 1;
                v.skipped_keys.push(note);
            }
            Verdict::Failed => {
                v.failed += 1;
                v.failed_keys.push(note);
            }
        }
    }
    let mut clients: HashMap<String, aws_sdk_kms::Client> = HashMap::new();
    for q in &enabled {
        clients
            .entry(q.region.clone())
            .or_insert_with(|| aws::kms(config, &q.region));
    }
    let clients = &clients;
    let observed: Vec<_> = stream::iter(enabled)
        .map(|q| async move {
            let r = clients[&q.region]
                .get_key_rotation_status()
                .key_id(&q.key_arn)
                .send()
                .await
                .map_err(|e| ErrorInfo::from_sdk(&e))
                .map(|o| (o.key_rotation_enabled(), o.rotation_period_in_days()));
            (q, r)
        })
        .buffered(8)
        .collect()
        .await;
    for (q, r) in observed {
        let expected = format!("rotation on every {} days", q.rotation_period_days);
        let bad = |observed: String| Discrepancy {
            action_id: q.action_id.clone(),
            key_arn: q.key_arn.clone(),
            region: q.region.clone(),
            expected: expected.clone(),
            observed,
        };
        match r {
            Err(e) => v
                .discrepancies
                .push(bad(format!("GetKeyRotationStatus failed: {e}"))),
            Ok((false, _)) => v.discrepancies.push(bad("rotation off".into())),
            Ok((true, Some(p))) if i64::from(p) != q.rotation_period_days => v
                .discrepancies
                .push(bad(format!("rotation on every {p} days"))),
            // AWS always reports the period; an emulator may not, and then
            // "on" is all that can be confirmed.
            Ok((true, _)) => v.confirmed += 1,
        }
    }
    v
}
