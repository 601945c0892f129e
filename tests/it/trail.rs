//! `kmsrot trail scan` and its reader, on real CloudTrail from
//! `tests/fixtures/cloudtrail/` (each folder has its SOURCE.txt).

use std::io::Write;
use std::path::{Path, PathBuf};

use kmsrot::trail::reader::{parse_record, scan_bytes, FileScan, ReadOptions, Verdict};
use kmsrot::trail::EventRow;

use crate::kmsrot_snapshot;
use crate::support::snapshot::regex_escape;
use crate::support::{fixtures, kmsrot, read_json, run};

fn ct(rel: &str) -> PathBuf {
    fixtures().join("cloudtrail").join(rel)
}

fn scan_file(rel: &str) -> FileScan {
    let path = ct(rel);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    scan_bytes(&path.display().to_string(), &data, &ReadOptions::default())
}

/// The single kept row of a documentation example.
fn one_row(rel: &str) -> EventRow {
    let s = scan_file(rel);
    assert_eq!(s.verdict, Verdict::Read, "{rel}");
    assert_eq!(s.rows.len(), 1, "{rel}");
    s.rows.into_iter().next().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const MIRROR: &str = "aws-docs-examples/current-docs-mirror";
const KMS_GUIDE: &str = "aws-docs-examples/awsdocs-aws-kms-developer-guide";

#[test]
fn rotate_key_old_shape_is_an_automatic_rotation() {
    // eventVersion 1.05: only serviceEventDetails.keyId, no resources, no
    // rotationType; the ARN is completed from awsRegion and the account.
    let r = one_row(&format!("{KMS_GUIDE}/ct-rotatekey.1.json"));
    assert_eq!(r.event_name.as_deref(), Some("RotateKey"));
    assert_eq!(r.event_type.as_deref(), Some("AwsServiceEvent"));
    assert_eq!(r.rotation_type.as_deref(), Some("AUTOMATIC"));
    let id = r.key_id.clone().unwrap();
    assert_eq!(
        r.key_arn.as_deref(),
        Some(
            format!(
                "arn:aws:kms:{}:{}:key/{id}",
                r.aws_region.as_deref().unwrap(),
                r.account_id.as_deref().unwrap()
            )
            .as_str()
        )
    );
    assert_eq!(r.invoked_by.as_deref(), Some("AWS Internal"));
    assert!(r.principal_arn.is_none());

    let r = one_row(
        "aws-docs-examples/awsdocs-aws-cloudtrail-user-guide/non-api-aws-service-events.1.json",
    );
    assert_eq!(r.rotation_type.as_deref(), Some("AUTOMATIC"));
}

#[test]
fn rotate_key_new_shape_carries_its_rotation_type() {
    let r = one_row(&format!("{MIRROR}/ct-rotatekey.1.json"));
    assert_eq!(r.rotation_type.as_deref(), Some("AUTOMATIC"));
    assert_eq!(
        r.key_arn.as_deref(),
        Some(format!("arn:aws:kms:us-west-2:111122223333:key/{KEY}").as_str())
    );
    assert_eq!(r.key_id.as_deref(), Some(KEY));
    assert_eq!(r.account_id.as_deref(), Some("111122223333"));
    // The same example for imported key material is an on-demand rotation
    // logged as a service event.
    let r = one_row(&format!("{MIRROR}/ct-rotatekey.2.json"));
    assert_eq!(r.rotation_type.as_deref(), Some("ON_DEMAND"));
}

#[test]
fn rotate_key_on_demand_and_rotation_settings() {
    let r = one_row(&format!("{MIRROR}/ct-rotatekeyondemand.1.json"));
    assert_eq!(r.rotation_type.as_deref(), Some("ON_DEMAND"));
    assert_eq!(
        r.principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/Alice")
    );
    assert_eq!(r.principal_type.as_deref(), Some("IAMUser"));
    assert_eq!(
        r.request_id.as_deref(),
        Some("9e1dee86-eb84-42fd-8f25-e3fc7dbb32c8")
    );

    let r = one_row(&format!("{MIRROR}/ct-enablekeyrotation.1.json"));
    assert_eq!(r.event_name.as_deref(), Some("EnableKeyRotation"));
    assert_eq!(r.rotation_period_days, Some(180));
    assert_eq!(r.rotation_type, None);

    let r = one_row(&format!("{KMS_GUIDE}/ct-disable-key-rotation.1.json"));
    assert_eq!(r.event_name.as_deref(), Some("DisableKeyRotation"));

    let r = one_row(&format!("{MIRROR}/ct-listkeyrotations.1.json"));
    assert_eq!(r.event_name.as_deref(), Some("ListKeyRotations"));
    assert_eq!(
        r.event_time.unwrap().to_rfc3339(),
        "2025-05-21T05:42:35+00:00"
    );
}

#[test]
fn get_key_rotation_status_example_is_corrupt_as_published_and_read_when_fixed() {
    // AWS published it without the comma after "eventCategory": "Management".
    let rel = format!("{MIRROR}/ct-getkeyrotationstatus.1.json");
    let s = scan_file(&rel);
    let Verdict::Corrupt(reason) = &s.verdict else {
        panic!("{:?}", s.verdict)
    };
    assert!(reason.starts_with("invalid JSON at byte 1125"), "{reason}");
    let fixed = std::fs::read_to_string(ct(&rel)).unwrap().replace(
        "\"eventCategory\": \"Management\"\n",
        "\"eventCategory\": \"Management\",\n",
    );
    let s = scan_bytes("fixed.json", fixed.as_bytes(), &ReadOptions::default());
    assert_eq!(s.verdict, Verdict::Read);
    assert_eq!(
        s.rows[0].event_name.as_deref(),
        Some("GetKeyRotationStatus")
    );
    // resources[] names the key in us-west-2 although the call went to
    // us-east-1: the ARN as logged wins over a completed id.
    assert_eq!(
        s.rows[0].key_arn.as_deref(),
        Some(format!("arn:aws:kms:us-west-2:111122223333:key/{KEY}").as_str())
    );
}

#[test]
fn kms_failures_are_kept_whatever_their_name() {
    let r = one_row(&format!("{KMS_GUIDE}/ct-decrypt.5.json"));
    assert_eq!(r.event_name.as_deref(), Some("Decrypt"));
    assert_eq!(r.error_code.as_deref(), Some("KMSInvalidStateException"));
    assert!(r.error_message.is_some());
    // Plain data-plane calls are not kept by default...
    let s = scan_file(&format!("{KMS_GUIDE}/ct-decrypt.1.json"));
    assert!(s.rows.is_empty());
    // ...and are with --include-data-events.
    let path = ct(&format!("{KMS_GUIDE}/ct-decrypt.1.json"));
    let opts = ReadOptions {
        include_data_events: true,
        ..ReadOptions::default()
    };
    let s = scan_bytes("d.json", &std::fs::read(path).unwrap(), &opts);
    assert_eq!(s.rows.len(), 1);
}

#[test]
fn invalid_json_doc_examples_are_corrupt_with_a_reason() {
    let invalid = [
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/ct-decrypt-enclave.1.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/ct-decrypt.2.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/ct-encrypt.1.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/ct-replicate-key.1.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/services-cloudtrail.1.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/services-cloudtrail.2.json",
        "aws-docs-examples/awsdocs-aws-kms-developer-guide/services-cloudtrail.3.json",
        "aws-docs-examples/awsdocs-aws-cloudtrail-user-guide/cloudtrail-event-reference.1.json",
        "aws-docs-examples/awsdocs-aws-cloudtrail-user-guide/cloudtrail-log-file-examples.6.json",
        "aws-docs-examples/current-docs-mirror/ct-getkeyrotationstatus.1.json",
    ];
    for rel in invalid {
        let s = scan_file(rel);
        match &s.verdict {
            Verdict::Corrupt(reason) => {
                assert!(reason.contains("invalid JSON"), "{rel}: {reason}");
                assert!(!reason.contains('\n'), "{rel}: one line: {reason}");
            }
            v => panic!("{rel}: {v:?}"),
        }
    }
}

#[test]
fn every_valid_doc_example_reads() {
    let mut n = 0;
    for dir in [
        KMS_GUIDE,
        MIRROR,
        "aws-docs-examples/awsdocs-aws-cloudtrail-user-guide",
    ] {
        for e in std::fs::read_dir(ct(dir)).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                continue;
            }
            let s = scan_bytes(
                &path.display().to_string(),
                text.as_bytes(),
                &ReadOptions::default(),
            );
            // The CloudTrail Insights examples have no eventName, eventSource
            // or eventID at the top; everything else is an event.
            if text.contains("AwsCloudTrailInsight") {
                continue;
            }
            assert_eq!(s.verdict, Verdict::Read, "{}", path.display());
            n += 1;
        }
    }
    assert!(n > 70, "{n}");
}

