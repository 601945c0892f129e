//! `kmsrot assess BUNDLE [--policy kmsrot.toml] [--as-of DATE] [--fail-on SEVERITY] [--queries DIR]`
//!
//! Runs every rule (the SQL files in `queries/`, embedded in the binary, plus
//! or instead of those in `--queries DIR`) over the bundle's frames, writes
//! `findings.parquet`, `findings.csv` and `findings.json` into the bundle,
//! records the assessment in the manifest, and prints a summary by rule and
//! severity.
//!
//! `--as-of` fixes "now", so the same bundle gives the same findings next year.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high);
//! 3 the bundle's coverage is partial; 0 otherwise; 2 usage or fatal error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

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

    /// Judge the bundle as of this date or time instead of now (a date means its last second, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_end)]
    pub as_of: Option<DateTime<Utc>>,

    /// Exit 1 when an open finding is at least this severe.
    #[arg(long, value_enum, default_value_t = Severity::High)]
    pub fail_on: Severity,

    /// Folder of extra rules (*.sql); a rule with a built-in id replaces it.
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// The previous assessed bundle: findings still open keep the date they were first seen.
    #[arg(long, value_name = "BUNDLE")]
    pub previous: Option<PathBuf>,

    /// Go on when the bundle does not match its manifest; the files that
    /// differ keep their sealed hashes, so the bundle still fails verification.
    #[arg(long)]
    pub allow_modified: bool,
}

/// What an assessment produced, for `assess` and `audit`.
pub struct Assessment {
    pub findings: Vec<Finding>,
    pub rules: Vec<Rule>,
    pub coverage_complete: bool,
    pub gaps: Vec<String>,
}

/// Assesses a bundle in place: findings written, manifest updated. The
/// bundle is verified against its manifest before anything is read or
/// written, and only the files written here are re-hashed into it.
pub fn assess_bundle(
    dir: &std::path::Path,
    policy: &Policy,
    rules: Vec<Rule>,
    as_of: DateTime<Utc>,
    allow_modified: bool,
    previous: Option<&std::path::Path>,
) -> Result<Assessment> {
    policy.check_rule_ids(rules.iter().map(|r| r.id.as_str()))?;
    let opened = bundle::open(dir, allow_modified)?;
    let mut manifest: Manifest = opened.manifest;
    let earlier: Vec<Finding> = match previous {
        Some(p) => {
            bundle::open(p, allow_modified)?;
            crate::output::frame_records(&read_frame(p, &FINDINGS)?, &FINDINGS)
                .with_context(|| format!("{}: the previous findings", p.display()))?
        }
        None => Vec::new(),
    };
    let coverage = bundle::read_coverage(dir)?;
    let evidence = Evidence {
        keys: read_frame(dir, &KEYS)?,
        rotations: read_frame(dir, &ROTATIONS)?,
        events: read_frame(dir, &EVENTS)?,
        trail: coverage.trail.clone(),
        window_start: manifest.audit_window.start,
    };
    let mut findings = engine::assess(&evidence, &rules, policy, as_of)?;
    engine::date_findings(&mut findings, manifest.collected_at, &earlier);
    let written = write_frame(dir, &FINDINGS, &mut engine::findings_frame(&findings)?)?;
    manifest.assessment = Some(AssessmentEntry {
        assessed_at: Utc::now(),
        as_of,
        policy: policy.origin.clone(),
        rules: rules
            .iter()
            .map(|r| (r.id.clone(), hex::encode(Sha256::digest(r.sql.as_bytes()))))
            .collect(),
        findings: findings.len(),
        open: findings.iter().filter(|f| f.status == "open").count(),
    });
    manifest.seal_files(dir, &written)?;
    Ok(Assessment {
        findings,
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
    let as_of = args.as_of.unwrap_or_else(Utc::now);
    let a = assess_bundle(
        &args.bundle,
        &policy,
        rules,
        as_of,
        args.allow_modified,
        args.previous.as_deref(),
    )
    .with_context(|| format!("assessing {}", args.bundle.display()))?;

    let mut stdout = crate::output::stdout();
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
        crate::output::rfc3339(as_of),
        args.bundle.join("findings.*").display()
    );
    for g in &a.gaps {
        eprintln!("partial: {}", crate::output::display_safe(g));
    }
    Ok(outcome(&a, args.fail_on))
}
