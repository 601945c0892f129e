//! `kmsrot approve plan.json --out approval.json (--all | --key ID|ARN|ALIAS ... ) [--approver NAME] [--note TEXT] [--valid-for 7d] [--sign-with KEY] [--confirm-cancel-deletion]`
//!
//! Records a person's choice of actions from one exact plan: the selected
//! action ids, the plan's SHA-256, the approver (--approver, else $USER) and
//! the STS caller identity when credentials are available, the time, a note,
//! and an expiry (--valid-for, default 7d: `apply` refuses the approval
//! after it). Without --all or --key, and with stdin a terminal, an
//! interactive multi-select offers each action.
//!
//! Before writing, it shows what is approved: per action the account,
//! region, key and alias, the state the plan saw, the calls, why (the
//! findings it closes) and what it adds to the KMS bill over twelve months,
//! with the plan's age and the projected added cost of the selection and of
//! the whole plan at the plan's price. An action that cancels a key's
//! scheduled deletion gets a confirmation line of its own: on a terminal a
//! separate yes/no question per key, otherwise --confirm-cancel-deletion.
//!
//! --sign-with KEY signs the approval's SHA-256 with a KMS asymmetric RSA key
//! (RSASSA_PSS_SHA_256), so `apply --require-signed` can refuse any edit.
//!
//! A plan whose content no longer matches its plan_sha256, or whose fields
//! contradict each other, is refused, and so is a --key that names no action.
//!
//! Exit: 0; 2 usage or fatal error.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::SubsecRound;

use crate::context::Ctx;
use crate::error::{Error, Outcome};
use crate::output::Table;
use crate::remediate::approval::{self, NewApproval, ReviewRow, DEFAULT_VALID_FOR};
use crate::remediate::{display_safe, Plan};

#[derive(Debug, clap::Args)]
#[command(about = "Approve actions of a plan: --all, --key, or pick them on a terminal")]
pub struct Args {
    /// The plan written by `kmsrot plan`.
    pub plan: PathBuf,

    /// Where to write the approval.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Approve every action of the plan.
    #[arg(long, conflicts_with = "keys")]
    pub all: bool,

    /// Approve the action on this key (id, ARN, alias, or an action id). Repeatable.
    #[arg(long = "key", value_name = "ID|ARN|ALIAS")]
    pub keys: Vec<String>,

    /// Who approves (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub approver: Option<String>,

    /// Why, a ticket, a change number.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// How long the approval stays valid: 90m, 36h, 7d, 2w (at most a year).
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_VALID_FOR, value_parser = approval::parse_valid_for)]
    pub valid_for: chrono::Duration,

    /// Sign the approval with this KMS asymmetric RSA key (id, ARN or alias).
    #[arg(long, value_name = "KEY")]
    pub sign_with: Option<String>,

    /// Confirm, without a terminal, the actions that cancel a key's deletion.
    #[arg(long)]
    pub confirm_cancel_deletion: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let plan = Plan::read_checked(&args.plan)?;
    if plan.actions.is_empty() {
        bail!(
            "{}: the plan has no actions to approve",
            args.plan.display()
        );
    }
    let now = ctx.clock.now().trunc_subsecs(0);
    let on_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let selected = if args.all || !args.keys.is_empty() {
        approval::select(&plan, args.all, &args.keys)?
    } else if on_terminal {
        interactive(&plan, now)?
    } else {
        return Err(Error::usage(
            "nothing selected and stdin is not a terminal",
            "pass --all or --key ID (repeatable), or run on a terminal to pick actions",
        ));
    };
    if selected.is_empty() {
        bail!("no action selected; nothing approved");
    }
    let review = approval::review(&plan, &selected, now);
    print_review(ctx, &review.rows)?;
    eprintln!("{}", review.plan_line);
    eprintln!("{}", review.cost_line);
    for line in review.rows.iter().filter_map(|r| r.confirmation.as_ref()) {
        eprintln!("{line}");
        if args.confirm_cancel_deletion {
            continue;
        }
        if !on_terminal {
            return Err(Error::usage(
                "an action cancels a scheduled key deletion and was not confirmed; nothing approved",
                "read the CONFIRM line above, then pass --confirm-cancel-deletion (or approve on a terminal)",
            ));
        }
        let yes = dialoguer::Confirm::new()
            .with_prompt("Cancel this deletion and enable the key?")
            .default(false)
            .interact()
            .map_err(|e| anyhow::anyhow!("confirmation failed: {e}"))?;
        if !yes {
            bail!("cancelling the deletion was not confirmed; nothing approved");
        }
    }
    let approver = match args
        .approver
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
    {
        Some(a) => a,
        None => {
            return Err(Error::usage(
                "no approver",
                "pass --approver NAME (an email or a user name)",
            ))
        }
    };
    // The caller identity is corroboration, not a requirement: approving is
    // an offline act and works without credentials. Signing does not, and
    // then the caller check has already run (it is up front for --sign-with).
    let signer = match &args.sign_with {
        Some(key) => Some((ctx.aws().await?, key.as_str())),
        None => None,
    };
    let caller = match ctx.caller().await {
        Ok(c) => Some(c.clone()),
        Err(e) => {
            eprintln!("note: the approval records no STS caller: {e}");
            None
        }
    };
    let plan_file = std::fs::canonicalize(&args.plan)
        .unwrap_or_else(|_| args.plan.clone())
        .display()
        .to_string();
    let access = approval_access(ctx, &plan, &selected, caller.as_ref())?;
    let approval = approval::create(
        signer,
        NewApproval {
            plan: &plan,
            plan_file,
            approver,
            caller,
            now,
            valid_for: args.valid_for,
            note: args.note,
            selected,
            access,
        },
        &args.out,
    )
    .await?;
    eprintln!(
        "{} of {} actions approved by {}{}; valid until {}; {}; written to {}",
        approval.approved_actions.len(),
        plan.actions.len(),
        display_safe(&approval.approver),
        approval
            .caller
            .as_ref()
            .map(|c| format!(" (caller {})", display_safe(&c.arn)))
            .unwrap_or_default(),
        approval.expires_at,
        match &approval.signature {
            Some(s) => format!("signed with {}", s.key_id),
            None => "unsigned".to_string(),
        },
        args.out.display()
    );
    Ok(Outcome::Complete)
}

