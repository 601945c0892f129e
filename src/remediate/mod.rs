//! Approved remediation: `plan` → `approve` → `apply` → `verify`.
//!
//! A plan lists one action per key, with the state it was planned from; an
//! approval names the actions a person chose, the plan's SHA-256 and an
//! expiry, and may be signed with a KMS key; `apply` acts only on keys still
//! exactly in their planned state, re-checked just before each call, and
//! records each attempt and outcome in an fsynced, append-only journal bound
//! to the approval; `verify` says whether the approved work is done.
//!
//! The hashes tie the pieces together: `plan_sha256` is SHA-256 over the
//! plan's canonical JSON (keys sorted at every level, no whitespace) without
//! that field; `approval_sha256` likewise over the approval, and the
//! signature covers it. Every action id is the hash of its kind and key ARN,
//! so an approved id cannot be pointed at another key.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub mod apply;
pub mod approval;
pub mod cost;
pub mod journal;
pub mod plan;
pub mod verify;

pub use approval::Approval;
pub use plan::{Action, ActionType, Plan};

/// AWS's range for RotationPeriodInDays.
pub const PERIOD_RANGE: std::ops::RangeInclusive<i64> = 90..=2560;

/// Writes `v` as canonical JSON: object keys sorted by their UTF-8 bytes at
/// every level, no whitespace, serde_json's escaping and number forms.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 (hex) of a plan document, its `plan_sha256` field left out.
pub fn plan_hash(doc: &Value) -> String {
    let mut doc = doc.clone();
    if let Value::Object(map) = &mut doc {
        map.remove("plan_sha256");
    }
    hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
}

/// A stable id for an action: the same action on the same key gets the same
/// id in every plan, so approvals and journals can name it.
pub fn action_id(action: ActionType, key_arn: &str) -> String {
    let mut h = Sha256::new();
    h.update(action.as_str().as_bytes());
    h.update([0u8]);
    h.update(key_arn.as_bytes());
    format!("act-{}", &hex::encode(h.finalize())[..16])
}

/// Terminal sanitizing and atomic JSON writes are the writer layer's, shared
/// with every other command.
pub use crate::output::display_safe;

/// Writes `value` as pretty JSON to `path` atomically (temporary file,
/// fsync, rename, fsync of the folder), so a reader or a crash never sees
/// half a plan, approval or validation.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    crate::output::write_json_file(path, value)
}

/// Reads a JSON document into `T`; every failure is one line naming the file.
pub fn read_json_doc<T: DeserializeOwned>(path: &Path, what: &str) -> Result<(T, Value)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the {what}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not a valid {what} (malformed JSON at line {}, column {}: {})",
            path.display(),
            e.line(),
            e.column(),
            short_error(&e)
        )
    })?;
    let doc = serde_json::from_value(value.clone()).map_err(|e| {
        anyhow!(
            "{}: not a valid {what}: {}",
            path.display(),
            short_error(&e)
        )
    })?;
    Ok((doc, value))
}

/// serde_json's message without its trailing position, which is meaningless
/// for a value already parsed.
pub(crate) fn short_error(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) if e.line() == 0 || s[i..].contains("column") => s[..i].to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [ {"z": true, "y": null} ], "c": "x"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[{"y":null,"z":true}]},"b":1}"#
        );
    }

    #[test]
    fn plan_hash_ignores_its_own_field_and_key_order() {
        let a = json!({"x": 1, "y": [1, 2], "plan_sha256": "old"});
        let b = json!({"y": [1, 2], "x": 1});
        assert_eq!(plan_hash(&a), plan_hash(&b));
        let c = json!({"y": [2, 1], "x": 1});
        assert_ne!(plan_hash(&a), plan_hash(&c));
    }

    #[test]
    fn display_safe_escapes_control_characters_only() {
        assert_eq!(display_safe("alias/ok-é"), "alias/ok-é");
        assert_eq!(
            display_safe("a\u{1b}[31mb\r\n"),
            "a\\u{1b}[31mb\\u{d}\\u{a}"
        );
    }

    #[test]
    fn action_ids_are_stable_and_distinct() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k";
        assert_eq!(
            action_id(ActionType::EnableRotation, arn),
            action_id(ActionType::EnableRotation, arn)
        );
        assert_ne!(
            action_id(ActionType::EnableRotation, arn),
            action_id(ActionType::SetRotationPeriod, arn)
        );
    }
}
