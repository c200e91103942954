//! The operator node: a management client on the simulated switch, with
//! its own MAC, IPv4 address(es) and smoltcp TCP/IP stack (Ethernet, ARP).
//! It makes a scenario's `[[rpc]]` calls to the card's management server
//! at their simulated times, one TCP connection per call, and checks each
//! answer against what the entry expects.
//!
//! It speaks JSON-RPC 2.0 with `serde_json`, written from the JSON-RPC
//! specification; it does not use the firmware's `dpu-rpc` crate
//! (DESIGN.md §5: an independent peer).
//!
//! With `dpusim --hostfwd`, it also relays TCP connections from a host
//! port to the management server (`super::hostfwd`).

use serde_json::Value;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use super::frames::Frames;
use super::poll_event::PendingPoll;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address};
use std::net::Ipv4Addr;

/// Socket buffers per connection and direction.
const BUFFER: usize = 128 * 1024;
/// First local TCP port of the calls.
const FIRST_LOCAL_PORT: u16 = 50000;

/// What a call expects (from its `[[rpc]]` entry).
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub error: Option<i64>,
    /// Text the error's message must contain (e.g. the parameter it names).
    pub message: Option<String>,
    pub result: Option<Value>,
    pub close: bool,
    pub refused: bool,
}

/// One scripted call.
#[derive(Clone, Debug)]
pub struct Call {
    pub label: String,
    /// Cycles after the workload starts.
    pub at: u64,
    pub from: Ipv4Addr,
    pub request: Vec<u8>,
    /// The id the request carries (None for raw bytes).
    pub id: Option<i64>,
    pub expect: Expect,
}

#[derive(Debug)]
enum Phase {
    Waiting,
    Open { handle: SocketHandle, sent: usize, answer: Vec<u8>, deadline: u64 },
    Done,
}

/// The outcome of a call.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub label: String,
    pub result: Result<String, String>,
}

pub struct Operator {
    iface: Interface,
    dev: Frames,
    pub(crate) sockets: SocketSet<'static>,
    server: IpEndpoint,
    calls: Vec<(Call, Phase)>,
    /// Cycle the workload started (calls are relative to it), once armed.
    start: Option<u64>,
    /// How long a call may take, cycles.
    call_timeout: u64,
    next_port: u16,
    clock_hz: u64,
    scheduled: PendingPoll,
    pub outcomes: Vec<Outcome>,
    /// Lines to print (cycle, text), taken by the machine.
    pub log: Vec<(u64, String)>,
    /// Host connections relayed to the server (`--hostfwd`).
    pub(crate) relays: Vec<super::hostfwd::Relay>,
    pub(crate) listener: Option<std::net::TcpListener>,
}

fn v4(a: Ipv4Addr) -> Ipv4Address {
    let o = a.octets();
    Ipv4Address::new(o[0], o[1], o[2], o[3])
}

