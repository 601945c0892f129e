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
use std::sync::OnceLock;

use chrono::NaiveDate;
use memchr::memmem;
use serde::Deserialize;

use super::gz;
use super::record::{day_of, Record};
use super::scan::{self, ArrayElements, ScanError};
use super::{EventRow, Scope, Window};

/// The KMS event names kept by default, one per line in
/// `queries/trail_events.txt`, where users can read and extend them.
pub const DEFAULT_EVENTS_FILE: &str = include_str!("../../queries/trail_events.txt");

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
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Keep every KMS event, not just the listed names and failures.
    pub include_data_events: bool,
    pub window: Window,
    pub scope: Scope,
    /// Event names kept in addition to `queries/trail_events.txt`
    /// (`--events-file`).
    pub extra_events: Vec<String>,
}

impl ReadOptions {
    fn keeps_name(&self, name: &str) -> bool {
        default_events().iter().any(|n| n == name) || self.extra_events.iter().any(|n| n == name)
    }

    fn keeps_name_bytes(&self, name: &[u8]) -> bool {
        default_events().iter().any(|n| n.as_bytes() == name)
            || self.extra_events.iter().any(|n| n.as_bytes() == name)
    }
}

/// How a file was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Read,
    /// Not CloudTrail (a digest file, some other JSON); not a gap.
    Skipped(String),
    /// Damaged: truncated gzip, invalid JSON, wrong shape. Rows read before
    /// the damage are still in [`FileScan::rows`]; the reason says how many.
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
    /// Kept rows, `source` set to the label.
    pub rows: Vec<EventRow>,
    /// (account, region, day) this file is a log for: the delivery day from
    /// an AWS-named file, else the days of its records. Within the scope.
    pub log_days: Vec<(String, String, NaiveDate)>,
}

