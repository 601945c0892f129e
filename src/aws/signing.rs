//! Signatures made by a KMS asymmetric key and checked with its public half.
//!
//! Shared by `report --sign-with` (the bundle's manifest) and `approve
//! --sign-with` (an approval's canonical form): both sign a SHA-256 digest
//! with RSASSA_PSS_SHA_256 and MessageType DIGEST, and both verify locally
//! with the key's public half from GetPublicKey, so the private half never
//! leaves KMS and verification needs no kms:Verify permission.

use anyhow::{anyhow, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pss, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::ErrorInfo;

pub const ALGORITHM: &str = "RSASSA_PSS_SHA_256";
pub const MESSAGE_TYPE: &str = "DIGEST";

/// A KMS client in the key's own region when the key is named by ARN (an
/// alias or bare id is looked up in the configured region).
pub fn kms_for(config: &SdkConfig, key: &str) -> aws_sdk_kms::Client {
    match super::arn_region(key).filter(|_| key.starts_with("arn:")) {
        Some(region) => super::kms(config, region),
        None => aws_sdk_kms::Client::new(config),
    }
}

/// Signs a SHA-256 digest with `key`; returns the key ARN KMS reported and
/// the signature.
pub async fn sign_digest(
    config: &SdkConfig,
    key: &str,
    digest: &[u8; 32],
) -> Result<(String, Vec<u8>)> {
    let out = kms_for(config, key)
        .sign()
        .key_id(key)
        .message(Blob::new(digest.to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .map_err(|e| {
            crate::error::hinted(
                format!("kms:Sign with {key}: {}", ErrorInfo::from_sdk(&e)),
                "--sign-with needs an asymmetric RSA key with KeyUsage SIGN_VERIFY and kms:Sign on it",
            )
        })?;
    let signature = out
        .signature()
        .with_context(|| format!("kms:Sign with {key}: the answer holds no signature"))?;
    Ok((
        out.key_id().unwrap_or(key).to_string(),
        signature.as_ref().to_vec(),
    ))
}

/// The key ARN and its public half (DER SubjectPublicKeyInfo), from
/// GetPublicKey.
pub async fn public_key(config: &SdkConfig, key: &str) -> Result<(String, Vec<u8>)> {
    let out = kms_for(config, key)
        .get_public_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| anyhow!("kms:GetPublicKey {key}: {}", ErrorInfo::from_sdk(&e)))?;
    let der = out
        .public_key()
        .with_context(|| format!("kms:GetPublicKey {key}: no public key"))?;
    Ok((
        out.key_id().unwrap_or(key).to_string(),
        der.as_ref().to_vec(),
    ))
}

/// Checks `signature` over `digest` with an RSA public key (DER). Returns the
/// form that verified, or `None` when none does. An unreadable key is an
/// error.
///
/// AWS KMS, given MessageType DIGEST, signs the digest itself with a salt as
/// long as the hash (32 bytes). moto 5.2.5 ignores MessageType, hashes the
/// digest again and uses the longest salt; that form is accepted too and
/// reported as such. Both bind the signature to the same SHA-256.
pub fn verify_digest(
    der: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<Option<&'static str>> {
    let key = RsaPublicKey::from_public_key_der(der)
        .map_err(|e| anyhow!("not an RSA public key: {e}"))?;
    let em_len = (key.n().bits() - 1).div_ceil(8);
    let max_salt = em_len.saturating_sub(32 + 2);
    let rehashed: [u8; 32] = Sha256::digest(digest).into();
    for (hashed, salt, form) in [
        (digest, 32, "KMS DIGEST"),
        (&rehashed, max_salt, "digest signed as a message (emulator)"),
        (&rehashed, 32, "digest signed as a message"),
    ] {
        if key
            .verify(Pss::new_with_salt::<Sha256>(salt), hashed, signature)
            .is_ok()
        {
            return Ok(Some(form));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::RsaPrivateKey;

    /// A key pair for tests; 1024 bits keeps debug-build tests quick, and the
    /// checks do not depend on the size.
    pub(crate) fn key_pair() -> (RsaPrivateKey, Vec<u8>) {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let der = private
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        (private, der)
    }

    /// Signs a digest as AWS KMS does with MessageType DIGEST.
    pub(crate) fn kms_style_sign(private: &RsaPrivateKey, digest: &[u8; 32]) -> Vec<u8> {
        private
            .sign_with_rng(
                &mut rsa::rand_core::OsRng,
                Pss::new_with_salt::<Sha256>(32),
                digest,
            )
            .unwrap()
    }

    #[test]
    fn the_aws_form_verifies_and_another_digest_does_not() {
        let (private, der) = key_pair();
        let digest: [u8; 32] = Sha256::digest(b"approval").into();
        let sig = kms_style_sign(&private, &digest);
        assert_eq!(
            verify_digest(&der, &digest, &sig).unwrap(),
            Some("KMS DIGEST")
        );
        let other: [u8; 32] = Sha256::digest(b"approval, edited").into();
        assert_eq!(verify_digest(&der, &other, &sig).unwrap(), None);
        assert!(verify_digest(b"not a key", &digest, &sig).is_err());
    }
}
