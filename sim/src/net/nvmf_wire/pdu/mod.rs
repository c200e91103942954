//! NVMe/TCP PDUs (NVMe/TCP Transport 1.0 §3.6 "PDU Structure"): parsing a
//! PDU out of a received byte stream, and building one with its digests
//! and data alignment.
//!
//! * [`parse`] takes the bytes received so far: `Ok(None)` until the
//!   whole PDU is there, then the typed [`Pdu`], its data and whether the
//!   data digest matched. A bad header gives a [`PduError`], whose
//!   [`PduError::fes`] and [`PduError::fei`] go into the TermReq the
//!   receiver sends before it closes the connection.
//! * [`emit`] appends a whole PDU (header, header digest, padding to PDO,
//!   data, data digest) to a buffer.

mod config;
mod error;
mod fields;
mod header;
mod kind;
#[cfg(test)]
mod tests;

pub use config::{pda_bytes, Digests, RxConfig, TxConfig, MAX_PDA};
pub use error::{field, EmitError, Fes, PduError};
pub use fields::{C2hData, H2cData, IcReq, IcResp, R2t, TermReq, DDGST_ENABLE, HDGST_ENABLE, MIN_MAXH2CDATA, PFV_1_0};
pub use header::{CommonHeader, TERM_MAX_DATA};
pub use kind::{PduType, Role, COMMON_HEADER_LEN, DIGEST_LEN, FLAG_DDGSTF, FLAG_HDGSTF, FLAG_LAST_PDU, FLAG_SUCCESS};

use super::command::Command;
use super::completion::Completion;
use super::digest::{crc32c, digest_bytes};
use fields::{byte_of, dgst_byte, u16_of, u32_of, valid_maxh2cdata};

/// A PDU's type-specific header, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pdu {
    IcReq(IcReq),
    IcResp(IcResp),
    H2cTermReq(TermReq),
    C2hTermReq(TermReq),
    CapsuleCmd(Command),
    CapsuleResp(Completion),
    H2cData(H2cData),
    C2hData(C2hData),
    R2t(R2t),
}

/// One PDU taken from a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    pub pdu: Pdu,
    pub header: CommonHeader,
    /// PLEN: bytes of the whole PDU, to drop from the stream.
    pub len: usize,
    /// In-capsule data, H2C/C2H data, or TermReq error data.
    pub data: &'a [u8],
    /// `Some(matched)` when a data digest came with the data.
    pub data_digest_ok: Option<bool>,
}

impl Pdu {
    pub fn pdu_type(&self) -> PduType {
        match self {
            Pdu::IcReq(_) => PduType::IcReq,
            Pdu::IcResp(_) => PduType::IcResp,
            Pdu::H2cTermReq(_) => PduType::H2cTermReq,
            Pdu::C2hTermReq(_) => PduType::C2hTermReq,
            Pdu::CapsuleCmd(_) => PduType::CapsuleCmd,
            Pdu::CapsuleResp(_) => PduType::CapsuleResp,
            Pdu::H2cData(_) => PduType::H2cData,
            Pdu::C2hData(_) => PduType::C2hData,
            Pdu::R2t(_) => PduType::R2t,
        }
    }

