//! Findings in the shapes other tools import: AWS Security Finding Format
//! (Security Hub `BatchImportFindings` request bodies) and OCSF's Compliance
//! Finding class.
//!
//! Security Hub takes at most 100 findings a request, and a finding's
//! ProductArn must name the region of the endpoint it is sent to, so the
//! ASFF is one body per account and region, split in hundreds, never empty:
//! `asff/ACCOUNT-REGION-N.json`, each sent with
//! `aws securityhub batch-import-findings --region REGION --cli-input-json file://asff/ACCOUNT-REGION-N.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::frames::time::rfc3339;
use crate::policy::Severity;
use crate::rules::engine::Finding;

/// The most findings one BatchImportFindings request takes.
pub const ASFF_BATCH: usize = 100;
/// The OCSF version whose fields are written: `resources` on a Compliance
/// Finding needs 1.3.0 or later.
pub const OCSF_VERSION: &str = "1.3.0";

/// What the exports need besides the findings.
pub struct ExportContext<'a> {
    /// For findings that carry no account or region of their own.
    pub account: &'a str,
    pub region: &'a str,
    /// When the evidence was collected: the default first and last seen.
    pub observed_at: DateTime<Utc>,
    /// When the findings were judged (the assessment): ASFF's UpdatedAt.
    pub updated_at: DateTime<Utc>,
}

/// Security Hub caps Title at 256 and Description at 1024 characters.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn asff_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Info => "INFORMATIONAL",
    }
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The standard a control belongs to, by its full name, from the way the
/// rules' headers name controls (`PCI DSS v4.0 3.7.4`, `NIST SP 800-53
/// SC-12`). `None` for what is not a standard, such as an AWS Config rule.
pub fn standard_of(control: &str) -> Option<&'static str> {
    const STANDARDS: &[(&str, &str)] = &[
        ("CIS AWS Foundations", "CIS AWS Foundations Benchmark"),
        (
            "AWS Security Hub",
            "AWS Foundational Security Best Practices",
        ),
        ("PCI DSS v4.0", "PCI DSS v4.0"),
        ("PCI DSS v3.2.1", "PCI DSS v3.2.1"),
        ("PCI DSS", "PCI DSS"),
        ("NIST SP 800-53", "NIST SP 800-53 Rev. 5"),
        ("NIST SP 800-57", "NIST SP 800-57 Part 1 Rev. 5"),
        ("SOC 2", "SOC 2"),
    ];
    STANDARDS
        .iter()
        .find(|(prefix, _)| control.starts_with(prefix))
        .map(|(_, name)| *name)
}

