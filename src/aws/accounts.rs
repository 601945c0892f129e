//! Which accounts a run reads, and who they are.
//!
//! Without `--accounts` or `--ou` a run reads the caller's account alone,
//! with the caller's credentials, as it always has. With them, the selection
//! is resolved once ([`resolve`]) into an [`AccountPlan`]: every account with
//! its name, OU path and organization state, the role kmsrot will assume in
//! it, and, for an account it will not try (SUSPENDED, PENDING_CLOSURE...),
//! why. The calling account is read with its own credentials, never through
//! a role.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use anyhow::Result;
use aws_config::SdkConfig;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use super::{arn_partition, CallerIdentity, ErrorInfo};
use crate::error::Error;

/// The role AWS Organizations creates in every account it creates, trusted
/// by the management account.
pub const DEFAULT_ROLE_NAME: &str = "OrganizationAccountAccessRole";

/// Requests in flight across every account and region of a run, unless
/// `--max-concurrency` says otherwise. KMS's request quotas are per account
/// and Region and shared with everything else that account runs; the tightest
/// one kmsrot meets is ListKeyRotations at 100 requests a second. One account
/// and Region never has more than `--concurrency` (16) keys in flight, which
/// at a 50 ms round trip is at most 320 requests a second of which one in
/// five is ListKeyRotations (64 a second); 64 in all lets four such
/// account-Regions, or many smaller ones, run at once, and keeps the
/// caller's own sockets and memory bounded.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// The account flags, after parsing and checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOptions {
    /// `--accounts org`: every account of the organization.
    pub org: bool,
    /// Accounts named with `--accounts ID,...` or `--accounts-file`.
    pub ids: Vec<String>,
    /// `--ou`: the accounts under these OUs (or roots), recursively.
    pub ous: Vec<String>,
    pub role_name: String,
    pub external_id: Option<String>,
    pub session_name: String,
    /// One budget of requests in flight for the whole run.
    pub max_concurrency: usize,
}

impl Default for AccountOptions {
    fn default() -> Self {
        AccountOptions {
            org: false,
            ids: Vec::new(),
            ous: Vec::new(),
            role_name: DEFAULT_ROLE_NAME.into(),
            external_id: None,
            session_name: default_session_name(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

impl AccountOptions {
    /// True when the run reads accounts other than (or as well as) the
    /// caller's by assuming a role: `--accounts` or `--ou` was given.
    pub fn is_multi_account(&self) -> bool {
        self.org || !self.ids.is_empty() || !self.ous.is_empty()
    }

    /// The role assumed in `account`, in the caller's partition.
    pub fn role_arn(&self, partition: &str, account: &str) -> String {
        format!("arn:{partition}:iam::{account}:role/{}", self.role_name)
    }

    /// How the selection was given, for the manifest.
    pub fn selected_by(&self) -> String {
        let mut parts = Vec::new();
        if self.org {
            parts.push("--accounts org".to_string());
        }
        if !self.ids.is_empty() {
            parts.push(format!("--accounts ({} named)", self.ids.len()));
        }
        for ou in &self.ous {
            parts.push(format!("--ou {ou}"));
        }
        if parts.is_empty() {
            "the caller's account".into()
        } else {
            parts.join(", ")
        }
    }
}

/// `kmsrot-<user>`: the session name CloudTrail shows in every member
/// account, so the people there can tell who read their keys. STS allows
/// `[\w+=,.@-]`, 2 to 64 characters.
pub fn default_session_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .collect();
    let name = if user.is_empty() {
        "kmsrot".to_string()
    } else {
        format!("kmsrot-{user}")
    };
    name.chars().take(64).collect()
}

/// An AWS account id: twelve digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// One `--accounts` value: `org`, or ids separated by commas.
pub fn parse_accounts_value(value: &str) -> Result<(bool, Vec<String>)> {
    let mut org = false;
    let mut ids = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("org") {
            org = true;
        } else if is_account_id(part) {
            ids.push(part.to_string());
        } else {
            return Err(Error::usage(
                format!("--accounts: `{part}` is neither `org` nor a 12-digit account id"),
                "write --accounts org, or --accounts 111122223333,444455556666",
            ));
        }
    }
    if !org && ids.is_empty() {
        return Err(Error::usage(
            "--accounts: no account given",
            "write --accounts org, or --accounts 111122223333,444455556666",
        ));
    }
    Ok((org, ids))
}

/// `--accounts-file`: one account id per line; `#` starts a comment, blank
/// lines are ignored. A line that is not an id fails with its number.
pub fn read_accounts_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::input(
            path,
            format!("cannot read the accounts file: {e}"),
            "give a file with one 12-digit account id per line",
        )
    })?;
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        if !is_account_id(id) {
            return Err(Error::input(
                path,
                format!("line {}: `{}` is not a 12-digit account id", n + 1, id),
                "one 12-digit account id per line; `#` starts a comment",
            ));
        }
        ids.push(id.to_string());
    }
    if ids.is_empty() {
        return Err(Error::input(
            path,
            "no account id in the file",
            "one 12-digit account id per line; `#` starts a comment",
        ));
    }
    Ok(ids)
}

