//! The common header (NVMe/TCP Transport 1.0 §3.6.2.1 "PDU Header
//! Format": PDU-Type 0, FLAGS 1, HLEN 2, PDO 3, PLEN 7:4) and the checks
//! a receiver makes with it alone: type and direction, connection phase,
//! the fixed HLEN, the digest flags, and where PLEN and PDO put the
//! header digest, padding, data and data digest:
//!
//! ```text
//! | CH + PSH (HLEN) | HDGST? | PAD (to PDO) | DATA | DDGST? |
//! 0                 HLEN                    PDO           PLEN
//! ```
//!
//! TermReq PDUs carry no digests; their error data follows the header
//! directly and PDO is not used.

use super::config::{pda_bytes, RxConfig};
use super::error::PduError;
use super::kind::{PduType, COMMON_HEADER_LEN, DIGEST_LEN, FLAG_DDGSTF, FLAG_HDGSTF, FLAG_LAST_PDU, FLAG_SUCCESS};
use crate::net::nvmf_wire::bytes::u32_at;

/// Most TermReq error data (PLEN at most HLEN + 128 = 152).
pub const TERM_MAX_DATA: usize = 128;

/// A checked common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonHeader {
    pub pdu_type: PduType,
    pub flags: u8,
    pub hlen: u8,
    pub pdo: u8,
    pub plen: u32,
}

impl CommonHeader {
    /// Parses and checks the first 8 bytes of `b`; `Ok(None)` when fewer
    /// than 8 bytes are there yet.
    pub fn parse(b: &[u8], cfg: &RxConfig) -> Result<Option<CommonHeader>, PduError> {
        if b.len() < COMMON_HEADER_LEN {
            return Ok(None);
        }
        let pdu_type = PduType::from_u8(b[0]).ok_or(PduError::UnknownType(b[0]))?;
        let ch = CommonHeader { pdu_type, flags: b[1], hlen: b[2], pdo: b[3], plen: u32_at(b, 4).unwrap_or(0) };
        if pdu_type.sender() == cfg.role {
            return Err(PduError::WrongDirection(pdu_type));
        }
        if pdu_type.is_ic() && cfg.ic_done {
            return Err(PduError::RepeatedIc(pdu_type));
        }
        if !pdu_type.is_ic() && !pdu_type.is_term() && !cfg.ic_done {
            return Err(PduError::BeforeIc(pdu_type));
        }
        if ch.hlen != pdu_type.hlen() {
            return Err(PduError::BadHlen { pdu_type, hlen: ch.hlen });
        }
        ch.check_flags(cfg)?;
        ch.check_layout(cfg)?;
        Ok(Some(ch))
    }

    fn check_flags(&self, cfg: &RxConfig) -> Result<(), PduError> {
        let t = self.pdu_type;
        let hd = self.flags & FLAG_HDGSTF != 0;
        if !t.has_hdgst() {
            if hd {
                return Err(PduError::HeaderDigestFlag);
            }
            if self.flags & FLAG_DDGSTF != 0 {
                return Err(PduError::DataDigestFlag);
            }
        } else if hd != cfg.digests.header {
            return Err(PduError::HeaderDigestFlag);
        }
        if t == PduType::C2hData && self.flags & FLAG_SUCCESS != 0 && self.flags & FLAG_LAST_PDU == 0 {
            return Err(PduError::SuccessWithoutLast);
        }
        Ok(())
    }

    fn check_layout(&self, cfg: &RxConfig) -> Result<(), PduError> {
        let t = self.pdu_type;
        let plen = self.plen as usize;
        let hlen = usize::from(self.hlen);
        if t.is_term() {
            return if (hlen..=hlen + TERM_MAX_DATA).contains(&plen) { Ok(()) } else { Err(PduError::BadPlen(self.plen)) };
        }
        let header = self.header_len();
        let dd = self.flags & FLAG_DDGSTF != 0;
        if !t.has_data() || plen == header {
            // Header only: IC, CapsuleResp, R2T; a capsule without data.
            if plen != header {
                return Err(PduError::BadPlen(self.plen));
            }
            if dd {
                return Err(PduError::DataDigestFlag);
            }
            if matches!(t, PduType::H2cData | PduType::C2hData) {
                return Err(PduError::NoData);
            }
            return if self.pdo == 0 { Ok(()) } else { Err(PduError::BadPdo(self.pdo)) };
        }
        if plen < header {
            return Err(PduError::BadPlen(self.plen));
        }
        if dd != cfg.digests.data {
            return Err(PduError::DataDigestFlag);
        }
        let digest = if dd { DIGEST_LEN } else { 0 };
        if plen <= header + digest {
            return Err(PduError::BadPlen(self.plen));
        }
        let pdo = usize::from(self.pdo);
        if pdo < header || pdo + digest >= plen {
            return Err(PduError::BadPdo(self.pdo));
        }
        if cfg.pda != 0 && !pdo.is_multiple_of(pda_bytes(cfg.pda)) {
            return Err(PduError::BadPdo(self.pdo));
        }
        Ok(())
    }

    /// HLEN plus the header digest, when there is one.
    pub fn header_len(&self) -> usize {
        usize::from(self.hlen) + if self.flags & FLAG_HDGSTF != 0 { DIGEST_LEN } else { 0 }
    }

    /// Where the data lies in the PDU (start, length) and whether a data
    /// digest follows it; `None` without data. Only for checked headers.
    pub fn data_span(&self) -> Option<(usize, usize, bool)> {
        let plen = self.plen as usize;
        if self.pdu_type.is_term() {
            let hlen = usize::from(self.hlen);
            return (plen > hlen).then_some((hlen, plen - hlen, false));
        }
        if !self.pdu_type.has_data() || plen <= self.header_len() {
            return None;
        }
        let dd = self.flags & FLAG_DDGSTF != 0;
        let start = usize::from(self.pdo);
        let len = plen.checked_sub(start + if dd { DIGEST_LEN } else { 0 })?;
        Some((start, len, dd))
    }

    pub fn to_bytes(&self) -> [u8; COMMON_HEADER_LEN] {
        let p = self.plen.to_le_bytes();
        [self.pdu_type.code(), self.flags, self.hlen, self.pdo, p[0], p[1], p[2], p[3]]
    }
}
