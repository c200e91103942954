//! Deterministic input mutations for the stable engine: bit flips, byte
//! and interesting-integer overwrites (little and big endian), arithmetic
//! on integers in place, truncation, insertion, deletion, duplication of a
//! chunk, and splices with another corpus entry. Same seed, same inputs.

/// A small, fast, seedable generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Avoid the all-zero state; spread nearby seeds apart.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that sit on the edges of the checks parsers make.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    24,
    31,
    32,
    63,
    64,
    72,
    127,
    128,
    255,
    256,
    511,
    512,
    1023,
    1024,
    4095,
    4096,
    4097,
    8191,
    8192,
    0x7fff,
    0x8000,
    0xfffe,
    0xffff,
    0x1_0000,
    0x2_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_f000,
    0xffff_ffff_ffff_fff8,
    0xffff_ffff_ffff_ffff,
];

/// Largest input the engine builds.
pub const MAX_LEN: usize = 64 * 1024;

/// Applies 1 to 8 random mutations to `data`; `other` is another corpus
/// entry for splices.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let n = 1 + rng.below(8);
    for _ in 0..n {
        mutate_once(rng, data, other);
    }
    data.truncate(MAX_LEN);
}

fn mutate_once(rng: &mut Rng, d: &mut Vec<u8>, other: &[u8]) {
    let len = d.len();
    match rng.below(12) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.below(len);
            d[i] ^= 1 << rng.below(8);
        }
        // A random byte.
        1 if len > 0 => {
            let i = rng.below(len);
            d[i] = rng.next() as u8;
        }
        // An interesting integer of 1, 2, 4 or 8 bytes, either endianness.
        2 | 3 if len > 0 => {
            let w = [1, 2, 4, 8][rng.below(4)];
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let bytes = if rng.chance(4) { v.to_be_bytes() } else { v.to_le_bytes() };
            let src = if rng.chance(4) { &bytes[8 - w..] } else { &bytes[..w] };
            let i = rng.below(len);
            let end = (i + w).min(len);
            d[i..end].copy_from_slice(&src[..end - i]);
        }
        // Add or subtract a small amount to a little-endian integer.
        4 if len > 0 => {
            let w = [1, 2, 4, 8][rng.below(4)].min(len);
            let i = rng.below(len - w + 1);
            let mut b = [0u8; 8];
            b[..w].copy_from_slice(&d[i..i + w]);
            let delta = 1 + rng.below(32) as u64;
            let v = u64::from_le_bytes(b);
            let v = if rng.chance(2) { v.wrapping_add(delta) } else { v.wrapping_sub(delta) };
            d[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
        }
        // Truncate.
        5 if len > 0 => d.truncate(rng.below(len)),
        // Insert random bytes.
        6 => {
            let i = rng.below(len + 1);
            let max = if rng.chance(8) { 512 } else { 16 };
            let k = 1 + rng.below(max);
            let ins: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
            d.splice(i..i, ins);
        }
        // Delete a range.
        7 if len > 0 => {
            let i = rng.below(len);
            let k = 1 + rng.below((len - i).min(64));
            d.drain(i..i + k);
        }
        // Duplicate a chunk somewhere else (repeated records, PDUs).
        8 if len > 0 => {
            let i = rng.below(len);
            let k = 1 + rng.below((len - i).min(1024));
            let chunk = d[i..i + k].to_vec();
            let at = rng.below(len + 1);
            d.splice(at..at, chunk);
        }
        // Splice: our head, the other input's tail.
        9 if !other.is_empty() => {
            let i = rng.below(len + 1);
            let j = rng.below(other.len());
            d.truncate(i);
            d.extend_from_slice(&other[j..]);
        }
        // Overwrite with a chunk of the other input.
        10 if !other.is_empty() && len > 0 => {
            let j = rng.below(other.len());
            let k = 1 + rng.below((other.len() - j).min(256));
            let i = rng.below(len);
            let end = (i + k).min(len);
            d[i..end].copy_from_slice(&other[j..j + (end - i)]);
        }
        // Set a byte to an ASCII digit or punctuation (TOML, NQNs, addresses).
        11 if len > 0 => {
            let i = rng.below(len);
            d[i] = b"0123456789.-_=\"[]:/x \n"[rng.below(22)];
        }
        _ => {
            if len == 0 {
                d.push(rng.next() as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutants() {
        let run = |seed| {
            let mut r = Rng::new(seed);
            let mut v = b"some seed input".to_vec();
            for _ in 0..100 {
                mutate(&mut r, &mut v, b"another one");
            }
            v
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn mutants_stay_bounded_and_empty_inputs_grow() {
        let mut r = Rng::new(1);
        let mut v = Vec::new();
        mutate(&mut r, &mut v, &[]);
        assert!(!v.is_empty() || r.next() != 0);
        let mut big = vec![0u8; MAX_LEN];
        for _ in 0..50 {
            mutate(&mut r, &mut big, &[1; 4000]);
            assert!(big.len() <= MAX_LEN);
        }
    }
}
