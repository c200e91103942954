//! A small NVMe/TCP host for the target model's tests: a smoltcp client
//! on simulated frames speaking NVMe/TCP through the simulator's own wire
//! code (`nvmf_wire`), one queue per connection. It sends what it is told
//! and records what comes back: completions, R2Ts, C2HData, a TermReq.

use crate::net::nvmf_target::{Frames, TargetModel};
use crate::net::nvmf_wire::fabrics::{Connect, ConnectData};
use crate::net::nvmf_wire::pdu::{self, Digests, H2cData, IcReq, Pdu, PduError, R2t, Role, RxConfig, TxConfig};
use crate::net::nvmf_wire::{Command, Completion};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:test-host";

/// What the controller sent, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Established { maxh2cdata: u32 },
    Completed(Completion),
    R2t(R2t),
}

/// Why the queue is dead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The controller sent a C2HTermReq.
    Terminated { fes: u16, fei: u32, error_data: Vec<u8> },
    /// The controller sent something this host rejects.
    Protocol(PduError),
    /// A C2HData whose data digest did not match.
    DataDigest { cid: u16 },
    /// A C2HData with SUCCESS on a queue whose Connect did not disable SQ
    /// flow control (NVMe/TCP 1.0 §3.6.2.8).
    UnexpectedSuccess { cid: u16 },
}

pub struct Host {
    pub iface: Interface,
    pub dev: Frames,
    pub sockets: SocketSet<'static>,
    pub sock: SocketHandle,
    pub now: u64,
    pub qid: u16,
    pub digests: Digests,
    ic_done: bool,
    rx: Vec<u8>,
    /// Data delivered by C2HData (reads) or to send on R2T (writes), per CID.
    pub data: BTreeMap<u16, Vec<u8>>,
    pub events: Vec<Event>,
    pub fatal: Option<Fatal>,
    outstanding: BTreeSet<u16>,
    /// Every PDU received, raw (for shape checks).
    pub received: Vec<Vec<u8>>,
    /// Our TCP port: every host shares one address, so a host takes only
    /// its own connection's segments (another's would draw an RST).
    local_port: u16,
    /// CATTR of the Connect this queue sends (bit 2: disable SQ flow
    /// control); a C2HData with SUCCESS is accepted only with bit 2.
    pub cattr: u8,
}

