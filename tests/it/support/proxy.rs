//! A fault-injecting HTTP proxy to put in front of moto.
//!
//! moto answers every request it understands, so faults AWS produces (a region
//! that denies access, one operation denied by a key policy or SCP, slow
//! answers, paginated listings) are made here. The proxy speaks just enough
//! HTTP/1.1 for the AWS SDK's JSON protocol: keep-alive connections,
//! `Content-Length` bodies.
//!
//! It can also stand in for behaviour AWS documents and moto lacks: answering
//! GetKeyRotationStatus with the RotationPeriodInDays AWS always reports, and
//! forwarding CancelKeyDeletion/EnableKey with the bare key id moto needs
//! (it answers 500 to the key ARN AWS accepts), while recording what the
//! client really sent.
//!
//! Rules match on the SigV4 credential scope's region
//! (`Authorization: ... Credential=AKID/DATE/REGION/SERVICE/aws4_request`) and
//! on the operation (`X-Amz-Target: TrentService.OPERATION`, or the
//! `Action=OPERATION` form field of a query-protocol service such as STS);
//! the first rule that matches applies. Every request is counted by operation
//! and region.
//!
//! For STS it answers errors in the query protocol's XML shape
//! (`<ErrorResponse><Error><Type>Sender</Type><Code>...`), so credentials
//! moto would accept can be refused as AWS refuses them
//! (`InvalidClientTokenId`, `ExpiredToken`).
//!
//! ```ignore
//! let proxy = Proxy::start(&moto.url, vec![Rule::region("eu-west-3").deny()]);
//! moto.kmsrot().env("AWS_ENDPOINT_URL", &proxy.url) ...
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// What a matching request gets.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with an AWS JSON-protocol error and never reach moto.
    Fail {
        status: u16,
        code: String,
        message: String,
    },
    /// Answer with an AWS query-protocol (STS) XML error and never reach moto.
    FailQuery {
        status: u16,
        code: String,
        message: String,
    },
    /// Wait, then forward.
    Delay(Duration),
    /// Serve a listing (ListKeys, ListAliases) in pages of at most `size`
    /// entries, with AWS's `Truncated`/`NextMarker`, because moto ignores
    /// `Limit` and always answers with everything in one page.
    Page { size: usize },
    /// Forward, let moto act, then close the connection without answering:
    /// the change lands and the client sees a failure (a timeout or a
    /// dropped connection after dispatch).
    DropAfterForward,
    /// Forward with the `KeyId` ARN cut to the bare key id, which moto 5.2
    /// needs for CancelKeyDeletion and EnableKey (AWS takes either). The
    /// count records the ARN as the client sent it.
    BareKeyId,
    /// Forward GetKeyRotationStatus and add the RotationPeriodInDays AWS
    /// reports for a key with rotation on (moto never does): the period of
    /// the last EnableKeyRotation that went through this proxy, else AWS's
    /// default of 365.
    ReportPeriod,
    /// Forward ListAccounts / ListAccountsForParent and report `account`
    /// in `state` (both `Status` and `State`), for states moto cannot
    /// reach (it goes straight from ACTIVE to SUSPENDED on CloseAccount).
    AccountState { account: String, state: String },
    /// Serve Athena GetQueryResults in pages of at most `size` rows with
    /// AWS's `NextToken`, because moto answers every row at once whatever
    /// `MaxResults` asks. The first page keeps the header row, as Athena's.
    AthenaPages { size: usize },
    /// Forward Athena GetQueryExecution and write into its answer what moto
    /// never reports: a final state with Athena's reason and error, and the
    /// statistics a real query has.
    AthenaExecution(AthenaPatch),
}

