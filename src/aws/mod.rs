//! One `SdkConfig` built from the global flags, clients made from it, region
//! discovery, and SDK errors turned into `code: message`.

use std::time::Duration;

use anyhow::Result;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

pub mod accounts;
pub mod assume;
pub mod budget;
pub mod identity;
pub mod raw;
pub mod regions;
pub mod signing;

pub use identity::{who_am_i, ContactError, Network, Origin};

/// The AWS-facing part of the global flags, after parsing.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    /// As typed: region names, or `all`. Empty means "the configured region".
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// `--accounts`, `--ou`, the role to assume and the run's budget.
    pub accounts: accounts::AccountOptions,
}

/// Loads the shared SDK configuration the way the AWS CLI does: the standard
/// credential chain (env, profile, SSO, IMDS, assume-role), `AWS_*` variables,
/// then the flags on top. The profile is checked first: one that does not
/// exist is an error, not a fall-through to the instance role. IMDS is
/// bounded to a few seconds, for region and credentials alike.
pub async fn load_config(opts: &AwsOptions) -> Result<(SdkConfig, Origin), ContactError> {
    let origin = identity::origin(opts.profile.as_deref()).await?;
    // A concrete region given on the command line also seeds the default
    // region, so single-region runs work without a profile.
    let first = opts
        .regions
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .find(|r| !r.is_empty() && *r != "all");
    let region = identity::region(first, opts.profile.as_deref()).await;
    let credentials = identity::credentials(opts.profile.as_deref(), region.clone()).await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        // Adaptive retry backs off on throttling across every call of a client,
        // which is what a fan-out over thousands of keys needs. AWS_MAX_ATTEMPTS
        // still sets the attempts, as it does for the CLI.
        .retry_config(RetryConfig::adaptive().with_max_attempts(max_attempts()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok((loader.load().await, origin))
}

fn max_attempts() -> u32 {
    max_attempts_from_env().unwrap_or(5)
}

/// `AWS_MAX_ATTEMPTS`, when set to a number of at least 1. Code that retries
/// by itself (LookupEvents, paced) honours it as the SDK does.
pub fn max_attempts_from_env() -> Option<u32> {
    std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
}

/// The configured default region, or an error telling the user how to set one.
pub fn default_region(config: &SdkConfig) -> Result<String> {
    config.region().map(|r| r.to_string()).ok_or_else(|| {
        Error::usage(
            "no AWS region is configured",
            "pass --region REGION (repeatable, or `all`), or set AWS_REGION or a region in your profile",
        )
    })
}

/// A per-region copy of the shared configuration.
pub fn for_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

pub fn kms(config: &SdkConfig, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&for_region(config, region))
}

/// A KMS client for one account and region of a fan-out. Each gets its own
/// retry partition: the SDK's default is one per Region, shared by every
/// account in the process, so adaptive backoff after one account's
/// throttling would slow every other account's calls in that Region. KMS
/// throttles per account and Region, and so does this client.
pub fn kms_for_account(
    config: &SdkConfig,
    region: &str,
    account: &str,
    recorder: Option<&raw::RawRecorder>,
    meter: Option<&budget::Meter>,
) -> aws_sdk_kms::Client {
    let mut conf = aws_sdk_kms::config::Builder::from(&for_region(config, region)).retry_partition(
        aws_sdk_kms::config::retry::RetryPartition::new(format!("kms-{account}-{region}")),
    );
    if let Some(r) = recorder {
        conf = conf.interceptor(r.clone());
    }
    if let Some(m) = meter {
        conf = conf.interceptor(m.clone());
    }
    aws_sdk_kms::Client::from_conf(conf.build())
}

/// A KMS client whose answers are also kept by `recorder` (for `raw/`).
pub fn kms_recorded(
    config: &SdkConfig,
    region: &str,
    recorder: &raw::RawRecorder,
) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::config::Builder::from(&for_region(config, region))
        .interceptor(recorder.clone())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

pub fn cloudtrail(config: &SdkConfig, region: &str) -> aws_sdk_cloudtrail::Client {
    aws_sdk_cloudtrail::Client::new(&for_region(config, region))
}

pub fn athena(config: &SdkConfig, region: &str) -> aws_sdk_athena::Client {
    aws_sdk_athena::Client::new(&for_region(config, region))
}

pub fn sts(config: &SdkConfig) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(config)
}

