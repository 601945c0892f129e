//! Every frame's name, columns and types, declared once.
//!
//! Other modules name columns through the constants in [`col`] and build frames
//! through [`FrameBuilder`], so a schema change happens here and nowhere else.
//! The on-disk forms (Parquet, CSV, JSON) are written by [`crate::output`] from
//! these same declarations, which is what keeps the three files in agreement.
//! Times are written and read through [`time`].

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{
    DataFrame, DataType, IntoColumn, NamedFrom, PlSmallStr, Series, TimeUnit, TimeZone,
};

pub mod time;

/// How a column is typed in the frame and rendered in CSV/JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    /// UTC instant, millisecond precision; RFC 3339 in CSV and JSON.
    Time,
    /// List of strings in Parquet and JSON; joined in CSV with
    /// [`csv_list_separator`].
    StrList,
    /// A JSON document kept as text in the frame; embedded as JSON in `.json`.
    Json,
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// File stem: `keys` → keys.parquet, keys.csv, keys.json.
    pub name: &'static str,
    pub columns: &'static [Column],
}

impl Schema {
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    pub fn kind_of(&self, name: &str) -> Option<Kind> {
        self.columns.iter().find(|c| c.name == name).map(|c| c.kind)
    }

    /// An empty frame with the right dtypes; rules are tested against these.
    pub fn empty(&self) -> Result<DataFrame> {
        FrameBuilder::new(*self).finish()
    }
}

/// Column names. Grouped by frame where a name is frame-specific; shared names
/// (account_id, region...) are declared once and reused.
pub mod col {
    pub const ACCOUNT_ID: &str = "account_id";
    pub const REGION: &str = "region";
    pub const KEY_ID: &str = "key_id";
    pub const ARN: &str = "arn";
    pub const ALIASES: &str = "aliases";
    pub const DESCRIPTION: &str = "description";
    pub const KEY_MANAGER: &str = "key_manager";
    pub const KEY_SPEC: &str = "key_spec";
    pub const KEY_USAGE: &str = "key_usage";
    pub const ORIGIN: &str = "origin";
    pub const KEY_STATE: &str = "key_state";
    pub const CREATION_DATE: &str = "creation_date";
    pub const DELETION_DATE: &str = "deletion_date";
    pub const MULTI_REGION: &str = "multi_region";
    pub const MULTI_REGION_ROLE: &str = "multi_region_role";
    pub const PRIMARY_KEY_ARN: &str = "primary_key_arn";
    pub const CUSTOM_KEY_STORE_ID: &str = "custom_key_store_id";
    pub const TAGS: &str = "tags";
    pub const ROTATION_ENABLED: &str = "rotation_enabled";
    pub const ROTATION_PERIOD_DAYS: &str = "rotation_period_days";
    pub const NEXT_ROTATION_DATE: &str = "next_rotation_date";
    pub const ON_DEMAND_ROTATION_START_DATE: &str = "on_demand_rotation_start_date";
    pub const LAST_ROTATION_DATE: &str = "last_rotation_date";
    pub const ROTATION_COUNT: &str = "rotation_count";
    pub const ELIGIBILITY: &str = "eligibility";
    pub const ELIGIBILITY_REASON: &str = "eligibility_reason";
    pub const STATUS_ERROR: &str = "status_error";
    pub const KEY_POLICY: &str = "key_policy";

