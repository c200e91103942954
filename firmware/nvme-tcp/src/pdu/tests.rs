//! PDU tests: round trips of every type with every digest setting, exact
//! bytes against hand-computed layouts, every validation error from
//! malformed bytes (with its FES/FEI), truncation at every length, a
//! stream walk, and a deterministic fuzz that must never panic.

use super::*;
use crate::digest::{crc32c, to_wire, Crc32c};

const DIGEST_SETTINGS: [Digests; 4] =
    [Digests::NONE, Digests { header: true, data: false }, Digests { header: false, data: true }, Digests::BOTH];

fn rx(role: Role, d: Digests, ic: bool) -> RxConfig {
    if ic {
        RxConfig::awaiting_ic(role)
    } else {
        RxConfig::established(role, d, 0)
    }
}

fn tx(d: Digests) -> TxConfig {
    TxConfig { digests: d, pda: 0 }
}

fn pattern<const N: usize>(seed: u8) -> [u8; N] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
}

/// (PDU, data length, receiving role).
fn samples() -> [(Pdu, u32, Role); 12] {
    [
        (Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: false, maxr2t: 3 }), 0, Role::Controller),
        (Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: true, ddgst: true, maxh2cdata: 131072 }), 0, Role::Host),
        (Pdu::H2cTermReq(TermReq { fes: 1, fei: 4 }), 24, Role::Controller),
        (Pdu::C2hTermReq(TermReq { fes: 3, fei: 0 }), 0, Role::Host),
        (Pdu::CapsuleCmd(CapsuleCmd { sqe: pattern(1) }), 0, Role::Controller),
        (Pdu::CapsuleCmd(CapsuleCmd { sqe: pattern(2) }), 100, Role::Controller),
        (Pdu::CapsuleResp(CapsuleResp { cqe: pattern(3) }), 0, Role::Host),
        (Pdu::H2cData(H2cData { cccid: 7, ttag: 9, datao: 4096, datal: 61, last: true }), 61, Role::Controller),
        (Pdu::H2cData(H2cData { cccid: 7, ttag: 9, datao: 0, datal: 4, last: false }), 4, Role::Controller),
        (Pdu::C2hData(C2hData { cccid: 8, datao: 0, datal: 33, last: true, success: true }), 33, Role::Host),
        (Pdu::C2hData(C2hData { cccid: 8, datao: 64, datal: 16, last: false, success: false }), 16, Role::Host),
        (Pdu::R2t(R2t { cccid: 7, ttag: 9, r2to: 4096, r2tl: 8192 }), 0, Role::Host),
    ]
}

/// Emits a whole PDU (header, data, data digest) into `out`; returns its length.
fn wire(p: &Pdu, data: &[u8], cfg: &TxConfig, out: &mut [u8]) -> usize {
    let n = p.emit(data.len() as u32, cfg, out).unwrap();
    out[n..n + data.len()].copy_from_slice(data);
    let mut end = n + data.len();
    if cfg.digests.data && !data.is_empty() && p.pdu_type().takes_data() {
        out[end..end + 4].copy_from_slice(&to_wire(crc32c(data)));
        end += 4;
    }
    end
}

#[test]
fn every_type_round_trips_with_and_without_digests() {
    let payload: [u8; 128] = pattern(9);
    for d in DIGEST_SETTINGS {
        for (pdu, len, role) in samples() {
            let data = &payload[..len as usize];
            let mut buf = [0u8; 512];
            let end = wire(&pdu, data, &tx(d), &mut buf);
            let cfg = rx(role, d, pdu.pdu_type().is_ic());
            let total = header_total_len(&buf[..8], &cfg).unwrap();
            let r = parse_header(&buf[..total], &cfg).unwrap_or_else(|e| panic!("{pdu:?} {d:?}: {e:?}"));
            assert_eq!(r.pdu, pdu, "{d:?}");
            assert_eq!(r.plen as usize, end);
            assert_eq!(r.header_len as usize, total);
            let t = pdu.pdu_type();
            let hd = if t.takes_hdgst() && d.header { 4 } else { 0 };
            assert_eq!(total, usize::from(t.hlen()) + hd);
            match r.data {
                None => assert_eq!(len, 0, "{pdu:?}"),
                Some(s) => {
                    assert_eq!(s.len, len);
                    assert_eq!(s.end() as usize, end);
                    let at = s.offset_from_pdu_start as usize;
                    assert_eq!(at, total + s.pad_before as usize);
                    assert_eq!(&buf[at..at + len as usize], data);
                    assert_eq!(s.ddgst, d.data && t.takes_data());
                    if s.ddgst {
                        let o = s.digest_offset() as usize;
                        let mut c = Crc32c::new();
                        c.update(&buf[at..o]);
                        assert!(c.matches([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]));
                    }
                }
            }
        }
    }
}

