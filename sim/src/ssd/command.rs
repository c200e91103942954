//! What an SSD's NVMe controller reads and writes in memory, written from
//! NVMe Base 2.0 and the NVM Command Set 1.0 (not from the firmware's
//! `dpu-nvme`: this model is the firmware driver's independent peer):
//! submission and completion queue entries, status codes, PRP data
//! pointers, the Identify data structures.

use super::Dma;

/// Bytes per submission / completion queue entry (CC.IOSQES / IOCQES =
/// 6 / 4, the only sizes the NVM command set uses).
pub const SQE: usize = 64;
pub const CQE: usize = 16;
/// Memory page size (CC.MPS = 0, CAP.MPSMIN = MPSMAX = 0: 4 KiB).
pub const PAGE: u64 = 4096;
/// Maximum data transfer size: 2^MDTS pages (Identify Controller MDTS).
pub const MDTS: u8 = 5;
pub const MAX_TRANSFER: u64 = PAGE << MDTS;

/// A completion status (NVMe Base 2.0 §4.6.1: Status Code Type, Status
/// Code, Do Not Retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub sct: u8,
    pub sc: u8,
    pub dnr: bool,
}

impl Status {
    const fn generic(sc: u8) -> Status {
        Status { sct: 0, sc, dnr: sc != 0 }
    }
    const fn specific(sc: u8) -> Status {
        Status { sct: 1, sc, dnr: true }
    }
    // Generic command status (§4.6.1.2.1, Figure 102).
    pub const SUCCESS: Status = Status::generic(0x00);
    pub const INVALID_OPCODE: Status = Status::generic(0x01);
    pub const INVALID_FIELD: Status = Status::generic(0x02);
    pub const DATA_TRANSFER_ERROR: Status = Status::generic(0x04);
    pub const INTERNAL_ERROR: Status = Status::generic(0x06);
    pub const INVALID_NAMESPACE: Status = Status::generic(0x0b);
    pub const PRP_OFFSET_INVALID: Status = Status::generic(0x13);
    pub const LBA_OUT_OF_RANGE: Status = Status::generic(0x80);
    // Command specific status (§4.6.1.2.2, Figure 103 and §5.4-5.7).
    pub const COMPLETION_QUEUE_INVALID: Status = Status::specific(0x00);
    pub const INVALID_QUEUE_IDENTIFIER: Status = Status::specific(0x01);
    pub const INVALID_QUEUE_SIZE: Status = Status::specific(0x02);
    pub const INVALID_QUEUE_DELETION: Status = Status::specific(0x0c);

    /// Bits 31:17 of completion dword 3 (the phase tag is bit 16).
    pub fn dw3_bits(self) -> u32 {
        (u32::from(self.sc) << 17) | (u32::from(self.sct & 7) << 25) | (u32::from(self.dnr) << 31)
    }
}

/// A submission queue entry (NVMe Base 2.0 §4.2, Figure 88): the fields
/// this controller looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub opcode: u8,
    /// CDW0 bits 15:14: 0 = PRPs (SGLs are not supported).
    pub psdt: u8,
    pub cid: u16,
    pub nsid: u32,
    pub prp1: u64,
    pub prp2: u64,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
}

impl Command {
    pub fn parse(b: &[u8; SQE]) -> Command {
        let dw = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        let qw = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        Command {
            opcode: b[0],
            psdt: b[1] >> 6,
            cid: (dw(0) >> 16) as u16,
            nsid: dw(1),
            prp1: qw(24),
            prp2: qw(32),
            cdw10: dw(10),
            cdw11: dw(11),
            cdw12: dw(12),
        }
    }

    /// Starting LBA (CDW11:CDW10) and block count (CDW12 NLB, 0's based)
    /// of a Read or Write (NVM Command Set 1.0 §3.2.4, §3.2.6).
    pub fn lba_range(&self) -> (u64, u64) {
        (u64::from(self.cdw11) << 32 | u64::from(self.cdw10), u64::from(self.cdw12 & 0xffff) + 1)
    }
}

/// A completion queue entry (NVMe Base 2.0 §4.6, Figure 90) without its
/// phase tag, which the queue adds when it posts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub dw0: u32,
    pub sq_head: u16,
    pub sqid: u16,
    pub cid: u16,
    pub status: Status,
}

impl Completion {
    pub fn bytes(&self, phase: bool) -> [u8; CQE] {
        let mut b = [0u8; CQE];
        b[0..4].copy_from_slice(&self.dw0.to_le_bytes());
        b[8..10].copy_from_slice(&self.sq_head.to_le_bytes());
        b[10..12].copy_from_slice(&self.sqid.to_le_bytes());
        let dw3 = u32::from(self.cid) | (u32::from(phase) << 16) | self.status.dw3_bits();
        b[12..16].copy_from_slice(&dw3.to_le_bytes());
        b
    }
}

