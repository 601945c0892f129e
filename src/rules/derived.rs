//! What the rules see of the `events` frame: the bundle's rows, with the
//! keys that a record named by alias resolved at assess time.
//!
//! The reader never turns an alias into a key ARN (which key an alias
//! pointed to when the call was made is not in the record). The inventory
//! knows which key each alias names as of collection; the rules use that,
//! and say so: such a row gets `key_arn` from the keys frame and
//! `key_arn_via` = "alias/NAME, resolved through the alias as of collection".
//! Rows whose alias the inventory does not know keep `key_arn` empty.

use std::collections::HashMap;

use anyhow::Result;
use polars::prelude::{DataFrame, DataType, IntoColumn, NamedFrom, PlSmallStr, Series};

use crate::frames::col;

/// The `events` table for the rules: `events` with `key_arn` filled in
/// through `keys`' aliases where the record named an alias, and the column
/// `key_arn_via` saying where that was done.
pub fn events_for_rules(events: &DataFrame, keys: &DataFrame) -> Result<DataFrame> {
    let aliases = alias_index(keys)?;
    let n = events.height();
    let key_arn = text(events, col::KEY_ARN)?;
    let key_id = text(events, col::KEY_ID)?;
    let region = text(events, col::AWS_REGION)?;
    let recipient = text(events, col::RECIPIENT_ACCOUNT_ID)?;
    let account = text(events, col::ACCOUNT_ID)?;
    let mut arns = Vec::with_capacity(n);
    let mut via = Vec::with_capacity(n);
    for i in 0..n {
        let resolved = match (&key_arn[i], &key_id[i]) {
            (None, Some(named)) => {
                let home = recipient[i].as_deref().or(account[i].as_deref());
                alias_target(named, home, region[i].as_deref())
                    .and_then(|(a, r, name)| aliases.get(&(a, r, name)))
            }
            _ => None,
        };
        match resolved {
            Some(arn) => {
                arns.push(Some(arn.clone()));
                via.push(Some(format!(
                    "{}, resolved through the alias as of collection",
                    key_id[i].as_deref().unwrap_or("")
                )));
            }
            None => {
                arns.push(key_arn[i].clone());
                via.push(None);
            }
        }
    }
    let mut out = events.clone();
    out.with_column(Series::new(PlSmallStr::from_static(col::KEY_ARN), arns).into_column())?;
    out.with_column(Series::new(PlSmallStr::from_static(col::KEY_ARN_VIA), via).into_column())?;
    Ok(out)
}

/// An alias reference → (account, region, `alias/NAME`): an alias ARN names
/// its own account and region; a bare `alias/NAME` is the caller's, in the
/// region the call went to (aliases are per account and region).
fn alias_target(
    named: &str,
    home: Option<&str>,
    region: Option<&str>,
) -> Option<(String, String, String)> {
    if let Some(rest) = named.strip_prefix("arn:") {
        // PARTITION:kms:REGION:ACCOUNT:alias/NAME
        let mut p = rest.splitn(5, ':');
        let (_partition, service, r, a, resource) =
            (p.next()?, p.next()?, p.next()?, p.next()?, p.next()?);
        if service != "kms" || !resource.starts_with("alias/") {
            return None;
        }
        return Some((a.to_string(), r.to_string(), resource.to_string()));
    }
    if named.starts_with("alias/") {
        return Some((home?.to_string(), region?.to_string(), named.to_string()));
    }
    None
}

/// (account, region, alias) → key ARN, from the keys frame.
fn alias_index(keys: &DataFrame) -> Result<HashMap<(String, String, String), String>> {
    let mut out = HashMap::new();
    if keys.height() == 0 {
        return Ok(out);
    }
    let arns = text(keys, col::ARN)?;
    let accounts = text(keys, col::ACCOUNT_ID)?;
    let regions = text(keys, col::REGION)?;
    let lists = keys.column(col::ALIASES)?.as_materialized_series().clone();
    let lists = lists.list()?;
    for i in 0..keys.height() {
        let (Some(arn), Some(a), Some(r)) = (&arns[i], &accounts[i], &regions[i]) else {
            continue;
        };
        let Some(names) = lists.get_as_series(i) else {
            continue;
        };
        for name in names.str()?.iter().flatten() {
            out.insert((a.clone(), r.clone(), name.to_string()), arn.clone());
        }
    }
    Ok(out)
}

