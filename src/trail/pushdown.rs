//! What the sources that filter in a query engine share: CloudTrail Lake
//! (`lake:`) and Athena (`athena:`) both push the reader's keep rule down as
//! SQL, over columns with the same lower-case names, and rebuild each
//! returned row into a CloudTrail record that [`super::record::keep`] then
//! decides on, as it does for every other source.
//!
//! Shared here: the window every query is bounded by, the checks that make
//! `--account`/`--region` safe to quote, the kept-event condition (its names
//! come from `queries/trail_events.txt` through [`ReadOptions::kept_names`]),
//! the part of a row that is the same in both engines, and the registry of
//! running queries that Ctrl-C cancels.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration as StdDuration;

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::reader::ReadOptions;
use super::{Collector, Window};
use crate::error::hinted;

/// The resource type CloudTrail gives a KMS key in `resources[]`.
pub const KMS_KEY_TYPE: &str = "AWS::KMS::Key";

/// The only eventSource the reader keeps.
pub const KMS_SOURCE: &str = "kms.amazonaws.com";

/// The window a pushed-down query reads: the one asked, with an open start
/// closed at the default audit window before its end (or `now`), so a query
/// never scans, and bills, a whole store or table. The second value says
/// whether the start was filled in.
pub fn bounded_window(w: &Window, now: DateTime<Utc>) -> (Window, bool) {
    if w.since.is_some() {
        return (*w, false);
    }
    let days = crate::policy::Policy::default().audit_window_days;
    let end = w.until.unwrap_or(now);
    (
        Window {
            since: Some(end - Duration::days(days)),
            until: w.until,
        },
        true,
    )
}

/// SQL string literals, `'` doubled, comma-separated.
pub fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses an `--account` or `--region` value that is not an account id or
/// a region name: they are written into SQL.
pub fn check_scope(opts: &ReadOptions) -> Result<()> {
    for a in &opts.scope.accounts {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(hinted(
                format!("--account {a}: not a 12-digit account id"),
                "give account ids such as 111122223333",
            ));
        }
    }
    for r in &opts.scope.regions {
        if r.is_empty()
            || !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(hinted(
                format!("--region {r}: not a region name"),
                "give region names such as us-east-1",
            ));
        }
    }
    Ok(())
}

/// The names condition of the keep rule: a kept name or an errorCode, or
/// nothing with `--include-data-events`. `failed` is the SQL that says a
/// record has an errorCode (the engines differ on empty strings).
pub fn kept_names_condition(opts: &ReadOptions, failed: &str) -> Option<String> {
    (!opts.include_data_events).then(|| {
        format!(
            "(eventname IN ({}) OR {failed})",
            quoted(&opts.kept_names())
        )
    })
}

/// Files a pushed-down day-coverage query's answer in the day ledger: every
/// account and region asked (so one with no row shows as missing), then the
/// days the engine found logs for.
pub fn note_days(
    collector: &mut Collector,
    opts: &ReadOptions,
    days: Vec<(String, String, NaiveDate)>,
) {
    for a in &opts.scope.accounts {
        for r in &opts.scope.regions {
            collector.note_scope(a, r);
        }
    }
    for (a, r, d) in days {
        collector.note_log_day(&a, &r, d);
    }
}

