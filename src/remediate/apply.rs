//! Applying an approval: exactly the approved actions, to keys still in the
//! state the person approved, once.
//!
//! For each action and each of its calls: take the region's rate token, read
//! the key fresh (DescribeKey, GetKeyRotationStatus), compare it with the
//! state the plan recorded, and only then make the call, so the re-check and
//! the change are one round trip apart. Any difference is a skip with both
//! states named; a period is never lengthened. The verdict on a key comes
//! from its metadata (`inventory::eligibility::decide`), never from whether
//! KMS accepted a call: emulators accept EnableKeyRotation on keys AWS
//! rejects.
//!
//! Changing calls are sent once (no SDK retry): a call whose answer is lost
//! (a timeout, a dropped connection, a 5xx) may have taken effect, so it is
//! recorded `in_flight` and resolved by re-reading the key, never by sending
//! it again blindly. Only throttling, which KMS answers before acting, is
//! retried, after a fresh re-check.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::approval::{Approval, SignatureStatus};
use super::display_safe;
use super::journal::{self, Journal, Line, Replay, Requested, Verdict};
use super::plan::{describe_planned, describe_state, Action, ActionType, PlannedState};
use crate::aws::{self, CallerIdentity, ErrorInfo};
use crate::context::Ctx;
use crate::frames::time::rfc3339;
use crate::inventory::eligibility::{self, KeyFacts};
use crate::inventory::Eligibility;

/// A key as read just now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fresh {
    pub key_state: Option<String>,
    /// When a scheduled deletion takes effect (RFC 3339).
    pub deletion_date: Option<String>,
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
        describe_state(
            self.key_state.as_deref(),
            self.deletion_date.as_deref(),
            self.rotation_enabled,
            self.rotation_period_days,
        )
    }

    /// Whether the key is as the plan saw it: key state, deletion date,
    /// rotation on or off, and the period when it is on.
    pub fn matches(&self, planned: &PlannedState) -> bool {
        let same_time = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                let secs = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp());
                a == b || (secs(a).is_some() && secs(a) == secs(b))
            }
            _ => false,
        };
        self.key_state == planned.key_state
            && same_time(
                self.deletion_date.as_deref(),
                planned.deletion_date.as_deref(),
            )
            && (planned.rotation_enabled.is_none()
                || self.rotation_enabled == planned.rotation_enabled)
            && (self.rotation_enabled != Some(true)
                || self.rotation_period_days == planned.rotation_period_days)
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
        deletion_date: deletion_date.clone(),
        aliases: &action.aliases,
    };
    let (elig, reason) = eligibility::decide(&facts);
    let (type_elig, _) = eligibility::decide(&KeyFacts {
        key_state: Some("Enabled"),
        deletion_date: None,
        ..facts.clone()
    });
    let mut fresh = Fresh {
        key_state,
        deletion_date,
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

    /// As the journal's attempt line and the plan's `calls` write it.
    pub fn text(self, period: i64) -> String {
        match self {
            Call::EnableKeyRotation => format!("EnableKeyRotation(RotationPeriodInDays={period})"),
            other => other.name().to_string(),
        }
    }

    /// A journal attempt's call.
    pub fn parse(text: &str) -> Option<Call> {
        let name = text.split('(').next().unwrap_or(text);
        [
            Call::CancelKeyDeletion,
            Call::EnableKey,
            Call::EnableKeyRotation,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    /// The calls of an action, in order.
    pub fn sequence(kind: ActionType) -> &'static [Call] {
        match kind {
            ActionType::EnableRotation | ActionType::SetRotationPeriod => {
                &[Call::EnableKeyRotation]
            }
            ActionType::CancelDeletionAndEnable => &[
                Call::CancelKeyDeletion,
                Call::EnableKey,
                Call::EnableKeyRotation,
            ],
        }
    }
}

/// A call of this action that was already sent: `confirmed` when KMS
/// answered it, else its answer was lost (a crash, a timeout, a dropped
/// connection) and it may or may not have taken effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub call: Call,
    pub confirmed: bool,
}

/// What to do next with an approved action, given the key as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make this call next (then re-check before any further call).
    Call(Call),
    /// Leave the key alone.
    Skip(String),
    /// The action's end state is reached through its own calls: record it
    /// enabled, with the period the key now rotates at.
    Done { reason: String, period: i64 },
}

