//! Test support: a real moto server per test, SDK clients pointed at it, and
//! the kmsrot binary run against it.
//!
//! Tests fail, never skip, when the emulator cannot start: the README's test
//! command installs it into `.venv`.

#![allow(dead_code)]

pub mod cloudtrail_fixture;
pub mod counting_proxy;
pub mod endpoints;
pub mod proxy;
pub mod signed_archive;
pub mod snapshot;

pub use kmsrot_testkit::{org, seed};

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::Credentials;

pub const ACCOUNT: &str = "123456789012"; // moto's default account

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The moto_server executable: `$KMSROT_MOTO_SERVER`, the repo's `.venv`,
/// else `moto_server` on PATH.
fn moto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("KMSROT_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// The Python of the venv that holds moto (and the pinned sqlglot and
/// duckdb `scripts/test` installs beside it).
pub fn python() -> PathBuf {
    let moto = moto_binary();
    match moto.parent() {
        Some(dir) if dir.join("python").exists() => dir.join("python"),
        _ => PathBuf::from("python3"),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Moto {
    pub fn start() -> Moto {
        let mut last_err = String::new();
        // The port is free when chosen but could be taken before moto binds
        // it; try a few.
        for _ in 0..3 {
            let port = free_port();
            let mut child = match Command::new(moto_binary())
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot start moto_server ({}): {e}. Run scripts/test, which installs it into .venv",
                    moto_binary().display()
                ),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("moto_server exited with {status}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        child,
                        port,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last_err.is_empty() {
                last_err = "moto_server did not listen within 30 s".into();
            }
        }
        panic!("moto_server could not start: {last_err}");
    }

    /// SDK config for seeding, with moto's fake credentials.
    pub async fn config(&self, region: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    pub async fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config(region).await)
    }

    pub async fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let cfg = self.config(region).await;
        let conf = aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The kmsrot binary with this server as its endpoint.
    pub fn kmsrot(&self) -> Command {
        let mut cmd = kmsrot();
        cmd.env("AWS_ENDPOINT_URL", &self.url);
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kmsrot binary with a clean, credential-safe environment: no real
/// profile or endpoint leaks in from the developer's shell.
pub fn kmsrot() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmsrot"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running kmsrot");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
