//! First contact: who the credentials belong to, or a typed error that says
//! why not and what to do about it.
//!
//! A run that calls AWS asks [`who_am_i`] once before anything else. The
//! failures a new user meets first (no credentials, a profile that does not
//! exist, an expired SSO session, keys STS rejects, an endpoint that cannot
//! be reached) each become one [`ContactError`] variant with a one-line
//! cause and `hint:` lines, instead of an empty inventory marked partial.
//!
//! The classification reads the SDK's own types where it has them
//! (`CredentialsError`, `TokenError`, the SSO and STS operation errors,
//! `ConnectorError`, `ResolveDnsError`, `io::Error` kinds). Two facts have no
//! public type: the SSO token provider's "expired and cannot be refreshed"
//! error is private to aws-config, so an SSO profile whose token provider
//! fails is recognised from the profile, not the message; and rustls'
//! handshake errors reach us as an `io::Error` of kind `InvalidData`.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds;
use aws_config::imds::client::error::ImdsError;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::{CredentialsError, TokenError};
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::dns::ResolveDnsError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::os_shim_internal::{Env, Fs};
use sha1::{Digest, Sha1};

use super::CallerIdentity;

/// How long the caller check may take once credentials are in hand, over
/// every attempt. GetCallerIdentity answers in well under a second; an
/// endpoint that has not answered in this time is treated as unreachable.
pub const STS_BUDGET: Duration = Duration::from_secs(6);
const STS_ATTEMPT: Duration = Duration::from_secs(3);
const STS_ATTEMPTS: u32 = 3;

/// IMDS on EC2 answers in milliseconds. Off EC2 (a laptop, a CI runner) the
/// SDK's defaults (4 attempts with backoff) make every run pay seconds before
/// the chain concludes there is no instance role; the AWS CLI's own defaults
/// are one attempt of one second.
const IMDS_CONNECT: Duration = Duration::from_secs(1);
const IMDS_READ: Duration = Duration::from_secs(1);
const IMDS_ATTEMPTS: u32 = 2;
const IMDS_OPERATION: Duration = Duration::from_secs(3);

/// Where the credentials were looked for: what messages and hints name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The profile in use: `--profile`, else `AWS_PROFILE`, else `default`.
    pub profile: String,
    /// `--profile` or `AWS_PROFILE` when the user chose it; `None` for the
    /// implicit `default`.
    pub chosen_by: Option<&'static str>,
    /// The profile is defined in the config or credentials file.
    pub defined: bool,
    /// The profile, or the profile its `source_profile` chain ends at, signs
    /// in through IAM Identity Center (SSO).
    pub sso: Option<SsoLogin>,
    /// The config file as the user would name it (`~/.aws/config` or
    /// `$AWS_CONFIG_FILE`).
    pub config_file: String,
    /// The web identity token file the chain reads (the profile's
    /// `web_identity_token_file`, else `AWS_WEB_IDENTITY_TOKEN_FILE`), so a
    /// file that cannot be read is named.
    pub web_identity_token_file: Option<String>,
}

/// An SSO sign-in a profile depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLogin {
    /// The profile to pass to `aws sso login`.
    pub profile: String,
    /// The `[sso-session NAME]` it uses; `None` for the legacy form
    /// (`sso_start_url` in the profile itself).
    pub session: Option<String>,
    /// Where `aws sso login` caches the token: `~/.aws/sso/cache/` and the
    /// SHA-1 of the session name (legacy form: of the start URL).
    pub token_cache: Option<PathBuf>,
}

/// The token cache file the AWS CLI and the SDKs share for `identifier`.
fn sso_token_cache(identifier: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())?;
    let name = hex::encode(Sha1::digest(identifier.as_bytes()));
    Some(
        PathBuf::from(home)
            .join(".aws/sso/cache")
            .join(format!("{name}.json")),
    )
}

/// What kind of network failure kept a request from getting any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The host answered the connection attempt with a refusal.
    Refused,
    /// The endpoint's host name did not resolve.
    Dns,
    /// A connection was made but the TLS handshake failed.
    Tls,
    /// No answer in time (connect, read or the whole attempt).
    Timeout,
    /// Any other I/O failure on the way (reset, unreachable network).
    Connection,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Refused => "connection refused",
            Network::Dns => "the host name does not resolve (DNS)",
            Network::Tls => "the TLS handshake failed",
            Network::Timeout => "no answer in time",
            Network::Connection => "the connection failed",
        })
    }
}

