//! NVMe/TCP PDU headers seen on the wire, for the I/O trace.
//!
//! The trace watches the frames the DPU's NIC sends and receives. Each TCP
//! direction is one byte stream of PDUs (NVMe/TCP 1.0 §3.3: every PDU
//! starts with the 8-byte common header `type, flags, hlen, pdo, plen`).
//! [`Stream`] follows a direction from its SYN, skips retransmitted bytes,
//! and yields each PDU's header as soon as it is complete; payloads are
//! skipped. A gap (a lost segment, seen on the receive side) ends the
//! stream's tracing until the connection's next SYN: the trace is an
//! observer and never buffers out-of-order data.

use crate::net::frame;
use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};

/// A PDU header as collected (common header + PDU-specific header, at most
/// [`MAX_HLEN`] bytes).
pub type Header = Vec<u8>;

/// Longest header the trace collects: the Command Capsule's 72 bytes plus
/// room; longer `hlen` values are malformed (NVMe/TCP 1.0 §3.6).
const MAX_HLEN: usize = 128;

/// PDU types (NVMe/TCP 1.0 §3.6 figure 18).
pub mod pdu {
    pub const CAPSULE_CMD: u8 = 0x04;
    pub const CAPSULE_RESP: u8 = 0x05;
    pub const H2C_DATA: u8 = 0x06;
    pub const C2H_DATA: u8 = 0x07;
    pub const R2T: u8 = 0x09;
    /// C2HData flag: the command completed successfully, no CapsuleResp
    /// follows (§3.6.2.8).
    pub const C2H_SUCCESS: u8 = 0x08;
}

/// One TCP segment as the trace needs it.
pub struct Segment<'a> {
    pub key: frame::FlowKey,
    pub seq: u32,
    pub syn: bool,
    pub payload: &'a [u8],
}

/// The IPv4/TCP segment in `f`, if it is one (never panics on bad bytes).
pub fn segment(f: &[u8]) -> Option<Segment<'_>> {
    let l3 = frame::ipv4_offset(f).ok()?;
    let ip = Ipv4Packet::new_checked(&f[l3..]).ok()?;
    if ip.next_header() != IpProtocol::Tcp || frame::is_fragment(&ip) {
        return None;
    }
    let ip_hdr = usize::from(ip.header_len());
    let total = usize::from(ip.total_len()).min(f.len() - l3);
    let l4 = f.get(l3 + ip_hdr..l3 + total)?;
    let tcp = TcpPacket::new_checked(l4).ok()?;
    let off = usize::from(tcp.header_len());
    let key = frame::FlowKey { src_addr: ip.src_addr(), dst_addr: ip.dst_addr(), src_port: tcp.src_port(), dst_port: tcp.dst_port() };
    Some(Segment { key, seq: tcp.seq_number().0 as u32, syn: tcp.syn(), payload: l4.get(off..)? })
}

/// Where a direction's PDU parsing stands.
#[derive(Default, Debug)]
pub struct Stream {
    /// Next stream byte expected (TCP sequence number); `None` until a SYN
    /// or after a gap.
    next: Option<u32>,
    /// Header bytes of the current PDU collected so far.
    hdr: Vec<u8>,
    /// Payload bytes of the current PDU still to skip.
    skip: u32,
}

