//! `collect` → `assess` → `verify-bundle` → `diagnose` on a scenario with known
//! answers: keys in moto, and a dated CloudTrail archive in moto's S3 holding
//! rotations, a missed cycle, AccessDenied failures from a CI role, a
//! DisableKeyRotation by a person, and a region with missing days.
//!
//! moto's ListKeyRotations only knows rotations made in the emulator, all dated
//! "now"; the archive's older RotateKey event for `orders` therefore also
//! raises `history_mismatch`. That finding is asserted as what AWS would say
//! for the same answers, and named here as moto's gap.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use kmsrot_testkit::cloudtrail::{self, KeyRef};

use crate::assert_seen;
use crate::support::snapshot::Seen;
use crate::support::{read_json, run, Moto, ACCOUNT};

pub(crate) const BUCKET: &str = "org-trail";

pub(crate) struct Keys {
    pub(crate) payments: String,
    pub(crate) orders: String,
    pub(crate) ledger: String,
    pub(crate) legacy: String,
    pub(crate) signing: String,
    pub(crate) doomed: String,
    pub(crate) guarded: String,
    pub(crate) primary: String,
    pub(crate) eu_data: String,
}

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}")
}

pub(crate) async fn seed_keys(moto: &Moto) -> Keys {
    let us = moto.kms("us-east-1").await;
    let eu = moto.kms("eu-west-1").await;
    let create = |desc: &'static str| {
        let us = us.clone();
        async move {
            us.create_key()
                .description(desc)
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string()
        }
    };
    let alias = |name: &'static str, id: String| {
        let us = us.clone();
        async move {
            us.create_alias()
                .alias_name(name)
                .target_key_id(id)
                .send()
                .await
                .unwrap();
        }
    };
    let payments = create("card payments").await;
    alias("alias/payments", payments.clone()).await;
    us.enable_key_rotation()
        .key_id(&payments)
        .send()
        .await
        .unwrap();
    us.rotate_key_on_demand()
        .key_id(&payments)
        .send()
        .await
        .unwrap();

    let orders = create("order history").await;
    alias("alias/orders", orders.clone()).await;
    us.enable_key_rotation()
        .key_id(&orders)
        .send()
        .await
        .unwrap();

    let ledger = create("general ledger").await;
    alias("alias/ledger", ledger.clone()).await;

    let legacy = create("legacy batch").await;
    alias("alias/legacy", legacy.clone()).await;
    us.disable_key().key_id(&legacy).send().await.unwrap();

    let signing = us
        .create_key()
        .description("firmware signing")
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    alias("alias/signing", signing.clone()).await;

    let doomed = create("old reports").await;
    us.schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM policies", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "FreezeRotation", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": ["kms:EnableKeyRotation", "kms:DisableKeyRotation"], "Resource": "*"}
        ]
    });
    let guarded = us
        .create_key()
        .description("guarded")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    alias("alias/guarded", guarded.clone()).await;
    // moto does not evaluate key policies, so rotation can be turned on here.
    us.enable_key_rotation()
        .key_id(&guarded)
        .send()
        .await
        .unwrap();

    let primary = us
        .create_key()
        .description("global sessions")
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    us.enable_key_rotation()
        .key_id(&primary)
        .send()
        .await
        .unwrap();
    us.replicate_key()
        .key_id(&primary)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    let eu_data = eu
        .create_key()
        .description("eu customer data")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    eu.enable_key_rotation()
        .key_id(&eu_data)
        .send()
        .await
        .unwrap();

    Keys {
        payments,
        orders,
        ledger,
        legacy,
        signing,
        doomed,
        guarded,
        primary,
        eu_data,
    }
}

fn record(
    name: &str,
    region: &str,
    key_id: &str,
    at: DateTime<Utc>,
    principal: Option<&str>,
    error: Option<(&str, &str)>,
) -> Value {
    let key = KeyRef {
        account: ACCOUNT,
        region,
        key_id,
    };
    cloudtrail::record(name, key, at, principal, error)
}

/// Data-plane noise, as real archives are mostly made of.
fn decrypt(region: &str, key_id: &str, at: DateTime<Utc>) -> Value {
    record(
        "Decrypt",
        region,
        key_id,
        at,
        Some("arn:aws:sts::123456789012:assumed-role/app/i-0abc"),
        None,
    )
}

