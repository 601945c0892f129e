//! One reader for every shape CloudTrail reaches users in: S3 delivery files
//! (`{"Records":[...]}`, plain or gzip, multi-member too), NDJSON, JSON
//! arrays, LookupEvents output from the API or the AWS CLI (`Events[]` with
//! `CloudTrailEvent` as a JSON string, or one such event a line).
//!
//! Speed comes from not building what cannot matter: each record's bytes are
//! found by a structural scan ([`super::scan`]); a record is parsed only when
//! its bytes could hold a kept event (it names `kms.amazonaws.com`, and it has
//! `errorCode` or a kept event name somewhere, or any `\u` escape that could
//! hide either). The parse then decides at the record's top level.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{MutexGuard, OnceLock};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use memchr::memmem;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::gz;
use super::model::AthenaSettings;
use super::record::{keep, opt_str, parse_time, Kept, Record};
use super::scan::{self, ArrayElements, ScanError};
use super::{EventRow, Scope, Window};

/// The KMS event names kept by default, one per line in
/// `queries/trail_events.txt`, where users can read and extend them.
pub const DEFAULT_EVENTS_FILE: &str = include_str!("../../queries/trail_events.txt");

/// The default of `--max-log-bytes`: CloudTrail delivers files of a few MB;
/// a file or gzip member that inflates past this is not read.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 256 << 20;

/// The default of `--late-delivery-days`.
pub const DEFAULT_LATE_DELIVERY_DAYS: u32 = 2;

/// The default of `--query-timeout` (CloudTrail Lake), in seconds.
pub const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 3600;

/// Event names from a list file: one per line, `#` starts a comment.
pub fn parse_event_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn default_events() -> &'static [String] {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| parse_event_list(DEFAULT_EVENTS_FILE))
}

/// What to keep.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Keep every KMS event, not just the listed names and failures.
    pub include_data_events: bool,
    pub window: Window,
    pub scope: Scope,
    /// Event names kept in addition to `queries/trail_events.txt`
    /// (`--events-file`).
    pub extra_events: Vec<String>,
    /// A file, or a gzip member, larger than this once inflated is corrupt
    /// and not read (`--max-log-bytes`): memory stays bounded on hostile
    /// input such as a gzip bomb.
    pub max_log_bytes: u64,
    /// How many days after its last day the S3 archive is listed
    /// (`--late-delivery-days`): a file's folder is its delivery day, and
    /// CloudTrail can deliver hours late.
    pub late_delivery_days: u32,
    /// How long a CloudTrail Lake query may take before it is cancelled
    /// (`--query-timeout`).
    pub query_timeout_secs: u64,
    /// Validate S3 archives against CloudTrail's signed digest files
    /// (`--validate`): the reader then also hashes each file's inflated
    /// bytes ([`FileScan::sha256`]).
    pub validate: bool,
    /// `--public-keys FILE`: the output of `aws cloudtrail list-public-keys`,
    /// used instead of calling ListPublicKeys.
    pub public_keys: Option<std::path::PathBuf>,
    /// Where and how the `athena:` source queries (`--athena-*`).
    pub athena: AthenaSettings,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            include_data_events: false,
            window: Window::default(),
            scope: Scope::default(),
            extra_events: Vec::new(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            late_delivery_days: DEFAULT_LATE_DELIVERY_DAYS,
            query_timeout_secs: DEFAULT_QUERY_TIMEOUT_SECS,
            validate: false,
            public_keys: None,
            athena: AthenaSettings::default(),
        }
    }
}

impl ReadOptions {
    pub fn keeps_name(&self, name: &str) -> bool {
        default_events().iter().any(|n| n == name) || self.extra_events.iter().any(|n| n == name)
    }

    fn keeps_name_bytes(&self, name: &[u8]) -> bool {
        default_events().iter().any(|n| n.as_bytes() == name)
            || self.extra_events.iter().any(|n| n.as_bytes() == name)
    }

    /// The kept event names: the default list plus `--events-file`, for
    /// sources that filter before the reader does (LookupEvents, Lake).
    pub fn kept_names(&self) -> Vec<String> {
        let mut names = default_events().to_vec();
        for extra in &self.extra_events {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        names
    }
}

/// How a file was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Read,
    /// Not CloudTrail (a digest or Insights file, some other JSON); not a gap.
    Skipped(String),
    /// Damaged: truncated gzip, invalid JSON, wrong shape, a record whose
    /// time cannot be read. Rows read before the damage are still in
    /// [`FileScan::rows`]; the reason says how many.
    Corrupt(String),
}

/// What one file yielded.
#[derive(Debug, Clone)]
pub struct FileScan {
    pub verdict: Verdict,
    /// Bytes as stored (the compressed size for gzip).
    pub bytes: u64,
    /// CloudTrail records seen in the file, before filtering.
    pub records_read: u64,
    /// Records that would be kept, or count for a day, but whose eventTime
    /// is missing or not a zoned RFC 3339 time (never kept, never a day).
    pub bad_times: u64,
    /// Kept rows, `source` set to the label.
    pub rows: Vec<EventRow>,
    /// (account, region, day) this file is a log for: the delivery day from
    /// an AWS-named file, else the UTC days of its records. Within the scope.
    pub log_days: Vec<(String, String, NaiveDate)>,
    /// When CloudTrail delivered the file (its name's time), if AWS-named:
    /// of two copies of one event, the earlier delivery wins.
    pub delivered: Option<DateTime<Utc>>,
    /// SHA-256 of the file's uncompressed content, when validating: what a
    /// digest file lists. None when the file was not inflated whole (over
    /// `--max-log-bytes`) or not asked for.
    pub sha256: Option<[u8; 32]>,
}

impl FileScan {
    /// A file that was not read, for the reason given.
    pub fn unread(verdict: Verdict, bytes: u64) -> Self {
        FileScan {
            verdict,
            bytes,
            records_read: 0,
            bad_times: 0,
            rows: Vec::new(),
            log_days: Vec::new(),
            delivered: None,
            sha256: None,
        }
    }
}

