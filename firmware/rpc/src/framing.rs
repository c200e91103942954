//! Request framing on a byte stream: one complete JSON value per request,
//! back to back, optionally separated by whitespace (SPDK's server and
//! `rpc.py` send no delimiter; line-oriented clients send a newline).
//!
//! The end of a value is where the bracket depth returns to zero outside
//! strings (a backslash escapes the next byte inside a string). Only
//! objects (requests) and arrays (batches, which are refused whole) can
//! be framed; any other first byte means the stream is not JSON-RPC.

/// Where a scan got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// No complete value yet: read more (or, if the buffer is full, the
    /// request is too large).
    Incomplete,
    /// A complete value is `buf[start..end]`; the next request starts at `end`.
    Complete { start: usize, end: usize },
    /// The first non-whitespace byte at `at` cannot begin a request, or a
    /// closing bracket came at depth zero: the framing is lost.
    NotJson { at: usize },
}

/// Incremental scanner; feed it the same growing buffer, it resumes where
/// it stopped. After a `Complete`, the caller drops `buf[..end]` and calls
/// [`Framer::reset`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Framer {
    /// Bytes of the buffer already scanned.
    pos: usize,
    /// Start of the value (first non-whitespace byte), once seen.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The value found, returned again until [`Framer::reset`].
    done: Option<(usize, usize)>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl Framer {
    pub const fn new() -> Framer {
        Framer { pos: 0, start: None, depth: 0, in_string: false, escaped: false, done: None }
    }

    pub fn reset(&mut self) {
        *self = Framer::new();
    }

    /// Whether a value has begun (bytes other than whitespace arrived).
    pub fn in_request(&self) -> bool {
        self.start.is_some()
    }

    /// Scans `buf` from where the last call stopped.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        if let Some((start, end)) = self.done {
            return Scan::Complete { start, end };
        }
        while let Some(&b) = buf.get(self.pos) {
            let at = self.pos;
            self.pos += 1;
            let Some(start) = self.start else {
                match b {
                    _ if is_ws(b) => continue,
                    b'{' | b'[' => {
                        self.start = Some(at);
                        self.depth = 1;
                        continue;
                    }
                    _ => return Scan::NotJson { at },
                }
            };
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.done = Some((start, self.pos));
                        return Scan::Complete { start, end: self.pos };
                    }
                }
                _ => {}
            }
        }
        Scan::Incomplete
    }
}
