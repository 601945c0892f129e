//! Runs the rules through polars SQL over a bundle's frames and turns their
//! rows into findings: stable ids, severities after policy overrides, and
//! exemptions applied.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use polars::prelude::{DataFrame, DataType, IntoLazy};
use polars::sql::SQLContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::key_policy;
use super::Rule;
use crate::frames::{
    check_columns, col, Cell, FrameBuilder, EXEMPTIONS, FINDINGS, PARAMS, POLICY_STATEMENTS,
    TRAIL_DAYS, TRAIL_INTEGRITY_PROBLEMS, TRAIL_LOG_DAYS,
};
use crate::policy::{Exemption, Policy, Severity};
use crate::trail::TrailCoverage;

/// What the rules read.
pub struct Evidence {
    pub keys: DataFrame,
    pub rotations: DataFrame,
    pub events: DataFrame,
    /// The trail scan's coverage; `None` when no CloudTrail source was read.
    pub trail: Option<TrailCoverage>,
    /// Start of the audit window (its end is `as_of`).
    pub window_start: DateTime<Utc>,
}

/// One finding, as the `findings` frame holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub finding_id: String,
    pub rule_id: String,
    pub severity: Severity,
    pub status: FindingStatus,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub key_arn: Option<String>,
    pub title: String,
    pub detail: String,
    pub evidence: Option<String>,
    pub controls: String,
    pub remediation: String,
    pub exemption_reason: Option<String>,
    pub exemption_expires: Option<String>,
}

/// Whether a finding counts against the key, or an active exemption covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Open,
    Exempted,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Exempted => "exempted",
        }
    }
}

impl std::fmt::Display for FindingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Finding {
    pub fn is_open(&self) -> bool {
        self.status == FindingStatus::Open
    }
}

/// A stable id for the same rule, key and subject, month after month.
pub fn finding_id(
    rule_id: &str,
    account: &str,
    region: &str,
    key_arn: &str,
    subject: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [rule_id, account, region, key_arn, subject] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("kr-{}", &hex::encode(h.finalize())[..20])
}

