//! The apply journal: append-only JSON lines, each fsynced before the next
//! step, so that after a crash (kill -9, power loss) it says exactly which
//! calls may have been made.
//!
//! Every line starts with the SHA-256 of the approval it belongs to; a
//! journal never mixes two approvals. Lines: `start` (the run, its executor
//! and every approved action), `attempt` (written and synced before each KMS
//! call), `outcome` (after the action ends, or `in_flight` when a call was
//! sent and its answer lost).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::plan::ActionType;
use crate::aws::CallerIdentity;

/// One approved action, as the start line records it, so that `verify` needs
/// only the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    pub action_id: String,
    pub action: ActionType,
    /// The key's account: the run that acts on it needs that account's
    /// credentials.
    pub account_id: String,
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
    /// A changing call was sent and its answer lost (a timeout, a dropped
    /// connection, a 5xx): it may have taken effect. Resolved by re-reading
    /// the key, at the end of the run or on the next one.
    InFlight,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Enabled => "enabled",
            Verdict::Skipped => "skipped",
            Verdict::Failed => "failed",
            Verdict::InFlight => "in_flight",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A journal line: the approval it belongs to, then what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub approval_sha256: String,
    #[serde(flatten)]
    pub line: Line,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Start {
        at: String,
        approval: String,
        plan_sha256: String,
        approver: String,
        /// Who runs the apply (STS GetCallerIdentity).
        executor: Option<CallerIdentity>,
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
        /// The period the key was left rotating at (for `enabled`), else the
        /// one requested.
        rotation_period_days: i64,
        reason: Option<String>,
        error_code: Option<String>,
        error_message: Option<String>,
        /// The outcome comes from re-reading the key after a call whose
        /// answer was lost (a crash, a timeout, a dropped connection).
        #[serde(default)]
        resolved_after_interruption: bool,
        /// A call that was sent and may yet show its effect (KMS is
        /// eventually consistent): the next run treats it as in flight.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unconfirmed_call: Option<String>,
    },
}

/// What a journal says so far.
#[derive(Debug, Default)]
pub struct Replay {
    pub approval_sha256: Option<String>,
    pub plan_sha256: Option<String>,
    pub requested: Vec<Requested>,
    /// Last outcome per action id.
    pub outcomes: BTreeMap<String, Line>,
    /// Actions with a call that may have been made and whose effect is not
    /// yet known: an attempt after their last outcome, or an outcome that
    /// left a call unconfirmed. The value is the call.
    pub in_flight: BTreeMap<String, String>,
    /// A torn last line (the process died mid-write) was ignored.
    pub torn_tail: bool,
    /// Bytes up to the end of the last whole line.
    pub valid_len: u64,
    pub runs: usize,
    /// The executor of each run, in order.
    pub executors: Vec<Option<CallerIdentity>>,
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
        let entry: Entry = match serde_json::from_str(raw) {
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
        match &r.approval_sha256 {
            Some(prev) if *prev != entry.approval_sha256 => bail!(
                "{}:{}: the journal mixes two approvals ({prev} and {})",
                path.display(),
                i + 1,
                super::display_safe(&entry.approval_sha256)
            ),
            Some(_) => {}
            None => r.approval_sha256 = Some(entry.approval_sha256.clone()),
        }
        let line = entry.line;
        match &line {
            Line::Start {
                plan_sha256,
                requested,
                executor,
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
                r.executors.push(executor.clone());
                r.runs += 1;
            }
            Line::Attempt {
                action_id, call, ..
            } => {
                r.in_flight.insert(action_id.clone(), call.clone());
            }
            Line::Outcome {
                action_id,
                unconfirmed_call,
                ..
            } => {
                match unconfirmed_call {
                    Some(call) => r.in_flight.insert(action_id.clone(), call.clone()),
                    None => r.in_flight.remove(action_id),
                };
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
    approval_sha256: String,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal of one approval for appending, locked,
    /// and replays it under the lock so no other run can add to it in
    /// between. A journal of another approval is refused. A torn last line is
    /// cut off: it is the one write that never completed, so removing it
    /// loses nothing the journal had promised.
    pub fn open(path: &Path, approval_sha256: &str) -> Result<(Journal, Replay)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the journal for writing", path.display()))?;
        lock_exclusive(&file, path, "this journal")?;
        let replay = replay(path)?;
        check_belongs(path, &replay, approval_sha256)?;
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
            approval_sha256: approval_sha256.to_string(),
            file: Mutex::new(file),
        };
        Ok((journal, replay))
    }

    pub fn append(&self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_string(&Entry {
            approval_sha256: self.approval_sha256.clone(),
            line: line.clone(),
        })?;
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

/// Refuses a journal written for another approval: its outcomes say nothing
/// about this one's actions.
pub fn check_belongs(path: &Path, replay: &Replay, approval_sha256: &str) -> Result<()> {
    match &replay.approval_sha256 {
        Some(sha) if sha != approval_sha256 => Err(crate::error::hinted(
            format!(
                "{}: the journal belongs to another approval ({sha}, not {approval_sha256})",
                path.display()
            ),
            "leave out --journal: each approval gets its own journal by default",
        )),
        _ => Ok(()),
    }
}

/// An exclusive lock held for as long as this value lives.
pub struct Lock {
    _file: File,
}

/// Locks an approval for one apply at a time, with a lock file beside it
/// (`approval.json.lock`): two applies of the same approval with different
/// journals would otherwise each make every call. The file stays behind; the
/// lock is on the open file, so deleting it while held would let a second
/// run lock a new file of the same name.
pub fn lock_approval(approval: &Path) -> Result<Lock> {
    let mut name = approval
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "approval".into());
    name.push(".lock");
    let lock_path = approval.with_file_name(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            crate::error::hinted(
                format!("{}: cannot create the lock file: {e}", lock_path.display()),
                "apply needs to write beside the approval; copy the approval and its plan to a writable folder",
            )
        })?;
    lock_exclusive(&file, approval, "this approval")?;
    Ok(Lock { _file: file })
}

/// Takes an exclusive advisory lock for the life of the open file. The kernel
/// drops the lock when the process dies, so a kill -9 never leaves a stale
/// lock behind.
#[cfg(unix)]
fn lock_exclusive(file: &File, path: &Path, what: &str) -> Result<()> {
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
            "{}: another `kmsrot apply` is using {what}; wait for it to finish",
            path.display()
        );
    }
    bail!("{}: cannot lock {what}: {err}", path.display())
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File, _path: &Path, _what: &str) -> Result<()> {
    Ok(())
}

