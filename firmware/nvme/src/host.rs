//! The host side of an NVMe controller, for the firmware's driver of the
//! card's local SSDs: the submission queue entries a driver builds, the
//! completion entries it reads back, its view of a queue pair (NVMe Base
//! 2.0 §3.3.1: the host owns the SQ tail and the CQ head and follows the
//! phase tag), and PRP entries for a buffer of whole pages (§4.1.1).
//! Pure: the caller writes the bytes into queue memory and rings doorbells.

use crate::status::Status;
use crate::Sqe;

/// Admin opcodes (§5, Figure 138) and NVM I/O opcodes (NVM Command Set 1.0
/// Figure 22) a driver sends.
pub mod opcode {
    pub const DELETE_SQ: u8 = 0x00;
    pub const CREATE_SQ: u8 = 0x01;
    pub const DELETE_CQ: u8 = 0x04;
    pub const CREATE_CQ: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
    pub const SET_FEATURES: u8 = 0x09;
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE_ZEROES: u8 = 0x08;
    pub const DSM: u8 = 0x09;
}

/// Identify CNS values (§5.17.1, Figure 273).
pub const CNS_NAMESPACE: u8 = 0x00;
pub const CNS_CONTROLLER: u8 = 0x01;
/// Feature Identifier: Number of Queues (§5.27.1.5).
pub const FID_NUMBER_OF_QUEUES: u8 = 0x07;

fn sqe(opcode: u8, cid: u16, nsid: u32) -> Sqe {
    let mut s = Sqe::ZERO;
    s.set_dw(0, u32::from(opcode) | u32::from(cid) << 16);
    s.set_dw(1, nsid);
    s
}

fn set_prps(s: &mut Sqe, prp1: u64, prp2: u64) {
    s.0[24..32].copy_from_slice(&prp1.to_le_bytes());
    s.0[32..40].copy_from_slice(&prp2.to_le_bytes());
}

/// Identify (§5.17): `cns` for namespace `nsid`, 4 KiB into the page at `page`.
pub fn identify(cid: u16, cns: u8, nsid: u32, page: u64) -> Sqe {
    let mut s = sqe(opcode::IDENTIFY, cid, nsid);
    set_prps(&mut s, page, 0);
    s.set_dw(10, u32::from(cns));
    s
}

/// Create I/O Completion Queue (§5.4): `entries` at `base` (contiguous,
/// page aligned), polled (IEN = 0).
pub fn create_cq(cid: u16, qid: u16, entries: u16, base: u64) -> Sqe {
    let mut s = sqe(opcode::CREATE_CQ, cid, 0);
    set_prps(&mut s, base, 0);
    s.set_dw(10, u32::from(entries - 1) << 16 | u32::from(qid));
    s.set_dw(11, 1); // PC
    s
}

/// Create I/O Submission Queue (§5.5): `entries` at `base`, completing on CQ `cqid`.
pub fn create_sq(cid: u16, qid: u16, entries: u16, base: u64, cqid: u16) -> Sqe {
    let mut s = sqe(opcode::CREATE_SQ, cid, 0);
    set_prps(&mut s, base, 0);
    s.set_dw(10, u32::from(entries - 1) << 16 | u32::from(qid));
    s.set_dw(11, u32::from(cqid) << 16 | 1); // PC, QPRIO 0
    s
}

/// Set Features Number of Queues (§5.27.1.5): `n` SQs and `n` CQs wanted.
pub fn set_queue_count(cid: u16, n: u16) -> Sqe {
    let mut s = sqe(opcode::SET_FEATURES, cid, 0);
    s.set_dw(10, u32::from(FID_NUMBER_OF_QUEUES));
    let z = u32::from(n.max(1) - 1);
    s.set_dw(11, z << 16 | z);
    s
}

/// Read or Write (NVM Command Set 1.0 §3.2.4, §3.2.6): `blocks` (not 0's
/// based, 1..=65536) from `slba`, data at PRP1 / PRP2.
pub fn read_write(cid: u16, write: bool, nsid: u32, slba: u64, blocks: u32, prp1: u64, prp2: u64) -> Sqe {
    let mut s = sqe(if write { opcode::WRITE } else { opcode::READ }, cid, nsid);
    set_prps(&mut s, prp1, prp2);
    s.set_dw(10, slba as u32);
    s.set_dw(11, (slba >> 32) as u32);
    s.set_dw(12, blocks.saturating_sub(1) & 0xffff);
    s
}

/// Flush (NVM Command Set 1.0 §3.2.2).
pub fn flush(cid: u16, nsid: u32) -> Sqe {
    sqe(opcode::FLUSH, cid, nsid)
}

