//! NVMe/TCP initiator models: simulated remote hosts on the switch that
//! connect to an NVMe/TCP controller (the card's NVMe-oF target, or a
//! target model) and carry the I/Os of fio-like jobs
//! (`crate::host::workload`, through [`Handle`]), the way Linux
//! `nvme-tcp` would:
//!
//! * admin queue: TCP, ICReq/ICResp, Fabrics Connect (qid 0, dynamic
//!   controller 0xFFFF, KATO), Property Get CAP and VS, Property Set
//!   CC.EN=1 and Property Get CSTS until RDY, Identify Controller
//!   (IOCCSZ, MDTS), Identify Namespace per namespace the jobs use, Set
//!   Features Number of Queues, then Keep Alive every KATO/2 (NVMe-oF 1.1
//!   §3.3 "Connect", §3.4 "Property Get/Set"; NVMe Base 2.0 §3.5.2
//!   "Controller Initialization", §5.15 "Identify", §5.27.1.5 "Number of
//!   Queues", §5.16 "Keep Alive");
//! * with `discover`, a discovery association first (TCP 8009, the
//!   discovery NQN, Get Log Page 70h): the log must list the subsystem
//!   (`admin.rs`);
//! * I/O queues: one TCP connection each, Connect with qid 1..N and the
//!   controller's CNTLID; Read, Write (in the capsule up to IOCCSZ x 16 -
//!   64 bytes, else R2T/H2CData), Flush (`queue.rs` has the PDU side).
//!
//! A non-zero NVMe status fails the one I/O (counted by status); a
//! dropped connection, a C2HTermReq, a malformed PDU or a command
//! unanswered for `io_timeout` fails what that queue had outstanding.
//! Queues are not reconnected, except on an initiator that took one of
//! the scenario's `initiator-*` faults ([`InitiatorFault`]): that one
//! recovers as Linux `nvme-tcp` error recovery does: a lost I/O queue is
//! reconnected (ICReq, Connect with its qid and the CNTLID) and its
//! outstanding I/Os are sent again; a lost admin queue (the controller
//! gone, e.g. after a Keep Alive timeout) tears down every queue and sets
//! the association up again, the I/Os waiting meanwhile; a Transient
//! Transport Error (0h/22h) completion is retried. Its protocol code is
//! the simulator's own (`nvmf_wire`), never the firmware's (DESIGN.md §5).

pub mod admin;
pub mod queue;
pub mod shared;
#[cfg(test)]
mod tests;

use super::frames::Frames;
use super::poll_event::PendingPoll;
use crate::net::nvmf_wire::commands::{nvm_opc, no_data, BlockRange};
use crate::net::nvmf_wire::pdu::Digests;
use crate::net::nvmf_wire::{Command, Sgl, Status};
use queue::{DataDir, Done, Event, Queue};
use shared::{Handle, IoError, IoOp, Phase};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::rc::Rc;

/// Socket buffer per connection and direction.
const SOCKET_BUFFER: usize = 256 * 1024;
/// First local TCP port.
const FIRST_PORT: u16 = 49152;
/// Time to fail an I/O whose queue is down (the host's error path; it
/// keeps a job on a dead queue from spinning without simulated time).
const FAIL_FAST_US: u64 = 10;

/// An initiator's settings (from a scenario's `[[initiators]]`).
#[derive(Clone, Debug)]
pub struct InitiatorParams {
    pub name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    pub traddr: Ipv4Addr,
    pub trsvcid: u16,
    pub subnqn: String,
    pub hostnqn: String,
    pub io_queues: u16,
    /// Entries per I/O queue (SQSIZE + 1).
    pub queue_depth: u16,
    pub digests: Digests,
    /// Keep Alive Timeout (ms; 0 = off).
    pub kato_ms: u32,
    /// Cycles from the host's start request to the first connect.
    pub start_delay: u64,
    /// Cycles it keeps trying to open the admin connection.
    pub connect_timeout: u64,
    /// Cycles a command may stay unanswered before its queue is torn down.
    pub io_timeout: u64,
    /// Namespaces to identify (those the jobs use).
    pub nsids: Vec<u32>,
    pub mtu: u32,
    pub min_rto_ms: u16,
    /// Read the discovery log (TCP 8009) before connecting, and require
    /// an entry for traddr:trsvcid and subnqn (`admin.rs`).
    pub discover: bool,
    /// Listen for Namespace Attribute Changed notices as Linux does
    /// (`admin.rs`): Asynchronous Event Configuration bit 8 and one AER
    /// outstanding; on a notice, the Changed Namespace List is read (RAE
    /// clear) and the listed namespaces identified again.
    pub namespace_notices: bool,
    /// Connect every queue with SQ flow control disabled (CATTR bit 2).
    pub disable_sqflow: bool,
}

