//! Real bytes: NVMe/TCP streams between the firmware (host) and Linux
//! nvmet-tcp (controller), `sim/tests/fixtures/linux-nvmet-tcp.txt` (how it
//! was captured and cut: the README there). Every PDU of both directions
//! parses with this module's code, Linux's answers fit the commands they
//! answer, and the discovery log Linux served reads at the spec offsets.

use super::commands::{admin_opc, cns, nvm_opc, GetLogPage, Identify};
use super::discovery;
use super::fabrics::{Connect, ConnectData, FcType, DISCOVERY_NQN};
use super::identify::ControllerIdentity;
use super::pdu::{self, Digests, Pdu, Role, RxConfig};
use super::{Command, Sgl};
use std::collections::{BTreeMap, VecDeque};

const FIXTURE: &str = include_str!("../../../tests/fixtures/linux-nvmet-tcp.txt");
/// The guest's configuration (tools/xtask/src/interop.rs `GuestConfig::new`).
pub const LINUX_NQN: &str = "nqn.2026-11.io.dpusim:linux";

/// One TCP connection of the capture.
pub struct Conn {
    pub order: u32,
    /// "discovery", "admin" or "io".
    pub kind: String,
    pub qid: u16,
    pub digests: Digests,
    pub h2c: Vec<u8>,
    pub c2h: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// The connections of the fixture.
pub fn connections() -> Vec<Conn> {
    let mut out: Vec<Conn> = Vec::new();
    for line in FIXTURE.lines().filter(|l| !l.starts_with('#')) {
        let mut w = line.split_whitespace();
        match (w.next(), out.last_mut()) {
            (Some("conn"), _) => {
                let order = w.next().and_then(|v| v.parse().ok()).expect("order");
                let kind = w.next().expect("kind").to_string();
                let qid = w.next().and_then(|v| v.strip_prefix("qid=")?.parse().ok()).expect("qid");
                let dgst: u8 = w.next().and_then(|v| v.strip_prefix("dgst=")?.parse().ok()).expect("dgst");
                let digests = Digests { header: dgst & 1 != 0, data: dgst & 2 != 0 };
                out.push(Conn { order, kind, qid, digests, h2c: Vec::new(), c2h: Vec::new() });
            }
            (Some("h2c"), Some(c)) => c.h2c.extend(hex(w.next().unwrap_or(""))),
            (Some("c2h"), Some(c)) => c.c2h.extend(hex(w.next().unwrap_or(""))),
            _ => {}
        }
    }
    out
}

/// A parsed PDU with its data and the raw bytes.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub pdu: Pdu,
    pub flags: u8,
    pub pdo: u8,
    pub plen: u32,
    pub data: Vec<u8>,
    pub data_digest_ok: Option<bool>,
}

