//! `kmsrot diagnose KEY [--bundle BUNDLE]`
//!
//! Troubleshoots one key, named by id, ARN or alias: its state and
//! eligibility, rotation status and history, the CloudTrail rotation failures
//! grouped by caller and error code, the key-policy statements that deny
//! rotation, its grants, the open findings the rules make for it (the same
//! rules `assess` runs, over the same evidence), and a verdict with the fix.
//!
//! With --bundle the key is judged as the bundle's assessment judged it (its
//! as-of and the policy recorded in the manifest, unless --policy), so
//! `--output json`'s `findings` are the open findings `assess` wrote for the
//! key.
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
use crate::rules;

#[derive(Debug, clap::Args)]
#[command(about = "Troubleshoot one key's rotation: status, history, failures, policy, verdict")]
pub struct Args {
    /// Key id, key ARN, alias (alias/name) or alias ARN.
    pub key: String,

    /// Read from this bundle instead of AWS.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,

    /// With --bundle: go on when the bundle does not match its manifest.
    #[arg(long, requires = "bundle")]
    pub allow_modified: bool,
    /// Policy file (default: with --bundle, the policy the bundle was assessed
    /// with, as its manifest records it; live, the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Folder of extra rules (*.sql), as for `assess --queries`.
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    // The run's context read --policy; without it a bundle is judged with
    // the policy its manifest records.
    let policy = args.policy.is_some().then(|| ctx.policy.clone());
    let rules = rules::load(args.queries.as_deref())?;
    let report = match &args.bundle {
        Some(dir) => diagnose::from_bundle(dir, &args.key, policy, &rules, args.allow_modified)?,
        None => diagnose::live(ctx, &args.key, &rules, &ctx.policy).await?,
    };
    let mut stdout = crate::output::stdout();
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
