//! Assessment steps 1–3: every KMS key in the chosen regions, its metadata,
//! aliases, tags, rotation status and rotation history.
//!
//! Regions are read concurrently, keys within a region concurrently up to a
//! bound. Every paginated call is followed to its end. A region or key that
//! cannot be read is recorded in [`InventoryCoverage`] and the run goes on.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::accounts::AccountTarget;
use crate::aws::budget::Budget;
use crate::aws::regions::RegionPlan;
use crate::aws::{self, AwsOptions, ContactError, ErrorInfo, Network};
use crate::context::Ctx;
use crate::frames::time::rfc3339;
use crate::frames::{col, Cell, FrameBuilder, KEYS, ROTATIONS};
use crate::output::{write_frame, write_json_file, Table};
use crate::progress::Bar;

pub mod eligibility;
pub mod grants;

pub use eligibility::Eligibility;

/// One KMS key, as the `keys` frame holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyRecord {
    pub account_id: Option<String>,
    pub region: String,
    pub key_id: String,
    pub arn: String,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    pub key_manager: Option<String>,
    pub key_spec: Option<String>,
    pub key_usage: Option<String>,
    pub origin: Option<String>,
    pub key_state: Option<String>,
    pub creation_date: Option<DateTime<Utc>>,
    pub deletion_date: Option<DateTime<Utc>>,
    pub multi_region: Option<bool>,
    pub multi_region_role: Option<String>,
    pub primary_key_arn: Option<String>,
    pub custom_key_store_id: Option<String>,
    /// Tag key → value. `None` when the tags could not be read (or are not
    /// readable for this kind of key), as opposed to `Some(empty)`.
    #[serde(default, deserialize_with = "tags_from_map_or_text")]
    pub tags: Option<BTreeMap<String, String>>,
    pub rotation_enabled: Option<bool>,
    pub rotation_period_days: Option<i64>,
    pub next_rotation_date: Option<DateTime<Utc>>,
    pub on_demand_rotation_start_date: Option<DateTime<Utc>>,
    pub last_rotation_date: Option<DateTime<Utc>>,
    pub rotation_count: Option<i64>,
    pub eligibility: Option<Eligibility>,
    pub eligibility_reason: Option<String>,
    /// `Operation: Code: message` for each call about this key that failed.
    pub status_error: Option<String>,
    /// The key policy document (GetKeyPolicy, policy name `default`).
    pub key_policy: Option<String>,
}

/// Tags come back from a frame as JSON text, and from `keys.json` as an object.
fn tags_from_map_or_text<'de, D>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        Map(BTreeMap<String, String>),
        Text(String),
    }
    match Option::<Tags>::deserialize(d)? {
        None => Ok(None),
        Some(Tags::Map(m)) => Ok(Some(m)),
        Some(Tags::Text(t)) => serde_json::from_str(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// One completed rotation from ListKeyRotations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationRecord {
    pub account_id: Option<String>,
    pub region: String,
    pub key_id: String,
    pub key_arn: String,
    pub rotation_date: Option<DateTime<Utc>>,
    pub rotation_type: Option<String>,
}

/// How one region went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionCoverage {
    /// The account, in a run over several accounts (`--accounts`, `--ou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub region: String,
    pub status: RegionStatus,
    pub keys_listed: usize,
    pub keys_described: usize,
    pub error: Option<ErrorInfo>,
}

/// How much of a region was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionStatus {
    Ok,
    /// Some keys, or the aliases, could not be read.
    Partial,
    Failed,
    /// An opt-in region from the built-in list that refused our credentials:
    /// the account most likely never enabled it.
    NotEnabled,
}

impl RegionStatus {
    /// Whether the region counts as fully read.
    pub fn is_complete(self) -> bool {
        matches!(self, RegionStatus::Ok | RegionStatus::NotEnabled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RegionStatus::Ok => "ok",
            RegionStatus::Partial => "partial",
            RegionStatus::Failed => "failed",
            RegionStatus::NotEnabled => "not_enabled",
        }
    }
}

/// How one account of a run over several went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Every region asked was read.
    Read,
    /// Some region or key could not be read.
    Partial,
    /// Nothing could be read: the role was refused, or the account's regions
    /// could not be reached. No key of it is in the bundle.
    NotRead,
    /// Never tried: the organization lists it SUSPENDED, PENDING_CLOSURE...
    Skipped,
}

impl AccountStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountStatus::Read => "read",
            AccountStatus::Partial => "partial",
            AccountStatus::NotRead => "not_read",
            AccountStatus::Skipped => "skipped",
        }
    }

    /// Whether what was asked of the account was all read. A skipped
    /// account was not asked: it is listed, and it is no gap.
    pub fn is_complete(&self) -> bool {
        matches!(self, AccountStatus::Read | AccountStatus::Skipped)
    }
}

/// One account of a run over several accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCoverage {
    pub account_id: String,
    pub name: Option<String>,
    pub ou_path: Option<String>,
    /// Its state in the organization, when Organizations listed it.
    pub org_state: Option<String>,
    /// The role assumed to read it; `None`: the caller's own account, read
    /// with the caller's credentials.
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    pub status: AccountStatus,
    /// The regions asked in it.
    pub regions: Vec<String>,
    pub keys: usize,
    /// Why it was not (fully) read: the AssumeRole refusal, or the first
    /// region's failure.
    pub error: Option<ErrorInfo>,
    /// What the person running kmsrot can do about it, or why it was skipped.
    pub note: Option<String>,
}

