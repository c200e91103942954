//! NVM Command Set I/O commands over fabrics (NVM Command Set 1.0 §3.2.4
//! Read, §3.2.6 Write, §3.2.1 Compare, §3.2.3 Dataset Management; NVMe
//! Base 2.0 §7.1 Flush): SLBA in CDW10-11, NLB (0's based) in CDW12 bits
//! 15:0, data by SGL1. Read data always comes by C2HData (transport SGL);
//! data to the target (Write, Compare, DSM range lists) goes in the
//! capsule when it fits the target's in-capsule size (IOCCSZ), else by
//! R2T/H2CData.

use dpu_nvme::io::{OPC_COMPARE, OPC_DSM, OPC_FLUSH, OPC_READ, OPC_WRITE};
use dpu_nvme::Sqe;

use super::{command_sqe, command_sqe_into};
use crate::sgl::Dptr;

fn rw(opcode: u8, cid: u16, nsid: u32, slba: u64, nlb0: u16, dptr: Dptr) -> Sqe {
    let mut s = Sqe::ZERO;
    rw_into(&mut s.0, opcode, cid, nsid, slba, nlb0, dptr);
    s
}

/// A Read, Write or Compare SQE written into 64 zeroed bytes where they
/// lie (a capsule header being written: no SQE value built and copied).
fn rw_into(s: &mut [u8; 64], opcode: u8, cid: u16, nsid: u32, slba: u64, nlb0: u16, dptr: Dptr) {
    command_sqe_into(s, opcode, cid, nsid, dptr);
    s[40..48].copy_from_slice(&slba.to_le_bytes());
    s[48..50].copy_from_slice(&nlb0.to_le_bytes());
}

/// [`read`] into 64 zeroed SQE bytes (see `HostQueue::capsule_with`).
pub fn read_into(s: &mut [u8; 64], cid: u16, nsid: u32, slba: u64, nlb0: u16, data_len: u32) {
    rw_into(s, OPC_READ, cid, nsid, slba, nlb0, Dptr::Transport { len: data_len });
}

/// [`write`] into 64 zeroed SQE bytes (see `HostQueue::capsule_with`).
pub fn write_into(s: &mut [u8; 64], cid: u16, nsid: u32, slba: u64, nlb0: u16, dptr: Dptr) {
    rw_into(s, OPC_WRITE, cid, nsid, slba, nlb0, dptr);
}

/// Read `nlb0 + 1` blocks from `slba`; `data_len` bytes come back.
pub fn read(cid: u16, nsid: u32, slba: u64, nlb0: u16, data_len: u32) -> Sqe {
    rw(OPC_READ, cid, nsid, slba, nlb0, Dptr::Transport { len: data_len })
}

/// Write `nlb0 + 1` blocks at `slba`; `dptr` is in-capsule or transport.
pub fn write(cid: u16, nsid: u32, slba: u64, nlb0: u16, dptr: Dptr) -> Sqe {
    rw(OPC_WRITE, cid, nsid, slba, nlb0, dptr)
}

/// Compare `nlb0 + 1` blocks at `slba` with the data `dptr` describes;
/// a mismatch completes with Compare Failure (SCT 2h, SC 85h).
pub fn compare(cid: u16, nsid: u32, slba: u64, nlb0: u16, dptr: Dptr) -> Sqe {
    rw(OPC_COMPARE, cid, nsid, slba, nlb0, dptr)
}

/// Dataset Management with `nr0 + 1` ranges (16 bytes each, in the data
/// `dptr` describes) and the attributes of CDW11 (bit 2 = deallocate).
pub fn dsm(cid: u16, nsid: u32, nr0: u8, attributes: u32, dptr: Dptr) -> Sqe {
    let mut s = command_sqe(OPC_DSM, cid, nsid, dptr);
    s.set_dw(10, u32::from(nr0));
    s.set_dw(11, attributes);
    s
}

/// Flush the namespace's volatile write cache.
pub fn flush(cid: u16, nsid: u32) -> Sqe {
    command_sqe(OPC_FLUSH, cid, nsid, Dptr::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpu_nvme::io::{decode, Geometry, Op};

    fn geom(_nsid: u32) -> Option<Geometry> {
        Some(Geometry { blocks: 1 << 40, lba_shift: 12 })
    }

    #[test]
    fn read_layout() {
        let s = read(0x00aa, 1, 0x1_2345_6789, 7, 8 * 4096);
        let mut want = [0u8; 64];
        want[0] = 0x02;
        want[1] = 0x40;
        want[2] = 0xaa;
        want[4] = 1; // NSID
        want[32..36].copy_from_slice(&(8u32 * 4096).to_le_bytes());
        want[39] = 0x5a;
        want[40..44].copy_from_slice(&[0x89, 0x67, 0x45, 0x23]); // SLBA low
        want[44] = 0x01; // SLBA high
        want[48] = 7; // NLB, 0's based
        assert_eq!(s.0, want);
    }

    #[test]
    fn controller_decoder_agrees() {
        let w = write(3, 1, 100, 1, Dptr::in_capsule(8192));
        let c = decode(&w, geom).unwrap();
        assert_eq!((c.op, c.nsid, c.slba, c.nlb, c.data_len, c.sgl), (Op::Write, 1, 100, 2, 8192, true));
        assert_eq!(Dptr::of(&w), Ok(Dptr::in_capsule(8192)));
        let r = decode(&read(4, 1, 0, 0, 4096), geom).unwrap();
        assert_eq!((r.op, r.nlb, r.data_len), (Op::Read, 1, 4096));
        let f = flush(5, 1);
        assert_eq!(f.opcode(), 0x00);
        assert_eq!(decode(&f, geom).unwrap().op, Op::Flush);
        assert_eq!(Dptr::of(&f), Ok(Dptr::None));
        let c = decode(&compare(6, 1, 8, 0, Dptr::in_capsule(4096)), geom).unwrap();
        assert_eq!((c.op, c.slba, c.nlb, c.data_len), (Op::Compare, 8, 1, 4096));
        let d = decode(&dsm(7, 1, 2, 1 << 2, Dptr::in_capsule(48)), geom).unwrap();
        assert_eq!((d.op, d.data_len), (Op::Dsm { ranges: 3, deallocate: true }, 48));
    }
}