/// Counters reported in the stats JSON (`initiators[].stats`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct InitiatorStats {
    /// TCP connections established (admin + I/O queues).
    pub connections: u64,
    pub connect_attempts: u64,
    /// Commands sent: admin (Fabrics included) and I/O.
    pub admin_commands: u64,
    pub commands: u64,
    pub reads: u64,
    pub writes: u64,
    /// NVMe Compares sent.
    pub compares: u64,
    pub flushes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Writes whose data went in the command capsule.
    pub in_capsule_writes: u64,
    pub r2ts: u64,
    pub h2c_data: u64,
    pub c2h_data: u64,
    /// C2HData PDUs with the SUCCESS flag (no CapsuleResp followed).
    pub c2h_success: u64,
    pub keep_alives: u64,
    /// I/Os that failed (status or transport).
    pub io_errors: u64,
    /// Failed I/Os by NVMe status, "SCT/SC" ("0x0/0x80").
    pub errors_by_status: BTreeMap<String, u64>,
    /// I/Os failed by the transport (drop, TermReq, timeout, digest).
    pub transport_errors: u64,
    /// Connections closed for a protocol error the initiator found.
    pub protocol_errors: u64,
    pub term_reqs_received: u64,
    /// Connections lost (closed or reset by the peer, torn down).
    pub connection_drops: u64,
    pub digest_errors: u64,
    pub timeouts: u64,
    /// Entries of the discovery log it read (`discover`).
    pub discovery_entries: u64,
    /// C2HTermReqs received by FES ("0x1").
    pub term_reqs_by_fes: BTreeMap<String, u64>,
    /// I/O queues reconnected after their connection was lost.
    pub reconnects: u64,
    /// I/Os sent again (their queue was lost, or they ended with a
    /// Transient Transport Error).
    pub retries: u64,
    /// Retried completions by NVMe status, "SCT/SC".
    pub retried_by_status: BTreeMap<String, u64>,
    /// Admin queues lost while the association was up (controller gone).
    pub controller_lost: u64,
    /// Associations set up again after a controller loss.
    pub controller_reconnects: u64,
    /// Disconnects sent and completed with success.
    pub disconnects_sent: u64,
    pub disconnects_completed: u64,
    /// Injected faults: malformed PDUs sent, writes sent with a bad data
    /// digest, silences (no Keep Alive).
    pub bad_pdus_sent: u64,
    pub bad_ddgsts_armed: u64,
    pub silences: u64,
    /// Asynchronous Event Requests sent, those that failed, and the
    /// Namespace Attribute Changed notices they brought
    /// (`namespace_notices`).
    pub aers: u64,
    pub aer_errors: u64,
    pub namespace_notices: u64,
    /// Namespaces identified again after a notice.
    pub namespace_rescans: u64,
}

/// A fault the model injects on itself (scenario `initiator-*` faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitiatorFault {
    /// A CapsuleCmd with a wrong HLEN on one I/O queue.
    BadPdu,
    /// The next in-capsule write on one I/O queue has a wrong data digest.
    BadDdgst,
    /// No Keep Alive (nor other admin command) for this many cycles.
    Silent(u64),
    /// A Fabrics Disconnect on one I/O queue.
    Disconnect,
}

/// Where an I/O goes, to send it again.
#[derive(Clone, Copy, Debug)]
struct Target {
    qid: u16,
    nsid: u32,
    slba: u64,
    nlb0: u16,
}

/// What a command in flight is for.
#[derive(Clone, Debug)]
enum CmdInfo {
    Connect,
    Admin(admin::Step),
    Discovery(admin::DiscStep),
    Io { id: u64, op: IoOp, bytes: u32, buf: Rc<RefCell<Vec<u8>>>, sent_at: u64, to: Target },
    Disconnect,
}

