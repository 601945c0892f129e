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
            // Created just before rotation was turned on (2025-06-01): not
            // yet due, and its material is within the policy.
            k.creation_date = Some(t(2025, 5, 20));
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
                accounts: vec![],
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
                line: 0,
            },
            Exemption {
                key: arn(us, "k-rsa"),
                rule: "*".into(),
                reason: "Signing key for firmware; replaced yearly".into(),
                approver: "ciso@example.com".into(),
                expires: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
                line: 0,
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

// ---------------------------------------------------------------------------
// Issue 10: one scenario per case where a rule disagreed with AWS. Each builds
// only the keys and evidence the case needs.
// ---------------------------------------------------------------------------

fn rotations_frame(rotations: Vec<RotationRecord>) -> polars::prelude::DataFrame {
    crate::inventory::Inventory {
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
            accounts: vec![],
        },
    }
    .rotations_frame()
    .unwrap()
}

/// A trail that has log files for every day of `[from, to]` in `region`,
/// except `missing`.
fn trail_days(
    region: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    missing: &[NaiveDate],
) -> DayCoverage {
    let mut days_with_logs = Vec::new();
    let mut days_missing = Vec::new();
    let mut d = from.date_naive();
    while d <= to.date_naive() {
        if missing.contains(&d) {
            days_missing.push(d);
        } else {
            days_with_logs.push(d);
        }
        d = d.succ_opt().unwrap();
    }
    DayCoverage {
        account_id: ACCT.into(),
        region: region.into(),
        days_with_logs,
        days_quiet: Vec::new(),
        days_missing,
    }
}

fn evidence_of(
    keys: Vec<KeyRecord>,
    rotations: Vec<RotationRecord>,
    events: Vec<EventRow>,
    days: Vec<DayCoverage>,
    window_start: DateTime<Utc>,
) -> Evidence {
    Evidence {
        keys: keys_frame(&keys).unwrap(),
        rotations: rotations_frame(rotations),
        events: events_frame(&events).unwrap(),
        trail: Some(TrailCoverage {
            complete: days.iter().all(|d| d.days_missing.is_empty()),
            window: Window {
                since: Some(window_start),
                until: None,
            },
            sources: vec![SourceCoverage {
                source: "s3://trail/archive".into(),
                kind: "s3".into(),
                ..SourceCoverage::default()
            }],
            days,
            events_read: events.len() as u64,
            events_kept: events.len() as u64,
            duplicates: 0,
            duplicate_conflicts: Vec::new(),
            cross_account_copies: 0,
            integrity: None,
        }),
        window_start,
    }
}

fn judge(ev: &Evidence, policy: &Policy, as_of: DateTime<Utc>) -> Vec<Finding> {
    assess(ev, &super::load(None).unwrap(), policy, as_of).unwrap()
}

fn only<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule_id == rule).collect()
}

fn listed(id: &str, when: DateTime<Utc>, kind: &str) -> RotationRecord {
    RotationRecord {
        rotation_type: Some(kind.into()),
        ..rotation("us-east-1", id, when)
    }
}

fn ok_event(id: &str, name: &str, key_id: &str, when: DateTime<Utc>) -> EventRow {
    event(
        id,
        name,
        key_id,
        when,
        "arn:aws:iam::111122223333:user/alice",
        None,
    )
}

fn with_history(mut k: KeyRecord, n: i64) -> KeyRecord {
    k.rotation_count = Some(n);
    k
}

/// Case 1: after DisableKeyRotation and EnableKeyRotation, KMS rotates one
/// period after the enable date; old material is a separate statement.
#[test]
fn case1_reenabled_rotation_restarts_the_schedule() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let mut reon_nrd = with_history(on(key(us, "k-reon-nrd", Eligibility::Eligible), 365), 1);
    reon_nrd.next_rotation_date = Some(t(2026, 10, 1));
    let keys = vec![
        with_history(on(key(us, "k-reon", Eligibility::Eligible), 365), 1),
        reon_nrd,
        with_history(on(key(us, "k-late", Eligibility::Eligible), 365), 1),
    ];
    let rotations = vec![
        listed("k-reon", t(2023, 6, 1), "AUTOMATIC"),
        listed("k-reon-nrd", t(2023, 6, 1), "AUTOMATIC"),
        listed("k-late", t(2023, 6, 1), "AUTOMATIC"),
    ];
    let events = vec![
        ok_event("d1", "DisableKeyRotation", "k-reon", t(2024, 2, 1)),
        ok_event("e1", "EnableKeyRotation", "k-reon", t(2025, 10, 1)),
        ok_event("d2", "DisableKeyRotation", "k-late", t(2024, 2, 1)),
        ok_event("e2", "EnableKeyRotation", "k-late", t(2024, 3, 1)),
    ];
    let ev = evidence_of(
        keys,
        rotations,
        events,
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(
        fired(&findings, "missed_cycle"),
        set(&["k-late"]),
        "{findings:#?}"
    );
    let late = only(&findings, "missed_cycle")[0];
    assert!(
        late.detail.contains("EnableKeyRotation on 2024-03-01")
            && late.detail.contains("2025-03-01"),
        "{}",
        late.detail
    );
    // The re-enabled keys' material is still older than the policy allows:
    // said as material age, never as a missed KMS cycle.
    assert_eq!(
        fired(&findings, "material_age_exceeds_policy"),
        set(&["k-reon", "k-reon-nrd"])
    );
    for f in only(&findings, "material_age_exceeds_policy") {
        assert_eq!(f.severity, crate::policy::Severity::Medium);
        assert!(
            f.detail.contains("2023-06-01") && f.detail.contains("KMS is not late"),
            "{}",
            f.detail
        );
    }
    assert!(fired(&findings, "never_rotated").is_empty());
}