/// Runs every rule and returns the findings, sorted by severity, rule, key.
pub fn assess(
    evidence: &Evidence,
    rules: &[Rule],
    policy: &Policy,
    as_of: DateTime<Utc>,
) -> Result<Vec<Finding>> {
    let mut ctx = SQLContext::new();
    ctx.register("keys", evidence.keys.clone().lazy());
    ctx.register("rotations", evidence.rotations.clone().lazy());
    // Aliases resolved through the inventory, marked (see rules::derived).
    ctx.register(
        "events",
        super::derived::events_for_rules(&evidence.events, &evidence.keys)?.lazy(),
    );
    ctx.register("params", params_frame(evidence, policy, as_of)?.lazy());
    let (days, log_days) = trail_frames(evidence.trail.as_ref())?;
    ctx.register("trail_days", days.lazy());
    ctx.register("trail_log_days", log_days.lazy());
    ctx.register(
        TRAIL_INTEGRITY_PROBLEMS.name,
        integrity_frame(evidence.trail.as_ref())?.lazy(),
    );
    ctx.register(
        "policy_statements",
        policy_statements_frame(&evidence.keys)?.lazy(),
    );
    ctx.register(
        "exemptions",
        exemptions_frame(&policy.exemptions, as_of)?.lazy(),
    );
    for d in super::DERIVED_TABLES {
        let df = ctx
            .execute(d.sql)
            .and_then(|lf| lf.collect())
            .map_err(|e| anyhow::anyhow!("{}: {}", d.origin, one_line(&e.to_string())))?;
        check_columns(&df, &d.schema).with_context(|| d.origin.to_string())?;
        ctx.register(d.schema.name, df.lazy());
    }

    let aliases = aliases_by_arn(&evidence.keys)?;
    let mut findings = Vec::new();
    for rule in rules {
        let df = ctx
            .execute(&rule.sql)
            .and_then(|lf| lf.collect())
            .map_err(|e| anyhow::anyhow!("{}: {}", rule.origin, one_line(&e.to_string())))?;
        for row in rule_rows(&df, rule)? {
            findings.push(make_finding(rule, row, policy, as_of, &aliases));
        }
    }
    findings.sort_by(|a, b| {
        (
            a.severity,
            &a.rule_id,
            &a.account_id,
            &a.region,
            &a.key_arn,
            &a.finding_id,
        )
            .cmp(&(
                b.severity,
                &b.rule_id,
                &b.account_id,
                &b.region,
                &b.key_arn,
                &b.finding_id,
            ))
    });
    // Two rows of one rule for the same key and subject are one finding.
    findings.dedup_by(|a, b| a.finding_id == b.finding_id);
    Ok(findings)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct RuleRow {
    account_id: Option<String>,
    region: Option<String>,
    key_arn: Option<String>,
    detail: String,
    evidence: Option<String>,
    subject: Option<String>,
}

fn string_column(
    df: &DataFrame,
    name: &str,
    rule: &Rule,
    required: bool,
) -> Result<Vec<Option<String>>> {
    let Ok(column) = df.column(name) else {
        if required {
            bail!(
                "{}: the query must return a `{name}` column (it returned: {})",
                rule.origin,
                df.get_column_names()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(vec![None; df.height()]);
    };
    let s = column
        .as_materialized_series()
        .cast(&DataType::String)
        .with_context(|| format!("{}: column {name} cannot be read as text", rule.origin))?;
    let ca = s
        .str()
        .map_err(|e| anyhow::anyhow!("{}: {e}", rule.origin))?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

fn rule_rows(df: &DataFrame, rule: &Rule) -> Result<Vec<RuleRow>> {
    let account = string_column(df, col::ACCOUNT_ID, rule, true)?;
    let region = string_column(df, col::REGION, rule, true)?;
    let key = string_column(df, col::KEY_ARN, rule, true)?;
    let detail = string_column(df, col::DETAIL, rule, true)?;
    let evidence = string_column(df, col::EVIDENCE, rule, false)?;
    let subject = string_column(df, col::SUBJECT, rule, false)?;
    Ok((0..df.height())
        .map(|i| RuleRow {
            account_id: account[i].clone(),
            region: region[i].clone(),
            key_arn: key[i].clone(),
            detail: detail[i].clone().unwrap_or_else(|| rule.title.clone()),
            evidence: evidence[i].clone(),
            subject: subject[i].clone(),
        })
        .collect())
}

fn make_finding(
    rule: &Rule,
    row: RuleRow,
    policy: &Policy,
    as_of: DateTime<Utc>,
    aliases: &HashMap<String, Vec<String>>,
) -> Finding {
    let id = finding_id(
        &rule.id,
        row.account_id.as_deref().unwrap_or(""),
        row.region.as_deref().unwrap_or(""),
        row.key_arn.as_deref().unwrap_or(""),
        row.subject.as_deref().unwrap_or(""),
    );
    let mut finding = Finding {
        finding_id: id,
        rule_id: rule.id.clone(),
        severity: policy.severity_for(&rule.id, rule.severity),
        status: FindingStatus::Open,
        account_id: row.account_id,
        region: row.region,
        key_arn: row.key_arn,
        title: rule.title.clone(),
        detail: row.detail,
        evidence: row.evidence,
        controls: rule.controls.join("; "),
        remediation: rule.remediation.clone(),
        exemption_reason: None,
        exemption_expires: None,
    };
    // The expired-exemption report must not be exempted by the very exemption.
    if rule.id == "exemption_expired" {
        return finding;
    }
    let Some(arn) = finding.key_arn.as_deref() else {
        return finding;
    };
    let key_aliases = aliases.get(arn).map(Vec::as_slice).unwrap_or(&[]);
    let matching: Vec<&Exemption> = policy
        .exemptions
        .iter()
        .filter(|e| e.covers_rule(&rule.id) && key_matches(&e.key, arn, key_aliases))
        .collect();
    if let Some(active) = matching.iter().find(|e| !e.is_expired(as_of)) {
        finding.status = FindingStatus::Exempted;
        finding.exemption_reason = Some(format!(
            "{} (approved by {})",
            active.reason, active.approver
        ));
        finding.exemption_expires = Some(active.expires.to_string());
    } else if let Some(expired) = matching.first() {
        // Stays open; the reader sees which exemption lapsed and when.
        finding.exemption_reason = Some(format!(
            "EXPIRED exemption: {} (approved by {})",
            expired.reason, expired.approver
        ));
        finding.exemption_expires = Some(expired.expires.to_string());
    }
    finding
}

/// An exemption names a key by ARN, key id, alias, or alias ARN
/// ([`crate::policy::names`] is the one matcher).
pub fn key_matches(wanted: &str, arn: &str, aliases: &[String]) -> bool {
    crate::policy::names(wanted, &crate::policy::Subject::Key { arn, aliases })
}

fn aliases_by_arn(keys: &DataFrame) -> Result<HashMap<String, Vec<String>>> {
    let mut out = HashMap::new();
    if keys.height() == 0 {
        return Ok(out);
    }
    let arns = keys.column(col::ARN)?.as_materialized_series().clone();
    let arns = arns.str()?;
    let lists = keys.column(col::ALIASES)?.as_materialized_series().clone();
    let lists = lists.list()?;
    for i in 0..keys.height() {
        let Some(arn) = arns.get(i) else { continue };
        let names: Vec<String> = match lists.get_as_series(i) {
            Some(s) => s.str()?.iter().flatten().map(str::to_string).collect(),
            None => Vec::new(),
        };
        out.insert(arn.to_string(), names);
    }
    Ok(out)
}

fn params_frame(evidence: &Evidence, policy: &Policy, as_of: DateTime<Utc>) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(PARAMS);
    let sources = evidence
        .trail
        .as_ref()
        .map_or(0, |t| t.sources.len() as i64);
    b.push(vec![
        (col::AS_OF, Cell::Time(Some(as_of))),
        (col::WINDOW_START, Cell::Time(Some(evidence.window_start))),
        (col::WINDOW_END, Cell::Time(Some(as_of))),
        (
            col::MAX_PERIOD_DAYS,
            Cell::Int(Some(policy.max_rotation_period_days)),
        ),
        (col::GRACE_DAYS, Cell::Int(Some(policy.grace_days))),
        (col::TRAIL_SOURCES, Cell::Int(Some(sources))),
    ])?;
    b.finish()
}

/// `2025-03-01, 2025-03-02 and 3 more`: at most `n` items of a list.
fn shortened(items: &[String], n: usize) -> String {
    let shown = items[..items.len().min(n)].join(", ");
    match items.len().saturating_sub(n) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn trail_frames(trail: Option<&TrailCoverage>) -> Result<(DataFrame, DataFrame)> {
    let mut days = FrameBuilder::new(TRAIL_DAYS);
    let mut log_days = FrameBuilder::new(TRAIL_LOG_DAYS);
    let validated = trail.is_some_and(|t| t.integrity.is_some());
    for d in trail.map(|t| t.days.as_slice()).unwrap_or(&[]) {
        let missing: Vec<String> = d.days_missing.iter().map(|d| d.to_string()).collect();
        days.push(vec![
            (col::ACCOUNT_ID, Cell::str(&d.account_id)),
            (col::REGION, Cell::str(&d.region)),
            (
                col::DAYS_IN_WINDOW,
                Cell::Int(Some(
                    (d.days_with_logs.len() + d.days_quiet.len() + d.days_missing.len()) as i64,
                )),
            ),
            (
                col::DAYS_WITH_LOGS,
                Cell::Int(Some(d.days_with_logs.len() as i64)),
            ),
            (
                col::DAYS_MISSING,
                Cell::Int(Some(d.days_missing.len() as i64)),
            ),
            (col::MISSING_DAYS, Cell::str(shortened(&missing, 10))),
            (col::DAYS_QUIET, Cell::Int(Some(d.days_quiet.len() as i64))),
            (col::VALIDATED, Cell::Bool(Some(validated))),
        ])?;
        for day in &d.days_with_logs {
            log_days.push(vec![
                (col::ACCOUNT_ID, Cell::str(&d.account_id)),
                (col::REGION, Cell::str(&d.region)),
                (col::DAY, Cell::str(day.to_string())),
            ])?;
        }
    }
    Ok((days.finish()?, log_days.finish()?))
}

/// The files log file integrity validation did not find valid, grouped by
/// account, region, kind of file and outcome, with the hours they concern
/// and a few of their keys, so the rule stays plain SQL.
fn integrity_frame(trail: Option<&TrailCoverage>) -> Result<DataFrame> {
    use crate::trail::integrity::{FileKind, FileOutcome};
    let mut b = FrameBuilder::new(TRAIL_INTEGRITY_PROBLEMS);
    let Some(integrity) = trail.and_then(|t| t.integrity.as_ref()) else {
        return b.finish();
    };
    let mut groups: std::collections::BTreeMap<(&str, &str, &str, &str), Vec<&FileOutcome>> =
        Default::default();
    for f in integrity.problems() {
        let kind = match f.kind {
            FileKind::Log => "log",
            FileKind::Digest => "digest",
        };
        groups
            .entry((&f.account_id, &f.region, kind, f.outcome.as_str()))
            .or_default()
            .push(f);
    }
    let hour = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%MZ").to_string();
    for ((account, region, kind, outcome), files) in groups {
        let mut hours: Vec<String> = files
            .iter()
            .filter_map(|f| match (f.from, f.to) {
                (Some(a), Some(b)) if b - a > Duration::hours(2) => {
                    Some(format!("{} to {}", hour(a), hour(b)))
                }
                (Some(a), _) | (None, Some(a)) => Some(hour(a)),
                (None, None) => None,
            })
            .collect();
        hours.sort();
        hours.dedup();
        let keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
        b.push(vec![
            (col::ACCOUNT_ID, Cell::str(account)),
            (col::REGION, Cell::str(region)),
            (col::FILE_KIND, Cell::str(kind)),
            (col::OUTCOME, Cell::str(outcome)),
            (col::FILES, Cell::Int(Some(files.len() as i64))),
            (
                col::FIRST_HOUR,
                Cell::Time(files.iter().filter_map(|f| f.from.or(f.to)).min()),
            ),
            (
                col::LAST_HOUR,
                Cell::Time(files.iter().filter_map(|f| f.to.or(f.from)).max()),
            ),
            (col::HOURS, Cell::str(shortened(&hours, 8))),
            (col::EXAMPLES, Cell::str(shortened(&keys, 5))),
        ])?;
    }
    b.finish()
}

fn policy_statements_frame(keys: &DataFrame) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(POLICY_STATEMENTS);
    if keys.height() == 0 || keys.column(col::KEY_POLICY).is_err() {
        return b.finish();
    }
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let s = keys
            .column(name)?
            .as_materialized_series()
            .cast(&DataType::String)?;
        Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let (accounts, regions, arns, policies) = (
        text(col::ACCOUNT_ID)?,
        text(col::REGION)?,
        text(col::ARN)?,
        text(col::KEY_POLICY)?,
    );
    for i in 0..keys.height() {
        let Some(policy) = &policies[i] else { continue };
        // An unparseable policy is not a Deny; it is left for a person to read.
        let Ok(statements) = key_policy::statements(policy) else {
            continue;
        };
        for st in statements {
            b.push(vec![
                (col::ACCOUNT_ID, Cell::opt_str(accounts[i].clone())),
                (col::REGION, Cell::opt_str(regions[i].clone())),
                (col::KEY_ARN, Cell::opt_str(arns[i].clone())),
                (col::SID, Cell::opt_str(st.sid)),
                (col::EFFECT, Cell::str(st.effect)),
                (col::PRINCIPAL, Cell::opt_str(st.principal)),
                (col::ACTIONS, Cell::str(st.actions)),
                (col::CONDITION, Cell::opt_str(st.condition)),
                (
                    col::DENIED_ROTATION_ACTIONS,
                    Cell::opt_str(
                        Some(st.denied_rotation_actions.join(", ")).filter(|s| !s.is_empty()),
                    ),
                ),
            ])?;
        }
    }
    b.finish()
}

fn exemptions_frame(exemptions: &[Exemption], as_of: DateTime<Utc>) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(EXEMPTIONS);
    for e in exemptions {
        b.push(vec![
            (col::KEY, Cell::str(&e.key)),
            (col::RULE, Cell::str(&e.rule)),
            (col::REASON, Cell::str(&e.reason)),
            (col::APPROVER, Cell::str(&e.approver)),
            (col::EXPIRES, Cell::str(e.expires.to_string())),
            (col::EXPIRED, Cell::Bool(Some(e.is_expired(as_of)))),
        ])?;
    }
    b.finish()
}

/// The findings frame.
pub fn findings_frame(findings: &[Finding]) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(FINDINGS);
    for f in findings {
        b.push(vec![
            (col::FINDING_ID, Cell::str(&f.finding_id)),
            (col::RULE_ID, Cell::str(&f.rule_id)),
            (col::SEVERITY, Cell::str(f.severity.as_str())),
            (col::STATUS, Cell::str(f.status.as_str())),
            (col::ACCOUNT_ID, Cell::opt_str(f.account_id.clone())),
            (col::REGION, Cell::opt_str(f.region.clone())),
            (col::KEY_ARN, Cell::opt_str(f.key_arn.clone())),
            (col::TITLE, Cell::str(&f.title)),
            (col::DETAIL, Cell::str(&f.detail)),
            (col::EVIDENCE, Cell::opt_str(f.evidence.clone())),
            (col::CONTROLS, Cell::str(&f.controls)),
            (col::REMEDIATION, Cell::str(&f.remediation)),
            (
                col::EXEMPTION_REASON,
                Cell::opt_str(f.exemption_reason.clone()),
            ),
            (
                col::EXEMPTION_EXPIRES,
                Cell::opt_str(f.exemption_expires.clone()),
            ),
        ])?;
    }
    b.finish()
}

/// The default audit window start for a run at `as_of`.
pub fn window_start(policy: &Policy, as_of: DateTime<Utc>) -> DateTime<Utc> {
    as_of - Duration::days(policy.audit_window_days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{EVENTS, KEYS, ROTATIONS};
    use chrono::TimeZone;

    fn empty_evidence() -> Evidence {
        Evidence {
            keys: KEYS.empty().unwrap(),
            rotations: ROTATIONS.empty().unwrap(),
            events: EVENTS.empty().unwrap(),
            trail: None,
            window_start: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn every_rule_runs_on_empty_frames() {
        let rules = super::super::load(None).unwrap();
        let as_of = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let findings = assess(&empty_evidence(), &rules, &Policy::default(), as_of).unwrap();
        assert!(findings.is_empty(), "{findings:?}");
        findings_frame(&findings).unwrap();
    }

    #[test]
    fn finding_ids_are_stable_and_distinct() {
        let a = finding_id("r", "1", "us-east-1", "arn:k", "");
        assert_eq!(a, finding_id("r", "1", "us-east-1", "arn:k", ""));
        assert_ne!(a, finding_id("r", "1", "us-east-1", "arn:k", "p"));
        assert_ne!(a, finding_id("r2", "1", "us-east-1", "arn:k", ""));
    }

    #[test]
    fn exemptions_match_arn_id_and_alias() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd";
        let aliases = vec!["alias/payments".to_string()];
        assert!(key_matches(arn, arn, &aliases));
        assert!(key_matches("1234abcd", arn, &aliases));
        assert!(key_matches("alias/payments", arn, &aliases));
        assert!(key_matches(
            "arn:aws:kms:us-east-1:111122223333:alias/payments",
            arn,
            &aliases
        ));
        assert!(!key_matches("alias/other", arn, &aliases));
    }
}
