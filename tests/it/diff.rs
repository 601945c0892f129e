//! `kmsrot diff` on two bundles of the assessment scenario a month apart:
//! the first collected and judged as of 30 days ago, then rotation turned on
//! for one key and off for another, a key added and one removed from use,
//! and the second collected now.
//!
//! moto cannot backdate a key's state, so the first bundle is collected
//! before the changes and its window ends 30 days ago (`--until`).

use chrono::{Duration, Utc};

use crate::assess::{seed_archive, seed_keys, write_policy, BUCKET};
use crate::support::{read_json, run, Moto};

#[tokio::test(flavor = "multi_thread")]
async fn diff_of_two_months() {
    let moto = Moto::start();
    let keys = seed_keys(&moto).await;
    let now = Utc::now();
    seed_archive(&moto, &keys, now, &[40, 41, 42]).await;
    let work = tempfile::tempdir().unwrap();
    let policy = write_policy(work.path(), &keys, now);
    let month_ago = (now - Duration::days(30)).format("%Y-%m-%d").to_string();
    let today = now.format("%Y-%m-%d").to_string();

    let collect = |bundle: &std::path::Path, until: &str| {
        let (code, stdout, stderr) = run(moto
            .kmsrot()
            .args([
                "--region",
                "us-east-1",
                "--region",
                "eu-west-1",
                "collect",
                "--out",
            ])
            .arg(bundle)
            .args([
                "--trail",
                &format!("s3://{BUCKET}/"),
                "--until",
                until,
                "--policy",
            ])
            .arg(&policy));
        assert!(code == 0 || code == 3, "collect: {stdout}\n{stderr}");
        let (code, stdout, stderr) = run(moto
            .kmsrot()
            .arg("assess")
            .arg(bundle)
            .arg("--policy")
            .arg(&policy)
            .args(["--as-of", until]));
        assert!(
            code == 0 || code == 1 || code == 3,
            "assess: {stdout}\n{stderr}"
        );
    };
    let old = work.path().join("2026-10");
    collect(&old, &month_ago);

    // The month's changes.
    let us = moto.kms("us-east-1").await;
    us.enable_key_rotation()
        .key_id(&keys.ledger)
        .send()
        .await
        .unwrap();
    us.disable_key_rotation()
        .key_id(&keys.payments)
        .send()
        .await
        .unwrap();
    let added = us
        .create_key()
        .description("new reporting key")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    let new = work.path().join("2026-11");
    collect(&new, &today);

    let out = work.path().join("diff");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["--output", "json", "diff"])
        .arg(&old)
        .arg(&new)
        .arg("--out")
        .arg(&out));
    // payments' rotation turned off opens a rotation_disabled finding: exit 1.
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let d: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(d, read_json(&out.join("diff.json")));
    let arns = |field: &str| -> Vec<String> {
        d[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["arn"].as_str().unwrap().to_string())
            .collect()
    };
    let arn = |id: &str| format!("arn:aws:kms:us-east-1:{}:key/{id}", crate::support::ACCOUNT);
    assert_eq!(arns("keys_added"), vec![arn(&added)]);
    assert!(arns("keys_removed").is_empty());
    assert_eq!(arns("rotation_turned_on"), vec![arn(&keys.ledger)]);
    assert_eq!(arns("rotation_turned_off"), vec![arn(&keys.payments)]);

    let rules_of = |field: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = d[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule_id"].as_str().unwrap().to_string(),
                    f["key"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let opened = rules_of("findings_opened");
    let resolved = rules_of("findings_resolved");
    let still = rules_of("findings_still_open");
    // Turned on this month: ledger's rotation_disabled is resolved.
    assert!(
        resolved.contains(&("rotation_disabled".into(), "alias/ledger".into())),
        "{resolved:?}"
    );
    // Turned off this month: payments now has rotation_disabled open.
    assert!(
        opened.contains(&("rotation_disabled".into(), "alias/payments".into())),
        "{opened:?}"
    );
    // The new key (no alias, so named by its id) has rotation off from the start.
    assert!(
        opened
            .iter()
            .any(|(r, k)| r == "rotation_disabled" && *k == added),
        "{opened:?}"
    );
    // Unchanged problems stay open, matched by finding_id.
    for (rule, key) in [
        ("pending_deletion", "doomed"),
        ("policy_denies_rotation", "alias/guarded"),
    ] {
        let found = still.iter().any(|(r, k)| r == rule && k.contains(key))
            || still.iter().any(|(r, _)| r == rule);
        assert!(found, "{rule} not still open: {still:?}");
    }
    // The signing key's exemption ran out 30 days ago: in the old bundle it
    // still applied (judged as of then), in the new one it has expired.
    let expired = d["exemptions_expired"].as_array().unwrap();
    assert!(
        expired
            .iter()
            .any(|e| e["key"].as_str().unwrap().contains("signing")),
        "{expired:?}"
    );

    let md = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(md.contains("| Rotation turned off | 1 |"), "{md}");
    assert!(md.contains("| Keys added | 1 |"), "{md}");

    let (code, table, _) = run(moto.kmsrot().arg("diff").arg(&old).arg(&new));
    assert_eq!(code, 1);
    assert!(table.contains("rotation off"), "{table}");
    assert!(table.contains("finding resolved"), "{table}");

    // The forward view: the new bundle's keys coming due, in 30/60/90-day
    // buckets by default.
    let due = &d["due"];
    assert_eq!(due["within_days"], 90);
    let buckets: Vec<&str> = due["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(
        buckets,
        ["overdue", "0-30 days", "31-60 days", "61-90 days"]
    );
    assert!(md.contains("## Keys coming due"), "{md}");
    // orders last rotated (CloudTrail) more than a period ago: overdue, on
    // top; the old bundle already showed it due, and it did not rotate.
    let names: Vec<(&str, &str)> = due["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key"].as_str().unwrap(), k["bucket"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("alias/orders", "overdue")], "{due}");
    assert!(
        due["keys"][0]["basis"]
            .as_str()
            .unwrap()
            .starts_with("one 365-day period after its last rotation"),
        "{due}"
    );
    assert!(due["keys"][0]["days"].as_i64().unwrap() < 0);
    let since = d["due_since_old"].as_array().unwrap();
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(since[0]["key"], "alias/orders");
    assert_eq!(since[0]["outcome"], "not rotated");
    assert!(
        stderr.contains(
            "due: 1 overdue, 0 due within 90 days; of the 1 due since the old bundle: 0 rotated, 1 not rotated"
        ),
        "{stderr}"
    );
    assert!(md.contains("| alias/orders | us-east-1 |"), "{md}");
    assert!(
        md.contains("### Due since the old bundle: did they rotate?"),
        "{md}"
    );
    assert!(table.contains("was due: not rotated"), "{table}");
    assert!(table.contains("overdue"), "{table}");

    // A longer view: ledger, turned on this month, comes due a period on.
    // moto reports no NextRotationDate (AWS does, once rotation is on) and
    // the enable is not in the seeded trail, so its schedule counts from
    // the key's creation.
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["--output", "json", "diff"])
        .arg(&old)
        .arg(&new)
        .args(["--due-within", "400"]));
    assert_eq!(code, 1, "{stderr}");
    let wide: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ledger = wide["due"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "alias/ledger")
        .unwrap_or_else(|| panic!("{}", wide["due"]));
    assert_eq!(ledger["bucket"], "91-400 days");
    assert!(
        ledger["basis"]
            .as_str()
            .unwrap()
            .contains("after its creation"),
        "{ledger}"
    );
    assert_eq!(wide["due"]["keys"][0]["key"], "alias/orders");
    // payments' rotation is off now: not coming due, a finding instead.
    assert!(!wide["due"].to_string().contains("alias/payments"));
}
