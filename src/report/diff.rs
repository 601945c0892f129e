//! The monthly review: what changed between two bundles of the same estate.
//! Keys are matched by ARN, findings by their stable `finding_id`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use serde::Serialize;

use super::due::{self, DueCheck, DueView};
use super::{key_name, Evidence};
use crate::frames::time::rfc3339;
use crate::inventory::KeyRecord;
use crate::output::{write_json_file, Table};
use crate::rules::engine::{Finding, FindingStatus};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyRef {
    pub name: String,
    pub arn: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyChange {
    pub key: KeyRef,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindingRef {
    pub finding_id: String,
    pub rule_id: String,
    pub severity: String,
    pub key: String,
    pub region: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExpiredExemption {
    pub finding_id: String,
    pub rule_id: String,
    pub key: String,
    pub reason: String,
    pub expired: String,
}

/// An account of an organization's bundle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountRef {
    pub account_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BundleRef {
    pub path: String,
    pub collected_at: String,
    pub as_of: Option<String>,
    pub keys: usize,
    pub open: usize,
    /// Set when the bundle did not match its manifest and was read anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub old: BundleRef,
    pub new: BundleRef,
    pub keys_added: Vec<KeyRef>,
    pub keys_removed: Vec<KeyRef>,
    pub rotation_turned_on: Vec<KeyRef>,
    pub rotation_turned_off: Vec<KeyRef>,
    pub period_changed: Vec<KeyChange>,
    pub state_changed: Vec<KeyChange>,
    pub findings_opened: Vec<FindingRef>,
    pub findings_resolved: Vec<FindingRef>,
    pub findings_still_open: Vec<FindingRef>,
    pub exemptions_expired: Vec<ExpiredExemption>,
    /// Accounts in the new bundle's selection and not the old one's.
    pub accounts_added: Vec<AccountRef>,
    /// Accounts in the old bundle's selection and not the new one's.
    pub accounts_removed: Vec<AccountRef>,
    /// Accounts read in the old bundle and asked, but not read, in the new:
    /// their keys and findings are not compared (not removed, not resolved).
    pub accounts_no_longer_read: Vec<AccountRef>,
    /// Accounts not read in the old bundle and read in the new.
    pub accounts_read_again: Vec<AccountRef>,
    /// Keys in an account only one of the two bundles read.
    pub keys_not_compared: usize,
    /// Findings open in the old bundle, in an account the new one did not
    /// read: unknown now, never "resolved".
    pub findings_not_verified: Vec<FindingRef>,
    /// The new bundle's keys coming due (and overdue), as of its assessment.
    pub due: DueView,
    /// The keys the old bundle showed due by the new one's as-of, and
    /// whether they rotated.
    pub due_since_old: Vec<DueCheck>,
}

/// The accounts of a bundle: (every account it names with its name, the
/// ones whose keys it holds). A bundle of the caller's account alone holds
/// every account it names.
fn bundle_accounts(ev: &Evidence) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let m = &ev.manifest;
    if m.account_details.is_empty() {
        let named: BTreeMap<String, String> = m
            .accounts
            .iter()
            .chain(ev.keys.iter().filter_map(|k| k.account_id.as_ref()))
            .map(|a| (a.clone(), String::new()))
            .collect();
        let read = named.keys().cloned().collect();
        return (named, read);
    }
    let named = m
        .account_details
        .iter()
        .map(|a| (a.account_id.clone(), a.name.clone().unwrap_or_default()))
        .collect();
    let read = m
        .account_details
        .iter()
        .filter(|a| a.read)
        .map(|a| a.account_id.clone())
        .collect();
    (named, read)
}

/// A key that was due and is missing from the later bundle is "key
/// removed" only when the later bundle read its account; otherwise whether
/// it rotated is unknown.
fn not_removed_unless_read(c: &mut DueCheck, read: impl Fn(Option<&str>) -> bool) {
    let account = crate::aws::arn_account(&c.key_arn);
    if c.outcome == "key removed" && !read(account) {
        c.outcome = "unknown".into();
        c.detail = format!(
            "its account {} was not read in the later bundle",
            account.unwrap_or("?")
        );
    }
}

fn key_ref(k: &KeyRecord) -> KeyRef {
    KeyRef {
        name: key_name(k),
        arn: k.arn.clone(),
        region: k.region.clone(),
    }
}

fn bundle_ref(ev: &Evidence) -> BundleRef {
    BundleRef {
        path: ev.dir.display().to_string(),
        collected_at: rfc3339(ev.manifest.collected_at),
        as_of: ev.manifest.assessment.as_ref().map(|a| rfc3339(a.as_of)),
        keys: ev.keys.len(),
        open: ev.findings.iter().filter(|f| f.is_open()).count(),
        integrity: ev.integrity.clone(),
    }
}

fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "unknown".into(), |d| format!("{d} days"))
}

