//! A CloudTrail LookupEvents endpoint for tests, because moto has none.
//!
//! It speaks the real AWS JSON 1.1 protocol (POST /, `X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`,
//! `application/x-amz-json-1.1`), answers from events the test gives it
//! (AWS's documented example records), pages with NextToken, can answer
//! ThrottlingException once per lookup, and records every request with its
//! arrival time and signing region so a test can check the request pattern.
//! It also answers STS GetCallerIdentity (query protocol), which kmsrot asks
//! to know whose event history it read, and CloudTrail Lake's StartQuery and
//! GetQueryResults: it does not run SQL, it answers as Lake would for the
//! two queries kmsrot sends (kept KMS events in the window; distinct days
//! per account and region), from the same events, and records each
//! statement so the test can check what was pushed down.
//!
//! For runs over several accounts it also answers STS AssumeRole (query
//! protocol, the documented response shape): the credentials it hands out
//! name the role's account, so a request signed with them is that account's,
//! GetCallerIdentity answers it, and LookupEvents answers only the events
//! that account's trail recorded (`recipientAccountId`). Roles in
//! `refuse_accounts` are refused with STS's AccessDenied.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use serde_json::{json, Value};

/// An event as the event history of `region` holds it.
#[derive(Debug, Clone)]
pub struct FixtureEvent {
    pub region: String,
    /// The full CloudTrail record (becomes `CloudTrailEvent`).
    pub record: Value,
}

#[derive(Debug, Clone)]
pub struct FixtureOptions {
    /// The account STS reports.
    pub account: String,
    /// Events per page; AWS may return fewer than MaxResults, so a small
    /// page makes paging visible.
    pub page_size: usize,
    /// (region, attribute value) pairs whose first request is throttled.
    pub throttle_once: Vec<(String, String)>,
    /// Regions whose LookupEvents and ListPublicKeys answer
    /// AccessDeniedException, as an SCP or a missing permission does.
    pub deny_regions: Vec<String>,
    /// ListPublicKeys: (region, key entry as AWS returns it).
    pub public_keys: Vec<(String, Value)>,
    /// Lake: GetQueryResults answers RUNNING this many times per query
    /// before FINISHED, and pages rows by `page_size`.
    pub lake_running_polls: usize,
    /// Lake: StartQuery answers MaxConcurrentQueriesException this many
    /// times before it accepts a query.
    pub lake_busy_starts: usize,
    /// Lake: GetQueryResults answers this error code (HTTP 400) once the
    /// query has stopped running.
    pub lake_results_error: Option<String>,
    /// Lake: the status a query ends with instead of FINISHED (`TIMED_OUT`
    /// returns the rows it has, as Lake does).
    pub lake_end_status: Option<String>,
    /// Accounts whose role AssumeRole refuses (403 AccessDenied).
    pub refuse_accounts: Vec<String>,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        FixtureOptions {
            account: "111122223333".into(),
            page_size: 50,
            throttle_once: vec![],
            deny_regions: vec![],
            public_keys: vec![],
            lake_running_polls: 0,
            lake_busy_starts: 0,
            lake_results_error: None,
            lake_end_status: None,
            refuse_accounts: vec![],
        }
    }
}

/// One CloudTrail Lake call as received.
#[derive(Debug, Clone)]
pub struct LakeRequest {
    pub at: Instant,
    /// `StartQuery`, `GetQueryResults` or `CancelQuery`.
    pub operation: String,
    pub query_id: String,
    pub statement: Option<String>,
    pub next_token: Option<String>,
    pub status: String,
    pub rows_returned: usize,
}

/// One ListPublicKeys request as received.
#[derive(Debug, Clone)]
pub struct PublicKeysRequest {
    pub region: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub next_token: Option<String>,
    pub keys_returned: usize,
}

/// One LookupEvents request as received.
#[derive(Debug, Clone)]
pub struct LookupRequest {
    pub at: Instant,
    pub region: String,
    pub attribute_key: String,
    pub attribute_value: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub max_results: Option<u64>,
    pub next_token: Option<String>,
    pub throttled: bool,
    /// How many events the answer carried.
    pub events_returned: usize,
    /// The account whose credentials signed it.
    pub account: String,
}

