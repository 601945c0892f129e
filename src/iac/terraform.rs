//! Terraform: plans and state as `terraform show -json` prints them, and the
//! raw `terraform.tfstate`.
//!
//! A plan is read from `resource_changes`: each KMS resource instance (module
//! path and `count`/`for_each` key in its address) with its planned `after`
//! values and `after_unknown` marks. Deletions, deposed objects and `forget`
//! are not judged: they leave no key managed by this code. Everything else
//! (create, update, replace, no-op, import) is judged on `after`, since that
//! is the key the code leaves behind.

use std::cell::OnceCell;
use std::collections::HashMap;

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{
    as_bool, as_int, as_text, json_lines, kms_type, Dialect, Fact, KeyResource, Skipped, Top,
};
use crate::policy::strip_instance_keys;

/// A plan: `terraform show -json plan.out`.
pub fn is_plan(top: &Top) -> bool {
    top.contains_key("resource_changes")
        || (top.contains_key("planned_values") && top.contains_key("format_version"))
}

/// State: `terraform show -json` (`values.root_module`), or the raw state
/// file (`version` 4, `resources[].instances[]`).
pub fn is_state(top: &Top) -> bool {
    if is_plan(top) {
        return false;
    }
    let show = top.contains_key("format_version")
        && (top.contains_key("values") || top.contains_key("terraform_version"));
    let raw = top
        .get("version")
        .is_some_and(|v| v.get().starts_with(|c: char| c.is_ascii_digit()))
        && top.contains_key("terraform_version");
    show || raw
}

/// HashiCorp's JSON output format promises to bump the major version on an
/// incompatible change and asks readers to reject majors they do not know.
fn check_format_version(file: &str, top: &Top) -> Result<()> {
    let Some(fv) = top.get("format_version") else {
        return Ok(());
    };
    let fv: Value = serde_json::from_str(fv.get()).unwrap_or(Value::Null);
    let text = fv
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| fv.to_string());
    let major = text.split('.').next().unwrap_or_default();
    if major != "0" && major != "1" {
        bail!("{file}:1: format_version {text} is not one kmsrot reads (0.x and 1.x)");
    }
    Ok(())
}

/// The few members that tell whether an entry is a KMS resource; the rest of
/// the entry is only parsed when it is.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    mode: Value,
    #[serde(default)]
    address: Value,
    #[serde(default, rename = "type")]
    rtype: Value,
    #[serde(default)]
    name: Value,
    #[serde(default)]
    module: Value,
}

impl Head {
    fn parse(raw: &RawValue) -> Option<Head> {
        serde_json::from_str(raw.get()).ok()
    }

    fn is_data(&self) -> bool {
        self.mode.as_str() == Some("data")
    }

    /// Type and name, from their members or from the address.
    fn type_and_name(&self) -> Option<(String, String)> {
        let address = self.address.as_str();
        match self.rtype.as_str() {
            Some(t) => Some((
                t.to_string(),
                self.name
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| address.and_then(|a| type_and_name(a).map(|(_, n)| n)))
                    .unwrap_or_default(),
            )),
            None => type_and_name(address?),
        }
    }
}

/// A list member as raw entries; `Ok(None)` when absent or null.
fn raw_list(raw: Option<&RawValue>) -> Result<Option<Vec<&RawValue>>, ()> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        Some(r) => serde_json::from_str(r.get()).map(Some).map_err(|_| ()),
    }
}

