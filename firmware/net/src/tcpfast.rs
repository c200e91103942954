//! The receive fast path's first test: whether an IPv4 packet is a TCP
//! segment the per-core stacks may hand straight to a socket
//! (`smoltcp::socket::tcp::Socket::fast_rx`) instead of running it
//! through the interface. Only the plain header shapes qualify; anything
//! else (`None`) goes the interface's way, which handles every case.
//!
//! Checksums are not looked at: the NIC verified them (receive checksum
//! offload) and the stacks drop frames it flagged bad, as the interface
//! path does with checksum checking off.
//!
//! The transmit side: [`write_headers`] writes the Ethernet, IPv4 and TCP
//! headers of a segment the socket's transmit fast path
//! (`Socket::fast_tx`) sends, byte for byte as the interface would
//! (checksums zero: the NIC fills them, transmit checksum offload).

use crate::{Ipv4, Mac};
use smoltcp::socket::tcp::{FastSegment, FastTxSegment};
use smoltcp::wire::{IpAddress, TcpSeqNumber};

/// IPv4 header without options (RFC 791 §3.1: IHL 5).
const IP_HEADER: usize = 20;
/// TCP header without options (RFC 9293 §3.1: Data Offset 5).
const TCP_HEADER: usize = 20;
/// IANA protocol number of TCP.
const PROTO_TCP: u8 = 6;
/// TCP flag bits (RFC 9293 §3.1, RFC 3168 §6.1 for CWR and ECE; the low
/// bit of byte 12 is the historic NS).
const TCP_PSH: u16 = 0x008;
const TCP_ACK: u16 = 0x010;
const TCP_FLAGS: u16 = 0x1ff;

/// A fast-path candidate: source and destination address and the segment.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub src: Ipv4,
    pub dst: Ipv4,
    pub seg: FastSegment<'a>,
}

/// Reads `ip` (an IPv4 packet, possibly followed by Ethernet padding) as
/// a fast-path candidate: version 4 without IP options, not a fragment,
/// TCP, its total length within the buffer, neither address 0.0.0.0, a
/// TCP header without options, both ports non-zero and exactly ACK or
/// ACK|PSH set (no SYN, FIN, RST, URG, ECE, CWR). `None` for anything
/// else: the interface path takes those.
pub fn candidate(ip: &[u8]) -> Option<Candidate<'_>> {
    let h = ip.get(..IP_HEADER)?;
    if h[0] != 0x45 || h[9] != PROTO_TCP {
        return None;
    }
    // Flags and fragment offset: MF or any offset is a fragment (DF is fine).
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < IP_HEADER + TCP_HEADER || total > ip.len() {
        return None;
    }
    let src: Ipv4 = [h[12], h[13], h[14], h[15]];
    let dst: Ipv4 = [h[16], h[17], h[18], h[19]];
    if src == [0; 4] || dst == [0; 4] {
        return None;
    }
    let t = &ip[IP_HEADER..total];
    let src_port = u16::from_be_bytes([t[0], t[1]]);
    let dst_port = u16::from_be_bytes([t[2], t[3]]);
    let offset_flags = u16::from_be_bytes([t[12], t[13]]);
    if offset_flags >> 12 != (TCP_HEADER / 4) as u16 || src_port == 0 || dst_port == 0 {
        return None;
    }
    if offset_flags & TCP_FLAGS & !TCP_PSH != TCP_ACK {
        return None;
    }
    Some(Candidate {
        src,
        dst,
        seg: FastSegment {
            src_port,
            dst_port,
            seq_number: TcpSeqNumber(i32::from_be_bytes([t[4], t[5], t[6], t[7]])),
            ack_number: TcpSeqNumber(i32::from_be_bytes([t[8], t[9], t[10], t[11]])),
            window_len: u16::from_be_bytes([t[14], t[15]]),
            payload: &t[TCP_HEADER..],
        },
    })
}

/// Bytes of the Ethernet, IPv4 and TCP headers [`write_headers`] writes.
pub const HEADERS: usize = crate::eth::HEADER + IP_HEADER + TCP_HEADER;

