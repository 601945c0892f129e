//! `kmsrot audit --out DIR [--trail SOURCE]... [--policy FILE] [--since T] [--until T] [--fail-on SEVERITY]`
//!
//! The everyday run: `collect` into DIR/bundle, `assess` it, and write the
//! report into DIR/report, with a progress bar per phase on a terminal.
//! Each phase is the same code as its own command, so `audit`'s bundle and
//! report are exactly what the three commands would produce.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high);
//! 3 coverage partial; 0 otherwise; 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::trail_scan::{parse_since, parse_until};
use super::{assess, collect, report, Ctx};
use crate::error::Outcome;
use crate::policy::{Policy, Severity};
use crate::progress::Progress;
use crate::rules;

#[derive(Debug, clap::Args)]
#[command(about = "Collect, assess and report in one run")]
pub struct Args {
    /// Folder for the run: DIR/bundle (the evidence) and DIR/report.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// A CloudTrail source: a folder, s3://BUCKET/PREFIX, lookup, lake:STORE. Repeatable.
    #[arg(long = "trail", value_name = "SOURCE")]
    pub trails: Vec<String>,

    /// Policy file: periods, grace, window, severity overrides, exemptions.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Start of the audit window (default: --until minus the policy's audit_window_days).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// End of the audit window and the assessment's "now" (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,

    /// Keep only CloudTrail events of this account; repeatable.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Exit 1 when an open finding is at least this severe.
    #[arg(long, value_enum, default_value_t = Severity::High)]
    pub fail_on: Severity,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,

    /// The previous run's bundle: findings still open keep the date they were first seen.
    #[arg(long, value_name = "BUNDLE")]
    pub previous: Option<PathBuf>,

    /// Say in the manifest that the data is not from a real account.
    #[arg(long, value_name = "WHY")]
    pub simulated: Option<String>,

    #[command(flatten)]
    pub read: crate::cli::TrailReadArgs,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let bundle = args.out.join("bundle");
    let report_dir = args.out.join("report");
    let previous: Vec<&std::path::Path> = args.previous.iter().map(|p| p.as_path()).collect();
    crate::output::prepare_out_dir(&args.out, args.force, &previous)?;
    // Read before collecting, so a bad policy fails before any AWS call.
    let policy = Policy::load(args.policy.as_deref())?;
    let rule_set = rules::load(None)?;
    policy.check_rule_ids(rule_set.iter().map(|r| r.id.as_str()))?;

    let progress = Progress::new(ctx.progress());
    let phases = progress.bar("audit", 3);

    phases.set_message("collect");
    collect::run(
        ctx,
        collect::Args {
            out: bundle.clone(),
            trails: args.trails.clone(),
            since: args.since,
            until: args.until,
            policy: args.policy.clone(),
            accounts: args.accounts.clone(),
            include_data_events: false,
            simulated: args.simulated.clone(),
            concurrency: 16,
            force: false,
            read: args.read.clone(),
        },
    )
    .await
    .context("audit: collect")?;
    phases.inc(1);

    phases.set_message("assess");
    let as_of = args.until.unwrap_or_else(Utc::now);
    let a = assess::assess_bundle(
        &bundle,
        &policy,
        rule_set,
        as_of,
        false,
        args.previous.as_deref(),
    )
    .with_context(|| format!("audit: assessing {}", bundle.display()))?;
    let mut stdout = crate::output::stdout();
    assess::summary_table(&a.findings).print(ctx.global.output, &mut stdout)?;
    drop(stdout);
    phases.inc(1);

    phases.set_message("report");
    report::write_report(&bundle, &report_dir, None, false, false).context("audit: report")?;
    phases.inc(1);
    phases.finish_and_clear();

    Ok(assess::outcome(&a, args.fail_on))
}
