//! The target model driven by a scripted NVMe/TCP host built on the
//! simulator's own wire code (`client.rs`): association setup, Identify,
//! reads, writes in the capsule and through R2T/H2CData, Compare, Dataset
//! Management, digests, the discovery log, malformed PDUs, restarts, TCP
//! tail loss, and the stall and slow-media faults.

mod client;
mod faults;
mod linux_shape;
mod malformed;

use super::*;
use crate::net::nvmf_wire::commands::{cns, nvm_opc, BlockRange, Dsm, DsmRange, GetLogPage, Identify};
use crate::net::nvmf_wire::discovery;
use crate::net::nvmf_wire::fabrics::{property, PropertyCommand, DISCOVERY_NQN};
use crate::net::nvmf_wire::identify::{ControllerIdentity, NamespaceIdentity};
use crate::net::nvmf_wire::pdu::Digests;
use crate::net::nvmf_wire::{Sgl, Status};
use client::{accepted, Host};

const NQN: &str = "nqn.2026-11.io.dpusim:test";
const CLOCK: u64 = 1_000_000_000;

fn params() -> TargetParams {
    TargetParams {
        name: "t0".into(),
        ip: Ipv4Addr::new(10, 0, 0, 10),
        prefix: 24,
        mac: [2, 0x7a, 0, 0, 1, 1],
        port: 4420,
        nqn: NQN.into(),
        namespaces: vec![(1 << 20, 512), (1 << 20, 4096)],
        patterned: Vec::new(),
        at_rest_keys: Vec::new(),
        latency: 5_000,
        max_queues: 4,
        inline_data: 4096,
        mtu: 1500,
        speed_gbps: 100,
        min_rto_ms: 5,
        sq_flow_disable: true,
    }
}

fn target() -> TargetModel {
    TargetModel::new(params(), CLOCK)
}

/// Admin queue connected to the NVM subsystem, CC.EN set, CSTS.RDY seen.
fn admin_session(t: &mut TargetModel, digests: Digests) -> (Host, u16) {
    let port = 40100 + t.stats.connections as u16;
    let mut a = Host::new(t, 0, digests, port);
    let c = a.connect(t, NQN, 0xffff);
    let Some(cntlid) = accepted(&c) else { panic!("admin connect refused: {c:?}") };
    let set = PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: 0x46_0001 };
    assert!(a.cmd(t, set.to_command(1), &[]).status.is_success());
    let c = a.cmd(t, PropertyCommand::Get { eight_bytes: false, offset: property::CSTS }.to_command(2), &[]);
    assert!(c.status.is_success() && c.dw0 & 1 == 1, "CSTS.RDY after CC.EN");
    (a, cntlid)
}

/// An I/O queue `qid` of controller `cntlid`.
fn io_queue(t: &mut TargetModel, cntlid: u16, qid: u16, digests: Digests, port: u16) -> Host {
    let mut q = Host::new(t, qid, digests, port);
    let c = q.connect(t, NQN, cntlid);
    assert_eq!(accepted(&c), Some(cntlid), "{c:?}");
    q
}

fn rw(op: u8, cid: u16, nsid: u32, slba: u64, blocks: u16, sgl: Sgl) -> crate::net::nvmf_wire::Command {
    BlockRange { slba, nlb0: blocks - 1 }.to_command(op, cid, nsid, sgl)
}

#[test]
fn connect_queue_sizes_are_checked() {
    // Found by the sim_target fuzz target: an admin Connect with SQSIZE
    // 0xffff overflowed the SQ head computation on the next command.
    let mut t = target();
    let mut a = Host::new(&mut t, 0, Digests::NONE, 40200);
    let c = a.connect_sqsize(&mut t, NQN, 0xffff, 0xffff);
    let Some(cntlid) = accepted(&c) else { panic!("admin connect refused: {c:?}") };
    let set = PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: 0x46_0001 };
    let c = a.cmd(&mut t, set.to_command(1), &[]);
    assert!(c.status.is_success(), "{c:?}");
    // Like Linux nvmet: Connect Invalid Parameters, IPO = SQSIZE (SQE byte 44).
    let refused = |c: &crate::net::nvmf_wire::Completion| c.status == Status::CONNECT_INVALID_PARAMETERS && c.dw0 == 44;
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50200);
    let c = q.connect_sqsize(&mut t, NQN, cntlid, 128);
    assert!(refused(&c), "beyond CAP.MQES (127): {c:?}");
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50201);
    let c = q.connect_sqsize(&mut t, NQN, cntlid, 0);
    assert!(refused(&c), "a queue of one entry: {c:?}");
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50202);
    let c = q.connect_sqsize(&mut t, NQN, cntlid, 127);
    assert_eq!(accepted(&c), Some(cntlid), "{c:?}");
    assert_eq!(t.stats.protocol_errors, 0);
}

