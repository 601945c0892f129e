//! Seeds an AWS emulator (moto) with KMS keys through the Rust SDK.
//!
//! ```text
//! cargo run --example seed -- --endpoint-url http://127.0.0.1:5000 \
//!     [--region us-east-1 --region eu-west-1] [--scenario demo|bench] [--keys 2000]
//! ```
//!
//! `demo`: a dozen keys of every kind across the first two regions (the
//! README's demo). `bench`: `--keys` plain eligible keys in the first region,
//! half with rotation on. Prints one line per key to stdout
//! (`region  eligibility  key_id  name`); progress goes to stderr.
//!
//! The seeding code is shared with the integration tests.

use std::time::Instant;

use anyhow::{bail, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;
use clap::{Parser, ValueEnum};
use kmsrot_testkit::seed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Demo,
    Bench,
}

#[derive(Debug, Parser)]
#[command(about = "Seed an AWS emulator with KMS keys")]
struct Args {
    /// The emulator's endpoint. Required: this tool never seeds real AWS.
    #[arg(long, value_name = "URL")]
    endpoint_url: String,

    /// Regions to seed (the demo uses the first two).
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,

    #[arg(long, value_enum, default_value_t = Scenario::Demo)]
    scenario: Scenario,

    /// Keys to create for the bench scenario.
    #[arg(long, default_value_t = 2000)]
    keys: usize,

    /// Requests in flight while seeding the bench scenario.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

async fn client(endpoint: &str, region: &str) -> aws_sdk_kms::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        // The emulator takes any credentials; never pick up real ones.
        .credentials_provider(Credentials::new("testing", "testing", None, None, "seed"))
        .load()
        .await;
    aws_sdk_kms::Client::new(&config)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut regions = args.regions.clone();
    if regions.is_empty() {
        regions = vec!["us-east-1".into(), "eu-west-1".into()];
    }
    let started = Instant::now();
    let keys = match args.scenario {
        Scenario::Demo => {
            if regions.len() < 2 {
                bail!("the demo scenario needs two regions (--region A --region B)");
            }
            let a = client(&args.endpoint_url, &regions[0]).await;
            let b = client(&args.endpoint_url, &regions[1]).await;
            seed::demo((&regions[0], &a), (&regions[1], &b)).await?
        }
        Scenario::Bench => {
            let kms = client(&args.endpoint_url, &regions[0]).await;
            seed::plain_keys(
                &kms,
                &regions[0],
                "bench",
                args.keys,
                false,
                args.concurrency,
            )
            .await?
        }
    };
    for k in &keys {
        println!("{}\t{}\t{}\t{}", k.region, k.expect, k.key_id, k.name);
    }
    eprintln!(
        "seeded {} keys at {} in {:.1}s",
        keys.len(),
        args.endpoint_url,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