thread_local! {
    /// Inflated text, reused across files on a thread: one allocation per
    /// worker instead of one per file keeps RSS flat and avoids page faults.
    static INFLATED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads one file's bytes, whatever its shape. Never panics on input.
pub fn scan_bytes(label: &str, data: &[u8], opts: &ReadOptions) -> FileScan {
    scan_bytes_held(label, data, opts, &mut None)
}

/// [`scan_bytes`] for a caller that may already hold the large-buffer
/// permit (it read a large file into memory): inflation then uses it
/// rather than waiting for it.
pub fn scan_bytes_held(
    label: &str,
    data: &[u8],
    opts: &ReadOptions,
    permit: &mut Option<MutexGuard<'static, ()>>,
) -> FileScan {
    scan_bytes_expecting(label, data, opts, permit, None)
}

/// [`scan_bytes_held`] when a signature-verified CloudTrail digest lists
/// the file with `expected` as the SHA-256 of its uncompressed content
/// (`--validate`). A file that hashes to it is byte for byte what
/// CloudTrail delivered, and CloudTrail writes well-formed JSON: its
/// records are cut by bracket balance instead of the full structural check
/// that catches damage. Any other file gets the full check.
pub fn scan_bytes_expecting(
    label: &str,
    data: &[u8],
    opts: &ReadOptions,
    permit: &mut Option<MutexGuard<'static, ()>>,
    expected: Option<&[u8; 32]>,
) -> FileScan {
    let mut out = FileScan {
        verdict: Verdict::Read,
        bytes: data.len() as u64,
        records_read: 0,
        bad_times: 0,
        rows: Vec::new(),
        log_days: Vec::new(),
        delivered: None,
        sha256: None,
    };
    if is_digest_path(label) {
        out.verdict = Verdict::Skipped(
            "CloudTrail digest file (CloudTrail-Digest/), not an event log".into(),
        );
        return out;
    }
    if is_insight_path(label) {
        out.verdict = Verdict::Skipped(
            "CloudTrail Insights file (CloudTrail-Insight/), not an event log".into(),
        );
        return out;
    }
    let named = aws_log_name(label);
    out.delivered = named.as_ref().map(|n| n.delivered);
    let shape = if is_delivery_name(label) {
        Shape::Delivery
    } else {
        Shape::Any
    };
    let limit = usize::try_from(opts.max_log_bytes).unwrap_or(usize::MAX);
    if gz::is_gzip(data) {
        INFLATED.with(|cell| {
            // A re-entrant call (not expected) falls back to a fresh buffer.
            let mut fresh = Vec::new();
            let mut guard = cell.try_borrow_mut();
            let buf = match guard.as_deref_mut() {
                Ok(b) => b,
                Err(_) => &mut fresh,
            };
            match gz::inflate(data, buf, limit, permit) {
                Err(e) if e.over_limit => {
                    // A bomb's text is not worth scanning, and a real log
                    // this large is not one CloudTrail wrote.
                    out.verdict = Verdict::Corrupt(e.reason);
                }
                inflated => {
                    // The digest lists the SHA-256 of the whole uncompressed
                    // file: hashed from the buffer the scan reads, not
                    // fetched or inflated again. A damaged file hashes what
                    // could be recovered, which then differs from the digest.
                    if opts.validate {
                        out.sha256 = Some(Sha256::digest(&buf[..]).into());
                    }
                    let trusted = expected.is_some() && out.sha256.as_ref() == expected;
                    scan_text(label, buf, opts, named.as_ref(), shape, trusted, &mut out);
                    if let Err(e) = inflated {
                        out.verdict = Verdict::Corrupt(match &out.verdict {
                            Verdict::Read | Verdict::Skipped(_) => {
                                format!("{}; {} records read before it", e.reason, out.records_read)
                            }
                            Verdict::Corrupt(inner) => {
                                format!("{}; the recovered text: {inner}", e.reason)
                            }
                        });
                    }
                }
            }
            // A large buffer is given back before the permit is, so at
            // most one large buffer lives at a time.
            if buf.capacity() > gz::LARGE {
                *buf = Vec::new();
            }
        });
    } else if data.len() > limit {
        out.verdict = Verdict::Corrupt(over_limit(data.len() as u64, opts.max_log_bytes));
    } else {
        if opts.validate {
            out.sha256 = Some(Sha256::digest(data).into());
        }
        let trusted = expected.is_some() && out.sha256.as_ref() == expected;
        scan_text(label, data, opts, named.as_ref(), shape, trusted, &mut out);
    }
    if let Some(n) = &named {
        // A damaged file still shows a log was delivered that day when some
        // of its records could be read.
        let delivered = out.verdict == Verdict::Read || out.records_read > 0;
        out.log_days = if delivered
            && opts.scope.wants_account(&n.account)
            && opts.scope.wants_region(&n.region)
        {
            vec![(n.account.clone(), n.region.clone(), n.day)]
        } else {
            Vec::new()
        };
    }
    out
}

/// The reason given for a file larger than `--max-log-bytes`.
pub fn over_limit(size: u64, limit: u64) -> String {
    format!(
        "{size} bytes, more than --max-log-bytes ({limit}); not read (raise --max-log-bytes to read a file this large)"
    )
}

/// Parses one CloudTrail record given as JSON text (LookupEvents'
/// CloudTrailEvent, a Lake row). Ok(None): valid but not kept.
pub fn parse_record(
    json: &str,
    label: &str,
    opts: &ReadOptions,
) -> Result<Option<EventRow>, String> {
    let rec: Record = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    if !rec.looks_like_cloudtrail() {
        return Err("not a CloudTrail record (no eventName, eventSource or eventID)".into());
    }
    match keep(&rec, label, opts) {
        Kept::Row(row) => Ok(Some(*row)),
        Kept::Dropped => Ok(None),
        Kept::BadTime(p) => Err(p.to_string()),
    }
}

/// `.../CloudTrail-Digest/...` objects are signed hashes of log files.
fn is_digest_path(label: &str) -> bool {
    label.contains("CloudTrail-Digest/")
        || label.contains("CloudTrail-Digest\\")
        || base_name(label).contains("_CloudTrail-Digest_")
}

/// `.../CloudTrail-Insight/...` files hold Insights events (unusual API
/// rates), not the calls themselves: they prove nothing about a day's logs.
fn is_insight_path(label: &str) -> bool {
    label.contains("CloudTrail-Insight/")
        || label.contains("CloudTrail-Insight\\")
        || base_name(label).contains("_CloudTrail-Insight_")
}

/// A name CloudTrail gives its deliveries (`..._CloudTrail_...`). Such a
/// file must be one `{"Records":[...]}` document, whole; anything else
/// under that name is corrupt, not "some other JSON".
pub fn is_delivery_name(label: &str) -> bool {
    base_name(label).contains("_CloudTrail_")
}

fn base_name(label: &str) -> &str {
    label.rsplit(['/', '\\']).next().unwrap_or(label)
}

/// The parts of `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json[.gz]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName {
    pub account: String,
    pub region: String,
    /// Delivery day (the name's time is when the file was written).
    pub day: NaiveDate,
    /// Delivery time, to the minute.
    pub delivered: DateTime<Utc>,
}

