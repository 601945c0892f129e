//! [`Ctx`]: what a run decided once, from the command line, before any
//! work: how to reach AWS, the policy, the clock, the output format and the
//! progress reporter. Library functions take it instead of re-deciding.
//!
//! The AWS configuration is built on first use, and only then: offline
//! commands (`report`, `diff`, `assess`, `plan`, `trail scan` of local files)
//! never resolve credentials, read a profile or probe IMDS. Its first use is
//! the caller check ([`Ctx::caller`]): no other AWS call is made before STS
//! GetCallerIdentity has said whose credentials these are.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use crate::aws::accounts::{self, AccountPlan};
use crate::aws::assume::{self, AccountAccess, RoleRequest};
use crate::aws::budget::{Budget, Meter};
use crate::aws::regions::RegionPlan;
use crate::aws::{self, AwsOptions, CallerIdentity, ErrorInfo, Origin};
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

/// One account's access, made once and shared by every task that needs it.
type AccessCell = Arc<OnceCell<Result<Arc<AccountAccess>, ErrorInfo>>>;

/// The run's context, built once by the CLI.
pub struct Ctx {
    aws_options: AwsOptions,
    sdk: OnceCell<(SdkConfig, Origin)>,
    caller: OnceCell<CallerIdentity>,
    regions: OnceCell<RegionPlan>,
    enabled: OnceCell<Vec<String>>,
    accounts: OnceCell<AccountPlan>,
    ou_paths: OnceCell<Result<BTreeMap<String, String>, ErrorInfo>>,
    access: Mutex<HashMap<String, AccessCell>>,
    budget: Budget,
    meter: Meter,
    assume_calls: Arc<AtomicU64>,
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
            budget: Budget::new(aws_options.accounts.max_concurrency),
            aws_options,
            sdk: OnceCell::new(),
            caller: OnceCell::new(),
            regions: OnceCell::new(),
            enabled: OnceCell::new(),
            accounts: OnceCell::new(),
            ou_paths: OnceCell::new(),
            access: Mutex::new(HashMap::new()),
            meter: Meter::new(),
            assume_calls: Arc::new(AtomicU64::new(0)),
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

    /// True when `--accounts` or `--ou` was given.
    pub fn is_multi_account(&self) -> bool {
        self.aws_options.accounts.is_multi_account()
    }

    /// The run's accounts, resolved once: Organizations for `--accounts org`
    /// and `--ou`, the names given otherwise. Without the flags, the
    /// caller's account alone.
    pub async fn account_plan(&self) -> Result<&AccountPlan> {
        self.accounts
            .get_or_try_init(|| async {
                let caller = self.caller().await?.clone();
                let config = self.aws().await?;
                let opts = &self.aws_options.accounts;
                if opts.is_multi_account() {
                    accounts::resolve(config, &caller, opts).await
                } else {
                    let own = accounts::AccountOptions {
                        ids: vec![caller.account.clone()],
                        ..opts.clone()
                    };
                    accounts::resolve(config, &caller, &own).await
                }
            })
            .await
    }

    /// OU paths of every account of the organization, walked once, for
    /// `--accounts org` (the manifest and the report show them). Run beside
    /// the reading: nothing else waits for it.
    pub async fn org_ou_paths(&self) -> Result<BTreeMap<String, String>, ErrorInfo> {
        if !self.aws_options.accounts.org {
            return Ok(BTreeMap::new());
        }
        self.ou_paths
            .get_or_init(|| async {
                let config = self
                    .aws()
                    .await
                    .map_err(|e| ErrorInfo::new("Error", e.to_string()))?;
                let _slot = self.budget.slot().await;
                accounts::org_paths(config).await
            })
            .await
            .clone()
    }

    /// How to reach `account`: the caller's own configuration for the
    /// calling account, else `--role-name` assumed in it (once for the whole
    /// run, whatever the number of regions and tasks asking).
    pub async fn account_access(&self, account: &str) -> Result<Arc<AccountAccess>, ErrorInfo> {
        let config = self
            .aws()
            .await
            .map_err(|e| ErrorInfo::new("Error", format!("{e:#}")))?;
        let caller = self
            .caller()
            .await
            .map_err(|e| ErrorInfo::new("Error", format!("{e:#}")))?;
        if account == caller.account {
            return Ok(Arc::new(AccountAccess {
                account_id: account.to_string(),
                config: config.clone(),
                role_arn: None,
                session_name: None,
                assumed_arn: Some(caller.arn.clone()),
            }));
        }
        let cell = {
            let mut map = self
                .access
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(account.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let opts = &self.aws_options.accounts;
            let partition = aws::arn_partition(&caller.arn).unwrap_or("aws");
            let request = RoleRequest {
                role_arn: opts.role_arn(partition, account),
                session_name: opts.session_name.clone(),
                external_id: opts.external_id.clone(),
            };
            let _slot = self.budget.slot().await;
            assume::assume(
                config,
                account,
                request,
                self.assume_calls.clone(),
                Some(&self.meter),
            )
            .await
            .map(Arc::new)
        })
        .await
        .clone()
    }

    /// The configuration to act on one resource of `account` with: the
    /// caller's own without the organization flags (a key ARN of another
    /// account is then reached through its key policy, as AWS allows), else
    /// the role assumed in that account, or the refusal, with a hint.
    pub async fn config_for_account(&self, account: Option<&str>) -> Result<SdkConfig> {
        let opts = &self.aws_options.accounts;
        if !opts.is_multi_account() {
            return Ok(self.aws().await?.clone());
        }
        let account = match account {
            Some(a) => a.to_string(),
            // Named without its account (a key id, an alias): only a run
            // over one account can say which it is.
            None if !opts.org && opts.ous.is_empty() && opts.ids.len() == 1 => opts.ids[0].clone(),
            None => {
                return Err(crate::error::Error::usage(
                    "with --accounts or --ou, a key named by id or alias does not say which account it is in",
                    "name the key by its ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or give exactly one --accounts ID",
                ))
            }
        };
        match self.account_access(&account).await {
            Ok(a) => Ok(a.config.clone()),
            Err(e) => {
                let partition = match self.caller().await {
                    Ok(c) => aws::arn_partition(&c.arn).unwrap_or("aws").to_string(),
                    Err(_) => "aws".into(),
                };
                Err(crate::error::Error::aws(
                    format!("sts:AssumeRole {}", opts.role_arn(&partition, &account)),
                    e,
                    "the role must exist in that account and trust the caller (docs/iam/org-member-role.yaml); check --role-name and --external-id",
                ))
            }
        }
    }

    /// The run's budget of requests in flight (`--max-concurrency`).
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The meter every client of the fan-out reports to.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// AssumeRole calls made so far (first ones and refreshes).
    pub fn assume_role_calls(&self) -> u64 {
        self.assume_calls.load(Ordering::Relaxed)
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
