//! `plan` → `approve` → `apply` → `verify` against moto, through a counting,
//! fault-injecting proxy where a test needs to see or shape the calls.
//!
//! moto's gaps, named where the tests meet them:
//! - GetKeyRotationStatus never returns RotationPeriodInDays. AWS always
//!   does; where a test depends on the period, the proxy adds it
//!   (`Rule::report_period`: the period of the last EnableKeyRotation it
//!   forwarded, else AWS's default 365). Elsewhere "rotation on" is all that
//!   can be confirmed.
//! - moto accepts EnableKeyRotation on keys AWS rejects (RSA, HMAC, imported,
//!   disabled), so the tests assert that kmsrot never sends the call there
//!   rather than relying on an error.
//! - moto 5.2 answers 500 to CancelKeyDeletion and EnableKey given a key ARN,
//!   which AWS accepts. kmsrot sends the ARN; the proxy
//!   (`Rule::bare_key_id`) records it and forwards the bare key id moto
//!   understands.
//! - moto's KMS Sign ignores MessageType DIGEST; the signature check accepts
//!   its form as well as AWS's (see `aws::signing`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::assert_seen;
use crate::support::proxy::{Proxy, Rule};
use crate::support::seed::{self, KeySpecification};
use crate::support::snapshot::Seen;
use crate::support::{read_json, run, Moto, ACCOUNT};

const REGION: &str = "us-east-1";

struct Scenario {
    /// Eligible, rotation off, aliased `alias/orders`.
    orders: String,
    /// Eligible, rotation off, aliased `alias/billing`.
    billing: String,
    /// Eligible, rotation on: compliant.
    payments: String,
    /// RSA signing key: never rotatable; also signs approvals.
    signing: String,
    /// Disabled eligible key.
    legacy: String,
    /// Pending deletion.
    doomed: String,
}

impl Scenario {
    fn all(&self) -> [&String; 6] {
        [
            &self.orders,
            &self.billing,
            &self.payments,
            &self.signing,
            &self.legacy,
            &self.doomed,
        ]
    }
}

async fn seed_scenario(moto: &Moto) -> Scenario {
    let kms = moto.kms(REGION).await;
    let mk = |name: &str, alias: &str| {
        KeySpecification::symmetric(name)
            .alias(alias)
            .tag("team", "t")
    };
    let (orders, _) = seed::create(&kms, &mk("orders", "alias/orders"))
        .await
        .unwrap();
    let (billing, _) = seed::create(&kms, &mk("billing", "alias/billing"))
        .await
        .unwrap();
    let (payments, _) = seed::create(&kms, &mk("payments", "alias/payments"))
        .await
        .unwrap();
    seed::enable_rotation(&kms, &payments, None).await.unwrap();
    let (signing, _) = seed::create(
        &kms,
        &mk("signing", "alias/signing").spec(
            aws_sdk_kms::types::KeySpec::Rsa2048,
            aws_sdk_kms::types::KeyUsageType::SignVerify,
        ),
    )
    .await
    .unwrap();
    let (legacy, _) = seed::create(&kms, &mk("legacy", "alias/legacy"))
        .await
        .unwrap();
    seed::disable(&kms, &legacy).await.unwrap();
    let (doomed, _) = seed::create(&kms, &mk("doomed", "alias/doomed"))
        .await
        .unwrap();
    seed::schedule_deletion(&kms, &doomed).await.unwrap();
    Scenario {
        orders,
        billing,
        payments,
        signing,
        legacy,
        doomed,
    }
}

fn arn(key_id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}")
}

/// `n` eligible keys with rotation off.
async fn bulk(moto: &Moto, prefix: &str, n: usize) -> Vec<String> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let kms = moto.kms(REGION).await;
    stream::iter(0..n)
        .map(|i| {
            let kms = kms.clone();
            async move {
                seed::create(
                    &kms,
                    &KeySpecification::symmetric(&format!("{prefix}-{i:03}")),
                )
                .await
                .map(|(id, _)| id)
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .unwrap()
}

/// A KMS client that goes through `proxy`, so the proxy sees (and can
/// report) the periods it sets.
async fn kms_via(moto: &Moto, proxy: &Proxy) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::config::Builder::from(&moto.config(REGION).await)
        .endpoint_url(&proxy.url)
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// moto-compatibility rules every apply proxy needs (see the module notes).
fn compat() -> Vec<Rule> {
    vec![
        Rule::operation("CancelKeyDeletion").bare_key_id(),
        Rule::operation("EnableKey").bare_key_id(),
    ]
}

/// `kmsrot collect` into `dir/bundle` through `endpoint`; no trail, so
/// coverage may be partial.
fn collect_via(moto: &Moto, endpoint: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    let (code, out, err) = run(moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(["--region", REGION, "collect", "--out"])
        .arg(&bundle));
    assert!(code == 0 || code == 3, "collect: {code}\n{out}\n{err}");
    bundle
}

fn collect(moto: &Moto, dir: &Path) -> PathBuf {
    collect_via(moto, &moto.url, dir)
}

fn plan(moto: &Moto, bundle: &Path, out: &Path, extra: &[&str]) -> Value {
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .arg("plan")
        .arg(bundle)
        .arg("--out")
        .arg(out)
        .args(extra));
    assert_eq!(code, 0, "plan:\n{stdout}\n{stderr}");
    read_json(out)
}

fn approve(moto: &Moto, plan: &Path, out: &Path, select: &[&str]) -> (i32, String, String) {
    run(moto
        .kmsrot()
        .arg("approve")
        .arg(plan)
        .arg("--out")
        .arg(out)
        .args(["--approver", "alice@example.com", "--note", "CHG-42"])
        .args(select))
}

fn apply(moto: &Moto, endpoint: &str, approval: &Path, extra: &[&str]) -> (i32, String, String) {
    run(moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", endpoint)
        .arg("apply")
        .arg(approval)
        .args(extra))
}

fn verify(moto: &Moto, journal: &Path, out: &Path) -> (i32, Value, String) {
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("verify")
        .arg(journal)
        .arg("--out")
        .arg(out));
    let v = if out.exists() {
        read_json(out)
    } else {
        Value::Null
    };
    (code, v, stderr)
}

/// The journal `apply` keeps for an approval by default.
fn journal_of(approval: &Path) -> PathBuf {
    let a = read_json(approval);
    kmsrot::remediate::journal::default_path(approval, a["approval_sha256"].as_str().unwrap())
}

