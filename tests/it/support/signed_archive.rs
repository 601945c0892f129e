//! A CloudTrail S3 archive with log file integrity validation on, built the
//! way AWS documents it ("CloudTrail digest file structure", "Custom
//! implementations of CloudTrail log file integrity validation"): gzipped
//! `{"Records":[...]}` log files, and every hour a gzipped digest listing the
//! log files delivered in the hour with the SHA-256 of each file's
//! uncompressed content, chained to the previous digest by its S3 object,
//! hash and signature, and signed (SHA256withRSA, PKCS#1 v1.5) with an RSA
//! key made in the test over
//! `digestEndTime\nbucket/key\nhex(sha256(uncompressed digest))\nprevious signature`;
//! the signature goes in `x-amz-meta-signature`, the algorithm in
//! `x-amz-meta-signature-algorithm`.
//!
//! This is written from AWS's documentation, independently of kmsrot's
//! validation code, so that a mistake in one shows against the other.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// An RSA key pair as CloudTrail has per region: the private half signs,
/// ListPublicKeys hands out the public half (DER PKCS#1) with a fingerprint.
pub struct SigningKey {
    pub private: RsaPrivateKey,
    pub fingerprint: String,
}

impl SigningKey {
    pub fn public_der(&self) -> Vec<u8> {
        RsaPublicKey::from(&self.private)
            .to_pkcs1_der()
            .expect("encoding a public key")
            .as_bytes()
            .to_vec()
    }

    /// What `aws cloudtrail list-public-keys` prints for this key (v1 CLI:
    /// epoch seconds).
    pub fn list_entry(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
        json!({
            "ValidityStartTime": from.timestamp() as f64,
            "ValidityEndTime": to.timestamp() as f64,
            "Value": aws_smithy_types::base64::encode(self.public_der()),
            "Fingerprint": self.fingerprint,
        })
    }

    fn sign(&self, message: &str) -> String {
        let hashed = Sha256::digest(message.as_bytes());
        hex::encode(
            self.private
                .sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)
                .expect("signing"),
        )
    }
}

/// The test's key pairs: made once per test process (`n` picks one).
pub fn key(n: usize) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..3)
            .map(|i| {
                let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .expect("generating an RSA key");
                let der = RsaPublicKey::from(&private).to_pkcs1_der().unwrap();
                // CloudTrail's fingerprints are 32 hex digits.
                let fingerprint = hex::encode(&Sha256::digest(der.as_bytes())[..16]);
                let _ = i;
                SigningKey {
                    private,
                    fingerprint,
                }
            })
            .collect()
    })[n]
}

/// One object of the archive.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub metadata: Vec<(String, String)>,
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
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
        let acct = &self.account;
        format!(
            "AWSLogs/{acct}/CloudTrail/{region}/{}/{acct}_CloudTrail_{region}_{}_{unique}.json.gz",
            at.format("%Y/%m/%d"),
            at.format("%Y%m%dT%H%MZ")
        )
    }

    pub fn digest_key(&self, region: &str, end: DateTime<Utc>) -> String {
        let acct = &self.account;
        format!(
            "AWSLogs/{acct}/CloudTrail-Digest/{region}/{}/{acct}_CloudTrail-Digest_{region}_{}_us-east-1_{}.json.gz",
            end.format("%Y/%m/%d"),
            self.trail,
            end.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// A log file's gzipped body and the SHA-256 (hex) of its uncompressed content.
    pub fn log_body(records: &[Value]) -> (Vec<u8>, String) {
        let text = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        (gzip(&text), hex::encode(Sha256::digest(&text)))
    }

    fn add_region(&mut self, p: &RegionPlan) {
        let region = p.region.as_str();
        // Log files first: each digest lists those delivered in its hour.
        let mut delivered: Vec<(DateTime<Utc>, String, String, &Vec<Value>)> = Vec::new();
        for (i, (at, records)) in p.logs.iter().enumerate() {
            let key = self.log_key(region, *at, &format!("EXAMPLE{i:09}"));
            let (body, hash) = Self::log_body(records);
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
            delivered.push((*at, key, hash, records));
        }
        let mut previous: Option<(String, String, String)> = None;
        let mut end = p.first_digest_end;
        while end <= p.last_digest_end {
            let start = end - Duration::hours(1);
            if p.stops.iter().any(|(from, to)| end >= *from && end < *to) {
                previous = None;
                end += Duration::hours(1);
                continue;
            }
            let key = self.digest_key(region, end);
            let listed: Vec<&(DateTime<Utc>, String, String, &Vec<Value>)> = delivered
                .iter()
                .filter(|(at, ..)| *at >= start && *at < end)
                .collect();
            let times = |f: fn(&Value) -> Option<DateTime<Utc>>, newest: bool| {
                let all = listed
                    .iter()
                    .flat_map(|(.., records)| records.iter())
                    .filter_map(f);
                if newest { all.max() } else { all.min() }.map(stamp)
            };
            let event_time = |r: &Value| {
                r["eventTime"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            let doc = json!({
                "awsAccountId": self.account,
                "digestStartTime": stamp(start),
                "digestEndTime": stamp(end),
                "digestS3Bucket": self.bucket,
                "digestS3Object": key,
                "digestPublicKeyFingerprint": p.key.fingerprint,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": times(event_time, true),
                "oldestEventTime": times(event_time, false),
                "previousDigestS3Bucket": previous.as_ref().map(|_| self.bucket.clone()),
                "previousDigestS3Object": previous.as_ref().map(|p| p.0.clone()),
                "previousDigestHashValue": previous.as_ref().map(|p| p.1.clone()),
                "previousDigestHashAlgorithm": previous.as_ref().map(|_| "SHA-256"),
                "previousDigestSignature": previous.as_ref().map(|p| p.2.clone()),
                "logFiles": listed.iter().map(|(at, k, h, records)| json!({
                    "s3Bucket": self.bucket,
                    "s3Object": k,
                    "hashValue": h,
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": records.iter().filter_map(event_time).max().map(stamp).unwrap_or_else(|| stamp(*at)),
                    "oldestEventTime": records.iter().filter_map(event_time).min().map(stamp).unwrap_or_else(|| stamp(*at)),
                })).collect::<Vec<_>>(),
            });
            let text = serde_json::to_vec(&doc).unwrap();
            let hash = hex::encode(Sha256::digest(&text));
            let to_sign = format!(
                "{}\n{}/{}\n{}\n{}",
                stamp(end),
                self.bucket,
                key,
                hash,
                previous.as_ref().map_or("null", |p| p.2.as_str())
            );
            let signature = p.key.sign(&to_sign);
            self.objects.insert(
                key.clone(),
                Object {
                    body: gzip(&text),
                    metadata: vec![
                        ("signature".into(), signature.clone()),
                        ("signature-algorithm".into(), "SHA256withRSA".into()),
                    ],
                },
            );
            self.digests
                .entry(region.to_string())
                .or_default()
                .push(key.clone());
            previous = Some((key, hash, signature));
            end += Duration::hours(1);
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

    /// Replaces a digest's signature metadata with another (well-formed)
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

use futures::StreamExt;