/// A call about one key that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyError {
    /// The account, in a run over several accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub region: String,
    pub key_arn: String,
    pub operation: String,
    pub error: ErrorInfo,
}

/// What the inventory read and what it could not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryCoverage {
    pub complete: bool,
    pub region_plan: RegionPlan,
    pub regions: Vec<RegionCoverage>,
    pub key_errors: Vec<KeyError>,
    /// Requests sent per operation (first attempts; SDK retries not counted).
    pub api_calls: BTreeMap<String, u64>,
    /// Each account of a run over several (`--accounts`, `--ou`): how it was
    /// reached and how much of it was read. Empty for the caller's account
    /// alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountCoverage>,
}

impl InventoryCoverage {
    /// One line per gap, for stderr.
    pub fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.accounts {
            if a.status == AccountStatus::NotRead {
                let name = a
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                let why = a
                    .error
                    .as_ref()
                    .map_or_else(|| "no answer".to_string(), ErrorInfo::to_string);
                let role = a
                    .role_arn
                    .as_deref()
                    .map(|r| format!(" assuming {r}"))
                    .unwrap_or_default();
                out.push(format!(
                    "account {}{name} not read{role}: {why}; none of its keys is in this bundle",
                    a.account_id
                ));
            }
        }
        for r in &self.regions {
            let place = match &r.account_id {
                Some(a) => format!("account {a} region {}", r.region),
                None => format!("region {}", r.region),
            };
            match (r.status, &r.error) {
                (RegionStatus::Failed, Some(e)) => out.push(format!("{place} not read: {e}")),
                (RegionStatus::Partial, Some(e)) => out.push(format!("{place} partly read: {e}")),
                _ => {}
            }
        }
        for k in &self.key_errors {
            let place = match &k.account_id {
                Some(a) => format!("{a} {}", k.region),
                None => k.region.clone(),
            };
            out.push(format!(
                "key {} ({place}): {} failed: {}",
                k.key_arn, k.operation, k.error
            ));
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub keys: Vec<KeyRecord>,
    pub rotations: Vec<RotationRecord>,
    pub coverage: InventoryCoverage,
}

/// Counts requests per operation across all tasks.
#[derive(Default)]
struct CallCounter(Mutex<BTreeMap<&'static str, u64>>);

impl CallCounter {
    fn bump(&self, op: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(op).or_default() += 1;
        }
    }
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .unwrap_or_default()
    }
}

/// Tuning for [`read`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Regions read at once.
    pub regions: usize,
    /// Keys read at once within one region. KMS quotas are per account and
    /// region, so this bound is what keeps a large region under them.
    pub keys_per_region: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            regions: 8,
            keys_per_region: 16,
        }
    }
}

/// `kmsrot inventory`: reads the run's accounts and regions and writes
/// `keys.*`, `rotations.*` and `coverage.json` into `out`.
pub async fn read_into(ctx: &Ctx, out: &Path, limits: Limits) -> Result<Inventory> {
    let inv = read_run(ctx, limits, None).await?;
    write_frame(out, &KEYS, &mut inv.keys_frame()?)?;
    write_frame(out, &ROTATIONS, &mut inv.rotations_frame()?)?;
    let coverage = serde_json::json!({
        "complete": inv.coverage.complete,
        "inventory": &inv.coverage,
    });
    write_json_file(&out.join("coverage.json"), &coverage)?;
    Ok(inv)
}

/// Reads every key the run asks for: the caller's account in its regions,
/// or, with `--accounts`/`--ou`, every account of the selection. With a
/// recorder, every answer is also kept for the bundle's `raw/` folder.
pub async fn read_run(
    ctx: &Ctx,
    limits: Limits,
    recorder: Option<&aws::raw::RawRecorder>,
) -> Result<Inventory> {
    if ctx.is_multi_account() {
        return read_accounts(ctx, limits, recorder).await;
    }
    let config = ctx.aws().await?;
    let plan = ctx.region_plan().await?.clone();
    let calls = Arc::new(CallCounter::default());
    let bar = ctx.progress.bar("keys", 0);
    let work = Work {
        limits,
        budget: ctx.budget(),
        calls: &calls,
        bar: &bar,
    };
    let results = read_regions(&work, &plan, |region| match recorder {
        Some(r) => aws::kms_recorded(config, region, r),
        None => aws::kms(config, region),
    })
    .await;
    bar.finish_and_clear();
    let inv = assemble(plan, results, Vec::new(), calls.snapshot());
    // Not one region answered, each for want of a network rather than a
    // refusal by AWS: a table of zeros would read as "nothing there".
    if let Some(e) = unreachable_everywhere(config, &inv.coverage.regions) {
        return Err(crate::error::Error::from(e).into());
    }
    Ok(inv)
}

/// What every task of one run shares.
struct Work<'a> {
    limits: Limits,
    budget: &'a Budget,
    calls: &'a Arc<CallCounter>,
    bar: &'a Bar,
}