    /// Decodes the type-specific fields of a header `h` (HLEN bytes) whose
    /// common header `ch` was checked; `carried` is the PDU's data length.
    fn decode(ch: &CommonHeader, h: &[u8], carried: usize) -> Result<Pdu, PduError> {
        let datal_matches = |datal: u32| {
            if datal as usize == carried {
                Ok(())
            } else {
                Err(PduError::DatalMismatch { datal, carried: carried as u32 })
            }
        };
        Ok(match ch.pdu_type {
            PduType::IcReq | PduType::IcResp => {
                let pfv = u16_of(h, 8);
                if pfv != PFV_1_0 {
                    return Err(PduError::UnsupportedPfv(pfv));
                }
                let pda = byte_of(h, 10);
                if pda > MAX_PDA {
                    return Err(PduError::BadPda(pda));
                }
                let dgst = byte_of(h, 11);
                let (hdgst, ddgst) = (dgst & HDGST_ENABLE != 0, dgst & DDGST_ENABLE != 0);
                if ch.pdu_type == PduType::IcReq {
                    Pdu::IcReq(IcReq { pfv, hpda: pda, hdgst, ddgst, maxr2t: u32_of(h, 12) })
                } else {
                    let maxh2cdata = u32_of(h, 12);
                    if !valid_maxh2cdata(maxh2cdata) {
                        return Err(PduError::BadMaxH2cData(maxh2cdata));
                    }
                    Pdu::IcResp(IcResp { pfv, cpda: pda, hdgst, ddgst, maxh2cdata })
                }
            }
            PduType::H2cTermReq => Pdu::H2cTermReq(TermReq { fes: u16_of(h, 8), fei: u32_of(h, 10) }),
            PduType::C2hTermReq => Pdu::C2hTermReq(TermReq { fes: u16_of(h, 8), fei: u32_of(h, 10) }),
            PduType::CapsuleCmd => Pdu::CapsuleCmd(Command::parse(h.get(8..).unwrap_or(&[])).ok_or(PduError::BadHlen { pdu_type: ch.pdu_type, hlen: ch.hlen })?),
            PduType::CapsuleResp => Pdu::CapsuleResp(Completion::parse(h.get(8..).unwrap_or(&[])).ok_or(PduError::BadHlen { pdu_type: ch.pdu_type, hlen: ch.hlen })?),
            PduType::H2cData => {
                let d = H2cData { cccid: u16_of(h, 8), ttag: u16_of(h, 10), datao: u32_of(h, 12), datal: u32_of(h, 16), last: ch.flags & FLAG_LAST_PDU != 0 };
                datal_matches(d.datal)?;
                Pdu::H2cData(d)
            }
            PduType::C2hData => {
                let d = C2hData { cccid: u16_of(h, 8), datao: u32_of(h, 12), datal: u32_of(h, 16), last: ch.flags & FLAG_LAST_PDU != 0, success: ch.flags & FLAG_SUCCESS != 0 };
                datal_matches(d.datal)?;
                Pdu::C2hData(d)
            }
            PduType::R2t => {
                let r = R2t { cccid: u16_of(h, 8), ttag: u16_of(h, 10), r2to: u32_of(h, 12), r2tl: u32_of(h, 16) };
                if r.r2tl == 0 {
                    return Err(PduError::ZeroR2tl);
                }
                Pdu::R2t(r)
            }
        })
    }

    /// FLAGS bits this PDU sets itself (LAST_PDU, SUCCESS).
    fn own_flags(&self) -> u8 {
        match self {
            Pdu::H2cData(d) if d.last => FLAG_LAST_PDU,
            Pdu::C2hData(d) => (if d.last { FLAG_LAST_PDU } else { 0 }) | (if d.success { FLAG_SUCCESS } else { 0 }),
            _ => 0,
        }
    }

    /// Writes the type-specific fields into the header `h` (HLEN bytes).
    fn encode(&self, h: &mut [u8]) -> Result<(), EmitError> {
        use crate::net::nvmf_wire::bytes::{put, put_u16, put_u32};
        match self {
            Pdu::IcReq(r) => {
                if r.hpda > MAX_PDA {
                    return Err(EmitError::BadPda(r.hpda));
                }
                put_u16(h, 8, r.pfv);
                h[10] = r.hpda;
                h[11] = dgst_byte(r.hdgst, r.ddgst);
                put_u32(h, 12, r.maxr2t);
            }
            Pdu::IcResp(r) => {
                if r.cpda > MAX_PDA {
                    return Err(EmitError::BadPda(r.cpda));
                }
                if !valid_maxh2cdata(r.maxh2cdata) {
                    return Err(EmitError::BadMaxH2cData(r.maxh2cdata));
                }
                put_u16(h, 8, r.pfv);
                h[10] = r.cpda;
                h[11] = dgst_byte(r.hdgst, r.ddgst);
                put_u32(h, 12, r.maxh2cdata);
            }
            Pdu::H2cTermReq(t) | Pdu::C2hTermReq(t) => {
                put_u16(h, 8, t.fes);
                put_u32(h, 10, t.fei);
            }
            Pdu::CapsuleCmd(c) => {
                put(h, 8, &c.0);
            }
            Pdu::CapsuleResp(c) => {
                put(h, 8, &c.to_bytes());
            }
            Pdu::H2cData(d) => {
                put_u16(h, 8, d.cccid);
                put_u16(h, 10, d.ttag);
                put_u32(h, 12, d.datao);
                put_u32(h, 16, d.datal);
            }
            Pdu::C2hData(d) => {
                put_u16(h, 8, d.cccid);
                put_u32(h, 12, d.datao);
                put_u32(h, 16, d.datal);
            }
            Pdu::R2t(r) => {
                put_u16(h, 8, r.cccid);
                put_u16(h, 10, r.ttag);
                put_u32(h, 12, r.r2to);
                put_u32(h, 16, r.r2tl);
            }
        }
        Ok(())
    }
}