/// The top-level fields and the caller that every pushed-down row carries
/// under the same column names, as a CloudTrail record's members. `get`
/// gives a column's value, None when the engine returned none.
pub fn base_record<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Map<String, Value> {
    let mut rec = Map::new();
    for (col, field) in [
        ("eventid", "eventID"),
        ("sharedeventid", "sharedEventID"),
        ("eventname", "eventName"),
        ("eventtype", "eventType"),
        ("eventsource", "eventSource"),
        ("awsregion", "awsRegion"),
        ("recipientaccountid", "recipientAccountId"),
        ("sourceipaddress", "sourceIPAddress"),
        ("useragent", "userAgent"),
        ("errorcode", "errorCode"),
        ("errormessage", "errorMessage"),
        ("requestid", "requestID"),
    ] {
        if let Some(v) = get(col) {
            rec.insert(field.into(), json!(v));
        }
    }
    let mut who = Map::new();
    for (col, field) in [
        ("principal_arn", "arn"),
        ("principal_type", "type"),
        ("principal_account_id", "accountId"),
        ("invoked_by", "invokedBy"),
    ] {
        if let Some(v) = get(col) {
            who.insert(field.into(), json!(v));
        }
    }
    if let Some(issuer) = get("session_issuer_arn") {
        who.insert(
            "sessionContext".into(),
            json!({ "sessionIssuer": { "arn": issuer } }),
        );
    }
    if !who.is_empty() {
        rec.insert("userIdentity".into(), Value::Object(who));
    }
    rec
}

/// Stops one running query; returns the line to print.
pub type Cancel = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// Queries started and not yet finished, so Ctrl-C can stop them.
static RUNNING: Mutex<Vec<(String, Cancel)>> = Mutex::new(Vec::new());
static WATCH: Once = Once::new();

fn running() -> std::sync::MutexGuard<'static, Vec<(String, Cancel)>> {
    // A plain list: a panic elsewhere leaves nothing half-updated in it.
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remembers a running query until [`finished`] is called for it.
pub fn started(id: &str, cancel: Cancel) {
    watch_ctrl_c();
    running().push((id.to_string(), cancel));
}

/// Forgets a query that ended or was cancelled.
pub fn finished(id: &str) {
    running().retain(|(q, _)| q != id);
}

/// On Ctrl-C, cancels every query still running, then exits 130 (the
/// shell's code for SIGINT). Installed once, on the first query: from then
/// on Ctrl-C is handled here for the rest of the run, so it must still end
/// the process after the queries are done.
fn watch_ctrl_c() {
    WATCH.call_once(|| {
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let queries = std::mem::take(&mut *running());
            for (id, cancel) in queries {
                match tokio::time::timeout(StdDuration::from_secs(10), cancel()).await {
                    Ok(line) => eprintln!("interrupted: {line}"),
                    Err(_) => eprintln!("interrupted: stopping query {id} got no answer"),
                }
            }
            std::process::exit(130);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_query_is_bounded_in_time() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let (w, filled) = bounded_window(&Window::default(), now);
        assert!(filled);
        assert_eq!(w.since, Some(now - Duration::days(400)));
        let asked = Window {
            since: Some(now - Duration::days(3)),
            until: None,
        };
        assert_eq!(bounded_window(&asked, now), (asked, false));
    }

    #[test]
    fn scope_values_are_checked_before_they_are_quoted() {
        let mut opts = ReadOptions::default();
        opts.scope.accounts = vec!["1' OR '1'='1".into()];
        assert!(check_scope(&opts).is_err());
        opts.scope.accounts = vec!["111122223333".into()];
        opts.scope.regions = vec!["us-east-1'".into()];
        assert!(check_scope(&opts).is_err());
        opts.scope.regions = vec!["us-east-1".into()];
        assert!(check_scope(&opts).is_ok());
        assert_eq!(quoted(&["a'b".into(), "c".into()]), "'a''b', 'c'");
    }

    #[test]
    fn the_names_condition_comes_from_the_kept_list() {
        let opts = ReadOptions {
            extra_events: vec!["TagResource".into()],
            ..ReadOptions::default()
        };
        let c = kept_names_condition(&opts, "errorcode <> ''").unwrap();
        assert!(
            c.starts_with("(eventname IN ('RotateKey', 'RotateKeyOnDemand'"),
            "{c}"
        );
        assert!(c.ends_with(", 'TagResource') OR errorcode <> '')"), "{c}");
        let all = ReadOptions {
            include_data_events: true,
            ..ReadOptions::default()
        };
        assert_eq!(kept_names_condition(&all, "x"), None);
    }
}
