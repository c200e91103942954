//! One NVMe/TCP queue's connection: a TCP socket on one of the core's
//! stacks plus the protocol state (`dpu_nvme_tcp::host::HostQueue`).
//! Sends whole PDUs only (never half a PDU into the socket), walks the
//! receive stream, and tears down with an H2CTermReq on a fatal error.

use crate::net::stack::Stack;
use dpu_nvme::Sqe;
use dpu_nvme_tcp::host::{Event, Fatal, HostQueue, State, Want};
use dpu_nvme_tcp::pdu::Digests;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

/// Connection life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Phase {
    /// Not connected; may (re)connect after `until` (mtime ticks).
    Down { until: u64 },
    /// TCP handshake in progress.
    Tcp,
    /// ICReq sent.
    Ic,
    /// Fabrics Connect sent.
    Connect,
    /// Ready for commands.
    Ready,
}

pub struct Conn<const N: usize> {
    pub sock: Option<SocketHandle>,
    pub port: usize,
    pub remote: [u8; 4],
    pub rport: u16,
    pub local_port: u16,
    pub q: HostQueue<N>,
    pub phase: Phase,
    /// Time the current phase started (timeouts).
    pub since: u64,
    /// Consecutive failed attempts (backoff).
    pub failures: u32,
    pub maxh2cdata: u32,
}

/// What the receive pump asks the owner to do with command data.
pub enum Data<'a> {
    /// `bytes` (at the front of the stream) belong to command `cid` at
    /// `offset`. Return how many were consumed now, or `None` if the owner
    /// started moving them asynchronously (call `data_moved` later).
    /// `crc`: the running data digest of the PDU (finished CRC32C of its
    /// data before `bytes`) when it carries one; an engine moving the
    /// bytes can continue it and hand the result to `data_moved`.
    Bytes { cid: u16, offset: u32, bytes: &'a [u8], crc: Option<u32> },
}

impl<const N: usize> Conn<N> {
    pub const fn new(qid: u16, digests: Digests) -> Self {
        Conn {
            sock: None,
            port: 0,
            remote: [0; 4],
            rport: 0,
            local_port: 0,
            q: HostQueue::new(qid, digests),
            phase: Phase::Down { until: 0 },
            since: 0,
            failures: 0,
            maxh2cdata: 0,
        }
    }

    /// Starts (or restarts) the TCP connection.
    pub fn open(&mut self, stack: &mut Stack, now: u64, rx_buf: usize, tx_buf: usize) -> bool {
        self.q.reset();
        let ok = match self.sock {
            Some(h) => stack.reconnect(h, self.remote, self.rport, self.local_port),
            None => match stack.connect(self.remote, self.rport, self.local_port, rx_buf, tx_buf) {
                Some(h) => {
                    self.sock = Some(h);
                    true
                }
                None => false,
            },
        };
        self.port = stack.port;
        self.phase = if ok { Phase::Tcp } else { Phase::Down { until: now + backoff(self.failures) } };
        self.since = now;
        ok
    }

    /// Drops the connection at once (RST: what is still in the send
    /// buffer is lost) and schedules a reconnect with backoff.
    pub fn close(&mut self, stack: &mut Stack, now: u64) {
        self.end(stack, now, false);
    }

    /// Closes the connection after what is already queued (FIN after the
    /// H2CTermReq `terminate` queued: NVMe/TCP 1.0 §3.6.2.3, the PDU is
    /// sent, then the connection closed) and schedules a reconnect with
    /// backoff. A socket still closing when the reconnect is due is
    /// aborted then (`Stack::reconnect`).
    pub fn shutdown(&mut self, stack: &mut Stack, now: u64) {
        self.end(stack, now, true);
    }

    fn end(&mut self, stack: &mut Stack, now: u64, graceful: bool) {
        if let Some(h) = self.sock {
            let s = stack.tcp(h);
            if graceful {
                s.close();
            } else {
                s.abort();
            }
            stack.dirty = true;
        }
        self.failures = self.failures.saturating_add(1);
        self.phase = Phase::Down { until: now + backoff(self.failures) };
        self.since = now;
    }

