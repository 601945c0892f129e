//! Facts several rules, `diagnose` and the report all rely on, decided once
//! here so no two places can disagree: which CloudTrail events are rotations
//! and rotation API calls, which error codes are access denials, when a key
//! last rotated, when its automatic-rotation schedule started, and the
//! rotation-call failures grouped by caller.
//!
//! The engine turns these into the derived tables `key_clock` and
//! `call_failures`; the SQL rules only compare their columns with `params`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::inventory::{KeyRecord, RotationRecord};
use crate::trail::EventRow;

/// Successful events of these names are completed (or started, for an
/// on-demand rotation still in progress) rotations of a key's material.
pub const ROTATION_EVENTS: [&str; 2] = ["RotateKey", "RotateKeyOnDemand"];

/// The KMS APIs about rotation whose failures the rules report.
pub const ROTATION_APIS: [&str; 5] = [
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "GetKeyRotationStatus",
    "ListKeyRotations",
];

/// How CloudTrail records an access denial of a KMS call: `AccessDenied` from
/// IAM, SCPs and permission boundaries, `AccessDeniedException` from KMS
/// itself (key policy, grants).
pub const ACCESS_DENIED_CODES: [&str; 2] = ["AccessDenied", "AccessDeniedException"];

/// `key_clock`, in words: what `DERIVED_TABLES` ships with the rules.
pub const KEY_CLOCK_DEFINITION: &str = "
One row per key of the keys frame, from the evidence as of params.as_of.
history_read: ListKeyRotations was read for the key (keys.rotation_count is set).
last_rotation: the later of the latest ListKeyRotations RotationDate and the latest successful
RotateKey or RotateKeyOnDemand event in CloudTrail, leaving out an on-demand rotation the key reports
as still in progress (GetKeyRotationStatus OnDemandRotationStartDate set, event at or after it less an
hour); last_rotation_source says which; on a tie, ListKeyRotations.
rotation_on_since: walking the key's successful EnableKeyRotation and DisableKeyRotation calls in time
order, the earliest EnableKeyRotation since the last DisableKeyRotation (a later EnableKeyRotation
while rotation is on only changes the period); empty when there is none, or the last call disabled.
period_days: RotationPeriodInDays, else AWS's default 365 (period_known says which).
schedule_start: the latest of last_rotation, rotation_on_since, and next_rotation_date minus the
period; else the key's creation date. schedule_basis says which, in words.
due_at: schedule_start plus the period.
material_since: last_rotation, else the key's creation date.
";

/// `call_failures`, in words.
pub const CALL_FAILURES_DEFINITION: &str = "
Failed calls (error_code set) of EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
GetKeyRotationStatus and ListKeyRotations with event_time in [params.window_start, params.as_of],
from the events the rules see (aliases resolved), one row per account, region, key, caller, API and
error code. caller: userIdentity.sessionContext.sessionIssuer.arn for an assumed-role session (the
role), else the role rebuilt from an assumed-role session ARN, else principal_arn; sessions: the
distinct session ARNs of the role, joined with ', '. access_denied: error_code is AccessDenied or
AccessDeniedException. failures: how many; first_seen, last_seen; error_message of the latest;
event_ids sorted; key_arn_via: how the key was found when a record named it by alias.
";

/// `trail_rotations`, in words.
pub const TRAIL_ROTATIONS_DEFINITION: &str = "
Successful RotateKey and RotateKeyOnDemand events the rules see, one row each. in_progress: the event
is an on-demand rotation (RotateKeyOnDemand, or rotation_type ON_DEMAND) of a key whose
GetKeyRotationStatus reports OnDemandRotationStartDate, at or after that date less an hour: started,
not yet completed, so not yet in ListKeyRotations. linked_event_id: the other record of the same
on-demand rotation (its RotateKeyOnDemand call and RotateKey service event).
";

/// AWS's default RotationPeriodInDays, used when the status did not say.
pub const DEFAULT_PERIOD_DAYS: i64 = 365;

/// GetKeyRotationStatus's OnDemandRotationStartDate and the RotateKeyOnDemand
/// call that started it are the same moment; this absorbs clock skew between
/// CloudTrail and KMS without reaching back to an earlier, completed rotation
/// (KMS refuses a new on-demand rotation while one is in progress).
const IN_PROGRESS_SLACK: Duration = Duration::hours(1);

