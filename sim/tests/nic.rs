//! The NIC model driven through its registers (`dpu_hal::regs::nic`), the
//! way the firmware driver does: queue setup, RX descriptor write-back,
//! RSS steering against the Toeplitz hash, checksum validation, MAC
//! filtering, drops without buffers, LRO merging; TX with checksum
//! insertion and TSO, checked on the wire through a packet capture.

mod common;

use common::{data_addr, machine_on, Prog};
use dpu_hal::regs::nic as r;
use dpu_sim::Machine;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

const NIC: u64 = 0x1700_0000;
const PORT_MAC: [u8; 6] = [0x02, 0xd9, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 0x7a, 0, 0, 1, 1];
/// Queue ring and buffer memory.
fn rings(q: usize) -> u64 {
    data_addr() + 0x10_0000 * q as u64
}

fn wr(m: &mut Machine, off: u64, size: u8, v: u64) {
    assert!(m.bus.mmio_write(0, m.now, NIC + off, size, v), "register {off:#x} refused");
}

fn rd(m: &mut Machine, off: u64, size: u8) -> u64 {
    m.bus.mmio_read(0, m.now, NIC + off, size).expect("register readable")
}

fn qreg(q: usize, off: u64) -> u64 {
    r::QUEUE_BASE + q as u64 * r::QUEUE + off
}

/// A machine whose only hart sleeps, with port 0 enabled and queues 0..4
/// running (16 RX descriptors with 2 KiB buffers each).
fn nic_machine(control: u32) -> Machine {
    let mut m = machine_on(&Prog::new().halt(), 1, 1);
    m.run_slice(10_000);
    wr(&mut m, r::CONTROL, 4, u64::from(control));
    for q in 0..4 {
        let base = rings(q);
        wr(&mut m, qreg(q, r::RX_BASE), 8, base);
        wr(&mut m, qreg(q, r::RX_SIZE), 4, 16);
        wr(&mut m, qreg(q, r::TX_BASE), 8, base + 0x1000);
        wr(&mut m, qreg(q, r::TX_SIZE), 4, 16);
        wr(&mut m, qreg(q, r::Q_CONTROL), 4, 1);
        assert_eq!(rd(&mut m, qreg(q, r::Q_STATUS), 4), 1);
        for i in 0..16u64 {
            let d = base + 16 * i;
            let buf = base + 0x2000 + 0x800 * i;
            m.bus.mem.write_bytes(d, &buf.to_le_bytes()).unwrap();
            m.bus.mem.write_bytes(d + 8, &0x800u64.to_le_bytes()).unwrap();
        }
        wr(&mut m, qreg(q, r::RX_TAIL), 4, 16);
    }
    m
}

/// An Ethernet/IPv4/TCP frame with valid checksums.
fn tcp_frame(src_port: u16, dst_port: u16, seq: u32, payload: &[u8], flags: TcpControl) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port,
        dst_port,
        control: flags,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(1)),
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: Ipv4Address::new(10, 0, 0, 10),
        dst_addr: Ipv4Address::new(10, 0, 0, 1),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr { src_addr: EthernetAddress(PEER_MAC), dst_addr: EthernetAddress(PORT_MAC), ethertype: EthernetProtocol::Ipv4 };
    let mut buf = vec![0u8; 14 + ip.buffer_len() + tcp.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut p, &caps);
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    tcp.emit(&mut t, &ip.src_addr.into(), &ip.dst_addr.into(), &caps);
    buf
}

/// Delivers a frame to port 0 and lets the NIC finish with it.
fn receive(m: &mut Machine, f: Vec<u8>) {
    let now = m.now;
    m.bus.nic_receive(0, f, now);
    m.run_slice(20_000);
}

/// (length, flags, hash, frame bytes) of RX descriptor `i` of queue `q`.
fn rx_desc(m: &mut Machine, q: usize, i: u64) -> (u16, u16, u32, Vec<u8>) {
    let d = rings(q) + 16 * i;
    let mut w = [0u8; 16];
    m.bus.mem.read_bytes(d, &mut w).unwrap();
    let len = u16::from_le_bytes([w[8], w[9]]);
    let flags = u16::from_le_bytes([w[10], w[11]]);
    let hash = u32::from_le_bytes([w[12], w[13], w[14], w[15]]);
    let addr = u64::from_le_bytes(w[..8].try_into().unwrap());
    let mut data = vec![0u8; usize::from(len).min(0x800)];
    m.bus.mem.read_bytes(addr, &mut data).unwrap();
    (len, flags, hash, data)
}