    pub const KEY_ARN: &str = "key_arn";
    pub const ROTATION_DATE: &str = "rotation_date";
    pub const ROTATION_TYPE: &str = "rotation_type";

    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_TIME: &str = "event_time";
    pub const EVENT_NAME: &str = "event_name";
    pub const EVENT_TYPE: &str = "event_type";
    pub const EVENT_SOURCE: &str = "event_source";
    pub const AWS_REGION: &str = "aws_region";
    pub const PRINCIPAL_ARN: &str = "principal_arn";
    pub const PRINCIPAL_TYPE: &str = "principal_type";
    pub const SESSION_ISSUER_ARN: &str = "session_issuer_arn";
    pub const INVOKED_BY: &str = "invoked_by";
    pub const SOURCE_IP: &str = "source_ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const ERROR_CODE: &str = "error_code";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const REQUEST_ID: &str = "request_id";
    pub const SOURCE: &str = "source";
    pub const CALLER_ACCOUNT_ID: &str = "caller_account_id";
    pub const RECIPIENT_ACCOUNT_ID: &str = "recipient_account_id";
    pub const SHARED_EVENT_ID: &str = "shared_event_id";
    pub const LINKED_EVENT_ID: &str = "linked_event_id";
    /// `valid`, `altered` or `unverifiable`: the log file integrity of the
    /// file an event came from (`--validate`); empty when not validated.
    pub const LOG_INTEGRITY: &str = "log_integrity";
    /// Derived at assess time: how an event's key_arn was found when the
    /// record named the key by alias (see `rules::derived`).
    pub const KEY_ARN_VIA: &str = "key_arn_via";

    pub const FINDING_ID: &str = "finding_id";
    pub const RULE_ID: &str = "rule_id";
    pub const SEVERITY: &str = "severity";
    pub const STATUS: &str = "status";
    pub const TITLE: &str = "title";
    pub const DETAIL: &str = "detail";
    pub const EVIDENCE: &str = "evidence";
    pub const CONTROLS: &str = "controls";
    pub const COMPLIANCE: &str = "compliance";
    pub const REMEDIATION: &str = "remediation";
    pub const EXEMPTION_REASON: &str = "exemption_reason";
    pub const EXEMPTION_EXPIRES: &str = "exemption_expires";
    /// Optional rule output that tells findings of one rule and key apart
    /// (the principal of a permission failure, the event of a disable).
    pub const SUBJECT: &str = "subject";

    pub const AS_OF: &str = "as_of";
    pub const WINDOW_START: &str = "window_start";
    pub const WINDOW_END: &str = "window_end";
    pub const MAX_PERIOD_DAYS: &str = "max_period_days";
    pub const GRACE_DAYS: &str = "grace_days";
    pub const TRAIL_SOURCES: &str = "trail_sources";

    pub const DAYS_IN_WINDOW: &str = "days_in_window";
    pub const DAYS_WITH_LOGS: &str = "days_with_logs";
    pub const DAYS_MISSING: &str = "days_missing";
    pub const MISSING_DAYS: &str = "missing_days";
    pub const DAYS_QUIET: &str = "days_quiet";
    /// Whether the day ledger was judged with CloudTrail's signed digests.
    pub const VALIDATED: &str = "validated";
    pub const FILE_KIND: &str = "file_kind";
    pub const OUTCOME: &str = "outcome";
    pub const FILES: &str = "files";
    pub const FIRST_HOUR: &str = "first_hour";
    pub const LAST_HOUR: &str = "last_hour";
    pub const HOURS: &str = "hours";
    pub const EXAMPLES: &str = "examples";
    pub const DAY: &str = "day";

    pub const SID: &str = "sid";
    pub const EFFECT: &str = "effect";
    pub const PRINCIPAL: &str = "principal";
    pub const ACTIONS: &str = "actions";
    pub const CONDITION: &str = "condition";
    pub const DENIED_ROTATION_ACTIONS: &str = "denied_rotation_actions";

    pub const STATEMENT_INDEX: &str = "statement_index";
    pub const EVERYONE: &str = "everyone";
    pub const UNAFFECTED: &str = "unaffected";
    pub const DENIES_ENABLE: &str = "denies_enable";
    pub const DENIES_ON_DEMAND: &str = "denies_on_demand";
    pub const UNIQUE_ID_PRINCIPALS: &str = "unique_id_principals";
    pub const NOT_PRINCIPAL: &str = "not_principal";

    pub const NEXT_DAY_LOGGED: &str = "next_day_logged";

