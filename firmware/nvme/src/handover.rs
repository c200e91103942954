//! The controller handover record: what one firmware image leaves for the
//! next so that firmware activation without reset (NVMe Base 2.0 §5.12,
//! Firmware Commit action 011b; Identify Controller FRMW bit 4) keeps
//! every controller as the host set it up - no CC.EN toggle, queues where
//! they were, the Commit command still to be completed by the new image.
//!
//! This module is the record's format only: [`Writer`] lays it out in a
//! byte buffer (the old image, with command processing paused, CSTS.PP
//! set, §3.1.4.6), [`parse`] checks it whole before anything is restored
//! (the new image at boot) and hands out typed views. A record that is
//! blank, torn, of another format version or whose CRC fails is refused
//! with an [`Error`] naming why; the new image then boots as after a
//! reset. Nothing here touches memory other than the given slices.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `NVHO` |
//! | 4..6 | format version ([`FORMAT`]) |
//! | 6..8 | header size (32) |
//! | 8..12 | payload bytes after the header |
//! | 12..14 | functions |
//! | 14..16 | reserved (0) |
//! | 16..24 | firmware revision of the writer (Identify FR, 8 ASCII bytes) |
//! | 24..28 | CRC32C of the header (this field zero) and the payload |
//! | 28..32 | reserved (0) |
//!
//! then per function a [`FUNCTION_BYTES`] block ([`Controller`]), its
//! I/O completion queues ([`QUEUE_BYTES`] each, [`IoCq`]) and its I/O
//! submission queues ([`IoSq`]).

use crate::features::Features;
use crate::queue::{CqPointers, CreateCq, CreateSq, SqPointers};
use crc::{Crc, CRC_32_ISCSI};

/// `NVHO`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"NVHO");
/// Format version: a record of another version is not restored.
pub const FORMAT: u16 = 1;
/// Header bytes.
pub const HEADER_BYTES: usize = 32;
/// Fixed bytes of one function's block.
pub const FUNCTION_BYTES: usize = 96;
/// Bytes of one I/O queue.
pub const QUEUE_BYTES: usize = 24;
/// Held Asynchronous Event Request command ids per function (AERL + 1).
pub const MAX_AERS: usize = crate::admin::AER_SLOTS;
/// I/O queues of one kind per function (QIDs 1..=MAX_IO_QUEUES).
pub const MAX_IO_QUEUES: u16 = 127;

/// Bytes of a record of `functions` controllers holding `queues` I/O
/// queues (CQs and SQs) in all: the writer's buffer and the reserved
/// region must hold this for the largest configuration handed over.
pub const fn record_bytes(functions: usize, queues: usize) -> usize {
    HEADER_BYTES + functions * FUNCTION_BYTES + queues * QUEUE_BYTES
}

static CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Why a record is not restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// No record (the region is blank, or was cleared once restored).
    Blank,
    /// Shorter than its header says, or a buffer too small to write it.
    Truncated,
    /// Not a handover record.
    Magic,
    /// Written by an image with another format version.
    Format(u16),
    /// The CRC does not match (torn or overwritten).
    Crc,
    /// A field out of range (named).
    Field(&'static str),
}

impl Error {
    /// A line for the boot log.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Blank => "no handover record",
            Error::Truncated => "handover record truncated",
            Error::Magic => "not a handover record (magic)",
            Error::Format(_) => "handover record of another format version",
            Error::Crc => "handover record CRC mismatch",
            Error::Field(f) => f,
        }
    }
}

/// One controller (PF or VF) as the host left it, with its admin queue
/// pair and the features a restored controller must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controller {
    /// PCIe function (0: PF, n: VF n).
    pub func: u16,
    /// CC as the host wrote it (EN set: the controller was enabled).
    pub cc: u32,
    /// AQA, ASQ, ACQ.
    pub aqa: u32,
    pub asq: u64,
    pub acq: u64,
    /// Admin SQ head (next entry fetched) and last tail doorbell.
    pub admin_sq: SqPointers,
    /// Admin CQ tail, head and phase (`reserved` is not kept: nothing is
    /// in flight when the record is written).
    pub admin_cq: CqPointers,
    /// Number of Queues (NSQA, NCQA; 0's based) once set.
    pub queues: Option<(u16, u16)>,
    /// Interrupt Coalescing (threshold, time) and per-vector disable bits.
    pub coalesce_threshold: u8,
    pub coalesce_time: u8,
    pub coalesce_disabled: u128,
    /// Asynchronous Event Configuration (bit 9: Firmware Activation Notices).
    pub async_events: u32,
    /// Arbitration.
    pub arbitration: u32,
    /// Command ids of the Asynchronous Event Requests the controller holds.
    pub aers: [u16; MAX_AERS],
    pub naers: u8,
    /// The Firmware Commit command the new image completes (PF).
    pub commit_cid: Option<u16>,
}

