//! Helpers shared by the firmware test images (`src/bin/*.rs`). Each image
//! reports its verdict through the test finisher; `cargo xtask test` runs
//! them under the simulator and checks the exit status and the log.
#![no_std]

pub mod bench;

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_hal::memory_map::HARTS;

/// A sense-reversing barrier for all harts.
pub struct Barrier {
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl Barrier {
    pub const fn new() -> Barrier {
        Barrier { count: AtomicUsize::new(0), generation: AtomicUsize::new(0) }
    }

    /// Waits until `parties` harts have arrived.
    pub fn wait(&self, parties: usize) {
        let gen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == parties {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            while self.generation.load(Ordering::Acquire) == gen {
                core::hint::spin_loop();
            }
        }
    }
}

impl Default for Barrier {
    fn default() -> Self {
        Self::new()
    }
}

/// Barrier across every hart of the chip.
pub static ALL: Barrier = Barrier::new();

/// Ends the test: pass if `ok`, else fail with `code`.
pub fn verdict(ok: bool, code: u16) -> ! {
    if ok {
        defmt::info!("test passed");
        dpu_hal::finisher::pass();
    } else {
        defmt::error!("test failed (code {=u16})", code);
        dpu_hal::finisher::fail(code);
    }
    dpu_rt::park()
}

/// Number of harts.
pub const fn harts() -> usize {
    HARTS
}
