//! `kmsrot_snapshot!`: what a user sees, the exit code, stdout and stderr in
//! one snapshot, with everything that changes from run to run or machine to
//! machine replaced by a placeholder (uv's `uv_snapshot!` habit).
//!
//! ```ignore
//! let seen = kmsrot_snapshot!("plan_from_the_sample", kmsrot().args(["plan", ...]));
//! let seen = kmsrot_snapshot!("apply_dry_run", cmd, [(r"alias/\w+", "[ALIAS]")]);
//! ```
//!
//! The shared filters cover times, dates, temp folders, the repository path, loopback
//! ports, key ids, SHA-256 hashes, action and finding ids and the version;
//! a test adds its own first (they run before the shared ones).

use std::process::{Command, Output};

/// One run of the binary as a person sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Seen {
    /// The snapshot text: exit code, then both streams, each labelled.
    pub fn text(&self) -> String {
        format!(
            "exit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

impl From<(i32, String, String)> for Seen {
    /// From the `(code, stdout, stderr)` that `support::run` returns.
    fn from((code, stdout, stderr): (i32, String, String)) -> Self {
        Seen {
            code,
            stdout,
            stderr,
        }
    }
}

/// Runs the command to completion.
pub fn run(cmd: &mut Command) -> Seen {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running kmsrot");
    Seen {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `s` as a regex that matches it literally.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The filters every snapshot gets, in the order they apply.
pub fn filters() -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    // Paths first: they may hold digits the patterns below would take.
    let repo = env!("CARGO_MANIFEST_DIR");
    f.push((regex_escape(repo), "[REPO]".into()));
    let tmp = std::env::temp_dir();
    let mut tmps = vec![tmp.display().to_string()];
    if let Ok(c) = tmp.canonicalize() {
        tmps.push(c.display().to_string());
    }
    for t in tmps {
        let t = t.trim_end_matches('/').to_string();
        f.push((
            format!(r"{}/\.tmp[A-Za-z0-9_]+", regex_escape(&t)),
            "[TEMP]".into(),
        ));
    }
    let plain: &[(&str, &str)] = &[
        (r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "[TIME]",
        ),
        // Bare dates: key creation days from moto (today) and the sample
        // bundle's days, which move when it is regenerated.
        (r"\b\d{4}-\d{2}-\d{2}\b", "[DATE]"),
        (r"\b\d+\.\d+ ?(ms|s)\b", "[DURATION]"),
        (r"mrk-[0-9a-f]{32}", "mrk-[KEY_ID]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[KEY_ID]",
        ),
        (r"[0-9a-f]{64}", "[SHA256]"),
        (r"act-[0-9a-f]{16}", "[ACTION_ID]"),
        (r"kr-[0-9a-f]{20}", "kr-[FINDING_ID]"),
        (r"kmsrot \d+\.\d+\.\d+", "kmsrot [VERSION]"),
    ];
    f.extend(plain.iter().map(|(p, r)| (p.to_string(), r.to_string())));
    f
}

/// Runs a command and snapshots what the user sees: `kmsrot_snapshot!(name,
/// cmd)`, or `kmsrot_snapshot!(name, cmd, filters)` with `filters` any list of
/// `(pattern, replacement)` applied before the shared ones. Returns the
/// [`Seen`] run for further assertions.
#[macro_export]
macro_rules! kmsrot_snapshot {
    ($name:expr, $cmd:expr) => {{
        let seen = $crate::support::snapshot::run($cmd);
        $crate::assert_seen!($name, &seen);
        seen
    }};
    ($name:expr, $cmd:expr, $filters:expr) => {{
        let seen = $crate::support::snapshot::run($cmd);
        $crate::assert_seen!($name, &seen, $filters);
        seen
    }};
}

/// Snapshots a [`Seen`] already run (when the test needs the run first, or
/// runs it through a helper of its own).
#[macro_export]
macro_rules! assert_seen {
    ($name:expr, $seen:expr) => {{
        let none: [(&str, &str); 0] = [];
        $crate::assert_seen!($name, $seen, none)
    }};
    ($name:expr, $seen:expr, $filters:expr) => {{
        let seen: &$crate::support::snapshot::Seen = $seen;
        let mut settings = ::insta::Settings::clone_current();
        for (p, r) in $filters {
            settings.add_filter(p, r);
        }
        for (p, r) in $crate::support::snapshot::filters() {
            settings.add_filter(&p, r);
        }
        settings.bind(|| ::insta::assert_snapshot!($name, seen.text()));
    }};
}