struct Conn {
    qid: u16,
    handle: SocketHandle,
    queue: Option<Queue>,
    /// Fabrics Connect succeeded.
    connected: bool,
    /// Lost for good (no reconnect).
    dead: bool,
    cmds: BTreeMap<u16, CmdInfo>,
    /// To the discovery service, not the subsystem.
    discovery: bool,
    /// A Disconnect was sent on it: no new commands.
    draining: bool,
}

pub struct InitiatorModel {
    pub params: InitiatorParams,
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    conns: Vec<Conn>,
    handle: Handle,
    clock_hz: u64,
    scheduled: PendingPoll,
    pub stats: InitiatorStats,
    /// Log lines (time in cycles, text).
    pub log: Vec<(u64, String)>,
    pub last_poll: u64,
    next_port: u16,
    /// The association's setup state (`admin.rs`).
    pub(crate) setup: admin::Setup,
    /// Submissions waiting for room on their queue.
    backlog: std::collections::VecDeque<shared::Submission>,
    /// I/Os failed without reaching a queue: (due, id, why).
    deferred: Vec<(u64, u64, IoError)>,
    /// Recovers lost queues and the controller (set by an injected fault).
    recover: bool,
    /// I/O queues being reconnected.
    reconnecting: std::collections::BTreeSet<u16>,
    /// The controller was lost: the association is being set up again.
    ctrl_recovering: bool,
    /// No Keep Alive before this cycle.
    silent_until: u64,
}

impl InitiatorModel {
    pub fn new(params: InitiatorParams, clock_hz: u64) -> InitiatorModel {
        let mut dev = Frames::new(params.mtu as usize);
        let iface = Self::interface(&params, &mut dev, Instant::from_micros(0));
        InitiatorModel {
            params,
            iface,
            dev,
            sockets: SocketSet::new(vec![]),
            conns: Vec::new(),
            handle: Handle::default(),
            clock_hz,
            scheduled: PendingPoll::default(),
            stats: InitiatorStats::default(),
            log: Vec::new(),
            last_poll: 0,
            next_port: FIRST_PORT,
            setup: admin::Setup::default(),
            backlog: Default::default(),
            deferred: Vec::new(),
            recover: false,
            reconnecting: Default::default(),
            ctrl_recovering: false,
            silent_until: 0,
        }
    }

