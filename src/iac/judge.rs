//! The IaC rules, applied to one [`KeyResource`] under a [`Policy`].
//!
//! Rule ids are shared with the rules over a bundle where they mean the same
//! thing (`rotation_disabled`, `period_exceeds_policy`, `ineligible_key_type`,
//! `replica_follows_primary`), so one `[severity]` override or exemption in
//! `kmsrot.toml` governs a key before and after it exists.

use chrono::{DateTime, Utc};

use super::{Dialect, Fact, KeyResource, ResourceKind};
use crate::policy::{Policy, Severity, Subject};

/// AWS's bounds on RotationPeriodInDays (EnableKeyRotation API reference).
pub const MIN_PERIOD: i64 = 90;
pub const MAX_PERIOD: i64 = 2560;
/// The period AWS applies when none is given.
pub const DEFAULT_PERIOD: i64 = 365;

/// How a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A failure; counts toward `--fail-on`.
    Open,
    /// A failure an active exemption covers.
    Exempted,
    /// Rotation does not apply to this key type; listed with the reason.
    NotApplicable,
    /// A value known only at apply or deploy: not judged, never a pass.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Exempted => "exempted",
            Status::NotApplicable => "not_applicable",
            Status::Unknown => "unknown",
        }
    }

    /// Order of rows: what fails first, then what could not be judged.
    pub fn rank(self) -> u8 {
        match self {
            Status::Open => 0,
            Status::Unknown => 1,
            Status::Exempted => 2,
            Status::NotApplicable => 3,
        }
    }
}

/// A rule's metadata, for the SARIF rule list and the README.
#[derive(Debug)]
pub struct IacRule {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    /// A failure, a not-applicable listing, or an unknown.
    pub status: Status,
    pub description: &'static str,
    pub controls: &'static [&'static str],
}

const ROTATION_CONTROLS: &[&str] = &[
    "CIS AWS Foundations 3.6 (v3.0-v5.0)",
    "AWS Security Hub KMS.4",
    "PCI DSS v4.0 3.7.4",
    "NIST SP 800-53 SC-12",
];

pub const RULES: &[IacRule] = &[
    IacRule {
        id: "rotation_disabled",
        title: "Automatic rotation off on a symmetric encryption key",
        severity: Severity::High,
        status: Status::Open,
        description: "A SYMMETRIC_DEFAULT key with AWS_KMS key material whose rotation setting is false or not set. AWS's default is off, so a key declared without it is created without rotation.",
        controls: ROTATION_CONTROLS,
    },
    IacRule {
        id: "period_out_of_range",
        title: "Rotation period outside 90..=2560 days",
        severity: Severity::High,
        status: Status::Open,
        description: "RotationPeriodInDays must be 90 to 2560; AWS rejects any other value when the change is applied, so the key is left without the rotation the code asks for.",
        controls: ROTATION_CONTROLS,
    },
    IacRule {
        id: "period_exceeds_policy",
        title: "Rotation period longer than the policy allows",
        severity: Severity::Medium,
        status: Status::Open,
        description: "The rotation period (as set, or AWS's default of 365 days when not set) is above the policy's max_rotation_period_days.",
        controls: ROTATION_CONTROLS,
    },
    IacRule {
        id: "ineligible_key_type",
        title: "Key type that AWS cannot rotate automatically",
        severity: Severity::Info,
        status: Status::NotApplicable,
        description: "Asymmetric and HMAC keys, imported key material (origin EXTERNAL) and keys in a custom key store have no automatic rotation; they are listed with the reason and the compensating practice.",
        controls: &[],
    },
    IacRule {
        id: "replica_follows_primary",
        title: "Multi-Region replica key: rotation follows the primary",
        severity: Severity::Info,
        status: Status::NotApplicable,
        description: "A replica shares the rotation setting of its primary key; the primary is where rotation is judged and set.",
        controls: &[],
    },
    IacRule {
        id: "unknown_until_apply",
        title: "Rotation cannot be judged before apply or deploy",
        severity: Severity::Info,
        status: Status::Unknown,
        description: "A value the rules need is known only when the plan is applied or the stack deployed (a computed value, a parameter without a default, GetAtt...). It is reported as unknown, never as compliant.",
        controls: &[],
    },
];

