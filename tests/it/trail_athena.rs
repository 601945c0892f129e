//! `kmsrot trail scan athena:DATABASE.TABLE`, in two layers.
//!
//! 1. **Wire and paging, against moto.** moto's Athena records every query
//!    and runs none: a test queues the results, in Athena's shape, through
//!    `/moto-api/static/athena/query-results`, and kmsrot reads them with
//!    the real SDK. moto's gaps are filled by the proxy (`support::proxy`):
//!    it pages GetQueryResults with NextToken (moto returns every row at
//!    once), and writes into GetQueryExecution the statistics, FAILED and
//!    CANCELLED states that moto never reports. moto writes the queued rows
//!    as the result CSV in S3, as Athena does, so the large-result path reads
//!    a real object (moto does not double quotes inside values, so the rows
//!    queued here have none).
//! 2. **SQL semantics, on a real engine.** The SQL kmsrot sent to moto is
//!    read back (ListQueryExecutions, GetQueryExecution), translated from
//!    Trino to DuckDB with sqlglot and run in DuckDB over a table in the
//!    shape of AWS's CloudTrail DDL, built from real logs and AWS's
//!    documented records laid out as a trail archive
//!    (`support/athena_duckdb.py`). Its rows must be the events a local
//!    `trail scan` keeps from the same files, event for event; fed back to
//!    kmsrot through moto, they must give the same `events` frame.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::proxy::{AthenaPatch, Proxy, Rule};
use crate::support::{fixtures, python, read_json, run, Moto, ACCOUNT as MOTO_ACCOUNT};

const ACCOUNT: &str = "111122223333";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const TABLE: &str = "athena:cloudtrail.org_trail";
const RESULTS_BUCKET: &str = "athena-results";

/// Result rows: each value a string or NULL.
type Rows = Vec<Vec<Option<String>>>;

fn key_arn(region: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{KEY_ID}")
}

/// The events query's columns, in its order.
const COLUMNS: &[&str] = &[
    "eventid",
    "eventtime",
    "eventname",
    "eventtype",
    "eventsource",
    "awsregion",
    "recipientaccountid",
    "sharedeventid",
    "principal_arn",
    "principal_type",
    "principal_account_id",
    "invoked_by",
    "session_issuer_arn",
    "sourceipaddress",
    "useragent",
    "errorcode",
    "errormessage",
    "requestid",
    "key_ref",
    "rotation_period_json",
    "rotation_type",
    "log_file",
];

/// A POST to moto's own API (`/moto-api/...`).
fn moto_api(moto: &Moto, path: &str, body: &Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", moto.port)).expect("moto");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"),
        "{path}: {answer}"
    );
}

/// A result set as Athena's GetQueryResults gives it: the header row first,
/// every value a VarCharValue, NULL a Datum without one.
fn result_set(columns: &[String], rows: &[Vec<Option<String>>]) -> Value {
    let datum = |v: &Option<String>| match v {
        Some(s) => json!({ "VarCharValue": s }),
        None => json!({}),
    };
    let mut out = vec![
        json!({ "Data": columns.iter().map(|c| json!({ "VarCharValue": c })).collect::<Vec<_>>() }),
    ];
    out.extend(
        rows.iter()
            .map(|r| json!({ "Data": r.iter().map(datum).collect::<Vec<_>>() })),
    );
    let info: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c,
                "Type": "varchar", "Precision": 2147483647, "Scale": 0, "Nullable": "UNKNOWN",
                "CaseSensitive": true
            })
        })
        .collect();
    json!({ "rows": out, "column_info": info })
}

/// Queues results for the next queries started, in order.
fn queue(moto: &Moto, results: Vec<Value>) {
    moto_api(
        moto,
        "/moto-api/static/athena/query-results",
        &json!({ "account_id": MOTO_ACCOUNT, "region": "us-east-1", "results": results }),
    );
}

/// Makes each query answer QUEUED, then RUNNING, for `polls` describes each
/// before it moves on (moto's manual state transitions).
fn slow_queries(moto: &Moto, polls: u64) {
    moto_api(
        moto,
        "/moto-api/state-manager/set-transition",
        &json!({ "model_name": "athena::execution", "transition": { "progression": "manual", "times": polls } }),
    );
}

fn create_bucket(moto: &Moto, name: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        moto.s3("us-east-1")
            .await
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket");
    });
}