/// Compares two assessed bundles; the forward view lists the new bundle's
/// keys due within `due_within` days.
pub fn diff(old: &Evidence, new: &Evidence, due_within: i64) -> Result<Diff> {
    let old_keys: BTreeMap<&str, &KeyRecord> =
        old.keys.iter().map(|k| (k.arn.as_str(), k)).collect();
    let new_keys: BTreeMap<&str, &KeyRecord> =
        new.keys.iter().map(|k| (k.arn.as_str(), k)).collect();
    let mut d = Diff {
        old: bundle_ref(old),
        new: bundle_ref(new),
        keys_added: Vec::new(),
        keys_removed: Vec::new(),
        rotation_turned_on: Vec::new(),
        rotation_turned_off: Vec::new(),
        period_changed: Vec::new(),
        state_changed: Vec::new(),
        findings_opened: Vec::new(),
        findings_resolved: Vec::new(),
        findings_still_open: Vec::new(),
        exemptions_expired: Vec::new(),
        accounts_added: Vec::new(),
        accounts_removed: Vec::new(),
        accounts_no_longer_read: Vec::new(),
        accounts_read_again: Vec::new(),
        keys_not_compared: 0,
        findings_not_verified: Vec::new(),
        due: due::coming_due(new, new.assessed_as_of(), due_within)
            .with_context(|| format!("{}: the keys coming due", new.dir.display()))?,
        due_since_old: due::check_rotated(old, new)
            .with_context(|| format!("{}: the keys that were due", new.dir.display()))?,
    };
    let (old_named, old_read) = bundle_accounts(old);
    let (new_named, new_read) = bundle_accounts(new);
    let aref = |id: &str, names: &BTreeMap<String, String>| AccountRef {
        account_id: id.to_string(),
        name: names.get(id).cloned().unwrap_or_default(),
    };
    for id in new_named.keys() {
        if !old_named.contains_key(id) {
            d.accounts_added.push(aref(id, &new_named));
        } else if old_read.contains(id) && !new_read.contains(id) {
            d.accounts_no_longer_read.push(aref(id, &new_named));
        } else if !old_read.contains(id) && new_read.contains(id) {
            d.accounts_read_again.push(aref(id, &new_named));
        }
    }
    for id in old_named.keys() {
        if !new_named.contains_key(id) {
            d.accounts_removed.push(aref(id, &old_named));
        }
    }
    // A key or finding is compared only where both bundles read its
    // account; a key of an account added to the selection is new.
    let comparable = |account: Option<&str>| {
        account.is_none_or(|a| old_read.contains(a) && new_read.contains(a))
    };
    let newly_selected = |account: Option<&str>| {
        account.is_some_and(|a| !old_named.contains_key(a) && new_read.contains(a))
    };
    // A key the old bundle showed due, in an account the new one did not
    // read: whether it rotated is unknown, never "key removed".
    for c in &mut d.due_since_old {
        not_removed_unless_read(c, |a| comparable(a) || newly_selected(a));
    }
    for (arn, k) in &new_keys {
        let Some(o) = old_keys.get(arn) else {
            let account = k.account_id.as_deref();
            if comparable(account) || newly_selected(account) {
                d.keys_added.push(key_ref(k));
            } else {
                d.keys_not_compared += 1;
            }
            continue;
        };
        match (o.rotation_enabled, k.rotation_enabled) {
            (Some(false) | None, Some(true)) => d.rotation_turned_on.push(key_ref(k)),
            (Some(true), Some(false)) => d.rotation_turned_off.push(key_ref(k)),
            _ => {}
        }
        if o.rotation_period_days != k.rotation_period_days
            && (o.rotation_period_days.is_some() || k.rotation_period_days.is_some())
        {
            d.period_changed.push(KeyChange {
                key: key_ref(k),
                old: show(o.rotation_period_days),
                new: show(k.rotation_period_days),
            });
        }
        if o.key_state != k.key_state {
            d.state_changed.push(KeyChange {
                key: key_ref(k),
                old: o.key_state.clone().unwrap_or_default(),
                new: k.key_state.clone().unwrap_or_default(),
            });
        }
    }
    for (arn, k) in &old_keys {
        if !new_keys.contains_key(arn) {
            if comparable(k.account_id.as_deref()) {
                d.keys_removed.push(key_ref(k));
            } else {
                d.keys_not_compared += 1;
            }
        }
    }

    let names: BTreeMap<&str, String> = old
        .keys
        .iter()
        .chain(new.keys.iter())
        .map(|k| (k.arn.as_str(), key_name(k)))
        .collect();
    let f_ref = |f: &Finding| FindingRef {
        finding_id: f.finding_id.clone(),
        rule_id: f.rule_id.clone(),
        severity: f.severity.to_string(),
        key: f.key_arn.as_deref().map_or_else(
            || "(account/region)".into(),
            |a| names.get(a).cloned().unwrap_or_else(|| a.to_string()),
        ),
        region: f.region.clone().unwrap_or_default(),
        title: f.title.clone(),
    };
    let by_id = |fs: &[Finding]| -> BTreeMap<String, Finding> {
        fs.iter()
            .map(|f| (f.finding_id.clone(), f.clone()))
            .collect()
    };
    let (old_f, new_f) = (by_id(&old.findings), by_id(&new.findings));
    let is_open = |m: &BTreeMap<String, Finding>, id: &str| m.get(id).is_some_and(|f| f.is_open());
    for (id, f) in &new_f {
        if !f.is_open() {
            continue;
        }
        if is_open(&old_f, id) {
            d.findings_still_open.push(f_ref(f));
        } else {
            d.findings_opened.push(f_ref(f));
        }
        // Exempted last month, open now: its exemption ran out.
        if let Some(o) = old_f
            .get(id)
            .filter(|o| o.status == FindingStatus::Exempted)
        {
            d.exemptions_expired.push(ExpiredExemption {
                finding_id: id.clone(),
                rule_id: f.rule_id.clone(),
                key: f_ref(f).key,
                reason: o.exemption_reason.clone().unwrap_or_default(),
                expired: o.exemption_expires.clone().unwrap_or_default(),
            });
        }
        // The rule that reports expired exemptions fired for the first time.
        if f.rule_id == "exemption_expired" && !old_f.contains_key(id) {
            d.exemptions_expired.push(ExpiredExemption {
                finding_id: id.clone(),
                rule_id: f.rule_id.clone(),
                key: f_ref(f).key,
                reason: f.detail.clone(),
                expired: String::new(),
            });
        }
    }
    for (id, f) in &old_f {
        if f.is_open() && !is_open(&new_f, id) {
            if comparable(f.account_id.as_deref()) {
                d.findings_resolved.push(f_ref(f));
            } else {
                d.findings_not_verified.push(f_ref(f));
            }
        }
    }
    Ok(d)
}

