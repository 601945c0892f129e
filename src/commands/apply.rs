//! `kmsrot apply approval.json [--execute] [--require-signed] [--signer KEY]... [--require-different-executor] [--journal FILE] [--concurrency N] [--rate N] [--max-consecutive-failures N]`
//!
//! Without --execute, a dry run: per approved action, what a fresh re-check
//! of the key (DescribeKey, GetKeyRotationStatus) says and what would be
//! called. Nothing changes in AWS and no journal is written.
//!
//! Before anything, refuses: an approval or plan edited after it was made,
//! an approval listing an action twice or one not in its plan, a plan whose
//! fields contradict each other, an expired approval, an edited signed
//! approval, an unsigned one under --require-signed (or one signed by a key
//! that is not a --signer), and under --require-different-executor an
//! approval made by the identity now running (STS GetCallerIdentity).
//!
//! With --execute, for each approved action: re-checks the key just before
//! each call and skips it, saying what changed, unless it is exactly in the
//! state the plan recorded (rotation on/off, period, key state, deletion
//! date); never lengthens a period; acts only on keys of the caller's own
//! account, or of an account the approval records a role for (approved with
//! --accounts), as that role, assumed once per account (refused when
//! --role-name names another). Outcomes: enabled, skipped (reason), failed (error code),
//! in_flight (a call whose answer was lost: settled by re-reading the key at
//! the end of the run or on the next one, never by sending it again).
//!
//! The journal (default: beside the approval, named after the approval's
//! SHA-256) is append-only JSON lines, fsynced per line, each naming the
//! approval; a journal of another approval is refused, and the approval is
//! locked (`APPROVAL.lock`) so two applies never run it at once. A re-run
//! repeats nothing done, settles what was in flight and retries failures.
//! After --max-consecutive-failures throttling or access failures in a row
//! (default 5) no new action starts; those under way finish.
//!
//! Exit: 0 every action ended (skips included); 3 some action failed, is in
//! flight or was not started; 2 a refusal or fatal error.

use std::path::PathBuf;

use anyhow::Result;

use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::Table;
use crate::remediate::apply::{self, ApplyReport, ApplyRequest, RowOutcome};
use crate::remediate::approval::SignatureStatus;
use crate::remediate::display_safe;

#[derive(Debug, clap::Args)]
#[command(about = "Apply an approval: dry run by default, --execute to change AWS")]
pub struct Args {
    /// The approval written by `kmsrot approve`.
    pub approval: PathBuf,

    /// Change AWS. Without it, only show what would happen.
    #[arg(long)]
    pub execute: bool,

    /// Refuse an approval without a valid KMS signature (`approve --sign-with`).
    #[arg(long)]
    pub require_signed: bool,

    /// Accept only signatures by this KMS key (ARN, id or alias); implies
    /// --require-signed. Repeatable.
    #[arg(long = "signer", value_name = "KEY")]
    pub signers: Vec<String>,

    /// Refuse when the approval's STS caller is the identity running this apply.
    #[arg(long)]
    pub require_different_executor: bool,

    /// The journal file (default: `APPROVAL.<sha256>.journal.jsonl` next to the approval).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Actions in progress at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Changing calls (EnableKeyRotation, ...) per second in each region.
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: f64,

    /// Start no new action after this many throttling or access failures in a row.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_consecutive_failures: u32,
}

/// Checked while parsing, so a bad rate is a usage error before any AWS call.
fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if rate > 0.0 && rate <= 1000.0 {
        Ok(rate)
    } else {
        Err(format!("{s}: must be above 0 and at most 1000"))
    }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let executor = ctx.caller().await?.clone();
    let report = apply::run(
        ctx,
        &ApplyRequest {
            approval: args.approval.clone(),
            journal: args.journal.clone(),
            execute: args.execute,
            require_signed: args.require_signed || !args.signers.is_empty(),
            signers: args.signers.clone(),
            require_different_executor: args.require_different_executor,
            max_consecutive_failures: args.max_consecutive_failures as usize,
            concurrency: usize::from(args.concurrency),
            rate_per_region: args.rate,
            now: ctx.clock.now(),
            executor,
        },
    )
    .await?;
    print(ctx, &report)?;
    summarize(&report);
    Ok(if report.complete() {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}

fn print(ctx: &Ctx, report: &ApplyReport) -> Result<()> {
    let mut table = Table::new([
        "action_id",
        "account",
        "key",
        "region",
        "action",
        "outcome",
        "detail",
    ]);
    for r in &report.rows {
        table.row([
            r.action_id.clone(),
            r.account.clone(),
            r.key.clone(),
            r.region.clone(),
            r.action.to_string(),
            r.outcome.to_string(),
            r.detail.clone(),
        ]);
    }
    table.print_stdout(ctx.output)
}

fn summarize(report: &ApplyReport) {
    let n = |o| report.count(o);
    eprintln!(
        "approval by {}, valid until {}; run as {}",
        display_safe(&report.approver),
        report.expires_at,
        display_safe(&report.executor.arn)
    );
    match &report.signature {
        SignatureStatus::Valid { key_id, form } => {
            eprintln!("signature: valid, by {} ({form})", display_safe(key_id))
        }
        SignatureStatus::Unsigned => eprintln!(
            "signature: none (where the approval passes through other hands, sign it with `approve --sign-with` and apply with --require-signed)"
        ),
    }
    if report.resumed_in_flight > 0 {
        eprintln!(
            "resumed: {} action(s) had a call in flight; settled by re-reading those keys",
            report.resumed_in_flight
        );
    }
    if let Some(why) = &report.stopped {
        eprintln!(
            "stopped: after {why}, no new action was started ({} not started); those under way finished. Fix the cause and run `kmsrot apply --execute` again to continue",
            n(RowOutcome::NotStarted)
        );
    }
    if report.executed {
        eprintln!(
            "{} approved: {} enabled, {} skipped, {} failed, {} in flight, {} not started; journal {}",
            report.rows.len(),
            n(RowOutcome::Enabled),
            n(RowOutcome::Skipped),
            n(RowOutcome::Failed),
            n(RowOutcome::InFlight),
            n(RowOutcome::NotStarted),
            report.journal.display()
        );
    } else {
        eprintln!(
            "dry run, nothing changed: {} approved: {} would call, {} would skip, {} done, {} failed; add --execute to apply",
            report.rows.len(),
            n(RowOutcome::WouldCall),
            n(RowOutcome::WouldSkip),
            n(RowOutcome::Done),
            n(RowOutcome::Failed),
        );
    }
}