struct State {
    events: Vec<FixtureEvent>,
    opts: FixtureOptions,
    throttled: Mutex<HashSet<(String, String)>>,
    requests: Mutex<Vec<LookupRequest>>,
    /// Lake queries started: statement and GetQueryResults calls so far.
    queries: Mutex<Vec<(String, usize)>>,
    /// StartQuery calls refused so far.
    busy: Mutex<usize>,
    /// The account of each AssumeRole asked, in order.
    assumed: Mutex<Vec<String>>,
    lake: Mutex<Vec<LakeRequest>>,
    key_requests: Mutex<Vec<PublicKeysRequest>>,
}

pub struct CloudTrailFixture {
    pub url: String,
    state: Arc<State>,
}

impl CloudTrailFixture {
    pub fn start(events: Vec<FixtureEvent>, opts: FixtureOptions) -> CloudTrailFixture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fixture");
        let port = listener.local_addr().expect("fixture address").port();
        let state = Arc::new(State {
            events,
            opts,
            throttled: Mutex::new(HashSet::new()),
            requests: Mutex::new(Vec::new()),
            queries: Mutex::new(Vec::new()),
            busy: Mutex::new(0),
            lake: Mutex::new(Vec::new()),
            assumed: Mutex::new(Vec::new()),
            key_requests: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                thread::spawn(move || serve(conn, &state));
            }
        });
        CloudTrailFixture {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn requests(&self) -> Vec<LookupRequest> {
        self.state.requests.lock().expect("fixture log").clone()
    }

    pub fn lake_requests(&self) -> Vec<LakeRequest> {
        self.state.lake.lock().expect("fixture log").clone()
    }

    /// The account of every AssumeRole received, granted or not.
    pub fn assumed(&self) -> Vec<String> {
        self.state.assumed.lock().expect("fixture log").clone()
    }

    pub fn public_key_requests(&self) -> Vec<PublicKeysRequest> {
        self.state.key_requests.lock().expect("fixture log").clone()
    }
}

/// The prefix of the access keys AssumeRole hands out; the account follows.
const ASSUMED_KEY: &str = "ASIAFIXTURE";

/// The account of a request: the one its access key was assumed into, else
/// the fixture's caller.
fn signer_account(authorization: Option<&str>, state: &State) -> String {
    authorization
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .and_then(|k| k.strip_prefix(ASSUMED_KEY))
        .map_or_else(|| state.opts.account.clone(), str::to_string)
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let raw = text
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// STS AssumeRole, as documented: credentials for the role's account, or
/// AccessDenied for a refused one.
fn assume_role(state: &State, body: &[u8]) -> Answer {
    let role = form_value(body, "RoleArn").unwrap_or_default();
    let session = form_value(body, "RoleSessionName").unwrap_or_default();
    let account = role.split(':').nth(4).unwrap_or("").to_string();
    state
        .assumed
        .lock()
        .expect("fixture log")
        .push(account.clone());
    if state.opts.refuse_accounts.contains(&account) {
        let xml = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
<Message>User: arn:aws:iam::{}:user/Alice is not authorized to perform: sts:AssumeRole on resource: {role}</Message></Error>\
<RequestId>0a1b2c3d-fixture</RequestId></ErrorResponse>",
            state.opts.account
        );
        return (403, "text/xml", None, xml.into_bytes());
    }
    let role_name = role.rsplit('/').next().unwrap_or("role");
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let xml = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
<AssumedRoleUser><Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn>\
<AssumedRoleId>AROA3XFRBF535EXAMPLE:{session}</AssumedRoleId></AssumedRoleUser>\
<Credentials><AccessKeyId>{ASSUMED_KEY}{account}</AccessKeyId>\
<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\
<SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI</SessionToken>\
<Expiration>{expires}</Expiration></Credentials><PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>\
<ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata></AssumeRoleResponse>"
    );
    (200, "text/xml", None, xml.into_bytes())
}

