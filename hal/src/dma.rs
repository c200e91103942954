//! DMA channel driver (layout: [`crate::regs::dma`]).
//!
//! A channel is owned by one hart. Descriptors are written into the ring
//! and handed over with `kick`; completions come back in order (one per
//! chain) in the completion ring, found by their phase bit.

use crate::memory_map::DMA_BASE;
use crate::regs::dma as r;
use crate::{mem, mmio};

/// One transfer (see `regs::dma` for the fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc {
    pub host: u64,
    pub local: u64,
    pub len: u32,
    pub function: u16,
    pub op: u8,
    pub flags: u8,
    pub msix: u16,
    pub cookie: u32,
}

/// A chain's completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub cookie: u32,
    pub status: u32,
    pub bytes: u32,
}

/// Most chains a channel tracks at once.
const MAX_CHAINS: usize = 256;

pub struct Channel {
    index: usize,
    ring: usize,
    comp: usize,
    size: u32,
    tail: u32,
    comp_head: u32,
    phase: bool,
    free: u32,
    /// Descriptors of each chain in flight, oldest first (ring buffer).
    chains: [u16; MAX_CHAINS],
    chain_head: usize,
    chain_count: usize,
    /// Descriptors of the chain being built.
    open: u16,
}

fn reg(ch: usize, off: u64) -> usize {
    DMA_BASE + ch * r::CHANNEL as usize + off as usize
}

impl Channel {
    /// Bytes of DPU memory a channel of `size` entries needs (ring + completions).
    pub const fn memory(size: u32) -> usize {
        size as usize * (r::DESC_SIZE + r::COMP_SIZE)
    }

    /// Starts channel `index` with its rings at `mem_addr` (32-byte
    /// aligned, `memory(size)` bytes, zeroed here). Completions ring
    /// `notify_hart`'s mailbox.
    pub fn start(index: usize, mem_addr: usize, size: u32, notify_hart: Option<usize>) -> Channel {
        let comp = mem_addr + size as usize * r::DESC_SIZE;
        let zero = [0u8; 64];
        let mut o = 0;
        while o < Self::memory(size) {
            mem::write(mem_addr + o, &zero[..(Self::memory(size) - o).min(64)]);
            o += 64;
        }
        mmio::write64(reg(index, r::RING_BASE), mem_addr as u64);
        mmio::write32(reg(index, r::RING_SIZE), size);
        mmio::write64(reg(index, r::COMP_BASE), comp as u64);
        mmio::write32(reg(index, r::NOTIFY), notify_hart.map_or(0, |h| r::NOTIFY_ENABLE | h as u32));
        mmio::write32(reg(index, r::CONTROL), 1);
        Channel {
            index,
            ring: mem_addr,
            comp,
            size,
            tail: 0,
            comp_head: 0,
            phase: true,
            free: size,
            chains: [0; MAX_CHAINS],
            chain_head: 0,
            chain_count: 0,
            open: 0,
        }
    }

    /// Whether the engine accepted the configuration.
    pub fn running(&self) -> bool {
        mmio::read32(reg(self.index, r::STATUS)) == 1
    }

    /// Free descriptor slots.
    pub fn space(&self) -> u32 {
        if self.chain_count >= MAX_CHAINS {
            0
        } else {
            self.free
        }
    }

    /// Writes one descriptor (not yet visible to the engine). A descriptor
    /// with `FLAG_END` closes a chain. Returns false when the ring is full.
    pub fn push(&mut self, d: &Desc) -> bool {
        if self.space() == 0 {
            return false;
        }
        let mut b = [0u8; 32];
        b[r::DESC_HOST..r::DESC_HOST + 8].copy_from_slice(&d.host.to_le_bytes());
        b[r::DESC_LOCAL..r::DESC_LOCAL + 8].copy_from_slice(&d.local.to_le_bytes());
        b[r::DESC_LEN..r::DESC_LEN + 4].copy_from_slice(&d.len.to_le_bytes());
        b[r::DESC_FUNCTION..r::DESC_FUNCTION + 2].copy_from_slice(&d.function.to_le_bytes());
        b[r::DESC_OP] = d.op;
        b[r::DESC_FLAGS] = d.flags;
        b[r::DESC_MSIX..r::DESC_MSIX + 2].copy_from_slice(&d.msix.to_le_bytes());
        b[r::DESC_COOKIE..r::DESC_COOKIE + 4].copy_from_slice(&d.cookie.to_le_bytes());
        let slot = (self.tail & (self.size - 1)) as usize;
        mem::write(self.ring + slot * r::DESC_SIZE, &b);
        self.tail = self.tail.wrapping_add(1);
        self.free -= 1;
        self.open += 1;
        if d.flags & r::FLAG_END != 0 {
            let i = (self.chain_head + self.chain_count) % MAX_CHAINS;
            self.chains[i] = self.open;
            self.chain_count += 1;
            self.open = 0;
        }
        true
    }

    /// Hands the written descriptors to the engine.
    pub fn kick(&mut self) {
        mmio::write32(reg(self.index, r::TAIL), self.tail);
    }

    /// Takes the next completion, if one was written.
    pub fn poll(&mut self) -> Option<Completion> {
        let slot = (self.comp_head & (self.size - 1)) as usize;
        let at = self.comp + slot * r::COMP_SIZE;
        if (mem::read_u8(at + r::COMP_PHASE) & 1 == 1) != self.phase {
            return None;
        }
        let mut b = [0u8; 16];
        mem::read(at, &mut b);
        self.comp_head = self.comp_head.wrapping_add(1);
        if self.comp_head & (self.size - 1) == 0 {
            self.phase = !self.phase;
        }
        if self.chain_count > 0 {
            self.free += u32::from(self.chains[self.chain_head]);
            self.chain_head = (self.chain_head + 1) % MAX_CHAINS;
            self.chain_count -= 1;
        }
        let u = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        Some(Completion { cookie: u(r::COMP_COOKIE), status: u(r::COMP_STATUS), bytes: u(r::COMP_BYTES) })
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.chain_count
    }
}
