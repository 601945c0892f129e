//! `lake:EVENT_DATA_STORE`: CloudTrail Lake, queried in place.
//!
//! An event data store can hold years of an organization's events, so the
//! filtering is pushed down: one SQL query selects only KMS events with a
//! kept name (or an errorCode) in the window, and only the columns the
//! `events` frame needs. A second query lists which days have any event per
//! account and region, for the day coverage. Rows come back as strings
//! (StartQuery, then GetQueryResults polled until FINISHED and paged with
//! NextToken); each is rebuilt as a CloudTrail record and read by the same
//! parser as every other source.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_cloudtrail::types::QueryStatus;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::time::{sleep, Instant};

use super::reader::{self, ReadOptions};
use super::{Collector, FileIssue};
use crate::aws::{self, ErrorInfo};
use crate::error::hinted;
use crate::progress::Progress;

/// Rows per GetQueryResults page (the API's maximum).
const PAGE: i32 = 1000;
/// How long a query may stay queued or running before the scan gives up.
const QUERY_DEADLINE: StdDuration = StdDuration::from_secs(3600);

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
    let mut c = Vec::new();
    if let Some(s) = opts.window.since {
        c.push(format!("eventtime >= '{}'", sql_time(s)));
    }
    if let Some(u) = opts.window.until {
        c.push(format!("eventtime <= '{}'", sql_time(u)));
    }
    if !opts.scope.accounts.is_empty() {
        for a in &opts.scope.accounts {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(hinted(
                    format!("--account {a}: not a 12-digit account id"),
                    "give account ids such as 111122223333",
                ));
            }
        }
        c.push(format!(
            "recipientaccountid IN ({})",
            quoted(&opts.scope.accounts)
        ));
    }
    if !opts.scope.regions.is_empty() {
        for r in &opts.scope.regions {
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(hinted(
                    format!("--region {r}: not a region name"),
                    "give region names such as us-east-1",
                ));
            }
        }
        c.push(format!("awsregion IN ({})", quoted(&opts.scope.regions)));
    }
    Ok(c)
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kept event names: the default list plus `--events-file`.
fn kept_names(opts: &ReadOptions) -> Vec<String> {
    let mut names = reader::parse_event_list(reader::DEFAULT_EVENTS_FILE);
    for extra in &opts.extra_events {
        if !names.contains(extra) {
            names.push(extra.clone());
        }
    }
    names
}

/// The query for kept events. `element_at` rather than `[...]` because a
/// subscript fails the query on a missing map key.
pub fn events_sql(store: &Store, opts: &ReadOptions) -> Result<String> {
    let mut c = vec!["eventsource = 'kms.amazonaws.com'".to_string()];
    if !opts.include_data_events {
        c.push(format!(
            "(eventname IN ({}) OR errorcode IS NOT NULL)",
            quoted(&kept_names(opts))
        ));
    }
    c.extend(conditions(opts)?);
    Ok(format!(
        "SELECT eventid, eventtime, eventname, eventtype, eventsource, awsregion, recipientaccountid, \
useridentity.arn AS principal_arn, useridentity.type AS principal_type, useridentity.invokedby AS invoked_by, \
useridentity.sessioncontext.sessionissuer.arn AS session_issuer_arn, \
sourceipaddress, useragent, errorcode, errormessage, \
element_at(requestparameters, 'keyId') AS request_key_id, \
element_at(requestparameters, 'rotationPeriodInDays') AS rotation_period_in_days, \
element_at(serviceeventdetails, 'keyId') AS service_key_id, \
element_at(serviceeventdetails, 'rotationType') AS rotation_type, \
element_at(resources, 1).arn AS resource_arn, requestid \
FROM {} WHERE {} ORDER BY eventtime",
        store.id,
        c.join(" AND ")
    ))
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
    Ok(format!(
        "SELECT DISTINCT recipientaccountid, awsregion, date(eventtime) AS day FROM {}{filter}",
        store.id
    ))
}

/// Lake timestamps read `2025-03-02 12:01:00.000`; CloudTrail's are RFC 3339.
fn rfc3339_time(lake: &str) -> Option<String> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(lake, f).ok())
        .map(|t| t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// One result row as a CloudTrail record, so the common parser reads it.
fn record(row: &HashMap<&str, &str>) -> Value {
    let get = |k: &str| row.get(k).copied().filter(|v| !v.is_empty());
    let mut rec = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            rec.insert(k.to_string(), v);
        }
    };
    let s = |k: &str| get(k).map(|v| json!(v));
    put("eventID", s("eventid"));
    put(
        "eventTime",
        get("eventtime").map(|t| json!(rfc3339_time(t).unwrap_or_else(|| t.to_string()))),
    );
    put("eventName", s("eventname"));
    put("eventType", s("eventtype"));
    put("eventSource", s("eventsource"));
    put("awsRegion", s("awsregion"));
    put("recipientAccountId", s("recipientaccountid"));
    put("sourceIPAddress", s("sourceipaddress"));
    put("userAgent", s("useragent"));
    put("errorCode", s("errorcode"));
    put("errorMessage", s("errormessage"));
    put("requestID", s("requestid"));
    let mut who = Map::new();
    for (col, field) in [
        ("principal_arn", "arn"),
        ("principal_type", "type"),
        ("invoked_by", "invokedBy"),
    ] {
        if let Some(v) = get(col) {
            who.insert(field.into(), json!(v));
        }
    }
    if let Some(issuer) = get("session_issuer_arn") {
        who.insert(
            "sessionContext".into(),
            json!({"sessionIssuer": {"arn": issuer}}),
        );
    }
    if !who.is_empty() {
        put("userIdentity", Some(Value::Object(who)));
    }
    let mut params = Map::new();
    if let Some(k) = get("request_key_id") {
        params.insert("keyId".into(), json!(k));
    }
    if let Some(p) = get("rotation_period_in_days").and_then(|p| p.parse::<i64>().ok()) {
        params.insert("rotationPeriodInDays".into(), json!(p));
    }
    if !params.is_empty() {
        put("requestParameters", Some(Value::Object(params)));
    }
    let mut details = Map::new();
    if let Some(k) = get("service_key_id") {
        details.insert("keyId".into(), json!(k));
    }
    if let Some(r) = get("rotation_type") {
        details.insert("rotationType".into(), json!(r));
    }
    if !details.is_empty() {
        put("serviceEventDetails", Some(Value::Object(details)));
    }
    put(
        "resources",
        get("resource_arn").map(|a| json!([{ "ARN": a }])),
    );
    Value::Object(rec)
}