/// Serves one keep-alive connection until the client closes it.
fn serve(conn: TcpStream, state: &State) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let region = header("authorization")
            .and_then(|a| signing_region(&a))
            .unwrap_or_default();
        let account = signer_account(header("authorization").as_deref(), state);
        let (status, content_type, extra, payload) = match header("x-amz-target") {
            Some(t) if t.ends_with(".LookupEvents") => lookup(state, &region, &account, &body),
            Some(t) if t.ends_with(".StartQuery") => start_query(state, &body),
            Some(t) if t.ends_with(".GetQueryResults") => get_query_results(state, &body),
            Some(t) if t.ends_with(".CancelQuery") => cancel_query(state, &body),
            Some(t) if t.ends_with(".ListPublicKeys") => list_public_keys(state, &region, &body),
            Some(t) => json_error(400, "UnknownOperationException", &format!("fixture: {t}")),
            None if String::from_utf8_lossy(&body).contains("Action=GetCallerIdentity") => {
                (200, "text/xml", None, caller_identity(&account))
            }
            None if String::from_utf8_lossy(&body).contains("Action=AssumeRole") => {
                assume_role(state, &body)
            }
            None => json_error(400, "UnknownOperationException", "fixture: no target"),
        };
        let reason = match status {
            200 => "OK",
            403 => "Forbidden",
            _ => "Bad Request",
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: 6f5c2e1a-fixture\r\n",
            payload.len()
        );
        if let Some(e) = extra {
            response.push_str(&format!("x-amzn-ErrorType: {e}\r\n"));
        }
        response.push_str("\r\n");
        if out.write_all(response.as_bytes()).is_err() || out.write_all(&payload).is_err() {
            return;
        }
    }
}

/// `Credential=AKID/DATE/REGION/SERVICE/aws4_request` → REGION.
fn signing_region(authorization: &str) -> Option<String> {
    let cred = authorization.split("Credential=").nth(1)?;
    cred.split('/').nth(2).map(str::to_string)
}

type Answer = (u16, &'static str, Option<String>, Vec<u8>);

fn json_error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        "application/x-amz-json-1.1",
        Some(code.to_string()),
        json!({"__type": code, "message": message})
            .to_string()
            .into_bytes(),
    )
}

