//! Runtime of the DPU firmware image.
//!
//! * [`start`]: `_start` for every hart: per-hart stack at the top of the
//!   hart's cluster SMEM, `.bss`/`.data` set up once by hart 0, which then
//!   releases the other harts with an IPI.
//! * [`trap`]: trap entry; interrupts go to the handler the application
//!   registers, exceptions are fatal (logged, reported to the finisher).
//! * [`cs`]: a `critical-section` implementation correct for many harts.
//! * [`log`]: the defmt logger: one encoder and one trace stream per hart.
//! * [`copy`]: long `memcpy`s on a DMA channel of the hart (copy offload).
//!
//! The application provides its entry point with [`entry!`].
#![no_std]

// Word-at-a-time memcpy/memmove/memset for misaligned payloads.
use dpu_mem as _;

pub mod alloc;
pub mod cell;
pub mod copy;
pub mod cs;
pub mod log;
pub mod start;
pub mod trap;

pub use cell::ConstInit;
pub use dpu_hal::HartId;
pub use trap::{set_interrupt_handler, Interrupt};

/// Declares the application's entry point: `fn(HartId) -> !`, called on
/// every hart after the runtime is set up.
#[macro_export]
macro_rules! entry {
    ($path:path) => {
        #[unsafe(no_mangle)]
        pub fn __dpu_main(hart: $crate::HartId) -> ! {
            let f: fn($crate::HartId) -> ! = $path;
            f(hart)
        }
    };
}

/// The calling hart.
#[inline(always)]
pub fn hart() -> HartId {
    HartId(dpu_hal::csr::mhartid() as usize)
}

/// Stops this hart for good (sleeps with every interrupt masked).
pub fn park() -> ! {
    dpu_hal::csr::interrupts_disable();
    dpu_hal::csr::mie_clear(u64::MAX);
    loop {
        dpu_hal::csr::wfi();
    }
}

/// Chip stamp: chip layout fingerprint (8 bytes LE), board fingerprint
/// (8 bytes LE), chip name; read by the simulator to refuse an image built
/// for another chip or board layout.
#[used]
#[unsafe(link_section = ".dpu_chip")]
static CHIP_STAMP: [u8; 48] = chip_stamp();

const fn chip_stamp() -> [u8; 48] {
    let mut out = [0u8; 48];
    let fp = dpu_hal::memory_map::CHIP_FINGERPRINT.to_le_bytes();
    let bfp = dpu_hal::memory_map::BOARD_FINGERPRINT.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        out[i] = fp[i];
        out[8 + i] = bfp[i];
        i += 1;
    }
    let name = dpu_hal::memory_map::CHIP_NAME.as_bytes();
    let mut j = 0;
    while j < name.len() && j < 31 {
        out[16 + j] = name[j];
        j += 1;
    }
    out
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    dpu_hal::finisher::fail(0xdead);
    park()
}
