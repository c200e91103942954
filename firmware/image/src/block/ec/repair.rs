//! Rebuild and scrub of erasure-coded volumes: the work of one core's
//! repair context ([`REPAIR`]), which goes through the same stripe steps
//! as host I/O (stripe lock, member reads, engine, member writes).
//!
//! * Volume v (a boot volume, or one made at run time: [`super::live`])
//!   is repaired by data-plane core `DATA_CORES - 1 - v` (the last
//!   cores), one stripe operation at a time: rebuild and scrub are
//!   one more queue-depth-1 client of the stripe locks, the members and
//!   the engine, so host I/O keeps its share (Linux md throttles its
//!   resync the same way in spirit, `sync_speed_min/max`, by rate).
//! * Rebuild: when a slot is lost and a spare's controller is connected,
//!   the spare takes the slot (`Health::begin_rebuild`); with no spare,
//!   the slot's own device once it is back (its controller set up again
//!   since it was lost, `Health::lost_under`), at most [`MAX_RETURNS`]
//!   times in a row; for each stripe
//!   the k fragments needed are read, the engine reconstructs the slot's
//!   fragment, it is written to the spare and the watermark moves (under
//!   the stripe lock; rules in `dpu_bdev::ec_health`). When the last
//!   stripe is done the slot is healthy. A spare that fails stops the
//!   rebuild and stays out; another spare, if any, starts over.
//! * Scrub (at the volume's `scrub_at` card time, after a running
//!   rebuild): each stripe whose k + m fragments are all valid is read,
//!   the engine recomputes the parity from the data into extra pages, and
//!   the DMA engine's CRC32C (RFC 3720) of each read and recomputed parity
//!   fragment are compared: a mismatch is logged with its stripe (a CRC
//!   collision could hide one in 2^32; no CPU reads payload). Stripes
//!   with a lost fragment are skipped and counted.
//! * Scrub repair: every parity row depends on every data fragment (the
//!   Cauchy matrix has no zero), so a bad data fragment makes all m
//!   parity fragments mismatch, and fewer than m mismatching means the
//!   data agrees with a parity that checks: the mismatching parity is
//!   the bad fragment, and the recomputed one is written over it (still
//!   under the stripe lock). All m mismatching (and any mismatch with
//!   m = 1) cannot say which fragment is bad: logged, not rewritten
//!   (Linux md's raid6 `repair` reasons the same way, by syndrome).

use super::{health, Ctx, Ec, Job, Step, CHUNK, NCTX, REPAIR};
use super::live::{self, Vol, Vols};
use crate::bootcfg::EcVolume;
use crate::nvmf::initiator::Fabric;
use crate::block::cookie;
use crate::block::staging::Pool;
use core::sync::atomic::Ordering;
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::memory_map::TIMEBASE_HZ;
use dpu_hal::regs::dma as dr;
use dpu_nvme::Status;

/// How often the repair core looks for a lost slot with a spare, or a
/// scrub that is due (mtime ticks: 100 us).
const LOOK_TICKS: u64 = TIMEBASE_HZ / 10_000;
/// Rebuilds begun onto a device that came back, per slot, before it is
/// left out (it keeps failing); the count starts over once the slot is
/// healthy.
const MAX_RETURNS: u8 = 3;
/// A repair stripe operation this slow is reported (mtime ticks: 5 ms).
const SLOW_STRIPE_TICKS: u64 = 5 * TIMEBASE_HZ / 1000;
/// Mismatching stripes a scrub pass names in the log (all are counted).
const LOGGED_MISMATCHES: u64 = 32;

const _: () = assert!(REPAIR < NCTX);

