//! The API answers behind a bundle, kept as the AWS CLI prints them, so an
//! auditor can re-perform any call and compare.
//!
//! An SDK interceptor copies each successful response body (KMS speaks JSON,
//! so the body is the answer) together with the request parameters. On write,
//! epoch timestamps become ISO 8601 as the CLI shows them, and `index.json`
//! names the `aws` command that repeats each call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::region::Region;
use serde_json::{json, Map, Value};

use crate::output::write_json_file;

/// One recorded call.
#[derive(Debug, Clone)]
pub struct RawCall {
    /// The account the call was made in, for runs over several accounts.
    pub account: Option<String>,
    pub service: String,
    pub operation: String,
    pub region: String,
    pub request: Value,
    pub response: Value,
}

/// Records successful calls of every client it is attached to.
#[derive(Debug, Clone, Default)]
pub struct RawRecorder {
    calls: Arc<Mutex<Vec<RawCall>>>,
    account: Option<String>,
}

#[derive(Debug, Clone)]
struct PendingRequest(Option<Vec<u8>>);

impl Storable for PendingRequest {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RawRecorder {
    fn name(&self) -> &'static str {
        "kmsrot-raw-recorder"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = ctx.request().body().bytes().map(<[u8]>::to_vec);
        cfg.interceptor_state().store_put(PendingRequest(body));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = ctx.response();
        if !response.status().is_success() {
            return Ok(());
        }
        // Never fail the call because of the recorder: an unreadable body is
        // simply not kept.
        let Some(body) = response.body().bytes() else {
            return Ok(());
        };
        let Ok(answer) = serde_json::from_slice::<Value>(body) else {
            return Ok(());
        };
        let request = cfg
            .load::<PendingRequest>()
            .and_then(|p| p.0.as_deref())
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .unwrap_or(Value::Object(Map::new()));
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "Unknown".into()));
        let region = cfg
            .load::<Region>()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "global".into());
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(RawCall {
                account: self.account.clone(),
                service,
                operation,
                region,
                request,
                response: answer,
            });
        }
        Ok(())
    }
}

impl RawRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same record, labelling what it records with `account`: a run
    /// over several accounts keeps each one's answers under `raw/ACCOUNT/`.
    pub fn for_account(&self, account: &str) -> Self {
        RawRecorder {
            calls: self.calls.clone(),
            account: Some(account.to_string()),
        }
    }

    pub fn calls(&self) -> Vec<RawCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Writes every call under `dir` (`raw/`), returning the files written.
    ///
    /// Layout: `SERVICE/REGION/operation-name/NAME.json` (under `ACCOUNT/`
    /// for calls labelled with an account), NAME being the key id for
    /// per-key calls and `page-N` otherwise, plus `index.json`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut calls = self.calls();
        // Stable files whatever order concurrent calls finished in.
        calls.sort_by(|a, b| {
            (
                &a.account,
                &a.service,
                &a.region,
                &a.operation,
                request_key(&a.request),
                a.request.to_string(),
            )
                .cmp(&(
                    &b.account,
                    &b.service,
                    &b.region,
                    &b.operation,
                    request_key(&b.request),
                    b.request.to_string(),
                ))
        });
        let mut written = Vec::new();
        let mut index = Vec::new();
        let mut pages: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for call in calls {
            let service = call.service.to_ascii_lowercase().replace(' ', "-");
            let op = kebab(&call.operation);
            let base = request_key(&call.request)
                .map(|k| k.rsplit('/').next().unwrap_or(&k).replace(':', "_"))
                .unwrap_or_else(|| "page".into());
            let root = match &call.account {
                Some(a) => dir.join(a),
                None => dir.to_path_buf(),
            };
            let folder = root.join(&service).join(&call.region).join(&op);
            let n = pages.entry(folder.join(&base)).or_insert(0);
            *n += 1;
            let name = if *n == 1 && base != "page" {
                format!("{base}.json")
            } else {
                format!("{base}-{n}.json")
            };
            std::fs::create_dir_all(&folder)?;
            let path = folder.join(&name);
            write_json_file(&path, &cli_timestamps(call.response))?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let mut entry = json!({
                "file": rel,
                "service": call.service,
                "operation": call.operation,
                "region": call.region,
                "request": call.request,
                "cli": cli_command(&service, &op, &call.region, &call.request),
            });
            if let (Some(a), Some(obj)) = (&call.account, entry.as_object_mut()) {
                obj.insert("account".into(), json!(a));
            }
            index.push(entry);
            written.push(path);
        }
        if !index.is_empty() {
            let path = dir.join("index.json");
            write_json_file(&path, &index)?;
            written.push(path);
        }
        Ok(written)
    }
}

fn request_key(request: &Value) -> Option<String> {
    request
        .get("KeyId")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `GetKeyRotationStatus` → `get-key-rotation-status`.
fn kebab(op: &str) -> String {
    let mut out = String::new();
    for (i, c) in op.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `aws` command that repeats a call; paging parameters are left to the
/// CLI, which pages on its own.
fn cli_command(service: &str, op: &str, region: &str, request: &Value) -> String {
    let mut cmd = format!("aws {service} {op} --region {region}");
    if let Some(params) = request.as_object() {
        for (k, v) in params {
            if matches!(k.as_str(), "Limit" | "Marker" | "NextToken" | "MaxResults") {
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cmd.push_str(&format!(
                " --{} '{}'",
                kebab(k),
                value.replace('\'', "'\\''")
            ));
        }
    }
    cmd.push_str(" --output json");
    cmd
}

/// KMS sends times as epoch seconds; the CLI prints them as ISO 8601.
fn cli_timestamps(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let is_time = k.ends_with("Date") || k == "ValidTo";
                    let v = match (&v, is_time) {
                        (Value::Number(n), true) => n
                            .as_f64()
                            .and_then(|secs| {
                                chrono::DateTime::<chrono::Utc>::from_timestamp_millis(
                                    (secs * 1000.0).round() as i64,
                                )
                            })
                            .map(|t| {
                                Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
                            })
                            .unwrap_or(v),
                        _ => cli_timestamps(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(cli_timestamps).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_the_cli_does() {
        let v = cli_timestamps(
            json!({"KeyMetadata": {"CreationDate": 1.7040672E9, "KeyId": "k"},
                                      "Rotations": [{"RotationDate": 1735689600.5}]}),
        );
        assert_eq!(
            v["KeyMetadata"]["CreationDate"],
            "2024-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(
            v["Rotations"][0]["RotationDate"],
            "2025-01-01T00:00:00.500000+00:00"
        );
        assert_eq!(v["KeyMetadata"]["KeyId"], "k");
    }

    #[test]
    fn commands_repeat_the_call() {
        assert_eq!(kebab("GetKeyRotationStatus"), "get-key-rotation-status");
        let cmd = cli_command(
            "kms",
            "get-key-policy",
            "eu-west-1",
            &json!({"KeyId": "arn:x", "PolicyName": "default", "Limit": 5}),
        );
        assert_eq!(
            cmd,
            "aws kms get-key-policy --region eu-west-1 --key-id 'arn:x' --policy-name 'default' --output json"
        );
    }
}