#[test]
fn rss_steers_by_toeplitz_and_writes_back() {
    let mut m = nic_machine(r::CTL_RX_ENABLE | r::CTL_RX_CSUM | r::CTL_RSS);
    // Indirection: entry i -> queue i % 4.
    let table: [u8; 128] = std::array::from_fn(|i| (i % 4) as u8);
    for (i, w) in table.chunks(4).enumerate() {
        wr(&mut m, r::RSS_TABLE + 4 * i as u64, 4, u64::from(u32::from_le_bytes(w.try_into().unwrap())));
    }
    let mut seen = [0u64; 4];
    for port in 40000..40016u16 {
        let f = tcp_frame(4420, port, 1, b"hello", TcpControl::Psh);
        let (hash, _) = dpu_sim::net::rss::hash_frame(&dpu_sim::net::nic::DEFAULT_RSS_KEY, &f).unwrap();
        let q = usize::from(table[(hash & 127) as usize]);
        receive(&mut m, f.clone());
        let (len, flags, h, data) = rx_desc(&mut m, q, seen[q]);
        seen[q] += 1;
        assert_eq!((usize::from(len), h, &data[..]), (f.len(), hash, &f[..]), "frame to port {port} on queue {q}");
        assert_eq!(flags & (r::RX_DD | r::RX_CSUM_OK | r::RX_RSS_TCP), r::RX_DD | r::RX_CSUM_OK | r::RX_RSS_TCP);
    }
    assert!(seen.iter().all(|&n| n > 0), "16 flows spread over the 4 queues: {seen:?}");
    assert_eq!(rd(&mut m, r::RX_FRAMES, 8), 16);
}

#[test]
fn filters_checksums_and_missing_buffers() {
    let mut m = nic_machine(r::CTL_RX_ENABLE | r::CTL_RX_CSUM);
    // Not our MAC: filtered. Broadcast without CTL_BROADCAST: filtered.
    let mut other = tcp_frame(4420, 5000, 1, b"x", TcpControl::None);
    other[0..6].copy_from_slice(&[0x02, 1, 2, 3, 4, 5]);
    receive(&mut m, other);
    let mut bcast = tcp_frame(4420, 5000, 1, b"x", TcpControl::None);
    bcast[0..6].copy_from_slice(&[0xff; 6]);
    receive(&mut m, bcast.clone());
    assert_eq!(rd(&mut m, r::RX_FILTERED, 8), 2);
    // A corrupted TCP checksum is delivered, flagged bad, and counted.
    let mut bad = tcp_frame(4420, 5000, 1, b"payload", TcpControl::None);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    receive(&mut m, bad);
    let (_, flags, _, _) = rx_desc(&mut m, 0, 0);
    assert_eq!(flags & (r::RX_CSUM_BAD | r::RX_CSUM_OK), r::RX_CSUM_BAD);
    assert_eq!(rd(&mut m, r::RX_CSUM_ERRORS, 8), 1);
    // Larger than the MTU: dropped as oversize.
    receive(&mut m, tcp_frame(4420, 5000, 1, &[0u8; 1600], TcpControl::None));
    assert_eq!(rd(&mut m, r::RX_OVERSIZE, 8), 1);
    // The 15 remaining buffers fill up; the 16th frame has none.
    for i in 0..16 {
        receive(&mut m, tcp_frame(4420, 5000, 100 + i, b"y", TcpControl::None));
    }
    assert_eq!(rd(&mut m, r::RX_NO_BUFFER, 8), 1);
    assert_eq!(rd(&mut m, qreg(0, r::Q_RX_NO_BUFFER), 8), 1);
    assert_eq!(rd(&mut m, qreg(0, r::RX_HEAD), 4), 16);
}

#[test]
fn lro_merges_in_order_segments() {
    let mut m = nic_machine(r::CTL_RX_ENABLE | r::CTL_RX_CSUM | r::CTL_LRO);
    let seg: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
    for k in 0..3u32 {
        let flags = if k == 2 { TcpControl::Psh } else { TcpControl::None };
        let now = m.now;
        m.bus.nic_receive(0, tcp_frame(4420, 6000, 1 + 500 * k, &seg, flags), now);
    }
    m.run_slice(20_000);
    let (len, flags, _, data) = rx_desc(&mut m, 0, 0);
    assert_eq!(usize::from(len), 14 + 20 + 20 + 1500, "three 500-byte segments in one frame");
    assert_eq!(flags & r::RX_DD, r::RX_DD);
    assert_eq!(&data[54..554], &seg[..]);
    assert_eq!(&data[1054..1554], &seg[..]);
    // The merged frame carries valid checksums.
    assert!(dpu_sim::net::checksum::ipv4_header_ok(&data) && dpu_sim::net::checksum::l4_checksum_ok(&data) == Some(true));
    assert_eq!(rd(&mut m, qreg(0, r::RX_HEAD), 4), 1, "one descriptor used");
}

