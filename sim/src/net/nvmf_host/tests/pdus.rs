//! The queue's PDU side against bytes built from the tables of NVMe/TCP
//! Transport 1.0 §3.6.2: ICReq, ICResp checks, in-capsule writes, C2HData
//! with and without SUCCESS, R2T answered with H2CData cut at
//! MAXH2CDATA, TermReqs both ways, and no panic on any input.

use crate::net::nvmf_host::queue::{DataDir, Event, Fatal, Queue};
use crate::net::nvmf_wire::commands::{nvm_opc, BlockRange};
use crate::net::nvmf_wire::pdu::{self, C2hData, Digests, Fes, IcResp, Pdu, R2t, Role, RxConfig, TermReq, TxConfig};
use crate::net::nvmf_wire::{Completion, Sgl, Status};

/// What a controller would send: `pdu` with `data`, digests as given.
fn ctrl_pdu(p: Pdu, data: &[u8], digests: Digests) -> Vec<u8> {
    let mut b = Vec::new();
    pdu::emit(&p, data, &TxConfig { digests, pda: 0 }, &mut b).unwrap();
    b
}

fn icresp(hdgst: bool, ddgst: bool, maxh2cdata: u32) -> Vec<u8> {
    ctrl_pdu(Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst, ddgst, maxh2cdata }), &[], Digests::NONE)
}

fn resp(cid: u16, status: Status) -> Pdu {
    Pdu::CapsuleResp(Completion { dw0: 0, dw1: 0, sqhd: 1, sqid: 1, cid, status })
}

/// A queue past ICResp, with its ICReq taken out of `out`.
fn ready(digests: Digests, maxh2cdata: u32) -> Queue {
    let mut q = Queue::new(1, digests, 0);
    q.out.clear();
    let ev = q.receive(&icresp(digests.header, digests.data, maxh2cdata)).unwrap();
    assert_eq!(ev, vec![Event::Established { maxh2cdata, cpda: 0 }]);
    q
}

/// Every PDU the host sent, parsed as the controller would.
fn sent(q: &mut Queue, digests: Digests) -> Vec<(Pdu, Vec<u8>)> {
    let rx = RxConfig::established(Role::Controller, digests, 0);
    let mut out = Vec::new();
    let mut off = 0;
    while let Some(r) = pdu::parse(&q.out[off..], &rx).unwrap() {
        assert_ne!(r.data_digest_ok, Some(false));
        out.push((r.pdu, r.data.to_vec()));
        off += r.len;
    }
    assert_eq!(off, q.out.len(), "whole PDUs only");
    q.out.clear();
    out
}

#[test]
fn icreq_is_128_bytes_with_pfv_0_hpda_0_and_the_digests_asked_for() {
    let q = Queue::new(0, Digests { header: true, data: false }, 3);
    let mut want = vec![0u8; 128];
    want[2] = 128; // HLEN
    want[4] = 128; // PLEN
    want[11] = 0x01; // HDGST_ENABLE
    want[12] = 3; // MAXR2T
    assert_eq!(q.out, want);
    assert!(!q.is_ready());
}

#[test]
fn icresp_must_grant_the_digests_asked_for() {
    let mut q = Queue::new(1, Digests::BOTH, 0);
    q.out.clear();
    let e = q.receive(&icresp(true, false, 8192)).unwrap_err();
    assert!(matches!(e, Fatal::Protocol(Fes::UnsupportedParameter, _)), "{e}");
    assert!(q.is_dead());
    // An H2CTermReq (type 02h) went out, FES 06h.
    assert_eq!((q.out[0], q.out[8]), (0x02, 0x06));
    // A dead queue ignores what follows.
    assert_eq!(q.receive(&icresp(true, true, 8192)), Ok(vec![]));
}

