//! Ethernet frame helpers for the NIC and switch models: MAC addresses, the
//! EtherType behind at most one 802.1Q tag, the IPv4 header offset, the
//! IPv4/TCP flow key, and the time a frame occupies the wire.
//!
//! Frames in the simulator are Ethernet II frames *without* the FCS, exactly
//! what a pcap file or one datagram of QEMU's `-netdev dgram` carries. The
//! FCS, preamble, SFD and inter-frame gap exist only in [`wire_bytes`].
//!
//! Every function takes untrusted bytes (frames come from firmware and from
//! real peers): short or inconsistent frames give `None`/an error, never a
//! panic.

use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};
use std::net::Ipv4Addr;

/// Destination + source MAC + EtherType (IEEE 802.3-2022 §3.1.1).
pub const ETHERNET_HEADER_LEN: usize = 14;
/// One IEEE 802.1Q tag: TPID 0x8100 + TCI (IEEE 802.1Q-2022 §9.6).
pub const VLAN_TAG_LEN: usize = 4;
/// EtherType of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Tag protocol identifier of a customer VLAN tag (IEEE 802.1Q-2022 §9.5).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Frame check sequence, a CRC-32 not carried by simulator frames
/// (IEEE 802.3-2022 §3.2.9).
pub const FCS_LEN: u64 = 4;
/// Shortest frame on the wire, FCS included: `minFrameSize` = 512 bits
/// (IEEE 802.3-2022 §4.4.2); shorter frames are padded (§3.2.8).
pub const MIN_FRAME_LEN: u64 = 64;
/// Preamble (7 octets) + start frame delimiter (1 octet), IEEE 802.3-2022
/// §3.2.1-§3.2.2.
pub const PREAMBLE_SFD_LEN: u64 = 8;
/// Inter-packet gap: `interPacketGap` = 96 bit times (IEEE 802.3-2022
/// §4.4.2); for 100GBASE-R this is the average kept by deficit idle count
/// (§82.2.3.4).
pub const IFG_LEN: u64 = 12;

/// Reads bytes `at..at + N` of `frame`, if present.
fn array_at<const N: usize>(frame: &[u8], at: usize) -> Option<[u8; N]> {
    frame.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Destination MAC address (the first six octets).
pub fn dst_mac(frame: &[u8]) -> Option<[u8; 6]> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return None;
    }
    array_at(frame, 0)
}

/// Source MAC address (octets 6..12).
pub fn src_mac(frame: &[u8]) -> Option<[u8; 6]> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return None;
    }
    array_at(frame, 6)
}

/// The destination is the broadcast address ff:ff:ff:ff:ff:ff.
pub fn is_broadcast(frame: &[u8]) -> bool {
    dst_mac(frame) == Some([0xff; 6])
}

/// The destination is a group address: the I/G bit, the least significant
/// bit of the first octet, is set (IEEE 802-2014 §8.2). Broadcast counts too.
pub fn is_multicast(frame: &[u8]) -> bool {
    dst_mac(frame).is_some_and(|mac| mac[0] & 1 != 0)
}

/// Where the L2 header ends and which protocol follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Header {
    /// EtherType after at most one 802.1Q tag.
    pub ethertype: u16,
    /// VLAN identifier (low 12 bits of the TCI) of the 802.1Q tag, if any.
    pub vlan_id: Option<u16>,
    /// Offset of the L3 header: 14, or 18 behind one 802.1Q tag.
    pub len: usize,
}

/// Parses the Ethernet II header and at most one 802.1Q tag.
pub fn l2_header(frame: &[u8]) -> Option<L2Header> {
    let outer = u16::from_be_bytes(array_at(frame, 12)?);
    if outer != ETHERTYPE_VLAN {
        return Some(L2Header { ethertype: outer, vlan_id: None, len: ETHERNET_HEADER_LEN });
    }
    let tci = u16::from_be_bytes(array_at(frame, 14)?);
    let inner = u16::from_be_bytes(array_at(frame, 16)?);
    Some(L2Header { ethertype: inner, vlan_id: Some(tci & 0x0fff), len: ETHERNET_HEADER_LEN + VLAN_TAG_LEN })
}

/// EtherType of the payload, behind at most one 802.1Q tag.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    l2_header(frame).map(|l2| l2.ethertype)
}

/// Why a frame does not carry a usable IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ipv4Error {
    #[error("frame shorter than its headers say")]
    Truncated,
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("invalid IPv4 header (version, IHL or total length)")]
    BadHeader,
}

