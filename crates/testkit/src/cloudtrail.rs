//! CloudTrail records of KMS calls, shaped as AWS delivers them to S3, and
//! the gzip it delivers them in. The shapes follow the KMS Developer Guide's
//! examples (ct-enablekeyrotation, ct-rotatekey): an API call carries the
//! caller's userIdentity and requestParameters; the yearly automatic rotation
//! is an AwsServiceEvent with serviceEventDetails.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The key an event is about.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub key_id: &'a str,
}

impl KeyRef<'_> {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region, self.account, self.key_id
        )
    }
}

/// One KMS event: an API call by `principal`, or with `principal` `None`
/// KMS's own service event (RotateKey). `error` is (errorCode, errorMessage)
/// of a failed call. The eventID is derived from the name, key and time, so
/// a test can predict it.
pub fn record(
    name: &str,
    key: KeyRef<'_>,
    at: DateTime<Utc>,
    principal: Option<&str>,
    error: Option<(&str, &str)>,
) -> Value {
    let key_arn = key.arn();
    let service = principal.is_none();
    let account = key.account;
    let mut r = json!({
        "eventVersion": if service { "1.11" } else { "1.09" },
        "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": key.region,
        "sourceIPAddress": if service { "kms.amazonaws.com" } else { "203.0.113.10" },
        "userAgent": if service { "kms.amazonaws.com" } else { "aws-cli/2.15.0 md/command#kms" },
        "requestParameters": if service { Value::Null } else { json!({"keyId": key_arn}) },
        "responseElements": Value::Null,
        "requestID": format!("req-{name}-{}", at.timestamp()),
        "eventID": format!("{}-{}-{}", name, key.key_id, at.timestamp()),
        "readOnly": is_read_only(name),
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": if service { "AwsServiceEvent" } else { "AwsApiCall" },
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    });
    match principal {
        None => {
            r["userIdentity"] = json!({"accountId": account, "invokedBy": "kms.amazonaws.com"});
            r["serviceEventDetails"] = json!({"keyId": key.key_id, "rotationType": "AUTOMATIC"});
        }
        Some(p) => {
            let kind = if p.contains(":assumed-role/") {
                "AssumedRole"
            } else {
                "IAMUser"
            };
            r["userIdentity"] =
                json!({"type": kind, "arn": p, "accountId": account, "principalId": "AIDAEXAMPLE"});
        }
    }
    if let Some((code, message)) = error {
        r["errorCode"] = json!(code);
        r["errorMessage"] = json!(message);
    }
    r
}

/// CloudTrail marks reads (Decrypt, Get*, List*, Describe*) readOnly.
fn is_read_only(name: &str) -> bool {
    name == "Decrypt"
        || ["Get", "List", "Describe"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// The S3 key CloudTrail delivers a log file under:
/// `AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_STAMP_UNIQUE.json.gz`.
pub fn archive_key(account: &str, region: &str, at: DateTime<Utc>, unique: &str) -> String {
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{unique}.json.gz",
        at.format("%Y/%m/%d"),
        at.format("%Y%m%dT%H%MZ"),
    )
}

/// A log file's body: `{"Records": [...]}`, gzipped.
pub fn log_file(records: &[Value]) -> Vec<u8> {
    gzip(json!({ "Records": records }).to_string().as_bytes())
}

/// Whole-buffer gzip, as CloudTrail writes its files.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
    let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
    let n = c
        .gzip_compress(data, &mut out)
        .expect("the buffer is sized by gzip_compress_bound");
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn api_calls_and_service_events_differ_as_aws_writes_them() {
        let key = KeyRef {
            account: "111122223333",
            region: "us-east-1",
            key_id: "k1",
        };
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let call = record(
            "EnableKeyRotation",
            key,
            at,
            Some("arn:aws:iam::111122223333:user/alice"),
            Some(("AccessDeniedException", "no")),
        );
        assert_eq!(call["eventType"], "AwsApiCall");
        assert_eq!(call["userIdentity"]["type"], "IAMUser");
        assert_eq!(call["errorCode"], "AccessDeniedException");
        assert_eq!(call["readOnly"], false);
        let rotate = record("RotateKey", key, at, None, None);
        assert_eq!(rotate["eventType"], "AwsServiceEvent");
        assert_eq!(rotate["serviceEventDetails"]["keyId"], "k1");
        assert_eq!(rotate["resources"][0]["ARN"], key.arn());
        assert_eq!(
            archive_key("111122223333", "us-east-1", at, "0001abcd"),
            "AWSLogs/111122223333/CloudTrail/us-east-1/2025/03/01/111122223333_CloudTrail_us-east-1_20250301T1200Z_0001abcd.json.gz"
        );
        let gz = log_file(&[rotate]);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }
}