    pub const HISTORY_READ: &str = "history_read";
    pub const LAST_ROTATION: &str = "last_rotation";
    pub const LAST_ROTATION_SOURCE: &str = "last_rotation_source";
    pub const ROTATION_ON_SINCE: &str = "rotation_on_since";
    pub const PERIOD_DAYS: &str = "period_days";
    pub const PERIOD_KNOWN: &str = "period_known";
    pub const SCHEDULE_START: &str = "schedule_start";
    pub const SCHEDULE_BASIS: &str = "schedule_basis";
    pub const DUE_AT: &str = "due_at";
    pub const MATERIAL_SINCE: &str = "material_since";

    pub const CALLER: &str = "caller";
    pub const SESSIONS: &str = "sessions";
    pub const SESSION_COUNT: &str = "session_count";
    pub const ACCESS_DENIED: &str = "access_denied";
    pub const FAILURES: &str = "failures";
    pub const FIRST_SEEN: &str = "first_seen";
    pub const LAST_SEEN: &str = "last_seen";
    pub const EVENT_IDS: &str = "event_ids";

    pub const IN_PROGRESS: &str = "in_progress";

    pub const MATCHED_KEYS: &str = "matched_keys";

    pub const KEY: &str = "key";
    pub const RULE: &str = "rule";
    pub const REASON: &str = "reason";
    pub const APPROVER: &str = "approver";
    pub const EXPIRES: &str = "expires";
    pub const EXPIRED: &str = "expired";

    pub const SOURCE_FILE: &str = "source_file";
    pub const RESOURCE: &str = "resource";
    pub const RESOURCE_TYPE: &str = "resource_type";
    pub const LINE: &str = "line";
}

const fn c(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

/// One row per KMS key (issue 2).
pub const KEYS: Schema = Schema {
    name: "keys",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ID, Kind::Str),
        c(col::ARN, Kind::Str),
        c(col::ALIASES, Kind::StrList),
        c(col::DESCRIPTION, Kind::Str),
        c(col::KEY_MANAGER, Kind::Str),
        c(col::KEY_SPEC, Kind::Str),
        c(col::KEY_USAGE, Kind::Str),
        c(col::ORIGIN, Kind::Str),
        c(col::KEY_STATE, Kind::Str),
        c(col::CREATION_DATE, Kind::Time),
        c(col::DELETION_DATE, Kind::Time),
        c(col::MULTI_REGION, Kind::Bool),
        c(col::MULTI_REGION_ROLE, Kind::Str),
        c(col::PRIMARY_KEY_ARN, Kind::Str),
        c(col::CUSTOM_KEY_STORE_ID, Kind::Str),
        c(col::TAGS, Kind::Json),
        c(col::ROTATION_ENABLED, Kind::Bool),
        c(col::ROTATION_PERIOD_DAYS, Kind::Int),
        c(col::NEXT_ROTATION_DATE, Kind::Time),
        c(col::ON_DEMAND_ROTATION_START_DATE, Kind::Time),
        c(col::LAST_ROTATION_DATE, Kind::Time),
        c(col::ROTATION_COUNT, Kind::Int),
        c(col::ELIGIBILITY, Kind::Str),
        c(col::ELIGIBILITY_REASON, Kind::Str),
        c(col::STATUS_ERROR, Kind::Str),
        c(col::KEY_POLICY, Kind::Json),
    ],
};

/// One row per completed rotation reported by ListKeyRotations.
pub const ROTATIONS: Schema = Schema {
    name: "rotations",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ID, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::ROTATION_DATE, Kind::Time),
        c(col::ROTATION_TYPE, Kind::Str),
    ],
};

