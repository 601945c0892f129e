//! `lake:EVENT_DATA_STORE`: CloudTrail Lake, queried in place.
//!
//! An event data store can hold years of an organization's events, so the
//! filtering is pushed down: one SQL query selects only KMS events with a
//! kept name (or an errorCode) in the window, and only the columns the
//! `events` frame needs. A second query lists which days have any event per
//! account and region, for the day coverage. Rows come back as strings
//! (StartQuery, then GetQueryResults polled until FINISHED and paged with
//! NextToken); each is rebuilt as a CloudTrail record and read by the same
//! parser as every other source, so [`super::record::keep`] decides here as
//! everywhere.
//!
//! Every query is bounded in time (the window, or the default audit window
//! when `--since` is not given: an unbounded query scans, and bills, the whole
//! store). A query is never abandoned running: on the deadline
//! (`--query-timeout`), on a failed GetQueryResults and on Ctrl-C it is
//! cancelled (CancelQuery).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_cloudtrail::types::QueryStatus;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::time::{sleep, Instant};

use super::pushdown::{self, base_record, bounded_window, quoted, KMS_KEY_TYPE};
use super::reader::{self, ReadOptions};
use super::{Collector, FileIssue};
use crate::aws::{self, ErrorInfo};
use crate::error::hinted;
use crate::progress::Progress;

/// Rows per GetQueryResults page (the API's maximum).
const PAGE: i32 = 1000;
/// StartQuery's QueryStatement is at most 10,000 characters.
pub const MAX_STATEMENT: usize = 10_000;

/// An event data store named by ARN or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The id, which is the table name in Lake SQL.
    pub id: String,
    /// The region from the ARN, when an ARN was given.
    pub region: Option<String>,
}

/// Parses `lake:ARN` or `lake:ID`.
pub fn parse_store(source: &str) -> Result<Store> {
    let usage = |problem: &str| {
        hinted(
            format!("{source}: {problem}"),
            "give the event data store's ARN or id, as in lake:arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
        )
    };
    let Some(rest) = source.strip_prefix("lake:") else {
        return Err(usage("not a lake: source"));
    };
    let (id, region) = if rest.starts_with("arn:") {
        let region = aws::arn_region(rest).map(str::to_string);
        let id = rest
            .split_once(":eventdatastore/")
            .map(|(_, id)| id.to_string())
            .ok_or_else(|| usage("not an event data store ARN"))?;
        (id, region)
    } else {
        (rest.to_string(), None)
    };
    // The id becomes the SQL table name; anything but an id is refused.
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(usage("not an event data store id"));
    }
    Ok(Store { id, region })
}

/// Lake SQL's timestamp literal.
fn sql_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The WHERE conditions shared by both queries: window and scope.
fn conditions(opts: &ReadOptions) -> Result<Vec<String>> {
    pushdown::check_scope(opts)?;
    let mut c = Vec::new();
    if let Some(s) = opts.window.since {
        c.push(format!("eventtime >= '{}'", sql_time(s)));
    }
    if let Some(u) = opts.window.until {
        c.push(format!("eventtime <= '{}'", sql_time(u)));
    }
    if !opts.scope.accounts.is_empty() {
        c.push(format!(
            "recipientaccountid IN ({})",
            quoted(&opts.scope.accounts)
        ));
    }
    if !opts.scope.regions.is_empty() {
        c.push(format!("awsregion IN ({})", quoted(&opts.scope.regions)));
    }
    Ok(c)
}

