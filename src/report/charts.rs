//! The report's charts as inline SVG, drawn here so the HTML needs no script
//! and no network. Every label is escaped: key names and aliases are data.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};

/// Rows beyond this are summarized in a note, so a large account still gets
/// a chart a person can read; the tables keep every key.
const MAX_ROWS: usize = 60;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// One key in the rotation-age chart.
pub struct AgeBar {
    pub label: String,
    /// Days since the last rotation, or since creation when never rotated.
    pub age_days: i64,
    /// The rotation period when rotation is on.
    pub period_days: Option<i64>,
    pub eligible: bool,
    pub rotated: bool,
}

/// Horizontal bars: each key's rotation age, with its period as a tick.
/// Red when the age passed the period (or rotation is off on an eligible
/// key), green otherwise, grey for keys AWS cannot rotate.
pub fn rotation_age(bars: &[AgeBar]) -> String {
    if bars.is_empty() {
        return empty("No customer-managed keys in the bundle.");
    }
    let shown = &bars[..bars.len().min(MAX_ROWS)];
    let label_w = 260.0;
    let plot_w = 520.0;
    let row_h = 20.0;
    let top = 24.0;
    let height = top + row_h * shown.len() as f64 + 40.0;
    let max_days = shown
        .iter()
        .map(|b| b.age_days.max(b.period_days.unwrap_or(0)))
        .max()
        .unwrap_or(1)
        .max(365) as f64;
    let x = |d: i64| label_w + plot_w * d as f64 / max_days;
    let mut s = svg_open(
        label_w + plot_w + 30.0,
        height,
        "Rotation age against period per key",
    );
    writeln!(s, r##"<text x="{label_w}" y="14" class="axis">days since last rotation (or creation); tick = rotation period</text>"##).ok();
    for (i, b) in shown.iter().enumerate() {
        let y = top + row_h * i as f64;
        let late = match b.period_days {
            Some(p) => b.age_days > p,
            None => b.eligible,
        };
        let class = if !b.eligible {
            "bar-na"
        } else if late {
            "bar-bad"
        } else {
            "bar-ok"
        };
        let status = match (b.eligible, b.period_days) {
            (false, _) => "not rotatable by AWS".to_string(),
            (true, None) => "rotation off".to_string(),
            (true, Some(p)) if b.age_days > p => format!("overdue (period {p} d)"),
            (true, Some(p)) => format!("within period {p} d"),
        };
        let title = format!(
            "{}: {} days{}; {}",
            b.label,
            b.age_days,
            if b.rotated { "" } else { " (never rotated)" },
            status
        );
        writeln!(
            s,
            r#"<g><title>{}</title><text x="{}" y="{}" class="label" text-anchor="end">{}</text><rect x="{label_w}" y="{}" width="{:.1}" height="{}" class="{class}"/>"#,
            esc(&title),
            label_w - 6.0,
            y + 14.0,
            esc(&truncate(&b.label, 38)),
            y + 3.0,
            (x(b.age_days) - label_w).max(1.0),
            row_h - 6.0,
        )
        .ok();
        if let Some(p) = b.period_days {
            writeln!(
                s,
                r#"<line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" class="tick"/>"#,
                x(p),
                x(p),
                y + 1.0,
                y + row_h - 1.0
            )
            .ok();
        }
        writeln!(
            s,
            r#"<text x="{:.1}" y="{}" class="value">{}</text></g>"#,
            x(b.age_days) + 4.0,
            y + 14.0,
            b.age_days
        )
        .ok();
    }
    let axis_y = top + row_h * shown.len() as f64 + 4.0;
    axis(&mut s, label_w, plot_w, axis_y, max_days);
    if bars.len() > shown.len() {
        writeln!(
            s,
            r#"<text x="{label_w}" y="{}" class="axis">{} more keys in the table below</text>"#,
            axis_y + 30.0,
            bars.len() - shown.len()
        )
        .ok();
    }
    s.push_str("</svg>");
    s
}

fn axis(s: &mut String, left: f64, width: f64, y: f64, max_days: f64) {
    writeln!(
        s,
        r#"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" class="axis-line"/>"#,
        left + width
    )
    .ok();
    let step = if max_days > 1500.0 {
        365.0
    } else if max_days > 600.0 {
        180.0
    } else {
        90.0
    };
    let mut d = 0.0;
    while d <= max_days {
        let x = left + width * d / max_days;
        writeln!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y}" y2="{}" class="axis-line"/><text x="{x:.1}" y="{}" class="axis" text-anchor="middle">{d}</text>"#,
            y + 4.0,
            y + 16.0
        )
        .ok();
        d += step;
    }
}

