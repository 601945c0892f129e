//! Command-line surface: global flags and the subcommand list. Each
//! subcommand's own flags live at the top of its file in `commands/`.

use clap::{Args, Parser, Subcommand};

use crate::aws::AwsOptions;
use crate::commands;
use crate::output::Format;
use crate::trail::reader::{
    ReadOptions, DEFAULT_LATE_DELIVERY_DAYS, DEFAULT_MAX_LOG_BYTES, DEFAULT_QUERY_TIMEOUT_SECS,
};

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

/// How CloudTrail sources are read: the limits that keep a scan bounded,
/// shared by `trail scan`, `collect` and `audit`.
#[derive(Debug, Clone, Args)]
pub struct TrailReadArgs {
    /// A log file, or gzip member, larger than this once inflated is
    /// reported corrupt and not read, so hostile input (a gzip bomb) cannot
    /// exhaust memory. Bytes, or with a KiB, MiB or GiB suffix.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_log_bytes: u64,

    /// S3 archive: day folders are delivery days, so they are listed up to
    /// this many days after --until to catch late deliveries; later ones are
    /// not read (coverage.json says so).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_LATE_DELIVERY_DAYS,
          value_parser = clap::value_parser!(u32).range(0..=365))]
    pub late_delivery_days: u32,

    /// CloudTrail Lake: seconds a query may wait or run before it is
    /// cancelled and the coverage marked partial.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_QUERY_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub query_timeout: u64,

    /// S3 archive: check CloudTrail's signed digest files (log file
    /// integrity validation): each digest's signature and chain, and each log
    /// file's SHA-256. Outcomes go to coverage.json; a file that is not valid
    /// makes the scan partial (exit 3).
    #[arg(long)]
    pub validate: bool,

    /// With --validate: the public keys, as `aws cloudtrail list-public-keys`
    /// prints them (JSON), instead of calling CloudTrail ListPublicKeys.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<std::path::PathBuf>,
}

impl Default for TrailReadArgs {
    fn default() -> Self {
        TrailReadArgs {
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            late_delivery_days: DEFAULT_LATE_DELIVERY_DAYS,
            query_timeout: DEFAULT_QUERY_TIMEOUT_SECS,
            validate: false,
            public_keys: None,
        }
    }
}

impl TrailReadArgs {
    /// Sets these limits on `opts`.
    pub fn apply(&self, opts: ReadOptions) -> ReadOptions {
        ReadOptions {
            max_log_bytes: self.max_log_bytes,
            late_delivery_days: self.late_delivery_days,
            query_timeout_secs: self.query_timeout,
            validate: self.validate,
            public_keys: self.public_keys.clone(),
            ..opts
        }
    }
}

/// `1048576`, `512KiB`, `256MiB`, `1GiB` (also `K`, `M`, `G`, `KB`...: all
/// powers of 1024) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 268435456 or 256MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{s}`: unknown unit (use KiB, MiB or GiB)")),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes == 0 {
        return Err("the size must be more than 0".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("268435456"), Ok(256 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
