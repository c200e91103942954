//! Submission queue entry (NVMe Base 2.0 §4.2, figure 88): a checked view
//! over the 64 bytes the controller fetched.

/// A submission queue entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sqe(pub [u8; 64]);

impl core::fmt::Debug for Sqe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sqe(opc {:#04x} cid {} nsid {})", self.opcode(), self.cid(), self.nsid())
    }
}

/// Data pointer kind (CDW0 PSDT, bits 15:14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Psdt {
    Prp,
    /// SGL; MPTR is an address.
    Sgl,
    /// SGL with MPTR pointing to an SGL segment (we don't support metadata).
    SglMptrSegment,
    Reserved,
}

impl Sqe {
    pub const ZERO: Sqe = Sqe([0; 64]);

    pub fn from_bytes(b: &[u8]) -> Option<Sqe> {
        Some(Sqe(b.get(..64)?.try_into().ok()?))
    }
    /// Dword `i` (0..16).
    pub fn dw(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.0[4 * i..4 * i + 4].try_into().unwrap())
    }
    pub fn set_dw(&mut self, i: usize, v: u32) {
        self.0[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn opcode(&self) -> u8 {
        self.0[0]
    }
    /// FUSE (CDW0 bits 9:8).
    pub fn fuse(&self) -> u8 {
        self.0[1] & 3
    }
    pub fn psdt(&self) -> Psdt {
        match (self.0[1] >> 6) & 3 {
            0 => Psdt::Prp,
            1 => Psdt::Sgl,
            2 => Psdt::SglMptrSegment,
            _ => Psdt::Reserved,
        }
    }
    pub fn cid(&self) -> u16 {
        u16::from_le_bytes([self.0[2], self.0[3]])
    }
    pub fn nsid(&self) -> u32 {
        self.dw(1)
    }
    pub fn mptr(&self) -> u64 {
        u64::from(self.dw(4)) | u64::from(self.dw(5)) << 32
    }
    pub fn prp1(&self) -> u64 {
        u64::from(self.dw(6)) | u64::from(self.dw(7)) << 32
    }
    pub fn prp2(&self) -> u64 {
        u64::from(self.dw(8)) | u64::from(self.dw(9)) << 32
    }
    /// The 16-byte data pointer (for SGL descriptors).
    pub fn dptr(&self) -> [u8; 16] {
        self.0[24..40].try_into().unwrap()
    }
    pub fn cdw10(&self) -> u32 {
        self.dw(10)
    }
    pub fn cdw11(&self) -> u32 {
        self.dw(11)
    }
    pub fn cdw12(&self) -> u32 {
        self.dw(12)
    }
    pub fn cdw13(&self) -> u32 {
        self.dw(13)
    }
    pub fn cdw14(&self) -> u32 {
        self.dw(14)
    }
    pub fn cdw15(&self) -> u32 {
        self.dw(15)
    }
}
