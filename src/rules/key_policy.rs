//! Key policy statements, which rotation actions a Deny covers, and which
//! principals are the unique ids AWS shows for deleted users and roles.
//!
//! The policy is JSON; matching IAM wildcards in SQL would be unreadable, so
//! the engine flattens statements into the `policy_statements` table here and
//! the policy rules only select from it.

use serde_json::Value;

/// The actions that turn rotation on or rotate now. A Deny on either blocks
/// remediation; a Deny on DisableKeyRotation is good practice and not listed.
pub const ROTATION_ACTIONS: [&str; 2] = ["kms:EnableKeyRotation", "kms:RotateKeyOnDemand"];

/// `policy_statements`, in words: what `DERIVED_TABLES` ships with the rules
/// that read it.
pub const POLICY_STATEMENTS_DEFINITION: &str = "
One row per statement of each key policy in the keys frame (key_policy), in policy order; a policy
that is not JSON, or has no Statement, gives no rows. statement_index: position from 1. principal: the
Principal as compact JSON, or 'NotPrincipal: ' and the NotPrincipal. actions: 'Action: a, b' or
'NotAction: a, b'. condition: the Condition as compact JSON, empty when absent or {}.
denied_rotation_actions: for Effect Deny, which of kms:EnableKeyRotation and kms:RotateKeyOnDemand the
Action (or everything but the NotAction) matches, with IAM wildcards (* any run, ? one character,
case-insensitive). everyone: Principal is \"*\" or {\"AWS\": \"*\"} (or a list holding it) and there is
no NotPrincipal. unaffected: for a Deny, the callers it leaves out (those outside a Condition, those named
in NotPrincipal, or everyone but the principals it names). unique_id_principals: each value of the
Principal or NotPrincipal (a string, a list, or any key of an object, such as AWS) that is a bare IAM
unique id, a documented prefix (ABIA, ACCA, AGPA, AIDA, AIPA, AKIA, ANPA, ANVA, APKA, AROA, ASCA, ASIA)
followed by upper-case letters and digits, 16 to 128 characters in all, with what the prefix names, as
'AROA... (IAM role), AIDA... (IAM user)'; empty when there is none. not_principal: the statement names its
principals in NotPrincipal.
";

/// The prefixes of IAM unique ids and what each names (IAM User Guide, IAM
/// identifiers, "Understanding unique ID prefixes"). A policy shows a
/// deleted user or role by its unique id (`AIDA`, `AROA`); the others cannot
/// be principals at all, so a policy naming one names no one.
pub const UNIQUE_ID_PREFIXES: [(&str, &str); 12] = [
    ("ABIA", "AWS STS service bearer token"),
    ("ACCA", "context-specific credential"),
    ("AGPA", "IAM user group"),
    ("AIDA", "IAM user"),
    ("AIPA", "Amazon EC2 instance profile"),
    ("AKIA", "access key"),
    ("ANPA", "managed policy"),
    ("ANVA", "managed policy version"),
    ("APKA", "public key"),
    ("AROA", "IAM role"),
    ("ASCA", "certificate"),
    ("ASIA", "temporary (AWS STS) access key"),
];

/// What a bare unique id in a policy names, when `value` is one: a
/// documented prefix, then upper-case letters and digits. AWS's ids are 21
/// characters (20 for access keys); the bounds only keep out words that
/// happen to start with a prefix.
pub fn unique_id_kind(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if !(16..=128).contains(&v.len())
        || !v
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return None;
    }
    UNIQUE_ID_PREFIXES
        .iter()
        .find(|(prefix, _)| v.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// A principal of a statement that is a bare unique id: what AWS shows in
/// place of a deleted user's or role's ARN.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UniqueIdPrincipal {
    pub id: String,
    /// What its prefix names, such as `IAM role`.
    pub kind: &'static str,
}

