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

use std::path::PathBuf;

use anyhow::Result;

use crate::args::LimitsArgs;
use crate::context::Ctx;
use crate::error::Outcome;
use crate::inventory;

#[derive(Debug, clap::Args)]
#[command(about = "Every KMS key with its rotation status, history and eligibility")]
pub struct Args {
    /// Folder for keys.*, rotations.* and coverage.json (created if missing;
    /// must be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub limits: LimitsArgs,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    crate::output::prepare_out_dir(&args.out, args.force, &[])?;
    let inv = inventory::read_into(ctx, &args.out, args.limits.limits()).await?;
    inventory::summary_table(&inv).print_stdout(ctx.output)?;
    for g in inv.coverage.gaps() {
        eprintln!("partial: {}", crate::output::display_safe(&g));
    }
    if let Some(line) = inventory::fan_out_note(&inv, &ctx.meter().reading()) {
        eprintln!("{line}");
    }
    eprintln!(
        "{} keys, {} rotations written to {}",
        inv.keys.len(),
        inv.rotations.len(),
        args.out.display()
    );
    Ok(if inv.coverage.complete {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}
