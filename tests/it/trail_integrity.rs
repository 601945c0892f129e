//! `--validate`: CloudTrail log file integrity validation of an S3 archive
//! in moto's S3, signed in the test with RSA keys made in the test (see
//! `support::signed_archive`): a valid chain, a quiet day, a log altered
//! after delivery, a log deleted, a digest deleted, a restarted chain, a file
//! no digest lists, a digest with a wrong signature. Public keys come from
//! `--public-keys` (the JSON `aws cloudtrail list-public-keys` prints) or
//! from ListPublicKeys, which moto lacks: a small fixture speaking
//! CloudTrail's JSON protocol answers it (`support::cloudtrail_fixture`),
//! reached through `AWS_ENDPOINT_URL_CLOUDTRAIL` while S3 goes to moto
//! through `AWS_ENDPOINT_URL_S3` (and STS, for the caller check). The outcomes are cross-checked with
//! `aws cloudtrail validate-logs` (AWS CLI v1, installed by scripts/test)
//! pointed at the same two endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::support::cloudtrail_fixture::{CloudTrailFixture, FixtureOptions};
use crate::support::signed_archive::{key, Archive, RegionPlan};
use crate::support::{fixtures, kmsrot, read_json, run, Moto, ACCOUNT};
use kmsrot_testkit::digests::SigningKey;

const BUCKET: &str = "signed-trail-archive";
const TRAIL: &str = "org-trail";
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";
const SINCE: &str = "2025-03-01";
const UNTIL: &str = "2025-03-04";

fn t(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, h, m, 0).unwrap()
}