/// What [`Action::AthenaExecution`] writes into a GetQueryExecution answer.
#[derive(Debug, Clone, Default)]
pub struct AthenaPatch {
    /// `FAILED` or `CANCELLED`, with StateChangeReason and AthenaError.
    pub state: Option<(String, String, serde_json::Value)>,
    pub data_scanned_bytes: Option<i64>,
    pub engine_ms: Option<i64>,
    pub total_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Region of the SigV4 credential scope; `None` matches any.
    pub region: Option<String>,
    /// Operation name (`ListKeys`); `None` matches any.
    pub operation: Option<String>,
    pub action: Action,
    /// Apply to the first `n` matching requests only (a fault that clears,
    /// as throttling does); `None` applies to all.
    pub times: Option<usize>,
    /// Only requests whose body holds this text (a role ARN's account id,
    /// percent-encoded or not).
    pub body_contains: Option<String>,
}

impl Rule {
    pub fn region(region: &str) -> Self {
        Rule {
            region: Some(region.to_string()),
            operation: None,
            action: Action::Delay(Duration::ZERO),
            times: None,
            body_contains: None,
        }
    }

    pub fn operation(operation: &str) -> Self {
        Rule {
            region: None,
            operation: Some(operation.to_string()),
            action: Action::Delay(Duration::ZERO),
            times: None,
            body_contains: None,
        }
    }

    /// Every request.
    pub fn any() -> Self {
        Rule {
            region: None,
            operation: None,
            action: Action::Delay(Duration::ZERO),
            times: None,
            body_contains: None,
        }
    }

    /// Only requests whose body holds `text`.
    pub fn body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_string());
        self
    }

    /// 403 AccessDenied in STS's XML shape, with the message STS gives when
    /// the role's trust policy (or an SCP) does not let the caller assume it.
    pub fn sts_deny(mut self, role_arn: &str) -> Self {
        self.action = Action::FailQuery {
            status: 403,
            code: "AccessDenied".into(),
            message: format!(
                "User: arn:aws:iam::123456789012:user/auditor is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            ),
        };
        self
    }

    pub fn account_state(mut self, account: &str, state: &str) -> Self {
        self.action = Action::AccountState {
            account: account.to_string(),
            state: state.to_string(),
        };
        self
    }

    pub fn and_operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_string());
        self
    }

    /// 400 AccessDeniedException, as KMS answers a denied call.
    pub fn deny(self) -> Self {
        self.fail(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/auditor is not authorized to perform this operation with an explicit deny in a service control policy",
        )
    }

    pub fn fail(mut self, status: u16, code: &str, message: &str) -> Self {
        self.action = Action::Fail {
            status,
            code: code.to_string(),
            message: message.to_string(),
        };
        self
    }

    /// An STS-style (query protocol) XML error.
    pub fn fail_query(mut self, status: u16, code: &str, message: &str) -> Self {
        self.action = Action::FailQuery {
            status,
            code: code.to_string(),
            message: message.to_string(),
        };
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.action = Action::Delay(d);
        self
    }

    pub fn page(mut self, size: usize) -> Self {
        self.action = Action::Page { size: size.max(1) };
        self
    }

    pub fn drop_after_forward(mut self) -> Self {
        self.action = Action::DropAfterForward;
        self
    }

    pub fn bare_key_id(mut self) -> Self {
        self.action = Action::BareKeyId;
        self
    }

    pub fn report_period(mut self) -> Self {
        self.action = Action::ReportPeriod;
        self
    }

    pub fn athena_pages(mut self, size: usize) -> Self {
        self.action = Action::AthenaPages { size: size.max(1) };
        self
    }

    pub fn athena_execution(mut self, patch: AthenaPatch) -> Self {
        self.action = Action::AthenaExecution(patch);
        self
    }

    /// Only the first `n` matching requests get this rule's action.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// 400 ThrottlingException, as KMS answers past its request quota.
    pub fn throttle(self) -> Self {
        self.fail(400, "ThrottlingException", "Rate exceeded")
    }

    fn matches(&self, region: Option<&str>, operation: Option<&str>, body: &[u8]) -> bool {
        self.region.as_deref().is_none_or(|r| Some(r) == region)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| Some(o) == operation)
            && self.body_contains.as_deref().is_none_or(|t| {
                let body = String::from_utf8_lossy(body);
                body.contains(t) || percent_decode_form(&body).contains(t)
            })
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Option<String>,
    pub region: Option<String>,
    /// The request's `KeyId` parameter (an id, ARN or alias), if any.
    pub key_id: Option<String>,
    /// STS AssumeRole's `RoleArn`, if any.
    pub role_arn: Option<String>,
}

