//! Timer interrupt and IPI delivery, and `wfi` wake-up.
//!
//! Hart 0 arms its timer 50 us ahead and sleeps in `wfi` with interrupts
//! enabled; the handler records when it ran. Then hart 0 sends an IPI to
//! every other hart (all sleeping in `wfi`); each handler counts itself.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use dpu_fw_tests::{harts, verdict};
use dpu_hal::memory_map::TIMEBASE_HZ;
use dpu_hal::regs::csr::{MIP_MSIP, MIP_MTIP};
use dpu_hal::{clint, csr};
use dpu_rt::{HartId, Interrupt};

static TIMER_FIRED_AT: AtomicU64 = AtomicU64::new(0);
static IPIS: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicUsize = AtomicUsize::new(0);

fn on_interrupt(hart: HartId, irq: Interrupt) {
    match irq {
        Interrupt::Timer => {
            TIMER_FIRED_AT.store(csr::time(), Ordering::Release);
            clint::set_timer(hart.0, u64::MAX);
        }
        Interrupt::Software => {
            clint::clear_ipi(hart.0);
            IPIS.fetch_add(1, Ordering::AcqRel);
        }
        Interrupt::External => {}
    }
}

dpu_rt::entry!(main);

fn main(hart: HartId) -> ! {
    if hart.0 == 0 {
        dpu_rt::set_interrupt_handler(on_interrupt);
    }
    csr::mie_set(MIP_MSIP);
    csr::interrupts_enable();
    if hart.0 != 0 {
        READY.fetch_add(1, Ordering::AcqRel);
        // Sleep until the IPI handler has run (wfi may wake spuriously).
        let before = IPIS.load(Ordering::Acquire);
        loop {
            csr::wfi();
            if IPIS.load(Ordering::Acquire) > before || csr::mip() & MIP_MSIP == 0 {
                break;
            }
        }
        dpu_rt::park();
    }
    while READY.load(Ordering::Acquire) < harts() - 1 {
        core::hint::spin_loop();
    }
    // 1. Timer: 50 us ahead.
    let deadline = csr::time() + 50 * TIMEBASE_HZ / 1_000_000;
    clint::set_timer(0, deadline);
    csr::mie_set(MIP_MTIP);
    while TIMER_FIRED_AT.load(Ordering::Acquire) == 0 {
        csr::wfi();
    }
    let fired = TIMER_FIRED_AT.load(Ordering::Acquire);
    let late = fired.saturating_sub(deadline);
    defmt::info!("timer: deadline {=u64}, handler ran at {=u64} ({=u64} ticks late)", deadline, fired, late);
    // Latency budget: wake from wfi at the deadline, trap entry, register
    // save and handler prologue take ~200 cycles = 20 ticks.
    let timer_ok = fired >= deadline && late < 30;

    // 2. IPIs to every other hart; give them 200 us.
    for h in 1..harts() {
        clint::send_ipi(h);
    }
    let limit = csr::time() + 200 * TIMEBASE_HZ / 1_000_000;
    while IPIS.load(Ordering::Acquire) < harts() - 1 && csr::time() < limit {
        core::hint::spin_loop();
    }
    let got = IPIS.load(Ordering::Acquire);
    defmt::info!("ipi: {=usize}/{=usize} harts took the software interrupt", got, harts() - 1);
    verdict(timer_ok && got == harts() - 1, if timer_ok { 2 } else { 1 })
}
