//! Connections of the management server. Each slot is a smoltcp socket
//! listening on the management TCP port; a connection from outside the
//! allow-list is reset at once. Requests are framed as SPDK's server
//! frames them (one JSON value after another, see `dpu_rpc::framing`),
//! answered in order, one at a time. Bounds: a request larger than
//! [`dpu_rpc::MAX_REQUEST`] is answered with an error and the connection
//! closed; so is text that is not JSON (the framing is lost) and a
//! request begun but not finished within the configured request timeout;
//! a connection idle for [`IDLE_TIMEOUT_S`] is closed.
//!
//! The rules (allow-list, token, request timeout) are the server's own
//! copy of the boot configuration's, which `dpu_mgmt_set` changes
//! ([`super::settings::mgmt_set`]): a connection admitted before is
//! checked again at every turn and reset when the new list leaves it out.
//!
//! `bdev_nvme_attach_controller` is answered when the connection to the
//! remote controller is made or has failed (as SPDK answers it): the
//! slot keeps the request's id and reads nothing more until then.

use super::live::Live;
use super::methods::{self, Changes, Ctx};
use super::nvme::{Answer, Nvme, Outcome, Request};
use super::persist::Persist;
use super::update::Update;
use crate::bootcfg::{self, MgmtCfg};
use crate::net::stack::Stack;
use dpu_hal::memory_map::TIMEBASE_HZ;
use dpu_rpc::{code, response, Framer, RpcError, Scan, MAX_REQUEST};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::wire::IpAddress;

/// Concurrent clients (further SYNs find no listener and are reset).
pub const SLOTS: usize = 4;
/// Largest response (`bdev_get_bdevs` of every namespace fits).
const RESPONSE_MAX: usize = 96 * 1024;
/// A connection with no request in progress is closed after this.
pub const IDLE_TIMEOUT_S: u64 = 60;
const MS: u64 = TIMEBASE_HZ / 1000;

struct Slot {
    handle: SocketHandle,
    input: &'static mut [u8],
    len: usize,
    framer: Framer,
    out: &'static mut [u8],
    out_len: usize,
    out_sent: usize,
    /// Close once the output is sent.
    close_after: bool,
    /// The client's address was checked against the allow-list.
    admitted: bool,
    /// The client's address (once admitted).
    peer: [u8; 4],
    /// When the request in progress began / the last activity.
    started: Option<u64>,
    last: u64,
    /// An attach waits for its outcome: (controller index, the request's
    /// id as received (empty: a notification), the connection it came on).
    waiting: Option<(usize, [u8; 64], usize, bool, u32)>,
    /// Connections served by this slot so far (an answer goes to the
    /// connection that asked).
    conn_gen: u32,
}

pub struct Server {
    /// The rules in force: the boot configuration's, as `dpu_mgmt_set`
    /// changed them.
    cfg: MgmtCfg,
    pub port: usize,
    slots: [Option<Slot>; SLOTS],
    /// The configuration changed at run time (and its saves), a firmware update.
    state: Changes,
}

impl Server {
    /// Sets up the listening sockets on `stack` (the management port's
    /// control-queue stack). `None` if memory or sockets ran out.
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn start(stack: &mut Stack) -> Option<Server> {
        let cfg = bootcfg::management()?;
        // Requests may carry keys: no copy stays in the NIC's receive
        // buffers once the stack has read a frame.
        stack.dev.rx.wipe = true;
        let mut s = Server { cfg: *cfg, port: usize::from(cfg.port), slots: [const { None }; SLOTS], state: Changes { live: Live::new(), nvmf: super::nvmf::Nvmf::new(), update: Update::new(), persist: Persist::new(), nvme: Nvme::new(), keys: super::crypto::Keys::new() } };
        for slot in s.slots.iter_mut() {
            let handle = stack.listen(cfg.tcp_port, 8 * 1024, 16 * 1024)?;
            *slot = Some(Slot {
                handle,
                input: dpu_rt::alloc::ddr_bytes(MAX_REQUEST, 64)?,
                len: 0,
                framer: Framer::new(),
                out: dpu_rt::alloc::ddr_bytes(RESPONSE_MAX, 64)?,
                out_len: 0,
                out_sent: 0,
                close_after: false,
                admitted: false,
                peer: [0; 4],
                started: None,
                last: 0,
                waiting: None,
                conn_gen: 0,
            });
        }
        let ip = bootcfg::ports().get(s.port).map_or([0; 4], |p| p.ip);
        defmt::info!(
            "mgmt: JSON-RPC on {=u8}.{=u8}.{=u8}.{=u8}:{=u16} (port {=usize}), {=usize} allow-list entries, token {=str}",
            ip[0], ip[1], ip[2], ip[3], cfg.tcp_port, s.port, cfg.allow_count, if cfg.token().is_empty() { "not required" } else { "required" }
        );
        Some(s)
    }

    /// A request for the fabrics service (run-time controllers).
    pub fn take_ctrl_request(&mut self) -> Option<Request> {
        self.state.nvme.take_request()
    }

