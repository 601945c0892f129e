//! One file per subcommand. Each opens with its usage text and `Args`, then
//! one `run`. Only these files and `main.rs` see the command line.

use std::io::IsTerminal;

use crate::cli::{Cli, Command, GlobalArgs, TrailCommand};
use crate::error::Outcome;

pub mod assess;
pub mod collect;
pub mod diagnose;
pub mod inventory;
pub mod trail_scan;
pub mod verify_bundle;

/// What every command receives besides its own arguments.
pub struct Ctx {
    pub global: GlobalArgs,
}

impl Ctx {
    /// Progress bars only when a person watches stderr.
    pub fn progress(&self) -> bool {
        !self.global.no_progress && std::io::stderr().is_terminal()
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let ctx = Ctx { global: cli.global };
    match cli.command {
        Command::Inventory(args) => inventory::run(&ctx, args).await,
        Command::Collect(args) => collect::run(&ctx, args).await,
        Command::Assess(args) => assess::run(&ctx, args).await,
        Command::Diagnose(args) => diagnose::run(&ctx, args).await,
        Command::VerifyBundle(args) => verify_bundle::run(&ctx, args).await,
        Command::Trail(TrailCommand::Scan(args)) => trail_scan::run(&ctx, args).await,
    }
}
