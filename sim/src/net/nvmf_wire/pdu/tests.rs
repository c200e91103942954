//! PDUs built byte by byte from the tables of NVMe/TCP Transport 1.0
//! §3.6.2, parsed and emitted; every malformation with its FES/FEI; and
//! no input, cut anywhere or random, makes the parser panic.

use super::*;
use crate::net::nvmf_wire::sgl::Sgl;
use crate::net::nvmf_wire::status::Status;

const HOST_RX: RxConfig = RxConfig { role: Role::Host, ic_done: true, digests: Digests::NONE, pda: 0 };
const CTRL_RX: RxConfig = RxConfig { role: Role::Controller, ic_done: true, digests: Digests::NONE, pda: 0 };

fn with_digests(mut c: RxConfig, d: Digests) -> RxConfig {
    c.digests = d;
    c
}

/// An ICReq as Linux `nvme_tcp_init_connection` sends it with both
/// digests: 128 bytes, PFV 0, HPDA 0, DGST 03h, MAXR2T 0.
fn linux_icreq() -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b[2] = 128; // HLEN
    b[4] = 128; // PLEN
    b[11] = 0x03;
    b
}

#[test]
fn icreq_and_icresp_fields() {
    let b = linux_icreq();
    let r = parse(&b, &RxConfig::awaiting_ic(Role::Controller)).unwrap().unwrap();
    assert_eq!(r.pdu, Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 }));
    assert_eq!((r.len, r.data.len(), r.data_digest_ok), (128, 0, None));
    // ICResp: CPDA 0, both digests, MAXH2CDATA 128 KiB (bytes 15:12).
    let mut out = Vec::new();
    let resp = Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: true, ddgst: true, maxh2cdata: 131_072 });
    emit(&resp, &[], &TxConfig { digests: Digests::BOTH, pda: 0 }, &mut out).unwrap();
    let mut want = vec![0u8; 128];
    want[0] = 0x01;
    want[2] = 128;
    want[4] = 128;
    want[11] = 0x03;
    want[12..16].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]);
    assert_eq!(out, want, "no digest on IC PDUs even when negotiated");
    assert_eq!(parse(&out, &RxConfig::awaiting_ic(Role::Host)).unwrap().unwrap().pdu, resp);
}

#[test]
fn capsule_with_digests_and_in_capsule_data() {
    // Write, CID 5, 512 bytes in the capsule, HDGST and DDGST.
    let mut sqe = Command::new(0x01, 5);
    sqe.set_nsid(1);
    sqe.set_sgl(Sgl::in_capsule(512));
    let data: Vec<u8> = (0..512u32).map(|i| i as u8).collect();
    let mut b = vec![0u8; 72];
    b[0] = 0x04;
    b[1] = 0x03; // HDGSTF | DDGSTF
    b[2] = 72;
    b[3] = 76; // PDO: right after the header digest
    b[4..8].copy_from_slice(&(76u32 + 512 + 4).to_le_bytes());
    b[8..72].copy_from_slice(&sqe.0);
    let hd = crate::net::nvmf_wire::digest::digest_bytes(&b[..72]);
    b.extend_from_slice(&hd);
    b.extend_from_slice(&data);
    b.extend_from_slice(&crate::net::nvmf_wire::digest::digest_bytes(&data));
    let rx = with_digests(CTRL_RX, Digests::BOTH);
    let r = parse(&b, &rx).unwrap().unwrap();
    assert_eq!(r.pdu, Pdu::CapsuleCmd(sqe));
    assert_eq!((r.len, r.data, r.data_digest_ok), (b.len(), &data[..], Some(true)));
    // The same bytes come out of emit.
    let mut out = Vec::new();
    emit(&Pdu::CapsuleCmd(sqe), &data, &TxConfig { digests: Digests::BOTH, pda: 0 }, &mut out).unwrap();
    assert_eq!(out, b);
    // A flipped data bit: the PDU parses, the data digest does not match.
    let mut bad = b.clone();
    bad[100] ^= 1;
    assert_eq!(parse(&bad, &rx).unwrap().unwrap().data_digest_ok, Some(false));
    // A flipped header bit: header digest error (FES 03h).
    let mut bad = b.clone();
    bad[20] ^= 1;
    let e = parse(&bad, &rx).unwrap_err();
    assert_eq!((e, e.fes(), e.fei()), (PduError::HeaderDigest, Fes::HeaderDigestError, 0));
}

