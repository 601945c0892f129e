//! `kmsrot trail scan lake:EVENT_DATA_STORE`: CloudTrail Lake.
//!
//! moto has no CloudTrail Lake, so this runs the real binary against the
//! fixture server (`support::cloudtrail_fixture`), which speaks the JSON 1.1
//! protocol of StartQuery/GetQueryResults and answers, from AWS's documented
//! example records, what Lake returns for the queries kmsrot sends. The test
//! checks the SQL pushed down, the polling while a query runs, the paging,
//! and the rows and coverage that come out.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::cloudtrail_fixture::{CloudTrailFixture, FixtureEvent, FixtureOptions};
use crate::support::{fixtures, kmsrot, read_json, run};

const ACCOUNT: &str = "111122223333";
const STORE: &str = "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE";

fn placed(name: &str, id: u32, region: &str, at: &str) -> FixtureEvent {
    let mut record: Value = read_json(&fixtures().join("lookup").join(name));
    record["eventID"] = json!(format!("{id:08x}-2222-4000-8000-00000000{id:04x}"));
    record["eventTime"] = json!(at);
    record["awsRegion"] = json!(region);
    record["recipientAccountId"] = json!(ACCOUNT);
    FixtureEvent {
        region: region.to_string(),
        record,
    }
}

#[test]
fn lake_pushes_the_filter_down_polls_pages_and_records_days() {
    let events = vec![
        placed(
            "current-docs.ct-rotatekey.1.json",
            1,
            "us-east-1",
            "2025-03-02T10:00:00Z",
        ),
        placed(
            "current-docs.ct-enablekeyrotation.1.json",
            2,
            "us-east-1",
            "2025-03-03T11:00:00Z",
        ),
        placed(
            "kms-dev-guide.ct-decrypt.5.json",
            3,
            "us-east-1",
            "2025-03-03T12:00:00Z",
        ),
        placed(
            "kms-dev-guide.ct-rotatekey.1.json",
            4,
            "eu-west-1",
            "2025-03-04T13:00:00Z",
        ),
        // Outside the window: Lake's WHERE leaves it out.
        placed(
            "kms-dev-guide.ct-disable-key-rotation.1.json",
            5,
            "us-east-1",
            "2025-02-20T09:00:00Z",
        ),
    ];
    let fixture = CloudTrailFixture::start(
        events,
        FixtureOptions {
            account: ACCOUNT.into(),
            page_size: 2,
            lake_running_polls: 1,
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lake");
    let source = format!("lake:arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/{STORE}");
    let mut cmd = kmsrot();
    cmd.args(["--endpoint-url", &fixture.url])
        .args(["trail", "scan", &source])
        .args([
            "--since",
            "2025-03-01T00:00:00Z",
            "--until",
            "2025-03-05T23:59:59Z",
        ])
        .arg("--out")
        .arg(&out);
    let (code, _stdout, stderr) = run(&mut cmd);
    assert_eq!(
        code, 3,
        "days without events make the scan partial\n{stderr}"
    );

    let lake = fixture.lake_requests();
    let statements: Vec<&str> = lake.iter().filter_map(|r| r.statement.as_deref()).collect();
    assert_eq!(statements.len(), 2, "{statements:#?}");
    let events_sql = statements[0];
    assert!(
        events_sql.contains(&format!(
            "FROM {STORE} WHERE eventsource = 'kms.amazonaws.com'"
        )),
        "{events_sql}"
    );
    for name in [
        "RotateKey",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "CreateGrant",
    ] {
        assert!(
            events_sql.contains(&format!("'{name}'")),
            "{name}: {events_sql}"
        );
    }
    assert!(
        events_sql.contains("OR errorcode IS NOT NULL"),
        "{events_sql}"
    );
    assert!(
        events_sql
            .contains("eventtime >= '2025-03-01 00:00:00' AND eventtime <= '2025-03-05 23:59:59'"),
        "{events_sql}"
    );
    assert!(
        statements[1].starts_with("SELECT DISTINCT recipientaccountid, awsregion, date(eventtime)")
    );

    // Each query was polled while running, then paged to the end.
    let results: Vec<_> = lake
        .iter()
        .filter(|r| r.operation == "GetQueryResults" && r.query_id == "fixture-query-1")
        .collect();
    let statuses: Vec<&str> = results.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["RUNNING", "FINISHED", "FINISHED"]);
    assert_eq!(results[2].next_token.as_deref(), Some("fixture-rows-2"));

    let rows = read_json(&out.join("events.json"));
    let got: BTreeMap<String, (String, Value, Value, Value)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap()[..8].to_string(),
                (
                    r["event_name"].as_str().unwrap().to_string(),
                    r["rotation_type"].clone(),
                    r["rotation_period_days"].clone(),
                    r["error_code"].clone(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (String, Value, Value, Value)> = [
        (
            "00000001",
            "RotateKey",
            json!("AUTOMATIC"),
            Value::Null,
            Value::Null,
        ),
        (
            "00000002",
            "EnableKeyRotation",
            Value::Null,
            json!(180),
            Value::Null,
        ),
        (
            "00000003",
            "Decrypt",
            Value::Null,
            Value::Null,
            json!("KMSInvalidStateException"),
        ),
        // The old shape has no rotationType; an AwsServiceEvent RotateKey
        // without one is the automatic rotation.
        (
            "00000004",
            "RotateKey",
            json!("AUTOMATIC"),
            Value::Null,
            Value::Null,
        ),
    ]
    .into_iter()
    .map(|(id, n, rt, p, e)| (id.to_string(), (n.to_string(), rt, p, e)))
    .collect();
    assert_eq!(got, want);
    for r in rows.as_array().unwrap() {
        assert_eq!(r["source"], format!("lake:{STORE}"));
    }

    let cov = read_json(&out.join("coverage.json"));
    let cov = if cov.get("trail").is_some() {
        cov["trail"].clone()
    } else {
        cov
    };
    let src = &cov["sources"][0];
    assert_eq!(src["kind"], "lake");
    assert_eq!(src["records_read"], 4);
    assert_eq!(src["bytes_read"], 2000, "BytesScanned of both queries");
    assert!(src["errors"].as_array().unwrap().is_empty(), "{src:#}");
    let days = |region: &str| {
        let d = cov["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["region"] == region)
            .unwrap_or_else(|| panic!("no days for {region}: {cov:#}"))
            .clone();
        (d["days_with_logs"].clone(), d["days_missing"].clone())
    };
    assert_eq!(
        days("us-east-1"),
        (
            json!(["2025-03-02", "2025-03-03"]),
            json!(["2025-03-01", "2025-03-04", "2025-03-05"])
        )
    );
    assert_eq!(days("eu-west-1").0, json!(["2025-03-04"]));
}

fn lake_source() -> String {
    format!("lake:arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/{STORE}")
}

fn lake_scan(fixture: &CloudTrailFixture, out: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let mut cmd = kmsrot();
    cmd.args(["--endpoint-url", &fixture.url])
        .args(["trail", "scan", &lake_source()])
        .args(extra)
        .arg("--out")
        .arg(out);
    let (code, _stdout, stderr) = run(&mut cmd);
    (code, stderr)
}

fn two_events() -> Vec<FixtureEvent> {
    vec![
        placed(
            "current-docs.ct-rotatekey.1.json",
            1,
            "us-east-1",
            "2025-03-02T10:00:00Z",
        ),
        placed(
            "current-docs.ct-enablekeyrotation.1.json",
            2,
            "us-east-1",
            "2025-03-02T11:00:00Z",
        ),
    ]
}

const ONE_DAY: [&str; 4] = [
    "--since",
    "2025-03-02T00:00:00Z",
    "--until",
    "2025-03-02T23:59:59Z",
];

fn lake_coverage(out: &std::path::Path) -> Value {
    read_json(&out.join("coverage.json"))["trail"]["sources"][0].clone()
}

fn cancelled(fixture: &CloudTrailFixture) -> Vec<String> {
    fixture
        .lake_requests()
        .iter()
        .filter(|r| r.operation == "CancelQuery")
        .map(|r| r.query_id.clone())
        .collect()
}

/// Every CloudTrail record in `tests/fixtures/`, as the JSON values they
/// are (single records, `{"Records":[...]}`, arrays, NDJSON).
fn fixture_records() -> Vec<Value> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&fixtures(), &mut files);
    files.sort();
    let mut records = Vec::new();
    let mut push = |v: Value| match v {
        Value::Object(ref m) if m.contains_key("Records") => {
            records.extend(v["Records"].as_array().cloned().unwrap_or_default())
        }
        Value::Array(items) => records.extend(items),
        other => records.push(other),
    };
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => push(v),
            // NDJSON; examples AWS published as invalid JSON are left out.
            Err(_) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        push(v);
                    }
                }
            }
        }
    }
    records
}

