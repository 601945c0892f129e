//! Building a plan from a bundle: one action per key that needs one, and the
//! rest listed apart with the reason they are not actions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::cost::{self, CostProjection, PlanCost, Usd};
use super::{action_id, plan_hash, read_json_doc, short_error, PERIOD_RANGE};
use crate::frames::time::rfc3339;
use crate::frames::{EVENTS, FINDINGS, KEYS, ROTATIONS};
use crate::inventory::{Eligibility, KeyRecord};
use crate::output::{frame_paths, frame_records, read_frame};
use crate::policy::{Policy, Severity};
use crate::rules::engine::{key_matches, Finding};

/// `/3`: every action carries its projected added cost and the plan its
/// price and total (`/2` added the deletion date to the planned state, the
/// account to actions, and the rule to the findings an action closes).
pub const PLAN_FORMAT: &str = "kmsrot-plan/3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// EnableKeyRotation on an eligible key that has rotation off.
    EnableRotation,
    /// EnableKeyRotation with a new RotationPeriodInDays on a key that rotates
    /// less often than the policy allows.
    SetRotationPeriod,
    /// CancelKeyDeletion, EnableKey, EnableKeyRotation: only ever planned with
    /// `--include-pending-deletion`, because it brings a key back to use.
    CancelDeletionAndEnable,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::EnableRotation => "enable_rotation",
            ActionType::SetRotationPeriod => "set_rotation_period",
            ActionType::CancelDeletionAndEnable => "cancel_deletion_and_enable",
        }
    }

    /// The findings an action of this type closes when it succeeds.
    fn closes_rules(self) -> &'static [&'static str] {
        match self {
            ActionType::EnableRotation => &["rotation_disabled", "missed_cycle"],
            ActionType::SetRotationPeriod => &["period_exceeds_policy"],
            ActionType::CancelDeletionAndEnable => {
                &["pending_deletion", "rotation_disabled", "missed_cycle"]
            }
        }
    }

    /// The rule an exemption must cover to keep this action out of the plan.
    fn exemption_rule(self) -> &'static str {
        match self {
            ActionType::SetRotationPeriod => "period_exceeds_policy",
            ActionType::EnableRotation => "rotation_disabled",
            ActionType::CancelDeletionAndEnable => "pending_deletion",
        }
    }
}

impl std::fmt::Display for ActionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key as the plan saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedState {
    pub key_state: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub key_manager: Option<String>,
    pub eligibility: Option<Eligibility>,
    pub rotation_enabled: Option<bool>,
    pub rotation_period_days: Option<i64>,
    /// When a scheduled deletion takes effect (RFC 3339), if one is scheduled.
    pub deletion_date: Option<String>,
}

/// An open finding an action closes when it succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedFinding {
    pub finding_id: String,
    pub rule_id: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub action_id: String,
    pub action: ActionType,
    pub region: String,
    /// The key's account: `apply` acts only with credentials of this account.
    pub account_id: String,
    pub key_id: String,
    pub key_arn: String,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    pub planned_state: PlannedState,
    /// The period EnableKeyRotation will be called with.
    pub rotation_period_days: i64,
    /// The KMS calls `apply --execute` makes, in order.
    pub calls: Vec<String>,
    pub closes_findings: Vec<ClosedFinding>,
    pub reason: String,
    /// What the action adds to the KMS bill over the plan's twelve months.
    pub projected_cost: CostProjection,
}

impl Action {
    /// The alias, else the key id: what a person recognizes.
    pub fn label(&self) -> &str {
        self.aliases.first().map_or(&self.key_id, |a| a.as_str())
    }