/// Decides from the fresh state, the state the plan recorded, and what this
/// action has already sent.
pub fn decide(action: &Action, fresh: &Fresh, sent: Option<Sent>) -> Decision {
    let want = action.rotation_period_days;
    let planned = &action.planned_state;
    let changed = || {
        Decision::Skip(format!(
            "state changed since the plan (was {}, now {})",
            describe_planned(planned),
            fresh.describe()
        ))
    };
    if fresh.type_eligibility != Eligibility::Eligible {
        return Decision::Skip(format!("no longer eligible: {}", fresh.reason));
    }
    let on = fresh.rotation_enabled == Some(true);
    // moto never reports RotationPeriodInDays (AWS always does): "on" is then
    // all that can be known.
    let at_want = on && fresh.rotation_period_days.is_none_or(|p| p == want);
    let within = on && fresh.rotation_period_days.is_none_or(|p| p <= want);
    let sent_call = sent.map(|s| s.call);
    let landed = if sent.is_some_and(|s| !s.confirmed) {
        "kmsrot's call took effect (read after its answer was lost)"
    } else {
        "done by kmsrot"
    };
    match action.action {
        ActionType::EnableRotation | ActionType::SetRotationPeriod => {
            if sent_call == Some(Call::EnableKeyRotation) {
                if fresh.key_state.as_deref() == Some("Enabled") && at_want {
                    return Decision::Done {
                        reason: format!("rotation on every {want} days: {landed}"),
                        period: want,
                    };
                }
                // Still as planned: the call did not take effect.
                if fresh.matches(planned) {
                    return Decision::Call(Call::EnableKeyRotation);
                }
                return changed();
            }
            if !fresh.matches(planned) {
                return changed();
            }
            if fresh.eligibility != Eligibility::Eligible {
                return Decision::Skip(format!("not eligible: {}", fresh.reason));
            }
            if let Some(cur) = planned.rotation_period_days.filter(|_| on) {
                if cur <= want {
                    return Decision::Skip(format!(
                        "rotation is on every {cur} days; {want} would lengthen it, and kmsrot never lengthens a period"
                    ));
                }
            }
            Decision::Call(Call::EnableKeyRotation)
        }
        ActionType::CancelDeletionAndEnable => match fresh.key_state.as_deref() {
            Some("PendingDeletion") => {
                if matches!(sent_call, None | Some(Call::CancelKeyDeletion)) && fresh.matches(planned)
                {
                    Decision::Call(Call::CancelKeyDeletion)
                } else {
                    changed()
                }
            }
            // A cancelled deletion leaves the key Disabled. Only this
            // action's own CancelKeyDeletion (or its EnableKey) explains that;
            // otherwise someone cancelled the deletion and left the key
            // Disabled on purpose.
            Some("Disabled") if fresh.deletion_date.is_none() => match sent_call {
                Some(Call::CancelKeyDeletion | Call::EnableKey) => Decision::Call(Call::EnableKey),
                _ => Decision::Skip(format!(
                    "state changed since the plan (was {}, now {}): someone else cancelled the deletion and left the key Disabled; kmsrot enables only a key whose deletion it cancelled itself",
                    describe_planned(planned),
                    fresh.describe()
                )),
            },
            Some("Enabled") if matches!(sent_call, Some(Call::EnableKey | Call::EnableKeyRotation)) => {
                if within {
                    let period = fresh.rotation_period_days.unwrap_or(want);
                    let reason = if sent_call == Some(Call::EnableKeyRotation) {
                        format!("key enabled, rotation on every {period} days: {landed}")
                    } else {
                        format!(
                            "key enabled; rotation was already on every {period} days once the deletion was cancelled, and is never lengthened"
                        )
                    };
                    Decision::Done { reason, period }
                } else {
                    Decision::Call(Call::EnableKeyRotation)
                }
            }
            _ => changed(),
        },
    }
}

/// Why this run may not act on the key of `action`, if it may not.
///
/// `executor` is the identity that would act on the key: the caller's own,
/// or the role the approval records for the key's account, assumed there
/// ([`Executors`]). A run acts only with an identity of the key's own
/// account (KMS's changing calls do not work across accounts, and an
/// approval without a role for another account does not allow one).
pub fn account_refusal(action: &Action, executor: &CallerIdentity) -> Option<String> {
    (action.account_id != executor.account).then(|| {
        format!(
            "the key is in account {}, and this run's credentials are account {} ({}); kmsrot acts in another account only through the role an approval records for it (approve with --accounts)",
            action.account_id,
            executor.account,
            display_safe(&executor.arn)
        )
    })
}

/// Who acts in each account of an approval's actions: the executor's own
/// credentials in its own account and wherever the approval records no
/// role; in another account, the role the approval records for it, assumed
/// once for all its actions; or why that role could not be used.
pub struct Executors {
    own: CallerIdentity,
    own_config: SdkConfig,
    assumed: HashMap<String, Result<(SdkConfig, CallerIdentity), ErrorInfo>>,
}

impl Executors {
    /// Assumes, in each account the approval records a role for, that role
    /// (through `ctx`, once per account). The role must be the one this
    /// run's `--role-name` names: an approval is never carried out under
    /// another role than the one approved.
    pub async fn resolve(ctx: &Ctx, approval: &Approval, actions: &[Action]) -> Result<Self> {
        let config = ctx.aws().await?;
        let own = ctx.caller().await?.clone();
        let mut roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for a in actions {
            if let Some(x) = approval.role_for(&a.action_id) {
                if x.account_id != own.account {
                    roles
                        .entry(x.account_id.clone())
                        .or_default()
                        .insert(x.role_arn.clone());
                }
            }
        }
        let opts = &ctx.aws_options().accounts;
        let partition = aws::arn_partition(&own.arn).unwrap_or("aws");
        let mut assumed = HashMap::new();
        for (account, approved) in roles {
            let would = opts.role_arn(partition, &account);
            let got = if approved.len() != 1 || !approved.contains(&would) {
                let names: Vec<&str> = approved
                    .iter()
                    .map(|r| r.rsplit('/').next().unwrap_or(r))
                    .collect();
                Err(ErrorInfo::new(
                    "RoleMismatch",
                    format!(
                        "the approval records role {} for account {account}, and this run would assume {would}; run apply with --role-name {}",
                        approved.iter().map(|r| display_safe(r)).collect::<Vec<_>>().join(", "),
                        display_safe(names.first().copied().unwrap_or(""))
                    ),
                ))
            } else {
                match ctx.account_access(&account).await {
                    Ok(access) => Ok((
                        access.config.clone(),
                        CallerIdentity {
                            account: access.account_id.clone(),
                            arn: access.assumed_arn.clone().unwrap_or_else(|| would.clone()),
                            user_id: String::new(),
                        },
                    )),
                    Err(e) => Err(ErrorInfo::new(
                        e.code.clone(),
                        format!("sts:AssumeRole {would}: {e}"),
                    )),
                }
            };
            assumed.insert(account, got);
        }
        Ok(Executors {
            own,
            own_config: config.clone(),
            assumed,
        })
    }