impl std::fmt::Display for UniqueIdPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Position in the policy, from 1: what tells Sid-less statements apart.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: String,
    /// The Principal (or `NotPrincipal: ...`) as compact JSON.
    pub principal: Option<String>,
    /// `Action: a, b` or `NotAction: a, b`.
    pub actions: String,
    pub condition: Option<String>,
    /// Rotation actions this statement denies (empty for Allow).
    pub denied_rotation_actions: Vec<&'static str>,
    /// `Principal: "*"` or `{"AWS": "*"}`, and no `NotPrincipal`: the
    /// statement names every caller.
    pub everyone: bool,
    /// The callers a Deny leaves able to make the calls it covers, in words:
    /// those outside a `Condition`, those named in `NotPrincipal`, or everyone
    /// but the principals it names. `None` for an unconditional Deny of every
    /// principal, and for Allow statements.
    pub unaffected: Option<String>,
    /// Principals (or NotPrincipals) that are bare unique ids, in policy order.
    pub unique_id_principals: Vec<UniqueIdPrincipal>,
    /// The principals are named in `NotPrincipal`.
    pub not_principal: bool,
}

/// Flattens a policy document. A document that is not valid JSON yields an
/// error message instead of statements.
pub fn statements(policy: &str) -> Result<Vec<Statement>, String> {
    let doc: Value =
        serde_json::from_str(policy).map_err(|e| format!("key policy is not JSON: {e}"))?;
    let list = match doc.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(obj @ Value::Object(_)) => vec![obj.clone()],
        _ => return Err("key policy has no Statement".into()),
    };
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, s)| statement(i + 1, s))
        .collect())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn statement(index: usize, s: &Value) -> Statement {
    let effect = s
        .get("Effect")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (negated, patterns) = match s.get("NotAction") {
        Some(v) => (true, strings(Some(v))),
        None => (false, strings(s.get("Action"))),
    };
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => Some(p.to_string()),
        (None, Some(p)) => Some(format!("NotPrincipal: {p}")),
        _ => None,
    };
    let denied = if effect.eq_ignore_ascii_case("Deny") {
        ROTATION_ACTIONS
            .into_iter()
            .filter(|action| {
                let matched = patterns.iter().any(|p| iam_match(p, action));
                // NotAction denies everything it does not name.
                matched != negated
            })
            .collect()
    } else {
        Vec::new()
    };
    let is_deny = effect.eq_ignore_ascii_case("Deny");
    let everyone =
        s.get("NotPrincipal").is_none() && s.get("Principal").is_some_and(names_everyone);
    let unaffected = if is_deny {
        unaffected_callers(s, everyone)
    } else {
        None
    };
    let not_principal = s.get("Principal").is_none() && s.get("NotPrincipal").is_some();
    let named = if not_principal {
        s.get("NotPrincipal")
    } else {
        s.get("Principal")
    };
    let mut unique_id_principals: Vec<UniqueIdPrincipal> = Vec::new();
    for value in named.map(principal_values).unwrap_or_default() {
        if let Some(kind) = unique_id_kind(&value) {
            let id = value.trim().to_string();
            if !unique_id_principals.iter().any(|u| u.id == id) {
                unique_id_principals.push(UniqueIdPrincipal { id, kind });
            }
        }
    }
    Statement {
        index,
        sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
        effect,
        principal,
        actions: format!(
            "{}: {}",
            if negated { "NotAction" } else { "Action" },
            patterns.join(", ")
        ),
        // An empty Condition block is no condition at all.
        condition: s
            .get("Condition")
            .filter(|c| !c.as_object().is_some_and(|o| o.is_empty()))
            .map(Value::to_string),
        denied_rotation_actions: denied,
        everyone,
        unaffected,
        unique_id_principals,
        not_principal,
    }
}

