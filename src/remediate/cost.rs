//! What a plan's actions add to the KMS bill over the next twelve months, at
//! AWS's list prices (AWS KMS pricing, "Key storage"): each customer-managed
//! key costs $1 a month; the first and the second rotation of its material
//! each add $1 a month, prorated hourly; later rotations add nothing; a key
//! scheduled for deletion costs nothing, and one whose deletion is cancelled
//! is charged as though it had never been scheduled.
//!
//! A month is 730 hours, as AWS's pricing calculator counts it, so the twelve
//! months are 8,760 hours (365 days) from the plan. Money is counted in
//! micro-dollars and each action's amount is rounded once, to the cent, so
//! the plan's total is the sum of the amounts the approver reads.
//!
//! When KMS rotates under the plan: one period after the EnableKeyRotation
//! that turns rotation on (apply is assumed to run when the plan is made);
//! for a period change, one new period after the key's schedule start (the
//! `key_clock` anchor the rules use: the last rotation, the enable, or
//! NextRotationDate minus the period), at once if that is past. The saving
//! never counted: nothing here makes a key cheaper.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::plan::ActionType;
use crate::inventory::KeyRecord;
use crate::rules::facts::{KeyClock, DEFAULT_PERIOD_DAYS};

/// AWS's list price of a customer-managed key, per month.
pub const LIST_PRICE: Usd = Usd(1_000_000);
/// Hours in a billing month, as AWS's pricing calculator counts them.
pub const HOURS_PER_MONTH: i64 = 730;
/// The projection window: twelve billing months.
pub const WINDOW_HOURS: i64 = 12 * HOURS_PER_MONTH;
/// Only the first and second rotation of a key add to its price.
pub const BILLED_ROTATIONS: i64 = 2;

/// An amount of US dollars, in micro-dollars. Written as a decimal string
/// (`"15.12"`), so a plan's hash never depends on how a float prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Usd(pub i64);

impl Usd {
    /// Rounded to the cent (half up), as every amount in a plan is.
    pub fn to_cents(self) -> Usd {
        Usd((self.0 + 5_000).div_euclid(10_000) * 10_000)
    }

    /// `1`, `0.85`, `$1.00`: a non-negative price, at most six decimals.
    pub fn parse(text: &str) -> Result<Usd, String> {
        let t = text.trim().trim_start_matches('$');
        let bad = || {
            format!(
                "{text:?} is not an amount of US dollars (as 1, 0.85 or 1.00, at most 6 decimals)"
            )
        };
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 6
            || whole.len() > 9
        {
            return Err(bad());
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        Ok(Usd(whole * 1_000_000 + frac))
    }
}

impl fmt::Display for Usd {
    /// Cents always; more digits only when the amount has them (a
    /// negotiated price such as 0.875).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, micros) = (self.0.div_euclid(1_000_000), self.0.rem_euclid(1_000_000));
        let mut frac = format!("{micros:06}");
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        write!(f, "{whole}.{frac}")
    }
}

impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let text = String::deserialize(d)?;
        Usd::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What one action adds over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostProjection {
    /// Added to the bill over the window, rounded to the cent.
    pub added_usd: Usd,
    /// Rotations KMS would make in the window under the planned period.
    pub rotations_in_window: i64,
    /// Of those, the key's first or second rotation: the ones billed.
    pub billed_rotations: i64,
    /// ListKeyRotations' count when the plan was made; `None` when it was
    /// not read, and the projection is then the most the action could add.
    pub rotations_before: Option<i64>,
    /// How it was worked out, in words.
    pub basis: String,
}

#[cfg(test)]
impl CostProjection {
    /// An action that adds nothing, for tests of other parts of the plan.
    pub(crate) fn nothing() -> CostProjection {
        CostProjection {
            added_usd: Usd(0),
            rotations_in_window: 0,
            billed_rotations: 0,
            rotations_before: Some(0),
            basis: String::new(),
        }
    }
}

/// The plan's pricing and its total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCost {
    pub price_per_key_month_usd: Usd,
    /// `AWS list price` or `--price-per-key-month`.
    pub price_source: String,
    pub window_start: String,
    pub window_end: String,
    /// The sum of every action's `added_usd`.
    pub total_added_usd: Usd,
}

