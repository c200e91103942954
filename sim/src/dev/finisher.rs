//! Test finisher (`dpu_hal::regs::finisher`): a write ends the simulation.

use dpu_hal::regs::finisher::{FAIL, FAULT, PASS};

/// How the firmware asked the simulation to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Pass,
    Fail(u16),
    /// Hart reported a fatal trap.
    Fault { hart: u32 },
}

/// Decodes a finisher write; `None` for unknown commands (ignored).
pub fn decode(hart: u32, value: u32) -> Option<Finish> {
    match value & 0xffff {
        PASS => Some(Finish::Pass),
        FAIL => Some(Finish::Fail((value >> 16) as u16)),
        FAULT => Some(Finish::Fault { hart }),
        _ => None,
    }
}
