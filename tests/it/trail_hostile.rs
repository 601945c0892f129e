//! Issue 18 (reader and normalization) and issue 17's items for the trail
//! reader (bounded memory, garbage named like a log, no IMDS for local
//! scans), through the real binary on crafted files. The records are AWS's
//! documented examples (`tests/fixtures/lookup/`, see its SOURCE.txt) with
//! the fields each test is about rewritten.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::{fixtures, kmsrot, read_json, run};

const A: &str = "111122223333";
const B: &str = "444455556666";
const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn doc(name: &str) -> Value {
    read_json(&fixtures().join("lookup").join(name))
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `AWSLogs/ACCOUNT/CloudTrail/REGION/Y/M/D/ACCOUNT_CloudTrail_REGION_STAMP_UNIQUE.json.gz`
fn delivery_path(account: &str, region: &str, stamp: &str, unique: &str) -> String {
    let (y, m, d) = (&stamp[..4], &stamp[4..6], &stamp[6..8]);
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz"
    )
}

fn put(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn deliver(dir: &Path, rel: &str, records: &[Value]) {
    let body = serde_json::to_vec(&json!({ "Records": records })).unwrap();
    put(dir, rel, &gz(&body));
}

struct Scan {
    code: i32,
    stderr: String,
    coverage: Value,
    events: Vec<Value>,
}

fn scan(dir: &Path, extra: &[&str]) -> Scan {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(kmsrot()
        .args(["trail", "scan", "--out"])
        .arg(out.path())
        .arg(dir)
        .args(extra));
    assert!(code == 0 || code == 3, "exit {code}\n{stdout}\n{stderr}");
    let coverage = read_json(&out.path().join("coverage.json"))["trail"].clone();
    let events = read_json(&out.path().join("events.json"))
        .as_array()
        .unwrap()
        .clone();
    Scan {
        code,
        stderr,
        coverage,
        events,
    }
}

fn event(events: &[Value], id: &str) -> Value {
    events
        .iter()
        .find(|e| e["event_id"] == id)
        .unwrap_or_else(|| panic!("no event {id} in {events:#?}"))
        .clone()
}

/// 18.1: a failed call that names its key by alias has no resources; the
/// alias is the key as named, never a made-up key ARN.
#[test]
fn an_alias_is_kept_as_named_and_never_written_as_a_key_arn() {
    let mut records = Vec::new();
    for (id, key) in [
        ("alias-1", "alias/app"),
        ("alias-2", "arn:aws:kms:us-west-2:111122223333:alias/app"),
        ("keyid-3", "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ] {
        let mut r = doc("current-docs.ct-enablekeyrotation.1.json");
        r["eventID"] = json!(id);
        r["errorCode"] = json!("AccessDeniedException");
        r["errorMessage"] = json!("User: arn:aws:iam::111122223333:user/Alice is not authorized to perform: kms:EnableKeyRotation");
        r["requestParameters"]["keyId"] = json!(key);
        r.as_object_mut().unwrap().remove("resources");
        r.as_object_mut().unwrap().remove("responseElements");
        records.push(r);
    }
    let dir = tempfile::tempdir().unwrap();
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20200725T2345Z", "aaaa"),
        &records,
    );
    let s = scan(dir.path(), &[]);
    assert_eq!(s.events.len(), 3);
    for e in &s.events {
        let arn = e["key_arn"].as_str().unwrap_or("");
        assert!(!arn.contains(":alias/"), "{e:#}");
    }
    for (id, key) in [
        ("alias-1", "alias/app"),
        ("alias-2", "arn:aws:kms:us-west-2:111122223333:alias/app"),
    ] {
        let e = event(&s.events, id);
        assert_eq!(e["key_arn"], Value::Null, "{e:#}");
        assert_eq!(e["key_id"], key);
        assert_eq!(e["account_id"], A);
    }
    // A key id names one key in its account and region: that is completed.
    assert_eq!(event(&s.events, "keyid-3")["key_arn"], KEY);
}

/// 18.2: a call from account B on account A's key reaches both trails with
/// two eventIDs and one sharedEventID: one row, under A, with B as caller.
#[test]
fn a_cross_account_call_is_one_row_under_the_key_owner() {
    let copy = |recipient: &str, id: &str| {
        let mut r = doc("current-docs.ct-rotatekeyondemand.1.json");
        r["eventID"] = json!(id);
        r["sharedEventID"] = json!("8f1d3c9e-6a52-4f0b-9c41-2b7d5e0a1f33");
        r["recipientAccountId"] = json!(recipient);
        r["userIdentity"]["accountId"] = json!(B);
        r["userIdentity"]["arn"] = json!(format!("arn:aws:iam::{B}:user/Bob"));
        r["requestParameters"]["keyId"] = json!(KEY);
        r
    };
    let dir = tempfile::tempdir().unwrap();
    // B's trail first in path order, so path order alone would keep B's copy.
    deliver(
        dir.path(),
        &delivery_path(B, "us-east-1", "20240220T1745Z", "bbbb"),
        &[copy(B, "copy-in-b")],
    );
    deliver(
        dir.path(),
        &delivery_path(A, "us-east-1", "20240220T1750Z", "aaaa"),
        &[copy(A, "copy-in-a")],
    );
    let s = scan(dir.path(), &[]);
    assert_eq!(s.events.len(), 1, "{:#?}", s.events);
    let e = &s.events[0];
    assert_eq!(e["event_id"], "copy-in-a");
    assert_eq!(e["account_id"], A);
    assert_eq!(e["recipient_account_id"], A);
    assert_eq!(e["caller_account_id"], B);
    assert_eq!(e["shared_event_id"], "8f1d3c9e-6a52-4f0b-9c41-2b7d5e0a1f33");
    assert_eq!(s.coverage["cross_account_copies"], 1);

    // Only the caller's trail was read: still filed under the key's owner.
    let only_b = tempfile::tempdir().unwrap();
    deliver(
        only_b.path(),
        &delivery_path(B, "us-east-1", "20240220T1745Z", "bbbb"),
        &[copy(B, "copy-in-b")],
    );
    let s = scan(only_b.path(), &[]);
    assert_eq!(s.events.len(), 1);
    assert_eq!(s.events[0]["account_id"], A);
    assert_eq!(s.events[0]["recipient_account_id"], B);
}

/// 18.3: an Insights file is not a log of the day's calls.
#[test]
fn an_insight_file_does_not_make_a_day_covered() {
    let insight = std::fs::read(fixtures().join(
        "cloudtrail/aws-docs-examples/awsdocs-aws-cloudtrail-user-guide/cloudtrail-log-file-examples.8.json",
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/14/123456789012_CloudTrail-Insight_us-east-1_20191114T0055Z_abcd.json.gz",
        &gz(&insight),
    );
    // The same file renamed, outside any layout: its records still do not count.
    put(dir.path(), "exported/insights.json", &insight);
    let s = scan(
        dir.path(),
        &[
            "--account",
            "123456789012",
            "--region",
            "us-east-1",
            "--since",
            "2019-11-14",
            "--until",
            "2019-11-14",
        ],
    );
    assert_eq!(s.code, 3, "{}", s.stderr);
    let days = &s.coverage["days"][0];
    assert_eq!(days["days_with_logs"], json!([]), "{:#}", s.coverage);
    assert_eq!(days["days_missing"], json!(["2019-11-14"]));
    let skipped = s.coverage["sources"][0]["files_skipped"]
        .as_array()
        .unwrap();
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("Insights"),
        "{skipped:?}"
    );
}

/// 18.10, local files: an account named with --account that has no log
/// shows every day missing; with no AWS call, in the regions every account
/// has enabled, and `limits` says so. Without a window, over the days the
/// scan saw.
#[test]
fn a_named_account_without_local_logs_shows_every_day_missing() {
    let dir = tempfile::tempdir().unwrap();
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250520T2050Z", "aaaa"),
        &[doc("current-docs.ct-rotatekey.1.json")],
    );
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250521T0050Z", "bbbb"),
        &[],
    );
    for window in [&["--since", "2025-05-20", "--until", "2025-05-21"][..], &[]] {
        let mut args = vec!["--account", A, "--account", B];
        args.extend(window);
        let s = scan(dir.path(), &args);
        assert_eq!(s.code, 3, "{}", s.stderr);
        let of_b: Vec<&Value> = s.coverage["days"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["account_id"] == B)
            .collect();
        assert_eq!(of_b.len(), 17, "{:#}", s.coverage["days"]);
        for d in of_b {
            assert_eq!(
                d["days_missing"],
                json!(["2025-05-20", "2025-05-21"]),
                "{d:#}"
            );
        }
        let limits = s.coverage["sources"][0]["limits"].to_string();
        assert!(
            limits.contains("regions every account has enabled"),
            "{limits}"
        );
        assert!(s
            .stderr
            .contains(&format!("no CloudTrail log for account {B}")));
    }
}

