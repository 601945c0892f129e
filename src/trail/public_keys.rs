//! The public keys CloudTrail signs digest files with: from CloudTrail's
//! ListPublicKeys, per region and for a time range, or from a file holding
//! what `aws cloudtrail list-public-keys` printed (offline and air-gapped
//! audits).

use std::path::Path;

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use super::digest::{self, PublicKey};
use crate::aws::{self, ErrorInfo};
use crate::error::Error;

/// Where validation takes its keys from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `--public-keys FILE`: its label and keys.
    File(String, Vec<PublicKey>),
    /// CloudTrail ListPublicKeys in each region validated.
    Api,
}

/// Reads `--public-keys FILE`; a malformed file is a one-line error naming it.
pub fn load_file(path: &Path) -> Result<KeySource> {
    let hint = "give the JSON that `aws cloudtrail list-public-keys --start-time T --end-time T --region R` prints, for the regions and time of the archive";
    let text = std::fs::read(path)
        .map_err(|e| Error::input(path, format!("cannot read the public keys file: {e}"), hint))?;
    let keys = digest::parse_public_keys_json(&text).map_err(|e| Error::input(path, e, hint))?;
    if keys.is_empty() {
        return Err(Error::input(path, "PublicKeyList is empty", hint));
    }
    Ok(KeySource::File(
        format!("--public-keys {} ({} key(s))", path.display(), keys.len()),
        keys,
    ))
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// ListPublicKeys in `region` for `from..to`, every page. The error is
/// `code: message` with what the user can do.
pub async fn list(
    config: &SdkConfig,
    region: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PublicKey>, String> {
    let client = aws::cloudtrail(config, region);
    let mut pages = client
        .list_public_keys()
        .start_time(smithy_time(from))
        .end_time(smithy_time(to))
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let info = ErrorInfo::from_sdk(&e);
            if info.is_access_denied() {
                format!(
                    "{info} (hint: allow cloudtrail:ListPublicKeys, or pass --public-keys FILE)"
                )
            } else {
                info.to_string()
            }
        })?;
        for k in page.public_key_list() {
            let (Some(fp), Some(value)) = (k.fingerprint(), k.value()) else {
                continue;
            };
            match digest::public_key_from_der(
                fp,
                value.as_ref(),
                k.validity_start_time().and_then(chrono_time),
                k.validity_end_time().and_then(chrono_time),
            ) {
                Ok(key) => keys.push(key),
                // One unreadable key does not hide the others; a digest that
                // needed it is unverified.
                Err(e) => tracing::warn!("ListPublicKeys in {region}: {e}"),
            }
        }
    }
    Ok(keys)
}