#[test]
fn icreq_bytes_as_linux_sends_them() {
    // Linux nvme_tcp_init_connection(): type 0, hlen 128, pdo 0, plen 128,
    // pfv 0, hpda 0, digest bits, maxr2t 0.
    let mut linux = [0u8; 128];
    linux[..8].copy_from_slice(&[0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00]);
    linux[11] = 0x03;
    let want = IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 };
    let r = parse_header(&linux, &RxConfig::awaiting_ic(Role::Controller)).unwrap();
    assert_eq!(r.pdu, Pdu::IcReq(want));
    assert_eq!(r.data, None);
    let mut out = [0xffu8; 128];
    assert_eq!(Pdu::IcReq(want).emit(0, &TxConfig::PLAIN, &mut out), Ok(128));
    assert_eq!(out, linux);
    // Digests negotiated on the connection do not apply to IC PDUs.
    assert_eq!(Pdu::IcReq(want).emit(0, &tx(Digests::BOTH), &mut out), Ok(128));
    assert_eq!(out, linux);
}

#[test]
fn icresp_bytes() {
    let p = Pdu::IcResp(IcResp { pfv: 0, cpda: 2, hdgst: false, ddgst: true, maxh2cdata: 0x0002_0000 });
    let mut out = [0u8; 128];
    p.emit(0, &TxConfig::PLAIN, &mut out).unwrap();
    assert_eq!(&out[..16], &[0x01, 0, 0x80, 0, 0x80, 0, 0, 0, 0, 0, 2, 0x02, 0x00, 0x00, 0x02, 0x00]);
    assert!(out[16..].iter().all(|&b| b == 0));
}

#[test]
fn c2h_data_bytes_with_both_digests() {
    let p = Pdu::C2hData(C2hData { cccid: 0x1234, datao: 0x1000, datal: 0x200, last: true, success: true });
    let mut out = [0u8; 64];
    let n = p.emit(0x200, &tx(Digests::BOTH), &mut out).unwrap();
    assert_eq!(n, 28, "HLEN 24 + HDGST 4; PDO 28 is already dword aligned");
    let plen: u32 = 28 + 0x200 + 4;
    let mut want = [0u8; 24];
    want[0] = 0x07;
    want[1] = 0x0f; // HDGSTF | DDGSTF | LAST_PDU | SUCCESS
    want[2] = 24;
    want[3] = 28;
    want[4..8].copy_from_slice(&plen.to_le_bytes());
    want[8..10].copy_from_slice(&[0x34, 0x12]);
    want[12..16].copy_from_slice(&[0x00, 0x10, 0, 0]);
    want[16..20].copy_from_slice(&[0x00, 0x02, 0, 0]);
    assert_eq!(&out[..24], &want);
    assert_eq!(&out[24..28], &crc32c(&want).to_le_bytes(), "HDGST = CRC32C(header), little-endian");
}

#[test]
fn capsule_cmd_without_data_has_zero_pdo_and_no_ddgst() {
    // Linux nvme_tcp_setup_cmd_pdu(): no DDGSTF and PDO 0 without data.
    let p = Pdu::CapsuleCmd(CapsuleCmd { sqe: pattern(5) });
    let mut out = [0u8; 80];
    assert_eq!(p.emit(0, &tx(Digests::BOTH), &mut out), Ok(76));
    assert_eq!(&out[..8], &[0x04, 0x01, 72, 0, 76, 0, 0, 0]);
    assert_eq!(&out[8..72], &pattern::<64>(5));
    assert_eq!(p.emit(8, &tx(Digests::BOTH), &mut out), Ok(76));
    assert_eq!(&out[..8], &[0x04, 0x03, 72, 76, 88, 0, 0, 0]);
}

