//! The superblocks of erasure-coded volumes (format and start rule in
//! `dpu_bdev::ec_super`, after Linux md's `events` counter): read at
//! volume start and rewritten after every change of the volume's health,
//! by the core that repairs the volume (`repair`), one operation at a
//! time.
//!
//! * Start: once every member's controller is up (or [`START_WAIT_TICKS`]
//!   after the core first looked, once at least k are: until then I/O
//!   is refused as for more than m lost members), the superblock
//!   block of every reachable member and spare is read (member byte
//!   stripes x 4 KiB, after the last stripe). `ec_super::assemble` says
//!   which device serves each slot; untrusted slots start lost
//!   (`Health::start`), and their devices go through the rebuild of a
//!   member that came back (or a spare takes the slot). Blank everywhere:
//!   a new volume with a random nonce. A volume made at run time
//!   (`bdev_ec_create`, `live::Vol::fresh`) skips the reads: it is new
//!   whatever its members hold. Then the first update is written;
//!   until it is on the media the volume takes no I/O.
//! * Update (`Health::unrecorded`: a slot lost, a device taking a slot,
//!   a rebuild complete): `events` + 1 and the slots lost now go to every
//!   device in service. Host writes that complete while a slot is lost
//!   wait until an update listing it is on the media
//!   (`Health::durable`, checked in `Ec::finish`), as md holds writes
//!   while `MD_SB_CHANGE_PENDING`; reads go on. A device whose update
//!   fails (or stays unanswered for `MEMBER_TIMEOUT_TICKS`) is lost, and
//!   the next update lists it.
//!
//! The superblock is metadata: the core writes its 64 bytes into a
//! staging page (and zeroes the rest of the block); the DMA engine's
//! CRC32C seals it (on the core only if the engine is busy).

use super::{health, mark_failed, Ec, CHUNK, LOWER, MEMBER_TIMEOUT_TICKS, NCTX};
use crate::bootcfg::EcVolume;
use crate::block::staging::{Pages, Pool};
use crate::block::{Data, Io, Op, Tag};
use crate::nvmf::initiator::Fabric;
use dpu_bdev::ec_super::{self, Found, Start, Superblock, Untrusted, SB_BYTES};
use dpu_hal::dma::Channel;
use dpu_hal::memory_map::TIMEBASE_HZ;

/// The member-I/O tag context of superblock I/O (after the contexts):
/// tag `LOWER | SB << 5 | device`.
pub(super) const SB: usize = NCTX;
const _: () = assert!((LOWER as usize | SB << 5 | 31) < 0x8000);
/// How long a volume waits at start for all its members' controllers
/// before it starts with those that are up (mtime ticks: 500 ms).
pub const START_WAIT_TICKS: u64 = TIMEBASE_HZ / 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Superblocks being read (volume start).
    Read,
    /// An update being written.
    Write,
}

/// The superblock work of a repair core.
#[derive(Clone, Copy)]
pub(super) struct Sb {
    phase: Phase,
    vol: u16,
    /// Volumes whose superblocks were read (bit = volume).
    read: u32,
    /// Devices sent an I/O, those with one in flight, those cancelled
    /// (late), those whose I/O failed.
    sent: u32,
    out: u32,
    cancelled: u32,
    failed: u32,
    sent_at: u64,
    /// Page d: device d's superblock block.
    pages: Pages,
    /// The slot each written device serves.
    slot_of: [u8; 32],
    /// The update in flight: changes it covers, slots it lists lost, its
    /// events.
    changes: u32,
    lost: u32,
    events: u64,
    /// When this core first looked at its volumes (start wait).
    since: u64,
}

impl Sb {
    pub const IDLE: Sb = Sb { phase: Phase::Idle, vol: 0, read: 0, sent: 0, out: 0, cancelled: 0, failed: 0, sent_at: 0, pages: Pages::NONE, slot_of: [0; 32], changes: 0, lost: 0, events: 0, since: u64::MAX };

    /// No superblock operation is running.
    pub fn idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// The volume of the running operation.
    pub fn vol(&self) -> u16 {
        self.vol
    }

    /// Volume `vol` is gone or new: its superblocks are read again
    /// before it takes I/O.
    pub fn forget(&mut self, vol: usize) {
        self.read &= !(1u32.checked_shl(vol as u32).unwrap_or(0));
    }

    /// When the core needs a pass: an I/O in flight times out.
    pub fn deadline(&self) -> u64 {
        if self.out & !self.cancelled != 0 {
            self.sent_at + MEMBER_TIMEOUT_TICKS + 1
        } else {
            u64::MAX
        }
    }
}

