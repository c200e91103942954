//! Bare-metal compute benchmark: hart 0 runs the shared kernel and writes
//! the test finisher (pass); other harts sleep. No runtime and no defmt, so
//! the same ELF runs in dpusim and in `qemu-system-riscv64 -machine virt`.
#![no_std]
#![no_main]

include!(concat!(env!("OUT_DIR"), "/finisher.rs"));
include!(concat!(env!("OUT_DIR"), "/stamp.rs"));

/// Chip stamp (as `dpu-rt` writes it): dpusim checks the image was built
/// for the chip it runs.
#[used]
#[unsafe(link_section = ".dpu_chip")]
static CHIP_STAMP: [u8; 48] = CHIP_STAMP_BYTES;

/// Rounds of the kernel (~20 instructions each).
const ITERATIONS: u64 = 20_000_000;

core::arch::global_asm!(
    r#"
    .section .text.start, "ax"
    .global _start
_start:
    csrr    t0, mhartid
    bnez    t0, 2f
    la      sp, _stack_top
    call    bench_main
2:  wfi
    j       2b
    "#
);

#[unsafe(no_mangle)]
extern "C" fn bench_main() -> ! {
    let r = dpu_benchkit::kernel(1, ITERATIONS);
    core::hint::black_box(r);
    // SAFETY: the finisher register of the chip this image was built for.
    unsafe { core::ptr::write_volatile(FINISHER as *mut u32, 0x5555) };
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
