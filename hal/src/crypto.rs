//! Crypto engine driver (layout: [`crate::regs::crypto`]): descriptors for
//! AES-256-XTS, AES-256-GCM, SHA-256 and key-slot management, and the
//! queue of the calling hart on each engine ([`Engines`]), which spreads
//! work over the engines by how much each queue has in flight.

use crate::accel::Queue;
use crate::dma::Completion;
use crate::memory_map::{CRYPTO_BASE, CRYPTO_ENGINES, CRYPTO_QUEUES_PER_ENGINE};
use crate::regs::crypto as r;
use crate::{mem, mmio};

/// One crypto descriptor (see `regs::crypto` for the fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub src: u64,
    pub dst: u64,
    pub len: u32,
    pub op: u8,
    pub flags: u8,
    pub key: u16,
    pub src_fn: u16,
    pub dst_fn: u16,
    pub cookie: u32,
    pub param: [u8; 16],
    pub aad: u64,
    pub aad_len: u32,
}

const _: () = assert!(
    r::DESC_SRC == 0
        && r::DESC_DST == 8
        && r::DESC_LEN == 16
        && r::DESC_OP == 20
        && r::DESC_FLAGS == 21
        && r::DESC_KEY == 22
        && r::DESC_SRC_FN == 24
        && r::DESC_DST_FN == 26
        && r::DESC_COOKIE == 28
        && r::DESC_PARAM == 32
        && r::DESC_AAD == 48
        && r::DESC_AAD_LEN == 56
);

impl Desc {
    /// XTS-AES-256 over whole data units numbered from `dun` (IEEE
    /// 1619-2018 §5.1: the tweak), data unit 512 B or 4 KiB.
    pub fn xts(encrypt: bool, src: u64, dst: u64, len: u32, key: u16, dun: u64, du_4k: bool) -> Desc {
        let mut param = [0u8; 16];
        param[..8].copy_from_slice(&dun.to_le_bytes());
        Desc {
            src,
            dst,
            len,
            op: if encrypt { r::OP_XTS_ENCRYPT } else { r::OP_XTS_DECRYPT },
            flags: if du_4k { r::FLAG_DU_4K } else { 0 },
            key,
            param,
            ..Desc::default()
        }
    }

    /// XTS decrypt: all-zero ciphertext units come out as zeros
    /// (`FLAG_ZERO_PASS`).
    pub fn zero_pass(mut self) -> Desc {
        self.flags |= r::FLAG_ZERO_PASS;
        self
    }

    /// The source is host memory of PCIe function `f`.
    pub fn from_host(mut self, f: u16) -> Desc {
        self.flags |= r::FLAG_SRC_HOST;
        self.src_fn = f;
        self
    }

    /// The destination is host memory of PCIe function `f`.
    pub fn to_host(mut self, f: u16) -> Desc {
        self.flags |= r::FLAG_DST_HOST;
        self.dst_fn = f;
        self
    }

    /// XTS data unit size.
    pub fn data_unit(&self) -> u32 {
        if self.flags & r::FLAG_DU_4K != 0 {
            4096
        } else {
            512
        }
    }

    /// XTS: number of the first data unit.
    pub fn dun(&self) -> u64 {
        u64::from_le_bytes(self.param[..8].try_into().unwrap_or([0; 8]))
    }

    /// Bytes the descriptor reads from SRC and writes to DST.
    pub fn io_lengths(&self) -> (u64, u64) {
        let len = u64::from(self.len);
        let tag = r::GCM_TAG as u64;
        match self.op {
            r::OP_GCM_SEAL => (len, len + tag),
            r::OP_GCM_OPEN => (len + tag, len),
            r::OP_SHA256 => (len, if self.flags & crate::regs::queue::FLAG_END != 0 { 32 } else { 0 }),
            r::OP_KEY_LOAD | r::OP_KEY_UNWRAP => (len, 0),
            r::OP_KEY_WRAP => (len, len + r::WRAP_OVERHEAD as u64),
            r::OP_KEY_CLEAR => (0, 0),
            _ => (len, len),
        }
    }

    /// The descriptor in `w` (the inverse of [`Desc::words`]).
    pub fn from_words(w: &[u64; 8]) -> Desc {
        let mut param = [0u8; 16];
        param[..8].copy_from_slice(&w[4].to_le_bytes());
        param[8..].copy_from_slice(&w[5].to_le_bytes());
        Desc {
            src: w[0],
            dst: w[1],
            len: w[2] as u32,
            op: (w[2] >> 32) as u8,
            flags: (w[2] >> 40) as u8,
            key: (w[2] >> 48) as u16,
            src_fn: w[3] as u16,
            dst_fn: (w[3] >> 16) as u16,
            cookie: (w[3] >> 32) as u32,
            param,
            aad: w[6],
            aad_len: w[7] as u32,
        }
    }