#[test]
fn admin_connect_identify_and_io_round_trip() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut t = target();
        let (mut a, cntlid) = admin_session(&mut t, digests);
        let c = a.cmd(&mut t, Identify { cns: cns::CONTROLLER, cntid: 0, nsid: 0 }.to_command(3), &[]);
        assert!(c.status.is_success());
        let id = ControllerIdentity::parse(&a.data[&3]).expect("4096 bytes");
        assert_eq!((id.cntlid, id.mdts, id.ioccsz, id.subnqn.as_str()), (cntlid, 5, (64 + 4096) / 16, NQN));
        assert_eq!((id.nn, id.cntrltype, id.sqes, id.cqes), (2, 1, 0x66, 0x44));
        let c = a.cmd(&mut t, Identify { cns: cns::NAMESPACE, cntid: 0, nsid: 2 }.to_command(4), &[]);
        assert!(c.status.is_success());
        let ns = NamespaceIdentity::parse(&a.data[&4]).unwrap();
        assert_eq!((ns.nsze, ns.lbads), (256, 12), "1 MiB of 4 KiB blocks");

        let mut q = io_queue(&mut t, cntlid, 1, digests, 50000);
        // 8 KiB written through R2T/H2CData, 4 KiB in the capsule.
        let big: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        q.data.insert(5, big.clone());
        let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 5, 1, 16, 16, Sgl::Transport { len: 8192 }), &[]);
        assert!(c.status.is_success(), "{c:?}");
        let small = vec![0xa5u8; 4096];
        let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 6, 1, 32, 8, Sgl::in_capsule(4096)), &small);
        assert!(c.status.is_success());
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 7, 1, 16, 24, Sgl::Transport { len: 12288 }), &[]);
        assert!(c.status.is_success());
        assert_eq!(&q.data[&7][..8192], &big[..]);
        assert_eq!(&q.data[&7][8192..], &small[..]);
        // Out of range and bad namespace come back as NVMe statuses.
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 8, 1, 2047, 2, Sgl::Transport { len: 1024 }), &[]);
        assert_eq!(c.status, Status::LBA_OUT_OF_RANGE);
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 8, 9, 0, 1, Sgl::Transport { len: 512 }), &[]);
        assert_eq!(c.status, Status::INVALID_NAMESPACE);
        // A read whose SGL length is not the blocks' size.
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 8, 1, 0, 2, Sgl::Transport { len: 512 }), &[]);
        assert_eq!(c.status, Status::DATA_SGL_LENGTH_INVALID);
        assert_eq!(t.stats.protocol_errors, 0);
        assert!(t.stats.reads >= 1 && t.stats.writes >= 2);

        // Compare: a match in the capsule, a mismatch through R2T.
        let c = q.cmd(&mut t, rw(nvm_opc::COMPARE, 9, 1, 32, 8, Sgl::in_capsule(4096)), &small);
        assert!(c.status.is_success(), "{c:?}");
        let mut other = big.clone();
        other[5000] ^= 1;
        q.data.insert(10, other);
        let c = q.cmd(&mut t, rw(nvm_opc::COMPARE, 10, 1, 16, 16, Sgl::Transport { len: 8192 }), &[]);
        assert_eq!(c.status, Status::COMPARE_FAILURE);
        // DSM deallocate of LBAs 20..24 and 32..40: they read as zeroes;
        // a range past the end fails the whole command.
        let range = |slba: u64, blocks: u32| DsmRange { attributes: 0, blocks, slba }.to_bytes();
        let list: Vec<u8> = [range(20, 4), range(32, 8)].concat();
        let c = q.cmd(&mut t, Dsm { nr0: 1, deallocate: true }.to_command(11, 1, Sgl::in_capsule(32)), &list);
        assert!(c.status.is_success(), "{c:?}");
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 12, 1, 16, 24, Sgl::Transport { len: 12288 }), &[]);
        assert!(c.status.is_success());
        let d = &q.data[&12];
        assert_eq!(&d[..4 * 512], &big[..4 * 512]);
        assert!(d[4 * 512..8 * 512].iter().all(|&b| b == 0), "LBAs 20..24 deallocated");
        assert_eq!(&d[8 * 512..16 * 512], &big[8 * 512..]);
        assert!(d[16 * 512..].iter().all(|&b| b == 0), "LBAs 32..40 deallocated");
        let c = q.cmd(&mut t, Dsm { nr0: 0, deallocate: true }.to_command(13, 1, Sgl::in_capsule(16)), &range(2047, 2));
        assert_eq!(c.status, Status::LBA_OUT_OF_RANGE);
        assert_eq!(t.stats.protocol_errors, 0);
        // With digests, every PDU the target sent carried them (flags
        // and a matching digest were checked by the parser).
        let flags: Vec<u8> = q.received.iter().filter(|p| p[0] == 0x05 || p[0] == 0x07).map(|p| p[1] & 3).collect();
        assert!(!flags.is_empty());
        assert!(flags.iter().all(|&f| f & 1 == u8::from(digests.header)), "{flags:?}");
    }
}