    /// The configuration and identity that act on `a`'s key.
    fn for_action(&self, a: &Action) -> Result<(&SdkConfig, &CallerIdentity), &ErrorInfo> {
        match self.assumed.get(&a.account_id) {
            Some(Ok((config, who))) => Ok((config, who)),
            Some(Err(e)) => Err(e),
            None => Ok((&self.own_config, &self.own)),
        }
    }

    /// Why `a` may not be acted on: the role could not be assumed, or
    /// [`account_refusal`] for the identity that would act.
    fn refusal(&self, a: &Action) -> Option<ErrorInfo> {
        match self.for_action(a) {
            Err(e) => Some(e.clone()),
            Ok((_, who)) => {
                account_refusal(a, who).map(|why| ErrorInfo::new("AccountMismatch", why))
            }
        }
    }

    /// One KMS client per account and region of `actions`.
    fn clients(&self, actions: &[Action]) -> HashMap<(String, String), Client> {
        let mut out = HashMap::new();
        for a in actions {
            let config = self.for_action(a).map_or(&self.own_config, |(c, _)| c);
            out.entry((a.account_id.clone(), a.region.clone()))
                .or_insert_with(|| aws::kms(config, &a.region));
        }
        out
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

/// How an action's row ended, in a run or a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Enabled,
    Skipped,
    Failed,
    /// A call's answer was lost and re-reading could not settle it.
    InFlight,
    /// Not begun: the run stopped after sustained failures.
    NotStarted,
    /// Dry run: the call(s) that would be made.
    WouldCall,
    /// Dry run: the key would be left alone.
    WouldSkip,
    /// Dry run: the journal (or the key) shows the action done.
    Done,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Enabled => "enabled",
            RowOutcome::Skipped => "skipped",
            RowOutcome::Failed => "failed",
            RowOutcome::InFlight => "in_flight",
            RowOutcome::NotStarted => "not_started",
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

/// One action's row in the apply or dry-run output.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub action_id: String,
    pub account: String,
    pub key: String,
    pub region: String,
    pub action: ActionType,
    pub planned: String,
    pub outcome: RowOutcome,
    /// Terminal-safe: AWS's strings are escaped.
    pub detail: String,
}

fn row(a: &Action) -> Row {
    Row {
        action_id: a.action_id.clone(),
        account: a.account_id.clone(),
        key: display_safe(a.label()),
        region: display_safe(&a.region),
        action: a.action,
        planned: a.calls.join(" + "),
        outcome: RowOutcome::NotStarted,
        detail: String::new(),
    }
}

fn finish(mut r: Row, outcome: RowOutcome, detail: &str) -> Row {
    r.outcome = outcome;
    r.detail = display_safe(detail);
    r
}

pub fn requested(actions: &[Action]) -> Vec<Requested> {
    actions
        .iter()
        .map(|a| Requested {
            action_id: a.action_id.clone(),
            action: a.action,
            account_id: a.account_id.clone(),
            region: a.region.clone(),
            key_arn: a.key_arn.clone(),
            label: a.label().to_string(),
            rotation_period_days: a.rotation_period_days,
        })
        .collect()
}

/// The call the journal holds in flight for an action, if any.
fn sent_from(replay: &Replay, action_id: &str) -> Option<Sent> {
    replay
        .in_flight
        .get(action_id)
        .and_then(|c| Call::parse(c))
        .map(|call| Sent {
            call,
            confirmed: false,
        })
}

/// What `kmsrot apply` was asked for.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub approval: PathBuf,
    pub journal: Option<PathBuf>,
    pub execute: bool,
    pub require_signed: bool,
    /// Signing keys accepted; any named implies `require_signed`.
    pub signers: Vec<String>,
    pub require_different_executor: bool,
    /// Stop starting actions after this many throttling or access failures
    /// in a row.
    pub max_consecutive_failures: usize,
    pub concurrency: usize,
    /// Changing calls per second per region.
    pub rate_per_region: f64,
    pub now: DateTime<Utc>,
    /// Who runs the apply: the run's STS caller, checked before anything.
    pub executor: CallerIdentity,
}

/// What a run (or a dry run) did.
#[derive(Debug)]
pub struct ApplyReport {
    pub rows: Vec<Row>,
    pub journal: PathBuf,
    pub executed: bool,
    pub signature: SignatureStatus,
    pub executor: CallerIdentity,
    pub approver: String,
    pub expires_at: String,
    /// Actions an earlier run left in flight, re-read by this one.
    pub resumed_in_flight: usize,
    /// Why the run stopped starting actions, if it did.
    pub stopped: Option<String>,
}

impl ApplyReport {
    pub fn count(&self, outcome: RowOutcome) -> usize {
        self.rows.iter().filter(|r| r.outcome == outcome).count()
    }

    /// Every approved action ended (enabled, skipped, or done before).
    pub fn complete(&self) -> bool {
        self.stopped.is_none()
            && self.rows.iter().all(|r| {
                !matches!(
                    r.outcome,
                    RowOutcome::Failed | RowOutcome::InFlight | RowOutcome::NotStarted
                )
            })
    }
}

