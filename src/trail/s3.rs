//! `s3://bucket/prefix`: a trail's S3 archive, read in place.
//!
//! CloudTrail delivers to
//! `PREFIX/AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz`.
//! The key layout is the index: accounts, regions and days are pruned by
//! listing with a delimiter, so only the day folders inside the window are
//! ever listed, and only their objects fetched. A folder's day is the
//! delivery day, not the day of its events: CloudTrail delivers within
//! minutes as a rule but can be hours late, so the listing starts a day
//! before `--since` and runs `--late-delivery-days` (default 2) past
//! `--until`; coverage `limits` says that later deliveries are not read.
//! Digest (`CloudTrail-Digest/`) and Insights (`CloudTrail-Insight/`) folders
//! hold no events: never listed.
//!
//! The walk is two steps, kept apart so another listing can reuse them (the
//! digest files of log file validation sit in the same layout):
//! [`walk_layout`] finds the day folders of one service folder in scope,
//! then [`list_day`] lists each day's objects, which are fetched and parsed.
//!
//! Objects are fetched concurrently and parsed on the blocking pool as they
//! arrive, so memory holds at most a bounded number of objects (and bytes),
//! never the archive.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::digest::{self, DigestName, PublicKey, DIGEST_FOLDER};
use super::gz;
use super::integrity::{
    self, DigestFetch, DigestInput, FetchedDigest, LogInput, Outcome, PublicKeys,
};
use super::local::add_scan;
use super::public_keys::{self, KeySource};
use super::reader::{self, FileScan, ReadOptions};
use super::{Collector, FileIssue, Window};
use crate::aws::{self, ErrorInfo};
use crate::error::hinted;
use crate::frames::time::rfc3339;
use crate::progress::Progress;

/// Objects in flight (fetched or being parsed) at once. Each holds one
/// delivery file in memory; CloudTrail files are a few MB at most.
const FETCH_CONCURRENCY: usize = 16;
/// Bytes of object bodies held at once, in MiB, whatever their number:
/// sixteen hostile objects of `--max-log-bytes` each must not all be in
/// memory together.
const BODY_BUDGET_MIB: u32 = 256;
/// The service folder of event logs, under each account. Digest files sit
/// in `CloudTrail-Digest/` with the same layout below it, so the walk takes
/// the folder to look for.
pub const EVENTS_FOLDER: &str = "CloudTrail";
/// Prefixes listed at once while walking the layout.
const LIST_CONCURRENCY: usize = 16;
/// Day folders whose listings are read ahead of the fetches.
const DAY_LOOKAHEAD: usize = 4;

/// The part of the layout a prefix points at, one folder level after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Right under `AWSLogs/`: an account, or an organization (`o-...`).
    Top,
    /// Under `AWSLogs/o-ORGID/`: an account.
    OrgAccount,
    /// Under `ACCOUNT/`: the literal `CloudTrail` (not `CloudTrail-Digest`).
    Service,
    Region,
    Year,
    Month,
    Day,
}

/// An `s3://bucket/prefix` URL, split at the `AWSLogs/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUrl {
    pub bucket: String,
    /// The key prefix up to and including `AWSLogs/`.
    pub base: String,
    /// Folder names the user gave below `AWSLogs/` (account, region, ...).
    pub fixed: Vec<String>,
}

/// Parses `s3://bucket[/prefix]`. The prefix may stop above `AWSLogs/` (the
/// trail's S3 key prefix) or point inside the layout
/// (`AWSLogs/111122223333/CloudTrail/us-east-1`).
pub fn parse_url(url: &str) -> Result<ArchiveUrl> {
    let usage = |problem: &str| {
        hinted(
            format!("{url}: {problem}"),
            "give the trail's bucket and key prefix, as in s3://my-trail-bucket or s3://my-trail-bucket/prefix",
        )
    };
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(usage("not an s3:// URL"));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(usage("no bucket name"));
    }
    if !bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
    {
        return Err(usage("not a valid bucket name"));
    }
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let (base, fixed) = match segments.iter().position(|s| *s == "AWSLogs") {
        Some(i) => (
            format!("{}/", segments[..=i].join("/")),
            segments[i + 1..].iter().map(|s| s.to_string()).collect(),
        ),
        None if segments.is_empty() => ("AWSLogs/".to_string(), Vec::new()),
        None => (format!("{}/AWSLogs/", segments.join("/")), Vec::new()),
    };
    let archive = ArchiveUrl {
        bucket: bucket.to_string(),
        base,
        fixed,
    };
    archive.check_fixed().map_err(|p| usage(&p))?;
    Ok(archive)
}

