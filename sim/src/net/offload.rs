//! TCP segmentation offload (TSO) on transmit and large receive offload
//! (LRO) on receive, for Ethernet/IPv4/TCP frames, plus the error type of
//! all NIC offloads.
//!
//! TSO follows Linux `tcp_gso_segment` (net/ipv4/tcp_offload.c) and the
//! Intel 82599 datasheet §7.2.4 (TCP segmentation): headers are copied to
//! every segment, the IPv4 identification grows by one per segment, FIN and
//! PSH stay on the last segment only, CWR on the first only, and both
//! checksums are recomputed.
//!
//! LRO follows the merge rules of Linux GRO (`tcp_gro_receive`,
//! `inet_gro_receive`): same flow, consecutive sequence numbers, identical
//! L2 header, IPv4 header fields and TCP options, ACK (+PSH) flags only.

use super::checksum::{insert_checksums, l4_checksum_ok};
use super::frame::{flow_key, ipv4_offset, is_fragment, FlowKey, Ipv4Error};
use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber};

/// Why a NIC offload (checksum insertion, TSO) could not process a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("frame shorter than its headers say")]
    Truncated,
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("invalid IPv4 header (version, IHL or total length)")]
    BadIpv4Header,
    #[error("IPv4 fragment: no TCP/UDP header to offload")]
    Fragment,
    #[error("offload not supported for IP protocol {0}")]
    UnsupportedProtocol(u8),
    #[error("invalid TCP header (data offset)")]
    BadTcpHeader,
    #[error("UDP length field disagrees with the IPv4 packet")]
    BadUdpLength,
    #[error("TSO needs an MSS of at least 1 byte")]
    InvalidMss,
}

impl From<Ipv4Error> for OffloadError {
    fn from(e: Ipv4Error) -> Self {
        match e {
            Ipv4Error::Truncated => OffloadError::Truncated,
            Ipv4Error::NotIpv4 => OffloadError::NotIpv4,
            Ipv4Error::BadHeader => OffloadError::BadIpv4Header,
        }
    }
}

/// TCP flag bits in byte 13 of the header (RFC 9293 §3.1, RFC 3168 §6.1).
const FLAG_PSH: u8 = 0x08;
const FLAG_ACK: u8 = 0x10;

/// Splits an Ethernet/IPv4/TCP frame into frames whose TCP payload is at
/// most `mss` bytes and appends them to `out`. A frame whose payload already
/// fits comes out as one segment (with fresh checksums, without Ethernet
/// padding). On error nothing is appended.
pub fn tso_segment(frame: &[u8], mss: u16, out: &mut Vec<Vec<u8>>) -> Result<(), OffloadError> {
    if mss == 0 {
        return Err(OffloadError::InvalidMss);
    }
    let l3 = ipv4_offset(frame)?;
    let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
    if is_fragment(&ip) {
        return Err(OffloadError::Fragment);
    }
    if ip.next_header() != IpProtocol::Tcp {
        return Err(OffloadError::UnsupportedProtocol(ip.next_header().into()));
    }
    let l4 = l3 + usize::from(ip.header_len());
    let end = l3 + usize::from(ip.total_len());
    let tcp = TcpPacket::new_checked(&frame[l4..end]).map_err(|_| OffloadError::BadTcpHeader)?;
    let headers = l4 + usize::from(tcp.header_len());
    let payload = &frame[headers..end];
    let (ident, seq) = (ip.ident(), tcp.seq_number().0 as u32);

    let mss = usize::from(mss);
    let count = payload.len().div_ceil(mss).max(1);
    out.reserve(count);
    for k in 0..count {
        let chunk = &payload[(k * mss).min(payload.len())..((k + 1) * mss).min(payload.len())];
        let mut segment = Vec::with_capacity(headers + chunk.len());
        segment.extend_from_slice(&frame[..headers]);
        segment.extend_from_slice(chunk);

        let mut ip = Ipv4Packet::new_unchecked(&mut segment[l3..]);
        // Fits: at most the original total length.
        ip.set_total_len((headers - l3 + chunk.len()) as u16);
        ip.set_ident(ident.wrapping_add(k as u16));
        let mut tcp = TcpPacket::new_unchecked(&mut segment[l4..]);
        tcp.set_seq_number(TcpSeqNumber(seq.wrapping_add((k * mss) as u32) as i32));
        if k + 1 < count {
            tcp.set_fin(false);
            tcp.set_psh(false);
        }
        if k > 0 {
            tcp.set_cwr(false);
        }
        insert_checksums(&mut segment, true, true)?;
        out.push(segment);
    }
    Ok(())
}

