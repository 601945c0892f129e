//! An emulated AWS Organization: the caller's account made its management
//! account, member accounts (each with the `OrganizationAccountAccessRole`
//! Organizations creates), OUs, closed accounts, and clients inside a member
//! through that role, as kmsrot reaches them.
//!
//! moto keeps each account's resources apart when called with credentials
//! from an AssumeRole into that account's id, so keys seeded through
//! [`member_config`] belong to the member.

use anyhow::{Context, Result};
use aws_sdk_kms::config::Credentials;
use aws_sdk_organizations::Client as OrgClient;
use aws_types::SdkConfig;

/// The role Organizations creates in each account it creates.
pub const ROLE: &str = "OrganizationAccountAccessRole";

/// Creates the organization; returns its root id.
pub async fn create(org: &OrgClient) -> Result<String> {
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .context("CreateOrganization")?;
    let roots = org.list_roots().send().await.context("ListRoots")?;
    roots
        .roots()
        .first()
        .and_then(|r| r.id())
        .map(str::to_string)
        .context("ListRoots: no root")
}

/// Creates a member account; returns its id.
pub async fn account(org: &OrgClient, name: &str) -> Result<String> {
    let out = org
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .with_context(|| format!("CreateAccount {name}"))?;
    out.create_account_status()
        .and_then(|s| s.account_id())
        .map(str::to_string)
        .with_context(|| format!("CreateAccount {name}: no account id"))
}

/// Creates an OU under `parent`; returns its id.
pub async fn ou(org: &OrgClient, parent: &str, name: &str) -> Result<String> {
    let out = org
        .create_organizational_unit()
        .parent_id(parent)
        .name(name)
        .send()
        .await
        .with_context(|| format!("CreateOrganizationalUnit {name}"))?;
    out.organizational_unit()
        .and_then(|o| o.id())
        .map(str::to_string)
        .with_context(|| format!("CreateOrganizationalUnit {name}: no id"))
}

pub async fn move_account(org: &OrgClient, account: &str, from: &str, to: &str) -> Result<()> {
    org.move_account()
        .account_id(account)
        .source_parent_id(from)
        .destination_parent_id(to)
        .send()
        .await
        .with_context(|| format!("MoveAccount {account}"))?;
    Ok(())
}

/// CloseAccount: moto puts the account in SUSPENDED at once (AWS passes
/// through PENDING_CLOSURE first).
pub async fn close(org: &OrgClient, account: &str) -> Result<()> {
    org.close_account()
        .account_id(account)
        .send()
        .await
        .with_context(|| format!("CloseAccount {account}"))?;
    Ok(())
}

/// `base` with credentials of [`ROLE`] assumed in `account`.
pub async fn member_config(base: &SdkConfig, account: &str) -> Result<SdkConfig> {
    let sts = aws_sdk_sts::Client::new(base);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
        .role_session_name("kmsrot-testkit-seed")
        .send()
        .await
        .with_context(|| format!("AssumeRole into {account}"))?;
    let c = out
        .credentials()
        .with_context(|| format!("AssumeRole into {account}: no credentials"))?;
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "kmsrot-testkit",
    );
    Ok(base
        .to_builder()
        .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(creds))
        .build())
}

/// A KMS client in `region` of `account`.
pub async fn member_kms(
    base: &SdkConfig,
    account: &str,
    region: &str,
) -> Result<aws_sdk_kms::Client> {
    let conf = member_config(base, account).await?;
    let conf = conf
        .to_builder()
        .region(aws_types::region::Region::new(region.to_string()))
        .build();
    Ok(aws_sdk_kms::Client::new(&conf))
}