    /// The fields of an action that restate one another must agree: a plan
    /// edited and re-hashed by hand cannot then point an approved action id
    /// at another key, region, account, period or kind of change.
    pub fn check_consistent(&self) -> Result<(), String> {
        let expected_id = action_id(self.action, &self.key_arn);
        if self.action_id != expected_id {
            return Err(format!(
                "its action_id is not the hash of {} on {} (that is {expected_id})",
                self.action, self.key_arn
            ));
        }
        let Some(arn) = KeyArn::parse(&self.key_arn) else {
            return Err(format!(
                "key_arn {:?} is not a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)",
                self.key_arn
            ));
        };
        if arn.key_id != self.key_id {
            return Err(format!(
                "key_id {} is not the key of {}",
                self.key_id, self.key_arn
            ));
        }
        if arn.region != self.region {
            return Err(format!(
                "region {} is not the region of {}",
                self.region, self.key_arn
            ));
        }
        if arn.account != self.account_id {
            return Err(format!(
                "account_id {} is not the account of {}",
                self.account_id, self.key_arn
            ));
        }
        if !PERIOD_RANGE.contains(&self.rotation_period_days) {
            return Err(format!(
                "rotation_period_days {} is outside AWS's range 90..=2560",
                self.rotation_period_days
            ));
        }
        let expected_calls = calls(self.action, self.rotation_period_days);
        if self.calls != expected_calls {
            return Err(format!(
                "calls {:?} are not what {} every {} days makes ({:?})",
                self.calls, self.action, self.rotation_period_days, expected_calls
            ));
        }
        let s = &self.planned_state;
        let fits = match self.action {
            ActionType::EnableRotation => {
                s.key_state.as_deref() == Some("Enabled") && s.rotation_enabled == Some(false)
            }
            ActionType::SetRotationPeriod => {
                s.key_state.as_deref() == Some("Enabled")
                    && s.rotation_enabled == Some(true)
                    && s.rotation_period_days
                        .is_none_or(|cur| cur > self.rotation_period_days)
            }
            ActionType::CancelDeletionAndEnable => {
                s.key_state.as_deref() == Some("PendingDeletion") && s.deletion_date.is_some()
            }
        };
        if !fits {
            return Err(format!(
                "its planned state ({}) is not one {} applies to",
                describe_planned(s),
                self.action
            ));
        }
        Ok(())
    }
}

/// The parts of `arn:PARTITION:kms:REGION:ACCOUNT:key/ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub key_id: &'a str,
}

impl<'a> KeyArn<'a> {
    pub fn parse(arn: &'a str) -> Option<KeyArn<'a>> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("kms"), Some(region), Some(account), Some(res)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let key_id = res.strip_prefix("key/")?;
        let ok = !partition.is_empty()
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !key_id.is_empty()
            && !key_id.contains('/');
        ok.then_some(KeyArn {
            region,
            account,
            key_id,
        })
    }
}

/// A planned state in words, as the approver and the skip reasons show it.
pub fn describe_planned(s: &PlannedState) -> String {
    describe_state(
        s.key_state.as_deref(),
        s.deletion_date.as_deref(),
        s.rotation_enabled,
        s.rotation_period_days,
    )
}

/// `Enabled, rotation on every 365 days`, `PendingDeletion (deletion on
/// 2026-01-01T00:00:00Z), rotation off`.
pub fn describe_state(
    key_state: Option<&str>,
    deletion_date: Option<&str>,
    rotation_enabled: Option<bool>,
    rotation_period_days: Option<i64>,
) -> String {
    let state = key_state.unwrap_or("unknown state");
    let deletion = deletion_date
        .map(|d| format!(" (deletion on {d})"))
        .unwrap_or_default();
    let rotation = match (rotation_enabled, rotation_period_days) {
        (Some(true), Some(p)) => format!("rotation on every {p} days"),
        (Some(true), None) => "rotation on (period not reported)".into(),
        (Some(false), _) => "rotation off".into(),
        (None, _) => "rotation status not read".into(),
    };
    format!("{state}{deletion}, {rotation}")
}

