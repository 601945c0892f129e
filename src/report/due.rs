//! Keys coming due: the monthly review's forward view. For every eligible
//! key with rotation on, when KMS should next rotate it: NextRotationDate as
//! GetKeyRotationStatus reported it, else one period after the schedule start
//! the rules judge `missed_cycle` by (`rules::facts::key_clock`: the latest of
//! the last rotation, the enable that turned rotation on, and
//! NextRotationDate minus the period). Keys already past that date come
//! first, then the rest by date, in 30/60/90-day buckets up to `--due-within`.
//!
//! Keys whose rotation status was not read, or whose schedule has no known
//! start, are counted apart: a key left out for lack of evidence is never
//! shown as not due.

use chrono::{DateTime, Duration, Utc};
use polars::prelude::DataFrame;
use serde::Serialize;

use super::{key_name, Evidence};
use crate::frames::time::rfc3339;
use crate::inventory::Eligibility;

/// `--due-within`'s default, in days.
pub const DEFAULT_DUE_WITHIN: i64 = 90;
/// The buckets the view counts keys in (and `--due-within`, when longer).
const BUCKETS: [i64; 3] = [30, 60, 90];

/// One key and when it is due.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DueKey {
    pub key: String,
    pub key_arn: String,
    pub account_id: Option<String>,
    pub region: String,
    /// When KMS should rotate it (RFC 3339).
    pub due_at: String,
    /// Whole days from the view's as-of to `due_at`, rounded down: negative
    /// when overdue.
    pub days: i64,
    /// `overdue`, or the bucket (`0-30 days`, `31-60 days`, ...) it falls in.
    pub bucket: String,
    pub period_days: i64,
    /// Where the date comes from, in words.
    pub basis: String,
}

/// How many keys fall in one bucket.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BucketCount {
    /// `overdue`, `0-30 days`, `31-60 days`, ...
    pub bucket: String,
    pub keys: usize,
}

/// The forward view of one bundle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DueView {
    pub as_of: String,
    pub within_days: i64,
    /// `as_of` plus `within_days` (RFC 3339).
    pub until: String,
    /// Overdue first (the longest overdue on top), then by due date.
    pub keys: Vec<DueKey>,
    pub buckets: Vec<BucketCount>,
    /// Eligible keys that could not be forecast, each with why.
    pub not_forecast: Vec<NotForecast>,
}

/// An eligible key the view cannot place.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NotForecast {
    pub key: String,
    pub key_arn: String,
    pub region: String,
    pub reason: String,
}

fn bucket_edges(within: i64) -> Vec<i64> {
    let mut edges: Vec<i64> = BUCKETS.iter().copied().filter(|b| *b < within).collect();
    edges.push(within);
    edges
}

/// `0-30 days`, `31-60 days`, ... for each edge.
fn bucket_labels(edges: &[i64]) -> Vec<String> {
    let mut from = 0;
    edges
        .iter()
        .map(|b| {
            let label = format!("{from}-{b} days");
            from = b + 1;
            label
        })
        .collect()
}

/// The keys of `ev` due within `within` days of `as_of`, or overdue.
pub fn coming_due(ev: &Evidence, as_of: DateTime<Utc>, within: i64) -> anyhow::Result<DueView> {
    due_view(
        &ev.frames.keys,
        &ev.frames.rotations,
        &ev.frames.events,
        as_of,
        within,
    )
}

