//! GF(2^8) with polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D, generator 2)
//! and the Reed-Solomon code of Intel ISA-L's erasure_code library:
//! encoding matrix [I_k ; C] from `gf_gen_cauchy1_matrix`
//! (C[i][j] = 1 / ((k + i) XOR j)), `ec_encode_data` (parity row i =
//! sum over j of C[i][j] * data j), and decoding by inverting the rows of
//! k surviving fragments (`gf_invert_matrix`), as ISA-L's
//! erasure_code_test does. Written from the ISA-L documentation; a system
//! test compares the engine's parity with ISA-L itself.

/// Exponent and logarithm tables.
struct Tables {
    exp: [u8; 512],
    log: [u8; 256],
}

const fn tables() -> Tables {
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= 0x11d;
        }
        i += 1;
    }
    exp[510] = exp[0];
    Tables { exp, log }
}

static T: Tables = tables();

/// Product in GF(2^8).
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    T.exp[usize::from(T.log[usize::from(a)]) + usize::from(T.log[usize::from(b)])]
}

/// Multiplicative inverse (0 has none; returns 0 like ISA-L's gf_inv).
pub fn inv(a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    T.exp[255 - usize::from(T.log[usize::from(a)])]
}

/// ISA-L `gf_gen_cauchy1_matrix(a, rows, k)`: `rows` x `k`, row-major;
/// identity on top, then 1 / (i XOR j) for rows i = k..rows.
pub fn cauchy1_matrix(rows: usize, k: usize) -> Vec<u8> {
    let mut a = vec![0u8; rows * k];
    for i in 0..k {
        a[k * i + i] = 1;
    }
    for i in k..rows {
        for j in 0..k {
            a[i * k + j] = inv((i ^ j) as u8);
        }
    }
    a
}

/// ISA-L `gf_invert_matrix`: Gauss-Jordan inverse of an n x n matrix;
/// None when singular.
pub fn invert(m: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut a = m.to_vec();
    let mut out = vec![0u8; n * n];
    for i in 0..n {
        out[i * n + i] = 1;
    }
    for i in 0..n {
        if a[i * n + i] == 0 {
            let j = (i + 1..n).find(|&j| a[j * n + i] != 0)?;
            for c in 0..n {
                a.swap(i * n + c, j * n + c);
                out.swap(i * n + c, j * n + c);
            }
        }
        let t = inv(a[i * n + i]);
        for c in 0..n {
            a[i * n + c] = mul(a[i * n + c], t);
            out[i * n + c] = mul(out[i * n + c], t);
        }
        for j in 0..n {
            if j == i {
                continue;
            }
            let f = a[j * n + i];
            if f == 0 {
                continue;
            }
            for c in 0..n {
                a[j * n + c] ^= mul(f, a[i * n + c]);
                out[j * n + c] ^= mul(f, out[i * n + c]);
            }
        }
    }
    Some(out)
}

/// `out = sum_j row[j] * inputs[j]` (ISA-L's dot product of one matrix row).
fn dot(row: &[u8], inputs: &[&[u8]], out: &mut [u8]) {
    out.fill(0);
    for (c, src) in row.iter().zip(inputs) {
        if *c == 0 {
            continue;
        }
        let lg = usize::from(T.log[usize::from(*c)]);
        for (o, &s) in out.iter_mut().zip(src.iter()) {
            if s != 0 {
                *o ^= T.exp[lg + usize::from(T.log[usize::from(s)])];
            }
        }
    }
}

/// Parity of `data` (k fragments of equal length): m fragments, equal to
/// ISA-L's `ec_encode_data` with `ec_init_tables(k, m, &a[k*k])` of
/// `gf_gen_cauchy1_matrix(a, k + m, k)`.
pub fn encode(k: usize, m: usize, data: &[&[u8]]) -> Vec<Vec<u8>> {
    let a = cauchy1_matrix(k + m, k);
    let len = data.first().map_or(0, |d| d.len());
    (0..m)
        .map(|i| {
            let mut p = vec![0u8; len];
            dot(&a[(k + i) * k..(k + i + 1) * k], data, &mut p);
            p
        })
        .collect()
}

