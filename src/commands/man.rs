//! `kmsrot man [--out DIR]`
//!
//! The man page, generated from the clap definitions: `kmsrot.1` on stdout,
//! or with `--out DIR` one page per subcommand as well (`kmsrot-report.1`,
//! ...), ready for `man -l` or a package's `share/man/man1`.
//!
//! Exit: 0; 2 the folder cannot be written.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::error::Outcome;

#[derive(Debug, clap::Args)]
#[command(about = "Print the man page (or write every page into a folder)")]
pub struct Args {
    /// Write kmsrot.1 and a page per subcommand into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `cmd` is the whole command line's definition, from the CLI.
pub fn run(args: Args, cmd: clap::Command) -> Result<Outcome> {
    match &args.out {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            eprintln!("man pages written to {}", dir.display());
        }
    }
    Ok(Outcome::Complete)
}
