//! `athena:DATABASE.TABLE`: CloudTrail queried with Amazon Athena, over the
//! table AWS documents for a trail's S3 archive ("Create the table for
//! CloudTrail logs in Athena using partition projection": lower-case
//! columns, `useridentity` and `resources` as structs, `requestparameters`
//! and `serviceeventdetails` as JSON text, `eventtime` a string).
//!
//! An organization's archive outgrows one machine, so the keep rule of
//! [`super::record`] is pushed down as one query, and only its rows leave
//! Athena: KMS events with a kept name or an errorCode (every KMS event with
//! `--include-data-events`), in `--account`/`--region`, in the window, and
//! only the columns the `events` frame needs. The WHERE clause also restricts
//! every declared partition column (`--athena-partitions`) to the delivery
//! days of the window (the same days the `s3://` source lists), the accounts
//! and the regions, so Athena reads only those folders. A second query
//! (`SELECT DISTINCT` account, region, day) gives the day ledger.
//!
//! Each returned row is rebuilt into a CloudTrail record and decided on by
//! [`super::record::keep`], as every source's records are. The SQL selects
//! exactly what `keep` keeps from the same files when times have CloudTrail's
//! own shape, and a superset that `keep` narrows when they do not; tests run
//! it on a real engine (DuckDB, through sqlglot) over real logs to prove it.
//!
//! Trino functions relied on (Athena engine v3), each checked to transpile
//! faithfully to DuckDB by `tests/it/support/athena_duckdb.py`: `regexp_like`,
//! `json_extract`, `json_extract_scalar`, `json_format`, `filter` with a
//! lambda, `element_at`, `coalesce`, `concat`, `substr`.
//!
//! Execution: StartQueryExecution (with a ClientRequestToken, so an SDK
//! retry never starts a second, billed query), GetQueryExecution polled with
//! backoff, then the rows through GetQueryResults pages, or, for a large
//! result, the CSV Athena wrote to the output location. FAILED and CANCELLED
//! queries are errors with Athena's reason (exit 2); a query still queued or
//! running at `--athena-timeout` is stopped (StopQueryExecution) and the
//! coverage says so (exit 3); on Ctrl-C every running query is stopped
//! before the process exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_athena::types::{
    QueryExecution, QueryExecutionContext, QueryExecutionState, ResultConfiguration,
    ResultReuseByAgeConfiguration, ResultReuseConfiguration,
};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::time::{sleep, Instant};

use super::model::{AthenaSettings, PartitionRole};
use super::pushdown::{self, base_record, bounded_window, quoted, KMS_KEY_TYPE};
use super::reader::{self, ReadOptions};
use super::record::{keep, Kept, Record};
use super::s3::DayRange;
use super::{Collector, FileIssue, QueryRecord};
use crate::aws::{self, ErrorInfo};
use crate::error::{hinted, Error};
use crate::frames::time::show_time;
use crate::progress::Progress;

/// Rows per GetQueryResults page (the API's maximum).
const PAGE: i32 = 1000;

/// GetQueryResults pages read before a result counts as large and the rest
/// is read from the CSV in the output location: one GET instead of many
/// paced API calls.
const API_PAGES_BEFORE_CSV: usize = 10;

/// Athena's list price for SQL queries: $5.00 per TB scanned, each query
/// rounded up to the next megabyte with a 10 MB minimum
/// (<https://aws.amazon.com/athena/pricing/>, US East (N. Virginia); some
/// regions charge more). Bytes are counted in binary units, as AWS bills data.
pub const USD_PER_TB: f64 = 5.0;
const MB: u64 = 1 << 20;
const TB: f64 = (1u64 << 40) as f64;
const MIN_BILLED: u64 = 10 * MB;

/// What [`cost_usd`] assumes, written next to each cost.
pub const COST_BASIS: &str = "Athena list price $5.00 per TB scanned (US East, N. Virginia), rounded up to the MB, 10 MB minimum per query; DataScannedInBytes as Athena reported it";

/// The list-price cost of a query that scanned `bytes`.
pub fn cost_usd(bytes: u64) -> f64 {
    let billed = bytes.div_ceil(MB).saturating_mul(MB).max(MIN_BILLED);
    billed as f64 / TB * USD_PER_TB
}

/// A KMS key ARN, with the structure [`super::record::key_arn_parts`]
/// accepts, as a regex both engines read alike: `\A`/`\z` anchor the whole string (Trino's default regex library, Joni,
/// reads `^`/`$` as line anchors; Joni, Java and RE2 agree on `\A`/`\z`).
const KEY_ARN_RE: &str = r"\Aarn:aws[^:]*:kms:[^:]+:[0-9]{12}:key/[A-Za-z0-9-]{1,64}\z";

/// CloudTrail's own `eventTime` shape; for it, text order is time order.
const CANONICAL_TIME_RE: &str = r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\z";

/// `athena:DATABASE.TABLE`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub database: String,
    pub table: String,
}

impl Table {
    /// The table as written into SQL (the catalog goes in the query context).
    fn sql(&self) -> String {
        format!("\"{}\".\"{}\"", self.database, self.table)
    }
}

/// Glue names: lower case letters, digits, `_` (and `-` in database names
/// created outside Athena). Anything else is refused, so the name can be
/// quoted into SQL as is.
fn glue_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `athena:DATABASE.TABLE`.
pub fn parse_table(source: &str) -> Result<Table> {
    let usage = |problem: &str| {
        hinted(
            format!("{source}: {problem}"),
            "name the Glue database and table of your CloudTrail table, as in athena:security_logs.cloudtrail_logs_pp",
        )
    };
    let Some(rest) = source.strip_prefix("athena:") else {
        return Err(usage("not an athena: source"));
    };
    let Some((database, table)) = rest.split_once('.') else {
        return Err(usage("no table: write athena:DATABASE.TABLE"));
    };
    if !glue_name(database) || !glue_name(table) {
        return Err(usage(
            "not a database and table name (letters, digits, _ and - only)",
        ));
    }
    Ok(Table {
        database: database.to_ascii_lowercase(),
        table: table.to_ascii_lowercase(),
    })
}