/// Case 1, and never_rotated: a later EnableKeyRotation that only changes the
/// period does not restart the schedule; the on-period starts at its first.
#[test]
fn case1_a_period_change_does_not_restart_the_schedule() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let mut k = with_history(on(key(us, "k-period", Eligibility::Eligible), 365), 0);
    k.creation_date = Some(t(2024, 1, 1));
    let mut change = ok_event("e2", "EnableKeyRotation", "k-period", t(2025, 9, 1));
    change.rotation_period_days = Some(365);
    let events = vec![
        ok_event("e1", "EnableKeyRotation", "k-period", t(2024, 6, 1)),
        change,
    ];
    let ev = evidence_of(
        vec![k],
        vec![],
        events,
        vec![trail_days(us, t(2024, 1, 1), as_of, &[])],
        t(2024, 1, 1),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(fired(&findings, "never_rotated"), set(&["k-period"]));
    let f = only(&findings, "never_rotated")[0];
    assert!(
        f.detail.contains("EnableKeyRotation on 2024-06-01"),
        "{}",
        f.detail
    );
}

/// Case 1: where ListKeyRotations was not read, CloudTrail alone is not a
/// complete history; only AWS's own NextRotationDate is judged.
#[test]
fn case1_missed_cycle_is_not_judged_from_cloudtrail_alone() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let mut unread = on(key(us, "k-unread", Eligibility::Eligible), 365);
    unread.rotation_count = None;
    let mut overdue = on(key(us, "k-unread-due", Eligibility::Eligible), 365);
    overdue.rotation_count = None;
    overdue.next_rotation_date = Some(t(2025, 6, 1));
    let events = vec![
        event(
            "r1",
            "RotateKey",
            "k-unread",
            t(2024, 6, 1),
            "kms.amazonaws.com",
            None,
        ),
        event(
            "r2",
            "RotateKey",
            "k-unread-due",
            t(2024, 6, 1),
            "kms.amazonaws.com",
            None,
        ),
    ];
    let ev = evidence_of(
        vec![unread, overdue],
        vec![],
        events,
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(fired(&findings, "missed_cycle"), set(&["k-unread-due"]));
    let f = only(&findings, "missed_cycle")[0];
    assert!(
        f.detail.contains("NextRotationDate 2025-06-01"),
        "{}",
        f.detail
    );
    assert!(
        f.detail.contains("ListKeyRotations was not read"),
        "{}",
        f.detail
    );
    assert!(fired(&findings, "never_rotated").is_empty());
}