#[test]
fn capsule_resp_c2h_data_and_r2t() {
    // CapsuleResp: CID 7, SQHD 3, success.
    let mut b = vec![0u8; 24];
    b[0] = 0x05;
    b[2] = 24;
    b[4] = 24;
    b[16] = 3; // SQHD (CQE byte 8)
    b[20] = 7; // CID (CQE byte 12)
    let r = parse(&b, &HOST_RX).unwrap().unwrap();
    assert_eq!(r.pdu, Pdu::CapsuleResp(Completion { dw0: 0, dw1: 0, sqhd: 3, sqid: 0, cid: 7, status: Status::SUCCESS }));
    // C2HData, CCCID 7, DATAO 4096, DATAL 8, LAST_PDU|SUCCESS, aligned to
    // HPDA 7 (32 bytes): PDO 32, 8 bytes of padding.
    let mut b = vec![0u8; 32];
    b[0] = 0x07;
    b[1] = 0x0c;
    b[2] = 24;
    b[3] = 32;
    b[4] = 40;
    b[8] = 7;
    b[12..16].copy_from_slice(&4096u32.to_le_bytes());
    b[16] = 8;
    b.extend_from_slice(b"abcdefgh");
    let rx = RxConfig { pda: 7, ..HOST_RX };
    let r = parse(&b, &rx).unwrap().unwrap();
    let c2h = C2hData { cccid: 7, datao: 4096, datal: 8, last: true, success: true };
    assert_eq!((r.pdu, r.data), (Pdu::C2hData(c2h), &b"abcdefgh"[..]));
    assert!(c2h.check(4104).is_ok());
    assert_eq!(c2h.check(4103).unwrap_err().fes(), Fes::DataTransferOutOfRange);
    let mut out = Vec::new();
    emit(&Pdu::C2hData(c2h), b"abcdefgh", &TxConfig { digests: Digests::NONE, pda: 7 }, &mut out).unwrap();
    assert_eq!(out, b);
    // PDO 28 is not a multiple of the 32 bytes asked for.
    let mut mis = b.clone();
    mis[3] = 28;
    mis[4] = 36;
    mis.drain(28..32);
    assert_eq!(parse(&mis, &rx).unwrap_err(), PduError::BadPdo(28));
    // R2T: CCCID 7, TTAG 2, R2TO 0, R2TL 8192.
    let mut b = vec![0u8; 24];
    b[0] = 0x09;
    b[2] = 24;
    b[4] = 24;
    b[8] = 7;
    b[10] = 2;
    b[16..20].copy_from_slice(&8192u32.to_le_bytes());
    assert_eq!(parse(&b, &HOST_RX).unwrap().unwrap().pdu, Pdu::R2t(R2t { cccid: 7, ttag: 2, r2to: 0, r2tl: 8192 }));
    b[16..20].fill(0);
    let e = parse(&b, &HOST_RX).unwrap_err();
    assert_eq!((e, e.fes(), e.fei()), (PduError::ZeroR2tl, Fes::InvalidPduHeaderField, 16));
}

