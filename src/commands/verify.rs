//! `kmsrot verify JOURNAL --out validation.json`
//!
//! Re-reads the rotation status (GetKeyRotationStatus) of every key the apply
//! journal records as enabled and writes the validation summary: requested,
//! enabled, confirmed, skipped, failed, and each discrepancy (key, expected,
//! observed). An approved action with no outcome is a discrepancy too.
//!
//! Exit: 0 every enabled key is confirmed; 1 any discrepancy; 2 fatal error.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::{write_json_file, Table};
use crate::remediate::{journal, verify};

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
    let v = verify::verify(
        ctx.aws().await?,
        &args.journal.display().to_string(),
        &replay,
    )
    .await;
    write_json_file(&args.out, &v)?;

    let mut table = Table::new([
        "requested",
        "enabled",
        "confirmed",
        "skipped",
        "failed",
        "discrepancies",
    ]);
    table.row([
        v.requested,
        v.enabled,
        v.confirmed,
        v.skipped,
        v.failed,
        v.discrepancies.len(),
    ]);
    table.print_stdout(ctx.output)?;
    for d in &v.discrepancies {
        eprintln!(
            "discrepancy: {} ({}): expected {}, observed {}",
            d.key_arn, d.region, d.expected, d.observed
        );
    }
    eprintln!("validation written to {}", args.out.display());
    Ok(if v.discrepancies.is_empty() {
        Outcome::Complete
    } else {
        Outcome::Findings
    })
}