/// The query for kept events: a superset of what the reader keeps (it
/// decides), with the columns [`record`] rebuilds a record from.
/// `element_at` rather than `[...]` because a subscript fails the query on a
/// missing map key. The key is the first resource of type AWS::KMS::Key
/// whose ARN is a key's, as the file reader picks it: not merely the first
/// resource (UpdateAlias lists the alias first, typed as a key too).
pub fn events_sql(store: &Store, opts: &ReadOptions) -> Result<String> {
    let mut c = vec![format!("eventsource = '{}'", pushdown::KMS_SOURCE)];
    c.extend(pushdown::kept_names_condition(
        opts,
        "errorcode IS NOT NULL",
    ));
    c.extend(conditions(opts)?);
    let sql = format!(
        "SELECT eventid, eventtime, eventname, eventtype, eventsource, awsregion, recipientaccountid, \
sharedeventid, useridentity.arn AS principal_arn, useridentity.type AS principal_type, \
useridentity.accountid AS principal_account_id, useridentity.invokedby AS invoked_by, \
useridentity.sessioncontext.sessionissuer.arn AS session_issuer_arn, \
sourceipaddress, useragent, errorcode, errormessage, \
element_at(requestparameters, 'keyId') AS request_key_id, \
element_at(requestparameters, 'rotationPeriodInDays') AS rotation_period_in_days, \
element_at(serviceeventdetails, 'keyId') AS service_key_id, \
element_at(serviceeventdetails, 'rotationType') AS rotation_type, \
element_at(filter(resources, r -> r.type = '{KMS_KEY_TYPE}' AND r.arn LIKE 'arn:%:kms:%:key/%'), 1).arn AS resource_arn, \
requestid \
FROM {} WHERE {} ORDER BY eventtime",
        store.id,
        c.join(" AND ")
    );
    check_length(&sql)?;
    Ok(sql)
}

/// StartQuery refuses a statement over [`MAX_STATEMENT`] characters; say so
/// before sending it, and why it got long.
fn check_length(sql: &str) -> Result<()> {
    let n = sql.chars().count();
    if n > MAX_STATEMENT {
        return Err(hinted(
            format!(
                "the CloudTrail Lake query would be {n} characters; StartQuery takes at most {MAX_STATEMENT}"
            ),
            "list fewer event names in --events-file (or use --include-data-events, which lists none), or fewer --account/--region values",
        ));
    }
    Ok(())
}

/// The query for day coverage: which days have any event, per account and
/// region. It reads three columns, so Lake scans little of each event.
pub fn days_sql(store: &Store, opts: &ReadOptions) -> Result<String> {
    let c = conditions(opts)?;
    let filter = if c.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", c.join(" AND "))
    };
    let sql = format!(
        "SELECT DISTINCT recipientaccountid, awsregion, date(eventtime) AS day FROM {}{filter}",
        store.id
    );
    check_length(&sql)?;
    Ok(sql)
}

/// Lake timestamps read `2025-03-02 12:01:00.000` (UTC); CloudTrail's are
/// RFC 3339. Fractions are kept, so both sources give the same instant.
fn rfc3339_time(lake: &str) -> Option<String> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(lake, f).ok())
        .map(|t| t.and_utc().format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// One result row as a CloudTrail record, so the common parser reads it.
/// Lake returns every value as a string, so an empty one is taken as absent.
fn record(row: &HashMap<&str, &str>) -> Value {
    let get = |k: &str| row.get(k).copied().filter(|v| !v.is_empty());
    let mut rec = base_record(&get);
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            rec.insert(k.to_string(), v);
        }
    };
    put(
        "eventTime",
        get("eventtime").map(|t| json!(rfc3339_time(t).unwrap_or_else(|| t.to_string()))),
    );
    let mut params = Map::new();
    // requestParameters is a map of strings in Lake: a value that was an
    // object or an array in the record arrives as its JSON text. The file
    // reader reads only a string keyId, so such a value is not one here.
    let not_json = |v: &&str| !v.starts_with('{') && !v.starts_with('[');
    if let Some(k) = get("request_key_id").filter(not_json) {
        params.insert("keyId".into(), json!(k));
    }
    if let Some(p) = get("rotation_period_in_days").and_then(|p| p.parse::<i64>().ok()) {
        params.insert("rotationPeriodInDays".into(), json!(p));
    }
    if !params.is_empty() {
        put("requestParameters", Some(Value::Object(params)));
    }
    let mut details = Map::new();
    if let Some(k) = get("service_key_id").filter(not_json) {
        details.insert("keyId".into(), json!(k));
    }
    if let Some(r) = get("rotation_type").filter(not_json) {
        details.insert("rotationType".into(), json!(r));
    }
    if !details.is_empty() {
        put("serviceEventDetails", Some(Value::Object(details)));
    }
    // The query selected only a resource of this type.
    put(
        "resources",
        get("resource_arn").map(|a| json!([{ "ARN": a, "type": KMS_KEY_TYPE }])),
    );
    Value::Object(rec)
}

