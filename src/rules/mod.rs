//! Rules: plain SQL files in `queries/`, each opening with a header an auditor
//! can read without knowing Rust:
//!
//! ```sql
//! -- id: rotation_disabled
//! -- title: Automatic rotation is off on an eligible key
//! -- severity: high
//! -- controls:
//! --   - CIS AWS Foundations 3.6 (3.8 in v1.3-v2.0)
//! --   - AWS Security Hub KMS.4
//! -- compliance: failed
//! -- remediation: aws kms enable-key-rotation --key-id KEY_ARN
//! -- aws: What AWS documents that the rule relies on, in one sentence, with
//! --   the AWS documentation page (required of the built-in rules).
//! -- description: Optional longer text; continuation lines start with
//! --   "--" and two or more spaces.
//! SELECT ...
//! ```
//!
//! `controls` is a list, one control per `--   - ` line, so a control's own
//! text may hold `;` or `,`. `compliance` says what a finding of the rule
//! means for the controls: `failed` (the default: the control is not met) or
//! `warning` (evidence is missing, or the check does not apply to the key),
//! as Security Hub's `Compliance.Status` and OCSF's `compliance.status_id`
//! carry it.
//!
//! A query returns one row per finding with the columns `account_id`,
//! `region`, `key_arn`, `detail`, and optionally `evidence` and `subject`
//! (what tells two findings of one rule and key apart, such as a principal).
//! The built-in rules are embedded in the binary; `--queries DIR` replaces
//! rules with the same id and adds new ones.

use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::frames::{Schema, CALL_FAILURES, KEY_CLOCK, POLICY_STATEMENTS, TRAIL_ROTATIONS};
use crate::policy::Severity;

pub mod assess;
pub mod derived;
pub mod engine;
pub mod facts;
pub mod key_policy;

pub use assess::{assess_bundle, AssessOptions, Assessment};
#[cfg(test)]
mod scenario_tests;

/// What a finding of a rule says about its controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compliance {
    /// The control is not met.
    Failed,
    /// The evidence to judge it is missing, or the check does not apply.
    Warning,
}

impl Compliance {
    /// The value of ASFF's `Compliance.Status`, also written in the findings frame.
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Failed => "FAILED",
            Compliance::Warning => "WARNING",
        }
    }
}

/// A rule loaded from SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// One entry per control, as listed in the header.
    pub controls: Vec<String>,
    pub compliance: Compliance,
    pub remediation: String,
    /// The AWS behaviour the rule relies on, with the page that documents it.
    pub aws: String,
    pub description: String,
    pub sql: String,
    /// `built-in queries/<id>.sql` or the path it was read from.
    pub origin: String,
}

/// A table derived from the frames and `params` before the rules run, so
/// that rules reading the same facts share one definition. (The `derived`
/// module adapts the frames themselves; these are tables of their own.)
pub struct DerivedTable {
    pub schema: Schema,
    pub origin: &'static str,
    pub derivation: Derivation,
}

