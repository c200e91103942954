//! One accelerator queue (layout: [`crate::regs::queue`]): the crypto
//! engines' and the erasure-coding engine's descriptor ring, 64-byte
//! descriptors, completion ring with phase bit. Like a DMA channel
//! ([`crate::dma::Channel`]), a queue is owned by one hart: descriptors are
//! written with `push`, handed over with `kick`, and completions (one per
//! chain) come back in order through `poll`.

use crate::dma::Completion;
use crate::regs::queue as r;
use crate::{mem, mmio};

/// Most chains a queue tracks at once.
const MAX_CHAINS: usize = 128;

pub struct Queue {
    regs: usize,
    ring: usize,
    comp: usize,
    size: u32,
    tail: u32,
    comp_head: u32,
    phase: bool,
    free: u32,
    chains: [u16; MAX_CHAINS],
    chain_head: usize,
    chain_count: usize,
    open: u16,
}

impl Queue {
    /// Bytes of DPU memory a queue of `size` entries needs.
    pub const fn memory(size: u32) -> usize {
        size as usize * (r::DESC_SIZE + r::COMP_SIZE)
    }

    /// Starts the queue whose registers are at `regs`, with its rings at
    /// `mem_addr` (64-byte aligned, `memory(size)` bytes); completions
    /// ring `notify_hart`'s mailbox.
    pub fn start(regs: usize, mem_addr: usize, size: u32, notify_hart: Option<usize>) -> Queue {
        let comp = mem_addr + size as usize * r::DESC_SIZE;
        mem::zero(comp, size as usize * r::COMP_SIZE);
        mmio::write64(regs + r::RING_BASE as usize, mem_addr as u64);
        mmio::write32(regs + r::RING_SIZE as usize, size);
        mmio::write64(regs + r::COMP_BASE as usize, comp as u64);
        mmio::write32(regs + r::NOTIFY as usize, notify_hart.map_or(0, |h| r::NOTIFY_ENABLE | h as u32));
        mmio::write32(regs + r::CONTROL as usize, 1);
        Queue {
            regs,
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
        mmio::read32(self.regs + r::STATUS as usize) == r::STATUS_RUNNING
    }

    /// Free descriptor slots.
    pub fn space(&self) -> u32 {
        if self.chain_count >= MAX_CHAINS {
            0
        } else {
            self.free
        }
    }

    /// Writes one 64-byte descriptor (eight little-endian words; bit 0 of
    /// the byte at `flags_at` is `FLAG_END`). False when the ring is full.
    pub fn push(&mut self, words: &[u64; 8], end: bool) -> bool {
        if self.space() == 0 {
            return false;
        }
        let slot = (self.tail & (self.size - 1)) as usize;
        mem::write_words(self.ring + slot * r::DESC_SIZE, words);
        self.tail = self.tail.wrapping_add(1);
        self.free -= 1;
        self.open += 1;
        if end {
            let i = (self.chain_head + self.chain_count) % MAX_CHAINS;
            self.chains[i] = self.open;
            self.chain_count += 1;
            self.open = 0;
        }
        true
    }

    /// Hands the written descriptors to the engine.
    pub fn kick(&mut self) {
        mmio::write32(self.regs + r::TAIL as usize, self.tail);
    }

    /// Takes the next completion, if one was written.
    pub fn poll(&mut self) -> Option<Completion> {
        let slot = (self.comp_head & (self.size - 1)) as usize;
        let at = self.comp + slot * r::COMP_SIZE;
        if (mem::read_u8(at + r::COMP_PHASE) & 1 == 1) != self.phase {
            return None;
        }
        let mut w = [0u64; 2];
        mem::read_words(at, &mut w);
        self.comp_head = self.comp_head.wrapping_add(1);
        if self.comp_head & (self.size - 1) == 0 {
            self.phase = !self.phase;
        }
        if self.chain_count > 0 {
            self.free += u32::from(self.chains[self.chain_head]);
            self.chain_head = (self.chain_head + 1) % MAX_CHAINS;
            self.chain_count -= 1;
        }
        Some(Completion { cookie: w[0] as u32, status: (w[0] >> 32) as u32, bytes: w[1] as u32 })
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.chain_count
    }
}