/// Why a run could not start talking to AWS. Each variant is one line of
/// cause; [`ContactError::hints`] says what the user can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactError {
    /// Nothing in the credential chain had credentials.
    NoCredentials { origin: Origin },
    /// `--profile` or `AWS_PROFILE` names a profile the files do not define.
    UnknownProfile {
        origin: Origin,
        /// The profiles that are defined.
        known: Vec<String>,
    },
    /// The config or credentials file cannot be read or parsed.
    ProfileFile { problem: String },
    /// The profile signs in through SSO and the cached token has expired,
    /// is missing, or was refused by the SSO portal.
    SsoExpired {
        origin: Origin,
        login: SsoLogin,
        /// No token was cached at all: never logged in (or logged out).
        never_logged_in: bool,
    },
    /// The profile is configured in a way the SDK cannot use.
    BadConfiguration { origin: Origin, problem: String },
    /// A credential source (assume role, credential_process, web identity,
    /// SSO) failed for a reason of its own.
    ProviderFailed {
        origin: Origin,
        problem: String,
        /// STS refused to let the profile assume its role.
        assume_role: bool,
    },
    /// STS refused the credentials.
    Rejected {
        origin: Origin,
        code: String,
        message: String,
    },
    /// The endpoint could not be reached at all.
    Unreachable {
        /// `scheme://host[:port]` of the request, or a description.
        endpoint: String,
        network: Network,
        /// The lowest-level message, when it adds something.
        detail: Option<String>,
    },
    /// STS answered something that is not an STS answer.
    BadAnswer { endpoint: String, problem: String },
}

impl fmt::Display for ContactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContactError::NoCredentials { origin } => write!(
                f,
                "no AWS credentials found (environment, profile `{}`{}, SSO, web identity, container or instance role)",
                origin.profile,
                if origin.defined { "" } else { " (not defined)" }
            ),
            ContactError::UnknownProfile { origin, .. } => write!(
                f,
                "the profile `{}` (from {}) is not defined in {} or the credentials file",
                origin.profile,
                origin.chosen_by.unwrap_or("the default"),
                origin.config_file
            ),
            ContactError::ProfileFile { problem } => {
                write!(f, "the AWS config files cannot be used: {problem}")
            }
            ContactError::SsoExpired {
                login,
                never_logged_in: true,
                ..
            } => write!(
                f,
                "profile `{}` signs in with SSO, and no SSO session is cached: not logged in",
                login.profile
            ),
            ContactError::SsoExpired { login, .. } => {
                write!(f, "the SSO session for profile `{}` has expired", login.profile)
            }
            ContactError::BadConfiguration { origin, problem } => write!(
                f,
                "profile `{}` cannot be used: {problem}",
                origin.profile
            ),
            ContactError::ProviderFailed {
                origin, problem, ..
            } if origin.defined || origin.chosen_by.is_some() => write!(
                f,
                "could not get credentials for profile `{}`: {problem}",
                origin.profile
            ),
            // No profile in play: the environment's source failed.
            ContactError::ProviderFailed { problem, .. } => {
                write!(f, "could not get credentials: {problem}")
            }
            ContactError::Rejected { code, message, .. } => {
                let what = match rejection(code) {
                    Rejection::UnknownKey => "AWS does not accept the access key",
                    Rejection::Expired => "the AWS credentials have expired",
                    Rejection::Signature => "AWS rejected the request signature",
                    Rejection::Clock => "AWS rejected the request time",
                    Rejection::Other => "STS GetCallerIdentity failed",
                };
                write!(f, "{what} ({code}: {})", one_line(message))
            }
            ContactError::Unreachable {
                endpoint,
                network,
                detail,
            } => {
                write!(f, "could not reach AWS at {endpoint}: {network}")?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            ContactError::BadAnswer { endpoint, problem } => write!(
                f,
                "{endpoint} answered, but not as AWS STS does: {problem}"
            ),
        }
    }
}