pub fn aws_log_name(label: &str) -> Option<LogName> {
    let name = base_name(label);
    let mut parts = name.split('_');
    let account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    let stamp = parts.next()?;
    parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
        return None;
    }
    let day = NaiveDate::parse_from_str(stamp.get(..8)?, "%Y%m%d").ok()?;
    let delivered = stamp
        .get(..13)
        .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M").ok())
        .map(|t| t.and_utc())
        .unwrap_or_else(|| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    Some(LogName {
        account: account.into(),
        region: region.into(),
        day,
        delivered,
    })
}

/// What shape the file must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Named as a CloudTrail delivery: `{"Records":[...]}` and nothing else.
    Delivery,
    /// Any of the shapes the reader knows; other JSON is skipped.
    Any,
}

/// Byte-level needles, built once.
struct Needles {
    kms: memmem::Finder<'static>,
    unicode_escape: memmem::Finder<'static>,
    error_code: memmem::Finder<'static>,
    event_name: memmem::Finder<'static>,
    cloudtrail_event: memmem::Finder<'static>,
}

fn needles() -> &'static Needles {
    static N: OnceLock<Needles> = OnceLock::new();
    N.get_or_init(|| Needles {
        kms: memmem::Finder::new(b"kms.amazonaws.com"),
        unicode_escape: memmem::Finder::new(b"\\u"),
        error_code: memmem::Finder::new(b"errorCode"),
        event_name: memmem::Finder::new(b"\"eventName\""),
        cloudtrail_event: memmem::Finder::new(b"CloudTrailEvent"),
    })
}

/// The hits of one needle in a whole buffer, found forward as the records
/// go by: one `memmem` pass per file instead of one per record, and no list
/// of offsets (on hostile text, a list of every `\u` would take four times
/// the text's size).
struct Hits<'b> {
    finder: &'b memmem::Finder<'static>,
    buf: &'b [u8],
    /// Where the search resumes.
    from: usize,
    /// The next hit at or after the last record start asked about, if any.
    next: Option<usize>,
}

impl<'b> Hits<'b> {
    fn new(finder: &'b memmem::Finder<'static>, buf: &'b [u8]) -> Self {
        let mut h = Hits {
            finder,
            buf,
            from: 0,
            next: None,
        };
        h.advance();
        h
    }

    fn advance(&mut self) {
        self.next = self
            .buf
            .get(self.from..)
            .and_then(|rest| self.finder.find(rest))
            .map(|i| self.from + i);
        if let Some(n) = self.next {
            self.from = n + 1;
        } else {
            self.from = self.buf.len();
        }
    }

    /// The first hit at or after `s`. Calls come with increasing `s`.
    fn first_from(&mut self, s: usize) -> Option<usize> {
        while let Some(n) = self.next {
            if n >= s {
                return Some(n);
            }
            // Skip straight to `s` rather than hit by hit.
            self.from = self.from.max(s);
            self.advance();
        }
        None
    }

    /// Is a hit wholly inside `[s, e)`?
    fn any_within(&mut self, s: usize, e: usize) -> bool {
        let len = self.finder.needle().len();
        self.first_from(s).is_some_and(|n| n + len <= e)
    }

    /// Does any hit wholly inside `[s, e)` satisfy `f`? Consumes the hits
    /// it looks at.
    fn any_within_where(&mut self, s: usize, e: usize, mut f: impl FnMut(usize) -> bool) -> bool {
        let len = self.finder.needle().len();
        let mut at = s;
        while let Some(n) = self.first_from(at) {
            if n + len > e {
                return false;
            }
            if f(n) {
                return true;
            }
            at = n + 1;
        }
        false
    }
}

/// The needles found in a whole file's text.
struct FileHits<'b> {
    unicode_escape: Hits<'b>,
    kms: Hits<'b>,
    error_code: Hits<'b>,
    event_name: Hits<'b>,
}

impl<'b> FileHits<'b> {
    fn new(buf: &'b [u8]) -> Self {
        let n = needles();
        FileHits {
            unicode_escape: Hits::new(&n.unicode_escape, buf),
            kms: Hits::new(&n.kms, buf),
            error_code: Hits::new(&n.error_code, buf),
            event_name: Hits::new(&n.event_name, buf),
        }
    }

    /// [`may_be_kept`] for the record at `buf[s..e]`, from the file's hits.
    fn may_be_kept(&mut self, buf: &[u8], s: usize, e: usize, opts: &ReadOptions) -> bool {
        if self.unicode_escape.any_within(s, e) {
            return true;
        }
        if !self.kms.any_within(s, e) {
            return false;
        }
        if opts.include_data_events || self.error_code.any_within(s, e) {
            return true;
        }
        let rec = &buf[..e];
        self.event_name
            .any_within_where(s, e, |at| names_kept_event(rec, at, opts))
    }
}

/// Could these record bytes hold a kept event? False only when they surely
/// cannot. Without a `\u` escape the bytes spell keys and values literally
/// (JSON's other escapes cannot produce letters or dots), so a KMS record
/// must contain `kms.amazonaws.com`, and a kept one also `errorCode` or
/// `"eventName"` followed by a listed name.
fn may_be_kept(rec: &[u8], opts: &ReadOptions) -> bool {
    let n = needles();
    if n.unicode_escape.find(rec).is_some() {
        return true;
    }
    if n.kms.find(rec).is_none() {
        return false;
    }
    if opts.include_data_events || n.error_code.find(rec).is_some() {
        return true;
    }
    n.event_name
        .find_iter(rec)
        .any(|at| names_kept_event(rec, at, opts))
}

/// Does the `"eventName"` at `at` name a kept event (or an escaped name the
/// parser must decide on)?
fn names_kept_event(rec: &[u8], at: usize, opts: &ReadOptions) -> bool {
    let mut i = scan::skip_ws(rec, at + b"\"eventName\"".len());
    if rec.get(i) != Some(&b':') {
        return false;
    }
    i = scan::skip_ws(rec, i + 1);
    if rec.get(i) != Some(&b'"') {
        return false;
    }
    let v = &rec[i + 1..];
    match memchr::memchr2(b'"', b'\\', v) {
        Some(e) if v[e] == b'"' => opts.keeps_name_bytes(&v[..e]),
        Some(_) => true,
        None => false,
    }
}

/// The fields a file's days are read from, for files not named by AWS.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "@timestamp", default, deserialize_with = "opt_str")]
    at_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<MetaIdentity<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_category: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaIdentity<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    account_id: Option<Cow<'a, str>>,
}

/// An Insights event (unusual API activity) is not a log of the day's
/// calls: it never makes a day covered.
fn is_insight(event_type: Option<&str>, category: Option<&str>) -> bool {
    event_type == Some("AwsCloudTrailInsight") || category == Some("Insight")
}