impl ArchiveUrl {
    /// The levels the user's fixed folders stand for, so a URL that points
    /// at a digest folder or past the day level is refused up front.
    fn check_fixed(&self) -> std::result::Result<(), String> {
        let mut level = Level::Top;
        for seg in &self.fixed {
            level = match level {
                Level::Top if seg.starts_with("o-") => Level::OrgAccount,
                Level::Top | Level::OrgAccount => Level::Service,
                Level::Service if seg == EVENTS_FOLDER => Level::Region,
                Level::Service => {
                    return Err(format!(
                        "`{seg}` is not an event folder; kmsrot reads AWSLogs/ACCOUNT/CloudTrail/ (digest and insight files are not rotation evidence)"
                    ))
                }
                Level::Region => Level::Year,
                Level::Year | Level::Month | Level::Day => {
                    return Err(
                        "the prefix goes below the region folder; give the region folder and use --since/--until for the days"
                            .into(),
                    )
                }
            };
        }
        Ok(())
    }
}

/// A folder reached while walking the layout.
#[derive(Debug, Clone)]
struct Node {
    prefix: String,
    level: Level,
    /// How many of the user's fixed folders are consumed.
    fixed_used: usize,
    account: Option<String>,
    region: Option<String>,
    year: Option<i32>,
    month: Option<u32>,
}

/// A day folder to list: all objects under it belong to one account, region
/// and delivery day.
#[derive(Debug, Clone)]
struct DayFolder {
    prefix: String,
    account: String,
    region: String,
    day: NaiveDate,
}

/// Delivery days worth listing: from the day before the window (clock
/// skew between the logging host and the day folder) to `late` days after it.
#[derive(Debug, Clone, Copy)]
pub struct DayRange {
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

impl DayRange {
    pub fn from_window(w: &Window, late: u32) -> Self {
        DayRange {
            first: w
                .since
                .and_then(|t| t.date_naive().checked_sub_signed(Duration::days(1))),
            last: w.until.and_then(|t| {
                t.date_naive()
                    .checked_add_signed(Duration::days(i64::from(late)))
            }),
        }
    }

    /// The first delivery day listed; None when the window has no start.
    pub fn first(&self) -> Option<NaiveDate> {
        self.first
    }

    /// The last delivery day listed; None when the window has no end.
    pub fn last(&self) -> Option<NaiveDate> {
        self.last
    }

    fn overlaps(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.first.is_none_or(|f| to >= f) && self.last.is_none_or(|l| from <= l)
    }

    fn year(&self, y: i32) -> bool {
        match (
            NaiveDate::from_ymd_opt(y, 1, 1),
            NaiveDate::from_ymd_opt(y, 12, 31),
        ) {
            (Some(a), Some(b)) => self.overlaps(a, b),
            _ => false,
        }
    }

    fn month(&self, y: i32, m: u32) -> bool {
        let Some(a) = NaiveDate::from_ymd_opt(y, m, 1) else {
            return false;
        };
        let next = if m == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, m + 1, 1)
        };
        match next.and_then(|n| n.pred_opt()) {
            Some(b) => self.overlaps(a, b),
            None => false,
        }
    }

    fn day(&self, d: NaiveDate) -> bool {
        self.overlaps(d, d)
    }
}

/// One object listed in a day folder.
#[derive(Debug, Clone)]
struct ObjectRef {
    key: String,
    /// Size as listed.
    size: u64,
    account: String,
    region: String,
    day: NaiveDate,
}

/// What listing a day folder yields, in order.
enum Listed {
    Object(ObjectRef),
    /// A digest file (a digest walk only).
    Digest(ObjectRef, DigestName),
    Skipped(FileIssue),
    /// A failed listing: the prefix and the message.
    Error(String, String),
}

/// What happened to one listed item once processed.
enum Done {
    Scanned(ObjectRef, FileScan),
    /// The GET failed; `gone` when S3 said NoSuchKey.
    FetchFailed(ObjectRef, String, bool),
    Digest(Box<DigestInput>),
    Skipped(FileIssue),
    Error(String, String),
}

/// What the reader may trust while the scan goes on: the keys, and the
/// SHA-256 that signature-verified digests list per log file key.
struct Trust<'a> {
    keys: Option<&'a PublicKeys>,
    expected: Mutex<HashMap<String, [u8; 32]>>,
}

/// Validation's part of a scan: where the keys come from.
#[derive(Debug, Clone)]
pub struct ValidateWith {
    pub keys: KeySource,
}

