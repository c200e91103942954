//! Card-wide health of each erasure-coded volume's slots, shared by every
//! data-plane core through atomics in DDR (no locks): which slots are
//! lost, which device (a member or a spare record) serves each slot, and
//! the progress of the one rebuild a volume runs at a time.
//!
//! A slot is a column of the layout: fragment f of stripe s is on slot
//! (f + s) mod (k + m). Its device is the member configured for it until a
//! spare replaces it. The rules follow Linux md's `recovery_offset` for a
//! replacement disk (drivers/md/md.h, `struct md_rdev`):
//!
//! * A lost slot is neither read nor written: its device may have missed
//!   writes. Nothing makes that device trusted again without a rebuild:
//!   a spare is rebuilt into the slot, or the device itself when it comes
//!   back (its controller set up again under a later association epoch
//!   than the one it was lost under, [`Health::lost_under`]), rebuilt in
//!   full like a spare (Linux md re-adds a returning member the same way
//!   when it has no write-intent bitmap: a full recovery).
//! * A slot being rebuilt onto a spare is valid for the stripes below its
//!   watermark ([`Health::readable`]): they are read and written like a
//!   healthy slot's. Stripes at or above it are lost (reads rebuild them,
//!   writes skip the slot); the rebuild reconstructs them later.
//! * The watermark moves from s to s + 1 only while the rebuild holds
//!   stripe s's lock, after the rebuilt fragment is on the spare. Every
//!   I/O reads the watermark under its own stripe lock, so for one stripe
//!   either the I/O sees "not rebuilt" and is over before the rebuild
//!   reads the stripe (which then reconstructs the new data), or it sees
//!   "rebuilt" and writes the spare itself: no write is lost.
//! * An I/O counts only if its device still serves its slot when it
//!   completes ([`Health::in_service`]).
//!
//! Pure (no MMIO); the firmware keeps one per volume in DDR
//! (`block::ec`). What must survive a card restart is on the devices
//! themselves: each carries a superblock (`ec_super`, Linux md's
//! `events` scheme) that the volume's repair core reads at start
//! ([`Health::start`]: untrusted slots begin lost, as if lost under
//! association 0, so a device that is up is rebuilt in place like one
//! that came back) and rewrites after every change ([`Health::changes`]).
//! A host write completes only once every slot lost now is recorded lost
//! on the media ([`Health::durable`]): a crash can then never bring back
//! a device that missed a completed write as trusted.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
/// Slots (members) of one volume at most: one bit each in a u32.
pub const MAX_EC_MEMBERS: usize = 32;

pub struct Health {
    /// Slots not trusted for every stripe (lost, or being rebuilt).
    lost: AtomicU32,
    /// Per slot: 0 = its own member, r + 1 = member record r (a spare).
    dev: [AtomicU8; MAX_EC_MEMBERS],
    /// The rebuild: (slot + 1) | device << 8 (0: none), one word so a
    /// failure stops only a rebuild onto the device that failed; and its
    /// watermark in stripes.
    rebuild: AtomicU32,
    mark: AtomicU64,
    /// Per slot: the association epoch of the device serving it when the
    /// slot was lost, with bit 31 set (0: not recorded, or not lost).
    epoch: [AtomicU32; MAX_EC_MEMBERS],
    /// Per slot: rebuilds begun onto the device that had lost it (it came
    /// back), since the slot was last healthy.
    returns: [AtomicU8; MAX_EC_MEMBERS],
    /// Spares taken (assigned to a slot, or failed), bit = spare.
    pub taken: AtomicU32,
    /// Rebuilds completed, stripes rebuilt.
    pub rebuilds: AtomicU32,
    pub rebuilt_stripes: AtomicU64,
    /// Scrub passes completed; stripes checked, found inconsistent,
    /// repaired (parity rewritten), and skipped (a fragment lost).
    pub scrubs: AtomicU32,
    pub scrubbed: AtomicU64,
    pub mismatches: AtomicU64,
    pub repaired: AtomicU64,
    pub skipped: AtomicU64,
    /// One more at every change the superblocks must record (a slot
    /// lost, a device taking a slot, a rebuild complete).
    changes: AtomicU32,
    /// The `changes` value the last superblock update covered.
    recorded: AtomicU32,
    /// Slots every superblock on the media lists lost (or that an update
    /// in flight keeps listing): writes may complete while `lost` is
    /// within it.
    durable_lost: AtomicU32,
    /// The volume started (superblocks read and written): it takes I/O.
    /// Before that, `unavailable`: fewer than k members reachable after
    /// the start wait, I/O is refused.
    started: AtomicU32,
    unavailable: AtomicU32,
    /// The volume's superblock `events` on the media, and its nonce.
    pub events: AtomicU64,
    pub nonce: AtomicU64,
}

