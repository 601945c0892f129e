//! The SOURCE arguments of `trail scan` and `collect --trail`, and the one
//! loop that reads them all into a [`Collector`].

use std::path::PathBuf;

use anyhow::Result;
use aws_config::SdkConfig;
use tokio::sync::OnceCell;

use super::public_keys::{self, KeySource};
use super::reader::ReadOptions;
use super::s3::ValidateWith;
use super::{Collector, EventRow, TrailCoverage};
use crate::aws::regions::{self, DEFAULT_ENABLED};
use crate::aws::AwsOptions;
use crate::error::hinted;
use crate::progress::Progress;

/// AWS access for the sources that need it, set up on first use only: a
/// scan of local files never resolves a region or credentials, so it never
/// probes the instance metadata service (IMDS) or waits for it.
pub struct Aws {
    opts: AwsOptions,
    config: OnceCell<SdkConfig>,
    /// The regions `--region` names (`all` discovered), else the default.
    named: OnceCell<Vec<String>>,
    /// Every region enabled for the account.
    enabled: OnceCell<Vec<String>>,
}

impl Aws {
    /// From the global flags; nothing is resolved yet.
    pub fn lazy(opts: AwsOptions) -> Self {
        Aws {
            opts,
            config: OnceCell::new(),
            named: OnceCell::new(),
            enabled: OnceCell::new(),
        }
    }

    /// A configuration already loaded, and the regions the run covers.
    pub fn loaded(config: SdkConfig, regions: Vec<String>) -> Self {
        Aws {
            opts: AwsOptions::default(),
            config: OnceCell::new_with(Some(config)),
            named: OnceCell::new_with(Some(regions.clone())),
            enabled: OnceCell::new_with(Some(regions)),
        }
    }

    pub async fn config(&self) -> &SdkConfig {
        self.config
            .get_or_init(|| crate::aws::load_config(&self.opts))
            .await
    }

    /// The regions asked with `--region` (`all`: every enabled one), or the
    /// configured region: where LookupEvents is asked.
    pub async fn named_regions(&self) -> Result<&[String]> {
        let config = self.config().await;
        self.named
            .get_or_try_init(|| async {
                if self.opts.regions.is_empty() {
                    Ok(vec![crate::aws::default_region(config)?])
                } else {
                    regions::resolve(config, &self.opts)
                        .await
                        .map(|p| p.regions)
                }
            })
            .await
            .map(Vec::as_slice)
    }

    /// Every region enabled for the account (account:ListRegions, else the
    /// built-in list).
    pub async fn enabled_regions(&self) -> Result<&[String]> {
        let config = self.config().await;
        self.enabled
            .get_or_try_init(|| async {
                let all = AwsOptions {
                    regions: vec!["all".into()],
                    ..self.opts.clone()
                };
                regions::resolve(config, &all).await.map(|p| p.regions)
            })
            .await
            .map(Vec::as_slice)
    }
}

/// A SOURCE argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
    Lookup,
    Lake(String),
}

pub fn parse_source(s: &str) -> Result<Source> {
    if let Some(rest) = s.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(hinted(
                format!("`{s}`: no bucket name"),
                "write the archive as s3://BUCKET/PREFIX",
            ));
        }
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if s == "lookup" {
        return Ok(Source::Lookup);
    }
    if let Some(store) = s.strip_prefix("lake:") {
        if store.is_empty() {
            return Err(hinted(
                format!("`{s}`: no event data store"),
                "write lake:EVENT_DATA_STORE (its ARN or ID)",
            ));
        }
        return Ok(Source::Lake(store.to_string()));
    }
    Ok(Source::Local(PathBuf::from(s)))
}

/// Reads every source, in order, and closes the scan.
pub async fn scan_sources(
    aws: &Aws,
    sources: &[String],
    opts: &ReadOptions,
    progress: &Progress,
) -> Result<(Vec<EventRow>, TrailCoverage)> {
    // Parse every argument before reading any, so a typo fails fast.
    let parsed = sources
        .iter()
        .map(|s| parse_source(s).map(|p| (s.as_str(), p)))
        .collect::<Result<Vec<_>>>()?;
    let remote = parsed.iter().any(|(_, p)| !matches!(p, Source::Local(_)));
    let validate = validation(opts, &parsed)?;
    let mut collector = Collector::new();
    for (given, source) in parsed {
        match source {
            Source::Local(path) => {
                super::local::scan(&path, given, opts, &mut collector, progress)?
            }
            Source::S3 { .. } => {
                super::s3::scan(
                    aws.config().await,
                    given,
                    opts,
                    &mut collector,
                    progress,
                    validate.as_ref(),
                )
                .await?
            }
            Source::Lookup => {
                let regions = aws.named_regions().await?;
                super::lookup::scan(aws.config().await, regions, opts, &mut collector, progress)
                    .await?
            }
            Source::Lake(_) => {
                super::lake::scan(aws.config().await, given, opts, &mut collector, progress).await?
            }
        }
    }
    // An account named with --account that no source found a log for
    // shows every day missing in every region in scope, not nothing.
    if !collector
        .accounts_without_ledger(&opts.scope.accounts)
        .is_empty()
    {
        let regions: Vec<String> = if !opts.scope.regions.is_empty() {
            opts.scope.regions.clone()
        } else if remote {
            aws.enabled_regions().await?.to_vec()
        } else {
            // Local files only: no AWS call is made, so the opt-in regions
            // an account enabled are not known.
            if !sources.is_empty() {
                collector.source_mut(0).limits.push(format!(
                    "an --account with no logs is reported missing in the {} regions every account has enabled; name opt-in regions with --region",
                    DEFAULT_ENABLED.len()
                ));
            }
            DEFAULT_ENABLED.iter().map(|r| r.to_string()).collect()
        };
        collector.note_named_accounts(&opts.scope.accounts, &regions);
    }
    Ok(collector.finish(opts.window))
}

/// `--validate` and `--public-keys`, checked before any source is read: the
/// keys file is read once, and a validation with nothing to validate is a
/// usage error rather than a quiet no-op.
fn validation(opts: &ReadOptions, parsed: &[(&str, Source)]) -> Result<Option<ValidateWith>> {
    if !opts.validate {
        if let Some(path) = &opts.public_keys {
            return Err(hinted(
                format!("--public-keys {} without --validate", path.display()),
                "add --validate to check the S3 archive's digest files with these keys",
            ));
        }
        return Ok(None);
    }
    if !parsed.iter().any(|(_, p)| matches!(p, Source::S3 { .. })) {
        return Err(hinted(
            "--validate checks the digest files of an S3 archive, and no source is s3://",
            "give the trail's archive as s3://BUCKET/PREFIX: digest signatures live in S3 object metadata, which local copies lose",
        ));
    }
    let keys = match &opts.public_keys {
        Some(path) => public_keys::load_file(path)?,
        None => KeySource::Api,
    };
    Ok(Some(ValidateWith { keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            parse_source("s3://b/AWSLogs/").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                prefix: "AWSLogs/".into()
            }
        );
        assert_eq!(parse_source("lookup").unwrap(), Source::Lookup);
        assert_eq!(
            parse_source("lake:eds").unwrap(),
            Source::Lake("eds".into())
        );
        assert_eq!(
            parse_source("./logs").unwrap(),
            Source::Local("./logs".into())
        );
        assert!(parse_source("s3://").is_err());
        assert!(parse_source("lake:").is_err());
    }
}
