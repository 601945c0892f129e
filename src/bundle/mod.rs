//! The evidence bundle: a folder an auditor can receive, verify and
//! re-analyze without AWS access.
//!
//! ```text
//! BUNDLE/
//!   manifest.json        who, when, what, the audit window, sources, SHA-256 of every file
//!   coverage.json        {"complete", "inventory": {...}, "trail": {...}}
//!   keys.* rotations.* events.* [findings.*]   Parquet, CSV and JSON
//!   raw/                 the API answers as the AWS CLI prints them
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::CallerIdentity;
use crate::inventory::InventoryCoverage;
use crate::output::write_json_file;
use crate::trail::TrailCoverage;

pub mod collect;

pub use collect::{collect, CollectRequest, Collected};

pub const MANIFEST: &str = "manifest.json";
pub const COVERAGE: &str = "coverage.json";
/// The manifest's signature and its description (`report --sign-with`):
/// the only files a bundle holds that its manifest cannot list.
pub const SIGNATURE: &str = "manifest.json.sig";
pub const SIGNATURE_INFO: &str = "manifest.json.sig.json";
/// Bumped when the layout changes in a way readers must know about.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One evidence source and the time it covers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceEntry {
    /// `kms-api`, `file`, `s3`, `lookup`, `lake`.
    pub kind: String,
    /// What was read: regions for the KMS API, the SOURCE argument otherwise.
    pub source: String,
    /// The span of time this source speaks for.
    pub covers_from: Option<DateTime<Utc>>,
    pub covers_to: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// The last assessment run on the bundle, so a report can say how findings
/// were derived and re-derive them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssessmentEntry {
    pub assessed_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub policy: String,
    /// Rule id → SHA-256 of its SQL file, so a changed rule is visible.
    pub rules: BTreeMap<String, String>,
    pub findings: usize,
    pub open: usize,
    /// Set when the evidence was judged on another day than it was
    /// collected: "judged N days after collection" (or before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_note: Option<String>,
    /// Each exemption of the policy and the keys of this bundle it matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<ExemptionReach>,
    /// The policy as applied (periods, grace, overrides, exemptions), so
    /// `diagnose` re-derives exactly these findings without the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_applied: Option<crate::policy::Policy>,
}

/// One exemption and its reach: every key of the bundle it matched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExemptionReach {
    /// As written in the policy: key ARN, key id, alias or alias ARN.
    pub key: String,
    pub rule: String,
    pub reason: String,
    pub approver: String,
    pub expires: String,
    pub expired: bool,
    pub matched: Vec<MatchedKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatchedKey {
    pub account_id: Option<String>,
    pub region: String,
    pub key_arn: String,
    pub aliases: Vec<String>,
}

/// One account of a bundle collected over several (`--accounts`, `--ou`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestAccount {
    pub account_id: String,
    pub name: Option<String>,
    pub ou_path: Option<String>,
    /// The role assumed to read it; `None`: the caller's own credentials.
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    /// Whether its keys are in the bundle (fully or partly).
    pub read: bool,
    /// `read`, `partial`, `not_read` or `skipped`.
    pub status: String,
    /// Why it was not read, or skipped.
    pub note: Option<String>,
}

/// The organization a bundle was collected from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestOrganization {
    pub id: Option<String>,
    pub management_account_id: Option<String>,
    /// How the accounts were chosen (`--accounts org`, `--ou ...`).
    pub selected_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub tool: String,
    pub tool_version: String,
    pub collected_at: DateTime<Utc>,
    /// STS GetCallerIdentity of the collecting credentials.
    pub caller: Option<CallerIdentity>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub audit_window: AuditWindow,
    pub sources: Vec<SourceEntry>,
    /// Set when the bundle was made from an emulator or synthetic data.
    pub simulated: Option<String>,
    pub assessment: Option<AssessmentEntry>,
    /// Relative path (with `/`) → SHA-256, for every file but the manifest.
    pub files: BTreeMap<String, String>,
    /// Set when the bundle covers several accounts: how they were chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<ManifestOrganization>,
    /// Every account asked for, read or not, with its name, OU path and the
    /// role used. Empty for a bundle of the caller's account alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_details: Vec<ManifestAccount>,
}