/// Case 2: every rule ignores evidence after the as-of time.
#[test]
fn case2_evidence_after_as_of_is_ignored() {
    let us = "us-east-1";
    let as_of = t(2025, 8, 1);
    let keys = vec![
        with_history(on(key(us, "k-then", Eligibility::Eligible), 365), 2),
        {
            let mut k = key(us, "k-new", Eligibility::Eligible);
            k.rotation_enabled = Some(true);
            k.rotation_period_days = Some(365);
            k.creation_date = Some(t(2024, 1, 1));
            k
        },
    ];
    let rotations = vec![
        listed("k-then", t(2024, 6, 1), "AUTOMATIC"),
        listed("k-then", t(2025, 12, 1), "AUTOMATIC"),
    ];
    let events = vec![
        event(
            "r1",
            "RotateKey",
            "k-then",
            t(2025, 12, 1),
            "kms.amazonaws.com",
            None,
        ),
        ok_event("x1", "DisableKeyRotation", "k-then", t(2025, 10, 1)),
        // k-new: rotation turned on after the as-of time; as of then, it was
        // on since its creation and never rotated.
        ok_event("e1", "EnableKeyRotation", "k-new", t(2025, 11, 1)),
        event(
            "p1",
            "EnableKeyRotation",
            "k-new",
            t(2025, 11, 2),
            "arn:aws:iam::111122223333:user/bob",
            Some("AccessDeniedException"),
        ),
    ];
    let ev = evidence_of(
        keys,
        rotations,
        events,
        vec![trail_days(us, t(2024, 7, 28), t(2026, 1, 1), &[])],
        t(2024, 7, 28),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    // As of 2025-08-01 the last rotation was 2024-06-01: 426 days before.
    assert_eq!(
        fired(&findings, "missed_cycle"),
        set(&["k-then"]),
        "{findings:#?}"
    );
    assert!(only(&findings, "missed_cycle")[0]
        .detail
        .contains("2025-06-01"));
    assert_eq!(fired(&findings, "never_rotated"), set(&["k-new"]));
    for rule in [
        "rotation_disabled_event",
        "permission_failure",
        "history_mismatch",
    ] {
        assert!(fired(&findings, rule).is_empty(), "{rule}: {findings:#?}");
    }
}

/// Case 3: an alias ARN names one key; a bare alias reaches every account
/// and Region that has it, and the reach is listed.
#[test]
fn case3_an_alias_arn_exempts_one_key() {
    let as_of = t(2026, 1, 1);
    let mut east = key("us-east-1", "k-east", Eligibility::Eligible);
    east.rotation_enabled = Some(false);
    east.aliases = vec!["alias/legacy".into()];
    let mut west = key("eu-west-1", "k-west", Eligibility::Eligible);
    west.rotation_enabled = Some(false);
    west.aliases = vec!["alias/legacy".into()];
    let ev = evidence_of(vec![east, west], vec![], vec![], vec![], t(2024, 11, 27));
    let exemption = |key: &str| Exemption {
        key: key.into(),
        rule: "rotation_disabled".into(),
        reason: "Legacy batch, retiring".into(),
        approver: "ciso@example.com".into(),
        expires: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        line: 0,
    };
    let alias_arn = format!("arn:aws:kms:us-east-1:{ACCT}:alias/legacy");
    let policy = Policy {
        exemptions: vec![exemption(&alias_arn)],
        ..Policy::default()
    };
    let findings = judge(&ev, &policy, as_of);
    let status = |id: &str| {
        only(&findings, "rotation_disabled")
            .into_iter()
            .find(|f| f.key_arn.as_deref().unwrap().ends_with(id))
            .unwrap()
            .status
    };
    assert_eq!(status("k-east"), FindingStatus::Exempted);
    assert_eq!(status("k-west"), FindingStatus::Open);

    let reach = super::engine::exemption_reach(
        &[exemption(&alias_arn), exemption("alias/legacy")],
        &ev.keys,
        as_of,
    )
    .unwrap();
    let arns =
        |i: usize| -> Vec<String> { reach[i].matched.iter().map(|k| k.key_arn.clone()).collect() };
    assert_eq!(arns(0), vec![arn("us-east-1", "k-east")]);
    assert_eq!(
        arns(1).into_iter().collect::<BTreeSet<_>>(),
        [arn("us-east-1", "k-east"), arn("eu-west-1", "k-west")]
            .into_iter()
            .collect()
    );
    assert_eq!(
        reach[1].matched[0].aliases,
        vec!["alias/legacy".to_string()]
    );
}

fn with_policy(mut k: KeyRecord, statements: &str) -> KeyRecord {
    k.key_policy = Some(format!(
        r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
    ));
    k
}

/// Case 4: only an unconditional Deny of kms:EnableKeyRotation to every
/// principal is high; a conditional or NotPrincipal Deny is medium, naming
/// who can still rotate; a Deny of RotateKeyOnDemand alone is low.
#[test]
fn case4_a_conditional_deny_is_not_a_deny_of_rotation() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let k = |id: &str| with_history(on(key(us, id, Eligibility::Eligible), 365), 0);
    let keys = vec![
        with_policy(
            k("k-perimeter"),
            r#"{"Sid":"DataPerimeter","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
               "Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-abc123"}}}"#,
        ),
        with_policy(
            k("k-notprincipal"),
            r#"{"Sid":"OnlyAdmins","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin"},
               "Action":"kms:EnableKeyRotation","Resource":"*"}"#,
        ),
        with_policy(
            k("k-named"),
            r#"{"Sid":"NotCi","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ci"},
               "Action":"kms:*","Resource":"*"}"#,
        ),
        with_policy(
            k("k-ondemand"),
            r#"{"Sid":"NoRotateNow","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:RotateKeyOnDemand","Resource":"*"}"#,
        ),
        with_policy(
            k("k-hard"),
            r#"{"Sid":"Freeze","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:EnableKeyRotation","Resource":"*"}"#,
        ),
    ]
    .into_iter()
    .map(|mut k| {
        // Not yet due: only the policy rules speak.
        k.creation_date = Some(t(2025, 12, 1));
        k
    })
    .collect();
    let ev = evidence_of(
        keys,
        vec![],
        vec![],
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(fired(&findings, "policy_denies_rotation"), set(&["k-hard"]));
    assert_eq!(
        fired(&findings, "policy_conditionally_denies_rotation"),
        set(&["k-perimeter", "k-notprincipal", "k-named"])
    );
    assert_eq!(
        fired(&findings, "policy_denies_on_demand_rotation"),
        set(&["k-ondemand"])
    );
    let by_key = |rule: &str, id: &str| {
        only(&findings, rule)
            .into_iter()
            .find(|f| f.key_arn.as_deref().unwrap().ends_with(id))
            .unwrap()
            .clone()
    };
    let perimeter = by_key("policy_conditionally_denies_rotation", "k-perimeter");
    assert!(perimeter.severity >= crate::policy::Severity::Medium);
    assert!(
        perimeter
            .detail
            .contains(r#"{"StringNotEquals":{"aws:PrincipalOrgID":"o-abc123"}}"#)
            && perimeter
                .detail
                .contains("callers whose aws:PrincipalOrgID matches o-abc123"),
        "{}",
        perimeter.detail
    );
    assert!(
        by_key("policy_conditionally_denies_rotation", "k-notprincipal")
            .detail
            .contains("NotPrincipal (arn:aws:iam::111122223333:role/KeyAdmin)")
    );
    assert!(by_key("policy_conditionally_denies_rotation", "k-named")
        .detail
        .contains("every principal other than arn:aws:iam::111122223333:role/ci"));
    let ondemand = by_key("policy_denies_on_demand_rotation", "k-ondemand");
    assert_eq!(ondemand.severity, crate::policy::Severity::Low);
    assert!(
        ondemand.detail.contains("does not stop automatic rotation"),
        "{}",
        ondemand.detail
    );
    assert_eq!(
        by_key("policy_denies_rotation", "k-hard").severity,
        crate::policy::Severity::High
    );
}

/// Case 6: with only the replica's Region read, the replica's own
/// GetKeyRotationStatus is the shared setting: off is a finding naming the
/// primary, on is compliant.
#[test]
fn case6_a_replica_carries_its_primarys_setting() {
    let eu = "eu-west-1";
    let as_of = t(2026, 1, 1);
    let primary_off = arn("us-east-1", "mrk-off");
    let primary_on = arn("us-east-1", "mrk-on");
    let replica = |id: &str, primary: &str, enabled: bool, state: &str| {
        let mut k = key(eu, id, Eligibility::Replica);
        k.multi_region = Some(true);
        k.multi_region_role = Some("REPLICA".into());
        k.primary_key_arn = Some(primary.into());
        k.rotation_enabled = Some(enabled);
        k.key_state = Some(state.into());
        k.rotation_count = None;
        k
    };
    let keys = vec![
        replica("mrk-off", &primary_off, false, "Enabled"),
        replica("mrk-on", &primary_on, true, "Enabled"),
        // Pending deletion reads false whatever the setting: not judged.
        replica("mrk-going", &primary_off, false, "PendingReplicaDeletion"),
    ];
    let ev = evidence_of(
        keys,
        vec![],
        vec![],
        vec![trail_days(eu, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(fired(&findings, "rotation_disabled"), set(&["mrk-off"]));
    let f = only(&findings, "rotation_disabled")[0];
    assert_eq!(f.severity, crate::policy::Severity::High);
    assert!(
        f.detail
            .contains(&format!("Enable rotation on the primary {primary_off}")),
        "{}",
        f.detail
    );
    let info = |id: &str| {
        only(&findings, "replica_follows_primary")
            .into_iter()
            .find(|f| f.key_arn.as_deref().unwrap().ends_with(id))
            .unwrap()
            .detail
            .clone()
    };
    assert!(
        info("mrk-on").contains("shared setting ON"),
        "{}",
        info("mrk-on")
    );
    assert!(
        info("mrk-off").contains("shared setting OFF"),
        "{}",
        info("mrk-off")
    );
}

/// Case 7: an on-demand rotation still in progress is in CloudTrail but not
/// yet in ListKeyRotations, which lists completed rotations only.
#[test]
fn case7_an_on_demand_rotation_in_progress_is_not_a_mismatch() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let started = Utc.with_ymd_and_hms(2025, 12, 31, 10, 0, 0).unwrap();
    let mut running = with_history(on(key(us, "k-running", Eligibility::Eligible), 365), 1);
    running.on_demand_rotation_start_date = Some(started);
    running.next_rotation_date = Some(t(2026, 6, 1));
    let mut done = with_history(on(key(us, "k-done", Eligibility::Eligible), 365), 1);
    done.next_rotation_date = Some(t(2026, 6, 1));
    let keys = vec![running, done];
    let rotations = vec![
        listed("k-running", t(2025, 6, 1), "AUTOMATIC"),
        listed("k-done", t(2025, 6, 1), "AUTOMATIC"),
    ];
    let events = vec![
        event(
            "a1",
            "RotateKey",
            "k-running",
            t(2025, 6, 1),
            "kms.amazonaws.com",
            None,
        ),
        event(
            "a2",
            "RotateKey",
            "k-done",
            t(2025, 6, 1),
            "kms.amazonaws.com",
            None,
        ),
        ok_event(
            "o1",
            "RotateKeyOnDemand",
            "k-running",
            started + chrono::Duration::seconds(2),
        ),
        // Completed weeks ago, yet not listed: a real mismatch.
        ok_event("o2", "RotateKeyOnDemand", "k-done", t(2025, 11, 1)),
    ];
    let ev = evidence_of(
        keys,
        rotations,
        events,
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(
        fired(&findings, "history_mismatch"),
        set(&["k-done"]),
        "{findings:#?}"
    );
    assert!(only(&findings, "history_mismatch")[0]
        .detail
        .contains("2025-11-01"));
}

/// Case 8: an exemption given by alias or key id is reported expired under
/// the key(s) it matched, with their account and Region.
#[test]
fn case8_an_expired_exemption_names_the_key() {
    let as_of = t(2026, 1, 1);
    let mut batch_us = key("us-east-1", "k-batch", Eligibility::Eligible);
    batch_us.aliases = vec!["alias/batch".into()];
    let mut batch_eu = key("eu-west-1", "k-batch-eu", Eligibility::Eligible);
    batch_eu.aliases = vec!["alias/batch".into()];
    let by_id = key("us-east-1", "k-byid", Eligibility::Eligible);
    let ev = evidence_of(
        vec![batch_us, batch_eu, by_id],
        vec![],
        vec![],
        vec![],
        t(2024, 11, 27),
    );
    let lapsed = |key: &str| Exemption {
        key: key.into(),
        rule: "rotation_disabled".into(),
        reason: "Legacy".into(),
        approver: "ciso@example.com".into(),
        expires: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
        line: 0,
    };
    let policy = Policy {
        exemptions: vec![
            lapsed("alias/batch"),
            lapsed("k-byid"),
            lapsed("alias/nothing"),
        ],
        ..Policy::default()
    };
    let findings = judge(&ev, &policy, as_of);
    let expired = only(&findings, "exemption_expired");
    assert_eq!(
        fired(&findings, "exemption_expired"),
        set(&["k-batch", "k-batch-eu", "k-byid"])
    );
    for f in &expired {
        let arn = f.key_arn.as_deref().unwrap();
        assert!(arn.starts_with("arn:aws:kms:"), "{arn}");
        assert_eq!(f.account_id.as_deref(), Some(ACCT));
        assert!(arn.contains(f.region.as_deref().unwrap()), "{f:?}");
    }
}

/// Case 9: one role denied under many sessions is one finding, for the role
/// (sessionContext.sessionIssuer.arn), with the sessions in the evidence;
/// its id does not change when next month's sessions have other names.
#[test]
fn case9_permission_failures_are_grouped_by_role() {
    let us = "us-east-1";
    let role = format!("arn:aws:iam::{ACCT}:role/deploy/ci-deployer");
    let denied = |id: &str, session: &str, when: DateTime<Utc>| {
        let mut e = event(
            id,
            "EnableKeyRotation",
            "k-off",
            when,
            &format!("arn:aws:sts::{ACCT}:assumed-role/ci-deployer/{session}"),
            Some("AccessDeniedException"),
        );
        e.principal_type = Some("AssumedRole".into());
        e.session_issuer_arn = Some(role.clone());
        e
    };
    let mut off = key(us, "k-off", Eligibility::Eligible);
    off.rotation_enabled = Some(false);
    let month = |events: Vec<EventRow>, as_of: DateTime<Utc>| {
        let ev = evidence_of(
            vec![off.clone()],
            vec![],
            events,
            vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
            t(2024, 11, 27),
        );
        judge(&ev, &Policy::default(), as_of)
    };
    let first = month(
        vec![
            denied("e1", "build-1", t(2025, 9, 1)),
            denied("e2", "build-2", t(2025, 9, 2)),
            denied("e3", "build-3", t(2025, 9, 3)),
        ],
        t(2025, 10, 1),
    );
    let pf = only(&first, "permission_failure");
    assert_eq!(pf.len(), 1, "{pf:#?}");
    assert!(pf[0].detail.starts_with(&role), "{}", pf[0].detail);
    assert!(
        pf[0].detail.contains("3 time(s) in 3 session(s)"),
        "{}",
        pf[0].detail
    );
    let evidence = pf[0].evidence.as_deref().unwrap();
    for s in ["build-1", "build-2", "build-3"] {
        assert!(evidence.contains(s), "{evidence}");
    }
    let second = month(
        vec![
            denied("e1", "build-1", t(2025, 9, 1)),
            denied("e2", "build-2", t(2025, 9, 2)),
            denied("e3", "build-3", t(2025, 9, 3)),
            denied("e4", "build-77", t(2025, 10, 20)),
        ],
        t(2025, 11, 1),
    );
    assert_eq!(
        only(&second, "permission_failure")[0].finding_id,
        pf[0].finding_id
    );
}

/// Case 10: two Sid-less statements are two subjects, told apart by index.
#[test]
fn case10_two_sidless_statements_are_two_findings() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let mut k = with_history(on(key(us, "k-twice", Eligibility::Eligible), 365), 0);
    k.creation_date = Some(t(2025, 12, 1));
    let k = with_policy(
        k,
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:EnableKeyRotation","Resource":"*"},
           {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:EnableKeyRotation","Resource":"*"}"#,
    );
    let ev = evidence_of(
        vec![k],
        vec![],
        vec![],
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    let denies = only(&findings, "policy_denies_rotation");
    assert_eq!(denies.len(), 2, "{denies:#?}");
    assert_ne!(denies[0].finding_id, denies[1].finding_id);
    assert!(denies.iter().any(|f| f.detail.contains("#1 (no Sid)")));
    assert!(denies.iter().any(|f| f.detail.contains("#2 (no Sid)")));
}

/// Also checked: a day without a log file may be quiet; evidence_gap does
/// not claim the logs were lost.
#[test]
fn a_day_without_a_log_file_is_not_called_lost() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let missing = [NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()];
    let ev = evidence_of(
        vec![with_history(
            on(key(us, "k-ok", Eligibility::Eligible), 365),
            0,
        )],
        vec![],
        vec![],
        vec![trail_days(us, t(2025, 1, 1), as_of, &missing)],
        t(2025, 1, 1),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    let gap = only(&findings, "evidence_gap");
    assert_eq!(gap.len(), 1);
    let d = &gap[0].detail;
    assert!(
        d.contains("no CloudTrail log file was read for 1 of") && d.contains("quiet or lost"),
        "{d}"
    );
    assert!(
        !d.contains("logs are missing") && !d.contains("lost logs"),
        "{d}"
    );
}

/// Also checked: CloudTrail files a log by delivery time, so an event late on
/// one day can arrive in the next day's files; a listed rotation is judged
/// only where both days have log files.
#[test]
fn a_rotation_delivered_the_next_day_is_not_a_mismatch() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let k = |id: &str| {
        let mut k = with_history(on(key(us, id, Eligibility::Eligible), 365), 1);
        k.next_rotation_date = Some(t(2026, 6, 1));
        k
    };
    let rotations = vec![
        listed(
            "k-late-night",
            Utc.with_ymd_and_hms(2025, 6, 1, 23, 58, 0).unwrap(),
            "AUTOMATIC",
        ),
        listed(
            "k-quiet-trail",
            Utc.with_ymd_and_hms(2025, 7, 1, 10, 0, 0).unwrap(),
            "AUTOMATIC",
        ),
    ];
    // The file delivered on 2025-06-02 (holding the 23:58 event) is missing.
    let missing = [NaiveDate::from_ymd_opt(2025, 6, 2).unwrap()];
    let ev = evidence_of(
        vec![k("k-late-night"), k("k-quiet-trail")],
        rotations,
        vec![],
        vec![trail_days(us, t(2024, 11, 27), as_of, &missing)],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    assert_eq!(
        fired(&findings, "history_mismatch"),
        set(&["k-quiet-trail"])
    );
}

/// The derived tables read the events as the rules do: a failure whose
/// record named the key by alias is grouped under the key the alias points
/// to, and says so.
#[test]
fn an_alias_named_failure_is_reported_under_its_key() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let mut k = key(us, "k-app", Eligibility::Eligible);
    k.rotation_enabled = Some(false);
    k.aliases = vec!["alias/app".into()];
    let mut e = event(
        "f1",
        "EnableKeyRotation",
        "k-app",
        t(2025, 9, 1),
        "arn:aws:iam::111122223333:user/bob",
        Some("AccessDenied"),
    );
    e.key_arn = None;
    e.key_id = Some("alias/app".into());
    e.recipient_account_id = Some(ACCT.into());
    let ev = evidence_of(
        vec![k],
        vec![],
        vec![e],
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    let pf = only(&findings, "permission_failure");
    assert_eq!(pf.len(), 1, "{findings:#?}");
    assert_eq!(pf[0].key_arn.as_deref(), Some(arn(us, "k-app").as_str()));
    assert!(
        pf[0]
            .evidence
            .as_deref()
            .unwrap()
            .contains("key named as alias/app, resolved through the alias"),
        "{:?}",
        pf[0].evidence
    );
}

// ---------------------------------------------------------------------------
// Issue 14: a key policy that names a deleted principal.
// ---------------------------------------------------------------------------

const DELETED_ROLE: &str = "AROA3XFRBF535PLBIFPI4";
const DELETED_USER: &str = "AIDACKCEVSQ6C2EXAMPLE";

/// A deleted role or user shows in a key policy as its unique id, in any of
/// the forms a Principal takes; the finding names the statement and what it
/// allowed or denied, one finding per statement, on customer-managed keys of
/// any type.
#[test]
fn orphaned_principals_are_named_with_their_statement_and_actions() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let k = |id: &str| {
        let mut k = with_history(on(key(us, id, Eligibility::Eligible), 365), 0);
        // Not yet due: only the policy rules speak.
        k.creation_date = Some(t(2025, 12, 1));
        k
    };
    let admin = r#"{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
    let mut rsa = key(us, "k-rsa-orphan", Eligibility::UnsupportedSpec);
    rsa.key_spec = Some("RSA_2048".into());
    rsa.creation_date = Some(t(2025, 12, 1));
    let mut aws = key(us, "k-aws-managed", Eligibility::AwsManaged);
    aws.key_manager = Some("AWS".into());
    aws.rotation_enabled = Some(true);
    let keys = vec![
        with_policy(
            k("k-role"),
            &format!(
                r#"{admin},{{"Sid":"RotationAutomation","Effect":"Allow","Principal":{{"AWS":"{DELETED_ROLE}"}},
                   "Action":["kms:EnableKeyRotation","kms:RotateKeyOnDemand"],"Resource":"*"}}"#
            ),
        ),
        with_policy(
            k("k-list"),
            &format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:role/ops","{DELETED_USER}"]}},
                   "Action":"kms:Decrypt","Resource":"*"}}"#
            ),
        ),
        with_policy(
            k("k-string"),
            &format!(
                r#"{{"Sid":"Legacy","Effect":"Allow","Principal":"{DELETED_USER}","Action":"kms:*","Resource":"*"}}"#
            ),
        ),
        with_policy(
            k("k-notprincipal"),
            &format!(
                r#"{admin},{{"Sid":"OnlyRotator","Effect":"Deny","NotPrincipal":{{"AWS":["{DELETED_ROLE}","arn:aws:iam::111122223333:root"]}},
                   "Action":"kms:DisableKeyRotation","Resource":"*"}}"#
            ),
        ),
        with_policy(
            k("k-deny"),
            &format!(
                r#"{admin},{{"Sid":"NoContractor","Effect":"Deny","Principal":{{"AWS":"{DELETED_USER}"}},"Action":"kms:*","Resource":"*"}}"#
            ),
        ),
        with_policy(
            k("k-two"),
            &format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{DELETED_ROLE}"}},"Action":"kms:Encrypt","Resource":"*"}},
                   {{"Effect":"Allow","Principal":{{"AWS":["{DELETED_USER}","{DELETED_ROLE}"]}},"Action":"kms:Decrypt","Resource":"*"}}"#
            ),
        ),
        // An ARN whose name looks like an id, an account, a service: no one deleted.
        with_policy(
            k("k-clean"),
            r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/AROA3XFRBF535PLBIFPI4","111122223333"],
                "Service":"logs.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
        ),
        with_policy(
            rsa,
            &format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{DELETED_ROLE}"}},"Action":"kms:Sign","Resource":"*"}}"#
            ),
        ),
        with_policy(
            aws,
            &format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{DELETED_ROLE}"}},"Action":"kms:*","Resource":"*"}}"#
            ),
        ),
    ];
    let ev = evidence_of(
        keys,
        vec![],
        vec![],
        vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
        t(2024, 11, 27),
    );
    let findings = judge(&ev, &Policy::default(), as_of);
    let orphaned = only(&findings, "orphaned_policy_principal");
    assert_eq!(
        fired(&findings, "orphaned_policy_principal"),
        set(&[
            "k-role",
            "k-list",
            "k-string",
            "k-notprincipal",
            "k-deny",
            "k-two",
            "k-rsa-orphan"
        ])
    );
    assert_eq!(orphaned.len(), 8, "two statements of k-two: {orphaned:#?}");
    assert!(orphaned
        .iter()
        .all(|f| f.severity == crate::policy::Severity::Medium));
    let of = |id: &str| -> Vec<&Finding> {
        orphaned
            .iter()
            .copied()
            .filter(|f| f.key_arn.as_deref().unwrap().ends_with(id))
            .collect()
    };
    let role = &of("k-role")[0].detail;
    assert!(
        role.contains("statement RotationAutomation allows Action: kms:EnableKeyRotation, kms:RotateKeyOnDemand to AROA3XFRBF535PLBIFPI4 (IAM role)")
            && role.contains("locked out"),
        "{role}"
    );
    assert!(of("k-list")[0]
        .detail
        .contains("#1 (no Sid) allows Action: kms:Decrypt to AIDACKCEVSQ6C2EXAMPLE (IAM user)"));
    assert!(of("k-string")[0].detail.contains("statement Legacy allows"));
    let np = &of("k-notprincipal")[0].detail;
    assert!(
        np.contains("OnlyRotator (Effect Deny, Action: kms:DisableKeyRotation) exempts through NotPrincipal AROA3XFRBF535PLBIFPI4 (IAM role)")
            && np.contains("is not exempted"),
        "{np}"
    );
    let deny = &of("k-deny")[0].detail;
    assert!(
        deny.contains(
            "NoContractor (Effect Deny) denies Action: kms:* to AIDACKCEVSQ6C2EXAMPLE (IAM user)"
        ) && deny.contains("does not reach"),
        "{deny}"
    );
    let two = of("k-two");
    assert_ne!(two[0].finding_id, two[1].finding_id);
    assert!(two.iter().any(|f| f
        .detail
        .contains("#2 (no Sid) allows Action: kms:Decrypt to AIDACKCEVSQ6C2EXAMPLE (IAM user), AROA3XFRBF535PLBIFPI4 (IAM role)")));
    assert!(of("k-role")[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains(r#"Principal: {"AWS":"AROA3XFRBF535PLBIFPI4"}"#));
    // Besides the deleted principals, only what the keys were built with: a
    // Deny naming one principal, and an RSA key.
    let others: Vec<(&str, &str)> = findings
        .iter()
        .filter(|f| f.rule_id != "orphaned_policy_principal")
        .map(|f| (f.rule_id.as_str(), f.key_arn.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        others,
        vec![
            (
                "policy_conditionally_denies_rotation",
                arn(us, "k-deny").as_str()
            ),
            ("ineligible_key_type", arn(us, "k-rsa-orphan").as_str()),
        ]
    );
}

/// The statement's id is its Sid, so the finding keeps its id when the
/// statement moves, and closes when the id is replaced by an ARN.
#[test]
fn an_orphaned_principal_finding_is_stable_and_closes_when_fixed() {
    let us = "us-east-1";
    let as_of = t(2026, 1, 1);
    let judged = |statements: &str| {
        let mut k = with_history(on(key(us, "k-app", Eligibility::Eligible), 365), 0);
        k.creation_date = Some(t(2025, 12, 1));
        let ev = evidence_of(
            vec![with_policy(k, statements)],
            vec![],
            vec![],
            vec![trail_days(us, t(2024, 11, 27), as_of, &[])],
            t(2024, 11, 27),
        );
        judge(&ev, &Policy::default(), as_of)
            .into_iter()
            .filter(|f| f.rule_id == "orphaned_policy_principal")
            .collect::<Vec<_>>()
    };
    let grant = format!(
        r#"{{"Sid":"Rotator","Effect":"Allow","Principal":{{"AWS":"{DELETED_ROLE}"}},"Action":"kms:EnableKeyRotation","Resource":"*"}}"#
    );
    let other = r#"{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
    let before = judged(&format!("{grant},{other}"));
    let moved = judged(&format!("{other},{grant}"));
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].finding_id, moved[0].finding_id);
    let fixed = judged(&format!(
        "{},{other}",
        grant.replace(DELETED_ROLE, "arn:aws:iam::111122223333:role/rotator")
    ));
    assert!(fixed.is_empty(), "{fixed:#?}");
}
