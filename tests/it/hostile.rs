//! Issue 17: hostile strings in the evidence, and the consumers of what
//! kmsrot writes. Offline: a copy of the sample bundle whose key
//! descriptions, aliases, CloudTrail userAgents, principals and error
//! messages are an attacker's (spreadsheet formulas, Markdown images,
//! terminal escape sequences), re-sealed as `collect` would have sealed it.
//! Then: every CSV cell neutral, the bundle verified on every read, the
//! report never written into the bundle, a closed pipe never turned into
//! success, the ASFF bodies accepted by botocore's validator, the OCSF
//! findings by the official OCSF JSON Schema, the Parquet files by DuckDB.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmsrot::frames::{EVENTS, KEYS};
use kmsrot::inventory::KeyRecord;
use kmsrot::output::{frame_records, read_frame, write_frame};
use kmsrot::trail::EventRow;

use crate::support::{fixtures, kmsrot, read_json, run};

const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";
const AGENT: &str = "=cmd|' /C calc'!A0";
const IMAGE: &str = "![pwn](https://evil.example/pixel.png)";
const ESCAPES: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J";

fn sample_bundle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The sample bundle with an attacker's strings in it, sealed and assessed.
fn hostile_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    copy_dir(&sample_bundle(), &bundle);
    let mut keys: Vec<KeyRecord> =
        frame_records(&read_frame(&bundle, &KEYS).unwrap(), &KEYS).unwrap();
    for (i, k) in keys.iter_mut().enumerate() {
        k.description = Some(FORMULA.into());
        if k.key_manager.as_deref() == Some("CUSTOMER") {
            k.aliases = vec![format!("alias/{i}{IMAGE}{ESCAPES}")];
        }
    }
    let mut events: Vec<EventRow> =
        frame_records(&read_frame(&bundle, &EVENTS).unwrap(), &EVENTS).unwrap();
    for e in &mut events {
        e.user_agent = Some(AGENT.into());
        e.invoked_by = Some("@SUM(1+1)".into());
        if let Some(p) = &e.principal_arn {
            e.principal_arn = Some(format!("{p}/{IMAGE}{ESCAPES}"));
        }
        if e.error_code.is_some() {
            e.error_message = Some(format!("-2+3 {ESCAPES}`code`"));
        }
    }
    write_frame(
        &bundle,
        &KEYS,
        &mut kmsrot::inventory::keys_frame(&keys).unwrap(),
    )
    .unwrap();
    write_frame(
        &bundle,
        &EVENTS,
        &mut kmsrot::trail::events_frame(&events).unwrap(),
    )
    .unwrap();
    let mut m = kmsrot::bundle::Manifest::read(&bundle).unwrap();
    m.seal(&bundle).unwrap();
    let (code, _, stderr) = run(kmsrot()
        .args(["assess", "--policy"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample-policy.toml"))
        .arg(&bundle));
    assert!(code == 1 || code == 3, "assess: {stderr}");
    bundle
}

fn report(bundle: &Path, out: &Path) -> (i32, String, String) {
    run(kmsrot().arg("report").arg(bundle).arg("--out").arg(out))
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_with(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every cell of every CSV under `dir` starts with something a spreadsheet
/// shows as text.
fn assert_no_formula_cells(dir: &Path) -> usize {
    let mut cells = 0;
    for path in files_with(dir, "csv") {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&path)
            .unwrap();
        for row in r.records() {
            for cell in row.unwrap().iter() {
                cells += 1;
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{}: formula cell {cell:?}",
                    path.display()
                );
            }
        }
    }
    cells
}

fn venv_python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/test, which installs the test tools",
        p.display()
    );
    p
}

fn python(script: &str, args: &[&Path]) -> (i32, String, String) {
    run(Command::new(venv_python()).arg("-c").arg(script).args(args))
}

