//! A manual check of the UDP datagram path to the guest (boots QEMU, so it
//! is ignored by default): `cargo test -p xtask --release -- --ignored
//! --nocapture frames_probe`. It joins the guest's segment as 10.0.0.1 and
//! exchanges ARP, ICMP echo and a TCP handshake with the target port,
//! printing every frame the guest sends.

use super::{GuestConfig, LinuxTarget};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const OUR_IP: [u8; 4] = [10, 0, 0, 1];

fn csum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for c in chunks {
        for pair in c.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ether(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend(OUR_MAC);
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

fn ipv4(dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend(OUR_IP);
    h.extend(dst);
    let c = csum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend(payload);
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// Receives frames until `want` accepts one (printing all of them).
fn recv_until(sock: &UdpSocket, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let f = &buf[..n];
        println!("guest -> us ({n} B from {from}): {}", hex(f));
        if want(f) {
            return f.to_vec();
        }
    }
    panic!("no {what} from the guest within 10 s");
}

#[test]
#[ignore = "boots a QEMU guest"]
fn frames_probe() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = GuestConfig::new(local, peer.local_addr().unwrap().port());
    cfg.pcap = Some(super::image::work_dir().unwrap().join("frames-probe.pcap"));
    let target = LinuxTarget::start(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let guest = (cfg.mac, cfg.ip.octets());
    let to = format!("127.0.0.1:{local}");

    // Nothing arrives unasked.
    let mut buf = [0u8; 2048];
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_until {
        if let Ok((n, _)) = peer.recv_from(&mut buf) {
            println!("unsolicited ({n} B): {}", hex(&buf[..n]));
        }
    }

    // ARP request (42 bytes, unpadded).
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend(OUR_MAC);
    arp.extend(OUR_IP);
    arp.extend([0; 6]);
    arp.extend(guest.1);
    let req = ether([0xff; 6], 0x0806, &arp);
    println!("us -> guest ARP request ({} B): {}", req.len(), hex(&req));
    peer.send_to(&req, &to).unwrap();
    let reply = recv_until(&peer, "ARP reply", |f| f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2]);
    assert_eq!(reply[0..6], OUR_MAC, "Ethernet destination");
    assert_eq!(reply[6..12], guest.0, "Ethernet source");
    assert_eq!(reply[22..28], guest.0, "ARP sender MAC");
    assert_eq!(reply[28..32], guest.1, "ARP sender IP");
    assert_eq!(reply[32..38], OUR_MAC, "ARP target MAC");
    assert_eq!(reply[38..42], OUR_IP, "ARP target IP");
    println!("ARP reply: {} B", reply.len());

    // ICMP echo request with 8 bytes of data: a 50-byte frame.
    let mut icmp = vec![8, 0, 0, 0, 0x42, 0x42, 0, 1];
    icmp.extend(b"dpusim!!");
    let c = csum(&[&icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let ping = ether(guest.0, 0x0800, &ipv4(guest.1, 1, &icmp));
    println!("us -> guest ICMP echo ({} B)", ping.len());
    peer.send_to(&ping, &to).unwrap();
    let pong = recv_until(&peer, "ICMP echo reply", |f| f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 0);
    assert_eq!(pong[42..50], *b"dpusim!!");
    println!("ICMP echo reply: {} B", pong.len());

    // TCP SYN to the NVMe/TCP port, then RST after the SYN-ACK.
    let tcp = |flags: u8, seq: u32, ack: u32| {
        let mut t = vec![0xc3, 0x50];
        t.extend(cfg.port.to_be_bytes());
        t.extend(seq.to_be_bytes());
        t.extend(ack.to_be_bytes());
        t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        let mut pseudo = OUR_IP.to_vec();
        pseudo.extend(guest.1);
        pseudo.extend([0, 6]);
        pseudo.extend((t.len() as u16).to_be_bytes());
        let c = csum(&[&pseudo, &t]);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        ether(guest.0, 0x0800, &ipv4(guest.1, 6, &t))
    };
    let syn = tcp(0x02, 1000, 0);
    println!("us -> guest TCP SYN ({} B)", syn.len());
    peer.send_to(&syn, &to).unwrap();
    let synack = recv_until(&peer, "SYN-ACK", |f| f.len() >= 54 && f[23] == 6 && f[47] & 0x12 == 0x12);
    let their_seq = u32::from_be_bytes(synack[38..42].try_into().unwrap());
    assert_eq!(u32::from_be_bytes(synack[42..46].try_into().unwrap()), 1001, "SYN-ACK acknowledges our SYN");
    println!("SYN-ACK: {} B, TCP options {}", synack.len(), hex(&synack[54..]));
    peer.send_to(&tcp(0x04, 1001, their_seq.wrapping_add(1)), &to).unwrap();

    let console = target.console();
    target.stop();
    println!("guest console:\n{console}");
}
