//! Test finisher (`dpu_hal::regs::finisher`): a write ends the simulation.

use dpu_hal::regs::bootcfg::REJECT_INDEX_BITS;
use dpu_hal::regs::finisher::{CONFIG_REJECTED, FAIL, FAULT, NO_BOOTABLE_IMAGE, PASS};

/// How the firmware asked the simulation to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Pass,
    Fail(u16),
    /// Hart reported a fatal trap.
    Fault { hart: u32 },
    /// The firmware rejected the boot configuration: `reason` is one of
    /// `dpu_hal::regs::bootcfg::REJECT_*`, `index` the record.
    ConfigRejected { reason: u16, index: u16 },
    /// The bootloader refused every firmware slot.
    NoBootableImage,
}

/// Decodes a finisher write; `None` for unknown commands (ignored).
pub fn decode(hart: u32, value: u32) -> Option<Finish> {
    match value & 0xffff {
        PASS => Some(Finish::Pass),
        FAIL => Some(Finish::Fail((value >> 16) as u16)),
        FAULT => Some(Finish::Fault { hart }),
        NO_BOOTABLE_IMAGE => Some(Finish::NoBootableImage),
        CONFIG_REJECTED => {
            let code = value >> 16;
            Some(Finish::ConfigRejected { reason: (code >> REJECT_INDEX_BITS) as u16, index: (code & ((1 << REJECT_INDEX_BITS) - 1)) as u16 })
        }
        _ => None,
    }
}
