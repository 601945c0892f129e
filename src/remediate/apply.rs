//! Applying an approval: a fresh re-check of every approved key, then the
//! planned calls, each attempt and outcome journaled.
//!
//! The verdict on a key comes from DescribeKey and GetKeyRotationStatus run
//! through `inventory::eligibility::decide`, never from whether KMS accepted a
//! call: emulators accept EnableKeyRotation on keys AWS rejects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_kms::Client;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::journal::{Journal, Line, Replay, Requested, Verdict};
use super::plan::{Action, ActionType};
use crate::aws::{self, ErrorInfo};
use crate::frames::time::rfc3339;
use crate::inventory::eligibility::{self, KeyFacts};
use crate::inventory::Eligibility;

/// A key as read just now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fresh {
    pub key_state: Option<String>,
    pub eligibility: Eligibility,
    pub reason: String,
    /// What the eligibility would be were the key Enabled: whether its type
    /// allows rotation at all, whatever its state.
    pub type_eligibility: Eligibility,
    pub rotation_enabled: Option<bool>,
    pub rotation_period_days: Option<i64>,
}

impl Fresh {
    pub fn describe(&self) -> String {
        let rotation = match (self.rotation_enabled, self.rotation_period_days) {
            (Some(true), Some(p)) => format!("rotation on every {p} days"),
            (Some(true), None) => "rotation on (period not reported)".into(),
            (Some(false), _) => "rotation off".into(),
            (None, _) => "rotation status not read".into(),
        };
        format!(
            "{} ({}), {rotation}",
            self.key_state.as_deref().unwrap_or("unknown state"),
            self.eligibility
        )
    }
}

/// DescribeKey, then GetKeyRotationStatus where AWS answers it.
pub async fn fresh_check(client: &Client, action: &Action) -> Result<Fresh, ErrorInfo> {
    let out = client
        .describe_key()
        .key_id(&action.key_arn)
        .send()
        .await
        .map_err(|e| ErrorInfo::from_sdk(&e))?;
    let meta = out
        .key_metadata()
        .ok_or_else(|| ErrorInfo::new("EmptyResponse", "DescribeKey gave no KeyMetadata"))?;
    let arn = meta.arn().unwrap_or(&action.key_arn).to_string();
    let key_state = meta.key_state().map(|s| s.as_str().to_string());
    let (mut role, primary) = match meta.multi_region_configuration() {
        Some(mr) => (
            mr.multi_region_key_type().map(|t| t.as_str().to_string()),
            mr.primary_key().and_then(|p| p.arn()).map(str::to_string),
        ),
        None => (None, None),
    };
    // A primary names itself as PrimaryKey (moto 5.2 flips its type field).
    if primary.as_deref() == Some(arn.as_str()) {
        role = Some("PRIMARY".into());
    }
    let deletion_date = meta
        .deletion_date()
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
        .map(rfc3339);
    let facts = KeyFacts {
        arn: &arn,
        key_manager: meta.key_manager().map(|v| v.as_str()),
        key_spec: meta.key_spec().map(|v| v.as_str()),
        key_usage: meta.key_usage().map(|v| v.as_str()),
        origin: meta.origin().map(|v| v.as_str()),
        key_state: key_state.as_deref(),
        custom_key_store_id: meta.custom_key_store_id(),
        multi_region_role: role.as_deref(),
        primary_key_arn: primary.as_deref(),
        deletion_date,
        aliases: &action.aliases,
    };
    let (elig, reason) = eligibility::decide(&facts);
    let (type_elig, _) = eligibility::decide(&KeyFacts {
        key_state: Some("Enabled"),
        ..facts.clone()
    });
    let mut fresh = Fresh {
        key_state,
        eligibility: elig,
        reason,
        type_eligibility: type_elig,
        rotation_enabled: None,
        rotation_period_days: None,
    };
    if elig.reads_rotation_status() {
        let st = client
            .get_key_rotation_status()
            .key_id(&action.key_arn)
            .send()
            .await
            .map_err(|e| ErrorInfo::from_sdk(&e))?;
        fresh.rotation_enabled = Some(st.key_rotation_enabled());
        fresh.rotation_period_days = st.rotation_period_in_days().map(i64::from);
    }
    Ok(fresh)
}

