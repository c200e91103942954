//! Test finisher: ends a simulation with an exit status.

use crate::memory_map::FINISHER_BASE;
use crate::mmio;
use crate::regs::finisher::{FAIL, FAULT, PASS, REG};

/// Ends the run successfully.
pub fn pass() {
    mmio::write32(FINISHER_BASE + REG as usize, PASS);
}

/// Ends the run with failure code `code` (1..=0xffff).
pub fn fail(code: u16) {
    mmio::write32(FINISHER_BASE + REG as usize, (u32::from(code.max(1)) << 16) | FAIL);
}

/// Reports a fatal trap on the calling hart (the simulator prints a fault report).
pub fn fault() {
    mmio::write32(FINISHER_BASE + REG as usize, (1 << 16) | FAULT);
}
