//! What each subcommand shows a person, exit code, stdout and stderr
//! together (issue 15, point 7): one run that works and one error case per
//! subcommand, through `kmsrot_snapshot!`. Commands that need AWS are run
//! against moto; the rest on the sample bundle, offline. Snapshots of
//! `inventory`, `trail scan`, `iac`, `approve` and `apply` live beside those
//! commands' tests; the first-contact errors in `first_contact`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::seed;
use crate::support::snapshot::run;
use crate::support::{kmsrot, Moto};
use crate::{assert_seen, kmsrot_snapshot};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle")
}

/// The sample's own collection time as the as-of, so its findings do not
/// age with the calendar and the snapshots hold when the sample is
/// regenerated.
fn sample_as_of() -> String {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample().join("manifest.json")).unwrap())
            .unwrap();
    manifest["collected_at"].as_str().unwrap().to_string()
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

/// kmsrot that could not reach AWS even if it tried: no region and every
/// endpoint unreachable. The offline commands must not notice.
fn offline() -> Command {
    let mut cmd = kmsrot();
    cmd.env_remove("AWS_REGION")
        .env("AWS_ENDPOINT_URL", crate::support::endpoints::refused_url());
    cmd
}

#[test]
fn assess_report_diff_as_the_user_sees_them() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    copy_dir(&sample(), &bundle);

    kmsrot_snapshot!(
        "assess",
        offline()
            .arg("assess")
            .arg(&bundle)
            .args(["--as-of", &sample_as_of()])
    );
    kmsrot_snapshot!(
        "assess_missing_bundle",
        offline().arg("assess").arg(work.path().join("nope"))
    );

    kmsrot_snapshot!(
        "report",
        offline()
            .arg("report")
            .arg(&bundle)
            .arg("--out")
            .arg(work.path().join("report"))
    );
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    kmsrot_snapshot!(
        "report_not_a_bundle",
        offline()
            .arg("report")
            .arg(&empty)
            .arg("--out")
            .arg(work.path().join("report2"))
    );

    // The copy was re-assessed without the sample's policy: its exemption
    // is gone, so one finding opens and the expired-exemption one resolves.
    // Rows of one change come in finding-id order, and the ids hash key ids
    // that change whenever the sample is regenerated: sorted here, so the
    // snapshot holds the rows, not an order it cannot keep.
    let mut seen = run(offline().arg("diff").arg(sample()).arg(&bundle));
    let mut lines: Vec<&str> = seen.stdout.lines().collect();
    if lines.len() > 1 {
        // By the row with its ids left out, which are random per sample.
        lines[1..].sort_by_cached_key(|l| {
            l.split_whitespace()
                .filter(|t| {
                    let id =
                        t.starts_with("(kr-") || (t.len() == 36 && t.matches('-').count() == 4);
                    !id
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
    }
    seen.stdout = lines.join("\n");
    assert_seen!("diff_after_reassessing_without_the_policy", &seen);
    kmsrot_snapshot!(
        "diff_missing_bundle",
        offline()
            .arg("diff")
            .arg(sample())
            .arg(work.path().join("nope"))
    );
}

#[test]
fn verify_bundle_and_plan_as_the_user_sees_them() {
    let work = tempfile::tempdir().unwrap();
    kmsrot_snapshot!(
        "verify_bundle",
        offline().arg("verify-bundle").arg(sample())
    );
    let edited = work.path().join("edited");
    copy_dir(&sample(), &edited);
    let keys = edited.join("keys.csv");
    let mut text = std::fs::read_to_string(&keys).unwrap();
    text.push('\n');
    std::fs::write(&keys, text).unwrap();
    std::fs::write(edited.join("notes.txt"), "added after sealing\n").unwrap();
    kmsrot_snapshot!(
        "verify_bundle_edited",
        offline().arg("verify-bundle").arg(&edited)
    );
    kmsrot_snapshot!(
        "verify_bundle_missing",
        offline().arg("verify-bundle").arg(work.path().join("nope"))
    );

    kmsrot_snapshot!(
        "plan",
        offline()
            .arg("plan")
            .arg(sample())
            .arg("--out")
            .arg(work.path().join("plan.json"))
    );
    kmsrot_snapshot!(
        "plan_period_out_of_range",
        offline()
            .arg("plan")
            .arg(sample())
            .args(["--rotation-period-days", "30", "--out"])
            .arg(work.path().join("plan2.json"))
    );
}

#[test]
fn diagnose_from_a_bundle_as_the_user_sees_it() {
    kmsrot_snapshot!(
        "diagnose_bundle",
        offline()
            .args(["diagnose", "alias/orders-api", "--bundle"])
            .arg(sample())
    );
    kmsrot_snapshot!(
        "diagnose_bundle_unknown_key",
        offline()
            .args(["diagnose", "alias/no-such-key", "--bundle"])
            .arg(sample())
    );
}

#[test]
fn completions_and_man_as_the_user_sees_them() {
    // The script is clap_complete's rendering of the flag definitions and
    // changes with every flag: its first line says which shell it is for.
    let script = (
        r"(?s)(----- stdout -----\n[^\n]*\n).*(\n----- stderr -----)",
        "$1[the rest of the script]$2",
    );
    kmsrot_snapshot!(
        "completions_zsh",
        offline().args(["completions", "zsh"]),
        [script]
    );
    kmsrot_snapshot!(
        "completions_unknown_shell",
        offline().args(["completions", "tcsh"])
    );

    let work = tempfile::tempdir().unwrap();
    let seen = kmsrot_snapshot!(
        "man_out",
        offline()
            .arg("man")
            .arg("--out")
            .arg(work.path().join("man"))
    );
    assert_eq!(seen.code, 0);
    assert!(work.path().join("man/kmsrot.1").exists());
    // A folder that cannot be made: a file is in the way.
    let blocker = work.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    kmsrot_snapshot!(
        "man_out_not_a_folder",
        offline().arg("man").arg("--out").arg(blocker.join("man"))
    );
}

/// `collect`, `audit` and live `diagnose` on a small seeded account.
#[tokio::test(flavor = "multi_thread")]
async fn collect_audit_diagnose_as_the_user_sees_them() {
    let moto = Moto::start();
    let kms = moto.kms("us-east-1").await;
    // Two eligible keys with aliases, rotation on for app-00000 and off for
    // app-00001. Made one at a time, so keys[1] is app-00001 whichever
    // request moto answers first.
    let keys = seed::plain_keys(&kms, "us-east-1", "app", 2, true, 1)
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();

    let bundle = work.path().join("bundle");
    kmsrot_snapshot!(
        "collect",
        moto.kmsrot()
            .args(["--region", "us-east-1", "collect", "--out"])
            .arg(&bundle)
    );
    kmsrot_snapshot!(
        "collect_into_a_used_folder",
        moto.kmsrot()
            .args(["--region", "us-east-1", "collect", "--out"])
            .arg(&bundle)
    );

    let run = work.path().join("audit");
    kmsrot_snapshot!(
        "audit",
        moto.kmsrot()
            .args(["--region", "us-east-1", "audit", "--out"])
            .arg(&run)
    );
    let policy = work.path().join("kmsrot.toml");
    std::fs::write(&policy, "max_rotation_period_days = 30\n").unwrap();
    kmsrot_snapshot!(
        "audit_bad_policy",
        moto.kmsrot()
            .args(["--region", "us-east-1", "audit", "--policy"])
            .arg(&policy)
            .arg("--out")
            .arg(work.path().join("audit2"))
    );

    // moto has no CloudTrail LookupEvents: one attempt, and the report
    // says that source was not seen.
    let seen = crate::support::snapshot::run(
        moto.kmsrot()
            .env("AWS_MAX_ATTEMPTS", "1")
            .args(["--region", "us-east-1", "diagnose"])
            .arg(&keys[1].arn),
    );
    assert_eq!(seen.code, 0, "{}", seen.stderr);
    assert_seen!("diagnose_live", &seen);
    kmsrot_snapshot!(
        "diagnose_live_unknown_key",
        moto.kmsrot()
            .args(["--region", "us-east-1", "diagnose", "alias/no-such-key"])
    );
}
