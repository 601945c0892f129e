//! Prevention: KMS keys as infrastructure-as-code declares them, judged by the
//! same policy as the keys in an account, before they exist.
//!
//! Sources: Terraform plans (`terraform show -json plan.out`, read from
//! `resource_changes`), Terraform state (`terraform show -json`, and the raw
//! `terraform.tfstate`), and CloudFormation templates in JSON or YAML with the
//! short-form intrinsics. Each KMS resource is read into one vocabulary
//! ([`KeyResource`]), then [`judge`] applies the rules. Nothing here calls AWS.
//!
//! Data flows one way: files → [`KeyResource`] → [`IacFinding`] → frame,
//! table and SARIF.

pub mod cloudformation;
pub mod json_lines;
pub mod judge;
pub mod sarif;
pub mod terraform;
pub mod walk;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use polars::prelude::DataFrame;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::frames::{col, Cell, FrameBuilder, IAC_FINDINGS};
use crate::policy::Policy;

pub use judge::{IacFinding, Status};

/// A value as the IaC declares it. `Unknown` carries why: a Terraform value
/// known only after apply, a CloudFormation `!GetAtt`, a parameter without a
/// `Default`...
#[derive(Debug, Clone, PartialEq)]
pub enum Fact<T> {
    /// Not set: AWS's default applies.
    Absent,
    Known(T),
    Unknown(String),
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// The language a resource is written in, which decides how a remediation
/// line is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Terraform,
    CloudFormationYaml,
    CloudFormationJson,
}

/// What kind of KMS resource it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A key whose material KMS makes (or a custom key store holds).
    Key,
    /// Imported key material (origin EXTERNAL).
    ExternalKey,
    /// A multi-Region replica: it follows its primary's rotation.
    ReplicaKey,
}

/// The property names a dialect uses, for messages and remediation lines.
#[derive(Debug)]
pub struct AttrNames {
    pub rotation: &'static str,
    pub period: &'static str,
    /// Where the key spec is written; the first one present wins.
    pub spec: &'static [&'static str],
    pub usage: &'static str,
    pub origin: Option<&'static str>,
    /// Attributes whose presence puts the key in a custom key store.
    pub custom_key_store: &'static [&'static str],
    pub enabled: &'static str,
    pub multi_region: &'static str,
}

/// The Terraform AWS provider's `aws_kms_key` (internal/service/kms/key.go).
pub const TF_AWS: AttrNames = AttrNames {
    rotation: "enable_key_rotation",
    period: "rotation_period_in_days",
    spec: &["customer_master_key_spec", "key_spec"],
    usage: "key_usage",
    origin: None,
    custom_key_store: &["custom_key_store_id", "xks_key_id"],
    enabled: "is_enabled",
    multi_region: "multi_region",
};

/// The Terraform AWS Cloud Control provider's `awscc_kms_key`, generated from
/// the CloudFormation schema in snake case.
pub const TF_AWSCC: AttrNames = AttrNames {
    rotation: "enable_key_rotation",
    period: "rotation_period_in_days",
    spec: &["key_spec"],
    usage: "key_usage",
    origin: Some("origin"),
    custom_key_store: &[],
    enabled: "enabled",
    multi_region: "multi_region",
};

/// CloudFormation's `AWS::KMS::Key`.
pub const CFN: AttrNames = AttrNames {
    rotation: "EnableKeyRotation",
    period: "RotationPeriodInDays",
    spec: &["KeySpec"],
    usage: "KeyUsage",
    origin: Some("Origin"),
    custom_key_store: &[],
    enabled: "Enabled",
    multi_region: "MultiRegion",
};

/// The KMS resource types kmsrot reads, their kind and property names.
pub fn kms_type(resource_type: &str) -> Option<(ResourceKind, &'static AttrNames)> {
    Some(match resource_type {
        "aws_kms_key" => (ResourceKind::Key, &TF_AWS),
        "awscc_kms_key" => (ResourceKind::Key, &TF_AWSCC),
        "aws_kms_external_key" => (ResourceKind::ExternalKey, &TF_AWS),
        "aws_kms_replica_key" | "aws_kms_replica_external_key" | "awscc_kms_replica_key" => {
            (ResourceKind::ReplicaKey, &TF_AWS)
        }
        "AWS::KMS::Key" => (ResourceKind::Key, &CFN),
        "AWS::KMS::ReplicaKey" => (ResourceKind::ReplicaKey, &CFN),
        _ => return None,
    })
}