#[derive(Default)]
struct Counts {
    by_operation: BTreeMap<String, u64>,
    by_region: BTreeMap<String, u64>,
    calls: Vec<Call>,
    faults: u64,
}

struct Shared {
    upstream: String,
    /// Bare key id → RotationPeriodInDays of the last EnableKeyRotation that
    /// moto accepted through this proxy.
    periods: Mutex<BTreeMap<String, i64>>,
    rules: Vec<Rule>,
    /// Requests each rule has applied to, for [`Rule::times`].
    hits: Mutex<Vec<usize>>,
    counts: Mutex<Counts>,
    stop: AtomicBool,
}

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    pub url: String,
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy: no free loopback port");
        let port = listener.local_addr().expect("proxy: bound address").port();
        let shared = Arc::new(Shared {
            upstream,
            periods: Mutex::new(BTreeMap::new()),
            hits: Mutex::new(vec![0; rules.len()]),
            rules,
            counts: Mutex::new(Counts::default()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    // A client that goes away mid-request just ends its thread.
                    let _ = serve(conn, &s);
                });
            }
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// Requests seen per operation, whether forwarded or faulted.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.counts.lock().unwrap().by_operation.clone()
    }

    /// Requests seen per SigV4 region.
    pub fn requests_by_region(&self) -> BTreeMap<String, u64> {
        self.shared.counts.lock().unwrap().by_region.clone()
    }

    /// Every request, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.counts.lock().unwrap().calls.clone()
    }

    /// Requests for `operation` that named `key` (id or ARN) as KeyId.
    pub fn calls_about(&self, operation: &str, key: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| {
                c.operation.as_deref() == Some(operation)
                    && c.key_id
                        .as_deref()
                        .is_some_and(|k| k == key || k.ends_with(&format!("/{key}")))
            })
            .count()
    }

    /// AssumeRole requests per account (the role ARN's account).
    pub fn assume_role_calls(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in self.calls() {
            if let Some(account) = c.role_arn.as_deref().and_then(|a| a.split(':').nth(4)) {
                *out.entry(account.to_string()).or_default() += 1;
            }
        }
        out
    }

    /// Requests answered with an injected error.
    pub fn faults(&self) -> u64 {
        self.shared.counts.lock().unwrap().faults
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

#[derive(Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The region of the SigV4 credential scope.
    fn region(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let cred = auth.split("Credential=").nth(1)?;
        let scope = cred.split([',', ' ']).next()?;
        scope.split('/').nth(2).map(str::to_string)
    }

    /// `TrentService.ListKeys` → `ListKeys`; a query-protocol body
    /// `Action=GetCallerIdentity&Version=...` → `GetCallerIdentity`.
    fn operation(&self) -> Option<String> {
        if let Some(t) = self.header("x-amz-target") {
            return Some(t.rsplit('.').next().unwrap_or(t).to_string());
        }
        let form = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return None;
        }
        String::from_utf8_lossy(&self.body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_string)
    }
}

struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let headers = read_headers(r)?;
    let len = content_length(&headers);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

fn read_headers(r: &mut impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(headers)
}

