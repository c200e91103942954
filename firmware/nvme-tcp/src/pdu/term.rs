//! Terminate Connection Request PDUs, H2CTermReq and C2HTermReq (NVMe/TCP
//! Transport 1.0 §3.6.2.4; §3.6.2.5): the fatal
//! error status sent before a connection is closed, followed by up to 128
//! bytes of the offending PDU header.

use super::common::TERM_MAX_DATA;
use super::error::Fes;
use crate::le::{put_u32, u32_at};

/// H2CTermReq/C2HTermReq fields. FES is kept raw so an unknown status from
/// a peer is still logged; [`TermReq::status`] decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TermReq {
    /// Fatal Error Status (bytes 9:8).
    pub fes: u16,
    /// Field Error Information (bytes 13:10).
    pub fei: u32,
}

impl TermReq {
    pub fn new(fes: Fes, fei: u32) -> TermReq {
        TermReq { fes: fes as u16, fei }
    }

    /// The decoded status, when it is one NVMe/TCP 1.0 defines.
    pub fn status(&self) -> Option<Fes> {
        Fes::from_u16(self.fes)
    }

    /// The error data to send: the start of the offending PDU, at most
    /// 128 bytes of it.
    pub fn error_data(offending_pdu: &[u8]) -> &[u8] {
        let n = offending_pdu.len().min(TERM_MAX_DATA as usize);
        &offending_pdu[..n]
    }

    pub(crate) fn decode(h: &[u8]) -> TermReq {
        TermReq { fes: u16::from_le_bytes([h[8], h[9]]), fei: u32_at(h, 10) }
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        h[8..10].copy_from_slice(&self.fes.to_le_bytes());
        put_u32(h, 10, self.fei);
    }
}
