//! OTP fuse array (`dpu_hal::regs::otp`): 32-bit words whose bits can only
//! be blown (0 -> 1), one word per program request, each taking the chip
//! file's `devices.otp.program_ns`. The key-hash words refuse programming
//! once their lock bit is blown. The device key words (the crypto
//! engines' key-encryption key) read as zero and refuse programming once
//! `LOCK_DEVICE_KEY` is blown: from then on only the crypto engines read
//! them, through [`Otp::device_key`] (a wire inside the chip, not a
//! register). A power cut during programming leaves half
//! of the requested bits blown (lowest first). The fuses persist in a
//! file (`dpusim --otp`): little-endian words.

use dpu_hal::regs::otp::*;
use std::path::Path;

pub struct Otp {
    pub words: Vec<u32>,
    addr: u32,
    data: u32,
    error: bool,
    program_cycles: u64,
    /// (word, bits, start, end) of the running program.
    running: Option<(usize, u32, u64, u64)>,
    /// Every completed or started program (word, bits, start, end).
    pub journal: Vec<(usize, u32, u64, u64)>,
    pub changed: bool,
    pub off: bool,
}

impl Otp {
    pub fn new(words: usize, program_cycles: u64) -> Otp {
        Otp { words: vec![0; words], addr: 0, data: 0, error: false, program_cycles, running: None, journal: Vec::new(), changed: false, off: false }
    }

    /// Reads a fuse file (missing words are unblown).
    pub fn load(path: &Path, words: usize, program_cycles: u64) -> Result<Otp, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() > words * 4 || bytes.len() % 4 != 0 {
            return Err(format!("{}: {} bytes; an OTP file holds at most {words} little-endian 32-bit words", path.display(), bytes.len()));
        }
        let mut o = Otp::new(words, program_cycles);
        for (i, w) in bytes.chunks(4).enumerate() {
            o.words[i] = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        }
        Ok(o)
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The key hash fuses as bytes.
    pub fn key_hash(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        for i in 0..KEY_HASH_WORDS {
            h[4 * i..4 * i + 4].copy_from_slice(&self.words[KEY_HASH + i].to_le_bytes());
        }
        h
    }

