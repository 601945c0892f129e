//! Credentials in another account: STS AssumeRole once per account, kept,
//! and asked again a few minutes before they expire.
//!
//! aws-config's `AssumeRoleProvider` does not cache by itself (the SDK's
//! identity cache in front of it does), and the first answer is needed up
//! front: a refusal (AccessDenied for a missing role, an untrusting trust
//! policy, a wrong external id or an SCP) must be named in coverage with
//! its code before any region of the account is read. So the first
//! AssumeRole is made here, and the same session keeps the credentials and
//! refreshes them for the SDK on long runs. Credentials are held in memory
//! only: never written, never logged (the role and session names are).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

use super::budget::Meter;
use super::ErrorInfo;

/// Credentials are asked again when less than this is left of them.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// How to reach one account, and how it was reached.
#[derive(Debug, Clone)]
pub struct AccountAccess {
    pub account_id: String,
    /// The SDK configuration for this account: the caller's own for the
    /// calling account, an assumed role's for any other.
    pub config: SdkConfig,
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    /// The identity STS answered (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub assumed_arn: Option<String>,
}

/// What to assume.
#[derive(Debug, Clone)]
pub struct RoleRequest {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
}

#[derive(Debug)]
struct Session {
    sts: aws_sdk_sts::Client,
    request: RoleRequest,
    current: tokio::sync::Mutex<Option<Credentials>>,
    /// AssumeRole calls of the whole run.
    calls: Arc<AtomicU64>,
}

impl Session {
    async fn assume(&self) -> Result<(Credentials, Option<String>), ErrorInfo> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.request.role_arn)
            .role_session_name(&self.request.session_name)
            .set_external_id(self.request.external_id.clone())
            .send()
            .await
            .map_err(|e| ErrorInfo::from_sdk(&e))?;
        let c = out.credentials().ok_or_else(|| {
            ErrorInfo::new("EmptyResponse", "AssumeRole answered without credentials")
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "kmsrot-assume-role",
        );
        let arn = out.assumed_role_user().map(|u| u.arn().to_string());
        Ok((creds, arn))
    }

    /// The kept credentials while they last, else new ones. One caller at a
    /// time: tasks that ask together share one AssumeRole.
    async fn credentials(&self) -> Result<Credentials, ErrorInfo> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            if is_fresh(c.expiry(), SystemTime::now()) {
                return Ok(c.clone());
            }
        }
        let (creds, _) = self.assume().await?;
        *current = Some(creds.clone());
        Ok(creds)
    }
}

/// Good for more than [`REFRESH_BEFORE`]; credentials without an expiry
/// never go stale.
fn is_fresh(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    expiry.is_none_or(|e| e > now + REFRESH_BEFORE)
}

#[derive(Debug)]
struct RoleProvider(Arc<Session>);

impl ProvideCredentials for RoleProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

/// Assumes `request` with the caller's `base` configuration and returns a
/// configuration for the account whose credentials renew themselves.
pub async fn assume(
    base: &SdkConfig,
    account_id: &str,
    request: RoleRequest,
    calls: Arc<AtomicU64>,
    meter: Option<&Meter>,
) -> Result<AccountAccess, ErrorInfo> {
    let mut sts = aws_sdk_sts::config::Builder::from(base);
    if let Some(m) = meter {
        sts = sts.interceptor(m.clone());
    }
    let session = Arc::new(Session {
        sts: aws_sdk_sts::Client::from_conf(sts.build()),
        request: request.clone(),
        current: tokio::sync::Mutex::new(None),
        calls,
    });
    let (creds, assumed_arn) = session.assume().await?;
    *session.current.lock().await = Some(creds);
    let config = base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(RoleProvider(session)))
        .build();
    Ok(AccountAccess {
        account_id: account_id.to_string(),
        config,
        role_arn: Some(request.role_arn),
        session_name: Some(request.session_name),
        assumed_arn,
    })
}

/// A hint for a refused AssumeRole, by its code.
pub fn refusal_hint(error: &ErrorInfo, role_arn: &str) -> String {
    match error.code.as_str() {
        "AccessDenied" | "AccessDeniedException" => format!(
            "check that {role_arn} exists, that its trust policy names the caller (and the --external-id, if it requires one), and that no SCP denies sts:AssumeRole; docs/iam/org-member-role.yaml creates such a role in every account"
        ),
        "RegionDisabledException" => {
            "STS is not activated in the caller's region for this account: activate it in IAM account settings, or run with another --region first".into()
        }
        "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId" => {
            "the caller's own credentials are expired or invalid: renew them (aws sso login) and run again".into()
        }
        _ => "run `aws sts assume-role --role-arn ROLE --role-session-name test` with the same profile to see why".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_renewed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(is_fresh(None, now));
        assert!(is_fresh(Some(now + Duration::from_secs(3600)), now));
        assert!(!is_fresh(Some(now + Duration::from_secs(299)), now));
        assert!(!is_fresh(Some(now - Duration::from_secs(1)), now));
    }

    #[test]
    fn refusals_carry_a_hint() {
        let e = ErrorInfo::new("AccessDenied", "not authorized to perform sts:AssumeRole");
        assert!(refusal_hint(&e, "arn:aws:iam::111122223333:role/R").contains("trust policy"));
    }
}