#[test]
fn h2c_data_limits_and_term_req() {
    let d = H2cData { cccid: 1, ttag: 9, datao: 4096, datal: 4096, last: true };
    let mut out = Vec::new();
    emit(&Pdu::H2cData(d), &[0x5a; 4096], &TxConfig::default(), &mut out).unwrap();
    assert_eq!(&out[..8], &[0x06, 0x04, 24, 24, 0x18, 0x10, 0, 0], "LAST_PDU, PDO 24, PLEN 4120");
    assert_eq!(&out[8..20], &[1, 0, 9, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0]);
    let r = parse(&out, &CTRL_RX).unwrap().unwrap();
    assert_eq!(r.pdu, Pdu::H2cData(d));
    assert!(d.check(8192, 4096, 4096).is_ok());
    assert_eq!(d.check(2048, 0, 1 << 20).unwrap_err().fes(), Fes::DataTransferLimitExceeded);
    assert_eq!(d.check(1 << 20, 8192, 4096).unwrap_err().fes(), Fes::DataTransferOutOfRange);
    // C2HTermReq: FES 01h, FEI 2 (HLEN), 24 bytes of the offending header.
    let offending = [0x05u8, 0, 20, 0, 24, 0, 0, 0];
    let (t, err_data) = term_req_for(&PduError::BadHlen { pdu_type: PduType::CapsuleResp, hlen: 20 }, &offending);
    let mut out = Vec::new();
    emit(&Pdu::C2hTermReq(t), &err_data, &TxConfig { digests: Digests::BOTH, pda: 3 }, &mut out).unwrap();
    let mut want = vec![0x03, 0, 24, 0, 32, 0, 0, 0, 0x01, 0, 0x02, 0, 0, 0];
    want.resize(24, 0);
    want.extend_from_slice(&offending);
    assert_eq!(out, want, "no digests, no padding on a TermReq");
    let r = parse(&out, &RxConfig::awaiting_ic(Role::Host)).unwrap().unwrap();
    assert_eq!((r.pdu, r.data), (Pdu::C2hTermReq(TermReq { fes: 1, fei: 2 }), &offending[..]));
}

/// Each malformed header with the FES and FEI the receiver reports.
#[test]
fn malformed_headers_map_to_fes() {
    let hdr = |t: u8, flags: u8, hlen: u8, pdo: u8, plen: u32| {
        let mut b = vec![0u8; usize::from(hlen).max(8)];
        b[..4].copy_from_slice(&[t, flags, hlen, pdo]);
        b[4..8].copy_from_slice(&plen.to_le_bytes());
        b
    };
    let cases: [(Vec<u8>, RxConfig, PduError, u16, u32); 12] = [
        (hdr(0x42, 0, 24, 0, 24), CTRL_RX, PduError::UnknownType(0x42), 1, 0),
        (hdr(0x07, 0, 24, 24, 32), CTRL_RX, PduError::WrongDirection(PduType::C2hData), 1, 0),
        (hdr(0x04, 0, 72, 0, 72), RxConfig::awaiting_ic(Role::Controller), PduError::BeforeIc(PduType::CapsuleCmd), 2, 0),
        (linux_icreq(), CTRL_RX, PduError::RepeatedIc(PduType::IcReq), 2, 0),
        (hdr(0x05, 0, 20, 0, 24), HOST_RX, PduError::BadHlen { pdu_type: PduType::CapsuleResp, hlen: 20 }, 1, 2),
        (hdr(0x05, 0, 24, 0, 16), HOST_RX, PduError::BadPlen(16), 1, 4),
        (hdr(0x05, 1, 24, 0, 28), HOST_RX, PduError::HeaderDigestFlag, 1, 1),
        (hdr(0x07, 0x08, 24, 24, 32), HOST_RX, PduError::SuccessWithoutLast, 1, 1),
        (hdr(0x07, 0x04, 24, 0, 24), HOST_RX, PduError::NoData, 1, 4),
        (hdr(0x06, 0, 24, 8, 32), CTRL_RX, PduError::BadPdo(8), 1, 3),
        (hdr(0x06, 0x02, 24, 24, 32), CTRL_RX, PduError::DataDigestFlag, 1, 1),
        (hdr(0x03, 0, 24, 0, 200), HOST_RX, PduError::BadPlen(200), 1, 4),
    ];
    for (b, cfg, want, fes, fei) in cases {
        let e = parse(&b, &cfg).unwrap_err();
        assert_eq!((e, e.fes().code(), e.fei()), (want, fes, fei), "{b:02x?}");
    }
    // DATAL other than the data carried (FEI 16), PFV 1 (FES 06h, FEI 8).
    let mut b = hdr(0x06, 0, 24, 24, 32);
    b[16] = 9;
    b.resize(32, 0);
    let e = parse(&b, &CTRL_RX).unwrap_err();
    assert_eq!((e, e.fes().code(), e.fei()), (PduError::DatalMismatch { datal: 9, carried: 8 }, 1, 16));
    let mut b = linux_icreq();
    b[8] = 1;
    let e = parse(&b, &RxConfig::awaiting_ic(Role::Controller)).unwrap_err();
    assert_eq!((e.fes(), e.fei()), (Fes::UnsupportedParameter, 8));
}

