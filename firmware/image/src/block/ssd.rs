//! The local SSD block device on a data-plane core: namespaces of the
//! card's NVMe SSDs (the NVMe host driver's I/O side; the SSDs are
//! brought up by `crate::ssd::service`). Each core has its own polled
//! queue pair on every SSD (NVMe Base 2.0 §3.3.1): submission without
//! locks, completions read by the core (phase tag, §4.6).
//!
//! The SSDs reach DPU memory only, so data is staged (`super::staging`):
//! * Write: host pages -> staging by DMA, then an NVMe Write whose PRPs
//!   (§4.1.1) name the staging pages; the SSD reads them itself.
//! * Read: an NVMe Read into staging pages, then staging -> host by DMA.
//! * Staged data (the crypto device's lower I/O): the PRPs name its pages.
//!
//! Flush goes to the SSD as Flush. An SSD's status (Internal Error, LBA
//! Out of Range, ...) is the I/O's status. Other operations are not
//! offered (Invalid Opcode). The reactor polls while commands are out
//! ([`Ssd::deadline`]): the SSDs raise no interrupt to the cores.

use super::staging::{Pages, Pool, MAX_IO_PAGES, PAGE};
use super::{cookie, Data, Done, Io, Op, SegTable, Tag, MAX_SEGS, MAX_TAGS, NAMESPACE_NOT_READY_DNR};
use dpu_hal::dma::Channel;
use dpu_hal::memory_map::{SSD_SLOTS, TIMEBASE_HZ};
use dpu_hal::regs::ssd as r;
use dpu_nvme::host::{self, Completion, QueuePair};
use dpu_nvme::Status;

/// Poll interval while commands are out: 2 us (an SSD read takes ~80).
const POLL_TICKS: u64 = TIMEBASE_HZ / 500_000;
/// Bytes of each context's PRP list (entries after the first page).
const LIST_BYTES: usize = 8 * MAX_IO_PAGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for staging pages.
    Pages,
    /// Write: host -> staging.
    Fetch,
    /// At the SSD.
    Media,
    /// Read: staging -> host.
    Deliver,
}

#[derive(Clone, Copy)]
struct Ctx {
    used: bool,
    step: Step,
    /// The step's DMA or command is in flight.
    busy: bool,
    tag: Tag,
    op: Op,
    ssd: u16,
    nsid: u32,
    lba: u64,
    blocks: u32,
    len: u32,
    function: u16,
    /// Its host segments are `Ssd::segs[context][..nsegs]`.
    nsegs: u8,
    pages: Pages,
    /// The pages are this device's (staged for a host I/O), not the caller's.
    owned: bool,
}

impl Ctx {
    const FREE: Ctx = Ctx {
        used: false,
        step: Step::Pages,
        busy: false,
        tag: 0,
        op: Op::Flush,
        ssd: 0,
        nsid: 0,
        lba: 0,
        blocks: 0,
        len: 0,
        function: 0,
        nsegs: 0,
        pages: Pages::NONE,
        owned: false,
    };
}

/// This core's queue pair on one SSD.
#[derive(Clone, Copy)]
struct Qp {
    /// Looked up once the SSD is up (`crate::ssd::queue_pair`).
    known: bool,
    qid: u16,
    sq: usize,
    cq: usize,
    q: QueuePair,
    max_transfer: u32,
    /// Commands out on it.
    out: u16,
}

impl Qp {
    const NONE: Qp = Qp { known: false, qid: 0, sq: 0, cq: 0, q: QueuePair::new(2), max_transfer: 0, out: 0 };
}

pub struct Ssd {
    /// The core's queue index (its qid - 1 on every SSD).
    core: usize,
    qps: [Qp; SSD_SLOTS],
    ctx: [Ctx; MAX_TAGS],
    /// Host segments of each context's I/O: built at start, not part of
    /// `INIT` (as a constant they were a 128 KiB template in the image).
    segs: SegTable,
    /// Contexts waiting for pages or queue room, oldest first.
    wait: [u8; MAX_TAGS],
    nwait: usize,
    /// PRP lists, `LIST_BYTES` per context (DPU memory the SSDs read).
    lists: usize,
    /// Commands out on all SSDs.
    out: usize,
    pub(super) done: Done,
    pub kick: bool,
}

impl dpu_rt::ConstInit for Ssd {
    const INIT: Ssd = Ssd { core: 0, qps: [Qp::NONE; SSD_SLOTS], ctx: [Ctx::FREE; MAX_TAGS], segs: SegTable::NONE, wait: [0; MAX_TAGS], nwait: 0, lists: 0, out: 0, done: Done::EMPTY, kick: false };
}