/// Every PDU of one direction, parsed as the receiving `role` would
/// (IC first, then with the negotiated digests); panics on any error or
/// a stream that does not end on a PDU boundary.
pub fn parse_stream(b: &[u8], role: Role, digests: Digests) -> Vec<Parsed> {
    let mut cfg = RxConfig::awaiting_ic(role);
    let mut off = 0;
    let mut out = Vec::new();
    while off < b.len() {
        let r = match pdu::parse(&b[off..], &cfg) {
            Ok(Some(r)) => r,
            Ok(None) => panic!("{role:?} stream cut inside a PDU at byte {off} of {}", b.len()),
            Err(e) => panic!("{role:?} stream: PDU at byte {off} rejected: {e} ({:02x?})", &b[off..(off + 24).min(b.len())]),
        };
        out.push(Parsed { pdu: r.pdu, flags: r.header.flags, pdo: r.header.pdo, plen: r.header.plen, data: r.data.to_vec(), data_digest_ok: r.data_digest_ok });
        off += r.len;
        cfg = RxConfig::established(role, digests, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_every_kind_of_connection() {
        let c = connections();
        let kinds: Vec<(&str, u16, Digests)> = c.iter().map(|c| (c.kind.as_str(), c.qid, c.digests)).collect();
        for want in ["discovery", "admin", "io"] {
            assert!(kinds.iter().any(|k| k.0 == want), "no {want} connection: {kinds:?}");
        }
        assert!(c.iter().any(|c| c.digests == Digests::BOTH), "a connection with digests");
        assert!(c.iter().any(|c| c.digests == Digests::NONE), "one without");
    }

    /// Every PDU either side sent parses; digests (when on) all match; and
    /// each stream ends on a PDU boundary.
    #[test]
    fn every_pdu_parses_and_every_digest_matches() {
        let mut total = 0;
        for c in connections() {
            for (b, role) in [(&c.h2c, Role::Controller), (&c.c2h, Role::Host)] {
                let ps = parse_stream(b, role, c.digests);
                assert!(!ps.is_empty(), "conn {}", c.order);
                for p in &ps {
                    let has_data = !p.data.is_empty() && !matches!(p.pdu, Pdu::C2hTermReq(_) | Pdu::H2cTermReq(_));
                    assert_eq!(p.data_digest_ok, (has_data && c.digests.data).then_some(true), "conn {} {:?}", c.order, p.pdu);
                    assert_eq!(p.flags & pdu::FLAG_HDGSTF != 0, c.digests.header && !matches!(p.pdu, Pdu::IcReq(_) | Pdu::IcResp(_)), "conn {} {:?}", c.order, p.pdu);
                }
                total += ps.len();
            }
        }
        assert!(total > 50, "{total} PDUs");
    }

    /// What Linux answered fits what it was asked: ICResp echoes the
    /// digests; every CapsuleResp, C2HData and R2T names a command then
    /// outstanding on that connection; C2HData comes in order inside the
    /// command's transport SGL, never sets SUCCESS (nvmet always sends a
    /// CapsuleResp) and delivers every byte before the response; R2Ts ask
    /// for data of writes and are answered by H2CData with their TTAG.
    #[test]
    fn linux_answers_fit_the_commands() {
        let (mut r2ts, mut reads, mut resps) = (0, 0, 0);
        for c in connections() {
            let h2c = parse_stream(&c.h2c, Role::Controller, c.digests);
            let c2h = parse_stream(&c.c2h, Role::Host, c.digests);
            let Pdu::IcReq(req) = h2c[0].pdu else { panic!("conn {}: no ICReq first", c.order) };
            let Pdu::IcResp(resp) = c2h[0].pdu else { panic!("conn {}: no ICResp first", c.order) };
            assert_eq!((resp.pfv, resp.hdgst, resp.ddgst), (0, req.hdgst, req.ddgst));
            assert!(resp.maxh2cdata >= pdu::MIN_MAXH2CDATA && resp.maxh2cdata.is_multiple_of(4), "{resp:?}");
            // A CID names one outstanding command; it is used again only
            // after its CapsuleResp. Commands per CID, in the order sent.
            let mut cmds: BTreeMap<u16, VecDeque<Command>> = BTreeMap::new();
            for p in &h2c {
                if let Pdu::CapsuleCmd(s) = p.pdu {
                    cmds.entry(s.cid()).or_default().push_back(s);
                }
            }
            let mut got: BTreeMap<u16, u32> = BTreeMap::new();
            for p in &c2h[1..] {
                let current = |cid: u16, cmds: &BTreeMap<u16, VecDeque<Command>>| {
                    *cmds.get(&cid).and_then(|q| q.front()).unwrap_or_else(|| panic!("conn {}: a PDU for CID {cid}, not outstanding", c.order))
                };
                match p.pdu {
                    Pdu::CapsuleResp(cqe) => {
                        let sqe = current(cqe.cid, &cmds);
                        assert_eq!(cqe.sqid, c.qid, "SQID");
                        if let (Some(Sgl::Transport { len }), true) = (sqe.sgl(), cqe.status.is_success()) {
                            if sqe.opcode() != nvm_opc::WRITE && len > 0 {
                                assert_eq!(got.remove(&cqe.cid), Some(len), "conn {}: {sqe:?}: every byte sent before the response", c.order);
                            }
                        }
                        cmds.get_mut(&cqe.cid).and_then(VecDeque::pop_front);
                        resps += 1;
                    }
                    Pdu::C2hData(d) => {
                        let sqe = current(d.cccid, &cmds);
                        let Some(Sgl::Transport { len }) = sqe.sgl() else { panic!("C2HData for {sqe:?} without a transport SGL") };
                        assert!(d.check(len).is_ok() && !d.success, "conn {}: {d:?} for {len} B", c.order);
                        assert_eq!(d.datao, got.get(&d.cccid).copied().unwrap_or(0), "in order");
                        *got.entry(d.cccid).or_default() += d.datal;
                        if sqe.opcode() == nvm_opc::READ && c.qid != 0 {
                            reads += 1;
                        }
                    }
                    Pdu::R2t(r) => {
                        let sqe = current(r.cccid, &cmds);
                        assert_eq!(sqe.opcode(), nvm_opc::WRITE);
                        let Some(Sgl::Transport { len }) = sqe.sgl() else { panic!("R2T for an in-capsule write") };
                        assert!(u64::from(r.r2to) + u64::from(r.r2tl) <= u64::from(len) && r.r2tl <= resp.maxh2cdata);
                        let answer = h2c.iter().find_map(|p| match p.pdu {
                            Pdu::H2cData(h) if h.ttag == r.ttag && h.cccid == r.cccid => Some(h),
                            _ => None,
                        });
                        if let Some(h) = answer {
                            assert_eq!((h.datao, h.datal), (r.r2to, r.r2tl), "H2CData answering {r:?}");
                        }
                        r2ts += 1;
                    }
                    other => panic!("conn {}: Linux sent {other:?}", c.order),
                }
            }
        }
        assert!(r2ts > 0 && reads > 0 && resps > 20, "R2Ts {r2ts}, reads {reads}, responses {resps}");
    }

    /// The Connect data the firmware sent and the Connect response, the
    /// Identify Controller data and the Discovery Log Page Linux sent.
    #[test]
    fn connect_identify_and_the_discovery_log() {
        let conns = connections();
        let mut seen = (false, false);
        for c in &conns {
            let h2c = parse_stream(&c.h2c, Role::Controller, c.digests);
            let c2h = parse_stream(&c.c2h, Role::Host, c.digests);
            let (sqe, data) = h2c.iter().find_map(|p| match p.pdu {
                Pdu::CapsuleCmd(s) if FcType::of(&s) == Some(FcType::Connect) => Some((s, p.data.clone())),
                _ => None,
            }).expect("a Connect");
            let cmd = Connect::parse(&sqe).unwrap();
            let cd = ConnectData::parse(&data).unwrap();
            assert_eq!(cmd.qid, c.qid);
            assert_eq!(cd.subnqn, if c.kind == "discovery" { DISCOVERY_NQN } else { LINUX_NQN });
            let resp = c2h.iter().find_map(|p| match p.pdu {
                Pdu::CapsuleResp(q) if q.cid == sqe.cid() => Some(q),
                _ => None,
            }).expect("Connect response");
            assert!(resp.status.is_success(), "{resp:?}");
            if c.qid > 0 {
                assert_eq!(resp.dw0 as u16, cd.cntlid, "an I/O queue joins its controller");
            }
            let data_of = |cid: u16| c2h.iter().filter(|p| matches!(p.pdu, Pdu::C2hData(d) if d.cccid == cid)).flat_map(|p| p.data.clone()).collect::<Vec<u8>>();
            for p in &h2c {
                let Pdu::CapsuleCmd(s) = p.pdu else { continue };
                match s.opcode() {
                    admin_opc::IDENTIFY if c.qid == 0 && Identify::parse(&s).cns == cns::CONTROLLER => {
                        let id = ControllerIdentity::parse(&data_of(s.cid())).expect("4096 bytes");
                        assert_eq!(id.mn, "Linux");
                        assert_eq!(id.cntlid, resp.dw0 as u16);
                        if c.kind == "admin" {
                            assert_eq!((id.subnqn.as_str(), id.cntrltype), (LINUX_NQN, 1));
                            assert!(id.ioccsz >= 4 && id.ioccsz * 16 >= 64 + 4096, "in-capsule data: {}", id.ioccsz);
                            seen.0 = true;
                        } else {
                            assert_eq!(id.subnqn, DISCOVERY_NQN);
                        }
                    }
                    admin_opc::GET_LOG_PAGE if GetLogPage::parse(&s).lid == discovery::LID_DISCOVERY => {
                        let log = data_of(s.cid());
                        let (h, entries) = discovery::entries(&log).unwrap();
                        assert!(h.numrec >= 1, "{h:?}");
                        let e = entries.iter().find(|e| e.subnqn() == Some(LINUX_NQN)).expect("the subsystem, SUBNQN at bytes 511:256");
                        assert_eq!((e.trtype(), e.adrfam(), e.subtype()), (discovery::trtype::TCP, discovery::adrfam::IPV4, discovery::subtype::NVM));
                        assert_eq!(e.traddr(), Some("10.0.0.10"), "TRADDR at bytes 767:512");
                        assert_eq!(e.trsvcid(), Some("4420"));
                        seen.1 = true;
                    }
                    _ => {}
                }
            }
        }
        assert!(seen.0, "an Identify Controller of the NVM subsystem");
        assert!(seen.1, "a Discovery Log Page");
    }
}
