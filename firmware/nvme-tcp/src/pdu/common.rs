//! The 8-byte common header (NVMe/TCP Transport 1.0 §3.6.2.1)
//! and every check that needs only it: type, direction, connection phase,
//! HLEN, digest flags, PLEN and PDO. A stream receiver parses the first 8
//! bytes, learns how many header bytes follow, and where the data lies.

use super::config::{pda_bytes, RxConfig};
use super::error::PduError;
use super::kind::{PduType, CH_LEN, DDGSTF, HDGSTF, LAST_PDU, SUCCESS};
use super::span::DataSpan;
use crate::le::{put_u32, u32_at};

/// Most TermReq error data: the offending PDU header, up to 128 bytes
/// (NVMe/TCP Transport 1.0 §3.6.2.4: PLEN at most 152).
pub const TERM_MAX_DATA: u32 = 128;

/// A validated common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CommonHeader {
    pub pdu_type: PduType,
    /// FLAGS as received ([`HDGSTF`], [`DDGSTF`], [`LAST_PDU`], [`SUCCESS`]).
    pub flags: u8,
    pub hlen: u8,
    pub pdo: u8,
    pub plen: u32,
}

/// The number of header bytes (HLEN plus header digest) to read in total,
/// from the first 8 bytes of a PDU; see [`CommonHeader::parse`].
pub fn header_total_len(first: &[u8], cfg: &RxConfig) -> Result<usize, PduError> {
    Ok(CommonHeader::parse(first, cfg)?.header_total_len())
}

impl CommonHeader {
    /// Parses and checks the first 8 bytes of `b` (more bytes are ignored).
    ///
    /// Checks, in this order, each with its own error: PDU-Type is known
    /// and travels towards `cfg.role`; the connection phase allows it; HLEN
    /// is the type's fixed value; HDGSTF/DDGSTF agree with the negotiated
    /// digests (IC and TermReq PDUs never have digests); SUCCESS only with
    /// LAST_PDU; PLEN and PDO agree with HLEN, digests and the data rules:
    ///
    /// * IC: PLEN = 128, PDO = 0.
    /// * CapsuleResp, R2T: PLEN = HLEN + HDGST, PDO = 0.
    /// * TermReq: HLEN <= PLEN <= HLEN + 128 (error data follows the
    ///   header directly; PDO is not used and is ignored).
    /// * CapsuleCmd, H2CData, C2HData: without data PLEN = HLEN + HDGST and
    ///   PDO = 0 (H2C/C2HData must have data); with data HLEN + HDGST <=
    ///   PDO, PDO + DDGST < PLEN, and PDO a multiple of the alignment we
    ///   asked for when that is above 4 bytes.
    pub fn parse(b: &[u8], cfg: &RxConfig) -> Result<CommonHeader, PduError> {
        if b.len() < CH_LEN {
            return Err(PduError::Truncated { need: CH_LEN });
        }
        let pdu_type = PduType::from_u8(b[0]).ok_or(PduError::BadType(b[0]))?;
        let ch = CommonHeader { pdu_type, flags: b[1], hlen: b[2], pdo: b[3], plen: u32_at(b, 4) };
        if pdu_type.direction() != cfg.role.receives() {
            return Err(PduError::WrongDirection(pdu_type));
        }
        if pdu_type.is_ic() && cfg.ic_done {
            return Err(PduError::IcRepeated(pdu_type));
        }
        if !pdu_type.is_ic() && !pdu_type.is_term() && !cfg.ic_done {
            return Err(PduError::IcExpected(pdu_type));
        }
        if ch.hlen != pdu_type.hlen() {
            return Err(PduError::BadHlen { pdu_type, hlen: ch.hlen });
        }
        ch.check_header_digest_flag(cfg)?;
        if pdu_type == PduType::C2hData && ch.flags & SUCCESS != 0 && ch.flags & LAST_PDU == 0 {
            return Err(PduError::SuccessWithoutLast);
        }
        ch.check_layout(cfg)?;
        Ok(ch)
    }

