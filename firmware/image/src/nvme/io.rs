//! The NVMe I/O engine of one data-plane core.
//!
//! Per command: SQ tail doorbell -> fetch SQEs by DMA (batched, CQ slots
//! reserved up front) -> decode and check -> walk the data pointer (PRP list
//! or SGL segments fetched by DMA when needed) -> the I/O goes to the top
//! of the namespace's block-device stack ([`crate::block`]) under the
//! command's slot -> its completion comes back -> the CQE is written by
//! DMA, followed by MSI-X (or coalesced). Everything is non-blocking: the
//! engine advances whatever is ready each reactor pass.

use crate::block::{self, Data, Stack, Tag};
use crate::bootcfg as config;
use crate::nvmf::initiator::Fabric;
use super::{iostat, live};
use super::msg::{self, Done, HostError, ToAdmin, ToEngine};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::pcie::{self, Note};
use dpu_hal::regs::dma as dr;
use dpu_nvme::dptr::{self, PrpWalk, SegList, SglWalk, Step};
use dpu_nvme::io::{self as nio, IoCmd, Op};
use dpu_nvme::queue::{CqPointers, SqPointers};
use dpu_nvme::{Cqe, Sqe, Status};
use dpu_ring::{Consumer, Producer};
use dpu_rt::ConstInit;

const MAXQ: usize = 32;
const MAXCMD: usize = 128;
const MAXWALK: usize = 8;
const FETCH_BUFS: usize = 8;
const FETCH_BATCH: u16 = 16;
const DMA_RING: u32 = 512;
const LIST_BUF: usize = 4096;

// DMA cookie kinds (top 4 bits) and index (low bits).
const K_FETCH: u32 = 1;
const K_LIST: u32 = 2;
const K_CQE: u32 = 4;
/// DMA done for the block layer (it dispatches on the low 28 bits).
const K_BLOCK: u32 = block::cookie::KIND;

fn cookie(kind: u32, index: usize) -> u32 {
    (kind << 28) | index as u32
}

#[derive(Clone, Copy)]
struct Cq {
    used: bool,
    func: u16,
    qid: u16,
    addr: u64,
    ptr: CqPointers,
    vector: u16,
    irq: bool,
    thr: u8,
    time: u8,
    /// CQEs posted since the last interrupt (coalescing).
    unsignalled: u16,
    deadline: u64,
    sqs: u8,
}

#[derive(Clone, Copy)]
struct Sq {
    used: bool,
    func: u16,
    qid: u16,
    addr: u64,
    ptr: SqPointers,
    cq: u8,
    inflight: u16,
    deleting: bool,
    /// Ack `Done::DeleteSq` once drained.
    ack_delete: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Its SQE is being fetched.
    Fetching,
    /// Waiting for a walk context to fetch a PRP list / SGL segment.
    NeedWalk,
    /// A PRP list / SGL segment is being fetched into `walk`.
    Listing,
    /// CQE DMA in flight.
    Posting,
    /// In the namespace's block-device stack.
    Block,
}

#[derive(Clone, Copy)]
struct Cmd {
    state: State,
    sq: u8,
    sqe: Sqe,
    io: IoCmd,
    walk: u8,
    status: Status,
    /// The boot configuration's namespace of the command (looked up once,
    /// when decoded); `None`: one of the live table, or none.
    ns: Option<&'static config::Namespace>,
    /// Its namespace's statistics slot ([`iostat`]) and when it went to
    /// the block layer (`mtime`), set on submission.
    stat: u16,
    t0: u64,
}

#[derive(Clone, Copy)]
enum Walker {
    None,
    Prp(PrpWalk),
    Sgl(SglWalk),
}

#[derive(Clone, Copy)]
struct Walk {
    used: bool,
    cmd: u8,
    w: Walker,
    segs: SegList,
}

/// CQEs of one CQ staged at consecutive entries of the staging ring,
/// for consecutive CQ slots: they reach the host in one DMA write, with
/// at most one interrupt after the last.
#[derive(Clone, Copy)]
struct Batch {
    /// Entries staged (0: no batch open).
    n: u16,
    /// Staging ring entry of the first.
    start: u16,
    cq: u8,
    /// CQ slot of the first.
    index: u16,
    /// An entry of the batch asked for an interrupt.
    msix: bool,
}

#[derive(Clone, Copy)]
struct FetchBuf {
    used: bool,
    sq: u8,
    n: u16,
    /// Command slots taken for the batch.
    slots: [u8; FETCH_BATCH as usize],
}

/// Per-function counters (single writer: this engine; read by the admin
/// service for the SMART log).
pub struct FnCounters {
    pub read_cmds: core::sync::atomic::AtomicU64,
    pub write_cmds: core::sync::atomic::AtomicU64,
    pub bytes_read: core::sync::atomic::AtomicU64,
    pub bytes_written: core::sync::atomic::AtomicU64,
}

impl FnCounters {
    const fn new() -> Self {
        use core::sync::atomic::AtomicU64;
        FnCounters {
            read_cmds: AtomicU64::new(0),
            write_cmds: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }
    }
    fn add(c: &core::sync::atomic::AtomicU64, v: u64) {
        use core::sync::atomic::Ordering::Relaxed;
        c.store(c.load(Relaxed) + v, Relaxed);
    }
}

/// Counters of every engine, indexed [hart][function].
pub static COUNTERS: [[FnCounters; dpu_hal::memory_map::MAX_FUNCTIONS]; dpu_hal::memory_map::HARTS] =
    [const { [const { FnCounters::new() }; dpu_hal::memory_map::MAX_FUNCTIONS] }; dpu_hal::memory_map::HARTS];

/// Engine statistics.
#[derive(Clone, Copy, Default)]
pub struct Stats {
    pub commands: u64,
    pub errors: u64,
    pub fetches: u64,
    pub cq_full_stalls: u64,
}

