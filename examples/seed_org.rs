//! Seeds an emulated AWS Organization (moto) for `scripts/bench-org`.
//!
//! ```text
//! cargo run --example seed_org -- --endpoint-url http://127.0.0.1:5000 \
//!     --accounts 200 --keys-per-region 5 [--region us-east-1 --region eu-west-1]
//! ```
//!
//! `--accounts N`: makes the caller's account an organization's management
//! account, creates N member accounts and seeds `--keys-per-region` plain
//! keys in each region of each member, through the role Organizations
//! creates in it. `--accounts 0`: seeds the same number of keys
//! (`--same-as N` members' worth) in the caller's own account instead, the
//! one-account side of the comparison. Prints the seeded key count to
//! stdout; progress goes to stderr. Never seeds real AWS: the endpoint is
//! required and the credentials are the emulator's.

use std::time::Instant;

use anyhow::{bail, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;
use clap::Parser;
use futures::stream::{self, StreamExt, TryStreamExt};
use kmsrot_testkit::{org, seed};

#[derive(Debug, Parser)]
#[command(about = "Seed an emulated organization with KMS keys")]
struct Args {
    /// The emulator's endpoint.
    #[arg(long, value_name = "URL")]
    endpoint_url: String,

    /// Member accounts to create; 0 seeds the caller's account alone.
    #[arg(long, default_value_t = 200)]
    accounts: usize,

    /// With `--accounts 0`: seed as many keys as this many members hold.
    #[arg(long, default_value_t = 200)]
    same_as: usize,

    #[arg(long, default_value_t = 5)]
    keys_per_region: usize,

    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,

    /// Accounts seeded at once (moto is single-threaded: more does not help).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let regions = if args.regions.is_empty() {
        vec!["us-east-1".to_string(), "eu-west-1".to_string()]
    } else {
        args.regions.clone()
    };
    if args.keys_per_region == 0 {
        bail!("--keys-per-region must be at least 1");
    }
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(regions[0].clone()))
        .endpoint_url(&args.endpoint_url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "seed"))
        .load()
        .await;
    let started = Instant::now();
    let mut seeded = 0usize;
    if args.accounts == 0 {
        for region in &regions {
            let conf = base
                .to_builder()
                .region(Region::new(region.clone()))
                .build();
            let kms = aws_sdk_kms::Client::new(&conf);
            let n = args.keys_per_region * args.same_as;
            seeded += seed::plain_keys(&kms, region, "single", n, false, 8)
                .await?
                .len();
            eprintln!("seeded {n} keys in {region}");
        }
    } else {
        let orgs = aws_sdk_organizations::Client::new(&base);
        org::create(&orgs).await?;
        let mut ids = Vec::with_capacity(args.accounts);
        for i in 0..args.accounts {
            ids.push(org::account(&orgs, &format!("member-{i:04}")).await?);
        }
        eprintln!("created {} member accounts", ids.len());
        let counts: Vec<usize> = stream::iter(ids.iter().enumerate())
            .map(|(i, id)| {
                let (base, regions) = (&base, &regions);
                async move {
                    let mut n = 0;
                    for region in regions {
                        let kms = org::member_kms(base, id, region).await?;
                        let prefix = format!("m{i:04}-{region}");
                        n +=
                            seed::plain_keys(&kms, region, &prefix, args.keys_per_region, false, 2)
                                .await?
                                .len();
                    }
                    anyhow::Ok(n)
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .try_collect()
            .await?;
        seeded = counts.iter().sum();
    }
    println!("{seeded}");
    eprintln!(
        "seeded {seeded} keys at {} in {:.1}s",
        args.endpoint_url,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
