//! `kmsrot assess BUNDLE [--policy kmsrot.toml] [--as-of DATE] [--fail-on SEVERITY] [--queries DIR]`
//!
//! Runs every rule (the SQL files in `queries/`, embedded in the binary, plus
//! or instead of those in `--queries DIR`) over the bundle's frames, writes
//! `findings.parquet`, `findings.csv` and `findings.json` into the bundle,
//! records the assessment in the manifest, and prints a summary by rule and
//! severity.
//!
//! `--as-of` fixes "now", so the same bundle gives the same findings next year.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high);
//! 3 the bundle's coverage is partial; 0 otherwise; 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::args::{GateArgs, PolicyArgs};
use crate::context::Ctx;
use crate::error::Outcome;
use crate::frames::time::{parse_until, rfc3339};
use crate::rules;

#[derive(Debug, clap::Args)]
#[command(about = "Run the rules over a bundle and write its findings")]
pub struct Args {
    /// The bundle folder written by `kmsrot collect`.
    pub bundle: PathBuf,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Judge the bundle as of this date or time instead of now (a date means its last second, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub as_of: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub gate: GateArgs,

    /// Folder of extra rules (*.sql); a rule with a built-in id replaces it.
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let rules = rules::load(args.queries.as_deref())?;
    let as_of = ctx.clock.as_of();
    let a = rules::assess_bundle(&args.bundle, &ctx.policy, rules, as_of, ctx.clock.now())
        .with_context(|| format!("assessing {}", args.bundle.display()))?;
    a.summary_table().print_stdout(ctx.output)?;
    let (open, by_sev) = a.open_by_severity();
    eprintln!(
        "{} rules, {} findings ({} open:{} {} exempted) as of {}; written to {}",
        a.rules.len(),
        a.findings.len(),
        open,
        by_sev,
        a.findings.len() - open,
        rfc3339(as_of),
        args.bundle.join("findings.*").display()
    );
    for g in &a.gaps {
        eprintln!("partial: {g}");
    }
    Ok(a.outcome(args.gate.fail_on))
}