fn standards(f: &Finding) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = f.controls.iter().filter_map(|c| standard_of(c)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// ASFF Types: Security Hub's own taxonomy, with the industry standards the
/// controls belong to.
fn asff_types(f: &Finding) -> Vec<String> {
    let mut types =
        vec!["Software and Configuration Checks/AWS Security Best Practices".to_string()];
    for s in standards(f) {
        let classifier = match s {
            "CIS AWS Foundations Benchmark" => "CIS AWS Foundations Benchmark",
            "PCI DSS v4.0" | "PCI DSS v3.2.1" | "PCI DSS" => "PCI-DSS Controls",
            "NIST SP 800-53 Rev. 5" => "NIST 800-53 Controls",
            _ => continue,
        };
        let t = format!(
            "Software and Configuration Checks/Industry and Regulatory Standards/{classifier}"
        );
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types
}

/// A name safe as part of a file name: the account and region come from the
/// bundle, which is input.
fn file_part(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

fn first_seen(f: &Finding, ctx: &ExportContext) -> DateTime<Utc> {
    f.first_seen.unwrap_or(ctx.observed_at)
}

fn last_seen(f: &Finding, ctx: &ExportContext) -> DateTime<Utc> {
    f.last_seen
        .unwrap_or(ctx.observed_at)
        .max(first_seen(f, ctx))
}

fn asff_finding(f: &Finding, acct: &str, reg: &str, ctx: &ExportContext) -> Value {
    let created = first_seen(f, ctx);
    let updated = ctx.updated_at.max(created);
    let resource = match &f.key_arn {
        Some(arn) => json!({
            "Type": "AwsKmsKey",
            "Id": clip(arn, 512),
            "Partition": partition(reg),
            "Region": reg,
        }),
        None => json!({
            "Type": "AwsAccount",
            "Id": format!("AWS::::Account:{acct}"),
            "Partition": partition(reg),
            "Region": reg,
        }),
    };
    let exempted = !f.is_open();
    let severity = json!({"Label": asff_label(f.severity), "Original": f.severity.as_str()});
    let types = asff_types(f);
    let requirements: Vec<String> = f.controls.iter().take(32).map(|c| clip(c, 256)).collect();
    let mut v = json!({
        "SchemaVersion": "2018-10-08",
        "Id": clip(&format!("kmsrot/{}", f.finding_id), 512),
        "ProductArn": format!("arn:{}:securityhub:{reg}:{acct}:product/{acct}/default", partition(reg)),
        "GeneratorId": clip(&format!("kmsrot/{}", f.rule_id), 512),
        "AwsAccountId": acct,
        "Region": reg,
        "Types": types,
        "CreatedAt": rfc3339(created),
        "UpdatedAt": rfc3339(updated),
        "FirstObservedAt": rfc3339(created),
        "LastObservedAt": rfc3339(last_seen(f, ctx)),
        "Severity": severity,
        "Title": clip(&f.title, 256),
        "Description": clip(&f.detail, 1024),
        "Remediation": {"Recommendation": {"Text": clip(&f.remediation, 512)}},
        "Resources": [resource],
        "Compliance": {
            "Status": if f.compliance == "WARNING" { "WARNING" } else { "FAILED" },
            "RelatedRequirements": requirements,
        },
        "Workflow": {"Status": if exempted { "SUPPRESSED" } else { "NEW" }},
        "RecordState": "ACTIVE",
        "ProductFields": {
            "kmsrot/rule_id": clip(&f.rule_id, 256),
            "kmsrot/status": f.status.as_str(),
        },
        // Security Hub keeps what the provider says here apart from what a
        // user changes with BatchUpdateFindings.
        "FindingProviderFields": {
            "Severity": severity,
            "Types": types,
        },
    });
    if let Some(reason) = &f.exemption_reason {
        v["Note"] = json!({
            "Text": clip(&format!("Exempted: {reason} (until {})", f.exemption_expires.as_deref().unwrap_or("?")), 512),
            "UpdatedBy": "kmsrot",
            "UpdatedAt": rfc3339(updated),
        });
    }
    v
}

/// The BatchImportFindings request bodies: one per account and region, at
/// most [`ASFF_BATCH`] findings each, as (file name, body). No findings, no
/// bodies. Findings without an account or region take the context's.
pub fn asff_bodies(findings: &[Finding], ctx: &ExportContext) -> Vec<(String, Value)> {
    let mut groups: BTreeMap<(&str, &str), Vec<Value>> = BTreeMap::new();
    for f in findings {
        let acct = f.account_id.as_deref().unwrap_or(ctx.account);
        let reg = f.region.as_deref().unwrap_or(ctx.region);
        groups
            .entry((acct, reg))
            .or_default()
            .push(asff_finding(f, acct, reg, ctx));
    }
    let mut out = Vec::new();
    for ((acct, reg), items) in groups {
        for (n, chunk) in items.chunks(ASFF_BATCH).enumerate() {
            out.push((
                format!("{}-{}-{}.json", file_part(acct), file_part(reg), n + 1),
                json!({ "Findings": chunk }),
            ));
        }
    }
    out
}

/// How to send the bodies, for the `asff/` folder.
pub fn asff_readme(bodies: &[(String, Value)]) -> String {
    let mut s = String::from(
        "# Security Hub findings (ASFF)\n\n\
Each file is one `BatchImportFindings` request: the findings of one account and region \
(a finding's ProductArn must name the region it is sent to), at most 100 of them. \
Send each from that account, in that region, from this folder:\n\n```sh\n",
    );
    for (name, body) in bodies {
        let region = body["Findings"][0]["Region"].as_str().unwrap_or("REGION");
        s.push_str(&format!(
            "aws securityhub batch-import-findings --region {} --cli-input-json file://{name}\n",
            crate::output::display_safe(region)
        ));
    }
    s.push_str("```\n\nThe answer's FailedCount must be 0; FailedFindings names any finding Security Hub refused.\n");
    s
}

fn ocsf_severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn account(uid: &str) -> Value {
    json!({"uid": uid, "type": "AWS Account", "type_id": 10})
}

/// An array of OCSF Compliance Finding events ([`OCSF_VERSION`], class 2003,
/// category 2 Findings, activity 1 Create, the `cloud` profile).
pub fn ocsf(findings: &[Finding], ctx: &ExportContext) -> Value {
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let (severity_id, severity) = ocsf_severity(f.severity);
            let acct = f.account_id.as_deref().unwrap_or(ctx.account);
            let region = f.region.as_deref().unwrap_or(ctx.region);
            let exempted = !f.is_open();
            let created = first_seen(f, ctx).timestamp_millis();
            let last = last_seen(f, ctx).timestamp_millis();
            let mut resources = Vec::new();
            if let Some(arn) = &f.key_arn {
                resources.push(json!({
                    "uid": arn,
                    "type": "AWS::KMS::Key",
                    "region": region,
                    "cloud_partition": partition(region),
                    "owner": {"account": account(acct)},
                }));
            }
            let (compliance, compliance_id) = if f.compliance == "WARNING" {
                ("Warning", 2)
            } else {
                ("Fail", 3)
            };
            json!({
                "class_uid": 2003,
                "class_name": "Compliance Finding",
                "category_uid": 2,
                "category_name": "Findings",
                "activity_id": 1,
                "activity_name": "Create",
                "type_uid": 200301,
                "type_name": "Compliance Finding: Create",
                "severity_id": severity_id,
                "severity": severity,
                "status_id": if exempted { 3 } else { 1 },
                "status": if exempted { "Suppressed" } else { "New" },
                "time": ctx.updated_at.timestamp_millis(),
                "message": f.title,
                "finding_info": {
                    "uid": f.finding_id,
                    "title": f.title,
                    "desc": f.detail,
                    "types": [f.rule_id],
                    "created_time": created,
                    "first_seen_time": created,
                    "last_seen_time": last,
                },
                "compliance": {
                    "control": f.rule_id,
                    "requirements": f.controls,
                    "standards": standards(f),
                    "status": compliance,
                    "status_id": compliance_id,
                    "status_detail": f.detail,
                },
                "remediation": {"desc": f.remediation},
                "resources": resources,
                "cloud": {"provider": "AWS", "account": account(acct), "region": region},
                "metadata": {
                    "version": OCSF_VERSION,
                    "profiles": ["cloud"],
                    "product": {"name": "kmsrot", "vendor_name": "kmsrot", "version": env!("CARGO_PKG_VERSION")},
                },
                "unmapped": {"exemption_reason": f.exemption_reason, "exemption_expires": f.exemption_expires},
            })
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::engine::FindingStatus;
    use chrono::TimeZone;

    fn finding(region: &str, n: usize) -> Finding {
        Finding {
            finding_id: format!("kr-{n}"),
            rule_id: "rotation_disabled".into(),
            severity: Severity::High,
            status: FindingStatus::Open,
            account_id: Some("111122223333".into()),
            region: Some(region.into()),
            key_arn: Some(format!("arn:aws:kms:{region}:111122223333:key/k{n}")),
            title: "Rotation disabled".into(),
            detail: "d".into(),
            evidence: None,
            controls: vec![
                "CIS AWS Foundations 3.6 (v3.0-v5.0; 3.8 in v1.3-v2.0)".into(),
                "PCI DSS v4.0 3.7.4".into(),
                "AWS Config cmk-backing-key-rotation-enabled".into(),
            ],
            compliance: "FAILED".into(),
            remediation: "aws kms enable-key-rotation".into(),
            exemption_reason: None,
            exemption_expires: None,
            first_seen: None,
            last_seen: None,
        }
    }

    fn ctx() -> ExportContext<'static> {
        ExportContext {
            account: "999",
            region: "eu-west-1",
            observed_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            updated_at: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn asff_has_the_batch_import_shape() {
        let bodies = asff_bodies(&[finding("us-east-1", 1)], &ctx());
        let f = &bodies[0].1["Findings"][0];
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
        );
        assert_eq!(f["FindingProviderFields"]["Severity"]["Label"], "HIGH");
        assert_eq!(f["FindingProviderFields"]["Types"], f["Types"]);
        assert_eq!(f["Resources"][0]["Type"], "AwsKmsKey");
        assert_eq!(
            f["Compliance"]["RelatedRequirements"][0],
            "CIS AWS Foundations 3.6 (v3.0-v5.0; 3.8 in v1.3-v2.0)"
        );
        assert_eq!(f["CreatedAt"], "2026-11-01T00:00:00Z");
        assert_eq!(f["FirstObservedAt"], "2026-11-01T00:00:00Z");
        assert_eq!(f["UpdatedAt"], "2026-11-02T00:00:00Z");
    }

    #[test]
    fn asff_bodies_hold_one_region_and_at_most_100() {
        let mut all: Vec<Finding> = (0..250).map(|n| finding("us-east-1", n)).collect();
        all.push(finding("eu-west-1", 999));
        let bodies = asff_bodies(&all, &ctx());
        let names: Vec<&str> = bodies.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "111122223333-eu-west-1-1.json",
                "111122223333-us-east-1-1.json",
                "111122223333-us-east-1-2.json",
                "111122223333-us-east-1-3.json"
            ]
        );
        for (_, body) in &bodies {
            let items = body["Findings"].as_array().unwrap();
            assert!((1..=100).contains(&items.len()));
            let region = &items[0]["Region"];
            assert!(items.iter().all(|f| &f["Region"] == region));
        }
        assert!(asff_bodies(&[], &ctx()).is_empty());
    }

    #[test]
    fn first_seen_is_created_at() {
        let mut f = finding("us-east-1", 1);
        f.first_seen = Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        let bodies = asff_bodies(&[f.clone()], &ctx());
        assert_eq!(
            bodies[0].1["Findings"][0]["CreatedAt"],
            "2026-03-01T00:00:00Z"
        );
        let o = ocsf(&[f], &ctx());
        assert_eq!(o[0]["finding_info"]["created_time"], 1772323200000_i64);
    }

    #[test]
    fn evidence_gaps_are_warnings_not_failures() {
        let mut f = finding("us-east-1", 1);
        f.compliance = "WARNING".into();
        let bodies = asff_bodies(&[f.clone()], &ctx());
        assert_eq!(
            bodies[0].1["Findings"][0]["Compliance"]["Status"],
            "WARNING"
        );
        let o = ocsf(&[f], &ctx());
        assert_eq!(o[0]["compliance"]["status_id"], 2);
    }

    #[test]
    fn ocsf_is_a_compliance_finding() {
        let v = ocsf(&[finding("us-east-1", 1)], &ctx());
        let f = &v[0];
        assert_eq!(f["class_uid"], 2003);
        assert_eq!(f["type_uid"], 200301);
        assert_eq!(f["severity_id"], 4);
        assert_eq!(f["metadata"]["version"], "1.3.0");
        assert_eq!(f["metadata"]["profiles"], json!(["cloud"]));
        assert_eq!(
            f["compliance"]["standards"],
            json!(["CIS AWS Foundations Benchmark", "PCI DSS v4.0"])
        );
    }

    #[test]
    fn hostile_account_and_region_stay_in_the_folder() {
        let mut f = finding("us-east-1", 1);
        f.account_id = Some("../../etc".into());
        f.region = Some("/x".into());
        let bodies = asff_bodies(&[f], &ctx());
        assert_eq!(bodies[0].0, "______etc-_x-1.json");
    }
}
