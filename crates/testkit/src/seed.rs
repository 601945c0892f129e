//! Seeds an emulated KMS account through the Rust SDK: the kinds of keys a
//! real account holds, each labelled with the eligibility AWS would give it.
//!
//! Used by the integration tests (`support::seed`), `examples/seed.rs` (the
//! demo and the benchmark) and `examples/sample_account.rs`.
//!
//! moto 5.2 accepts some calls AWS rejects (EnableKeyRotation on asymmetric,
//! HMAC and imported keys; Origin AWS_CLOUDHSM without a key store). The demo
//! scenario never relies on those; tests that do say so.

use anyhow::{Context, Result};
use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType, Tag};
use aws_sdk_kms::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

/// A key the seeder created, and what kmsrot should say about it.
#[derive(Debug, Clone)]
pub struct SeededKey {
    pub region: String,
    pub key_id: String,
    pub arn: String,
    /// A short name for the role the key plays (`payments-db`).
    pub name: String,
    /// The eligibility AWS would give this key.
    pub expect: &'static str,
    /// Rotation as AWS would report it; `None` where kmsrot must not ask.
    pub rotation: Option<bool>,
}

/// What to create, before it is created.
#[derive(Debug, Clone)]
pub struct KeySpecification {
    pub name: String,
    pub spec: KeySpec,
    pub usage: KeyUsageType,
    pub origin: OriginType,
    pub multi_region: bool,
    pub tags: Vec<(String, String)>,
    pub alias: Option<String>,
}

impl KeySpecification {
    /// A customer-managed SYMMETRIC_DEFAULT key: the one kind AWS rotates.
    pub fn symmetric(name: &str) -> Self {
        KeySpecification {
            name: name.to_string(),
            spec: KeySpec::SymmetricDefault,
            usage: KeyUsageType::EncryptDecrypt,
            origin: OriginType::AwsKms,
            multi_region: false,
            tags: Vec::new(),
            alias: None,
        }
    }

    pub fn spec(mut self, spec: KeySpec, usage: KeyUsageType) -> Self {
        self.spec = spec;
        self.usage = usage;
        self
    }

    pub fn origin(mut self, origin: OriginType) -> Self {
        self.origin = origin;
        self
    }

    pub fn multi_region(mut self) -> Self {
        self.multi_region = true;
        self
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.to_string(), value.to_string()));
        self
    }

    pub fn alias(mut self, alias: &str) -> Self {
        self.alias = Some(alias.to_string());
        self
    }
}

/// Creates a key (with its alias and tags) and returns (key id, ARN).
pub async fn create(kms: &Client, k: &KeySpecification) -> Result<(String, String)> {
    let mut req = kms
        .create_key()
        .description(&k.name)
        .key_spec(k.spec.clone())
        .key_usage(k.usage.clone())
        .origin(k.origin.clone())
        .multi_region(k.multi_region);
    for (key, value) in &k.tags {
        req = req.tags(Tag::builder().tag_key(key).tag_value(value).build()?);
    }
    let out = req
        .send()
        .await
        .with_context(|| format!("CreateKey {}", k.name))?;
    let meta = out
        .key_metadata()
        .with_context(|| format!("CreateKey {}: no KeyMetadata", k.name))?;
    let id = meta.key_id().to_string();
    let arn = meta
        .arn()
        .with_context(|| format!("CreateKey {}: no Arn", k.name))?
        .to_string();
    if let Some(alias) = &k.alias {
        kms.create_alias()
            .alias_name(alias)
            .target_key_id(&id)
            .send()
            .await
            .with_context(|| format!("CreateAlias {alias}"))?;
    }
    Ok((id, arn))
}

pub async fn enable_rotation(kms: &Client, key_id: &str, period_days: Option<i32>) -> Result<()> {
    kms.enable_key_rotation()
        .key_id(key_id)
        .set_rotation_period_in_days(period_days)
        .send()
        .await
        .with_context(|| format!("EnableKeyRotation {key_id}"))?;
    Ok(())
}

pub async fn rotate_on_demand(kms: &Client, key_id: &str, times: usize) -> Result<()> {
    for _ in 0..times {
        kms.rotate_key_on_demand()
            .key_id(key_id)
            .send()
            .await
            .with_context(|| format!("RotateKeyOnDemand {key_id}"))?;
    }
    Ok(())
}

pub async fn disable(kms: &Client, key_id: &str) -> Result<()> {
    kms.disable_key()
        .key_id(key_id)
        .send()
        .await
        .with_context(|| format!("DisableKey {key_id}"))?;
    Ok(())
}

