//! Every hart increments two shared counters N times: one with `amoadd.d`
//! (AtomicU64::fetch_add), one with an explicit LR/SC loop. The totals must
//! be exact.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use dpu_fw_tests::{harts, verdict, ALL};

const N: u64 = 500;
static AMO: AtomicU64 = AtomicU64::new(0);
static LRSC: AtomicU64 = AtomicU64::new(0);

dpu_rt::entry!(main);

fn main(hart: dpu_rt::HartId) -> ! {
    for _ in 0..N {
        AMO.fetch_add(1, Ordering::Relaxed);
        dpu_hal::cpu::lr_sc_add(&LRSC, 1);
    }
    ALL.wait(harts());
    if hart.0 != 0 {
        dpu_rt::park();
    }
    let (amo, lrsc) = (AMO.load(Ordering::Acquire), LRSC.load(Ordering::Acquire));
    let want = N * harts() as u64;
    defmt::info!("amoadd total {=u64}, lr/sc total {=u64}, expected {=u64}", amo, lrsc, want);
    verdict(amo == want && lrsc == want, 1)
}