    /// Factory provisioning: blows the key hash and its lock.
    pub fn provision(&mut self, key_hash: &[u8; 32]) {
        for i in 0..KEY_HASH_WORDS {
            self.words[KEY_HASH + i] |= u32::from_le_bytes(key_hash[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        }
        self.words[LOCK] |= LOCK_KEY_HASH;
    }

    /// The device key as the crypto engines' key ladder reads it (no
    /// lock applies to that path); `None` when none is provisioned.
    pub fn device_key(&self) -> Option<[u8; 32]> {
        device_key_of(&self.words)
    }

    fn device_key_locked(&self) -> bool {
        self.words.get(LOCK).is_some_and(|w| w & LOCK_DEVICE_KEY != 0)
    }

    /// Anti-rollback counter: blown bits of the counter words.
    pub fn rollback_counter(&self) -> u32 {
        self.words[ROLLBACK..ROLLBACK + ROLLBACK_WORDS].iter().map(|w| w.count_ones()).sum()
    }

    fn settle(&mut self, now: u64) {
        if let Some((w, bits, _, end)) = self.running {
            if now >= end {
                self.words[w] |= bits;
                self.running = None;
                self.changed = true;
            }
        }
    }

    pub fn read(&mut self, off: u64, size: u8, now: u64) -> Option<u64> {
        if size != 4 || self.off {
            return (size == 4).then_some(0);
        }
        self.settle(now);
        let fuses = self.words.len() as u64 * 4;
        match off {
            o if o < fuses => {
                let i = (o / 4) as usize;
                let hidden = (DEVICE_KEY..DEVICE_KEY + DEVICE_KEY_WORDS).contains(&i) && self.device_key_locked();
                Some(if hidden { 0 } else { u64::from(self.words[i]) })
            }
            STATUS => Some(u64::from(u32::from(self.running.is_some()) * STATUS_BUSY | u32::from(self.error) * STATUS_ERROR)),
            PROG_ADDR => Some(u64::from(self.addr)),
            PROG_DATA => Some(u64::from(self.data)),
            _ => None,
        }
    }

    pub fn write(&mut self, off: u64, size: u8, v: u64, now: u64) -> bool {
        if size != 4 {
            return false;
        }
        if self.off {
            return true;
        }
        self.settle(now);
        match off {
            PROG_ADDR => self.addr = v as u32,
            PROG_DATA => self.data = v as u32,
            PROG_CMD if v as u32 == PROG_KEY => {
                let w = self.addr as usize;
                let locked = ((KEY_HASH..KEY_HASH + KEY_HASH_WORDS).contains(&w) && self.words[LOCK] & LOCK_KEY_HASH != 0)
                    || ((DEVICE_KEY..DEVICE_KEY + DEVICE_KEY_WORDS).contains(&w) && self.device_key_locked());
                self.error = self.running.is_some() || w >= self.words.len() || locked;
                if !self.error {
                    let op = (w, self.data, now, now + self.program_cycles);
                    self.running = Some(op);
                    self.journal.push(op);
                }
            }
            PROG_CMD => {}
            _ => return false,
        }
        true
    }

    /// Power goes away at `now`.
    pub fn power_cut(&mut self, now: u64) {
        if let Some((w, bits, _, end)) = self.running.take() {
            let blown = if now >= end { bits } else { low_half_bits(bits) };
            self.words[w] |= blown;
            self.changed = true;
        }
        self.off = true;
    }

    /// Completes a running program (end of a simulation).
    pub fn complete(&mut self) {
        if let Some((w, bits, _, _)) = self.running.take() {
            self.words[w] |= bits;
            self.changed = true;
        }
    }

    /// The fuses a power cut at `cut` would leave, given the words before
    /// the journaled run.
    pub fn replay(before: &[u32], journal: &[(usize, u32, u64, u64)], cut: u64) -> Vec<u32> {
        let mut w = before.to_vec();
        for &(i, bits, start, end) in journal {
            if start >= cut {
                break;
            }
            w[i] |= if cut >= end { bits } else { low_half_bits(bits) };
        }
        w
    }
}

/// The device key in fuse words `words` (`None`: all zero, none).
pub fn device_key_of(words: &[u32]) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    for i in 0..DEVICE_KEY_WORDS {
        k[4 * i..4 * i + 4].copy_from_slice(&words.get(DEVICE_KEY + i).copied().unwrap_or(0).to_le_bytes());
    }
    (k != [0; 32]).then_some(k)
}

fn low_half_bits(bits: u32) -> u32 {
    let keep = bits.count_ones() / 2;
    let mut out = 0;
    let mut n = 0;
    for b in 0..32 {
        if bits & (1 << b) != 0 && n < keep {
            out |= 1 << b;
            n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_only_get_blown_and_the_key_hash_locks() {
        let mut o = Otp::new(64, 10_000);
        assert!(o.write(PROG_ADDR, 4, 3, 0) && o.write(PROG_DATA, 4, 0x0f, 0) && o.write(PROG_CMD, 4, u64::from(PROG_KEY), 0));
        assert_eq!(o.read(STATUS, 4, 9_999), Some(u64::from(STATUS_BUSY)));
        assert_eq!(o.read(12, 4, 10_000), Some(0x0f));
        o.write(PROG_DATA, 4, 0xf0, 20_000);
        o.write(PROG_CMD, 4, u64::from(PROG_KEY), 20_000);
        assert_eq!(o.read(12, 4, 40_000), Some(0xff), "ORed, never cleared");
        o.provision(&[0xaa; 32]);
        o.write(PROG_ADDR, 4, 0, 50_000);
        o.write(PROG_CMD, 4, u64::from(PROG_KEY), 50_000);
        assert_eq!(o.read(STATUS, 4, 50_000), Some(u64::from(STATUS_ERROR)), "locked key hash");
        o.write(PROG_ADDR, 4, 99, 50_000);
        o.write(PROG_CMD, 4, u64::from(PROG_KEY), 50_000);
        assert_eq!(o.read(STATUS, 4, 50_000), Some(u64::from(STATUS_ERROR)), "no such word");
    }

    /// The device key is the engines' alone once locked: its words read
    /// as zero through the registers and refuse programming (bits blown
    /// into it would change the key the configuration was wrapped with).
    #[test]
    fn a_locked_device_key_reads_as_zero_and_stays() {
        let mut o = Otp::new(64, 10);
        o.words[DEVICE_KEY] = 0x1234_5678;
        o.words[DEVICE_KEY + 7] = 0x9abc_def0;
        let at = |i: usize| (4 * i) as u64;
        assert_eq!(o.read(at(DEVICE_KEY), 4, 0), Some(0x1234_5678), "unlocked: readable (factory)");
        o.words[LOCK] |= LOCK_DEVICE_KEY;
        for i in DEVICE_KEY..DEVICE_KEY + DEVICE_KEY_WORDS {
            assert_eq!(o.read(at(i), 4, 0), Some(0), "word {i}");
        }
        assert_eq!(o.device_key().unwrap()[..4], 0x1234_5678u32.to_le_bytes(), "the engines still see it");
        o.write(PROG_ADDR, 4, (DEVICE_KEY + 1) as u64, 0);
        o.write(PROG_DATA, 4, 1, 0);
        o.write(PROG_CMD, 4, u64::from(PROG_KEY), 0);
        assert_eq!(o.read(STATUS, 4, 0), Some(u64::from(STATUS_ERROR)));
        assert_eq!(o.words[DEVICE_KEY + 1], 0);
        assert_eq!(Otp::new(64, 10).device_key(), None, "blank fuses: no device key");
    }

    #[test]
    fn rollback_counter_counts_blown_bits_and_a_cut_blows_half() {
        let mut o = Otp::new(64, 10_000);
        o.write(PROG_ADDR, 4, ROLLBACK as u64, 0);
        o.write(PROG_DATA, 4, 0b111, 0);
        o.write(PROG_CMD, 4, u64::from(PROG_KEY), 0);
        o.power_cut(5_000);
        assert_eq!(o.rollback_counter(), 1);
        assert_eq!(Otp::replay(&[0; 64], &o.journal, 5_000)[ROLLBACK], 0b001);
        assert_eq!(Otp::replay(&[0; 64], &o.journal, 10_000)[ROLLBACK], 0b111);
    }
}
