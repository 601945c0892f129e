//! Which regions a run covers: the ones named, the configured default, or
//! `all` (discovered with Account ListRegions, else a built-in list).

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_account::types::RegionOptStatus;

use super::{default_region, AwsOptions, ErrorInfo};

/// Regions every account has enabled; no opt-in needed.
pub const DEFAULT_ENABLED: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
];

/// Opt-in regions of the commercial partition. In an account that has not
/// enabled one, calls there fail with UnrecognizedClientException.
pub const OPT_IN: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// The regions to read, and how they were chosen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RegionPlan {
    pub regions: Vec<String>,
    /// `flags`, `default`, `account:ListRegions` or `built-in list`.
    pub discovered_by: String,
    /// Set when discovery failed and the built-in list was used instead.
    pub discovery_error: Option<ErrorInfo>,
}

impl RegionPlan {
    /// True when `region` came from the built-in list and is opt-in, so a
    /// failure there most likely means the account never enabled it.
    pub fn is_unconfirmed_opt_in(&self, region: &str) -> bool {
        self.discovery_error.is_some() && OPT_IN.contains(&region)
    }
}

pub async fn resolve(config: &SdkConfig, opts: &AwsOptions) -> Result<RegionPlan> {
    if opts.regions.is_empty() {
        return Ok(RegionPlan {
            regions: vec![default_region(config)?],
            discovered_by: "default".into(),
            discovery_error: None,
        });
    }
    let mut named: Vec<String> = Vec::new();
    let mut want_all = false;
    for r in &opts.regions {
        // `--region a,b` is accepted as well as `--region a --region b`.
        for part in r.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                want_all = true;
            } else if !named.iter().any(|n| n == part) {
                named.push(part.to_string());
            }
        }
    }
    if !want_all {
        return Ok(RegionPlan {
            regions: named,
            discovered_by: "flags".into(),
            discovery_error: None,
        });
    }
    match discover(config).await {
        Ok(regions) if !regions.is_empty() => Ok(RegionPlan {
            regions,
            discovered_by: "account:ListRegions".into(),
            discovery_error: None,
        }),
        Ok(_) => Ok(fallback(ErrorInfo::new(
            "EmptyResult",
            "account:ListRegions returned no enabled region",
        ))),
        Err(e) => Ok(fallback(e)),
    }
}

fn fallback(error: ErrorInfo) -> RegionPlan {
    RegionPlan {
        regions: DEFAULT_ENABLED
            .iter()
            .chain(OPT_IN)
            .map(|s| s.to_string())
            .collect(),
        discovered_by: "built-in list".into(),
        discovery_error: Some(error),
    }
}

async fn discover(config: &SdkConfig) -> Result<Vec<String>, ErrorInfo> {
    // The Account API is global; it answers from any region.
    let client = aws_sdk_account::Client::new(config);
    let mut regions = Vec::new();
    let mut pages = client
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ErrorInfo::from_sdk(&e))?;
        for r in page.regions() {
            if let Some(name) = r.region_name() {
                regions.push(name.to_string());
            }
        }
    }
    regions.sort();
    Ok(regions)
}