pub struct Engine {
    hart: usize,
    /// This hart's row of [`COUNTERS`].
    counters: &'static [FnCounters; dpu_hal::memory_map::MAX_FUNCTIONS],
    /// This core's block device statistics.
    iostat: iostat::Writer,
    chan: Option<Channel>,
    from_admin: Option<Consumer<'static, ToEngine, { msg::DEPTH }>>,
    to_admin: Option<Producer<'static, ToAdmin, { msg::DEPTH }>>,
    cqs: [Cq; MAXQ],
    sqs: [Sq; MAXQ],
    cmds: [Cmd; MAXCMD],
    free: [u8; MAXCMD],
    nfree: usize,
    walks: [Walk; MAXWALK],
    walk_wait: [u8; MAXCMD],
    walk_wait_n: usize,
    fetch: [FetchBuf; FETCH_BUFS],
    fetch_area: usize,
    list_area: usize,
    /// CQE staging ring (`MAXCMD` entries): entry `i` holds the CQE of
    /// command `stage_slot[i]` until its batch's DMA completes. Entries are
    /// taken in ring order and given back in that order (one open batch
    /// at a time, pushed before the next opens; DMA completes in order),
    /// and each holds a command in `Posting`: it never overflows.
    cqe_area: usize,
    stage_tail: usize,
    stage_slot: [u8; MAXCMD],
    batch: Batch,
    /// Aborts of commands not fetched yet: (func, sqid, cid, sq tail when asked).
    aborts: [(u16, u16, u16, u16, bool); 8],
    /// Some entry of `aborts` may be live (fetched commands skip the
    /// lookup otherwise).
    aborts_armed: bool,
    /// Functions with a pending reset (bit f).
    resets: [u64; 2],
    /// SQs with entries to fetch (bit = SQ slot).
    pending: u32,
    /// CQs with a coalescing deadline armed (bit = CQ slot).
    armed: u32,
    /// Notifications may remain in the endpoint FIFO.
    more_notes: bool,
    kick: bool,
    /// mtimecmp currently programmed (coalescing deadlines).
    timer: u64,
    /// Earliest coalescing deadline (the reactor programs the timer).
    timer_want: u64,
    /// The block devices of this core (RAM, remote namespaces).
    block: Stack,
    /// This core's copy of the namespaces attached at run time.
    live: live::Table,
    /// This core's NVMe/TCP target (its I/Os share `block`).
    target: Option<&'static mut crate::nvmf::target::Target>,
    /// Detached namespaces (func, nsid) whose in-flight commands must
    /// finish before the admin service hears `ToAdmin::Detached`.
    detaching: [(u16, u32); DETACHING],
    ndetaching: usize,
    /// Functions paused for a firmware activation (bit f), and those whose
    /// queues were reported since.
    paused: u128,
    reported: u128,
    /// Next queue slot to report of the function being reported (CQ slots
    /// 0..MAXQ, then SQ slots).
    pause_cursor: usize,
    /// The function `pause_cursor` belongs to.
    pause_func: u16,
    pub stats: Stats,
}

/// Detaches waiting for their commands at once.
const DETACHING: usize = 8;

impl ConstInit for Engine {
    const INIT: Engine = Engine {
        hart: 0,
        counters: &COUNTERS[0],
        iostat: iostat::Writer::NONE,
        chan: None,
        from_admin: None,
        to_admin: None,
        cqs: [Cq {
            used: false,
            func: 0,
            qid: 0,
            addr: 0,
            ptr: CqPointers { entries: 0, tail: 0, head: 0, phase: true, reserved: 0 },
            vector: 0,
            irq: false,
            thr: 0,
            time: 0,
            unsignalled: 0,
            deadline: 0,
            sqs: 0,
        }; MAXQ],
        sqs: [Sq {
            used: false,
            func: 0,
            qid: 0,
            addr: 0,
            ptr: SqPointers { entries: 0, head: 0, tail: 0 },
            cq: 0,
            inflight: 0,
            deleting: false,
            ack_delete: false,
        }; MAXQ],
        cmds: [Cmd {
            state: State::Free,
            sq: 0,
            sqe: Sqe::ZERO,
            io: IoCmd { op: Op::Flush, nsid: 0, slba: 0, nlb: 0, data_len: 0, sgl: false },
            walk: 0,
            status: Status::SUCCESS,
            ns: None,
            stat: config::NO_STAT,
            t0: 0,
        }; MAXCMD],
        free: [0; MAXCMD],
        nfree: 0,
        walks: [Walk { used: false, cmd: 0, w: Walker::None, segs: SegList::new() }; MAXWALK],
        walk_wait: [0; MAXCMD],
        walk_wait_n: 0,
        fetch: [FetchBuf { used: false, sq: 0, n: 0, slots: [0; FETCH_BATCH as usize] }; FETCH_BUFS],
        fetch_area: 0,
        list_area: 0,
        cqe_area: 0,
        stage_tail: 0,
        stage_slot: [0; MAXCMD],
        batch: Batch { n: 0, start: 0, cq: 0, index: 0, msix: false },
        aborts: [(0, 0, 0, 0, false); 8],
        aborts_armed: false,
        resets: [0; 2],
        pending: 0,
        armed: 0,
        more_notes: false,
        kick: false,
        timer: u64::MAX,
        timer_want: u64::MAX,
        block: Stack::INIT,
        live: live::Table::EMPTY,
        target: None,
        detaching: [(0, 0); DETACHING],
        ndetaching: 0,
        paused: 0,
        reported: 0,
        pause_cursor: 0,
        pause_func: 0,
        stats: Stats { commands: 0, errors: 0, fetches: 0, cq_full_stalls: 0 },
    };
}

impl Engine {
    /// Sets up the engine on the calling data-plane hart: DMA channel,
    /// SMEM staging areas, admin rings.
    pub fn start(&mut self, hart: usize) -> bool {
        self.hart = hart;
        self.counters = &COUNTERS[hart];
        let Some(ring) = dpu_rt::alloc::smem(Channel::memory(DMA_RING), 64) else { return false };
        let fetch = dpu_rt::alloc::smem(FETCH_BUFS * FETCH_BATCH as usize * 64, 64);
        let lists = dpu_rt::alloc::smem(MAXWALK * LIST_BUF, 4096);
        let cqes = dpu_rt::alloc::smem(MAXCMD * 16, 64);
        let (Some(fetch), Some(lists), Some(cqes)) = (fetch, lists, cqes) else { return false };
        if !self.block.start() {
            return false;
        }
        let chan = Channel::start(super::dma_channel(hart), ring, DMA_RING, Some(hart));
        if !chan.running() {
            return false;
        }
        let Some((rx, tx)) = msg::engine_ends(hart) else { return false };
        self.chan = Some(chan);
        self.from_admin = Some(rx);
        self.to_admin = Some(tx);
        self.fetch_area = fetch;
        self.list_area = lists;
        self.cqe_area = cqes;
        for i in 0..MAXCMD {
            self.free[i] = (MAXCMD - 1 - i) as u8;
        }
        self.nfree = MAXCMD;
        true
    }

    /// Sets up this core's block device statistics when it gets its first
    /// queue (before its first command; not at boot, where 64 cores
    /// filling their counter blocks in DDR at once would keep them from
    /// answering the control plane's first ping in time).
    #[cold]
    #[inline(never)]
    fn start_iostat(&mut self) {
        match iostat::start(self.hart) {
            Some(w) => self.iostat = w,
            None => defmt::warn!("hart {=usize}: no memory for I/O statistics (its I/O is not counted)", self.hart),
        }
    }

    fn chan(&mut self) -> &mut Channel {
        self.chan.as_mut().expect("engine started")
    }

