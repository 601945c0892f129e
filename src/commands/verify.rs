//! `kmsrot verify JOURNAL --out validation.json`
//!
//! Is the approved work done? Re-reads every key the apply journal records as
//! enabled (with --accounts/--ou, in each account through the role assumed
//! there) (GetKeyRotationStatus; for a cancelled deletion DescribeKey too)
//! and writes the validation summary: requested, enabled, confirmed, skipped,
//! failed, in flight, missing, and each discrepancy (key, expected,
//! observed).
//!
//! Exit: 0 every approved action ended enabled or skipped and every enabled
//! key is still in its approved end state; 1 an action failed, is still in
//! flight or never ran, or a key left its end state; 2 fatal error.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::Table;
use crate::remediate::{display_safe, journal, verify, write_json_atomic};

#[derive(Debug, clap::Args)]
#[command(about = "Re-read every key an apply enabled and write the validation summary")]
pub struct Args {
    /// The journal written by `kmsrot apply --execute`.
    pub journal: PathBuf,

    /// Where to write the validation summary.
    #[arg(long, value_name = "FILE", default_value = "validation.json")]
    pub out: PathBuf,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    if !args.journal.exists() {
        bail!("{}: no such journal", args.journal.display());
    }
    let replay = journal::replay(&args.journal)?;
    if replay.runs == 0 {
        bail!(
            "{}: the journal records no apply run",
            args.journal.display()
        );
    }
    // With the organization flags, each account's keys are re-read through
    // the role assumed in it, as they were changed.
    let mut configs = std::collections::HashMap::new();
    if ctx.is_multi_account() {
        let accounts: std::collections::BTreeSet<&str> = replay
            .requested
            .iter()
            .map(|q| q.account_id.as_str())
            .collect();
        for account in accounts {
            let got = ctx.account_access(account).await.map(|a| a.config.clone());
            configs.insert(account.to_string(), got);
        }
    }
    let v = verify::verify(
        ctx.aws().await?,
        &configs,
        &args.journal.display().to_string(),
        &replay,
    )
    .await;
    write_json_atomic(&args.out, &v)?;

    let mut table = Table::new([
        "requested",
        "enabled",
        "confirmed",
        "skipped",
        "failed",
        "in_flight",
        "missing",
        "discrepancies",
    ]);
    table.row([
        v.requested,
        v.enabled,
        v.confirmed,
        v.skipped,
        v.failed,
        v.in_flight,
        v.missing,
        v.discrepancies.len(),
    ]);
    table.print_stdout(ctx.output)?;
    for k in &v.failed_keys {
        eprintln!(
            "failed: {} ({}): {}",
            display_safe(&k.key_arn),
            display_safe(&k.region),
            display_safe(k.reason.as_deref().unwrap_or("no reason recorded"))
        );
    }
    for d in &v.discrepancies {
        eprintln!(
            "discrepancy: {} ({}): expected {}, observed {}",
            display_safe(&d.key_arn),
            display_safe(&d.region),
            d.expected,
            display_safe(&d.observed)
        );
    }
    eprintln!("validation written to {}", args.out.display());
    Ok(if v.work_done() {
        Outcome::Complete
    } else {
        Outcome::Findings
    })
}
