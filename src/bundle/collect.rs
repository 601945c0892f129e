//! Collecting a bundle: the inventory and the CloudTrail scan written as one
//! sealed folder (frames, `coverage.json`, `raw/`, `manifest.json`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

use super::{
    AuditWindow, Coverage, Manifest, ManifestAccount, ManifestOrganization, SourceEntry, COVERAGE,
    FORMAT_VERSION,
};
use crate::aws::raw::RawRecorder;
use crate::context::Ctx;
use crate::error::{Error, Outcome};
use crate::frames::time::show_time;
use crate::frames::{EVENTS, KEYS, ROTATIONS};
use crate::inventory::{self, Inventory, Limits};
use crate::output::{write_frame, write_json_file, Table};
use crate::trail::reader::ReadOptions;
use crate::trail::{self, EventRow, TrailCoverage, Window};

/// What to collect.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    /// The bundle folder; it must be new or empty.
    pub out: PathBuf,
    /// Empty a non-empty `out` first (`--force`).
    pub force: bool,
    /// CloudTrail SOURCE arguments (folder, s3://, lookup, lake:).
    pub trails: Vec<String>,
    /// The window as asked. Without a start it is the policy's audit window
    /// ending at `until`, or at the run's now.
    pub window: Window,
    /// Which events to keep. Its window and regions are set here, from the
    /// resolved window and the regions the inventory reads.
    pub filter: ReadOptions,
    /// Why this bundle is not from a real account; set automatically when
    /// an endpoint URL is in use.
    pub simulated: Option<String>,
    pub limits: Limits,
}

/// A sealed bundle and what went into it.
#[derive(Debug)]
pub struct Collected {
    pub out: PathBuf,
    pub inventory: Inventory,
    pub events: Vec<EventRow>,
    pub trail: Option<TrailCoverage>,
    pub coverage: Coverage,
    pub manifest: Manifest,
    /// Over several accounts: accounts by outcome, requests, in flight.
    pub fan_out: Option<String>,
}

/// Reads KMS and CloudTrail and writes the bundle.
pub async fn collect(ctx: &Ctx, req: &CollectRequest) -> Result<Collected> {
    let out = &req.out;
    // A bundle is sealed once: mixing two runs would break its manifest.
    // Nor may it land among local logs it is about to read.
    let local = trail::sources::local_paths(&req.trails);
    let local: Vec<&std::path::Path> = local.iter().map(PathBuf::as_path).collect();
    crate::output::prepare_out_dir(out, req.force, &local)?;
    let collected_at = ctx.clock.now();
    let (since, until) = audit_window(ctx, &req.window, collected_at)?;

    let config = ctx.aws().await?;
    let caller = Some(ctx.caller().await?.clone());
    let recorder = RawRecorder::new();
    let inv = inventory::read_run(ctx, req.limits, Some(&recorder)).await?;
    // The regions asked, in their order, then any other an account enabled
    // (`--region all` asks each account).
    let mut regions: Vec<String> = inv.coverage.region_plan.regions.clone();
    for r in inv.coverage.accounts.iter().flat_map(|a| a.regions.iter()) {
        if !regions.contains(r) {
            regions.push(r.clone());
        }
    }

    let mut filter = req.filter.clone();
    filter.window = Window {
        since: Some(since),
        until: Some(until),
    };
    filter.scope.regions = regions.clone();
    if ctx.is_multi_account() && filter.scope.accounts.is_empty() {
        // An organization's bundle speaks for the accounts asked: the trail
        // archive is pruned to them, and each gets a day ledger, so one whose
        // logs are missing shows as a gap rather than as silence.
        filter.scope.accounts = inv
            .coverage
            .accounts
            .iter()
            .filter(|a| a.status != inventory::AccountStatus::Skipped)
            .map(|a| a.account_id.clone())
            .collect();
    }
    let (events, trail_cov) = if req.trails.is_empty() {
        (Vec::new(), None)
    } else {
        let (rows, cov) = trail::sources::scan_sources(ctx, &req.trails, &filter).await?;
        (rows, Some(cov))
    };

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_frame(out, &KEYS, &mut inv.keys_frame()?)?;
    write_frame(out, &ROTATIONS, &mut inv.rotations_frame()?)?;
    write_frame(out, &EVENTS, &mut trail::events_frame(&events)?)?;
    recorder.write(&out.join("raw"))?;
    let coverage = Coverage::new(Some(inv.coverage.clone()), trail_cov.clone());
    write_json_file(&out.join(COVERAGE), &coverage)?;

    let mut accounts: Vec<String> = inv
        .keys
        .iter()
        .filter_map(|k| k.account_id.clone())
        .chain(
            inv.coverage
                .accounts
                .iter()
                .filter(|a| a.status != inventory::AccountStatus::Skipped)
                .map(|a| a.account_id.clone()),
        )
        .collect();
    if let Some(c) = &caller {
        accounts.push(c.account.clone());
    }
    accounts.sort();
    accounts.dedup();
    let kms_source = match inv.coverage.accounts.len() {
        0 => format!("KMS in {}", regions.join(", ")),
        n => format!("KMS in {n} accounts, in {}", regions.join(", ")),
    };
    let mut sources = vec![SourceEntry {
        kind: "kms-api".into(),
        source: kms_source,
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
            since.max(collected_at - Duration::days(trail::lookup::RETENTION_DAYS))
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
                show_time(s.first_event),
                show_time(s.last_event)
            )),
        });
    }
    let simulated = req.simulated.clone().or_else(|| {
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
        organization: None,
        account_details: Vec::new(),
    };
    if ctx.is_multi_account() {
        let plan = ctx.account_plan().await?;
        manifest.organization = Some(ManifestOrganization {
            id: plan.organization.as_ref().map(|o| o.id.clone()),
            management_account_id: plan
                .organization
                .as_ref()
                .and_then(|o| o.management_account_id.clone()),
            selected_by: plan.selected_by.clone(),
        });
        manifest.account_details = inv
            .coverage
            .accounts
            .iter()
            .map(|a| ManifestAccount {
                account_id: a.account_id.clone(),
                name: a.name.clone(),
                ou_path: a.ou_path.clone(),
                role_arn: a.role_arn.clone(),
                session_name: a.session_name.clone(),
                read: matches!(
                    a.status,
                    inventory::AccountStatus::Read | inventory::AccountStatus::Partial
                ),
                status: a.status.as_str().to_string(),
                note: match (&a.error, &a.note) {
                    (Some(e), _) => Some(e.to_string()),
                    (None, n) => n.clone(),
                },
            })
            .collect();
    }
    manifest.seal(out)?;
    let fan_out = inventory::fan_out_note(&inv, &ctx.meter().reading());
    Ok(Collected {
        fan_out,
        out: out.clone(),
        inventory: inv,
        events,
        trail: trail_cov,
        coverage,
        manifest,
    })
}