/// Offsets and fields of a segment that LRO may merge.
struct Mergeable {
    key: FlowKey,
    l3: usize,
    l4: usize,
    /// End of the TCP header = start of the payload.
    headers: usize,
    /// End of the IPv4 packet (Ethernet padding follows).
    end: usize,
    seq: u32,
    ack: u32,
    psh: bool,
}

/// Checks that `frame` is a segment LRO merges: unfragmented IPv4 without
/// options, valid IPv4 and TCP checksums (a merged frame gets fresh
/// checksums, so a corrupt segment must never enter one), flags ACK or
/// ACK+PSH only (no SYN/FIN/RST/URG/ECE/CWR/NS), and a non-empty payload
/// (pure ACKs carry information of their own: duplicate ACKs, window
/// updates).
fn mergeable(frame: &[u8]) -> Option<Mergeable> {
    let key = flow_key(frame)?;
    let l3 = ipv4_offset(frame).ok()?;
    let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
    if ip.header_len() != 20 || !ip.verify_checksum() || l4_checksum_ok(frame) != Some(true) {
        return None;
    }
    let (l4, end) = (l3 + 20, l3 + usize::from(ip.total_len()));
    // flow_key checked the TCP header length against the segment.
    let tcp = TcpPacket::new_unchecked(&frame[l4..end]);
    let (flags, ns) = (frame[l4 + 13], frame[l4 + 12] & 1);
    if flags & !(FLAG_ACK | FLAG_PSH) != 0 || flags & FLAG_ACK == 0 || ns != 0 {
        return None;
    }
    let headers = l4 + usize::from(tcp.header_len());
    if headers == end {
        return None;
    }
    Some(Mergeable {
        key,
        l3,
        l4,
        headers,
        end,
        seq: tcp.seq_number().0 as u32,
        ack: tcp.ack_number().0 as u32,
        psh: flags & FLAG_PSH != 0,
    })
}

/// One flow's frame being built: the first segment's headers, then the
/// payload of every segment merged so far.
struct Held {
    key: FlowKey,
    frame: Vec<u8>,
    l3: usize,
    l4: usize,
    headers: usize,
    next_seq: u32,
    ack: u32,
}

impl Held {
    fn start(mut frame: Vec<u8>, seg: &Mergeable) -> Held {
        frame.truncate(seg.end);
        let next_seq = seg.seq.wrapping_add((seg.end - seg.headers) as u32);
        Held { key: seg.key, frame, l3: seg.l3, l4: seg.l4, headers: seg.headers, next_seq, ack: seg.ack }
    }

    /// The segment continues this frame and fits in `max_frame_len` (and in
    /// the 65535-byte IPv4 total length).
    fn accepts(&self, frame: &[u8], seg: &Mergeable, max_frame_len: usize) -> bool {
        let (l3, l4, held) = (self.l3, self.l4, &self.frame);
        let len = held.len() + (seg.end - seg.headers);
        seg.l3 == l3
            && seg.headers - seg.l4 == self.headers - l4
            && frame[..l3] == held[..l3]
            // Version/IHL/TOS; flags/fragment, TTL, protocol (addresses are in the key).
            && frame[l3..l3 + 2] == held[l3..l3 + 2]
            && frame[l3 + 6..l3 + 10] == held[l3 + 6..l3 + 10]
            // TCP options byte for byte, as Linux GRO requires.
            && frame[l4 + 20..seg.headers] == held[l4 + 20..self.headers]
            && seg.seq == self.next_seq
            && seg.ack.wrapping_sub(self.ack) as i32 >= 0
            && len <= max_frame_len
            && len - l3 <= usize::from(u16::MAX)
    }

    /// Appends the payload; the newest ACK number, window and PSH win.
    fn merge(&mut self, frame: &[u8], seg: &Mergeable) {
        self.frame.extend_from_slice(&frame[seg.headers..seg.end]);
        self.next_seq = seg.seq.wrapping_add((seg.end - seg.headers) as u32);
        self.ack = seg.ack;
        let (from, to) = (seg.l4, self.l4);
        // Acknowledgment number (bytes 8..12) and window (14..16).
        self.frame[to + 8..to + 12].copy_from_slice(&frame[from + 8..from + 12]);
        self.frame[to + 14..to + 16].copy_from_slice(&frame[from + 14..from + 16]);
        if seg.psh {
            self.frame[to + 13] |= FLAG_PSH;
        }
    }

