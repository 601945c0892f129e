//! YAML into the JSON value model, with CloudFormation's short-form
//! intrinsics turned into their long form (`!Ref X` → `{"Ref": "X"}`,
//! `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!If [...]` →
//! `{"Fn::If": [...]}`), so JSON and YAML templates are judged by one reader.
//!
//! Built on saphyr-parser's event stream because it reports each node's tag
//! and position; a tree-building YAML library that drops tags would lose
//! `!Ref`. Plain scalars are typed as CloudFormation's YAML 1.1 types them
//! (`yes`/`no`/`on`/`off` are booleans); keys stay text. CloudFormation also
//! accepts strings such as "true" where a boolean is expected; the reader
//! coerces those.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// A parsed stream.
pub struct Yaml {
    pub docs: Vec<Value>,
    /// Lines (1-based) of the mapping keys and sequence items whose path was
    /// asked for; see [`super::json_lines`] for the path form.
    pub lines: HashMap<Vec<String>, usize>,
}

/// A syntax error: where and what.
#[derive(Debug)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Nesting beyond this is refused: a hostile file cannot exhaust the stack of
/// anything that walks the value afterwards.
const MAX_DEPTH: usize = 256;
/// Aliases are expanded by copying; this caps the copies so a "billion
/// laughs" file cannot exhaust memory.
const MAX_ALIAS_NODES: usize = 1_000_000;

enum Open {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        tag: Option<Tag>,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
        tag: Option<Tag>,
    },
}

struct Builder<'f> {
    stack: Vec<Open>,
    /// The path of each open collection's content.
    path: Vec<String>,
    anchors: HashMap<usize, Value>,
    docs: Vec<Value>,
    lines: HashMap<Vec<String>, usize>,
    wanted: &'f dyn Fn(&[String]) -> bool,
    alias_nodes: usize,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        column,
        message: message.into(),
    }
}

/// Parses every document of `text`.
pub fn parse(text: &str, wanted: impl Fn(&[String]) -> bool) -> Result<Yaml, YamlError> {
    let mut b = Builder {
        stack: Vec::new(),
        path: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        lines: HashMap::new(),
        wanted: &wanted,
        alias_nodes: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            err(
                e.marker().line(),
                e.marker().col() + 1,
                e.info().to_string(),
            )
        })?;
        let line = span.start.line();
        let column = span.start.col() + 1;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => b.anchors.clear(),
            Event::DocumentEnd => {}
            Event::Alias(id) => {
                let v = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| err(line, column, "alias to an unknown anchor"))?;
                b.alias_nodes += count_nodes(&v);
                if b.alias_nodes > MAX_ALIAS_NODES {
                    return Err(err(line, column, "aliases expand to too many nodes"));
                }
                b.value(v, line, column)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| t.into_owned());
                // A key is its text: `on:` in a workflow or `Yes:` in a
                // mapping names a key, not a boolean.
                let v = if b.expects_key() {
                    Value::String(text.to_string())
                } else {
                    scalar(&text, style, tag.as_ref()).map_err(|m| err(line, column, m))?
                };
                let v = match &tag {
                    Some(t) => apply_tag(t, v, true),
                    None => v,
                };
                if anchor != 0 {
                    b.anchors.insert(anchor, v.clone());
                }
                b.value(v, line, column)?;
            }
            Event::SequenceStart(anchor, tag) => {
                b.open(line, column)?;
                b.stack.push(Open::Seq {
                    items: Vec::new(),
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                });
            }
            Event::MappingStart(anchor, tag) => {
                b.open(line, column)?;
                b.stack.push(Open::Map {
                    map: Map::new(),
                    key: None,
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor, tag) = match b.stack.pop() {
                    Some(Open::Seq { items, anchor, tag }) => (Value::Array(items), anchor, tag),
                    Some(Open::Map {
                        map,
                        key: None,
                        anchor,
                        tag,
                    }) => (Value::Object(map), anchor, tag),
                    Some(Open::Map { key: Some(k), .. }) => {
                        return Err(err(line, column, format!("key {k:?} has no value")))
                    }
                    None => return Err(err(line, column, "unbalanced collection end")),
                };
                if !b.stack.is_empty() {
                    b.path.pop();
                }
                let v = match &tag {
                    Some(t) => apply_tag(t, v, false),
                    None => v,
                };
                if anchor != 0 {
                    b.anchors.insert(anchor, v.clone());
                }
                b.value(v, line, column)?;
            }
        }
    }
    Ok(Yaml {
        docs: b.docs,
        lines: b.lines,
    })
}

