//! A TCP proxy in front of moto that records every HTTP request line, so a
//! test can count what kmsrot asked of S3 (which objects it fetched, which
//! prefixes it listed) without trusting kmsrot's own account of it.
//!
//! kmsrot only reads from S3, so every request it sends through the proxy
//! has a head and a Content-Length body at most; the proxy frames requests
//! by that and copies responses back untouched. It can also answer chosen
//! requests itself with an S3 error, to stand for a denied prefix or a
//! failed GET (clients do not pipeline, so answers stay in order).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
}

impl Seen {
    /// The path without the query, percent-decoded.
    pub fn path(&self) -> String {
        percent_decode(self.target.split('?').next().unwrap_or(""))
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.target
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.split('=').next() == Some(name)))
    }
}

/// A canned failure: requests whose target contains `target_contains`
/// get `status` with S3's XML error body for `code`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub target_contains: String,
    pub status: u16,
    pub code: String,
}

type Failures = Arc<Mutex<Vec<Failure>>>;

pub struct CountingProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    failures: Failures,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream_port`.
    pub fn start(upstream_port: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failures: Failures = Arc::new(Mutex::new(Vec::new()));
        let (log, fail) = (seen.clone(), failures.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (log, fail) = (log.clone(), fail.clone());
                thread::spawn(move || relay(client, upstream_port, log, fail));
            }
        });
        CountingProxy {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            failures,
        }
    }

    pub fn fail(&self, failure: Failure) {
        self.failures.lock().expect("proxy failures").push(failure);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("proxy log").clone()
    }

    pub fn clear(&self) {
        self.seen.lock().expect("proxy log").clear();
    }
}

fn relay(
    mut client: TcpStream,
    upstream_port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    failures: Failures,
) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut up_read), Ok(mut client_write)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    let Ok(mut answer) = client.try_clone() else {
        return;
    };
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Both);
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'conn: loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Every complete request in the buffer: forwarded, or answered here.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.lines();
            let mut parts = lines.next().unwrap_or("").split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let body_len: usize = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + body_len;
            if buf.len() < total {
                break;
            }
            let request: Vec<u8> = buf.drain(..total).collect();
            let failure = failures
                .lock()
                .expect("proxy failures")
                .iter()
                .find(|f| target.contains(&f.target_contains))
                .cloned();
            log.lock().expect("proxy log").push(Seen { method, target });
            let sent = match failure {
                Some(f) => {
                    let body = format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>injected by the test proxy</Message><RequestId>PROXY</RequestId></Error>",
                        f.code
                    );
                    let response = format!(
                        "HTTP/1.1 {} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                        f.status,
                        body.len()
                    );
                    answer.write_all(response.as_bytes())
                }
                None => upstream.write_all(&request),
            };
            if sent.is_err() {
                break 'conn;
            }
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = back.join();
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