/// [`coming_due`] from the keys, rotations and events frames.
pub fn due_view(
    keys: &DataFrame,
    rotations: &DataFrame,
    events: &DataFrame,
    as_of: DateTime<Utc>,
    within: i64,
) -> anyhow::Result<DueView> {
    let clocks = crate::rules::engine::key_clocks(keys, rotations, events, as_of)?;
    let edges = bucket_edges(within);
    let labels = bucket_labels(&edges);
    let mut keys: Vec<(DateTime<Utc>, DueKey)> = Vec::new();
    let mut not_forecast = Vec::new();
    for (k, c) in &clocks {
        if k.eligibility != Some(Eligibility::Eligible) || k.rotation_enabled == Some(false) {
            continue;
        }
        let apart = |reason: &str| NotForecast {
            key: key_name(k),
            key_arn: k.arn.clone(),
            region: k.region.clone(),
            reason: reason.to_string(),
        };
        if k.rotation_enabled.is_none() {
            not_forecast.push(apart(
                "its rotation status was not read (GetKeyRotationStatus)",
            ));
            continue;
        }
        let period_note = if c.period_known {
            ""
        } else {
            " (period not reported; AWS's default 365 assumed)"
        };
        let (due, basis) = match (c.next_rotation_date, c.due_at) {
            (Some(next), _) => (next, "NextRotationDate (GetKeyRotationStatus)".to_string()),
            (None, Some(_)) if !c.history_read => {
                // As missed_cycle: CloudTrail alone is not a complete history.
                not_forecast.push(apart(
                    "ListKeyRotations was not read and KMS reported no NextRotationDate",
                ));
                continue;
            }
            (None, Some(due)) => (
                due,
                format!(
                    "one {}-day period after its {}{period_note}",
                    c.period_days, c.schedule_basis
                ),
            ),
            (None, None) => {
                not_forecast.push(apart(
                    "no NextRotationDate, rotation, enable event or creation date to count from",
                ));
                continue;
            }
        };
        let bucket = if due < as_of {
            "overdue".to_string()
        } else {
            match edges.iter().position(|b| due <= as_of + Duration::days(*b)) {
                Some(i) => labels[i].clone(),
                None => continue,
            }
        };
        keys.push((
            due,
            DueKey {
                key: key_name(k),
                key_arn: k.arn.clone(),
                account_id: k.account_id.clone(),
                region: k.region.clone(),
                due_at: rfc3339(due),
                // Floored, so a key due an hour ago is a day overdue, not 0.
                days: (due - as_of).num_seconds().div_euclid(86_400),
                bucket,
                period_days: c.period_days,
                basis,
            },
        ));
    }
    // Overdue keys sort first because their dates are earliest: the longest
    // overdue on top, which is the order a reviewer works in.
    keys.sort_by(|a, b| (a.0, &a.1.key, &a.1.key_arn).cmp(&(b.0, &b.1.key, &b.1.key_arn)));
    let keys: Vec<DueKey> = keys.into_iter().map(|(_, k)| k).collect();
    let mut buckets = vec![BucketCount {
        bucket: "overdue".into(),
        keys: keys.iter().filter(|k| k.bucket == "overdue").count(),
    }];
    for label in labels {
        buckets.push(BucketCount {
            keys: keys.iter().filter(|k| k.bucket == label).count(),
            bucket: label,
        });
    }
    not_forecast.sort_by(|a, b| (&a.key, &a.key_arn).cmp(&(&b.key, &b.key_arn)));
    Ok(DueView {
        as_of: rfc3339(as_of),
        within_days: within,
        until: rfc3339(as_of + Duration::days(within)),
        keys,
        buckets,
        not_forecast,
    })
}

/// A key the earlier review showed due by the later one's date, and what
/// the later bundle says happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DueCheck {
    pub key: String,
    pub key_arn: String,
    pub region: String,
    /// When the earlier bundle said it was due (RFC 3339).
    pub was_due: String,
    /// `rotated`, `not rotated`, `unknown` or `key removed`.
    pub outcome: String,
    pub detail: String,
}