/// Every string a Principal element names, whatever its form: `"*"` or an
/// id as a bare string, a list, or an object of lists and strings keyed by
/// principal type (`AWS`, `Service`, `Federated`, `CanonicalUser`).
fn principal_values(p: &Value) -> Vec<String> {
    match p {
        Value::Object(map) => map.values().flat_map(principal_values).collect(),
        Value::Array(items) => items.iter().flat_map(principal_values).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `"*"`, `{"AWS": "*"}`, or a list holding `"*"`: every principal.
fn names_everyone(p: &Value) -> bool {
    match p {
        Value::String(s) => s == "*",
        Value::Array(items) => items.iter().any(names_everyone),
        Value::Object(map) => map.values().any(names_everyone),
        _ => false,
    }
}

fn principal_list(p: &Value) -> String {
    let mut out = Vec::new();
    match p {
        Value::Object(map) => {
            for v in map.values() {
                out.extend(strings(Some(v)));
            }
        }
        other => out.extend(strings(Some(other))),
    }
    if out.is_empty() {
        p.to_string()
    } else {
        out.join(", ")
    }
}

/// Who a Deny statement does not reach. A Condition's clauses must all hold
/// for the Deny to apply, so a caller for which any one fails is left out.
fn unaffected_callers(s: &Value, everyone: bool) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(np) = s.get("NotPrincipal") {
        parts.push(format!(
            "the principals named in NotPrincipal ({})",
            principal_list(np)
        ));
    } else if !everyone {
        match s.get("Principal") {
            Some(p) => parts.push(format!("every principal other than {}", principal_list(p))),
            None => parts.push("every principal (the statement names none)".into()),
        }
    }
    if let Some(Value::Object(ops)) = s.get("Condition") {
        for (op, clause) in ops {
            let Value::Object(keys) = clause else {
                parts.push(format!(
                    "callers for which the condition {op} {clause} does not hold"
                ));
                continue;
            };
            for (key, values) in keys {
                parts.push(condition_escape(op, key, values));
            }
        }
    } else if let Some(other) = s.get("Condition") {
        parts.push(format!(
            "callers for which the condition {other} does not hold"
        ));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("; or "))
    }
}

/// One condition clause, turned round: the callers for which it fails.
fn condition_escape(op: &str, key: &str, values: &Value) -> String {
    let listed = {
        let v = strings(Some(values));
        if v.is_empty() {
            values.to_string()
        } else {
            v.join(" or ")
        }
    };
    let if_exists = op.ends_with("IfExists");
    let base = op.trim_end_matches("IfExists");
    // Set operators and Null read badly when turned round; quote them.
    if base.contains(':') || base == "Null" {
        return format!("callers for which {op} {{{key}: {listed}}} does not hold");
    }
    let negated = base.contains("Not");
    let absent = if if_exists {
        String::new()
    } else {
        format!(", and callers whose request carries no {key}")
    };
    if negated {
        // StringNotEquals aws:PrincipalOrgID o-1 denies everyone outside o-1.
        format!("callers whose {key} matches {listed} ({op})")
    } else {
        format!("callers whose {key} does not match {listed} ({op}){absent}")
    }
}

