//! The card's local NVMe SSDs (downstream PCIe, `dpu_hal::regs::ssd`):
//! the NVMe host driver's control side.
//!
//! * [`service`]: on the control plane ([`SSD_HART`]), at boot, brings
//!   up every SSD a local namespace uses: controller reset and enable
//!   (NVMe Base 2.0 §3.5.1), Identify Controller / Namespace, Set
//!   Features Number of Queues, then one I/O queue pair per data-plane
//!   core (qid = the core's queue index + 1), polled. It checks the
//!   namespace against the configuration and publishes the result here.
//! * `crate::block::ssd`: in every data-plane reactor, the I/O path on
//!   that core's queue pair (PRPs into staging pages, polled completions).
//!
//! The SSDs move data themselves, peer-to-peer, but only within DPU
//! memory: the host's pages stay the DMA engines' business, so a host I/O
//! bounces through the core's staging pages (`crate::block::staging`).

pub mod service;

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use dpu_hal::memory_map::{SSD_BASE, SSD_SLOTS};

/// The control-plane hart that runs [`service`].
pub const SSD_HART: usize = 4;
/// Mailbox bit that starts [`service`] (rung by the NVMe admin service
/// once the configuration is loaded, only if a namespace is on an SSD).
pub const DOORBELL_SSD: u64 = 1 << 7;

/// Starts the SSD service if a namespace of the configuration is on a
/// local SSD. Without one the service hart never runs: a card without
/// local namespaces behaves (and is timed) as before there were any.
pub fn wake_service() {
    if crate::bootcfg::namespaces().any(|n| matches!(n.backend, crate::bootcfg::Backend::Local { .. })) {
        dpu_hal::mailbox::ring(SSD_HART, DOORBELL_SSD);
    }
}
/// Entries of each data-plane core's I/O queue pair (the staging pool
/// holds 512 pages: 32 I/Os of 128 KiB or more of 4 KiB are in flight).
pub const IO_ENTRIES: u16 = 64;
/// Bytes of one queue pair's memory: the SQ (64-byte entries), then the
/// CQ (16-byte entries), each page aligned.
pub const QP_BYTES: u64 = (IO_ENTRIES as u64 * 64).next_multiple_of(4096) + (IO_ENTRIES as u64 * 16).next_multiple_of(4096);

/// SSD states.
pub const PENDING: u8 = 0;
pub const READY: u8 = 1;
/// Absent or failed to come up: its namespaces fail their I/O.
pub const FAILED: u8 = 2;

/// An SSD as the service publishes it to the data plane.
pub struct SsdInfo {
    state: AtomicU8,
    /// I/O queue pairs created (cores `0..queues` have one).
    queues: AtomicU16,
    /// Entries of each (at most `IO_ENTRIES`: CAP.MQES may be smaller).
    entries: AtomicU16,
    /// Queue pair memory: core q's pair at `base + q * QP_BYTES`.
    base: AtomicU64,
    /// Largest transfer in bytes (Identify Controller MDTS), 0 = no limit.
    max_transfer: AtomicU32,
}

static SSDS: [SsdInfo; SSD_SLOTS] = [const { SsdInfo { state: AtomicU8::new(PENDING), queues: AtomicU16::new(0), entries: AtomicU16::new(0), base: AtomicU64::new(0), max_transfer: AtomicU32::new(0) } }; SSD_SLOTS];

/// BAR0 of SSD `ssd`.
pub fn regs(ssd: usize) -> usize {
    SSD_BASE + ssd * dpu_hal::regs::ssd::WINDOW as usize
}

/// Publishes SSD `ssd` as up with `queues` queue pairs of `entries` at `base`.
pub fn publish_ready(ssd: usize, queues: u16, entries: u16, base: u64, max_transfer: u32) {
    let s = &SSDS[ssd];
    s.queues.store(queues, Ordering::Relaxed);
    s.entries.store(entries, Ordering::Relaxed);
    s.base.store(base, Ordering::Relaxed);
    s.max_transfer.store(max_transfer, Ordering::Relaxed);
    s.state.store(READY, Ordering::Release);
}

pub fn publish_failed(ssd: usize) {
    SSDS[ssd].state.store(FAILED, Ordering::Release);
}

/// The queue pair of data-plane core `core` (its queue index) on SSD
/// `ssd`: (qid, entries, SQ address, CQ address, largest transfer);
/// `None` until the SSD is ready, or if it has no pair for this core.
pub fn queue_pair(ssd: usize, core: usize) -> Option<(u16, u16, u64, u64, u32)> {
    let s = SSDS.get(ssd)?;
    if s.state.load(Ordering::Acquire) != READY || core >= usize::from(s.queues.load(Ordering::Relaxed)) {
        return None;
    }
    let sq = s.base.load(Ordering::Relaxed) + core as u64 * QP_BYTES;
    let cq = sq + (IO_ENTRIES as u64 * 64).next_multiple_of(4096);
    Some((core as u16 + 1, s.entries.load(Ordering::Relaxed), sq, cq, s.max_transfer.load(Ordering::Relaxed)))
}