impl Controller {
    /// A disabled controller of function `func` (everything zero).
    pub const fn new(func: u16) -> Controller {
        Controller {
            func,
            cc: 0,
            aqa: 0,
            asq: 0,
            acq: 0,
            admin_sq: SqPointers { entries: 0, head: 0, tail: 0 },
            admin_cq: CqPointers { entries: 0, tail: 0, head: 0, phase: true, reserved: 0 },
            queues: None,
            coalesce_threshold: 0,
            coalesce_time: 0,
            coalesce_disabled: 0,
            async_events: 0,
            arbitration: 0,
            aers: [0; MAX_AERS],
            naers: 0,
            commit_cid: None,
        }
    }

    /// Takes the features a handover carries (Number of Queues, Interrupt
    /// Coalescing and its per-vector disables, Asynchronous Event
    /// Configuration, Arbitration) from `f`.
    pub fn keep_features(&mut self, f: &Features) {
        self.queues = f.queues;
        self.coalesce_threshold = f.coalesce_threshold;
        self.coalesce_time = f.coalesce_time;
        self.coalesce_disabled = f.coalesce_disabled;
        self.async_events = f.async_events;
        self.arbitration = f.arbitration;
    }

    /// Puts the features [`Controller::keep_features`] took back into `f`
    /// (the others keep their values).
    pub fn restore_features(&self, f: &mut Features) {
        f.queues = self.queues;
        f.coalesce_threshold = self.coalesce_threshold;
        f.coalesce_time = self.coalesce_time;
        f.coalesce_disabled = self.coalesce_disabled;
        f.async_events = self.async_events;
        f.arbitration = self.arbitration;
    }

    /// The held AER command ids.
    pub fn held_aers(&self) -> &[u16] {
        &self.aers[..usize::from(self.naers).min(MAX_AERS)]
    }
}

/// An I/O completion queue and where the controller is in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoCq {
    pub def: CreateCq,
    /// Next slot written, last head doorbell, phase of the next entry.
    pub tail: u16,
    pub head: u16,
    pub phase: bool,
}

/// An I/O submission queue and where the controller is in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSq {
    pub def: CreateSq,
    /// Next entry fetched; last tail doorbell.
    pub head: u16,
    pub tail: u16,
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}
fn get16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn get32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn get64(b: &[u8], o: usize) -> u64 {
    u64::from(get32(b, o)) | u64::from(get32(b, o + 4)) << 32
}

// Function block offsets.
const F_FUNC: usize = 0;
const F_FLAGS: usize = 2; // bit 0: queues set, bit 1: commit pending, bit 2: admin CQ phase
const F_CC: usize = 4;
const F_AQA: usize = 8;
const F_ASQ: usize = 12;
const F_ACQ: usize = 20;
const F_ASQ_PTRS: usize = 28; // entries, head, tail
const F_ACQ_PTRS: usize = 34; // entries, tail, head
const F_QUEUES: usize = 40; // NSQA, NCQA
const F_COALESCE: usize = 44; // threshold, time
const F_NAERS: usize = 46;
const F_COMMIT: usize = 47; // u16 at 48
const F_AEC: usize = 52;
const F_ARB: usize = 56;
const F_AERS: usize = 60; // MAX_AERS x u16
const F_NCQ: usize = 68;
const F_NSQ: usize = 70;
const F_CD: usize = 72; // u128
const _: () = assert!(F_AERS + 2 * MAX_AERS <= F_NCQ && F_CD + 16 <= FUNCTION_BYTES && F_COMMIT + 3 <= F_AEC);

const FLAG_QUEUES: u16 = 1;
const FLAG_COMMIT: u16 = 2;
const FLAG_ACQ_PHASE: u16 = 4;

