//! Generates a benchmark corpus for `kmsrot trail scan`: gzipped CloudTrail
//! S3 delivery files in the archive's layout, built from the shapes of the
//! real records in `tests/fixtures/cloudtrail/`.
//!
//! ```text
//! cargo run --release --example gen_trail_corpus -- OUT_DIR [MEGABYTES] [SEED]
//! ```
//!
//! MEGABYTES (default 1024) is the uncompressed size to reach. The mix follows
//! a real account: about 55% KMS data-plane calls (Decrypt, GenerateDataKey,
//! Encrypt... from the AWS examples and the Invictus logs), 45% other
//! services (Invictus and Stratus records), and about one in 2,000 records a
//! rotation, key-lifecycle or failed KMS call. It prints a JSON summary on
//! stdout whose `kms_kept` is what `trail scan` must keep.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use libdeflater::{CompressionLvl, Compressor};
use serde_json::Value;

const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| char::from(A[self.below(A.len())])).collect()
    }
}

fn records_in(path: &Path) -> Vec<Value> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut o)) => match o.remove("Records") {
            Some(Value::Array(a)) => a,
            Some(_) => Vec::new(),
            None => vec![Value::Object(o)],
        },
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: gen_trail_corpus OUT_DIR [MEGABYTES] [SEED]");
        std::process::exit(2);
    }
    let out_dir = PathBuf::from(&args[1]);
    let megabytes: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail");
    let keep: Vec<String> = include_str!("../queries/trail_events.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();

    let mut kms_data = Vec::new();
    let mut rotation = Vec::new();
    let mut other = Vec::new();
    for f in files_under(&fixtures) {
        for r in records_in(&f) {
            let source = r.get("eventSource").and_then(Value::as_str).unwrap_or("");
            let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
            if r.get("eventTime").is_none() || name.is_empty() {
                continue;
            }
            if source == "kms.amazonaws.com" {
                if keep.iter().any(|k| k == name) || r.get("errorCode").is_some() {
                    rotation.push(r);
                } else {
                    kms_data.push(r);
                }
            } else {
                other.push(r);
            }
        }
    }
    assert!(
        !kms_data.is_empty() && !rotation.is_empty() && !other.is_empty(),
        "templates missing under {}",
        fixtures.display()
    );

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let target = megabytes * 1024 * 1024;
    let mut written = 0u64;
    let (mut files, mut records, mut kept, mut compressed) = (0u64, 0u64, 0u64, 0u64);
    let mut comp = Compressor::new(CompressionLvl::default());
    // One delivery every 5 minutes per account and region, starting 2025-01-01.
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("constant time")
        .with_timezone(&chrono::Utc)
        + chrono::Duration::days(seed as i64 * 40);
    let mut slot = 0i64;
    while written < target {
        let account = ACCOUNTS[files as usize % ACCOUNTS.len()];
        let region = REGIONS[(files as usize / ACCOUNTS.len()) % REGIONS.len()];
        if files as usize % (ACCOUNTS.len() * REGIONS.len()) == 0 {
            slot += 1;
        }
        let delivered = start + chrono::Duration::minutes(5 * slot);
        let size = 1_000_000 + rng.below(2_000_000);
        let mut body = Vec::with_capacity(size + 8192);
        body.extend_from_slice(b"{\"Records\":[");
        let mut n = 0;
        while body.len() < size {
            let roll = rng.below(10_000);
            let (template, is_kept) = if roll < 5 {
                (&rotation[rng.below(rotation.len())], true)
            } else if roll < 5_500 {
                (&kms_data[rng.below(kms_data.len())], false)
            } else {
                (&other[rng.below(other.len())], false)
            };
            let mut r = template.clone();
            let t = delivered - chrono::Duration::seconds(rng.below(300) as i64);
            if let Value::Object(o) = &mut r {
                o.insert("eventID".into(), Value::String(rng.uuid()));
                o.insert(
                    "eventTime".into(),
                    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                o.insert("awsRegion".into(), Value::String(region.into()));
                o.insert("recipientAccountId".into(), Value::String(account.into()));
                if o.contains_key("requestID") {
                    o.insert("requestID".into(), Value::String(rng.uuid()));
                }
            }
            if n > 0 {
                body.push(b',');
            }
            serde_json::to_writer(&mut body, &r).expect("writing to a Vec");
            n += 1;
            kept += u64::from(is_kept);
        }
        body.extend_from_slice(b"]}");
        let stamp = delivered.format("%Y%m%dT%H%MZ");
        let dir = out_dir.join(format!(
            "AWSLogs/{account}/CloudTrail/{region}/{}",
            delivered.format("%Y/%m/%d")
        ));
        fs::create_dir_all(&dir).expect("creating the corpus folder");
        let name = format!(
            "{account}_CloudTrail_{region}_{stamp}_{}.json.gz",
            rng.alnum(16)
        );
        let mut gz = vec![0u8; comp.gzip_compress_bound(body.len())];
        let len = comp.gzip_compress(&body, &mut gz).expect("gzip");
        fs::File::create(dir.join(name))
            .and_then(|mut f| f.write_all(&gz[..len]))
            .expect("writing a corpus file");
        written += body.len() as u64;
        compressed += len as u64;
        records += n;
        files += 1;
    }
    println!(
        "{}",
        serde_json::json!({
            "dir": out_dir.display().to_string(),
            "files": files,
            "records": records,
            "kms_kept": kept,
            "uncompressed_bytes": written,
            "compressed_bytes": compressed,
        })
    );
}