/// The window a bundle covers: as asked, the start defaulting to the
/// policy's audit window before the end, the end to now.
fn audit_window(
    ctx: &Ctx,
    asked: &Window,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let until = asked.until.unwrap_or(now);
    let since = asked
        .since
        .unwrap_or(until - Duration::days(ctx.policy.audit_window_days));
    if since > until {
        return Err(Error::usage(
            format!(
                "--since {} is after --until {}",
                show_time(Some(since)),
                show_time(Some(until))
            ),
            "swap the two times, or give a --since before now",
        ));
    }
    Ok((since, until))
}

impl Collected {
    /// One row per region: keys, eligibility, rotation, events, days without
    /// logs; over several accounts, one row per account.
    pub fn summary_table(&self) -> Table {
        if !self.inventory.coverage.accounts.is_empty() {
            return inventory::summary_table(&self.inventory);
        }
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
        for s in &inventory::summarize(&self.inventory) {
            let events = self
                .events
                .iter()
                .filter(|r| r.aws_region.as_deref() == Some(s.region.as_str()))
                .count();
            let missing: Option<usize> = self.trail.as_ref().map(|t| {
                t.days
                    .iter()
                    .filter(|d| d.region == s.region)
                    .map(|d| d.days_missing.len())
                    .sum()
            });
            table.row([
                s.region.clone(),
                s.counts.keys.to_string(),
                s.counts.eligible.to_string(),
                s.counts.rotation_on.to_string(),
                s.counts.rotation_off.to_string(),
                s.counts.unknown.to_string(),
                events.to_string(),
                missing.map_or_else(|| "no trail".to_string(), |m| m.to_string()),
            ]);
        }
        table
    }

    /// The lines for stderr after the table: gaps, what is missing, where
    /// the bundle is.
    pub fn notes(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .trail
            .iter()
            .flat_map(|t| t.integrity.iter())
            .flat_map(|i| i.summary())
            .collect();
        lines.extend(
            self.coverage
                .gaps()
                .into_iter()
                .map(|g| format!("partial: {}", crate::output::display_safe(&g))),
        );
        lines.extend(self.fan_out.clone());
        if let Some(t) = &self.trail {
            lines.extend(t.query_costs().into_iter().map(|c| format!("note: {c}")));
        }
        if self.trail.is_none() {
            lines.push("note: no --trail source: rotation events and failures are not in this bundle (the evidence_gap rule will say so)".into());
        }
        lines.push(format!(
            "bundle written to {}: {} keys, {} rotations, {} events; verify with `kmsrot verify-bundle {}`",
            self.out.display(),
            self.inventory.keys.len(),
            self.inventory.rotations.len(),
            self.events.len(),
            self.out.display()
        ));
        lines
    }

    pub fn outcome(&self) -> Outcome {
        if self.coverage.complete {
            Outcome::Complete
        } else {
            Outcome::Partial
        }
    }
}
