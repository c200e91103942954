//! The PDU-specific header fields after the common header (NVMe/TCP
//! Transport 1.0 §3.6.2.2 to §3.6.2.10; Linux `struct
//! nvme_tcp_icreq_pdu`, `nvme_tcp_icresp_pdu`, `nvme_tcp_term_pdu`,
//! `nvme_tcp_data_pdu`, `nvme_tcp_r2t_pdu`):
//!
//! | PDU | bytes |
//! |---|---|
//! | ICReq | PFV 9:8, HPDA 10, DGST 11 (bit 0 HDGST_ENABLE, bit 1 DDGST_ENABLE), MAXR2T 15:12, reserved to 127 |
//! | ICResp | PFV 9:8, CPDA 10, DGST 11, MAXH2CDATA 15:12, reserved to 127 |
//! | H2C/C2HTermReq | FES 9:8, FEI 13:10, reserved 23:14, then the error data |
//! | H2CData | CCCID 9:8, TTAG 11:10, DATAO 15:12, DATAL 19:16, reserved 23:20 |
//! | C2HData | CCCID 9:8, reserved 11:10, DATAO 15:12, DATAL 19:16, reserved 23:20 |
//! | R2T | CCCID 9:8, TTAG 11:10, R2TO 15:12, R2TL 19:16, reserved 23:20 |
//!
//! CapsuleCmd and CapsuleResp carry a submission or completion queue
//! entry at byte 8 (see `command.rs`, `completion.rs`).

use crate::net::nvmf_wire::bytes::{u16_at, u32_at};

/// DGST bit 0.
pub const HDGST_ENABLE: u8 = 1 << 0;
/// DGST bit 1.
pub const DDGST_ENABLE: u8 = 1 << 1;
/// The only PDU format version (1.0).
pub const PFV_1_0: u16 = 0;
/// Smallest MAXH2CDATA a controller may offer.
pub const MIN_MAXH2CDATA: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcReq {
    pub pfv: u16,
    /// Host PDU data alignment (0's based dwords) for C2H data.
    pub hpda: u8,
    pub hdgst: bool,
    pub ddgst: bool,
    /// Outstanding R2Ts per command, 0's based.
    pub maxr2t: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcResp {
    pub pfv: u16,
    /// Controller PDU data alignment for H2C data.
    pub cpda: u8,
    pub hdgst: bool,
    pub ddgst: bool,
    /// Most data bytes in one H2CData PDU.
    pub maxh2cdata: u32,
}

/// H2CTermReq / C2HTermReq fields (FES kept raw: a peer may send an
/// unknown one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermReq {
    pub fes: u16,
    pub fei: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2cData {
    pub cccid: u16,
    pub ttag: u16,
    pub datao: u32,
    pub datal: u32,
    pub last: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C2hData {
    pub cccid: u16,
    pub datao: u32,
    pub datal: u32,
    pub last: bool,
    pub success: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct R2t {
    pub cccid: u16,
    pub ttag: u16,
    pub r2to: u32,
    pub r2tl: u32,
}

/// Readers over a header whose length was checked (HLEN bytes); a short
/// slice reads zeros rather than panicking.
pub(super) fn u16_of(h: &[u8], off: usize) -> u16 {
    u16_at(h, off).unwrap_or(0)
}

pub(super) fn u32_of(h: &[u8], off: usize) -> u32 {
    u32_at(h, off).unwrap_or(0)
}

pub(super) fn byte_of(h: &[u8], off: usize) -> u8 {
    h.get(off).copied().unwrap_or(0)
}

pub(super) fn dgst_byte(hdgst: bool, ddgst: bool) -> u8 {
    (if hdgst { HDGST_ENABLE } else { 0 }) | (if ddgst { DDGST_ENABLE } else { 0 })
}

pub(super) fn valid_maxh2cdata(v: u32) -> bool {
    v >= MIN_MAXH2CDATA && v.is_multiple_of(4)
}

impl H2cData {
    /// Checks the data lies in `[window_start, window_start + window_len)`
    /// (the R2T's range, or the rest of the command's data) and is at
    /// most `maxh2cdata` bytes.
    pub fn check(&self, maxh2cdata: u32, window_start: u32, window_len: u32) -> Result<(), super::PduError> {
        if self.datal > maxh2cdata {
            return Err(super::PduError::LimitExceeded { len: self.datal, max: maxh2cdata });
        }
        in_window(self.datao, self.datal, window_start, window_len)
    }
}

impl C2hData {
    /// Checks the data lies inside the command's `total` bytes.
    pub fn check(&self, total: u32) -> Result<(), super::PduError> {
        in_window(self.datao, self.datal, 0, total)
    }
}

fn in_window(off: u32, len: u32, start: u32, wlen: u32) -> Result<(), super::PduError> {
    let end = u64::from(off) + u64::from(len);
    if off < start || end > u64::from(start) + u64::from(wlen) {
        return Err(super::PduError::OutOfRange { offset: off, len });
    }
    Ok(())
}