impl Operator {
    /// `addrs`: the node's addresses (the first is its own, the others
    /// the `from` of some calls); `server`: the management address.
    pub fn new(addrs: &[Ipv4Addr], prefix: u8, server: (Ipv4Addr, u16), mtu: u32, call_timeout: u64, calls: Vec<Call>, clock_hz: u64) -> Operator {
        let mut dev = Frames::new(mtu as usize);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(super::node_mac(super::Node::Operator))));
        cfg.random_seed = 0x0b5e_7a70_0000_0001;
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            for &ip in addrs {
                let _ = a.push(IpCidr::new(v4(ip).into(), prefix));
            }
        });
        let calls = calls.into_iter().map(|c| (c, Phase::Waiting)).collect();
        Operator {
            iface,
            dev,
            sockets: SocketSet::new(vec![]),
            server: IpEndpoint::new(v4(server.0).into(), server.1),
            calls,
            start: None,
            call_timeout,
            next_port: FIRST_LOCAL_PORT,
            clock_hz,
            scheduled: PendingPoll::default(),
            outcomes: Vec::new(),
            log: Vec::new(),
            relays: Vec::new(),
            listener: None,
        }
    }

    fn instant(&self, cycles: u64) -> Instant {
        Instant::from_micros((u128::from(cycles) * 1_000_000 / u128::from(self.clock_hz)) as i64)
    }

    fn cycles(&self, i: Instant) -> u64 {
        (i.total_micros().max(0) as u128 * u128::from(self.clock_hz)).div_ceil(1_000_000) as u64
    }

    /// The workload started at `now`: calls are timed from here.
    pub fn arm(&mut self, now: u64) {
        self.start.get_or_insert(now);
    }

    /// Whether every call has its outcome.
    pub fn finished(&self) -> bool {
        self.calls.iter().all(|(_, p)| matches!(p, Phase::Done))
    }

    /// Calls without an outcome (for the end-of-run report).
    pub fn pending(&self) -> Vec<String> {
        self.calls.iter().filter(|(_, p)| !matches!(p, Phase::Done)).map(|(c, _)| c.label.clone()).collect()
    }

    /// A TCP socket from `from` to the server.
    pub(crate) fn open(&mut self, from: Option<Ipv4Addr>) -> Option<SocketHandle> {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; BUFFER]), tcp::SocketBuffer::new(vec![0u8; BUFFER]));
        s.set_nagle_enabled(false);
        let port = self.next_port;
        self.next_port = if self.next_port == u16::MAX { FIRST_LOCAL_PORT } else { self.next_port + 1 };
        let local = IpListenEndpoint { addr: from.map(|a| v4(a).into()), port };
        s.connect(self.iface.context(), self.server, local).ok()?;
        Some(self.sockets.add(s))
    }

    /// A frame arrived (processed at the next `poll`).
    pub fn receive(&mut self, frame: Vec<u8>) {
        self.dev.rx.push_back(frame);
    }

    /// Runs the stack and the calls at `now`; returns frames to send.
    pub fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        self.scheduled.ran(now);
        self.reap();
        let t = self.instant(now);
        for _ in 0..4 {
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
            let mut progress = self.step_calls(now);
            progress |= self.step_relays(now);
            if !progress {
                break;
            }
        }
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
        std::mem::take(&mut self.dev.tx)
    }

    /// Advances the calls; whether anything changed.
    fn step_calls(&mut self, now: u64) -> bool {
        let Some(start) = self.start else { return false };
        let mut progress = false;
        for k in 0..self.calls.len() {
            if matches!(self.calls[k].1, Phase::Waiting) && now >= start.saturating_add(self.calls[k].0.at) {
                let from = Some(self.calls[k].0.from);
                let deadline = now + self.call_timeout;
                match self.open(from) {
                    Some(handle) => self.calls[k].1 = Phase::Open { handle, sent: 0, answer: Vec::new(), deadline },
                    None => self.finish(k, now, Err("could not open a TCP connection".into())),
                }
                progress = true;
            }
            let (call, phase) = &mut self.calls[k];
            let Phase::Open { handle, sent, answer, deadline } = phase else { continue };
            let s = self.sockets.get_mut::<tcp::Socket>(*handle);
            if s.may_send() && *sent < call.request.len() {
                if let Ok(n) = s.send_slice(&call.request[*sent..]) {
                    *sent += n;
                    progress |= n > 0;
                }
            }
            while s.can_recv() {
                match s.recv(|b| (b.len(), b.to_vec())) {
                    Ok(b) if !b.is_empty() => {
                        answer.extend_from_slice(&b);
                        progress = true;
                    }
                    _ => break,
                }
            }
            let closed = !s.may_recv() && !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived);
            if let Some(v) = judge(call, answer, closed, now >= *deadline) {
                s.abort();
                self.finish(k, now, v);
                progress = true;
            }
        }
        progress
    }

    /// Drops closed sockets nothing refers to any more.
    fn reap(&mut self) {
        let used: Vec<SocketHandle> = self
            .calls
            .iter()
            .filter_map(|(_, p)| match p {
                Phase::Open { handle, .. } => Some(*handle),
                _ => None,
            })
            .chain(self.relays.iter().map(|r| r.handle))
            .collect();
        let dead: Vec<SocketHandle> =
            self.sockets.iter().filter(|(h, s)| !used.contains(h) && matches!(s, smoltcp::socket::Socket::Tcp(t) if t.state() == tcp::State::Closed)).map(|(h, _)| h).collect();
        for h in dead {
            self.sockets.remove(h);
        }
    }

    fn finish(&mut self, k: usize, now: u64, r: Result<String, String>) {
        let label = self.calls[k].0.label.clone();
        let line = match &r {
            Ok(s) => format!("rpc[{k}] {label}: ok: {s}"),
            Err(e) => format!("rpc[{k}] {label}: FAILED: {e}"),
        };
        self.log.push((now, line));
        self.outcomes.push(Outcome { label: format!("rpc[{k}] {label}"), result: r });
        self.calls[k].1 = Phase::Done;
    }

    /// When the node next needs to run.
    pub fn next_poll(&mut self, now: u64) -> Option<u64> {
        let t = self.instant(now);
        let tcp = self.iface.poll_at(t, &self.sockets).map(|i| self.cycles(i).max(now + 1));
        let calls = self.start.and_then(|start| {
            self.calls
                .iter()
                .filter_map(|(c, p)| match p {
                    Phase::Waiting => Some(start.saturating_add(c.at).max(now + 1)),
                    Phase::Open { deadline, .. } => Some((*deadline).max(now + 1)),
                    Phase::Done => None,
                })
                .min()
        });
        let relay = (!self.relays.is_empty() || self.listener.is_some()).then(|| now + self.clock_hz / 10_000);
        [tcp, calls, relay].into_iter().flatten().min()
    }

    /// Records that a poll event is queued at `at`; false if an earlier
    /// one already is (no duplicate events).
    pub fn schedule(&mut self, at: u64) -> bool {
        self.scheduled.schedule(at)
    }
}

