//! `kmsrot trail scan s3://...` against moto's S3, with an archive laid out
//! as CloudTrail lays it out: an organization trail (`o-...`), two accounts,
//! two regions, several delivery days, a day without logs, digest files, a
//! corrupt object and an event delivered twice.
//!
//! A counting proxy sits between kmsrot and moto, so the test sees every
//! request kmsrot sent and proves that only the asked days, accounts and
//! regions were listed and fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use kmsrot_testkit::cloudtrail::gzip;
use serde_json::{json, Value};

use crate::assert_seen;
use crate::support::counting_proxy::{CountingProxy, Failure, Seen};
use crate::support::snapshot::Seen as SnapSeen;
use crate::support::{fixtures, kmsrot, read_json, run, Moto};

const BUCKET: &str = "org-trail-archive";
const PREFIX: &str = "trails";
const ORG: &str = "o-exampleorg1";
const ACCOUNT_A: &str = "111122223333";
const ACCOUNT_B: &str = "444455556666";

/// One delivery file of the archive and what it holds.
struct LogFile {
    account: &'static str,
    region: &'static str,
    /// Delivery time (the file name's).
    delivered: DateTime<Utc>,
    records: Vec<Value>,
    corrupt: bool,
}

impl LogFile {
    fn key(&self) -> String {
        let d = self.delivered;
        let (acct, region) = (self.account, self.region);
        format!(
            "{PREFIX}/AWSLogs/{ORG}/{acct}/CloudTrail/{region}/{}/{acct}_CloudTrail_{region}_{}_{}.json.gz",
            d.format("%Y/%m/%d"),
            d.format("%Y%m%dT%H%MZ"),
            unique(&self.records, self.corrupt),
        )
    }

    fn day(&self) -> NaiveDate {
        self.delivered.date_naive()
    }
}

/// CloudTrail's 16-character unique suffix, derived from the content so
/// names are stable.
fn unique(records: &[Value], corrupt: bool) -> String {
    let ids: String = records
        .iter()
        .filter_map(|r| r["eventID"].as_str())
        .collect();
    let h = ids.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{:016x}", h ^ u64::from(corrupt))
}

fn fixture(name: &str) -> Value {
    read_json(&fixtures().join("s3-archive").join(name))
}

fn noise(name: &str) -> Vec<Value> {
    fixture(name)["Records"]
        .as_array()
        .expect("invictus file has Records")
        .clone()
}

/// A doc record placed in the archive: its time, id, region and account
/// rewritten to fit where it is delivered.
fn place(name: &str, id: u32, at: DateTime<Utc>, account: &str, region: &str) -> Value {
    let mut r = fixture(name);
    retarget(&mut r, id, at, account, region);
    r
}

fn retarget(r: &mut Value, id: u32, at: DateTime<Utc>, account: &str, region: &str) {
    r["eventID"] = json!(event_id(id));
    r["eventTime"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    r["awsRegion"] = json!(region);
    r["recipientAccountId"] = json!(account);
}

fn event_id(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-00000000{n:04x}")
}

fn t(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, h, m, 0).unwrap()
}

/// Noise records (data plane and other services) moved to `at`.
fn noise_at(
    name: &str,
    first_id: u32,
    at: DateTime<Utc>,
    account: &str,
    region: &str,
) -> Vec<Value> {
    let mut out = noise(name);
    for (i, r) in out.iter_mut().enumerate() {
        retarget(
            r,
            first_id + i as u32,
            at - Duration::minutes(i as i64),
            account,
            region,
        );
    }
    out
}

