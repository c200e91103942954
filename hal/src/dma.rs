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
/// A descriptor ring and its completion ring, as DMA channels and the
/// accelerator queues (`crate::accel::Queue`) share them (registers of
/// [`crate::regs::dma`] at `regs`): `WORDS` 64-bit words per descriptor,
/// completions with a phase bit, one per chain, in order; at most
/// `CHAINS` chains tracked at once. Owned by one hart.
pub struct Ring<const WORDS: usize, const CHAINS: usize> {
    regs: usize,
    ring: usize,
    comp: usize,
    size: u32,
    tail: u32,
    comp_head: u32,
    phase: bool,
    free: u32,
    chains: [u16; CHAINS],
    chain_head: usize,
    chain_count: usize,
    open: u16,
}

impl<const WORDS: usize, const CHAINS: usize> Ring<WORDS, CHAINS> {
    const DESC_BYTES: usize = WORDS * 8;

    /// Bytes of DPU memory a ring of `size` entries needs (descriptors,
    /// then completions).
    pub const fn memory(size: u32) -> usize {
        size as usize * (Self::DESC_BYTES + r::COMP_SIZE)
    }

    /// Starts the ring whose registers are at `regs`, with its rings at
    /// `mem_addr` (`memory(size)` bytes, aligned to a descriptor);
    /// completions ring `notify_hart`'s mailbox.
    pub fn start(regs: usize, mem_addr: usize, size: u32, notify_hart: Option<usize>) -> Self {
        let comp = mem_addr + size as usize * Self::DESC_BYTES;
        mem::zero(comp, size as usize * r::COMP_SIZE);
        mmio::write64(regs + r::RING_BASE as usize, mem_addr as u64);
        mmio::write32(regs + r::RING_SIZE as usize, size);
        mmio::write64(regs + r::COMP_BASE as usize, comp as u64);
        mmio::write32(regs + r::NOTIFY as usize, notify_hart.map_or(0, |h| r::NOTIFY_ENABLE | h as u32));
        mmio::write32(regs + r::CONTROL as usize, 1);
        Ring { regs, ring: mem_addr, comp, size, tail: 0, comp_head: 0, phase: true, free: size, chains: [0; CHAINS], chain_head: 0, chain_count: 0, open: 0 }
    }

    /// Whether the engine accepted the configuration (STATUS = running).
    pub fn running(&self) -> bool {
        mmio::read32(self.regs + r::STATUS as usize) == 1
    }

    /// Free descriptor slots (0 while `CHAINS` chains are in flight).
    pub fn space(&self) -> u32 {
        if self.chain_count >= CHAINS {
            0
        } else {
            self.free
        }
    }

    /// Writes one descriptor (its words, little-endian); `end` closes the
    /// chain (the caller sets the layout's FLAG_END bit in the words).
    /// False when the ring is full.
    pub fn push(&mut self, words: &[u64; WORDS], end: bool) -> bool {
        if self.space() == 0 {
            return false;
        }
        let slot = (self.tail & (self.size - 1)) as usize;
        mem::write_words(self.ring + slot * Self::DESC_BYTES, words);
        self.tail = self.tail.wrapping_add(1);
        self.free -= 1;
        self.open += 1;
        if end {
            let i = (self.chain_head + self.chain_count) % CHAINS;
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
        // One completion per chain: with none in flight there is nothing
        // to read (saves a memory read per idle ring and poll).
        if self.chain_count == 0 {
            return None;
        }
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
            self.chain_head = (self.chain_head + 1) % CHAINS;
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

const _: () = assert!(r::DESC_SIZE == 4 * 8);

/// One DMA channel: a [`Ring`] of 32-byte descriptors ([`Desc`]).
pub struct Channel(Ring<4, 256>);

fn reg(ch: usize, off: u64) -> usize {
    DMA_BASE + ch * r::CHANNEL as usize + off as usize
}

impl Channel {
    /// Bytes of DPU memory a channel of `size` entries needs.
    pub const fn memory(size: u32) -> usize {
        Ring::<4, 256>::memory(size)
    }

    /// Starts channel `index` with its rings at `mem_addr` (32-byte
    /// aligned, `memory(size)` bytes); completions ring `notify_hart`'s
    /// mailbox.
    pub fn start(index: usize, mem_addr: usize, size: u32, notify_hart: Option<usize>) -> Channel {
        Channel(Ring::start(reg(index, 0), mem_addr, size, notify_hart))
    }

    /// Whether the engine accepted the configuration.
    pub fn running(&self) -> bool {
        self.0.running()
    }

    /// Free descriptor slots.
    pub fn space(&self) -> u32 {
        self.0.space()
    }

    /// Writes one descriptor; `FLAG_END` in its flags closes the chain.
    /// False when the ring is full.
    pub fn push(&mut self, d: &Desc) -> bool {
        // The descriptor as four little-endian words (layout in regs::dma).
        let w2 = u64::from(d.len) | u64::from(d.function) << 32 | u64::from(d.op) << 48 | u64::from(d.flags) << 56;
        let w3 = u64::from(d.msix) | u64::from(d.cookie) << 32;
        self.0.push(&[d.host, d.local, w2, w3], d.flags & r::FLAG_END != 0)
    }

    /// Hands the written descriptors to the engine.
    pub fn kick(&mut self) {
        self.0.kick()
    }

    /// Takes the next completion, if one was written.
    pub fn poll(&mut self) -> Option<Completion> {
        self.0.poll()
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.0.busy()
    }
}
