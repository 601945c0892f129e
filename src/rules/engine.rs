//! Runs the rules through polars SQL over a bundle's frames and turns their
//! rows into findings: stable ids, severities after policy overrides, and
//! exemptions applied.
//!
//! The evidence is judged as of `as_of`: events and listed rotations after it
//! are left out before any rule sees them. Besides the bundle's frames, the
//! rules read tables derived here (schemas in `frames.rs`): `params`,
//! `trail_days`, `trail_log_days`, `policy_statements`, `exemptions`,
//! `key_clock`, `call_failures` and `trail_rotations`.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::{BooleanChunked, DataFrame, DataType, IntoLazy};
use polars::sql::SQLContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::facts;
use super::key_policy;
use super::Rule;
use crate::bundle::{ExemptionReach, MatchedKey};
use crate::frames::{
    check_columns, col, Cell, FrameBuilder, CALL_FAILURES, EVENTS, EXEMPTIONS, FINDINGS, KEYS,
    KEY_CLOCK, PARAMS, POLICY_STATEMENTS, ROTATIONS, TRAIL_DAYS, TRAIL_INTEGRITY_PROBLEMS,
    TRAIL_LOG_DAYS, TRAIL_ROTATIONS,
};
use crate::inventory::{KeyRecord, RotationRecord};
use crate::output::frame_records;
use crate::policy::{Exemption, Policy, Severity};
use crate::trail::{EventRow, TrailCoverage};

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
    /// One entry per control of the rule.
    pub controls: Vec<String>,
    /// `FAILED` or `WARNING` (the rule's `compliance` header).
    pub compliance: String,
    pub remediation: String,
    pub exemption_reason: Option<String>,
    pub exemption_expires: Option<String>,
    /// When the finding was first seen: carried from the previous bundle's
    /// assessment of the same `finding_id`, else the earliest evidence of it
    /// (the rule's `first_seen` column, else the time the evidence was
    /// collected).
    pub first_seen: Option<DateTime<Utc>>,
    /// The latest evidence of it (the rule's `last_seen`, else collection).
    pub last_seen: Option<DateTime<Utc>>,
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

/// The evidence as of one moment, in frames for SQL and records for the
/// derived tables.
struct AsOf {
    keys: Vec<KeyRecord>,
    rotations: DataFrame,
    rotation_records: Vec<RotationRecord>,
    events: DataFrame,
    /// Only the events about rotation: the derived tables need no others.
    rotation_events: Vec<EventRow>,
    /// event_id → how its key was found when the record named an alias.
    key_via: HashMap<String, String>,
}

/// Keeps the rows of `df` whose time column is empty or not after `as_of`.
fn not_after(df: &DataFrame, column: &str, as_of: DateTime<Utc>) -> Result<DataFrame> {
    if df.height() == 0 {
        return Ok(df.clone());
    }
    let ms = as_of.timestamp_millis();
    let times = df
        .column(column)?
        .as_materialized_series()
        .cast(&DataType::Int64)
        .with_context(|| format!("{column} is not a time column"))?;
    let mask: BooleanChunked = times
        .i64()?
        .iter()
        .map(|t| t.is_none_or(|t| t <= ms))
        .collect();
    Ok(df.filter(&mask)?)
}