/// Checks the approval (its hash, its plan, its expiry, its signature, the
/// executor), then runs it: a dry run, or with `execute` the calls, each
/// journaled. Refusals are errors; AWS failures on a key are rows.
pub async fn run(ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyReport> {
    let config = ctx.aws().await?;
    let path = req.approval.as_path();
    let (approval, plan) = Approval::read_with_plan(path)?;
    approval.check_current(path, req.now)?;
    let signature = approval
        .check_signature(path, config, req.require_signed, &req.signers)
        .await?;
    let executor = req.executor.clone();
    if req.require_different_executor {
        approval.check_different_executor(path, &executor)?;
    }
    let actions: Vec<Action> = approval
        .approved_actions
        .iter()
        .filter_map(|id| plan.action(id).cloned())
        .collect();
    let executors = Executors::resolve(ctx, &approval, &actions).await?;
    let journal_path = req
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(path, &approval.approval_sha256));
    let mut report = ApplyReport {
        rows: Vec::new(),
        journal: journal_path.clone(),
        executed: req.execute,
        signature,
        executor: executor.clone(),
        approver: approval.approver.clone(),
        expires_at: approval.expires_at.clone(),
        resumed_in_flight: 0,
        stopped: None,
    };
    if !req.execute {
        let replay = journal::replay(&journal_path)?;
        journal::check_belongs(&journal_path, &replay, &approval.approval_sha256)?;
        report.rows = dry_run(&executors, &actions, &replay).await;
        return Ok(report);
    }
    // The approval's lock first, then the journal's: two applies of one
    // approval never run at once, whatever journals they name.
    let _lock = journal::lock_approval(path)?;
    let (journal, replay) = Journal::open(&journal_path, &approval.approval_sha256)?;
    journal.append(&Line::Start {
        at: rfc3339(Utc::now()),
        approval: path.display().to_string(),
        plan_sha256: approval.plan_sha256.clone(),
        approver: approval.approver.clone(),
        executor: Some(executor.clone()),
        requested: requested(&actions),
    })?;
    report.resumed_in_flight = actions
        .iter()
        .filter(|a| replay.in_flight.contains_key(&a.action_id))
        .count();
    let runner = Runner::new(config, &executors, &actions, &journal, req);
    report.rows = runner.execute(&actions, &replay, &executors).await?;
    report.stopped = runner.stopped();
    Ok(report)
}

/// Dry run: the fresh re-check of every approved action; nothing changes.
async fn dry_run(executors: &Executors, actions: &[Action], journal: &Replay) -> Vec<Row> {
    let clients = executors.clients(actions);
    stream::iter(actions.iter())
        .map(|a| {
            let client = clients[&(a.account_id.clone(), a.region.clone())].clone();
            async move {
                let r = row(a);
                if let Some(why) = executors.refusal(a) {
                    return finish(r, RowOutcome::Failed, &format!("refused: {}", why.message));
                }
                if let Some((v, Line::Outcome { reason, .. })) = journal.outcome(&a.action_id) {
                    if matches!(v, Verdict::Enabled | Verdict::Skipped) {
                        let detail = format!(
                            "the journal records it {v}{}",
                            reason
                                .as_ref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        );
                        return finish(r, RowOutcome::Done, &detail);
                    }
                }
                let sent = sent_from(journal, &a.action_id);
                match fresh_check(&client, a).await {
                    Err(e) => finish(r, RowOutcome::Failed, &format!("re-check failed: {e}")),
                    Ok(fresh) => match decide(a, &fresh, sent) {
                        Decision::Call(next) => {
                            let seq = Call::sequence(a.action);
                            let from = seq.iter().position(|c| *c == next).unwrap_or(0);
                            let calls: Vec<String> = seq[from..]
                                .iter()
                                .map(|c| c.text(a.rotation_period_days))
                                .collect();
                            finish(
                                r,
                                RowOutcome::WouldCall,
                                &format!(
                                    "now {}; would call {}",
                                    fresh.describe(),
                                    calls.join(", then ")
                                ),
                            )
                        }
                        Decision::Skip(reason) => finish(r, RowOutcome::WouldSkip, &reason),
                        Decision::Done { reason, .. } => finish(r, RowOutcome::Done, &reason),
                    },
                }
            }
        })
        .buffered(8)
        .collect()
        .await
}

/// How one changing call failed.
enum CallError {
    /// KMS refused before acting (a 4xx other than throttling).
    Refused(ErrorInfo),
    /// Throttled: KMS did not act; worth another try after a re-check.
    Throttled(ErrorInfo),
    /// The answer was lost, or KMS failed mid-way (5xx): it may have acted.
    Ambiguous(ErrorInfo),
}

fn classify<E>(e: &SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let info = ErrorInfo::from_sdk(e);
    match e {
        SdkError::ConstructionFailure(_) => CallError::Refused(info),
        SdkError::ServiceError(ctx) if ctx.raw().status().is_server_error() => {
            CallError::Ambiguous(info)
        }
        SdkError::ServiceError(_) if info.is_throttling() => CallError::Throttled(info),
        SdkError::ServiceError(_) => CallError::Refused(info),
        // Timeouts, dispatch failures after the request may have been
        // written, unreadable answers.
        _ => CallError::Ambiguous(info),
    }
}

/// A client override that sends a changing call exactly once: the SDK would
/// otherwise resend it after a timeout or a dropped connection, when the
/// first may already have taken effect.
fn send_once() -> aws_sdk_kms::config::Builder {
    aws_sdk_kms::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Sends one changing call, by full key ARN (AWS accepts an ARN for all
/// three, and the ARN pins the account and region).
async fn send(client: &Client, a: &Action, call: Call) -> Result<(), CallError> {
    match call {
        Call::CancelKeyDeletion => client
            .cancel_key_deletion()
            .key_id(&a.key_arn)
            .customize()
            .config_override(send_once())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e)),
        Call::EnableKey => client
            .enable_key()
            .key_id(&a.key_arn)
            .customize()
            .config_override(send_once())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e)),
        Call::EnableKeyRotation => client
            .enable_key_rotation()
            .key_id(&a.key_arn)
            .rotation_period_in_days(a.rotation_period_days as i32)
            .customize()
            .config_override(send_once())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e)),
    }
}

