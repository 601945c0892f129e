//! Validation after an apply: is the approved work done? Every key the
//! journal says was enabled is re-read (its rotation status, and for a
//! cancelled deletion its key state too); an approved action that failed, is
//! still in flight or never ran is work not done.

use std::collections::HashMap;

use aws_config::SdkConfig;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::journal::{Line, Replay, Requested, Verdict};
use super::plan::ActionType;
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
    pub approval_sha256: Option<String>,
    pub plan_sha256: Option<String>,
    pub verified_at: String,
    pub requested: usize,
    pub enabled: usize,
    pub confirmed: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Approved actions with a call whose answer was lost and not yet settled.
    pub in_flight: usize,
    /// Approved actions with no outcome in the journal.
    pub missing: usize,
    pub discrepancies: Vec<Discrepancy>,
    pub skipped_keys: Vec<KeyNote>,
    pub failed_keys: Vec<KeyNote>,
}

impl Validation {
    /// Every approved action ended as approved or was skipped for a stated
    /// reason, and every enabled key is still in its approved end state.
    pub fn work_done(&self) -> bool {
        self.failed == 0
            && self.in_flight == 0
            && self.missing == 0
            && self.discrepancies.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyNote {
    pub key_arn: String,
    pub region: String,
    pub reason: Option<String>,
    pub error_code: Option<String>,
}

/// What an enabled action left behind, to be checked now.
struct Expect {
    q: Requested,
    period: i64,
}

/// Reads the journal's verdicts and re-reads every enabled key.
///
/// `configs` holds how to read each account the journal names (the caller's
/// own configuration, or a role assumed there), or why it cannot be read;
/// an account it lacks is read with `config`.
pub async fn verify(
    config: &SdkConfig,
    configs: &HashMap<String, Result<SdkConfig, ErrorInfo>>,
    journal_path: &str,
    replay: &Replay,
) -> Validation {
    let mut v = Validation {
        journal: journal_path.to_string(),
        approval_sha256: replay.approval_sha256.clone(),
        plan_sha256: replay.plan_sha256.clone(),
        verified_at: crate::frames::time::rfc3339(chrono::Utc::now()),
        requested: replay.requested.len(),
        enabled: 0,
        confirmed: 0,
        skipped: 0,
        failed: 0,
        in_flight: 0,
        missing: 0,
        discrepancies: Vec::new(),
        skipped_keys: Vec::new(),
        failed_keys: Vec::new(),
    };
    let mut enabled = Vec::new();
    for q in &replay.requested {
        let not_done = |expected: &str, observed: String| Discrepancy {
            action_id: q.action_id.clone(),
            key_arn: q.key_arn.clone(),
            region: q.region.clone(),
            expected: expected.to_string(),
            observed,
        };
        let outcome = replay.outcome(&q.action_id);
        let in_flight = replay.in_flight.get(&q.action_id);
        match outcome {
            Some((
                verdict @ (Verdict::Enabled | Verdict::Skipped),
                Line::Outcome {
                    reason,
                    error_code,
                    rotation_period_days,
                    ..
                },
            )) => {
                if verdict == Verdict::Enabled {
                    v.enabled += 1;
                    enabled.push(Expect {
                        q: q.clone(),
                        period: *rotation_period_days,
                    });
                } else {
                    v.skipped += 1;
                    v.skipped_keys.push(KeyNote {
                        key_arn: q.key_arn.clone(),
                        region: q.region.clone(),
                        reason: reason.clone(),
                        error_code: error_code.clone(),
                    });
                }
            }
            _ if in_flight.is_some() => {
                v.in_flight += 1;
                v.discrepancies.push(not_done(
                    "an outcome in the journal",
                    format!(
                        "{} was sent and its effect is not yet known (run `kmsrot apply --execute` again to settle it by re-reading the key)",
                        in_flight.map(String::as_str).unwrap_or("a call")
                    ),
                ));
            }
            Some((
                _,
                Line::Outcome {
                    reason, error_code, ..
                },
            )) => {
                v.failed += 1;
                v.failed_keys.push(KeyNote {
                    key_arn: q.key_arn.clone(),
                    region: q.region.clone(),
                    reason: reason.clone(),
                    error_code: error_code.clone(),
                });
            }
            _ => {
                v.missing += 1;
                v.discrepancies.push(not_done(
                    "an outcome in the journal",
                    "no outcome (the apply did not reach this action)".into(),
                ));
            }
        }
    }
    let mut clients: HashMap<(String, String), Result<aws_sdk_kms::Client, ErrorInfo>> =
        HashMap::new();
    for e in &enabled {
        clients
            .entry((e.q.account_id.clone(), e.q.region.clone()))
            .or_insert_with(|| match configs.get(&e.q.account_id) {
                Some(Ok(c)) => Ok(aws::kms(c, &e.q.region)),
                Some(Err(why)) => Err(why.clone()),
                None => Ok(aws::kms(config, &e.q.region)),
            });
    }
    let clients = &clients;
    let observed: Vec<_> = stream::iter(enabled)
        .map(|e| async move {
            let r = match &clients[&(e.q.account_id.clone(), e.q.region.clone())] {
                Ok(client) => read_end_state(client, &e.q).await,
                Err(why) => Err(why.clone()),
            };
            (e, r)
        })
        .buffered(8)
        .collect()
        .await;
    for (e, r) in observed {
        let cancel = e.q.action == ActionType::CancelDeletionAndEnable;
        let expected = format!(
            "{}rotation on every {} days",
            if cancel { "key Enabled, " } else { "" },
            e.period
        );
        let bad = |observed: String| Discrepancy {
            action_id: e.q.action_id.clone(),
            key_arn: e.q.key_arn.clone(),
            region: e.q.region.clone(),
            expected: expected.clone(),
            observed,
        };
        match r {
            Err(err) => v
                .discrepancies
                .push(bad(format!("could not read the key: {err}"))),
            Ok(s) if cancel && s.key_state.as_deref() != Some("Enabled") => {
                v.discrepancies.push(bad(format!(
                    "key {}",
                    s.key_state.as_deref().unwrap_or("in an unknown state")
                )))
            }
            Ok(s) if !s.rotation_enabled => v.discrepancies.push(bad("rotation off".into())),
            Ok(EndState {
                period: Some(p), ..
            }) if i64::from(p) != e.period => v
                .discrepancies
                .push(bad(format!("rotation on every {p} days"))),
            // AWS always reports the period; an emulator may not, and then
            // "on" is all that can be confirmed.
            Ok(_) => v.confirmed += 1,
        }
    }
    v
}

struct EndState {
    key_state: Option<String>,
    rotation_enabled: bool,
    period: Option<i32>,
}

async fn read_end_state(
    client: &aws_sdk_kms::Client,
    q: &Requested,
) -> Result<EndState, ErrorInfo> {
    let key_state = if q.action == ActionType::CancelDeletionAndEnable {
        client
            .describe_key()
            .key_id(&q.key_arn)
            .send()
            .await
            .map_err(|e| ErrorInfo::from_sdk(&e))?
            .key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str().to_string())
    } else {
        None
    };
    let st = client
        .get_key_rotation_status()
        .key_id(&q.key_arn)
        .send()
        .await
        .map_err(|e| ErrorInfo::from_sdk(&e))?;
    Ok(EndState {
        key_state,
        rotation_enabled: st.key_rotation_enabled(),
        period: st.rotation_period_in_days(),
    })
}
