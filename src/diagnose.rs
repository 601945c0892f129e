//! One key, troubleshot: its state and eligibility, rotation status and
//! history, CloudTrail rotation failures grouped by principal and error, the
//! key-policy statements that deny rotation, its grants, and a verdict with
//! the fix. The same report is built from a live account ([`live`]) or from
//! a bundle ([`from_bundle`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws;
use crate::bundle::{self, Manifest};
use crate::context::Ctx;
use crate::error::Error;
use crate::frames::time::rfc3339;
use crate::frames::{EVENTS, KEYS, ROTATIONS};
pub use crate::inventory::grants::Grant;
use crate::inventory::{Eligibility, KeyRecord, RotationRecord};
use crate::output::{frame_records, read_frame};
use crate::rules::engine::key_matches;
use crate::rules::key_policy;
use crate::trail::{lookup, EventRow};

/// Failures of one principal with one error code on one API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureGroup {
    pub principal: String,
    pub event_name: String,
    pub error_code: String,
    pub count: usize,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DenyStatement {
    pub sid: Option<String>,
    pub denies: Vec<String>,
    pub principal: Option<String>,
    pub condition: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub key: KeyRecord,
    pub rotations: Vec<RotationRecord>,
    pub rotation_events: Vec<EventRow>,
    pub failures: Vec<FailureGroup>,
    pub deny_statements: Vec<DenyStatement>,
    /// `None` when grants were not read (a bundle does not hold them).
    pub grants: Option<Vec<Grant>>,
    /// What could not be read, so the verdict is not taken for more than it is.
    pub gaps: Vec<String>,
    pub verdict: String,
}

const ROTATION_APIS: [&str; 5] = [
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "GetKeyRotationStatus",
    "ListKeyRotations",
];

pub fn is_access_denied(code: &str) -> bool {
    matches!(code, "AccessDenied" | "AccessDeniedException")
}

/// Groups failed rotation calls by principal, API and error code.
pub fn failures(events: &[EventRow]) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<(String, String, String), FailureGroup> = BTreeMap::new();
    for e in events {
        let (Some(name), Some(code)) = (e.event_name.as_deref(), e.error_code.as_deref()) else {
            continue;
        };
        if !ROTATION_APIS.contains(&name) {
            continue;
        }
        let principal = e
            .principal_arn
            .clone()
            .unwrap_or_else(|| "unknown principal".into());
        let g = groups
            .entry((principal.clone(), name.to_string(), code.to_string()))
            .or_insert_with(|| FailureGroup {
                principal,
                event_name: name.to_string(),
                error_code: code.to_string(),
                count: 0,
                first_seen: None,
                last_seen: None,
                message: None,
            });
        g.count += 1;
        if let Some(t) = e.event_time {
            g.first_seen = Some(g.first_seen.map_or(t, |f| f.min(t)));
            if g.last_seen.is_none_or(|l| t >= l) {
                g.last_seen = Some(t);
                g.message = e.error_message.clone().or(g.message.take());
            }
        }
    }
    let mut out: Vec<FailureGroup> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.principal.cmp(&b.principal)));
    out
}

/// The key-policy statements that deny turning rotation on.
pub fn deny_statements(policy: Option<&str>) -> Result<Vec<DenyStatement>, String> {
    let Some(policy) = policy else {
        return Ok(Vec::new());
    };
    Ok(key_policy::statements(policy)?
        .into_iter()
        .filter(|s| !s.denied_rotation_actions.is_empty())
        .map(|s| DenyStatement {
            sid: s.sid,
            denies: s
                .denied_rotation_actions
                .iter()
                .map(|a| a.to_string())
                .collect(),
            principal: s.principal,
            condition: s.condition,
        })
        .collect())
}

/// Builds the report and its verdict.
pub fn build(
    key: KeyRecord,
    mut rotations: Vec<RotationRecord>,
    events: Vec<EventRow>,
    grants: Option<Vec<Grant>>,
    mut gaps: Vec<String>,
    now: DateTime<Utc>,
) -> Report {
    rotations.sort_by_key(|r| r.rotation_date);
    let mut rotation_events: Vec<EventRow> = events
        .iter()
        .filter(|e| {
            matches!(
                e.event_name.as_deref(),
                Some(
                    "RotateKey" | "RotateKeyOnDemand" | "EnableKeyRotation" | "DisableKeyRotation"
                )
            )
        })
        .cloned()
        .collect();
    rotation_events.sort_by_key(|e| e.event_time);
    let failures = failures(&events);
    let deny = match deny_statements(key.key_policy.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            gaps.push(format!("key policy not analysed: {e}"));
            Vec::new()
        }
    };
    if key.key_policy.is_none() && key.eligibility != Some(Eligibility::AwsManaged) {
        gaps.push("key policy not read (GetKeyPolicy failed or was not collected)".into());
    }
    let verdict = verdict(&key, &rotations, &rotation_events, &failures, &deny, now);
    Report {
        key,
        rotations,
        rotation_events,
        failures,
        deny_statements: deny,
        grants,
        gaps,
        verdict,
    }
}

