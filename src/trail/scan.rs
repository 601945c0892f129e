//! A structural JSON scanner: finds where each value starts and ends without
//! building anything, so records that cannot matter are passed over at the
//! speed of `memchr` over their strings.
//!
//! It checks structure (strings closed, brackets matched, separators where
//! JSON wants them, literals made of literal bytes), not every detail of the
//! grammar: a record that is kept is parsed fully by serde afterwards, and
//! that parse is what rejects the rest.

use memchr::memchr2;

/// Where and why the structure broke. `at` is a byte offset in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub at: usize,
    pub what: &'static str,
}

pub type ScanResult<T> = Result<T, ScanError>;

fn err<T>(at: usize, what: &'static str) -> ScanResult<T> {
    Err(ScanError { at, what })
}

#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The first non-whitespace offset at or after `i` (may be `buf.len()`).
#[inline]
pub fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_ws(buf[i]) {
        i += 1;
    }
    i
}

/// `buf[i]` is the opening quote; returns the offset just past the closing one.
#[inline]
pub fn skip_string(buf: &[u8], i: usize) -> ScanResult<usize> {
    let mut j = i + 1;
    loop {
        match memchr2(b'"', b'\\', &buf[j..]) {
            None => return err(i, "unterminated string"),
            Some(k) => {
                j += k;
                if buf[j] == b'"' {
                    return Ok(j + 1);
                }
                // A backslash escapes exactly the next byte (`\uXXXX` is
                // four plain hex digits after the `u`).
                j += 2;
                if j > buf.len() {
                    return err(i, "unterminated string");
                }
            }
        }
    }
}

fn skip_literal(buf: &[u8], i: usize) -> ScanResult<usize> {
    let mut j = i;
    while j < buf.len() {
        match buf[j] {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'-' | b'.' => j += 1,
            _ => break,
        }
    }
    if j == i {
        return err(i, "unexpected byte where a value should start");
    }
    let lit = &buf[i..j];
    let ok = match lit[0] {
        b't' => lit == b"true",
        b'f' => lit == b"false",
        b'n' => lit == b"null",
        b'-' | b'0'..=b'9' => lit
            .iter()
            .all(|b| !b.is_ascii_alphabetic() || matches!(b, b'e' | b'E')),
        _ => false,
    };
    if ok {
        Ok(j)
    } else {
        err(i, "invalid literal")
    }
}

/// Skips the value starting at `i` (no leading whitespace); returns its end.
pub fn skip_value(buf: &[u8], i: usize) -> ScanResult<usize> {
    match buf.get(i) {
        None => err(i, "unexpected end of input"),
        Some(b'"') => skip_string(buf, i),
        Some(b'{') | Some(b'[') => skip_container(buf, i),
        Some(_) => skip_literal(buf, i),
    }
}

/// What the scanner expects next inside a container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// After `{` or `[`: a first member, or the closing bracket.
    FirstOrClose,
    /// After `,`: a member (key in an object, value in an array).
    Member,
    /// After a key: `:`.
    Colon,
    /// After `:`: a value.
    Value,
    /// After a member: `,` or the closing bracket.
    CommaOrClose,
}

/// Skips an object or array with a small stack; separators are checked so
/// that `{"a" "b"}` or `[1 2]` are not taken as valid.
fn skip_container(buf: &[u8], start: usize) -> ScanResult<usize> {
    // true = object, false = array.
    let mut stack: Vec<bool> = Vec::with_capacity(16);
    let mut expect = Expect::FirstOrClose;
    let mut i = start;
    stack.push(buf[i] == b'{');
    i += 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return err(
                start,
                "unexpected end of input inside a value that starts here",
            );
        };
        if is_ws(b) {
            i += 1;
            continue;
        }
        let in_object = *stack.last().unwrap_or(&false);
        match b {
            b'}' | b']' => {
                let closes_object = b == b'}';
                if closes_object != in_object {
                    return err(i, "mismatched closing bracket");
                }
                if !matches!(expect, Expect::FirstOrClose | Expect::CommaOrClose) {
                    return err(i, "closing bracket where a value should be");
                }
                stack.pop();
                i += 1;
                if stack.is_empty() {
                    return Ok(i);
                }
                expect = Expect::CommaOrClose;
            }
            b',' => {
                if expect != Expect::CommaOrClose {
                    return err(i, "unexpected comma");
                }
                expect = Expect::Member;
                i += 1;
            }
            b':' => {
                if expect != Expect::Colon {
                    return err(i, "unexpected colon");
                }
                expect = Expect::Value;
                i += 1;
            }
            _ => {
                let is_key = in_object && matches!(expect, Expect::FirstOrClose | Expect::Member);
                let is_value = expect == Expect::Value
                    || (!in_object && matches!(expect, Expect::FirstOrClose | Expect::Member));
                if is_key {
                    if b != b'"' {
                        return err(i, "expected a quoted key");
                    }
                    i = skip_string(buf, i)?;
                    expect = Expect::Colon;
                } else if is_value {
                    match b {
                        b'{' | b'[' => {
                            if stack.len() >= 512 {
                                return err(i, "nesting deeper than 512 levels");
                            }
                            stack.push(b == b'{');
                            expect = Expect::FirstOrClose;
                            i += 1;
                        }
                        b'"' => {
                            i = skip_string(buf, i)?;
                            expect = Expect::CommaOrClose;
                        }
                        _ => {
                            i = skip_literal(buf, i)?;
                            expect = Expect::CommaOrClose;
                        }
                    }
                } else {
                    return err(i, "missing comma or colon");
                }
            }
        }
    }
}