impl Ssd {
    /// The local SSD device of data-plane hart `hart`, in DDR.
    pub fn start(hart: usize) -> Option<&'static mut Ssd> {
        let core = crate::net::data_queue(hart)?;
        let s = dpu_rt::alloc::ddr_static::<Ssd>()?;
        s.lists = dpu_rt::alloc::ddr((MAX_TAGS * LIST_BYTES) as u64, 4096)? as usize;
        if !s.segs.start(MAX_TAGS) {
            return None;
        }
        s.core = core;
        Some(s)
    }

    fn finish(&mut self, pool: &mut Pool, i: usize, st: Status) {
        let c = &mut self.ctx[i];
        if c.owned {
            pool.free(&mut c.pages);
        }
        c.used = false;
        let tag = c.tag;
        self.done.push(tag, st);
    }

    pub fn take_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        self.done.take(out)
    }

    /// Starts `io` on namespace `nsid` of SSD `ssd`.
    pub fn submit(&mut self, chan: &mut Channel, pool: &mut Pool, ssd: u16, nsid: u32, tag: Tag, io: &Io) {
        let reject = |s: &mut Ssd, st| s.done.push(tag, st);
        if !matches!(io.op, Op::Read | Op::Write | Op::Flush | Op::WriteZeroes | Op::Dsm { .. }) {
            return reject(self, Status::INVALID_OPCODE);
        }
        if usize::from(ssd) >= SSD_SLOTS || io.len as usize > MAX_IO_PAGES * PAGE {
            return reject(self, Status::INTERNAL_ERROR);
        }
        let Some(i) = self.ctx.iter().position(|c| !c.used) else { return reject(self, Status::INTERNAL_ERROR) };
        let step = match (io.op, io.data) {
            (Op::Flush | Op::WriteZeroes, _) => Step::Media,
            (_, Data::Host { segs, .. }) if !segs.is_empty() && segs.len() <= MAX_SEGS => {
                if !self.segs.set(i, segs) {
                    return reject(self, Status::INTERNAL_ERROR);
                }
                Step::Pages
            }
            (_, Data::Staged(_)) => Step::Media,
            _ => return reject(self, Status::INTERNAL_ERROR),
        };
        // Field by field in place (no context-sized value built and copied).
        let c = &mut self.ctx[i];
        (c.used, c.step, c.busy, c.tag, c.op, c.ssd, c.nsid) = (true, step, false, tag, io.op, ssd, nsid);
        (c.lba, c.blocks, c.len, c.nsegs, c.owned) = (io.lba, io.blocks, io.len, 0, false);
        match io.data {
            Data::Host { function, segs } if step == Step::Pages => {
                (c.nsegs, c.function, c.owned) = (segs.len() as u8, function, true);
            }
            Data::Staged(p) if !matches!(io.op, Op::Flush | Op::WriteZeroes) => c.pages = *p,
            _ => {}
        }
        if !self.advance(chan, pool, i) {
            self.wait[self.nwait] = i as u8;
            self.nwait += 1;
        }
    }

    /// Runs context `i`'s step; false if it must wait (pages, queue room).
    fn advance(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize) -> bool {
        if self.ctx[i].busy {
            return true;
        }
        match self.ctx[i].step {
            Step::Pages => {
                let c = &mut self.ctx[i];
                if !pool.alloc_into(c.len as usize, &mut c.pages) {
                    return false;
                }
                c.step = if c.op.sends_data() { Step::Fetch } else { Step::Media };
                self.advance(chan, pool, i)
            }
            Step::Fetch | Step::Deliver => self.dma(chan, pool, i),
            Step::Media => self.command(pool, i),
        }
    }

    /// Host <-> staging for context `i` (its step says which way).
    fn dma(&mut self, chan: &mut Channel, pool: &Pool, i: usize) -> bool {
        let c = &self.ctx[i];
        let segs = self.segs.get(i, c.nsegs);
        if !pool.push_host_chain(chan, &c.pages, segs, c.function, c.step == Step::Fetch, cookie::make(cookie::SSD, i as u32)) {
            return false;
        }
        self.ctx[i].busy = true;
        self.kick = true;
        true
    }

    /// This core's queue pair on SSD `ssd`, once the SSD is up.
    fn qp(&mut self, ssd: usize) -> Option<&mut Qp> {
        let q = &mut self.qps[ssd];
        if !q.known {
            let (qid, entries, sq, cq, max) = crate::ssd::queue_pair(ssd, self.core)?;
            *q = Qp { known: true, qid, sq: sq as usize, cq: cq as usize, q: QueuePair::new(entries), max_transfer: max, out: 0 };
        }
        Some(q)
    }

    /// Sends context `i`'s NVMe command (CID = `i`); false if the SQ is full.
    fn command(&mut self, pool: &mut Pool, i: usize) -> bool {
        // Fields, not a copy of the context (its page list is ~70 bytes).
        let (ssd, op, nsid, lba, blocks, len) = {
            let c = &self.ctx[i];
            (usize::from(c.ssd), c.op, c.nsid, c.lba, c.blocks, c.len)
        };
        let list = self.lists + i * LIST_BYTES;
        let Some(qp) = self.qp(ssd) else {
            // No queue pair on it for this core (or the SSD is down).
            self.finish(pool, i, NAMESPACE_NOT_READY_DNR);
            return true;
        };
        if qp.max_transfer != 0 && len > qp.max_transfer {
            self.finish(pool, i, Status::INVALID_FIELD);
            return true;
        }
        let sqe = if op == Op::Flush {
            host::flush(i as u16, nsid)
        } else if op == Op::WriteZeroes {
            host::write_zeroes(i as u16, nsid, lba, blocks)
        } else if let Op::Dsm { nr0, attributes } = op {
            // The range list (at most 256 x 16 bytes) is one staged page.
            host::dsm(i as u16, nsid, nr0, attributes, pool.addr(self.ctx[i].pages.page(0)))
        } else {
            let pages = &self.ctx[i].pages;
            let n = (len as usize).div_ceil(PAGE).min(pages.len());
            let prps = if n <= 2 {
                // One or two pages (every 4 KiB I/O): no list, nothing to zero.
                let addrs = [pool.addr(pages.page(0)), if n == 2 { pool.addr(pages.page(1)) } else { 0 }];
                host::prps(&addrs[..n], list as u64, &mut [])
            } else {
                let mut addrs = [0u64; MAX_IO_PAGES];
                for (k, a) in addrs[..n].iter_mut().enumerate() {
                    *a = pool.addr(pages.page(k));
                }
                let mut entries = [0u64; MAX_IO_PAGES];
                host::prps(&addrs[..n], list as u64, &mut entries).inspect(|&(_, _, k)| dpu_hal::mem::write_words(list, &entries[..k]))
            };
            let Some((prp1, prp2, _)) = prps else {
                self.finish(pool, i, Status::INTERNAL_ERROR);
                return true;
            };
            host::read_write(i as u16, op == Op::Write, nsid, lba, blocks, prp1, prp2)
        };
        let qp = &mut self.qps[ssd];
        let Some(slot) = qp.q.push() else { return false };
        dpu_hal::mem::write(qp.sq + usize::from(slot) * 64, &sqe.0);
        // Like the DMA rings' tails: the entry and PRP list are written
        // before the doorbell (the model's memory is ordered; real
        // hardware would want `fence w,o` here, as the DMA rings would).
        dpu_hal::mmio::write32(crate::ssd::regs(ssd) + r::sq_tail(qp.qid) as usize, u32::from(qp.q.sq_tail));
        qp.out += 1;
        self.out += 1;
        self.ctx[i].busy = true;
        true
    }

    /// A DMA chain of context `i` finished.
    pub fn dma_done(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize, ok: bool) {
        if i >= MAX_TAGS || !self.ctx[i].used {
            return;
        }
        self.ctx[i].busy = false;
        if !ok {
            return self.finish(pool, i, Status::DATA_TRANSFER_ERROR);
        }
        match self.ctx[i].step {
            Step::Fetch => {
                self.ctx[i].step = Step::Media;
                if !self.advance(chan, pool, i) {
                    self.wait[self.nwait] = i as u8;
                    self.nwait += 1;
                }
            }
            _ => self.finish(pool, i, Status::SUCCESS),
        }
    }

    /// The SSD answered context `i`.
    fn answered(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize, st: Status) {
        if i >= MAX_TAGS || !self.ctx[i].used || self.ctx[i].step != Step::Media {
            return;
        }
        self.ctx[i].busy = false;
        if st.is_success() && self.ctx[i].op == Op::Read && self.ctx[i].owned {
            self.ctx[i].step = Step::Deliver;
            if !self.advance(chan, pool, i) {
                self.wait[self.nwait] = i as u8;
                self.nwait += 1;
            }
        } else {
            self.finish(pool, i, st);
        }
    }

    /// Reaps the completion queues; retries waiting contexts.
    pub fn poll(&mut self, chan: &mut Channel, pool: &mut Pool) -> usize {
        let mut work = 0;
        if self.out > 0 {
            for ssd in 0..SSD_SLOTS {
                if self.qps[ssd].out > 0 {
                    work += self.reap(chan, pool, ssd);
                }
            }
        }
        let mut k = 0;
        while k < self.nwait {
            let i = usize::from(self.wait[k]);
            if self.advance(chan, pool, i) {
                self.wait.copy_within(k + 1..self.nwait, k);
                self.nwait -= 1;
                work += 1;
            } else {
                k += 1;
            }
        }
        work
    }

    fn reap(&mut self, chan: &mut Channel, pool: &mut Pool, ssd: usize) -> usize {
        let mut n = 0;
        loop {
            let qp = &mut self.qps[ssd];
            let mut raw = [0u8; 16];
            dpu_hal::mem::read(qp.cq + usize::from(qp.q.cq_head) * 16, &mut raw);
            if !qp.q.is_new(&raw) {
                break;
            }
            let c = Completion::parse(&raw);
            qp.q.pop(&c);
            qp.out = qp.out.saturating_sub(1);
            self.out = self.out.saturating_sub(1);
            n += 1;
            self.answered(chan, pool, usize::from(c.cid), c.status);
        }
        if n > 0 {
            let qp = &self.qps[ssd];
            dpu_hal::mmio::write32(crate::ssd::regs(ssd) + r::cq_head(qp.qid) as usize, u32::from(qp.q.cq_head));
        }
        n
    }

    /// When the reactor must poll again without an interrupt.
    pub fn deadline(&self) -> u64 {
        if self.out > 0 || self.nwait > 0 {
            dpu_hal::csr::time() + POLL_TICKS
        } else {
            u64::MAX
        }
    }
}