impl Manifest {
    /// The accounts whose keys are not (all) in the bundle, though they were
    /// asked for: their compliance cannot be judged from it.
    pub fn accounts_not_read(&self) -> Vec<&ManifestAccount> {
        self.account_details
            .iter()
            .filter(|a| a.status == "not_read")
            .collect()
    }
}

/// `coverage.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coverage {
    pub complete: bool,
    pub inventory: Option<InventoryCoverage>,
    pub trail: Option<TrailCoverage>,
}

impl Coverage {
    pub fn new(inventory: Option<InventoryCoverage>, trail: Option<TrailCoverage>) -> Self {
        // No trail source is not "incomplete coverage" of what was asked; the
        // evidence_gap rule reports what it means for the findings.
        let complete = inventory.as_ref().is_none_or(|i| i.complete)
            && trail.as_ref().is_none_or(|t| t.complete);
        Coverage {
            complete,
            inventory,
            trail,
        }
    }

    pub fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(i) = &self.inventory {
            out.extend(i.gaps());
        }
        if let Some(t) = &self.trail {
            out.extend(t.gaps());
        }
        out
    }
}

/// SHA-256 of a file, read without following a symlink.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = crate::output::open_no_follow(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What a bundle folder holds, as relative `/`-separated paths, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Regular files, except the manifest and its signature.
    pub files: Vec<String>,
    /// Symbolic links, never followed: a link can point outside the bundle.
    pub symlinks: Vec<String>,
    /// Anything else that is not a folder (fifos, sockets, devices).
    pub other: Vec<String>,
}

/// Walks `dir` without following links.
pub fn scan(dir: &Path) -> Result<Listing> {
    fn rel_of(root: &Path, path: &Path) -> String {
        let rel = path.strip_prefix(root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }
    fn walk(root: &Path, dir: &Path, out: &mut Listing) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            let rel = rel_of(root, &path);
            if kind.is_symlink() {
                out.symlinks.push(rel);
            } else if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                if rel != MANIFEST && rel != SIGNATURE && rel != SIGNATURE_INFO {
                    out.files.push(rel);
                }
            } else {
                out.other.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Listing::default();
    walk(dir, dir, &mut out)?;
    out.files.sort();
    out.symlinks.sort();
    out.other.sort();
    Ok(out)
}

/// Every regular file under `dir` except the manifest and its signature.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    Ok(scan(dir)?.files)
}

/// Hashes every file of the bundle.
pub fn hash_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for rel in list_files(dir)? {
        files.insert(rel.clone(), sha256_file(&dir.join(&rel))?);
    }
    Ok(files)
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = crate::output::read_string_no_follow(&path).map_err(|e| {
            crate::error::Error::input(
                &path,
                format!("cannot read the bundle manifest: {e}"),
                "a bundle is the folder written by `kmsrot collect --out BUNDLE`",
            )
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            crate::error::Error::input(
                &path,
                format!("not a kmsrot manifest: {e}"),
                "a bundle's manifest.json is written by `kmsrot collect`; collect the bundle again if it was edited",
            )
        })?;
        if m.format > FORMAT_VERSION {
            bail!(
                "{}: bundle format {} is newer than this kmsrot understands ({FORMAT_VERSION}); upgrade kmsrot",
                path.display(),
                m.format
            );
        }
        Ok(m)
    }

    /// Re-hashes the bundle's files into the manifest and writes it.
    pub fn seal(&mut self, dir: &Path) -> Result<PathBuf> {
        self.files = hash_files(dir)?;
        let path = dir.join(MANIFEST);
        write_json_file(&path, self)?;
        Ok(path)
    }

    /// Records the hashes of only the files named (those a command just
    /// wrote) and writes the manifest. Every other entry keeps the hash it
    /// was sealed with, so a file changed behind kmsrot's back still shows
    /// as changed after `assess --allow-modified` re-seals the bundle.
    pub fn seal_files(&mut self, dir: &Path, written: &[PathBuf]) -> Result<PathBuf> {
        for path in written {
            let rel = path.strip_prefix(dir).unwrap_or(path);
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            self.files.insert(rel, sha256_file(path)?);
        }
        let path = dir.join(MANIFEST);
        write_json_file(&path, self)?;
        Ok(path)
    }
}

