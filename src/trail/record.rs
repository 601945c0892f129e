//! One CloudTrail record → one [`EventRow`]: the fields we need, borrowed
//! from the input where no unescaping is needed, everything else ignored.
//!
//! **This file is the one place that decides which records are kept and how
//! the key is read from them** ([`keep`], [`Record::key_ref`],
//! [`Record::to_row`]). Every source goes through it: local files and the S3
//! archive (through the reader), LookupEvents and CloudTrail Lake (through
//! [`super::reader::parse_record`]). A source that filters elsewhere (Lake's
//! SQL, Athena's) must select a superset of what [`keep`] keeps and let
//! [`keep`] decide, so every source yields the same rows for the same events.
//!
//! The rule, in order:
//! 1. `eventSource` is `kms.amazonaws.com` (top level only);
//! 2. the event name is listed in `queries/trail_events.txt` (or
//!    `--events-file`), or the record has a non-empty top-level `errorCode`,
//!    or `--include-data-events` is on;
//! 3. `awsRegion` and `recipientAccountId` are in `--region`/`--account`;
//! 4. `eventTime` is RFC 3339 with `T` and a zone (`Z` or `±HH:MM`); a
//!    record that passes 1–3 without one is a bad record, never a row;
//! 5. the time is inside `--since`/`--until`.
//!
//! The key: the first `resources[]` entry of type `AWS::KMS::Key`, else
//! `requestParameters.keyId`, else `serviceEventDetails.keyId`. A key ARN is
//! kept as logged; a bare key id is completed with the record's region,
//! account and partition (a key id names one key there); an alias (name or
//! ARN) stays in `key_id` with `key_arn` empty, because which key an alias
//! pointed to at the time is not in the record.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::reader::ReadOptions;
use super::{EventRow, Scope};

type S<'a> = Option<Cow<'a, str>>;

/// A top-level CloudTrail record. Only top-level fields are looked at, so an
/// `errorCode` nested in `requestParameters` never counts as a failure.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_version: S<'a>,
    #[serde(borrow, rename = "eventID", default, deserialize_with = "opt_str")]
    pub event_id: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_time: S<'a>,
    /// Logstash replaces eventTime with its own `@timestamp` (OTRF datasets).
    #[serde(borrow, rename = "@timestamp", default, deserialize_with = "opt_str")]
    pub at_timestamp: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_name: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_type: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_category: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_source: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub aws_region: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub recipient_account_id: S<'a>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(
        borrow,
        rename = "sourceIPAddress",
        default,
        deserialize_with = "opt_str"
    )]
    pub source_ip_address: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub user_agent: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub error_code: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub error_message: S<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    pub request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    pub service_event_details: Option<ServiceEventDetails<'a>>,
    #[serde(borrow)]
    pub resources: Option<Vec<Resource<'a>>>,
    #[serde(borrow, rename = "requestID", default, deserialize_with = "opt_str")]
    pub request_id: S<'a>,
    #[serde(
        borrow,
        rename = "sharedEventID",
        default,
        deserialize_with = "opt_str"
    )]
    pub shared_event_id: S<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(borrow, rename = "type", default, deserialize_with = "opt_str")]
    pub kind: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub arn: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub account_id: S<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub invoked_by: S<'a>,
    #[serde(borrow)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

#[derive(Deserialize, Default)]
pub struct SessionIssuer<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub arn: S<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    /// Usually a string; some services log other shapes under the same name.
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    pub key_id: S<'a>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub rotation_period_in_days: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEventDetails<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    pub key_id: S<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    pub rotation_type: S<'a>,
}

#[derive(Deserialize, Default)]
pub struct Resource<'a> {
    #[serde(borrow, rename = "ARN", default, deserialize_with = "lenient_str")]
    pub arn: S<'a>,
    #[serde(borrow, rename = "type", default, deserialize_with = "lenient_str")]
    pub kind: S<'a>,
}

/// An optional string field, borrowed from the input when it has no escape.
/// serde borrows a field typed `Cow<'a, str>` only when it is not wrapped:
/// as `Option<Cow<'a, str>>` it would copy every string of every record
/// parsed (and a 200 MB field twice over).
pub fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<S<'a>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed>::deserialize(d)?.map(|b| b.0))
}