/// Every query moto received: (id, SQL, state, context, result location).
fn athena_queries(moto: &Moto) -> Vec<(String, String, String, Value)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = aws_sdk_athena::Client::new(&moto.config("us-east-1").await);
        let ids = client
            .list_query_executions()
            .send()
            .await
            .unwrap()
            .query_execution_ids()
            .to_vec();
        let mut out = Vec::new();
        for id in ids {
            let q = client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .unwrap();
            let q = q.query_execution().unwrap();
            let ctx = q.query_execution_context();
            let info = json!({
                "database": ctx.and_then(|c| c.database()),
                "catalog": ctx.and_then(|c| c.catalog()),
                "output": q.result_configuration().and_then(|c| c.output_location()),
            });
            out.push((
                id.clone(),
                q.query().unwrap_or_default().to_string(),
                q.status()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                info,
            ));
        }
        out
    })
}

fn scan(endpoint: &str, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = crate::support::kmsrot();
    cmd.args(["--endpoint-url", endpoint])
        .args(["trail", "scan", TABLE])
        .args(["--athena-output", &format!("s3://{RESULTS_BUCKET}/kmsrot/")])
        .args([
            "--athena-partitions",
            "date=timestamp,account=account,region=region",
        ])
        .args(extra)
        .arg("--out")
        .arg(out);
    run(&mut cmd)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn log_file(day: &str, hhmm: &str, unique: &str) -> Option<String> {
    let (y, m, d) = (&day[..4], &day[5..7], &day[8..10]);
    Some(format!(
        "s3://org-trail/AWSLogs/o-exampleorg1/{ACCOUNT}/CloudTrail/us-east-1/{y}/{m}/{d}/{ACCOUNT}_CloudTrail_us-east-1_{y}{m}{d}T{hhmm}Z_{unique}.json.gz"
    ))
}

/// An events-query row, every column NULL but those given.
fn row(cells: &[(&str, Option<String>)]) -> Vec<Option<String>> {
    COLUMNS
        .iter()
        .map(|c| {
            cells
                .iter()
                .find(|(k, _)| k == c)
                .and_then(|(_, v)| v.clone())
        })
        .collect()
}

fn kms_row(
    id: &str,
    time: &str,
    name: &str,
    extra: &[(&str, Option<String>)],
) -> Vec<Option<String>> {
    let mut cells = vec![
        ("eventid", s(id)),
        ("eventtime", s(time)),
        ("eventname", s(name)),
        ("eventtype", s("AwsApiCall")),
        ("eventsource", s("kms.amazonaws.com")),
        ("awsregion", s("us-east-1")),
        ("recipientaccountid", s(ACCOUNT)),
        ("principal_arn", s("arn:aws:iam::111122223333:user/Alice")),
        ("principal_type", s("IAMUser")),
        ("principal_account_id", s(ACCOUNT)),
        ("sourceipaddress", s("192.0.2.0")),
        ("useragent", s("aws-cli/2.13.5")),
        ("requestid", s(&format!("req-{id}"))),
        ("key_ref", Some(key_arn("us-east-1"))),
        ("log_file", log_file(&time[..10], "2355", &format!("f{id}"))),
    ];
    for (k, v) in extra {
        cells.retain(|(c, _)| c != k);
        cells.push((k, v.clone()));
    }
    row(&cells)
}

/// Kept events of 2025-03-02..04 as Athena returns them, and the day ledger.
fn window_rows() -> (Rows, Rows) {
    let events = vec![
        kms_row(
            "e1",
            "2025-03-02T10:00:00Z",
            "RotateKey",
            &[
                ("eventtype", s("AwsServiceEvent")),
                ("principal_arn", None),
                ("principal_type", s("AWSService")),
                ("principal_account_id", None),
                ("invoked_by", s("kms.amazonaws.com")),
                ("rotation_type", s("AUTOMATIC")),
            ],
        ),
        // A bare key id in requestParameters: completed into an ARN.
        kms_row(
            "e2",
            "2025-03-03T11:00:00Z",
            "EnableKeyRotation",
            &[("key_ref", s(KEY_ID)), ("rotation_period_json", s("180"))],
        ),
        // The same event delivered again, later: the earlier copy is kept.
        kms_row(
            "e2",
            "2025-03-03T11:00:00Z",
            "EnableKeyRotation",
            &[
                ("key_ref", s(KEY_ID)),
                ("rotation_period_json", s("180")),
                ("log_file", log_file("2025-03-04", "0900", "late")),
            ],
        ),
        kms_row(
            "e3",
            "2025-03-03T12:00:00Z",
            "EnableKeyRotation",
            &[
                ("errorcode", s("AccessDeniedException")),
                ("errormessage", s("User: arn:aws:iam::111122223333:user/Bob is not authorized to perform: kms:EnableKeyRotation")),
                ("principal_arn", s("arn:aws:iam::111122223333:user/Bob")),
                ("key_ref", s("alias/orders")),
                ("useragent", s("")),
            ],
        ),
        kms_row("e4", "2025-03-04T09:00:00Z", "RotateKeyOnDemand", &[]),
        kms_row(
            "e5",
            "2025-03-04T09:02:00Z",
            "RotateKey",
            &[
                ("eventtype", s("AwsServiceEvent")),
                ("principal_arn", None),
                ("principal_type", s("AWSService")),
                ("invoked_by", s("kms.amazonaws.com")),
                ("rotation_type", s("ON_DEMAND")),
            ],
        ),
    ];
    let days = [
        "2025/03/01",
        "2025/03/02",
        "2025/03/03",
        "2025/03/04",
        "2025/03/05",
    ]
    .iter()
    .map(|d| vec![s(ACCOUNT), s("us-east-1"), s(d)])
    .collect();
    (events, days)
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| c.to_string()).collect()
}