pub fn is_access_denied(code: &str) -> bool {
    ACCESS_DENIED_CODES.contains(&code)
}

pub fn is_rotation_api(name: &str) -> bool {
    ROTATION_APIS.contains(&name)
}

fn name_is(e: &EventRow, name: &str) -> bool {
    e.event_name.as_deref() == Some(name)
}

/// A successful RotateKey or RotateKeyOnDemand event.
pub fn is_rotation(e: &EventRow) -> bool {
    e.error_code.is_none()
        && e.event_name
            .as_deref()
            .is_some_and(|n| ROTATION_EVENTS.contains(&n))
}

/// Whether `e` is the on-demand rotation the key reports as still in progress
/// (OnDemandRotationStartDate set). ListKeyRotations lists completed
/// rotations only, so such a rotation is neither a rotation yet nor missing
/// from the history.
pub fn is_in_progress(key: Option<&KeyRecord>, e: &EventRow) -> bool {
    let Some(started) = key.and_then(|k| k.on_demand_rotation_start_date) else {
        return false;
    };
    let on_demand =
        name_is(e, "RotateKeyOnDemand") || e.rotation_type.as_deref() == Some("ON_DEMAND");
    on_demand
        && e.event_time
            .is_some_and(|t| t >= started - IN_PROGRESS_SLACK)
}

/// Where the last rotation was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationSource {
    ListKeyRotations,
    CloudTrail,
}

impl RotationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationSource::ListKeyRotations => "ListKeyRotations",
            RotationSource::CloudTrail => "CloudTrail",
        }
    }
}

/// The last completed rotation of `key`: the later of ListKeyRotations and a
/// successful RotateKey/RotateKeyOnDemand in CloudTrail, leaving out an
/// on-demand rotation the key reports as still in progress. On a tie the
/// listed one is named, as it is KMS's own record.
pub fn last_rotation(
    key: &KeyRecord,
    rotations: &[RotationRecord],
    events: &[EventRow],
) -> Option<(DateTime<Utc>, RotationSource)> {
    let listed = rotations
        .iter()
        .filter(|r| r.key_arn == key.arn)
        .filter_map(|r| r.rotation_date)
        .max();
    let trailed = events
        .iter()
        .filter(|e| e.key_arn.as_deref() == Some(key.arn.as_str()))
        .filter(|e| is_rotation(e) && !is_in_progress(Some(key), e))
        .filter_map(|e| e.event_time)
        .max();
    match (listed, trailed) {
        (Some(l), Some(t)) if t > l => Some((t, RotationSource::CloudTrail)),
        (Some(l), _) => Some((l, RotationSource::ListKeyRotations)),
        (None, Some(t)) => Some((t, RotationSource::CloudTrail)),
        (None, None) => None,
    }
}

/// When automatic rotation was last turned on, as far as CloudTrail shows:
/// the earliest successful EnableKeyRotation after the last successful
/// DisableKeyRotation. A later EnableKeyRotation while rotation is on only
/// changes the period and does not restart the schedule. `None` when
/// CloudTrail holds no such call, or the last call turned rotation off.
pub fn rotation_on_since(key_arn: &str, events: &[EventRow]) -> Option<DateTime<Utc>> {
    let mut calls: Vec<(DateTime<Utc>, bool)> = events
        .iter()
        .filter(|e| e.key_arn.as_deref() == Some(key_arn) && e.error_code.is_none())
        .filter_map(|e| {
            let on = match e.event_name.as_deref()? {
                "EnableKeyRotation" => true,
                "DisableKeyRotation" => false,
                _ => return None,
            };
            Some((e.event_time?, on))
        })
        .collect();
    // Same instant: the disable first, so an enable at that time wins.
    calls.sort();
    let mut since = None;
    for (t, on) in calls {
        since = match (on, since) {
            (true, None) => Some(t),
            (true, kept) => kept,
            (false, _) => None,
        };
    }
    since
}

