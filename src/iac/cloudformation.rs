//! CloudFormation templates: `AWS::KMS::Key` and `AWS::KMS::ReplicaKey`
//! resources, with intrinsic functions evaluated as far as the template alone
//! allows.
//!
//! The template is judged as it would deploy with its parameters' defaults: a
//! `Ref` to a parameter is its `Default` (no default, or an SSM parameter
//! type, makes the value unknown), conditions are evaluated from those, and
//! `Fn::If`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split` and
//! `Fn::FindInMap` are computed. Anything only a deployment knows (`GetAtt`,
//! `ImportValue`, pseudo parameters such as `AWS::Region`, dynamic references)
//! is unknown, and so is what depends on it.

use std::collections::HashMap;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

use super::{Dialect, Fact, KeyResource, Skipped};

/// A template: a `Resources` mapping of typed resources, or the format
/// version marker.
pub fn is_template(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    if obj.contains_key("AWSTemplateFormatVersion") {
        return true;
    }
    // Without the marker: a Resources mapping holding a CloudFormation type
    // (`AWS::...`, `Custom::...`, a registry `Org::Service::Type`).
    match obj.get("Resources") {
        Some(Value::Object(res)) => res.values().any(|r| {
            r.get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("::"))
        }),
        _ => false,
    }
}

/// The lines a reader wants: each resource, and each of its properties.
pub fn wants_line(p: &[String]) -> bool {
    p.first().map(String::as_str) == Some("Resources")
        && (p.len() == 2 || (p.len() == 4 && p[2] == "Properties"))
}

/// Reads the KMS resources of a template.
pub fn read(
    file: &str,
    dialect: Dialect,
    template: &Value,
    lines: &HashMap<Vec<String>, usize>,
) -> Result<(Vec<KeyResource>, Vec<Skipped>)> {
    let line_of = |p: &[&str]| -> Option<usize> {
        lines
            .get(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .copied()
    };
    let resources = match template.get("Resources") {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Object(r)) => r,
        Some(_) => bail!(
            "{file}:{}: Resources must be a mapping of logical ids to resources",
            line_of(&["Resources"]).unwrap_or(1)
        ),
    };
    let reader = Reader {
        file,
        dialect,
        ctx: Ctx::new(template),
        lines: &line_of,
    };
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (id, res) in resources {
        let line = line_of(&["Resources", id]);
        if let Some(loop_name) = id.strip_prefix("Fn::ForEach::") {
            // AWS::LanguageExtensions: [identifier, collection, {LogicalIdTemplate: resource}].
            // The copies are judged once through their template; what depends
            // on the loop variable is unknown.
            let fragment = res
                .as_array()
                .and_then(|a| a.get(2))
                .and_then(Value::as_object);
            let Some(fragment) = fragment else {
                bail!(
                    "{file}:{}: {id} is not [identifier, collection, resources]",
                    line.unwrap_or(1)
                );
            };
            for (tmpl, inner) in fragment {
                let note = format!("One of the resources Fn::ForEach::{loop_name} generates.");
                reader.resource(tmpl, inner, line, None, Some(note), &mut out, &mut skipped)?;
            }
            continue;
        }
        reader.resource(id, res, line, Some(id), None, &mut out, &mut skipped)?;
    }
    Ok((out, skipped))
}

struct Reader<'a, 't> {
    file: &'a str,
    dialect: Dialect,
    ctx: Ctx<'t>,
    lines: &'a dyn Fn(&[&str]) -> Option<usize>,
}

