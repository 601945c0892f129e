//! The SOURCE arguments of `trail scan` and `collect --trail`, and the one
//! loop that reads them all into a [`Collector`].

use std::path::PathBuf;

use anyhow::Result;
use aws_config::SdkConfig;

use super::reader::ReadOptions;
use super::{Collector, EventRow, TrailCoverage};
use crate::error::hinted;
use crate::progress::Progress;

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

/// Reads every source, in order, and closes the scan. `lookup_regions` are
/// the regions LookupEvents is asked in (it has no cross-region view).
pub async fn scan_sources(
    config: &SdkConfig,
    sources: &[String],
    lookup_regions: &[String],
    opts: &ReadOptions,
    progress: &Progress,
) -> Result<(Vec<EventRow>, TrailCoverage)> {
    // Parse every argument before reading any, so a typo fails fast.
    let parsed = sources
        .iter()
        .map(|s| parse_source(s).map(|p| (s.as_str(), p)))
        .collect::<Result<Vec<_>>>()?;
    let mut collector = Collector::new();
    for (given, source) in parsed {
        match source {
            Source::Local(path) => {
                super::local::scan(&path, given, opts, &mut collector, progress)?
            }
            Source::S3 { .. } => {
                super::s3::scan(config, given, opts, &mut collector, progress).await?
            }
            Source::Lookup => {
                let regions = if lookup_regions.is_empty() {
                    vec![crate::aws::default_region(config)?]
                } else {
                    lookup_regions.to_vec()
                };
                super::lookup::scan(config, &regions, opts, &mut collector, progress).await?
            }
            Source::Lake(_) => {
                super::lake::scan(config, given, opts, &mut collector, progress).await?
            }
        }
    }
    Ok(collector.finish(opts.window))
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
