//! Per-block-device I/O statistics (SPDK `bdev_get_iostat`), counted by
//! the data-plane core that completes each host command.
//!
//! Each data-plane core owns one [`Block`] of counters, allocated when
//! its NVMe engine gets its first queue ([`start`]) and published in
//! [`BLOCKS`]. The core is the block's only writer: a completion is a
//! plain load and store per counter (no atomic read-modify-write, no
//! lock, no cache line another core writes), a few instructions per I/O.
//! The management server (control plane) reads the blocks of every core
//! and sums them ([`sum`]) when asked. It reads rather than asking each
//! core by message (SPDK's `for_each_channel`): a read costs the data
//! plane nothing and needs no answer from 64 cores, and 64-bit stores
//! are single-copy atomic on RV64, so a value read is one a core wrote
//! (the sum is a moment's snapshot, at most a few I/Os behind).
//!
//! Slots: a boot namespace counts in the slot of its index, a block
//! device made at run time in `MAX_NAMESPACES` + its management slot
//! (`dpu_bootcfg::Namespace::stat`); a device's first mapping clears its
//! slot on every core ([`Writer::clear`]), so counts follow the device.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use dpu_bootcfg::live::MAX_LIVE;
use dpu_bootcfg::MAX_NAMESPACES;
use dpu_hal::memory_map::HARTS;

/// Statistics slots: the boot namespaces, then the run-time devices.
pub const SLOTS: usize = MAX_NAMESPACES + MAX_LIVE;

/// What a counted I/O was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read = 0,
    Write = 1,
    /// Dataset Management with Deallocate (NVMe Base 2.0 §3.3.3.2).
    Unmap = 2,
}

/// One kind's counters: operations, bytes, latency ticks (total and
/// max; `mtime` ticks from submission to the block layer to completion).
/// No minimum: it would cost every I/O another load, compare and store
/// (SPDK's `min_*_latency_ticks` are not reported).
#[repr(C)]
struct Op {
    ops: AtomicU64,
    bytes: AtomicU64,
    ticks: AtomicU64,
    max: AtomicU64,
}

impl Op {
    const INIT: Op = Op { ops: AtomicU64::new(0), bytes: AtomicU64::new(0), ticks: AtomicU64::new(0), max: AtomicU64::new(0) };
}

/// One device's counters on one core.
#[repr(C)]
struct Slot([Op; 3]);

/// One core's counters.
pub struct Block {
    slots: [Slot; SLOTS],
}

impl dpu_rt::ConstInit for Block {
    const INIT: Block = Block { slots: [const { Slot([Op::INIT, Op::INIT, Op::INIT]) }; SLOTS] };
}

/// Each hart's block (unset: no NVMe engine on it).
static BLOCKS: [spin::Once<&'static Block>; HARTS] = [const { spin::Once::new() }; HARTS];

/// Where a core without a block of its own counts (before [`start`], or
/// if memory ran out): never read, so its counts are lost, and no branch
/// on the I/O path asks whether there is a block.
static NOWHERE: Block = <Block as dpu_rt::ConstInit>::INIT;

/// The counting end of one core's block.
#[derive(Clone, Copy)]
pub struct Writer {
    block: &'static Block,
}

impl Writer {
    /// Counts nowhere (before [`start`]).
    pub const NONE: Writer = Writer { block: &NOWHERE };

    pub fn started(&self) -> bool {
        !core::ptr::eq(self.block, &NOWHERE)
    }

    /// Counts one completed I/O of `kind` in slot `stat`: `bytes` moved,
    /// `ticks` from submission to completion.
    #[inline(always)]
    pub fn count(&self, stat: u16, kind: Kind, bytes: u32, ticks: u64) {
        let Some(s) = self.block.slots.get(usize::from(stat)) else { return };
        let o = &s.0[kind as usize];
        // Single writer: load and store, no read-modify-write.
        o.ops.store(o.ops.load(Relaxed) + 1, Relaxed);
        o.bytes.store(o.bytes.load(Relaxed) + u64::from(bytes), Relaxed);
        o.ticks.store(o.ticks.load(Relaxed) + ticks, Relaxed);
        if ticks > o.max.load(Relaxed) {
            o.max.store(ticks, Relaxed);
        }
    }

    /// Zeroes slot `stat` (a run-time device's first mapping).
    pub fn clear(&self, stat: u16) {
        let Some(s) = self.block.slots.get(usize::from(stat)) else { return };
        for o in &s.0 {
            for c in [&o.ops, &o.bytes, &o.ticks, &o.max] {
                c.store(0, Relaxed);
            }
        }
    }
}

/// Allocates the calling hart's block (in DDR) and publishes it; `None` if memory ran out (its I/O is then not
/// counted).
pub fn start(hart: usize) -> Option<Writer> {
    let once = BLOCKS.get(hart)?;
    // In DDR (behind the core's L1): the core's SMEM arena is for its
    // rings and buffers, some of which are allocated after this.
    let b: &'static Block = once.try_call_once(|| dpu_rt::alloc::ddr_static::<Block>().map(|b| &*b).ok_or(())).ok()?;
    Some(Writer { block: b })
}

/// One kind's totals over every core.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpTotals {
    pub ops: u64,
    pub bytes: u64,
    pub ticks: u64,
    pub max: u64,
}

/// A device's totals: indexed by [`Kind`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals(pub [OpTotals; 3]);

impl Totals {
    pub fn get(&self, k: Kind) -> &OpTotals {
        &self.0[k as usize]
    }
}

/// Slot `stat` summed over every core's block (control plane).
pub fn sum(stat: u16) -> Totals {
    let mut t = Totals::default();
    for b in BLOCKS.iter().filter_map(|o| o.get()) {
        let Some(s) = b.slots.get(usize::from(stat)) else { return t };
        for (k, o) in s.0.iter().enumerate() {
            let x = &mut t.0[k];
            x.ops += o.ops.load(Relaxed);
            x.bytes += o.bytes.load(Relaxed);
            x.ticks += o.ticks.load(Relaxed);
            x.max = x.max.max(o.max.load(Relaxed));
        }
    }
    t
}
