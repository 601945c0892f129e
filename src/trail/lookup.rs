//! `lookup`: CloudTrail event history through the LookupEvents API.
//!
//! The API keeps 90 days of management events, takes one lookup attribute
//! per call, returns at most 50 events a page and allows 2 requests per
//! second per account and region. So: one lookup per kept event name
//! (EventName=...), or one EventSource=kms.amazonaws.com lookup with
//! `--include-data-events`; a paced request stream per region; and a
//! coverage entry that states what this source cannot see.

use std::time::Duration as StdDuration;

use anyhow::Result;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use tokio::time::{sleep, sleep_until, Instant};

use super::reader::{self, ReadOptions};
use super::{Collector, EventRow, FileIssue, Window};
use crate::aws::{self, ErrorInfo};
use crate::progress::{Bar, Progress};

/// How far back LookupEvents reaches.
pub const RETENTION_DAYS: i64 = 90;
/// AWS's documented limit: 2 requests per second per account and region.
const MIN_SPACING: StdDuration = StdDuration::from_millis(500);
/// Attempts per page when throttled or when AWS answers with a server fault
/// (`AWS_MAX_ATTEMPTS` overrides it, as it does the SDK's).
const MAX_ATTEMPTS: u32 = 6;
/// The first backoff after a throttle; doubled on each further one.
const FIRST_BACKOFF: StdDuration = StdDuration::from_secs(1);
/// Regions queried at once; each has its own request budget.
const REGION_CONCURRENCY: usize = 8;

/// Spaces requests so that no second holds more than two of them: a token
/// bucket of one token refilled every 500 ms, which also rules out a burst
/// of two followed by a third within the same second.
struct Pacer {
    next: Option<Instant>,
}

impl Pacer {
    fn new() -> Self {
        Pacer { next: None }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        let at = self.next.map_or(now, |n| n.max(now));
        sleep_until(at).await;
        self.next = Some(at + MIN_SPACING);
    }
}

/// The time range actually asked of the API, and what falls outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The window started before LookupEvents' 90 days.
    pub clamped: bool,
}

/// Clamps the window to the last 90 days; `None` when nothing is left.
pub fn span(window: &super::Window, now: DateTime<Utc>) -> Option<Span> {
    let earliest = now - Duration::days(RETENTION_DAYS);
    let start = window.since.map_or(earliest, |s| s.max(earliest));
    let end = window.until.map_or(now, |u| u.min(now));
    (start <= end).then_some(Span {
        start,
        end,
        clamped: window.since.is_none_or(|s| s < earliest),
    })
}

/// What one region's lookups returned.
struct RegionResult {
    region: String,
    rows: Vec<EventRow>,
    records_read: u64,
    corrupt: Vec<FileIssue>,
    errors: Vec<String>,
}

/// One account whose event history is read: its configuration (the
/// caller's, or a role assumed in it), or why it cannot be read.
pub struct LookupAccount {
    /// The account whose history this is (day coverage is kept per account).
    pub account: Option<String>,
    pub config: Result<SdkConfig, String>,
}

/// Reads LookupEvents in each of `regions` into `collector` as one source.
/// `caller_account` is the account whose event history the API answers
/// with (STS GetCallerIdentity of the run).
///
/// API failures are recorded in the source's coverage; the call only fails
/// on a bug in its arguments.
pub async fn scan(
    config: &SdkConfig,
    caller_account: &str,
    regions: &[String],
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let one = [LookupAccount {
        account: Some(caller_account.to_string()),
        config: Ok(config.clone()),
    }];
    scan_accounts(&one, regions, opts, collector, progress).await
}