#[test]
fn a_data_digest_error_fails_only_the_command() {
    let mut t = target();
    let (_a, cntlid) = admin_session(&mut t, Digests::BOTH);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::BOTH, 50000);
    // An in-capsule write whose data digest is wrong.
    let sqe = rw(nvm_opc::WRITE, 1, 1, 0, 1, Sgl::in_capsule(512));
    let mut b = Vec::new();
    crate::net::nvmf_wire::pdu::emit(&crate::net::nvmf_wire::pdu::Pdu::CapsuleCmd(sqe), &[0x11; 512], &crate::net::nvmf_wire::pdu::TxConfig { digests: Digests::BOTH, pda: 0 }, &mut b).unwrap();
    let n = b.len();
    b[n - 1] ^= 0xff;
    q.send(&b);
    let c = q.wait(&mut t, 1);
    assert_eq!(c.status, Status::TRANSIENT_TRANSPORT_ERROR);
    assert!(!c.status.dnr, "may be retried");
    assert_eq!((t.stats.digest_errors, t.stats.protocol_errors), (1, 0));
    // The connection stays: the retry succeeds and nothing was written before.
    let c = q.cmd(&mut t, rw(nvm_opc::READ, 2, 1, 0, 1, Sgl::Transport { len: 512 }), &[]);
    assert!(c.status.is_success() && q.data[&2] == vec![0; 512]);
    let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 1, 1, 0, 1, Sgl::in_capsule(512)), &[0x11; 512]);
    assert!(c.status.is_success());
}

