//! The target model against Linux nvmet, request for request: the admin
//! and discovery connections of the Linux capture
//! (`sim/tests/fixtures/linux-nvmet-tcp.txt`) are replayed byte for byte
//! into a target model set up like the guest, and what it sends back must
//! have the shape of what Linux sent for the same requests: the same PDUs
//! in the same order, each with its CCCID, FLAGS (digests, LAST_PDU, never
//! SUCCESS), HLEN, PDO, data length and whether the command succeeded.
//! Contents (Identify strings, controller IDs, MAXH2CDATA) may differ.

use super::client::Host;
use super::*;
use crate::net::nvmf_wire::linux_fixture::{connections, parse_stream, Parsed, LINUX_NQN};
use crate::net::nvmf_wire::pdu::{Pdu, Role};

/// A target model where the guest was: 10.0.0.10:4420, the guest's NQN,
/// one 64 MiB namespace of 512-byte blocks, 16 KiB in-capsule data.
fn linux_like_target() -> TargetModel {
    TargetModel::new(TargetParams { nqn: LINUX_NQN.into(), namespaces: vec![(64 << 20, 512)], inline_data: 16384, max_queues: 8, ..params() }, CLOCK)
}

/// The comparable shape of a controller-to-host PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    IcResp { pfv: u16, cpda: u8, hdgst: bool, ddgst: bool },
    Resp { cid: u16, flags: u8, success: bool },
    Data { cid: u16, flags: u8, pdo: u8, datao: u32, datal: u32 },
    Other(String),
}

fn shape(p: &Parsed) -> Shape {
    match p.pdu {
        Pdu::IcResp(r) => Shape::IcResp { pfv: r.pfv, cpda: r.cpda, hdgst: r.hdgst, ddgst: r.ddgst },
        Pdu::CapsuleResp(c) => Shape::Resp { cid: c.cid, flags: p.flags, success: c.status.is_success() },
        Pdu::C2hData(d) => Shape::Data { cid: d.cccid, flags: p.flags, pdo: p.pdo, datao: d.datao, datal: d.datal },
        other => Shape::Other(format!("{other:?}")),
    }
}

#[test]
fn admin_and_discovery_answers_have_linux_shape() {
    let mut compared = 0;
    for (i, c) in connections().into_iter().filter(|c| c.qid == 0).enumerate() {
        let mut t = linux_like_target();
        let mut h = Host::tcp(&mut t, 0, 41000 + i as u16);
        h.digests = c.digests;
        h.send(&c.h2c);
        for _ in 0..20 {
            h.run(&mut t, |_| false);
        }
        assert!(h.fatal.is_none(), "conn {}: {:?}", c.order, h.fatal);
        let ours: Vec<Shape> = parse_stream(&h.received.concat(), Role::Host, c.digests).iter().map(shape).collect();
        let linux: Vec<Shape> = parse_stream(&c.c2h, Role::Host, c.digests).iter().map(shape).collect();
        assert_eq!(ours.len(), linux.len(), "conn {} ({}): PDU count\nours  {ours:?}\nlinux {linux:?}", c.order, c.kind);
        for (k, (a, b)) in ours.iter().zip(&linux).enumerate() {
            assert_eq!(a, b, "conn {} ({}) PDU {k}", c.order, c.kind);
        }
        assert_eq!(t.stats.protocol_errors, 0);
        compared += linux.len();
    }
    assert!(compared > 10, "{compared} PDUs compared");
}