fn lookup(state: &State, region: &str, account: &str, body: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json_error(400, "SerializationException", "fixture: body is not JSON");
    };
    let attr = &req["LookupAttributes"][0];
    let key = attr["AttributeKey"].as_str().unwrap_or("").to_string();
    let value = attr["AttributeValue"].as_str().unwrap_or("").to_string();
    let mut record = LookupRequest {
        at: Instant::now(),
        region: region.to_string(),
        attribute_key: key.clone(),
        attribute_value: value.clone(),
        start_time: req["StartTime"].as_f64(),
        end_time: req["EndTime"].as_f64(),
        max_results: req["MaxResults"].as_u64(),
        next_token: req["NextToken"].as_str().map(str::to_string),
        throttled: false,
        events_returned: 0,
        account: account.to_string(),
    };
    if state.opts.deny_regions.iter().any(|r| r == region) {
        state.requests.lock().expect("fixture log").push(record);
        return json_error(
            400,
            "AccessDeniedException",
            &format!("User: arn:aws:iam::{}:user/Alice is not authorized to perform: cloudtrail:LookupEvents with an explicit deny in a service control policy", state.opts.account),
        );
    }
    let pair = (region.to_string(), value.clone());
    if state.opts.throttle_once.contains(&pair)
        && state.throttled.lock().expect("fixture").insert(pair)
    {
        record.throttled = true;
        state.requests.lock().expect("fixture log").push(record);
        return json_error(400, "ThrottlingException", "Rate exceeded");
    }

    // ResourceName matches the ARN (or name) of any resource of the event.
    let matches = |record: &Value| match key.as_str() {
        "EventName" => Some(record["eventName"] == value.as_str()),
        "EventSource" => Some(record["eventSource"] == value.as_str()),
        "ResourceName" => Some(
            record["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["ARN"] == value.as_str())),
        ),
        _ => None,
    };
    if matches(&json!({})).is_none() {
        return json_error(400, "InvalidLookupAttributesException", "fixture: key");
    }
    let mut matching: Vec<&FixtureEvent> = state
        .events
        .iter()
        .filter(|e| e.region == region && matches(&e.record) == Some(true))
        // An assumed account sees its own trail's events only; the caller
        // sees every event given (the single-account tests' history).
        .filter(|e| account == state.opts.account || e.record["recipientAccountId"] == account)
        .filter(|e| {
            let t = event_time(&e.record);
            record.start_time.is_none_or(|s| t >= s) && record.end_time.is_none_or(|u| t <= u)
        })
        .collect();
    // Event history answers newest first.
    matching.sort_by(|a, b| event_time(&b.record).total_cmp(&event_time(&a.record)));
    let offset: usize = record
        .next_token
        .as_deref()
        .and_then(|t| t.strip_prefix("fixture-page-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let size = state
        .opts
        .page_size
        .min(record.max_results.unwrap_or(50) as usize)
        .max(1);
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|e| api_event(&e.record))
        .collect();
    record.events_returned = page.len();
    let mut answer = json!({ "Events": page });
    if offset + size < matching.len() {
        answer["NextToken"] = json!(format!("fixture-page-{}", offset + size));
    }
    state.requests.lock().expect("fixture log").push(record);
    (
        200,
        "application/x-amz-json-1.1",
        None,
        answer.to_string().into_bytes(),
    )
}

fn list_public_keys(state: &State, region: &str, body: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json_error(400, "SerializationException", "fixture: body is not JSON");
    };
    let mut record = PublicKeysRequest {
        region: region.to_string(),
        start_time: req["StartTime"].as_f64(),
        end_time: req["EndTime"].as_f64(),
        next_token: req["NextToken"].as_str().map(str::to_string),
        keys_returned: 0,
    };
    if state.opts.deny_regions.iter().any(|r| r == region) {
        state.key_requests.lock().expect("fixture log").push(record);
        return json_error(
            400,
            "AccessDeniedException",
            &format!("User: arn:aws:iam::{}:user/Alice is not authorized to perform: cloudtrail:ListPublicKeys because no identity-based policy allows the cloudtrail:ListPublicKeys action", state.opts.account),
        );
    }
    // Without StartTime, AWS answers with the current key only; the tests
    // always send a range.
    let (from, to) = (
        record.start_time.unwrap_or(f64::MIN),
        record.end_time.unwrap_or(f64::MAX),
    );
    let matching: Vec<&Value> = state
        .opts
        .public_keys
        .iter()
        .filter(|(r, _)| r == region)
        .map(|(_, k)| k)
        .filter(|k| {
            k["ValidityStartTime"].as_f64().unwrap_or(f64::MIN) <= to
                && k["ValidityEndTime"].as_f64().unwrap_or(f64::MAX) >= from
        })
        .collect();
    let offset: usize = record
        .next_token
        .as_deref()
        .and_then(|t| t.strip_prefix("fixture-keys-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let size = state.opts.page_size.max(1);
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|k| (*k).clone())
        .collect();
    record.keys_returned = page.len();
    let mut answer = json!({ "PublicKeyList": page });
    if offset + size < matching.len() {
        answer["NextToken"] = json!(format!("fixture-keys-{}", offset + size));
    }
    state.key_requests.lock().expect("fixture log").push(record);
    json_ok(answer)
}

fn event_time(record: &Value) -> f64 {
    record["eventTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0.0, |t| t.timestamp() as f64)
}

/// The LookupEvents `Event` structure for a record, as the API builds it.
fn api_event(record: &Value) -> Value {
    let resources: Vec<Value> = record["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| json!({"ResourceType": r["type"], "ResourceName": r["ARN"]}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": record["readOnly"].as_bool().unwrap_or(false).to_string(),
        "AccessKeyId": record["userIdentity"]["accessKeyId"],
        "EventTime": event_time(record),
        "EventSource": record["eventSource"],
        "Username": record["userIdentity"]["userName"],
        "Resources": resources,
        "CloudTrailEvent": record.to_string(),
    })
}

fn caller_identity(account: &str) -> Vec<u8> {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<GetCallerIdentityResult><Arn>arn:aws:iam::{account}:user/Alice</Arn>\
<UserId>AIDACKCEVSQ6C2EXAMPLE</UserId><Account>{account}</Account></GetCallerIdentityResult>\
<ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>\
</GetCallerIdentityResponse>"
    )
    .into_bytes()
}

fn json_ok(v: Value) -> Answer {
    (
        200,
        "application/x-amz-json-1.1",
        None,
        v.to_string().into_bytes(),
    )
}

