//! A CloudTrail S3 archive with log file integrity validation on: gzipped
//! `{"Records":[...]}` log files, and hourly digests signed with RSA keys
//! made in the test (`kmsrot_testkit::digests`, written from AWS's
//! documentation apart from kmsrot's validation code), uploaded to moto's
//! S3 with their `x-amz-meta-signature` / `x-amz-meta-signature-algorithm`
//! metadata. Then the tampering the tests need: a log altered, a file
//! deleted, a log no digest lists, a forged signature.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kmsrot_testkit::digests::{sha256_hex, Chain, ListedLog, SigningKey};
use serde_json::{json, Value};

/// The test's key pairs, made once per test process (`n` picks one).
pub fn key(n: usize) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    &KEYS.get_or_init(|| (0..3).map(|_| SigningKey::generate()).collect())[n]
}

/// One object of the archive.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub metadata: Vec<(String, String)>,
}

/// One region's trail: log files delivered at given times, digests every
/// hour, chains restarted where logging stopped.
pub struct RegionPlan {
    pub region: String,
    pub key: &'static SigningKey,
    /// End time of the first digest; digests follow every hour.
    pub first_digest_end: DateTime<Utc>,
    pub last_digest_end: DateTime<Utc>,
    /// Log files: delivery time → records.
    pub logs: BTreeMap<DateTime<Utc>, Vec<Value>>,
    /// Logging stopped: no digest ends inside [from, to); the first digest
    /// after starts a new chain.
    pub stops: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The archive, as uploaded.
pub struct Archive {
    pub bucket: String,
    pub account: String,
    pub trail: String,
    pub objects: BTreeMap<String, Object>,
    /// Digest keys per region, oldest first.
    pub digests: BTreeMap<String, Vec<String>>,
    /// Log keys per region, by delivery time.
    pub logs: BTreeMap<String, BTreeMap<DateTime<Utc>, String>>,
}

/// The trail's home region (a multi-region trail made in us-east-1).
const HOME: &str = "us-east-1";

impl Archive {
    pub fn build(bucket: &str, account: &str, trail: &str, plans: &[RegionPlan]) -> Archive {
        let mut a = Archive {
            bucket: bucket.into(),
            account: account.into(),
            trail: trail.into(),
            objects: BTreeMap::new(),
            digests: BTreeMap::new(),
            logs: BTreeMap::new(),
        };
        for p in plans {
            a.add_region(p);
        }
        a
    }

    pub fn log_key(&self, region: &str, at: DateTime<Utc>, unique: &str) -> String {
        kmsrot_testkit::cloudtrail::archive_key(&self.account, region, at, unique)
    }

    fn chain<'a>(&'a self, region: &'a str, key: &'a SigningKey) -> Chain<'a> {
        Chain {
            bucket: &self.bucket,
            prefix: None,
            account: &self.account,
            region,
            trail: &self.trail,
            home_region: HOME,
            key,
        }
    }

    pub fn digest_key(&self, region: &str, end: DateTime<Utc>) -> String {
        self.chain(region, key(0)).digest_key(end)
    }

    /// A log file's gzipped body and the SHA-256 (hex) of its uncompressed content.
    pub fn log_body(records: &[Value]) -> (Vec<u8>, String) {
        let text = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        (kmsrot_testkit::cloudtrail::gzip(&text), sha256_hex(&text))
    }

    fn add_region(&mut self, p: &RegionPlan) {
        let region = p.region.as_str();
        let event_time = |r: &Value| {
            r["eventTime"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let mut listed = Vec::new();
        for (i, (at, records)) in p.logs.iter().enumerate() {
            let key = self.log_key(region, *at, &format!("EXAMPLE{i:09}"));
            let (body, sha256) = Self::log_body(records);
            self.objects.insert(
                key.clone(),
                Object {
                    body,
                    metadata: Vec::new(),
                },
            );
            self.logs
                .entry(region.to_string())
                .or_default()
                .insert(*at, key.clone());
            listed.push(ListedLog {
                key,
                delivered: *at,
                sha256,
                oldest_event: records.iter().filter_map(event_time).min(),
                newest_event: records.iter().filter_map(event_time).max(),
            });
        }
        let digests = self.chain(region, p.key).hourly(
            &listed,
            p.first_digest_end,
            p.last_digest_end,
            &p.stops,
        );
        for d in digests {
            self.digests
                .entry(region.to_string())
                .or_default()
                .push(d.key.clone());
            self.objects.insert(
                d.key.clone(),
                Object {
                    metadata: d.metadata(),
                    body: d.body,
                },
            );
        }
    }

    /// Replaces a log file's content after delivery (its digest still
    /// lists the old hash).
    pub fn alter_log(&mut self, key: &str, records: &[Value]) {
        let (body, _) = Self::log_body(records);
        self.objects.get_mut(key).expect("no such log").body = body;
    }

    pub fn delete(&mut self, key: &str) {
        self.objects.remove(key).expect("no such object");
    }

    /// A log file no digest lists: added after the fact.
    pub fn add_unlisted_log(
        &mut self,
        region: &str,
        at: DateTime<Utc>,
        records: &[Value],
    ) -> String {
        let key = self.log_key(region, at, "ADDEDLATER000000");
        let (body, _) = Self::log_body(records);
        self.objects.insert(
            key.clone(),
            Object {
                body,
                metadata: Vec::new(),
            },
        );
        key
    }

    /// Replaces a digest's signature metadata with another well-formed
    /// signature: what a forger without CloudTrail's private key can do.
    pub fn forge_signature(&mut self, key: &str, with: &SigningKey) {
        let obj = self.objects.get_mut(key).expect("no such digest");
        let forged = with.sign("a string CloudTrail never signed");
        for (k, v) in &mut obj.metadata {
            if k == "signature" {
                *v = forged.clone();
            }
        }
    }

    /// Uploads every object, with its metadata, to moto's S3.
    pub async fn upload(&self, s3: &aws_sdk_s3::Client) {
        s3.create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        let puts = self.objects.iter().map(|(key, obj)| {
            let mut req = s3
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(obj.body.clone().into());
            for (k, v) in &obj.metadata {
                req = req.metadata(k, v);
            }
            async move { req.send().await.unwrap_or_else(|e| panic!("{key}: {e:?}")) }
        });
        futures::stream::iter(puts)
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
    }
}