/// Lays a record out in a buffer: [`Writer::function`], then that
/// function's queues ([`Writer::cq`] before [`Writer::sq`]), then the next
/// function; [`Writer::finish`] seals it (length, CRC).
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    functions: u16,
    /// Offset of the open function's block.
    open: Option<usize>,
}

impl<'a> Writer<'a> {
    /// Starts a record in `buf`, written by firmware revision `revision`.
    pub fn new(buf: &'a mut [u8], revision: [u8; 8]) -> Result<Writer<'a>, Error> {
        if buf.len() < HEADER_BYTES {
            return Err(Error::Truncated);
        }
        buf[..HEADER_BYTES].fill(0);
        buf[16..24].copy_from_slice(&revision);
        Ok(Writer { buf, len: HEADER_BYTES, functions: 0, open: None })
    }

    fn grow(&mut self, n: usize) -> Result<usize, Error> {
        let at = self.len;
        if at + n > self.buf.len() {
            return Err(Error::Truncated);
        }
        self.buf[at..at + n].fill(0);
        self.len += n;
        Ok(at)
    }

    /// Adds a controller; its queues follow.
    pub fn function(&mut self, c: &Controller) -> Result<(), Error> {
        if usize::from(c.naers) > MAX_AERS {
            return Err(Error::Field("naers"));
        }
        let o = self.grow(FUNCTION_BYTES)?;
        let b = &mut *self.buf;
        let flags = if c.queues.is_some() { FLAG_QUEUES } else { 0 }
            | if c.commit_cid.is_some() { FLAG_COMMIT } else { 0 }
            | if c.admin_cq.phase { FLAG_ACQ_PHASE } else { 0 };
        put16(b, o + F_FUNC, c.func);
        put16(b, o + F_FLAGS, flags);
        put32(b, o + F_CC, c.cc);
        put32(b, o + F_AQA, c.aqa);
        put64(b, o + F_ASQ, c.asq);
        put64(b, o + F_ACQ, c.acq);
        put16(b, o + F_ASQ_PTRS, c.admin_sq.entries);
        put16(b, o + F_ASQ_PTRS + 2, c.admin_sq.head);
        put16(b, o + F_ASQ_PTRS + 4, c.admin_sq.tail);
        put16(b, o + F_ACQ_PTRS, c.admin_cq.entries);
        put16(b, o + F_ACQ_PTRS + 2, c.admin_cq.tail);
        put16(b, o + F_ACQ_PTRS + 4, c.admin_cq.head);
        let (nsqa, ncqa) = c.queues.unwrap_or((0, 0));
        put16(b, o + F_QUEUES, nsqa);
        put16(b, o + F_QUEUES + 2, ncqa);
        b[o + F_COALESCE] = c.coalesce_threshold;
        b[o + F_COALESCE + 1] = c.coalesce_time;
        b[o + F_NAERS] = c.naers;
        put16(b, o + F_COMMIT + 1, c.commit_cid.unwrap_or(0));
        put32(b, o + F_AEC, c.async_events);
        put32(b, o + F_ARB, c.arbitration);
        for (i, cid) in c.held_aers().iter().enumerate() {
            put16(b, o + F_AERS + 2 * i, *cid);
        }
        b[o + F_CD..o + F_CD + 16].copy_from_slice(&c.coalesce_disabled.to_le_bytes());
        self.functions += 1;
        self.open = Some(o);
        Ok(())
    }

    /// Room for one more queue of the open function (its count at
    /// `count_at` in the block): checked whole before anything changes.
    fn queue_slot(&mut self, count_at: usize) -> Result<usize, Error> {
        let o = self.open.ok_or(Error::Field("queue before its function"))?;
        let n = get16(self.buf, o + count_at);
        if n >= MAX_IO_QUEUES {
            return Err(Error::Field("too many I/O queues"));
        }
        let at = self.grow(QUEUE_BYTES)?;
        put16(self.buf, o + count_at, n + 1);
        Ok(at)
    }

    /// Adds an I/O CQ of the open function.
    pub fn cq(&mut self, q: &IoCq) -> Result<(), Error> {
        let o = self.open.ok_or(Error::Field("queue before its function"))?;
        if get16(self.buf, o + F_NSQ) != 0 {
            return Err(Error::Field("CQ after an SQ"));
        }
        let at = self.queue_slot(F_NCQ)?;
        let b = &mut *self.buf;
        put16(b, at, q.def.qid);
        put16(b, at + 2, q.def.entries);
        put16(b, at + 4, q.def.vector);
        b[at + 6] = u8::from(q.def.interrupts) | u8::from(q.phase) << 1;
        put16(b, at + 8, q.tail);
        put16(b, at + 10, q.head);
        put64(b, at + 16, q.def.addr);
        Ok(())
    }

    /// Adds an I/O SQ of the open function.
    pub fn sq(&mut self, q: &IoSq) -> Result<(), Error> {
        let at = self.queue_slot(F_NSQ)?;
        let b = &mut *self.buf;
        put16(b, at, q.def.qid);
        put16(b, at + 2, q.def.entries);
        put16(b, at + 4, q.def.cqid);
        b[at + 6] = q.def.priority;
        put16(b, at + 8, q.head);
        put16(b, at + 10, q.tail);
        put64(b, at + 16, q.def.addr);
        Ok(())
    }

    /// Seals the record; returns its length in bytes.
    pub fn finish(self) -> Result<usize, Error> {
        let b = self.buf;
        put32(b, 0, MAGIC);
        put16(b, 4, FORMAT);
        put16(b, 6, HEADER_BYTES as u16);
        put32(b, 8, (self.len - HEADER_BYTES) as u32);
        put16(b, 12, self.functions);
        put32(b, 24, 0);
        let crc = CASTAGNOLI.checksum(&b[..self.len]);
        put32(b, 24, crc);
        Ok(self.len)
    }
}

/// Marks the record in `buf` used: the next boot does not restore it.
pub fn clear(buf: &mut [u8]) {
    let n = buf.len().min(HEADER_BYTES);
    buf[..n].fill(0);
}

/// A checked record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    payload: &'a [u8],
    functions: u16,
    /// Firmware revision of the image that wrote it.
    pub revision: [u8; 8],
}

