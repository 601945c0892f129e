//! CloudTrail digest files as AWS documents them ("CloudTrail digest file
//! structure", "Custom implementations of CloudTrail log file integrity
//! validation"), for tests and the benchmark corpus: every hour a gzipped
//! JSON digest that lists the log files delivered in the hour with the
//! SHA-256 of each file's uncompressed content, chained to the previous digest
//! by its S3 object, hash and signature, and signed with SHA256withRSA
//! (RSASSA-PKCS1-v1_5) over
//! `digestEndTime\nbucket/key\nhex(sha256(uncompressed digest))\nprevious signature`
//! (`null` at the start of a chain). The signature belongs in the object's
//! `x-amz-meta-signature` metadata, the algorithm in
//! `x-amz-meta-signature-algorithm`.
//!
//! Written from AWS's documentation, apart from kmsrot's validation code, so
//! that a mistake in one shows against the other.

use chrono::{DateTime, Duration, Utc};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// An RSA key pair as CloudTrail has one per region: the private half signs,
/// ListPublicKeys hands out the public half (DER PKCS#1) with a fingerprint.
pub struct SigningKey {
    pub private: RsaPrivateKey,
    /// 32 hex digits, as CloudTrail's fingerprints are.
    pub fingerprint: String,
}

impl SigningKey {
    /// A new 2048-bit key, as CloudTrail uses.
    pub fn generate() -> Self {
        let private =
            RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generating an RSA key");
        let der = RsaPublicKey::from(&private)
            .to_pkcs1_der()
            .expect("encoding a public key");
        let fingerprint = hex::encode(&Sha256::digest(der.as_bytes())[..16]);
        SigningKey {
            private,
            fingerprint,
        }
    }

    pub fn public_der(&self) -> Vec<u8> {
        RsaPublicKey::from(&self.private)
            .to_pkcs1_der()
            .expect("encoding a public key")
            .as_bytes()
            .to_vec()
    }

    /// The key as ListPublicKeys returns it and `aws cloudtrail
    /// list-public-keys` (AWS CLI v1) prints it: epoch seconds, base64 DER.
    pub fn list_entry(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
        json!({
            "ValidityStartTime": from.timestamp() as f64,
            "ValidityEndTime": to.timestamp() as f64,
            "Value": base64(&self.public_der()),
            "Fingerprint": self.fingerprint,
        })
    }

    /// SHA256withRSA (PKCS#1 v1.5), hex.
    pub fn sign(&self, message: &str) -> String {
        let hashed = Sha256::digest(message.as_bytes());
        hex::encode(
            self.private
                .sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)
                .expect("signing"),
        )
    }
}

/// Standard base64 with padding (what JSON blobs use).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A log file a digest lists.
#[derive(Debug, Clone)]
pub struct ListedLog {
    pub key: String,
    /// Its delivery time: the digest of the hour it falls in lists it.
    pub delivered: DateTime<Utc>,
    /// SHA-256 (hex) of its uncompressed content.
    pub sha256: String,
    pub oldest_event: Option<DateTime<Utc>>,
    pub newest_event: Option<DateTime<Utc>>,
}

/// One digest, ready to upload.
#[derive(Debug, Clone)]
pub struct DigestFile {
    pub key: String,
    pub end: DateTime<Utc>,
    /// Gzipped JSON.
    pub body: Vec<u8>,
    /// `x-amz-meta-signature`.
    pub signature: String,
    /// SHA-256 (hex) of the uncompressed JSON.
    pub sha256: String,
}

impl DigestFile {
    /// The object metadata CloudTrail sets (names without `x-amz-meta-`).
    pub fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("signature".into(), self.signature.clone()),
            ("signature-algorithm".into(), "SHA256withRSA".into()),
        ]
    }
}

/// One trail's digests for one account and region.
pub struct Chain<'a> {
    pub bucket: &'a str,
    /// The trail's S3 key prefix (without a trailing slash), if any.
    pub prefix: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
    pub trail: &'a str,
    pub home_region: &'a str,
    pub key: &'a SigningKey,
}

impl Chain<'_> {
    /// `[PREFIX/]AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOME_YYYYMMDDTHHMMSSZ.json.gz`
    pub fn digest_key(&self, end: DateTime<Utc>) -> String {
        let (acct, region) = (self.account, self.region);
        let key = format!(
            "AWSLogs/{acct}/CloudTrail-Digest/{region}/{}/{acct}_CloudTrail-Digest_{region}_{}_{}_{}.json.gz",
            end.format("%Y/%m/%d"),
            self.trail,
            self.home_region,
            end.format("%Y%m%dT%H%M%SZ")
        );
        match self.prefix {
            Some(p) => format!("{p}/{key}"),
            None => key,
        }
    }

    /// Hourly digests ending at `first_end`, `first_end + 1h`, ... up to
    /// `last_end`, each listing the `logs` delivered in its hour. No digest
    /// ends inside a `stops` interval (logging stopped): the first after it
    /// starts a new chain, its previous-digest fields null.
    pub fn hourly(
        &self,
        logs: &[ListedLog],
        first_end: DateTime<Utc>,
        last_end: DateTime<Utc>,
        stops: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Vec<DigestFile> {
        let mut out: Vec<DigestFile> = Vec::new();
        let mut previous: Option<usize> = None;
        let mut end = first_end;
        while end <= last_end {
            let start = end - Duration::hours(1);
            if stops.iter().any(|(from, to)| end >= *from && end < *to) {
                previous = None;
                end += Duration::hours(1);
                continue;
            }
            let key = self.digest_key(end);
            let listed: Vec<&ListedLog> = logs
                .iter()
                .filter(|l| l.delivered >= start && l.delivered < end)
                .collect();
            let prev = previous.map(|i| &out[i]);
            let doc = json!({
                "awsAccountId": self.account,
                "digestStartTime": stamp(start),
                "digestEndTime": stamp(end),
                "digestS3Bucket": self.bucket,
                "digestS3Object": key,
                "digestPublicKeyFingerprint": self.key.fingerprint,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": listed.iter().filter_map(|l| l.newest_event).max().map(stamp),
                "oldestEventTime": listed.iter().filter_map(|l| l.oldest_event).min().map(stamp),
                "previousDigestS3Bucket": prev.map(|_| self.bucket),
                "previousDigestS3Object": prev.map(|p| p.key.clone()),
                "previousDigestHashValue": prev.map(|p| p.sha256.clone()),
                "previousDigestHashAlgorithm": prev.map(|_| "SHA-256"),
                "previousDigestSignature": prev.map(|p| p.signature.clone()),
                "logFiles": listed.iter().map(|l| json!({
                    "s3Bucket": self.bucket,
                    "s3Object": l.key,
                    "hashValue": l.sha256,
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": stamp(l.newest_event.unwrap_or(l.delivered)),
                    "oldestEventTime": stamp(l.oldest_event.unwrap_or(l.delivered)),
                })).collect::<Vec<_>>(),
            });
            let text = serde_json::to_vec(&doc).expect("a digest is JSON");
            let sha256 = sha256_hex(&text);
            let to_sign = format!(
                "{}\n{}/{}\n{}\n{}",
                stamp(end),
                self.bucket,
                key,
                sha256,
                prev.map_or("null", |p| p.signature.as_str())
            );
            let signature = self.key.sign(&to_sign);
            out.push(DigestFile {
                key,
                end,
                body: crate::cloudtrail::gzip(&text),
                signature,
                sha256,
            });
            previous = Some(out.len() - 1);
            end += Duration::hours(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