/// One row per kept CloudTrail event (issue 3).
pub const EVENTS: Schema = Schema {
    name: "events",
    columns: &[
        c(col::EVENT_ID, Kind::Str),
        c(col::EVENT_TIME, Kind::Time),
        c(col::EVENT_NAME, Kind::Str),
        c(col::EVENT_TYPE, Kind::Str),
        c(col::EVENT_SOURCE, Kind::Str),
        c(col::AWS_REGION, Kind::Str),
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::KEY_ID, Kind::Str),
        c(col::PRINCIPAL_ARN, Kind::Str),
        c(col::PRINCIPAL_TYPE, Kind::Str),
        c(col::SESSION_ISSUER_ARN, Kind::Str),
        c(col::CALLER_ACCOUNT_ID, Kind::Str),
        c(col::INVOKED_BY, Kind::Str),
        c(col::SOURCE_IP, Kind::Str),
        c(col::USER_AGENT, Kind::Str),
        c(col::ERROR_CODE, Kind::Str),
        c(col::ERROR_MESSAGE, Kind::Str),
        c(col::ROTATION_TYPE, Kind::Str),
        c(col::ROTATION_PERIOD_DAYS, Kind::Int),
        c(col::REQUEST_ID, Kind::Str),
        c(col::RECIPIENT_ACCOUNT_ID, Kind::Str),
        c(col::SHARED_EVENT_ID, Kind::Str),
        c(col::LINKED_EVENT_ID, Kind::Str),
        c(col::SOURCE, Kind::Str),
        c(col::LOG_INTEGRITY, Kind::Str),
    ],
};

/// Columns added to a frame after bundles were first written. A bundle
/// written before lacks them; reading it fills them with nulls, which is
/// what an older reader knew about them: nothing.
pub const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("events", col::CALLER_ACCOUNT_ID),
    ("events", col::RECIPIENT_ACCOUNT_ID),
    ("events", col::SHARED_EVENT_ID),
    ("events", col::LINKED_EVENT_ID),
    ("events", col::SESSION_ISSUER_ARN),
    ("events", col::LOG_INTEGRITY),
];

/// One row per finding (issue 4). `finding_id` is stable for the same rule,
/// key and subject from one bundle to the next.
pub const FINDINGS: Schema = Schema {
    name: "findings",
    columns: &[
        c(col::FINDING_ID, Kind::Str),
        c(col::RULE_ID, Kind::Str),
        c(col::SEVERITY, Kind::Str),
        c(col::STATUS, Kind::Str),
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::TITLE, Kind::Str),
        c(col::DETAIL, Kind::Str),
        c(col::EVIDENCE, Kind::Str),
        c(col::CONTROLS, Kind::StrList),
        c(col::COMPLIANCE, Kind::Str),
        c(col::REMEDIATION, Kind::Str),
        c(col::EXEMPTION_REASON, Kind::Str),
        c(col::EXEMPTION_EXPIRES, Kind::Str),
        c(col::FIRST_SEEN, Kind::Time),
        c(col::LAST_SEEN, Kind::Time),
    ],
};

/// Tables the rules read besides the bundle's frames, derived by the engine
/// so that rules stay plain SQL. One row: the assessment's parameters.
pub const PARAMS: Schema = Schema {
    name: "params",
    columns: &[
        c(col::AS_OF, Kind::Time),
        c(col::WINDOW_START, Kind::Time),
        c(col::WINDOW_END, Kind::Time),
        c(col::MAX_PERIOD_DAYS, Kind::Int),
        c(col::GRACE_DAYS, Kind::Int),
        c(col::TRAIL_SOURCES, Kind::Int),
    ],
};

/// CloudTrail log coverage of the audit window, per account and region.
pub const TRAIL_DAYS: Schema = Schema {
    name: "trail_days",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::DAYS_IN_WINDOW, Kind::Int),
        c(col::DAYS_WITH_LOGS, Kind::Int),
        c(col::DAYS_MISSING, Kind::Int),
        c(col::MISSING_DAYS, Kind::Str),
        c(col::DAYS_QUIET, Kind::Int),
        c(col::VALIDATED, Kind::Bool),
    ],
};

/// Log file integrity problems (`--validate`), one row per account, region,
/// kind of file and outcome: how many files, which hours, a few of their keys.
pub const TRAIL_INTEGRITY_PROBLEMS: Schema = Schema {
    name: "trail_integrity_problems",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::FILE_KIND, Kind::Str),
        c(col::OUTCOME, Kind::Str),
        c(col::FILES, Kind::Int),
        c(col::FIRST_HOUR, Kind::Time),
        c(col::LAST_HOUR, Kind::Time),
        c(col::HOURS, Kind::Str),
        c(col::EXAMPLES, Kind::Str),
    ],
};