fn text_column(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn rotation_related(df: &DataFrame) -> Result<DataFrame> {
    if df.height() == 0 {
        return Ok(df.clone());
    }
    let names = df
        .column(col::EVENT_NAME)?
        .as_materialized_series()
        .cast(&DataType::String)?;
    let mask: BooleanChunked = names
        .str()?
        .iter()
        .map(|n| {
            n.is_some_and(|n| facts::is_rotation_api(n) || facts::ROTATION_EVENTS.contains(&n))
        })
        .collect();
    Ok(df.filter(&mask)?)
}

impl AsOf {
    fn new(
        keys: &DataFrame,
        rotations: &DataFrame,
        events: &DataFrame,
        as_of: DateTime<Utc>,
    ) -> Result<AsOf> {
        let rotations = not_after(rotations, col::ROTATION_DATE, as_of)?;
        // Aliases resolved through the inventory, marked (see rules::derived);
        // the derived tables below read the same rows as the rules.
        let events = not_after(
            &super::derived::events_for_rules(events, keys)?,
            col::EVENT_TIME,
            as_of,
        )?;
        let related = rotation_related(&events)?;
        let mut key_via = HashMap::new();
        if related.height() > 0 && related.column(col::KEY_ARN_VIA).is_ok() {
            let ids = text_column(&related, col::EVENT_ID)?;
            let via = text_column(&related, col::KEY_ARN_VIA)?;
            for (id, via) in ids.into_iter().zip(via) {
                if let (Some(id), Some(via)) = (id, via) {
                    key_via.insert(id, via);
                }
            }
        }
        Ok(AsOf {
            keys: frame_records(keys, &KEYS)?,
            rotation_records: frame_records(&rotations, &ROTATIONS)?,
            rotation_events: frame_records(&related, &EVENTS)?,
            key_via,
            rotations,
            events,
        })
    }
}

/// Runs every rule and returns the findings, sorted by severity, rule, key.
pub fn assess(
    evidence: &Evidence,
    rules: &[Rule],
    policy: &Policy,
    as_of: DateTime<Utc>,
) -> Result<Vec<Finding>> {
    let now = AsOf::new(&evidence.keys, &evidence.rotations, &evidence.events, as_of)?;
    let mut ctx = SQLContext::new();
    ctx.register("keys", evidence.keys.clone().lazy());
    ctx.register("rotations", now.rotations.clone().lazy());
    ctx.register("events", now.events.clone().lazy());
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
        exemptions_frame(&policy.exemptions, &now.keys, as_of)?.lazy(),
    );
    // Tables derived in Rust (rules::facts); their definitions in words ship
    // with the rules that read them (DERIVED_TABLES).
    ctx.register("key_clock", key_clock_frame(&now)?.lazy());
    ctx.register(
        "call_failures",
        call_failures_frame(&now, evidence.window_start, as_of)?.lazy(),
    );
    ctx.register("trail_rotations", trail_rotations_frame(&now)?.lazy());
    // Tables derived in SQL, run once before the rules that share them.
    for d in super::DERIVED_TABLES {
        let super::Derivation::Sql(sql) = d.derivation else {
            continue;
        };
        let df = ctx
            .execute(sql)
            .and_then(|lf| lf.collect())
            .map_err(|e| anyhow::anyhow!("{}: {}", d.origin, one_line(&e.to_string())))?;
        check_columns(&df, &d.schema).with_context(|| d.origin.to_string())?;
        ctx.register(d.schema.name, df.lazy());
    }

    let aliases: HashMap<&str, &[String]> = now
        .keys
        .iter()
        .map(|k| (k.arn.as_str(), k.aliases.as_slice()))
        .collect();
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

/// Which keys of the bundle each exemption matches, so an approver sees its
/// reach: a bare alias or key id can match in several accounts and Regions.
pub fn exemption_reach(
    exemptions: &[Exemption],
    keys: &DataFrame,
    as_of: DateTime<Utc>,
) -> Result<Vec<ExemptionReach>> {
    let keys: Vec<KeyRecord> = frame_records(keys, &KEYS)?;
    Ok(exemptions
        .iter()
        .map(|e| ExemptionReach {
            key: e.key.clone(),
            rule: e.rule.clone(),
            reason: e.reason.clone(),
            approver: e.approver.clone(),
            expires: e.expires.to_string(),
            expired: e.is_expired(as_of),
            matched: matched_keys(e, &keys)
                .into_iter()
                .map(|k| MatchedKey {
                    account_id: k.account_id.clone(),
                    region: k.region.clone(),
                    key_arn: k.arn.clone(),
                    aliases: k.aliases.clone(),
                })
                .collect(),
        })
        .collect())
}

fn matched_keys<'a>(e: &Exemption, keys: &'a [KeyRecord]) -> Vec<&'a KeyRecord> {
    keys.iter()
        .filter(|k| key_matches(&e.key, &k.arn, &k.aliases))
        .collect()
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
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
}