    fn tell_admin(&mut self, m: ToAdmin) {
        if let Some(tx) = self.to_admin.as_mut() {
            if tx.push(m).is_err() {
                defmt::warn!("hart {=usize}: admin ring full, message dropped", self.hart);
            }
            dpu_hal::mailbox::ring(super::ADMIN_HART, msg::DOORBELL_NVME);
        }
    }

    fn find_sq(&self, func: u16, qid: u16) -> Option<usize> {
        self.sqs.iter().position(|s| s.used && s.func == func && s.qid == qid)
    }

    fn find_cq(&self, func: u16, qid: u16) -> Option<usize> {
        self.cqs.iter().position(|c| c.used && c.func == func && c.qid == qid)
    }

    /// One reactor pass; `doorbells` are the mailbox bits that woke the
    /// core (device registers are only read when something arrived).
    /// Returns how much work was done.
    #[inline(never)]
    pub fn poll(&mut self, doorbells: u64) -> usize {
        if self.chan.is_none() {
            return 0;
        }
        let mut work = 0;
        if doorbells & msg::DOORBELL_NVME != 0 {
            work += self.admin_messages();
        }
        if doorbells & dpu_hal::regs::pcie::MAILBOX_BIT != 0 || self.more_notes {
            work += self.notifications();
        }
        if self.chan.as_ref().is_some_and(Channel::ready) {
            work += self.dma_completions();
            // Data moves and CQEs of the finished work start now, not
            // after the rest of the pass.
            self.hand_over();
        }
        if self.pending != 0 {
            work += self.start_fetches();
            self.hand_over();
        }
        if self.walk_wait_n > 0 {
            self.retry_walks();
        }
        if self.armed != 0 || self.timer != u64::MAX {
            work += self.coalescing_timers();
        }
        work += self.block_pass(doorbells);
        if self.ndetaching > 0 {
            self.check_detaching();
        }
        if self.paused != self.reported {
            self.check_pauses();
        }
        self.hand_over();
        work
    }

    /// Paused functions whose commands have all completed (CQEs written,
    /// interrupts sent): every queue of theirs is reported to the admin
    /// service, then `Done::Paused`. The reports go as the ring to the
    /// admin service has room (up to 2 x `MAXQ` of them); `pause_cursor`
    /// says where the report of the lowest paused function stands.
    fn check_pauses(&mut self) {
        let mut bits = self.paused & !self.reported;
        while bits != 0 {
            let func = bits.trailing_zeros() as u16;
            bits &= bits - 1;
            if self.sqs.iter().any(|s| s.used && s.func == func && s.inflight > 0) || self.batch.n > 0 {
                continue;
            }
            // A report cut short by a full ring carries on with the same
            // function (`pause_cursor` is its place); others wait for it.
            if self.pause_cursor > 0 && self.pause_func != func {
                continue;
            }
            self.pause_func = func;
            let room = |e: &Self| e.to_admin.as_ref().map_or(0, |t| t.free());
            while self.pause_cursor < 2 * MAXQ {
                if room(self) < 2 {
                    // One slot stays for `Done::Paused`; the rest next pass.
                    return;
                }
                let k = self.pause_cursor;
                self.pause_cursor += 1;
                if k >= MAXQ {
                    let s = self.sqs[k - MAXQ];
                    if s.used && s.func == func {
                        let link = self.cqs[usize::from(s.cq)].qid;
                        self.tell_admin(ToAdmin::Queue { func, qid: s.qid, cq: false, entries: s.ptr.entries, addr: s.addr, link, irq: false, a: s.ptr.head, b: s.ptr.tail, phase: false });
                    }
                    continue;
                }
                let i = k;
                let c = self.cqs[i];
                if !c.used || c.func != func {
                    continue;
                }
                if c.unsignalled > 0 {
                    // Coalesced completions are signalled now, not by a
                    // timer this image will not run.
                    pcie::msix(c.func, c.vector);
                    self.cqs[i].unsignalled = 0;
                }
                let (entries, addr, link, irq) = (c.ptr.entries, c.addr, c.vector, c.irq);
                self.tell_admin(ToAdmin::Queue { func, qid: c.qid, cq: true, entries, addr, link, irq, a: c.ptr.tail, b: c.ptr.head, phase: c.ptr.phase });
            }
            self.pause_cursor = 0;
            self.reported |= 1u128 << func;
            self.tell_admin(ToAdmin::Done { func, what: Done::Paused, qid: 0 });
        }
    }

    /// Hands what this pass queued to the DMA engine: the open CQE batch,
    /// then the descriptors written since the last kick.
    #[inline]
    fn hand_over(&mut self) {
        if self.batch.n > 0 {
            self.post_batch();
        }
        if self.block.take_kick() {
            self.kick = true;
        }
        if self.kick {
            self.kick = false;
            self.chan().kick();
        }
    }

    /// Runs the block layer (the NVMe/TCP initiator's network, waiting
    /// device operations) and completes what it finished.
    fn block_pass(&mut self, doorbells: u64) -> usize {
        let Some(chan) = self.chan.as_mut() else { return 0 };
        let nic = doorbells & (dpu_hal::regs::nic::MAILBOX_BIT | dpu_hal::regs::nic::MAILBOX_LINK) != 0;
        let mut work = self.block.poll(chan, nic, doorbells & crate::nvmf::DOORBELL_NVMF != 0);
        if let Some(t) = self.target.as_deref_mut() {
            work += t.poll(&mut self.block, chan);
        }
        work + self.block_completions()
    }

    /// Completes the commands the block layer finished.
    #[inline]
    fn block_completions(&mut self) -> usize {
        if self.block.take_kick() {
            self.kick = true;
        }
        if !self.block.has_done() {
            return 0;
        }
        self.block_completions_slow()
    }

    #[inline(never)]
    fn block_completions_slow(&mut self) -> usize {
        let mut done = [(0 as Tag, Status::SUCCESS); 8];
        let mut total = 0;
        loop {
            let Some(chan) = self.chan.as_mut() else { return total };
            let n = self.block.take_done(chan, &mut done);
            for &(tag, st) in &done[..n] {
                self.tag_done(tag, st);
            }
            total += n;
            if n < done.len() {
                return total;
            }
        }
    }

