//! A target model against a scripted NVMe/TCP host: a smoltcp client
//! driving `dpu_nvme_tcp::host::HostQueue` over simulated frames.

use super::*;
use dpu_nvme::Sqe;
use dpu_nvme_tcp::fabrics::{self, admin, io, ConnectCmd, ConnectData, ConnectResponse, PropertyGet, PropertySet, PropertySize};
use dpu_nvme_tcp::host::{Event, HostQueue, Want};
use dpu_nvme_tcp::pdu::Digests;
use dpu_nvme_tcp::sgl::Dptr;

const NQN: &str = "nqn.2026-11.io.dpusim:test";
const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:test-host";
const CLOCK: u64 = 1_000_000_000;

fn target() -> TargetModel {
    TargetModel::new(
        TargetParams {
            name: "t0".into(),
            ip: Ipv4Addr::new(10, 0, 0, 10),
            prefix: 24,
            mac: [2, 0x7a, 0, 0, 1, 1],
            port: 4420,
            nqn: NQN.into(),
            namespaces: vec![(1 << 20, 512), (1 << 20, 4096)],
            latency: 5_000,
            max_queues: 4,
            inline_data: 4096,
            mtu: 1500,
            speed_gbps: 100,
            min_rto_ms: 5,
        },
        CLOCK,
    )
}

/// A host: smoltcp client + one NVMe/TCP queue.
struct Host {
    iface: Interface,
    dev: Frames,
    sockets: SocketSet<'static>,
    sock: SocketHandle,
    q: HostQueue<32>,
    now: u64,
    /// Data delivered by C2HData, per CID.
    data: Vec<Vec<u8>>,
    events: Vec<Event>,
    fatal: Option<dpu_nvme_tcp::host::Fatal>,
}

impl Host {
    fn new(t: &mut TargetModel, qid: u16, digests: Digests, local_port: u16) -> Host {
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
        let mut h = Host { iface, dev, sockets, sock, q: HostQueue::new(qid, digests), now: 0, data: vec![Vec::new(); 32], events: Vec::new(), fatal: None };
        h.run(t, |s| s.state() == tcp::State::Established);
        let mut b = [0u8; 128];
        let n = h.q.icreq(&mut b).unwrap();
        h.send(&b[..n]);
        h.run(t, |_| false);
        assert!(matches!(h.events.pop(), Some(Event::Established { .. })), "ICResp");
        h
    }

    fn send(&mut self, b: &[u8]) {
        let s = self.sockets.get_mut::<tcp::Socket>(self.sock);
        assert_eq!(s.send_slice(b).unwrap(), b.len());
    }

