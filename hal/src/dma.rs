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

/// A chain's completion (DMA engine and accelerators: `regs::dma::COMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub cookie: u32,
    pub status: u32,
    pub bytes: u32,
}

impl Completion {
    /// The completion in the entry's first two words (cookie = bytes
    /// 0..4, status 4..8, bytes 8..12; the phase is byte 15).
    pub const fn from_words(w: &[u64; 2]) -> Completion {
        Completion { cookie: w[0] as u32, status: (w[0] >> 32) as u32, bytes: w[1] as u32 }
    }

    /// The completion entry an engine writes, with phase tag `phase`.
    pub fn entry(&self, phase: bool) -> [u8; r::COMP_SIZE] {
        let w = [u64::from(self.cookie) | u64::from(self.status) << 32, u64::from(self.bytes) | u64::from(phase) << 56];
        le_bytes(&w)
    }
}

const _: () = assert!(r::COMP_SIZE == 16 && r::COMP_COOKIE == 0 && r::COMP_STATUS == 4 && r::COMP_BYTES == 8 && r::COMP_PHASE == 15);

/// Little-endian words to bytes and back: the simulator's engines read
/// and write the same rings as bytes, through these views.
pub(crate) fn le_words<const W: usize, const B: usize>(b: &[u8; B]) -> [u64; W] {
    let mut w = [0u64; W];
    for (i, x) in w.iter_mut().enumerate() {
        let mut e = [0u8; 8];
        e.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *x = u64::from_le_bytes(e);
    }
    w
}

pub(crate) fn le_bytes<const W: usize, const B: usize>(w: &[u64; W]) -> [u8; B] {
    let mut b = [0u8; B];
    for (i, x) in w.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
    }
    b
}

impl Desc {
    /// The descriptor as the engine reads it: four little-endian words
    /// (the one definition of the layout in `regs::dma`, checked below).
    pub const fn words(&self) -> [u64; 4] {
        [
            self.host,
            self.local,
            self.len as u64 | (self.function as u64) << 32 | (self.op as u64) << 48 | (self.flags as u64) << 56,
            self.msix as u64 | (self.cookie as u64) << 32,
        ]
    }

    /// The descriptor in `w` (the inverse of [`Desc::words`]).
    pub const fn from_words(w: &[u64; 4]) -> Desc {
        Desc {
            host: w[0],
            local: w[1],
            len: w[2] as u32,
            function: (w[2] >> 32) as u16,
            op: (w[2] >> 48) as u8,
            flags: (w[2] >> 56) as u8,
            msix: w[3] as u16,
            cookie: (w[3] >> 32) as u32,
        }
    }

    /// The descriptor in ring bytes `b` (`regs::dma::DESC_SIZE`).
    pub fn from_bytes(b: &[u8; r::DESC_SIZE]) -> Desc {
        Desc::from_words(&le_words(b))
    }

    pub fn to_bytes(&self) -> [u8; r::DESC_SIZE] {
        le_bytes(&self.words())
    }

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
        Some(Completion::from_words(&w))
    }

    /// Chains in flight.
    pub fn busy(&self) -> usize {
        self.chain_count
    }

    /// Whether a completion waits (what [`poll`](Self::poll) would
    /// take), without taking it: a cheap check before a costly handler.
    pub fn ready(&self) -> bool {
        if self.chain_count == 0 {
            return false;
        }
        let slot = (self.comp_head & (self.size - 1)) as usize;
        (mem::read_u8(self.comp + slot * r::COMP_SIZE + r::COMP_PHASE) & 1 == 1) == self.phase
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
        self.0.push(&d.words(), d.flags & r::FLAG_END != 0)
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

    /// Whether a completion waits, without taking it.
    pub fn ready(&self) -> bool {
        self.0.ready()
    }
}