impl StdError for ContactError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    UnknownKey,
    Expired,
    Signature,
    Clock,
    Other,
}

/// STS error codes for refused credentials (STS API reference, Common Errors).
fn rejection(code: &str) -> Rejection {
    match code {
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "AuthFailure" => Rejection::UnknownKey,
        "ExpiredToken" | "ExpiredTokenException" | "TokenRefreshRequired" => Rejection::Expired,
        "SignatureDoesNotMatch" | "IncompleteSignature" => Rejection::Signature,
        "RequestExpired" | "RequestTimeTooSkewed" => Rejection::Clock,
        _ => Rejection::Other,
    }
}

impl ContactError {
    /// What the user can do, most likely fix first.
    pub fn hints(&self) -> Vec<String> {
        let choose = "choose credentials with --profile NAME or AWS_PROFILE (`aws configure list-profiles` lists them)".to_string();
        match self {
            ContactError::NoCredentials { origin } => {
                let mut h = Vec::new();
                if origin.chosen_by.is_none() {
                    h.push(choose);
                }
                h.push(
                    "or set them up: `aws configure sso` (IAM Identity Center) or `aws configure` (access keys), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
                );
                h
            }
            ContactError::UnknownProfile { origin, known } => {
                let mut h = vec![if known.is_empty() {
                    format!(
                        "no profile is defined; create it with `aws configure sso --profile {0}` or `aws configure --profile {0}`",
                        origin.profile
                    )
                } else {
                    format!(
                        "defined profiles: {} (`aws configure list-profiles`)",
                        known.join(", ")
                    )
                }];
                h.push(match origin.chosen_by {
                    Some("AWS_PROFILE") => {
                        "or unset AWS_PROFILE to use the default credential chain".into()
                    }
                    _ => "or leave out --profile to use the default credential chain".into(),
                });
                h
            }
            ContactError::ProfileFile { .. } => vec![
                "fix the line named, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at another file".into(),
            ],
            ContactError::SsoExpired {
                login,
                never_logged_in,
                ..
            } => vec![
                format!(
                    "sign in{}: aws sso login --profile {}",
                    if *never_logged_in { "" } else { " again" },
                    login.profile
                ),
                "then run kmsrot again; nothing was read or written".into(),
            ],
            ContactError::BadConfiguration { origin, .. } => vec![format!(
                "fix profile `{}` in {} (`aws configure list --profile {}` shows what it resolves to)",
                origin.profile, origin.config_file, origin.profile
            )],
            ContactError::ProviderFailed {
                origin,
                assume_role: true,
                ..
            } => vec![
                format!(
                    "the role's trust policy must allow the source identity, and the source needs sts:AssumeRole on the role: check role_arn and source_profile of profile `{}` in {}",
                    origin.profile, origin.config_file
                ),
                format!(
                    "`aws sts get-caller-identity --profile {}` shows the same refusal",
                    origin.profile
                ),
            ],
            ContactError::ProviderFailed { origin, .. }
                if origin.defined || origin.chosen_by.is_some() =>
            {
                vec![format!(
                    "check that `aws sts get-caller-identity --profile {}` works",
                    origin.profile
                )]
            }
            ContactError::ProviderFailed { .. } => vec![
                "check the AWS_* variables this shell sets (`env | grep ^AWS_`) and that `aws sts get-caller-identity` works".into(),
            ],
            ContactError::Rejected { origin, code, .. } => match rejection(code) {
                Rejection::UnknownKey => vec![
                    format!(
                        "the access key is unknown to AWS: deleted, deactivated, mistyped, or from another partition; check AWS_ACCESS_KEY_ID or profile `{}`",
                        origin.profile
                    ),
                    choose,
                ],
                Rejection::Expired => vec![
                    match &origin.sso {
                        Some(l) => format!("sign in again: aws sso login --profile {}", l.profile),
                        None => "get new temporary credentials (assume the role again, or re-export AWS_SESSION_TOKEN), or unset AWS_SESSION_TOKEN if the keys are long-term".into(),
                    },
                    choose,
                ],
                Rejection::Signature => vec![format!(
                    "the secret access key does not belong to the access key id; check AWS_SECRET_ACCESS_KEY or profile `{}`",
                    origin.profile
                )],
                Rejection::Clock => {
                    vec!["check this machine's clock: AWS refuses requests more than 5 minutes off".into()]
                }
                Rejection::Other => vec![
                    "check that `aws sts get-caller-identity` works with the same profile and region".into(),
                ],
            },
            ContactError::Unreachable { endpoint, .. } | ContactError::BadAnswer { endpoint, .. } => {
                let mut h = vec![
                    "check --endpoint-url (or AWS_ENDPOINT_URL), a proxy (HTTPS_PROXY, NO_PROXY), or the network".to_string(),
                ];
                // On AWS's own endpoints, a network that reaches KMS but not
                // STS is a private subnet with only some VPC endpoints.
                if endpoint.contains(".amazonaws.") {
                    h.push("where only some AWS endpoints are reachable (a VPC with interface endpoints), add one for STS".into());
                }
                h
            }
        }
    }
}

