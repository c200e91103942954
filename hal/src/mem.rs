//! Access to DPU memory shared with DMA engines (descriptor rings,
//! completion rings, staging buffers). Volatile, so the compiler never
//! caches values the hardware changes behind its back.

/// Reads bytes at physical address `addr`.
pub fn read(addr: usize, out: &mut [u8]) {
    let mut i = 0;
    if addr % 8 == 0 {
        for chunk in out.chunks_exact_mut(8) {
            // SAFETY: callers pass DPU RAM addresses (allocated from the
            // runtime's arenas) large enough for `out`; aligned u64 reads.
            let v = unsafe { core::ptr::read_volatile((addr + i) as *const u64) };
            // SAFETY: `chunk` is 8 writable bytes (any alignment).
            unsafe { crate::cpu::store_u64_unaligned(chunk.as_mut_ptr(), v) };
            i += 8;
        }
    }
    while i < out.len() {
        // SAFETY: as above, byte reads.
        out[i] = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
        i += 1;
    }
}

/// Writes bytes at physical address `addr`.
pub fn write(addr: usize, data: &[u8]) {
    let mut i = 0;
    if addr % 8 == 0 {
        for chunk in data.chunks_exact(8) {
            // SAFETY: `chunk` is 8 readable bytes (any alignment).
            let v = unsafe { crate::cpu::load_u64_unaligned(chunk.as_ptr()) };
            // SAFETY: see `read`.
            unsafe { core::ptr::write_volatile((addr + i) as *mut u64, v) };
            i += 8;
        }
    }
    while i < data.len() {
        // SAFETY: see `read`.
        unsafe { core::ptr::write_volatile((addr + i) as *mut u8, data[i]) };
        i += 1;
    }
}

/// Writes 64-bit words at an 8-byte aligned address.
#[inline]
pub fn write_words(addr: usize, words: &[u64]) {
    for (i, w) in words.iter().enumerate() {
        crate::mmio::write64(addr + 8 * i, *w);
    }
}

/// Reads 64-bit words from an 8-byte aligned address.
#[inline]
pub fn read_words(addr: usize, out: &mut [u64]) {
    for (i, w) in out.iter_mut().enumerate() {
        *w = crate::mmio::read64(addr + 8 * i);
    }
}

/// Zero-fills `len` bytes (both multiples of 8) at an 8-byte aligned address.
pub fn zero(addr: usize, len: usize) {
    let mut a = addr;
    while a < addr + len {
        crate::mmio::write64(a, 0);
        a += 8;
    }
}

/// Reads a u32 at an aligned address.
pub fn read_u32(addr: usize) -> u32 {
    crate::mmio::read32(addr)
}

/// Reads a u8.
pub fn read_u8(addr: usize) -> u8 {
    crate::mmio::read8(addr)
}