/// The repair work of one core.
#[derive(Clone, Copy)]
pub(super) struct Worker {
    /// Volumes this core repairs (bit = volume).
    pub(super) vols: u32,
    /// When each volume's next scrub is due (mtime ticks; `u64::MAX`:
    /// none).
    scrub_at: [u64; dpu_bootcfg::MAX_EC_VOLUMES],
    /// The scrub counters when the running pass began (checked,
    /// mismatches, repaired, skipped): a pass reports its own.
    pass: [u64; 4],
    /// When to look next.
    next: u64,
    /// The running job: stripes of its volume, when it and its current
    /// stripe started, whether that stripe was reported slow.
    stripes: u64,
    started: u64,
    stripe_at: u64,
    slow: bool,
}

/// The data-plane core that repairs volume `vol`.
fn repair_hart(vol: usize) -> usize {
    crate::net::FIRST_DATA_HART + crate::net::DATA_CORES - 1 - vol % crate::net::DATA_CORES
}

/// Whether data-plane hart `hart` repairs volume `vol`.
pub(super) fn repairs(hart: usize, vol: usize) -> bool {
    repair_hart(vol) == hart
}

/// The fragment of stripe `stripe` that slot `slot` holds (the inverse
/// of `EcVolume::member_of`).
pub(super) fn fragment_on(v: &super::Shape, stripe: u64, slot: usize) -> usize {
    let n = v.width() as u64;
    ((slot as u64 + n - stripe % n) % n) as usize
}

impl Worker {
    pub const IDLE: Worker = Worker { vols: 0, scrub_at: [u64::MAX; dpu_bootcfg::MAX_EC_VOLUMES], pass: [0; 4], next: u64::MAX, stripes: 0, started: 0, stripe_at: 0, slow: false };

    /// The repair work of data-plane hart `hart` over the boot volumes.
    pub fn new(hart: usize, vols: &Vols) -> Worker {
        let mut w = Worker::IDLE;
        for vol in 0..dpu_bootcfg::MAX_EC_VOLUMES {
            // Every volume: a lost member may come back (and spares, scrub).
            if let Some(v) = vols.get(vol as u16).filter(|_| repair_hart(vol) == hart) {
                w.adopt(vol, v, 0);
            }
        }
        w
    }

    /// This core repairs volume `vol` from now on (`now`: card time).
    pub(super) fn adopt(&mut self, vol: usize, v: &Vol, now: u64) {
        let d = &v.def;
        self.vols |= 1 << vol;
        // The first scrub at `scrub_at`, or one period after boot (after
        // now for a volume made at run time).
        self.scrub_at[vol] = match (d.scrub_at_us, d.scrub_every_ms) {
            (0, 0) => u64::MAX,
            (0, every) => now + u64::from(every) * TIMEBASE_HZ / 1000,
            (at, _) => (u64::from(at) * TIMEBASE_HZ / 1_000_000).max(now),
        };
        self.next = 0;
    }

    /// This core no longer repairs volume `vol`.
    pub(super) fn drop_vol(&mut self, vol: usize) {
        self.vols &= !(1 << vol);
        if let Some(s) = self.scrub_at.get_mut(vol) {
            *s = u64::MAX;
        }
    }

    /// When the core must look again (never if it repairs nothing).
    pub fn deadline(&self) -> u64 {
        self.next
    }
}