    /// Hands command `slot` to its namespace's block-device stack, with
    /// the host data segments `segs` (empty for commands without data).
    fn submit_block(&mut self, slot: usize, op: block::Op, segs: &[(u64, u32)]) {
        let c = &self.cmds[slot];
        let (func, nsid) = (self.sqs[usize::from(c.sq)].func, c.io.nsid);
        let (lba, blocks, len) = (c.io.slba, c.io.nlb, c.io.data_len);
        let boot = c.ns;
        let attached = if boot.is_none() { self.live.get(func, nsid).copied() } else { None };
        if boot.is_none() && attached.is_none() {
            return self.complete(slot, Status::INVALID_NAMESPACE, 0);
        }
        let data = if segs.is_empty() { Data::None } else { Data::Host { function: func, segs } };
        let io = block::Io { op, lba, blocks, len, data };
        self.cmds[slot].state = State::Block;
        self.cmds[slot].stat = boot.or(attached.as_ref()).map_or(config::NO_STAT, |n| n.stat);
        self.cmds[slot].t0 = dpu_hal::csr::time();
        let Some(chan) = self.chan.as_mut() else { return };
        match (boot, attached) {
            (Some(ns), _) => self.block.submit(chan, ns, slot as Tag, &io),
            (None, Some(ns)) => self.block.submit(chan, &ns, slot as Tag, &io),
            (None, None) => {}
        }
        // Immediate failures (bad request, no path) wait in the block
        // layer's done queue: this pass's `block_pass` completes them.
    }

    /// The block layer finished I/O `tag`: the NVMe/TCP target's, or
    /// command slot `tag`.
    fn tag_done(&mut self, tag: Tag, st: Status) {
        if tag & crate::nvmf::target::TAG != 0 {
            if let Some(t) = self.target.as_deref_mut() {
                t.block_done(&mut self.block.pool, tag, st);
            }
            return;
        }
        self.block_done(usize::from(tag), st);
    }

    /// The block layer finished command `slot`.
    fn block_done(&mut self, slot: usize, st: Status) {
        if slot >= MAXCMD || self.cmds[slot].state != State::Block {
            return;
        }
        if st.is_success() {
            self.count_done(slot);
        }
        self.complete(slot, st, 0);
    }

    /// Counts a successful read or write in its function's counters
    /// (the SMART log) and its block device's statistics ([`iostat`]);
    /// a deallocate in the latter.
    fn count_done(&self, slot: usize) {
        let c = &self.cmds[slot];
        let s = &self.sqs[usize::from(c.sq)];
        let ctr = &self.counters[usize::from(s.func)];
        let kind = match c.io.op {
            Op::Read => {
                FnCounters::add(&ctr.read_cmds, 1);
                FnCounters::add(&ctr.bytes_read, u64::from(c.io.data_len));
                iostat::Kind::Read
            }
            Op::Write => {
                FnCounters::add(&ctr.write_cmds, 1);
                FnCounters::add(&ctr.bytes_written, u64::from(c.io.data_len));
                iostat::Kind::Write
            }
            // Attribute - Deallocate (NVMe Base 2.0 §3.3.3.2, CDW11 bit 2);
            // its bytes are in the ranges the block device reads.
            Op::Dsm { .. } if c.sqe.cdw11() & (1 << 2) != 0 => {
                self.iostat.count(c.stat, iostat::Kind::Unmap, 0, dpu_hal::csr::time().saturating_sub(c.t0));
                return;
            }
            _ => return,
        };
        self.iostat.count(c.stat, kind, c.io.data_len, dpu_hal::csr::time().saturating_sub(c.t0));
    }

    /// Attaches this core's NVMe/TCP initiator (remote namespaces).
    pub fn attach_fabric(&mut self, f: &'static mut Fabric) {
        self.block.attach_fabric(f);
    }

    /// Attaches this core's crypto device (encrypted namespaces).
    pub fn attach_crypto(&mut self, c: &'static mut crate::block::crypto::Crypto) {
        self.block.attach_crypto(c);
    }

    /// Starts this core's NVMe/TCP target on the stacks of its NVMe/TCP
    /// side (after `attach_fabric`).
    pub fn start_target(&mut self) -> bool {
        let hart = self.hart;
        let (_, fabric) = self.block.parts();
        let Some(f) = fabric else { return false };
        self.target = crate::nvmf::target::Target::start(hart, f);
        self.target.is_some()
    }

    /// Attaches this core's EC device (erasure-coded namespaces).
    pub fn attach_ec(&mut self, e: &'static mut crate::block::ec::Ec) {
        self.block.attach_ec(e);
    }

    /// Attaches this core's local SSD device (local namespaces).
    pub fn attach_ssd(&mut self, s: &'static mut crate::block::ssd::Ssd) {
        self.block.attach_ssd(s);
    }

    /// When the engine next needs to run without an interrupt (coalescing
    /// deadlines, the initiator's timers), in mtime ticks.
    #[inline(never)]
    pub fn deadline(&mut self) -> u64 {
        let t = self.target.as_deref().map_or(u64::MAX, |t| t.deadline());
        self.timer_want.min(self.block.deadline()).min(t)
    }

    // ------------------------------------------------------------ admin

