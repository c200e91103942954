//! A request object (JSON-RPC 2.0 §4): `jsonrpc` exactly "2.0", `method`
//! a string, `params` (optional) an object or array, `id` (optional; a
//! request without one is a notification, §4.1) a string, number or
//! null. Our one extension: `token`, a string, checked by the server
//! when the configuration sets an access token. Any other member, or a
//! member given twice, makes the request invalid (a typo such as
//! `param` is reported instead of ignored).

use crate::error::{code, RpcError};
use crate::json::{self, Kind, Value};

/// Longest id echoed back (longer string or number ids are refused, so
/// an error response always fits [`crate::response::MIN_BUFFER`]).
pub const MAX_ID: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `None`: a notification (no response is sent).
    pub id: Option<Value<'a>>,
    pub method: Value<'a>,
    pub params: Option<Value<'a>>,
    pub token: Option<Value<'a>>,
}

impl Request<'_> {
    /// The method name, if it is short and plain (ours all are).
    pub fn method<'b>(&self, buf: &'b mut [u8; 64]) -> Option<&'b str> {
        self.method.unescape(buf)
    }
}

/// A request that cannot be served: the error to answer, and the id if
/// one could be read (else the response carries `"id": null`, §5).
#[derive(Clone, Copy, Debug)]
pub struct Rejected<'a> {
    pub id: Option<Value<'a>>,
    pub error: RpcError,
    /// Whether the connection must be closed after the answer (the text
    /// was not JSON: where the next request starts is unknown).
    pub fatal: bool,
}

/// Parses one framed request.
pub fn parse_request(text: &[u8]) -> Result<Request<'_>, Rejected<'_>> {
    let v = json::validate(text).map_err(|e| Rejected { id: None, error: RpcError::new(code::PARSE_ERROR, e.describe()), fatal: true })?;
    let invalid = |id, msg: core::fmt::Arguments<'_>| Rejected { id, error: RpcError::fmt(code::INVALID_REQUEST, msg), fatal: false };
    match v.kind() {
        Kind::Object => {}
        Kind::Array => return Err(invalid(None, format_args!("invalid request: batch requests are not supported"))),
        k => return Err(invalid(None, format_args!("invalid request: expected an object, got {}", k.name()))),
    }
    // The id first, so that later errors can carry it.
    let mut id = None;
    let mut ids = 0;
    for (k, val) in v.members() {
        if k.str_eq("id") {
            ids += 1;
            id = Some(val);
        }
    }
    let id = match id {
        Some(i) if !matches!(i.kind(), Kind::String | Kind::Number | Kind::Null) => {
            return Err(invalid(None, format_args!("invalid request: id must be a string, number or null, got {}", i.kind().name())))
        }
        Some(i) if i.raw().len() > MAX_ID => return Err(invalid(None, format_args!("invalid request: id longer than {MAX_ID} bytes"))),
        i => i,
    };
    if ids > 1 {
        return Err(invalid(id, format_args!("invalid request: member `id` given twice")));
    }
    let (mut jsonrpc, mut method, mut params, mut token) = (None, None, None, None);
    for (k, val) in v.members() {
        let slot = if k.str_eq("jsonrpc") {
            &mut jsonrpc
        } else if k.str_eq("method") {
            &mut method
        } else if k.str_eq("params") {
            &mut params
        } else if k.str_eq("token") {
            &mut token
        } else if k.str_eq("id") {
            continue;
        } else {
            let mut b = [0u8; 32];
            let name = k.unescape(&mut b).unwrap_or("(a long name)");
            return Err(invalid(id, format_args!("invalid request: unknown member `{name}`")));
        };
        if slot.replace(val).is_some() {
            let mut b = [0u8; 32];
            let name = k.unescape(&mut b).unwrap_or("?");
            return Err(invalid(id, format_args!("invalid request: member `{name}` given twice")));
        }
    }
    if !jsonrpc.is_some_and(|j| j.str_eq("2.0")) {
        return Err(invalid(id, format_args!("invalid request: `jsonrpc` must be \"2.0\"")));
    }
    let Some(method) = method.filter(|m| m.kind() == Kind::String) else {
        return Err(invalid(id, format_args!("invalid request: `method` must be a string")));
    };
    if let Some(p) = params {
        if !matches!(p.kind(), Kind::Object | Kind::Array) {
            return Err(invalid(id, format_args!("invalid request: `params` must be an object or an array, got {}", p.kind().name())));
        }
    }
    if let Some(t) = token {
        if t.kind() != Kind::String {
            return Err(invalid(id, format_args!("invalid request: `token` must be a string")));
        }
    }
    Ok(Request { id, method, params, token })
}