/// Reads the regions of one account, `limits.regions` at a time, each with
/// the client `client` makes for it. Failures in regions the built-in list
/// guessed (opt-in, never enabled) are marked as such.
async fn read_regions(
    work: &Work<'_>,
    plan: &RegionPlan,
    client: impl Fn(&str) -> aws_sdk_kms::Client,
) -> Vec<RegionResult> {
    let mut results: Vec<RegionResult> = stream::iter(plan.regions.clone())
        .map(|region| {
            let client = client(&region);
            async move { read_region(client, region, work).await }
        })
        .buffer_unordered(work.limits.regions.max(1))
        .collect()
        .await;
    for r in &mut results {
        if r.coverage.status == RegionStatus::Failed
            && plan.is_unconfirmed_opt_in(&r.coverage.region)
        {
            // The built-in list includes opt-in regions the account may never
            // have enabled; there, AWS refuses the credentials outright.
            if r.coverage.error.as_ref().is_some_and(|e| {
                matches!(
                    e.code.as_str(),
                    "UnrecognizedClientException" | "InvalidClientTokenId"
                )
            }) {
                r.coverage.status = RegionStatus::NotEnabled;
            }
        }
    }
    results
}

/// One inventory from the regions (of every account) read.
fn assemble(
    plan: RegionPlan,
    results: Vec<RegionResult>,
    accounts: Vec<AccountCoverage>,
    api_calls: BTreeMap<String, u64>,
) -> Inventory {
    let mut keys = Vec::new();
    let mut rotations = Vec::new();
    let mut regions = Vec::new();
    let mut key_errors = Vec::new();
    for r in results {
        keys.extend(r.keys);
        rotations.extend(r.rotations);
        regions.push(r.coverage);
        key_errors.extend(r.key_errors);
    }
    // Stable output order whatever order the tasks finished in.
    regions.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    keys.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.arn).cmp(&(&b.account_id, &b.region, &b.arn))
    });
    rotations.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.key_arn, a.rotation_date).cmp(&(
            &b.account_id,
            &b.region,
            &b.key_arn,
            b.rotation_date,
        ))
    });
    key_errors.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.key_arn, &a.operation).cmp(&(
            &b.account_id,
            &b.region,
            &b.key_arn,
            &b.operation,
        ))
    });
    let complete = key_errors.is_empty()
        && regions.iter().all(|r| r.status.is_complete())
        && accounts.iter().all(|a| a.status.is_complete());
    Inventory {
        keys,
        rotations,
        coverage: InventoryCoverage {
            complete,
            region_plan: plan,
            regions,
            key_errors,
            api_calls,
            accounts,
        },
    }
}

/// The accounts of `--accounts`/`--ou`, read concurrently under the run's
/// one budget: each account's role is assumed once (before any of its
/// regions), its regions read as the caller's would be, and an account that
/// cannot be reached is recorded, never dropped.
async fn read_accounts(
    ctx: &Ctx,
    limits: Limits,
    recorder: Option<&aws::raw::RawRecorder>,
) -> Result<Inventory> {
    let plan = ctx.account_plan().await?.clone();
    let base = ctx.region_plan().await?.clone();
    let want_all = ctx
        .aws_options()
        .regions
        .iter()
        .flat_map(|r| r.split(','))
        .any(|r| r.trim() == "all");
    let to_read: Vec<&AccountTarget> = plan.to_read().collect();
    let accounts_bar = ctx.progress.bar("accounts", to_read.len() as u64);
    let keys_bar = ctx.progress.bar("keys", 0);
    let calls = Arc::new(CallCounter::default());
    let work = Work {
        limits,
        budget: ctx.budget(),
        calls: &calls,
        bar: &keys_bar,
    };
    let reading = stream::iter(to_read)
        .map(|t| {
            let (work, base, accounts_bar) = (&work, &base, &accounts_bar);
            async move {
                let r = read_account(ctx, t, base, want_all, work, recorder).await;
                accounts_bar.inc(1);
                r
            }
        })
        // Every account started needs a slot to move; more would only wait.
        .buffer_unordered(ctx.budget().size())
        .collect::<Vec<_>>();
    let (done, paths) = tokio::join!(reading, ctx.org_ou_paths());
    keys_bar.finish_and_clear();
    accounts_bar.finish_and_clear();
    let paths = match paths {
        Ok(p) => p,
        Err(e) => {
            ctx.progress.note(&format!(
                "warning: OU paths not known (Organizations ListRoots / ListOrganizationalUnitsForParent: {e}); the accounts were read all the same"
            ));
            BTreeMap::new()
        }
    };

    let mut results = Vec::new();
    let mut accounts = Vec::new();
    for (mut account, regions) in done {
        if account.ou_path.is_none() {
            account.ou_path = paths.get(&account.account_id).cloned();
        }
        accounts.push(account);
        results.extend(regions);
    }
    for t in plan.targets.iter().filter(|t| t.skip.is_some()) {
        accounts.push(AccountCoverage {
            account_id: t.account_id.clone(),
            name: t.name.clone(),
            ou_path: t
                .ou_path
                .clone()
                .or_else(|| paths.get(&t.account_id).cloned()),
            org_state: t.org_state.clone(),
            role_arn: None,
            session_name: None,
            status: AccountStatus::Skipped,
            regions: Vec::new(),
            keys: 0,
            error: None,
            note: t.skip.clone(),
        });
    }
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut calls = calls.snapshot();
    let assumed = ctx.assume_role_calls();
    if assumed > 0 {
        calls.insert("sts:AssumeRole".into(), assumed);
    }
    Ok(assemble(base, results, accounts, calls))
}

