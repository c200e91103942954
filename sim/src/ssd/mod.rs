//! Local NVMe SSDs on the card's downstream PCIe side: each an NVMe
//! controller (NVMe Base 2.0) behind a BAR0 in the chip's `devices.ssd`
//! window (layout `dpu_hal::regs::ssd`), with one namespace (NSID 1) on
//! its [`media`]. The firmware's NVMe host driver sets it up and submits
//! I/O; the SSD reads its queues and moves data in DPU memory itself
//! (peer-to-peer DMA: it reaches DPU memory, not the host's).
//!
//! What it does: CAP / VS / CC / CSTS / AQA / ASQ / ACQ and the doorbells
//! (§3.1.4); controller enable and reset (§3.5.1-2); the admin commands
//! Identify (CNS 00h / 01h / 02h), Create / Delete I/O Submission and
//! Completion Queue, Set / Get Features Number of Queues (§5); Read,
//! Write and Flush with PRP data pointers (NVM Command Set 1.0 §3.2).
//! Completions carry the phase tag (§4.6) and go out when the [`media`]
//! timing says, through the simulator's event queue; a completion queue
//! that is full holds them until its head doorbell moves. Interrupts are
//! not modeled: the driver polls (its queues are created with IEN = 0).
//! Commands are fetched when their doorbell is written and MMIO reaches
//! the SSD at once (the downstream link's latency is not modeled).
//!
//! Scenario faults: `ssd-fail` (every command submitted or in flight
//! from then on completes with Internal Error and DNR, as a drive that
//! went read-only-dead does), `ssd-slow` (media time per operation).

pub mod bay;
pub mod command;
pub mod media;
#[cfg(test)]
mod tests;

use command::{Command, Completion, Status, CQE, MAX_TRANSFER, PAGE, SQE};
use dpu_hal::regs::ssd as r;
use media::{Kind, Media, Timing};
use std::collections::{BTreeMap, VecDeque};

const _: () = assert!(dpu_targets::window::SSD == r::WINDOW);

/// DPU memory as an SSD reaches it; `false`: the access failed (no memory
/// there), which the SSD reports as a Data Transfer Error.
pub trait Dma {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> bool;
    fn write(&mut self, addr: u64, data: &[u8]) -> bool;
}

/// Admin command opcodes (NVMe Base 2.0 §5, Figure 138).
mod admin {
    pub const DELETE_SQ: u8 = 0x00;
    pub const CREATE_SQ: u8 = 0x01;
    pub const DELETE_CQ: u8 = 0x04;
    pub const CREATE_CQ: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
    pub const SET_FEATURES: u8 = 0x09;
    pub const GET_FEATURES: u8 = 0x0a;
    /// Feature 07h: Number of Queues (§5.27.1.5).
    pub const FEATURE_NUMBER_OF_QUEUES: u8 = 0x07;
}

/// NVM command set I/O opcodes (NVM Command Set 1.0 §3, Figure 22).
mod io {
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE_ZEROES: u8 = 0x08;
    pub const DSM: u8 = 0x09;
}

/// CC fields (§3.1.4.5).
const CC_EN: u32 = 1;
const CC_SHN_SHIFT: u32 = 14;
/// CSTS fields (§3.1.4.6).
const CSTS_RDY: u32 = 1;
const CSTS_CFS: u32 = 1 << 1;
const CSTS_SHST_COMPLETE: u32 = 2 << 2;

/// The fixed profile of one SSD (from the board file).
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub capacity: u64,
    pub lba_shift: u32,
    pub timing: Timing,
    /// Entries per queue (CAP.MQES + 1).
    pub max_queue_entries: u32,
    /// I/O queue pairs the controller has.
    pub io_queues: u16,
}