/// The profile the run uses, checked against the config and credentials
/// files before any provider runs: a profile that does not exist is an
/// error here, as in the AWS CLI, rather than a silent fall-through to IMDS.
pub async fn origin(profile_flag: Option<&str>) -> Result<Origin, ContactError> {
    let env = Env::real();
    let files = EnvConfigFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &env, &files, None)
        .await
        .map_err(|e| ContactError::ProfileFile {
            problem: innermost(&e),
        })?;
    let from_env = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let (profile, chosen_by) = match (profile_flag, from_env) {
        (Some(p), _) => (p.to_string(), Some("--profile")),
        (None, Some(p)) => (p, Some("AWS_PROFILE")),
        (None, None) => ("default".to_string(), None),
    };
    let config_file = match std::env::var("AWS_CONFIG_FILE") {
        Ok(p) if !p.is_empty() => p,
        _ => "~/.aws/config".to_string(),
    };
    let defined = set.get_profile(&profile).is_some();
    let mut origin = Origin {
        profile: profile.clone(),
        chosen_by,
        defined,
        sso: None,
        config_file,
        web_identity_token_file: std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE")
            .ok()
            .filter(|p| !p.is_empty()),
    };
    if !defined && chosen_by.is_some() {
        let mut known: Vec<String> = set.profiles().map(str::to_string).collect();
        known.sort();
        return Err(ContactError::UnknownProfile { origin, known });
    }
    // Follow source_profile to the profile that holds the sign-in: an
    // assumed role on top of an SSO profile needs that profile's login.
    let mut name = profile;
    for _ in 0..8 {
        let Some(p) = set.get_profile(&name) else {
            break;
        };
        if let Some(file) = p.get("web_identity_token_file") {
            origin.web_identity_token_file = Some(file.to_string());
        }
        if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() {
            let session = p.get("sso_session").map(str::to_string);
            let identifier = session.as_deref().or(p.get("sso_start_url"));
            origin.sso = Some(SsoLogin {
                profile: name.clone(),
                token_cache: identifier.and_then(sso_token_cache),
                session,
            });
            break;
        }
        match p.get("source_profile") {
            // The SDK reads a missing source profile as "no credentials"
            // and goes on down the chain to IMDS; the cause is the file.
            Some(next) if set.get_profile(next).is_none() => {
                return Err(ContactError::BadConfiguration {
                    problem: format!(
                        "profile `{name}` names source_profile `{next}`, which is not defined in {} or the credentials file",
                        origin.config_file
                    ),
                    origin,
                })
            }
            Some(next) if next != name => name = next.to_string(),
            _ => break,
        }
    }
    Ok(origin)
}

/// The IMDS client for both the region and the credential chains, bounded
/// so a machine without IMDS concludes within a few seconds.
fn bounded_imds() -> imds::Client {
    imds::Client::builder()
        .max_attempts(IMDS_ATTEMPTS)
        .connect_timeout(IMDS_CONNECT)
        .read_timeout(IMDS_READ)
        .operation_timeout(IMDS_OPERATION)
        .build()
}