#[test]
fn csv_cells_never_start_a_formula_and_json_keeps_the_value() {
    let work = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(work.path());
    let out = work.path().join("report");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 3, "{stderr}");
    assert!(assert_no_formula_cells(&bundle) > 100);
    assert!(assert_no_formula_cells(&out) > 100);
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert!(keys.contains("'=HYPERLINK"), "{keys}");
    // JSON and Parquet keep what AWS (here, the attacker) said.
    let json = read_json(&out.join("keys.json"));
    assert_eq!(json[0]["description"], FORMULA);
    let events = read_json(&out.join("events.json"));
    assert_eq!(events[0]["user_agent"], AGENT);

    // Printed CSV too.
    let (code, stdout, stderr) = run(kmsrot()
        .args(["--output", "csv", "diagnose", "--bundle"])
        .arg(&bundle)
        .arg(keys_first_alias(&bundle)));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains('\u{1b}'), "{stdout}");

    // trail scan's CSV, from a log whose userAgent is a formula.
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let src = fixtures().join(
        "cloudtrail/aws-docs-examples/awsdocs-aws-kms-developer-guide/ct-enablekeyrotation.1.json",
    );
    let text = std::fs::read_to_string(&src)
        .ok()
        .unwrap_or_else(|| panic!("{} missing", src.display()));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let record = if v.get("Records").is_some() {
        &mut v["Records"][0]
    } else {
        &mut v
    };
    record["userAgent"] = serde_json::Value::String(AGENT.into());
    record["userIdentity"]["arn"] = serde_json::Value::String(format!("@{IMAGE}"));
    std::fs::write(logs.join("log.json"), serde_json::to_string(&v).unwrap()).unwrap();
    let scanned = work.path().join("scan");
    let (code, _, stderr) = run(kmsrot()
        .args(["trail", "scan", "--out"])
        .arg(&scanned)
        .arg(&logs));
    assert!(code == 0 || code == 3, "{stderr}");
    assert!(assert_no_formula_cells(&scanned) > 10);
    assert!(std::fs::read_to_string(scanned.join("events.csv"))
        .unwrap()
        .contains("'=cmd"));
}

fn keys_first_alias(bundle: &Path) -> String {
    let keys = read_json(&bundle.join("keys.json"));
    keys.as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["aliases"][0].as_str())
        .find(|a| a.contains("pwn"))
        .unwrap()
        .to_string()
}

#[test]
fn report_never_writes_into_the_bundle_it_reads() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    for out in [
        bundle.clone(),
        bundle.join("report"),
        bundle.join("raw"),
        work.path().to_path_buf(),
    ] {
        let (code, _, stderr) = run(kmsrot()
            .arg("report")
            .arg(&bundle)
            .arg("--force")
            .arg("--out")
            .arg(&out));
        assert_eq!(code, 2, "{}: {stderr}", out.display());
        assert!(
            stderr.contains("refusing to write into the evidence"),
            "{stderr}"
        );
    }
    // Relative spellings of the same folder too.
    let (code, _, stderr) =
        run(kmsrot()
            .current_dir(work.path())
            .args(["report", "B", "--out", "./B/../B/"]));
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 0, "the bundle was changed: {stderr}");

    // A plan is not written into it either.
    let (code, _, stderr) = run(kmsrot()
        .arg("plan")
        .arg(&bundle)
        .arg("--out")
        .arg(bundle.join("plan.json")));
    assert_eq!(code, 2, "{stderr}");
    assert!(!bundle.join("plan.json").exists());

    // A non-empty --out is refused without --force, and emptied with it.
    let out = work.path().join("report");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale.csv"), "old").unwrap();
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(&bundle)
        .args(["--force", "--out"])
        .arg(&out));
    assert_eq!(code, 3, "{stderr}");
    assert!(!out.join("stale.csv").exists());
    // No temporary file is left behind by the atomic writes.
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "left over: {name}");
    }
}

#[test]
fn every_reader_refuses_a_tampered_bundle() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    // The high findings removed from findings.parquet, manifest untouched.
    let df = read_frame(&bundle, &kmsrot::frames::FINDINGS).unwrap();
    let keep: polars::prelude::BooleanChunked = df
        .column("severity")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s != Some("high"))
        .collect();
    let mut df = df.filter(&keep).unwrap();
    kmsrot::output::write_parquet(&bundle.join("findings.parquet"), &mut df).unwrap();

    let out = work.path().join("r");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not match its manifest") && stderr.contains("findings.parquet"),
        "{stderr}"
    );
    assert!(!out.join("report.md").exists());
    for args in [
        vec!["assess"],
        vec!["plan", "--out", "/dev/null/never"],
        vec!["diff", "--output", "json"],
    ] {
        let mut cmd = kmsrot();
        cmd.arg(args[0]).arg(&bundle).args(&args[1..]);
        if args[0] == "diff" {
            cmd.arg(sample_bundle());
        }
        let (code, _, stderr) = run(&mut cmd);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("findings.parquet"), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run(kmsrot()
        .args(["diagnose", "alias/orders-api", "--bundle"])
        .arg(&bundle));
    assert_eq!(code, 2, "{stderr}");

    // --allow-modified: the report is written, and says so at the top.
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(&bundle)
        .args(["--allow-modified", "--out"])
        .arg(&out));
    assert_eq!(code, 3, "{stderr}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.lines()
            .take(6)
            .any(|l| l.contains("this bundle does not match its manifest")),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("this bundle does not match its manifest"));

    // assess --allow-modified re-seals only what it wrote: the tampered
    // file still fails verification afterwards.
    let (code, _, stderr) = run(kmsrot().args(["assess", "--allow-modified"]).arg(&bundle));
    assert!(code == 1 || code == 3, "{stderr}");
    std::fs::write(bundle.join("keys.csv"), "tampered").unwrap();
    let (code, stdout, _) = run(kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 1);
    assert!(stdout.contains("keys.csv"), "{stdout}");
}

