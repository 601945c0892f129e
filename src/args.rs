//! Flag groups that several subcommands share, each defined once and
//! flattened where used, and the command-line names of library enums.
//!
//! This is the low level of ripgrep's two stages: these structs hold what the
//! user typed; `cli::run` and the methods here turn them into the library's
//! objects ([`Ctx`](crate::context::Ctx), [`ReadOptions`], [`Limits`]).

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::ValueEnum;

use crate::aws::accounts::{self, AccountOptions, DEFAULT_MAX_CONCURRENCY, DEFAULT_ROLE_NAME};
use crate::error::Error;
use crate::frames::time::{parse_since, parse_until, rfc3339};
use crate::inventory::Limits;
use crate::output::Format;
use crate::policy::Severity;
use crate::report::publish::LockMode;
use crate::trail::reader::{
    ReadOptions, DEFAULT_LATE_DELIVERY_DAYS, DEFAULT_MAX_LOG_BYTES, DEFAULT_QUERY_TIMEOUT_SECS,
};
use crate::trail::{
    sources, AthenaPartitions, AthenaSettings, Scope, Window, DEFAULT_ATHENA_TIMEOUT_SECS,
};

/// Which accounts a run reads, and how it reaches them: global flags, beside
/// `--profile` and `--region`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccountArgs {
    /// Accounts to read: `org` (every ACTIVE account of the organization,
    /// from the management or a delegated administrator account) or account
    /// ids, comma-separated; repeatable. Default: the caller's account.
    #[arg(
        id = "global_accounts",
        long = "accounts",
        global = true,
        value_name = "org|ID[,ID...]"
    )]
    pub accounts: Vec<String>,

    /// Read the accounts listed in FILE: one id per line, `#` comments.
    #[arg(
        id = "global_accounts_file",
        long = "accounts-file",
        global = true,
        value_name = "FILE"
    )]
    pub accounts_file: Option<PathBuf>,

    /// Read the accounts under this organizational unit (or root),
    /// recursively; repeatable.
    #[arg(id = "global_ou", long = "ou", global = true, value_name = "OU")]
    pub ous: Vec<String>,

    /// The role assumed in every account but the caller's.
    #[arg(id = "global_role_name", long = "role-name", global = true, value_name = "NAME", default_value = DEFAULT_ROLE_NAME)]
    pub role_name: String,

    /// The external id the member roles' trust policy requires.
    #[arg(
        id = "global_external_id",
        long = "external-id",
        global = true,
        value_name = "ID"
    )]
    pub external_id: Option<String>,

    /// The session name CloudTrail shows in each account [default: kmsrot-<user>].
    #[arg(
        id = "global_role_session_name",
        long = "role-session-name",
        global = true,
        value_name = "NAME"
    )]
    pub role_session_name: Option<String>,

    /// Requests in flight at once across every account and region: one
    /// budget for the whole run (sized for KMS's per-account request quotas).
    #[arg(id = "global_max_concurrency", long = "max-concurrency", global = true, value_name = "N", default_value_t = DEFAULT_MAX_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub max_concurrency: usize,
}

impl AccountArgs {
    /// The flags, checked as AWS checks them; the accounts file is read here,
    /// so a bad one fails before any AWS call.
    pub fn options(&self) -> Result<AccountOptions> {
        let mut opts = AccountOptions {
            role_name: accounts::check_role_name(&self.role_name)?,
            external_id: self
                .external_id
                .as_deref()
                .map(accounts::check_external_id)
                .transpose()?,
            max_concurrency: self.max_concurrency,
            ..AccountOptions::default()
        };
        if let Some(name) = &self.role_session_name {
            opts.session_name = accounts::check_session_name(name)?;
        }
        for value in &self.accounts {
            let (org, ids) = accounts::parse_accounts_value(value)?;
            opts.org |= org;
            opts.ids.extend(ids);
        }
        if let Some(file) = &self.accounts_file {
            opts.ids.extend(accounts::read_accounts_file(file)?);
        }
        for ou in &self.ous {
            opts.ous.push(accounts::check_ou(ou)?);
        }
        if opts.org && (!opts.ids.is_empty() || !opts.ous.is_empty()) {
            return Err(Error::usage(
                "--accounts org already reads every account of the organization",
                "drop the account ids and --ou, or drop `org` to read only those",
            ));
        }
        opts.ids.sort();
        opts.ids.dedup();
        opts.ous.sort();
        opts.ous.dedup();
        Ok(opts)
    }
}

