//! A malformed PDU from the host: the target answers with a C2HTermReq
//! carrying the Fatal Error Status and Field Error Information of NVMe/TCP
//! Transport 1.0 §3.6.2.5 and the offending header, then closes.

use super::client::{Fatal, Host};
use super::*;
use crate::net::nvmf_wire::digest::digest_bytes;
use crate::net::nvmf_wire::pdu::{self, H2cData, IcReq, Pdu, TxConfig};

/// Runs until the connection closes; checks the TermReq and the counter.
fn expect_term(t: &mut TargetModel, h: &mut Host, fes: u16, fei: u32, offending: &[u8]) {
    let before = t.stats.protocol_errors;
    h.run(t, |s| !s.may_recv());
    assert!(!h.socket().may_recv(), "the target closed the connection");
    assert_eq!(t.stats.protocol_errors, before + 1);
    match &h.fatal {
        Some(Fatal::Terminated { fes: f, fei: i, error_data }) => {
            assert_eq!((*f, *i), (fes, fei), "FES/FEI");
            let n = offending.len().min(error_data.len()).min(24);
            assert!(n >= 8 && error_data[..n] == offending[..n], "error data is the offending header: {error_data:02x?}");
        }
        other => panic!("expected a C2HTermReq, got {other:?}"),
    }
}

fn header(t: u8, flags: u8, hlen: u8, pdo: u8, plen: u32) -> Vec<u8> {
    let mut b = vec![0u8; usize::from(hlen)];
    b[..4].copy_from_slice(&[t, flags, hlen, pdo]);
    b[4..8].copy_from_slice(&plen.to_le_bytes());
    b
}

#[test]
fn header_errors_get_fes_01h_with_the_field_offset() {
    let cases = [
        // C2HData sent by a host: wrong direction, FEI 0 (PDU-Type).
        (header(0x07, 0x04, 24, 24, 32), 0),
        // An undefined PDU type.
        (header(0x42, 0, 24, 0, 24), 0),
        // CapsuleCmd with HLEN 70 (FEI 2).
        (header(0x04, 0, 70, 0, 70), 2),
        // CapsuleCmd with PLEN shorter than its header (FEI 4).
        (header(0x04, 0, 72, 0, 60), 4),
        // HDGSTF without negotiated header digests (FEI 1).
        (header(0x04, 1, 72, 0, 76), 1),
    ];
    for (i, (mut b, fei)) in cases.into_iter().enumerate() {
        let mut t = target();
        let mut h = Host::new(&mut t, 0, Digests::NONE, 40000 + i as u16);
        if b[0] == 0x07 {
            b.extend_from_slice(&[0; 8]);
        }
        h.send(&b);
        expect_term(&mut t, &mut h, 0x01, fei, &b);
    }
}

#[test]
fn sequence_errors_get_fes_02h() {
    // A command capsule before ICReq.
    let mut t = target();
    let mut h = Host::tcp(&mut t, 0, 40000);
    let mut b = Vec::new();
    pdu::emit(&Pdu::CapsuleCmd(rw(nvm_opc::READ, 1, 1, 0, 1, Sgl::Transport { len: 512 })), &[], &TxConfig::default(), &mut b).unwrap();
    h.send(&b);
    expect_term(&mut t, &mut h, 0x02, 0, &b);
    // A second ICReq.
    let mut h = Host::new(&mut t, 0, Digests::NONE, 40001);
    let mut b = Vec::new();
    pdu::emit(&Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), &[], &TxConfig::default(), &mut b).unwrap();
    h.send(&b);
    expect_term(&mut t, &mut h, 0x02, 0, &b);
}

#[test]
fn unsupported_pfv_gets_fes_06h() {
    let mut t = target();
    let mut h = Host::tcp(&mut t, 0, 40000);
    let mut b = header(0x00, 0, 128, 0, 128);
    b[8] = 1; // PFV 1
    h.send(&b);
    expect_term(&mut t, &mut h, 0x06, 8, &b);
}

#[test]
fn header_digest_error_gets_fes_03h() {
    let mut t = target();
    let mut h = Host::new(&mut t, 0, Digests::BOTH, 40000);
    let mut b = Vec::new();
    pdu::emit(&Pdu::CapsuleCmd(rw(nvm_opc::READ, 1, 1, 0, 1, Sgl::Transport { len: 512 })), &[], &TxConfig { digests: Digests::BOTH, pda: 0 }, &mut b).unwrap();
    b[72] ^= 0x80; // the header digest
    assert_ne!(&b[72..76], &digest_bytes(&b[..72]));
    h.send(&b);
    expect_term(&mut t, &mut h, 0x03, 0, &b);
}

/// H2CData outside what the target asked for (FES 04h) or above its
/// MAXH2CDATA (FES 05h).
#[test]
fn h2c_data_range_and_limit_errors() {
    // (TTAG offset from the R2T's, DATAO, data bytes, FES)
    for (i, (ttag_delta, datao, len, fes)) in [(1u16, 0u32, 4096usize, 0x04u16), (0, 4096, 4096, 0x04), (0, 0, 131_072 + 4, 0x05)].into_iter().enumerate() {
        let mut t = target();
        let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
        let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000 + i as u16);
        // A 128 KiB write (256 blocks): the target sends an R2T for all of it.
        q.submit(rw(nvm_opc::WRITE, 3, 1, 0, 256, Sgl::Transport { len: 131_072 }), &[]);
        q.run(&mut t, |_| false);
        let Some(client::Event::R2t(r)) = q.events.pop() else { panic!("no R2T: {:?}", q.events) };
        assert_eq!((r.cccid, r.r2to, r.r2tl), (3, 0, 131_072));
        let h = H2cData { cccid: 3, ttag: r.ttag.wrapping_add(ttag_delta), datao, datal: len as u32, last: true };
        let mut b = Vec::new();
        pdu::emit(&Pdu::H2cData(h), &vec![0u8; len], &TxConfig::default(), &mut b).unwrap();
        q.send(&b);
        expect_term(&mut t, &mut q, fes, 0, &b);
    }
}