    /// Exchanges frames with the target until nothing moves or `done`.
    fn run(&mut self, t: &mut TargetModel, done: impl Fn(&tcp::Socket) -> bool) {
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
            self.dev.rx.extend(back);
            self.iface.poll(inst, &mut self.dev, &mut self.sockets);
            self.read();
            let s = self.sockets.get::<tcp::Socket>(self.sock);
            if done(s) {
                return;
            }
            let media = t.next_poll(self.now).is_some_and(|at| at < self.now + 100_000);
            if !sent && !got && !media && self.dev.rx.is_empty() && self.now > 50_000 && !self.sockets.get::<tcp::Socket>(self.sock).may_recv() {
                return;
            }
            if !sent && !got && !media && self.dev.rx.is_empty() && self.sockets.get::<tcp::Socket>(self.sock).recv_queue() == 0 && self.idle() {
                return;
            }
        }
    }

    fn idle(&self) -> bool {
        self.q.outstanding() == 0 || self.fatal.is_some()
    }

    /// Walks the received bytes through the queue.
    fn read(&mut self) {
        let s = self.sockets.get_mut::<tcp::Socket>(self.sock);
        loop {
            if self.fatal.is_some() {
                return;
            }
            let r = match self.q.rx_want() {
                Want::Header(n) => {
                    if s.recv_queue() < n {
                        return;
                    }
                    let mut b = [0u8; 128];
                    s.recv_slice(&mut b[..n]).unwrap();
                    self.q.on_header(&b[..n])
                }
                Want::Skip(n) => {
                    let k = s.recv(|b| {
                        let k = b.len().min(n as usize);
                        (k, k)
                    });
                    match k {
                        Ok(0) | Err(_) => return,
                        Ok(k) => self.q.on_skip(k as u32),
                    }
                }
                Want::Data { cid, offset, len } => {
                    let mut chunk = Vec::new();
                    let _ = s.recv(|b| {
                        let k = b.len().min(len as usize);
                        chunk.extend_from_slice(&b[..k]);
                        (k, ())
                    });
                    if chunk.is_empty() {
                        return;
                    }
                    let d = &mut self.data[usize::from(cid)];
                    let end = offset as usize + chunk.len();
                    if d.len() < end {
                        d.resize(end, 0);
                    }
                    d[offset as usize..end].copy_from_slice(&chunk);
                    self.q.on_data(chunk.len() as u32, &chunk)
                }
                Want::Digest => {
                    if s.recv_queue() < 4 {
                        return;
                    }
                    let mut b = [0u8; 4];
                    s.recv_slice(&mut b).unwrap();
                    self.q.on_digest(b)
                }
            };
            match r {
                Ok(Event::None) => {}
                Ok(e) => self.events.push(e),
                Err(f) => self.fatal = Some(f),
            }
        }
    }

    /// Sends a command and runs until it completes; returns (status, dw0).
    fn cmd(&mut self, t: &mut TargetModel, sqe: Sqe, write: bool, len: u32, inline: &[u8]) -> (dpu_nvme::Status, u32, u32) {
        let mut b = [0u8; 128];
        let n = self.q.capsule(&sqe, write, len, inline.len() as u32, 0, &mut b).unwrap();
        let mut pdu = b[..n].to_vec();
        pdu.extend_from_slice(inline);
        if self.q.data_digest() && !inline.is_empty() {
            pdu.extend_from_slice(&HostQueue::<32>::digest_of(&[inline]));
        }
        self.send(&pdu);
        let cid = sqe.cid();
        for _ in 0..50 {
            self.run(t, |_| false);
            while let Some(e) = self.events.pop() {
                match e {
                    Event::Completed { cid: c, cqe, .. } if c == cid => return (cqe.status, cqe.dw0, cqe.dw1),
                    Event::R2t { cid: c, ttag, offset, len, .. } if c == cid => {
                        let data = self.data[usize::from(cid)].clone();
                        let mut h = [0u8; 128];
                        let n = self.q.h2c_data(cid, ttag, offset, len, true, &mut h).unwrap();
                        let mut p = h[..n].to_vec();
                        let chunk = &data[offset as usize..(offset + len) as usize];
                        p.extend_from_slice(chunk);
                        if self.q.data_digest() {
                            p.extend_from_slice(&HostQueue::<32>::digest_of(&[chunk]));
                        }
                        self.send(&p);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            if let Some(f) = self.fatal {
                panic!("fatal {f:?}");
            }
        }
        panic!("command {cid} never completed");
    }

    fn connect(&mut self, t: &mut TargetModel, subnqn: &str, cntlid: u16) -> ConnectResponse {
        self.connect_sqsize(t, subnqn, cntlid, 31)
    }

    fn connect_sqsize(&mut self, t: &mut TargetModel, subnqn: &str, cntlid: u16, sqsize: u16) -> ConnectResponse {
        let qid = self.q.qid;
        let sqe = ConnectCmd { recfmt: 0, qid, sqsize, cattr: 0, kato: if qid == 0 { 10_000 } else { 0 } }.to_sqe(30);
        let mut data = [0u8; 1024];
        ConnectData { hostid: [7; 16], cntlid, subnqn, hostnqn: HOSTNQN }.emit(&mut data).unwrap();
        let (st, dw0, dw1) = self.cmd(t, sqe, true, 1024, &data);
        ConnectResponse::from_cqe(&dpu_nvme::Cqe { dw0, dw1, sq_head: 0, sq_id: qid, cid: 30, status: st })
    }
}

fn admin_session(t: &mut TargetModel, digests: Digests) -> (Host, u16) {
    let port = 40100 + t.stats.connections as u16;
    let mut a = Host::new(t, 0, digests, port);
    let ConnectResponse::Accepted { cntlid, .. } = a.connect(t, NQN, 0xffff) else { panic!("admin connect refused") };
    let (st, _, _) = a.cmd(t, PropertySet { size: PropertySize::Four, offset: fabrics::property::offset::CC, value: 0x46_0001 }.to_sqe(1), false, 0, &[]);
    assert!(st.is_success());
    let get = PropertyGet { size: PropertySize::Four, offset: fabrics::property::offset::CSTS };
    let (st, dw0, _) = a.cmd(t, get.to_sqe(2), false, 0, &[]);
    assert!(st.is_success() && dw0 & 1 == 1, "CSTS.RDY after CC.EN");
    (a, cntlid)
}

#[test]
fn connect_queue_sizes_are_checked() {
    // Found by the sim_target fuzz target: an admin Connect with SQSIZE
    // 0xffff overflowed the SQ head computation on the next command.
    let mut t = target();
    let mut a = Host::new(&mut t, 0, Digests::NONE, 40200);
    let ConnectResponse::Accepted { cntlid, .. } = a.connect_sqsize(&mut t, NQN, 0xffff, 0xffff) else { panic!("admin connect refused") };
    let cc = PropertySet { size: PropertySize::Four, offset: fabrics::property::offset::CC, value: 0x46_0001 };
    let (st, _, _) = a.cmd(&mut t, cc.to_sqe(1), false, 0, &[]);
    assert!(st.is_success(), "{st:?}");
    let sqsize = ConnectResponse::InvalidParameter { in_data: false, offset: 44 };
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50200);
    assert_eq!(q.connect_sqsize(&mut t, NQN, cntlid, 128), sqsize, "beyond CAP.MQES (127)");
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50201);
    assert_eq!(q.connect_sqsize(&mut t, NQN, cntlid, 0), sqsize, "a queue of one entry");
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50202);
    assert!(matches!(q.connect_sqsize(&mut t, NQN, cntlid, 127), ConnectResponse::Accepted { .. }));
    assert_eq!(t.stats.protocol_errors, 0);
}

