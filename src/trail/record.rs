//! One CloudTrail record → one [`EventRow`]: the fields we need, borrowed
//! from the input where no unescaping is needed, everything else ignored.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::EventRow;

type S<'a> = Option<Cow<'a, str>>;

/// A top-level CloudTrail record. Only top-level fields are looked at, so an
/// `errorCode` nested in `requestParameters` never counts as a failure.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow)]
    pub event_version: S<'a>,
    #[serde(borrow, rename = "eventID")]
    pub event_id: S<'a>,
    #[serde(borrow)]
    pub event_time: S<'a>,
    /// Logstash replaces eventTime with its own `@timestamp` (OTRF datasets).
    #[serde(borrow, rename = "@timestamp")]
    pub at_timestamp: S<'a>,
    #[serde(borrow)]
    pub event_name: S<'a>,
    #[serde(borrow)]
    pub event_type: S<'a>,
    #[serde(borrow)]
    pub event_source: S<'a>,
    #[serde(borrow)]
    pub aws_region: S<'a>,
    #[serde(borrow)]
    pub recipient_account_id: S<'a>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    pub source_ip_address: S<'a>,
    #[serde(borrow)]
    pub user_agent: S<'a>,
    #[serde(borrow)]
    pub error_code: S<'a>,
    #[serde(borrow)]
    pub error_message: S<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    pub request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_object")]
    pub service_event_details: Option<ServiceEventDetails<'a>>,
    #[serde(borrow)]
    pub resources: Option<Vec<Resource<'a>>>,
    #[serde(borrow, rename = "requestID")]
    pub request_id: S<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: S<'a>,
    #[serde(borrow)]
    pub arn: S<'a>,
    #[serde(borrow)]
    pub account_id: S<'a>,
    #[serde(borrow)]
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
    #[serde(borrow)]
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

impl Record<'_> {
    /// Has at least one field every CloudTrail record carries.
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_name.is_some() || self.event_source.is_some() || self.event_id.is_some()
    }

    /// eventTime, else Logstash's `@timestamp`.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.event_time
            .as_deref()
            .or(self.at_timestamp.as_deref())
            .and_then(parse_time)
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

    pub fn to_row(&self, time: Option<DateTime<Utc>>, source: &str) -> EventRow {
        let region = self.aws_region.as_deref();
        let account = self.account();
        let raw_key = self
            .resources
            .iter()
            .flatten()
            .find(|r| r.kind.as_deref() == Some("AWS::KMS::Key") && r.arn.is_some())
            .and_then(|r| r.arn.as_deref())
            .or_else(|| {
                self.request_parameters
                    .as_ref()
                    .and_then(|p| p.key_id.as_deref())
            })
            .or_else(|| {
                self.service_event_details
                    .as_ref()
                    .and_then(|s| s.key_id.as_deref())
            });
        let (key_arn, key_id) = match raw_key {
            Some(k) => complete_key(k, region, account),
            None => (None, None),
        };
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
            .map(str::to_string)
            .or_else(|| match event_name {
                Some("RotateKeyOnDemand") => Some("ON_DEMAND".into()),
                // Before eventVersion 1.11 an automatic rotation carried no
                // rotationType: the service event itself was the automatic one.
                Some("RotateKey") if self.event_type.as_deref() == Some("AwsServiceEvent") => {
                    Some("AUTOMATIC".into())
                }
                _ => None,
            });
        EventRow {
            event_id: own(&self.event_id),
            event_time: time,
            event_name: own(&self.event_name),
            event_type: own(&self.event_type),
            event_source: own(&self.event_source),
            aws_region: own(&self.aws_region),
            account_id: account.map(str::to_string),
            key_arn,
            key_id,
            principal_arn: principal_arn.map(str::to_string),
            principal_type: ui.and_then(|u| u.kind.as_deref()).map(str::to_string),
            session_issuer_arn: ui
                .and_then(|u| u.session_context.as_ref())
                .and_then(|c| c.session_issuer.as_ref())
                .and_then(|i| i.arn.as_deref())
                .map(str::to_string),
            invoked_by: ui.and_then(|u| u.invoked_by.as_deref()).map(str::to_string),
            source_ip: own(&self.source_ip_address),
            user_agent: own(&self.user_agent),
            error_code: own(&self.error_code),
            error_message: own(&self.error_message),
            rotation_type,
            rotation_period_days: self
                .request_parameters
                .as_ref()
                .and_then(|p| p.rotation_period_in_days),
            request_id: own(&self.request_id),
            source: source.to_string(),
        }
    }
}

fn own(s: &Option<Cow<'_, str>>) -> Option<String> {
    s.as_deref().map(str::to_string)
}

/// RFC 3339 as CloudTrail writes it (`2025-05-20T20:44:37Z`, also with
/// fractions or an offset).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The day of a CloudTrail time without a full parse (first 10 bytes).
pub fn day_of(s: &str) -> Option<NaiveDate> {
    s.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
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
    } else {
        "aws"
    }
}

/// A key reference as logged (key ARN, alias ARN, key id, `alias/name`) →
/// (full ARN when it can be built, the id part: key id or `alias/name`).
pub fn complete_key(
    raw: &str,
    region: Option<&str>,
    account: Option<&str>,
) -> (Option<String>, Option<String>) {
    let raw = raw.trim();
    if raw.is_empty() {
        return (None, None);
    }
    if raw.starts_with("arn:") {
        // arn:PARTITION:kms:REGION:ACCOUNT:key/ID or :alias/NAME
        let id = raw
            .splitn(6, ':')
            .nth(5)
            .map(|res| res.strip_prefix("key/").unwrap_or(res).to_string());
        return (Some(raw.to_string()), id);
    }
    let resource = if raw.starts_with("alias/") {
        raw.to_string()
    } else {
        format!("key/{raw}")
    };
    let id = raw.to_string();
    match (region, account) {
        (Some(r), Some(a)) if !r.is_empty() && !a.is_empty() => (
            Some(format!("arn:{}:kms:{r}:{a}:{resource}", partition(r))),
            Some(id),
        ),
        _ => (None, Some(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_completed_with_partition_region_and_account() {
        let k = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            complete_key(k, Some("cn-north-1"), Some("111122223333")),
            (
                Some(format!("arn:aws-cn:kms:cn-north-1:111122223333:key/{k}")),
                Some(k.into())
            )
        );
        assert_eq!(
            complete_key("alias/app", Some("us-gov-west-1"), Some("111122223333")).0,
            Some("arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/app".into())
        );
        let arn = format!("arn:aws:kms:us-west-2:111122223333:key/{k}");
        assert_eq!(
            complete_key(&arn, None, None),
            (Some(arn.clone()), Some(k.into()))
        );
        assert_eq!(complete_key(k, None, Some("1")), (None, Some(k.into())));
    }

    #[test]
    fn lenient_fields_do_not_reject_records() {
        let r: Record = serde_json::from_str(
            r#"{"eventName":"X","requestParameters":{"keyId":{"a":1},"rotationPeriodInDays":"180"},
                "serviceEventDetails":"text","resources":[{"ARN":5}]}"#,
        )
        .unwrap();
        let row = r.to_row(None, "t");
        assert_eq!(row.key_arn, None);
        assert_eq!(row.rotation_period_days, Some(180));
    }
}