pub fn rule(id: &str) -> &'static IacRule {
    RULES
        .iter()
        .find(|r| r.id == id)
        .expect("every rule id used in judge.rs is in RULES")
}

/// One row of `iac_findings`.
#[derive(Debug, Clone, PartialEq)]
pub struct IacFinding {
    pub source_file: String,
    pub resource: String,
    pub resource_type: String,
    pub rule_id: &'static str,
    pub severity: Severity,
    pub status: Status,
    pub detail: String,
    /// The exact line to add (HCL or YAML/JSON), or the practice that replaces it.
    pub remediation: String,
    pub line: Option<usize>,
}

/// The rows for one resource; none when it is compliant.
pub fn judge(r: &KeyResource, policy: &Policy, as_of: DateTime<Utc>) -> Vec<IacFinding> {
    let mut rows = Vec::new();
    let n = r.names;
    let mut row = |rule_id: &'static str,
                   detail: String,
                   remediation: String,
                   line: Option<usize>| {
        let meta = rule(rule_id);
        let mut detail = detail;
        if rule_id == "ineligible_key_type" && r.rotation == Fact::Known(true) {
            // EnableKeyRotation API reference: UnsupportedOperationException.
            detail.push_str(&format!(
                    " {} = true here is refused by AWS (UnsupportedOperationException) when applied; remove it.",
                    n.rotation
                ));
        }
        if let Some(note) = &r.note {
            detail.push(' ');
            detail.push_str(note);
        }
        rows.push(IacFinding {
            source_file: r.source_file.clone(),
            resource: r.address.clone(),
            resource_type: r.resource_type.clone(),
            rule_id,
            severity: policy.severity_for(rule_id, meta.severity),
            status: meta.status,
            detail,
            remediation,
            line: line.or(r.line),
        });
    };
    let set_rotation = line(r.dialect, n.rotation, "true");
    let set_period = |days: i64| line(r.dialect, n.period, &days.to_string());

    match r.kind {
        ResourceKind::ReplicaKey => {
            row(
                "replica_follows_primary",
                "Multi-Region replica key: it shares the rotation setting of its primary key, so rotation is judged on the primary; not applicable here.".into(),
                format!("On the primary key: {set_rotation}"),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        ResourceKind::ExternalKey => {
            row(
                "ineligible_key_type",
                "Imported key material (origin EXTERNAL): AWS KMS does not rotate it automatically; not applicable.".into(),
                "Import new key material and call RotateKeyOnDemand on your cryptoperiod, or move the alias to a new key".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        ResourceKind::Key => {}
    }

    // The type decides eligibility, so it is read before the rotation setting.
    let mut unknowns: Vec<String> = Vec::new();
    match &r.custom_key_store {
        Fact::Known(id) => {
            row(
                "ineligible_key_type",
                format!("Key in a custom key store ({id}): AWS KMS does not rotate it automatically; not applicable."),
                "Rotate in the key store (CloudHSM or external key manager), or move the alias to a new KMS key on your cryptoperiod".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        Fact::Unknown(_) => {
            row(
                "ineligible_key_type",
                "Key in a custom key store (its id is known only after apply): AWS KMS does not rotate it automatically; not applicable.".into(),
                "Rotate in the key store (CloudHSM or external key manager), or move the alias to a new KMS key on your cryptoperiod".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        Fact::Absent => {}
    }
    match &r.origin {
        Fact::Known(o) if o == "EXTERNAL" => {
            row(
                "ineligible_key_type",
                "Imported key material (Origin EXTERNAL): AWS KMS does not rotate it automatically; not applicable.".into(),
                "Import new key material and call RotateKeyOnDemand on your cryptoperiod, or move the alias to a new key".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        Fact::Known(o) if o == "AWS_CLOUDHSM" || o == "EXTERNAL_KEY_STORE" => {
            row(
                "ineligible_key_type",
                format!("Key in a custom key store (Origin {o}): AWS KMS does not rotate it automatically; not applicable."),
                "Rotate in the key store (CloudHSM or external key manager), or move the alias to a new KMS key on your cryptoperiod".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        Fact::Known(_) | Fact::Absent => {}
        Fact::Unknown(why) => unknowns.push(why.clone()),
    }
    match &r.key_spec {
        Fact::Known(spec) if spec != "SYMMETRIC_DEFAULT" => {
            let what = if spec.starts_with("HMAC_") {
                "HMAC key"
            } else {
                "Asymmetric key"
            };
            row(
                "ineligible_key_type",
                format!("{what} ({spec}): AWS KMS rotates only SYMMETRIC_DEFAULT keys automatically; not applicable."),
                "Create a new key and move the alias to it on your cryptoperiod (asymmetric and HMAC keys have no automatic or on-demand rotation)".into(),
                None,
            );
            return finish(rows, r, policy, as_of);
        }
        Fact::Known(_) => {}
        // Not set: SYMMETRIC_DEFAULT, AWS's default and the provider's.
        Fact::Absent => {
            if let Fact::Known(usage) = &r.key_usage {
                if usage != "ENCRYPT_DECRYPT" {
                    row(
                        "ineligible_key_type",
                        format!("{} is {usage} with no key spec: not a symmetric encryption key, which is the only kind AWS KMS rotates; not applicable.", n.usage),
                        "Create a new key and move the alias to it on your cryptoperiod".into(),
                        None,
                    );
                    return finish(rows, r, policy, as_of);
                }
            }
        }
        Fact::Unknown(why) => unknowns.push(why.clone()),
    }

    // A period AWS rejects fails the apply whatever the rotation setting.
    if let Fact::Known(p) = r.period {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&p) {
            row(
                "period_out_of_range",
                format!(
                    "{}: {} = {p} is outside {MIN_PERIOD}..={MAX_PERIOD} days; AWS rejects it when the change is applied.",
                    doing(r),
                    n.period
                ),
                set_period(policy.max_rotation_period_days),
                r.period_line,
            );
        }
    }

    let rotation_on = match &r.rotation {
        Fact::Known(true) => true,
        Fact::Known(false) | Fact::Absent => {
            let how = match r.rotation {
                Fact::Known(false) => format!("{} is false", n.rotation),
                _ => format!("{} is not set, and AWS's default is off", n.rotation),
            };
            let mut detail = format!("{} with automatic rotation off: {how}.", doing(r));
            if r.enabled == Fact::Known(false) {
                detail.push_str(&format!(
                    " The key is also disabled ({} = false); enable it before rotation can be turned on.",
                    n.enabled
                ));
            }
            if r.multi_region == Fact::Known(true) {
                detail.push_str(" It is a multi-Region primary: its replicas share this setting.");
            }
            if !unknowns.is_empty() {
                detail.push_str(&format!(
                    " (Also unknown until apply: {}.)",
                    unknowns.join("; ")
                ));
            }
            row(
                "rotation_disabled",
                detail,
                set_rotation.clone(),
                r.rotation_line,
            );
            false
        }
        Fact::Unknown(why) => {
            unknowns.insert(0, why.clone());
            false
        }
    };

    if matches!(r.rotation, Fact::Unknown(_)) {
        row(
            "unknown_until_apply",
            format!(
                "{}: rotation cannot be judged before {}: {}.",
                doing(r),
                when(r),
                unknowns.join("; ")
            ),
            format!(
                "Set it literally so it can be checked before {}: {set_rotation}",
                when(r)
            ),
            r.rotation_line,
        );
    } else if !unknowns.is_empty() && rotation_on {
        row(
            "unknown_until_apply",
            format!(
                "{}: the key type cannot be judged before {}: {}.",
                doing(r),
                when(r),
                unknowns.join("; ")
            ),
            format!(
                "Set the key spec literally so it can be checked before {}",
                when(r)
            ),
            None,
        );
    }

    if rotation_on {
        let max = policy.max_rotation_period_days;
        match &r.period {
            Fact::Known(p) if (MIN_PERIOD..=MAX_PERIOD).contains(p) && *p > max => row(
                "period_exceeds_policy",
                format!(
                    "{}: rotation every {p} days ({} = {p}), above the policy's maximum of {max} ({}).",
                    doing(r),
                    n.period,
                    policy.origin
                ),
                set_period(max),
                r.period_line,
            ),
            Fact::Absent if DEFAULT_PERIOD > max => row(
                "period_exceeds_policy",
                format!(
                    "{}: {} is not set, so AWS rotates on its default of {DEFAULT_PERIOD} days, above the policy's maximum of {max} ({}).",
                    doing(r),
                    n.period,
                    policy.origin
                ),
                set_period(max),
                r.rotation_line,
            ),
            Fact::Unknown(why) => row(
                "unknown_until_apply",
                format!(
                    "{}: the rotation period cannot be judged before {}: {why}.",
                    doing(r),
                    when(r)
                ),
                format!(
                    "Set it literally so it can be checked before {}: {}",
                    when(r),
                    set_period(max)
                ),
                r.period_line,
            ),
            _ => {}
        }
    }
    finish(rows, r, policy, as_of)
}

/// Applies exemptions to the failures: an active one marks the row
/// exempted; an expired one leaves it open and says so.
fn finish(
    mut rows: Vec<IacFinding>,
    r: &KeyResource,
    policy: &Policy,
    as_of: DateTime<Utc>,
) -> Vec<IacFinding> {
    let subject = Subject::Resource {
        address: &r.address,
    };
    for f in rows.iter_mut().filter(|f| f.status == Status::Open) {
        let matching: Vec<_> = policy
            .exemptions
            .iter()
            .filter(|e| e.covers_rule(f.rule_id) && e.names(&subject))
            .collect();
        if let Some(e) = matching.iter().find(|e| !e.is_expired(as_of)) {
            f.status = Status::Exempted;
            f.detail.push_str(&format!(
                " Exempted until {} by {}: {}",
                e.expires, e.approver, e.reason
            ));
        } else if let Some(e) = matching.first() {
            f.detail.push_str(&format!(
                " An exemption ({} by {}) expired on {}.",
                e.reason, e.approver, e.expires
            ));
        }
    }
    rows
}

/// What the document does with the resource, as the start of a sentence.
fn doing(r: &KeyResource) -> &'static str {
    match r.action {
        "create" => "To be created by this plan",
        "replace" => "To be replaced by this plan",
        "update" => "To be updated by this plan",
        "import" => "To be imported by this plan",
        "no-op" => "Left unchanged by this plan",
        "change" => "Changed by this plan",
        "state" => "In the Terraform state",
        _ => match r.dialect {
            Dialect::Terraform => "Declared",
            Dialect::CloudFormationYaml | Dialect::CloudFormationJson => "Declared in the template",
        },
    }
}

/// When the unknown becomes known.
fn when(r: &KeyResource) -> &'static str {
    match r.dialect {
        Dialect::Terraform => "apply",
        Dialect::CloudFormationYaml | Dialect::CloudFormationJson => "deploy",
    }
}

/// The exact line that sets `name` to `value` in the resource's language.
fn line(dialect: Dialect, name: &str, value: &str) -> String {
    match dialect {
        Dialect::Terraform => format!("{name} = {value}"),
        Dialect::CloudFormationYaml => format!("{name}: {value}"),
        Dialect::CloudFormationJson => format!("\"{name}\": {value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iac::KeyResource;
    use chrono::TimeZone;

    fn key(dialect: Dialect, ty: &str) -> KeyResource {
        KeyResource::new("f", "aws_kms_key.k".into(), ty, dialect, "create").unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap()
    }

    fn ids(rows: &[IacFinding]) -> Vec<(&str, Status, Severity)> {
        rows.iter()
            .map(|f| (f.rule_id, f.status, f.severity))
            .collect()
    }

    #[test]
    fn rotation_absent_or_false_is_high_and_says_the_line_to_add() {
        let p = Policy::default();
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        let rows = judge(&k, &p, now());
        assert_eq!(
            ids(&rows),
            [("rotation_disabled", Status::Open, Severity::High)]
        );
        assert_eq!(rows[0].remediation, "enable_key_rotation = true");
        assert!(
            rows[0].detail.contains("AWS's default is off"),
            "{}",
            rows[0].detail
        );
        k.rotation = Fact::Known(false);
        k.enabled = Fact::Known(false);
        let rows = judge(&k, &p, now());
        assert!(rows[0].detail.contains("is false") && rows[0].detail.contains("disabled"));
        let mut c = key(Dialect::CloudFormationYaml, "AWS::KMS::Key");
        c.rotation = Fact::Known(false);
        assert_eq!(
            judge(&c, &p, now())[0].remediation,
            "EnableKeyRotation: true"
        );
        let c = key(Dialect::CloudFormationJson, "AWS::KMS::Key");
        assert_eq!(
            judge(&c, &p, now())[0].remediation,
            "\"EnableKeyRotation\": true"
        );
    }

    #[test]
    fn periods_against_aws_and_policy() {
        let strict = Policy::parse("max_rotation_period_days = 180\n", "kmsrot.toml").unwrap();
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        k.rotation = Fact::Known(true);
        assert!(judge(&k, &Policy::default(), now()).is_empty());
        let rows = judge(&k, &strict, now());
        assert_eq!(
            ids(&rows),
            [("period_exceeds_policy", Status::Open, Severity::Medium)]
        );
        assert!(rows[0].detail.contains("default"), "{}", rows[0].detail);
        assert_eq!(rows[0].remediation, "rotation_period_in_days = 180");
        k.period = Fact::Known(180);
        assert!(judge(&k, &strict, now()).is_empty());
        k.period = Fact::Known(400);
        assert_eq!(
            ids(&judge(&k, &Policy::default(), now())),
            [("period_exceeds_policy", Status::Open, Severity::Medium)]
        );
        for bad in [89, 2561, -1] {
            k.period = Fact::Known(bad);
            assert_eq!(
                ids(&judge(&k, &Policy::default(), now())),
                [("period_out_of_range", Status::Open, Severity::High)],
                "{bad}"
            );
        }
        for edge in [90, 365] {
            k.period = Fact::Known(edge);
            assert!(judge(&k, &Policy::default(), now()).is_empty(), "{edge}");
        }
        k.period = Fact::Known(2560);
        assert_eq!(
            judge(&k, &Policy::default(), now())[0].rule_id,
            "period_exceeds_policy"
        );
        // Out of range fails the apply even with rotation off.
        k.rotation = Fact::Known(false);
        k.period = Fact::Known(3000);
        let got: Vec<&str> = judge(&k, &Policy::default(), now())
            .iter()
            .map(|f| f.rule_id)
            .collect();
        assert_eq!(got, ["period_out_of_range", "rotation_disabled"]);
    }

    #[test]
    fn ineligible_types_are_listed_not_failed() {
        let p = Policy::default();
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        k.key_spec = Fact::Known("RSA_2048".into());
        let rows = judge(&k, &p, now());
        assert_eq!(
            ids(&rows),
            [("ineligible_key_type", Status::NotApplicable, Severity::Info)]
        );
        assert!(rows[0].detail.contains("Asymmetric"));
        k.key_spec = Fact::Known("HMAC_256".into());
        assert!(judge(&k, &p, now())[0].detail.contains("HMAC"));
        k.rotation = Fact::Known(true);
        assert!(judge(&k, &p, now())[0]
            .detail
            .contains("UnsupportedOperationException"));
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        k.custom_key_store = Fact::Known("cks-1234".into());
        assert_eq!(judge(&k, &p, now())[0].status, Status::NotApplicable);
        let mut c = key(Dialect::CloudFormationYaml, "AWS::KMS::Key");
        c.origin = Fact::Known("EXTERNAL".into());
        assert!(judge(&c, &p, now())[0].detail.contains("EXTERNAL"));
        for ty in [
            "aws_kms_external_key",
            "aws_kms_replica_key",
            "AWS::KMS::ReplicaKey",
        ] {
            let rows = judge(&key(Dialect::Terraform, ty), &p, now());
            assert_eq!(rows.len(), 1, "{ty}");
            assert_eq!(rows[0].status, Status::NotApplicable, "{ty}");
        }
    }

    #[test]
    fn unknowns_are_reported_not_failed() {
        let p = Policy::default();
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        k.rotation = Fact::Unknown("enable_key_rotation is known only after apply".into());
        let rows = judge(&k, &p, now());
        assert_eq!(
            ids(&rows),
            [("unknown_until_apply", Status::Unknown, Severity::Info)]
        );
        let mut k = key(Dialect::Terraform, "aws_kms_key");
        k.rotation = Fact::Known(true);
        k.period = Fact::Unknown("set from var.x".into());
        assert_eq!(judge(&k, &p, now())[0].status, Status::Unknown);
        k.period = Fact::Absent;
        k.key_spec = Fact::Unknown("spec unknown".into());
        assert_eq!(judge(&k, &p, now())[0].status, Status::Unknown);
        // Rotation off is a failure even when the spec is unknown.
        k.rotation = Fact::Known(false);
        let rows = judge(&k, &p, now());
        assert_eq!(
            ids(&rows),
            [("rotation_disabled", Status::Open, Severity::High)]
        );
        assert!(rows[0].detail.contains("spec unknown"));
    }

    #[test]
    fn policy_severities_and_exemptions_apply() {
        let p = Policy::parse(
            "[severity]\nrotation_disabled = \"critical\"\n\n[[exemption]]\nkey = \"module.legacy.aws_kms_key.k\"\nrule = \"rotation_disabled\"\nreason = \"retired\"\napprover = \"ciso@example.com\"\nexpires = 2026-06-30\n\n[[exemption]]\nkey = \"Old\"\nrule = \"*\"\nreason = \"gone\"\napprover = \"a\"\nexpires = 2025-01-01\n",
            "kmsrot.toml",
        )
        .unwrap();
        let k = key(Dialect::Terraform, "aws_kms_key");
        assert_eq!(judge(&k, &p, now())[0].severity, Severity::Critical);
        let mut m = k.clone();
        m.address = "module.legacy[0].aws_kms_key.k[\"a\"]".into();
        let rows = judge(&m, &p, now());
        assert_eq!(rows[0].status, Status::Exempted);
        assert!(rows[0].detail.contains("ciso@example.com"));
        let later = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        let rows = judge(&m, &p, later);
        assert_eq!(rows[0].status, Status::Open);
        assert!(rows[0].detail.contains("expired"));
        let mut old = key(Dialect::CloudFormationYaml, "AWS::KMS::Key");
        old.address = "Old".into();
        let rows = judge(&old, &p, now());
        assert_eq!(rows[0].status, Status::Open);
        assert!(rows[0].detail.contains("expired on 2025-01-01"));
    }
}
