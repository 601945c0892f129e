//! CloudTrail rotation evidence: sources (local files, the S3 archive,
//! LookupEvents, CloudTrail Lake) → normalized [`EventRow`]s → the `events`
//! frame, plus a record of what was covered.
//!
//! Every source feeds one [`Collector`], which de-duplicates on eventID (real
//! archives deliver some events twice) and on sharedEventID (a cross-account
//! call is delivered to each account), links the two records of one
//! on-demand rotation, and keeps the coverage ledger.

pub mod athena;
pub mod digest;
pub mod gz;
pub mod integrity;
pub mod lake;
pub mod local;
pub mod lookup;
mod model;
pub mod public_keys;
pub mod pushdown;
pub mod reader;
pub mod record;
pub mod s3;
pub mod scan;
pub mod sources;

pub use model::{
    AthenaPartitions, AthenaSettings, EventRow, PartitionRole, Scope, Window,
    DEFAULT_ATHENA_TIMEOUT_SECS,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::frames::{col, Cell, FrameBuilder, EVENTS};
pub use integrity::IntegrityCoverage;

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
            (
                col::SESSION_ISSUER_ARN,
                Cell::opt_str(self.session_issuer_arn.clone()),
            ),
            (
                col::CALLER_ACCOUNT_ID,
                Cell::opt_str(self.caller_account_id.clone()),
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
            (
                col::RECIPIENT_ACCOUNT_ID,
                Cell::opt_str(self.recipient_account_id.clone()),
            ),
            (
                col::SHARED_EVENT_ID,
                Cell::opt_str(self.shared_event_id.clone()),
            ),
            (
                col::LINKED_EVENT_ID,
                Cell::opt_str(self.linked_event_id.clone()),
            ),
            (col::SOURCE, Cell::str(&self.source)),
            (
                col::LOG_INTEGRITY,
                Cell::opt_str(self.log_integrity.clone()),
            ),
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
    /// Records that would be kept, or place a day, whose eventTime is
    /// missing or not a zoned RFC 3339 time: never kept, never a day.
    #[serde(default)]
    pub records_bad_time: u64,
    pub files_skipped: Vec<FileIssue>,
    pub files_corrupt: Vec<FileIssue>,
    /// API or listing failures that left part of this source unread.
    pub errors: Vec<String>,
    /// What this source cannot see by design (LookupEvents: 90 days).
    pub limits: Vec<String>,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
    /// Queries a query engine ran for this source (Athena): what was sent,
    /// what it scanned and what that cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryRecord>,
}

/// One query a source ran in a query engine, as an auditor re-runs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// `athena`.
    pub engine: String,
    /// `events` or `days`.
    pub purpose: String,
    pub query_id: String,
    pub sql: String,
    /// The engine's final state (`SUCCEEDED`, `CANCELLED`, ...).
    pub state: String,
    /// DataScannedInBytes: what the query is billed for.
    pub data_scanned_bytes: Option<u64>,
    /// EngineExecutionTimeInMillis.
    pub engine_time_ms: Option<u64>,
    /// TotalExecutionTimeInMillis (queueing and planning included).
    pub total_time_ms: Option<u64>,
    /// What the scanned bytes cost at the engine's list price (see
    /// `cost_basis`).
    pub cost_usd: Option<f64>,
    pub cost_basis: String,
    /// Where the engine wrote the result.
    pub output_location: Option<String>,
    /// How the rows were read: `GetQueryResults`, or the result CSV in S3
    /// for a large result.
    pub results_read_from: String,
    pub rows: u64,
}

