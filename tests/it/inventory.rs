//! `kmsrot inventory` against moto, through the real binary.
//!
//! Each test starts its own moto (and proxy, where it needs one) so nextest
//! runs them in parallel. Where moto differs from AWS, the test asserts what
//! kmsrot must do against AWS and names moto's gap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_sdk_kms::types::OriginType;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use kmsrot::frames::{Kind, Schema, KEYS, ROTATIONS};

use crate::assert_seen;
use crate::support::proxy::{Proxy, Rule};
use crate::support::seed::{self, KeySpecification, SeededKey};
use crate::support::snapshot::Seen;
use crate::support::{kmsrot, read_json, run, Moto};

/// One finished `kmsrot inventory` run and the folder it wrote.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Run {
    fn keys(&self) -> Vec<Value> {
        array(read_json(&self.dir.path().join("keys.json")))
    }

    fn rotations(&self) -> Vec<Value> {
        array(read_json(&self.dir.path().join("rotations.json")))
    }

    fn coverage(&self) -> Value {
        read_json(&self.dir.path().join("coverage.json"))
    }

    fn key(&self, arn: &str) -> Value {
        self.keys()
            .into_iter()
            .find(|k| k["arn"] == arn)
            .unwrap_or_else(|| panic!("{arn} not in keys.json\n{}", self.context()))
    }

    fn api_calls(&self, operation: &str) -> u64 {
        self.coverage()["inventory"]["api_calls"][operation]
            .as_u64()
            .unwrap_or(0)
    }

    fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// Runs `kmsrot [args] inventory --region R... --out TMP` against `endpoint`.
fn inventory(endpoint: &str, regions: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kmsrot();
    cmd.env("AWS_ENDPOINT_URL", endpoint);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(args).arg("inventory");
    for r in regions {
        cmd.args(["--region", r]);
    }
    cmd.arg("--out").arg(dir.path());
    let (code, stdout, stderr) = run(&mut cmd);
    Run {
        code,
        stdout,
        stderr,
        dir,
    }
}

const HOME: &str = "us-east-1";
const OTHER: &str = "eu-west-1";

async fn seed_demo(moto: &Moto) -> Vec<SeededKey> {
    let a = moto.kms(HOME).await;
    let b = moto.kms(OTHER).await;
    seed::demo((HOME, &a), (OTHER, &b)).await.unwrap()
}

fn named<'a>(keys: &'a [SeededKey], name: &str) -> &'a SeededKey {
    keys.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("no seeded key {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn eligible_key_with_rotation_on() {
    let moto = Moto::start();
    let kms = moto.kms("us-east-1").await;
    let key = kms
        .create_key()
        .description("payments")
        .send()
        .await
        .unwrap();
    let id = key.key_metadata().unwrap().key_id().to_string();
    kms.enable_key_rotation().key_id(&id).send().await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["inventory", "--region", "us-east-1", "--out"])
        .arg(out.path()));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let keys = read_json(&out.path().join("keys.json"));
    let k = &keys[0];
    assert_eq!(k["key_id"], id.as_str());
    assert_eq!(k["eligibility"], "eligible");
    assert_eq!(k["rotation_enabled"], true);
    // moto 5.2 returns no RotationPeriodInDays: the column stays empty
    // rather than being guessed as AWS's default of 365.
    assert!(k["rotation_period_days"].is_null());
}