/// An optional time column of a rule's result (`first_seen`, `last_seen`).
fn time_column(df: &DataFrame, name: &str, rule: &Rule) -> Result<Vec<Option<DateTime<Utc>>>> {
    let Ok(column) = df.column(name) else {
        return Ok(vec![None; df.height()]);
    };
    let s = column
        .as_materialized_series()
        .cast(&crate::frames::time_dtype())
        .and_then(|s| s.cast(&DataType::Int64))
        .with_context(|| format!("{}: column {name} is not a time", rule.origin))?;
    let ca = s
        .i64()
        .map_err(|e| anyhow::anyhow!("{}: {e}", rule.origin))?;
    Ok(ca
        .iter()
        .map(|v| v.and_then(DateTime::<Utc>::from_timestamp_millis))
        .collect())
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
    let first_seen = time_column(df, col::FIRST_SEEN, rule)?;
    let last_seen = time_column(df, col::LAST_SEEN, rule)?;
    Ok((0..df.height())
        .map(|i| RuleRow {
            account_id: account[i].clone(),
            region: region[i].clone(),
            key_arn: key[i].clone(),
            detail: detail[i].clone().unwrap_or_else(|| rule.title.clone()),
            evidence: evidence[i].clone(),
            subject: subject[i].clone(),
            first_seen: first_seen[i],
            last_seen: last_seen[i],
        })
        .collect())
}

fn make_finding(
    rule: &Rule,
    row: RuleRow,
    policy: &Policy,
    as_of: DateTime<Utc>,
    aliases: &HashMap<&str, &[String]>,
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
        controls: rule.controls.clone(),
        compliance: rule.compliance.as_str().into(),
        remediation: rule.remediation.clone(),
        exemption_reason: None,
        exemption_expires: None,
        first_seen: row.first_seen,
        last_seen: row.last_seen,
    };
    // The expired-exemption report must not be exempted by the very exemption.
    if rule.id == "exemption_expired" {
        return finding;
    }
    let Some(arn) = finding.key_arn.as_deref() else {
        return finding;
    };
    let key_aliases = aliases.get(arn).copied().unwrap_or(&[]);
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

/// Whether `wanted` (a key ARN, key id, alias, or alias ARN, as an exemption
/// or `--key` names a key) names the key `arn` with `aliases`
/// ([`crate::policy::names`] is the one matcher).
pub fn key_matches(wanted: &str, arn: &str, aliases: &[String]) -> bool {
    crate::policy::names(wanted, &crate::policy::Subject::Key { arn, aliases })
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

/// What CloudTrail shows for one account, Region and day.
///
/// A day without a log file is either quiet (no event in that Region that
/// day) or lost; only CloudTrail's digest files tell the two apart: with
/// `--validate`, a day that verified digests cover with no log file listed
/// is `Quiet`, counted neither as missing in `trail_days` nor as logged in
/// `trail_log_days`, but as covered for `next_day_logged` (nothing was
/// delivered that day, so an event of the day before is in that day's files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayStatus {
    Logged,
    Quiet,
    NoLogFile,
}

