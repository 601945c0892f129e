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
use aws_config::SdkConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::regions::RegionPlan;
use crate::aws::{self, ContactError, ErrorInfo, Network};
use crate::context::Ctx;
use crate::frames::time::rfc3339;
use crate::frames::{col, Cell, FrameBuilder, KEYS, ROTATIONS};
use crate::output::{write_frame, write_json_file, Table};
use crate::progress::{Bar, Progress};

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

/// A call about one key that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyError {
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
}

impl InventoryCoverage {
    /// One line per gap, for stderr.
    pub fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.regions {
            match (r.status, &r.error) {
                (RegionStatus::Failed, Some(e)) => {
                    out.push(format!("region {} not read: {e}", r.region))
                }
                (RegionStatus::Partial, Some(e)) => {
                    out.push(format!("region {} partly read: {e}", r.region))
                }
                _ => {}
            }
        }
        for k in &self.key_errors {
            out.push(format!(
                "key {} ({}): {} failed: {}",
                k.key_arn, k.region, k.operation, k.error
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

/// `kmsrot inventory`: reads the run's regions and writes `keys.*`,
/// `rotations.*` and `coverage.json` into `out`.
pub async fn read_into(ctx: &Ctx, out: &Path, limits: Limits) -> Result<Inventory> {
    let config = ctx.aws().await?;
    let plan = ctx.region_plan().await?.clone();
    let inv = read(config, plan, limits, &ctx.progress, None).await?;
    write_frame(out, &KEYS, &mut inv.keys_frame()?)?;
    write_frame(out, &ROTATIONS, &mut inv.rotations_frame()?)?;
    let coverage = serde_json::json!({
        "complete": inv.coverage.complete,
        "inventory": &inv.coverage,
    });
    write_json_file(&out.join("coverage.json"), &coverage)?;
    Ok(inv)
}

/// Reads every key of every planned region. With a recorder, every answer is
/// also kept for the bundle's `raw/` folder.
pub async fn read(
    config: &SdkConfig,
    plan: RegionPlan,
    limits: Limits,
    progress: &Progress,
    recorder: Option<&aws::raw::RawRecorder>,
) -> Result<Inventory> {
    let calls = Arc::new(CallCounter::default());
    let bar = progress.bar("keys", 0);
    let results: Vec<RegionResult> = stream::iter(plan.regions.clone())
        .map(|region| {
            let client = match recorder {
                Some(r) => aws::kms_recorded(config, &region, r),
                None => aws::kms(config, &region),
            };
            let calls = calls.clone();
            let bar = bar.clone();
            async move { read_region(client, region, limits.keys_per_region, calls, bar).await }
        })
        .buffer_unordered(limits.regions.max(1))
        .collect()
        .await;
    bar.finish_and_clear();

    let mut keys = Vec::new();
    let mut rotations = Vec::new();
    let mut regions = Vec::new();
    let mut key_errors = Vec::new();
    for mut r in results {
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
        keys.extend(r.keys);
        rotations.extend(r.rotations);
        regions.push(r.coverage);
        key_errors.extend(r.key_errors);
    }
    // Stable output order whatever order the tasks finished in.
    regions.sort_by(|a, b| a.region.cmp(&b.region));
    keys.sort_by(|a, b| (&a.region, &a.arn).cmp(&(&b.region, &b.arn)));
    rotations.sort_by(|a, b| {
        (&a.region, &a.key_arn, a.rotation_date).cmp(&(&b.region, &b.key_arn, b.rotation_date))
    });
    key_errors.sort_by(|a, b| {
        (&a.region, &a.key_arn, &a.operation).cmp(&(&b.region, &b.key_arn, &b.operation))
    });
    // Not one region answered, each for want of a network rather than a
    // refusal by AWS: a table of zeros would read as "nothing there".
    if let Some(e) = unreachable_everywhere(config, &regions) {
        return Err(crate::error::Error::from(e).into());
    }
    let complete = key_errors.is_empty() && regions.iter().all(|r| r.status.is_complete());
    Ok(Inventory {
        keys,
        rotations,
        coverage: InventoryCoverage {
            complete,
            region_plan: plan,
            regions,
            key_errors,
            api_calls: calls.snapshot(),
        },
    })
}

/// The error for a run where every region failed to answer at all.
fn unreachable_everywhere(config: &SdkConfig, regions: &[RegionCoverage]) -> Option<ContactError> {
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

async fn read_region(
    client: aws_sdk_kms::Client,
    region: String,
    concurrency: usize,
    calls: Arc<CallCounter>,
    bar: Bar,
) -> RegionResult {
    let failed = |error: ErrorInfo, listed: usize| RegionResult {
        keys: Vec::new(),
        rotations: Vec::new(),
        coverage: RegionCoverage {
            region: region.clone(),
            status: RegionStatus::Failed,
            keys_listed: listed,
            keys_described: 0,
            error: Some(error),
        },
        key_errors: Vec::new(),
    };

    // ListKeys: Limit 1000 is the API maximum; the paginator follows Marker.
    let mut listed: Vec<(String, String)> = Vec::new();
    let pages = client.list_keys().limit(1000).into_paginator().send();
    let listing = each_page(pages, "ListKeys", &calls, |page| {
        for k in page.keys() {
            if let (Some(id), Some(arn)) = (k.key_id(), k.key_arn()) {
                listed.push((id.to_string(), arn.to_string()));
            }
        }
    })
    .await;
    if let Err(e) = listing {
        return failed(e, listed.len());
    }
    bar.inc_length(listed.len() as u64);

    // Aliases for the whole region in one pass, rather than one ListAliases
    // per key.
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let pages = client.list_aliases().limit(100).into_paginator().send();
    let alias_error = each_page(pages, "ListAliases", &calls, |page| {
        for a in page.aliases() {
            if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                aliases
                    .entry(target.to_string())
                    .or_default()
                    .push(name.to_string());
            }
        }
    })
    .await
    .err();
    for names in aliases.values_mut() {
        names.sort();
    }

    let client = &client;
    let aliases = &aliases;
    let calls_ref = &calls;
    let region_ref = &region;
    let alias_known = alias_error.is_none();
    let per_key: Vec<KeyResult> = stream::iter(listed.iter().cloned())
        .map(|(id, arn)| {
            let key_aliases = aliases.get(&id).cloned().unwrap_or_default();
            let bar = bar.clone();
            async move {
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
    pub keys: usize,
    pub customer_managed: usize,
    pub eligible: usize,
    /// Among eligible keys: rotation on, off; `unknown` also counts keys whose
    /// status or metadata could not be read.
    pub rotation_on: usize,
    pub rotation_off: usize,
    pub unknown: usize,
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
        s.keys += 1;
        if k.key_manager.as_deref() == Some("CUSTOMER")
            && k.eligibility != Some(Eligibility::AwsManaged)
        {
            s.customer_managed += 1;
        }
        match k.eligibility {
            Some(Eligibility::Eligible) => {
                s.eligible += 1;
                match k.rotation_enabled {
                    Some(true) => s.rotation_on += 1,
                    Some(false) => s.rotation_off += 1,
                    None => s.unknown += 1,
                }
            }
            // A key that could not be described may be eligible with rotation
            // off; it is counted as unknown, never as fine.
            None => s.unknown += 1,
            Some(_) => {}
        }
    }
    by_region.into_values().collect()
}

/// One row per region for stdout: keys, customer-managed, eligible, and
/// among the eligible keys rotation on, off or unknown.
pub fn summary_table(inv: &Inventory) -> Table {
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
        table.row([
            s.region.clone(),
            s.keys.to_string(),
            s.customer_managed.to_string(),
            s.eligible.to_string(),
            s.rotation_on.to_string(),
            s.rotation_off.to_string(),
            s.unknown.to_string(),
        ]);
    }
    table
}
