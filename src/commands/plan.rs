//! `kmsrot plan BUNDLE --out plan.json [--policy kmsrot.toml] [--rotation-period-days N] [--include-pending-deletion] [--allow-modified] [--price-per-key-month USD]`
//!
//! One action per key that needs one, each with the key's state as planned
//! and the open findings it closes (when `kmsrot assess` has run on the
//! bundle; the plan works without it):
//!
//!   enable_rotation              eligible key with rotation off
//!   set_rotation_period          rotation on, period above the policy's maximum
//!                                (or above --rotation-period-days; a period is
//!                                never lengthened)
//!   cancel_deletion_and_enable   only with --include-pending-deletion:
//!                                CancelKeyDeletion, EnableKey, EnableKeyRotation
//!
//! Compliant, ineligible (AWS-managed, replica, asymmetric/HMAC, imported,
//! custom key store, disabled, pending deletion) and exempted keys are listed
//! apart with the reason, never as actions. The period is
//! --rotation-period-days (90..=2560) or the policy's maximum (default 365).
//! Each action carries what it adds to the KMS bill over the next twelve
//! months at AWS's list prices ($1 a key-month; the first and second rotation
//! each add $1 a month, prorated hourly; later ones nothing), counted from the
//! key's rotations so far and its planned period; the plan carries the total,
//! which `approve` shows. --price-per-key-month replaces the $1 (negotiated
//! rates, other partitions).
//!
//! `plan_sha256` is SHA-256 over the plan's canonical JSON without that field;
//! `approve` and `apply` refuse a plan that no longer matches it.
//!
//! Prints the actions to stdout. Exit: 0; 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::PolicyArgs;
use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::Table;
use crate::remediate::cost::Usd;
use crate::remediate::plan::{self, PlanOptions};
use crate::remediate::{display_safe, write_json_atomic};

#[derive(Debug, clap::Args)]
#[command(about = "Plan rotation fixes from a bundle: one action per key")]
pub struct Args {
    /// The bundle folder written by `kmsrot collect` (and `kmsrot assess`).
    pub bundle: PathBuf,

    /// Where to write the plan.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Its maximum rotation period and exemptions are used here.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// RotationPeriodInDays to set (90..=2560); default: the policy's maximum.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(90..=2560))]
    pub rotation_period_days: Option<i64>,

    /// Also plan to cancel scheduled deletions and re-enable those keys.
    #[arg(long)]
    pub include_pending_deletion: bool,

    /// Plan even when the bundle does not match its manifest.
    #[arg(long)]
    pub allow_modified: bool,

    /// The price of a key-month, and of each billed key version, in USD for the
    /// cost projection (default: AWS's list price, 1.00).
    #[arg(long, value_name = "USD", value_parser = Usd::parse)]
    pub price_per_key_month: Option<Usd>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    crate::output::refuse_overlap(&args.out, &[&args.bundle])?;
    let plan = plan::build(
        &args.bundle,
        &PlanOptions {
            policy: &ctx.policy,
            rotation_period_days: args.rotation_period_days,
            include_pending_deletion: args.include_pending_deletion,
            now: ctx.clock.now(),
            allow_modified: args.allow_modified,
            price_per_key_month: args.price_per_key_month,
        },
    )
    .with_context(|| format!("planning from {}", args.bundle.display()))?;
    write_json_atomic(&args.out, &plan)?;

    let mut table = Table::new([
        "action_id",
        "key",
        "region",
        "action",
        "calls",
        "closes",
        "added_cost_12mo",
    ]);
    for a in &plan.actions {
        table.row([
            a.action_id.clone(),
            display_safe(a.label()),
            display_safe(&a.region),
            a.action.to_string(),
            a.calls.join(" + "),
            a.closes_findings.len().to_string(),
            format!("${}", a.projected_cost.added_usd),
        ]);
    }
    table.print_stdout(ctx.output)?;

    let mut apart = std::collections::BTreeMap::<&str, usize>::new();
    for n in &plan.not_planned {
        *apart.entry(n.category.as_str()).or_default() += 1;
    }
    let apart: Vec<String> = apart.iter().map(|(k, v)| format!("{v} {k}")).collect();
    eprintln!(
        "{} actions, rotation period {} days; not planned: {}; written to {} (plan_sha256 {})",
        plan.actions.len(),
        plan.rotation_period_days,
        if apart.is_empty() {
            "none".to_string()
        } else {
            apart.join(", ")
        },
        args.out.display(),
        plan.plan_sha256
    );
    eprintln!("{}", plan::cost_line(&plan));
    if !plan.findings_read {
        eprintln!(
            "note: the bundle has no findings (run `kmsrot assess`); actions list no finding ids"
        );
    }
    Ok(Outcome::Complete)
}