/// 18.4 and 17.7: a file named as a CloudTrail delivery holds one whole
/// `{"Records":[...]}` document, or it is corrupt (exit 3, in coverage).
#[test]
fn garbage_named_like_a_delivery_is_corrupt() {
    let good = doc("current-docs.ct-rotatekey.1.json");
    let dir = tempfile::tempdir().unwrap();
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250520T2050Z", "good"),
        &[good],
    );
    let bad: [(&str, Vec<u8>); 5] = [
        ("garbage", b"\x00\x01garbage that is no JSON".to_vec()),
        (
            "s3error",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".to_vec(),
        ),
        ("empty-object", b"{}".to_vec()),
        ("truncated", br#"{"Records":[{"eventVersion":"1.08","eventSource":"kms.amazonaws.com""#.to_vec()),
        (
            // A syntax error in a record the filter never parses.
            "broken-record",
            br#"{"Records":[{"eventSource":"s3.amazonaws.com" "eventName":"GetObject"}]}"#.to_vec(),
        ),
    ];
    for (unique, bytes) in &bad {
        put(
            dir.path(),
            &delivery_path(A, "us-west-2", "20250520T2100Z", unique),
            &gz(bytes),
        );
    }
    // Not gzipped at all, under a .json.gz delivery name.
    put(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250520T2105Z", "plain"),
        b"not gzip, not json",
    );
    let s = scan(dir.path(), &[]);
    assert_eq!(s.code, 3, "{}", s.stderr);
    assert_eq!(s.coverage["complete"], false);
    let src = &s.coverage["sources"][0];
    let corrupt: Vec<String> = src["files_corrupt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(corrupt.len(), bad.len() + 1, "{src:#}");
    let names: Vec<&str> = bad.iter().map(|(u, _)| *u).chain(["plain"]).collect();
    for unique in names {
        assert!(
            corrupt
                .iter()
                .any(|p| p.contains(&format!("_{unique}.json.gz"))),
            "{unique}: {corrupt:?}"
        );
        assert!(
            s.stderr.contains(&format!("_{unique}.json.gz")),
            "{}",
            s.stderr
        );
    }
    assert_eq!(src["files_read"], 1);
    assert!(
        src["files_skipped"].as_array().unwrap().is_empty(),
        "{src:#}"
    );
    assert_eq!(s.events.len(), 1, "the good file is still read");
}

/// 18.5: two copies of one eventID with different content: the one with an
/// errorCode, then the earliest delivery, whatever the path order; the
/// conflict is in coverage.
#[test]
fn conflicting_copies_of_an_event_are_picked_the_same_way_and_recorded() {
    let base = doc("current-docs.ct-enablekeyrotation.1.json");
    let mut failed = base.clone();
    failed["errorCode"] = json!("AccessDeniedException");
    let mut other_agent = base.clone();
    other_agent["userAgent"] = json!("aws-cli/2.15.0");
    for (first, second) in [("a", "z"), ("z", "a")] {
        let dir = tempfile::tempdir().unwrap();
        // Delivered late but carrying the failure.
        deliver(
            dir.path(),
            &delivery_path(A, "us-west-2", "20200726T0500Z", first),
            &[failed.clone()],
        );
        // Delivered first, plain.
        deliver(
            dir.path(),
            &delivery_path(A, "us-west-2", "20200725T2345Z", second),
            std::slice::from_ref(&base),
        );
        let s = scan(dir.path(), &[]);
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0]["error_code"], "AccessDeniedException");
        let c = &s.coverage["duplicate_conflicts"][0];
        assert_eq!(c["event_id"], "fefc43a7-8e06-419f-bcab-b3bf18d6a401");
        assert!(
            c["kept"]
                .as_str()
                .unwrap()
                .ends_with(&format!("_{first}.json.gz")),
            "{c:#}"
        );
        assert!(
            s.stderr.contains("delivered with different content"),
            "{}",
            s.stderr
        );
    }
    // Without a failure the earliest delivery wins, in either path order.
    for (early, late) in [("a", "z"), ("z", "a")] {
        let dir = tempfile::tempdir().unwrap();
        deliver(
            dir.path(),
            &delivery_path(A, "us-west-2", "20200725T2345Z", early),
            &[other_agent.clone()],
        );
        deliver(
            dir.path(),
            &delivery_path(A, "us-west-2", "20200726T0900Z", late),
            std::slice::from_ref(&base),
        );
        let s = scan(dir.path(), &[]);
        assert_eq!(s.events[0]["user_agent"], "aws-cli/2.15.0", "{early}");
        assert_eq!(s.code, 0, "a conflict is not a gap\n{}", s.stderr);
    }
}