impl Reader<'_, '_> {
    /// One resource; `lines_id` is its logical id in `Resources` when its
    /// properties' lines can be looked up there.
    #[allow(clippy::too_many_arguments)]
    fn resource(
        &self,
        id: &str,
        res: &Value,
        line: Option<usize>,
        lines_id: Option<&str>,
        note: Option<String>,
        out: &mut Vec<KeyResource>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        let file = self.file;
        let ctx = &self.ctx;
        let Some(ty) = res.get("Type").and_then(Value::as_str) else {
            bail!("{file}:{}: resource {id} has no Type", line.unwrap_or(1));
        };
        let Some(mut r) = KeyResource::new(file, id.to_string(), ty, self.dialect, "template")
        else {
            return Ok(());
        };
        r.line = line;
        r.note = note;
        if let Some(cond) = res.get("Condition") {
            let name = cond.as_str().unwrap_or_default();
            match ctx.condition(name, 0) {
                Some(false) => {
                    skipped.push(Skipped {
                        source_file: file.into(),
                        address: id.into(),
                        resource_type: ty.into(),
                        reason: format!(
                            "not created: its condition {name} is false with the parameters' defaults"
                        ),
                    });
                    return Ok(());
                }
                Some(true) => {}
                None => {
                    let when = format!(
                        "Created only when condition {name} holds, which the template alone does not decide."
                    );
                    r.note = Some(match r.note.take() {
                        Some(n) => format!("{n} {when}"),
                        None => when,
                    });
                }
            }
        }
        let props = match res.get("Properties") {
            None => Eval::NoValue,
            Some(p) => ctx.eval(p, 0),
        };
        let get = |name: &str| -> Eval {
            match &props {
                Eval::Known(Value::Object(m)) => match m.get(name) {
                    None => Eval::NoValue,
                    Some(v) => ctx.eval(v, 0),
                },
                Eval::Known(Value::Null) | Eval::NoValue => Eval::NoValue,
                Eval::Known(_) => Eval::Unknown("Properties is not a mapping".into()),
                Eval::Unknown(why) => Eval::Unknown(why.clone()),
            }
        };
        let n = r.names;
        r.rotation = fact(get(n.rotation), n.rotation, super::as_bool);
        r.period = fact(get(n.period), n.period, super::as_int);
        r.key_spec = fact(get(n.spec[0]), n.spec[0], super::as_text);
        r.key_usage = fact(get(n.usage), n.usage, super::as_text);
        if let Some(o) = n.origin {
            r.origin = fact(get(o), o, super::as_text);
        }
        r.enabled = fact(get(n.enabled), n.enabled, super::as_bool);
        r.multi_region = fact(get(n.multi_region), n.multi_region, super::as_bool);
        if let Some(lid) = lines_id {
            r.rotation_line = (self.lines)(&["Resources", lid, "Properties", n.rotation]);
            r.period_line = (self.lines)(&["Resources", lid, "Properties", n.period]);
        }
        out.push(r);
        Ok(())
    }
}

fn fact<T>(e: Eval, name: &str, conv: fn(&Value) -> Option<T>) -> Fact<T> {
    match e {
        Eval::NoValue | Eval::Known(Value::Null) => Fact::Absent,
        Eval::Known(v) => match conv(&v) {
            Some(t) => Fact::Known(t),
            None => Fact::Unknown(format!(
                "{name} is {}, which CloudFormation does not accept here",
                short(&v)
            )),
        },
        Eval::Unknown(why) => Fact::Unknown(why),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// The result of evaluating a template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Eval {
    Known(Value),
    /// `AWS::NoValue`: the property is removed.
    NoValue,
    Unknown(String),
}

/// Intrinsics nest; a template that nests beyond this is refused an answer.
const MAX_DEPTH: usize = 64;

/// What an evaluation may read: parameters, conditions, mappings, resources.
pub struct Ctx<'t> {
    parameters: Option<&'t Map<String, Value>>,
    conditions: Option<&'t Map<String, Value>>,
    mappings: Option<&'t Map<String, Value>>,
    resources: Option<&'t Map<String, Value>>,
}