/// The region chain the SDK uses (environment, profile, IMDS) behind the
/// first region named on the command line, with the bounded IMDS client.
pub async fn region(flag: Option<&str>, profile: Option<&str>) -> Option<Region> {
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    RegionProviderChain::first_try(flag.map(|r| Region::new(r.to_string())))
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(from_profile.build())
        .or_else(
            ImdsRegionProvider::builder()
                .imds_client(bounded_imds())
                .build(),
        )
        .region()
        .await
}

/// The SDK's default credential chain (environment, profile with SSO,
/// assume-role and credential_process, web identity, container, IMDS) with
/// the bounded IMDS client, resolved once for the caller check and the
/// first call after it.
pub async fn credentials(profile: Option<&str>, region: Option<Region>) -> ResolveOnce {
    let mut chain = DefaultCredentialsChain::builder()
        .imds_client(bounded_imds())
        .region(region);
    if let Some(p) = profile {
        chain = chain.profile_name(p);
    }
    ResolveOnce::new(chain.build().await)
}

/// A credentials provider whose first resolution is handed once more to the
/// next caller (the SDK's identity cache, right after [`who_am_i`]), so the
/// chain runs once per run: one SSO GetRoleCredentials, one AssumeRole, one
/// credential_process prompt. Later refreshes always run the chain.
#[derive(Debug)]
pub struct ResolveOnce {
    chain: DefaultCredentialsChain,
    first: Mutex<Option<(Credentials, Instant)>>,
    primed: AtomicBool,
}

/// A resolution older than this is not reused: it was not made for the
/// caller check just before.
const REUSE_WITHIN: Duration = Duration::from_secs(60);

impl ResolveOnce {
    fn new(chain: DefaultCredentialsChain) -> Self {
        ResolveOnce {
            chain,
            first: Mutex::new(None),
            primed: AtomicBool::new(false),
        }
    }

    async fn resolve(&self) -> aws_credential_types::provider::Result {
        let kept = self.first.lock().ok().and_then(|mut f| f.take());
        if let Some((creds, at)) = kept {
            let fresh = creds.expiry().is_none_or(|t| {
                t.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            });
            if fresh && at.elapsed() < REUSE_WITHIN {
                return Ok(creds);
            }
        }
        let result = self.chain.provide_credentials().await;
        if let Ok(creds) = &result {
            if !self.primed.swap(true, Ordering::SeqCst) {
                if let Ok(mut f) = self.first.lock() {
                    *f = Some((creds.clone(), Instant::now()));
                }
            }
        }
        result
    }
}

impl ProvideCredentials for ResolveOnce {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.resolve())
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.chain.fallback_on_interrupt()
    }
}

/// Who the credentials of `config` belong to (STS GetCallerIdentity), or why
/// that cannot be known. Credentials are resolved first, without a deadline
/// of ours (an MFA prompt of a credential_process may take a while), then STS
/// is asked within [`STS_BUDGET`].
///
/// This is the one caller check: a config built per account (an assumed
/// role) is checked with the same function.
pub async fn who_am_i(config: &SdkConfig, origin: &Origin) -> Result<CallerIdentity, ContactError> {
    let Some(provider) = config.credentials_provider() else {
        return Err(ContactError::NoCredentials {
            origin: origin.clone(),
        });
    };
    provider
        .provide_credentials()
        .await
        .map_err(|e| from_credentials_error(&e, origin))?;

    // GetCallerIdentity answers from any region; without one configured
    // (`--region all` and nothing else), ask STS where the AWS CLI would.
    let region = config
        .region()
        .cloned()
        .unwrap_or_else(|| Region::from_static("us-east-1"));
    let seen = EndpointSeen::default();
    let conf = aws_sdk_sts::config::Builder::from(config)
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(STS_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(STS_ATTEMPT)
                .operation_attempt_timeout(STS_ATTEMPT)
                .operation_timeout(STS_BUDGET)
                .build(),
        )
        .interceptor(seen.clone())
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| from_sts_error(&e, &seen.endpoint(), origin))?;
    let identity = CallerIdentity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    };
    tracing::info!(arn = %identity.arn, account = %identity.account, "caller");
    Ok(identity)
}

