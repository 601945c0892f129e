//! Which files `kmsrot iac` reads: a file named on the command line (or `-`
//! for stdin), or every candidate file under a folder, in a stable order.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::display_path;

/// What one command-line argument stands for.
#[derive(Debug, Default)]
pub struct Found {
    /// A file named directly: it must be IaC.
    pub explicit: Option<PathBuf>,
    /// Candidate files under a folder: IaC or skipped.
    pub walked: Vec<PathBuf>,
}

/// Extensions a folder walk reads. `.template` is CloudFormation's own
/// (JSON or YAML); `.tfstate` is Terraform's raw state.
const EXTENSIONS: &[&str] = &["json", "yaml", "yml", "template", "tfstate"];

/// Expands one argument. Folders are walked recursively, skipping hidden
/// folders (`.git`, `.terraform` with its downloaded modules, `.aws-sam`
/// builds) and `node_modules`; symlinked folders are not followed, so a link
/// loop cannot trap the walk.
pub fn expand(input: &Path) -> Result<Found> {
    if input.as_os_str() == "-" {
        return Ok(Found {
            explicit: Some(input.to_path_buf()),
            walked: Vec::new(),
        });
    }
    let meta = std::fs::metadata(input)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", input.display()))?;
    if !meta.is_dir() {
        return Ok(Found {
            explicit: Some(input.to_path_buf()),
            walked: Vec::new(),
        });
    }
    let mut walked = Vec::new();
    walk(input, &mut walked)?;
    walked.sort();
    Ok(Found {
        explicit: None,
        walked,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot list folder: {e}", dir.display()))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| anyhow::anyhow!("{}: cannot list folder: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry
            .file_type()
            .map_err(|e| anyhow::anyhow!("{}: cannot stat: {e}", path.display()))?;
        if kind.is_dir() {
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            walk(&path, out)?;
        } else if is_candidate(&name) && (kind.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_candidate(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The file's display name and bytes; `-` is stdin.
pub fn read_input(path: &Path) -> Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("<stdin>: cannot read")?;
        return Ok(("<stdin>".into(), buf));
    }
    let name = display_path(path);
    match std::fs::read(path) {
        Ok(bytes) => Ok((name, bytes)),
        Err(e) => bail!("{name}: cannot read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_in_order_and_hidden_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in [
            "b/stack.template",
            "a/plan.json",
            "a/notes.txt",
            ".terraform/modules/x/main.json",
            "node_modules/pkg/package.json",
            "c/TEMPLATE.YML",
        ] {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "{}").unwrap();
        }
        let found = expand(root).unwrap();
        let rel: Vec<String> = found
            .walked
            .iter()
            .map(|p| display_path(p.strip_prefix(root).unwrap()))
            .collect();
        assert_eq!(rel, ["a/plan.json", "b/stack.template", "c/TEMPLATE.YML"]);
        assert!(found.explicit.is_none());
        let one = expand(&root.join("a/notes.txt")).unwrap();
        assert!(one.explicit.is_some() && one.walked.is_empty());
        assert!(expand(&root.join("missing")).is_err());
    }
}