/// One eligibility class in the keys-by-status chart.
pub struct StackBar {
    pub label: String,
    /// Whether AWS can rotate keys of this class: rotation off is a problem
    /// only there, so only there is it drawn red.
    pub eligible: bool,
    /// AWS-managed keys: AWS rotates them every year and their status reads
    /// true, so they are drawn as rotated by AWS whatever was read (an
    /// emulator reports them off).
    pub rotated_by_aws: bool,
    pub on: usize,
    pub off: usize,
    pub na: usize,
}

/// Stacked horizontal bars: keys per eligibility class, split by rotation
/// status (on, off, not applicable).
pub fn eligibility(bars: &[StackBar]) -> String {
    if bars.is_empty() {
        return empty("No keys in the bundle.");
    }
    let label_w = 160.0;
    let plot_w: f64 = 420.0;
    let row_h = 26.0;
    let top = 30.0;
    let max = bars
        .iter()
        .map(|b| b.on + b.off + b.na)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let height = top + row_h * bars.len() as f64 + 10.0;
    // Wide enough for the legend whatever the bars.
    let mut s = svg_open(
        label_w + plot_w.max(680.0) + 60.0,
        height,
        "Keys by eligibility and rotation status",
    );
    writeln!(
        s,
        r#"<rect x="{label_w}" y="6" width="12" height="12" class="bar-ok"/><text x="{}" y="16" class="axis">rotation on</text><rect x="{}" y="6" width="12" height="12" class="bar-bad"/><text x="{}" y="16" class="axis">rotation off (eligible)</text><rect x="{}" y="6" width="12" height="12" class="bar-off"/><text x="{}" y="16" class="axis">rotation off (not eligible)</text><rect x="{}" y="6" width="12" height="12" class="bar-na"/><text x="{}" y="16" class="axis">not applicable</text><rect x="{}" y="6" width="12" height="12" class="bar-aws"/><text x="{}" y="16" class="axis">rotated by AWS</text>"#,
        label_w + 16.0,
        label_w + 100.0,
        label_w + 116.0,
        label_w + 240.0,
        label_w + 256.0,
        label_w + 440.0,
        label_w + 456.0,
        label_w + 560.0,
        label_w + 576.0
    )
    .ok();
    for (i, b) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        writeln!(
            s,
            r#"<text x="{}" y="{}" class="label" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 16.0,
            esc(&b.label)
        )
        .ok();
        let mut x = label_w;
        let off_class = if b.eligible { "bar-bad" } else { "bar-off" };
        let segments = if b.rotated_by_aws {
            [
                (b.on + b.off + b.na, "bar-aws", "rotated by AWS"),
                (0, "bar-ok", ""),
                (0, "bar-na", ""),
            ]
        } else {
            [
                (b.on, "bar-ok", "rotation on"),
                (b.off, off_class, "rotation off"),
                (b.na, "bar-na", "not applicable"),
            ]
        };
        for (n, class, what) in segments {
            if n == 0 {
                continue;
            }
            let w = plot_w * n as f64 / max;
            writeln!(
                s,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="{}" class="{class}"><title>{}: {n} {what}</title></rect>"#,
                y + 4.0,
                row_h - 8.0,
                esc(&b.label)
            )
            .ok();
            x += w;
        }
        writeln!(
            s,
            r#"<text x="{:.1}" y="{}" class="value">{}</text>"#,
            x + 4.0,
            y + 16.0,
            b.on + b.off + b.na
        )
        .ok();
    }
    s.push_str("</svg>");
    s
}

/// How much of an account the bundle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Read,
    Partial,
    /// Its role was refused or its regions unreachable: no key of it is in
    /// the bundle, so it is drawn as unknown, never as compliant.
    NotRead,
    /// Never tried (SUSPENDED, PENDING_CLOSURE...).
    Skipped,
}

/// One account in the compliance-by-account chart.
pub struct AccountBar {
    pub label: String,
    pub state: AccountState,
    pub eligible: usize,
    /// Eligible keys with no open finding.
    pub compliant: usize,
}

