//! CloudTrail digest files: their names, their content, and their signature,
//! as AWS documents them ("CloudTrail digest file structure" and "Custom
//! implementations of CloudTrail log file integrity validation", AWS
//! CloudTrail User Guide).
//!
//! Every hour CloudTrail delivers, per account, region and trail, a gzipped
//! JSON digest under `CloudTrail-Digest/` that lists the log files delivered
//! in the hour with the SHA-256 (hex) of each file's *uncompressed* content,
//! and names the previous digest (its object, hash and signature), so the
//! digests form a chain. The digest's own signature is not in the file: it
//! is the object's `x-amz-meta-signature` metadata (hex), made with
//! SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256) over
//!
//! ```text
//! digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature
//! ```
//!
//! where a missing previous signature (the first digest of a chain) is the
//! literal `null`. The public key is the one CloudTrail's ListPublicKeys
//! returns, in the digest's region, whose fingerprint is the digest's
//! `digestPublicKeyFingerprint`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The only signature algorithm CloudTrail uses (metadata
/// `x-amz-meta-signature-algorithm`, field `digestSignatureAlgorithm`).
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// The only hash algorithm CloudTrail uses for log files and digests.
pub const HASH_ALGORITHM: &str = "SHA-256";
/// The service folder digests are delivered under, beside `CloudTrail/`.
pub const DIGEST_FOLDER: &str = "CloudTrail-Digest";

/// The parts of a digest object's name:
/// `ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ[_backfill].json.gz`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DigestName {
    pub account: String,
    /// The region the digest covers (its folder's region).
    pub region: String,
    /// The trail's name; trail names may hold underscores.
    pub trail: String,
    /// The trail's home region.
    pub home_region: String,
    /// The digest's end time, to the second, from the name.
    pub end: DateTime<Utc>,
    /// A backfill digest lists log files that an earlier digest missed
    /// because of processing delays; backfill digests chain among themselves.
    pub backfill: bool,
}

impl DigestName {
    /// Digests of one chain share account, region, trail and home region;
    /// backfill digests form chains of their own.
    pub fn chain(&self) -> ChainKey {
        ChainKey {
            account: self.account.clone(),
            region: self.region.clone(),
            trail: self.trail.clone(),
            home_region: self.home_region.clone(),
            backfill: self.backfill,
        }
    }
}

/// One chain of digests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainKey {
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    pub backfill: bool,
}

fn base_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Reads a digest's name; None when the object is not named as CloudTrail
/// names digests.
pub fn parse_digest_name(key: &str) -> Option<DigestName> {
    let name = base_name(key).strip_suffix(".json.gz")?;
    let (name, backfill) = match name.strip_suffix("_backfill") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let (rest, stamp) = name.rsplit_once('_')?;
    let end = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()?
        .and_utc();
    let (rest, home_region) = rest.rsplit_once('_')?;
    let (account, rest) = rest.split_once("_CloudTrail-Digest_")?;
    // Region names never hold an underscore; trail names may.
    let (region, trail) = rest.split_once('_')?;
    if account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || trail.is_empty()
        || home_region.is_empty()
    {
        return None;
    }
    Some(DigestName {
        account: account.to_string(),
        region: region.to_string(),
        trail: trail.to_string(),
        home_region: home_region.to_string(),
        end,
        backfill,
    })
}

/// The day folder (`.../YYYY/MM/DD/NAME`) an object of the layout sits in.
pub fn folder_day(key: &str) -> Option<NaiveDate> {
    let mut parts = key.rsplit('/');
    parts.next()?;
    let d: u32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let y: i32 = parts.next()?.parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

/// One log file a digest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLog {
    pub bucket: String,
    pub key: String,
    /// Lower-case hex.
    pub hash: String,
    pub hash_algorithm: String,
}

/// The fields of a digest file that validation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestDoc {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `digestEndTime` exactly as written: it is part of the signed string.
    pub end_text: String,
    pub bucket: String,
    pub object: String,
    pub fingerprint: String,
    pub signature_algorithm: Option<String>,
    pub previous_bucket: Option<String>,
    pub previous_object: Option<String>,
    /// Lower-case hex.
    pub previous_hash: Option<String>,
    pub previous_hash_algorithm: Option<String>,
    /// As written (hex): part of the signed string.
    pub previous_signature: Option<String>,
    pub logs: Vec<ListedLog>,
}

impl DigestDoc {
    /// A digest whose previous-digest fields are null starts a chain:
    /// validation (or logging) was turned on, or on again.
    pub fn starts_chain(&self) -> bool {
        self.previous_object.is_none() || self.previous_bucket.is_none()
    }
}