/// A queue whose Connect set CATTR bit 2 (SQ flow control disabled) gets
/// a successful read's data in one C2HData flagged LAST_PDU|SUCCESS and
/// no CapsuleResp (NVMe/TCP 1.0 §3.6.2.8, as Linux nvmet-tcp sends it);
/// errors and writes still get a CapsuleResp, CQEs carry SQHD 0, and the
/// Connect response SQHD FFFFh. A queue without the bit never sees SUCCESS.
#[test]
fn disabled_sq_flow_control_ends_reads_with_success_data() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut t = target();
        let (_a, cntlid) = admin_session(&mut t, digests);
        let mut q = Host::new(&mut t, 1, digests, 50000);
        q.cattr = 4;
        let c = q.connect(&mut t, NQN, cntlid);
        assert_eq!((accepted(&c), c.sqhd), (Some(cntlid), 0xffff), "{c:?}");
        let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 1, 1, 8, 8, Sgl::in_capsule(4096)), &[0x5a; 4096]);
        assert_eq!((c.status, c.sqhd), (Status::SUCCESS, 0), "a write still gets its CapsuleResp, no SQHD");
        let resps_before = q.received.iter().filter(|p| p[0] == 0x05).count();
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 2, 1, 8, 8, Sgl::Transport { len: 4096 }), &[]);
        assert!(c.status.is_success());
        assert_eq!(q.data[&2], vec![0x5a; 4096]);
        let last = q.received.last().unwrap();
        assert_eq!((last[0], last[1] & 0x0c), (0x07, 0x0c), "C2HData with LAST_PDU|SUCCESS");
        // An error read gets a CapsuleResp; nothing else came.
        let c = q.cmd(&mut t, rw(nvm_opc::READ, 3, 1, 2047, 2, Sgl::Transport { len: 1024 }), &[]);
        assert_eq!(c.status, Status::LBA_OUT_OF_RANGE);
        assert_eq!(q.received.iter().filter(|p| p[0] == 0x05).count(), resps_before + 1, "one CapsuleResp: the error's");
        assert!(q.fatal.is_none() && t.stats.protocol_errors == 0);

        // Without the bit the same read is C2HData (no SUCCESS) + CapsuleResp.
        let mut p = io_queue(&mut t, cntlid, 2, digests, 50001);
        let c = p.cmd(&mut t, rw(nvm_opc::READ, 2, 1, 8, 8, Sgl::Transport { len: 4096 }), &[]);
        assert!(c.status.is_success() && c.sqhd != 0 && p.data[&2] == vec![0x5a; 4096], "{c:?}");
        let n = p.received.len();
        assert_eq!((p.received[n - 2][0], p.received[n - 2][1] & 0x0c, p.received[n - 1][0]), (0x07, 0x04, 0x05));
    }
    // The admin queue honours it too (Linux sets the bit on every queue
    // of a `--disable-sqflow` association): Identify data ends the command.
    let mut t = target();
    let mut a = Host::new(&mut t, 0, Digests::NONE, 40000);
    a.cattr = 4;
    let Some(_) = accepted(&a.connect(&mut t, NQN, 0xffff)) else { panic!("admin connect refused") };
    let set = PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: 0x46_0001 };
    assert!(a.cmd(&mut t, set.to_command(1), &[]).status.is_success());
    let c = a.cmd(&mut t, Identify { cns: cns::CONTROLLER, cntid: 0, nsid: 0 }.to_command(3), &[]);
    assert!(c.status.is_success() && a.data[&3].len() == 4096, "{c:?}");
    assert_eq!(a.received.last().unwrap()[1] & 0x0c, 0x0c);
}

/// A target configured without the feature refuses a Connect that
/// disables SQ flow control (Connect Invalid Parameters, IPO = CATTR,
/// SQE byte 46) and accepts the same Connect without the bit.
#[test]
fn a_target_without_the_feature_refuses_disabled_sq_flow_control() {
    let mut t = TargetModel::new(TargetParams { sq_flow_disable: false, ..params() }, CLOCK);
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50000);
    q.cattr = 4;
    let c = q.connect(&mut t, NQN, cntlid);
    assert_eq!((c.status, c.dw0), (Status::CONNECT_INVALID_PARAMETERS, 46), "{c:?}");
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50001);
    let c = q.cmd(&mut t, rw(nvm_opc::READ, 2, 1, 8, 8, Sgl::Transport { len: 4096 }), &[]);
    assert!(c.status.is_success() && q.data[&2].len() == 4096);
    assert_eq!(q.received.last().unwrap()[0], 0x05, "a CapsuleResp ends the read");
}

#[test]
fn connects_are_checked() {
    let mut t = target();
    let mut a = Host::new(&mut t, 0, Digests::NONE, 40000);
    let c = a.connect(&mut t, "nqn.2026-11.io.dpusim:other", 0xffff);
    assert_eq!(c.status, Status::CONNECT_INVALID_PARAMETERS);
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    // I/O queue for a controller that does not exist, or beyond the limit.
    let mut q = Host::new(&mut t, 1, Digests::NONE, 50001);
    assert_eq!(accepted(&q.connect(&mut t, NQN, cntlid + 7)), None);
    let mut q = Host::new(&mut t, 9, Digests::NONE, 50002);
    assert_eq!(accepted(&q.connect(&mut t, NQN, cntlid)), None, "qid 9 > max_queues 4");
}

