//! `kmsrot man [--out DIR]`
//!
//! The man page, generated from the clap definitions: `kmsrot.1` on stdout,
//! or with `--out DIR` one page per subcommand as well (`kmsrot-report.1`,
//! ...), ready for `man -l` or a package's `share/man/man1`.
//!
//! Exit: 0; 2 the folder cannot be written.

use std::io::Write;
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
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            let mut stdout = crate::output::stdout();
            stdout.write_all(&page)?;
            stdout.flush()?;
        }
        Some(dir) => {
            // Not emptied first: a man folder (share/man/man1) holds other
            // pages. Each page is written atomically.
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            write_pages(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            eprintln!("man pages written to {}", dir.display());
        }
    }
    Ok(Outcome::Complete)
}

/// The page of `cmd` and of each visible subcommand, as clap_mangen names them.
fn write_pages(cmd: clap::Command, dir: &std::path::Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)?;
    crate::output::write_bytes_atomic(&dir.join(man.get_filename()), &page)
}