/// For each key `old` showed due (or overdue) by `new`'s as-of: did `new`
/// record a rotation after `old`'s as-of? A rotation is known from the
/// later bundle's last rotation (ListKeyRotations or CloudTrail); without
/// ListKeyRotations a missing rotation is `unknown`, never `not rotated`.
pub fn check_rotated(old: &Evidence, new: &Evidence) -> anyhow::Result<Vec<DueCheck>> {
    let (old_as_of, new_as_of) = (old.assessed_as_of(), new.assessed_as_of());
    if new_as_of <= old_as_of {
        return Ok(Vec::new());
    }
    let span = (new_as_of - old_as_of).num_days().max(1);
    let was = coming_due(old, old_as_of, span)?;
    let clocks: std::collections::BTreeMap<String, crate::rules::facts::KeyClock> =
        crate::rules::engine::key_clocks(
            &new.frames.keys,
            &new.frames.rotations,
            &new.frames.events,
            new_as_of,
        )?
        .into_iter()
        .map(|(k, c)| (k.arn, c))
        .collect();
    let mut out = Vec::new();
    for k in was.keys {
        let due = DateTime::parse_from_rfc3339(&k.due_at)?.with_timezone(&Utc);
        if due > new_as_of {
            continue;
        }
        let (outcome, detail) = match clocks.get(&k.key_arn) {
            None => ("key removed", "not in the later bundle".to_string()),
            Some(c) => match c.last_rotation.filter(|t| *t > old_as_of) {
                Some(t) => (
                    "rotated",
                    format!(
                        "rotated {} ({})",
                        rfc3339(t),
                        c.last_rotation_source.map_or("", |s| s.as_str())
                    ),
                ),
                None if c.history_read => (
                    "not rotated",
                    format!("no rotation recorded after {}", rfc3339(old_as_of)),
                ),
                None => (
                    "unknown",
                    "ListKeyRotations was not read in the later bundle and CloudTrail shows no rotation"
                        .to_string(),
                ),
            },
        };
        out.push(DueCheck {
            key: k.key,
            key_arn: k.key_arn,
            region: k.region,
            was_due: k.due_at,
            outcome: outcome.into(),
            detail,
        });
    }
    Ok(out)
}

