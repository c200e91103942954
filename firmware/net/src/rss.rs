//! Receive-side scaling: the Toeplitz hash the NIC computes ("Verifying
//! the RSS Hash Calculation", Microsoft NDIS documentation) and the choice
//! of a local TCP port so that a connection's return traffic lands on the
//! RX queue of the core that opened it (each core owns its connections;
//! no locks on the I/O path).

/// Default Microsoft RSS key.
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30,
    0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Toeplitz hash of `input` under `key` (`key` must be at least
/// `input.len() + 4` bytes; missing key bytes count as zero).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let kb = |i: usize| u32::from(key.get(i).copied().unwrap_or(0));
    // The 32-bit window of the key at the current bit position.
    let mut window = kb(0) << 24 | kb(1) << 16 | kb(2) << 8 | kb(3);
    let mut hash = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        let next = kb(i + 4);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = window << 1 | (next >> (7 - bit)) & 1;
        }
    }
    hash
}

/// The IPv4/TCP hash input: source address, destination address, source
/// port, destination port, as they appear in the received frame.
pub fn tcp4_input(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&src);
    v[4..8].copy_from_slice(&dst);
    v[8..10].copy_from_slice(&sport.to_be_bytes());
    v[10..12].copy_from_slice(&dport.to_be_bytes());
    v
}

/// First local port in `range` (scanning from `start`) such that frames
/// from `remote:rport` to `local:port` hash to an indirection entry that
/// names `queue`. `None` if no port in the range does.
#[allow(clippy::too_many_arguments)]
pub fn pick_local_port(
    key: &[u8],
    table: &[u8; 128],
    local: [u8; 4],
    remote: [u8; 4],
    rport: u16,
    queue: u8,
    range: core::ops::RangeInclusive<u16>,
    start: u16,
) -> Option<u16> {
    let (lo, hi) = (*range.start(), *range.end());
    if lo > hi {
        return None;
    }
    let span = u32::from(hi - lo) + 1;
    let first = u32::from(start.clamp(lo, hi) - lo);
    // The hash is linear (XOR) in the input bits: hash the fixed part
    // once (local port 0), then add the key windows of the port's set
    // bits (input bits 80..96) per candidate, instead of hashing all 96
    // bits of every candidate one by one (a few dozen tries per
    // connection, on every data-plane core).
    let fixed = toeplitz(key, &tcp4_input(remote, local, rport, 0));
    let windows = port_windows(key);
    (0..span).map(|k| lo + ((first + k) % span) as u16).find(|&p| table[(with_port(fixed, &windows, p) & 0x7f) as usize] == queue)
}

/// The key windows of the local port's 16 input bits (input bits 80..96
/// of [`tcp4_input`], most significant first).
fn port_windows(key: &[u8]) -> [u32; 16] {
    core::array::from_fn(|b| key_window(key, 80 + b))
}

/// The hash of the input whose hash with local port 0 is `fixed`, with
/// local port `port` instead.
fn with_port(fixed: u32, windows: &[u32; 16], port: u16) -> u32 {
    (0..16).filter(|b| port & (0x8000 >> b) != 0).fold(fixed, |h, b| h ^ windows[b])
}

/// The 32 key bits starting at bit `bit` (bit 0 = the first key byte's
/// most significant bit): what an input bit at position `bit` adds to the
/// Toeplitz hash when set. Missing key bytes count as zero.
fn key_window(key: &[u8], bit: usize) -> u32 {
    let kb = |i: usize| u64::from(key.get(i).copied().unwrap_or(0));
    let i = bit / 8;
    let w = kb(i) << 32 | kb(i + 1) << 24 | kb(i + 2) << 16 | kb(i + 3) << 8 | kb(i + 4);
    (w >> (8 - bit % 8)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's verification table (IPv4 with TCP ports): destination,
    /// source, expected hash. Input order is source then destination.
    const VECTORS: [([u8; 4], u16, [u8; 4], u16, u32, u32); 5] = [
        ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e8fc2, 0x51ccc178),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718262a, 0xc626b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0a5de, 0x5c2b394a),
        ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x82989176, 0xafc7327f),
        ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d1809c5, 0x10e828a2),
    ];

    #[test]
    fn microsoft_verification_values() {
        for (dst, dport, src, sport, ip_only, with_tcp) in VECTORS {
            let mut ip = [0u8; 8];
            ip[..4].copy_from_slice(&src);
            ip[4..].copy_from_slice(&dst);
            assert_eq!(toeplitz(&DEFAULT_KEY, &ip), ip_only, "{dst:?} ip");
            assert_eq!(toeplitz(&DEFAULT_KEY, &tcp4_input(src, dst, sport, dport)), with_tcp, "{dst:?} tcp");
        }
    }

    #[test]
    fn the_port_bits_add_their_key_windows() {
        let (local, remote) = ([10, 0, 1, 1], [10, 0, 1, 17]);
        let fixed = toeplitz(&DEFAULT_KEY, &tcp4_input(remote, local, 4420, 0));
        let windows = port_windows(&DEFAULT_KEY);
        for p in [1u16, 0x8000, 0x1234, 49152, 55555, 65535] {
            assert_eq!(with_port(fixed, &windows, p), toeplitz(&DEFAULT_KEY, &tcp4_input(remote, local, 4420, p)), "port {p}");
        }
        assert_eq!(key_window(&DEFAULT_KEY, 0), 0x6d5a56da);
        assert_eq!(key_window(&DEFAULT_KEY, 8), 0x5a56da25);
        assert_eq!(key_window(&DEFAULT_KEY, 316), 0xa000_0000, "the last key bits (0xfa's low nibble), then zeros");
    }

    #[test]
    fn picked_port_hashes_to_the_queue() {
        let table: [u8; 128] = core::array::from_fn(|i| (i % 64) as u8);
        let (local, remote) = ([10, 0, 0, 1], [10, 0, 0, 10]);
        for q in [0u8, 17, 63] {
            let p = pick_local_port(&DEFAULT_KEY, &table, local, remote, 4420, q, 49152..=65535, 49152).unwrap();
            let h = toeplitz(&DEFAULT_KEY, &tcp4_input(remote, local, 4420, p));
            assert_eq!(table[(h & 127) as usize], q);
            // Starting after it finds another one.
            let p2 = pick_local_port(&DEFAULT_KEY, &table, local, remote, 4420, q, 49152..=65535, p + 1).unwrap();
            assert_ne!(p, p2);
        }
        assert_eq!(pick_local_port(&DEFAULT_KEY, &table, local, remote, 4420, 99, 1000..=1100, 1000), None, "no entry names queue 99");
    }
}