/// Reads LookupEvents of several accounts (each through its own
/// configuration), in each of `regions`, as one source. LookupEvents'
/// 2-a-second quota is per account and region, so every account and
/// region has its own pacer, and they run side by side.
pub async fn scan_accounts(
    accounts: &[LookupAccount],
    regions: &[String],
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let idx = collector.begin_source("lookup", "lookup");
    let now = Utc::now();
    let earliest = now - Duration::days(RETENTION_DAYS);
    {
        let src = collector.source_mut(idx);
        src.limits.push(format!(
            "LookupEvents covers only the last {RETENTION_DAYS} days (since {}) and management events only",
            crate::frames::time::rfc3339(earliest)
        ));
        if opts.include_data_events {
            src.limits.push(
                "one EventSource=kms.amazonaws.com lookup per region: every KMS management event, at 50 a page"
                    .into(),
            );
        } else {
            src.limits.push(
                "one lookup per kept event name; failed calls of other KMS operations are not fetched (the S3 archive has them)"
                    .into(),
            );
        }
    }
    let Some(span) = span(&opts.window, now) else {
        collector.source_mut(idx).limits.push(format!(
            "the window ends before {}: nothing to ask LookupEvents",
            crate::frames::time::rfc3339(earliest)
        ));
        return Ok(());
    };
    if span.clamped {
        collector.source_mut(idx).limits.push(format!(
            "the window starts before LookupEvents' {RETENTION_DAYS} days: events before {} are not in this source",
            crate::frames::time::rfc3339(span.start)
        ));
    }

    // Day coverage needs the account; the API answers for the caller's.
    let mut reachable: Vec<(Option<String>, &SdkConfig)> = Vec::new();
    for a in accounts {
        let config = match &a.config {
            Ok(c) => c,
            Err(why) => {
                collector.source_mut(idx).errors.push(format!(
                    "account {}: {why}; its event history was not read",
                    a.account.as_deref().unwrap_or("?")
                ));
                continue;
            }
        };
        // The account is known: the caller's (checked up front) or the one
        // the role was assumed into. Day coverage needs it.
        let account = a.account.clone();
        reachable.push((account, config));
    }

    let attributes = lookup_attributes(opts);
    let pairs: Vec<(Option<String>, &SdkConfig, &String)> = reachable
        .iter()
        .flat_map(|(account, config)| regions.iter().map(move |r| (account.clone(), *config, r)))
        .collect();
    let bar = progress.bar("lookup", (pairs.len() * attributes.len()) as u64);
    // Each account and region is paced on its own; several accounts' regions
    // run together.
    let concurrency = REGION_CONCURRENCY * reachable.len().clamp(1, 8);
    let mut results = stream::iter(pairs)
        .map(|(account, config, region)| {
            let (attributes, span, bar) = (&attributes, &span, &bar);
            async move {
                (
                    account,
                    scan_region(config, region, attributes, span, opts, bar).await,
                )
            }
        })
        .buffer_unordered(concurrency);
    while let Some((account, r)) = results.next().await {
        if let Some(account) = account.as_ref().filter(|a| opts.scope.wants_account(a)) {
            collector.note_scope(account, &r.region);
            // A region whose lookups all answered is covered for every day
            // of the span: event history is kept whether or not a trail is.
            // When the 90 days cut the window, their first day is only partly
            // kept, so it does not count.
            let first = if span.clamped {
                span.start.date_naive().succ_opt()
            } else {
                Some(span.start.date_naive())
            };
            if let (true, Some(first)) = (r.errors.is_empty(), first) {
                for day in days(first, span.end.date_naive()) {
                    collector.note_log_day(account, &r.region, day);
                }
            }
        }
        let src = collector.source_mut(idx);
        src.records_read += r.records_read;
        src.files_corrupt.extend(r.corrupt);
        src.errors
            .extend(r.errors.into_iter().map(|e| match &account {
                Some(a) if accounts.len() > 1 => format!("account {a}: {e}"),
                _ => e,
            }));
        collector.add_rows(idx, r.rows);
    }
    bar.finish_and_clear();
    // Regions finish in any order; the ledger reads the same on every run.
    let src = collector.source_mut(idx);
    src.errors.sort();
    src.files_corrupt.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}

/// One key's rotation events and failures in the last 90 days, for
/// `kmsrot diagnose`: a ResourceName lookup, paced and retried as [`scan`]'s
/// are. Returns the kept rows and, one line each, what could not be read.
pub async fn key_events(
    config: &SdkConfig,
    region: &str,
    key_arn: &str,
    now: DateTime<Utc>,
) -> (Vec<EventRow>, Vec<String>) {
    let opts = ReadOptions {
        window: Window {
            since: Some(now - Duration::days(RETENTION_DAYS)),
            until: Some(now),
        },
        ..ReadOptions::default()
    };
    let Some(span) = span(&opts.window, now) else {
        return (Vec::new(), Vec::new());
    };
    let attributes = [(LookupAttributeKey::ResourceName, key_arn.to_string())];
    let r = scan_region(config, region, &attributes, &span, &opts, &Bar::hidden()).await;
    let mut gaps = r.errors;
    gaps.extend(
        r.corrupt
            .iter()
            .map(|c| format!("{}: {}", c.path, c.reason)),
    );
    (r.rows, gaps)
}

/// The lookups to run in each region.
fn lookup_attributes(opts: &ReadOptions) -> Vec<(LookupAttributeKey, String)> {
    if opts.include_data_events {
        return vec![(
            LookupAttributeKey::EventSource,
            "kms.amazonaws.com".to_string(),
        )];
    }
    opts.kept_names()
        .into_iter()
        .map(|n| (LookupAttributeKey::EventName, n))
        .collect()
}