#[test]
fn alignment_padding_follows_pda() {
    // CPDA 31: data on a 128-byte boundary.
    let p = Pdu::CapsuleCmd(CapsuleCmd { sqe: pattern(6) });
    let mut buf = [0xeeu8; 256];
    let cfg = TxConfig { digests: Digests { header: true, data: false }, pda: 31 };
    assert_eq!(p.emit(16, &cfg, &mut buf), Ok(128));
    assert_eq!(buf[3], 128, "PDO");
    assert!(buf[76..128].iter().all(|&b| b == 0), "zero padding after HDGST");
    let r = parse_header(&buf, &RxConfig::established(Role::Controller, cfg.digests, 31)).unwrap();
    assert_eq!(r.data, Some(DataSpan { offset_from_pdu_start: 128, len: 16, ddgst: false, pad_before: 52 }));
    // HPDA 3 (16 bytes) for C2H data: 24 -> 32.
    let c = Pdu::C2hData(C2hData { cccid: 1, datao: 0, datal: 8, last: true, success: false });
    assert_eq!(c.emit(8, &TxConfig { digests: Digests::NONE, pda: 3 }, &mut buf), Ok(32));
    let r = parse_header(&buf, &RxConfig::established(Role::Host, Digests::NONE, 3)).unwrap();
    assert_eq!(r.data.unwrap().pad_before, 8);
    // A receiver that asked for 16-byte alignment rejects PDO 24.
    c.emit(8, &TxConfig::PLAIN, &mut buf).unwrap();
    let e = parse_header(&buf, &RxConfig::established(Role::Host, Digests::NONE, 3)).unwrap_err();
    assert_eq!(e, PduError::MisalignedPdo { pdo: 24, align: 16 });
    assert_eq!((e.fes(), e.fei()), (Some(Fes::InvalidHeaderField), 3));
    // With no alignment asked, unaligned but in-range padding is accepted.
    buf[3] = 26;
    buf[4..8].copy_from_slice(&34u32.to_le_bytes());
    let r = parse_header(&buf, &RxConfig::established(Role::Host, Digests::NONE, 0)).unwrap();
    assert_eq!(r.data.unwrap().pad_before, 2);
}

#[test]
fn truncated_buffers_return_errors_at_every_length() {
    let payload: [u8; 128] = pattern(1);
    for d in DIGEST_SETTINGS {
        for (pdu, len, role) in samples() {
            let mut buf = [0u8; 512];
            let end = wire(&pdu, &payload[..len as usize], &tx(d), &mut buf);
            let cfg = rx(role, d, pdu.pdu_type().is_ic());
            let total = header_total_len(&buf, &cfg).unwrap();
            for n in 0..end {
                let r = parse_header(&buf[..n], &cfg);
                if n < 8 {
                    assert_eq!(r, Err(PduError::Truncated { need: 8 }));
                    assert_eq!(header_total_len(&buf[..n], &cfg), Err(PduError::Truncated { need: 8 }));
                } else if n < total {
                    assert_eq!(r, Err(PduError::Truncated { need: total }), "{pdu:?} n={n}");
                    assert_eq!(r.unwrap_err().fes(), None);
                } else {
                    // The header is all there: data bytes are not needed.
                    assert!(r.is_ok());
                }
            }
        }
    }
}

/// An emitted header, for corrupting.
fn header_of(p: Pdu, data_len: u32, d: Digests) -> [u8; 256] {
    let mut b = [0u8; 256];
    p.emit(data_len, &tx(d), &mut b).unwrap();
    b
}

fn c2h(datal: u32) -> Pdu {
    Pdu::C2hData(C2hData { cccid: 1, datao: 0, datal, last: true, success: false })
}

fn cmd() -> Pdu {
    Pdu::CapsuleCmd(CapsuleCmd { sqe: pattern(7) })
}

fn host() -> RxConfig {
    RxConfig::established(Role::Host, Digests::NONE, 0)
}

fn ctrl() -> RxConfig {
    RxConfig::established(Role::Controller, Digests::NONE, 0)
}

fn check(b: &[u8], cfg: &RxConfig, err: PduError, fes: Fes, fei: u32) {
    let e = parse_header(b, cfg).unwrap_err();
    assert_eq!(e, err);
    assert_eq!(e.fes(), Some(fes), "{err:?}");
    assert_eq!(e.fei(), fei, "{err:?}");
    let t = e.term_req().unwrap();
    assert_eq!((t.fes, t.fei), (fes as u16, fei));
}