/// An OU id (`ou-xxxx-yyyyyyyy`) or a root id (`r-xxxx`).
pub fn check_ou(s: &str) -> Result<String> {
    let ok_chars = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let ok = match s.strip_prefix("ou-") {
        Some(rest) => {
            let mut parts = rest.split('-');
            matches!((parts.next(), parts.next(), parts.next()),
                (Some(a), Some(b), None) if (4..=32).contains(&a.len()) && (8..=32).contains(&b.len()) && ok_chars(a) && ok_chars(b))
        }
        None => s
            .strip_prefix("r-")
            .is_some_and(|r| (4..=32).contains(&r.len()) && ok_chars(r)),
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::usage(
            format!("--ou: `{s}` is not an organizational unit id"),
            "write the OU's id, such as ou-ab12-34cd56ef (or a root, r-ab12); `aws organizations list-organizational-units-for-parent` lists them",
        ))
    }
}

/// IAM role names (with an optional path): `[\w+=,.@-]`, `/` between path
/// parts, at most 64 characters for the name itself.
pub fn check_role_name(s: &str) -> Result<String> {
    let name = s.rsplit('/').next().unwrap_or("");
    let ok = !name.is_empty()
        && name.len() <= 64
        && !s.starts_with('/')
        && s.split('/').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::usage(
            format!("--role-name: `{s}` is not an IAM role name"),
            "give the role's name (letters, digits and +=,.@_-), with its path if it has one: path/RoleName",
        ))
    }
}

/// STS: 2 to 1224 characters of `[\w+=,.@:/-]`.
pub fn check_external_id(s: &str) -> Result<String> {
    let ok = (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::usage(
            "--external-id: STS takes 2 to 1224 characters of letters, digits and +=,.@:/_-",
            "give the external id the member roles' trust policy names",
        ))
    }
}

/// STS: 2 to 64 characters of `[\w+=,.@-]`.
pub fn check_session_name(s: &str) -> Result<String> {
    let ok = (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::usage(
            format!("--role-session-name: `{s}` is not a valid session name"),
            "2 to 64 characters of letters, digits and +=,.@_-",
        ))
    }
}

/// One account of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountTarget {
    pub account_id: String,
    /// The account's name in the organization, when it was listed.
    pub name: Option<String>,
    /// Where it sits: `Root/Workloads/Prod`, or from the OU named with
    /// `--ou` (`ou-ab12-34cd56ef/Prod`); `None` when not known.
    pub ou_path: Option<String>,
    /// Its state in the organization (`ACTIVE`, `SUSPENDED`,
    /// `PENDING_CLOSURE`, ...), when it was listed.
    pub org_state: Option<String>,
    /// The caller's own account: read with the caller's credentials.
    pub is_caller: bool,
    /// The role assumed to read it; `None` for the caller's account.
    pub role_arn: Option<String>,
    /// Why it is not tried at all, if it is not.
    pub skip: Option<String>,
}

/// The organization, as DescribeOrganization answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInfo {
    pub id: String,
    pub management_account_id: Option<String>,
}

/// The accounts of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPlan {
    pub caller: CallerIdentity,
    pub organization: Option<OrgInfo>,
    pub selected_by: String,
    pub targets: Vec<AccountTarget>,
}

impl AccountPlan {
    /// The targets kmsrot will try to read.
    pub fn to_read(&self) -> impl Iterator<Item = &AccountTarget> {
        self.targets.iter().filter(|t| t.skip.is_none())
    }

    pub fn target(&self, account: &str) -> Option<&AccountTarget> {
        self.targets.iter().find(|t| t.account_id == account)
    }
}

/// An account's state, preferring `State` (AWS's current field) over
/// `Status` (retired on 2026-09-09).
fn account_state(a: &aws_sdk_organizations::types::Account) -> Option<String> {
    a.state()
        .map(|s| s.as_str().to_string())
        .or_else(|| a.status().map(|s| s.as_str().to_string()))
}

/// Only ACTIVE accounts are read. SUSPENDED and PENDING_CLOSURE accounts
/// are closing (AWS keeps them 90 days, unreachable); PENDING_ACTIVATION
/// ones never finished signing up; CLOSED ones are gone.
fn skip_reason(state: Option<&str>) -> Option<String> {
    match state {
        None | Some("ACTIVE") => None,
        Some(s) => Some(format!(
            "the organization lists it {s}: only ACTIVE accounts are read, so it was not tried"
        )),
    }
}