/// The CRC32C of a superblock's covered bytes in staging page `page`: the
/// DMA engine's, or the core's while the engine is busy.
fn crc_of(pool: &Pool, page: u16) -> u32 {
    let at = pool.addr(page);
    dpu_rt::copy::crc32c(0, at as usize, 60).unwrap_or_else(|| dpu_nvme_tcp::digest::crc32c(&pool.bytes(page, 60)[..60]))
}

impl Ec {
    /// Superblock work of the volumes this core repairs: a volume start,
    /// or an update after a change. Returns the work done.
    pub(super) fn sb_poll(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric) -> usize {
        if self.sb.phase != Phase::Idle {
            return 0;
        }
        let now = dpu_hal::csr::time();
        if self.sb.since == u64::MAX {
            self.sb.since = now;
        }
        for vol in 0..dpu_bootcfg::MAX_EC_VOLUMES as u16 {
            if self.repair.vols & 1 << vol == 0 {
                continue;
            }
            let Some(x) = self.vols.get(vol).copied() else { continue };
            let v = &x.def;
            let h = health(vol);
            if self.sb.read & 1 << vol == 0 {
                // Not read yet: once every member is up, or after the wait
                // once k are (with fewer no stripe can be read: I/O is
                // refused meanwhile, and the start waits for them).
                let up = (0..v.width()).filter(|&d| crate::nvmf::published(usize::from(v.members[d].0)).up).count();
                match ec_super::when_to_start(up, v.width(), usize::from(v.k), now >= self.sb.since + START_WAIT_TICKS) {
                    Start::Wait => continue,
                    Start::Refuse => {
                        if !h.unavailable() {
                            h.set_unavailable(true);
                            defmt::error!("ec: volume {=u16}: {=usize} of {=usize} members reachable after the start wait, fewer than k = {=u8}: I/O is refused until k are", vol, up, v.width(), v.k);
                        }
                        continue;
                    }
                    // A volume made just now: nothing on its members is
                    // its own (they may hold an old volume's superblocks).
                    Start::Read if x.fresh => return usize::from(self.sb_fresh(chan, pool, fab, vol, v)),
                    Start::Read => return usize::from(self.sb_read(chan, pool, fab, vol, v)),
                }
            }
            if h.unrecorded() || !h.started() {
                return usize::from(self.sb_write(chan, pool, fab, vol, v));
            }
        }
        0
    }

    /// Whether superblock work may be due (the core looks soon).
    pub(super) fn sb_pending(&self) -> bool {
        self.sb.phase == Phase::Idle
            && (0..dpu_bootcfg::MAX_EC_VOLUMES as u16).any(|vol| self.sb.read & 1 << vol != 0 && (health(vol).unrecorded() || !health(vol).started()))
    }

    /// A volume made at run time (`bdev_ec_create`) starts new: a fresh
    /// identity, every member in service, whatever its members held; the
    /// first update (events 1) is written to all of them.
    fn sb_fresh(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, vol: u16, v: &EcVolume) -> bool {
        let width = v.width();
        let h = health(vol);
        let serve: [Option<u8>; ec_super::MAX_DEVICES] = core::array::from_fn(|s| Some(s as u8));
        let nonce = crate::random::u64_or(dpu_hal::csr::time() ^ 0x6563_7362 ^ u64::from(vol) << 48, "an EC volume's identity");
        h.nonce.store(nonce, core::sync::atomic::Ordering::Release);
        h.events.store(0, core::sync::atomic::Ordering::Release);
        h.start(0, &serve[..width.min(ec_super::MAX_DEVICES)], width);
        defmt::info!("ec: volume {=u16}: new volume (made at run time): identity {=u64:#018x}, writing superblocks (events 1)", vol, nonce);
        self.sb.read |= 1 << vol;
        self.sb_write(chan, pool, fab, vol, v)
    }

    /// Volume start: reads the superblock of every reachable device.
    fn sb_read(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, vol: u16, v: &EcVolume) -> bool {
        let n = v.width() + usize::from(v.spares);
        let Some((shift, stripes)) = self.vols.get(vol).map(|x| (x.shift, x.stripes)) else { return false };
        if fab.free_slots() < n || pool.available() < n + 8 {
            return false;
        }
        let Some(pages) = pool.alloc(n * CHUNK) else { return false };
        let s = &mut self.sb;
        (s.phase, s.vol, s.pages, s.sent, s.out, s.cancelled, s.failed, s.sent_at) = (Phase::Read, vol, pages, 0, 0, 0, 0, dpu_hal::csr::time());
        for d in 0..n {
            let (ctrl, nsid) = v.members[d];
            if !crate::nvmf::published(usize::from(ctrl)).up {
                continue;
            }
            self.sb.out |= 1 << d;
            self.sb.sent |= 1 << d;
            let page = pages.single(d);
            let blocks = (CHUNK >> shift) as u32;
            let io = Io { op: Op::Read, lba: stripes * u64::from(blocks), blocks, len: CHUNK as u32, data: Data::Staged(&page) };
            fab.submit(chan, pool, LOWER | (SB as Tag) << 5 | d as Tag, ctrl, nsid, &io);
        }
        if self.sb.out == 0 {
            self.sb_over(chan, pool, fab);
        }
        true
    }

