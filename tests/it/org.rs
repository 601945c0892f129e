//! An AWS Organization in one run (`--accounts`, `--ou`), against moto.
//!
//! moto implements Organizations (CreateOrganization, CreateAccount with the
//! `OrganizationAccountAccessRole` in each new account, OUs, CloseAccount),
//! and an AssumeRole into another account's id gives credentials whose
//! calls see that account's resources only, so keys seeded through the role
//! belong to the member. What moto cannot do is done by the proxy in front
//! of it, and each test says so:
//! - STS refusing an AssumeRole (moto grants every one): the proxy answers
//!   403 AccessDenied in STS's XML error shape for the refused account;
//! - PENDING_CLOSURE (moto's CloseAccount goes straight to SUSPENDED, which
//!   is tested as moto has it): the proxy reports that state in ListAccounts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::org;
use crate::support::proxy::{Proxy, Rule};
use crate::support::seed::{self, SeededKey};
use crate::support::{read_json, run, Moto, ACCOUNT};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// An organization in moto: the caller (moto's default account) is its
/// management account.
struct OrgFixture {
    moto: Moto,
    root: String,
    /// Root/Workloads, holding analytics and the Prod OU.
    workloads: String,
    /// Account id by name.
    ids: BTreeMap<&'static str, String>,
    /// Keys seeded per account id.
    keys: BTreeMap<String, Vec<SeededKey>>,
}

impl OrgFixture {
    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    /// Account ids → their names, for snapshots (ids are random).
    fn filters(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = self
            .ids
            .iter()
            .map(|(name, id)| (id.clone(), format!("[{}]", name.to_uppercase())))
            .collect();
        f.push((ACCOUNT.to_string(), "[MANAGEMENT]".into()));
        f.push((self.root.clone(), "[ROOT]".into()));
        f
    }
}

/// payments (Root/Workloads/Prod) and analytics (Root/Workloads) with two
/// keys in each of two regions, rotation on; refused (Root), whose
/// role the proxy refuses, with keys that must never show; retired, closed
/// (SUSPENDED); closing, with keys, reported PENDING_CLOSURE by the proxy;
/// and one key in the management account.
async fn organization() -> OrgFixture {
    let moto = Moto::start();
    let base = moto.config("us-east-1").await;
    let orgs = aws_sdk_organizations::Client::new(&base);
    let root = org::create(&orgs).await.unwrap();
    let workloads = org::ou(&orgs, &root, "Workloads").await.unwrap();
    let prod = org::ou(&orgs, &workloads, "Prod").await.unwrap();
    let mut ids = BTreeMap::new();
    for name in ["payments", "analytics", "refused", "retired", "closing"] {
        ids.insert(name, org::account(&orgs, name).await.unwrap());
    }
    org::move_account(&orgs, &ids["payments"], &root, &prod)
        .await
        .unwrap();
    org::move_account(&orgs, &ids["analytics"], &root, &workloads)
        .await
        .unwrap();
    let mut keys: BTreeMap<String, Vec<SeededKey>> = BTreeMap::new();
    for name in ["payments", "analytics", "refused", "closing"] {
        let id = &ids[name];
        for region in REGIONS {
            let kms = org::member_kms(&base, id, region).await.unwrap();
            let prefix = format!("{name}-{region}");
            let mut k = seed::plain_keys(&kms, region, &prefix, 2, true, 2)
                .await
                .unwrap();
            // Rotation on everywhere: no high finding, so `audit` exits on
            // coverage alone (an open high finding would make it exit 1,
            // findings first).
            for key in &mut k {
                if key.rotation == Some(false) {
                    seed::enable_rotation(&kms, &key.key_id, None)
                        .await
                        .unwrap();
                    key.rotation = Some(true);
                }
            }
            keys.entry(id.clone()).or_default().extend(k);
        }
    }
    let kms = moto.kms("us-east-1").await;
    let own = seed::plain_keys(&kms, "us-east-1", "management", 1, true, 1)
        .await
        .unwrap();
    keys.insert(ACCOUNT.to_string(), own);
    org::close(&orgs, &ids["retired"]).await.unwrap();
    OrgFixture {
        moto,
        root,
        workloads,
        ids,
        keys,
    }
}

