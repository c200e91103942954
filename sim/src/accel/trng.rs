//! True random number generator (layout: `dpu_hal::regs::trng`).
//!
//! The noise source yields 8-bit raw samples. The model draws them from a
//! deterministic generator seeded from `dpusim --seed`, so runs repeat
//! exactly. Every sample goes through the continuous health tests of NIST
//! SP 800-90B §4.4: the repetition count test (§4.4.1, cutoff
//! C = 1 + ceil(20 / H)) and the adaptive proportion test (§4.4.2, window
//! 512, C = 1 + CRITBINOM(512, 2^-H, 1 - 2^-20)), with false-alarm rate
//! 2^-20 and H = `[devices.trng] min_entropy_bits`; enabling the source
//! first runs 1024 samples of start-up testing (§4.3). Output words come
//! from a SHA-256 conditioner (§3.1.5.1.1): each 32-byte output block
//! hashes (256 + 64) / H samples, so the input carries 64 bits more
//! entropy than the output, as §3.1.5.1.2 asks for full-entropy output. A failed test stops the output
//! (DATA reads 0, STATUS says which test) until the firmware restarts it.
//!
//! Fault injection (`dpusim --trng-fault`): `stuck` makes the source
//! repeat one value (the repetition count test fails), `biased` makes one
//! value take a fifth of the samples (the adaptive proportion test fails).

use dpu_hal::regs::trng as r;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// A broken noise source (fault injection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrngFault {
    #[default]
    None,
    /// Every sample is the same value.
    Stuck,
    /// One value comes up with probability 1/5 instead of 1/256.
    Biased,
}

impl std::str::FromStr for TrngFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(TrngFault::None),
            "stuck" => Ok(TrngFault::Stuck),
            "biased" => Ok(TrngFault::Biased),
            _ => Err(format!("`{s}` is not a TRNG fault (none, stuck, biased)")),
        }
    }
}

/// Repetition count test cutoff (SP 800-90B §4.4.1, alpha = 2^-20).
pub fn rct_cutoff(h: u32) -> u32 {
    1 + 20u32.div_ceil(h)
}

/// Adaptive proportion test cutoff (SP 800-90B §4.4.2, W = 512,
/// alpha = 2^-20): 1 + the smallest c with P(Bin(512, 2^-H) <= c) >= 1 - alpha.
pub fn apt_cutoff(h: u32) -> u32 {
    let n = r::APT_WINDOW as i32;
    let p = 0.5f64.powi(h as i32);
    let target = 1.0 - 0.5f64.powi(20);
    // Binomial CDF in log space.
    let ln_choose = |k: i32| -> f64 { (1..=k).map(|i| f64::from(n - k + i).ln() - f64::from(i).ln()).sum() };
    let mut cdf = 0.0;
    for c in 0..=n {
        cdf += (ln_choose(c) + f64::from(c) * p.ln() + f64::from(n - c) * (1.0 - p).ln()).exp();
        if cdf >= target {
            return 1 + c as u32;
        }
    }
    r::APT_WINDOW
}

/// TRNG statistics (`--stats-json` `trng`).
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct TrngStats {
    pub samples: u64,
    pub failures: u64,
}

pub struct Trng {
    rng: SmallRng,
    pub fault: TrngFault,
    pub irq: u32,
    enabled: bool,
    status: u32,
    irq_enable: bool,
    rct_cutoff: u32,
    apt_cutoff: u32,
    samples_per_block: usize,
    rct_last: Option<u8>,
    rct_run: u32,
    apt_first: u8,
    apt_count: u32,
    apt_seen: u32,
    samples: u64,
    failures: u64,
    out: VecDeque<u64>,
    /// The IRQ line should be raised (the bus drives the PLIC).
    pub irq_pending: bool,
}

