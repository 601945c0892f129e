//! First contact (issue 19): the real binary, in the environment of a new
//! user's fresh shell (`env -i` with PATH and HOME pointing at an empty
//! folder), meeting what the first run usually meets. Each case ends with
//! exit 2, one line of cause and `hint:` lines, in under 10 s, and leaves no
//! output folder behind.
//!
//! IMDS is pointed at a listener that never answers: that is a laptop (on an
//! EC2 machine the real IMDS would hand the test an instance role), and the
//! slowest IMDS a chain can meet.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::kmsrot_snapshot;
use crate::support::endpoints::{refused_url, Canned, PlainHttp, Silent};
use crate::support::proxy::{Proxy, Rule};
use crate::support::snapshot::{run, Seen};
use crate::support::Moto;

/// Every case must conclude within this, IMDS and retries included.
const LIMIT: Duration = Duration::from_secs(10);

/// A new user's shell: PATH, an empty HOME, nothing from this machine's AWS
/// setup, and IMDS at a listener that never answers.
struct Fresh {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    imds: Silent,
}

impl Fresh {
    fn new() -> Fresh {
        Fresh {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            imds: Silent::start(),
        }
    }

    fn kmsrot(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmsrot"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &self.imds.url)
            .current_dir(self.work.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Access keys in the environment, as `aws configure export-credentials`
    /// or a CI secret would put them.
    fn with_keys(&self) -> Command {
        let mut cmd = self.kmsrot();
        cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE").env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        cmd
    }

    fn out(&self) -> PathBuf {
        self.work.path().join("out")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.home.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Nothing was written where the run was asked to write.
    fn assert_nothing_written(&self, what: &str) {
        let left: Vec<_> = std::fs::read_dir(self.work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{what} wrote {left:?}");
    }
}

/// Runs, and checks the contract of every case: exit 2, an `error:` line,
/// at least one hint, in time, nothing written.
fn contact_failure(fresh: &Fresh, name: &str, cmd: &mut Command) -> Seen {
    let started = Instant::now();
    let seen = kmsrot_snapshot!(name, cmd);
    let took = started.elapsed();
    assert!(took < LIMIT, "{name} took {took:?}\n{}", seen.stderr);
    assert_eq!(seen.code, 2, "{name}\n{}", seen.stderr);
    let lines: Vec<&str> = seen.stderr.lines().collect();
    assert!(lines[0].starts_with("error: "), "{name}: {}", seen.stderr);
    assert!(
        lines[1..].iter().all(|l| l.starts_with("hint: ")) && lines.len() > 1,
        "{name}: one line of cause, then hints only:\n{}",
        seen.stderr
    );
    assert!(seen.stdout.is_empty(), "{name}: {}", seen.stdout);
    fresh.assert_nothing_written(name);
    seen
}

#[test]
fn no_credentials_stops_every_command_that_calls_aws() {
    let f = Fresh::new();
    let out = f.out();
    let first = contact_failure(
        &f,
        "no_credentials",
        f.kmsrot()
            .args(["--region", "us-east-1", "inventory", "--out"])
            .arg(&out),
    );
    assert!(
        first.stderr.starts_with("error: no AWS credentials found"),
        "{}",
        first.stderr
    );
    // Quiet by default: no SDK log line (IMDS, the provider chain) on stderr.
    assert!(!first.stderr.contains("WARN"), "{}", first.stderr);

    // The same first line from every command that calls AWS, before any
    // work: nothing read, nothing written. (The sample bundle's report is
    // written only with --sign-with/--upload, which need AWS.)
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle");
    let o = out.display().to_string();
    let runs: Vec<Vec<String>> = vec![
        vec!["collect".into(), "--out".into(), o.clone()],
        vec!["audit".into(), "--out".into(), o.clone()],
        vec!["diagnose".into(), "alias/orders".into()],
        vec![
            "trail".into(),
            "scan".into(),
            "lookup".into(),
            "--out".into(),
            o.clone(),
        ],
        vec![
            "trail".into(),
            "scan".into(),
            "s3://trail-bucket/logs".into(),
            "--out".into(),
            o.clone(),
        ],
        vec![
            "trail".into(),
            "scan".into(),
            "lake:eds-0123456789ab".into(),
            "--out".into(),
            o.clone(),
        ],
        vec![
            "trail".into(),
            "scan".into(),
            "athena:cloudtrail.trail_logs".into(),
            "--out".into(),
            o.clone(),
        ],
        vec![
            "collect".into(),
            "--trail".into(),
            "athena:cloudtrail.trail_logs".into(),
            "--out".into(),
            o.clone(),
        ],
        vec![
            "report".into(),
            sample.display().to_string(),
            "--out".into(),
            o.clone(),
            "--sign-with".into(),
            "alias/signing".into(),
        ],
        vec!["apply".into(), "approval.json".into()],
        vec![
            "verify".into(),
            "journal.jsonl".into(),
            "--out".into(),
            o.clone(),
        ],
    ];
    let expected = first.stderr.lines().next().unwrap();
    for args in runs {
        let started = Instant::now();
        let seen = run(f.kmsrot().args(["--region", "us-east-1"]).args(&args));
        assert!(
            started.elapsed() < LIMIT,
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(seen.code, 2, "{args:?}\n{}", seen.stderr);
        assert_eq!(seen.stderr.lines().next(), Some(expected), "{args:?}");
        f.assert_nothing_written(&args.join(" "));
    }
}

#[test]
fn no_credentials_and_no_region_still_fails_fast() {
    // Neither a region nor credentials: both chains end at IMDS, which
    // never answers. The bound on IMDS keeps this to a few seconds.
    let f = Fresh::new();
    let started = Instant::now();
    let seen = run(f.kmsrot().args(["inventory", "--out"]).arg(f.out()));
    let took = started.elapsed();
    assert_eq!(seen.code, 2, "{}", seen.stderr);
    assert!(
        seen.stderr.starts_with("error: no AWS credentials found"),
        "{}",
        seen.stderr
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    f.assert_nothing_written("inventory");
}

#[test]
fn the_sdk_speaks_only_when_rust_log_asks() {
    let f = Fresh::new();
    let seen = run(f
        .kmsrot()
        .env("RUST_LOG", "aws_config=debug")
        .args(["--region", "us-east-1", "inventory", "--out"])
        .arg(f.out()));
    assert_eq!(seen.code, 2);
    assert!(
        seen.stderr.contains("aws_config") || seen.stderr.contains("DEBUG"),
        "{}",
        seen.stderr
    );
    assert!(seen
        .stderr
        .lines()
        .any(|l| l.starts_with("error: no AWS credentials found")));
}

#[test]
fn an_unknown_profile_names_the_defined_ones() {
    let f = Fresh::new();
    f.write(
        ".aws/config",
        "[default]\nregion = us-east-1\n\n[profile audit]\nregion = eu-west-1\n",
    );
    f.write(
        ".aws/credentials",
        "[audit]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    );
    contact_failure(
        &f,
        "unknown_profile",
        f.kmsrot()
            .args(["--profile", "prod-audit", "inventory", "--out"])
            .arg(f.out()),
    );
    // Chosen through the environment, the hint says how to undo that.
    let seen = run(f
        .kmsrot()
        .env("AWS_PROFILE", "prod-audit")
        .args(["inventory", "--out"])
        .arg(f.out()));
    assert_eq!(seen.code, 2);
    assert!(
        seen.stderr.contains("(from AWS_PROFILE)"),
        "{}",
        seen.stderr
    );
    assert!(seen.stderr.contains("unset AWS_PROFILE"), "{}", seen.stderr);
    f.assert_nothing_written("AWS_PROFILE");
}

#[test]
fn a_source_profile_that_is_not_defined_is_named() {
    // The SDK takes a missing source_profile for "no credentials" and goes
    // on to IMDS; the user needs the line of the file that is wrong.
    let f = Fresh::new();
    f.write(
        ".aws/config",
        "[profile auditor]\nrole_arn = arn:aws:iam::111122223333:role/KmsAuditor\nsource_profile = base\nregion = us-east-1\n",
    );
    let seen = contact_failure(
        &f,
        "source_profile_missing",
        f.kmsrot()
            .args(["--profile", "auditor", "inventory", "--out"])
            .arg(f.out()),
    );
    assert!(
        seen.stderr
            .contains("names source_profile `base`, which is not defined"),
        "{}",
        seen.stderr
    );
}

#[test]
fn a_web_identity_token_file_that_cannot_be_read_is_named() {
    // EKS/GitHub OIDC style, with the token file not mounted.
    let f = Fresh::new();
    let seen = contact_failure(
        &f,
        "web_identity_token_missing",
        f.kmsrot()
            .env("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/KmsAuditor")
            .env(
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            )
            .args(["--region", "us-east-1", "inventory", "--out"])
            .arg(f.out()),
    );
    assert!(
        seen.stderr.contains(
            "the web identity token file /var/run/secrets/eks.amazonaws.com/serviceaccount/token cannot be read"
        ),
        "{}",
        seen.stderr
    );
}

/// `~/.aws/config` as `aws configure sso` writes it for an sso-session.
const SSO_CONFIG: &str = "[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = ReadOnlyAccess
region = us-east-1

[sso-session corp]
sso_start_url = https://d-9067642ac7.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

/// The token cache file `aws sso login` writes: named by the SHA-1 of the
/// session name, holding the access token, its expiry, the client
/// registration and the refresh token.
fn write_sso_token(f: &Fresh, expires_at: &str, registration_expires_at: &str) -> PathBuf {
    let name = hex_sha1("corp");
    f.write(
        &format!(".aws/sso/cache/{name}.json"),
        &serde_json::json!({
            "startUrl": "https://d-9067642ac7.awsapps.com/start",
            "region": "us-east-1",
            "accessToken": "aoaAAAAAGd-EXAMPLE-ACCESS-TOKEN",
            "expiresAt": expires_at,
            "clientId": "ExampleClientId12345EXAMPLE",
            "clientSecret": "ExampleClientSecret-EXAMPLE",
            "registrationExpiresAt": registration_expires_at,
            "refreshToken": "aorvJYubGpU6i91YnH7Mfo-EXAMPLE-REFRESH-TOKEN",
        })
        .to_string(),
    )
}

fn hex_sha1(s: &str) -> String {
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn an_expired_sso_session_says_to_log_in_again() {
    // The common case: the access token expired overnight, the client
    // registration is still valid, so the SDK tries to refresh the token
    // (refused: the session itself ended), then asks the portal with the
    // expired token (refused).
    let f = Fresh::new();
    f.write(".aws/config", SSO_CONFIG);
    write_sso_token(&f, "2024-01-01T08:00:00Z", "2099-01-01T00:00:00Z");
    let sso = Canned::sso_expired();
    let seen = contact_failure(
        &f,
        "sso_session_expired",
        f.kmsrot()
            .env("AWS_ENDPOINT_URL_SSO_OIDC", &sso.url)
            .env("AWS_ENDPOINT_URL_SSO", &sso.url)
            .env("AWS_PROFILE", "dev")
            .args(["inventory", "--out"])
            .arg(f.out()),
    );
    assert!(seen.stderr.contains("aws sso login --profile dev"));
    let asked: Vec<String> = sso
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        asked.iter().any(|a| a == "POST /token"),
        "a refresh was tried: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|a| a.starts_with("GET /federation/credentials")),
        "the portal was asked: {asked:?}"
    );
}

#[test]
fn an_sso_session_that_cannot_refresh_or_never_logged_in() {
    // The client registration expired too: the SDK cannot refresh, and
    // says so without a network call.
    let f = Fresh::new();
    f.write(".aws/config", SSO_CONFIG);
    let token = write_sso_token(&f, "2024-01-01T08:00:00Z", "2024-01-01T00:00:00Z");
    let sso = Canned::sso_expired();
    let cmd = |f: &Fresh| {
        let mut c = f.kmsrot();
        c.env("AWS_ENDPOINT_URL_SSO_OIDC", &sso.url)
            .env("AWS_ENDPOINT_URL_SSO", &sso.url)
            .args(["--profile", "dev", "inventory", "--out"])
            .arg(f.out());
        c
    };
    let seen = run(&mut cmd(&f));
    assert_eq!(seen.code, 2, "{}", seen.stderr);
    assert!(
        seen.stderr.starts_with("error: the SSO session for profile `dev` has expired\nhint: sign in again: aws sso login --profile dev"),
        "{}",
        seen.stderr
    );
    assert!(sso.seen().is_empty(), "{:?}", sso.seen());

    // `aws sso logout` removed the token: not logged in.
    std::fs::remove_file(token).unwrap();
    contact_failure(&f, "sso_not_logged_in", &mut cmd(&f));
}

#[test]
fn a_legacy_sso_profile_whose_token_expired() {
    // The older form: `sso_start_url` in the profile, no sso-session; the
    // cache file is named by the SHA-1 of the start URL and holds no refresh
    // token. The SDK hands the expired token to the portal, which refuses it.
    let f = Fresh::new();
    let start = "https://d-9067642ac7.awsapps.com/start";
    f.write(
        ".aws/config",
        &format!("[profile legacy]\nsso_start_url = {start}\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = ReadOnlyAccess\nregion = us-east-1\n"),
    );
    f.write(
        &format!(".aws/sso/cache/{}.json", hex_sha1(start)),
        &serde_json::json!({
            "startUrl": start,
            "region": "us-east-1",
            "accessToken": "aoaAAAAAGd-EXAMPLE-ACCESS-TOKEN",
            "expiresAt": "2024-01-01T08:00:00Z",
        })
        .to_string(),
    );
    let sso = Canned::sso_expired();
    let seen = contact_failure(
        &f,
        "sso_legacy_expired",
        f.kmsrot()
            .env("AWS_ENDPOINT_URL_SSO", &sso.url)
            .args(["--profile", "legacy", "collect", "--out"])
            .arg(f.out()),
    );
    assert!(
        seen.stderr
            .starts_with("error: the SSO session for profile `legacy` has expired"),
        "{}",
        seen.stderr
    );
    assert!(seen.stderr.contains("aws sso login --profile legacy"));
}

/// moto accepts any key; the proxy in front of it answers GetCallerIdentity
/// as STS does for keys it refuses.
fn refused_by_sts(name: &str, code: &str, message: &str, session_token: bool) -> Seen {
    let moto = Moto::start();
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("GetCallerIdentity").fail_query(403, code, message)],
    );
    let f = Fresh::new();
    let mut cmd = f.with_keys();
    if session_token {
        cmd.env("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN");
    }
    let seen = contact_failure(
        &f,
        name,
        cmd.args([
            "--region",
            "us-east-1",
            "--endpoint-url",
            &proxy.url,
            "inventory",
            "--out",
        ])
        .arg(f.out()),
    );
    // Only the caller check reached AWS: no KMS call was made.
    assert_eq!(
        proxy.requests().keys().cloned().collect::<Vec<_>>(),
        vec!["GetCallerIdentity".to_string()]
    );
    seen
}

#[test]
fn keys_sts_does_not_recognise_are_refused_up_front() {
    refused_by_sts(
        "sts_invalid_client_token_id",
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        false,
    );
}

#[test]
fn an_expired_session_token_is_refused_up_front() {
    refused_by_sts(
        "sts_expired_token",
        "ExpiredToken",
        "The security token included in the request is expired",
        true,
    );
}

#[test]
fn a_refused_connection_is_unreachable_not_partial() {
    let f = Fresh::new();
    let seen = contact_failure(
        &f,
        "endpoint_refuses",
        f.with_keys()
            .args([
                "--region",
                "us-east-1",
                "--endpoint-url",
                &refused_url(),
                "audit",
                "--out",
            ])
            .arg(f.out()),
    );
    assert!(
        seen.stderr.contains("connection refused"),
        "{}",
        seen.stderr
    );
}

#[test]
fn a_host_name_that_does_not_resolve() {
    // `.invalid` never resolves (RFC 6761 reserves it): a resolver answers
    // NXDOMAIN, and a machine with no network fails the lookup at once.
    let f = Fresh::new();
    let seen = contact_failure(
        &f,
        "endpoint_dns",
        f.with_keys()
            .args([
                "--region",
                "us-east-1",
                "--endpoint-url",
                "https://kms.kmsrot-first-contact.invalid",
                "collect",
                "--out",
            ])
            .arg(f.out()),
    );
    assert!(
        seen.stderr
            .starts_with("error: could not reach AWS at https://kms.kmsrot-first-contact.invalid: the host name does not resolve (DNS)"),
        "{}",
        seen.stderr
    );
}

#[test]
fn an_endpoint_that_never_answers_fails_within_the_budget() {
    let f = Fresh::new();
    let silent = Silent::start();
    let seen = contact_failure(
        &f,
        "endpoint_never_answers",
        f.with_keys()
            .args([
                "--region",
                "us-east-1",
                "--endpoint-url",
                &silent.url,
                "inventory",
                "--out",
            ])
            .arg(f.out()),
    );
    assert!(seen.stderr.contains("no answer in time"), "{}", seen.stderr);
}

#[test]
fn an_endpoint_that_does_not_speak_tls() {
    let f = Fresh::new();
    let plain = PlainHttp::start();
    let https = plain.url.replace("http://", "https://");
    let seen = contact_failure(
        &f,
        "endpoint_not_tls",
        f.with_keys()
            .args([
                "--region",
                "us-east-1",
                "--endpoint-url",
                &https,
                "inventory",
                "--out",
            ])
            .arg(f.out()),
    );
    assert!(
        seen.stderr.contains("TLS handshake failed"),
        "{}",
        seen.stderr
    );
}

#[test]
fn kms_unreachable_in_every_region_is_exit_2_not_partial() {
    // STS answers (moto), KMS is nowhere: a network that reaches one AWS
    // endpoint and not another. Not one region could be read, so this is
    // not partial coverage.
    let moto = Moto::start();
    let f = Fresh::new();
    let seen = run(f
        .with_keys()
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_ENDPOINT_URL_KMS", refused_url())
        .env("AWS_MAX_ATTEMPTS", "2")
        .args([
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
            "inventory",
            "--out",
        ])
        .arg(f.out()));
    assert_eq!(seen.code, 2, "{}", seen.stderr);
    assert!(
        seen.stderr.starts_with(
            "error: could not reach AWS at the KMS endpoint of eu-west-1, us-east-1: connection refused"
        ),
        "{}",
        seen.stderr
    );
    f.assert_nothing_written("inventory");
}

#[test]
fn a_role_sts_will_not_let_the_profile_assume() {
    // A profile that assumes a role from another profile's keys, the
    // everyday audit setup; the role's trust policy does not allow it. The
    // SDK's STS client for AssumeRole goes where AWS_ENDPOINT_URL_STS says.
    let moto = Moto::start();
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("AssumeRole").fail_query(
            403,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/KmsAuditor",
        )],
    );
    let f = Fresh::new();
    f.write(
        ".aws/config",
        "[profile auditor]\nrole_arn = arn:aws:iam::111122223333:role/KmsAuditor\nsource_profile = base\nregion = us-east-1\n\n[profile base]\nregion = us-east-1\n",
    );
    f.write(
        ".aws/credentials",
        "[base]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    );
    let seen = contact_failure(
        &f,
        "assume_role_refused",
        f.kmsrot()
            .env("AWS_ENDPOINT_URL_STS", &proxy.url)
            .args(["--profile", "auditor", "inventory", "--out"])
            .arg(f.out()),
    );
    assert!(
        seen.stderr
            .contains("sts:AssumeRole was refused: AccessDenied"),
        "{}",
        seen.stderr
    );
    assert_eq!(proxy.requests().get("AssumeRole"), Some(&1));
}
