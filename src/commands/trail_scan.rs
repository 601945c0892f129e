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
//! `--query-timeout` seconds (default 3600). Only remote sources touch AWS:
//! a scan of local files resolves no credentials or region.
//!
//! Exit: 0 complete; 3 partial (a corrupt file, an unreadable source or a day
//! without logs; stderr says which); 2 usage or fatal error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::Ctx;
use crate::cli::TrailReadArgs;
use crate::error::{hinted, Outcome};
use crate::frames::EVENTS;
use crate::output::{write_frame, write_json_file, Table};
use crate::progress::Progress;
use crate::trail::reader::{parse_event_list, ReadOptions};
use crate::trail::{self, Scope, Window};

#[derive(Debug, clap::Args)]
#[command(about = "Reads CloudTrail and keeps the KMS rotation and key-lifecycle events")]
pub struct Args {
    /// Where to read: a file or folder, s3://BUCKET/PREFIX, lookup, or
    /// lake:EVENT_DATA_STORE.
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<String>,

    /// Folder for events.* and coverage.json (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Keep events at or after this time (RFC 3339, or a date: its start, UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// Keep events at or before this time (RFC 3339, or a date: its end, UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,

    /// Keep only events of this account (recipientAccountId); repeatable.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Keep every KMS event (Decrypt, GenerateDataKey, ...), not only
    /// rotation, key-lifecycle and failed ones.
    #[arg(long)]
    pub include_data_events: bool,

    /// More event names to keep, one per line (`#` comments), added to
    /// queries/trail_events.txt.
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,

    #[command(flatten)]
    pub read: TrailReadArgs,
}

/// RFC 3339, or `YYYY-MM-DD` meaning that day's first instant (UTC).
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, NaiveTime::MIN)
}

/// RFC 3339, or `YYYY-MM-DD` meaning that day's last instant (UTC), so
/// `--until 2025-01-31` includes the 31st.
pub fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    let end = NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap_or(NaiveTime::MIN);
    parse_time(s, end)
}

fn parse_time(s: &str, day_time: NaiveTime) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(day_time).and_utc());
    }
    Err(format!(
        "`{s}` is neither RFC 3339 (2025-01-31T00:00:00Z) nor a date (2025-01-31)"
    ))
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    if let (Some(s), Some(u)) = (args.since, args.until) {
        if s > u {
            return Err(hinted(
                format!(
                    "--since {} is after --until {}",
                    trail::show_time(Some(s)),
                    trail::show_time(Some(u))
                ),
                "swap the two times",
            ));
        }
    }
    let extra_events = match &args.events_file {
        Some(path) => read_event_list(path)?,
        None => Vec::new(),
    };
    // `--region all` means every region: no filter on awsRegion.
    let regions = if ctx.global.regions.iter().any(|r| r == "all") {
        Vec::new()
    } else {
        ctx.global.regions.clone()
    };
    let window = Window {
        since: args.since,
        until: args.until,
    };
    let opts = args.read.apply(ReadOptions {
        include_data_events: args.include_data_events,
        window,
        scope: Scope {
            accounts: args.accounts.clone(),
            regions,
        },
        extra_events,
        ..ReadOptions::default()
    });

    let progress = Progress::new(ctx.progress());
    // AWS is set up only if a source needs it: local files never probe
    // IMDS for a region.
    let aws = trail::sources::Aws::lazy(ctx.global.aws());
    let (rows, coverage) =
        trail::sources::scan_sources(&aws, &args.sources, &opts, &progress).await?;

    let out = &args.out;
    write_frame(out, &EVENTS, &mut trail::events_frame(&rows)?)?;
    let doc = serde_json::json!({
        "complete": coverage.complete,
        "trail": &coverage,
    });
    write_json_file(&out.join("coverage.json"), &doc)?;

    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_error: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        *by_name
            .entry(r.event_name.as_deref().unwrap_or("(none)"))
            .or_default() += 1;
        if let Some(code) = r.error_code.as_deref() {
            *by_error.entry(code).or_default() += 1;
        }
    }
    let mut table = Table::new(["what", "name", "count"]);
    table.row(["total", "events_read", &coverage.events_read.to_string()]);
    table.row(["total", "events_kept", &coverage.events_kept.to_string()]);
    table.row(["total", "duplicates", &coverage.duplicates.to_string()]);
    for (name, n) in &by_name {
        table.row(["event_name", name, &n.to_string()]);
    }
    for (code, n) in &by_error {
        table.row(["error_code", code, &n.to_string()]);
    }
    let mut stdout = std::io::stdout().lock();
    table.print(ctx.global.output, &mut stdout)?;
    stdout.flush().context("writing to stdout")?;

    if let Some(i) = &coverage.integrity {
        for line in i.summary() {
            eprintln!("{line}");
        }
    }
    for g in coverage.gaps() {
        eprintln!("partial: {g}");
    }
    for w in coverage.warnings() {
        eprintln!("warning: {w}");
    }
    let skipped: usize = coverage.sources.iter().map(|s| s.files_skipped.len()).sum();
    if skipped > 0 {
        eprintln!("{skipped} file(s) skipped as not CloudTrail (coverage.json lists them)");
    }
    eprintln!("{} events written to {}", rows.len(), out.display());
    Ok(if coverage.complete {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}

fn read_event_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the events file", path.display()))?;
    let names = parse_event_list(&text);
    if let Some(bad) = names
        .iter()
        .find(|n| !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(hinted(
            format!("{}: `{bad}` is not an event name", path.display()),
            "one CloudTrail eventName per line, such as RotateKey; `#` starts a comment",
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_whole_days() {
        assert_eq!(
            parse_since("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T00:00:00+00:00"
        );
        assert!(parse_until("2025-01-31")
            .unwrap()
            .to_rfc3339()
            .starts_with("2025-01-31T23:59:59.999"));
        assert_eq!(
            parse_since("2025-01-31T10:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2025-01-31T08:00:00+00:00"
        );
        assert!(parse_since("31/01/2025").is_err());
    }
}
