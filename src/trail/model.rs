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
}