/// Checks the settings before any call: names that go into requests.
fn check_settings(s: &AthenaSettings) -> Result<()> {
    if s.workgroup.is_empty()
        || s.workgroup.len() > 128
        || !s
            .workgroup
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(hinted(
            format!("--athena-workgroup {}: not a workgroup name", s.workgroup),
            "workgroup names are letters, digits, `.`, `_` and `-`, such as primary",
        ));
    }
    if s.catalog.is_empty() || s.catalog.len() > 256 || s.catalog.chars().any(char::is_control) {
        return Err(hinted(
            format!("--athena-catalog {}: not a catalog name", s.catalog),
            "the default is AwsDataCatalog (the Glue Data Catalog)",
        ));
    }
    if let Some(out) = &s.output {
        let bucket = out.strip_prefix("s3://").and_then(|r| r.split('/').next());
        if bucket.is_none_or(str::is_empty) {
            return Err(hinted(
                format!("--athena-output {out}: not an S3 location"),
                "give the results location as s3://BUCKET/PREFIX/",
            ));
        }
    }
    Ok(())
}

/// A column name quoted for SQL (checked to be an identifier when parsed).
fn ident(c: &str) -> String {
    format!("\"{c}\"")
}

/// A SQL expression that is the text of `doc`'s member `field` when that
/// member is a JSON string, else NULL: the reader keeps only string key ids
/// and rotation types, and `json_extract_scalar` alone would also give the
/// text of a number or a boolean.
fn json_string(doc: &str, field: &str) -> String {
    format!(
        "CASE WHEN json_format(json_extract({doc}, '$.{field}')) LIKE '\"%' THEN json_extract_scalar({doc}, '$.{field}') END"
    )
}

/// The partition columns restricted to the window's delivery days, the
/// accounts and the regions, so Athena reads only those folders. A day
/// folder is a delivery day, so the days are those the `s3://` source
/// lists: from the day before the window to `--late-delivery-days` after.
fn partition_conditions(s: &AthenaSettings, opts: &ReadOptions) -> Vec<String> {
    let p = &s.partitions;
    let days = DayRange::from_window(&opts.window, opts.late_delivery_days);
    let mut c = Vec::new();
    let range = |col: &str, first: Option<String>, last: Option<String>| match (first, last) {
        (Some(f), Some(l)) => Some(format!("{col} BETWEEN '{f}' AND '{l}'")),
        (Some(f), None) => Some(format!("{col} >= '{f}'")),
        (None, Some(l)) => Some(format!("{col} <= '{l}'")),
        (None, None) => None,
    };
    let fmt = |d: Option<NaiveDate>, f: &str| d.map(|d| d.format(f).to_string());
    if let Some(col) = p.column(PartitionRole::Date) {
        c.extend(range(
            &ident(col),
            fmt(days.first(), "%Y/%m/%d"),
            fmt(days.last(), "%Y/%m/%d"),
        ));
    }
    if let (Some(y), Some(m), Some(d)) = (
        p.column(PartitionRole::Year),
        p.column(PartitionRole::Month),
        p.column(PartitionRole::Day),
    ) {
        // The year alone prunes most folders; the whole date the rest.
        c.extend(range(
            &ident(y),
            fmt(days.first(), "%Y"),
            fmt(days.last(), "%Y"),
        ));
        c.extend(range(
            &format!("concat({}, '/', {}, '/', {})", ident(y), ident(m), ident(d)),
            fmt(days.first(), "%Y/%m/%d"),
            fmt(days.last(), "%Y/%m/%d"),
        ));
    }
    if !opts.scope.accounts.is_empty() {
        if let Some(col) = p.column(PartitionRole::Account) {
            c.push(format!(
                "{} IN ({})",
                ident(col),
                quoted(&opts.scope.accounts)
            ));
        }
    }
    if !opts.scope.regions.is_empty() {
        if let Some(col) = p.column(PartitionRole::Region) {
            c.push(format!(
                "{} IN ({})",
                ident(col),
                quoted(&opts.scope.regions)
            ));
        }
    }
    c
}

/// Does the table have a partition for the day, so the window prunes?
fn has_day_partition(s: &AthenaSettings) -> bool {
    let p = &s.partitions;
    p.column(PartitionRole::Date).is_some() || p.column(PartitionRole::Year).is_some()
}

/// The record's account as the reader takes it (recipientAccountId, else the
/// caller's account).
const RECORD_ACCOUNT: &str = "coalesce(recipientaccountid, useridentity.accountid)";

/// The window on `eventtime`, a string. CloudTrail writes it as
/// `2025-01-31T12:00:00Z`, whose text order is time order, so the bounds
/// are compared as text, rounded inwards to whole seconds. Any other shape
/// (fractions, an offset, garbage, none) is returned whatever its time, and
/// the reader decides: in the window, out of it, or a bad record that makes
/// the coverage partial, as it would be in a file.
fn time_condition(opts: &ReadOptions) -> Option<String> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let since = opts.window.since.map(|t| {
        let whole = t.trunc_subsecs(0);
        fmt(if whole < t {
            whole + chrono::Duration::seconds(1)
        } else {
            whole
        })
    });
    let until = opts.window.until.map(|t| fmt(t.trunc_subsecs(0)));
    let bound = match (since, until) {
        (Some(s), Some(u)) => format!("eventtime BETWEEN '{s}' AND '{u}'"),
        (Some(s), None) => format!("eventtime >= '{s}'"),
        (None, Some(u)) => format!("eventtime <= '{u}'"),
        (None, None) => return None,
    };
    Some(format!(
        "(eventtime IS NULL OR NOT regexp_like(eventtime, '{CANONICAL_TIME_RE}') OR {bound})"
    ))
}

/// The query for kept events: the keep rule as SQL, the columns the
/// `events` frame needs, and the key taken in the reader's order (the first
/// `resources` entry of type AWS::KMS::Key whose ARN is a key's, else
/// requestParameters.keyId, else serviceEventDetails.keyId, each only when
/// it is a JSON string).
pub fn events_sql(table: &Table, opts: &ReadOptions) -> Result<String> {
    pushdown::check_scope(opts)?;
    let s = &opts.athena;
    let mut c = partition_conditions(s, opts);
    c.push(format!("eventsource = '{}'", pushdown::KMS_SOURCE));
    c.extend(pushdown::kept_names_condition(opts, "errorcode <> ''"));
    if !opts.scope.accounts.is_empty() {
        c.push(format!(
            "{RECORD_ACCOUNT} IN ({})",
            quoted(&opts.scope.accounts)
        ));
    }
    if !opts.scope.regions.is_empty() {
        c.push(format!("awsregion IN ({})", quoted(&opts.scope.regions)));
    }
    c.extend(time_condition(opts));
    let key = format!(
        "coalesce(element_at(filter(resources, r -> r.type = '{KMS_KEY_TYPE}' AND regexp_like(r.arn, '{KEY_ARN_RE}')), 1).arn, {}, {}) AS key_ref",
        json_string("requestparameters", "keyId"),
        json_string("serviceeventdetails", "keyId"),
    );
    Ok(format!(
        "SELECT eventid, eventtime, eventname, eventtype, eventsource, awsregion, recipientaccountid, \
sharedeventid, useridentity.arn AS principal_arn, useridentity.type AS principal_type, \
useridentity.accountid AS principal_account_id, useridentity.invokedby AS invoked_by, \
useridentity.sessioncontext.sessionissuer.arn AS session_issuer_arn, \
sourceipaddress, useragent, errorcode, errormessage, requestid, {key}, \
json_format(json_extract(requestparameters, '$.rotationPeriodInDays')) AS rotation_period_json, \
{} AS rotation_type, \"$path\" AS log_file \
FROM {} WHERE {}",
        json_string("serviceeventdetails", "rotationType"),
        table.sql(),
        c.join(" AND ")
    ))
}

