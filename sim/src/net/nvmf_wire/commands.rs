//! The admin and NVM commands the models send and serve, as fields of a
//! submission queue entry (NVMe Base 2.0 "Admin Command Set": Get Log
//! Page CDW10 LID 7:0, LSP 14:8, RAE 15, NUMDL 31:16, CDW11 NUMDU 15:0,
//! CDW12/13 offset; Identify CDW10 CNS 7:0, CNTID 31:16; Set Features
//! CDW10 FID 7:0, Number of Queues CDW11 NSQR 15:0 / NCQR 31:16 (0's
//! based). NVM Command Set 1.0 "I/O Commands": Read/Write/Compare/Write
//! Zeroes CDW10/11 SLBA, CDW12 NLB 15:0 (0's based); Dataset Management
//! CDW10 NR 7:0 (0's based), CDW11 attributes (bit 2 AD, deallocate), and
//! 16-byte ranges: context attributes 3:0, length in blocks 7:4, SLBA
//! 15:8).

use super::bytes::{u32_at, u64_at};
use super::command::Command;
use super::sgl::Sgl;

pub mod admin_opc {
    pub const GET_LOG_PAGE: u8 = 0x02;
    pub const IDENTIFY: u8 = 0x06;
    pub const SET_FEATURES: u8 = 0x09;
    pub const GET_FEATURES: u8 = 0x0a;
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0c;
    pub const KEEP_ALIVE: u8 = 0x18;
}

pub mod nvm_opc {
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const COMPARE: u8 = 0x05;
    pub const WRITE_ZEROES: u8 = 0x08;
    pub const DATASET_MANAGEMENT: u8 = 0x09;
}

/// Identify CNS values.
pub mod cns {
    pub const NAMESPACE: u8 = 0x00;
    pub const CONTROLLER: u8 = 0x01;
    pub const ACTIVE_NSID_LIST: u8 = 0x02;
    pub const NS_ID_DESCRIPTORS: u8 = 0x03;
}

/// Feature identifiers.
pub mod fid {
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    pub const ASYNC_EVENT_CONFIG: u8 = 0x0b;
    pub const KEEP_ALIVE_TIMER: u8 = 0x0f;
}

/// Bytes Identify returns.
pub const IDENTIFY_LEN: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identify {
    pub cns: u8,
    pub cntid: u16,
    pub nsid: u32,
}

impl Identify {
    pub fn parse(c: &Command) -> Identify {
        Identify { cns: c.cdw(10) as u8, cntid: (c.cdw(10) >> 16) as u16, nsid: c.nsid() }
    }

    pub fn to_command(&self, cid: u16) -> Command {
        let mut c = Command::new(admin_opc::IDENTIFY, cid);
        c.set_nsid(self.nsid);
        c.set_cdw(10, u32::from(self.cns) | u32::from(self.cntid) << 16);
        c.set_sgl(Sgl::Transport { len: IDENTIFY_LEN });
        c
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetLogPage {
    pub lid: u8,
    pub lsp: u8,
    pub rae: bool,
    /// Dwords to return, 0's based (NUMDU:NUMDL).
    pub numd: u32,
    pub offset: u64,
    pub nsid: u32,
}

impl GetLogPage {
    pub fn parse(c: &Command) -> GetLogPage {
        let (d10, d11) = (c.cdw(10), c.cdw(11));
        GetLogPage {
            lid: d10 as u8,
            lsp: ((d10 >> 8) & 0x7f) as u8,
            rae: d10 & 1 << 15 != 0,
            numd: d10 >> 16 | (d11 & 0xffff) << 16,
            offset: u64::from(c.cdw(12)) | u64::from(c.cdw(13)) << 32,
            nsid: c.nsid(),
        }
    }

    /// Bytes asked for.
    pub fn bytes(&self) -> u64 {
        (u64::from(self.numd) + 1) * 4
    }

    /// A Get Log Page for `len` bytes (a non-zero multiple of 4) at `offset`.
    pub fn new(lid: u8, offset: u64, len: u32) -> GetLogPage {
        GetLogPage { lid, lsp: 0, rae: false, numd: (len / 4).saturating_sub(1), offset, nsid: 0 }
    }

    pub fn to_command(&self, cid: u16) -> Command {
        let mut c = Command::new(admin_opc::GET_LOG_PAGE, cid);
        c.set_nsid(self.nsid);
        c.set_cdw(10, u32::from(self.lid) | u32::from(self.lsp & 0x7f) << 8 | u32::from(self.rae) << 15 | (self.numd & 0xffff) << 16);
        c.set_cdw(11, self.numd >> 16);
        c.set_cdw(12, self.offset as u32);
        c.set_cdw(13, (self.offset >> 32) as u32);
        c.set_sgl(Sgl::Transport { len: self.bytes() as u32 });
        c
    }
}

/// Set Features with the value in CDW11.
pub fn set_features(cid: u16, fid: u8, cdw11: u32) -> Command {
    let mut c = Command::new(admin_opc::SET_FEATURES, cid);
    c.set_cdw(10, u32::from(fid));
    c.set_cdw(11, cdw11);
    c.set_sgl(Sgl::NONE);
    c
}

/// A command without data (Keep Alive, Flush, ...).
pub fn no_data(opcode: u8, cid: u16, nsid: u32) -> Command {
    let mut c = Command::new(opcode, cid);
    c.set_nsid(nsid);
    c.set_sgl(Sgl::NONE);
    c
}

/// Read, Write, Compare and Write Zeroes: SLBA and NLB (0's based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    pub slba: u64,
    pub nlb0: u16,
}

impl BlockRange {
    pub fn parse(c: &Command) -> BlockRange {
        BlockRange { slba: u64::from(c.cdw(10)) | u64::from(c.cdw(11)) << 32, nlb0: c.cdw(12) as u16 }
    }