/// Takes one PDU from the start of `b` (the bytes received so far).
/// `Ok(None)`: the PDU is not complete yet. Checks the common header
/// ([`CommonHeader::parse`]), the header digest, the type's fields (PFV,
/// PDA, MAXH2CDATA, DATAL, R2TL) and computes the data digest.
pub fn parse<'a>(b: &'a [u8], cfg: &RxConfig) -> Result<Option<Received<'a>>, PduError> {
    let Some(ch) = CommonHeader::parse(b, cfg)? else { return Ok(None) };
    let (hlen, header_len, len) = (usize::from(ch.hlen), ch.header_len(), ch.plen as usize);
    if b.len() < header_len {
        return Ok(None);
    }
    if ch.flags & FLAG_HDGSTF != 0 && crc32c(&b[..hlen]).to_le_bytes() != b[hlen..header_len] {
        return Err(PduError::HeaderDigest);
    }
    let span = ch.data_span();
    let carried = span.map_or(0, |(_, n, _)| n);
    let pdu = Pdu::decode(&ch, &b[..hlen], carried)?;
    let Some(whole) = b.get(..len) else { return Ok(None) };
    let (data, data_digest_ok) = match span {
        Some((start, n, dd)) => {
            let data = whole.get(start..start + n).unwrap_or(&[]);
            let ok = dd.then(|| whole.get(start + n..start + n + DIGEST_LEN) == Some(&digest_bytes(data)[..]));
            (data, ok)
        }
        None => (&[][..], None),
    };
    Ok(Some(Received { pdu, header: ch, len, data, data_digest_ok }))
}

/// Appends the whole PDU `pdu` carrying `data` to `out`: header (with
/// HDGSTF/DDGSTF as `cfg` negotiated, PDO aligned to the peer's PDA),
/// header digest, padding, data, data digest. TermReq error data follows
/// the header without digests.
pub fn emit(pdu: &Pdu, data: &[u8], cfg: &TxConfig, out: &mut Vec<u8>) -> Result<(), EmitError> {
    let t = pdu.pdu_type();
    let hlen = usize::from(t.hlen());
    if !data.is_empty() && !t.has_data() && !t.is_term() {
        return Err(EmitError::DataNotAllowed);
    }
    match pdu {
        Pdu::H2cData(H2cData { datal, .. }) | Pdu::C2hData(C2hData { datal, .. }) if *datal as usize != data.len() => {
            return Err(EmitError::DatalMismatch { datal: *datal, given: data.len() });
        }
        _ => {}
    }
    let mut flags = pdu.own_flags();
    let (header_len, pdo, plen);
    if t.is_term() {
        if data.len() > TERM_MAX_DATA {
            return Err(EmitError::TooMuchErrorData);
        }
        (header_len, pdo, plen) = (hlen, 0, hlen + data.len());
    } else {
        let hd = t.has_hdgst() && cfg.digests.header;
        let dd = t.has_data() && cfg.digests.data && !data.is_empty();
        flags |= if hd { FLAG_HDGSTF } else { 0 } | if dd { FLAG_DDGSTF } else { 0 };
        header_len = hlen + if hd { DIGEST_LEN } else { 0 };
        if data.is_empty() {
            (pdo, plen) = (0, header_len);
        } else {
            let align = if cfg.pda > 0 { pda_bytes(cfg.pda) } else { 1 };
            pdo = header_len.div_ceil(align) * align;
            plen = pdo + data.len() + if dd { DIGEST_LEN } else { 0 };
        }
    }
    let (Ok(pdo8), Ok(plen32)) = (u8::try_from(pdo), u32::try_from(plen)) else { return Err(EmitError::TooLong) };
    let ch = CommonHeader { pdu_type: t, flags, hlen: t.hlen(), pdo: pdo8, plen: plen32 };
    let start = out.len();
    out.resize(start + hlen, 0);
    out[start..start + COMMON_HEADER_LEN].copy_from_slice(&ch.to_bytes());
    if let Err(e) = pdu.encode(&mut out[start..start + hlen]) {
        out.truncate(start);
        return Err(e);
    }
    if header_len > hlen {
        let d = digest_bytes(&out[start..start + hlen]);
        out.extend_from_slice(&d);
    }
    out.resize(start + pdo.max(header_len), 0);
    out.extend_from_slice(data);
    if flags & FLAG_DDGSTF != 0 {
        out.extend_from_slice(&digest_bytes(data));
    }
    debug_assert_eq!(out.len() - start, plen);
    Ok(())
}

/// The TermReq to send for a rejected PDU: FES, FEI and the start of the
/// offending PDU (at most 128 bytes) as error data.
pub fn term_req_for(e: &PduError, offending: &[u8]) -> (TermReq, Vec<u8>) {
    let n = offending.len().min(TERM_MAX_DATA);
    (TermReq { fes: e.fes().code(), fei: e.fei() }, offending[..n].to_vec())
}