/// Each day (YYYY-MM-DD) that has at least one CloudTrail log file, and
/// whether the next day has one too: a file is filed under its delivery day,
/// so an event late on `day` can arrive in the next day's files.
pub const TRAIL_LOG_DAYS: Schema = Schema {
    name: "trail_log_days",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::DAY, Kind::Str),
        c(col::NEXT_DAY_LOGGED, Kind::Bool),
    ],
};

/// One row per key: its rotation clock (`rules::facts::key_clock`).
pub const KEY_CLOCK: Schema = Schema {
    name: "key_clock",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::HISTORY_READ, Kind::Bool),
        c(col::LAST_ROTATION, Kind::Time),
        c(col::LAST_ROTATION_SOURCE, Kind::Str),
        c(col::ROTATION_ON_SINCE, Kind::Time),
        c(col::PERIOD_DAYS, Kind::Int),
        c(col::PERIOD_KNOWN, Kind::Bool),
        c(col::NEXT_ROTATION_DATE, Kind::Time),
        c(col::SCHEDULE_START, Kind::Time),
        c(col::SCHEDULE_BASIS, Kind::Str),
        c(col::DUE_AT, Kind::Time),
        c(col::MATERIAL_SINCE, Kind::Time),
    ],
};

/// Failed rotation API calls in the window, one row per account, region,
/// key, caller (the role of an assumed-role session), API and error code.
pub const CALL_FAILURES: Schema = Schema {
    name: "call_failures",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::CALLER, Kind::Str),
        c(col::SESSIONS, Kind::Str),
        c(col::SESSION_COUNT, Kind::Int),
        c(col::EVENT_NAME, Kind::Str),
        c(col::ERROR_CODE, Kind::Str),
        c(col::ACCESS_DENIED, Kind::Bool),
        c(col::FAILURES, Kind::Int),
        c(col::FIRST_SEEN, Kind::Time),
        c(col::LAST_SEEN, Kind::Time),
        c(col::ERROR_MESSAGE, Kind::Str),
        c(col::EVENT_IDS, Kind::Str),
        c(col::KEY_ARN_VIA, Kind::Str),
    ],
};

/// Successful RotateKey and RotateKeyOnDemand events, each marked when it is
/// the on-demand rotation its key reports as still in progress, with the
/// event it is linked to (a RotateKeyOnDemand call and its RotateKey service
/// event are one rotation).
pub const TRAIL_ROTATIONS: Schema = Schema {
    name: "trail_rotations",
    columns: &[
        c(col::EVENT_ID, Kind::Str),
        c(col::EVENT_TIME, Kind::Time),
        c(col::EVENT_NAME, Kind::Str),
        c(col::ROTATION_TYPE, Kind::Str),
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::IN_PROGRESS, Kind::Bool),
        c(col::LINKED_EVENT_ID, Kind::Str),
    ],
};

/// Key policy statements, one row each, with the rotation actions a Deny
/// covers, whom it leaves out, and the principals it names by the bare unique
/// id AWS shows for a deleted user or role.
pub const POLICY_STATEMENTS: Schema = Schema {
    name: "policy_statements",
    columns: &[
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::STATEMENT_INDEX, Kind::Int),
        c(col::SID, Kind::Str),
        c(col::EFFECT, Kind::Str),
        c(col::PRINCIPAL, Kind::Str),
        c(col::ACTIONS, Kind::Str),
        c(col::CONDITION, Kind::Str),
        c(col::DENIED_ROTATION_ACTIONS, Kind::Str),
        c(col::DENIES_ENABLE, Kind::Bool),
        c(col::DENIES_ON_DEMAND, Kind::Bool),
        c(col::EVERYONE, Kind::Bool),
        c(col::UNAFFECTED, Kind::Str),
        c(col::UNIQUE_ID_PRINCIPALS, Kind::Str),
        c(col::NOT_PRINCIPAL, Kind::Bool),
    ],
};

