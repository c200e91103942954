//! CLINT driver: software interrupts (IPIs) and the machine timer.

use crate::memory_map::CLINT_BASE;
use crate::mmio;
use crate::regs::clint::{MSIP, MTIME, MTIMECMP};

/// Raises hart `hart`'s machine software interrupt (IPI).
pub fn send_ipi(hart: usize) {
    mmio::write32(CLINT_BASE + MSIP as usize + 4 * hart, 1);
}

/// Clears hart `hart`'s machine software interrupt.
pub fn clear_ipi(hart: usize) {
    mmio::write32(CLINT_BASE + MSIP as usize + 4 * hart, 0);
}

/// Current `mtime`, in ticks of `TIMEBASE_HZ`.
pub fn mtime() -> u64 {
    mmio::read64(CLINT_BASE + MTIME as usize)
}

/// Arms hart `hart`'s timer: mip.MTIP rises once `mtime >= deadline`.
pub fn set_timer(hart: usize, deadline: u64) {
    mmio::write64(CLINT_BASE + MTIMECMP as usize + 8 * hart, deadline);
}
