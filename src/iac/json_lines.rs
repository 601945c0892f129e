//! Where things are written in a JSON file. serde_json gives values without
//! positions; findings and SARIF results point at lines, so this walks the
//! (already validated) text once and records the line of the paths asked for.
//!
//! A path is the list of object keys and array indices from the root, e.g.
//! `["Resources", "DataKey", "Properties", "EnableKeyRotation"]` or
//! `["resource_changes", "3"]`.

use std::collections::HashMap;

/// Lines (1-based) of the object members and array elements whose path
/// `wanted` accepts. The value at a path `descend` refuses is skipped without
/// decoding its keys, which keeps a pass over a large plan cheap. Stops
/// quietly at anything that is not JSON: the caller parsed the text already,
/// lines are a courtesy.
pub fn lines(
    text: &str,
    wanted: impl Fn(&[String]) -> bool,
    descend: impl Fn(&[String]) -> bool,
) -> HashMap<Vec<String>, usize> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        line: 1,
        path: Vec::new(),
        out: HashMap::new(),
        wanted: &wanted,
        descend: &descend,
    };
    let _ = s.value(0);
    s.out
}

/// serde_json's own nesting limit; deeper input was rejected already.
const MAX_DEPTH: usize = 128;

struct Scanner<'a, F: Fn(&[String]) -> bool, D: Fn(&[String]) -> bool> {
    b: &'a [u8],
    i: usize,
    line: usize,
    path: Vec<String>,
    out: HashMap<Vec<String>, usize>,
    wanted: &'a F,
    descend: &'a D,
}

impl<F: Fn(&[String]) -> bool, D: Fn(&[String]) -> bool> Scanner<'_, F, D> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return,
            }
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let open = *self.b.get(self.i)?;
        if matches!(open, b'{' | b'[') && !(self.descend)(&self.path) {
            return self.skip();
        }
        match open {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(|_| ()),
            _ => {
                while let Some(&c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        loop {
            self.ws();
            match *self.b.get(self.i)? {
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => {
                    self.i += 1;
                    continue;
                }
                b'"' => {}
                _ => return None,
            }
            let line = self.line;
            let key = self.string()?;
            self.ws();
            if *self.b.get(self.i)? != b':' {
                return None;
            }
            self.i += 1;
            self.path.push(key);
            self.record(line);
            let r = self.value(depth + 1);
            self.path.pop();
            r?;
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        let mut index = 0usize;
        loop {
            self.ws();
            match *self.b.get(self.i)? {
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            self.path.push(index.to_string());
            self.record(self.line);
            let r = self.value(depth + 1);
            self.path.pop();
            r?;
            index += 1;
        }
    }

    /// Skips one object or array, counting its lines.
    fn skip(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match *self.b.get(self.i)? {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                b'\n' => self.line += 1,
                b'"' => {
                    self.i += 1;
                    loop {
                        match *self.b.get(self.i)? {
                            b'\\' => self.i += 1,
                            b'"' => break,
                            _ => {}
                        }
                        self.i += 1;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }

    fn record(&mut self, line: usize) {
        if (self.wanted)(&self.path) {
            self.out.entry(self.path.clone()).or_insert(line);
        }
    }

    /// A string token, decoded (keys are compared as text).
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        loop {
            match *self.b.get(self.i)? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        let raw = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        serde_json::from_str(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_lines_asked_for() {
        let text = "{\n  \"Resources\": {\n    \"A\": {\"Type\": \"x\"},\n    \"B\\u0042\": {\n      \"Properties\": {\"K\": [1,\n 2]}\n    }\n  },\n  \"list\": [\n    {}, \n    {\"a\": \"]}\"}\n  ]\n}\n";
        serde_json::from_str::<serde_json::Value>(text).unwrap();
        let got = lines(
            text,
            |p| p.first().map(String::as_str) != Some("zzz"),
            |_| true,
        );
        let at = |p: &[&str]| {
            got.get(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .copied()
        };
        assert_eq!(at(&["Resources"]), Some(2));
        assert_eq!(at(&["Resources", "A"]), Some(3));
        assert_eq!(at(&["Resources", "BB"]), Some(4));
        assert_eq!(at(&["Resources", "BB", "Properties", "K"]), Some(5));
        assert_eq!(at(&["Resources", "BB", "Properties", "K", "1"]), Some(6));
        assert_eq!(at(&["list", "0"]), Some(10));
        assert_eq!(at(&["list", "1"]), Some(11));
        assert_eq!(at(&["list", "1", "a"]), Some(11));
        let none = lines(text, |_| false, |_| true);
        assert!(none.is_empty());
        // A subtree not entered still counts its lines.
        let shallow = lines(text, |_| true, |p| p.len() < 2);
        assert_eq!(
            shallow.get(&vec!["list".to_string(), "1".to_string()]),
            Some(&11)
        );
        assert!(!shallow.contains_key(&vec![
            "Resources".to_string(),
            "A".to_string(),
            "Type".to_string()
        ]));
        // Not JSON: no panic, whatever was seen is kept.
        let _ = lines("{\"a\": [1, 2", |_| true, |_| true);
        let _ = lines("\"\\", |_| true, |_| true);
        let _ = lines("{\"a\": {\"b\": \"\\", |_| true, |_| false);
    }
}
