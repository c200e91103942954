//! The erasure-coded block device: a volume striped over k + m remote
//! namespaces (the members, on distinct targets) with Reed-Solomon parity
//! computed by the card's erasure-coding engine (`dpu_hal::ec`; ISA-L's
//! Cauchy matrix, so any ISA-L tool can decode the members).
//!
//! Layout (`dpu_hal::regs::bootcfg::EC_RECORD`): stripe s holds k data
//! fragments of 4 KiB (volume bytes s x 4k x k ..) and m parity
//! fragments; fragment f of stripe s lives on member (f + s) mod (k + m)
//! at member byte s x 4 KiB; the 4 KiB after the last stripe is the
//! member's superblock. Each I/O walks its stripes one after the
//! other; each stripe operation holds the stripe's lock (shared by every
//! core, [`LOCKS`]) from its first read to its last write, so concurrent
//! writes to one stripe (from any core) never interleave their
//! read-modify-write, and a degraded read never mixes fragments of two
//! writes.
//!
//! * Read: the data fragments it touches are read into staging pages,
//!   the requested bytes move to the host (or the upper device's pages)
//!   by DMA. A fragment whose member is gone is rebuilt by the engine
//!   from any k present fragments (degraded read).
//! * Write: a full stripe is filled from the host by DMA, the engine
//!   computes parity, k + m fragments are written. A partial stripe reads
//!   the data fragments it does not wholly overwrite first (rebuilding
//!   those of lost members), then does the same (read-modify-write);
//!   only the fragments that changed and the parity are written.
//! * A member whose I/O fails or stays unanswered for
//!   [`MEMBER_TIMEOUT_TICKS`] is marked lost for the whole card
//!   ([`HEALTH`], rules in `dpu_bdev::ec_health`) and not trusted again
//!   (it may have missed writes) until it is rebuilt when it comes back
//!   ([`repair`]), also after a card restart (superblocks, below). With more than m members lost a read
//!   that needs a lost fragment ends with Unrecovered Read Error and a
//!   write with Write Fault (NVMe Base 2.0 §4.6.1.2, figure 103, SCT 2h
//!   SC 81h / 80h): never wrong data.
//! * Rebuild and scrub ([`repair`]): a spare takes a lost member's slot
//!   and one core rebuilds it stripe by stripe under the stripe locks
//!   while host I/O goes on; a scrub pass checks every stripe's parity.
//!   They run as one more context ([`REPAIR`]) through the same steps.
//! * Superblocks ([`superblock`], format and start rule in
//!   `dpu_bdev::ec_super`, after Linux md's `events` counter): each
//!   member keeps one in the 4 KiB after the last stripe. The volume
//!   takes no I/O until they are read (stale, foreign or listed-lost
//!   devices start lost and are rebuilt before they are read) and the
//!   first update is written; every health change is written to the
//!   devices in service, and a host write completes only once every slot
//!   lost at that moment is listed lost on the media ([`Step::Hold`], as
//!   md holds writes while `MD_SB_CHANGE_PENDING`). A card restart then
//!   never trusts a device that missed a completed write.
//!
//! * Volumes ([`live`]): the boot configuration's and those made at run
//!   time through the management API (`bdev_ec_create`), in one
//!   fixed-size table per core that the management server's publications
//!   update between stripe operations; a volume's repair core adopts a new
//!   one (it starts as a new volume, superblocks written) and drops a
//!   deleted one (its repair stopped, its health reset).
//!
//! No CPU touches payload bytes: DMA and the EC engine move and compute
//! everything; the staging pages are the engine's fragments (a scrub
//! compares parity by the CRC32C the DMA engine computes).

pub mod live;
mod repair;
mod superblock;

use super::staging::{Pages, Pool, PAGE};
use super::{cookie, Done, Data, Io, Op, SegTable, Tag, MAX_SEGS, MAX_TAGS};
use crate::bootcfg::{Backend, EcVolume, Namespace};
use crate::nvmf::initiator::Fabric;
use core::sync::atomic::{AtomicU32, Ordering};
use dpu_bdev::ec_health::Health;
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::ec::{Desc as EDesc, Engine};
use dpu_hal::memory_map::TIMEBASE_HZ;
use dpu_hal::regs::{accel as st, bootcfg as b, dma as dr};
use dpu_nvme::Status;

/// Tags of member I/Os: this bit, the context (bits 11:5), the fragment.
pub const LOWER: Tag = 0x4000;
/// Bytes per fragment.
const CHUNK: usize = b::EC_CHUNK;
const _: () = assert!(CHUNK == PAGE && MAX_TAGS <= 128 && dpu_bootcfg::MAX_EC_MEMBERS <= dpu_bdev::ec_health::MAX_EC_MEMBERS);
/// Contexts: one per block-layer tag, and the repair context.
const NCTX: usize = MAX_TAGS + 1;
/// The context that runs this core's rebuilds and scrubs.
const REPAIR: usize = MAX_TAGS;
// Member I/O tags: LOWER | context << 5 | fragment, below crypto's LOWER.
const _: () = assert!((LOWER as usize | (NCTX - 1) << 5 | 31) < 0x8000 && LOWER as usize > (NCTX - 1) << 5 | 31);
/// A member I/O unanswered this long marks the member lost (mtime
/// ticks: 3 ms; the initiator's own timeout and reconnects take 20 ms
/// to 5 s, too long to hold a stripe).
pub const MEMBER_TIMEOUT_TICKS: u64 = 3 * TIMEBASE_HZ / 1000;
/// Engine ring entries of this core's queue.
const RING: u32 = 128;

