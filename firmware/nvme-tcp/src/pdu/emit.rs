//! Writing PDU headers: common header with PLEN computed from the data
//! length and digests, the type's fields, the header digest and zero
//! padding up to the PDO the peer's alignment asks for (NVMe/TCP
//! Transport 1.0 §3.6.1, §3.6.2.2-3: alignment is (PDA + 1) * 4 bytes).

use super::common::{CommonHeader, TERM_MAX_DATA};
use super::config::{pda_bytes, TxConfig, MAX_PDA};
use super::error::EmitError;
use super::kind::{PduType, DDGSTF, HDGSTF};
use super::{Pdu, TermReq};
use crate::digest::{crc32c, to_wire};

impl Pdu {
    /// Writes this PDU's header into `buf` for a PDU with `data_len` data
    /// bytes, and returns the bytes written: HLEN, the header digest when
    /// `cfg` enables it, and zero padding up to PDO when there is data.
    /// The caller then sends `data_len` data bytes and, when `cfg` enables
    /// data digests and `data_len > 0`, their 4-byte CRC32C.
    ///
    /// PLEN = returned + data_len + (4 if a data digest follows).
    ///
    /// IC and TermReq PDUs never get digests or padding; TermReq error
    /// data (at most 128 bytes) follows the header directly.
    pub fn emit(&self, data_len: u32, cfg: &TxConfig, buf: &mut [u8]) -> Result<usize, EmitError> {
        emit_with(self.pdu_type(), self.type_flags()?, data_len, cfg, buf, |h| match self {
            Pdu::IcReq(p) => Ok(p.encode(h)?),
            Pdu::IcResp(p) => Ok(p.encode(h)?),
            Pdu::H2cTermReq(p) | Pdu::C2hTermReq(p) => {
                p.encode(h);
                Ok(())
            }
            Pdu::CapsuleCmd(p) => {
                p.encode(h);
                Ok(())
            }
            Pdu::CapsuleResp(p) => {
                p.encode(h);
                Ok(())
            }
            Pdu::H2cData(p) => {
                check_datal(p.datal, data_len)?;
                p.encode(h);
                Ok(())
            }
            Pdu::C2hData(p) => {
                check_datal(p.datal, data_len)?;
                p.encode(h);
                Ok(())
            }
            Pdu::R2t(p) => {
                if p.r2tl == 0 {
                    return Err(EmitError::ZeroR2tLength);
                }
                p.encode(h);
                Ok(())
            }
        })
    }

    /// FLAGS bits that belong to the type's fields (LAST_PDU, SUCCESS).
    fn type_flags(&self) -> Result<u8, EmitError> {
        Ok(match self {
            Pdu::H2cData(p) => p.flags(),
            Pdu::C2hData(p) => {
                if p.success && !p.last {
                    return Err(EmitError::SuccessWithoutLast);
                }
                p.flags()
            }
            _ => 0,
        })
    }
}

/// [`Pdu::emit`] for a PDU of type `t` whose type-specific fields
/// `encode` writes into the header (`type_flags`: their FLAGS bits): the
/// common header, padding, digests and checks, without building a [`Pdu`]
/// (a capsule's 64-byte SQE is copied once, straight into `buf`).
pub(crate) fn emit_with(t: PduType, type_flags: u8, data_len: u32, cfg: &TxConfig, buf: &mut [u8], encode: impl FnOnce(&mut [u8]) -> Result<(), EmitError>) -> Result<usize, EmitError> {
    let hlen = t.hlen();
    let mut flags = type_flags;
    let mut pdo: u32 = 0;
    let hd: u32 = if t.takes_hdgst() && cfg.digests.header { 4 } else { 0 };
    let base = u32::from(hlen) + hd;
    let plen: u32;
    let written: u32;
    if t.is_term() {
        if data_len > TERM_MAX_DATA {
            return Err(EmitError::TooMuchErrorData);
        }
        plen = base + data_len;
        written = base;
    } else if t.takes_data() && data_len > 0 {
        if cfg.pda > MAX_PDA {
            return Err(EmitError::BadPda(cfg.pda));
        }
        pdo = base.next_multiple_of(pda_bytes(cfg.pda));
        let dd = if cfg.digests.data { 4 } else { 0 };
        if cfg.digests.data {
            flags |= DDGSTF;
        }
        plen = pdo.checked_add(data_len).and_then(|p| p.checked_add(dd)).ok_or(EmitError::TooLong)?;
        written = pdo;
    } else {
        if data_len > 0 {
            return Err(EmitError::DataNotAllowed);
        }
        plen = base;
        written = base;
    }
    if hd != 0 {
        flags |= HDGSTF;
    }
    let n = written as usize;
    let out = buf.get_mut(..n).ok_or(EmitError::BufferTooSmall { need: n })?;
    out.fill(0);
    // PDO is at most 76 rounded up to 128: it fits the byte.
    let ch = CommonHeader { pdu_type: t, flags, hlen, pdo: pdo as u8, plen };
    ch.write(out);
    let h = &mut out[..usize::from(hlen)];
    encode(h)?;
    if hd != 0 {
        let hl = usize::from(hlen);
        let d = to_wire(crc32c(&out[..hl]));
        out[hl..hl + 4].copy_from_slice(&d);
    }
    Ok(n)
}

fn check_datal(datal: u32, data_len: u32) -> Result<(), EmitError> {
    if datal == 0 {
        return Err(EmitError::MissingData);
    }
    if datal != data_len {
        return Err(EmitError::DatalMismatch { datal, data_len });
    }
    Ok(())
}

impl TermReq {
    /// Writes a complete H2CTermReq (`to_controller`) or C2HTermReq with
    /// the first 128 bytes at most of `offending_pdu` as error data, and
    /// returns the PDU length.
    pub fn emit_with_data(
        &self,
        to_controller: bool,
        offending_pdu: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, EmitError> {
        let data = TermReq::error_data(offending_pdu);
        let pdu = if to_controller { Pdu::H2cTermReq(*self) } else { Pdu::C2hTermReq(*self) };
        let need = usize::from(PduType::H2cTermReq.hlen()) + data.len();
        if buf.len() < need {
            return Err(EmitError::BufferTooSmall { need });
        }
        let n = pdu.emit(data.len() as u32, &TxConfig::PLAIN, buf)?;
        buf[n..need].copy_from_slice(data);
        Ok(need)
    }
}
