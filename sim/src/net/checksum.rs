//! Checksum offloads of the NIC model: RX verification of the IPv4 header
//! checksum and of TCP/UDP checksums, TX insertion of both.
//!
//! Sources: RFC 791 §3.1 (IPv4 header checksum), RFC 9293 §3.1 (TCP
//! checksum over the IPv4 pseudo header), RFC 768 (UDP; a zero checksum
//! means "none sent"), RFC 1071 (the one's-complement sum, computed here by
//! `smoltcp::wire`).

use super::frame::{ipv4_offset, is_fragment};
use super::offload::OffloadError;
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket, TCP_HEADER_LEN};

/// The frame carries an IPv4 header (lengths consistent, see
/// [`ipv4_offset`]) whose header checksum verifies.
pub fn ipv4_header_ok(frame: &[u8]) -> bool {
    ipv4_offset(frame).is_ok_and(|l3| Ipv4Packet::new_unchecked(&frame[l3..]).verify_checksum())
}

/// TCP or UDP checksum check of an IPv4 frame: `Some(true)` when it
/// verifies, `Some(false)` when it does not or the TCP/UDP header is
/// truncated, `None` when not applicable: no valid IPv4 header, a fragment,
/// another protocol, or a UDP datagram sent without checksum (zero field).
pub fn l4_checksum_ok(frame: &[u8]) -> Option<bool> {
    let l3 = ipv4_offset(frame).ok()?;
    let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
    if is_fragment(&ip) {
        return None;
    }
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    let segment = ip.payload();
    match ip.next_header() {
        IpProtocol::Tcp if segment.len() < TCP_HEADER_LEN => Some(false),
        IpProtocol::Tcp => Some(TcpPacket::new_unchecked(segment).verify_checksum(&src, &dst)),
        IpProtocol::Udp => match UdpPacket::new_checked(segment) {
            Err(_) => Some(false),
            Ok(udp) if udp.checksum() == 0 => None,
            Ok(udp) => Some(udp.verify_checksum(&src, &dst)),
        },
        _ => None,
    }
}