/// Reads the archive at `url` into `collector` as one source; with
/// `validate`, also the digest files of the same days, checked as AWS
/// documents (see [`super::integrity`]).
///
/// Only a malformed URL or a bucket that does not exist is an error;
/// listing and fetch failures are recorded in the source's coverage and the
/// scan goes on.
pub async fn scan(
    config: &SdkConfig,
    url: &str,
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
    validate: Option<&ValidateWith>,
) -> Result<()> {
    let archive = parse_url(url)?;
    let client = match bucket_region(config, &archive.bucket).await {
        Ok(region) => aws::s3(config, &region),
        Err(Locate::NoSuchBucket) => {
            return Err(hinted(
                format!("{url}: the bucket {} does not exist", archive.bucket),
                "the trail's bucket is in `aws cloudtrail describe-trails --query 'trailList[].[Name,S3BucketName,S3KeyPrefix]'`",
            ))
        }
        Err(Locate::Unknown(e)) => {
            let fallback = config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".to_string());
            tracing::warn!(
                "s3://{}: region unknown ({e}); using {fallback}",
                archive.bucket
            );
            aws::s3(config, &fallback)
        }
    };
    let idx = collector.begin_source(url, "s3");

    let range = DayRange::from_window(&opts.window, opts.late_delivery_days);
    if let (Some(until), Some(last)) = (opts.window.until, range.last) {
        collector.source_mut(idx).limits.push(format!(
            "day folders are listed up to {last}, {} day(s) after --until {}: events delivered later than that (a late delivery or a backfill) are not read; raise --late-delivery-days to read them",
            opts.late_delivery_days,
            until.date_naive()
        ));
    }
    // A digest lists the files delivered in the hour before it, so the
    // digests of one more day are read: the last day's late files are
    // listed by digests of the day after.
    let digest_range = DayRange {
        first: range.first,
        last: range.last.and_then(|l| l.succ_opt()),
    };
    let (walk, digest_walk) = if validate.is_some() {
        let (w, d) = futures::join!(
            walk_layout(&client, &archive, opts, range, EVENTS_FOLDER),
            walk_layout(&client, &archive, opts, digest_range, DIGEST_FOLDER)
        );
        (w, Some(d))
    } else {
        (
            walk_layout(&client, &archive, opts, range, EVENTS_FOLDER).await,
            None,
        )
    };
    let mut failed_prefixes = walk.failed.clone();
    for e in walk.errors {
        collector.source_mut(idx).errors.push(e);
    }
    if let Some(d) = &digest_walk {
        failed_prefixes.extend(d.failed.iter().cloned());
        for e in &d.errors {
            collector.source_mut(idx).errors.push(e.clone());
        }
    }
    if walk.days.is_empty() && walk.scopes.is_empty() && collector.source_mut(idx).errors.is_empty()
    {
        collector.source_mut(idx).errors.push(format!(
            "no CloudTrail event folders under s3://{}/{}",
            archive.bucket, archive.base
        ));
    }
    // Every account and region found (or asked for) gets a day ledger, so
    // one with no file in the window shows every day as missing.
    for (account, region) in &walk.scopes {
        collector.note_scope(account, region);
    }
    // A region with digests and no log file at all is a region the trail
    // covers: quiet when the digests verify, missing when they do not.
    for (account, region) in digest_walk.iter().flat_map(|d| d.scopes.iter()) {
        collector.note_scope(account, region);
    }

    // The public keys come first (one ListPublicKeys per region): each
    // digest is verified as it arrives, so a log file that hashes to what a
    // verified digest lists is parsed without the structural check.
    let key_regions: BTreeSet<String> = digest_walk
        .iter()
        .flat_map(|d| d.scopes.iter().map(|(_, r)| r.clone()))
        .collect();
    let keys = match (validate, &digest_walk) {
        (Some(v), Some(d)) => {
            Some(load_keys(config, &v.keys, &key_regions, key_span(&digest_range, d)).await)
        }
        _ => None,
    };
    let trust = Trust {
        keys: keys.as_ref().map(|(k, _)| k),
        expected: Mutex::new(HashMap::new()),
    };

    let bar = progress.bar("s3 objects", 0);
    let cpu = Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ));
    let bodies = Arc::new(Semaphore::new(BODY_BUDGET_MIB as usize));
    let bucket = archive.bucket.clone();
    let log_days = stream::iter(walk.days)
        .map(|day| list_day(&client, &bucket, day, false))
        .buffered(DAY_LOOKAHEAD);
    let digest_days = stream::iter(
        digest_walk
            .as_ref()
            .map_or_else(Vec::new, |d| d.days.clone()),
    )
    .map(|day| list_day(&client, &bucket, day, true))
    .buffered(DAY_LOOKAHEAD);
    // Digests and logs are listed and fetched side by side: a digest is a
    // few KB, and waiting for them after the logs would add their round
    // trips to the scan.
    let listed = stream::select(log_days, digest_days).flat_map(|items| {
        bar.inc_length(items.len() as u64);
        stream::iter(items)
    });
    let mut done = listed
        .map(|item| {
            process(
                &client,
                &bucket,
                item,
                opts,
                cpu.clone(),
                bodies.clone(),
                &trust,
            )
        })
        .buffer_unordered(FETCH_CONCURRENCY);

    // With validation, what a file yields waits for the verdict on it.
    let mut held: Vec<(ObjectRef, FileScan)> = Vec::new();
    let mut log_inputs: Vec<LogInput> = Vec::new();
    let mut digests: Vec<DigestInput> = Vec::new();
    let fetch = async {
        while let Some(d) = done.next().await {
            bar.inc(1);
            match d {
                Done::Scanned(obj, scan) if validate.is_some() => {
                    log_inputs.push(LogInput {
                        key: obj.key.clone(),
                        account: obj.account.clone(),
                        region: obj.region.clone(),
                        day: obj.day,
                        delivered: reader::aws_log_name(&obj.key).map(|n| n.delivered),
                        hash: scan.sha256.ok_or_else(|| match &scan.verdict {
                            reader::Verdict::Corrupt(r) => format!("not read whole: {r}"),
                            _ => "not hashed".to_string(),
                        }),
                    });
                    held.push((obj, scan));
                }
                Done::Scanned(obj, scan) => {
                    // The key's folders say which account, region and day this
                    // file logs, even when none of its events is kept; a file
                    // that held nothing readable shows nothing.
                    if scan.verdict == reader::Verdict::Read || scan.records_read > 0 {
                        collector.note_log_day(&obj.account, &obj.region, obj.day);
                    }
                    add_scan(collector, idx, &format!("s3://{bucket}/{}", obj.key), scan);
                }
                // A file that could not be fetched is no evidence for its day.
                Done::FetchFailed(obj, e, gone) => {
                    if validate.is_some() && !gone {
                        log_inputs.push(LogInput {
                            key: obj.key.clone(),
                            account: obj.account.clone(),
                            region: obj.region.clone(),
                            day: obj.day,
                            delivered: reader::aws_log_name(&obj.key).map(|n| n.delivered),
                            hash: Err(format!("GetObject failed: {e}")),
                        });
                    }
                    collector.source_mut(idx).files_corrupt.push(FileIssue {
                        path: format!("s3://{bucket}/{}", obj.key),
                        reason: format!("GetObject failed: {e}"),
                    });
                }
                Done::Digest(d) => digests.push(*d),
                Done::Skipped(issue) => collector.source_mut(idx).files_skipped.push(issue),
                Done::Error(prefix, e) => {
                    failed_prefixes.push(prefix);
                    collector.source_mut(idx).errors.push(e);
                }
            }
        }
    };
    fetch.await;
    drop(done);
    bar.finish_and_clear();

    if let (Some(v), Some((mut keys, label))) = (validate, keys) {
        if matches!(v.keys, KeySource::Api) {
            add_backfill_keys(config, &mut keys, &digests).await;
        }
        let listed = integrity::Listed {
            log_first: range.first,
            log_last: range.last,
            digest_first: digest_range.first,
            digest_last: digest_range.last,
            failed_prefixes,
            scopes: walk.scopes.clone(),
        };
        let now = Utc::now();
        let bucket_name = bucket.clone();
        // Signature checks are CPU work; off the async threads.
        let validation = tokio::task::spawn_blocking(move || {
            integrity::validate(&bucket_name, &log_inputs, &digests, &keys, &listed, now)
        })
        .await
        .map_err(|e| anyhow::anyhow!("internal: the validation task failed: {e}"))?;
        for (obj, mut scan) in held {
            let outcome = validation
                .logs
                .get(&obj.key)
                .copied()
                .unwrap_or(Outcome::Unverified);
            for row in &mut scan.rows {
                row.log_integrity = Some(outcome.event_integrity().to_string());
            }
            if scan.verdict == reader::Verdict::Read || scan.records_read > 0 {
                collector.note_log_day(&obj.account, &obj.region, obj.day);
            }
            add_scan(collector, idx, &format!("s3://{bucket}/{}", obj.key), scan);
        }
        for ((account, region), days) in &validation.quiet_days {
            for d in days {
                collector.note_quiet_day(account, region, *d);
            }
        }
        let mut coverage = validation.coverage;
        coverage.sources = vec![url.to_string()];
        coverage.public_keys = vec![label];
        collector.add_integrity(coverage);
    }

    // Fetches finish in any order; the ledger reads the same on every run.
    let src = collector.source_mut(idx);
    src.files_corrupt.sort_by(|a, b| a.path.cmp(&b.path));
    src.files_skipped.sort_by(|a, b| a.path.cmp(&b.path));
    src.errors.sort();
    Ok(())
}

