//! Boot ROM contents: the reset stub every hart starts at.
//!
//! ```text
//! csrr  a0, mhartid      # a0 = hart id (the image's _start reads it too)
//! auipc t0, 0
//! ld    t0, 12(t0)       # t0 = entry point stored after the stub
//! jr    t0
//! .dword entry
//! ```
//! Booting from flash, the ROM stage (`crate::secure_boot`) verifies the
//! first-stage bootloader first and the stub jumps to its entry; if the
//! ROM refuses it, [`halt_stub`] parks every hart.

use crate::isa::asm;
use dpu_hal::regs::csr::MHARTID;

/// Reset stub jumping to `entry`.
pub fn reset_stub(entry: u64) -> Vec<u8> {
    const A0: u32 = 10;
    const T0: u32 = 5;
    let words = [
        asm::csrrs(A0, u32::from(MHARTID), 0),
        asm::auipc(T0, 0),
        asm::ld(T0, T0, 12),
        asm::jalr(0, T0, 0),
    ];
    let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    v.extend_from_slice(&entry.to_le_bytes());
    v
}

/// What a ROM that refused to boot leaves the harts running: `wfi` forever.
pub fn halt_stub() -> Vec<u8> {
    // wfi; j -4
    let words = [0x1050_0073u32, asm::j(0, -4)];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
