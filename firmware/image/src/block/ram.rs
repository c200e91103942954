//! The RAM block device on a data-plane core: a namespace in DPU memory
//! (DDR). Reads, writes and Write Zeroes are planned by
//! [`dpu_bdev::RamBdev`] into DMA moves on the core's channel; Compare
//! fetches the host's data in 4 KiB chunks and compares it with the
//! device's; Dataset Management fetches the range list, checks every range
//! and zero-fills the deallocated ones (this device's DLFEAT: they read
//! back as zeroes). Operands already staged in DPU pages (the NVMe/TCP
//! target's) are fetched the same way, by a DMA copy instead of a host
//! read.

use super::staging::Pool;
use super::{cookie, Done, Data, Io, Op, Tag};
use dpu_bdev::{Buf, Io as PlanIo, Move, Op as PlanOp, RamBdev};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::regs::dma as dr;
use dpu_nvme::dptr::SegList;
use dpu_nvme::Status;

/// Compare / Dataset Management operations in progress at once.
const CONTEXTS: usize = 8;
/// Host operand bytes fetched per step (one context buffer).
const CHUNK: usize = 4096;
/// Moves one I/O may take (128 KiB in 4 KiB host pages, plus splits).
const MAX_MOVES: usize = 72;

#[derive(Clone, Copy)]
struct Ctx {
    used: bool,
    tag: Tag,
    op: Op,
    dev: RamBdev,
    lba: u64,
    len: u32,
    function: u16,
    segs: SegList,
    /// Compare: bytes compared so far.
    progress: u32,
    /// `segs` are DPU addresses (staged pages), copied rather than read
    /// from host memory.
    staged: bool,
}

impl Ctx {
    const FREE: Ctx = Ctx {
        used: false,
        tag: 0,
        op: Op::Flush,
        dev: RamBdev { base: 0, geometry: dpu_bdev::Geometry { blocks: 0, block_shift: 9 } },
        lba: 0,
        len: 0,
        function: 0,
        segs: SegList::new(),
        progress: 0,
        staged: false,
    };
}

pub struct Ram {
    ctx: [Ctx; CONTEXTS],
    /// One chunk buffer per context (DPU memory the DMA engine fills).
    bufs: usize,
    /// Compare / DSM operations waiting for a context (copied in full).
    waiting: [Ctx; CONTEXTS],
    pub(super) nwaiting: usize,
    /// Contexts whose DSM zero-fill chain is in flight (bit i: context
    /// i): only then does a finished move chain look for its context.
    dsm_fills: u8,
    pub(super) done: Done,
    pub kick: bool,
}

impl Ram {
    pub const INIT: Ram = Ram { ctx: [Ctx::FREE; CONTEXTS], bufs: 0, waiting: [Ctx::FREE; CONTEXTS], nwaiting: 0, dsm_fills: 0, done: Done::EMPTY, kick: false };