/// `--since` / `--until`: the audit window.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WindowArgs {
    /// Start of the window: RFC 3339, or a date (its first instant, UTC).
    /// collect and audit default to --until minus the policy's audit_window_days.
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// End of the window: RFC 3339, or a date (its last instant, UTC).
    /// Default: now (for audit, also the date findings are judged at).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
}

impl WindowArgs {
    /// The window as given; a start after the end is a usage error.
    pub fn window(&self) -> Result<Window> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s > u {
                return Err(Error::usage(
                    format!("--since {} is after --until {}", rfc3339(s), rfc3339(u)),
                    "swap the two times",
                ));
            }
        }
        Ok(Window {
            since: self.since,
            until: self.until,
        })
    }
}

/// Which CloudTrail events to keep, whatever the source.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrailFilterArgs {
    /// Keep only CloudTrail events of this account (recipientAccountId); repeatable.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Keep every KMS event (Decrypt, GenerateDataKey, ...), not only
    /// rotation, key-lifecycle and failed ones.
    #[arg(long)]
    pub include_data_events: bool,

    /// More event names to keep, one per line (`#` comments), added to
    /// queries/trail_events.txt.
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,

    #[command(flatten)]
    pub read: TrailReadArgs,
}

impl TrailFilterArgs {
    /// The reader's options for this filter over `window`, keeping the
    /// events of `regions` (empty: every region).
    pub fn read_options(&self, window: Window, regions: Vec<String>) -> Result<ReadOptions> {
        let extra_events = match &self.events_file {
            Some(path) => sources::read_event_file(path)?,
            None => Vec::new(),
        };
        Ok(self.read.apply(ReadOptions {
            include_data_events: self.include_data_events,
            window,
            scope: Scope {
                accounts: self.accounts.clone(),
                regions,
            },
            extra_events,
            ..ReadOptions::default()
        }))
    }
}

/// How CloudTrail sources are read: the limits that keep a scan bounded,
/// shared by `trail scan`, `collect` and `audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrailReadArgs {
    /// A log file, or gzip member, larger than this once inflated is
    /// reported corrupt and not read, so hostile input (a gzip bomb) cannot
    /// exhaust memory. Bytes, or with a KiB, MiB or GiB suffix.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_log_bytes: u64,

    /// S3 archive: day folders are delivery days, so they are listed up to
    /// this many days after --until to catch late deliveries; later ones are
    /// not read (coverage.json says so).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_LATE_DELIVERY_DAYS,
          value_parser = clap::value_parser!(u32).range(0..=365))]
    pub late_delivery_days: u32,

    /// CloudTrail Lake: seconds a query may wait or run before it is
    /// cancelled and the coverage marked partial.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_QUERY_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub query_timeout: u64,

    /// S3 archive: check CloudTrail's signed digest files (log file
    /// integrity validation): each digest's signature and chain, and each log
    /// file's SHA-256. Outcomes go to coverage.json; a file that is not valid
    /// makes the scan partial (exit 3).
    #[arg(long)]
    pub validate: bool,

    /// With --validate: the public keys, as `aws cloudtrail list-public-keys`
    /// prints them (JSON), instead of calling CloudTrail ListPublicKeys.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<PathBuf>,
    /// athena: the workgroup the queries run in.
    #[arg(long, value_name = "NAME", default_value = "primary")]
    pub athena_workgroup: String,

    /// athena: where Athena writes query results (s3://BUCKET/PREFIX/);
    /// needed when the workgroup sets no result location.
    #[arg(long, value_name = "S3_URL")]
    pub athena_output: Option<String>,

    /// athena: the data catalog that holds DATABASE.TABLE.
    #[arg(long, value_name = "NAME", default_value = "AwsDataCatalog")]
    pub athena_catalog: String,

    /// athena: the table's partition columns by role, ROLE=COLUMN,... with
    /// ROLE one of date (a yyyy/MM/dd string), account, region, or
    /// year,month,day (the older console layout). Each is restricted to the
    /// window, --account and --region so Athena reads only those folders.
    #[arg(long, value_name = "ROLE=COLUMN,...", default_value = "date=timestamp",
          value_parser = AthenaPartitions::parse)]
    pub athena_partitions: AthenaPartitions,

    /// athena: seconds a query may wait or run before it is stopped
    /// (StopQueryExecution) and the coverage marked partial.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_ATHENA_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub athena_timeout: u64,
}

