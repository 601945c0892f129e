//! SARIF 2.1.0 (OASIS, errata 01), so code-scanning UIs show the findings on
//! the pull request that introduces the key.
//!
//! One run, the rules in `tool.driver.rules`, one result per row. Rows that
//! are not failures keep their SARIF meaning: a key type rotation does not
//! apply to is `kind: notApplicable`, a value known only at apply is
//! `kind: review`, both with `level: none` as the spec requires for a kind
//! other than `fail`. An exempted failure carries an external suppression
//! with the exemption's justification. GitHub reads `security-severity` from
//! each rule's properties to rank the alert.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::judge::{IacFinding, Status, RULES};
use super::Scan;
use crate::policy::{Policy, Severity};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The SARIF log of a scan. `cwd` turns absolute paths under it into
/// repository-relative URIs.
pub fn log(scan: &Scan, policy: &Policy, cwd: &Path) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let sev = policy.severity_for(r.id, r.severity);
            let mut props = json!({
                "tags": ["security", "kms", "key-rotation"],
                "precision": "very-high",
            });
            if r.status == Status::Open {
                props["security-severity"] = json!(security_severity(sev));
            }
            if !r.controls.is_empty() {
                props["controls"] = json!(r.controls);
            }
            json!({
                "id": r.id,
                "name": pascal(r.id),
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.description},
                "help": {"text": r.description},
                "defaultConfiguration": {"level": fail_level(sev)},
                "properties": props,
            })
        })
        .collect();
    let results: Vec<Value> = scan.findings.iter().map(|f| result(f, cwd)).collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kmsrot",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {
                "files": scan.files.len(),
                "kmsResources": scan.resources,
                "compliant": scan.compliant.len(),
                "skipped": scan.skipped.iter().map(|s| json!({
                    "file": s.source_file, "resource": s.address, "reason": s.reason,
                })).collect::<Vec<_>>(),
            },
        }],
    })
}

fn result(f: &IacFinding, cwd: &Path) -> Value {
    let index = RULES.iter().position(|r| r.id == f.rule_id).unwrap_or(0);
    let (kind, level) = match f.status {
        Status::Open | Status::Exempted => ("fail", fail_level(f.severity)),
        Status::NotApplicable => ("notApplicable", "none"),
        Status::Unknown => ("review", "none"),
    };
    let mut location = json!({
        "logicalLocations": [{"fullyQualifiedName": f.resource, "kind": "resource"}],
    });
    if let Some(uri) = artifact_uri(&f.source_file, cwd) {
        let mut physical = json!({"artifactLocation": uri});
        if let Some(line) = f.line {
            physical["region"] = json!({"startLine": line});
        }
        location["physicalLocation"] = physical;
    }
    let fingerprint = hex::encode(Sha256::digest(
        format!("{}\n{}\n{}", f.rule_id, f.source_file, f.resource).as_bytes(),
    ));
    let mut out = json!({
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "kind": kind,
        "level": level,
        "message": {"text": format!("{} {}: {}", f.resource, f.detail, f.remediation)},
        "locations": [location],
        "partialFingerprints": {"kmsrotResource/v1": fingerprint},
        "properties": {
            "resourceType": f.resource_type,
            "severity": f.severity.as_str(),
            "status": f.status.as_str(),
            "remediation": f.remediation,
        },
    });
    if f.status == Status::Exempted {
        out["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": f.detail,
        }]);
    }
    out
}

fn fail_level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's bands: 9.0+ critical, 7.0+ high, 4.0+ medium, above 0 low.
fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn pascal(id: &str) -> String {
    id.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A relative path stays relative to the checkout (`%SRCROOT%`, which
/// code-scanning uploads resolve); an absolute one under `cwd` is made
/// relative; others become `file://` URIs. stdin has no location.
fn artifact_uri(source: &str, cwd: &Path) -> Option<Value> {
    if source == "<stdin>" {
        return None;
    }
    let path = Path::new(source);
    if path.is_absolute() {
        if let Ok(rel) = path.strip_prefix(cwd) {
            let rel = super::display_path(rel);
            return Some(json!({"uri": encode(&rel), "uriBaseId": "%SRCROOT%"}));
        }
        let abs = super::display_path(path);
        let abs = if abs.starts_with('/') {
            abs
        } else {
            format!("/{abs}")
        };
        return Some(json!({"uri": format!("file://{}", encode(&abs))}));
    }
    let rel = source.strip_prefix("./").unwrap_or(source);
    Some(json!({"uri": encode(rel), "uriBaseId": "%SRCROOT%"}))
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `/`.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_and_encoded() {
        let cwd = Path::new("/repo");
        assert_eq!(
            artifact_uri("infra/a b.yaml", cwd).unwrap(),
            json!({"uri": "infra/a%20b.yaml", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact_uri("/repo/plan.json", cwd).unwrap(),
            json!({"uri": "plan.json", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact_uri("/tmp/x#1.json", cwd).unwrap(),
            json!({"uri": "file:///tmp/x%231.json"})
        );
        assert!(artifact_uri("<stdin>", cwd).is_none());
        assert_eq!(pascal("rotation_disabled"), "RotationDisabled");
    }
}
