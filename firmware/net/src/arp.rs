//! ARP over Ethernet for IPv4 (RFC 826): answer requests for our address,
//! learn senders, and build requests. Frames are checked field by field
//! through smoltcp's wire views; anything malformed is ignored.

use crate::eth::{self, BROADCAST, ETHERTYPE_ARP, HEADER};
use crate::{Ipv4, Mac};
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Ipv4Address};

/// Length of an ARP frame (Ethernet header + 28-byte ARP packet).
pub const FRAME_LEN: usize = HEADER + 28;

/// What an ARP frame means for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arp {
    /// `sender` has `mac` (learned from a request or a reply).
    Learned { ip: Ipv4, mac: Mac, reply_len: usize },
}

/// Handles a received ARP frame. Learns the sender (returned) and, for a
/// request aimed at `my_ip`, writes a reply into `out` (reply_len > 0).
pub fn handle(frame: &[u8], my_mac: Mac, my_ip: Ipv4, out: &mut [u8]) -> Option<Arp> {
    if eth::ethertype(frame)? != ETHERTYPE_ARP {
        return None;
    }
    let pkt = ArpPacket::new_checked(&frame[HEADER..]).ok()?;
    let ArpRepr::EthernetIpv4 { operation, source_hardware_addr, source_protocol_addr, target_protocol_addr, .. } = ArpRepr::parse(&pkt).ok()?
    else {
        return None;
    };
    let ip = source_protocol_addr.octets();
    let mac = source_hardware_addr.0;
    if mac[0] & 1 != 0 || ip == [0; 4] {
        return None;
    }
    let mut reply_len = 0;
    if operation == ArpOperation::Request && target_protocol_addr.octets() == my_ip && out.len() >= FRAME_LEN {
        reply_len = build(out, ArpOperation::Reply, my_mac, my_ip, mac, ip);
    }
    Some(Arp::Learned { ip, mac, reply_len })
}

/// Writes a who-has request for `target` into `out`; returns its length.
pub fn request(out: &mut [u8], my_mac: Mac, my_ip: Ipv4, target: Ipv4) -> usize {
    build(out, ArpOperation::Request, my_mac, my_ip, [0; 6], target)
}

fn build(out: &mut [u8], operation: ArpOperation, my_mac: Mac, my_ip: Ipv4, to_mac: Mac, to_ip: Ipv4) -> usize {
    if out.len() < FRAME_LEN {
        return 0;
    }
    let dst = if operation == ArpOperation::Request { BROADCAST } else { to_mac };
    eth::write_header(out, dst, my_mac, ETHERTYPE_ARP);
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: EthernetAddress(my_mac),
        source_protocol_addr: Ipv4Address::from_octets(my_ip),
        target_hardware_addr: EthernetAddress(to_mac),
        target_protocol_addr: Ipv4Address::from_octets(to_ip),
    };
    let mut pkt = ArpPacket::new_unchecked(&mut out[HEADER..FRAME_LEN]);
    repr.emit(&mut pkt);
    FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Mac = [2, 0xd9, 0, 0, 0, 1];
    const PEER: Mac = [2, 0x77, 0, 0, 0, 9];

    #[test]
    fn request_is_answered_and_sender_learned() {
        let mut req = [0u8; 64];
        let n = request(&mut req, PEER, [10, 0, 0, 9], [10, 0, 0, 1]);
        assert_eq!(n, FRAME_LEN);
        assert_eq!(&req[..6], &BROADCAST);
        let mut out = [0u8; 64];
        let got = handle(&req[..n], ME, [10, 0, 0, 1], &mut out).unwrap();
        assert_eq!(got, Arp::Learned { ip: [10, 0, 0, 9], mac: PEER, reply_len: FRAME_LEN });
        assert_eq!(&out[..6], &PEER, "unicast reply");
        // The reply, seen by the peer, teaches it our MAC.
        let back = handle(&out[..FRAME_LEN], PEER, [10, 0, 0, 9], &mut [0u8; 64]).unwrap();
        assert_eq!(back, Arp::Learned { ip: [10, 0, 0, 1], mac: ME, reply_len: 0 });
    }

    #[test]
    fn others_and_garbage_are_not_answered() {
        let mut req = [0u8; 64];
        let n = request(&mut req, PEER, [10, 0, 0, 9], [10, 0, 0, 77]);
        let mut out = [0u8; 64];
        assert_eq!(handle(&req[..n], ME, [10, 0, 0, 1], &mut out).map(|Arp::Learned { reply_len, .. }| reply_len), Some(0));
        for len in 0..n {
            assert!(handle(&req[..len], ME, [10, 0, 0, 1], &mut out).is_none_or(|_| len >= n), "truncated to {len}");
        }
        let mut ip = req;
        ip[12..14].copy_from_slice(&[8, 0]);
        assert_eq!(handle(&ip[..n], ME, [10, 0, 0, 1], &mut out), None);
    }
}