/// Rotation status of every key, straight from the emulator.
async fn rotation_states(moto: &Moto, keys: &[&String]) -> BTreeMap<String, bool> {
    let kms = moto.kms(REGION).await;
    let mut out = BTreeMap::new();
    for k in keys {
        let on = kms
            .get_key_rotation_status()
            .key_id(k.as_str())
            .send()
            .await
            .unwrap()
            .key_rotation_enabled();
        out.insert((*k).clone(), on);
    }
    out
}

async fn key_state(moto: &Moto, key: &str) -> String {
    moto.kms(REGION)
        .await
        .describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .as_str()
        .to_string()
}

fn action_for<'a>(plan: &'a Value, key_id: &str) -> Option<&'a Value> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key_id"] == key_id)
}

fn journal_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn outcomes(path: &Path) -> Vec<Value> {
    journal_lines(path)
        .into_iter()
        .filter(|l| l["type"] == "outcome")
        .collect()
}

fn outcome_for(path: &Path, key_id: &str) -> Vec<Value> {
    outcomes(path)
        .into_iter()
        .filter(|l| l["key_arn"].as_str().unwrap().ends_with(key_id))
        .collect()
}

/// Every call that changes a key, as the proxy saw them.
fn changes(proxy: &Proxy) -> u64 {
    let r = proxy.requests();
    ["EnableKeyRotation", "EnableKey", "CancelKeyDeletion"]
        .iter()
        .map(|op| r.get(*op).copied().unwrap_or(0))
        .sum()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn rehash_plan(p: &mut Value) {
    p["plan_sha256"] = kmsrot::remediate::plan_hash(p).into();
}

fn rehash_approval(a: &mut Value) {
    a["approval_sha256"] = kmsrot::remediate::approval::approval_hash(a).into();
}

/// Besides the shared filters (times, key and action ids, hashes, temp
/// paths): short hashes in names and the plan's age.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"plan [0-9a-f]{12} ", "plan [SHA] "),
        (r"\.[0-9a-f]{12}\.journal", ".[SHA].journal"),
        (r"just now|\d+ (minute|hour|day)s? ago", "[AGE]"),
        (r"months to \d{4}-\d{2}-\d{2}", "months to [DATE]"),
        (r"/[^\s]*/\.tmp[A-Za-z0-9]+", "[TEMP]"),
    ]
}

/// Snapshots a run of one of this file's helpers.
fn snap(name: &str, run: &(i32, String, String)) {
    assert_seen!(name, &Seen::from(run.clone()), filters());
}

#[tokio::test(flavor = "multi_thread")]
async fn remediate_whole_flow_changes_only_approved_keys() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    // Findings make the plan name what each action closes.
    let (code, out, err) = run(moto.kmsrot().arg("assess").arg(&bundle));
    assert!(code == 1 || code == 3, "assess: {code}\n{out}\n{err}");

    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    let planned: Vec<&str> = p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key_id"].as_str().unwrap())
        .collect();
    let mut want = vec![s.orders.as_str(), s.billing.as_str()];
    want.sort();
    let mut got = planned.clone();
    got.sort();
    assert_eq!(
        got, want,
        "only eligible keys with rotation off are actions"
    );
    let orders = action_for(&p, &s.orders).unwrap();
    assert_eq!(orders["action"], "enable_rotation");
    assert_eq!(orders["account_id"], ACCOUNT);
    assert_eq!(orders["rotation_period_days"], 365);
    assert_eq!(orders["planned_state"]["rotation_enabled"], false);
    assert_eq!(orders["planned_state"]["key_spec"], "SYMMETRIC_DEFAULT");
    assert_eq!(
        orders["calls"],
        json!(["EnableKeyRotation(RotationPeriodInDays=365)"])
    );
    let closes = orders["closes_findings"].as_array().unwrap();
    assert!(
        closes.iter().any(|f| f["rule_id"] == "rotation_disabled"),
        "the rotation_disabled finding is closed by the action: {closes:?}"
    );
    let apart: BTreeMap<String, String> = p["not_planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["key_arn"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                n["category"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(apart[&s.payments], "compliant");
    assert_eq!(apart[&s.signing], "ineligible");
    assert_eq!(apart[&s.legacy], "ineligible");
    assert_eq!(apart[&s.doomed], "ineligible");
    assert_eq!(
        p["plan_sha256"].as_str().unwrap(),
        kmsrot::remediate::plan_hash(&p)
    );

    let approval = work.path().join("approval.json");
    let (code, out, err) = approve(&moto, &plan_path, &approval, &["--key", "alias/orders"]);
    assert_eq!(code, 0, "approve:\n{out}\n{err}");
    let a = read_json(&approval);
    assert_eq!(a["approved_actions"], json!([orders["action_id"]]));
    assert_eq!(a["plan_sha256"], p["plan_sha256"]);
    assert_eq!(a["approver"], "alice@example.com");
    assert_eq!(a["note"], "CHG-42");
    assert_eq!(a["caller"]["account"], ACCOUNT);
    assert!(a.get("signature").is_none());
    // Valid for the default 7 days.
    let t = |f: &str| chrono::DateTime::parse_from_rfc3339(a[f].as_str().unwrap()).unwrap();
    assert_eq!(
        t("expires_at") - t("approved_at"),
        chrono::Duration::days(7)
    );

    // Approving a key that is not an action is an error.
    let (code, _, err) = approve(
        &moto,
        &plan_path,
        &work.path().join("x.json"),
        &["--key", "alias/signing"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not an action in the plan"), "{err}");

    // An approval edited by hand (its hash no longer matches) is refused,
    // dry run included.
    let edited = work.path().join("edited.json");
    let mut e = a.clone();
    e["approver"] = "mallory@example.com".into();
    write_json(&edited, &e);
    let refused = apply(&moto, &moto.url, &edited, &[]);
    assert_eq!(refused.0, 2, "{}", refused.2);
    snap("apply_edited_approval", &refused);

    // The dry run changes nothing.
    let keys = s.all();
    let before = rotation_states(&moto, &keys).await;
    let dry = apply(&moto, &moto.url, &approval, &[]);
    let (code, stdout, stderr) = dry.clone();
    assert_eq!(code, 0, "dry run:\n{stdout}\n{stderr}");
    assert_eq!(rotation_states(&moto, &keys).await, before);
    let journal = journal_of(&approval);
    assert!(!journal.exists());
    snap("apply_dry_run", &dry);

    let executed = apply(&moto, &moto.url, &approval, &["--execute"]);
    let (code, stdout, stderr) = executed.clone();
    assert_eq!(code, 0, "apply:\n{stdout}\n{stderr}");
    let after = rotation_states(&moto, &keys).await;
    for k in keys {
        let expect = if *k == s.orders { true } else { before[k] };
        assert_eq!(after[k], expect, "key {k}");
    }
    assert!(!after[&s.billing], "billing was not approved");
    let o = outcomes(&journal);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0]["outcome"], "enabled");
    // Every line names the approval; the run names its executor.
    for l in journal_lines(&journal) {
        assert_eq!(l["approval_sha256"], a["approval_sha256"], "{l}");
    }
    let start = &journal_lines(&journal)[0];
    assert_eq!(
        start["executor"]["arn"],
        format!("arn:aws:sts::{ACCOUNT}:user/moto")
    );
    assert_eq!(start["requested"][0]["account_id"], ACCOUNT);
    snap("apply_execute", &executed);

    // A re-run repeats nothing.
    let (code, stdout, _) = apply(&moto, &moto.url, &approval, &["--execute"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("recorded by an earlier run"), "{stdout}");
    assert_eq!(outcomes(&journal).len(), 1);

    let validation = work.path().join("validation.json");
    let verify_cmd = || {
        let mut c = moto.kmsrot();
        c.arg("verify").arg(&journal).arg("--out").arg(&validation);
        c
    };
    snap("verify", &run(&mut verify_cmd()));
    let (code, v, stderr) = verify(&moto, &journal, &validation);
    assert_eq!(code, 0, "verify:\n{stderr}");
    assert_eq!(v["requested"], 1);
    assert_eq!(v["enabled"], 1);
    assert_eq!(v["confirmed"], 1);
    assert_eq!(v["skipped"], 0);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["in_flight"], 0);
    assert_eq!(v["discrepancies"], json!([]));

    // Someone turns rotation off again: verify reports it and exits 1.
    let kms = moto.kms(REGION).await;
    kms.disable_key_rotation()
        .key_id(&s.orders)
        .send()
        .await
        .unwrap();
    let (code, v, stderr) = verify(&moto, &journal, &validation);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(v["discrepancies"][0]["observed"], "rotation off");
    snap("verify_discrepancy", &run(&mut verify_cmd()));
    snap(
        "verify_no_journal",
        &run(moto
            .kmsrot()
            .arg("verify")
            .arg(work.path().join("no-such.journal.jsonl"))
            .arg("--out")
            .arg(&validation)),
    );
}