/// Strings inside requestParameters and friends are service-defined; a value
/// of another type there is not ours to reject, so it reads as absent.
fn lenient_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V<'a> {
        #[serde(borrow)]
        S(Cow<'a, str>),
        Other(IgnoredAny),
    }
    Ok(match V::deserialize(d)? {
        V::S(s) => Some(s),
        V::Other(_) => None,
    })
}

fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V<'a> {
        I(i64),
        F(f64),
        #[serde(borrow)]
        S(Cow<'a, str>),
        Other(IgnoredAny),
    }
    Ok(match V::deserialize(d)? {
        V::I(i) => Some(i),
        V::F(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(f as i64),
        V::S(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `requestParameters` is null for many events and can be a non-object in
/// hand-edited data; either way it holds nothing we read.
fn lenient_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V<T> {
        O(T),
        Other(IgnoredAny),
    }
    Ok(match V::<T>::deserialize(d)? {
        V::O(t) => Some(t),
        V::Other(_) => None,
    })
}

/// Why a record's time could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeProblem {
    Missing,
    /// The text as logged (cut to 40 characters for messages).
    Invalid(String),
}

impl std::fmt::Display for TimeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeProblem::Missing => write!(f, "no eventTime"),
            TimeProblem::Invalid(t) => write!(
                f,
                "eventTime `{t}` is not an RFC 3339 time with `T` and a zone (2025-01-31T12:00:00Z)"
            ),
        }
    }
}

/// What [`keep`] decided for one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    Row(Box<EventRow>),
    /// Not a kept event (other service, unlisted name, out of scope or window).
    Dropped,
    /// Would be kept, but its time cannot be placed: a bad record.
    BadTime(TimeProblem),
}

/// The keep rule (see the module documentation): the one decision every
/// source shares.
pub fn keep(rec: &Record, label: &str, opts: &ReadOptions) -> Kept {
    if rec.event_source.as_deref() != Some("kms.amazonaws.com") {
        return Kept::Dropped;
    }
    let wanted = opts.include_data_events
        || rec.error_code.as_deref().is_some_and(|c| !c.is_empty())
        || rec
            .event_name
            .as_deref()
            .is_some_and(|n| opts.keeps_name(n));
    if !wanted || !in_scope(rec, &opts.scope) {
        return Kept::Dropped;
    }
    let time = match rec.time() {
        Ok(t) => t,
        Err(p) => return Kept::BadTime(p),
    };
    if !opts.window.contains(time) {
        return Kept::Dropped;
    }
    Kept::Row(Box::new(rec.to_row(time, label)))
}

fn in_scope(rec: &Record, scope: &Scope) -> bool {
    (scope.regions.is_empty()
        || rec
            .aws_region
            .as_deref()
            .is_some_and(|r| scope.wants_region(r)))
        && (scope.accounts.is_empty() || rec.account().is_some_and(|a| scope.wants_account(a)))
}

