//! Unpredictable numbers from the TRNG (`dpu_hal::trng`, health-tested,
//! read through `rand_core`'s fallible interface): seeds of the per-core
//! TCP/IP stacks (their initial sequence numbers, RFC 6528) and the
//! first local port each NVMe/TCP queue tries (port randomization, RFC
//! 6056 §3.3.1). A source that fails its health test is restarted once;
//! if it still fails, the caller's fallback is used and an error is
//! logged (predictable numbers are then a known, reported weakness).

use rand_core::TryRngCore;

/// 64 random bits, or `fallback` with an ERROR line when the TRNG fails.
pub fn u64_or(fallback: u64, what: &str) -> u64 {
    let got = dpu_hal::trng::Trng::enable().and_then(|mut t| t.try_next_u64()).or_else(|_| dpu_hal::trng::Trng::restart().and_then(|mut t| t.try_next_u64()));
    match got {
        Ok(v) => v,
        Err(e) => {
            defmt::error!("random: TRNG failed its health test (status {=u32:#x}); {=str} is predictable", e.0, what);
            fallback
        }
    }
}