/// The query for the day ledger: which delivery days have a log, per account
/// and region. With account, region and date partitions it is the folders
/// that hold a file, as the `s3://` source sees them; without, the record's
/// account, region or day stands in.
pub fn days_sql(table: &Table, opts: &ReadOptions) -> Result<String> {
    pushdown::check_scope(opts)?;
    let s = &opts.athena;
    let p = &s.partitions;
    let account = p
        .column(PartitionRole::Account)
        .map(ident)
        .unwrap_or_else(|| RECORD_ACCOUNT.to_string());
    let region = p
        .column(PartitionRole::Region)
        .map(ident)
        .unwrap_or_else(|| "awsregion".to_string());
    let mut c = partition_conditions(s, opts);
    let day = if let Some(col) = p.column(PartitionRole::Date) {
        ident(col)
    } else if let (Some(y), Some(m), Some(d)) = (
        p.column(PartitionRole::Year),
        p.column(PartitionRole::Month),
        p.column(PartitionRole::Day),
    ) {
        format!("concat({}, '/', {}, '/', {})", ident(y), ident(m), ident(d))
    } else {
        // No day partition: the record's UTC day, in the window's days.
        let days = DayRange::from_window(&opts.window, 0);
        if let Some(f) = opts.window.since.or(days.first().map(|d| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or_default()
        })) {
            c.push(format!(
                "substr(eventtime, 1, 10) >= '{}'",
                f.format("%Y-%m-%d")
            ));
        }
        if let Some(u) = opts.window.until {
            c.push(format!(
                "substr(eventtime, 1, 10) <= '{}'",
                u.format("%Y-%m-%d")
            ));
        }
        "substr(eventtime, 1, 10)".to_string()
    };
    if !opts.scope.accounts.is_empty() && p.column(PartitionRole::Account).is_none() {
        c.push(format!("{account} IN ({})", quoted(&opts.scope.accounts)));
    }
    if !opts.scope.regions.is_empty() && p.column(PartitionRole::Region).is_none() {
        c.push(format!("{region} IN ({})", quoted(&opts.scope.regions)));
    }
    let filter = if c.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", c.join(" AND "))
    };
    Ok(format!(
        "SELECT DISTINCT {account} AS account, {region} AS region, {day} AS day FROM {}{filter}",
        table.sql()
    ))
}

/// A day as the ledger query returns it: `yyyy/MM/dd` or `yyyy-MM-dd`.
fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y/%m/%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .ok()
}

/// The S3 object a row was read from (Athena's `"$path"`), so a row names
/// its log file as a file source's does, and two copies of one event are
/// told apart by delivery time as the file reader tells them apart.
const LOG_FILE: &str = "log_file";

/// One result row of the events query as a CloudTrail record, so the
/// reader's parser and keep rule decide on it. Values keep the difference
/// between NULL (absent) and an empty string, as the file did.
fn record(get: &impl Fn(&str) -> Option<String>) -> Value {
    let owned: HashMap<&str, Option<String>> = [
        "eventid",
        "sharedeventid",
        "eventname",
        "eventtype",
        "eventsource",
        "awsregion",
        "recipientaccountid",
        "sourceipaddress",
        "useragent",
        "errorcode",
        "errormessage",
        "requestid",
        "principal_arn",
        "principal_type",
        "principal_account_id",
        "invoked_by",
        "session_issuer_arn",
    ]
    .into_iter()
    .map(|c| (c, get(c)))
    .collect();
    let lookup = |c: &str| owned.get(c).and_then(|v| v.as_deref());
    let mut rec = base_record(&lookup);
    // eventtime is the record's own text (the table declares a string), so
    // the reader judges it as it would in the file.
    if let Some(t) = get("eventtime") {
        rec.insert("eventTime".into(), json!(t));
    }
    let mut params = Map::new();
    // The key in the reader's order, already chosen by the query; a key ARN
    // reads the same from requestParameters as from resources.
    if let Some(k) = get("key_ref") {
        params.insert("keyId".into(), json!(k));
    }
    // The member's JSON text, so the reader's lenient number reading sees
    // the value as logged (180, "180" or 180.0).
    if let Some(p) =
        get("rotation_period_json").and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        params.insert("rotationPeriodInDays".into(), p);
    }
    if !params.is_empty() {
        rec.insert("requestParameters".into(), Value::Object(params));
    }
    if let Some(r) = get("rotation_type") {
        rec.insert("serviceEventDetails".into(), json!({ "rotationType": r }));
    }
    Value::Object(rec)
}

/// Rows of a result: column names, then each row's values (None is NULL).
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    fn index(&self) -> HashMap<&str, usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect()
    }
}

/// How a query ended, when it did not fail.
enum Ended {
    Succeeded,
    /// Still queued or running at the deadline; stopped.
    Stopped(String),
}

/// A query that Athena reported FAILED or CANCELLED, or that could not be
/// started or followed.
enum QueryError {
    /// Athena ran it and says why it did not finish: exit 2.
    Athena(String),
    /// The API refused or did not answer: the coverage says so.
    Api(ErrorInfo),
    /// The request itself is wrong for this account (no output location,
    /// no such workgroup): exit 2 with a hint.
    Invalid(ErrorInfo),
}

/// One Athena client and the settings it runs queries with.
struct Runner<'a> {
    client: aws_sdk_athena::Client,
    s3: aws_sdk_s3::Client,
    table: &'a Table,
    settings: &'a AthenaSettings,
    timeout: StdDuration,
}

