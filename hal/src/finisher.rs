//! Test finisher: ends a simulation with an exit status.

use crate::memory_map::FINISHER_BASE;
use crate::mmio;
use crate::regs::finisher::{CONFIG_REJECTED, FAIL, FAULT, NO_BOOTABLE_IMAGE, PASS, REG, WARM_RESTART};

/// Ends the run successfully.
pub fn pass() {
    mmio::write32(FINISHER_BASE + REG as usize, PASS);
}

/// Ends the run with failure code `code` (1..=0xffff).
pub fn fail(code: u16) {
    mmio::write32(FINISHER_BASE + REG as usize, (u32::from(code.max(1)) << 16) | FAIL);
}

/// Ends the run: the boot configuration was rejected for `reason`
/// (`regs::bootcfg::REJECT_*`) at record `index`.
pub fn config_rejected(reason: u16, index: usize) {
    use crate::regs::bootcfg::REJECT_INDEX_BITS;
    let index = index.min((1 << REJECT_INDEX_BITS) - 1) as u32;
    let code = (u32::from(reason) << REJECT_INDEX_BITS) | index;
    mmio::write32(FINISHER_BASE + REG as usize, (code << 16) | CONFIG_REJECTED);
}

/// Ends the run: secure boot found no firmware slot it may run.
pub fn no_bootable_image() {
    mmio::write32(FINISHER_BASE + REG as usize, NO_BOOTABLE_IMAGE);
}

/// Warm restart of the card (`regs::finisher::WARM_RESTART`): every hart
/// restarts at the boot ROM at the end of the current quantum; the PCIe
/// side and memory contents stay.
pub fn warm_restart() {
    mmio::write32(FINISHER_BASE + REG as usize, WARM_RESTART);
}

/// Reports a fatal trap on the calling hart (the simulator prints a fault report).
pub fn fault() {
    mmio::write32(FINISHER_BASE + REG as usize, (1 << 16) | FAULT);
}
