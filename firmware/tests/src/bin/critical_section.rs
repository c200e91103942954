//! Every hart increments a plain (non-atomic) counter inside
//! `critical_section::with`, with a nested section inside: the total must be
//! exact, which only holds if the implementation excludes all harts.
#![no_std]
#![no_main]

use core::cell::Cell;
use critical_section::Mutex;
use dpu_fw_tests::{harts, verdict, ALL};

const N: u64 = 200;
static COUNTER: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
static NESTED: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

dpu_rt::entry!(main);

fn main(hart: dpu_rt::HartId) -> ! {
    for _ in 0..N {
        critical_section::with(|cs| {
            let c = COUNTER.borrow(cs);
            let v = c.get();
            // Widen the race window: a broken lock would lose updates here.
            for _ in 0..5 {
                core::hint::spin_loop();
            }
            critical_section::with(|cs2| {
                let n = NESTED.borrow(cs2);
                n.set(n.get() + 1);
            });
            c.set(v + 1);
        });
    }
    ALL.wait(harts());
    if hart.0 != 0 {
        dpu_rt::park();
    }
    let (total, nested) = critical_section::with(|cs| (COUNTER.borrow(cs).get(), NESTED.borrow(cs).get()));
    let want = N * harts() as u64;
    defmt::info!("critical-section counter {=u64}, nested {=u64}, expected {=u64}", total, nested, want);
    // Interrupts must be enabled again after the sections.
    let mie = dpu_hal::csr::mstatus() & dpu_hal::regs::csr::MSTATUS_MIE;
    verdict(total == want && nested == want && mie == 0, 1)
}