impl Default for TrailReadArgs {
    fn default() -> Self {
        let athena = AthenaSettings::default();
        TrailReadArgs {
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            late_delivery_days: DEFAULT_LATE_DELIVERY_DAYS,
            query_timeout: DEFAULT_QUERY_TIMEOUT_SECS,
            validate: false,
            public_keys: None,
            athena_workgroup: athena.workgroup,
            athena_output: athena.output,
            athena_catalog: athena.catalog,
            athena_partitions: athena.partitions,
            athena_timeout: athena.timeout_secs,
        }
    }
}

impl TrailReadArgs {
    /// Sets these limits on `opts`.
    pub fn apply(&self, opts: ReadOptions) -> ReadOptions {
        ReadOptions {
            max_log_bytes: self.max_log_bytes,
            late_delivery_days: self.late_delivery_days,
            query_timeout_secs: self.query_timeout,
            validate: self.validate,
            public_keys: self.public_keys.clone(),
            athena: AthenaSettings {
                workgroup: self.athena_workgroup.clone(),
                output: self.athena_output.clone(),
                catalog: self.athena_catalog.clone(),
                partitions: self.athena_partitions.clone(),
                timeout_secs: self.athena_timeout,
            },
            ..opts
        }
    }
}

/// `1048576`, `512KiB`, `256MiB`, `1GiB` (also `K`, `M`, `G`, `KB`...: all
/// powers of 1024) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 268435456 or 256MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{s}`: unknown unit (use KiB, MiB or GiB)")),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes == 0 {
        return Err("the size must be more than 0".into());
    }
    Ok(bytes)
}

/// `--trail SOURCE...` and the event filter, for the commands that collect.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// A CloudTrail source: a folder, s3://BUCKET/PREFIX, lookup, lake:STORE,
    /// athena:DATABASE.TABLE. Repeatable.
    #[arg(long = "trail", value_name = "SOURCE")]
    pub trails: Vec<String>,

    #[command(flatten)]
    pub filter: TrailFilterArgs,
}

/// `--policy FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Policy file (kmsrot.toml): maximum period, grace, audit window,
    /// severity overrides, exemptions. Default: the built-in policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// How hard the inventory reads KMS.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
    /// Keys read at once in each region (bounded to stay under KMS quotas).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Regions read at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub region_concurrency: u16,
}

impl LimitsArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            regions: usize::from(self.region_concurrency),
            keys_per_region: usize::from(self.concurrency),
        }
    }
}

/// `--fail-on SEVERITY`: the gate of the commands that assess.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Exit 1 when an open finding is at least this severe.
    #[arg(long, value_enum, default_value_t = Severity::High)]
    pub fail_on: Severity,
}

