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