fn verdict(
    key: &KeyRecord,
    rotations: &[RotationRecord],
    rotation_events: &[EventRow],
    failures: &[FailureGroup],
    deny: &[DenyStatement],
    now: DateTime<Utc>,
) -> String {
    let arn = &key.arn;
    let Some(elig) = key.eligibility else {
        return format!(
            "Not determined: {} could not be described ({}). Grant kms:DescribeKey, kms:GetKeyRotationStatus and kms:GetKeyPolicy to the role running kmsrot, in the key policy as well as in IAM, and run diagnose again.",
            arn,
            key.status_error.as_deref().unwrap_or("no error recorded")
        );
    };
    let reason = key.eligibility_reason.clone().unwrap_or_default();
    match elig {
        Eligibility::AwsManaged => {
            return format!("{reason} Nothing to fix.")
        }
        Eligibility::UnsupportedSpec | Eligibility::CustomKeyStore | Eligibility::ExternalOrigin => {
            return format!("Automatic rotation cannot be turned on for this key. {reason}")
        }
        Eligibility::Replica => return reason,
        Eligibility::PendingDeletion => {
            return format!(
                "{reason} If the key is still needed: aws kms cancel-key-deletion --key-id {arn}, then aws kms enable-key --key-id {arn}, then enable rotation."
            )
        }
        Eligibility::Unavailable => return reason,
        Eligibility::Disabled | Eligibility::Eligible => {}
    }
    let denied: Vec<&FailureGroup> = failures
        .iter()
        .filter(|f| is_access_denied(&f.error_code) && f.event_name == "EnableKeyRotation")
        .collect();
    let deny_text = deny
        .iter()
        .map(|d| {
            format!(
                "statement {} denies {}{}",
                d.sid.as_deref().unwrap_or("(no Sid)"),
                d.denies.join(" and "),
                d.condition
                    .as_deref()
                    .map(|c| format!(" when {c}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut parts = Vec::new();
    match key.rotation_enabled {
        Some(false) => {
            parts.push(format!("Automatic rotation is OFF on {arn}."));
            if let Some(off) = rotation_events
                .iter()
                .rev()
                .find(|e| e.event_name.as_deref() == Some("DisableKeyRotation") && e.error_code.is_none())
            {
                parts.push(format!(
                    "It was turned off by {} at {}.",
                    off.principal_arn.as_deref().unwrap_or("an unknown principal"),
                    off.event_time.map(rfc3339).unwrap_or_else(|| "an unknown time".into())
                ));
            }
            if elig == Eligibility::Disabled {
                parts.push(format!(
                    "The key is Disabled, so EnableKeyRotation fails with DisabledException: run aws kms enable-key --key-id {arn} first."
                ));
            }
            if !deny.is_empty() {
                parts.push(format!(
                    "The key policy blocks the fix ({deny_text}); a Deny in the key policy overrides every Allow, so narrow that statement before enabling rotation."
                ));
            }
            for f in &denied {
                parts.push(format!(
                    "{} was denied EnableKeyRotation {} time(s) (last {}): grant kms:EnableKeyRotation to it in the key policy and in its IAM policy, and check SCPs and permission boundaries.",
                    f.principal,
                    f.count,
                    f.last_seen.map(rfc3339).unwrap_or_else(|| "unknown".into())
                ));
            }
            parts.push(format!(
                "Fix: kmsrot plan/approve/apply, or aws kms enable-key-rotation --key-id {arn} --rotation-period-in-days 365."
            ));
        }
        Some(true) => {
            let period = key.rotation_period_days.unwrap_or(365);
            let last_listed = rotations.iter().filter_map(|r| r.rotation_date).max();
            let last_trail = rotation_events
                .iter()
                .filter(|e| {
                    matches!(e.event_name.as_deref(), Some("RotateKey" | "RotateKeyOnDemand")) && e.error_code.is_none()
                })
                .filter_map(|e| e.event_time)
                .max();
            let last = last_listed.max(last_trail);
            match last {
                Some(t) => {
                    let age = (now - t).num_days();
                    if age > period {
                        parts.push(format!(
                            "Rotation is on, but the last rotation was {} ({age} days ago), longer than the {period}-day period: KMS missed a cycle. Rotate now with aws kms rotate-key-on-demand --key-id {arn} and open a support case if it recurs.",
                            rfc3339(t)
                        ));
                    } else {
                        parts.push(format!(
                            "Rotation is on and the last rotation was {} ({age} days ago), within the {period}-day period. Compliant.",
                            rfc3339(t)
                        ));
                    }
                }
                None => parts.push(format!(
                    "Rotation is on with a {period}-day period; no rotation is recorded yet{}.",
                    key.next_rotation_date
                        .map(|n| format!(", the next is due {}", rfc3339(n)))
                        .unwrap_or_default()
                )),
            }
            if !deny.is_empty() {
                parts.push(format!(
                    "Note: the key policy denies rotation changes ({deny_text}); on-demand rotation may be blocked."
                ));
            }
        }
        None => parts.push(format!(
            "The rotation status of {arn} could not be read ({}): grant kms:GetKeyRotationStatus to the role running kmsrot.",
            key.status_error.as_deref().unwrap_or("no error recorded")
        )),
    }
    if key.rotation_enabled != Some(false) && !denied.is_empty() {
        parts.push(format!(
            "CloudTrail shows {} principal(s) denied EnableKeyRotation on this key; see the failures above.",
            denied.len()
        ));
    }
    parts.join(" ")
}

/// The report as text for a person.
pub fn render_text(r: &Report) -> String {
    let k = &r.key;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |v: Option<DateTime<Utc>>| v.map(rfc3339).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    s.push_str(&format!("Key        {}\n", k.arn));
    if !k.aliases.is_empty() {
        s.push_str(&format!("Aliases    {}\n", k.aliases.join(", ")));
    }
    s.push_str(&format!(
        "Type       {} / {} / {} / {}\n",
        opt(&k.key_manager),
        opt(&k.key_spec),
        opt(&k.origin),
        opt(&k.multi_region_role).replace('-', "single-Region")
    ));
    s.push_str(&format!(
        "State      {}{}\n",
        opt(&k.key_state),
        k.deletion_date
            .map(|d| format!(" (deletion {})", rfc3339(d)))
            .unwrap_or_default()
    ));
    s.push_str(&format!(
        "Eligible   {} — {}\n",
        k.eligibility.map_or("unknown", |e| e.as_str()),
        opt(&k.eligibility_reason)
    ));
    s.push_str(&format!(
        "Rotation   enabled={} period={} next={} on-demand-started={}\n",
        k.rotation_enabled
            .map_or("unknown".into(), |b| b.to_string()),
        k.rotation_period_days
            .map_or("unknown".into(), |d| format!("{d}d")),
        time(k.next_rotation_date),
        time(k.on_demand_rotation_start_date)
    ));
    s.push_str(&format!(
        "\nRotation history (ListKeyRotations): {}\n",
        r.rotations.len()
    ));
    for rot in &r.rotations {
        s.push_str(&format!(
            "  {}  {}\n",
            time(rot.rotation_date),
            opt(&rot.rotation_type)
        ));
    }
    s.push_str(&format!(
        "\nRotation events (CloudTrail): {}\n",
        r.rotation_events.len()
    ));
    for e in &r.rotation_events {
        s.push_str(&format!(
            "  {}  {:<20} {}{}\n",
            time(e.event_time),
            opt(&e.event_name),
            opt(&e.principal_arn),
            e.error_code
                .as_deref()
                .map(|c| format!("  FAILED {c}"))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "\nRotation failures by principal: {}\n",
        r.failures.len()
    ));
    for f in &r.failures {
        s.push_str(&format!(
            "  {} {} {} x{} ({} .. {}): {}\n",
            f.principal,
            f.event_name,
            f.error_code,
            f.count,
            time(f.first_seen),
            time(f.last_seen),
            f.message.as_deref().unwrap_or("-")
        ));
    }
    s.push_str(&format!(
        "\nKey policy statements denying rotation: {}\n",
        r.deny_statements.len()
    ));
    for d in &r.deny_statements {
        s.push_str(&format!(
            "  {}: Deny {} to {}{}\n",
            d.sid.as_deref().unwrap_or("(no Sid)"),
            d.denies.join(", "),
            d.principal.as_deref().unwrap_or("-"),
            d.condition
                .as_deref()
                .map(|c| format!(" when {c}"))
                .unwrap_or_default()
        ));
    }
    match &r.grants {
        None => s.push_str("\nGrants: not read (bundles do not hold grants; run diagnose live)\n"),
        Some(g) => {
            s.push_str(&format!("\nGrants: {}\n", g.len()));
            for grant in g {
                s.push_str(&format!(
                    "  {} to {}: {}\n",
                    grant.grant_id,
                    grant.grantee.as_deref().unwrap_or("-"),
                    grant.operations.join(", ")
                ));
            }
        }
    }
    if !r.gaps.is_empty() {
        s.push_str("\nNot seen:\n");
        for g in &r.gaps {
            s.push_str(&format!("  {g}\n"));
        }
    }
    s.push_str(&format!("\nVerdict\n  {}\n", r.verdict));
    s
}

/// Diagnoses `wanted` (key id, ARN, alias) from a bundle, offline. Grants are
/// not in bundles; the report says so.
pub fn from_bundle(dir: &Path, wanted: &str) -> Result<Report> {
    let manifest = Manifest::read(dir)?;
    let keys: Vec<KeyRecord> = frame_records(&read_frame(dir, &KEYS)?, &KEYS)?;
    let Some(key) = keys
        .iter()
        .find(|k| key_matches(wanted, &k.arn, &k.aliases))
        .cloned()
    else {
        return Err(Error::usage(
            format!("{wanted}: no such key in {}", dir.display()),
            "give the key's id, ARN or alias as it appears in keys.csv",
        ));
    };
    let rotations: Vec<RotationRecord> =
        frame_records::<RotationRecord>(&read_frame(dir, &ROTATIONS)?, &ROTATIONS)?
            .into_iter()
            .filter(|r| r.key_arn == key.arn)
            .collect();
    let events: Vec<EventRow> = frame_records::<EventRow>(&read_frame(dir, &EVENTS)?, &EVENTS)?
        .into_iter()
        .filter(|e| e.key_arn.as_deref() == Some(key.arn.as_str()))
        .collect();
    let coverage = bundle::read_coverage(dir)?;
    let mut gaps = Vec::new();
    if coverage.trail.is_none() {
        gaps.push(
            "the bundle holds no CloudTrail source: failures and rotation events are unknown"
                .into(),
        );
    }
    let as_of = manifest
        .assessment
        .as_ref()
        .map_or(manifest.collected_at, |a| a.as_of);
    Ok(build(key, rotations, events, None, gaps, as_of))
}

/// Diagnoses `wanted` live: the key from KMS in its region (the ARN's, else
/// the first `--region`, else the configured one), its grants, and
/// LookupEvents for the last 90 days.
pub async fn live(ctx: &Ctx, wanted: &str) -> Result<Report> {
    let config = ctx.aws().await?;
    let region = match aws::arn_region(wanted).filter(|_| wanted.starts_with("arn:")) {
        Some(r) => r.to_string(),
        None => match ctx
            .aws_options()
            .regions
            .iter()
            .find(|r| r.as_str() != "all")
        {
            Some(r) => r.clone(),
            None => aws::default_region(config)?,
        },
    };
    let kms = aws::kms(config, &region);
    let (key, rotations, errors) = crate::inventory::read_one(&kms, &region, wanted)
        .await
        .map_err(|e| {
            Error::aws(
                format!("DescribeKey of {wanted} in {region}"),
                e,
                "check the key id, ARN or alias and the region; the caller needs kms:DescribeKey",
            )
        })?;
    let mut gaps: Vec<String> = errors
        .iter()
        .map(|e| format!("{} failed: {}", e.operation, e.error))
        .collect();
    let grants = match crate::inventory::grants::list(&kms, &key.arn).await {
        Ok(g) => Some(g),
        Err(e) => {
            gaps.push(format!("ListGrants failed: {e}"));
            None
        }
    };
    let now = ctx.clock.now();
    let (events, lookup_gaps) = lookup::key_events(config, &region, &key.arn, now).await;
    gaps.extend(lookup_gaps);
    gaps.push(format!(
        "CloudTrail read from LookupEvents: the last {} days only; diagnose --bundle covers the archive",
        lookup::RETENTION_DAYS
    ));
    Ok(build(key, rotations, events, grants, gaps, now))
}
