//! Seeds an AWS emulator (moto) with the sample account behind
//! `examples/sample-bundle/`: the demo keys (`examples/seed.rs --scenario
//! demo`) plus a year of CloudTrail logs for them in an S3 archive, as an
//! organization trail delivers them, holding the stories an auditor looks for.
//!
//! ```text
//! cargo run --example sample_account -- --endpoint-url http://127.0.0.1:5000 \
//!     --bucket org-trail --policy-out kmsrot.toml [--now 2026-11-01T12:00:00Z] [--missing-days 40,41,42]
//! ```
//!
//! Used by `scripts/make-sample-bundle`, and by the diff test, which seeds a
//! second, later month. Prints one line per key (`region  eligibility
//! key_id  name`) to stdout.

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::Credentials;
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use futures::StreamExt;
use serde_json::Value;

use kmsrot_testkit::cloudtrail::{self, KeyRef};
use kmsrot_testkit::seed::{self, SeededKey};

#[derive(Debug, Parser)]
#[command(about = "Seed an emulator with the sample account and its CloudTrail archive")]
struct Args {
    /// The emulator's endpoint. Required: this tool never seeds real AWS.
    #[arg(long, value_name = "URL")]
    endpoint_url: String,

    /// The two regions of the account.
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,

    /// Bucket to create and fill with the CloudTrail archive.
    #[arg(long, default_value = "org-trail")]
    bucket: String,

    /// Where to write the account's kmsrot.toml (exemptions for its keys).
    #[arg(long, value_name = "FILE")]
    policy_out: std::path::PathBuf,

    /// The "today" of the archive (default: now).
    #[arg(long)]
    now: Option<DateTime<Utc>>,

    /// Days ago (comma-separated) with no log file in the second region.
    #[arg(long, value_delimiter = ',', default_value = "40,41,42")]
    missing_days: Vec<i64>,
}

const ACCOUNT: &str = "123456789012";
const CI: &str = "arn:aws:sts::123456789012:assumed-role/ci-deployer/build-1187";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const APP: &str = "arn:aws:sts::123456789012:assumed-role/orders-app/i-0abc123";

async fn config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        // The emulator takes any credentials; never pick up real ones.
        .credentials_provider(Credentials::new("testing", "testing", None, None, "sample"))
        .load()
        .await
}

/// A CloudTrail record of a KMS call on a seeded key (a KMS service event
/// when `principal` is `None`).
fn record(
    name: &str,
    key: &SeededKey,
    at: DateTime<Utc>,
    principal: Option<&str>,
    error: Option<(&str, &str)>,
) -> Value {
    let key = KeyRef {
        account: ACCOUNT,
        region: &key.region,
        key_id: &key.key_id,
    };
    cloudtrail::record(name, key, at, principal, error)
}

