//! `orphaned_policy_principal` end to end: key policies in moto that name a
//! deleted role (`AROA…`) and a deleted user (`AIDA…`) as AWS shows them,
//! collected, assessed, and diagnosed.
//!
//! moto's PutKeyPolicy and CreateKey store any policy text without checking
//! its principals. AWS refuses a policy that names a principal that does not
//! exist (MalformedPolicyDocumentException); a unique id appears in a real
//! key policy only when the user or role its ARN named is deleted after the
//! policy was saved. The test writes the policies as AWS shows them after
//! such a deletion; that moto accepts them as written is its gap, not AWS's
//! behaviour.

use serde_json::{json, Value};

use crate::support::{read_json, run, Moto, ACCOUNT};

const REGION: &str = "us-east-1";
const DELETED_ROLE: &str = "AROA3XFRBF535PLBIFPI4";
const DELETED_USER: &str = "AIDACKCEVSQ6C2EXAMPLE";

fn root_admin() -> Value {
    json!({"Sid": "Enable IAM policies", "Effect": "Allow",
           "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
           "Action": "kms:*", "Resource": "*"})
}

fn policy(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn orphaned_principals_in_moto_key_policies_are_findings_and_in_the_verdict() {
    let moto = Moto::start();
    let kms = moto.kms(REGION).await;
    let create = |description: &'static str, policy: Option<String>| {
        let kms = kms.clone();
        async move {
            let mut req = kms.create_key().description(description);
            if let Some(p) = policy {
                req = req.policy(p);
            }
            let id = req
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string();
            kms.enable_key_rotation().key_id(&id).send().await.unwrap();
            id
        }
    };
    // The rotation automation's role was deleted (and perhaps recreated):
    // the statement that let it rotate now names its unique id.
    let rotator = create(
        "rotated by automation",
        Some(policy(vec![
            root_admin(),
            json!({"Sid": "RotationAutomation", "Effect": "Allow",
                   "Principal": {"AWS": DELETED_ROLE},
                   "Action": ["kms:EnableKeyRotation", "kms:RotateKeyOnDemand", "kms:GetKeyRotationStatus"],
                   "Resource": "*"}),
        ])),
    )
    .await;
    // A deleted user in a list, set after creation with PutKeyPolicy.
    let shared = create("shared with a departed user", None).await;
    kms.put_key_policy()
        .key_id(&shared)
        .policy_name("default")
        .policy(policy(vec![
            root_admin(),
            json!({"Effect": "Allow",
                   "Principal": {"AWS": [format!("arn:aws:iam::{ACCOUNT}:role/reporting"), DELETED_USER]},
                   "Action": "kms:Decrypt", "Resource": "*"}),
        ]))
        .send()
        .await
        .unwrap();
    // Live principals only: nothing to report.
    let clean = create(
        "clean",
        Some(policy(vec![
            root_admin(),
            json!({"Sid": "RotationAutomation", "Effect": "Allow",
                   "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/rotation-automation")},
                   "Action": "kms:EnableKeyRotation", "Resource": "*"}),
        ])),
    )
    .await;

    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let (code, out, err) = run(moto
        .kmsrot()
        .args(["--region", REGION, "collect", "--out"])
        .arg(&bundle));
    assert!(code == 0 || code == 3, "collect: {code}\n{out}\n{err}");
    let (code, out, err) = run(moto.kmsrot().arg("assess").arg(&bundle));
    // Medium findings only: below the default --fail-on high.
    assert!(code == 0 || code == 3, "assess: {code}\n{out}\n{err}");
    assert!(out.contains("orphaned_policy_principal"), "{out}");

    let findings = read_json(&bundle.join("findings.json"));
    let orphaned: Vec<&Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "orphaned_policy_principal")
        .collect();
    let on = |id: &str| -> Vec<&Value> {
        orphaned
            .iter()
            .copied()
            .filter(|f| f["key_arn"].as_str().unwrap().ends_with(id))
            .collect()
    };
    assert_eq!(orphaned.len(), 2, "{orphaned:#?}");
    assert!(on(&clean).is_empty());
    let role = on(&rotator);
    assert_eq!(role.len(), 1);
    assert_eq!(role[0]["severity"], "medium");
    assert_eq!(role[0]["status"], "open");
    let detail = role[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "statement RotationAutomation allows Action: kms:EnableKeyRotation, kms:RotateKeyOnDemand, kms:GetKeyRotationStatus to {DELETED_ROLE} (IAM role)"
        )),
        "{detail}"
    );
    let user = on(&shared);
    assert_eq!(user.len(), 1);
    let detail = user[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "#2 (no Sid) allows Action: kms:Decrypt to {DELETED_USER} (IAM user)"
        )),
        "{detail}"
    );

    // diagnose lists the statement and its verdict carries the finding.
    let (code, out, err) = run(moto
        .kmsrot()
        .args(["diagnose", &rotator, "--bundle"])
        .arg(&bundle));
    assert_eq!(code, 0, "diagnose:\n{out}\n{err}");
    assert!(
        out.contains(&format!(
            "Key policy statements naming a deleted principal: 1\n  RotationAutomation: Allow Action: kms:EnableKeyRotation, kms:RotateKeyOnDemand, kms:GetKeyRotationStatus to {DELETED_ROLE} (IAM role)"
        )),
        "{out}"
    );
    let verdict = out.split("\nVerdict\n").nth(1).unwrap();
    assert!(
        verdict.contains(
            "[medium] orphaned_policy_principal: Key policy statement RotationAutomation allows"
        ),
        "{verdict}"
    );
    assert!(verdict.contains("aws kms put-key-policy"), "{verdict}");
    let (code, out, err) = run(moto
        .kmsrot()
        .args(["--output", "json", "diagnose", &rotator, "--bundle"])
        .arg(&bundle));
    assert_eq!(code, 0, "diagnose json:\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["orphaned_principals"][0]["principals"][0],
        json!({"id": DELETED_ROLE, "kind": "IAM role"})
    );
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule_id"] == "orphaned_policy_principal"));
}
