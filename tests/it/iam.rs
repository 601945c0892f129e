//! The shipped IAM policies (docs/iam/*.json) name exactly the actions the
//! code calls: every SDK request in `src/` (a chain ending in `.send()`) is
//! found, its operation mapped to IAM actions, and compared with the policy
//! for that part of the code. A new call without a policy line fails here.
//! The member-account role of an organization (docs/iam/org-member-role.yaml,
//! a StackSet template) grants exactly what runs inside a member account.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::read_json;

/// SDK operation (the client method) → the IAM actions it needs.
const ACTIONS: &[(&str, &[&str])] = &[
    ("list_keys", &["kms:ListKeys"]),
    ("describe_key", &["kms:DescribeKey"]),
    ("get_key_rotation_status", &["kms:GetKeyRotationStatus"]),
    ("list_key_rotations", &["kms:ListKeyRotations"]),
    ("list_aliases", &["kms:ListAliases"]),
    ("list_resource_tags", &["kms:ListResourceTags"]),
    ("get_key_policy", &["kms:GetKeyPolicy"]),
    ("list_grants", &["kms:ListGrants"]),
    ("enable_key_rotation", &["kms:EnableKeyRotation"]),
    ("disable_key_rotation", &["kms:DisableKeyRotation"]),
    ("enable_key", &["kms:EnableKey"]),
    ("cancel_key_deletion", &["kms:CancelKeyDeletion"]),
    ("rotate_key_on_demand", &["kms:RotateKeyOnDemand"]),
    ("sign", &["kms:Sign"]),
    ("get_public_key", &["kms:GetPublicKey"]),
    ("get_caller_identity", &["sts:GetCallerIdentity"]),
    ("list_regions", &["account:ListRegions"]),
    ("lookup_events", &["cloudtrail:LookupEvents"]),
    ("start_query", &["cloudtrail:StartQuery"]),
    ("get_query_results", &["cloudtrail:GetQueryResults"]),
    ("cancel_query", &["cloudtrail:CancelQuery"]),
    // Log file integrity validation (`--validate`) without --public-keys.
    ("list_public_keys", &["cloudtrail:ListPublicKeys"]),
    // ListObjectsV2 is authorized by s3:ListBucket.
    ("list_objects_v2", &["s3:ListBucket"]),
    ("get_object", &["s3:GetObject"]),
    // HeadBucket is authorized by s3:ListBucket.
    ("head_bucket", &["s3:ListBucket"]),
    ("get_bucket_location", &["s3:GetBucketLocation"]),
    (
        "get_object_lock_configuration",
        &["s3:GetBucketObjectLockConfiguration"],
    ),
    // Our PutObject sets Object Lock retention, which needs its own action.
    ("put_object", &["s3:PutObject", "s3:PutObjectRetention"]),
    (
        "describe_organization",
        &["organizations:DescribeOrganization"],
    ),
    ("list_accounts", &["organizations:ListAccounts"]),
    (
        "list_accounts_for_parent",
        &["organizations:ListAccountsForParent"],
    ),
    (
        "list_organizational_units_for_parent",
        &["organizations:ListOrganizationalUnitsForParent"],
    ),
    ("list_roots", &["organizations:ListRoots"]),
    ("assume_role", &["sts:AssumeRole"]),
    ("start_query_execution", &["athena:StartQueryExecution"]),
    ("get_query_execution", &["athena:GetQueryExecution"]),
    ("stop_query_execution", &["athena:StopQueryExecution"]),
];

/// Operations whose name two services share, by file: Athena's
/// GetQueryResults is not CloudTrail Lake's.
const FILE_ACTIONS: &[(&str, &str, &[&str])] = &[(
    "src/trail/athena.rs",
    "get_query_results",
    &["athena:GetQueryResults"],
)];

/// Actions a policy grants that no SDK call of ours names: what Athena does
/// with the caller's permissions while it runs a query (AWS, "Identity and
/// access management in Athena" and "Access to Amazon S3 / the AWS Glue
/// Data Catalog"): it reads the table from Glue, the trail's objects from
/// S3, and writes the result to the output location.
const ON_OUR_BEHALF: &[(&str, &[&str])] = &[(
    "trail-athena.json",
    &[
        "glue:GetDatabase",
        "glue:GetPartition",
        "glue:GetPartitions",
        "glue:GetTable",
        "s3:AbortMultipartUpload",
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ],
)];

/// Code that runs inside a member account, with the role assumed there:
/// the inventory, region discovery, LookupEvents and live diagnosis.
fn runs_in_members(rel: &str) -> bool {
    rel.starts_with("src/inventory/")
        || rel == "src/aws/regions.rs"
        || rel == "src/trail/lookup.rs"
        || rel == "src/diagnose.rs"
}