/// Remembers where the last request went (`scheme://host[:port]`), so an
/// unreachable endpoint is named as the SDK resolved it (regional STS,
/// `--endpoint-url`, `AWS_ENDPOINT_URL_STS`, FIPS, ...).
#[derive(Debug, Clone, Default)]
struct EndpointSeen(Arc<Mutex<Option<String>>>);

impl EndpointSeen {
    fn endpoint(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "the STS endpoint".into())
    }
}

impl Intercept for EndpointSeen {
    fn name(&self) -> &'static str {
        "kmsrot-endpoint-seen"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = ctx.request().uri();
        let origin = match uri.find("://") {
            Some(i) => {
                let rest = &uri[i + 3..];
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                uri[..i + 3 + end].to_string()
            }
            None => uri.to_string(),
        };
        if let Ok(mut e) = self.0.lock() {
            *e = Some(origin);
        }
        Ok(())
    }
}

/// A credentials failure, by the SDK's error type.
pub fn from_credentials_error(err: &CredentialsError, origin: &Origin) -> ContactError {
    let origin_c = || origin.clone();
    if let Some(login) = &origin.sso {
        if let Some(e) = sso_failure(err, origin, login) {
            return e;
        }
    }
    // The instance metadata service is the chain's last resort: whatever
    // it answered (nothing, 404 for no role, 403 where IMDS is disabled or a
    // container's metadata proxy refuses), the run has no credentials.
    if chain(err).any(|e| e.downcast_ref::<ImdsError>().is_some()) {
        return ContactError::NoCredentials { origin: origin_c() };
    }
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            ContactError::NoCredentials { origin: origin_c() }
        }
        CredentialsError::InvalidConfiguration(_) => ContactError::BadConfiguration {
            origin: origin_c(),
            problem: innermost(err),
        },
        CredentialsError::ProviderTimedOut(_) => ContactError::ProviderFailed {
            origin: origin_c(),
            problem: "the credential source did not answer in time".into(),
            assume_role: false,
        },
        _ => {
            // A provider that calls AWS (AssumeRole, web identity, the SSO
            // portal) may itself not reach it.
            if let Some((network, detail)) = network_failure(err) {
                return ContactError::Unreachable {
                    endpoint: "the credential source's AWS endpoint (STS or the SSO portal)".into(),
                    network,
                    detail,
                };
            }
            // STS's own answer, when a provider called it, says more than
            // the provider's wrapping.
            let assume_role = chain(err).find_map(|e| {
                e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>()
                    .and_then(SdkError::as_service_error)
                    .map(|s| {
                        let code = s.code().unwrap_or("UnknownError");
                        let problem = format!(
                            "sts:AssumeRole was refused: {code}: {}",
                            one_line(s.message().unwrap_or("no message"))
                        );
                        (problem, code == "AccessDenied")
                    })
            });
            let web_identity = chain(err).find_map(|e| {
                e.downcast_ref::<SdkError<AssumeRoleWithWebIdentityError, HttpResponse>>()
                    .and_then(SdkError::as_service_error)
                    .map(|s| {
                        format!(
                            "sts:AssumeRoleWithWebIdentity was refused: {}: {}",
                            s.code().unwrap_or("UnknownError"),
                            one_line(s.message().unwrap_or("no message"))
                        )
                    })
            });
            // A refused trust policy or permission has its own hint; the
            // source's keys being refused reads as such in the message.
            let denied = assume_role.as_ref().is_some_and(|(_, d)| *d);
            // The web identity provider's error is the bare io::Error of
            // reading the token file, which names no file.
            let unreadable_token = origin.web_identity_token_file.as_ref().and_then(|file| {
                chain(err)
                    .find_map(|e| e.downcast_ref::<std::io::Error>())
                    .map(|io| {
                        format!(
                            "the web identity token file {} cannot be read: {}",
                            one_line(file),
                            one_line(&io.to_string())
                        )
                    })
            });
            ContactError::ProviderFailed {
                origin: origin_c(),
                assume_role: denied,
                problem: assume_role
                    .map(|(p, _)| p)
                    .or(web_identity)
                    .or(unreadable_token)
                    .unwrap_or_else(|| innermost(err)),
            }
        }
    }
}