#[test]
fn admin_connect_identify_and_io_round_trip() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut t = target();
        let (mut a, cntlid) = admin_session(&mut t, digests);
        let (st, _, _) = a.cmd(&mut t, admin::identify(3, 0, 1, 0), false, 4096, &[]);
        assert!(st.is_success());
        let id = a.data[3].clone();
        assert_eq!(id.len(), 4096);
        assert_eq!(u16::from_le_bytes([id[78], id[79]]), cntlid);
        assert_eq!(id[77], 5, "MDTS");
        assert_eq!(u32::from_le_bytes(id[1792..1796].try_into().unwrap()), (64 + 4096) / 16, "IOCCSZ");
        assert!(id[768..].starts_with(NQN.as_bytes()));
        let (st, _, _) = a.cmd(&mut t, admin::identify(4, 2, 0, 0), false, 4096, &[]);
        assert!(st.is_success());
        assert_eq!(u64::from_le_bytes(a.data[4][0..8].try_into().unwrap()), 256, "1 MiB of 4 KiB blocks");
        assert_eq!(a.data[4][130], 12, "LBADS");

        let mut q = Host::new(&mut t, 1, digests, 50000);
        assert!(matches!(q.connect(&mut t, NQN, cntlid), ConnectResponse::Accepted { .. }));
        // 8 KiB written through R2T/H2CData, 4 KiB in the capsule.
        let big: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        q.data[5] = big.clone();
        let (st, _, _) = q.cmd(&mut t, io::write(5, 1, 16, 15, Dptr::Transport { len: 8192 }), true, 8192, &[]);
        assert!(st.is_success(), "{st:?}");
        let small = vec![0xa5u8; 4096];
        let (st, _, _) = q.cmd(&mut t, io::write(6, 1, 32, 7, Dptr::in_capsule(4096)), true, 4096, &small);
        assert!(st.is_success());
        let (st, _, _) = q.cmd(&mut t, io::read(7, 1, 16, 23, 12288), false, 12288, &[]);
        assert!(st.is_success());
        assert_eq!(&q.data[7][..8192], &big[..]);
        assert_eq!(&q.data[7][8192..], &small[..]);
        // Out of range and bad namespace come back as NVMe statuses.
        let (st, _, _) = q.cmd(&mut t, io::read(8, 1, 2047, 1, 1024), false, 1024, &[]);
        assert_eq!(st, dpu_nvme::Status::LBA_OUT_OF_RANGE);
        let (st, _, _) = q.cmd(&mut t, io::read(8, 9, 0, 0, 512), false, 512, &[]);
        assert_eq!(st, dpu_nvme::Status::INVALID_NAMESPACE);
        assert_eq!(t.stats.protocol_errors, 0);
        assert!(t.stats.reads >= 1 && t.stats.writes >= 2);

        // Compare: a match in the capsule, a mismatch through R2T.
        let (st, _, _) = q.cmd(&mut t, io::compare(9, 1, 32, 7, Dptr::in_capsule(4096)), true, 4096, &small);
        assert!(st.is_success(), "{st:?}");
        let mut other = big.clone();
        other[5000] ^= 1;
        q.data[10] = other;
        let (st, _, _) = q.cmd(&mut t, io::compare(10, 1, 16, 15, Dptr::Transport { len: 8192 }), true, 8192, &[]);
        assert_eq!(st, dpu_nvme::Status::COMPARE_FAILURE);
        // DSM deallocate of LBAs 20..24 and 32..40: they read as zeroes;
        // a range past the end fails the whole command.
        let range = |slba: u64, nlb: u32| {
            let mut r = [0u8; 16];
            r[4..8].copy_from_slice(&nlb.to_le_bytes());
            r[8..16].copy_from_slice(&slba.to_le_bytes());
            r
        };
        let list: Vec<u8> = [range(20, 4), range(32, 8)].concat();
        let (st, _, _) = q.cmd(&mut t, io::dsm(11, 1, 1, 1 << 2, Dptr::in_capsule(32)), true, 32, &list);
        assert!(st.is_success(), "{st:?}");
        let (st, _, _) = q.cmd(&mut t, io::read(12, 1, 16, 23, 12288), false, 12288, &[]);
        assert!(st.is_success());
        assert_eq!(&q.data[12][..4 * 512], &big[..4 * 512]);
        assert!(q.data[12][4 * 512..8 * 512].iter().all(|&b| b == 0), "LBAs 20..24 deallocated");
        assert_eq!(&q.data[12][8 * 512..16 * 512], &big[8 * 512..]);
        assert!(q.data[12][16 * 512..].iter().all(|&b| b == 0), "LBAs 32..40 deallocated");
        let (st, _, _) = q.cmd(&mut t, io::dsm(13, 1, 0, 1 << 2, Dptr::in_capsule(16)), true, 16, &range(2047, 2));
        assert_eq!(st, dpu_nvme::Status::LBA_OUT_OF_RANGE);
        assert_eq!(t.stats.protocol_errors, 0);
    }
}

