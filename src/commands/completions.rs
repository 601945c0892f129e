//! `kmsrot completions SHELL`
//!
//! Prints the shell completion script for bash, zsh, fish, elvish or
//! PowerShell to stdout, generated from the same clap definitions as `--help`:
//!
//!   kmsrot completions bash > ~/.local/share/bash-completion/completions/kmsrot
//!   kmsrot completions zsh  > "${fpath[1]}/_kmsrot"
//!
//! Exit: 0.

use anyhow::Result;
use clap::CommandFactory;

use super::Ctx;
use crate::cli::Cli;
use crate::error::Outcome;

#[derive(Debug, clap::Args)]
#[command(about = "Print the shell completion script")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub async fn run(_ctx: &Ctx, args: Args) -> Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "kmsrot", &mut std::io::stdout());
    Ok(Outcome::Complete)
}