    /// The finished frame: IPv4 total length and both checksums fixed.
    fn finish(mut self) -> Vec<u8> {
        let total_len = (self.frame.len() - self.l3) as u16; // bounded by `accepts`
        Ipv4Packet::new_unchecked(&mut self.frame[self.l3..]).set_total_len(total_len);
        let fixed = insert_checksums(&mut self.frame, true, true);
        debug_assert_eq!(fixed, Ok(()), "a held frame is always valid IPv4/TCP");
        self.frame
    }
}

/// Large receive offload: merges in-order TCP segments of up to `max_flows`
/// flows into frames of at most `max_frame_len` bytes.
///
/// Rules (see [`mergeable`] and `Held::accepts`): a segment joins its flow's
/// held frame when it carries ACK (optionally PSH) only, has payload, valid
/// checksums, no IPv4 options or fragmentation, the next sequence number, an
/// ACK number not older than the held one, and the same L2 header, IPv4
/// TOS/TTL/flags and TCP options bytes (so segments with identical
/// timestamps merge; any option change ends the frame). The merged frame
/// keeps the first segment's headers (sequence number, IPv4 identification)
/// and takes the latest ACK number and window; PSH delivers it at once.
/// Anything else is delivered unchanged, after the held frame of its flow,
/// so each flow stays in order.
pub struct Lro {
    max_frame_len: usize,
    max_flows: usize,
    /// Oldest first; evicted in that order when a new flow needs room.
    held: Vec<Held>,
}

impl Lro {
    pub fn new(max_frame_len: usize, max_flows: usize) -> Self {
        Lro { max_frame_len, max_flows, held: Vec::with_capacity(max_flows) }
    }

    /// Flows with a frame being built.
    pub fn held_flows(&self) -> usize {
        self.held.len()
    }

    /// Offers one received frame; returns the frames ready for delivery,
    /// in order.
    pub fn push(&mut self, frame: Vec<u8>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let Some(seg) = mergeable(&frame) else {
            if let Some(key) = flow_key(&frame) {
                self.deliver_flow(key, &mut out);
            }
            out.push(frame);
            return out;
        };
        if let Some(i) = self.held.iter().position(|h| h.key == seg.key) {
            if self.held[i].accepts(&frame, &seg, self.max_frame_len) {
                self.held[i].merge(&frame, &seg);
                if seg.psh {
                    out.push(self.held.remove(i).finish());
                }
                return out;
            }
            out.push(self.held.remove(i).finish());
        }
        if seg.psh || self.max_flows == 0 {
            out.push(frame);
            return out;
        }
        if self.held.len() >= self.max_flows {
            out.push(self.held.remove(0).finish());
        }
        self.held.push(Held::start(frame, &seg));
        out
    }

    /// Delivers every held frame, oldest flow first (end of an RX batch or
    /// interrupt moderation timer).
    pub fn flush(&mut self) -> Vec<Vec<u8>> {
        self.held.drain(..).map(Held::finish).collect()
    }