    /// Whether the connection is over on both sides: our FIN acknowledged
    /// and the peer's received (TIME-WAIT; the peer, in LAST-ACK, closes
    /// on our ACK), or no connection (closed, never opened, only
    /// listening) - for [`super::quiesce`]. A peer left in LAST-ACK
    /// would drop the next image's SYN to the same ports until its FIN
    /// retransmissions give up.
    pub fn closed_both_ways(&self, stack: &mut Stack) -> bool {
        use smoltcp::socket::tcp::State;
        let Some(h) = self.sock else { return true };
        matches!(stack.tcp(h).state(), State::TimeWait | State::Closed | State::Listen)
    }

    /// Sends `pdu` (header + payload pieces) if the socket has room for all
    /// of it. False: nothing was sent, try again later.
    pub fn send(&mut self, stack: &mut Stack, parts: &[&[u8]]) -> bool {
        let Some(h) = self.sock else { return false };
        let s = stack.tcp(h);
        let need: usize = parts.iter().map(|p| p.len()).sum();
        if !s.may_send() || s.send_capacity() - s.send_queue() < need {
            return false;
        }
        for p in parts {
            if s.send_slice(p) != Ok(p.len()) {
                return false; // cannot happen: room was checked
            }
        }
        stack.dirty = true;
        true
    }

    /// Room in the socket's send buffer.
    pub fn send_room(&self, stack: &mut Stack) -> usize {
        self.sock.map_or(0, |h| {
            let s = stack.tcp(h);
            if s.may_send() {
                s.send_capacity() - s.send_queue()
            } else {
                0
            }
        })
    }

    /// TCP state of the socket.
    pub fn tcp_state(&self, stack: &mut Stack) -> tcp::State {
        self.sock.map_or(tcp::State::Closed, |h| stack.tcp(h).state())
    }

    /// Sends the ICReq once TCP is up.
    pub fn start_ic(&mut self, stack: &mut Stack, now: u64) -> bool {
        let mut b = [0u8; 128];
        let Ok(n) = self.q.icreq(&mut b) else { return false };
        if self.send(stack, &[&b[..n]]) {
            self.phase = Phase::Ic;
            self.since = now;
            return true;
        }
        false
    }

    /// Sends a command capsule with optional in-capsule data.
    pub fn submit(&mut self, stack: &mut Stack, sqe: &Sqe, write: bool, len: u32, inline: &[&[u8]], tag: u32) -> bool {
        self.submit_with_crc(stack, sqe, write, len, inline, None, tag)
    }

    /// [`submit`](Self::submit) with the in-capsule data's CRC32C when an
    /// engine already computed it (`None`: the core computes the digest).
    #[allow(clippy::too_many_arguments)]
    pub fn submit_with_crc(&mut self, stack: &mut Stack, sqe: &Sqe, write: bool, len: u32, inline: &[&[u8]], crc: Option<u32>, tag: u32) -> bool {
        self.submit_sqe_with(stack, &|s: &mut [u8; 64]| s.copy_from_slice(&sqe.0), write, len, inline, crc, tag)
    }

    /// [`submit_with_crc`](Self::submit_with_crc) with the SQE written by
    /// `sqe` into the capsule header where it lies (it gets the 64 SQE
    /// bytes zeroed; `dpu_nvme_tcp::fabrics::io::read_into`): no SQE
    /// value built and copied per command.
    #[allow(clippy::too_many_arguments)]
    pub fn submit_sqe_with(&mut self, stack: &mut Stack, sqe: &impl Fn(&mut [u8; 64]), write: bool, len: u32, inline: &[&[u8]], crc: Option<u32>, tag: u32) -> bool {
        let in_capsule: usize = inline.iter().map(|p| p.len()).sum();
        let digest = self.q.data_digest() && in_capsule > 0;
        let need = 72 + 4 + 128 + in_capsule + if digest { 4 } else { 0 };
        if self.send_room(stack) < need {
            return false;
        }
        let dg = match crc {
            _ if !digest => [0; 4],
            Some(c) => dpu_nvme_tcp::digest::to_wire(c),
            None => HostQueue::<N>::digest_of(inline),
        };
        let mut ok = self.send_capsule_header(stack, sqe, write, len, in_capsule as u32, tag);
        for p in inline {
            ok &= self.send(stack, &[p]);
        }
        if digest {
            ok &= self.send(stack, &[&dg]);
        }
        ok
    }