/// A LookupEvents element: the record is a JSON string inside it.
#[derive(Deserialize)]
struct LookupEvent<'a> {
    #[serde(borrow, rename = "CloudTrailEvent")]
    cloudtrail_event: Option<Cow<'a, str>>,
}

/// Per-file state while its records go by.
struct FileState<'o, 'b> {
    label: String,
    opts: &'o ReadOptions,
    /// Collect days from records (the file is not AWS-named).
    want_days: bool,
    /// The file is what a verified digest says CloudTrail delivered: its
    /// structure needs no check.
    trusted: bool,
    days: Vec<(String, String, NaiveDate)>,
    /// First record-level problem; later records are still read.
    first_bad: Option<String>,
    bad_records: u64,
    /// Needle hits in the file's text, for records given by offset.
    hits: FileHits<'b>,
}

impl FileState<'_, '_> {
    fn note_bad(&mut self, what: String) {
        self.bad_records += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some(what);
        }
    }

    fn note_bad_time(&mut self, at: usize, p: &super::record::TimeProblem, out: &mut FileScan) {
        out.bad_times += 1;
        self.note_bad(format!("record at byte {at}: {p}"));
    }

    /// A record's day, from its parsed UTC time.
    fn note_day(&mut self, account: Option<&str>, region: Option<&str>, day: NaiveDate) {
        let (Some(a), Some(r)) = (account, region) else {
            return;
        };
        if !self.opts.scope.wants_account(a) || !self.opts.scope.wants_region(r) {
            return;
        }
        if !self
            .days
            .iter()
            .any(|(x, y, z)| *z == day && x == a && y == r)
        {
            self.days.push((a.to_string(), r.to_string(), day));
        }
    }

    /// The day of a record for the ledger: a time that does not parse is a
    /// bad record (a day must never be counted from text it was not read
    /// from); a record with no time at all is not evidence of any day.
    fn day_from(
        &mut self,
        at: usize,
        account: Option<&str>,
        region: Option<&str>,
        time: Option<&str>,
        out: &mut FileScan,
    ) {
        let Some(text) = time else { return };
        match parse_time(text) {
            Some(t) => self.note_day(account, region, t.date_naive()),
            None => {
                let p = super::record::TimeProblem::Invalid(text.chars().take(40).collect());
                self.note_bad_time(at, &p, out);
            }
        }
    }

    /// The record at `buf[s..e]` of the file's text.
    fn record(&mut self, buf: &[u8], s: usize, e: usize, out: &mut FileScan) {
        let candidate = self.hits.may_be_kept(buf, s, e, self.opts);
        self.record_bytes(&buf[s..e], s, candidate, out);
    }

    /// One CloudTrail record's bytes; `candidate` says whether they could
    /// hold a kept event.
    fn record_bytes(&mut self, bytes: &[u8], at: usize, candidate: bool, out: &mut FileScan) {
        out.records_read += 1;
        if candidate {
            match serde_json::from_slice::<Record>(bytes) {
                Ok(rec) => {
                    if self.want_days
                        && !is_insight(rec.event_type.as_deref(), rec.event_category.as_deref())
                    {
                        let time = rec.event_time.as_deref().or(rec.at_timestamp.as_deref());
                        self.day_from(at, rec.account(), rec.aws_region.as_deref(), time, out);
                    }
                    match keep(&rec, &self.label, self.opts) {
                        Kept::Row(row) => out.rows.push(*row),
                        Kept::Dropped => {}
                        Kept::BadTime(p) => {
                            // Counted once, when the ledger already did.
                            if !(self.want_days
                                && matches!(p, super::record::TimeProblem::Invalid(_)))
                            {
                                self.note_bad_time(at, &p, out);
                            }
                        }
                    }
                }
                Err(e) => self.note_bad(format!("record at byte {at}: invalid JSON: {e}")),
            }
        } else if self.want_days {
            match serde_json::from_slice::<Meta>(bytes) {
                Ok(m) => {
                    if !is_insight(m.event_type.as_deref(), m.event_category.as_deref()) {
                        let account = m.recipient_account_id.as_deref().or(m
                            .user_identity
                            .as_ref()
                            .and_then(|u| u.account_id.as_deref()));
                        let time = m.event_time.as_deref().or(m.at_timestamp.as_deref());
                        self.day_from(at, account, m.aws_region.as_deref(), time, out);
                    }
                }
                Err(e) => self.note_bad(format!("record at byte {at}: invalid JSON: {e}")),
            }
        }
    }

    /// An element of an array, NDJSON line or Events[]: a LookupEvents event
    /// (record inside `CloudTrailEvent`) or a record itself.
    fn element(&mut self, buf: &[u8], at: usize, end: usize, out: &mut FileScan) {
        let bytes = &buf[at..end];
        if bytes.first() != Some(&b'{') {
            out.records_read += 1;
            self.note_bad(format!("element at byte {at} is not a JSON object"));
            return;
        }
        if needles().cloudtrail_event.find(bytes).is_some() {
            if let Ok(LookupEvent {
                cloudtrail_event: Some(inner),
            }) = serde_json::from_slice::<LookupEvent>(bytes)
            {
                let candidate = may_be_kept(inner.as_bytes(), self.opts);
                self.record_bytes(inner.as_bytes(), at, candidate, out);
                return;
            }
        }
        self.record(buf, at, end, out);
    }
}

/// What a top-level object turned out to be.
enum TopObject {
    Records(usize),
    Events(usize),
    Digest,
    Single,
    Other(Vec<String>),
}