/// Every eligibility value moto can represent, each with AWS's verdict, and
/// no rotation API called where AWS would reject it.
///
/// Not representable in moto 5.2: `unavailable` (moto has no PendingImport,
/// Unavailable, Creating or Updating state; imported-material keys start
/// Enabled). `custom_key_store` is approximated: moto takes Origin
/// AWS_CLOUDHSM without a CustomKeyStoreId, which AWS refuses.
#[tokio::test(flavor = "multi_thread")]
async fn every_eligibility_value_moto_can_represent() {
    let moto = Moto::start();
    let kms1 = moto.kms(HOME).await;
    let kms2 = moto.kms(OTHER).await;
    let mut keys = seed_demo(&moto).await;

    // moto accepts EnableKeyRotation on asymmetric and HMAC keys; AWS answers
    // UnsupportedOperationException. The verdict must not follow moto.
    for (kms, name) in [
        (&kms1, "release-signing"),
        (&kms1, "webhook-hmac"),
        (&kms2, "eu-device-signing"),
    ] {
        seed::enable_rotation(kms, &named(&keys, name).key_id, None)
            .await
            .unwrap();
    }
    let spec = KeySpecification::symmetric("hsm-backed").origin(OriginType::AwsCloudhsm);
    let (id, arn) = seed::create(&kms1, &spec).await.unwrap();
    // moto gap: accepted, and EnableKeyRotation too; AWS rejects both here.
    seed::enable_rotation(&kms1, &id, None).await.unwrap();
    keys.push(SeededKey {
        region: HOME.into(),
        key_id: id,
        arn,
        name: "hsm-backed".into(),
        expect: "custom_key_store",
        rotation: None,
    });
    // Rotation turned on, then the key disabled: valid in AWS, and AWS still
    // reports the setting (GetKeyRotationStatus works on Disabled keys).
    let (id, arn) = seed::create(&kms1, &KeySpecification::symmetric("paused"))
        .await
        .unwrap();
    seed::enable_rotation(&kms1, &id, None).await.unwrap();
    seed::disable(&kms1, &id).await.unwrap();
    keys.push(SeededKey {
        region: HOME.into(),
        key_id: id,
        arn,
        name: "paused".into(),
        expect: "disabled",
        rotation: Some(true),
    });

    let proxy = Proxy::start(&moto.url, vec![]);
    let r = inventory(&proxy.url, &[HOME, OTHER], &[], &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert_eq!(r.keys().len(), keys.len(), "{}", r.context());

    for k in &keys {
        let row = r.key(&k.arn);
        let what = format!("{} ({})", k.name, k.arn);
        assert_eq!(row["eligibility"], k.expect, "{what}: {row}");
        assert!(
            row["eligibility_reason"]
                .as_str()
                .is_some_and(|s| s.len() > 20),
            "{what}: the reason must explain the verdict: {row}"
        );
        let status_calls = proxy.calls_about("GetKeyRotationStatus", &k.arn);
        let history_calls = proxy.calls_about("ListKeyRotations", &k.arn);
        match k.expect {
            "unsupported_spec" | "custom_key_store" => {
                // AWS answers UnsupportedOperationException: kmsrot must not
                // ask, and must not report moto's `true`.
                assert_eq!(status_calls, 0, "{what}: GetKeyRotationStatus sent");
                assert_eq!(history_calls, 0, "{what}: ListKeyRotations sent");
                assert!(row["rotation_enabled"].is_null(), "{what}: {row}");
            }
            "aws_managed" => {
                // AWS reports `true` for AWS-managed keys; moto 5.2 reports
                // `false` (and KeyManager CUSTOMER, which is why kmsrot also
                // trusts the alias/aws/ prefix). kmsrot shows what the API
                // said, so only the call is asserted here.
                assert_eq!(status_calls, 1, "{what}");
                assert_eq!(history_calls, 0, "{what}: ListKeyRotations sent");
                assert!(
                    row["tags"].is_null(),
                    "{what}: AWS-managed keys carry no tags"
                );
                assert_eq!(proxy.calls_about("ListResourceTags", &k.arn), 0, "{what}");
            }
            "replica" => {
                // A replica shares its primary's setting and history: the
                // status is read, the history is read on the primary only.
                assert_eq!(status_calls, 1, "{what}");
                assert_eq!(history_calls, 0, "{what}");
                assert_eq!(row["rotation_enabled"], Value::from(k.rotation), "{what}");
                assert!(row["primary_key_arn"].as_str().is_some_and(|p| p != k.arn));
            }
            _ => {
                assert_eq!(status_calls, 1, "{what}");
                assert_eq!(
                    row["rotation_enabled"],
                    Value::from(k.rotation),
                    "{what}: {row}"
                );
            }
        }
    }

    // The multi-Region primary stays eligible even though moto 5.2 flips its
    // MultiRegionKeyType to REPLICA once the replica has been described.
    let primary = r.key(&named(&keys, "global-sessions").arn);
    assert_eq!(primary["multi_region_role"], "PRIMARY");
    assert_eq!(primary["eligibility"], "eligible");

    // Imported material: AWS allows on-demand rotation, never automatic.
    let imported = r.key(&named(&keys, "partner-import").arn);
    assert_eq!(imported["origin"], "EXTERNAL");
    assert_eq!(imported["rotation_count"], 0);

    let seen: BTreeSet<String> = r
        .keys()
        .iter()
        .filter_map(|k| k["eligibility"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = [
        "eligible",
        "aws_managed",
        "unsupported_spec",
        "external_origin",
        "custom_key_store",
        "replica",
        "pending_deletion",
        "disabled",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, want);

    // Rotation history: two on-demand rotations on payments-db.
    let payments = named(&keys, "payments-db");
    let row = r.key(&payments.arn);
    assert_eq!(row["rotation_count"], 2);
    let rots: Vec<Value> = r
        .rotations()
        .into_iter()
        .filter(|x| x["key_arn"] == payments.arn.as_str())
        .collect();
    assert_eq!(rots.len(), 2);
    assert!(rots.iter().all(|x| x["rotation_type"] == "ON_DEMAND"));
    let last = rots
        .iter()
        .filter_map(|x| x["rotation_date"].as_str())
        .max()
        .unwrap();
    assert_eq!(row["last_rotation_date"], last);

    // kmsrot's own call count agrees with what reached the emulator.
    let at_proxy = proxy.requests();
    for op in [
        "DescribeKey",
        "GetKeyRotationStatus",
        "ListKeyRotations",
        "ListResourceTags",
    ] {
        assert_eq!(
            r.api_calls(op),
            at_proxy.get(op).copied().unwrap_or(0),
            "{op}: coverage.json api_calls vs requests at the emulator"
        );
    }
}

/// moto ignores Limit and never truncates a listing, so the proxy serves
/// ListKeys, ListAliases, ListResourceTags and ListKeyRotations in small
/// pages with AWS's Truncated/NextMarker: kmsrot must follow every marker.
#[tokio::test(flavor = "multi_thread")]
async fn pagination_follows_every_marker() {
    const N: usize = 120;
    let moto = Moto::start();
    let kms = moto.kms(HOME).await;
    // Signing keys seed fast in moto (see seed::signing_keys); paging does
    // not depend on the key type.
    let keys = seed::signing_keys(&kms, HOME, "page", N, true, 8)
        .await
        .unwrap();
    // One eligible key with more tags and rotations than a page holds.
    let busy = &seed::plain_keys(&kms, HOME, "busy", 1, true, 1)
        .await
        .unwrap()[0];
    for i in 0..5 {
        kms.tag_resource()
            .key_id(&busy.key_id)
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(format!("t{i}"))
                    .tag_value(format!("v{i}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    seed::rotate_on_demand(&kms, &busy.key_id, 5).await.unwrap();
    let total_aliases = kms.list_aliases().send().await.unwrap().aliases().len();
    // Every seeded alias, plus moto's built-in alias/aws/* entries.
    assert!(total_aliases > 100);

    // Without the proxy: moto's single page holds everything.
    let direct = inventory(&moto.url, &[HOME], &[], &[]);
    assert_eq!(direct.code, 0, "{}", direct.context());
    assert_eq!(direct.keys().len(), N + 1);

    const PAGE: usize = 50;
    let proxy = Proxy::start(
        &moto.url,
        [
            "ListKeys",
            "ListAliases",
            "ListResourceTags",
            "ListKeyRotations",
        ]
        .into_iter()
        .map(|op| {
            Rule::operation(op).page(if op.starts_with("ListKeyR") || op == "ListResourceTags" {
                2
            } else {
                PAGE
            })
        })
        .collect(),
    );
    let r = inventory(&proxy.url, &[HOME], &[], &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    let rows = r.keys();
    assert_eq!(
        rows.len(),
        N + 1,
        "every key across {} pages",
        (N + 1).div_ceil(PAGE)
    );
    for k in keys.iter().chain([busy]) {
        let row = r.key(&k.arn);
        assert_eq!(
            row["aliases"],
            serde_json::json!([format!("alias/{}", k.name)]),
            "{}: its alias may sit on any ListAliases page",
            k.name
        );
    }
    let at_proxy = proxy.requests();
    assert_eq!(at_proxy["ListKeys"], (N + 1).div_ceil(PAGE) as u64);
    assert_eq!(at_proxy["ListAliases"], total_aliases.div_ceil(PAGE) as u64);
    assert_eq!(r.api_calls("ListKeys"), at_proxy["ListKeys"]);
    assert_eq!(r.api_calls("ListAliases"), at_proxy["ListAliases"]);

    let row = r.key(&busy.arn);
    // 6 tags (set + t0..t4) in pages of 2; 5 rotations in pages of 2.
    assert_eq!(row["tags"].as_object().map(|t| t.len()), Some(6), "{row}");
    assert_eq!(row["rotation_count"], 5, "{row}");
    assert_eq!(proxy.calls_about("ListKeyRotations", &busy.arn), 3);
    assert_eq!(proxy.calls_about("ListResourceTags", &busy.arn), 3);
}

/// Two readable regions and one that denies every call: the run finishes,
/// writes what it read, exits 3 and says which region is missing.
#[tokio::test(flavor = "multi_thread")]
async fn two_regions_read_and_a_denied_region_recorded() {
    const DENIED: &str = "eu-west-3";
    let moto = Moto::start();
    let a = moto.kms(HOME).await;
    let b = moto.kms(OTHER).await;
    let c = moto.kms(DENIED).await;
    let in_home = seed::plain_keys(&a, HOME, "home", 3, true, 4)
        .await
        .unwrap();
    let in_other = seed::plain_keys(&b, OTHER, "other", 2, true, 4)
        .await
        .unwrap();
    seed::plain_keys(&c, DENIED, "denied", 1, false, 1)
        .await
        .unwrap();

    let proxy = Proxy::start(&moto.url, vec![Rule::region(DENIED).deny()]);
    let r = inventory(&proxy.url, &[HOME, OTHER, DENIED], &[], &[]);
    assert_eq!(r.code, 3, "{}", r.context());
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains(DENIED) && l.contains("AccessDeniedException")),
        "stderr must name the region and why: {}",
        r.context()
    );

    let cov = r.coverage();
    assert_eq!(cov["complete"], false);
    let regions: BTreeMap<String, Value> = cov["inventory"]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["region"].as_str().unwrap().to_string(), x.clone()))
        .collect();
    assert_eq!(regions[DENIED]["status"], "failed");
    assert_eq!(regions[DENIED]["error"]["code"], "AccessDeniedException");
    assert_eq!(regions[HOME]["status"], "ok");
    assert_eq!(regions[HOME]["keys_listed"], 3);
    assert_eq!(regions[OTHER]["status"], "ok");
    assert_eq!(regions[OTHER]["keys_listed"], 2);

    let rows = r.keys();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|k| k["region"] != DENIED));
    for k in in_home.iter().chain(&in_other) {
        let row = r.key(&k.arn);
        assert_eq!(row["region"], k.region.as_str());
        assert_eq!(row["rotation_enabled"], Value::from(k.rotation));
    }
    // The table has a row for every region, the failed one included.
    for region in [HOME, OTHER, DENIED] {
        assert!(r.stdout.contains(region), "{}", r.context());
    }
    assert!(proxy.faults() >= 1);
    assert_eq!(
        proxy.requests_by_region().get(DENIED).copied(),
        Some(proxy.faults()),
        "every request to {DENIED} was refused, none reached moto"
    );
}

/// A rotation status that cannot be read stays empty: never guessed.
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_rotation_status_is_unknown_not_false() {
    let moto = Moto::start();
    let kms = moto.kms(HOME).await;
    let keys = seed::plain_keys(&kms, HOME, "k", 2, false, 2)
        .await
        .unwrap();
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("GetKeyRotationStatus").deny()],
    );
    let r = inventory(&proxy.url, &[HOME], &["--output", "json"], &[]);
    assert_eq!(r.code, 3, "{}", r.context());
    for k in &keys {
        let row = r.key(&k.arn);
        assert!(row["rotation_enabled"].is_null(), "{row}");
        assert_eq!(row["eligibility"], "eligible");
        assert!(
            row["status_error"].as_str().is_some_and(
                |e| e.contains("GetKeyRotationStatus") && e.contains("AccessDeniedException")
            ),
            "{row}"
        );
    }
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary[0]["unknown"], 2, "{summary}");
    assert_eq!(summary[0]["rotation_on"], 0);
    let errors = r.coverage()["inventory"]["key_errors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(errors.len(), 2);
    assert!(r.stderr.contains("GetKeyRotationStatus"), "{}", r.context());
}