/// Checks a record whole: header, format version, length, CRC, then
/// every function block and queue (entries 2..=1024, QIDs 1..=127 and
/// unique, pointers inside their queue, every SQ's CQ present).
pub fn parse(b: &[u8]) -> Result<Record<'_>, Error> {
    if b.len() < HEADER_BYTES {
        return Err(Error::Truncated);
    }
    let magic = get32(b, 0);
    if magic == 0 || magic == u32::MAX {
        return Err(Error::Blank);
    }
    if magic != MAGIC {
        return Err(Error::Magic);
    }
    let format = get16(b, 4);
    if format != FORMAT || usize::from(get16(b, 6)) != HEADER_BYTES {
        return Err(Error::Format(format));
    }
    let payload = get32(b, 8) as usize;
    let Some(end) = HEADER_BYTES.checked_add(payload).filter(|&e| e <= b.len()) else {
        return Err(Error::Truncated);
    };
    let mut digest = CASTAGNOLI.digest();
    digest.update(&b[..24]);
    digest.update(&[0; 4]);
    digest.update(&b[28..end]);
    if digest.finalize() != get32(b, 24) {
        return Err(Error::Crc);
    }
    let mut revision = [0u8; 8];
    revision.copy_from_slice(&b[16..24]);
    let r = Record { payload: &b[HEADER_BYTES..end], functions: get16(b, 12), revision };
    let mut seen = 0u128;
    let mut n = 0u16;
    let mut rest = r.payload;
    while !rest.is_empty() {
        let (f, after) = Function::split(rest)?;
        if f.controller.func >= 128 || seen & 1 << f.controller.func != 0 {
            return Err(Error::Field("function number repeated or above 127"));
        }
        seen |= 1 << f.controller.func;
        f.check()?;
        n += 1;
        rest = after;
    }
    if n != r.functions {
        return Err(Error::Field("function count"));
    }
    Ok(r)
}

impl<'a> Record<'a> {
    /// The controllers, in the order written.
    pub fn functions(&self) -> Functions<'a> {
        Functions { rest: self.payload }
    }

    /// How many controllers the record holds.
    pub fn len(&self) -> usize {
        usize::from(self.functions)
    }

    pub fn is_empty(&self) -> bool {
        self.functions == 0
    }
}