/// Compliance by account: one full-width bar per account, split into the
/// share of its eligible keys with no open finding (green) and the rest
/// (red). An account not read is hatched grey and says so; a skipped one is
/// an outline.
pub fn accounts(bars: &[AccountBar]) -> String {
    if bars.is_empty() {
        return empty("No account in the bundle.");
    }
    let shown = &bars[..bars.len().min(MAX_ROWS)];
    let label_w = 260.0;
    let plot_w = 420.0;
    let row_h = 22.0;
    let top = 30.0;
    let height = top + row_h * shown.len() as f64 + 30.0;
    let mut s = svg_open(
        label_w + plot_w + 200.0,
        height,
        "Compliance by account: share of eligible keys with no open finding",
    );
    s.push_str(r##"<defs><pattern id="not-read" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e0e0e0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#757575" stroke-width="2"/></pattern></defs>
"##);
    writeln!(
        s,
        r#"<rect x="{label_w}" y="6" width="12" height="12" class="bar-ok"/><text x="{}" y="16" class="axis">eligible keys, no open finding</text><rect x="{}" y="6" width="12" height="12" class="bar-bad"/><text x="{}" y="16" class="axis">with an open finding</text><rect x="{}" y="6" width="12" height="12" fill="url(#not-read)"/><text x="{}" y="16" class="axis">not read: unknown</text>"#,
        label_w + 16.0,
        label_w + 190.0,
        label_w + 206.0,
        label_w + 330.0,
        label_w + 346.0,
    )
    .ok();
    for (i, b) in shown.iter().enumerate() {
        let y = top + row_h * i as f64;
        let (bar, text) = match b.state {
            AccountState::NotRead => (
                format!(
                    r#"<rect x="{label_w}" y="{}" width="{plot_w}" height="{}" fill="url(#not-read)"/>"#,
                    y + 3.0,
                    row_h - 6.0
                ),
                "not read: no key counted".to_string(),
            ),
            AccountState::Skipped => (
                format!(
                    r#"<rect x="{label_w}" y="{}" width="{plot_w}" height="{}" fill="none" class="axis-line"/>"#,
                    y + 3.0,
                    row_h - 6.0
                ),
                "skipped: not tried".to_string(),
            ),
            AccountState::Read | AccountState::Partial if b.eligible == 0 => (
                String::new(),
                format!(
                    "no eligible keys{}",
                    if b.state == AccountState::Partial {
                        " (partly read)"
                    } else {
                        ""
                    }
                ),
            ),
            AccountState::Read | AccountState::Partial => {
                let ok_w = plot_w * b.compliant as f64 / b.eligible as f64;
                (
                    format!(
                        r#"<rect x="{label_w}" y="{y3}" width="{ok_w:.1}" height="{h}" class="bar-ok"/><rect x="{:.1}" y="{y3}" width="{:.1}" height="{h}" class="bar-bad"/>"#,
                        label_w + ok_w,
                        plot_w - ok_w,
                        y3 = y + 3.0,
                        h = row_h - 6.0
                    ),
                    format!(
                        "{} of {} ({:.0}%){}",
                        b.compliant,
                        b.eligible,
                        b.compliant as f64 * 100.0 / b.eligible as f64,
                        if b.state == AccountState::Partial {
                            ", partly read"
                        } else {
                            ""
                        }
                    ),
                )
            }
        };
        writeln!(
            s,
            r#"<g><title>{}: {}</title><text x="{}" y="{}" class="label" text-anchor="end">{}</text>{bar}<text x="{}" y="{}" class="value">{}</text></g>"#,
            esc(&b.label),
            esc(&text),
            label_w - 6.0,
            y + 15.0,
            esc(&truncate(&b.label, 38)),
            label_w + plot_w + 6.0,
            y + 15.0,
            esc(&text),
        )
        .ok();
    }
    if bars.len() > shown.len() {
        writeln!(
            s,
            r#"<text x="{label_w}" y="{}" class="axis">{} more accounts in the table below</text>"#,
            top + row_h * shown.len() as f64 + 16.0,
            bars.len() - shown.len()
        )
        .ok();
    }
    s.push_str("</svg>");
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Rotation,
    Failure,
    Enabled,
    Disabled,
}

/// One key's row in the timeline.
pub struct Lane {
    pub label: String,
    pub marks: Vec<(DateTime<Utc>, Mark)>,
}

/// Hours whose CloudTrail log files did not validate (altered, missing, not
/// in a digest, unverified) or where the digest chain broke, shaded across
/// every row.
pub struct Band {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub label: String,
}

/// Bands drawn at most; more are merged by the caller or left out.
const MAX_BANDS: usize = 200;

/// Rotations, failed rotation calls and rotation switched on/off, one row
/// per key, across the audit window, with the hours log file integrity
/// validation found broken.
pub fn timeline(
    lanes: &[Lane],
    bands: &[Band],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let bands: Vec<&Band> = bands
        .iter()
        .filter(|b| b.to >= start && b.from <= end)
        .take(MAX_BANDS)
        .collect();
    if lanes.is_empty() && bands.is_empty() {
        return empty("No rotations or rotation calls in the evidence for the audit window.");
    }
    let placeholder = [Lane {
        label: "(no rotation events)".into(),
        marks: Vec::new(),
    }];
    let lanes = if lanes.is_empty() {
        &placeholder[..]
    } else {
        lanes
    };
    let shown = &lanes[..lanes.len().min(MAX_ROWS)];
    let label_w = 260.0;
    let plot_w = 560.0;
    let row_h = 22.0;
    let top = 30.0;
    let span = (end - start).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        let off = (t - start).num_seconds() as f64 / span;
        label_w + plot_w * off.clamp(0.0, 1.0)
    };
    let height = top + row_h * shown.len() as f64 + 40.0;
    let mut s = svg_open(
        label_w + plot_w + 30.0,
        height,
        "Timeline of rotations and failures",
    );
    writeln!(
        s,
        r#"<circle cx="{}" cy="12" r="5" class="m-rot"/><text x="{}" y="16" class="axis">rotation</text><path d="M{} 7 l10 10 m0 -10 l-10 10" class="m-fail"/><text x="{}" y="16" class="axis">failed rotation call</text><rect x="{}" y="7" width="10" height="10" class="m-on"/><text x="{}" y="16" class="axis">rotation turned on</text><rect x="{}" y="7" width="10" height="10" class="m-off"/><text x="{}" y="16" class="axis">rotation turned off</text>"#,
        label_w + 5.0,
        label_w + 14.0,
        label_w + 80.0,
        label_w + 96.0,
        label_w + 220.0,
        label_w + 236.0,
        label_w + 370.0,
        label_w + 386.0
    )
    .ok();
    if !bands.is_empty() {
        writeln!(
            s,
            r#"<rect x="{}" y="7" width="10" height="10" class="m-broken"/><text x="{}" y="16" class="axis">log files not valid</text>"#,
            label_w + 470.0,
            label_w + 486.0
        )
        .ok();
        let band_h = row_h * shown.len() as f64;
        for b in &bands {
            let x0 = x(b.from);
            // An hour is a sliver on a year's axis: keep it visible.
            let w = (x(b.to) - x0).max(2.0);
            writeln!(
                s,
                r#"<g><title>{}: log file integrity {} to {}</title><rect x="{x0:.1}" y="{top}" width="{w:.1}" height="{band_h}" class="m-broken"/></g>"#,
                esc(&b.label),
                b.from.format("%Y-%m-%d %H:%M UTC"),
                b.to.format("%Y-%m-%d %H:%M UTC")
            )
            .ok();
        }
    }
    for (i, lane) in shown.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        writeln!(
            s,
            r#"<text x="{}" y="{}" class="label" text-anchor="end">{}</text><line x1="{label_w}" x2="{}" y1="{y}" y2="{y}" class="lane"/>"#,
            label_w - 6.0,
            y + 4.0,
            esc(&truncate(&lane.label, 38)),
            label_w + plot_w
        )
        .ok();
        for (t, mark) in &lane.marks {
            let cx = x(*t);
            let when = t.format("%Y-%m-%d %H:%M UTC");
            let (shape, what) = match mark {
                Mark::Rotation => (
                    format!(r#"<circle cx="{cx:.1}" cy="{y}" r="5" class="m-rot"/>"#),
                    "rotation",
                ),
                Mark::Failure => (
                    format!(
                        r#"<path d="M{:.1} {} l10 10 m0 -10 l-10 10" class="m-fail"/>"#,
                        cx - 5.0,
                        y - 5.0
                    ),
                    "failed rotation call",
                ),
                Mark::Enabled => (
                    format!(
                        r#"<rect x="{:.1}" y="{}" width="10" height="10" class="m-on"/>"#,
                        cx - 5.0,
                        y - 5.0
                    ),
                    "rotation turned on",
                ),
                Mark::Disabled => (
                    format!(
                        r#"<rect x="{:.1}" y="{}" width="10" height="10" class="m-off"/>"#,
                        cx - 5.0,
                        y - 5.0
                    ),
                    "rotation turned off",
                ),
            };
            writeln!(
                s,
                "<g><title>{}: {what} {when}</title>{shape}</g>",
                esc(&lane.label)
            )
            .ok();
        }
    }
    let axis_y = top + row_h * shown.len() as f64 + 4.0;
    writeln!(
        s,
        r#"<line x1="{label_w}" x2="{}" y1="{axis_y}" y2="{axis_y}" class="axis-line"/>"#,
        label_w + plot_w
    )
    .ok();
    // A tick on the first of each quarter inside the window.
    let mut d = start.date_naive().with_day(1).unwrap_or(start.date_naive());
    while d.and_hms_opt(0, 0, 0).is_some_and(|t| t.and_utc() <= end) {
        let t = d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(start);
        if t >= start && d.month() % 3 == 1 {
            let tx = x(t);
            writeln!(
                s,
                r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{axis_y}" y2="{}" class="axis-line"/><text x="{tx:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
                axis_y + 4.0,
                axis_y + 16.0,
                d.format("%Y-%m")
            )
            .ok();
        }
        d = match d.checked_add_months(chrono::Months::new(1)) {
            Some(n) => n,
            None => break,
        };
    }
    if lanes.len() > shown.len() {
        writeln!(
            s,
            r#"<text x="{label_w}" y="{}" class="axis">{} more keys with events in the per-key detail</text>"#,
            axis_y + 30.0,
            lanes.len() - shown.len()
        )
        .ok();
    }
    s.push_str("</svg>");
    s
}

fn svg_open(width: f64, height: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>{}</title>
"#,
        esc(title)
    )
}