/// The bytes of `[[rpc]]` entry `i` and the id they carry: a JSON-RPC 2.0
/// request (id i + 1, the entry's token or else `default_token`, params
/// padded to `pad_to` bytes) or the entry's raw text.
pub fn request_bytes(i: usize, r: &dpu_targets::RpcCfg, default_token: Option<&str>) -> Result<(Vec<u8>, Option<i64>), String> {
    if let Some(raw) = &r.raw {
        return Ok((raw.as_bytes().to_vec(), None));
    }
    let id = i as i64 + 1;
    let mut req = serde_json::Map::new();
    req.insert("jsonrpc".into(), "2.0".into());
    req.insert("id".into(), id.into());
    req.insert("method".into(), r.method.clone().unwrap_or_default().into());
    if let Some(p) = &r.params {
        req.insert("params".into(), serde_json::to_value(p).map_err(|e| format!("rpc[{i}].params: {e}"))?);
    }
    match r.token.as_deref().or(default_token) {
        Some("") | None => {}
        Some(t) => {
            req.insert("token".into(), t.into());
        }
    }
    if let Some(n) = r.pad_to {
        let params = req.entry("params").or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = params {
            o.insert("pad".into(), "".into());
        }
        let base = serde_json::to_vec(&req).map_err(|e| e.to_string())?.len();
        if let Some(Value::Object(o)) = req.get_mut("params") {
            o.insert("pad".into(), "x".repeat(n.saturating_sub(base)).into());
        }
    }
    Ok((serde_json::to_vec(&req).map_err(|e| e.to_string())?, Some(id)))
}

/// Whether a call is over, and how it went: `None` while it may still
/// change (no complete answer yet, connection open, before the deadline).
fn judge(c: &Call, answer: &[u8], closed: bool, timed_out: bool) -> Option<Result<String, String>> {
    let e = &c.expect;
    let parsed = first_json(answer);
    if e.refused {
        if !answer.is_empty() {
            return Some(Err(format!("expected the connection to be refused, got an answer: {}", String::from_utf8_lossy(answer).trim_end())));
        }
        if closed {
            return Some(Ok("refused (connection reset, no answer)".into()));
        }
        return timed_out.then(|| Err("expected the connection to be refused; it stayed open without an answer".into()));
    }
    let Some(v) = parsed else {
        if closed && e.close && e.error.is_none() && e.result.is_none() {
            return Some(Ok("closed without an answer".into()));
        }
        if closed {
            return Some(Err(match answer.is_empty() {
                true => "the connection was closed without an answer".into(),
                false => format!("the connection was closed after an incomplete answer: {}", String::from_utf8_lossy(answer)),
            }));
        }
        return timed_out.then(|| Err(format!("no answer within the call timeout (got {} bytes)", answer.len())));
    };
    if e.close && !closed {
        return timed_out.then(|| Err("answered, but the card did not close the connection".into()));
    }
    Some(check_answer(c, &v))
}

/// The first complete JSON value in `b`, if any.
fn first_json(b: &[u8]) -> Option<Value> {
    let mut it = serde_json::Deserializer::from_slice(b).into_iter::<Value>();
    it.next()?.ok()
}

/// Checks a response object (JSON-RPC 2.0 §5) against the expectations.
fn check_answer(c: &Call, v: &Value) -> Result<String, String> {
    let text = v.to_string();
    let short = if text.len() > 200 { format!("{}...", &text[..200]) } else { text.clone() };
    if v.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err(format!("not a JSON-RPC 2.0 response: {short}"));
    }
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    match c.id {
        Some(want) if id != Value::from(want) && !(v.get("error").is_some() && id.is_null()) => return Err(format!("response id {id} (sent {want}): {short}")),
        _ => {}
    }
    match (v.get("result"), v.get("error")) {
        (Some(_), Some(_)) | (None, None) => Err(format!("a response has exactly one of result and error: {short}")),
        (None, Some(err)) => {
            let code = err.get("code").and_then(Value::as_i64);
            let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
            match c.expect.error {
                Some(want) if code == Some(want) => match &c.expect.message {
                    Some(text) if !msg.contains(text.as_str()) => Err(format!("error {want} without \"{text}\" in its message: {short}")),
                    _ => Ok(format!("error {want}: {msg}")),
                },
                Some(want) => Err(format!("expected error {want}, got {short}")),
                None if c.expect.result.is_none() && c.expect.close => Ok(format!("error {}: {msg}; closed", code.unwrap_or(0))),
                None => Err(format!("expected a result, got {short}")),
            }
        }
        (Some(result), None) => {
            if let Some(want) = c.expect.error {
                return Err(format!("expected error {want}, got a result: {short}"));
            }
            if let Some(want) = &c.expect.result {
                contains(result, want, "result").map_err(|e| format!("{e}; result: {short}"))?;
            }
            Ok(format!("result {short}"))
        }
    }
}