/// Write Zeroes (NVM Command Set 1.0 §3.2.8): `blocks` (not 0's based)
/// from `slba`; no data.
pub fn write_zeroes(cid: u16, nsid: u32, slba: u64, blocks: u32) -> Sqe {
    let mut s = read_write(cid, false, nsid, slba, blocks, 0, 0);
    s.set_dw(0, u32::from(opcode::WRITE_ZEROES) | u32::from(cid) << 16);
    s
}

/// Dataset Management (NVM Command Set 1.0 §3.2.3): `nr0 + 1` ranges
/// (16 bytes each) at `list` (one page), CDW11 `attributes` (bit 2:
/// deallocate) as the host gave them.
pub fn dsm(cid: u16, nsid: u32, nr0: u8, attributes: u32, list: u64) -> Sqe {
    let mut s = sqe(opcode::DSM, cid, nsid);
    set_prps(&mut s, list, 0);
    s.set_dw(10, u32::from(nr0));
    s.set_dw(11, attributes);
    s
}

impl Status {
    /// The status of a 15-bit CQE status field (DW3 bits 31:17).
    pub fn from_field(f: u16) -> Status {
        Status { sc: f as u8, sct: ((f >> 8) & 7) as u8, dnr: f & (1 << 14) != 0 }
    }
}

/// A completion queue entry as the host reads it (§4.6, Figure 90).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub dw0: u32,
    pub sq_head: u16,
    pub sq_id: u16,
    pub cid: u16,
    pub phase: bool,
    pub status: Status,
}

impl Completion {
    pub fn parse(b: &[u8; 16]) -> Completion {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let sf = u16_at(14);
        Completion {
            dw0: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            sq_head: u16_at(8),
            sq_id: u16_at(10),
            cid: u16_at(12),
            phase: sf & 1 != 0,
            status: Status::from_field(sf >> 1),
        }
    }
}

/// The host's view of one queue pair: where it writes the next SQE, where
/// the next CQE is and which phase tag marks it new, how far the
/// controller has consumed the SQ (each CQE's SQ head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePair {
    pub entries: u16,
    pub sq_tail: u16,
    pub sq_head: u16,
    pub cq_head: u16,
    pub phase: bool,
}

impl QueuePair {
    /// A new pair (both queues `entries` long, phase 1 first: §4.6).
    pub const fn new(entries: u16) -> QueuePair {
        QueuePair { entries, sq_tail: 0, sq_head: 0, cq_head: 0, phase: true }
    }

    /// Free SQ slots (one is always left empty: full is tail + 1 == head).
    pub fn sq_room(&self) -> u16 {
        let used = (self.sq_tail + self.entries - self.sq_head) % self.entries;
        self.entries - 1 - used
    }

    /// Takes the next SQ slot; its index, or `None` when the SQ is full.
    /// The new tail is `sq_tail` (for the doorbell).
    pub fn push(&mut self) -> Option<u16> {
        if self.sq_room() == 0 {
            return None;
        }
        let slot = self.sq_tail;
        self.sq_tail = (self.sq_tail + 1) % self.entries;
        Some(slot)
    }

    /// Whether `raw`, read at CQ slot `cq_head`, is a new completion.
    pub fn is_new(&self, raw: &[u8; 16]) -> bool {
        (raw[14] & 1 != 0) == self.phase
    }

    /// Consumes the completion at `cq_head` (the phase flips when the
    /// head wraps); returns the new head (for the doorbell).
    pub fn pop(&mut self, c: &Completion) -> u16 {
        if c.sq_head < self.entries {
            self.sq_head = c.sq_head;
        }
        self.cq_head = (self.cq_head + 1) % self.entries;
        if self.cq_head == 0 {
            self.phase = !self.phase;
        }
        self.cq_head
    }
}