#[test]
fn in_capsule_write_and_reads_with_and_without_success() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut q = ready(digests, 8192).with_sq_flow_disabled(true);
        let w = BlockRange { slba: 8, nlb0: 7 }.to_command(nvm_opc::WRITE, 0, 1, Sgl::in_capsule(4096));
        let cid_w = q.submit(w, DataDir::WriteInCapsule, vec![0x5a; 4096]);
        let r = BlockRange { slba: 8, nlb0: 7 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 4096 });
        let cid_r = q.submit(r, DataDir::Read, vec![0; 4096]);
        assert_ne!(cid_w, cid_r);
        let p = sent(&mut q, digests);
        assert_eq!(p.len(), 2);
        assert!(matches!(&p[0], (Pdu::CapsuleCmd(c), d) if c.cid() == cid_w && c.sgl() == Some(Sgl::in_capsule(4096)) && d == &vec![0x5a; 4096]));
        assert!(matches!(&p[1], (Pdu::CapsuleCmd(c), d) if c.cid() == cid_r && c.psdt() == 1 && d.is_empty()), "SGL flag 0x40 in CDW0");
        // The read's data in two C2HData, the second with SUCCESS: no
        // CapsuleResp follows.
        let mut bytes = ctrl_pdu(resp(cid_w, Status::SUCCESS), &[], digests);
        let c2h = |datao: u32, last: bool, success: bool| Pdu::C2hData(C2hData { cccid: cid_r, datao, datal: 2048, last, success });
        bytes.extend(ctrl_pdu(c2h(0, false, false), &[1; 2048], digests));
        bytes.extend(ctrl_pdu(c2h(2048, true, true), &[2; 2048], digests));
        // Byte by byte: nothing completes before its last byte.
        let mut events = Vec::new();
        for b in &bytes {
            events.extend(q.receive(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(events.len(), 2);
        let Event::Completed(w) = &events[0] else { panic!() };
        assert_eq!((w.cid, w.completion.status, w.digest_error), (cid_w, Status::SUCCESS, false));
        let Event::Completed(r) = &events[1] else { panic!() };
        assert_eq!((r.cid, r.completion.status, &r.data[..2048], &r.data[2048..]), (cid_r, Status::SUCCESS, &[1u8; 2048][..], &[2u8; 2048][..]));
        assert_eq!((q.counts.c2h_data, q.counts.c2h_success, q.outstanding()), (2, 1, 0));
    }
}

/// SUCCESS on a queue whose Connect left SQ flow control on is a
/// protocol error: an H2CTermReq with FES 01h goes out.
#[test]
fn success_without_disabled_sq_flow_control_is_fatal() {
    let mut q = ready(Digests::NONE, 8192);
    let r = BlockRange { slba: 8, nlb0: 7 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 4096 });
    let cid = q.submit(r, DataDir::Read, vec![0; 4096]);
    let _ = sent(&mut q, Digests::NONE);
    let p = Pdu::C2hData(C2hData { cccid: cid, datao: 0, datal: 4096, last: true, success: true });
    let e = q.receive(&ctrl_pdu(p, &[3; 4096], Digests::NONE)).unwrap_err();
    assert!(matches!(e, Fatal::Protocol(Fes::InvalidPduHeaderField, _)), "{e}");
    assert!(q.is_dead());
    assert_eq!((q.out[0], q.out[8]), (0x02, 0x01));
}

#[test]
fn a_failed_status_completes_the_command_and_keeps_the_queue() {
    let mut q = ready(Digests::NONE, 8192);
    let r = BlockRange { slba: 1 << 40, nlb0: 0 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 512 });
    let cid = q.submit(r, DataDir::Read, vec![0; 512]);
    let ev = q.receive(&ctrl_pdu(resp(cid, Status::LBA_OUT_OF_RANGE), &[], Digests::NONE)).unwrap();
    let [Event::Completed(d)] = &ev[..] else { panic!("{ev:?}") };
    assert_eq!(d.completion.status, Status::LBA_OUT_OF_RANGE);
    assert!(q.is_ready() && !q.is_dead());
}