/// Every prefix of valid PDUs is "need more", and random bytes give an
/// error or a PDU, never a panic.
#[test]
fn cut_or_random_input_never_panics() {
    let mut stream = Vec::new();
    let tx = TxConfig { digests: Digests::BOTH, pda: 0 };
    emit(&Pdu::CapsuleCmd(Command::new(0x02, 1)), &[], &tx, &mut stream).unwrap();
    emit(&Pdu::H2cData(H2cData { cccid: 1, ttag: 1, datao: 0, datal: 100, last: true }), &[7; 100], &tx, &mut stream).unwrap();
    let rx = with_digests(CTRL_RX, Digests::BOTH);
    let first = parse(&stream, &rx).unwrap().unwrap().len;
    for cut in 0..first {
        assert_eq!(parse(&stream[..cut], &rx), Ok(None), "cut at {cut}");
    }
    let second = &stream[first..];
    for cut in 0..second.len() {
        assert_eq!(parse(&second[..cut], &rx), Ok(None), "cut at {cut}");
    }
    assert_eq!(parse(second, &rx).unwrap().unwrap().data_digest_ok, Some(true));
    // Deterministic noise with plausible headers.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 200) as usize;
        let mut b: Vec<u8> = (0..n).map(|i| (x.rotate_left(i as u32 * 5) >> 3) as u8).collect();
        if n >= 8 {
            b[0] = (x >> 8) as u8 % 11;
            b[2] = [24, 72, 128, 20][(x >> 16) as usize % 4];
            b[4..8].copy_from_slice(&((x >> 24) as u32 % 256).to_le_bytes());
        }
        for role in [Role::Host, Role::Controller] {
            for cfg in [RxConfig::awaiting_ic(role), RxConfig::established(role, Digests::BOTH, 0), RxConfig::established(role, Digests::NONE, 3)] {
                if let Ok(Some(r)) = parse(&b, &cfg) {
                    assert!(r.len <= b.len() && r.data.len() <= r.len);
                }
            }
        }
    }
}

#[test]
fn emit_refuses_inconsistent_pdus() {
    let mut out = Vec::new();
    let tx = TxConfig::default();
    assert_eq!(emit(&Pdu::R2t(R2t { cccid: 0, ttag: 0, r2to: 0, r2tl: 1 }), &[1], &tx, &mut out), Err(EmitError::DataNotAllowed));
    assert_eq!(emit(&Pdu::C2hData(C2hData { cccid: 0, datao: 0, datal: 2, last: true, success: false }), &[1], &tx, &mut out), Err(EmitError::DatalMismatch { datal: 2, given: 1 }));
    assert_eq!(emit(&Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxh2cdata: 1000 }), &[], &tx, &mut out), Err(EmitError::BadMaxH2cData(1000)));
    assert_eq!(emit(&Pdu::H2cTermReq(TermReq { fes: 1, fei: 0 }), &[0; 129], &tx, &mut out), Err(EmitError::TooMuchErrorData));
    assert!(out.is_empty(), "nothing half-written");
}
