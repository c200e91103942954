//! `critical-section` for many harts.
//!
//! Acquire: clear `mstatus.MIE` on this hart, then take a global spinning
//! owner lock (re-entrant on the same hart). Release: drop the lock if this
//! call took it, restore MIE. The restore state packs both facts in a u8:
//! bit 0 = interrupts were enabled, bit 1 = nested (lock already held).

use core::sync::atomic::{AtomicUsize, Ordering};

const FREE: usize = usize::MAX;
static OWNER: AtomicUsize = AtomicUsize::new(FREE);

struct MultiHartCs;
critical_section::set_impl!(MultiHartCs);

// SAFETY: mutual exclusion across harts by the owner lock, and against
// this hart's interrupt handlers by masking MIE for the whole section.
unsafe impl critical_section::Impl for MultiHartCs {
    unsafe fn acquire() -> u8 {
        let mie = dpu_hal::csr::interrupts_disable();
        let me = dpu_hal::csr::mhartid() as usize;
        let mut state = mie as u8;
        if OWNER.load(Ordering::Relaxed) == me {
            state |= 2;
        } else {
            while OWNER.compare_exchange_weak(FREE, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
                core::hint::spin_loop();
            }
        }
        state
    }

    unsafe fn release(state: u8) {
        if state & 2 == 0 {
            OWNER.store(FREE, Ordering::Release);
        }
        if state & 1 != 0 {
            dpu_hal::csr::interrupts_enable();
        }
    }
}