    /// An update: `events` + 1 and the slots lost now, to every device
    /// in service.
    fn sb_write(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, vol: u16, v: &EcVolume) -> bool {
        let width = v.width();
        let n = width + usize::from(v.spares);
        let Some((shift, stripes)) = self.vols.get(vol).map(|x| (x.shift, x.stripes)) else { return false };
        if fab.free_slots() < width || pool.available() < n + 8 {
            return false;
        }
        let Some(pages) = pool.alloc(n * CHUNK) else { return false };
        let h = health(vol);
        // The changes first: the lost slots read after them include
        // every loss they count.
        let changes = h.changes();
        let lost = h.lost();
        h.recording(lost);
        let events = h.events.load(core::sync::atomic::Ordering::Acquire) + 1;
        let nonce = h.nonce.load(core::sync::atomic::Ordering::Acquire);
        let s = &mut self.sb;
        (s.phase, s.vol, s.pages, s.sent, s.out, s.cancelled, s.failed, s.sent_at) = (Phase::Write, vol, pages, 0, 0, 0, 0, dpu_hal::csr::time());
        (s.changes, s.lost, s.events) = (changes, lost, events);
        let blocks = (CHUNK >> shift) as u32;
        for slot in 0..width {
            let dev = h.device(slot);
            if dev >= n || !h.in_service(slot, dev) {
                continue;
            }
            let page = pages.page(dev);
            let mut b = [0u8; SB_BYTES];
            Superblock { k: v.k, m: v.m, volume: vol, slot: slot as u8, nonce, events, lost }.encode(&mut b);
            let buf = pool.bytes_mut(page);
            buf.fill(0);
            buf[..SB_BYTES].copy_from_slice(&b);
            let crc = crc_of(pool, page);
            let buf = pool.bytes_mut(page);
            buf[60..64].copy_from_slice(&crc.to_le_bytes());
            self.sb.out |= 1 << dev;
            self.sb.slot_of[dev] = slot as u8;
            let (ctrl, nsid) = v.members[dev];
            let io = Io { op: Op::Write, lba: stripes * u64::from(blocks), blocks, len: CHUNK as u32, data: Data::Staged(&pages.single(dev)) };
            fab.submit(chan, pool, LOWER | (SB as Tag) << 5 | dev as Tag, ctrl, nsid, &io);
        }
        if self.sb.out == 0 {
            self.sb_over(chan, pool, fab);
        }
        true
    }

    /// Superblock I/O to device `dev` finished with `st`.
    pub(super) fn sb_done(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric, dev: usize, st: dpu_nvme::Status) {
        if self.sb.out & 1 << dev == 0 {
            return;
        }
        self.sb.out &= !(1 << dev);
        if !st.is_success() {
            self.sb.failed |= 1 << dev;
            // (LBA Out of Range, 0x80: a member with no room after the
            // last stripe, e.g. a volume sized before superblocks.)
            let what = if self.sb.phase == Phase::Read { "read" } else { "write" };
            defmt::warn!("ec: volume {=u16}: superblock {=str} of device {=usize} failed (status {=u16:#x})", self.sb.vol, what, dev, st.field());
        }
        if self.sb.out == 0 {
            self.sb_over(chan, pool, fab);
        }
    }

    /// Superblock I/Os unanswered too long: their tags, to cancel.
    pub(super) fn sb_expired(&mut self, now: u64, out: &mut [Tag]) -> usize {
        let pending = self.sb.out & !self.sb.cancelled;
        if pending == 0 || now.saturating_sub(self.sb.sent_at) <= MEMBER_TIMEOUT_TICKS {
            return 0;
        }
        let mut n = 0;
        for d in 0..32 {
            if pending & 1 << d != 0 && n < out.len() {
                self.sb.cancelled |= 1 << d;
                out[n] = LOWER | (SB as Tag) << 5 | d as Tag;
                n += 1;
            }
        }
        n
    }

