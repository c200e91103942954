//! Network helpers shared by the per-core TCP/IP stacks (DESIGN.md §3:
//! TCP/IP per core, `smoltcp`, no cross-core sharing on the I/O path).
//!
//! * [`rss`]: Toeplitz hash (Microsoft RSS) and the choice of a local TCP
//!   port whose return traffic the NIC steers to the connecting core.
//! * [`neighbor`]: the IPv4 -> MAC table one core (the ARP owner) writes
//!   and every core reads, lock-free.
//! * [`arp`]: ARP replies and requests (RFC 826) over Ethernet.
//! * [`eth`]: Ethernet II framing for stacks that run smoltcp in IP mode.
//! * [`tcpfast`]: which received TCP segments may take the sockets'
//!   receive fast path.
#![no_std]

pub mod arp;
pub mod eth;
pub mod neighbor;
pub mod rss;
pub mod tcpfast;

/// An IPv4 address as four octets (network order).
pub type Ipv4 = [u8; 4];
/// A MAC address.
pub type Mac = [u8; 6];

/// Whether `a` and `b` share the /`prefix` subnet.
pub fn same_subnet(a: Ipv4, b: Ipv4, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
    u32::from_be_bytes(a) & mask == u32::from_be_bytes(b) & mask
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnets() {
        assert!(super::same_subnet([10, 0, 0, 1], [10, 0, 0, 200], 24));
        assert!(!super::same_subnet([10, 0, 0, 1], [10, 0, 1, 1], 24));
        assert!(super::same_subnet([10, 0, 0, 1], [10, 0, 1, 1], 16));
    }
}