/// 18.6: an eventTime without a zone or with a space is a bad record: not
/// kept, not a day, counted; an offset time is filed under its UTC day.
#[test]
fn event_times_without_a_zone_are_bad_records_and_offsets_become_utc() {
    let mut spaced = doc("current-docs.ct-rotatekeyondemand.1.json");
    spaced["eventID"] = json!("spaced");
    spaced["eventTime"] = json!("2024-02-20 17:41:57Z");
    let mut zoneless = doc("current-docs.ct-rotatekeyondemand.1.json");
    zoneless["eventID"] = json!("zoneless");
    zoneless["eventTime"] = json!("2024-02-20T17:41:57");
    let mut offset = doc("current-docs.ct-rotatekeyondemand.1.json");
    offset["eventID"] = json!("offset");
    offset["eventTime"] = json!("2024-02-21T00:30:00+01:00");
    let dir = tempfile::tempdir().unwrap();
    // Not AWS-named: the days come from the records.
    put(
        dir.path(),
        "export.json",
        &serde_json::to_vec(&json!({"Records": [spaced, zoneless, offset]})).unwrap(),
    );
    let s = scan(
        dir.path(),
        &["--since", "2024-02-20", "--until", "2024-02-20"],
    );
    assert_eq!(s.code, 3);
    assert_eq!(s.coverage["sources"][0]["records_bad_time"], 2);
    assert_eq!(s.events.len(), 1);
    assert_eq!(s.events[0]["event_id"], "offset");
    assert_eq!(s.events[0]["event_time"], "2024-02-20T23:30:00Z");
    let days = &s.coverage["days"][0];
    assert_eq!(days["days_with_logs"], json!(["2024-02-20"]));
    assert!(
        s.stderr.contains("eventTime `2024-02-20 17:41:57Z`"),
        "{}",
        s.stderr
    );
}

