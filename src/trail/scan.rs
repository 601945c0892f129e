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
        match quote_or_backslash(buf, j) {
            None => return err(i, "unterminated string"),
            Some(k) => {
                j = k;
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

/// The offset of the first `"` or `\\` at or after `from`. CloudTrail's
/// strings are short (names, ids, ARNs): one 16-byte compare finds the end
/// of most of them, where a `memchr2` call would cost more in setup than in
/// search. Longer strings fall through to `memchr2`.
#[inline]
fn quote_or_backslash(buf: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut at = from;
        for _ in 0..4 {
            if at + 16 > buf.len() {
                break;
            }
            // SAFETY: SSE2 is part of the x86_64 baseline, and the 16 bytes
            // at `at` lie inside `buf` (checked above).
            let mask = unsafe {
                let v = _mm_loadu_si128(buf.as_ptr().add(at) as *const __m128i);
                _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                ))
            };
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 16;
        }
        return memchr2(b'"', b'\\', buf.get(at..)?).map(|k| at + k);
    }
    #[allow(unreachable_code)]
    memchr2(b'"', b'\\', buf.get(from..)?).map(|k| from + k)
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

/// Finds the end of the object or array at `start` by counting brackets
/// outside strings, 16 bytes at a time. It checks less than [`skip_value`]
/// (strings closed and brackets balanced, not separators or bracket kinds),
/// which is enough to cut a record out of its file: a record that may be
/// kept is parsed in full afterwards, and one that cannot be kept needs
/// nothing more than its extent. On valid JSON both return the same end.
pub fn skip_balanced(buf: &[u8], start: usize) -> ScanResult<usize> {
    let mut st = Balance {
        depth: 0,
        in_string: false,
        i: start,
    };
    #[cfg(target_arch = "x86_64")]
    {
        let found = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected on this CPU.
            unsafe { st.avx2(buf) }
        } else {
            None
        };
        if let Some(end) = found.or_else(|| st.simd(buf)) {
            return Ok(end);
        }
    }
    match st.scalar(buf, buf.len()) {
        Some(end) => Ok(end),
        None => err(
            start,
            "unexpected end of input inside a value that starts here",
        ),
    }
}

struct Balance {
    depth: u64,
    in_string: bool,
    i: usize,
}

