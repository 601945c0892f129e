//! `kmsrot approve plan.json --out approval.json (--all | --key ID|ARN|ALIAS ... ) [--approver NAME] [--note TEXT]`
//!
//! Records a person's choice of actions from one exact plan: the selected
//! action ids, the plan's SHA-256, the approver (--approver, else $USER) and
//! the STS caller identity when credentials are available, the time, and a
//! note. Without --all or --key, and with stdin a terminal, an interactive
//! multi-select shows each action's key, region, alias, description, spec and
//! current status.
//!
//! A plan whose content no longer matches its plan_sha256 is refused, and so
//! is a --key that names no action of the plan.
//!
//! Exit: 0; 2 usage or fatal error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::aws;
use crate::context::Ctx;
use crate::error::{Error, Outcome};
use crate::frames::time::rfc3339;
use crate::output::write_json_file;
use crate::remediate::approval::{self, APPROVAL_FORMAT};
use crate::remediate::{Approval, Plan};

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
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let plan = Plan::read_checked(&args.plan)?;
    if plan.actions.is_empty() {
        bail!(
            "{}: the plan has no actions to approve",
            args.plan.display()
        );
    }
    let selected = if args.all || !args.keys.is_empty() {
        approval::select(&plan, args.all, &args.keys)?
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        interactive(&plan)?
    } else {
        return Err(Error::usage(
            "nothing selected and stdin is not a terminal",
            "pass --all or --key ID (repeatable), or run on a terminal to pick actions",
        ));
    };
    if selected.is_empty() {
        bail!("no action selected; nothing approved");
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
    // an offline act and must work without credentials.
    let config = ctx.aws().await?;
    let caller = tokio::time::timeout(Duration::from_secs(10), aws::caller_identity(config))
        .await
        .ok()
        .and_then(|r| r.ok());
    let plan_file = std::fs::canonicalize(&args.plan)
        .unwrap_or_else(|_| args.plan.clone())
        .display()
        .to_string();
    let approval = Approval {
        format: APPROVAL_FORMAT.into(),
        plan_file,
        plan_sha256: plan.plan_sha256.clone(),
        approver,
        caller,
        approved_at: rfc3339(ctx.clock.now()),
        note: args.note,
        approved_actions: selected,
    };
    write_json_file(&args.out, &approval)?;
    eprintln!(
        "{} of {} actions approved by {}{}; written to {}",
        approval.approved_actions.len(),
        plan.actions.len(),
        approval.approver,
        approval
            .caller
            .as_ref()
            .map(|c| format!(" (caller {})", c.arn))
            .unwrap_or_default(),
        args.out.display()
    );
    Ok(Outcome::Complete)
}

/// A multi-select on the terminal; nothing is pre-selected.
fn interactive(plan: &Plan) -> Result<Vec<String>> {
    let items: Vec<String> = plan
        .actions
        .iter()
        .map(|a| {
            let s = &a.planned_state;
            let rotation = match (s.rotation_enabled, s.rotation_period_days) {
                (Some(true), Some(p)) => format!("rotation on/{p}d"),
                (Some(true), None) => "rotation on".into(),
                (Some(false), _) => "rotation off".into(),
                (None, _) => "rotation ?".into(),
            };
            format!(
                "{} {} {} {} [{}] {} {} {}, {} -> {}",
                a.action,
                a.key_id,
                a.region,
                a.aliases.first().map_or("-", |s| s.as_str()),
                a.description.as_deref().unwrap_or(""),
                s.key_spec.as_deref().unwrap_or("?"),
                s.key_state.as_deref().unwrap_or("?"),
                rotation,
                a.action_id,
                a.calls.join(" + ")
            )
        })
        .collect();
    let picked = dialoguer::MultiSelect::new()
        .with_prompt("Select the actions to approve (space toggles, enter confirms)")
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
