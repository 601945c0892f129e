//! `kmsrot assess BUNDLE [--policy kmsrot.toml] [--as-of DATE] [--fail-on SEVERITY] [--queries DIR]
//!  [--previous OLD_BUNDLE] [--allow-modified]`
//!
//! Runs every rule (the SQL files in `queries/`, embedded in the binary, plus
//! or instead of those in `--queries DIR`) over the bundle's frames, writes
//! `findings.parquet`, `findings.csv` and `findings.json` into the bundle,
//! records the assessment in the manifest, and prints a summary by rule and
//! severity.
//!
//! The bundle is judged as of its `collected_at`, so the same bundle gives the
//! same findings next year; `--as-of` judges it at another moment, and the
//! manifest and the report then say how many days after (or before)
//! collection that is. Events after the as-of time are ignored.
//!
//! The bundle is verified against its manifest first: a file changed, added,
//! removed or replaced by a link is an error naming it, unless
//! `--allow-modified`; then only the findings files are re-hashed into the
//! manifest, so the bundle still fails `verify-bundle`. `--previous` carries
//! each still-open finding's first-seen date from last month's bundle.
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

    /// Judge the bundle as of this date or time instead of its collection (a date means its last second, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub as_of: Option<DateTime<Utc>>,

    #[command(flatten)]
    pub gate: GateArgs,

    /// Folder of extra rules (*.sql); a rule with a built-in id replaces it.
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// The previous assessed bundle: findings still open keep the date they were first seen.
    #[arg(long, value_name = "BUNDLE")]
    pub previous: Option<PathBuf>,

    /// Go on when the bundle does not match its manifest; the files that
    /// differ keep their sealed hashes, so the bundle still fails verification.
    #[arg(long)]
    pub allow_modified: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let rules = rules::load(args.queries.as_deref())?;
    let opts = rules::AssessOptions {
        allow_modified: args.allow_modified,
        previous: args.previous.as_deref(),
    };
    let a = rules::assess_bundle(
        &args.bundle,
        &ctx.policy,
        rules,
        ctx.clock.requested_as_of(),
        ctx.clock.now(),
        opts,
    )
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
        rfc3339(a.as_of),
        args.bundle.join("findings.*").display()
    );
    if let Some(note) = &a.as_of_note {
        eprintln!("note: {note}");
    }
    for g in &a.gaps {
        eprintln!("partial: {}", crate::output::display_safe(g));
    }
    Ok(a.outcome(args.gate.fail_on))
}