/// The actions in the YAML lines `- service:Action` of `text`.
fn yaml_actions(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|a| {
            a.split_once(':').is_some_and(|(svc, act)| {
                !svc.is_empty()
                    && svc.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !act.is_empty()
                    && act.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
        .map(str::to_string)
        .collect()
}

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

/// The first method of the call chain that ends at `text[..end]`:
/// `kms.describe_key().key_id(x).send()` → `describe_key`.
fn chain_head(text: &str, end: usize) -> Option<String> {
    let b = text.as_bytes();
    let mut i = end;
    let mut head = None;
    loop {
        while i > 0 && b[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        if i == 0 || b[i - 1] != b')' {
            break;
        }
        let mut depth = 0i32;
        loop {
            if i == 0 {
                return head;
            }
            i -= 1;
            match b[i] {
                b')' => depth += 1,
                b'(' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let name_end = i;
        while i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            i -= 1;
        }
        let name = &text[i..name_end];
        let mut j = i;
        while j > 0 && b[j - 1].is_ascii_whitespace() {
            j -= 1;
        }
        if j == 0 || b[j - 1] != b'.' {
            // A function call (`kms(&config, region)`) is the receiver.
            break;
        }
        head = Some(name.to_string());
        i = j - 1;
    }
    head
}

/// Which policies cover a source file. The KMS signing helpers serve both
/// `report --sign-with` / `verify-bundle` and `approve --sign-with` /
/// `apply --require-signed`.
fn policies_for(rel: &str) -> &'static [&'static str] {
    if rel == "src/aws/accounts.rs" || rel == "src/aws/assume.rs" {
        &["org-management.json"]
    } else if rel.starts_with("src/remediate/") {
        &["remediate.json"]
    } else if rel == "src/report/publish.rs" {
        &["report-publish.json"]
    } else if rel == "src/aws/signing.rs" {
        &["report-publish.json", "remediate.json"]
    } else if rel == "src/trail/athena.rs" {
        &["trail-athena.json"]
    } else {
        &["audit-readonly.json"]
    }
}

fn policy_actions(path: &Path) -> BTreeSet<String> {
    let doc = read_json(path);
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow", "{}", path.display());
        match &st["Action"] {
            serde_json::Value::String(a) => {
                out.insert(a.clone());
            }
            serde_json::Value::Array(list) => {
                out.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
            }
            other => panic!("{}: Action is {other}", path.display()),
        }
    }
    out
}

#[test]
fn chain_heads_are_found() {
    let text =
        "let x = crate::aws::kms(&c, r)\n    .describe_key()\n    .key_id(&k.arn)\n    .send()";
    assert_eq!(
        chain_head(text, text.len() - ".send()".len()).as_deref(),
        Some("describe_key")
    );
    let text = "kms.list_keys().into_paginator().send()";
    assert_eq!(
        chain_head(text, text.len() - ".send()".len()).as_deref(),
        Some("list_keys")
    );
}

#[test]
fn iam_policies_name_exactly_the_actions_the_code_calls() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let table: BTreeMap<&str, &[&str]> = ACTIONS.iter().copied().collect();
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut member: BTreeSet<String> = BTreeSet::new();
    let mut unknown = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        // Test modules call the emulator to seed it; they are not the product.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for (pos, _) in text.match_indices(".send()") {
            match chain_head(text, pos) {
                Some(op) => match FILE_ACTIONS
                    .iter()
                    .find(|(f, o, _)| *f == rel && *o == op)
                    .map(|(_, _, a)| a)
                    .or(table.get(op.as_str()))
                {
                    Some(actions) => {
                        if runs_in_members(&rel) {
                            member.extend(actions.iter().map(|a| a.to_string()));
                        }
                        for policy in policies_for(&rel) {
                            wanted
                                .entry(policy)
                                .or_default()
                                .extend(actions.iter().map(|a| a.to_string()));
                        }
                    }
                    None => unknown.push(format!("{rel}: .{op}()")),
                },
                None => unknown.push(format!("{rel}: a .send() without a call chain")),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "SDK calls with no IAM mapping in tests/it/iam.rs: {unknown:?}"
    );
    for name in [
        "audit-readonly.json",
        "report-publish.json",
        "org-management.json",
        "trail-athena.json",
    ] {
        let have = policy_actions(&root.join("docs/iam").join(name));
        let mut want = wanted.get(name).cloned().unwrap_or_default();
        for (policy, actions) in ON_OUR_BEHALF {
            if *policy == name {
                want.extend(actions.iter().map(|a| a.to_string()));
            }
        }
        assert_eq!(have, want, "docs/iam/{name}");
    }
    // The member role: the reads that run in members (GetCallerIdentity
    // needs no permission), and, when AllowRemediation is on, the changes
    // `apply` makes (the approval's signing key is not in the members).
    let template = std::fs::read_to_string(root.join("docs/iam/org-member-role.yaml")).unwrap();
    let (read_part, apply_part) = template
        .split_once("PolicyName: kmsrot-apply")
        .expect("the template has the kmsrot-apply policy");
    member.remove("sts:GetCallerIdentity");
    assert_eq!(
        yaml_actions(read_part)
            .into_iter()
            .filter(|a| a != "sts:AssumeRole")
            .collect::<BTreeSet<_>>(),
        member,
        "docs/iam/org-member-role.yaml, policy kmsrot-read"
    );
    let mut apply = wanted.get("remediate.json").cloned().unwrap_or_default();
    for not_in_members in ["kms:Sign", "kms:GetPublicKey", "sts:GetCallerIdentity"] {
        apply.remove(not_in_members);
    }
    assert_eq!(
        yaml_actions(apply_part),
        apply,
        "docs/iam/org-member-role.yaml, policy kmsrot-apply"
    );
    assert!(
        template.contains("sts:ExternalId: !Ref ExternalId"),
        "the member role's trust requires the external id"
    );
    assert!(
        template.contains("AWS: !Ref AuditingPrincipalArn"),
        "the member role trusts the auditing principal alone"
    );
    let remediate = policy_actions(&root.join("docs/iam/remediate.json"));
    if root.join("src/remediate").is_dir() {
        assert_eq!(
            remediate,
            wanted.get("remediate.json").cloned().unwrap_or_default(),
            "docs/iam/remediate.json"
        );
    } else {
        // Until the remediation module is merged, its policy must at least
        // grant the three changes `apply` is specified to make.
        for a in [
            "kms:EnableKeyRotation",
            "kms:CancelKeyDeletion",
            "kms:EnableKey",
        ] {
            assert!(remediate.contains(a), "docs/iam/remediate.json lacks {a}");
        }
    }
}
