//! Receive-side scaling: the Toeplitz hash over IPv4 and IPv4/TCP headers
//! and the 128-entry indirection table that maps a hash to an RX queue.
//!
//! Source: Microsoft, NDIS "RSS Hashing Functions" (input order: source
//! address, destination address, source port, destination port, all in
//! network byte order) and "Verifying the RSS Hash Calculation" (the test
//! vectors in this file's tests). Intel 82599 datasheet §7.1.2.8 describes
//! the same function in hardware.

use super::frame::{flow_key, ipv4_offset};
use smoltcp::wire::Ipv4Packet;
use std::net::Ipv4Addr;

/// The 40-byte key of Microsoft's verification suite, also the default key
/// of many NIC drivers.
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// Which header fields went into a hash (NDIS `NDIS_HASH_IPV4` /
/// `NDIS_HASH_TCP_IPV4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashType {
    /// Source and destination address.
    Ipv4,
    /// Addresses and TCP ports.
    Ipv4Tcp,
}

/// Toeplitz hash of `input` under `key`: for every input bit set, most
/// significant bit first, XOR in the 32 key bits starting at that bit's
/// position. The key must be at least `input.len() + 4` bytes; bits past its
/// end count as zero (no NIC configuration gets there: keys are 40 bytes,
/// inputs at most 36).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let key_byte = |i: usize| key.get(i).copied().unwrap_or(0);
    let mut window = u32::from_be_bytes([key_byte(0), key_byte(1), key_byte(2), key_byte(3)]);
    let mut hash = 0;
    for (i, &byte) in input.iter().enumerate() {
        let next = key_byte(i + 4);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// Hash input of the IPv4 2-tuple: source then destination address.
pub fn ipv4_input(src: Ipv4Addr, dst: Ipv4Addr) -> [u8; 8] {
    let mut input = [0; 8];
    input[..4].copy_from_slice(&src.octets());
    input[4..].copy_from_slice(&dst.octets());
    input
}

/// Hash input of the IPv4/TCP 4-tuple: addresses, then source and
/// destination port, big-endian.
pub fn ipv4_tcp_input(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> [u8; 12] {
    let mut input = [0; 12];
    input[..8].copy_from_slice(&ipv4_input(src, dst));
    input[8..10].copy_from_slice(&src_port.to_be_bytes());
    input[10..].copy_from_slice(&dst_port.to_be_bytes());
    input
}

/// RSS hash of an Ethernet II frame (at most one 802.1Q tag): the 4-tuple
/// hash for unfragmented IPv4/TCP with a valid TCP header, the 2-tuple hash
/// for any other IPv4 packet (fragments included, as their ports are not
/// known), `None` for non-IPv4 frames and IPv4 headers that fail length
/// checks (the NIC sends those to its default queue).
pub fn hash_frame(key: &[u8], frame: &[u8]) -> Option<(u32, HashType)> {
    if let Some(flow) = flow_key(frame) {
        let input = ipv4_tcp_input(flow.src_addr, flow.dst_addr, flow.src_port, flow.dst_port);
        return Some((toeplitz(key, &input), HashType::Ipv4Tcp));
    }
    let l3 = ipv4_offset(frame).ok()?;
    let ip = Ipv4Packet::new_checked(&frame[l3..]).ok()?;
    Some((toeplitz(key, &ipv4_input(ip.src_addr(), ip.dst_addr())), HashType::Ipv4))
}

/// The RSS indirection table: the low 7 bits of the hash pick one of 128
/// entries, each naming an RX queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indirection {
    table: [u16; Indirection::LEN],
}

impl Indirection {
    /// Entries in the table (Microsoft RSS allows up to 128 for 7 hash bits).
    pub const LEN: usize = 128;

    /// A table with explicit entries.
    pub fn new(table: [u16; Self::LEN]) -> Self {
        Indirection { table }
    }

    /// Entry `i` names queue `i % queues`, spreading flows evenly (the usual
    /// driver default). Zero queues is treated as one.
    pub fn round_robin(queues: u16) -> Self {
        let queues = usize::from(queues.max(1));
        Indirection { table: std::array::from_fn(|i| (i % queues) as u16) }
    }

    /// The entries.
    pub fn table(&self) -> &[u16; Self::LEN] {
        &self.table
    }

    /// Points entry `index % 128` at `queue`.
    pub fn set(&mut self, index: usize, queue: u16) {
        self.table[index % Self::LEN] = queue;
    }

    /// The RX queue of a packet with this hash: `table[hash & 127]`.
    pub fn queue_for(&self, hash: u32) -> u16 {
        self.table[(hash & 0x7f) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::testing::*;
    use super::super::frame::FlowKey;
    use super::*;

    /// Destination address and port, source address and port, IPv4-only
    /// hash, IPv4-with-TCP hash.
    type Row = ([u8; 4], u16, [u8; 4], u16, u32, u32);

    /// "Verifying the RSS Hash Calculation", IPv4 table.
    const MICROSOFT_IPV4: [Row; 5] = [
        ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e8fc2, 0x51ccc178),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718262a, 0xc626b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0a5de, 0x5c2b394a),
        ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x82989176, 0xafc7327f),
        ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d1809c5, 0x10e828a2),
    ];

    fn rows() -> impl Iterator<Item = (FlowKey, u32, u32)> {
        MICROSOFT_IPV4.iter().map(|&(dst, dst_port, src, src_port, ipv4, tcp)| {
            (FlowKey { src_addr: src.into(), dst_addr: dst.into(), src_port, dst_port }, ipv4, tcp)
        })
    }

    #[test]
    fn microsoft_verification_table() {
        for (key, ipv4, tcp) in rows() {
            assert_eq!(toeplitz(&MICROSOFT_KEY, &ipv4_input(key.src_addr, key.dst_addr)), ipv4, "{key:?}");
            let input = ipv4_tcp_input(key.src_addr, key.dst_addr, key.src_port, key.dst_port);
            assert_eq!(toeplitz(&MICROSOFT_KEY, &input), tcp, "{key:?}");
        }
    }

    #[test]
    fn input_layout_is_network_order() {
        let input = ipv4_tcp_input(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8), 0x0a0b, 0x0c0d);
        assert_eq!(input, [1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d]);
    }

    #[test]
    fn toeplitz_is_linear_and_uses_key_window() {
        // A single set bit at position p selects key bits p..p+32.
        assert_eq!(toeplitz(&MICROSOFT_KEY, &[0x80]), 0x6d5a56da);
        assert_eq!(toeplitz(&MICROSOFT_KEY, &[0x00, 0x80]), 0x5a56da25);
        assert_eq!(toeplitz(&MICROSOFT_KEY, &[0x01]), (0x6d5a56da_u32 << 7) | (0x25 >> 1));
        assert_eq!(toeplitz(&MICROSOFT_KEY, &[0; 12]), 0);
        // A short key reads as zero-extended instead of panicking.
        assert_eq!(toeplitz(&[0xff, 0, 0, 0], &[0, 0, 0, 0, 0x80]), 0);
        assert_eq!(toeplitz(&[], &[0xff; 8]), 0);
    }

    #[test]
    fn hash_frame_picks_tuple_by_protocol() {
        for (key, ipv4, tcp) in rows() {
            let frame = tcp_frame(key, 7, 9, false, b"payload");
            assert_eq!(hash_frame(&MICROSOFT_KEY, &frame), Some((tcp, HashType::Ipv4Tcp)));
            assert_eq!(hash_frame(&MICROSOFT_KEY, &vlan_tagged(&frame, 42)), Some((tcp, HashType::Ipv4Tcp)));

            let udp = udp_frame(key.src_addr, key.dst_addr, key.src_port, key.dst_port, b"payload");
            assert_eq!(hash_frame(&MICROSOFT_KEY, &udp), Some((ipv4, HashType::Ipv4)));

            let mut fragment = frame.clone();
            fragment[20..22].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8 bytes
            assert_eq!(hash_frame(&MICROSOFT_KEY, &fragment), Some((ipv4, HashType::Ipv4)));
        }
    }

    #[test]
    fn hash_frame_rejects_non_ipv4_without_panicking() {
        let frame = tcp_frame(flow(), 7, 9, false, b"payload");
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(hash_frame(&MICROSOFT_KEY, &arp), None);
        for len in 0..frame.len() {
            let hash = hash_frame(&MICROSOFT_KEY, &frame[..len]);
            // IPv4 total length no longer fits: the header is not trusted.
            assert_eq!(hash, None, "len {len}");
        }
    }

    #[test]
    fn indirection_maps_low_seven_bits() {
        let table = Indirection::round_robin(4);
        assert_eq!(table.queue_for(0x51ccc178), 0); // 0x78 = 120
        assert_eq!(table.queue_for(0x323e8fc2), 2); // 0x42 = 66
        assert_eq!(table.queue_for(0xffff_ff83), 3); // 0x03
        let mut custom = Indirection::new([5; Indirection::LEN]);
        custom.set(0x42, 9);
        custom.set(0x42 + Indirection::LEN, 11);
        assert_eq!(custom.queue_for(0x323e8fc2), 11);
        assert_eq!(custom.queue_for(0x323e8fc3), 5);
        assert_eq!(Indirection::round_robin(0), Indirection::new([0; Indirection::LEN]));
        assert_eq!(Indirection::round_robin(3).table()[127], 1);
    }
}