/// One log file per day in each region over the window, as CloudTrail
/// delivers them; `missing` days in eu-west-1 have no file.
pub(crate) async fn seed_archive(moto: &Moto, keys: &Keys, now: DateTime<Utc>, missing: &[i64]) {
    let s3 = moto.s3("us-east-1").await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let ci = "arn:aws:sts::123456789012:assumed-role/ci-deployer/build-1187";
    let alice = "arn:aws:iam::123456789012:user/alice";
    let day = |n: i64| now - Duration::days(n);
    // (days ago, region, record)
    let mut events: Vec<(i64, &str, Value)> = vec![
        (300, "us-east-1", record("EnableKeyRotation", "us-east-1", &keys.payments, day(300), Some(alice), None)),
        // One automatic rotation 390 days ago, none since: a missed cycle.
        (390, "us-east-1", record("RotateKey", "us-east-1", &keys.orders, day(390), None, None)),
        (100, "us-east-1", record("DisableKeyRotation", "us-east-1", &keys.ledger, day(100), Some(alice), None)),
        (10, "us-east-1", record("EnableKeyRotation", "us-east-1", &keys.ledger, day(10), Some(ci),
            Some(("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/ci-deployer/build-1187 is not authorized to perform: kms:EnableKeyRotation on this resource because no identity-based policy allows the kms:EnableKeyRotation action")))),
        (9, "us-east-1", record("EnableKeyRotation", "us-east-1", &keys.ledger, day(9), Some(ci),
            Some(("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/ci-deployer/build-1187 is not authorized to perform: kms:EnableKeyRotation on this resource because no identity-based policy allows the kms:EnableKeyRotation action")))),
        (20, "us-east-1", record("EnableKeyRotation", "us-east-1", &keys.legacy, day(20), Some(alice),
            Some(("DisabledException", "arn:aws:kms:us-east-1:123456789012:key/... is disabled.")))),
    ];
    // The on-demand rotation moto recorded "now" is in CloudTrail too.
    events.push((
        0,
        "us-east-1",
        record(
            "RotateKeyOnDemand",
            "us-east-1",
            &keys.payments,
            now - Duration::minutes(5),
            Some(alice),
            None,
        ),
    ));
    for n in 0..=400 {
        events.push((n, "us-east-1", decrypt("us-east-1", &keys.payments, day(n))));
        events.push((n, "eu-west-1", decrypt("eu-west-1", &keys.eu_data, day(n))));
    }
    let mut files: std::collections::BTreeMap<(String, i64), Vec<Value>> = Default::default();
    for (n, region, r) in events {
        if region == "eu-west-1" && missing.contains(&n) {
            continue;
        }
        files.entry((region.to_string(), n)).or_default().push(r);
    }
    let puts = files.into_iter().map(|((region, n), records)| {
        let s3 = s3.clone();
        let at = day(n);
        async move {
            let key = cloudtrail::archive_key(ACCOUNT, &region, at, &format!("{n:04}abcd"));
            let body = cloudtrail::log_file(&records);
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    });
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

use futures::StreamExt;

/// The scenario's events are dated relative to now: besides the shared
/// filters (times, key ids), dates and ages change from run to run.
fn user_facing_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\d{4}-\d{2}-\d{2}", "[DATE]"),
        (r"\d+ days ago", "[N] days ago"),
    ]
}

fn short(rule_and_key: &Value, keys: &Keys) -> String {
    let arn = rule_and_key["key_arn"].as_str().unwrap_or("");
    let names = [
        (&keys.payments, "payments"),
        (&keys.orders, "orders"),
        (&keys.ledger, "ledger"),
        (&keys.legacy, "legacy"),
        (&keys.signing, "signing"),
        (&keys.doomed, "doomed"),
        (&keys.guarded, "guarded"),
        (&keys.eu_data, "eu-data"),
    ];
    if arn.is_empty() {
        return format!("region:{}", rule_and_key["region"].as_str().unwrap_or("?"));
    }
    if arn.ends_with(&keys.primary) {
        return if arn.contains("eu-west-1") {
            "replica".into()
        } else {
            "primary".into()
        };
    }
    names
        .iter()
        .find(|(id, _)| arn.ends_with(id.as_str()))
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| arn.to_string())
}

