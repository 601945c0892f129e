//! `kmsrot collect --out BUNDLE [--trail SOURCE]... [--since T] [--until T] [--policy FILE]`
//!
//! The inventory plus a CloudTrail scan, written as one evidence bundle that an
//! auditor can verify and re-analyze offline:
//!
//!   manifest.json   tool version, collected_at, the caller (STS
//!                   GetCallerIdentity), accounts, regions, the audit window,
//!                   each source with the time it covers, SHA-256 of every file
//!   coverage.json   what the inventory and the trail scan read, and what not
//!   keys.*, rotations.*, events.*   the frames (Parquet, CSV, JSON)
//!   raw/            every KMS answer as the AWS CLI prints it, with the
//!                   command that repeats it (raw/kms/index.json)
//!
//! `--trail` takes any SOURCE `kmsrot trail scan` takes (a folder,
//! s3://BUCKET/PREFIX, lookup, lake:STORE) and may be repeated. Without
//! `--since`, the window is the policy's audit window (400 days) ending at
//! `--until` or now.
//!
//! Exit: 0 complete; 3 partial (stderr and coverage.json say what is
//! missing); 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::Result;

use crate::args::{LimitsArgs, PolicyArgs, SourceArgs, WindowArgs};
use crate::bundle::{self, CollectRequest};
use crate::context::Ctx;
use crate::error::Outcome;

#[derive(Debug, clap::Args)]
#[command(about = "Inventory plus CloudTrail scan, written as one evidence bundle")]
pub struct Args {
    /// The bundle folder to write (created; must be empty or absent).
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,

    #[command(flatten)]
    pub sources: SourceArgs,

    #[command(flatten)]
    pub window: WindowArgs,

    /// Only its audit_window_days is used here.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Say in the manifest that this bundle does not come from a real account
    /// (an emulator, a demo). Set automatically with --endpoint-url.
    #[arg(long, value_name = "WHY")]
    pub simulated: Option<String>,

    #[command(flatten)]
    pub limits: LimitsArgs,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let request = CollectRequest {
        out: args.out,
        force: args.force,
        trails: args.sources.trails.clone(),
        window: args.window.window()?,
        filter: args
            .sources
            .filter
            .read_options(Default::default(), Vec::new())?,
        simulated: args.simulated,
        limits: args.limits.limits(),
    };
    let collected = bundle::collect(ctx, &request).await?;
    collected.summary_table().print_stdout(ctx.output)?;
    for line in collected.notes() {
        eprintln!("{line}");
    }
    Ok(collected.outcome())
}