fn content_length(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn serve(conn: TcpStream, s: &Shared) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    while let Some(req) = read_request(&mut reader)? {
        let region = req.region();
        let operation = req.operation();
        {
            let mut c = s.counts.lock().unwrap();
            *c.by_operation
                .entry(operation.clone().unwrap_or_else(|| "(none)".into()))
                .or_default() += 1;
            *c.by_region
                .entry(region.clone().unwrap_or_else(|| "(none)".into()))
                .or_default() += 1;
            let key_id = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v.get("KeyId").and_then(Value::as_str).map(str::to_string));
            let role_arn = String::from_utf8_lossy(&req.body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("RoleArn="))
                .map(percent_decode_form);
            c.calls.push(Call {
                operation: operation.clone(),
                region: region.clone(),
                key_id,
                role_arn,
            });
        }
        let rule = {
            let mut hits = s.hits.lock().unwrap();
            s.rules
                .iter()
                .enumerate()
                .find(|(i, r)| {
                    r.matches(region.as_deref(), operation.as_deref(), &req.body)
                        && r.times.is_none_or(|n| hits[*i] < n)
                })
                .map(|(i, r)| {
                    hits[i] += 1;
                    r
                })
        };
        let resp = match rule.map(|r| &r.action) {
            Some(Action::Fail {
                status,
                code,
                message,
            }) => {
                s.counts.lock().unwrap().faults += 1;
                error_response(*status, code, message)
            }
            Some(Action::FailQuery {
                status,
                code,
                message,
            }) => {
                s.counts.lock().unwrap().faults += 1;
                query_error_response(*status, code, message)
            }
            Some(Action::Delay(d)) => {
                std::thread::sleep(*d);
                forward(&s.upstream, &req)?
            }
            Some(Action::Page { size }) => page(&s.upstream, req.clone(), *size)?,
            Some(Action::DropAfterForward) => {
                let resp = forward(&s.upstream, &req)?;
                track_period(s, &req, operation.as_deref(), &resp);
                s.counts.lock().unwrap().faults += 1;
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Action::BareKeyId) => forward(&s.upstream, &with_bare_key_id(&req))?,
            Some(Action::ReportPeriod) => report_period(s, &req)?,
            Some(Action::AccountState { account, state }) => {
                with_account_state(forward(&s.upstream, &req)?, account, state)
            }
            Some(Action::AthenaPages { size }) => athena_pages(&s.upstream, req.clone(), *size)?,
            Some(Action::AthenaExecution(patch)) => athena_execution(&s.upstream, &req, patch)?,
            None => forward(&s.upstream, &req)?,
        };
        track_period(s, &req, operation.as_deref(), &resp);
        write_response(&mut writer, &resp)?;
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// The request's KeyId as a bare key id.
fn bare_key_id(req: &Request) -> Option<String> {
    let v: Value = serde_json::from_slice(&req.body).ok()?;
    let k = v.get("KeyId")?.as_str()?;
    Some(k.rsplit_once("key/").map_or(k, |(_, id)| id).to_string())
}

fn with_bare_key_id(req: &Request) -> Request {
    let mut body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if let (Some(id), Some(obj)) = (bare_key_id(req), body.as_object_mut()) {
        obj.insert("KeyId".into(), Value::String(id));
    }
    Request {
        body: serde_json::to_vec(&body).unwrap_or_default(),
        ..req.clone()
    }
}

/// Remembers the period of each EnableKeyRotation moto accepted, and forgets
/// it on DisableKeyRotation.
fn track_period(s: &Shared, req: &Request, operation: Option<&str>, resp: &Response) {
    if !resp.status_line.contains(" 200") {
        return;
    }
    let Some(id) = bare_key_id(req) else { return };
    let mut periods = s.periods.lock().unwrap();
    match operation {
        Some("EnableKeyRotation") => {
            let period = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v.get("RotationPeriodInDays").and_then(Value::as_i64))
                .unwrap_or(365);
            periods.insert(id, period);
        }
        Some("DisableKeyRotation") => {
            periods.remove(&id);
        }
        _ => {}
    }
}