/// Writes the Ethernet II header (`dst` <- `src`, IPv4), the IPv4 header
/// (RFC 791 §3.1: no options, identification 0, DF, checksum 0) and the
/// TCP header (RFC 9293 §3.1: no options, ACK and PSH as asked, urgent
/// pointer and checksum 0) of `seg` into the first [`HEADERS`] bytes of
/// `frame`, as smoltcp's `Ipv4Repr::emit` and `TcpRepr::emit` do with
/// checksum offload. The payload follows them; the caller copies it.
/// `None` if `frame` is too short or the segment is not IPv4.
pub fn write_headers(frame: &mut [u8], dst: Mac, src: Mac, seg: &FastTxSegment<'_>) -> Option<()> {
    #[allow(irrefutable_let_patterns)] // with IPv6 compiled out
    let (IpAddress::Ipv4(s), IpAddress::Ipv4(d)) = (seg.src, seg.dst) else {
        return None;
    };
    let ip_len = u16::try_from(IP_HEADER + TCP_HEADER + seg.payload.len()).ok()?;
    let h = frame.get_mut(..HEADERS)?;
    crate::eth::write_header(h, dst, src, crate::eth::ETHERTYPE_IPV4);
    let ip = &mut h[crate::eth::HEADER..];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].fill(0);
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    ip[8] = seg.hop_limit;
    ip[9] = PROTO_TCP;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&s.octets());
    ip[16..20].copy_from_slice(&d.octets());
    let t = &mut ip[IP_HEADER..];
    t[0..2].copy_from_slice(&seg.src_port.to_be_bytes());
    t[2..4].copy_from_slice(&seg.dst_port.to_be_bytes());
    t[4..8].copy_from_slice(&seg.seq_number.0.to_be_bytes());
    t[8..12].copy_from_slice(&seg.ack_number.0.to_be_bytes());
    let flags = TCP_ACK | if seg.psh { TCP_PSH } else { 0 };
    t[12..14].copy_from_slice(&(((TCP_HEADER as u16 / 4) << 12) | flags).to_be_bytes());
    t[14..16].copy_from_slice(&seg.window_len.to_be_bytes());
    t[16..20].fill(0);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte IPv4 header and a 20-byte TCP header with `flags`,
    /// `payload` after them, then zeros (Ethernet padding).
    fn packet(flags: u16, payload: &[u8]) -> [u8; 128] {
        let mut p = [0u8; 128];
        let total = (IP_HEADER + TCP_HEADER + payload.len()) as u16;
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = PROTO_TCP;
        p[12..16].copy_from_slice(&[10, 0, 1, 10]);
        p[16..20].copy_from_slice(&[10, 0, 1, 1]);
        let t = &mut p[IP_HEADER..];
        t[0..2].copy_from_slice(&4420u16.to_be_bytes());
        t[2..4].copy_from_slice(&50000u16.to_be_bytes());
        t[4..8].copy_from_slice(&0x8000_0001u32.to_be_bytes());
        t[8..12].copy_from_slice(&7u32.to_be_bytes());
        t[12..14].copy_from_slice(&(0x5000 | flags).to_be_bytes());
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        t[TCP_HEADER..TCP_HEADER + payload.len()].copy_from_slice(payload);
        p
    }

    fn len(payload: usize, pad: usize) -> usize {
        IP_HEADER + TCP_HEADER + payload + pad
    }

    #[test]
    fn plain_data_segment_is_a_candidate() {
        let p = packet(TCP_ACK | TCP_PSH, b"hello");
        let c = candidate(&p[..len(5, 0)]).unwrap();
        assert_eq!((c.src, c.dst), ([10, 0, 1, 10], [10, 0, 1, 1]));
        assert_eq!((c.seg.src_port, c.seg.dst_port), (4420, 50000));
        assert_eq!(c.seg.seq_number, TcpSeqNumber(0x8000_0001u32 as i32));
        assert_eq!(c.seg.ack_number, TcpSeqNumber(7));
        assert_eq!(c.seg.window_len, 512);
        assert_eq!(c.seg.payload, b"hello");
    }

    #[test]
    fn padding_after_the_packet_is_not_payload() {
        // A pure ACK is 40 bytes; Ethernet pads it to 46 bytes of payload.
        let p = packet(TCP_ACK, b"");
        let c = candidate(&p[..len(0, 6)]).unwrap();
        assert!(c.seg.payload.is_empty());
    }

    #[test]
    fn control_flags_and_missing_ack_fall_back() {
        for flags in [0x001 /* FIN */, 0x002 /* SYN */, 0x004 /* RST */, 0x020 /* URG */, 0x040 /* ECE */, 0x080 /* CWR */, 0x100 /* NS */] {
            let p = packet(TCP_ACK | flags, b"x");
            assert!(candidate(&p[..len(1, 0)]).is_none(), "flags {flags:#x}");
        }
        let p = packet(TCP_PSH, b"x");
        assert!(candidate(&p[..len(1, 0)]).is_none(), "no ACK");
    }

    #[test]
    fn options_fragments_and_bad_lengths_fall_back() {
        let base = packet(TCP_ACK, b"abcd");
        let n = len(4, 0);
        // TCP options (data offset 6).
        let mut p = base;
        p[IP_HEADER + 12] = 0x60;
        assert!(candidate(&p[..n]).is_none());
        // IP options (IHL 6).
        let mut p = base;
        p[0] = 0x46;
        assert!(candidate(&p[..n]).is_none());
        // More fragments; a fragment offset.
        let mut p = base;
        p[6] = 0x20;
        assert!(candidate(&p[..n]).is_none());
        let mut p = base;
        p[7] = 0x01;
        assert!(candidate(&p[..n]).is_none());
        // Not TCP.
        let mut p = base;
        p[9] = 17;
        assert!(candidate(&p[..n]).is_none());
        // Total length past the buffer, or shorter than the headers.
        assert!(candidate(&base[..n - 1]).is_none());
        let mut p = base;
        p[2..4].copy_from_slice(&39u16.to_be_bytes());
        assert!(candidate(&p[..n]).is_none());
        // Truncated headers.
        assert!(candidate(&base[..19]).is_none());
        // A zero port or address.
        let mut p = base;
        p[IP_HEADER..IP_HEADER + 2].fill(0);
        assert!(candidate(&p[..n]).is_none());
        let mut p = base;
        p[12..16].fill(0);
        assert!(candidate(&p[..n]).is_none());
    }

    /// The headers are byte for byte what smoltcp's emitters write for the
    /// same segment with checksum offload (the interface's path).
    #[test]
    fn headers_match_smoltcp() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{Ipv4Packet, Ipv4Repr, IpProtocol, TcpControl, TcpPacket, TcpRepr};
        let payload = [0xa5u8; 100];
        for (psh, data) in [(true, &payload[..]), (false, &payload[..]), (false, &[][..])] {
            let seg = FastTxSegment {
                src: IpAddress::v4(10, 0, 1, 1),
                dst: IpAddress::v4(10, 0, 1, 10),
                src_port: 50000,
                dst_port: 4420,
                seq_number: TcpSeqNumber(-5),
                ack_number: TcpSeqNumber(0x1234_5678),
                window_len: 4097,
                psh,
                hop_limit: 64,
                payload: data,
            };
            let mut ours = [0u8; 256];
            write_headers(&mut ours, [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], &seg).unwrap();
            ours[HEADERS..HEADERS + data.len()].copy_from_slice(data);

            let mut theirs = [0u8; 256];
            crate::eth::write_header(&mut theirs, [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], crate::eth::ETHERTYPE_IPV4);
            let tcp = TcpRepr {
                src_port: 50000,
                dst_port: 4420,
                control: if psh { TcpControl::Psh } else { TcpControl::None },
                seq_number: seg.seq_number,
                ack_number: Some(seg.ack_number),
                window_len: 4097,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None, None, None],
                timestamp: None,
                payload: data,
            };
            let ip = Ipv4Repr {
                src_addr: smoltcp::wire::Ipv4Address::new(10, 0, 1, 1),
                dst_addr: smoltcp::wire::Ipv4Address::new(10, 0, 1, 10),
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            };
            let caps = ChecksumCapabilities::ignored();
            let at = crate::eth::HEADER;
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut theirs[at..at + IP_HEADER]), &caps);
            let mut tp = TcpPacket::new_unchecked(&mut theirs[at + IP_HEADER..at + IP_HEADER + tcp.buffer_len()]);
            tcp.emit(&mut tp, &seg.src, &seg.dst, &caps);
            assert_eq!(&ours[..HEADERS + data.len()], &theirs[..HEADERS + data.len()], "psh {psh}, {} bytes", data.len());
            // And the receive side reads it back.
            let c = candidate(&ours[crate::eth::HEADER..HEADERS + data.len()]).unwrap();
            assert_eq!((c.seg.seq_number, c.seg.ack_number, c.seg.payload), (seg.seq_number, seg.ack_number, data));
        }
        assert!(write_headers(&mut [0u8; HEADERS - 1], [0; 6], [0; 6], &FastTxSegment {
            src: IpAddress::v4(10, 0, 1, 1),
            dst: IpAddress::v4(10, 0, 1, 10),
            src_port: 1,
            dst_port: 2,
            seq_number: TcpSeqNumber(0),
            ack_number: TcpSeqNumber(0),
            window_len: 0,
            psh: false,
            hop_limit: 64,
            payload: &[],
        })
        .is_none());
    }
}

