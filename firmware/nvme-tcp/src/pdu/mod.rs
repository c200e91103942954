//! NVMe/TCP PDUs (NVMe/TCP Transport 1.0 §3.6): typed headers with parse
//! and emit, for a receiver that reads a TCP byte stream.
//!
//! Receiving one PDU:
//! 1. Read 8 bytes; [`header_total_len`] checks the common header and says
//!    how many header bytes (HLEN + header digest) the PDU has.
//! 2. Read those; [`parse_header`] verifies the header digest and returns
//!    the typed [`Pdu`] and, when it carries data, a [`DataSpan`] (PDO,
//!    length, padding, data digest), so the payload can be consumed in
//!    place. Check the data digest with [`crate::digest::Crc32c`].
//! 3. On an error, send the peer a TermReq built from
//!    [`PduError::term_req`] with [`TermReq::error_data`] of the header,
//!    then close the connection.
//!
//! Sending: [`Pdu::emit`] writes the header, header digest and alignment
//! padding; the caller appends the data and its digest.

mod capsule;
mod common;
mod config;
mod data;
mod emit;
mod error;
mod ic;
mod kind;
mod span;
mod term;

#[cfg(test)]
mod tests;

pub use capsule::{CapsuleCmd, CapsuleResp};
pub use common::{header_total_len, CommonHeader, TERM_MAX_DATA};
pub(crate) use emit::emit_with;
pub use config::{pda_bytes, Digests, RxConfig, TxConfig, MAX_PDA};
pub use data::{C2hData, H2cData, R2t};
pub use error::{offset, EmitError, Fes, PduError};
pub use ic::{IcReq, IcResp, MIN_MAXH2CDATA};
pub use kind::{Direction, PduType, Role, CH_LEN, DDGSTF, HDGSTF, LAST_PDU, SUCCESS};
pub use span::DataSpan;
pub use term::TermReq;

use crate::digest::{crc32c, from_wire};

/// Longest PDU header including its digest (ICReq/ICResp: 128, no digest;
/// CapsuleCmd: 72 + 4). A stream receiver's header scratch buffer needs
/// this many bytes.
pub const MAX_HEADER_LEN: usize = 128;

/// A PDU header, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pdu {
    IcReq(IcReq),
    IcResp(IcResp),
    H2cTermReq(TermReq),
    C2hTermReq(TermReq),
    CapsuleCmd(CapsuleCmd),
    CapsuleResp(CapsuleResp),
    H2cData(H2cData),
    C2hData(C2hData),
    R2t(R2t),
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
}

/// A parsed PDU header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Received {
    pub pdu: Pdu,
    /// PLEN: total PDU bytes, header included.
    pub plen: u32,
    /// Header bytes consumed (HLEN + header digest).
    pub header_len: u32,
    /// The data (in-capsule data, H2C/C2H data or TermReq error data).
    pub data: Option<DataSpan>,
}

/// Parses a PDU header from `b`, which holds at least
/// [`header_total_len`] bytes (extra bytes after the header are ignored):
/// checks the common header ([`CommonHeader::parse`]), verifies the
/// header digest when present, then decodes and checks the type's fields
/// (PFV, PDA, MAXH2CDATA, DATAL against the data length, R2TL).
pub fn parse_header(b: &[u8], cfg: &RxConfig) -> Result<Received, PduError> {
    parse_after_common(&CommonHeader::parse(b, cfg)?, b)
}

/// [`parse_header`] for a caller that already parsed and checked the
/// common header `ch` of `b` (to learn how long the header is).
pub fn parse_after_common(ch: &CommonHeader, b: &[u8]) -> Result<Received, PduError> {
    let total = ch.header_total_len();
    let hlen = usize::from(ch.hlen);
    let h = b.get(..total).ok_or(PduError::Truncated { need: total })?;
    if ch.hdgst() {
        let computed = crc32c(&h[..hlen]);
        let received = from_wire([h[hlen], h[hlen + 1], h[hlen + 2], h[hlen + 3]]);
        if computed != received {
            return Err(PduError::HeaderDigest { computed, received });
        }
    }
    let data = ch.data_span();
    let data_len = data.map_or(0, |d| d.len);
    let pdu = match ch.pdu_type {
        PduType::IcReq => Pdu::IcReq(IcReq::decode(h)?),
        PduType::IcResp => Pdu::IcResp(IcResp::decode(h)?),
        PduType::H2cTermReq => Pdu::H2cTermReq(TermReq::decode(h)),
        PduType::C2hTermReq => Pdu::C2hTermReq(TermReq::decode(h)),
        PduType::CapsuleCmd => Pdu::CapsuleCmd(CapsuleCmd::decode(h)),
        PduType::CapsuleResp => Pdu::CapsuleResp(CapsuleResp::decode(h)),
        PduType::H2cData => Pdu::H2cData(H2cData::decode(h, ch, data_len)?),
        PduType::C2hData => Pdu::C2hData(C2hData::decode(h, ch, data_len)?),
        PduType::R2t => Pdu::R2t(R2t::decode(h)?),
    };
    Ok(Received { pdu, plen: ch.plen, header_len: total as u32, data })
}