fn push(t: &mut Table, change: &str, key: &str, region: &str, detail: &str) {
    t.row([change, key, region, detail]);
}

impl Diff {
    /// Anything a reviewer must look at.
    pub fn opened(&self) -> bool {
        !self.findings_opened.is_empty()
    }

    /// True when either bundle covers several accounts.
    fn over_accounts(&self) -> bool {
        !(self.accounts_added.is_empty()
            && self.accounts_removed.is_empty()
            && self.accounts_no_longer_read.is_empty()
            && self.accounts_read_again.is_empty()
            && self.findings_not_verified.is_empty()
            && self.keys_not_compared == 0)
    }

    /// The forward view in one line, as `diff` prints it on stderr.
    pub fn due_line(&self) -> String {
        let count = |b: &str| {
            self.due
                .buckets
                .iter()
                .find(|x| x.bucket == b)
                .map_or(0, |x| x.keys)
        };
        let outcome = |o: &str| self.due_since_old.iter().filter(|c| c.outcome == o).count();
        let mut line = format!(
            "due: {} overdue, {} due within {} days",
            count("overdue"),
            self.due.keys.len() - count("overdue"),
            self.due.within_days
        );
        if !self.due.not_forecast.is_empty() {
            let _ = write!(line, " ({} not forecast)", self.due.not_forecast.len());
        }
        if !self.due_since_old.is_empty() {
            let _ = write!(
                line,
                "; of the {} due since the old bundle: {} rotated, {} not rotated, {} unknown, {} removed",
                self.due_since_old.len(),
                outcome("rotated"),
                outcome("not rotated"),
                outcome("unknown"),
                outcome("key removed")
            );
        }
        line
    }