fn doc_record(name: &str, id: u32, at: DateTime<Utc>, region: &str) -> Value {
    let mut r = read_json(&fixtures().join("s3-archive").join(name));
    r["eventID"] = json!(format!("{id:08x}-0000-4000-8000-00000000{id:04x}"));
    r["eventTime"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    r["awsRegion"] = json!(region);
    r["recipientAccountId"] = json!(ACCOUNT);
    r
}

fn noise(id: u32, at: DateTime<Utc>, region: &str) -> Vec<Value> {
    let mut records = read_json(
        &fixtures()
            .join("s3-archive")
            .join("218007301253_CloudTrail_us-east-1_20230710T1205Z_1dM7GQM67kudSyGD.json"),
    )["Records"]
        .as_array()
        .unwrap()
        .clone();
    for (i, r) in records.iter_mut().enumerate() {
        r["eventID"] = json!(format!("{:08x}-1111-4000-8000-000000000000", id + i as u32));
        r["eventTime"] = json!((at - Duration::minutes(1))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string());
        r["awsRegion"] = json!(region);
        r["recipientAccountId"] = json!(ACCOUNT);
    }
    records
}

/// us-east-1: digests every hour from 2025-02-28 to the end of 2025-03-06;
/// log files on 03-01 (an EnableKeyRotation and a RotateKey), none on
/// 03-02 (a quiet day), several on 03-03 and 03-05. `stop` leaves out the
/// digests from 03-04 00:00 to 03-05 06:00 (logging stopped: 03-04 is a
/// real gap) and restarts the chain after.
fn us_plan(stop: bool) -> RegionPlan {
    let mut logs = BTreeMap::new();
    logs.insert(
        t(1, 2, 5),
        vec![doc_record(
            "current-docs.ct-enablekeyrotation.1.json",
            1,
            t(1, 2, 3),
            US,
        )],
    );
    logs.insert(
        t(1, 10, 5),
        vec![doc_record(
            "current-docs.ct-rotatekey.1.json",
            2,
            t(1, 10, 1),
            US,
        )],
    );
    logs.insert(t(1, 18, 5), noise(100, t(1, 18, 5), US));
    for (h, id) in [(1, 3), (4, 4), (7, 5), (12, 6), (22, 7)] {
        logs.insert(
            t(3, h, 5),
            vec![doc_record(
                "kms-dev-guide.ct-disable-key-rotation.1.json",
                id,
                t(3, h, 2),
                US,
            )],
        );
    }
    logs.insert(t(5, 10, 5), noise(200, t(5, 10, 5), US));
    logs.insert(t(5, 11, 5), noise(300, t(5, 11, 5), US));
    RegionPlan {
        region: US.into(),
        key: key(0),
        first_digest_end: Utc.with_ymd_and_hms(2025, 2, 28, 0, 0, 0).unwrap(),
        last_digest_end: t(7, 0, 0),
        logs,
        stops: if stop {
            vec![(t(4, 0, 0), t(5, 6, 0))]
        } else {
            Vec::new()
        },
    }
}

/// eu-west-1: a quiet region, signed with its own key (AWS has one per region).
fn eu_plan() -> RegionPlan {
    RegionPlan {
        region: EU.into(),
        key: key(1),
        first_digest_end: Utc.with_ymd_and_hms(2025, 2, 28, 0, 0, 0).unwrap(),
        last_digest_end: t(7, 0, 0),
        logs: BTreeMap::new(),
        stops: Vec::new(),
    }
}

/// What the tampering did, to name in the assertions.
struct Tampered {
    altered: String,
    deleted_log: String,
    deleted_digest: String,
    orphaned_log: String,
    added_log: String,
    restart: String,
    forged: String,
    under_forged: String,
}

/// Every scenario of the issue in one archive.
fn tampered_archive() -> (Archive, Tampered) {
    let mut a = Archive::build(BUCKET, ACCOUNT, TRAIL, &[us_plan(true), eu_plan()]);
    let logs = a.logs[US].clone();
    let digest = |a: &Archive, end| a.digest_key(US, end);
    let altered = logs[&t(3, 1, 5)].clone();
    let mut changed = doc_record(
        "kms-dev-guide.ct-disable-key-rotation.1.json",
        3,
        t(3, 1, 2),
        US,
    );
    changed["sourceIPAddress"] = json!("198.51.100.66");
    a.alter_log(&altered, &[changed]);
    let deleted_log = logs[&t(3, 4, 5)].clone();
    a.delete(&deleted_log);
    let deleted_digest = digest(&a, t(3, 8, 0));
    a.delete(&deleted_digest);
    let orphaned_log = logs[&t(3, 7, 5)].clone();
    let added_log = a.add_unlisted_log(
        US,
        t(3, 13, 30),
        &[doc_record(
            "current-docs.ct-rotatekey.1.json",
            8,
            t(3, 13, 29),
            US,
        )],
    );
    let restart = digest(&a, t(5, 6, 0));
    let forged = digest(&a, t(5, 12, 0));
    a.forge_signature(&forged, key(2));
    let under_forged = logs[&t(5, 11, 5)].clone();
    (
        a,
        Tampered {
            altered,
            deleted_log,
            deleted_digest,
            orphaned_log,
            added_log,
            restart,
            forged,
            under_forged,
        },
    )
}

/// `--public-keys FILE`: what `aws cloudtrail list-public-keys` prints.
fn keys_file(dir: &Path, keys: &[&SigningKey]) -> PathBuf {
    let from = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 0).unwrap();
    let list: Vec<Value> = keys.iter().map(|k| k.list_entry(from, to)).collect();
    let path = dir.join("public-keys.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({ "PublicKeyList": list })).unwrap(),
    )
    .unwrap();
    path
}

fn scan(moto: &Moto, out: &Path, extra: &[&str]) -> (i32, String, String) {
    run(moto
        .kmsrot()
        .args(["trail", "scan", &format!("s3://{BUCKET}"), "--out"])
        .arg(out)
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--late-delivery-days",
            "1",
            "--validate",
        ])
        .args(extra))
}