impl Ec {
    /// Takes a newer publication of the run-time volumes, between stripe
    /// operations: a volume deleted or replaced is dropped (by its repair
    /// core: health back to new, [`live::set_dropped`]), a new one is
    /// adopted by its repair core (superblocks next, `sb_poll`). Put off
    /// while this core's repair or superblock work is on a volume that
    /// changes (it ends within a stripe operation or a member timeout).
    /// Returns the work done.
    pub(super) fn take_volumes(&mut self) -> usize {
        if !live::newer(self.vols.version()) {
            return 0;
        }
        let Some(changed) = self.vols.read() else { return 0 };
        let c = &self.ctx[REPAIR];
        let on = |vol: u16| changed & 1 << vol != 0;
        if (c.used && on(c.vol)) || (!self.sb.idle() && on(self.sb.vol())) {
            return 0;
        }
        let hart = self.hart as usize;
        let now = dpu_hal::csr::time();
        for vol in 0..live::MAX_EC_VOLUMES {
            if changed & 1 << vol == 0 || !repairs(hart, vol) {
                continue;
            }
            if let Some(old) = self.vols.get(vol as u16).copied() {
                self.repair.drop_vol(vol);
                self.sb.forget(vol);
                health(vol as u16).reset();
                live::set_dropped(vol, old.generation);
                defmt::info!("ec: volume {=usize}: deleted (generation {=u32}); hart {=u32} dropped it", vol, old.generation, self.hart);
            }
            if let Some(new) = self.vols.next(vol) {
                health(vol as u16).reset();
                self.sb.forget(vol);
                self.repair.adopt(vol, &new, now);
                defmt::info!("ec: volume {=usize}: made at run time ({=u8}+{=u8}, {=u64} stripes); hart {=u32} starts it", vol, new.def.k, new.def.m, new.stripes, self.hart);
            }
        }
        self.vols.commit();
        1
    }
}

impl Ec {
    /// The repair context waits on the engine or the DMA channel, whose
    /// completions this core polls for: look again soon (2 us), as the
    /// core may otherwise sleep until its next interrupt.
    pub(super) fn repair_deadline(&self) -> u64 {
        let c = &self.ctx[REPAIR];
        // (Likewise a superblock update that is due: host writes wait.)
        let soon = if (c.used && c.busy) || self.sb_pending() { dpu_hal::csr::time() + TIMEBASE_HZ / 500_000 } else { u64::MAX };
        self.repair.deadline().min(soon)
    }
}

impl Ec {
    /// Starts a rebuild or a scrub when one is due and the repair context
    /// is free; returns the work done.
    pub(super) fn repair_poll(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric) -> usize {
        if self.repair.vols == 0 {
            return 0;
        }
        // Superblocks first: a volume starts, or an update is due (host
        // writes wait for it), at every pass.
        let sb = self.sb_poll(chan, pool, fab);
        let now = dpu_hal::csr::time();
        if now < self.repair.next {
            return sb;
        }
        self.repair.next = now + LOOK_TICKS;
        if self.ctx[REPAIR].used {
            let c = &self.ctx[REPAIR];
            if !self.repair.slow && now - self.repair.stripe_at > SLOW_STRIPE_TICKS {
                self.repair.slow = true;
                let holder = super::LOCKS[super::lock_slot(c.vol, c.stripe)].load(Ordering::Relaxed);
                defmt::warn!(
                    "ec: volume {=u16}: repair stripe {=u64} waits: step {=u8}, busy {=bool}, member I/Os {=u32:#x}, have {=u32:#x}, locked {=bool}; lock holder {=u32}, {=usize} free pages, {=usize} free command slots",
                    c.vol,
                    c.stripe,
                    c.step as u8,
                    c.busy,
                    c.out,
                    c.have,
                    c.lock.is_some(),
                    holder,
                    pool.available(),
                    fab.free_slots()
                );
            }
            return sb;
        }
        for vol in 0..dpu_bootcfg::MAX_EC_VOLUMES as u16 {
            if self.repair.vols & 1 << vol == 0 {
                continue;
            }
            let Some(x) = self.vols.get(vol).copied() else { continue };
            let v = &x.def;
            let h = health(vol);
            let lost = h.lost();
            // Nothing to start (the common case, every look): no lookup of
            // the volume's namespace. Nothing before the volume started.
            if !h.started() || h.rebuilding().is_some() || (lost == 0 && now < self.repair.scrub_at[usize::from(vol)]) {
                continue;
            }
            let (shift, stripes) = (x.shift, x.stripes);
            let width = v.width();
            // A lost slot and a spare whose controller is connected (with
            // more than m lost, stripes cannot be rebuilt: nothing to do).
            if lost != 0 && lost.count_ones() <= u32::from(v.m) {
                let taken = h.taken.load(Ordering::Acquire);
                let spare = (0..usize::from(v.spares)).find(|&s| {
                    taken & 1 << s == 0 && v.spare(s).is_some_and(|(ctrl, _)| crate::nvmf::published(usize::from(ctrl)).up)
                });
                if let Some(s) = spare {
                    let slot = lost.trailing_zeros() as usize;
                    h.taken.fetch_or(1 << s, Ordering::AcqRel);
                    if h.begin_rebuild(slot, width + s) {
                        defmt::info!("ec: volume {=u16}: rebuilding member {=usize} onto spare {=usize} ({=u64} stripes) on hart {=u32}", vol, slot, s, stripes, self.hart);
                        self.start_job(chan, pool, fab, vol, v, shift, stripes, Job::Rebuild { slot: slot as u8 });
                        return 1;
                    }
                }
                // No spare: a lost slot whose device came back (its
                // controller is up under a later association than the one
                // it was lost under) is rebuilt onto that device, in full:
                // it may have missed any write while it was out.
                if let Some((slot, dev, epoch)) = self.returned(vol, v, lost) {
                    if h.take_return(slot, MAX_RETURNS) && h.begin_rebuild(slot, dev) {
                        defmt::info!(
                            "ec: volume {=u16}: member {=usize} (record {=usize}) is back (association {=u32}): rebuilding it in full ({=u64} stripes) on hart {=u32}",
                            vol, slot, dev, epoch, stripes, self.hart
                        );
                        self.start_job(chan, pool, fab, vol, v, shift, stripes, Job::Rebuild { slot: slot as u8 });
                        return 1;
                    }
                }
            }
            if now >= self.repair.scrub_at[usize::from(vol)] {
                self.repair.scrub_at[usize::from(vol)] = u64::MAX;
                let r = Ordering::Relaxed;
                self.repair.pass = [h.scrubbed.load(r), h.mismatches.load(r), h.repaired.load(r), h.skipped.load(r)];
                defmt::info!("ec: volume {=u16}: scrub of {=u64} stripes starts ({=u32} members lost) on hart {=u32}", vol, stripes, lost.count_ones(), self.hart);
                self.start_job(chan, pool, fab, vol, v, shift, stripes, Job::Scrub);
                return 1;
            }
        }
        // Members can be lost and come back at any time: keep looking.
        sb
    }