    /// One row per change, then the keys coming due, for `--output table|csv`.
    pub fn table(&self) -> Table {
        let mut t = self.changes_table();
        for c in &self.due_since_old {
            push(
                &mut t,
                &format!("was due: {}", c.outcome),
                &c.key,
                &c.region,
                &format!("due {}; {}", c.was_due, c.detail),
            );
        }
        for k in &self.due.keys {
            push(
                &mut t,
                &if k.bucket == "overdue" {
                    "overdue".to_string()
                } else {
                    format!("due in {}", k.bucket)
                },
                &k.key,
                &k.region,
                &format!("{} ({} days); from {}", k.due_at, k.days, k.basis),
            );
        }
        t
    }

    /// One row per change between the bundles.
    fn changes_table(&self) -> Table {
        let mut t = Table::new(["change", "key", "region", "detail"]);
        for (what, list) in [
            ("account added", &self.accounts_added),
            ("account removed", &self.accounts_removed),
            ("account no longer read", &self.accounts_no_longer_read),
            ("account read again", &self.accounts_read_again),
        ] {
            for a in list {
                push(&mut t, what, &a.account_id, "", &a.name);
            }
        }
        for k in &self.keys_added {
            push(&mut t, "key added", &k.name, &k.region, &k.arn);
        }
        for k in &self.keys_removed {
            push(&mut t, "key removed", &k.name, &k.region, &k.arn);
        }
        for k in &self.rotation_turned_on {
            push(&mut t, "rotation on", &k.name, &k.region, "");
        }
        for k in &self.rotation_turned_off {
            push(&mut t, "rotation off", &k.name, &k.region, "");
        }
        for c in &self.period_changed {
            push(
                &mut t,
                "period changed",
                &c.key.name,
                &c.key.region,
                &format!("{} -> {}", c.old, c.new),
            );
        }
        for c in &self.state_changed {
            push(
                &mut t,
                "state changed",
                &c.key.name,
                &c.key.region,
                &format!("{} -> {}", c.old, c.new),
            );
        }
        for (what, list) in [
            ("finding opened", &self.findings_opened),
            ("finding resolved", &self.findings_resolved),
            ("finding still open", &self.findings_still_open),
        ] {
            for f in list {
                push(
                    &mut t,
                    what,
                    &f.key,
                    &f.region,
                    &format!("{} {} ({})", f.severity, f.rule_id, f.finding_id),
                );
            }
        }
        for f in &self.findings_not_verified {
            push(
                &mut t,
                "finding not verified (account not read)",
                &f.key,
                &f.region,
                &format!("{} {} ({})", f.severity, f.rule_id, f.finding_id),
            );
        }
        for e in &self.exemptions_expired {
            push(
                &mut t,
                "exemption expired",
                &e.key,
                "",
                &format!("{}: {} {}", e.rule_id, e.reason, e.expired),
            );
        }
        t
    }

