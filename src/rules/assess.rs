//! Assessing a bundle in place: the rules run over its frames, the findings
//! written beside them, and the assessment (rules' SHA-256, as-of, policy,
//! each exemption's reach) recorded in the manifest.
//!
//! A bundle is judged as of its `collected_at` unless an as-of is asked for
//! ([`super::judged_as_of`]), so it gives the same findings whenever it is
//! assessed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::engine::{self, Evidence, Finding};
use super::Rule;
use crate::bundle::{self, AssessmentEntry, Manifest};
use crate::error::Outcome;
use crate::frames::{EVENTS, FINDINGS, KEYS, ROTATIONS};
use crate::output::{frame_records, read_frame, write_frame, Table};
use crate::policy::{Policy, Severity};

/// What an assessment produced.
#[derive(Debug)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    /// The moment the findings speak for.
    pub as_of: DateTime<Utc>,
    /// Set when that is not the day of collection: "judged N days after
    /// collection" (or before).
    pub as_of_note: Option<String>,
    pub rules: Vec<Rule>,
    pub coverage_complete: bool,
    pub gaps: Vec<String>,
}

/// Rule id → SHA-256 of its full text, so a changed rule shows in the manifest.
pub fn rule_hashes(rules: &[Rule]) -> BTreeMap<String, String> {
    rules.iter().map(|r| (r.id.clone(), r.sha256())).collect()
}

/// How a bundle is assessed besides the policy and rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssessOptions<'a> {
    /// Go on when the bundle does not match its manifest.
    pub allow_modified: bool,
    /// The previous assessed bundle: findings still open keep their
    /// `first_seen` from it.
    pub previous: Option<&'a Path>,
}

/// Assesses the bundle in `dir`: findings written, manifest updated. The
/// bundle is verified against its manifest before anything is read or
/// written, and only the files written here are re-hashed into it, so a file
/// changed behind kmsrot's back still fails `verify-bundle` afterwards.
/// `now` is when the assessment ran; `as_of` the date it judges at.
pub fn assess_bundle(
    dir: &Path,
    policy: &Policy,
    rules: Vec<Rule>,
    as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: AssessOptions<'_>,
) -> Result<Assessment> {
    policy.check_rule_ids(rules.iter().map(|r| r.id.as_str()))?;
    let opened = bundle::open(dir, opts.allow_modified)?;
    let mut manifest: Manifest = opened.manifest;
    let earlier: Vec<Finding> = match opts.previous {
        Some(p) => {
            bundle::open(p, opts.allow_modified)?;
            frame_records(&read_frame(p, &FINDINGS)?, &FINDINGS)
                .with_context(|| format!("{}: the previous findings", p.display()))?
        }
        None => Vec::new(),
    };
    let (as_of, as_of_note) = super::judged_as_of(manifest.collected_at, as_of);
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
    let exemptions = engine::exemption_reach(&policy.exemptions, &evidence.keys, as_of)?;
    let written = write_frame(dir, &FINDINGS, &mut engine::findings_frame(&findings)?)?;
    manifest.assessment = Some(AssessmentEntry {
        assessed_at: now,
        as_of,
        policy: policy.origin.clone(),
        rules: rule_hashes(&rules),
        findings: findings.len(),
        open: findings.iter().filter(|f| f.is_open()).count(),
        as_of_note: as_of_note.clone(),
        exemptions,
        policy_applied: Some(policy.clone()),
    });
    manifest.seal_files(dir, &written)?;
    Ok(Assessment {
        findings,
        as_of,
        as_of_note,
        rules,
        coverage_complete: coverage.complete,
        gaps: coverage.gaps(),
    })
}

impl Assessment {
    /// One row per rule that fired, most severe first.
    pub fn summary_table(&self) -> Table {
        let mut counts: BTreeMap<(Severity, &str), (usize, usize)> = BTreeMap::new();
        for f in &self.findings {
            let c = counts.entry((f.severity, &f.rule_id)).or_default();
            if f.is_open() {
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

    /// `N open: 2 high, 1 medium` counts for the summary line.
    pub fn open_by_severity(&self) -> (usize, String) {
        let open: Vec<&Finding> = self.findings.iter().filter(|f| f.is_open()).collect();
        let mut by_sev = String::new();
        for sev in Severity::ALL {
            let n = open.iter().filter(|f| f.severity == sev).count();
            if n > 0 {
                by_sev.push_str(&format!(" {n} {sev},"));
            }
        }
        (open.len(), by_sev.trim_end_matches(',').to_string())
    }

    /// Findings first: an open finding at or above `fail_on` is exit 1 even
    /// when coverage is partial; partial coverage alone is exit 3.
    pub fn outcome(&self, fail_on: Severity) -> Outcome {
        let failing = self
            .findings
            .iter()
            .any(|f| f.is_open() && f.severity.at_least(fail_on));
        if failing {
            Outcome::Findings
        } else if !self.coverage_complete {
            Outcome::Partial
        } else {
            Outcome::Complete
        }
    }
}