// The library's enums, named on the command line. The impls live here so
// that nothing below the CLI depends on clap.

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &Format::ALL
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &Severity::ALL
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for LockMode {
    fn value_variants<'a>() -> &'a [Self] {
        &LockMode::ALL
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        window: WindowArgs,
        #[command(flatten)]
        sources: SourceArgs,
        #[command(flatten)]
        gate: GateArgs,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[arg(long, value_enum, default_value_t = LockMode::Compliance)]
        mode: LockMode,
    }

    #[test]
    fn shared_flags_parse_once_for_every_command() {
        let p = Probe::try_parse_from([
            "x",
            "--since",
            "2025-01-01",
            "--until",
            "2025-01-31",
            "--trail",
            "lookup",
            "--account",
            "111122223333",
            "--fail-on",
            "medium",
            "--output",
            "csv",
            "--mode",
            "governance",
        ])
        .unwrap();
        let w = p.window.window().unwrap();
        assert_eq!(
            w.since.map(rfc3339).as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        assert_eq!(p.sources.trails, ["lookup"]);
        assert_eq!(p.sources.filter.accounts, ["111122223333"]);
        assert_eq!(p.gate.fail_on, Severity::Medium);
        assert_eq!(p.output, Format::Csv);
        assert_eq!(p.mode, LockMode::Governance);
    }

    #[derive(Debug, Parser)]
    struct AccountProbe {
        #[command(flatten)]
        accounts: AccountArgs,
    }

    fn account_options(args: &[&str]) -> Result<AccountOptions> {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        AccountProbe::try_parse_from(argv)
            .unwrap()
            .accounts
            .options()
    }

    #[test]
    fn account_flags_resolve_once() {
        let o = account_options(&[]).unwrap();
        assert!(!o.is_multi_account());
        assert_eq!(o.role_name, "OrganizationAccountAccessRole");
        assert_eq!(o.max_concurrency, 64);
        let o = account_options(&[
            "--accounts",
            "444455556666,111122223333",
            "--accounts",
            "111122223333",
            "--ou",
            "ou-ab12-34cd56ef",
            "--role-name",
            "audit/kmsrot",
            "--external-id",
            "kmsrot-audit",
            "--role-session-name",
            "kmsrot-ci",
            "--max-concurrency",
            "16",
        ])
        .unwrap();
        assert_eq!(o.ids, ["111122223333", "444455556666"]);
        assert_eq!(o.ous, ["ou-ab12-34cd56ef"]);
        assert_eq!(
            (
                o.role_name.as_str(),
                o.external_id.as_deref(),
                o.session_name.as_str()
            ),
            ("audit/kmsrot", Some("kmsrot-audit"), "kmsrot-ci")
        );
        assert_eq!(o.max_concurrency, 16);
        assert!(account_options(&["--accounts", "org"]).unwrap().org);
        for bad in [
            &["--accounts", "org", "--ou", "ou-ab12-34cd56ef"][..],
            &["--accounts", "org,111122223333"],
            &["--accounts", "prod"],
            &["--ou", "prod"],
            &["--role-name", "no spaces"],
            &["--role-session-name", "x"],
        ] {
            assert!(account_options(bad).is_err(), "{bad:?}");
        }
        assert!(AccountProbe::try_parse_from(["x", "--max-concurrency", "0"]).is_err());
    }

    #[test]
    fn the_global_accounts_never_land_in_a_commands_account_filter() {
        // Same field name, two flags: `--accounts` (which accounts to read)
        // must not fill trail scan's `--account` (which events to keep).
        #[derive(Debug, Parser)]
        struct Both {
            #[command(flatten)]
            global: AccountArgs,
            #[command(flatten)]
            filter: TrailFilterArgs,
        }
        let b = Both::try_parse_from(["x", "--accounts", "111122223333,444455556666"]).unwrap();
        assert!(b.filter.accounts.is_empty(), "{:?}", b.filter.accounts);
        assert_eq!(b.global.options().unwrap().ids.len(), 2);
        let b = Both::try_parse_from(["x", "--account", "111122223333"]).unwrap();
        assert!(b.global.accounts.is_empty());
        assert_eq!(b.filter.accounts, ["111122223333"]);
    }

    #[test]
    fn a_reversed_window_is_a_usage_error() {
        let p =
            Probe::try_parse_from(["x", "--since", "2025-02-01", "--until", "2025-01-01"]).unwrap();
        let err = p.window.window().unwrap_err();
        assert_eq!(
            crate::error::exit_class(&err),
            crate::error::ExitClass::Usage
        );
        assert!(crate::error::render(&err).ends_with("hint: swap the two times"));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("268435456"), Ok(256 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn enum_names_are_the_library_names() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_str(s.as_str(), false), Ok(s));
        }
        for f in Format::ALL {
            assert_eq!(Format::from_str(f.as_str(), false), Ok(f));
        }
    }
}
