//! `kmsrot collect --out BUNDLE [--trail SOURCE]... [--since T] [--until T] [--policy FILE]`
//!
//! The inventory plus a CloudTrail scan, written as one evidence bundle that an
//! auditor can verify and re-analyze offline:
//!
//!   manifest.json   tool version, collected_at, the caller (STS
//!                   GetCallerIdentity), accounts, regions, the audit window,
//!                   each source with the time it covers, SHA-256 of every file
//!   coverage.json   what the inventory and the trail scan read, and what not
//!   keys.*, rotations.*, events.*   the frames (Parquet, CSV, JSON)
//!   raw/            every KMS answer as the AWS CLI prints it, with the
//!                   command that repeats it (raw/kms/index.json)
//!
//! `--trail` takes any SOURCE `kmsrot trail scan` takes (a folder,
//! s3://BUCKET/PREFIX, lookup, lake:STORE) and may be repeated. Without
//! `--since`, the window is the policy's audit window (400 days) ending at
//! `--until` or now.
//!
//! Exit: 0 complete; 3 partial (stderr and coverage.json say what is
//! missing); 2 usage or fatal error.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

use super::trail_scan::{parse_since, parse_until};
use super::Ctx;
use crate::aws;
use crate::aws::raw::RawRecorder;
use crate::bundle::{AuditWindow, Coverage, Manifest, SourceEntry, COVERAGE, FORMAT_VERSION};
use crate::cli::TrailReadArgs;
use crate::error::{hinted, Outcome};
use crate::frames::{EVENTS, KEYS, ROTATIONS};
use crate::inventory::{self, Limits};
use crate::output::{write_frame, write_json_file, Table};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::trail::{self, Scope, Window};

#[derive(Debug, clap::Args)]
#[command(about = "Inventory plus CloudTrail scan, written as one evidence bundle")]
pub struct Args {
    /// The bundle folder to write (created; must be empty or absent).
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,

    /// A CloudTrail source: a folder, s3://BUCKET/PREFIX, lookup, lake:STORE. Repeatable.
    #[arg(long = "trail", value_name = "SOURCE")]
    pub trails: Vec<String>,

    /// Start of the audit window (default: --until minus the policy's audit_window_days).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// End of the audit window (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,

    /// Policy file; only its audit_window_days is used here.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Keep only CloudTrail events of this account; repeatable.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Keep every KMS CloudTrail event, data-plane calls included.
    #[arg(long)]
    pub include_data_events: bool,

    /// Say in the manifest that this bundle does not come from a real account
    /// (an emulator, a demo). Set automatically with --endpoint-url.
    #[arg(long, value_name = "WHY")]
    pub simulated: Option<String>,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,

    /// Keys read at once in each region.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    #[command(flatten)]
    pub read: TrailReadArgs,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let out = &args.out;
    // A bundle is sealed once: mixing two runs would break its manifest.
    crate::output::prepare_out_dir(out, args.force, &[])?;
    let policy = Policy::load(args.policy.as_deref())?;
    let collected_at = Utc::now();
    let until = args.until.unwrap_or(collected_at);
    let since = args
        .since
        .unwrap_or(until - Duration::days(policy.audit_window_days));
    if since > until {
        return Err(hinted("--since is after --until", "swap the two times"));
    }

    let opts = ctx.global.aws();
    let config = aws::load_config(&opts).await;
    let caller = match aws::caller_identity(&config).await {
        Ok(c) => Some(c),
        Err(e) => {
            // render() has already escaped control characters.
            eprintln!("warning: {}", crate::error::render(&e).replace('\n', " "));
            None
        }
    };
    let plan = aws::regions::resolve(&config, &opts).await?;
    if let Some(e) = &plan.discovery_error {
        eprintln!(
            "warning: could not discover the account's regions (account:ListRegions: {}); reading the built-in list of {} regions instead",
            crate::output::display_safe(&e.to_string()),
            plan.regions.len()
        );
    }
    let regions = plan.regions.clone();
    let progress = Progress::new(ctx.progress());
    let recorder = RawRecorder::new();
    let limits = Limits {
        keys_per_region: usize::from(args.concurrency),
        ..Limits::default()
    };
    let inv = inventory::read(&config, plan, limits, &progress, Some(&recorder)).await?;

