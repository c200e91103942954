//! The simulated network around the DPU: its NIC, one switch, the
//! NVMe/TCP target and initiator models and the optional UDP bridge, plus the frames in
//! flight between them. The network is one component ([`Network::id`],
//! its events' kinds in [`payload`]); frames travel as its events: each
//! hop (into the switch, out to an endpoint, into DPU memory) is one
//! event at the cycle the frame's last bit arrives.

use super::bridge::Bridge;
use super::nic::Nic;
use super::pcap::PcapWriter;
use super::switch::{Attached, Impairments, Switch};
use super::nvmf_target::TargetModel;
use rustc_hash::FxHashMap;

/// Payload kinds of the network's events ([`super::component`]).
pub mod payload {
    /// Frame `a` reaches its next hop (see [`super::Hop`]).
    pub const FRAME: u16 = 0;
    /// TX descriptors of NIC port `a`, queue `b` are written back.
    pub const TX_DONE: u16 = 1;
    /// The LRO hold time of NIC port `a`, queue `b` ends.
    pub const LRO_FLUSH: u16 = 2;
    /// Target model `a`'s timers (TCP, media latency) are due.
    pub const TARGET_POLL: u16 = 3;
    /// The operator node's timers or calls are due.
    pub const OPERATOR_POLL: u16 = 4;
    /// Initiator model `a`'s timers (TCP, setup, keep-alive, I/O timeouts) are due.
    pub const INITIATOR_POLL: u16 = 5;
}

/// Where a frame in flight goes next.
#[derive(Clone, Copy, Debug)]
pub enum Hop {
    /// Fully received by the switch on this port.
    Switch { ingress: usize },
    /// Fully received by whatever sits on this switch port.
    Endpoint { port: usize },
    /// The DPU NIC writes it into the RX buffer of descriptor `index`.
    RxWrite { port: usize, queue: usize, index: u32 },
}

pub struct InFlight {
    pub hop: Hop,
    pub frame: Vec<u8>,
}

/// Network statistics (for the stats JSON and fault reports).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NetStats {
    pub switch: super::switch::SwitchStats,
    pub ports: Vec<super::nic::PortCounters>,
    pub bridge_in: u64,
    pub bridge_out: u64,
    pub bridge_errors: u64,
    /// Per port: (queue, rx frames, tx frames, rx dropped for lack of buffers) of busy queues.
    pub queues: Vec<Vec<(usize, u64, u64, u64)>>,
}

pub struct Network {
    /// Its component id (frames in flight, NIC write-backs, model polls).
    pub id: crate::event::ComponentId,
    pub nic: Nic,
    pub switch: Switch,
    pub targets: Vec<TargetModel>,
    /// NVMe/TCP initiator models (remote hosts running jobs).
    pub initiators: Vec<super::nvmf_host::InitiatorModel>,
    pub bridge: Option<Bridge>,
    /// The management client node, when the scenario has `[management]`.
    pub operator: Option<super::operator::Operator>,
    pub inflight: FxHashMap<u64, InFlight>,
    next_id: u64,
    /// Per DPU port capture.
    pub pcap: Vec<Option<PcapWriter>>,
    pub clock_hz: u64,
    /// TX write-backs due: (port, queue) -> pending (index, flags), in order.
    pub tx_writeback: FxHashMap<(usize, usize), std::collections::VecDeque<(u32, u16)>>,
    /// Frames that could not be written to a capture file.
    pub pcap_errors: u64,
    /// Large receive offload state per (port, queue), and the queues with
    /// a flush event pending.
    pub lro: FxHashMap<(usize, usize), super::offload::Lro>,
    pub lro_flush: rustc_hash::FxHashSet<(usize, usize)>,
}

impl Network {
    /// The NIC with its wired ports attached to a fresh switch.
    pub fn new(id: crate::event::ComponentId, nic: Nic, clock_hz: u64) -> Network {
        let mut switch = Switch::new(clock_hz, 200, 300, Impairments::default(), 0);
        for (p, port) in nic.ports.iter().enumerate() {
            if port.speed_gbps > 0 {
                switch.attach(Attached::Dpu(p), port.speed_gbps);
            }
        }
        let pcap = (0..nic.ports.len()).map(|_| None).collect();
        Network { id, nic, switch, targets: Vec::new(), initiators: Vec::new(), bridge: None, operator: None, inflight: FxHashMap::default(), next_id: 0, pcap, clock_hz, tx_writeback: FxHashMap::default(), pcap_errors: 0, lro: FxHashMap::default(), lro_flush: Default::default() }
    }

    /// Rebuilds the switch with the scenario's latencies and impairments
    /// (keeps the attached ports).
    pub fn configure(&mut self, link_latency_ns: u64, switch_latency_ns: u64, impair: Impairments, seed: u64) {
        let mut s = Switch::new(self.clock_hz, link_latency_ns, switch_latency_ns, impair, seed);
        for p in &self.switch.ports {
            s.attach(p.attached, p.speed_gbps);
        }
        self.switch = s;
    }

    /// Stores a frame in flight; returns its event id.
    pub fn stash(&mut self, hop: Hop, frame: Vec<u8>) -> u64 {
        self.next_id += 1;
        self.inflight.insert(self.next_id, InFlight { hop, frame });
        self.next_id
    }

    pub fn take(&mut self, id: u64) -> Option<InFlight> {
        self.inflight.remove(&id)
    }

    /// Cycles to nanoseconds.
    pub fn ns(&self, cycles: u64) -> u64 {
        (u128::from(cycles) * 1_000_000_000 / u128::from(self.clock_hz)) as u64
    }

    /// Captures a frame seen on DPU port `port` at cycle `at`.
    pub fn capture(&mut self, port: usize, at: u64, frame: &[u8]) {
        let t = self.ns(at);
        if let Some(Some(w)) = self.pcap.get_mut(port) {
            if w.write(t, frame).is_err() {
                self.pcap_errors += 1;
            }
        }
    }

    pub fn stats(&self) -> NetStats {
        NetStats {
            switch: self.switch.stats.clone(),
            ports: self.nic.ports.iter().map(|p| p.counters.clone()).collect(),
            bridge_in: self.bridge.as_ref().map_or(0, |b| b.frames_in),
            bridge_out: self.bridge.as_ref().map_or(0, |b| b.frames_out),
            bridge_errors: self.bridge.as_ref().map_or(0, |b| b.errors),
            queues: self
                .nic
                .ports
                .iter()
                .map(|p| p.queues.iter().enumerate().filter(|(_, q)| q.rx_frames + q.tx_frames + q.rx_no_buffer > 0).map(|(i, q)| (i, q.rx_frames, q.tx_frames, q.rx_no_buffer)).collect())
                .collect(),
        }
    }
}