pub(crate) fn write_policy(dir: &Path, keys: &Keys, now: DateTime<Utc>) -> std::path::PathBuf {
    let path = dir.join("kmsrot.toml");
    let text = format!(
        r#"# Scenario policy
max_rotation_period_days = 365
grace_days = 7

[[exemption]]
key = "alias/legacy"
rule = "rotation_off_disabled_key"
reason = "Batch system retired; key kept for decrypting archives"
approver = "security-lead@example.com"
expires = "{}"

[[exemption]]
key = "{}"
rule = "*"
reason = "Firmware signing key, replaced by hand each year"
approver = "security-lead@example.com"
expires = "{}"
"#,
        (now + Duration::days(90)).format("%Y-%m-%d"),
        arn("us-east-1", &keys.signing),
        (now - Duration::days(30)).format("%Y-%m-%d"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_assess_verify_diagnose_on_a_known_scenario() {
    let moto = Moto::start();
    let keys = seed_keys(&moto).await;
    let now = Utc::now();
    seed_archive(&moto, &keys, now, &[40, 41, 42]).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let policy = write_policy(work.path(), &keys, now);

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
        .arg(&bundle)
        .args(["--trail", &format!("s3://{BUCKET}/"), "--policy"])
        .arg(&policy));
    // eu-west-1 misses three days of logs: the bundle is partial and says so.
    assert_eq!(code, 3, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("eu-west-1"), "{stderr}");
    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["caller"]["account"], ACCOUNT);
    assert!(manifest["simulated"]
        .as_str()
        .unwrap()
        .contains("not from AWS"));
    assert_eq!(manifest["regions"], json!(["us-east-1", "eu-west-1"]));
    for f in [
        "keys.parquet",
        "rotations.csv",
        "events.json",
        "coverage.json",
        "raw/index.json",
    ] {
        assert!(
            manifest["files"][f].is_string(),
            "{f} not hashed in the manifest"
        );
    }
    let index = read_json(&bundle.join("raw/index.json"));
    assert!(index.as_array().unwrap().iter().any(|c| c["cli"]
        .as_str()
        .unwrap()
        .starts_with("aws kms describe-key --region us-east-1 --key-id")));

    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["assess"])
        .arg(&bundle)
        .arg("--policy")
        .arg(&policy));
    assert_eq!(
        code, 1,
        "open high findings exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_seen!(
        "assess_summary",
        &Seen::from((code, stdout.clone(), stderr.clone())),
        user_facing_filters()
    );
    // Without --as-of the bundle is judged as of its collection.
    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["assessment"]["as_of"], manifest["collected_at"]);
    assert!(manifest["assessment"]["as_of_note"].is_null());
    let findings = read_json(&bundle.join("findings.json"));
    let got: BTreeSet<(String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule_id"].as_str().unwrap().to_string(), short(f, &keys)))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("rotation_disabled", "ledger"),
        ("permission_failure", "ledger"),
        ("rotation_disabled_event", "ledger"),
        ("missed_cycle", "orders"),
        // moto's gap: its ListKeyRotations cannot hold the archive's 390-day-old rotation.
        ("history_mismatch", "orders"),
        ("rotation_off_disabled_key", "legacy"),
        ("rotation_call_failed", "legacy"),
        ("policy_denies_rotation", "guarded"),
        ("pending_deletion", "doomed"),
        ("ineligible_key_type", "signing"),
        ("exemption_expired", "signing"),
        ("replica_follows_primary", "replica"),
        ("evidence_gap", "region:eu-west-1"),
    ]
    .iter()
    .map(|(r, k)| (r.to_string(), k.to_string()))
    .collect();
    assert_eq!(got, want);
    let by = |rule: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == rule)
            .unwrap()
            .clone()
    };
    assert_eq!(by("rotation_off_disabled_key")["status"], "exempted");
    assert_eq!(by("ineligible_key_type")["status"], "open");
    assert!(by("permission_failure")["detail"]
        .as_str()
        .unwrap()
        .contains("ci-deployer"));
    assert!(by("permission_failure")["detail"]
        .as_str()
        .unwrap()
        .contains("2 time(s)"));
    assert!(by("rotation_disabled_event")["detail"]
        .as_str()
        .unwrap()
        .contains("user/alice"));
    assert!(by("evidence_gap")["detail"]
        .as_str()
        .unwrap()
        .contains("3 of"));

    // The same bundle, judged a year earlier, no longer has the missed cycle.
    let earlier = (now - Duration::days(365)).format("%Y-%m-%d").to_string();
    let (_, _, _) = run(moto
        .kmsrot()
        .args(["assess"])
        .arg(&bundle)
        .arg("--policy")
        .arg(&policy)
        .args(["--as-of", &earlier]));
    let findings = read_json(&bundle.join("findings.json"));
    assert!(!findings
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule_id"] == "missed_cycle"));
    let manifest = read_json(&bundle.join("manifest.json"));
    assert!(
        manifest["assessment"]["as_of_note"]
            .as_str()
            .unwrap()
            .contains("before collection"),
        "{}",
        manifest["assessment"]
    );

    // Judged a month after collection: the manifest and the report say so.
    let later = (now + Duration::days(30)).format("%Y-%m-%d").to_string();
    let (_, _, stderr) = run(moto
        .kmsrot()
        .args(["assess"])
        .arg(&bundle)
        .arg("--policy")
        .arg(&policy)
        .args(["--as-of", &later]));
    assert!(
        stderr.contains("judged 30 days after collection"),
        "{stderr}"
    );
    let manifest = read_json(&bundle.join("manifest.json"));
    assert!(manifest["assessment"]["as_of_note"]
        .as_str()
        .unwrap()
        .starts_with("judged 30 days after collection"));
    // The exemption by bare alias reached exactly the one key named so.
    let reach = &manifest["assessment"]["exemptions"];
    assert_eq!(reach[0]["key"], "alias/legacy");
    assert_eq!(reach[0]["matched"].as_array().unwrap().len(), 1);
    assert!(reach[0]["matched"][0]["key_arn"]
        .as_str()
        .unwrap()
        .ends_with(&keys.legacy));
    let report = work.path().join("report");
    let (code, _, stderr) = run(moto
        .kmsrot()
        .args(["report"])
        .arg(&bundle)
        .arg("--out")
        .arg(&report));
    assert!(code == 0 || code == 3, "{stderr}");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("judged 30 days after collection"), "{md}");
    assert!(md.contains("alias/legacy"), "{md}");

    let (code, _, stderr) = run(moto.kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 0, "{stderr}");
    let csv = bundle.join("keys.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("true", "false")).unwrap();
    let (code, stdout, _) = run(moto.kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 1);
    assert!(
        stdout.contains("changed") && stdout.contains("keys.csv"),
        "{stdout}"
    );

    // Issue 17: a bundle that no longer matches its manifest is refused,
    // naming the file, unless the reader says --allow-modified.
    let (code, _, stderr) = run(moto
        .kmsrot()
        .args(["diagnose", "alias/ledger", "--bundle"])
        .arg(&bundle));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not match its manifest") && stderr.contains("keys.csv"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["diagnose", "alias/ledger", "--allow-modified", "--bundle"])
        .arg(&bundle));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("does not match its manifest"), "{stdout}");
    assert!(stdout.contains("ci-deployer"), "{stdout}");
    assert!(stdout.contains("AccessDeniedException x2"), "{stdout}");
    assert!(
        stdout.contains("arn:aws:iam::123456789012:user/alice disabled automatic rotation"),
        "{stdout}"
    );
    assert_seen!(
        "diagnose_ledger_from_bundle",
        &Seen::from((code, stdout.clone(), stderr.clone())),
        user_facing_filters()
    );

    // One place for each decision: diagnose runs the same rules over the same
    // evidence, so for every key its open findings are exactly those assess
    // wrote into the bundle.
    let written = read_json(&bundle.join("findings.json"));
    for k in read_json(&bundle.join("keys.json")).as_array().unwrap() {
        let arn = k["arn"].as_str().unwrap();
        let (code, stdout, stderr) = run(moto
            .kmsrot()
            // keys.csv was tampered with above; the frames read are Parquet.
            .args(["diagnose", arn, "--allow-modified", "--bundle"])
            .arg(&bundle)
            .args(["--output", "json"]));
        assert_eq!(code, 0, "{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        let got: BTreeSet<(String, String, String)> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["finding_id"].as_str().unwrap().to_string(),
                    f["rule_id"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String, String)> = written
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["key_arn"] == arn && f["status"] == "open")
            .map(|f| {
                (
                    f["finding_id"].as_str().unwrap().to_string(),
                    f["rule_id"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "diagnose {arn} disagrees with assess");
        assert!(
            report["gaps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| !g.as_str().unwrap().contains("findings.csv")),
            "{}",
            report["gaps"]
        );
    }

    let (code, stdout, stderr) = run(moto.kmsrot().env("AWS_MAX_ATTEMPTS", "1").args([
        "--region",
        "us-east-1",
        "diagnose",
        "alias/guarded",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("FreezeRotation"), "{stdout}");
    // Live, the same rules judge the key: its Deny of EnableKeyRotation to
    // everyone, unconditionally, is the high finding assess reports.
    let (code, stdout, stderr) = run(moto.kmsrot().env("AWS_MAX_ATTEMPTS", "1").args([
        "--region",
        "us-east-1",
        "--output",
        "json",
        "diagnose",
        "alias/guarded",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["policy_denies_rotation"], "{stdout}");
}

fn key_id(out: aws_sdk_kms::operation::create_key::CreateKeyOutput) -> String {
    out.key_metadata().unwrap().key_id().to_string()
}

/// Issue 10, cases 5 and 6 against the emulator: with `--region` naming only
/// the replicas' Region, a replica's own GetKeyRotationStatus is the setting
/// it shares with its primary (off is a finding naming the primary, on is
/// compliant); an asymmetric key with imported material is `unsupported_spec`
/// and gets neither GetKeyRotationStatus nor ListKeyRotations, as AWS answers
/// those with UnsupportedOperationException; a multi-Region key with imported
/// material is told how (little) it can rotate.
///
/// moto copies a replica's rotation status when it replicates the key rather
/// than sharing it; the primaries are set before replication so that the copy
/// is what AWS would report.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_in_scope_alone_and_imported_keys() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType};
    let moto = Moto::start();
    let us = moto.kms("us-east-1").await;
    let eu = moto.kms("eu-west-1").await;
    let off = key_id(us.create_key().multi_region(true).send().await.unwrap());
    us.replicate_key()
        .key_id(&off)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    let on = key_id(us.create_key().multi_region(true).send().await.unwrap());
    us.enable_key_rotation().key_id(&on).send().await.unwrap();
    us.replicate_key()
        .key_id(&on)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    let rsa_imported = key_id(
        eu.create_key()
            .key_spec(KeySpec::Rsa2048)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .origin(OriginType::External)
            .send()
            .await
            .unwrap(),
    );
    let mr_imported = key_id(
        eu.create_key()
            .multi_region(true)
            .origin(OriginType::External)
            .send()
            .await
            .unwrap(),
    );

    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["--region", "eu-west-1", "collect", "--out"])
        .arg(&bundle));
    assert!(
        code == 0 || code == 3,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let keys = read_json(&bundle.join("keys.json"));
    let key = |id: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in keys.json"))
            .clone()
    };
    assert_eq!(key(&off)["eligibility"], "replica");
    assert_eq!(key(&off)["rotation_enabled"], false);
    assert_eq!(key(&on)["rotation_enabled"], true);
    assert_eq!(key(&rsa_imported)["eligibility"], "unsupported_spec");
    assert!(key(&rsa_imported)["rotation_enabled"].is_null());
    assert!(!key(&rsa_imported)["eligibility_reason"]
        .as_str()
        .unwrap()
        .contains("RotateKeyOnDemand"));
    assert_eq!(key(&mr_imported)["eligibility"], "external_origin");
    assert!(key(&mr_imported)["eligibility_reason"]
        .as_str()
        .unwrap()
        .contains("Multi-Region key with imported key material"));
    // No call AWS would refuse with UnsupportedOperationException.
    let index = std::fs::read_to_string(bundle.join("raw/index.json")).unwrap();
    for op in ["get-key-rotation-status", "list-key-rotations"] {
        assert!(
            !index
                .lines()
                .any(|l| l.contains(op) && l.contains(&rsa_imported)),
            "{op} called on the imported RSA key:\n{index}"
        );
    }

    let (code, stdout, stderr) = run(moto.kmsrot().arg("assess").arg(&bundle));
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let findings = read_json(&bundle.join("findings.json"));
    let disabled: Vec<&Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "rotation_disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{disabled:#?}");
    assert!(disabled[0]["key_arn"].as_str().unwrap().ends_with(&off));
    let primary = arn("us-east-1", &off);
    assert!(
        disabled[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("Enable rotation on the primary {primary}")),
        "{}",
        disabled[0]["detail"]
    );
    // Judged as of its collection, whenever it is assessed.
    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["assessment"]["as_of"], manifest["collected_at"]);
    assert!(manifest["assessment"]["as_of_note"].is_null());
}