/// Days of the window with and without a log file, for one account and region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayCoverage {
    pub account_id: String,
    pub region: String,
    pub days_with_logs: Vec<NaiveDate>,
    /// Days without a log file that CloudTrail's signed digests cover
    /// (`--validate`): logging was on and there was nothing to deliver.
    #[serde(default)]
    pub days_quiet: Vec<NaiveDate>,
    /// Days neither a log file nor a verified digest covers.
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
    /// Copies of an eventID already seen, dropped.
    pub duplicates: u64,
    /// eventIDs whose copies differ in content: which copy was kept.
    #[serde(default)]
    pub duplicate_conflicts: Vec<DuplicateConflict>,
    /// Copies of a cross-account call delivered to another account than the
    /// key's (same sharedEventID), dropped.
    #[serde(default)]
    pub cross_account_copies: u64,
    /// Log file integrity validation (`--validate` on `s3://` sources):
    /// every file's outcome, counts, and where the public keys came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityCoverage>,
}

/// One eventID delivered with different content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateConflict {
    pub event_id: String,
    /// The copy kept: one with an errorCode first, then the earliest
    /// delivery, then the first source in name order.
    pub kept: String,
    pub dropped: Vec<String>,
}

/// On-demand rotation: the service event follows the call by seconds to
/// minutes; a small negative slack absorbs clock differences between the
/// two hosts that log them.
const LINK_AFTER: i64 = 30 * 60;
const LINK_BEFORE: i64 = 60;

/// A kept row, with what decides between its copies.
#[derive(Debug)]
struct Held {
    row: EventRow,
    src: usize,
    delivered: Option<DateTime<Utc>>,
}

impl Held {
    /// Lower is preferred: a copy from a validated log file over one not
    /// validated, over one that could not be verified, over an altered one;
    /// then a copy with an errorCode (a failure is the evidence that
    /// matters), then the earliest delivery, then the first source by name,
    /// so the choice never depends on arrival order.
    fn rank(&self) -> (u8, bool, bool, Option<DateTime<Utc>>, &str, Option<&str>) {
        let integrity = match self.row.log_integrity.as_deref() {
            Some("valid") => 0,
            None => 1,
            Some("altered") => 3,
            Some(_) => 2,
        };
        (
            integrity,
            self.row.error_code.is_none(),
            self.delivered.is_none(),
            self.delivered,
            &self.row.source,
            self.row.event_id.as_deref(),
        )
    }
}

/// The same event, whichever file it came from.
fn same_content(a: &EventRow, b: &EventRow) -> bool {
    let strip = |r: &EventRow| EventRow {
        source: String::new(),
        linked_event_id: None,
        log_integrity: None,
        ..r.clone()
    };
    strip(a) == strip(b)
}

/// Gathers rows and coverage from every source.
#[derive(Debug, Default)]
pub struct Collector {
    held: Vec<Held>,
    by_id: HashMap<String, usize>,
    duplicates: u64,
    /// eventID → sources of copies whose content differed.
    conflicts: BTreeMap<String, BTreeSet<String>>,
    sources: Vec<SourceCoverage>,
    /// (account, region) → days that have at least one log file.
    days: BTreeMap<(String, String), BTreeSet<NaiveDate>>,
    /// (account, region) → days verified digests cover with no log listed.
    quiet: BTreeMap<(String, String), BTreeSet<NaiveDate>>,
    integrity: Option<IntegrityCoverage>,
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

    /// Adds kept rows of source `idx` that come from no file (an API).
    pub fn add_rows(&mut self, idx: usize, rows: impl IntoIterator<Item = EventRow>) {
        self.add_rows_delivered(idx, rows, None);
    }

    /// Adds kept rows of source `idx`, from a file CloudTrail delivered at
    /// `delivered`. Of two copies of one eventID, one is kept, chosen the
    /// same way whatever order they arrive in; copies that differ are
    /// recorded as a conflict.
    pub fn add_rows_delivered(
        &mut self,
        idx: usize,
        rows: impl IntoIterator<Item = EventRow>,
        delivered: Option<DateTime<Utc>>,
    ) {
        for row in rows {
            let new = Held {
                row,
                src: idx,
                delivered,
            };
            let Some(id) = new.row.event_id.clone() else {
                self.held.push(new);
                continue;
            };
            match self.by_id.get(&id) {
                None => {
                    self.by_id.insert(id, self.held.len());
                    self.held.push(new);
                }
                Some(&i) => {
                    self.duplicates += 1;
                    let old = &self.held[i];
                    if !same_content(&old.row, &new.row) {
                        let c = self.conflicts.entry(id).or_default();
                        c.insert(old.row.source.clone());
                        c.insert(new.row.source.clone());
                    }
                    if new.rank() < old.rank() {
                        self.held[i] = new;
                    }
                }
            }
        }
    }

