//! An approval: the actions a person chose from one exact plan, for a limited
//! time, optionally signed with a KMS key.
//!
//! `approval_sha256` is SHA-256 over the approval's canonical JSON without
//! that field and without `signature`; it catches any edit made without
//! re-computing it. The signature (`approve --sign-with`) is over the same
//! digest, so it catches every edit, including one that re-computes the hash.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use aws_config::SdkConfig;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cost::Usd;
use super::plan::{describe_planned, ActionType, Plan};
use super::{canonical_json, display_safe, read_json_doc};
use crate::aws::signing::{self, ALGORITHM, MESSAGE_TYPE};
use crate::aws::CallerIdentity;
use crate::error::hinted;
use crate::frames::time::rfc3339;
use crate::rules::engine::key_matches;

/// `/2`: an expiry, the approval's own hash and an optional signature.
pub const APPROVAL_FORMAT: &str = "kmsrot-approval/2";
/// How long an approval stays valid unless `--valid-for` says otherwise.
pub const DEFAULT_VALID_FOR: &str = "7d";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub format: String,
    /// The plan file, as an absolute path when it could be resolved.
    pub plan_file: String,
    /// The SHA-256 of the plan the person saw; `apply` refuses any other.
    pub plan_sha256: String,
    pub approver: String,
    /// Who the credentials belonged to at approval time (STS), when known.
    pub caller: Option<CallerIdentity>,
    pub approved_at: String,
    /// After this instant `apply` refuses the approval.
    pub expires_at: String,
    pub note: Option<String>,
    pub approved_actions: Vec<String>,
    /// Where each approved action in another account than the approver's
    /// runs: its account and the role `apply` assumes there (approved with
    /// the organization flags). Absent: every action runs with the
    /// executor's own credentials, in its own account only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<ActionAccess>,
    /// SHA-256 of the canonical form without this field and `signature`.
    pub approval_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ApprovalSignature>,
}

/// The account and role one approved action runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionAccess {
    pub action_id: String,
    pub account_id: String,
    /// The role assumed in `account_id` (`arn:aws:iam::ACCOUNT:role/NAME`).
    pub role_arn: String,
}

/// A KMS signature over the approval's SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSignature {
    /// The key ARN KMS reported for the Sign call.
    pub key_id: String,
    pub signing_algorithm: String,
    pub message_type: String,
    /// The signature, hex.
    pub signature: String,
}

/// What a signature check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    Unsigned,
    Valid { key_id: String, form: &'static str },
}

/// SHA-256 (hex) of an approval document, without `approval_sha256` and
/// `signature`.
pub fn approval_hash(doc: &Value) -> String {
    let mut doc = doc.clone();
    if let Value::Object(map) = &mut doc {
        map.remove("approval_sha256");
        map.remove("signature");
    }
    hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
}

/// `7d`, `36h`, `90m`, `2w`: how long an approval stays valid.
pub fn parse_valid_for(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{text:?}: give a number and a unit, as 7d, 36h, 90m or 2w"))?;
    let d = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => {
            return Err(format!(
                "{text:?}: the unit must be m, h, d or w (as 7d, 36h, 90m or 2w)"
            ))
        }
    };
    if n <= 0 {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    if d > Duration::days(366) {
        return Err(format!(
            "{text:?}: at most a year; a long-lived approval can undo later decisions"
        ));
    }
    Ok(d)
}

/// Action ids selected by `--all` or `--key`; a key that matches no action of
/// the plan is an error, so a typo never silently approves less.
pub fn select(plan: &Plan, all: bool, keys: &[String]) -> Result<Vec<String>> {
    if all {
        return Ok(plan.actions.iter().map(|a| a.action_id.clone()).collect());
    }
    let mut out = Vec::new();
    for wanted in keys {
        let hits: Vec<&str> = plan
            .actions
            .iter()
            .filter(|a| a.action_id == *wanted || key_matches(wanted, &a.key_arn, &a.aliases))
            .map(|a| a.action_id.as_str())
            .collect();
        if hits.is_empty() {
            let apart = plan
                .not_planned
                .iter()
                .find(|n| key_matches(wanted, &n.key_arn, &n.aliases));
            match apart {
                Some(n) => bail!(
                    "--key {wanted}: not an action in the plan ({}: {})",
                    n.category,
                    n.reason
                ),
                None => bail!("--key {wanted}: no action in the plan is about this key"),
            }
        }
        for h in hits {
            if !out.iter().any(|o| o == h) {
                out.push(h.to_string());
            }
        }
    }
    Ok(out)
}