/// What to do with an approved action, given the key as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make these calls, in order.
    Call(Vec<Call>),
    /// Leave the key alone.
    Skip(String),
    /// An interrupted run's call took effect: record it as enabled.
    AlreadyDone(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    CancelKeyDeletion,
    EnableKey,
    EnableKeyRotation,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::CancelKeyDeletion => "CancelKeyDeletion",
            Call::EnableKey => "EnableKey",
            Call::EnableKeyRotation => "EnableKeyRotation",
        }
    }
}

/// Decides from the fresh state. `in_flight`: the journal holds an attempt
/// with no outcome, so a call may already have taken effect.
pub fn decide(action: &Action, fresh: &Fresh, in_flight: bool) -> Decision {
    let want = action.rotation_period_days;
    let on = fresh.rotation_enabled == Some(true);
    let at_planned = on && fresh.rotation_period_days == Some(want);
    let done_or_skip = |what: String| {
        if in_flight {
            Decision::AlreadyDone(format!(
                "{what}, read after an interrupted run: its call took effect"
            ))
        } else {
            Decision::Skip(format!("{what} already"))
        }
    };
    match action.action {
        ActionType::EnableRotation | ActionType::SetRotationPeriod => {
            if fresh.eligibility != Eligibility::Eligible {
                let now = match fresh.eligibility {
                    Eligibility::PendingDeletion => "now pending deletion",
                    Eligibility::Disabled => "now disabled",
                    _ => "no longer eligible",
                };
                return Decision::Skip(format!("{now}: {}", fresh.reason));
            }
            if at_planned {
                return done_or_skip(format!("rotation on every {want} days"));
            }
            // moto never reports RotationPeriodInDays (AWS always does). "On"
            // is enough for enable_rotation; a period change cannot be
            // confirmed from an unknown period, so that call is made.
            if on
                && fresh.rotation_period_days.is_none()
                && action.action == ActionType::EnableRotation
            {
                return done_or_skip("rotation on (KMS reported no period)".into());
            }
            Decision::Call(vec![Call::EnableKeyRotation])
        }
        ActionType::CancelDeletionAndEnable => {
            if !matches!(
                fresh.type_eligibility,
                Eligibility::Eligible | Eligibility::PendingDeletion | Eligibility::Disabled
            ) {
                return Decision::Skip(format!("no longer eligible: {}", fresh.reason));
            }
            match fresh.key_state.as_deref() {
                Some("PendingDeletion") => Decision::Call(vec![
                    Call::CancelKeyDeletion,
                    Call::EnableKey,
                    Call::EnableKeyRotation,
                ]),
                // A cancelled deletion leaves the key Disabled.
                Some("Disabled") => Decision::Call(vec![Call::EnableKey, Call::EnableKeyRotation]),
                Some("Enabled") if at_planned || (on && fresh.rotation_period_days.is_none()) => {
                    done_or_skip("key enabled with rotation on".into())
                }
                Some("Enabled") => Decision::Call(vec![Call::EnableKeyRotation]),
                other => Decision::Skip(format!(
                    "key state {} cannot be changed: {}",
                    other.unwrap_or("unknown"),
                    fresh.reason
                )),
            }
        }
    }
}

/// A token bucket: at most `rate` requests a second, bursts of `rate`.
/// EnableKeyRotation has a low request quota per account and region, so every
/// region gets its own bucket.
pub struct TokenBucket {
    rate: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64) -> Self {
        let rate = rate.max(0.1);
        TokenBucket {
            rate,
            state: tokio::sync::Mutex::new((rate.min(1.0), Instant::now())),
        }
    }

    pub async fn take(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
                s.0 = (s.0 + refill).min(self.rate.max(1.0));
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - s.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Options of one apply run.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub concurrency: usize,
    /// EnableKeyRotation (and the other changing calls) per second per region.
    pub rate_per_region: f64,
}

/// One action's row in the apply or dry-run output.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub action_id: String,
    pub key: String,
    pub region: String,
    pub action: ActionType,
    pub planned: String,
    pub outcome: RowOutcome,
    pub detail: String,
}

/// What happened to one approved action, or in a dry run what would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Enabled,
    Skipped,
    Failed,
    /// Dry run: the calls would be made.
    WouldCall,
    /// Dry run: the action would be skipped.
    WouldSkip,
    /// Dry run: the journal, or the key itself, says it is done already.
    Done,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Enabled => "enabled",
            RowOutcome::Skipped => "skipped",
            RowOutcome::Failed => "failed",
            RowOutcome::WouldCall => "would_call",
            RowOutcome::WouldSkip => "would_skip",
            RowOutcome::Done => "done",
        }
    }
}

