//! CloudTrail rotation evidence: sources (local files, the S3 archive,
//! LookupEvents, CloudTrail Lake) → normalized [`EventRow`]s → the `events`
//! frame, plus a record of what was covered.
//!
//! Every source feeds one [`Collector`], which de-duplicates on eventID (real
//! archives deliver some events twice) and keeps the coverage ledger.

pub mod gz;
pub mod lake;
pub mod local;
pub mod lookup;
mod model;
pub mod reader;
pub mod record;
pub mod s3;
pub mod scan;
pub mod sources;

pub use model::{EventRow, Scope, Window};

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::frames::{col, Cell, FrameBuilder, EVENTS};

impl EventRow {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            (col::EVENT_ID, Cell::opt_str(self.event_id.clone())),
            (col::EVENT_TIME, Cell::Time(self.event_time)),
            (col::EVENT_NAME, Cell::opt_str(self.event_name.clone())),
            (col::EVENT_TYPE, Cell::opt_str(self.event_type.clone())),
            (col::EVENT_SOURCE, Cell::opt_str(self.event_source.clone())),
            (col::AWS_REGION, Cell::opt_str(self.aws_region.clone())),
            (col::ACCOUNT_ID, Cell::opt_str(self.account_id.clone())),
            (col::KEY_ARN, Cell::opt_str(self.key_arn.clone())),
            (col::KEY_ID, Cell::opt_str(self.key_id.clone())),
            (
                col::PRINCIPAL_ARN,
                Cell::opt_str(self.principal_arn.clone()),
            ),
            (
                col::PRINCIPAL_TYPE,
                Cell::opt_str(self.principal_type.clone()),
            ),
            (col::INVOKED_BY, Cell::opt_str(self.invoked_by.clone())),
            (col::SOURCE_IP, Cell::opt_str(self.source_ip.clone())),
            (col::USER_AGENT, Cell::opt_str(self.user_agent.clone())),
            (col::ERROR_CODE, Cell::opt_str(self.error_code.clone())),
            (
                col::ERROR_MESSAGE,
                Cell::opt_str(self.error_message.clone()),
            ),
            (
                col::ROTATION_TYPE,
                Cell::opt_str(self.rotation_type.clone()),
            ),
            (
                col::ROTATION_PERIOD_DAYS,
                Cell::Int(self.rotation_period_days),
            ),
            (col::REQUEST_ID, Cell::opt_str(self.request_id.clone())),
            (col::SOURCE, Cell::str(&self.source)),
        ]
    }
}

/// A file (or object) that was not read as CloudTrail, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIssue {
    pub path: String,
    pub reason: String,
}

/// What one SOURCE argument yielded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceCoverage {
    /// The SOURCE as the user gave it (`./logs`, `s3://b/p`, `lookup`).
    pub source: String,
    /// `file`, `s3`, `lookup` or `lake`.
    pub kind: String,
    pub files_read: u64,
    pub bytes_read: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub files_skipped: Vec<FileIssue>,
    pub files_corrupt: Vec<FileIssue>,
    /// API or listing failures that left part of this source unread.
    pub errors: Vec<String>,
    /// What this source cannot see by design (LookupEvents: 90 days).
    pub limits: Vec<String>,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
}

/// Days of the window with and without a log file, for one account and region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayCoverage {
    pub account_id: String,
    pub region: String,
    pub days_with_logs: Vec<NaiveDate>,
    pub days_missing: Vec<NaiveDate>,
}

/// `coverage.json`'s trail section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrailCoverage {
    pub complete: bool,
    pub window: Window,
    pub sources: Vec<SourceCoverage>,
    pub days: Vec<DayCoverage>,
    pub events_read: u64,
    pub events_kept: u64,
    pub duplicates: u64,
}

/// Gathers rows and coverage from every source.
#[derive(Debug, Default)]
pub struct Collector {
    rows: Vec<EventRow>,
    seen: HashSet<String>,
    duplicates: u64,
    sources: Vec<SourceCoverage>,
    /// (account, region) → days that have at least one log file.
    days: BTreeMap<(String, String), BTreeSet<NaiveDate>>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the ledger of one SOURCE; returns its index for the calls below.
    pub fn begin_source(&mut self, source: &str, kind: &str) -> usize {
        self.sources.push(SourceCoverage {
            source: source.to_string(),
            kind: kind.to_string(),
            ..SourceCoverage::default()
        });
        self.sources.len() - 1
    }

    pub fn source_mut(&mut self, idx: usize) -> &mut SourceCoverage {
        &mut self.sources[idx]
    }

    /// Adds kept rows of source `idx`, dropping events already seen.
    pub fn add_rows(&mut self, idx: usize, rows: impl IntoIterator<Item = EventRow>) {
        for row in rows {
            if let Some(id) = &row.event_id {
                if !self.seen.insert(id.clone()) {
                    self.duplicates += 1;
                    continue;
                }
            }
            let src = &mut self.sources[idx];
            src.records_kept += 1;
            if let Some(t) = row.event_time {
                src.first_event = Some(src.first_event.map_or(t, |f| f.min(t)));
                src.last_event = Some(src.last_event.map_or(t, |l| l.max(t)));
            }
            self.rows.push(row);
        }
    }