const NOISE_1: &str = "218007301253_CloudTrail_us-east-1_20230710T1205Z_1dM7GQM67kudSyGD.json";
const NOISE_2: &str = "218007301253_CloudTrail_us-east-1_20230710T1205Z_nx9Yx1FyJdBaTqKj.json";
const ROTATE_NEW: &str = "current-docs.ct-rotatekey.1.json";
const ROTATE_EXTERNAL: &str = "current-docs.ct-rotatekey.2.json";
const ROTATE_OLD: &str = "kms-dev-guide.ct-rotatekey.1.json";
const ON_DEMAND: &str = "current-docs.ct-rotatekeyondemand.1.json";
const ENABLE: &str = "current-docs.ct-enablekeyrotation.1.json";
const DISABLE: &str = "kms-dev-guide.ct-disable-key-rotation.1.json";
const LIST: &str = "current-docs.ct-listkeyrotations.1.json";
const CREATE: &str = "kms-dev-guide.ct-createkey.1.json";
const DECRYPT_FAILED: &str = "kms-dev-guide.ct-decrypt.5.json";

/// The window asked: 2025-03-02 .. 2025-03-04. Delivery days 03-01 (a day
/// early) and 03-05, 03-06 (--late-delivery-days 2) are listed too; 02-27
/// never is.
const SINCE: &str = "2025-03-02T00:00:00Z";
const UNTIL: &str = "2025-03-04T23:59:59Z";

/// The archive, and the ids of the events a scan of the window keeps.
fn archive() -> (Vec<LogFile>, BTreeMap<u32, &'static str>) {
    let a = ACCOUNT_A;
    let b = ACCOUNT_B;
    let (use1, euw1) = ("us-east-1", "eu-west-1");
    let mut kept = BTreeMap::new();
    let mut files = Vec::new();
    let mut file = |account, region, delivered, records, corrupt| {
        files.push(LogFile {
            account,
            region,
            delivered,
            records,
            corrupt,
        })
    };

    // Account A, us-east-1. Day 03-03 has no file at all.
    file(
        a,
        use1,
        t(27, 0, 0) - Duration::days(28),
        vec![place(
            ROTATE_OLD,
            1,
            t(1, 0, 0) - Duration::days(2),
            a,
            use1,
        )],
        false,
    );
    let mut d1 = noise_at(NOISE_1, 100, t(1, 23, 40), a, use1);
    // Delivered on the widened day, but its event falls before the window.
    d1.push(place(ENABLE, 2, t(1, 23, 50), a, use1));
    file(a, use1, t(1, 23, 55), d1, false);
    let mut d2 = noise_at(NOISE_2, 200, t(2, 12, 0), a, use1);
    d2.push(place(ROTATE_NEW, 3, t(2, 12, 1), a, use1));
    d2.push(place(CREATE, 4, t(2, 12, 2), a, use1));
    kept.insert(3, "RotateKey");
    kept.insert(4, "CreateKey");
    file(a, use1, t(2, 12, 5), d2, false);
    let d4 = vec![
        place(DISABLE, 5, t(4, 9, 0), a, use1),
        place(DECRYPT_FAILED, 6, t(4, 9, 1), a, use1),
        // The RotateKey of 03-02 delivered a second time.
        place(ROTATE_NEW, 3, t(2, 12, 1), a, use1),
    ];
    kept.insert(5, "DisableKeyRotation");
    kept.insert(6, "Decrypt");
    file(a, use1, t(4, 9, 5), d4, false);
    file(
        a,
        use1,
        t(4, 10, 0),
        vec![place(LIST, 7, t(4, 9, 55), a, use1)],
        true,
    );
    // Delivered after midnight, but its event is inside the window.
    file(
        a,
        use1,
        t(5, 0, 5),
        vec![place(ON_DEMAND, 8, t(4, 23, 58), a, use1)],
        false,
    );
    kept.insert(8, "RotateKeyOnDemand");
    file(
        a,
        use1,
        t(6, 0, 5),
        vec![place(LIST, 9, t(6, 0, 1), a, use1)],
        false,
    );

    // Account A, eu-west-1: every day has a file.
    for day in 1..=5 {
        let mut recs = noise_at(NOISE_2, 300 + day * 20, t(day, 8, 0), a, euw1);
        if day == 3 {
            recs.push(place(ROTATE_EXTERNAL, 10, t(3, 8, 1), a, euw1));
            kept.insert(10, "RotateKey");
        }
        file(a, euw1, t(day, 8, 5), recs, false);
    }

    // Account B, us-east-1 only: no eu-west-1 folder at all.
    for day in 2..=4 {
        let mut recs = noise_at(NOISE_1, 500 + day * 20, t(day, 6, 0), b, use1);
        if day == 3 {
            recs.push(place(ROTATE_OLD, 11, t(3, 6, 1), b, use1));
            kept.insert(11, "RotateKey");
        }
        file(b, use1, t(day, 6, 5), recs, false);
    }
    (files, kept)
}

