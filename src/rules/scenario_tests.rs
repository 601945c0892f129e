//! Every built-in rule against one synthetic account with known answers: each
//! rule must fire exactly on the keys built to trigger it, and nowhere else.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::engine::{assess, Evidence, Finding, FindingStatus};
use crate::inventory::{keys_frame, Eligibility, KeyRecord, RotationRecord};
use crate::policy::{Exemption, Policy};
use crate::trail::{events_frame, DayCoverage, EventRow, SourceCoverage, TrailCoverage, Window};

const ACCT: &str = "111122223333";

fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCT}:key/{id}")
}

fn key(region: &str, id: &str, elig: Eligibility) -> KeyRecord {
    KeyRecord {
        account_id: Some(ACCT.into()),
        region: region.into(),
        key_id: id.into(),
        arn: arn(region, id),
        key_manager: Some("CUSTOMER".into()),
        key_spec: Some("SYMMETRIC_DEFAULT".into()),
        key_usage: Some("ENCRYPT_DECRYPT".into()),
        origin: Some("AWS_KMS".into()),
        key_state: Some("Enabled".into()),
        creation_date: Some(t(2023, 1, 1)),
        eligibility: Some(elig),
        rotation_count: Some(0),
        tags: Some(Default::default()),
        ..KeyRecord::default()
    }
}

fn on(mut k: KeyRecord, period: i64) -> KeyRecord {
    k.rotation_enabled = Some(true);
    k.rotation_period_days = Some(period);
    k
}

fn rotation(region: &str, id: &str, when: DateTime<Utc>) -> RotationRecord {
    RotationRecord {
        account_id: Some(ACCT.into()),
        region: region.into(),
        key_id: id.into(),
        key_arn: arn(region, id),
        rotation_date: Some(when),
        rotation_type: Some("AUTOMATIC".into()),
    }
}

fn event(
    id: &str,
    name: &str,
    key_id: &str,
    when: DateTime<Utc>,
    principal: &str,
    error: Option<&str>,
) -> EventRow {
    EventRow {
        event_id: Some(id.into()),
        event_time: Some(when),
        event_name: Some(name.into()),
        event_type: Some(
            if name == "RotateKey" {
                "AwsServiceEvent"
            } else {
                "AwsApiCall"
            }
            .into(),
        ),
        event_source: Some("kms.amazonaws.com".into()),
        aws_region: Some("us-east-1".into()),
        account_id: Some(ACCT.into()),
        key_arn: Some(arn("us-east-1", key_id)),
        key_id: Some(key_id.into()),
        principal_arn: Some(principal.into()),
        error_code: error.map(str::to_string),
        error_message: error
            .map(|_| "User is not authorized to perform kms:EnableKeyRotation".to_string()),
        source: "fixture".into(),
        ..EventRow::default()
    }
}

