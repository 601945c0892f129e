//! `kmsrot trail scan lookup`: CloudTrail event history through LookupEvents.
//!
//! moto has no LookupEvents, so these tests run the real binary against a
//! fixture server (`support::cloudtrail_fixture`) that speaks CloudTrail's
//! JSON 1.1 protocol and answers with AWS's documented example records. The
//! fixture records every request, so the tests check the request pattern AWS
//! requires: one lookup per event name, NextToken followed to the end, at
//! most 2 requests per second per region, backoff after ThrottlingException.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::support::cloudtrail_fixture::{
    CloudTrailFixture, FixtureEvent, FixtureOptions, LookupRequest,
};
use crate::support::{fixtures, kmsrot, read_json, run};

const ACCOUNT: &str = "111122223333";

/// The rotation-relevant names kept by default (`queries/trail_events.txt`).
fn kept_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/trail_events.txt"),
    )
    .expect("queries/trail_events.txt");
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn doc(name: &str) -> Value {
    read_json(&fixtures().join("lookup").join(name))
}

fn event_id(n: u32) -> String {
    format!("{n:08x}-1111-4000-8000-00000000{n:04x}")
}

/// A documented record as the event history of `region` holds it, `age`
/// before now. AWS reuses one eventID across its RotateKey examples and
/// dates them years back, so the copy gets its own id and a recent time.
fn placed(name: &str, id: u32, region: &str, at: DateTime<Utc>) -> FixtureEvent {
    let mut record = doc(name);
    record["eventID"] = json!(event_id(id));
    record["eventTime"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    record["awsRegion"] = json!(region);
    record["recipientAccountId"] = json!(ACCOUNT);
    FixtureEvent {
        region: region.to_string(),
        record,
    }
}

struct History {
    events: Vec<FixtureEvent>,
    /// id → event name of what a scan of the last 90 days keeps.
    kept: BTreeMap<String, String>,
}

fn history(now: DateTime<Utc>) -> History {
    let ago = |days: i64| now - Duration::days(days);
    let (use1, euw1) = ("us-east-1", "eu-west-1");
    let events = vec![
        placed("kms-dev-guide.ct-rotatekey.1.json", 1, use1, ago(80)),
        placed("current-docs.ct-rotatekey.1.json", 2, use1, ago(20)),
        placed("current-docs.ct-rotatekey.1.json", 3, use1, ago(10)),
        placed("current-docs.ct-rotatekeyondemand.1.json", 4, use1, ago(9)),
        placed("current-docs.ct-enablekeyrotation.1.json", 5, use1, ago(40)),
        placed(
            "kms-dev-guide.ct-disable-key-rotation.1.json",
            6,
            use1,
            ago(35),
        ),
        placed("current-docs.ct-listkeyrotations.1.json", 7, use1, ago(5)),
        placed("kms-dev-guide.ct-createkey.1.json", 8, use1, ago(60)),
        // Older than event history keeps: the API never returns it.
        placed("kms-dev-guide.ct-rotatekey.1.json", 9, use1, ago(120)),
        // Decrypt is not a looked-up name.
        placed("kms-dev-guide.ct-decrypt.5.json", 10, use1, ago(3)),
        placed("current-docs.ct-rotatekey.2.json", 11, euw1, ago(14)),
        placed(
            "current-docs.ct-enablekeyrotation.1.json",
            12,
            euw1,
            ago(30),
        ),
    ];
    let kept = [
        (1, "RotateKey"),
        (2, "RotateKey"),
        (3, "RotateKey"),
        (4, "RotateKeyOnDemand"),
        (5, "EnableKeyRotation"),
        (6, "DisableKeyRotation"),
        (7, "ListKeyRotations"),
        (8, "CreateKey"),
        (11, "RotateKey"),
        (12, "EnableKeyRotation"),
    ]
    .into_iter()
    .map(|(id, name)| (event_id(id), name.to_string()))
    .collect();
    History { events, kept }
}

fn by_region(requests: &[LookupRequest], region: &str) -> Vec<LookupRequest> {
    let mut v: Vec<LookupRequest> = requests
        .iter()
        .filter(|r| r.region == region)
        .cloned()
        .collect();
    v.sort_by_key(|r| r.at);
    v
}

fn trail_coverage(dir: &Path) -> Value {
    let c = read_json(&dir.join("coverage.json"));
    if c.get("trail").is_some() {
        c["trail"].clone()
    } else {
        c
    }
}

#[test]
fn lookup_asks_each_kept_name_paced_paged_and_retried() {
    let now = Utc::now();
    let h = history(now);
    let fixture = CloudTrailFixture::start(
        h.events.clone(),
        FixtureOptions {
            account: ACCOUNT.into(),
            // Three RotateKey events in us-east-1 take two pages.
            page_size: 2,
            throttle_once: vec![("us-east-1".into(), "EnableKeyRotation".into())],
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lookup");
    // The window starts 200 days back: LookupEvents can only give 90.
    let since = (now - Duration::days(200))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut cmd = kmsrot();
    cmd.args(["--endpoint-url", &fixture.url])
        .args(["--region", "us-east-1", "--region", "eu-west-1"])
        .args(["trail", "scan", "lookup", "--since", &since, "--out"])
        .arg(&out);
    let (code, _stdout, stderr) = run(&mut cmd);
    assert_eq!(
        code, 3,
        "days before LookupEvents' 90 days are missing evidence\n{stderr}"
    );

    // Rows: every kept event of the last 90 days, from both regions.
    let events = read_json(&out.join("events.json"));
    let got: BTreeMap<String, String> = events
        .as_array()
        .expect("events.json is an array")
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_string(),
                r["event_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, h.kept);

    let requests = fixture.requests();
    let names = kept_names();
    for region in ["us-east-1", "eu-west-1"] {
        let reqs = by_region(&requests, region);
        // One lookup per kept name: each first page asked once (twice for
        // the throttled one), by EventName, with MaxResults 50.
        let mut first_pages: BTreeMap<String, usize> = BTreeMap::new();
        for r in reqs.iter().filter(|r| r.next_token.is_none()) {
            assert_eq!(r.attribute_key, "EventName");
            assert_eq!(r.max_results, Some(50));
            *first_pages.entry(r.attribute_value.clone()).or_default() += 1;
        }
        let asked: BTreeSet<String> = first_pages.keys().cloned().collect();
        assert_eq!(asked, names, "{region}: one lookup per kept event name");
        for (name, n) in &first_pages {
            let want = if region == "us-east-1" && name == "EnableKeyRotation" {
                2
            } else {
                1
            };
            assert_eq!(*n, want, "{region} {name}");
        }

        // The 90-day clamp: StartTime is now - 90 days, not the window's.
        let earliest = (now - Duration::days(90)).timestamp() as f64;
        for r in &reqs {
            let start = r.start_time.expect("StartTime sent");
            assert!(
                (start - earliest).abs() < 120.0,
                "{region}: StartTime {start}"
            );
            let end = r.end_time.expect("EndTime sent");
            assert!(
                (end - now.timestamp() as f64).abs() < 120.0,
                "{region}: EndTime {end}"
            );
        }

        // At most 2 requests in any second. kmsrot sends them 500 ms apart;
        // the margin is for arrival jitter on a loaded machine, far from the
        // few milliseconds an unpaced client takes for three requests.
        for w in reqs.windows(3) {
            let span = w[2].at - w[0].at;
            assert!(
                span >= StdDuration::from_millis(800),
                "{region}: 3 requests within {span:?}"
            );
        }
    }

    // Paging: the us-east-1 RotateKey lookup followed its NextToken.
    let use1 = by_region(&requests, "us-east-1");
    let rotate: Vec<&LookupRequest> = use1
        .iter()
        .filter(|r| r.attribute_value == "RotateKey")
        .collect();
    assert_eq!(rotate.len(), 2, "{rotate:?}");
    assert_eq!(rotate[1].next_token.as_deref(), Some("fixture-page-2"));
    assert_eq!(rotate[0].events_returned + rotate[1].events_returned, 3);

    // Backoff: the retry of the throttled lookup waited at least a second.
    let enable: Vec<&LookupRequest> = use1
        .iter()
        .filter(|r| r.attribute_value == "EnableKeyRotation")
        .collect();
    assert_eq!(enable.len(), 2);
    assert!(enable[0].throttled && !enable[1].throttled);
    assert!(
        enable[1].at - enable[0].at >= StdDuration::from_millis(800),
        "retried after {:?}",
        enable[1].at - enable[0].at
    );

    // Coverage: what LookupEvents cannot see is said, nothing failed, and
    // the days before its 90 are missing.
    let cov = trail_coverage(&out);
    let src = &cov["sources"][0];
    assert_eq!(src["kind"], "lookup");
    assert_eq!(src["source"], "lookup");
    let served: usize = requests.iter().map(|r| r.events_returned).sum();
    assert_eq!(src["records_read"], served as u64);
    assert!(src["errors"].as_array().unwrap().is_empty(), "{src:#}");
    let limits = src["limits"].to_string();
    assert!(limits.contains("90 days"), "{limits}");
    for region in ["us-east-1", "eu-west-1"] {
        let d = cov["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["account_id"] == ACCOUNT && d["region"] == region)
            .unwrap_or_else(|| panic!("no days for {region}: {cov:#}"));
        let missing = d["days_missing"].as_array().unwrap();
        let with = d["days_with_logs"].as_array().unwrap();
        // 200 days asked: the 89 full days before today and today are
        // covered; the day the 90 days begin, only partly kept, is not
        // (one either way in case the run crosses midnight).
        assert!(
            (110..=112).contains(&missing.len()),
            "{region}: {}",
            missing.len()
        );
        assert!((89..=91).contains(&with.len()), "{region}: {}", with.len());
    }
}

#[test]
fn lookup_with_data_events_asks_once_per_region_by_event_source() {
    let now = Utc::now();
    let h = history(now);
    let fixture = CloudTrailFixture::start(
        h.events,
        FixtureOptions {
            account: ACCOUNT.into(),
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lookup");
    let since = (now - Duration::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut cmd = kmsrot();
    cmd.args(["--endpoint-url", &fixture.url, "--region", "us-east-1"])
        .args(["trail", "scan", "lookup", "--include-data-events"])
        .args(["--since", &since, "--out"])
        .arg(&out);
    let (code, _stdout, stderr) = run(&mut cmd);
    assert_eq!(
        code, 0,
        "the last 30 days are whole in event history\n{stderr}"
    );

    let requests = fixture.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].attribute_key, "EventSource");
    assert_eq!(requests[0].attribute_value, "kms.amazonaws.com");

    // Every KMS event of the window, the failed Decrypt included.
    let events = read_json(&out.join("events.json"));
    let mut names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Decrypt",
            "ListKeyRotations",
            "RotateKey",
            "RotateKey",
            "RotateKeyOnDemand"
        ]
    );
    let cov = trail_coverage(&out);
    assert_eq!(cov["complete"], true, "{cov:#}");
}

#[test]
fn a_denied_region_is_recorded_once_and_the_others_are_read() {
    let now = Utc::now();
    let h = history(now);
    let fixture = CloudTrailFixture::start(
        h.events,
        FixtureOptions {
            account: ACCOUNT.into(),
            deny_regions: vec!["eu-west-1".into()],
            ..FixtureOptions::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lookup");
    let since = (now - Duration::days(7))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    // A closed window, so a region without evidence shows each of its days.
    let until = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut cmd = kmsrot();
    cmd.args(["--endpoint-url", &fixture.url])
        .args(["--region", "us-east-1", "--region", "eu-west-1"])
        .args([
            "trail", "scan", "lookup", "--since", &since, "--until", &until,
        ])
        .arg("--out")
        .arg(&out);
    let (code, _stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("AccessDeniedException"), "{stderr}");

    let requests = fixture.requests();
    assert_eq!(
        by_region(&requests, "eu-west-1").len(),
        1,
        "a denial stops the region's lookups"
    );
    assert_eq!(
        by_region(&requests, "us-east-1")
            .iter()
            .filter(|r| r.next_token.is_none())
            .count(),
        kept_names().len()
    );

    // us-east-1's events of the last 7 days are still there.
    let events = read_json(&out.join("events.json"));
    let mut names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ListKeyRotations"]);

    let cov = trail_coverage(&out);
    let errors = cov["sources"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors[0].as_str().unwrap();
    assert!(
        e.contains("eu-west-1") && e.contains("AccessDeniedException"),
        "{e}"
    );
    let euw1 = cov["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["region"] == "eu-west-1")
        .expect("eu-west-1 has a day ledger");
    assert!(euw1["days_with_logs"].as_array().unwrap().is_empty());
    assert_eq!(euw1["days_missing"].as_array().unwrap().len(), 8);
}

/// `kmsrot diagnose` reads one key's history through the same client as
/// `trail scan lookup` (issue 15): one ResourceName lookup for the key's ARN,
/// its window the last 90 days, a throttled page retried after a backoff, and
/// a denied region a gap rather than an error.
#[tokio::test]
async fn diagnose_lookup_is_clamped_paced_and_retried() {
    let now = Utc::now();
    let region = "us-west-2";
    let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let ago = |days: i64| now - Duration::days(days);
    let mut other_key = placed("current-docs.ct-rotatekey.1.json", 4, region, ago(5));
    other_key.record["resources"][0]["ARN"] =
        json!("arn:aws:kms:us-west-2:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321");
    let fixture = CloudTrailFixture::start(
        vec![
            placed("current-docs.ct-rotatekey.1.json", 1, region, ago(20)),
            placed(
                "current-docs.ct-enablekeyrotation.1.json",
                2,
                region,
                ago(40),
            ),
            // Older than LookupEvents keeps: never asked for.
            placed("current-docs.ct-rotatekey.1.json", 3, region, ago(120)),
            other_key,
        ],
        FixtureOptions {
            account: ACCOUNT.into(),
            throttle_once: vec![(region.into(), arn.into())],
            deny_regions: vec!["eu-west-1".into()],
            ..FixtureOptions::default()
        },
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .endpoint_url(&fixture.url)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;

    let (rows, gaps) = kmsrot::trail::lookup::key_events(&config, region, arn, now).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    let ids: BTreeSet<String> = rows.iter().filter_map(|r| r.event_id.clone()).collect();
    assert_eq!(ids, BTreeSet::from([event_id(1), event_id(2)]));

    let requests = fixture.requests();
    assert_eq!(requests.len(), 2, "one throttled page, then its retry");
    assert!(requests[0].throttled);
    assert!(requests[1].at - requests[0].at >= StdDuration::from_millis(900));
    for r in &requests {
        assert_eq!(
            (r.attribute_key.as_str(), r.attribute_value.as_str()),
            ("ResourceName", arn)
        );
        let start = r.start_time.expect("a start time");
        assert!((start - ago(90).timestamp() as f64).abs() < 5.0, "{start}");
    }

    let (rows, gaps) = kmsrot::trail::lookup::key_events(&config, "eu-west-1", arn, now).await;
    assert!(rows.is_empty());
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].contains("AccessDeniedException"), "{gaps:?}");
}