/// A page of results: each row flattened to column → value.
struct Page {
    rows: Vec<HashMap<String, String>>,
    next_token: Option<String>,
    bytes_scanned: Option<i64>,
}

async fn start(client: &aws_sdk_cloudtrail::Client, sql: &str) -> Result<String, ErrorInfo> {
    let out = client
        .start_query()
        .query_statement(sql)
        .send()
        .await
        .map_err(|e| ErrorInfo::from_sdk(&e))?;
    out.query_id()
        .map(str::to_string)
        .ok_or_else(|| ErrorInfo::new("ResponseError", "StartQuery returned no QueryId"))
}

/// The next page of a query's results, waiting while it is queued or running.
async fn next_page(
    client: &aws_sdk_cloudtrail::Client,
    query_id: &str,
    token: Option<&str>,
) -> Result<Page, ErrorInfo> {
    let deadline = Instant::now() + QUERY_DEADLINE;
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
        match out.query_status() {
            Some(QueryStatus::Queued) | Some(QueryStatus::Running) => {
                if Instant::now() >= deadline {
                    return Err(ErrorInfo::new(
                        "TimedOut",
                        format!("query {query_id} still running after {QUERY_DEADLINE:?}"),
                    ));
                }
                sleep(poll).await;
                poll = (poll * 2).min(StdDuration::from_secs(10));
            }
            Some(QueryStatus::Finished) => {
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
                return Ok(Page {
                    rows,
                    next_token: out.next_token().map(str::to_string),
                    bytes_scanned: out.query_statistics().and_then(|s| s.bytes_scanned()),
                });
            }
            other => {
                let status = other.map_or("UnknownStatus", |s| s.as_str());
                return Err(ErrorInfo::new(
                    status,
                    out.error_message()
                        .unwrap_or("the query did not finish")
                        .to_string(),
                ));
            }
        }
    }
}

/// Reads the event data store named by `source` (`lake:ARN` or `lake:ID`)
/// into `collector` as one source.
///
/// A malformed source, account or region is an error; query failures are
/// recorded in the source's coverage.
pub async fn scan(
    config: &SdkConfig,
    source: &str,
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let store = parse_store(source)?;
    let events_query = events_sql(&store, opts)?;
    let days_query = days_sql(&store, opts)?;
    let region = match &store.region {
        Some(r) => r.clone(),
        None => aws::default_region(config)?,
    };
    let idx = collector.begin_source(source, "lake");
    collector.source_mut(idx).limits.push(
        "filtered in CloudTrail Lake: records_read counts the rows the query returned, bytes_read the bytes Lake scanned"
            .into(),
    );
    let client = aws::cloudtrail(config, &region);
    let label = format!("lake:{}", store.id);
    let bar = progress.bar("lake rows", 0);

    match run(&client, &events_query, |page| {
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
    .await
    {
        Ok(bytes) => collector.source_mut(idx).bytes_read += bytes,
        Err(e) => collector
            .source_mut(idx)
            .errors
            .push(format!("CloudTrail Lake events query on {}: {e}", store.id)),
    }

    let mut days: Vec<(String, String, NaiveDate)> = Vec::new();
    match run(&client, &days_query, |page| {
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
    .await
    {
        Ok(bytes) => collector.source_mut(idx).bytes_read += bytes,
        Err(e) => collector.source_mut(idx).errors.push(format!(
            "CloudTrail Lake day-coverage query on {}: {e}",
            store.id
        )),
    }
    for a in &opts.scope.accounts {
        for r in &opts.scope.regions {
            collector.note_scope(a, r);
        }
    }
    for (a, r, d) in days {
        collector.note_log_day(&a, &r, d);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs one query to the end, handing each page to `on_page`; returns the
/// bytes Lake scanned.
async fn run(
    client: &aws_sdk_cloudtrail::Client,
    sql: &str,
    mut on_page: impl FnMut(&Page),
) -> Result<u64, ErrorInfo> {
    let id = start(client, sql).await?;
    let mut token: Option<String> = None;
    let mut bytes = 0;
    loop {
        let page = next_page(client, &id, token.as_deref()).await?;
        on_page(&page);
        if let Some(b) = page.bytes_scanned {
            bytes = u64::try_from(b).unwrap_or(0);
        }
        match page.next_token {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => token = Some(t),
            _ => return Ok(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::{Scope, Window};
    use chrono::TimeZone;

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