/// Iterates the members of the object at `start` (`buf[start] == b'{'`):
/// yields (raw key bytes between the quotes, value start, value end).
pub struct ObjectMembers<'a> {
    buf: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

impl<'a> ObjectMembers<'a> {
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        ObjectMembers {
            buf,
            i: start + 1,
            first: true,
            done: false,
        }
    }

    /// Offset just past the closing brace, once iteration has ended.
    pub fn end(&self) -> usize {
        self.i
    }
}

impl<'a> Iterator for ObjectMembers<'a> {
    type Item = ScanResult<(&'a [u8], usize, usize)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let buf = self.buf;
        let mut i = skip_ws(buf, self.i);
        match buf.get(i) {
            Some(b'}') => {
                self.done = true;
                if !self.first {
                    return Some(err(i, "closing brace after a comma"));
                }
                self.i = i + 1;
                return None;
            }
            Some(b'"') => {}
            Some(_) => {
                self.done = true;
                return Some(err(i, "expected a quoted key"));
            }
            None => {
                self.done = true;
                return Some(err(i, "unexpected end of input in an object"));
            }
        }
        let result = (|| {
            let key_end = skip_string(buf, i)?;
            let key = &buf[i + 1..key_end - 1];
            i = skip_ws(buf, key_end);
            if buf.get(i) != Some(&b':') {
                return err(i, "expected a colon after a key");
            }
            let vs = skip_ws(buf, i + 1);
            let ve = skip_value(buf, vs)?;
            i = skip_ws(buf, ve);
            match buf.get(i) {
                Some(b',') => {
                    self.i = i + 1;
                    self.first = false;
                    // A trailing comma is caught by the next call.
                    let n = skip_ws(buf, self.i);
                    if buf.get(n) == Some(&b'}') {
                        return err(n, "closing brace after a comma");
                    }
                }
                Some(b'}') => {
                    self.i = i + 1;
                    self.done = true;
                }
                Some(_) => return err(i, "expected a comma or a closing brace"),
                None => return err(i, "unexpected end of input in an object"),
            }
            Ok((key, vs, ve))
        })();
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Iterates the elements of the array at `start` (`buf[start] == b'['`):
/// yields (value start, value end).
pub struct ArrayElements<'a> {
    buf: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

impl<'a> ArrayElements<'a> {
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        ArrayElements {
            buf,
            i: start + 1,
            first: true,
            done: false,
        }
    }

    /// Offset just past the closing bracket, once iteration has ended.
    pub fn end(&self) -> usize {
        self.i
    }
}

impl Iterator for ArrayElements<'_> {
    type Item = ScanResult<(usize, usize)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let buf = self.buf;
        let i = skip_ws(buf, self.i);
        if buf.get(i) == Some(&b']') {
            self.done = true;
            self.i = i + 1;
            if !self.first {
                return Some(err(i, "closing bracket after a comma"));
            }
            return None;
        }
        let result = skip_value(buf, i).and_then(|ve| {
            let j = skip_ws(buf, ve);
            match buf.get(j) {
                Some(b',') => {
                    self.i = j + 1;
                    self.first = false;
                    let n = skip_ws(buf, self.i);
                    if buf.get(n) == Some(&b']') {
                        return err(n, "closing bracket after a comma");
                    }
                }
                Some(b']') => {
                    self.i = j + 1;
                    self.done = true;
                }
                Some(_) => return err(j, "expected a comma or a closing bracket"),
                None => return err(j, "unexpected end of input in an array"),
            }
            Ok((i, ve))
        });
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> ScanResult<usize> {
        skip_value(s.as_bytes(), 0)
    }

    #[test]
    fn valid_values_are_skipped_to_their_end() {
        for s in [
            r#"{"a":[1,2,{"b":"x\"}"}],"c":null}"#,
            r#"[]"#,
            r#"{}"#,
            r#""a\\""#,
            r#"-1.5e+3"#,
            r#"{ "a" : [ true , false ] }"#,
        ] {
            assert_eq!(whole(s), Ok(s.len()), "{s}");
        }
    }

    #[test]
    fn broken_structure_is_reported() {
        for s in [
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"[1 2]"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a":[1}"#,
            r#""abc"#,
            r#"{a:1}"#,
            r#"{"a":tru}"#,
            r#"{"a":"x\"#,
            r#"{,}"#,
            r#"[,1]"#,
            r#"{"a":1:2}"#,
        ] {
            assert!(whole(s).is_err(), "{s}");
        }
    }

    #[test]
    fn members_and_elements_iterate() {
        let s = br#"{"Records": [ {"x":1} , {"y":2} ], "n": 3}"#;
        let members: Vec<_> = ObjectMembers::new(s, 0).map(|m| m.unwrap()).collect();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].0, b"Records");
        let (vs, _) = (members[0].1, members[0].2);
        let elems: Vec<_> = ArrayElements::new(s, vs).map(|e| e.unwrap()).collect();
        assert_eq!(elems.len(), 2);
        assert_eq!(&s[elems[1].0..elems[1].1], br#"{"y":2}"#);
    }
}
