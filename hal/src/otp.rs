//! OTP fuses (`regs::otp`): the root-of-trust key hash, the
//! anti-rollback counter (a thermometer code: blown bits counted) and the
//! device key's lock. The device key itself (`regs::otp::DEVICE_KEY`) is
//! for the crypto engines' key ladder only: once locked its words read as
//! zero here, and the firmware reaches it only through
//! `crypto::Engines::wrap_key` / `unwrap_key`.

use crate::memory_map::{OTP_BASE, OTP_WORDS};
use crate::mmio;
use crate::regs::otp::*;

/// Fuse word `i` (0 past the array).
pub fn word(i: usize) -> u32 {
    if i < OTP_WORDS {
        mmio::read32(OTP_BASE + FUSE as usize + 4 * i)
    } else {
        0
    }
}

/// SHA-256 of the root public key, as provisioned (all zero: none).
pub fn key_hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    for i in 0..KEY_HASH_WORDS {
        h[4 * i..4 * i + 4].copy_from_slice(&word(KEY_HASH + i).to_le_bytes());
    }
    h
}

/// The anti-rollback counter: images with a lower security counter are refused.
pub fn rollback_counter() -> u32 {
    (ROLLBACK..ROLLBACK + ROLLBACK_WORDS).map(|i| word(i).count_ones()).sum()
}

/// Whether the device key is locked away from the cores (provisioned
/// cards: only the crypto engines use it).
pub fn device_key_locked() -> bool {
    word(LOCK) & LOCK_DEVICE_KEY != 0
}

/// The fuse controller refused a program request (locked or no such word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// Blows `bits` of word `i` and waits until they are.
pub fn program(i: usize, bits: u32) -> Result<(), Refused> {
    mmio::write32(OTP_BASE + PROG_ADDR as usize, i as u32);
    mmio::write32(OTP_BASE + PROG_DATA as usize, bits);
    mmio::write32(OTP_BASE + PROG_CMD as usize, PROG_KEY);
    loop {
        let s = mmio::read32(OTP_BASE + STATUS as usize);
        if s & STATUS_ERROR != 0 {
            return Err(Refused);
        }
        if s & STATUS_BUSY == 0 {
            return Ok(());
        }
        crate::delay::spin_ns(2_000);
    }
}

/// Raises the anti-rollback counter to `value` (at most 32 * ROLLBACK_WORDS;
/// never lowers it): blows the next bits of the thermometer code.
pub fn raise_rollback_counter(value: u32) -> Result<(), Refused> {
    let value = value.min((32 * ROLLBACK_WORDS) as u32);
    for w in 0..ROLLBACK_WORDS {
        let lo = 32 * w as u32;
        if value <= lo {
            break;
        }
        let n = (value - lo).min(32);
        let want = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        let have = word(ROLLBACK + w);
        if have & want != want {
            program(ROLLBACK + w, want & !have)?;
        }
    }
    Ok(())
}