/// Stripe locks shared by all cores: a stripe's lock is slot
/// hash(volume, stripe) (two stripes on one slot just take turns).
static LOCKS: [AtomicU32; 4096] = [const { AtomicU32::new(0) }; 4096];
/// Each volume's slots (lost, replaced, rebuilt), for all cores.
pub static HEALTH: [Health; dpu_bootcfg::MAX_EC_VOLUMES] = [const { Health::NEW }; dpu_bootcfg::MAX_EC_VOLUMES];

fn lock_slot(vol: u16, stripe: u64) -> usize {
    let h = (stripe ^ u64::from(vol) << 48).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 52) as usize % LOCKS.len()
}

fn health(vol: u16) -> &'static Health {
    &HEALTH[usize::from(vol) % HEALTH.len()]
}

/// A volume's stripe shape, all a stripe operation keeps of it (its
/// members are looked up in the core's table, [`live::Vols`], when
/// member I/Os go out: the context stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shape {
    pub k: u8,
    pub m: u8,
}

impl Shape {
    pub fn of(v: &EcVolume) -> Shape {
        Shape { k: v.k, m: v.m }
    }

    pub fn width(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// As `EcVolume::member_of`.
    pub fn member_of(&self, stripe: u64, frag: usize) -> usize {
        let n = self.width() as u64;
        ((frag as u64 + stripe % n) % n) as usize
    }
}

/// Device `dev` (member record) serving slot `slot` of volume `vol`
/// failed: the slot is lost (once, logged) under its controller's
/// current association epoch; a rebuild onto it stops.
fn mark_failed(v: Option<&EcVolume>, vol: u16, slot: usize, dev: usize, why: &str) {
    let h = health(vol);
    let rebuilding = h.rebuilding().filter(|&(s, _)| s == slot);
    let epoch = v.and_then(|v| device_epoch(v, dev)).unwrap_or(0);
    if h.fail(slot, dev, epoch) {
        match rebuilding {
            Some((_, mark)) => defmt::warn!("ec: volume {=u16}: rebuild of member {=usize} stopped at stripe {=u64}: the device rebuilt onto (record {=usize}) failed ({=str})", vol, slot, mark, dev, why),
            None => defmt::warn!("ec: volume {=u16}: member {=usize} lost ({=str}); {=u32} lost now, reads rebuild its fragments", vol, slot, why, h.lost().count_ones()),
        }
    }
}

/// The association epoch of the controller of member record `dev` of
/// volume `v` (`nvmf::published`'s generation: one more each time the
/// association is set up).
fn device_epoch(v: &EcVolume, dev: usize) -> Option<u32> {
    let (ctrl, _) = *v.members.get(dev)?;
    Some(crate::nvmf::published(usize::from(ctrl)).generation)
}

/// What a context does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    /// A block-layer I/O.
    Host,
    /// Rebuild this slot's fragment of each stripe onto its new device.
    Rebuild { slot: u8 },
    /// Check each stripe's parity.
    Scrub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    /// Waiting for the stripe lock, staging pages and initiator room.
    Lock,
    /// Member reads in flight.
    Read,
    /// Engine: rebuild lost fragments.
    Rebuild,
    /// Write: new data -> fragment pages by DMA.
    Fill,
    /// Engine: parity.
    Encode,
    /// Member writes ready (`wset`), waiting for initiator room.
    Send,
    /// Member writes in flight.
    Write,
    /// Read: fragment pages -> destination by DMA.
    Deliver,
    /// Scrub: CRC32C of the read and the recomputed parity by DMA.
    Check,
    /// A host write done, its completion held until the superblocks list
    /// every slot lost now (`Health::durable`); its status in `status`.
    Hold,
}

#[derive(Clone, Copy)]
struct Ctx {
    used: bool,
    job: Job,
    tag: Tag,
    write: bool,
    vol: u16,
    /// The volume's shape (its members: `Ec::vols`).
    v: Option<Shape>,
    /// Block size (log2) of the volume and its members.
    shift: u8,
    /// The I/O's first byte in the volume and its length.
    start: u64,
    len: u32,
    /// Upper data: host memory (function, segments) or staged pages.
    host: bool,
    function: u16,
    /// Its segments are in `Ec::segs[context]`.
    nsegs: u8,
    upper: Pages,
    /// Bytes of the I/O done by earlier stripe operations.
    pos: u32,
    step: Step,
    /// A DMA or engine operation is in flight.
    busy: bool,
    /// The stripe operation: stripe, byte offset in its data, bytes.
    stripe: u64,
    off: u32,
    n: u32,
    lock: Option<usize>,
    /// Fragment pages (fragment f = page f); the engine's table of their
    /// addresses is `Ec::frags[context]`.
    pages: Pages,
    /// Scrub: pages of the recomputed parity.
    check: Pages,
    /// The member record each fragment's I/O went to.
    sent: [u8; 32],
    /// Fragments with valid bytes in their page.
    have: u32,
    /// Fragments the operation needs valid before it goes on.
    need: u32,
    /// Write: the fragments to write (changed data and parity, on
    /// members still there).
    wset: u32,
    /// Member I/Os in flight (by fragment), those that failed, and those
    /// cancelled after the member was found lost.
    out: u32,
    bad: u32,
    cancelled: u32,
    sent_at: u64,
    /// The worst outcome so far (a stripe that could not be written).
    status: Status,
    cancel: Option<Status>,
}