impl Profile {
    pub fn from_board(s: &dpu_targets::Ssds, clock_hz: u64) -> Profile {
        let c = |ns| dpu_targets::ns_to_cycles(ns, clock_hz).max(1);
        Profile {
            capacity: s.capacity,
            lba_shift: s.lba_size.trailing_zeros(),
            timing: Timing {
                read_cycles: c(s.read_latency_ns),
                write_cycles: c(s.write_latency_ns),
                admin_cycles: c(s.admin_latency_ns),
                bytes_per_s: s.bandwidth_mbps * 1_000_000,
                clock_hz,
                channels: s.channels,
            },
            max_queue_entries: s.max_queue_entries,
            io_queues: s.io_queues.min((r::MAX_QUEUES - 1) as u32) as u16,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sq {
    base: u64,
    entries: u16,
    head: u16,
    tail: u16,
    cqid: u16,
}

#[derive(Debug)]
struct Cq {
    base: u64,
    entries: u16,
    head: u16,
    tail: u16,
    phase: bool,
    /// Completions waiting for room.
    backlog: VecDeque<Completion>,
}

impl Cq {
    fn new(base: u64, entries: u16) -> Cq {
        Cq { base, entries, head: 0, tail: 0, phase: true, backlog: VecDeque::new() }
    }

    fn full(&self) -> bool {
        (self.tail + 1) % self.entries == self.head
    }
}

/// What a command still does when its time comes.
#[derive(Debug)]
enum Then {
    Nothing,
    /// Data to the host's buffer (Identify).
    Give(Vec<(u64, u64)>, Vec<u8>),
    Read { offset: u64, segs: Vec<(u64, u64)> },
    Write { offset: u64, segs: Vec<(u64, u64)> },
    /// Byte ranges (offset, length) that read back as zeroes from now on
    /// (Write Zeroes; Dataset Management's deallocate, DLFEAT 001b).
    Zero(Vec<(u64, u64)>),
}

#[derive(Debug)]
struct Pending {
    sqid: u16,
    completion: Completion,
    then: Then,
}

/// Counters for the report and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub commands: u64,
    pub reads: u64,
    pub writes: u64,
    pub bytes: u64,
    /// Completions with a status other than success.
    pub errors: u64,
    /// Doorbell writes naming no queue or an invalid value (ignored).
    pub bad_doorbells: u64,
}

/// One SSD's NVMe controller.
pub struct Ssd {
    pub index: usize,
    profile: Profile,
    media: Media,
    cc: u32,
    csts: u32,
    aqa: u32,
    asq: u64,
    acq: u64,
    /// Queues by ID (0 = admin).
    sqs: Vec<Option<Sq>>,
    cqs: Vec<Option<Cq>>,
    /// Commands in flight by (due cycle, order).
    inflight: BTreeMap<(u64, u64), Pending>,
    seq: u64,
    /// `ssd-fail`: from this cycle on, every command fails.
    failed_at: Option<u64>,
    /// Queues granted by Set Features Number of Queues (0's based pair).
    granted: Option<(u16, u16)>,
    pub stats: Stats,
}

impl Ssd {
    pub fn new(index: usize, profile: Profile) -> Ssd {
        let q = usize::from(profile.io_queues) + 1;
        Ssd {
            index,
            profile,
            media: Media::new(profile.capacity, profile.lba_shift, profile.timing),
            cc: 0,
            csts: 0,
            aqa: 0,
            asq: 0,
            acq: 0,
            sqs: vec![None; q],
            cqs: (0..q).map(|_| None).collect(),
            inflight: BTreeMap::new(),
            seq: 0,
            failed_at: None,
            granted: None,
            stats: Stats::default(),
        }
    }

    /// Controller Capabilities (§3.1.4.1): MQES, CQR = 1 (contiguous
    /// queues), AMS = 0, TO = 1 (500 ms), DSTRD = 0, CSS bit 0 (NVM
    /// command set), MPSMIN = MPSMAX = 0 (4 KiB).
    pub fn cap(&self) -> u64 {
        let mqes = u64::from(self.profile.max_queue_entries - 1);
        mqes | 1 << 16 | 1 << 24 | 1 << 37
    }

    /// The namespace's media (tests, at-rest checks).
    pub fn media(&self) -> &Media {
        &self.media
    }

    /// A register read (4 or 8 bytes).
    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let v = match off & !7 {
            r::CAP => self.cap(),
            0x08 => u64::from(0x0002_0000u32), // VS 2.0; INTMS reads 0
            0x10 => u64::from(self.cc) << 32,  // INTMC 0, CC
            0x18 => u64::from(self.csts) << 32, // CSTS at 0x1c
            0x20 => u64::from(self.aqa) << 32,
            r::ASQ => self.asq,
            r::ACQ => self.acq,
            _ => 0,
        };
        match size {
            8 if off % 8 == 0 => Some(v),
            4 => Some(if off % 8 == 4 { v >> 32 } else { v & 0xffff_ffff }),
            _ => None,
        }
    }

    /// A register write at `now` (4 or 8 bytes); false = access fault.
    pub fn write(&mut self, off: u64, size: u8, v: u64, now: u64, dma: &mut dyn Dma) -> bool {
        if size != 4 && !(size == 8 && matches!(off, r::ASQ | r::ACQ)) {
            return false;
        }
        let enabled = self.cc & CC_EN != 0;
        match off {
            r::CC => self.write_cc(v as u32),
            r::AQA if !enabled => self.aqa = v as u32 & 0x0fff_0fff,
            r::ASQ if !enabled => self.asq = merge(self.asq, off, size, v),
            0x2c if !enabled => self.asq = merge(self.asq, off, size, v),
            r::ACQ if !enabled => self.acq = merge(self.acq, off, size, v),
            0x34 if !enabled => self.acq = merge(self.acq, off, size, v),
            o if o >= r::DOORBELL && o < r::WINDOW => self.doorbell(o - r::DOORBELL, v as u32, now, dma),
            _ => {}
        }
        true
    }

    fn write_cc(&mut self, v: u32) {
        let was = self.cc & CC_EN != 0;
        self.cc = v;
        if (v >> CC_SHN_SHIFT) & 3 != 0 {
            self.csts |= CSTS_SHST_COMPLETE;
        }
        match (was, v & CC_EN != 0) {
            (false, true) => self.enable(),
            (true, false) => self.reset(),
            _ => {}
        }
    }

    /// CC.EN 0 -> 1 (§3.5.1): the admin queues from AQA / ASQ / ACQ;
    /// a bad setup is a fatal controller status (CSTS.CFS).
    fn enable(&mut self) {
        let mps = (self.cc >> 7) & 0xf;
        let sqs = (self.aqa & 0xfff) + 1;
        let cqs = ((self.aqa >> 16) & 0xfff) + 1;
        let max = self.profile.max_queue_entries.min(4096);
        let ok = mps == 0 && sqs >= 2 && cqs >= 2 && sqs <= max && cqs <= max && self.asq % PAGE == 0 && self.acq % PAGE == 0 && self.asq != 0 && self.acq != 0;
        if !ok {
            self.csts |= CSTS_CFS;
            return;
        }
        self.sqs[0] = Some(Sq { base: self.asq, entries: sqs as u16, head: 0, tail: 0, cqid: 0 });
        self.cqs[0] = Some(Cq::new(self.acq, cqs as u16));
        self.csts = (self.csts & !CSTS_CFS) | CSTS_RDY;
    }

    /// CC.EN 1 -> 0 (§3.7.2, controller reset): queues and commands in
    /// flight are dropped; nothing more is written to memory.
    fn reset(&mut self) {
        self.sqs.iter_mut().for_each(|q| *q = None);
        self.cqs.iter_mut().for_each(|q| *q = None);
        self.inflight.clear();
        self.granted = None;
        self.csts = 0;
    }

    /// A doorbell write at `off` from the doorbell base (§3.1.4.21-22).
    fn doorbell(&mut self, off: u64, v: u32, now: u64, dma: &mut dyn Dma) {
        if self.csts & CSTS_RDY == 0 || off % 4 != 0 {
            self.stats.bad_doorbells += 1;
            return;
        }
        let qid = (off / 8) as usize;
        if off % 8 == 0 {
            match self.sqs.get_mut(qid).and_then(|q| q.as_mut()) {
                Some(sq) if v < u32::from(sq.entries) => sq.tail = v as u16,
                _ => return self.stats.bad_doorbells += 1,
            }
            self.fetch(qid as u16, now, dma);
        } else {
            match self.cqs.get_mut(qid).and_then(|q| q.as_mut()) {
                Some(cq) if v < u32::from(cq.entries) => cq.head = v as u16,
                _ => return self.stats.bad_doorbells += 1,
            }
            self.drain_backlog(qid, dma);
        }
    }

    /// Fetches and starts the commands of SQ `qid` up to its tail.
    fn fetch(&mut self, qid: u16, now: u64, dma: &mut dyn Dma) {
        loop {
            let Some(sq) = self.sqs[usize::from(qid)].as_mut() else { return };
            if sq.head == sq.tail {
                return;
            }
            let at = sq.base + u64::from(sq.head) * SQE as u64;
            sq.head = (sq.head + 1) % sq.entries;
            let mut b = [0u8; SQE];
            if !dma.read(at, &mut b) {
                // No command to answer (its CID is unknown): dropped.
                self.stats.bad_doorbells += 1;
                continue;
            }
            let cmd = Command::parse(&b);
            self.stats.commands += 1;
            let (due, dw0, status, then) = if self.failed_at.is_some_and(|t| now >= t) {
                (now + self.profile.timing.admin_cycles, 0, Status { dnr: true, ..Status::INTERNAL_ERROR }, Then::Nothing)
            } else if qid == 0 {
                let (dw0, st, then) = self.admin(&cmd, dma);
                (now + self.profile.timing.admin_cycles, dw0, st, then)
            } else {
                self.io(&cmd, now, dma)
            };
            self.seq += 1;
            let completion = Completion { dw0, sq_head: 0, sqid: qid, cid: cmd.cid, status };
            self.inflight.insert((due, self.seq), Pending { sqid: qid, completion, then });
        }
    }

    /// An admin command: (completion dword 0, status, data to give).
    fn admin(&mut self, cmd: &Command, dma: &mut dyn Dma) -> (u32, Status, Then) {
        let done = |st| (0, st, Then::Nothing);
        if cmd.psdt != 0 {
            return done(Status::INVALID_FIELD);
        }
        match cmd.opcode {
            admin::IDENTIFY => {
                let data = match cmd.cdw10 & 0xff {
                    0x00 if cmd.nsid == 1 || cmd.nsid == 0xffff_ffff => command::identify_namespace(self.media.blocks(), self.media.lba_shift()),
                    0x00 => return done(Status::INVALID_NAMESPACE),
                    0x01 => command::identify_controller(self.index, 1),
                    0x02 if cmd.nsid >= 0xffff_fffe => return done(Status::INVALID_NAMESPACE),
                    0x02 => command::active_namespaces(cmd.nsid),
                    _ => return done(Status::INVALID_FIELD),
                };
                match command::prp_segments(dma, cmd.prp1, cmd.prp2, data.len() as u64) {
                    Ok(segs) => (0, Status::SUCCESS, Then::Give(segs, data)),
                    Err(st) => done(st),
                }
            }
            admin::SET_FEATURES | admin::GET_FEATURES if cmd.cdw10 & 0xff == u32::from(admin::FEATURE_NUMBER_OF_QUEUES) => {
                let max = self.profile.io_queues - 1;
                if cmd.opcode == admin::GET_FEATURES {
                    let (s, c) = self.granted.unwrap_or((max, max));
                    return (u32::from(c) << 16 | u32::from(s), Status::SUCCESS, Then::Nothing);
                }
                let (nsqr, ncqr) = (cmd.cdw11 as u16, (cmd.cdw11 >> 16) as u16);
                if nsqr == 0xffff || ncqr == 0xffff {
                    return done(Status::INVALID_FIELD);
                }
                let g = (nsqr.min(max), ncqr.min(max));
                self.granted = Some(g);
                (u32::from(g.1) << 16 | u32::from(g.0), Status::SUCCESS, Then::Nothing)
            }
            admin::SET_FEATURES | admin::GET_FEATURES => done(Status::INVALID_FIELD),
            admin::CREATE_CQ => done(self.create_cq(cmd)),
            admin::CREATE_SQ => done(self.create_sq(cmd)),
            admin::DELETE_SQ => done(self.delete_sq(cmd.cdw10 as u16)),
            admin::DELETE_CQ => done(self.delete_cq(cmd.cdw10 as u16)),
            _ => done(Status::INVALID_OPCODE),
        }
    }

    /// The queue ID and entry count of a Create I/O queue command, checked
    /// (§5.4, §5.5: QID in CDW10 15:0, QSIZE 0's based in 31:16).
    fn new_queue(&self, cmd: &Command) -> Result<(usize, u16), Status> {
        let qid = (cmd.cdw10 & 0xffff) as usize;
        let entries = (cmd.cdw10 >> 16) + 1;
        if qid == 0 || qid >= self.sqs.len() {
            return Err(Status::INVALID_QUEUE_IDENTIFIER);
        }
        if entries < 2 || entries > self.profile.max_queue_entries || entries > u32::from(u16::MAX) {
            return Err(Status::INVALID_QUEUE_SIZE);
        }
        // Physically contiguous (CAP.CQR = 1), page aligned.
        if cmd.cdw11 & 1 == 0 || cmd.prp1 % PAGE != 0 || cmd.prp1 == 0 {
            return Err(Status::INVALID_FIELD);
        }
        Ok((qid, entries as u16))
    }

    fn create_cq(&mut self, cmd: &Command) -> Status {
        let (qid, entries) = match self.new_queue(cmd) {
            Ok(q) => q,
            Err(st) => return st,
        };
        if self.cqs[qid].is_some() {
            return Status::INVALID_QUEUE_IDENTIFIER;
        }
        // Interrupts are not modeled: IEN must be 0 (polled queues).
        if cmd.cdw11 & 2 != 0 {
            return Status::INVALID_FIELD;
        }
        self.cqs[qid] = Some(Cq::new(cmd.prp1, entries));
        Status::SUCCESS
    }

    fn create_sq(&mut self, cmd: &Command) -> Status {
        let (qid, entries) = match self.new_queue(cmd) {
            Ok(q) => q,
            Err(st) => return st,
        };
        if self.sqs[qid].is_some() {
            return Status::INVALID_QUEUE_IDENTIFIER;
        }
        let cqid = (cmd.cdw11 >> 16) as u16;
        if cqid == 0 || self.cqs.get(usize::from(cqid)).is_none_or(|c| c.is_none()) {
            return Status::COMPLETION_QUEUE_INVALID;
        }
        self.sqs[qid] = Some(Sq { base: cmd.prp1, entries, head: 0, tail: 0, cqid });
        Status::SUCCESS
    }

    /// Delete I/O Submission Queue (§5.7): its commands in flight are
    /// aborted (their completions are not posted).
    fn delete_sq(&mut self, qid: u16) -> Status {
        let q = usize::from(qid);
        if q == 0 || self.sqs.get(q).is_none_or(|s| s.is_none()) {
            return Status::INVALID_QUEUE_IDENTIFIER;
        }
        self.sqs[q] = None;
        self.inflight.retain(|_, p| p.sqid != qid);
        Status::SUCCESS
    }

    /// Delete I/O Completion Queue (§5.6): refused while an SQ uses it.
    fn delete_cq(&mut self, qid: u16) -> Status {
        let q = usize::from(qid);
        if q == 0 || self.cqs.get(q).is_none_or(|c| c.is_none()) {
            return Status::INVALID_QUEUE_IDENTIFIER;
        }
        if self.sqs.iter().flatten().any(|s| s.cqid == qid) {
            return Status::INVALID_QUEUE_DELETION;
        }
        self.cqs[q] = None;
        Status::SUCCESS
    }

    /// An I/O command: (due cycle, dword 0, status, data to move).
    fn io(&mut self, cmd: &Command, now: u64, dma: &mut dyn Dma) -> (u64, u32, Status, Then) {
        let quick = now + 1;
        let fail = |st| (quick, 0, st, Then::Nothing);
        let kind = match cmd.opcode {
            io::READ => Kind::Read,
            io::WRITE => Kind::Write,
            io::FLUSH => Kind::Flush,
            io::WRITE_ZEROES | io::DSM => Kind::Write,
            _ => return fail(Status::INVALID_OPCODE),
        };
        if cmd.psdt != 0 {
            return fail(Status::INVALID_FIELD);
        }
        if cmd.opcode == io::DSM {
            return self.dsm(cmd, now, dma);
        }
        if kind == Kind::Flush {
            if cmd.nsid != 1 && cmd.nsid != 0xffff_ffff {
                return fail(Status::INVALID_NAMESPACE);
            }
            return (self.media.schedule(now, Kind::Flush, 0), 0, Status::SUCCESS, Then::Nothing);
        }
        if cmd.nsid != 1 {
            return fail(Status::INVALID_NAMESPACE);
        }
        let (lba, n) = cmd.lba_range();
        if !self.media.in_range(lba, n) {
            return fail(Status::LBA_OUT_OF_RANGE);
        }
        let len = n << self.media.lba_shift();
        if cmd.opcode == io::WRITE_ZEROES {
            // NVM Command Set 1.0 §3.2.8: no data moves; DEAC and PRINFO
            // (CDW12 bits 25, 29:26) change nothing here.
            let due = self.media.schedule(now, Kind::Write, 0);
            return (due, 0, Status::SUCCESS, Then::Zero(vec![(lba << self.media.lba_shift(), len)]));
        }
        if len > MAX_TRANSFER {
            return fail(Status::INVALID_FIELD);
        }
        let segs = match command::prp_segments(dma, cmd.prp1, cmd.prp2, len) {
            Ok(s) => s,
            Err(st) => return fail(st),
        };
        let offset = lba << self.media.lba_shift();
        let due = self.media.schedule(now, kind, len);
        let then = if kind == Kind::Read { Then::Read { offset, segs } } else { Then::Write { offset, segs } };
        (due, 0, Status::SUCCESS, then)
    }

    /// Dataset Management (NVM Command Set 1.0 §3.2.3): CDW10 bits 7:0
    /// the number of ranges - 1, CDW11 bit 2 (AD) deallocate; the range
    /// list (16 bytes each: context attributes, length in blocks, start
    /// LBA; Figure 40) is read from the host at once and checked. Only
    /// deallocation does anything; deallocated blocks read as zeroes.
    fn dsm(&mut self, cmd: &Command, now: u64, dma: &mut dyn Dma) -> (u64, u32, Status, Then) {
        let fail = |st| (now + 1, 0, st, Then::Nothing);
        if cmd.nsid != 1 {
            return fail(Status::INVALID_NAMESPACE);
        }
        let ranges = (cmd.cdw10 & 0xff) as u64 + 1;
        let segs = match command::prp_segments(dma, cmd.prp1, cmd.prp2, ranges * 16) {
            Ok(s) => s,
            Err(st) => return fail(st),
        };
        let mut list = vec![0u8; (ranges * 16) as usize];
        let mut at = 0usize;
        for &(a, n) in &segs {
            if !dma.read(a, &mut list[at..at + n as usize]) {
                return fail(Status::DATA_TRANSFER_ERROR);
            }
            at += n as usize;
        }
        let mut zero = Vec::new();
        for r in list.chunks_exact(16) {
            let blocks = u64::from(u32::from_le_bytes(r[4..8].try_into().unwrap_or_default()));
            let slba = u64::from_le_bytes(r[8..16].try_into().unwrap_or_default());
            if !self.media.in_range(slba, blocks) {
                return fail(Status::LBA_OUT_OF_RANGE);
            }
            if blocks > 0 {
                zero.push((slba << self.media.lba_shift(), blocks << self.media.lba_shift()));
            }
        }
        let deallocate = cmd.cdw11 & 1 << 2 != 0;
        let due = self.media.schedule(now, Kind::Write, 0);
        (due, 0, Status::SUCCESS, if deallocate { Then::Zero(zero) } else { Then::Nothing })
    }

    /// When the next command completes.
    pub fn next_due(&self) -> Option<u64> {
        self.inflight.keys().next().map(|k| k.0)
    }

    /// Finishes the commands due at `now`: moves their data, posts their
    /// completions.
    pub fn complete_due(&mut self, now: u64, dma: &mut dyn Dma) {
        while let Some(entry) = self.inflight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let p = entry.remove();
            let mut c = p.completion;
            if c.status == Status::SUCCESS {
                if self.failed_at.is_some_and(|t| now >= t) {
                    c.status = Status { dnr: true, ..Status::INTERNAL_ERROR };
                } else {
                    c.status = self.move_data(p.then, dma);
                }
            }
            self.post(c, dma);
        }
    }