/// What the approver sees before approving: account, region, alias, why
/// (the findings each action closes), the plan's age, and for a cancelled
/// deletion a confirmation line of its own.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_approver_sees_what_matters() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let (code, out, err) = run(moto.kmsrot().arg("assess").arg(&bundle));
    assert!(code == 1 || code == 3, "assess: {code}\n{out}\n{err}");
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &["--include-pending-deletion"]);
    let approval = work.path().join("approval.json");

    // Without a terminal, cancelling a deletion needs its own confirmation.
    let unconfirmed = approve(&moto, &plan_path, &approval, &["--all"]);
    let (code, stdout, stderr) = unconfirmed.clone();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(!approval.exists());
    snap("approve_unconfirmed", &unconfirmed);

    let confirmed = approve(
        &moto,
        &plan_path,
        &approval,
        &["--all", "--confirm-cancel-deletion", "--valid-for", "36h"],
    );
    let (code, stdout, stderr) = confirmed.clone();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for k in [&s.orders, &s.billing, &s.doomed] {
        assert!(stdout.contains(k.as_str()), "{k} in {stdout}");
    }
    assert!(stderr.contains("CONFIRM: cancels the scheduled deletion of alias/doomed"));
    snap("approve_confirmed", &confirmed);
    let a = read_json(&approval);
    let t = |f: &str| chrono::DateTime::parse_from_rfc3339(a[f].as_str().unwrap()).unwrap();
    assert_eq!(
        t("expires_at") - t("approved_at"),
        chrono::Duration::hours(36)
    );
}