/// A page of results: each row flattened to column → value.
struct Page {
    rows: Vec<HashMap<String, String>>,
    next_token: Option<String>,
    bytes_scanned: Option<i64>,
}

/// Cancels a query that is being abandoned; says in the returned text
/// whether that worked, for the coverage.
async fn cancel(client: &aws_sdk_cloudtrail::Client, id: &str) -> String {
    pushdown::finished(id);
    match client.cancel_query().query_id(id).send().await {
        Ok(_) => format!("query {id} cancelled"),
        // It may have finished in between; either way it no longer runs.
        Err(e) => format!("CancelQuery {id}: {}", ErrorInfo::from_sdk(&e)),
    }
}

/// Starts a query, waiting out Lake's limit on concurrent queries (each
/// account may run only a few at once) until the deadline.
async fn start(
    client: &aws_sdk_cloudtrail::Client,
    sql: &str,
    deadline: Instant,
) -> Result<String, ErrorInfo> {
    let mut backoff = StdDuration::from_secs(1);
    loop {
        match client.start_query().query_statement(sql).send().await {
            Ok(out) => {
                return out.query_id().map(str::to_string).ok_or_else(|| {
                    ErrorInfo::new("ResponseError", "StartQuery returned no QueryId")
                })
            }
            Err(e) => {
                let info = ErrorInfo::from_sdk(&e);
                if info.code != "MaxConcurrentQueriesException" {
                    return Err(info);
                }
                if Instant::now() + backoff >= deadline {
                    return Err(ErrorInfo::new(
                        info.code,
                        format!(
                            "{} (still refused at the --query-timeout deadline)",
                            info.message
                        ),
                    ));
                }
                tracing::debug!("StartQuery: {info}; retrying in {backoff:?}");
                sleep(backoff).await;
                backoff = (backoff * 2).min(StdDuration::from_secs(30));
            }
        }
    }
}

/// How a query ended.
enum End {
    Finished,
    /// Lake stopped it at its own time limit; the rows read are partial.
    TimedOut(String),
}

/// The next page of a query's results, waiting while it is queued or
/// running, until the deadline.
async fn next_page(
    client: &aws_sdk_cloudtrail::Client,
    query_id: &str,
    token: Option<&str>,
    deadline: Instant,
) -> Result<(Page, End), ErrorInfo> {
    let mut poll = StdDuration::from_millis(500);
    loop {
        let out = client
            .get_query_results()
            .query_id(query_id)
            .max_query_results(PAGE)
            .set_next_token(token.map(str::to_string))
            .send()
            .await
            .map_err(|e| ErrorInfo::from_sdk(&e))?;
        let end = match out.query_status() {
            Some(QueryStatus::Queued) | Some(QueryStatus::Running) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(ErrorInfo::new(
                        "DeadlineExceeded",
                        format!("query {query_id} still running at the --query-timeout deadline"),
                    ));
                }
                sleep(poll.min(deadline - now)).await;
                poll = (poll * 2).min(StdDuration::from_secs(10));
                continue;
            }
            Some(QueryStatus::Finished) => None,
            Some(QueryStatus::TimedOut) => Some(End::TimedOut(
                out.error_message()
                    .unwrap_or("the query ran past CloudTrail Lake's time limit")
                    .to_string(),
            )),
            other => {
                let status = other.map_or("UnknownStatus", |s| s.as_str());
                return Err(ErrorInfo::new(
                    status,
                    out.error_message()
                        .unwrap_or("the query did not finish")
                        .to_string(),
                ));
            }
        };
        let rows = out
            .query_result_rows()
            .iter()
            .map(|cells| {
                cells
                    .iter()
                    .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
                    .collect()
            })
            .collect();
        let page = Page {
            rows,
            next_token: out.next_token().map(str::to_string),
            bytes_scanned: out.query_statistics().and_then(|s| s.bytes_scanned()),
        };
        return Ok((page, end.unwrap_or(End::Finished)));
    }
}

