//! `kmsrot verify-bundle BUNDLE`
//!
//! Re-hashes every file of an evidence bundle and compares it with the
//! SHA-256 recorded in `manifest.json`: files changed, added or removed since
//! the bundle was sealed are listed, and so is every symbolic link (never
//! followed; a sealed bundle has none) and every file the manifest does not
//! list. Needs no AWS access.
//!
//! When the bundle is signed (`kmsrot report --sign-with KEY` wrote
//! manifest.json.sig), the signature is checked too: the key's public half
//! from KMS GetPublicKey, the RSASSA-PSS verification done locally. This is
//! the one AWS call; `--no-signature` skips it for offline checks.
//!
//! Exit: 0 every file matches (and the signature verifies); 1 something
//! changed, was added or removed, or the signature does not verify;
//! 2 the bundle or its manifest cannot be read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::bundle;
use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::Table;
use crate::report::publish::{self, SignatureCheck};

#[derive(Debug, clap::Args)]
#[command(about = "Check every file of a bundle against its manifest's SHA-256")]
pub struct Args {
    /// The bundle folder.
    pub bundle: PathBuf,

    /// Do not check the manifest's signature (no AWS call).
    #[arg(long)]
    pub no_signature: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let v = bundle::verify(&args.bundle)?;
    let mut table = Table::new(["status", "file"]);
    for (status, file) in v.failures() {
        table.row([status, file]);
    }
    let mut stdout = crate::output::stdout();
    if !v.ok() {
        table.print(ctx.output, &mut stdout)?;
    }
    stdout.flush()?;
    let signature_ok = if args.no_signature || publish::read_info(&args.bundle)?.is_none() {
        if !args.no_signature {
            eprintln!("{}: not signed", args.bundle.display());
        }
        true
    } else {
        match publish::verify(ctx.aws().await?, &args.bundle).await? {
            SignatureCheck::Unsigned => true,
            SignatureCheck::Valid { key_id, form } => {
                eprintln!(
                    "{}: signature verifies with {} ({form})",
                    args.bundle.display(),
                    crate::output::display_safe(&key_id)
                );
                true
            }
            SignatureCheck::Invalid { key_id, reason } => {
                eprintln!(
                    "{}: signature by {} does not verify: {}",
                    args.bundle.display(),
                    crate::output::display_safe(&key_id),
                    crate::output::display_safe(&reason)
                );
                false
            }
        }
    };
    if v.ok() {
        eprintln!(
            "{}: all {} files match the manifest",
            args.bundle.display(),
            v.verified
        );
        Ok(if signature_ok {
            Outcome::Complete
        } else {
            Outcome::Findings
        })
    } else {
        eprintln!(
            "{}: does not match its manifest: {}",
            args.bundle.display(),
            v.describe()
        );
        Ok(Outcome::Findings)
    }
}