/// 18.8: an on-demand rotation logs the RotateKeyOnDemand call and a
/// RotateKey service event (rotationType ON_DEMAND): both rows stay, linked.
#[test]
fn an_on_demand_call_and_its_rotation_event_are_linked() {
    let mut call = doc("current-docs.ct-rotatekeyondemand.1.json");
    call["eventTime"] = json!("2025-05-20T20:43:10Z");
    call["awsRegion"] = json!("us-west-2");
    let rotation = doc("current-docs.ct-rotatekey.2.json");
    let automatic = {
        let mut r = doc("current-docs.ct-rotatekey.1.json");
        r["eventID"] = json!("automatic-later");
        r["eventTime"] = json!("2025-05-20T20:50:00Z");
        r
    };
    let dir = tempfile::tempdir().unwrap();
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250520T2050Z", "aaaa"),
        &[call, rotation, automatic],
    );
    let s = scan(dir.path(), &[]);
    let call = event(&s.events, "00a09fbc-20d6-4a58-9b92-7da85984ab77");
    let rot = event(&s.events, "a24b3967-ddad-417f-9b22-2332b918db06");
    assert_eq!(call["linked_event_id"], rot["event_id"]);
    assert_eq!(rot["linked_event_id"], call["event_id"]);
    assert_eq!(
        event(&s.events, "automatic-later")["linked_event_id"],
        Value::Null
    );
}

/// 17.6: a gzip bomb (1 GiB of zeros in about 1 MB) is corrupt with the
/// reason, the scan goes on, and memory stays bounded.
#[cfg(target_os = "linux")]
#[test]
fn a_gzip_bomb_is_corrupt_and_the_scan_goes_on_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bomb_rel = delivery_path(A, "us-west-2", "20250520T2100Z", "bomb");
    let bomb = dir.path().join(&bomb_rel);
    std::fs::create_dir_all(bomb.parent().unwrap()).unwrap();
    // gzip(1) compresses zeros at ~1000:1 in a second or two; the Rust
    // encoders are unoptimized in a test build.
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 1073741824 /dev/zero | gzip -9 > '{}'",
            bomb.display()
        ))
        .status()
        .unwrap();
    assert!(made.success());
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    // Four bombs at once, as four files of one archive.
    for n in 2..=4 {
        let rel = delivery_path(A, "us-west-2", "20250520T2100Z", &format!("bomb{n}"));
        std::fs::copy(&bomb, dir.path().join(rel)).unwrap();
    }
    deliver(
        dir.path(),
        &delivery_path(A, "us-west-2", "20250520T2050Z", "good"),
        &[doc("current-docs.ct-rotatekey.1.json")],
    );
    let s = scan(dir.path(), &[]);
    assert_eq!(s.code, 3);
    let src = &s.coverage["sources"][0];
    let corrupt = src["files_corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 4, "{src:#}");
    for c in corrupt {
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("inflates to more than --max-log-bytes (268435456 bytes)"),
            "{c:#}"
        );
    }
    assert_eq!(s.events.len(), 1, "the good file is read");
    let peak_kib = children_peak_kib();
    assert!(peak_kib < 512 * 1024, "peak RSS {peak_kib} KiB");
}