/// An SSO profile whose sign-in failed: the token provider could not give a
/// token (expired and not refreshable, or no cache file), or the portal
/// refused the cached token (UnauthorizedException after a failed refresh).
fn sso_failure(err: &CredentialsError, origin: &Origin, login: &SsoLogin) -> Option<ContactError> {
    let expired = |never_logged_in| ContactError::SsoExpired {
        origin: origin.clone(),
        login: login.clone(),
        never_logged_in,
    };
    let chain = || chain(err);
    if let Some(e) =
        chain().find_map(|e| e.downcast_ref::<SdkError<GetRoleCredentialsError, HttpResponse>>())
    {
        return match e {
            SdkError::ServiceError(s) if s.err().is_unauthorized_exception() => {
                Some(expired(false))
            }
            _ => None,
        };
    }
    if network_failure(err).is_some() {
        return None;
    }
    // The token provider's own error hides its cause (it implements the
    // deprecated `cause`, not `source`), so whether a token was cached at
    // all is read from the cache itself.
    let not_found = login.token_cache.as_ref().is_some_and(|p| !p.exists())
        || chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        });
    let from_token = chain().any(|e| e.downcast_ref::<TokenError>().is_some());
    // The legacy form loads the cache without a token provider; its errors
    // (file missing, expired) come straight from the cache reader.
    let legacy = login.session.is_none() && matches!(err, CredentialsError::ProviderError(_));
    if not_found {
        Some(expired(true))
    } else if from_token || legacy {
        Some(expired(false))
    } else {
        None
    }
}

/// A failed GetCallerIdentity, credentials already in hand.
fn from_sts_error(
    err: &SdkError<GetCallerIdentityError, HttpResponse>,
    endpoint: &str,
    origin: &Origin,
) -> ContactError {
    match err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            match e.code() {
                Some(code) => ContactError::Rejected {
                    origin: origin.clone(),
                    code: code.to_string(),
                    message: e.message().unwrap_or("no message").to_string(),
                },
                // An error without an AWS error code: a web server, a
                // captive portal or another service is at that address.
                None => ContactError::BadAnswer {
                    endpoint: endpoint.to_string(),
                    problem: format!(
                        "HTTP {} without an AWS error code",
                        s.raw().status().as_u16()
                    ),
                },
            }
        }
        SdkError::TimeoutError(_) => ContactError::Unreachable {
            endpoint: endpoint.to_string(),
            network: Network::Timeout,
            detail: Some(format!("nothing within {} s", STS_BUDGET.as_secs())),
        },
        SdkError::DispatchFailure(d) => {
            if let Some(c) = chain(err).find_map(|e| e.downcast_ref::<CredentialsError>()) {
                return from_credentials_error(c, origin);
            }
            let (network, detail) = network_failure(err).unwrap_or_else(|| {
                let n = if d.is_timeout() {
                    Network::Timeout
                } else {
                    Network::Connection
                };
                (n, Some(innermost(err)))
            });
            let detail = match network {
                Network::Timeout => Some(format!("nothing within {} s", STS_BUDGET.as_secs())),
                _ => detail,
            };
            ContactError::Unreachable {
                endpoint: endpoint.to_string(),
                network,
                detail,
            }
        }
        SdkError::ResponseError(_) => ContactError::BadAnswer {
            endpoint: endpoint.to_string(),
            problem: innermost(err),
        },
        _ => ContactError::BadAnswer {
            endpoint: endpoint.to_string(),
            problem: innermost(err),
        },
    }
}

/// Every error in a cause chain, stepping into an `io::Error`'s payload
/// (its `source()` skips the payload itself).
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|e| e as &(dyn StdError + 'static)),
            None => cur.source(),
        };
        Some(cur)
    })
}