/// The outcome of one action, as journaled.
struct Recorded {
    verdict: Verdict,
    reason: String,
    error: Option<ErrorInfo>,
    period: i64,
    resolved: bool,
    unconfirmed: Option<Call>,
}

/// Consecutive throttling or access failures, across the run's tasks.
#[derive(Default)]
struct Streak {
    count: usize,
    codes: BTreeMap<String, usize>,
    stopped: Option<String>,
}

struct Runner<'a> {
    /// By account and region.
    clients: HashMap<(String, String), Client>,
    /// By account and region: KMS's request quotas are per account and region.
    buckets: HashMap<(String, String), Arc<TokenBucket>>,
    journal: &'a Journal,
    concurrency: usize,
    max_failures: usize,
    /// Tries of a throttled changing call (the SDK's max attempts).
    max_attempts: u32,
    stop: AtomicBool,
    streak: Mutex<Streak>,
}

impl<'a> Runner<'a> {
    fn new(
        config: &SdkConfig,
        executors: &Executors,
        actions: &[Action],
        journal: &'a Journal,
        req: &ApplyRequest,
    ) -> Self {
        let clients = executors.clients(actions);
        let buckets = clients
            .keys()
            .map(|r| (r.clone(), Arc::new(TokenBucket::new(req.rate_per_region))))
            .collect();
        Runner {
            clients,
            buckets,
            journal,
            concurrency: req.concurrency.max(1),
            max_failures: req.max_consecutive_failures.max(1),
            max_attempts: config
                .retry_config()
                .map(|r| r.max_attempts())
                .unwrap_or(3)
                .max(1),
            stop: AtomicBool::new(false),
            streak: Mutex::new(Streak::default()),
        }
    }

    fn stopped(&self) -> Option<String> {
        self.streak
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stopped
            .clone()
    }

    /// Counts a throttling or access failure towards the stop; anything else
    /// that ends an action breaks the streak.
    fn note(&self, rec: &Recorded) {
        let mut s = self.streak.lock().unwrap_or_else(|p| p.into_inner());
        let sustained = rec.verdict == Verdict::Failed
            && rec
                .error
                .as_ref()
                .is_some_and(|e| e.is_throttling() || e.is_access_denied());
        if sustained {
            s.count += 1;
            let code = rec
                .error
                .as_ref()
                .map(|e| e.code.clone())
                .unwrap_or_default();
            *s.codes.entry(code).or_default() += 1;
            if s.count >= self.max_failures && s.stopped.is_none() {
                let codes: Vec<String> = s.codes.iter().map(|(c, n)| format!("{c} x{n}")).collect();
                s.stopped = Some(format!(
                    "{} consecutive throttling or access failures ({})",
                    s.count,
                    codes.join(", ")
                ));
                self.stop.store(true, Ordering::SeqCst);
            }
        } else if rec.verdict != Verdict::InFlight {
            s.count = 0;
            s.codes.clear();
        }
    }

