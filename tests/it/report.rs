//! `kmsrot report` on the shipped sample bundle (offline): the Markdown
//! snapshot, the data files and their SHA256SUMS, a tampered file caught, the
//! HTML opened in headless Chromium with the network off; then signing and
//! Object Lock upload against moto, and the signature checked by
//! `verify-bundle` before and after tampering.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{kmsrot, read_json, run, Moto};

fn sample_bundle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample-bundle")
}

/// A copy of the sample bundle the test may change.
fn copy_bundle(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.path().is_dir() {
                copy(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    copy(&sample_bundle(), to);
}

fn findings(dir: &Path) -> Vec<serde_json::Value> {
    read_json(&dir.join("findings.json"))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn report_of_the_sample_bundle() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("report");
    let (code, stdout, stderr) = run(kmsrot()
        .arg("report")
        .arg(sample_bundle())
        .arg("--out")
        .arg(&out));
    // The sample archive misses three days in eu-west-1 on purpose.
    assert_eq!(code, 3, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    for f in [
        "report.md",
        "report.html",
        "keys.csv",
        "keys.parquet",
        "rotations.csv",
        "rotations.parquet",
        "events.csv",
        "events.parquet",
        "findings.csv",
        "findings.parquet",
        "asff/README.md",
        "findings.ocsf.json",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    let all = findings(&sample_bundle());
    assert!(!all.is_empty());
    let asff: usize = std::fs::read_dir(out.join("asff"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| read_json(&p)["Findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(asff, all.len());
    assert_eq!(
        read_json(&out.join("findings.ocsf.json"))
            .as_array()
            .unwrap()
            .len(),
        all.len()
    );

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    insta::with_settings!({ filters => vec![
        (r"kmsrot \d+\.\d+\.\d+", "kmsrot [VERSION]"),
        (r"written by \d+\.\d+\.\d+", "written by [VERSION]"),
    ] }, {
        insta::assert_snapshot!("sample_report_md", md);
    });

    // SHA256SUMS lists every file written and each verifies.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let listed = sums.lines().count();
    let mut on_disk = 0;
    for e in walk(&out) {
        if !e.ends_with("SHA256SUMS") {
            on_disk += 1;
        }
    }
    assert_eq!(listed, on_disk, "{sums}");
    assert!(kmsrot::report::verify_sums(&out).unwrap().is_empty());
    if let Ok(st) = Command::new("sha256sum")
        .arg("--quiet")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&out)
        .status()
    {
        assert!(st.success(), "sha256sum -c SHA256SUMS failed");
    }
    // A tampered file is caught.
    let csv = out.join("findings.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replacen("open", "closed", 1)).unwrap();
    assert_eq!(
        kmsrot::report::verify_sums(&out).unwrap(),
        vec!["findings.csv"]
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn report_refuses_a_bundle_that_was_not_assessed() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    copy_bundle(&bundle);
    for ext in ["parquet", "csv", "json"] {
        std::fs::remove_file(bundle.join(format!("findings.{ext}"))).unwrap();
    }
    // As `collect` leaves it: sealed, never assessed.
    let mut m = kmsrot::bundle::Manifest::read(&bundle).unwrap();
    m.assessment = None;
    m.seal(&bundle).unwrap();
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(&bundle)
        .arg("--out")
        .arg(work.path().join("r")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has not been assessed"), "{stderr}");
    assert!(stderr.contains("kmsrot assess"), "{stderr}");
}

/// Debian's chromium; `scripts/test` installs it. Missing is a failure.
fn chromium() -> PathBuf {
    let path = std::env::var_os("KMSROT_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} not found: the browser test needs Debian's chromium (scripts/test installs it: apt-get install -y chromium)",
        path.display()
    );
    path
}

fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        // The network is off: every host resolves to nothing and any request
        // would go to a proxy port nobody listens on.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The text of the element with this id in a dumped DOM.
fn by_id(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    rest[open..open + close].trim().to_string()
}

/// `--due-within` sets the forward view's last bucket; days outside
/// 1..=2560 are refused before anything is written.
#[test]
fn report_due_within_sets_the_buckets() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("report");
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(sample_bundle())
        .arg("--out")
        .arg(&out)
        .args(["--due-within", "180"]));
    assert_eq!(code, 3, "{stderr}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| Overdue | 0-30 days | 31-60 days | 61-90 days | 91-180 days |"),
        "{md}"
    );
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(sample_bundle())
        .arg("--out")
        .arg(work.path().join("r2"))
        .args(["--due-within", "0"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("not a number of days from 1 to 2560"),
        "{stderr}"
    );
    assert!(!work.path().join("r2").exists());
}

#[test]
fn report_html_in_headless_chromium() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("report");
    let (code, _, stderr) = run(kmsrot()
        .arg("report")
        .arg(sample_bundle())
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 3, "{stderr}");
    let html = out.join("report.html");
    let url = format!("file://{}", html.display());
    let profile = work.path().join("chromium-profile");

    let dom = headless(&profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("running chromium");
    let stdout = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed:\n{log}");
    for bad in ["Uncaught", "ERROR:CONSOLE", "CONSOLE("] {
        assert!(!log.contains(bad), "console error in the page:\n{log}");
    }

    // The counts the page shows equal the findings frame.
    let all = findings(&sample_bundle());
    let open = all.iter().filter(|f| f["status"] == "open").count();
    assert_eq!(by_id(&stdout, "count-findings"), all.len().to_string());
    assert_eq!(by_id(&stdout, "count-open"), open.to_string());
    assert_eq!(
        by_id(&stdout, "count-exempted"),
        (all.len() - open).to_string()
    );
    assert_eq!(stdout.matches("<tr class=\"finding ").count(), all.len());
    for sev in ["critical", "high", "medium", "low", "info"] {
        let n = all
            .iter()
            .filter(|f| f["status"] == "open" && f["severity"] == sev)
            .count();
        let needle = format!("data-open-severity=\"{sev}\">{n}<");
        assert!(stdout.contains(&needle), "{sev}: want {n} open");
    }
    assert_eq!(stdout.matches("<svg").count(), 3, "three inline charts");
    // Keys coming due: the sample's one overdue key.
    let due = &stdout[stdout.find("id=\"due\"").expect("a #due section")..];
    let due = &due[..due.find("</section>").unwrap()];
    assert!(
        due.contains("alias/ledger-archive") && due.contains("<td>overdue</td>"),
        "{due}"
    );

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1800")
        .arg("--hide-scrollbars")
        .arg(&url)
        .output()
        .expect("running chromium");
    let log = String::from_utf8_lossy(&shot.stderr);
    assert!(shot.status.success(), "chromium failed:\n{log}");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}\n{log}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(bytes.len() > 20_000, "suspiciously small screenshot");
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_and_uploaded_with_object_lock() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};

    let moto = Moto::start();
    let kms = moto.kms("us-east-1").await;
    let key = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .description("evidence signing")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let s3 = moto.s3("us-east-1").await;
    s3.create_bucket()
        .bucket("audit-evidence")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    s3.create_bucket()
        .bucket("plain-bucket")
        .send()
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    copy_bundle(&bundle);
    let out = work.path().join("report");
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("report")
        .arg(&bundle)
        .arg("--out")
        .arg(&out)
        .args(["--sign-with", &key])
        .args(["--upload", "s3://audit-evidence/kms/2026-11"])
        .args([
            "--object-lock-days",
            "30",
            "--object-lock-mode",
            "governance",
        ]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("signed"), "{stderr}");
    assert!(stderr.contains("Object Lock GOVERNANCE until"), "{stderr}");
    assert!(out.join("manifest.json.sig").is_file());
    let info = read_json(&bundle.join("manifest.json.sig.json"));
    assert_eq!(info["signing_algorithm"], "RSASSA_PSS_SHA_256");
    assert_eq!(info["message_type"], "DIGEST");
    assert_eq!(info["key_id"], key.as_str());

    let listed = s3
        .list_objects_v2()
        .bucket("audit-evidence")
        .prefix("kms/2026-11/")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    for k in [
        "kms/2026-11/report.html",
        "kms/2026-11/SHA256SUMS",
        "kms/2026-11/bundle/manifest.json",
        "kms/2026-11/bundle/manifest.json.sig",
        "kms/2026-11/bundle/keys.parquet",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} not uploaded: {keys:?}");
    }
    let head = s3
        .head_object()
        .bucket("audit-evidence")
        .key("kms/2026-11/report.html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    assert!(head.object_lock_retain_until_date().is_some());

    // A bucket without Object Lock still gets the files, and stderr says so.
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("report")
        .arg(&bundle)
        .arg("--out")
        .arg(work.path().join("report2"))
        .args(["--upload", "s3://plain-bucket/x"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("has no Object Lock"), "{stderr}");

    // The signature verifies with GetPublicKey and a local RSA-PSS check.
    let (code, _, stderr) = run(moto.kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signature verifies"), "{stderr}");

    // After tampering with the manifest, it does not.
    let path = bundle.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"format\"", "\"format\" ", 1)).unwrap();
    let (code, _, stderr) = run(moto.kmsrot().arg("verify-bundle").arg(&bundle));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
}

#[test]
fn completions_and_man_page() {
    let (code, stdout, stderr) = run(kmsrot().args(["completions", "bash"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("_kmsrot()"), "{stdout}");
    assert!(stdout.contains("verify-bundle"), "{stdout}");
    let (code, stdout, stderr) = run(kmsrot().arg("man"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(".ie") || stdout.contains(".TH kmsrot"),
        "{stdout}"
    );
    assert!(stdout.contains("report"), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(kmsrot().args(["man", "--out"]).arg(dir.path()));
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("kmsrot.1").is_file());
    assert!(dir.path().join("kmsrot-report.1").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_collects_assesses_and_reports() {
    let moto = Moto::start();
    let keys = crate::assess::seed_keys(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("run");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args([
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
            "audit",
            "--out",
        ])
        .arg(&out));
    // Rotation is off on eligible keys (ledger): open high findings.
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("rotation_disabled"), "{stdout}");
    let manifest = read_json(&out.join("bundle/manifest.json"));
    assert!(manifest["assessment"]["findings"].as_u64().unwrap() > 0);
    let html = std::fs::read_to_string(out.join("report/report.html")).unwrap();
    assert!(html.contains("alias/ledger"), "the report names the keys");
    // No --trail: the report says CloudTrail was not read.
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(md.contains("No CloudTrail source was read"), "{md}");
    assert!(kmsrot::report::verify_sums(&out.join("report"))
        .unwrap()
        .is_empty());
    let (code, _, stderr) = run(moto
        .kmsrot()
        .args(["verify-bundle", "--no-signature"])
        .arg(out.join("bundle")));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        html.contains(&keys.ledger),
        "per-key detail carries the ARN"
    );
}