fn days(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

async fn scan_region(
    config: &SdkConfig,
    region: &str,
    attributes: &[(LookupAttributeKey, String)],
    span: &Span,
    opts: &ReadOptions,
    bar: &Bar,
) -> RegionResult {
    // The SDK's own retries would send requests outside the pacer and could
    // break the 2/s budget; this module retries itself, through the pacer.
    let conf = aws_sdk_cloudtrail::config::Builder::from(&aws::for_region(config, region))
        .retry_config(RetryConfig::disabled())
        .build();
    let client = aws_sdk_cloudtrail::Client::from_conf(conf);
    let mut pacer = Pacer::new();
    let mut out = RegionResult {
        region: region.to_string(),
        rows: Vec::new(),
        records_read: 0,
        corrupt: Vec::new(),
        errors: Vec::new(),
    };
    let label = format!("lookup:{region}");
    for (n, (key, value)) in attributes.iter().enumerate() {
        let attribute = match LookupAttribute::builder()
            .attribute_key(key.clone())
            .attribute_value(value)
            .build()
        {
            Ok(a) => a,
            Err(e) => {
                out.errors.push(format!("{region} {key}={value}: {e}"));
                continue;
            }
        };
        let mut token: Option<String> = None;
        loop {
            let page = fetch_page(&client, &mut pacer, &attribute, span, token.as_deref()).await;
            let page = match page {
                Ok(p) => p,
                Err(e) if denies_region(&e) => {
                    // A denial or an unusable region answers every lookup
                    // the same way: say it once and leave the region.
                    let skipped = attributes.len() - n - 1;
                    out.errors.push(format!(
                        "LookupEvents {region}: {e} ({skipped} remaining lookups in {region} not sent)"
                    ));
                    bar.inc(skipped as u64 + 1);
                    return out;
                }
                Err(e) => {
                    out.errors
                        .push(format!("LookupEvents {region} {key}={value}: {e}"));
                    break;
                }
            };
            for event in page.events() {
                out.records_read += 1;
                let Some(json) = event.cloud_trail_event() else {
                    out.corrupt.push(FileIssue {
                        path: format!("{label}/{}", event.event_id().unwrap_or("?")),
                        reason: "the event has no CloudTrailEvent".into(),
                    });
                    continue;
                };
                match reader::parse_record(json, &label, opts) {
                    Ok(Some(row)) => out.rows.push(row),
                    Ok(None) => {}
                    Err(reason) => out.corrupt.push(FileIssue {
                        path: format!("{label}/{}", event.event_id().unwrap_or("?")),
                        reason,
                    }),
                }
            }
            match page.next_token() {
                // A token equal to the one sent would loop forever.
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_string())
                }
                _ => break,
            }
        }
        bar.inc(1);
    }
    out
}

/// One page, paced, retried with exponential backoff on throttling and on
/// server faults.
async fn fetch_page(
    client: &aws_sdk_cloudtrail::Client,
    pacer: &mut Pacer,
    attribute: &LookupAttribute,
    span: &Span,
    token: Option<&str>,
) -> Result<aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput, ErrorInfo> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    let max_attempts = aws::max_attempts_from_env().unwrap_or(MAX_ATTEMPTS);
    loop {
        pacer.wait().await;
        let result = client
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(aws_smithy_types::DateTime::from_secs(
                span.start.timestamp(),
            ))
            .end_time(aws_smithy_types::DateTime::from_secs(span.end.timestamp()))
            .max_results(50)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        let err = match result {
            Ok(page) => return Ok(page),
            Err(e) => {
                let server_fault = e
                    .raw_response()
                    .is_some_and(|r| r.status().is_server_error());
                let info = ErrorInfo::from_sdk(&e);
                if !(info.is_throttling() || server_fault || is_transient(&info)) {
                    return Err(info);
                }
                info
            }
        };
        if attempt >= max_attempts {
            return Err(ErrorInfo::new(
                err.code,
                format!("{} (gave up after {attempt} attempts)", err.message),
            ));
        }
        tracing::debug!("LookupEvents: {err}; retrying in {backoff:?}");
        sleep(backoff).await;
        backoff = (backoff * 2).min(StdDuration::from_secs(20));
        attempt += 1;
    }
}

/// Errors about the caller or the region rather than the lookup.
fn denies_region(e: &ErrorInfo) -> bool {
    e.is_access_denied()
        || matches!(
            e.code.as_str(),
            "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "AuthFailure"
                | "OptInRequired"
                | "ExpiredTokenException"
                | "DispatchFailure"
        )
}

fn is_transient(e: &ErrorInfo) -> bool {
    matches!(
        e.code.as_str(),
        "TimeoutError" | "DispatchFailure" | "InternalFailure" | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::Window;
    use chrono::TimeZone;

    #[test]
    fn the_window_is_clamped_to_ninety_days() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let old = Window {
            since: Some(now - Duration::days(400)),
            until: None,
        };
        let s = span(&old, now).unwrap();
        assert_eq!(s.start, now - Duration::days(90));
        assert_eq!(s.end, now);
        assert!(s.clamped);

        let recent = Window {
            since: Some(now - Duration::days(10)),
            until: Some(now - Duration::days(5)),
        };
        let s = span(&recent, now).unwrap();
        assert_eq!(
            (s.start, s.end, s.clamped),
            (now - Duration::days(10), now - Duration::days(5), false)
        );

        let gone = Window {
            since: None,
            until: Some(now - Duration::days(100)),
        };
        assert_eq!(span(&gone, now), None);
    }

    #[tokio::test]
    async fn the_pacer_allows_two_requests_a_second() {
        let mut p = Pacer::new();
        let t0 = Instant::now();
        let mut times = Vec::new();
        for _ in 0..3 {
            p.wait().await;
            times.push(Instant::now() - t0);
        }
        assert!(times[0] < StdDuration::from_millis(50), "{times:?}");
        assert!(times[1] >= MIN_SPACING, "{times:?}");
        assert!(times[2] >= MIN_SPACING * 2, "{times:?}");
    }
}
