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
use std::fs::File;
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

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
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

/// Every file under `dir` except the manifest (and its signature), as
/// relative `/`-separated paths, sorted.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                if rel != MANIFEST && !rel.starts_with("manifest.json.") {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
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
        let text = std::fs::read_to_string(&path).map_err(|e| {
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
}

pub fn read_coverage(dir: &Path) -> Result<Coverage> {
    let path = dir.join(COVERAGE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a kmsrot coverage file: {e}", path.display()))
}

/// What `verify-bundle` found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub verified: usize,
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Compares the bundle's files with the hashes its manifest holds.
pub fn verify(dir: &Path) -> Result<Verification> {
    let manifest = Manifest::read(dir)?;
    let present = list_files(dir)?;
    let mut v = Verification::default();
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
        if !present.contains(rel) {
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
}