    fn move_data(&mut self, then: Then, dma: &mut dyn Dma) -> Status {
        match then {
            Then::Nothing => Status::SUCCESS,
            Then::Zero(ranges) => {
                for (off, len) in ranges {
                    self.media.zero(off, len);
                }
                self.stats.writes += 1;
                Status::SUCCESS
            }
            Then::Give(segs, data) => scatter(dma, &segs, &data),
            Then::Read { offset, segs } => {
                let len: u64 = segs.iter().map(|s| s.1).sum();
                let mut data = vec![0u8; len as usize];
                self.media.read(offset, &mut data);
                self.stats.reads += 1;
                self.stats.bytes += len;
                scatter(dma, &segs, &data)
            }
            Then::Write { offset, segs } => {
                let len: u64 = segs.iter().map(|s| s.1).sum();
                let mut data = vec![0u8; len as usize];
                let mut at = 0usize;
                for &(a, n) in &segs {
                    if !dma.read(a, &mut data[at..at + n as usize]) {
                        return Status::DATA_TRANSFER_ERROR;
                    }
                    at += n as usize;
                }
                self.media.write(offset, &data);
                self.stats.writes += 1;
                self.stats.bytes += len;
                Status::SUCCESS
            }
        }
    }

    /// Posts `c` on its SQ's completion queue (or its backlog when full).
    fn post(&mut self, c: Completion, dma: &mut dyn Dma) {
        let Some(sq) = self.sqs.get(usize::from(c.sqid)).copied().flatten() else { return };
        if c.status != Status::SUCCESS {
            self.stats.errors += 1;
        }
        let Some(cq) = self.cqs[usize::from(sq.cqid)].as_mut() else { return };
        cq.backlog.push_back(Completion { sq_head: sq.head, ..c });
        self.drain_backlog(usize::from(sq.cqid), dma);
    }

