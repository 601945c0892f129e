//! `kmsrot diagnose KEY [--bundle BUNDLE]`
//!
//! Troubleshoots one key, named by id, ARN or alias: its state and
//! eligibility, rotation status and history, the CloudTrail rotation failures
//! grouped by principal and error code, the key-policy statements that deny
//! rotation, its grants, and a one-paragraph verdict with the fix.
//!
//! Live (default): reads the key from KMS in the key's region (from its ARN,
//! else --region or the configured region), and CloudTrail's LookupEvents for
//! the last 90 days. With --bundle: reads everything from the bundle, offline
//! (grants are not kept in bundles).
//!
//! `--output json` prints the report as JSON.
//!
//! Exit: 0 the report was made; 2 the key was not found or cannot be read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::context::Ctx;
use crate::diagnose;
use crate::error::Outcome;
use crate::output::Format;

#[derive(Debug, clap::Args)]
#[command(about = "Troubleshoot one key's rotation: status, history, failures, policy, verdict")]
pub struct Args {
    /// Key id, key ARN, alias (alias/name) or alias ARN.
    pub key: String,

    /// Read from this bundle instead of AWS.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let report = match &args.bundle {
        Some(dir) => diagnose::from_bundle(dir, &args.key)?,
        None => diagnose::live(ctx, &args.key).await?,
    };
    let mut stdout = std::io::stdout().lock();
    match ctx.output {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
        Format::Table | Format::Csv => {
            stdout.write_all(diagnose::render_text(&report).as_bytes())?
        }
    }
    stdout.flush()?;
    Ok(Outcome::Complete)
}