/// The time ListPublicKeys is asked about: the digest days listed, or,
/// with an open window, the days found.
fn key_span(range: &DayRange, walk: &Walk) -> (DateTime<Utc>, DateTime<Utc>) {
    let found_first = walk.days.iter().map(|d| d.day).min();
    let found_last = walk.days.iter().map(|d| d.day).max();
    let now = Utc::now();
    let first = range
        .first
        .or(found_first)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(now, |t| t.and_utc() - Duration::hours(1));
    let last = range
        .last
        .or(found_last)
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(now, |t| t.and_utc())
        .min(now);
    (first.min(last), last)
}

/// The keys for `regions`, and a line saying where they came from.
async fn load_keys(
    config: &SdkConfig,
    source: &KeySource,
    regions: &BTreeSet<String>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> (PublicKeys, String) {
    match source {
        KeySource::File(label, keys) => (
            PublicKeys {
                file: Some((label.clone(), keys.clone())),
                regions: BTreeMap::new(),
            },
            label.clone(),
        ),
        KeySource::Api => {
            let answers: Vec<(String, Result<Vec<PublicKey>, String>)> =
                stream::iter(regions.iter().cloned())
                    .map(|r| async move {
                        let keys = public_keys::list(config, &r, from, to).await;
                        (r, keys)
                    })
                    .buffer_unordered(LIST_CONCURRENCY)
                    .collect()
                    .await;
            let label = format!(
                "CloudTrail ListPublicKeys in {} for {} to {}",
                if regions.is_empty() {
                    "no region (no digest folder found)".to_string()
                } else {
                    regions.iter().cloned().collect::<Vec<_>>().join(", ")
                },
                rfc3339(from),
                rfc3339(to)
            );
            (
                PublicKeys {
                    file: None,
                    regions: answers.into_iter().collect(),
                },
                label,
            )
        }
    }
}

/// A backfill digest is signed when it is made, possibly long after the
/// period it covers: its key is looked up around its
/// `x-amz-meta-backfill-generation-timestamp`, as the AWS CLI does.
async fn add_backfill_keys(config: &SdkConfig, keys: &mut PublicKeys, digests: &[DigestInput]) {
    for d in digests.iter().filter(|d| d.name.backfill) {
        let DigestFetch::Fetched(f) = &d.fetch else {
            continue;
        };
        let (Ok(doc), Some(generated)) = (&f.doc, &f.backfill_generated) else {
            continue;
        };
        if keys.find(&d.name.region, &doc.fingerprint).is_ok() {
            continue;
        }
        let Some(at) = digest::parse_time(generated) else {
            continue;
        };
        let found = public_keys::list(
            config,
            &d.name.region,
            at - Duration::hours(1),
            at + Duration::hours(1),
        )
        .await;
        if let Ok(more) = found {
            if let Some(Ok(list)) = keys.regions.get_mut(&d.name.region) {
                for k in more {
                    if !list.iter().any(|x| x.fingerprint == k.fingerprint) {
                        list.push(k);
                    }
                }
            } else {
                keys.regions.insert(d.name.region.clone(), Ok(more));
            }
        }
    }
}

/// Why the bucket's region could not be found.
enum Locate {
    NoSuchBucket,
    Unknown(String),
}

/// The bucket's region, so a bucket in another region than the default one
/// works: GetBucketLocation, else HeadBucket's `x-amz-bucket-region`, which
/// S3 also sends on a redirect or a denial.
async fn bucket_region(config: &SdkConfig, bucket: &str) -> Result<String, Locate> {
    let home = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string());
    let client = aws::s3(config, &home);
    let location_err = match client.get_bucket_location().bucket(bucket).send().await {
        Ok(out) => {
            // An empty constraint means us-east-1; `EU` is eu-west-1's legacy name.
            return Ok(match out.location_constraint().map(|c| c.as_str()) {
                None | Some("") => "us-east-1".to_string(),
                Some("EU") => "eu-west-1".to_string(),
                Some(r) => r.to_string(),
            });
        }
        Err(e) => ErrorInfo::from_sdk(&e),
    };
    if location_err.code == "NoSuchBucket" {
        return Err(Locate::NoSuchBucket);
    }
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => out
            .bucket_region()
            .map(str::to_string)
            .ok_or_else(|| Locate::Unknown(location_err.to_string())),
        Err(e) => e
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string)
            .ok_or_else(|| {
                Locate::Unknown(format!(
                    "GetBucketLocation: {location_err}; HeadBucket: {}",
                    ErrorInfo::from_sdk(&e)
                ))
            }),
    }
}

