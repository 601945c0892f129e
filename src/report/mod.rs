//! The auditor-facing report of an assessed bundle: `report.md`,
//! a self-contained `report.html` (inline CSS, charts as inline SVG), the
//! frames as CSV and Parquet, findings as ASFF and OCSF, and `SHA256SUMS`.
//!
//! Everything here reads the bundle only; nothing calls AWS. The report's
//! "now" is the assessment's `as_of` unless the caller fixes another, so the
//! same bundle renders the same report next year.

pub mod charts;
pub mod diff;
pub mod due;
pub mod export;
pub mod publish;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bundle::{self, Coverage, Manifest};
use crate::frames::time::rfc3339;
use crate::frames::{Schema, EVENTS, FINDINGS, KEYS, ROTATIONS};
use crate::inventory::{Eligibility, KeyRecord, RotationRecord};
use crate::output::{frame_records, read_frame, write_bytes_atomic, write_frame, write_json_file};
use crate::policy::Severity;
use crate::rules::engine::Finding;
use crate::rules::{self, Rule};
use crate::trail::EventRow;

pub const SUMS: &str = "SHA256SUMS";
/// The folder of Security Hub BatchImportFindings bodies in a report.
pub const ASFF_DIR: &str = "asff";
const MD_TEMPLATE: &str = include_str!("../../reports/report.md.j2");
const HTML_TEMPLATE: &str = include_str!("../../reports/report.html.j2");

/// CloudTrail events that belong in a key's rotation history.
const ROTATION_EVENTS: &[&str] = &[
    "RotateKey",
    "RotateKeyOnDemand",
    "EnableKeyRotation",
    "DisableKeyRotation",
];

/// How the report shows the rotation of an AWS-managed key.
const ROTATED_BY_AWS: &str = "rotated by AWS";

/// An assessed bundle, read back.
pub struct Evidence {
    pub dir: PathBuf,
    /// Set when the bundle did not match its manifest and was read anyway
    /// (`--allow-modified`): every output made from it carries this banner.
    pub integrity: Option<String>,
    pub manifest: Manifest,
    pub coverage: Coverage,
    pub keys: Vec<KeyRecord>,
    pub rotations: Vec<RotationRecord>,
    pub events: Vec<EventRow>,
    pub findings: Vec<Finding>,
    /// Set when the evidence was narrowed to one account of the bundle.
    pub account: Option<String>,
    /// The keys, rotations and events frames as read, for the rule engine's
    /// schedule computation (`due`).
    pub frames: Frames,
}

/// The frames an [`Evidence`] was read from.
pub struct Frames {
    pub keys: polars::prelude::DataFrame,
    pub rotations: polars::prelude::DataFrame,
    pub events: polars::prelude::DataFrame,
}

impl Evidence {
    /// Reads an assessed bundle after re-hashing it against its manifest
    /// ([`bundle::open`]): a mismatch is an error unless `allow_modified`.
    pub fn load(dir: &Path, allow_modified: bool) -> Result<Evidence> {
        let opened = bundle::open(dir, allow_modified)?;
        let integrity = opened.integrity_note();
        let manifest = opened.manifest;
        let coverage = bundle::read_coverage(dir)?;
        if manifest.assessment.is_none() || !dir.join("findings.parquet").exists() {
            return Err(crate::error::Error::input(
                dir,
                "the bundle has not been assessed",
                format!(
                    "run `kmsrot assess {}` first; a report without findings would look clean",
                    dir.display()
                ),
            ));
        }
        let frames = Frames {
            keys: read_frame(dir, &KEYS)?,
            rotations: read_frame(dir, &ROTATIONS)?,
            events: read_frame(dir, &EVENTS)?,
        };
        Ok(Evidence {
            keys: frame_records(&frames.keys, &KEYS)?,
            rotations: frame_records(&frames.rotations, &ROTATIONS)?,
            events: frame_records(&frames.events, &EVENTS)?,
            frames,
            findings: frame_records(&read_frame(dir, &FINDINGS)?, &FINDINGS)?,
            dir: dir.to_path_buf(),
            integrity,
            manifest,
            coverage,
            account: None,
        })
    }