pub fn read_coverage(dir: &Path) -> Result<Coverage> {
    let path = dir.join(COVERAGE);
    let text = crate::output::read_text_no_follow(&path)?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a kmsrot coverage file: {e}", path.display()))
}

/// What `verify-bundle` found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub verified: usize,
    pub changed: Vec<String>,
    /// Files the manifest does not list.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Symbolic links: never part of a sealed bundle, never followed.
    pub symlinks: Vec<String>,
    /// Fifos, sockets, devices.
    pub other: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.failures().is_empty()
    }

    /// Each failure as (status, file), in the order `verify-bundle` lists them.
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (status, files) in [
            ("changed", &self.changed),
            ("added", &self.added),
            ("removed", &self.removed),
            ("symlink", &self.symlinks),
            ("not_a_file", &self.other),
        ] {
            out.extend(files.iter().map(|f| (status, f.as_str())));
        }
        out
    }

    /// One line naming what differs: `2 changed (a, b); 1 symlink (c)`.
    pub fn describe(&self) -> String {
        const SHOWN: usize = 8;
        let mut parts = Vec::new();
        for (what, files) in [
            ("changed", &self.changed),
            ("added (not in the manifest)", &self.added),
            ("removed", &self.removed),
            ("symlink(s)", &self.symlinks),
            ("not a regular file", &self.other),
        ] {
            if files.is_empty() {
                continue;
            }
            let mut names: Vec<String> = files
                .iter()
                .take(SHOWN)
                .map(|f| crate::output::display_safe(f))
                .collect();
            if files.len() > SHOWN {
                names.push(format!("and {} more", files.len() - SHOWN));
            }
            parts.push(format!("{} {what} ({})", files.len(), names.join(", ")));
        }
        parts.join("; ")
    }
}

/// A bundle whose manifest was read and whose files were re-hashed against
/// it before anything else was read.
#[derive(Debug, Clone)]
pub struct Opened {
    pub manifest: Manifest,
    pub verification: Verification,
}

impl Opened {
    /// The banner a report carries when the bundle was used anyway.
    pub fn integrity_note(&self) -> Option<String> {
        (!self.verification.ok()).then(|| {
            format!(
                "this bundle does not match its manifest: {}",
                self.verification.describe()
            )
        })
    }
}

/// Opens a bundle for reading: its manifest must parse and every file must
/// match the SHA-256 the manifest holds, with no file added, removed or
/// replaced by a link. A mismatch is an error naming the files, unless
/// `allow_modified`, when it is a warning and the caller carries
/// [`Opened::integrity_note`] into what it writes.
pub fn open(dir: &Path, allow_modified: bool) -> Result<Opened> {
    let manifest = Manifest::read(dir)?;
    let verification = verify_against(dir, &manifest)?;
    if !verification.ok() {
        if !allow_modified {
            return Err(crate::error::hinted(
                format!(
                    "{}: the bundle does not match its manifest: {}",
                    dir.display(),
                    verification.describe()
                ),
                format!(
                    "run `kmsrot verify-bundle {}` to list every difference; evidence changed since it was sealed is not evidence. To read it anyway, pass --allow-modified (the output then says the bundle does not match its manifest)",
                    dir.display()
                ),
            ));
        }
        tracing::warn!(
            "{}: the bundle does not match its manifest ({}); going on because of --allow-modified",
            dir.display(),
            verification.describe()
        );
    }
    Ok(Opened {
        manifest,
        verification,
    })
}

/// Compares the bundle's files with the hashes its manifest holds.
pub fn verify(dir: &Path) -> Result<Verification> {
    let manifest = Manifest::read(dir)?;
    verify_against(dir, &manifest)
}