/// The network failure in an error's cause chain, if the request never got
/// an answer, with the lowest-level message worth showing.
pub fn network_failure(err: &(dyn StdError + 'static)) -> Option<(Network, Option<String>)> {
    let errors: Vec<&(dyn StdError + 'static)> = chain(err).collect();
    let connector = errors
        .iter()
        .find_map(|e| e.downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>());
    if errors
        .iter()
        .any(|e| e.downcast_ref::<ResolveDnsError>().is_some())
    {
        return Some((Network::Dns, None));
    }
    for e in &errors {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let n = match io.kind() {
                K::ConnectionRefused => Some(Network::Refused),
                K::TimedOut => Some(Network::Timeout),
                // rustls reports a failed handshake as InvalidData, which
                // plain TCP never does; a server that hangs up mid-handshake
                // is an EOF that hyper-rustls names (it has no type).
                K::InvalidData => Some(Network::Tls),
                K::UnexpectedEof if io.to_string().to_ascii_lowercase().contains("tls") => {
                    Some(Network::Tls)
                }
                K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::AddrNotAvailable
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::NetworkDown => Some(Network::Connection),
                _ => None,
            };
            if let Some(n) = n {
                let detail = match n {
                    Network::Tls | Network::Connection => Some(innermost(*e)),
                    _ => None,
                };
                return Some((n, detail));
            }
        }
    }
    let connector = connector?;
    if connector.is_timeout() {
        return Some((Network::Timeout, None));
    }
    if connector.is_io() {
        // hyper-util's resolver error is private; its message is its type.
        let text = innermost(connector);
        let low = text.to_ascii_lowercase();
        if low.contains("dns error") || low.contains("lookup address") {
            return Some((Network::Dns, None));
        }
        return Some((Network::Connection, Some(text)));
    }
    None
}

/// The deepest message of a cause chain, on one line.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let last = chain(err).last().unwrap_or(err);
    one_line(&last.to_string())
}

fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    const MAX: usize = 300;
    match flat.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(profile: &str) -> Origin {
        Origin {
            profile: profile.into(),
            chosen_by: Some("--profile"),
            defined: true,
            sso: None,
            config_file: "~/.aws/config".into(),
            web_identity_token_file: None,
        }
    }

    #[test]
    fn a_refused_connection_is_named_from_the_io_error_kind() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = aws_smithy_runtime_api::client::result::ConnectorError::io(Box::new(io));
        assert_eq!(network_failure(&err), Some((Network::Refused, None)));
    }

    #[test]
    fn a_dns_failure_is_found_by_type() {
        let dns = ResolveDnsError::new(std::io::Error::other(
            "failed to lookup address information",
        ));
        let err = aws_smithy_runtime_api::client::result::ConnectorError::io(Box::new(dns));
        assert_eq!(network_failure(&err), Some((Network::Dns, None)));
    }

    #[test]
    fn no_credentials_is_not_a_network_failure() {
        let err = CredentialsError::not_loaded("no providers in chain provided credentials");
        assert_eq!(network_failure(&err), None);
        let e = from_credentials_error(&err, &origin("audit"));
        assert!(matches!(e, ContactError::NoCredentials { .. }), "{e:?}");
        assert!(e.to_string().starts_with("no AWS credentials found"));
    }

    #[test]
    fn an_sso_profile_whose_token_provider_fails_has_an_expired_session() {
        let mut o = origin("dev");
        o.sso = Some(SsoLogin {
            profile: "dev".into(),
            session: Some("corp".into()),
            token_cache: None,
        });
        let token = TokenError::provider_error("the SSO token has expired and cannot be refreshed");
        let err = CredentialsError::provider_error(CredentialsError::provider_error(token));
        let e = from_credentials_error(&err, &o);
        assert_eq!(
            e.to_string(),
            "the SSO session for profile `dev` has expired"
        );
        assert_eq!(e.hints()[0], "sign in again: aws sso login --profile dev");
    }

    #[test]
    fn sts_codes_say_what_was_wrong_with_the_keys() {
        let o = origin("audit");
        let rejected = |code: &str| ContactError::Rejected {
            origin: o.clone(),
            code: code.into(),
            message: "m".into(),
        };
        assert!(rejected("InvalidClientTokenId")
            .to_string()
            .starts_with("AWS does not accept the access key"));
        assert!(rejected("ExpiredToken")
            .to_string()
            .starts_with("the AWS credentials have expired"));
        assert!(rejected("SignatureDoesNotMatch").hints()[0].contains("secret access key"));
        assert!(rejected("RequestExpired").hints()[0].contains("clock"));
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }
}