/// The discovery controller's log page, read the way Linux reads it
/// (header first, then the whole log), has the entry at the offsets of
/// the spec: SUBNQN at bytes 511:256, TRADDR at 767:512.
#[test]
fn discovery_log_lists_the_subsystem() {
    let mut t = target();
    let mut d = Host::new(&mut t, 0, Digests::NONE, 40000);
    assert!(accepted(&d.connect(&mut t, DISCOVERY_NQN, 0xffff)).is_some());
    let set = PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: 1 };
    assert!(d.cmd(&mut t, set.to_command(1), &[]).status.is_success());
    let c = d.cmd(&mut t, Identify { cns: cns::CONTROLLER, cntid: 0, nsid: 0 }.to_command(2), &[]);
    assert!(c.status.is_success());
    let id = ControllerIdentity::parse(&d.data[&2]).unwrap();
    assert_eq!((id.cntrltype, id.nn, id.subnqn.as_str()), (2, 0, DISCOVERY_NQN));
    let c = d.cmd(&mut t, GetLogPage::new(discovery::LID_DISCOVERY, 0, 1024).to_command(3), &[]);
    assert!(c.status.is_success());
    let h = discovery::LogHeader::parse(&d.data[&3]).unwrap();
    assert_eq!((h.numrec, h.recfmt), (1, 0));
    let c = d.cmd(&mut t, GetLogPage::new(discovery::LID_DISCOVERY, 0, 2048).to_command(4), &[]);
    assert!(c.status.is_success());
    let log = &d.data[&4];
    assert_eq!(&log[1024 + 256..1024 + 256 + NQN.len()], NQN.as_bytes(), "SUBNQN at 256");
    assert_eq!(&log[1024 + 512..1024 + 521], b"10.0.0.10", "TRADDR at 512");
    assert_eq!(&log[1024 + 32..1024 + 36], b"4420");
    let (_, entries) = discovery::entries(log).unwrap();
    assert_eq!((entries[0].trtype(), entries[0].adrfam(), entries[0].subtype()), (3, 1, 2));
    assert_eq!((entries[0].subnqn(), entries[0].traddr()), (Some(NQN), Some("10.0.0.10")));
    // Not offered on an NVM controller.
    let (mut a, _) = admin_session(&mut t, Digests::NONE);
    let c = a.cmd(&mut t, GetLogPage::new(discovery::LID_DISCOVERY, 0, 1024).to_command(5), &[]);
    assert_eq!(c.status, Status::INVALID_LOG_PAGE);
}

#[test]
fn restart_drops_connections_and_keeps_data() {
    let mut t = target();
    let (mut a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000);
    let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 1, 1, 0, 1, Sgl::in_capsule(512)), &[0x5a; 512]);
    assert!(c.status.is_success());
    let now = t.last_poll;
    t.restart(now, now + 1_000_000);
    let rst = t.poll(now);
    a.dev.rx.extend(rst);
    a.run(&mut t, |s| !s.is_active());
    assert!(!a.socket().is_active(), "reset by the restart");
    assert_eq!(t.subsystem.ctrls.len(), 0);
    assert_eq!(t.stats.restarts, 1);
    // After it is back, a new association reads the acknowledged data.
    t.last_poll = now + 2_000_000;
    let (_a2, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50010);
    let c = q.cmd(&mut t, rw(nvm_opc::READ, 2, 1, 0, 1, Sgl::Transport { len: 512 }), &[]);
    assert!(c.status.is_success());
    assert_eq!(q.data[&2], vec![0x5a; 512]);
}

/// A host that closes a queue (FIN: Linux's teardown, or the card
/// before a firmware activation) gets the target's FIN back, as Linux's
/// nvmet_tcp releases a queue whose socket reads EOF: the I/O queue goes
/// from its controller, then the admin queue takes the controller down.
/// Before, the model stayed in CLOSE-WAIT and kept the controller until
/// its keep-alive timer expired.
#[test]
fn a_host_fin_closes_the_queue_and_the_admin_queue_the_controller() {
    let mut t = target();
    let (mut a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50020);
    q.close();
    // Until nothing moves (the target takes the last ACK too).
    q.run(&mut t, |_| false);
    assert_eq!(q.socket().state(), tcp::State::TimeWait, "the target answered the FIN with its own");
    assert_eq!(t.subsystem.ctrls[&cntlid].queues, Vec::<u16>::new(), "I/O queue 1 released");
    assert_eq!(t.stats.closed_by_host, 1);
    a.close();
    a.run(&mut t, |_| false);
    assert_eq!(a.socket().state(), tcp::State::TimeWait);
    assert!(t.subsystem.ctrls.is_empty(), "the admin queue's close ended the controller");
    assert_eq!((t.stats.closed_by_host, t.stats.keep_alive_expired), (2, 0));
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
