//! An approval: the actions a person chose from one exact plan.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::read_json_doc;
use crate::aws::CallerIdentity;
use crate::rules::engine::key_matches;

pub const APPROVAL_FORMAT: &str = "kmsrot-approval/1";

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
    pub note: Option<String>,
    pub approved_actions: Vec<String>,
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

impl Approval {
    /// Reads an approval, then its plan, and checks they belong together.
    pub fn read_with_plan(path: &Path) -> Result<(Approval, Plan)> {
        let (approval, _): (Approval, _) = read_json_doc(path, "approval")?;
        if approval.format != APPROVAL_FORMAT {
            bail!(
                "{}: not a kmsrot approval (format {:?}, expected {APPROVAL_FORMAT:?})",
                path.display(),
                approval.format
            );
        }
        if approval.approved_actions.is_empty() {
            bail!("{}: the approval selects no action", path.display());
        }
        let plan_path = approval.plan_path(path);
        let plan = Plan::read_checked(&plan_path)?;
        if plan.plan_sha256 != approval.plan_sha256 {
            bail!(
                "{}: the plan {} is not the one approved (its SHA-256 is {}, the approval's is {}); approve the new plan",
                path.display(),
                plan_path.display(),
                plan.plan_sha256,
                approval.plan_sha256
            );
        }
        for id in &approval.approved_actions {
            if plan.action(id).is_none() {
                bail!(
                    "{}: approved action {id} is not in the plan {}",
                    path.display(),
                    plan_path.display()
                );
            }
        }
        Ok((approval, plan))
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
mod tests {
    use super::*;
    use crate::remediate::plan::{Action, ActionType, NotPlanned, PlannedState};

    fn plan() -> Plan {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        Plan {
            format: crate::remediate::plan::PLAN_FORMAT.into(),
            created_at: "t".into(),
            bundle: "b".into(),
            bundle_manifest_sha256: None,
            policy: "p".into(),
            max_rotation_period_days: 365,
            rotation_period_days: 365,
            include_pending_deletion: false,
            findings_read: false,
            actions: vec![Action {
                action_id: crate::remediate::action_id(ActionType::EnableRotation, arn),
                action: ActionType::EnableRotation,
                region: "us-east-1".into(),
                account_id: None,
                key_id: "k1".into(),
                key_arn: arn.into(),
                aliases: vec!["alias/app".into()],
                description: None,
                planned_state: PlannedState {
                    key_state: None,
                    key_spec: None,
                    origin: None,
                    key_manager: None,
                    eligibility: None,
                    rotation_enabled: Some(false),
                    rotation_period_days: None,
                },
                rotation_period_days: 365,
                calls: vec![],
                closes_findings: vec![],
                reason: String::new(),
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
        }
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
}
