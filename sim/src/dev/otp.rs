//! OTP fuse array (`dpu_hal::regs::otp`): 32-bit words whose bits can only
//! be blown (0 -> 1), one word per program request, each taking the chip
//! file's `devices.otp.program_ns`. The key-hash words refuse programming
//! once the lock bit is blown. A power cut during programming leaves half
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
            o if o < fuses => Some(u64::from(self.words[(o / 4) as usize])),
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
                let locked = (KEY_HASH..KEY_HASH + KEY_HASH_WORDS).contains(&w) && self.words[LOCK] & LOCK_KEY_HASH != 0;
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