fn full(raw: &RawValue) -> Value {
    // Already validated as part of the file.
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

fn plan_lines(p: &[String]) -> bool {
    p.len() == 2 && p[0] == "resource_changes"
}

/// Reads the KMS resources of a plan.
pub fn read_plan(file: &str, text: &str, top: &Top) -> Result<(Vec<KeyResource>, Vec<Skipped>)> {
    check_format_version(file, top)?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    // Terraform omits the list when nothing is managed.
    let Some(changes) = raw_list(top.get("resource_changes").copied())
        .map_err(|_| anyhow::anyhow!("{file}:1: resource_changes is not a list"))?
    else {
        return Ok((out, skipped));
    };
    let mut lines: Option<HashMap<Vec<String>, usize>> = None;
    let mut line_of = |i: usize| -> Option<usize> {
        lines
            .get_or_insert_with(|| {
                json_lines::lines(text, plan_lines, |p| {
                    p.is_empty() || (p.len() == 1 && p[0] == "resource_changes")
                })
            })
            .get(&vec!["resource_changes".to_string(), i.to_string()])
            .copied()
    };
    let config_cell: OnceCell<Option<Value>> = OnceCell::new();
    for (i, raw) in changes.iter().enumerate() {
        let Some(head) = Head::parse(raw) else {
            bail!(
                "{file}:{}: resource_changes[{i}] is not an object",
                line_of(i).unwrap_or(1)
            );
        };
        if head.is_data() {
            continue;
        }
        let Some((rtype, rname)) = head.type_and_name() else {
            continue;
        };
        if kms_type(&rtype).is_none() {
            continue;
        }
        let rc = full(raw);
        let Some(obj) = rc.as_object() else {
            continue;
        };
        let config = config_cell
            .get_or_init(|| top.get("configuration").map(|c| full(c)))
            .as_ref();
        let address = obj.get("address").and_then(Value::as_str);
        let line = line_of(i);
        let at = line.unwrap_or(1);
        let Some(address) = address else {
            bail!("{file}:{at}: resource_changes[{i}] ({rtype}) has no address");
        };
        let skip = |reason: String| Skipped {
            source_file: file.into(),
            address: address.into(),
            resource_type: rtype.clone(),
            reason,
        };
        if obj.get("deposed").is_some_and(|d| !d.is_null()) {
            skipped.push(skip(
                "a deposed object (create_before_destroy) being destroyed".into(),
            ));
            continue;
        }
        let Some(change) = obj.get("change").and_then(Value::as_object) else {
            bail!("{file}:{at}: {address}: no change object");
        };
        let actions: Vec<&str> = match change.get("actions").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => {
                match a.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
                    Some(a) => a,
                    None => bail!("{file}:{at}: {address}: change.actions holds a non-string"),
                }
            }
            _ => bail!("{file}:{at}: {address}: change.actions is missing or empty"),
        };
        let has = |a: &str| actions.contains(&a);
        if actions.iter().all(|a| *a == "delete") {
            skipped.push(skip("being deleted by this plan".into()));
            continue;
        }
        if has("forget") && !has("create") {
            skipped.push(skip(
                "removed from the Terraform state without being destroyed (forget); `kmsrot assess` judges the key in AWS".into(),
            ));
            continue;
        }
        if actions == ["read"] {
            skipped.push(skip("only read by this plan".into()));
            continue;
        }
        let importing = change.get("importing").is_some_and(|v| !v.is_null());
        let action = if has("create") && (has("delete") || has("forget")) {
            "replace"
        } else if has("create") {
            "create"
        } else if importing {
            "import"
        } else if has("update") {
            "update"
        } else if has("no-op") {
            "no-op"
        } else {
            // A future action name: the planned values are still the key's.
            "change"
        };
        let after = match change.get("after") {
            Some(Value::Object(a)) => a,
            _ => bail!(
                "{file}:{at}: {address}: change.after is not an object for actions {:?}",
                actions
            ),
        };
        let unknown = change.get("after_unknown").unwrap_or(&Value::Null);
        let Some(mut r) = KeyResource::new(
            file,
            address.to_string(),
            &rtype,
            Dialect::Terraform,
            action,
        ) else {
            continue;
        };
        r.line = line;
        let module = obj
            .get("module_address")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| module_of(address));
        let expr = |attr: &str| config_expression(config, &module, &rtype, &rname, attr);
        let get = |attr: &str| {
            if unknown_at(unknown, attr) {
                return Attr::Unknown;
            }
            match after.get(attr) {
                None | Some(Value::Null) => Attr::Absent,
                Some(v) => Attr::Value(v),
            }
        };
        fill(&mut r, &get, &expr);
        out.push(r);
    }
    Ok((out, skipped))
}

/// One attribute of a Terraform object.
enum Attr<'a> {
    Absent,
    Value(&'a Value),
    Unknown,
}

/// What the configuration says about an attribute.
enum Expr<'a> {
    /// The configuration is not in the file, or the resource is not in it.
    NoConfig,
    NotSet,
    Set(&'a Value),
}