    /// A lost slot of volume `vol` (in `lost`) whose device came back and
    /// may still be retried: (slot, member record, its new association).
    fn returned(&self, vol: u16, v: &EcVolume, lost: u32) -> Option<(usize, usize, u32)> {
        let h = health(vol);
        (0..v.width()).filter(|&s| lost & 1 << s != 0 && h.may_return(s, MAX_RETURNS)).find_map(|slot| {
            let dev = h.device(slot);
            let (ctrl, _) = *v.members.get(dev)?;
            let p = crate::nvmf::published(usize::from(ctrl));
            let was = h.lost_under(slot)?;
            (p.up && p.generation != was).then_some((slot, dev, p.generation))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn start_job(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, vol: u16, v: &EcVolume, shift: u8, stripes: u64, job: Job) {
        self.repair.stripes = stripes;
        self.repair.started = dpu_hal::csr::time();
        self.occupy(REPAIR, Ctx { used: true, job, tag: 0, write: job != Job::Scrub, vol, v: Some(super::Shape::of(v)), shift, ..Ctx::FREE });
        self.job_stripe(REPAIR, 0);
        self.run(chan, pool, fab, REPAIR);
    }

    /// Sets the repair context up for whole stripe `stripe`.
    fn job_stripe(&mut self, i: usize, stripe: u64) {
        let c = &mut self.ctx[i];
        let Some(v) = c.v else { return };
        (c.stripe, c.off, c.n) = (stripe, 0, u32::from(v.k) * CHUNK as u32);
        (c.step, c.busy, c.have, c.need, c.wset, c.out, c.bad, c.cancelled) = (Step::Lock, false, 0, 0, 0, 0, 0, 0);
        c.status = Status::SUCCESS;
        self.repair.stripe_at = dpu_hal::csr::time();
        self.repair.slow = false;
    }

    /// A repair stripe is over (its lock released): the next one, or the
    /// end of the job.
    pub(super) fn repair_next(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize) -> bool {
        let c = self.ctx[i];
        // Its volume was deleted (a publication drops it): stop here, at
        // a stripe boundary, so that its former members (free again) get
        // no more writes; `take_volumes` then drops it.
        if live::newer(self.vols.version()) && self.vols.read().is_some_and(|changed| changed & 1 << c.vol != 0) {
            defmt::warn!("ec: volume {=u16}: repair stopped at stripe {=u64}: the volume was deleted", c.vol, c.stripe);
            return self.finish(pool, i, Status::ABORT_REQUESTED);
        }
        let h = health(c.vol);
        let us = (dpu_hal::csr::time() - self.repair.started) * 1_000_000 / TIMEBASE_HZ;
        let last = c.stripe + 1 >= self.repair.stripes;
        match c.job {
            Job::Rebuild { slot } => {
                let slot = usize::from(slot);
                if !c.status.is_success() {
                    // Its spare failed (the rebuild already stopped), or the
                    // stripe could not be rebuilt: more than m lost.
                    if h.rebuilding().is_some_and(|(s, _)| s == slot) {
                        let dev = h.device(slot);
                        h.fail(slot, dev, self.vols.get(c.vol).and_then(|x| super::device_epoch(&x.def, dev)).unwrap_or(0));
                    }
                    defmt::error!("ec: volume {=u16}: rebuild of member {=usize} stopped at stripe {=u64} (status {=u16:#x})", c.vol, slot, c.stripe, c.status.field());
                    return self.finish(pool, i, c.status);
                }
                let step = (self.repair.stripes / 4).max(1);
                if !last && (c.stripe + 1) % step == 0 {
                    defmt::info!("ec: volume {=u16}: rebuild of member {=usize}: {=u64}/{=u64} stripes", c.vol, slot, c.stripe + 1, self.repair.stripes);
                }
                if last {
                    if h.complete(slot) {
                        defmt::info!(
                            "ec: volume {=u16}: rebuild of member {=usize} complete: {=u64} stripes in {=u64} us; {=u32} members lost now",
                            c.vol,
                            slot,
                            self.repair.stripes,
                            us,
                            h.lost().count_ones()
                        );
                    }
                    return self.finish(pool, i, Status::SUCCESS);
                }
            }
            Job::Scrub => {
                if !c.status.is_success() || last {
                    // The next pass one period after this one ended.
                    let every = self.vols.get(c.vol).map_or(0, |x| x.def.scrub_every_ms);
                    if every != 0 {
                        self.repair.scrub_at[usize::from(c.vol) % dpu_bootcfg::MAX_EC_VOLUMES] = dpu_hal::csr::time() + u64::from(every) * TIMEBASE_HZ / 1000;
                    }
                }
                if !c.status.is_success() {
                    defmt::error!("ec: volume {=u16}: scrub stopped at stripe {=u64} (status {=u16:#x})", c.vol, c.stripe, c.status.field());
                    return self.finish(pool, i, c.status);
                }
                if c.wset != 0 && h.repaired.fetch_add(1, Ordering::Relaxed) < LOGGED_MISMATCHES {
                    defmt::warn!("ec: volume {=u16}: scrub: stripe {=u64}: parity fragments {=u32:#b} rewritten", c.vol, c.stripe, c.wset >> c.v.map_or(0, |v| v.k));
                }
                let step = (self.repair.stripes / 4).max(1);
                if !last && (c.stripe + 1) % step == 0 {
                    defmt::info!("ec: volume {=u16}: scrub: {=u64}/{=u64} stripes", c.vol, c.stripe + 1, self.repair.stripes);
                }
                if last {
                    let n = h.scrubs.fetch_add(1, Ordering::Relaxed) + 1;
                    let (r, p) = (Ordering::Relaxed, self.repair.pass);
                    defmt::info!(
                        "ec: volume {=u16}: scrub done: {=u64} stripes checked, {=u64} mismatches ({=u64} repaired), {=u64} skipped (a fragment lost), in {=u64} us (pass {=u32})",
                        c.vol,
                        h.scrubbed.load(r) - p[0],
                        h.mismatches.load(r) - p[1],
                        h.repaired.load(r) - p[2],
                        h.skipped.load(r) - p[3],
                        us,
                        n
                    );
                    return self.finish(pool, i, Status::SUCCESS);
                }
            }
            Job::Host => return self.finish(pool, i, Status::INTERNAL_ERROR),
        }
        self.job_stripe(i, c.stripe + 1);
        self.run(chan, pool, fab, i);
        true
    }

    /// Scrub: the DMA engine's CRC32C of each parity fragment read and
    /// each recomputed, into `crc` (read, recomputed, ...).
    pub(super) fn crc_chain(&mut self, chan: &mut Channel, i: usize) -> bool {
        let c = self.ctx[i];
        let Some(v) = c.v else { return true };
        let (k, m) = (usize::from(v.k), usize::from(v.m));
        if chan.space() < 2 * m as u32 {
            return false;
        }
        let cookie = cookie::make(cookie::EC, i as u32);
        for j in 0..2 * m {
            self.crc[j].store(0, Ordering::Release);
            let page = if j % 2 == 0 { self.frags.as_deref().map_or(0, |t| t[i][k + j / 2]) } else { self.check_frags[k + j / 2] };
            let mut d = Desc::crc32c(page, CHUNK as u32, &self.crc[j] as *const _ as u64, cookie);
            if j + 1 == 2 * m {
                d.flags = dr::FLAG_END;
            }
            chan.push(&d);
        }
        self.ctx[i].busy = true;
        self.kick = true;
        true
    }

    /// Scrub: the CRCs are in; a stripe whose parity differs is reported.
    pub(super) fn compare(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, i: usize, ok: bool) {
        let c = self.ctx[i];
        let Some(v) = c.v else { return };
        if !ok {
            self.ctx[i].status = Status::INTERNAL_ERROR;
            self.stripe_done(chan, pool, fab, i);
            return;
        }
        let (k, m) = (usize::from(v.k), usize::from(v.m));
        let mut bad = 0u32;
        for j in 0..m {
            if self.crc[2 * j].load(Ordering::Acquire) != self.crc[2 * j + 1].load(Ordering::Acquire) {
                bad |= 1 << j;
            }
        }
        let h = health(c.vol);
        h.scrubbed.fetch_add(1, Ordering::Relaxed);
        let repair = bad != 0 && (bad.count_ones() as usize) < m;
        if bad != 0 {
            let n = h.mismatches.fetch_add(1, Ordering::Relaxed);
            if n < LOGGED_MISMATCHES {
                let first = bad.trailing_zeros() as usize;
                defmt::error!(
                    "ec: volume {=u16}: scrub: stripe {=u64} parity mismatch (parity fragments {=u32:#b}; parity {=usize} is on member {=usize})",
                    c.vol,
                    c.stripe,
                    bad,
                    first,
                    v.member_of(c.stripe, k + first)
                );
                if !repair {
                    defmt::error!("ec: volume {=u16}: scrub: stripe {=u64}: every parity fragment disagrees, a data fragment may be bad: not rewritten", c.vol, c.stripe);
                }
            }
        }
        if repair {
            // The recomputed parity (in `check`) over the bad fragments.
            let c = &mut self.ctx[i];
            (c.step, c.bad, c.wset) = (Step::Send, 0, bad << k);
            self.run(chan, pool, fab, i);
            return;
        }
        self.stripe_done(chan, pool, fab, i);
    }
}
