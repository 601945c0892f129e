//! Offline commands never touch AWS: `trail scan` of local files, `assess`,
//! `report`, `diff`, `plan`, `verify-bundle` of an unsigned bundle (and with
//! `--no-signature`), `iac`, `completions` and `man` run with no
//! region configured, IMDS enabled and pointed at a listener, and every
//! endpoint pointed there too. Building the SDK configuration would probe
//! IMDS for a region; the listener must see no connection at all.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::{fixtures, kmsrot, run};

/// Counts every connection made to it, answering each with a 404.
struct Listener {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", l.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut s = stream;
                let _ = std::io::Write::write_all(
                    &mut s,
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Listener { url, connections }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// kmsrot with nothing configured but a trap: no region, IMDS on and aimed
/// at the listener, every AWS endpoint aimed at it too.
fn offline_kmsrot(trap: &Listener) -> Command {
    let mut cmd = kmsrot();
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &trap.url)
        .env("AWS_ENDPOINT_URL", &trap.url);
    cmd
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn sample_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle")
}

#[test]
fn offline_commands_never_reach_aws() {
    let trap = Listener::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let bundle = w.join("bundle");
    copy_dir(&sample_bundle(), &bundle);
    let logs = fixtures().join("cloudtrail/aws-docs-examples/current-docs-mirror");
    let (p, b, o) = (
        |s: &str| w.join(s).display().to_string(),
        bundle.display().to_string(),
        sample_bundle().display().to_string(),
    );

    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "trail scan",
            vec![
                "trail".into(),
                "scan".into(),
                logs.display().to_string(),
                "--out".into(),
                p("trail"),
            ],
        ),
        (
            "assess",
            vec![
                "assess".into(),
                b.clone(),
                "--fail-on".into(),
                "critical".into(),
            ],
        ),
        (
            "report",
            vec!["report".into(), b.clone(), "--out".into(), p("report")],
        ),
        ("diff", vec!["diff".into(), o.clone(), b.clone()]),
        (
            "plan",
            vec!["plan".into(), b.clone(), "--out".into(), p("plan.json")],
        ),
        (
            "verify-bundle",
            vec!["verify-bundle".into(), o.clone(), "--no-signature".into()],
        ),
        // An unsigned bundle has no signature to check against KMS.
        (
            "verify-bundle unsigned",
            vec!["verify-bundle".into(), o.clone()],
        ),
        (
            "iac",
            vec![
                "iac".into(),
                fixtures().join("iac/cfn").display().to_string(),
                "--out".into(),
                p("iac"),
            ],
        ),
        ("completions", vec!["completions".into(), "bash".into()]),
        ("man", vec!["man".into(), "--out".into(), p("man")]),
    ];
    for (name, args) in runs {
        let (code, _, stderr) = run(offline_kmsrot(&trap).args(&args));
        assert_ne!(code, 2, "{name} failed: {stderr}");
        assert_eq!(
            trap.count(),
            0,
            "{name} connected to AWS (IMDS or an endpoint) though it is offline: {stderr}"
        );
    }
}
