//! The erasure-coded volumes a data-plane core knows: the boot
//! configuration's and those made at run time (`bdev_ec_create`,
//! `crate::mgmt::ec`), in one fixed table indexed by volume number.
//!
//! One writer, many readers, no lock and no `unsafe`, as for the
//! target's subsystems (`crate::nvmf::live`): the management server keeps
//! the authoritative list and, after every change, publishes a whole copy
//! of the run-time volumes with [`publish`] (a sequence counter made odd,
//! each volume's words stored in atomics, the counter made even with
//! Release ordering). Each core's EC device checks the counter once per
//! pass ([`newer`]) and copies the publication into its own [`Vols`]
//! between stripe operations ([`Vols::read`], then [`Vols::commit`]); a
//! torn read is taken again at a later pass. The boot volumes are copied
//! in once at start and never change.
//!
//! A deleted volume's index is reused only after the core that repaired
//! it dropped it and put its health back to new ([`dropped`], written by
//! that core, read by the management server).

use crate::bootcfg::{self as config, Backend, EcVolume, MAX_EC_MEMBERS};
use core::sync::atomic::{fence, AtomicU32, Ordering};
use dpu_hal::regs::bootcfg as b;

pub use dpu_bootcfg::MAX_EC_VOLUMES;

/// A volume as the data plane runs it: its definition, its members'
/// block size (log2) and its stripes (the superblock is on the member
/// block after the last one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vol {
    pub def: EcVolume,
    pub shift: u8,
    pub stripes: u64,
    /// One more at every run-time volume the management server makes (0:
    /// a boot volume): a core tells a new volume on a reused index.
    pub generation: u32,
    /// Made just now (`bdev_ec_create`): its members' old contents are
    /// not read; it starts as a new volume (fresh identity, all members
    /// in service) and its superblocks are written.
    pub fresh: bool,
}

impl Vol {
    /// Blocks of the volume (k data fragments per stripe).
    pub fn blocks(&self) -> u64 {
        (self.stripes * u64::from(self.def.k) * b::EC_CHUNK as u64) >> self.shift
    }
}

/// Words of one published volume: flags, k, m, spares, shift; stripes
/// (2); generation; scrub time and period; (controller, nsid) of each
/// member record.
const WORDS: usize = 7 + 2 * MAX_EC_MEMBERS;

static SEQ: AtomicU32 = AtomicU32::new(0);
static WORDS_PUB: [[AtomicU32; WORDS]; MAX_EC_VOLUMES] = [const { [const { AtomicU32::new(0) }; WORDS] }; MAX_EC_VOLUMES];
/// Per index: the generation of the run-time volume its repair core
/// last dropped (0: none).
static DROPPED: [AtomicU32; MAX_EC_VOLUMES] = [const { AtomicU32::new(0) }; MAX_EC_VOLUMES];

fn encode(v: &Option<Vol>, w: &mut [u32; WORDS]) {
    *w = [0; WORDS];
    let Some(v) = v else { return };
    let d = &v.def;
    w[0] = 1 | u32::from(v.fresh) << 1 | u32::from(d.k) << 8 | u32::from(d.m) << 16 | u32::from(d.spares) << 24;
    w[1] = u32::from(v.shift);
    (w[2], w[3]) = (v.stripes as u32, (v.stripes >> 32) as u32);
    w[4] = v.generation;
    (w[5], w[6]) = (d.scrub_at_us, d.scrub_every_ms);
    for (j, &(ctrl, nsid)) in d.members.iter().enumerate() {
        (w[7 + 2 * j], w[8 + 2 * j]) = (u32::from(ctrl), nsid);
    }
}

fn decode(w: &[u32; WORDS]) -> Option<Vol> {
    if w[0] & 1 == 0 {
        return None;
    }
    let mut def = EcVolume { k: (w[0] >> 8) as u8, m: (w[0] >> 16) as u8, members: [(0, 0); MAX_EC_MEMBERS], spares: (w[0] >> 24) as u8, scrub_at_us: w[5], scrub_every_ms: w[6] };
    for (j, m) in def.members.iter_mut().enumerate() {
        *m = (w[7 + 2 * j] as u16, w[8 + 2 * j]);
    }
    Some(Vol { def, shift: w[1] as u8, stripes: u64::from(w[2]) | u64::from(w[3]) << 32, generation: w[4], fresh: w[0] & 2 != 0 })
}