/// One account: its role assumed (the caller's account is read with the
/// caller's own credentials), its regions resolved (`--region all` asks
/// each account which regions it has enabled), then read.
async fn read_account(
    ctx: &Ctx,
    t: &AccountTarget,
    base: &RegionPlan,
    want_all: bool,
    work: &Work<'_>,
    recorder: Option<&aws::raw::RawRecorder>,
) -> (AccountCoverage, Vec<RegionResult>) {
    let mut cov = AccountCoverage {
        account_id: t.account_id.clone(),
        name: t.name.clone(),
        ou_path: t.ou_path.clone(),
        org_state: t.org_state.clone(),
        role_arn: t.role_arn.clone(),
        session_name: t
            .role_arn
            .as_ref()
            .map(|_| ctx.aws_options().accounts.session_name.clone()),
        status: AccountStatus::Read,
        regions: Vec::new(),
        keys: 0,
        error: None,
        note: None,
    };
    let access = match ctx.account_access(&t.account_id).await {
        Ok(a) => a,
        Err(e) => {
            cov.status = AccountStatus::NotRead;
            cov.note = Some(crate::aws::assume::refusal_hint(
                &e,
                t.role_arn.as_deref().unwrap_or("the role"),
            ));
            cov.error = Some(e);
            return (cov, Vec::new());
        }
    };
    let plan = if want_all && !t.is_caller {
        let _slot = work.budget.slot().await;
        let all = AwsOptions {
            regions: vec!["all".into()],
            ..ctx.aws_options().clone()
        };
        match crate::aws::regions::resolve(&access.config, &all).await {
            Ok(p) => p,
            Err(_) => base.clone(),
        }
    } else {
        base.clone()
    };
    cov.regions = plan.regions.clone();
    let recorder = recorder.map(|r| r.for_account(&t.account_id));
    let meter = ctx.meter();
    let mut results = read_regions(work, &plan, |region| {
        aws::kms_for_account(
            &access.config,
            region,
            &t.account_id,
            recorder.as_ref(),
            Some(meter),
        )
    })
    .await;
    for r in &mut results {
        r.coverage.account_id = Some(t.account_id.clone());
        for k in &mut r.key_errors {
            k.account_id = Some(t.account_id.clone());
        }
    }
    cov.keys = results.iter().map(|r| r.keys.len()).sum();
    let failed: Vec<&RegionCoverage> = results
        .iter()
        .map(|r| &r.coverage)
        .filter(|c| !c.status.is_complete())
        .collect();
    let key_errors = results.iter().any(|r| !r.key_errors.is_empty());
    if !failed.is_empty() || key_errors {
        let none_read = !results.is_empty()
            && results
                .iter()
                .all(|r| r.coverage.status == RegionStatus::Failed);
        cov.status = if none_read {
            AccountStatus::NotRead
        } else {
            AccountStatus::Partial
        };
        cov.error = failed.first().and_then(|c| c.error.clone()).or_else(|| {
            results
                .iter()
                .flat_map(|r| r.key_errors.first())
                .next()
                .map(|k| k.error.clone())
        });
    }
    (cov, results)
}

