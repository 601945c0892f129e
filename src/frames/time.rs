//! Times as every file and message of ours writes them, and as the command
//! line takes them: one place, so a bundle, a report and a flag agree.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};

/// Formats a UTC instant the way every file of ours does: RFC 3339, `Z`,
/// with fractional seconds only when there are any.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 for an optional time in a message; `-` when unknown.
pub fn show_time(t: Option<DateTime<Utc>>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "-".into())
}

/// RFC 3339, or `YYYY-MM-DD` meaning that day's first instant (UTC): the
/// start of a window.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, NaiveTime::MIN)
}

/// RFC 3339, or `YYYY-MM-DD` meaning that day's last instant (UTC), so
/// `--until 2025-01-31` (or `--as-of 2025-01-31`) includes the 31st.
pub fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    let end = NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap_or(NaiveTime::MIN);
    parse_time(s, end)
}

fn parse_time(s: &str, day_time: NaiveTime) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(day_time).and_utc());
    }
    Err(format!(
        "`{s}` is neither RFC 3339 (2025-01-31T00:00:00Z) nor a date (2025-01-31)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_cover_whole_days() {
        assert_eq!(
            parse_since("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T00:00:00+00:00"
        );
        assert!(parse_until("2025-01-31")
            .unwrap()
            .to_rfc3339()
            .starts_with("2025-01-31T23:59:59.999"));
        assert_eq!(
            parse_since("2025-01-31T10:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2025-01-31T08:00:00+00:00"
        );
        assert!(parse_since("31/01/2025").is_err());
    }

    #[test]
    fn formatting_shows_fractions_only_when_present() {
        let t = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(rfc3339(t), "2025-03-01T12:00:00Z");
        let t = t + chrono::Duration::milliseconds(250);
        assert_eq!(rfc3339(t), "2025-03-01T12:00:00.250Z");
        assert_eq!(show_time(None), "-");
    }
}