impl Stream {
    /// Feeds one segment; returns the PDU headers it completes.
    pub fn feed(&mut self, seg: &Segment<'_>) -> Vec<Header> {
        let mut out = Vec::new();
        if seg.syn {
            // A new connection: its data starts at ISN + 1.
            *self = Stream { next: Some(seg.seq.wrapping_add(1)), hdr: Vec::new(), skip: 0 };
            return out;
        }
        let Some(next) = self.next else { return out };
        if seg.payload.is_empty() {
            return out;
        }
        // Serial-number arithmetic (RFC 1982): how far this segment starts
        // before the next expected byte.
        let behind = next.wrapping_sub(seg.seq) as i32;
        if behind < 0 {
            self.next = None; // a gap: stop until the next SYN
            return out;
        }
        let Some(mut d) = seg.payload.get(behind as usize..) else { return out };
        self.next = Some(next.wrapping_add(d.len() as u32));
        while !d.is_empty() {
            if self.skip > 0 {
                let n = (self.skip as usize).min(d.len());
                self.skip -= n as u32;
                d = &d[n..];
                continue;
            }
            let want = if self.hdr.len() < 8 { 8 } else { usize::from(self.hdr[2]) };
            let n = (want - self.hdr.len()).min(d.len());
            self.hdr.extend_from_slice(&d[..n]);
            d = &d[n..];
            if self.hdr.len() == 8 {
                let (hlen, plen) = (usize::from(self.hdr[2]), u32::from_le_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]]));
                if !(8..=MAX_HLEN).contains(&hlen) || (plen as usize) < hlen {
                    self.next = None; // not NVMe/TCP (or malformed): stop
                    return out;
                }
            }
            if self.hdr.len() >= 8 && self.hdr.len() == usize::from(self.hdr[2]) {
                let plen = u32::from_le_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]]);
                self.skip = plen - self.hdr.len() as u32;
                out.push(std::mem::take(&mut self.hdr));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::testing::{flow, tcp_frame};

    fn pdu(ty: u8, hlen: u8, plen: u32, tag: u8) -> Vec<u8> {
        let mut p = vec![ty, 0, hlen, 0];
        p.extend_from_slice(&plen.to_le_bytes());
        p.resize(plen as usize, tag);
        p
    }

    fn feed(s: &mut Stream, seq: u32, syn: bool, payload: &[u8]) -> Vec<Header> {
        let f = tcp_frame(flow(), seq, 1, false, payload);
        let mut seg = segment(&f).unwrap();
        seg.syn = syn;
        s.feed(&seg)
    }

    #[test]
    fn headers_across_segments_retransmits_and_gaps() {
        let mut s = Stream::default();
        assert!(feed(&mut s, 100, false, &pdu(4, 72, 72, 1)).is_empty(), "no SYN seen yet");
        feed(&mut s, 99, true, &[]);
        // Two PDUs: a capsule with 100 bytes of in-capsule data, then a
        // response, cut at awkward places.
        let mut bytes = pdu(4, 72, 172, 7);
        bytes.extend(pdu(5, 24, 24, 9));
        let (a, b) = bytes.split_at(5);
        let (b, c) = b.split_at(100);
        assert!(feed(&mut s, 100, false, a).is_empty());
        let h = feed(&mut s, 105, false, b);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0][0], h[0].len(), h[0][71]), (4, 72, 7));
        // A retransmission of old bytes plus new ones: only the new count.
        let mut re = b[90..].to_vec();
        re.extend_from_slice(c);
        let h = feed(&mut s, 195, false, &re);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0][0], h[0].len()), (5, 24));
        // A gap stops the stream until the next SYN.
        assert!(feed(&mut s, 10_000, false, &pdu(5, 24, 24, 0)).is_empty());
        assert!(feed(&mut s, 100 + bytes.len() as u32, false, &pdu(5, 24, 24, 0)).is_empty());
        feed(&mut s, 5000, true, &[]);
        assert_eq!(feed(&mut s, 5001, false, &pdu(7, 24, 4120, 0)).len(), 1);
    }

    #[test]
    fn malformed_headers_stop_the_stream() {
        for (hlen, plen) in [(4u8, 24u32), (200, 300), (24, 10)] {
            let mut s = Stream::default();
            feed(&mut s, 0, true, &[]);
            let mut p = vec![5, 0, hlen, 0];
            p.extend_from_slice(&plen.to_le_bytes());
            p.resize(64, 0);
            assert!(feed(&mut s, 1, false, &p).is_empty(), "hlen {hlen} plen {plen}");
            assert!(feed(&mut s, 65, false, &pdu(5, 24, 24, 0)).is_empty());
        }
        assert!(segment(&[0u8; 10]).is_none());
    }

    #[test]
    fn random_bytes_never_panic() {
        use crate::net::frame::testing::pseudo_random;
        let mut s = Stream::default();
        feed(&mut s, 0, true, &[]);
        let mut seq = 1u32;
        for i in 0..2000u64 {
            let p = pseudo_random(i, (i % 300) as usize);
            feed(&mut s, seq, i % 97 == 0, &p);
            seq = seq.wrapping_add(p.len() as u32);
            // Raw garbage as a frame, and truncations of a good one.
            let _ = segment(&p);
            let f = tcp_frame(flow(), seq, 1, false, &p);
            for cut in [0, 14, 20, 33, 34, 53, 54] {
                if let Some(seg) = segment(&f[..cut.min(f.len())]) {
                    s.feed(&seg);
                }
            }
        }
    }
}