#[test]
fn invictus_s3_files_plain_gzip_and_multi_member() {
    let name = "218007301253_CloudTrail_us-east-1_20230710T1200Z_x9kHmzMa7cx6l9wM.json";
    let plain = std::fs::read(ct(&format!("invictus-ir-aws_dataset/{name}"))).unwrap();
    let opts = ReadOptions {
        include_data_events: true,
        ..ReadOptions::default()
    };
    let a = scan_bytes(name, &plain, &opts);
    assert_eq!(a.verdict, Verdict::Read);
    assert_eq!(a.records_read, 132);
    assert_eq!(
        a.rows.len(),
        16,
        "all KMS events, with --include-data-events"
    );
    // The file name's account and delivery day.
    assert_eq!(
        a.log_days,
        vec![(
            "218007301253".to_string(),
            "us-east-1".to_string(),
            chrono::NaiveDate::from_ymd_opt(2023, 7, 10).unwrap()
        )]
    );

    let gz_name = format!("{name}.gz");
    let zipped = gz(&plain);
    let b = scan_bytes(&gz_name, &zipped, &opts);
    assert_eq!(b.verdict, Verdict::Read);
    assert_eq!(b.bytes, zipped.len() as u64);
    assert_eq!((b.records_read, b.rows.len()), (132, 16));

    // Two gzip members, split in the middle of a record.
    let mid = plain.len() / 2;
    let mut multi = gz(&plain[..mid]);
    multi.extend(gz(&plain[mid..]));
    let c = scan_bytes(&gz_name, &multi, &opts);
    assert_eq!(c.verdict, Verdict::Read);
    assert_eq!((c.records_read, c.rows.len()), (132, 16));

    // Truncated: what came before the cut is kept, and the reason says so.
    // The KMS records sit at the end of this file; put them first.
    let mut doc: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    doc["Records"].as_array_mut().unwrap().reverse();
    let zipped = gz(&serde_json::to_vec(&doc).unwrap());
    let cut = &zipped[..zipped.len() * 3 / 4];
    let d = scan_bytes(&gz_name, cut, &opts);
    let Verdict::Corrupt(reason) = &d.verdict else {
        panic!("{:?}", d.verdict)
    };
    assert!(reason.contains("truncated or damaged gzip"), "{reason}");
    assert!(
        d.records_read > 50 && d.records_read < 132,
        "{}",
        d.records_read
    );
    assert_eq!(d.rows.len(), 16, "the KMS records before the cut are kept");
}

