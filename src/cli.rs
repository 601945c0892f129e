//! Command-line surface: global flags, the subcommand list, and the one
//! place where what was typed becomes the run's [`Ctx`]. Each subcommand's
//! own flags live at the top of its file in `commands/`; flags shared by
//! several live in `args`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::args::AccountArgs;
use crate::aws::AwsOptions;
use crate::commands;
use crate::context::{Clock, Ctx};
use crate::error::Outcome;
use crate::output::Format;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::terminal::TerminalBars;

#[derive(Debug, Parser)]
#[command(
    name = "kmsrot",
    version,
    about = "Proves, and where a person approves, fixes AWS KMS key rotation",
    long_about = "Proves, and where a person approves, fixes AWS KMS key rotation.\n\n\
Data goes to stdout and files; progress, logs (RUST_LOG) and errors go to stderr.\n\
Exit codes: 0 complete, 1 findings at or above --fail-on, 2 usage or fatal error, \
3 partial coverage (stderr says what is missing).",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that work with every subcommand, named as in the AWS CLI.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Named profile from ~/.aws/config (otherwise AWS_PROFILE, then `default`).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Region to read; repeat it, or give `all` for every region enabled in the
    /// account. Defaults to the configured region (AWS_REGION or the profile).
    #[arg(long = "region", global = true, value_name = "REGION")]
    pub regions: Vec<String>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    /// AWS_ENDPOINT_URL works too.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// How rows printed to stdout are formatted.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Never draw progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,

    #[command(flatten)]
    pub accounts: AccountArgs,
}

impl GlobalArgs {
    /// The AWS flags, checked; an unreadable `--accounts-file` fails here.
    pub fn aws(&self) -> Result<AwsOptions> {
        Ok(AwsOptions {
            profile: self.profile.clone(),
            regions: self.regions.clone(),
            endpoint_url: self.endpoint_url.clone(),
            accounts: self.accounts.options()?,
        })
    }