#[test]
fn connects_are_checked() {
    let mut t = target();
    let mut a = Host::new(&mut t, 0, Digests::NONE, 40000);
    assert!(matches!(a.connect(&mut t, "nqn.2026-11.io.dpusim:other", 0xffff), ConnectResponse::InvalidParameter { .. } | ConnectResponse::Failed(_)));
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    // I/O queue for a controller that does not exist, or beyond the limit.
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50001);
    assert!(!matches!(q.connect(&mut t, NQN, cntlid + 7), ConnectResponse::Accepted { .. }));
    let mut q = Host::new(&mut t, 9, Digests::NONE, 50002);
    assert!(!matches!(q.connect(&mut t, NQN, cntlid), ConnectResponse::Accepted { .. }), "qid 9 > max_queues 4");
}

#[test]
fn discovery_log_lists_the_subsystem() {
    let mut t = target();
    let mut d = Host::new(&mut t, 0, Digests::NONE, 40000);
    let ConnectResponse::Accepted { .. } = d.connect(&mut t, dpu_nvme_tcp::DISCOVERY_NQN, 0xffff) else { panic!() };
    let (st, _, _) = d.cmd(&mut t, PropertySet { size: PropertySize::Four, offset: fabrics::property::offset::CC, value: 1 }.to_sqe(1), false, 0, &[]);
    assert!(st.is_success());
    let glp = admin::GetLogPage { nsid: 0, lid: 0x70, lsp: 0, rae: false, offset: 0, len: 2048 };
    let (st, _, _) = d.cmd(&mut t, glp.to_sqe(2).unwrap(), false, 2048, &[]);
    assert!(st.is_success());
    let log = dpu_nvme_tcp::discovery::DiscoveryLog::parse(&d.data[2]).unwrap();
    let e = log.entries().next().unwrap();
    assert_eq!(e.subnqn(), Ok(NQN));
    assert_eq!(e.traddr(), Ok("10.0.0.10"));
}

