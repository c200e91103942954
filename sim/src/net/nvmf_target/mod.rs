//! NVMe/TCP target models: simulated storage servers on the switch, each
//! with its own TCP/IP stack (smoltcp, Ethernet medium, ARP), one NVM
//! subsystem with in-memory namespaces, dynamic controllers, and a media
//! service time per I/O. They are the remote end of the DPU's NVMe/TCP
//! initiator when no real target (Linux nvmet over the bridge) is used.
//!
//! Time is simulated: the model runs when a frame reaches it or when its
//! TCP timers or media completions are due (`Event::NetPoll`).
//!
//! Faults a scenario can inject: a restart (connections reset, nothing
//! answered for a while), malformed PDUs, a stall (TCP stays up, nothing
//! NVMe/TCP is answered) and slow media (a different service time).
//!
//! The NVMe/TCP and NVMe-oF formats come from `super::nvmf_wire`, written
//! from the specifications; no firmware crate is used (DESIGN.md §5).

pub mod ctrl;
pub mod session;
pub mod store;
#[cfg(test)]
mod tests;

use session::Session;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use super::frames::Frames;
use super::poll_event::PendingPoll;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use std::net::Ipv4Addr;

/// Socket buffer per connection and direction.
const SOCKET_BUFFER: usize = 256 * 1024;

/// A target model's settings (from a scenario's `[[targets]]`).
#[derive(Clone, Debug)]
pub struct TargetParams {
    pub name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    pub port: u16,
    pub nqn: String,
    /// (bytes, block size) per namespace, nsid = index + 1.
    pub namespaces: Vec<(u64, u32)>,
    /// Namespaces (nsids) whose unwritten blocks hold the verify pattern
    /// (`fill = "pattern"`; `store::FILL_GEN`, `store::FILL_TAG`).
    pub patterned: Vec<u32>,
    /// Namespaces (nsid, XTS key) the media check scans as encrypted
    /// (`at_rest_key`; `crate::at_rest`): the model itself never uses
    /// the key.
    pub at_rest_keys: Vec<(u32, dpu_targets::XtsKey)>,
    /// Media service time per read/write, in cycles.
    pub latency: u64,
    pub max_queues: u16,
    pub inline_data: u32,
    pub mtu: u32,
    pub speed_gbps: u32,
    /// Lower bound of the TCP retransmission timeout (ms).
    pub min_rto_ms: u16,
    /// A host may disable SQ flow control (Connect CATTR bit 2); `false`:
    /// such a Connect is refused (Connect Invalid Parameters, IPO 46).
    pub sq_flow_disable: bool,
}

/// Counters reported in the stats JSON.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TargetStats {
    pub connections: u64,
    pub controllers: u64,
    pub commands: u64,
    pub reads: u64,
    pub writes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Connections closed because of a protocol error from the host.
    pub protocol_errors: u64,
    /// Connections the host ended with a FIN (an orderly teardown).
    pub closed_by_host: u64,
    pub restarts: u64,
    /// Controllers destroyed because their keep-alive timer expired.
    pub keep_alive_expired: u64,
    /// Commands failed for a data digest mismatch.
    pub digest_errors: u64,
    /// Malformed PDUs sent by fault injection.
    pub garbage_sent: u64,
    /// H2CTermReq PDUs received from the host (it ended a connection
    /// for a protocol error it found in what this target sent).
    pub term_reqs_received: u64,
    /// PDUs received and dropped unanswered by the black-hole fault.
    pub swallowed: u64,
    /// Stall faults (NVMe/TCP not answered, TCP up).
    pub stalls: u64,
    /// Slow-media faults (another media service time).
    pub slowdowns: u64,
    /// Connections whose ICReq asked for header / data digests.
    pub hdgst_connections: u64,
    pub ddgst_connections: u64,
    /// The hosts' addresses connections came from, each once, in the
    /// order first seen.
    pub peers: Vec<String>,
}