#[test]
fn type_direction_and_phase_errors() {
    let mut b = header_of(c2h(4), 4, Digests::NONE);
    for bad in [0x08u8, 0x0a, 0xff] {
        b[0] = bad;
        check(&b, &host(), PduError::BadType(bad), Fes::InvalidHeaderField, 0);
    }
    let b = header_of(cmd(), 0, Digests::NONE);
    check(&b, &host(), PduError::WrongDirection(PduType::CapsuleCmd), Fes::InvalidHeaderField, 0);
    check(
        &b,
        &RxConfig::awaiting_ic(Role::Controller),
        PduError::IcExpected(PduType::CapsuleCmd),
        Fes::SequenceError,
        0,
    );
    let ic = header_of(Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), 0, Digests::NONE);
    check(&ic, &ctrl(), PduError::IcRepeated(PduType::IcReq), Fes::SequenceError, 0);
    // TermReq is fine before setup completes (a rejected ICReq).
    let t = header_of(Pdu::C2hTermReq(TermReq::new(Fes::UnsupportedParameter, 8)), 0, Digests::NONE);
    assert!(parse_header(&t, &RxConfig::awaiting_ic(Role::Host)).is_ok());
}

#[test]
fn hlen_errors() {
    for (p, len, role) in samples() {
        let mut b = header_of(p, len, Digests::NONE);
        let hlen = b[2];
        for bad in [0u8, hlen - 1, hlen + 1, 0xff] {
            b[2] = bad;
            let cfg = rx(role, Digests::NONE, p.pdu_type().is_ic());
            check(&b, &cfg, PduError::BadHlen { pdu_type: p.pdu_type(), hlen: bad }, Fes::InvalidHeaderField, 2);
        }
    }
}

#[test]
fn digest_flag_errors() {
    let hd = Digests { header: true, data: false };
    let dd = Digests { header: false, data: true };
    // HDGSTF without negotiation, and its absence with negotiation.
    let b = header_of(c2h(4), 4, hd);
    check(&b, &host(), PduError::UnexpectedHeaderDigestFlag, Fes::InvalidHeaderField, 1);
    let b = header_of(c2h(4), 4, Digests::NONE);
    check(&b, &RxConfig::established(Role::Host, hd, 0), PduError::MissingHeaderDigestFlag, Fes::InvalidHeaderField, 1);
    // Same for DDGSTF on a PDU with data.
    let b = header_of(c2h(4), 4, dd);
    check(&b, &host(), PduError::UnexpectedDataDigestFlag, Fes::InvalidHeaderField, 1);
    let b = header_of(c2h(4), 4, Digests::NONE);
    check(&b, &RxConfig::established(Role::Host, dd, 0), PduError::MissingDataDigestFlag, Fes::InvalidHeaderField, 1);
    // DDGSTF on PDUs without data, even with data digests negotiated.
    let ddcfg = RxConfig::established(Role::Host, dd, 0);
    let mut b = header_of(Pdu::CapsuleResp(CapsuleResp { cqe: [0; 16] }), 0, dd);
    b[1] |= DDGSTF;
    check(&b, &ddcfg, PduError::UnexpectedDataDigestFlag, Fes::InvalidHeaderField, 1);
    let mut b = header_of(cmd(), 0, dd);
    b[1] |= DDGSTF;
    check(
        &b,
        &RxConfig::established(Role::Controller, dd, 0),
        PduError::UnexpectedDataDigestFlag,
        Fes::InvalidHeaderField,
        1,
    );
    // IC and TermReq PDUs never carry digests.
    let mut ic = header_of(
        Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: true, ddgst: true, maxh2cdata: 8192 }),
        0,
        Digests::NONE,
    );
    ic[1] = HDGSTF;
    check(&ic, &RxConfig::awaiting_ic(Role::Host), PduError::UnexpectedHeaderDigestFlag, Fes::InvalidHeaderField, 1);
    ic[1] = DDGSTF;
    check(&ic, &RxConfig::awaiting_ic(Role::Host), PduError::UnexpectedDataDigestFlag, Fes::InvalidHeaderField, 1);
    let mut t = header_of(Pdu::C2hTermReq(TermReq::new(Fes::HeaderDigest, 0)), 0, Digests::BOTH);
    assert_eq!(t[1], 0, "TermReq emitted without digest flags");
    t[1] = HDGSTF;
    check(
        &t,
        &RxConfig::established(Role::Host, Digests::BOTH, 0),
        PduError::UnexpectedHeaderDigestFlag,
        Fes::InvalidHeaderField,
        1,
    );
}

