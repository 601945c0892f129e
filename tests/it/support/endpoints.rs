//! Endpoints a first run meets that moto cannot play: one that accepts and
//! never answers, a port that refuses, a server that speaks plain HTTP where
//! TLS is expected, and the IAM Identity Center services (the SSO portal's
//! GetRoleCredentials and SSO OIDC's CreateToken) refusing a session that
//! has expired, in their documented REST-JSON error shapes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A loopback port with nothing listening: connections are refused.
pub fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Accepts every connection and never writes a byte: an endpoint behind a
/// firewall that swallows traffic, or an IMDS address off EC2.
pub struct Silent {
    pub url: String,
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    pub fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = c {
                    held.push(c);
                }
            }
        });
        Silent {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stop,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers every connection at once with a plain-HTTP 400, as a web server
/// does to bytes it cannot parse: where a client expects TLS, its handshake
/// reads this as garbage.
pub struct PlainHttp {
    pub url: String,
    port: u16,
    stop: Arc<AtomicBool>,
}

impl PlainHttp {
    pub fn start() -> PlainHttp {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut c) = c {
                    let _ = c.write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    // Read what the client sent, so closing does not reset.
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                    let _ = c.read(&mut [0u8; 4096]);
                }
            }
        });
        PlainHttp {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stop,
        }
    }
}

impl Drop for PlainHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request as a small server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

type Handler = dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server answering from `handler`,
/// recording what it was asked.
pub struct Canned {
    pub url: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Canned {
    pub fn start(handler: Arc<Handler>) -> Canned {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sn, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(c) = c else { continue };
                let (sn, h) = (sn.clone(), handler.clone());
                std::thread::spawn(move || {
                    let _ = answer(c, &sn, h.as_ref());
                });
            }
        });
        Canned {
            url: format!("http://127.0.0.1:{port}"),
            port,
            seen,
            stop,
        }
    }

    /// Every request, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// IAM Identity Center refusing an expired session, as AWS documents it:
    /// SSO OIDC CreateToken (`POST /token`) answers InvalidGrantException for
    /// the refresh token, and the portal's GetRoleCredentials (`GET
    /// /federation/credentials`) UnauthorizedException for the access token.
    pub fn sso_expired() -> Canned {
        Canned::start(Arc::new(|r: &Seen| {
            let json = ("Content-Type".to_string(), "application/json".to_string());
            if r.method == "POST" && r.path == "/token" {
                (
                    400,
                    vec![
                        json,
                        ("x-amzn-ErrorType".into(), "InvalidGrantException".into()),
                    ],
                    r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#
                        .into(),
                )
            } else if r.method == "GET" && r.path.starts_with("/federation/credentials") {
                (
                    401,
                    vec![
                        json,
                        ("x-amzn-ErrorType".into(), "UnauthorizedException".into()),
                    ],
                    r#"{"message":"Session token not found or invalid"}"#.into(),
                )
            } else {
                (404, vec![json], r#"{"message":"not found"}"#.into())
            }
        }))
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let request = Seen {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or("/").to_string(),
    };
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    seen.lock().unwrap().push(request.clone());
    let (status, headers, body) = handler(&request);
    let mut out = format!("HTTP/1.1 {status} Answer\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let mut w = conn;
    w.write_all(out.as_bytes())?;
    w.flush()
}
