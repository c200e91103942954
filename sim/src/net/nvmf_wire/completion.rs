//! The 16-byte completion queue entry (NVMe Base 2.0, "Completion Queue
//! Entry", "Common Completion Queue Entry Layout"): DW0,
//! DW1, SQHD 9:8, SQID 11:10, CID 13:12, phase tag bit 16 and status
//! 31:17 of DW3. Over NVMe/TCP it is the body of a CapsuleResp PDU, where
//! the phase tag has no meaning (sent as 0).

use super::bytes::{array_at, u16_at, u32_at};
use super::status::Status;

/// Bytes of a completion queue entry.
pub const CQE_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub dw0: u32,
    pub dw1: u32,
    pub sqhd: u16,
    pub sqid: u16,
    pub cid: u16,
    pub status: Status,
}

impl Completion {
    /// The first 16 bytes of `b`; `None` when shorter.
    pub fn parse(b: &[u8]) -> Option<Completion> {
        let b: [u8; CQE_LEN] = array_at(b, 0)?;
        Some(Completion {
            dw0: u32_at(&b, 0)?,
            dw1: u32_at(&b, 4)?,
            sqhd: u16_at(&b, 8)?,
            sqid: u16_at(&b, 10)?,
            cid: u16_at(&b, 12)?,
            status: Status::from_field(u16_at(&b, 14)? >> 1),
        })
    }

    /// The 16 bytes with phase tag 0.
    pub fn to_bytes(&self) -> [u8; CQE_LEN] {
        let mut b = [0u8; CQE_LEN];
        b[0..4].copy_from_slice(&self.dw0.to_le_bytes());
        b[4..8].copy_from_slice(&self.dw1.to_le_bytes());
        b[8..10].copy_from_slice(&self.sqhd.to_le_bytes());
        b[10..12].copy_from_slice(&self.sqid.to_le_bytes());
        b[12..14].copy_from_slice(&self.cid.to_le_bytes());
        b[14..16].copy_from_slice(&(self.status.to_field() << 1).to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_completion_layout() {
        // Hand-built: DW0 0x00010005 (a Connect response: CNTLID 5), SQHD 1,
        // SQID 0, CID 0x1f, status Invalid Field with DNR, phase 1.
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&[0x05, 0x00, 0x01, 0x00]);
        b[8] = 1;
        b[12] = 0x1f;
        let dw3_hi: u16 = (0x4002 << 1) | 1;
        b[14..16].copy_from_slice(&dw3_hi.to_le_bytes());
        let c = Completion::parse(&b).unwrap();
        assert_eq!((c.dw0, c.dw1, c.sqhd, c.sqid, c.cid), (0x0001_0005, 0, 1, 0, 0x1f));
        assert_eq!(c.status, Status::INVALID_FIELD);
        let mut back = c.to_bytes();
        assert_eq!(back[14] & 1, 0, "phase tag sent as 0");
        back[14] |= 1;
        assert_eq!(back, b);
        assert!(Completion::parse(&b[..15]).is_none());
    }
}
