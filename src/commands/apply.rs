//! `kmsrot apply approval.json [--execute] [--journal FILE] [--concurrency N] [--rate N]`
//!
//! Without --execute, a dry run: per approved action, what would change and
//! what a fresh re-check of the key (DescribeKey, GetKeyRotationStatus) says.
//! Nothing changes in AWS and no journal is written.
//!
//! With --execute: refuses an approval whose plan no longer hashes to the
//! approved SHA-256; re-checks each approved key and skips, with the reason,
//! one that is no longer eligible, is pending deletion or disabled, or already
//! rotates at the planned period; otherwise calls EnableKeyRotation with the
//! planned period (CancelKeyDeletion, EnableKey, EnableKeyRotation for
//! cancel_deletion_and_enable). Outcomes: enabled, skipped (reason), failed
//! (error code and message).
//!
//! The journal (default: next to the approval, `NAME.journal.jsonl`) is
//! append-only JSON lines, fsynced per line: an attempt before each call, an
//! outcome after. A re-run reads it first: completed actions are not repeated,
//! an interrupted one is resolved by re-reading the key, a failed one is tried
//! again. Calls run --concurrency at a time, and changing calls stay under
//! --rate per second per region (EnableKeyRotation's quota is low).
//!
//! Exit: 0 done (skips included); 3 some action failed; 2 fatal error (a
//! tampered plan or approval, an unreadable journal).

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::context::Ctx;
use crate::error::Outcome;
use crate::frames::time::rfc3339;
use crate::output::Table;
use crate::remediate::apply::{self, ApplyOptions, Row, RowOutcome};
use crate::remediate::journal::{self, Journal, Line};
use crate::remediate::{Action, Approval};

#[derive(Debug, clap::Args)]
#[command(about = "Apply an approval: dry run by default, --execute to change AWS")]
pub struct Args {
    /// The approval written by `kmsrot approve`.
    pub approval: PathBuf,

    /// Change AWS. Without it, only show what would happen.
    #[arg(long)]
    pub execute: bool,

    /// The journal file (default: `APPROVAL.journal.jsonl` next to the approval).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Actions in progress at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Changing calls (EnableKeyRotation, ...) per second in each region.
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND")]
    pub rate: f64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        bail!("--rate {}: must be above 0 and at most 1000", args.rate);
    }
    let (approval, plan) = Approval::read_with_plan(&args.approval)?;
    let actions: Vec<Action> = approval
        .approved_actions
        .iter()
        .filter_map(|id| plan.action(id).cloned())
        .collect();
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(&args.approval));
    // Executing locks the journal before reading it; a dry run only reads.
    let (journal, replay) = if args.execute {
        let (j, r) = Journal::open(&journal_path)?;
        (Some(j), r)
    } else {
        (None, journal::replay(&journal_path)?)
    };
    if let Some(sha) = &replay.plan_sha256 {
        if *sha != approval.plan_sha256 {
            bail!(
                "{}: the journal belongs to another plan ({sha}); give a new --journal",
                journal_path.display()
            );
        }
    }
    let config = ctx.aws().await?;

    let rows = if let Some(journal) = &journal {
        journal.append(&Line::Start {
            at: rfc3339(ctx.clock.now()),
            approval: args.approval.display().to_string(),
            plan_sha256: approval.plan_sha256.clone(),
            approver: approval.approver.clone(),
            requested: apply::requested(&actions),
        })?;
        if !replay.in_flight.is_empty() {
            eprintln!(
                "resuming: {} action(s) were interrupted mid-call; re-reading those keys",
                replay.in_flight.len()
            );
        }
        apply::execute(
            config,
            &actions,
            &replay,
            journal,
            ApplyOptions {
                concurrency: usize::from(args.concurrency),
                rate_per_region: args.rate,
            },
        )
        .await?
    } else {
        apply::dry_run(config, &actions, &replay).await
    };

    print(ctx, &rows)?;
    let count = |o: RowOutcome| rows.iter().filter(|r| r.outcome == o).count();
    if args.execute {
        eprintln!(
            "{} approved: {} enabled, {} skipped, {} failed; journal {}",
            rows.len(),
            count(RowOutcome::Enabled),
            count(RowOutcome::Skipped),
            count(RowOutcome::Failed),
            journal_path.display()
        );
    } else {
        eprintln!(
            "dry run, nothing changed: {} approved: {} would call, {} would skip, {} done, {} re-check failed; add --execute to apply",
            rows.len(),
            count(RowOutcome::WouldCall),
            count(RowOutcome::WouldSkip),
            count(RowOutcome::Done),
            count(RowOutcome::Failed),
        );
    }
    Ok(if count(RowOutcome::Failed) > 0 {
        Outcome::Partial
    } else {
        Outcome::Complete
    })
}

fn print(ctx: &Ctx, rows: &[Row]) -> Result<()> {
    let mut table = Table::new(["action_id", "key", "region", "action", "outcome", "detail"]);
    for r in rows {
        table.row([
            r.action_id.clone(),
            r.key.clone(),
            r.region.clone(),
            r.action.to_string(),
            r.outcome.to_string(),
            r.detail.clone(),
        ]);
    }
    table.print_stdout(ctx.output)
}