impl Ctx {
    const FREE: Ctx = Ctx {
        used: false,
        job: Job::Host,
        tag: 0,
        write: false,
        vol: 0,
        v: None,
        shift: 9,
        start: 0,
        len: 0,
        host: false,
        function: 0,
        nsegs: 0,
        upper: Pages::NONE,
        pos: 0,
        step: Step::Lock,
        busy: false,
        stripe: 0,
        off: 0,
        n: 0,
        lock: None,
        pages: Pages::NONE,
        check: Pages::NONE,
        sent: [0; 32],
        have: 0,
        need: 0,
        wset: 0,
        out: 0,
        bad: 0,
        cancelled: 0,
        sent_at: 0,
        status: Status::SUCCESS,
        cancel: None,
    };
}

pub struct Ec {
    eng: Engine,
    /// Which hart this device belongs to (lock owner id).
    hart: u32,
    /// Contexts in use (bit i = `ctx[i]`, so the per-pass deadline and
    /// the time-out scan visit only those: the contexts span ~200 cache
    /// lines), and when member I/Os are next checked for time-outs.
    live: [u64; NCTX.div_ceil(64)],
    next_scan: u64,
    ctx: [Ctx; NCTX],
    /// Host segments of each context's I/O, and the fragment address
    /// tables the engine reads (8-byte aligned): built at start, not part
    /// of `INIT` (as constants they were a 165 KiB template in the image).
    segs: SegTable,
    frags: Option<&'static mut [[u64; 32]]>,
    /// Contexts waiting for their lock / pages / room, oldest first.
    wait: [u8; NCTX],
    nwait: usize,
    /// The repair context's work (rebuild, scrub), and the superblock
    /// work of the volumes this core repairs.
    repair: repair::Worker,
    sb: superblock::Sb,
    /// The volumes this core knows (boot and run time).
    vols: live::Vols,
    /// Scrub: the data pages and the recomputed parity pages (the
    /// engine's table), and the CRC32C words the DMA engine writes.
    check_frags: [u64; 32],
    crc: [AtomicU32; 8],
    pub(super) done: Done,
    /// DMA pushed (the owner kicks the channel).
    pub kick: bool,
}

impl dpu_rt::ConstInit for Ec {
    const INIT: Ec = Ec {
        eng: Engine::NONE,
        hart: 0,
        live: [0; NCTX.div_ceil(64)],
        next_scan: 0,
        ctx: [Ctx::FREE; NCTX],
        segs: SegTable::NONE,
        frags: None,
        wait: [0; NCTX],
        nwait: 0,
        repair: repair::Worker::IDLE,
        sb: superblock::Sb::IDLE,
        vols: live::Vols::EMPTY,
        check_frags: [0; 32],
        crc: [const { AtomicU32::new(0) }; 8],
        done: Done::EMPTY,
        kick: false,
    };
}

/// The NVMe status of an engine error in a read or a write.
fn engine_status(s: u32, write: bool) -> Status {
    match s {
        st::ST_NOT_RECOVERABLE if !write => Status::UNRECOVERED_READ_ERROR,
        st::ST_NOT_RECOVERABLE => Status::WRITE_FAULT,
        _ => Status::INTERNAL_ERROR,
    }
}