/// Reads the event data store named by `source` (`lake:ARN` or `lake:ID`)
/// into `collector` as one source.
///
/// A malformed source, account or region, or a statement too long for
/// Lake, is an error; query failures are recorded in the source's coverage.
pub async fn scan(
    config: &SdkConfig,
    source: &str,
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let store = parse_store(source)?;
    let (window, defaulted) = bounded_window(&opts.window, Utc::now());
    let lake_opts = ReadOptions {
        window,
        ..opts.clone()
    };
    let events_query = events_sql(&store, &lake_opts)?;
    let days_query = days_sql(&store, &lake_opts)?;
    let region = match &store.region {
        Some(r) => r.clone(),
        None => aws::default_region(config)?,
    };
    let idx = collector.begin_source(source, "lake");
    collector.source_mut(idx).limits.push(
        "filtered in CloudTrail Lake: records_read counts the rows the query returned, bytes_read the bytes Lake scanned"
            .into(),
    );
    if defaulted {
        collector.source_mut(idx).limits.push(format!(
            "no --since: the query reads from {}, the default audit window ({} days), not the whole store",
            crate::frames::time::show_time(window.since),
            crate::policy::Policy::default().audit_window_days
        ));
    }
    let client = aws::cloudtrail(config, &region);
    let timeout = StdDuration::from_secs(opts.query_timeout_secs.max(1));
    let label = format!("lake:{}", store.id);
    let bar = progress.bar("lake rows", 0);

    let events = run(&client, &events_query, timeout, |page| {
        bar.inc(page.rows.len() as u64);
        let src = collector.source_mut(idx);
        src.records_read += page.rows.len() as u64;
        let mut kept = Vec::new();
        let mut corrupt = Vec::new();
        for row in &page.rows {
            let cells: HashMap<&str, &str> =
                row.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let rec = record(&cells);
            match reader::parse_record(&rec.to_string(), &label, opts) {
                Ok(Some(r)) => kept.push(r),
                Ok(None) => {}
                Err(reason) => corrupt.push(FileIssue {
                    path: format!("{label}/{}", cells.get("eventid").unwrap_or(&"?")),
                    reason,
                }),
            }
        }
        collector.source_mut(idx).files_corrupt.extend(corrupt);
        collector.add_rows(idx, kept);
    })
    .await;
    record_outcome(collector, idx, &store, "events", events);

    let mut days: Vec<(String, String, NaiveDate)> = Vec::new();
    let day_rows = run(&client, &days_query, timeout, |page| {
        for row in &page.rows {
            let day = row
                .get("day")
                .and_then(|d| NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok());
            if let (Some(a), Some(r), Some(d)) =
                (row.get("recipientaccountid"), row.get("awsregion"), day)
            {
                days.push((a.clone(), r.clone(), d));
            }
        }
    })
    .await;
    record_outcome(collector, idx, &store, "day-coverage", day_rows);
    super::pushdown::note_days(collector, opts, days);
    bar.finish_and_clear();
    Ok(())
}