/// Rebuilds fragments: `frags` holds k + m fragments, of which those in
/// `present` (bit i = fragment i) are valid; every fragment in `rebuild`
/// is computed from the k lowest-numbered present ones. Returns the
/// rebuilt fragments in index order, or None when fewer than k are present.
pub fn reconstruct(k: usize, m: usize, frags: &[&[u8]], present: u64, rebuild: u64) -> Option<Vec<(usize, Vec<u8>)>> {
    let a = cauchy1_matrix(k + m, k);
    let src: Vec<usize> = (0..k + m).filter(|i| present >> i & 1 == 1).take(k).collect();
    if src.len() < k {
        return None;
    }
    let mut b = vec![0u8; k * k];
    for (r, &f) in src.iter().enumerate() {
        b[r * k..(r + 1) * k].copy_from_slice(&a[f * k..(f + 1) * k]);
    }
    let d = invert(&b, k)?;
    let inputs: Vec<&[u8]> = src.iter().map(|&f| frags[f]).collect();
    let len = inputs[0].len();
    let mut out = Vec::new();
    for f in (0..k + m).filter(|i| rebuild >> i & 1 == 1) {
        // Row of fragment f in terms of the surviving fragments: a[f] * d.
        let row: Vec<u8> = (0..k).map(|c| (0..k).fold(0u8, |acc, j| acc ^ mul(a[f * k + j], d[j * k + c]))).collect();
        let mut v = vec![0u8; len];
        dot(&row, &inputs, &mut v);
        out.push((f, v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_axioms() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
        // 2^8 = x^4 + x^3 + x^2 + 1 = 0x1d.
        assert_eq!(mul(0x80, 2), 0x1d);
        assert_eq!(mul(3, 7), 9); // (x+1)(x^2+x+1) = x^3+1
    }

    /// Parity of ISA-L 2.30's `ec_encode_data` for k = 4, m = 2, 16-byte
    /// fragments with data[j][b] = (j * 16 + b) * 7 + 3 mod 256 (computed
    /// with libisal2 2.30.0 through tools/xtask/src/isal/ec_ref.c).
    #[test]
    fn isal_fixture() {
        let data: Vec<Vec<u8>> = (0..4).map(|j| (0..16).map(|b| ((j * 16 + b) * 7 + 3) as u8).collect()).collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let p = encode(4, 2, &refs);
        let hex = |v: &[u8]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&p[0]), ISAL_P0);
        assert_eq!(hex(&p[1]), ISAL_P1);
    }
    const ISAL_P0: &str = "3c010a37d7037e00fd196456b68bd4e9";
    const ISAL_P1: &str = "4479fdc0205e23f70a3845a1417c1d20";

    /// Parity of ISA-L 2.30's `ec_encode_data` (libisal2 2.30.0 through
    /// `ec_ref K M LEN SEED`, tools/xtask/src/isal/ec_ref.c): data from
    /// xorshift64, one step per byte, fragment 0 first; FNV-1a 64 of each
    /// parity fragment. Several (k, m, fragment size), up to the engine's
    /// k = 32, m = 4.
    #[test]
    fn isal_parity_for_several_geometries() {
        let fnv = |v: &[u8]| v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        for (k, m, len, seed, want) in [
            (10, 4, 4096, 0x1234u64, &[0x2af38d785db37583u64, 0x00978bdedb34a775, 0x88f7ed642992a5bc, 0x17c080f58a44f4a6][..]),
            (8, 3, 1024, 7, &[0x842bf62a7b9a4f40, 0x9fffbb56ce873453, 0xb8721da9fdf65134]),
            (32, 4, 64, 99, &[0x83d8780a36be606e, 0x6d3a0692a512ae34, 0xfb00a6ba2499712b, 0x351b7a5408ae35bf]),
            (4, 2, 8, 1, &[0x94267c1ed1c4c39b, 0xd911de223356021a]),
        ] {
            let mut x = seed;
            let data: Vec<Vec<u8>> = (0..k)
                .map(|_| {
                    (0..len)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        })
                        .collect()
                })
                .collect();
            let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
            let got: Vec<u64> = encode(k, m, &refs).iter().map(|p| fnv(p)).collect();
            assert_eq!(got, want, "k {k} m {m} len {len}");
        }
    }

    #[test]
    fn any_m_losses_are_recovered() {
        let (k, m, len) = (6, 3, 64);
        let data: Vec<Vec<u8>> = (0..k).map(|j| (0..len).map(|b| (j * 31 + b * 17 + 5) as u8).collect()).collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let parity = encode(k, m, &refs);
        let all: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
        for lost in 0u64..1 << (k + m) {
            if lost.count_ones() as usize > m {
                continue;
            }
            let present = !lost & ((1 << (k + m)) - 1);
            let frags: Vec<&[u8]> = all.iter().map(|f| f.as_slice()).collect();
            let got = reconstruct(k, m, &frags, present, lost).expect("recoverable");
            for (f, v) in got {
                assert_eq!(v, all[f], "lost {lost:#b}, fragment {f}");
            }
        }
        let frags: Vec<&[u8]> = all.iter().map(|f| f.as_slice()).collect();
        assert!(reconstruct(k, m, &frags, 0b11111, 0b1111100000).is_none(), "5 < k present");
    }
}