    /// Queues the CapsuleCmd header of `sqe` (room was checked): written
    /// straight into the socket's send buffer when its free space there is
    /// in one piece, else built aside and copied in.
    fn send_capsule_header(&mut self, stack: &mut Stack, sqe: &impl Fn(&mut [u8; 64]), write: bool, len: u32, in_capsule: u32, tag: u32) -> bool {
        let Some(h) = self.sock else { return false };
        let q = &mut self.q;
        let direct = stack.tcp(h).send(|b| match q.capsule_with(write, len, in_capsule, tag, b, sqe) {
            Ok(n) => (n, true),
            Err(_) => (0, false),
        });
        if direct == Ok(true) {
            stack.dirty = true;
            return true;
        }
        let mut hdr = [0u8; 256];
        let Ok(n) = self.q.capsule_with(write, len, in_capsule, tag, &mut hdr, sqe) else { return false };
        self.send(stack, &[&hdr[..n]])
    }

    /// Walks received bytes: headers are handled here, events go to
    /// `on_event` (which returns false when it cannot take another one),
    /// data to `on_data`. Stops when the stream runs dry, when the owner
    /// moves data asynchronously, when `on_event` is full, or on a fatal
    /// error.
    pub fn pump(
        &mut self,
        stack: &mut Stack,
        mut on_event: impl FnMut(Event) -> bool,
        mut on_data: impl FnMut(Data) -> Option<usize>,
    ) -> Result<bool, Fatal> {
        let Some(h) = self.sock else { return Ok(false) };
        let mut progress = false;
        loop {
            let s = stack.tcp(h);
            let r = match self.q.rx_want() {
                Want::Header(n) => {
                    // The whole PDU header read in place when the socket
                    // buffer holds it in one piece; else copied out.
                    let whole = match s.peek(dpu_nvme_tcp::pdu::MAX_HEADER_LEN) {
                        Ok(b) if b.len() >= n => self.q.on_pdu(b),
                        _ => None,
                    };
                    match whole {
                        Some((k, r)) => {
                            let _ = s.recv(|_| (k, ()));
                            r
                        }
                        None => {
                            if s.recv_queue() < n {
                                return Ok(progress);
                            }
                            let mut b = [0u8; dpu_nvme_tcp::pdu::MAX_HEADER_LEN];
                            if s.recv_slice(&mut b[..n]) != Ok(n) {
                                return Ok(progress);
                            }
                            self.q.on_header(&b[..n])
                        }
                    }
                }
                Want::Skip(n) => {
                    let k = s.recv(|b| {
                        let k = b.len().min(n as usize);
                        (k, k)
                    });
                    match k {
                        Ok(k) if k > 0 => self.q.on_skip(k as u32),
                        _ => return Ok(progress),
                    }
                }
                Want::Digest => {
                    if s.recv_queue() < 4 {
                        return Ok(progress);
                    }
                    let mut d = [0u8; 4];
                    if s.recv_slice(&mut d) != Ok(4) {
                        return Ok(progress);
                    }
                    self.q.on_digest(d)
                }
                Want::Data { cid, offset, len } => {
                    let bytes = match s.peek(len as usize) {
                        Ok(b) if !b.is_empty() => b,
                        _ => return Ok(progress),
                    };
                    let n = bytes.len();
                    match on_data(Data::Bytes { cid, offset, bytes, crc: self.q.data_crc() }) {
                        None => return Ok(true),
                        Some(k) => {
                            let k = k.min(n);
                            let r = self.consume(stack, k, None);
                            if k == 0 {
                                return Ok(progress);
                            }
                            r
                        }
                    }
                }
            };
            progress = true;
            let more = match r {
                Ok(Event::None) => true,
                Ok(Event::Established { maxh2cdata, .. }) => {
                    self.maxh2cdata = maxh2cdata;
                    on_event(Event::Established { maxh2cdata, digests: self.q.digests() })
                }
                Ok(e) => on_event(e),
                Err(f) => return Err(f),
            };
            if !more {
                return Ok(true);
            }
        }
    }

