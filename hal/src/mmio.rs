//! Volatile MMIO access. The only place the firmware dereferences device addresses.

/// Reads a u32 device register.
#[inline(always)]
pub fn read32(addr: usize) -> u32 {
    // SAFETY: callers pass addresses of device registers from the generated
    // memory map; they are always mapped and side-effect reads are intended.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a u32 device register.
#[inline(always)]
pub fn write32(addr: usize, v: u32) {
    // SAFETY: see `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// Reads a u64 device register.
#[inline(always)]
pub fn read64(addr: usize) -> u64 {
    // SAFETY: see `read32`.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// Writes a u64 device register.
#[inline(always)]
pub fn write64(addr: usize, v: u64) {
    // SAFETY: see `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// Reads a byte device register.
#[inline(always)]
pub fn read8(addr: usize) -> u8 {
    // SAFETY: see `read32`.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

/// Writes a byte device register.
#[inline(always)]
pub fn write8(addr: usize, v: u8) {
    // SAFETY: see `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

/// Writes a u16 device register.
#[inline(always)]
pub fn write16(addr: usize, v: u16) {
    // SAFETY: see `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u16, v) }
}
