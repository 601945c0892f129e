//! One file per subcommand. Each opens with its usage text and `Args`, then
//! one `run`. Only these files and `main.rs` see the command line.

use std::io::IsTerminal;

use crate::cli::{Cli, Command, GlobalArgs, TrailCommand};
use crate::error::Outcome;

pub mod apply;
pub mod approve;
pub mod assess;
pub mod audit;
pub mod collect;
pub mod completions;
pub mod diagnose;
pub mod diff;
pub mod iac;
pub mod inventory;
pub mod man;
pub mod plan;
pub mod report;
pub mod trail_scan;
pub mod verify;
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
        Command::Plan(args) => plan::run(&ctx, args).await,
        Command::Approve(args) => approve::run(&ctx, args).await,
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Verify(args) => verify::run(&ctx, args).await,
        Command::Report(args) => report::run(&ctx, args).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
        Command::Diff(args) => diff::run(&ctx, args).await,
        Command::Iac(args) => iac::run(&ctx, args).await,
        Command::Completions(args) => completions::run(&ctx, args).await,
        Command::Man(args) => man::run(&ctx, args).await,
        Command::Trail(TrailCommand::Scan(args)) => trail_scan::run(&ctx, args).await,
    }
}