impl Ec {
    /// The EC device of data-plane hart `hart` (its queue on the engine),
    /// in DDR; `None` when memory or the queue is missing.
    pub fn start(hart: usize) -> Option<&'static mut Ec> {
        let e = dpu_rt::alloc::ddr_static::<Ec>()?;
        if !e.segs.start(NCTX) {
            return None;
        }
        e.frags = Some(dpu_rt::alloc::ddr_slice_with(NCTX, |_| [0u64; 32])?);
        let ring = dpu_rt::alloc::ddr(Engine::memory(RING) as u64, 64)?;
        if !e.eng.start(hart, ring as usize, RING) {
            return None;
        }
        e.hart = hart as u32;
        e.vols.load_boot();
        e.repair = repair::Worker::new(hart, &e.vols);
        Some(e)
    }

    fn push_done(&mut self, tag: Tag, st: Status) {
        self.done.push(tag, st);
    }

    pub fn take_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        self.done.take(out)
    }

    /// Starts I/O `tag` (read or write) on erasure-coded namespace `ns`.
    pub fn submit(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, ns: &Namespace, tag: Tag, io: &Io) {
        let Backend::Ec { vol } = ns.backend else { return self.push_done(tag, Status::INTERNAL_ERROR) };
        let Some(v) = self.vols.get(vol).map(|x| Shape::of(&x.def)) else { return self.push_done(tag, Status::INTERNAL_ERROR) };
        let write = match io.op {
            Op::Read => false,
            Op::Write => true,
            // Nothing cached: every member write completed before the
            // write did.
            Op::Flush => return self.push_done(tag, Status::SUCCESS),
            // Zeroes, compare and deallocate would have to keep parity.
            _ => return self.push_done(tag, Status::INVALID_OPCODE),
        };
        let shift = ns.geometry.block_shift;
        if io.len == 0 || io.len != io.blocks << shift || io.lba.checked_add(u64::from(io.blocks)).is_none_or(|e| e > ns.geometry.blocks) {
            return self.push_done(tag, Status::LBA_OUT_OF_RANGE);
        }
        let Some(i) = self.ctx[..MAX_TAGS].iter().position(|c| !c.used) else { return self.push_done(tag, Status::INTERNAL_ERROR) };
        let mut c = Ctx { used: true, tag, write, vol, v: Some(v), shift, start: io.lba << shift, len: io.len, ..Ctx::FREE };
        match io.data {
            Data::Host { function, segs } => {
                if segs.len() > MAX_SEGS || segs.iter().map(|s| u64::from(s.1)).sum::<u64>() < u64::from(io.len) {
                    return self.push_done(tag, Status::INTERNAL_ERROR);
                }
                c.host = true;
                c.function = function;
                if !self.segs.set(i, segs) {
                    return self.push_done(tag, Status::INTERNAL_ERROR);
                }
                c.nsegs = segs.len() as u8;
            }
            Data::Staged(p) => {
                if p.len() * PAGE < io.len as usize {
                    return self.push_done(tag, Status::INTERNAL_ERROR);
                }
                c.upper = *p;
            }
            Data::None => return self.push_done(tag, Status::INTERNAL_ERROR),
        }
        self.occupy(i, c);
        self.begin_stripe(i);
        self.run(chan, pool, fab, i);
    }

    /// Sets context `i` up for the stripe its `pos` is in.
    fn begin_stripe(&mut self, i: usize) {
        let c = &mut self.ctx[i];
        let Some(v) = c.v else { return };
        let stripe_bytes = u64::from(v.k) * CHUNK as u64;
        let at = c.start + u64::from(c.pos);
        c.stripe = at / stripe_bytes;
        c.off = (at % stripe_bytes) as u32;
        c.n = ((stripe_bytes - u64::from(c.off)) as u32).min(c.len - c.pos);
        c.step = Step::Lock;
        c.busy = false;
        c.have = 0;
        c.out = 0;
        c.bad = 0;
        c.cancelled = 0;
    }

    /// Runs context `i` as far as it goes now; queues it if it must wait.
    fn run(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) {
        if !self.advance(chan, pool, fab, i) && !self.wait[..self.nwait].contains(&(i as u8)) {
            self.wait[self.nwait] = i as u8;
            self.nwait += 1;
        }
    }

    /// Data fragments [first, last] the stripe operation touches.
    fn touched(c: &Ctx) -> (usize, usize) {
        (c.off as usize / CHUNK, (c.off + c.n - 1) as usize / CHUNK)
    }

    /// Runs the current step of context `i`; false if it must wait.
    fn advance(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) -> bool {
        // Fields, not a copy of the ~220-byte context (this runs at
        // every step of every stripe operation).
        let c = &self.ctx[i];
        if !c.used || c.busy || c.out != 0 {
            return true;
        }
        let Some(v) = c.v else { return true };
        let (cancel, job, vol, stripe, bad, need, have, wset) = (c.cancel, c.job, c.vol, c.stripe, c.bad, c.need, c.have, c.wset);
        let (k, m, width) = (usize::from(v.k), usize::from(v.m), v.width());
        match c.step {
            Step::Lock => {
                if let Some(st) = cancel {
                    return self.finish(pool, i, st);
                }
                // The volume starts once its superblocks are read and
                // the first update is on the media; fewer than k members
                // reachable after the start wait: refused until then.
                if !health(vol).started() {
                    if !health(vol).unavailable() {
                        return false;
                    }
                    let st = if self.ctx[i].write { Status::WRITE_FAULT } else { Status::UNRECOVERED_READ_ERROR };
                    return self.finish(pool, i, st);
                }
                // A scrub also holds pages for the recomputed parity.
                let extra = if job == Job::Scrub { m } else { 0 };
                if fab.free_slots() < width || pool.available() < width + extra {
                    return false;
                }
                let slot = lock_slot(vol, stripe);
                if LOCKS[slot].compare_exchange(0, self.hart + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
                    return false;
                }
                let Some(mut pages) = pool.alloc(width * PAGE) else {
                    LOCKS[slot].store(0, Ordering::Release);
                    return false;
                };
                let mut check = Pages::NONE;
                if extra > 0 {
                    let Some(p) = pool.alloc(extra * PAGE) else {
                        pool.free(&mut pages);
                        LOCKS[slot].store(0, Ordering::Release);
                        return false;
                    };
                    check = p;
                }
                let c = &mut self.ctx[i];
                c.lock = Some(slot);
                c.pages = pages;
                c.check = check;
                if let Some(t) = self.frags.as_deref_mut() {
                    for f in 0..width {
                        t[i][f] = pool.addr(pages.page(f));
                    }
                }
                if extra > 0 {
                    // Encode reads the data read from the members and
                    // writes the parity next to the members' parity.
                    if let Some(t) = self.frags.as_deref() {
                        self.check_frags[..k].copy_from_slice(&t[i][..k]);
                    }
                    for j in 0..m {
                        self.check_frags[k + j] = pool.addr(check.page(j));
                    }
                }
                self.plan(chan, pool, fab, i)
            }
            Step::Read => {
                // Every member read answered.
                if bad != 0 {
                    // A member was lost on the way: plan again without it.
                    return self.plan(chan, pool, fab, i);
                }
                let missing = need & !have;
                if missing != 0 {
                    self.ctx[i].step = Step::Rebuild;
                    return self.advance(chan, pool, fab, i);
                }
                self.after_read(chan, pool, fab, i)
            }
            Step::Rebuild | Step::Encode => {
                let c = &self.ctx[i];
                let frags = if c.job == Job::Scrub && c.step == Step::Encode { self.check_frags.as_ptr() } else { self.frags.as_deref().map_or(core::ptr::null(), |t| t[i].as_ptr()) } as u64;
                let d = if c.step == Step::Rebuild {
                    EDesc::reconstruct(frags, CHUNK as u32, k as u8, m as u8, u64::from(c.have), u64::from(c.need & !c.have), i as u32)
                } else {
                    EDesc::encode(frags, CHUNK as u32, k as u8, m as u8, i as u32)
                };
                if self.eng.space() == 0 || !self.eng.submit(&d) {
                    return false;
                }
                self.ctx[i].busy = true;
                true
            }
            Step::Fill | Step::Deliver => self.dma(chan, pool, i),
            Step::Check => self.crc_chain(chan, i),
            Step::Send => {
                if fab.free_slots() < wset.count_ones() as usize {
                    return false;
                }
                self.ctx[i].step = Step::Write;
                if wset == 0 {
                    return self.advance(chan, pool, fab, i);
                }
                self.members(chan, pool, fab, i, wset, true);
                true
            }
            Step::Hold => {
                if !health(vol).durable() {
                    return false;
                }
                let st = self.ctx[i].status;
                self.finish(pool, i, st)
            }
            Step::Write => {
                // Every member write answered: the stripe is recoverable
                // while at most m of its fragments are not valid.
                if health(vol).missing_at(stripe, width).count_ones() as usize > m || (job != Job::Host && bad != 0) {
                    self.ctx[i].status = Status::WRITE_FAULT;
                }
                self.stripe_done(chan, pool, fab, i)
            }
        }
    }

    /// With the stripe locked: which fragments to read (and rebuild).
    fn plan(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) -> bool {
        let c = &self.ctx[i];
        let Some(v) = c.v else { return true };
        let (k, width) = (usize::from(v.k), v.width());
        let (vol, stripe, job, write, off, n) = (c.vol, c.stripe, c.job, c.write, c.off, c.n);
        let h = health(vol);
        let alive = |f: usize| h.readable(v.member_of(stripe, f), stripe);
        let (first, last) = Self::touched(c);
        let mut need = 0u32;
        match job {
            // Read: the touched data fragments. Write: the data fragments
            // it does not wholly overwrite (parity is computed from all k).
            Job::Host => {
                for f in 0..k {
                    let touched = (first..=last).contains(&f);
                    let whole = touched && off as usize <= f * CHUNK && (off + n) as usize >= (f + 1) * CHUNK;
                    if (!write && touched) || (write && !whole) {
                        need |= 1 << f;
                    }
                }
            }
            // The slot's fragment of this stripe, from any k others.
            Job::Rebuild { slot } => need = 1 << repair::fragment_on(&v, stripe, usize::from(slot)),
            // Every fragment, only where all are valid.
            Job::Scrub => {
                if h.missing_at(stripe, width) != 0 {
                    h.skipped.fetch_add(1, Ordering::Relaxed);
                    return self.stripe_done(chan, pool, fab, i);
                }
                let all = (1u32 << width) - 1;
                let c = &mut self.ctx[i];
                (c.need, c.have, c.bad, c.step) = (0, 0, 0, Step::Read);
                self.members(chan, pool, fab, i, all, false);
                return true;
            }
        }
        let lost = h.missing_at(stripe, width);
        let mut read = 0u32;
        // (A rebuild needs a parity fragment too: look at all of them.)
        if (0..width).filter(|&f| need & 1 << f != 0).all(alive) {
            read = need;
        } else {
            // Degraded: any k present fragments rebuild the lost ones.
            let mut n = 0;
            for f in 0..width {
                if alive(f) && n < k {
                    read |= 1 << f;
                    n += 1;
                }
            }
            if n < k {
                let st = if write { Status::WRITE_FAULT } else { Status::UNRECOVERED_READ_ERROR };
                defmt::error!("ec: volume {=u16} stripe {=u64}: {=u32} members lost, more than m: failing the I/O", vol, stripe, lost.count_ones());
                self.ctx[i].status = st;
                return self.stripe_done(chan, pool, fab, i);
            }
        }
        let c = &mut self.ctx[i];
        c.need = need;
        c.have = 0;
        c.bad = 0;
        c.step = Step::Read;
        if read == 0 {
            return self.advance(chan, pool, fab, i);
        }
        self.members(chan, pool, fab, i, read, false);
        true
    }

    /// Sends member I/Os for the fragments in `set` (reads, or writes of
    /// the fragment pages).
    fn members(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize, set: u32, write: bool) {
        let now = dpu_hal::csr::time();
        let c = &mut self.ctx[i];
        let Some(v) = c.v else { return };
        c.out = set;
        c.cancelled = 0;
        c.sent_at = now;
        let (shift, vol, stripe, pages, check, job) = (c.shift, c.vol, c.stripe, c.pages, c.check, c.job);
        let k = usize::from(v.k);
        // Members have the volume's block size (the configuration says so).
        let blocks = (CHUNK >> shift) as u32;
        let h = health(vol);
        let Some(def) = self.vols.get(vol).map(|x| &x.def) else { return };
        for f in 0..v.width() {
            if set & 1 << f == 0 {
                continue;
            }
            // The slot's device: its member, or the spare replacing it.
            let dev = h.device(v.member_of(stripe, f));
            self.ctx[i].sent[f] = dev as u8;
            let (ctrl, nsid) = def.members[dev];
            // A scrub's repair writes the parity it recomputed.
            let page = if write && job == Job::Scrub && f >= k { check.single(f - k) } else { pages.single(f) };
            let io = Io { op: if write { Op::Write } else { Op::Read }, lba: stripe * u64::from(blocks), blocks, len: CHUNK as u32, data: Data::Staged(&page) };
            fab.submit(chan, pool, LOWER | (i as Tag) << 5 | f as Tag, ctrl, nsid, &io);
        }
    }

    /// Reads (and rebuilds) done: deliver, or fill and encode; a rebuild
    /// writes the rebuilt fragment, a scrub recomputes the parity.
    fn after_read(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) -> bool {
        let c = &mut self.ctx[i];
        match c.job {
            Job::Host => c.step = if c.write { Step::Fill } else { Step::Deliver },
            Job::Rebuild { .. } => {
                c.step = Step::Send;
                c.bad = 0;
                c.wset = c.need;
            }
            Job::Scrub => c.step = Step::Encode,
        }
        self.advance(chan, pool, fab, i)
    }

    /// The stripe operation is over: unlock, free, next stripe or finish.
    fn stripe_done(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) -> bool {
        let c = &mut self.ctx[i];
        // A rebuilt stripe moves the watermark while its lock is held.
        if let Job::Rebuild { slot } = c.job {
            if c.status.is_success() && c.bad == 0 && !health(c.vol).rebuilt(usize::from(slot), c.stripe) {
                c.status = Status::WRITE_FAULT;
            }
        }
        if let Some(slot) = c.lock.take() {
            LOCKS[slot].store(0, Ordering::Release);
        }
        pool.free(&mut c.pages);
        pool.free(&mut c.check);
        if c.job != Job::Host {
            return self.repair_next(chan, pool, fab, i);
        }
        c.pos += c.n;
        if c.pos >= c.len || !c.status.is_success() || c.cancel.is_some() {
            let st = c.cancel.unwrap_or(c.status);
            return self.finish(pool, i, st);
        }
        // The next stripe: queued if it must wait (its lock, pages, room).
        self.begin_stripe(i);
        self.run(chan, pool, fab, i);
        true
    }

    /// Context `i` starts `c` (its `used` set).
    fn occupy(&mut self, i: usize, c: Ctx) {
        self.ctx[i] = c;
        self.live[i / 64] |= 1 << (i % 64);
    }

    /// Whether any context is in use.
    fn active(&self) -> bool {
        self.live.iter().any(|&w| w != 0)
    }

    /// Indices of the contexts in use, in order.
    fn live(&self) -> impl Iterator<Item = usize> + use<> {
        let live = self.live;
        (0..live.len()).flat_map(move |w| {
            let mut bits = live[w];
            core::iter::from_fn(move || {
                let b = bits.trailing_zeros() as usize;
                (bits != 0).then(|| {
                    bits &= bits - 1;
                    w * 64 + b
                })
            })
        })
    }

    fn finish(&mut self, pool: &mut Pool, i: usize, st: Status) -> bool {
        let c = &mut self.ctx[i];
        if let Some(slot) = c.lock.take() {
            LOCKS[slot].store(0, Ordering::Release);
        }
        pool.free(&mut c.pages);
        pool.free(&mut c.check);
        // A host write completes once no device that missed it can be
        // trusted after a restart: every slot lost now is listed lost in
        // the superblocks on the media (md holds writes the same way while
        // MD_SB_CHANGE_PENDING). Reads need no such wait, nor a write
        // that failed (the host does not count on its data).
        if c.job == Job::Host && c.write && st.is_success() && !health(c.vol).durable() {
            (c.step, c.status, c.busy) = (Step::Hold, st, false);
            if !self.wait[..self.nwait].contains(&(i as u8)) {
                self.wait[self.nwait] = i as u8;
                self.nwait += 1;
            }
            return true;
        }
        c.used = false;
        let (tag, job) = (c.tag, c.job);
        self.live[i / 64] &= !(1 << (i % 64));
        if job == Job::Host {
            self.push_done(tag, st);
        }
        true
    }

    /// Calls `f(upper address, fragment-page address, bytes)` for the
    /// stripe operation's bytes, split where the upper buffer or a
    /// fragment ends.
    fn pieces(c: &Ctx, segs: &[(u64, u32)], frags: &[u64; 32], pool: &Pool, mut f: impl FnMut(u64, u64, u32)) {
        let end = c.pos + c.n;
        let mut x = c.pos;
        while x < end {
            // The upper extent holding I/O byte x.
            let (ua, ulen) = if c.host {
                let mut at = 0u32;
                let mut r = (0u64, 0u32);
                for &(a, l) in segs {
                    if x < at + l {
                        r = (a + u64::from(x - at), at + l - x);
                        break;
                    }
                    at += l;
                }
                r
            } else {
                let p = x as usize;
                (pool.addr(c.upper.page(p / PAGE)) + (p % PAGE) as u64, (PAGE - p % PAGE) as u32)
            };
            if ulen == 0 {
                return;
            }
            let s = (c.off + (x - c.pos)) as usize;
            let (frag, at) = (s / CHUNK, s % CHUNK);
            let take = ulen.min((CHUNK - at) as u32).min(end - x);
            f(ua, frags[frag] + at as u64, take);
            x += take;
        }
    }

    /// Fill (upper -> fragments) or Deliver (fragments -> upper) by DMA.
    fn dma(&mut self, chan: &mut Channel, pool: &Pool, i: usize) -> bool {
        let c = &self.ctx[i];
        let Some(frags) = self.frags.as_deref().map(|t| &t[i]) else { return true };
        let segs = self.segs.get(i, c.nsegs);
        let mut n = 0u32;
        Self::pieces(c, segs, frags, pool, |_, _, _| n += 1);
        if n == 0 || chan.space() < n {
            return false;
        }
        let fill = c.step == Step::Fill;
        let op = match (c.host, fill) {
            (true, true) => dr::OP_H2D,
            (true, false) => dr::OP_D2H,
            (false, _) => dr::OP_COPY,
        };
        let cookie = cookie::make(cookie::EC, i as u32);
        let mut k = 0;
        Self::pieces(c, segs, frags, pool, |upper, frag, len| {
            k += 1;
            let flags = if k == n { dr::FLAG_END } else { 0 };
            // OP_COPY: source in `host`, destination in `local`.
            let (host, local) = match (c.host, fill) {
                (true, _) => (upper, frag),
                (false, true) => (upper, frag),
                (false, false) => (frag, upper),
            };
            chan.push(&Desc { host, local, len, function: c.function, op, flags, msix: 0, cookie });
        });
        self.ctx[i].busy = true;
        self.kick = true;
        true
    }

    /// A DMA chain of context `i` finished.
    pub fn dma_done(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize, ok: bool) {
        let Some(c) = self.ctx.get_mut(i) else { return };
        if !c.used || !c.busy || !matches!(c.step, Step::Fill | Step::Deliver | Step::Check) {
            return;
        }
        c.busy = false;
        if c.step == Step::Check {
            self.compare(chan, pool, fab, i, ok);
            return;
        }
        if !ok {
            c.status = Status::DATA_TRANSFER_ERROR;
            self.stripe_done(chan, pool, fab, i);
            return;
        }
        if c.step == Step::Deliver {
            self.stripe_done(chan, pool, fab, i);
            return;
        }
        c.step = Step::Encode;
        self.run(chan, pool, fab, i);
    }

    /// Member I/O `tag` (has [`LOWER`]) finished with `st`.
    pub fn lower_done(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, tag: Tag, st: Status) {
        let (i, f) = (usize::from(tag & !LOWER) >> 5, usize::from(tag & 31));
        if i == superblock::SB {
            return self.sb_done(chan, pool, fab, f, st);
        }
        let Some(c) = self.ctx.get_mut(i) else { return };
        if !c.used || c.out & 1 << f == 0 {
            return;
        }
        c.out &= !(1 << f);
        let Some(v) = c.v else { return };
        let (slot, dev) = (v.member_of(c.stripe, f), usize::from(c.sent[f]));
        if !st.is_success() {
            defmt::warn!("ec: volume {=u16}: member {=usize} (record {=usize}) answered {=u16:#x}", c.vol, slot, dev, st.field());
            mark_failed(self.vols.get(c.vol).map(|x| &x.def), c.vol, slot, dev, "I/O error");
            c.bad |= 1 << f;
        } else if !health(c.vol).in_service(slot, dev) {
            // Lost or replaced meanwhile (on any core): may be stale.
            c.bad |= 1 << f;
        } else if c.step == Step::Read {
            c.have |= 1 << f;
        }
        if c.out == 0 {
            self.run(chan, pool, fab, i);
        }
    }

    /// Engine completions; retries waiting contexts; returns the work done.
    #[inline(never)]
    pub fn poll(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric) -> usize {
        // Volumes made or deleted at run time (one load when none).
        let mut work = self.take_volumes();
        while self.eng.busy() > 0 {
            let Some(comp) = self.eng.poll() else { break };
            work += 1;
            let i = comp.cookie as usize;
            let Some(c) = self.ctx.get_mut(i) else { continue };
            if !c.used || !c.busy || !matches!(c.step, Step::Rebuild | Step::Encode) {
                continue;
            }
            c.busy = false;
            if comp.status != st::ST_OK {
                defmt::error!("ec: engine status {=u32} on volume {=u16} stripe {=u64}", comp.status, c.vol, c.stripe);
                c.status = engine_status(comp.status, c.write);
                self.stripe_done(chan, pool, fab, i);
                continue;
            }
            if c.step == Step::Rebuild {
                c.have |= c.need;
                self.after_read(chan, pool, fab, i);
                continue;
            }
            if c.job == Job::Scrub {
                c.step = Step::Check;
                self.run(chan, pool, fab, i);
                continue;
            }
            // Parity is in its pages: write the changed data fragments and
            // the parity to the members that hold valid data (a slot being
            // rebuilt: below its watermark).
            let Some(v) = c.v else { continue };
            let (k, width) = (usize::from(v.k), v.width());
            let (first, last) = Self::touched(c);
            let missing = health(c.vol).missing_at(c.stripe, width);
            let mut set = 0u32;
            for f in (first..=last).chain(k..width) {
                if missing & 1 << v.member_of(c.stripe, f) == 0 {
                    set |= 1 << f;
                }
            }
            c.step = Step::Send;
            c.bad = 0;
            c.wset = set;
            self.run(chan, pool, fab, i);
        }
        work += self.repair_poll(chan, pool, fab);
        // Waiting contexts, oldest first; one still waiting stays queued
        // where it was. It leaves the queue before it runs: a step that
        // ends its stripe operation at once (a scrub skipping a stripe
        // with a lost fragment) starts the next one, which may have to
        // wait and is queued again by `run` (while it was still listed
        // here, `run` saw it queued, and it was then dropped: a context
        // left waiting for good).
        let mut k = 0;
        while k < self.nwait {
            let i = self.wait[k];
            self.wait.copy_within(k + 1..self.nwait, k);
            self.nwait -= 1;
            let idx = usize::from(i);
            if self.ctx[idx].used && !self.advance(chan, pool, fab, idx) && !self.wait[..self.nwait].contains(&i) {
                self.wait.copy_within(k..self.nwait, k + 1);
                self.wait[k] = i;
                self.nwait += 1;
                k += 1;
            } else {
                work += 1;
            }
        }
        work
    }

    /// Member I/Os to cancel: those unanswered for
    /// [`MEMBER_TIMEOUT_TICKS`] and those to members lost meanwhile (the
    /// member is marked lost). Tags into `out`; returns how many.
    #[inline(never)]
    pub fn expired(&mut self, now: u64, out: &mut [Tag]) -> usize {
        let mut n = self.sb_expired(now, out);
        // Every 50 us at most: a late member is a matter of milliseconds.
        if !self.active() || now < self.next_scan {
            return n;
        }
        self.next_scan = now + TIMEBASE_HZ / 20_000;
        for i in self.live() {
            let c = &mut self.ctx[i];
            let pending = c.out & !c.cancelled;
            if !c.used || pending == 0 {
                continue;
            }
            let Some(v) = c.v else { continue };
            let h = health(c.vol);
            let late = now.saturating_sub(c.sent_at) > MEMBER_TIMEOUT_TICKS;
            for f in 0..v.width() {
                let (slot, dev) = (v.member_of(c.stripe, f), usize::from(c.sent[f]));
                if pending & 1 << f == 0 || !(late || !h.in_service(slot, dev)) || n == out.len() {
                    continue;
                }
                if late {
                    mark_failed(self.vols.get(c.vol).map(|x| &x.def), c.vol, slot, dev, "unanswered");
                }
                c.cancelled |= 1 << f;
                out[n] = LOWER | (i as Tag) << 5 | f as Tag;
                n += 1;
            }
        }
        n
    }

    /// Whether member I/Os are in flight or contexts wait (the owner
    /// needs a pass at `deadline`).
    #[inline(never)]
    pub fn deadline(&self) -> u64 {
        // The repair worker looks at its volumes now and then.
        let mut t = self.repair_deadline().min(self.sb.deadline());
        if !self.active() {
            return t;
        }
        for c in self.live().map(|i| &self.ctx[i]) {
            if c.out & !c.cancelled != 0 {
                t = t.min(c.sent_at + MEMBER_TIMEOUT_TICKS + 1);
            }
        }
        if self.nwait > 0 {
            // Another core holds a stripe lock: look again soon.
            t = t.min(dpu_hal::csr::time() + TIMEBASE_HZ / 200_000);
        }
        t
    }

    /// Gives up on I/O `tag`: it completes with `st` at the end of its
    /// current stripe operation (member I/Os end or time out promptly).
    pub fn cancel(&mut self, tag: Tag, st: Status) -> bool {
        let Some(c) = self.ctx[..MAX_TAGS].iter_mut().find(|c| c.used && c.job == Job::Host && c.tag == tag) else { return false };
        c.cancel = Some(st);
        true
    }
}