impl std::fmt::Display for RowOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Verdict> for RowOutcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Enabled => RowOutcome::Enabled,
            Verdict::Skipped => RowOutcome::Skipped,
            Verdict::Failed => RowOutcome::Failed,
        }
    }
}

/// Dry run: the fresh re-check of every approved action; nothing changes.
pub async fn dry_run(config: &SdkConfig, actions: &[Action], journal: &Replay) -> Vec<Row> {
    let clients = clients(config, actions);
    stream::iter(actions.iter())
        .map(|a| {
            let client = clients[&a.region].clone();
            async move {
                let mut row = row(a);
                if let Some((v, Line::Outcome { reason, .. })) = journal.outcome(&a.action_id) {
                    if v != Verdict::Failed {
                        row.outcome = RowOutcome::Done;
                        row.detail = format!(
                            "the journal records it {}{}",
                            v.as_str(),
                            reason
                                .as_ref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        );
                        return row;
                    }
                }
                let in_flight = journal.in_flight.contains_key(&a.action_id);
                match fresh_check(&client, a).await {
                    Err(e) => {
                        row.outcome = RowOutcome::Failed;
                        row.detail = format!("re-check failed: {e}");
                    }
                    Ok(fresh) => match decide(a, &fresh, in_flight) {
                        Decision::Call(calls) => {
                            row.outcome = RowOutcome::WouldCall;
                            row.detail = format!(
                                "now {}; would call {}",
                                fresh.describe(),
                                calls_text(&calls, a.rotation_period_days)
                            );
                        }
                        Decision::Skip(r) => {
                            row.outcome = RowOutcome::WouldSkip;
                            row.detail = r;
                        }
                        Decision::AlreadyDone(r) => {
                            row.outcome = RowOutcome::Done;
                            row.detail = r;
                        }
                    },
                }
                row
            }
        })
        .buffered(8)
        .collect()
        .await
}