impl Record<'_> {
    /// Has at least one field every CloudTrail record carries.
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_name.is_some() || self.event_source.is_some() || self.event_id.is_some()
    }

    /// eventTime, else Logstash's `@timestamp`, parsed strictly.
    pub fn time(&self) -> Result<DateTime<Utc>, TimeProblem> {
        match self.event_time.as_deref().or(self.at_timestamp.as_deref()) {
            None => Err(TimeProblem::Missing),
            Some(t) => parse_time(t).ok_or_else(|| TimeProblem::Invalid(cut(t, 40))),
        }
    }

    /// recipientAccountId is the account whose trail logged the event. Only
    /// when it is absent (some exports drop it) does the caller's account
    /// stand in, which is the same account for calls made from inside it.
    pub fn account(&self) -> Option<&str> {
        self.recipient_account_id.as_deref().or_else(|| {
            self.user_identity
                .as_ref()
                .and_then(|u| u.account_id.as_deref())
        })
    }

    /// The key this record is about: (key ARN when the record names one,
    /// the key as named). See the module documentation for the order.
    pub fn key_ref(&self) -> (Option<String>, Option<String>) {
        if let Some(arn) = self
            .resources
            .iter()
            .flatten()
            .filter(|r| r.kind.as_deref() == Some("AWS::KMS::Key"))
            .filter_map(|r| r.arn.as_deref())
            .find(|a| key_arn_parts(a).is_some())
        {
            let id = key_arn_parts(arn).map(|p| p.id.to_string());
            return (Some(arn.to_string()), id);
        }
        let raw = self
            .request_parameters
            .as_ref()
            .and_then(|p| p.key_id.as_deref())
            .or_else(|| {
                self.service_event_details
                    .as_ref()
                    .and_then(|s| s.key_id.as_deref())
            });
        match raw {
            Some(k) => complete_key(k, self.aws_region.as_deref(), self.account()),
            None => (None, None),
        }
    }

    pub fn to_row(&self, time: DateTime<Utc>, source: &str) -> EventRow {
        let (key_arn, key_id) = self.key_ref();
        let ui = self.user_identity.as_ref();
        let principal_arn = ui.and_then(|u| {
            u.arn.as_deref().or_else(|| {
                if u.kind.as_deref() == Some("AssumedRole") {
                    u.session_context
                        .as_ref()
                        .and_then(|c| c.session_issuer.as_ref())
                        .and_then(|i| i.arn.as_deref())
                } else {
                    None
                }
            })
        });
        let event_name = self.event_name.as_deref();
        let rotation_type = self
            .service_event_details
            .as_ref()
            .and_then(|s| s.rotation_type.as_deref())
            .map(text)
            .or_else(|| match event_name {
                Some("RotateKeyOnDemand") => Some("ON_DEMAND".into()),
                // Before eventVersion 1.11 an automatic rotation carried no
                // rotationType: the service event itself was the automatic one.
                Some("RotateKey") if self.event_type.as_deref() == Some("AwsServiceEvent") => {
                    Some("AUTOMATIC".into())
                }
                _ => None,
            });
        // The key's owner, from its ARN; the recipient when no ARN names it.
        let owner = key_arn
            .as_deref()
            .and_then(key_arn_parts)
            .map(|p| p.account.to_string())
            .or_else(|| self.account().map(text));
        EventRow {
            event_id: own(&self.event_id),
            event_time: Some(time),
            event_name: own(&self.event_name),
            event_type: own(&self.event_type),
            event_source: own(&self.event_source),
            aws_region: own(&self.aws_region),
            account_id: owner,
            key_arn,
            key_id,
            principal_arn: principal_arn.map(text),
            principal_type: ui.and_then(|u| u.kind.as_deref()).map(text),
            session_issuer_arn: ui
                .and_then(|u| u.session_context.as_ref())
                .and_then(|c| c.session_issuer.as_ref())
                .and_then(|i| i.arn.as_deref())
                .map(text),
            caller_account_id: ui.and_then(|u| u.account_id.as_deref()).map(text),
            invoked_by: ui.and_then(|u| u.invoked_by.as_deref()).map(text),
            source_ip: own(&self.source_ip_address),
            user_agent: own(&self.user_agent),
            error_code: own(&self.error_code).filter(|c| !c.is_empty()),
            error_message: own(&self.error_message),
            rotation_type,
            rotation_period_days: self
                .request_parameters
                .as_ref()
                .and_then(|p| p.rotation_period_in_days),
            request_id: own(&self.request_id),
            recipient_account_id: own(&self.recipient_account_id),
            shared_event_id: own(&self.shared_event_id),
            linked_event_id: None,
            source: source.to_string(),
            log_integrity: None,
        }
    }
}

fn own(s: &Option<Cow<'_, str>>) -> Option<String> {
    s.as_deref().map(text)
}

/// The longest text kept from one field of a record, in bytes. CloudTrail
/// writes ARNs, user agents and error messages of a few hundred bytes, at
/// most a few KB; a longer value is hostile, and copying it whole into the
/// row, the frame and each output file would cost many times its size.
pub const MAX_FIELD_BYTES: usize = 16 << 10;

/// A record's text as kept in a row: whole, or its first
/// [`MAX_FIELD_BYTES`] (on a character boundary) and a marker saying how
/// much was left out.
pub fn text(s: &str) -> String {
    if s.len() <= MAX_FIELD_BYTES {
        return s.to_string();
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[{} more bytes in the record, not kept]",
        &s[..end],
        s.len() - end
    )
}

