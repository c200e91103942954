//! NVMe over Fabrics (NVMe/TCP) initiator: remote namespaces as block
//! devices of the emulated controllers (the storage-adapter path).
//!
//! * [`service`]: on the control plane ([`crate::net::NET_HART`]), one
//!   admin queue per remote controller (the boot configuration's and
//!   those attached at run time): connect, enable, identify, keep
//!   alive, reconnect with backoff. It publishes each controller's state
//!   here; namespaces become ready when their remote geometry matches.
//! * [`initiator`]: in every data-plane reactor, one I/O queue per remote
//!   controller (qid = the core's queue index + 1) and the I/O path:
//!   commands from the NVMe engine become capsules; read data moves by
//!   DMA straight from the socket buffer into host memory; write data is
//!   staged by DMA, then sent in the capsule or as H2CData after R2T.
//! * [`conn`]: one queue's TCP connection and protocol state.
//! * [`target`]: the other direction, in every data-plane reactor: the
//!   card's namespaces served to remote hosts over NVMe/TCP.
//! * [`live`]: the target's subsystems made at run time, published by
//!   the management server to every core's target.
//! * [`ctrls`]: remote controllers attached at run time
//!   (`bdev_nvme_attach_controller`), published by the service to every
//!   core's initiator.
//! * [`quiesce`]: every connection closed in order before a warm restart.

pub mod conn;
pub mod ctrls;
pub mod initiator;
pub mod live;
pub mod quiesce;
pub mod service;
pub mod target;

use crate::bootcfg::MAX_CTRLS;
use core::sync::atomic::{AtomicU32, Ordering};

/// A remote controller as the service publishes it to the data plane.
pub struct CtrlInfo {
    /// Bits 31:1 generation (bumped on every new association), bit 0 up.
    state: AtomicU32,
    /// Bits 15:0 CNTLID; bits 31:16 in-capsule data bytes / 16.
    id: AtomicU32,
    /// Largest transfer in bytes (MDTS), 0 = no limit.
    max_transfer: AtomicU32,
    /// I/O queues the controller granted (Set Features Number of Queues).
    queues: AtomicU32,
}

impl CtrlInfo {
    const fn new() -> CtrlInfo {
        CtrlInfo { state: AtomicU32::new(0), id: AtomicU32::new(0), max_transfer: AtomicU32::new(0), queues: AtomicU32::new(0) }
    }
}

pub static CTRLS: [CtrlInfo; MAX_CTRLS] = [const { CtrlInfo::new() }; MAX_CTRLS];

/// A snapshot of a published controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct Published {
    pub generation: u32,
    pub up: bool,
    pub cntlid: u16,
    pub inline: u32,
    pub max_transfer: u32,
    /// I/O queues granted: data-plane cores with a queue index below it
    /// connect an I/O queue (qid = index + 1); the others do not.
    pub queues: u32,
}

/// Publishes controller `i` as up with a new generation.
pub fn publish_up(i: usize, cntlid: u16, inline: u32, max_transfer: u32, queues: u32) {
    let c = &CTRLS[i];
    c.id.store(u32::from(cntlid) | (inline / 16).min(0xffff) << 16, Ordering::Relaxed);
    c.max_transfer.store(max_transfer, Ordering::Relaxed);
    c.queues.store(queues, Ordering::Relaxed);
    let g = (c.state.load(Ordering::Relaxed) >> 1).wrapping_add(1);
    c.state.store(g << 1 | 1, Ordering::Release);
}

/// Publishes controller `i` as down (its association is gone).
pub fn publish_down(i: usize) {
    let c = &CTRLS[i];
    let s = c.state.load(Ordering::Relaxed);
    c.state.store(s & !1, Ordering::Release);
}

/// Controller `i`'s published state word (generation and up): it
/// changes with every publication that matters to an I/O queue.
pub fn published_state(i: usize) -> u32 {
    CTRLS[i].state.load(Ordering::Acquire)
}

pub fn published(i: usize) -> Published {
    let c = &CTRLS[i];
    let s = c.state.load(Ordering::Acquire);
    let id = c.id.load(Ordering::Relaxed);
    Published {
        generation: s >> 1,
        up: s & 1 != 0,
        cntlid: id as u16,
        inline: (id >> 16) * 16,
        max_transfer: c.max_transfer.load(Ordering::Relaxed),
        queues: c.queues.load(Ordering::Relaxed),
    }
}

/// A command cancelled while the target holds it (host Abort, queue
/// deletion, controller reset) is given this long to be answered before
/// its queue's association is torn down to free it (mtime ticks: 2 ms).
pub const CANCEL_GRACE_TICKS: u64 = 2 * dpu_hal::memory_map::TIMEBASE_HZ / 1000;

/// Times a command is sent again after its association was torn down
/// before it fails (Linux: `nvme_max_retries`, 5).
pub const MAX_TRIES: u8 = 5;

/// Outstanding I/O waits at most this long for its queue to come back
/// before it fails with a path error (mtime ticks: 5 s, enough for a
/// target restart or a link flap plus reconnect backoff).
pub const IO_RETRY_TICKS: u64 = 5 * dpu_hal::memory_map::TIMEBASE_HZ;

/// Doorbell bit: a controller's published state changed (or the
/// target's live subsystems, [`live`]).
pub const DOORBELL_NVMF: u64 = 1 << 6;
