//! The apply journal: append-only JSON lines, each fsynced before the next
//! step, so that after a crash (kill -9, power loss) it says exactly which
//! calls may have been made.
//!
//! Lines: `start` (the run and every approved action), `attempt` (written and
//! synced before each KMS call), `outcome` (after the action ends).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::plan::ActionType;

/// One approved action, as the start line records it, so that `verify` needs
/// only the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    pub action_id: String,
    pub action: ActionType,
    pub region: String,
    pub key_arn: String,
    pub label: String,
    pub rotation_period_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Enabled,
    Skipped,
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Enabled => "enabled",
            Verdict::Skipped => "skipped",
            Verdict::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Start {
        at: String,
        approval: String,
        plan_sha256: String,
        approver: String,
        requested: Vec<Requested>,
    },
    Attempt {
        at: String,
        action_id: String,
        key_arn: String,
        call: String,
    },
    Outcome {
        at: String,
        action_id: String,
        key_arn: String,
        region: String,
        action: ActionType,
        outcome: Verdict,
        rotation_period_days: i64,
        reason: Option<String>,
        error_code: Option<String>,
        error_message: Option<String>,
        /// The run was interrupted after the call was sent; the outcome comes
        /// from re-reading the key.
        #[serde(default)]
        resolved_after_interruption: bool,
    },
}

/// What a journal says so far.
#[derive(Debug, Default)]
pub struct Replay {
    pub plan_sha256: Option<String>,
    pub requested: Vec<Requested>,
    /// Last outcome per action id.
    pub outcomes: BTreeMap<String, Line>,
    /// Actions with an attempt after their last outcome: a call may have been
    /// made whose answer was never recorded.
    pub in_flight: BTreeMap<String, String>,
    /// A torn last line (the process died mid-write) was ignored.
    pub torn_tail: bool,
    /// Bytes up to the end of the last whole line.
    pub valid_len: u64,
    pub runs: usize,
}

impl Replay {
    pub fn outcome(&self, action_id: &str) -> Option<(Verdict, &Line)> {
        match self.outcomes.get(action_id) {
            Some(l @ Line::Outcome { outcome, .. }) => Some((*outcome, l)),
            _ => None,
        }
    }
}

/// Reads a journal. A missing file is an empty journal. A malformed line is
/// an error naming the file and line, except a torn last line without its
/// newline: that is what kill -9 during a write leaves, and since every
/// attempt is synced before its call, a torn line never hides a call.
pub fn replay(path: &Path) -> Result<Replay> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)
                .map_err(|e| anyhow!("{}: cannot read the journal: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::default()),
        Err(e) => bail!("{}: cannot open the journal: {e}", path.display()),
    }
    let mut r = Replay {
        valid_len: text.len() as u64,
        ..Replay::default()
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(_) if i + 1 == lines.len() && !complete => {
                r.torn_tail = true;
                r.valid_len = (text.len() - raw.len()) as u64;
                break;
            }
            Err(e) => bail!(
                "{}:{}: not a journal line: {}",
                path.display(),
                i + 1,
                e.to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or("malformed")
            ),
        };
        match &line {
            Line::Start {
                plan_sha256,
                requested,
                ..
            } => {
                if let Some(prev) = &r.plan_sha256 {
                    if prev != plan_sha256 {
                        bail!(
                            "{}:{}: the journal mixes two plans ({prev} and {plan_sha256})",
                            path.display(),
                            i + 1
                        );
                    }
                }
                r.plan_sha256 = Some(plan_sha256.clone());
                for q in requested {
                    if !r.requested.iter().any(|x| x.action_id == q.action_id) {
                        r.requested.push(q.clone());
                    }
                }
                r.runs += 1;
            }
            Line::Attempt {
                action_id, call, ..
            } => {
                r.in_flight.insert(action_id.clone(), call.clone());
            }
            Line::Outcome { action_id, .. } => {
                r.in_flight.remove(action_id);
                r.outcomes.insert(action_id.clone(), line.clone());
            }
        }
    }
    Ok(r)
}