impl Trng {
    pub fn new(seed: u64, min_entropy_bits: u32, irq: u32, fault: TrngFault) -> Trng {
        let h = min_entropy_bits.clamp(1, 8);
        Trng {
            rng: SmallRng::seed_from_u64(seed ^ 0x7472_6e67_5f73_6565),
            fault,
            irq,
            enabled: false,
            status: 0,
            irq_enable: false,
            rct_cutoff: rct_cutoff(h),
            apt_cutoff: apt_cutoff(h),
            samples_per_block: (320 / h) as usize,
            rct_last: None,
            rct_run: 0,
            apt_first: 0,
            apt_count: 0,
            apt_seen: 0,
            samples: 0,
            failures: 0,
            out: VecDeque::new(),
            irq_pending: false,
        }
    }

    fn raw(&mut self) -> u8 {
        match self.fault {
            TrngFault::None => self.rng.random(),
            TrngFault::Stuck => 0x42,
            TrngFault::Biased => {
                if self.rng.random_ratio(1, 5) {
                    0x5a
                } else {
                    self.rng.random()
                }
            }
        }
    }

    /// Draws one sample through both health tests; None on a failure.
    fn sample(&mut self) -> Option<u8> {
        let s = self.raw();
        self.samples += 1;
        // Repetition count test (§4.4.1).
        if self.rct_last == Some(s) {
            self.rct_run += 1;
            if self.rct_run >= self.rct_cutoff {
                return self.fail(r::ST_RCT_FAIL);
            }
        } else {
            self.rct_last = Some(s);
            self.rct_run = 1;
        }
        // Adaptive proportion test (§4.4.2).
        if self.apt_seen == 0 {
            self.apt_first = s;
            self.apt_count = 1;
        } else if s == self.apt_first {
            self.apt_count += 1;
            if self.apt_count >= self.apt_cutoff {
                return self.fail(r::ST_APT_FAIL);
            }
        }
        self.apt_seen = (self.apt_seen + 1) % r::APT_WINDOW;
        Some(s)
    }

    fn fail(&mut self, bit: u32) -> Option<u8> {
        self.status = (self.status & !r::ST_READY) | bit;
        self.failures += 1;
        self.out.clear();
        if self.irq_enable {
            self.irq_pending = true;
        }
        None
    }

    fn failed(&self) -> bool {
        self.status & (r::ST_RCT_FAIL | r::ST_APT_FAIL) != 0
    }

    fn start(&mut self) {
        self.status = 0;
        self.rct_last = None;
        self.rct_run = 0;
        self.apt_seen = 0;
        self.out.clear();
        for _ in 0..r::STARTUP_SAMPLES {
            if self.sample().is_none() {
                return;
            }
        }
        self.status = r::ST_READY;
    }