fn scenario() -> (Evidence, Policy, DateTime<Utc>) {
    let as_of = t(2026, 1, 1);
    let window_start = t(2024, 11, 27);
    let us = "us-east-1";
    let mut keys = vec![
        // rotation_disabled, permission_failure, rotation_disabled_event
        {
            let mut k = key(us, "k-off", Eligibility::Eligible);
            k.rotation_enabled = Some(false);
            k
        },
        // missed_cycle: last listed rotation 2024-06-01, period 365
        on(key(us, "k-missed", Eligibility::Eligible), 365),
        // compliant: rotated 2025-06-01 (listed and in CloudTrail)
        on(key(us, "k-ok", Eligibility::Eligible), 365),
        // never_rotated: on since creation 2023, nothing recorded
        on(key(us, "k-never", Eligibility::Eligible), 365),
        // period_exceeds_policy + history_mismatch both ways
        on(key(us, "k-long", Eligibility::Eligible), 730),
        // rotation_off_disabled_key (exempted below)
        {
            let mut k = key(us, "k-disabled", Eligibility::Disabled);
            k.key_state = Some("Disabled".into());
            k.rotation_enabled = Some(false);
            k
        },
        // pending_deletion
        {
            let mut k = key(us, "k-deleting", Eligibility::PendingDeletion);
            k.key_state = Some("PendingDeletion".into());
            k.deletion_date = Some(t(2026, 1, 20));
            k.rotation_enabled = Some(false);
            k
        },
        // ineligible_key_type (an expired exemption does not hide it)
        {
            let mut k = key(us, "k-rsa", Eligibility::UnsupportedSpec);
            k.key_spec = Some("RSA_2048".into());
            k.key_usage = Some("SIGN_VERIFY".into());
            k.rotation_count = None;
            k
        },
        // policy_denies_rotation; otherwise compliant
        {
            let mut k = on(key(us, "k-denied", Eligibility::Eligible), 365);
            // Rotation turned on 2025-06-01: not yet due.
            k.next_rotation_date = Some(t(2026, 6, 1));
            k.key_policy = Some(
                r#"{"Statement":[{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"},
                {"Sid":"NoRotationChanges","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:*Rotation*","Resource":"*"}]}"#
                    .into(),
            );
            k
        },
        // AWS-managed: never flagged
        {
            let mut k = key(us, "k-aws", Eligibility::AwsManaged);
            k.key_manager = Some("AWS".into());
            k.rotation_enabled = Some(true);
            k
        },
    ];
    // eu-west-1: no CloudTrail at all -> evidence_gap; the replica follows k-ok's twin.
    let primary = on(key("eu-west-1", "mrk-primary", Eligibility::Eligible), 365);
    let mut replica = key("eu-west-1", "mrk-replica", Eligibility::Replica);
    replica.primary_key_arn = Some(primary.arn.clone());
    replica.rotation_count = None;
    keys.push(primary);
    keys.push(replica);
    for k in keys.iter_mut() {
        if k.key_id == "k-ok"
            || k.key_id == "k-missed"
            || k.key_id == "k-long"
            || k.key_id == "mrk-primary"
        {
            k.rotation_count = Some(1);
        }
    }
    let rotations = vec![
        rotation(us, "k-missed", t(2024, 6, 1)),
        rotation(us, "k-ok", t(2025, 6, 1)),
        rotation(us, "k-long", t(2025, 3, 1)),
        rotation("eu-west-1", "mrk-primary", t(2025, 8, 1)),
    ];
    let ci = "arn:aws:sts::111122223333:assumed-role/ci-deployer/build-42";
    let alice = "arn:aws:iam::111122223333:user/alice";
    let events = vec![
        event(
            "e1",
            "EnableKeyRotation",
            "k-off",
            t(2025, 9, 1),
            ci,
            Some("AccessDeniedException"),
        ),
        event(
            "e2",
            "EnableKeyRotation",
            "k-off",
            t(2025, 9, 2),
            ci,
            Some("AccessDeniedException"),
        ),
        event(
            "e3",
            "DisableKeyRotation",
            "k-off",
            t(2025, 8, 15),
            alice,
            None,
        ),
        event(
            "e4",
            "RotateKey",
            "k-ok",
            t(2025, 6, 1),
            "kms.amazonaws.com",
            None,
        ),
        // Not in ListKeyRotations: history_mismatch (trail side).
        event(
            "e5",
            "RotateKey",
            "k-long",
            t(2025, 9, 1),
            "kms.amazonaws.com",
            None,
        ),
        // Outside the window: not reported.
        event(
            "e6",
            "DisableKeyRotation",
            "k-ok",
            t(2024, 1, 1),
            alice,
            None,
        ),
        // A failure that is not about access.
        event(
            "e7",
            "EnableKeyRotation",
            "k-disabled",
            t(2025, 10, 1),
            alice,
            Some("DisabledException"),
        ),
    ];
    let mut days_with_logs = Vec::new();
    let mut d = window_start.date_naive();
    while d <= as_of.date_naive() {
        days_with_logs.push(d);
        d = d.succ_opt().unwrap();
    }
    let trail = TrailCoverage {
        complete: true,
        window: Window {
            since: Some(window_start),
            until: Some(as_of),
        },
        sources: vec![SourceCoverage {
            source: "s3://trail/archive".into(),
            kind: "s3".into(),
            ..SourceCoverage::default()
        }],
        days: vec![DayCoverage {
            account_id: ACCT.into(),
            region: us.into(),
            days_with_logs,
            days_quiet: Vec::new(),
            days_missing: Vec::<NaiveDate>::new(),
        }],
        events_read: 7,
        events_kept: 7,
        duplicates: 0,
        duplicate_conflicts: Vec::new(),
        cross_account_copies: 0,
        integrity: None,
    };
    let evidence = Evidence {
        keys: keys_frame(&keys).unwrap(),
        rotations: crate::inventory::Inventory {
            keys: Vec::new(),
            rotations,
            coverage: crate::inventory::InventoryCoverage {
                complete: true,
                region_plan: crate::aws::regions::RegionPlan {
                    regions: vec![],
                    discovered_by: "flags".into(),
                    discovery_error: None,
                },
                regions: vec![],
                key_errors: vec![],
                api_calls: Default::default(),
            },
        }
        .rotations_frame()
        .unwrap(),
        events: events_frame(&events).unwrap(),
        trail: Some(trail),
        window_start,
    };
    let policy = Policy {
        exemptions: vec![
            Exemption {
                key: "k-disabled".into(),
                rule: "rotation_off_disabled_key".into(),
                reason: "Retired with the legacy batch system".into(),
                approver: "ciso@example.com".into(),
                expires: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            },
            Exemption {
                key: arn(us, "k-rsa"),
                rule: "*".into(),
                reason: "Signing key for firmware; replaced yearly".into(),
                approver: "ciso@example.com".into(),
                expires: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
            },
        ],
        ..Policy::default()
    };
    (evidence, policy, as_of)
}