#[cfg(test)]
mod tests {
    use crate::regs::{crypto as cr, dma as r, ec as er};

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    /// Every field lands at its `regs` offset, and bytes read back as the
    /// same descriptor (what the simulator's engines do).
    #[test]
    fn dma_descriptors_and_completions_follow_the_register_layout() {
        let d = super::Desc { host: 0x1122_3344_5566_7788, local: 0x99aa, len: 0x0102_0304, function: 0x0506, op: r::OP_H2D, flags: r::FLAG_END, msix: 0x0708, cookie: 0x0a0b_0c0d };
        let b = d.to_bytes();
        assert_eq!((u64_at(&b, r::DESC_HOST), u64_at(&b, r::DESC_LOCAL), u32_at(&b, r::DESC_LEN)), (d.host, d.local, d.len));
        assert_eq!((b[r::DESC_OP], b[r::DESC_FLAGS], u32_at(&b, r::DESC_COOKIE)), (d.op, d.flags, d.cookie));
        assert_eq!(u16::from_le_bytes([b[r::DESC_FUNCTION], b[r::DESC_FUNCTION + 1]]), d.function);
        assert_eq!(u16::from_le_bytes([b[r::DESC_MSIX], b[r::DESC_MSIX + 1]]), d.msix);
        assert_eq!(super::Desc::from_bytes(&b), d);
        let c = super::Completion { cookie: 7, status: r::ST_HOST_ERROR, bytes: 4096 };
        let e = c.entry(true);
        assert_eq!((u32_at(&e, r::COMP_COOKIE), u32_at(&e, r::COMP_STATUS), u32_at(&e, r::COMP_BYTES), e[r::COMP_PHASE]), (7, r::ST_HOST_ERROR, 4096, 1));
        assert_eq!(super::Completion::from_words(&super::le_words(&e)), c);
        assert_eq!(c.entry(false)[r::COMP_PHASE], 0);
    }

    #[test]
    fn accelerator_descriptors_follow_the_register_layout() {
        let mut x = crate::crypto::Desc::xts(true, 0x1000, 0x2000, 8192, 3, 0x55, true).to_host(2);
        x.cookie = 0xdead_beef;
        x.aad = 0x3000;
        x.aad_len = 12;
        let b = x.to_bytes();
        assert_eq!((u64_at(&b, cr::DESC_SRC), u64_at(&b, cr::DESC_DST), u32_at(&b, cr::DESC_LEN)), (0x1000, 0x2000, 8192));
        assert_eq!((b[cr::DESC_OP], b[cr::DESC_FLAGS], u32_at(&b, cr::DESC_COOKIE)), (x.op, x.flags, 0xdead_beef));
        assert_eq!((u64_at(&b, cr::DESC_PARAM), u64_at(&b, cr::DESC_AAD), u32_at(&b, cr::DESC_AAD_LEN)), (0x55, 0x3000, 12));
        assert_eq!(u16::from_le_bytes([b[cr::DESC_KEY], b[cr::DESC_KEY + 1]]), 3);
        assert_eq!(u16::from_le_bytes([b[cr::DESC_DST_FN], b[cr::DESC_DST_FN + 1]]), 2);
        let y = crate::crypto::Desc::from_bytes(&b);
        assert_eq!((y, y.data_unit(), y.dun()), (x, 4096, 0x55));
        let mut e = crate::ec::Desc::reconstruct(0x4000, 4096, 4, 2, 0b111101, 0b10, 9);
        let b = e.to_bytes();
        assert_eq!((u64_at(&b, er::DESC_FRAGS), u32_at(&b, er::DESC_LEN), b[er::DESC_K], b[er::DESC_M], b[er::DESC_OP]), (0x4000, 4096, 4, 2, er::OP_RECONSTRUCT));
        assert_eq!((u64_at(&b, er::DESC_PRESENT), u64_at(&b, er::DESC_REBUILD), u32_at(&b, er::DESC_COOKIE)), (0b111101, 0b10, 9));
        assert_eq!((crate::ec::Desc::from_bytes(&b), e.outputs()), (e, 1));
        e.flags = er::FLAG_END;
        assert_eq!(crate::ec::Desc::from_bytes(&e.to_bytes()).flags, er::FLAG_END);
    }

    #[test]
    fn nic_descriptors_follow_the_register_layout() {
        use crate::regs::nic as nr;
        let d = crate::nic::Desc { addr: 0x8000_1000, len: 1514, flags: nr::RX_DD | nr::RX_CSUM_OK, aux: 0xfeed_f00d };
        let b = d.to_bytes();
        assert_eq!((u64_at(&b, nr::DESC_ADDR), u32_at(&b, nr::DESC_RSS)), (d.addr, d.aux));
        assert_eq!((u16::from_le_bytes([b[nr::DESC_LEN], b[nr::DESC_LEN + 1]]), u16::from_le_bytes([b[nr::DESC_FLAGS], b[nr::DESC_FLAGS + 1]])), (1514, d.flags));
        assert_eq!(crate::nic::Desc::from_bytes(&b), d);
    }
}
