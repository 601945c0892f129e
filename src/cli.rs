//! Command-line surface: global flags and the subcommand list. Each
//! subcommand's own flags live at the top of its file in `commands/`.

use clap::{Args, Parser, Subcommand};

use crate::aws::AwsOptions;
use crate::commands;
use crate::output::Format;

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
}

impl GlobalArgs {
    pub fn aws(&self) -> AwsOptions {
        AwsOptions {
            profile: self.profile.clone(),
            regions: self.regions.clone(),
            endpoint_url: self.endpoint_url.clone(),
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