/// One KMS key resource, read into one vocabulary whatever its source.
#[derive(Debug, Clone)]
pub struct KeyResource {
    pub source_file: String,
    /// Terraform address (`module.app.aws_kms_key.data[0]`) or CloudFormation
    /// logical id.
    pub address: String,
    pub resource_type: String,
    pub kind: ResourceKind,
    pub dialect: Dialect,
    pub names: &'static AttrNames,
    /// Where the resource is written (1-based), when the file says.
    pub line: Option<usize>,
    /// Where the rotation property is written, when it is.
    pub rotation_line: Option<usize>,
    pub period_line: Option<usize>,
    /// How the document arrives at it: "create", "update", "replace",
    /// "no-op", "import" in a plan; "state" or "template" otherwise.
    pub action: &'static str,
    pub rotation: Fact<bool>,
    pub period: Fact<i64>,
    pub key_spec: Fact<String>,
    pub key_usage: Fact<String>,
    pub origin: Fact<String>,
    pub custom_key_store: Fact<String>,
    pub enabled: Fact<bool>,
    pub multi_region: Fact<bool>,
    /// Said in the detail of every row about it (a CloudFormation condition).
    pub note: Option<String>,
}

impl KeyResource {
    /// A resource with every property unset, for readers to fill in.
    pub fn new(
        source_file: &str,
        address: String,
        resource_type: &str,
        dialect: Dialect,
        action: &'static str,
    ) -> Option<KeyResource> {
        let (kind, names) = kms_type(resource_type)?;
        Some(KeyResource {
            source_file: source_file.to_string(),
            address,
            resource_type: resource_type.to_string(),
            kind,
            dialect,
            names,
            line: None,
            rotation_line: None,
            period_line: None,
            action,
            rotation: Fact::Absent,
            period: Fact::Absent,
            key_spec: Fact::Absent,
            key_usage: Fact::Absent,
            origin: Fact::Absent,
            custom_key_store: Fact::Absent,
            enabled: Fact::Absent,
            multi_region: Fact::Absent,
            note: None,
        })
    }
}

/// A KMS resource read but not judged, and why (being deleted, a condition
/// that is false...).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub source_file: String,
    pub address: String,
    pub resource_type: String,
    pub reason: String,
}

/// What a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    TerraformPlan,
    TerraformState,
    CloudFormation,
}

impl DocKind {
    pub fn label(self) -> &'static str {
        match self {
            DocKind::TerraformPlan => "Terraform plan",
            DocKind::TerraformState => "Terraform state",
            DocKind::CloudFormation => "CloudFormation template",
        }
    }
}

/// One file's reading.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: DocKind,
    pub resources: Vec<KeyResource>,
    pub skipped: Vec<Skipped>,
}

/// Everything one run read and concluded.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files read, with what each was.
    pub files: Vec<(String, DocKind)>,
    /// Files met while walking a folder that are not IaC, or not readable as
    /// such (and do not look like it).
    pub not_iac: Vec<String>,
    /// KMS resources judged.
    pub resources: usize,
    /// Addresses judged compliant.
    pub compliant: Vec<String>,
    pub findings: Vec<IacFinding>,
    pub skipped: Vec<Skipped>,
}

impl Scan {
    pub fn open(&self) -> impl Iterator<Item = &IacFinding> {
        self.findings.iter().filter(|f| f.status == Status::Open)
    }

    pub fn unknown(&self) -> impl Iterator<Item = &IacFinding> {
        self.findings.iter().filter(|f| f.status == Status::Unknown)
    }
}