struct Conn {
    handle: SocketHandle,
    session: Session,
    counted: bool,
    /// The host's FIN was seen (counted in `closed_by_host`).
    fin: bool,
}

pub struct TargetModel {
    pub params: TargetParams,
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    listeners: Vec<SocketHandle>,
    conns: Vec<Conn>,
    pub subsystem: ctrl::Subsystem,
    clock_hz: u64,
    /// Earliest NetPoll event already queued.
    scheduled: PendingPoll,
    /// Restart fault: refuse everything until this cycle.
    down_until: Option<u64>,
    /// Stall fault: no NVMe/TCP processing until this cycle (`u64::MAX`:
    /// for good); TCP still runs.
    stall_until: Option<u64>,
    pub stats: TargetStats,
    /// Log lines (time in cycles, text) for the run report.
    pub log: Vec<(u64, String)>,
    /// Time of the latest `poll`.
    pub last_poll: u64,
    /// Black-hole fault in effect.
    blackhole: bool,
}

impl TargetModel {
    pub fn new(params: TargetParams, clock_hz: u64) -> TargetModel {
        let mut dev = Frames::new(params.mtu as usize);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(params.mac)));
        cfg.random_seed = u64::from_le_bytes([params.mac[0], params.mac[1], params.mac[2], params.mac[3], params.mac[4], params.mac[5], 0x7a, 0x11]);
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_micros(0));
        let o = params.ip.octets();
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv4Address::new(o[0], o[1], o[2], o[3]).into(), params.prefix));
        });
        let subsystem = ctrl::Subsystem::new(&params);
        let mut t = TargetModel {
            params,
            iface,
            dev,
            sockets: SocketSet::new(vec![]),
            listeners: Vec::new(),
            conns: Vec::new(),
            subsystem,
            clock_hz,
            scheduled: PendingPoll::default(),
            down_until: None,
            stall_until: None,
            stats: TargetStats::default(),
            log: Vec::new(),
            last_poll: 0,
            blackhole: false,
        };
        t.ensure_listeners(2);
        t
    }

    fn instant(&self, cycles: u64) -> Instant {
        Instant::from_micros((u128::from(cycles) * 1_000_000 / u128::from(self.clock_hz)) as i64)
    }

    fn cycles(&self, i: Instant) -> u64 {
        (i.total_micros().max(0) as u128 * u128::from(self.clock_hz)).div_ceil(1_000_000) as u64
    }

    /// Keeps `n` sockets listening (one accepts one connection).
    fn ensure_listeners(&mut self, n: usize) {
        self.listeners.retain(|&h| self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen);
        while self.listeners.len() < n {
            let rx = tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]);
            let tx = tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]);
            let mut s = tcp::Socket::new(rx, tx);
            s.set_nagle_enabled(false);
            s.set_min_rto(smoltcp::time::Duration::from_millis(u64::from(self.params.min_rto_ms)));
            if s.listen(self.params.port).is_err() {
                return;
            }
            let h = self.sockets.add(s);
            self.listeners.push(h);
            let mut session = Session::new();
            session.set_blackhole(self.blackhole);
            self.conns.push(Conn { handle: h, session, counted: false, fin: false });
        }
    }

    /// A frame arrived (processed at the next `poll`).
    pub fn receive(&mut self, now: u64, frame: Vec<u8>) {
        if self.down_until.is_some_and(|u| now < u) {
            return; // restarting: the host is down, frames are lost
        }
        self.dev.rx.push_back(frame);
    }

    /// Runs the stack and the sessions at `now`; returns frames to send.
    pub fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        self.last_poll = self.last_poll.max(now);
        self.scheduled.ran(now);
        if let Some(until) = self.down_until {
            if now < until {
                self.dev.rx.clear();
                return std::mem::take(&mut self.dev.tx);
            }
            self.down_until = None;
            self.log.push((now, format!("target {}: back up", self.params.name)));
            self.ensure_listeners(2);
        }
        // Enough listeners for every SYN waiting in the queue.
        let syns = self.dev.rx.iter().filter(|f| is_syn_to(f, self.params.port)).count();
        if syns > 0 {
            self.ensure_listeners(syns + 1);
        }
        let stalled = self.stalled(now);
        let t = self.instant(now);
        for _round in 0..4 {
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
            let mut progress = false;
            for c in self.conns.iter_mut() {
                let s = self.sockets.get_mut::<tcp::Socket>(c.handle);
                if s.state() == tcp::State::Listen {
                    continue;
                }
                if !c.counted && s.is_active() {
                    c.counted = true;
                    self.stats.connections += 1;
                    if let Some(ep) = s.remote_endpoint() {
                        let peer = ep.addr.to_string();
                        if !self.stats.peers.contains(&peer) {
                            self.stats.peers.push(peer);
                        }
                    }
                }
                if !stalled {
                    progress |= c.session.pump(s, now, &mut self.subsystem, &mut self.stats, &mut self.log);
                }
                if c.counted && !c.fin && matches!(s.state(), tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing) {
                    c.fin = true;
                    self.stats.closed_by_host += 1;
                }
            }
            if !progress {
                break;
            }
        }
        // Closed connections: drop their controllers' queues and sockets.
        let mut i = 0;
        while i < self.conns.len() {
            let s = self.sockets.get::<tcp::Socket>(self.conns[i].handle);
            if self.conns[i].counted && s.state() == tcp::State::Closed {
                let c = self.conns.swap_remove(i);
                self.subsystem.queue_closed(&c.session, now);
                self.sockets.remove(c.handle);
            } else {
                i += 1;
            }
        }
        // Keep-alive expiry closes every connection of the controller (a
        // stalled target does not run its timers either).
        let expired = if stalled { Vec::new() } else { self.subsystem.expired(now, &mut self.stats) };
        for cntlid in expired {
            self.log.push((now, format!("target {}: controller {cntlid}: keep-alive timeout", self.params.name)));
            for c in self.conns.iter_mut() {
                if c.session.cntlid() == Some(cntlid) {
                    self.sockets.get_mut::<tcp::Socket>(c.handle).abort();
                }
            }
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
        }
        self.ensure_listeners(2);
        std::mem::take(&mut self.dev.tx)
    }

    /// When the model next needs to run (TCP timers, media completions,
    /// keep-alive deadlines).
    pub fn next_poll(&mut self, now: u64) -> Option<u64> {
        if let Some(u) = self.down_until {
            return Some(u);
        }
        let t = self.instant(now);
        let tcp = self.iface.poll_at(t, &self.sockets).map(|i| self.cycles(i).max(now + 1));
        if let Some(until) = self.stall_until.filter(|&u| now < u) {
            return [tcp, (until != u64::MAX).then_some(until)].into_iter().flatten().min();
        }
        let media = self.conns.iter().filter_map(|c| c.session.next_due()).min();
        let ka = self.subsystem.next_deadline();
        [tcp, media, ka].into_iter().flatten().min()
    }

    /// Whether a stall fault holds at `now`; at its end the model resumes
    /// (keep-alive timers restart: they did not run meanwhile).
    fn stalled(&mut self, now: u64) -> bool {
        match self.stall_until {
            Some(until) if now < until => true,
            Some(_) => {
                self.stall_until = None;
                self.subsystem.restart_keep_alive(now);
                self.log.push((now, format!("target {}: stall over, answering again", self.params.name)));
                false
            }
            None => false,
        }
    }

    /// Stall fault: until `until` (`None`: for good) the target keeps its
    /// TCP connections (it ACKs, accepts new ones) but reads no PDU and
    /// sends none: no responses, R2Ts or data. What arrived meanwhile is
    /// answered once the stall ends.
    pub fn stall(&mut self, now: u64, until: Option<u64>) {
        self.stats.stalls += 1;
        let end = until.unwrap_or(u64::MAX);
        self.stall_until = Some(self.stall_until.map_or(end, |u| u.max(end)));
        let how_long = match until {
            Some(u) => format!("until {} ns", u128::from(u) * 1_000_000_000 / u128::from(self.clock_hz)),
            None => "for good".into(),
        };
        self.log.push((now, format!("target {}: stalls {how_long}", self.params.name)));
    }

    /// Slow-media fault: reads and writes submitted from now on take
    /// `latency` cycles; `None` restores the configured time.
    pub fn set_media_latency(&mut self, now: u64, latency: Option<u64>) {
        if latency.is_some() {
            self.stats.slowdowns += 1;
        }
        self.subsystem.latency_override = latency;
        let l = self.subsystem.latency();
        self.log.push((now, format!("target {}: media time {} ns", self.params.name, u128::from(l) * 1_000_000_000 / u128::from(self.clock_hz))));
    }

    /// Records that a poll event is queued at `at`; false if an earlier
    /// one already is (no duplicate events).
    pub fn schedule(&mut self, at: u64) -> bool {
        self.scheduled.schedule(at)
    }

    /// Garbage fault: every established I/O connection gets a malformed
    /// PDU (the host must close it and recover). Returns how many.
    /// Connections that carry reads get the kinds about read data (a
    /// wrong data digest first, when digests are on), the others the
    /// rest in turn.
    pub fn inject_garbage(&mut self, now: u64) -> usize {
        let (mut n, mut idle, mut busy) = (0, 0u8, 0u8);
        for c in self.conns.iter_mut() {
            let variant = if c.session.carries_reads() {
                busy = busy.wrapping_add(1);
                if busy % 2 == 1 { session::GARBAGE_BAD_DIGEST } else { session::GARBAGE_BEYOND_READ }
            } else {
                idle = idle.wrapping_add(1);
                idle % session::GARBAGE_BEYOND_READ
            };
            if c.session.inject_garbage(variant) {
                n += 1;
            }
        }
        self.stats.garbage_sent += n as u64;
        self.log.push((now, format!("target {}: sent malformed PDUs on {n} connections", self.params.name)));
        n
    }

    /// Black-hole fault: the target keeps its TCP connections up (and
    /// ACKs what arrives) but answers nothing, and what it held or
    /// receives meanwhile is lost: a target hung on live connections.
    /// Ending it makes the target answer new PDUs again.
    pub fn set_blackhole(&mut self, now: u64, on: bool) {
        self.blackhole = on;
        for c in self.conns.iter_mut() {
            c.session.set_blackhole(on);
        }
        let what = if on { "stops answering (commands are lost)" } else { "answers again" };
        self.log.push((now, format!("target {}: {what}", self.params.name)));
    }

    /// Restart fault: every connection is reset, controllers are lost,
    /// nothing is answered until `until`. Namespace data survives (it was
    /// acknowledged, so it is on media).
    pub fn restart(&mut self, now: u64, until: u64) {
        self.stats.restarts += 1;
        self.log.push((now, format!("target {}: restarting (down until {} ns)", self.params.name, until * 1_000_000_000 / self.clock_hz)));
        for c in self.conns.drain(..) {
            let s = self.sockets.get_mut::<tcp::Socket>(c.handle);
            s.abort();
        }
        let t = self.instant(now);
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
        // The RSTs go out; then the host is gone.
        let handles: Vec<SocketHandle> = self.sockets.iter().map(|(h, _)| h).collect();
        for h in handles {
            self.sockets.remove(h);
        }
        self.listeners.clear();
        self.subsystem.reset_all();
        self.stall_until = None;
        self.down_until = Some(until);
        self.scheduled.clear();
    }
}

/// Whether `frame` is an Ethernet/IPv4/TCP SYN (without ACK) to `port`.
fn is_syn_to(frame: &[u8], port: u16) -> bool {
    let Some(k) = super::frame::flow_key(frame) else { return false };
    if k.dst_port != port {
        return false;
    }
    let Ok(l3) = super::frame::ipv4_offset(frame) else { return false };
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let flags = frame.get(l3 + ihl + 13).copied().unwrap_or(0);
    flags & 0x12 == 0x02
}