#[test]
fn plan_needs_a_readable_manifest() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    std::fs::write(bundle.join("manifest.json"), "{ not json").unwrap();
    let plan = work.path().join("plan.json");
    let (code, _, stderr) = run(kmsrot().arg("plan").arg(&bundle).arg("--out").arg(&plan));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("manifest.json"), "{stderr}");
    std::fs::remove_file(bundle.join("manifest.json")).unwrap();
    let (code, _, stderr) = run(kmsrot().arg("plan").arg(&bundle).arg("--out").arg(&plan));
    assert_eq!(code, 2, "{stderr}");
    assert!(!plan.exists());
}

#[cfg(unix)]
#[test]
fn symlinks_in_a_bundle_are_failures_and_never_followed() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    let outside = work.path().join("outside.csv");
    std::fs::write(&outside, "do not touch\n").unwrap();
    std::fs::remove_file(bundle.join("findings.csv")).unwrap();
    std::os::unix::fs::symlink(&outside, bundle.join("findings.csv")).unwrap();
    std::fs::write(bundle.join("extra.txt"), "not in the manifest").unwrap();

    let (code, stdout, stderr) = run(kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("symlink") && stdout.contains("findings.csv"),
        "{stdout}"
    );
    assert!(
        stdout.contains("added") && stdout.contains("extra.txt"),
        "{stdout}"
    );

    // assess replaces the link with its own file; the file outside is intact.
    let (code, _, stderr) = run(kmsrot().args(["assess", "--allow-modified"]).arg(&bundle));
    assert!(code == 1 || code == 3, "{stderr}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "do not touch\n");
    assert!(!std::fs::symlink_metadata(bundle.join("findings.csv"))
        .unwrap()
        .file_type()
        .is_symlink());

    // report does not follow a link to a frame, even when told to go on.
    std::fs::remove_file(bundle.join("keys.parquet")).unwrap();
    std::os::unix::fs::symlink(
        sample_bundle().join("keys.parquet"),
        bundle.join("keys.parquet"),
    )
    .unwrap();
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(&bundle)
        .args(["--allow-modified", "--out"])
        .arg(work.path().join("r")));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("keys.parquet") && stderr.contains("symbolic link"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_keeps_the_exit_code() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    // Enough changed files that the table outlives `head -1`'s pipe.
    for name in ["keys.csv", "events.csv", "rotations.csv", "findings.csv"] {
        std::fs::write(bundle.join(name), "tampered\n").unwrap();
    }
    for i in 0..2000 {
        std::fs::write(bundle.join(format!("added-{i}.txt")), "x").unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_kmsrot");
    let sh = |script: &str| {
        run(Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("KMSROT", bin)
            .env("B", &bundle))
    };
    let (code, stdout, stderr) =
        sh("set -o pipefail; \"$KMSROT\" verify-bundle --no-signature \"$B\" | head -1");
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.lines().count(), 1);
    // The stderr summary still prints.
    assert!(stderr.contains("does not match its manifest"), "{stderr}");

    let (code, _, stderr) = sh("set -o pipefail; \"$KMSROT\" completions bash | true");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = sh("set -o pipefail; \"$KMSROT\" man | true");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn terminal_and_markdown_output_cannot_be_driven_by_the_evidence() {
    let work = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(work.path());
    let alias = keys_first_alias(&bundle);
    let (code, stdout, stderr) = run(kmsrot()
        .args(["diagnose", "--bundle"])
        .arg(&bundle)
        .arg(&alias));
    assert_eq!(code, 0, "{stderr}");
    for out in [&stdout, &stderr] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
    }
    assert!(stdout.contains("\\u{1b}]0;owned"), "{stdout}");

    // A key that does not exist, named with escapes, in the error line.
    let (code, _, stderr) = run(kmsrot()
        .args(["diagnose", "--bundle"])
        .arg(&bundle)
        .arg(format!("alias/x{ESCAPES}")));
    assert_eq!(code, 2);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");

    let out = work.path().join("report");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 3, "{stderr}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // Outside code spans (where Markdown shows text as it is), no link or
    // image syntax survives; no control character anywhere.
    assert!(!md.contains('\u{1b}') && !md.contains('\u{7}'));
    let live: Vec<String> = md
        .lines()
        .map(without_code_spans)
        .filter(|l| l.contains("![pwn]") || l.contains("](https://evil"))
        .collect();
    assert!(live.is_empty(), "image left live: {live:#?}");
    assert!(md.contains("\\!\\[pwn\\]\\(https://evil.example/pixel.png\\)"));
    // Table rows keep their column count.
    for line in md.lines().filter(|l| l.starts_with("| `kr-")) {
        let cells = line.matches(" | ").count() - line.matches("\\| ").count();
        assert_eq!(cells, 4, "{line}");
    }

    // diff.md is escaped the same way.
    let d = work.path().join("diff");
    let (code, _, stderr) = run(kmsrot()
        .arg("diff")
        .arg(sample_bundle())
        .arg(&bundle)
        .arg("--out")
        .arg(&d));
    assert!(code == 0 || code == 1, "{stderr}");
    let diff_md = std::fs::read_to_string(d.join("diff.md")).unwrap();
    assert!(!diff_md.contains("![pwn]"), "{diff_md}");
    assert!(!diff_md.contains('\u{1b}'));
}