/// Reads the key's attributes into `r`.
fn fill<'a>(r: &mut KeyResource, get: &dyn Fn(&str) -> Attr<'a>, expr: &dyn Fn(&str) -> Expr<'a>) {
    let n = r.names;
    let unknown_why = |attr: &str| -> String {
        match expr(attr) {
            Expr::Set(e) => match references(e) {
                Some(refs) => format!("{attr} is set from {refs}, known only after apply"),
                None => format!("{attr} is known only after apply"),
            },
            _ => format!("{attr} is known only after apply"),
        }
    };
    let fact = |attr: &str, conv: fn(&Value) -> Option<FactValue>| -> Fact<FactValue> {
        match get(attr) {
            Attr::Absent => Fact::Absent,
            Attr::Unknown => Fact::Unknown(unknown_why(attr)),
            Attr::Value(v) => match conv(v) {
                Some(x) => Fact::Known(x),
                None => Fact::Unknown(format!("{attr} is {v}, which is not a valid value")),
            },
        }
    };
    r.rotation = bool_fact(fact(n.rotation, |v| as_bool(v).map(FactValue::Bool)));
    r.period = match fact(n.period, |v| as_int(v).map(FactValue::Int)) {
        // The provider's zero value when rotation is off: never a period
        // anyone set (its schema accepts 90..=2560 only).
        Fact::Known(FactValue::Int(0)) => Fact::Absent,
        Fact::Known(FactValue::Int(p)) => Fact::Known(p),
        // rotation_period_in_days is Optional+Computed: unset, the plan shows
        // it unknown and AWS applies its default.
        Fact::Unknown(why) => match expr(n.period) {
            Expr::Set(_) => Fact::Unknown(why),
            Expr::NotSet | Expr::NoConfig => Fact::Absent,
        },
        _ => Fact::Absent,
    };
    r.key_spec = n
        .spec
        .iter()
        .map(|a| text_fact(fact(a, |v| as_text(v).map(FactValue::Text))))
        .find(|f| *f != Fact::Absent)
        .unwrap_or(Fact::Absent);
    r.key_usage = text_fact(fact(n.usage, |v| as_text(v).map(FactValue::Text)));
    if let Some(o) = n.origin {
        r.origin = text_fact(fact(o, |v| as_text(v).map(FactValue::Text)));
    }
    r.custom_key_store = n
        .custom_key_store
        .iter()
        .map(|a| text_fact(fact(a, |v| as_text(v).map(FactValue::Text))))
        .find(|f| *f != Fact::Absent)
        .unwrap_or(Fact::Absent);
    r.enabled = bool_fact(fact(n.enabled, |v| as_bool(v).map(FactValue::Bool)));
    r.multi_region = bool_fact(fact(n.multi_region, |v| as_bool(v).map(FactValue::Bool)));
}

#[derive(Debug, Clone, PartialEq)]
enum FactValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

fn bool_fact(f: Fact<FactValue>) -> Fact<bool> {
    match f {
        Fact::Known(FactValue::Bool(b)) => Fact::Known(b),
        Fact::Unknown(w) => Fact::Unknown(w),
        _ => Fact::Absent,
    }
}

/// The provider stores an unset optional string as "".
fn text_fact(f: Fact<FactValue>) -> Fact<String> {
    match f {
        Fact::Known(FactValue::Text(s)) if !s.is_empty() => Fact::Known(s),
        Fact::Unknown(w) => Fact::Unknown(w),
        _ => Fact::Absent,
    }
}

/// `after_unknown` mirrors `after` with `true` where a value is unknown; a
/// bare `true` means the whole object is.
fn unknown_at(unknown: &Value, attr: &str) -> bool {
    match unknown {
        Value::Bool(b) => *b,
        Value::Object(m) => m.get(attr).is_some_and(|v| v == &Value::Bool(true)),
        _ => false,
    }
}

/// `module.a["x"].aws_kms_key.k[0]` → (`aws_kms_key`, `k`).
fn type_and_name(address: &str) -> Option<(String, String)> {
    let plain = strip_instance_keys(address);
    let mut parts = plain.rsplit('.');
    let name = parts.next()?;
    let ty = parts.next()?;
    (!ty.is_empty() && !name.is_empty()).then(|| (ty.to_string(), name.to_string()))
}

/// The module part of an address: `module.a["x"].aws_kms_key.k` → `module.a["x"]`.
fn module_of(address: &str) -> String {
    let plain = strip_instance_keys(address);
    let segs: Vec<&str> = plain.split('.').collect();
    if segs.len() <= 2 {
        return String::new();
    }
    segs[..segs.len() - 2].join(".")
}