    /// The descriptor in ring bytes `b` (`regs::queue::DESC_SIZE`).
    pub fn from_bytes(b: &[u8; crate::regs::queue::DESC_SIZE]) -> Desc {
        Desc::from_words(&crate::dma::le_words(b))
    }

    pub fn to_bytes(&self) -> [u8; crate::regs::queue::DESC_SIZE] {
        crate::dma::le_bytes(&self.words())
    }

    /// The descriptor as the engine reads it (layout `regs::crypto`,
    /// checked above).
    pub fn words(&self) -> [u64; 8] {
        let p0 = u64::from_le_bytes(self.param[..8].try_into().unwrap_or([0; 8]));
        let p1 = u64::from_le_bytes(self.param[8..].try_into().unwrap_or([0; 8]));
        [
            self.src,
            self.dst,
            u64::from(self.len) | u64::from(self.op) << 32 | u64::from(self.flags) << 40 | u64::from(self.key) << 48,
            u64::from(self.src_fn) | u64::from(self.dst_fn) << 16 | u64::from(self.cookie) << 32,
            p0,
            p1,
            self.aad,
            u64::from(self.aad_len),
        ]
    }
}

fn engine_reg(e: usize, off: u64) -> usize {
    CRYPTO_BASE + e * r::ENGINE as usize + off as usize
}

fn queue_regs(e: usize, q: usize) -> usize {
    engine_reg(e, r::QUEUES) + q * crate::regs::queue::SIZE as usize
}

/// A hart's queues: queue `hart` of every engine.
pub struct Engines {
    queues: [Option<Queue>; CRYPTO_ENGINES],
    /// Where the next search for a quiet engine starts (round robin
    /// among equals).
    next: usize,
}

impl Engines {
    pub const NONE: Engines = Engines { queues: [const { None }; CRYPTO_ENGINES], next: 0 };

    /// Bytes of DPU memory `start` needs for rings of `size` entries.
    pub const fn memory(size: u32) -> usize {
        CRYPTO_ENGINES * Self::stride(size)
    }

    /// Distance between two engines' rings (rings are 64-byte aligned).
    const fn stride(size: u32) -> usize {
        Queue::memory(size).next_multiple_of(64)
    }

    /// Starts queue `hart` on every engine, rings at `mem_addr` (64-byte
    /// aligned, `memory(size)` bytes); completions ring `hart`'s mailbox
    /// with `regs::crypto::MAILBOX_BIT`. False if the hart has no queue or
    /// an engine refused the configuration.
    pub fn start(&mut self, hart: usize, mem_addr: usize, size: u32) -> bool {
        if hart >= CRYPTO_QUEUES_PER_ENGINE {
            return false;
        }
        for e in 0..CRYPTO_ENGINES {
            let q = Queue::start(queue_regs(e, hart), mem_addr + e * Self::stride(size), size, Some(hart));
            if !q.running() {
                return false;
            }
            self.queues[e] = Some(q);
        }
        true
    }

    pub fn started(&self) -> bool {
        self.queues[0].is_some()
    }