/// A key that is not an action, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotPlanned {
    pub region: String,
    pub key_arn: String,
    pub aliases: Vec<String>,
    /// `compliant`, `ineligible`, `exempted` or `not_determined`.
    pub category: String,
    pub eligibility: Option<Eligibility>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub format: String,
    pub created_at: String,
    pub bundle: String,
    /// SHA-256 of the bundle's manifest.json, tying the plan to its evidence.
    pub bundle_manifest_sha256: Option<String>,
    pub policy: String,
    pub max_rotation_period_days: i64,
    pub rotation_period_days: i64,
    pub include_pending_deletion: bool,
    pub findings_read: bool,
    /// The price the projections use, their window, and their total.
    pub cost: PlanCost,
    pub actions: Vec<Action>,
    pub not_planned: Vec<NotPlanned>,
    pub plan_sha256: String,
}

/// What `kmsrot plan` was asked for.
pub struct PlanOptions<'a> {
    pub policy: &'a Policy,
    pub rotation_period_days: Option<i64>,
    pub include_pending_deletion: bool,
    pub now: DateTime<Utc>,
    /// Plan from a bundle that does not match its manifest (a warning, not
    /// an error). A plan changes AWS: by default its evidence must verify.
    pub allow_modified: bool,
    /// `--price-per-key-month`; AWS's list price when `None`.
    pub price_per_key_month: Option<Usd>,
}

