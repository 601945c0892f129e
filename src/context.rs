//! [`Ctx`]: what a run decided once, from the command line, before any
//! work: how to reach AWS, the policy, the clock, the output format and the
//! progress reporter. Library functions take it instead of re-deciding.
//!
//! The AWS configuration is built on first use, and only then: offline
//! commands (`report`, `diff`, `assess`, `plan`, `trail scan` of local files)
//! never resolve credentials, read a profile or probe IMDS. Its first use is
//! the caller check ([`Ctx::caller`]): no other AWS call is made before STS
//! GetCallerIdentity has said whose credentials these are.

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use crate::aws::regions::RegionPlan;
use crate::aws::{self, AwsOptions, CallerIdentity, Origin};
use crate::error::Error;
use crate::output::Format;
use crate::policy::Policy;
use crate::progress::Progress;

/// "Now" for the whole run, and the as-of date when one was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    now: DateTime<Utc>,
    as_of: Option<DateTime<Utc>>,
}

impl Clock {
    /// Reads the system clock once: every step of a run sees the same "now".
    pub fn system() -> Self {
        Clock {
            now: Utc::now(),
            as_of: None,
        }
    }

    /// A clock stopped at `now` (tests, reproducible runs).
    pub fn fixed(now: DateTime<Utc>) -> Self {
        Clock { now, as_of: None }
    }

    /// Judge as of `as_of` (`--as-of`, `audit --until`) instead of now.
    pub fn with_as_of(mut self, as_of: Option<DateTime<Utc>>) -> Self {
        self.as_of = as_of;
        self
    }

    /// When the run started.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The as-of date asked for, if any. A report falls back to the
    /// bundle's own as-of rather than to now.
    pub fn requested_as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }

    /// The date findings are judged at: the one asked for, else now.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.as_of.unwrap_or(self.now)
    }
}

/// The run's context, built once by the CLI.
pub struct Ctx {
    aws_options: AwsOptions,
    sdk: OnceCell<(SdkConfig, Origin)>,
    caller: OnceCell<CallerIdentity>,
    regions: OnceCell<RegionPlan>,
    enabled: OnceCell<Vec<String>>,
    pub policy: Policy,
    pub clock: Clock,
    pub output: Format,
    pub progress: Progress,
}

impl Ctx {
    pub fn new(
        aws_options: AwsOptions,
        policy: Policy,
        clock: Clock,
        output: Format,
        progress: Progress,
    ) -> Self {
        Ctx {
            aws_options,
            sdk: OnceCell::new(),
            caller: OnceCell::new(),
            regions: OnceCell::new(),
            enabled: OnceCell::new(),
            policy,
            clock,
            output,
            progress,
        }
    }

    /// A context for library callers and tests: default policy, the system
    /// clock, table output, no bars.
    pub fn offline(aws_options: AwsOptions) -> Self {
        Ctx::new(
            aws_options,
            Policy::default(),
            Clock::system(),
            Format::Table,
            Progress::hidden(),
        )
    }

    /// The AWS flags as given (`--profile`, `--region`, `--endpoint-url`).
    pub fn aws_options(&self) -> &AwsOptions {
        &self.aws_options
    }

    /// The SDK configuration, built on the first call and shared after it,
    /// once the caller check has passed. This is the one door to AWS: a role
    /// assumed per account belongs here too.
    pub async fn aws(&self) -> Result<&SdkConfig> {
        self.caller().await?;
        Ok(&self.sdk().await?.0)
    }

    /// Who the run's credentials belong to (STS GetCallerIdentity), asked
    /// once; or the typed error saying why it cannot be known (no
    /// credentials, unknown profile, expired SSO session, refused keys, an
    /// unreachable endpoint). A failure is not kept: `approve` may ask,
    /// go on without, and a later caller asks again.
    pub async fn caller(&self) -> Result<&CallerIdentity> {
        self.caller
            .get_or_try_init(|| async {
                let (config, origin) = self.sdk().await?;
                aws::who_am_i(config, origin)
                    .await
                    .map_err(|e| anyhow::Error::from(Error::from(e)))
            })
            .await
    }

    async fn sdk(&self) -> Result<&(SdkConfig, Origin)> {
        self.sdk
            .get_or_try_init(|| async {
                aws::load_config(&self.aws_options)
                    .await
                    .map_err(|e| anyhow::Error::from(Error::from(e)))
            })
            .await
    }

    /// Whether the AWS configuration has been built (tests of offline runs).
    pub fn aws_loaded(&self) -> bool {
        self.sdk.initialized()
    }

    /// The regions this run reads (`--region`, `all`, or the configured
    /// one), resolved once. A failed `all` discovery falls back to the
    /// built-in list, and the reporter says so.
    pub async fn region_plan(&self) -> Result<&RegionPlan> {
        self.regions
            .get_or_try_init(|| async {
                let config = self.aws().await?;
                let plan = aws::regions::resolve(config, &self.aws_options).await?;
                if let Some(e) = &plan.discovery_error {
                    self.progress.note(&format!(
                        "warning: could not discover the account's regions (account:ListRegions: {}); reading the built-in list of {} regions instead",
                        crate::output::display_safe(&e.to_string()),
                        plan.regions.len()
                    ));
                }
                Ok(plan)
            })
            .await
    }

    /// Every region enabled for the account (account:ListRegions, else the
    /// built-in list), whatever `--region` says; resolved once.
    pub async fn enabled_regions(&self) -> Result<&[String]> {
        self.enabled
            .get_or_try_init(|| async {
                let config = self.aws().await?;
                let all = AwsOptions {
                    regions: vec!["all".into()],
                    ..self.aws_options.clone()
                };
                Ok(aws::regions::resolve(config, &all).await?.regions)
            })
            .await
            .map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_clock_reads_once_and_as_of_wins() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let c = Clock::fixed(now);
        assert_eq!((c.now(), c.as_of(), c.requested_as_of()), (now, now, None));
        let then = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let c = c.with_as_of(Some(then));
        assert_eq!((c.now(), c.as_of()), (now, then));
    }

    #[test]
    fn building_a_context_does_not_load_aws() {
        let ctx = Ctx::offline(AwsOptions::default());
        assert!(!ctx.aws_loaded());
    }
}