    #[inline(never)]
    fn admin_messages(&mut self) -> usize {
        let mut n = 0;
        while let Some(m) = self.from_admin.as_mut().and_then(|rx| rx.pop()) {
            n += 1;
            match m {
                ToEngine::CreateCq { func, qid, entries, vector, irq, thr, time, addr, tail, head, phase } => {
                    if !self.iostat.started() {
                        self.start_iostat();
                    }
                    if let Some(i) = self.cqs.iter().position(|c| !c.used) {
                        self.cqs[i] = Cq {
                            used: true,
                            func,
                            qid,
                            addr,
                            ptr: CqPointers { tail, head, phase, ..CqPointers::new(entries) },
                            vector,
                            irq,
                            thr,
                            time,
                            unsignalled: 0,
                            deadline: 0,
                            sqs: 0,
                        };
                    } else {
                        defmt::error!("hart {=usize}: no room for CQ {=u16} of fn {=u16}", self.hart, qid, func);
                    }
                    self.tell_admin(ToAdmin::Done { func, what: Done::CreateCq, qid });
                }
                ToEngine::CreateSq { func, qid, entries, cqid, addr, head } => {
                    match (self.sqs.iter().position(|s| !s.used), self.find_cq(func, cqid)) {
                        (Some(i), Some(c)) => {
                            self.cqs[c].sqs += 1;
                            self.sqs[i] = Sq {
                                used: true,
                                func,
                                qid,
                                addr,
                                ptr: SqPointers { head, tail: head, ..SqPointers::new(entries) },
                                cq: c as u8,
                                inflight: 0,
                                deleting: false,
                                ack_delete: false,
                            };
                        }
                        _ => defmt::error!("hart {=usize}: cannot host SQ {=u16} of fn {=u16}", self.hart, qid, func),
                    }
                    self.tell_admin(ToAdmin::Done { func, what: Done::CreateSq, qid });
                }
                ToEngine::DeleteSq { func, qid } => match self.drain_notifications().find_sq(func, qid) {
                    Some(i) => {
                        self.sqs[i].deleting = true;
                        self.sqs[i].ack_delete = true;
                        self.cancel_block(|_, s| s == i, Status::ABORTED_SQ_DELETION);
                        self.reap_sq(i);
                    }
                    None => self.tell_admin(ToAdmin::Done { func, what: Done::DeleteSq, qid }),
                },
                ToEngine::DeleteCq { func, qid } => {
                    if let Some(i) = self.drain_notifications().find_cq(func, qid) {
                        self.cqs[i].used = false;
                    }
                    self.tell_admin(ToAdmin::Done { func, what: Done::DeleteCq, qid });
                }
                ToEngine::Reset { func } => {
                    self.drain_notifications();
                    for i in 0..MAXQ {
                        if self.sqs[i].used && self.sqs[i].func == func {
                            self.sqs[i].deleting = true;
                        }
                    }
                    // Commands a remote target holds must not keep the
                    // reset waiting on it (no CQE is posted for them).
                    let sqs = self.sqs;
                    self.cancel_block(|_, s| sqs[s].used && sqs[s].func == func, Status::ABORTED_SQ_DELETION);
                    for a in self.aborts.iter_mut() {
                        if a.0 == func {
                            a.4 = false;
                        }
                    }
                    self.resets[usize::from(func) / 64] |= 1 << (func % 64);
                    self.check_resets();
                }
                ToEngine::Pause { lo, hi } => {
                    let mask = u128::from(lo) | u128::from(hi) << 64;
                    self.paused |= mask;
                    self.reported &= !mask;
                }
                ToEngine::Unpause { lo, hi } => {
                    // `pending` was kept: the SQs rung meanwhile fetch now.
                    let mask = u128::from(lo) | u128::from(hi) << 64;
                    self.paused &= !mask;
                    self.reported &= !mask;
                    if mask & 1u128 << (self.pause_func & 127) != 0 {
                        self.pause_cursor = 0;
                    }
                }
                ToEngine::Resync { func, qid } => {
                    if let Some(i) = self.find_sq(func, qid) {
                        if self.sqs[i].ptr.set_tail(pcie::doorbell(func, 2 * qid)) && self.sqs[i].ptr.pending() > 0 {
                            self.pending |= 1 << i;
                        }
                    }
                    if let Some(i) = self.find_cq(func, qid) {
                        let _ = self.cqs[i].ptr.set_head(pcie::doorbell(func, 2 * qid + 1));
                    }
                }
                ToEngine::Abort { func, sqid, cid } => {
                    let aborted = self.abort(func, sqid, cid);
                    self.tell_admin(ToAdmin::AbortResult { func, aborted });
                }
                ToEngine::Coalesce { func, qid, thr, time } => {
                    if let Some(i) = self.find_cq(func, qid) {
                        self.cqs[i].thr = thr;
                        self.cqs[i].time = time;
                    }
                }
                ToEngine::Attach { ns } => {
                    if ns.fresh {
                        self.iostat.clear(ns.namespace().stat);
                    }
                    if !self.live.insert(ns.namespace()) {
                        defmt::error!("hart {=usize}: no room for live namespace {=u32} of fn {=u16}", self.hart, ns.nsid, ns.function);
                    }
                }
                ToEngine::Detach { func, nsid } => {
                    self.live.remove(func, nsid);
                    if self.ndetaching < DETACHING {
                        self.detaching[self.ndetaching] = (func, nsid);
                        self.ndetaching += 1;
                        self.check_detaching();
                    } else {
                        // Cannot track it: answer now rather than never
                        // (the slot would stay unusable).
                        defmt::warn!("hart {=usize}: too many detaches at once", self.hart);
                        self.tell_admin(ToAdmin::Detached { func, nsid });
                    }
                }
            }
        }
        n
    }

    /// Geometry of namespace `nsid` of function `func`: from its boot
    /// configuration entry `boot`, else from this core's copy of the live
    /// table.
    fn geometry(&self, func: u16, nsid: u32, boot: Option<&config::Namespace>) -> Option<nio::Geometry> {
        let g = |ns: &config::Namespace| nio::Geometry { blocks: ns.geometry.blocks, lba_shift: ns.geometry.block_shift };
        boot.map(g).or_else(|| self.live.get(func, nsid).map(g))
    }

    /// Answers every detach none of whose commands is in flight any more
    /// (a command counts from its fetch: over-counting only delays).
    fn check_detaching(&mut self) {
        let mut i = 0;
        while i < self.ndetaching {
            let (func, nsid) = self.detaching[i];
            let busy = self.cmds.iter().any(|c| c.state != State::Free && c.io.nsid == nsid && self.sqs[usize::from(c.sq)].func == func);
            if busy {
                i += 1;
                continue;
            }
            self.detaching.copy_within(i + 1..self.ndetaching, i);
            self.ndetaching -= 1;
            self.tell_admin(ToAdmin::Detached { func, nsid });
        }
    }

    /// Best-effort abort (§5.1): a command still in the SQ (doorbelled, not
    /// fetched) completes with Command Abort Requested when fetched; one
    /// a remote target holds is cancelled (it completes with Command
    /// Abort Requested as soon as the initiator lets go of it, within
    /// its cancel grace whatever the target does); one executing locally
    /// runs to completion.
    fn abort(&mut self, func: u16, sqid: u16, cid: u16) -> bool {
        let Some(s) = self.find_sq(func, sqid) else { return false };
        let started = self.cmds.iter().position(|c| c.state != State::Free && usize::from(c.sq) == s && c.sqe.cid() == cid);
        if let Some(slot) = started {
            return self.cmds[slot].state == State::Block && self.block.cancel(slot as Tag, Status::ABORT_REQUESTED);
        }
        if self.sqs[s].ptr.pending() == 0 {
            return false;
        }
        match self.aborts.iter().position(|a| !a.4) {
            Some(i) => {
                self.aborts[i] = (func, sqid, cid, self.sqs[s].ptr.tail, true);
                self.aborts_armed = true;
                true
            }
            None => false,
        }
    }

    /// Cancels the commands in the block layer that `pick(slot, sq)`
    /// selects: each completes with `st` once no device refers to it any
    /// more (`Stack::cancel`; local DMA just finishes); its completion
    /// then goes the usual way (`block_done`), posting no CQE if its SQ is
    /// being deleted.
    fn cancel_block(&mut self, pick: impl Fn(usize, usize) -> bool, st: Status) {
        for slot in 0..MAXCMD {
            if self.cmds[slot].state == State::Block && pick(slot, usize::from(self.cmds[slot].sq)) {
                self.block.cancel(slot as Tag, st);
            }
        }
        self.block_completions();
    }

    /// Drops SQ `i` once none of its commands is in flight.
    fn reap_sq(&mut self, i: usize) {
        let s = self.sqs[i];
        if !s.used || !s.deleting || s.inflight != 0 || self.fetch.iter().any(|f| f.used && usize::from(f.sq) == i) {
            return;
        }
        self.sqs[i].used = false;
        let c = usize::from(s.cq);
        self.cqs[c].sqs = self.cqs[c].sqs.saturating_sub(1);
        if s.ack_delete {
            self.tell_admin(ToAdmin::Done { func: s.func, what: Done::DeleteSq, qid: s.qid });
        }
    }

