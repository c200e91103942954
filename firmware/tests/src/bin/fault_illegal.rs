//! Hart 17 executes an illegal instruction. Expected: the runtime's trap
//! handler reports a fatal exception and the simulator prints a fault
//! report naming hart 17, the cause, the pc's symbol and the registers, and
//! exits non-zero.
#![no_std]
#![no_main]

dpu_rt::entry!(main);

#[inline(never)]
fn faulting_function(marker: u64) {
    core::hint::black_box(marker);
    dpu_hal::cpu::illegal_instruction();
}

fn main(hart: dpu_rt::HartId) -> ! {
    if hart.0 == 17 {
        defmt::info!("hart 17 about to execute an illegal instruction");
        faulting_function(0x5eed_f00d);
    }
    dpu_rt::park()
}
