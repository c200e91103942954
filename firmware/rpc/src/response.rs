//! Response objects (JSON-RPC 2.0 §5): `{"jsonrpc":"2.0","id":..,"result":..}`
//! or `{..,"error":{"code":..,"message":..}}`, each followed by a newline
//! (for line-oriented clients; JSON parsers skip it as whitespace).

use crate::error::{code, RpcError};
use crate::json::Value;
use crate::writer::Writer;

/// The smallest buffer an error response always fits in (a 64-byte id
/// at most is echoed: see [`crate::request`]).
pub const MIN_BUFFER: usize = 512;

fn head(w: &mut Writer<'_>, id: Option<Value<'_>>) {
    w.begin_object();
    w.field_str("jsonrpc", "2.0");
    w.key("id");
    match id {
        Some(v) => w.raw(v.raw()),
        None => w.null(),
    }
}

/// Writes an error response into `out`; returns its length.
pub fn error(out: &mut [u8], id: Option<Value<'_>>, e: &RpcError) -> usize {
    let mut w = Writer::new(out);
    head(&mut w, id);
    w.key("error");
    w.begin_object();
    w.key("code");
    w.i64(i64::from(e.code));
    w.field_str("message", e.message());
    w.end_object();
    w.end_object();
    w.raw_bytes(b"\n");
    if w.overflowed() {
        0
    } else {
        w.len()
    }
}

/// Writes a result response: `result` writes the result value, or fails
/// with the error to send instead. A result that does not fit becomes an
/// internal error (never a truncated document).
pub fn result(out: &mut [u8], id: Option<Value<'_>>, result: impl FnOnce(&mut Writer<'_>) -> Result<(), RpcError>) -> usize {
    let mut w = Writer::new(out);
    head(&mut w, id);
    w.key("result");
    let r = result(&mut w);
    w.end_object();
    w.raw_bytes(b"\n");
    let failed = match r {
        Err(e) => Some(e),
        Ok(()) if w.overflowed() => Some(RpcError::new(code::INTERNAL_ERROR, "internal error: the result does not fit the response buffer")),
        Ok(()) => None,
    };
    match failed {
        Some(e) => error(out, id, &e),
        None => w.len(),
    }
}
