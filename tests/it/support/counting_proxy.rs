//! A TCP proxy in front of moto that records every HTTP request line, so a
//! test can count what kmsrot asked of S3 (which objects it fetched, which
//! prefixes it listed) without trusting kmsrot's own account of it.
//!
//! kmsrot only reads from S3, so every request it sends through the proxy
//! has a head and a Content-Length body at most; the proxy frames requests
//! by that and copies responses back untouched.

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

pub struct CountingProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream_port`.
    pub fn start(upstream_port: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let log = log.clone();
                thread::spawn(move || relay(client, upstream_port, log));
            }
        });
        CountingProxy {
            url: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("proxy log").clone()
    }

    pub fn clear(&self) {
        self.seen.lock().expect("proxy log").clear();
    }
}

fn relay(mut client: TcpStream, upstream_port: u16, log: Arc<Mutex<Vec<Seen>>>) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut up_read), Ok(mut client_write)) = (upstream.try_clone(), client.try_clone())
    else {
        return;
    };
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Both);
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Bytes of a request body still to pass through before the next head.
    let mut body_left = 0usize;
    loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if upstream.write_all(&chunk[..n]).is_err() {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if body_left > 0 {
                let skip = body_left.min(buf.len());
                buf.drain(..skip);
                body_left -= skip;
                if body_left > 0 {
                    break;
                }
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.lines();
            let mut parts = lines.next().unwrap_or("").split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            body_left = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            log.lock().expect("proxy log").push(Seen { method, target });
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
