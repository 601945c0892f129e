//! Sealing a bundle for an auditor: a KMS signature over the manifest's
//! SHA-256 (`--sign-with`), its verification, and upload to S3 with Object
//! Lock retention (`--upload`). These are the only AWS calls the report
//! path makes; `docs/iam/report-publish.json` names them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockMode};
use aws_types::SdkConfig;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::signing::{self, ALGORITHM};
use crate::aws::ErrorInfo;
use crate::bundle::MANIFEST;

pub const SIGNATURE: &str = crate::bundle::SIGNATURE;
pub const SIGNATURE_INFO: &str = crate::bundle::SIGNATURE_INFO;

/// `manifest.json.sig.json`: what was signed, with which key and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignatureInfo {
    pub signed_file: String,
    pub signature_file: String,
    /// The key ARN KMS reported for the Sign call.
    pub key_id: String,
    pub signing_algorithm: String,
    pub message_type: String,
    /// SHA-256 of manifest.json when it was signed.
    pub digest_sha256: String,
    pub signed_at: DateTime<Utc>,
}

fn manifest_digest(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join(MANIFEST);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut crate::output::open_no_follow(&path)?, &mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes).into())
}

/// Signs the bundle's manifest digest with an asymmetric KMS key (Sign,
/// RSASSA_PSS_SHA_256, MessageType DIGEST) and writes the signature beside it.
pub async fn sign(config: &SdkConfig, dir: &Path, key: &str) -> Result<SignatureInfo> {
    let digest = manifest_digest(dir)?;
    let (key_id, signature) = signing::sign_digest(config, key, &digest).await?;
    crate::output::write_bytes_atomic(&dir.join(SIGNATURE), &signature)?;
    let info = SignatureInfo {
        signed_file: MANIFEST.into(),
        signature_file: SIGNATURE.into(),
        key_id,
        signing_algorithm: ALGORITHM.into(),
        message_type: signing::MESSAGE_TYPE.into(),
        digest_sha256: hex::encode(digest),
        signed_at: Utc::now(),
    };
    crate::output::write_json_file(&dir.join(SIGNATURE_INFO), &info)?;
    Ok(info)
}

/// Signs a bundle that still matches its manifest: a signature must not
/// vouch for files that are not what was collected.
pub async fn sign_sealed(config: &SdkConfig, dir: &Path, key: &str) -> Result<SignatureInfo> {
    let v = crate::bundle::verify(dir)?;
    if !v.ok() {
        return Err(crate::error::Error::input(
            dir,
            format!(
                "does not match its manifest ({}); refusing to sign",
                v.describe()
            ),
            "run `kmsrot verify-bundle` to see which",
        ));
    }
    sign(config, dir, key).await
}

/// What `--upload` puts: the report's files, then the bundle's under
/// `bundle/` (its manifest and signature included), as (object name, local
/// path).
pub fn report_and_bundle_files(
    written: &super::Written,
    bundle: &Path,
) -> Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<(String, PathBuf)> = written
        .files
        .iter()
        .map(|f| (f.clone(), written.out.join(f)))
        .collect();
    let mut bundle_files = crate::bundle::list_files(bundle)?;
    for extra in [MANIFEST, SIGNATURE, SIGNATURE_INFO] {
        if bundle.join(extra).exists() {
            bundle_files.push(extra.to_string());
        }
    }
    files.extend(
        bundle_files
            .into_iter()
            .map(|f| (format!("bundle/{f}"), bundle.join(&f))),
    );
    Ok(files)
}

/// What checking a signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No `manifest.json.sig.json` in the bundle.
    Unsigned,
    Valid {
        key_id: String,
        form: &'static str,
    },
    Invalid {
        key_id: String,
        reason: String,
    },
}

pub fn read_info(dir: &Path) -> Result<Option<SignatureInfo>> {
    let path = dir.join(SIGNATURE_INFO);
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::output::read_text_no_follow(&path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: not a kmsrot signature file: {e}", path.display()))
}

/// Checks the signature with the key's public half (GetPublicKey), verified
/// locally.
pub async fn verify(config: &SdkConfig, dir: &Path) -> Result<SignatureCheck> {
    let Some(info) = read_info(dir)? else {
        return Ok(SignatureCheck::Unsigned);
    };
    let (_, der) = signing::public_key(config, &info.key_id).await?;
    verify_with(dir, &info, &der)
}

/// Verifies against a DER SubjectPublicKeyInfo.
pub fn verify_with(dir: &Path, info: &SignatureInfo, der: &[u8]) -> Result<SignatureCheck> {
    if info.signing_algorithm != ALGORITHM {
        bail!(
            "{}: signing algorithm {} is not {ALGORITHM}",
            SIGNATURE_INFO,
            info.signing_algorithm
        );
    }
    // Always the bundle's own signature file: the name recorded in the info
    // file is bundle content, and could point anywhere.
    let sig_path = dir.join(SIGNATURE);
    let mut sig = Vec::new();
    std::io::Read::read_to_end(&mut crate::output::open_no_follow(&sig_path)?, &mut sig)
        .with_context(|| format!("reading {}", sig_path.display()))?;
    let digest = manifest_digest(dir)?;
    let invalid = |reason: String| {
        Ok(SignatureCheck::Invalid {
            key_id: info.key_id.clone(),
            reason,
        })
    };
    if hex::encode(digest) != info.digest_sha256 {
        return invalid(format!(
            "manifest.json changed since it was signed (SHA-256 {} now, {} signed)",
            hex::encode(digest),
            info.digest_sha256
        ));
    }
    match signing::verify_digest(der, &digest, &sig)
        .map_err(|e| anyhow::anyhow!("{}: {e}", info.key_id))?
    {
        Some(form) => Ok(SignatureCheck::Valid {
            key_id: info.key_id.clone(),
            form,
        }),
        None => invalid("the signature does not match manifest.json".into()),
    }
}

/// Where an upload went, and under what retention.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub objects: usize,
    pub locked_until: Option<DateTime<Utc>>,
    pub mode: Option<String>,
    pub note: Option<String>,
}