/// IAM action matching: case-insensitive, `*` any run, `?` one character.
pub fn iam_match(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // Iterative wildcard match with backtracking to the last `*`.
    let (mut pi, mut ai) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ai < a.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == a[ai]) {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(iam_match("kms:*", "kms:EnableKeyRotation"));
        assert!(iam_match("*", "kms:RotateKeyOnDemand"));
        assert!(iam_match("KMS:enable*", "kms:EnableKeyRotation"));
        assert!(iam_match("kms:*Rotation", "kms:EnableKeyRotation"));
        assert!(iam_match("kms:?nableKeyRotation", "kms:EnableKeyRotation"));
        assert!(!iam_match("kms:Disable*", "kms:EnableKeyRotation"));
        assert!(!iam_match("s3:*", "kms:EnableKeyRotation"));
    }

    #[test]
    fn deny_statements_are_flattened() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"Enable IAM","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
          {"Sid":"NoRotate","Effect":"Deny","Principal":{"AWS":"*"},"Action":["kms:Enable*"],"Resource":"*",
           "Condition":{"StringNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/KeyAdmin"}}},
          {"Sid":"OnlyDecrypt","Effect":"Deny","Principal":"*","NotAction":["kms:Decrypt","kms:RotateKeyOnDemand"],"Resource":"*"}
        ]}"#;
        let st = statements(policy).unwrap();
        assert_eq!(st.len(), 3);
        assert!(st[0].denied_rotation_actions.is_empty());
        assert_eq!(st[1].denied_rotation_actions, vec!["kms:EnableKeyRotation"]);
        assert!(st[1].condition.as_deref().unwrap().contains("KeyAdmin"));
        assert_eq!(st[2].denied_rotation_actions, vec!["kms:EnableKeyRotation"]);
        assert!(statements("not json").is_err());
        assert_eq!(
            st.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn unique_ids_are_found_in_every_form_of_principal() {
        let role = "AROA3XFRBF535PLBIFPI4";
        let user = "AIDACKCEVSQ6C2EXAMPLE";
        let policy = format!(
            r#"{{"Statement":[
          {{"Sid":"Map","Effect":"Allow","Principal":{{"AWS":"{role}"}},"Action":"kms:EnableKeyRotation","Resource":"*"}},
          {{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:root","{user}",{role:?}]}},"Action":["kms:Decrypt"],"Resource":"*"}},
          {{"Effect":"Allow","Principal":"{user}","Action":"kms:*","Resource":"*"}},
          {{"Effect":"Deny","NotPrincipal":{{"AWS":["{role}"]}},"Action":"kms:*","Resource":"*"}},
          {{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:role/AROAlike","111122223333","AROA"],"Service":"kms.amazonaws.com"}},"Action":"kms:*","Resource":"*"}}
        ]}}"#
        );
        let st = statements(&policy).unwrap();
        let ids = |i: usize| -> Vec<String> {
            st[i]
                .unique_id_principals
                .iter()
                .map(|u| u.to_string())
                .collect()
        };
        assert_eq!(ids(0), vec![format!("{role} (IAM role)")]);
        assert!(!st[0].not_principal);
        // A list, the same id twice, and an ARN beside them.
        assert_eq!(
            ids(1),
            vec![format!("{user} (IAM user)"), format!("{role} (IAM role)")]
        );
        // A bare string principal.
        assert_eq!(ids(2), vec![format!("{user} (IAM user)")]);
        assert!(st[3].not_principal);
        assert_eq!(ids(3), vec![format!("{role} (IAM role)")]);
        // ARNs, account ids, services and a bare prefix are not unique ids.
        assert!(ids(4).is_empty(), "{:?}", ids(4));
    }

    #[test]
    fn every_documented_prefix_is_a_unique_id() {
        for (prefix, kind) in UNIQUE_ID_PREFIXES {
            assert_eq!(
                unique_id_kind(&format!("{prefix}EXAMPLE1234567890")),
                Some(kind)
            );
        }
        assert_eq!(unique_id_kind("AKIAIOSFODNN7EXAMPLE"), Some("access key"));
        for not_one in [
            "AROA",
            "AROAshort",
            "AROA3XFRBF535PLBIFPI4:session",
            "arn:aws:iam::111122223333:role/AROA3XFRBF535PLBIFPI4",
            "ABCD3XFRBF535PLBIFPI4",
            "*",
        ] {
            assert_eq!(unique_id_kind(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn a_deny_says_whom_it_leaves_out() {
        let policy = r#"{"Statement":[
          {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"},
          {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
           "Condition":{"StringNotEquals":{"aws:PrincipalOrgID":["o-1","o-2"]},
                        "Bool":{"aws:ViaAWSService":"false"}}},
          {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::1:role/A","arn:aws:iam::1:role/B"]},"Action":"kms:EnableKeyRotation","Resource":"*"},
          {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1:role/ci"},"Action":"kms:*","Resource":"*"},
          {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{}},
          {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}
        ]}"#;
        let st = statements(policy).unwrap();
        assert!(st[0].everyone && st[0].unaffected.is_none());
        let perimeter = st[1].unaffected.as_deref().unwrap();
        assert!(
            perimeter.contains("callers whose aws:PrincipalOrgID matches o-1 or o-2")
                && perimeter.contains("callers whose aws:ViaAWSService does not match false"),
            "{perimeter}"
        );
        assert!(!st[2].everyone);
        assert!(st[2]
            .unaffected
            .as_deref()
            .unwrap()
            .contains("NotPrincipal (arn:aws:iam::1:role/A, arn:aws:iam::1:role/B)"));
        assert!(st[3]
            .unaffected
            .as_deref()
            .unwrap()
            .contains("every principal other than arn:aws:iam::1:role/ci"));
        // An empty Condition is no condition.
        assert!(st[4].condition.is_none() && st[4].unaffected.is_none());
        assert!(st[5].unaffected.is_none());
    }
}