#[cfg(test)]
impl PlanCost {
    /// List price, and a total the tests set.
    pub(crate) fn list(total: Usd) -> PlanCost {
        PlanCost {
            price_per_key_month_usd: LIST_PRICE,
            price_source: "AWS list price".into(),
            window_start: "2026-03-01T00:00:00Z".into(),
            window_end: "2027-03-01T00:00:00Z".into(),
            total_added_usd: total,
        }
    }
}

/// `price` per month for `hours`, prorated hourly.
fn prorated(price: Usd, hours: i64) -> Usd {
    Usd((price.0 * hours.max(0) + HOURS_PER_MONTH / 2) / HOURS_PER_MONTH)
}

/// Whole hours from `t` to `end`, a part hour counting as one (AWS bills
/// each hour begun); none when `t` is at or after `end`.
fn hours_until(t: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    let minutes = (end - t).num_minutes();
    if minutes <= 0 {
        0
    } else {
        (minutes + 59) / 60
    }
}

/// Rotations of a schedule whose first rotation is at `first` and which
/// then rotates every `period_days`, inside `[start, end)`.
pub fn rotations_between(
    first: DateTime<Utc>,
    period_days: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let period = Duration::days(period_days.max(1));
    let mut out = Vec::new();
    let mut t = first;
    while t < end {
        if t >= start {
            out.push(t);
        }
        t += period;
    }
    out
}

/// What `rotations` (in time order) add to the bill up to `end`, for a key
/// that had rotated `before` times: each that is the key's first or second
/// adds the price for every hour from it to `end`.
pub fn added_by_rotations(
    before: i64,
    rotations: &[DateTime<Utc>],
    end: DateTime<Utc>,
    price: Usd,
) -> (Usd, i64) {
    let mut added = Usd(0);
    let mut billed = 0;
    for (i, t) in rotations.iter().enumerate() {
        if before + i as i64 + 1 > BILLED_ROTATIONS {
            break;
        }
        added.0 += prorated(price, hours_until(*t, end)).0;
        billed += 1;
    }
    (added, billed)
}

/// The twelve months from `now`.
pub fn window(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (now, now + Duration::hours(WINDOW_HOURS))
}

/// One projection for a known rotation count.
struct Projected {
    added: Usd,
    rotations: i64,
    billed: i64,
}

