//! A strict JSON (RFC 8259) validator and a reader over validated bytes.
//!
//! [`validate`] walks the text once with an explicit container stack
//! (bits, at most [`crate::MAX_DEPTH`] deep), so hostile nesting costs no
//! recursion. Checked: structure (§2), literals, numbers (§6 grammar),
//! strings (§7: no raw control characters, only the defined escapes,
//! `\u` with four hex digits), and that the bytes are UTF-8 (§8.1).
//! [`Value`] then reads a validated value without re-checking its
//! grammar; every access is still bounds-checked and never panics.

use crate::MAX_DEPTH;

/// Why the text is not JSON (byte offsets into the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The text ends inside a value.
    Eof,
    /// A byte that cannot appear there.
    Unexpected { at: usize },
    /// A string with a raw control character or a bad escape.
    BadString { at: usize },
    /// A number outside the RFC 8259 §6 grammar (`01`, `1.`, `-`, `1e`).
    BadNumber { at: usize },
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep { at: usize },
    /// Not UTF-8.
    NotUtf8 { at: usize },
    /// More text after the value.
    Trailing { at: usize },
}

impl JsonError {
    /// A message for the -32700 error.
    pub fn describe(&self) -> &'static str {
        match self {
            JsonError::Eof => "parse error: the JSON text ends inside a value",
            JsonError::Unexpected { .. } => "parse error: unexpected character",
            JsonError::BadString { .. } => "parse error: bad string (control character or escape)",
            JsonError::BadNumber { .. } => "parse error: malformed number",
            JsonError::TooDeep { .. } => "parse error: nested deeper than 32 levels",
            JsonError::NotUtf8 { .. } => "parse error: not UTF-8",
            JsonError::Trailing { .. } => "parse error: text after the JSON value",
        }
    }
}

/// The kind of a value (from its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

fn ws(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// End of the string starting at `s[i] == '"'`.
fn string_end(s: &[u8], mut i: usize) -> Result<usize, JsonError> {
    if s.get(i) != Some(&b'"') {
        return Err(s.get(i).map_or(JsonError::Eof, |_| JsonError::Unexpected { at: i }));
    }
    i += 1;
    loop {
        let &c = s.get(i).ok_or(JsonError::Eof)?;
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => {
                let &e = s.get(i + 1).ok_or(JsonError::Eof)?;
                match e {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        for k in 0..4 {
                            let &h = s.get(i + 2 + k).ok_or(JsonError::Eof)?;
                            if !h.is_ascii_hexdigit() {
                                return Err(JsonError::BadString { at: i + 2 + k });
                            }
                        }
                        i += 6;
                    }
                    _ => return Err(JsonError::BadString { at: i + 1 }),
                }
            }
            0..=0x1f => return Err(JsonError::BadString { at: i }),
            _ => i += 1,
        }
    }
}

fn digits(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// End of the number starting at `i` (RFC 8259 §6).
fn number_end(s: &[u8], start: usize) -> Result<usize, JsonError> {
    let mut i = start;
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(s, i),
        Some(_) => return Err(JsonError::BadNumber { at: i }),
        None => return Err(JsonError::Eof),
    }
    if s.get(i) == Some(&b'.') {
        let j = digits(s, i + 1);
        if j == i + 1 {
            return Err(s.get(j).map_or(JsonError::Eof, |_| JsonError::BadNumber { at: j }));
        }
        i = j;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let j = digits(s, i);
        if j == i {
            return Err(s.get(j).map_or(JsonError::Eof, |_| JsonError::BadNumber { at: j }));
        }
        i = j;
    }
    Ok(i)
}

fn literal_end(s: &[u8], i: usize, lit: &[u8]) -> Result<usize, JsonError> {
    for (k, &c) in lit.iter().enumerate() {
        match s.get(i + k) {
            Some(&b) if b == c => {}
            Some(_) => return Err(JsonError::Unexpected { at: i + k }),
            None => return Err(JsonError::Eof),
        }
    }
    Ok(i + lit.len())
}

/// Reads `"key" ws : ` at `i` (after whitespace); returns the index after the colon.
fn member_key(s: &[u8], i: usize) -> Result<usize, JsonError> {
    let i = string_end(s, ws(s, i))?;
    let i = ws(s, i);
    match s.get(i) {
        Some(b':') => Ok(i + 1),
        Some(_) => Err(JsonError::Unexpected { at: i }),
        None => Err(JsonError::Eof),
    }
}

/// End of the value starting at or after `i` (leading whitespace
/// skipped), checking its grammar; containers at most `MAX_DEPTH` deep.
pub fn value_end(s: &[u8], i: usize) -> Result<usize, JsonError> {
    // Bit d of `objects`: the container at depth d+1 is an object.
    let mut objects: u64 = 0;
    let mut depth = 0usize;
    let mut i = i;
    'value: loop {
        i = ws(s, i);
        let &c = s.get(i).ok_or(JsonError::Eof)?;
        match c {
            b'{' | b'[' => {
                if depth == MAX_DEPTH {
                    return Err(JsonError::TooDeep { at: i });
                }
                let obj = c == b'{';
                objects = (objects & !(1 << depth)) | (u64::from(obj) << depth);
                depth += 1;
                i = ws(s, i + 1);
                let close = if obj { b'}' } else { b']' };
                if s.get(i) == Some(&close) {
                    i += 1;
                    depth -= 1;
                } else {
                    if obj {
                        i = member_key(s, i)?;
                    }
                    continue 'value;
                }
            }
            b'"' => i = string_end(s, i)?,
            b't' => i = literal_end(s, i, b"true")?,
            b'f' => i = literal_end(s, i, b"false")?,
            b'n' => i = literal_end(s, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number_end(s, i)?,
            _ => return Err(JsonError::Unexpected { at: i }),
        }
        // After a value: close containers or go on to the next element.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            i = ws(s, i);
            let obj = objects & (1 << (depth - 1)) != 0;
            match s.get(i) {
                Some(b',') => {
                    i += 1;
                    if obj {
                        i = member_key(s, i)?;
                    }
                    continue 'value;
                }
                Some(b'}') if obj => {
                    i += 1;
                    depth -= 1;
                }
                Some(b']') if !obj => {
                    i += 1;
                    depth -= 1;
                }
                Some(_) => return Err(JsonError::Unexpected { at: i }),
                None => return Err(JsonError::Eof),
            }
        }
    }
}