    /// Its IP interface (own MAC and address, ARP).
    fn interface(params: &InitiatorParams, dev: &mut Frames, now: Instant) -> Interface {
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(params.mac)));
        let m = params.mac;
        cfg.random_seed = u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0x1e, 0x17]);
        let mut iface = Interface::new(cfg, dev, now);
        let o = params.ip.octets();
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv4Address::new(o[0], o[1], o[2], o[3]).into(), params.prefix));
        });
        iface
    }

    /// A fresh interface: forgets that ARP for the controller went
    /// unanswered (smoltcp then stays silent for a second). Only while
    /// no connection is up.
    pub(crate) fn reset_interface(&mut self, now: u64) {
        let t = self.instant(now);
        self.iface = Self::interface(&self.params, &mut self.dev, t);
    }

    /// The jobs' handle on this initiator.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    fn instant(&self, cycles: u64) -> Instant {
        Instant::from_micros((u128::from(cycles) * 1_000_000 / u128::from(self.clock_hz)) as i64)
    }

    fn cycles(&self, i: Instant) -> u64 {
        (i.total_micros().max(0) as u128 * u128::from(self.clock_hz)).div_ceil(1_000_000) as u64
    }

    pub(crate) fn us(&self, us: u64) -> u64 {
        (u128::from(us) * u128::from(self.clock_hz) / 1_000_000) as u64
    }

    fn say(&mut self, now: u64, msg: String) {
        self.log.push((now, format!("initiator {}: {msg}", self.params.name)));
    }

    /// A frame arrived (processed at the next `poll`).
    pub fn receive(&mut self, frame: Vec<u8>) {
        self.dev.rx.push_back(frame);
    }

    /// Whether the host gave it work since the last poll.
    pub fn has_work(&self) -> bool {
        self.handle.0.borrow().has_work()
    }

    /// Records that a poll event is queued at `at`; false if an earlier
    /// one already is.
    pub fn schedule(&mut self, at: u64) -> bool {
        self.scheduled.schedule(at)
    }

    /// Opens a TCP connection for queue `qid`; returns its index.
    fn open(&mut self, qid: u16) -> usize {
        self.open_to(qid, self.params.trsvcid, false)
    }

    /// Opens a TCP connection to `port` of traddr (`discovery`: the
    /// discovery service's); returns its index.
    fn open_to(&mut self, qid: u16, port_to: u16, discovery: bool) -> usize {
        let rx = tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]);
        let tx = tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_nagle_enabled(false);
        s.set_min_rto(smoltcp::time::Duration::from_millis(u64::from(self.params.min_rto_ms)));
        let port = self.next_port;
        self.next_port = if self.next_port == u16::MAX { FIRST_PORT } else { self.next_port + 1 };
        let t = self.params.traddr.octets();
        let remote = (Ipv4Address::new(t[0], t[1], t[2], t[3]), port_to);
        let ok = s.connect(self.iface.context(), remote, port).is_ok();
        let handle = self.sockets.add(s);
        self.stats.connect_attempts += 1;
        self.conns.push(Conn { qid, handle, queue: None, connected: false, dead: !ok, cmds: BTreeMap::new(), discovery, draining: false });
        self.conns.len() - 1
    }

    /// Runs the stack, the queues and the setup at `now`; returns frames
    /// to send.
    pub fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        self.last_poll = self.last_poll.max(now);
        self.scheduled.ran(now);
        self.setup_tick(now);
        let t = self.instant(now);
        for _round in 0..4 {
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
            let mut progress = false;
            for i in 0..self.conns.len() {
                progress |= self.pump(i, now);
            }
            progress |= self.dispatch(now);
            if !progress {
                break;
            }
        }
        self.check_timeouts(now);
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred).into_iter().partition(|d| d.0 <= now);
        self.deferred = later;
        for (_, id, e) in due {
            self.fail_io(id, e);
        }
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
        std::mem::take(&mut self.dev.tx)
    }

    /// When the model next needs to run.
    pub fn next_poll(&mut self, now: u64) -> Option<u64> {
        let t = self.instant(now);
        let tcp = self.iface.poll_at(t, &self.sockets).map(|i| self.cycles(i).max(now + 1));
        let io = self
            .conns
            .iter()
            .flat_map(|c| c.cmds.values())
            .filter_map(|c| match c {
                CmdInfo::Io { sent_at, .. } => Some(sent_at.saturating_add(self.params.io_timeout)),
                _ => None,
            })
            .min();
        let setup = self.setup.next_due();
        let deferred = self.deferred.iter().map(|d| d.0).min();
        [tcp, io, setup, deferred].into_iter().flatten().map(|x| x.max(now + 1)).min()
    }

    /// Moves bytes between socket `i` and its queue and handles what the
    /// queue saw. True if anything happened.
    fn pump(&mut self, i: usize, now: u64) -> bool {
        let conn = &mut self.conns[i];
        if conn.dead {
            return false;
        }
        let s = self.sockets.get_mut::<tcp::Socket>(conn.handle);
        let mut progress = false;
        if conn.queue.is_none() {
            match s.state() {
                tcp::State::Established => {
                    conn.queue = Some(Queue::new(conn.qid, self.params.digests, 0).with_sq_flow_disabled(self.params.disable_sqflow));
                    self.stats.connections += 1;
                    progress = true;
                }
                tcp::State::Closed | tcp::State::TimeWait | tcp::State::CloseWait => {
                    conn.dead = true;
                    let qid = conn.qid;
                    self.lost(i, now, "connection refused or reset before it was established".into());
                    if qid == 0 {
                        let at = now + self.us(admin::RETRY_US);
                        self.setup.admin_refused(at);
                        self.publish_phase(now);
                    }
                    return true;
                }
                _ => return false,
            }
        }
        let Some(q) = conn.queue.as_mut() else { return progress };
        let mut bytes = Vec::new();
        while s.can_recv() {
            let n = s
                .recv(|b| {
                    bytes.extend_from_slice(b);
                    (b.len(), b.len())
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
        }
        let outcome = if bytes.is_empty() { Ok(Vec::new()) } else { q.receive(&bytes) };
        progress |= !bytes.is_empty();
        let before = q.out.len();
        if !q.out.is_empty() {
            let n = s.send_slice(&q.out).unwrap_or(0);
            q.out.drain(..n);
        }
        progress |= q.out.len() != before;
        let peer_gone = !s.may_recv() || matches!(s.state(), tcp::State::Closed | tcp::State::CloseWait | tcp::State::TimeWait);
        match outcome {
            Ok(events) => {
                for e in events {
                    self.on_event(i, e, now);
                }
            }
            Err(f) => {
                match f {
                    queue::Fatal::Terminated { fes, .. } => {
                        self.stats.term_reqs_received += 1;
                        *self.stats.term_reqs_by_fes.entry(format!("{fes:#x}")).or_default() += 1;
                    }
                    _ => self.stats.protocol_errors += 1,
                }
                self.teardown(i, now, f.to_string());
                return true;
            }
        }
        if peer_gone && !self.conns[i].dead {
            self.teardown(i, now, "connection closed by the controller".into());
            return true;
        }
        progress
    }

    /// Ends connection `i` for `why`: what it had outstanding fails.
    fn teardown(&mut self, i: usize, now: u64, why: String) {
        let c = &mut self.conns[i];
        if c.dead {
            return;
        }
        c.dead = true;
        let s = self.sockets.get_mut::<tcp::Socket>(c.handle);
        if let Some(q) = c.queue.as_mut() {
            // A TermReq of ours goes out before the FIN.
            let n = s.send_slice(&q.out).unwrap_or(0);
            q.out.drain(..n);
        }
        s.close();
        self.lost(i, now, why);
    }

    /// Connection `i` is gone: counts it and fails its commands.
    fn lost(&mut self, i: usize, now: u64, why: String) {
        let qid = self.conns[i].qid;
        let established = self.conns[i].queue.is_some();
        if established {
            self.stats.connection_drops += 1;
        }
        let cmds = std::mem::take(&mut self.conns[i].cmds);
        if let Some(q) = self.conns[i].queue.as_mut() {
            q.take_outstanding();
        }
        let n = cmds.len();
        let was_up = self.conns[i].connected;
        let ready = self.setup.phase() == Phase::Ready;
        // Recovery (after an injected fault): the controller again, or
        // this I/O queue again. An I/O queue whose reconnect fails (its
        // controller went while the admin queue's close is still on the
        // way) takes the controller with it, as Linux's error recovery
        // does: the association is set up again.
        let reconnect_failed = qid != 0 && !was_up && self.reconnecting.contains(&qid);
        let ctrl_lost = self.recover && ready && !self.ctrl_recovering && ((qid == 0 && was_up) || reconnect_failed);
        let queue_back = self.recover && qid != 0 && was_up && (self.ctrl_recovering || (ready && self.admin_connected()));
        if ctrl_lost {
            self.ctrl_recovering = true;
        }
        if queue_back || ctrl_lost {
            self.say(now, format!("queue {qid}: {why}; {n} command(s) to send again"));
        } else if established || qid != 0 {
            self.say(now, format!("queue {qid}: {why}; {n} command(s) failed (no reconnect)"));
        }
        for (_, info) in cmds.into_iter().rev() {
            match info {
                CmdInfo::Io { id, op, buf, to, .. } if queue_back => {
                    self.stats.retries += 1;
                    self.backlog.push_front(shared::Submission { id, qid: to.qid, op, nsid: to.nsid, slba: to.slba, nlb0: to.nlb0, buf });
                }
                CmdInfo::Io { id, .. } => self.fail_io(id, IoError::Transport(format!("queue {qid}: {why}"))),
                CmdInfo::Connect | CmdInfo::Admin(_) | CmdInfo::Discovery(_) | CmdInfo::Disconnect => {}
            }
        }
        if qid != 0 && !was_up && self.reconnecting.remove(&qid) {
            self.say(now, format!("queue {qid}: reconnect failed: {why}"));
        }
        if ctrl_lost {
            self.stats.controller_lost += 1;
            self.setup.admin_lost(now, &why);
            // As Linux error recovery: every queue goes, then the
            // association is set up again.
            for j in 0..self.conns.len() {
                if j != i && !self.conns[j].dead {
                    self.teardown(j, now, "controller lost".into());
                }
            }
            let at = now + self.us(admin::RETRY_US);
            self.setup.restart(at, at.saturating_add(self.params.connect_timeout));
            self.say(now, "controller lost: setting the association up again".into());
        } else if queue_back && !self.ctrl_recovering {
            self.reconnecting.insert(qid);
            self.open(qid);
        } else if qid == 0 && established {
            self.setup.admin_lost(now, &why);
        } else if qid != 0 && !was_up {
            self.setup.io_queue_failed(qid, &why);
        }
        self.publish_phase(now);
    }

    /// Injects `f` (a scenario `initiator-*` fault) at `now`; from then
    /// on the model recovers lost queues. Returns what it did.
    pub fn inject(&mut self, f: InitiatorFault, now: u64) -> String {
        self.recover = true;
        let live = self.conns.iter().position(|c| c.qid != 0 && c.connected && !c.dead && !c.draining && c.queue.as_ref().is_some_and(|q| q.is_ready()));
        let what = match (f, live) {
            (InitiatorFault::Silent(d), _) => {
                self.stats.silences += 1;
                self.silent_until = now + d;
                format!("no Keep Alive for {} us", d * 1_000_000 / self.clock_hz)
            }
            (_, None) => "no live I/O queue: nothing injected".into(),
            (InitiatorFault::BadPdu, Some(i)) => {
                self.stats.bad_pdus_sent += 1;
                if let Some(q) = self.conns[i].queue.as_mut() {
                    q.send_malformed();
                }
                format!("queue {}: CapsuleCmd with a wrong HLEN sent", self.conns[i].qid)
            }
            (InitiatorFault::BadDdgst, Some(i)) => {
                self.stats.bad_ddgsts_armed += 1;
                if let Some(q) = self.conns[i].queue.as_mut() {
                    q.corrupt_next_ddgst = true;
                }
                format!("queue {}: the next in-capsule write goes with a bad data digest", self.conns[i].qid)
            }
            (InitiatorFault::Disconnect, Some(i)) => {
                self.stats.disconnects_sent += 1;
                self.stats.admin_commands += 1;
                self.conns[i].draining = true;
                let cmd = crate::net::nvmf_wire::fabrics::disconnect_command(0);
                let c = &mut self.conns[i];
                if let Some(q) = c.queue.as_mut() {
                    let cid = q.submit(cmd, DataDir::None, Vec::new());
                    c.cmds.insert(cid, CmdInfo::Disconnect);
                }
                format!("queue {}: Disconnect sent", self.conns[i].qid)
            }
        };
        self.say(now, format!("fault: {what}"));
        what
    }

    /// Whether I/Os for `qid` wait (their queue is being brought back).
    fn waiting_for(&self, qid: u16) -> bool {
        self.ctrl_recovering || self.reconnecting.contains(&qid) || self.conns.iter().any(|c| c.qid == qid && c.draining && !c.dead)
    }

    fn fail_io(&mut self, id: u64, e: IoError) {
        self.stats.io_errors += 1;
        match &e {
            IoError::Status(s) => *self.stats.errors_by_status.entry(format!("{:#x}/{:#04x}", s.sct, s.sc)).or_default() += 1,
            IoError::Transport(_) => self.stats.transport_errors += 1,
        }
        self.handle.0.borrow_mut().complete(id, Err(e));
    }

    /// Sends `cmd` on connection `i` and remembers what it is for.
    fn send(&mut self, i: usize, cmd: Command, dir: DataDir, data: Vec<u8>, info: CmdInfo) -> Option<u16> {
        let c = &mut self.conns[i];
        let q = c.queue.as_mut().filter(|q| q.is_ready() && !c.dead)?;
        let cid = q.submit(cmd, dir, data);
        c.cmds.insert(cid, info);
        Some(cid)
    }

    fn on_event(&mut self, i: usize, e: Event, now: u64) {
        match e {
            Event::Established { .. } if self.conns[i].discovery => self.discovery_connect(i),
            Event::Established { maxh2cdata, cpda } => {
                let qid = self.conns[i].qid;
                if qid == 0 {
                    self.say(now, format!("admin queue: ICResp MAXH2CDATA {maxh2cdata} CPDA {cpda}"));
                }
                let (cmd, data) = self.setup.connect_command(&self.params, qid);
                self.stats.admin_commands += 1;
                self.send(i, cmd, DataDir::WriteInCapsule, data, CmdInfo::Connect);
            }
            Event::Completed(done) => {
                let Some(info) = self.conns[i].cmds.remove(&done.cid) else { return };
                match info {
                    CmdInfo::Connect => self.on_connect(i, &done, now),
                    CmdInfo::Admin(step) => self.on_admin(step, done, now),
                    CmdInfo::Discovery(step) => self.on_discovery(i, step, done, now),
                    CmdInfo::Io { id, op, bytes, buf, to, .. } => self.on_io(id, op, bytes, buf, to, done),
                    CmdInfo::Disconnect => {
                        if done.completion.status.is_success() {
                            self.stats.disconnects_completed += 1;
                            self.say(now, format!("queue {}: Disconnect completed", self.conns[i].qid));
                        } else {
                            self.say(now, format!("queue {}: Disconnect failed: {}", self.conns[i].qid, Self::status_text(&done.completion.status, done.completion.dw0)));
                        }
                    }
                }
            }
        }
        let counts = self.conns[i].queue.as_mut().map(|q| std::mem::take(&mut q.counts)).unwrap_or_default();
        self.stats.r2ts += counts.r2ts;
        self.stats.h2c_data += counts.h2c_data;
        self.stats.c2h_data += counts.c2h_data;
        self.stats.c2h_success += counts.c2h_success;
        self.stats.digest_errors += counts.digest_errors;
    }

    fn on_io(&mut self, id: u64, op: IoOp, bytes: u32, buf: Rc<RefCell<Vec<u8>>>, to: Target, done: Done) {
        if done.digest_error {
            return self.fail_io(id, IoError::Transport("C2HData data digest mismatch".into()));
        }
        let st = done.completion.status;
        if self.recover && st.sct == 0 && st.sc == 0x22 && !st.dnr {
            // Transient Transport Error: send it again.
            self.stats.retries += 1;
            *self.stats.retried_by_status.entry(format!("{:#x}/{:#04x}", st.sct, st.sc)).or_default() += 1;
            self.backlog.push_back(shared::Submission { id, qid: to.qid, op, nsid: to.nsid, slba: to.slba, nlb0: to.nlb0, buf });
            return;
        }
        if !done.completion.status.is_success() {
            return self.fail_io(id, IoError::Status(done.completion.status));
        }
        match op {
            IoOp::Read => {
                self.stats.bytes_read += u64::from(bytes);
                let mut b = buf.borrow_mut();
                let n = b.len().min(done.data.len());
                b[..n].copy_from_slice(&done.data[..n]);
            }
            IoOp::Write => self.stats.bytes_written += u64::from(bytes),
            IoOp::Flush | IoOp::Compare => {}
        }
        self.handle.0.borrow_mut().complete(id, Ok(()));
    }

    /// Takes the host's submissions and sends those whose queue has room.
    fn dispatch(&mut self, now: u64) -> bool {
        let new: Vec<shared::Submission> = self.handle.0.borrow_mut().submissions.drain(..).collect();
        if new.is_empty() && self.backlog.is_empty() {
            return false;
        }
        self.backlog.extend(new);
        let mut progress = false;
        let mut keep = std::collections::VecDeque::new();
        while let Some(sub) = self.backlog.pop_front() {
            let due = now + self.us(FAIL_FAST_US);
            let live = self.conns.iter().position(|c| c.qid == sub.qid && sub.qid != 0 && c.connected && !c.dead && !c.draining);
            let Some(i) = live else {
                if sub.qid != 0 && self.waiting_for(sub.qid) {
                    keep.push_back(sub);
                } else if self.conns.iter().any(|c| c.qid == sub.qid && sub.qid != 0 && c.connected) {
                    self.deferred.push((due, sub.id, IoError::Transport(format!("I/O queue {} is down (no reconnect)", sub.qid))));
                } else {
                    self.deferred.push((due, sub.id, IoError::Transport(format!("I/O queue {} is not connected", sub.qid))));
                }
                continue;
            };
            if self.conns[i].cmds.len() >= usize::from(self.setup.io_sqsize(&self.params)) {
                keep.push_back(sub);
                continue;
            }
            progress = true;
            self.issue(i, sub, now);
        }
        self.backlog = keep;
        progress
    }

    /// Builds and sends one I/O command (NVM Command Set 1.0 §3.2.4
    /// "Read", §3.2.6 "Write", NVMe Base 2.0 §7.1 "Flush").
    fn issue(&mut self, i: usize, sub: shared::Submission, now: u64) {
        let len = sub.buf.borrow().len() as u32;
        if let Some(max) = self.setup.max_transfer().filter(|&m| len > m) {
            return self.fail_io(sub.id, IoError::Transport(format!("{len} bytes exceed the controller's MDTS ({max} bytes)")));
        }
        let range = BlockRange { slba: sub.slba, nlb0: sub.nlb0 };
        let (cmd, dir, data) = match sub.op {
            IoOp::Read => {
                self.stats.reads += 1;
                (range.to_command(nvm_opc::READ, 0, sub.nsid, Sgl::Transport { len }), DataDir::Read, vec![0u8; len as usize])
            }
            IoOp::Write if len <= self.setup.in_capsule_max() => {
                self.stats.writes += 1;
                self.stats.in_capsule_writes += 1;
                (range.to_command(nvm_opc::WRITE, 0, sub.nsid, Sgl::in_capsule(len)), DataDir::WriteInCapsule, sub.buf.borrow().clone())
            }
            IoOp::Write => {
                self.stats.writes += 1;
                (range.to_command(nvm_opc::WRITE, 0, sub.nsid, Sgl::Transport { len }), DataDir::WriteR2t, sub.buf.borrow().clone())
            }
            // Data to the controller as for a Write: in the capsule or by R2T.
            IoOp::Compare => {
                self.stats.compares += 1;
                let (sgl, dir) = if len <= self.setup.in_capsule_max() { (Sgl::in_capsule(len), DataDir::WriteInCapsule) } else { (Sgl::Transport { len }, DataDir::WriteR2t) };
                (range.to_command(nvm_opc::COMPARE, 0, sub.nsid, sgl), dir, sub.buf.borrow().clone())
            }
            IoOp::Flush => {
                self.stats.flushes += 1;
                (no_data(nvm_opc::FLUSH, 0, sub.nsid), DataDir::None, Vec::new())
            }
        };
        self.stats.commands += 1;
        let to = Target { qid: sub.qid, nsid: sub.nsid, slba: sub.slba, nlb0: sub.nlb0 };
        let info = CmdInfo::Io { id: sub.id, op: sub.op, bytes: len, buf: sub.buf, sent_at: now, to };
        if self.send(i, cmd, dir, data, info).is_none() {
            self.fail_io(sub.id, IoError::Transport(format!("I/O queue {} cannot take commands", self.conns[i].qid)));
        }
    }

    /// Tears down queues with a command older than `io_timeout`.
    fn check_timeouts(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            let late = self.conns[i].cmds.values().any(|c| matches!(c, CmdInfo::Io { sent_at, .. } if now >= sent_at.saturating_add(self.params.io_timeout)));
            if late && !self.conns[i].dead {
                self.stats.timeouts += 1;
                self.teardown(i, now, "command timeout".into());
                let h = self.conns[i].handle;
                self.sockets.get_mut::<tcp::Socket>(h).abort();
            }
        }
    }

    /// Tells waiting jobs where the setup is.
    fn publish_phase(&mut self, now: u64) {
        let phase = self.setup.phase();
        let mut s = self.handle.0.borrow_mut();
        if s.phase.as_ref() == Some(&phase) {
            return;
        }
        if let Phase::Ready = phase {
            s.namespaces = self.setup.namespaces.clone();
            let mut q: Vec<u16> = self.conns.iter().filter(|c| c.qid != 0 && c.connected && !c.dead).map(|c| c.qid).collect();
            q.sort_unstable();
            q.dedup();
            s.io_qids = q;
        }
        s.set_phase(phase.clone());
        drop(s);
        match phase {
            Phase::Ready => self.say(now, format!("ready: controller {} with {} I/O queue(s)", self.setup.cntlid, self.setup.io_connected)),
            Phase::Failed(why) => self.say(now, format!("setup failed: {why}")),
            _ => {}
        }
    }

    /// A non-success status of an admin command, as text.
    fn status_text(s: &Status, dw0: u32) -> String {
        format!("status SCT {:#x} SC {:#04x}{} (DW0 {dw0:#x})", s.sct, s.sc, if s.dnr { " DNR" } else { "" })
    }
}