/// Digest files, as CloudTrail writes them next to the logs.
fn digest_keys() -> Vec<String> {
    [(ACCOUNT_A, "us-east-1", 2), (ACCOUNT_A, "eu-west-1", 3), (ACCOUNT_B, "us-east-1", 4)]
        .iter()
        .map(|(acct, region, day)| {
            format!(
                "{PREFIX}/AWSLogs/{ORG}/{acct}/CloudTrail-Digest/{region}/2025/03/0{day}/{acct}_CloudTrail-Digest_{region}_org-trail_us-east-1_202503{day:02}T010000Z.json.gz"
            )
        })
        .collect()
}

/// Each file's key and stored bytes.
fn bodies(files: &[LogFile]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let body = serde_json::to_vec(&json!({ "Records": f.records })).unwrap();
            let mut gz = gzip(&body);
            if f.corrupt {
                // Cut mid-stream, as an interrupted copy leaves it.
                gz.truncate(gz.len() / 2);
            }
            (f.key(), gz)
        })
        .collect();
    for key in digest_keys() {
        out.push((key, gzip(br#"{"awsAccountId":"111122223333","digestStartTime":"2025-03-02T00:00:00Z","logFiles":[]}"#)));
    }
    out
}

async fn upload(moto: &Moto, files: &[LogFile]) {
    // The bucket lives in another region than kmsrot's default, as org
    // trail buckets often do.
    let s3 = moto.s3("eu-west-1").await;
    s3.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    for (key, body) in bodies(files) {
        s3.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }
}

/// Keys of the objects kmsrot fetched (GetObject), from the proxy's log.
fn fetched(requests: &[Seen]) -> BTreeSet<String> {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.query("x-id").as_deref() == Some("GetObject"))
        .map(|r| {
            r.path()
                .strip_prefix(&format!("/{BUCKET}/"))
                .unwrap_or_else(|| panic!("GetObject outside the bucket: {}", r.target))
                .to_string()
        })
        .collect()
}

/// Prefixes whose objects kmsrot listed (ListObjectsV2 without a delimiter).
fn object_listings(requests: &[Seen]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.query("list-type").as_deref() == Some("2") && !r.has_query("delimiter"))
        .map(|r| r.query("prefix").unwrap_or_default())
        .collect()
}

fn scan(proxy: &CountingProxy, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .args(extra)
        .args(["trail", "scan", &format!("s3://{BUCKET}/{PREFIX}")])
        .args(["--since", SINCE, "--until", UNTIL, "--out"])
        .arg(out);
    run(&mut cmd)
}