fn trail_frames(trail: Option<&TrailCoverage>) -> Result<(DataFrame, DataFrame)> {
    let mut days = FrameBuilder::new(TRAIL_DAYS);
    let mut log_days = FrameBuilder::new(TRAIL_LOG_DAYS);
    let validated = trail.is_some_and(|t| t.integrity.is_some());
    for d in trail.map(|t| t.days.as_slice()).unwrap_or(&[]) {
        let status: HashMap<NaiveDate, DayStatus> = d
            .days_with_logs
            .iter()
            .map(|day| (*day, DayStatus::Logged))
            .chain(d.days_quiet.iter().map(|day| (*day, DayStatus::Quiet)))
            .chain(
                d.days_missing
                    .iter()
                    .map(|day| (*day, DayStatus::NoLogFile)),
            )
            .collect();
        let with = |want: DayStatus| -> BTreeSet<NaiveDate> {
            status
                .iter()
                .filter(|(_, s)| **s == want)
                .map(|(day, _)| *day)
                .collect()
        };
        let missing = with(DayStatus::NoLogFile);
        let logged = with(DayStatus::Logged);
        let quiet = with(DayStatus::Quiet);
        let missing_text: Vec<String> = missing.iter().map(|d| d.to_string()).collect();
        days.push(vec![
            (col::ACCOUNT_ID, Cell::str(&d.account_id)),
            (col::REGION, Cell::str(&d.region)),
            (col::DAYS_IN_WINDOW, Cell::Int(Some(status.len() as i64))),
            (col::DAYS_WITH_LOGS, Cell::Int(Some(logged.len() as i64))),
            (col::DAYS_MISSING, Cell::Int(Some(missing.len() as i64))),
            (col::MISSING_DAYS, Cell::str(shortened(&missing_text, 10))),
            (col::DAYS_QUIET, Cell::Int(Some(quiet.len() as i64))),
            (col::VALIDATED, Cell::Bool(Some(validated))),
        ])?;
        for day in &logged {
            let next_covered = day
                .succ_opt()
                .is_some_and(|n| logged.contains(&n) || quiet.contains(&n));
            log_days.push(vec![
                (col::ACCOUNT_ID, Cell::str(&d.account_id)),
                (col::REGION, Cell::str(&d.region)),
                (col::DAY, Cell::str(day.to_string())),
                (col::NEXT_DAY_LOGGED, Cell::Bool(Some(next_covered))),
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
            let denies = |a: &str| st.denied_rotation_actions.contains(&a);
            b.push(vec![
                (col::ACCOUNT_ID, Cell::opt_str(accounts[i].clone())),
                (col::REGION, Cell::opt_str(regions[i].clone())),
                (col::KEY_ARN, Cell::opt_str(arns[i].clone())),
                (col::STATEMENT_INDEX, Cell::Int(Some(st.index as i64))),
                (col::SID, Cell::opt_str(st.sid.clone())),
                (col::EFFECT, Cell::str(&st.effect)),
                (col::PRINCIPAL, Cell::opt_str(st.principal.clone())),
                (col::ACTIONS, Cell::str(&st.actions)),
                (col::CONDITION, Cell::opt_str(st.condition.clone())),
                (
                    col::DENIED_ROTATION_ACTIONS,
                    Cell::opt_str(
                        Some(st.denied_rotation_actions.join(", ")).filter(|s| !s.is_empty()),
                    ),
                ),
                (
                    col::DENIES_ENABLE,
                    Cell::Bool(Some(denies("kms:EnableKeyRotation"))),
                ),
                (
                    col::DENIES_ON_DEMAND,
                    Cell::Bool(Some(denies("kms:RotateKeyOnDemand"))),
                ),
                (col::EVERYONE, Cell::Bool(Some(st.everyone))),
                (col::UNAFFECTED, Cell::opt_str(st.unaffected.clone())),
                (
                    col::UNIQUE_ID_PRINCIPALS,
                    Cell::opt_str(
                        Some(
                            st.unique_id_principals
                                .iter()
                                .map(|u| u.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                        .filter(|s| !s.is_empty()),
                    ),
                ),
                (col::NOT_PRINCIPAL, Cell::Bool(Some(st.not_principal))),
            ])?;
        }
    }
    b.finish()
}

fn exemptions_frame(
    exemptions: &[Exemption],
    keys: &[KeyRecord],
    as_of: DateTime<Utc>,
) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(EXEMPTIONS);
    for e in exemptions {
        let matched = matched_keys(e, keys);
        let row = |k: Option<&KeyRecord>| {
            vec![
                (col::KEY, Cell::str(&e.key)),
                (col::RULE, Cell::str(&e.rule)),
                (col::REASON, Cell::str(&e.reason)),
                (col::APPROVER, Cell::str(&e.approver)),
                (col::EXPIRES, Cell::str(e.expires.to_string())),
                (col::EXPIRED, Cell::Bool(Some(e.is_expired(as_of)))),
                (
                    col::ACCOUNT_ID,
                    Cell::opt_str(k.and_then(|k| k.account_id.clone())),
                ),
                (col::REGION, Cell::opt_str(k.map(|k| k.region.clone()))),
                (col::KEY_ARN, Cell::opt_str(k.map(|k| k.arn.clone()))),
                (col::MATCHED_KEYS, Cell::Int(Some(matched.len() as i64))),
            ]
        };
        if matched.is_empty() {
            b.push(row(None))?;
        }
        for k in &matched {
            b.push(row(Some(k)))?;
        }
    }
    b.finish()
}

/// Every key's rotation clock as of `as_of`, from the same rows, with the
/// same alias resolution and as-of cut, as the `key_clock` table the rules
/// read: the one schedule computation that `plan`'s cost projection and the
/// report's keys-coming-due view reuse. In the keys frame's order.
pub fn key_clocks(
    keys: &DataFrame,
    rotations: &DataFrame,
    events: &DataFrame,
    as_of: DateTime<Utc>,
) -> Result<Vec<(KeyRecord, facts::KeyClock)>> {
    let now = AsOf::new(keys, rotations, events, as_of)?;
    Ok(now
        .keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                facts::key_clock(k, &now.rotation_records, &now.rotation_events),
            )
        })
        .collect())
}

