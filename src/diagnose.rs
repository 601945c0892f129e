//! One key, troubleshot: its state and eligibility, rotation status and
//! history, CloudTrail rotation failures grouped by caller and error, the
//! key-policy statements that deny rotation or name a deleted principal, its
//! grants, the open findings
//! the rules make for it, and a verdict with the fix. The same report is
//! built from a live account ([`live`]) or from a bundle ([`from_bundle`]).
//!
//! The findings are not decided here: the rule engine runs over the key's
//! evidence exactly as `assess` runs over the bundle, so `diagnose` and
//! `assess` cannot disagree about a key.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::aws;
use crate::bundle;
use crate::context::Ctx;
use crate::error::Error;
use crate::frames::time::rfc3339;
use crate::frames::{EVENTS, FINDINGS, KEYS, ROTATIONS};
pub use crate::inventory::grants::Grant;
use crate::inventory::{keys_frame, rotations_frame, Eligibility, KeyRecord, RotationRecord};
use crate::output::display_safe;
use crate::output::{frame_paths, frame_records, read_frame};
use crate::policy::Policy;
use crate::rules::engine::{self, key_matches, Evidence, Finding};
use crate::rules::{facts, key_policy, Rule};
use crate::trail::{events_frame, lookup, EventRow};

/// Failures of one caller with one error code on one API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureGroup {
    /// The role of an assumed-role session, else the principal.
    pub principal: String,
    /// The sessions the role was denied under.
    pub sessions: Vec<String>,
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
    /// Position in the policy, from 1.
    pub index: usize,
    pub denies: Vec<String>,
    pub principal: Option<String>,
    pub condition: Option<String>,
    /// The callers the Deny leaves out; `None` when it applies to everyone.
    pub unaffected: Option<String>,
}

/// A key-policy statement that names, in its Principal or NotPrincipal, the
/// unique id AWS shows for a deleted user or role.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrphanedStatement {
    pub sid: Option<String>,
    /// Position in the policy, from 1.
    pub index: usize,
    pub effect: String,
    /// The ids are named in NotPrincipal.
    pub not_principal: bool,
    /// `Action: a, b` or `NotAction: a, b`.
    pub actions: String,
    pub principals: Vec<key_policy::UniqueIdPrincipal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub key: KeyRecord,
    pub rotations: Vec<RotationRecord>,
    pub rotation_events: Vec<EventRow>,
    pub failures: Vec<FailureGroup>,
    pub deny_statements: Vec<DenyStatement>,
    /// Statements naming a deleted principal by its unique id.
    pub orphaned_principals: Vec<OrphanedStatement>,
    /// `None` when grants were not read (a bundle does not hold them).
    pub grants: Option<Vec<Grant>>,
    /// The moment the findings speak for.
    pub as_of: DateTime<Utc>,
    /// The open findings the rules make for this key, as `assess` writes them.
    pub findings: Vec<Finding>,
    /// What could not be read, so the verdict is not taken for more than it is.
    pub gaps: Vec<String>,
    pub verdict: String,
}

/// Events that belong in a key's rotation history.
const HISTORY_EVENTS: [&str; 4] = [
    "RotateKey",
    "RotateKeyOnDemand",
    "EnableKeyRotation",
    "DisableKeyRotation",
];

/// Groups failed rotation calls by caller, API and error code, the way the
/// `call_failures` table does.
pub fn failures(events: &[EventRow]) -> Vec<FailureGroup> {
    let mut out: Vec<FailureGroup> = facts::call_failures(events, None, None)
        .into_iter()
        .map(|g| FailureGroup {
            principal: g.caller,
            sessions: g.sessions,
            event_name: g.event_name,
            error_code: g.error_code,
            count: g.count,
            first_seen: g.first_seen,
            last_seen: g.last_seen,
            message: g.message,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.principal.cmp(&b.principal)));
    out
}

/// The key-policy statements that deny rotation actions, and those that name
/// a deleted principal, from the flattening the rules read
/// (`policy_statements`).
pub fn policy_statements(
    policy: Option<&str>,
) -> Result<(Vec<DenyStatement>, Vec<OrphanedStatement>), String> {
    let Some(policy) = policy else {
        return Ok((Vec::new(), Vec::new()));
    };
    let statements = key_policy::statements(policy)?;
    let orphaned = statements
        .iter()
        .filter(|s| !s.unique_id_principals.is_empty())
        .map(|s| OrphanedStatement {
            sid: s.sid.clone(),
            index: s.index,
            effect: s.effect.clone(),
            not_principal: s.not_principal,
            actions: s.actions.clone(),
            principals: s.unique_id_principals.clone(),
        })
        .collect();
    let deny = statements
        .into_iter()
        .filter(|s| !s.denied_rotation_actions.is_empty())
        .map(|s| DenyStatement {
            sid: s.sid,
            index: s.index,
            denies: s
                .denied_rotation_actions
                .iter()
                .map(|a| a.to_string())
                .collect(),
            principal: s.principal,
            condition: s.condition,
            unaffected: s.unaffected,
        })
        .collect();
    Ok((deny, orphaned))
}