    /// Blocks (1-based).
    pub fn blocks(&self) -> u64 {
        u64::from(self.nlb0) + 1
    }

    pub fn to_command(&self, opcode: u8, cid: u16, nsid: u32, sgl: Sgl) -> Command {
        let mut c = Command::new(opcode, cid);
        c.set_nsid(nsid);
        c.set_cdw(10, self.slba as u32);
        c.set_cdw(11, (self.slba >> 32) as u32);
        c.set_cdw(12, u32::from(self.nlb0));
        c.set_sgl(sgl);
        c
    }
}

/// Dataset Management: range count and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dsm {
    /// Ranges, 0's based.
    pub nr0: u8,
    pub deallocate: bool,
}

/// DSM CDW11 bit 2: Attribute - Deallocate.
pub const DSM_AD: u32 = 1 << 2;
/// Bytes of one DSM range.
pub const DSM_RANGE_LEN: usize = 16;

impl Dsm {
    pub fn parse(c: &Command) -> Dsm {
        Dsm { nr0: c.cdw(10) as u8, deallocate: c.cdw(11) & DSM_AD != 0 }
    }

    /// Bytes of the range list.
    pub fn list_len(&self) -> u32 {
        (u32::from(self.nr0) + 1) * DSM_RANGE_LEN as u32
    }

    pub fn to_command(&self, cid: u16, nsid: u32, sgl: Sgl) -> Command {
        let mut c = Command::new(nvm_opc::DATASET_MANAGEMENT, cid);
        c.set_nsid(nsid);
        c.set_cdw(10, u32::from(self.nr0));
        c.set_cdw(11, if self.deallocate { DSM_AD } else { 0 });
        c.set_sgl(sgl);
        c
    }
}

/// One DSM range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DsmRange {
    pub attributes: u32,
    pub blocks: u32,
    pub slba: u64,
}

impl DsmRange {
    /// The whole 16-byte ranges of `list`.
    pub fn parse_list(list: &[u8]) -> Vec<DsmRange> {
        list.chunks_exact(DSM_RANGE_LEN)
            .map(|r| DsmRange { attributes: u32_at(r, 0).unwrap_or(0), blocks: u32_at(r, 4).unwrap_or(0), slba: u64_at(r, 8).unwrap_or(0) })
            .collect()
    }

    pub fn to_bytes(&self) -> [u8; DSM_RANGE_LEN] {
        let mut b = [0u8; DSM_RANGE_LEN];
        b[0..4].copy_from_slice(&self.attributes.to_le_bytes());
        b[4..8].copy_from_slice(&self.blocks.to_le_bytes());
        b[8..16].copy_from_slice(&self.slba.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_log_page_dwords() {
        // Discovery log, 4096 bytes at offset 0, as Linux `nvme_get_log`:
        // CDW10 = 0x03ff0070 (NUMDL 1023, LID 70h).
        let mut c = Command::new(admin_opc::GET_LOG_PAGE, 9);
        c.set_cdw(10, 0x03ff_0070);
        let g = GetLogPage::parse(&c);
        assert_eq!((g.lid, g.numd, g.bytes(), g.offset, g.rae), (0x70, 1023, 4096, 0, false));
        assert_eq!(GetLogPage::new(0x70, 0, 4096).to_command(9).cdw(10), 0x03ff_0070);
        // 512 KiB at offset 2^32 + 8: NUMDU 1, CDW13 1.
        let big = GetLogPage::new(0x70, (1 << 32) + 8, 512 * 1024);
        let c = big.to_command(1);
        assert_eq!((c.cdw(10) >> 16, c.cdw(11), c.cdw(12), c.cdw(13)), (0xffff, 1, 8, 1));
        assert_eq!(GetLogPage::parse(&c), big);
    }

    #[test]
    fn identify_rw_and_dsm_fields() {
        let id = Identify { cns: cns::CONTROLLER, cntid: 0, nsid: 0 }.to_command(2);
        assert_eq!((id.opcode(), id.cdw(10), id.sgl()), (0x06, 1, Some(Sgl::Transport { len: 4096 })));
        let r = BlockRange { slba: 0x1_0000_0010, nlb0: 7 };
        let c = r.to_command(nvm_opc::READ, 3, 1, Sgl::Transport { len: 4096 });
        assert_eq!((c.cdw(10), c.cdw(11), c.cdw(12)), (0x10, 1, 7));
        assert_eq!((BlockRange::parse(&c), BlockRange::parse(&c).blocks()), (r, 8));
        let d = Dsm { nr0: 1, deallocate: true };
        let c = d.to_command(4, 1, Sgl::in_capsule(32));
        assert_eq!((c.cdw(10), c.cdw(11), Dsm::parse(&c).list_len()), (1, 4, 32));
        let range = DsmRange { attributes: 0, blocks: 8, slba: 32 };
        let mut b = [0u8; 16];
        b[4] = 8;
        b[8] = 32;
        assert_eq!(range.to_bytes(), b);
        assert_eq!(DsmRange::parse_list(&[&b[..], &b[..], &b[..5]].concat()), vec![range, range], "a partial range is ignored");
    }
}