fn org_error<E, R>(call: &str, e: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let info = ErrorInfo::from_sdk(e);
    let hint = match info.code.as_str() {
        "AWSOrganizationsNotInUseException" => {
            "the caller's account is not in an organization: name the accounts with --accounts ID,... instead"
        }
        "AccessDeniedException" | "AccessDenied" => {
            "run from the management account or a delegated administrator, with the policy in docs/iam/org-management.json"
        }
        _ => "check the credentials and retry; `aws organizations list-accounts` should work with the same profile",
    };
    Error::aws(format!("organizations:{call}"), info, hint)
}

/// Every account of the organization (ListAccounts), as listed.
async fn list_org_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<Vec<aws_sdk_organizations::types::Account>> {
    let mut out = Vec::new();
    let mut pages = client
        .list_accounts()
        .max_results(20)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| org_error("ListAccounts", &e))?;
        out.extend(page.accounts().iter().cloned());
    }
    Ok(out)
}

/// What a walk of the tree below some parents found.
#[derive(Debug, Default)]
struct Tree {
    /// Account id → (the account as listed, the path of its parent).
    accounts: BTreeMap<String, (aws_sdk_organizations::types::Account, String)>,
}

/// Walks the OUs below `starts` (id, path shown for it), listing the
/// accounts of each (ListAccountsForParent) and its child OUs
/// (ListOrganizationalUnitsForParent), breadth first.
async fn walk(
    client: &aws_sdk_organizations::Client,
    starts: Vec<(String, String)>,
) -> Result<Tree> {
    let mut tree = Tree::default();
    let mut queue: VecDeque<(String, String)> = starts.into();
    let mut seen = BTreeSet::new();
    while let Some((parent, path)) = queue.pop_front() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        let mut pages = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .max_results(20)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| org_error(&format!("ListAccountsForParent {parent}"), &e))?;
            for a in page.accounts() {
                if let Some(id) = a.id() {
                    tree.accounts
                        .insert(id.to_string(), (a.clone(), path.clone()));
                }
            }
        }
        let mut pages = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .max_results(20)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                org_error(&format!("ListOrganizationalUnitsForParent {parent}"), &e)
            })?;
            for ou in page.organizational_units() {
                if let Some(id) = ou.id() {
                    let name = ou.name().unwrap_or(id);
                    queue.push_back((id.to_string(), format!("{path}/{name}")));
                }
            }
        }
    }
    Ok(tree)
}

/// The OU path of every account of the organization, from its roots
/// (ListRoots, then the walk). Only the manifest and the report need it.
pub async fn org_paths(config: &SdkConfig) -> Result<BTreeMap<String, String>, ErrorInfo> {
    let client = &aws_sdk_organizations::Client::new(config);
    let roots = client
        .list_roots()
        .send()
        .await
        .map_err(|e| ErrorInfo::from_sdk(&e))?;
    let starts = roots
        .roots()
        .iter()
        .filter_map(|r| {
            r.id()
                .map(|id| (id.to_string(), r.name().unwrap_or("Root").to_string()))
        })
        .collect();
    let tree = walk(client, starts)
        .await
        .map_err(|e| match e.downcast::<Error>() {
            Ok(Error::Aws { error, .. }) => error,
            Ok(other) => ErrorInfo::new("Error", other.to_string()),
            Err(other) => ErrorInfo::new("Error", other.to_string()),
        })?;
    Ok(tree
        .accounts
        .into_iter()
        .map(|(id, (_, path))| (id, path))
        .collect())
}

