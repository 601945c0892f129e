//! `kmsrot assess BUNDLE [--policy kmsrot.toml] [--as-of DATE] [--fail-on SEVERITY] [--queries DIR]`
//!
//! Runs every rule (the SQL files in `queries/`, embedded in the binary, plus
//! or instead of those in `--queries DIR`) over the bundle's frames, writes
//! `findings.parquet`, `findings.csv` and `findings.json` into the bundle,
//! records the assessment in the manifest, and prints a summary by rule and
//! severity.
//!
//! The bundle is judged as of its `collected_at`, so the same bundle gives the
//! same findings next year; `--as-of` judges it at another moment, and the
//! manifest and the report then say how many days after (or before)
//! collection that is. Events after the as-of time are ignored.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high);
//! 3 the bundle's coverage is partial; 0 otherwise; 2 usage or fatal error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::trail_scan::parse_until as parse_end;
use super::Ctx;
use crate::bundle::{self, AssessmentEntry, Manifest};
use crate::error::Outcome;
use crate::frames::{EVENTS, FINDINGS, KEYS, ROTATIONS};
use crate::output::{read_frame, write_frame, Table};
use crate::policy::{Policy, Severity};
use crate::rules::engine::{self, Evidence, Finding};
use crate::rules::{self, Rule};

#[derive(Debug, clap::Args)]
#[command(about = "Run the rules over a bundle and write its findings")]
pub struct Args {
    /// The bundle folder written by `kmsrot collect`.
    pub bundle: PathBuf,

    /// Policy file: maximum period, grace, window, severity overrides, exemptions.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Judge the bundle as of this date or time instead of its collection (a date means its last second, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_end)]
    pub as_of: Option<DateTime<Utc>>,

    /// Exit 1 when an open finding is at least this severe.
    #[arg(long, value_enum, default_value_t = Severity::High)]
    pub fail_on: Severity,

    /// Folder of extra rules (*.sql); a rule with a built-in id replaces it.
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,
}

/// What an assessment produced, for `assess` and `audit`.
pub struct Assessment {
    pub findings: Vec<Finding>,
    /// The moment the findings speak for.
    pub as_of: DateTime<Utc>,
    /// Set when that is not the day of collection.
    pub as_of_note: Option<String>,
    pub rules: Vec<Rule>,
    pub coverage_complete: bool,
    pub gaps: Vec<String>,
}

/// Assesses a bundle in place: findings written, manifest updated. Without
/// `as_of` the bundle is judged as of its `collected_at`
/// ([`rules::judged_as_of`]).
pub fn assess_bundle(
    dir: &std::path::Path,
    policy: &Policy,
    rules: Vec<Rule>,
    as_of: Option<DateTime<Utc>>,
) -> Result<Assessment> {
    let mut manifest = Manifest::read(dir)?;
    let (as_of, as_of_note) = rules::judged_as_of(manifest.collected_at, as_of);
    let coverage = bundle::read_coverage(dir)?;
    let evidence = Evidence {
        keys: read_frame(dir, &KEYS)?,
        rotations: read_frame(dir, &ROTATIONS)?,
        events: read_frame(dir, &EVENTS)?,
        trail: coverage.trail.clone(),
        window_start: manifest.audit_window.start,
    };
    let findings = engine::assess(&evidence, &rules, policy, as_of)?;
    let exemptions = engine::exemption_reach(&policy.exemptions, &evidence.keys, as_of)?;
    write_frame(dir, &FINDINGS, &mut engine::findings_frame(&findings)?)?;
    manifest.assessment = Some(AssessmentEntry {
        assessed_at: Utc::now(),
        as_of,
        policy: policy.origin.clone(),
        rules: rules
            .iter()
            .map(|r| (r.id.clone(), rules::rule_sha256(r)))
            .collect(),
        findings: findings.len(),
        open: findings.iter().filter(|f| f.status == "open").count(),
        as_of_note: as_of_note.clone(),
        exemptions,
        policy_applied: Some(policy.clone()),
    });
    manifest.seal(dir)?;
    Ok(Assessment {
        findings,
        as_of,
        as_of_note,
        rules,
        coverage_complete: coverage.complete,
        gaps: coverage.gaps(),
    })
}

/// The summary table: one row per rule that fired, most severe first.
pub fn summary_table(findings: &[Finding]) -> Table {
    let mut counts: BTreeMap<(Severity, &str), (usize, usize)> = BTreeMap::new();
    for f in findings {
        let c = counts.entry((f.severity, &f.rule_id)).or_default();
        if f.status == "open" {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let mut table = Table::new(["severity", "rule", "open", "exempted"]);
    for ((sev, rule), (open, exempted)) in counts {
        table.row([
            sev.to_string(),
            rule.to_string(),
            open.to_string(),
            exempted.to_string(),
        ]);
    }
    table
}

/// The exit outcome of an assessment.
pub fn outcome(a: &Assessment, fail_on: Severity) -> Outcome {
    let failing = a
        .findings
        .iter()
        .any(|f| f.status == "open" && f.severity.at_least(fail_on));
    if failing {
        Outcome::Findings
    } else if !a.coverage_complete {
        Outcome::Partial
    } else {
        Outcome::Complete
    }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let policy = Policy::load(args.policy.as_deref())?;
    let rules = rules::load(args.queries.as_deref())?;
    let a = assess_bundle(&args.bundle, &policy, rules, args.as_of)
        .with_context(|| format!("assessing {}", args.bundle.display()))?;

    let mut stdout = std::io::stdout().lock();
    summary_table(&a.findings).print(ctx.global.output, &mut stdout)?;
    stdout.flush()?;

    let open: Vec<&Finding> = a.findings.iter().filter(|f| f.status == "open").collect();
    let mut by_sev = String::new();
    for sev in Severity::ALL {
        let n = open.iter().filter(|f| f.severity == sev).count();
        if n > 0 {
            by_sev.push_str(&format!(" {n} {sev},"));
        }
    }
    eprintln!(
        "{} rules, {} findings ({} open:{} {} exempted) as of {}; written to {}",
        a.rules.len(),
        a.findings.len(),
        open.len(),
        by_sev.trim_end_matches(','),
        a.findings.len() - open.len(),
        crate::output::rfc3339(a.as_of),
        args.bundle.join("findings.*").display()
    );
    if let Some(note) = &a.as_of_note {
        eprintln!("note: {note}");
    }
    for g in &a.gaps {
        eprintln!("partial: {g}");
    }
    Ok(outcome(&a, args.fail_on))
}