    /// Writes waiting completions of CQ `qid` while it has room.
    fn drain_backlog(&mut self, qid: usize, dma: &mut dyn Dma) {
        let Some(cq) = self.cqs[qid].as_mut() else { return };
        while !cq.full() {
            let Some(c) = cq.backlog.pop_front() else { break };
            let at = cq.base + u64::from(cq.tail) * CQE as u64;
            dma.write(at, &c.bytes(cq.phase));
            cq.tail = (cq.tail + 1) % cq.entries;
            if cq.tail == 0 {
                cq.phase = !cq.phase;
            }
        }
    }

    /// `ssd-fail` fault: from `now` on every command fails.
    pub fn fail(&mut self, now: u64) {
        self.failed_at = Some(now);
    }

    /// `ssd-slow` fault: media time per operation `cycles` until `until`.
    pub fn slow(&mut self, cycles: u64, until: Option<u64>) {
        self.media.set_slow(cycles, until);
    }

    pub fn recover(&mut self) {
        self.failed_at = None;
        self.media.clear_slow();
    }
}

/// `data` into the segments, in order.
fn scatter(dma: &mut dyn Dma, segs: &[(u64, u64)], data: &[u8]) -> Status {
    let mut at = 0usize;
    for &(a, n) in segs {
        let n = n as usize;
        if !dma.write(a, &data[at..at + n]) {
            return Status::DATA_TRANSFER_ERROR;
        }
        at += n;
    }
    Status::SUCCESS
}

/// A 4- or 8-byte write into a 64-bit register at `reg`.
fn merge(old: u64, off: u64, size: u8, v: u64) -> u64 {
    match (size, off % 8) {
        (8, _) => v,
        (_, 0) => (old & !0xffff_ffff) | (v & 0xffff_ffff),
        _ => (old & 0xffff_ffff) | (v << 32),
    }
}
