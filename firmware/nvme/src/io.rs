//! NVM Command Set I/O commands (NVM Command Set 1.0 §3.2, §3.3).

use crate::sqe::{Psdt, Sqe};
use crate::status::Status;
use crate::MAX_TRANSFER;

pub const OPC_FLUSH: u8 = 0x00;
pub const OPC_WRITE: u8 = 0x01;
pub const OPC_READ: u8 = 0x02;
pub const OPC_COMPARE: u8 = 0x05;
pub const OPC_WRITE_ZEROES: u8 = 0x08;
pub const OPC_DSM: u8 = 0x09;

/// I/O operations the controller implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    Read,
    Write,
    Compare,
    Flush,
    WriteZeroes,
    /// Dataset Management; `ranges` range descriptors, `deallocate` = AD.
    Dsm { ranges: u16, deallocate: bool },
}

/// Geometry of an active namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    pub lba_shift: u8,
}

/// A decoded, checked I/O command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoCmd {
    pub op: Op,
    pub nsid: u32,
    pub slba: u64,
    /// Blocks (not 0's based).
    pub nlb: u32,
    /// Bytes moved through the data pointer.
    pub data_len: u32,
    pub sgl: bool,
}

/// Decodes and checks an I/O command against namespace geometry.
pub fn decode(sqe: &Sqe, ns: impl Fn(u32) -> Option<Geometry>) -> Result<IoCmd, Status> {
    let op = match sqe.opcode() {
        OPC_READ => Op::Read,
        OPC_WRITE => Op::Write,
        OPC_COMPARE => Op::Compare,
        OPC_FLUSH => Op::Flush,
        OPC_WRITE_ZEROES => Op::WriteZeroes,
        OPC_DSM => Op::Dsm { ranges: (sqe.cdw10() & 0xff) as u16 + 1, deallocate: sqe.cdw11() & (1 << 2) != 0 },
        _ => return Err(Status::INVALID_OPCODE),
    };
    if sqe.fuse() != 0 {
        // Fused operations are not supported (FUSES = 0).
        return Err(Status::INVALID_FIELD);
    }
    let sgl = match sqe.psdt() {
        Psdt::Prp => false,
        Psdt::Sgl => true,
        _ => return Err(Status::INVALID_FIELD),
    };
    let nsid = sqe.nsid();
    if op == Op::Flush && nsid == 0xffff_ffff {
        return Ok(IoCmd { op, nsid, slba: 0, nlb: 0, data_len: 0, sgl });
    }
    let g = ns(nsid).ok_or(Status::INVALID_NAMESPACE)?;
    match op {
        Op::Flush => Ok(IoCmd { op, nsid, slba: 0, nlb: 0, data_len: 0, sgl }),
        Op::Dsm { ranges, .. } => Ok(IoCmd { op, nsid, slba: 0, nlb: 0, data_len: u32::from(ranges) * 16, sgl }),
        _ => {
            let slba = u64::from(sqe.cdw10()) | u64::from(sqe.cdw11()) << 32;
            let nlb = (sqe.cdw12() & 0xffff) + 1;
            let end = slba.checked_add(u64::from(nlb)).ok_or(Status::LBA_OUT_OF_RANGE)?;
            if end > g.blocks {
                return Err(Status::LBA_OUT_OF_RANGE);
            }
            let bytes = u64::from(nlb) << g.lba_shift;
            let data_len = if op == Op::WriteZeroes {
                0
            } else {
                if bytes > MAX_TRANSFER {
                    return Err(Status::INVALID_FIELD);
                }
                bytes as u32
            };
            Ok(IoCmd { op, nsid, slba, nlb, data_len, sgl })
        }
    }
}

/// One Dataset Management range (figure 39): (starting LBA, blocks).
pub fn dsm_range(entry: &[u8]) -> (u64, u32) {
    let nlb = u32::from_le_bytes(entry[4..8].try_into().unwrap());
    let slba = u64::from_le_bytes(entry[8..16].try_into().unwrap());
    (slba, nlb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(opc: u8, nsid: u32, slba: u64, nlb0: u32) -> Sqe {
        let mut s = Sqe::ZERO;
        s.0[0] = opc;
        s.set_dw(1, nsid);
        s.set_dw(10, slba as u32);
        s.set_dw(11, (slba >> 32) as u32);
        s.set_dw(12, nlb0);
        s
    }

    fn ns(n: u32) -> Option<Geometry> {
        (n == 1).then_some(Geometry { blocks: 1000, lba_shift: 9 })
    }

    #[test]
    fn read_write_checks() {
        let c = decode(&io(OPC_READ, 1, 10, 7), ns).unwrap();
        assert_eq!((c.op, c.slba, c.nlb, c.data_len), (Op::Read, 10, 8, 4096));
        assert_eq!(decode(&io(OPC_WRITE, 1, 996, 3), ns).unwrap().nlb, 4, "last blocks");
        assert_eq!(decode(&io(OPC_WRITE, 1, 997, 3), ns), Err(Status::LBA_OUT_OF_RANGE));
        assert_eq!(decode(&io(OPC_READ, 1, u64::MAX, 0), ns), Err(Status::LBA_OUT_OF_RANGE), "wraps");
        assert_eq!(decode(&io(OPC_READ, 2, 0, 0), ns), Err(Status::INVALID_NAMESPACE));
        assert_eq!(decode(&io(0x7e, 1, 0, 0), ns), Err(Status::INVALID_OPCODE));
        assert_eq!(decode(&io(OPC_READ, 1, 0, 256), ns), Err(Status::INVALID_FIELD), "257 blocks > MDTS");
        let mut fused = io(OPC_READ, 1, 0, 0);
        fused.0[1] = 1;
        assert_eq!(decode(&fused, ns), Err(Status::INVALID_FIELD));
        let mut psdt = io(OPC_READ, 1, 0, 0);
        psdt.0[1] = 3 << 6;
        assert_eq!(decode(&psdt, ns), Err(Status::INVALID_FIELD));
    }

    #[test]
    fn other_commands() {
        assert_eq!(decode(&io(OPC_FLUSH, 0xffff_ffff, 0, 0), ns).unwrap().op, Op::Flush);
        assert_eq!(decode(&io(OPC_FLUSH, 3, 0, 0), ns), Err(Status::INVALID_NAMESPACE));
        let wz = decode(&io(OPC_WRITE_ZEROES, 1, 0, 0xffff), |_| Some(Geometry { blocks: 1 << 20, lba_shift: 9 })).unwrap();
        assert_eq!((wz.nlb, wz.data_len), (65536, 0), "write zeroes has no data and no MDTS limit");
        let mut dsm = io(OPC_DSM, 1, 0, 0);
        dsm.set_dw(10, 2);
        dsm.set_dw(11, 4);
        let c = decode(&dsm, ns).unwrap();
        assert_eq!((c.op, c.data_len), (Op::Dsm { ranges: 3, deallocate: true }, 48));
        let mut e = [0u8; 16];
        e[4..8].copy_from_slice(&8u32.to_le_bytes());
        e[8..16].copy_from_slice(&100u64.to_le_bytes());
        assert_eq!(dsm_range(&e), (100, 8));
    }
}