fn find<'a>(keys: &'a [SeededKey], name: &str) -> Result<&'a SeededKey> {
    keys.iter()
        .find(|k| k.name == name)
        .with_context(|| format!("the demo scenario has no key named {name}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let regions = if args.regions.is_empty() {
        vec!["us-east-1".to_string(), "eu-west-1".to_string()]
    } else {
        args.regions.clone()
    };
    if regions.len() != 2 {
        bail!("the sample account spans two regions (--region A --region B)");
    }
    let now = args.now.unwrap_or_else(Utc::now);
    let c1 = config(&args.endpoint_url, &regions[0]).await;
    let c2 = config(&args.endpoint_url, &regions[1]).await;
    let (k1, k2) = (aws_sdk_kms::Client::new(&c1), aws_sdk_kms::Client::new(&c2));
    let keys = seed::demo((&regions[0], &k1), (&regions[1], &k2)).await?;

    let day = |n: i64| now - Duration::days(n) + Duration::hours(2);
    let payments = find(&keys, "payments-db")?;
    let orders = find(&keys, "orders-api")?;
    let ledger = find(&keys, "ledger-archive")?;
    let legacy = find(&keys, "legacy-batch")?;
    let eu_data = find(&keys, "eu-customer-data")?;
    let eu_analytics = find(&keys, "eu-analytics")?;
    let denied = "User: arn:aws:sts::123456789012:assumed-role/ci-deployer/build-1187 is not authorized to perform: kms:EnableKeyRotation on this resource because no identity-based policy allows the kms:EnableKeyRotation action";

    // (days ago, record)
    let mut events: Vec<(i64, Value)> = vec![
        (
            330,
            record("EnableKeyRotation", payments, day(330), Some(ALICE), None),
        ),
        (
            0,
            record(
                "RotateKeyOnDemand",
                payments,
                now - Duration::minutes(20),
                Some(ALICE),
                None,
            ),
        ),
        (
            0,
            record(
                "RotateKeyOnDemand",
                payments,
                now - Duration::minutes(19),
                Some(ALICE),
                None,
            ),
        ),
        // orders-api: rotation turned off by a person, then CI is refused when it tries to fix it.
        (
            120,
            record("DisableKeyRotation", orders, day(120), Some(ALICE), None),
        ),
        (
            12,
            record(
                "EnableKeyRotation",
                orders,
                day(12),
                Some(CI),
                Some(("AccessDeniedException", denied)),
            ),
        ),
        (
            11,
            record(
                "EnableKeyRotation",
                orders,
                day(11),
                Some(CI),
                Some(("AccessDeniedException", denied)),
            ),
        ),
        (
            10,
            record(
                "EnableKeyRotation",
                orders,
                day(10),
                Some(CI),
                Some(("AccessDeniedException", denied)),
            ),
        ),
        // ledger-archive: one automatic rotation 395 days ago and none since.
        (395, record("RotateKey", ledger, day(395), None, None)),
        (
            25,
            record(
                "EnableKeyRotation",
                legacy,
                day(25),
                Some(ALICE),
                Some(("DisabledException", &format!("{} is disabled.", legacy.arn))),
            ),
        ),
        (
            200,
            record("EnableKeyRotation", eu_data, day(200), Some(ALICE), None),
        ),
        (
            0,
            record(
                "RotateKeyOnDemand",
                eu_data,
                now - Duration::minutes(18),
                Some(ALICE),
                None,
            ),
        ),
    ];
    for n in 0..=400 {
        events.push((n, record("Decrypt", payments, day(n), Some(APP), None)));
        events.push((n, record("Decrypt", eu_analytics, day(n), Some(APP), None)));
    }

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&c1)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&args.bucket)
        .send()
        .await
        .with_context(|| format!("CreateBucket {}", args.bucket))?;
    let mut files: std::collections::BTreeMap<(String, i64), Vec<Value>> = Default::default();
    for (n, r) in events {
        let region = r["awsRegion"].as_str().unwrap_or_default().to_string();
        if region == regions[1] && args.missing_days.contains(&n) {
            continue;
        }
        files.entry((region, n)).or_default().push(r);
    }
    let bucket = args.bucket.clone();
    let puts = files.into_iter().map(|((region, n), records)| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        let at = day(n);
        async move {
            let key = cloudtrail::archive_key(ACCOUNT, &region, at, &format!("{n:04}sample"));
            let body = cloudtrail::log_file(&records);
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .with_context(|| format!("PutObject {key}"))
        }
    });
    let results: Vec<_> = futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }

    let release = find(&keys, "release-signing")?;
    let policy = format!(
        r#"# The sample account's policy: yearly rotation, a week's grace, and two exemptions.
max_rotation_period_days = 365
grace_days = 7

[[exemption]]
key = "alias/legacy-batch"
rule = "rotation_off_disabled_key"
reason = "Batch system retired; key kept only to decrypt archives"
approver = "security-lead@example.com"
expires = "{}"

[[exemption]]
key = "{}"
rule = "*"
reason = "Release signing key, replaced by hand each year"
approver = "security-lead@example.com"
expires = "{}"
"#,
        (now + Duration::days(90)).format("%Y-%m-%d"),
        release.arn,
        (now - Duration::days(20)).format("%Y-%m-%d"),
    );
    std::fs::write(&args.policy_out, policy)
        .with_context(|| format!("writing {}", args.policy_out.display()))?;

    for k in &keys {
        println!("{}\t{}\t{}\t{}", k.region, k.expect, k.key_id, k.name);
    }
    Ok(())
}
