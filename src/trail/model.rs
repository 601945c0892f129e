//! The types the reader produces, kept free of polars and the AWS SDK so
//! the fuzz targets (`fuzz/`) can compile the reader on its own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The time window asked for; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// Accounts and regions asked for; empty means all.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

impl Scope {
    pub fn wants_account(&self, a: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|x| x == a)
    }
    pub fn wants_region(&self, r: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|x| x == r)
    }
}

/// One kept CloudTrail event, as the `events` frame holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub event_name: Option<String>,
    pub event_type: Option<String>,
    pub event_source: Option<String>,
    pub aws_region: Option<String>,
    /// The account that owns the key: the account of `key_arn` when the
    /// record names the key by ARN, else recipientAccountId. A call made
    /// from account B on account A's key is A's event.
    pub account_id: Option<String>,
    pub key_arn: Option<String>,
    /// The key as the record named it: a key id, or an alias (`alias/NAME`
    /// or the alias ARN). An alias is never turned into `key_arn` here; the
    /// rules resolve it through the inventory's aliases.
    pub key_id: Option<String>,
    /// `userIdentity.arn`: for an assumed role, the session.
    pub principal_arn: Option<String>,
    pub principal_type: Option<String>,
    /// `userIdentity.sessionContext.sessionIssuer.arn`: the role (with its
    /// path) behind an assumed-role session.
    pub session_issuer_arn: Option<String>,
    /// userIdentity.accountId: the account the caller belongs to.
    pub caller_account_id: Option<String>,
    pub invoked_by: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub rotation_type: Option<String>,
    pub rotation_period_days: Option<i64>,
    pub request_id: Option<String>,
    /// recipientAccountId: the account whose trail delivered this copy.
    pub recipient_account_id: Option<String>,
    /// sharedEventID: one id for the copies of a cross-account call that
    /// CloudTrail delivers to each account involved.
    pub shared_event_id: Option<String>,
    /// The other half of one on-demand rotation: on a `RotateKeyOnDemand`
    /// call, the eventID of the `RotateKey` service event it caused, and on
    /// that service event, the call's eventID.
    pub linked_event_id: Option<String>,
    /// The file or API that produced the row.
    pub source: String,
    /// Log file integrity of the file the row came from (`--validate` on an
    /// S3 archive): `valid`, `altered`, or `unverifiable` (no digest lists
    /// the file, or the digest could not be verified). None when not validated.
    #[serde(default)]
    pub log_integrity: Option<String>,
}

/// What a partition column of an Athena CloudTrail table holds
/// (`--athena-partitions ROLE=COLUMN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionRole {
    /// The delivery day as `yyyy/MM/dd`, as in AWS's partition-projection DDL.
    Date,
    Account,
    Region,
    /// The older console layout: the day split in three columns.
    Year,
    Month,
    Day,
}

impl PartitionRole {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "date" => PartitionRole::Date,
            "account" => PartitionRole::Account,
            "region" => PartitionRole::Region,
            "year" => PartitionRole::Year,
            "month" => PartitionRole::Month,
            "day" => PartitionRole::Day,
            _ => return None,
        })
    }
}

/// The partition columns of an Athena CloudTrail table, by role. Column
/// names are checked to be plain identifiers, so they can be quoted into SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AthenaPartitions {
    pub columns: Vec<(PartitionRole, String)>,
}

impl AthenaPartitions {
    /// AWS's projection DDL: one `timestamp` partition, `yyyy/MM/dd`.
    pub fn aws_default() -> Self {
        AthenaPartitions {
            columns: vec![(PartitionRole::Date, "timestamp".into())],
        }
    }

    pub fn column(&self, role: PartitionRole) -> Option<&str> {
        self.columns
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, c)| c.as_str())
    }

    /// Parses `date=timestamp,account=account,region=region` (or
    /// `year=year,month=month,day=day`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut columns: Vec<(PartitionRole, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((role, column)) = part.split_once('=') else {
                return Err(format!(
                    "`{part}` is not ROLE=COLUMN (roles: date, account, region, year, month, day)"
                ));
            };
            let role_name = role.trim().to_ascii_lowercase();
            let Some(role) = PartitionRole::parse(&role_name) else {
                return Err(format!(
                    "unknown partition role `{role_name}` (roles: date, account, region, year, month, day)"
                ));
            };
            // Glue keeps column names in lower case; anything but an
            // identifier is refused so it can be quoted into SQL as is.
            let column = column.trim().to_ascii_lowercase();
            let ident = !column.is_empty()
                && column.len() <= 255
                && column
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !column.as_bytes()[0].is_ascii_digit();
            if !ident {
                return Err(format!(
                    "`{column}` is not a column name (letters, digits and _ only)"
                ));
            }
            if columns.iter().any(|(r, _)| *r == role) {
                return Err(format!("partition role `{role_name}` is named twice"));
            }
            if columns.iter().any(|(_, c)| *c == column) {
                return Err(format!("column `{column}` is named for two roles"));
            }
            columns.push((role, column));
        }
        let has = |r| columns.iter().any(|(x, _)| *x == r);
        let split = [
            PartitionRole::Year,
            PartitionRole::Month,
            PartitionRole::Day,
        ];
        let n_split = split.iter().filter(|r| has(**r)).count();
        if n_split != 0 && n_split != 3 {
            return Err("year, month and day go together: name all three columns".into());
        }
        columns.sort();
        Ok(AthenaPartitions { columns })
    }
}

/// How the `athena:` source reaches Athena (the `--athena-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaSettings {
    pub workgroup: String,
    /// `s3://bucket/prefix/` for query results, when the workgroup sets none.
    pub output: Option<String>,
    pub catalog: String,
    pub partitions: AthenaPartitions,
    /// A query still queued or running after this long is stopped.
    pub timeout_secs: u64,
}

/// The default of `--athena-timeout`: ten minutes.
pub const DEFAULT_ATHENA_TIMEOUT_SECS: u64 = 600;

impl Default for AthenaSettings {
    fn default() -> Self {
        AthenaSettings {
            workgroup: "primary".into(),
            output: None,
            catalog: "AwsDataCatalog".into(),
            partitions: AthenaPartitions::aws_default(),
            timeout_secs: DEFAULT_ATHENA_TIMEOUT_SECS,
        }
    }
}