    pub fn start(&mut self) -> bool {
        match dpu_rt::alloc::smem(CONTEXTS * CHUNK, 4096).or_else(|| dpu_rt::alloc::ddr((CONTEXTS * CHUNK) as u64, 4096).map(|a| a as usize)) {
            Some(b) => {
                self.bufs = b;
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, tag: Tag, st: Status) {
        self.done.push(tag, st);
    }

    pub fn take_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        self.done.take(out)
    }

    fn buf(&self, ctx: usize) -> usize {
        self.bufs + ctx * CHUNK
    }

    pub fn submit(&mut self, chan: &mut Channel, pool: &Pool, dev: &RamBdev, tag: Tag, io: &Io) {
        // A read or write of one host segment (a 4 KiB I/O): one move.
        if let (Op::Read | Op::Write, Data::Host { function, segs: &[seg] }) = (io.op, io.data) {
            if io.blocks > 0 {
                let ck = cookie::make(cookie::RAM, u32::from(tag));
                return match dev.host_move(io.op == Op::Read, io.lba, io.blocks, seg) {
                    Ok(m) => self.push_moves(chan, &[m], function, ck),
                    Err(dpu_bdev::Error::OutOfRange) => self.finish(tag, Status::LBA_OUT_OF_RANGE),
                    // Longer than one move: the general plan below.
                    Err(dpu_bdev::Error::TooManyMoves) => self.submit_long(chan, dev, tag, &PlanIo { op: if io.op == Op::Read { PlanOp::Read } else { PlanOp::Write }, lba: io.lba, blocks: io.blocks, buf: Buf::Host(&[seg]) }, function, ck),
                    Err(_) => self.finish(tag, Status::INTERNAL_ERROR),
                };
            }
        }
        let (function, segs): (u16, &[(u64, u32)]) = match io.data {
            Data::Host { function, segs } => (function, segs),
            _ => (0, &[]),
        };
        match io.op {
            Op::Flush => self.finish(tag, Status::SUCCESS),
            Op::Read | Op::Write | Op::WriteZeroes => {
                // Staged data: its pages as DPU segments (initialized only
                // on that path: the common, host path stays lean).
                let local_segs;
                let buf = match (io.op, io.data) {
                    (Op::WriteZeroes, _) => Buf::None,
                    (_, Data::Host { segs, .. }) => Buf::Host(segs),
                    (_, Data::Staged(p)) => {
                        let mut l = [(0u64, 0u32); super::staging::MAX_IO_PAGES];
                        let n = pool.segments(p, 0, io.len as usize, &mut l);
                        local_segs = l;
                        Buf::Local(&local_segs[..n])
                    }
                    (_, Data::None) => Buf::None,
                };
                let op = match io.op {
                    Op::Read => PlanOp::Read,
                    Op::Write => PlanOp::Write,
                    _ => PlanOp::WriteZeroes,
                };
                let plan = PlanIo { op, lba: io.lba, blocks: io.blocks, buf };
                let ck = cookie::make(cookie::RAM, u32::from(tag));
                // Most I/Os take one or two moves (a 4 KiB one: one);
                // longer ones retry with room for the largest.
                let mut moves = [Move::Zero { local: 0, len: 0 }; 2];
                match dev.plan(&plan, &mut moves) {
                    Err(dpu_bdev::Error::TooManyMoves) => self.submit_long(chan, dev, tag, &plan, function, ck),
                    r => self.planned(chan, tag, r, &moves, function, ck),
                }
            }
            Op::Compare | Op::Dsm { .. } => {
                let mut c = Ctx { used: true, tag, op: io.op, dev: *dev, lba: io.lba, len: io.len, function, segs: SegList::new(), progress: 0, staged: false };
                let ok = match io.data {
                    Data::Host { .. } => c.segs.extend_from(segs),
                    Data::Staged(p) => {
                        let mut l = [(0u64, 0u32); super::staging::MAX_IO_PAGES];
                        let n = pool.segments(p, 0, io.len as usize, &mut l);
                        c.staged = true;
                        c.segs.extend_from(&l[..n])
                    }
                    Data::None => false,
                };
                if !ok {
                    return self.finish(tag, Status::INTERNAL_ERROR);
                }
                match self.ctx.iter().position(|x| !x.used) {
                    Some(i) => {
                        self.ctx[i] = c;
                        self.step(chan, i);
                    }
                    None if self.nwaiting < self.waiting.len() => {
                        c.used = false;
                        self.waiting[self.nwaiting] = c;
                        self.nwaiting += 1;
                    }
                    None => self.finish(tag, Status::INTERNAL_ERROR),
                }
            }
        }
    }

    #[inline(never)]
    fn submit_long(&mut self, chan: &mut Channel, dev: &RamBdev, tag: Tag, plan: &PlanIo, function: u16, ck: u32) {
        let mut moves = [Move::Zero { local: 0, len: 0 }; MAX_MOVES];
        let r = dev.plan(plan, &mut moves);
        self.planned(chan, tag, r, &moves, function, ck);
    }

    fn planned(&mut self, chan: &mut Channel, tag: Tag, r: Result<usize, dpu_bdev::Error>, moves: &[Move], function: u16, ck: u32) {
        match r {
            Err(dpu_bdev::Error::OutOfRange) => self.finish(tag, Status::LBA_OUT_OF_RANGE),
            Err(_) => self.finish(tag, Status::INTERNAL_ERROR),
            Ok(0) => self.finish(tag, Status::SUCCESS),
            Ok(n) => self.push_moves(chan, &moves[..n], function, ck),
        }
    }

    /// Starts waiting Compare / DSM operations on free contexts.
    pub fn poll(&mut self, chan: &mut Channel) -> usize {
        let mut n = 0;
        while self.nwaiting > 0 {
            let Some(i) = self.ctx.iter().position(|x| !x.used) else { break };
            let mut c = self.waiting[0];
            self.waiting.copy_within(1..self.nwaiting, 0);
            self.nwaiting -= 1;
            c.used = true;
            self.ctx[i] = c;
            self.step(chan, i);
            n += 1;
        }
        n
    }

    fn push_moves(&mut self, chan: &mut Channel, moves: &[Move], function: u16, ck: u32) {
        for (i, m) in moves.iter().enumerate() {
            let (host, local, len, op) = match *m {
                Move::ToHost { host, local, len } => (host, local, len, dr::OP_D2H),
                Move::FromHost { host, local, len } => (host, local, len, dr::OP_H2D),
                Move::Zero { local, len } => (0, local, len, dr::OP_ZERO),
                // OP_COPY reads `host` (a DPU address) and writes `local`.
                Move::Copy { from, to, len } => (from, to, len, dr::OP_COPY),
            };
            let flags = if i + 1 == moves.len() { dr::FLAG_END } else { 0 };
            if !chan.push(&Desc { host, local, len, function, op, flags, msix: 0, cookie: ck }) {
                // The ring is sized for every command's worst case.
                defmt::error!("block: RAM device: DMA ring full");
            }
        }
        self.kick = true;
    }

    /// A data move chain of `tag` finished: the I/O is complete.
    pub fn moved(&mut self, tag: usize, ok: bool) -> (Tag, Status) {
        // DSM contexts finish through their own move chain.
        if self.dsm_fills != 0 {
            if let Some(i) = self.ctx.iter().position(|c| c.used && usize::from(c.tag) == tag && matches!(c.op, Op::Dsm { .. })) {
                self.ctx[i].used = false;
                self.dsm_fills &= !(1 << i);
            }
        }
        (tag as Tag, if ok { Status::SUCCESS } else { Status::DATA_TRANSFER_ERROR })
    }

    /// The next step of context `i`: fetch the next Compare chunk, or the
    /// DSM range list.
    fn step(&mut self, chan: &mut Channel, i: usize) {
        let c = self.ctx[i];
        let want = match c.op {
            Op::Compare if c.progress >= c.len => return self.end(i, Status::SUCCESS),
            Op::Compare => (c.len - c.progress).min(CHUNK as u32),
            _ => c.len.min(CHUNK as u32),
        };
        // Host segments covering [progress, progress + want).
        // (A copy's source is its `host` field.)
        let op = if c.staged { dr::OP_COPY } else { dr::OP_H2D };
        let mut descs = [Desc { host: 0, local: 0, len: 0, function: c.function, op, flags: 0, msix: 0, cookie: cookie::make(cookie::RAM_FETCH, i as u32) }; 8];
        let (mut skip, mut left, mut local, mut nd) = (c.progress, want, self.buf(i) as u64, 0);
        for &(addr, len) in c.segs.as_slice() {
            if left == 0 || nd == descs.len() {
                break;
            }
            if skip >= len {
                skip -= len;
                continue;
            }
            let take = (len - skip).min(left);
            descs[nd].host = addr + u64::from(skip);
            descs[nd].local = local;
            descs[nd].len = take;
            nd += 1;
            local += u64::from(take);
            left -= take;
            skip = 0;
        }
        if nd == 0 || left != 0 {
            return self.end(i, Status::INTERNAL_ERROR);
        }
        descs[nd - 1].flags = dr::FLAG_END;
        for d in &descs[..nd] {
            chan.push(d);
        }
        self.kick = true;
    }

    fn end(&mut self, i: usize, st: Status) {
        self.ctx[i].used = false;
        self.finish(self.ctx[i].tag, st);
    }

    /// Host operand bytes of context `i` arrived in its buffer.
    pub fn fetched(&mut self, chan: &mut Channel, i: usize, bytes: u32, ok: bool) {
        if i >= CONTEXTS || !self.ctx[i].used {
            return;
        }
        if !ok {
            return self.end(i, Status::DATA_TRANSFER_ERROR);
        }
        let c = self.ctx[i];
        match c.op {
            Op::Compare => {
                let shift = c.dev.geometry.block_shift;
                let dev = c.dev.base + (c.lba << shift) + u64::from(c.progress);
                let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
                let mut off = 0usize;
                while off < bytes as usize {
                    let n = (bytes as usize - off).min(256);
                    dpu_hal::mem::read(self.buf(i) + off, &mut a[..n]);
                    dpu_hal::mem::read(dev as usize + off, &mut b[..n]);
                    if a[..n] != b[..n] {
                        return self.end(i, Status::COMPARE_FAILURE);
                    }
                    off += n;
                }
                self.ctx[i].progress += bytes;
                self.step(chan, i);
            }
            Op::Dsm { attributes, .. } => self.deallocate(chan, i, attributes & (1 << 2) != 0),
            _ => self.end(i, Status::INTERNAL_ERROR),
        }
    }

    /// DSM: the range list of context `i` is in its buffer. Every range
    /// is checked first (16-byte entries: attributes, length, starting
    /// LBA); with the deallocate attribute the ranges are zero-filled.
    fn deallocate(&mut self, chan: &mut Channel, i: usize, dealloc: bool) {
        let c = self.ctx[i];
        let mut list = [0u8; CHUNK];
        let len = (c.len as usize).min(CHUNK);
        dpu_hal::mem::read(self.buf(i), &mut list[..len]);
        let mut moves = [Move::Zero { local: 0, len: 0 }; MAX_MOVES];
        let mut n = 0;
        for r in list[..len].chunks(16) {
            let (slba, nlb) = dpu_nvme::io::dsm_range(r);
            if slba.checked_add(u64::from(nlb)).is_none_or(|e| e > c.dev.geometry.blocks) {
                return self.end(i, Status::LBA_OUT_OF_RANGE);
            }
            if !dealloc || nlb == 0 {
                continue;
            }
            match c.dev.plan(&PlanIo { op: PlanOp::Deallocate, lba: slba, blocks: nlb, buf: Buf::None }, &mut moves[n..]) {
                Ok(k) => n += k,
                // More ranges than one chain carries: deallocation is a
                // hint (NVM Command Set 1.0 §3.2.3.2.1), the rest is skipped.
                Err(_) => break,
            }
        }
        if n == 0 {
            return self.end(i, Status::SUCCESS);
        }
        // The context is freed when the zero-fill chain completes (`moved`).
        self.dsm_fills |= 1 << i;
        self.push_moves(chan, &moves[..n], c.function, cookie::make(cookie::RAM, u32::from(c.tag)));
    }
}