fn days_of(coverage: &Value, account: &str, region: &str) -> (Vec<String>, Vec<String>) {
    let entry = coverage["days"]
        .as_array()
        .expect("coverage days")
        .iter()
        .find(|d| d["account_id"] == account && d["region"] == region)
        .unwrap_or_else(|| panic!("no day coverage for {account} {region}: {coverage:#}"));
    let list = |k: &str| {
        entry[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect()
    };
    (list("days_with_logs"), list("days_missing"))
}

/// The trail part of coverage.json.
fn trail_coverage(dir: &Path) -> Value {
    let c = read_json(&dir.join("coverage.json"));
    if c.get("trail").is_some() {
        c["trail"].clone()
    } else {
        c
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_archive_reads_only_the_asked_days_accounts_and_regions() {
    let moto = Moto::start();
    let (files, kept) = archive();
    upload(&moto, &files).await;
    let proxy = CountingProxy::start(moto.port);
    let tmp = tempfile::tempdir().unwrap();

    // 1. Everything under the prefix, discovered from the layout.
    let out = tmp.path().join("all");
    let (code, stdout, stderr) = scan(&proxy, &out, &[]);
    assert_seen!(
        "s3_archive_reads_only_the_asked_days_accounts_and_regions",
        &SnapSeen::from((code, stdout.clone(), stderr.clone()))
    );
    assert_eq!(
        code, 3,
        "a corrupt object and a day without logs make the scan partial\n{stderr}"
    );

    let widened =
        NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()..=NaiveDate::from_ymd_opt(2025, 3, 6).unwrap();
    let expected: BTreeSet<String> = files
        .iter()
        .filter(|f| widened.contains(&f.day()))
        .map(LogFile::key)
        .collect();
    let requests = proxy.requests();
    assert_eq!(
        fetched(&requests),
        expected,
        "GETs are exactly the objects of the widened window"
    );
    let gets = requests
        .iter()
        .filter(|r| r.query("x-id").as_deref() == Some("GetObject"))
        .count();
    assert_eq!(gets, expected.len(), "each object is fetched once");
    assert!(
        requests
            .iter()
            .all(|r| !r.target.contains("CloudTrail-Digest")),
        "digest folders are never listed or fetched"
    );
    for prefix in object_listings(&requests) {
        let day = prefix
            .trim_end_matches('/')
            .rsplitn(4, '/')
            .take(3)
            .collect::<Vec<_>>();
        let date =
            NaiveDate::parse_from_str(&format!("{}-{}-{}", day[2], day[1], day[0]), "%Y-%m-%d")
                .unwrap_or_else(|_| panic!("objects listed outside a day folder: {prefix}"));
        assert!(
            widened.contains(&date),
            "listed a day outside the window: {prefix}"
        );
    }

    let events = read_json(&out.join("events.json"));
    let rows = events.as_array().expect("events.json is an array");
    let got: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_string(),
                r["event_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = kept
        .iter()
        .map(|(id, name)| (event_id(*id), name.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        rows.len(),
        want.len(),
        "the twice-delivered RotateKey is one row"
    );
    for r in rows {
        let source = r["source"].as_str().unwrap();
        assert!(
            source.starts_with(&format!("s3://{BUCKET}/{PREFIX}/AWSLogs/{ORG}/")),
            "{source}"
        );
    }

    let cov = trail_coverage(&out);
    assert_eq!(cov["complete"], false);
    assert_eq!(cov["duplicates"], 1);
    let src = &cov["sources"][0];
    assert_eq!(src["kind"], "s3");
    assert_eq!(src["source"], format!("s3://{BUCKET}/{PREFIX}"));
    assert_eq!(src["files_read"], expected.len() as u64 - 1);
    let corrupt = src["files_corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{corrupt:?}");
    let bad = files.iter().find(|f| f.corrupt).unwrap();
    assert_eq!(corrupt[0]["path"], format!("s3://{BUCKET}/{}", bad.key()));
    assert!(!corrupt[0]["reason"].as_str().unwrap().is_empty());
    let records: usize = files
        .iter()
        .filter(|f| widened.contains(&f.day()) && !f.corrupt)
        .map(|f| f.records.len())
        .sum();
    assert!(src["records_read"].as_u64().unwrap() >= records as u64);
    assert!(src["errors"].as_array().unwrap().is_empty(), "{src:#}");

    let (with, missing) = days_of(&cov, ACCOUNT_A, "us-east-1");
    assert_eq!(with, ["2025-03-02", "2025-03-04"]);
    assert_eq!(missing, ["2025-03-03"]);
    assert_eq!(
        days_of(&cov, ACCOUNT_A, "eu-west-1").1,
        Vec::<String>::new()
    );
    assert_eq!(
        days_of(&cov, ACCOUNT_B, "us-east-1").1,
        Vec::<String>::new()
    );
    assert!(stderr.contains("2025-03-03"), "{stderr}");

    // 2. One account, two regions asked: account B has no eu-west-1 logs,
    //    so every day there is missing; account A is not touched.
    proxy.clear();
    let out = tmp.path().join("b");
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["--region", "us-east-1", "--region", "eu-west-1"])
        .args(["trail", "scan", &format!("s3://{BUCKET}/{PREFIX}")])
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--account",
            ACCOUNT_B,
            "--out",
        ])
        .arg(&out);
    let (code, _stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    let expected: BTreeSet<String> = files
        .iter()
        .filter(|f| f.account == ACCOUNT_B && widened.contains(&f.day()))
        .map(LogFile::key)
        .collect();
    let requests = proxy.requests();
    assert_eq!(fetched(&requests), expected);
    assert!(
        requests.iter().all(|r| !r.target.contains(ACCOUNT_A)),
        "account A is never listed or fetched"
    );
    let cov = trail_coverage(&out);
    assert_eq!(
        days_of(&cov, ACCOUNT_B, "us-east-1").1,
        Vec::<String>::new()
    );
    let (with, missing) = days_of(&cov, ACCOUNT_B, "eu-west-1");
    assert!(with.is_empty());
    assert_eq!(missing, ["2025-03-02", "2025-03-03", "2025-03-04"]);
    assert!(
        cov["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["account_id"] == ACCOUNT_B),
        "{cov:#}"
    );
    let events = read_json(&out.join("events.json"));
    let ids: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [event_id(11)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_prefix_and_a_failed_get_are_recorded_and_the_rest_is_read() {
    let moto = Moto::start();
    let (files, kept) = archive();
    upload(&moto, &files).await;
    let proxy = CountingProxy::start(moto.port);
    // An SCP or bucket policy that denies one account's folder, and an
    // object whose KMS key the reader may not use.
    proxy.fail(Failure {
        target_contains: format!("{ACCOUNT_B}%2FCloudTrail%2F"),
        status: 403,
        code: "AccessDenied".into(),
    });
    let denied = files
        .iter()
        .find(|f| f.records.iter().any(|r| r["eventID"] == event_id(8)))
        .unwrap()
        .key();
    proxy.fail(Failure {
        target_contains: denied.rsplit('/').next().unwrap().to_string(),
        status: 403,
        code: "AccessDenied".into(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("faults");
    let (code, _stdout, stderr) = scan(&proxy, &out, &[]);
    assert_eq!(code, 3, "{stderr}");

    let cov = trail_coverage(&out);
    let src = &cov["sources"][0];
    let errors: Vec<&str> = src["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [format!(
            "ListObjectsV2 s3://{BUCKET}/{PREFIX}/AWSLogs/{ORG}/{ACCOUNT_B}/CloudTrail/: AccessDenied: injected by the test proxy"
        )]
    );
    let corrupt: Vec<(String, String)> = src["files_corrupt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        corrupt.contains(&(
            format!("s3://{BUCKET}/{denied}"),
            "GetObject failed: AccessDenied: injected by the test proxy".to_string()
        )),
        "{corrupt:?}"
    );

    // Everything else of account A is still read.
    let events = read_json(&out.join("events.json"));
    let got: BTreeSet<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = kept
        .keys()
        .filter(|id| ![8, 11].contains(*id))
        .map(|id| event_id(*id))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_malformed_url_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(kmsrot()
        .args(["trail", "scan", "s3://Not_A_Bucket!/x", "--out"])
        .arg(tmp.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: s3://Not_A_Bucket!/x: not a valid bucket name"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn a_bucket_that_does_not_exist_is_a_usage_error() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["trail", "scan", "s3://no-such-trail-bucket/logs", "--out"])
        .arg(tmp.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "error: s3://no-such-trail-bucket/logs: the bucket no-such-trail-bucket does not exist"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

/// The events and day ledger of a scan's output, with `source` dropped.
fn evidence(out: &Path) -> (BTreeMap<String, Value>, Value) {
    let rows = read_json(&out.join("events.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("source");
            (r["event_id"].as_str().unwrap().to_string(), r)
        })
        .collect();
    (rows, trail_coverage(out)["days"].clone())
}

/// 18.9: an event an hour before --until, delivered 29 hours later, is in
/// a folder two days past the window: read from S3 as from a local copy of
/// the same files, and `limits` says how late a delivery may be.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_delivery_is_read_from_s3_as_from_local_files() {
    let moto = Moto::start();
    let (mut files, mut kept) = archive();
    let late_event = t(4, 23, 0);
    files.push(LogFile {
        account: ACCOUNT_A,
        region: "eu-west-1",
        delivered: late_event + Duration::hours(29),
        records: vec![place(ROTATE_NEW, 12, late_event, ACCOUNT_A, "eu-west-1")],
        corrupt: false,
    });
    kept.insert(12, "RotateKey");
    upload(&moto, &files).await;
    let local = tempfile::tempdir().unwrap();
    for (key, body) in bodies(&files) {
        let p = local.path().join(&key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let proxy = CountingProxy::start(moto.port);
    let tmp = tempfile::tempdir().unwrap();

    let s3_out = tmp.path().join("s3");
    let (code, _, stderr) = scan(&proxy, &s3_out, &[]);
    assert_eq!(code, 3, "{stderr}");
    let local_out = tmp.path().join("local");
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan"])
        .arg(local.path().join(PREFIX))
        .args(["--since", SINCE, "--until", UNTIL, "--out"])
        .arg(&local_out));
    assert_eq!(code, 3, "{stderr}");

    let (s3_rows, s3_days) = evidence(&s3_out);
    let (local_rows, local_days) = evidence(&local_out);
    assert!(
        s3_rows.contains_key(&event_id(12)),
        "the late event is read"
    );
    assert_eq!(s3_rows, local_rows);
    assert_eq!(s3_days, local_days);
    let ids: BTreeSet<String> = kept.keys().map(|id| event_id(*id)).collect();
    assert_eq!(s3_rows.keys().cloned().collect::<BTreeSet<_>>(), ids);
    let limits = trail_coverage(&s3_out)["sources"][0]["limits"].to_string();
    assert!(
        limits.contains("listed up to 2025-03-06, 2 day(s) after --until 2025-03-04"),
        "{limits}"
    );

    // With no slack for late deliveries, the S3 scan cannot see it, and
    // says so.
    let strict = tmp.path().join("strict");
    let (_, _, stderr) = run(kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["trail", "scan", &format!("s3://{BUCKET}/{PREFIX}")])
        .args([
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--late-delivery-days",
            "0",
            "--out",
        ])
        .arg(&strict));
    let (rows, _) = evidence(&strict);
    assert!(!rows.contains_key(&event_id(12)), "{stderr}");
    let limits = trail_coverage(&strict)["sources"][0]["limits"].to_string();
    assert!(limits.contains("0 day(s) after --until"), "{limits}");
}

/// 18.10: an account named with --account that has no folder at all shows
/// every day missing in every enabled region (moto has no
/// account:ListRegions, so the built-in list stands in), and the scan is
/// partial.
#[tokio::test(flavor = "multi_thread")]
async fn a_named_account_with_no_logs_shows_every_day_missing() {
    let moto = Moto::start();
    let (files, _) = archive();
    upload(&moto, &files).await;
    let proxy = CountingProxy::start(moto.port);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["trail", "scan", &format!("s3://{BUCKET}/{PREFIX}")])
        .args(["--since", SINCE, "--until", UNTIL])
        .args(["--account", ACCOUNT_A, "--account", "999988887777", "--out"])
        .arg(&out);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    let cov = trail_coverage(&out);
    let (with, missing) = days_of(&cov, "999988887777", "us-east-1");
    assert!(with.is_empty());
    assert_eq!(missing, ["2025-03-02", "2025-03-03", "2025-03-04"]);
    let regions = cov["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["account_id"] == "999988887777")
        .count();
    assert!(regions >= 17, "every enabled region: {regions}");
    // The account that has logs keeps its own regions only.
    assert_eq!(
        days_of(&cov, ACCOUNT_A, "eu-west-1").1,
        Vec::<String>::new()
    );
    assert!(
        stderr.contains("no CloudTrail log for account 999988887777"),
        "{stderr}"
    );
}
