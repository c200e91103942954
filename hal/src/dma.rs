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

impl Desc {
    /// CRC32C (`OP_CRC32C`) of `len` bytes of DPU memory at `local`,
    /// continuing the finished CRC in the u32 at `word` (4-byte aligned DPU
    /// memory; 0 starts a new CRC) and writing the result back there.
    /// Descriptors of one chain naming the same word give the CRC of their
    /// ranges concatenated: the NVMe/TCP data digest of data spread over
    /// pages.
    pub const fn crc32c(local: u64, len: u32, word: u64, cookie: u32) -> Desc {
        Desc { host: word, local, len, function: 0, op: r::OP_CRC32C, flags: 0, msix: 0, cookie }
    }
}

// `push`/`poll` pack descriptors and completions as 64-bit words.
const _: () = assert!(
    r::DESC_HOST == 0
        && r::DESC_LOCAL == 8
        && r::DESC_LEN == 16
        && r::DESC_FUNCTION == 20
        && r::DESC_OP == 22
        && r::DESC_FLAGS == 23
        && r::DESC_MSIX == 24
        && r::DESC_COOKIE == 28
        && r::COMP_COOKIE == 0
        && r::COMP_STATUS == 4
        && r::COMP_BYTES == 8
);

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
    /// aligned, `memory(size)` bytes; the completion ring is zeroed here).
    /// Completions ring `notify_hart`'s mailbox.
    pub fn start(index: usize, mem_addr: usize, size: u32, notify_hart: Option<usize>) -> Channel {
        let comp = mem_addr + size as usize * r::DESC_SIZE;
        mem::zero(comp, size as usize * r::COMP_SIZE);
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
        // The descriptor as four little-endian words (layout in regs::dma).
        let w2 = u64::from(d.len) | u64::from(d.function) << 32 | u64::from(d.op) << 48 | u64::from(d.flags) << 56;
        let w3 = u64::from(d.msix) | u64::from(d.cookie) << 32;
        let slot = (self.tail & (self.size - 1)) as usize;
        mem::write_words(self.ring + slot * r::DESC_SIZE, &[d.host, d.local, w2, w3]);
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
        // cookie = bytes 0..4, status = 4..8, bytes = 8..12 (regs::dma).
        Some(Completion { cookie: w[0] as u32, status: (w[0] >> 32) as u32, bytes: w[1] as u32 })
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.chain_count
    }
}