    /// Every I/O of the operation answered: decide (start) or record
    /// (update).
    fn sb_over(&mut self, chan: &mut Channel, pool: &mut Pool, fab: &mut Fabric) {
        let s = self.sb;
        let vol = s.vol;
        let h = health(vol);
        let Some(v) = self.vols.get(vol).map(|x| x.def) else { return };
        let width = v.width();
        match s.phase {
            Phase::Idle => {}
            Phase::Read => {
                let n = width + usize::from(v.spares);
                let mut found = [Found::Unreachable; ec_super::MAX_DEVICES];
                for (d, f) in found.iter_mut().enumerate().take(n) {
                    // Unreachable: not up when the reads went out, or the
                    // read failed (or timed out).
                    if s.sent & 1 << d == 0 || s.failed & 1 << d != 0 {
                        continue;
                    }
                    let page = s.pages.page(d);
                    let mut b = [0u8; SB_BYTES];
                    b.copy_from_slice(&pool.bytes(page, SB_BYTES)[..SB_BYTES]);
                    *f = Superblock::parse(&b, crc_of(pool, page));
                }
                let a = ec_super::assemble(v.k, v.m, vol, &found[..n]);
                let lost = a.lost(width);
                let nonce = if a.new { crate::random::u64_or(dpu_hal::csr::time() ^ 0x6563_7362 ^ u64::from(vol) << 48, "an EC volume's identity") } else { a.nonce };
                h.nonce.store(nonce, core::sync::atomic::Ordering::Release);
                h.events.store(a.events, core::sync::atomic::Ordering::Release);
                h.start(lost, &a.serve, width);
                if a.new {
                    defmt::info!("ec: volume {=u16}: new volume: no superblock on any member; identity {=u64:#018x}, writing superblocks (events 1)", vol, nonce);
                } else {
                    defmt::info!("ec: volume {=u16}: superblocks read: events {=u64}, identity {=u64:#018x}; {=u32} of {=usize} members trusted", vol, a.events, nonce, width as u32 - lost.count_ones(), width);
                }
                for slot in 0..width {
                    if let Some(d) = a.serve[slot].filter(|&d| usize::from(d) >= width) {
                        defmt::info!("ec: volume {=u16}: member {=usize} is served by spare {=usize} (its superblock)", vol, slot, usize::from(d) - width);
                    }
                    let Some(why) = a.why[slot] else { continue };
                    match why {
                        Untrusted::Unreachable => defmt::warn!("ec: volume {=u16}: member {=usize} unreachable at start: lost, rebuilt before it is trusted", vol, slot),
                        Untrusted::Blank => defmt::warn!("ec: volume {=u16}: member {=usize} has no superblock: lost, rebuilt before it is trusted", vol, slot),
                        Untrusted::Invalid => defmt::warn!("ec: volume {=u16}: member {=usize} has a damaged superblock: lost, rebuilt before it is trusted", vol, slot),
                        Untrusted::Foreign => defmt::warn!("ec: volume {=u16}: member {=usize} has another volume's superblock: lost, rebuilt before it is trusted", vol, slot),
                        Untrusted::Stale { events } => defmt::warn!("ec: volume {=u16}: member {=usize} is stale (superblock events {=u64}, the volume's {=u64}): lost, rebuilt before it is trusted", vol, slot, events, a.events),
                        Untrusted::ListedLost => defmt::warn!("ec: volume {=u16}: member {=usize} is stale (lost as of events {=u64}): lost, rebuilt before it is trusted", vol, slot, a.events),
                    }
                }
                if lost.count_ones() > u32::from(v.m) {
                    defmt::error!("ec: volume {=u16}: members {=u32:#b} untrusted at start, more than m = {=u8}: I/O that needs them fails", vol, lost, v.m);
                }
                let mut p = s.pages;
                pool.free(&mut p);
                self.sb.phase = Phase::Idle;
                self.sb.read |= 1 << vol;
                // The first update: the volume takes I/O once it is on the media.
                self.sb_write(chan, pool, fab, vol, &v);
            }
            Phase::Write => {
                let first = !h.started();
                for dev in 0..32 {
                    if s.failed & 1 << dev != 0 {
                        mark_failed(Some(&v), vol, usize::from(s.slot_of[dev]), dev, "superblock write failed");
                    }
                }
                h.recorded(s.changes, s.lost, s.events);
                h.set_unavailable(false);
                if first {
                    defmt::info!("ec: volume {=u16}: started at events {=u64}; members lost {=u32:#b}", vol, s.events, s.lost);
                } else {
                    defmt::info!("ec: volume {=u16}: superblocks updated: events {=u64}, members lost {=u32:#b}", vol, s.events, s.lost);
                }
                let mut p = s.pages;
                pool.free(&mut p);
                self.sb.phase = Phase::Idle;
            }
        }
    }
}
