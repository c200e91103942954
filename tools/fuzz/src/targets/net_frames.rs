//! Frames from the wire into the firmware's own Ethernet/ARP code
//! (`dpu_net`): EtherType and IPv4 destination peeks, next-hop choice, and
//! ARP handling, which learns senders and answers requests for our
//! address. Whatever it learns must be a unicast sender with an address;
//! a reply goes only to a request for our IP and is a well-formed ARP
//! reply to that sender.
//!
//! Input: our MAC and IP (10 bytes), a prefix byte, the reply buffer size
//! (1 byte), then the frame.

use crate::input::Input;
use dpu_net::arp::{self, Arp, FRAME_LEN};
use dpu_net::eth;

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let my_mac: [u8; 6] = i.fixed();
    let my_ip: [u8; 4] = i.fixed();
    let prefix = 8 + i.u8() % 23;
    let out_len = usize::from(i.u8()) % (FRAME_LEN + 8);
    let frame = i.rest();
    let _ = eth::ethertype(frame);
    if let Some(dst) = frame.get(eth::HEADER..).and_then(eth::ipv4_dst) {
        let hop = eth::next_hop(dst, my_ip, prefix, Some([10, 0, 0, 254]));
        assert!(hop.is_some());
        if dpu_net::same_subnet(dst, my_ip, prefix) {
            assert_eq!(hop, Some(dst), "on-link destination routed through the gateway");
        }
    }
    let mut out = vec![0u8; out_len];
    let Some(Arp::Learned { ip, mac, reply_len }) = arp::handle(frame, my_mac, my_ip, &mut out) else { return };
    assert!(mac[0] & 1 == 0 && ip != [0; 4], "learned a multicast or unaddressed sender");
    if reply_len > 0 {
        assert_eq!(reply_len, FRAME_LEN);
        assert!(out.len() >= FRAME_LEN);
        let r = &out[..reply_len];
        assert_eq!(&r[0..6], &mac, "reply not sent to the sender");
        assert_eq!(&r[6..12], &my_mac);
        assert_eq!(eth::ethertype(r), Some(eth::ETHERTYPE_ARP));
        assert_eq!(u16::from_be_bytes([r[20], r[21]]), 2, "not an ARP reply");
        assert_eq!(&r[28..32], &my_ip, "reply does not claim our address");
        assert_eq!(&r[38..42], &ip, "reply not addressed to the sender's IP");
        // The request asked for our address.
        assert_eq!(&frame[38..42], &my_ip, "answered a request for another address");
    }
}