/// S3 client. With a custom endpoint (an emulator, a VPC endpoint, MinIO) use
/// path-style addressing, since such endpoints rarely serve bucket subdomains.
/// That includes an S3-only endpoint (`AWS_ENDPOINT_URL_S3`, or `endpoint_url`
/// in the profile's `services` section), which the SDK reads per service.
pub fn s3(config: &SdkConfig, region: &str) -> aws_sdk_s3::Client {
    let regional = for_region(config, region);
    let mut builder = aws_sdk_s3::config::Builder::from(&regional);
    let s3_endpoint = regional.service_config().and_then(|c| {
        c.load_config(
            aws_types::service_config::ServiceConfigKey::builder()
                .service_id("S3")
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .ok()?,
        )
    });
    if regional.endpoint_url().is_some() || s3_endpoint.is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// An AWS failure reduced to what a user and a coverage file need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorInfo {
    /// The service's error code (`AccessDeniedException`), or the SDK's class
    /// of failure (`DispatchFailure`, `TimeoutError`, `ResponseError`).
    pub code: String,
    pub message: String,
    /// Set when the request got no answer at all: the network failed, not
    /// AWS. A run where every region failed this way could not reach AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

// So a credentials provider can carry it as its error's source.
impl std::error::Error for ErrorInfo {}

impl ErrorInfo {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            code: code.into(),
            message: message.into(),
            network: None,
        }
    }

    /// The request never got an answer (refused, DNS, TLS, timeout).
    pub fn is_unreachable(&self) -> bool {
        self.network.is_some()
    }

    pub fn from_sdk<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err {
            SdkError::ServiceError(e) => {
                let inner = e.err();
                ErrorInfo::new(
                    inner.code().unwrap_or("UnknownError"),
                    inner.message().unwrap_or("the service gave no message"),
                )
            }
            SdkError::TimeoutError(_) => ErrorInfo {
                network: Some(Network::Timeout),
                ..ErrorInfo::new("TimeoutError", "the request timed out")
            },
            SdkError::DispatchFailure(e) => {
                let network = e
                    .as_connector_error()
                    .and_then(|c| identity::network_failure(c))
                    .map(|(n, _)| n)
                    .or_else(|| {
                        (e.is_timeout() || e.is_io()).then_some(if e.is_timeout() {
                            Network::Timeout
                        } else {
                            Network::Connection
                        })
                    });
                ErrorInfo {
                    network,
                    ..ErrorInfo::new("DispatchFailure", source_chain(err, &format!("{e:?}")))
                }
            }
            SdkError::ResponseError(_) => {
                ErrorInfo::new("ResponseError", source_chain(err, "unreadable response"))
            }
            SdkError::ConstructionFailure(_) => {
                ErrorInfo::new("ConstructionFailure", source_chain(err, "bad request"))
            }
            _ => ErrorInfo::new("UnknownError", source_chain(err, "unknown failure")),
        }
    }

    /// Access denials come back under several codes depending on the layer
    /// (IAM, SCP, key policy) and the service.
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.code.as_str(),
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
        )
    }

    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        )
    }
}

/// The innermost useful message of an error chain, for failures that have no
/// service code. Credentials never appear in these messages.
fn source_chain(err: &dyn std::error::Error, fallback: &str) -> String {
    let mut deepest = None;
    let mut cur = err.source();
    while let Some(e) = cur {
        deepest = Some(e.to_string());
        cur = e.source();
    }
    deepest.unwrap_or_else(|| fallback.to_string())
}

/// Who the credentials belong to (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// The account id inside an ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|s| !s.is_empty())
}

/// The region inside an ARN.
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|s| !s.is_empty())
}

/// The partition inside an ARN (`aws`, `aws-cn`, `aws-us-gov`).
pub fn arn_partition(arn: &str) -> Option<&str> {
    arn.split(':').nth(1).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parts() {
        let arn = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd";
        assert_eq!(arn_partition(arn), Some("aws-us-gov"));
        assert_eq!(arn_region(arn), Some("us-gov-west-1"));
        assert_eq!(arn_account(arn), Some("111122223333"));
        assert_eq!(arn_account("garbage"), None);
    }
}