/// A token unique to one StartQueryExecution: the SDK sends it again on a
/// retry, and Athena then returns the query already started instead of
/// starting (and billing) a second one.
fn request_token(sql: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(
        Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(sql.as_bytes());
    hex::encode(h.finalize())
}

impl Runner<'_> {
    async fn start(&self, sql: &str, deadline: Instant) -> Result<String, QueryError> {
        let mut context = QueryExecutionContext::builder()
            .database(&self.table.database)
            .catalog(&self.settings.catalog);
        if self.settings.catalog.is_empty() {
            context = context.set_catalog(None);
        }
        let token = request_token(sql);
        let mut backoff = StdDuration::from_secs(1);
        loop {
            // Evidence is read fresh, never from an earlier run's result
            // (result reuse off).
            let output = self
                .settings
                .output
                .as_ref()
                .map(|o| ResultConfiguration::builder().output_location(o).build());
            let sent = self
                .client
                .start_query_execution()
                .query_string(sql)
                .client_request_token(&token)
                .work_group(&self.settings.workgroup)
                .query_execution_context(context.clone().build())
                .set_result_configuration(output)
                .result_reuse_configuration(
                    ResultReuseConfiguration::builder()
                        .result_reuse_by_age_configuration(
                            ResultReuseByAgeConfiguration::builder()
                                .enabled(false)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await;
            match sent {
                Ok(out) => {
                    return out.query_execution_id().map(str::to_string).ok_or_else(|| {
                        QueryError::Api(ErrorInfo::new(
                            "ResponseError",
                            "StartQueryExecution returned no QueryExecutionId",
                        ))
                    })
                }
                Err(e) => {
                    let info = ErrorInfo::from_sdk(&e);
                    if info.code == "InvalidRequestException" {
                        return Err(QueryError::Invalid(info));
                    }
                    // Athena answers TooManyRequestsException past its
                    // quota of queries running at once; wait for a slot.
                    if !(info.is_throttling() || info.code == "TooManyRequestsException") {
                        return Err(QueryError::Api(info));
                    }
                    if Instant::now() + backoff >= deadline {
                        return Err(QueryError::Api(ErrorInfo::new(
                            info.code,
                            format!(
                                "{} (still refused at the --athena-timeout deadline)",
                                info.message
                            ),
                        )));
                    }
                    tracing::debug!("StartQueryExecution: {info}; retrying in {backoff:?}");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(StdDuration::from_secs(30));
                }
            }
        }
    }

    async fn describe(&self, id: &str) -> Result<QueryExecution, ErrorInfo> {
        let out = self
            .client
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| ErrorInfo::from_sdk(&e))?;
        out.query_execution().cloned().ok_or_else(|| {
            ErrorInfo::new(
                "ResponseError",
                "GetQueryExecution returned no QueryExecution",
            )
        })
    }

    /// Stops a query that is being abandoned and reads what it scanned.
    async fn stop(&self, id: &str) -> (String, Option<QueryExecution>) {
        pushdown::finished(id);
        let said = match self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
        {
            Ok(_) => format!("query {id} stopped (StopQueryExecution)"),
            // It may have ended in between; either way it no longer runs.
            Err(e) => format!("StopQueryExecution {id}: {}", ErrorInfo::from_sdk(&e)),
        };
        (said, self.describe(id).await.ok())
    }

    /// Runs `sql` to its end; on success, reads its rows and hands them to
    /// `on_rows` in batches. Returns the query's record for the coverage.
    async fn run(
        &self,
        purpose: &str,
        sql: &str,
        mut on_rows: impl FnMut(&Rows),
    ) -> (QueryRecord, Result<Ended, QueryError>) {
        let mut rec = QueryRecord {
            engine: "athena".into(),
            purpose: purpose.into(),
            sql: sql.into(),
            cost_basis: COST_BASIS.into(),
            ..QueryRecord::default()
        };
        let deadline = Instant::now() + self.timeout;
        let id = match self.start(sql, deadline).await {
            Ok(id) => id,
            Err(e) => {
                rec.state = "NOT_STARTED".into();
                return (rec, Err(e));
            }
        };
        rec.query_id = id.clone();
        let (client, qid) = (self.client.clone(), id.clone());
        pushdown::started(
            &id,
            Arc::new(move || {
                let (client, id) = (client.clone(), qid.clone());
                Box::pin(async move {
                    match client
                        .stop_query_execution()
                        .query_execution_id(&id)
                        .send()
                        .await
                    {
                        Ok(_) => format!("stopped Athena query {id}"),
                        Err(e) => format!(
                            "StopQueryExecution {id} failed: {}",
                            ErrorInfo::from_sdk(&e)
                        ),
                    }
                })
            }),
        );
        let mut poll = StdDuration::from_millis(250);
        let execution = loop {
            let exec = match self.describe(&id).await {
                Ok(x) => x,
                Err(e) => {
                    let (said, _) = self.stop(&id).await;
                    rec.state = "UNKNOWN".into();
                    return (
                        rec,
                        Err(QueryError::Api(ErrorInfo::new(
                            e.code,
                            format!("{} ({said})", e.message),
                        ))),
                    );
                }
            };
            let state = exec.status().and_then(|s| s.state()).cloned();
            match state {
                Some(QueryExecutionState::Queued) | Some(QueryExecutionState::Running) | None => {
                    let now = Instant::now();
                    if now >= deadline {
                        let (said, last) = self.stop(&id).await;
                        fill_stats(&mut rec, last.as_ref().unwrap_or(&exec));
                        rec.state = last
                            .as_ref()
                            .and_then(|x| x.status()?.state().map(|s| s.as_str().to_string()))
                            .unwrap_or_else(|| "CANCELLED".into());
                        return (
                            rec,
                            Ok(Ended::Stopped(format!(
                                "query {id} was still queued or running after --athena-timeout ({} s): {said}",
                                self.timeout.as_secs()
                            ))),
                        );
                    }
                    sleep(poll.min(deadline - now)).await;
                    poll = (poll * 2).min(StdDuration::from_secs(5));
                }
                Some(QueryExecutionState::Succeeded) => break exec,
                Some(other) => {
                    pushdown::finished(&id);
                    fill_stats(&mut rec, &exec);
                    rec.state = other.as_str().to_string();
                    return (rec, Err(QueryError::Athena(athena_reason(&id, &exec))));
                }
            }
        };
        pushdown::finished(&id);
        fill_stats(&mut rec, &execution);
        rec.state = "SUCCEEDED".into();
        match self.read(&id, &mut rec, &mut on_rows).await {
            Ok(()) => (rec, Ok(Ended::Succeeded)),
            Err(e) => (rec, Err(QueryError::Api(e))),
        }
    }

    /// Reads a succeeded query's rows: GetQueryResults pages, and past
    /// [`API_PAGES_BEFORE_CSV`] pages the rest from the result CSV in S3
    /// (falling back to pages when it cannot be read).
    async fn read(
        &self,
        id: &str,
        rec: &mut QueryRecord,
        on_rows: &mut impl FnMut(&Rows),
    ) -> Result<(), ErrorInfo> {
        let mut token: Option<String> = None;
        let mut columns: Option<Vec<String>> = None;
        let mut pages = 0usize;
        let mut csv_tried = false;
        // Rows the CSV already handed on before it failed: the pages that
        // follow start with them.
        let mut already: u64 = 0;
        rec.results_read_from = "GetQueryResults".into();
        loop {
            if pages >= API_PAGES_BEFORE_CSV && token.is_some() && !csv_tried {
                csv_tried = true;
                if let (Some(loc), Some(cols)) = (rec.output_location.clone(), columns.as_ref()) {
                    match self.read_csv(&loc, cols, rec.rows, on_rows).await {
                        Ok(n) => {
                            rec.rows += n;
                            rec.results_read_from = format!(
                                "GetQueryResults ({pages} pages), then the result CSV {loc}"
                            );
                            return Ok(());
                        }
                        Err((n, e)) => {
                            rec.rows += n;
                            already = n;
                            tracing::info!("reading {loc}: {e}; paging GetQueryResults instead");
                            rec.results_read_from = format!(
                                "GetQueryResults (the result CSV {loc} could not be read: {e})"
                            );
                        }
                    }
                }
            }
            let out = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ErrorInfo::from_sdk(&e))?;
            let first = columns.is_none();
            let set = out.result_set();
            let names: Vec<String> = set
                .and_then(|s| s.result_set_metadata())
                .map(|m| {
                    m.column_info()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let mut rows: Vec<Vec<Option<String>>> = set
                .map(|s| {
                    s.rows()
                        .iter()
                        .map(|r| {
                            r.data()
                                .iter()
                                .map(|d| d.var_char_value().map(str::to_string))
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            if first {
                // The first page starts with the header row (the column
                // labels); the metadata names them too.
                let header: Option<Vec<String>> = rows
                    .first()
                    .map(|r| r.iter().map(|v| v.clone().unwrap_or_default()).collect());
                let cols = if names.is_empty() {
                    header.clone().unwrap_or_default()
                } else {
                    names
                };
                if header.as_ref() == Some(&cols) {
                    rows.remove(0);
                }
                columns = Some(cols);
            }
            let drop = usize::try_from(already)
                .unwrap_or(usize::MAX)
                .min(rows.len());
            rows.drain(..drop);
            already -= drop as u64;
            let batch = Rows {
                columns: columns.clone().unwrap_or_default(),
                rows,
            };
            rec.rows += batch.rows.len() as u64;
            on_rows(&batch);
            pages += 1;
            match out.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_string())
                }
                _ => return Ok(()),
            }
        }
    }

    /// Streams the result CSV at `loc`, skipping the header and the `skip`
    /// rows already read through the API; returns the rows handed on, or
    /// why it stopped and how many it had handed on by then.
    async fn read_csv(
        &self,
        loc: &str,
        columns: &[String],
        skip: u64,
        on_rows: &mut impl FnMut(&Rows),
    ) -> Result<u64, (u64, String)> {
        let (bucket, key) = loc
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| (0, format!("not an S3 location: {loc}")))?;
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| (0, ErrorInfo::from_sdk(&e).to_string()))?;
        let mut body = out.body;
        let mut parser = CsvParser::default();
        let mut seen: u64 = 0;
        let mut handed: u64 = 0;
        let mut header_done = false;
        let mut emit = |records: Vec<Vec<Option<String>>>,
                        header_done: &mut bool,
                        seen: &mut u64|
         -> Result<u64, String> {
            let mut batch = Vec::new();
            for r in records {
                if !*header_done {
                    *header_done = true;
                    let names: Vec<String> =
                        r.iter().map(|v| v.clone().unwrap_or_default()).collect();
                    if names != columns {
                        return Err(format!(
                            "its header ({}) is not the query's columns",
                            names.join(",")
                        ));
                    }
                    continue;
                }
                *seen += 1;
                if *seen > skip {
                    batch.push(r);
                }
            }
            let n = batch.len() as u64;
            if n > 0 {
                on_rows(&Rows {
                    columns: columns.to_vec(),
                    rows: batch,
                });
            }
            Ok(n)
        };
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err((handed, format!("reading the body: {e}"))),
            };
            let records = parser.push(&chunk);
            handed += emit(records, &mut header_done, &mut seen).map_err(|e| (handed, e))?;
        }
        let records = parser.finish().map_err(|e| (handed, e))?;
        handed += emit(records, &mut header_done, &mut seen).map_err(|e| (handed, e))?;
        Ok(handed)
    }
}