/// A Markdown line with its code spans (CommonMark: a run of N backticks up
/// to the next run of exactly N) taken out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push(chars[i]);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut closed = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    closed = Some(j + m);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(end) => i = end,
            None => {
                out.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    out
}

#[test]
fn a_policy_typo_is_an_error_naming_the_line() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("B");
    copy_dir(&sample_bundle(), &bundle);
    let policy = work.path().join("kmsrot.toml");
    std::fs::write(
        &policy,
        "max_rotation_period_days = 365\n\n[severity]\nrotation_disabld = \"info\"\n",
    )
    .unwrap();
    for cmd in ["assess", "plan"] {
        let mut c = kmsrot();
        c.arg(cmd).arg(&bundle).arg("--policy").arg(&policy);
        if cmd == "plan" {
            c.arg("--out").arg(work.path().join("plan.json"));
        }
        let (code, _, stderr) = run(&mut c);
        assert_eq!(code, 2, "{cmd}: {stderr}");
        assert!(
            stderr.contains("kmsrot.toml:4:") && stderr.contains("rotation_disabled"),
            "{cmd}: {stderr}"
        );
    }
    std::fs::write(
        &policy,
        "[[exemption]]\nkey = \"alias/legacy\"\nrule = \"pending_deletoin\"\nreason = \"r\"\napprover = \"a\"\nexpires = 2030-01-01\n",
    )
    .unwrap();
    let (code, _, stderr) = run(kmsrot()
        .arg("assess")
        .arg(&bundle)
        .arg("--policy")
        .arg(&policy));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("kmsrot.toml:3:") && stderr.contains("pending_deletion"),
        "{stderr}"
    );
    // Nothing was written.
    let (code, _, _) = run(kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 0);
}

/// Validates each BatchImportFindings body with botocore's own parameter
/// validator and the Security Hub service model (what `aws securityhub
/// batch-import-findings` runs before sending).
const BOTOCORE_CHECK: &str = r#"
import json, sys
import botocore.session
from botocore.validate import ParamValidator
shape = botocore.session.get_session().get_service_model('securityhub').operation_model('BatchImportFindings').input_shape
bad = 0
for path in sys.argv[1:]:
    report = ParamValidator().validate(json.load(open(path)), shape)
    if report.has_errors():
        bad += 1
        print(path, report.generate_report())
sys.exit(1 if bad else 0)
"#;

