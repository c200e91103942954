//! JSON-RPC 2.0 (<https://www.jsonrpc.org/specification>) for the card's
//! management server, SPDK `rpc.py` style on a TCP stream.
//!
//! * [`framing`]: a request is one complete JSON value on the stream, no
//!   delimiter (as SPDK's server reads them); the [`framing::Framer`]
//!   finds its end by bracket depth outside strings, skipping whitespace
//!   (newlines) between requests.
//! * [`json`]: a strict RFC 8259 validator (iterative, depth-bounded: no
//!   recursion on hostile input) and a reader over the validated bytes:
//!   object members, array elements, strings unescaped into a caller's
//!   buffer, integers.
//! * [`request`]: a request object checked against JSON-RPC 2.0 §4
//!   (`jsonrpc`, `method`, `params`, `id`, plus our `token`).
//! * [`writer`]: a JSON writer into a fixed buffer that records overflow
//!   instead of panicking; [`response`] encodes results and errors.
//! * [`crypto`]: `accel_crypto_key_create` and `bdev_crypto_create`'s
//!   parameters, checked (hex keys decoded).
//! * [`nvme_attach`]: `bdev_nvme_attach_controller`'s parameters, checked.
//! * [`params`]: typed access to a method's `params` with -32602 errors
//!   that name the member.
//!
//! No allocation and no global state: the firmware passes its buffers in.
//! A hand-written reader rather than `serde-json-core`: the server must
//! tell a syntax error (-32700, the stream's framing is lost) from a
//! well-formed but invalid request (-32600, the connection stays usable),
//! bound nesting depth, and keep `params` raw until the method is known;
//! `serde-json-core` gives none of these.
#![no_std]
// An error carries its message in a fixed buffer (no allocation): the
// `Err` variant is large by design, and errors are the cold path.
#![allow(clippy::result_large_err)]

pub mod crypto;
pub mod ec_create;
pub mod error;
pub mod framing;
pub mod json;
pub mod nvme_attach;
pub mod params;
pub mod request;
pub mod response;
pub mod writer;

pub use error::{code, RpcError};
pub use framing::{Framer, Scan};
pub use json::{Kind, Value};
pub use params::Params;
pub use request::{parse_request, Rejected, Request};
pub use writer::Writer;

/// Largest request the server accepts (bytes, whitespace before it
/// included); a longer one is answered with an error and the connection
/// closed (its end cannot be found within the buffer).
pub const MAX_REQUEST: usize = 4096;

/// Deepest nesting of objects and arrays in a request.
pub const MAX_DEPTH: usize = 32;

#[cfg(test)]
mod tests;
