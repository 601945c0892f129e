//! `kmsrot audit --out DIR [--force] [--previous OLD_BUNDLE] [--trail SOURCE]... [--policy FILE] [--since T] [--until T] [--fail-on SEVERITY]`
//!
//! The everyday run: collect into DIR/bundle, assess it, and write the report
//! into DIR/report, with a progress bar per phase on a terminal. Each phase
//! is the same library call as its own command, so `audit`'s bundle and
//! report are exactly what `collect`, `assess` and `report` would produce.
//! `--until` is also the date findings are judged at. `--out` must be new or
//! empty (`--force` empties it first); `--previous` carries each still-open
//! finding's first-seen date from last month's bundle.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high);
//! 3 coverage partial; 0 otherwise; 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::{GateArgs, LimitsArgs, PolicyArgs, SourceArgs, WindowArgs};
use crate::bundle::{self, CollectRequest};
use crate::context::Ctx;
use crate::error::Outcome;
use crate::report;
use crate::rules;

#[derive(Debug, clap::Args)]
#[command(about = "Collect, assess and report in one run")]
pub struct Args {
    /// Folder for the run: DIR/bundle (the evidence) and DIR/report.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub sources: SourceArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub gate: GateArgs,

    /// Say in the manifest that the data is not from a real account.
    #[arg(long, value_name = "WHY")]
    pub simulated: Option<String>,

    #[command(flatten)]
    pub limits: LimitsArgs,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,

    /// The previous run's bundle: findings still open keep the date they were first seen.
    #[arg(long, value_name = "BUNDLE")]
    pub previous: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let bundle_dir = args.out.join("bundle");
    let report_dir = args.out.join("report");
    // The output must land neither in the previous bundle nor among local logs it reads.
    let local = crate::trail::sources::local_paths(&args.sources.trails);
    let previous: Vec<&std::path::Path> = args
        .previous
        .iter()
        .chain(local.iter())
        .map(PathBuf::as_path)
        .collect();
    crate::output::prepare_out_dir(&args.out, args.force, &previous)?;
    // Loaded before collecting, so a broken rule or a policy naming no rule
    // fails before any AWS call.
    let rule_set = rules::load(None)?;
    ctx.policy
        .check_rule_ids(rule_set.iter().map(|r| r.id.as_str()))?;
    let request = CollectRequest {
        out: bundle_dir.clone(),
        force: false,
        trails: args.sources.trails.clone(),
        window: args.window.window()?,
        filter: args
            .sources
            .filter
            .read_options(Default::default(), Vec::new())?,
        simulated: args.simulated,
        limits: args.limits.limits(),
    };

    let phases = ctx.progress.bar("audit", 3);
    phases.set_message("collect");
    let collected = bundle::collect(ctx, &request)
        .await
        .context("audit: collect")?;
    collected.summary_table().print_stdout(ctx.output)?;
    for line in collected.notes() {
        eprintln!("{line}");
    }
    phases.inc(1);

    phases.set_message("assess");
    // Judged as of --until, or of the collection that just ran.
    let a = rules::assess_bundle(
        &bundle_dir,
        &ctx.policy,
        rule_set,
        ctx.clock.requested_as_of(),
        ctx.clock.now(),
        rules::AssessOptions {
            allow_modified: false,
            previous: args.previous.as_deref(),
        },
    )
    .with_context(|| format!("audit: assessing {}", bundle_dir.display()))?;
    a.summary_table().print_stdout(ctx.output)?;
    phases.inc(1);

    phases.set_message("report");
    let written = report::write_bundle_report(
        &bundle_dir,
        &report_dir,
        None,
        false,
        false,
        report::due::DEFAULT_DUE_WITHIN,
    )
    .context("audit: report")?;
    eprintln!("{}", written.summary_line());
    phases.inc(1);
    phases.finish_and_clear();

    Ok(a.outcome(args.gate.fail_on))
}