/// 18.11: every KMS record of the fixtures, read through CloudTrail Lake
/// (as Lake returns the columns kmsrot's query selects) and as a file,
/// gives the same row, field by field.
#[test]
fn every_fixture_record_reads_the_same_through_lake_and_from_a_file() {
    let mut records: Vec<Value> = fixture_records()
        .into_iter()
        .filter(|r| r["eventSource"] == "kms.amazonaws.com")
        .collect();
    for (n, r) in records.iter_mut().enumerate() {
        // AWS reuses eventIDs across its examples; Lake keeps every event.
        let id = r["eventID"].as_str().unwrap_or("none").to_string();
        r["eventID"] = json!(format!("{id}-{n}"));
        // Logstash exports keep the time in @timestamp; Lake always has it
        // in eventTime.
        if r.get("eventTime").is_none() {
            if let Some(t) = r.get("@timestamp").cloned() {
                r["eventTime"] = t;
            }
        }
    }
    assert!(records.len() >= 100, "{} KMS records", records.len());

    let window = [
        "--include-data-events",
        "--since",
        "2000-01-01",
        "--until",
        "2030-12-31",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("all.json"),
        serde_json::to_vec(&json!({ "Records": records })).unwrap(),
    )
    .unwrap();
    let file_out = dir.path().join("file-out");
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan"])
        .arg(dir.path().join("all.json"))
        .args(window)
        .arg("--out")
        .arg(&file_out));
    assert!(code == 0 || code == 3, "{stderr}");

    let events = records
        .iter()
        .map(|r| FixtureEvent {
            region: r["awsRegion"].as_str().unwrap_or("us-east-1").to_string(),
            record: r.clone(),
        })
        .collect();
    let fixture = CloudTrailFixture::start(
        events,
        FixtureOptions {
            page_size: 1000,
            ..FixtureOptions::default()
        },
    );
    let lake_out = dir.path().join("lake-out");
    let (code, stderr) = lake_scan(&fixture, &lake_out, &window);
    assert!(code == 0 || code == 3, "{stderr}");

    let rows = |out: &std::path::Path| -> BTreeMap<String, Value> {
        read_json(&out.join("events.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("source");
                (r["event_id"].as_str().unwrap().to_string(), r)
            })
            .collect()
    };
    let (from_file, from_lake) = (rows(&file_out), rows(&lake_out));
    assert!(from_file.len() >= 100, "{}", from_file.len());
    let mut differences = Vec::new();
    for (id, f) in &from_file {
        match from_lake.get(id) {
            None => differences.push(format!("{id}: missing from Lake")),
            Some(l) => {
                for (k, v) in f.as_object().unwrap() {
                    if &l[k] != v {
                        differences.push(format!("{id}.{k}: file {v} lake {}", l[k]));
                    }
                }
            }
        }
    }
    for id in from_lake.keys().filter(|id| !from_file.contains_key(*id)) {
        differences.push(format!("{id}: only in Lake"));
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// 18.12: without --since, the query is still bounded, by the default
/// audit window, and coverage says so.
#[test]
fn a_lake_query_without_since_is_bounded_by_the_audit_window() {
    let fixture = CloudTrailFixture::start(two_events(), FixtureOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = lake_scan(&fixture, tmp.path(), &[]);
    assert!(code == 0 || code == 3, "{stderr}");
    let lake = fixture.lake_requests();
    let statements: Vec<&str> = lake.iter().filter_map(|r| r.statement.as_deref()).collect();
    assert_eq!(statements.len(), 2);
    for s in statements {
        assert!(s.contains("eventtime >= '"), "{s}");
    }
    let limits = lake_coverage(tmp.path())["limits"].to_string();
    assert!(
        limits.contains("default audit window (400 days)"),
        "{limits}"
    );
}

/// 18.13: MaxConcurrentQueriesException is waited out, not a failure.
#[test]
fn a_busy_lake_is_retried() {
    let fixture = CloudTrailFixture::start(
        two_events(),
        FixtureOptions {
            lake_busy_starts: 2,
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = lake_scan(&fixture, tmp.path(), &ONE_DAY);
    assert_eq!(code, 0, "{stderr}");
    let starts: Vec<String> = fixture
        .lake_requests()
        .iter()
        .filter(|r| r.operation == "StartQuery")
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(
        starts,
        [
            "MaxConcurrentQueriesException",
            "MaxConcurrentQueriesException",
            "QUEUED",
            "QUEUED"
        ]
    );
    assert_eq!(
        read_json(&tmp.path().join("events.json"))
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// 18.14: a query still running at --query-timeout is cancelled, and the
/// coverage is partial.
#[test]
fn a_query_past_its_deadline_is_cancelled() {
    let fixture = CloudTrailFixture::start(
        two_events(),
        FixtureOptions {
            lake_running_polls: usize::MAX,
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut args = ONE_DAY.to_vec();
    args.extend(["--query-timeout", "2"]);
    let (code, stderr) = lake_scan(&fixture, tmp.path(), &args);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(cancelled(&fixture), ["fixture-query-1", "fixture-query-2"]);
    let errors = lake_coverage(tmp.path())["errors"].to_string();
    assert!(errors.contains("--query-timeout deadline"), "{errors}");
    assert!(
        errors.contains("query fixture-query-1 cancelled"),
        "{errors}"
    );
}

/// 18.14: a failed GetQueryResults leaves no query running.
#[test]
fn a_failed_get_query_results_cancels_the_query() {
    let fixture = CloudTrailFixture::start(
        two_events(),
        FixtureOptions {
            lake_results_error: Some("AccessDeniedException".into()),
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = lake_scan(&fixture, tmp.path(), &ONE_DAY);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(cancelled(&fixture), ["fixture-query-1", "fixture-query-2"]);
    let errors = lake_coverage(tmp.path())["errors"].to_string();
    assert!(errors.contains("AccessDeniedException"), "{errors}");
}

/// 18.14: Ctrl-C cancels the running query before kmsrot exits.
#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_running_query() {
    let fixture = CloudTrailFixture::start(
        two_events(),
        FixtureOptions {
            lake_running_polls: usize::MAX,
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let child = kmsrot()
        .args(["--endpoint-url", &fixture.url])
        .args(["trail", "scan", &lake_source()])
        .args(ONE_DAY)
        .arg("--out")
        .arg(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the query is being polled.
    let start = std::time::Instant::now();
    while !fixture
        .lake_requests()
        .iter()
        .any(|r| r.operation == "GetQueryResults")
    {
        assert!(start.elapsed().as_secs() < 30, "no query was started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(cancelled(&fixture), ["fixture-query-1"]);
    assert!(
        stderr.contains("cancelled CloudTrail Lake query fixture-query-1"),
        "{stderr}"
    );
}

/// 18.15: a query Lake stopped (TIMED_OUT) gives its rows, and the coverage
/// says the results are partial.
#[test]
fn a_timed_out_query_is_read_and_marked_partial() {
    let fixture = CloudTrailFixture::start(
        two_events(),
        FixtureOptions {
            lake_end_status: Some("TIMED_OUT".into()),
            page_size: 1,
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = lake_scan(&fixture, tmp.path(), &ONE_DAY);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        read_json(&tmp.path().join("events.json"))
            .as_array()
            .unwrap()
            .len(),
        2,
        "the partial results are read, every page"
    );
    let errors = lake_coverage(tmp.path())["errors"].to_string();
    assert!(errors.contains("TIMED_OUT"), "{errors}");
    assert!(stderr.contains("the rest is missing"), "{stderr}");
}

/// 18.16: a statement over Lake's 10,000 characters is refused before any
/// query is sent.
#[test]
fn a_statement_too_long_for_lake_is_refused() {
    let fixture = CloudTrailFixture::start(two_events(), FixtureOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("events.txt");
    let names: Vec<String> = (0..600)
        .map(|i| format!("SomeLongEventName{i:04}"))
        .collect();
    std::fs::write(&list, names.join("\n")).unwrap();
    let out = tmp.path().join("out");
    let (code, stderr) = lake_scan(&fixture, &out, &["--events-file", list.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("StartQuery takes at most 10000"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(fixture.lake_requests().is_empty());
}