/// What walking the layout found.
#[derive(Debug, Default)]
struct Walk {
    days: Vec<DayFolder>,
    scopes: BTreeSet<(String, String)>,
    errors: Vec<String>,
    /// Prefixes whose listing failed.
    failed: Vec<String>,
}

/// Walks the folders breadth-first, one level at a time, listing each
/// level's folders concurrently, down to the day folders of `service` (the
/// folder under each account: [`EVENTS_FOLDER`], or `CloudTrail-Digest` for
/// a digest walk). Levels the user fixed in the URL, or named with
/// --account/--region, are not listed.
async fn walk_layout(
    client: &aws_sdk_s3::Client,
    archive: &ArchiveUrl,
    opts: &ReadOptions,
    range: DayRange,
    service: &str,
) -> Walk {
    let mut walk = Walk::default();
    let mut frontier = vec![Node {
        prefix: archive.base.clone(),
        level: Level::Top,
        fixed_used: 0,
        account: None,
        region: None,
        year: None,
        month: None,
    }];
    while !frontier.is_empty() {
        let expanded: Vec<Expanded> = stream::iter(frontier)
            .map(|node| expand(client, archive, opts, range, service, node))
            .buffer_unordered(LIST_CONCURRENCY)
            .collect()
            .await;
        frontier = Vec::new();
        for (children, days, err) in expanded {
            for c in &children {
                if let (Some(a), Some(r), Level::Year) = (&c.account, &c.region, c.level) {
                    walk.scopes.insert((a.clone(), r.clone()));
                }
            }
            frontier.extend(children);
            walk.days.extend(days);
            if let Some((prefix, e)) = err {
                walk.failed.push(prefix);
                walk.errors.push(e);
            }
        }
    }
    walk.days
        .sort_by(|a, b| (a.day, &a.account, &a.region).cmp(&(b.day, &b.account, &b.region)));
    walk
}