    /// The part of an organization's bundle about one account: its keys,
    /// rotations, events, findings and coverage. The manifest is kept whole
    /// (it is what the bundle's hashes speak for) but lists that account
    /// alone.
    pub fn for_account(mut self, account: &str) -> Result<Evidence> {
        let known: BTreeSet<String> = self
            .manifest
            .accounts
            .iter()
            .cloned()
            .chain(
                self.manifest
                    .account_details
                    .iter()
                    .map(|a| a.account_id.clone()),
            )
            .chain(self.keys.iter().filter_map(|k| k.account_id.clone()))
            .collect();
        if !known.contains(account) {
            return Err(crate::error::Error::usage(
                format!(
                    "--account {account}: {} holds no such account",
                    self.dir.display()
                ),
                format!(
                    "the bundle's accounts are: {}",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let mine = |a: &Option<String>| a.as_deref() == Some(account);
        self.keys.retain(|k| mine(&k.account_id));
        self.rotations.retain(|r| mine(&r.account_id));
        self.events.retain(|e| mine(&e.account_id));
        // The frames the rule engine's schedule reads (keys coming due):
        // the same account only.
        let only = |df: &polars::prelude::DataFrame| -> Result<polars::prelude::DataFrame> {
            use polars::prelude::{col, lit, IntoLazy};
            Ok(df
                .clone()
                .lazy()
                .filter(col(crate::frames::col::ACCOUNT_ID).eq(lit(account)))
                .collect()?)
        };
        self.frames = Frames {
            keys: only(&self.frames.keys)?,
            rotations: only(&self.frames.rotations)?,
            events: only(&self.frames.events)?,
        };
        self.findings.retain(|f| mine(&f.account_id));
        self.manifest.accounts = vec![account.to_string()];
        self.manifest
            .account_details
            .retain(|a| a.account_id == account);
        if let Some(inv) = &mut self.coverage.inventory {
            inv.regions
                .retain(|r| r.account_id.as_deref().is_none_or(|a| a == account));
            inv.key_errors
                .retain(|k| k.account_id.as_deref().is_none_or(|a| a == account));
            inv.accounts.retain(|a| a.account_id == account);
            inv.complete = inv.key_errors.is_empty()
                && inv.regions.iter().all(|r| r.status.is_complete())
                && inv.accounts.iter().all(|a| a.status.is_complete());
        }
        if let Some(t) = &mut self.coverage.trail {
            t.days.retain(|d| d.account_id == account);
        }
        self.coverage.complete = self.coverage.inventory.as_ref().is_none_or(|i| i.complete)
            && self.coverage.trail.as_ref().is_none_or(|t| t.complete);
        self.account = Some(account.to_string());
        Ok(self)
    }

    /// When the findings were judged.
    pub fn assessed_as_of(&self) -> DateTime<Utc> {
        self.manifest
            .assessment
            .as_ref()
            .map_or(self.manifest.audit_window.end, |a| a.as_of)
    }
}

/// What `write` produced.
#[derive(Debug)]
pub struct Written {
    /// The report folder.
    pub out: PathBuf,
    pub files: Vec<String>,
    pub open: usize,
    pub findings: usize,
    pub complete: bool,
}

impl Written {
    /// The line `report` and `audit` print on stderr.
    pub fn summary_line(&self) -> String {
        format!(
            "report: {} files in {} ({} findings, {} open{}); open {}",
            self.files.len(),
            self.out.display(),
            self.findings,
            self.open,
            if self.complete {
                ""
            } else {
                "; coverage partial"
            },
            self.out.join("report.html").display()
        )
    }

    pub fn outcome(&self) -> crate::error::Outcome {
        if self.complete {
            crate::error::Outcome::Complete
        } else {
            crate::error::Outcome::Partial
        }
    }
}

/// Loads the assessed bundle in `bundle`, verified against its manifest
/// (`allow_modified` lets a mismatch through, with the banner), and writes
/// its report into `out`: new or empty (`force` empties it), outside the
/// bundle.
pub fn write_bundle_report(
    bundle: &Path,
    out: &Path,
    as_of: Option<DateTime<Utc>>,
    force: bool,
    allow_modified: bool,
    due_within: i64,
) -> Result<Written> {
    write_bundle_report_for(bundle, out, as_of, None, force, allow_modified, due_within)
}

/// As [`write_bundle_report`], narrowed to one account of an
/// organization's bundle when `account` is given.
pub fn write_bundle_report_for(
    bundle: &Path,
    out: &Path,
    as_of: Option<DateTime<Utc>>,
    account: Option<&str>,
    force: bool,
    allow_modified: bool,
    due_within: i64,
) -> Result<Written> {
    let mut ev = Evidence::load(bundle, allow_modified)?;
    if let Some(a) = account {
        ev = ev.for_account(a)?;
    }
    write(&ev, out, as_of, force, due_within)
        .with_context(|| format!("writing the report into {}", out.display()))
}

// ---- the template context -------------------------------------------------

#[derive(Debug, Serialize)]
struct SeverityCount {
    severity: &'static str,
    open: usize,
    exempted: usize,
}

#[derive(Debug, Serialize)]
struct Summary {
    keys_total: usize,
    customer_managed: usize,
    in_scope: usize,
    compliant: usize,
    percent_compliant: String,
    findings: usize,
    open: usize,
    exempted: usize,
    by_severity: Vec<SeverityCount>,
    coverage_complete: bool,
    gaps: usize,
    trail_days_expected: usize,
    trail_days_present: usize,
    trail_percent: String,
    /// With log file validation: region-days without a log file that
    /// signed digests show quiet.
    trail_days_quiet: usize,
    trail_covered_percent: String,
    validated: bool,
}

#[derive(Debug, Serialize)]
struct FindingView {
    finding_id: String,
    severity: &'static str,
    status: String,
    key: String,
    key_arn: String,
    region: String,
    account: String,
    detail: String,
    evidence: String,
    exemption: String,
}

#[derive(Debug, Serialize)]
struct RuleGroup {
    rule_id: String,
    title: String,
    severity: &'static str,
    controls: String,
    remediation: String,
    open: usize,
    exempted: usize,
    findings: Vec<FindingView>,
}

#[derive(Debug, Serialize)]
struct HistoryItem {
    date: String,
    what: String,
    by: String,
    source: String,
    failed: bool,
}

#[derive(Debug, Serialize)]
struct KeyView {
    name: String,
    arn: String,
    key_id: String,
    account: String,
    region: String,
    description: String,
    key_manager: String,
    key_spec: String,
    state: String,
    eligibility: String,
    /// The verdict itself, for the charts; the text above is for people.
    #[serde(skip)]
    eligible: bool,
    eligibility_reason: String,
    rotation: String,
    period: String,
    last_rotation: String,
    next_rotation: String,
    age_days: Option<i64>,
    open_findings: Vec<String>,
    history: Vec<HistoryItem>,
}

#[derive(Debug, Serialize)]
struct EligibilityRow {
    eligibility: String,
    #[serde(skip)]
    eligible: bool,
    rotation_on: usize,
    rotation_off: usize,
    not_applicable: usize,
    total: usize,
}

#[derive(Debug, Serialize)]
struct TrailDayRow {
    account: String,
    region: String,
    with_logs: usize,
    quiet: usize,
    missing: usize,
    missing_days: String,
}

/// Log file integrity validation, for the report.
#[derive(Debug, Serialize)]
struct IntegrityView {
    /// Digests whose signature verified: the method line's N.
    signed_digests: u64,
    public_keys: String,
    sources: String,
    /// (outcome, count) of log files and of digest files.
    log_files: Vec<(String, u64)>,
    digest_files: Vec<(String, u64)>,
    by_scope: Vec<IntegrityScopeRow>,
    /// Files that are not valid, the first ones.
    problems: Vec<IntegrityProblemRow>,
    more_problems: usize,
    limits: Vec<String>,
}

#[derive(Debug, Serialize)]
struct IntegrityScopeRow {
    account: String,
    region: String,
    logs: String,
    digests: String,
    quiet_hours: u64,
}

#[derive(Debug, Serialize)]
struct IntegrityProblemRow {
    key: String,
    kind: &'static str,
    outcome: &'static str,
    hours: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct TrailSourceRow {
    source: String,
    kind: String,
    files_read: u64,
    files_skipped: usize,
    files_corrupt: usize,
    records_kept: u64,
    first_event: String,
    last_event: String,
    limits: String,
}

#[derive(Debug, Serialize)]
struct RegionRow {
    /// Empty for a bundle of the caller's account alone.
    account: String,
    region: String,
    status: String,
    keys_listed: usize,
    keys_described: usize,
    error: String,
}

#[derive(Debug, Serialize)]
struct CoverageView {
    complete: bool,
    gaps: Vec<String>,
    regions: Vec<RegionRow>,
    trail_read: bool,
    trail_sources: Vec<TrailSourceRow>,
    trail_days: Vec<TrailDayRow>,
    integrity: Option<IntegrityView>,
}

#[derive(Debug, Serialize)]
struct ExemptionView {
    rule_id: String,
    key: String,
    reason: String,
    expires: String,
    status: String,
}

/// One exemption of the policy and every key it matched, so an approver
/// sees how far a bare alias or key id reaches.
#[derive(Debug, Serialize)]
struct ReachView {
    key: String,
    rule: String,
    approver: String,
    expires: String,
    status: &'static str,
    matched: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RuleView {
    id: String,
    title: String,
    severity: &'static str,
    controls: String,
    sql_file: String,
    sha256: String,
    note: String,
    fired: usize,
}

#[derive(Debug, Serialize)]
struct SourceView {
    kind: String,
    source: String,
    covers: String,
    note: String,
}

/// One account in the report's roll-up.
#[derive(Debug, Serialize)]
struct AccountRow {
    account: String,
    name: String,
    ou_path: String,
    /// The role used, or "caller's credentials".
    role: String,
    /// Whether the account's keys are in the bundle: when not, the counts
    /// are not shown, and it is never compliant.
    read: bool,
    /// `read`, `partly read`, `not read`, `skipped`.
    coverage: String,
    /// Why not read (the AWS code and message), or why skipped.
    coverage_note: String,
    keys: usize,
    eligible: usize,
    rotation_on: usize,
    rotation_off: usize,
    compliant: usize,
    percent_compliant: String,
    open_critical: usize,
    open_high: usize,
    open_medium: usize,
    open_low: usize,
    open_info: usize,
}

#[derive(Debug, Serialize)]
struct Charts {
    age: String,
    eligibility: String,
    timeline: String,
    accounts: String,
}

#[derive(Debug, Serialize)]
struct ReportContext {
    /// "this bundle does not match its manifest: ..." when read anyway.
    integrity: Option<String>,
    tool_version: String,
    bundle_tool_version: String,
    as_of: String,
    assessed_as_of: String,
    /// "judged N days after collection", when the assessment says so.
    as_of_note: Option<String>,
    collected_at: String,
    simulated: Option<String>,
    caller: String,
    accounts: String,
    regions: String,
    window_start: String,
    window_end: String,
    policy: String,
    summary: Summary,
    /// More than one account, or an organization's bundle: the account
    /// roll-up and account columns are shown.
    show_accounts: bool,
    /// Set when the report covers one account of an organization's bundle.
    only_account: Option<String>,
    account_rows: Vec<AccountRow>,
    accounts_not_read: usize,
    accounts_skipped: usize,
    /// Keys coming due (and overdue), from the rules' schedule computation.
    due: due::DueView,
    rule_groups: Vec<RuleGroup>,
    keys: Vec<KeyView>,
    eligibility: Vec<EligibilityRow>,
    coverage: CoverageView,
    exemptions: Vec<ExemptionView>,
    exemption_reach: Vec<ReachView>,
    rules: Vec<RuleView>,
    sources: Vec<SourceView>,
    data_files: Vec<String>,
    charts: Charts,
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "—".into())
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// Customer managed by the inventory's verdict, which also knows the
/// `alias/aws/*` keys an emulator reports as CUSTOMER.
fn is_customer_managed(k: &KeyRecord) -> bool {
    k.key_manager.as_deref() == Some("CUSTOMER") && k.eligibility != Some(Eligibility::AwsManaged)
}

/// A key's name for people: its first alias, else its id.
pub fn key_name(k: &KeyRecord) -> String {
    k.aliases
        .first()
        .cloned()
        .unwrap_or_else(|| k.key_id.clone())
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "n/a".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

/// The last rotation the evidence shows for a key, decided where the rules
/// decide it (`rules::facts::last_rotation`), so the report and the findings
/// agree.
pub fn last_rotation(
    k: &KeyRecord,
    rotations: &[RotationRecord],
    events: &[EventRow],
) -> Option<DateTime<Utc>> {
    rules::facts::last_rotation(k, rotations, events).map(|(t, _)| t)
}

fn history(k: &KeyRecord, ev: &Evidence) -> Vec<HistoryItem> {
    let mut items: Vec<(Option<DateTime<Utc>>, HistoryItem)> = Vec::new();
    for r in ev.rotations.iter().filter(|r| r.key_arn == k.arn) {
        items.push((
            r.rotation_date,
            HistoryItem {
                date: r.rotation_date.map(rfc3339).unwrap_or_default(),
                what: format!(
                    "rotation ({})",
                    r.rotation_type.as_deref().unwrap_or("unknown type")
                ),
                by: "KMS".into(),
                source: "ListKeyRotations".into(),
                failed: false,
            },
        ));
    }
    for e in ev.events.iter().filter(|e| {
        e.key_arn.as_deref() == Some(k.arn.as_str())
            && ROTATION_EVENTS.contains(&e.event_name.as_deref().unwrap_or(""))
    }) {
        let name = e.event_name.clone().unwrap_or_default();
        let what = match &e.error_code {
            Some(code) => format!("{name} failed: {code}"),
            None => name,
        };
        items.push((
            e.event_time,
            HistoryItem {
                date: e.event_time.map(rfc3339).unwrap_or_default(),
                what,
                by: e
                    .principal_arn
                    .clone()
                    .or_else(|| e.invoked_by.clone())
                    .unwrap_or_default(),
                source: match e.log_integrity.as_deref() {
                    Some("valid") => "CloudTrail, log file validated".into(),
                    Some("altered") => "CloudTrail, log file ALTERED after delivery".into(),
                    Some(_) => "CloudTrail, log file not verifiable".into(),
                    None => "CloudTrail".into(),
                },
                failed: e.error_code.is_some(),
            },
        ));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.what.cmp(&b.1.what)));
    items.into_iter().map(|(_, i)| i).collect()
}

fn context(
    ev: &Evidence,
    rules: &[Rule],
    as_of: DateTime<Utc>,
    data_files: Vec<String>,
    due: due::DueView,
) -> ReportContext {
    let m = &ev.manifest;
    let names: BTreeMap<&str, String> = ev
        .keys
        .iter()
        .map(|k| (k.arn.as_str(), key_name(k)))
        .collect();
    let key_label = |arn: &Option<String>| -> String {
        match arn {
            Some(a) => names.get(a.as_str()).cloned().unwrap_or_else(|| a.clone()),
            None => "(account/region)".into(),
        }
    };

    // Summary.
    let open: Vec<&Finding> = ev.findings.iter().filter(|f| f.is_open()).collect();
    let open_arns: BTreeSet<&str> = open.iter().filter_map(|f| f.key_arn.as_deref()).collect();
    let in_scope: Vec<&KeyRecord> = ev
        .keys
        .iter()
        .filter(|k| k.eligibility == Some(Eligibility::Eligible))
        .collect();
    let compliant = in_scope
        .iter()
        .filter(|k| !open_arns.contains(k.arn.as_str()))
        .count();
    let by_severity = Severity::ALL
        .iter()
        .map(|s| SeverityCount {
            severity: s.as_str(),
            open: open.iter().filter(|f| f.severity == *s).count(),
            exempted: ev
                .findings
                .iter()
                .filter(|f| f.severity == *s && !f.is_open())
                .count(),
        })
        .collect();
    let (expected, present, quiet) = ev.coverage.trail.as_ref().map_or((0, 0, 0), |t| {
        t.days.iter().fold((0, 0, 0), |(e, p, q), d| {
            (
                e + d.days_with_logs.len() + d.days_quiet.len() + d.days_missing.len(),
                p + d.days_with_logs.len(),
                q + d.days_quiet.len(),
            )
        })
    });
    let validated = ev
        .coverage
        .trail
        .as_ref()
        .is_some_and(|t| t.integrity.is_some());
    let gaps = ev.coverage.gaps();
    let summary = Summary {
        keys_total: ev.keys.len(),
        customer_managed: ev.keys.iter().filter(|k| is_customer_managed(k)).count(),
        in_scope: in_scope.len(),
        compliant,
        percent_compliant: percent(compliant, in_scope.len()),
        findings: ev.findings.len(),
        open: open.len(),
        exempted: ev.findings.len() - open.len(),
        by_severity,
        coverage_complete: ev.coverage.complete,
        gaps: gaps.len(),
        trail_days_expected: expected,
        trail_days_present: present,
        trail_percent: percent(present, expected),
        trail_days_quiet: quiet,
        trail_covered_percent: percent(present + quiet, expected),
        validated,
    };

    // Findings grouped by rule, in the order the engine sorted them.
    let mut groups: Vec<RuleGroup> = Vec::new();
    for f in &ev.findings {
        let view = FindingView {
            finding_id: f.finding_id.clone(),
            severity: f.severity.as_str(),
            status: f.status.as_str().to_string(),
            key: key_label(&f.key_arn),
            key_arn: opt(&f.key_arn),
            region: opt(&f.region),
            account: opt(&f.account_id),
            detail: f.detail.clone(),
            evidence: opt(&f.evidence),
            exemption: match (&f.exemption_reason, &f.exemption_expires) {
                (Some(r), Some(e)) => format!("{r} (until {e})"),
                (Some(r), None) => r.clone(),
                _ => String::new(),
            },
        };
        let open = usize::from(f.is_open());
        match groups.iter_mut().find(|g| g.rule_id == f.rule_id) {
            Some(g) => {
                g.open += open;
                g.exempted += 1 - open;
                g.findings.push(view);
            }
            None => groups.push(RuleGroup {
                rule_id: f.rule_id.clone(),
                title: rules
                    .iter()
                    .find(|r| r.id == f.rule_id)
                    .map_or_else(|| f.title.clone(), |r| r.title.clone()),
                severity: f.severity.as_str(),
                controls: f.controls.join(" | "),
                remediation: f.remediation.clone(),
                open,
                exempted: 1 - open,
                findings: vec![view],
            }),
        }
    }

    // Per key.
    let mut keys: Vec<KeyView> = ev
        .keys
        .iter()
        .map(|k| {
            let last = last_rotation(k, &ev.rotations, &ev.events);
            let since = last.or(k.creation_date);
            KeyView {
                name: key_name(k),
                arn: k.arn.clone(),
                key_id: k.key_id.clone(),
                account: opt(&k.account_id),
                region: k.region.clone(),
                description: opt(&k.description),
                key_manager: opt(&k.key_manager),
                key_spec: opt(&k.key_spec),
                state: opt(&k.key_state),
                eligibility: k
                    .eligibility
                    .map_or("unknown".into(), |e| e.as_str().to_string()),
                eligible: k.eligibility == Some(Eligibility::Eligible),
                eligibility_reason: opt(&k.eligibility_reason),
                // AWS rotates its managed keys every year and reports them
                // on; an emulator reports them off.
                rotation: match (k.eligibility, k.rotation_enabled) {
                    (Some(Eligibility::AwsManaged), _) => ROTATED_BY_AWS.into(),
                    (_, Some(true)) => "on".into(),
                    (_, Some(false)) => "off".into(),
                    (_, None) => "n/a".into(),
                },
                period: k
                    .rotation_period_days
                    .map_or_else(|| "—".into(), |p| format!("{p} days")),
                last_rotation: day(last),
                next_rotation: day(k.next_rotation_date),
                age_days: since.map(|s| (as_of - s).num_days()),
                open_findings: open
                    .iter()
                    .filter(|f| f.key_arn.as_deref() == Some(k.arn.as_str()))
                    .map(|f| f.rule_id.clone())
                    .collect(),
                history: history(k, ev),
            }
        })
        .collect();
    keys.sort_by(|a, b| (&a.account, &a.region, &a.name).cmp(&(&b.account, &b.region, &b.name)));

    // Keys by eligibility and rotation status.
    let mut elig: BTreeMap<String, EligibilityRow> = BTreeMap::new();
    for k in &keys {
        let row = elig
            .entry(k.eligibility.clone())
            .or_insert_with(|| EligibilityRow {
                eligibility: k.eligibility.clone(),
                eligible: k.eligible,
                rotation_on: 0,
                rotation_off: 0,
                not_applicable: 0,
                total: 0,
            });
        row.total += 1;
        match k.rotation.as_str() {
            "on" | ROTATED_BY_AWS => row.rotation_on += 1,
            "off" => row.rotation_off += 1,
            _ => row.not_applicable += 1,
        }
    }
    let eligibility: Vec<EligibilityRow> = elig.into_values().collect();

    let coverage = coverage_view(&ev.coverage, gaps);

    let exemptions = ev
        .findings
        .iter()
        .filter(|f| !f.is_open() || f.rule_id == "exemption_expired")
        .map(|f| ExemptionView {
            rule_id: f.rule_id.clone(),
            key: key_label(&f.key_arn),
            reason: f
                .exemption_reason
                .clone()
                .unwrap_or_else(|| f.detail.clone()),
            expires: opt(&f.exemption_expires),
            status: if f.rule_id == "exemption_expired" {
                "expired: no longer applies".into()
            } else {
                "applies".into()
            },
        })
        .collect();

    let assessed = m.assessment.as_ref();
    let rules_view = rules
        .iter()
        .filter(|r| assessed.is_none_or(|a| a.rules.contains_key(&r.id)))
        .map(|r| {
            let sha = r.sha256();
            let note = match assessed.and_then(|a| a.rules.get(&r.id)) {
                Some(recorded) if *recorded != sha => format!(
                    "the bundle was assessed with a different text of this rule (SHA-256 {})",
                    &recorded[..12.min(recorded.len())]
                ),
                _ => String::new(),
            };
            RuleView {
                id: r.id.clone(),
                title: r.title.clone(),
                severity: r.severity.as_str(),
                controls: r.controls.join(" | "),
                sql_file: format!("rules/{}.sql", r.id),
                sha256: sha,
                note,
                fired: ev.findings.iter().filter(|f| f.rule_id == r.id).count(),
            }
        })
        .collect();

    let sources = m
        .sources
        .iter()
        .map(|s| SourceView {
            kind: s.kind.clone(),
            source: s.source.clone(),
            covers: format!("{} → {}", day(s.covers_from), day(s.covers_to)),
            note: opt(&s.note),
        })
        .collect();

    let account_rows = account_rows(ev, &open);
    let show_accounts = !m.account_details.is_empty() || account_rows.len() > 1;
    let charts = Charts {
        age: charts::rotation_age(&keys_for_chart(ev, as_of)),
        eligibility: charts::eligibility(&eligibility_bars(&eligibility)),
        timeline: charts::timeline(
            &timeline(ev),
            &broken_hours(&ev.coverage),
            m.audit_window.start,
            as_of,
        ),
        accounts: if show_accounts {
            charts::accounts(&account_bars(&account_rows))
        } else {
            String::new()
        },
    };

    ReportContext {
        due,
        integrity: ev.integrity.clone(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        bundle_tool_version: m.tool_version.clone(),
        as_of: rfc3339(as_of),
        assessed_as_of: rfc3339(ev.assessed_as_of()),
        as_of_note: assessed.and_then(|a| a.as_of_note.clone()),
        collected_at: rfc3339(m.collected_at),
        simulated: m.simulated.clone(),
        caller: m
            .caller
            .as_ref()
            .map_or_else(|| "unknown".into(), |c| c.arn.clone()),
        accounts: if m.accounts.len() > 6 {
            format!(
                "{} accounts{}",
                m.accounts.len(),
                m.organization
                    .as_ref()
                    .and_then(|o| o.id.as_deref())
                    .map(|id| format!(" of organization {id}"))
                    .unwrap_or_default()
            )
        } else {
            m.accounts.join(", ")
        },
        regions: m.regions.join(", "),
        window_start: rfc3339(m.audit_window.start),
        window_end: rfc3339(m.audit_window.end),
        policy: assessed.map_or_else(String::new, |a| a.policy.clone()),
        summary,
        show_accounts,
        only_account: ev.account.clone(),
        accounts_not_read: account_rows
            .iter()
            .filter(|a| a.coverage == "not read")
            .count(),
        accounts_skipped: account_rows
            .iter()
            .filter(|a| a.coverage == "skipped")
            .count(),
        account_rows,
        rule_groups: groups,
        keys,
        eligibility,
        coverage,
        exemptions,
        exemption_reach: reach_view(assessed),
        rules: rules_view,
        sources,
        data_files,
        charts,
    }
}

/// The account roll-up: every account the bundle names (read or not), its
/// keys, eligible keys, rotation on/off, compliant keys and open findings by
/// severity. An account whose keys were not read has no numbers to show, and
/// is never counted compliant.
fn account_rows(ev: &Evidence, open: &[&Finding]) -> Vec<AccountRow> {
    let m = &ev.manifest;
    let inv_accounts = ev
        .coverage
        .inventory
        .as_ref()
        .map(|i| i.accounts.as_slice())
        .unwrap_or_default();
    let mut rows: BTreeMap<String, AccountRow> = BTreeMap::new();
    let blank = |id: &str| AccountRow {
        account: id.to_string(),
        name: String::new(),
        ou_path: String::new(),
        role: "caller's credentials".into(),
        read: true,
        coverage: "read".into(),
        coverage_note: String::new(),
        keys: 0,
        eligible: 0,
        rotation_on: 0,
        rotation_off: 0,
        compliant: 0,
        percent_compliant: "n/a".into(),
        open_critical: 0,
        open_high: 0,
        open_medium: 0,
        open_low: 0,
        open_info: 0,
    };
    for id in &m.accounts {
        rows.insert(id.clone(), blank(id));
    }
    for a in &m.account_details {
        let row = rows
            .entry(a.account_id.clone())
            .or_insert_with(|| blank(&a.account_id));
        row.name = a.name.clone().unwrap_or_default();
        row.ou_path = a.ou_path.clone().unwrap_or_default();
        row.role = match (&a.role_arn, a.status.as_str()) {
            (Some(r), _) => r.clone(),
            (None, "skipped") => "none (not tried)".into(),
            (None, _) => "caller's credentials".into(),
        };
        row.read = a.read;
        row.coverage = match a.status.as_str() {
            "partial" => "partly read",
            "not_read" => "not read",
            "skipped" => "skipped",
            _ => "read",
        }
        .into();
        row.coverage_note = a.note.clone().unwrap_or_default();
    }
    // A bundle whose manifest predates account details still has the
    // inventory's account coverage.
    for a in inv_accounts {
        if m.account_details
            .iter()
            .any(|d| d.account_id == a.account_id)
        {
            continue;
        }
        let row = rows
            .entry(a.account_id.clone())
            .or_insert_with(|| blank(&a.account_id));
        row.read = matches!(
            a.status,
            crate::inventory::AccountStatus::Read | crate::inventory::AccountStatus::Partial
        );
        row.coverage = a.status.as_str().replace('_', " ");
    }
    let open_arns: BTreeSet<&str> = open.iter().filter_map(|f| f.key_arn.as_deref()).collect();
    for k in &ev.keys {
        let Some(id) = k.account_id.as_deref() else {
            continue;
        };
        let row = rows.entry(id.to_string()).or_insert_with(|| blank(id));
        row.keys += 1;
        if k.eligibility == Some(Eligibility::Eligible) {
            row.eligible += 1;
            if !open_arns.contains(k.arn.as_str()) {
                row.compliant += 1;
            }
            match k.rotation_enabled {
                Some(true) => row.rotation_on += 1,
                Some(false) => row.rotation_off += 1,
                None => {}
            }
        }
    }
    for f in open {
        let Some(row) = f.account_id.as_deref().and_then(|a| rows.get_mut(a)) else {
            continue;
        };
        match f.severity {
            Severity::Critical => row.open_critical += 1,
            Severity::High => row.open_high += 1,
            Severity::Medium => row.open_medium += 1,
            Severity::Low => row.open_low += 1,
            Severity::Info => row.open_info += 1,
        }
    }
    for row in rows.values_mut() {
        row.percent_compliant = if row.read {
            percent(row.compliant, row.eligible)
        } else {
            "not read".into()
        };
    }
    rows.into_values().collect()
}

fn account_bars(rows: &[AccountRow]) -> Vec<charts::AccountBar> {
    rows.iter()
        .map(|r| charts::AccountBar {
            label: if r.name.is_empty() {
                r.account.clone()
            } else {
                format!("{} ({})", r.name, r.account)
            },
            state: match r.coverage.as_str() {
                "not read" => charts::AccountState::NotRead,
                "skipped" => charts::AccountState::Skipped,
                "partly read" => charts::AccountState::Partial,
                _ => charts::AccountState::Read,
            },
            eligible: r.eligible,
            compliant: r.compliant,
        })
        .collect()
}

fn reach_view(assessed: Option<&bundle::AssessmentEntry>) -> Vec<ReachView> {
    assessed
        .map(|a| a.exemptions.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|x| ReachView {
            key: x.key.clone(),
            rule: x.rule.clone(),
            approver: x.approver.clone(),
            expires: x.expires.clone(),
            status: if x.expired { "expired" } else { "applies" },
            matched: x
                .matched
                .iter()
                .map(|k| {
                    format!(
                        "{} ({}, {})",
                        k.key_arn,
                        k.account_id.as_deref().unwrap_or("unknown account"),
                        k.region
                    )
                })
                .collect(),
        })
        .collect()
}

fn coverage_view(c: &Coverage, gaps: Vec<String>) -> CoverageView {
    let regions = c.inventory.as_ref().map_or_else(Vec::new, |i| {
        i.regions
            .iter()
            .map(|r| RegionRow {
                account: r.account_id.clone().unwrap_or_default(),
                region: r.region.clone(),
                status: r.status.as_str().to_string(),
                keys_listed: r.keys_listed,
                keys_described: r.keys_described,
                error: r.error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            })
            .collect()
    });
    let (trail_sources, trail_days) = c.trail.as_ref().map_or_else(
        || (Vec::new(), Vec::new()),
        |t| {
            let sources = t
                .sources
                .iter()
                .map(|s| TrailSourceRow {
                    source: s.source.clone(),
                    kind: s.kind.clone(),
                    files_read: s.files_read,
                    files_skipped: s.files_skipped.len(),
                    files_corrupt: s.files_corrupt.len(),
                    records_kept: s.records_kept,
                    first_event: day(s.first_event),
                    last_event: day(s.last_event),
                    limits: s.limits.join("; "),
                })
                .collect();
            let days = t
                .days
                .iter()
                .map(|d| {
                    let mut shown: Vec<String> = d
                        .days_missing
                        .iter()
                        .take(10)
                        .map(|d| d.to_string())
                        .collect();
                    if d.days_missing.len() > 10 {
                        shown.push(format!("and {} more", d.days_missing.len() - 10));
                    }
                    TrailDayRow {
                        account: d.account_id.clone(),
                        region: d.region.clone(),
                        with_logs: d.days_with_logs.len(),
                        quiet: d.days_quiet.len(),
                        missing: d.days_missing.len(),
                        missing_days: shown.join(", "),
                    }
                })
                .collect();
            (sources, days)
        },
    );
    CoverageView {
        complete: c.complete,
        gaps,
        regions,
        trail_read: c.trail.is_some(),
        trail_sources,
        trail_days,
        integrity: c
            .trail
            .as_ref()
            .and_then(|t| t.integrity.as_ref())
            .map(integrity_view),
    }
}

/// Problems shown in the report; coverage.json lists every file.
const MAX_PROBLEMS_SHOWN: usize = 50;

fn integrity_view(i: &crate::trail::IntegrityCoverage) -> IntegrityView {
    use crate::trail::integrity::FileKind;
    let counts = |m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by_key(|(k, _)| !matches!(k.as_str(), "valid" | "backfill"));
        v
    };
    let line = |m: &BTreeMap<String, u64>| {
        counts(m)
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hour = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let problems: Vec<IntegrityProblemRow> = i
        .problems()
        .map(|f| IntegrityProblemRow {
            key: f.key.clone(),
            kind: match f.kind {
                FileKind::Log => "log",
                FileKind::Digest => "digest",
            },
            outcome: f.outcome.as_str(),
            hours: format!("{} → {}", hour(f.from), hour(f.to)),
            reason: f.reason.clone().unwrap_or_default(),
        })
        .collect();
    let more_problems = problems.len().saturating_sub(MAX_PROBLEMS_SHOWN);
    IntegrityView {
        signed_digests: i.signed_digests,
        public_keys: i.public_keys.join("; "),
        sources: i.sources.join(", "),
        log_files: counts(&i.log_files),
        digest_files: counts(&i.digest_files),
        by_scope: i
            .by_scope
            .iter()
            .map(|s| IntegrityScopeRow {
                account: s.account_id.clone(),
                region: s.region.clone(),
                logs: line(&s.log_files),
                digests: line(&s.digest_files),
                quiet_hours: s.quiet_hours,
            })
            .collect(),
        problems: problems.into_iter().take(MAX_PROBLEMS_SHOWN).collect(),
        more_problems,
        limits: i.limits.clone(),
    }
}

/// The hours log file integrity validation found broken, merged where they
/// touch, for the timeline.
fn broken_hours(c: &Coverage) -> Vec<charts::Band> {
    let Some(i) = c.trail.as_ref().and_then(|t| t.integrity.as_ref()) else {
        return Vec::new();
    };
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = i
        .problems()
        .filter(|f| f.outcome != crate::trail::integrity::Outcome::Pending)
        .filter_map(|f| {
            let from = f.from.or(f.to)?;
            let to = f.to.unwrap_or(from).max(from);
            Some((
                from,
                to,
                format!("{} {} ({})", f.account_id, f.region, f.outcome.as_str()),
            ))
        })
        .collect();
    spans.sort_by_key(|s| (s.0, s.1));
    let mut bands: Vec<charts::Band> = Vec::new();
    for (from, to, what) in spans {
        match bands.last_mut() {
            Some(last) if from <= last.to => {
                last.to = last.to.max(to);
                if !last.label.contains(&what) {
                    last.label.push_str("; ");
                    last.label.push_str(&what);
                }
            }
            _ => bands.push(charts::Band {
                from,
                to,
                label: what,
            }),
        }
    }
    bands
}

fn keys_for_chart(ev: &Evidence, as_of: DateTime<Utc>) -> Vec<charts::AgeBar> {
    let mut bars: Vec<charts::AgeBar> = ev
        .keys
        .iter()
        .filter(|k| is_customer_managed(k))
        .map(|k| {
            let last = last_rotation(k, &ev.rotations, &ev.events);
            let since = last.or(k.creation_date);
            charts::AgeBar {
                label: format!("{} ({})", key_name(k), k.region),
                age_days: since.map_or(0, |s| (as_of - s).num_days().max(0)),
                period_days: if k.rotation_enabled == Some(true) {
                    Some(k.rotation_period_days.unwrap_or(365))
                } else {
                    None
                },
                eligible: k.eligibility == Some(Eligibility::Eligible),
                rotated: last.is_some(),
            }
        })
        .collect();
    bars.sort_by(|a, b| b.age_days.cmp(&a.age_days).then(a.label.cmp(&b.label)));
    bars
}

fn eligibility_bars(rows: &[EligibilityRow]) -> Vec<charts::StackBar> {
    rows.iter()
        .map(|r| charts::StackBar {
            label: r.eligibility.clone(),
            eligible: r.eligible,
            rotated_by_aws: r.eligibility == Eligibility::AwsManaged.as_str(),
            on: r.rotation_on,
            off: r.rotation_off,
            na: r.not_applicable,
        })
        .collect()
}

fn timeline(ev: &Evidence) -> Vec<charts::Lane> {
    let names: BTreeMap<&str, String> = ev
        .keys
        .iter()
        .map(|k| (k.arn.as_str(), format!("{} ({})", key_name(k), k.region)))
        .collect();
    let mut lanes: BTreeMap<String, charts::Lane> = BTreeMap::new();
    let mut mark = |arn: &str, t: DateTime<Utc>, m: charts::Mark| {
        let label = names.get(arn).cloned().unwrap_or_else(|| arn.to_string());
        lanes
            .entry(label.clone())
            .or_insert_with(|| charts::Lane {
                label,
                marks: Vec::new(),
            })
            .marks
            .push((t, m));
    };
    for r in &ev.rotations {
        if let Some(t) = r.rotation_date {
            mark(&r.key_arn, t, charts::Mark::Rotation);
        }
    }
    for e in &ev.events {
        let (Some(arn), Some(t), Some(name)) = (&e.key_arn, e.event_time, &e.event_name) else {
            continue;
        };
        let m = match (name.as_str(), e.error_code.is_some()) {
            (n, true) if ROTATION_EVENTS.contains(&n) => charts::Mark::Failure,
            // Its RotateKey service event marks the one rotation.
            ("RotateKeyOnDemand", false) if e.linked_event_id.is_some() => continue,
            ("RotateKey" | "RotateKeyOnDemand", false) => charts::Mark::Rotation,
            ("DisableKeyRotation", false) => charts::Mark::Disabled,
            ("EnableKeyRotation", false) => charts::Mark::Enabled,
            _ => continue,
        };
        mark(arn, t, m);
    }
    lanes.into_values().collect()
}

// ---- rendering and writing ------------------------------------------------

fn environment() -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.contains(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("md", md_cell);
    env.add_filter("md_code", md_code);
    env.add_filter("md_code_cell", md_code_cell);
    env.add_template("report.md.j2", MD_TEMPLATE)?;
    env.add_template("report.html.j2", HTML_TEMPLATE)?;
    Ok(env)
}

/// A value from the evidence made inert in Markdown text, table cells and
/// list items alike: every character that can open a link, an image, code or
/// raw HTML (an autolink included), or end a table cell, is backslash-escaped
/// (CommonMark escapes any ASCII punctuation this way), and line breaks become
/// spaces. A principal ARN like `![x](https://evil/p.png)`
/// then renders as text and fetches nothing.
pub fn md_cell(value: String) -> String {
    // A report.md is read in terminals too: no escape sequence survives.
    let value = crate::output::display_safe(&value.replace(['\n', '\r'], " "));
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' | '`' | '[' | ']' | '(' | ')' | '!' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A value from the evidence as one Markdown code span, whatever backticks it
/// holds: the fence is longer than the longest run of backticks inside, so
/// the value cannot close it early; line breaks become spaces.
pub fn md_code(value: String) -> String {
    let value = crate::output::display_safe(&value.replace(['\n', '\r'], " "));
    let mut longest = 0;
    let mut run = 0;
    for c in value.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
}

/// [`md_code`] inside a table cell: GFM ends a cell at an unescaped `|`
/// even inside a code span, so pipes are escaped there too.
pub fn md_code_cell(value: String) -> String {
    md_code(value).replace('|', "\\|")
}

fn render(ctx: &ReportContext) -> Result<(String, String)> {
    let env = environment()?;
    let md = env
        .get_template("report.md.j2")?
        .render(ctx)
        .context("rendering report.md")?;
    let html = env
        .get_template("report.html.j2")?
        .render(ctx)
        .context("rendering report.html")?;
    Ok((md, html))
}

/// Writes the report of an assessed bundle into `out`: a new or empty
/// folder (`force` empties it first) that must not overlap the bundle.
/// Every file is written atomically.
pub fn write(
    ev: &Evidence,
    out: &Path,
    as_of: Option<DateTime<Utc>>,
    force: bool,
    due_within: i64,
) -> Result<Written> {
    crate::output::prepare_out_dir(out, force, &[&ev.dir])?;
    let as_of = as_of.unwrap_or_else(|| ev.assessed_as_of());
    let mut files: Vec<String> = Vec::new();

    for schema in [&KEYS, &ROTATIONS, &EVENTS, &FINDINGS] {
        if ev.account.is_some() {
            // One account of the bundle: its rows only, from what was read.
            let mut df = match schema.name {
                n if n == KEYS.name => crate::inventory::keys_frame(&ev.keys)?,
                n if n == ROTATIONS.name => crate::inventory::rotations_frame(&ev.rotations)?,
                n if n == EVENTS.name => crate::trail::events_frame(&ev.events)?,
                _ => crate::rules::engine::findings_frame(&ev.findings)?,
            };
            write_frame(out, schema, &mut df)?;
        } else {
            copy_frame(&ev.dir, out, schema)?;
        }
        for ext in ["csv", "parquet", "json"] {
            files.push(format!("{}.{ext}", schema.name));
        }
    }
    // The manifest (and its signature, if any) travel with the report, so the
    // auditor can check the frames against the sealed bundle.
    for name in [
        bundle::MANIFEST,
        publish::SIGNATURE,
        publish::SIGNATURE_INFO,
    ] {
        let from = ev.dir.join(name);
        if std::fs::symlink_metadata(&from).is_ok() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut crate::output::open_no_follow(&from)?, &mut bytes)
                .with_context(|| format!("copying {}", from.display()))?;
            write_bytes_atomic(&out.join(name), &bytes)?;
            files.push(name.to_string());
        }
    }
    let coverage_path = out.join(bundle::COVERAGE);
    write_json_file(&coverage_path, &ev.coverage)?;
    files.push(bundle::COVERAGE.into());

    let export_ctx = export::ExportContext {
        account: ev.manifest.accounts.first().map_or("", String::as_str),
        region: ev.manifest.regions.first().map_or("", String::as_str),
        observed_at: ev.manifest.collected_at,
        updated_at: ev
            .manifest
            .assessment
            .as_ref()
            .map_or(ev.manifest.collected_at, |a| a.assessed_at),
    };
    let bodies = export::asff_bodies(&ev.findings, &export_ctx);
    if !bodies.is_empty() {
        std::fs::create_dir_all(out.join(ASFF_DIR))
            .with_context(|| format!("creating {}", out.join(ASFF_DIR).display()))?;
        for (name, body) in &bodies {
            let rel = format!("{ASFF_DIR}/{name}");
            write_json_file(&out.join(&rel), body)?;
            files.push(rel);
        }
        let rel = format!("{ASFF_DIR}/README.md");
        write_bytes_atomic(&out.join(&rel), export::asff_readme(&bodies).as_bytes())?;
        files.push(rel);
    }
    let ocsf = export::ocsf(&ev.findings, &export_ctx);
    write_json_file(&out.join("findings.ocsf.json"), &ocsf)?;
    files.push("findings.ocsf.json".into());

    // The rules' SQL sits beside the report so its method links work offline.
    let rules = rules::load(None)?;
    std::fs::create_dir_all(out.join("rules"))?;
    for r in &rules {
        let rel = format!("rules/{}.sql", r.id);
        write_bytes_atomic(&out.join(&rel), r.full_text().as_bytes())?;
        files.push(rel);
    }

    let mut data_files = files.clone();
    data_files.retain(|f| !f.starts_with("rules/"));
    let due = due::coming_due(ev, as_of, due_within)
        .with_context(|| format!("{}: the keys coming due", ev.dir.display()))?;
    let ctx = context(ev, &rules, as_of, data_files, due);
    let (md, html) = render(&ctx)?;
    write_bytes_atomic(&out.join("report.md"), md.as_bytes())?;
    write_bytes_atomic(&out.join("report.html"), html.as_bytes())?;
    files.push("report.md".into());
    files.push("report.html".into());
    files.sort();
    write_sums(out, &files)?;
    files.push(SUMS.into());

    Ok(Written {
        out: out.to_path_buf(),
        files,
        open: ctx.summary.open,
        findings: ctx.summary.findings,
        complete: ev.coverage.complete,
    })
}

fn copy_frame(from: &Path, to: &Path, schema: &Schema) -> Result<()> {
    let mut df = read_frame(from, schema)?;
    write_frame(to, schema, &mut df)?;
    Ok(())
}

/// `SHA256SUMS` in the format `sha256sum -c` reads.
fn write_sums(out: &Path, files: &[String]) -> Result<()> {
    let mut text = String::new();
    for f in files {
        let sum = bundle::sha256_file(&out.join(f))?;
        writeln!(text, "{sum}  {f}")?;
    }
    write_bytes_atomic(&out.join(SUMS), text.as_bytes())
}

/// Checks a report folder against its `SHA256SUMS`; returns the files that
/// differ or are missing.
pub fn verify_sums(out: &Path) -> Result<Vec<String>> {
    let path = out.join(SUMS);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some((sum, file)) = line.split_once("  ") else {
            anyhow::bail!("{}: line {} is not `SHA256  FILE`", path.display(), n + 1);
        };
        match bundle::sha256_file(&out.join(file)) {
            Ok(got) if got == sum => {}
            _ => bad.push(file.to_string()),
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(md_cell("a|b\nc<script>".into()), "a\\|b c\\<script\\>");
    }

    #[test]
    fn markdown_cannot_link_or_fetch_images() {
        let hostile = "![x](https://evil.example/p.png) [click](javascript:alert(1)) `code`";
        let cell = md_cell(hostile.into());
        // Every character that opens a link, an image or code is escaped.
        let chars: Vec<char> = cell.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if "[]()!`".contains(*c) {
                assert!(
                    i > 0 && chars[i - 1] == '\\',
                    "unescaped {c} at {i} in {cell}"
                );
            }
        }
        assert_eq!(md_code("a`b".into()), "``a`b``");
        assert_eq!(md_code("`x".into()), "`` `x ``");
        assert_eq!(md_code_cell("a|b".into()), "`a\\|b`");
    }

    #[test]
    fn html_template_escapes_data() {
        let env = environment().unwrap();
        let t = env
            .template_from_named_str("x.html.j2", "<td>{{ v }}</td>")
            .unwrap();
        let out = t
            .render(minijinja::context! { v => "<img src=x onerror=alert(1)>" })
            .unwrap();
        assert_eq!(out, "<td>&lt;img src=x onerror=alert(1)&gt;</td>");
    }

    #[test]
    fn a_linked_on_demand_rotation_is_one_rotation_on_the_timeline() {
        use chrono::TimeZone;
        let mut ev = Evidence::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle"),
            false,
        )
        .unwrap();
        let key = ev.keys[0].arn.clone();
        let at = |m| Utc.with_ymd_and_hms(2026, 1, 10, 9, m, 0).unwrap();
        let row = |id: &str, name: &str, kind: &str, m, link: Option<&str>| EventRow {
            event_id: Some(id.into()),
            event_time: Some(at(m)),
            event_name: Some(name.into()),
            event_type: Some(kind.into()),
            rotation_type: Some("ON_DEMAND".into()),
            key_arn: Some(key.clone()),
            linked_event_id: link.map(str::to_string),
            source: "t".into(),
            ..EventRow::default()
        };
        ev.rotations.clear();
        let rotations = |ev: &Evidence| {
            timeline(ev)
                .iter()
                .flat_map(|l| l.marks.iter())
                .filter(|(_, m)| *m == charts::Mark::Rotation)
                .count()
        };
        ev.events = vec![
            row("call", "RotateKeyOnDemand", "AwsApiCall", 0, Some("svc")),
            row("svc", "RotateKey", "AwsServiceEvent", 2, Some("call")),
        ];
        assert_eq!(rotations(&ev), 1);
        for e in &mut ev.events {
            e.linked_event_id = None;
        }
        assert_eq!(rotations(&ev), 2, "unlinked, each record is a mark");
    }

    #[test]
    fn sums_catch_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "x\n").unwrap();
        write_sums(dir.path(), &["a.csv".into()]).unwrap();
        assert!(verify_sums(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("a.csv"), "y\n").unwrap();
        assert_eq!(verify_sums(dir.path()).unwrap(), vec!["a.csv"]);
    }
}
