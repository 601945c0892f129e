//! `kmsrot inventory --out DIR [--output table|json|csv]`
//!
//! Lists every KMS key in the chosen regions with its metadata, aliases, tags,
//! rotation status (GetKeyRotationStatus) and history (ListKeyRotations), and
//! decides from DescribeKey metadata whether AWS can rotate it automatically.
//!
//! Writes, in DIR:
//!   keys.parquet, keys.csv, keys.json            one row per key
//!   rotations.parquet, rotations.csv, rotations.json   one row per rotation
//!   coverage.json                                regions and keys read or not, and why
//!
//! Prints one row per region: keys, customer-managed, eligible, and among the
//! eligible keys how many have rotation on, off, or unknown.
//!
//! Exit: 0 complete; 3 partial (a region or key could not be read; stderr
//! says which); 2 usage or fatal error.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Ctx;
use crate::aws;
use crate::error::Outcome;
use crate::frames::{KEYS, ROTATIONS};
use crate::inventory::{self, Limits};
use crate::output::{write_frame, write_json_file, Table};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
#[command(about = "Every KMS key with its rotation status, history and eligibility")]
pub struct Args {
    /// Folder for keys.*, rotations.* and coverage.json (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Keys read at once in each region (bounded to stay under KMS quotas).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,

    /// Regions read at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub region_concurrency: u16,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    crate::output::prepare_out_dir(&args.out, args.force, &[])?;
    let opts = ctx.global.aws();
    let config = aws::load_config(&opts).await;
    let plan = aws::regions::resolve(&config, &opts).await?;
    if let Some(e) = &plan.discovery_error {
        eprintln!(
            "warning: could not discover the account's regions (account:ListRegions: {}); reading the built-in list of {} regions instead",
            crate::output::display_safe(&e.to_string()),
            plan.regions.len()
        );
    }
    let progress = Progress::new(ctx.progress());
    let limits = Limits {
        regions: usize::from(args.region_concurrency),
        keys_per_region: usize::from(args.concurrency),
    };
    let inv = inventory::read(&config, plan, limits, &progress, None).await?;

    let out = &args.out;
    write_frame(out, &KEYS, &mut inv.keys_frame()?)?;
    write_frame(out, &ROTATIONS, &mut inv.rotations_frame()?)?;
    let coverage = serde_json::json!({
        "complete": inv.coverage.complete,
        "inventory": &inv.coverage,
    });
    write_json_file(&out.join("coverage.json"), &coverage)?;

    let mut table = Table::new([
        "region",
        "keys",
        "customer_managed",
        "eligible",
        "rotation_on",
        "rotation_off",
        "unknown",
    ]);
    let summary = inventory::summarize(&inv);
    for s in &summary {
        table.row([
            s.region.clone(),
            s.keys.to_string(),
            s.customer_managed.to_string(),
            s.eligible.to_string(),
            s.rotation_on.to_string(),
            s.rotation_off.to_string(),
            s.unknown.to_string(),
        ]);
    }
    let mut stdout = crate::output::stdout();
    table.print(ctx.global.output, &mut stdout)?;
    stdout.flush().context("writing to stdout")?;

    let gaps = inv.coverage.gaps();
    for g in &gaps {
        eprintln!("partial: {}", crate::output::display_safe(g));
    }
    eprintln!(
        "{} keys, {} rotations written to {}",
        inv.keys.len(),
        inv.rotations.len(),
        out.display()
    );
    Ok(if inv.coverage.complete {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}