/// Offset of the IPv4 header in `frame`, after checking that the frame is
/// IPv4 (behind at most one 802.1Q tag), that the version is 4, that
/// 20 <= IHL*4 <= total length (RFC 791 §3.1), and that the frame holds
/// `total length` bytes from there. Bytes after the IPv4 packet are Ethernet
/// padding and are not part of it.
pub fn ipv4_offset(frame: &[u8]) -> Result<usize, Ipv4Error> {
    let l2 = l2_header(frame).ok_or(Ipv4Error::Truncated)?;
    if l2.ethertype != ETHERTYPE_IPV4 {
        return Err(Ipv4Error::NotIpv4);
    }
    let ip = &frame[l2.len..];
    if ip.len() < 20 {
        return Err(Ipv4Error::Truncated);
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || header_len < 20 || total_len < header_len {
        return Err(Ipv4Error::BadHeader);
    }
    if ip.len() < total_len {
        return Err(Ipv4Error::Truncated);
    }
    // Same checks as ours; keeps every smoltcp accessor panic-free.
    Ipv4Packet::new_checked(ip).map_err(|_| Ipv4Error::BadHeader)?;
    Ok(l2.len)
}

/// The packet is a fragment: More Fragments set or a non-zero offset
/// (RFC 791 §3.1).
pub fn is_fragment<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>) -> bool {
    ip.more_frags() || ip.frag_offset() != 0
}

/// The IPv4/TCP 4-tuple that identifies one direction of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl FlowKey {
    /// The key of the opposite direction.
    pub fn reversed(self) -> FlowKey {
        FlowKey { src_addr: self.dst_addr, dst_addr: self.src_addr, src_port: self.dst_port, dst_port: self.src_port }
    }
}

