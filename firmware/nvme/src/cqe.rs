//! Completion queue entry (NVMe Base 2.0 §4.6, figure 91).

use crate::status::Status;

/// A completion about to be posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cqe {
    pub dw0: u32,
    pub dw1: u32,
    pub sq_head: u16,
    pub sq_id: u16,
    pub cid: u16,
    pub status: Status,
}

impl Cqe {
    /// The 16 bytes as posted, with phase tag `phase`.
    pub fn bytes(&self, phase: bool) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.dw0.to_le_bytes());
        b[4..8].copy_from_slice(&self.dw1.to_le_bytes());
        b[8..10].copy_from_slice(&self.sq_head.to_le_bytes());
        b[10..12].copy_from_slice(&self.sq_id.to_le_bytes());
        b[12..14].copy_from_slice(&self.cid.to_le_bytes());
        let sf = (self.status.field() << 1) | u16::from(phase);
        b[14..16].copy_from_slice(&sf.to_le_bytes());
        b
    }

    /// The entry as two little-endian 64-bit words (the bytes of
    /// [`Cqe::bytes`]), for a staging area written a word at a time.
    #[inline]
    pub fn words(&self, phase: bool) -> [u64; 2] {
        let sf = (self.status.field() << 1) | u16::from(phase);
        [
            u64::from(self.dw0) | u64::from(self.dw1) << 32,
            u64::from(self.sq_head) | u64::from(self.sq_id) << 16 | u64::from(self.cid) << 32 | u64::from(sf) << 48,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_bytes() {
        for phase in [false, true] {
            let c = Cqe { dw0: 0x1122_3344, dw1: 0x5566_7788, sq_head: 0x99aa, sq_id: 0xbbcc, cid: 0xddee, status: Status::INVALID_FIELD };
            let w = c.words(phase);
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&w[0].to_le_bytes());
            b[8..].copy_from_slice(&w[1].to_le_bytes());
            assert_eq!(b, c.bytes(phase));
        }
    }

    #[test]
    fn layout_and_phase() {
        let c = Cqe { dw0: 0x1122_3344, dw1: 0, sq_head: 7, sq_id: 3, cid: 0xbeef, status: Status::INVALID_FIELD };
        let b = c.bytes(true);
        assert_eq!(&b[0..4], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 7);
        assert_eq!(u16::from_le_bytes([b[10], b[11]]), 3);
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 0xbeef);
        let dw3_hi = u16::from_le_bytes([b[14], b[15]]);
        assert_eq!(dw3_hi & 1, 1, "phase");
        assert_eq!(dw3_hi >> 1, Status::INVALID_FIELD.field());
    }
}