    /// Whether TCP is established, and whether received bytes wait in the
    /// socket (one socket look-up).
    pub fn rx_state(&self, stack: &mut Stack) -> (bool, bool) {
        self.sock.map_or((false, false), |h| {
            let s = stack.tcp(h);
            (s.state() == tcp::State::Established, s.recv_queue() > 0)
        })
    }

    /// The owner finished moving the first `n` data bytes at the front of
    /// the stream (asynchronously): they leave the socket buffer. `crc`:
    /// the engine's CRC32C continuing `Data::Bytes::crc` over them, or
    /// `None` to have the core compute the digest.
    pub fn data_moved(&mut self, stack: &mut Stack, n: usize, crc: Option<u32>) -> Result<Event, Fatal> {
        self.consume(stack, n, crc)
    }

    fn consume(&mut self, stack: &mut Stack, n: usize, crc: Option<u32>) -> Result<Event, Fatal> {
        let Some(h) = self.sock else { return Ok(Event::None) };
        let s = stack.tcp(h);
        let digest = self.q.digests().data;
        let q = &mut self.q;
        let r = s
            .recv(|b| {
                let k = n.min(b.len());
                let r = match crc {
                    Some(c) if k == n => q.on_data_crc(k as u32, c),
                    _ => q.on_data(k as u32, if digest { &b[..k] } else { &[] }),
                };
                (k, r)
            })
            .unwrap_or(Ok(Event::None));
        // Freed receive space that opens the window (RFC 9293 §3.8.6.2.2,
        // receiver's SWS avoidance): let the stack send the update.
        if s.window_update_due() {
            stack.dirty = true;
        }
        r
    }

    /// Queues the H2CTermReq for `f` (if it has one); the caller then
    /// closes with `shutdown` so that it reaches the wire.
    pub fn terminate(&mut self, stack: &mut Stack, f: &Fatal) {
        if let Some(t) = f.term_req() {
            let mut b = [0u8; 24 + 128];
            let hdr = self.q.last_header();
            let mut copy = [0u8; 128];
            let n = hdr.len().min(128);
            copy[..n].copy_from_slice(&hdr[..n]);
            if let Ok(len) = t.emit_with_data(true, &copy[..n], &mut b) {
                self.send(stack, &[&b[..len]]);
            }
        }
    }

    pub fn ready(&self) -> bool {
        self.phase == Phase::Ready && self.q.state() == State::Established
    }
}

/// A TCP handshake not done by then is abandoned and retried (smoltcp
/// would resend the SYN only after its 1 s initial RTO): 10 ms, far above
/// a data-center round trip.
pub const CONNECT_TIMEOUT: u64 = 10_000 * (dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000);

/// Reconnect delay after `failures` consecutive failures: 100 us doubling
/// up to 100 ms (in mtime ticks).
pub fn backoff(failures: u32) -> u64 {
    let tick_us = dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000;
    let us = (100u64 << failures.min(10)).min(100_000);
    us * tick_us
}

/// Whether socket `h` has nothing for its owner: TCP established and no
/// received byte waiting (one socket look-up).
pub fn socket_quiet(stack: &mut Stack, h: SocketHandle) -> bool {
    let s = stack.tcp(h);
    s.recv_queue() == 0 && s.state() == tcp::State::Established
}