/// FAILED or CANCELLED, said with Athena's own words.
fn athena_reason(id: &str, exec: &QueryExecution) -> String {
    let status = exec.status();
    let state = status
        .and_then(|s| s.state())
        .map_or("UNKNOWN", |s| s.as_str());
    let reason = status
        .and_then(|s| s.state_change_reason())
        .unwrap_or("Athena gave no reason");
    let mut text = format!("Athena query {id} {state}: {reason}");
    if let Some(err) = status.and_then(|s| s.athena_error()) {
        let category = match err.error_category() {
            Some(1) => "system error",
            Some(2) => "user error",
            Some(3) => "other error",
            _ => "error",
        };
        text.push_str(&format!(
            " ({category}, type {}{})",
            err.error_type().map_or("-".into(), |t| t.to_string()),
            if err.retryable() { ", retryable" } else { "" }
        ));
        if let Some(m) = err.error_message().filter(|m| *m != reason) {
            text.push_str(&format!(": {m}"));
        }
    }
    text
}

fn fill_stats(rec: &mut QueryRecord, exec: &QueryExecution) {
    let to_u64 = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    if let Some(st) = exec.statistics() {
        rec.data_scanned_bytes = to_u64(st.data_scanned_in_bytes());
        rec.engine_time_ms = to_u64(st.engine_execution_time_in_millis());
        rec.total_time_ms = to_u64(st.total_execution_time_in_millis());
    }
    rec.cost_usd = rec.data_scanned_bytes.map(cost_usd);
    rec.output_location = exec
        .result_configuration()
        .and_then(|c| c.output_location())
        .map(str::to_string);
}