    fn check_resets(&mut self) {
        for w in 0..2 {
            let mut bits = self.resets[w];
            while bits != 0 {
                let func = (w * 64) as u16 + bits.trailing_zeros() as u16;
                bits &= bits - 1;
                for i in 0..MAXQ {
                    if self.sqs[i].used && self.sqs[i].func == func {
                        self.reap_sq(i);
                    }
                }
                if self.sqs.iter().any(|s| s.used && s.func == func) {
                    continue;
                }
                for c in self.cqs.iter_mut() {
                    if c.used && c.func == func {
                        c.used = false;
                    }
                }
                self.resets[w] &= !(1 << (func % 64));
                self.tell_admin(ToAdmin::Done { func, what: Done::Reset, qid: 0 });
            }
        }
    }

    // ------------------------------------------------------------ doorbells

    /// Takes every doorbell notification already queued. Called before a
    /// queue is deleted or a controller reset/shut down: the host wrote
    /// those doorbells while the queues existed (the admin core learned of
    /// the deletion later), so they must not be seen as writes to a
    /// missing queue (Invalid Doorbell).
    fn drain_notifications(&mut self) -> &mut Self {
        self.notifications();
        while self.more_notes {
            self.notifications();
        }
        self
    }

    #[inline(never)]
    fn notifications(&mut self) -> usize {
        let mut n = 0;
        self.more_notes = true;
        while n < 64 {
            let Some(note) = pcie::pop(self.hart) else {
                self.more_notes = false;
                break;
            };
            n += 1;
            let Note::Doorbell { function, index } = note else { continue };
            let qid = index / 2;
            let value = pcie::doorbell(function, index);
            if index % 2 == 0 {
                match self.find_sq(function, qid) {
                    Some(i) if !self.sqs[i].deleting => {
                        if !self.sqs[i].ptr.set_tail(value) {
                            self.tell_admin(ToAdmin::Error { func: function, kind: HostError::InvalidDoorbellValue, qid });
                        } else if self.sqs[i].ptr.pending() > 0 {
                            self.pending |= 1 << i;
                        }
                    }
                    Some(_) => {}
                    None => self.tell_admin(ToAdmin::Error { func: function, kind: HostError::InvalidDoorbell, qid }),
                }
            } else {
                match self.find_cq(function, qid) {
                    Some(i) => {
                        // CQ space may unblock fetches of its SQs: those
                        // stay in `pending` while they hold entries (only
                        // `start_fetches` clears a bit, once its SQ is
                        // empty or going), so the next pass retries them.
                        if !self.cqs[i].ptr.set_head(value) {
                            self.tell_admin(ToAdmin::Error { func: function, kind: HostError::InvalidDoorbellValue, qid });
                        }
                    }
                    None => self.tell_admin(ToAdmin::Error { func: function, kind: HostError::InvalidDoorbell, qid }),
                }
            }
        }
        n
    }

    // ------------------------------------------------------------ fetch

    #[inline(never)]
    fn start_fetches(&mut self) -> usize {
        let mut n = 0;
        let mut bits = self.pending;
        while bits != 0 {
            let s = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let sq = self.sqs[s];
            if self.paused & 1u128 << (sq.func & 127) != 0 {
                // Paused for a firmware activation: the entries stay in
                // the host's SQ for the next image (`pending` is kept).
                continue;
            }
            if !sq.used || sq.deleting || sq.ptr.pending() == 0 {
                self.pending &= !(1 << s);
                continue;
            }
            let Some(b) = self.fetch.iter().position(|f| !f.used) else { break };
            let c = usize::from(sq.cq);
            let avail = self.cqs[c].ptr.available();
            let count = sq.ptr.contiguous().min(FETCH_BATCH).min(self.nfree as u16).min(avail);
            if count == 0 {
                if avail == 0 {
                    self.stats.cq_full_stalls += 1;
                }
                continue;
            }
            if self.chan().space() < 1 {
                break;
            }
            // One CQ slot per command (`count` is within `avail`).
            self.cqs[c].ptr.reserved += count;
            for k in 0..usize::from(count) {
                self.nfree -= 1;
                let slot = self.free[self.nfree];
                self.fetch[b].slots[k] = slot;
                self.cmds[usize::from(slot)].state = State::Fetching;
                self.cmds[usize::from(slot)].sq = s as u8;
            }
            let local = self.fetch_area + b * FETCH_BATCH as usize * 64;
            let host = sq.addr + 64 * u64::from(sq.ptr.head);
            self.sqs[s].ptr.advance(count);
            self.sqs[s].inflight += count;
            if self.sqs[s].ptr.pending() == 0 {
                self.pending &= !(1 << s);
            }
            let f = &mut self.fetch[b];
            (f.used, f.sq, f.n) = (true, s as u8, count);
            let d = Desc {
                host,
                local: local as u64,
                len: u32::from(count) * 64,
                function: sq.func,
                op: dr::OP_H2D,
                flags: dr::FLAG_END,
                msix: 0,
                cookie: cookie(K_FETCH, b),
            };
            self.chan().push(&d);
            self.kick = true;
            self.stats.fetches += 1;
            n += 1;
        }
        n
    }

    #[inline(never)]
    fn fetched(&mut self, b: usize, ok: bool) {
        let (s, n) = (usize::from(self.fetch[b].sq), self.fetch[b].n);
        self.fetch[b].used = false;
        let base = self.fetch_area + b * FETCH_BATCH as usize * 64;
        let (head, entries) = (self.sqs[s].ptr.head, self.sqs[s].ptr.entries);
        // SQ position of the batch's first entry (for the abort check).
        let first = if head >= n { head - n } else { head + entries - n };
        for k in 0..n {
            let slot = usize::from(self.fetch[b].slots[usize::from(k)]);
            // Straight into the command's record (no staging copy).
            dpu_hal::mem::read(base + 64 * usize::from(k), &mut self.cmds[slot].sqe.0);
            self.cmds[slot].status = Status::SUCCESS;
            if !ok {
                // The SQ itself could not be read (bad address, access
                // denied): the CID is unknown, so nothing can be completed.
                // The queue is unusable; the host's timeout path resets it.
                self.release(slot, true);
                continue;
            }
            self.stats.commands += 1;
            if self.aborts_armed && self.take_abort(s, self.cmds[slot].sqe.cid(), (first + k) % entries) {
                self.complete(slot, Status::ABORT_REQUESTED, 0);
                continue;
            }
            if self.sqs[s].deleting {
                self.release(slot, true);
                continue;
            }
            self.begin(slot);
        }
        if !ok {
            defmt::warn!("hart {=usize}: SQ {=u16} of fn {=u16} unreadable by DMA", self.hart, self.sqs[s].qid, self.sqs[s].func);
        }
        if self.sqs[s].deleting {
            self.reap_sq(s);
            self.check_resets();
        }
    }