/// The open findings the rules make for the key `key_arn` from `evidence`,
/// judged as of `as_of`: the whole evidence is assessed, as `assess` does,
/// so rules that look beyond the key (a replica's primary, exemptions) see
/// what they see there.
pub fn open_findings(
    key_arn: &str,
    evidence: &Evidence,
    rules: &[Rule],
    policy: &Policy,
    as_of: DateTime<Utc>,
) -> Result<Vec<Finding>> {
    Ok(engine::assess(evidence, rules, policy, as_of)?
        .into_iter()
        .filter(|f| f.is_open() && f.key_arn.as_deref() == Some(key_arn))
        .collect())
}

/// Diagnoses `wanted` live: the key from KMS in its region (the ARN's, else
/// the first `--region`, else the configured one), its grants, and
/// LookupEvents for the last [`lookup::RETENTION_DAYS`] days; judged as of
/// now by `rules` with `policy`.
///
/// With the organization flags, the key's account (from its ARN) is read
/// through the role assumed in it, as every other read of that account is.
pub async fn live(ctx: &Ctx, wanted: &str, rules: &[Rule], policy: &Policy) -> Result<Report> {
    let account = aws::arn_account(wanted).filter(|_| wanted.starts_with("arn:"));
    let config = &ctx.config_for_account(account).await?;
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
    let evidence = Evidence {
        keys: keys_frame(std::slice::from_ref(&key))?,
        rotations: rotations_frame(&rotations)?,
        events: events_frame(&events)?,
        // LookupEvents has no day ledger: history_mismatch judges only the
        // CloudTrail side, and no region-wide gap is reported for one key.
        trail: None,
        window_start: now - Duration::days(lookup::RETENTION_DAYS),
    };
    let findings = open_findings(&key.arn, &evidence, rules, policy, now)?;
    Ok(build(key, rotations, events, grants, gaps, now, findings))
}

/// The report of the key `wanted` (id, ARN, alias or alias ARN) from the
/// bundle in `dir`, judged as its assessment judged it: as of the recorded
/// as-of (else its collection), with the policy recorded in the manifest
/// unless `policy` overrides it.
pub fn from_bundle(
    dir: &Path,
    wanted: &str,
    policy: Option<Policy>,
    rules: &[Rule],
    allow_modified: bool,
) -> Result<Report> {
    // Verified against its manifest first; read anyway only when asked,
    // and then the report says so.
    let opened = bundle::open(dir, allow_modified)?;
    let integrity = opened.integrity_note();
    let manifest = opened.manifest;
    let keys_df = read_frame(dir, &KEYS)?;
    let keys: Vec<KeyRecord> = frame_records(&keys_df, &KEYS)?;
    let matching: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| key_matches(wanted, &k.arn, &k.aliases))
        .collect();
    let key = match matching.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(Error::usage(
                format!("{}: no such key in {}", display_safe(wanted), dir.display()),
                "give the key's id, ARN or alias as it appears in keys.csv",
            ))
        }
        many => {
            return Err(Error::usage(
                format!(
                    "{}: names {} keys in {} ({})",
                    display_safe(wanted),
                    many.len(),
                    dir.display(),
                    many.iter()
                        .map(|k| k.arn.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "give the key's ARN, or the alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME)",
            ))
        }
    };
    let rotations_df = read_frame(dir, &ROTATIONS)?;
    let events_df = read_frame(dir, &EVENTS)?;
    let coverage = bundle::read_coverage(dir)?;
    let mut gaps: Vec<String> = integrity.into_iter().collect();
    if coverage.trail.is_none() {
        gaps.push(
            "the bundle holds no CloudTrail source: failures and rotation events are unknown"
                .into(),
        );
    }
    let assessed = manifest.assessment.as_ref();
    let as_of = assessed.map_or(manifest.collected_at, |a| a.as_of);
    let policy = match (policy, assessed.and_then(|a| a.policy_applied.clone())) {
        (Some(p), _) => p,
        (None, Some(p)) => p,
        (None, None) => {
            if assessed.is_some() {
                gaps.push("the manifest does not record the policy the bundle was assessed with: built-in defaults used (pass --policy)".into());
            }
            Policy::default()
        }
    };
    if let Some(a) = assessed {
        let changed: Vec<&str> = rules
            .iter()
            .filter(|r| a.rules.get(&r.id).is_some_and(|h| *h != r.sha256()))
            .map(|r| r.id.as_str())
            .collect();
        if !changed.is_empty() {
            gaps.push(format!(
                "the bundle was assessed with other texts of the rules {}: the findings here come from this kmsrot's",
                changed.join(", ")
            ));
        }
    }
    let evidence = Evidence {
        keys: keys_df,
        rotations: rotations_df.clone(),
        events: events_df.clone(),
        trail: coverage.trail.clone(),
        window_start: manifest.audit_window.start,
    };
    let findings = open_findings(&key.arn, &evidence, rules, &policy, as_of)
        .with_context(|| format!("assessing {} for {}", dir.display(), key.arn))?;
    if frame_paths(dir, &FINDINGS)[0].exists() {
        let written: BTreeSet<String> =
            frame_records::<Finding>(&read_frame(dir, &FINDINGS)?, &FINDINGS)?
                .into_iter()
                .filter(|f| f.is_open() && f.key_arn.as_deref() == Some(key.arn.as_str()))
                .map(|f| f.finding_id)
                .collect();
        let now: BTreeSet<String> = findings.iter().map(|f| f.finding_id.clone()).collect();
        if written != now {
            gaps.push(format!(
                "findings.csv lists other open findings for this key than the rules make now ({} there, {} here): the policy or rules changed since the assessment; run kmsrot assess again",
                written.len(),
                now.len()
            ));
        }
    }
    let rotations: Vec<RotationRecord> =
        frame_records::<RotationRecord>(&rotations_df, &ROTATIONS)?
            .into_iter()
            .filter(|r| r.key_arn == key.arn)
            .collect();
    let events: Vec<EventRow> = frame_records::<EventRow>(&events_df, &EVENTS)?
        .into_iter()
        .filter(|e| e.key_arn.as_deref() == Some(key.arn.as_str()))
        .filter(|e| e.event_time.is_none_or(|t| t <= as_of))
        .collect();
    Ok(build(key, rotations, events, None, gaps, as_of, findings))
}

