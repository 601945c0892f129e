//! `kmsrot trail scan SOURCE... --out DIR [--since T] [--until T] [--region R]
//!  [--account A] [--include-data-events] [--events-file FILE]`
//!
//! Reads CloudTrail and keeps the KMS events that prove or disprove rotation:
//! the names in `queries/trail_events.txt` (rotation, key lifecycle, grants),
//! every KMS event that failed (has an errorCode), or with
//! `--include-data-events` every KMS event. Rows are normalized into the
//! `events` frame and de-duplicated on eventID.
//!
//! SOURCE is one of:
//!   PATH                   a file or folder (recursive): S3 delivery files
//!                          (.json, .json.gz), NDJSON, JSON arrays, LookupEvents
//!                          output from the API or `aws cloudtrail lookup-events`
//!   s3://BUCKET/PREFIX     a trail's S3 archive, listed only for the days,
//!                          accounts and regions asked
//!   lookup                 the LookupEvents API (last 90 days only)
//!   lake:EVENT_DATA_STORE  CloudTrail Lake
//!   athena:DATABASE.TABLE  AWS's CloudTrail table in Athena: the filter and
//!                          the partitions (--athena-partitions) pushed down
//!
//! Times (`--since`, `--until`) are RFC 3339 or a date (`2025-01-31`; as
//! `--until` a date means the end of that day, UTC). `--region` (the global
//! flag, repeatable) and `--account` filter on awsRegion and recipientAccountId.
//!
//! Writes, in DIR:
//!   events.parquet, events.csv, events.json   one row per kept event
//!   coverage.json   {"complete": bool, "trail": ...}: per source the files and
//!                   bytes read, records read and kept, files skipped (not
//!                   CloudTrail) and corrupt, each with its reason; per account
//!                   and region the days with and without a log file
//!
//! Prints events read, kept, duplicates, then counts by event name and by
//! error code.
//!
//! A file named as a CloudTrail delivery (`..._CloudTrail_...`) that is not
//! one whole `{"Records":[...]}` document is corrupt. A file or gzip member
//! larger than `--max-log-bytes` (default 256 MiB) once inflated is corrupt
//! and not read. The S3 archive is listed up to `--late-delivery-days`
//! (default 2) after `--until`. A CloudTrail Lake query is cancelled after
//! `--query-timeout` seconds (default 3600), an Athena query stopped after
//! `--athena-timeout` (default 600); what Athena scanned and cost is printed
//! and kept in coverage.json. Only remote sources touch AWS:
//! a scan of local files resolves no credentials or region.
//!
//! Exit: 0 complete; 3 partial (a corrupt file, an unreadable source or a day
//! without logs; stderr says which); 2 usage or fatal error.

use std::path::PathBuf;

use anyhow::Result;

use crate::args::{TrailFilterArgs, WindowArgs};
use crate::context::Ctx;
use crate::error::Outcome;
use crate::trail;

#[derive(Debug, clap::Args)]
#[command(about = "Reads CloudTrail and keeps the KMS rotation and key-lifecycle events")]
pub struct Args {
    /// Where to read: a file or folder, s3://BUCKET/PREFIX, lookup,
    /// lake:EVENT_DATA_STORE, or athena:DATABASE.TABLE.
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<String>,

    /// Folder for events.* and coverage.json (created if missing; must be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub filter: TrailFilterArgs,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let window = args.window.window()?;
    // `--region all` means every region: no filter on awsRegion.
    let regions = &ctx.aws_options().regions;
    let regions = if regions.iter().any(|r| r == "all") {
        Vec::new()
    } else {
        regions.clone()
    };
    let opts = args.filter.read_options(window, regions)?;
    // Local sources are read whole: the output must not land among them.
    let local = trail::sources::local_paths(&args.sources);
    let local: Vec<&std::path::Path> = local.iter().map(PathBuf::as_path).collect();
    crate::output::prepare_out_dir(&args.out, args.force, &local)?;
    let scan = trail::sources::scan_into(ctx, &args.sources, &opts, &args.out).await?;
    scan.summary_table().print_stdout(ctx.output)?;
    if let Some(i) = &scan.coverage.integrity {
        for line in i.summary() {
            eprintln!("{line}");
        }
    }
    for g in scan.coverage.gaps() {
        eprintln!("partial: {}", crate::output::display_safe(&g));
    }
    for w in scan.coverage.warnings() {
        eprintln!("warning: {}", crate::output::display_safe(&w));
    }
    for c in scan.coverage.query_costs() {
        eprintln!("note: {c}");
    }
    let skipped: usize = scan
        .coverage
        .sources
        .iter()
        .map(|s| s.files_skipped.len())
        .sum();
    if skipped > 0 {
        eprintln!("{skipped} file(s) skipped as not CloudTrail (coverage.json lists them)");
    }
    eprintln!(
        "{} events written to {}",
        scan.rows.len(),
        args.out.display()
    );
    Ok(if scan.coverage.complete {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}
