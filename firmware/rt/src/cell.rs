//! Statics owned by one core each.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// Types with a compile-time initial value (for per-core statics).
pub trait ConstInit {
    const INIT: Self;
}

/// `N` values, each claimed once (typically by the core that owns it) and
/// then used without locks.
pub struct PerCore<T, const N: usize> {
    slots: [UnsafeCell<T>; N],
    claimed: [AtomicBool; N],
}

// SAFETY: a slot is handed out at most once (`claimed`), so no two harts
// ever hold references to the same slot.
unsafe impl<T: Send, const N: usize> Sync for PerCore<T, N> {}

impl<T: ConstInit, const N: usize> PerCore<T, N> {
    pub const fn new() -> Self {
        PerCore { slots: [const { UnsafeCell::new(T::INIT) }; N], claimed: [const { AtomicBool::new(false) }; N] }
    }
}

impl<T: ConstInit, const N: usize> Default for PerCore<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> PerCore<T, N> {
    /// Takes slot `i` for good; `None` if out of range or already taken.
    pub fn claim(&'static self, i: usize) -> Option<&'static mut T> {
        let c = self.claimed.get(i)?;
        if c.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the swap above succeeds once per slot, so this is the only
        // reference ever created to it.
        Some(unsafe { &mut *self.slots[i].get() })
    }
}