/// Builds the report and its verdict from the key's evidence and the open
/// findings the rules made for it.
pub fn build(
    key: KeyRecord,
    mut rotations: Vec<RotationRecord>,
    events: Vec<EventRow>,
    grants: Option<Vec<Grant>>,
    mut gaps: Vec<String>,
    as_of: DateTime<Utc>,
    findings: Vec<Finding>,
) -> Report {
    rotations.sort_by_key(|r| r.rotation_date);
    let mut rotation_events: Vec<EventRow> = events
        .iter()
        .filter(|e| HISTORY_EVENTS.contains(&e.event_name.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    rotation_events.sort_by_key(|e| e.event_time);
    let failures = failures(&events);
    let (deny, orphaned) = match policy_statements(key.key_policy.as_deref()) {
        Ok(found) => found,
        Err(e) => {
            gaps.push(format!("key policy not analysed: {e}"));
            (Vec::new(), Vec::new())
        }
    };
    if key.key_policy.is_none() && key.eligibility != Some(Eligibility::AwsManaged) {
        gaps.push("key policy not read (GetKeyPolicy failed or was not collected)".into());
    }
    let verdict = verdict(&key, &rotations, &events, &findings, as_of);
    Report {
        key,
        rotations,
        rotation_events,
        failures,
        deny_statements: deny,
        orphaned_principals: orphaned,
        grants,
        as_of,
        findings,
        gaps,
        verdict,
    }
}

/// The verdict: what the findings say, most severe first, with the fix of
/// each; or why there is nothing to judge.
fn verdict(
    key: &KeyRecord,
    rotations: &[RotationRecord],
    events: &[EventRow],
    findings: &[Finding],
    as_of: DateTime<Utc>,
) -> String {
    let arn = &key.arn;
    let Some(elig) = key.eligibility else {
        return format!(
            "Not determined: {} could not be described ({}). Grant kms:DescribeKey, kms:GetKeyRotationStatus and kms:GetKeyPolicy to the role running kmsrot, in the key policy as well as in IAM, and run diagnose again.",
            arn,
            key.status_error.as_deref().unwrap_or("no error recorded")
        );
    };
    let mut parts = Vec::new();
    if elig != Eligibility::Eligible {
        parts.push(key.eligibility_reason.clone().unwrap_or_default());
    }
    if elig == Eligibility::Eligible && key.rotation_enabled.is_none() {
        parts.push(format!(
            "The rotation status of {arn} could not be read ({}): grant kms:GetKeyRotationStatus to the role running kmsrot.",
            key.status_error.as_deref().unwrap_or("no error recorded")
        ));
    }
    if findings.is_empty() {
        let last = facts::last_rotation(key, rotations, events);
        let state = match (elig, key.rotation_enabled) {
            (Eligibility::Eligible, Some(true)) => format!(
                "Rotation is on ({}-day period){}.",
                key.rotation_period_days
                    .unwrap_or(facts::DEFAULT_PERIOD_DAYS),
                last.map(|(t, source)| format!(
                    "; last rotation {} ({})",
                    rfc3339(t),
                    source.as_str()
                ))
                .unwrap_or_default()
            ),
            _ => String::new(),
        };
        parts.push(format!(
            "{state} No rule finds anything open for this key as of {}.",
            rfc3339(as_of)
        ));
    } else {
        let mut sorted: Vec<&Finding> = findings.iter().collect();
        sorted.sort_by(|a, b| (a.severity, &a.rule_id).cmp(&(b.severity, &b.rule_id)));
        parts.push(format!(
            "{} open finding(s) as of {}:",
            sorted.len(),
            rfc3339(as_of)
        ));
        for f in &sorted {
            parts.push(format!("[{}] {}: {}", f.severity, f.rule_id, f.detail));
        }
        let mut fixes: Vec<&str> = Vec::new();
        for f in &sorted {
            if !fixes.contains(&f.remediation.as_str()) {
                fixes.push(&f.remediation);
            }
        }
        parts.push(format!(
            "Fix: {}",
            fixes
                .iter()
                .map(|r| r.replace("KEY_ARN", arn))
                .collect::<Vec<_>>()
                .join(" Then: ")
        ));
    }
    parts.retain(|p| !p.trim().is_empty());
    parts.join(" ")
}

/// The report as text for a person.
pub fn render_text(r: &Report) -> String {
    let k = &r.key;
    // Every value is evidence (an alias, a principal, an error message) and
    // is printed with terminal control characters escaped.
    let d = |v: &str| display_safe(v);
    let opt = |v: &Option<String>| display_safe(v.as_deref().unwrap_or("-"));
    let time = |v: Option<DateTime<Utc>>| v.map(rfc3339).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    s.push_str(&format!("Key        {}\n", d(&k.arn)));
    if !k.aliases.is_empty() {
        s.push_str(&format!("Aliases    {}\n", d(&k.aliases.join(", "))));
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
                .map(|c| format!("  FAILED {}", d(c)))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "\nRotation failures by principal: {}\n",
        r.failures.len()
    ));
    for f in &r.failures {
        s.push_str(&format!(
            "  {} {} {} x{} ({} .. {}){}: {}\n",
            d(&f.principal),
            d(&f.event_name),
            d(&f.error_code),
            f.count,
            time(f.first_seen),
            time(f.last_seen),
            if f.sessions.is_empty() {
                String::new()
            } else {
                format!(" sessions {}", d(&f.sessions.join(", ")))
            },
            d(f.message.as_deref().unwrap_or("-"))
        ));
    }
    s.push_str(&format!(
        "\nKey policy statements denying rotation: {}\n",
        r.deny_statements.len()
    ));
    for st in &r.deny_statements {
        s.push_str(&format!(
            "  {}: Deny {} to {}{}{}\n",
            d(&st
                .sid
                .clone()
                .unwrap_or_else(|| format!("#{} (no Sid)", st.index))),
            d(&st.denies.join(", ")),
            d(st.principal.as_deref().unwrap_or("-")),
            st.condition
                .as_deref()
                .map(|c| format!(" when {}", d(c)))
                .unwrap_or_default(),
            st.unaffected
                .as_deref()
                .map(|u| format!("; leaves out {}", d(u)))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "\nKey policy statements naming a deleted principal: {}\n",
        r.orphaned_principals.len()
    ));
    for o in &r.orphaned_principals {
        let ids = o
            .principals
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "  {}: {} {} to {}{ids} (a unique id: the principal was deleted)\n",
            o.sid
                .clone()
                .unwrap_or_else(|| format!("#{} (no Sid)", o.index)),
            o.effect,
            o.actions,
            if o.not_principal { "everyone but " } else { "" },
        ));
    }
    match &r.grants {
        None => s.push_str("\nGrants: not read (bundles do not hold grants; run diagnose live)\n"),
        Some(g) => {
            s.push_str(&format!("\nGrants: {}\n", g.len()));
            for grant in g {
                s.push_str(&format!(
                    "  {} to {}: {}\n",
                    d(&grant.grant_id),
                    d(grant.grantee.as_deref().unwrap_or("-")),
                    d(&grant.operations.join(", "))
                ));
            }
        }
    }
    s.push_str(&format!(
        "\nOpen findings as of {}: {}\n",
        rfc3339(r.as_of),
        r.findings.len()
    ));
    for f in &r.findings {
        s.push_str(&format!(
            "  {:<8} {:<28} {}\n",
            f.severity.as_str(),
            d(&f.rule_id),
            d(&f.finding_id)
        ));
    }
    if !r.gaps.is_empty() {
        s.push_str("\nNot seen:\n");
        for g in &r.gaps {
            s.push_str(&format!("  {}\n", d(g)));
        }
    }
    s.push_str(&format!("\nVerdict\n  {}\n", d(&r.verdict)));
    s
}