    /// The fabrics service's word on an attach.
    pub fn ctrl_outcome(&mut self, o: Outcome) {
        self.state.nvme.outcome(o, &mut self.state.live);
    }

    /// Serves every connection; returns when it next needs to run.
    pub fn poll(&mut self, stack: &mut Stack, now: u64, ctx: &Ctx) -> u64 {
        let mut next = now + IDLE_TIMEOUT_S * 1000 * MS;
        self.state.live.poll();
        self.state.update.poll();
        self.state.persist.poll(&mut self.state.live, &mut self.state.nvmf, &mut self.state.nvme, &mut self.state.keys);
        for slot in self.slots.iter_mut().flatten() {
            next = next.min(slot.serve(stack, now, &mut self.cfg, ctx, &mut self.state));
        }
        next
    }
}

impl Slot {
    fn reset(&mut self) {
        self.conn_gen = self.conn_gen.wrapping_add(1);
        self.input[..self.len].fill(0);
        self.len = 0;
        self.framer.reset();
        self.out_len = 0;
        self.out_sent = 0;
        self.close_after = false;
        self.admitted = false;
        self.started = None;
    }

    fn error(&mut self, id: Option<dpu_rpc::Value<'_>>, e: &RpcError) {
        self.out_len = response::error(self.out, id, e);
        self.out_sent = 0;
    }

    /// The answer of the attach this slot waits on, once it is there.
    fn answer_attach(&mut self, st: &mut Changes) -> bool {
        let Some((index, id, id_len, has_id, gen)) = self.waiting else { return false };
        let Some(a) = st.nvme.take_answer(index) else { return true };
        self.waiting = None;
        if !has_id || gen != self.conn_gen {
            return false; // a notification, or the client has gone
        }
        let id = dpu_rpc::json::validate(&id[..id_len]).ok();
        self.out_len = match a {
            Answer::Attached { index } => response::result(self.out, id, |w| {
                st.nvme.names(index, w);
                Ok(())
            }),
            Answer::Failed(e) => response::error(self.out, id, &e),
        };
        self.out_sent = 0;
        false
    }

