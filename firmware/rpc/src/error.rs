//! JSON-RPC 2.0 error objects (§5.1): a code and a short message kept in
//! a fixed buffer (formatted messages name the offending member).

use core::fmt::{self, Write};

/// Error codes (JSON-RPC 2.0 §5.1; -32000..-32099 are ours).
pub mod code {
    /// Invalid JSON was received (the connection is then closed: the
    /// stream's framing is lost).
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON is not a valid request object (or is too large).
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The request's `token` is missing or wrong (server-defined).
    pub const UNAUTHORIZED: i32 = -32001;
    /// SPDK answers a name that matches nothing with -ENODEV.
    pub const NO_SUCH_DEVICE: i32 = -19;
    /// -EBUSY: the object is in use (a block device mapped to a function,
    /// a namespace still draining).
    pub const BUSY: i32 = -16;
    /// -EEXIST: the name or namespace ID is taken.
    pub const EXISTS: i32 = -17;
    /// -ENOMEM: no room (memory, table slots).
    pub const NO_MEMORY: i32 = -12;
}

/// Longest message kept (longer ones are cut at a character boundary).
pub const MAX_MESSAGE: usize = 120;

/// An error to send back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    msg: [u8; MAX_MESSAGE],
    len: u8,
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcError({}, {:?})", self.code, self.message())
    }
}

impl RpcError {
    pub fn new(code: i32, message: &str) -> RpcError {
        let mut e = RpcError { code, msg: [0; MAX_MESSAGE], len: 0 };
        let _ = e.write_str(message);
        e
    }

    /// A formatted message (`format_args!`), cut to [`MAX_MESSAGE`].
    pub fn fmt(code: i32, args: fmt::Arguments<'_>) -> RpcError {
        let mut e = RpcError { code, msg: [0; MAX_MESSAGE], len: 0 };
        let _ = e.write_fmt(args);
        e
    }

    pub fn invalid_params(args: fmt::Arguments<'_>) -> RpcError {
        RpcError::fmt(code::INVALID_PARAMS, args)
    }

    pub fn message(&self) -> &str {
        // Only whole characters are ever copied in.
        core::str::from_utf8(&self.msg[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Write for RpcError {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut b = [0u8; 4];
            let e = c.encode_utf8(&mut b).as_bytes();
            let at = usize::from(self.len);
            if at + e.len() > MAX_MESSAGE {
                return Err(fmt::Error);
            }
            self.msg[at..at + e.len()].copy_from_slice(e);
            self.len += e.len() as u8;
        }
        Ok(())
    }
}