/// The proxy standing for what moto cannot do (see the module's note).
fn refusing_proxy(f: &OrgFixture) -> Proxy {
    let refused = f.id("refused");
    Proxy::start(
        &f.moto.url,
        vec![
            Rule::operation("AssumeRole")
                .body_contains(refused)
                .sts_deny(&format!(
                    "arn:aws:iam::{refused}:role/OrganizationAccountAccessRole"
                )),
            Rule::operation("ListAccounts").account_state(f.id("closing"), "PENDING_CLOSURE"),
        ],
    )
}

fn kmsrot_via(f: &OrgFixture, proxy: &Proxy) -> std::process::Command {
    let mut cmd = f.moto.kmsrot();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .env("USER", "auditor")
        .arg("--no-progress");
    cmd
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// ARNs by account in a bundle's keys.json.
fn arns_by_account(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in array(&read_json(&dir.join("keys.json"))) {
        out.entry(k["account_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(k["arn"].as_str().unwrap().to_string());
    }
    out
}

fn seeded_arns(keys: &[SeededKey], regions: &[&str]) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| regions.contains(&k.region.as_str()))
        .map(|k| k.arn.clone())
        .collect()
}

fn account_entry<'a>(coverage: &'a Value, id: &str) -> &'a Value {
    array(&coverage["inventory"]["accounts"])
        .iter()
        .find(|a| a["account_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in coverage.json accounts: {coverage}"))
}