    let window = Window {
        since: Some(since),
        until: Some(until),
    };
    let read_opts = args.read.apply(trail::reader::ReadOptions {
        include_data_events: args.include_data_events,
        window,
        scope: Scope {
            accounts: args.accounts.clone(),
            regions: regions.clone(),
        },
        ..Default::default()
    });
    let (rows, trail_cov) = if args.trails.is_empty() {
        (Vec::new(), None)
    } else {
        let aws = trail::sources::Aws::loaded(config.clone(), regions.clone());
        let (rows, cov) =
            trail::sources::scan_sources(&aws, &args.trails, &read_opts, &progress).await?;
        (rows, Some(cov))
    };

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_frame(out, &KEYS, &mut inv.keys_frame()?)?;
    write_frame(out, &ROTATIONS, &mut inv.rotations_frame()?)?;
    write_frame(out, &EVENTS, &mut trail::events_frame(&rows)?)?;
    recorder.write(&out.join("raw"))?;
    let coverage = Coverage::new(Some(inv.coverage.clone()), trail_cov.clone());
    write_json_file(&out.join(COVERAGE), &coverage)?;

    let mut accounts: Vec<String> = inv
        .keys
        .iter()
        .filter_map(|k| k.account_id.clone())
        .collect();
    if let Some(c) = &caller {
        accounts.push(c.account.clone());
    }
    accounts.sort();
    accounts.dedup();
    let mut sources = vec![SourceEntry {
        kind: "kms-api".into(),
        source: format!("KMS in {}", regions.join(", ")),
        covers_from: Some(collected_at),
        covers_to: Some(collected_at),
        note: Some(
            "key state and rotation status as of collected_at; ListKeyRotations lists each key's whole rotation history"
                .into(),
        ),
    }];
    for s in trail_cov.iter().flat_map(|t| t.sources.iter()) {
        let from = if s.kind == "lookup" {
            // LookupEvents keeps 90 days, whatever the window asks.
            since.max(collected_at - Duration::days(90))
        } else {
            since
        };
        sources.push(SourceEntry {
            kind: s.kind.clone(),
            source: s.source.clone(),
            covers_from: Some(from),
            covers_to: Some(until),
            note: Some(format!(
                "{} records read, {} kept; events seen from {} to {}",
                s.records_read,
                s.records_kept,
                trail::show_time(s.first_event),
                trail::show_time(s.last_event)
            )),
        });
    }
    let simulated = args.simulated.clone().or_else(|| {
        config
            .endpoint_url()
            .map(|u| format!("collected from the endpoint {u}, not from AWS"))
    });
    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        tool: "kmsrot".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        collected_at,
        caller,
        accounts,
        regions,
        audit_window: AuditWindow {
            start: since,
            end: until,
        },
        sources,
        simulated,
        assessment: None,
        files: Default::default(),
    };
    manifest.seal(out)?;

    let summary = inventory::summarize(&inv);
    let mut table = Table::new([
        "region",
        "keys",
        "eligible",
        "rotation_on",
        "rotation_off",
        "unknown",
        "events",
        "days_without_logs",
    ]);
    for s in &summary {
        let events = rows
            .iter()
            .filter(|r| r.aws_region.as_deref() == Some(s.region.as_str()))
            .count();
        let missing: Option<usize> = trail_cov.as_ref().map(|t| {
            t.days
                .iter()
                .filter(|d| d.region == s.region)
                .map(|d| d.days_missing.len())
                .sum()
        });
        table.row([
            s.region.clone(),
            s.keys.to_string(),
            s.eligible.to_string(),
            s.rotation_on.to_string(),
            s.rotation_off.to_string(),
            s.unknown.to_string(),
            events.to_string(),
            missing.map_or_else(|| "no trail".to_string(), |m| m.to_string()),
        ]);
    }
    let mut stdout = crate::output::stdout();
    table.print(ctx.global.output, &mut stdout)?;
    stdout.flush()?;
    for g in coverage.gaps() {
        eprintln!("partial: {}", crate::output::display_safe(&g));
    }
    if args.trails.is_empty() {
        eprintln!("note: no --trail source: rotation events and failures are not in this bundle (the evidence_gap rule will say so)");
    }
    eprintln!(
        "bundle written to {}: {} keys, {} rotations, {} events; verify with `kmsrot verify-bundle {}`",
        out.display(),
        inv.keys.len(),
        inv.rotations.len(),
        rows.len(),
        out.display()
    );
    Ok(if coverage.complete {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}
