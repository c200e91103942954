//! On-chip device models. Register layouts come from `dpu_hal::regs`.

pub mod clint;
pub mod finisher;
pub mod mailbox;
pub mod nor_flash;
pub mod otp;
pub mod plic;
pub mod spi;
pub mod trace;
pub mod uart;

/// Extracts `size` bytes at byte `offset` of a 64-bit register value.
pub(crate) fn reg_read(value: u64, offset: u64, size: u8) -> u64 {
    let shifted = value >> (8 * offset);
    if size >= 8 {
        shifted
    } else {
        shifted & ((1u64 << (8 * size)) - 1)
    }
}

/// Merges a `size`-byte write at byte `offset` into a 64-bit register value.
pub(crate) fn reg_write(old: u64, offset: u64, size: u8, v: u64) -> u64 {
    let mask = if size >= 8 { u64::MAX } else { ((1u64 << (8 * size)) - 1) << (8 * offset) };
    (old & !mask) | ((v << (8 * offset)) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_register_access() {
        let v = 0x1122_3344_5566_7788u64;
        assert_eq!(reg_read(v, 4, 4), 0x1122_3344);
        assert_eq!(reg_read(v, 0, 2), 0x7788);
        assert_eq!(reg_write(v, 4, 4, 0xaabb_ccdd), 0xaabb_ccdd_5566_7788);
        assert_eq!(reg_write(v, 0, 8, 7), 7);
    }
}