/// The largest resident set of this test's child processes, in KiB.
/// nextest runs each test in its own process: the children are this test's
/// commands, and the largest is kmsrot.
#[cfg(target_os = "linux")]
fn children_peak_kib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

/// 17.6: one line of 96 MiB (a kept record with a huge userAgent) costs
/// about its own size, not eight times it: strings are borrowed while
/// parsing, and a row keeps at most 16 KiB of one field, marked.
#[cfg(target_os = "linux")]
#[test]
fn a_single_huge_line_costs_about_its_own_size() {
    const LINE: usize = 96 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut r = doc("current-docs.ct-rotatekey.1.json");
    r["userAgent"] = json!("@UA@");
    let text = r.to_string();
    let (head, tail) = text.split_once("@UA@").unwrap();
    let mut f = std::fs::File::create(dir.path().join("line.json")).unwrap();
    f.write_all(head.as_bytes()).unwrap();
    let block = vec![b'A'; 1 << 20];
    for _ in 0..LINE >> 20 {
        f.write_all(&block).unwrap();
    }
    f.write_all(tail.as_bytes()).unwrap();
    drop(f);
    let s = scan(dir.path(), &[]);
    assert_eq!(s.events.len(), 1);
    let ua = s.events[0]["user_agent"].as_str().unwrap();
    assert!(ua.len() < 17 << 10, "{}", ua.len());
    assert!(
        ua.ends_with("more bytes in the record, not kept]"),
        "{}",
        &ua[ua.len() - 60..]
    );
    let peak = children_peak_kib();
    // The binary and its libraries take under 100 MB; the line itself once.
    assert!(
        peak < (LINE as i64 / 1024) * 2 + 100 * 1024,
        "peak RSS {peak} KiB for a {} KiB line",
        LINE / 1024
    );
}

/// 17.6: `--max-log-bytes` also bounds plain files; the scan goes on.
#[test]
fn a_file_over_max_log_bytes_is_corrupt_and_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let big =
        json!({"Records": [doc("current-docs.ct-rotatekey.1.json"), {"pad": "x".repeat(100_000)}]});
    put(dir.path(), "big.json", &serde_json::to_vec(&big).unwrap());
    put(
        dir.path(),
        "small.json",
        &serde_json::to_vec(&doc("current-docs.ct-enablekeyrotation.1.json")).unwrap(),
    );
    let s = scan(dir.path(), &["--max-log-bytes", "64KiB"]);
    assert_eq!(s.code, 3);
    let corrupt = &s.coverage["sources"][0]["files_corrupt"][0];
    assert!(corrupt["path"].as_str().unwrap().ends_with("big.json"));
    assert!(
        corrupt["reason"]
            .as_str()
            .unwrap()
            .contains("more than --max-log-bytes (65536)"),
        "{corrupt:#}"
    );
    assert_eq!(s.events.len(), 1);
}

/// 17.11: a scan of local files resolves no AWS configuration: with no
/// region configured, it must not ask the instance metadata service.
#[test]
fn a_local_scan_never_asks_imds_for_a_region() {
    let imds = TcpListener::bind("127.0.0.1:0").unwrap();
    imds.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "enable.json",
        &serde_json::to_vec(&doc("current-docs.ct-enablekeyrotation.1.json")).unwrap(),
    );
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(kmsrot()
        .env_remove("AWS_REGION")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{}", imds.local_addr().unwrap()),
        )
        .args(["trail", "scan", "--out"])
        .arg(out.path())
        .arg(dir.path()));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        matches!(imds.accept(), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "kmsrot connected to the metadata service"
    );
}
