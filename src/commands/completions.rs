//! `kmsrot completions SHELL`
//!
//! Prints the shell completion script for bash, zsh, fish, elvish or
//! PowerShell to stdout, generated from the same clap definitions as `--help`:
//!
//!   kmsrot completions bash > ~/.local/share/bash-completion/completions/kmsrot
//!   kmsrot completions zsh  > "${fpath[1]}/_kmsrot"
//!
//! Exit: 0.

use std::io::Write;

use anyhow::Result;

use crate::error::Outcome;

#[derive(Debug, clap::Args)]
#[command(about = "Print the shell completion script")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `cmd` is the whole command line's definition, from the CLI.
pub fn run(args: Args, mut cmd: clap::Command) -> Result<Outcome> {
    // Rendered whole first: clap_complete panics on a write error, and the
    // reader may close the pipe (`kmsrot completions bash | true`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "kmsrot", &mut script);
    let mut stdout = crate::output::stdout();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(Outcome::Complete)
}
