//! Erasure-coding engine driver (layout: [`crate::regs::ec`]): the calling
//! hart's queue on the engine and its descriptors, encode (k data
//! fragments -> m parity fragments) and reconstruct (any k present
//! fragments -> the missing ones). Fragments are in DPU memory; the
//! engine reads a table of their addresses, so the caller keeps that
//! table (8-byte aligned, k + m u64) alive until the chain completes.

use crate::accel::Queue;
use crate::dma::Completion;
use crate::memory_map::{EC_BASE, EC_QUEUES};
use crate::regs::{ec as r, queue as q};
use crate::mmio;

/// One erasure-coding descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// DPU address of the fragment address table (k + m u64).
    pub frags: u64,
    /// Bytes per fragment (a multiple of 8).
    pub len: u32,
    pub k: u8,
    pub m: u8,
    pub op: u8,
    /// `regs::queue::FLAG_END` closes a chain (set by the queue's push).
    pub flags: u8,
    /// Reconstruct: bit i = fragment i holds valid data.
    pub present: u64,
    /// Reconstruct: bit i = write fragment i.
    pub rebuild: u64,
    pub cookie: u32,
}

const _: () = assert!(r::DESC_FRAGS == 0 && r::DESC_LEN == 8 && r::DESC_K == 12 && r::DESC_M == 13 && r::DESC_OP == 14 && r::DESC_FLAGS == 15);
const _: () = assert!(r::DESC_PRESENT == 16 && r::DESC_REBUILD == 24 && r::DESC_COOKIE == 32);

impl Desc {
    /// Encode: read data fragments 0..k, write parity fragments k..k+m.
    pub fn encode(frags: u64, len: u32, k: u8, m: u8, cookie: u32) -> Desc {
        Desc { frags, len, k, m, op: r::OP_ENCODE, flags: 0, present: 0, rebuild: 0, cookie }
    }

    /// Reconstruct the fragments in `rebuild` from `present` (at least k).
    pub fn reconstruct(frags: u64, len: u32, k: u8, m: u8, present: u64, rebuild: u64, cookie: u32) -> Desc {
        Desc { frags, len, k, m, op: r::OP_RECONSTRUCT, flags: 0, present, rebuild, cookie }
    }

    /// Fragments the descriptor writes.
    pub fn outputs(&self) -> u32 {
        match self.op {
            r::OP_ENCODE => u32::from(self.m),
            _ => self.rebuild.count_ones(),
        }
    }

    /// The descriptor as the engine reads it (layout `regs::ec`, checked
    /// above), `FLAG_END` added when `end`.
    pub fn words(&self, end: bool) -> [u64; 8] {
        let flags = self.flags | if end { r::FLAG_END } else { 0 };
        [
            self.frags,
            u64::from(self.len) | u64::from(self.k) << 32 | u64::from(self.m) << 40 | u64::from(self.op) << 48 | u64::from(flags) << 56,
            self.present,
            self.rebuild,
            u64::from(self.cookie),
            0,
            0,
            0,
        ]
    }

    /// The descriptor in `w` (the inverse of [`Desc::words`]).
    pub fn from_words(w: &[u64; 8]) -> Desc {
        Desc {
            frags: w[0],
            len: w[1] as u32,
            k: (w[1] >> 32) as u8,
            m: (w[1] >> 40) as u8,
            op: (w[1] >> 48) as u8,
            flags: (w[1] >> 56) as u8,
            present: w[2],
            rebuild: w[3],
            cookie: w[4] as u32,
        }
    }

    /// The descriptor in ring bytes `b` (`regs::queue::DESC_SIZE`).
    pub fn from_bytes(b: &[u8; crate::regs::queue::DESC_SIZE]) -> Desc {
        Desc::from_words(&crate::dma::le_words(b))
    }

    pub fn to_bytes(&self) -> [u8; crate::regs::queue::DESC_SIZE] {
        crate::dma::le_bytes(&self.words(false))
    }
}

/// The calling hart's queue on the erasure-coding engine.
pub struct Engine {
    queue: Option<Queue>,
}

impl Engine {
    pub const NONE: Engine = Engine { queue: None };

    /// Bytes of DPU memory `start` needs for a ring of `size` entries.
    pub const fn memory(size: u32) -> usize {
        Queue::memory(size)
    }

    /// Starts queue `hart` with its rings at `mem_addr` (64-byte aligned,
    /// `memory(size)` bytes, `size` a power of two); completions ring
    /// `hart`'s mailbox with `regs::ec::MAILBOX_BIT`. False if the hart
    /// has no queue or the engine refused the configuration.
    pub fn start(&mut self, hart: usize, mem_addr: usize, size: u32) -> bool {
        if hart >= EC_QUEUES {
            return false;
        }
        let regs = EC_BASE + r::QUEUES as usize + hart * q::SIZE as usize;
        let qu = Queue::start(regs, mem_addr, size, Some(hart));
        if !qu.running() {
            return false;
        }
        self.queue = Some(qu);
        true
    }

    /// Free descriptor slots.
    pub fn space(&self) -> u32 {
        self.queue.as_ref().map_or(0, |q| q.space())
    }

    /// Writes `d` as a chain of one descriptor and hands it to the engine.
    /// False when the ring is full (or the queue not started).
    pub fn submit(&mut self, d: &Desc) -> bool {
        let Some(qu) = self.queue.as_mut() else { return false };
        if !qu.push(&d.words(true), true) {
            return false;
        }
        qu.kick();
        true
    }

    /// The next completion (cookie, `regs::accel::ST_*` status).
    pub fn poll(&mut self) -> Option<Completion> {
        self.queue.as_mut()?.poll()
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.busy())
    }
}

/// Descriptors the engine has completed since reset (all queues).
pub fn descriptors_done() -> u64 {
    mmio::read64(EC_BASE + r::DESCRIPTORS as usize)
}