#[test]
fn stratus_arrays_plaso_lookup_lines_and_otrf_ndjson() {
    let s = scan_file("stratus-red-team/aws.impact.bedrock-invoke-model.json");
    assert_eq!(s.verdict, Verdict::Read);
    assert_eq!(s.records_read, 15);
    // Not AWS-named: the days come from the records themselves.
    assert_eq!(s.log_days.len(), 1);
    assert_eq!(s.log_days[0].0, "494659789341");

    let s = scan_file("plaso-test-data/aws_cloudtrail.jsonl");
    assert_eq!(s.verdict, Verdict::Read);
    assert_eq!(s.records_read, 6);

    // Logstash dropped eventTime; @timestamp places the records in time.
    let s = scan_file("otrf-security-datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    assert_eq!(s.verdict, Verdict::Read);
    assert_eq!(s.records_read, 103);
    assert!(!s.log_days.is_empty());
    let opts = ReadOptions {
        include_data_events: true,
        ..ReadOptions::default()
    };
    let text = std::fs::read_to_string(ct(
        "otrf-security-datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
    ))
    .unwrap();
    let line = text
        .lines()
        .next()
        .unwrap()
        .replace("ec2.amazonaws.com", "kms.amazonaws.com");
    let row = parse_record(&line, "otrf", &opts).unwrap().unwrap();
    assert!(row.event_time.is_some(), "from @timestamp");
}

#[test]
fn aws_cli_lookup_events_output_reads() {
    // `aws cloudtrail lookup-events` prints {"Events":[...]} with each record
    // as a JSON string in CloudTrailEvent, like the API.
    let text = std::fs::read_to_string(ct("plaso-test-data/aws_cloudtrail.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let doc = serde_json::json!({ "Events": events, "NextToken": "abc" });
    let s = scan_bytes(
        "lookup.json",
        serde_json::to_string_pretty(&doc).unwrap().as_bytes(),
        &ReadOptions::default(),
    );
    assert_eq!(s.verdict, Verdict::Read);
    assert_eq!(s.records_read, 6);

    // A kept event inside CloudTrailEvent is found.
    let rotate =
        std::fs::read_to_string(ct(&format!("{MIRROR}/ct-rotatekeyondemand.1.json"))).unwrap();
    let inner: serde_json::Value = serde_json::from_str(&rotate).unwrap();
    let doc = serde_json::json!({"Events": [{"EventId": "x", "EventName": "RotateKeyOnDemand",
        "CloudTrailEvent": inner.to_string()}]});
    let s = scan_bytes(
        "lookup.json",
        doc.to_string().as_bytes(),
        &ReadOptions::default(),
    );
    assert_eq!(s.rows.len(), 1);
    assert_eq!(s.rows[0].rotation_type.as_deref(), Some("ON_DEMAND"));
}

#[test]
fn digests_and_other_json_are_skipped_not_corrupt() {
    let digest = r#"{"awsAccountId":"111122223333","digestStartTime":"2025-01-01T00:00:00Z",
        "digestEndTime":"2025-01-01T01:00:00Z","digestPublicKeyFingerprint":"ab","logFiles":[]}"#;
    for (label, text) in [
        (
            "x/111122223333_CloudTrail-Digest_us-east-1_t_20250101T0100Z.json.gz",
            digest,
        ),
        ("digest.json", digest),
        ("package.json", r#"{"name":"x","version":"1.0.0"}"#),
        ("list.json", r#"[{"id":1},{"id":2}]"#),
    ] {
        let s = scan_bytes(label, text.as_bytes(), &ReadOptions::default());
        assert!(
            matches!(s.verdict, Verdict::Skipped(_)),
            "{label}: {:?}",
            s.verdict
        );
    }
}

#[test]
fn escaped_keys_and_values_and_nested_error_codes() {
    let rotate =
        std::fs::read_to_string(ct(&format!("{MIRROR}/ct-rotatekeyondemand.1.json"))).unwrap();
    // Escape every letter of the kept fields' names and values: the bytes
    // no longer spell kms.amazonaws.com, eventName or RotateKeyOnDemand.
    let escaped = rotate
        .replace("\"eventName\"", r#""\u0065vent\u004eame""#)
        .replace("\"RotateKeyOnDemand\"", r#""\u0052otateKeyOnDemand""#)
        .replace("\"kms.amazonaws.com\"", r#""kms\u002Eamazonaws\u002Ecom""#);
    assert!(!escaped.contains("kms.amazonaws.com"));
    let s = scan_bytes(
        "e.json",
        format!(r#"{{"Records":[{escaped}]}}"#).as_bytes(),
        &ReadOptions::default(),
    );
    assert_eq!(s.rows.len(), 1, "{:?}", s.verdict);
    assert_eq!(s.rows[0].event_name.as_deref(), Some("RotateKeyOnDemand"));

    // errorCode inside requestParameters is not the call's outcome.
    let decrypt = std::fs::read_to_string(ct(&format!("{KMS_GUIDE}/ct-decrypt.1.json"))).unwrap();
    let nested = decrypt.replacen(
        "\"requestParameters\": {",
        "\"requestParameters\": {\"errorCode\": \"AccessDenied\", ",
        1,
    );
    assert!(nested.contains("\"errorCode\": \"AccessDenied\""));
    let s = scan_bytes("n.json", nested.as_bytes(), &ReadOptions::default());
    assert_eq!(s.verdict, Verdict::Read);
    assert!(s.rows.is_empty());
}

/// A scratch folder with copies of fixture files.
fn folder(files: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in files {
        let to = dir.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src, to).unwrap();
    }
    dir
}

#[test]
fn scan_deduplicates_across_files_and_writes_coverage() {
    let name = "218007301253_CloudTrail_us-east-1_20230710T1205Z_nx9Yx1FyJdBaTqKj.json";
    let src = ct(&format!("invictus-ir-aws_dataset/{name}"));
    let dir = folder(&[(&format!("a/{name}"), &src), (&format!("b/{name}"), &src)]);
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(kmsrot()
        .args([
            "--output",
            "json",
            "trail",
            "scan",
            "--include-data-events",
            "--out",
        ])
        .arg(out.path())
        .arg(dir.path()));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let cov = read_json(&out.path().join("coverage.json"));
    assert_eq!(cov["complete"], true);
    let t = &cov["trail"];
    assert_eq!(t["events_read"], 20);
    assert_eq!(t["events_kept"], 3);
    assert_eq!(t["duplicates"], 3);
    assert_eq!(t["sources"][0]["files_read"], 2);
    assert_eq!(t["days"][0]["days_with_logs"][0], "2023-07-10");
    let events = read_json(&out.path().join("events.json"));
    assert_eq!(events.as_array().unwrap().len(), 3);
    // The copy under a/ comes first in path order and is the one kept.
    assert!(events[0]["source"].as_str().unwrap().contains("/a/"));
    let csv = std::fs::read_to_string(out.path().join("events.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(out.path().join("events.parquet").exists());
}

#[test]
fn corrupt_files_and_missing_days_exit_3() {
    let good = "218007301253_CloudTrail_us-east-1_20230710T1205Z_nx9Yx1FyJdBaTqKj.json";
    let dir = folder(&[
        (good, &ct(&format!("invictus-ir-aws_dataset/{good}"))),
        ("bad.json", &ct(&format!("{KMS_GUIDE}/ct-decrypt.2.json"))),
    ]);
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "--out"])
        .arg(out.path())
        .arg(dir.path()));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("bad.json: invalid JSON at byte 542"),
        "{stderr}"
    );

    // One good file, but the window asks for three days.
    let dir = folder(&[(good, &ct(&format!("invictus-ir-aws_dataset/{good}")))]);
    let (code, _, stderr) = run(kmsrot()
        .args([
            "trail",
            "scan",
            "--since",
            "2023-07-09",
            "--until",
            "2023-07-11",
            "--force",
            "--out",
        ])
        .arg(out.path())
        .arg(dir.path()));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("no CloudTrail log for account 218007301253 region us-east-1 on 2 day(s): 2023-07-09, 2023-07-11"),
        "{stderr}"
    );
}

#[test]
fn filters_by_time_region_account_and_events_file() {
    let dir = folder(&[
        (
            "enable.json",
            &ct(&format!("{MIRROR}/ct-enablekeyrotation.1.json")),
        ),
        (
            "ondemand.json",
            &ct(&format!("{MIRROR}/ct-rotatekeyondemand.1.json")),
        ),
        (
            "describe.json",
            &ct(&format!("{KMS_GUIDE}/ct-describekey.1.json")),
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let count = |extra: &[&str]| {
        let (code, stdout, stderr) = run(kmsrot()
            .args(["trail", "scan", "--force", "--out"])
            .arg(out.path())
            .arg(dir.path())
            .args(extra));
        assert!(code == 0 || code == 3, "{stdout}\n{stderr}");
        read_json(&out.path().join("coverage.json"))["trail"]["events_kept"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(&[]), 2);
    // EnableKeyRotation is from 2020, RotateKeyOnDemand from 2024.
    assert_eq!(count(&["--since", "2024-01-01"]), 1);
    assert_eq!(count(&["--until", "2020-07-25"]), 1);
    assert_eq!(count(&["--region", "us-west-2"]), 1);
    assert_eq!(count(&["--account", "999999999999"]), 0);
    // Outside --out, which --force empties.
    let lists = tempfile::tempdir().unwrap();
    let list = lists.path().join("extra.txt");
    std::fs::write(&list, "# more\nDescribeKey  # who looked\n").unwrap();
    assert_eq!(count(&["--events-file", list.to_str().unwrap()]), 3);
    std::fs::write(&list, "Describe Key\n").unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "--out"])
        .arg(out.path())
        .arg(dir.path())
        .arg("--events-file")
        .arg(&list));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`Describe Key` is not an event name"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "--since", "yesterday", "x", "--out"])
        .arg(out.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("neither RFC 3339"), "{stderr}");
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "/no/such/dir", "--out"])
        .arg(out.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/no/such/dir"), "{stderr}");
}

#[test]
fn summary_snapshot_on_the_rotation_examples() {
    let out = tempfile::tempdir().unwrap();
    let dir = ct(MIRROR);
    let fixtures = regex_escape(&dir.display().to_string());
    kmsrot_snapshot!(
        "summary_snapshot_on_the_rotation_examples",
        kmsrot()
            .args(["trail", "scan", "--out"])
            .arg(out.path())
            .arg(&dir),
        [(fixtures.as_str(), "[FIXTURES]")]
    );
    kmsrot_snapshot!(
        "scan_of_a_missing_path",
        kmsrot()
            .args(["trail", "scan", "--out"])
            .arg(out.path().join("out"))
            .arg(out.path().join("no-such-logs"))
    );
}

#[test]
fn gzipped_archive_layout_reads_whole_days_and_flags_a_truncated_file() {
    // Two days of an S3-layout archive, each file gzipped as CloudTrail
    // delivers it; the records keep their own times.
    let src = ct("invictus-ir-aws_dataset/218007301253_CloudTrail_us-east-1_20230710T1205Z_nx9Yx1FyJdBaTqKj.json");
    let plain = std::fs::read(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let day = |d: &str, name: &str, bytes: &[u8]| {
        let p = dir.path().join(format!(
            "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/{d}"
        ));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(name), bytes).unwrap();
    };
    day(
        "10",
        "218007301253_CloudTrail_us-east-1_20230710T1205Z_a.json.gz",
        &gz(&plain),
    );
    day(
        "11",
        "218007301253_CloudTrail_us-east-1_20230711T0005Z_b.json.gz",
        &gz(&plain),
    );
    let out = tempfile::tempdir().unwrap();
    let scan = || {
        run(kmsrot()
            .args([
                "trail",
                "scan",
                "--include-data-events",
                "--since",
                "2023-07-10",
                "--until",
                "2023-07-11",
                "--force",
                "--out",
            ])
            .arg(out.path())
            .arg(dir.path()))
    };
    let (code, stdout, stderr) = scan();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let cov = read_json(&out.path().join("coverage.json"));
    assert_eq!(
        cov["trail"]["days"][0]["days_with_logs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        cov["trail"]["duplicates"], 3,
        "the same records were delivered twice"
    );

    let z = gz(&plain);
    day(
        "11",
        "218007301253_CloudTrail_us-east-1_20230711T0010Z_c.json.gz",
        &z[..z.len() / 2],
    );
    let (code, _, stderr) = scan();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("_c.json.gz: truncated or damaged gzip data"),
        "{stderr}"
    );
    let cov = read_json(&out.path().join("coverage.json"));
    assert_eq!(cov["trail"]["sources"][0]["files_read"], 2);
    assert_eq!(
        cov["trail"]["sources"][0]["files_corrupt"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
