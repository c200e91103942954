//! Admin commands a fabrics host sends, as SQEs with an NVMe/TCP SGL1:
//! Keep Alive (NVMe Base 2.0 §5.25), Identify (§5.17) and Get Log Page
//! (§5.16). Controller-to-host data always travels in C2HData PDUs, so
//! their SGL1 is a Transport SGL Data Block of the transfer length.

use dpu_nvme::Sqe;

use super::{command_sqe, FabricsError};
use crate::sgl::Dptr;

pub const OPC_GET_LOG_PAGE: u8 = 0x02;
pub const OPC_IDENTIFY: u8 = 0x06;
pub const OPC_KEEP_ALIVE: u8 = 0x18;

/// Identify CNS values used over fabrics.
pub mod cns {
    pub const NAMESPACE: u8 = 0x00;
    pub const CONTROLLER: u8 = 0x01;
    pub const ACTIVE_NAMESPACES: u8 = 0x02;
    pub const NS_ID_DESCRIPTORS: u8 = 0x03;
}

/// Identify data size.
pub const IDENTIFY_LEN: u32 = 4096;

/// Keep Alive: no data, NSID 0.
pub fn keep_alive(cid: u16) -> Sqe {
    command_sqe(OPC_KEEP_ALIVE, cid, 0, Dptr::None)
}

/// Identify: CDW10 CNS (bits 7:0) and CNTID (bits 31:16); 4096 bytes back.
pub fn identify(cid: u16, nsid: u32, cns: u8, cntid: u16) -> Sqe {
    let mut s = command_sqe(OPC_IDENTIFY, cid, nsid, Dptr::Transport { len: IDENTIFY_LEN });
    s.set_dw(10, u32::from(cns) | u32::from(cntid) << 16);
    s
}

/// A Get Log Page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GetLogPage {
    pub nsid: u32,
    /// Log Page Identifier (e.g. 70h Discovery).
    pub lid: u8,
    /// Log Specific Field (CDW10 bits 14:8; 7 bits).
    pub lsp: u8,
    /// Retain Asynchronous Event (CDW10 bit 15).
    pub rae: bool,
    /// Byte offset into the log (LPOL/LPOU), dword aligned.
    pub offset: u64,
    /// Bytes to read, a non-zero multiple of 4 (NUMD = len / 4 - 1).
    pub len: u32,
}

impl GetLogPage {
    /// The SQE: CDW10 LID | LSP << 8 | RAE << 15 | NUMDL << 16, CDW11
    /// NUMDU, CDW12 LPOL, CDW13 LPOU; SGL1 transport, `len` bytes.
    pub fn to_sqe(&self, cid: u16) -> Result<Sqe, FabricsError> {
        if self.len == 0 || !self.len.is_multiple_of(4) {
            return Err(FabricsError::BadLength(u64::from(self.len)));
        }
        if !self.offset.is_multiple_of(4) {
            return Err(FabricsError::BadLength(self.offset));
        }
        let numd = self.len / 4 - 1;
        let mut s = command_sqe(OPC_GET_LOG_PAGE, cid, self.nsid, Dptr::Transport { len: self.len });
        s.set_dw(
            10,
            u32::from(self.lid) | u32::from(self.lsp & 0x7f) << 8 | u32::from(self.rae) << 15 | (numd & 0xffff) << 16,
        );
        s.set_dw(11, numd >> 16);
        s.set_dw(12, self.offset as u32);
        s.set_dw(13, (self.offset >> 32) as u32);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_and_identify_layout() {
        let k = keep_alive(0x0203);
        assert_eq!(&k.0[..4], &[0x18, 0x40, 0x03, 0x02]);
        assert_eq!(k.0[39], 0x5a);
        assert_eq!(&k.0[32..36], &[0, 0, 0, 0]);
        let i = identify(7, 0, cns::CONTROLLER, 0);
        assert_eq!(i.opcode(), 0x06);
        assert_eq!(i.0[1], 0x40);
        assert_eq!(i.cdw10(), 1);
        assert_eq!(Dptr::of(&i), Ok(Dptr::Transport { len: 4096 }));
        let n = identify(8, 1, cns::NAMESPACE, 0x1234);
        assert_eq!(n.nsid(), 1);
        assert_eq!(n.cdw10(), 0x1234_0000);
    }

    #[test]
    fn get_log_page_numd_split_and_offset() {
        // 1 MiB + 4 bytes: NUMD = 0x40000, NUMDL 0, NUMDU 4.
        let g = GetLogPage { nsid: 0, lid: 0x70, lsp: 0, rae: true, offset: 0x1_0000_0400, len: (1 << 20) + 4 };
        let s = g.to_sqe(1).unwrap();
        assert_eq!(s.opcode(), 0x02);
        assert_eq!(s.cdw10(), 0x0000_8070);
        assert_eq!(s.cdw11(), 0x0004);
        assert_eq!(s.cdw12(), 0x0000_0400);
        assert_eq!(s.cdw13(), 1);
        assert_eq!(Dptr::of(&s), Ok(Dptr::Transport { len: (1 << 20) + 4 }));
        // dpu-nvme's controller-side decoder reads back what we wrote.
        let small = GetLogPage { nsid: 0xffff_ffff, lid: 0x02, lsp: 0, rae: false, offset: 8, len: 512 };
        let r = dpu_nvme::logs::decode(&small.to_sqe(2).unwrap()).unwrap();
        assert_eq!((r.lid, r.offset, r.len, r.rae), (0x02, 8, 512, false));
    }

    #[test]
    fn get_log_page_rejects_non_dword_sizes() {
        let g = GetLogPage { nsid: 0, lid: 0x70, lsp: 0, rae: false, offset: 0, len: 0 };
        assert_eq!(g.to_sqe(1), Err(FabricsError::BadLength(0)));
        assert_eq!(GetLogPage { len: 6, ..g }.to_sqe(1), Err(FabricsError::BadLength(6)));
        assert_eq!(GetLogPage { len: 8, offset: 2, ..g }.to_sqe(1), Err(FabricsError::BadLength(2)));
    }
}