/// `--due-within`: whole days, 1..=2560 (the longest rotation period).
pub fn parse_due_within(s: &str) -> Result<i64, String> {
    let t = s.trim().trim_end_matches('d');
    match t.parse::<i64>() {
        Ok(n) if (1..=2560).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of days from 1 to 2560 (as 30, 60 or 90)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{keys_frame, rotations_frame, KeyRecord, RotationRecord};
    use crate::policy::Policy;
    use crate::trail::{events_frame, EventRow};
    use chrono::TimeZone;

    const ACCT: &str = "111122223333";

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn arn(id: &str) -> String {
        format!("arn:aws:kms:us-east-1:{ACCT}:key/{id}")
    }

    /// An eligible key with rotation on at `period` days and a read history.
    fn key(id: &str, period: i64) -> KeyRecord {
        KeyRecord {
            account_id: Some(ACCT.into()),
            region: "us-east-1".into(),
            key_id: id.into(),
            arn: arn(id),
            aliases: vec![format!("alias/{id}")],
            key_manager: Some("CUSTOMER".into()),
            key_spec: Some("SYMMETRIC_DEFAULT".into()),
            key_usage: Some("ENCRYPT_DECRYPT".into()),
            origin: Some("AWS_KMS".into()),
            key_state: Some("Enabled".into()),
            creation_date: Some(t(2023, 1, 1)),
            eligibility: Some(Eligibility::Eligible),
            rotation_enabled: Some(true),
            rotation_period_days: Some(period),
            rotation_count: Some(0),
            tags: Some(Default::default()),
            ..KeyRecord::default()
        }
    }

    fn rotated(id: &str, when: DateTime<Utc>) -> RotationRecord {
        RotationRecord {
            account_id: Some(ACCT.into()),
            region: "us-east-1".into(),
            key_id: id.into(),
            key_arn: arn(id),
            rotation_date: Some(when),
            rotation_type: Some("AUTOMATIC".into()),
        }
    }

    fn call(n: u32, name: &str, id: &str, when: DateTime<Utc>) -> EventRow {
        EventRow {
            event_id: Some(format!("ev-{n}")),
            event_time: Some(when),
            event_name: Some(name.into()),
            event_type: Some("AwsApiCall".into()),
            event_source: Some("kms.amazonaws.com".into()),
            aws_region: Some("us-east-1".into()),
            account_id: Some(ACCT.into()),
            key_arn: Some(arn(id)),
            key_id: Some(id.into()),
            principal_arn: Some(format!("arn:aws:iam::{ACCT}:user/alice")),
            source: "fixture".into(),
            ..EventRow::default()
        }
    }

    struct Scenario {
        keys: DataFrame,
        rotations: DataFrame,
        events: DataFrame,
    }

    /// One account with a key for every way a due date is found, as of
    /// 2026-01-01 12:00.
    fn scenario() -> Scenario {
        let mut keys = Vec::new();
        let mut rotations = Vec::new();
        let mut events = Vec::new();
        // KMS's NextRotationDate is a month past: it missed its rotation.
        let mut k = key("nrd-overdue", 365);
        k.next_rotation_date = Some(t(2025, 12, 1));
        k.rotation_count = Some(1);
        rotations.push(rotated("nrd-overdue", t(2024, 12, 1)));
        keys.push(k);
        // No NextRotationDate: one period after the last rotation, 61 days ago.
        let mut k = key("sched-overdue", 365);
        k.rotation_count = Some(1);
        rotations.push(rotated("sched-overdue", t(2024, 11, 1)));
        keys.push(k);
        // NextRotationDate in 10 days.
        let mut k = key("due-10", 90);
        k.next_rotation_date = Some(t(2026, 1, 11));
        keys.push(k);
        // Never rotated; rotation turned on 2025-02-15: due in 45 days.
        keys.push(key("due-45", 365));
        events.push(call(1, "EnableKeyRotation", "due-45", t(2025, 2, 15)));
        // Rotated 2025-03-01, rotation off and on again 2025-09-01: the
        // schedule restarts at the enable, 200 days on is 2026-03-20.
        let mut k = key("reenabled", 200);
        k.rotation_count = Some(1);
        rotations.push(rotated("reenabled", t(2025, 3, 1)));
        events.push(call(2, "DisableKeyRotation", "reenabled", t(2025, 6, 1)));
        events.push(call(3, "EnableKeyRotation", "reenabled", t(2025, 9, 1)));
        keys.push(k);
        // Due in 151 days: beyond 90.
        let mut k = key("far", 365);
        k.next_rotation_date = Some(t(2026, 6, 1));
        keys.push(k);
        // Rotation off: a finding, not a due date.
        let mut k = key("off", 365);
        k.rotation_enabled = Some(false);
        k.rotation_period_days = None;
        keys.push(k);
        // GetKeyRotationStatus not read.
        let mut k = key("status-unread", 365);
        k.rotation_enabled = None;
        keys.push(k);
        // ListKeyRotations not read and no NextRotationDate.
        let mut k = key("history-unread", 365);
        k.rotation_count = None;
        keys.push(k);
        // Not eligible (asymmetric): never listed.
        let mut k = key("asym", 365);
        k.eligibility = Some(Eligibility::UnsupportedSpec);
        k.key_spec = Some("RSA_2048".into());
        keys.push(k);
        Scenario {
            keys: keys_frame(&keys).unwrap(),
            rotations: rotations_frame(&rotations).unwrap(),
            events: events_frame(&events).unwrap(),
        }
    }

    fn view(s: &Scenario, within: i64) -> DueView {
        due_view(&s.keys, &s.rotations, &s.events, t(2026, 1, 1), within).unwrap()
    }

    #[test]
    fn keys_coming_due_overdue_first_in_30_60_90_day_buckets() {
        let s = scenario();
        let v = view(&s, DEFAULT_DUE_WITHIN);
        let rows: Vec<(&str, &str, i64, &str)> = v
            .keys
            .iter()
            .map(|k| (k.key.as_str(), &k.due_at[..10], k.days, k.bucket.as_str()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("alias/sched-overdue", "2025-11-01", -61, "overdue"),
                ("alias/nrd-overdue", "2025-12-01", -31, "overdue"),
                ("alias/due-10", "2026-01-11", 10, "0-30 days"),
                ("alias/due-45", "2026-02-15", 45, "31-60 days"),
                ("alias/reenabled", "2026-03-20", 78, "61-90 days"),
            ]
        );
        let basis = |name: &str| v.keys.iter().find(|k| k.key == name).unwrap().basis.clone();
        assert_eq!(
            basis("alias/nrd-overdue"),
            "NextRotationDate (GetKeyRotationStatus)"
        );
        assert!(
            basis("alias/sched-overdue")
                .starts_with("one 365-day period after its last rotation 2024-11-01"),
            "{}",
            basis("alias/sched-overdue")
        );
        assert!(
            basis("alias/reenabled").contains("EnableKeyRotation on 2025-09-01"),
            "{}",
            basis("alias/reenabled")
        );
        let counts: Vec<(&str, usize)> = v
            .buckets
            .iter()
            .map(|b| (b.bucket.as_str(), b.keys))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("overdue", 2),
                ("0-30 days", 1),
                ("31-60 days", 1),
                ("61-90 days", 1)
            ]
        );
        let apart: Vec<&str> = v.not_forecast.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(apart, vec!["alias/history-unread", "alias/status-unread"]);
        assert_eq!(&v.until[..10], "2026-04-01");
        // An hour past due is overdue by a day; an hour before, due in 0.
        let hour = Duration::hours(1);
        let at = |as_of| due_view(&s.keys, &s.rotations, &s.events, as_of, 30).unwrap();
        let v = at(t(2026, 1, 11) + hour);
        let k = v.keys.iter().find(|k| k.key == "alias/due-10").unwrap();
        assert_eq!((k.days, k.bucket.as_str()), (-1, "overdue"));
        let v = at(t(2026, 1, 11) - hour);
        let k = v.keys.iter().find(|k| k.key == "alias/due-10").unwrap();
        assert_eq!((k.days, k.bucket.as_str()), (0, "0-30 days"));
    }

    #[test]
    fn due_within_narrows_and_widens_the_view() {
        let s = scenario();
        let v = view(&s, 30);
        let names: Vec<&str> = v.keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(
            names,
            vec!["alias/sched-overdue", "alias/nrd-overdue", "alias/due-10"]
        );
        assert_eq!(v.buckets.len(), 2);
        let v = view(&s, 180);
        let far = v.keys.iter().find(|k| k.key == "alias/far").unwrap();
        assert_eq!((far.days, far.bucket.as_str()), (151, "91-180 days"));
        assert_eq!(v.buckets.last().unwrap().bucket, "91-180 days");
        assert_eq!(parse_due_within("60"), Ok(60));
        assert_eq!(parse_due_within("45d"), Ok(45));
        for bad in ["0", "-5", "x", "2561"] {
            assert!(parse_due_within(bad).is_err(), "{bad}");
        }
    }

    /// The view and missed_cycle read one schedule: every key the rule
    /// reports is overdue here.
    #[test]
    fn every_missed_cycle_key_is_overdue_in_the_view() {
        let s = scenario();
        let ev = crate::rules::engine::Evidence {
            keys: s.keys.clone(),
            rotations: s.rotations.clone(),
            events: s.events.clone(),
            trail: None,
            window_start: t(2025, 1, 1),
        };
        let findings = crate::rules::engine::assess(
            &ev,
            &crate::rules::load(None).unwrap(),
            &Policy::default(),
            t(2026, 1, 1),
        )
        .unwrap();
        let missed: Vec<&str> = findings
            .iter()
            .filter(|f| f.rule_id == "missed_cycle")
            .filter_map(|f| f.key_arn.as_deref())
            .collect();
        assert!(!missed.is_empty());
        let v = view(&s, DEFAULT_DUE_WITHIN);
        for a in missed {
            let k = v.keys.iter().find(|k| k.key_arn == a);
            assert_eq!(k.map(|k| k.bucket.as_str()), Some("overdue"), "{a}");
        }
    }
}