/// How a derived table is made.
pub enum Derivation {
    /// SQL run over the frames and `params`.
    Sql(&'static str),
    /// Computed in Rust (`src/rules/facts.rs`, `src/rules/key_policy.rs`),
    /// where the logic is too procedural for plain SQL (walking enable/disable
    /// calls in order, grouping sessions under their role, matching IAM
    /// wildcards in policy JSON); this is its definition in words, which the
    /// report ships and the manifest's hash covers with the rule.
    Rust(&'static str),
}

pub const DERIVED_TABLES: &[DerivedTable] = &[
    DerivedTable {
        schema: KEY_CLOCK,
        origin: "src/rules/facts.rs key_clock",
        derivation: Derivation::Rust(facts::KEY_CLOCK_DEFINITION),
    },
    DerivedTable {
        schema: CALL_FAILURES,
        origin: "src/rules/facts.rs call_failures",
        derivation: Derivation::Rust(facts::CALL_FAILURES_DEFINITION),
    },
    DerivedTable {
        schema: TRAIL_ROTATIONS,
        origin: "src/rules/facts.rs is_in_progress",
        derivation: Derivation::Rust(facts::TRAIL_ROTATIONS_DEFINITION),
    },
    DerivedTable {
        schema: POLICY_STATEMENTS,
        origin: "src/rules/key_policy.rs statements",
        derivation: Derivation::Rust(key_policy::POLICY_STATEMENTS_DEFINITION),
    },
];

impl Rule {
    /// The derived tables this rule reads.
    pub fn derived_tables(&self) -> impl Iterator<Item = &'static DerivedTable> + '_ {
        DERIVED_TABLES
            .iter()
            .filter(|d| self.sql.contains(d.schema.name))
    }

    /// Everything that decides the rule's findings: its SQL, then the SQL of
    /// each derived table it reads. The report ships this text and the
    /// manifest records its SHA-256.
    pub fn full_text(&self) -> String {
        let mut text = self.sql.clone();
        for d in self.derived_tables() {
            let body = match d.derivation {
                Derivation::Sql(sql) => sql.trim_end().to_string(),
                Derivation::Rust(words) => words
                    .trim()
                    .lines()
                    .map(|l| format!("-- {}", l.trim()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            text.push_str(&format!(
                "\n\n-- {} ({}), derived before the rules run:\n{body}",
                d.schema.name, d.origin,
            ));
        }
        text
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.full_text().as_bytes()))
    }
}

/// The rules shipped with kmsrot, embedded at build time.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "rotation_disabled",
        include_str!("../../queries/rotation_disabled.sql"),
    ),
    (
        "rotation_off_disabled_key",
        include_str!("../../queries/rotation_off_disabled_key.sql"),
    ),
    (
        "missed_cycle",
        include_str!("../../queries/missed_cycle.sql"),
    ),
    (
        "never_rotated",
        include_str!("../../queries/never_rotated.sql"),
    ),
    (
        "material_age_exceeds_policy",
        include_str!("../../queries/material_age_exceeds_policy.sql"),
    ),
    (
        "period_exceeds_policy",
        include_str!("../../queries/period_exceeds_policy.sql"),
    ),
    (
        "permission_failure",
        include_str!("../../queries/permission_failure.sql"),
    ),
    (
        "rotation_call_failed",
        include_str!("../../queries/rotation_call_failed.sql"),
    ),
    (
        "rotation_disabled_event",
        include_str!("../../queries/rotation_disabled_event.sql"),
    ),
    (
        "policy_denies_rotation",
        include_str!("../../queries/policy_denies_rotation.sql"),
    ),
    (
        "policy_conditionally_denies_rotation",
        include_str!("../../queries/policy_conditionally_denies_rotation.sql"),
    ),
    (
        "policy_denies_on_demand_rotation",
        include_str!("../../queries/policy_denies_on_demand_rotation.sql"),
    ),
    (
        "orphaned_policy_principal",
        include_str!("../../queries/orphaned_policy_principal.sql"),
    ),
    (
        "pending_deletion",
        include_str!("../../queries/pending_deletion.sql"),
    ),
    (
        "ineligible_key_type",
        include_str!("../../queries/ineligible_key_type.sql"),
    ),
    (
        "replica_follows_primary",
        include_str!("../../queries/replica_follows_primary.sql"),
    ),
    (
        "evidence_gap",
        include_str!("../../queries/evidence_gap.sql"),
    ),
    (
        "history_mismatch",
        include_str!("../../queries/history_mismatch.sql"),
    ),
    (
        "trail_integrity",
        include_str!("../../queries/trail_integrity.sql"),
    ),
    (
        "exemption_expired",
        include_str!("../../queries/exemption_expired.sql"),
    ),
];

/// Parses one rule file. `stem` is the file name without `.sql`; the header's
/// id must equal it, so a rule is found by its file name.
pub fn parse(stem: &str, text: &str, origin: &str) -> Result<Rule> {
    // (name, inline value, list entries)
    let mut fields: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut body_start = text.len();
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if let Some(comment) = trimmed.strip_prefix("--") {
            if let Some(rest) = comment.strip_prefix("  ").filter(|_| !fields.is_empty()) {
                let rest = rest.trim();
                let Some((_, value, items)) = fields.last_mut() else {
                    unreachable!("fields is not empty")
                };
                if let Some(item) = rest.strip_prefix("- ").or((rest == "-").then_some("")) {
                    if !value.is_empty() {
                        bail!(
                            "{origin}:{}: a list entry after a field that has a value on its line",
                            n + 1
                        );
                    }
                    items.push(item.trim().to_string());
                } else if let Some(last) = items.last_mut() {
                    // The continuation of a list entry.
                    last.push(' ');
                    last.push_str(rest);
                } else {
                    // The continuation of the previous field.
                    value.push(' ');
                    value.push_str(rest);
                }
            } else if let Some((k, v)) = comment.trim().split_once(':') {
                fields.push((
                    k.trim().to_ascii_lowercase(),
                    v.trim().to_string(),
                    Vec::new(),
                ));
            }
            offset += line.len();
        } else if trimmed.trim().is_empty() && fields.is_empty() {
            offset += line.len();
        } else {
            body_start = offset;
            break;
        }
    }
    let get = |name: &str| -> Option<String> {
        fields
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, _)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let need = |name: &str| -> Result<String> {
        get(name).with_context(|| format!("{origin}: header lacks `-- {name}: ...`"))
    };
    let id = need("id")?;
    if id != stem {
        bail!("{origin}: header id {id:?} differs from the file name {stem:?}.sql");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || !id.starts_with(|c: char| c.is_ascii_lowercase())
    {
        bail!("{origin}: rule id {id:?} must be lower_snake_case");
    }
    let sev = need("severity")?;
    let Some(severity) = Severity::parse(&sev) else {
        bail!("{origin}: severity {sev:?} is not one of critical, high, medium, low, info");
    };
    let remediation = need("remediation")?;
    if remediation.starts_with("http://") || remediation.starts_with("https://") {
        // A link is not a remediation: say what to do, link in the description.
        bail!("{origin}: remediation must say what to do, not only link to it");
    }
    let controls = match fields.iter().find(|(k, _, _)| k == "controls") {
        None => bail!("{origin}: header lacks `-- controls:` and its list"),
        Some((_, inline, _)) if !inline.trim().is_empty() => bail!(
            "{origin}: controls must be a list, one control per line (`--   - CIS AWS Foundations 3.6`), not {inline:?}"
        ),
        Some((_, _, items)) if items.is_empty() || items.iter().any(|c| c.is_empty()) => {
            bail!("{origin}: controls must list at least one control, and no empty entry")
        }
        Some((_, _, items)) => items.clone(),
    };
    let compliance = match get("compliance").as_deref().map(str::to_ascii_lowercase) {
        None => Compliance::Failed,
        Some(v) if v == "failed" => Compliance::Failed,
        Some(v) if v == "warning" => Compliance::Warning,
        Some(v) => bail!("{origin}: compliance {v:?} is not `failed` or `warning`"),
    };
    let sql = text[body_start..].trim().trim_end_matches(';').to_string();
    if sql.is_empty() {
        bail!("{origin}: no SQL after the header");
    }
    Ok(Rule {
        id,
        title: need("title")?,
        severity,
        controls,
        compliance,
        remediation,
        aws: get("aws").unwrap_or_default(),
        description: get("description").unwrap_or_default(),
        sql,
        origin: origin.to_string(),
    })
}

/// The moment an assessment judges a bundle, and a note when it is not the
/// day the evidence was collected.
///
/// Without `--as-of` it is the bundle's `collected_at`: the evidence speaks
/// for that moment, so the same bundle gives the same findings whenever it
/// is assessed. A later as-of ages the evidence (rotations due since
/// collection count as missed, though KMS may have made them); an earlier one
/// leaves out every event after it.
pub fn judged_as_of(
    collected_at: DateTime<Utc>,
    requested: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, Option<String>) {
    let Some(as_of) = requested else {
        return (collected_at, None);
    };
    let days = (as_of - collected_at).num_days();
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    let note = match days {
        0 => None,
        d if d > 0 => Some(format!(
            "judged {d} day{} after collection (collected {}, judged as of {}): what happened since collection is not in the evidence",
            plural(d),
            crate::frames::time::rfc3339(collected_at),
            crate::frames::time::rfc3339(as_of)
        )),
        d => Some(format!(
            "judged {} day{} before collection (collected {}, judged as of {}): events after the as-of time are ignored",
            -d,
            plural(-d),
            crate::frames::time::rfc3339(collected_at),
            crate::frames::time::rfc3339(as_of)
        )),
    };
    (as_of, note)
}

/// The built-in rules, then those in `dir` (same id replaces, new id adds).
pub fn load(dir: Option<&Path>) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (stem, text) in BUILTIN {
        rules.push(parse(stem, text, &format!("built-in queries/{stem}.sql"))?);
    }
    let Some(dir) = dir else {
        return Ok(rules);
    };
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the queries folder", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    for path in paths {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let rule = parse(&stem, &text, &path.display().to_string())?;
        match rules.iter_mut().find(|r| r.id == rule.id) {
            Some(slot) => *slot = rule,
            None => rules.push(rule),
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_rule_parses() {
        let rules = load(None).unwrap();
        assert_eq!(rules.len(), BUILTIN.len());
        for r in &rules {
            assert!(!r.controls.is_empty(), "{} has no controls", r.id);
            // An auditor reads the AWS behaviour a rule relies on, and where
            // AWS documents it, in the rule itself.
            assert!(
                r.aws.contains("https://docs.aws.amazon.com/"),
                "{} has no `-- aws:` sentence with its AWS doc page",
                r.id
            );
            assert!(r.sql.to_ascii_uppercase().contains("SELECT"), "{}", r.id);
        }
    }

    #[test]
    fn every_sql_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "sql") {
                let stem = path.file_stem().unwrap().to_str().unwrap();
                assert!(
                    BUILTIN.iter().any(|(id, _)| *id == stem),
                    "queries/{stem}.sql is not listed in rules::BUILTIN"
                );
            }
        }
    }

    #[test]
    fn broken_headers_are_refused() {
        let ok = "-- id: x\n-- title: T\n-- severity: low\n-- controls:\n--   - A\n-- remediation: do it\nSELECT 1";
        assert!(parse("x", ok, "x.sql").is_ok());
        let cases = [
            (
                ok.replace("-- id: x", "-- id: y"),
                "differs from the file name",
            ),
            (ok.replace("low", "severe"), "severity"),
            (ok.replace("-- title: T\n", ""), "title"),
            (ok.replace("do it", "https://example.com"), "remediation"),
            (ok.replace("SELECT 1", ""), "no SQL"),
            (
                ok.replace("-- controls:\n--   - A", "-- controls: A; B"),
                "controls must be a list",
            ),
            (ok.replace("--   - A\n", ""), "at least one control"),
            (
                ok.replace("-- remediation", "-- compliance: maybe\n-- remediation"),
                "compliance",
            ),
        ];
        for (text, want) in cases {
            let err = parse("x", &text, "x.sql").unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn a_bundle_is_judged_as_of_its_collection() {
        use chrono::{Duration, TimeZone};
        let collected = Utc.with_ymd_and_hms(2026, 1, 10, 8, 0, 0).unwrap();
        assert_eq!(judged_as_of(collected, None), (collected, None));
        assert_eq!(judged_as_of(collected, Some(collected)).1, None);
        let later = judged_as_of(collected, Some(collected + Duration::days(30)));
        assert!(
            later
                .1
                .as_deref()
                .unwrap()
                .starts_with("judged 30 days after collection"),
            "{later:?}"
        );
        let earlier = judged_as_of(collected, Some(collected - Duration::days(1)));
        assert!(
            earlier
                .1
                .as_deref()
                .unwrap()
                .starts_with("judged 1 day before collection"),
            "{earlier:?}"
        );
    }

    #[test]
    fn a_rule_that_reads_a_derived_table_carries_its_definition() {
        let rules = load(None).unwrap();
        let denied = rules.iter().find(|r| r.id == "permission_failure").unwrap();
        assert!(denied.full_text().contains(
            "-- call_failures (src/rules/facts.rs call_failures), derived before the rules run:"
        ));
        assert_ne!(
            denied.sha256(),
            hex::encode(Sha256::digest(denied.sql.as_bytes()))
        );
        // A rule that reads none hashes exactly its own SQL.
        let plain = rules.iter().find(|r| r.id == "rotation_disabled").unwrap();
        assert_eq!(plain.full_text(), plain.sql);
    }

    #[test]
    fn continuation_lines_join() {
        let text = "-- id: x\n-- title: T\n-- severity: low\n-- controls:\n--   - A (v1; v2)\n--   - B,\n--     continued\n-- compliance: warning\n-- remediation: do\n--   it now\nSELECT 1;";
        let r = parse("x", text, "x.sql").unwrap();
        assert_eq!(r.remediation, "do it now");
        assert_eq!(r.controls, vec!["A (v1; v2)", "B, continued"]);
        assert_eq!(r.compliance, Compliance::Warning);
        assert_eq!(r.sql, "SELECT 1");
    }

    #[test]
    fn rotation_disabled_keeps_its_cis_versions_in_one_control() {
        let rules = load(None).unwrap();
        let r = rules.iter().find(|r| r.id == "rotation_disabled").unwrap();
        let cis: Vec<&String> = r.controls.iter().filter(|c| c.contains("CIS")).collect();
        assert_eq!(cis.len(), 1, "{:?}", r.controls);
        assert!(cis[0].contains("3.6") && cis[0].contains("3.8"), "{cis:?}");
        // No entry is a fragment of another: every control of every rule
        // names its framework (an AWS Config rule is a check, not a standard).
        for rule in &rules {
            for c in &rule.controls {
                assert!(
                    crate::report::export::standard_of(c).is_some() || c.starts_with("AWS Config "),
                    "{}: {c:?} names no known standard",
                    rule.id
                );
            }
        }
    }
}