/// The error for a run where every region failed to answer at all.
fn unreachable_everywhere(
    config: &aws_config::SdkConfig,
    regions: &[RegionCoverage],
) -> Option<ContactError> {
    let all_unreachable = regions.iter().all(|r| {
        r.status == RegionStatus::Failed && r.error.as_ref().is_some_and(ErrorInfo::is_unreachable)
    });
    let first = regions.first()?.error.as_ref()?;
    if !all_unreachable {
        return None;
    }
    let network = first.network?;
    let endpoint = match config.endpoint_url() {
        Some(url) => url.to_string(),
        None => format!(
            "the KMS endpoint of {}",
            regions
                .iter()
                .map(|r| r.region.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(ContactError::Unreachable {
        endpoint,
        network,
        detail: matches!(network, Network::Tls | Network::Connection)
            .then(|| first.message.clone()),
    })
}

struct RegionResult {
    keys: Vec<KeyRecord>,
    rotations: Vec<RotationRecord>,
    coverage: RegionCoverage,
    key_errors: Vec<KeyError>,
}

async fn read_region(client: aws_sdk_kms::Client, region: String, work: &Work<'_>) -> RegionResult {
    let (budget, calls, bar) = (work.budget, work.calls, work.bar);
    let concurrency = work.limits.keys_per_region;
    let failed = |error: ErrorInfo, listed: usize| RegionResult {
        keys: Vec::new(),
        rotations: Vec::new(),
        coverage: RegionCoverage {
            account_id: None,
            region: region.clone(),
            status: RegionStatus::Failed,
            keys_listed: listed,
            keys_described: 0,
            error: Some(error),
        },
        key_errors: Vec::new(),
    };

    // ListKeys (Limit 1000 is the API maximum; the paginator follows
    // Marker) and ListAliases for the whole region in one pass rather than
    // one per key, side by side: neither needs the other's answer.
    let list_keys = async {
        let _slot = budget.slot().await;
        let mut listed: Vec<(String, String)> = Vec::new();
        let pages = client.list_keys().limit(1000).into_paginator().send();
        let r = each_page(pages, "ListKeys", calls, |page| {
            for k in page.keys() {
                if let (Some(id), Some(arn)) = (k.key_id(), k.key_arn()) {
                    listed.push((id.to_string(), arn.to_string()));
                }
            }
        })
        .await;
        (listed, r)
    };
    let list_aliases = async {
        let _slot = budget.slot().await;
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        let pages = client.list_aliases().limit(100).into_paginator().send();
        let r = each_page(pages, "ListAliases", calls, |page| {
            for a in page.aliases() {
                if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                    aliases
                        .entry(target.to_string())
                        .or_default()
                        .push(name.to_string());
                }
            }
        })
        .await;
        (aliases, r.err())
    };
    let ((listed, listing), (mut aliases, alias_error)) = tokio::join!(list_keys, list_aliases);
    if let Err(e) = listing {
        return failed(e, listed.len());
    }
    bar.inc_length(listed.len() as u64);
    for names in aliases.values_mut() {
        names.sort();
    }

    let client = &client;
    let aliases = &aliases;
    let calls_ref = calls;
    let region_ref = &region;
    let alias_known = alias_error.is_none();
    let per_key: Vec<KeyResult> = stream::iter(listed.iter().cloned())
        .map(|(id, arn)| {
            let key_aliases = aliases.get(&id).cloned().unwrap_or_default();
            let bar = bar.clone();
            async move {
                // One slot per key: its calls go one after another.
                let _slot = budget.slot().await;
                let r = read_key(
                    client,
                    region_ref,
                    &id,
                    &arn,
                    key_aliases,
                    alias_known,
                    calls_ref,
                )
                .await;
                bar.inc(1);
                r
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut keys = Vec::with_capacity(per_key.len());
    let mut rotations = Vec::new();
    let mut key_errors = Vec::new();
    for r in per_key {
        keys.push(r.key);
        rotations.extend(r.rotations);
        key_errors.extend(r.errors);
    }
    let keys_described = keys.iter().filter(|k| k.key_state.is_some()).count();
    let status = if alias_error.is_some() || !key_errors.is_empty() {
        RegionStatus::Partial
    } else {
        RegionStatus::Ok
    };
    if let Some(e) = &alias_error {
        key_errors.push(KeyError {
            account_id: None,
            region: region.clone(),
            key_arn: "*".into(),
            operation: "ListAliases".into(),
            error: e.clone(),
        });
    }
    let error = alias_error.or_else(|| key_errors.first().map(|k| k.error.clone()));
    RegionResult {
        keys,
        rotations,
        coverage: RegionCoverage {
            account_id: None,
            region: region.clone(),
            status,
            keys_listed: listed.len(),
            keys_described,
            error,
        },
        key_errors,
    }
}

/// Follows a paginated call to its end, counting each request under `op`
/// and handing every page to `each`. The first failed page stops it; what a
/// partial listing means is the caller's decision.
async fn each_page<T, E, R>(
    mut pages: PaginationStream<Result<T, SdkError<E, R>>>,
    op: &'static str,
    calls: &CallCounter,
    mut each: impl FnMut(T),
) -> Result<(), ErrorInfo>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    while let Some(page) = pages.next().await {
        calls.bump(op);
        each(page.map_err(|e| ErrorInfo::from_sdk(&e))?);
    }
    Ok(())
}

struct KeyResult {
    key: KeyRecord,
    rotations: Vec<RotationRecord>,
    errors: Vec<KeyError>,
}

fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
}

async fn read_key(
    client: &aws_sdk_kms::Client,
    region: &str,
    key_id: &str,
    arn: &str,
    aliases: Vec<String>,
    aliases_known: bool,
    calls: &CallCounter,
) -> KeyResult {
    let mut key = KeyRecord {
        account_id: aws::arn_account(arn).map(str::to_string),
        region: region.to_string(),
        key_id: key_id.to_string(),
        arn: arn.to_string(),
        aliases,
        ..KeyRecord::default()
    };
    let mut errors: Vec<KeyError> = Vec::new();
    let mut fail = |key: &mut KeyRecord, op: &str, e: ErrorInfo| {
        let line = format!("{op}: {e}");
        key.status_error = Some(match key.status_error.take() {
            Some(prev) => format!("{prev}; {line}"),
            None => line,
        });
        errors.push(KeyError {
            account_id: None,
            region: region.to_string(),
            key_arn: arn.to_string(),
            operation: op.to_string(),
            error: e,
        });
    };

    calls.bump("DescribeKey");
    let meta = match client.describe_key().key_id(arn).send().await {
        Ok(out) => match out.key_metadata {
            Some(m) => m,
            None => {
                fail(
                    &mut key,
                    "DescribeKey",
                    ErrorInfo::new("EmptyResponse", "no KeyMetadata in the answer"),
                );
                key.eligibility_reason =
                    Some("Not determined: DescribeKey gave no metadata.".into());
                return finish(key, Vec::new(), errors);
            }
        },
        Err(e) => {
            let info = ErrorInfo::from_sdk(&e);
            key.eligibility_reason = Some(format!(
                "Not determined: DescribeKey failed ({}); grant kms:DescribeKey to the auditing role in the key policy.",
                info.code
            ));
            fail(&mut key, "DescribeKey", info);
            return finish(key, Vec::new(), errors);
        }
    };

    key.account_id = meta.aws_account_id().map(str::to_string).or(key.account_id);
    key.description = meta.description().map(str::to_string);
    key.key_manager = meta.key_manager().map(|v| v.as_str().to_string());
    key.key_spec = meta.key_spec().map(|v| v.as_str().to_string());
    key.key_usage = meta.key_usage().map(|v| v.as_str().to_string());
    key.origin = meta.origin().map(|v| v.as_str().to_string());
    key.key_state = meta.key_state().map(|v| v.as_str().to_string());
    key.creation_date = to_chrono(meta.creation_date());
    key.deletion_date = to_chrono(meta.deletion_date());
    key.multi_region = meta.multi_region();
    key.custom_key_store_id = meta.custom_key_store_id().map(str::to_string);
    if let Some(mr) = meta.multi_region_configuration() {
        key.multi_region_role = mr.multi_region_key_type().map(|t| t.as_str().to_string());
        key.primary_key_arn = mr.primary_key().and_then(|p| p.arn()).map(str::to_string);
        // A primary names itself as PrimaryKey. Trust that over the type
        // field, which moto 5.2 flips to REPLICA once a replica is described.
        if key.primary_key_arn.as_deref() == Some(arn) {
            key.multi_region_role = Some("PRIMARY".into());
        }
    }

    let (elig, reason) = eligibility::decide(&eligibility::KeyFacts {
        arn,
        key_manager: key.key_manager.as_deref(),
        key_spec: key.key_spec.as_deref(),
        key_usage: key.key_usage.as_deref(),
        origin: key.origin.as_deref(),
        key_state: key.key_state.as_deref(),
        custom_key_store_id: key.custom_key_store_id.as_deref(),
        multi_region_role: key.multi_region_role.as_deref(),
        primary_key_arn: key.primary_key_arn.as_deref(),
        deletion_date: key.deletion_date.map(rfc3339),
        aliases: &key.aliases,
    });
    key.eligibility = Some(elig);
    key.eligibility_reason = Some(if aliases_known {
        reason
    } else {
        format!("{reason} (aliases could not be listed in this region)")
    });

    // Tags: customer-managed keys only; AWS-managed keys carry none.
    if elig != Eligibility::AwsManaged {
        let mut tags = BTreeMap::new();
        let pages = client
            .list_resource_tags()
            .key_id(arn)
            .limit(50)
            .into_paginator()
            .send();
        let read = each_page(pages, "ListResourceTags", calls, |page| {
            for t in page.tags() {
                tags.insert(t.tag_key().to_string(), t.tag_value().to_string());
            }
        })
        .await;
        match read {
            Ok(()) => key.tags = Some(tags),
            Err(e) => fail(&mut key, "ListResourceTags", e),
        }
    }

    // The key policy is the layer IAM cannot override: a Deny there blocks
    // rotation changes whatever the caller's IAM policy says.
    if elig != Eligibility::AwsManaged {
        calls.bump("GetKeyPolicy");
        match client
            .get_key_policy()
            .key_id(arn)
            .policy_name("default")
            .send()
            .await
        {
            Ok(out) => key.key_policy = out.policy().map(str::to_string),
            Err(e) => fail(&mut key, "GetKeyPolicy", ErrorInfo::from_sdk(&e)),
        }
    }

    if elig.reads_rotation_status() {
        calls.bump("GetKeyRotationStatus");
        match client.get_key_rotation_status().key_id(arn).send().await {
            Ok(out) => {
                key.rotation_enabled = Some(out.key_rotation_enabled());
                key.rotation_period_days = out.rotation_period_in_days().map(i64::from);
                key.next_rotation_date = to_chrono(out.next_rotation_date());
                key.on_demand_rotation_start_date = to_chrono(out.on_demand_rotation_start_date());
            }
            Err(e) => fail(&mut key, "GetKeyRotationStatus", ErrorInfo::from_sdk(&e)),
        }
    }

    let mut rotations = Vec::new();
    if elig.reads_rotation_history() {
        let pages = client
            .list_key_rotations()
            .key_id(arn)
            .limit(1000)
            .into_paginator()
            .send();
        let (account_id, key_id) = (key.account_id.clone(), key.key_id.clone());
        let read = each_page(pages, "ListKeyRotations", calls, |page| {
            for r in page.rotations() {
                rotations.push(RotationRecord {
                    account_id: account_id.clone(),
                    region: region.to_string(),
                    key_id: key_id.clone(),
                    key_arn: arn.to_string(),
                    rotation_date: to_chrono(r.rotation_date()),
                    rotation_type: r.rotation_type().map(|t| t.as_str().to_string()),
                });
            }
        })
        .await;
        match read {
            Ok(()) => {
                key.rotation_count = Some(rotations.len() as i64);
                key.last_rotation_date = rotations.iter().filter_map(|r| r.rotation_date).max();
            }
            Err(e) => {
                fail(&mut key, "ListKeyRotations", e);
                // A partial history must not pass for a whole one.
                rotations.clear();
            }
        }
    }
    finish(key, rotations, errors)
}

/// Reads one key, named by id, ARN or alias, as the inventory would.
pub async fn read_one(
    client: &aws_sdk_kms::Client,
    region: &str,
    key: &str,
) -> Result<(KeyRecord, Vec<RotationRecord>, Vec<KeyError>), ErrorInfo> {
    let described = client
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| ErrorInfo::from_sdk(&e))?;
    let meta = described
        .key_metadata()
        .ok_or_else(|| ErrorInfo::new("EmptyResponse", "no KeyMetadata in the answer"))?;
    let id = meta.key_id().to_string();
    let arn = meta.arn().unwrap_or(key).to_string();
    let calls = CallCounter::default();
    let mut aliases = Vec::new();
    let pages = client.list_aliases().key_id(&id).into_paginator().send();
    let aliases_known = each_page(pages, "ListAliases", &calls, |p| {
        aliases.extend(
            p.aliases()
                .iter()
                .filter_map(|a| a.alias_name().map(str::to_string)),
        )
    })
    .await
    .is_ok();
    aliases.sort();
    let r = read_key(client, region, &id, &arn, aliases, aliases_known, &calls).await;
    Ok((r.key, r.rotations, r.errors))
}

fn finish(key: KeyRecord, rotations: Vec<RotationRecord>, errors: Vec<KeyError>) -> KeyResult {
    KeyResult {
        key,
        rotations,
        errors,
    }
}

impl Inventory {
    pub fn keys_frame(&self) -> Result<polars::prelude::DataFrame> {
        keys_frame(&self.keys)
    }

    pub fn rotations_frame(&self) -> Result<polars::prelude::DataFrame> {
        rotations_frame(&self.rotations)
    }
}

/// The `rotations` frame of these records.
pub fn rotations_frame(rotations: &[RotationRecord]) -> Result<polars::prelude::DataFrame> {
    let mut b = FrameBuilder::new(ROTATIONS);
    for r in rotations {
        b.push(vec![
            (col::ACCOUNT_ID, Cell::opt_str(r.account_id.clone())),
            (col::REGION, Cell::str(&r.region)),
            (col::KEY_ID, Cell::str(&r.key_id)),
            (col::KEY_ARN, Cell::str(&r.key_arn)),
            (col::ROTATION_DATE, Cell::Time(r.rotation_date)),
            (col::ROTATION_TYPE, Cell::opt_str(r.rotation_type.clone())),
        ])?;
    }
    b.finish()
}

pub fn keys_frame(keys: &[KeyRecord]) -> Result<polars::prelude::DataFrame> {
    let mut b = FrameBuilder::new(KEYS);
    for k in keys {
        let tags = match &k.tags {
            Some(t) => Some(serde_json::to_string(t)?),
            None => None,
        };
        b.push(vec![
            (col::ACCOUNT_ID, Cell::opt_str(k.account_id.clone())),
            (col::REGION, Cell::str(&k.region)),
            (col::KEY_ID, Cell::str(&k.key_id)),
            (col::ARN, Cell::str(&k.arn)),
            (col::ALIASES, Cell::StrList(k.aliases.clone())),
            (col::DESCRIPTION, Cell::opt_str(k.description.clone())),
            (col::KEY_MANAGER, Cell::opt_str(k.key_manager.clone())),
            (col::KEY_SPEC, Cell::opt_str(k.key_spec.clone())),
            (col::KEY_USAGE, Cell::opt_str(k.key_usage.clone())),
            (col::ORIGIN, Cell::opt_str(k.origin.clone())),
            (col::KEY_STATE, Cell::opt_str(k.key_state.clone())),
            (col::CREATION_DATE, Cell::Time(k.creation_date)),
            (col::DELETION_DATE, Cell::Time(k.deletion_date)),
            (col::MULTI_REGION, Cell::Bool(k.multi_region)),
            (
                col::MULTI_REGION_ROLE,
                Cell::opt_str(k.multi_region_role.clone()),
            ),
            (
                col::PRIMARY_KEY_ARN,
                Cell::opt_str(k.primary_key_arn.clone()),
            ),
            (
                col::CUSTOM_KEY_STORE_ID,
                Cell::opt_str(k.custom_key_store_id.clone()),
            ),
            (col::TAGS, Cell::Json(tags)),
            (col::ROTATION_ENABLED, Cell::Bool(k.rotation_enabled)),
            (col::ROTATION_PERIOD_DAYS, Cell::Int(k.rotation_period_days)),
            (col::NEXT_ROTATION_DATE, Cell::Time(k.next_rotation_date)),
            (
                col::ON_DEMAND_ROTATION_START_DATE,
                Cell::Time(k.on_demand_rotation_start_date),
            ),
            (col::LAST_ROTATION_DATE, Cell::Time(k.last_rotation_date)),
            (col::ROTATION_COUNT, Cell::Int(k.rotation_count)),
            (
                col::ELIGIBILITY,
                Cell::opt_str(k.eligibility.map(|e| e.as_str())),
            ),
            (
                col::ELIGIBILITY_REASON,
                Cell::opt_str(k.eligibility_reason.clone()),
            ),
            (col::STATUS_ERROR, Cell::opt_str(k.status_error.clone())),
            (col::KEY_POLICY, Cell::Json(k.key_policy.clone())),
        ])?;
    }
    b.finish()
}

/// Per-region counts for the stdout summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionSummary {
    pub region: String,
    #[serde(flatten)]
    pub counts: KeyCounts,
}

/// What a summary row counts of its keys, the same per region and per account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCounts {
    pub keys: usize,
    pub customer_managed: usize,
    pub eligible: usize,
    /// Among eligible keys: rotation on, off; `unknown` also counts keys whose
    /// status or metadata could not be read.
    pub rotation_on: usize,
    pub rotation_off: usize,
    pub unknown: usize,
}