#[test]
fn success_without_last() {
    let mut b = header_of(c2h(4), 4, Digests::NONE);
    b[1] = SUCCESS;
    check(&b, &host(), PduError::SuccessWithoutLast, Fes::InvalidHeaderField, 1);
    b[1] = SUCCESS | LAST_PDU;
    assert!(parse_header(&b, &host()).is_ok());
}

fn set_plen(b: &mut [u8], plen: u32) {
    b[4..8].copy_from_slice(&plen.to_le_bytes());
}

#[test]
fn plen_errors() {
    let bad = |p| PduError::BadPlen { plen: p };
    // IC: exactly 128.
    let mut ic =
        header_of(Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), 0, Digests::NONE);
    for p in [0, 127, 129, u32::MAX] {
        set_plen(&mut ic, p);
        check(&ic, &RxConfig::awaiting_ic(Role::Controller), bad(p), Fes::InvalidHeaderField, 4);
    }
    // CapsuleResp/R2T: exactly HLEN (+ HDGST).
    let hd = Digests { header: true, data: false };
    let mut r = header_of(Pdu::R2t(R2t { cccid: 1, ttag: 1, r2to: 0, r2tl: 1 }), 0, hd);
    for p in [24, 27, 29] {
        set_plen(&mut r, p);
        check(&r, &RxConfig::established(Role::Host, hd, 0), bad(p), Fes::InvalidHeaderField, 4);
    }
    // TermReq: 24..=152.
    let mut t = header_of(Pdu::H2cTermReq(TermReq::new(Fes::SequenceError, 0)), 0, Digests::NONE);
    for p in [0, 23, 153] {
        set_plen(&mut t, p);
        check(&t, &ctrl(), bad(p), Fes::InvalidHeaderField, 4);
    }
    set_plen(&mut t, 152);
    assert_eq!(parse_header(&t, &ctrl()).unwrap().data.unwrap().len, 128);
    // CapsuleCmd shorter than its header.
    let mut c = header_of(cmd(), 0, Digests::NONE);
    set_plen(&mut c, 71);
    check(&c, &ctrl(), bad(71), Fes::InvalidHeaderField, 4);
    // Data digest flagged but no room for data before it.
    let dd = Digests { header: false, data: true };
    let mut d = header_of(c2h(4), 4, dd);
    set_plen(&mut d, 24 + 4);
    check(&d, &RxConfig::established(Role::Host, dd, 0), bad(28), Fes::InvalidHeaderField, 4);
    // H2CData/C2HData with no data at all.
    let mut e = header_of(c2h(4), 4, Digests::NONE);
    e[3] = 0;
    set_plen(&mut e, 24);
    check(&e, &host(), PduError::MissingData, Fes::InvalidHeaderField, 4);
}

#[test]
fn pdo_errors() {
    let bad = |p| PduError::BadPdo { pdo: p };
    // No data: PDO must be 0.
    let mut c = header_of(cmd(), 0, Digests::NONE);
    c[3] = 72;
    check(&c, &ctrl(), bad(72), Fes::InvalidHeaderField, 3);
    let mut r = header_of(Pdu::CapsuleResp(CapsuleResp { cqe: [1; 16] }), 0, Digests::NONE);
    r[3] = 24;
    check(&r, &host(), bad(24), Fes::InvalidHeaderField, 3);
    let mut ic =
        header_of(Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), 0, Digests::NONE);
    ic[3] = 128;
    check(&ic, &RxConfig::awaiting_ic(Role::Controller), bad(128), Fes::InvalidHeaderField, 3);
    // With data: inside the header, inside the header digest, at or past
    // the end, or where only the data digest fits.
    let hd = Digests::BOTH;
    let cfg = RxConfig::established(Role::Host, hd, 0);
    let mut d = header_of(c2h(8), 8, hd); // PDO 28, PLEN 40
    for p in [0u8, 23, 24, 27, 36, 40, 255] {
        d[3] = p;
        let ch = CommonHeader::parse(&d, &cfg);
        assert_eq!(ch, Err(bad(p)), "pdo {p}");
        assert_eq!(ch.unwrap_err().fei(), 3);
    }
    d[3] = 28;
    assert!(parse_header(&d, &cfg).is_ok());
}