fn calls_text(calls: &[Call], period: i64) -> String {
    calls
        .iter()
        .map(|c| match c {
            Call::EnableKeyRotation => format!("EnableKeyRotation({period} days)"),
            other => other.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", then ")
}

fn row(a: &Action) -> Row {
    Row {
        action_id: a.action_id.clone(),
        key: a.label().to_string(),
        region: a.region.clone(),
        action: a.action,
        planned: a.calls.join(" + "),
        // Every path sets the outcome; until then a row claims nothing done.
        outcome: RowOutcome::Failed,
        detail: String::new(),
    }
}

fn clients(config: &SdkConfig, actions: &[Action]) -> HashMap<String, Client> {
    let mut out = HashMap::new();
    for a in actions {
        out.entry(a.region.clone())
            .or_insert_with(|| aws::kms(config, &a.region));
    }
    out
}

pub fn requested(actions: &[Action]) -> Vec<Requested> {
    actions
        .iter()
        .map(|a| Requested {
            action_id: a.action_id.clone(),
            action: a.action,
            region: a.region.clone(),
            key_arn: a.key_arn.clone(),
            label: a.label().to_string(),
            rotation_period_days: a.rotation_period_days,
        })
        .collect()
}

/// Executes the approved actions not already completed in the journal.
/// Actions whose last outcome is `failed` are tried again: a re-run after a
/// permission fix should not need a new approval.
pub async fn execute(
    config: &SdkConfig,
    actions: &[Action],
    replay: &Replay,
    journal: &Journal,
    opts: ApplyOptions,
) -> Result<Vec<Row>> {
    let clients = clients(config, actions);
    let buckets: HashMap<String, Arc<TokenBucket>> = clients
        .keys()
        .map(|r| (r.clone(), Arc::new(TokenBucket::new(opts.rate_per_region))))
        .collect();
    let mut rows: BTreeMap<usize, Row> = BTreeMap::new();
    let mut todo = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match replay.outcome(&a.action_id) {
            Some((v, Line::Outcome { reason, .. })) if v != Verdict::Failed => {
                let mut r = row(a);
                r.outcome = v.into();
                r.detail = format!(
                    "recorded by an earlier run{}",
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                rows.insert(i, r);
            }
            _ => todo.push((i, a)),
        }
    }
    let results: Vec<(usize, Result<Row>)> = stream::iter(todo)
        .map(|(i, a)| {
            let client = clients[&a.region].clone();
            let bucket = buckets[&a.region].clone();
            let in_flight = replay.in_flight.contains_key(&a.action_id);
            async move { (i, one(&client, &bucket, a, in_flight, journal).await) }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (i, r) in results {
        rows.insert(i, r?);
    }
    Ok(rows.into_values().collect())
}

/// One action: re-check, calls, outcome. Only a journal write failure is an
/// error; every AWS failure is an outcome.
async fn one(
    client: &Client,
    bucket: &TokenBucket,
    a: &Action,
    in_flight: bool,
    journal: &Journal,
) -> Result<Row> {
    let mut row = row(a);
    let fresh = match fresh_check(client, a).await {
        Ok(f) => f,
        Err(e) => {
            let reason = format!("re-check failed: {e}");
            record(
                journal,
                a,
                Verdict::Failed,
                Some(reason.clone()),
                Some(&e),
                false,
            )?;
            row.outcome = RowOutcome::Failed;
            row.detail = reason;
            return Ok(row);
        }
    };
    let calls = match decide(a, &fresh, in_flight) {
        Decision::Skip(reason) => {
            record(
                journal,
                a,
                Verdict::Skipped,
                Some(reason.clone()),
                None,
                false,
            )?;
            row.outcome = RowOutcome::Skipped;
            row.detail = reason;
            return Ok(row);
        }
        Decision::AlreadyDone(reason) => {
            record(
                journal,
                a,
                Verdict::Enabled,
                Some(reason.clone()),
                None,
                true,
            )?;
            row.outcome = RowOutcome::Enabled;
            row.detail = reason;
            return Ok(row);
        }
        Decision::Call(calls) => calls,
    };
    for call in calls {
        bucket.take().await;
        journal.append(&Line::Attempt {
            at: rfc3339(chrono::Utc::now()),
            action_id: a.action_id.clone(),
            key_arn: a.key_arn.clone(),
            call: match call {
                Call::EnableKeyRotation => {
                    format!(
                        "EnableKeyRotation(RotationPeriodInDays={})",
                        a.rotation_period_days
                    )
                }
                other => other.name().to_string(),
            },
        })?;
        let result = match call {
            // CancelKeyDeletion and EnableKey by key id: moto 5.2 answers 500
            // to both given an ARN. AWS takes either, and the client is the
            // key's region.
            Call::CancelKeyDeletion => client
                .cancel_key_deletion()
                .key_id(&a.key_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ErrorInfo::from_sdk(&e)),
            Call::EnableKey => client
                .enable_key()
                .key_id(&a.key_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ErrorInfo::from_sdk(&e)),
            Call::EnableKeyRotation => client
                .enable_key_rotation()
                .key_id(&a.key_arn)
                .rotation_period_in_days(a.rotation_period_days as i32)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ErrorInfo::from_sdk(&e)),
        };
        if let Err(e) = result {
            // The key changed state between the re-check and the call: that
            // is a skip with KMS's reason, not a failure of the tool.
            let (verdict, reason) = match e.code.as_str() {
                "DisabledException" => (
                    Verdict::Skipped,
                    format!("{} refused: the key is disabled ({e})", call.name()),
                ),
                "KMSInvalidStateException" => (
                    Verdict::Skipped,
                    format!(
                        "{} refused: the key's state does not allow it ({e})",
                        call.name()
                    ),
                ),
                _ => (Verdict::Failed, format!("{} failed: {e}", call.name())),
            };
            record(journal, a, verdict, Some(reason.clone()), Some(&e), false)?;
            row.outcome = verdict.into();
            row.detail = reason;
            return Ok(row);
        }
    }
    let detail = format!("rotation enabled every {} days", a.rotation_period_days);
    record(journal, a, Verdict::Enabled, None, None, false)?;
    row.outcome = RowOutcome::Enabled;
    row.detail = detail;
    Ok(row)
}

fn record(
    journal: &Journal,
    a: &Action,
    outcome: Verdict,
    reason: Option<String>,
    error: Option<&ErrorInfo>,
    resolved: bool,
) -> Result<()> {
    journal.append(&Line::Outcome {
        at: rfc3339(chrono::Utc::now()),
        action_id: a.action_id.clone(),
        key_arn: a.key_arn.clone(),
        region: a.region.clone(),
        action: a.action,
        outcome,
        rotation_period_days: a.rotation_period_days,
        reason,
        error_code: error.map(|e| e.code.clone()),
        error_message: error.map(|e| e.message.clone()),
        resolved_after_interruption: resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediate::plan::PlannedState;

    fn action(kind: ActionType) -> Action {
        Action {
            action_id: "act-1".into(),
            action: kind,
            region: "us-east-1".into(),
            account_id: None,
            key_id: "k".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            aliases: vec![],
            description: None,
            planned_state: PlannedState {
                key_state: Some("Enabled".into()),
                key_spec: None,
                origin: None,
                key_manager: None,
                eligibility: Some(Eligibility::Eligible),
                rotation_enabled: Some(false),
                rotation_period_days: None,
            },
            rotation_period_days: 365,
            calls: vec![],
            closes_findings: vec![],
            reason: String::new(),
        }
    }

    fn fresh(state: &str, elig: Eligibility, on: Option<bool>, period: Option<i64>) -> Fresh {
        Fresh {
            key_state: Some(state.into()),
            eligibility: elig,
            reason: "why".into(),
            type_eligibility: Eligibility::Eligible,
            rotation_enabled: on,
            rotation_period_days: period,
        }
    }

    #[test]
    fn decisions_follow_the_fresh_state() {
        let en = action(ActionType::EnableRotation);
        let e = Eligibility::Eligible;
        assert_eq!(
            decide(&en, &fresh("Enabled", e, Some(false), None), false),
            Decision::Call(vec![Call::EnableKeyRotation])
        );
        assert!(matches!(
            decide(&en, &fresh("Enabled", e, Some(true), Some(365)), false),
            Decision::Skip(_)
        ));
        assert!(matches!(
            decide(&en, &fresh("Enabled", e, Some(true), Some(365)), true),
            Decision::AlreadyDone(_)
        ));
        // moto: on, period unknown.
        assert!(matches!(
            decide(&en, &fresh("Enabled", e, Some(true), None), false),
            Decision::Skip(_)
        ));
        let set = action(ActionType::SetRotationPeriod);
        assert_eq!(
            decide(&set, &fresh("Enabled", e, Some(true), None), false),
            Decision::Call(vec![Call::EnableKeyRotation])
        );
        assert_eq!(
            decide(&set, &fresh("Enabled", e, Some(true), Some(730)), false),
            Decision::Call(vec![Call::EnableKeyRotation])
        );
        match decide(
            &en,
            &fresh(
                "PendingDeletion",
                Eligibility::PendingDeletion,
                Some(false),
                None,
            ),
            false,
        ) {
            Decision::Skip(r) => assert!(r.starts_with("now pending deletion"), "{r}"),
            other => panic!("{other:?}"),
        }
        match decide(
            &en,
            &fresh("Disabled", Eligibility::Disabled, Some(false), None),
            false,
        ) {
            Decision::Skip(r) => assert!(r.starts_with("now disabled"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cancel_deletion_resumes_where_it_stopped() {
        let c = action(ActionType::CancelDeletionAndEnable);
        let pd = Eligibility::PendingDeletion;
        assert_eq!(
            decide(&c, &fresh("PendingDeletion", pd, Some(false), None), false),
            Decision::Call(vec![
                Call::CancelKeyDeletion,
                Call::EnableKey,
                Call::EnableKeyRotation
            ])
        );
        assert_eq!(
            decide(
                &c,
                &fresh("Disabled", Eligibility::Disabled, Some(false), None),
                true
            ),
            Decision::Call(vec![Call::EnableKey, Call::EnableKeyRotation])
        );
        let mut rsa = fresh("PendingDeletion", pd, None, None);
        rsa.type_eligibility = Eligibility::UnsupportedSpec;
        assert!(matches!(decide(&c, &rsa, false), Decision::Skip(_)));
    }

    #[tokio::test]
    async fn the_bucket_holds_the_rate() {
        let b = TokenBucket::new(20.0);
        let start = Instant::now();
        for _ in 0..11 {
            b.take().await;
        }
        // One token at start, then 10 more at 20/s: at least ~0.5 s.
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    }
}