/// The "## Accounts" section of report.md.
fn accounts_section(md: &str) -> String {
    let start = md
        .find("## Accounts")
        .expect("report.md has an Accounts section");
    let rest = &md[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn org_audit_is_one_bundle_naming_every_account_with_the_refused_one_in_coverage() {
    let f = organization().await;
    let proxy = refusing_proxy(&f);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = kmsrot_via(&f, &proxy);
    cmd.args(["--accounts", "org"]);
    for r in REGIONS {
        cmd.args(["--region", r]);
    }
    cmd.args(["audit", "--out"]).arg(out.path());
    let (code, stdout, stderr) = run(&mut cmd);
    let ctx = format!("exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, 3, "the refused account makes coverage partial\n{ctx}");
    let bundle = out.path().join("bundle");

    // Every key of every account read, and only those.
    let got = arns_by_account(&bundle);
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in ["payments", "analytics"] {
        let id = f.id(name);
        want.insert(id.to_string(), seeded_arns(&f.keys[id], &REGIONS));
    }
    want.insert(ACCOUNT.into(), seeded_arns(&f.keys[ACCOUNT], &REGIONS));
    assert_eq!(got, want, "{ctx}");
    for k in array(&read_json(&bundle.join("keys.json"))) {
        let seeded = f
            .keys
            .values()
            .flatten()
            .find(|s| s.arn == k["arn"])
            .unwrap();
        assert_eq!(k["eligibility"], seeded.expect, "{k}");
        assert_eq!(k["rotation_enabled"], seeded.rotation.unwrap(), "{k}");
        assert!(k["arn"]
            .as_str()
            .unwrap()
            .contains(k["account_id"].as_str().unwrap()));
    }

    // Coverage names the refused account with STS's code and message, and
    // the two accounts the organization does not list ACTIVE as skipped.
    let coverage = read_json(&bundle.join("coverage.json"));
    assert_eq!(coverage["complete"], false);
    let refused = account_entry(&coverage, f.id("refused"));
    assert_eq!(refused["status"], "not_read", "{refused}");
    assert_eq!(refused["error"]["code"], "AccessDenied", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not authorized to perform: sts:AssumeRole"),
        "{refused}"
    );
    assert_eq!(
        refused["role_arn"],
        format!(
            "arn:aws:iam::{}:role/OrganizationAccountAccessRole",
            f.id("refused")
        )
    );
    assert_eq!(refused["session_name"], "kmsrot-auditor");
    for (name, state) in [("retired", "SUSPENDED"), ("closing", "PENDING_CLOSURE")] {
        let a = account_entry(&coverage, f.id(name));
        assert_eq!(a["status"], "skipped", "{a}");
        assert_eq!(a["org_state"], state, "{a}");
    }
    for name in ["payments", "analytics"] {
        let a = account_entry(&coverage, f.id(name));
        assert_eq!(a["status"], "read", "{a}");
        assert_eq!(a["keys"], 4, "{a}");
    }
    assert_eq!(
        account_entry(&coverage, f.id("payments"))["ou_path"],
        "Root/Workloads/Prod"
    );
    assert_eq!(
        account_entry(&coverage, f.id("analytics"))["ou_path"],
        "Root/Workloads"
    );
    let me = account_entry(&coverage, ACCOUNT);
    assert_eq!(
        me["role_arn"],
        Value::Null,
        "the caller reads its own account"
    );

    // One AssumeRole per account read (not per region); none into a skipped
    // account or the caller's own.
    let assumed = proxy.assume_role_calls();
    let want: BTreeMap<String, usize> = ["payments", "analytics", "refused"]
        .iter()
        .map(|n| (f.id(n).to_string(), 1))
        .collect();
    assert_eq!(assumed, want, "{ctx}");

    // At most five KMS calls per key, plus the listings.
    let per_key: u64 = [
        "DescribeKey",
        "ListResourceTags",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "ListKeyRotations",
    ]
    .iter()
    .map(|op| proxy.requests().get(*op).copied().unwrap_or(0))
    .sum();
    let keys = got.values().map(BTreeSet::len).sum::<usize>() as u64;
    assert!(
        per_key <= 5 * keys,
        "{per_key} per-key calls for {keys} keys"
    );

    // The manifest lists each account: name, OU path, role, read or not.
    let manifest = read_json(&bundle.join("manifest.json"));
    let details = array(&manifest["account_details"]);
    assert_eq!(details.len(), 6, "{manifest}");
    let detail = |id: &str| details.iter().find(|d| d["account_id"] == id).unwrap();
    assert_eq!(detail(f.id("refused"))["read"], false);
    assert_eq!(detail(f.id("refused"))["status"], "not_read");
    assert_eq!(detail(f.id("payments"))["read"], true);
    assert_eq!(detail(f.id("payments"))["name"], "payments");
    assert_eq!(detail(f.id("payments"))["ou_path"], "Root/Workloads/Prod");
    assert_eq!(detail(f.id("retired"))["status"], "skipped");
    assert_eq!(manifest["organization"]["selected_by"], "--accounts org");
    assert_eq!(manifest["organization"]["management_account_id"], ACCOUNT);

    // stderr names the refused account and what to do about it.
    assert!(
        stderr.contains(&format!("account {} (refused) not read", f.id("refused"))),
        "{ctx}"
    );

    // One report naming every account; the refused one "not read".
    let report = out.path().join("report");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    for id in f.ids.values().chain([&ACCOUNT.to_string()]) {
        assert!(md.contains(id.as_str()), "{id} not in report.md");
    }
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        html.contains(&format!(
            r#"data-account="{}" data-coverage="not read""#,
            f.id("refused")
        )),
        "the HTML account table marks the refused account"
    );
    assert!(html.contains("Compliance by account"), "the chart is there");
    // Account ids are random: named, and the rows put in name order.
    let mut section = accounts_section(&md);
    for (id, name) in f.filters() {
        section = section.replace(&id, &name);
    }
    let mut lines: Vec<&str> = section.lines().collect();
    let rows: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].starts_with("| ["))
        .collect();
    let mut sorted: Vec<&str> = rows.iter().map(|i| lines[*i]).collect();
    sorted.sort();
    for (i, line) in rows.into_iter().zip(sorted) {
        lines[i] = line;
    }
    insta::assert_snapshot!("org_report_account_table", lines.join("\n"));

    // One account's report from the organization's bundle.
    let one = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(f
        .moto
        .kmsrot()
        .args(["report"])
        .arg(&bundle)
        .args(["--account", f.id("payments"), "--out"])
        .arg(one.path()));
    assert!(code == 0 || code == 3, "{stderr}");
    let keys = array(&read_json(&one.path().join("keys.json"))).clone();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| k["account_id"] == f.id("payments")));
    let findings = array(&read_json(&one.path().join("findings.json"))).clone();
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|x| x["account_id"] == f.id("payments")));
    let md = std::fs::read_to_string(one.path().join("report.md")).unwrap();
    assert!(md.contains(&format!("this report covers account {}", f.id("payments"))));
    assert!(!md.contains(f.id("analytics")), "{md}");
    let (code, _, stderr) = run(f
        .moto
        .kmsrot()
        .args(["report"])
        .arg(&bundle)
        .args(["--account", "999999999999", "--out"])
        .arg(one.path().join("x")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no such account"), "{stderr}");
    assert!(
        stderr.contains(f.id("payments")),
        "the hint lists them: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ou_reads_the_accounts_under_it_recursively() {
    let f = organization().await;
    let proxy = refusing_proxy(&f);
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(kmsrot_via(&f, &proxy)
        .args([
            "--ou",
            &f.workloads,
            "--region",
            "us-east-1",
            "inventory",
            "--out",
        ])
        .arg(out.path()));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let got = arns_by_account(out.path());
    let mut want = BTreeMap::new();
    for name in ["payments", "analytics"] {
        let id = f.id(name);
        want.insert(id.to_string(), seeded_arns(&f.keys[id], &["us-east-1"]));
    }
    assert_eq!(got, want);
    let coverage = read_json(&out.path().join("coverage.json"));
    let accounts: Vec<&str> = array(&coverage["inventory"]["accounts"])
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = vec![f.id("payments"), f.id("analytics")];
    want.sort();
    assert_eq!(accounts, want);
    assert_eq!(
        account_entry(&coverage, f.id("payments"))["ou_path"],
        format!("{}/Prod", f.workloads)
    );
    assert_eq!(proxy.assume_role_calls().len(), 2);
    // One row per account on stdout.
    assert!(
        stdout.contains("payments") && stdout.contains("analytics"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn named_accounts_and_an_accounts_file() {
    let f = organization().await;
    let proxy = refusing_proxy(&f);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.txt");
    std::fs::write(
        &file,
        format!("# the payments estate\n{}  # payments\n", f.id("payments")),
    )
    .unwrap();
    let out = dir.path().join("inv");
    let (code, stdout, stderr) = run(kmsrot_via(&f, &proxy)
        .args(["--accounts-file"])
        .arg(&file)
        .args([
            "--accounts",
            &format!("{},{}", f.id("analytics"), f.id("refused")),
            "--region",
            "eu-west-1",
            "inventory",
            "--out",
        ])
        .arg(&out));
    assert_eq!(code, 3, "refused is named, and refused\n{stdout}\n{stderr}");
    let got = arns_by_account(&out);
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), {
        let mut v = vec![f.id("payments").to_string(), f.id("analytics").to_string()];
        v.sort();
        v
    });
    assert!(stdout.contains("not_read"), "{stdout}");

    // A malformed file is named, with its line, before any AWS call.
    std::fs::write(&file, "111122223333\npayments\n").unwrap();
    let before: u64 = proxy.requests().values().sum();
    let (code, _, stderr) = run(kmsrot_via(&f, &proxy)
        .args(["--accounts-file"])
        .arg(&file)
        .args(["inventory", "--out"])
        .arg(dir.path().join("x")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("accounts.txt: line 2"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    let after: u64 = proxy.requests().values().sum();
    assert_eq!(before, after, "no AWS call");
}

/// A WAN-like round trip on every request: reading many small accounts
/// keeps many requests in flight at once, under the one budget, with one
/// AssumeRole per account.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_proxy_keeps_many_requests_in_flight_across_accounts() {
    const ACCOUNTS: usize = 10;
    const DELAY: Duration = Duration::from_millis(150);
    let moto = Moto::start();
    let base = moto.config("us-east-1").await;
    let orgs = aws_sdk_organizations::Client::new(&base);
    org::create(&orgs).await.unwrap();
    let mut members = Vec::new();
    for i in 0..ACCOUNTS {
        let id = org::account(&orgs, &format!("member-{i}")).await.unwrap();
        for region in REGIONS {
            // ECC signing keys: moto makes them at once (symmetric keys cost
            // it an RSA key each); the fan-out is what is measured here.
            let kms = org::member_kms(&base, &id, region).await.unwrap();
            seed::signing_keys(&kms, region, &format!("m{i}"), 3, false, 3)
                .await
                .unwrap();
        }
        members.push(id);
    }
    let proxy = Proxy::start(&moto.url, vec![Rule::any().delay(DELAY)]);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = moto.kmsrot();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["--no-progress", "--accounts", "org"]);
    for r in REGIONS {
        cmd.args(["--region", r]);
    }
    cmd.args(["inventory", "--out"]).arg(out.path());
    let started = Instant::now();
    let (code, stdout, stderr) = run(&mut cmd);
    let wall = started.elapsed();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let keys = array(&read_json(&out.path().join("keys.json"))).len();
    assert_eq!(keys, ACCOUNTS * REGIONS.len() * 3);
    let requests: u64 = proxy.requests().values().sum();
    // Each request spent at least DELAY at the proxy: requests × DELAY over
    // the wall time is a floor on the average in flight.
    let in_flight = requests as f64 * DELAY.as_secs_f64() / wall.as_secs_f64();
    assert!(
        in_flight >= 8.0,
        "{in_flight:.1} requests in flight on average ({requests} requests in {wall:?})\n{stderr}"
    );
    let assumed = proxy.assume_role_calls();
    assert_eq!(assumed.len(), ACCOUNTS, "{assumed:?}");
    assert!(assumed.values().all(|n| *n == 1), "{assumed:?}");
    assert!(
        stderr.contains(&format!("{} accounts: {} read", ACCOUNTS + 1, ACCOUNTS + 1)),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_across_org_bundles_names_accounts_added_removed_and_not_read() {
    let f = organization().await;
    let proxy = refusing_proxy(&f);
    let dir = tempfile::tempdir().unwrap();
    let collect = |accounts: String, name: &str| {
        let bundle = dir.path().join(name);
        let (code, stdout, stderr) = run(kmsrot_via(&f, &proxy)
            .args([
                "--accounts",
                &accounts,
                "--region",
                "us-east-1",
                "collect",
                "--out",
            ])
            .arg(&bundle));
        assert!(code == 0 || code == 3, "{stdout}\n{stderr}");
        let (code, stdout, stderr) = run(f.moto.kmsrot().arg("assess").arg(&bundle));
        assert!(code != 2, "{stdout}\n{stderr}");
        bundle
    };
    // Last month: payments and analytics. This month: analytics, and
    // refused, whose role is refused, so its keys are not in the bundle.
    let old = collect(format!("{},{}", f.id("payments"), f.id("analytics")), "old");
    let new = collect(format!("{},{}", f.id("analytics"), f.id("refused")), "new");
    let (code, stdout, stderr) = run(f
        .moto
        .kmsrot()
        .args(["--output", "json", "diff"])
        .arg(&old)
        .arg(&new));
    assert!(code == 0 || code == 1, "{stdout}\n{stderr}");
    let d: Value = serde_json::from_str(&stdout).unwrap();
    let ids = |field: &str| -> Vec<String> {
        array(&d[field])
            .iter()
            .map(|a| a["account_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("accounts_added"), [f.id("refused")]);
    assert_eq!(ids("accounts_removed"), [f.id("payments")]);
    // payments' keys left the selection: not "removed" from AWS.
    assert!(array(&d["keys_removed"]).is_empty(), "{d}");
    assert!(array(&d["keys_added"]).is_empty(), "{d}");
    assert_eq!(d["keys_not_compared"], 2, "{d}");
    // payments' open findings are not "resolved": nobody looked.
    assert!(array(&d["findings_resolved"]).is_empty(), "{d}");
    assert!(!array(&d["findings_not_verified"]).is_empty(), "{d}");
    assert!(stderr.contains("1 accounts added, 1 removed"), "{stderr}");
}

/// `trail scan lookup` over accounts: event history is per account, so each
/// is asked through the role assumed in it (once per account, whatever the
/// regions). moto has no LookupEvents: the CloudTrail fixture answers it,
/// and STS AssumeRole, with AWS's documented response shapes.
#[test]
fn lookup_reads_each_accounts_event_history_through_its_own_role() {
    use crate::support::cloudtrail_fixture::{CloudTrailFixture, FixtureEvent, FixtureOptions};
    use crate::support::fixtures;

    const CALLER: &str = "111122223333";
    let (a, b, refused) = ("444455556666", "777788889999", "222233334444");
    let now = chrono::Utc::now();
    let record = |n: u32, account: &str, region: &str| {
        // AWS's documented record, moved into `account` (its ARNs and ids).
        let text =
            std::fs::read_to_string(fixtures().join("lookup/current-docs.ct-rotatekey.1.json"))
                .unwrap()
                .replace(CALLER, account);
        let mut r: Value = serde_json::from_str(&text).unwrap();
        r["eventID"] = serde_json::json!(format!("{n:08x}-1111-4000-8000-000000000000"));
        r["eventTime"] = serde_json::json!((now - chrono::Duration::days(i64::from(n)))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string());
        r["awsRegion"] = serde_json::json!(region);
        r["recipientAccountId"] = serde_json::json!(account);
        FixtureEvent {
            region: region.to_string(),
            record: r,
        }
    };
    let events = vec![
        record(1, a, "us-east-1"),
        record(2, a, "eu-west-1"),
        record(3, b, "us-east-1"),
        record(4, refused, "us-east-1"),
    ];
    let fixture = CloudTrailFixture::start(
        events,
        FixtureOptions {
            account: CALLER.into(),
            refuse_accounts: vec![refused.into()],
            ..FixtureOptions::default()
        },
    );
    let out = tempfile::tempdir().unwrap();
    let since = (now - chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let (code, stdout, stderr) = run(crate::support::kmsrot()
        .args(["--endpoint-url", &fixture.url])
        .args(["--accounts", &format!("{a},{b},{refused}")])
        .args(["--region", "us-east-1", "--region", "eu-west-1"])
        .args(["trail", "scan", "lookup", "--since", &since, "--out"])
        .arg(out.path()));
    assert_eq!(code, 3, "the refused account is a gap\n{stdout}\n{stderr}");
    let mut got: Vec<(String, String)> = array(&read_json(&out.path().join("events.json")))
        .iter()
        .map(|e| {
            (
                e["account_id"].as_str().unwrap_or("").to_string(),
                e["aws_region"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (a.to_string(), "eu-west-1".to_string()),
            (a.to_string(), "us-east-1".to_string()),
            (b.to_string(), "us-east-1".to_string()),
        ]
    );
    // One AssumeRole per account, none per region; each account's lookups
    // signed with its own credentials.
    let mut assumed = fixture.assumed();
    assumed.sort();
    let mut want = vec![a.to_string(), b.to_string(), refused.to_string()];
    want.sort();
    assert_eq!(assumed, want);
    let signers: BTreeSet<String> = fixture
        .requests()
        .iter()
        .map(|r| r.account.clone())
        .collect();
    assert_eq!(
        signers,
        [a.to_string(), b.to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    let coverage = read_json(&out.path().join("coverage.json"));
    let errors = coverage["trail"]["sources"][0]["errors"].to_string();
    assert!(
        errors.contains(&format!("account {refused}")) && errors.contains("AccessDenied"),
        "{errors}"
    );
}

/// `diagnose` with the organization flags: a key ARN names its account, and
/// that account is read through the role assumed in it (moto keeps each
/// account's keys apart, so the caller's own credentials would not find the
/// key). A refused role is an error naming the role, with a hint; a key
/// named without its account, in a run over several, is a usage error.
#[tokio::test(flavor = "multi_thread")]
async fn diagnose_assumes_into_the_account_its_key_arn_names() {
    let f = organization().await;
    let proxy = refusing_proxy(&f);
    let key = &f.keys[f.id("payments")][0];
    let (code, stdout, stderr) = run(kmsrot_via(&f, &proxy)
        .args(["--accounts", "org", "--output", "json"])
        .args(["diagnose", &key.arn]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["key"]["arn"], key.arn.as_str(), "{report}");
    assert_eq!(report["key"]["account_id"], f.id("payments"), "{report}");
    assert_eq!(
        proxy.requests().get("AssumeRole").copied(),
        Some(1),
        "one AssumeRole, into the key's account"
    );

    let refused = &f.keys[f.id("refused")][0];
    let (code, _, stderr) = run(kmsrot_via(&f, &proxy)
        .args(["--accounts", "org"])
        .args(["diagnose", &refused.arn]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("AccessDenied") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(stderr.contains(f.id("refused")), "{stderr}");

    let (code, _, stderr) = run(kmsrot_via(&f, &proxy)
        .args(["--accounts", "org"])
        .args(["diagnose", &key.key_id]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("by its ARN"), "{stderr}");
}

/// plan → approve → apply → verify across two member accounts: the approval
/// made with `--accounts` records each action's account and the role assumed
/// there; `apply` assumes that role once per account (and refuses, without a
/// call, a run whose `--role-name` is not the approved role); `verify`
/// re-reads each account through its role.
#[tokio::test(flavor = "multi_thread")]
async fn apply_across_two_accounts_through_the_approved_roles() {
    let moto = Moto::start();
    let base = moto.config("us-east-1").await;
    let orgs = aws_sdk_organizations::Client::new(&base);
    org::create(&orgs).await.unwrap();
    let mut members = Vec::new();
    for name in ["payments", "analytics"] {
        let id = org::account(&orgs, name).await.unwrap();
        let kms = org::member_kms(&base, &id, "us-east-1").await.unwrap();
        let key = kms.create_key().send().await.unwrap();
        let key_id = key.key_metadata().unwrap().key_id().to_string();
        members.push((id, key_id, kms));
    }
    let list = format!("{},{}", members[0].0, members[1].0);
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let kmsrot = || {
        let mut c = moto.kmsrot();
        c.args(["--no-progress", "--region", "us-east-1"]);
        c
    };
    let (code, out, err) = run(kmsrot()
        .args(["--accounts", &list, "collect", "--out"])
        .arg(&bundle));
    assert!(code == 0 || code == 3, "collect: {code}\n{out}\n{err}");
    let plan_path = work.path().join("plan.json");
    let (code, out, err) = run(kmsrot()
        .arg("plan")
        .arg(&bundle)
        .arg("--out")
        .arg(&plan_path));
    assert_eq!(code, 0, "plan: {out}\n{err}");
    let plan = read_json(&plan_path);
    let planned: BTreeSet<String> = array(&plan["actions"])
        .iter()
        .map(|a| a["account_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, members.iter().map(|m| m.0.clone()).collect());

    let approval = work.path().join("approval.json");
    let (code, _, err) = run(kmsrot()
        .args(["--accounts", &list, "approve"])
        .arg(&plan_path)
        .arg("--out")
        .arg(&approval)
        .args(["--all", "--approver", "alice@example.com"]));
    assert_eq!(code, 0, "approve: {err}");
    let doc = read_json(&approval);
    let mut access: Vec<(String, String)> = array(&doc["access"])
        .iter()
        .map(|x| {
            (
                x["account_id"].as_str().unwrap().to_string(),
                x["role_arn"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    access.sort();
    let mut want: Vec<(String, String)> = members
        .iter()
        .map(|m| {
            (
                m.0.clone(),
                format!("arn:aws:iam::{}:role/OrganizationAccountAccessRole", m.0),
            )
        })
        .collect();
    want.sort();
    assert_eq!(
        access, want,
        "the approval records each action's account and role"
    );

    // Another role than the approved one: refused, nothing called.
    let (code, stdout, stderr) = run(kmsrot()
        .args(["--role-name", "SomeOtherRole", "--output", "json", "apply"])
        .arg(&approval)
        .arg("--execute"));
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("RoleMismatch")
            || stdout.contains("--role-name OrganizationAccountAccessRole"),
        "{stdout}"
    );
    for (_, key_id, kms) in &members {
        let st = kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        assert!(
            !st.key_rotation_enabled(),
            "nothing changed under the wrong role"
        );
    }

    // The approved role, from the approval alone (no --accounts needed).
    let (code, stdout, stderr) = run(kmsrot()
        .args(["--output", "json", "apply"])
        .arg(&approval)
        .arg("--execute"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        array(&rows)
            .iter()
            .filter(|r| r["outcome"] == "enabled")
            .count(),
        2,
        "{rows}"
    );
    for (_, key_id, kms) in &members {
        let st = kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        assert!(
            st.key_rotation_enabled(),
            "rotation on in the member account"
        );
    }

    let journal = kmsrot::remediate::journal::default_path(
        &approval,
        doc["approval_sha256"].as_str().unwrap(),
    );
    let v_path = work.path().join("validation.json");
    let (code, _, stderr) = run(kmsrot()
        .args(["--accounts", &list, "verify"])
        .arg(&journal)
        .arg("--out")
        .arg(&v_path));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(read_json(&v_path)["confirmed"], 2);
}

/// A member whose role is refused at apply time fails its own actions
/// (STS's AccessDenied, no KMS call) and does not stop the other accounts':
/// refusals made without a call are not "sustained failures". The plan
/// orders actions by region, so the refused account's two (us-east-1) run
/// before the other's (us-west-2), one at a time, with a stop after two
/// failures in a row.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_role_at_apply_does_not_stop_the_other_accounts() {
    let moto = Moto::start();
    let base = moto.config("us-east-1").await;
    let orgs = aws_sdk_organizations::Client::new(&base);
    org::create(&orgs).await.unwrap();
    let refused = org::account(&orgs, "refused").await.unwrap();
    let fine = org::account(&orgs, "fine").await.unwrap();
    let kms = org::member_kms(&base, &refused, "us-east-1").await.unwrap();
    for _ in 0..2 {
        kms.create_key().send().await.unwrap();
    }
    let fine_kms = org::member_kms(&base, &fine, "us-west-2").await.unwrap();
    let fine_key = fine_kms.create_key().send().await.unwrap();
    let fine_key = fine_key.key_metadata().unwrap().key_id().to_string();
    let list = format!("{refused},{fine}");
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let kmsrot = || {
        let mut c = moto.kmsrot();
        c.args([
            "--no-progress",
            "--region",
            "us-east-1",
            "--region",
            "us-west-2",
        ]);
        c
    };
    let (code, out, err) = run(kmsrot()
        .args(["--accounts", &list, "collect", "--out"])
        .arg(&bundle));
    assert!(code == 0 || code == 3, "collect: {code}\n{out}\n{err}");
    let plan_path = work.path().join("plan.json");
    let (code, _, err) = run(kmsrot()
        .arg("plan")
        .arg(&bundle)
        .arg("--out")
        .arg(&plan_path));
    assert_eq!(code, 0, "plan: {err}");
    assert_eq!(array(&read_json(&plan_path)["actions"]).len(), 3);
    let approval = work.path().join("approval.json");
    let (code, _, err) = run(kmsrot()
        .args(["--accounts", &list, "approve"])
        .arg(&plan_path)
        .arg("--out")
        .arg(&approval)
        .args(["--all", "--approver", "alice@example.com"]));
    assert_eq!(code, 0, "approve: {err}");

    // The role in `refused` is refused at apply time (moto grants every
    // AssumeRole: the proxy answers STS's AccessDenied).
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("AssumeRole")
            .body_contains(&refused)
            .sts_deny(&format!(
                "arn:aws:iam::{refused}:role/OrganizationAccountAccessRole"
            ))],
    );
    let (code, stdout, stderr) = run(kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["--output", "json", "apply"])
        .arg(&approval)
        .args([
            "--execute",
            "--concurrency",
            "1",
            "--max-consecutive-failures",
            "2",
        ]));
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    let outcome_of = |account: &str| -> Vec<String> {
        array(&rows)
            .iter()
            // The table's JSON prints digit-only cells as numbers (an id with
            // a leading zero stays text).
            .filter(|r| {
                r["account"]
                    .as_str()
                    .map_or_else(|| r["account"].to_string(), str::to_string)
                    == account
            })
            .map(|r| r["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(outcome_of(&refused), ["failed", "failed"], "{rows}");
    assert_eq!(outcome_of(&fine), ["enabled"], "{rows}\n{stderr}");
    assert!(stdout.contains("AccessDenied"), "{stdout}");
    let st = fine_kms
        .get_key_rotation_status()
        .key_id(&fine_key)
        .send()
        .await
        .unwrap();
    assert!(st.key_rotation_enabled());
}