/// Reads a digest's JSON (already inflated). The fields that the signed
/// string and the chain need must be present (`previousDigestSignature` may
/// be null, but not absent), as the AWS CLI requires.
pub fn parse_digest(text: &[u8]) -> Result<DigestDoc, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("not a JSON object".into());
    };
    let req = |k: &str| -> Result<String, String> {
        match o.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("`{k}` is not a string")),
            None => Err(format!("no `{k}` field")),
        }
    };
    let nullable = |k: &str, required: bool| -> Result<Option<String>, String> {
        match o.get(k) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) => Ok(None),
            Some(_) => Err(format!("`{k}` is not a string")),
            None if required => Err(format!("no `{k}` field")),
            None => Ok(None),
        }
    };
    let end_text = req("digestEndTime")?;
    let start_text = req("digestStartTime")?;
    let time = |k: &str, t: &str| {
        parse_time(t).ok_or_else(|| format!("`{k}` is not an RFC 3339 time: {}", clip(t, 40)))
    };
    let logs = match o.get("logFiles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| listed_log(i, item))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`logFiles` is not an array".into()),
    };
    Ok(DigestDoc {
        start: time("digestStartTime", &start_text)?,
        end: time("digestEndTime", &end_text)?,
        end_text,
        bucket: req("digestS3Bucket")?,
        object: req("digestS3Object")?,
        fingerprint: req("digestPublicKeyFingerprint")?,
        signature_algorithm: nullable("digestSignatureAlgorithm", false)?,
        previous_bucket: nullable("previousDigestS3Bucket", false)?,
        previous_object: nullable("previousDigestS3Object", false)?,
        previous_hash: nullable("previousDigestHashValue", false)?.map(|h| h.to_ascii_lowercase()),
        previous_hash_algorithm: nullable("previousDigestHashAlgorithm", false)?,
        previous_signature: nullable("previousDigestSignature", true)?,
        logs,
    })
}

fn listed_log(i: usize, item: &Value) -> Result<ListedLog, String> {
    let Value::Object(o) = item else {
        return Err(format!("logFiles[{i}] is not an object"));
    };
    let field = |o: &Map<String, Value>, k: &str| match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("logFiles[{i}] has no string `{k}`")),
    };
    Ok(ListedLog {
        bucket: field(o, "s3Bucket")?,
        key: field(o, "s3Object")?,
        hash: field(o, "hashValue")?.to_ascii_lowercase(),
        hash_algorithm: field(o, "hashAlgorithm").unwrap_or_else(|_| HASH_ALGORITHM.into()),
    })
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// RFC 3339 with a zone, as CloudTrail writes digest times.
pub fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The string CloudTrail signs for a digest.
pub fn string_to_sign(doc: &DigestDoc, digest_sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        doc.end_text,
        doc.bucket,
        doc.object,
        digest_sha256_hex,
        doc.previous_signature.as_deref().unwrap_or("null")
    )
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The metadata value is not hex.
    NotHex,
    /// Well-formed, but not this key's signature of this string.
    Mismatch,
}

/// Checks an RSASSA-PKCS1-v1_5 SHA-256 signature (hex) of `message`.
pub fn verify(
    key: &RsaPublicKey,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), SignatureError> {
    let sig = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::NotHex)?;
    let hashed = Sha256::digest(message);
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// A public key CloudTrail signs digests with.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub fingerprint: String,
    pub key: RsaPublicKey,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// A key from ListPublicKeys' `Value`: DER-encoded PKCS#1 RSAPublicKey.
pub fn public_key_from_der(
    fingerprint: &str,
    der: &[u8],
    valid_from: Option<DateTime<Utc>>,
    valid_to: Option<DateTime<Utc>>,
) -> Result<PublicKey, String> {
    let key = RsaPublicKey::from_pkcs1_der(der)
        .map_err(|e| format!("key {fingerprint} is not a DER PKCS#1 RSA public key: {e}"))?;
    Ok(PublicKey {
        fingerprint: fingerprint.to_ascii_lowercase(),
        key,
        valid_from,
        valid_to,
    })
}

