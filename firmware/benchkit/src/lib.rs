//! The compute-bound kernel of the simulator speed benchmarks (a mix of
//! ALU, multiply, stack loads/stores and branches). Shared by the firmware
//! bench images and the bare-metal image that also runs in QEMU.
#![no_std]

/// Runs `iterations` rounds from `seed`; returns a checksum.
#[inline(never)]
pub fn kernel(seed: u64, iterations: u64) -> u64 {
    let mut x = seed | 1;
    let mut acc = [0u64; 8];
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x & 7) as usize;
        acc[slot] = acc[slot].wrapping_add(x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if x & 0x10 != 0 {
            acc[(i & 7) as usize] ^= x;
        }
    }
    core::hint::black_box(acc).iter().fold(0, |a, &b| a ^ b)
}