/// Whether `have` contains `want`: objects member by member
/// (recursively), arrays element by element (each wanted element matched
/// by some element), anything else equal (numbers by value).
pub fn contains(have: &Value, want: &Value, path: &str) -> Result<(), String> {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, wv) in w {
                let hv = h.get(k).ok_or_else(|| format!("{path}.{k} is missing"))?;
                contains(hv, wv, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(h), Value::Array(w)) => {
            for (i, wv) in w.iter().enumerate() {
                if !h.iter().any(|hv| contains(hv, wv, path).is_ok()) {
                    return Err(format!("{path}: no element matches expected element {i} ({wv})"));
                }
            }
            Ok(())
        }
        (Value::Number(h), Value::Number(w)) if h.as_f64() == w.as_f64() => Ok(()),
        (h, w) if h == w => Ok(()),
        (h, w) => Err(format!("{path} is {h}, expected {w}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(expect: Expect) -> Call {
        Call { label: "t".into(), at: 0, from: Ipv4Addr::new(10, 0, 0, 250), request: Vec::new(), id: Some(1), expect }
    }

    #[test]
    fn subset_matching() {
        let have = json!({"a": [{"name": "fn1n1", "block_size": 512}, {"name": "fn2n1"}], "b": 1});
        assert!(contains(&have, &json!({"a": [{"name": "fn2n1"}, {"block_size": 512}]}), "r").is_ok());
        assert!(contains(&have, &json!({"b": 1.0}), "r").is_ok());
        let e = contains(&have, &json!({"a": [{"name": "fn3n1"}]}), "r").unwrap_err();
        assert!(e.contains("no element matches"), "{e}");
        assert!(contains(&have, &json!({"c": 1}), "r").unwrap_err().contains("r.c is missing"));
        assert!(contains(&have, &json!({"b": "1"}), "r").unwrap_err().contains("r.b is 1"));
    }

    #[test]
    fn answers_are_judged() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":[{"name":"fn1n1"}]}"#;
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}"#;
        let want_result = call(Expect { result: Some(json!([{"name": "fn1n1"}])), ..Default::default() });
        assert!(judge(&want_result, ok, false, false).unwrap().is_ok());
        assert!(judge(&want_result, err, false, false).unwrap().is_err());
        // Half an answer: wait, then fail at the deadline.
        assert!(judge(&want_result, &ok[..10], false, false).is_none());
        assert!(judge(&want_result, &ok[..10], false, true).unwrap().is_err());
        let want_err = call(Expect { error: Some(-32601), ..Default::default() });
        assert!(judge(&want_err, err, false, false).unwrap().is_ok());
        assert!(judge(&want_err, ok, false, false).unwrap().is_err());
        // The message must name what it was told to.
        let named = call(Expect { error: Some(-32601), message: Some("method not found".into()), ..Default::default() });
        assert!(judge(&named, err, false, false).unwrap().is_ok());
        let misnamed = call(Expect { error: Some(-32601), message: Some("`nsid`".into()), ..Default::default() });
        assert!(judge(&misnamed, err, false, false).unwrap().unwrap_err().contains("without \"`nsid`\" in its message"));
        // Error with close: not done until closed.
        let err_close = call(Expect { error: Some(-32601), close: true, ..Default::default() });
        assert!(judge(&err_close, err, false, false).is_none());
        assert!(judge(&err_close, err, true, false).unwrap().is_ok());
        assert!(judge(&err_close, err, false, true).unwrap().is_err());
        let refused = call(Expect { refused: true, ..Default::default() });
        assert!(judge(&refused, b"", true, false).unwrap().is_ok());
        assert!(judge(&refused, err, true, false).unwrap().is_err());
        assert!(judge(&refused, b"", false, true).unwrap().is_err());
        // Wrong id, wrong version.
        assert!(judge(&want_result, br#"{"jsonrpc":"2.0","id":2,"result":[{"name":"fn1n1"}]}"#, false, false).unwrap().is_err());
        assert!(judge(&want_result, br#"{"jsonrpc":"1.0","id":1,"result":[]}"#, false, false).unwrap().is_err());
    }
}