/// Reads the JSON that `aws cloudtrail list-public-keys` prints:
/// `{"PublicKeyList": [{"Value": BASE64, "ValidityStartTime": ...,
/// "ValidityEndTime": ..., "Fingerprint": HEX}]}`. Times may be epoch
/// seconds (AWS CLI v1) or ISO 8601 text (v2). Errors say which entry.
pub fn parse_public_keys_json(text: &[u8]) -> Result<Vec<PublicKey>, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = match &v {
        Value::Object(o) => match o.get("PublicKeyList") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err("`PublicKeyList` is not an array".into()),
            None => {
                return Err(
                    "no `PublicKeyList`: not the output of `aws cloudtrail list-public-keys`"
                        .into(),
                )
            }
        },
        _ => return Err("not a JSON object with `PublicKeyList`".into()),
    };
    let mut keys = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!("PublicKeyList[{i}] is not an object"));
        };
        let fingerprint = match o.get("Fingerprint") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(format!("PublicKeyList[{i}] has no `Fingerprint`")),
        };
        let value = match o.get("Value") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(format!(
                    "PublicKeyList[{i}] ({fingerprint}) has no base64 `Value`"
                ))
            }
        };
        let der = aws_smithy_types::base64::decode(value.trim())
            .map_err(|_| format!("PublicKeyList[{i}] ({fingerprint}): `Value` is not base64"))?;
        let time = |k: &str| -> Result<Option<DateTime<Utc>>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64))
                    .map(Some)
                    .ok_or_else(|| {
                        format!("PublicKeyList[{i}] ({fingerprint}): `{k}` is out of range")
                    }),
                Some(Value::String(s)) => text_time(s).map(Some).ok_or_else(|| {
                    format!(
                        "PublicKeyList[{i}] ({fingerprint}): `{k}` is not a time: {}",
                        clip(s, 40)
                    )
                }),
                Some(_) => Err(format!(
                    "PublicKeyList[{i}] ({fingerprint}): `{k}` is not a time"
                )),
            }
        };
        let from = time("ValidityStartTime")?;
        let to = time("ValidityEndTime")?;
        keys.push(
            public_key_from_der(&fingerprint, &der, from, to)
                .map_err(|e| format!("PublicKeyList[{i}]: {e}"))?,
        );
    }
    Ok(keys)
}