/// Flow key of an unfragmented IPv4 packet carrying a TCP header whose data
/// offset is valid; `None` for anything else.
pub fn flow_key(frame: &[u8]) -> Option<FlowKey> {
    let l3 = ipv4_offset(frame).ok()?;
    let ip = Ipv4Packet::new_checked(&frame[l3..]).ok()?;
    if ip.next_header() != IpProtocol::Tcp || is_fragment(&ip) {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(FlowKey { src_addr: ip.src_addr(), dst_addr: ip.dst_addr(), src_port: tcp.src_port(), dst_port: tcp.dst_port() })
}

/// Octets a frame of `frame_len` bytes (FCS excluded) occupies on the wire:
/// padded to the 64-octet minimum with its FCS, plus preamble/SFD and the
/// inter-packet gap.
pub fn wire_bytes(frame_len: usize) -> u64 {
    let with_fcs = (frame_len as u64).saturating_add(FCS_LEN).max(MIN_FRAME_LEN);
    with_fcs.saturating_add(PREAMBLE_SFD_LEN + IFG_LEN)
}

/// Picoseconds a frame of `frame_len` bytes (FCS excluded) occupies a link
/// of `gbps` Gb/s, rounded up. A 0 Gb/s link never finishes (`u64::MAX`).
pub fn serialization_ps(frame_len: usize, gbps: u64) -> u64 {
    if gbps == 0 {
        return u64::MAX;
    }
    // One bit lasts 1000/gbps ps.
    wire_bytes(frame_len).saturating_mul(8 * 1000).div_ceil(gbps)
}

/// Frame builders for the tests of the `net` modules. They use smoltcp's
/// emitters, so the checksums they produce are an independent reference.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv4Repr, TcpControl, TcpRepr,
        TcpSeqNumber, UdpPacket, UdpRepr,
    };

    pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    /// Ethernet + IPv4 header (ident 0x1234, DF, TTL 64) around `l4`.
    fn ipv4_frame(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
        let eth = EthernetRepr {
            src_addr: EthernetAddress(SRC_MAC),
            dst_addr: EthernetAddress(DST_MAC),
            ethertype: EthernetProtocol::Ipv4,
        };
        let ip = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: protocol, payload_len: l4.len(), hop_limit: 64 };
        let mut buf = vec![0u8; ETHERNET_HEADER_LEN + ip.buffer_len() + l4.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        packet.set_ident(0x1234);
        packet.set_dont_frag(true);
        packet.payload_mut().copy_from_slice(l4);
        packet.fill_checksum();
        buf
    }

    /// A TCP segment with valid checksums; `psh` sets PSH on top of ACK.
    pub fn tcp_frame(key: FlowKey, seq: u32, ack: u32, psh: bool, payload: &[u8]) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: key.src_port,
            dst_port: key.dst_port,
            control: if psh { TcpControl::Psh } else { TcpControl::None },
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: Some(TcpSeqNumber(ack as i32)),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let mut l4 = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut l4[..]),
            &key.src_addr.into(),
            &key.dst_addr.into(),
            &ChecksumCapabilities::default(),
        );
        ipv4_frame(key.src_addr, key.dst_addr, IpProtocol::Tcp, &l4)
    }

    /// A UDP datagram with valid checksums.
    pub fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let repr = UdpRepr { src_port, dst_port };
        let mut l4 = vec![0u8; repr.header_len() + payload.len()];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut l4[..]),
            &src.into(),
            &dst.into(),
            payload.len(),
            |buf| buf.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        ipv4_frame(src, dst, IpProtocol::Udp, &l4)
    }

    /// Inserts an 802.1Q tag with `vid` after the MAC addresses.
    pub fn vlan_tagged(frame: &[u8], vid: u16) -> Vec<u8> {
        let mut out = frame[..12].to_vec();
        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
        out.extend_from_slice(&frame[12..]);
        out
    }

    /// The flow of the first row of Microsoft's RSS verification table.
    pub fn flow() -> FlowKey {
        FlowKey {
            src_addr: Ipv4Addr::new(66, 9, 149, 187),
            dst_addr: Ipv4Addr::new(161, 142, 100, 80),
            src_port: 2794,
            dst_port: 1766,
        }
    }

    /// Deterministic xorshift64 bytes for payloads and mutations.
    pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn addresses_and_group_bits() {
        let frame = tcp_frame(flow(), 1, 1, false, b"x");
        assert_eq!(dst_mac(&frame), Some(DST_MAC));
        assert_eq!(src_mac(&frame), Some(SRC_MAC));
        assert!(!is_broadcast(&frame) && !is_multicast(&frame));

        let mut bcast = frame.clone();
        bcast[..6].copy_from_slice(&[0xff; 6]);
        assert!(is_broadcast(&bcast) && is_multicast(&bcast));

        let mut mcast = frame.clone();
        mcast[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        assert!(!is_broadcast(&mcast) && is_multicast(&mcast));

        assert_eq!(dst_mac(&frame[..13]), None);
        assert!(!is_broadcast(&[0xff; 13]));
    }

    #[test]
    fn ethertype_behind_one_vlan_tag() {
        let frame = tcp_frame(flow(), 1, 1, false, b"x");
        assert_eq!(ethertype(&frame), Some(ETHERTYPE_IPV4));
        assert_eq!(l2_header(&frame).unwrap().vlan_id, None);
        let tagged = vlan_tagged(&frame, 0x2064); // PCP 1, VID 100
        assert_eq!(l2_header(&tagged), Some(L2Header { ethertype: ETHERTYPE_IPV4, vlan_id: Some(100), len: 18 }));
        assert_eq!(ipv4_offset(&tagged), Ok(18));
        assert_eq!(ethertype(&tagged[..17]), None);
    }

    #[test]
    fn ipv4_offset_classifies_errors() {
        let frame = tcp_frame(flow(), 1, 1, false, b"abc");
        assert_eq!(ipv4_offset(&frame), Ok(14));
        assert_eq!(ipv4_offset(&frame[..frame.len() - 1]), Err(Ipv4Error::Truncated));
        assert_eq!(ipv4_offset(&frame[..20]), Err(Ipv4Error::Truncated));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(ipv4_offset(&arp), Err(Ipv4Error::NotIpv4));
        let mut v6 = frame.clone();
        v6[14] = 0x65;
        assert_eq!(ipv4_offset(&v6), Err(Ipv4Error::BadHeader));
        let mut ihl4 = frame.clone();
        ihl4[14] = 0x44;
        assert_eq!(ipv4_offset(&ihl4), Err(Ipv4Error::BadHeader));
        let mut short_total = frame.clone();
        short_total[16..18].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(ipv4_offset(&short_total), Err(Ipv4Error::BadHeader));
        // Ethernet padding after the IPv4 packet is allowed.
        let mut padded = frame.clone();
        padded.resize(frame.len() + 10, 0);
        assert_eq!(ipv4_offset(&padded), Ok(14));
    }

    #[test]
    fn flow_key_of_tcp_only() {
        let key = flow();
        let frame = tcp_frame(key, 1, 1, false, b"abc");
        assert_eq!(flow_key(&frame), Some(key));
        assert_eq!(flow_key(&vlan_tagged(&frame, 7)), Some(key));
        assert_eq!(key.reversed().reversed(), key);
        assert_eq!(key.reversed().src_port, 1766);
        let udp = udp_frame(key.src_addr, key.dst_addr, 1, 2, b"abc");
        assert_eq!(flow_key(&udp), None);
        let mut fragment = frame.clone();
        fragment[20] |= 0x20; // More Fragments
        assert_eq!(flow_key(&fragment), None);
        let mut bad_offset = frame.clone();
        bad_offset[14 + 20 + 12] = 0xf0; // data offset 60 > segment length
        assert_eq!(flow_key(&bad_offset), None);
    }

    #[test]
    fn wire_time_follows_802_3_overheads() {
        // 60-byte minimum frame + FCS = 64; + 8 preamble/SFD + 12 IFG = 84.
        assert_eq!(wire_bytes(0), 84);
        assert_eq!(wire_bytes(60), 84);
        assert_eq!(wire_bytes(61), 85);
        assert_eq!(wire_bytes(1514), 1538);
        // 84 bytes at 100 Gb/s = 6.72 ns: the 148.8 Mpps line rate.
        assert_eq!(serialization_ps(60, 100), 6_720);
        assert_eq!(serialization_ps(1514, 100), 123_040);
        assert_eq!(serialization_ps(1514, 10), 1_230_400);
        // 672 bits at 3 Gb/s = 224 ns exactly; 680 bits = 226.67 ns, rounded up.
        assert_eq!(serialization_ps(60, 3), 224_000);
        assert_eq!(serialization_ps(61, 3), 226_667);
        assert_eq!(serialization_ps(60, 0), u64::MAX);
        assert_eq!(serialization_ps(usize::MAX, 1), u64::MAX);
    }
}