#[test]
fn garbage_gets_a_term_req_and_a_close() {
    let mut t = target();
    let mut h = Host::new(&mut t, 0, Digests::NONE, 40000);
    // A PDU type the host never sends to a controller (C2HData from the host).
    h.send(&[0x07, 0, 24, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.run(&mut t, |s| !s.may_recv());
    assert_eq!(t.stats.protocol_errors, 1);
    assert!(matches!(h.fatal, Some(dpu_nvme_tcp::host::Fatal::Terminated { fes: 2, .. }) | Some(dpu_nvme_tcp::host::Fatal::Terminated { fes: 1, .. })), "{:?}", h.fatal);
}

#[test]
fn restart_drops_connections_and_keeps_data() {
    let mut t = target();
    let (mut a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50000);
    assert!(matches!(q.connect(&mut t, NQN, cntlid), ConnectResponse::Accepted { .. }));
    let (st, _, _) = q.cmd(&mut t, io::write(1, 1, 0, 0, Dptr::in_capsule(512)), true, 512, &[0x5a; 512]);
    assert!(st.is_success());
    let now = t.last_poll;
    t.restart(now, now + 1_000_000);
    let rst = t.poll(now);
    a.dev.rx.extend(rst);
    a.run(&mut t, |s| !s.is_active());
    assert!(!a.sockets.get::<tcp::Socket>(a.sock).is_active(), "reset by the restart");
    assert_eq!(t.subsystem.ctrls.len(), 0);
    assert_eq!(t.stats.restarts, 1);
    // After it is back, a new association reads the acknowledged data.
    t.last_poll = now + 2_000_000;
    let (_a2, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50010);
    assert!(matches!(q.connect(&mut t, NQN, cntlid), ConnectResponse::Accepted { .. }));
    let (st, _, _) = q.cmd(&mut t, io::read(2, 1, 0, 0, 512), false, 512, &[]);
    assert!(st.is_success());
    assert_eq!(q.data[2], vec![0x5a; 512]);
}

/// The minimum RTO setting (our smoltcp patch) bounds how long a lost
/// tail segment stalls a connection: with 5 ms the segment is resent
/// within milliseconds, with smoltcp's default 1 s after a second.
#[test]
fn min_rto_bounds_tail_loss_recovery() {
    // (minimum RTO, earliest and latest resend in microseconds)
    for (min_rto_ms, lo, hi) in [(5u64, 4_000u64, 20_000u64), (1000, 900_000, 2_100_000)] {
        let mut t = target();
        let mut h = Host::new(&mut t, 0, Digests::NONE, 40000);
        h.sockets.get_mut::<tcp::Socket>(h.sock).set_min_rto(smoltcp::time::Duration::from_millis(min_rto_ms));
        h.send(&[0u8; 72]);
        let t0 = h.now.max(t.last_poll) + 1000;
        let at = |cycles: u64| Instant::from_micros((cycles / 1000) as i64);
        h.iface.poll(at(t0), &mut h.dev, &mut h.sockets);
        assert_eq!(h.dev.tx.len(), 1, "the segment goes out at once");
        h.dev.tx.clear(); // ... and is lost
        let mut resent = None;
        for step in 1..=30_000u64 {
            let now = t0 + step * 100_000; // 100 us steps
            h.iface.poll(at(now), &mut h.dev, &mut h.sockets);
            if !h.dev.tx.is_empty() {
                resent = Some((now - t0) / 1000);
                break;
            }
        }
        let us = resent.expect("never retransmitted");
        assert!((lo..=hi).contains(&us), "min RTO {min_rto_ms} ms: resent after {us} us");
    }
}