impl Balance {
    /// Byte by byte up to `limit` (or one past it after a trailing escape);
    /// Some(end) when the outermost bracket closes.
    #[inline]
    fn scalar(&mut self, buf: &[u8], limit: usize) -> Option<usize> {
        while self.i < limit {
            let b = buf[self.i];
            if self.in_string {
                match b {
                    b'\\' => self.i += 2,
                    b'"' => {
                        self.in_string = false;
                        self.i += 1;
                    }
                    _ => self.i += 1,
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    // A closer before any opener: not ours to end.
                    if self.depth == 0 {
                        return None;
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(self.i + 1);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }

    /// One block of `width` (16 or 32) bytes at `i`, given its masks (bit k
    /// is byte k): quotes, opening and closing brackets. The block holds no
    /// backslash, so every quote opens or closes a string. Shared by the
    /// SSE2 and AVX2 scanners, which differ only in how they load a block.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn block(&mut self, width: u32, quotes: u32, open: u32, close: u32) -> Step {
        let mask = if width == 32 {
            u32::MAX
        } else {
            (1 << width) - 1
        };
        // Bit k of `inside` is set when byte k lies inside a string (an odd
        // number of quotes at or before it, counting the carried-in state);
        // a closing quote itself is outside.
        let mut inside = quotes;
        let mut shift = 1;
        while shift < width {
            inside ^= inside << shift;
            shift <<= 1;
        }
        if self.in_string {
            inside = !inside;
        }
        inside &= mask;
        let mut brackets = (open | close) & !inside & mask;
        while brackets != 0 {
            let k = brackets.trailing_zeros();
            if open & (1 << k) != 0 {
                self.depth += 1;
            } else {
                if self.depth == 0 {
                    return Step::Stray;
                }
                self.depth -= 1;
                if self.depth == 0 {
                    return Step::Closed(self.i + k as usize + 1);
                }
            }
            brackets &= brackets - 1;
        }
        self.in_string = inside & (1 << (width - 1)) != 0;
        self.i += width as usize;
        Step::Next
    }

    /// [`Balance::simd`] 32 bytes at a time; leaves the tail (under 32
    /// bytes) to it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(&mut self, buf: &[u8]) -> Option<usize> {
        use std::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
            _mm256_set1_epi8,
        };
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let open1 = _mm256_set1_epi8(b'{' as i8);
        let open2 = _mm256_set1_epi8(b'[' as i8);
        let close1 = _mm256_set1_epi8(b'}' as i8);
        let close2 = _mm256_set1_epi8(b']' as i8);
        while self.i + 32 <= buf.len() {
            // SAFETY: 32 bytes at `i` lie inside `buf` (checked above).
            let v = unsafe { _mm256_loadu_si256(buf.as_ptr().add(self.i) as *const __m256i) };
            if _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, backslash)) != 0 {
                let limit = self.i + 32;
                if let Some(end) = self.scalar(buf, limit) {
                    return Some(end);
                }
                continue;
            }
            let quotes = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, quote)) as u32;
            let open = _mm256_movemask_epi8(_mm256_or_si256(
                _mm256_cmpeq_epi8(v, open1),
                _mm256_cmpeq_epi8(v, open2),
            )) as u32;
            let close = _mm256_movemask_epi8(_mm256_or_si256(
                _mm256_cmpeq_epi8(v, close1),
                _mm256_cmpeq_epi8(v, close2),
            )) as u32;
            match self.block(32, quotes, open, close) {
                Step::Next => {}
                Step::Closed(end) => return Some(end),
                Step::Stray => return None,
            }
        }
        None
    }

    /// 16-byte blocks with SSE2 (always present on x86_64). Blocks holding a
    /// backslash go through [`Balance::scalar`], which knows escapes.
    #[cfg(target_arch = "x86_64")]
    fn simd(&mut self, buf: &[u8]) -> Option<usize> {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16
        // bytes at `i` with `i + 16 <= buf.len()`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let open1 = _mm_set1_epi8(b'{' as i8);
            let open2 = _mm_set1_epi8(b'[' as i8);
            let close1 = _mm_set1_epi8(b'}' as i8);
            let close2 = _mm_set1_epi8(b']' as i8);
            while self.i + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(self.i) as *const __m128i);
                if _mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) != 0 {
                    let limit = self.i + 16;
                    if let Some(end) = self.scalar(buf, limit) {
                        return Some(end);
                    }
                    continue;
                }
                let quotes = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u32;
                let open = _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(v, open1),
                    _mm_cmpeq_epi8(v, open2),
                )) as u32;
                let close = _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(v, close1),
                    _mm_cmpeq_epi8(v, close2),
                )) as u32;
                match self.block(16, quotes, open, close) {
                    Step::Next => {}
                    Step::Closed(end) => return Some(end),
                    Step::Stray => return None,
                }
            }
        }
        None
    }
}

/// What one block did to the bracket count.
#[cfg(target_arch = "x86_64")]
enum Step {
    /// The block ended inside the value; go on to the next.
    Next,
    /// The outermost bracket closed; the value ends before this offset.
    Closed(usize),
    /// A closer before any opener: not ours to end.
    Stray,
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
    /// Cut containers with the full structural scan ([`skip_value`]).
    validate: bool,
    /// The structural error inside the last element yielded, when it was
    /// cut by bracket balance only because the full scan refused it.
    invalid: Option<ScanError>,
}