impl KeyCounts {
    fn add(&mut self, k: &KeyRecord) {
        self.keys += 1;
        if k.key_manager.as_deref() == Some("CUSTOMER")
            && k.eligibility != Some(Eligibility::AwsManaged)
        {
            self.customer_managed += 1;
        }
        match k.eligibility {
            Some(Eligibility::Eligible) => {
                self.eligible += 1;
                match k.rotation_enabled {
                    Some(true) => self.rotation_on += 1,
                    Some(false) => self.rotation_off += 1,
                    None => self.unknown += 1,
                }
            }
            // A key that could not be described may be eligible with rotation
            // off; it is counted as unknown, never as fine.
            None => self.unknown += 1,
            Some(_) => {}
        }
    }

    /// The six counts in the summary tables' column order.
    pub fn cells(&self) -> [usize; 6] {
        [
            self.keys,
            self.customer_managed,
            self.eligible,
            self.rotation_on,
            self.rotation_off,
            self.unknown,
        ]
    }
}

pub fn summarize(inv: &Inventory) -> Vec<RegionSummary> {
    let mut by_region: BTreeMap<&str, RegionSummary> = BTreeMap::new();
    for r in &inv.coverage.regions {
        by_region.insert(
            &r.region,
            RegionSummary {
                region: r.region.clone(),
                ..Default::default()
            },
        );
    }
    for k in &inv.keys {
        let s = by_region.entry(&k.region).or_insert_with(|| RegionSummary {
            region: k.region.clone(),
            ..Default::default()
        });
        s.counts.add(k);
    }
    by_region.into_values().collect()
}

