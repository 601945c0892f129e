//! The SOURCE arguments of `trail scan` and `collect --trail`, and the one
//! loop that reads them all into a [`Collector`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures::StreamExt;

use super::public_keys::{self, KeySource};
use super::reader::{parse_event_list, ReadOptions};
use super::s3::ValidateWith;
use super::{Collector, EventRow, TrailCoverage};
use crate::aws::regions::DEFAULT_ENABLED;
use crate::context::Ctx;
use crate::error::{hinted, Error};
use crate::frames::EVENTS;
use crate::output::{write_frame, write_json_file, Table};

/// A SOURCE argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
    Lookup,
    Lake(String),
    Athena(String),
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
        // The whole URL is checked here, with the other arguments, so a
        // typo is a usage error before any AWS contact.
        super::s3::parse_url(s)?;
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if s == "lookup" {
        return Ok(Source::Lookup);
    }
    if let Some(table) = s.strip_prefix("athena:") {
        if table.is_empty() {
            return Err(hinted(
                format!("`{s}`: no table"),
                "write athena:DATABASE.TABLE (the Glue database and table of your CloudTrail table)",
            ));
        }
        return Ok(Source::Athena(table.to_string()));
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

/// The sources that are local files or folders, as parsed: the places an
/// output folder must not land in, since they are read whole. A source that
/// does not parse is left to the scan, which names it.
pub fn local_paths(sources: &[String]) -> Vec<PathBuf> {
    sources
        .iter()
        .filter_map(|s| match parse_source(s) {
            Ok(Source::Local(p)) => Some(p),
            _ => None,
        })
        .collect()
}

/// Reads every source, in order, and closes the scan. AWS is reached only
/// through `ctx`, and only for a remote source: a scan of local files never
/// resolves a region or credentials, so it never probes IMDS. LookupEvents
/// has no cross-region view: it is asked in the run's regions (`--region`,
/// `all` discovered), else the configured one.
pub async fn scan_sources(
    ctx: &Ctx,
    sources: &[String],
    opts: &ReadOptions,
) -> Result<(Vec<EventRow>, TrailCoverage)> {
    // Parse every argument before reading any, so a typo fails fast.
    let parsed = sources
        .iter()
        .map(|s| parse_source(s).map(|p| (s.as_str(), p)))
        .collect::<Result<Vec<_>>>()?;
    let progress = &ctx.progress;
    let remote = parsed.iter().any(|(_, p)| !matches!(p, Source::Local(_)));
    // Flag checks first: a usage error needs no network.
    let validate = validation(opts, &parsed)?;
    if remote {
        // Who we are before any reading, local sources included: a run that
        // cannot reach AWS stops now, not after minutes of local files.
        ctx.caller().await?;
    }
    let mut collector = Collector::new();
    for (given, source) in parsed {
        match source {
            Source::Local(path) => {
                super::local::scan(&path, given, opts, &mut collector, progress)?
            }
            Source::S3 { .. } => {
                let config = ctx.aws().await?;
                super::s3::scan(
                    config,
                    given,
                    opts,
                    &mut collector,
                    progress,
                    validate.as_ref(),
                )
                .await?
            }
            Source::Lookup if ctx.is_multi_account() => {
                // Event history is per account: each is asked through the
                // role assumed in it (the caller's own account directly).
                let regions = ctx.region_plan().await?.regions.clone();
                let plan = ctx.account_plan().await?;
                let accounts: Vec<super::lookup::LookupAccount> =
                    futures::stream::iter(plan.to_read())
                        .map(|t| async move {
                            let config = match ctx.account_access(&t.account_id).await {
                                Ok(a) => Ok(a.config.clone()),
                                Err(e) => Err(format!(
                                    "AssumeRole {}: {e}",
                                    t.role_arn.as_deref().unwrap_or("(none)")
                                )),
                            };
                            super::lookup::LookupAccount {
                                account: Some(t.account_id.clone()),
                                config,
                            }
                        })
                        .buffered(ctx.budget().size())
                        .collect()
                        .await;
                super::lookup::scan_accounts(&accounts, &regions, opts, &mut collector, progress)
                    .await?
            }
            Source::Lookup => {
                let config = ctx.aws().await?;
                let account = ctx.caller().await?.account.clone();
                let regions = ctx.region_plan().await?.regions.clone();
                super::lookup::scan(config, &account, &regions, opts, &mut collector, progress)
                    .await?
            }
            Source::Lake(_) => {
                let config = ctx.aws().await?;
                super::lake::scan(config, given, opts, &mut collector, progress).await?
            }
            Source::Athena(_) => {
                let config = ctx.aws().await?;
                super::athena::scan(config, given, opts, &mut collector, progress).await?
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
            ctx.enabled_regions().await?.to_vec()
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

/// What `kmsrot trail scan` read.
#[derive(Debug)]
pub struct Scan {
    pub rows: Vec<EventRow>,
    pub coverage: TrailCoverage,
}

/// `kmsrot trail scan`: reads every source and writes `events.*` and
/// `coverage.json` into `out`.
pub async fn scan_into(
    ctx: &Ctx,
    sources: &[String],
    opts: &ReadOptions,
    out: &Path,
) -> Result<Scan> {
    let (rows, coverage) = scan_sources(ctx, sources, opts).await?;
    write_frame(out, &EVENTS, &mut super::events_frame(&rows)?)?;
    let doc = serde_json::json!({
        "complete": coverage.complete,
        "trail": &coverage,
    });
    write_json_file(&out.join("coverage.json"), &doc)?;
    Ok(Scan { rows, coverage })
}

impl Scan {
    /// Events read, kept and duplicated, then counts by event name and by
    /// error code.
    pub fn summary_table(&self) -> Table {
        let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_error: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &self.rows {
            *by_name
                .entry(r.event_name.as_deref().unwrap_or("(none)"))
                .or_default() += 1;
            if let Some(code) = r.error_code.as_deref() {
                *by_error.entry(code).or_default() += 1;
            }
        }
        let c = &self.coverage;
        let mut table = Table::new(["what", "name", "count"]);
        table.row(["total", "events_read", &c.events_read.to_string()]);
        table.row(["total", "events_kept", &c.events_kept.to_string()]);
        table.row(["total", "duplicates", &c.duplicates.to_string()]);
        for (name, n) in &by_name {
            table.row(["event_name", name, &n.to_string()]);
        }
        for (code, n) in &by_error {
            table.row(["error_code", code, &n.to_string()]);
        }
        table
    }
}

/// Reads `--events-file`: one CloudTrail eventName per line, `#` comments.
pub fn read_event_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the events file", path.display()))?;
    let names = parse_event_list(&text);
    if let Some(bad) = names
        .iter()
        .find(|n| !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(Error::input(
            path,
            format!("`{bad}` is not an event name"),
            "one CloudTrail eventName per line, such as RotateKey; `#` starts a comment",
        ));
    }
    Ok(names)
}

/// `--validate` and `--public-keys`, checked before any source is read: the
/// keys file is read once, and a validation with nothing to validate is a
/// usage error rather than a quiet no-op.
fn validation(opts: &ReadOptions, parsed: &[(&str, Source)]) -> Result<Option<ValidateWith>> {
    if !opts.validate {
        if let Some(path) = &opts.public_keys {
            return Err(Error::usage(
                format!("--public-keys {} without --validate", path.display()),
                "add --validate to check the S3 archive's digest files with these keys",
            ));
        }
        return Ok(None);
    }
    if !parsed.iter().any(|(_, p)| matches!(p, Source::S3 { .. })) {
        return Err(Error::usage(
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
        assert_eq!(
            parse_source("athena:db.ct").unwrap(),
            Source::Athena("db.ct".into())
        );
        assert!(parse_source("athena:").is_err());
    }

    #[test]
    fn only_local_sources_guard_the_output_folder() {
        let given: Vec<String> = [
            "s3://bucket/prefix",
            "lookup",
            "lake:eds-1",
            "athena:db.cloudtrail",
            "logs/2025",
            "athena:",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(local_paths(&given), vec![PathBuf::from("logs/2025")]);
    }
}
