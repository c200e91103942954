//! Compute-bound benchmark kernel: simulator speed (instructions per host
//! second), not firmware performance.

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_rt::HartId;

/// Iterations per busy hart.
pub const ITERATIONS: u64 = 2_000_000;

static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// Runs the kernel on the first `busy` harts; the others sleep. The last
/// busy hart to finish ends the run.
pub fn run(hart: HartId, busy: usize) -> ! {
    if hart.0 >= busy {
        dpu_rt::park();
    }
    let r = dpu_benchkit::kernel(hart.0 as u64 + 1, ITERATIONS);
    core::hint::black_box(r);
    if FINISHED.fetch_add(1, Ordering::AcqRel) + 1 == busy {
        defmt::info!("bench: {=usize} busy harts x {=u64} iterations done", busy, ITERATIONS);
        dpu_hal::finisher::pass();
    }
    dpu_rt::park()
}
