//! Scenario `[management]` (the card's JSON-RPC management server: which
//! data port's address serves it, the TCP port, the client allow-list
//! and the access token) and `[[rpc]]` entries: calls an operator node on
//! the simulated switch makes at given times, with what it expects back.

use crate::scenario::{parse_cidr, parse_time_ns, same_subnet, Scenario};
use crate::ConfigError;
use serde::Deserialize;
use std::net::Ipv4Addr;

/// The management server's default TCP port (SPDK's `rpc.py` talks to a
/// UNIX socket; on TCP its examples use 5260, as we do).
pub const DEFAULT_TCP_PORT: u16 = 5260;
/// Allow-list entries the boot configuration carries.
pub const MAX_ALLOW: usize = 8;
/// Longest access token.
pub const MAX_TOKEN: usize = 64;
/// Largest request an `[[rpc]]` entry may send (`pad_to`).
pub const MAX_RPC_BYTES: usize = 65536;

fn d_port() -> String {
    "eth0".into()
}
fn d_tcp() -> u16 {
    DEFAULT_TCP_PORT
}
fn d_timeout() -> String {
    "5s".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementCfg {
    /// The data port whose address serves ("eth0", "eth1", ...: the
    /// n-th address of `network.ports`).
    #[serde(default = "d_port")]
    pub port: String,
    #[serde(default = "d_tcp")]
    pub tcp_port: u16,
    /// Client prefixes allowed to connect ("10.0.0.0/24"); empty: any.
    #[serde(default)]
    pub allow: Vec<String>,
    /// If set, every request must carry it as a top-level `"token"` member.
    pub token: Option<String>,
    /// A client that began a request must finish it within this ("5s").
    #[serde(default = "d_timeout")]
    pub request_timeout: String,
    /// The simulated operator node's address (default: the port's subnet
    /// broadcast address minus 5, e.g. 10.0.0.250 in a /24).
    pub operator: Option<String>,
}

/// One scripted call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcCfg {
    /// Time after the workload starts ("2ms"), as faults.
    pub at: String,
    /// Shown in the log and in failures (default: the method, or "raw").
    pub name: Option<String>,
    /// A request: method and params (a TOML table, sent as a JSON object).
    pub method: Option<String>,
    pub params: Option<toml::Table>,
    /// Or these exact bytes instead of a request.
    pub raw: Option<String>,
    /// Pads the request with a `"pad"` member to this many bytes.
    pub pad_to: Option<usize>,
    /// Token sent (default: `management.token`; "" sends none).
    pub token: Option<String>,
    /// Source address (an extra address of the operator node; default its own).
    pub from: Option<String>,
    /// The error code expected.
    pub expect_error: Option<i64>,
    /// Text the expected error's message contains (the field it names).
    pub expect_error_message: Option<String>,
    /// A JSON value the result must contain: every member of an object
    /// (recursively), every element of an array matched by some element.
    pub expect_result: Option<toml::Value>,
    /// The card closes the connection after answering (or without answering).
    #[serde(default)]
    pub expect_close: bool,
    /// The card refuses the client: the connection is reset before any answer.
    #[serde(default)]
    pub expect_refused: bool,
}

impl RpcCfg {
    pub fn label(&self) -> String {
        self.name.clone().or_else(|| self.method.clone()).unwrap_or_else(|| "raw".into())
    }
}

/// The management settings resolved for the boot configuration and the
/// operator node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    pub port: usize,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub tcp_port: u16,
    pub allow: Vec<(Ipv4Addr, u8)>,
    pub token: Option<String>,
    pub request_timeout_ms: u16,
    pub operator: Ipv4Addr,
}

impl Scenario {
    /// `[management]` resolved (after validation), if present.
    pub fn management(&self) -> Option<Management> {
        self.resolve_management().ok().flatten()
    }