/// The memory segments (address, bytes) that PRP1 / PRP2 describe for a
/// transfer of `len` bytes (NVMe Base 2.0 §4.1.1: PRP entries and PRP
/// lists). PRP1 may start inside a page (dword aligned); every later
/// entry is page aligned; PRP2 is the second page when two pages hold
/// the data, else a PRP list whose last entry on each list page points
/// to the next list page.
pub fn prp_segments(dma: &mut dyn Dma, prp1: u64, prp2: u64, len: u64) -> Result<Vec<(u64, u64)>, Status> {
    if prp1 % 4 != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    let first = len.min(PAGE - prp1 % PAGE);
    let mut segs = vec![(prp1, first)];
    let mut rest = len - first;
    if rest == 0 {
        return Ok(segs);
    }
    if rest <= PAGE {
        if prp2 % PAGE != 0 {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        segs.push((prp2, rest));
        return Ok(segs);
    }
    // A PRP list: qword aligned, may start inside its page.
    if prp2 % 8 != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    let mut list = prp2;
    while rest > 0 {
        let slots = (PAGE - list % PAGE) / 8;
        let mut raw = vec![0u8; (slots * 8) as usize];
        if !dma.read(list, &mut raw) {
            return Err(Status::DATA_TRANSFER_ERROR);
        }
        for (i, e) in raw.chunks_exact(8).enumerate() {
            let entry = u64::from_le_bytes(e.try_into().unwrap());
            if entry % PAGE != 0 {
                return Err(Status::PRP_OFFSET_INVALID);
            }
            let last_slot = i as u64 + 1 == slots;
            if last_slot && rest > PAGE {
                // The next list page.
                list = entry;
                break;
            }
            let n = rest.min(PAGE);
            segs.push((entry, n));
            rest -= n;
            if rest == 0 {
                break;
            }
        }
    }
    Ok(segs)
}

/// Identify Controller data structure (NVMe Base 2.0 §5.17.2.1, Figure
/// 275) of SSD `index`, with `nn` namespaces.
pub fn identify_controller(index: usize, nn: u32) -> Vec<u8> {
    let mut d = vec![0u8; 4096];
    // VID / SSVID: the placeholder vendor of the card's own functions.
    d[0..2].copy_from_slice(&0x1dadu16.to_le_bytes());
    d[2..4].copy_from_slice(&0x1dadu16.to_le_bytes());
    let text = |d: &mut [u8], s: &str| {
        d.fill(b' ');
        d[..s.len()].copy_from_slice(s.as_bytes());
    };
    text(&mut d[4..24], &format!("SIMSSD{index:04}"));
    text(&mut d[24..64], "dpusim NVMe SSD model");
    text(&mut d[64..72], "1.0");
    d[77] = MDTS;
    d[78..80].copy_from_slice(&1u16.to_le_bytes());
    d[80..84].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    // SQES / CQES: required and maximum entry sizes 2^6 and 2^4.
    d[512] = 0x66;
    d[513] = 0x44;
    d[516..520].copy_from_slice(&nn.to_le_bytes());
    // ONCS (bytes 521:520): Dataset Management (bit 2), Write Zeroes (bit 3).
    d[520] = 1 << 2 | 1 << 3;
    // VWC: a volatile write cache is present (Flush applies to it).
    d[525] = 1;
    d
}

/// Identify Namespace data structure of the NVM command set (NVM Command
/// Set 1.0 §4.1.5.1, Figure 97): one LBA format.
pub fn identify_namespace(blocks: u64, lba_shift: u32) -> Vec<u8> {
    let mut d = vec![0u8; 4096];
    for o in [0, 8, 16] {
        d[o..o + 8].copy_from_slice(&blocks.to_le_bytes());
    }
    // NLBAF = 0 (one format), FLBAS = 0; LBAF0: MS = 0, LBADS, RP = 0.
    d[128..132].copy_from_slice(&(lba_shift << 16).to_le_bytes());
    // DLFEAT (byte 33) bits 2:0 = 001b: a deallocated block reads as zeroes.
    d[33] = 1;
    d
}

/// Active Namespace ID list (NVMe Base 2.0 §5.17.2.2, CNS 02h): the
/// active NSIDs greater than `after`, here of namespace 1 only.
pub fn active_namespaces(after: u32) -> Vec<u8> {
    let mut d = vec![0u8; 4096];
    if after < 1 {
        d[0..4].copy_from_slice(&1u32.to_le_bytes());
    }
    d
}
