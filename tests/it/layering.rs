//! The layering of `src/`, read from its `crate::` paths (issue 15):
//!
//! - the CLI layer is `main.rs`, `cli.rs`, `args.rs`, `terminal.rs` and
//!   `commands/`; nothing below it names `cli`, `commands`, `args` or
//!   `terminal`;
//! - only the CLI layer names `clap` or `indicatif`;
//! - no command file imports another (`super::x`, `crate::commands::x`), and
//!   no command imports `cli` (the old `cli ⇄ commands` cycle);
//! - time formatting comes from `frames::time`, never from `output`.

use std::path::{Path, PathBuf};

const CLI_LAYER: &[&str] = &["main.rs", "cli.rs", "args.rs", "terminal.rs", "commands/"];
const CLI_MODULES: &[&str] = &["cli", "commands", "args", "terminal"];
const TIME_FUNCTIONS: &[&str] = &["rfc3339", "show_time", "parse_since", "parse_until"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments, line by line (comments may
/// name anything).
fn code_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => l[..i].to_string(),
            _ => l.to_string(),
        })
        .collect()
}

/// Every module path a line names through `crate::`, expanded over one
/// level of braces: `use crate::{a, b::c}` gives `a` and `b::c`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            out.extend(
                inner[..end]
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty()),
            );
        } else {
            let end = rest
                .find(|c: char| {
                    !(c.is_alphanumeric() || matches!(c, '_' | ':' | '{' | '}' | ',' | ' '))
                })
                .unwrap_or(rest.len());
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}

struct Source {
    rel: String,
    lines: Vec<String>,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| Source {
            rel: p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
            lines: code_lines(&std::fs::read_to_string(&p).unwrap()),
        })
        .collect()
}

fn in_cli_layer(rel: &str) -> bool {
    CLI_LAYER
        .iter()
        .any(|l| rel == *l || (l.ends_with('/') && rel.starts_with(l)))
}

/// Every layering problem in the given files, one line each.
fn violations(files: &[Source]) -> Vec<String> {
    let mut bad = Vec::new();
    let command_names: Vec<String> = files
        .iter()
        .filter_map(|f| f.rel.strip_prefix("commands/"))
        .filter(|n| *n != "mod.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    for f in files {
        let cli = in_cli_layer(&f.rel);
        let is_command = f.rel.starts_with("commands/") && f.rel != "commands/mod.rs";
        for (n, line) in f.lines.iter().enumerate() {
            let at = format!("src/{}:{}", f.rel, n + 1);
            for path in crate_paths(line) {
                let head = path.split("::").next().unwrap_or("").trim();
                if !cli && CLI_MODULES.contains(&head) {
                    bad.push(format!("{at}: below the CLI, names crate::{path}"));
                }
                if head == "output" && TIME_FUNCTIONS.iter().any(|t| path.contains(t)) {
                    bad.push(format!(
                        "{at}: takes time formatting from output (crate::{path}); it is in frames::time"
                    ));
                }
                if is_command && head == "cli" {
                    bad.push(format!("{at}: a command imports the CLI (crate::{path})"));
                }
                if is_command && head == "commands" {
                    bad.push(format!("{at}: a command imports a command (crate::{path})"));
                }
            }
            if !cli {
                for krate in ["clap", "indicatif"] {
                    if line.contains(&format!("{krate}::"))
                        || line.contains(&format!("use {krate}"))
                    {
                        bad.push(format!("{at}: below the CLI, uses {krate}"));
                    }
                }
            }
            if is_command {
                if let Some(i) = line.find("super::") {
                    let after = &line[i + "super::".len()..];
                    let named: Vec<&str> = match after.strip_prefix('{') {
                        Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())]
                            .split(',')
                            .collect(),
                        None => vec![after],
                    };
                    for item in named {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if command_names.contains(&name) {
                            bad.push(format!("{at}: a command imports a command (super::{name})"));
                        }
                    }
                }
            }
        }
        let defines_time = f.lines.iter().any(|l| {
            TIME_FUNCTIONS.iter().any(|t| {
                l.contains(&format!("fn {t}("))
                    || (l.trim_start().starts_with("pub use") && l.contains(t))
            })
        });
        if f.rel == "output.rs" && defines_time {
            bad.push("src/output.rs: defines or re-exports time formatting".into());
        }
    }
    bad
}

#[test]
fn the_layers_only_import_downward() {
    let files = sources();
    assert!(
        files.len() > 40,
        "found only {} files under src/",
        files.len()
    );
    assert!(files.iter().any(|f| f.rel == "commands/audit.rs"));
    let bad = violations(&files);
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_sees_each_kind_of_violation() {
    let file = |rel: &str, text: &str| Source {
        rel: rel.into(),
        lines: code_lines(text),
    };
    let files = [
        file(
            "inventory/mod.rs",
            "use crate::output::{rfc3339, Table};\nuse crate::commands::Ctx;",
        ),
        file(
            "trail/lookup.rs",
            "let bar: indicatif::ProgressBar = todo!();",
        ),
        file(
            "policy.rs",
            "#[derive(clap::ValueEnum)]\n// clap:: in a comment is fine",
        ),
        file(
            "commands/audit.rs",
            "use super::collect;\nuse crate::cli::Cli;",
        ),
        file("commands/collect.rs", "use crate::commands::report;"),
        file("report/mod.rs", "let t = crate::output::rfc3339(now);"),
    ];
    let bad = violations(&files);
    let text = bad.join("\n");
    for want in [
        "src/inventory/mod.rs:1: takes time formatting from output",
        "src/inventory/mod.rs:2: below the CLI, names crate::commands::Ctx",
        "src/trail/lookup.rs:1: below the CLI, uses indicatif",
        "src/policy.rs:1: below the CLI, uses clap",
        "src/commands/audit.rs:1: a command imports a command (super::collect)",
        "src/commands/audit.rs:2: a command imports the CLI",
        "src/commands/collect.rs:1: a command imports a command",
        "src/report/mod.rs:1: takes time formatting from output",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("policy.rs:2"), "{text}");
}
