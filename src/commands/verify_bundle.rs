//! `kmsrot verify-bundle BUNDLE`
//!
//! Re-hashes every file of an evidence bundle and compares it with the
//! SHA-256 recorded in `manifest.json`: files changed, added or removed since
//! the bundle was sealed are listed. Needs no AWS access.
//!
//! Exit: 0 every file matches; 1 something changed, was added or removed;
//! 2 the bundle or its manifest cannot be read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use crate::bundle;
use crate::error::Outcome;
use crate::output::Table;

#[derive(Debug, clap::Args)]
#[command(about = "Check every file of a bundle against its manifest's SHA-256")]
pub struct Args {
    /// The bundle folder.
    pub bundle: PathBuf,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let v = bundle::verify(&args.bundle)?;
    let mut table = Table::new(["status", "file"]);
    for f in &v.changed {
        table.row(["changed", f.as_str()]);
    }
    for f in &v.added {
        table.row(["added", f.as_str()]);
    }
    for f in &v.removed {
        table.row(["removed", f.as_str()]);
    }
    let mut stdout = std::io::stdout().lock();
    if !v.ok() {
        table.print(ctx.global.output, &mut stdout)?;
    }
    stdout.flush()?;
    if v.ok() {
        eprintln!(
            "{}: all {} files match the manifest",
            args.bundle.display(),
            v.verified
        );
        Ok(Outcome::Complete)
    } else {
        eprintln!(
            "{}: {} changed, {} added, {} removed since the manifest was sealed",
            args.bundle.display(),
            v.changed.len(),
            v.added.len(),
            v.removed.len()
        );
        Ok(Outcome::Findings)
    }
}