fn key_clock_frame(now: &AsOf) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(KEY_CLOCK);
    for k in &now.keys {
        let c = facts::key_clock(k, &now.rotation_records, &now.rotation_events);
        b.push(vec![
            (col::ACCOUNT_ID, Cell::opt_str(c.account_id)),
            (col::REGION, Cell::str(c.region)),
            (col::KEY_ARN, Cell::str(c.key_arn)),
            (col::HISTORY_READ, Cell::Bool(Some(c.history_read))),
            (col::LAST_ROTATION, Cell::Time(c.last_rotation)),
            (
                col::LAST_ROTATION_SOURCE,
                Cell::opt_str(c.last_rotation_source.map(|s| s.as_str())),
            ),
            (col::ROTATION_ON_SINCE, Cell::Time(c.rotation_on_since)),
            (col::PERIOD_DAYS, Cell::Int(Some(c.period_days))),
            (col::PERIOD_KNOWN, Cell::Bool(Some(c.period_known))),
            (col::NEXT_ROTATION_DATE, Cell::Time(c.next_rotation_date)),
            (col::SCHEDULE_START, Cell::Time(c.schedule_start)),
            (col::SCHEDULE_BASIS, Cell::str(c.schedule_basis)),
            (col::DUE_AT, Cell::Time(c.due_at)),
            (col::MATERIAL_SINCE, Cell::Time(c.material_since)),
        ])?;
    }
    b.finish()
}

fn call_failures_frame(
    now: &AsOf,
    window_start: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(CALL_FAILURES);
    for g in facts::call_failures(&now.rotation_events, Some(window_start), Some(as_of)) {
        let via = g
            .event_ids
            .iter()
            .find_map(|id| now.key_via.get(id).cloned());
        b.push(vec![
            (col::ACCOUNT_ID, Cell::opt_str(g.account_id)),
            (col::REGION, Cell::opt_str(g.region)),
            (col::KEY_ARN, Cell::opt_str(g.key_arn)),
            (col::CALLER, Cell::str(g.caller)),
            (
                col::SESSIONS,
                Cell::opt_str(Some(g.sessions.join(", ")).filter(|s| !s.is_empty())),
            ),
            (col::SESSION_COUNT, Cell::Int(Some(g.sessions.len() as i64))),
            (col::EVENT_NAME, Cell::str(g.event_name)),
            (col::ERROR_CODE, Cell::str(g.error_code)),
            (col::ACCESS_DENIED, Cell::Bool(Some(g.access_denied))),
            (col::FAILURES, Cell::Int(Some(g.count as i64))),
            (col::FIRST_SEEN, Cell::Time(g.first_seen)),
            (col::LAST_SEEN, Cell::Time(g.last_seen)),
            (col::ERROR_MESSAGE, Cell::opt_str(g.message)),
            (col::EVENT_IDS, Cell::str(g.event_ids.join(" "))),
            (col::KEY_ARN_VIA, Cell::opt_str(via)),
        ])?;
    }
    b.finish()
}

