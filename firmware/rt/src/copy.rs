//! Long `memcpy`s on the DMA engines (copy offload).
//!
//! A hart that calls [`start`] gets a second DMA channel of its own, for
//! local copies (`OP_COPY`, `dpu_hal::regs::dma`). From then on its
//! `memcpy`s of at least [`dpu_mem::OFFLOAD_MIN`] bytes post one
//! descriptor and wait for its completion (~30 cycles plus 16 bytes per
//! cycle on the engine) instead of moving the bytes through the core,
//! whose loads from packet buffers the NIC just wrote into DDR miss in L1
//! on every line. This is Linux's I/OAT/DSA copy offload and SPDK's accel
//! framework "copy" in the small: the TCP stack's receive and send copies
//! are the big users.
//!
//! The same channel computes CRC32Cs on its engine ([`crc32c`], `OP_CRC32C`,
//! synchronous too): the NVMe/TCP target's data digests over its staging
//! pages.
//!
//! The copy is synchronous: `memcpy` returns when the engine has written
//! the destination (the completion follows the data). The simulated L1D
//! keeps timing tags only, so there is nothing to invalidate; on silicon
//! with a non-coherent data cache the destination lines would have to be
//! invalidated before they are read.

use core::sync::atomic::{AtomicPtr, Ordering};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::memory_map::{DMA_CHANNELS_PER_ENGINE, DMA_ENGINES, HARTS};
use dpu_hal::regs::dma as r;

/// Descriptors per copy channel (one copy is in flight at a time).
const RING: u32 = 4;
/// Copies belong to no PCIe function.
const NO_FUNCTION: u16 = u16::MAX;

struct Copier {
    chan: Channel,
    /// A copy is in flight (a trap handler's memcpy then uses the core).
    busy: bool,
    /// The CRC word an `OP_CRC32C` descriptor continues and writes back.
    word: u32,
}

static COPIERS: [AtomicPtr<Copier>; HARTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; HARTS];

/// DMA engines that carry only copies (the upper half of the engines),
/// or 0 when the chip has too few engines or channels to split them (then
/// copies share each engine with host transfers).
///
/// An engine completes its descriptors in the order it started them,
/// whichever channel they came from (so the simulator models it:
/// `dpusim`'s `dma` module, `complete_due`): a copy that
/// shares an engine with host transfers waits for their PCIe latency too
/// (700 ns for a host read, 250 ns for a posted write on the dpu-card
/// board), and the hart spins through that wait. With eight harts per
/// engine at 64 data-plane cores, that wait was most of the copy's cost.
/// On engines of their own, copies queue only behind copies. (On an
/// engine that completed each channel in order but channels independently,
/// the split measured the same as sharing: 64 cores, ~12,000 cycles per
/// read either way.)
pub const COPY_ENGINES: usize = {
    let copy = DMA_ENGINES / 2;
    let host = DMA_ENGINES - copy;
    if copy > 0 && HARTS.div_ceil(host) <= DMA_CHANNELS_PER_ENGINE && HARTS.div_ceil(copy) <= DMA_CHANNELS_PER_ENGINE {
        copy
    } else {
        0
    }
};

/// DMA engines that carry host transfers (all of them when
/// [`COPY_ENGINES`] is 0).
pub const HOST_ENGINES: usize = DMA_ENGINES - COPY_ENGINES;

/// The host-transfer channel of `hart` (one per hart): on engine
/// `hart % HOST_ENGINES`, so consecutive harts (the cores of one cluster)
/// spread their traffic over all host engines. `None` if the chip has no
/// channel for it.
pub const fn host_channel(hart: usize) -> Option<usize> {
    let slot = hart / HOST_ENGINES;
    if slot < DMA_CHANNELS_PER_ENGINE {
        Some((hart % HOST_ENGINES) * DMA_CHANNELS_PER_ENGINE + slot)
    } else {
        None
    }
}

/// The copy channel of `hart`, if the chip has one for it: on copy
/// engine `hart % COPY_ENGINES` when the chip has copy engines, else on
/// the same engine as the hart's host-transfer channel, after the
/// `ceil(harts / engines)` host-transfer channels.
pub fn channel_of(hart: usize) -> Option<usize> {
    let (engine, slot) = if COPY_ENGINES > 0 {
        (HOST_ENGINES + hart % COPY_ENGINES, hart / COPY_ENGINES)
    } else {
        (hart % DMA_ENGINES, HARTS.div_ceil(DMA_ENGINES) + hart / DMA_ENGINES)
    };
    (slot < DMA_CHANNELS_PER_ENGINE).then_some(engine * DMA_CHANNELS_PER_ENGINE + slot)
}

