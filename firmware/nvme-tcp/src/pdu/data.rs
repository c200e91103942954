//! Data transfer PDUs: H2CData (NVMe/TCP Transport 1.0 §3.6.2.8),
//! C2HData (§3.6.2.9) and R2T (§3.6.2.10), plus the range checks a
//! receiver applies against the command's transfer (FES 04h, 05h).

use super::common::CommonHeader;
use super::error::PduError;
use super::kind::{LAST_PDU, SUCCESS};
use crate::le::{put_u16, put_u32, u16_at, u32_at};

/// Host to Controller Data header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct H2cData {
    /// Command Capsule CID.
    pub cccid: u16,
    /// Transfer Tag from the R2T this answers (or 0 for a first burst).
    pub ttag: u16,
    /// Offset of this data in the command's data.
    pub datao: u32,
    /// Data bytes in this PDU (must equal the PDU's data length).
    pub datal: u32,
    /// LAST_PDU: the final H2CData of this R2T.
    pub last: bool,
}

/// Controller to Host Data header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct C2hData {
    pub cccid: u16,
    pub datao: u32,
    pub datal: u32,
    /// LAST_PDU: the final C2HData of the command.
    pub last: bool,
    /// SUCCESS: the command completed successfully, no CapsuleResp
    /// follows (only with `last`).
    pub success: bool,
}

/// Ready to Transfer header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct R2t {
    pub cccid: u16,
    /// Transfer Tag the host echoes in its H2CData PDUs.
    pub ttag: u16,
    /// Offset of the requested data.
    pub r2to: u32,
    /// Bytes requested (non-zero).
    pub r2tl: u32,
}

fn datal_matches(datal: u32, data_len: u32) -> Result<(), PduError> {
    if datal != data_len {
        return Err(PduError::DatalMismatch { datal, data_len });
    }
    Ok(())
}

impl H2cData {
    pub(crate) fn decode(h: &[u8], ch: &CommonHeader, data_len: u32) -> Result<H2cData, PduError> {
        let d = H2cData {
            cccid: u16_at(h, 8),
            ttag: u16_at(h, 10),
            datao: u32_at(h, 12),
            datal: u32_at(h, 16),
            last: ch.flags & LAST_PDU != 0,
        };
        datal_matches(d.datal, data_len)?;
        Ok(d)
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        put_u16(h, 8, self.cccid);
        put_u16(h, 10, self.ttag);
        put_u32(h, 12, self.datao);
        put_u32(h, 16, self.datal);
    }

    pub(crate) fn flags(&self) -> u8 {
        if self.last {
            LAST_PDU
        } else {
            0
        }
    }

    /// Checks this PDU against the transfer it answers: at most
    /// `maxh2cdata` bytes (FES Data Transfer Limit Exceeded) and inside
    /// `[window_offset, window_offset + window_len)`, the R2T's range or the
    /// whole command's data (FES Data Transfer Out of Range).
    pub fn check(&self, maxh2cdata: u32, window_offset: u32, window_len: u32) -> Result<(), PduError> {
        if self.datal > maxh2cdata {
            return Err(PduError::DataLimitExceeded { len: self.datal, limit: maxh2cdata });
        }
        check_window(self.datao, self.datal, window_offset, window_len)
    }
}

impl C2hData {
    pub(crate) fn decode(h: &[u8], ch: &CommonHeader, data_len: u32) -> Result<C2hData, PduError> {
        let d = C2hData {
            cccid: u16_at(h, 8),
            datao: u32_at(h, 12),
            datal: u32_at(h, 16),
            last: ch.flags & LAST_PDU != 0,
            success: ch.flags & SUCCESS != 0,
        };
        datal_matches(d.datal, data_len)?;
        Ok(d)
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        put_u16(h, 8, self.cccid);
        put_u32(h, 12, self.datao);
        put_u32(h, 16, self.datal);
    }

    pub(crate) fn flags(&self) -> u8 {
        (if self.last { LAST_PDU } else { 0 }) | (if self.success { SUCCESS } else { 0 })
    }

    /// Checks this PDU lies inside the command's `total` data bytes (FES
    /// Data Transfer Out of Range).
    pub fn check(&self, total: u32) -> Result<(), PduError> {
        check_window(self.datao, self.datal, 0, total)
    }
}

impl R2t {
    pub(crate) fn decode(h: &[u8]) -> Result<R2t, PduError> {
        let r = R2t { cccid: u16_at(h, 8), ttag: u16_at(h, 10), r2to: u32_at(h, 12), r2tl: u32_at(h, 16) };
        if r.r2tl == 0 {
            return Err(PduError::ZeroR2tLength);
        }
        Ok(r)
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        put_u16(h, 8, self.cccid);
        put_u16(h, 10, self.ttag);
        put_u32(h, 12, self.r2to);
        put_u32(h, 16, self.r2tl);
    }

    /// Checks the requested range lies inside the command's `total` data
    /// bytes (FES Data Transfer Out of Range).
    pub fn check(&self, total: u32) -> Result<(), PduError> {
        check_window(self.r2to, self.r2tl, 0, total)
    }
}

/// `[offset, offset + len)` inside `[win_off, win_off + win_len)`, without
/// overflow.
fn check_window(offset: u32, len: u32, win_off: u32, win_len: u32) -> Result<(), PduError> {
    let end = u64::from(offset) + u64::from(len);
    let win_end = u64::from(win_off) + u64::from(win_len);
    if offset < win_off || end > win_end {
        return Err(PduError::DataOutOfRange { offset, len, limit: win_len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::error::Fes;

    #[test]
    fn h2c_limit_and_window() {
        let d = H2cData { cccid: 1, ttag: 2, datao: 8192, datal: 4096, last: true };
        assert_eq!(d.check(4096, 8192, 4096), Ok(()));
        assert_eq!(d.check(4096, 0, 16384), Ok(()));
        let e = d.check(2048, 8192, 4096).unwrap_err();
        assert_eq!(e, PduError::DataLimitExceeded { len: 4096, limit: 2048 });
        assert_eq!(e.fes(), Some(Fes::DataLimitExceeded));
        // Starts before the R2T window.
        let e = d.check(65536, 8193, 8192).unwrap_err();
        assert_eq!(e.fes(), Some(Fes::DataOutOfRange));
        // Ends after it.
        assert!(d.check(65536, 8192, 4095).is_err());
    }

    #[test]
    fn c2h_and_r2t_ranges_do_not_overflow() {
        let d = C2hData { cccid: 0, datao: u32::MAX, datal: 2, last: true, success: false };
        assert_eq!(d.check(u32::MAX).unwrap_err().fes(), Some(Fes::DataOutOfRange));
        let r = R2t { cccid: 0, ttag: 0, r2to: 4096, r2tl: 4096 };
        assert_eq!(r.check(8192), Ok(()));
        assert!(r.check(8191).is_err());
    }
}