/// The journal of an approval, beside it and named after its hash:
/// `approval.json` → `approval.3f2a9c1b7d4e.journal.jsonl`. Another approval
/// (even of the same plan, even under the same file name) gets another
/// journal.
pub fn default_path(approval: &Path, approval_sha256: &str) -> PathBuf {
    let stem = approval
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "approval".into());
    let short: String = approval_sha256
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    approval.with_file_name(format!("{stem}.{short}.journal.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn outcome(id: &str, verdict: Verdict, unconfirmed: Option<&str>) -> Line {
        Line::Outcome {
            at: "t".into(),
            action_id: id.into(),
            key_arn: "arn".into(),
            region: "us-east-1".into(),
            action: ActionType::EnableRotation,
            outcome: verdict,
            rotation_period_days: 365,
            reason: None,
            error_code: None,
            error_message: None,
            resolved_after_interruption: false,
            unconfirmed_call: unconfirmed.map(str::to_string),
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
        let (j, _) = Journal::open(&path, SHA).unwrap();
        j.append(&attempt("a")).unwrap();
        j.append(&outcome("a", Verdict::Enabled, None)).unwrap();
        j.append(&attempt("b")).unwrap();
        j.append(&attempt("c")).unwrap();
        j.append(&outcome("c", Verdict::InFlight, Some("EnableKeyRotation")))
            .unwrap();
        drop(j);
        // A torn tail, as kill -9 mid-write leaves it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"approval_sha256":"aaaa","type":"outcome","action_id":"b","#)
            .unwrap();
        drop(f);
        let r = replay(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.approval_sha256.as_deref(), Some(SHA));
        assert_eq!(r.outcome("a").map(|o| o.0), Some(Verdict::Enabled));
        assert!(r.outcome("b").is_none());
        assert!(r.in_flight.contains_key("b"));
        assert_eq!(r.outcome("c").map(|o| o.0), Some(Verdict::InFlight));
        assert!(
            r.in_flight.contains_key("c"),
            "an in-flight outcome stays in flight"
        );

        let (j, r) = Journal::open(&path, SHA).unwrap();
        assert!(r.torn_tail);
        j.append(&outcome("b", Verdict::Enabled, None)).unwrap();
        j.append(&outcome("c", Verdict::Enabled, None)).unwrap();
        let r = replay(&path).unwrap();
        assert!(!r.torn_tail);
        assert!(r.in_flight.is_empty());
        assert_eq!(r.outcomes.len(), 3);
        // Every line names the approval.
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            assert!(
                line.starts_with(&format!("{{\"approval_sha256\":\"{SHA}\"")),
                "{line}"
            );
        }
    }

    #[test]
    fn a_journal_of_another_approval_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (j, _) = Journal::open(&path, SHA).unwrap();
        j.append(&attempt("a")).unwrap();
        drop(j);
        let other = "b".repeat(64);
        let err = Journal::open(&path, &other).err().unwrap().to_string();
        assert!(err.contains("belongs to another approval"), "{err}");
        // Nor may two approvals' lines be mixed in one file.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(
            f,
            "{}",
            serde_json::to_string(&Entry {
                approval_sha256: other,
                line: attempt("a")
            })
            .unwrap()
        )
        .unwrap();
        let err = replay(&path).unwrap_err().to_string();
        assert!(
            err.contains("j.jsonl:2: the journal mixes two approvals"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let first = Journal::open(&path, SHA).unwrap();
        let err = Journal::open(&path, SHA)
            .err()
            .expect("the journal is locked")
            .to_string();
        assert!(err.contains("another `kmsrot apply`"), "{err}");
        drop(first);
        Journal::open(&path, SHA).unwrap();

        let approval = dir.path().join("approval.json");
        let held = lock_approval(&approval).unwrap();
        let err = lock_approval(&approval).err().unwrap().to_string();
        assert!(
            err.contains("approval.json: another `kmsrot apply` is using this approval"),
            "{err}"
        );
        drop(held);
        lock_approval(&approval).unwrap();
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
    fn default_path_sits_next_to_the_approval_named_by_its_hash() {
        assert_eq!(
            default_path(Path::new("/x/approval.json"), "0123456789abcdef0123"),
            PathBuf::from("/x/approval.0123456789ab.journal.jsonl")
        );
    }
}