/// Resolves the selection into the run's accounts. Organizations is asked
/// only for `--accounts org` and `--ou`; a failure there fails the run,
/// since what was asked for cannot be known.
pub async fn resolve(
    config: &SdkConfig,
    caller: &CallerIdentity,
    opts: &AccountOptions,
) -> Result<AccountPlan> {
    let partition = arn_partition(&caller.arn).unwrap_or("aws").to_string();
    let mut plan = AccountPlan {
        caller: caller.clone(),
        organization: None,
        selected_by: opts.selected_by(),
        targets: Vec::new(),
    };
    let mut found: BTreeMap<String, AccountTarget> = BTreeMap::new();
    let target = |id: &str| AccountTarget {
        account_id: id.to_string(),
        name: None,
        ou_path: None,
        org_state: None,
        is_caller: id == caller.account,
        role_arn: (id != caller.account).then(|| opts.role_arn(&partition, id)),
        skip: None,
    };

    if opts.org || !opts.ous.is_empty() {
        // Organizations is a global service answered in us-east-1 (or the
        // partition's home region); the SDK's endpoint rules route it.
        let client = aws_sdk_organizations::Client::new(config);
        let org = client
            .describe_organization()
            .send()
            .await
            .map_err(|e| org_error("DescribeOrganization", &e))?;
        plan.organization = org.organization().map(|o| OrgInfo {
            id: o.id().unwrap_or_default().to_string(),
            management_account_id: o.master_account_id().map(str::to_string),
        });
        if opts.org {
            // OU paths come from a walk of the whole tree, which the caller
            // runs beside the reading ([`org_paths`]): nothing waits for it.
            for a in list_org_accounts(&client).await? {
                let Some(id) = a.id() else { continue };
                let mut t = target(id);
                t.name = a.name().map(str::to_string);
                t.org_state = account_state(&a);
                found.insert(id.to_string(), t);
            }
        }
        if !opts.ous.is_empty() {
            let starts = opts.ous.iter().map(|ou| (ou.clone(), ou.clone())).collect();
            let tree = walk(&client, starts).await?;
            for (id, (a, path)) in tree.accounts {
                let t = found.entry(id.clone()).or_insert_with(|| target(&id));
                t.name = t.name.take().or_else(|| a.name().map(str::to_string));
                t.org_state = t.org_state.take().or_else(|| account_state(&a));
                // With `--accounts org` too, the path from the root wins.
                t.ou_path = t.ou_path.take().or(Some(path));
            }
        }
    }
    for id in &opts.ids {
        found.entry(id.clone()).or_insert_with(|| target(id));
    }
    for t in found.values_mut() {
        // The caller's own account is always read: it is the one whose
        // credentials run kmsrot, whatever Organizations says of it.
        t.skip = if t.is_caller {
            None
        } else {
            skip_reason(t.org_state.as_deref())
        };
    }
    plan.targets = found.into_values().collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_values_take_org_and_ids() {
        assert_eq!(parse_accounts_value("org").unwrap(), (true, vec![]));
        assert_eq!(
            parse_accounts_value("111122223333, 444455556666").unwrap(),
            (false, vec!["111122223333".into(), "444455556666".into()])
        );
        assert!(parse_accounts_value("11112222333").is_err());
        assert!(parse_accounts_value("prod").is_err());
        assert!(parse_accounts_value(",").is_err());
    }

    #[test]
    fn the_accounts_file_names_its_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.txt");
        std::fs::write(&path, "# prod\n111122223333  # payments\n\n444455556666\n").unwrap();
        assert_eq!(
            read_accounts_file(&path).unwrap(),
            ["111122223333", "444455556666"]
        );
        std::fs::write(&path, "111122223333\nprod-account\n").unwrap();
        let e = crate::error::render(&read_accounts_file(&path).unwrap_err());
        assert!(e.contains("accounts.txt: line 2: `prod-account`"), "{e}");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(read_accounts_file(&path).is_err());
        assert!(read_accounts_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn names_are_checked_as_aws_checks_them() {
        assert!(check_ou("ou-ab12-34cd56ef").is_ok());
        assert!(check_ou("r-ab12").is_ok());
        assert!(check_ou("ou-AB12-34cd56ef").is_err());
        assert!(check_ou("ou-ab12").is_err());
        assert!(check_ou("111122223333").is_err());
        assert!(check_role_name("OrganizationAccountAccessRole").is_ok());
        assert!(check_role_name("audit/kmsrot-read").is_ok());
        assert!(check_role_name("bad name").is_err());
        assert!(check_role_name("/lead").is_err());
        assert!(check_external_id("a").is_err());
        assert!(check_external_id("kmsrot:audit/2026").is_ok());
        assert!(check_session_name("kmsrot-alice@example.com").is_ok());
        assert!(check_session_name("x").is_err());
        assert!(check_session_name("a b").is_err());
    }

    #[test]
    fn the_default_session_name_is_valid() {
        let s = default_session_name();
        assert!(s.starts_with("kmsrot"), "{s}");
        check_session_name(&s).unwrap();
    }

    #[test]
    fn only_active_accounts_are_tried() {
        assert_eq!(skip_reason(Some("ACTIVE")), None);
        assert_eq!(skip_reason(None), None);
        for s in [
            "SUSPENDED",
            "PENDING_CLOSURE",
            "PENDING_ACTIVATION",
            "CLOSED",
        ] {
            assert!(skip_reason(Some(s)).unwrap().contains(s));
        }
    }

    #[test]
    fn roles_are_named_in_the_callers_partition() {
        let o = AccountOptions {
            role_name: "audit/kmsrot".into(),
            ..AccountOptions::default()
        };
        assert_eq!(
            o.role_arn("aws-us-gov", "111122223333"),
            "arn:aws-us-gov:iam::111122223333:role/audit/kmsrot"
        );
        assert!(!AccountOptions::default().is_multi_account());
    }
}