/// Fills in the IPv4 header checksum (`ip`) and the TCP or UDP checksum
/// (`l4`) of `frame` in place, as a NIC does on transmit. All checks run
/// before any byte changes: on error the frame is untouched.
pub fn insert_checksums(frame: &mut [u8], ip: bool, l4: bool) -> Result<(), OffloadError> {
    let l3 = ipv4_offset(frame)?;
    let mut packet = Ipv4Packet::new_unchecked(&mut frame[l3..]);
    if l4 {
        if is_fragment(&packet) {
            return Err(OffloadError::Fragment);
        }
        let (src, dst) = (IpAddress::Ipv4(packet.src_addr()), IpAddress::Ipv4(packet.dst_addr()));
        let protocol = packet.next_header();
        let segment = packet.payload_mut();
        match protocol {
            IpProtocol::Tcp => TcpPacket::new_checked(segment)
                .map_err(|_| OffloadError::BadTcpHeader)?
                .fill_checksum(&src, &dst),
            IpProtocol::Udp => UdpPacket::new_checked(segment)
                .map_err(|_| OffloadError::BadUdpLength)?
                .fill_checksum(&src, &dst),
            other => return Err(OffloadError::UnsupportedProtocol(other.into())),
        }
    }
    if ip {
        packet.fill_checksum();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::frame::testing::*;
    use super::*;
    use std::net::Ipv4Addr;

    /// Wikipedia's "IPv4 header checksum" example: 4500 0073 0000 4000 4011
    /// b861 c0a8 0001 c0a8 00c7, checksum 0xb861.
    fn known_ipv4_frame() -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ]);
        // UDP header (length 0x73 - 20 = 95) + payload, checksum "none".
        frame.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0x00, 95, 0x00, 0x00]);
        frame.resize(14 + 0x73, 0xab);
        frame
    }

    #[test]
    fn ipv4_header_checksum_known_value() {
        let mut frame = known_ipv4_frame();
        assert!(ipv4_header_ok(&frame));
        frame[24..26].fill(0);
        assert!(!ipv4_header_ok(&frame));
        insert_checksums(&mut frame, true, false).unwrap();
        assert_eq!(&frame[24..26], &[0xb8, 0x61]);
        // A UDP datagram without checksum is not verifiable.
        assert_eq!(l4_checksum_ok(&frame), None);
    }

    #[test]
    fn tcp_checksum_matches_smoltcp_emitter() {
        let reference = tcp_frame(flow(), 0x0102_0304, 0x0a0b_0c0d, true, b"hello, world");
        assert!(ipv4_header_ok(&reference));
        assert_eq!(l4_checksum_ok(&reference), Some(true));
        let mut frame = reference.clone();
        let tcp_csum = 14 + 20 + 16;
        frame[24..26].fill(0);
        frame[tcp_csum..tcp_csum + 2].fill(0);
        assert!(!ipv4_header_ok(&frame));
        assert_eq!(l4_checksum_ok(&frame), Some(false));
        insert_checksums(&mut frame, true, true).unwrap();
        assert_eq!(frame, reference);
    }

    #[test]
    fn udp_checksum_inserted_and_verified() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let reference = udp_frame(src, dst, 4420, 4791, b"odd-length payload!");
        assert_eq!(l4_checksum_ok(&reference), Some(true));
        let mut frame = reference.clone();
        frame[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0xde, 0xad]);
        assert_eq!(l4_checksum_ok(&frame), Some(false));
        insert_checksums(&mut frame, false, true).unwrap();
        assert_eq!(frame, reference);
    }

    #[test]
    fn corrupted_payload_fails_l4_check() {
        let mut frame = tcp_frame(flow(), 1, 2, false, &pseudo_random(3, 100));
        let last = frame.len() - 1;
        frame[last] ^= 0x01;
        assert!(ipv4_header_ok(&frame));
        assert_eq!(l4_checksum_ok(&frame), Some(false));
    }

    #[test]
    fn ethernet_padding_is_not_summed() {
        let reference = tcp_frame(flow(), 1, 2, false, b"");
        let mut padded = reference.clone();
        padded.resize(60, 0x5a);
        assert_eq!(l4_checksum_ok(&padded), Some(true));
        padded[14 + 20 + 16] ^= 0xff;
        insert_checksums(&mut padded, true, true).unwrap();
        assert_eq!(&padded[..reference.len()], &reference[..]);
        assert!(padded[reference.len()..].iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn not_applicable_and_errors_leave_frame_untouched() {
        let frame = tcp_frame(flow(), 1, 2, false, b"data");
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!ipv4_header_ok(&arp));
        assert_eq!(l4_checksum_ok(&arp), None);
        assert_eq!(insert_checksums(&mut arp.clone(), true, true), Err(OffloadError::NotIpv4));

        let mut fragment = frame.clone();
        fragment[20] |= 0x20;
        assert_eq!(l4_checksum_ok(&fragment), None);
        let before = fragment.clone();
        assert_eq!(insert_checksums(&mut fragment, true, true), Err(OffloadError::Fragment));
        assert_eq!(fragment, before);

        let mut icmp = frame.clone();
        icmp[14 + 9] = 1;
        assert_eq!(l4_checksum_ok(&icmp), None);
        assert_eq!(insert_checksums(&mut icmp, true, true), Err(OffloadError::UnsupportedProtocol(1)));
        insert_checksums(&mut icmp, true, false).unwrap();
        assert!(ipv4_header_ok(&icmp));

        let mut bad_udp = udp_frame(flow().src_addr, flow().dst_addr, 1, 2, b"abcd");
        bad_udp[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(l4_checksum_ok(&bad_udp), Some(false));
        assert_eq!(insert_checksums(&mut bad_udp, true, true), Err(OffloadError::BadUdpLength));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frame = tcp_frame(flow(), 1, 2, true, &pseudo_random(5, 40));
        for len in 0..frame.len() {
            let mut cut = frame[..len].to_vec();
            assert!(!ipv4_header_ok(&cut), "len {len}");
            assert_eq!(l4_checksum_ok(&cut), None, "len {len}");
            assert!(insert_checksums(&mut cut, true, true).is_err(), "len {len}");
            assert_eq!(cut, frame[..len], "len {len}");
        }
    }

    #[test]
    fn short_tcp_segment_is_bad() {
        // IPv4 total length leaves only 8 bytes of "TCP".
        let mut frame = tcp_frame(flow(), 1, 2, false, b"");
        frame[16..18].copy_from_slice(&28u16.to_be_bytes());
        insert_checksums(&mut frame, true, false).unwrap();
        assert_eq!(l4_checksum_ok(&frame), Some(false));
        assert_eq!(insert_checksums(&mut frame, true, true), Err(OffloadError::BadTcpHeader));
    }
}