/// Walks a top-level object's members. With a sink, the elements of an
/// array under `Records` or `Events` are handed over as they are found, so a
/// file cut short still yields the records before the cut.
fn walk_object(
    buf: &[u8],
    start: usize,
    mut sink: Option<(&mut FileState, &mut FileScan)>,
) -> Result<(TopObject, usize), ScanError> {
    let mut records = None;
    let mut events = None;
    let mut keys = Vec::new();
    let mut digest = false;
    let mut single = false;
    let mut i = start + 1;
    let mut first = true;
    let end = loop {
        i = scan::skip_ws(buf, i);
        match buf.get(i) {
            Some(b'}') if first => break i + 1,
            Some(b'"') => {}
            Some(_) => {
                return Err(ScanError {
                    at: i,
                    what: "expected a quoted key",
                })
            }
            None => {
                return Err(ScanError {
                    at: i,
                    what: "unexpected end of input in an object",
                })
            }
        }
        let key_end = scan::skip_string(buf, i)?;
        let key = decode_key(&buf[i + 1..key_end - 1]);
        i = scan::skip_ws(buf, key_end);
        if buf.get(i) != Some(&b':') {
            return Err(ScanError {
                at: i,
                what: "expected a colon after a key",
            });
        }
        let vs = scan::skip_ws(buf, i + 1);
        let is_records = key == "Records";
        let is_events = key == "Events";
        let ve = match &mut sink {
            Some((st, out)) if (is_records || is_events) && buf.get(vs) == Some(&b'[') => {
                let mut it = ArrayElements::new(buf, vs);
                if is_records && !st.want_days && !st.trusted {
                    // Records of an AWS-named file are not all parsed (only
                    // those that may be kept): each is cut by the full
                    // structural scan, so a syntax error anywhere makes the
                    // file corrupt, as the parse of every record does under
                    // any other name.
                    it = it.validating();
                }
                while let Some(el) = it.next() {
                    let (s, e) = el?;
                    if let Some(bad) = it.take_invalid() {
                        out.records_read += 1;
                        st.note_bad(format!(
                            "record at byte {s}: invalid JSON at byte {}: {}",
                            bad.at, bad.what
                        ));
                        continue;
                    }
                    if !is_records {
                        st.element(buf, s, e, out);
                    } else if buf[s] == b'{' {
                        st.record(buf, s, e, out);
                    } else {
                        out.records_read += 1;
                        st.note_bad(format!(
                            "wrong shape: Records element at byte {s} is not an object"
                        ));
                    }
                }
                it.end()
            }
            _ => scan::skip_value(buf, vs)?,
        };
        match key.as_ref() {
            "Records" => records = Some(vs),
            "Events" => events = Some(vs),
            "digestStartTime" | "digestEndTime" | "logFiles" | "digestPublicKeyFingerprint" => {
                digest = true
            }
            "eventName" | "eventSource" | "eventID" | "eventVersion" | "CloudTrailEvent" => {
                single = true
            }
            _ => {}
        }
        if keys.len() < 5 {
            keys.push(key.into_owned());
        }
        i = scan::skip_ws(buf, ve);
        match buf.get(i) {
            Some(b',') => {
                i += 1;
                first = false;
            }
            Some(b'}') => break i + 1,
            Some(_) => {
                return Err(ScanError {
                    at: i,
                    what: "expected a comma or a closing brace",
                })
            }
            None => {
                return Err(ScanError {
                    at: i,
                    what: "unexpected end of input in an object",
                })
            }
        }
    };
    let kind = if let Some(vs) = records {
        TopObject::Records(vs)
    } else if let Some(vs) = events {
        TopObject::Events(vs)
    } else if digest {
        TopObject::Digest
    } else if single {
        TopObject::Single
    } else {
        TopObject::Other(keys)
    };
    Ok((kind, end))
}

fn decode_key(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .map(Cow::Owned)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned().into())
}

fn structural(e: &ScanError, kept: &FileScan) -> String {
    format!(
        "invalid JSON at byte {}: {}; {} records read and {} kept before it",
        e.at,
        e.what,
        kept.records_read,
        kept.rows.len()
    )
}

/// Decoded text of a file → records → rows.
fn scan_text(
    label: &str,
    buf: &[u8],
    opts: &ReadOptions,
    named: Option<&LogName>,
    shape: Shape,
    trusted: bool,
    out: &mut FileScan,
) {
    let mut st = FileState {
        label: label.to_string(),
        opts,
        want_days: named.is_none(),
        trusted,
        days: Vec::new(),
        first_bad: None,
        bad_records: 0,
        hits: FileHits::new(buf),
    };
    // A UTF-8 byte order mark is what some Windows tools write first.
    let mut i = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    i = scan::skip_ws(buf, i);
    let Some(&first) = buf.get(i) else {
        out.verdict = if named.is_some() || shape == Shape::Delivery {
            Verdict::Corrupt("empty file".into())
        } else {
            Verdict::Skipped("empty file".into())
        };
        return;
    };
    if shape == Shape::Delivery {
        delivery(buf, i, first, &mut st, out);
        finish_text(&st, out);
        out.log_days = st.days;
        return;
    }
    match first {
        b'{' => match walk_object(buf, i, Some((&mut st, &mut *out))) {
            Err(e) => {
                out.verdict = Verdict::Corrupt(structural(&e, out));
                return;
            }
            Ok((kind, end)) => {
                let single = matches!(kind, TopObject::Single);
                if !top_object(buf, i, end, kind, &mut st, out) {
                    return;
                }
                // More values after the first: NDJSON, or concatenated
                // files (`cat *.json`).
                let mut j = scan::skip_ws(buf, end);
                while j < buf.len() && out.verdict == Verdict::Read {
                    if single {
                        // One event a line: no need to look at its keys twice.
                        match scan::skip_value(buf, j) {
                            Ok(ve) if buf[j] == b'{' => {
                                st.element(buf, j, ve, out);
                                j = scan::skip_ws(buf, ve);
                            }
                            Ok(_) => {
                                out.verdict = Verdict::Corrupt(format!(
                                    "line at byte {j} is not a JSON object; {} records read before it",
                                    out.records_read
                                ));
                            }
                            Err(e) => out.verdict = Verdict::Corrupt(structural(&e, out)),
                        }
                    } else if buf[j] != b'{' {
                        out.verdict = Verdict::Corrupt(format!(
                            "unexpected data at byte {j} after a JSON object"
                        ));
                    } else {
                        match walk_object(buf, j, Some((&mut st, &mut *out))) {
                            Ok((kind, end)) => {
                                if !top_object(buf, j, end, kind, &mut st, out) {
                                    break;
                                }
                                j = scan::skip_ws(buf, end);
                            }
                            Err(e) => out.verdict = Verdict::Corrupt(structural(&e, out)),
                        }
                    }
                }
            }
        },
        b'[' => {
            // A JSON array of records (or of LookupEvents events). Decide
            // from the first element whether this is CloudTrail at all.
            let mut it = ArrayElements::new(buf, i);
            match it.next() {
                None => {
                    out.verdict = Verdict::Skipped("empty JSON array".into());
                    return;
                }
                Some(Err(e)) => {
                    out.verdict = Verdict::Corrupt(structural(&e, out));
                    return;
                }
                Some(Ok((s, _))) => {
                    if buf[s] != b'{' {
                        out.verdict =
                            Verdict::Skipped("not CloudTrail: a JSON array of non-objects".into());
                        return;
                    }
                    match walk_object(buf, s, None) {
                        Ok((TopObject::Single, _)) => {}
                        Ok((kind, _)) => {
                            out.verdict = not_cloudtrail(&kind, "first element");
                            return;
                        }
                        Err(e) => {
                            out.verdict = Verdict::Corrupt(structural(&e, out));
                            return;
                        }
                    }
                }
            }
            elements(buf, i, &mut st, out);
            if let Verdict::Read = out.verdict {
                let end = scan::skip_ws(buf, elements_end(buf, i));
                if end < buf.len() {
                    out.verdict = Verdict::Corrupt(format!(
                        "unexpected data at byte {end} after the JSON array"
                    ));
                }
            }
        }
        _ => {
            out.verdict = Verdict::Skipped(format!(
                "not CloudTrail: not JSON (starts with byte 0x{first:02x})"
            ));
            return;
        }
    }
    finish_text(&st, out);
    out.log_days = st.days;
}