    fn take_abort(&mut self, s: usize, cid: u16, pos: u16) -> bool {
        let (func, qid, entries) = (self.sqs[s].func, self.sqs[s].qid, self.sqs[s].ptr.entries);
        let mut hit = false;
        for a in self.aborts.iter_mut() {
            if a.4 && a.0 == func && a.1 == qid {
                if a.2 == cid {
                    a.4 = false;
                    hit = true;
                } else if (pos + 1) % entries == a.3 {
                    // Every entry submitted when the abort came has been seen.
                    a.4 = false;
                }
            }
        }
        self.aborts_armed = self.aborts.iter().any(|a| a.4);
        hit
    }

    // ------------------------------------------------------------ commands

    fn begin(&mut self, slot: usize) {
        let s = usize::from(self.cmds[slot].sq);
        let func = self.sqs[s].func;
        let boot = core::cell::Cell::new(None);
        let decoded = nio::decode(&self.cmds[slot].sqe, |n| {
            boot.set(config::namespace(func, n));
            self.geometry(func, n, boot.get())
        });
        let io = match decoded {
            Ok(io) => io,
            Err(st) => return self.complete(slot, st, 0),
        };
        self.cmds[slot].io = io;
        self.cmds[slot].ns = boot.get();
        match io.op {
            // Flush of every namespace (NSID FFFFFFFFh): nothing here
            // holds volatile data.
            Op::Flush if io.nsid == u32::MAX => self.complete(slot, Status::SUCCESS, 0),
            Op::Flush => self.submit_block(slot, block::Op::Flush, &[]),
            Op::WriteZeroes => self.submit_block(slot, block::Op::WriteZeroes, &[]),
            _ => self.start_walk(slot),
        }
    }

    /// The block operation of command `slot` (one that moves data).
    fn block_op(&self, slot: usize) -> block::Op {
        match self.cmds[slot].io.op {
            Op::Read => block::Op::Read,
            Op::Compare => block::Op::Compare,
            Op::Dsm { ranges, .. } => block::Op::Dsm { nr0: (ranges - 1) as u8, attributes: self.cmds[slot].sqe.cdw11() },
            Op::Flush => block::Op::Flush,
            Op::WriteZeroes => block::Op::WriteZeroes,
            Op::Write => block::Op::Write,
        }
    }

    fn start_walk(&mut self, slot: usize) {
        let c = &self.cmds[slot];
        let len = c.io.data_len;
        if !c.io.sgl {
            // PRP1 (and PRP2) alone, the common 4 KiB case: no walker.
            match dptr::prp_direct(c.sqe.prp1(), c.sqe.prp2(), len) {
                Some(Ok((segs, n))) => return self.submit_block(slot, self.block_op(slot), &segs[..n]),
                Some(Err(st)) => return self.complete(slot, st, 0),
                None => {}
            }
        }
        // Direct data pointers need at most two segments; lists go to a walk context.
        let mut first = SegList::<4>::new();
        let started = if c.io.sgl {
            SglWalk::start(&c.sqe.dptr(), len, &mut first).map(|(w, s)| (Walker::Sgl(w), s))
        } else {
            PrpWalk::start(c.sqe.prp1(), c.sqe.prp2(), len, &mut first).map(|(w, s)| (Walker::Prp(w), s))
        };
        let (walker, step) = match started {
            Ok(x) => x,
            Err(st) => return self.complete(slot, st, 0),
        };
        if step == Step::Done {
            return self.submit_block(slot, self.block_op(slot), first.as_slice());
        }
        let Some(w) = self.walks.iter().position(|w| !w.used) else {
            self.cmds[slot].state = State::NeedWalk;
            self.walk_wait[self.walk_wait_n] = slot as u8;
            self.walk_wait_n += 1;
            return;
        };
        let ctx = &mut self.walks[w];
        ctx.used = true;
        ctx.cmd = slot as u8;
        ctx.w = walker;
        ctx.segs.clear();
        ctx.segs.extend_from(first.as_slice());
        self.cmds[slot].walk = w as u8;
        self.walk_step(slot, step);
    }

    fn retry_walks(&mut self) {
        while self.walk_wait_n > 0 && self.walks.iter().any(|w| !w.used) {
            let slot = usize::from(self.walk_wait[0]);
            self.walk_wait.copy_within(1..self.walk_wait_n, 0);
            self.walk_wait_n -= 1;
            self.start_walk(slot);
        }
    }

    fn walk_buf(&self, w: usize) -> usize {
        self.list_area + w * LIST_BUF
    }

    fn walk_step(&mut self, slot: usize, step: Step) {
        let w = usize::from(self.cmds[slot].walk);
        match step {
            Step::Fetch { addr, len } => {
                self.cmds[slot].state = State::Listing;
                let func = self.sqs[usize::from(self.cmds[slot].sq)].func;
                let d = Desc {
                    host: addr,
                    local: self.walk_buf(w) as u64,
                    len,
                    function: func,
                    op: dr::OP_H2D,
                    flags: dr::FLAG_END,
                    msix: 0,
                    cookie: cookie(K_LIST, slot),
                };
                self.push(d);
            }
            Step::Done => {
                let segs = self.walks[w].segs;
                self.free_walk(slot);
                self.submit_block(slot, self.block_op(slot), segs.as_slice());
            }
        }
    }

    /// A PRP list / SGL segment of command `slot` arrived (its 4 KiB
    /// copy stays out of the DMA completion loop's frame).
    #[inline(never)]
    fn listed(&mut self, slot: usize, len: u32, ok: bool) {
        if !ok {
            self.free_walk(slot);
            return self.complete(slot, Status::DATA_TRANSFER_ERROR, 0);
        }
        let w = usize::from(self.cmds[slot].walk);
        let mut buf = [0u8; LIST_BUF];
        let n = (len as usize).min(LIST_BUF);
        dpu_hal::mem::read(self.walk_buf(w), &mut buf[..n]);
        let ctx = &mut self.walks[w];
        let step = match &mut ctx.w {
            Walker::Prp(p) => p.feed(&buf[..n], &mut ctx.segs),
            Walker::Sgl(s) => s.feed(&buf[..n], &mut ctx.segs),
            Walker::None => Err(Status::INTERNAL_ERROR),
        };
        match step {
            Ok(s) => self.walk_step(slot, s),
            Err(st) => {
                self.free_walk(slot);
                self.complete(slot, st, 0);
            }
        }
    }

    fn free_walk(&mut self, slot: usize) {
        let w = usize::from(self.cmds[slot].walk);
        if self.walks[w].used && usize::from(self.walks[w].cmd) == slot {
            self.walks[w].used = false;
        }
    }