#[test]
fn asff_bodies_are_split_and_valid() {
    let work = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(work.path());
    let out = work.path().join("report");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 3, "{stderr}");
    let bodies = files_with(&out.join("asff"), "json");
    assert!(bodies.len() >= 2, "one body per region: {bodies:?}");
    let findings = read_json(&out.join("findings.json"));
    let mut total = 0;
    for path in &bodies {
        let body = read_json(path);
        let items = body["Findings"].as_array().unwrap();
        assert!((1..=100).contains(&items.len()), "{}", path.display());
        let region = items[0]["Region"].as_str().unwrap();
        let account = items[0]["AwsAccountId"].as_str().unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("{account}-{region}-")), "{name}");
        for f in items {
            assert_eq!(f["Region"], region);
            assert!(f["ProductArn"]
                .as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:securityhub:{region}:")));
            assert_eq!(f["FindingProviderFields"]["Severity"], f["Severity"]);
            assert_eq!(f["FindingProviderFields"]["Types"], f["Types"]);
            assert_eq!(f["CreatedAt"], f["FirstObservedAt"]);
            let rule = f["ProductFields"]["kmsrot/rule_id"].as_str().unwrap();
            let status = f["Compliance"]["Status"].as_str().unwrap();
            let warning = [
                "evidence_gap",
                "ineligible_key_type",
                "replica_follows_primary",
                "pending_deletion",
                "policy_conditionally_denies_rotation",
            ]
            .contains(&rule);
            assert_eq!(status, if warning { "WARNING" } else { "FAILED" }, "{rule}");
        }
        total += items.len();
    }
    assert_eq!(total, findings.as_array().unwrap().len());
    let readme = std::fs::read_to_string(out.join("asff/README.md")).unwrap();
    assert!(readme.contains("aws securityhub batch-import-findings --region"));

    let paths: Vec<&Path> = bodies.iter().map(PathBuf::as_path).collect();
    let (code, stdout, stderr) = python(BOTOCORE_CHECK, &paths);
    assert_eq!(code, 0, "botocore refused:\n{stdout}\n{stderr}");
}

/// Validates every OCSF finding against the vendored OCSF JSON Schema of
/// the version it declares (tests/fixtures/ocsf/SOURCE.txt).
const OCSF_CHECK: &str = r#"
import json, sys, pathlib
import jsonschema
findings = json.load(open(sys.argv[1]))
root = pathlib.Path(sys.argv[2])
bad = 0
for f in findings:
    version = f["metadata"]["version"]
    schema_path = root / version / "compliance_finding.cloud.schema.json"
    if not schema_path.exists():
        print("no vendored OCSF schema for version", version); sys.exit(1)
    v = jsonschema.Draft202012Validator(json.load(open(schema_path)))
    for e in v.iter_errors(f):
        bad += 1
        print(f["finding_info"]["uid"], list(e.absolute_path), e.message[:300])
sys.exit(1 if bad else 0)
"#;

#[test]
fn ocsf_findings_pass_the_official_schema() {
    let work = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(work.path());
    let out = work.path().join("report");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 3, "{stderr}");
    let ocsf = read_json(&out.join("findings.ocsf.json"));
    for f in ocsf.as_array().unwrap() {
        assert_eq!(f["metadata"]["version"], "1.3.0");
        assert_eq!(f["metadata"]["profiles"], serde_json::json!(["cloud"]));
        for s in f["compliance"]["standards"].as_array().unwrap() {
            let s = s.as_str().unwrap();
            assert!(
                [
                    "CIS AWS Foundations Benchmark",
                    "AWS Foundational Security Best Practices",
                    "PCI DSS v4.0",
                    "NIST SP 800-53 Rev. 5",
                    "NIST SP 800-57 Part 1 Rev. 5",
                ]
                .contains(&s),
                "{s}"
            );
        }
        let warning = f["compliance"]["status_id"] == 2;
        let rule = f["compliance"]["control"].as_str().unwrap();
        assert_eq!(
            warning,
            [
                "evidence_gap",
                "ineligible_key_type",
                "replica_follows_primary",
                "pending_deletion",
                "policy_conditionally_denies_rotation"
            ]
            .contains(&rule),
            "{rule}"
        );
    }
    let (code, stdout, stderr) = python(
        OCSF_CHECK,
        &[&out.join("findings.ocsf.json"), &fixtures().join("ocsf")],
    );
    assert_eq!(code, 0, "OCSF schema refused:\n{stdout}\n{stderr}");
}