pub async fn schedule_deletion(kms: &Client, key_id: &str) -> Result<()> {
    kms.schedule_key_deletion()
        .key_id(key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .with_context(|| format!("ScheduleKeyDeletion {key_id}"))?;
    Ok(())
}

/// Replicates a multi-Region primary into `replica_region`; returns the
/// replica's ARN.
pub async fn replicate(kms: &Client, key_id: &str, replica_region: &str) -> Result<String> {
    let out = kms
        .replicate_key()
        .key_id(key_id)
        .replica_region(replica_region)
        .send()
        .await
        .with_context(|| format!("ReplicateKey {key_id} to {replica_region}"))?;
    out.replica_key_metadata()
        .and_then(|m| m.arn())
        .map(str::to_string)
        .with_context(|| format!("ReplicateKey {key_id}: no replica ARN"))
}

/// Materialises the AWS-managed key behind `alias/aws/SERVICE`.
///
/// In AWS a service creates its managed key on first use; nobody can create
/// an `alias/aws/...` alias (moto refuses too, with NotAuthorizedException).
/// moto creates the key lazily when the alias is first described, which is
/// the closest it comes. moto still reports KeyManager CUSTOMER for it.
pub async fn aws_managed(kms: &Client, region: &str, service: &str) -> Result<SeededKey> {
    let alias = format!("alias/aws/{service}");
    let out = kms
        .describe_key()
        .key_id(&alias)
        .send()
        .await
        .with_context(|| format!("DescribeKey {alias}"))?;
    let meta = out
        .key_metadata()
        .with_context(|| format!("DescribeKey {alias}: no KeyMetadata"))?;
    Ok(SeededKey {
        region: region.to_string(),
        key_id: meta.key_id().to_string(),
        arn: meta.arn().unwrap_or_default().to_string(),
        name: alias,
        expect: "aws_managed",
        // AWS reports `true`: AWS-managed keys rotate every year.
        rotation: Some(true),
    })
}

fn seeded(
    region: &str,
    id: String,
    arn: String,
    name: &str,
    expect: &'static str,
    rotation: Option<bool>,
) -> SeededKey {
    SeededKey {
        region: region.to_string(),
        key_id: id,
        arn,
        name: name.to_string(),
        expect,
        rotation,
    }
}

/// A small, realistic account over two regions: eligible keys with rotation
/// on and off (one with a custom period), signing and MAC keys, imported
/// material, a multi-Region primary and its replica, a disabled key, a key
/// pending deletion, AWS-managed keys, aliases, tags and on-demand rotation
/// history. Every call here is one AWS itself accepts.
pub async fn demo(home: (&str, &Client), other: (&str, &Client)) -> Result<Vec<SeededKey>> {
    let (r1, kms1) = home;
    let (r2, kms2) = other;
    let mut out = Vec::new();

    let k = KeySpecification::symmetric("payments-db")
        .alias("alias/payments-db")
        .tag("team", "payments")
        .tag("env", "prod")
        .tag("data-class", "pci");
    let (id, arn) = create(kms1, &k).await?;
    enable_rotation(kms1, &id, None).await?;
    rotate_on_demand(kms1, &id, 2).await?;
    out.push(seeded(r1, id, arn, &k.name, "eligible", Some(true)));

    let k = KeySpecification::symmetric("orders-api")
        .alias("alias/orders-api")
        .tag("team", "orders")
        .tag("env", "prod");
    let (id, arn) = create(kms1, &k).await?;
    out.push(seeded(r1, id, arn, &k.name, "eligible", Some(false)));

    // 180 days: AWS accepts 90..=2560. moto 5.2 ignores the period and never
    // returns RotationPeriodInDays, so kmsrot shows the period as unknown.
    let k = KeySpecification::symmetric("ledger-archive")
        .alias("alias/ledger-archive")
        .tag("team", "finance");
    let (id, arn) = create(kms1, &k).await?;
    enable_rotation(kms1, &id, Some(180)).await?;
    out.push(seeded(r1, id, arn, &k.name, "eligible", Some(true)));

    let k = KeySpecification::symmetric("release-signing")
        .spec(KeySpec::Rsa2048, KeyUsageType::SignVerify)
        .alias("alias/release-signing")
        .tag("team", "platform");
    let (id, arn) = create(kms1, &k).await?;
    out.push(seeded(r1, id, arn, &k.name, "unsupported_spec", None));

    let k = KeySpecification::symmetric("webhook-hmac")
        .spec(KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac)
        .alias("alias/webhook-hmac")
        .tag("team", "integrations");
    let (id, arn) = create(kms1, &k).await?;
    out.push(seeded(r1, id, arn, &k.name, "unsupported_spec", None));

    // AWS leaves such a key PendingImport until material is imported; moto
    // makes it Enabled at once. Either way the origin decides.
    let k = KeySpecification::symmetric("partner-import")
        .origin(OriginType::External)
        .alias("alias/partner-import")
        .tag("team", "partners");
    let (id, arn) = create(kms1, &k).await?;
    out.push(seeded(r1, id, arn, &k.name, "external_origin", Some(false)));

    let k = KeySpecification::symmetric("global-sessions")
        .multi_region()
        .alias("alias/global-sessions")
        .tag("team", "identity");
    let (id, arn) = create(kms1, &k).await?;
    // Rotation is enabled on the primary before replicating: replicas share
    // the primary's setting.
    enable_rotation(kms1, &id, None).await?;
    let replica_arn = replicate(kms1, &id, r2).await?;
    out.push(seeded(r1, id.clone(), arn, &k.name, "eligible", Some(true)));
    out.push(seeded(
        r2,
        id,
        replica_arn,
        "global-sessions (replica)",
        "replica",
        Some(true),
    ));

    let k = KeySpecification::symmetric("legacy-batch")
        .alias("alias/legacy-batch")
        .tag("team", "data");
    let (id, arn) = create(kms1, &k).await?;
    disable(kms1, &id).await?;
    out.push(seeded(r1, id, arn, &k.name, "disabled", Some(false)));

    let k = KeySpecification::symmetric("old-reports").tag("team", "data");
    let (id, arn) = create(kms1, &k).await?;
    schedule_deletion(kms1, &id).await?;
    out.push(seeded(
        r1,
        id,
        arn,
        &k.name,
        "pending_deletion",
        Some(false),
    ));

    out.push(aws_managed(kms1, r1, "s3").await?);
    out.push(aws_managed(kms1, r1, "ebs").await?);

    let k = KeySpecification::symmetric("eu-customer-data")
        .alias("alias/eu-customer-data")
        .tag("team", "crm")
        .tag("env", "prod")
        .tag("data-class", "pii");
    let (id, arn) = create(kms2, &k).await?;
    enable_rotation(kms2, &id, None).await?;
    rotate_on_demand(kms2, &id, 1).await?;
    out.push(seeded(r2, id, arn, &k.name, "eligible", Some(true)));

    let k = KeySpecification::symmetric("eu-analytics")
        .alias("alias/eu-analytics")
        .tag("team", "analytics");
    let (id, arn) = create(kms2, &k).await?;
    out.push(seeded(r2, id, arn, &k.name, "eligible", Some(false)));

    let k = KeySpecification::symmetric("eu-device-signing")
        .spec(KeySpec::EccNistP256, KeyUsageType::SignVerify)
        .alias("alias/eu-device-signing")
        .tag("team", "iot");
    let (id, arn) = create(kms2, &k).await?;
    out.push(seeded(r2, id, arn, &k.name, "unsupported_spec", None));

    out.push(aws_managed(kms2, r2, "rds").await?);
    Ok(out)
}

/// `n` eligible keys, named `{prefix}-{i}`, each with an alias when
/// `aliases` is set; rotation on for every second key. Sent `concurrency` at
/// a time.
pub async fn plain_keys(
    kms: &Client,
    region: &str,
    prefix: &str,
    n: usize,
    aliases: bool,
    concurrency: usize,
) -> Result<Vec<SeededKey>> {
    many(kms, region, prefix, n, aliases, concurrency, false).await
}

/// `n` ECC signing keys (`unsupported_spec`), for tests that need many keys
/// quickly: moto generates an RSA-2048 private key for every symmetric or
/// RSA key it creates, which makes a hundred of them take seconds, while
/// an ECC key is near-instant.
pub async fn signing_keys(
    kms: &Client,
    region: &str,
    prefix: &str,
    n: usize,
    aliases: bool,
    concurrency: usize,
) -> Result<Vec<SeededKey>> {
    many(kms, region, prefix, n, aliases, concurrency, true).await
}

async fn many(
    kms: &Client,
    region: &str,
    prefix: &str,
    n: usize,
    aliases: bool,
    concurrency: usize,
    signing: bool,
) -> Result<Vec<SeededKey>> {
    stream::iter(0..n)
        .map(|i| async move {
            let name = format!("{prefix}-{i:05}");
            let mut k = KeySpecification::symmetric(&name).tag("set", prefix);
            if signing {
                k = k.spec(KeySpec::EccNistP256, KeyUsageType::SignVerify);
            }
            if aliases {
                k = k.alias(&format!("alias/{name}"));
            }
            let (id, arn) = create(kms, &k).await?;
            if signing {
                return Ok::<_, anyhow::Error>(seeded(
                    region,
                    id,
                    arn,
                    &name,
                    "unsupported_spec",
                    None,
                ));
            }
            let on = i % 2 == 0;
            if on {
                enable_rotation(kms, &id, None).await?;
            }
            Ok(seeded(region, id, arn, &name, "eligible", Some(on)))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}