    fn push(&mut self, d: Desc) {
        if !self.chan().push(&d) {
            // The ring is sized for every command's worst case; reaching
            // this is a firmware bug, not a host error.
            defmt::error!("hart {=usize}: DMA ring full", self.hart);
        }
        self.kick = true;
    }

    /// Posts the CQE of `slot` (its CQ slot was reserved at fetch time):
    /// staged, then written to the host with the other completions of
    /// its CQ in this reactor pass ([`Self::post_batch`]).
    fn complete(&mut self, slot: usize, status: Status, dw0: u32) {
        if !status.is_success() {
            self.stats.errors += 1;
        }
        let s = usize::from(self.cmds[slot].sq);
        let sq = &self.sqs[s];
        let ci = usize::from(sq.cq);
        if sq.deleting || !self.cqs[ci].used {
            // Aborted by queue deletion / reset: no completion.
            return self.release(slot, true);
        }
        let cqe = Cqe { dw0, dw1: 0, sq_head: sq.ptr.head, sq_id: sq.qid, cid: self.cmds[slot].sqe.cid(), status };
        let cq = &mut self.cqs[ci];
        let (index, phase) = cq.ptr.post();
        let mut fire = false;
        if cq.irq {
            cq.unsignalled += 1;
            // Interrupt coalescing (§5.27.1.8): fire after THR+1 entries;
            // otherwise the aggregation time (TIME x 100 us) bounds the wait.
            // TIME = 0 means no delay.
            if cq.time == 0 || u32::from(cq.unsignalled) > u32::from(cq.thr) {
                fire = true;
            } else if cq.unsignalled == 1 {
                cq.deadline = dpu_hal::csr::time() + u64::from(cq.time) * dpu_hal::memory_map::TIMEBASE_HZ / 10_000;
                self.armed |= 1 << ci;
            }
        }
        self.cmds[slot].state = State::Posting;
        self.stage(ci, index, slot, &cqe.words(phase), fire);
    }

    /// Stages the CQE `entry` of command `slot` for slot `index` of CQ
    /// `ci`: it joins the open batch when it follows it in both the CQ and
    /// the staging ring, else that batch goes out and a new one opens.
    fn stage(&mut self, ci: usize, index: u16, slot: usize, entry: &[u64; 2], fire: bool) {
        let at = self.stage_tail;
        let b = self.batch;
        let joins = b.n > 0 && usize::from(b.cq) == ci && u32::from(index) == u32::from(b.index) + u32::from(b.n) && at != 0;
        if !joins {
            self.post_batch();
            self.batch = Batch { n: 0, start: at as u16, cq: ci as u8, index, msix: false };
        }
        // The staging ring is 64-byte aligned: whole words.
        dpu_hal::mem::write_words(self.cqe_area + at * 16, entry);
        self.stage_slot[at] = slot as u8;
        self.stage_tail = (at + 1) % MAXCMD;
        self.batch.n += 1;
        self.batch.msix |= fire;
    }

    /// Writes the open batch of CQEs to its CQ in host memory (one DMA
    /// descriptor), followed by the CQ's MSI-X when an entry asked for
    /// one: that interrupt covers every entry of the batch (§3.1.3: the
    /// host consumes CQ entries up to the first with the old phase).
    fn post_batch(&mut self) {
        let b = self.batch;
        if b.n == 0 {
            return;
        }
        self.batch.n = 0;
        let cq = &mut self.cqs[usize::from(b.cq)];
        let mut flags = dr::FLAG_END;
        if b.msix {
            flags |= dr::FLAG_MSIX;
            cq.unsignalled = 0;
            cq.deadline = 0;
        }
        let d = Desc {
            host: cq.addr + 16 * u64::from(b.index),
            local: (self.cqe_area + 16 * usize::from(b.start)) as u64,
            len: 16 * u32::from(b.n),
            function: cq.func,
            op: dr::OP_D2H,
            flags,
            msix: cq.vector,
            cookie: cookie(K_CQE, usize::from(b.start) | usize::from(b.n) << 8),
        };
        self.push(d);
    }

    /// The CQE batch at staging entries `start..start + n` reached the
    /// host: its commands are done.
    fn posted(&mut self, start: usize, n: usize) {
        for i in start..(start + n).min(MAXCMD) {
            self.release(usize::from(self.stage_slot[i]), false);
        }
    }

    /// Sends coalesced interrupts whose aggregation time has passed and
    /// keeps this hart's timer on the earliest remaining deadline.
    fn coalescing_timers(&mut self) -> usize {
        let mut n = 0;
        let mut next = u64::MAX;
        let mut now = None;
        let mut bits = self.armed;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = &mut self.cqs[i];
            if !c.used || c.unsignalled == 0 || c.deadline == 0 {
                self.armed &= !(1 << i);
                continue;
            }
            let t = *now.get_or_insert_with(dpu_hal::csr::time);
            if t >= c.deadline {
                pcie::msix(c.func, c.vector);
                c.unsignalled = 0;
                c.deadline = 0;
                self.armed &= !(1 << i);
                n += 1;
            } else {
                next = next.min(c.deadline);
            }
        }
        self.timer = next;
        self.timer_want = next;
        n
    }

    /// Frees a command slot; `unreserve` gives back its CQ reservation.
    fn release(&mut self, slot: usize, unreserve: bool) {
        let s = usize::from(self.cmds[slot].sq);
        if unreserve {
            let c = usize::from(self.sqs[s].cq);
            self.cqs[c].ptr.unreserve();
        }
        self.cmds[slot].state = State::Free;
        self.free[self.nfree] = slot as u8;
        self.nfree += 1;
        self.sqs[s].inflight = self.sqs[s].inflight.saturating_sub(1);
        if self.sqs[s].deleting {
            self.reap_sq(s);
            self.check_resets();
        }
    }

    // ------------------------------------------------------------ DMA

    #[inline(never)]
    fn dma_completions(&mut self) -> usize {
        let mut n = 0;
        while let Some(c) = self.chan().poll() {
            n += 1;
            let ok = c.status == dr::ST_OK;
            let idx = (c.cookie & 0x0fff_ffff) as usize;
            match c.cookie >> 28 {
                K_FETCH => self.fetched(idx, ok),
                K_LIST => self.listed(idx, c.bytes, ok),
                K_BLOCK => {
                    let chan = self.chan.as_mut().expect("engine started");
                    if let Some((tag, st)) = self.block.dma_done(chan, idx as u32, c.bytes, ok) {
                        self.tag_done(tag, st);
                    }
                }
                K_CQE => self.posted(idx & 0xff, idx >> 8),
                _ => defmt::error!("hart {=usize}: unknown DMA cookie {=u32:#x}", self.hart, c.cookie),
            }
        }
        n
    }
}