impl<'a> ArrayElements<'a> {
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        ArrayElements {
            buf,
            i: start + 1,
            first: true,
            done: false,
            validate: false,
            invalid: None,
        }
    }

    /// Checks every element's whole structure while cutting it, in the
    /// same single pass. An element that fails the check but whose brackets
    /// balance is still yielded (the array goes on after it); its error is
    /// then in [`ArrayElements::take_invalid`].
    pub fn validating(mut self) -> Self {
        self.validate = true;
        self
    }

    /// The structural error inside the element just yielded, if any.
    pub fn take_invalid(&mut self) -> Option<ScanError> {
        self.invalid.take()
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
        // Records are cut out by bracket balance (see skip_balanced), or by
        // the full scan when asked, falling back to balance to go on.
        self.invalid = None;
        let skipped = match buf.get(i) {
            Some(b'{') | Some(b'[') if self.validate => skip_value(buf, i).or_else(|e| {
                let end = skip_balanced(buf, i).map_err(|_| e.clone())?;
                self.invalid = Some(e);
                Ok(end)
            }),
            Some(b'{') | Some(b'[') => skip_balanced(buf, i),
            _ => skip_value(buf, i),
        };
        let result = skipped.and_then(|ve| {
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
    fn balanced_skip_agrees_with_the_full_scan() {
        let mut cases: Vec<String> = vec![
            r#"{"a":[1,2,{"b":"x\"}"}],"c":null}"#.into(),
            r#"{"k":"\\","m":"}]{["}"#.into(),
            r#"[{"a":"\u0022"},[[]],"]"]"#.into(),
        ];
        // Escapes and quotes at every offset around the 16-byte block edges.
        for pad in 0..40 {
            let p = "x".repeat(pad);
            cases.push(format!(r#"{{"{p}":"a\"b{{","q":["\\",{{"r":"{p}\\"}}]}}"#));
            cases.push(format!(r#"{{"{p}\"":"}}","z":"{p}"}}"#));
        }
        for c in &cases {
            let b = c.as_bytes();
            assert_eq!(skip_value(b, 0), Ok(b.len()), "full: {c}");
            assert_eq!(skip_balanced(b, 0), Ok(b.len()), "balanced: {c}");
            let mut longer = b.to_vec();
            longer.extend_from_slice(b", {\"next\": 1}  ]");
            assert_eq!(
                skip_balanced(&longer, 0),
                Ok(b.len()),
                "balanced, followed: {c}"
            );
        }
        // Each cutter alone, finishing byte by byte as skip_balanced does, so
        // the SSE2 one is checked on its own even on a CPU with AVX2.
        #[cfg(target_arch = "x86_64")]
        for c in &cases {
            let b = c.as_bytes();
            let fresh = || Balance {
                depth: 0,
                in_string: false,
                i: 0,
            };
            let mut sse = fresh();
            let end = sse.simd(b).or_else(|| sse.scalar(b, b.len()));
            assert_eq!(end, Some(b.len()), "sse2: {c}");
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx = fresh();
                // SAFETY: AVX2 was just detected on this CPU.
                let end = unsafe { avx.avx2(b) }
                    .or_else(|| avx.simd(b))
                    .or_else(|| avx.scalar(b, b.len()));
                assert_eq!(end, Some(b.len()), "avx2: {c}");
            }
        }
        assert!(skip_balanced(br#"{"a":"}"#, 0).is_err());
        assert!(skip_balanced(br#"{"a":[1,2]"#, 0).is_err());
        assert!(skip_balanced(b"{\"a\":\"b\\", 0).is_err());
    }

    #[test]
    fn validating_elements_flag_a_bad_one_and_go_on() {
        let s = br#"[{"a":1},{"b" 2},{"c":[1}],{"d":4}]"#;
        let mut it = ArrayElements::new(s, 0).validating();
        let mut seen = Vec::new();
        while let Some(el) = it.next() {
            let (a, b) = el.unwrap();
            seen.push((
                String::from_utf8_lossy(&s[a..b]).to_string(),
                it.take_invalid().is_some(),
            ));
        }
        assert_eq!(
            seen,
            vec![
                (r#"{"a":1}"#.to_string(), false),
                (r#"{"b" 2}"#.to_string(), true),
                (r#"{"c":[1}]"#.to_string(), true),
                (r#"{"d":4}"#.to_string(), false),
            ]
        );
        // Truncation is still the end of the array.
        let cut = br#"[{"a":1},{"b":"#;
        let mut it = ArrayElements::new(cut, 0).validating();
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
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