impl Builder<'_> {
    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { key: None, .. }))
    }

    /// A collection starts: it is a value in its parent (never a key: the
    /// templates kmsrot reads have string keys only).
    fn open(&mut self, line: usize, column: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(line, column, "nested too deeply"));
        }
        let seg = match self.stack.last() {
            None => return Ok(()),
            Some(Open::Seq { items, .. }) => items.len().to_string(),
            Some(Open::Map { key: Some(k), .. }) => k.clone(),
            Some(Open::Map { key: None, .. }) => {
                return Err(err(
                    line,
                    column,
                    "a mapping key must be a plain value, not a collection",
                ))
            }
        };
        self.path.push(seg);
        Ok(())
    }

    /// A finished node goes where its parent expects it.
    fn value(&mut self, v: Value, line: usize, column: usize) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => self.docs.push(v),
            Some(Open::Seq { items, .. }) => {
                let mut p = self.path.clone();
                p.push(items.len().to_string());
                if (self.wanted)(&p) {
                    self.lines.entry(p).or_insert(line);
                }
                items.push(v);
            }
            Some(Open::Map { map, key, .. }) => match key.take() {
                None => {
                    let k = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        Value::Bool(_) | Value::Number(_) => v.to_string(),
                        _ => return Err(err(line, column, "a mapping key must be a plain value")),
                    };
                    if map.contains_key(&k) {
                        // Two values for one property: which one CloudFormation
                        // would keep is not ours to guess.
                        return Err(err(line, column, format!("duplicate key {k:?}")));
                    }
                    let mut p = self.path.clone();
                    p.push(k.clone());
                    if (self.wanted)(&p) {
                        self.lines.entry(p).or_insert(line);
                    }
                    *key = Some(k);
                }
                Some(k) => {
                    map.insert(k, v);
                }
            },
        }
        Ok(())
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

const CORE: &str = "tag:yaml.org,2002:";

/// A scalar, typed by its tag or, untagged and plain, by the core schema.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        if t.handle == CORE {
            return match t.suffix.as_str() {
                "str" => Ok(Value::String(text.into())),
                "null" => Ok(Value::Null),
                "bool" => core_bool(text)
                    .map(Value::Bool)
                    .ok_or_else(|| format!("!!bool {text:?} is not a boolean")),
                "int" => core_int(text)
                    .map(Value::from)
                    .ok_or_else(|| format!("!!int {text:?} is not an integer")),
                "float" => {
                    core_float(text).ok_or_else(|| format!("!!float {text:?} is not a number"))
                }
                _ => Ok(Value::String(text.into())),
            };
        }
        // `!Ref 5`, `!Sub ...`: the operand of an intrinsic is its text.
        return Ok(Value::String(text.into()));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.into()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => {
            if let Some(b) = core_bool(text) {
                Value::Bool(b)
            } else if let Some(i) = core_int(text) {
                Value::from(i)
            } else if let Some(f) = core_float(text) {
                f
            } else {
                Value::String(text.into())
            }
        }
    })
}

/// CloudFormation reads YAML 1.1 ("AWS CloudFormation supports the YAML
/// Version 1.1 specification", template formats guide), whose booleans
/// include yes/no and on/off: `EnableKeyRotation: no` is false, not a string.
fn core_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn core_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(oct) = s.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