fn fired(findings: &[Finding], rule: &str) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| f.rule_id == rule)
        .map(|f| {
            f.key_arn
                .as_deref()
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
                .unwrap_or_else(|| format!("region:{}", f.region.as_deref().unwrap_or("?")))
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_rule_fires_exactly_where_it_should() {
    let (evidence, policy, as_of) = scenario();
    let rules = super::load(None).unwrap();
    let findings = assess(&evidence, &rules, &policy, as_of).unwrap();
    let expect: &[(&str, &[&str])] = &[
        ("rotation_disabled", &["k-off"]),
        ("rotation_off_disabled_key", &["k-disabled"]),
        ("missed_cycle", &["k-missed"]),
        ("never_rotated", &["k-never"]),
        ("period_exceeds_policy", &["k-long"]),
        ("permission_failure", &["k-off"]),
        ("rotation_call_failed", &["k-disabled"]),
        ("rotation_disabled_event", &["k-off"]),
        ("policy_denies_rotation", &["k-denied"]),
        ("pending_deletion", &["k-deleting"]),
        ("ineligible_key_type", &["k-rsa"]),
        ("replica_follows_primary", &["mrk-replica"]),
        ("evidence_gap", &["region:eu-west-1"]),
        ("history_mismatch", &["k-long"]),
        ("exemption_expired", &["k-rsa"]),
        // No --validate, no integrity finding.
        ("trail_integrity", &[]),
    ];
    for (rule, keys) in expect {
        assert_eq!(fired(&findings, rule), set(keys), "rule {rule}");
    }
    assert_eq!(
        findings.len(),
        16,
        "one finding per rule, two for history_mismatch: {findings:#?}"
    );

    let by = |rule: &str| findings.iter().find(|f| f.rule_id == rule).unwrap();
    let pf = by("permission_failure");
    assert!(
        pf.detail.contains("ci-deployer") && pf.detail.contains("2 time(s)"),
        "{}",
        pf.detail
    );
    assert!(
        pf.evidence.as_deref().unwrap().contains("e1")
            && pf.evidence.as_deref().unwrap().contains("e2")
    );
    assert!(by("rotation_disabled_event").detail.contains("user/alice"));
    assert!(by("rotation_disabled_event").detail.contains("2025-08-15"));
    assert!(by("pending_deletion").detail.contains("2026-01-20"));
    assert!(by("evidence_gap").detail.contains("proves nothing"));
    assert!(by("replica_follows_primary")
        .detail
        .contains("rotates automatically"));
    assert!(by("policy_denies_rotation")
        .detail
        .contains("NoRotationChanges"));

    let exempted = by("rotation_off_disabled_key");
    assert_eq!(exempted.status, FindingStatus::Exempted);
    assert_eq!(exempted.exemption_expires.as_deref(), Some("2026-06-30"));
    let lapsed = by("ineligible_key_type");
    assert_eq!(lapsed.status, FindingStatus::Open);
    assert!(lapsed
        .exemption_reason
        .as_deref()
        .unwrap()
        .starts_with("EXPIRED"));
    assert!(findings
        .iter()
        .all(|f| !f.key_arn.as_deref().unwrap_or("").ends_with("k-aws")));
}

#[test]
fn as_of_fixes_now() {
    let (evidence, policy, _) = scenario();
    let rules = super::load(None).unwrap();
    // A year earlier, k-missed's 2024-06-01 rotation was still in its cycle,
    // and the firmware key's exemption had not lapsed yet.
    let earlier = t(2025, 1, 1);
    let findings = assess(&evidence, &rules, &policy, earlier).unwrap();
    assert!(fired(&findings, "missed_cycle").is_empty());
    assert!(fired(&findings, "exemption_expired").is_empty());
    assert_eq!(
        findings
            .iter()
            .find(|f| f.rule_id == "ineligible_key_type")
            .unwrap()
            .status,
        FindingStatus::Exempted
    );
}

#[test]
fn severity_overrides_apply() {
    let (evidence, mut policy, as_of) = scenario();
    policy
        .severity
        .insert("ineligible_key_type".into(), crate::policy::Severity::Low);
    let rules = super::load(None).unwrap();
    let findings = assess(&evidence, &rules, &policy, as_of).unwrap();
    let f = findings
        .iter()
        .find(|f| f.rule_id == "ineligible_key_type")
        .unwrap();
    assert_eq!(f.severity, crate::policy::Severity::Low);
}

#[test]
fn trail_integrity_names_files_and_hours_and_a_quiet_day_is_no_gap() {
    use crate::trail::integrity::{FileKind, FileOutcome, IntegrityCoverage, Outcome};
    let (mut evidence, policy, as_of) = scenario();
    let hour = |d, h| Utc.with_ymd_and_hms(2025, 9, d, h, 0, 0).unwrap();
    let file = |key: &str, kind, outcome, from, to| FileOutcome {
        key: format!("s3://trail/AWSLogs/{ACCT}/{key}"),
        kind,
        outcome,
        account_id: ACCT.into(),
        region: "us-east-1".into(),
        from: Some(from),
        to: Some(to),
        reason: Some("why".into()),
    };
    let trail = evidence.trail.as_mut().unwrap();
    trail.integrity = Some(IntegrityCoverage {
        files: vec![
            file(
                "CloudTrail/a.json.gz",
                FileKind::Log,
                Outcome::Valid,
                hour(1, 1),
                hour(1, 2),
            ),
            file(
                "CloudTrail/b.json.gz",
                FileKind::Log,
                Outcome::Altered,
                hour(2, 3),
                hour(2, 4),
            ),
            file(
                "CloudTrail/c.json.gz",
                FileKind::Log,
                Outcome::Altered,
                hour(2, 5),
                hour(2, 6),
            ),
            file(
                "CloudTrail-Digest/d.json.gz",
                FileKind::Digest,
                Outcome::ChainStart,
                hour(3, 5),
                hour(4, 9),
            ),
            // Its digest is not out yet: not a finding.
            file(
                "CloudTrail/e.json.gz",
                FileKind::Log,
                Outcome::Pending,
                hour(5, 1),
                hour(5, 2),
            ),
        ],
        ..IntegrityCoverage::default()
    });
    // A quiet day and a lost one in us-east-1.
    let us = &mut trail.days[0];
    let quiet = NaiveDate::from_ymd_opt(2025, 9, 10).unwrap();
    let lost = NaiveDate::from_ymd_opt(2025, 9, 11).unwrap();
    us.days_with_logs.retain(|d| *d != quiet && *d != lost);
    us.days_quiet = vec![quiet];
    us.days_missing = vec![lost];
    let rules = super::load(None).unwrap();
    let findings = assess(&evidence, &rules, &policy, as_of).unwrap();
    let integrity: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == "trail_integrity")
        .collect();
    assert_eq!(integrity.len(), 2, "{integrity:#?}");
    let altered = integrity
        .iter()
        .find(|f| f.detail.contains("changed after delivery"))
        .unwrap();
    assert_eq!(altered.severity, crate::policy::Severity::High);
    assert!(
        altered.detail.contains("2 CloudTrail log file(s)"),
        "{}",
        altered.detail
    );
    assert!(
        altered
            .detail
            .contains("2025-09-02T03:00Z, 2025-09-02T05:00Z"),
        "{}",
        altered.detail
    );
    let evidence_text = altered.evidence.as_deref().unwrap();
    assert!(
        evidence_text.contains("CloudTrail/b.json.gz")
            && evidence_text.contains("CloudTrail/c.json.gz")
    );
    let restart = integrity
        .iter()
        .find(|f| f.detail.contains("restarted"))
        .unwrap();
    assert!(
        restart
            .detail
            .contains("2025-09-03T05:00Z to 2025-09-04T09:00Z"),
        "{}",
        restart.detail
    );
    // The lost day is a gap, the quiet one is not.
    let gap = findings
        .iter()
        .find(|f| f.rule_id == "evidence_gap" && f.region.as_deref() == Some("us-east-1"))
        .expect("an evidence gap in us-east-1");
    assert!(
        gap.detail.contains("2025-09-11") && !gap.detail.contains("2025-09-10"),
        "{}",
        gap.detail
    );
    assert!(
        gap.detail.contains("nor a verified digest"),
        "{}",
        gap.detail
    );
    assert!(
        gap.evidence.as_deref().unwrap().contains("1 are quiet"),
        "{:?}",
        gap.evidence
    );
}
