//! Access to DPU memory shared with DMA engines (descriptor rings,
//! completion rings, staging buffers). Volatile, so the compiler never
//! caches values the hardware changes behind its back.

/// Reads bytes at physical address `addr`.
pub fn read(addr: usize, out: &mut [u8]) {
    let mut i = 0;
    if addr % 8 == 0 {
        while i + 8 <= out.len() {
            // SAFETY: callers pass DPU RAM addresses (allocated from the
            // runtime's arenas) large enough for `out`; aligned u64 reads.
            let v = unsafe { core::ptr::read_volatile((addr + i) as *const u64) };
            out[i..i + 8].copy_from_slice(&v.to_le_bytes());
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
        while i + 8 <= data.len() {
            let v = u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
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

/// Reads a u32 at an aligned address.
pub fn read_u32(addr: usize) -> u32 {
    crate::mmio::read32(addr)
}

/// Reads a u8.
pub fn read_u8(addr: usize) -> u8 {
    crate::mmio::read8(addr)
}