thread_local! {
    /// Inflated text, reused across files on a thread: one allocation per
    /// worker instead of one per file keeps RSS flat and avoids page faults.
    static INFLATED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads one file's bytes, whatever its shape. Never panics on input.
pub fn scan_bytes(label: &str, data: &[u8], opts: &ReadOptions) -> FileScan {
    let mut out = FileScan {
        verdict: Verdict::Read,
        bytes: data.len() as u64,
        records_read: 0,
        rows: Vec::new(),
        log_days: Vec::new(),
    };
    if is_digest_path(label) {
        out.verdict = Verdict::Skipped(
            "CloudTrail digest file (CloudTrail-Digest/), not an event log".into(),
        );
        return out;
    }
    let named = aws_log_name(label);
    if gz::is_gzip(data) {
        INFLATED.with(|cell| {
            // A re-entrant call (not expected) falls back to a fresh buffer.
            let mut fresh = Vec::new();
            let mut guard = cell.try_borrow_mut();
            let buf = match guard.as_deref_mut() {
                Ok(b) => b,
                Err(_) => &mut fresh,
            };
            let inflated = gz::inflate(data, buf);
            scan_text(label, buf, opts, named.as_ref(), &mut out);
            if let Err(e) = inflated {
                out.verdict = Verdict::Corrupt(match &out.verdict {
                    Verdict::Read | Verdict::Skipped(_) => {
                        format!("{}; {} records read before it", e.reason, out.records_read)
                    }
                    Verdict::Corrupt(inner) => format!("{}; the recovered text: {inner}", e.reason),
                });
            }
            // Large one-off files should not pin their buffer for the rest
            // of the run.
            if buf.capacity() > 256 << 20 {
                *buf = Vec::new();
            }
        });
    } else {
        scan_text(label, data, opts, named.as_ref(), &mut out);
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
    Ok(keep(&rec, label, opts))
}

/// The filter on a parsed record: KMS, listed name or failure (or all KMS
/// with data events), inside the window and scope.
fn keep(rec: &Record, label: &str, opts: &ReadOptions) -> Option<EventRow> {
    if rec.event_source.as_deref() != Some("kms.amazonaws.com") {
        return None;
    }
    let wanted = opts.include_data_events
        || rec.error_code.as_deref().is_some_and(|c| !c.is_empty())
        || rec
            .event_name
            .as_deref()
            .is_some_and(|n| opts.keeps_name(n));
    if !wanted {
        return None;
    }
    if !in_scope(rec, &opts.scope) {
        return None;
    }
    let time = rec.time();
    if opts.window.since.is_some() || opts.window.until.is_some() {
        // A record that cannot be placed in time cannot be shown to be
        // inside the window asked for.
        if !time.is_some_and(|t| opts.window.contains(t)) {
            return None;
        }
    }
    Some(rec.to_row(time, label))
}

fn in_scope(rec: &Record, scope: &Scope) -> bool {
    (scope.regions.is_empty()
        || rec
            .aws_region
            .as_deref()
            .is_some_and(|r| scope.wants_region(r)))
        && (scope.accounts.is_empty() || rec.account().is_some_and(|a| scope.wants_account(a)))
}

/// `.../CloudTrail-Digest/...` objects are signed hashes of log files.
fn is_digest_path(label: &str) -> bool {
    label.contains("CloudTrail-Digest/")
        || label.contains("CloudTrail-Digest\\")
        || base_name(label).contains("_CloudTrail-Digest_")
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
    Some(LogName {
        account: account.into(),
        region: region.into(),
        day,
    })
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

/// Sorted offsets of one needle in a whole buffer, walked forward as the
/// records go by: one `memmem` pass per file instead of one per record.
struct Hits {
    at: Vec<usize>,
    next: usize,
    len: usize,
}

impl Hits {
    fn new(finder: &memmem::Finder<'_>, buf: &[u8]) -> Self {
        Hits {
            at: finder.find_iter(buf).collect(),
            next: 0,
            len: finder.needle().len(),
        }
    }

    /// The hits wholly inside `[s, e)`. Calls come with increasing `s`.
    fn within(&mut self, s: usize, e: usize) -> &[usize] {
        while self.next < self.at.len() && self.at[self.next] < s {
            self.next += 1;
        }
        let from = self.next;
        let mut to = from;
        while to < self.at.len() && self.at[to] + self.len <= e {
            to += 1;
        }
        &self.at[from..to]
    }
}

/// The needles found in a whole file's text.
struct FileHits {
    unicode_escape: Hits,
    kms: Hits,
    error_code: Hits,
    event_name: Hits,
}

impl FileHits {
    fn new(buf: &[u8]) -> Self {
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
        if !self.unicode_escape.within(s, e).is_empty() {
            return true;
        }
        if self.kms.within(s, e).is_empty() {
            return false;
        }
        if opts.include_data_events || !self.error_code.within(s, e).is_empty() {
            return true;
        }
        let rec = &buf[..e];
        self.event_name
            .within(s, e)
            .iter()
            .any(|&at| names_kept_event(rec, at, opts))
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
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<MetaIdentity<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaIdentity<'a> {
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
}

/// A LookupEvents element: the record is a JSON string inside it.
#[derive(Deserialize)]
struct LookupEvent<'a> {
    #[serde(borrow, rename = "CloudTrailEvent")]
    cloudtrail_event: Option<Cow<'a, str>>,
}

/// Per-file state while its records go by.
struct FileState<'o> {
    label: String,
    opts: &'o ReadOptions,
    /// Collect days from records (the file is not AWS-named).
    want_days: bool,
    days: Vec<(String, String, NaiveDate)>,
    /// First record-level problem; later records are still read.
    first_bad: Option<String>,
    bad_records: u64,
    /// Needle offsets in the file's text, for records given by offset.
    hits: FileHits,
}

impl FileState<'_> {
    fn note_bad(&mut self, what: String) {
        self.bad_records += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some(what);
        }
    }

    fn note_day(&mut self, account: Option<&str>, region: Option<&str>, time: Option<&str>) {
        let (Some(a), Some(r), Some(d)) = (account, region, time.and_then(day_of)) else {
            return;
        };
        if !self.opts.scope.wants_account(a) || !self.opts.scope.wants_region(r) {
            return;
        }
        if !self
            .days
            .iter()
            .any(|(x, y, z)| *z == d && x == a && y == r)
        {
            self.days.push((a.to_string(), r.to_string(), d));
        }
    }

    /// One CloudTrail record's bytes.
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
                    if self.want_days {
                        self.note_day(
                            rec.account(),
                            rec.aws_region.as_deref(),
                            rec.event_time.as_deref().or(rec.at_timestamp.as_deref()),
                        );
                    }
                    if let Some(row) = keep(&rec, &self.label, self.opts) {
                        out.rows.push(row);
                    }
                }
                Err(e) => self.note_bad(format!("record at byte {at}: invalid JSON: {e}")),
            }
        } else if self.want_days {
            match serde_json::from_slice::<Meta>(bytes) {
                Ok(m) => {
                    let account = m.recipient_account_id.as_deref().or(m
                        .user_identity
                        .as_ref()
                        .and_then(|u| u.account_id.as_deref()));
                    self.note_day(
                        account,
                        m.aws_region.as_deref(),
                        m.event_time.as_deref().or(m.at_timestamp.as_deref()),
                    );
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
                for el in it.by_ref() {
                    let (s, e) = el?;
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
    out: &mut FileScan,
) {
    let mut st = FileState {
        label: label.to_string(),
        opts,
        want_days: named.is_none(),
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
        out.verdict = if named.is_some() {
            Verdict::Corrupt("empty file".into())
        } else {
            Verdict::Skipped("empty file".into())
        };
        return;
    };
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
    out.log_days = st.days;
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
