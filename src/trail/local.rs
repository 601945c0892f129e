//! Local files and folders as a trail source: every file under the path
//! (recursively) goes through [`scan_bytes`] on all cores, and the results
//! reach the [`Collector`] in path order, so which copy of a duplicated event
//! is kept does not depend on thread timing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::Result;

use super::gz;
use super::reader::{over_limit, scan_bytes_held, FileScan, ReadOptions, Verdict};
use super::{Collector, FileIssue};
use crate::error::hinted;
use crate::progress::Progress;

/// Every regular file under `root` (or `root` itself), sorted. Unreadable
/// folders are returned as errors so the coverage can name them.
pub fn list_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let meta = std::fs::metadata(root).map_err(|e| {
        hinted(
            format!("{}: {e}", root.display()),
            "give a file or folder of CloudTrail logs, s3://BUCKET/PREFIX, lookup or lake:EVENT_DATA_STORE",
        )
    })?;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    if meta.is_file() {
        files.push(root.to_path_buf());
        return Ok((files, errors));
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!("{}: cannot list folder: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    errors.push(format!("{}: cannot list folder: {e}", dir.display()));
                    continue;
                }
            };
            let path = entry.path();
            // Symlinked files are followed; symlinked folders are not, so a
            // link back up the tree cannot loop.
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => files.push(path),
                Ok(t) if t.is_symlink() => {
                    if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                        files.push(path);
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
    }
    files.sort();
    Ok((files, errors))
}

/// Scans the local SOURCE `root` into `collector`.
pub fn scan(
    root: &Path,
    source: &str,
    opts: &ReadOptions,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
    let (files, errors) = list_files(root)?;
    let idx = collector.begin_source(source, "file");
    collector.source_mut(idx).errors.extend(errors);
    let bar = progress.bar("files", files.len() as u64);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<FileScan, String>)>(workers * 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            let files = &files;
            s.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let label = path.display().to_string();
                    let result = read_and_scan(path, &label, &mut buf, opts);
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Results are applied in file order; the few that arrive early wait.
        let mut pending = BTreeMap::new();
        let mut want = 0usize;
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&want) {
                apply(collector, idx, &files[want], result);
                bar.inc(1);
                want += 1;
            }
        }
    });
    bar.finish_and_clear();
    Ok(())
}

/// Reads one file into `buf` and scans it. A file larger than
/// `--max-log-bytes` is not read at all; one larger than [`gz::LARGE`] is
/// read only while holding the large-buffer permit, and its buffer is given
/// back before the permit is.
fn read_and_scan(
    path: &Path,
    label: &str,
    buf: &mut Vec<u8>,
    opts: &ReadOptions,
) -> Result<FileScan, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if size > opts.max_log_bytes {
        return Ok(FileScan::unread(
            Verdict::Corrupt(over_limit(size, opts.max_log_bytes)),
            size,
        ));
    }
    let mut permit = (size > gz::LARGE as u64).then(gz::large_permit);
    buf.clear();
    buf.reserve_exact(usize::try_from(size).unwrap_or(0));
    // `take` keeps a file that grows while being read inside the limit.
    let read = (&mut file)
        .take(opts.max_log_bytes.saturating_add(1))
        .read_to_end(buf);
    let result = match read {
        Err(e) => Err(format!("cannot read: {e}")),
        Ok(n) if n as u64 > opts.max_log_bytes => Ok(FileScan::unread(
            Verdict::Corrupt(over_limit(n as u64, opts.max_log_bytes)),
            n as u64,
        )),
        Ok(_) => Ok(scan_bytes_held(label, buf, opts, &mut permit)),
    };
    if buf.capacity() > gz::LARGE {
        *buf = Vec::new();
    }
    drop(permit);
    result
}

/// Adds one file's outcome to the ledger.
pub fn apply(collector: &mut Collector, idx: usize, path: &Path, result: Result<FileScan, String>) {
    let label = path.display().to_string();
    let scan = match result {
        Ok(s) => s,
        Err(reason) => {
            collector.source_mut(idx).files_corrupt.push(FileIssue {
                path: label,
                reason,
            });
            return;
        }
    };
    add_scan(collector, idx, &label, scan);
}

/// Adds a [`FileScan`] of `label` to source `idx`: counts, issue, rows, days.
/// Shared by every source that reads whole files (local, S3).
pub fn add_scan(collector: &mut Collector, idx: usize, label: &str, scan: FileScan) {
    {
        let src = collector.source_mut(idx);
        src.bytes_read += scan.bytes;
        src.records_read += scan.records_read;
        src.records_bad_time += scan.bad_times;
        match scan.verdict {
            Verdict::Read => src.files_read += 1,
            Verdict::Skipped(reason) => src.files_skipped.push(FileIssue {
                path: label.to_string(),
                reason,
            }),
            Verdict::Corrupt(reason) => src.files_corrupt.push(FileIssue {
                path: label.to_string(),
                reason,
            }),
        }
    }
    for (account, region, day) in &scan.log_days {
        collector.note_log_day(account, region, *day);
    }
    collector.add_rows_delivered(idx, scan.rows, scan.delivered);
}