/// The fast paths against smoltcp's own: two interfaces joined by frame
/// queues, a real connection between them, and segments handed over by
/// hand to either path.
#[cfg(test)]
mod with_smoltcp {
    extern crate std;
    use super::*;
    use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
    use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
    use smoltcp::socket::tcp::{self, FastRx, FastTx};
    use smoltcp::time::Instant;
    use smoltcp::wire::{HardwareAddress, IpCidr};
    use std::boxed::Box;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// IP-medium device: received packets come from `rx`, sent ones go to `tx`.
    #[derive(Default)]
    struct Queues {
        rx: VecDeque<Vec<u8>>,
        tx: VecDeque<Vec<u8>>,
    }

    struct Rx(Vec<u8>);
    struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

    impl phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut b = std::vec![0u8; len];
            let r = f(&mut b);
            self.0.push_back(b);
            r
        }
    }

    impl Device for Queues {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx<'a>;
        fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_>)> {
            let p = self.rx.pop_front()?;
            Some((Rx(p), Tx(&mut self.tx)))
        }
        fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
            Some(Tx(&mut self.tx))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ip;
            c.max_transmission_unit = 1500;
            // As on the card: the NIC does the checksums.
            c.checksum.ipv4 = Checksum::None;
            c.checksum.tcp = Checksum::None;
            c
        }
    }

    struct Host {
        dev: Queues,
        iface: Interface,
        sockets: SocketSet<'static>,
        h: SocketHandle,
    }

    impl Host {
        fn new(ip: [u8; 4]) -> Host {
            let mut dev = Queues::default();
            let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, Instant::ZERO);
            iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24)).unwrap());
            let storage: &'static mut [SocketStorage<'static>] = Box::leak(Box::new([SocketStorage::EMPTY]));
            let mut sockets = SocketSet::new(storage);
            let buf = || tcp::SocketBuffer::new(Box::leak(std::vec![0u8; 8192].into_boxed_slice()) as &mut [u8]);
            let mut s = tcp::Socket::new(buf(), buf());
            s.set_nagle_enabled(false);
            s.set_ack_delay(None);
            let h = sockets.add(s);
            Host { dev, iface, sockets, h }
        }

        fn sock(&mut self) -> &mut tcp::Socket<'static> {
            self.sockets.get_mut::<tcp::Socket>(self.h)
        }

        fn poll(&mut self, t: Instant) {
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
        }

        /// The receive fast path on one packet, as the card's stack runs it.
        fn fast_rx(&mut self, t: Instant, ip: &[u8]) -> Option<FastRx> {
            let c = candidate(ip)?;
            let (s, d) = (IpAddress::v4(c.src[0], c.src[1], c.src[2], c.src[3]), IpAddress::v4(c.dst[0], c.dst[1], c.dst[2], c.dst[3]));
            let h = self.h;
            Some(self.sockets.get_mut::<tcp::Socket>(h).fast_rx(t, s, d, &c.seg))
        }

        /// The transmit fast path once, the frame written with
        /// `write_headers` and queued without its Ethernet header.
        fn fast_tx(&mut self, t: Instant) -> FastTx {
            let Host { dev, iface, sockets, h, .. } = self;
            sockets.get_mut::<tcp::Socket>(*h).fast_tx(iface.context(), t, |seg| {
                let mut f = std::vec![0u8; HEADERS + seg.payload.len()];
                write_headers(&mut f, [0; 6], [0; 6], seg).unwrap();
                f[HEADERS..].copy_from_slice(seg.payload);
                dev.tx.push_back(f[crate::eth::HEADER..].to_vec());
                true
            })
        }
    }

    /// Moves what each side sent to the other, and polls both, until quiet.
    fn pump(a: &mut Host, b: &mut Host, t: Instant) {
        for _ in 0..20 {
            a.poll(t);
            b.poll(t);
            if a.dev.tx.is_empty() && b.dev.tx.is_empty() {
                return;
            }
            b.dev.rx.extend(a.dev.tx.drain(..));
            a.dev.rx.extend(b.dev.tx.drain(..));
        }
        panic!("the two stacks never went quiet");
    }

    fn connected() -> (Host, Host) {
        let (mut a, mut b) = (Host::new([10, 0, 0, 1]), Host::new([10, 0, 0, 2]));
        b.sock().listen(4420).unwrap();
        let cx = a.iface.context();
        a.sockets.get_mut::<tcp::Socket>(a.h).connect(cx, (IpAddress::v4(10, 0, 0, 2), 4420), 50000).unwrap();
        pump(&mut a, &mut b, Instant::ZERO);
        assert_eq!(a.sock().state(), tcp::State::Established);
        assert_eq!(b.sock().state(), tcp::State::Established);
        (a, b)
    }

    fn recv_all(h: &mut Host) -> Vec<u8> {
        let mut v = std::vec![0u8; 8192];
        let n = h.sock().recv_slice(&mut v).unwrap();
        v.truncate(n);
        v
    }

    #[test]
    fn in_sequence_data_takes_the_fast_path_the_rest_falls_back() {
        let (mut a, mut b) = connected();
        let t = Instant::from_millis(1);
        // Two segments from b; a takes the first by the fast path.
        b.sock().send_slice(b"first").unwrap();
        b.poll(t);
        b.sock().send_slice(b"second").unwrap();
        b.poll(t);
        let (p1, p2) = (b.dev.tx.pop_front().unwrap(), b.dev.tx.pop_front().unwrap());
        // Out of order: the second before the first falls back untouched.
        assert_eq!(a.fast_rx(t, &p2), Some(FastRx::Fallback));
        assert_eq!(a.sock().recv_queue(), 0);
        assert_eq!(a.fast_rx(t, &p1), Some(FastRx::Taken));
        assert_eq!(a.fast_rx(t, &p2), Some(FastRx::Taken));
        assert_eq!(recv_all(&mut a), b"firstsecond");
        // An old duplicate falls back; smoltcp's path drops it and ACKs.
        assert_eq!(a.fast_rx(t, &p1), Some(FastRx::Fallback));
        a.dev.rx.push_back(p1);
        a.poll(t);
        assert_eq!(a.sock().recv_queue(), 0);
        // A FIN is never a candidate.
        b.sock().close();
        b.poll(t);
        let fin = b.dev.tx.pop_back().unwrap();
        assert!(candidate(&fin).is_none());
    }

    #[test]
    fn fast_tx_segments_are_read_by_smoltcp() {
        let (mut a, mut b) = connected();
        let t = Instant::from_millis(1);
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        a.sock().send_slice(&data).unwrap();
        let mut sent = 0;
        while a.fast_tx(t) == FastTx::Sent {
            sent += 1;
        }
        assert_eq!(sent, 3, "4 KiB in 1460-byte segments");
        b.dev.rx.extend(a.dev.tx.drain(..));
        b.poll(t);
        assert_eq!(recv_all(&mut b), data);
        // b's ACK goes back through a's fast receive path and frees the buffer.
        let ack = b.dev.tx.pop_front().unwrap();
        assert_eq!(a.fast_rx(t, &ack), Some(FastRx::Taken));
        assert_eq!(a.sock().send_queue(), 0);
        assert_eq!(a.fast_tx(t), FastTx::Idle);
    }
}