fn report_period(s: &Shared, req: &Request) -> std::io::Result<Response> {
    let mut resp = forward(&s.upstream, req)?;
    let Ok(mut doc) = serde_json::from_slice::<Value>(&resp.body) else {
        return Ok(resp);
    };
    let on = doc.get("KeyRotationEnabled").and_then(Value::as_bool) == Some(true);
    if let (true, Some(obj), Some(id)) = (on, doc.as_object_mut(), bare_key_id(req)) {
        let period = s.periods.lock().unwrap().get(&id).copied().unwrap_or(365);
        obj.insert("RotationPeriodInDays".into(), Value::from(period));
        resp.body = serde_json::to_vec(&doc).unwrap_or_default();
    }
    Ok(resp)
}

fn error_response(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    Response {
        status_line: format!("HTTP/1.1 {status} {}", reason(status)),
        headers: vec![
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            (
                "x-amzn-RequestId".into(),
                "00000000-0000-0000-0000-proxyfault00".into(),
            ),
        ],
        body: body.into_bytes(),
    }
}

/// The query protocol's error document, as STS writes it.
fn query_error_response(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>00000000-0000-0000-0000-proxyfault00</RequestId>\n</ErrorResponse>\n"
    );
    Response {
        status_line: format!("HTTP/1.1 {status} {}", reason(status)),
        headers: vec![
            ("Content-Type".into(), "text/xml".into()),
            (
                "x-amzn-RequestId".into(),
                "00000000-0000-0000-0000-proxyfault00".into(),
            ),
        ],
        body: body.into_bytes(),
    }
}

/// Sets `Status` and `State` of `account` in a ListAccounts answer.
fn with_account_state(mut resp: Response, account: &str, state: &str) -> Response {
    let Ok(mut doc) = serde_json::from_slice::<Value>(&resp.body) else {
        return resp;
    };
    if let Some(list) = doc.get_mut("Accounts").and_then(Value::as_array_mut) {
        for a in list {
            if a.get("Id").and_then(Value::as_str) == Some(account) {
                if let Some(obj) = a.as_object_mut() {
                    obj.insert("Status".into(), Value::from(state));
                    obj.insert("State".into(), Value::from(state));
                }
            }
        }
    }
    resp.body = serde_json::to_vec(&doc).unwrap_or_default();
    resp
}

/// A form body's `%XX` escapes and `+` decoded.
fn percent_decode_form(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Sends one request upstream on a fresh connection and reads the whole answer.
fn forward(upstream: &str, req: &Request) -> std::io::Result<Response> {
    let mut up = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    ));
    up.set_nodelay(true)?;
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    up.write_all(&bytes)?;
    up.flush()?;
    let mut r = BufReader::new(up);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let headers: Vec<(String, String)> = read_headers(&mut r)?
        .into_iter()
        .filter(|(k, _)| {
            ![
                "connection",
                "content-length",
                "transfer-encoding",
                "keep-alive",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        })
        .collect();
    // Connection: close was asked for, so the body runs to EOF.
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok(Response {
        status_line: status_line.trim_end().to_string(),
        headers,
        body,
    })
}

/// Fetches the full listing from moto and serves the slice the request's
/// Marker points at. The marker is the offset, which is all the SDK needs:
/// it passes NextMarker back verbatim.
fn page(upstream: &str, mut req: Request, size: usize) -> std::io::Result<Response> {
    let params: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let offset: usize = params
        .get("Marker")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix("proxy-"))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let limit = params
        .get("Limit")
        .and_then(Value::as_u64)
        .map_or(size, |l| (l as usize).min(size));
    let mut upstream_params = params.clone();
    if let Some(obj) = upstream_params.as_object_mut() {
        obj.remove("Marker");
        obj.remove("Limit");
    }
    req.body = serde_json::to_vec(&upstream_params).unwrap_or_default();
    let mut resp = forward(upstream, &req)?;
    if !resp.status_line.contains(" 200") {
        return Ok(resp);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&resp.body) else {
        return Ok(resp);
    };
    let Some(obj) = doc.as_object_mut() else {
        return Ok(resp);
    };
    let Some(list_field) = ["Keys", "Aliases", "Rotations", "Tags"]
        .into_iter()
        .find(|f| obj.get(*f).is_some_and(Value::is_array))
    else {
        return Ok(resp);
    };
    let all = obj[list_field].as_array().cloned().unwrap_or_default();
    let end = (offset + limit).min(all.len());
    let slice: Vec<Value> = all.get(offset.min(all.len())..end).unwrap_or(&[]).to_vec();
    obj.insert(list_field.to_string(), Value::Array(slice));
    let truncated = end < all.len();
    obj.insert("Truncated".into(), Value::Bool(truncated));
    if truncated {
        obj.insert("NextMarker".into(), Value::String(format!("proxy-{end}")));
    } else {
        obj.remove("NextMarker");
    }
    resp.body = serde_json::to_vec(&doc).unwrap_or_default();
    Ok(resp)
}

