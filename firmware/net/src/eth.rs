//! Ethernet II framing (IEEE 802.3 §3.1.1) around IPv4 packets for stacks
//! that run smoltcp in IP mode: the driver adds and strips the 14-byte
//! header, resolving the next hop through the shared neighbor table.

use crate::{Ipv4, Mac};

pub const HEADER: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const BROADCAST: Mac = [0xff; 6];

/// Writes the Ethernet header into `frame[..14]`.
pub fn write_header(frame: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// EtherType of a frame (None if shorter than a header).
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    (frame.len() >= HEADER).then(|| u16::from_be_bytes([frame[12], frame[13]]))
}

/// Destination address of an IPv4 packet (None if it is not one).
pub fn ipv4_dst(packet: &[u8]) -> Option<Ipv4> {
    (packet.len() >= 20 && packet[0] >> 4 == 4).then(|| [packet[16], packet[17], packet[18], packet[19]])
}

/// Next hop for `dst`: itself when on-link, else the gateway (if any).
pub fn next_hop(dst: Ipv4, local: Ipv4, prefix: u8, gateway: Option<Ipv4>) -> Option<Ipv4> {
    if crate::same_subnet(dst, local, prefix) {
        Some(dst)
    } else {
        gateway
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_hops() {
        let mut f = [0u8; 20];
        write_header(&mut f, BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_ARP);
        assert_eq!(ethertype(&f), Some(0x0806));
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(ethertype(&f[..13]), None);
        assert_eq!(next_hop([10, 0, 0, 9], [10, 0, 0, 1], 24, None), Some([10, 0, 0, 9]));
        assert_eq!(next_hop([10, 9, 0, 9], [10, 0, 0, 1], 24, Some([10, 0, 0, 254])), Some([10, 0, 0, 254]));
        assert_eq!(next_hop([10, 9, 0, 9], [10, 0, 0, 1], 24, None), None);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[16..20].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(ipv4_dst(&ip), Some([1, 2, 3, 4]));
        assert_eq!(ipv4_dst(&ip[..19]), None);
    }
}