/// The cost projection at a negotiated price: each action's added cost over
/// twelve months from the key's rotation count (ListKeyRotations in the
/// bundle) and the planned period, the plan's total, the approver's view of
/// both, and an older plan refused with a request for a new one.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_plan_projects_the_added_cost_and_approve_shows_it() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    // One on-demand rotation already: only billing's next rotation is billed.
    let kms = moto.kms(REGION).await;
    kms.rotate_key_on_demand()
        .key_id(&s.billing)
        .send()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .arg("plan")
        .arg(&bundle)
        .arg("--out")
        .arg(&plan_path)
        .args([
            "--rotation-period-days",
            "90",
            "--price-per-key-month",
            "0.50",
            "--include-pending-deletion",
        ]));
    assert_eq!(code, 0, "plan:\n{stdout}\n{stderr}");
    let p = read_json(&plan_path);
    assert_eq!(p["format"], "kmsrot-plan/3");
    assert_eq!(p["cost"]["price_per_key_month_usd"], "0.50");
    assert_eq!(p["cost"]["price_source"], "--price-per-key-month");
    let cost = |key: &str| action_for(&p, key).unwrap()["projected_cost"].clone();
    // Never rotated, every 90 days: rotations at days 90, 180, 270 and 360,
    // the first two billed for the 275 and 185 days left, at $0.50 a month.
    let orders = cost(&s.orders);
    assert_eq!(orders["rotations_before"], 0);
    assert_eq!(orders["rotations_in_window"], 4);
    assert_eq!(orders["billed_rotations"], 2);
    assert_eq!(orders["added_usd"], "7.56");
    // Rotated once already (moto lists its on-demand rotation): one billed.
    let billing = cost(&s.billing);
    assert_eq!(billing["rotations_before"], 1);
    assert_eq!(billing["billed_rotations"], 1);
    assert_eq!(billing["added_usd"], "4.52");
    // Pending deletion: not charged now; cancelled, the key and its billed
    // versions are. ListKeyRotations is not read for such a key, so the
    // projection is the most it could add (two versions already: $18).
    let doomed = cost(&s.doomed);
    assert_eq!(doomed["rotations_before"], Value::Null);
    assert_eq!(doomed["added_usd"], "18.00");
    assert!(doomed["basis"]
        .as_str()
        .unwrap()
        .contains("the most the action could add"));
    let total: i64 = p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let usd = a["projected_cost"]["added_usd"].as_str().unwrap();
            let (w, c) = usd.split_once('.').unwrap();
            w.parse::<i64>().unwrap() * 100 + c.parse::<i64>().unwrap()
        })
        .sum();
    let (w, c) = p["cost"]["total_added_usd"]
        .as_str()
        .unwrap()
        .split_once('.')
        .unwrap();
    assert_eq!(
        w.parse::<i64>().unwrap() * 100 + c.parse::<i64>().unwrap(),
        total
    );
    assert!(
        stderr.contains(&format!(
            "projected added cost over the 12 months to {}: ${} for 4 action(s), at $0.50 per key-month (--price-per-key-month)",
            &p["cost"]["window_end"].as_str().unwrap()[..10],
            p["cost"]["total_added_usd"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("added_cost_12mo") && stdout.contains("$7.56"),
        "{stdout}"
    );

    // The approver sees each action's cost and the total.
    let approval = work.path().join("approval.json");
    let (code, stdout, stderr) = approve(
        &moto,
        &plan_path,
        &approval,
        &["--key", "alias/orders", "--key", "alias/billing"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("added cost (12 months)") && stdout.contains("$4.52"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            ": $12.08 for the 2 action(s) shown (the plan's 4: ${}), at $0.50 per key-month (--price-per-key-month)",
            p["cost"]["total_added_usd"].as_str().unwrap()
        )),
        "{stderr}"
    );

    // A plan of the previous format is refused, with what to do.
    let mut older = p.clone();
    older["format"] = "kmsrot-plan/2".into();
    rehash_plan(&mut older);
    let old_path = work.path().join("old-plan.json");
    write_json(&old_path, &older);
    let (code, _, stderr) = approve(&moto, &old_path, &work.path().join("x.json"), &["--all"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .contains("old-plan.json: a plan of another kmsrot version (format \"kmsrot-plan/2\"")
            && stderr.contains("make a new plan with `kmsrot plan`"),
        "{stderr}"
    );
    // An edited amount is caught by the hash, and, re-hashed, by the sum.
    let mut cheaper = p.clone();
    cheaper["actions"][0]["projected_cost"]["added_usd"] = "0.00".into();
    write_json(&plan_path, &cheaper);
    let (code, _, stderr) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("modified after it was made"), "{stderr}");
    rehash_plan(&mut cheaper);
    write_json(&plan_path, &cheaper);
    let (code, _, stderr) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("is not the sum of its actions'"),
        "{stderr}"
    );
}

/// The period-lengthening race: rotation turned on (or its period
/// shortened) by someone else after the plan is left alone, and a period is
/// never lengthened. The proxy reports RotationPeriodInDays as AWS does.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_rotation_turned_on_after_the_plan_is_left_alone() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let mut rules = vec![Rule::operation("GetKeyRotationStatus").report_period()];
    rules.extend(compat());
    let proxy = Proxy::start(&moto.url, rules);
    let kms = kms_via(&moto, &proxy).await;
    seed::enable_rotation(&kms, &s.billing, Some(730))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = collect_via(&moto, &proxy.url, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    assert_eq!(
        action_for(&p, &s.orders).unwrap()["action"],
        "enable_rotation"
    );
    let billing = action_for(&p, &s.billing).unwrap();
    assert_eq!(billing["action"], "set_rotation_period");
    assert_eq!(billing["planned_state"]["rotation_period_days"], 730);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    // After the plan, someone else turns orders' rotation on every 90 days
    // and shortens billing's to 180.
    seed::enable_rotation(&kms, &s.orders, Some(90))
        .await
        .unwrap();
    seed::enable_rotation(&kms, &s.billing, Some(180))
        .await
        .unwrap();
    let seeded = proxy.requests()["EnableKeyRotation"];

    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        proxy.requests()["EnableKeyRotation"],
        seeded,
        "no EnableKeyRotation was sent:\n{stdout}"
    );
    let journal = journal_of(&approval);
    let orders = &outcome_for(&journal, &s.orders)[0];
    assert_eq!(orders["outcome"], "skipped");
    assert_eq!(
        orders["reason"],
        "state changed since the plan (was Enabled, rotation off, now Enabled, rotation on every 90 days)"
    );
    let billing = &outcome_for(&journal, &s.billing)[0];
    assert_eq!(billing["outcome"], "skipped");
    assert_eq!(
        billing["reason"],
        "state changed since the plan (was Enabled, rotation on every 730 days, now Enabled, rotation on every 180 days)"
    );

    // A plan never asks to lengthen: every key already rotates at least as
    // often as 400 days (orders 90, billing 180, payments 365).
    let bundle2 = {
        let d = work.path().join("again");
        std::fs::create_dir(&d).unwrap();
        collect_via(&moto, &proxy.url, &d)
    };
    let p = plan(
        &moto,
        &bundle2,
        &work.path().join("plan400.json"),
        &["--rotation-period-days", "400"],
    );
    assert_eq!(p["actions"], json!([]), "{p}");
    let compliant = p["not_planned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["category"] == "compliant")
        .count();
    assert_eq!(compliant, 3);
}

/// Each kind of edit to an approval, refused before a single change: the
/// approval's own hash catches an edit that did not re-compute it, the plan's
/// self-consistency catches a re-pointed action, and a signature catches
/// every edit, whether or not the run asks for a signature.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_edited_approvals_are_refused_with_and_without_require_signed() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    let orders_id = action_for(&p, &s.orders).unwrap()["action_id"].clone();
    let billing_id = action_for(&p, &s.billing).unwrap()["action_id"].clone();
    let signer = arn(&s.signing);
    let proxy = Proxy::start(&moto.url, compat());

    let unsigned = work.path().join("unsigned.json");
    let (code, _, err) = approve(&moto, &plan_path, &unsigned, &["--key", "alias/orders"]);
    assert_eq!(code, 0, "{err}");
    let signed = work.path().join("signed.json");
    let (code, _, err) = approve(
        &moto,
        &plan_path,
        &signed,
        &["--key", "alias/orders", "--sign-with", &signer],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("signed with {signer}")), "{err}");
    let signed_doc = read_json(&signed);
    assert_eq!(signed_doc["signature"]["key_id"], signer.as_str());
    assert_eq!(
        signed_doc["signature"]["signing_algorithm"],
        "RSASSA_PSS_SHA_256"
    );

    // A re-pointed plan: the orders action, alias and all, now names
    // billing's key; the plan is re-hashed and the approval follows it.
    let forged_dir = work.path().join("forged");
    std::fs::create_dir(&forged_dir).unwrap();
    let forged_plan = forged_dir.join("plan.json");
    {
        let mut fp = p.clone();
        for a in fp["actions"].as_array_mut().unwrap() {
            if a["key_id"] == s.orders.as_str() {
                a["key_id"] = s.billing.clone().into();
                a["key_arn"] = arn(&s.billing).into();
            } else if a["key_id"] == s.billing.as_str() {
                a["key_id"] = s.orders.clone().into();
                a["key_arn"] = arn(&s.orders).into();
            }
        }
        rehash_plan(&mut fp);
        write_json(&forged_plan, &fp);
    }
    let forged_sha = read_json(&forged_plan)["plan_sha256"].clone();

    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "added id",
            Box::new(move |a| {
                a["approved_actions"]
                    .as_array_mut()
                    .unwrap()
                    .push(billing_id.clone())
            }),
        ),
        (
            "duplicated id",
            Box::new(move |a| {
                a["approved_actions"]
                    .as_array_mut()
                    .unwrap()
                    .push(orders_id.clone())
            }),
        ),
        (
            "swapped ARN",
            Box::new(move |a| {
                a["plan_file"] = forged_plan.display().to_string().into();
                a["plan_sha256"] = forged_sha.clone();
            }),
        ),
        (
            "edited approver",
            Box::new(|a| a["approver"] = "mallory@example.com".into()),
        ),
    ];
    let edited = work.path().join("edited.json");
    let mut refusals = 0;
    for (name, edit) in &edits {
        for (base, is_signed) in [(&unsigned, false), (&signed, true)] {
            for rehash in [false, true] {
                let mut doc = read_json(base);
                edit(&mut doc);
                if rehash {
                    rehash_approval(&mut doc);
                }
                write_json(&edited, &doc);
                // Without a signature, an edit that re-computes the hash and
                // stays within the plan cannot be told from the real thing:
                // that is what --require-signed is for.
                let undetectable =
                    !is_signed && rehash && matches!(*name, "added id" | "edited approver");
                let expected = if !rehash {
                    "the approval was modified after it was made"
                } else if *name == "duplicated id" {
                    "the approval lists action"
                } else if *name == "swapped ARN" {
                    "contradicts itself: its action_id is not the hash"
                } else {
                    "does not match the approval's content: it was changed after it was signed"
                };
                for require in [false, true] {
                    if undetectable && !require {
                        continue;
                    }
                    let flags: &[&str] = if require {
                        &["--execute", "--require-signed"]
                    } else {
                        &["--execute"]
                    };
                    let (code, stdout, stderr) = apply(&moto, &proxy.url, &edited, flags);
                    let want = if undetectable {
                        "the approval is not signed, and --require-signed asks for a signature"
                    } else {
                        expected
                    };
                    let what = format!(
                        "{name}, {}, {}, {}",
                        if is_signed { "signed" } else { "unsigned" },
                        if rehash { "re-hashed" } else { "hash left" },
                        if require {
                            "--require-signed"
                        } else {
                            "no flag"
                        }
                    );
                    assert_eq!(code, 2, "{what}: exit {code}\n{stdout}\n{stderr}");
                    assert!(stderr.contains(want), "{what}: {stderr}");
                    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
                    assert_eq!(changes(&proxy), 0, "{what}: a change was made");
                    refusals += 1;
                }
            }
        }
    }
    assert_eq!(refusals, 30);

    // An unsigned approval under --require-signed; a signature by a key
    // that is not a --signer.
    let (code, _, stderr) = apply(
        &moto,
        &proxy.url,
        &unsigned,
        &["--execute", "--require-signed"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("hint: have the approver sign it"),
        "{stderr}"
    );
    let (code, _, stderr) = apply(
        &moto,
        &proxy.url,
        &signed,
        &["--execute", "--signer", &arn(&s.payments)],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("which is not a --signer of this run"),
        "{stderr}"
    );
    assert_eq!(changes(&proxy), 0);

    // The untouched signed approval applies under the recommended setting.
    let (code, stdout, stderr) = apply(
        &moto,
        &proxy.url,
        &signed,
        &["--execute", "--require-signed", "--signer", "alias/signing"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("signature: valid, by {signer}")),
        "{stderr}"
    );
    assert_eq!(proxy.calls_about("EnableKeyRotation", &s.orders), 1);
    assert_eq!(changes(&proxy), 1);
    assert!(!rotation_states(&moto, &[&s.billing]).await[&s.billing]);
}