/// ISO 8601 as the AWS CLI prints it: with a zone, or without one (UTC).
fn text_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    parse_time(s).or_else(|| {
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|t| t.and_utc())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::RsaPrivateKey;
    use std::sync::OnceLock;

    /// One RSA key pair per test process: generating one is slow in a
    /// debug build.
    pub fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
    }

    pub fn sign(key: &RsaPrivateKey, message: &str) -> String {
        let hashed = Sha256::digest(message.as_bytes());
        hex::encode(key.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed).unwrap())
    }

    #[test]
    fn names_are_read_as_aws_writes_them() {
        let n = parse_digest_name(
            "p/AWSLogs/o-abc/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-1_20150817T150131Z.json.gz",
        )
        .unwrap();
        assert_eq!(n.account, "111122223333");
        assert_eq!(n.region, "us-east-2");
        assert_eq!(n.trail, "my_trail");
        assert_eq!(n.home_region, "us-east-1");
        assert_eq!(n.end.to_rfc3339(), "2015-08-17T15:01:31+00:00");
        assert!(!n.backfill);
        let b = parse_digest_name(
            "111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z_backfill.json.gz",
        )
        .unwrap();
        assert!(b.backfill && b.trail == "t");
        assert_ne!(b.chain(), n.chain());
        for bad in [
            "111122223333_CloudTrail_us-east-2_20150817T1501Z_abc.json.gz",
            "111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_2015.json.gz",
            "1111_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json.gz",
            "111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json",
        ] {
            assert!(parse_digest_name(bad).is_none(), "{bad}");
        }
        assert_eq!(
            folder_day("a/CloudTrail/us-east-1/2025/03/02/x.json.gz"),
            NaiveDate::from_ymd_opt(2025, 3, 2)
        );
        assert_eq!(folder_day("x.json.gz"), None);
    }

    /// AWS's sample digest, from "CloudTrail digest file structure".
    const SAMPLE: &str = r#"{
      "awsAccountId": "111122223333",
      "digestStartTime": "2015-08-17T14:01:31Z",
      "digestEndTime": "2015-08-17T15:01:31Z",
      "digestS3Bucket": "amzn-s3-demo-bucket",
      "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
      "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
      "digestSignatureAlgorithm": "SHA256withRSA",
      "newestEventTime": "2015-08-17T14:52:27Z",
      "oldestEventTime": "2015-08-17T14:42:27Z",
      "previousDigestS3Bucket": "amzn-s3-demo-bucket",
      "previousDigestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
      "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
      "previousDigestHashAlgorithm": "SHA-256",
      "previousDigestSignature": "50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3652fc4dfc30937e4d5f4cc7f796e7a258fb50a43ac427f2237f6e505d4efaf373d156e15e3b6e9b0a5e0e1f0e0a1b",
      "logFiles": [
        {
          "s3Bucket": "amzn-s3-demo-bucket",
          "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
          "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
          "hashAlgorithm": "SHA-256",
          "newestEventTime": "2015-08-17T14:52:27Z",
          "oldestEventTime": "2015-08-17T14:42:27Z"
        }
      ]
    }"#;

    #[test]
    fn the_documented_sample_reads() {
        let d = parse_digest(SAMPLE.as_bytes()).unwrap();
        assert_eq!(d.end_text, "2015-08-17T15:01:31Z");
        assert_eq!(d.logs.len(), 1);
        assert_eq!(d.logs[0].hash_algorithm, "SHA-256");
        assert!(!d.starts_chain());
        let s = string_to_sign(&d, "4ff08d7c");
        assert_eq!(
            s.lines().collect::<Vec<_>>(),
            vec![
                "2015-08-17T15:01:31Z",
                "amzn-s3-demo-bucket/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
                "4ff08d7c",
                d.previous_signature.as_deref().unwrap(),
            ]
        );
        // A starting digest: previous fields null, signed with "null".
        let start = SAMPLE
            .replace(
                "\"amzn-s3-demo-bucket\",\n      \"previousDigestS3Object\"",
                "null,\n      \"previousDigestS3Object\"",
            )
            .replace(
                r#""previousDigestSignature": "50887"#,
                r#""previousDigestSignature": null, "x": "50887"#,
            );
        let d = parse_digest(start.as_bytes()).unwrap();
        assert!(d.starts_chain());
        assert!(string_to_sign(&d, "h").ends_with("\nh\nnull"));
        // Fields the signed string needs must be there.
        let no_prev = SAMPLE.replace("\"previousDigestSignature\"", "\"other\"");
        assert!(parse_digest(no_prev.as_bytes())
            .unwrap_err()
            .contains("previousDigestSignature"));
        assert!(parse_digest(b"[]").is_err());
        assert!(parse_digest(b"{").is_err());
    }

    #[test]
    fn signatures_verify_and_tampering_does_not() {
        let key = test_key();
        let public = RsaPublicKey::from(key);
        let msg = "2025-03-01T01:00:00Z\nb/k\nabc\nnull";
        let sig = sign(key, msg);
        assert_eq!(verify(&public, msg.as_bytes(), &sig), Ok(()));
        assert_eq!(
            verify(&public, msg.replace("abc", "abd").as_bytes(), &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&public, msg.as_bytes(), "zz"),
            Err(SignatureError::NotHex)
        );
    }

    #[test]
    fn the_cli_list_public_keys_output_reads_in_both_time_forms() {
        let der = RsaPublicKey::from(test_key()).to_pkcs1_der().unwrap();
        let b64 = aws_smithy_types::base64::encode(der.as_bytes());
        let text = format!(
            r#"{{"PublicKeyList":[
              {{"ValidityStartTime": 1453076702.0, "ValidityEndTime": 1455668702.0, "Value": "{b64}", "Fingerprint": "7F3F401420072E50A65A141430817AB3"}},
              {{"ValidityStartTime": "2016-01-18T00:25:02+00:00", "ValidityEndTime": "2016-02-17T00:25:02", "Value": "{b64}", "Fingerprint": "aa"}}
            ]}}"#
        );
        let keys = parse_public_keys_json(text.as_bytes()).unwrap();
        assert_eq!(keys[0].fingerprint, "7f3f401420072e50a65a141430817ab3");
        assert_eq!(
            keys[0].valid_from.unwrap().to_rfc3339(),
            "2016-01-18T00:25:02+00:00"
        );
        assert_eq!(keys[1].valid_from, keys[0].valid_from);
        for (bad, says) in [
            ("{}".to_string(), "PublicKeyList"),
            (
                r#"{"PublicKeyList":[{"Value":"AAAA"}]}"#.to_string(),
                "Fingerprint",
            ),
            (
                r#"{"PublicKeyList":[{"Fingerprint":"f","Value":"***"}]}"#.to_string(),
                "base64",
            ),
            (
                r#"{"PublicKeyList":[{"Fingerprint":"f","Value":"AAAA"}]}"#.to_string(),
                "PKCS#1",
            ),
            (
                format!(
                    r#"{{"PublicKeyList":[{{"Fingerprint":"f","Value":"{b64}","ValidityStartTime":"soon"}}]}}"#
                ),
                "not a time",
            ),
        ] {
            let e = parse_public_keys_json(bad.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