/// Builds the plan for every key of the bundle.
pub fn build(bundle: &Path, opts: &PlanOptions<'_>) -> Result<Plan> {
    if let Some(p) = opts.rotation_period_days {
        if !PERIOD_RANGE.contains(&p) {
            bail!("--rotation-period-days {p} is outside AWS's range 90..=2560");
        }
    }
    // A missing or corrupt manifest, or files that no longer match it, stop
    // the plan before anything is read.
    let opened = crate::bundle::open(bundle, opts.allow_modified)?;
    let mut known: Vec<&str> = crate::rules::BUILTIN.iter().map(|(id, _)| *id).collect();
    if let Some(a) = &opened.manifest.assessment {
        known.extend(a.rules.keys().map(String::as_str));
    }
    opts.policy.check_rule_ids(known)?;
    let keys: Vec<KeyRecord> = frame_records(&read_frame(bundle, &KEYS)?, &KEYS)
        .map_err(|e| anyhow!("{}: {e:#}", bundle.display()))?;
    let findings_present = frame_paths(bundle, &FINDINGS)[0].exists();
    let findings: Vec<Finding> = if findings_present {
        frame_records(&read_frame(bundle, &FINDINGS)?, &FINDINGS)
            .map_err(|e| anyhow!("{}: {e:#}", bundle.display()))?
    } else {
        Vec::new()
    };
    let mut open_by_key: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.is_open()) {
        if let Some(arn) = f.key_arn.as_deref() {
            open_by_key.entry(arn).or_default().push(f);
        }
    }
    let manifest_sha = Some(crate::bundle::sha256_file(
        &bundle.join(crate::bundle::MANIFEST),
    )?);
    let clocks = key_clocks(bundle, &opened.manifest)?;
    let price = opts.price_per_key_month.unwrap_or(cost::LIST_PRICE);

    let period = opts
        .rotation_period_days
        .unwrap_or(opts.policy.max_rotation_period_days);
    let mut actions = Vec::new();
    let mut not_planned = Vec::new();
    for key in &keys {
        let Some(account_id) = key
            .account_id
            .clone()
            .or_else(|| crate::aws::arn_account(&key.arn).map(str::to_string))
        else {
            not_planned.push(apart(
                key,
                "not_determined",
                "The key's account is not known (no account_id, and the ARN names none).".into(),
            ));
            continue;
        };
        match classify(key, opts, period) {
            Classified::Act(kind, reason) => {
                if let Some(ex) = active_exemption(key, kind, opts) {
                    not_planned.push(apart(key, "exempted", ex));
                    continue;
                }
                let mut closes: Vec<ClosedFinding> = open_by_key
                    .get(key.arn.as_str())
                    .map(|fs| {
                        fs.iter()
                            .filter(|f| kind.closes_rules().contains(&f.rule_id.as_str()))
                            .map(|f| ClosedFinding {
                                finding_id: f.finding_id.clone(),
                                rule_id: f.rule_id.clone(),
                                severity: f.severity,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                closes.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
                let projected_cost = cost::project(
                    kind,
                    key,
                    clocks.get(key.arn.as_str()),
                    period,
                    opts.now,
                    price,
                );
                actions.push(Action {
                    action_id: action_id(kind, &key.arn),
                    action: kind,
                    region: key.region.clone(),
                    account_id,
                    key_id: key.key_id.clone(),
                    key_arn: key.arn.clone(),
                    aliases: key.aliases.clone(),
                    description: key.description.clone(),
                    planned_state: PlannedState {
                        key_state: key.key_state.clone(),
                        key_spec: key.key_spec.clone(),
                        origin: key.origin.clone(),
                        key_manager: key.key_manager.clone(),
                        eligibility: key.eligibility,
                        rotation_enabled: key.rotation_enabled,
                        rotation_period_days: key.rotation_period_days,
                        // To the second: what DescribeKey reports, and what a
                        // person reads.
                        deletion_date: key.deletion_date.map(|d| rfc3339(d.trunc_subsecs(0))),
                    },
                    rotation_period_days: period,
                    calls: calls(kind, period),
                    closes_findings: closes,
                    reason,
                    projected_cost,
                });
            }
            Classified::Apart(category, reason) => {
                not_planned.push(apart(key, category, reason));
            }
        }
    }
    actions.sort_by(|a, b| (&a.region, &a.key_arn).cmp(&(&b.region, &b.key_arn)));
    not_planned.sort_by(|a, b| {
        (&a.category, &a.region, &a.key_arn).cmp(&(&b.category, &b.region, &b.key_arn))
    });
    let (window_start, window_end) = cost::window(opts.now);
    let total = Usd(actions.iter().map(|a| a.projected_cost.added_usd.0).sum());
    let mut plan = Plan {
        format: PLAN_FORMAT.into(),
        created_at: rfc3339(opts.now),
        bundle: bundle.display().to_string(),
        bundle_manifest_sha256: manifest_sha,
        policy: opts.policy.origin.clone(),
        max_rotation_period_days: opts.policy.max_rotation_period_days,
        rotation_period_days: period,
        include_pending_deletion: opts.include_pending_deletion,
        findings_read: findings_present,
        cost: PlanCost {
            price_per_key_month_usd: price,
            price_source: if opts.price_per_key_month.is_some() {
                "--price-per-key-month".into()
            } else {
                "AWS list price".into()
            },
            window_start: rfc3339(window_start),
            window_end: rfc3339(window_end),
            total_added_usd: total,
        },
        actions,
        not_planned,
        plan_sha256: String::new(),
    };
    plan.plan_sha256 = plan_hash(&serde_json::to_value(&plan)?);
    Ok(plan)
}

/// The plan's projected cost in one line, as `plan` prints it.
pub fn cost_line(plan: &Plan) -> String {
    format!(
        "projected added cost over the 12 months to {}: ${} for {} action(s), at ${} per key-month ({}); see each action's projected_cost",
        &plan.cost.window_end[..plan.cost.window_end.len().min(10)],
        plan.cost.total_added_usd,
        plan.actions.len(),
        plan.cost.price_per_key_month_usd,
        plan.cost.price_source
    )
}

/// Each key's rotation clock as the bundle's evidence shows it (as of its
/// assessment, else its collection): the schedule the rules judge, which a
/// period change shifts.
fn key_clocks(
    bundle: &Path,
    m: &crate::bundle::Manifest,
) -> Result<BTreeMap<String, crate::rules::facts::KeyClock>> {
    let as_of = m.assessment.as_ref().map_or(m.collected_at, |a| a.as_of);
    let clocks = crate::rules::engine::key_clocks(
        &read_frame(bundle, &KEYS)?,
        &read_frame(bundle, &ROTATIONS)?,
        &read_frame(bundle, &EVENTS)?,
        as_of,
    )
    .map_err(|e| anyhow!("{}: {e:#}", bundle.display()))?;
    Ok(clocks.into_iter().map(|(k, c)| (k.arn, c)).collect())
}

/// The KMS calls an action makes, as the plan shows them to the approver.
pub fn calls(kind: ActionType, period: i64) -> Vec<String> {
    let enable = format!("EnableKeyRotation(RotationPeriodInDays={period})");
    match kind {
        ActionType::EnableRotation | ActionType::SetRotationPeriod => vec![enable],
        ActionType::CancelDeletionAndEnable => {
            vec!["CancelKeyDeletion".into(), "EnableKey".into(), enable]
        }
    }
}

enum Classified {
    Act(ActionType, String),
    Apart(&'static str, String),
}

fn classify(key: &KeyRecord, opts: &PlanOptions<'_>, period: i64) -> Classified {
    let why = || {
        key.eligibility_reason
            .clone()
            .unwrap_or_else(|| "eligibility not determined".into())
    };
    let Some(elig) = key.eligibility else {
        return Classified::Apart("not_determined", why());
    };
    match elig {
        Eligibility::Eligible => {}
        Eligibility::PendingDeletion if opts.include_pending_deletion => {
            return Classified::Act(
                ActionType::CancelDeletionAndEnable,
                format!(
                    "Scheduled for deletion; approved with --include-pending-deletion: cancel the deletion, enable the key, and enable rotation every {period} days."
                ),
            );
        }
        _ => return Classified::Apart("ineligible", why()),
    }
    let max = opts.policy.max_rotation_period_days;
    match (key.rotation_enabled, key.rotation_period_days) {
        (None, _) => Classified::Apart(
            "not_determined",
            format!(
                "Rotation status was not read{}; collect again with kms:GetKeyRotationStatus.",
                key.status_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
        ),
        (Some(false), _) => Classified::Act(
            ActionType::EnableRotation,
            format!("Eligible key with automatic rotation off: enable it every {period} days."),
        ),
        (Some(true), current) => match (opts.rotation_period_days, current) {
            // A shorter or equal period already rotates at least as often as
            // asked: kmsrot never lengthens a period.
            (Some(want), Some(cur)) if cur <= want => Classified::Apart(
                "compliant",
                if cur == want {
                    format!("Rotation on every {cur} days, as asked.")
                } else {
                    format!(
                        "Rotation on every {cur} days, more often than the {want} asked; kmsrot never lengthens a period."
                    )
                },
            ),
            (Some(want), cur) => Classified::Act(
                ActionType::SetRotationPeriod,
                format!(
                    "Rotation on every {} days; --rotation-period-days asks for {want}.",
                    cur.map_or("an unreported number of".to_string(), |c| c.to_string())
                ),
            ),
            (None, Some(cur)) if cur > max => Classified::Act(
                ActionType::SetRotationPeriod,
                format!("Rotation on every {cur} days, longer than the policy's {max}."),
            ),
            (None, Some(cur)) => Classified::Apart(
                "compliant",
                format!("Rotation on every {cur} days, within the policy's {max}."),
            ),
            (None, None) => Classified::Apart(
                "compliant",
                "Rotation on; KMS did not report the period (AWS always does; an emulator may not).".into(),
            ),
        },
    }
}

fn active_exemption(key: &KeyRecord, kind: ActionType, opts: &PlanOptions<'_>) -> Option<String> {
    opts.policy
        .exemptions
        .iter()
        .find(|e| {
            !e.is_expired(opts.now)
                && e.covers_rule(kind.exemption_rule())
                && key_matches(&e.key, &key.arn, &key.aliases)
        })
        .map(|e| {
            format!(
                "Exempted from {} until {} by {}: {}",
                kind.exemption_rule(),
                e.expires,
                e.approver,
                e.reason
            )
        })
}

fn apart(key: &KeyRecord, category: &str, reason: String) -> NotPlanned {
    NotPlanned {
        region: key.region.clone(),
        key_arn: key.arn.clone(),
        aliases: key.aliases.clone(),
        category: category.into(),
        eligibility: key.eligibility,
        reason,
    }
}

impl Plan {
    /// Reads a plan and checks that its content still matches its own hash.
    pub fn read_checked(path: &Path) -> Result<Plan> {
        let (value, _): (serde_json::Value, _) = read_json_doc(path, "plan")?;
        // The format first: an older plan lacks fields this one requires.
        if !value.is_object() {
            bail!("{}: not a valid plan: not a JSON object", path.display());
        }
        match value.get("format").and_then(|f| f.as_str()) {
            Some(PLAN_FORMAT) => {}
            None => bail!(
                "{}: not a valid plan: it has no `format` (expected {PLAN_FORMAT:?})",
                path.display()
            ),
            Some(older) if older.starts_with("kmsrot-plan/") => bail!(
                "{}: a plan of another kmsrot version (format {older:?}; this kmsrot reads {PLAN_FORMAT:?}, whose actions carry their projected cost); make a new plan with `kmsrot plan` and approve it",
                path.display()
            ),
            Some(other) => bail!(
                "{}: not a kmsrot plan (format {other:?}, expected {PLAN_FORMAT:?})",
                path.display()
            ),
        }
        let plan: Plan = serde_json::from_value(value.clone())
            .map_err(|e| anyhow!("{}: not a valid plan: {}", path.display(), short_error(&e)))?;
        let actual = plan_hash(&value);
        if actual != plan.plan_sha256 {
            bail!(
                "{}: the plan was modified after it was made (its content hashes to {actual}, its plan_sha256 says {}); make a new plan with `kmsrot plan`",
                path.display(),
                plan.plan_sha256
            );
        }
        let sum = Usd(plan
            .actions
            .iter()
            .map(|a| a.projected_cost.added_usd.0)
            .sum());
        if sum != plan.cost.total_added_usd {
            bail!(
                "{}: the plan's total projected cost ${} is not the sum of its actions' (${sum}); make a new plan with `kmsrot plan`",
                path.display(),
                plan.cost.total_added_usd
            );
        }
        let mut seen = std::collections::HashSet::new();
        for a in &plan.actions {
            if !seen.insert(a.action_id.as_str()) {
                bail!("{}: action {} appears twice", path.display(), a.action_id);
            }
            if let Err(why) = a.check_consistent() {
                bail!(
                    "{}: action {} contradicts itself: {why}; make a new plan with `kmsrot plan`",
                    path.display(),
                    a.action_id
                );
            }
        }
        Ok(plan)
    }

    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.action_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rotation: Option<bool>, period: Option<i64>, elig: Eligibility) -> KeyRecord {
        KeyRecord {
            region: "us-east-1".into(),
            key_id: "k".into(),
            arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            aliases: vec!["alias/app".into()],
            rotation_enabled: rotation,
            rotation_period_days: period,
            eligibility: Some(elig),
            eligibility_reason: Some("why".into()),
            ..KeyRecord::default()
        }
    }

    fn opts(policy: &Policy, period: Option<i64>, pending: bool) -> PlanOptions<'_> {
        PlanOptions {
            policy,
            rotation_period_days: period,
            include_pending_deletion: pending,
            now: Utc::now(),
            allow_modified: false,
            price_per_key_month: None,
        }
    }

    fn kind(c: Classified) -> Result<ActionType, &'static str> {
        match c {
            Classified::Act(k, _) => Ok(k),
            Classified::Apart(cat, _) => Err(cat),
        }
    }

    #[test]
    fn classifies_each_kind_of_key() {
        let p = Policy::default();
        let o = opts(&p, None, false);
        let e = Eligibility::Eligible;
        assert_eq!(
            kind(classify(&key(Some(false), None, e), &o, 365)),
            Ok(ActionType::EnableRotation)
        );
        assert_eq!(
            kind(classify(&key(Some(true), Some(730), e), &o, 365)),
            Ok(ActionType::SetRotationPeriod)
        );
        assert_eq!(
            kind(classify(&key(Some(true), Some(365), e), &o, 365)),
            Err("compliant")
        );
        assert_eq!(
            kind(classify(&key(Some(true), None, e), &o, 365)),
            Err("compliant")
        );
        assert_eq!(
            kind(classify(&key(None, None, e), &o, 365)),
            Err("not_determined")
        );
        for ineligible in [
            Eligibility::AwsManaged,
            Eligibility::Replica,
            Eligibility::UnsupportedSpec,
            Eligibility::ExternalOrigin,
            Eligibility::CustomKeyStore,
            Eligibility::Disabled,
            Eligibility::PendingDeletion,
        ] {
            assert_eq!(
                kind(classify(&key(Some(false), None, ineligible), &o, 365)),
                Err("ineligible"),
                "{ineligible}"
            );
        }
        let o = opts(&p, Some(180), true);
        assert_eq!(
            kind(classify(
                &key(Some(false), None, Eligibility::PendingDeletion),
                &o,
                180
            )),
            Ok(ActionType::CancelDeletionAndEnable)
        );
        assert_eq!(
            kind(classify(&key(Some(true), None, e), &o, 180)),
            Ok(ActionType::SetRotationPeriod)
        );
        assert_eq!(
            kind(classify(&key(Some(true), Some(180), e), &o, 180)),
            Err("compliant")
        );
        // Never lengthened: 90 days already rotates more often than 180.
        assert_eq!(
            kind(classify(&key(Some(true), Some(90), e), &o, 180)),
            Err("compliant")
        );
        assert_eq!(
            kind(classify(&key(Some(true), Some(400), e), &o, 180)),
            Ok(ActionType::SetRotationPeriod)
        );
    }

    fn consistent_action() -> Action {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        Action {
            action_id: action_id(ActionType::EnableRotation, arn),
            action: ActionType::EnableRotation,
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            key_id: "k1".into(),
            key_arn: arn.into(),
            aliases: vec!["alias/app".into()],
            description: None,
            planned_state: PlannedState {
                key_state: Some("Enabled".into()),
                key_spec: None,
                origin: None,
                key_manager: None,
                eligibility: None,
                rotation_enabled: Some(false),
                rotation_period_days: None,
                deletion_date: None,
            },
            rotation_period_days: 365,
            calls: calls(ActionType::EnableRotation, 365),
            closes_findings: vec![],
            reason: String::new(),
            projected_cost: CostProjection::nothing(),
        }
    }

    #[test]
    fn an_action_whose_fields_disagree_is_refused() {
        consistent_action().check_consistent().unwrap();
        let other = "arn:aws:kms:us-east-1:111122223333:key/k2";
        type Edit = Box<dyn Fn(&mut Action)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "action_id is not the hash",
                Box::new(|a| a.key_arn = other.into()),
            ),
            (
                "key_id k2 is not the key",
                Box::new(|a| a.key_id = "k2".into()),
            ),
            (
                "region eu-west-1 is not the region",
                Box::new(|a| a.region = "eu-west-1".into()),
            ),
            (
                "account_id 444455556666 is not the account",
                Box::new(|a| a.account_id = "444455556666".into()),
            ),
            (
                "are not what enable_rotation every 180 days makes",
                Box::new(|a| a.rotation_period_days = 180),
            ),
            (
                "outside AWS's range",
                Box::new(|a| {
                    a.rotation_period_days = 30;
                    a.calls = calls(a.action, 30);
                }),
            ),
            (
                "is not one enable_rotation applies to",
                Box::new(|a| a.planned_state.rotation_enabled = Some(true)),
            ),
            (
                "is not a KMS key ARN",
                Box::new(|a| {
                    a.key_arn = "arn:aws:kms:us-east-1:111122223333:alias/app".into();
                    a.action_id = action_id(a.action, &a.key_arn);
                }),
            ),
        ];
        for (want, edit) in cases {
            let mut a = consistent_action();
            edit(&mut a);
            let err = a.check_consistent().unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        // A set_rotation_period that would lengthen the period.
        let mut a = consistent_action();
        a.action = ActionType::SetRotationPeriod;
        a.action_id = action_id(a.action, &a.key_arn);
        a.planned_state.rotation_enabled = Some(true);
        a.planned_state.rotation_period_days = Some(180);
        let err = a.check_consistent().unwrap_err();
        assert!(
            err.contains("is not one set_rotation_period applies to"),
            "{err}"
        );
        a.planned_state.rotation_period_days = Some(730);
        a.check_consistent().unwrap();
    }

    fn written(plan: &serde_json::Value) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, serde_json::to_string_pretty(plan).unwrap()).unwrap();
        (dir, path)
    }

    fn hashed(mut v: serde_json::Value) -> serde_json::Value {
        v["plan_sha256"] = plan_hash(&v).into();
        v
    }

    #[test]
    fn an_older_plan_is_refused_with_a_request_for_a_new_one() {
        let plan = crate::remediate::approval::tests::plan();
        let mut older = serde_json::to_value(&plan).unwrap();
        older["format"] = "kmsrot-plan/2".into();
        let obj = older.as_object_mut().unwrap();
        obj.remove("cost");
        for a in obj["actions"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("projected_cost");
        }
        let (_dir, path) = written(&hashed(older));
        let err = Plan::read_checked(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "plan.json: a plan of another kmsrot version (format \"kmsrot-plan/2\"; this kmsrot reads \"kmsrot-plan/3\", whose actions carry their projected cost); make a new plan with `kmsrot plan` and approve it"
            ),
            "{err}"
        );
        let (_dir, path) = written(&serde_json::json!({"format": "something-else"}));
        let err = Plan::read_checked(&path).unwrap_err().to_string();
        assert!(err.contains("not a kmsrot plan"), "{err}");
        let (_dir, path) = written(&serde_json::json!([1, 2]));
        let err = Plan::read_checked(&path).unwrap_err().to_string();
        assert!(err.contains("plan.json: not a valid plan"), "{err}");
    }

    #[test]
    fn a_total_that_is_not_the_sum_of_the_actions_is_refused() {
        let plan = crate::remediate::approval::tests::plan();
        let (_dir, path) = written(&serde_json::to_value(&plan).unwrap());
        Plan::read_checked(&path).unwrap();
        // Re-hashed, so only the sum can tell: an action cheaper than planned.
        let mut v = serde_json::to_value(&plan).unwrap();
        v["actions"][0]["projected_cost"]["added_usd"] = "0.01".into();
        let (_dir, path) = written(&hashed(v));
        let err = Plan::read_checked(&path).unwrap_err().to_string();
        assert!(
            err.contains(
                "the plan's total projected cost $0.00 is not the sum of its actions' ($0.01)"
            ),
            "{err}"
        );
    }

    #[test]
    fn key_arns_parse() {
        assert_eq!(
            KeyArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:key/abc"),
            Some(KeyArn {
                region: "cn-north-1",
                account: "111122223333",
                key_id: "abc"
            })
        );
        for bad in [
            "abc",
            "arn:aws:kms:us-east-1:111122223333:alias/x",
            "arn:aws:s3:us-east-1:111122223333:key/x",
            "arn:aws:kms::111122223333:key/x",
            "arn:aws:kms:us-east-1:1111:key/x",
            "arn:aws:kms:us-east-1:111122223333:key/",
        ] {
            assert_eq!(KeyArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_active_exemption_keeps_a_key_out() {
        let p = Policy::parse(
            "[[exemption]]\nkey = \"alias/app\"\nrule = \"rotation_disabled\"\nreason = \"r\"\napprover = \"a\"\nexpires = \"2999-01-01\"\n",
            "p.toml",
        )
        .unwrap();
        let o = opts(&p, None, false);
        let k = key(Some(false), None, Eligibility::Eligible);
        assert!(active_exemption(&k, ActionType::EnableRotation, &o).is_some());
        assert!(active_exemption(&k, ActionType::SetRotationPeriod, &o).is_none());
    }
}
