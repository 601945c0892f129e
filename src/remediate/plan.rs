//! Building a plan from a bundle: one action per key that needs one, and the
//! rest listed apart with the reason they are not actions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{action_id, plan_hash, read_json_doc, PERIOD_RANGE};
use crate::frames::time::rfc3339;
use crate::frames::{FINDINGS, KEYS};
use crate::inventory::{Eligibility, KeyRecord};
use crate::output::{frame_paths, frame_records, read_frame};
use crate::policy::Policy;
use crate::rules::engine::{key_matches, Finding};

pub const PLAN_FORMAT: &str = "kmsrot-plan/1";

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub action_id: String,
    pub action: ActionType,
    pub region: String,
    pub account_id: Option<String>,
    pub key_id: String,
    pub key_arn: String,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    pub planned_state: PlannedState,
    /// The period EnableKeyRotation will be called with.
    pub rotation_period_days: i64,
    /// The KMS calls `apply --execute` makes, in order.
    pub calls: Vec<String>,
    pub closes_findings: Vec<String>,
    pub reason: String,
}

impl Action {
    /// The alias, else the key id: what a person recognizes.
    pub fn label(&self) -> &str {
        self.aliases.first().map_or(&self.key_id, |a| a.as_str())
    }
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
}

/// Builds the plan for every key of the bundle.
pub fn build(bundle: &Path, opts: &PlanOptions<'_>) -> Result<Plan> {
    if let Some(p) = opts.rotation_period_days {
        if !PERIOD_RANGE.contains(&p) {
            bail!("--rotation-period-days {p} is outside AWS's range 90..=2560");
        }
    }
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
    let manifest = bundle.join("manifest.json");
    let manifest_sha = manifest
        .exists()
        .then(|| crate::bundle::sha256_file(&manifest))
        .transpose()?;

    let period = opts
        .rotation_period_days
        .unwrap_or(opts.policy.max_rotation_period_days);
    let mut actions = Vec::new();
    let mut not_planned = Vec::new();
    for key in &keys {
        match classify(key, opts, period) {
            Classified::Act(kind, reason) => {
                if let Some(ex) = active_exemption(key, kind, opts) {
                    not_planned.push(apart(key, "exempted", ex));
                    continue;
                }
                let closes = open_by_key
                    .get(key.arn.as_str())
                    .map(|fs| {
                        let mut ids: Vec<String> = fs
                            .iter()
                            .filter(|f| kind.closes_rules().contains(&f.rule_id.as_str()))
                            .map(|f| f.finding_id.clone())
                            .collect();
                        ids.sort();
                        ids
                    })
                    .unwrap_or_default();
                actions.push(Action {
                    action_id: action_id(kind, &key.arn),
                    action: kind,
                    region: key.region.clone(),
                    account_id: key.account_id.clone(),
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
                    },
                    rotation_period_days: period,
                    calls: calls(kind, period),
                    closes_findings: closes,
                    reason,
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
        actions,
        not_planned,
        plan_sha256: String::new(),
    };
    plan.plan_sha256 = plan_hash(&serde_json::to_value(&plan)?);
    Ok(plan)
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
            (Some(want), Some(cur)) if cur == want => Classified::Apart(
                "compliant",
                format!("Rotation on every {cur} days, as asked."),
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
        let (plan, value): (Plan, _) = read_json_doc(path, "plan")?;
        if plan.format != PLAN_FORMAT {
            bail!(
                "{}: not a kmsrot plan (format {:?}, expected {PLAN_FORMAT:?})",
                path.display(),
                plan.format
            );
        }
        let actual = plan_hash(&value);
        if actual != plan.plan_sha256 {
            bail!(
                "{}: the plan was modified after it was made (its content hashes to {actual}, its plan_sha256 says {}); make a new plan with `kmsrot plan`",
                path.display(),
                plan.plan_sha256
            );
        }
        let mut seen = std::collections::HashSet::new();
        for a in &plan.actions {
            if !seen.insert(a.action_id.as_str()) {
                bail!("{}: action {} appears twice", path.display(), a.action_id);
            }
            if !PERIOD_RANGE.contains(&a.rotation_period_days) {
                bail!(
                    "{}: action {} has rotation_period_days {} outside AWS's range 90..=2560",
                    path.display(),
                    a.action_id,
                    a.rotation_period_days
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