/// An approval from March must not act in June: it is refused once expired,
/// even signed.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_expired_approval_is_refused() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--key", "alias/orders"]);
    assert_eq!(code, 0, "{err}");

    // The same approval as made in March, valid for a week, signed as
    // `approve --sign-with` signs it.
    let mut a = read_json(&approval);
    a["approved_at"] = "2025-03-02T09:00:00Z".into();
    a["expires_at"] = "2025-03-09T09:00:00Z".into();
    rehash_approval(&mut a);
    let digest = hex::decode(a["approval_sha256"].as_str().unwrap()).unwrap();
    let sig = moto
        .kms(REGION)
        .await
        .sign()
        .key_id(arn(&s.signing))
        .message(aws_sdk_kms::primitives::Blob::new(digest))
        .message_type(aws_sdk_kms::types::MessageType::Digest)
        .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap();
    a["signature"] = json!({
        "key_id": sig.key_id().unwrap(),
        "signing_algorithm": "RSASSA_PSS_SHA_256",
        "message_type": "DIGEST",
        "signature": hex::encode(sig.signature().unwrap().as_ref()),
    });
    write_json(&approval, &a);

    let proxy = Proxy::start(&moto.url, compat());
    for flags in [
        &["--execute"][..],
        &[
            "--execute",
            "--require-signed",
            "--signer",
            &arn(&s.signing),
        ][..],
        &[][..],
    ] {
        let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, flags);
        assert_eq!(code, 2, "{flags:?}\n{stdout}\n{stderr}");
        assert!(
            stderr.contains("approval.json: the approval expired at 2025-03-09T09:00:00Z (approved at 2025-03-02T09:00:00Z by alice@example.com)"),
            "{stderr}"
        );
        assert!(stderr.contains("hint: make a new plan"), "{stderr}");
    }
    assert_eq!(changes(&proxy), 0);
    assert!(!rotation_states(&moto, &[&s.orders]).await[&s.orders]);

    let (code, _, stderr) = approve(
        &moto,
        &plan_path,
        &approval,
        &["--all", "--valid-for", "0d"],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("must be longer than zero"), "{stderr}");
}