/// keys.parquet, keys.csv and keys.json (and the rotations files) hold the
/// same rows, read with polars, the csv crate and serde_json.
#[tokio::test(flavor = "multi_thread")]
async fn csv_parquet_and_json_agree_row_for_row() {
    let moto = Moto::start();
    seed_demo(&moto).await;
    let r = inventory(&moto.url, &[HOME, OTHER], &[], &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    for schema in [KEYS, ROTATIONS] {
        let from_parquet = parquet_cells(r.dir.path(), &schema);
        let from_csv = csv_cells(r.dir.path(), &schema);
        let from_json = json_cells(r.dir.path(), &schema);
        assert!(!from_parquet.is_empty(), "{}: no rows", schema.name);
        assert_eq!(
            from_parquet.len(),
            from_csv.len(),
            "{}: CSV rows",
            schema.name
        );
        assert_eq!(
            from_parquet.len(),
            from_json.len(),
            "{}: JSON rows",
            schema.name
        );
        for (i, ((p, c), j)) in from_parquet
            .iter()
            .zip(&from_csv)
            .zip(&from_json)
            .enumerate()
        {
            for (col, ((pv, cv), jv)) in schema.columns.iter().zip(p.iter().zip(c).zip(j)) {
                assert_eq!(
                    pv, cv,
                    "{} row {i} column {}: parquet vs csv",
                    schema.name, col.name
                );
                assert_eq!(
                    pv, jv,
                    "{} row {i} column {}: parquet vs json",
                    schema.name, col.name
                );
            }
        }
    }
    // The normalisation above must not hide emptiness: real values exist.
    let keys = parquet_cells(r.dir.path(), &KEYS);
    let idx = |name: &str| KEYS.columns.iter().position(|c| c.name == name).unwrap();
    assert!(keys.iter().any(|row| row[idx("aliases")].is_some()));
    assert!(keys.iter().any(|row| row[idx("tags")]
        .as_deref()
        .is_some_and(|t| t.contains("team"))));
    assert!(keys.iter().any(|row| row[idx("deletion_date")].is_some()));
    assert!(keys.iter().all(|row| row[idx("creation_date")].is_some()));
}

/// One normalised cell: `None` for null or empty; times as RFC 3339 UTC
/// milliseconds; lists `;`-joined; JSON documents re-serialised.
type Cells = Vec<Vec<Option<String>>>;

fn norm_text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn norm_time_text(s: &str, what: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    assert!(s.ends_with('Z'), "{what}: {s} is not UTC RFC 3339");
    let t = DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{what}: {s} is not RFC 3339: {e}"))
        .with_timezone(&Utc);
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn norm_json_text(s: &str, what: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: {s}: {e}"));
    Some(v.to_string())
}

fn parquet_cells(dir: &Path, schema: &Schema) -> Cells {
    use polars::prelude::{DataType, ParquetReader, SerReader};
    let path = dir.join(format!("{}.parquet", schema.name));
    let df = ParquetReader::new(std::fs::File::open(&path).unwrap())
        .finish()
        .unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, schema.names(), "{}: columns", path.display());
    let mut rows: Cells = vec![Vec::new(); df.height()];
    for col in schema.columns {
        let s = df
            .column(col.name)
            .unwrap()
            .as_materialized_series()
            .clone();
        match col.kind {
            Kind::Str | Kind::Json => {
                for (row, v) in rows.iter_mut().zip(s.str().unwrap().iter()) {
                    row.push(match (v, col.kind) {
                        (Some(v), Kind::Json) => norm_json_text(v, col.name),
                        (Some(v), _) => norm_text(v),
                        (None, _) => None,
                    });
                }
            }
            Kind::Bool => {
                for (row, v) in rows.iter_mut().zip(s.bool().unwrap().iter()) {
                    row.push(v.map(|b| b.to_string()));
                }
            }
            Kind::Int => {
                let s = s.cast(&DataType::Int64).unwrap();
                for (row, v) in rows.iter_mut().zip(s.i64().unwrap().iter()) {
                    row.push(v.map(|i| i.to_string()));
                }
            }
            Kind::Time => {
                assert_eq!(s.dtype(), &kmsrot::frames::time_dtype(), "{}", col.name);
                let s = s.cast(&DataType::Int64).unwrap();
                for (row, v) in rows.iter_mut().zip(s.i64().unwrap().iter()) {
                    row.push(v.map(|ms| {
                        DateTime::<Utc>::from_timestamp_millis(ms)
                            .unwrap()
                            .to_rfc3339_opts(SecondsFormat::Millis, true)
                    }));
                }
            }
            Kind::StrList => {
                let ca = s.list().unwrap();
                for (i, row) in rows.iter_mut().enumerate() {
                    let items: Vec<String> = ca
                        .get_as_series(i)
                        .map(|inner| {
                            inner
                                .str()
                                .unwrap()
                                .iter()
                                .flatten()
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    row.push(norm_text(&items.join(";")));
                }
            }
        }
    }
    rows
}

fn csv_cells(dir: &Path, schema: &Schema) -> Cells {
    let path = dir.join(format!("{}.csv", schema.name));
    let mut r = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, schema.names(), "{}: header", path.display());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            schema
                .columns
                .iter()
                .zip(rec.iter())
                .map(|(col, v)| match col.kind {
                    Kind::Time => norm_time_text(v, col.name),
                    Kind::Json => norm_json_text(v, col.name),
                    _ => norm_text(v),
                })
                .collect()
        })
        .collect()
}