/// Bad records make a file that otherwise read well corrupt.
fn finish_text(st: &FileState, out: &mut FileScan) {
    if let (Verdict::Read, Some(bad)) = (&out.verdict, &st.first_bad) {
        out.verdict = Verdict::Corrupt(if st.bad_records > 1 {
            format!(
                "{bad} (and {} more bad records); {} kept from the others",
                st.bad_records - 1,
                out.rows.len()
            )
        } else {
            format!("{bad}; {} rows kept from the other records", out.rows.len())
        });
    }
}

/// A file named as a CloudTrail delivery: one `{"Records":[...]}` object,
/// whole, or it is corrupt.
fn delivery(buf: &[u8], i: usize, first: u8, st: &mut FileState, out: &mut FileScan) {
    let not_delivery = |what: String| {
        Verdict::Corrupt(format!(
            "named as a CloudTrail delivery but {what}, not {{\"Records\":[...]}}"
        ))
    };
    if first != b'{' {
        out.verdict = not_delivery(if first == b'[' {
            "holds a JSON array".into()
        } else {
            format!("is not JSON (starts with byte 0x{first:02x})")
        });
        return;
    }
    let (kind, end) = match walk_object(buf, i, Some((&mut *st, &mut *out))) {
        Ok(r) => r,
        Err(e) => {
            out.verdict = Verdict::Corrupt(structural(&e, out));
            return;
        }
    };
    match kind {
        TopObject::Records(vs) if buf[vs] == b'[' => {}
        TopObject::Records(_) => {
            out.verdict = Verdict::Corrupt("wrong shape: \"Records\" is not an array".into());
            return;
        }
        TopObject::Other(keys) if keys.is_empty() => {
            out.verdict = not_delivery("holds an empty object".into());
            return;
        }
        TopObject::Other(keys) => {
            out.verdict = not_delivery(format!("holds an object with keys {}", keys.join(", ")));
            return;
        }
        TopObject::Digest => {
            out.verdict = not_delivery("holds a digest".into());
            return;
        }
        TopObject::Events(_) => {
            out.verdict = not_delivery("holds LookupEvents output".into());
            return;
        }
        TopObject::Single => {
            out.verdict = not_delivery("holds a single event".into());
            return;
        }
    }
    let j = scan::skip_ws(buf, end);
    if j < buf.len() {
        out.verdict = Verdict::Corrupt(format!(
            "unexpected data at byte {j} after the Records document; {} records read before it",
            out.records_read
        ));
    }
}

/// Handles one top-level object; false when the file is not CloudTrail.
fn top_object(
    buf: &[u8],
    start: usize,
    end: usize,
    kind: TopObject,
    st: &mut FileState,
    out: &mut FileScan,
) -> bool {
    match kind {
        // Their elements were handed over while walking the object.
        TopObject::Records(vs) | TopObject::Events(vs) => {
            if buf[vs] != b'[' {
                let key = if matches!(kind, TopObject::Records(_)) {
                    "Records"
                } else {
                    "Events"
                };
                out.verdict = Verdict::Corrupt(format!("wrong shape: \"{key}\" is not an array"));
            }
            true
        }
        TopObject::Single => {
            st.element(buf, start, end, out);
            true
        }
        TopObject::Digest | TopObject::Other(_) => {
            out.verdict = not_cloudtrail(&kind, "object");
            false
        }
    }
}

/// The end of a well-formed array (already scanned once, so cheap enough
/// to repeat only for the top-level trailing-data check).
fn elements_end(buf: &[u8], start: usize) -> usize {
    scan::skip_value(buf, start).unwrap_or(buf.len())
}

fn elements(buf: &[u8], start: usize, st: &mut FileState, out: &mut FileScan) {
    for el in ArrayElements::new(buf, start) {
        match el {
            Ok((s, e)) => st.element(buf, s, e, out),
            Err(e) => {
                out.verdict = Verdict::Corrupt(structural(&e, out));
                break;
            }
        }
    }
}