    fn serve(&mut self, stack: &mut Stack, now: u64, cfg: &mut MgmtCfg, ctx: &Ctx, st: &mut Changes) -> u64 {
        let far = now + IDLE_TIMEOUT_S * 1000 * MS;
        if self.answer_attach(st) {
            // Still connecting; the connection is looked at again soon.
            return now + MS;
        }
        let s = stack.tcp(self.handle);
        match s.state() {
            State::Listen => return far,
            State::Closed => {
                self.reset();
                let _ = s.listen(cfg.tcp_port);
                return far;
            }
            // Closed by us and acknowledged: free the slot now rather than
            // after TIME-WAIT (every byte was delivered).
            State::TimeWait => {
                s.abort();
                return now + MS;
            }
            _ => {}
        }
        if !self.admitted {
            let Some(ep) = s.remote_endpoint() else { return far };
            let IpAddress::Ipv4(a) = ep.addr;
            let ip = a.octets();
            if !cfg.allows(ip) {
                defmt::warn!("mgmt: refused {=u8}.{=u8}.{=u8}.{=u8}: not on the allow-list", ip[0], ip[1], ip[2], ip[3]);
                s.abort();
                return now + MS;
            }
            self.admitted = true;
            self.peer = ip;
            self.last = now;
        } else if !cfg.allows(self.peer) {
            // The allow-list changed (`dpu_mgmt_set`) and leaves it out.
            let ip = self.peer;
            defmt::warn!("mgmt: closed {=u8}.{=u8}.{=u8}.{=u8}: no longer on the allow-list", ip[0], ip[1], ip[2], ip[3]);
            s.abort();
            return now + MS;
        }
        // Handshake not complete: nothing to read yet (and `may_recv` is
        // false, which must not read as the client having closed).
        if s.state() == State::SynReceived {
            return far;
        }
        // Send what is pending.
        if self.out_sent < self.out_len {
            if let Ok(n) = s.send_slice(&self.out[self.out_sent..self.out_len]) {
                self.out_sent += n;
                self.last = now;
            }
            if self.out_sent < self.out_len {
                return now + MS;
            }
        }
        if self.close_after {
            if s.state() == State::Established || s.state() == State::CloseWait {
                s.close();
            }
            // A client that never closes its side is reset after a second.
            if now > self.last + 1000 * MS {
                s.abort();
            }
            return now + 10 * MS;
        }
        // Read and answer the requests that are complete, one at a time.
        // Read and zero what was read in the socket's receive ring: a key
        // in `accel_crypto_key_create` must not stay there (the ring is
        // contiguous up to its wrap: two reads take it all).
        for _ in 0..2 {
            let room = &mut self.input[self.len..];
            let n = s
                .recv(|b| {
                    let n = b.len().min(room.len());
                    room[..n].copy_from_slice(&b[..n]);
                    b[..n].fill(0);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            self.len += n;
            self.last = now;
        }
        match self.framer.scan(&self.input[..self.len]) {
            Scan::Complete { start, end } => {
                let mut waiting = None;
                self.out_len = handle(&self.input[start..end], self.out, cfg, self.peer, ctx, st, &mut self.close_after, &mut waiting);
                if let Some((index, id, id_len, has_id)) = waiting {
                    self.waiting = Some((index, id, id_len, has_id, self.conn_gen));
                }
                self.out_sent = 0;
                self.input.copy_within(end..self.len, 0);
                // No copy of a handled request stays behind (a key in
                // `accel_crypto_key_create` is in the clear there).
                let old = self.len;
                self.len -= end;
                self.input[self.len..old].fill(0);
                self.framer.reset();
                self.started = None;
                // Send it (and look at what follows) on the next turn.
                return now;
            }
            Scan::NotJson { .. } => {
                self.error(None, &RpcError::new(code::PARSE_ERROR, "parse error: not a JSON-RPC request; closing the connection"));
                self.close_after = true;
                return now;
            }
            Scan::Incomplete if self.len == self.input.len() => {
                self.error(None, &RpcError::fmt(code::INVALID_REQUEST, format_args!("invalid request: larger than {MAX_REQUEST} bytes; closing the connection")));
                self.close_after = true;
                return now;
            }
            Scan::Incomplete => {}
        }
        if self.framer.in_request() {
            let started = *self.started.get_or_insert(now);
            let deadline = started + u64::from(cfg.request_timeout_ms) * MS;
            if now >= deadline {
                self.error(None, &RpcError::fmt(code::INVALID_REQUEST, format_args!("invalid request: incomplete after {} ms; closing the connection", cfg.request_timeout_ms)));
                self.close_after = true;
                return now;
            }
            return deadline;
        }
        if !s.may_recv() {
            // The client is done (FIN) and everything was answered.
            s.close();
            return now + 10 * MS;
        }
        let idle = self.last + IDLE_TIMEOUT_S * 1000 * MS;
        if now >= idle {
            s.close();
            return now + 10 * MS;
        }
        idle
    }
}

/// Answers one framed request into `out`; returns the response length
/// (0 for a notification, which gets none). `close` is set when the
/// connection must end after it.
/// `waiting` is set when the answer comes later (an attach: its
/// controller index, the request id's text and whether there is one).
/// `peer` is the client's address (`dpu_mgmt_set` keeps it admitted).
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn handle(text: &[u8], out: &mut [u8], cfg: &mut MgmtCfg, peer: [u8; 4], ctx: &Ctx, st: &mut Changes, close: &mut bool, waiting: &mut Option<(usize, [u8; 64], usize, bool)>) -> usize {
    let req = match dpu_rpc::parse_request(text) {
        Ok(r) => r,
        Err(rej) => {
            *close = rej.fatal;
            return response::error(out, rej.id, &rej.error);
        }
    };
    let token = cfg.token();
    if !token.is_empty() {
        let given = req.token.map(|t| t.raw()).unwrap_or(b"");
        // The token is printable ASCII without escapes: compare the
        // string's text, in time independent of where it differs.
        let inner = given.get(1..given.len().saturating_sub(1)).unwrap_or(b"");
        let mut diff = (inner.len() != token.len()) as u8;
        for (i, &t) in token.iter().enumerate() {
            diff |= t ^ inner.get(i).copied().unwrap_or(0);
        }
        if req.token.is_none() || diff != 0 {
            defmt::warn!("mgmt: request refused: {=str} token", if req.token.is_none() { "missing" } else { "wrong" });
            if req.id.is_none() {
                return 0;
            }
            return response::error(out, req.id, &RpcError::new(code::UNAUTHORIZED, "unauthorized: missing or wrong token"));
        }
    }
    let mut mbuf = [0u8; 64];
    let Some(method) = req.method(&mut mbuf) else {
        return response::error(out, req.id, &RpcError::new(code::METHOD_NOT_FOUND, "method not found"));
    };
    if method == "bdev_nvme_attach_controller" {
        let attached = dpu_rpc::Params::new(req.params).and_then(|p| st.nvme.attach(&p, &st.live));
        return match attached {
            Ok(index) => {
                let mut id = [0u8; 64];
                let raw = req.id.map_or(&[][..], |v| v.raw());
                let n = raw.len().min(id.len());
                id[..n].copy_from_slice(&raw[..n]);
                *waiting = Some((index, id, n, req.id.is_some()));
                0
            }
            Err(_) if req.id.is_none() => 0,
            Err(e) => response::error(out, req.id, &e),
        };
    }
    let n = match method {
        // The server's own rules (`super::settings`).
        "dpu_mgmt_set" => response::result(out, req.id, |w| super::settings::mgmt_set(&dpu_rpc::Params::new(req.params)?, w, cfg, peer, &mut st.persist)),
        "dpu_mgmt_get" => response::result(out, req.id, |w| super::settings::mgmt_get(&dpu_rpc::Params::new(req.params)?, w, cfg)),
        _ => response::result(out, req.id, |w| methods::call(method, req.params, w, ctx, st)),
    };
    if req.id.is_none() {
        0 // a notification: done, no answer (JSON-RPC 2.0 §4.1)
    } else {
        n
    }
}
