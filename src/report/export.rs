//! Findings in the shapes other tools import: AWS Security Finding Format
//! (a Security Hub `BatchImportFindings` request body) and OCSF's Compliance
//! Finding class.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::frames::time::rfc3339;
use crate::policy::Severity;
use crate::rules::engine::Finding;

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

fn controls(f: &Finding) -> Vec<String> {
    f.controls
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// `{"Findings": [...]}`, ready for `aws securityhub batch-import-findings
/// --cli-input-json`. Findings without an account or region take the
/// bundle's first ones; the product is the account's own `default` product.
pub fn asff(findings: &[Finding], account: &str, region: &str, at: DateTime<Utc>) -> Value {
    let stamp = rfc3339(at);
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let acct = f.account_id.as_deref().unwrap_or(account);
            let reg = f.region.as_deref().unwrap_or(region);
            let resource = match &f.key_arn {
                Some(arn) => json!({
                    "Type": "AwsKmsKey",
                    "Id": arn,
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
            let mut v = json!({
                "SchemaVersion": "2018-10-08",
                "Id": format!("kmsrot/{}", f.finding_id),
                "ProductArn": format!("arn:{}:securityhub:{reg}:{acct}:product/{acct}/default", partition(reg)),
                "GeneratorId": format!("kmsrot/{}", f.rule_id),
                "AwsAccountId": acct,
                "Region": reg,
                "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
                "CreatedAt": stamp,
                "UpdatedAt": stamp,
                "Severity": {"Label": asff_label(f.severity)},
                "Title": clip(&f.title, 256),
                "Description": clip(&f.detail, 1024),
                "Remediation": {"Recommendation": {"Text": clip(&f.remediation, 512)}},
                "Resources": [resource],
                "Compliance": {
                    "Status": "FAILED",
                    "RelatedRequirements": controls(f),
                },
                "Workflow": {"Status": if exempted { "SUPPRESSED" } else { "NEW" }},
                "RecordState": "ACTIVE",
                "ProductFields": {
                    "kmsrot/rule_id": f.rule_id,
                    "kmsrot/status": f.status,
                },
            });
            if let Some(reason) = &f.exemption_reason {
                v["Note"] = json!({
                    "Text": clip(&format!("Exempted: {reason} (until {})", f.exemption_expires.as_deref().unwrap_or("?")), 512),
                    "UpdatedBy": "kmsrot",
                    "UpdatedAt": stamp,
                });
            }
            v
        })
        .collect();
    json!({ "Findings": items })
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

/// An array of OCSF 1.1 Compliance Finding events (class 2003, category 2
/// Findings, activity 1 Create).
pub fn ocsf(findings: &[Finding], account: &str, at: DateTime<Utc>) -> Value {
    let ms = at.timestamp_millis();
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let (severity_id, severity) = ocsf_severity(f.severity);
            let acct = f.account_id.as_deref().unwrap_or(account);
            let exempted = !f.is_open();
            let mut resources = Vec::new();
            if let Some(arn) = &f.key_arn {
                resources.push(json!({
                    "uid": arn,
                    "type": "AWS::KMS::Key",
                    "region": f.region,
                    "cloud_partition": partition(f.region.as_deref().unwrap_or("")),
                    "owner": {"account": {"uid": acct, "type": "AWS Account", "type_id": 10}},
                }));
            }
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
                "time": ms,
                "message": f.title,
                "finding_info": {
                    "uid": f.finding_id,
                    "title": f.title,
                    "desc": f.detail,
                    "types": [f.rule_id],
                    "created_time": ms,
                },
                "compliance": {
                    "control": f.rule_id,
                    "requirements": controls(f),
                    "standards": controls(f)
                        .iter()
                        .map(|c| c.split_whitespace().next().unwrap_or(c).to_string())
                        .collect::<std::collections::BTreeSet<_>>(),
                    "status": "Fail",
                    "status_id": 3,
                    "status_detail": f.detail,
                },
                "remediation": {"desc": f.remediation},
                "resources": resources,
                "cloud": {"provider": "AWS", "account": {"uid": acct, "type": "AWS Account", "type_id": 10}, "region": f.region},
                "metadata": {
                    "version": "1.1.0",
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

    fn finding() -> Finding {
        Finding {
            finding_id: "kr-1".into(),
            rule_id: "rotation_disabled".into(),
            severity: Severity::High,
            status: FindingStatus::Open,
            account_id: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            title: "Rotation disabled".into(),
            detail: "d".into(),
            evidence: None,
            controls: "CIS AWS 3.6; PCI DSS 3.6.4".into(),
            remediation: "aws kms enable-key-rotation".into(),
            exemption_reason: None,
            exemption_expires: None,
        }
    }

    #[test]
    fn asff_has_the_batch_import_shape() {
        let v = asff(&[finding()], "999", "eu-west-1", Utc::now());
        let f = &v["Findings"][0];
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
        );
        assert_eq!(f["Severity"]["Label"], "HIGH");
        assert_eq!(f["Resources"][0]["Type"], "AwsKmsKey");
        assert_eq!(f["Compliance"]["RelatedRequirements"][1], "PCI DSS 3.6.4");
    }

    #[test]
    fn ocsf_is_a_compliance_finding() {
        let v = ocsf(&[finding()], "999", Utc::now());
        let f = &v[0];
        assert_eq!(f["class_uid"], 2003);
        assert_eq!(f["type_uid"], 200301);
        assert_eq!(f["severity_id"], 4);
        assert_eq!(f["compliance"]["standards"], json!(["CIS", "PCI"]));
    }
}