/// The line a run over several accounts ends with on stderr: accounts by
/// outcome, requests sent, AssumeRole calls, requests in flight on average.
pub fn fan_out_note(inv: &Inventory, meter: &aws::budget::MeterReading) -> Option<String> {
    let a = &inv.coverage.accounts;
    if a.is_empty() {
        return None;
    }
    let count = |s: AccountStatus| a.iter().filter(|x| x.status == s).count();
    Some(format!(
        "{} accounts: {} read, {} partly read, {} not read, {} skipped; {} requests ({} AssumeRole) in {:.1} s, {:.1} in flight on average (at most {})",
        a.len(),
        count(AccountStatus::Read),
        count(AccountStatus::Partial),
        count(AccountStatus::NotRead),
        count(AccountStatus::Skipped),
        meter.requests,
        inv.coverage.api_calls.get("sts:AssumeRole").copied().unwrap_or(0),
        meter.wall_seconds,
        meter.average_in_flight,
        meter.max_in_flight,
    ))
}

/// Per-account counts, for a run over several accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    pub account_id: String,
    pub name: String,
    /// `read`, `partial`, `not_read`, `skipped`.
    pub status: String,
    pub regions: usize,
    #[serde(flatten)]
    pub counts: KeyCounts,
}

/// One row per account of the run, in account order; empty for the caller's
/// account alone.
pub fn summarize_accounts(inv: &Inventory) -> Vec<AccountSummary> {
    let mut rows: BTreeMap<&str, AccountSummary> = inv
        .coverage
        .accounts
        .iter()
        .map(|a| {
            (
                a.account_id.as_str(),
                AccountSummary {
                    account_id: a.account_id.clone(),
                    name: a.name.clone().unwrap_or_default(),
                    status: a.status.as_str().to_string(),
                    regions: a.regions.len(),
                    ..Default::default()
                },
            )
        })
        .collect();
    for k in &inv.keys {
        let Some(s) = k.account_id.as_deref().and_then(|a| rows.get_mut(a)) else {
            continue;
        };
        s.counts.add(k);
    }
    rows.into_values().collect()
}