    /// Next 64 conditioned bits, or None (not enabled / health failure).
    pub fn next_word(&mut self) -> Option<u64> {
        if !self.enabled || self.failed() {
            return None;
        }
        if self.out.is_empty() {
            let mut h = Sha256::new();
            for _ in 0..self.samples_per_block {
                h.update([self.sample()?]);
            }
            let d: [u8; 32] = h.finalize().into();
            self.out.extend(d.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())));
        }
        self.out.pop_front()
    }

    pub fn stats(&self) -> TrngStats {
        TrngStats { samples: self.samples, failures: self.failures }
    }

    pub fn read(&mut self, off: u64, size: u8) -> Option<u64> {
        Some(match (off, size) {
            (r::CONTROL, 4) => u64::from(self.enabled),
            (r::STATUS, 4) => u64::from(self.status),
            (r::DATA, 8) => self.next_word().unwrap_or(0),
            (r::IRQ_ENABLE, 4) => u64::from(self.irq_enable),
            (r::RCT_CUTOFF, 4) => u64::from(self.rct_cutoff),
            (r::APT_CUTOFF, 4) => u64::from(self.apt_cutoff),
            (r::SAMPLES, 8) => self.samples,
            (r::FAILURES, 8) => self.failures,
            _ => return None,
        })
    }

    pub fn write(&mut self, off: u64, size: u8, v: u64) -> bool {
        match (off, size) {
            (r::CONTROL, 4) => {
                let v = v as u32;
                let was = self.enabled;
                self.enabled = v & r::CTL_ENABLE != 0;
                if self.enabled && (!was || v & r::CTL_RESTART != 0) {
                    self.irq_pending = false;
                    self.start();
                } else if !self.enabled {
                    self.status = 0;
                    self.out.clear();
                }
                true
            }
            (r::IRQ_ENABLE, 4) => {
                self.irq_enable = v & 1 != 0;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SP 800-90B §4.4.1: C = 1 + ceil(20 / H); §4.4.2 Table 2 (W = 512)
    /// lists the adaptive proportion cutoffs for H = 1, 2, 4, 8.
    #[test]
    fn cutoffs_follow_sp800_90b() {
        assert_eq!(rct_cutoff(4), 6);
        assert_eq!(rct_cutoff(1), 21);
        assert_eq!(apt_cutoff(1), 311);
        assert_eq!(apt_cutoff(2), 177);
        assert_eq!(apt_cutoff(4), 62);
        assert_eq!(apt_cutoff(8), 13);
    }

    fn enabled(seed: u64, fault: TrngFault) -> Trng {
        let mut t = Trng::new(seed, 4, 11, fault);
        t.write(r::IRQ_ENABLE, 4, 1);
        t.write(r::CONTROL, 4, u64::from(r::CTL_ENABLE));
        t
    }

    #[test]
    fn healthy_source_is_deterministic_per_seed() {
        let words = |seed| {
            let mut t = enabled(seed, TrngFault::None);
            assert_eq!(t.read(r::STATUS, 4), Some(u64::from(r::ST_READY)));
            (0..64).map(|_| t.read(r::DATA, 8).unwrap()).collect::<Vec<_>>()
        };
        let a = words(1);
        assert_eq!(a, words(1));
        assert_ne!(a, words(2));
        assert!(a.iter().all(|&w| w != 0));
        // Roughly half the bits set.
        let ones: u32 = a.iter().map(|w| w.count_ones()).sum();
        assert!((1800..2300).contains(&ones), "{ones}");
    }

    #[test]
    fn stuck_source_fails_the_repetition_count_test() {
        let mut t = enabled(1, TrngFault::Stuck);
        let st = t.read(r::STATUS, 4).unwrap() as u32;
        assert_eq!(st, r::ST_RCT_FAIL);
        assert_eq!(t.read(r::DATA, 8), Some(0));
        assert!(t.irq_pending);
        assert_eq!(t.read(r::SAMPLES, 8), Some(6), "fails at the cutoff");
    }

    #[test]
    fn biased_source_fails_the_adaptive_proportion_test() {
        let mut t = enabled(1, TrngFault::Biased);
        // A window whose first sample is the favoured value sees it ~100
        // times in 512 (cutoff 62): the test trips within a few windows.
        let mut words = 0;
        while t.read(r::STATUS, 4).unwrap() as u32 & r::ST_READY != 0 && words < 10_000 {
            t.read(r::DATA, 8);
            words += 1;
        }
        let st = t.read(r::STATUS, 4).unwrap() as u32;
        assert_ne!(st & (r::ST_APT_FAIL | r::ST_RCT_FAIL), 0, "status {st:#x} after {words} words");
        assert_eq!(st & r::ST_READY, 0);
        assert_eq!(t.read(r::DATA, 8), Some(0));
        assert!(t.read(r::FAILURES, 8).unwrap() >= 1);
        // The fault cleared, a restart brings the output back.
        t.fault = TrngFault::None;
        t.write(r::CONTROL, 4, u64::from(r::CTL_ENABLE | r::CTL_RESTART));
        assert_eq!(t.read(r::STATUS, 4), Some(u64::from(r::ST_READY)));
        assert_ne!(t.read(r::DATA, 8), Some(0));
    }
}