/// Puts a query's outcome in the source's coverage: bytes scanned, or why
/// it did not finish (which makes the coverage partial).
fn record_outcome(
    collector: &mut Collector,
    idx: usize,
    store: &Store,
    what: &str,
    outcome: Result<(u64, End), ErrorInfo>,
) {
    let src = collector.source_mut(idx);
    match outcome {
        Ok((bytes, End::Finished)) => src.bytes_read += bytes,
        Ok((bytes, End::TimedOut(message))) => {
            src.bytes_read += bytes;
            src.errors.push(format!(
                "CloudTrail Lake {what} query on {}: TIMED_OUT: {message}; the rows it returned are read, the rest is missing: narrow the window (--since/--until) and run again",
                store.id
            ));
        }
        Err(e) => src
            .errors
            .push(format!("CloudTrail Lake {what} query on {}: {e}", store.id)),
    }
}

/// Runs one query to the end, handing each page to `on_page`; returns the
/// bytes Lake scanned and how it ended. A query that fails or reaches the
/// deadline after it started is cancelled, and the error says so.
async fn run(
    client: &aws_sdk_cloudtrail::Client,
    sql: &str,
    timeout: StdDuration,
    mut on_page: impl FnMut(&Page),
) -> Result<(u64, End), ErrorInfo> {
    let deadline = Instant::now() + timeout;
    let id = start(client, sql, deadline).await?;
    let (c, q) = (client.clone(), id.clone());
    pushdown::started(
        &id,
        Arc::new(move || {
            let (client, id) = (c.clone(), q.clone());
            Box::pin(async move {
                match client.cancel_query().query_id(&id).send().await {
                    Ok(_) => format!("cancelled CloudTrail Lake query {id}"),
                    Err(e) => format!("CancelQuery {id} failed: {}", ErrorInfo::from_sdk(&e)),
                }
            })
        }),
    );
    let mut token: Option<String> = None;
    let mut bytes = 0;
    let mut ended = End::Finished;
    loop {
        let (page, end) = match next_page(client, &id, token.as_deref(), deadline).await {
            Ok(p) => p,
            Err(e) => {
                let cancelled = cancel(client, &id).await;
                return Err(ErrorInfo::new(
                    e.code,
                    format!("{} ({cancelled})", e.message),
                ));
            }
        };
        on_page(&page);
        if let Some(b) = page.bytes_scanned {
            bytes = u64::try_from(b).unwrap_or(0);
        }
        if let End::TimedOut(m) = end {
            ended = End::TimedOut(m);
        }
        match page.next_token {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => token = Some(t),
            _ => break,
        }
    }
    pushdown::finished(&id);
    Ok((bytes, ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::{Scope, Window};
    use chrono::{Duration, TimeZone};

    #[test]
    fn stores_by_arn_or_id() {
        let s = parse_store(
            "lake:arn:aws:cloudtrail:eu-west-1:111122223333:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
        )
        .unwrap();
        assert_eq!(s.id, "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(parse_store("lake:abc-123").unwrap().region, None);
        for bad in [
            "lake:",
            "lake:a b",
            "lake:x;DROP",
            "lake:arn:aws:s3:::bucket",
            "s3://b",
        ] {
            assert!(parse_store(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_query_selects_kept_kms_events_in_the_window_and_scope() {
        let opts = ReadOptions {
            window: Window {
                since: Some(Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap()),
                until: Some(Utc.with_ymd_and_hms(2025, 3, 4, 23, 59, 59).unwrap()),
            },
            scope: Scope {
                accounts: vec!["111122223333".into()],
                regions: vec!["us-east-1".into()],
            },
            ..ReadOptions::default()
        };
        let store = parse_store("lake:eds1").unwrap();
        let sql = events_sql(&store, &opts).unwrap();
        assert!(
            sql.contains("FROM eds1 WHERE eventsource = 'kms.amazonaws.com'"),
            "{sql}"
        );
        assert!(sql.contains("'RotateKey', 'RotateKeyOnDemand'"), "{sql}");
        assert!(sql.contains("OR errorcode IS NOT NULL"), "{sql}");
        assert!(
            sql.contains(
                "eventtime >= '2025-03-02 00:00:00' AND eventtime <= '2025-03-04 23:59:59'"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("recipientaccountid IN ('111122223333') AND awsregion IN ('us-east-1')"),
            "{sql}"
        );

        let bad = ReadOptions {
            scope: Scope {
                accounts: vec!["1' OR '1'='1".into()],
                regions: vec![],
            },
            ..ReadOptions::default()
        };
        assert!(events_sql(&store, &bad).is_err());
    }

    #[test]
    fn every_query_is_bounded_in_time() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let (w, filled) = bounded_window(&Window::default(), now);
        assert!(filled);
        assert_eq!(w.since, Some(now - Duration::days(400)));
        let opts = ReadOptions {
            window: w,
            ..ReadOptions::default()
        };
        let store = parse_store("lake:eds1").unwrap();
        for sql in [
            events_sql(&store, &opts).unwrap(),
            days_sql(&store, &opts).unwrap(),
        ] {
            assert!(sql.contains("eventtime >= '2024-04-27 00:00:00'"), "{sql}");
        }
        let asked = Window {
            since: Some(now - Duration::days(3)),
            until: None,
        };
        assert_eq!(bounded_window(&asked, now), (asked, false));
    }

    #[test]
    fn a_statement_over_ten_thousand_characters_is_refused() {
        let opts = ReadOptions {
            extra_events: (0..600).map(|i| format!("LongEventName{i:04}")).collect(),
            ..ReadOptions::default()
        };
        let err = events_sql(&parse_store("lake:eds1").unwrap(), &opts).unwrap_err();
        let text = crate::error::render(&err);
        assert!(text.contains("StartQuery takes at most 10000"), "{text}");
        assert!(text.contains("hint: "), "{text}");
    }

    #[test]
    fn the_key_is_the_first_kms_key_resource_and_keeps_its_type() {
        let sql = events_sql(&parse_store("lake:eds1").unwrap(), &ReadOptions::default()).unwrap();
        assert!(
            sql.contains(
                "filter(resources, r -> r.type = 'AWS::KMS::Key' AND r.arn LIKE 'arn:%:kms:%:key/%')"
            ),
            "{sql}"
        );
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let row: HashMap<&str, &str> = [
            ("eventid", "e1"),
            ("eventtime", "2025-03-02 12:01:00.000"),
            ("eventname", "CreateKey"),
            ("eventsource", "kms.amazonaws.com"),
            ("awsregion", "us-east-1"),
            ("recipientaccountid", "111122223333"),
            ("resource_arn", arn),
        ]
        .into_iter()
        .collect();
        let row = reader::parse_record(&record(&row).to_string(), "l", &ReadOptions::default())
            .unwrap()
            .unwrap();
        assert_eq!(row.key_arn.as_deref(), Some(arn));
    }

    #[test]
    fn rows_become_cloudtrail_records() {
        let row: HashMap<&str, &str> = [
            ("eventid", "e1"),
            ("eventtime", "2025-03-02 12:01:00.000"),
            ("eventname", "EnableKeyRotation"),
            ("eventsource", "kms.amazonaws.com"),
            ("principal_arn", "arn:aws:iam::111122223333:user/Alice"),
            ("request_key_id", "1234abcd-12ab-34cd-56ef-1234567890ab"),
            ("rotation_period_in_days", "180"),
            ("errorcode", ""),
        ]
        .into_iter()
        .collect();
        let rec = record(&row);
        assert_eq!(rec["eventTime"], "2025-03-02T12:01:00Z");
        assert_eq!(rec["requestParameters"]["rotationPeriodInDays"], 180);
        assert_eq!(
            rec["userIdentity"]["arn"],
            "arn:aws:iam::111122223333:user/Alice"
        );
        assert!(rec.get("errorCode").is_none());
    }
}