/// Reads every file (folders walked), judges every KMS resource.
///
/// A file named on the command line must be IaC; a file met in a folder is
/// skipped when it is not, unless it looks like IaC and does not parse.
/// Either way a broken file is an error naming the file and line.
pub fn scan(inputs: &[PathBuf], policy: &Policy, as_of: DateTime<Utc>) -> Result<Scan> {
    // One policy file serves `assess` and `iac`: a rule id of either is known,
    // any other is a typo.
    policy.check_rule_ids(
        crate::rules::BUILTIN
            .iter()
            .map(|(id, _)| *id)
            .chain(judge::RULES.iter().map(|r| r.id)),
    )?;
    let mut out = Scan::default();
    // A file named twice (itself and through its folder) is read once.
    let mut seen = std::collections::HashSet::new();
    let mut first_time = |p: &Path| {
        p.as_os_str() == "-"
            || seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
    };
    for input in inputs {
        let found = walk::expand(input)?;
        if found.explicit.is_none() && found.walked.is_empty() {
            bail!(
                "{}: no .json, .yaml, .yml, .template or .tfstate file in this folder",
                input.display()
            );
        }
        if let Some(file) = found.explicit.as_deref().filter(|f| first_time(f)) {
            let (name, bytes) = walk::read_input(file)?;
            let Ok(text) = String::from_utf8(bytes) else {
                bail!("{name}:1: not UTF-8 text");
            };
            match read_document(&name, &text)? {
                Some(doc) => add(&mut out, &name, doc, policy, as_of),
                None => bail!(
                    "{name}:1: not a Terraform plan or state (`terraform show -json`) or a CloudFormation template"
                ),
            }
        }
        for file in found.walked.iter().filter(|f| first_time(f)) {
            let (name, bytes) = walk::read_input(file)?;
            let Ok(text) = String::from_utf8(bytes) else {
                out.not_iac.push(name);
                continue;
            };
            match read_document(&name, &text) {
                Ok(Some(doc)) => add(&mut out, &name, doc, policy, as_of),
                Ok(None) => out.not_iac.push(name),
                Err(e) if looks_like_iac(&text) => return Err(e),
                Err(e) => {
                    tracing::debug!("skipping {name}: {e}");
                    out.not_iac.push(name);
                }
            }
        }
    }
    out.findings.sort_by(|a, b| {
        (
            a.status.rank(),
            a.severity,
            &a.source_file,
            &a.resource,
            a.rule_id,
        )
            .cmp(&(
                b.status.rank(),
                b.severity,
                &b.source_file,
                &b.resource,
                b.rule_id,
            ))
    });
    Ok(out)
}

fn add(out: &mut Scan, name: &str, doc: Document, policy: &Policy, as_of: DateTime<Utc>) {
    out.files.push((name.to_string(), doc.kind));
    for r in &doc.resources {
        out.resources += 1;
        let findings = judge::judge(r, policy, as_of);
        if findings.is_empty() {
            out.compliant.push(r.address.clone());
        }
        out.findings.extend(findings);
    }
    out.skipped.extend(doc.skipped);
}