/// With the organization flags, the role each selected action of another
/// account runs under (`--role-name` in that account), for the approver to
/// approve with it. The approver's own account needs none; without the
/// caller's identity every account is another's.
fn approval_access(
    ctx: &Ctx,
    plan: &crate::remediate::plan::Plan,
    selected: &[String],
    caller: Option<&crate::aws::CallerIdentity>,
) -> Result<Vec<approval::ActionAccess>> {
    if !ctx.is_multi_account() {
        return Ok(Vec::new());
    }
    let opts = &ctx.aws_options().accounts;
    let partition = caller
        .and_then(|c| crate::aws::arn_partition(&c.arn))
        .unwrap_or("aws");
    let mut out = Vec::new();
    for id in selected {
        let Some(a) = plan.action(id) else { continue };
        if caller.is_some_and(|c| c.account == a.account_id) {
            continue;
        }
        out.push(approval::ActionAccess {
            action_id: id.clone(),
            account_id: a.account_id.clone(),
            role_arn: opts.role_arn(partition, &a.account_id),
        });
    }
    Ok(out)
}

fn print_review(ctx: &Ctx, rows: &[ReviewRow]) -> Result<()> {
    let mut table = Table::new([
        "account",
        "region",
        "key",
        "action",
        "now",
        "calls",
        "why",
        "added cost (12 months)",
    ]);
    for r in rows {
        table.row([
            r.account.clone(),
            r.region.clone(),
            r.key.clone(),
            r.action.to_string(),
            r.now.clone(),
            r.calls.clone(),
            r.why.clone(),
            r.added_cost.clone(),
        ]);
    }
    table.print_stdout(ctx.output)
}

/// A multi-select on the terminal; nothing is pre-selected.
fn interactive(plan: &Plan, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>> {
    let all: Vec<String> = plan.actions.iter().map(|a| a.action_id.clone()).collect();
    let review = approval::review(plan, &all, now);
    let items: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| {
            let r = review.rows.iter().find(|r| r.action_id == a.action_id)?;
            Some(format!(
                "{} {} {} {} [{}] {} {} -> {}; {}; adds {} in 12 months",
                r.account,
                r.region,
                r.key,
                r.action,
                display_safe(a.description.as_deref().unwrap_or("")),
                display_safe(a.planned_state.key_spec.as_deref().unwrap_or("?")),
                r.now,
                r.calls,
                r.why,
                r.added_cost
            ))
        })
        .collect();
    let picked = dialoguer::MultiSelect::new()
        .with_prompt(format!(
            "{}\n{}\nSelect the actions to approve (space toggles, enter confirms)",
            review.plan_line, review.cost_line
        ))
        .items(&items)
        .interact_opt()
        .map_err(|e| anyhow::anyhow!("interactive selection failed: {e}"))?;
    match picked {
        Some(idx) => Ok(idx
            .into_iter()
            .map(|i| plan.actions[i].action_id.clone())
            .collect()),
        None => bail!("selection cancelled; nothing approved"),
    }
}