fn trail_rotations_frame(now: &AsOf) -> Result<DataFrame> {
    let by_arn: HashMap<&str, &KeyRecord> = now.keys.iter().map(|k| (k.arn.as_str(), k)).collect();
    let mut b = FrameBuilder::new(TRAIL_ROTATIONS);
    for e in now.rotation_events.iter().filter(|e| facts::is_rotation(e)) {
        let key = e.key_arn.as_deref().and_then(|a| by_arn.get(a).copied());
        b.push(vec![
            (col::EVENT_ID, Cell::opt_str(e.event_id.clone())),
            (col::EVENT_TIME, Cell::Time(e.event_time)),
            (col::EVENT_NAME, Cell::opt_str(e.event_name.clone())),
            (col::ROTATION_TYPE, Cell::opt_str(e.rotation_type.clone())),
            (col::ACCOUNT_ID, Cell::opt_str(e.account_id.clone())),
            (col::REGION, Cell::opt_str(e.aws_region.clone())),
            (col::KEY_ARN, Cell::opt_str(e.key_arn.clone())),
            (
                col::IN_PROGRESS,
                Cell::Bool(Some(facts::is_in_progress(key, e))),
            ),
            (
                col::LINKED_EVENT_ID,
                Cell::opt_str(e.linked_event_id.clone()),
            ),
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
            (col::CONTROLS, Cell::StrList(f.controls.clone())),
            (col::COMPLIANCE, Cell::str(&f.compliance)),
            (col::REMEDIATION, Cell::str(&f.remediation)),
            (
                col::EXEMPTION_REASON,
                Cell::opt_str(f.exemption_reason.clone()),
            ),
            (
                col::EXEMPTION_EXPIRES,
                Cell::opt_str(f.exemption_expires.clone()),
            ),
            (col::FIRST_SEEN, Cell::Time(f.first_seen)),
            (col::LAST_SEEN, Cell::Time(f.last_seen)),
        ])?;
    }
    b.finish()
}

/// Dates each finding: `first_seen` is the earliest of what the previous
/// assessment recorded for the same `finding_id`, what the rule returned, and
/// `observed_at` (when the evidence was collected); `last_seen` is what the
/// rule returned, else `observed_at`. Security Hub's CreatedAt and
/// FirstObservedAt, and OCSF's created_time, come from these.
pub fn date_findings(findings: &mut [Finding], observed_at: DateTime<Utc>, previous: &[Finding]) {
    let before: HashMap<&str, DateTime<Utc>> = previous
        .iter()
        .filter_map(|f| Some((f.finding_id.as_str(), f.first_seen?)))
        .collect();
    for f in findings.iter_mut() {
        let own = f.first_seen.unwrap_or(observed_at);
        let carried = before.get(f.finding_id.as_str()).copied();
        f.first_seen = Some(carried.map_or(own, |c| c.min(own)));
        f.last_seen = Some(f.last_seen.unwrap_or(observed_at));
    }
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

    #[test]
    fn first_seen_is_carried_from_the_previous_assessment() {
        let day = |d| Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap();
        let finding = |id: &str, first: Option<DateTime<Utc>>| Finding {
            finding_id: id.into(),
            rule_id: "rotation_disabled".into(),
            severity: Severity::High,
            status: FindingStatus::Open,
            account_id: None,
            region: None,
            key_arn: None,
            title: String::new(),
            detail: String::new(),
            evidence: None,
            controls: vec![],
            compliance: "FAILED".into(),
            remediation: String::new(),
            exemption_reason: None,
            exemption_expires: None,
            first_seen: first,
            last_seen: None,
        };
        let previous = vec![finding("kr-a", Some(day(1)))];
        let mut now = vec![
            finding("kr-a", None),
            finding("kr-b", None),
            finding("kr-c", Some(day(5))),
        ];
        date_findings(&mut now, day(20), &previous);
        assert_eq!(now[0].first_seen, Some(day(1)), "carried");
        assert_eq!(now[1].first_seen, Some(day(20)), "new: the collection time");
        assert_eq!(
            now[2].first_seen,
            Some(day(5)),
            "the rule's own first evidence"
        );
        assert!(now.iter().all(|f| f.last_seen == Some(day(20))));
    }

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

    #[test]
    fn an_alias_arn_names_one_account_and_region() {
        let aliases = vec!["alias/legacy".to_string()];
        let east = "arn:aws:kms:us-east-1:111122223333:key/k1";
        let west = "arn:aws:kms:eu-west-1:111122223333:key/k2";
        let other = "arn:aws:kms:us-east-1:444455556666:key/k3";
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/legacy";
        assert!(key_matches(alias_arn, east, &aliases));
        assert!(!key_matches(alias_arn, west, &aliases));
        assert!(!key_matches(alias_arn, other, &aliases));
        // A bare alias reaches every account and Region that has it.
        for arn in [east, west, other] {
            assert!(key_matches("alias/legacy", arn, &aliases));
        }
        // Another key's ARN never matches by its id.
        assert!(!key_matches(west, east, &aliases));
        assert!(!key_matches("alias/leg", east, &aliases));
    }
}
