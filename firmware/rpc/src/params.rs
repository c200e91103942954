//! Named parameters of a method (`params` as an object, as SPDK's
//! methods take them), with -32602 errors that name the member and what
//! was expected.

use crate::error::RpcError;
use crate::json::{Kind, Value};

#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    obj: Option<Value<'a>>,
}

impl<'a> Params<'a> {
    /// `params` of a request: absent, `{}`, or an object of named
    /// parameters (positional parameters are refused).
    pub fn new(params: Option<Value<'a>>) -> Result<Params<'a>, RpcError> {
        match params {
            None => Ok(Params { obj: None }),
            Some(v) if v.kind() == Kind::Object => Ok(Params { obj: Some(v) }),
            Some(v) => Err(RpcError::invalid_params(format_args!("invalid params: expected an object of named parameters, got {}", v.kind().name()))),
        }
    }

    /// Refuses any parameter not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), RpcError> {
        for (k, _) in self.obj.iter().flat_map(|o| o.members()) {
            if !allowed.iter().any(|a| k.str_eq(a)) {
                let mut b = [0u8; 32];
                let name = k.unescape(&mut b).unwrap_or("(a long name)");
                return Err(RpcError::invalid_params(format_args!("invalid params: unknown parameter `{name}`")));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<Value<'a>> {
        self.obj?.get(name)
    }

    fn wrong(name: &str, want: &str, got: Value<'_>) -> RpcError {
        RpcError::invalid_params(format_args!("invalid params: `{name}` must be {want}, got {}", got.kind().name()))
    }

    /// A string parameter, unescaped into `buf`.
    pub fn str<'b>(&self, name: &str, buf: &'b mut [u8]) -> Result<Option<&'b str>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if v.kind() != Kind::String {
            return Err(Self::wrong(name, "a string", v));
        }
        let cap = buf.len();
        v.unescape(buf).map(Some).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `{name}` is longer than {cap} bytes or not valid text")))
    }

    /// A non-negative integer parameter.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if v.kind() != Kind::Number {
            return Err(Self::wrong(name, "a non-negative integer", v));
        }
        v.as_u64().map(Some).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `{name}` must be a non-negative integer below 2^64")))
    }

    /// A parameter the method cannot do without: -32602 naming it when absent.
    pub fn required<T>(name: &str, v: Option<T>) -> Result<T, RpcError> {
        v.ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `{name}` is required")))
    }

    /// An integer parameter within `range`: -32602 naming it otherwise.
    pub fn u64_in(&self, name: &str, range: core::ops::RangeInclusive<u64>) -> Result<Option<u64>, RpcError> {
        match self.u64(name)? {
            Some(v) if !range.contains(&v) => Err(RpcError::invalid_params(format_args!("invalid params: `{name}` must be in {}..={}, got {v}", range.start(), range.end()))),
            v => Ok(v),
        }
    }

    /// An object parameter (SPDK's `listen_address`, `namespace`): its
    /// members as parameters of their own, whose errors name them.
    pub fn object(&self, name: &str) -> Result<Option<Params<'a>>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if v.kind() != Kind::Object {
            return Err(Self::wrong(name, "an object", v));
        }
        Ok(Some(Params { obj: Some(v) }))
    }

    /// An array of strings (SPDK's `base_bdevs`): each element unescaped
    /// into `buf` and handed to `each` with its index. Returns how many
    /// there were; -32602 naming the parameter (and the element) when it
    /// is no array, an element is no string or is too long.
    pub fn str_array(&self, name: &str, buf: &mut [u8], mut each: impl FnMut(usize, &str) -> Result<(), RpcError>) -> Result<Option<usize>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if v.kind() != Kind::Array {
            return Err(Self::wrong(name, "an array of strings", v));
        }
        let mut n = 0;
        for e in v.elements() {
            if e.kind() != Kind::String {
                return Err(RpcError::invalid_params(format_args!("invalid params: `{name}[{n}]` must be a string, got {}", e.kind().name())));
            }
            let cap = buf.len();
            let s = e.unescape(buf).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `{name}[{n}]` is longer than {cap} bytes or not valid text")))?;
            each(n, s)?;
            n += 1;
        }
        Ok(Some(n))
    }

    /// An array parameter: its elements, in order.
    pub fn array(&self, name: &str) -> Result<Option<crate::json::Elements<'a>>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if v.kind() != Kind::Array {
            return Err(Self::wrong(name, "an array", v));
        }
        Ok(Some(v.elements()))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, RpcError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        v.as_bool().map(Some).ok_or_else(|| Self::wrong(name, "a boolean", v))
    }
}