/// Gives the calling hart its copy channel and sends its long `memcpy`s
/// there. False if the chip has no channel for it or memory ran out (the
/// hart then copies with the core, as before).
pub fn start() -> bool {
    let hart = crate::hart().0;
    let Some(index) = channel_of(hart) else { return false };
    if !COPIERS[hart].load(Ordering::Relaxed).is_null() {
        return true;
    }
    let Some(ring) = crate::alloc::smem(Channel::memory(RING), 64) else { return false };
    let chan = Channel::start(index, ring, RING, None);
    if !chan.running() {
        return false;
    }
    let Some(c) = crate::alloc::smem_put(Copier { chan, busy: false, word: 0 }) else { return false };
    COPIERS[hart].store(c, Ordering::Release);
    dpu_mem::set_offload(offload);
    true
}

/// The `dpu_mem` offload: one `OP_COPY` descriptor, then wait for it.
///
/// # Safety
/// `memcpy`'s contract: `src..src+n` readable, `dst..dst+n` writable, not
/// overlapping.
unsafe fn offload(dst: *mut u8, src: *const u8, n: usize) -> bool {
    let Some(c) = idle_copier(n) else { return false };
    // The engine always completes a descriptor (an address that is not
    // RAM gives ST_LOCAL_FAULT): then the core copies, and faults where a
    // plain memcpy would have.
    c.busy = true;
    let ok = c.run(&Desc { host: src as u64, local: dst as u64, len: n as u32, function: NO_FUNCTION, op: r::OP_COPY, flags: r::FLAG_END, msix: 0, cookie: 0 });
    c.busy = false;
    ok
}

/// The calling hart's copier when it has one, no copy is in flight on it
/// and `len` bytes fit one descriptor.
fn idle_copier(len: usize) -> Option<&'static mut Copier> {
    let hart = dpu_hal::csr::mhartid() as usize;
    let p = COPIERS.get(hart)?.load(Ordering::Acquire);
    if p.is_null() || len > r::MAX_LEN as usize {
        return None;
    }
    // SAFETY: a copier is only ever used by the hart that owns it (the
    // slot is indexed by mhartid); a trap handler on this hart that copies
    // while a copy is in flight sees `busy` and does not touch it.
    let c = unsafe { &mut *p };
    (!c.busy).then_some(c)
}

impl Copier {
    /// Pushes the one-descriptor chain `d`, rings the engine and waits for
    /// its completion; whether it succeeded.
    fn run(&mut self, d: &Desc) -> bool {
        if !self.chan.push(d) {
            return false;
        }
        self.chan.kick();
        loop {
            if let Some(done) = self.chan.poll() {
                return done.status == r::ST_OK;
            }
            core::hint::spin_loop();
        }
    }
}

/// The finished CRC32C of `crc` (the finished CRC32C of the bytes before,
/// 0 for none) continued over `len` bytes of DPU memory at `addr`, by the
/// calling hart's copy channel's engine (one `OP_CRC32C` descriptor; the
/// hart waits, as for a copy). `None` without a copy channel, while a copy
/// is in flight, or for a range the engine refused: the caller then
/// computes it on the core.
pub fn crc32c(crc: u32, addr: usize, len: usize) -> Option<u32> {
    let c = idle_copier(len)?;
    if len == 0 {
        return Some(crc);
    }
    c.busy = true;
    let word = core::ptr::addr_of_mut!(c.word);
    // SAFETY: `word` is this copier's own aligned field; the engine writes
    // it back before the completion is posted, so volatile accesses keep
    // the core from caching it across the wait.
    unsafe { word.write_volatile(crc) };
    let d = Desc::crc32c(addr as u64, len as u32, word as u64, 0);
    let ok = c.run(&Desc { flags: r::FLAG_END, ..d });
    // SAFETY: as above.
    let v = unsafe { word.read_volatile() };
    c.busy = false;
    ok.then_some(v)
}