    /// Records that a log file exists for this account, region and day.
    pub fn note_log_day(&mut self, account: &str, region: &str, day: NaiveDate) {
        self.days
            .entry((account.to_string(), region.to_string()))
            .or_default()
            .insert(day);
    }

    /// Records that CloudTrail's verified digests cover this day and list
    /// no log file delivered on it: quiet, unless a log file was read.
    pub fn note_quiet_day(&mut self, account: &str, region: &str, day: NaiveDate) {
        self.quiet
            .entry((account.to_string(), region.to_string()))
            .or_default()
            .insert(day);
    }

    /// Adds a source's integrity validation.
    pub fn add_integrity(&mut self, coverage: IntegrityCoverage) {
        match &mut self.integrity {
            Some(i) => i.merge(coverage),
            None => self.integrity = Some(coverage),
        }
    }

    /// Opens the day ledger of an account and region that a source was asked
    /// to read, so that one with no log file at all shows every day missing.
    pub fn note_scope(&mut self, account: &str, region: &str) {
        self.days
            .entry((account.to_string(), region.to_string()))
            .or_default();
    }

    /// Gives every named account that no source found a log for a day
    /// ledger in each of `regions`, so that it shows every day missing
    /// rather than vanishing from the coverage.
    pub fn note_named_accounts(&mut self, accounts: &[String], regions: &[String]) {
        for a in accounts {
            if self.days.keys().any(|(acct, _)| acct == a) {
                continue;
            }
            for r in regions {
                self.note_scope(a, r);
            }
        }
    }