/// What the approver is shown for one action before approving it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    pub action_id: String,
    pub account: String,
    pub region: String,
    pub key: String,
    pub action: ActionType,
    pub now: String,
    pub calls: String,
    /// The findings it closes (`rule_id (severity)`), else the plan's reason.
    pub why: String,
    /// What it adds to the KMS bill over the plan's twelve months (`$3.29`).
    pub added_cost: String,
    /// For an action that brings a key back from deletion: the line the
    /// approver must confirm on its own.
    pub confirmation: Option<String>,
}

/// The plan's age in words, each selected action as the approver sees it,
/// and what the selection adds to the bill.
pub struct Review {
    pub plan_line: String,
    pub rows: Vec<ReviewRow>,
    pub cost_line: String,
}

/// Builds what the approver sees. Every string from the plan (aliases,
/// descriptions, reasons) comes from AWS and is shown with control
/// characters escaped.
pub fn review(plan: &Plan, selected: &[String], now: DateTime<Utc>) -> Review {
    let age = DateTime::parse_from_rfc3339(&plan.created_at)
        .map(|t| human_age(now - t.with_timezone(&Utc)))
        .unwrap_or_else(|_| "of unknown age".into());
    let plan_line = format!(
        "plan {} made {} ({}) from {}, {} actions",
        &plan.plan_sha256[..plan.plan_sha256.len().min(12)],
        display_safe(&plan.created_at),
        age,
        display_safe(&plan.bundle),
        plan.actions.len()
    );
    let rows = selected
        .iter()
        .filter_map(|id| plan.action(id))
        .map(|a| {
            let why = if a.closes_findings.is_empty() {
                a.reason.clone()
            } else {
                let mut rules: Vec<String> = a
                    .closes_findings
                    .iter()
                    .map(|f| format!("{} ({})", f.rule_id, f.severity.as_str()))
                    .collect();
                rules.dedup();
                format!("closes {}", rules.join(", "))
            };
            let key = if a.aliases.is_empty() {
                a.key_id.clone()
            } else {
                format!("{} ({})", a.aliases.join(", "), a.key_id)
            };
            let confirmation = (a.action == ActionType::CancelDeletionAndEnable).then(|| {
                format!(
                    "CONFIRM: cancels the scheduled deletion of {} in account {} {} (deletion on {}) and enables the key for use again",
                    display_safe(&key),
                    a.account_id,
                    a.region,
                    display_safe(a.planned_state.deletion_date.as_deref().unwrap_or("an unknown date"))
                )
            });
            ReviewRow {
                action_id: a.action_id.clone(),
                account: a.account_id.clone(),
                region: display_safe(&a.region),
                key: display_safe(&key),
                action: a.action,
                now: describe_planned(&a.planned_state),
                calls: a.calls.join(" + "),
                why: display_safe(&why),
                added_cost: format!("${}", a.projected_cost.added_usd),
                confirmation,
            }
        })
        .collect::<Vec<_>>();
    // A person reads by account, region and name, not by ARN.
    let mut rows = rows;
    rows.sort_by(|a, b| (&a.account, &a.region, &a.key).cmp(&(&b.account, &b.region, &b.key)));
    let chosen: Vec<&super::plan::Action> = plan
        .actions
        .iter()
        .filter(|a| selected.contains(&a.action_id))
        .collect();
    let selected_cost = Usd(chosen.iter().map(|a| a.projected_cost.added_usd.0).sum());
    let unknown_history = chosen
        .iter()
        .filter(|a| a.projected_cost.rotations_before.is_none())
        .count();
    let cost_line = format!(
        "projected added cost over the 12 months to {}: ${selected_cost} for the {} action(s) shown (the plan's {}: ${}), at ${} per key-month ({}){}",
        display_safe(&plan.cost.window_end[..plan.cost.window_end.len().min(10)]),
        chosen.len(),
        plan.actions.len(),
        plan.cost.total_added_usd,
        plan.cost.price_per_key_month_usd,
        display_safe(&plan.cost.price_source),
        if unknown_history > 0 {
            format!("; {unknown_history} key(s) without a rotation history: the most they could add")
        } else {
            String::new()
        }
    );
    Review {
        plan_line,
        rows,
        cost_line,
    }
}