fn text(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Cell, FrameBuilder, EVENTS, KEYS};
    use crate::trail::{events_frame, EventRow};

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn keys() -> DataFrame {
        let mut b = FrameBuilder::new(KEYS);
        let mut row: Vec<(&str, Cell)> = KEYS
            .columns
            .iter()
            .map(|c| {
                let cell = match c.kind {
                    crate::frames::Kind::Str => Cell::Str(None),
                    crate::frames::Kind::Json => Cell::Json(None),
                    crate::frames::Kind::Bool => Cell::Bool(None),
                    crate::frames::Kind::Int => Cell::Int(None),
                    crate::frames::Kind::Time => Cell::Time(None),
                    crate::frames::Kind::StrList => Cell::StrList(Vec::new()),
                };
                (c.name, cell)
            })
            .collect();
        let at = |name: &str| KEYS.columns.iter().position(|c| c.name == name).unwrap();
        row[at(col::ACCOUNT_ID)].1 = Cell::str("111122223333");
        row[at(col::REGION)].1 = Cell::str("us-east-1");
        row[at(col::ARN)].1 = Cell::str(ARN);
        row[at(col::ALIASES)].1 = Cell::StrList(vec!["alias/app".into()]);
        b.push(row).unwrap();
        b.finish().unwrap()
    }

    fn event(key_id: &str, region: &str) -> EventRow {
        EventRow {
            event_id: Some(key_id.into()),
            aws_region: Some(region.into()),
            account_id: Some("111122223333".into()),
            recipient_account_id: Some("111122223333".into()),
            key_id: Some(key_id.into()),
            error_code: Some("AccessDeniedException".into()),
            source: "t".into(),
            ..EventRow::default()
        }
    }

    #[test]
    fn an_alias_resolves_through_the_inventory_and_says_so() {
        let events = events_frame(&[
            event("alias/app", "us-east-1"),
            event("arn:aws:kms:us-east-1:111122223333:alias/app", "eu-west-1"),
            // Aliases are per region: the same name elsewhere is another key.
            event("alias/app", "eu-west-1"),
            event("alias/unknown", "us-east-1"),
        ])
        .unwrap();
        let df = events_for_rules(&events, &keys()).unwrap();
        let arns = text(&df, col::KEY_ARN).unwrap();
        let via = text(&df, col::KEY_ARN_VIA).unwrap();
        assert_eq!(
            arns,
            vec![Some(ARN.to_string()), Some(ARN.to_string()), None, None]
        );
        assert_eq!(
            via[0].as_deref(),
            Some("alias/app, resolved through the alias as of collection")
        );
        assert!(via[2].is_none() && via[3].is_none());
        // Every column of the frame is still there, plus the new one.
        assert_eq!(df.width(), EVENTS.columns.len() + 1);
    }

    use crate::inventory::{keys_frame, Eligibility, KeyRecord};
    use crate::policy::Policy;
    use crate::rules::engine::{assess, Evidence};
    use crate::trail::{DayCoverage, SourceCoverage, TrailCoverage, Window};
    use chrono::{DateTime, TimeZone, Utc};

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, d, h, m, 0).unwrap()
    }

    /// One eligible key with rotation on and `alias/app`, whose history was
    /// read and lists nothing; CloudTrail covers June 2025.
    fn evidence(events: &[EventRow]) -> Evidence {
        let key = KeyRecord {
            account_id: Some("111122223333".into()),
            region: "us-east-1".into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: ARN.into(),
            aliases: vec!["alias/app".into()],
            key_manager: Some("CUSTOMER".into()),
            key_spec: Some("SYMMETRIC_DEFAULT".into()),
            key_usage: Some("ENCRYPT_DECRYPT".into()),
            origin: Some("AWS_KMS".into()),
            key_state: Some("Enabled".into()),
            creation_date: Some(at(1, 0, 0)),
            eligibility: Some(Eligibility::Eligible),
            rotation_enabled: Some(true),
            rotation_period_days: Some(365),
            rotation_count: Some(0),
            tags: Some(Default::default()),
            ..KeyRecord::default()
        };
        let days = (1..=30)
            .map(|d| chrono::NaiveDate::from_ymd_opt(2025, 6, d).unwrap())
            .collect();
        Evidence {
            keys: keys_frame(&[key]).unwrap(),
            rotations: crate::frames::ROTATIONS.empty().unwrap(),
            events: events_frame(events).unwrap(),
            trail: Some(TrailCoverage {
                complete: true,
                window: Window::default(),
                sources: vec![SourceCoverage::default()],
                days: vec![DayCoverage {
                    account_id: "111122223333".into(),
                    region: "us-east-1".into(),
                    days_with_logs: days,
                    days_quiet: Vec::new(),
                    days_missing: Vec::new(),
                }],
                events_read: 0,
                events_kept: 0,
                duplicates: 0,
                duplicate_conflicts: Vec::new(),
                cross_account_copies: 0,
                integrity: None,
            }),
            window_start: at(1, 0, 0),
        }
    }

    #[test]
    fn a_denial_by_alias_is_a_finding_on_the_key_that_says_how_it_was_found() {
        let denied = EventRow {
            event_id: Some("e1".into()),
            event_time: Some(at(10, 9, 0)),
            event_name: Some("EnableKeyRotation".into()),
            principal_arn: Some("arn:aws:iam::111122223333:user/Alice".into()),
            ..event("alias/app", "us-east-1")
        };
        let rules = crate::rules::load(None).unwrap();
        let findings = assess(
            &evidence(&[denied]),
            &rules,
            &Policy::default(),
            at(30, 0, 0),
        )
        .unwrap();
        let f = findings
            .iter()
            .find(|f| f.rule_id == "permission_failure")
            .expect("a permission_failure finding");
        assert_eq!(f.key_arn.as_deref(), Some(ARN));
        let evidence = f.evidence.as_deref().unwrap();
        assert!(
            evidence
                .contains("key named as alias/app, resolved through the alias as of collection"),
            "{evidence}"
        );
    }

    #[test]
    fn a_linked_on_demand_rotation_is_one_rotation_for_history_mismatch() {
        let rows = |linked: bool| {
            let call = EventRow {
                event_id: Some("call".into()),
                event_time: Some(at(10, 9, 0)),
                event_name: Some("RotateKeyOnDemand".into()),
                event_type: Some("AwsApiCall".into()),
                rotation_type: Some("ON_DEMAND".into()),
                key_arn: Some(ARN.into()),
                error_code: None,
                linked_event_id: linked.then(|| "service".into()),
                ..event("k", "us-east-1")
            };
            let service = EventRow {
                event_id: Some("service".into()),
                event_time: Some(at(10, 9, 2)),
                event_name: Some("RotateKey".into()),
                event_type: Some("AwsServiceEvent".into()),
                rotation_type: Some("ON_DEMAND".into()),
                key_arn: Some(ARN.into()),
                error_code: None,
                linked_event_id: linked.then(|| "call".into()),
                ..event("k", "us-east-1")
            };
            vec![call, service]
        };
        let rules = crate::rules::load(None).unwrap();
        let mismatches = |events: &[EventRow]| {
            assess(&evidence(events), &rules, &Policy::default(), at(30, 0, 0))
                .unwrap()
                .into_iter()
                .filter(|f| f.rule_id == "history_mismatch")
                .count()
        };
        // ListKeyRotations lists nothing: one rotation is missing from it.
        assert_eq!(mismatches(&rows(true)), 1);
        assert_eq!(mismatches(&rows(false)), 2, "unlinked, each record counts");
    }
}