    /// Named accounts with no day ledger yet.
    pub fn accounts_without_ledger<'a>(&self, accounts: &'a [String]) -> Vec<&'a String> {
        accounts
            .iter()
            .filter(|a| !self.days.keys().any(|(acct, _)| acct == *a))
            .collect()
    }

    /// Closes the scan: cross-account copies dropped, rows sorted by time
    /// then id, on-demand rotations linked, and the coverage ledger with
    /// missing days computed over `window` (or, when open, over the span of
    /// days seen for each account and region).
    pub fn finish(self, window: Window) -> (Vec<EventRow>, TrailCoverage) {
        let Collector {
            held,
            duplicates,
            conflicts,
            mut sources,
            days: mut seen_days,
            quiet,
            integrity,
            ..
        } = self;
        // A quiet day of an account and region is a day of its ledger.
        for key in quiet.keys() {
            seen_days.entry(key.clone()).or_default();
        }
        let (held, cross_account_copies) = drop_cross_account_copies(held);
        let mut held = held;
        held.sort_by(|a, b| {
            (a.row.event_time, &a.row.event_id).cmp(&(b.row.event_time, &b.row.event_id))
        });
        for h in &held {
            let src = &mut sources[h.src];
            src.records_kept += 1;
            if let Some(t) = h.row.event_time {
                src.first_event = Some(src.first_event.map_or(t, |f| f.min(t)));
                src.last_event = Some(src.last_event.map_or(t, |l| l.max(t)));
            }
        }
        let kept_source: HashMap<&str, &str> = held
            .iter()
            .filter_map(|h| Some((h.row.event_id.as_deref()?, h.row.source.as_str())))
            .collect();
        let duplicate_conflicts = conflicts
            .iter()
            .map(|(id, srcs)| {
                let kept = kept_source
                    .get(id.as_str())
                    .copied()
                    .unwrap_or("")
                    .to_string();
                DuplicateConflict {
                    event_id: id.clone(),
                    dropped: srcs.iter().filter(|s| **s != kept).cloned().collect(),
                    kept,
                }
            })
            .collect();
        let mut rows: Vec<EventRow> = held.into_iter().map(|h| h.row).collect();
        link_on_demand_rotations(&mut rows);
        let mut days = Vec::new();
        // With no window, a ledger with no log at all (a named account no
        // source has logs for) is judged over the span the scan saw.
        let seen_first = seen_days.values().filter_map(|s| s.first()).min().copied();
        let seen_last = seen_days.values().filter_map(|s| s.last()).max().copied();
        for ((account, region), seen) in &seen_days {
            let first = window
                .since
                .map(|t| t.date_naive())
                .or_else(|| seen.first().copied())
                .or(seen_first);
            // A window open at the end runs to today: a trail that stopped
            // delivering last month has missing days since, not none.
            let last = window
                .until
                .or(window.since.map(|_| Utc::now()))
                .map(|t| t.date_naive())
                .or_else(|| seen.last().copied())
                .or(seen_last);
            let quiet_here = quiet.get(&(account.clone(), region.clone()));
            let is_quiet = |d: &NaiveDate| quiet_here.is_some_and(|q| q.contains(d));
            let mut missing = Vec::new();
            let mut days_quiet = Vec::new();
            if let (Some(mut d), Some(last)) = (first, last) {
                while d <= last {
                    if !seen.contains(&d) {
                        if is_quiet(&d) {
                            days_quiet.push(d);
                        } else {
                            missing.push(d);
                        }
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
                days_quiet,
                days_missing: missing,
            });
        }
        let complete =
            sources.iter().all(|s| {
                s.files_corrupt.is_empty() && s.errors.is_empty() && s.records_bad_time == 0
            }) && days.iter().all(|d| {
                d.days_missing.is_empty()
                    && !(d.days_with_logs.is_empty() && d.days_quiet.is_empty())
            }) && integrity.as_ref().is_none_or(|i| i.complete());
        let coverage = TrailCoverage {
            complete,
            window,
            events_read: sources.iter().map(|s| s.records_read).sum(),
            events_kept: rows.len() as u64,
            duplicates,
            duplicate_conflicts,
            cross_account_copies,
            sources,
            days,
            integrity,
        };
        (rows, coverage)
    }
}

/// A call made from account B on account A's key is delivered to both
/// accounts, under two eventIDs and one sharedEventID. Keeps one copy per
/// sharedEventID and event name: the one delivered to the key's owner
/// (`account_id` is the key's account), else the best ranked. Only copies
/// delivered to another account are dropped: two records of one account
/// that share the id (an Insights start and end do) are not copies.
fn drop_cross_account_copies(held: Vec<Held>) -> (Vec<Held>, u64) {
    let owner_copy = |h: &Held| {
        h.row.recipient_account_id.is_some() && h.row.recipient_account_id == h.row.account_id
    };
    let group = |h: &Held| {
        h.row
            .shared_event_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), h.row.event_name.clone()))
    };
    let mut best: HashMap<(String, Option<String>), usize> = HashMap::new();
    for (i, h) in held.iter().enumerate() {
        let Some(g) = group(h) else { continue };
        match best.get(&g) {
            Some(&j) => {
                let b = &held[j];
                if (!owner_copy(h), h.rank()) < (!owner_copy(b), b.rank()) {
                    best.insert(g, i);
                }
            }
            None => {
                best.insert(g, i);
            }
        }
    }
    let mut dropped = 0;
    let keep: Vec<bool> = held
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let Some(g) = group(h) else { return true };
            let b = &held[best[&g]];
            let copy_elsewhere = b.row.recipient_account_id != h.row.recipient_account_id;
            let k = best[&g] == i || !copy_elsewhere;
            if !k {
                dropped += 1;
            }
            k
        })
        .collect();
    let out = held
        .into_iter()
        .zip(keep)
        .filter_map(|(h, k)| k.then_some(h))
        .collect();
    (out, dropped)
}

