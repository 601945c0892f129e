//! `plan` → `approve` → `apply` → `verify` against moto, with a
//! fault-injecting proxy for AccessDenied and for slowing an apply down enough
//! to SIGKILL it midway.
//!
//! moto's gaps, named where the tests meet them:
//! - GetKeyRotationStatus never returns RotationPeriodInDays, so "rotation on"
//!   is all that can be confirmed; AWS reports the period and `verify` then
//!   checks it too.
//! - moto accepts EnableKeyRotation on keys AWS rejects (RSA, HMAC, imported,
//!   disabled), so the tests assert that kmsrot never sends the call there
//!   rather than relying on an error.
//! - CancelKeyDeletion and EnableKey given a key ARN make moto answer 500;
//!   kmsrot sends those two by key id, which AWS accepts as well.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::proxy::{Proxy, Rule};
use crate::support::seed::{self, KeySpecification};
use crate::support::{read_json, run, Moto};

const REGION: &str = "us-east-1";

struct Scenario {
    /// Eligible, rotation off, aliased `alias/orders`.
    orders: String,
    /// Eligible, rotation off, aliased `alias/billing`.
    billing: String,
    /// Eligible, rotation on: compliant.
    payments: String,
    /// RSA signing key: never rotatable.
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

/// `kmsrot collect` into `dir/bundle`; no trail, so coverage may be partial.
fn collect(moto: &Moto, dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    let (code, out, err) = run(moto
        .kmsrot()
        .args(["--region", REGION, "collect", "--out"])
        .arg(&bundle));
    assert!(code == 0 || code == 3, "collect: {code}\n{out}\n{err}");
    bundle
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
    assert_eq!(orders["rotation_period_days"], 365);
    assert_eq!(orders["planned_state"]["rotation_enabled"], false);
    assert_eq!(orders["planned_state"]["key_spec"], "SYMMETRIC_DEFAULT");
    assert_eq!(
        orders["calls"],
        serde_json::json!(["EnableKeyRotation(RotationPeriodInDays=365)"])
    );
    assert!(
        !orders["closes_findings"].as_array().unwrap().is_empty(),
        "the rotation_disabled finding is closed by the action"
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
    assert_eq!(
        a["approved_actions"],
        serde_json::json!([orders["action_id"]])
    );
    assert_eq!(a["plan_sha256"], p["plan_sha256"]);
    assert_eq!(a["approver"], "alice@example.com");
    assert_eq!(a["note"], "CHG-42");
    assert_eq!(a["caller"]["account"], crate::support::ACCOUNT);

    // Approving a key that is not an action is an error.
    let (code, _, err) = approve(
        &moto,
        &plan_path,
        &work.path().join("x.json"),
        &["--key", "alias/signing"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not an action in the plan"), "{err}");

    // The dry run changes nothing.
    let keys = s.all();
    let before = rotation_states(&moto, &keys).await;
    let (code, stdout, stderr) = apply(&moto, &moto.url, &approval, &[]);
    assert_eq!(code, 0, "dry run:\n{stdout}\n{stderr}");
    assert_eq!(rotation_states(&moto, &keys).await, before);
    assert!(!work.path().join("approval.journal.jsonl").exists());
    insta::with_settings!({ filters => vec![
        (r"act-[0-9a-f]{16}", "[ACTION_ID]"),
    ] }, {
        insta::assert_snapshot!(format!("exit {code}\n--- stdout\n{stdout}--- stderr\n{stderr}"));
    });

    let (code, stdout, stderr) = apply(&moto, &moto.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "apply:\n{stdout}\n{stderr}");
    let after = rotation_states(&moto, &keys).await;
    for k in keys {
        let expect = if *k == s.orders { true } else { before[k] };
        assert_eq!(after[k], expect, "key {k}");
    }
    assert!(!after[&s.billing], "billing was not approved");
    let journal = work.path().join("approval.journal.jsonl");
    let o = outcomes(&journal);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0]["outcome"], "enabled");

    // A re-run repeats nothing.
    let (code, stdout, _) = apply(&moto, &moto.url, &approval, &["--execute"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("recorded by an earlier run"), "{stdout}");
    assert_eq!(outcomes(&journal).len(), 1);

    let validation = work.path().join("validation.json");
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .arg("verify")
        .arg(&journal)
        .arg("--out")
        .arg(&validation));
    assert_eq!(code, 0, "verify:\n{stdout}\n{stderr}");
    let v = read_json(&validation);
    assert_eq!(v["requested"], 1);
    assert_eq!(v["enabled"], 1);
    assert_eq!(v["confirmed"], 1);
    assert_eq!(v["skipped"], 0);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["discrepancies"], serde_json::json!([]));

    // Someone turns rotation off again: verify reports it and exits 1.
    let kms = moto.kms(REGION).await;
    kms.disable_key_rotation()
        .key_id(&s.orders)
        .send()
        .await
        .unwrap();
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("verify")
        .arg(&journal)
        .arg("--out")
        .arg(&validation));
    assert_eq!(code, 1, "{stderr}");
    let v = read_json(&validation);
    assert_eq!(v["discrepancies"][0]["observed"], "rotation off");
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
    let arn = forged["key_arn"]
        .as_str()
        .unwrap()
        .replace(&s.orders, &s.signing);
    forged["key_id"] = s.signing.clone().into();
    forged["key_arn"] = arn.clone().into();
    forged["aliases"] = serde_json::json!(["alias/signing"]);
    forged["action_id"] =
        kmsrot::remediate::action_id(kmsrot::remediate::ActionType::EnableRotation, &arn).into();
    edited["actions"]
        .as_array_mut()
        .unwrap()
        .push(forged.clone());
    std::fs::write(&plan_path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();

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
    edited["plan_sha256"] = kmsrot::remediate::plan_hash(&edited).into();
    std::fs::write(&plan_path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--all"]);
    assert_eq!(code, 0, "{err}");
    // The old approval's hash no longer matches: a fresh journal.
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let o = outcomes(&work.path().join("approval.journal.jsonl"));
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
    assert_eq!(proxy.calls_about("EnableKeyRotation", &arn), 0);
    assert_eq!(
        o.iter().filter(|l| l["outcome"] == "enabled").count(),
        2,
        "orders and billing"
    );

    // Malformed inputs: one line naming the file.
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"kmsrot-approval/1\"").unwrap();
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
    let o = outcomes(&work.path().join("approval.journal.jsonl"));
    let by_key = |id: &str| {
        o.iter()
            .find(|l| l["key_arn"].as_str().unwrap().ends_with(id))
            .unwrap()
            .clone()
    };
    let orders = by_key(&s.orders);
    assert_eq!(orders["outcome"], "failed");
    assert_eq!(orders["error_code"], "AccessDeniedException");
    assert!(orders["error_message"]
        .as_str()
        .unwrap()
        .contains("explicit deny"));
    assert_eq!(orders["rotation_period_days"], 180);
    let billing = by_key(&s.billing);
    assert_eq!(billing["outcome"], "skipped");
    assert!(
        billing["reason"]
            .as_str()
            .unwrap()
            .starts_with("now pending deletion"),
        "{billing}"
    );
    assert_eq!(proxy.calls_about("EnableKeyRotation", &s.billing), 0);
    assert_eq!(proxy.calls_about("EnableKeyRotation", &s.orders), 1);
    assert!(!rotation_states(&moto, &[&s.orders]).await[&s.orders]);

    // verify: two actions failed (orders, payments), one skipped, none enabled.
    let validation = work.path().join("validation.json");
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("verify")
        .arg(work.path().join("approval.journal.jsonl"))
        .arg("--out")
        .arg(&validation));
    assert_eq!(code, 0, "{stderr}");
    let v = read_json(&validation);
    assert_eq!(
        (
            v["requested"].as_u64(),
            v["failed"].as_u64(),
            v["skipped"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(v["failed_keys"][0]["error_code"], "AccessDeniedException");
}

#[tokio::test(flavor = "multi_thread")]
async fn remediate_survives_sigkill_midway_through_200_keys() {
    const N: usize = 200;
    let moto = Moto::start();
    let kms = moto.kms(REGION).await;
    use futures::stream::{self, StreamExt, TryStreamExt};
    let ids: Vec<String> = stream::iter(0..N)
        .map(|i| {
            let kms = kms.clone();
            async move {
                seed::create(&kms, &KeySpecification::symmetric(&format!("bulk-{i:03}")))
                    .await
                    .map(|(id, _)| id)
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .unwrap();
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
    let journal = work.path().join("approval.journal.jsonl");
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
        let arn = format!("arn:aws:kms:{REGION}:{}:key/{id}", crate::support::ACCOUNT);
        assert_eq!(
            proxy.calls_about("EnableKeyRotation", &arn),
            1,
            "key {id}: exactly one EnableKeyRotation"
        );
    }
    let refs: Vec<&String> = ids.iter().collect();
    assert!(rotation_states(&moto, &refs).await.values().all(|on| *on));

    let validation = work.path().join("validation.json");
    let (code, _, stderr) = run(moto
        .kmsrot()
        .arg("verify")
        .arg(&journal)
        .arg("--out")
        .arg(&validation));
    assert_eq!(code, 0, "{stderr}");
    let v = read_json(&validation);
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
    let a = read_json(&approval);
    let second = &p["actions"][1];
    assert_eq!(
        a["approved_actions"],
        serde_json::json!([second["action_id"]])
    );
    assert_eq!(a["approver"], "bob");
    let picked = second["key_id"].as_str().unwrap();
    assert!(picked == s.orders || picked == s.billing, "{picked}");
}

/// `--include-pending-deletion`: the one action that brings a key back, only
/// when asked for, with every call it makes named in the plan.
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
        serde_json::json!([
            "CancelKeyDeletion",
            "EnableKey",
            "EnableKeyRotation(RotationPeriodInDays=400)"
        ])
    );
    assert_eq!(doomed["planned_state"]["key_state"], "PendingDeletion");
    // The disabled key stays apart: re-enabling a key is not a rotation fix.
    assert!(action_for(&p, &s.legacy).is_none());

    let approval = work.path().join("approval.json");
    let (code, _, err) = approve(&moto, &plan_path, &approval, &["--key", &s.doomed]);
    assert_eq!(code, 0, "{err}");
    let proxy = Proxy::start(&moto.url, vec![]);
    let (code, stdout, stderr) = apply(&moto, &proxy.url, &approval, &["--execute"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let kms = moto.kms(REGION).await;
    let meta = kms.describe_key().key_id(&s.doomed).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state().unwrap().as_str(),
        "Enabled"
    );
    assert!(rotation_states(&moto, &[&s.doomed]).await[&s.doomed]);
    for op in ["CancelKeyDeletion", "EnableKey", "EnableKeyRotation"] {
        assert_eq!(proxy.calls_about(op, &s.doomed), 1, "{op}");
    }
    let attempts: Vec<String> = journal_lines(&work.path().join("approval.journal.jsonl"))
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
}