/// Publishes the run-time volumes `t` (the management server only: one
/// writer; boot indices stay `None`).
pub fn publish(t: &[Option<Vol>; MAX_EC_VOLUMES]) {
    let odd = SEQ.load(Ordering::Relaxed).wrapping_add(1) | 1;
    SEQ.store(odd, Ordering::Relaxed);
    fence(Ordering::Release);
    let mut w = [0u32; WORDS];
    for (v, out) in t.iter().zip(WORDS_PUB.iter()) {
        encode(v, &mut w);
        for (x, a) in w.iter().zip(out.iter()) {
            a.store(*x, Ordering::Relaxed);
        }
    }
    SEQ.store(odd.wrapping_add(1), Ordering::Release);
}

/// Whether a publication newer than version `seen` is out.
pub fn newer(seen: u32) -> bool {
    let v = SEQ.load(Ordering::Acquire);
    v != seen && v & 1 == 0
}

/// The generation of the run-time volume last dropped from index `vol`
/// (the management server reuses an index only once its last volume is).
pub fn dropped(vol: usize) -> u32 {
    DROPPED.get(vol).map_or(0, |d| d.load(Ordering::Acquire))
}

/// Index `vol`'s run-time volume of generation `generation` is dropped
/// (its health is new again).
pub fn set_dropped(vol: usize, generation: u32) {
    if let Some(d) = DROPPED.get(vol) {
        d.store(generation, Ordering::Release);
    }
}

/// One core's volumes (in DDR, with the EC device).
pub struct Vols {
    slots: [Option<Vol>; MAX_EC_VOLUMES],
    /// A publication read, not taken yet.
    next: [Option<Vol>; MAX_EC_VOLUMES],
    next_version: u32,
    version: u32,
    /// Indices of boot volumes (never published over).
    boot: u32,
}

impl Vols {
    pub const EMPTY: Vols = Vols { slots: [None; MAX_EC_VOLUMES], next: [None; MAX_EC_VOLUMES], next_version: 0, version: 0, boot: 0 };

    /// The boot configuration's volumes, each with the geometry of the
    /// namespace that uses it (a volume no namespace uses is left out).
    pub fn load_boot(&mut self) {
        for vol in 0..MAX_EC_VOLUMES as u16 {
            let Some(def) = config::ec_volume(vol) else { continue };
            let Some(ns) = config::namespaces().find(|n| n.backend == Backend::Ec { vol }) else { continue };
            let bytes = ns.geometry.blocks << ns.geometry.block_shift;
            let stripes = bytes / (u64::from(def.k) * b::EC_CHUNK as u64);
            self.slots[usize::from(vol)] = Some(Vol { def: *def, shift: ns.geometry.block_shift, stripes, generation: 0, fresh: false });
            self.boot |= 1 << vol;
        }
    }

    /// Volume `vol`.
    pub fn get(&self, vol: u16) -> Option<&Vol> {
        self.slots.get(usize::from(vol))?.as_ref()
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Reads the newest publication; returns the indices whose volume it
    /// changes (bit = index), or `None` if there is none or it was torn
    /// (try again later).
    pub fn read(&mut self) -> Option<u32> {
        let v = SEQ.load(Ordering::Acquire);
        if v == self.version || v & 1 == 1 {
            return None;
        }
        let mut w = [0u32; WORDS];
        for (slot, words) in self.next.iter_mut().zip(WORDS_PUB.iter()) {
            for (x, a) in w.iter_mut().zip(words.iter()) {
                *x = a.load(Ordering::Relaxed);
            }
            *slot = decode(&w);
        }
        fence(Ordering::Acquire);
        if SEQ.load(Ordering::Relaxed) != v {
            return None;
        }
        self.next_version = v;
        let mut changed = 0;
        for i in 0..MAX_EC_VOLUMES {
            if self.boot & 1 << i == 0 && self.next[i].map(|x| x.generation) != self.slots[i].map(|x| x.generation) {
                changed |= 1 << i;
            }
        }
        Some(changed)
    }

    /// The volume index `vol` will hold once [`Vols::commit`] runs.
    pub fn next(&self, vol: usize) -> Option<Vol> {
        *self.next.get(vol)?
    }

    /// Takes the publication [`Vols::read`] read.
    pub fn commit(&mut self) {
        for i in 0..MAX_EC_VOLUMES {
            if self.boot & 1 << i == 0 {
                self.slots[i] = self.next[i];
            }
        }
        self.version = self.next_version;
    }
}
