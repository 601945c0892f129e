//! `kmsrot iac`: Terraform plans and state and CloudFormation templates
//! judged before the keys exist. No AWS and no emulator: IaC is files.
//!
//! Fixtures (tests/fixtures/iac/, see SOURCE.txt) cover modules, count and
//! for_each addresses, every plan action kind, unknown values, the YAML
//! short-form intrinsics, state in both forms, and invalid files. The SARIF
//! output is validated against the official OASIS schema, vendored in
//! tests/fixtures/sarif/, with Python's `jsonschema` from `.venv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::assert_seen;
use crate::support::snapshot::Seen;
use crate::support::{fixtures, kmsrot, read_json, run};

fn iac_dir() -> PathBuf {
    fixtures().join("iac")
}

/// `kmsrot iac ARGS` run inside tests/fixtures/iac, so paths in the output
/// are the short relative ones a user sees.
fn iac(args: &[&str]) -> (i32, String, String) {
    let mut cmd = kmsrot();
    cmd.current_dir(iac_dir()).arg("iac").args(args);
    run(&mut cmd)
}

/// Rows from `--output json`, keyed by resource: (rule_id, status, severity).
fn rows(stdout: &str) -> BTreeMap<String, Vec<(String, String, String)>> {
    let v: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let mut out: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for r in v.as_array().expect("an array of rows") {
        out.entry(r["resource"].as_str().unwrap().to_string())
            .or_default()
            .push((
                r["rule_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
            ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn row(rule: &str, status: &str, severity: &str) -> (String, String, String) {
    (rule.into(), status.into(), severity.into())
}

fn json_rows(stdout: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(rows: &'a [Value], resource: &str, rule: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["resource"] == resource && r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} row for {resource}"))
}

#[test]
fn plan_with_modules_count_for_each_and_every_action() {
    let (code, stdout, stderr) = iac(&["--output", "json", "plan/modules.plan.json"]);
    assert_eq!(code, 1, "a high finding fails the gate\n{stderr}");
    let got = rows(&stdout);
    let open_high = |r: &str| {
        (
            r.to_string(),
            vec![row("rotation_disabled", "open", "high")],
        )
    };
    let expected: BTreeMap<String, Vec<_>> = [
        // create, rotation false (the provider's default)
        open_high("aws_kms_key.logs"),
        // update that turns rotation off
        open_high("aws_kms_key.app"),
        // no-op: left with rotation off
        open_high("aws_kms_key.left_off"),
        // ["create","delete"]: the replacement is created with rotation off
        open_high("aws_kms_key.tainted"),
        // import of a key without rotation
        open_high("aws_kms_key.adopted"),
        (
            "aws_kms_key.too_long".into(),
            vec![row("period_out_of_range", "open", "high")],
        ),
        // for_each module, count index; 730 days against the default policy's 365
        (
            r#"module.data["eu"].aws_kms_key.this[0]"#.into(),
            vec![row("period_exceeds_policy", "open", "medium")],
        ),
        // the period is set in the module from a value known only at apply
        (
            r#"module.data["us"].aws_kms_key.this[0]"#.into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
        (
            "aws_kms_key.from_ssm".into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
        (
            "aws_kms_key.period_from_ssm".into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
        (
            "aws_kms_key.signing".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "aws_kms_key.mac".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "aws_kms_key.hsm".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "aws_kms_external_key.byok".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "aws_kms_replica_key.dr".into(),
            vec![row("replica_follows_primary", "not_applicable", "info")],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{stdout}");
    // Compliant: rotation on with AWS's default period (not set anywhere), a
    // no-op already rotating, and a ["delete","create"] replacement with 90 days.
    for ok in [
        r#"module.data["us"].module.archive.aws_kms_key.archive["cold"]"#,
        "aws_kms_key.steady",
        "aws_kms_key.rekeyed",
    ] {
        assert!(!got.contains_key(ok), "{ok} is compliant");
    }
    // Deletions, forget and the deposed object are skipped and said so; the
    // data source and the alias are not KMS keys to judge.
    for skipped in [
        "skipped: plan/modules.plan.json: aws_kms_key.retired: being deleted by this plan",
        "skipped: plan/modules.plan.json: aws_kms_key.handed_over: removed from the Terraform state without being destroyed (forget)",
        "skipped: plan/modules.plan.json: aws_kms_key.tainted: a deposed object",
    ] {
        assert!(stderr.contains(skipped), "{skipped}\n{stderr}");
    }
    assert!(!stdout.contains("data.aws_kms_key") && !stdout.contains("aws_kms_alias"));
    assert!(
        stderr.contains("1 file(s) read, 18 KMS resource(s) judged: 3 compliant, 7 open finding(s) (6 high, 1 medium), 0 exempted, 5 not applicable, 3 unknown until apply; 3 skipped"),
        "{stderr}"
    );

    let all = json_rows(&stdout);
    let logs = find(&all, "aws_kms_key.logs", "rotation_disabled");
    assert_eq!(logs["remediation"], "enable_key_rotation = true");
    assert_eq!(logs["resource_type"], "aws_kms_key");
    assert_eq!(logs["source_file"], "plan/modules.plan.json");
    assert_eq!(logs["line"], 13, "the line of its resource_changes entry");
    assert!(
        logs["detail"].as_str().unwrap().starts_with(
            "To be created by this plan with automatic rotation off: enable_key_rotation is false."
        ),
        "{}",
        logs["detail"]
    );
    assert!(find(&all, "aws_kms_key.app", "rotation_disabled")["detail"]
        .as_str()
        .unwrap()
        .starts_with("To be updated"));
    assert!(
        find(&all, "aws_kms_key.left_off", "rotation_disabled")["detail"]
            .as_str()
            .unwrap()
            .starts_with("Left unchanged")
    );
    assert!(
        find(&all, "aws_kms_key.adopted", "rotation_disabled")["detail"]
            .as_str()
            .unwrap()
            .starts_with("To be imported")
    );
    let eu = find(
        &all,
        r#"module.data["eu"].aws_kms_key.this[0]"#,
        "period_exceeds_policy",
    );
    assert_eq!(eu["remediation"], "rotation_period_in_days = 365");
    let long = find(&all, "aws_kms_key.too_long", "period_out_of_range");
    assert!(long["detail"]
        .as_str()
        .unwrap()
        .contains("3650 is outside 90..=2560"));
    let ssm = find(&all, "aws_kms_key.from_ssm", "unknown_until_apply");
    assert!(
        ssm["detail"]
            .as_str()
            .unwrap()
            .contains("set from aws_ssm_parameter.rotate.value"),
        "{}",
        ssm["detail"]
    );
    let us = find(
        &all,
        r#"module.data["us"].aws_kms_key.this[0]"#,
        "unknown_until_apply",
    );
    assert!(
        us["detail"].as_str().unwrap().contains("var.rotation_days"),
        "{}",
        us["detail"]
    );
    assert!(
        find(&all, "aws_kms_key.mac", "ineligible_key_type")["detail"]
            .as_str()
            .unwrap()
            .contains("HMAC key (HMAC_256)")
    );
}

#[test]
fn compact_plan_and_the_fail_on_threshold() {
    let (code, stdout, stderr) = iac(&["--output", "json", "plan/compact.plan.json"]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["aws_kms_key.ci"],
        "aws_kms_key.rotated[1] rotates every 180 days"
    );
    assert_eq!(
        json_rows(&stdout)[0]["line"],
        1,
        "Terraform prints the plan on one line"
    );
    let (code, _, stderr) = iac(&["--fail-on", "critical", "plan/compact.plan.json"]);
    assert_eq!(code, 0, "nothing is critical, nothing unknown\n{stderr}");
    // Unknown values are not failures, but not a pass either: exit 3.
    let (code, _, stderr) = iac(&["--fail-on", "critical", "plan/modules.plan.json"]);
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn terraform_state_in_both_forms() {
    let (code, stdout, stderr) = iac(&[
        "--output",
        "json",
        "state/show.state.json",
        "state/terraform.tfstate",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    let expected: BTreeMap<String, Vec<_>> = [
        (
            "module.legacy.aws_kms_key.old[0]".to_string(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        (
            "module.legacy.module.deep.aws_kms_key.slow".into(),
            vec![row("period_exceeds_policy", "open", "medium")],
        ),
        (
            r#"aws_kms_key.tenant["globex"]"#.into(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        (
            "module.shared[1].aws_kms_key.k".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{stdout}");
    let all = json_rows(&stdout);
    let old = find(
        &all,
        "module.legacy.aws_kms_key.old[0]",
        "rotation_disabled",
    );
    assert!(old["detail"]
        .as_str()
        .unwrap()
        .starts_with("In the Terraform state"));
    assert!(old["detail"]
        .as_str()
        .unwrap()
        .contains("multi-Region primary"));
    assert!(
        old["line"].as_i64().unwrap() > 1,
        "show -json printed with indentation"
    );
    assert!(
        stderr.contains("2 file(s) read, 6 KMS resource(s) judged: 2 compliant"),
        "{stderr}"
    );
    assert!(
        stderr.contains("module.shared[1].aws_kms_key.k: a deposed object"),
        "{stderr}"
    );
}

#[test]
fn cloudformation_yaml_short_forms_parameters_and_conditions() {
    let (code, stdout, stderr) = iac(&["--output", "json", "cfn/keys.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    let expected: BTreeMap<String, Vec<_>> = [
        // Rotation never mentioned.
        (
            "PaymentsKey".to_string(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        // !Ref to a parameter whose Default is "false".
        (
            "LedgerKey".into(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        // !If [IsDev, true, !Ref AWS::NoValue] with the default Environment=prod.
        (
            "ToolsKey".into(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        // YAML 1.1 `Off`, as CloudFormation reads it.
        (
            "OldKey".into(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        // !If [IsProd, true, false] and !FindInMap → 730 days.
        (
            "ArchiveKey".into(),
            vec![row("period_exceeds_policy", "open", "medium")],
        ),
        // "true" as a string, !Select [1, !Split ...] → 3000 days.
        (
            "SlowKey".into(),
            vec![row("period_out_of_range", "open", "high")],
        ),
        (
            "TeamKey".into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
        (
            "PlatformKey".into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
        (
            "SigningKey".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "MacKey".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "ImportedKey".into(),
            vec![row("ineligible_key_type", "not_applicable", "info")],
        ),
        (
            "SessionReplica".into(),
            vec![row("replica_follows_primary", "not_applicable", "info")],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{stdout}");
    assert!(
        !got.contains_key("SessionKey"),
        "180 days from !Ref RotationDays"
    );
    assert!(!got.contains_key("LegacyKey"), "YAML 1.1 `yes` is true");
    assert!(
        stderr.contains(
            "skipped: cfn/keys.yaml: ScratchKey: not created: its condition CreateScratch is false"
        ),
        "{stderr}"
    );
    let all = json_rows(&stdout);
    let payments = find(&all, "PaymentsKey", "rotation_disabled");
    assert_eq!(payments["remediation"], "EnableKeyRotation: true");
    assert_eq!(payments["resource_type"], "AWS::KMS::Key");
    assert_eq!(payments["line"], 38, "the line of the logical id");
    let ledger = find(&all, "LedgerKey", "rotation_disabled");
    assert_eq!(ledger["line"], 56, "the line of EnableKeyRotation");
    assert!(ledger["detail"]
        .as_str()
        .unwrap()
        .contains("EnableKeyRotation is false"));
    let archive = find(&all, "ArchiveKey", "period_exceeds_policy");
    assert_eq!(archive["remediation"], "RotationPeriodInDays: 365");
    assert!(archive["detail"]
        .as_str()
        .unwrap()
        .contains("every 730 days"));
    let team = find(&all, "TeamKey", "unknown_until_apply");
    assert!(team["detail"]
        .as_str()
        .unwrap()
        .contains("parameter TeamRotation has no Default"));
    let platform = find(&all, "PlatformKey", "unknown_until_apply");
    assert!(platform["detail"].as_str().unwrap().contains("SSM"));
    assert!(find(&all, "ImportedKey", "ineligible_key_type")["detail"]
        .as_str()
        .unwrap()
        .contains("Origin EXTERNAL"));
}

#[test]
fn cloudformation_json_long_forms() {
    let (code, stdout, stderr) = iac(&["--output", "json", "cfn/keys.template.json"]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    let expected: BTreeMap<String, Vec<_>> = [
        (
            "OrdersKey".to_string(),
            vec![row("rotation_disabled", "open", "high")],
        ),
        (
            "ReportsKey".into(),
            vec![row("period_exceeds_policy", "open", "medium")],
        ),
        (
            "StreamKey".into(),
            vec![row("unknown_until_apply", "unknown", "info")],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected, "{stdout}");
    let all = json_rows(&stdout);
    let orders = find(&all, "OrdersKey", "rotation_disabled");
    assert_eq!(orders["remediation"], "\"EnableKeyRotation\": true");
    assert_eq!(orders["line"], 14);
    assert!(find(&all, "StreamKey", "unknown_until_apply")["detail"]
        .as_str()
        .unwrap()
        .contains("Fn::GetAtt Config.Rotate"));
}

#[test]
fn the_same_policy_file_judges_iac() {
    // max 180 days, period_exceeds_policy raised to high, exemptions by
    // Terraform address (every instance of a for_each module) and by logical
    // id (expired, so the finding stays open).
    let (code, stdout, stderr) = iac(&[
        "--output",
        "json",
        "--policy",
        "kmsrot.toml",
        "--as-of",
        "2026-01-15",
        "plan/modules.plan.json",
        "cfn/keys.yaml",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    assert_eq!(
        got["aws_kms_key.app"],
        [row("rotation_disabled", "exempted", "high")]
    );
    assert_eq!(
        got[r#"module.data["eu"].aws_kms_key.this[0]"#],
        [row("period_exceeds_policy", "exempted", "high")]
    );
    // AWS's default 365 days is above this policy's 180.
    assert_eq!(
        got["aws_kms_key.steady"],
        [row("period_exceeds_policy", "open", "high")]
    );
    assert_eq!(
        got[r#"module.data["us"].module.archive.aws_kms_key.archive["cold"]"#],
        [row("period_exceeds_policy", "open", "high")]
    );
    assert!(
        !got.contains_key("aws_kms_key.rekeyed"),
        "90 days is within 180"
    );
    assert!(!got.contains_key("SessionKey"), "180 days is within 180");
    assert_eq!(got["LedgerKey"], [row("rotation_disabled", "open", "high")]);
    let all = json_rows(&stdout);
    let app = find(&all, "aws_kms_key.app", "rotation_disabled");
    assert!(app["detail"]
        .as_str()
        .unwrap()
        .contains("Exempted until 2999-12-31 by security-lead@example.com"));
    let ledger = find(&all, "LedgerKey", "rotation_disabled");
    assert!(
        ledger["detail"]
            .as_str()
            .unwrap()
            .contains("expired on 2000-01-01"),
        "{}",
        ledger["detail"]
    );
    let steady = find(&all, "aws_kms_key.steady", "period_exceeds_policy");
    assert_eq!(steady["remediation"], "rotation_period_in_days = 180");
    assert!(steady["detail"]
        .as_str()
        .unwrap()
        .contains("policy's maximum of 180 (kmsrot.toml)"));
}

#[test]
fn out_dir_files_agree_with_stdout() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let (code, stdout, stderr) = iac(&[
        "--output",
        "json",
        "--out",
        out.to_str().unwrap(),
        "cfn/keys.yaml",
        "plan/compact.plan.json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let printed = json_rows(&stdout);
    let written = read_json(&out.join("iac_findings.json"));
    assert_eq!(written.as_array().unwrap(), &printed);
    let csv = std::fs::read_to_string(out.join("iac_findings.csv")).unwrap();
    assert!(csv.starts_with(
        "source_file,resource,resource_type,rule_id,severity,detail,remediation,status,line\n"
    ));
    assert_eq!(csv.lines().count(), printed.len() + 1);
    let frame = kmsrot::output::read_frame(&out, &kmsrot::frames::IAC_FINDINGS).unwrap();
    assert_eq!(frame.height(), printed.len());
    let sarif = read_json(&out.join("iac_findings.sarif"));
    assert_eq!(sarif["version"], "2.1.0");
    // Nothing half-written or left behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "iac_findings.csv",
            "iac_findings.json",
            "iac_findings.parquet",
            "iac_findings.sarif"
        ]
    );
}

/// Validates a SARIF document against the vendored OASIS schema with
/// Python's jsonschema (Draft 4, the schema's own dialect).
fn validate_sarif(path: &Path) {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let schema = fixtures().join("sarif/sarif-schema-2.1.0.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        doc = json.load(open(sys.argv[2]))\n\
        v = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
        for e in errors: print(list(e.path), e.message)\n\
        sys.exit(1 if errors else 0)\n";
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(&schema)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; scripts/test installs jsonschema into .venv",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "SARIF invalid against the OASIS schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sarif_is_valid_against_the_oasis_schema() {
    let (code, stdout, stderr) = iac(&[
        "--format",
        "sarif",
        "--policy",
        "kmsrot.toml",
        "--as-of",
        "2026-01-15",
        "plan/modules.plan.json",
        "cfn/keys.yaml",
        "cfn/keys.template.json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("kmsrot.sarif");
    std::fs::write(&file, &stdout).unwrap();
    validate_sarif(&file);

    let log: Value = serde_json::from_str(&stdout).unwrap();
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "kmsrot");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(
        rule("rotation_disabled")["properties"]["security-severity"],
        "8.0"
    );
    // The policy raised period_exceeds_policy to high.
    assert_eq!(
        rule("period_exceeds_policy")["defaultConfiguration"]["level"],
        "error"
    );
    let results = run["results"].as_array().unwrap();
    let result = |resource: &str, rule: &str| {
        results
            .iter()
            .find(|r| {
                r["ruleId"] == rule
                    && r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == resource
            })
            .unwrap_or_else(|| panic!("{resource} {rule}"))
    };
    let payments = result("PaymentsKey", "rotation_disabled");
    assert_eq!(payments["level"], "error");
    assert_eq!(payments["kind"], "fail");
    let loc = &payments["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "cfn/keys.yaml");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 38);
    let exempted = result("aws_kms_key.app", "rotation_disabled");
    assert_eq!(exempted["suppressions"][0]["kind"], "external");
    let na = result("SigningKey", "ineligible_key_type");
    assert_eq!(
        (na["kind"].as_str(), na["level"].as_str()),
        (Some("notApplicable"), Some("none"))
    );
    let unknown = result("TeamKey", "unknown_until_apply");
    assert_eq!(
        (unknown["kind"].as_str(), unknown["level"].as_str()),
        (Some("review"), Some("none"))
    );
    let stdout_rows = iac(&[
        "--output",
        "json",
        "--policy",
        "kmsrot.toml",
        "--as-of",
        "2026-01-15",
        "plan/modules.plan.json",
        "cfn/keys.yaml",
        "cfn/keys.template.json",
    ])
    .1;
    assert_eq!(
        results.len(),
        json_rows(&stdout_rows).len(),
        "one result per row"
    );
}

#[test]
fn invalid_files_are_one_line_errors_naming_file_and_line() {
    for (file, prefix) in [
        ("invalid/broken.yaml", "error: invalid/broken.yaml:7:"),
        (
            "invalid/broken.plan.json",
            "error: invalid/broken.plan.json:5:",
        ),
        (
            "invalid/no-actions.plan.json",
            "error: invalid/no-actions.plan.json:5: aws_kms_key.a: change.actions is missing",
        ),
        (
            "invalid/package.json",
            "error: invalid/package.json:1: not a Terraform plan or state",
        ),
    ] {
        let (code, stdout, stderr) = iac(&[file]);
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(stdout.is_empty(), "{file}: {stdout}");
        assert!(stderr.starts_with(prefix), "{file}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{file}: {stderr}");
    }
    // A broken file inside a folder that looks like IaC is an error too.
    let (code, _, stderr) = iac(&["invalid"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: invalid/broken.plan.json:5:"),
        "{stderr}"
    );
    let (code, _, stderr) = iac(&["no/such/file.json"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: no/such/file.json: cannot read"),
        "{stderr}"
    );
}

#[test]
fn folders_are_walked_and_non_iac_files_skipped() {
    let (code, stdout, stderr) = iac(&["--output", "json", "tree"]);
    assert_eq!(code, 1, "{stderr}");
    let got = rows(&stdout);
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["TopicKey", "aws_kms_key.ci"]
    );
    let all = json_rows(&stdout);
    assert_eq!(
        find(&all, "TopicKey", "rotation_disabled")["source_file"],
        "tree/infra/nested/stack.template"
    );
    assert!(
        stderr.contains(
            "2 file(s) read, 4 KMS resource(s) judged: 2 compliant, 2 open finding(s) (2 high)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 file(s) in folders are not IaC"),
        "{stderr}"
    );
    // A file named again beside its folder is read once.
    let (_, again, stderr) = iac(&["--output", "json", "tree", "tree/infra/main.plan.json"]);
    assert_eq!(json_rows(&again).len(), 2, "{stderr}");
    assert!(stderr.starts_with("2 file(s) read"), "{stderr}");
    // An empty folder is a mistake, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = iac(&[empty.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no .json, .yaml"), "{stderr}");
}

#[test]
fn stdin_is_read_with_a_dash() {
    let plan = std::fs::read(iac_dir().join("plan/compact.plan.json")).unwrap();
    let mut child = kmsrot()
        .current_dir(iac_dir())
        .args(["iac", "--output", "csv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&plan).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("source_file,resource,"), "{stdout}");
    assert!(
        stdout.contains("<stdin>,aws_kms_key.ci,aws_kms_key,rotation_disabled,high,"),
        "{stdout}"
    );
}

#[test]
fn table_snapshot() {
    assert_seen!("iac_table", &Seen::from(iac(&["cfn/keys.template.json"])));
    assert_seen!("iac_not_iac", &Seen::from(iac(&["invalid/package.json"])));
}

/// The YAML of a CI example, parsed with kmsrot's own YAML reader.
fn ci_yaml(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/ci")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = kmsrot::iac::yaml::parse(&text, |_| false)
        .unwrap_or_else(|e| panic!("{}:{}: {}", path.display(), e.line, e.message));
    assert_eq!(parsed.docs.len(), 1);
    parsed.docs[0].clone()
}

/// A checkout the CI examples expect: infra/plan.json, templates/, kmsrot.toml.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("infra")).unwrap();
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::copy(
        iac_dir().join("plan/compact.plan.json"),
        root.join("infra/plan.json"),
    )
    .unwrap();
    std::fs::copy(
        iac_dir().join("cfn/keys.yaml"),
        root.join("templates/keys.yaml"),
    )
    .unwrap();
    std::fs::write(root.join("templates/README.md"), "not IaC\n").unwrap();
    std::fs::write(root.join("kmsrot.toml"), "max_rotation_period_days = 365\n").unwrap();
    dir
}

/// Runs a shell command line from an example with kmsrot on PATH.
fn shell(root: &Path, line: &str) -> (i32, String, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_kmsrot"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cmd = kmsrot();
    let program = cmd.get_program().to_owned();
    assert_eq!(program, bin.as_os_str());
    let mut sh = Command::new("bash");
    sh.args(["-euc", line]).current_dir(root).env("PATH", path);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    run(sh.stdin(Stdio::null()))
}

#[test]
fn github_actions_example_parses_and_its_command_runs() {
    let wf = ci_yaml("github-actions.yml");
    assert!(wf["on"]["pull_request"].is_object(), "{wf}");
    assert_eq!(wf["permissions"]["security-events"], "write");
    let steps = wf["jobs"]["kms-rotation"]["steps"].as_array().unwrap();
    let command = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.trim_start().starts_with("kmsrot iac"))
        .expect("a step that runs kmsrot iac");
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif"))
        })
        .expect("an upload-sarif step");
    assert_eq!(
        upload["if"], "always()",
        "SARIF is uploaded even when the gate fails"
    );
    let sarif_file = upload["with"]["sarif_file"].as_str().unwrap();

    let dir = checkout();
    let (code, _, stderr) = shell(dir.path(), command);
    assert_eq!(
        code, 1,
        "the fixtures hold high findings: the gate fails\n{stderr}"
    );
    let sarif = dir.path().join(sarif_file);
    assert!(sarif.is_file(), "{command} writes {sarif_file}");
    validate_sarif(&sarif);
    let log = read_json(&sarif);
    let uris: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(
        uris.contains(&"infra/plan.json") && uris.contains(&"templates/keys.yaml"),
        "{uris:?}"
    );
}

#[test]
fn pre_commit_example_parses_and_its_hook_runs() {
    let cfg = ci_yaml("pre-commit-config.yaml");
    let hook = &cfg["repos"][0]["hooks"][0];
    assert_eq!(cfg["repos"][0]["repo"], "local");
    assert_eq!(hook["language"], "system");
    assert_eq!(hook["pass_filenames"], false);
    let entry = hook["entry"].as_str().unwrap();
    assert!(entry.starts_with("kmsrot iac "), "{entry}");
    let dir = checkout();
    let (code, stdout, stderr) = shell(dir.path(), entry);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("PaymentsKey"), "{stdout}");
    // With the keys fixed, the hook passes.
    let fixed = std::fs::read_to_string(iac_dir().join("tree/infra/nested/stack.template"))
        .unwrap()
        .replace("EnableKeyRotation: false", "EnableKeyRotation: true");
    std::fs::write(dir.path().join("templates/keys.yaml"), fixed).unwrap();
    let (code, _, stderr) = shell(dir.path(), entry);
    assert_eq!(code, 0, "{stderr}");
}