const WINDOW: [&str; 4] = ["--since", "2025-03-02", "--until", "2025-03-04"];

fn events_by_id(dir: &Path) -> BTreeMap<String, Value> {
    read_json(&dir.join("events.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap_or("-").to_string(), r.clone()))
        .collect()
}

#[test]
fn athena_polls_pages_and_records_each_query_with_its_cost() {
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    slow_queries(&moto, 2);
    let (events, days) = window_rows();
    queue(
        &moto,
        vec![
            result_set(&columns(COLUMNS), &events),
            result_set(&columns(&["account", "region", "day"]), &days),
        ],
    );
    let proxy = Proxy::start(
        &moto.url,
        vec![
            Rule::operation("GetQueryResults").athena_pages(2),
            Rule::operation("GetQueryExecution").athena_execution(AthenaPatch {
                data_scanned_bytes: Some(3 * (1 << 30) + 1),
                engine_ms: Some(4321),
                total_ms: Some(5000),
                ..AthenaPatch::default()
            }),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("athena");
    let (code, stdout, stderr) = scan(&proxy.url, &out, &WINDOW);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("note: athena:cloudtrail.org_trail: 2 queries scanned 6.00 GiB, $0.0293 at the list price"),
        "{stderr}"
    );

    // Each query polled while QUEUED and RUNNING, then paged to its end
    // (moto ignores MaxResults; the proxy pages as Athena does).
    let calls = proxy.requests();
    assert_eq!(calls.get("StartQueryExecution"), Some(&2), "{calls:?}");
    assert!(calls["GetQueryExecution"] >= 2 * 4, "{calls:?}");
    // 7 events rows + header in pages of 2, then 5 day rows + header.
    assert_eq!(calls.get("GetQueryResults"), Some(&(4 + 3)), "{calls:?}");

    let rows = events_by_id(&out);
    assert_eq!(
        rows.keys().cloned().collect::<Vec<_>>(),
        ["e1", "e2", "e3", "e4", "e5"]
    );
    let arn = key_arn("us-east-1");
    assert_eq!(rows["e1"]["rotation_type"], "AUTOMATIC");
    assert_eq!(rows["e1"]["key_arn"], arn.as_str());
    assert_eq!(rows["e2"]["key_arn"], arn.as_str(), "a key id is completed");
    assert_eq!(rows["e2"]["rotation_period_days"], 180);
    assert_eq!(
        rows["e2"]["source"],
        log_file("2025-03-03", "2355", "fe2").unwrap().as_str(),
        "of two copies, the earlier delivery is kept, named by its log file"
    );
    assert_eq!(rows["e3"]["error_code"], "AccessDeniedException");
    assert_eq!(rows["e3"]["key_id"], "alias/orders");
    assert_eq!(
        rows["e3"]["key_arn"],
        Value::Null,
        "an alias is never a key ARN"
    );
    assert_eq!(rows["e3"]["user_agent"], "", "an empty string is not NULL");
    assert_eq!(rows["e4"]["linked_event_id"], "e5");
    assert_eq!(rows["e5"]["linked_event_id"], "e4");

    let cov = read_json(&out.join("coverage.json"));
    assert_eq!(cov["complete"], true, "{cov:#}");
    let src = &cov["trail"]["sources"][0];
    assert_eq!(src["kind"], "athena");
    assert_eq!(src["records_read"], 6);
    assert_eq!(cov["trail"]["duplicates"], 1);
    let queries = src["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2);
    let sent = athena_queries(&moto);
    for (q, purpose) in queries.iter().zip(["events", "days"]) {
        assert_eq!(q["purpose"], purpose);
        assert_eq!(q["state"], "SUCCEEDED");
        let (id, sql, _, info) = sent
            .iter()
            .find(|(id, ..)| q["query_id"] == id.as_str())
            .expect("the recorded query id is the one Athena gave");
        assert_eq!(q["sql"], sql.as_str(), "{id}");
        assert_eq!(info["database"], "cloudtrail");
        assert_eq!(info["catalog"], "AwsDataCatalog");
        assert_eq!(
            q["output_location"],
            format!("s3://{RESULTS_BUCKET}/kmsrot/{id}.csv").as_str()
        );
        assert_eq!(q["data_scanned_bytes"], 3 * (1u64 << 30) + 1);
        assert_eq!(q["engine_time_ms"], 4321);
        assert_eq!(q["total_time_ms"], 5000);
        // 3 GiB + 1 byte billed as 3 GiB + 1 MiB at $5 per TiB.
        let want = (3.0 * 1024.0 + 1.0) / (1024.0 * 1024.0) * 5.0;
        assert!((q["cost_usd"].as_f64().unwrap() - want).abs() < 1e-9, "{q}");
        assert_eq!(q["results_read_from"], "GetQueryResults");
    }
    assert_eq!(src["bytes_read"], 2 * (3 * (1u64 << 30) + 1));
    let days: Vec<&Value> = cov["trail"]["days"].as_array().unwrap().iter().collect();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["days_missing"], json!([]));
    assert_eq!(
        days[0]["days_with_logs"],
        json!(["2025-03-02", "2025-03-03", "2025-03-04"])
    );
}

#[test]
fn a_large_result_is_read_from_the_result_csv_after_ten_pages() {
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    // 25 kept events: 10 pages of 2 rows (header included), then the CSV.
    let events: Vec<_> = (0..25)
        .map(|i| {
            kms_row(
                &format!("c{i:02}"),
                &format!("2025-03-03T10:{i:02}:00Z"),
                "GetKeyRotationStatus",
                &[],
            )
        })
        .collect();
    let (_, days) = window_rows();
    queue(
        &moto,
        vec![
            result_set(&columns(COLUMNS), &events),
            result_set(&columns(&["account", "region", "day"]), &days),
        ],
    );
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("GetQueryResults").athena_pages(2)],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("athena");
    let (code, stdout, stderr) = scan(&proxy.url, &out, &WINDOW);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let rows = events_by_id(&out);
    assert_eq!(rows.len(), 25, "{:?}", rows.keys());
    let cov = read_json(&out.join("coverage.json"));
    let q = &cov["trail"]["sources"][0]["queries"][0];
    assert_eq!(q["rows"], 25);
    assert!(
        q["results_read_from"].as_str().unwrap().starts_with(
            "GetQueryResults (10 pages), then the result CSV s3://athena-results/kmsrot/"
        ),
        "{q}"
    );
    // 10 pages for the events, 3 for the days.
    assert_eq!(proxy.requests().get("GetQueryResults"), Some(&13));
}

#[test]
fn a_result_csv_that_cannot_be_read_is_paged_instead() {
    let moto = Moto::start();
    // No results bucket: moto writes no CSV, and GetObject fails.
    let events: Vec<_> = (0..25)
        .map(|i| {
            kms_row(
                &format!("c{i:02}"),
                &format!("2025-03-03T10:{i:02}:00Z"),
                "GetKeyRotationStatus",
                &[],
            )
        })
        .collect();
    let (_, days) = window_rows();
    queue(
        &moto,
        vec![
            result_set(&columns(COLUMNS), &events),
            result_set(&columns(&["account", "region", "day"]), &days),
        ],
    );
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("GetQueryResults").athena_pages(2)],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("athena");
    let (code, stdout, stderr) = scan(&proxy.url, &out, &WINDOW);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(events_by_id(&out).len(), 25);
    let q = &read_json(&out.join("coverage.json"))["trail"]["sources"][0]["queries"][0];
    assert_eq!(q["rows"], 25);
    assert!(
        q["results_read_from"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{q}"
    );
    // 26 rows (header included) in pages of 2, then 3 for the days.
    assert_eq!(proxy.requests().get("GetQueryResults"), Some(&(13 + 3)));
}

#[test]
fn a_failed_or_cancelled_query_exits_2_with_athenas_reason() {
    for (state, reason, error) in [
        (
            "FAILED",
            "HIVE_BAD_DATA: Error parsing field value for field 3: For input string: \"x\"",
            json!({ "ErrorCategory": 2, "ErrorType": 1002, "Retryable": false, "ErrorMessage": "HIVE_BAD_DATA: Error parsing field value for field 3: For input string: \"x\"" }),
        ),
        (
            "CANCELLED",
            "Query cancelled: the workgroup's per-query data usage control limit was exceeded",
            Value::Null,
        ),
    ] {
        let moto = Moto::start();
        create_bucket(&moto, RESULTS_BUCKET);
        let proxy = Proxy::start(
            &moto.url,
            vec![
                Rule::operation("GetQueryExecution").athena_execution(AthenaPatch {
                    state: Some((state.into(), reason.into(), error)),
                    data_scanned_bytes: Some(12 << 20),
                    ..AthenaPatch::default()
                }),
            ],
        );
        let tmp = tempfile::tempdir().unwrap();
        let (code, _, stderr) = scan(&proxy.url, &tmp.path().join("out"), &WINDOW);
        assert_eq!(code, 2, "{state}: {stderr}");
        let id = &athena_queries(&moto)[0].0;
        assert!(
            stderr.contains(&format!(
                "error: Athena events query on cloudtrail.org_trail: Athena query {id} {state}: {reason}"
            )),
            "{stderr}"
        );
        if state == "FAILED" {
            assert!(stderr.contains("(user error, type 1002)"), "{stderr}");
        }
        assert!(stderr.contains("\nhint: "), "{stderr}");
        assert_eq!(proxy.requests().get("StartQueryExecution"), Some(&1));
    }
}

#[test]
fn a_query_past_the_timeout_is_stopped_and_the_coverage_says_so() {
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    // Never leaves QUEUED on its own.
    slow_queries(&moto, 1_000_000);
    let proxy = Proxy::start(
        &moto.url,
        vec![
            Rule::operation("GetQueryExecution").athena_execution(AthenaPatch {
                data_scanned_bytes: Some(5 << 20),
                ..AthenaPatch::default()
            }),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let started = std::time::Instant::now();
    let (code, _, stderr) = scan(
        &proxy.url,
        &out,
        &[&WINDOW[..], &["--athena-timeout", "2"]].concat(),
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(started.elapsed().as_secs() < 30);
    assert_eq!(proxy.requests().get("StopQueryExecution"), Some(&1));
    let sent = athena_queries(&moto);
    assert_eq!(
        sent.len(),
        1,
        "the day query is not started after a stopped one"
    );
    assert_eq!(sent[0].2, "CANCELLED", "moto saw StopQueryExecution");
    assert!(
        stderr.contains("still queued or running after --athena-timeout (2 s)"),
        "{stderr}"
    );
    let cov = read_json(&out.join("coverage.json"));
    assert_eq!(cov["complete"], false);
    let q = &cov["trail"]["sources"][0]["queries"][0];
    assert_eq!(q["state"], "CANCELLED");
    assert_eq!(q["query_id"], sent[0].0.as_str());
    assert_eq!(
        q["data_scanned_bytes"],
        5u64 << 20,
        "a stopped query is billed for what it read"
    );
}

#[test]
fn bad_tables_flags_and_refused_requests_are_usage_errors() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for (args, want) in [
        (vec!["athena:nodot"], "no table"),
        (vec!["athena:db.t;drop"], "not a database and table name"),
        (
            vec![TABLE, "--athena-partitions", "date=timestamp,week=w"],
            "unknown partition role `week`",
        ),
        (
            vec![TABLE, "--athena-partitions", "year=y,month=m"],
            "year, month and day go together",
        ),
        (
            vec![TABLE, "--athena-output", "bucket/prefix"],
            "not an S3 location",
        ),
        (
            vec![TABLE, "--account", "1' OR 1=1"],
            "not a 12-digit account id",
        ),
        // moto refuses an unknown workgroup as Athena does.
        (
            vec![TABLE, "--athena-workgroup", "nosuch"],
            "Athena refused the query",
        ),
    ] {
        let mut cmd = moto.kmsrot();
        cmd.args(["trail", "scan"])
            .args(&args)
            .arg("--out")
            .arg(&out);
        let (code, _, stderr) = run(&mut cmd);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

#[test]
fn a_record_whose_time_cannot_be_placed_is_a_bad_record_not_a_row() {
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    let (mut events, days) = window_rows();
    events.push(kms_row(
        "bad",
        "2025-03-03 12:00:00",
        "DisableKeyRotation",
        &[],
    ));
    queue(
        &moto,
        vec![
            result_set(&columns(COLUMNS), &events),
            result_set(&columns(&["account", "region", "day"]), &days),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("athena");
    let (code, _, stderr) = scan(&moto.url, &out, &WINDOW);
    assert_eq!(code, 3, "{stderr}");
    assert!(!events_by_id(&out).contains_key("bad"));
    let src = &read_json(&out.join("coverage.json"))["trail"]["sources"][0];
    assert_eq!(src["records_bad_time"], 1);
    let corrupt = &src["files_corrupt"][0];
    assert_eq!(
        corrupt["path"],
        log_file("2025-03-03", "2355", "fbad").unwrap().as_str()
    );
    assert!(
        corrupt["reason"]
            .as_str()
            .unwrap()
            .starts_with("record bad: eventTime `2025-03-03 12:00:00`"),
        "{corrupt}"
    );
}

// ---- Layer 2: the SQL's meaning, on DuckDB ----

/// One delivery file of the archive the DuckDB layer reads.
struct Delivery {
    /// Path under the archive root.
    rel: String,
    records: Vec<Value>,
}

fn docs_records() -> Vec<Value> {
    let root = fixtures().join("cloudtrail/aws-docs-examples");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(doc) = serde_json::from_str::<Value>(&std::fs::read_to_string(&f).unwrap()) else {
            // Kept verbatim as AWS published them; SOURCE.txt lists the invalid ones.
            continue;
        };
        match doc {
            Value::Object(ref o) if o.contains_key("Records") => {
                out.extend(o["Records"].as_array().unwrap().iter().cloned())
            }
            Value::Object(_) => out.push(doc),
            Value::Array(a) => out.extend(a),
            _ => {}
        }
    }
    out
}

fn doc(name: &str) -> Value {
    read_json(&fixtures().join("lookup").join(name))
}

fn delivery_name(
    account: &str,
    region: &str,
    at: &chrono::DateTime<chrono::Utc>,
    unique: &str,
) -> String {
    format!(
        "AWSLogs/o-exampleorg1/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{unique}.json",
        at.format("%Y/%m/%d"),
        at.format("%Y%m%dT%H%MZ")
    )
}

/// Real logs and AWS's documented records as a trail archive: the invictus-ir
/// delivery files as they are; every valid documentation record and every
/// stratus-red-team record (real, anonymised) in a file of its own account,
/// region and day, delivered five minutes after its last event; and a few documented records placed at the window's edges (their
/// eventID and time rewritten), one delivered twice, one with an empty
/// errorCode, one with a numeric keyId, one with a fractional time.
fn archive(dir: &Path) {
    use chrono::{DateTime, Duration, Utc};
    let mut files: Vec<Delivery> = Vec::new();
    let invictus = fixtures().join("cloudtrail/invictus-ir-aws_dataset");
    for f in std::fs::read_dir(&invictus).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let doc = read_json(&f);
        files.push(Delivery {
            rel: format!("AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/{name}"),
            records: doc["Records"].as_array().unwrap().clone(),
        });
    }
    let time = |r: &Value| {
        DateTime::parse_from_rfc3339(r["eventTime"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let mut groups: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    let stratus = fixtures().join("cloudtrail/stratus-red-team");
    let mut real: Vec<Value> = Vec::new();
    for f in std::fs::read_dir(&stratus).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "json") {
            real.extend(read_json(&f).as_array().unwrap().iter().cloned());
        }
    }
    for r in docs_records().into_iter().chain(real) {
        let account = r["recipientAccountId"]
            .as_str()
            .or(r["userIdentity"]["accountId"].as_str())
            .unwrap()
            .to_string();
        let region = r["awsRegion"].as_str().unwrap().to_string();
        let day = time(&r).format("%Y-%m-%d").to_string();
        groups.entry((account, region, day)).or_default().push(r);
    }
    for (i, ((account, region, _), records)) in groups.into_iter().enumerate() {
        let last = records.iter().map(time).max().unwrap();
        let delivered = last + Duration::minutes(5);
        files.push(Delivery {
            rel: delivery_name(&account, &region, &delivered, &format!("docs{i:04}")),
            records,
        });
    }
    let placed = |name: &str, id: &str, at: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = doc(name);
        r["eventID"] = json!(id);
        r["eventTime"] = json!(at);
        r["awsRegion"] = json!("us-east-1");
        r["recipientAccountId"] = json!(ACCOUNT);
        edit(&mut r);
        r
    };
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let none = |_: &mut Value| {};
    let edge_start = placed(
        "current-docs.ct-enablekeyrotation.1.json",
        "edge-start",
        "2020-01-01T00:00:00Z",
        &none,
    );
    let edges = [
        (
            "2020-01-01T00:05:00Z",
            vec![
                edge_start.clone(),
                // One second before the window, in the window's first folder.
                placed(
                    "current-docs.ct-enablekeyrotation.1.json",
                    "edge-before",
                    "2019-12-31T23:59:59Z",
                    &none,
                ),
            ],
        ),
        // The first one delivered again, an hour later.
        ("2020-01-01T01:00:00Z", vec![edge_start]),
        (
            "2024-05-01T10:05:00Z",
            vec![
                placed(
                    "kms-dev-guide.ct-disable-key-rotation.1.json",
                    "fraction",
                    "2024-05-01T10:00:00.250Z",
                    &none,
                ),
                placed(
                    "kms-dev-guide.ct-decrypt.5.json",
                    "empty-error",
                    "2024-05-01T10:01:00Z",
                    &|r| {
                        r["errorCode"] = json!("");
                        r["errorMessage"] = json!("");
                    },
                ),
                placed(
                    "kms-dev-guide.ct-disable-key-rotation.1.json",
                    "numeric-key",
                    "2024-05-01T10:02:00Z",
                    &|r| {
                        r["requestParameters"]["keyId"] = json!(12345);
                        r["resources"] = Value::Null;
                    },
                ),
            ],
        ),
        // The window's last second, delivered after midnight.
        (
            "2026-01-01T00:07:00Z",
            vec![placed(
                "current-docs.ct-rotatekey.1.json",
                "edge-end",
                "2025-12-31T23:59:59Z",
                &none,
            )],
        ),
    ];
    for (i, (delivered, records)) in edges.into_iter().enumerate() {
        files.push(Delivery {
            rel: delivery_name(ACCOUNT, "us-east-1", &at(delivered), &format!("edge{i:04}")),
            records,
        });
    }
    for f in files {
        let path = dir.join(&f.rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_vec(&json!({ "Records": f.records })).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn duckdb(
    archive: &Path,
    sql: &str,
    work: &Path,
    name: &str,
) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let sql_file = work.join(format!("{name}.sql"));
    std::fs::write(&sql_file, sql).unwrap();
    let out = work.join(format!("{name}.duckdb.json"));
    let script = fixtures().join("../it/support/athena_duckdb.py");
    for args in [
        vec!["check".to_string(), sql_file.display().to_string()],
        vec![
            "run".to_string(),
            "--archive".to_string(),
            archive.display().to_string(),
            "--table".to_string(),
            TABLE.trim_start_matches("athena:").to_string(),
            "--sql".to_string(),
            sql_file.display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
        ],
    ] {
        let o = Command::new(python())
            .arg(&script)
            .args(&args)
            .output()
            .expect("python");
        assert!(
            o.status.success(),
            "athena_duckdb.py {}: {}{}",
            args[0],
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let doc = read_json(&out);
    let columns = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let rows = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .collect();
    (columns, rows)
}

/// The rows of an events frame, minus `source`, keyed for comparison.
fn comparable(dir: &Path, root: &str) -> Vec<Value> {
    let mut rows: Vec<Value> = read_json(&dir.join("events.json"))
        .as_array()
        .unwrap()
        .clone();
    for r in &mut rows {
        let src = r["source"].as_str().unwrap().to_string();
        // Both name the same delivery file: compare the path in the archive.
        let rel = src
            .split_once(root)
            .map(|(_, rel)| rel.trim_start_matches('/').to_string())
            .unwrap_or(src);
        r["source"] = json!(rel);
    }
    rows
}

fn semantics_case(extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    archive(&root);
    let window = ["--since", "2020-01-01", "--until", "2025-12-31"];

    // What the local reader keeps from the files.
    let local = tmp.path().join("local");
    let mut cmd = crate::support::kmsrot();
    cmd.args(["trail", "scan"])
        .arg(&root)
        .args(window)
        .args(extra)
        .arg("--out")
        .arg(&local);
    let (local_code, _, stderr) = run(&mut cmd);
    assert!(matches!(local_code, 0 | 3), "{stderr}");
    let local_cov = read_json(&local.join("coverage.json"));
    let local_rows = comparable(&local, &root.display().to_string());

    // The SQL kmsrot sends, as moto recorded it.
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    let (_, _, stderr) = scan(
        &moto.url,
        &tmp.path().join("capture"),
        &[&window[..], extra].concat(),
    );
    let sent = athena_queries(&moto);
    assert_eq!(sent.len(), 2, "{stderr}");
    let events_sql = &sent.iter().find(|q| q.1.contains("AS key_ref")).unwrap().1;
    let days_sql = &sent
        .iter()
        .find(|q| q.1.starts_with("SELECT DISTINCT"))
        .unwrap()
        .1;

    // ... run in DuckDB over the same files.
    let (ecols, erows) = duckdb(&root, events_sql, tmp.path(), "events");
    let (dcols, drows) = duckdb(&root, days_sql, tmp.path(), "days");
    assert_eq!(ecols, columns(COLUMNS));
    let id_at = ecols.iter().position(|c| c == "eventid").unwrap();
    let sql_ids: BTreeSet<String> = erows
        .iter()
        .map(|r| r[id_at].clone().unwrap_or_else(|| "-".into()))
        .collect();
    let local_ids: BTreeSet<String> = local_rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(
        sql_ids, local_ids,
        "the SQL returns exactly the events the reader keeps"
    );
    let trail = &local_cov["trail"];
    assert_eq!(
        erows.len() as u64,
        trail["events_kept"].as_u64().unwrap()
            + trail["duplicates"].as_u64().unwrap()
            + trail["cross_account_copies"].as_u64().unwrap(),
        "one SQL row per kept event and per copy the reader dropped"
    );
    assert!(!local_rows.is_empty());

    // Fed back through Athena's API, the rows give the same events frame.
    queue(
        &moto,
        vec![result_set(&ecols, &erows), result_set(&dcols, &drows)],
    );
    let athena = tmp.path().join("athena");
    let (code, _, stderr) = scan(&moto.url, &athena, &[&window[..], extra].concat());
    assert_eq!(code, local_code, "{stderr}");
    let athena_rows = comparable(&athena, "s3://trail-bucket");
    assert_eq!(athena_rows.len(), local_rows.len());
    for (a, l) in athena_rows.iter().zip(&local_rows) {
        assert_eq!(a, l);
    }
    let athena_cov = read_json(&athena.join("coverage.json"));
    assert_eq!(athena_cov["trail"]["duplicates"], trail["duplicates"]);
    // Every ledger Athena gives is the local one; the reader also has
    // ledgers for accounts and regions whose only files lie outside the
    // window's partitions, which Athena does not read.
    let ledgers = |c: &Value| -> BTreeMap<(String, String), Value> {
        c["trail"]["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    (
                        d["account_id"].as_str().unwrap().to_string(),
                        d["region"].as_str().unwrap().to_string(),
                    ),
                    d.clone(),
                )
            })
            .collect()
    };
    let (al, ll) = (ledgers(&athena_cov), ledgers(&local_cov));
    assert!(!al.is_empty());
    for (k, v) in &al {
        assert_eq!(Some(v), ll.get(k), "{k:?}");
    }
    for (k, v) in &ll {
        if !al.contains_key(k) {
            assert_eq!(v["days_with_logs"], json!([]), "{k:?}");
        }
    }
}

#[test]
fn athena_sql_on_duckdb_keeps_what_the_reader_keeps() {
    semantics_case(&[]);
}

#[test]
fn athena_sql_on_duckdb_keeps_what_the_reader_keeps_with_data_events() {
    semantics_case(&["--include-data-events"]);
}

#[test]
fn athena_sql_on_duckdb_keeps_what_the_reader_keeps_for_one_account_and_region() {
    semantics_case(&["--account", ACCOUNT, "--region", "us-east-1"]);
}

#[test]
fn collect_takes_athena_as_a_trail_source() {
    let moto = Moto::start();
    create_bucket(&moto, RESULTS_BUCKET);
    let (events, days) = window_rows();
    queue(
        &moto,
        vec![
            result_set(&columns(COLUMNS), &events),
            result_set(&columns(&["account", "region", "day"]), &days),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let mut cmd = moto.kmsrot();
    cmd.args(["--region", "us-east-1", "collect", "--out"])
        .arg(&bundle)
        .args(["--trail", TABLE])
        .args(["--athena-output", &format!("s3://{RESULTS_BUCKET}/kmsrot/")])
        .args([
            "--athena-partitions",
            "date=timestamp,account=account,region=region",
        ])
        .args(WINDOW);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("note: athena:cloudtrail.org_trail: 2 queries"),
        "{stderr}"
    );
    assert_eq!(events_by_id(&bundle).len(), 5);
    let cov = read_json(&bundle.join("coverage.json"));
    let src = &cov["trail"]["sources"][0];
    assert_eq!(src["kind"], "athena", "{cov:#}");
    assert_eq!(src["queries"].as_array().unwrap().len(), 2);
}
