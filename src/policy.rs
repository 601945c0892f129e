//! `kmsrot.toml`: the rotation policy an assessment is judged against.
//!
//! ```toml
//! max_rotation_period_days = 365   # a longer RotationPeriodInDays is a finding
//! grace_days = 7                   # slack before a late rotation is a missed cycle
//! audit_window_days = 400          # default window of `collect`, ending now
//!
//! [severity]                       # per-rule overrides
//! ineligible_key_type = "low"
//!
//! [[exemption]]
//! key = "alias/legacy-batch"       # ARN, key id or alias
//! rule = "rotation_disabled"       # a rule id, or "*" for every rule
//! reason = "Decommissioned in Q1; data re-encrypted under a new key"
//! approver = "security-lead@example.com"
//! expires = "2026-03-31"           # after this day the exemption stops applying
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub const DEFAULT_MAX_PERIOD_DAYS: i64 = 365;
pub const DEFAULT_GRACE_DAYS: i64 = 7;
pub const DEFAULT_WINDOW_DAYS: i64 = 400;

/// Finding severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim().to_ascii_lowercase())
    }

    /// True when `self` is as severe as `threshold` or more.
    pub fn at_least(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemption {
    /// What it exempts: a key (ARN, key id, alias or alias ARN) for the rules
    /// over a bundle, or an infrastructure-as-code resource (a Terraform
    /// address or a CloudFormation logical id) for `kmsrot iac`.
    pub key: String,
    /// Rule id, or `*`.
    pub rule: String,
    pub reason: String,
    pub approver: String,
    /// Last day the exemption applies (UTC).
    pub expires: NaiveDate,
    /// Line of the policy file the exemption's `rule` is on, for errors.
    #[serde(skip)]
    pub line: usize,
}

impl Exemption {
    /// An exemption applies through the end of its `expires` day.
    pub fn is_expired(&self, as_of: DateTime<Utc>) -> bool {
        as_of.date_naive() > self.expires
    }

    pub fn covers_rule(&self, rule_id: &str) -> bool {
        self.rule == "*" || self.rule == rule_id
    }

    /// True when the exemption's `key` names `subject`.
    pub fn names(&self, subject: &Subject<'_>) -> bool {
        names(&self.key, subject)
    }
}

/// What an exemption can name. Every matcher goes through [`names`], so a
/// key exemption and an IaC exemption are read by the same rules.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A KMS key by ARN, with its aliases (`alias/name`).
    Key { arn: &'a str, aliases: &'a [String] },
    /// A Terraform resource address (`module.app.aws_kms_key.data[0]`) or a
    /// CloudFormation logical id (`DataKey`).
    Resource { address: &'a str },
}

/// Whether an exemption's `key = "..."` names `subject`.
///
/// A key is named by its ARN, key id, alias or alias ARN. A resource is named
/// by its exact address or logical id; an address written without instance
/// keys (`aws_kms_key.data`, `module.app.aws_kms_key.data`) names every
/// instance that `count` or `for_each` makes of it. The two never collide: key
/// ids and ARNs carry `-` or `:`, aliases start with `alias/`, and neither is a
/// valid Terraform address or CloudFormation logical id.
pub fn names(wanted: &str, subject: &Subject<'_>) -> bool {
    match *subject {
        Subject::Key { arn, aliases } => {
            // Alias names are unique per account and Region, so an alias ARN
            // (arn:aws:kms:REGION:ACCOUNT:alias/NAME) names exactly one key;
            // a bare alias/NAME or key id may match a key in each account and
            // Region (a multi-Region key's id is the same in every Region).
            let wanted = wanted.trim();
            if wanted == arn {
                return true;
            }
            let (key_scope, key_id) = match arn.rsplit_once(":key/") {
                Some((scope, id)) => (Some(scope), id),
                None => (None, arn),
            };
            if let Some((scope, name)) = wanted.split_once(":alias/") {
                return key_scope == Some(scope)
                    && aliases
                        .iter()
                        .any(|a| a.strip_prefix("alias/") == Some(name));
            }
            if wanted.starts_with("arn:") {
                // Another key's ARN.
                return false;
            }
            if wanted.starts_with("alias/") {
                return aliases.iter().any(|a| a == wanted);
            }
            wanted == key_id
        }
        Subject::Resource { address } => {
            wanted == address || (!wanted.contains('[') && strip_instance_keys(address) == wanted)
        }
    }
}

/// `module.a["x"].aws_kms_key.k[0]` → `module.a.aws_kms_key.k`. Brackets inside
/// quoted keys (`["a[1]"]`) are part of the key, not the address.
pub fn strip_instance_keys(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for ch in address.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        match ch {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            '"' if depth > 0 => in_str = true,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub max_rotation_period_days: i64,
    pub grace_days: i64,
    pub audit_window_days: i64,
    pub severity: BTreeMap<String, Severity>,
    pub exemptions: Vec<Exemption>,
    /// Where it came from: a path, or `built-in defaults`.
    pub origin: String,
    /// Line of each `[severity]` entry, for errors.
    #[serde(skip)]
    pub severity_lines: BTreeMap<String, usize>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_rotation_period_days: DEFAULT_MAX_PERIOD_DAYS,
            grace_days: DEFAULT_GRACE_DAYS,
            audit_window_days: DEFAULT_WINDOW_DAYS,
            severity: BTreeMap::new(),
            exemptions: Vec::new(),
            origin: "built-in defaults".into(),
            severity_lines: BTreeMap::new(),
        }
    }
}