/// Two applies of one approval at once, each with its own journal: the
/// approval's lock lets one run; one change per key. A journal of another
/// approval is refused.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_two_concurrent_applies_make_one_change_per_key() {
    let moto = Moto::start();
    let ids = bulk(&moto, "pair", 6).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("EnableKeyRotation").delay(Duration::from_millis(400))],
    );
    let j1 = work.path().join("one.jsonl");
    let j2 = work.path().join("two.jsonl");
    let first = moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["apply", "--execute", "--concurrency", "1", "--journal"])
        .arg(&j1)
        .arg(&approval)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&j1)
        .unwrap_or_default()
        .contains("\"type\":\"start\"")
    {
        assert!(Instant::now() < deadline, "the first apply never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, stdout, stderr) = apply(
        &moto,
        &proxy.url,
        &approval,
        &["--execute", "--journal", j2.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("approval.json: another `kmsrot apply` is using this approval"),
        "{stderr}"
    );
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &ids {
        assert_eq!(proxy.calls_about("EnableKeyRotation", id), 1, "key {id}");
    }

    // Run again afterwards with the other journal: every key is no longer
    // as planned (kmsrot turned it on), so nothing is called again.
    let (code, stdout, stderr) = apply(
        &moto,
        &proxy.url,
        &approval,
        &["--execute", "--journal", j2.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(proxy.requests()["EnableKeyRotation"], ids.len() as u64);
    assert!(outcomes(&j2).iter().all(|o| o["outcome"] == "skipped"));

    // A journal belongs to one approval.
    let other = work.path().join("other.json");
    let (code, _, err) = run(moto
        .kmsrot()
        .arg("approve")
        .arg(&plan_path)
        .arg("--out")
        .arg(&other)
        .args(["--all", "--approver", "bob@example.com"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, stderr) = apply(
        &moto,
        &proxy.url,
        &other,
        &["--execute", "--journal", j1.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("one.jsonl: the journal belongs to another approval"),
        "{stderr}"
    );
    assert_eq!(proxy.requests()["EnableKeyRotation"], ids.len() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn remediate_tampered_plan_is_refused_and_the_recheck_skips_the_key() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    // Hand-edit: the RSA signing key slipped in as an action.
    let mut edited = p.clone();
    let mut forged = action_for(&p, &s.orders).unwrap().clone();
    let forged_arn = arn(&s.signing);
    forged["key_id"] = s.signing.clone().into();
    forged["key_arn"] = forged_arn.clone().into();
    forged["aliases"] = json!(["alias/signing"]);
    forged["action_id"] =
        kmsrot::remediate::action_id(kmsrot::remediate::ActionType::EnableRotation, &forged_arn)
            .into();
    edited["actions"]
        .as_array_mut()
        .unwrap()
        .push(forged.clone());
    write_json(&plan_path, &edited);

    let proxy = Proxy::start(&moto.url, vec![]);
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("plan.json: the plan was modified"),
        "{stderr}"
    );
    let (code, _, stderr) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("modified after it was made"), "{stderr}");
    assert_eq!(proxy.requests().get("EnableKeyRotation"), None);

    // Bypass the hash (re-hash the edited plan, approve it): the fresh
    // re-check still refuses to touch the key.
    rehash_plan(&mut edited);
    write_json(&plan_path, &edited);
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let o = outcomes(&journal_of(&approval));
    let signing = o
        .iter()
        .find(|l| l["action_id"] == forged["action_id"])
        .expect("an outcome for the forged action");
    assert_eq!(signing["outcome"], "skipped");
    assert!(
        signing["reason"]
            .as_str()
            .unwrap()
            .starts_with("no longer eligible: Key spec RSA_2048"),
        "{signing}"
    );
    // moto would have accepted the call (AWS would not); it was never sent.
    assert_eq!(proxy.calls_about("EnableKeyRotation", &forged_arn), 0);
    assert_eq!(
        o.iter().filter(|l| l["outcome"] == "enabled").count(),
        2,
        "orders and billing"
    );

    // Malformed inputs: one line naming the file.
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"kmsrot-approval/2\"").unwrap();
    let (code, _, stderr) = apply(&moto, &proxy.url, &bad, &[]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.json: not a valid approval"),
        "{stderr}"
    );
    std::fs::write(&bad, "[1, 2]").unwrap();
    let (code, _, stderr) = approve(&moto, &bad, &approval, &["--all"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.json: not a valid plan"), "{stderr}");
}

/// Failures are outcomes, and `verify` fails when approved work is not done.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_failure_paths_access_denied_and_deleted_key() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(
        &moto,
        &bundle,
        &plan_path,
        &["--rotation-period-days", "180"],
    );
    // payments rotates already; moto reports no period, so a period change is
    // planned (AWS would report 365 and the plan would say so).
    assert_eq!(
        action_for(&p, &s.payments).unwrap()["action"],
        "set_rotation_period"
    );
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    // billing is scheduled for deletion between plan and apply.
    seed::schedule_deletion(&moto.kms(REGION).await, &s.billing)
        .await
        .unwrap();
    let proxy = Proxy::start(&moto.url, vec![Rule::operation("EnableKeyRotation").deny()]);
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(
        code, 3,
        "a failed action makes the run partial:\n{stdout}\n{stderr}"
    );
    let journal = journal_of(&approval);
    let orders = outcome_for(&journal, &s.orders)[0].clone();
    assert_eq!(orders["outcome"], "failed");
    assert_eq!(orders["error_code"], "AccessDeniedException");
    assert!(orders["error_message"]
        .as_str()
        .unwrap()
        .contains("explicit deny"));
    assert_eq!(orders["rotation_period_days"], 180);
    let billing = outcome_for(&journal, &s.billing)[0].clone();
    assert_eq!(billing["outcome"], "skipped");
    assert!(
        billing["reason"]
            .as_str()
            .unwrap()
            .starts_with("state changed since the plan (was Enabled, rotation off, now PendingDeletion (deletion on "),
        "{billing}"
    );
    assert_eq!(proxy.calls_about("EnableKeyRotation", &s.billing), 0);
    assert_eq!(proxy.calls_about("EnableKeyRotation", &s.orders), 1);
    assert!(!rotation_states(&moto, &[&s.orders]).await[&s.orders]);

    // verify: two actions failed (orders, payments), one skipped, none
    // enabled: the approved work is not done, so it exits 1.
    let validation = work.path().join("validation.json");
    let (code, v, stderr) = verify(&moto, &journal, &validation);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        (
            v["requested"].as_u64(),
            v["failed"].as_u64(),
            v["skipped"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(v["failed_keys"][0]["error_code"], "AccessDeniedException");
    assert!(stderr.contains("failed: arn:aws:kms:"), "{stderr}");
}

/// A call whose answer is lost after it reached KMS (the proxy forwards it,
/// then drops the connection) is in flight, settled by re-reading the key:
/// recorded enabled by kmsrot, never "skipped", never sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_lost_answer_that_landed_is_recorded_enabled() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--key", "alias/orders"]);
    assert_eq!(code, 0, "{err}");
    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("EnableKeyRotation")
            .drop_after_forward()
            .times(1)],
    );
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        proxy.calls_about("EnableKeyRotation", &s.orders),
        1,
        "sent once"
    );
    assert!(rotation_states(&moto, &[&s.orders]).await[&s.orders]);
    let o = outcome_for(&journal_of(&approval), &s.orders);
    let verdicts: Vec<&str> = o.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["in_flight", "enabled"], "{o:?}");
    assert_eq!(
        o[0]["unconfirmed_call"],
        "EnableKeyRotation(RotationPeriodInDays=365)"
    );
    assert_eq!(o[1]["resolved_after_interruption"], true);
    assert!(
        o[1]["reason"]
            .as_str()
            .unwrap()
            .contains("kmsrot's call took effect"),
        "{}",
        o[1]
    );
    assert!(stdout.contains("enabled"), "{stdout}");

    let (code, v, stderr) = verify(&moto, &journal_of(&approval), &work.path().join("v.json"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["confirmed"], 1);
}

/// After N throttling failures in a row, no new action starts; the run ends
/// with exit 3 and says so, and a later run finishes the work.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_sustained_throttling_stops_the_run() {
    let moto = Moto::start();
    let ids = bulk(&moto, "busy", 8).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("EnableKeyRotation").throttle()],
    );
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        // One try per call, so the test does not wait out the backoff.
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["apply", "--execute", "--concurrency", "1"])
        .arg(&approval));
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("stopped: after 5 consecutive throttling or access failures (ThrottlingException x5), no new action was started (3 not started)"),
        "{stderr}"
    );
    assert_eq!(proxy.requests()["EnableKeyRotation"], 5);
    let journal = journal_of(&approval);
    let o = outcomes(&journal);
    assert_eq!(o.len(), 5);
    assert!(o.iter().all(|l| l["error_code"] == "ThrottlingException"));
    assert_eq!(stdout.matches("not_started").count(), 3, "{stdout}");

    let validation = work.path().join("validation.json");
    let (code, v, _) = verify(&moto, &journal, &validation);
    assert_eq!(code, 1);
    assert_eq!(
        (v["failed"].as_u64(), v["missing"].as_u64()),
        (Some(5), Some(3))
    );

    // The quota recovers: the same approval finishes.
    let calm = Proxy::start(&moto.url, vec![]);
    let (code, stdout, stderr) = apply(&moto, &calm.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let refs: Vec<&String> = ids.iter().collect();
    assert!(rotation_states(&moto, &refs).await.values().all(|on| *on));
    let (code, v, stderr) = verify(&moto, &journal, &validation);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["confirmed"], 8);
}

