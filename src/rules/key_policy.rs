//! Key policy statements, and which rotation actions a Deny covers.
//!
//! The policy is JSON; matching IAM wildcards in SQL would be unreadable, so
//! the engine flattens statements into the `policy_statements` table here and
//! the `policy_denies_rotation` rule only selects from it.

use serde_json::Value;

/// The actions that turn rotation on or rotate now. A Deny on either blocks
/// remediation; a Deny on DisableKeyRotation is good practice and not listed.
pub const ROTATION_ACTIONS: [&str; 2] = ["kms:EnableKeyRotation", "kms:RotateKeyOnDemand"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: String,
    /// The Principal (or `NotPrincipal: ...`) as compact JSON.
    pub principal: Option<String>,
    /// `Action: a, b` or `NotAction: a, b`.
    pub actions: String,
    pub condition: Option<String>,
    /// Rotation actions this statement denies (empty for Allow).
    pub denied_rotation_actions: Vec<&'static str>,
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
    Ok(list.iter().map(statement).collect())
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

fn statement(s: &Value) -> Statement {
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
    Statement {
        sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
        effect,
        principal,
        actions: format!(
            "{}: {}",
            if negated { "NotAction" } else { "Action" },
            patterns.join(", ")
        ),
        condition: s.get("Condition").map(Value::to_string),
        denied_rotation_actions: denied,
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
    }
}