/// `3 days ago`, `5 hours ago`, `just now`.
fn human_age(d: Duration) -> String {
    let (n, unit) = if d.num_days() >= 1 {
        (d.num_days(), "day")
    } else if d.num_hours() >= 1 {
        (d.num_hours(), "hour")
    } else if d.num_minutes() >= 1 {
        (d.num_minutes(), "minute")
    } else {
        return "just now".into();
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Who approves, from what, for how long.
pub struct NewApproval<'a> {
    pub plan: &'a Plan,
    pub plan_file: String,
    pub approver: String,
    pub caller: Option<CallerIdentity>,
    pub now: DateTime<Utc>,
    pub valid_for: Duration,
    pub note: Option<String>,
    pub selected: Vec<String>,
    /// The role of each selected action run in another account.
    pub access: Vec<ActionAccess>,
}

/// Makes the approval, signs it when asked, and writes it atomically.
pub async fn create(
    sign_with: Option<(&SdkConfig, &str)>,
    n: NewApproval<'_>,
    out: &Path,
) -> Result<Approval> {
    let mut a = Approval::new(n)?;
    if let Some((config, key)) = sign_with {
        a.sign(config, key).await?;
    }
    super::write_json_atomic(out, &a)?;
    Ok(a)
}

impl Approval {
    /// An unsigned approval with its hash.
    pub fn new(n: NewApproval<'_>) -> Result<Approval> {
        let mut a = Approval {
            format: APPROVAL_FORMAT.into(),
            plan_file: n.plan_file,
            plan_sha256: n.plan.plan_sha256.clone(),
            approver: n.approver,
            caller: n.caller,
            approved_at: rfc3339(n.now),
            expires_at: rfc3339(n.now + n.valid_for),
            note: n.note,
            approved_actions: n.selected,
            access: n.access,
            approval_sha256: String::new(),
            signature: None,
        };
        a.approval_sha256 = approval_hash(&serde_json::to_value(&a)?);
        Ok(a)
    }

    /// The digest a signature covers.
    fn digest(&self) -> Result<[u8; 32]> {
        hex::decode(&self.approval_sha256)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| anyhow!("approval_sha256 is not a SHA-256"))
    }

    /// Signs the approval's digest with a KMS asymmetric key.
    pub async fn sign(&mut self, config: &SdkConfig, key: &str) -> Result<()> {
        let (key_id, sig) = signing::sign_digest(config, key, &self.digest()?).await?;
        self.signature = Some(ApprovalSignature {
            key_id,
            signing_algorithm: ALGORITHM.into(),
            message_type: MESSAGE_TYPE.into(),
            signature: hex::encode(sig),
        });
        Ok(())
    }

    /// Reads an approval, then its plan, and checks that each is intact and
    /// that they belong together: the approval's own hash, no action listed
    /// twice, the plan's hash and self-consistency, every approved action in
    /// the plan.
    pub fn read_with_plan(path: &Path) -> Result<(Approval, Plan)> {
        let (approval, value): (Approval, _) = read_json_doc(path, "approval")?;
        if approval.format != APPROVAL_FORMAT {
            bail!(
                "{}: not a kmsrot approval of this version (format {:?}, expected {APPROVAL_FORMAT:?}); approve the plan again",
                path.display(),
                approval.format
            );
        }
        let actual = approval_hash(&value);
        if actual != approval.approval_sha256 {
            bail!(
                "{}: the approval was modified after it was made (its content hashes to {actual}, its approval_sha256 says {}); approve the plan again",
                path.display(),
                approval.approval_sha256
            );
        }
        if approval.approved_actions.is_empty() {
            bail!("{}: the approval selects no action", path.display());
        }
        let mut seen = std::collections::HashSet::new();
        for id in &approval.approved_actions {
            if !seen.insert(id.as_str()) {
                bail!(
                    "{}: the approval lists action {} twice",
                    path.display(),
                    display_safe(id)
                );
            }
        }
        let plan_path = approval.plan_path(path);
        let plan = Plan::read_checked(&plan_path)?;
        if plan.plan_sha256 != approval.plan_sha256 {
            bail!(
                "{}: the plan {} is not the one approved (its SHA-256 is {}, the approval's is {}); approve the new plan",
                path.display(),
                plan_path.display(),
                plan.plan_sha256,
                display_safe(&approval.plan_sha256)
            );
        }
        for id in &approval.approved_actions {
            if plan.action(id).is_none() {
                bail!(
                    "{}: approved action {} is not in the plan {}",
                    path.display(),
                    display_safe(id),
                    plan_path.display()
                );
            }
        }
        let mut roled = std::collections::HashSet::new();
        for x in &approval.access {
            // The role is part of what was approved: it must name an approved
            // action, in that action's account, once.
            let fits = approval.approved_actions.contains(&x.action_id)
                && plan
                    .action(&x.action_id)
                    .is_some_and(|a| a.account_id == x.account_id)
                && crate::aws::arn_account(&x.role_arn) == Some(x.account_id.as_str())
                && x.role_arn.contains(":role/");
            if !fits || !roled.insert(x.action_id.as_str()) {
                bail!(
                    "{}: the access entry of action {} (account {}, role {}) does not match the approved actions of the plan {}; approve the plan again",
                    path.display(),
                    display_safe(&x.action_id),
                    display_safe(&x.account_id),
                    display_safe(&x.role_arn),
                    plan_path.display()
                );
            }
        }
        Ok((approval, plan))
    }

    /// The role approved for `action_id`, when it runs in another account.
    pub fn role_for(&self, action_id: &str) -> Option<&ActionAccess> {
        self.access.iter().find(|x| x.action_id == action_id)
    }

    /// Refuses an approval that has expired (or whose times make no sense).
    pub fn check_current(&self, path: &Path, now: DateTime<Utc>) -> Result<()> {
        let time = |field: &str, v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    anyhow!(
                        "{}: {field} {:?} is not an RFC 3339 time: {e}",
                        path.display(),
                        display_safe(v)
                    )
                })
        };
        let approved = time("approved_at", &self.approved_at)?;
        let expires = time("expires_at", &self.expires_at)?;
        if expires <= approved {
            bail!(
                "{}: the approval expires ({}) before it was approved ({})",
                path.display(),
                self.expires_at,
                self.approved_at
            );
        }
        if now >= expires {
            return Err(hinted(
                format!(
                    "{}: the approval expired at {} (approved at {} by {}); an expired approval is never applied, so that it cannot undo decisions made since",
                    path.display(),
                    self.expires_at,
                    self.approved_at,
                    display_safe(&self.approver)
                ),
                "make a new plan from a fresh bundle and approve it (`kmsrot approve --valid-for` sets how long an approval lasts)",
            ));
        }
        Ok(())
    }

    /// Checks the signature when there is one (always: an edited signed
    /// approval is refused whether or not a signature is required), requires
    /// one when asked, and requires the signing key to be one of `signers`
    /// when any are named.
    pub async fn check_signature(
        &self,
        path: &Path,
        config: &SdkConfig,
        require: bool,
        signers: &[String],
    ) -> Result<SignatureStatus> {
        let Some(sig) = &self.signature else {
            if require || !signers.is_empty() {
                return Err(hinted(
                    format!(
                        "{}: the approval is not signed, and --require-signed asks for a signature",
                        path.display()
                    ),
                    "have the approver sign it: `kmsrot approve ... --sign-with KEY` (an asymmetric RSA KMS key)",
                ));
            }
            return Ok(SignatureStatus::Unsigned);
        };
        if sig.signing_algorithm != ALGORITHM || sig.message_type != MESSAGE_TYPE {
            bail!(
                "{}: the signature uses {} / {}, not {ALGORITHM} / {MESSAGE_TYPE}",
                path.display(),
                display_safe(&sig.signing_algorithm),
                display_safe(&sig.message_type)
            );
        }
        let bytes = hex::decode(&sig.signature)
            .map_err(|_| anyhow!("{}: the signature is not hex", path.display()))?;
        let (_, der) = signing::public_key(config, &sig.key_id)
            .await
            .map_err(|e| anyhow!("{}: cannot check the signature: {e:#}", path.display()))?;
        let form = signing::verify_digest(&der, &self.digest()?, &bytes)
            .map_err(|e| anyhow!("{}: {} {e}", path.display(), display_safe(&sig.key_id)))?;
        let Some(form) = form else {
            return Err(hinted(
                format!(
                    "{}: the signature by {} does not match the approval's content: it was changed after it was signed",
                    path.display(),
                    display_safe(&sig.key_id)
                ),
                "approve the plan again; never edit an approval by hand",
            ));
        };
        // The key the approval names is the approval's word; a --signer is
        // the run's. They are the same key when their public halves are.
        if !signers.is_empty() {
            let mut trusted = false;
            for s in signers {
                let (_, signer_der) = signing::public_key(config, s).await?;
                if signer_der == der {
                    trusted = true;
                    break;
                }
            }
            if !trusted {
                return Err(hinted(
                    format!(
                        "{}: the approval is signed by {}, which is not a --signer of this run",
                        path.display(),
                        display_safe(&sig.key_id)
                    ),
                    "pass the approvers' signing key as --signer KEY",
                ));
            }
        }
        Ok(SignatureStatus::Valid {
            key_id: sig.key_id.clone(),
            form,
        })
    }

    /// Separation of duties: the identity that approved must not be the one
    /// that executes.
    pub fn check_different_executor(&self, path: &Path, executor: &CallerIdentity) -> Result<()> {
        let Some(approver) = &self.caller else {
            return Err(hinted(
                format!(
                    "{}: the approval records no caller identity, so --require-different-executor cannot tell who approved",
                    path.display()
                ),
                "approve with AWS credentials available, so the approval records the approver's STS identity",
            ));
        };
        if approver.arn.eq_ignore_ascii_case(&executor.arn) {
            return Err(hinted(
                format!(
                    "{}: approved by {}, the same identity that runs this apply; --require-different-executor asks for another",
                    path.display(),
                    display_safe(&approver.arn)
                ),
                "run the apply with the credentials of someone other than the approver",
            ));
        }
        Ok(())
    }

    /// The plan file; a relative path is taken from the approval's folder.
    /// When the recorded path is gone (the pair was copied elsewhere, as for
    /// an auditor), a plan of the same name beside the approval is used; its
    /// hash still has to match.
    pub fn plan_path(&self, approval_path: &Path) -> PathBuf {
        let p = PathBuf::from(&self.plan_file);
        let dir = approval_path.parent().unwrap_or(Path::new("."));
        if p.is_relative() {
            return dir.join(&p);
        }
        if !p.exists() {
            if let Some(name) = p.file_name() {
                let beside = dir.join(name);
                if beside.exists() {
                    return beside;
                }
            }
        }
        p
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::remediate::plan::{Action, ActionType, NotPlanned, PlannedState};

    pub(crate) fn plan() -> Plan {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        let mut p = Plan {
            format: crate::remediate::plan::PLAN_FORMAT.into(),
            created_at: "2026-03-01T00:00:00Z".into(),
            bundle: "b".into(),
            bundle_manifest_sha256: None,
            policy: "p".into(),
            max_rotation_period_days: 365,
            rotation_period_days: 365,
            include_pending_deletion: false,
            findings_read: false,
            cost: crate::remediate::cost::PlanCost::list(crate::remediate::cost::Usd(0)),
            actions: vec![Action {
                action_id: crate::remediate::action_id(ActionType::EnableRotation, arn),
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
                calls: crate::remediate::plan::calls(ActionType::EnableRotation, 365),
                closes_findings: vec![],
                reason: "r".into(),
                projected_cost: crate::remediate::cost::CostProjection::nothing(),
            }],
            not_planned: vec![NotPlanned {
                region: "us-east-1".into(),
                key_arn: "arn:aws:kms:us-east-1:111122223333:key/k2".into(),
                aliases: vec!["alias/sign".into()],
                category: "ineligible".into(),
                eligibility: None,
                reason: "RSA".into(),
            }],
            plan_sha256: String::new(),
        };
        p.plan_sha256 = crate::remediate::plan_hash(&serde_json::to_value(&p).unwrap());
        p
    }

    #[test]
    fn keys_select_actions_by_id_arn_alias_or_action_id() {
        let p = plan();
        let id = p.actions[0].action_id.clone();
        for wanted in ["k1", "alias/app", &p.actions[0].key_arn, &id] {
            assert_eq!(
                select(&p, false, &[wanted.to_string()]).unwrap(),
                vec![id.clone()]
            );
        }
        assert_eq!(select(&p, true, &[]).unwrap(), vec![id.clone()]);
        let err = select(&p, false, &["alias/sign".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not an action in the plan (ineligible: RSA)"),
            "{err}"
        );
        let err = select(&p, false, &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("no action in the plan"), "{err}");
    }

    #[test]
    fn valid_for_durations() {
        assert_eq!(parse_valid_for("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_valid_for("36h"), Ok(Duration::hours(36)));
        assert_eq!(parse_valid_for("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_valid_for("2w"), Ok(Duration::weeks(2)));
        for bad in ["", "7", "d", "0d", "-1d", "7y", "400d", "1.5d"] {
            assert!(parse_valid_for(bad).is_err(), "{bad}");
        }
    }

    fn approval(now: DateTime<Utc>) -> Approval {
        let p = plan();
        Approval::new(NewApproval {
            plan: &p,
            plan_file: "plan.json".into(),
            approver: "alice".into(),
            caller: None,
            now,
            valid_for: Duration::days(7),
            note: None,
            selected: vec![p.actions[0].action_id.clone()],
            access: vec![],
        })
        .unwrap()
    }

    #[test]
    fn an_approval_expires() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = approval(t);
        let path = Path::new("approval.json");
        a.check_current(path, t + Duration::days(6)).unwrap();
        let err = a
            .check_current(path, t + Duration::days(7))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("approval.json: the approval expired at 2026-03-08T00:00:00Z"),
            "{err}"
        );
    }

    #[test]
    fn the_hash_covers_everything_but_itself_and_the_signature() {
        let a = approval(Utc::now());
        let mut v = serde_json::to_value(&a).unwrap();
        assert_eq!(approval_hash(&v), a.approval_sha256);
        v["signature"] = serde_json::json!({"key_id": "k"});
        assert_eq!(approval_hash(&v), a.approval_sha256);
        for (field, value) in [
            ("approver", serde_json::json!("mallory")),
            ("expires_at", serde_json::json!("2999-01-01T00:00:00Z")),
            (
                "approved_actions",
                serde_json::json!(["act-0000000000000000"]),
            ),
        ] {
            let mut edited = serde_json::to_value(&a).unwrap();
            edited[field] = value;
            assert_ne!(approval_hash(&edited), a.approval_sha256, "{field}");
        }
    }

    #[test]
    fn a_signed_digest_is_bound_to_the_content() {
        let (private, der) = crate::aws::signing::tests::key_pair();
        let a = approval(Utc::now());
        let sig = crate::aws::signing::tests::kms_style_sign(&private, &a.digest().unwrap());
        assert!(signing::verify_digest(&der, &a.digest().unwrap(), &sig)
            .unwrap()
            .is_some());
        let mut edited = a.clone();
        edited.approver = "mallory".into();
        edited.approval_sha256 = approval_hash(&serde_json::to_value(&edited).unwrap());
        assert!(
            signing::verify_digest(&der, &edited.digest().unwrap(), &sig)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn separation_of_duties_compares_the_sts_identities() {
        let mut a = approval(Utc::now());
        let who = |arn: &str| CallerIdentity {
            account: "111122223333".into(),
            arn: arn.into(),
            user_id: "AIDA".into(),
        };
        let path = Path::new("approval.json");
        let err = a
            .check_different_executor(path, &who("arn:aws:iam::111122223333:user/bob"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("records no caller identity"), "{err}");
        a.caller = Some(who("arn:aws:iam::111122223333:user/alice"));
        a.check_different_executor(path, &who("arn:aws:iam::111122223333:user/bob"))
            .unwrap();
        let err = a
            .check_different_executor(path, &who("arn:aws:iam::111122223333:user/Alice"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the same identity"), "{err}");
    }

    #[test]
    fn the_review_names_account_region_alias_and_why() {
        let mut p = plan();
        p.actions[0].closes_findings = vec![crate::remediate::plan::ClosedFinding {
            finding_id: "f1".into(),
            rule_id: "rotation_disabled".into(),
            severity: crate::policy::Severity::High,
        }];
        p.actions[0].aliases = vec!["alias/a\u{1b}[2Jpp".into()];
        let now = DateTime::parse_from_rfc3339("2026-03-04T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = review(&p, &[p.actions[0].action_id.clone()], now);
        assert!(r.plan_line.contains("(3 days ago)"), "{}", r.plan_line);
        let row = &r.rows[0];
        assert_eq!(row.account, "111122223333");
        assert_eq!(row.why, "closes rotation_disabled (high)");
        assert_eq!(row.key, "alias/a\\u{1b}[2Jpp (k1)");
        assert_eq!(row.confirmation, None);
    }

    #[test]
    fn the_review_shows_what_the_selection_adds_to_the_bill() {
        let mut p = plan();
        let mut second = p.actions[0].clone();
        second.key_arn = "arn:aws:kms:us-east-1:111122223333:key/k3".into();
        second.key_id = "k3".into();
        second.action_id = crate::remediate::action_id(second.action, &second.key_arn);
        second.projected_cost.added_usd = Usd::parse("15.12").unwrap();
        second.projected_cost.rotations_before = None;
        p.actions[0].projected_cost.added_usd = Usd::parse("3.29").unwrap();
        p.actions.push(second);
        p.cost.total_added_usd = Usd::parse("18.41").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-03-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = review(&p, &[p.actions[0].action_id.clone()], now);
        assert_eq!(r.rows[0].added_cost, "$3.29");
        assert_eq!(
            r.cost_line,
            "projected added cost over the 12 months to 2027-03-01: $3.29 for the 1 action(s) shown (the plan's 2: $18.41), at $1.00 per key-month (AWS list price)"
        );
        let all: Vec<String> = p.actions.iter().map(|a| a.action_id.clone()).collect();
        let r = review(&p, &all, now);
        assert!(
            r.cost_line.starts_with("projected added cost over the 12 months to 2027-03-01: $18.41 for the 2 action(s) shown")
                && r.cost_line.ends_with("; 1 key(s) without a rotation history: the most they could add"),
            "{}",
            r.cost_line
        );
    }
}

#[cfg(test)]
mod access_tests {
    use super::tests::plan;
    use super::*;

    /// Writes the plan and an approval of its action with `access`, hashed
    /// as `approve` would (so only the access check can refuse it).
    fn written(dir: &Path, access: Vec<ActionAccess>) -> PathBuf {
        let p = plan();
        let plan_path = dir.join("plan.json");
        crate::remediate::write_json_atomic(&plan_path, &p).unwrap();
        let a = Approval::new(NewApproval {
            plan: &p,
            plan_file: plan_path.display().to_string(),
            approver: "alice".into(),
            caller: None,
            now: Utc::now(),
            valid_for: Duration::days(1),
            note: None,
            selected: vec![p.actions[0].action_id.clone()],
            access,
        })
        .unwrap();
        let path = dir.join("approval.json");
        crate::remediate::write_json_atomic(&path, &a).unwrap();
        path
    }

    #[test]
    fn an_approved_role_must_be_in_its_actions_account() {
        let dir = tempfile::tempdir().unwrap();
        let id = plan().actions[0].action_id.clone();
        let entry = |account: &str, role: &str| ActionAccess {
            action_id: id.clone(),
            account_id: account.into(),
            role_arn: role.into(),
        };
        let good = entry(
            "111122223333",
            "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole",
        );
        let (a, _) = Approval::read_with_plan(&written(dir.path(), vec![good.clone()])).unwrap();
        assert_eq!(a.role_for(&id), Some(&good));
        // No access recorded: the approval hashes as before the field existed.
        let (a, _) = Approval::read_with_plan(&written(dir.path(), vec![])).unwrap();
        let text = std::fs::read_to_string(dir.path().join("approval.json")).unwrap();
        assert!(
            a.access.is_empty() && !text.contains("\"access\""),
            "{text}"
        );
        for bad in [
            // Another account than the action's.
            vec![entry(
                "444455556666",
                "arn:aws:iam::444455556666:role/OrganizationAccountAccessRole",
            )],
            // A role in another account than the one named.
            vec![entry(
                "111122223333",
                "arn:aws:iam::444455556666:role/OrganizationAccountAccessRole",
            )],
            // Not a role.
            vec![entry("111122223333", "arn:aws:iam::111122223333:user/bob")],
            // Twice.
            vec![good.clone(), good.clone()],
        ] {
            let err = Approval::read_with_plan(&written(dir.path(), bad.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("does not match the approved actions"),
                "{bad:?}: {err}"
            );
        }
    }
}