/// `s3://bucket/prefix` → (bucket, prefix without trailing `/`).
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(crate::error::hinted(
            format!("--upload {url}: not an s3:// URL"),
            "give s3://BUCKET/PREFIX",
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("--upload {url}: no bucket name");
    }
    Ok((bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// S3 Object Lock retention mode for uploaded objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub const ALL: [LockMode; 2] = [LockMode::Governance, LockMode::Compliance];

    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }
}

/// Puts `files` (relative name, local path) under `s3://bucket/prefix/`. Where the
/// bucket has Object Lock enabled, each object gets `mode` retention for
/// `days`; where it does not, the upload is plain and the note says so.
pub async fn upload(
    config: &SdkConfig,
    url: &str,
    files: &[(String, PathBuf)],
    days: i64,
    mode: LockMode,
) -> Result<Uploaded> {
    let (bucket, prefix) = parse_s3_url(url)?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let s3 = crate::aws::s3(config, &region);
    let lock = s3
        .get_object_lock_configuration()
        .bucket(&bucket)
        .send()
        .await;
    let (locked, note) = match lock {
        Ok(out) => {
            let on = out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                == Some(&ObjectLockEnabled::Enabled);
            (
                on,
                (!on).then(|| {
                    format!("bucket {bucket} has no Object Lock: uploaded without retention")
                }),
            )
        }
        Err(e) => {
            let info = ErrorInfo::from_sdk(&e);
            if info.code == "ObjectLockConfigurationNotFoundError" {
                (
                    false,
                    Some(format!(
                        "bucket {bucket} has no Object Lock: uploaded without retention"
                    )),
                )
            } else {
                bail!("s3:GetObjectLockConfiguration {bucket}: {info}");
            }
        }
    };
    let until = Utc::now() + Duration::days(days);
    let sdk_mode = match mode {
        LockMode::Governance => ObjectLockMode::Governance,
        LockMode::Compliance => ObjectLockMode::Compliance,
    };
    for (rel, path) in files {
        let key = if prefix.is_empty() {
            rel.clone()
        } else {
            format!("{prefix}/{rel}")
        };
        let body = ByteStream::from_path(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body)
            .set_object_lock_mode(locked.then(|| sdk_mode.clone()))
            .set_object_lock_retain_until_date(
                locked.then(|| aws_smithy_types::DateTime::from_secs(until.timestamp())),
            )
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "s3:PutObject s3://{bucket}/{key}: {}",
                    ErrorInfo::from_sdk(&e)
                )
            })?;
    }
    Ok(Uploaded {
        objects: files.len(),
        locked_until: locked.then_some(until),
        mode: locked.then(|| sdk_mode.as_str().to_string()),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::{Pss, RsaPrivateKey};

    #[test]
    fn a_kms_style_signature_verifies_and_tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), b"{\"files\":{}}\n").unwrap();
        let mut rng = rsa::rand_core::OsRng;
        // 1024 bits keeps the debug-build test quick; the check does not depend on the size.
        let private = RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let der = private
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        let digest = manifest_digest(dir.path()).unwrap();
        let sig = private
            .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(32), &digest)
            .unwrap();
        std::fs::write(dir.path().join(SIGNATURE), &sig).unwrap();
        let info = SignatureInfo {
            signed_file: MANIFEST.into(),
            signature_file: SIGNATURE.into(),
            key_id: "k".into(),
            signing_algorithm: ALGORITHM.into(),
            message_type: "DIGEST".into(),
            digest_sha256: hex::encode(digest),
            signed_at: Utc::now(),
        };
        assert_eq!(
            verify_with(dir.path(), &info, &der).unwrap(),
            SignatureCheck::Valid {
                key_id: "k".into(),
                form: "KMS DIGEST"
            }
        );
        std::fs::write(dir.path().join(MANIFEST), b"{\"files\":{\"x\":\"y\"}}\n").unwrap();
        assert!(matches!(
            verify_with(dir.path(), &info, &der).unwrap(),
            SignatureCheck::Invalid { .. }
        ));
    }

    #[test]
    fn s3_urls_parse() {
        assert_eq!(
            parse_s3_url("s3://b/p/q/").unwrap(),
            ("b".to_string(), "p/q".to_string())
        );
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_s3_url("https://b").is_err());
    }
}