/// A folder's child folders, its day folders, and the prefix and message of
/// a failed listing.
type Expanded = (Vec<Node>, Vec<DayFolder>, Option<(String, String)>);

/// The children of one folder: fixed by the user, named by the scope, or
/// listed with a delimiter and pruned by scope and window.
async fn expand(
    client: &aws_sdk_s3::Client,
    archive: &ArchiveUrl,
    opts: &ReadOptions,
    range: DayRange,
    service: &str,
    node: Node,
) -> Expanded {
    let child = |name: &str, level: Level, fixed_used: usize| Node {
        prefix: format!("{}{name}/", node.prefix),
        level,
        fixed_used,
        ..node.clone()
    };
    let fixed = archive.fixed.get(node.fixed_used).cloned();

    // Levels that need no listing.
    match node.level {
        // An account the user named is read even if its folder is absent,
        // so that its days show as missing rather than vanish.
        Level::Service if fixed.is_some() || !opts.scope.accounts.is_empty() => {
            let used = node.fixed_used + usize::from(fixed.is_some());
            return (vec![child(service, Level::Region, used)], vec![], None);
        }
        Level::OrgAccount | Level::Top if fixed.is_some() => {
            let name = fixed.unwrap_or_default();
            let used = node.fixed_used + 1;
            if node.level == Level::Top && name.starts_with("o-") {
                return (vec![child(&name, Level::OrgAccount, used)], vec![], None);
            }
            if !opts.scope.wants_account(&name) {
                return (vec![], vec![], None);
            }
            let mut c = child(&name, Level::Service, used);
            c.account = Some(name);
            return (vec![c], vec![], None);
        }
        Level::OrgAccount if !opts.scope.accounts.is_empty() => {
            let children = opts
                .scope
                .accounts
                .iter()
                .map(|a| {
                    let mut c = child(a, Level::Service, node.fixed_used);
                    c.account = Some(a.clone());
                    c
                })
                .collect();
            return (children, vec![], None);
        }
        Level::Region if fixed.is_some() || !opts.scope.regions.is_empty() => {
            let (names, used) = match fixed {
                Some(r) => (vec![r], node.fixed_used + 1),
                None => (opts.scope.regions.clone(), node.fixed_used),
            };
            let children = names
                .into_iter()
                .filter(|r| opts.scope.wants_region(r))
                .map(|r| {
                    let mut c = child(&r, Level::Year, used);
                    c.region = Some(r);
                    c
                })
                .collect();
            return (children, vec![], None);
        }
        _ => {}
    }

    let names = match list_folders(client, &archive.bucket, &node.prefix).await {
        Ok(n) => n,
        Err(e) => {
            return (
                vec![],
                vec![],
                Some((
                    node.prefix.clone(),
                    format!("ListObjectsV2 s3://{}/{}: {e}", archive.bucket, node.prefix),
                )),
            )
        }
    };
    let mut children = Vec::new();
    let mut days = Vec::new();
    if node.level == Level::Top && !opts.scope.accounts.is_empty() {
        // Named accounts: those found here, or all of them when there is no
        // organization folder that could hold them instead.
        let has_org = names.iter().any(|n| n.starts_with("o-"));
        for a in &opts.scope.accounts {
            if !has_org || names.contains(a) {
                let mut c = child(a, Level::Service, node.fixed_used);
                c.account = Some(a.clone());
                children.push(c);
            }
        }
    }
    for name in names {
        match node.level {
            Level::Top if name.starts_with("o-") => {
                children.push(child(&name, Level::OrgAccount, node.fixed_used));
            }
            Level::Top | Level::OrgAccount => {
                // Other services (Config, ELB) log under AWSLogs/ too; only
                // 12-digit account folders can hold CloudTrail.
                if opts.scope.accounts.is_empty() && is_account_id(&name) {
                    let mut c = child(&name, Level::Service, node.fixed_used);
                    c.account = Some(name);
                    children.push(c);
                }
            }
            Level::Service => {
                if name == service {
                    children.push(child(&name, Level::Region, node.fixed_used));
                }
            }
            Level::Region => {
                let mut c = child(&name, Level::Year, node.fixed_used);
                c.region = Some(name);
                children.push(c);
            }
            Level::Year => {
                if let Ok(y) = name.parse::<i32>() {
                    if range.year(y) {
                        let mut c = child(&name, Level::Month, node.fixed_used);
                        c.year = Some(y);
                        children.push(c);
                    }
                }
            }
            Level::Month => {
                if let (Some(y), Ok(m)) = (node.year, name.parse::<u32>()) {
                    if range.month(y, m) {
                        let mut c = child(&name, Level::Day, node.fixed_used);
                        c.month = Some(m);
                        children.push(c);
                    }
                }
            }
            Level::Day => {
                let date = match (node.year, node.month, name.parse::<u32>()) {
                    (Some(y), Some(m), Ok(d)) => NaiveDate::from_ymd_opt(y, m, d),
                    _ => None,
                };
                if let (Some(date), Some(account), Some(region)) =
                    (date, &node.account, &node.region)
                {
                    if range.day(date) {
                        days.push(DayFolder {
                            prefix: format!("{}{name}/", node.prefix),
                            account: account.clone(),
                            region: region.clone(),
                            day: date,
                        });
                    }
                }
            }
        }
    }
    (children, days, None)
}