impl Host {
    /// Connects TCP from `local_port` and exchanges ICReq/ICResp asking
    /// for `digests`.
    pub fn new(t: &mut TargetModel, qid: u16, digests: Digests, local_port: u16) -> Host {
        let mut h = Host::tcp(t, qid, local_port);
        let mut b = Vec::new();
        pdu::emit(&Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: digests.header, ddgst: digests.data, maxr2t: 0 }), &[], &TxConfig::default(), &mut b).unwrap();
        h.send(&b);
        h.run(t, |_| false);
        assert!(matches!(h.events.pop(), Some(Event::Established { .. })), "ICResp: {:?}", h.fatal);
        h.digests = digests;
        h
    }

    /// Only the TCP connection (no ICReq yet).
    pub fn tcp(t: &mut TargetModel, qid: u16, local_port: u16) -> Host {
        let mut dev = Frames { rx: VecDeque::new(), tx: Vec::new(), mtu: 1500 };
        let cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0xd9, 0, 0, 0, 1])));
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 1).into(), 24));
        });
        let mut sockets = SocketSet::new(vec![]);
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; 1 << 18]), tcp::SocketBuffer::new(vec![0u8; 1 << 18]));
        s.set_nagle_enabled(false);
        s.connect(iface.context(), (Ipv4Address::new(10, 0, 0, 10), 4420), local_port).unwrap();
        let sock = sockets.add(s);
        let mut h = Host {
            iface,
            dev,
            sockets,
            sock,
            now: 0,
            qid,
            digests: Digests::NONE,
            ic_done: false,
            rx: Vec::new(),
            data: BTreeMap::new(),
            events: Vec::new(),
            fatal: None,
            outstanding: BTreeSet::new(),
            received: Vec::new(),
            local_port,
            cattr: 0,
        };
        h.run(t, |s| s.state() == tcp::State::Established);
        h
    }

    pub fn send(&mut self, b: &[u8]) {
        let s = self.sockets.get_mut::<tcp::Socket>(self.sock);
        assert_eq!(s.send_slice(b).unwrap(), b.len());
    }

    /// Closes this side (FIN after what is queued).
    pub fn close(&mut self) {
        self.sockets.get_mut::<tcp::Socket>(self.sock).close();
    }

    pub fn socket(&self) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(self.sock)
    }

    fn tx_cfg(&self) -> TxConfig {
        TxConfig { digests: self.digests, pda: 0 }
    }

    /// Sends `p` with `data` as this queue negotiated.
    pub fn send_pdu(&mut self, p: &Pdu, data: &[u8]) {
        let mut b = Vec::new();
        pdu::emit(p, data, &self.tx_cfg(), &mut b).unwrap();
        self.send(&b);
    }

    /// Exchanges frames with the target until nothing moves or `done`.
    pub fn run(&mut self, t: &mut TargetModel, done: impl Fn(&tcp::Socket) -> bool) {
        for _ in 0..2000 {
            self.now = self.now.max(t.last_poll) + 1000;
            let inst = Instant::from_micros((self.now / 1000) as i64);
            self.iface.poll(inst, &mut self.dev, &mut self.sockets);
            let out = std::mem::take(&mut self.dev.tx);
            let sent = !out.is_empty();
            for f in out {
                t.receive(self.now, f);
            }
            let back = t.poll(self.now);
            let got = !back.is_empty();
            let port = self.local_port;
            self.dev.rx.extend(back.into_iter().filter(|f| crate::net::frame::flow_key(f).is_none_or(|k| k.dst_port == port)));
            self.iface.poll(inst, &mut self.dev, &mut self.sockets);
            self.read();
            if done(self.socket()) {
                return;
            }
            let media = t.next_poll(self.now).is_some_and(|at| at < self.now + 100_000);
            let quiet = !sent && !got && !media && self.dev.rx.is_empty();
            if quiet && self.now > 50_000 && !self.socket().may_recv() {
                return;
            }
            if quiet && self.socket().recv_queue() == 0 && (self.outstanding.is_empty() || self.fatal.is_some()) {
                return;
            }
        }
    }

    /// Takes the received bytes apart into PDUs.
    fn read(&mut self) {
        let s = self.sockets.get_mut::<tcp::Socket>(self.sock);
        while s.can_recv() {
            let _ = s.recv(|b| {
                self.rx.extend_from_slice(b);
                (b.len(), ())
            });
        }
        while self.fatal.is_none() {
            let cfg = if self.ic_done { RxConfig::established(Role::Host, self.digests, 0) } else { RxConfig::awaiting_ic(Role::Host) };
            let r = match pdu::parse(&self.rx, &cfg) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    self.fatal = Some(Fatal::Protocol(e));
                    return;
                }
            };
            let (p, data, ok, len) = (r.pdu, r.data.to_vec(), r.data_digest_ok != Some(false), r.len);
            self.received.push(self.rx[..len].to_vec());
            self.rx.drain(..len);
            match p {
                Pdu::IcResp(resp) => {
                    self.ic_done = true;
                    self.events.push(Event::Established { maxh2cdata: resp.maxh2cdata });
                }
                Pdu::C2hData(d) => {
                    if !ok {
                        self.fatal = Some(Fatal::DataDigest { cid: d.cccid });
                        return;
                    }
                    let buf = self.data.entry(d.cccid).or_default();
                    if d.datao == 0 {
                        buf.clear(); // a new read with a CID used before
                    }
                    let end = d.datao as usize + data.len();
                    if buf.len() < end {
                        buf.resize(end, 0);
                    }
                    buf[d.datao as usize..end].copy_from_slice(&data);
                    if d.success {
                        if self.cattr & 4 == 0 {
                            self.fatal = Some(Fatal::UnexpectedSuccess { cid: d.cccid });
                            return;
                        }
                        // The command is done: what its CapsuleResp would
                        // have said (success; SQHD not reported).
                        self.outstanding.remove(&d.cccid);
                        self.events.push(Event::Completed(Completion { dw0: 0, dw1: 0, sqhd: 0, sqid: self.qid, cid: d.cccid, status: crate::net::nvmf_wire::Status::SUCCESS }));
                    }
                }
                Pdu::CapsuleResp(c) => {
                    self.outstanding.remove(&c.cid);
                    self.events.push(Event::Completed(c));
                }
                Pdu::R2t(r) => self.events.push(Event::R2t(r)),
                Pdu::C2hTermReq(tr) => self.fatal = Some(Fatal::Terminated { fes: tr.fes, fei: tr.fei, error_data: data }),
                other => self.fatal = Some(Fatal::Protocol(PduError::WrongDirection(other.pdu_type()))),
            }
        }
    }

    /// Sends a command capsule with `inline` data (digest as negotiated).
    pub fn submit(&mut self, sqe: Command, inline: &[u8]) {
        self.outstanding.insert(sqe.cid());
        self.send_pdu(&Pdu::CapsuleCmd(sqe), inline);
    }

    /// Sends a command and runs until it completes, answering R2Ts with
    /// the bytes in `self.data[cid]`.
    pub fn cmd(&mut self, t: &mut TargetModel, sqe: Command, inline: &[u8]) -> Completion {
        let cid = sqe.cid();
        self.submit(sqe, inline);
        self.wait(t, cid)
    }

    /// Runs until command `cid` completes, answering every R2T with the
    /// bytes in `self.data`; other completions stay in `events`.
    pub fn wait(&mut self, t: &mut TargetModel, cid: u16) -> Completion {
        for _ in 0..50 {
            self.run(t, |_| false);
            let mut kept = Vec::new();
            let mut done = None;
            for e in std::mem::take(&mut self.events) {
                match e {
                    Event::Completed(c) if c.cid == cid && done.is_none() => done = Some(c),
                    Event::R2t(r) => {
                        let data = self.data.get(&r.cccid).cloned().unwrap_or_default();
                        let chunk = data.get(r.r2to as usize..(r.r2to + r.r2tl) as usize).expect("R2T inside the data").to_vec();
                        let h = H2cData { cccid: r.cccid, ttag: r.ttag, datao: r.r2to, datal: r.r2tl, last: true };
                        self.send_pdu(&Pdu::H2cData(h), &chunk);
                    }
                    Event::Completed(_) => kept.push(e),
                    other => panic!("unexpected {other:?}"),
                }
            }
            self.events = kept;
            if let Some(c) = done {
                return c;
            }
            if let Some(f) = &self.fatal {
                panic!("fatal {f:?}");
            }
        }
        panic!("command {cid} never completed");
    }

    /// Fabrics Connect of this queue to `subnqn` (CNTLID 0xffff for an
    /// admin queue); the completion.
    pub fn connect(&mut self, t: &mut TargetModel, subnqn: &str, cntlid: u16) -> Completion {
        self.connect_sqsize(t, subnqn, cntlid, 31)
    }

    /// Connect asking for a queue of `sqsize` + 1 entries.
    pub fn connect_sqsize(&mut self, t: &mut TargetModel, subnqn: &str, cntlid: u16, sqsize: u16) -> Completion {
        let qid = self.qid;
        let sqe = Connect { recfmt: 0, qid, sqsize, cattr: self.cattr, kato: if qid == 0 { 10_000 } else { 0 } }.to_command(30);
        let data = ConnectData { hostid: [7; 16], cntlid, subnqn: subnqn.into(), hostnqn: HOSTNQN.into() }.to_bytes().unwrap();
        self.cmd(t, sqe, &data)
    }
}

/// The controller ID of an accepted Connect.
pub fn accepted(c: &Completion) -> Option<u16> {
    c.status.is_success().then_some(c.dw0 as u16)
}