/// A file that fails to parse is only an error in a folder walk when it looks
/// like it was meant to be IaC; other broken YAML (Helm charts, ...) is not
/// ours to judge.
fn looks_like_iac(text: &str) -> bool {
    [
        "AWSTemplateFormatVersion",
        "AWS::",
        "\"resource_changes\"",
        "\"terraform_version\"",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// Parses one file and reads its KMS resources. `Ok(None)`: valid JSON or
/// YAML that is neither a Terraform plan or state nor a CloudFormation
/// template. Errors are one line: `FILE:LINE: problem`.
pub fn read_document(name: &str, text: &str) -> Result<Option<Document>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start().chars().next();
    let yaml_ext = [".yaml", ".yml"].iter().any(|e| name.ends_with(e));
    if matches!(first, Some('{') | Some('[')) {
        match top_level(text) {
            Ok(Some(top)) => return read_json(name, text, &top),
            Ok(None) => return Ok(None),
            // A YAML flow mapping can start with `{` too.
            Err(_) if yaml_ext => {}
            Err(e) => bail!(
                "{name}:{}:{}: not valid JSON: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        }
    }
    let parsed = yaml::parse(text, cloudformation::wants_line).map_err(|e| {
        anyhow::anyhow!(
            "{name}:{}:{}: not valid YAML: {}",
            e.line,
            e.column,
            e.message
        )
    })?;
    let [doc] = parsed.docs.as_slice() else {
        // Several documents (Kubernetes manifests) or none: not a template.
        return Ok(None);
    };
    if !cloudformation::is_template(doc) {
        return Ok(None);
    }
    let (resources, skipped) =
        cloudformation::read(name, Dialect::CloudFormationYaml, doc, &parsed.lines)?;
    Ok(Some(Document {
        kind: DocKind::CloudFormation,
        resources,
        skipped,
    }))
}

/// A JSON object's members, each left as its raw text: a plan of a hundred
/// thousand resources is then read without building a tree of every one,
/// only of its KMS resources.
pub type Top<'a> = BTreeMap<String, &'a RawValue>;

/// `Ok(None)`: valid JSON that is not an object.
fn top_level(text: &str) -> Result<Option<Top<'_>>, serde_json::Error> {
    match serde_json::from_str::<Top>(text) {
        Ok(top) => Ok(Some(top)),
        Err(e) if e.is_data() => {
            serde_json::from_str::<serde::de::IgnoredAny>(text)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn read_json(name: &str, text: &str, top: &Top) -> Result<Option<Document>> {
    if terraform::is_plan(top) {
        let (resources, skipped) = terraform::read_plan(name, text, top)?;
        return Ok(Some(Document {
            kind: DocKind::TerraformPlan,
            resources,
            skipped,
        }));
    }
    if terraform::is_state(top) {
        let (resources, skipped) = terraform::read_state(name, text, top)?;
        return Ok(Some(Document {
            kind: DocKind::TerraformState,
            resources,
            skipped,
        }));
    }
    if !top.contains_key("Resources") && !top.contains_key("AWSTemplateFormatVersion") {
        return Ok(None);
    }
    // CloudFormation caps a template at 1 MB: the whole tree is cheap.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{name}:{}:{}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })?;
    if cloudformation::is_template(&value) {
        let lines = json_lines::lines(text, cloudformation::wants_line, |p| p.len() < 4);
        let (resources, skipped) =
            cloudformation::read(name, Dialect::CloudFormationJson, &value, &lines)?;
        return Ok(Some(Document {
            kind: DocKind::CloudFormation,
            resources,
            skipped,
        }));
    }
    Ok(None)
}

/// serde_json appends " at line L column C"; the message already leads with it.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Strings from a file are hostile, but the frame keeps them as written:
/// the writer layer neutralizes formula cells in CSV (`output::csv_safe`) and
/// control characters wherever a person reads them (`output::display_safe`);
/// Parquet and JSON keep the raw value.
/// The `iac_findings` frame.
pub fn findings_frame(findings: &[IacFinding]) -> Result<DataFrame> {
    let mut b = FrameBuilder::new(IAC_FINDINGS);
    for f in findings {
        b.push(vec![
            (col::SOURCE_FILE, Cell::str(&f.source_file)),
            (col::RESOURCE, Cell::str(&f.resource)),
            (col::RESOURCE_TYPE, Cell::str(&f.resource_type)),
            (col::RULE_ID, Cell::str(f.rule_id)),
            (col::SEVERITY, Cell::str(f.severity.as_str())),
            (col::DETAIL, Cell::str(&f.detail)),
            (col::REMEDIATION, Cell::str(&f.remediation)),
            (col::STATUS, Cell::str(f.status.as_str())),
            (col::LINE, Cell::Int(f.line.map(|l| l as i64))),
        ])?;
    }
    b.finish()
}

/// The display name of a path: as given, with `/` separators.
pub fn display_path(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// A boolean as written: JSON `true`, or the string "true" (CloudFormation
/// parameters are strings; Terraform accepts "true" for a bool too).
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A whole number as written: `365`, `365.0` or "365".
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string value (numbers and booleans as their text).
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