/// Reads every Parquet file with DuckDB (not polars) and compares each
/// frame's row count and a text column with the CSV beside it.
const DUCKDB_CHECK: &str = r#"
import sys, csv, duckdb
bad = 0
for path in sys.argv[1:]:
    con = duckdb.connect()
    types = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    cols = [t[0] for t in types]
    # As text, so no Python time zone module is needed for timestamptz.
    select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
    rows = con.execute(f"SELECT {select} FROM read_parquet('{path}')").fetchall()
    text = [t[1] == 'VARCHAR' for t in types]
    with open(path[:-len('.parquet')] + '.csv', newline='') as f:
        table = list(csv.reader(f))
    if table[0] != cols or len(table) - 1 != len(rows):
        bad += 1; print(path, 'columns or rows differ', cols, table[0], len(rows), len(table) - 1)
        continue
    # Text cells agree, once the CSV's formula guard is taken off.
    for r, c in zip(rows, table[1:]):
        for v, t, is_text in zip(r, c, text):
            if is_text and v is not None and v != (t[1:] if t.startswith("'") and t[1:2] in "=+-@\t\r\n＝＋－＠" else t):
                bad += 1; print(path, repr(v), repr(t)); break
sys.exit(1 if bad else 0)
"#;

#[test]
fn parquet_reads_in_duckdb_and_agrees_with_csv() {
    let work = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(work.path());
    let out = work.path().join("report");
    let (code, _, stderr) = report(&bundle, &out);
    assert_eq!(code, 3, "{stderr}");
    let files = files_with(&out, "parquet");
    assert_eq!(files.len(), 4);
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, stdout, stderr) = python(DUCKDB_CHECK, &paths);
    assert_eq!(code, 0, "DuckDB:\n{stdout}\n{stderr}");
    // controls: a list in Parquet and JSON, ` | ` in CSV.
    let findings = read_json(&out.join("findings.json"));
    assert!(findings[0]["controls"].is_array());
    let csv = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    assert!(
        csv.contains("PCI DSS v4.0 3.7.4 | NIST SP 800-53 SC-12"),
        "{csv}"
    );
}

#[test]
fn iac_csv_is_neutral_and_its_json_raw() {
    let work = tempfile::tempdir().unwrap();
    let template = work.path().join("template.json");
    std::fs::write(
        &template,
        r#"{"Resources": {"=HYPERLINK(1)": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": false}}}}"#,
    )
    .unwrap();
    let out = work.path().join("iac");
    let (code, stdout, stderr) = run(kmsrot()
        .args(["--output", "csv", "iac"])
        .arg(&template)
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("'=HYPERLINK(1)"), "{stdout}");
    assert!(assert_no_formula_cells(&out) > 5);
    let json = read_json(&out.join("iac_findings.json"));
    assert_eq!(json[0]["resource"], "=HYPERLINK(1)");
    // --out is not mixed with an earlier run's files.
    let (code, _, stderr) = run(kmsrot().arg("iac").arg(&template).arg("--out").arg(&out));
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn created_at_is_carried_from_the_previous_bundle() {
    let work = tempfile::tempdir().unwrap();
    let old = work.path().join("old");
    let new = work.path().join("new");
    copy_dir(&sample_bundle(), &old);
    copy_dir(&sample_bundle(), &new);
    // Last month's findings were first seen on New Year's Day.
    let mut findings: Vec<kmsrot::rules::engine::Finding> = frame_records(
        &read_frame(&old, &kmsrot::frames::FINDINGS).unwrap(),
        &kmsrot::frames::FINDINGS,
    )
    .unwrap();
    let new_year = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    for f in &mut findings {
        f.first_seen = Some(new_year);
    }
    write_frame(
        &old,
        &kmsrot::frames::FINDINGS,
        &mut kmsrot::rules::engine::findings_frame(&findings).unwrap(),
    )
    .unwrap();
    kmsrot::bundle::Manifest::read(&old)
        .unwrap()
        .seal(&old)
        .unwrap();

    let collected_at =
        kmsrot::frames::time::rfc3339(kmsrot::bundle::Manifest::read(&new).unwrap().collected_at);
    let (code, _, stderr) = run(kmsrot().args(["assess", "--previous"]).arg(&old).arg(&new));
    assert!(code == 1 || code == 3, "{stderr}");
    let out = work.path().join("report");
    let (code, _, stderr) = report(&new, &out);
    assert_eq!(code, 3, "{stderr}");
    for path in files_with(&out.join("asff"), "json") {
        for f in read_json(&path)["Findings"].as_array().unwrap() {
            assert_eq!(f["CreatedAt"], "2026-01-01T00:00:00Z");
            assert_eq!(f["FirstObservedAt"], "2026-01-01T00:00:00Z");
            // Frames keep milliseconds.
            assert!(f["LastObservedAt"]
                .as_str()
                .unwrap()
                .starts_with(&collected_at[..19]));
        }
    }
}
