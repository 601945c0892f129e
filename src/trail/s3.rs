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

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{Duration, NaiveDate};
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use super::local::add_scan;
use super::reader::{self, FileScan, ReadOptions};
use super::{Collector, FileIssue, Window};
use crate::aws::{self, ErrorInfo};
use crate::error::hinted;
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
    Skipped(FileIssue),
    Error(String),
}

/// What happened to one listed item once processed.
enum Done {
    Scanned(ObjectRef, FileScan),
    FetchFailed(ObjectRef, String),
    Skipped(FileIssue),
    Error(String),
}

/// Reads the archive at `url` into `collector` as one source.
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
    let walk = walk_layout(&client, &archive, opts, range, EVENTS_FOLDER).await;
    for e in walk.errors {
        collector.source_mut(idx).errors.push(e);
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

    let bar = progress.bar("s3 objects", 0);
    let cpu = Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ));
    let bodies = Arc::new(Semaphore::new(BODY_BUDGET_MIB as usize));
    let bucket = archive.bucket.clone();
    let listed = stream::iter(walk.days)
        .map(|day| list_day(&client, &bucket, day))
        .buffered(DAY_LOOKAHEAD)
        .flat_map(|items| {
            bar.inc_length(items.len() as u64);
            stream::iter(items)
        });
    let mut done = listed
        .map(|item| process(&client, &bucket, item, opts, cpu.clone(), bodies.clone()))
        .buffer_unordered(FETCH_CONCURRENCY);

    while let Some(d) = done.next().await {
        bar.inc(1);
        match d {
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
            Done::FetchFailed(obj, e) => {
                collector.source_mut(idx).files_corrupt.push(FileIssue {
                    path: format!("s3://{bucket}/{}", obj.key),
                    reason: format!("GetObject failed: {e}"),
                });
            }
            Done::Skipped(issue) => collector.source_mut(idx).files_skipped.push(issue),
            Done::Error(e) => collector.source_mut(idx).errors.push(e),
        }
    }
    bar.finish_and_clear();
    // Fetches finish in any order; the ledger reads the same on every run.
    let src = collector.source_mut(idx);
    src.files_corrupt.sort_by(|a, b| a.path.cmp(&b.path));
    src.files_skipped.sort_by(|a, b| a.path.cmp(&b.path));
    src.errors.sort();
    Ok(())
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
        let expanded: Vec<(Vec<Node>, Vec<DayFolder>, Option<String>)> = stream::iter(frontier)
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
            walk.errors.extend(err);
        }
    }
    walk.days
        .sort_by(|a, b| (a.day, &a.account, &a.region).cmp(&(b.day, &b.account, &b.region)));
    walk
}

/// The children of one folder: fixed by the user, named by the scope, or
/// listed with a delimiter and pruned by scope and window.
async fn expand(
    client: &aws_sdk_s3::Client,
    archive: &ArchiveUrl,
    opts: &ReadOptions,
    range: DayRange,
    service: &str,
    node: Node,
) -> (Vec<Node>, Vec<DayFolder>, Option<String>) {
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
                Some(format!(
                    "ListObjectsV2 s3://{}/{}: {e}",
                    archive.bucket, node.prefix
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

/// Lists one day folder's objects. Digest files never sit here in AWS's
/// layout, but copies of archives do mix them in: they are skipped unread.
async fn list_day(client: &aws_sdk_s3::Client, bucket: &str, day: DayFolder) -> Vec<Listed> {
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
                items.push(Listed::Error(format!(
                    "ListObjectsV2 s3://{bucket}/{}: {}",
                    day.prefix,
                    ErrorInfo::from_sdk(&e)
                )));
                break;
            }
        };
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            if key.ends_with('/') {
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
            items.push(Listed::Object(ObjectRef {
                key: key.to_string(),
                size: obj.size().map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                account: day.account.clone(),
                region: day.region.clone(),
                day: day.day,
            }));
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
) -> Done {
    let obj = match item {
        Listed::Object(o) => o,
        Listed::Skipped(issue) => return Done::Skipped(issue),
        Listed::Error(e) => return Done::Error(e),
    };
    if obj.size > opts.max_log_bytes {
        let scan = FileScan {
            verdict: reader::Verdict::Corrupt(reader::over_limit(obj.size, opts.max_log_bytes)),
            bytes: 0,
            records_read: 0,
            bad_times: 0,
            rows: Vec::new(),
            log_days: Vec::new(),
            delivered: None,
        };
        return Done::Scanned(obj, scan);
    }
    // Held until the body is parsed and dropped.
    let mib = u32::try_from(obj.size.div_ceil(1 << 20))
        .unwrap_or(BODY_BUDGET_MIB)
        .clamp(1, BODY_BUDGET_MIB);
    let Ok(_body_permit) = bodies.acquire_many_owned(mib).await else {
        return Done::FetchFailed(obj, "the scan was shut down".into());
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
            Err(e) => return Done::FetchFailed(obj, format!("reading the body: {e}")),
        },
        Err(e) => return Done::FetchFailed(obj, ErrorInfo::from_sdk(&e).to_string()),
    };
    // Parsing is CPU work: run it off the async threads, at most one object
    // per core, so fetches keep flowing while others inflate.
    let Ok(_permit) = cpu.acquire_owned().await else {
        return Done::FetchFailed(obj, "the scan was shut down".into());
    };
    let label = format!("s3://{bucket}/{}", obj.key);
    let opts = opts.clone();
    match tokio::task::spawn_blocking(move || reader::scan_bytes(&label, &body, &opts)).await {
        Ok(scan) => Done::Scanned(obj, scan),
        Err(e) => Done::FetchFailed(obj, format!("parser task failed: {e}")),
    }
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