    fn resolve_management(&self) -> Result<Option<Management>, ConfigError> {
        let Some(m) = &self.management else { return Ok(None) };
        let f = &self.source;
        let bad = |field: &str| {
            let field = format!("management.{field}");
            move |msg: String| ConfigError::field(f, field, msg)
        };
        let ports = self.port_addrs();
        let port = m
            .port
            .strip_prefix("eth")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < ports.len())
            .ok_or_else(|| bad("port")(format!("`{}` is not a configured port (eth0..eth{})", m.port, ports.len().saturating_sub(1))))?;
        let (addr, prefix) = ports[port];
        if m.tcp_port == 0 {
            return Err(bad("tcp_port")("0 is not a TCP port".into()));
        }
        if m.allow.len() > MAX_ALLOW {
            return Err(bad("allow")(format!("{} entries; at most {MAX_ALLOW}", m.allow.len())));
        }
        let mut allow = Vec::new();
        for (i, a) in m.allow.iter().enumerate() {
            allow.push(parse_cidr(a).map_err(bad(&format!("allow[{i}]")))?);
        }
        if let Some(t) = &m.token {
            if t.is_empty() || t.len() > MAX_TOKEN || !t.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(bad("token")(format!("must be 1..={MAX_TOKEN} printable ASCII characters without spaces")));
            }
        }
        let ns = parse_time_ns(&m.request_timeout).map_err(bad("request_timeout"))?;
        if ns % 1_000_000 != 0 || !(1..=60_000).contains(&(ns / 1_000_000)) {
            return Err(bad("request_timeout")(format!("{} must be whole milliseconds within 1ms..=60s", m.request_timeout)));
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        let operator = match &m.operator {
            Some(o) => o.parse::<Ipv4Addr>().map_err(|_| bad("operator")(format!("`{o}` is not an IPv4 address")))?,
            None => Ipv4Addr::from((u32::from(addr) | !mask).wrapping_sub(5)),
        };
        if !same_subnet(operator, addr, prefix) || operator == addr || self.targets.iter().any(|t| t.ip == operator.to_string()) {
            return Err(bad("operator")(format!("{operator} must be a free address in {addr}/{prefix}, the management port's subnet")));
        }
        Ok(Some(Management { port, addr, prefix, tcp_port: m.tcp_port, allow, token: m.token.clone(), request_timeout_ms: (ns / 1_000_000) as u16, operator }))
    }

    /// Checks `[management]` and `[[rpc]]`.
    pub(crate) fn validate_management(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let m = self.resolve_management()?;
        if self.rpc.is_empty() {
            return Ok(());
        }
        let Some(m) = m else {
            return Err(ConfigError::field(f, "rpc", "[[rpc]] calls need a [management] section (the server's address)"));
        };
        for (i, r) in self.rpc.iter().enumerate() {
            let err = |field: &str, msg: String| Err(ConfigError::field(f, format!("rpc[{i}].{field}"), msg));
            parse_time_ns(&r.at).map_err(|e| ConfigError::field(f, format!("rpc[{i}].at"), e))?;
            match (&r.method, &r.raw) {
                (Some(_), Some(_)) | (None, None) => return err("method", "give either `method` (a request) or `raw` (bytes)".into()),
                (None, Some(_)) if r.params.is_some() || r.pad_to.is_some() => return err("raw", "`params` and `pad_to` go with `method`, not `raw`".into()),
                _ => {}
            }
            if r.pad_to.is_some_and(|n| n > MAX_RPC_BYTES) {
                return err("pad_to", format!("at most {MAX_RPC_BYTES} bytes"));
            }
            if r.expect_refused && (r.expect_error.is_some() || r.expect_result.is_some()) {
                return err("expect_refused", "a refused client gets no answer: no expect_error or expect_result".into());
            }
            if r.expect_error_message.is_some() && r.expect_error.is_none() {
                return err("expect_error_message", "needs expect_error (the code)".into());
            }
            if r.expect_error.is_some() && r.expect_result.is_some() {
                return err("expect_error", "expect an error or a result, not both".into());
            }
            if !r.expect_refused && !r.expect_close && r.expect_error.is_none() && r.expect_result.is_none() {
                return err("expect_result", "say what is expected: expect_result, expect_error, expect_close or expect_refused".into());
            }
            if let Some(from) = &r.from {
                let ip: Ipv4Addr = from.parse().map_err(|_| ConfigError::field(f, format!("rpc[{i}].from"), format!("`{from}` is not an IPv4 address")))?;
                if !same_subnet(ip, m.addr, m.prefix) || ip == m.addr {
                    return err("from", format!("{ip} must be an address in {}/{}, the management port's subnet", m.addr, m.prefix));
                }
            }
        }
        Ok(())
    }
}