/// PRP1 / PRP2 for a buffer of whole 4 KiB pages `pages` (each page
/// aligned; the last may be partly used): PRP2 is the second page for two
/// pages, else the address `list` where the caller stores `entries[..n]`,
/// the pages after the first (one list page: at most 512 entries, and
/// `list` must not cross a page boundary with them). Returns (PRP1,
/// PRP2, n).
pub fn prps(pages: &[u64], list: u64, entries: &mut [u64]) -> Option<(u64, u64, usize)> {
    match pages {
        [] => None,
        [p] => Some((*p, 0, 0)),
        [p, q] => Some((*p, *q, 0)),
        [p, rest @ ..] => {
            let n = rest.len();
            let fits = n <= entries.len() && list % 8 == 0 && (list % 4096) + 8 * n as u64 <= 4096;
            if !fits {
                return None;
            }
            entries[..n].copy_from_slice(rest);
            Some((*p, list, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cqe;

    #[test]
    fn command_fields() {
        let s = read_write(7, true, 1, 0x1_2345_6789, 256, 0x1000, 0x2000);
        assert_eq!((s.opcode(), s.cid(), s.nsid()), (opcode::WRITE, 7, 1));
        assert_eq!((s.cdw10(), s.cdw11(), s.cdw12()), (0x2345_6789, 1, 255), "SLBA split, NLB 0's based");
        assert_eq!((s.prp1(), s.prp2()), (0x1000, 0x2000));
        let c = create_cq(1, 3, 64, 0x8000);
        assert_eq!((c.opcode(), c.cdw10(), c.cdw11()), (opcode::CREATE_CQ, 63 << 16 | 3, 1));
        let q = create_sq(2, 3, 64, 0x9000, 3);
        assert_eq!((q.cdw10(), q.cdw11()), (63 << 16 | 3, 3 << 16 | 1));
        assert_eq!(set_queue_count(1, 64).cdw11(), 63 << 16 | 63);
        assert_eq!(identify(1, CNS_CONTROLLER, 0, 0x4000).cdw10(), 1);
        assert_eq!(flush(9, 1).opcode(), opcode::FLUSH);
        let z = write_zeroes(4, 1, 0x1_0000_0002, 8);
        assert_eq!((z.opcode(), z.cid(), z.cdw10(), z.cdw11(), z.cdw12(), z.prp1()), (opcode::WRITE_ZEROES, 4, 2, 1, 7, 0));
        let d = dsm(5, 1, 3, 1 << 2, 0x9000);
        assert_eq!((d.opcode(), d.cid(), d.cdw10(), d.cdw11(), d.prp1()), (opcode::DSM, 5, 3, 4, 0x9000));
    }

    #[test]
    fn completion_round_trips_the_controller_side() {
        // The controller emulation's own encoder writes, the host side reads.
        let cqe = Cqe { dw0: 0x3f003f, dw1: 0, sq_head: 5, sq_id: 2, cid: 0x1234, status: Status::LBA_OUT_OF_RANGE };
        let c = Completion::parse(&cqe.bytes(false));
        assert_eq!((c.dw0, c.sq_head, c.sq_id, c.cid, c.phase), (0x3f003f, 5, 2, 0x1234, false));
        assert_eq!(c.status, Status::LBA_OUT_OF_RANGE);
        let ie = Completion::parse(&Cqe { status: Status { sct: 0, sc: 6, dnr: true }, ..cqe }.bytes(true));
        assert_eq!((ie.status.sc, ie.status.dnr, ie.phase), (6, true, true));
    }

    #[test]
    fn queue_pair_wraps_fills_and_flips_phase() {
        let mut q = QueuePair::new(4);
        assert_eq!(q.sq_room(), 3);
        assert_eq!((q.push(), q.push(), q.push(), q.push()), (Some(0), Some(1), Some(2), None), "one slot stays empty");
        let done = |sq_head| Completion { dw0: 0, sq_head, sq_id: 1, cid: 0, phase: true, status: Status::SUCCESS };
        assert!(q.is_new(&Cqe { dw0: 0, dw1: 0, sq_head: 1, sq_id: 1, cid: 0, status: Status::SUCCESS }.bytes(true)));
        assert!(!q.is_new(&[0u8; 16]), "zeroed memory is not a completion in phase 1");
        for h in 1..=3 {
            q.pop(&done(h));
        }
        assert_eq!((q.sq_room(), q.phase), (3, true), "the controller consumed all three");
        assert_eq!(q.push(), Some(3));
        assert_eq!(q.pop(&done(0)), 0);
        assert_eq!((q.cq_head, q.phase), (0, false), "wrapped: phase 0 marks new entries");
        assert_eq!((q.sq_tail, q.sq_room()), (0, 3));
    }

    #[test]
    fn prp_entries() {
        let mut list = [0u64; 32];
        assert_eq!(prps(&[0x1000], 0, &mut list), Some((0x1000, 0, 0)));
        assert_eq!(prps(&[0x1000, 0x5000], 0, &mut list), Some((0x1000, 0x5000, 0)));
        let pages: [u64; 32] = core::array::from_fn(|i| 0x10_0000 + 0x3000 * i as u64);
        assert_eq!(prps(&pages, 0x8100, &mut list), Some((0x10_0000, 0x8100, 31)));
        assert_eq!(list[30], 0x10_0000 + 0x3000 * 31);
        assert_eq!(prps(&pages, 0x8f80, &mut list), None, "the list would cross a page");
        assert_eq!(prps(&pages, 0x8104, &mut list), None, "not qword aligned");
        assert_eq!(prps(&[], 0, &mut list), None);
    }
}
