//! Hart 5 panics. Expected: the panic message is logged through defmt and
//! the run fails with the runtime's panic code.
#![no_std]
#![no_main]

dpu_rt::entry!(main);

fn main(hart: dpu_rt::HartId) -> ! {
    if hart.0 == 5 {
        let v = core::hint::black_box(42);
        panic!("deliberate panic {}", v);
    }
    dpu_rt::park()
}