/// One key's rotation clock, the `key_clock` table's row.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyClock {
    pub account_id: Option<String>,
    pub region: String,
    pub key_arn: String,
    /// ListKeyRotations was read for this key: its history is complete.
    pub history_read: bool,
    pub last_rotation: Option<DateTime<Utc>>,
    pub last_rotation_source: Option<RotationSource>,
    /// See [`rotation_on_since`].
    pub rotation_on_since: Option<DateTime<Utc>>,
    pub period_days: i64,
    pub period_known: bool,
    pub next_rotation_date: Option<DateTime<Utc>>,
    /// The latest of the last rotation, `rotation_on_since` and
    /// NextRotationDate minus the period; the key's creation when none is
    /// known. KMS rotates one period after it.
    pub schedule_start: Option<DateTime<Utc>>,
    /// Which of those `schedule_start` is, in words.
    pub schedule_basis: String,
    /// `schedule_start` plus the period: when KMS should have rotated.
    pub due_at: Option<DateTime<Utc>>,
    /// When the key's current material became current: the last rotation,
    /// else the key's creation.
    pub material_since: Option<DateTime<Utc>>,
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The clock of `key` from the evidence as of the assessment.
pub fn key_clock(key: &KeyRecord, rotations: &[RotationRecord], events: &[EventRow]) -> KeyClock {
    let last = last_rotation(key, rotations, events);
    let on_since = rotation_on_since(&key.arn, events);
    let period_days = key.rotation_period_days.unwrap_or(DEFAULT_PERIOD_DAYS);
    let period = Duration::days(period_days);
    let mut anchors: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Some((t, source)) = last {
        anchors.push((t, format!("last rotation {} ({})", day(t), source.as_str())));
    }
    if let Some(t) = on_since {
        anchors.push((
            t,
            format!(
                "rotation turned on by EnableKeyRotation on {} (CloudTrail)",
                day(t)
            ),
        ));
    }
    if let Some(next) = key.next_rotation_date {
        anchors.push((
            next - period,
            format!(
                "NextRotationDate {} minus the {period_days}-day period",
                day(next)
            ),
        ));
    }
    // Later anchors win; among equal times the first pushed (the recorded
    // rotation) names the basis.
    let best = anchors
        .into_iter()
        .reduce(|a, b| if b.0 > a.0 { b } else { a });
    let (schedule_start, schedule_basis) = match best {
        Some((t, basis)) => (Some(t), basis),
        None => match key.creation_date {
            Some(c) => (
                Some(c),
                format!(
                    "creation on {} (no rotation, EnableKeyRotation event or NextRotationDate)",
                    day(c)
                ),
            ),
            None => (None, "unknown".to_string()),
        },
    };
    KeyClock {
        account_id: key.account_id.clone(),
        region: key.region.clone(),
        key_arn: key.arn.clone(),
        history_read: key.rotation_count.is_some(),
        last_rotation: last.map(|(t, _)| t),
        last_rotation_source: last.map(|(_, s)| s),
        rotation_on_since: on_since,
        period_days,
        period_known: key.rotation_period_days.is_some(),
        next_rotation_date: key.next_rotation_date,
        schedule_start,
        schedule_basis,
        due_at: schedule_start.map(|s| s + period),
        material_since: last.map(|(t, _)| t).or(key.creation_date),
    }
}