fn not_cloudtrail(kind: &TopObject, what: &str) -> Verdict {
    Verdict::Skipped(match kind {
        TopObject::Digest => "CloudTrail digest file, not an event log".into(),
        TopObject::Other(keys) if keys.is_empty() => format!("not CloudTrail: the {what} is an empty object"),
        TopObject::Other(keys) => format!(
            "not CloudTrail: the {what} has keys {} but no Records, Events, eventName or eventSource",
            keys.join(", ")
        ),
        _ => format!("not CloudTrail: the {what} is not an event"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    fn rec(name: &str, extra: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventID":"id-{name}","eventTime":"2025-01-02T03:04:05Z","eventSource":"kms.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"111122223333","requestParameters":{{"keyId":"k1"}}{extra}}}"#
        )
    }

    #[test]
    fn records_wrapper_keeps_listed_names_and_failures() {
        let text = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            rec("EnableKeyRotation", ""),
            rec("Decrypt", ""),
            rec("Decrypt", r#","errorCode":"AccessDenied""#)
        );
        let s = scan_bytes("x.json", text.as_bytes(), &opts());
        assert_eq!(s.verdict, Verdict::Read);
        assert_eq!(s.records_read, 3);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(
            s.rows[0].key_arn.as_deref(),
            Some("arn:aws:kms:us-east-1:111122223333:key/k1")
        );
        assert_eq!(s.rows[1].error_code.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn nested_error_code_is_not_a_failure() {
        let r = rec("Decrypt", "").replace(r#""keyId":"k1""#, r#""keyId":"k1","errorCode":"Nope""#);
        let s = scan_bytes("x.json", r.as_bytes(), &opts());
        assert_eq!(s.verdict, Verdict::Read);
        assert_eq!(s.records_read, 1);
        assert!(s.rows.is_empty());
    }

    #[test]
    fn unicode_escapes_do_not_hide_kept_records() {
        // "eventSource":"kms\u002eamazonaws.com", "eventName":"\u0052otateKey"
        let r = rec("RotateKey", "")
            .replace("kms.amazonaws.com", r"kms\u002eamazonaws\u002ecom")
            .replace(
                r#""eventName":"RotateKey""#,
                r#""event\u004eame":"\u0052otateKey""#,
            );
        let s = scan_bytes("x.json", r.as_bytes(), &opts());
        assert_eq!(s.rows.len(), 1, "{:?}", s.verdict);
        assert_eq!(s.rows[0].event_name.as_deref(), Some("RotateKey"));
        let e = rec("Decrypt", "").replace(
            r#""requestParameters""#,
            r#""error\u0043ode":"X","requestParameters""#,
        );
        assert_eq!(scan_bytes("x.json", e.as_bytes(), &opts()).rows.len(), 1);
    }

    #[test]
    fn ndjson_arrays_and_lookup_events_read() {
        let nd = format!("{}\n{}\n", rec("CreateKey", ""), rec("Encrypt", ""));
        let s = scan_bytes("a.ndjson", nd.as_bytes(), &opts());
        assert_eq!((s.records_read, s.rows.len()), (2, 1));
        let arr = format!("[{}, {}]", rec("CreateKey", ""), rec("DisableKey", ""));
        let s = scan_bytes("a.json", arr.as_bytes(), &opts());
        assert_eq!((s.records_read, s.rows.len()), (2, 2));
        let inner = serde_json::to_string(&rec("RotateKeyOnDemand", "")).unwrap();
        let lookup = format!(
            r#"{{"Events":[{{"EventId":"x","CloudTrailEvent":{inner}}}],"NextToken":"t"}}"#
        );
        let s = scan_bytes("l.json", lookup.as_bytes(), &opts());
        assert_eq!(s.rows.len(), 1, "{:?}", s.verdict);
        assert_eq!(s.rows[0].rotation_type.as_deref(), Some("ON_DEMAND"));
        let lines = format!("{{\"EventId\":\"x\",\"CloudTrailEvent\":{inner}}}\n");
        assert_eq!(
            scan_bytes("l.jsonl", lines.as_bytes(), &opts()).rows.len(),
            1
        );
    }

    #[test]
    fn non_cloudtrail_and_digests_are_skipped() {
        for (label, text) in [
            ("a.json", r#"{"name":"x"}"#),
            ("a.json", r#"[{"a":1}]"#),
            (
                "a.json",
                r#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[]}"#,
            ),
            ("a.txt", "hello"),
            ("AWSLogs/1/CloudTrail-Digest/us-east-1/x.json.gz", "{}"),
        ] {
            let s = scan_bytes(label, text.as_bytes(), &opts());
            assert!(
                matches!(s.verdict, Verdict::Skipped(_)),
                "{text}: {:?}",
                s.verdict
            );
        }
    }

    #[test]
    fn damage_keeps_earlier_rows() {
        let text = format!(
            r#"{{"Records":[{},{}"#,
            rec("CreateKey", ""),
            rec("DisableKey", "")
        );
        let s = scan_bytes("x.json", text.as_bytes(), &opts());
        let Verdict::Corrupt(reason) = &s.verdict else {
            panic!("{:?}", s.verdict)
        };
        assert!(reason.contains("invalid JSON"), "{reason}");
        let bad = format!(
            r#"{{"Records":[{},{}]}}"#,
            rec("CreateKey", ""),
            rec("DisableKey", ",,")
        );
        let s = scan_bytes("x.json", bad.as_bytes(), &opts());
        assert!(matches!(s.verdict, Verdict::Corrupt(_)));
    }

    const DELIVERY: &str =
        "AWSLogs/111122223333/CloudTrail/us-east-1/2025/01/02/111122223333_CloudTrail_us-east-1_20250102T0305Z_abcd.json";

    #[test]
    fn a_delivery_name_demands_a_whole_records_document() {
        let good = format!(r#"{{"Records":[{}]}}"#, rec("RotateKey", ""));
        assert_eq!(
            scan_bytes(DELIVERY, good.as_bytes(), &opts()).verdict,
            Verdict::Read
        );
        for text in [
            "garbage",
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>",
            "{}",
            r#"{"name":"x"}"#,
            "[]",
            r#"{"Events":[]}"#,
            "",
            &format!("{}\n{}", rec("RotateKey", ""), rec("RotateKey", "")),
            &format!("{good}{good}"),
            &format!("{good} x"),
        ] {
            for label in [DELIVERY.to_string(), format!("{DELIVERY}.gz")] {
                let s = scan_bytes(&label, text.as_bytes(), &opts());
                assert!(
                    matches!(s.verdict, Verdict::Corrupt(_)),
                    "{label}: {text:?}: {:?}",
                    s.verdict
                );
            }
        }
        // Other names keep the reader's other shapes, and skip other JSON.
        assert!(matches!(
            scan_bytes("notes.json", b"{}", &opts()).verdict,
            Verdict::Skipped(_)
        ));
    }

    #[test]
    fn a_syntax_error_in_a_record_that_is_not_kept_is_corrupt_under_any_name() {
        // Decrypt is not kept, so its bytes are not parsed; they are checked.
        let bad = rec("Decrypt", "").replace(r#""awsRegion":"#, r#""awsRegion" "#);
        let text = format!(r#"{{"Records":[{},{bad}]}}"#, rec("RotateKey", ""));
        for label in [DELIVERY, "copy.json"] {
            let s = scan_bytes(label, text.as_bytes(), &opts());
            let Verdict::Corrupt(reason) = &s.verdict else {
                panic!("{label}: {:?}", s.verdict)
            };
            assert!(reason.contains("invalid JSON"), "{label}: {reason}");
            assert_eq!(s.rows.len(), 1, "the good record is still kept");
        }
        let mismatched = rec("Decrypt", "").replace(r#"{"keyId":"k1"}"#, r#"{"keyId":["k1"}]"#);
        let text = format!(r#"{{"Records":[{mismatched}]}}"#);
        assert!(matches!(
            scan_bytes(DELIVERY, text.as_bytes(), &opts()).verdict,
            Verdict::Corrupt(_)
        ));
    }

    #[test]
    fn validation_hashes_the_inflated_bytes_and_trusts_only_a_matching_file() {
        let good = format!(r#"{{"Records":[{}]}}"#, rec("RotateKey", ""));
        let validating = ReadOptions {
            validate: true,
            ..opts()
        };
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, good.as_bytes()).unwrap();
        let zipped = e.finish().unwrap();
        let want: [u8; 32] = Sha256::digest(good.as_bytes()).into();
        let s = scan_bytes(&format!("{DELIVERY}.gz"), &zipped, &validating);
        assert_eq!(
            s.sha256,
            Some(want),
            "the hash is of the uncompressed content"
        );
        assert_eq!(scan_bytes(DELIVERY, good.as_bytes(), &opts()).sha256, None);

        // A record the filter skips with a syntax error in it: the full
        // structural check finds it, unless the file is the one a verified
        // digest lists (then it is CloudTrail's own, well-formed output).
        let bad = rec("Decrypt", "").replace(r#""awsRegion":"#, r#""awsRegion" "#);
        let text = format!(r#"{{"Records":[{},{bad}]}}"#, rec("RotateKey", ""));
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let checked = scan_bytes_expecting(DELIVERY, text.as_bytes(), &validating, &mut None, None);
        assert!(matches!(checked.verdict, Verdict::Corrupt(_)));
        let other = scan_bytes_expecting(
            DELIVERY,
            text.as_bytes(),
            &validating,
            &mut None,
            Some(&want),
        );
        assert!(
            matches!(other.verdict, Verdict::Corrupt(_)),
            "another file's hash trusts nothing"
        );
        let trusted = scan_bytes_expecting(
            DELIVERY,
            text.as_bytes(),
            &validating,
            &mut None,
            Some(&hash),
        );
        assert_eq!(trusted.verdict, Verdict::Read);
        assert_eq!(trusted.rows, checked.rows);
    }

    #[test]
    fn insight_files_and_records_do_not_make_a_day() {
        let insight = r#"{"Records":[{"eventVersion":"1.07","eventTime":"2025-01-02T03:00:00Z","awsRegion":"us-east-1","eventID":"i1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s","insightDetails":{"state":"Start"},"eventCategory":"Insight"}]}"#;
        for label in [
            "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2025/01/02/111122223333_CloudTrail-Insight_us-east-1_20250102T0305Z_x.json.gz",
            "111122223333_CloudTrail-Insight_us-east-1_20250102T0305Z_x.json",
        ] {
            let s = scan_bytes(label, insight.as_bytes(), &opts());
            assert!(matches!(s.verdict, Verdict::Skipped(_)), "{label}");
            assert!(s.log_days.is_empty());
        }
        // Renamed, the records themselves still do not count.
        let s = scan_bytes("renamed.json", insight.as_bytes(), &opts());
        assert_eq!(s.verdict, Verdict::Read);
        assert!(s.log_days.is_empty(), "{:?}", s.log_days);
    }

    #[test]
    fn bad_times_are_bad_records_never_rows_or_days() {
        let spaced = rec("RotateKey", "").replace("2025-01-02T03:04:05Z", "2025-01-02 03:04:05Z");
        let zoneless =
            rec("EnableKeyRotation", "").replace("2025-01-02T03:04:05Z", "2025-01-02T03:04:05");
        let offset = rec("DisableKeyRotation", "")
            .replace("2025-01-02T03:04:05Z", "2025-01-02T00:30:00+01:00")
            .replace("id-DisableKeyRotation", "id-offset");
        let text = format!(r#"{{"Records":[{spaced},{zoneless},{offset}]}}"#);
        for label in ["plain.json", DELIVERY] {
            let s = scan_bytes(label, text.as_bytes(), &opts());
            assert_eq!(s.bad_times, 2, "{label}");
            let Verdict::Corrupt(reason) = &s.verdict else {
                panic!("{label}: {:?}", s.verdict)
            };
            assert!(
                reason.contains("eventTime `2025-01-02 03:04:05Z`"),
                "{reason}"
            );
            assert_eq!(s.rows.len(), 1);
            assert_eq!(
                s.rows[0].event_time.unwrap().to_rfc3339(),
                "2025-01-01T23:30:00+00:00"
            );
        }
        // Not AWS-named: the days come from records, and only parsed ones.
        let s = scan_bytes("plain.json", text.as_bytes(), &opts());
        assert_eq!(
            s.log_days,
            vec![(
                "111122223333".to_string(),
                "us-east-1".to_string(),
                NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
            )]
        );
        // A record not kept, with a bad time, cannot place a day either.
        let decrypt = rec("Decrypt", "").replace("2025-01-02T03:04:05Z", "2025-01-02 03:04:05");
        let s = scan_bytes("plain.json", decrypt.as_bytes(), &opts());
        assert_eq!((s.bad_times, s.log_days.len()), (1, 0));
        assert!(parse_record(&spaced, "l", &opts()).is_err());
    }

    #[test]
    fn a_file_over_the_limit_is_corrupt_and_not_read() {
        let text = format!(r#"{{"Records":[{}]}}"#, rec("RotateKey", ""));
        let small = ReadOptions {
            max_log_bytes: 100,
            ..opts()
        };
        let s = scan_bytes("x.json", text.as_bytes(), &small);
        let Verdict::Corrupt(reason) = &s.verdict else {
            panic!("{:?}", s.verdict)
        };
        assert!(reason.contains("--max-log-bytes (100)"), "{reason}");
        assert_eq!(s.records_read, 0);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
        let zipped = e.finish().unwrap();
        let s = scan_bytes("x.json.gz", &zipped, &small);
        assert!(
            matches!(s.verdict, Verdict::Corrupt(ref r) if r.contains("gzip member 1 inflates"))
        );
    }

    #[test]
    fn hostile_needle_floods_are_read_in_one_pass() {
        // Many needles outside any kept record: the answer is unchanged.
        let noise = format!(
            r#"{{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2025-01-02T03:04:05Z","userAgent":"{}"}}"#,
            r#"errorCode kms.amazonaws.com \u0041 \"eventName\": \"RotateKey\" "#.repeat(2000)
        );
        let text = format!(
            r#"{{"Records":[{noise},{},{noise}]}}"#,
            rec("RotateKey", "")
        );
        let s = scan_bytes("x.json", text.as_bytes(), &opts());
        assert_eq!(s.verdict, Verdict::Read);
        assert_eq!((s.records_read, s.rows.len()), (3, 1));
    }

    #[test]
    fn aws_names_give_the_delivery_day() {
        let n = aws_log_name("a/b/111122223333_CloudTrail_eu-west-1_20250102T0305Z_abcd.json.gz")
            .unwrap();
        assert_eq!(n.region, "eu-west-1");
        assert_eq!(n.day, NaiveDate::from_ymd_opt(2025, 1, 2).unwrap());
        assert!(aws_log_name("foo.json").is_none());
    }

    #[test]
    fn parse_record_distinguishes_filtered_from_invalid() {
        assert!(parse_record(&rec("Decrypt", ""), "l", &opts())
            .unwrap()
            .is_none());
        assert!(parse_record(&rec("RotateKey", ""), "l", &opts())
            .unwrap()
            .is_some());
        assert!(parse_record("{", "l", &opts()).is_err());
        assert!(parse_record(r#"{"a":1}"#, "l", &opts()).is_err());
    }
}