/// The file as written; every field optional so defaults apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    max_rotation_period_days: Option<i64>,
    grace_days: Option<i64>,
    audit_window_days: Option<i64>,
    #[serde(default)]
    severity: BTreeMap<toml::Spanned<String>, String>,
    #[serde(default, rename = "exemption")]
    exemptions: Vec<RawExemption>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemption {
    key: String,
    rule: Option<toml::Spanned<String>>,
    reason: String,
    approver: String,
    expires: toml::Value,
}

impl Policy {
    /// Loads `path`, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Policy> {
        let Some(path) = path else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read policy file: {e}", path.display()))?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// Parses policy text; errors are one line: `FILE:LINE: problem`.
    pub fn parse(text: &str, origin: &str) -> Result<Policy> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            anyhow::anyhow!("{origin}:{line}: {}", e.message().trim())
        })?;
        let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let line_of = |needle: &str| -> usize {
            text.lines()
                .position(|l| l.contains(needle))
                .map_or(1, |i| i + 1)
        };
        let mut policy = Policy {
            origin: origin.to_string(),
            ..Policy::default()
        };
        if let Some(v) = raw.max_rotation_period_days {
            // AWS accepts 90..=2560 days; a policy outside that can never be met.
            if !(90..=2560).contains(&v) {
                bail!(
                    "{origin}:{}: max_rotation_period_days = {v} is outside AWS's range 90..=2560",
                    line_of("max_rotation_period_days")
                );
            }
            policy.max_rotation_period_days = v;
        }
        if let Some(v) = raw.grace_days {
            if !(0..=365).contains(&v) {
                bail!(
                    "{origin}:{}: grace_days = {v} must be 0..=365",
                    line_of("grace_days")
                );
            }
            policy.grace_days = v;
        }
        if let Some(v) = raw.audit_window_days {
            if !(1..=3650).contains(&v) {
                bail!(
                    "{origin}:{}: audit_window_days = {v} must be 1..=3650",
                    line_of("audit_window_days")
                );
            }
            policy.audit_window_days = v;
        }
        for (rule, sev) in raw.severity {
            let line = line_at(rule.span().start);
            let rule = rule.into_inner();
            let Some(level) = Severity::parse(&sev) else {
                bail!(
                    "{origin}:{line}: severity for {rule} is {sev:?}; use critical, high, medium, low or info"
                );
            };
            policy.severity_lines.insert(rule.clone(), line);
            policy.severity.insert(rule, level);
        }
        for e in raw.exemptions {
            let line = line_of(&e.key);
            let (rule, rule_line) = match e.rule {
                Some(r) => (r.get_ref().clone(), line_at(r.span().start)),
                None => ("*".to_string(), line),
            };
            let expires = match &e.expires {
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::String(s) => s.clone(),
                other => bail!(
                    "{origin}:{line}: exemption for {}: expires must be a date, got {other}",
                    e.key
                ),
            };
            let day = expires.get(..10).unwrap_or(&expires);
            let Ok(expires) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                bail!("{origin}:{line}: exemption for {}: expires {expires:?} is not a YYYY-MM-DD date", e.key);
            };
            for (field, value) in [
                ("key", &e.key),
                ("reason", &e.reason),
                ("approver", &e.approver),
            ] {
                if value.trim().is_empty() {
                    bail!("{origin}:{line}: exemption {field} must not be empty");
                }
            }
            policy.exemptions.push(Exemption {
                key: e.key,
                rule,
                reason: e.reason,
                approver: e.approver,
                expires,
                line: rule_line,
            });
        }
        Ok(policy)
    }

    /// Checks that every rule the policy names exists among `known`: a typo
    /// (`rotation_disabld = "info"`) would otherwise be ignored, and an
    /// exemption its author thought active would not be. The error names the
    /// line and the closest rule id.
    pub fn check_rule_ids<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let known: Vec<&str> = known.into_iter().collect();
        let suggest = |name: &str| -> String {
            known
                .iter()
                .map(|k| (edit_distance(name, k), *k))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!("; the rules are {}", known.join(", ")))
        };
        for rule in self.severity.keys() {
            if !known.contains(&rule.as_str()) {
                let line = self.severity_lines.get(rule).copied().unwrap_or(1);
                bail!(
                    "{}:{line}: [severity] names no rule `{}`{}",
                    self.origin,
                    crate::output::display_safe(rule),
                    suggest(rule)
                );
            }
        }
        for e in &self.exemptions {
            if e.rule != "*" && !known.contains(&e.rule.as_str()) {
                bail!(
                    "{}:{}: exemption for {}: rule `{}` is not a rule id{} (or \"*\" for every rule)",
                    self.origin,
                    e.line.max(1),
                    crate::output::display_safe(&e.key),
                    crate::output::display_safe(&e.rule),
                    suggest(&e.rule)
                );
            }
        }
        Ok(())
    }

    /// The severity of a rule after the policy's overrides.
    pub fn severity_for(&self, rule_id: &str, default: Severity) -> Severity {
        self.severity.get(rule_id).copied().unwrap_or(default)
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn defaults_without_a_file() {
        let p = Policy::load(None).unwrap();
        assert_eq!(
            (
                p.max_rotation_period_days,
                p.grace_days,
                p.audit_window_days
            ),
            (365, 7, 400)
        );
    }

    #[test]
    fn a_full_policy_parses() {
        let p = Policy::parse(
            r#"
max_rotation_period_days = 180
grace_days = 3

[severity]
ineligible_key_type = "low"

[[exemption]]
key = "alias/legacy"
rule = "rotation_disabled"
reason = "retired"
approver = "ciso@example.com"
expires = 2026-03-31
"#,
            "kmsrot.toml",
        )
        .unwrap();
        assert_eq!(p.max_rotation_period_days, 180);
        assert_eq!(
            p.severity_for("ineligible_key_type", Severity::Info),
            Severity::Low
        );
        let e = &p.exemptions[0];
        assert!(!e.is_expired(Utc.with_ymd_and_hms(2026, 3, 31, 23, 0, 0).unwrap()));
        assert!(e.is_expired(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()));
    }

    #[test]
    fn errors_name_the_line() {
        let err = Policy::parse(
            "grace_days = 7\nmax_rotation_period_days = \"a year\"\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("p.toml:2:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = Policy::parse("max_rotation_period_days = 30\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.toml:1:") && err.contains("90..=2560"),
            "{err}"
        );
        let err = Policy::parse("\n[severity]\nmissed_cycle = \"urgent\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml:3:"), "{err}");
        let err = Policy::parse("colour = 1\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.toml:1:") && err.contains("colour"),
            "{err}"
        );
    }

    #[test]
    fn unknown_rule_ids_are_errors_naming_the_line() {
        let known = ["rotation_disabled", "missed_cycle"];
        let p = Policy::parse(
            "grace_days = 3\n\n[severity]\nmissed_cycle = \"low\"\nrotation_disabld = \"info\"\n",
            "kmsrot.toml",
        )
        .unwrap();
        let err = p.check_rule_ids(known).unwrap_err().to_string();
        assert!(err.starts_with("kmsrot.toml:5:"), "{err}");
        assert!(
            err.contains("rotation_disabld") && err.contains("did you mean `rotation_disabled`"),
            "{err}"
        );

        let p = Policy::parse(
            "[[exemption]]\nkey = \"alias/a\"\nreason = \"r\"\napprover = \"x\"\nexpires = 2030-01-01\n\n[[exemption]]\nkey = \"alias/b\"\nrule = \"misssed_cycle\"\nreason = \"r\"\napprover = \"x\"\nexpires = 2030-01-01\n",
            "kmsrot.toml",
        )
        .unwrap();
        let err = p.check_rule_ids(known).unwrap_err().to_string();
        assert!(err.starts_with("kmsrot.toml:9:"), "{err}");
        assert!(
            err.contains("misssed_cycle") && err.contains("`missed_cycle`"),
            "{err}"
        );

        // "*" and known ids pass.
        let p = Policy::parse(
            "[severity]\nmissed_cycle = \"low\"\n[[exemption]]\nkey = \"k\"\nrule = \"*\"\nreason = \"r\"\napprover = \"x\"\nexpires = 2030-01-01\n",
            "p.toml",
        )
        .unwrap();
        p.check_rule_ids(known).unwrap();
    }

    #[test]
    fn exemptions_name_keys_and_iac_resources_alike() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let aliases = vec!["alias/app".to_string()];
        let key = Subject::Key {
            arn,
            aliases: &aliases,
        };
        for wanted in [
            arn,
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/app",
            "arn:aws:kms:us-east-1:111122223333:alias/app",
        ] {
            assert!(names(wanted, &key), "{wanted}");
        }
        assert!(!names("alias/other", &key));
        assert!(!names("aws_kms_key.app", &key));

        let tf = Subject::Resource {
            address: r#"module.app["eu[1]"].aws_kms_key.data[0]"#,
        };
        assert!(names(r#"module.app["eu[1]"].aws_kms_key.data[0]"#, &tf));
        assert!(names("module.app.aws_kms_key.data", &tf));
        assert!(!names("aws_kms_key.data", &tf));
        assert!(!names("module.app.aws_kms_key.data[1]", &tf));
        let cfn = Subject::Resource { address: "DataKey" };
        assert!(names("DataKey", &cfn));
        assert!(!names("DataKey2", &cfn));
        assert!(!names(arn, &cfn));
    }

    #[test]
    fn severity_order() {
        assert!(Severity::Critical.at_least(Severity::High));
        assert!(Severity::High.at_least(Severity::High));
        assert!(!Severity::Medium.at_least(Severity::High));
    }
}