fn empty(text: &str) -> String {
    format!(r#"<p class="empty">{}</p>"#, esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let svg = rotation_age(&[AgeBar {
            label: "alias/<script>alert(1)</script>".into(),
            age_days: 400,
            period_days: Some(365),
            eligible: true,
            rotated: true,
        }]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("bar-bad"));
        let svg = eligibility(&[StackBar {
            label: "a&b".into(),
            eligible: true,
            rotated_by_aws: false,
            on: 1,
            off: 2,
            na: 0,
        }]);
        assert!(svg.contains("a&amp;b"));
    }

    #[test]
    fn an_account_not_read_is_never_drawn_compliant() {
        let svg = accounts(&[
            AccountBar {
                label: "payments <prod>".into(),
                state: AccountState::Read,
                eligible: 4,
                compliant: 3,
            },
            AccountBar {
                label: "refused".into(),
                state: AccountState::NotRead,
                eligible: 0,
                compliant: 0,
            },
            AccountBar {
                label: "retired".into(),
                state: AccountState::Skipped,
                eligible: 0,
                compliant: 0,
            },
        ]);
        assert!(svg.contains("payments &lt;prod&gt;: 3 of 4 (75%)"), "{svg}");
        assert!(svg.contains("refused: not read: no key counted"), "{svg}");
        assert!(svg.contains("retired: skipped: not tried"), "{svg}");
        // Exactly one green bar: the read account's.
        assert_eq!(
            svg.matches(r#"class="bar-ok""#).count(),
            2,
            "legend + one bar"
        );
    }

    #[test]
    fn aws_managed_keys_are_drawn_as_rotated_by_aws() {
        // The emulator reads them off; AWS documents them as always rotating.
        let svg = eligibility(&[StackBar {
            label: "aws_managed".into(),
            eligible: false,
            rotated_by_aws: true,
            on: 0,
            off: 3,
            na: 0,
        }]);
        assert!(svg.contains("aws_managed: 3 rotated by AWS"), "{svg}");
        assert!(!svg.contains("aws_managed: 3 rotation off"), "{svg}");
    }
}
