//! `trail-harness DIR [THREADS]`: every file under DIR through
//! `scan_bytes` on THREADS workers (default: all cores); prints files,
//! records read and rows kept as JSON.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kmsrot::trail::reader::{scan_bytes, ReadOptions, Verdict};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: trail-harness DIR [THREADS]");
        std::process::exit(2);
    };
    let threads = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut files = Vec::new();
    walk(Path::new(&dir), &mut files);
    files.sort();
    let next = AtomicUsize::new(0);
    let kept = AtomicUsize::new(0);
    let read = AtomicUsize::new(0);
    let bad = AtomicUsize::new(0);
    let opts = ReadOptions::default();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = files.get(i) else { break };
                    buf.clear();
                    if std::fs::File::open(p)
                        .and_then(|mut f| f.read_to_end(&mut buf))
                        .is_err()
                    {
                        bad.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let r = scan_bytes(&p.to_string_lossy(), &buf, &opts);
                    if r.verdict != Verdict::Read {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    kept.fetch_add(r.rows.len(), Ordering::Relaxed);
                    read.fetch_add(r.records_read as usize, Ordering::Relaxed);
                }
            });
        }
    });
    println!(
        "{{\"files\": {}, \"records_read\": {}, \"kept\": {}, \"not_read\": {}}}",
        files.len(),
        read.into_inner(),
        kept.into_inner(),
        bad.into_inner()
    );
}