/// Athena's result CSV, fed in chunks: RFC 4180, every value quoted, a NULL
/// written as an empty unquoted field (so `""` is an empty string).
#[derive(Default)]
struct CsvParser {
    pending: Vec<u8>,
}

impl CsvParser {
    /// Complete records in what has arrived so far.
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<Option<String>>> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        let mut in_quotes = false;
        let mut i = 0;
        while i < self.pending.len() {
            match self.pending[i] {
                b'"' => in_quotes = !in_quotes,
                b'\n' if !in_quotes => {
                    out.push(parse_csv_record(&self.pending[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        self.pending.drain(..start);
        out
    }

    /// The last record, when the file does not end with a newline.
    fn finish(&mut self) -> Result<Vec<Vec<Option<String>>>, String> {
        let rest = std::mem::take(&mut self.pending);
        if rest.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return Ok(Vec::new());
        }
        if rest.iter().filter(|b| **b == b'"').count() % 2 == 1 {
            return Err("the CSV ends inside a quoted value".into());
        }
        Ok(vec![parse_csv_record(&rest)])
    }
}

/// One CSV record (no trailing newline) → its fields.
fn parse_csv_record(line: &[u8]) -> Vec<Option<String>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let mut value = Vec::new();
            i += 1;
            while i < line.len() {
                if line[i] == b'"' {
                    if line.get(i + 1) == Some(&b'"') {
                        value.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value.push(line[i]);
                i += 1;
            }
            // Anything between the closing quote and the comma is kept, as
            // a lenient reader does.
            while i < line.len() && line[i] != b',' {
                value.push(line[i]);
                i += 1;
            }
            fields.push(Some(String::from_utf8_lossy(&value).into_owned()));
        } else {
            let end = line[i.min(line.len())..]
                .iter()
                .position(|b| *b == b',')
                .map_or(line.len(), |p| i + p);
            let raw = &line[i.min(line.len())..end];
            fields.push((!raw.is_empty()).then(|| String::from_utf8_lossy(raw).into_owned()));
            i = end;
        }
        if i < line.len() && line[i] == b',' {
            i += 1;
            continue;
        }
        break;
    }
    fields
}

/// Reads the Athena table named by `source` (`athena:DATABASE.TABLE`) into
/// `collector` as one source.
///
/// A malformed source, flag, account or region, a request Athena refuses as
/// invalid, and a query Athena reports FAILED or CANCELLED are errors (exit
/// 2); a query stopped at the deadline or an API failure is recorded in the
/// source's coverage (partial, exit 3).
pub async fn scan(
    config: &SdkConfig,
    source: &str,
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let table = parse_table(source)?;
    let settings = &opts.athena;
    check_settings(settings)?;
    let (window, defaulted) = bounded_window(&opts.window, Utc::now());
    let query_opts = ReadOptions {
        window,
        ..opts.clone()
    };
    let events_query = events_sql(&table, &query_opts)?;
    let days_query = days_sql(&table, &query_opts)?;
    let region = aws::default_region(config)?;
    let idx = collector.begin_source(source, "athena");
    {
        let src = collector.source_mut(idx);
        src.limits.push(
            "filtered in Athena: records_read counts the rows the query returned, bytes_read the bytes Athena scanned (queries lists each query, its SQL and its cost)"
                .into(),
        );
        if defaulted {
            src.limits.push(format!(
                "no --since: the queries read from {}, the default audit window ({} days), not the whole table",
                show_time(window.since),
                crate::policy::Policy::default().audit_window_days
            ));
        }
        if !has_day_partition(settings) {
            src.limits.push(
                "--athena-partitions names no date (or year/month/day) partition: Athena reads, and bills, every file of the table"
                    .into(),
            );
        } else {
            src.limits.push(format!(
                "partitions are delivery days: files delivered more than --late-delivery-days ({}) after the window are not read",
                opts.late_delivery_days
            ));
        }
    }
    let runner = Runner {
        client: aws::athena(config, &region),
        s3: aws::s3(config, &region),
        table: &table,
        settings,
        timeout: StdDuration::from_secs(settings.timeout_secs.max(1)),
    };
    let label = format!("athena:{}.{}", table.database, table.table);
    let bar = progress.bar("athena rows", 0);

    let (query, ended) = runner
        .run("events", &events_query, |rows| {
            bar.inc(rows.rows.len() as u64);
            let index = rows.index();
            for row in &rows.rows {
                let get = |c: &str| index.get(c).and_then(|&i| row.get(i).cloned().flatten());
                take_row(collector, idx, &label, &get, opts);
            }
        })
        .await;
    let events_ok = settle(collector, idx, &table, query, ended)?;

    let mut days: Vec<(String, String, NaiveDate)> = Vec::new();
    let mut bad_days: Vec<String> = Vec::new();
    if events_ok {
        let (query, ended) = runner
            .run("days", &days_query, |rows| {
                let index = rows.index();
                for row in &rows.rows {
                    let get = |c: &str| index.get(c).and_then(|&i| row.get(i).cloned().flatten());
                    // A file with no account or region is no account's log.
                    if let (Some(a), Some(r), Some(d)) = (get("account"), get("region"), get("day"))
                    {
                        match parse_day(&d) {
                            Some(day) => days.push((a, r, day)),
                            None => bad_days.push(d),
                        }
                    }
                }
            })
            .await;
        if settle(collector, idx, &table, query, ended)? && days.is_empty() && bad_days.is_empty() {
            // No file in any partition of the window: that is no evidence,
            // not a quiet trail.
            collector.source_mut(idx).errors.push(format!(
                "Athena day-coverage query on {label}: no log file in the window's partitions"
            ));
        }
    } else {
        collector.source_mut(idx).errors.push(format!(
            "Athena day-coverage query on {}: not run, the events query did not finish",
            label
        ));
    }
    if let Some(d) = bad_days.first() {
        collector.source_mut(idx).errors.push(format!(
            "Athena day-coverage query on {label}: {} day value(s) are not yyyy/MM/dd (first: `{d}`): check --athena-partitions",
            bad_days.len()
        ));
    }
    super::pushdown::note_days(collector, opts, days);
    bar.finish_and_clear();
    Ok(())
}

/// One row of the events query into the collector: rebuilt as a record,
/// judged by the reader's keep rule, and filed under its log file with the
/// file's delivery time, as the file reader files a record.
fn take_row(
    collector: &mut Collector,
    idx: usize,
    label: &str,
    get: &impl Fn(&str) -> Option<String>,
    opts: &ReadOptions,
) {
    let file = get(LOG_FILE);
    let source = file.clone().unwrap_or_else(|| label.to_string());
    let delivered = file
        .as_deref()
        .and_then(reader::aws_log_name)
        .map(|n| n.delivered);
    collector.source_mut(idx).records_read += 1;
    let text = record(get).to_string();
    let bad = |why: String| FileIssue {
        path: source.clone(),
        reason: format!(
            "record {}: {why}",
            get("eventid").unwrap_or_else(|| "(no eventID)".into())
        ),
    };
    match serde_json::from_str::<Record>(&text) {
        Ok(rec) => match keep(&rec, &source, opts) {
            Kept::Row(row) => collector.add_rows_delivered(idx, [*row], delivered),
            Kept::Dropped => {}
            Kept::BadTime(p) => {
                let src = collector.source_mut(idx);
                src.records_bad_time += 1;
                src.files_corrupt.push(bad(p.to_string()));
            }
        },
        Err(e) => collector
            .source_mut(idx)
            .files_corrupt
            .push(bad(format!("invalid JSON: {e}"))),
    }
}

/// Puts a query in the source's coverage; an error for a query Athena
/// failed or cancelled, or a request it refused. Returns whether the query
/// read its whole result.
fn settle(
    collector: &mut Collector,
    idx: usize,
    table: &Table,
    query: QueryRecord,
    ended: Result<Ended, QueryError>,
) -> Result<bool> {
    let src = collector.source_mut(idx);
    src.bytes_read += query.data_scanned_bytes.unwrap_or(0);
    let what = format!(
        "Athena {} query on {}.{}",
        query.purpose, table.database, table.table
    );
    let id = query.query_id.clone();
    src.queries.push(query);
    match ended {
        Ok(Ended::Succeeded) => Ok(true),
        Ok(Ended::Stopped(why)) => {
            src.errors.push(format!(
                "{what}: {why}; nothing of its result is read: narrow the window (--since/--until) or raise --athena-timeout"
            ));
            Ok(false)
        }
        Err(QueryError::Api(e)) => {
            let id = if id.is_empty() { String::new() } else { format!(" ({id})") };
            src.errors.push(format!("{what}{id}: {e}"));
            Ok(false)
        }
        Err(QueryError::Athena(reason)) => Err(Error::fatal(
            format!("{what}: {reason}"),
            "check that the table is AWS's CloudTrail table and that --athena-partitions names its partition columns (SHOW CREATE TABLE in the Athena console shows both)",
        )),
        Err(QueryError::Invalid(e)) => Err(Error::aws(
            format!("{what}: Athena refused the query"),
            e,
            "when the workgroup sets no query result location, give one with --athena-output s3://BUCKET/PREFIX/; check --athena-workgroup and --athena-catalog",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::{AthenaPartitions, Scope, Window};
    use chrono::TimeZone;

    fn opts(partitions: &str) -> ReadOptions {
        ReadOptions {
            window: Window {
                since: Some(Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap()),
                until: Some(Utc.with_ymd_and_hms(2025, 3, 4, 23, 59, 59).unwrap()),
            },
            athena: AthenaSettings {
                partitions: AthenaPartitions::parse(partitions).unwrap(),
                ..AthenaSettings::default()
            },
            ..ReadOptions::default()
        }
    }

    #[test]
    fn partition_roles_are_named_once_each() {
        let p = AthenaPartitions::parse("region=Region, date=timestamp,account=account").unwrap();
        assert_eq!(p.column(PartitionRole::Region), Some("region"));
        assert_eq!(p.column(PartitionRole::Date), Some("timestamp"));
        assert_eq!(
            AthenaPartitions::parse("").unwrap(),
            AthenaPartitions::default()
        );
        for (bad, why) in [
            ("date", "ROLE=COLUMN"),
            ("week=w", "unknown partition role"),
            ("date=a,date=b", "named twice"),
            ("date=a,account=a", "two roles"),
            ("date=\"t\"", "not a column name"),
            ("date=1x", "not a column name"),
            ("year=y,day=d", "go together"),
        ] {
            let err = AthenaPartitions::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn tables_are_database_dot_table() {
        assert_eq!(
            parse_table("athena:Security_Logs.cloudtrail_logs_pp").unwrap(),
            Table {
                database: "security_logs".into(),
                table: "cloudtrail_logs_pp".into()
            }
        );
        for bad in [
            "athena:",
            "athena:db",
            "athena:db.",
            "athena:.t",
            "athena:db.t;DROP",
            "athena:db.t\"x",
            "athena:a b.c",
            "lake:x",
        ] {
            let err = parse_table(bad).unwrap_err();
            assert!(crate::error::render(&err).contains("hint: "), "{bad}");
        }
    }

    #[test]
    fn partitions_are_pruned_to_the_delivery_days_accounts_and_regions() {
        let mut o = opts("date=timestamp,account=account,region=region");
        o.scope = Scope {
            accounts: vec!["111122223333".into()],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
        };
        let t = parse_table("athena:db.ct").unwrap();
        let sql = events_sql(&t, &o).unwrap();
        // The day before --since to --late-delivery-days (2) after --until.
        assert!(
            sql.contains("\"timestamp\" BETWEEN '2025/03/01' AND '2025/03/06'"),
            "{sql}"
        );
        assert!(sql.contains("\"account\" IN ('111122223333')"), "{sql}");
        assert!(
            sql.contains("\"region\" IN ('us-east-1', 'eu-west-1')"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "coalesce(recipientaccountid, useridentity.accountid) IN ('111122223333')"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("awsregion IN ('us-east-1', 'eu-west-1')"),
            "{sql}"
        );
        assert!(
            sql.contains("eventtime BETWEEN '2025-03-02T00:00:00Z' AND '2025-03-04T23:59:59Z'"),
            "{sql}"
        );
        assert!(sql.contains("FROM \"db\".\"ct\" WHERE "), "{sql}");

        let days = days_sql(&t, &o).unwrap();
        assert!(
            days.starts_with(
                "SELECT DISTINCT \"account\" AS account, \"region\" AS region, \"timestamp\" AS day FROM \"db\".\"ct\" WHERE \"timestamp\" BETWEEN '2025/03/01' AND '2025/03/06'"
            ),
            "{days}"
        );

        let split = events_sql(&t, &opts("year=year,month=month,day=day")).unwrap();
        assert!(
            split.contains("\"year\" BETWEEN '2025' AND '2025'"),
            "{split}"
        );
        assert!(
            split.contains("concat(\"year\", '/', \"month\", '/', \"day\") BETWEEN '2025/03/01' AND '2025/03/06'"),
            "{split}"
        );
    }

    #[test]
    fn the_filter_is_the_keep_rule() {
        let t = parse_table("athena:db.ct").unwrap();
        let sql = events_sql(&t, &opts("date=timestamp")).unwrap();
        assert!(sql.contains("eventsource = 'kms.amazonaws.com'"), "{sql}");
        assert!(
            sql.contains("(eventname IN ('RotateKey', 'RotateKeyOnDemand'"),
            "{sql}"
        );
        assert!(sql.contains("OR errorcode <> '')"), "{sql}");
        let mut all = opts("date=timestamp");
        all.include_data_events = true;
        let sql = events_sql(&t, &all).unwrap();
        assert!(!sql.contains("eventname IN"), "{sql}");
        // Key: resources first, then requestParameters, then serviceEventDetails.
        let r = sql.find("filter(resources").unwrap();
        let p = sql
            .find("json_extract_scalar(requestparameters, '$.keyId')")
            .unwrap();
        let s = sql
            .find("json_extract_scalar(serviceeventdetails, '$.keyId')")
            .unwrap();
        assert!(r < p && p < s, "{sql}");
    }

    #[test]
    fn window_bounds_round_inwards_to_whole_seconds() {
        let mut o = opts("");
        o.window = Window {
            since: Some(
                Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap()
                    + chrono::Duration::milliseconds(500),
            ),
            until: Some(
                Utc.with_ymd_and_hms(2025, 3, 4, 23, 59, 59).unwrap()
                    + chrono::Duration::milliseconds(999),
            ),
        };
        let c = time_condition(&o).unwrap();
        assert!(
            c.contains("BETWEEN '2025-03-02T00:00:01Z' AND '2025-03-04T23:59:59Z'"),
            "{c}"
        );
        assert!(
            c.starts_with("(eventtime IS NULL OR NOT regexp_like(eventtime, "),
            "{c}"
        );
    }

    #[test]
    fn no_day_partition_is_said_and_still_bounded() {
        let t = parse_table("athena:db.ct").unwrap();
        let o = opts("account=account");
        assert!(!has_day_partition(&o.athena));
        let days = days_sql(&t, &o).unwrap();
        assert!(
            days.contains("substr(eventtime, 1, 10) >= '2025-03-02'"),
            "{days}"
        );
        assert!(
            days.contains("substr(eventtime, 1, 10) <= '2025-03-04'"),
            "{days}"
        );
    }

    #[test]
    fn settings_that_go_into_requests_are_checked() {
        let bad = [
            AthenaSettings {
                workgroup: "wg; x".into(),
                ..AthenaSettings::default()
            },
            AthenaSettings {
                output: Some("bucket/prefix".into()),
                ..AthenaSettings::default()
            },
            AthenaSettings {
                output: Some("s3:///prefix".into()),
                ..AthenaSettings::default()
            },
        ];
        for s in bad {
            assert!(check_settings(&s).is_err(), "{s:?}");
        }
        assert!(check_settings(&AthenaSettings::default()).is_ok());
    }

    #[test]
    fn cost_is_rounded_up_to_the_megabyte_with_a_ten_megabyte_minimum() {
        assert_eq!(cost_usd(0), cost_usd(10 * MB));
        assert!((cost_usd(1 << 40) - 5.0).abs() < 1e-12);
        assert!(cost_usd(10 * MB + 1) > cost_usd(10 * MB));
        assert_eq!(cost_usd(10 * MB + 1), cost_usd(11 * MB));
    }

    #[test]
    fn rows_become_records_the_reader_judges() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let cells: HashMap<&str, Option<&str>> = [
            ("eventid", Some("e1")),
            ("eventtime", Some("2025-03-02T12:01:00Z")),
            ("eventname", Some("EnableKeyRotation")),
            ("eventsource", Some("kms.amazonaws.com")),
            ("awsregion", Some("us-east-1")),
            ("recipientaccountid", Some("111122223333")),
            ("useragent", Some("")),
            ("errorcode", None),
            ("key_ref", Some(arn)),
            ("rotation_period_json", Some("180.0")),
        ]
        .into_iter()
        .collect();
        let get = |c: &str| cells.get(c).copied().flatten().map(str::to_string);
        let rec = record(&get);
        assert_eq!(rec["userAgent"], "", "an empty string stays one");
        assert!(rec.get("errorCode").is_none());
        let row = reader::parse_record(&rec.to_string(), "athena:db.t", &ReadOptions::default())
            .unwrap()
            .unwrap();
        assert_eq!(row.key_arn.as_deref(), Some(arn));
        assert_eq!(row.rotation_period_days, Some(180));
        assert_eq!(row.user_agent.as_deref(), Some(""));

        // A time the reader cannot place is a bad record, as in a file.
        let bad: HashMap<&str, Option<&str>> = [
            ("eventsource", Some("kms.amazonaws.com")),
            ("eventname", Some("RotateKey")),
            ("eventtime", Some("2025-03-02 12:01:00")),
        ]
        .into_iter()
        .collect();
        let get = |c: &str| bad.get(c).copied().flatten().map(str::to_string);
        assert!(
            reader::parse_record(&record(&get).to_string(), "a", &ReadOptions::default()).is_err()
        );
    }

    #[test]
    fn the_result_csv_tells_null_from_empty_across_chunks() {
        let text = b"\"eventid\",\"useragent\",\"errorcode\"\n\"a\",\"\",\n\"b,\"\"q\"\"\nline\",\"x\",\"E\"\n\"c\",,\"\"";
        for split in [1, 3, 7, text.len()] {
            let mut p = CsvParser::default();
            let mut rows = Vec::new();
            for chunk in text.chunks(split) {
                rows.extend(p.push(chunk));
            }
            rows.extend(p.finish().unwrap());
            assert_eq!(rows.len(), 4, "split {split}");
            assert_eq!(rows[1], vec![Some("a".into()), Some(String::new()), None]);
            assert_eq!(
                rows[2],
                vec![
                    Some("b,\"q\"\nline".into()),
                    Some("x".into()),
                    Some("E".into())
                ]
            );
            assert_eq!(rows[3], vec![Some("c".into()), None, Some(String::new())]);
        }
        let mut p = CsvParser::default();
        p.push(b"\"open");
        assert!(p.finish().is_err());
    }
}