/// The configuration expression of `attr` on the resource, found through the
/// plan's `configuration` (root module, then `module_calls` by name).
fn config_expression<'a>(
    config: Option<&'a Value>,
    module: &str,
    rtype: &str,
    rname: &str,
    attr: &str,
) -> Expr<'a> {
    let Some(mut m) = config.and_then(|c| c.get("root_module")) else {
        return Expr::NoConfig;
    };
    let plain = strip_instance_keys(module);
    let segs: Vec<&str> = plain.split('.').filter(|s| !s.is_empty()).collect();
    for pair in segs.chunks(2) {
        let [kw, name] = pair else {
            return Expr::NoConfig;
        };
        if *kw != "module" {
            return Expr::NoConfig;
        }
        match m
            .get("module_calls")
            .and_then(|c| c.get(*name))
            .and_then(|c| c.get("module"))
        {
            Some(next) => m = next,
            None => return Expr::NoConfig,
        }
    }
    let wanted = format!("{rtype}.{rname}");
    let Some(res) = m.get("resources").and_then(Value::as_array).and_then(|rs| {
        rs.iter()
            .find(|r| r.get("address").and_then(Value::as_str) == Some(&wanted))
    }) else {
        return Expr::NoConfig;
    };
    match res.get("expressions").and_then(|e| e.get(attr)) {
        Some(e) => Expr::Set(e),
        None => Expr::NotSet,
    }
}

fn references(expr: &Value) -> Option<String> {
    let refs: Vec<&str> = expr
        .get("references")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Terraform lists `var.x` and `aws_x.y.attr` then its prefixes; the
    // longest come first, which are the ones worth naming.
    let first: Vec<&str> = refs.into_iter().take(2).collect();
    (!first.is_empty()).then(|| first.join(", "))
}

/// Reads the KMS resources of a state, in either form.
pub fn read_state(file: &str, text: &str, top: &Top) -> Result<(Vec<KeyResource>, Vec<Skipped>)> {
    check_format_version(file, top)?;
    let mut lines: Option<HashMap<Vec<String>, usize>> = None;
    let mut line_of = |p: &[String]| -> Option<usize> {
        lines
            .get_or_insert_with(|| json_lines::lines(text, state_lines, state_descend))
            .get(p)
            .copied()
    };
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    if top.contains_key("values") || top.contains_key("format_version") {
        #[derive(Deserialize)]
        struct Values<'a> {
            #[serde(borrow, default)]
            root_module: Option<&'a RawValue>,
        }
        let root = match top.get("values") {
            None => None,
            Some(v) => serde_json::from_str::<Option<Values>>(v.get())
                .map_err(|_| anyhow::anyhow!("{file}:1: values is not an object"))?
                .and_then(|v| v.root_module),
        };
        if let Some(root) = root {
            let path = ["values", "root_module"].map(String::from);
            show_module(file, root, &path, &mut line_of, &mut out, 0)?;
        }
    } else {
        raw_state(file, top, &mut line_of, &mut out, &mut skipped)?;
    }
    Ok((out, skipped))
}

fn state_lines(p: &[String]) -> bool {
    let n = p.len();
    n >= 2 && p[n - 2] == "resources"
}

/// Into modules and their lists, never into a resource's attributes.
fn state_descend(p: &[String]) -> bool {
    let n = p.len();
    !(n >= 2 && (p[n - 2] == "resources" || p[n - 2] == "instances"))
}

fn show_module(
    file: &str,
    module: &RawValue,
    path: &[String],
    line_of: &mut dyn FnMut(&[String]) -> Option<usize>,
    out: &mut Vec<KeyResource>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        bail!("{file}:1: modules nested more than 64 deep");
    }
    #[derive(Deserialize)]
    struct Module<'a> {
        #[serde(borrow, default)]
        resources: Option<Vec<&'a RawValue>>,
        #[serde(borrow, default)]
        child_modules: Option<Vec<&'a RawValue>>,
    }
    let Ok(module) = serde_json::from_str::<Module>(module.get()) else {
        bail!(
            "{file}:{}: {} is not a module object",
            line_of(path).unwrap_or(1),
            path.join(".")
        );
    };
    for (i, raw) in module.resources.unwrap_or_default().iter().enumerate() {
        let mut p = path.to_vec();
        p.extend(["resources".to_string(), i.to_string()]);
        let Some(head) = Head::parse(raw) else {
            bail!(
                "{file}:{}: {} is not an object",
                line_of(&p).unwrap_or(1),
                p.join(".")
            );
        };
        if head.is_data() {
            continue;
        }
        let (Some(address), Some((rtype, _))) = (head.address.as_str(), head.type_and_name())
        else {
            continue;
        };
        let Some(mut r) = KeyResource::new(
            file,
            address.to_string(),
            &rtype,
            Dialect::Terraform,
            "state",
        ) else {
            continue;
        };
        let line = line_of(&p);
        let res = full(raw);
        let Some(values) = res.get("values").and_then(Value::as_object) else {
            bail!(
                "{file}:{}: {address} has no values object",
                line.unwrap_or(1)
            );
        };
        r.line = line;
        let get = |attr: &str| match values.get(attr) {
            None | Some(Value::Null) => Attr::Absent,
            Some(v) => Attr::Value(v),
        };
        fill(&mut r, &get, &|_: &str| Expr::NoConfig);
        out.push(r);
    }
    for (j, child) in module.child_modules.unwrap_or_default().iter().enumerate() {
        let mut p = path.to_vec();
        p.extend(["child_modules".to_string(), j.to_string()]);
        show_module(file, child, &p, line_of, out, depth + 1)?;
    }
    Ok(())
}