/// Iterator over a checked record's controllers.
pub struct Functions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Functions<'a> {
    type Item = Function<'a>;
    fn next(&mut self) -> Option<Function<'a>> {
        // Checked by `parse`: cannot fail here.
        let (f, rest) = Function::split(self.rest).ok()?;
        self.rest = rest;
        Some(f)
    }
}

/// One controller of a record, with its I/O queues.
#[derive(Clone, Copy, Debug)]
pub struct Function<'a> {
    pub controller: Controller,
    cqs: &'a [u8],
    sqs: &'a [u8],
}

impl<'a> Function<'a> {
    fn split(b: &'a [u8]) -> Result<(Function<'a>, &'a [u8]), Error> {
        if b.len() < FUNCTION_BYTES {
            return Err(Error::Truncated);
        }
        let flags = get16(b, F_FLAGS);
        let naers = b[F_NAERS];
        if usize::from(naers) > MAX_AERS {
            return Err(Error::Field("held AER count"));
        }
        let mut aers = [0u16; MAX_AERS];
        for (i, a) in aers.iter_mut().enumerate() {
            *a = get16(b, F_AERS + 2 * i);
        }
        let controller = Controller {
            func: get16(b, F_FUNC),
            cc: get32(b, F_CC),
            aqa: get32(b, F_AQA),
            asq: get64(b, F_ASQ),
            acq: get64(b, F_ACQ),
            admin_sq: SqPointers { entries: get16(b, F_ASQ_PTRS), head: get16(b, F_ASQ_PTRS + 2), tail: get16(b, F_ASQ_PTRS + 4) },
            admin_cq: CqPointers {
                entries: get16(b, F_ACQ_PTRS),
                tail: get16(b, F_ACQ_PTRS + 2),
                head: get16(b, F_ACQ_PTRS + 4),
                phase: flags & FLAG_ACQ_PHASE != 0,
                reserved: 0,
            },
            queues: (flags & FLAG_QUEUES != 0).then(|| (get16(b, F_QUEUES), get16(b, F_QUEUES + 2))),
            coalesce_threshold: b[F_COALESCE],
            coalesce_time: b[F_COALESCE + 1],
            coalesce_disabled: u128::from_le_bytes(b[F_CD..F_CD + 16].try_into().map_err(|_| Error::Truncated)?),
            async_events: get32(b, F_AEC),
            arbitration: get32(b, F_ARB),
            aers,
            naers,
            commit_cid: (flags & FLAG_COMMIT != 0).then(|| get16(b, F_COMMIT + 1)),
        };
        let ncq = usize::from(get16(b, F_NCQ));
        let nsq = usize::from(get16(b, F_NSQ));
        if ncq > usize::from(MAX_IO_QUEUES) || nsq > usize::from(MAX_IO_QUEUES) {
            return Err(Error::Field("I/O queue count"));
        }
        let end = FUNCTION_BYTES + (ncq + nsq) * QUEUE_BYTES;
        if b.len() < end {
            return Err(Error::Truncated);
        }
        let cq_end = FUNCTION_BYTES + ncq * QUEUE_BYTES;
        Ok((Function { controller, cqs: &b[FUNCTION_BYTES..cq_end], sqs: &b[cq_end..end] }, &b[end..]))
    }