/// The policy's exemptions, with whether each has expired as of the run:
/// one row per key an exemption matches (`key` as written in the policy,
/// `key_arn`, `account_id` and `region` of the matched key), or one row with
/// those empty when it matches no key of the bundle.
pub const EXEMPTIONS: Schema = Schema {
    name: "exemptions",
    columns: &[
        c(col::KEY, Kind::Str),
        c(col::RULE, Kind::Str),
        c(col::REASON, Kind::Str),
        c(col::APPROVER, Kind::Str),
        c(col::EXPIRES, Kind::Str),
        c(col::EXPIRED, Kind::Bool),
        c(col::ACCOUNT_ID, Kind::Str),
        c(col::REGION, Kind::Str),
        c(col::KEY_ARN, Kind::Str),
        c(col::MATCHED_KEYS, Kind::Int),
    ],
};

/// One row per KMS resource in a Terraform plan or state or a CloudFormation
/// template that `kmsrot iac` flags, cannot judge, or lists as not applicable.
/// The first seven columns are issue 14's contract; `status` (`open`,
/// `exempted`, `not_applicable`, `unknown`) and `line` (1-based, where the
/// resource or its property is written) follow.
pub const IAC_FINDINGS: Schema = Schema {
    name: "iac_findings",
    columns: &[
        c(col::SOURCE_FILE, Kind::Str),
        c(col::RESOURCE, Kind::Str),
        c(col::RESOURCE_TYPE, Kind::Str),
        c(col::RULE_ID, Kind::Str),
        c(col::SEVERITY, Kind::Str),
        c(col::DETAIL, Kind::Str),
        c(col::REMEDIATION, Kind::Str),
        c(col::STATUS, Kind::Str),
        c(col::LINE, Kind::Int),
    ],
};

/// One cell of a row handed to [`FrameBuilder::push`], beside its column's
/// name; its variant must match the column's [`Kind`].
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Str(Option<String>),
    Bool(Option<bool>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
    StrList(Vec<String>),
    Json(Option<String>),
}

impl Cell {
    pub fn str(v: impl Into<String>) -> Cell {
        Cell::Str(Some(v.into()))
    }
    pub fn opt_str<S: Into<String>>(v: Option<S>) -> Cell {
        Cell::Str(v.map(Into::into))
    }
}

