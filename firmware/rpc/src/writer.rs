//! A JSON writer into a fixed buffer. Commas are placed by the writer;
//! strings are escaped (RFC 8259 §7). Running out of room sets
//! [`Writer::overflowed`] and drops the rest: the caller answers with an
//! error instead of sending a truncated document.

use core::fmt::{self, Write};

pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
    /// Bit d: the container at depth d already holds an element.
    nonempty: u64,
    depth: u32,
    /// A key was just written: the next value follows it without a comma.
    after_key: bool,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, len: 0, overflow: false, nonempty: 0, depth: 0, after_key: false }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The text written (complete only if not [`overflowed`](Self::overflowed)).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Cuts the output back to `len` bytes (after an abandoned attempt).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.overflow = false;
        self.nonempty = 0;
        self.depth = 0;
        self.after_key = false;
    }

    fn put(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(d) if !self.overflow => {
                d.copy_from_slice(b);
                self.len += b.len();
            }
            _ => self.overflow = true,
        }
    }

    /// Comma before an element if its container has one already.
    fn element(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if self.depth == 0 {
            return;
        }
        let bit = 1u64 << ((self.depth - 1) % 64);
        if self.nonempty & bit != 0 {
            self.put(b",");
        }
        self.nonempty |= bit;
    }

    fn open(&mut self, c: u8) {
        self.element();
        self.put(&[c]);
        self.depth += 1;
        self.nonempty &= !(1u64 << ((self.depth - 1) % 64));
    }

    fn close(&mut self, c: u8) {
        self.put(&[c]);
        self.depth = self.depth.saturating_sub(1);
    }

    pub fn begin_object(&mut self) {
        self.open(b'{');
    }

    pub fn end_object(&mut self) {
        self.close(b'}');
    }

    pub fn begin_array(&mut self) {
        self.open(b'[');
    }

    pub fn end_array(&mut self) {
        self.close(b']');
    }

    /// A member name; the next call writes its value.
    pub fn key(&mut self, k: &str) {
        self.element();
        self.escaped(k);
        self.put(b":");
        self.after_key = true;
    }

    fn escaped(&mut self, s: &str) {
        self.put(b"\"");
        if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
            self.put(s.as_bytes());
        } else {
            let _ = Escaper(self).write_str(s);
        }
        self.put(b"\"");
    }

    pub fn string(&mut self, s: &str) {
        self.element();
        self.escaped(s);
    }

    /// A string built with `format_args!` (escaped as it is written).
    pub fn string_fmt(&mut self, args: fmt::Arguments<'_>) {
        self.element();
        self.put(b"\"");
        let _ = Escaper(self).write_fmt(args);
        self.put(b"\"");
    }

    pub fn u64(&mut self, v: u64) {
        self.element();
        self.digits(v, false);
    }

    pub fn i64(&mut self, v: i64) {
        self.element();
        self.digits(v.unsigned_abs(), v < 0);
    }

    /// Decimal digits without `core::fmt` (cheaper on the control cores).
    fn digits(&mut self, mut v: u64, negative: bool) {
        let mut b = [0u8; 21];
        let mut i = b.len();
        loop {
            i -= 1;
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if negative {
            i -= 1;
            b[i] = b'-';
        }
        self.put(&b[i..]);
    }

    pub fn bool(&mut self, v: bool) {
        self.element();
        self.put(if v { b"true" } else { b"false" });
    }

    pub fn null(&mut self) {
        self.element();
        self.put(b"null");
    }

    /// Text that is already one valid JSON value (e.g. a request's id).
    pub fn raw(&mut self, json: &[u8]) {
        self.element();
        self.put(json);
    }

    pub fn field_str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.string(v);
    }

    pub fn field_u64(&mut self, k: &str, v: u64) {
        self.key(k);
        self.u64(v);
    }

    pub fn field_bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.bool(v);
    }

    /// Raw bytes, unescaped.
    pub fn raw_bytes(&mut self, b: &[u8]) {
        self.put(b);
    }
}

struct Escaper<'w, 'a>(&'w mut Writer<'a>);

impl Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut run = 0;
        let b = s.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            let esc: Option<&[u8]> = match c {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0..=0x1f => None,
                _ => continue,
            };
            self.0.put(&b[run..i]);
            run = i + 1;
            match esc {
                Some(e) => self.0.put(e),
                None => self.0.put(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]),
            }
        }
        self.0.put(&b[run..]);
        Ok(())
    }
}