    /// The I/O completion queues.
    pub fn cqs(&self) -> impl Iterator<Item = IoCq> + 'a {
        self.cqs.chunks_exact(QUEUE_BYTES).map(|q| IoCq {
            def: CreateCq { qid: get16(q, 0), entries: get16(q, 2), addr: get64(q, 16), vector: get16(q, 4), interrupts: q[6] & 1 != 0 },
            tail: get16(q, 8),
            head: get16(q, 10),
            phase: q[6] & 2 != 0,
        })
    }

    /// The I/O submission queues.
    pub fn sqs(&self) -> impl Iterator<Item = IoSq> + 'a {
        self.sqs.chunks_exact(QUEUE_BYTES).map(|q| IoSq {
            def: CreateSq { qid: get16(q, 0), entries: get16(q, 2), addr: get64(q, 16), cqid: get16(q, 4), priority: q[6] },
            head: get16(q, 8),
            tail: get16(q, 10),
        })
    }

    fn check(&self) -> Result<(), Error> {
        let ok_queue = |entries: u16, a: u16, b: u16| entries >= 2 && u32::from(entries) <= crate::MAX_QUEUE_ENTRIES && a < entries && b < entries;
        let c = &self.controller;
        if c.cc & 1 != 0 && !(ok_queue(c.admin_sq.entries, c.admin_sq.head, c.admin_sq.tail) && ok_queue(c.admin_cq.entries, c.admin_cq.tail, c.admin_cq.head)) {
            return Err(Error::Field("admin queue pointers"));
        }
        let mut cqs = 0u128;
        for q in self.cqs() {
            if q.def.qid == 0 || q.def.qid > MAX_IO_QUEUES || cqs & 1 << q.def.qid != 0 {
                return Err(Error::Field("I/O CQ id"));
            }
            if !ok_queue(q.def.entries, q.tail, q.head) {
                return Err(Error::Field("I/O CQ pointers"));
            }
            cqs |= 1 << q.def.qid;
        }
        let mut sqs = 0u128;
        for q in self.sqs() {
            if q.def.qid == 0 || q.def.qid > MAX_IO_QUEUES || sqs & 1 << q.def.qid != 0 {
                return Err(Error::Field("I/O SQ id"));
            }
            if !ok_queue(q.def.entries, q.head, q.tail) {
                return Err(Error::Field("I/O SQ pointers"));
            }
            if q.def.cqid > MAX_IO_QUEUES || cqs & 1 << q.def.cqid == 0 {
                return Err(Error::Field("I/O SQ without its CQ"));
            }
            sqs |= 1 << q.def.qid;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `keep_features` takes, `restore_features` gives back whole,
    /// leaving the features a handover does not carry as they were.
    #[test]
    fn features_survive_the_handover() {
        let mut before = Features::DEFAULT;
        before.queues = Some((7, 5));
        before.coalesce_threshold = 9;
        before.coalesce_time = 3;
        before.coalesce_disabled = 1 << 90 | 4;
        before.async_events = 1 << 9;
        before.arbitration = 0x0302_0103;
        let mut c = Controller::new(0);
        c.keep_features(&before);
        let mut after = Features::DEFAULT;
        after.temp_over = 77;
        c.restore_features(&mut after);
        assert_eq!(after, Features { temp_over: 77, ..before });
    }

    const REV: [u8; 8] = *b"0.1.0   ";

    fn pf() -> Controller {
        let mut c = Controller::new(0);
        c.cc = 0x0046_0001;
        c.aqa = 0x001f_001f;
        c.asq = 0x1_0000;
        c.acq = 0x2_0000;
        c.admin_sq = SqPointers { entries: 32, head: 7, tail: 8 };
        c.admin_cq = CqPointers { entries: 32, tail: 7, head: 6, phase: false, reserved: 0 };
        c.queues = Some((3, 3));
        c.coalesce_threshold = 4;
        c.coalesce_time = 2;
        c.coalesce_disabled = 1 << 100 | 1;
        c.async_events = 1 << 9 | 0xff;
        c.aers = [11, 12, 13, 0];
        c.naers = 3;
        c.commit_cid = Some(0);
        c
    }

    fn cq(qid: u16, tail: u16, phase: bool) -> IoCq {
        IoCq { def: CreateCq { qid, entries: 256, addr: 0x10_0000 * u64::from(qid), vector: qid, interrupts: true }, tail, head: tail.wrapping_sub(1) % 256, phase }
    }

    fn sq(qid: u16, cqid: u16, head: u16) -> IoSq {
        IoSq { def: CreateSq { qid, entries: 128, addr: 0x20_0000 * u64::from(qid), cqid, priority: 2 }, head, tail: head }
    }

    fn sample(buf: &mut [u8]) -> usize {
        let mut w = Writer::new(buf, REV).unwrap();
        w.function(&pf()).unwrap();
        w.cq(&cq(1, 200, true)).unwrap();
        w.cq(&cq(2, 0, false)).unwrap();
        w.sq(&sq(1, 1, 17)).unwrap();
        w.sq(&sq(2, 2, 0)).unwrap();
        let mut vf = Controller::new(1);
        vf.cc = 1;
        vf.admin_sq = SqPointers { entries: 2, head: 1, tail: 1 };
        vf.admin_cq = CqPointers { entries: 2, tail: 1, head: 0, phase: true, reserved: 0 };
        w.function(&vf).unwrap();
        w.cq(&cq(5, 3, true)).unwrap();
        w.sq(&sq(5, 5, 3)).unwrap();
        // A disabled VF: no queues.
        w.function(&Controller::new(2)).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut buf = [0u8; 1024];
        let n = sample(&mut buf);
        assert_eq!(n, HEADER_BYTES + 3 * FUNCTION_BYTES + 6 * QUEUE_BYTES);
        let r = parse(&buf).unwrap();
        assert_eq!((r.len(), r.revision), (3, REV));
        let fs: [Function; 3] = {
            let mut it = r.functions();
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(fs[0].controller, pf());
        assert_eq!(fs[0].controller.held_aers(), &[11, 12, 13]);
        let cqs: [IoCq; 2] = {
            let mut it = fs[0].cqs();
            [it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(cqs, [cq(1, 200, true), cq(2, 0, false)]);
        assert_eq!(fs[0].sqs().nth(1), Some(sq(2, 2, 0)));
        assert_eq!(fs[1].controller.func, 1);
        assert_eq!(fs[1].controller.commit_cid, None);
        assert_eq!(fs[1].sqs().next(), Some(sq(5, 5, 3)));
        assert_eq!((fs[2].controller, fs[2].cqs().count()), (Controller::new(2), 0));
    }

    #[test]
    fn a_damaged_record_is_refused_with_its_reason() {
        let mut buf = [0u8; 1024];
        let n = sample(&mut buf);
        // Every single flipped bit of the record is caught.
        for i in 0..n {
            let mut b = buf;
            b[i] ^= 0x10;
            assert!(parse(&b).is_err(), "byte {i}");
        }
        let mut b = buf;
        b[HEADER_BYTES + F_CC] ^= 1;
        assert_eq!(parse(&b).unwrap_err(), Error::Crc);
        // A record of the next format version (sealed by that writer).
        let mut b = buf;
        put16(&mut b, 4, FORMAT + 1);
        assert_eq!(parse(&b).unwrap_err(), Error::Format(FORMAT + 1));
        // Torn: shorter than its header says.
        assert_eq!(parse(&buf[..n - 1]).unwrap_err(), Error::Truncated);
        assert_eq!(parse(&buf[..10]).unwrap_err(), Error::Truncated);
        // Blank flash-like or zeroed memory, another structure, cleared.
        assert_eq!(parse(&[0xff; 64]).unwrap_err(), Error::Blank);
        assert_eq!(parse(&[0x5a; 64]).unwrap_err(), Error::Magic);
        let mut b = buf;
        clear(&mut b);
        assert_eq!(parse(&b).unwrap_err(), Error::Blank);
        assert_eq!(Error::Crc.reason(), "handover record CRC mismatch");
    }

    /// Re-seals a record whose payload was edited (as a writer with a bug would).
    fn reseal(b: &mut [u8], n: usize) {
        put32(b, 24, 0);
        let crc = CASTAGNOLI.checksum(&b[..n]);
        put32(b, 24, crc);
    }

    #[test]
    fn fields_out_of_range_are_named() {
        let mut buf = [0u8; 1024];
        let n = sample(&mut buf);
        let first_cq = HEADER_BYTES + FUNCTION_BYTES;
        let first_sq = first_cq + 2 * QUEUE_BYTES;
        let cases: [(usize, u16, &str); 6] = [
            (first_cq, 0, "I/O CQ id"),
            (first_cq + 24, 1, "I/O CQ id"),
            (first_cq + 8, 256, "I/O CQ pointers"),
            (first_sq + 8, 128, "I/O SQ pointers"),
            (first_sq + 4, 9, "I/O SQ without its CQ"),
            (HEADER_BYTES + F_ASQ_PTRS + 2, 32, "admin queue pointers"),
        ];
        for (at, v, field) in cases {
            let mut b = buf;
            put16(&mut b, at, v);
            reseal(&mut b, n);
            assert_eq!(parse(&b).unwrap_err(), Error::Field(field), "{field}");
        }
        // The same function twice, and a count that disagrees.
        let mut b = buf;
        put16(&mut b, HEADER_BYTES + FUNCTION_BYTES + 4 * QUEUE_BYTES, 0);
        reseal(&mut b, n);
        assert_eq!(parse(&b).unwrap_err(), Error::Field("function number repeated or above 127"));
        let mut b = buf;
        put16(&mut b, 12, 2);
        reseal(&mut b, n);
        assert_eq!(parse(&b).unwrap_err(), Error::Field("function count"));
    }

    /// The largest configuration an image hands over: `functions`
    /// controllers (PF and every VF), each with `per` I/O CQs and as many
    /// SQs, written into exactly [`record_bytes`].
    fn largest(buf: &mut [u8], functions: u16, per: u16) -> Result<usize, Error> {
        let mut w = Writer::new(buf, REV)?;
        for f in 0..functions {
            let mut c = if f == 0 { pf() } else { Controller::new(f) };
            c.cc = 0x0046_0001;
            c.admin_sq = SqPointers { entries: 32, head: f % 32, tail: f % 32 };
            c.admin_cq = CqPointers { entries: 32, tail: f % 32, head: f % 32, phase: f % 2 == 0, reserved: 0 };
            c.commit_cid = (f == 0).then_some(9);
            w.function(&c)?;
            for q in 1..=per {
                w.cq(&cq(q, (q + f) % 256, (q + f) % 2 == 0))?;
            }
            for q in 1..=per {
                w.sq(&sq(q, q, (q * 3 + f) % 128))?;
            }
        }
        w.finish()
    }

    #[test]
    fn every_function_with_all_its_queues_round_trips_within_its_bound() {
        // PF + 64 VFs, 64 queue pairs each: the firmware's largest case.
        const BOUND: usize = record_bytes(65, 2 * 65 * 64);
        let (functions, per, bound) = (65u16, 64u16, BOUND);
        assert_eq!(bound, 32 + 65 * 96 + 65 * 128 * 24);
        let mut buf = [0u8; BOUND];
        assert_eq!(largest(&mut buf, functions, per), Ok(bound));
        let r = parse(&buf).unwrap();
        assert_eq!(r.len(), usize::from(functions));
        for (i, f) in r.functions().enumerate() {
            let i = i as u16;
            assert_eq!(f.controller.func, i);
            assert_eq!(f.controller.commit_cid, (i == 0).then_some(9));
            assert_eq!(f.controller.admin_sq.head, i % 32);
            assert_eq!(f.controller.admin_cq.phase, i % 2 == 0);
            assert_eq!(f.cqs().count(), usize::from(per));
            assert_eq!(f.sqs().last(), Some(sq(per, per, (per * 3 + i) % 128)));
            assert_eq!(f.cqs().nth(9), Some(cq(10, (10 + i) % 256, (10 + i) % 2 == 0)));
        }
        // One byte short of the bound: refused while writing, not sealed torn.
        let mut short = [0u8; BOUND - 1];
        assert_eq!(largest(&mut short, functions, per), Err(Error::Truncated));
        // A function beyond the 128 the format numbers.
        let mut buf = [0u8; record_bytes(1, 0)];
        let mut w = Writer::new(&mut buf, REV).unwrap();
        w.function(&Controller::new(128)).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(parse(&buf[..n]).unwrap_err(), Error::Field("function number repeated or above 127"));
    }

    #[test]
    fn the_writer_refuses_what_it_cannot_hold() {
        let mut small = [0u8; HEADER_BYTES + FUNCTION_BYTES + 10];
        let mut w = Writer::new(&mut small, REV).unwrap();
        w.function(&pf()).unwrap();
        assert_eq!(w.cq(&cq(1, 0, true)), Err(Error::Truncated));
        assert!(Writer::new(&mut [0u8; 8], REV).is_err());
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf, REV).unwrap();
        assert_eq!(w.sq(&sq(1, 1, 0)), Err(Error::Field("queue before its function")));
        w.function(&pf()).unwrap();
        w.sq(&sq(1, 1, 0)).unwrap();
        assert_eq!(w.cq(&cq(1, 0, true)), Err(Error::Field("CQ after an SQ")));
        let mut c = pf();
        c.naers = 5;
        assert_eq!(w.function(&c), Err(Error::Field("naers")));
        // An empty record is valid: no controller was enabled.
        let mut buf = [0u8; 64];
        let n = Writer::new(&mut buf, REV).unwrap().finish().unwrap();
        assert_eq!(n, HEADER_BYTES);
        assert!(parse(&buf).unwrap().is_empty());
    }
}
