//! Connection setup PDUs: ICReq (NVMe/TCP Transport 1.0 §3.6.2.2) and
//! ICResp (§3.6.2.3). Both are 128 bytes, carry no digests, and negotiate the PDU format version, data alignment,
//! digests and the H2CData/R2T limits.

use super::config::MAX_PDA;
use super::error::{EmitError, PduError};
use crate::consts::PFV_1_0;
use crate::le::{put_u16, put_u32, u16_at, u32_at};

/// DGST bit 0: header digest enable.
const HDGST_ENABLE: u8 = 1 << 0;
/// DGST bit 1: data digest enable.
const DDGST_ENABLE: u8 = 1 << 1;

/// Smallest MAXH2CDATA a controller may advertise (§3.6.2.3).
pub const MIN_MAXH2CDATA: u32 = 4096;

/// Initialize Connection Request, host to controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IcReq {
    /// PDU Format Version (0 = 1.0).
    pub pfv: u16,
    /// Host PDU Data Alignment for C2H data, 0's based dwords (0..=31).
    pub hpda: u8,
    /// Host asks for header digests.
    pub hdgst: bool,
    /// Host asks for data digests.
    pub ddgst: bool,
    /// Outstanding R2Ts per command the host accepts, 0's based.
    pub maxr2t: u32,
}

/// Initialize Connection Response, controller to host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IcResp {
    /// PDU Format Version (0 = 1.0).
    pub pfv: u16,
    /// Controller PDU Data Alignment for H2C data, 0's based dwords.
    pub cpda: u8,
    /// Header digests enabled on the connection.
    pub hdgst: bool,
    /// Data digests enabled on the connection.
    pub ddgst: bool,
    /// Most data bytes in one H2CData PDU (>= 4096, dword multiple).
    pub maxh2cdata: u32,
}

fn dgst_byte(hdgst: bool, ddgst: bool) -> u8 {
    (if hdgst { HDGST_ENABLE } else { 0 }) | (if ddgst { DDGST_ENABLE } else { 0 })
}

fn check_pfv_pda(h: &[u8]) -> Result<(u16, u8), PduError> {
    let pfv = u16_at(h, 8);
    if pfv != PFV_1_0 {
        return Err(PduError::UnsupportedPfv(pfv));
    }
    if h[10] > MAX_PDA {
        return Err(PduError::BadPda(h[10]));
    }
    Ok((pfv, h[10]))
}

impl IcReq {
    /// Decodes a checked 128-byte header.
    pub(crate) fn decode(h: &[u8]) -> Result<IcReq, PduError> {
        let (pfv, hpda) = check_pfv_pda(h)?;
        Ok(IcReq {
            pfv,
            hpda,
            hdgst: h[11] & HDGST_ENABLE != 0,
            ddgst: h[11] & DDGST_ENABLE != 0,
            maxr2t: u32_at(h, 12),
        })
    }

    pub(crate) fn encode(&self, h: &mut [u8]) -> Result<(), EmitError> {
        if self.hpda > MAX_PDA {
            return Err(EmitError::BadPda(self.hpda));
        }
        put_u16(h, 8, self.pfv);
        h[10] = self.hpda;
        h[11] = dgst_byte(self.hdgst, self.ddgst);
        put_u32(h, 12, self.maxr2t);
        Ok(())
    }
}

impl IcResp {
    /// Decodes a checked 128-byte header.
    pub(crate) fn decode(h: &[u8]) -> Result<IcResp, PduError> {
        let (pfv, cpda) = check_pfv_pda(h)?;
        let maxh2cdata = u32_at(h, 12);
        if !valid_maxh2cdata(maxh2cdata) {
            return Err(PduError::BadMaxH2cData(maxh2cdata));
        }
        Ok(IcResp { pfv, cpda, hdgst: h[11] & HDGST_ENABLE != 0, ddgst: h[11] & DDGST_ENABLE != 0, maxh2cdata })
    }

    pub(crate) fn encode(&self, h: &mut [u8]) -> Result<(), EmitError> {
        if self.cpda > MAX_PDA {
            return Err(EmitError::BadPda(self.cpda));
        }
        if !valid_maxh2cdata(self.maxh2cdata) {
            return Err(EmitError::BadMaxH2cData(self.maxh2cdata));
        }
        put_u16(h, 8, self.pfv);
        h[10] = self.cpda;
        h[11] = dgst_byte(self.hdgst, self.ddgst);
        put_u32(h, 12, self.maxh2cdata);
        Ok(())
    }
}

fn valid_maxh2cdata(v: u32) -> bool {
    v >= MIN_MAXH2CDATA && v.is_multiple_of(4)
}