    /// Bars only when a person watches stderr.
    fn progress(&self) -> Progress {
        if !self.no_progress && std::io::stderr().is_terminal() {
            Progress::new(Arc::new(TerminalBars::new()))
        } else {
            Progress::hidden()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every KMS key with its rotation status, history and eligibility.
    Inventory(commands::inventory::Args),
    /// Inventory plus CloudTrail scan, written as one evidence bundle.
    Collect(commands::collect::Args),
    /// Run the rules over a bundle and write its findings.
    Assess(commands::assess::Args),
    /// Troubleshoot one key's rotation, live or from a bundle.
    Diagnose(commands::diagnose::Args),
    /// Collect, assess and report in one run: the everyday command.
    Audit(commands::audit::Args),
    /// The auditor's report of an assessed bundle, offline.
    Report(commands::report::Args),
    /// What changed between two assessed bundles: the monthly review.
    Diff(commands::diff::Args),
    /// Check every file of a bundle against its manifest.
    VerifyBundle(commands::verify_bundle::Args),
    /// Plan rotation fixes from a bundle: one action per key.
    Plan(commands::plan::Args),
    /// Approve actions of a plan (--all, --key, or interactively).
    Approve(commands::approve::Args),
    /// Apply an approval: dry run by default, --execute changes AWS.
    Apply(commands::apply::Args),
    /// Re-read the keys an apply enabled; write the validation summary.
    Verify(commands::verify::Args),
    /// Judge Terraform plans and state and CloudFormation templates before the keys exist.
    Iac(commands::iac::Args),
    /// Print the shell completion script.
    Completions(commands::completions::Args),
    /// Print the man page.
    Man(commands::man::Args),
    /// CloudTrail evidence of rotation: files, the S3 archive, LookupEvents.
    #[command(subcommand)]
    Trail(TrailCommand),
}

/// `kmsrot trail ...`
#[derive(Debug, Subcommand)]
pub enum TrailCommand {
    /// Reads CloudTrail and keeps the KMS rotation and key-lifecycle events.
    Scan(commands::trail_scan::Args),
}

impl Command {
    /// The `--policy` file of the commands that read one.
    fn policy_file(&self) -> Option<&Path> {
        match self {
            Command::Collect(a) => a.policy.policy.as_deref(),
            Command::Assess(a) => a.policy.policy.as_deref(),
            Command::Audit(a) => a.policy.policy.as_deref(),
            Command::Plan(a) => a.policy.policy.as_deref(),
            Command::Iac(a) => a.policy.policy.as_deref(),
            Command::Diagnose(a) => a.policy.as_deref(),
            _ => None,
        }
    }

    /// Whether the run will call AWS, from the command line alone. Those runs
    /// check who the caller is before any other work, so missing or refused
    /// credentials and an unreachable endpoint stop them with nothing read or
    /// written. `verify-bundle` decides from the bundle (signed or not) and
    /// checks on its first AWS call; `approve` without `--sign-with` records
    /// the caller when it can and goes on without.
    fn calls_aws(&self) -> bool {
        match self {
            Command::Inventory(_)
            | Command::Collect(_)
            | Command::Audit(_)
            | Command::Apply(_)
            | Command::Verify(_) => true,
            Command::Diagnose(a) => a.bundle.is_none(),
            Command::Report(a) => a.sign_with.is_some() || a.upload.is_some(),
            Command::Approve(a) => a.sign_with.is_some(),
            // `trail scan` checks its sources and flags (`--validate`,
            // `--public-keys`) first, then the caller when a source is
            // remote, before reading anything (`trail::sources::scan_sources`).
            Command::Trail(TrailCommand::Scan(_)) => false,
            Command::Assess(_)
            | Command::Plan(_)
            | Command::Diff(_)
            | Command::VerifyBundle(_)
            | Command::Iac(_)
            | Command::Completions(_)
            | Command::Man(_) => false,
        }
    }

    /// The `--out` folder of the commands that write one.
    fn out_dir(&self) -> Option<&Path> {
        match self {
            Command::Inventory(a) => Some(&a.out),
            Command::Collect(a) => Some(&a.out),
            Command::Audit(a) => Some(&a.out),
            Command::Report(a) => Some(&a.out),
            Command::Trail(TrailCommand::Scan(a)) => Some(&a.out),
            Command::Diff(a) => a.out.as_deref(),
            Command::Iac(a) => a.out.as_deref(),
            Command::Man(a) => a.out.as_deref(),
            _ => None,
        }
    }

    /// The date findings are judged at, where the command takes one.
    fn as_of(&self) -> Option<DateTime<Utc>> {
        match self {
            Command::Assess(a) => a.as_of,
            Command::Report(a) => a.as_of,
            Command::Audit(a) => a.window.until,
            Command::Iac(a) => a.as_of,
            _ => None,
        }
    }
}

/// Builds the run's context once, then runs the one command asked for.
pub async fn run(cli: Cli) -> Result<Outcome> {
    // The policy is read before anything else, so a bad file fails before
    // any AWS call.
    let policy = Policy::load(cli.command.policy_file())?;
    let clock = Clock::system().with_as_of(cli.command.as_of());
    let ctx = Ctx::new(
        cli.global.aws()?,
        policy,
        clock,
        cli.global.output,
        cli.global.progress(),
    );
    if cli.command.calls_aws() {
        ctx.caller().await?;
    }
    // The --out folder is made before the work that fills it; a run that
    // then fails outright (exit 2: every region unreachable, a refused call)
    // must not leave an empty folder that looks like a result.
    let new_out = cli
        .command
        .out_dir()
        .filter(|d| std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf);
    let outcome = dispatch(&ctx, cli.command).await;
    if let (Err(_), Some(dir)) = (&outcome, new_out) {
        crate::output::remove_if_empty(&dir);
    }
    outcome
}

async fn dispatch(ctx: &Ctx, command: Command) -> Result<Outcome> {
    match command {
        Command::Inventory(args) => commands::inventory::run(ctx, args).await,
        Command::Collect(args) => commands::collect::run(ctx, args).await,
        Command::Assess(args) => commands::assess::run(ctx, args).await,
        Command::Diagnose(args) => commands::diagnose::run(ctx, args).await,
        Command::VerifyBundle(args) => commands::verify_bundle::run(ctx, args).await,
        Command::Plan(args) => commands::plan::run(ctx, args).await,
        Command::Approve(args) => commands::approve::run(ctx, args).await,
        Command::Apply(args) => commands::apply::run(ctx, args).await,
        Command::Verify(args) => commands::verify::run(ctx, args).await,
        Command::Report(args) => commands::report::run(ctx, args).await,
        Command::Audit(args) => commands::audit::run(ctx, args).await,
        Command::Diff(args) => commands::diff::run(ctx, args).await,
        Command::Iac(args) => commands::iac::run(ctx, args).await,
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::man::run(args, Cli::command()),
        Command::Trail(TrailCommand::Scan(args)) => commands::trail_scan::run(ctx, args).await,
    }
}
