//! The 64-byte submission queue entry (NVMe Base 2.0, "Submission Queue
//! Entry", "Common Command Format"): CDW0 (opcode 7:0,
//! FUSE 9:8, PSDT 15:14, CID 31:16), NSID 7:4, CDW2 11:8, CDW3 15:12,
//! MPTR 23:16, DPTR 39:24, CDW10..CDW15 63:40. Over NVMe/TCP it travels
//! as the body of a CapsuleCmd PDU; Fabrics commands reuse the layout
//! with FCTYPE in byte 4 (see `fabrics.rs`).

use super::bytes::{put_u16, put_u32, u16_at, u32_at};
use super::sgl::Sgl;

/// Bytes of a submission queue entry.
pub const SQE_LEN: usize = 64;

/// PSDT values (CDW0 bits 15:14, byte 1 bits 7:6).
pub mod psdt {
    /// PRPs.
    pub const PRP: u8 = 0b00;
    /// SGLs, MPTR is an address (Linux `NVME_CMD_SGL_METABUF`, byte 1 = 0x40).
    pub const SGL_MPTR_ADDRESS: u8 = 0b01;
    /// SGLs, MPTR points to an SGL segment.
    pub const SGL_MPTR_SGL: u8 = 0b10;
}

/// A submission queue entry: a typed view over its 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command(pub [u8; SQE_LEN]);

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command {{ opc {:#04x}, cid {}, nsid {}, cdw10 {:#x} }}", self.opcode(), self.cid(), self.nsid(), self.cdw(10))
    }
}

impl Command {
    /// A zeroed entry with `opcode` and `cid`.
    pub fn new(opcode: u8, cid: u16) -> Command {
        let mut c = Command([0; SQE_LEN]);
        c.0[0] = opcode;
        c.set_cid(cid);
        c
    }

    /// The first 64 bytes of `b`, or `None` when it is shorter.
    pub fn parse(b: &[u8]) -> Option<Command> {
        Some(Command(b.get(..SQE_LEN)?.try_into().ok()?))
    }

    pub fn opcode(&self) -> u8 {
        self.0[0]
    }
    pub fn fuse(&self) -> u8 {
        self.0[1] & 3
    }
    pub fn psdt(&self) -> u8 {
        self.0[1] >> 6
    }
    pub fn set_psdt(&mut self, v: u8) {
        self.0[1] = (self.0[1] & 0x3f) | (v & 3) << 6;
    }
    pub fn cid(&self) -> u16 {
        u16_at(&self.0, 2).unwrap_or(0)
    }
    pub fn set_cid(&mut self, cid: u16) {
        put_u16(&mut self.0, 2, cid);
    }
    pub fn nsid(&self) -> u32 {
        self.cdw(1)
    }
    pub fn set_nsid(&mut self, nsid: u32) {
        self.set_cdw(1, nsid);
    }

    /// Command dword `n` (0..=15); 0 for any other `n`.
    pub fn cdw(&self, n: usize) -> u32 {
        n.checked_mul(4).and_then(|o| u32_at(&self.0, o)).unwrap_or(0)
    }

    /// Sets command dword `n` (ignored past 15).
    pub fn set_cdw(&mut self, n: usize, v: u32) {
        if let Some(o) = n.checked_mul(4) {
            put_u32(&mut self.0, o, v);
        }
    }

    /// The 16 bytes of DPTR (SGL1 for NVMe/TCP).
    pub fn dptr(&self) -> [u8; 16] {
        let mut d = [0u8; 16];
        d.copy_from_slice(&self.0[24..40]);
        d
    }

    /// Writes SGL1 and sets PSDT to "SGL, MPTR address" as Linux does.
    pub fn set_sgl(&mut self, sgl: Sgl) {
        self.0[24..40].copy_from_slice(&sgl.to_bytes());
        self.set_psdt(psdt::SGL_MPTR_ADDRESS);
    }

    /// SGL1 when PSDT selects SGLs; `None` for PRPs or an unsupported
    /// descriptor.
    pub fn sgl(&self) -> Option<Sgl> {
        if self.psdt() == psdt::PRP {
            return None;
        }
        Sgl::parse(&self.dptr()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_common_command_format_offsets() {
        let mut b = [0u8; 64];
        b[0] = 0x02; // Read
        b[1] = 0x40; // PSDT 01b
        b[2..4].copy_from_slice(&0x1234u16.to_le_bytes());
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        b[40..44].copy_from_slice(&0xaabb_ccddu32.to_le_bytes());
        b[60..64].copy_from_slice(&0x0102_0304u32.to_le_bytes());
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.opcode(), c.psdt(), c.cid(), c.nsid()), (0x02, 1, 0x1234, 7));
        assert_eq!((c.cdw(10), c.cdw(15), c.cdw(16)), (0xaabb_ccdd, 0x0102_0304, 0));
        assert!(Command::parse(&b[..63]).is_none());
        let mut n = Command::new(0x02, 0x1234);
        n.set_nsid(7);
        n.set_cdw(10, 0xaabb_ccdd);
        n.set_cdw(15, 0x0102_0304);
        n.set_psdt(psdt::SGL_MPTR_ADDRESS);
        assert_eq!(n.0, b);
        n.set_cdw(99, 1); // ignored, no panic
        assert_eq!(n.0, b);
    }
}
