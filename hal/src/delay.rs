//! Delays on `mtime` (`embedded_hal::delay::DelayNs`): [`Sleep`] parks the
//! hart in `wfi` until its CLINT timer fires (a long flash erase costs the
//! core nothing); [`spin_ns`] polls for short waits.

use crate::memory_map::TIMEBASE_HZ;

fn ticks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(TIMEBASE_HZ)).div_ceil(1_000_000_000) as u64
}

/// Polls `mtime` for `ns` nanoseconds.
pub fn spin_ns(ns: u64) {
    let end = crate::clint::mtime() + ticks(ns);
    while crate::clint::mtime() < end {}
}

/// Sleeps hart `hart` in `wfi` on its machine timer (mie.MTIE is set;
/// with mstatus.MIE clear the wake-up takes no trap). The hart's timer
/// is left disarmed.
pub struct Sleep {
    pub hart: usize,
}

#[cfg(target_arch = "riscv64")]
impl embedded_hal::delay::DelayNs for Sleep {
    fn delay_ns(&mut self, ns: u32) {
        let end = crate::csr::time() + ticks(u64::from(ns));
        crate::clint::set_timer(self.hart, end);
        crate::csr::mie_set(crate::regs::csr::MIP_MTIP);
        while crate::csr::time() < end {
            crate::csr::wfi();
        }
        crate::clint::set_timer(self.hart, u64::MAX);
    }
}