/// The role behind an assumed-role session, else the principal itself.
///
/// CloudTrail names an AssumedRole caller by its session
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`); the role is
/// `sessionContext.sessionIssuer.arn`, which keeps the role's path. Where a
/// record lacks it, the role ARN is rebuilt from the session ARN (without a
/// path, which the session ARN does not carry).
pub fn caller_of(e: &EventRow) -> (String, Option<String>) {
    let principal = e.principal_arn.clone();
    if let Some(issuer) = e.session_issuer_arn.clone().filter(|s| !s.is_empty()) {
        let session = principal.filter(|p| *p != issuer);
        return (issuer, session);
    }
    let Some(p) = principal else {
        return ("unknown principal".into(), None);
    };
    if let Some(role) = role_of_session(&p) {
        return (role, Some(p));
    }
    (p, None)
}

fn role_of_session(arn: &str) -> Option<String> {
    // arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION
    let mut parts = arn.splitn(6, ':');
    let (_, partition, service, _, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if service != "sts" {
        return None;
    }
    let rest = resource.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.rsplit_once('/')?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// Failed rotation API calls of one caller, on one key, API and error code.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailures {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub key_arn: Option<String>,
    /// The role for an assumed-role session, else the principal ARN.
    pub caller: String,
    /// The distinct sessions (`userIdentity.arn`) the role was denied under.
    pub sessions: Vec<String>,
    pub event_name: String,
    pub error_code: String,
    pub access_denied: bool,
    pub count: usize,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The message of the latest failure.
    pub message: Option<String>,
    pub event_ids: Vec<String>,
}

/// Groups failed rotation API calls by account, region, key, caller, API and
/// error code, over the events in `[since, until]`.
pub fn call_failures(
    events: &[EventRow],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Vec<CallFailures> {
    type Key = (
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
    );
    let mut groups: BTreeMap<Key, (CallFailures, BTreeSet<String>)> = BTreeMap::new();
    for e in events {
        let (Some(name), Some(code)) = (e.event_name.as_deref(), e.error_code.as_deref()) else {
            continue;
        };
        if !is_rotation_api(name) {
            continue;
        }
        let in_window = e
            .event_time
            .is_some_and(|t| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u));
        if !in_window {
            continue;
        }
        let (caller, session) = caller_of(e);
        let key = (
            e.account_id.clone(),
            e.aws_region.clone(),
            e.key_arn.clone(),
            caller.clone(),
            name.to_string(),
            code.to_string(),
        );
        let (g, sessions) = groups.entry(key).or_insert_with(|| {
            (
                CallFailures {
                    account_id: e.account_id.clone(),
                    region: e.aws_region.clone(),
                    key_arn: e.key_arn.clone(),
                    caller,
                    sessions: Vec::new(),
                    event_name: name.to_string(),
                    error_code: code.to_string(),
                    access_denied: is_access_denied(code),
                    count: 0,
                    first_seen: None,
                    last_seen: None,
                    message: None,
                    event_ids: Vec::new(),
                },
                BTreeSet::new(),
            )
        });
        g.count += 1;
        if let Some(s) = session {
            sessions.insert(s);
        }
        if let Some(id) = &e.event_id {
            g.event_ids.push(id.clone());
        }
        if let Some(t) = e.event_time {
            g.first_seen = Some(g.first_seen.map_or(t, |f| f.min(t)));
            if g.last_seen.is_none_or(|l| t >= l) {
                g.last_seen = Some(t);
                g.message = e.error_message.clone().or(g.message.take());
            }
        }
    }
    groups
        .into_values()
        .map(|(mut g, sessions)| {
            g.sessions = sessions.into_iter().collect();
            g.event_ids.sort();
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn call(name: &str, when: DateTime<Utc>, error: Option<&str>) -> EventRow {
        EventRow {
            event_name: Some(name.into()),
            event_time: Some(when),
            key_arn: Some("arn:k".into()),
            error_code: error.map(str::to_string),
            ..EventRow::default()
        }
    }

    #[test]
    fn the_on_period_starts_at_its_first_enable() {
        let events = vec![
            call("EnableKeyRotation", t(2023, 1, 1), None),
            call("DisableKeyRotation", t(2024, 2, 1), None),
            call(
                "EnableKeyRotation",
                t(2024, 6, 1),
                Some("AccessDeniedException"),
            ),
            call("EnableKeyRotation", t(2024, 7, 1), None),
            // A period change while on: not a restart.
            call("EnableKeyRotation", t(2025, 9, 1), None),
        ];
        assert_eq!(rotation_on_since("arn:k", &events), Some(t(2024, 7, 1)));
        assert_eq!(rotation_on_since("arn:other", &events), None);
        let mut off = events.clone();
        off.push(call("DisableKeyRotation", t(2025, 10, 1), None));
        assert_eq!(rotation_on_since("arn:k", &off), None);
    }

    #[test]
    fn a_session_is_grouped_under_its_role() {
        let mut e = call("EnableKeyRotation", t(2025, 1, 1), Some("AccessDenied"));
        e.principal_arn = Some("arn:aws:sts::111122223333:assumed-role/ci/build-1".into());
        assert_eq!(
            caller_of(&e),
            (
                "arn:aws:iam::111122223333:role/ci".to_string(),
                e.principal_arn.clone()
            )
        );
        e.session_issuer_arn = Some("arn:aws:iam::111122223333:role/deploy/ci".into());
        assert_eq!(caller_of(&e).0, "arn:aws:iam::111122223333:role/deploy/ci");
        e.principal_arn = Some("arn:aws:iam::111122223333:user/alice".into());
        e.session_issuer_arn = None;
        assert_eq!(
            caller_of(&e),
            ("arn:aws:iam::111122223333:user/alice".to_string(), None)
        );
    }
}