#[test]
fn r2t_is_answered_with_h2c_data_cut_at_maxh2cdata() {
    let digests = Digests { header: true, data: true };
    let mut q = ready(digests, 4096);
    let data: Vec<u8> = (0..16384u32).map(|i| (i % 253) as u8).collect();
    let w = BlockRange { slba: 0, nlb0: 31 }.to_command(nvm_opc::WRITE, 0, 1, Sgl::Transport { len: 16384 });
    let cid = q.submit(w, DataDir::WriteR2t, data.clone());
    assert!(matches!(&sent(&mut q, digests)[..], [(Pdu::CapsuleCmd(_), d)] if d.is_empty()));
    // Two R2Ts of 8 KiB each: two H2CData of 4 KiB per R2T, LAST_PDU on
    // the second of each, TTAG echoed.
    for (ttag, r2to) in [(3u16, 0u32), (4, 8192)] {
        let ev = q.receive(&ctrl_pdu(Pdu::R2t(R2t { cccid: cid, ttag, r2to, r2tl: 8192 }), &[], digests)).unwrap();
        assert!(ev.is_empty());
        let p = sent(&mut q, digests);
        assert_eq!(p.len(), 2);
        for (k, (pdu, d)) in p.iter().enumerate() {
            let Pdu::H2cData(h) = pdu else { panic!("{pdu:?}") };
            let off = r2to + 4096 * k as u32;
            assert_eq!((h.cccid, h.ttag, h.datao, h.datal, h.last), (cid, ttag, off, 4096, k == 1));
            assert_eq!(&d[..], &data[off as usize..off as usize + 4096]);
        }
    }
    assert_eq!((q.counts.r2ts, q.counts.h2c_data), (2, 4));
    // An R2T beyond the write's data is a protocol error (FES 04h).
    let e = q.receive(&ctrl_pdu(Pdu::R2t(R2t { cccid: cid, ttag: 5, r2to: 12288, r2tl: 8192 }), &[], digests)).unwrap_err();
    assert!(matches!(e, Fatal::Protocol(Fes::DataTransferOutOfRange, _)), "{e}");
    assert_eq!(q.take_outstanding(), vec![cid], "left for the model to fail");
}

#[test]
fn controller_faults_end_the_queue() {
    let d = Digests::NONE;
    // A CapsuleResp for a command nobody sent.
    let mut q = ready(d, 8192);
    let e = q.receive(&ctrl_pdu(resp(77, Status::SUCCESS), &[], d)).unwrap_err();
    assert!(matches!(e, Fatal::Protocol(Fes::PduSequenceError, _)), "{e}");
    // C2HData out of order.
    let mut q = ready(d, 8192);
    let cid = q.submit(BlockRange { slba: 0, nlb0: 7 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 4096 }), DataDir::Read, vec![0; 4096]);
    let c2h = Pdu::C2hData(C2hData { cccid: cid, datao: 2048, datal: 2048, last: true, success: false });
    assert!(matches!(q.receive(&ctrl_pdu(c2h, &[0; 2048], d)), Err(Fatal::Protocol(Fes::DataTransferOutOfRange, _))));
    // A successful CapsuleResp before the read's data.
    let mut q = ready(d, 8192);
    let cid = q.submit(BlockRange { slba: 0, nlb0: 7 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 4096 }), DataDir::Read, vec![0; 4096]);
    assert!(q.receive(&ctrl_pdu(resp(cid, Status::SUCCESS), &[], d)).is_err());
    // A C2HTermReq: no H2CTermReq answers it.
    let mut q = ready(d, 8192);
    let e = q.receive(&ctrl_pdu(Pdu::C2hTermReq(TermReq { fes: 1, fei: 2 }), &[0; 8], d)).unwrap_err();
    assert_eq!(e, Fatal::Terminated { fes: 1, fei: 2 });
    assert!(q.out.is_empty());
    // A header digest error: H2CTermReq FES 03h.
    let dg = Digests::BOTH;
    let mut q = ready(dg, 8192);
    let mut b = ctrl_pdu(resp(1, Status::SUCCESS), &[], dg);
    b[10] ^= 1;
    assert!(matches!(q.receive(&b), Err(Fatal::Malformed(_))));
    assert_eq!((q.out[0], q.out[8]), (0x02, 0x03));
    // A bad data digest on C2HData fails the command, not the queue.
    let mut q = ready(dg, 8192);
    let cid = q.submit(BlockRange { slba: 0, nlb0: 0 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 512 }), DataDir::Read, vec![0; 512]);
    let mut b = ctrl_pdu(Pdu::C2hData(C2hData { cccid: cid, datao: 0, datal: 512, last: true, success: false }), &[9; 512], dg);
    let n = b.len();
    b[n - 1] ^= 0xff;
    b.extend(ctrl_pdu(resp(cid, Status::SUCCESS), &[], dg));
    let ev = q.receive(&b).unwrap();
    assert!(matches!(&ev[..], [Event::Completed(done)] if done.digest_error));
    assert_eq!(q.counts.digest_errors, 1);
}