/// The folder names directly under `prefix` (ListObjectsV2 with `/`).
async fn list_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, ErrorInfo> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ErrorInfo::from_sdk(&e))?;
        for cp in page.common_prefixes() {
            if let Some(name) = cp
                .prefix()
                .and_then(|p| p.strip_prefix(prefix))
                .map(|p| p.trim_end_matches('/'))
                .filter(|p| !p.is_empty())
            {
                out.push(name.to_string());
            }
        }
    }
    Ok(out)
}

/// Lists one day folder's objects. In an event folder, digest and Insights
/// files never sit in AWS's layout, but copies of archives do mix them in:
/// they are skipped unread. In a digest folder (`digests`), only objects
/// named as digests are taken.
async fn list_day(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    day: DayFolder,
    digests: bool,
) -> Vec<Listed> {
    let mut items = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&day.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                items.push(Listed::Error(
                    day.prefix.clone(),
                    format!(
                        "ListObjectsV2 s3://{bucket}/{}: {}",
                        day.prefix,
                        ErrorInfo::from_sdk(&e)
                    ),
                ));
                break;
            }
        };
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            if key.ends_with('/') {
                continue;
            }
            let object = || ObjectRef {
                key: key.to_string(),
                size: obj.size().map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                account: day.account.clone(),
                region: day.region.clone(),
                day: day.day,
            };
            if digests {
                match digest::parse_digest_name(key) {
                    // A digest of another account or region copied here
                    // is judged where it says it belongs: not here.
                    Some(name) if name.account == day.account && name.region == day.region => {
                        items.push(Listed::Digest(object(), name));
                    }
                    _ => items.push(Listed::Skipped(FileIssue {
                        path: format!("s3://{bucket}/{key}"),
                        reason: "in CloudTrail-Digest/ but not named as a digest of this account and region".into(),
                    })),
                }
                continue;
            }
            if is_digest(key) {
                items.push(Listed::Skipped(FileIssue {
                    path: format!("s3://{bucket}/{key}"),
                    reason: "CloudTrail digest file (signatures, not events)".into(),
                }));
                continue;
            }
            if is_insight(key) {
                items.push(Listed::Skipped(FileIssue {
                    path: format!("s3://{bucket}/{key}"),
                    reason: "CloudTrail Insights file, not an event log".into(),
                }));
                continue;
            }
            items.push(Listed::Object(object()));
        }
    }
    items
}

fn is_account_id(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

fn is_digest(key: &str) -> bool {
    key.contains("CloudTrail-Digest")
}

fn is_insight(key: &str) -> bool {
    key.contains("CloudTrail-Insight")
}

/// Fetches and parses one object; other items pass through.
async fn process(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    item: Listed,
    opts: &ReadOptions,
    cpu: Arc<Semaphore>,
    bodies: Arc<Semaphore>,
    trust: &Trust<'_>,
) -> Done {
    let obj = match item {
        Listed::Object(o) => o,
        Listed::Digest(o, name) => {
            let d = fetch_digest(client, bucket, o, name, opts).await;
            if let Some(keys) = trust.keys {
                let listed = integrity::verified_listing(bucket, &d, keys);
                let mut expected = trust.expected.lock().unwrap_or_else(|e| e.into_inner());
                for (key, hash) in listed {
                    expected.entry(key).or_insert(hash);
                }
            }
            return Done::Digest(Box::new(d));
        }
        Listed::Skipped(issue) => return Done::Skipped(issue),
        Listed::Error(prefix, e) => return Done::Error(prefix, e),
    };
    if obj.size > opts.max_log_bytes {
        let scan = FileScan::unread(
            reader::Verdict::Corrupt(reader::over_limit(obj.size, opts.max_log_bytes)),
            0,
        );
        return Done::Scanned(obj, scan);
    }
    // Held until the body is parsed and dropped.
    let mib = u32::try_from(obj.size.div_ceil(1 << 20))
        .unwrap_or(BODY_BUDGET_MIB)
        .clamp(1, BODY_BUDGET_MIB);
    let Ok(_body_permit) = bodies.acquire_many_owned(mib).await else {
        return Done::FetchFailed(obj, "the scan was shut down".into(), false);
    };
    let body = match client
        .get_object()
        .bucket(bucket)
        .key(&obj.key)
        .send()
        .await
    {
        Ok(out) => match out.body.collect().await {
            Ok(b) => b.into_bytes(),
            Err(e) => return Done::FetchFailed(obj, format!("reading the body: {e}"), false),
        },
        Err(e) => {
            let info = ErrorInfo::from_sdk(&e);
            let gone = info.code == "NoSuchKey";
            return Done::FetchFailed(obj, info.to_string(), gone);
        }
    };
    // Parsing is CPU work: run it off the async threads, at most one object
    // per core, so fetches keep flowing while others inflate.
    let Ok(_permit) = cpu.acquire_owned().await else {
        return Done::FetchFailed(obj, "the scan was shut down".into(), false);
    };
    let label = format!("s3://{bucket}/{}", obj.key);
    let opts = opts.clone();
    let expected = trust
        .expected
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&obj.key)
        .copied();
    let scan =
        move || reader::scan_bytes_expecting(&label, &body, &opts, &mut None, expected.as_ref());
    match tokio::task::spawn_blocking(scan).await {
        Ok(scan) => Done::Scanned(obj, scan),
        Err(e) => Done::FetchFailed(obj, format!("parser task failed: {e}"), false),
    }
}