    /// The engine with the fewest chains in flight and room for `n`
    /// descriptors (ties: round robin), if any. The first idle one in
    /// round-robin order ends the search (the common case: one look).
    pub fn pick(&mut self, n: u32) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        let mut e = self.next;
        for _ in 0..CRYPTO_ENGINES {
            if let Some(q) = self.queues[e].as_ref().filter(|q| q.space() >= n) {
                let busy = q.busy();
                if busy == 0 {
                    best = Some((e, 0));
                    break;
                }
                if best.is_none_or(|(_, b)| busy < b) {
                    best = Some((e, busy));
                }
            }
            e = if e + 1 == CRYPTO_ENGINES { 0 } else { e + 1 };
        }
        let (e, _) = best?;
        self.next = if e + 1 == CRYPTO_ENGINES { 0 } else { e + 1 };
        Some(e)
    }

    /// Writes descriptor `d` on engine `e` (`end`: it closes a chain).
    pub fn push(&mut self, e: usize, d: &Desc, end: bool) -> bool {
        let mut d = *d;
        if end {
            d.flags |= r::FLAG_END;
        }
        self.queues.get_mut(e).and_then(|q| q.as_mut()).is_some_and(|q| q.push(&d.words(), end))
    }

    /// Hands engine `e`'s written descriptors over.
    pub fn kick(&mut self, e: usize) {
        if let Some(q) = self.queues.get_mut(e).and_then(|q| q.as_mut()) {
            q.kick();
        }
    }

    /// The next completion of any engine.
    pub fn poll(&mut self) -> Option<Completion> {
        self.queues.iter_mut().flatten().find_map(|q| q.poll())
    }

    /// Chains in flight on all engines.
    pub fn busy(&self) -> usize {
        self.queues.iter().flatten().map(|q| q.busy()).sum()
    }

    /// Runs `d` on every engine, one after the other, and waits for each;
    /// the first error status, if any. Only for setup (it spins).
    fn on_every_engine(&mut self, d: &Desc) -> Result<(), u32> {
        let mut result = Ok(());
        for e in 0..CRYPTO_ENGINES {
            if let Err(s) = self.run_on(e, d) {
                if result.is_ok() {
                    result = Err(s);
                }
            }
        }
        result
    }

    /// Runs `d` on engine `e` and waits for it (setup only: it spins).
    fn run_on(&mut self, e: usize, d: &Desc) -> Result<(), u32> {
        if !self.push(e, d, true) {
            return Err(crate::regs::accel::ST_BAD_DESCRIPTOR);
        }
        self.kick(e);
        let c = loop {
            if let Some(c) = self.queues[e].as_mut().and_then(|q| q.poll()) {
                break c;
            }
            core::hint::spin_loop();
        };
        if c.status != 0 {
            Err(c.status)
        } else {
            Ok(())
        }
    }

    /// Loads `key` (`kind`: `KEY_XTS_AES256`, 64 bytes; `KEY_GCM_AES256`,
    /// 32 bytes) into key slot `slot` of every engine and waits for it.
    /// `scratch` (at least 64 bytes of DPU memory) holds the key while the
    /// engines read it and is wiped before returning. Returns the first
    /// error status, if any. Only for setup (it spins).
    pub fn load_key(&mut self, slot: u16, kind: u8, key: &[u8], scratch: usize) -> Result<(), u32> {
        mem::write(scratch, key);
        let mut param = [0u8; 16];
        param[0] = kind;
        let d = Desc { src: scratch as u64, len: key.len() as u32, op: r::OP_KEY_LOAD, key: slot, param, ..Desc::default() };
        let result = self.on_every_engine(&d);
        mem::zero(scratch, key.len());
        result
    }

    /// Unwraps `blob` (a key of `kind` wrapped with the chip's device key,
    /// RFC 3394: the key's length plus `WRAP_OVERHEAD` bytes) into key
    /// slot `slot` of every engine (`regs::crypto::OP_KEY_UNWRAP`): the key
    /// itself never passes through the cores or their memory. `scratch`
    /// (at least `blob.len()` bytes of DPU memory) holds the blob while
    /// the engines read it. The first error status, if any:
    /// `ST_AUTH_FAILED` when the blob was not wrapped with this chip's
    /// device key (or was altered), `ST_NO_DEVICE_KEY` when the chip has
    /// none. Only for setup (it spins).
    pub fn unwrap_key(&mut self, slot: u16, kind: u8, blob: &[u8], scratch: usize) -> Result<(), u32> {
        mem::write(scratch, blob);
        let mut param = [0u8; 16];
        param[0] = kind;
        let d = Desc { src: scratch as u64, len: blob.len() as u32, op: r::OP_KEY_UNWRAP, key: slot, param, ..Desc::default() };
        let result = self.on_every_engine(&d);
        mem::zero(scratch, blob.len());
        result
    }

    /// Clears key slot `slot` of every engine (`regs::crypto::OP_KEY_CLEAR`)
    /// and waits for it. Only for setup (it spins).
    pub fn clear_key(&mut self, slot: u16) -> Result<(), u32> {
        let d = Desc { op: r::OP_KEY_CLEAR, key: slot, ..Desc::default() };
        self.on_every_engine(&d)
    }

    /// Wraps `key` (of `kind`) with the chip's device key on engine 0
    /// (`regs::crypto::OP_KEY_WRAP`) into `out` (`key.len() +
    /// WRAP_OVERHEAD` bytes): what the configuration may keep of a key
    /// that arrived in the clear. `scratch` (at least `2 * key.len() +
    /// WRAP_OVERHEAD` bytes of DPU memory) holds the key and the blob and
    /// is wiped before returning. Only for setup (it spins).
    pub fn wrap_key(&mut self, kind: u8, key: &[u8], out: &mut [u8], scratch: usize) -> Result<(), u32> {
        let n = key.len() + r::WRAP_OVERHEAD;
        if out.len() != n {
            return Err(crate::regs::accel::ST_BAD_LENGTH);
        }
        let dst = scratch + key.len().next_multiple_of(8);
        mem::write(scratch, key);
        let mut param = [0u8; 16];
        param[0] = kind;
        let d = Desc { src: scratch as u64, dst: dst as u64, len: key.len() as u32, op: r::OP_KEY_WRAP, param, ..Desc::default() };
        let result = self.run_on(0, &d);
        if result.is_ok() {
            mem::read(dst, out);
        }
        mem::zero(scratch, key.len().next_multiple_of(8) + n);
        result
    }
}

/// Key slots loaded on engine `e` (never the keys).
pub fn keys_loaded(e: usize) -> u32 {
    mmio::read32(engine_reg(e, r::KEYS_LOADED))
}