/// The journal open for appending. Lines from concurrent tasks are written
/// whole, one at a time, each followed by `sync_data`.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal for appending, locked, and replays it
    /// under the lock so no other run can add to it in between. A torn last
    /// line is cut off: it is the one write that never completed, so removing
    /// it loses nothing the journal had promised.
    pub fn open(path: &Path) -> Result<(Journal, Replay)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the journal for writing", path.display()))?;
        lock_exclusive(&file, path)?;
        let replay = replay(path)?;
        if replay.torn_tail {
            file.set_len(replay.valid_len)
                .and_then(|_| file.sync_data())
                .with_context(|| {
                    format!(
                        "{}: cannot repair the journal's torn last line",
                        path.display()
                    )
                })?;
        }
        let journal = Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        };
        Ok((journal, replay))
    }

    pub fn append(&self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        // A poisoned lock means another task panicked mid-append; the file
        // itself is still a valid sequence of whole lines.
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .with_context(|| format!("{}: cannot write the journal", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive advisory lock for the life of the open file: a second
/// apply on the same journal would otherwise re-check and call for the same
/// keys at the same time. The kernel drops the lock when the process dies,
/// so a kill -9 never leaves a stale lock behind.
#[cfg(unix)]
fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for
    // the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock {
        bail!(
            "{}: another `kmsrot apply` is using this journal; wait for it to finish",
            path.display()
        );
    }
    bail!("{}: cannot lock the journal: {err}", path.display())
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File, _path: &Path) -> Result<()> {
    Ok(())
}

/// The journal next to an approval: `approval.json` → `approval.journal.jsonl`.
pub fn default_path(approval: &Path) -> PathBuf {
    let stem = approval
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "approval".into());
    approval.with_file_name(format!("{stem}.journal.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str) -> Line {
        Line::Outcome {
            at: "t".into(),
            action_id: id.into(),
            key_arn: "arn".into(),
            region: "us-east-1".into(),
            action: ActionType::EnableRotation,
            outcome: Verdict::Enabled,
            rotation_period_days: 365,
            reason: None,
            error_code: None,
            error_message: None,
            resolved_after_interruption: false,
        }
    }

    fn attempt(id: &str) -> Line {
        Line::Attempt {
            at: "t".into(),
            action_id: id.into(),
            key_arn: "arn".into(),
            call: "EnableKeyRotation".into(),
        }
    }

    #[test]
    fn replay_finds_done_and_in_flight_actions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (j, _) = Journal::open(&path).unwrap();
        j.append(&attempt("a")).unwrap();
        j.append(&outcome("a")).unwrap();
        j.append(&attempt("b")).unwrap();
        drop(j);
        // A torn tail, as kill -9 mid-write leaves it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"type":"outcome","action_id":"b","#)
            .unwrap();
        drop(f);
        let r = replay(&path).unwrap();
        assert!(r.torn_tail);
        assert!(r.in_flight.contains_key("b"));
        assert_eq!(r.outcome("a").map(|o| o.0), Some(Verdict::Enabled));
        assert!(r.outcome("b").is_none());
        assert!(r.in_flight.contains_key("b"));

        let (j, r) = Journal::open(&path).unwrap();
        assert!(r.torn_tail);
        j.append(&outcome("b")).unwrap();
        let r = replay(&path).unwrap();
        assert!(!r.torn_tail);
        assert!(r.in_flight.is_empty());
        assert_eq!(r.outcomes.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let first = Journal::open(&path).unwrap();
        let err = Journal::open(&path)
            .err()
            .expect("the journal is locked")
            .to_string();
        assert!(err.contains("another `kmsrot apply`"), "{err}");
        drop(first);
        Journal::open(&path).unwrap();
    }

    #[test]
    fn a_malformed_middle_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"type\":\"nope\"}\n{}\n").unwrap();
        let err = replay(&path).unwrap_err().to_string();
        assert!(err.contains("j.jsonl:1: not a journal line"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn default_path_sits_next_to_the_approval() {
        assert_eq!(
            default_path(Path::new("/x/approval.json")),
            PathBuf::from("/x/approval.journal.jsonl")
        );
    }
}