fn start_query(state: &State, body: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json_error(400, "SerializationException", "fixture: body is not JSON");
    };
    let statement = req["QueryStatement"].as_str().unwrap_or("").to_string();
    {
        let mut busy = state.busy.lock().expect("fixture");
        if *busy < state.opts.lake_busy_starts {
            *busy += 1;
            state.lake.lock().expect("fixture log").push(LakeRequest {
                at: Instant::now(),
                operation: "StartQuery".into(),
                query_id: String::new(),
                statement: Some(statement),
                next_token: None,
                status: "MaxConcurrentQueriesException".into(),
                rows_returned: 0,
            });
            return json_error(
                400,
                "MaxConcurrentQueriesException",
                "You are already running the maximum number of concurrent queries. Wait a minute for some queries to finish, and then run the query again.",
            );
        }
    }
    let mut queries = state.queries.lock().expect("fixture");
    queries.push((statement.clone(), 0));
    let id = format!("fixture-query-{}", queries.len());
    state.lake.lock().expect("fixture log").push(LakeRequest {
        at: Instant::now(),
        operation: "StartQuery".into(),
        query_id: id.clone(),
        statement: Some(statement),
        next_token: None,
        status: "QUEUED".into(),
        rows_returned: 0,
    });
    json_ok(json!({ "QueryId": id }))
}

/// `eventtime >= 'YYYY-MM-DD HH:MM:SS'` and `<=` bounds in a statement.
fn bound(statement: &str, op: &str) -> Option<f64> {
    let at = statement.find(&format!("eventtime {op} '"))? + op.len() + 12;
    let text = statement.get(at..at + 19)?;
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp() as f64)
}

/// A CloudTrail record as Lake holds it: `requestparameters` and
/// `serviceeventdetails` are `map<string,string>` (a nested value becomes its
/// JSON text), `resources` an array of (accountid, type, arn) structs,
/// `eventtime` a timestamp; GetQueryResults renders every value as a string.
fn map_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A record as Lake returns it for kmsrot's events query: one single-entry
/// map per selected column (the query's aliases), strings only, NULL
/// columns left out. Each column is what the SQL expression kmsrot sends
/// yields on Lake's schema.
pub fn lake_row(r: &Value) -> Vec<Value> {
    let time = chrono::DateTime::parse_from_rfc3339(r["eventTime"].as_str().unwrap_or(""))
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        })
        .ok();
    // Top-level columns are typed strings in Lake: a value of another type
    // in the record would not have been ingested as it is.
    let text = |v: &Value| v.as_str().map(str::to_string);
    let in_map = |m: &Value, k: &str| {
        if m.is_object() {
            map_value(&m[k])
        } else {
            None
        }
    };
    // element_at(filter(resources, r -> r.type = 'AWS::KMS::Key'
    //   AND r.arn LIKE 'arn:%:kms:%:key/%'), 1).arn
    let like_key_arn = |a: &str| {
        a.starts_with("arn:")
            && a.find(":kms:")
                .is_some_and(|i| a[i + 5..].find(":key/").is_some())
    };
    let kms_key = r["resources"].as_array().and_then(|rs| {
        rs.iter()
            .filter(|x| x["type"] == "AWS::KMS::Key")
            .filter_map(|x| x["ARN"].as_str())
            .find(|a| like_key_arn(a))
            .map(str::to_string)
    });
    let ui = &r["userIdentity"];
    let cols: Vec<(&str, Option<String>)> = vec![
        ("eventid", text(&r["eventID"])),
        ("eventtime", time),
        ("eventname", text(&r["eventName"])),
        ("eventtype", text(&r["eventType"])),
        ("eventsource", text(&r["eventSource"])),
        ("awsregion", text(&r["awsRegion"])),
        ("recipientaccountid", text(&r["recipientAccountId"])),
        ("sharedeventid", text(&r["sharedEventID"])),
        ("principal_arn", text(&ui["arn"])),
        ("principal_type", text(&ui["type"])),
        ("principal_account_id", text(&ui["accountId"])),
        ("invoked_by", text(&ui["invokedBy"])),
        (
            "session_issuer_arn",
            text(&ui["sessionContext"]["sessionIssuer"]["arn"]),
        ),
        ("sourceipaddress", text(&r["sourceIPAddress"])),
        ("useragent", text(&r["userAgent"])),
        ("errorcode", text(&r["errorCode"])),
        ("errormessage", text(&r["errorMessage"])),
        ("request_key_id", in_map(&r["requestParameters"], "keyId")),
        (
            "rotation_period_in_days",
            in_map(&r["requestParameters"], "rotationPeriodInDays"),
        ),
        ("service_key_id", in_map(&r["serviceEventDetails"], "keyId")),
        (
            "rotation_type",
            in_map(&r["serviceEventDetails"], "rotationType"),
        ),
        ("resource_arn", kms_key),
        ("requestid", text(&r["requestID"])),
    ];
    cols.into_iter()
        .filter_map(|(k, v)| v.map(|v| json!({ k: v })))
        .collect()
}