impl<'t> Ctx<'t> {
    pub fn new(template: &'t Value) -> Ctx<'t> {
        Ctx {
            parameters: template.get("Parameters").and_then(Value::as_object),
            conditions: template.get("Conditions").and_then(Value::as_object),
            mappings: template.get("Mappings").and_then(Value::as_object),
            resources: template.get("Resources").and_then(Value::as_object),
        }
    }

    /// Evaluates `v`. A mapping that is not an intrinsic is returned as is;
    /// its members are evaluated when read.
    pub fn eval(&self, v: &Value, depth: usize) -> Eval {
        if depth > MAX_DEPTH {
            return Eval::Unknown("intrinsic functions nested too deeply".into());
        }
        let d = depth + 1;
        match v {
            Value::String(s) if s.contains("{{resolve:") => Eval::Unknown(format!(
                "{} is a dynamic reference, resolved at deploy",
                short(v)
            )),
            Value::Object(m) if m.len() == 1 => {
                let (name, arg) = m.iter().next().expect("one member, checked above");
                match name.as_str() {
                    "Ref" => self.reference(arg, d),
                    "Fn::If" => self.fn_if(arg, d),
                    "Fn::Sub" => self.fn_sub(arg, d),
                    "Fn::Join" => self.fn_join(arg, d),
                    "Fn::Select" => self.fn_select(arg, d),
                    "Fn::Split" => self.fn_split(arg, d),
                    "Fn::FindInMap" => self.fn_find_in_map(arg, d),
                    "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => {
                        match self.cond_expr(v, d) {
                            Some(b) => Eval::Known(Value::Bool(b)),
                            None => {
                                Eval::Unknown(format!("{name} cannot be decided from the template"))
                            }
                        }
                    }
                    "Fn::GetAtt" => Eval::Unknown(format!(
                        "Fn::GetAtt {} is known only after deploy",
                        getatt_name(arg)
                    )),
                    "Fn::ImportValue" => Eval::Unknown(
                        "Fn::ImportValue reads another stack's export at deploy".into(),
                    ),
                    n if n.starts_with("Fn::") => {
                        Eval::Unknown(format!("{n} is evaluated only by CloudFormation"))
                    }
                    _ => Eval::Known(v.clone()),
                }
            }
            _ => Eval::Known(v.clone()),
        }
    }

    fn reference(&self, arg: &Value, d: usize) -> Eval {
        let Some(name) = arg.as_str() else {
            return Eval::Unknown(format!("Ref to {}", short(arg)));
        };
        if name == "AWS::NoValue" {
            return Eval::NoValue;
        }
        if name.starts_with("AWS::") {
            return Eval::Unknown(format!("pseudo parameter {name} is known only at deploy"));
        }
        if let Some(p) = self.parameters.and_then(|ps| ps.get(name)) {
            let ty = p.get("Type").and_then(Value::as_str).unwrap_or("String");
            if ty.starts_with("AWS::SSM::Parameter::Value") {
                return Eval::Unknown(format!(
                    "parameter {name} is read from SSM Parameter Store at deploy"
                ));
            }
            return match p.get("Default") {
                Some(def) => match self.eval(def, d) {
                    Eval::Known(v) => Eval::Known(v),
                    other => other,
                },
                None => Eval::Unknown(format!(
                    "parameter {name} has no Default; its value comes at deploy"
                )),
            };
        }
        if self.resources.is_some_and(|r| r.contains_key(name)) {
            return Eval::Unknown(format!("Ref to resource {name} is known only after deploy"));
        }
        Eval::Unknown(format!(
            "Ref to {name}, which the template does not declare"
        ))
    }

    fn fn_if(&self, arg: &Value, d: usize) -> Eval {
        let Some([cond, yes, no]) = arg.as_array().map(Vec::as_slice) else {
            return Eval::Unknown("Fn::If needs [condition, value_if_true, value_if_false]".into());
        };
        let name = cond.as_str().unwrap_or_default();
        match self.condition(name, d) {
            Some(true) => self.eval(yes, d),
            Some(false) => self.eval(no, d),
            None => {
                let (a, b) = (self.eval(yes, d), self.eval(no, d));
                if a == b && !matches!(a, Eval::Unknown(_)) {
                    a
                } else {
                    Eval::Unknown(format!(
                        "Fn::If on condition {name}, which the template alone does not decide"
                    ))
                }
            }
        }
    }