fn verify_against(dir: &Path, manifest: &Manifest) -> Result<Verification> {
    let listing = scan(dir)?;
    let present = listing.files;
    let mut v = Verification {
        symlinks: listing.symlinks,
        other: listing.other,
        ..Verification::default()
    };
    for rel in &present {
        match manifest.files.get(rel) {
            None => v.added.push(rel.clone()),
            Some(want) => {
                if sha256_file(&dir.join(rel))? == *want {
                    v.verified += 1;
                } else {
                    v.changed.push(rel.clone());
                }
            }
        }
    }
    for rel in manifest.files.keys() {
        // A link or special file at a listed path is reported as such, not
        // also as removed.
        if present.binary_search(rel).is_err()
            && v.symlinks.binary_search(rel).is_err()
            && v.other.binary_search(rel).is_err()
        {
            v.removed.push(rel.clone());
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let now = Utc::now();
        Manifest {
            format: FORMAT_VERSION,
            tool: "kmsrot".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            collected_at: now,
            caller: None,
            accounts: vec![],
            regions: vec![],
            audit_window: AuditWindow {
                start: now,
                end: now,
            },
            sources: vec![],
            simulated: None,
            assessment: None,
            files: BTreeMap::new(),
            organization: None,
            account_details: Vec::new(),
        }
    }

    #[test]
    fn tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.csv"), "a\n").unwrap();
        std::fs::create_dir(dir.path().join("raw")).unwrap();
        std::fs::write(dir.path().join("raw/list-keys.json"), "{}").unwrap();
        manifest().seal(dir.path()).unwrap();
        assert!(verify(dir.path()).unwrap().ok());

        std::fs::write(dir.path().join("keys.csv"), "b\n").unwrap();
        std::fs::write(dir.path().join("extra.txt"), "x").unwrap();
        std::fs::remove_file(dir.path().join("raw/list-keys.json")).unwrap();
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.changed, vec!["keys.csv"]);
        assert_eq!(v.added, vec!["extra.txt"]);
        assert_eq!(v.removed, vec!["raw/list-keys.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_unlisted_files_fail_verification() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::fs::write(dir.path().join("keys.csv"), "a\n").unwrap();
        std::fs::write(dir.path().join("events.csv"), "e\n").unwrap();
        manifest().seal(dir.path()).unwrap();
        // A listed file replaced by a link, a new link, and a file the
        // manifest never listed (its name mimics the signature's).
        std::fs::remove_file(dir.path().join("events.csv")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("events.csv"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("raw")).unwrap();
        std::fs::write(dir.path().join("manifest.json.evil"), "x").unwrap();
        let v = verify(dir.path()).unwrap();
        assert!(!v.ok());
        assert_eq!(v.symlinks, vec!["events.csv", "raw"]);
        assert_eq!(v.added, vec!["manifest.json.evil"]);
        assert!(v.removed.is_empty(), "{v:?}");
        assert_eq!(v.verified, 1);
        // Nothing behind a link is ever read.
        assert!(sha256_file(&dir.path().join("events.csv")).is_err());
        let err = open(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("symlink") && err.contains("events.csv"),
            "{err}"
        );
        let opened = open(dir.path(), true).unwrap();
        assert!(opened
            .integrity_note()
            .unwrap()
            .starts_with("this bundle does not match its manifest"));
    }

    #[test]
    fn a_missing_or_corrupt_manifest_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.csv"), "a\n").unwrap();
        assert!(open(dir.path(), true).is_err());
        std::fs::write(dir.path().join(MANIFEST), "{not json").unwrap();
        let err = open(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
    }

    #[test]
    fn seal_files_keeps_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.csv"), "a\n").unwrap();
        let mut m = manifest();
        m.seal(dir.path()).unwrap();
        std::fs::write(dir.path().join("keys.csv"), "tampered\n").unwrap();
        std::fs::write(dir.path().join("findings.csv"), "f\n").unwrap();
        m.seal_files(dir.path(), &[dir.path().join("findings.csv")])
            .unwrap();
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.changed, vec!["keys.csv"]);
        assert!(v.added.is_empty());
    }
}
