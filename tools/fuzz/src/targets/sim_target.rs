//! The simulator's NVMe/TCP target model (`dpu_sim::net::nvmf_target`), the
//! controller-side parser and session state machine, fed a hostile host's
//! byte stream over a real (smoltcp) TCP connection, in pieces, with
//! simulated time passing so media completions and R2Ts happen. It must
//! never panic, whatever the stream.
//!
//! Input: a flags byte (bit 0: first set up an admin controller, cntlid 1,
//! on another connection, so the stream can connect I/O queues), a
//! split seed byte, then the stream.
//!
//! The wire parser it uses (`nvmf_wire`) is also fuzzed on its own
//! (`sim_wire`).

use dpu_nvme_tcp::fabrics::{ConnectCmd, ConnectData, PropertySet, PropertySize};
use dpu_nvme_tcp::pdu::{CapsuleCmd, IcReq, Pdu, TxConfig};
use dpu_sim::net::frames::Frames;
use dpu_sim::net::nvmf_target::{TargetModel, TargetParams};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use std::net::Ipv4Addr;

/// Simulated cycles per second (1 GHz, as the chip).
const CLOCK: u64 = 1_000_000_000;
/// The subsystem NQN of the target model.
pub const NQN: &str = "nqn.2026-11.io.dpusim:fuzz";
pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:fuzz-host";
/// Most exchange rounds per input (bounds the time an input takes).
const MAX_ROUNDS: usize = 400;

/// A host: a smoltcp interface with TCP connections to the target.
struct Host {
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    now: u64,
    rounds: usize,
}

impl Host {
    fn new() -> Host {
        let mut dev = Frames::new(1500);
        let cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress([2, 0xd9, 0, 0, 0, 1])));
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 1).into(), 24));
        });
        Host { iface, dev, sockets: SocketSet::new(vec![]), now: 0, rounds: 0 }
    }

    fn connect(&mut self, local_port: u16) -> SocketHandle {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; 1 << 16]), tcp::SocketBuffer::new(vec![0u8; 1 << 17]));
        s.set_nagle_enabled(false);
        s.connect(self.iface.context(), (Ipv4Address::new(10, 0, 0, 10), 4420), local_port).expect("connect");
        self.sockets.add(s)
    }

    fn instant(&self) -> Instant {
        Instant::from_micros((self.now / 1000) as i64)
    }

    /// Moves frames both ways until nothing moves (or the round budget
    /// runs out), discarding what the target sends on every connection.
    fn exchange(&mut self, t: &mut TargetModel, min_rounds: usize) {
        let mut quiet = 0;
        let mut round = 0;
        while self.rounds < MAX_ROUNDS {
            self.rounds += 1;
            round += 1;
            self.now += 10_000;
            let inst = self.instant();
            self.iface.poll(inst, &mut self.dev, &mut self.sockets);
            let out = std::mem::take(&mut self.dev.tx);
            let sent = !out.is_empty();
            for f in out {
                t.receive(self.now, f);
            }
            let back = t.poll(self.now);
            let got = !back.is_empty();
            self.dev.rx.extend(back);
            self.iface.poll(inst, &mut self.dev, &mut self.sockets);
            for (_, s) in self.sockets.iter_mut() {
                let smoltcp::socket::Socket::Tcp(s) = s;
                while s.can_recv() {
                    if s.recv(|b| (b.len(), ())).is_err() {
                        break;
                    }
                }
            }
            quiet = if sent || got || !self.dev.rx.is_empty() { 0 } else { quiet + 1 };
            if quiet >= 2 && round >= min_rounds {
                return;
            }
        }
    }

    fn send(&mut self, h: SocketHandle, b: &[u8]) -> usize {
        self.sockets.get_mut::<tcp::Socket>(h).send_slice(b).unwrap_or(0)
    }

    fn established(&self, h: SocketHandle) -> bool {
        self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Established
    }
}

fn target() -> TargetModel {
    TargetModel::new(
        TargetParams {
            name: "fuzz".into(),
            ip: Ipv4Addr::new(10, 0, 0, 10),
            prefix: 24,
            mac: [2, 0x7a, 0, 0, 1, 1],
            port: 4420,
            nqn: NQN.into(),
            namespaces: vec![(1 << 20, 512), (1 << 16, 4096)],
            // Namespace 2 reads as the verify pattern until written (the
            // boot-disk fill: its write, zero and deallocate paths).
            patterned: vec![2],
            latency: 5_000,
            max_queues: 4,
            inline_data: 4096,
            mtu: 1500,
            speed_gbps: 100,
            min_rto_ms: 5,
            at_rest_keys: Vec::new(),
            sq_flow_disable: true,
        },
        CLOCK,
    )
}

/// PDUs of a host's admin queue setup: ICReq, Connect (admin queue,
/// dynamic controller), Property Set CC.EN.
pub fn admin_setup() -> Vec<u8> {
    let mut s = icreq();
    s.extend(connect(0, 0xffff, 0));
    let cc = PropertySet { size: PropertySize::Four, offset: 0x14, value: 0x0046_0001 };
    s.extend(capsule(cc.to_sqe(1).0, &[]));
    s
}

/// An ICReq asking for no digests.
pub fn icreq() -> Vec<u8> {
    let mut b = [0u8; 128];
    let n = Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }).emit(0, &TxConfig::PLAIN, &mut b).unwrap();
    b[..n].to_vec()
}

/// A Connect capsule with its 1024 bytes of in-capsule data.
pub fn connect(qid: u16, cntlid: u16, cid: u16) -> Vec<u8> {
    let sqe = ConnectCmd { recfmt: 0, qid, sqsize: 31, cattr: 0, kato: 0 }.to_sqe(cid);
    let mut data = [0u8; 1024];
    ConnectData { hostid: [7; 16], cntlid, subnqn: NQN, hostnqn: HOSTNQN }.emit(&mut data).unwrap();
    capsule(sqe.0, &data)
}

/// A command capsule (no digests) with in-capsule data.
pub fn capsule(sqe: [u8; 64], data: &[u8]) -> Vec<u8> {
    let mut b = [0u8; 128];
    let n = Pdu::CapsuleCmd(CapsuleCmd { sqe }).emit(data.len() as u32, &TxConfig::PLAIN, &mut b).unwrap();
    let mut v = b[..n].to_vec();
    v.extend_from_slice(data);
    v
}

pub fn run(data: &[u8]) {
    let (flags, split, stream) = match data {
        [f, s, rest @ ..] => (*f, *s, rest),
        _ => return,
    };
    let mut t = target();
    let mut h = Host::new();
    if flags & 1 != 0 {
        let a = h.connect(49152);
        h.exchange(&mut t, 1);
        if h.established(a) {
            let setup = admin_setup();
            h.send(a, &setup);
            h.exchange(&mut t, 1);
        }
    }
    let c = h.connect(49153);
    h.exchange(&mut t, 1);
    if !h.established(c) {
        return;
    }
    // Deliver the stream in pieces whose sizes follow from the split seed.
    let mut x = u32::from(split) | 0x100;
    let mut at = 0;
    while at < stream.len() && h.rounds < MAX_ROUNDS {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let piece = 1 + (x as usize % 1500);
        let end = (at + piece).min(stream.len());
        let n = h.send(c, &stream[at..end]);
        at += n;
        h.exchange(&mut t, 1);
        if n == 0 && !h.established(c) {
            break;
        }
    }
    // Let media completions, R2Ts and TCP timers run.
    h.exchange(&mut t, 3);
    let s = &t.stats;
    assert!(s.reads <= s.commands && s.writes <= s.commands, "{s:?}");
}