#[test]
fn header_digest_mismatch_is_detected() {
    let hd = Digests { header: true, data: false };
    let cfg = RxConfig::established(Role::Host, hd, 0);
    let good = header_of(c2h(64), 64, hd);
    assert!(parse_header(&good, &cfg).is_ok());
    // Any single flipped bit in the digested fields or in the digest itself.
    for byte in (8..28).chain([1usize]) {
        for bit in 0..8 {
            let mut b = good;
            b[byte] ^= 1 << bit;
            if byte == 1 && (bit == 0 || bit == 1 || bit == 3) {
                continue; // flips a digest/success flag: caught before the digest
            }
            let e = parse_header(&b, &cfg).unwrap_err();
            assert!(matches!(e, PduError::HeaderDigest { .. }), "byte {byte} bit {bit}: {e:?}");
            assert_eq!((e.fes(), e.fei()), (Some(Fes::HeaderDigest), 0));
        }
    }
    // Padding is not covered by the header digest.
    let mut padded = [0u8; 256];
    c2h(8).emit(8, &TxConfig { digests: hd, pda: 7 }, &mut padded).unwrap();
    let cfg7 = RxConfig::established(Role::Host, hd, 7);
    padded[28] = 0x5a;
    assert!(parse_header(&padded, &cfg7).is_ok());
}

#[test]
fn field_errors() {
    // DATAL must equal the data the PDU carries.
    let mut b = header_of(c2h(40), 40, Digests::NONE);
    b[16] = 39;
    check(&b, &host(), PduError::DatalMismatch { datal: 39, data_len: 40 }, Fes::InvalidHeaderField, 16);
    let mut h =
        header_of(Pdu::H2cData(H2cData { cccid: 1, ttag: 2, datao: 0, datal: 40, last: true }), 40, Digests::NONE);
    h[17] = 1;
    check(&h, &ctrl(), PduError::DatalMismatch { datal: 296, data_len: 40 }, Fes::InvalidHeaderField, 16);
    // The datal check happens after the header digest check.
    let hd = Digests { header: true, data: false };
    let mut b = header_of(c2h(40), 40, hd);
    b[16] = 39;
    assert!(matches!(parse_header(&b, &RxConfig::established(Role::Host, hd, 0)), Err(PduError::HeaderDigest { .. })));
    // R2T for zero bytes.
    let mut r = header_of(Pdu::R2t(R2t { cccid: 1, ttag: 1, r2to: 0, r2tl: 1 }), 0, Digests::NONE);
    r[16] = 0;
    check(&r, &host(), PduError::ZeroR2tLength, Fes::InvalidHeaderField, 16);
    // ICReq/ICResp parameters.
    let ic_cfg = RxConfig::awaiting_ic(Role::Controller);
    let mut q =
        header_of(Pdu::IcReq(IcReq { pfv: 0, hpda: 31, hdgst: false, ddgst: false, maxr2t: 0 }), 0, Digests::NONE);
    assert!(parse_header(&q, &ic_cfg).is_ok());
    q[10] = 32;
    check(&q, &ic_cfg, PduError::BadPda(32), Fes::InvalidHeaderField, 10);
    q[10] = 0;
    q[8] = 1;
    check(&q, &ic_cfg, PduError::UnsupportedPfv(1), Fes::UnsupportedParameter, 8);
    let resp_cfg = RxConfig::awaiting_ic(Role::Host);
    let mut s = header_of(
        Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxh2cdata: 4096 }),
        0,
        Digests::NONE,
    );
    assert!(parse_header(&s, &resp_cfg).is_ok());
    for bad in [0u32, 4092, 4098, 0xffff_ffff] {
        s[12..16].copy_from_slice(&bad.to_le_bytes());
        check(&s, &resp_cfg, PduError::BadMaxH2cData(bad), Fes::InvalidHeaderField, 12);
    }
}

#[test]
fn fes_values_are_the_specs() {
    assert_eq!(Fes::InvalidHeaderField as u16, 0x01);
    assert_eq!(Fes::SequenceError as u16, 0x02);
    assert_eq!(Fes::HeaderDigest as u16, 0x03);
    assert_eq!(Fes::DataOutOfRange as u16, 0x04);
    assert_eq!(Fes::DataLimitExceeded as u16, 0x05);
    assert_eq!(Fes::UnsupportedParameter as u16, 0x06);
    for v in 0..=0xffffu16 {
        if let Some(f) = Fes::from_u16(v) {
            assert_eq!(f as u16, v);
        } else {
            assert!(v == 0 || v > 6);
        }
    }
}