    /// Executes the approved actions not already completed in the journal.
    /// Actions whose last outcome is `failed` are tried again: a re-run after
    /// a permission fix should not need a new approval. Calls left in flight
    /// (by an earlier run, or by this one) are resolved by re-reading.
    async fn execute(
        &self,
        actions: &[Action],
        replay: &Replay,
        executors: &Executors,
    ) -> Result<Vec<Row>> {
        let mut rows: BTreeMap<usize, Row> = BTreeMap::new();
        let mut todo = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            match replay.outcome(&a.action_id) {
                Some((v @ (Verdict::Enabled | Verdict::Skipped), Line::Outcome { reason, .. })) => {
                    let outcome = if v == Verdict::Enabled {
                        RowOutcome::Enabled
                    } else {
                        RowOutcome::Skipped
                    };
                    let detail = format!(
                        "recorded by an earlier run{}",
                        reason
                            .as_ref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    );
                    rows.insert(i, finish(row(a), outcome, &detail));
                }
                _ => todo.push((i, a)),
            }
        }
        let results: Vec<(usize, Result<Row>)> = stream::iter(todo)
            .map(|(i, a)| {
                let sent = sent_from(replay, &a.action_id);
                async move {
                    if self.stop.load(Ordering::SeqCst) {
                        return (
                            i,
                            Ok(finish(
                                row(a),
                                RowOutcome::NotStarted,
                                "not started: the run stopped after sustained failures",
                            )),
                        );
                    }
                    if let Some(why) = executors.refusal(a) {
                        let rec = Recorded {
                            verdict: Verdict::Failed,
                            reason: format!("refused: {}", why.message),
                            error: Some(why),
                            period: a.rotation_period_days,
                            resolved: false,
                            unconfirmed: None,
                        };
                        return (i, self.record_refusal(a, rec));
                    }
                    (i, self.one(a, sent, false).await)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut unresolved = Vec::new();
        for (i, r) in results {
            let r = r?;
            if r.outcome == RowOutcome::InFlight {
                unresolved.push(i);
            }
            rows.insert(i, r);
        }
        if !unresolved.is_empty() {
            // KMS is eventually consistent: give a call that did land a
            // moment to show before reading the key.
            tokio::time::sleep(Duration::from_secs(1)).await;
            for i in unresolved {
                let a = &actions[i];
                let sent = self.last_unconfirmed(a);
                let r = self.one(a, sent, true).await?;
                rows.insert(i, r);
            }
        }
        Ok(rows.into_values().collect())
    }

    /// The call this run left in flight for `a`, read back from the journal.
    fn last_unconfirmed(&self, a: &Action) -> Option<Sent> {
        journal::replay(self.journal.path())
            .ok()
            .and_then(|r| sent_from(&r, &a.action_id))
    }

    /// One action: for each call, token, re-check, decision, call, until the
    /// action ends. Only a journal write failure is an error; every AWS
    /// failure is an outcome. `resolving`: settle a call this run left in
    /// flight by re-reading, without sending it again.
    async fn one(&self, a: &Action, mut sent: Option<Sent>, resolving: bool) -> Result<Row> {
        let at = (a.account_id.clone(), a.region.clone());
        let client = &self.clients[&at];
        let bucket = &self.buckets[&at];
        let unconfirmed = |s: Option<Sent>| s.filter(|s| !s.confirmed).map(|s| s.call);
        let mut throttled: u32 = 0;
        let mut settling: u64 = 0;
        loop {
            // The token first: the re-check and the change it allows are
            // then one round trip apart, not a queue's wait.
            bucket.take().await;
            let fresh = match fresh_check(client, a).await {
                Ok(f) => f,
                Err(e) => {
                    let rec = Recorded {
                        verdict: Verdict::Failed,
                        reason: format!("re-check failed: {e}"),
                        error: Some(e),
                        period: a.rotation_period_days,
                        resolved: false,
                        unconfirmed: unconfirmed(sent),
                    };
                    return self.record(a, rec);
                }
            };
            let resolved = sent.is_some_and(|s| !s.confirmed);
            let call = match decide(a, &fresh, sent) {
                Decision::Skip(reason) => {
                    let rec = Recorded {
                        verdict: Verdict::Skipped,
                        reason,
                        error: None,
                        period: a.rotation_period_days,
                        resolved,
                        unconfirmed: None,
                    };
                    return self.record(a, rec);
                }
                Decision::Done { reason, period } => {
                    let rec = Recorded {
                        verdict: Verdict::Enabled,
                        reason,
                        error: None,
                        period,
                        resolved,
                        unconfirmed: None,
                    };
                    return self.record(a, rec);
                }
                Decision::Call(c) => c,
            };
            // KMS accepted this very call a moment ago and the key does not
            // show it yet: KMS is eventually consistent, so wait and read
            // again rather than send it twice.
            if sent.is_some_and(|s| s.confirmed && s.call == call) {
                settling += 1;
                if settling > 5 {
                    let rec = Recorded {
                        verdict: Verdict::Failed,
                        reason: format!(
                            "KMS accepted {} but the key still shows {} after several reads",
                            call.name(),
                            fresh.describe()
                        ),
                        error: None,
                        period: a.rotation_period_days,
                        resolved: false,
                        // Accepted, so it is this action's: the next run
                        // continues from it.
                        unconfirmed: Some(call),
                    };
                    return self.record(a, rec);
                }
                tokio::time::sleep(Duration::from_millis(300 * settling)).await;
                continue;
            }
            if resolving && unconfirmed(sent) == Some(call) {
                let rec = Recorded {
                    verdict: Verdict::Failed,
                    reason: format!(
                        "{} was sent but its answer was lost, and the key shows it has not taken effect ({}); the next run re-reads the key and calls again only if it still has not",
                        call.name(),
                        fresh.describe()
                    ),
                    error: None,
                    period: a.rotation_period_days,
                    resolved: true,
                    unconfirmed: Some(call),
                };
                return self.record(a, rec);
            }
            self.journal.append(&Line::Attempt {
                at: rfc3339(Utc::now()),
                action_id: a.action_id.clone(),
                key_arn: a.key_arn.clone(),
                call: call.text(a.rotation_period_days),
            })?;
            match send(client, a, call).await {
                Ok(()) => {
                    sent = Some(Sent {
                        call,
                        confirmed: true,
                    });
                    throttled = 0;
                    if call == Call::EnableKeyRotation {
                        let rec = Recorded {
                            verdict: Verdict::Enabled,
                            reason: format!(
                                "rotation enabled every {} days",
                                a.rotation_period_days
                            ),
                            error: None,
                            period: a.rotation_period_days,
                            resolved: false,
                            unconfirmed: None,
                        };
                        return self.record(a, rec);
                    }
                    // Re-check before the action's next call.
                }
                Err(CallError::Throttled(_)) if throttled + 1 < self.max_attempts => {
                    throttled += 1;
                    let backoff = Duration::from_millis(200u64 << throttled.min(5));
                    tokio::time::sleep(backoff).await;
                }
                Err(CallError::Throttled(e)) => {
                    let rec = Recorded {
                        verdict: Verdict::Failed,
                        reason: format!("{} throttled {} times: {e}", call.name(), throttled + 1),
                        error: Some(e),
                        period: a.rotation_period_days,
                        resolved: false,
                        unconfirmed: unconfirmed(sent),
                    };
                    return self.record(a, rec);
                }
                Err(CallError::Refused(e)) => {
                    // The key changed state between the re-check and the
                    // call: a skip with KMS's reason, not a failure.
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
                    let rec = Recorded {
                        verdict,
                        reason,
                        error: Some(e),
                        period: a.rotation_period_days,
                        resolved: false,
                        unconfirmed: None,
                    };
                    return self.record(a, rec);
                }
                Err(CallError::Ambiguous(e)) => {
                    let rec = Recorded {
                        verdict: Verdict::InFlight,
                        reason: format!(
                            "{} was sent and its answer lost ({e}); it may have taken effect, so the key is re-read rather than the call repeated",
                            call.name()
                        ),
                        error: Some(e),
                        period: a.rotation_period_days,
                        resolved: false,
                        unconfirmed: Some(call),
                    };
                    return self.record(a, rec);
                }
            }
        }
    }

    fn record(&self, a: &Action, rec: Recorded) -> Result<Row> {
        let row = self.write(a, &rec)?;
        self.note(&rec);
        Ok(row)
    }

    /// Journals a refusal (no call made) without counting it towards the
    /// stop: a role refused in one account says nothing about the others,
    /// and must not stop their actions.
    fn record_refusal(&self, a: &Action, rec: Recorded) -> Result<Row> {
        self.write(a, &rec)
    }

    fn write(&self, a: &Action, rec: &Recorded) -> Result<Row> {
        self.journal.append(&Line::Outcome {
            at: rfc3339(Utc::now()),
            action_id: a.action_id.clone(),
            key_arn: a.key_arn.clone(),
            region: a.region.clone(),
            action: a.action,
            outcome: rec.verdict,
            rotation_period_days: rec.period,
            reason: Some(rec.reason.clone()),
            error_code: rec.error.as_ref().map(|e| e.code.clone()),
            error_message: rec.error.as_ref().map(|e| e.message.clone()),
            resolved_after_interruption: rec.resolved,
            unconfirmed_call: rec.unconfirmed.map(|c| c.text(a.rotation_period_days)),
        })?;
        let outcome = match rec.verdict {
            Verdict::Enabled => RowOutcome::Enabled,
            Verdict::Skipped => RowOutcome::Skipped,
            Verdict::Failed => RowOutcome::Failed,
            Verdict::InFlight => RowOutcome::InFlight,
        };
        Ok(finish(row(a), outcome, &rec.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: ActionType) -> Action {
        let (state, on, period, deletion) = match kind {
            ActionType::EnableRotation => ("Enabled", false, None, None),
            ActionType::SetRotationPeriod => ("Enabled", true, Some(730), None),
            ActionType::CancelDeletionAndEnable => (
                "PendingDeletion",
                false,
                None,
                Some("2026-06-01T00:00:00Z".to_string()),
            ),
        };
        Action {
            action_id: "act-1".into(),
            action: kind,
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            key_id: "k".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            aliases: vec![],
            description: None,
            planned_state: PlannedState {
                key_state: Some(state.into()),
                key_spec: None,
                origin: None,
                key_manager: None,
                eligibility: Some(Eligibility::Eligible),
                rotation_enabled: Some(on),
                rotation_period_days: period,
                deletion_date: deletion,
            },
            rotation_period_days: 365,
            calls: vec![],
            closes_findings: vec![],
            reason: String::new(),
            projected_cost: crate::remediate::cost::CostProjection::nothing(),
        }
    }

    fn fresh(state: &str, on: Option<bool>, period: Option<i64>) -> Fresh {
        let elig = match state {
            "Enabled" => Eligibility::Eligible,
            "Disabled" => Eligibility::Disabled,
            "PendingDeletion" => Eligibility::PendingDeletion,
            _ => Eligibility::Unavailable,
        };
        Fresh {
            key_state: Some(state.into()),
            deletion_date: (state == "PendingDeletion").then(|| "2026-06-01T00:00:00Z".into()),
            eligibility: elig,
            reason: "why".into(),
            type_eligibility: Eligibility::Eligible,
            rotation_enabled: on,
            rotation_period_days: period,
        }
    }

    fn skip_reason(d: Decision) -> String {
        match d {
            Decision::Skip(r) => r,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    const LOST: Option<Sent> = Some(Sent {
        call: Call::EnableKeyRotation,
        confirmed: false,
    });

    #[test]
    fn enable_rotation_acts_only_on_the_planned_state() {
        let en = action(ActionType::EnableRotation);
        assert_eq!(
            decide(&en, &fresh("Enabled", Some(false), None), None),
            Decision::Call(Call::EnableKeyRotation)
        );
        // Someone turned rotation on (90 days) after the plan: left alone,
        // never lengthened to 365.
        let r = skip_reason(decide(&en, &fresh("Enabled", Some(true), Some(90)), None));
        assert_eq!(
            r,
            "state changed since the plan (was Enabled, rotation off, now Enabled, rotation on every 90 days)"
        );
        // Even at the planned period: it was not kmsrot that turned it on.
        assert!(matches!(
            decide(&en, &fresh("Enabled", Some(true), Some(365)), None),
            Decision::Skip(_)
        ));
        let r = skip_reason(decide(&en, &fresh("Disabled", Some(false), None), None));
        assert!(
            r.starts_with("state changed since the plan (was Enabled, rotation off, now Disabled"),
            "{r}"
        );
        let r = skip_reason(decide(
            &en,
            &fresh("PendingDeletion", Some(false), None),
            None,
        ));
        assert!(
            r.contains("now PendingDeletion (deletion on 2026-06-01T00:00:00Z)"),
            "{r}"
        );
        let mut rsa = fresh("Enabled", Some(false), None);
        rsa.type_eligibility = Eligibility::UnsupportedSpec;
        assert_eq!(
            skip_reason(decide(&en, &rsa, None)),
            "no longer eligible: why"
        );
    }

    #[test]
    fn a_lost_answer_is_settled_by_the_key() {
        let en = action(ActionType::EnableRotation);
        assert_eq!(
            decide(&en, &fresh("Enabled", Some(true), Some(365)), LOST),
            Decision::Done {
                reason: "rotation on every 365 days: kmsrot's call took effect (read after its answer was lost)".into(),
                period: 365
            }
        );
        // moto: on, period not reported.
        assert!(matches!(
            decide(&en, &fresh("Enabled", Some(true), None), LOST),
            Decision::Done { .. }
        ));
        // Did not land: the key is still as planned.
        assert_eq!(
            decide(&en, &fresh("Enabled", Some(false), None), LOST),
            Decision::Call(Call::EnableKeyRotation)
        );
        // On at another period: someone else's doing.
        assert!(matches!(
            decide(&en, &fresh("Enabled", Some(true), Some(90)), LOST),
            Decision::Skip(_)
        ));
    }

    #[test]
    fn set_rotation_period_never_lengthens() {
        let mut set = action(ActionType::SetRotationPeriod);
        assert_eq!(
            decide(&set, &fresh("Enabled", Some(true), Some(730)), None),
            Decision::Call(Call::EnableKeyRotation)
        );
        let r = skip_reason(decide(&set, &fresh("Enabled", Some(true), Some(180)), None));
        assert!(r.starts_with("state changed since the plan (was Enabled, rotation on every 730 days, now Enabled, rotation on every 180 days)"), "{r}");
        assert!(matches!(
            decide(&set, &fresh("Enabled", Some(false), None), None),
            Decision::Skip(_)
        ));
        // A plan (however it was made) that would lengthen is refused here too.
        set.planned_state.rotation_period_days = Some(180);
        let r = skip_reason(decide(&set, &fresh("Enabled", Some(true), Some(180)), None));
        assert!(r.contains("kmsrot never lengthens a period"), "{r}");
        // moto reports no period: planned and fresh agree, the call is made.
        set.planned_state.rotation_period_days = None;
        assert_eq!(
            decide(&set, &fresh("Enabled", Some(true), None), None),
            Decision::Call(Call::EnableKeyRotation)
        );
    }

    #[test]
    fn cancel_deletion_resumes_only_its_own_work() {
        let c = action(ActionType::CancelDeletionAndEnable);
        assert_eq!(
            decide(&c, &fresh("PendingDeletion", Some(false), None), None),
            Decision::Call(Call::CancelKeyDeletion)
        );
        // Rescheduled to another date: not the deletion the person saw.
        let mut moved = fresh("PendingDeletion", Some(false), None);
        moved.deletion_date = Some("2026-07-01T00:00:00Z".into());
        assert!(matches!(decide(&c, &moved, None), Decision::Skip(_)));
        // Disabled, no deletion pending, and not by this action: on purpose.
        let r = skip_reason(decide(&c, &fresh("Disabled", Some(false), None), None));
        assert!(
            r.contains("kmsrot enables only a key whose deletion it cancelled itself"),
            "{r}"
        );
        // Disabled because this action's CancelKeyDeletion landed.
        for confirmed in [true, false] {
            let sent = Some(Sent {
                call: Call::CancelKeyDeletion,
                confirmed,
            });
            assert_eq!(
                decide(&c, &fresh("Disabled", Some(false), None), sent),
                Decision::Call(Call::EnableKey)
            );
        }
        let enabled_key = Some(Sent {
            call: Call::EnableKey,
            confirmed: true,
        });
        assert_eq!(
            decide(&c, &fresh("Enabled", Some(false), None), enabled_key),
            Decision::Call(Call::EnableKeyRotation)
        );
        // The setting kept through the deletion rotates more often: kept.
        assert_eq!(
            decide(&c, &fresh("Enabled", Some(true), Some(90)), enabled_key),
            Decision::Done {
                reason: "key enabled; rotation was already on every 90 days once the deletion was cancelled, and is never lengthened".into(),
                period: 90
            }
        );
        assert_eq!(
            decide(&c, &fresh("Enabled", Some(true), Some(730)), enabled_key),
            Decision::Call(Call::EnableKeyRotation)
        );
        // Enabled by someone else.
        assert!(matches!(
            decide(&c, &fresh("Enabled", Some(false), None), None),
            Decision::Skip(_)
        ));
        let mut rsa = fresh("PendingDeletion", None, None);
        rsa.type_eligibility = Eligibility::UnsupportedSpec;
        assert!(matches!(decide(&c, &rsa, None), Decision::Skip(_)));
    }

    #[test]
    fn other_accounts_are_refused_in_one_place() {
        let a = action(ActionType::EnableRotation);
        let me = |account: &str| CallerIdentity {
            account: account.into(),
            arn: format!("arn:aws:iam::{account}:user/ops"),
            user_id: "AIDA".into(),
        };
        assert_eq!(account_refusal(&a, &me("111122223333")), None);
        let why = account_refusal(&a, &me("444455556666")).unwrap();
        assert!(why.starts_with("the key is in account 111122223333, and this run's credentials are account 444455556666"), "{why}");
    }

    #[test]
    fn a_timeout_may_have_landed_and_an_unsent_call_did_not() {
        type E = SdkError<
            aws_sdk_kms::operation::enable_key_rotation::EnableKeyRotationError,
            HttpResponse,
        >;
        let timeout: E = SdkError::timeout_error("attempt timed out");
        assert!(matches!(classify(&timeout), CallError::Ambiguous(e) if e.code == "TimeoutError"));
        let unsent: E = SdkError::construction_failure("bad input");
        assert!(matches!(classify(&unsent), CallError::Refused(_)));
    }

    #[test]
    fn journal_calls_parse_back() {
        for c in [
            Call::CancelKeyDeletion,
            Call::EnableKey,
            Call::EnableKeyRotation,
        ] {
            assert_eq!(Call::parse(&c.text(180)), Some(c));
        }
        assert_eq!(Call::parse("DeleteEverything"), None);
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