/// At most `n` characters of `s`, for messages.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// RFC 3339 as CloudTrail writes it: `2025-05-20T20:44:37Z`, also with
/// fractions or an offset (`+01:00` is converted to UTC). A time without a
/// zone, or with a space for the `T` (which chrono's RFC 3339 parser would
/// accept), is refused: it cannot be placed on a UTC day for certain.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The UTC day of a CloudTrail time; None when [`parse_time`] refuses it.
pub fn day_of(s: &str) -> Option<NaiveDate> {
    parse_time(s).map(|t| t.date_naive())
}

/// The partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-isof-") {
        "aws-iso-f"
    } else {
        "aws"
    }
}

/// The parts of a KMS key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub id: &'a str,
}

/// A KMS key ARN split into its parts; None for anything else (an alias
/// ARN, another service's ARN, a malformed one).
pub fn key_arn_parts(arn: &str) -> Option<KeyArn<'_>> {
    let mut p = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    let id = resource.strip_prefix("key/")?;
    (scheme == "arn"
        && partition.starts_with("aws")
        && service == "kms"
        && !region.is_empty()
        && is_account_id(account)
        && is_key_id(id))
    .then_some(KeyArn {
        partition,
        region,
        account,
        id,
    })
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Key ids are UUIDs, and `mrk-` plus 32 hex digits for multi-Region keys;
/// anything else in a keyId field is not completed into an ARN.
fn is_key_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A key reference as logged (key ARN, alias ARN, key id, `alias/name`) →
/// (key ARN when the reference names a key, the reference as logged; a key
/// ARN's id part). An alias never becomes a key ARN: which key it pointed
/// to is not in the record.
pub fn complete_key(
    raw: &str,
    region: Option<&str>,
    account: Option<&str>,
) -> (Option<String>, Option<String>) {
    if raw.is_empty() {
        return (None, None);
    }
    if raw.starts_with("arn:") {
        return match key_arn_parts(raw) {
            Some(p) => (Some(raw.to_string()), Some(p.id.to_string())),
            // An alias ARN keeps its account and region for the rules.
            None => (None, Some(text(raw))),
        };
    }
    if raw.starts_with("alias/") || !is_key_id(raw) {
        return (None, Some(text(raw)));
    }
    match (region, account) {
        (Some(r), Some(a)) if !r.is_empty() && is_account_id(a) => (
            Some(format!("arn:{}:kms:{r}:{a}:key/{raw}", partition(r))),
            Some(raw.to_string()),
        ),
        _ => (None, Some(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn keys_are_completed_with_partition_region_and_account() {
        assert_eq!(
            complete_key(K, Some("cn-north-1"), Some("111122223333")),
            (
                Some(format!("arn:aws-cn:kms:cn-north-1:111122223333:key/{K}")),
                Some(K.into())
            )
        );
        let arn = format!("arn:aws:kms:us-west-2:111122223333:key/{K}");
        assert_eq!(
            complete_key(&arn, None, None),
            (Some(arn.clone()), Some(K.into()))
        );
        assert_eq!(complete_key(K, None, Some("1")), (None, Some(K.into())));
        // Garbage in a keyId field is kept as logged, never made an ARN.
        assert_eq!(
            complete_key("a b/c", Some("us-east-1"), Some("111122223333")),
            (None, Some("a b/c".into()))
        );
    }

    #[test]
    fn aliases_are_never_made_key_arns() {
        for alias in [
            "alias/app",
            "arn:aws:kms:us-east-1:111122223333:alias/app",
            "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/app",
        ] {
            assert_eq!(
                complete_key(alias, Some("us-east-1"), Some("111122223333")),
                (None, Some(alias.to_string())),
                "{alias}"
            );
        }
        let r: Record = serde_json::from_str(
            r#"{"eventSource":"kms.amazonaws.com","eventName":"EnableKeyRotation",
                "eventTime":"2025-01-02T03:04:05Z","awsRegion":"us-east-1",
                "recipientAccountId":"111122223333","errorCode":"NotFoundException",
                "requestParameters":{"keyId":"alias/app"}}"#,
        )
        .unwrap();
        let row = r.to_row(r.time().unwrap(), "t");
        assert_eq!(row.key_arn, None);
        assert_eq!(row.key_id.as_deref(), Some("alias/app"));
        assert_eq!(row.account_id.as_deref(), Some("111122223333"));
    }

    #[test]
    fn every_partition_is_known() {
        for (region, p) in [
            ("us-east-1", "aws"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("us-isof-south-1", "aws-iso-f"),
        ] {
            assert_eq!(partition(region), p, "{region}");
            let (arn, _) = complete_key(K, Some(region), Some("111122223333"));
            assert_eq!(
                arn.unwrap(),
                format!("arn:{p}:kms:{region}:111122223333:key/{K}")
            );
        }
    }

    #[test]
    fn times_need_a_t_and_a_zone_and_are_filed_under_their_utc_day() {
        assert!(parse_time("2025-01-02T03:04:05Z").is_some());
        assert!(parse_time("2025-01-02T03:04:05.123Z").is_some());
        assert_eq!(parse_time("2025-01-02 03:04:05Z"), None);
        assert_eq!(parse_time("2025-01-02T03:04:05"), None);
        assert_eq!(parse_time("2025-01-02"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(
            day_of("2025-01-01T23:30:00-02:00"),
            NaiveDate::from_ymd_opt(2025, 1, 2)
        );
        assert_eq!(
            day_of("2025-01-02T00:30:00+01:00"),
            NaiveDate::from_ymd_opt(2025, 1, 1)
        );
        assert_eq!(day_of("2025-01-02 00:30:00Z"), None);
    }

    #[test]
    fn a_cross_account_call_is_filed_under_the_key_owner() {
        let text = format!(
            r#"{{"eventSource":"kms.amazonaws.com","eventName":"RotateKeyOnDemand",
                "eventTime":"2025-01-02T03:04:05Z","awsRegion":"us-east-1",
                "recipientAccountId":"444455556666","sharedEventID":"s-1",
                "userIdentity":{{"type":"IAMUser","accountId":"444455556666","arn":"arn:aws:iam::444455556666:user/Bob"}},
                "resources":[{{"type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:111122223333:key/{K}"}}]}}"#
        );
        let r: Record = serde_json::from_str(&text).unwrap();
        let row = r.to_row(r.time().unwrap(), "t");
        assert_eq!(row.account_id.as_deref(), Some("111122223333"));
        assert_eq!(row.caller_account_id.as_deref(), Some("444455556666"));
        assert_eq!(row.recipient_account_id.as_deref(), Some("444455556666"));
        assert_eq!(row.shared_event_id.as_deref(), Some("s-1"));
    }

    #[test]
    fn strings_without_escapes_are_borrowed_not_copied() {
        let json = r#"{"eventName":"RotateKey","userAgent":"a\u0062c","eventID":"e1"}"#;
        let r: Record = serde_json::from_str(json).unwrap();
        assert!(matches!(r.event_name, Some(Cow::Borrowed("RotateKey"))));
        assert!(matches!(r.event_id, Some(Cow::Borrowed("e1"))));
        assert!(matches!(r.user_agent, Some(Cow::Owned(ref s)) if s == "abc"));
        assert!(r.error_code.is_none());
        let null: Record = serde_json::from_str(r#"{"eventName":null}"#).unwrap();
        assert!(null.event_name.is_none());
    }

    #[test]
    fn overlong_text_is_cut_and_marked() {
        let long = format!("é{}", "a".repeat(MAX_FIELD_BYTES * 3));
        let json = format!(
            r#"{{"eventName":"X","eventTime":"2025-01-02T03:04:05Z","userAgent":"{long}","requestParameters":{{"keyId":"alias/{long}"}}}}"#
        );
        let r: Record = serde_json::from_str(&json).unwrap();
        let row = r.to_row(r.time().unwrap(), "t");
        let ua = row.user_agent.unwrap();
        assert!(ua.len() < MAX_FIELD_BYTES + 100, "{}", ua.len());
        assert!(ua.starts_with('é') && ua.ends_with("more bytes in the record, not kept]"));
        assert!(row.key_id.unwrap().len() < MAX_FIELD_BYTES + 100);
        assert_eq!(text("short"), "short");
    }

    #[test]
    fn lenient_fields_do_not_reject_records() {
        let r: Record = serde_json::from_str(
            r#"{"eventName":"X","eventTime":"2025-01-02T03:04:05Z","requestParameters":{"keyId":{"a":1},"rotationPeriodInDays":"180"},
                "serviceEventDetails":"text","resources":[{"ARN":5}]}"#,
        )
        .unwrap();
        let row = r.to_row(r.time().unwrap(), "t");
        assert_eq!(row.key_arn, None);
        assert_eq!(row.rotation_period_days, Some(180));
    }
}
