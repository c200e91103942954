//! Compute-bound benchmark kernel: simulator speed (instructions per host
//! second), not firmware performance.

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_rt::HartId;

/// Iterations per busy hart.
pub const ITERATIONS: u64 = 2_000_000;

static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// A mix of ALU, multiply, loads/stores to the stack and branches.
#[inline(never)]
pub fn kernel(seed: u64, iterations: u64) -> u64 {
    let mut x = seed | 1;
    let mut acc = [0u64; 8];
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x & 7) as usize;
        acc[slot] = acc[slot].wrapping_add(x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if x & 0x10 != 0 {
            acc[(i & 7) as usize] ^= x;
        }
    }
    core::hint::black_box(acc).iter().fold(0, |a, &b| a ^ b)
}

/// Runs the kernel on the first `busy` harts; the others sleep. The last
/// busy hart to finish ends the run.
pub fn run(hart: HartId, busy: usize) -> ! {
    if hart.0 >= busy {
        dpu_rt::park();
    }
    let r = kernel(hart.0 as u64 + 1, ITERATIONS);
    core::hint::black_box(r);
    if FINISHED.fetch_add(1, Ordering::AcqRel) + 1 == busy {
        defmt::info!("bench: {=usize} busy harts x {=u64} iterations done", busy, ITERATIONS);
        dpu_hal::finisher::pass();
    }
    dpu_rt::park()
}