    /// Writes `diff.md` and `diff.json` into `dir` (created if absent),
    /// each atomically.
    pub fn write_files(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::output::write_bytes_atomic(&dir.join("diff.md"), self.markdown().as_bytes())?;
        write_json_file(&dir.join("diff.json"), self)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        // Every value comes from a bundle: links, images and code spans in
        // it are escaped like the report's.
        let cell = |v: &str| super::md_cell(v.to_string());
        let _ = writeln!(s, "# Monthly review: what changed\n");
        for (which, b) in [("Old", &self.old), ("New", &self.new)] {
            if let Some(note) = &b.integrity {
                let _ = writeln!(
                    s,
                    "> **Warning: the {} bundle: {}.** It was read anyway (`--allow-modified`).\n",
                    which.to_ascii_lowercase(),
                    cell(note)
                );
            }
        }
        let _ = writeln!(
            s,
            "- Old: {} collected {} ({} keys, {} open findings)",
            super::md_code(self.old.path.clone()),
            cell(&self.old.collected_at),
            self.old.keys,
            self.old.open
        );
        let _ = writeln!(
            s,
            "- New: {} collected {} ({} keys, {} open findings)\n",
            super::md_code(self.new.path.clone()),
            cell(&self.new.collected_at),
            self.new.keys,
            self.new.open
        );
        let _ = writeln!(s, "| Change | Count |\n|---|---:|");
        for (what, n) in [
            ("Keys added", self.keys_added.len()),
            ("Keys removed", self.keys_removed.len()),
            ("Rotation turned on", self.rotation_turned_on.len()),
            ("Rotation turned off", self.rotation_turned_off.len()),
            ("Period changed", self.period_changed.len()),
            ("Key state changed", self.state_changed.len()),
            ("Findings opened", self.findings_opened.len()),
            ("Findings resolved", self.findings_resolved.len()),
            ("Findings still open", self.findings_still_open.len()),
            ("Exemptions expired", self.exemptions_expired.len()),
        ] {
            let _ = writeln!(s, "| {what} | {n} |");
        }
        if self.over_accounts() {
            for (what, n) in [
                ("Accounts added", self.accounts_added.len()),
                ("Accounts removed", self.accounts_removed.len()),
                (
                    "Accounts no longer read",
                    self.accounts_no_longer_read.len(),
                ),
                ("Accounts read again", self.accounts_read_again.len()),
                (
                    "Keys not compared (account read in one bundle only)",
                    self.keys_not_compared,
                ),
                (
                    "Findings not verified (account not read)",
                    self.findings_not_verified.len(),
                ),
            ] {
                let _ = writeln!(s, "| {what} | {n} |");
            }
        }
        let t = self.changes_table();
        if !t.rows.is_empty() {
            let _ = writeln!(s, "\n## Details\n");
            let _ = writeln!(s, "| Change | Key | Region | Detail |\n|---|---|---|---|");
            for r in &t.rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    cell(&r[0]),
                    cell(&r[1]),
                    cell(&r[2]),
                    cell(&r[3])
                );
            }
        }
        self.due_markdown(&mut s);
        s
    }

    /// The forward view: what the old review expected to rotate by now and
    /// whether it did, then what is overdue or due next.
    fn due_markdown(&self, s: &mut String) {
        let cell = |v: &str| super::md_cell(v.to_string());
        let _ = writeln!(
            s,
            "\n## Keys coming due\n\nEligible keys with rotation on in the new bundle that KMS should rotate by {} (the next {} days from {}), overdue first: NextRotationDate, else one period after the schedule start the rules judge by.\n",
            cell(&self.due.until[..self.due.until.len().min(10)]),
            self.due.within_days,
            cell(&self.due.as_of[..self.due.as_of.len().min(10)])
        );
        let _ = writeln!(s, "| Bucket | Keys |\n|---|---:|");
        for b in &self.due.buckets {
            let _ = writeln!(s, "| {} | {} |", cell(&b.bucket), b.keys);
        }
        if !self.due.keys.is_empty() {
            let _ = writeln!(
                s,
                "\n| Key | Region | Due | Days | Bucket | Period (days) | From |\n|---|---|---|---:|---|---:|---|"
            );
            for k in &self.due.keys {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    cell(&k.key),
                    cell(&k.region),
                    cell(&k.due_at),
                    k.days,
                    cell(&k.bucket),
                    k.period_days,
                    cell(&k.basis)
                );
            }
        }
        for n in &self.due.not_forecast {
            let _ = writeln!(
                s,
                "\n- Not forecast: {} ({}): {}",
                cell(&n.key),
                cell(&n.region),
                cell(&n.reason)
            );
        }
        if !self.due_since_old.is_empty() {
            let _ = writeln!(
                s,
                "\n### Due since the old bundle: did they rotate?\n\n| Key | Region | Was due | Outcome | Detail |\n|---|---|---|---|---|"
            );
            for c in &self.due_since_old {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    cell(&c.key),
                    cell(&c.region),
                    cell(&c.was_due),
                    cell(&c.outcome),
                    cell(&c.detail)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_key_of_an_account_not_read_is_unknown_not_removed() {
        let due = |account: &str| DueCheck {
            key: "alias/app".into(),
            key_arn: format!("arn:aws:kms:us-east-1:{account}:key/k"),
            region: "us-east-1".into(),
            was_due: "2026-01-01T00:00:00Z".into(),
            outcome: "key removed".into(),
            detail: "not in the later bundle".into(),
        };
        let read = |a: Option<&str>| a == Some("111122223333");
        let mut gone = due("111122223333");
        not_removed_unless_read(&mut gone, read);
        assert_eq!(gone.outcome, "key removed");
        let mut unseen = due("444455556666");
        not_removed_unless_read(&mut unseen, read);
        assert_eq!(unseen.outcome, "unknown");
        assert!(
            unseen.detail.contains("444455556666 was not read"),
            "{}",
            unseen.detail
        );
    }
}
