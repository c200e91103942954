//! The network model: NIC, wire, switch, target models, bridge.
//!
//! * [`nic`]: the DPU NIC's registers and queue state.
//! * [`component`]: the network as one event-driven component: the NIC
//!   moving frames between DPU memory and the wire, frames hop by hop
//!   through the switch to the models (through a `DevCtx`).
//! * [`switch`]: store-and-forward switch, links, impairments.
//! * [`network`]: everything on the segment and the frames in flight.
//! * [`nvmf_target`]: NVMe/TCP target models (smoltcp + in-memory namespaces).
//! * [`nvmf_host`]: NVMe/TCP initiator models (remote hosts running
//!   fio-like jobs against an NVMe/TCP controller).
//! * [`nvmf_wire`]: NVMe/TCP and NVMe-oF wire formats of the test peers,
//!   written from the specs (no firmware code).
//! * [`operator`]: the operator node making the scenario's JSON-RPC calls;
//!   [`hostfwd`]: host TCP connections relayed through it.
//! * [`bridge`]: Ethernet-in-UDP to a real peer (QEMU `-netdev dgram`).
//! * [`frames`], [`poll_event`]: the smoltcp device and the pending poll
//!   event of the simulator's own endpoints.
//! * [`frame`], [`rss`], [`checksum`], [`offload`], [`pcap`]: frame
//!   helpers, Toeplitz hashing, checksum/TSO/LRO offloads, captures.

pub mod bridge;
pub mod checksum;
pub mod component;
pub mod frame;
pub mod frames;
pub mod hostfwd;
pub mod network;
pub mod nic;
pub mod nvmf_host;
pub mod nvmf_target;
pub mod nvmf_wire;
pub mod offload;
pub mod operator;
pub mod pcap;
pub mod poll_event;
pub mod rss;
pub mod switch;

/// Kinds of the simulator's own network nodes, the fifth byte of their MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// NVMe/TCP target model i.
    Target(usize),
    /// NVMe/TCP initiator model i.
    Initiator(usize),
    /// The operator node (management client).
    Operator,
}

/// MAC of one of the simulator's nodes: 02:7a:00:00:KK:NN, locally
/// administered, with KK the kind and NN the index + 1. One scheme for
/// all of them: the switch learns where a MAC lives, so two nodes with
/// one address would take each other's frames. (The scenario loader
/// bounds the models to fewer than 255 of each kind.)
pub fn node_mac(node: Node) -> [u8; 6] {
    let (kind, i) = match node {
        Node::Target(i) => (1, i),
        Node::Initiator(i) => (2, i),
        Node::Operator => (3, 0),
    };
    [0x02, 0x7a, 0x00, 0x00, kind, (i as u8).wrapping_add(1)]
}

#[cfg(test)]
mod mac_tests {
    use super::{node_mac, Node};

    /// Every node the simulator can place on the switch has its own MAC
    /// (the operator once shared initiator 0's, and the switch then
    /// delivered the initiator's frames to the operator).
    #[test]
    fn every_node_has_its_own_mac() {
        let max = dpu_targets::MAX_MODELS;
        let mut all: Vec<[u8; 6]> = (0..max).map(|i| node_mac(Node::Target(i))).chain((0..max).map(|i| node_mac(Node::Initiator(i)))).collect();
        all.push(node_mac(Node::Operator));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|m| m[0] & 0x03 == 0x02), "unicast, locally administered");
    }
}