/// `s3://bucket/key` → outcome, from coverage.json.
fn outcomes(coverage: &Value) -> BTreeMap<String, Value> {
    coverage["trail"]["integrity"]["files"]
        .as_array()
        .expect("coverage.json has trail.integrity.files")
        .iter()
        .map(|f| (f["key"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn s3(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

fn day_ledger(coverage: &Value, region: &str) -> Value {
    coverage["trail"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["region"] == region && d["account_id"] == ACCOUNT)
        .unwrap_or_else(|| panic!("no ledger for {region}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_chain_with_a_quiet_day_is_complete() {
    let moto = Moto::start();
    let archive = Archive::build(BUCKET, ACCOUNT, TRAIL, &[us_plan(false), eu_plan()]);
    archive.upload(&moto.s3(US).await).await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys_file(tmp.path(), &[key(0), key(1)]);
    let out = tmp.path().join("scan");
    let (code, stdout, stderr) = scan(&moto, &out, &["--public-keys", keys.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("integrity: log files: 10 valid"),
        "counts on stderr: {stderr}"
    );
    let coverage = read_json(&out.join("coverage.json"));
    assert_eq!(coverage["complete"], true);
    let integrity = &coverage["trail"]["integrity"];
    // The digest folders 02-28 .. 03-06 (a day before --since to a day
    // after the late deliveries) in two regions, hourly.
    assert_eq!(integrity["digest_files"]["valid"], 2 * 7 * 24);
    assert_eq!(integrity["signed_digests"], 2 * 7 * 24);
    assert!(integrity["public_keys"][0]
        .as_str()
        .unwrap()
        .starts_with("--public-keys"));
    // The quiet day is covered, not missing; so is the quiet region.
    let us = day_ledger(&coverage, US);
    assert_eq!(us["days_quiet"], json!(["2025-03-02", "2025-03-04"]));
    assert_eq!(us["days_missing"], json!([]));
    let eu = day_ledger(&coverage, EU);
    assert_eq!(eu["days_quiet"].as_array().unwrap().len(), 4);
    assert_eq!(eu["days_missing"], json!([]));
    // Every kept event came from a validated file.
    let events = read_json(&out.join("events.json"));
    let marks: BTreeSet<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["log_integrity"].as_str().unwrap())
        .collect();
    assert_eq!(marks, BTreeSet::from(["valid"]));
    assert!(events.as_array().unwrap().len() >= 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_altered_missing_and_unchained_file_is_named() {
    let moto = Moto::start();
    let (archive, x) = tampered_archive();
    archive.upload(&moto.s3(US).await).await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys_file(tmp.path(), &[key(0), key(1)]);
    let out = tmp.path().join("scan");
    let (code, stdout, stderr) = scan(&moto, &out, &["--public-keys", keys.to_str().unwrap()]);
    assert_eq!(code, 3, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let coverage = read_json(&out.join("coverage.json"));
    assert_eq!(coverage["complete"], false);
    let files = outcomes(&coverage);
    let outcome = |key: &str| -> (String, String) {
        let f = files
            .get(&s3(key))
            .unwrap_or_else(|| panic!("{key} is not in coverage.json"));
        (
            f["outcome"].as_str().unwrap().to_string(),
            f["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(outcome(&x.altered).0, "altered");
    assert!(outcome(&x.altered).1.contains("lists"));
    assert_eq!(outcome(&x.deleted_log).0, "missing");
    assert_eq!(outcome(&x.deleted_digest).0, "digest_missing");
    assert_eq!(outcome(&x.orphaned_log).0, "not_in_digest");
    assert!(
        outcome(&x.orphaned_log).1.contains(&x.deleted_digest),
        "{:?}",
        outcome(&x.orphaned_log)
    );
    assert_eq!(outcome(&x.added_log).0, "not_in_digest");
    let (restart, why) = outcome(&x.restart);
    assert_eq!(restart, "chain_start");
    assert!(
        why.contains("between 2025-03-03T23:00:00Z") && why.contains("and 2025-03-05T05:00:00Z"),
        "{why}"
    );
    assert_eq!(outcome(&x.forged).0, "digest_invalid");
    assert!(outcome(&x.forged).1.contains("signature does not verify"));
    assert_eq!(outcome(&x.under_forged).0, "unverified");
    // Nothing else is flagged.
    let flagged: BTreeSet<String> = files
        .iter()
        .filter(|(_, f)| !matches!(f["outcome"].as_str(), Some("valid" | "backfill")))
        .map(|(k, _)| k.clone())
        .collect();
    let expected: BTreeSet<String> = [
        &x.altered,
        &x.deleted_log,
        &x.deleted_digest,
        &x.orphaned_log,
        &x.added_log,
        &x.restart,
        &x.forged,
        &x.under_forged,
    ]
    .iter()
    .map(|k| s3(k))
    .collect();
    assert_eq!(flagged, expected);

    // stderr has the count of each outcome.
    for want in [
        "1 altered",
        "1 missing",
        "2 not_in_digest",
        "1 unverified",
        "1 chain_start",
        "1 digest_missing",
        "1 digest_invalid",
    ] {
        assert!(stderr.contains(want), "stderr lacks {want}: {stderr}");
    }
    // The quiet day is not a gap; the day logging was off is.
    let us = day_ledger(&coverage, US);
    assert_eq!(us["days_quiet"], json!(["2025-03-02"]));
    assert_eq!(us["days_missing"], json!(["2025-03-04"]));
    assert!(stderr.contains("2025-03-04"), "{stderr}");

    // Events keep their file's integrity.
    let events = read_json(&out.join("events.json"));
    let by_source = |key: &str| -> Vec<String> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"] == s3(key))
            .map(|e| e["log_integrity"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(by_source(&x.altered), vec!["altered"]);
    assert_eq!(by_source(&x.added_log), vec!["unverifiable"]);
    assert_eq!(by_source(&x.orphaned_log), vec!["unverifiable"]);
    let enable = archive.logs[US][&t(1, 2, 5)].clone();
    assert_eq!(by_source(&enable), vec!["valid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_keys_come_from_list_public_keys_per_region_and_page() {
    let moto = Moto::start();
    let archive = Archive::build(BUCKET, ACCOUNT, TRAIL, &[us_plan(false), eu_plan()]);
    archive.upload(&moto.s3(US).await).await;
    let valid = (
        t(1, 0, 0) - Duration::days(60),
        t(1, 0, 0) + Duration::days(60),
    );
    let old = (
        t(1, 0, 0) - Duration::days(400),
        t(1, 0, 0) - Duration::days(300),
    );
    let fixture = CloudTrailFixture::start(
        Vec::new(),
        FixtureOptions {
            account: ACCOUNT.into(),
            // One key a page: the answer takes several pages.
            page_size: 1,
            public_keys: vec![
                (US.into(), key(2).list_entry(valid.0, valid.1)),
                (US.into(), key(0).list_entry(valid.0, valid.1)),
                // Outside the asked time: AWS does not return it.
                (US.into(), key(1).list_entry(old.0, old.1)),
                (EU.into(), key(1).list_entry(valid.0, valid.1)),
            ],
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("scan");
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL_S3", &moto.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &fixture.url)
        .args(["trail", "scan", &format!("s3://{BUCKET}"), "--out"])
        .arg(&out)
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--late-delivery-days",
            "1",
            "--validate",
        ]);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let requests = fixture.public_key_requests();
    let regions: BTreeSet<&str> = requests.iter().map(|r| r.region.as_str()).collect();
    assert_eq!(regions, BTreeSet::from([EU, US]));
    // us-east-1 pages: two keys, one a page.
    let us: Vec<_> = requests.iter().filter(|r| r.region == US).collect();
    assert_eq!(us.len(), 2, "{us:?}");
    assert_eq!(us[1].next_token.as_deref(), Some("fixture-keys-1"));
    // Asked for the listed digest days: 02-28 (a day before --since) to 03-06.
    let from = us[0].start_time.unwrap();
    let to = us[0].end_time.unwrap();
    assert!(
        from <= Utc
            .with_ymd_and_hms(2025, 2, 28, 0, 0, 0)
            .unwrap()
            .timestamp() as f64
    );
    assert!(to >= t(7, 0, 0).timestamp() as f64, "{to}");
    let coverage = read_json(&out.join("coverage.json"));
    assert_eq!(
        coverage["trail"]["integrity"]["digest_files"]["valid"],
        2 * 7 * 24
    );
    assert!(coverage["trail"]["integrity"]["public_keys"][0]
        .as_str()
        .unwrap()
        .contains("ListPublicKeys in eu-west-1, us-east-1"));

    // A region where ListPublicKeys is denied: its digests are unverified,
    // never valid, and the reason says what to do.
    let denied = CloudTrailFixture::start(
        Vec::new(),
        FixtureOptions {
            account: ACCOUNT.into(),
            public_keys: vec![(US.into(), key(0).list_entry(valid.0, valid.1))],
            deny_regions: vec![EU.into()],
            ..FixtureOptions::default()
        },
    );
    let out = tmp.path().join("denied");
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL_S3", &moto.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &denied.url)
        .args(["trail", "scan", &format!("s3://{BUCKET}"), "--out"])
        .arg(&out)
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--late-delivery-days",
            "1",
            "--validate",
        ]);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    let coverage = read_json(&out.join("coverage.json"));
    let eu_digest = outcomes(&coverage)
        .into_iter()
        .find(|(k, _)| k.contains("CloudTrail-Digest/eu-west-1/"))
        .unwrap()
        .1;
    assert_eq!(eu_digest["outcome"], "unverified");
    let reason = eu_digest["reason"].as_str().unwrap();
    assert!(
        reason.contains("ListPublicKeys in eu-west-1 failed: AccessDeniedException")
            && reason.contains("--public-keys"),
        "{reason}"
    );
    // Unverified digests prove no quiet day: eu-west-1's days are missing.
    assert_eq!(
        day_ledger(&coverage, EU)["days_missing"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        coverage["trail"]["integrity"]["digest_files"]["valid"],
        7 * 24
    );
}

#[test]
fn a_broken_public_keys_file_is_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys.json");
    std::fs::write(
        &path,
        r#"{"PublicKeyList":[{"Fingerprint":"ab","Value":"not base64!"}]}"#,
    )
    .unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "s3://some-bucket", "--out"])
        .arg(tmp.path().join("o"))
        .args(["--validate", "--public-keys"])
        .arg(&path));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("base64"),
        "{stderr}"
    );
    // --validate with no S3 source is a usage error, not a quiet no-op.
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan"])
        .arg(&logs)
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .arg("--validate"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no source is s3://"), "{stderr}");
}

/// The AWS CLI's validate-logs status lines: (kind, s3 URL) → status.
fn cli_statuses(text: &str) -> (BTreeMap<(String, String), String>, Vec<String>) {
    let mut statuses = BTreeMap::new();
    let mut gaps = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        if parts.len() == 3 {
            let kind = parts[0].trim_start_matches("(backfill) ").to_string();
            statuses.insert((kind, parts[1].to_string()), parts[2].to_string());
        } else if line.starts_with("No log files were delivered by CloudTrail between") {
            gaps.push(line.to_string());
        }
    }
    (statuses, gaps)
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_agree_with_aws_cloudtrail_validate_logs() {
    let aws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/aws");
    assert!(
        aws.exists(),
        "{} is missing: scripts/test installs the AWS CLI (scripts/lib/moto.sh ensure_awscli)",
        aws.display()
    );
    let moto = Moto::start();
    let (archive, x) = tampered_archive();
    archive.upload(&moto.s3(US).await).await;
    let valid = (
        t(1, 0, 0) - Duration::days(60),
        t(1, 0, 0) + Duration::days(60),
    );
    let fixture = CloudTrailFixture::start(
        Vec::new(),
        FixtureOptions {
            account: ACCOUNT.into(),
            // The CLI asks ListPublicKeys once, without paging.
            page_size: 50,
            public_keys: vec![(US.into(), key(0).list_entry(valid.0, valid.1))],
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("scan");
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL_S3", &moto.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &fixture.url)
        .args([
            "--region",
            US,
            "trail",
            "scan",
            &format!("s3://{BUCKET}"),
            "--out",
        ])
        .arg(&out)
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--late-delivery-days",
            "1",
            "--validate",
        ]);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    let ours = outcomes(&read_json(&out.join("coverage.json")));

    // The same archive through the AWS CLI: S3 at moto, CloudTrail at the
    // fixture. With --s3-bucket given, it asks no DescribeTrails.
    let output = Command::new(&aws)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_S3", &moto.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &fixture.url)
        .args([
            "cloudtrail",
            "validate-logs",
            "--region",
            US,
            "--trail-arn",
            &format!("arn:aws:cloudtrail:{US}:{ACCOUNT}:trail/{TRAIL}"),
            "--s3-bucket",
            BUCKET,
            "--start-time",
            "2025-03-01T00:00:00Z",
            "--end-time",
            "2025-03-05T23:00:00Z",
            "--verbose",
        ])
        .output()
        .expect("running aws cloudtrail validate-logs");
    let cli_out = String::from_utf8_lossy(&output.stdout).to_string();
    let cli_err = String::from_utf8_lossy(&output.stderr).to_string();
    // Exit 1: it found invalid files.
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{cli_out}\nstderr:\n{cli_err}"
    );
    let (statuses, gaps) = cli_statuses(&format!("{cli_out}\n{cli_err}"));
    assert!(
        statuses.len() > 80,
        "the CLI validated little:\n{cli_out}\n{cli_err}"
    );

    // Every file the CLI judged, kmsrot judged the same way.
    for ((kind, url), status) in &statuses {
        let ours = ours
            .get(url)
            .unwrap_or_else(|| panic!("kmsrot did not judge {url} ({kind} {status})"));
        let ours = ours["outcome"].as_str().unwrap();
        let agrees = match (kind.as_str(), status.as_str()) {
            ("Digest file", "valid") => matches!(ours, "valid" | "backfill" | "chain_start"),
            ("Digest file", s) if s.contains("not found") => ours == "digest_missing",
            ("Digest file", s) if s.contains("signature verification failed") => {
                ours == "digest_invalid"
            }
            ("Log file", "valid") => ours == "valid",
            ("Log file", s) if s.contains("hash value doesn't match") => ours == "altered",
            ("Log file", s) if s.contains("not found") => ours == "missing",
            _ => false,
        };
        assert!(agrees, "{kind} {url}: the CLI says {status}, kmsrot {ours}");
    }
    // And kmsrot's findings of the kinds the CLI looks for are the CLI's.
    for key in [&x.altered, &x.deleted_log, &x.deleted_digest, &x.forged] {
        assert!(
            statuses.keys().any(|(_, u)| *u == s3(key)),
            "the CLI did not report {key}"
        );
    }
    // The restart: the CLI reports the same gap (its wording: no log files
    // delivered between the last digest before and the first after).
    assert!(
        gaps.iter()
            .any(|g| g.contains("between 2025-03-03T23:00:00Z and 2025-03-05T05:00:00Z")),
        "{gaps:?}"
    );
    assert_eq!(ours[&s3(&x.restart)]["outcome"], "chain_start");
    // What the CLI does not check (a log file that no digest lists) is
    // kmsrot's alone.
    assert_eq!(ours[&s3(&x.added_log)]["outcome"], "not_in_digest");
    assert!(!statuses.keys().any(|(_, u)| *u == s3(&x.added_log)));
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_assess_report_name_the_broken_hours_and_spare_the_quiet_day() {
    let moto = Moto::start();
    let (archive, x) = tampered_archive();
    archive.upload(&moto.s3(US).await).await;
    // One eligible key with rotation on, so the region holds rotatable keys.
    let kms = moto.kms(US).await;
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    kms.enable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys_file(tmp.path(), &[key(0), key(1)]);
    let bundle = tmp.path().join("bundle");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["--region", US, "collect", "--out"])
        .arg(&bundle)
        .args(["--trail", &format!("s3://{BUCKET}")])
        .args([
            "--since",
            SINCE,
            "--until",
            "2025-03-04T23:59:59Z",
            "--late-delivery-days",
            "1",
        ])
        .args(["--validate", "--public-keys"])
        .arg(&keys));
    assert_eq!(code, 3, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("integrity: log files:"), "{stderr}");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["assess"])
        .arg(&bundle)
        .args(["--as-of", "2025-03-05T00:00:00Z"]));
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let findings = read_json(&bundle.join("findings.json"));
    let of = |rule: &str| -> Vec<Value> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == rule)
            .cloned()
            .collect()
    };
    let integrity = of("trail_integrity");
    assert!(integrity.iter().all(|f| f["severity"] == "high"));
    let details: Vec<&str> = integrity
        .iter()
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    for want in [
        "changed after delivery",
        "not in the archive",
        "listed in no digest",
        "restarted",
        "missing from the chain",
        "do not verify",
    ] {
        assert!(
            details.iter().any(|d| d.contains(want)),
            "no trail_integrity finding says {want:?}: {details:#?}"
        );
    }
    let altered = integrity
        .iter()
        .find(|f| {
            f["detail"]
                .as_str()
                .unwrap()
                .contains("changed after delivery")
        })
        .unwrap();
    assert!(altered["detail"]
        .as_str()
        .unwrap()
        .contains("2025-03-03T01:05Z"));
    assert!(altered["evidence"].as_str().unwrap().contains(&x.altered));
    // The lost day is a gap; the quiet one is not.
    let gaps = of("evidence_gap");
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    let gap = gaps[0]["detail"].as_str().unwrap();
    assert!(
        gap.contains("2025-03-04") && !gap.contains("2025-03-02"),
        "{gap}"
    );

    let report = tmp.path().join("report");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["report"])
        .arg(&bundle)
        .arg("--out")
        .arg(&report));
    assert!(
        code == 0 || code == 3,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    let signed = read_json(&bundle.join("coverage.json"))["trail"]["integrity"]["signed_digests"]
        .as_u64()
        .unwrap();
    assert!(signed > 100);
    assert!(
        md.contains(&format!(
            "Log files validated against {signed} signed digests"
        )),
        "{md}"
    );
    assert!(md.contains("## Log file integrity"));
    assert!(md.contains("| log | altered | 1 |"), "{md}");
    assert!(md.contains(&x.deleted_digest));
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        html.contains("class=\"m-broken\""),
        "broken hours on the timeline"
    );
    assert!(html.contains("id=\"signed-digests\""));
}
