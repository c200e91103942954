//! All 80 harts log at the same time. Expected: every frame decodes, each
//! hart's lines arrive complete and in order (checked by xtask).
#![no_std]
#![no_main]

use dpu_fw_tests::{harts, verdict, ALL};

const LINES: u32 = 20;

dpu_rt::entry!(main);

fn main(hart: dpu_rt::HartId) -> ! {
    ALL.wait(harts());
    for i in 0..LINES {
        defmt::info!("storm hart {=usize} line {=u32} payload {=u64:#x}", hart.0, i, (hart.0 as u64) << 32 | u64::from(i));
    }
    ALL.wait(harts());
    if hart.0 == 0 {
        verdict(true, 0);
    }
    dpu_rt::park()
}