fn json_cells(dir: &Path, schema: &Schema) -> Cells {
    let path = dir.join(format!("{}.json", schema.name));
    array(read_json(&path))
        .iter()
        .map(|obj| {
            let map = obj.as_object().expect("each row is an object");
            let names: Vec<&str> = map.keys().map(String::as_str).collect();
            assert_eq!(names, schema.names(), "{}: keys of a row", path.display());
            schema
                .columns
                .iter()
                .map(|col| {
                    let v = &map[col.name];
                    match (col.kind, v) {
                        (_, Value::Null) => None,
                        (Kind::Time, Value::String(s)) => norm_time_text(s, col.name),
                        (Kind::StrList, Value::Array(items)) => norm_text(
                            &items
                                .iter()
                                .map(|i| i.as_str().expect("list of strings").to_string())
                                .collect::<Vec<_>>()
                                .join(";"),
                        ),
                        (Kind::Json, v) => Some(v.to_string()),
                        (_, Value::String(s)) => norm_text(s),
                        (_, other) => Some(other.to_string()),
                    }
                })
                .collect()
        })
        .collect()
}

/// moto has no Account ListRegions (it answers 500 with an HTML page), so
/// `--region all` falls back to the built-in list and says so.
#[tokio::test(flavor = "multi_thread")]
async fn region_all_falls_back_to_the_built_in_list() {
    let moto = Moto::start();
    let a = moto.kms(HOME).await;
    let opt_in = "ap-southeast-3";
    let b = moto.kms(opt_in).await;
    let k1 = seed::plain_keys(&a, HOME, "home", 1, false, 1)
        .await
        .unwrap();
    let k2 = seed::plain_keys(&b, opt_in, "optin", 1, false, 1)
        .await
        .unwrap();

    // The SDK retries a 500; one attempt keeps the test fast.
    let r = inventory(&moto.url, &["all"], &[], &[("AWS_MAX_ATTEMPTS", "1")]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(
        r.stderr.contains("could not discover") && r.stderr.contains("built-in list"),
        "stderr must say the fallback happened: {}",
        r.context()
    );
    let plan = &r.coverage()["inventory"]["region_plan"];
    assert_eq!(plan["discovered_by"], "built-in list");
    assert!(plan["discovery_error"]["code"].is_string(), "{plan}");
    let planned: BTreeSet<&str> = plan["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let builtin: BTreeSet<&str> = kmsrot::aws::regions::DEFAULT_ENABLED
        .iter()
        .chain(kmsrot::aws::regions::OPT_IN)
        .copied()
        .collect();
    assert_eq!(planned, builtin);
    for k in k1.iter().chain(&k2) {
        assert_eq!(r.key(&k.arn)["region"], k.region.as_str());
    }
    assert_eq!(r.keys().len(), 2);
}

/// What a user sees on stdout and stderr for the demo account.
#[tokio::test(flavor = "multi_thread")]
async fn table_and_stderr_snapshot() {
    let moto = Moto::start();
    seed_demo(&moto).await;
    let r = inventory(&moto.url, &[HOME, OTHER], &[], &[]);
    assert_seen!(
        "table_and_stderr_snapshot",
        &Seen::from((r.code, r.stdout.clone(), r.stderr.clone()))
    );
}

/// `--output json` and `--output csv` print the same per-region counts the
/// keys frame gives.
#[tokio::test(flavor = "multi_thread")]
async fn summary_as_json_and_csv() {
    let moto = Moto::start();
    seed_demo(&moto).await;
    let j = inventory(&moto.url, &[HOME, OTHER], &["--output", "json"], &[]);
    assert_eq!(j.code, 0, "{}", j.context());
    let c = inventory(&moto.url, &[HOME, OTHER], &["--output", "csv"], &[]);
    assert_eq!(c.code, 0, "{}", c.context());

    // Expected counts, computed from keys.json independently of kmsrot.
    let mut want: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for k in j.keys() {
        let e = want
            .entry(k["region"].as_str().unwrap().to_string())
            .or_default();
        e[0] += 1;
        if k["key_manager"] == "CUSTOMER" && k["eligibility"] != "aws_managed" {
            e[1] += 1;
        }
        if k["eligibility"] == "eligible" {
            e[2] += 1;
            match k["rotation_enabled"].as_bool() {
                Some(true) => e[3] += 1,
                Some(false) => e[4] += 1,
                None => e[5] += 1,
            }
        }
    }
    const COLS: [&str; 6] = [
        "keys",
        "customer_managed",
        "eligible",
        "rotation_on",
        "rotation_off",
        "unknown",
    ];

    let summary: Value = serde_json::from_str(&j.stdout)
        .unwrap_or_else(|e| panic!("--output json is not JSON ({e}): {}", j.context()));
    let mut got: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for row in summary.as_array().unwrap() {
        let mut counts = [0; 6];
        for (n, col) in counts.iter_mut().zip(COLS) {
            *n = row[col]
                .as_u64()
                .unwrap_or_else(|| panic!("{col} in {row}"));
        }
        got.insert(row["region"].as_str().unwrap().to_string(), counts);
    }
    assert_eq!(got, want, "json summary");

    let mut rdr = csv::Reader::from_reader(c.stdout.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[0], "region");
    assert_eq!(&header[1..], COLS);
    let mut got: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let mut counts = [0; 6];
        for (n, v) in counts.iter_mut().zip(rec.iter().skip(1)) {
            *n = v.parse().unwrap();
        }
        got.insert(rec[0].to_string(), counts);
    }
    assert_eq!(got, want, "csv summary");
    assert_eq!(want.len(), 2);
}

/// Throttling that clears is absorbed by the SDK's retries.
///
/// Slow on purpose (~20 s): after a ThrottlingException the SDK's adaptive
/// rate limiter starts again from a low send rate.
#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_clears_is_retried() {
    let moto = Moto::start();
    let kms = moto.kms(HOME).await;
    let keys = seed::plain_keys(&kms, HOME, "k", 2, false, 2)
        .await
        .unwrap();

    let passing = Proxy::start(
        &moto.url,
        vec![Rule::operation("DescribeKey").throttle().times(2)],
    );
    let r = inventory(&passing.url, &[HOME], &[], &[]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert_eq!(passing.faults(), 2);
    for k in &keys {
        assert_eq!(r.key(&k.arn)["rotation_enabled"], Value::from(k.rotation));
    }
    // kmsrot counts first attempts; the emulator also saw the retries.
    assert_eq!(r.api_calls("DescribeKey"), 2);
    assert_eq!(passing.requests()["DescribeKey"], 4);
}

/// Throttling that outlasts the retries is recorded per key, leaves the
/// rotation status unknown, and makes the run partial.
#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_persists_is_recorded() {
    let moto = Moto::start();
    let kms = moto.kms(HOME).await;
    let keys = seed::plain_keys(&kms, HOME, "k", 2, false, 2)
        .await
        .unwrap();

    let lasting = Proxy::start(
        &moto.url,
        vec![Rule::operation("GetKeyRotationStatus").throttle()],
    );
    let r = inventory(&lasting.url, &[HOME], &[], &[("AWS_MAX_ATTEMPTS", "2")]);
    assert_eq!(r.code, 3, "{}", r.context());
    assert_eq!(
        lasting.requests()["GetKeyRotationStatus"],
        4,
        "2 keys x 2 attempts"
    );
    let errors = r.coverage()["inventory"]["key_errors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(errors.len(), 2);
    assert!(errors
        .iter()
        .all(|e| e["error"]["code"] == "ThrottlingException"
            && e["operation"] == "GetKeyRotationStatus"));
    for k in &keys {
        let row = r.key(&k.arn);
        assert!(row["rotation_enabled"].is_null(), "never guessed: {row}");
        assert_eq!(row["eligibility"], "eligible");
    }
}
