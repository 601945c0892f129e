//! Serves a folder as one S3 bucket, for benchmarks of `kmsrot trail scan
//! s3://...`: moto answers in Python at a few requests a millisecond, which
//! would measure moto rather than kmsrot.
//!
//! ```text
//! cargo run --release --example s3_dir_server -- DIR BUCKET
//! ```
//!
//! Prints its URL (`http://127.0.0.1:PORT`) on the first line of stdout, then
//! serves until killed. It speaks the part of S3's REST API (path-style) that
//! kmsrot's S3 source uses: GetBucketLocation, HeadBucket, ListObjectsV2
//! (prefix, delimiter, 1,000 keys a page, continuation tokens) and GetObject,
//! whose `x-amz-meta-*` headers come from `DIR/digest-metadata.json` (object
//! key → metadata, as `sign_trail_corpus` writes it). It does not check
//! signatures: it serves a benchmark, not a secret.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Bucket {
    name: String,
    root: PathBuf,
    /// Every object key, sorted.
    keys: Vec<String>,
    sizes: BTreeMap<String, u64>,
    metadata: BTreeMap<String, BTreeMap<String, String>>,
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let (Ok(rel), Ok(meta)) = (p.strip_prefix(root), e.metadata()) {
            out.push((rel.to_string_lossy().replace('\\', "/"), meta.len()));
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Response {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    head: bool,
}

fn xml_response(status: &'static str, body: String) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/xml".into())],
        body: body.into_bytes(),
        head: false,
    }
}

fn error(status: &'static str, code: &str, message: &str) -> Response {
    xml_response(
        status,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message><RequestId>bench</RequestId></Error>", xml(message)),
    )
}

impl Bucket {
    fn list(&self, q: &BTreeMap<String, String>) -> Response {
        let prefix = q.get("prefix").cloned().unwrap_or_default();
        let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
        let after = q
            .get("continuation-token")
            .or_else(|| q.get("start-after"))
            .cloned();
        let max: usize = q
            .get("max-keys")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1000)
            .clamp(1, 1000);
        let start = self.keys.partition_point(|k| k.as_str() < prefix.as_str());
        let mut contents = String::new();
        let mut prefixes = String::new();
        let mut count = 0;
        let mut last: Option<String> = None;
        let mut truncated = false;
        let mut i = start;
        while i < self.keys.len() {
            let key = &self.keys[i];
            if !key.starts_with(&prefix) {
                break;
            }
            if let Some(a) = &after {
                if key <= a || (a.ends_with('/') && key.starts_with(a.as_str())) {
                    i += 1;
                    continue;
                }
            }
            if count == max {
                truncated = true;
                break;
            }
            let rest = &key[prefix.len()..];
            match delimiter
                .as_deref()
                .and_then(|d| rest.find(d).map(|p| (p, d)))
            {
                Some((p, d)) => {
                    let common = format!("{prefix}{}", &rest[..p + d.len()]);
                    prefixes.push_str(&format!(
                        "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                        xml(&common)
                    ));
                    // Skip every key under this common prefix.
                    while i < self.keys.len() && self.keys[i].starts_with(&common) {
                        i += 1;
                    }
                    last = Some(common);
                }
                None => {
                    contents.push_str(&format!(
                        "<Contents><Key>{}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>\"{}\"</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                        xml(key),
                        self.sizes[key],
                        self.sizes[key]
                    ));
                    last = Some(key.clone());
                    i += 1;
                }
            }
            count += 1;
        }
        let token = if truncated {
            format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml(last.as_deref().unwrap_or(""))
            )
        } else {
            String::new()
        };
        xml_response(
            "200 OK",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix>{}<MaxKeys>{max}</MaxKeys><KeyCount>{count}</KeyCount><IsTruncated>{truncated}</IsTruncated>{token}{contents}{prefixes}</ListBucketResult>",
                xml(&self.name),
                xml(&prefix),
                delimiter.map(|d| format!("<Delimiter>{}</Delimiter>", xml(&d))).unwrap_or_default(),
            ),
        )
    }

    fn get(&self, key: &str, head: bool) -> Response {
        if !self.sizes.contains_key(key) {
            return error(
                "404 Not Found",
                "NoSuchKey",
                "The specified key does not exist.",
            );
        }
        let body = if head {
            Vec::new()
        } else {
            match std::fs::read(self.root.join(key)) {
                Ok(b) => b,
                Err(e) => {
                    return error("500 Internal Server Error", "InternalError", &e.to_string())
                }
            }
        };
        let mut headers = vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("ETag".into(), format!("\"{}\"", self.sizes[key])),
            (
                "Last-Modified".into(),
                "Wed, 01 Jan 2025 00:00:00 GMT".into(),
            ),
        ];
        if head {
            headers.push(("Content-Length".into(), self.sizes[key].to_string()));
        }
        for (k, v) in self.metadata.get(key).into_iter().flatten() {
            headers.push((format!("x-amz-meta-{k}"), v.clone()));
        }
        Response {
            status: "200 OK",
            headers,
            body,
            head,
        }
    }

    fn answer(&self, method: &str, target: &str) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let q: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let path = decode(path.trim_start_matches('/'));
        let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
        if bucket != self.name {
            return error(
                "404 Not Found",
                "NoSuchBucket",
                "The specified bucket does not exist",
            );
        }
        match (method, key.is_empty()) {
            ("GET", true) if q.contains_key("location") => xml_response(
                "200 OK",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>".into(),
            ),
            ("HEAD", true) => Response {
                status: "200 OK",
                headers: vec![("x-amz-bucket-region".into(), "us-east-1".into())],
                body: Vec::new(),
                head: true,
            },
            ("GET", true) => self.list(&q),
            ("GET", false) => self.get(key, false),
            ("HEAD", false) => self.get(key, true),
            _ => error("405 Method Not Allowed", "MethodNotAllowed", method),
        }
    }
}

fn body_has(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// STS GetCallerIdentity in the query protocol's XML, for a fixed bench caller.
fn caller_identity() -> Response {
    xml_response(
        "200 OK",
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/bench</Arn><UserId>AIDABENCHBENCHBENCH</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></GetCallerIdentityResponse>".into(),
    )
}

fn serve(conn: TcpStream, bucket: &Bucket) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if length > 0 && std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        // kmsrot asks STS who the caller is before it reads S3 (issue 19):
        // the benchmark points STS here too, and this answers that one call.
        let r = if method == "POST" && body_has(&body, b"Action=GetCallerIdentity") {
            caller_identity()
        } else {
            bucket.answer(&method, &target)
        };
        let mut head = format!("HTTP/1.1 {}\r\nx-amz-request-id: bench\r\n", r.status);
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !r.head {
            head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() || (!r.head && out.write_all(&r.body).is_err()) {
            return;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(root), Some(name)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: s3_dir_server DIR BUCKET");
        std::process::exit(2);
    };
    let root = PathBuf::from(root);
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let metadata: BTreeMap<String, BTreeMap<String, String>> =
        std::fs::read(root.join("digest-metadata.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
    let bucket = Arc::new(Bucket {
        name: name.clone(),
        root,
        keys: files.iter().map(|(k, _)| k.clone()).collect(),
        sizes: files.into_iter().collect(),
        metadata,
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().expect("an address").port();
    println!("http://127.0.0.1:{port}");
    std::io::stdout().flush().ok();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let bucket = bucket.clone();
        std::thread::spawn(move || serve(conn, &bucket));
    }
}