/// Keys of another account are refused by the one account check, before
/// any call; the journal records the executor; with
/// --require-different-executor the approver cannot be the executor.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_acts_only_in_the_callers_account_and_separates_duties() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let mut p = plan(&moto, &bundle, &plan_path, &[]);
    // billing's action moved, consistently, to a key of account 111122223333
    // (as an organization-wide plan would hold).
    let foreign = format!("arn:aws:kms:{REGION}:111122223333:key/{}", s.billing);
    for a in p["actions"].as_array_mut().unwrap() {
        if a["key_id"] == s.billing.as_str() {
            a["key_arn"] = foreign.clone().into();
            a["account_id"] = "111122223333".into();
            a["action_id"] = kmsrot::remediate::action_id(
                kmsrot::remediate::ActionType::EnableRotation,
                &foreign,
            )
            .into();
        }
    }
    rehash_plan(&mut p);
    write_json(&plan_path, &p);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");
    let proxy = Proxy::start(&moto.url, compat());

    // Approved and executed by the same STS identity.
    let (code, _, stderr) = apply(
        &moto,
        &proxy.url,
        &approval,
        &["--execute", "--require-different-executor"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!(
            "approved by arn:aws:sts::{ACCOUNT}:user/moto, the same identity that runs this apply"
        )),
        "{stderr}"
    );
    assert_eq!(changes(&proxy), 0);

    // Someone else executes (a role session in the same account).
    let sts = aws_sdk_sts::Client::new(&moto.config(REGION).await);
    let creds = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/ops"))
        .role_session_name("ops")
        .send()
        .await
        .unwrap()
        .credentials()
        .unwrap()
        .clone();
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key())
        .env("AWS_SESSION_TOKEN", creds.session_token())
        .args(["apply", "--execute", "--require-different-executor"])
        .arg(&approval));
    assert_eq!(code, 3, "the foreign key is refused:\n{stdout}\n{stderr}");
    let journal = journal_of(&approval);
    let start = &journal_lines(&journal)[0];
    assert_eq!(
        start["executor"]["arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/ops/ops")
    );
    let refused = &outcome_for(&journal, &foreign)[0];
    assert_eq!(refused["outcome"], "failed");
    assert_eq!(refused["error_code"], "AccountMismatch");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("refused: the key is in account 111122223333, and this run's credentials are account {ACCOUNT}")),
        "{refused}"
    );
    assert!(
        proxy
            .calls()
            .iter()
            .all(|c| !c.key_id.as_deref().unwrap_or("").contains("111122223333")),
        "no call about the foreign key"
    );
    assert_eq!(outcome_for(&journal, &s.orders)[0]["outcome"], "enabled");
    assert_eq!(changes(&proxy), 1);
    let (code, _, _) = verify(&moto, &journal, &work.path().join("v.json"));
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn remediate_survives_sigkill_midway_through_200_keys() {
    const N: usize = 200;
    let moto = Moto::start();
    let ids = bulk(&moto, "bulk", N).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    assert_eq!(p["actions"].as_array().unwrap().len(), N);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");

    let proxy = Proxy::start(
        &moto.url,
        vec![Rule::operation("EnableKeyRotation").delay(Duration::from_millis(50))],
    );
    let journal = journal_of(&approval);
    let mut child = moto
        .kmsrot()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .args(["apply", "--execute", "--rate", "40", "--concurrency", "4"])
        .arg(&approval)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // Not there yet reads as empty.
        let done = std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .matches("\"type\":\"outcome\"")
            .count();
        if done >= N / 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "apply made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = outcomes(&journal).len();
    assert!(first < N, "killed midway, {first} outcomes");
    // Calls sent but never answered in the journal: the re-run must resolve
    // these by re-reading the key, not by calling again.
    let interrupted = kmsrot::remediate::journal::replay(&journal)
        .unwrap()
        .in_flight
        .len();

    let (code, stdout, stderr) =
        apply(&moto, &proxy.url, &approval, &["--execute", "--rate", "40"]);
    assert_eq!(code, 0, "re-run:\n{stdout}\n{stderr}");

    let o = outcomes(&journal);
    assert_eq!(o.len(), N, "one outcome per action, none repeated");
    let mut per_action: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &o {
        assert_eq!(l["outcome"], "enabled", "{l}");
        *per_action
            .entry(l["action_id"].as_str().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_action.len(), N);
    let resolved = o
        .iter()
        .filter(|l| l["resolved_after_interruption"] == true)
        .count();
    assert!(
        resolved <= interrupted,
        "{resolved} resolved by re-reading, {interrupted} were in flight"
    );
    assert!(per_action.values().all(|n| *n == 1));
    for id in &ids {
        assert_eq!(
            proxy.calls_about("EnableKeyRotation", &arn(id)),
            1,
            "key {id}: exactly one EnableKeyRotation"
        );
    }
    let refs: Vec<&String> = ids.iter().collect();
    assert!(rotation_states(&moto, &refs).await.values().all(|on| *on));

    let (code, v, stderr) = verify(&moto, &journal, &work.path().join("validation.json"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["requested"], N);
    assert_eq!(v["confirmed"], N);
}

/// The interactive multi-select, driven through a pseudo-terminal: util-linux
/// `script` runs kmsrot on a pty and copies our keystrokes to it.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_interactive_approval_on_a_terminal() {
    use std::io::Write;
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    let approval = work.path().join("approval.json");
    let line = format!(
        "{} approve {} --out {} --approver bob",
        env!("CARGO_BIN_EXE_kmsrot"),
        plan_path.display(),
        approval.display()
    );
    // The same environment as `moto.kmsrot()`, around `script`.
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    for (k, v) in moto.kmsrot().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the command on a pty");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Type only once the prompt is drawn (the terminal is then raw): down,
    // space (toggle the second action), enter.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("Select the actions") {
        assert!(Instant::now() < deadline, "no prompt on the terminal");
        std::thread::sleep(Duration::from_millis(50));
    }
    for keys in [&b"\x1b[B"[..], b" ", b"\r"] {
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let screen = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Select the actions to approve"), "{screen}");
    assert!(screen.contains("alias/orders") && screen.contains("SYMMETRIC_DEFAULT"));
    assert!(screen.contains(ACCOUNT), "the account is shown: {screen}");
    let a = read_json(&approval);
    let second = &p["actions"][1];
    assert_eq!(a["approved_actions"], json!([second["action_id"]]));
    assert_eq!(a["approver"], "bob");
    let picked = second["key_id"].as_str().unwrap();
    assert!(picked == s.orders || picked == s.billing, "{picked}");
}

/// `--include-pending-deletion`: the one action that brings a key back, only
/// when asked for, confirmed on its own, with every call it makes named in
/// the plan, sent by full ARN.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_cancel_deletion_only_when_asked() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    let p = plan(&moto, &bundle, &plan_path, &[]);
    assert!(action_for(&p, &s.doomed).is_none(), "never implied");

    let p = plan(
        &moto,
        &bundle,
        &plan_path,
        &[
            "--include-pending-deletion",
            "--rotation-period-days",
            "400",
        ],
    );
    let doomed = action_for(&p, &s.doomed).unwrap();
    assert_eq!(doomed["action"], "cancel_deletion_and_enable");
    assert_eq!(
        doomed["calls"],
        json!([
            "CancelKeyDeletion",
            "EnableKey",
            "EnableKeyRotation(RotationPeriodInDays=400)"
        ])
    );
    assert_eq!(doomed["planned_state"]["key_state"], "PendingDeletion");
    assert!(doomed["planned_state"]["deletion_date"].is_string());
    // The disabled key stays apart: re-enabling a key is not a rotation fix.
    assert!(action_for(&p, &s.legacy).is_none());

    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--key", &s.doomed]);
    assert_eq!(code, 2, "needs its own confirmation: {err}");
    let (code, _, err) = approve(
        &moto,
        &plan_path,
        &approval,
        &["--key", &s.doomed, "--confirm-cancel-deletion"],
    );
    assert_eq!(code, 0, "{err}");
    let proxy = Proxy::start(&moto.url, compat());
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(key_state(&moto, &s.doomed).await, "Enabled");
    assert!(rotation_states(&moto, &[&s.doomed]).await[&s.doomed]);
    for op in ["CancelKeyDeletion", "EnableKey", "EnableKeyRotation"] {
        assert_eq!(proxy.calls_about(op, &s.doomed), 1, "{op}");
    }
    // By full ARN, as AWS documents (moto needs the bare id: the proxy
    // forwards that).
    for c in proxy.calls() {
        if let Some(k) = &c.key_id {
            if k.contains(s.doomed.as_str()) {
                assert_eq!(k, &arn(&s.doomed), "{c:?}");
            }
        }
    }
    let attempts: Vec<String> = journal_lines(&journal_of(&approval))
        .into_iter()
        .filter(|l| l["type"] == "attempt")
        .map(|l| l["call"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        attempts,
        [
            "CancelKeyDeletion",
            "EnableKey",
            "EnableKeyRotation(RotationPeriodInDays=400)"
        ]
    );
    // verify reads the key state as well as the rotation status.
    let (code, v, stderr) = verify(&moto, &journal_of(&approval), &work.path().join("v.json"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["confirmed"], 1);
    seed::disable(&moto.kms(REGION).await, &s.doomed)
        .await
        .unwrap();
    let (code, v, _) = verify(&moto, &journal_of(&approval), &work.path().join("v.json"));
    assert_eq!(code, 1);
    assert_eq!(v["discrepancies"][0]["observed"], "key Disabled");
}

/// Someone cancelled the deletion after the plan and left the key Disabled
/// on purpose: the cancel-deletion action does not enable it.
#[tokio::test(flavor = "multi_thread")]
async fn remediate_cancel_deletion_leaves_a_deliberately_disabled_key_alone() {
    let moto = Moto::start();
    let s = seed_scenario(&moto).await;
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(&moto, work.path());
    let plan_path = work.path().join("plan.json");
    plan(&moto, &bundle, &plan_path, &["--include-pending-deletion"]);
    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(
        &moto,
        &plan_path,
        &approval,
        &["--key", "alias/doomed", "--confirm-cancel-deletion"],
    );
    assert_eq!(code, 0, "{err}");
    moto.kms(REGION)
        .await
        .cancel_key_deletion()
        .key_id(&s.doomed)
        .send()
        .await
        .unwrap();
    assert_eq!(key_state(&moto, &s.doomed).await, "Disabled");

    let proxy = Proxy::start(&moto.url, compat());
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(changes(&proxy), 0, "{stdout}");
    assert_eq!(key_state(&moto, &s.doomed).await, "Disabled");
    let o = &outcome_for(&journal_of(&approval), &s.doomed)[0];
    assert_eq!(o["outcome"], "skipped");
    assert!(
        o["reason"]
            .as_str()
            .unwrap()
            .ends_with("someone else cancelled the deletion and left the key Disabled; kmsrot enables only a key whose deletion it cancelled itself"),
        "{o}"
    );
}