#[test]
fn term_req_carries_the_offending_header() {
    // A controller gets a CapsuleCmd with a bad HLEN and answers.
    let mut bad = header_of(cmd(), 0, Digests::NONE);
    bad[2] = 70;
    let err = parse_header(&bad, &ctrl()).unwrap_err();
    let t = err.term_req().unwrap();
    let mut out = [0u8; 256];
    let n = t.emit_with_data(false, &bad[..72], &mut out).unwrap();
    assert_eq!(n, 24 + 72);
    assert_eq!(&out[..8], &[0x03, 0, 24, 0, 96, 0, 0, 0]);
    assert_eq!(&out[8..14], &[0x01, 0x00, 0x02, 0, 0, 0], "FES 1, FEI 2 (HLEN)");
    // The host parses it even with digests on, and finds the header.
    let r = parse_header(&out[..n], &RxConfig::established(Role::Host, Digests::BOTH, 0)).unwrap();
    assert_eq!(r.pdu, Pdu::C2hTermReq(TermReq { fes: 1, fei: 2 }));
    let s = r.data.unwrap();
    assert_eq!((s.offset_from_pdu_start, s.len, s.ddgst), (24, 72, false));
    assert_eq!(&out[24..96], &bad[..72]);
    if let Pdu::C2hTermReq(t) = r.pdu {
        assert_eq!(t.status(), Some(Fes::InvalidHeaderField));
    }
    // Error data is cut at 128 bytes.
    let big = [0x11u8; 200];
    let n = TermReq::new(Fes::SequenceError, 0).emit_with_data(true, &big, &mut out).unwrap();
    assert_eq!(n, 152);
    assert_eq!(parse_header(&out, &ctrl()).unwrap().plen, 152);
    assert_eq!(
        TermReq::new(Fes::SequenceError, 0).emit_with_data(true, &big, &mut out[..151]),
        Err(EmitError::BufferTooSmall { need: 152 })
    );
}

#[test]
fn emit_errors() {
    let mut b = [0u8; 256];
    let both = tx(Digests::BOTH);
    // Too small a buffer at every length.
    for n in 0..76 {
        assert_eq!(cmd().emit(8, &both, &mut b[..n]), Err(EmitError::BufferTooSmall { need: 76 }));
    }
    let resp = Pdu::CapsuleResp(CapsuleResp { cqe: [0; 16] });
    assert_eq!(resp.emit(1, &both, &mut b), Err(EmitError::DataNotAllowed));
    assert_eq!(c2h(8).emit(9, &both, &mut b), Err(EmitError::DatalMismatch { datal: 8, data_len: 9 }));
    assert_eq!(c2h(0).emit(0, &both, &mut b), Err(EmitError::MissingData));
    let s = Pdu::C2hData(C2hData { cccid: 0, datao: 0, datal: 4, last: false, success: true });
    assert_eq!(s.emit(4, &both, &mut b), Err(EmitError::SuccessWithoutLast));
    let t = Pdu::H2cTermReq(TermReq::new(Fes::HeaderDigest, 0));
    assert_eq!(t.emit(129, &both, &mut b), Err(EmitError::TooMuchErrorData));
    assert_eq!(cmd().emit(8, &TxConfig { digests: Digests::NONE, pda: 32 }, &mut b), Err(EmitError::BadPda(32)));
    let ic = Pdu::IcReq(IcReq { pfv: 0, hpda: 40, hdgst: false, ddgst: false, maxr2t: 0 });
    assert_eq!(ic.emit(0, &both, &mut b), Err(EmitError::BadPda(40)));
    let icr = Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxh2cdata: 1000 });
    assert_eq!(icr.emit(0, &both, &mut b), Err(EmitError::BadMaxH2cData(1000)));
    let r = Pdu::R2t(R2t { cccid: 0, ttag: 0, r2to: 0, r2tl: 0 });
    assert_eq!(r.emit(0, &both, &mut b), Err(EmitError::ZeroR2tLength));
    assert_eq!(cmd().emit(u32::MAX, &both, &mut b), Err(EmitError::TooLong));
}