/// Fetches one digest with its signature metadata. A digest is a few KB of
/// gzipped JSON: it is inflated and parsed here.
async fn fetch_digest(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    obj: ObjectRef,
    name: DigestName,
    opts: &ReadOptions,
) -> DigestInput {
    let input = |fetch| DigestInput {
        key: obj.key.clone(),
        name: name.clone(),
        fetch,
    };
    if obj.size > opts.max_log_bytes {
        return input(DigestFetch::Failed(reader::over_limit(
            obj.size,
            opts.max_log_bytes,
        )));
    }
    let out = match client
        .get_object()
        .bucket(bucket)
        .key(&obj.key)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let info = ErrorInfo::from_sdk(&e);
            return input(if info.code == "NoSuchKey" {
                DigestFetch::NotFound
            } else {
                DigestFetch::Failed(format!("GetObject: {info}"))
            });
        }
    };
    // User metadata comes back without its `x-amz-meta-` prefix.
    let meta = |k: &str| out.metadata().and_then(|m| m.get(k)).cloned();
    let signature = meta("signature");
    let algorithm = meta("signature-algorithm");
    let backfill_generated = meta("backfill-generation-timestamp");
    let body = match out.body.collect().await {
        Ok(b) => b.into_bytes(),
        Err(e) => return input(DigestFetch::Failed(format!("reading the body: {e}"))),
    };
    let limit = usize::try_from(opts.max_log_bytes).unwrap_or(usize::MAX);
    let (text, doc) = if gz::is_gzip(&body) {
        let mut buf = Vec::new();
        match gz::inflate(&body, &mut buf, limit, &mut None) {
            Ok(()) => {
                let doc = digest::parse_digest(&buf);
                (buf, doc)
            }
            Err(e) => (buf, Err(format!("gzip: {}", e.reason))),
        }
    } else {
        (
            body.to_vec(),
            Err("not gzip, as CloudTrail delivers digests".into()),
        )
    };
    input(DigestFetch::Fetched(Box::new(FetchedDigest {
        sha256: hex::encode(Sha256::digest(&text)),
        doc,
        signature,
        algorithm,
        backfill_generated,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn urls_split_at_awslogs() {
        let a = parse_url("s3://trail-bucket").unwrap();
        assert_eq!(a.bucket, "trail-bucket");
        assert_eq!(a.base, "AWSLogs/");
        assert!(a.fixed.is_empty());

        let a = parse_url("s3://trail-bucket/my/prefix/").unwrap();
        assert_eq!(a.base, "my/prefix/AWSLogs/");

        let a = parse_url("s3://b/p/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1").unwrap();
        assert_eq!(a.base, "p/AWSLogs/");
        assert_eq!(
            a.fixed,
            vec!["o-abc123", "111122223333", "CloudTrail", "eu-west-1"]
        );
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for url in [
            "https://b/p",
            "s3://",
            "s3:///prefix",
            "s3://Bad_Bucket!/x",
            "s3://b/AWSLogs/111122223333/CloudTrail-Digest/us-east-1",
            "s3://b/AWSLogs/111122223333/CloudTrail/us-east-1/2025/01",
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(err.to_string().starts_with(url), "{url}: {err}");
        }
    }

    #[test]
    fn day_range_starts_a_day_early_and_waits_for_late_deliveries() {
        let w = Window {
            since: Some(Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()),
            until: Some(Utc.with_ymd_and_hms(2025, 3, 31, 0, 0, 0).unwrap()),
        };
        let r = DayRange::from_window(&w, 2);
        let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
        assert!(r.day(d(2, 28)));
        assert!(!r.day(d(2, 27)));
        assert!(r.day(d(4, 1)) && r.day(d(4, 2)));
        assert!(!r.day(d(4, 3)));
        assert!(r.month(2025, 2) && r.month(2025, 4) && !r.month(2025, 5));
        assert!(r.year(2025) && !r.year(2024));
        let r = DayRange::from_window(&w, 0);
        assert!(r.day(d(3, 31)) && !r.day(d(4, 1)));
        let open = DayRange::from_window(&Window::default(), 2);
        assert!(open.day(d(1, 1)) && open.year(1999));
    }

    #[test]
    fn digest_keys_are_recognised() {
        assert!(is_digest(
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2025/01/02/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20250102T000000Z.json.gz"
        ));
        assert!(!is_digest(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2025/01/02/111122223333_CloudTrail_us-east-1_20250102T0005Z_abc.json.gz"
        ));
    }
}
