//! The SSD model driven the way a host driver does it: registers, admin
//! queue, I/O queues, data through PRPs, bad commands and their status,
//! the phase tag, a full completion queue, the fault modes and timing.

use super::command::Status;
use super::media::Timing;
use super::*;

/// Flat memory at 0 (the "DPU memory" the SSD reaches).
struct Mem(Vec<u8>);

impl Dma for Mem {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> bool {
        let a = addr as usize;
        match self.0.get(a..a + out.len()) {
            Some(s) => {
                out.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let a = addr as usize;
        match self.0.get_mut(a..a + data.len()) {
            Some(s) => {
                s.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

const ASQ: u64 = 0x1000;
const ACQ: u64 = 0x2000;
const IOSQ: u64 = 0x3000;
const IOCQ: u64 = 0x4000;
const DATA: u64 = 0x10_000;
const LIST: u64 = 0x8000;

fn profile() -> Profile {
    Profile {
        capacity: 1 << 20,
        lba_shift: 9,
        timing: Timing { read_cycles: 80_000, write_cycles: 20_000, admin_cycles: 1_000, bytes_per_s: 7_000_000_000, clock_hz: 1_000_000_000, channels: 4 },
        max_queue_entries: 8,
        io_queues: 4,
    }
}

/// A minimal polling host: its own SQ tails, CQ heads and phases.
struct Host {
    ssd: Ssd,
    mem: Mem,
    now: u64,
    tail: [u16; 2],
    head: [u16; 2],
    phase: [bool; 2],
    entries: [u16; 2],
    cid: u16,
}

impl Host {
    fn new() -> Host {
        let mut h = Host { ssd: Ssd::new(0, profile()), mem: Mem(vec![0; 0x40_0000]), now: 0, tail: [0; 2], head: [0; 2], phase: [true; 2], entries: [4, 8], cid: 0 };
        h.w(r::AQA, 3 << 16 | 3);
        h.w(r::ASQ, ASQ);
        h.w(r::ACQ, ACQ);
        h.w(r::CC, 1 | 6 << 16 | 4 << 20);
        assert_eq!(h.ssd.read(r::CSTS, 4), Some(1), "ready");
        h
    }

    fn w(&mut self, off: u64, v: u64) {
        let size = if matches!(off, r::ASQ | r::ACQ) { 8 } else { 4 };
        assert!(self.ssd.write(off, size, v, self.now, &mut self.mem));
    }

    /// Submits an SQE on queue `q` (0 admin, 1 I/O); returns its CID.
    fn submit(&mut self, q: usize, opcode: u8, nsid: u32, prp1: u64, prp2: u64, cdw: [u32; 3]) -> u16 {
        self.cid += 1;
        let mut e = [0u8; 64];
        e[0] = opcode;
        e[2..4].copy_from_slice(&self.cid.to_le_bytes());
        e[4..8].copy_from_slice(&nsid.to_le_bytes());
        e[24..32].copy_from_slice(&prp1.to_le_bytes());
        e[32..40].copy_from_slice(&prp2.to_le_bytes());
        for (i, d) in cdw.iter().enumerate() {
            e[40 + 4 * i..44 + 4 * i].copy_from_slice(&d.to_le_bytes());
        }
        let base = if q == 0 { ASQ } else { IOSQ };
        self.mem.write(base + u64::from(self.tail[q]) * 64, &e);
        self.tail[q] = (self.tail[q] + 1) % self.entries[q];
        self.w(r::sq_tail(q as u16), u64::from(self.tail[q]));
        self.cid
    }

    /// Runs the SSD until `q`'s next completion: (cid, status, dw0, time).
    fn reap(&mut self, q: usize) -> (u16, Status, u32, u64) {
        loop {
            let base = if q == 0 { ACQ } else { IOCQ };
            let mut c = [0u8; 16];
            self.mem.read(base + u64::from(self.head[q]) * 16, &mut c);
            let dw3 = u32::from_le_bytes(c[12..16].try_into().unwrap());
            if (dw3 >> 16) & 1 == u32::from(self.phase[q]) {
                self.head[q] = (self.head[q] + 1) % self.entries[q];
                if self.head[q] == 0 {
                    self.phase[q] = !self.phase[q];
                }
                self.w(r::cq_head(q as u16), u64::from(self.head[q]));
                let st = Status { sc: (dw3 >> 17) as u8, sct: ((dw3 >> 25) & 7) as u8, dnr: dw3 >> 31 != 0 };
                return (dw3 as u16, st, u32::from_le_bytes(c[0..4].try_into().unwrap()), self.now);
            }
            self.now = self.ssd.next_due().expect("a command in flight");
            self.ssd.complete_due(self.now, &mut self.mem);
        }
    }

    fn admin(&mut self, opcode: u8, nsid: u32, prp1: u64, cdw: [u32; 3]) -> (Status, u32) {
        let cid = self.submit(0, opcode, nsid, prp1, 0, cdw);
        let (c, st, dw0, _) = self.reap(0);
        assert_eq!(c, cid);
        (st, dw0)
    }

    /// Number of queues, one I/O CQ and SQ (8 entries).
    fn io_queues(&mut self) {
        assert_eq!(self.admin(0x09, 0, 0, [7, 0, 0]), (Status::SUCCESS, 0));
        assert_eq!(self.admin(0x05, 0, IOCQ, [7 << 16 | 1, 1, 0]).0, Status::SUCCESS);
        assert_eq!(self.admin(0x01, 0, IOSQ, [7 << 16 | 1, 1 << 16 | 1, 0]).0, Status::SUCCESS);
    }

    fn rw(&mut self, opcode: u8, lba: u64, blocks: u32, prp1: u64, prp2: u64) -> (Status, u64) {
        let start = self.now;
        let cid = self.submit(1, opcode, 1, prp1, prp2, [lba as u32, (lba >> 32) as u32, blocks - 1]);
        let (c, st, _, t) = self.reap(1);
        assert_eq!(c, cid);
        (st, t - start)
    }
}

#[test]
fn registers_after_reset_and_enable() {
    let mut s = Ssd::new(3, profile());
    let cap = s.read(r::CAP, 8).unwrap();
    assert_eq!(cap & 0xffff, 7, "MQES is 0's based");
    assert_eq!(cap >> 16 & 1, 1, "contiguous queues required");
    assert_eq!(cap >> 37 & 1, 1, "NVM command set");
    assert_eq!(s.read(r::VS, 4), Some(0x0002_0000));
    assert_eq!(s.read(r::CSTS, 4), Some(0));
    // Enabling without admin queues: controller fatal status.
    let mut m = Mem(vec![0; 0x1000]);
    s.write(r::CC, 4, 1, 0, &mut m);
    assert_eq!(s.read(r::CSTS, 4), Some(2), "CFS, not ready");
    let h = Host::new();
    assert_eq!(h.ssd.read(r::AQA, 4), Some(3 << 16 | 3));
    assert_eq!(h.ssd.read(r::ASQ, 8), Some(ASQ));
}

#[test]
fn identify_controller_namespace_and_list() {
    let mut h = Host::new();
    assert_eq!(h.admin(0x06, 0, DATA, [1, 0, 0]).0, Status::SUCCESS);
    let mut id = [0u8; 4096];
    h.mem.read(DATA, &mut id);
    assert_eq!(&id[24..45], b"dpusim NVMe SSD model");
    assert_eq!(id[77], 5, "MDTS 128 KiB");
    assert_eq!(u32::from_le_bytes(id[516..520].try_into().unwrap()), 1, "NN");
    assert_eq!(h.admin(0x06, 1, DATA, [0, 0, 0]).0, Status::SUCCESS);
    h.mem.read(DATA, &mut id);
    assert_eq!(u64::from_le_bytes(id[0..8].try_into().unwrap()), 2048, "NSZE: 1 MiB of 512 B blocks");
    assert_eq!(id[130], 9, "LBADS");
    assert_eq!(h.admin(0x06, 0, DATA, [2, 0, 0]).0, Status::SUCCESS);
    h.mem.read(DATA, &mut id);
    assert_eq!(&id[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.admin(0x06, 2, DATA, [0, 0, 0]).0, Status::INVALID_NAMESPACE);
    assert_eq!(h.admin(0x06, 0, DATA, [0x55, 0, 0]).0, Status::INVALID_FIELD);
}

#[test]
fn queue_creation_is_checked() {
    let mut h = Host::new();
    // Number of Queues: granted up to the controller's 4 (0's based 3).
    assert_eq!(h.admin(0x09, 0, 0, [7, 63 << 16 | 63, 0]), (Status::SUCCESS, 3 << 16 | 3));
    assert_eq!(h.admin(0x09, 0, 0, [7, 0xffff, 0]).0, Status::INVALID_FIELD);
    // SQ before its CQ, QID 0, too large, not contiguous.
    assert_eq!(h.admin(0x01, 0, IOSQ, [7 << 16 | 1, 1 << 16 | 1, 0]).0, Status::COMPLETION_QUEUE_INVALID);
    assert_eq!(h.admin(0x05, 0, IOCQ, [7 << 16, 1, 0]).0, Status::INVALID_QUEUE_IDENTIFIER);
    assert_eq!(h.admin(0x05, 0, IOCQ, [8 << 16 | 1, 1, 0]).0, Status::INVALID_QUEUE_SIZE);
    assert_eq!(h.admin(0x05, 0, IOCQ, [7 << 16 | 1, 0, 0]).0, Status::INVALID_FIELD);
    assert_eq!(h.admin(0x05, 0, IOCQ, [7 << 16 | 1, 1, 0]).0, Status::SUCCESS);
    assert_eq!(h.admin(0x05, 0, IOCQ, [7 << 16 | 1, 1, 0]).0, Status::INVALID_QUEUE_IDENTIFIER, "exists");
    assert_eq!(h.admin(0x01, 0, IOSQ, [7 << 16 | 1, 1 << 16 | 1, 0]).0, Status::SUCCESS);
    assert_eq!(h.admin(0x04, 0, 0, [1, 0, 0]).0, Status::INVALID_QUEUE_DELETION, "SQ 1 still uses CQ 1");
    assert_eq!(h.admin(0x00, 0, 0, [1, 0, 0]).0, Status::SUCCESS);
    assert_eq!(h.admin(0x04, 0, 0, [1, 0, 0]).0, Status::SUCCESS);
    assert_eq!(h.admin(0x7f, 0, 0, [0, 0, 0]).0, Status::INVALID_OPCODE);
}

#[test]
fn write_then_read_back_through_prp_lists() {
    let mut h = Host::new();
    h.io_queues();
    // 128 KiB at LBA 100: PRP1 mid-page, PRP2 a list of 32 entries.
    let len = 128 * 1024;
    let pattern: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let first = DATA + 0x200;
    let mut entries = Vec::new();
    let mut at = 4096 - 0x200;
    let mut page = DATA + 0x1_0000;
    while at < len {
        entries.push(page);
        page += 4096;
        at += 4096;
    }
    for (i, e) in entries.iter().enumerate() {
        h.mem.write(LIST + 8 * i as u64, &e.to_le_bytes());
    }
    // Scatter the pattern into those pages.
    h.mem.write(first, &pattern[..4096 - 0x200]);
    for (i, e) in entries.iter().enumerate() {
        let from = 4096 - 0x200 + i * 4096;
        h.mem.write(*e, &pattern[from..(from + 4096).min(len)]);
    }
    assert_eq!(h.rw(0x01, 100, 256, first, LIST).0, Status::SUCCESS);
    // Clear, read back, gather.
    h.mem.0[DATA as usize..DATA as usize + 0x40_000].fill(0);
    assert_eq!(h.rw(0x02, 100, 256, first, LIST).0, Status::SUCCESS);
    let mut back = vec![0u8; len];
    h.mem.read(first, &mut back[..4096 - 0x200]);
    for (i, e) in entries.iter().enumerate() {
        let from = 4096 - 0x200 + i * 4096;
        let to = (from + 4096).min(len);
        h.mem.read(*e, &mut back[from..to]);
    }
    assert!(back == pattern, "128 KiB read back");
    // Two pages: PRP2 is the second page itself.
    h.mem.write(DATA, &[0xab; 8192]);
    assert_eq!(h.rw(0x01, 0, 16, DATA, DATA + 0x3000).0, Status::SUCCESS);
    assert_eq!(h.ssd.stats.writes, 2);
}

#[test]
fn bad_io_commands_get_their_status() {
    let mut h = Host::new();
    h.io_queues();
    assert_eq!(h.rw(0x7e, 0, 1, DATA, 0).0, Status::INVALID_OPCODE);
    assert_eq!(h.rw(0x02, 2047, 2, DATA, 0).0, Status::LBA_OUT_OF_RANGE);
    assert_eq!(h.rw(0x02, u64::MAX - 1, 4, DATA, 0).0, Status::LBA_OUT_OF_RANGE, "wrapping range");
    assert_eq!(h.rw(0x02, 0, 257, DATA, LIST).0, Status::INVALID_FIELD, "beyond MDTS");
    assert_eq!(h.rw(0x02, 0, 8, DATA + 2, 0).0, Status::PRP_OFFSET_INVALID);
    assert_eq!(h.rw(0x02, 0, 16, DATA, DATA + 0x10).0, Status::PRP_OFFSET_INVALID, "PRP2 not page aligned");
    assert_eq!(h.rw(0x02, 0, 8, 0x7f_f000_0000, 0).0, Status::DATA_TRANSFER_ERROR, "not memory");
    let cid = h.submit(1, 0x02, 9, DATA, 0, [0, 0, 0]);
    assert_eq!(h.reap(1).0, cid);
    assert_eq!(h.ssd.stats.errors, 8);
    // Bad doorbells are ignored, not fatal.
    h.w(r::sq_tail(1), 200);
    h.w(r::sq_tail(3), 1);
    assert_eq!(h.ssd.stats.bad_doorbells, 2);
    assert_eq!(h.rw(0x00, 0, 1, 0, 0).0, Status::SUCCESS, "flush");
}

#[test]
fn phase_tag_flips_and_a_full_cq_holds_completions() {
    let mut h = Host::new();
    h.io_queues();
    // 20 reads through an 8-entry queue pair: the phase flips twice.
    for i in 0..20 {
        assert_eq!(h.rw(0x02, i, 1, DATA, 0).0, Status::SUCCESS);
    }
    assert!(h.phase[1], "phase back to 1 after two wraps (16 entries)");
    // Seven commands at once: the CQ (8 entries, 7 usable) fills; an 8th
    // waits until the head moves.
    for i in 0..7 {
        h.submit(1, 0x02, 1, DATA + 512 * i, 0, [i as u32, 0, 0]);
    }
    while let Some(t) = h.ssd.next_due() {
        h.now = t;
        h.ssd.complete_due(t, &mut h.mem);
    }
    h.submit(1, 0x02, 1, DATA, 0, [0, 0, 0]);
    let t = h.ssd.next_due().unwrap();
    h.ssd.complete_due(t, &mut h.mem);
    let seen: Vec<u16> = (0..8).map(|_| h.reap(1).0).collect();
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[7], h.cid, "the held completion arrives after the head moved");
}

#[test]
fn latency_parallelism_and_bandwidth() {
    let mut h = Host::new();
    h.io_queues();
    // A lone 4 KiB read: media 80 us + 4096 B at 7 GB/s (586 ns).
    let (st, t) = h.rw(0x02, 0, 8, DATA, 0);
    assert_eq!(st, Status::SUCCESS);
    assert_eq!(t, 80_000 + 586);
    // Four channels: five reads at once, the fifth waits for a unit.
    let start = h.now;
    for i in 0..5 {
        h.submit(1, 0x02, 1, DATA + 4096 * i, 0, [8 * i as u32, 0, 7]);
    }
    let mut ends: Vec<u64> = Vec::new();
    for _ in 0..5 {
        ends.push(h.reap(1).3 - start);
    }
    // Four at once: 80 us each, their 586 ns transfers one after another.
    assert_eq!(ends[3], 80_000 + 4 * 586, "{ends:?}");
    assert!(ends[4] >= 160_000, "{ends:?}");
    // A write: link then 20 us.
    assert_eq!(h.rw(0x01, 0, 8, DATA, 0).1, 586 + 20_000);
}

#[test]
fn fail_fault_fails_new_and_inflight_commands_with_internal_error() {
    let mut h = Host::new();
    h.io_queues();
    h.submit(1, 0x02, 1, DATA, 0, [0, 0, 0]);
    h.ssd.fail(h.now + 10);
    let (_, st, _, _) = h.reap(1);
    assert_eq!(st, Status { dnr: true, ..Status::INTERNAL_ERROR }, "in flight when it failed");
    assert_eq!(h.rw(0x01, 0, 1, DATA, 0).0.sc, 0x06);
    h.ssd.recover();
    assert_eq!(h.rw(0x01, 0, 1, DATA, 0).0, Status::SUCCESS);
    // Slow: every operation takes 2 ms.
    h.ssd.slow(2_000_000, None);
    assert!(h.rw(0x02, 0, 1, DATA, 0).1 >= 2_000_000);
}

#[test]
fn disable_resets_queues() {
    let mut h = Host::new();
    h.io_queues();
    h.submit(1, 0x02, 1, DATA, 0, [0, 0, 0]);
    h.w(r::CC, 0);
    assert_eq!(h.ssd.read(r::CSTS, 4), Some(0));
    assert_eq!(h.ssd.next_due(), None, "in-flight commands dropped");
    h.w(r::sq_tail(1), 1);
    assert_eq!(h.ssd.stats.bad_doorbells, 1, "queues gone");
}

/// Write Zeroes zeroes its range and nothing else; Dataset Management
/// with AD deallocates every listed range (read back as zeroes, DLFEAT
/// 001b), without AD changes nothing; a range past the end is LBA Out of
/// Range, a list the SSD cannot read is a Data Transfer Error.
#[test]
fn write_zeroes_and_deallocate() {
    let mut h = Host::new();
    h.io_queues();
    let blk = 512usize;
    h.mem.write(DATA, &[0x5a; 8 * 512]);
    assert_eq!(h.rw(0x01, 10, 8, DATA, 0).0, Status::SUCCESS);
    let read = |h: &mut Host, lba: u64| {
        h.mem.0[DATA as usize..DATA as usize + blk].fill(0xee);
        assert_eq!(h.rw(0x02, lba, 1, DATA, 0).0, Status::SUCCESS);
        h.mem.0[DATA as usize]
    };
    // Write Zeroes of LBAs 11..13.
    assert_eq!(h.rw(0x08, 11, 2, 0, 0).0, Status::SUCCESS);
    assert_eq!([read(&mut h, 10), read(&mut h, 11), read(&mut h, 12), read(&mut h, 13)], [0x5a, 0, 0, 0x5a]);
    assert_eq!(h.rw(0x08, 2047, 2, 0, 0).0, Status::LBA_OUT_OF_RANGE);
    // DSM: two ranges (LBA 14, 1 block; LBA 17, 1 block) at LIST.
    let mut list = [0u8; 32];
    list[4..8].copy_from_slice(&1u32.to_le_bytes());
    list[8..16].copy_from_slice(&14u64.to_le_bytes());
    list[20..24].copy_from_slice(&1u32.to_le_bytes());
    list[24..32].copy_from_slice(&17u64.to_le_bytes());
    h.mem.write(LIST, &list);
    let dsm = |h: &mut Host, nr: u32, ad: bool, prp1: u64| {
        let cid = h.submit(1, 0x09, 1, prp1, 0, [nr, u32::from(ad) << 2, 0]);
        let (c, st, _, _) = h.reap(1);
        assert_eq!(c, cid);
        st
    };
    assert_eq!(dsm(&mut h, 1, false, LIST), Status::SUCCESS);
    assert_eq!(read(&mut h, 14), 0x5a, "no AD: nothing deallocated");
    assert_eq!(dsm(&mut h, 1, true, LIST), Status::SUCCESS);
    assert_eq!([read(&mut h, 14), read(&mut h, 15), read(&mut h, 16), read(&mut h, 17)], [0, 0x5a, 0x5a, 0]);
    list[24..32].copy_from_slice(&4096u64.to_le_bytes());
    h.mem.write(LIST, &list);
    assert_eq!(dsm(&mut h, 1, true, LIST), Status::LBA_OUT_OF_RANGE);
    assert_eq!(dsm(&mut h, 0, true, 0x7f_f000_0000), Status::DATA_TRANSFER_ERROR);
    assert_eq!(read(&mut h, 15), 0x5a, "failed commands changed nothing");
    let id = command::identify_controller(0, 1);
    assert_eq!(id[520] & 0b1100, 0b1100, "ONCS: DSM and Write Zeroes");
}