    fn fn_sub(&self, arg: &Value, d: usize) -> Eval {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) if a.len() == 2 => match (&a[0], a[1].as_object()) {
                (Value::String(s), Some(m)) => (s.as_str(), Some(m)),
                _ => return Eval::Unknown("Fn::Sub needs a string and a mapping".into()),
            },
            _ => return Eval::Unknown("Fn::Sub needs a string".into()),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let value = match vars.and_then(|m| m.get(name)) {
                Some(v) => self.eval(v, d),
                None if name.contains('.') => {
                    return Eval::Unknown(format!(
                        "Fn::Sub reads ${{{name}}}, known only after deploy"
                    ))
                }
                None => self.reference(&Value::from(name), d),
            };
            match value {
                Eval::Known(v) => match as_string(&v) {
                    Some(s) => out.push_str(&s),
                    None => return Eval::Unknown(format!("Fn::Sub ${{{name}}} is not a string")),
                },
                Eval::NoValue => {}
                Eval::Unknown(why) => return Eval::Unknown(why),
            }
        }
        out.push_str(rest);
        Eval::Known(Value::String(out))
    }

    fn fn_join(&self, arg: &Value, d: usize) -> Eval {
        let Some([delim, list]) = arg.as_array().map(Vec::as_slice) else {
            return Eval::Unknown("Fn::Join needs [delimiter, list]".into());
        };
        let Some(delim) = delim.as_str() else {
            return Eval::Unknown("Fn::Join delimiter is not a string".into());
        };
        let items = match self.list(list, d) {
            Ok(items) => items,
            Err(e) => return e,
        };
        let mut parts = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Eval::Known(v) => match as_string(&v) {
                    Some(s) => parts.push(s),
                    None => return Eval::Unknown("Fn::Join item is not a string".into()),
                },
                Eval::NoValue => {}
                Eval::Unknown(why) => return Eval::Unknown(why),
            }
        }
        Eval::Known(Value::String(parts.join(delim)))
    }

    fn fn_select(&self, arg: &Value, d: usize) -> Eval {
        let Some([index, list]) = arg.as_array().map(Vec::as_slice) else {
            return Eval::Unknown("Fn::Select needs [index, list]".into());
        };
        let index = match self.eval(index, d) {
            Eval::Known(v) => match super::as_int(&v) {
                Some(i) if i >= 0 => i as usize,
                _ => return Eval::Unknown("Fn::Select index is not a number".into()),
            },
            Eval::Unknown(why) => return Eval::Unknown(why),
            Eval::NoValue => return Eval::Unknown("Fn::Select index is AWS::NoValue".into()),
        };
        match self.list(list, d) {
            Ok(items) => items
                .into_iter()
                .nth(index)
                .unwrap_or_else(|| Eval::Unknown("Fn::Select index is past the list".into())),
            Err(e) => e,
        }
    }

    fn fn_split(&self, arg: &Value, d: usize) -> Eval {
        let Some([delim, source]) = arg.as_array().map(Vec::as_slice) else {
            return Eval::Unknown("Fn::Split needs [delimiter, string]".into());
        };
        let (Some(delim), source) = (delim.as_str(), self.eval(source, d)) else {
            return Eval::Unknown("Fn::Split delimiter is not a string".into());
        };
        match source {
            Eval::Known(Value::String(s)) if !delim.is_empty() => {
                Eval::Known(Value::Array(s.split(delim).map(Value::from).collect()))
            }
            Eval::Unknown(why) => Eval::Unknown(why),
            _ => Eval::Unknown("Fn::Split needs a string".into()),
        }
    }

    fn fn_find_in_map(&self, arg: &Value, d: usize) -> Eval {
        let Some(args) = arg.as_array() else {
            return Eval::Unknown("Fn::FindInMap needs a list".into());
        };
        if args.len() < 3 {
            return Eval::Unknown("Fn::FindInMap needs [map, top key, second key]".into());
        }
        let mut keys = Vec::with_capacity(3);
        for a in &args[..3] {
            match self.eval(a, d) {
                Eval::Known(v) => match as_string(&v) {
                    Some(s) => keys.push(s),
                    None => return Eval::Unknown("Fn::FindInMap key is not a string".into()),
                },
                Eval::Unknown(why) => return Eval::Unknown(why),
                Eval::NoValue => return Eval::Unknown("Fn::FindInMap key is AWS::NoValue".into()),
            }
        }
        let found = self
            .mappings
            .and_then(|m| m.get(&keys[0]))
            .and_then(|m| m.get(&keys[1]))
            .and_then(|m| m.get(&keys[2]));
        match found {
            Some(v) => self.eval(v, d),
            // AWS::LanguageExtensions' DefaultValue form.
            None => match args.get(3).and_then(|o| o.get("DefaultValue")) {
                Some(def) => self.eval(def, d),
                None => Eval::Unknown(format!(
                    "Fn::FindInMap {}/{}/{} is not in Mappings",
                    keys[0], keys[1], keys[2]
                )),
            },
        }
    }

    /// A list argument: a literal list (items evaluated) or an intrinsic that
    /// yields one.
    fn list(&self, v: &Value, d: usize) -> Result<Vec<Eval>, Eval> {
        match v {
            Value::Array(items) => Ok(items.iter().map(|i| self.eval(i, d)).collect()),
            _ => match self.eval(v, d) {
                Eval::Known(Value::Array(items)) => {
                    Ok(items.iter().map(|i| self.eval(i, d)).collect())
                }
                Eval::Unknown(why) => Err(Eval::Unknown(why)),
                _ => Err(Eval::Unknown("expected a list".into())),
            },
        }
    }

    /// A named condition: `Some` when the template decides it.
    pub fn condition(&self, name: &str, depth: usize) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let expr = self.conditions?.get(name)?;
        self.cond_expr(expr, depth + 1)
    }

    fn cond_expr(&self, v: &Value, depth: usize) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let d = depth + 1;
        let m = v.as_object().filter(|m| m.len() == 1)?;
        let (name, arg) = m.iter().next()?;
        match name.as_str() {
            "Condition" => self.condition(arg.as_str()?, d),
            "Fn::Equals" => {
                let [a, b] = arg.as_array().map(Vec::as_slice)? else {
                    return None;
                };
                match (self.eval(a, d), self.eval(b, d)) {
                    // CloudFormation compares the values as strings.
                    (Eval::Known(a), Eval::Known(b)) => Some(as_string(&a)? == as_string(&b)?),
                    _ => None,
                }
            }
            "Fn::Not" => {
                let [a] = arg.as_array().map(Vec::as_slice)? else {
                    return None;
                };
                self.cond_expr(a, d).map(|b| !b)
            }
            "Fn::And" | "Fn::Or" => {
                let and = name == "Fn::And";
                let mut undecided = false;
                for item in arg.as_array()? {
                    match self.cond_expr(item, d) {
                        Some(b) if b != and => return Some(b),
                        Some(_) => {}
                        None => undecided = true,
                    }
                }
                if undecided {
                    None
                } else {
                    Some(and)
                }
            }
            _ => None,
        }
    }
}