/// An on-demand rotation is logged twice: the `RotateKeyOnDemand` call and
/// the `RotateKey` service event with rotationType ON_DEMAND that KMS logs
/// when the rotation happens. Both rows stay; each carries the other's
/// eventID, so the rules and the timeline count one rotation. A call is
/// linked to the nearest unlinked service event for the same key from a
/// minute before to half an hour after it. `rows` are sorted by time.
pub fn link_on_demand_rotations(rows: &mut [EventRow]) {
    let is_call = |r: &EventRow| {
        r.event_name.as_deref() == Some("RotateKeyOnDemand")
            && r.error_code.is_none()
            && r.key_arn.is_some()
            && r.event_time.is_some()
    };
    let is_rotation = |r: &EventRow| {
        r.event_name.as_deref() == Some("RotateKey")
            && r.event_type.as_deref() == Some("AwsServiceEvent")
            && r.rotation_type.as_deref() == Some("ON_DEMAND")
            && r.error_code.is_none()
            && r.key_arn.is_some()
            && r.event_time.is_some()
    };
    let calls: Vec<usize> = (0..rows.len()).filter(|&i| is_call(&rows[i])).collect();
    let mut taken = vec![false; rows.len()];
    for c in calls {
        let (Some(t), Some(key)) = (rows[c].event_time, rows[c].key_arn.clone()) else {
            continue;
        };
        let from = t - Duration::seconds(LINK_BEFORE);
        let to = t + Duration::seconds(LINK_AFTER);
        let found = (0..rows.len())
            .filter(|&i| !taken[i] && is_rotation(&rows[i]))
            .filter(|&i| rows[i].key_arn.as_deref() == Some(key.as_str()))
            .filter_map(|i| rows[i].event_time.map(|e| (i, e)))
            .filter(|(_, e)| *e >= from && *e <= to)
            .min_by_key(|(i, e)| ((*e - t).num_milliseconds().abs(), *i));
        if let Some((r, _)) = found {
            taken[r] = true;
            rows[c].linked_event_id = rows[r].event_id.clone();
            rows[r].linked_event_id = rows[c].event_id.clone();
        }
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
        if let Some(i) = &self.integrity {
            let mut by: BTreeMap<&str, u64> = BTreeMap::new();
            for f in i.problems() {
                *by.entry(f.outcome.as_str()).or_default() += 1;
            }
            if !by.is_empty() {
                let parts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
                out.push(format!(
                    "log file integrity: {} file(s) not valid ({}); coverage.json trail.integrity names each",
                    by.values().sum::<u64>(),
                    parts.join(", ")
                ));
            }
        }
        for d in &self.days {
            if d.days_missing.is_empty() && d.days_with_logs.is_empty() && d.days_quiet.is_empty() {
                out.push(format!(
                    "no CloudTrail log at all for account {} region {}",
                    d.account_id, d.region
                ));
            }
            if !d.days_missing.is_empty() {
                let shown: Vec<String> = d
                    .days_missing
                    .iter()
                    .take(5)
                    .map(|d| d.to_string())
                    .collect();
                let more = d.days_missing.len().saturating_sub(5);
                out.push(format!(
                    "no CloudTrail log{} for account {} region {} on {} day(s): {}{}",
                    if self.integrity.is_some() {
                        " or verified digest"
                    } else {
                        ""
                    },
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

impl TrailCoverage {
    /// What the query engines scanned and cost, one line per source that
    /// ran queries (Athena bills the bytes it scans).
    pub fn query_costs(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter(|s| !s.queries.is_empty())
            .map(|s| {
                let bytes: u64 = s.queries.iter().filter_map(|q| q.data_scanned_bytes).sum();
                let cost: f64 = s.queries.iter().filter_map(|q| q.cost_usd).sum();
                format!(
                    "{}: {} quer{} scanned {:.2} GiB, ${cost:.4} at the list price (coverage.json lists each query, its SQL and its cost)",
                    s.source,
                    s.queries.len(),
                    if s.queries.len() == 1 { "y" } else { "ies" },
                    bytes as f64 / (1u64 << 30) as f64,
                )
            })
            .collect()
    }

    /// One line per thing a reader should know that is not a gap.
    pub fn warnings(&self) -> Vec<String> {
        self.duplicate_conflicts
            .iter()
            .map(|c| {
                format!(
                    "event {} was delivered with different content; kept the copy in {} ({} other copy(ies) dropped, listed in coverage.json)",
                    c.event_id,
                    c.kept,
                    c.dropped.len()
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, sec: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, h, m, sec).unwrap()
    }

    fn row(id: &str) -> EventRow {
        EventRow {
            event_id: Some(id.into()),
            event_time: Some(at(3, 4, 5)),
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
        assert!(cov.duplicate_conflicts.is_empty());
        assert_eq!(cov.sources[0].records_kept, 2);
    }

    #[test]
    fn conflicting_copies_pick_the_failure_then_the_earliest_delivery_in_any_order() {
        let plain = |src: &str| EventRow {
            source: src.into(),
            user_agent: Some(src.into()),
            ..row("x")
        };
        let failed = EventRow {
            error_code: Some("AccessDeniedException".into()),
            ..plain("late.json")
        };
        let early = Some(at(4, 0, 0));
        let late = Some(at(9, 0, 0));
        let feeds: [Vec<(EventRow, Option<DateTime<Utc>>)>; 2] = [
            vec![
                (plain("b.json"), late),
                (plain("a.json"), early),
                (failed.clone(), late),
            ],
            vec![
                (failed.clone(), late),
                (plain("a.json"), early),
                (plain("b.json"), late),
            ],
        ];
        for feed in feeds {
            let mut c = Collector::new();
            let s = c.begin_source("logs", "file");
            for (r, d) in feed {
                c.add_rows_delivered(s, [r], d);
            }
            let (rows, cov) = c.finish(Window::default());
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].source, "late.json", "the failure wins");
            assert_eq!(cov.duplicates, 2);
            assert_eq!(
                cov.duplicate_conflicts,
                vec![DuplicateConflict {
                    event_id: "x".into(),
                    kept: "late.json".into(),
                    dropped: vec!["a.json".into(), "b.json".into()],
                }]
            );
            assert_eq!(cov.warnings().len(), 1);
        }
        // Without a failure, the earliest delivery wins, whatever the order.
        for order in [[0, 1], [1, 0]] {
            let copies = [(plain("z.json"), early), (plain("a.json"), late)];
            let mut c = Collector::new();
            let s = c.begin_source("logs", "file");
            for i in order {
                c.add_rows_delivered(s, [copies[i].0.clone()], copies[i].1);
            }
            let (rows, _) = c.finish(Window::default());
            assert_eq!(rows[0].source, "z.json");
        }
    }

    #[test]
    fn a_cross_account_call_is_one_row_under_the_owner() {
        let copy = |id: &str, recipient: &str| EventRow {
            event_id: Some(id.into()),
            shared_event_id: Some("shared-1".into()),
            account_id: Some("111122223333".into()),
            recipient_account_id: Some(recipient.into()),
            caller_account_id: Some("444455556666".into()),
            key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            ..row(id)
        };
        for order in [["b", "a"], ["a", "b"]] {
            let mut c = Collector::new();
            let s = c.begin_source("logs", "file");
            for who in order {
                let r = if who == "a" {
                    copy("id-a", "111122223333")
                } else {
                    copy("id-b", "444455556666")
                };
                c.add_rows(s, [r]);
            }
            let (rows, cov) = c.finish(Window::default());
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].event_id.as_deref(), Some("id-a"));
            assert_eq!(rows[0].account_id.as_deref(), Some("111122223333"));
            assert_eq!(rows[0].caller_account_id.as_deref(), Some("444455556666"));
            assert_eq!(cov.cross_account_copies, 1);
            assert_eq!(cov.sources[0].records_kept, 1);
        }
    }

    #[test]
    fn an_on_demand_call_and_its_service_event_are_linked() {
        let key = Some("arn:aws:kms:us-east-1:111122223333:key/k".to_string());
        let call = |id: &str, t| EventRow {
            event_id: Some(id.into()),
            event_time: Some(t),
            event_name: Some("RotateKeyOnDemand".into()),
            event_type: Some("AwsApiCall".into()),
            rotation_type: Some("ON_DEMAND".into()),
            key_arn: key.clone(),
            ..EventRow::default()
        };
        let rotation = |id: &str, t, kind: &str| EventRow {
            event_id: Some(id.into()),
            event_time: Some(t),
            event_name: Some("RotateKey".into()),
            event_type: Some("AwsServiceEvent".into()),
            rotation_type: Some(kind.into()),
            key_arn: key.clone(),
            ..EventRow::default()
        };
        let mut c = Collector::new();
        let s = c.begin_source("logs", "file");
        c.add_rows(
            s,
            [
                call("c1", at(3, 0, 0)),
                rotation("r1", at(3, 2, 0), "ON_DEMAND"),
                rotation("auto", at(3, 2, 30), "AUTOMATIC"),
                // Too late for c1: an hour after it.
                call("c2", at(5, 0, 0)),
                rotation("r-far", at(6, 10, 0), "ON_DEMAND"),
            ],
        );
        let (rows, _) = c.finish(Window::default());
        let link = |id: &str| {
            rows.iter()
                .find(|r| r.event_id.as_deref() == Some(id))
                .unwrap()
                .linked_event_id
                .clone()
        };
        assert_eq!(link("c1").as_deref(), Some("r1"));
        assert_eq!(link("r1").as_deref(), Some("c1"));
        assert_eq!(link("auto"), None);
        assert_eq!(link("c2"), None);
        assert_eq!(link("r-far"), None);
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

    #[test]
    fn a_named_account_without_logs_gets_every_day_missing() {
        let mut c = Collector::new();
        c.begin_source("logs", "file");
        let d = |day| NaiveDate::from_ymd_opt(2025, 1, day).unwrap();
        c.note_log_day("111122223333", "us-east-1", d(1));
        let named = vec!["111122223333".to_string(), "999999999999".to_string()];
        assert_eq!(c.accounts_without_ledger(&named), vec![&named[1]]);
        c.note_named_accounts(&named, &["us-east-1".into(), "eu-west-1".into()]);
        let window = Window {
            since: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
            until: Some(Utc.with_ymd_and_hms(2025, 1, 1, 23, 0, 0).unwrap()),
        };
        let (_, cov) = c.finish(window);
        let of = |a: &str| {
            cov.days
                .iter()
                .filter(|x| x.account_id == a)
                .map(|x| (x.region.clone(), x.days_missing.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(of("111122223333"), vec![("us-east-1".to_string(), 0)]);
        assert_eq!(
            of("999999999999"),
            vec![("eu-west-1".to_string(), 1), ("us-east-1".to_string(), 1)]
        );
        assert!(!cov.complete);

        // No window: judged over the days the scan saw, and never complete.
        let mut c = Collector::new();
        c.begin_source("logs", "file");
        c.note_log_day("111122223333", "us-east-1", d(1));
        c.note_log_day("111122223333", "us-east-1", d(2));
        c.note_named_accounts(&named, &["us-east-1".into()]);
        let (_, cov) = c.finish(Window::default());
        let other = cov
            .days
            .iter()
            .find(|x| x.account_id == "999999999999")
            .unwrap();
        assert_eq!(other.days_missing, vec![d(1), d(2)]);
        assert!(!cov.complete);
        let mut c = Collector::new();
        c.begin_source("logs", "file");
        c.note_named_accounts(&named, &["us-east-1".into()]);
        let (_, cov) = c.finish(Window::default());
        assert!(!cov.complete, "no log anywhere is not complete");
        assert!(cov
            .gaps()
            .iter()
            .any(|g| g.contains("no CloudTrail log at all")));
    }
}