#[test]
fn tx_inserts_checksums_and_segments() {
    let mut m = nic_machine(r::CTL_RX_ENABLE | r::CTL_TX_ENABLE);
    let cap = std::env::temp_dir().join(format!("dpusim-nic-test-{}.pcap", std::process::id()));
    let files = m.enable_pcap(&cap).unwrap();
    let base = rings(1);
    // Frame 1: 300 bytes of payload, checksums zeroed, CSUM offload.
    let mut f = tcp_frame(5000, 4420, 7, &[0x5a; 300], TcpControl::Psh);
    f[24] = 0;
    f[25] = 0;
    f[50] = 0;
    f[51] = 0;
    // Frame 2: 4000 bytes with TSO at MSS 1460.
    let big = tcp_frame(5000, 4420, 1000, &[0xa5; 4000], TcpControl::Psh);
    let b1 = base + 0x4000;
    let b2 = base + 0x8000;
    m.bus.mem.write_bytes(b1, &f).unwrap();
    m.bus.mem.write_bytes(b2, &big).unwrap();
    let desc = |addr: u64, len: usize, flags: u16, mss: u16| {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..10].copy_from_slice(&(len as u16).to_le_bytes());
        d[10..12].copy_from_slice(&flags.to_le_bytes());
        d[12..14].copy_from_slice(&mss.to_le_bytes());
        d
    };
    m.bus.mem.write_bytes(base + 0x1000, &desc(b1, f.len(), r::TX_CSUM_IP | r::TX_CSUM_L4, 0)).unwrap();
    m.bus.mem.write_bytes(base + 0x1010, &desc(b2, big.len(), r::TX_TSO, 1460)).unwrap();
    // A bad descriptor: length 0.
    m.bus.mem.write_bytes(base + 0x1020, &desc(b2, 0, 0, 0)).unwrap();
    wr(&mut m, qreg(1, r::TX_TAIL), 4, 3);
    m.run_slice(100_000);
    // Write-back: done bits, the bad one with an error.
    let flags = |m: &mut Machine, i: u64| {
        let mut b = [0u8; 2];
        m.bus.mem.read_bytes(base + 0x1000 + 16 * i + 10, &mut b).unwrap();
        u16::from_le_bytes(b)
    };
    assert_eq!(flags(&mut m, 0) & (r::TX_DD | r::TX_ERR), r::TX_DD);
    assert_eq!(flags(&mut m, 1) & (r::TX_DD | r::TX_ERR), r::TX_DD);
    assert_eq!(flags(&mut m, 2) & (r::TX_DD | r::TX_ERR), r::TX_DD | r::TX_ERR);
    assert_eq!(rd(&mut m, r::TX_FRAMES, 8), 1 + 3, "one frame plus three TSO segments");
    assert_eq!(rd(&mut m, r::TX_ERRORS, 8), 1);
    drop(m);
    let mut reader = pcap_file::pcap::PcapReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet() {
        frames.push(p.unwrap().data.into_owned());
    }
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    assert_eq!(frames.len(), 4);
    for fr in &frames {
        assert!(dpu_sim::net::checksum::ipv4_header_ok(fr) && dpu_sim::net::checksum::l4_checksum_ok(fr) == Some(true), "valid checksums on the wire");
    }
    let payloads: Vec<usize> = frames[1..].iter().map(|fr| fr.len() - 54).collect();
    assert_eq!(payloads, vec![1460, 1460, 1080]);
}

#[test]
fn link_down_drops_and_notifies() {
    let mut m = nic_machine(r::CTL_RX_ENABLE);
    wr(&mut m, r::LINK_NOTIFY, 4, u64::from(r::NOTIFY_ENABLE));
    assert_eq!(rd(&mut m, r::LINK, 4) & 1, 1);
    m.bus.set_port_link(0, false, m.now);
    assert_eq!(rd(&mut m, r::LINK, 4) & 1, 0);
    let mb = m.bus.mailbox.read(0, 8).unwrap();
    assert_ne!(mb & r::MAILBOX_LINK, 0, "hart 0 was told");
    receive(&mut m, tcp_frame(4420, 5000, 1, b"x", TcpControl::None));
    assert_eq!(rd(&mut m, r::RX_FRAMES, 8), 0);
    m.bus.set_port_link(0, true, m.now);
    receive(&mut m, tcp_frame(4420, 5000, 1, b"x", TcpControl::None));
    assert_eq!(rd(&mut m, r::RX_FRAMES, 8), 1);
}