/// Random bytes after ICResp: an error or events, never a panic.
#[test]
fn random_input_never_panics() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..3000 {
        let mut q = ready(if round % 2 == 0 { Digests::NONE } else { Digests::BOTH }, 4096);
        q.submit(BlockRange { slba: 0, nlb0: 7 }.to_command(nvm_opc::READ, 0, 1, Sgl::Transport { len: 4096 }), DataDir::Read, vec![0; 4096]);
        q.submit(BlockRange { slba: 0, nlb0: 7 }.to_command(nvm_opc::WRITE, 0, 1, Sgl::Transport { len: 4096 }), DataDir::WriteR2t, vec![1; 4096]);
        let n = (x % 300) as usize;
        let mut b: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        if n >= 24 {
            b[0] = [0x01, 0x03, 0x05, 0x07, 0x09][(x % 5) as usize];
            b[2] = 24;
            b[4..8].copy_from_slice(&((x >> 20) as u32 % 300).to_le_bytes());
            b[8] = (x >> 40) as u8 % 3;
        }
        let _ = q.receive(&b);
    }
}

#[test]
fn injected_faults_malformed_capsule_and_bad_data_digest() {
    // A CapsuleCmd claiming HLEN 16: the controller's parser rejects it
    // as a bad HLEN (FES Invalid Header Field).
    let mut q = ready(Digests::NONE, 8192);
    q.send_malformed();
    let rx = RxConfig::established(Role::Controller, Digests::NONE, 0);
    let e = pdu::parse(&q.out, &rx).map(|_| ()).unwrap_err();
    assert!(matches!(e, pdu::PduError::BadHlen { hlen: 16, .. }), "{e:?}");
    assert_eq!(e.fes(), Fes::InvalidPduHeaderField);
    // The next in-capsule write (only it) goes with a wrong data digest.
    let mut q = ready(Digests::BOTH, 8192);
    q.corrupt_next_ddgst = true;
    let w = || BlockRange { slba: 0, nlb0: 7 }.to_command(nvm_opc::WRITE, 0, 1, Sgl::in_capsule(4096));
    q.submit(w(), DataDir::WriteInCapsule, vec![7; 4096]);
    let rx = RxConfig::established(Role::Controller, Digests::BOTH, 0);
    let r = pdu::parse(&q.out, &rx).unwrap().unwrap();
    assert_eq!(r.data_digest_ok, Some(false));
    assert!(!q.corrupt_next_ddgst);
    q.out.clear();
    q.submit(w(), DataDir::WriteInCapsule, vec![7; 4096]);
    assert_eq!(pdu::parse(&q.out, &rx).unwrap().unwrap().data_digest_ok, Some(true));
}