#[test]
fn walk_a_byte_stream_of_several_pdus() {
    // What a host receiver sees for one read: C2HData x2 then CapsuleResp,
    // with both digests, parsed with nothing but offsets.
    let d = Digests::BOTH;
    let cfg = RxConfig::established(Role::Host, d, 0);
    let payload: [u8; 96] = pattern(4);
    let mut stream = [0u8; 512];
    let mut at = 0;
    let first = Pdu::C2hData(C2hData { cccid: 5, datao: 0, datal: 64, last: false, success: false });
    at += wire(&first, &payload[..64], &tx(d), &mut stream[at..]);
    let second = Pdu::C2hData(C2hData { cccid: 5, datao: 64, datal: 32, last: true, success: false });
    at += wire(&second, &payload[64..], &tx(d), &mut stream[at..]);
    let resp = Pdu::CapsuleResp(CapsuleResp { cqe: pattern(8) });
    at += wire(&resp, &[], &tx(d), &mut stream[at..]);
    let mut got = [0u8; 96];
    let mut pos = 0;
    let mut seen = 0;
    while pos < at {
        let need = header_total_len(&stream[pos..pos + 8], &cfg).unwrap();
        let r = parse_header(&stream[pos..pos + need], &cfg).unwrap();
        if let (Pdu::C2hData(c), Some(s)) = (r.pdu, r.data) {
            assert_eq!(c.cccid, 5);
            let start = pos + s.offset_from_pdu_start as usize;
            let data = &stream[start..start + s.len as usize];
            // Digest checked across two pieces, as if the ring wrapped.
            let mut crc = Crc32c::new();
            crc.update(&data[..3]);
            crc.update(&data[3..]);
            let o = pos + s.digest_offset() as usize;
            assert!(crc.matches(stream[o..o + 4].try_into().unwrap()));
            got[c.datao as usize..][..data.len()].copy_from_slice(data);
        } else {
            assert_eq!(r.pdu, resp);
        }
        pos += r.plen as usize;
        seen += 1;
    }
    assert_eq!((pos, seen), (at, 3));
    assert_eq!(got, payload);
}

/// A tiny deterministic generator (no clock, no OS entropy).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn random_headers_never_panic_and_spans_stay_inside_plen() {
    let mut rng = Lcg(0x5eed);
    let types = [0u8, 1, 2, 3, 4, 5, 6, 7, 9, 8, 0xff];
    let mut ok = 0;
    for i in 0..60_000 {
        let mut b = [0u8; 160];
        for x in b.iter_mut() {
            *x = rng.next() as u8;
        }
        // Steer most inputs past the first checks so the deep ones run.
        let t = types[(rng.next() % types.len() as u32) as usize];
        b[0] = t;
        if let Some(pt) = PduType::from_u8(t) {
            if i % 8 != 0 {
                b[2] = pt.hlen();
            }
            if i % 2 == 0 {
                b[1] &= 0x0f;
                let hl = u32::from(pt.hlen());
                let plen = hl + rng.next() % 200;
                b[4..8].copy_from_slice(&plen.to_le_bytes());
                b[3] = if i % 4 == 0 { 0 } else { (hl + rng.next() % 40) as u8 };
            }
            if i % 3 == 0 && pt.takes_hdgst() && b[1] & HDGSTF != 0 {
                let hl = usize::from(pt.hlen());
                let c = to_wire(crc32c(&b[..hl]));
                b[hl..hl + 4].copy_from_slice(&c);
            }
        }
        let n = (rng.next() % 161) as usize;
        let role = if i % 2 == 0 { Role::Host } else { Role::Controller };
        let d = DIGEST_SETTINGS[i % 4];
        let cfg = RxConfig { role, ic_done: i % 5 != 0, digests: d, pda: (i % 3) as u8 };
        match parse_header(&b[..n], &cfg) {
            Ok(r) => {
                ok += 1;
                assert!(r.header_len as usize <= n);
                if let Some(s) = r.data {
                    assert_eq!(s.end(), r.plen);
                    assert!(s.offset_from_pdu_start >= r.header_len);
                    assert!(s.len > 0);
                }
            }
            Err(e) => {
                let _ = (e.fes(), e.fei());
            }
        }
    }
    assert!(ok > 100, "the fuzz reached the success path only {ok} times");
}