fn raw_state(
    file: &str,
    top: &Top,
    line_of: &mut dyn FnMut(&[String]) -> Option<usize>,
    out: &mut Vec<KeyResource>,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    // Version 4 is Terraform 0.12 and later; 3 and older keep resources per
    // module in another shape, and reading none from them would look clean.
    let version = top.get("version").map(|v| v.get().to_string());
    if version.as_deref() != Some("4") {
        bail!(
            "{file}:1: state version {} is not one kmsrot reads (4, Terraform 0.12 and later); use `terraform show -json`",
            version.as_deref().unwrap_or("?")
        );
    }
    let Some(resources) = raw_list(top.get("resources").copied())
        .map_err(|_| anyhow::anyhow!("{file}:1: resources is not a list"))?
    else {
        return Ok(());
    };
    for (i, raw) in resources.iter().enumerate() {
        let p = vec!["resources".to_string(), i.to_string()];
        let Some(head) = Head::parse(raw) else {
            bail!(
                "{file}:{}: resources[{i}] is not an object",
                line_of(&p).unwrap_or(1)
            );
        };
        if head.is_data() {
            continue;
        }
        let (Some(rtype), Some(name)) = (head.rtype.as_str(), head.name.as_str()) else {
            continue;
        };
        if kms_type(rtype).is_none() {
            continue;
        }
        let line = line_of(&p);
        let at = line.unwrap_or(1);
        let module = head.module.as_str().unwrap_or_default();
        let base = if module.is_empty() {
            format!("{rtype}.{name}")
        } else {
            format!("{module}.{rtype}.{name}")
        };
        let res = full(raw);
        let Some(instances) = res.get("instances").and_then(Value::as_array) else {
            bail!("{file}:{at}: {base} has no instances list");
        };
        for inst in instances {
            let address = match inst.get("index_key") {
                None | Some(Value::Null) => base.clone(),
                Some(Value::Number(n)) => format!("{base}[{n}]"),
                Some(Value::String(s)) => format!("{base}[{}]", Value::from(s.as_str())),
                Some(other) => bail!("{file}:{at}: {base} has index_key {other}"),
            };
            if inst.get("deposed").is_some_and(|d| !d.is_null()) {
                skipped.push(Skipped {
                    source_file: file.into(),
                    address,
                    resource_type: rtype.into(),
                    reason: "a deposed object (create_before_destroy) left to destroy".into(),
                });
                continue;
            }
            let Some(attrs) = inst.get("attributes").and_then(Value::as_object) else {
                bail!("{file}:{at}: {address} has no attributes object");
            };
            let Some(mut r) = KeyResource::new(file, address, rtype, Dialect::Terraform, "state")
            else {
                continue;
            };
            r.line = line;
            let get = |attr: &str| match attrs.get(attr) {
                None | Some(Value::Null) => Attr::Absent,
                Some(v) => Attr::Value(v),
            };
            fill(&mut r, &get, &|_: &str| Expr::NoConfig);
            out.push(r);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_module_type_and_name() {
        assert_eq!(
            type_and_name(r#"module.a["x.y"].aws_kms_key.k[0]"#),
            Some(("aws_kms_key".into(), "k".into()))
        );
        assert_eq!(
            module_of(r#"module.a["x.y"].module.b[2].aws_kms_key.k[0]"#),
            "module.a.module.b"
        );
        assert_eq!(module_of("aws_kms_key.k"), "");
        assert_eq!(type_and_name("k"), None);
    }

    #[test]
    fn unknown_marks() {
        let u = serde_json::json!({"enable_key_rotation": true, "tags": {}});
        assert!(unknown_at(&u, "enable_key_rotation"));
        assert!(!unknown_at(&u, "tags"));
        assert!(!unknown_at(&u, "missing"));
        assert!(unknown_at(&Value::Bool(true), "anything"));
        assert!(!unknown_at(&Value::Null, "anything"));
    }
}