    /// Records that a log file exists for this account, region and day.
    pub fn note_log_day(&mut self, account: &str, region: &str, day: NaiveDate) {
        self.days
            .entry((account.to_string(), region.to_string()))
            .or_default()
            .insert(day);
    }

    /// Opens the day ledger of an account and region that a source was asked
    /// to read, so that one with no log file at all shows every day missing.
    pub fn note_scope(&mut self, account: &str, region: &str) {
        self.days
            .entry((account.to_string(), region.to_string()))
            .or_default();
    }

    /// Closes the scan: rows sorted by time then id, and the coverage ledger
    /// with missing days computed over `window` (or, when open, over the span
    /// of days seen for each account and region).
    pub fn finish(mut self, window: Window) -> (Vec<EventRow>, TrailCoverage) {
        self.rows
            .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
        let mut days = Vec::new();
        for ((account, region), seen) in &self.days {
            let first = window
                .since
                .map(|t| t.date_naive())
                .or_else(|| seen.first().copied());
            // A window open at the end runs to today: a trail that stopped
            // delivering last month has missing days since, not none.
            let last = window
                .until
                .or(window.since.map(|_| Utc::now()))
                .map(|t| t.date_naive())
                .or_else(|| seen.last().copied());
            let mut missing = Vec::new();
            if let (Some(mut d), Some(last)) = (first, last) {
                while d <= last {
                    if !seen.contains(&d) {
                        missing.push(d);
                    }
                    match d.succ_opt() {
                        Some(n) => d = n,
                        None => break,
                    }
                }
            }
            days.push(DayCoverage {
                account_id: account.clone(),
                region: region.clone(),
                days_with_logs: seen
                    .iter()
                    .copied()
                    .filter(|d| first.is_none_or(|f| *d >= f) && last.is_none_or(|l| *d <= l))
                    .collect(),
                days_missing: missing,
            });
        }
        let complete = self
            .sources
            .iter()
            .all(|s| s.files_corrupt.is_empty() && s.errors.is_empty())
            && days.iter().all(|d| d.days_missing.is_empty());
        let coverage = TrailCoverage {
            complete,
            window,
            events_read: self.sources.iter().map(|s| s.records_read).sum(),
            events_kept: self.rows.len() as u64,
            duplicates: self.duplicates,
            sources: self.sources,
            days,
        };
        (self.rows, coverage)
    }
}

/// Builds the `events` frame.
pub fn events_frame(rows: &[EventRow]) -> Result<polars::prelude::DataFrame> {
    let mut b = FrameBuilder::new(EVENTS);
    for r in rows {
        b.push(r.cells())?;
    }
    b.finish()
}

impl TrailCoverage {
    /// One line per gap, for stderr.
    pub fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.sources {
            for f in &s.files_corrupt {
                out.push(format!("corrupt: {}: {}", f.path, f.reason));
            }
            for e in &s.errors {
                out.push(format!("{}: {e}", s.source));
            }
        }
        for d in &self.days {
            if !d.days_missing.is_empty() {
                let shown: Vec<String> = d
                    .days_missing
                    .iter()
                    .take(5)
                    .map(|d| d.to_string())
                    .collect();
                let more = d.days_missing.len().saturating_sub(5);
                out.push(format!(
                    "no CloudTrail log for account {} region {} on {} day(s): {}{}",
                    d.account_id,
                    d.region,
                    d.days_missing.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(id: &str) -> EventRow {
        EventRow {
            event_id: Some(id.into()),
            event_time: Some(Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()),
            source: "f.json".into(),
            ..EventRow::default()
        }
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut c = Collector::new();
        let s = c.begin_source("logs", "file");
        c.add_rows(s, [row("a"), row("b"), row("a")]);
        let (rows, cov) = c.finish(Window::default());
        assert_eq!(rows.len(), 2);
        assert_eq!(cov.duplicates, 1);
        assert_eq!(cov.sources[0].records_kept, 2);
    }

    #[test]
    fn missing_days_are_listed_over_the_window() {
        let mut c = Collector::new();
        c.begin_source("logs", "file");
        let d = |day| NaiveDate::from_ymd_opt(2025, 1, day).unwrap();
        c.note_log_day("111122223333", "us-east-1", d(1));
        c.note_log_day("111122223333", "us-east-1", d(3));
        let window = Window {
            since: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
            until: Some(Utc.with_ymd_and_hms(2025, 1, 4, 0, 0, 0).unwrap()),
        };
        let (_, cov) = c.finish(window);
        assert_eq!(cov.days[0].days_missing, vec![d(2), d(4)]);
        assert!(!cov.complete);
    }
}