enum ColumnData {
    Str(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    Time(Vec<Option<i64>>),
    StrList(Vec<Vec<String>>),
}

/// Builds a frame of one [`Schema`] row by row, checking each cell's column
/// name and type.
pub struct FrameBuilder {
    schema: Schema,
    data: Vec<ColumnData>,
    rows: usize,
}

impl FrameBuilder {
    pub fn new(schema: Schema) -> Self {
        let data = schema
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Str | Kind::Json => ColumnData::Str(Vec::new()),
                Kind::Bool => ColumnData::Bool(Vec::new()),
                Kind::Int => ColumnData::Int(Vec::new()),
                Kind::Time => ColumnData::Time(Vec::new()),
                Kind::StrList => ColumnData::StrList(Vec::new()),
            })
            .collect();
        FrameBuilder {
            schema,
            data,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row: `(column name, cell)` pairs in schema order. Names
    /// are checked, not only kinds, so two swapped cells of one kind are a
    /// bug caught here rather than a wrong column in an auditor's file.
    pub fn push(&mut self, row: Vec<(&str, Cell)>) -> Result<()> {
        if row.len() != self.schema.columns.len() {
            bail!(
                "internal: {} row has {} cells, schema has {} columns",
                self.schema.name,
                row.len(),
                self.schema.columns.len()
            );
        }
        // Check every cell before touching any column so a bad row leaves the
        // builder consistent.
        for (i, ((name, cell), column)) in row.iter().zip(self.schema.columns).enumerate() {
            if *name != column.name {
                bail!(
                    "internal: {} column {} is {}, the row gives {name} there",
                    self.schema.name,
                    i + 1,
                    column.name
                );
            }
            let ok = matches!(
                (cell, column.kind),
                (Cell::Str(_), Kind::Str)
                    | (Cell::Json(_), Kind::Json)
                    | (Cell::Bool(_), Kind::Bool)
                    | (Cell::Int(_), Kind::Int)
                    | (Cell::Time(_), Kind::Time)
                    | (Cell::StrList(_), Kind::StrList)
            );
            if !ok {
                bail!(
                    "internal: {}.{} is {:?}, got {:?}",
                    self.schema.name,
                    column.name,
                    column.kind,
                    cell
                );
            }
        }
        for ((_, cell), data) in row.into_iter().zip(self.data.iter_mut()) {
            match (cell, data) {
                (Cell::Str(v) | Cell::Json(v), ColumnData::Str(d)) => d.push(v),
                (Cell::Bool(v), ColumnData::Bool(d)) => d.push(v),
                (Cell::Int(v), ColumnData::Int(d)) => d.push(v),
                (Cell::Time(v), ColumnData::Time(d)) => d.push(v.map(|t| t.timestamp_millis())),
                (Cell::StrList(v), ColumnData::StrList(d)) => d.push(v),
                _ => unreachable!("cell kinds were checked above"),
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<DataFrame> {
        let mut columns = Vec::with_capacity(self.data.len());
        for (column, data) in self.schema.columns.iter().zip(self.data) {
            let name = PlSmallStr::from_static(column.name);
            let series = match data {
                ColumnData::Str(v) => Series::new(name, v),
                ColumnData::Bool(v) => Series::new(name, v),
                ColumnData::Int(v) => Series::new(name, v),
                ColumnData::Time(v) => Series::new(name, v)
                    .cast(&time_dtype())
                    .context("building a datetime column")?,
                ColumnData::StrList(v) => {
                    let inner: Vec<Series> = v
                        .into_iter()
                        .map(|items| Series::new(PlSmallStr::EMPTY, items))
                        .collect();
                    let mut s = Series::new(name.clone(), inner);
                    if s.dtype() != &DataType::List(Box::new(DataType::String)) {
                        // An all-empty list column comes out as List(Null).
                        s = s.cast(&DataType::List(Box::new(DataType::String)))?;
                    }
                    s
                }
            };
            columns.push(series.into_column());
        }
        DataFrame::new(self.rows, columns).context("assembling frame")
    }
}

/// How a list column is joined in CSV: `;` (aliases), except `controls`,
/// whose entries hold `;` in their own text, joined with ` | `.
pub fn csv_list_separator(column: &str) -> &'static str {
    if column == col::CONTROLS {
        " | "
    } else {
        ";"
    }
}

/// The dtype of every [`Kind::Time`] column.
pub fn time_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

/// `df` with exactly the schema's columns, in order: a frame from an older
/// bundle that lacks only [`ADDED_COLUMNS`] gets them as null columns;
/// anything else that differs is an error.
pub fn conform(df: DataFrame, schema: &Schema) -> Result<DataFrame> {
    if check_columns(&df, schema).is_ok() {
        return Ok(df);
    }
    let got: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let added = |name: &str| {
        ADDED_COLUMNS
            .iter()
            .any(|(frame, column)| *frame == schema.name && *column == name)
    };
    let older: Vec<&str> = schema
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|n| !added(n) || got.iter().any(|g| g == n))
        .collect();
    if got != older {
        check_columns(&df, schema)?;
    }
    let height = df.height();
    let empty = schema.empty()?;
    let mut columns = Vec::with_capacity(schema.columns.len());
    for c in schema.columns {
        match df.column(c.name) {
            Ok(col) => columns.push(col.clone()),
            Err(_) => {
                let dtype = empty.column(c.name)?.dtype().clone();
                columns.push(
                    Series::full_null(PlSmallStr::from_static(c.name), height, &dtype)
                        .into_column(),
                );
            }
        }
    }
    DataFrame::new(height, columns).context("filling the columns an older bundle lacks")
}

/// Checks that `df` has exactly the schema's columns, in order.
pub fn check_columns(df: &DataFrame, schema: &Schema) -> Result<()> {
    let got: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    let want = schema.names();
    if got != want {
        bail!(
            "{} frame has columns {:?}, expected {:?}",
            schema.name,
            got,
            want
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_frames_have_their_columns() {
        for schema in [
            KEYS,
            ROTATIONS,
            EVENTS,
            FINDINGS,
            PARAMS,
            TRAIL_DAYS,
            TRAIL_LOG_DAYS,
            TRAIL_INTEGRITY_PROBLEMS,
            POLICY_STATEMENTS,
            EXEMPTIONS,
            KEY_CLOCK,
            CALL_FAILURES,
            TRAIL_ROTATIONS,
            IAC_FINDINGS,
        ] {
            let df = schema.empty().unwrap();
            check_columns(&df, &schema).unwrap();
            assert_eq!(df.height(), 0);
        }
    }

    #[test]
    fn keys_columns_are_the_contract() {
        assert_eq!(
            KEYS.names().join(","),
            "account_id,region,key_id,arn,aliases,description,key_manager,key_spec,key_usage,\
origin,key_state,creation_date,deletion_date,multi_region,multi_region_role,primary_key_arn,\
custom_key_store_id,tags,rotation_enabled,rotation_period_days,next_rotation_date,\
on_demand_rotation_start_date,last_rotation_date,rotation_count,eligibility,eligibility_reason,status_error,\
key_policy"
        );
        assert_eq!(
            EVENTS.names().join(","),
            "event_id,event_time,event_name,event_type,event_source,aws_region,account_id,key_arn,\
key_id,principal_arn,principal_type,session_issuer_arn,caller_account_id,invoked_by,source_ip,user_agent,\
error_code,error_message,rotation_type,rotation_period_days,request_id,recipient_account_id,shared_event_id,\
linked_event_id,source,log_integrity"
        );
        assert_eq!(
            IAC_FINDINGS.names().join(","),
            "source_file,resource,resource_type,rule_id,severity,detail,remediation,status,line"
        );
    }

    #[test]
    fn an_older_events_frame_gets_the_added_columns_as_nulls() {
        let added: Vec<&str> = ADDED_COLUMNS.iter().map(|(_, c)| *c).collect();
        let full = EVENTS.empty().unwrap();
        let older = full.drop_many(added.iter().map(|s| s.to_string())).clone();
        assert_eq!(older.width(), EVENTS.columns.len() - added.len());
        let df = conform(older, &EVENTS).unwrap();
        check_columns(&df, &EVENTS).unwrap();
        // Anything else missing is still refused.
        let broken = full.drop(col::EVENT_NAME).unwrap();
        assert!(conform(broken, &EVENTS).is_err());
    }

    #[test]
    fn a_mistyped_cell_is_refused() {
        let mut b = FrameBuilder::new(ROTATIONS);
        let err = b
            .push(vec![
                (col::ACCOUNT_ID, Cell::str("1")),
                (col::REGION, Cell::str("r")),
                (col::KEY_ID, Cell::str("k")),
                (col::KEY_ARN, Cell::str("a")),
                (col::ROTATION_DATE, Cell::Str(None)),
                (col::ROTATION_TYPE, Cell::str("AUTOMATIC")),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("rotation_date"));
        assert!(b.is_empty());
    }

    #[test]
    fn swapped_cells_of_one_kind_are_refused() {
        let mut b = FrameBuilder::new(ROTATIONS);
        let err = b
            .push(vec![
                (col::ACCOUNT_ID, Cell::str("111122223333")),
                (col::REGION, Cell::str("us-east-1")),
                (
                    col::KEY_ARN,
                    Cell::str("arn:aws:kms:us-east-1:111122223333:key/k"),
                ),
                (col::KEY_ID, Cell::str("k")),
                (col::ROTATION_DATE, Cell::Time(None)),
                (col::ROTATION_TYPE, Cell::str("AUTOMATIC")),
            ])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal: rotations column 3 is key_id, the row gives key_arn there"
        );
        assert!(b.is_empty());
    }
}