/// One row per account (status, keys, eligible, rotation on/off/unknown),
/// for stdout in a run over several accounts.
pub fn account_table(rows: &[AccountSummary]) -> Table {
    let mut table = Table::new([
        "account",
        "name",
        "status",
        "regions",
        "keys",
        "customer_managed",
        "eligible",
        "rotation_on",
        "rotation_off",
        "unknown",
    ]);
    for s in rows {
        // A key not read is never counted as fine: an account not read has
        // no numbers, not zeros.
        let n = |v: usize| {
            if s.status == "not_read" || s.status == "skipped" {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        let mut row = vec![
            s.account_id.clone(),
            s.name.clone(),
            s.status.clone(),
            s.regions.to_string(),
        ];
        row.extend(s.counts.cells().map(n));
        table.row(row);
    }
    table
}

/// One row per region for stdout: keys, customer-managed, eligible, and
/// among the eligible keys rotation on, off or unknown. In a run over
/// several accounts, one row per account instead.
pub fn summary_table(inv: &Inventory) -> Table {
    if !inv.coverage.accounts.is_empty() {
        return account_table(&summarize_accounts(inv));
    }
    let mut table = Table::new([
        "region",
        "keys",
        "customer_managed",
        "eligible",
        "rotation_on",
        "rotation_off",
        "unknown",
    ]);
    for s in &summarize(inv) {
        let mut row = vec![s.region.clone()];
        row.extend(s.counts.cells().map(|v| v.to_string()));
        table.row(row);
    }
    table
}
