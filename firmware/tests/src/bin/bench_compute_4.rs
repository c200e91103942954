//! Simulator speed benchmark: the compute kernel on 4 busy hart(s).
#![no_std]
#![no_main]

dpu_rt::entry!(main);

fn main(hart: dpu_rt::HartId) -> ! {
    dpu_fw_tests::bench::run(hart, 4)
}