/// GetQueryResults from moto (every row), served as the page the request's
/// NextToken points at. The token is the offset, which the SDK passes back
/// verbatim.
fn athena_pages(upstream: &str, mut req: Request, size: usize) -> std::io::Result<Response> {
    let params: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let offset: usize = params
        .get("NextToken")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix("proxy-"))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let limit = params
        .get("MaxResults")
        .and_then(Value::as_u64)
        .map_or(size, |l| (l as usize).min(size));
    let mut upstream_params = params.clone();
    if let Some(obj) = upstream_params.as_object_mut() {
        obj.remove("NextToken");
        obj.remove("MaxResults");
    }
    req.body = serde_json::to_vec(&upstream_params).unwrap_or_default();
    let mut resp = forward(upstream, &req)?;
    if !resp.status_line.contains(" 200") {
        return Ok(resp);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&resp.body) else {
        return Ok(resp);
    };
    let all = doc["ResultSet"]["Rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let end = (offset + limit).min(all.len());
    let slice: Vec<Value> = all.get(offset.min(all.len())..end).unwrap_or(&[]).to_vec();
    doc["ResultSet"]["Rows"] = Value::Array(slice);
    if let Some(obj) = doc.as_object_mut() {
        if end < all.len() {
            obj.insert("NextToken".into(), Value::String(format!("proxy-{end}")));
        } else {
            obj.remove("NextToken");
        }
    }
    resp.body = serde_json::to_vec(&doc).unwrap_or_default();
    Ok(resp)
}

fn athena_execution(
    upstream: &str,
    req: &Request,
    patch: &AthenaPatch,
) -> std::io::Result<Response> {
    let mut resp = forward(upstream, req)?;
    let Ok(mut doc) = serde_json::from_slice::<Value>(&resp.body) else {
        return Ok(resp);
    };
    let exec = &mut doc["QueryExecution"];
    if let Some((state, reason, error)) = &patch.state {
        exec["Status"]["State"] = Value::String(state.clone());
        exec["Status"]["StateChangeReason"] = Value::String(reason.clone());
        if !error.is_null() {
            exec["Status"]["AthenaError"] = error.clone();
        }
    }
    for (field, v) in [
        ("DataScannedInBytes", patch.data_scanned_bytes),
        ("EngineExecutionTimeInMillis", patch.engine_ms),
        ("TotalExecutionTimeInMillis", patch.total_ms),
    ] {
        if let Some(v) = v {
            exec["Statistics"][field] = Value::from(v);
        }
    }
    resp.body = serde_json::to_vec(&doc).unwrap_or_default();
    Ok(resp)
}

fn write_response(w: &mut TcpStream, resp: &Response) -> std::io::Result<()> {
    let mut head = format!("{}\r\n", resp.status_line);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        resp.body.len()
    ));
    // One write: a header and body sent apart meet Nagle's algorithm and
    // delayed ACKs, which costs ~40 ms a request.
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&resp.body);
    w.write_all(&bytes)?;
    w.flush()
}