impl Health {
    pub const NEW: Health = Health {
        lost: AtomicU32::new(0),
        dev: [const { AtomicU8::new(0) }; MAX_EC_MEMBERS],
        epoch: [const { AtomicU32::new(0) }; MAX_EC_MEMBERS],
        returns: [const { AtomicU8::new(0) }; MAX_EC_MEMBERS],
        rebuild: AtomicU32::new(0),
        mark: AtomicU64::new(0),
        taken: AtomicU32::new(0),
        rebuilds: AtomicU32::new(0),
        rebuilt_stripes: AtomicU64::new(0),
        scrubs: AtomicU32::new(0),
        scrubbed: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        repaired: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        changes: AtomicU32::new(0),
        recorded: AtomicU32::new(0),
        durable_lost: AtomicU32::new(0),
        started: AtomicU32::new(0),
        unavailable: AtomicU32::new(0),
        events: AtomicU64::new(0),
        nonce: AtomicU64::new(0),
    };

    /// Back to [`Health::NEW`]: a run-time volume was deleted and its
    /// index may serve another one (the data plane's repair core does
    /// this once no I/O of the old volume can run).
    pub fn reset(&self) {
        let zero32 = |a: &AtomicU32| a.store(0, Ordering::Release);
        let zero64 = |a: &AtomicU64| a.store(0, Ordering::Release);
        for s in 0..MAX_EC_MEMBERS {
            self.dev[s].store(0, Ordering::Release);
            self.epoch[s].store(0, Ordering::Release);
            self.returns[s].store(0, Ordering::Release);
        }
        for a in [&self.lost, &self.rebuild, &self.taken, &self.rebuilds, &self.scrubs, &self.changes, &self.recorded, &self.durable_lost, &self.started, &self.unavailable] {
            zero32(a);
        }
        for a in [&self.mark, &self.rebuilt_stripes, &self.scrubbed, &self.mismatches, &self.repaired, &self.skipped, &self.events, &self.nonce] {
            zero64(a);
        }
    }

    /// Sets up the slots at volume start (before any I/O): `lost` slots
    /// are lost as if under association 0 (a device up now counts as
    /// back: it is rebuilt in full before it is trusted), and `serve[s]`
    /// (a spare's record, from its superblock) serves slot s.
    pub fn start(&self, lost: u32, serve: &[Option<u8>], width: usize) {
        for (s, d) in serve.iter().enumerate().take(width.min(MAX_EC_MEMBERS)) {
            match d {
                Some(d) if usize::from(*d) != s && usize::from(*d) < MAX_EC_MEMBERS => {
                    self.dev[s].store(d + 1, Ordering::Release);
                    if usize::from(*d) >= width {
                        self.taken.fetch_or(1 << (usize::from(*d) - width), Ordering::AcqRel);
                    }
                }
                _ => self.dev[s].store(0, Ordering::Release),
            }
            self.epoch[s].store(if lost & 1 << s != 0 { 1 << 31 } else { 0 }, Ordering::Release);
        }
        self.lost.store(lost, Ordering::Release);
        self.durable_lost.store(lost, Ordering::Release);
    }

    /// The count of changes the superblocks must record; an update that
    /// covers them is begun with [`Health::recording`] and ended with
    /// [`Health::recorded`].
    pub fn changes(&self) -> u32 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a change is not on the media yet.
    pub fn unrecorded(&self) -> bool {
        self.changes() != self.recorded.load(Ordering::Acquire)
    }

    /// An update listing `lost` is being written: until it is over the
    /// media may hold it or the one before, so only slots both list
    /// stay durable.
    pub fn recording(&self, lost: u32) {
        self.durable_lost.fetch_and(lost, Ordering::AcqRel);
    }

    /// The update that listed `lost` at events `events`, covering changes
    /// up to `changes`, is on the media of every device in service.
    pub fn recorded(&self, changes: u32, lost: u32, events: u64) {
        self.events.store(events, Ordering::Release);
        self.durable_lost.store(lost, Ordering::Release);
        self.recorded.store(changes, Ordering::Release);
        self.started.store(1, Ordering::Release);
    }

