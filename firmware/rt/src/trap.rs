//! Trap handling (RISC-V privileged spec §3.1.7, §3.3.1).
//!
//! `_trap_entry` saves the caller-saved registers on the interrupted
//! stack and calls [`_dpu_trap_rust`]. Interrupts go to the handler the
//! application registered with [`set_interrupt_handler`]; synchronous
//! exceptions are fatal: logged with cause, pc and mtval, then reported to
//! the finisher (the simulator prints a full fault report) and the hart parks.

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_hal::regs::csr::{IRQ_MEI, IRQ_MSI, IRQ_MTI, MCAUSE_INTERRUPT};

core::arch::global_asm!(
    r#"
    .section .text.trap, "ax"
    .global _trap_entry
    .align 4
_trap_entry:
    addi    sp, sp, -144
    sd      ra, 0(sp)
    sd      t0, 8(sp)
    sd      t1, 16(sp)
    sd      t2, 24(sp)
    sd      a0, 32(sp)
    sd      a1, 40(sp)
    sd      a2, 48(sp)
    sd      a3, 56(sp)
    sd      a4, 64(sp)
    sd      a5, 72(sp)
    sd      a6, 80(sp)
    sd      a7, 88(sp)
    sd      t3, 96(sp)
    sd      t4, 104(sp)
    sd      t5, 112(sp)
    sd      t6, 120(sp)
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    _dpu_trap_rust
    ld      ra, 0(sp)
    ld      t0, 8(sp)
    ld      t1, 16(sp)
    ld      t2, 24(sp)
    ld      a0, 32(sp)
    ld      a1, 40(sp)
    ld      a2, 48(sp)
    ld      a3, 56(sp)
    ld      a4, 64(sp)
    ld      a5, 72(sp)
    ld      a6, 80(sp)
    ld      a7, 88(sp)
    ld      t3, 96(sp)
    ld      t4, 104(sp)
    ld      t5, 112(sp)
    ld      t6, 120(sp)
    addi    sp, sp, 144
    mret
    "#
);

/// A machine-level interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Interrupt {
    /// CLINT msip (IPI).
    Software,
    /// CLINT mtimecmp reached.
    Timer,
    /// PLIC (claim it to learn the source).
    External,
}

/// Interrupt handler: `fn(hart, interrupt)`.
pub type Handler = fn(crate::HartId, Interrupt);

static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs the interrupt handler for all harts (call before enabling
/// interrupts). Without one, an interrupt masks its source and logs a warning.
pub fn set_interrupt_handler(h: Handler) {
    HANDLER.store(h as usize, Ordering::Release);
}

#[unsafe(no_mangle)]
extern "C" fn _dpu_trap_rust(mcause: u64, mepc: u64, mtval: u64) {
    let hart = crate::hart();
    if mcause & MCAUSE_INTERRUPT != 0 {
        let irq = match mcause & !MCAUSE_INTERRUPT {
            IRQ_MSI => Interrupt::Software,
            IRQ_MTI => Interrupt::Timer,
            IRQ_MEI => Interrupt::External,
            other => {
                defmt::error!("hart {=usize}: unexpected interrupt {=u64}", hart.0, other);
                return;
            }
        };
        let h = HANDLER.load(Ordering::Acquire);
        if h == 0 {
            defmt::warn!("hart {=usize}: {} interrupt with no handler; masking it", hart.0, irq);
            dpu_hal::csr::mie_clear(1 << (mcause & !MCAUSE_INTERRUPT));
            return;
        }
        // SAFETY: HANDLER only ever holds a `Handler` stored by
        // `set_interrupt_handler`.
        let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
        f(hart, irq);
        return;
    }
    defmt::error!(
        "hart {=usize}: fatal exception mcause={=u64} mepc={=u64:#x} mtval={=u64:#x}",
        hart.0,
        mcause,
        mepc,
        mtval
    );
    dpu_hal::finisher::fault();
    crate::park();
}