    fn check_header_digest_flag(&self, cfg: &RxConfig) -> Result<(), PduError> {
        let hd = self.flags & HDGSTF != 0;
        if !self.pdu_type.takes_hdgst() {
            if hd {
                return Err(PduError::UnexpectedHeaderDigestFlag);
            }
            if self.flags & DDGSTF != 0 {
                return Err(PduError::UnexpectedDataDigestFlag);
            }
            return Ok(());
        }
        match (cfg.digests.header, hd) {
            (true, false) => Err(PduError::MissingHeaderDigestFlag),
            (false, true) => Err(PduError::UnexpectedHeaderDigestFlag),
            _ => Ok(()),
        }
    }

    fn check_layout(&self, cfg: &RxConfig) -> Result<(), PduError> {
        let hlen = u32::from(self.hlen);
        let base = self.header_total_len() as u32;
        let bad_plen = Err(PduError::BadPlen { plen: self.plen });
        let bad_pdo = Err(PduError::BadPdo { pdo: self.pdo });
        let t = self.pdu_type;
        if t.is_term() {
            if self.plen < hlen || self.plen > hlen + TERM_MAX_DATA {
                return bad_plen;
            }
            return Ok(());
        }
        if !t.takes_data() {
            // IC, CapsuleResp, R2T: header only.
            if self.flags & DDGSTF != 0 {
                return Err(PduError::UnexpectedDataDigestFlag);
            }
            if self.plen != base {
                return bad_plen;
            }
            if self.pdo != 0 {
                return bad_pdo;
            }
            return Ok(());
        }
        if self.plen < base {
            return bad_plen;
        }
        if self.plen == base {
            if self.flags & DDGSTF != 0 {
                return Err(PduError::UnexpectedDataDigestFlag);
            }
            if t != PduType::CapsuleCmd {
                return Err(PduError::MissingData);
            }
            if self.pdo != 0 {
                return bad_pdo;
            }
            return Ok(());
        }
        let dd = self.flags & DDGSTF != 0;
        match (cfg.digests.data, dd) {
            (true, false) => return Err(PduError::MissingDataDigestFlag),
            (false, true) => return Err(PduError::UnexpectedDataDigestFlag),
            _ => {}
        }
        let dd_len = if dd { 4 } else { 0 };
        if self.plen <= base + dd_len {
            // Room for the digest but not for a single data byte.
            return bad_plen;
        }
        let pdo = u32::from(self.pdo);
        if pdo < base || pdo + dd_len >= self.plen {
            return bad_pdo;
        }
        let align = pda_bytes(cfg.pda);
        if cfg.pda != 0 && pdo % align != 0 {
            return Err(PduError::MisalignedPdo { pdo: self.pdo, align });
        }
        Ok(())
    }

    /// HDGSTF is set.
    pub fn hdgst(&self) -> bool {
        self.flags & HDGSTF != 0
    }

    /// HLEN plus the header digest: the bytes to read before the header
    /// can be verified and decoded.
    pub fn header_total_len(&self) -> usize {
        usize::from(self.hlen) + if self.hdgst() { 4 } else { 0 }
    }

    /// Where the data lies, for a header that passed [`CommonHeader::parse`];
    /// `None` when the PDU carries no data.
    pub fn data_span(&self) -> Option<DataSpan> {
        let hlen = u32::from(self.hlen);
        if self.pdu_type.is_term() {
            return (self.plen > hlen).then_some(DataSpan {
                offset_from_pdu_start: hlen,
                len: self.plen - hlen,
                ddgst: false,
                pad_before: 0,
            });
        }
        let base = self.header_total_len() as u32;
        if !self.pdu_type.takes_data() || self.plen <= base {
            return None;
        }
        let ddgst = self.flags & DDGSTF != 0;
        let pdo = u32::from(self.pdo);
        let len = self.plen.checked_sub(pdo + if ddgst { 4 } else { 0 })?;
        Some(DataSpan { offset_from_pdu_start: pdo, len, ddgst, pad_before: pdo.saturating_sub(base) })
    }

    /// Writes the 8 bytes. `b` must hold at least 8 bytes.
    pub(crate) fn write(&self, b: &mut [u8]) {
        b[0] = self.pdu_type as u8;
        b[1] = self.flags;
        b[2] = self.hlen;
        b[3] = self.pdo;
        put_u32(b, 4, self.plen);
    }
}