fn getatt_name(arg: &Value) -> String {
    match arg {
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| short(v)))
            .collect::<Vec<_>>()
            .join("."),
        other => short(other),
    }
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "Parameters": {
                "Rotate": {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"]},
                "Days": {"Type": "Number", "Default": 180},
                "Env": {"Type": "String", "Default": "prod"},
                "NoDefault": {"Type": "String"},
                "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/kms/rotate"}
            },
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
                "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": [{"Ref": "NoDefault"}, "x"]}]},
                "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": [{"Ref": "NoDefault"}, "x"]}]},
                "Loop": {"Condition": "Loop"}
            },
            "Mappings": {"Periods": {"prod": {"Days": 90}}},
            "Resources": {"K": {"Type": "AWS::KMS::Key"}}
        })
    }

    #[test]
    fn parameters_conditions_and_functions() {
        let t = template();
        let c = Ctx::new(&t);
        let e = |v: Value| c.eval(&v, 0);
        assert_eq!(e(json!({"Ref": "Rotate"})), Eval::Known(json!("true")));
        assert_eq!(e(json!({"Ref": "Days"})), Eval::Known(json!(180)));
        assert!(
            matches!(e(json!({"Ref": "NoDefault"})), Eval::Unknown(w) if w.contains("no Default"))
        );
        assert!(matches!(e(json!({"Ref": "FromSsm"})), Eval::Unknown(w) if w.contains("SSM")));
        assert!(matches!(e(json!({"Ref": "AWS::Region"})), Eval::Unknown(_)));
        assert!(matches!(e(json!({"Ref": "K"})), Eval::Unknown(w) if w.contains("resource K")));
        assert_eq!(e(json!({"Ref": "AWS::NoValue"})), Eval::NoValue);
        assert_eq!(c.condition("IsProd", 0), Some(true));
        assert_eq!(c.condition("IsDev", 0), Some(false));
        assert_eq!(c.condition("Both", 0), None);
        assert_eq!(c.condition("Either", 0), Some(true));
        assert_eq!(c.condition("Loop", 0), None);
        assert_eq!(
            e(json!({"Fn::If": ["IsProd", true, false]})),
            Eval::Known(json!(true))
        );
        assert_eq!(
            e(json!({"Fn::If": ["IsDev", true, {"Ref": "AWS::NoValue"}]})),
            Eval::NoValue
        );
        assert!(matches!(
            e(json!({"Fn::If": ["Both", true, false]})),
            Eval::Unknown(_)
        ));
        assert_eq!(
            e(json!({"Fn::If": ["Both", 365, 365]})),
            Eval::Known(json!(365))
        );
        assert_eq!(
            e(json!({"Fn::Sub": "${Env}-${!Literal}-${X}"})),
            Eval::Unknown("Ref to X, which the template does not declare".into())
        );
        assert_eq!(
            e(json!({"Fn::Sub": ["${Env}-${D}-${!L}", {"D": {"Ref": "Days"}}]})),
            Eval::Known(json!("prod-180-${L}"))
        );
        assert_eq!(
            e(json!({"Fn::Join": ["", ["1", {"Ref": "Days"}]]})),
            Eval::Known(json!("1180"))
        );
        assert_eq!(
            e(json!({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]})),
            Eval::Known(json!("b"))
        );
        assert_eq!(
            e(json!({"Fn::FindInMap": ["Periods", {"Ref": "Env"}, "Days"]})),
            Eval::Known(json!(90))
        );
        assert!(
            matches!(e(json!({"Fn::GetAtt": ["K", "Arn"]})), Eval::Unknown(w) if w.contains("K.Arn"))
        );
        assert!(matches!(
            e(json!({"Fn::ImportValue": "x"})),
            Eval::Unknown(_)
        ));
        assert!(matches!(e(json!("{{resolve:ssm:/a}}")), Eval::Unknown(_)));
        assert_eq!(e(json!({"Key": "v"})), Eval::Known(json!({"Key": "v"})));
    }

    #[test]
    fn for_each_copies_are_judged_through_their_template() {
        let t = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::LanguageExtensions",
            "Resources": {
                "Fn::ForEach::Tenants": ["Tenant", ["Acme", "Globex"], {
                    "Key${Tenant}": {
                        "Type": "AWS::KMS::Key",
                        "Properties": {"EnableKeyRotation": false, "Description": {"Fn::Sub": "${Tenant}"}}
                    }
                }],
                "Plain": {"Type": "AWS::SQS::Queue"}
            }
        });
        assert!(is_template(&t));
        let (keys, skipped) =
            read("t.json", Dialect::CloudFormationJson, &t, &HashMap::new()).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].address, "Key${Tenant}");
        assert_eq!(keys[0].rotation, Fact::Known(false));
        assert!(keys[0]
            .note
            .as_deref()
            .unwrap()
            .contains("Fn::ForEach::Tenants"));
        let bad = json!({"Resources": {"K": {"Type": "AWS::KMS::Key"}, "X": {"Properties": {}}}});
        let err = read("t.json", Dialect::CloudFormationJson, &bad, &HashMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "t.json:1: resource X has no Type");
        assert!(!is_template(
            &json!({"Resources": {"a": {"Type": "thing"}}})
        ));
    }

    #[test]
    fn deep_nesting_is_unknown_not_a_crash() {
        let mut v = json!(true);
        for _ in 0..200 {
            v = json!({"Fn::If": ["IsProd", v, false]});
        }
        let t = template();
        assert!(matches!(Ctx::new(&t).eval(&v, 0), Eval::Unknown(_)));
    }
}
