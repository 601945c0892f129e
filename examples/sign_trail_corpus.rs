//! A benchmark corpus made by `gen_trail_corpus`, with CloudTrail log file
//! validation on: the same log files (hard links, no copy) and hourly digest
//! files under `CloudTrail-Digest/`, chained and signed as AWS documents
//! (`kmsrot_testkit::digests`) with a key made here, so `kmsrot trail scan
//! --validate` can be measured against the same archive scanned without it.
//!
//! ```text
//! cargo run --release --example sign_trail_corpus -- CORPUS_DIR SIGNED_DIR [BUCKET]
//! ```
//!
//! Writes, in SIGNED_DIR: the log files and the digests in the archive's
//! layout, `digest-metadata.json` (object key → the `x-amz-meta-*` metadata S3
//! would return with it; `s3_dir_server` serves it) and `public-keys.json`
//! (what `aws cloudtrail list-public-keys` prints, for `--public-keys`).
//! BUCKET (default `bench-trail`) is the bucket the digests say they are in.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use kmsrot_testkit::digests::{sha256_hex, Chain, ListedLog, SigningKey};
use serde_json::{json, Value};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}

/// `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz` → (account, region, delivery time).
fn log_name(key: &str) -> Option<(String, String, DateTime<Utc>)> {
    let name = key.rsplit('/').next()?;
    let mut parts = name.split('_');
    let account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    let stamp = parts.next()?;
    let at = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .ok()?
        .and_utc();
    Some((account.to_string(), region.to_string(), at))
}

fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(dir)) = (
        args.get(1).map(PathBuf::from),
        args.get(2).map(PathBuf::from),
    ) else {
        eprintln!("usage: sign_trail_corpus CORPUS_DIR SIGNED_DIR [BUCKET]");
        std::process::exit(2);
    };
    let bucket = args.get(3).cloned().unwrap_or_else(|| "bench-trail".into());
    let mut sources = Vec::new();
    files_under(&src.join("AWSLogs"), &mut sources);
    sources.sort();
    let mut files = Vec::new();
    for from in &sources {
        let rel = from.strip_prefix(&src).expect("under the corpus");
        let to = dir.join(rel);
        fs::create_dir_all(to.parent().expect("a folder")).expect("creating a folder");
        if !to.exists() {
            // The same bytes, without a second gigabyte on disk.
            fs::hard_link(from, &to)
                .or_else(|_| fs::copy(from, &to).map(|_| ()))
                .expect("linking a corpus file");
        }
        files.push(to);
    }
    let mut logs: BTreeMap<(String, String), Vec<ListedLog>> = BTreeMap::new();
    for path in &files {
        let key = path
            .strip_prefix(&dir)
            .expect("under the corpus")
            .to_string_lossy()
            .replace('\\', "/");
        if key.contains("/CloudTrail-Digest/") {
            continue;
        }
        let Some((account, region, delivered)) = log_name(&key) else {
            continue;
        };
        let gz = fs::read(path).expect("reading a corpus file");
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut text)
            .expect("a corpus file is gzip");
        logs.entry((account, region)).or_default().push(ListedLog {
            key,
            delivered,
            sha256: sha256_hex(&text),
            oldest_event: None,
            newest_event: None,
        });
    }
    let signing = SigningKey::generate();
    let mut metadata: BTreeMap<String, Value> = BTreeMap::new();
    let mut digests = 0usize;
    for ((account, region), listed) in &logs {
        let first = listed.iter().map(|l| l.delivered).min().expect("a log");
        let last = listed.iter().map(|l| l.delivered).max().expect("a log");
        let chain = Chain {
            bucket: &bucket,
            prefix: None,
            account,
            region,
            trail: "bench",
            home_region: "us-east-1",
            key: &signing,
        };
        for d in chain.hourly(
            listed,
            hour_floor(first) + Duration::hours(1),
            hour_floor(last) + Duration::hours(1),
            &[],
        ) {
            let path = dir.join(&d.key);
            fs::create_dir_all(path.parent().expect("a folder")).expect("creating a folder");
            fs::write(&path, &d.body).expect("writing a digest");
            let meta: serde_json::Map<String, Value> = d
                .metadata()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            metadata.insert(d.key.clone(), Value::Object(meta));
            digests += 1;
        }
    }
    fs::write(
        dir.join("digest-metadata.json"),
        serde_json::to_vec_pretty(&metadata).expect("JSON"),
    )
    .expect("writing digest-metadata.json");
    let from = DateTime::from_timestamp(0, 0).expect("epoch");
    let to = Utc::now() + Duration::days(365);
    fs::write(
        dir.join("public-keys.json"),
        serde_json::to_vec_pretty(&json!({ "PublicKeyList": [signing.list_entry(from, to)] }))
            .expect("JSON"),
    )
    .expect("writing public-keys.json");
    println!(
        "{}",
        json!({
            "bucket": bucket,
            "log_files": logs.values().map(Vec::len).sum::<usize>(),
            "digests": digests,
        })
    );
}