/// Projects what `kind` on `key`, at `period` days, adds over the twelve
/// months from `now`. `clock` is the key's rotation clock as of the bundle.
pub fn project(
    kind: ActionType,
    key: &KeyRecord,
    clock: Option<&KeyClock>,
    period: i64,
    now: DateTime<Utc>,
    price: Usd,
) -> CostProjection {
    let (start, end) = window(now);
    let mut basis: Vec<String> = Vec::new();
    // KMS rotates one period after the enable; a period change counts from
    // the schedule's anchor (at once when that is already past).
    let (first, baseline) = match kind {
        ActionType::EnableRotation | ActionType::CancelDeletionAndEnable => {
            basis.push(format!(
                "first rotation {period} days after rotation is turned on (taken as the plan's time)"
            ));
            (now + Duration::days(period), None)
        }
        ActionType::SetRotationPeriod => {
            let old = key.rotation_period_days.unwrap_or(DEFAULT_PERIOD_DAYS);
            let anchor =
                clock.and_then(|c| c.schedule_start.map(|s| (s, c.schedule_basis.clone())));
            let (anchor, anchor_words) = match anchor {
                Some((s, words)) => (s, words),
                None => (now, "the plan's time (no schedule start known)".to_string()),
            };
            basis.push(format!(
                "schedule from {anchor_words}: next rotation one {period}-day period after it instead of {old} days{}",
                if key.rotation_period_days.is_none() {
                    " (current period not reported; AWS's default 365 assumed)"
                } else {
                    ""
                }
            ));
            let old_first = clock
                .and_then(|c| c.next_rotation_date)
                .unwrap_or(anchor + Duration::days(old));
            (
                (anchor + Duration::days(period)).max(now),
                Some((old_first.max(now), old)),
            )
        }
    };
    let with = rotations_between(first, period, start, end);
    let without = baseline
        .map(|(f, p)| rotations_between(f, p, start, end))
        .unwrap_or_default();
    let one = |before: i64| -> Projected {
        let (added_with, billed) = added_by_rotations(before, &with, end, price);
        let (added_without, _) = added_by_rotations(before, &without, end, price);
        let mut added = Usd((added_with.0 - added_without.0).max(0));
        if kind == ActionType::CancelDeletionAndEnable {
            // Pending deletion costs nothing; cancelled, the key and the
            // versions it already has are charged again for the whole window.
            let versions = 1 + before.min(BILLED_ROTATIONS);
            added.0 += prorated(price, WINDOW_HOURS).0 * versions;
        }
        Projected {
            added,
            rotations: with.len() as i64,
            billed,
        }
    };
    let (p, before) = match key.rotation_count {
        Some(n) => (one(n), Some(n)),
        None => {
            basis.push(
                "ListKeyRotations was not read, so the key's past rotations are unknown: the most the action could add"
                    .into(),
            );
            let p = (0..=BILLED_ROTATIONS)
                .map(one)
                .max_by_key(|p| p.added)
                .expect("the range is not empty");
            (p, None)
        }
    };
    if let Some(n) = before {
        if n >= BILLED_ROTATIONS {
            basis.push(format!(
                "the key has rotated {n} times already: further rotations add nothing"
            ));
        }
    }
    if kind == ActionType::CancelDeletionAndEnable {
        basis.push(
            "a key pending deletion is not charged; cancelled, it and its billed versions are charged for every hour"
                .into(),
        );
    }
    CostProjection {
        added_usd: p.added.to_cents(),
        rotations_in_window: p.rotations,
        billed_rotations: p.billed,
        rotations_before: before,
        basis: basis.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn key(count: Option<i64>, period: Option<i64>) -> KeyRecord {
        KeyRecord {
            arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            rotation_count: count,
            rotation_period_days: period,
            ..KeyRecord::default()
        }
    }

    fn usd(s: &str) -> Usd {
        Usd::parse(s).unwrap()
    }

    fn enable(count: Option<i64>, period: i64) -> CostProjection {
        project(
            ActionType::EnableRotation,
            &key(count, None),
            None,
            period,
            now(),
            LIST_PRICE,
        )
    }

    #[test]
    fn a_rotation_mid_window_is_charged_for_the_hours_left() {
        let (_, end) = window(now());
        // 100 days into the window: 265 days = 6,360 hours are left, of 730
        // a month: 8.712... months at $1.
        let t = now() + Duration::days(100);
        let (added, billed) = added_by_rotations(0, &[t], end, LIST_PRICE);
        assert_eq!(billed, 1);
        assert_eq!(added, Usd(8_712_329));
        assert_eq!(added.to_cents().to_string(), "8.71");
        // A part hour is an hour begun.
        let (late, _) = added_by_rotations(0, &[end - Duration::minutes(1)], end, LIST_PRICE);
        assert_eq!(late, Usd(1_370));
        // At the window's end it adds nothing.
        assert_eq!(added_by_rotations(0, &[end], end, LIST_PRICE).0, Usd(0));
        // Half the price, half the amount.
        assert_eq!(
            added_by_rotations(0, &[t], end, usd("0.5")).0,
            Usd(4_356_164)
        );
    }

    #[test]
    fn a_90_day_period_bills_its_first_two_rotations() {
        // Rotations at days 90, 180, 270, 360; only the first two are billed:
        // 275 and 185 days left, 6,600 + 4,440 hours / 730.
        let p = enable(Some(0), 90);
        assert_eq!(p.rotations_in_window, 4);
        assert_eq!(p.billed_rotations, 2);
        assert_eq!(p.added_usd.to_string(), "15.12");
        // One rotation already: only the next is billed.
        let p = enable(Some(1), 90);
        assert_eq!((p.rotations_in_window, p.billed_rotations), (4, 1));
        assert_eq!(p.added_usd.to_string(), "9.04");
        for past in [2, 3] {
            let p = enable(Some(past), 90);
            assert_eq!(p.added_usd, Usd(0), "{past} rotations");
            assert_eq!(p.billed_rotations, 0);
            assert!(p.basis.contains("add nothing"), "{}", p.basis);
        }
    }

    #[test]
    fn a_365_day_period_first_rotates_as_the_window_ends() {
        for past in [0, 1, 2, 3] {
            let p = enable(Some(past), 365);
            assert_eq!(p.rotations_in_window, 0, "{past}");
            assert_eq!(p.added_usd, Usd(0), "{past}");
        }
        // 180 days: day 180 and day 360.
        let p = enable(Some(0), 180);
        assert_eq!((p.rotations_in_window, p.billed_rotations), (2, 2));
        // 185 + 5 days left: 4,440 + 120 hours.
        assert_eq!(p.added_usd.to_string(), "6.25");
    }

    #[test]
    fn a_2560_day_period_adds_nothing_in_a_year() {
        for past in [0, 1, 2, 3] {
            let p = enable(Some(past), 2560);
            assert_eq!(p.rotations_in_window, 0);
            assert_eq!(p.added_usd, Usd(0));
        }
    }

    #[test]
    fn an_unknown_history_is_the_most_it_could_add() {
        let p = enable(None, 90);
        assert_eq!(p.added_usd.to_string(), "15.12");
        assert_eq!(p.rotations_before, None);
        assert!(p.basis.contains("not read"), "{}", p.basis);
    }

    fn clock(start: DateTime<Utc>, period: i64) -> KeyClock {
        KeyClock {
            account_id: None,
            region: "us-east-1".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            history_read: true,
            last_rotation: Some(start),
            last_rotation_source: None,
            rotation_on_since: None,
            period_days: period,
            period_known: true,
            next_rotation_date: Some(start + Duration::days(period)),
            schedule_start: Some(start),
            schedule_basis: "last rotation".into(),
            due_at: Some(start + Duration::days(period)),
            material_since: Some(start),
        }
    }

    #[test]
    fn a_shorter_period_adds_only_what_the_old_one_would_not() {
        // Last rotated 100 days ago, every 730 days: next at day 630, outside
        // the window. Every 365 days: day 265, 100 days before the end.
        let start = now() - Duration::days(100);
        let k = key(Some(1), Some(730));
        let p = project(
            ActionType::SetRotationPeriod,
            &k,
            Some(&clock(start, 730)),
            365,
            now(),
            LIST_PRICE,
        );
        assert_eq!((p.rotations_in_window, p.billed_rotations), (1, 1));
        assert_eq!(p.added_usd.to_string(), "3.29");
        // Already due under the old period too (overdue): nothing added.
        let late = now() - Duration::days(800);
        let p = project(
            ActionType::SetRotationPeriod,
            &k,
            Some(&clock(late, 730)),
            365,
            now(),
            LIST_PRICE,
        );
        assert_eq!(p.added_usd, Usd(0), "{p:?}");
        // Past its two billed rotations: nothing.
        let p = project(
            ActionType::SetRotationPeriod,
            &key(Some(3), Some(730)),
            Some(&clock(start, 730)),
            90,
            now(),
            LIST_PRICE,
        );
        assert_eq!(p.added_usd, Usd(0));
    }

    #[test]
    fn a_cancelled_deletion_pays_for_the_key_again() {
        // A year of the key ($12) and of its one billed version ($12), plus
        // the second rotation at day 90 ($9.04).
        let p = project(
            ActionType::CancelDeletionAndEnable,
            &key(Some(1), None),
            None,
            90,
            now(),
            LIST_PRICE,
        );
        assert_eq!(p.added_usd.to_string(), "33.04");
        let p = project(
            ActionType::CancelDeletionAndEnable,
            &key(Some(3), None),
            None,
            365,
            now(),
            LIST_PRICE,
        );
        assert_eq!(p.added_usd.to_string(), "36.00");
    }

    #[test]
    fn amounts_parse_and_print_exactly() {
        assert_eq!(usd("1"), LIST_PRICE);
        assert_eq!(usd("$1.00"), LIST_PRICE);
        assert_eq!(usd("0.875").to_string(), "0.875");
        assert_eq!(usd(".5").to_string(), "0.50");
        assert_eq!(Usd(15_123_287).to_cents().to_string(), "15.12");
        assert_eq!(Usd(15_125_000).to_cents().to_string(), "15.13");
        for bad in ["", "-1", "1,00", "abc", "1.0000001", "1e3", "."] {
            assert!(Usd::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&usd("15.12")).unwrap();
        assert_eq!(json, "\"15.12\"");
        assert_eq!(serde_json::from_str::<Usd>(&json).unwrap(), usd("15.12"));
    }
}
