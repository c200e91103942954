//! The NVMe/TCP target's subsystems made at run time, published from the
//! management server to every data-plane core's target
//! (`dpu_bootcfg::live_target` holds what a subsystem is and its
//! encoding; this module the publication).
//!
//! One writer, many readers, no lock and no `unsafe`: the management
//! server ([`crate::mgmt::nvmf`], on the network service's hart) keeps
//! the authoritative [`Table`] and, after every change, publishes a
//! whole copy with [`publish`]: a sequence counter made odd, the
//! subsystems' encodings stored word by word in atomics, the counter
//! made even with Release ordering (a seqlock). Each data-plane core's
//! target checks the counter once per pass ([`newer`]: one Acquire
//! load) and, when it moved, copies the table into its own [`Table`]
//! ([`refresh`]) and checks that the counter did not move meanwhile; if
//! it did, it tries again at its next pass. A core only ever reads its
//! own copy, between commands: a change lands whole, never half.

pub use dpu_bootcfg::live_target::{Listener, RamNs, Scratch, Subsys, Table, Text, LIVE_BASE, MAX_LISTENERS, MAX_LIVE, MODEL_MAX, NQN_MAX, SERIAL_MAX};
use core::sync::atomic::{fence, AtomicU32, Ordering};
use dpu_bootcfg::live_target::{decode, encode, WORDS};

// ------------------------------------------------------------ publication

/// Sequence: odd while a publication is being written.
static SEQ: AtomicU32 = AtomicU32::new(0);
static WORDS_PUB: [[AtomicU32; WORDS]; MAX_LIVE] = [const { [const { AtomicU32::new(0) }; WORDS] }; MAX_LIVE];

/// Publishes `t` to every core's target (the management server only:
/// one writer). Returns the new version.
pub fn publish(t: &Table, scratch: &mut Scratch) -> u32 {
    let s = SEQ.load(Ordering::Relaxed);
    let odd = s.wrapping_add(1) | 1;
    SEQ.store(odd, Ordering::Relaxed);
    fence(Ordering::Release);
    for (k, sub) in t.subsys.iter().enumerate() {
        match sub {
            Some(sub) => encode(sub, scratch),
            None => scratch.fill(0),
        }
        for (w, c) in WORDS_PUB[k].iter().zip(scratch.chunks_exact(4)) {
            w.store(u32::from_le_bytes([c[0], c[1], c[2], c[3]]), Ordering::Relaxed);
        }
    }
    let v = odd.wrapping_add(1);
    SEQ.store(v, Ordering::Release);
    v
}

/// Whether a publication newer than `t` is out (one Acquire load).
pub fn newer(t: &Table) -> bool {
    let v = SEQ.load(Ordering::Acquire);
    v != t.version && v & 1 == 0
}

/// Brings `t` up to the newest publication, read into `next` first (both
/// in DDR: a table is too big for a stack); true if it changed. A
/// publication being written meanwhile is taken at a later call.
pub fn refresh(t: &mut Table, next: &mut Table, scratch: &mut Scratch) -> bool {
    let v = SEQ.load(Ordering::Acquire);
    if v == t.version || v & 1 == 1 {
        return false;
    }
    for (k, sub) in next.subsys.iter_mut().enumerate() {
        for (w, c) in WORDS_PUB[k].iter().zip(scratch.chunks_exact_mut(4)) {
            c.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        decode(scratch, sub);
    }
    fence(Ordering::Acquire);
    if SEQ.load(Ordering::Relaxed) != v {
        return false;
    }
    next.version = v;
    t.clone_from(next);
    true
}