    fn deliver_flow(&mut self, key: FlowKey, out: &mut Vec<Vec<u8>>) {
        if let Some(i) = self.held.iter().position(|h| h.key == key) {
            out.push(self.held.remove(i).finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::testing::*;
    use super::super::frame::ETHERTYPE_ARP;
    use super::*;
    use std::net::Ipv4Addr;

    const TCP: usize = 14 + 20;

    fn payload_of(frame: &[u8]) -> &[u8] {
        let data_offset = usize::from(frame[TCP + 12] >> 4) * 4;
        let end = 14 + usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        &frame[TCP + data_offset..end]
    }

    fn seq_of(frame: &[u8]) -> u32 {
        u32::from_be_bytes(frame[TCP + 4..TCP + 8].try_into().unwrap())
    }

    fn valid(frame: &[u8]) -> bool {
        super::super::checksum::ipv4_header_ok(frame) && l4_checksum_ok(frame) == Some(true)
    }

    /// Sets extra TCP flag bits and fixes the checksums.
    fn with_flags(mut frame: Vec<u8>, flags: u8) -> Vec<u8> {
        frame[TCP + 13] |= flags;
        insert_checksums(&mut frame, true, true).unwrap();
        frame
    }

    /// Inserts TCP options (a multiple of 4 bytes) after the base header.
    fn with_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
        let mut out = frame[..TCP + 20].to_vec();
        out.extend_from_slice(options);
        out.extend_from_slice(&frame[TCP + 20..]);
        let total = u16::from_be_bytes([out[16], out[17]]) + options.len() as u16;
        out[16..18].copy_from_slice(&total.to_be_bytes());
        out[TCP + 12] = ((20 + options.len() as u8) / 4) << 4;
        insert_checksums(&mut out, true, true).unwrap();
        out
    }

    fn timestamps(tsval: u32) -> [u8; 12] {
        let mut opt = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 7];
        opt[4..8].copy_from_slice(&tsval.to_be_bytes());
        opt
    }

    fn segments(frame: &[u8], mss: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        tso_segment(frame, mss, &mut out).unwrap();
        out
    }

    #[test]
    fn tso_splits_and_fixes_headers() {
        let data = pseudo_random(1, 3500);
        // ECE + CWR + FIN on top of ACK+PSH.
        let frame = with_flags(tcp_frame(flow(), 0xffff_fc00, 77, true, &data), 0x40 | 0x80 | 0x01);
        let segs = segments(&frame, 1000);
        assert_eq!(segs.len(), 4);
        let mut joined = Vec::new();
        for (k, seg) in segs.iter().enumerate() {
            assert!(valid(seg), "segment {k}");
            let expect_len = if k == 3 { 500 } else { 1000 };
            assert_eq!(payload_of(seg).len(), expect_len);
            assert_eq!(seg.len(), TCP + 20 + expect_len);
            assert_eq!(u16::from_be_bytes([seg[18], seg[19]]), 0x1234 + k as u16, "IPv4 identification");
            assert_eq!(seq_of(seg), 0xffff_fc00_u32.wrapping_add(1000 * k as u32), "sequence wraps");
            let flags = seg[TCP + 13];
            assert_eq!(flags & 0x10, 0x10, "ACK everywhere");
            assert_eq!(flags & 0x40, 0x40, "ECE everywhere");
            assert_eq!(flags & 0x80 != 0, k == 0, "CWR first only");
            assert_eq!(flags & 0x09 != 0, k == 3, "FIN/PSH last only");
            assert_eq!(flags & 0x09, if k == 3 { 0x09 } else { 0 });
            assert_eq!(seg[..16], frame[..16], "L2, version/IHL, TOS");
            assert_eq!(seg[20..24], frame[20..24], "flags, TTL, protocol");
            assert_eq!(seg[TCP + 8..TCP + 12], frame[TCP + 8..TCP + 12], "ACK number");
            joined.extend_from_slice(payload_of(seg));
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn tso_small_frame_is_one_segment() {
        let frame = tcp_frame(flow(), 5, 6, true, b"short");
        let mut padded = frame.clone();
        padded.resize(60, 0);
        assert_eq!(segments(&padded, 1460), vec![frame.clone()]);
        let empty = tcp_frame(flow(), 5, 6, false, b"");
        assert_eq!(segments(&empty, 1), vec![empty.clone()]);
        assert_eq!(segments(&frame, 5), vec![frame]);
    }

    #[test]
    fn tso_copies_options_to_every_segment() {
        let frame = with_options(&tcp_frame(flow(), 1, 2, false, &pseudo_random(2, 2000)), &timestamps(99));
        let segs = segments(&frame, 1448);
        assert_eq!(segs.len(), 2);
        for seg in &segs {
            assert!(valid(seg));
            assert_eq!(seg[TCP + 20..TCP + 32], timestamps(99));
        }
        assert_eq!(payload_of(&segs[1]).len(), 2000 - 1448);
    }

    #[test]
    fn tso_rejects_what_it_cannot_segment() {
        let frame = tcp_frame(flow(), 1, 2, false, &pseudo_random(3, 100));
        let mut out = Vec::new();
        assert_eq!(tso_segment(&frame, 0, &mut out), Err(OffloadError::InvalidMss));
        let udp = udp_frame(flow().src_addr, flow().dst_addr, 1, 2, b"abc");
        assert_eq!(tso_segment(&udp, 10, &mut out), Err(OffloadError::UnsupportedProtocol(17)));
        let mut fragment = frame.clone();
        fragment[20] |= 0x20;
        assert_eq!(tso_segment(&fragment, 10, &mut out), Err(OffloadError::Fragment));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(tso_segment(&arp, 10, &mut out), Err(OffloadError::NotIpv4));
        let mut bad_offset = frame.clone();
        bad_offset[TCP + 12] = 0x30; // 12-byte header
        assert_eq!(tso_segment(&bad_offset, 10, &mut out), Err(OffloadError::BadTcpHeader));
        let mut v5 = frame.clone();
        v5[14] = 0x55;
        assert_eq!(tso_segment(&v5, 10, &mut out), Err(OffloadError::BadIpv4Header));
        for len in 0..frame.len() {
            assert_eq!(tso_segment(&frame[..len], 10, &mut out), Err(OffloadError::Truncated), "len {len}");
        }
        assert!(out.is_empty());
    }

    #[test]
    fn tso_then_lro_gives_back_the_original() {
        for (psh, options) in [(true, &[][..]), (false, &[][..]), (true, &timestamps(5)[..])] {
            let frame = with_options(&tcp_frame(flow(), 0x8000_0000, 9, psh, &pseudo_random(4, 5000)), options);
            let segs = segments(&frame, 1448);
            assert_eq!(segs.len(), 4);
            let mut lro = Lro::new(65_536, 8);
            let mut delivered = Vec::new();
            for seg in segs {
                delivered.extend(lro.push(seg));
            }
            assert_eq!(delivered.is_empty(), !psh, "PSH delivers at once");
            delivered.extend(lro.flush());
            assert_eq!(delivered, vec![frame.clone()], "psh {psh} options {options:?}");
            assert_eq!(lro.held_flows(), 0);
        }
    }

    #[test]
    fn lro_keeps_flows_apart_and_in_order() {
        let a = tcp_frame(flow(), 100, 1, false, &pseudo_random(5, 3000));
        let b_key = FlowKey { src_port: 5000, ..flow() };
        let b = tcp_frame(b_key, 900, 1, false, &pseudo_random(6, 2000));
        let (sa, sb) = (segments(&a, 1000), segments(&b, 1000));
        let mut lro = Lro::new(65_536, 8);
        for seg in [&sa[0], &sb[0], &sa[1], &sb[1], &sa[2]] {
            assert!(lro.push(seg.clone()).is_empty());
        }
        assert_eq!(lro.held_flows(), 2);
        assert_eq!(lro.flush(), vec![a, b]);
    }

    #[test]
    fn lro_gap_bad_checksum_and_pure_ack_end_the_frame() {
        let frame = tcp_frame(flow(), 1, 1, false, &pseudo_random(7, 3000));
        let segs = segments(&frame, 1000);

        // A sequence gap: the held segment goes out, the new one is held.
        let mut lro = Lro::new(65_536, 8);
        assert!(lro.push(segs[0].clone()).is_empty());
        assert_eq!(lro.push(segs[2].clone()), vec![segs[0].clone()]);
        assert_eq!(lro.flush(), vec![segs[2].clone()]);

        // A corrupt segment is never merged; it follows its flow unchanged.
        let mut corrupt = segs[1].clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert!(lro.push(segs[0].clone()).is_empty());
        assert_eq!(lro.push(corrupt.clone()), vec![segs[0].clone(), corrupt]);
        assert_eq!(lro.held_flows(), 0);

        // A pure ACK of the same flow flushes it first.
        let ack = tcp_frame(flow(), 1001, 1, false, b"");
        assert!(lro.push(segs[0].clone()).is_empty());
        assert_eq!(lro.push(ack.clone()), vec![segs[0].clone(), ack]);

        // Changed options (new timestamp) end the frame.
        let t1 = with_options(&segs[0], &timestamps(1));
        let t2 = with_options(&segs[1], &timestamps(2));
        assert!(lro.push(t1.clone()).is_empty());
        assert_eq!(lro.push(t2.clone()), vec![t1]);
        assert_eq!(lro.flush(), vec![t2]);
    }

    #[test]
    fn lro_takes_newest_ack_and_window_but_not_older_ack() {
        let first = tcp_frame(flow(), 1, 1000, false, &[1; 100]);
        let mut second = tcp_frame(flow(), 101, 2000, false, &[2; 100]);
        second[TCP + 14..TCP + 16].copy_from_slice(&4096u16.to_be_bytes());
        insert_checksums(&mut second, true, true).unwrap();
        let mut lro = Lro::new(65_536, 8);
        assert!(lro.push(first.clone()).is_empty());
        assert!(lro.push(second).is_empty());
        let merged = lro.flush().pop().unwrap();
        assert!(valid(&merged));
        assert_eq!(seq_of(&merged), 1);
        assert_eq!(merged[TCP + 8..TCP + 12], 2000u32.to_be_bytes());
        assert_eq!(merged[TCP + 14..TCP + 16], 4096u16.to_be_bytes());
        assert_eq!(payload_of(&merged), [[1u8; 100], [2; 100]].concat());

        let older = tcp_frame(flow(), 101, 999, false, &[2; 100]);
        assert!(lro.push(first.clone()).is_empty());
        assert_eq!(lro.push(older.clone()), vec![first]);
        assert_eq!(lro.flush(), vec![older]);
    }

    #[test]
    fn lro_respects_size_and_flow_limits() {
        let frame = tcp_frame(flow(), 1, 1, false, &pseudo_random(8, 3000));
        let segs = segments(&frame, 1000);
        let mut lro = Lro::new(TCP + 20 + 2000, 8);
        assert!(lro.push(segs[0].clone()).is_empty());
        assert!(lro.push(segs[1].clone()).is_empty());
        let out = lro.push(segs[2].clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), TCP + 20 + 2000);
        assert!(valid(&out[0]));
        assert_eq!(lro.flush(), vec![segs[2].clone()]);

        let other = tcp_frame(FlowKey { src_addr: Ipv4Addr::new(10, 0, 0, 9), ..flow() }, 1, 1, false, b"x");
        let mut one_flow = Lro::new(65_536, 1);
        assert!(one_flow.push(segs[0].clone()).is_empty());
        assert_eq!(one_flow.push(other.clone()), vec![segs[0].clone()]);
        assert_eq!(one_flow.flush(), vec![other.clone()]);
        let mut no_flows = Lro::new(65_536, 0);
        assert_eq!(no_flows.push(other.clone()), vec![other]);
    }

    #[test]
    fn lro_passes_other_frames_untouched() {
        let mut lro = Lro::new(65_536, 8);
        let udp = udp_frame(flow().src_addr, flow().dst_addr, 1, 2, b"datagram");
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&SRC_MAC);
        arp.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        arp.resize(60, 0);
        let syn = with_flags(tcp_frame(flow(), 1, 1, false, b"data"), 0x02);
        let tagged_padded = {
            let mut f = vlan_tagged(&tcp_frame(flow(), 1, 1, true, b"x"), 3);
            f.resize(64, 0);
            f
        };
        for frame in [udp, arp, syn, tagged_padded, vec![], vec![0; 13]] {
            assert_eq!(lro.push(frame.clone()), vec![frame]);
        }
        assert_eq!(lro.held_flows(), 0);
    }

    /// Malformed input never panics: every truncation and every one-byte
    /// corruption of the headers, through TSO and through an LRO that holds
    /// a segment of the same flow. Whatever LRO delivers is an input frame
    /// unchanged or a frame with valid checksums.
    #[test]
    fn malformed_frames_never_panic() {
        let frame = tcp_frame(flow(), 1, 1, false, &pseudo_random(9, 64));
        let held = tcp_frame(flow(), 1u32.wrapping_sub(64), 1, false, &pseudo_random(10, 64));
        let mut cases: Vec<Vec<u8>> = (0..frame.len()).map(|len| frame[..len].to_vec()).collect();
        for at in 0..TCP + 20 {
            for value in [0x00, 0x01, 0x0f, 0x45, 0x80, 0xff] {
                let mut bad = frame.clone();
                bad[at] = value;
                cases.push(bad.clone());
                // Same corruption with repaired checksums reaches deeper checks.
                if insert_checksums(&mut bad, true, true).is_ok() {
                    cases.push(bad);
                }
            }
        }
        for case in cases {
            let mut out = Vec::new();
            let _ = tso_segment(&case, 16, &mut out);
            assert!(out.iter().all(|seg| valid(seg)), "{case:02x?}");
            let mut lro = Lro::new(65_536, 4);
            assert!(lro.push(held.clone()).is_empty());
            let mut delivered = lro.push(case.clone());
            delivered.extend(lro.flush());
            for f in &delivered {
                assert!(*f == case || *f == held || valid(f), "{case:02x?}");
            }
        }
    }
}