fn core_float(s: &str) -> Option<Value> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut chars = body.chars().peekable();
    let mut mantissa = 0;
    while chars.peek().is_some_and(char::is_ascii_digit) {
        chars.next();
        mantissa += 1;
    }
    if chars.peek() == Some(&'.') {
        chars.next();
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
            mantissa += 1;
        }
    }
    if mantissa == 0 {
        return None;
    }
    if matches!(chars.peek(), Some('e') | Some('E')) {
        chars.next();
        if matches!(chars.peek(), Some('-') | Some('+')) {
            chars.next();
        }
        if !chars.peek().is_some_and(char::is_ascii_digit) {
            return None;
        }
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
        }
    }
    if chars.next().is_some() {
        return None;
    }
    // `.inf` and `.nan` have no JSON form; they stay strings.
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// `!Name operand` → the long form CloudFormation documents for it.
fn apply_tag(tag: &Tag, v: Value, scalar: bool) -> Value {
    if tag.handle != "!" {
        return v;
    }
    let name = tag.suffix.as_str();
    match name {
        "Ref" | "Condition" => single(name, v),
        "GetAtt" if scalar => {
            // `!GetAtt Resource.Attribute`: the attribute may itself hold dots.
            let text = v.as_str().unwrap_or_default();
            let parts = match text.split_once('.') {
                Some((r, a)) => vec![Value::from(r), Value::from(a)],
                None => vec![Value::from(text)],
            };
            single("Fn::GetAtt", Value::Array(parts))
        }
        "" => v,
        _ => single(&format!("Fn::{name}"), v),
    }
}

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let y = parse(text, |_| false).unwrap();
        assert_eq!(y.docs.len(), 1, "{text}");
        y.docs.into_iter().next().unwrap()
    }

    #[test]
    fn short_forms_become_long_forms() {
        let v = one("a: !Ref Param\n\
             b: !GetAtt Key.Arn\n\
             c: !Sub 'arn:${AWS::Partition}:x'\n\
             d: !If [IsProd, true, !Ref AWS::NoValue]\n\
             e: !Join ['', [a, !Ref B]]\n\
             f: !Equals [!Ref Env, prod]\n\
             g: !Condition IsProd\n\
             h: !GetAtt [Key, Arn]\n\
             i: !Select [0, !GetAZs '']\n\
             j: !FindInMap [M, !Ref AWS::Region, Days]\n");
        assert_eq!(v["a"], json!({"Ref": "Param"}));
        assert_eq!(v["b"], json!({"Fn::GetAtt": ["Key", "Arn"]}));
        assert_eq!(v["c"], json!({"Fn::Sub": "arn:${AWS::Partition}:x"}));
        assert_eq!(
            v["d"],
            json!({"Fn::If": ["IsProd", true, {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(v["e"], json!({"Fn::Join": ["", ["a", {"Ref": "B"}]]}));
        assert_eq!(v["f"], json!({"Fn::Equals": [{"Ref": "Env"}, "prod"]}));
        assert_eq!(v["g"], json!({"Condition": "IsProd"}));
        assert_eq!(v["h"], json!({"Fn::GetAtt": ["Key", "Arn"]}));
        assert_eq!(v["i"], json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]}));
        assert_eq!(
            v["j"],
            json!({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Days"]})
        );
    }

    #[test]
    fn core_schema_scalars() {
        let v = one("a: true\nb: 'true'\nc: 365\nd: \"365\"\ne: 1.5\nf: ~\ng: !!str 10\nh: yes\ni: 0x10\nj: .inf\nk:\nl: Off\non: 1\n365: x\n");
        assert_eq!(
            v,
            json!({"a": true, "b": "true", "c": 365, "d": "365", "e": 1.5, "f": null,
                   "g": "10", "h": true, "i": 16, "j": ".inf", "k": null, "l": false,
                   "on": 1, "365": "x"})
        );
    }

    #[test]
    fn anchors_lines_and_errors() {
        let y = parse(
            "Base: &b\n  x: 1\nResources:\n  K:\n    Type: T\n    Properties: *b\n  L:\n    - 1\n",
            |p: &[String]| p.first().map(String::as_str) == Some("Resources"),
        )
        .unwrap();
        assert_eq!(y.docs[0]["Resources"]["K"]["Properties"], json!({"x": 1}));
        let at = |p: &[&str]| {
            y.lines
                .get(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .copied()
        };
        assert_eq!(at(&["Resources"]), Some(3));
        assert_eq!(at(&["Resources", "K"]), Some(4));
        assert_eq!(at(&["Resources", "K", "Properties"]), Some(6));
        assert_eq!(at(&["Resources", "L", "0"]), Some(8));
        assert_eq!(at(&["Base"]), None);

        let e = parse("a: 1\nb: [1, 2\nc: 3\n", |_| false).err().unwrap();
        assert!(e.line >= 2, "{e:?}");
        let e = parse("a: 1\na: 2\n", |_| false).err().unwrap();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("duplicate"), "{e:?}");
        let e = parse("? [a]\n: 1\n", |_| false).err().unwrap();
        assert_eq!(e.line, 1);
        assert_eq!(parse("a: 1\n---\nb: 2\n", |_| false).unwrap().docs.len(), 2);
        assert!(parse("", |_| false).unwrap().docs.len() <= 1);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = parse(&text, |_| false).err().unwrap();
        assert!(e.message.contains("too many"), "{e:?}");
    }
}