fn cancel_query(state: &State, body: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json_error(400, "SerializationException", "fixture: body is not JSON");
    };
    let id = req["QueryId"].as_str().unwrap_or("").to_string();
    state.lake.lock().expect("fixture log").push(LakeRequest {
        at: Instant::now(),
        operation: "CancelQuery".into(),
        query_id: id.clone(),
        statement: None,
        next_token: None,
        status: "CANCELLED".into(),
        rows_returned: 0,
    });
    json_ok(json!({ "QueryId": id, "QueryStatus": "CANCELLED" }))
}

fn get_query_results(state: &State, body: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json_error(400, "SerializationException", "fixture: body is not JSON");
    };
    let id = req["QueryId"].as_str().unwrap_or("").to_string();
    let next_token = req["NextToken"].as_str().map(str::to_string);
    let n: usize = id
        .strip_prefix("fixture-query-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let (statement, polls) = {
        let mut queries = state.queries.lock().expect("fixture");
        let Some(q) = n.checked_sub(1).and_then(|i| queries.get_mut(i)) else {
            return json_error(400, "QueryIdNotFoundException", "fixture: unknown query");
        };
        q.1 += 1;
        q.clone()
    };
    let mut log = LakeRequest {
        at: Instant::now(),
        operation: "GetQueryResults".into(),
        query_id: id,
        statement: None,
        next_token: next_token.clone(),
        status: "RUNNING".into(),
        rows_returned: 0,
    };
    if polls <= state.opts.lake_running_polls {
        state.lake.lock().expect("fixture log").push(log);
        return json_ok(json!({ "QueryStatus": "RUNNING", "QueryResultRows": [] }));
    }
    if let Some(code) = &state.opts.lake_results_error {
        log.status = code.clone();
        state.lake.lock().expect("fixture log").push(log);
        return json_error(400, code, "fixture: injected GetQueryResults failure");
    }
    let (since, until) = (bound(&statement, ">="), bound(&statement, "<="));
    let in_window = |r: &Value| {
        let t = event_time(r);
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    let records = state
        .events
        .iter()
        .map(|e| &e.record)
        .filter(|r| in_window(r));
    let rows: Vec<Value> = if statement.contains("SELECT DISTINCT") {
        let mut days: Vec<(String, String, String)> = records
            .map(|r| {
                (
                    r["recipientAccountId"].as_str().unwrap_or("").to_string(),
                    r["awsRegion"].as_str().unwrap_or("").to_string(),
                    r["eventTime"]
                        .as_str()
                        .unwrap_or("")
                        .get(..10)
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        days.sort();
        days.dedup();
        days.into_iter()
            .map(|(a, r, d)| json!([{ "recipientaccountid": a }, { "awsregion": r }, { "day": d }]))
            .collect()
    } else {
        records
            .filter(|r| r["eventSource"] == "kms.amazonaws.com")
            .filter(|r| {
                // `--include-data-events` sends no name list.
                !statement.contains("eventname IN (")
                    || r["errorCode"].is_string()
                    || statement.contains(&format!("'{}'", r["eventName"].as_str().unwrap_or("")))
            })
            .map(|r| Value::Array(lake_row(r)))
            .collect()
    };
    let offset: usize = next_token
        .as_deref()
        .and_then(|t| t.strip_prefix("fixture-rows-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let size = state.opts.page_size.max(1);
    let page: Vec<Value> = rows.iter().skip(offset).take(size).cloned().collect();
    let status = state
        .opts
        .lake_end_status
        .clone()
        .unwrap_or_else(|| "FINISHED".into());
    log.status = status.clone();
    log.rows_returned = page.len();
    state.lake.lock().expect("fixture log").push(log);
    let mut answer = json!({
        "QueryStatus": status,
        "QueryStatistics": {
            "ResultsCount": page.len(),
            "TotalResultsCount": rows.len(),
            "BytesScanned": 1000
        },
        "QueryResultRows": page,
    });
    if offset + size < rows.len() {
        answer["NextToken"] = json!(format!("fixture-rows-{}", offset + size));
    }
    if status == "TIMED_OUT" {
        answer["ErrorMessage"] = json!("Query exceeded the maximum run time and timed out.");
    }
    json_ok(answer)
}