/// Checks that `s` is exactly one JSON value (whitespace around it allowed).
pub fn validate(s: &[u8]) -> Result<Value<'_>, JsonError> {
    if let Err(e) = core::str::from_utf8(s) {
        return Err(JsonError::NotUtf8 { at: e.valid_up_to() });
    }
    let start = ws(s, 0);
    let end = value_end(s, start)?;
    let after = ws(s, end);
    if after != s.len() {
        return Err(JsonError::Trailing { at: after });
    }
    Ok(Value { raw: &s[start..end] })
}

/// A validated JSON value: its exact text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
}

impl<'a> Value<'a> {
    /// The value's text (as received).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn kind(&self) -> Kind {
        match self.raw.first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// An integer written without fraction or exponent that fits a u64.
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind() != Kind::Number || self.raw.first() == Some(&b'-') {
            return None;
        }
        let mut v: u64 = 0;
        for &d in self.raw {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        Some(v)
    }

    /// An integer written without fraction or exponent that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self.raw.strip_prefix(b"-") {
            Some(rest) => {
                let m = Value { raw: rest }.as_u64()?;
                if m <= i64::MAX as u64 + 1 {
                    Some((m as i64).wrapping_neg())
                } else {
                    None
                }
            }
            None => i64::try_from(self.as_u64()?).ok(),
        }
    }

    /// The string's characters, unescaped into `out`. `None`: not a
    /// string, `out` too small, or an unpaired UTF-16 surrogate escape.
    pub fn unescape<'b>(&self, out: &'b mut [u8]) -> Option<&'b str> {
        if self.kind() != Kind::String || self.raw.len() < 2 {
            return None;
        }
        let s = &self.raw[1..self.raw.len() - 1];
        let mut n = 0;
        let mut i = 0;
        let put = |out: &mut [u8], c: char, n: &mut usize| -> Option<()> {
            let mut b = [0u8; 4];
            let e = c.encode_utf8(&mut b).as_bytes();
            out.get_mut(*n..*n + e.len())?.copy_from_slice(e);
            *n += e.len();
            Some(())
        };
        while i < s.len() {
            let c = s[i];
            if c != b'\\' {
                *out.get_mut(n)? = c;
                n += 1;
                i += 1;
                continue;
            }
            let e = *s.get(i + 1)?;
            i += 2;
            let ch = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = hex4(s.get(i..i + 4)?)?;
                    i += 4;
                    let cp = if (0xd800..0xdc00).contains(&hi) {
                        // RFC 8259 §7: a pair of escapes for a character
                        // beyond the BMP.
                        if s.get(i..i + 2)? != b"\\u" {
                            return None;
                        }
                        let lo = hex4(s.get(i + 2..i + 6)?)?;
                        if !(0xdc00..0xe000).contains(&lo) {
                            return None;
                        }
                        i += 6;
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    } else {
                        hi
                    };
                    char::from_u32(cp)?
                }
                _ => return None,
            };
            put(out, ch, &mut n)?;
        }
        core::str::from_utf8(&out[..n]).ok()
    }

    /// Whether this is a string equal to `lit` (after unescaping).
    pub fn str_eq(&self, lit: &str) -> bool {
        let mut b = [0u8; 64];
        lit.len() <= b.len() && self.unescape(&mut b) == Some(lit)
    }

    /// An object's members in order (empty for anything else).
    pub fn members(&self) -> Members<'a> {
        Members { s: self.raw, i: if self.kind() == Kind::Object { 1 } else { self.raw.len() } }
    }

    /// An array's elements in order (empty for anything else).
    pub fn elements(&self) -> Elements<'a> {
        Elements { s: self.raw, i: if self.kind() == Kind::Array { 1 } else { self.raw.len() } }
    }

    /// Member `key` of an object (the first one of that name).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.members().find(|(k, _)| k.str_eq(key)).map(|(_, v)| v)
    }
}

fn hex4(h: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in h {
        v = v << 4 | char::from(c).to_digit(16)?;
    }
    Some(v)
}

/// Iterator over an object's (key, value) pairs.
pub struct Members<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Value<'a>, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let mut i = ws(self.s, self.i);
        if self.s.get(i) == Some(&b',') {
            i = ws(self.s, i + 1);
        }
        if self.s.get(i) != Some(&b'"') {
            self.i = self.s.len();
            return None;
        }
        let kend = string_end(self.s, i).ok()?;
        let key = Value { raw: &self.s[i..kend] };
        let vstart = ws(self.s, ws(self.s, kend) + 1);
        let vend = value_end(self.s, vstart).ok()?;
        self.i = vend;
        Some((key, Value { raw: &self.s[vstart..vend] }))
    }
}

/// Iterator over an array's elements.
pub struct Elements<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut i = ws(self.s, self.i);
        if self.s.get(i) == Some(&b',') {
            i += 1;
        }
        let start = ws(self.s, i);
        if matches!(self.s.get(start), None | Some(b']')) {
            self.i = self.s.len();
            return None;
        }
        let end = value_end(self.s, start).ok()?;
        self.i = end;
        Some(Value { raw: &self.s[start..end] })
    }
}
