//! `kmsrot diagnose KEY [--bundle BUNDLE]`
//!
//! Troubleshoots one key, named by id, ARN or alias: its state and
//! eligibility, rotation status and history, the CloudTrail rotation failures
//! grouped by principal and error code, the key-policy statements that deny
//! rotation, its grants, and a one-paragraph verdict with the fix.
//!
//! Live (default): reads the key from KMS in the key's region (from its ARN,
//! else --region or the configured region), and CloudTrail's LookupEvents for
//! the last 90 days. With --bundle: reads everything from the bundle, offline
//! (grants are not kept in bundles).
//!
//! `--output json` prints the report as JSON.
//!
//! Exit: 0 the report was made; 2 the key was not found or cannot be read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use chrono::{Duration, Utc};

use super::Ctx;
use crate::aws::{self, ErrorInfo};
use crate::diagnose::{self, Grant};
use crate::error::{hinted, Outcome};
use crate::frames::{EVENTS, KEYS, ROTATIONS};
use crate::inventory::{KeyRecord, RotationRecord};
use crate::output::{frame_records, read_frame, Format};
use crate::rules::engine::key_matches;
use crate::trail::reader::ReadOptions;
use crate::trail::{EventRow, Window};

#[derive(Debug, clap::Args)]
#[command(about = "Troubleshoot one key's rotation: status, history, failures, policy, verdict")]
pub struct Args {
    /// Key id, key ARN, alias (alias/name) or alias ARN.
    pub key: String,

    /// Read from this bundle instead of AWS.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,

    /// With --bundle: go on when the bundle does not match its manifest.
    #[arg(long, requires = "bundle")]
    pub allow_modified: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let report = match &args.bundle {
        Some(dir) => from_bundle(dir, &args.key, args.allow_modified)?,
        None => live(ctx, &args.key).await?,
    };
    let mut stdout = crate::output::stdout();
    match ctx.global.output {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
        Format::Table | Format::Csv => {
            stdout.write_all(diagnose::render_text(&report).as_bytes())?
        }
    }
    stdout.flush()?;
    Ok(Outcome::Complete)
}

fn from_bundle(
    dir: &std::path::Path,
    wanted: &str,
    allow_modified: bool,
) -> Result<diagnose::Report> {
    let opened = crate::bundle::open(dir, allow_modified)?;
    let integrity = opened.integrity_note();
    let manifest = opened.manifest;
    let keys: Vec<KeyRecord> = frame_records(&read_frame(dir, &KEYS)?, &KEYS)?;
    let Some(key) = keys
        .iter()
        .find(|k| key_matches(wanted, &k.arn, &k.aliases))
        .cloned()
    else {
        return Err(hinted(
            format!("{wanted}: no such key in {}", dir.display()),
            "give the key's id, ARN or alias as it appears in keys.csv",
        ));
    };
    let rotations: Vec<RotationRecord> =
        frame_records::<RotationRecord>(&read_frame(dir, &ROTATIONS)?, &ROTATIONS)?
            .into_iter()
            .filter(|r| r.key_arn == key.arn)
            .collect();
    let events: Vec<EventRow> = frame_records::<EventRow>(&read_frame(dir, &EVENTS)?, &EVENTS)?
        .into_iter()
        .filter(|e| e.key_arn.as_deref() == Some(key.arn.as_str()))
        .collect();
    let coverage = crate::bundle::read_coverage(dir)?;
    let mut gaps: Vec<String> = integrity.into_iter().collect();
    if coverage.trail.is_none() {
        gaps.push(
            "the bundle holds no CloudTrail source: failures and rotation events are unknown"
                .into(),
        );
    }
    let as_of = manifest
        .assessment
        .as_ref()
        .map_or(manifest.collected_at, |a| a.as_of);
    Ok(diagnose::build(key, rotations, events, None, gaps, as_of))
}

async fn live(ctx: &Ctx, wanted: &str) -> Result<diagnose::Report> {
    let opts = ctx.global.aws();
    let config = aws::load_config(&opts).await;
    // An ARN names its region; otherwise the first --region or the default.
    let region = match aws::arn_region(wanted).filter(|_| wanted.starts_with("arn:")) {
        Some(r) => r.to_string(),
        None => match opts.regions.iter().find(|r| r.as_str() != "all") {
            Some(r) => r.clone(),
            None => aws::default_region(&config)?,
        },
    };
    let kms = aws::kms(&config, &region);
    let (key, rotations, errors) = crate::inventory::read_one(&kms, &region, wanted)
        .await
        .map_err(|e| {
            hinted(
                format!("{wanted} in {region}: DescribeKey failed: {e}"),
                "check the key id, ARN or alias and the region; the caller needs kms:DescribeKey",
            )
        })?;
    let mut gaps: Vec<String> = errors
        .iter()
        .map(|e| format!("{} failed: {}", e.operation, e.error))
        .collect();

    let mut grants = Vec::new();
    let mut grants_ok = true;
    let mut pages = kms.list_grants().key_id(&key.arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => grants.extend(p.grants().iter().map(|g| {
                Grant {
                    grant_id: g.grant_id().unwrap_or("-").to_string(),
                    grantee: g.grantee_principal().map(str::to_string),
                    operations: g
                        .operations()
                        .iter()
                        .map(|o| o.as_str().to_string())
                        .collect(),
                }
            })),
            Err(e) => {
                gaps.push(format!("ListGrants failed: {}", ErrorInfo::from_sdk(&e)));
                grants_ok = false;
                break;
            }
        }
    }

    let now = Utc::now();
    let events = lookup_events(&config, &region, &key.arn, now, &mut gaps).await;
    gaps.push("CloudTrail read from LookupEvents: the last 90 days only; diagnose --bundle covers the archive".into());
    Ok(diagnose::build(
        key,
        rotations,
        events,
        grants_ok.then_some(grants),
        gaps,
        now,
    ))
}

/// Rotation events and failures for one key from LookupEvents (last 90 days).
async fn lookup_events(
    config: &aws_config::SdkConfig,
    region: &str,
    arn: &str,
    now: chrono::DateTime<Utc>,
    gaps: &mut Vec<String>,
) -> Vec<EventRow> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let client = aws::cloudtrail(config, region);
    let opts = ReadOptions {
        include_data_events: false,
        window: Window {
            since: Some(now - Duration::days(90)),
            until: Some(now),
        },
        scope: Default::default(),
        extra_events: Vec::new(),
        ..ReadOptions::default()
    };
    let attr = match LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::ResourceName)
        .attribute_value(arn)
        .build()
    {
        Ok(a) => a,
        Err(e) => {
            gaps.push(format!("LookupEvents not called: {e}"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut pages = client
        .lookup_events()
        .lookup_attributes(attr)
        .start_time(aws_smithy_types::DateTime::from_secs(
            (now - Duration::days(90)).timestamp(),
        ))
        .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp()))
        .max_results(50)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                for e in p.events() {
                    if let Some(json) = e.cloud_trail_event() {
                        if let Ok(Some(row)) =
                            crate::trail::reader::parse_record(json, "LookupEvents", &opts)
                        {
                            out.push(row);
                        }
                    }
                }
            }
            Err(e) => {
                gaps.push(format!("LookupEvents failed: {}", ErrorInfo::from_sdk(&e)));
                break;
            }
        }
    }
    out
}