    /// Whether the volume started (its superblocks were read and the
    /// first update is on the media): I/O may run.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire) != 0
    }

    /// Before the start: whether I/O is refused (too few members
    /// reachable to start) or waits.
    pub fn unavailable(&self) -> bool {
        self.unavailable.load(Ordering::Acquire) != 0
    }

    /// Sets [`Health::unavailable`].
    pub fn set_unavailable(&self, refuse: bool) {
        self.unavailable.store(u32::from(refuse), Ordering::Release);
    }

    /// Whether a write that completes now is safe across a restart: the
    /// volume started and every slot lost now is listed lost by the
    /// superblocks on the media (so no device that missed this write can
    /// be trusted after a restart).
    pub fn durable(&self) -> bool {
        self.started() && self.lost() & !self.durable_lost.load(Ordering::Acquire) == 0
    }

    /// Slots lost (including one being rebuilt).
    pub fn lost(&self) -> u32 {
        self.lost.load(Ordering::Acquire)
    }

    /// The member record serving `slot`.
    pub fn device(&self, slot: usize) -> usize {
        match self.dev.get(slot).map_or(0, |d| d.load(Ordering::Acquire)) {
            0 => slot,
            r => usize::from(r) - 1,
        }
    }

    /// The slot under rebuild and its watermark.
    pub fn rebuilding(&self) -> Option<(usize, u64)> {
        match self.rebuild.load(Ordering::Acquire) & 0xff {
            0 => None,
            s => Some((s as usize - 1, self.mark.load(Ordering::Acquire))),
        }
    }

    fn word(slot: usize, dev: usize) -> u32 {
        (slot as u32 + 1) | (dev as u32) << 8
    }

    /// Whether `slot` is being rebuilt (onto whichever device).
    fn rebuilding_slot(&self, slot: usize) -> bool {
        self.rebuild.load(Ordering::Acquire) & 0xff == slot as u32 + 1
    }

    /// Whether `slot` holds valid data for `stripe` (read it, write it).
    pub fn readable(&self, slot: usize, stripe: u64) -> bool {
        self.lost() & 1 << slot == 0 || self.rebuilding().is_some_and(|(s, mark)| s == slot && stripe < mark)
    }

    /// Slots of `width` without valid data for `stripe`.
    pub fn missing_at(&self, stripe: u64, width: usize) -> u32 {
        (0..width).filter(|&s| !self.readable(s, stripe)).fold(0, |a, s| a | 1 << s)
    }

    /// Whether device `dev` still serves `slot` (not lost, or being
    /// rebuilt onto it): its I/Os count.
    pub fn in_service(&self, slot: usize, dev: usize) -> bool {
        self.device(slot) == dev && (self.lost() & 1 << slot == 0 || self.rebuild.load(Ordering::Acquire) == Self::word(slot, dev))
    }

    /// Device `dev` of `slot` failed while its controller's association
    /// epoch was `epoch`: the slot is lost (a rebuild onto it stops).
    /// Ignored if `dev` no longer serves the slot. True if this call lost
    /// the slot or stopped its rebuild.
    pub fn fail(&self, slot: usize, dev: usize, epoch: u32) -> bool {
        if slot >= MAX_EC_MEMBERS {
            return false;
        }
        let bit = 1u32 << slot;
        // The device being rebuilt onto: stop (the slot is lost already).
        if self.rebuild.compare_exchange(Self::word(slot, dev), 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.lost.fetch_or(bit, Ordering::AcqRel);
            self.epoch[slot].store(epoch | 1 << 31, Ordering::Release);
            self.changed();
            return true;
        }
        // A late failure of a device the slot no longer uses. (A rebuild
        // starting meanwhile needs the bit set already: the or below is
        // then a no-op.)
        if self.rebuilding_slot(slot) || self.device(slot) != dev {
            return false;
        }
        if self.lost.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return false;
        }
        // After the bit: a reader that sees the slot lost but no epoch
        // yet waits (never takes epoch 0 for "came back").
        self.epoch[slot].store(epoch | 1 << 31, Ordering::Release);
        self.changed();
        true
    }

    /// The association epoch (31 bits) lost `slot`'s device was lost
    /// under; `None` while not recorded (or the slot is not lost).
    pub fn lost_under(&self, slot: usize) -> Option<u32> {
        let e = self.epoch.get(slot)?.load(Ordering::Acquire);
        (self.lost() & 1 << slot != 0 && e != 0).then_some(e & !(1 << 31))
    }

    /// Whether a rebuild onto the device that lost `slot` may still be
    /// begun ([`Health::take_return`] would count one).
    pub fn may_return(&self, slot: usize, limit: u8) -> bool {
        self.returns.get(slot).is_some_and(|r| r.load(Ordering::Acquire) < limit)
    }

    /// Counts one more rebuild onto the device that lost `slot` and came
    /// back: false (nothing counted) once `limit` have been begun since
    /// the slot was last healthy (a device that keeps failing stays out).
    pub fn take_return(&self, slot: usize, limit: u8) -> bool {
        self.returns.get(slot).is_some_and(|r| r.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).is_ok())
    }

    /// Starts rebuilding lost `slot` onto member record `dev` (a spare):
    /// nothing of it is valid yet. False if a rebuild runs or the slot is
    /// not lost.
    pub fn begin_rebuild(&self, slot: usize, dev: usize) -> bool {
        if slot >= MAX_EC_MEMBERS || dev >= MAX_EC_MEMBERS || self.lost() & 1 << slot == 0 || self.rebuild.load(Ordering::Acquire) != 0 {
            return false;
        }
        self.dev[slot].store(dev as u8 + 1, Ordering::Release);
        self.epoch[slot].store(0, Ordering::Release);
        self.mark.store(0, Ordering::Release);
        self.rebuild.store(Self::word(slot, dev), Ordering::Release);
        self.changed();
        true
    }

    /// Stripe `stripe` of `slot` is rebuilt (call holding its lock).
    /// False if the rebuild was stopped meanwhile.
    pub fn rebuilt(&self, slot: usize, stripe: u64) -> bool {
        if !self.rebuilding_slot(slot) {
            return false;
        }
        self.mark.store(stripe + 1, Ordering::Release);
        self.rebuilt_stripes.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Every stripe of `slot` is rebuilt: the slot is healthy. False if
    /// the rebuild was stopped meanwhile (the slot stays lost).
    pub fn complete(&self, slot: usize) -> bool {
        let w = self.rebuild.load(Ordering::Acquire);
        if w & 0xff != slot as u32 + 1 {
            return false;
        }
        // The watermark covers every stripe: clearing the bit first keeps
        // the slot readable throughout.
        self.lost.fetch_and(!(1 << slot), Ordering::AcqRel);
        if self.rebuild.compare_exchange(w, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Its device failed meanwhile.
            self.lost.fetch_or(1 << slot, Ordering::AcqRel);
            return false;
        }
        self.returns[slot].store(0, Ordering::Release);
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        self.changed();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_durable_only_once_every_lost_slot_is_on_the_media() {
        let h = Health::NEW;
        assert!(!h.durable(), "not started: no I/O");
        h.start(0b100, &[None; 6], 6);
        assert!(!h.durable() && h.lost() == 0b100);
        // Slot 2 starts lost as if under association 0: its device, up
        // under any association, counts as back.
        assert_eq!(h.lost_under(2), Some(0));
        let c = h.changes();
        h.recording(0b100);
        h.recorded(c, 0b100, 5);
        assert!(h.durable() && !h.unrecorded() && h.events.load(Ordering::Relaxed) == 5);
        // Slot 4 is lost: writes wait for an update that lists it.
        assert!(h.fail(4, 4, 3));
        assert!(h.unrecorded() && !h.durable());
        let c = h.changes();
        h.recording(h.lost());
        assert!(!h.durable(), "still being written");
        h.recorded(c, 0b1_0100, 6);
        assert!(h.durable() && !h.unrecorded());
        // A rebuild completes (slot 4 healthy) and, while the update that
        // says so is written, slot 4 is lost again: the media may hold
        // either update, so writes wait for the next one.
        assert!(h.begin_rebuild(4, 4) && h.rebuilt(4, 0) && h.complete(4));
        let c = h.changes();
        h.recording(h.lost());
        assert!(h.fail(4, 4, 4));
        assert!(!h.durable());
        h.recorded(c, 0b100, 7);
        assert!(!h.durable() && h.unrecorded(), "the loss came after the update's snapshot");
    }

    #[test]
    fn reset_forgets_the_old_volume() {
        let h = Health::NEW;
        h.start(0b10, &[None, Some(3), None], 3);
        let c = h.changes();
        h.recording(0b10);
        h.recorded(c, 0b10, 4);
        h.nonce.store(77, Ordering::Relaxed);
        assert!(h.started() && h.lost() == 0b10 && h.device(1) == 3);
        h.reset();
        assert!(!h.started() && !h.durable() && !h.unrecorded() && !h.unavailable(), "a new volume on the index waits for its superblocks");
        assert_eq!((h.lost(), h.device(1), h.taken.load(Ordering::Relaxed)), (0, 1, 0));
        assert_eq!((h.events.load(Ordering::Relaxed), h.nonce.load(Ordering::Relaxed), h.lost_under(1)), (0, 0, None));
    }

    #[test]
    fn a_spare_named_by_its_superblock_serves_its_slot_at_start() {
        let h = Health::NEW;
        let mut serve = [None; 6];
        serve[1] = Some(7);
        h.start(0, &serve, 6);
        assert_eq!((h.device(1), h.taken.load(Ordering::Relaxed)), (7, 0b10));
        assert!(h.in_service(1, 7) && !h.in_service(1, 1));
    }

    #[test]
    fn a_rebuilding_slot_is_valid_below_its_watermark_only() {
        let h = Health::NEW;
        assert!(h.readable(1, 0) && h.in_service(1, 1));
        assert!(h.fail(1, 1, 7) && !h.fail(1, 1, 7), "lost once");
        assert!(!h.readable(1, 0) && !h.in_service(1, 1));
        assert_eq!(h.missing_at(5, 6), 0b10);
        // Spare record 6 replaces slot 1; the old member stays out.
        assert!(h.begin_rebuild(1, 6) && !h.begin_rebuild(2, 7));
        assert_eq!(h.device(1), 6);
        assert!(!h.in_service(1, 1) && h.in_service(1, 6));
        assert!(!h.readable(1, 0));
        assert!(h.rebuilt(1, 0) && h.rebuilt(1, 1));
        assert!(h.readable(1, 0) && h.readable(1, 1) && !h.readable(1, 2));
        // A late failure of the old member changes nothing.
        assert!(!h.fail(1, 1, 7));
        assert!(h.complete(1));
        assert!(h.readable(1, 1000) && h.lost() == 0 && h.rebuilding().is_none());
        assert_eq!((h.rebuilds.load(Ordering::Relaxed), h.rebuilt_stripes.load(Ordering::Relaxed)), (1, 2));
    }

    #[test]
    fn a_late_failure_of_the_old_member_leaves_the_rebuild_alone() {
        let h = Health::NEW;
        h.fail(1, 1, 7);
        assert!(h.begin_rebuild(1, 6));
        // The old member's I/O fails after the spare took the slot.
        assert!(!h.fail(1, 1, 7));
        assert_eq!(h.rebuilding(), Some((1, 0)));
        assert!(h.in_service(1, 6) && !h.in_service(1, 1));
    }

    #[test]
    fn a_spare_that_fails_stops_its_rebuild() {
        let h = Health::NEW;
        h.fail(4, 4, 7);
        assert!(h.begin_rebuild(4, 7));
        assert!(h.rebuilt(4, 0));
        assert!(h.fail(4, 7, 7), "stops the rebuild");
        assert!(h.rebuilding().is_none() && !h.readable(4, 0));
        assert!(!h.rebuilt(4, 1) && !h.complete(4));
        assert_eq!(h.lost(), 1 << 4);
    }

    #[test]
    fn a_member_that_comes_back_is_rebuilt_in_full_before_it_is_trusted() {
        let h = Health::NEW;
        assert_eq!(h.lost_under(2), None);
        assert!(h.fail(2, 2, 9));
        assert_eq!(h.lost_under(2), Some(9), "the epoch it was lost under");
        // A late failure of the same device records nothing new.
        assert!(!h.fail(2, 2, 10));
        assert_eq!(h.lost_under(2), Some(9));
        // Its controller is back (epoch 10): it is rebuilt like a spare.
        assert!(h.take_return(2, 2));
        assert!(h.begin_rebuild(2, 2));
        assert_eq!(h.device(2), 2);
        assert!(h.in_service(2, 2) && !h.readable(2, 0));
        // It fails again during the rebuild: lost again, under epoch 10.
        assert!(h.fail(2, 2, 10));
        assert_eq!((h.lost_under(2), h.rebuilding()), (Some(10), None));
        assert!(h.may_return(2, 2) && h.take_return(2, 2) && !h.may_return(2, 2) && !h.take_return(2, 2), "two attempts at most");
        assert!(h.begin_rebuild(2, 2));
        assert!(h.rebuilt(2, 0) && h.complete(2));
        assert_eq!((h.lost(), h.lost_under(2)), (0, None));
        // Healthy again: the attempts count starts over.
        assert!(h.take_return(2, 2));
    }
}
