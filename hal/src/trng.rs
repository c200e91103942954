//! True random number generator driver (layout: [`crate::regs::trng`]):
//! enables the noise source, reads conditioned 64-bit words, and reports
//! a failed health test (NIST SP 800-90B §4.4) as an error instead of
//! returning numbers. Implements `rand_core`'s fallible RNG traits, so
//! the firmware seeds its generators from it.

use crate::memory_map::TRNG_BASE;
use crate::mmio;
use crate::regs::trng as r;

/// The source failed a health test (status bits `ST_RCT_FAIL` /
/// `ST_APT_FAIL`), or was never enabled (0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthError(pub u32);

impl core::fmt::Display for HealthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TRNG health test failed (status {:#x})", self.0)
    }
}

impl core::error::Error for HealthError {}

/// The TRNG (one per chip; reads are independent, any hart may read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Trng;

impl Trng {
    /// Starts the source (start-up tests run first) if it is not running.
    pub fn enable() -> Result<Trng, HealthError> {
        if mmio::read32(TRNG_BASE + r::CONTROL as usize) & r::CTL_ENABLE == 0 {
            mmio::write32(TRNG_BASE + r::CONTROL as usize, r::CTL_ENABLE);
        }
        Trng.status()?;
        Ok(Trng)
    }

    /// Clears a health failure and runs the start-up tests again.
    pub fn restart() -> Result<Trng, HealthError> {
        mmio::write32(TRNG_BASE + r::CONTROL as usize, r::CTL_ENABLE | r::CTL_RESTART);
        Trng.status()?;
        Ok(Trng)
    }

    fn status(&self) -> Result<(), HealthError> {
        let s = mmio::read32(TRNG_BASE + r::STATUS as usize);
        if s & r::ST_READY != 0 {
            Ok(())
        } else {
            Err(HealthError(s))
        }
    }

    /// The next 64 conditioned random bits.
    pub fn next(&mut self) -> Result<u64, HealthError> {
        let v = mmio::read64(TRNG_BASE + r::DATA as usize);
        // DATA reads 0 when the source is not ready; STATUS tells a
        // (2^-64 likely) genuine 0 from a failure.
        if v == 0 {
            self.status()?;
        }
        Ok(v)
    }
}

impl rand_core::TryRngCore for Trng {
    type Error = HealthError;

    fn try_next_u32(&mut self) -> Result<u32, HealthError> {
        self.next().map(|v| v as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, HealthError> {
        self.next()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), HealthError> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// Its output is conditioned full-entropy output (SP 800-90B §3.1.5.1).
impl rand_core::TryCryptoRng for Trng {}
