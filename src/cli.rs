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
    /// Check every file of a bundle against its manifest.
    VerifyBundle(commands::verify_bundle::Args),
}

/// Parses `--since`-style times: RFC 3339, or a date meaning its first second (UTC).
pub fn parse_start(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_when(s, false)
}

/// Parses `--until`/`--as-of`-style times: RFC 3339, or a date meaning its last second (UTC).
pub fn parse_end(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_when(s, true)
}

fn parse_when(s: &str, end_of_day: bool) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{DateTime, NaiveDate, Utc};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "{s:?} is not a date (2025-01-31) or an RFC 3339 time (2025-01-31T12:00:00Z)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_dates_or_instants() {
        assert_eq!(
            parse_start("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_end("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T23:59:59+00:00"
        );
        assert_eq!(
            parse_start("2025-01-31T12:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2025-01-31T10:00:00+00:00"
        );
        assert!(parse_start("last tuesday").is_err());
    }
}
