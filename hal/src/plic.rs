//! PLIC driver. Context `h` is hart `h`'s machine mode (RISC-V PLIC spec 1.0.0).

use crate::memory_map::PLIC_BASE;
use crate::mmio;
use crate::regs::plic::*;

/// Sets a source's priority (0 disables it).
pub fn set_priority(source: u32, priority: u32) {
    mmio::write32(PLIC_BASE + PRIORITY as usize + 4 * source as usize, priority);
}

/// Enables or disables `source` for `hart`'s context.
pub fn set_enabled(hart: usize, source: u32, on: bool) {
    let addr = PLIC_BASE + ENABLE as usize + ENABLE_STRIDE as usize * hart + 4 * (source as usize / 32);
    let bit = 1u32 << (source % 32);
    let v = mmio::read32(addr);
    mmio::write32(addr, if on { v | bit } else { v & !bit });
}

/// Sets the priority threshold of `hart`'s context.
pub fn set_threshold(hart: usize, threshold: u32) {
    mmio::write32(PLIC_BASE + CONTEXT as usize + CONTEXT_STRIDE as usize * hart + THRESHOLD as usize, threshold);
}

/// Claims the highest-priority pending source for `hart`, if any.
pub fn claim(hart: usize) -> Option<u32> {
    let id = mmio::read32(PLIC_BASE + CONTEXT as usize + CONTEXT_STRIDE as usize * hart + CLAIM as usize);
    if id == 0 {
        None
    } else {
        Some(id)
    }
}

/// Signals completion of a claimed source.
pub fn complete(hart: usize, source: u32) {
    mmio::write32(PLIC_BASE + CONTEXT as usize + CONTEXT_STRIDE as usize * hart + CLAIM as usize, source);
}
