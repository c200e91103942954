//! The wire and the switch: store-and-forward Ethernet switch with MAC
//! learning, one full-duplex link per switch port (serialization at line
//! rate with preamble, FCS and inter-frame gap counted, propagation
//! latency), and deterministic impairments (loss, reordering, duplication)
//! for fault tests.
//!
//! Times are core cycles. The switch decides where a frame goes and when
//! it has fully arrived there; the caller (the network) turns those
//! arrivals into events.

use super::frame::serialization_ps;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;

/// What sits at the far end of a switch port's cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Attached {
    /// DPU NIC port n.
    Dpu(usize),
    /// NVMe/TCP target model n.
    Target(usize),
    /// The Ethernet-in-UDP bridge to a real peer.
    Bridge,
    /// The operator node (management client, `super::operator`).
    Operator,
    /// NVMe/TCP initiator model n (`super::nvmf_host`).
    Initiator(usize),
}

#[derive(Clone, Debug)]
pub struct SwitchPort {
    pub attached: Attached,
    pub speed_gbps: u32,
    /// Egress serializer (switch -> endpoint) busy until this cycle.
    pub egress_free: u64,
    /// Ingress serializer (endpoint -> switch) busy until this cycle.
    pub ingress_free: u64,
    pub link_up: bool,
}

/// Impairment settings, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impairments {
    pub loss: f64,
    pub reorder: f64,
    pub duplicate: f64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SwitchStats {
    pub frames_in: u64,
    pub forwarded: u64,
    pub flooded: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    /// Dropped because the egress or ingress link was down.
    pub link_down: u64,
}

/// A frame's arrival at the end of a switch port's cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub port: usize,
    /// Cycle at which the last bit arrives.
    pub at: u64,
}

pub struct Switch {
    pub ports: Vec<SwitchPort>,
    fdb: FxHashMap<[u8; 6], usize>,
    clock_hz: u64,
    /// One-way cable latency and switch forwarding latency, in cycles.
    pub link_latency: u64,
    pub switch_latency: u64,
    pub impair: Impairments,
    rng: SmallRng,
    pub stats: SwitchStats,
}

impl Switch {
    pub fn new(clock_hz: u64, link_latency_ns: u64, switch_latency_ns: u64, impair: Impairments, seed: u64) -> Switch {
        let cyc = |ns: u64| dpu_targets::ns_to_cycles(ns, clock_hz);
        Switch {
            ports: Vec::new(),
            fdb: FxHashMap::default(),
            clock_hz,
            link_latency: cyc(link_latency_ns),
            switch_latency: cyc(switch_latency_ns),
            impair,
            rng: SmallRng::seed_from_u64(seed ^ 0x5157_17c4),
            stats: SwitchStats::default(),
        }
    }

    /// Adds a port; returns its index.
    pub fn attach(&mut self, attached: Attached, speed_gbps: u32) -> usize {
        self.ports.push(SwitchPort { attached, speed_gbps, egress_free: 0, ingress_free: 0, link_up: true });
        self.ports.len() - 1
    }

    pub fn port_of(&self, a: Attached) -> Option<usize> {
        self.ports.iter().position(|p| p.attached == a)
    }

    /// Cycles to serialize a frame of `len` bytes (no FCS) at `gbps`.
    pub fn wire_cycles(&self, len: usize, gbps: u32) -> u64 {
        let ps = u128::from(serialization_ps(len, u64::from(gbps)));
        (ps * u128::from(self.clock_hz)).div_ceil(1_000_000_000_000) as u64
    }

    /// An endpoint starts sending a frame into switch port `port` no
    /// earlier than `ready`. Returns when the whole frame is in the switch
    /// (None: that link is down).
    pub fn ingress(&mut self, port: usize, ready: u64, len: usize) -> Option<u64> {
        if !self.ports[port].link_up {
            self.stats.link_down += 1;
            return None;
        }
        let start = ready.max(self.ports[port].ingress_free);
        let end = start + self.wire_cycles(len, self.ports[port].speed_gbps);
        let p = &mut self.ports[port];
        p.ingress_free = end;
        Some(end + self.link_latency)
    }

    /// A frame fully arrived on `ingress` at `at`: learn its source,
    /// apply impairments, pick the egress ports and serialize it onto
    /// them. Returns where (and when) copies arrive.
    pub fn forward(&mut self, ingress: usize, at: u64, frame: &[u8]) -> Vec<Delivery> {
        self.stats.frames_in += 1;
        if frame.len() < 14 {
            return Vec::new();
        }
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        if src[0] & 1 == 0 {
            self.fdb.insert(src, ingress);
        }
        if self.impair.loss > 0.0 && self.rng.random::<f64>() * 100.0 < self.impair.loss {
            self.stats.lost += 1;
            return Vec::new();
        }
        let mut copies = 1;
        if self.impair.duplicate > 0.0 && self.rng.random::<f64>() * 100.0 < self.impair.duplicate {
            self.stats.duplicated += 1;
            copies = 2;
        }
        // A reordered frame is held back long enough for a few later
        // frames of a busy flow to overtake it (about 4 full-size frames).
        let mut hold = 0;
        if self.impair.reorder > 0.0 && self.rng.random::<f64>() * 100.0 < self.impair.reorder {
            self.stats.reordered += 1;
            hold = 4 * self.wire_cycles(1514, self.ports[ingress].speed_gbps) + self.switch_latency;
        }
        let egress: Vec<usize> = match (dst[0] & 1 == 0).then(|| self.fdb.get(&dst).copied()).flatten() {
            Some(p) if p == ingress => return Vec::new(),
            Some(p) => {
                self.stats.forwarded += 1;
                vec![p]
            }
            None => {
                self.stats.flooded += 1;
                (0..self.ports.len()).filter(|&p| p != ingress).collect()
            }
        };
        let mut out = Vec::new();
        for p in egress {
            for _ in 0..copies {
                let cycles = self.wire_cycles(frame.len(), self.ports[p].speed_gbps);
                let port = &mut self.ports[p];
                if !port.link_up {
                    self.stats.link_down += 1;
                    continue;
                }
                let start = (at + self.switch_latency + hold).max(port.egress_free);
                port.egress_free = start + cycles;
                out.push(Delivery { port: p, at: start + cycles + self.link_latency });
            }
        }
        out
    }

    /// Takes a port's link down or up (cable pulled / restored).
    pub fn set_link(&mut self, port: usize, up: bool) {
        self.ports[port].link_up = up;
        if !up {
            // Forget addresses learned there (like a port-down flush).
            self.fdb.retain(|_, p| *p != port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn learns_then_forwards_unicast() {
        let mut s = Switch::new(1_000_000_000, 200, 300, Impairments::default(), 1);
        let a = s.attach(Attached::Dpu(0), 100);
        let b = s.attach(Attached::Target(0), 100);
        let c = s.attach(Attached::Target(1), 100);
        // Unknown destination: flooded to every other port.
        let d = s.forward(a, 1000, &frame(B, A, 1514));
        assert_eq!(d.iter().map(|x| x.port).collect::<Vec<_>>(), vec![b, c]);
        // B answers: A is known now, so only A gets it.
        let d = s.forward(b, 5000, &frame(A, B, 64));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].port, a);
        // 1514 B at 100 Gb/s: (1514 + 4 + 8 + 12) * 8 / 100 = 123.04 ns.
        assert_eq!(s.wire_cycles(1514, 100), 124);
        // Arrival = in + switch latency + serialization + cable.
        let d = s.forward(a, 10_000, &frame(B, A, 1514));
        assert_eq!(d, vec![Delivery { port: b, at: 10_000 + 300 + 124 + 200 }]);
        // Back-to-back frames queue on the egress serializer.
        let d2 = s.forward(a, 10_000, &frame(B, A, 1514));
        assert_eq!(d2[0].at, d[0].at + 124);
    }

    #[test]
    fn impairments_are_deterministic_and_roughly_at_rate() {
        let run = || {
            let mut s = Switch::new(1_000_000_000, 0, 0, Impairments { loss: 10.0, reorder: 0.0, duplicate: 5.0 }, 42);
            let a = s.attach(Attached::Dpu(0), 100);
            let _b = s.attach(Attached::Target(0), 100);
            let mut arrivals = 0;
            for i in 0..10_000u64 {
                arrivals += s.forward(a, i * 1000, &frame(B, A, 100)).len();
            }
            (arrivals, s.stats.lost, s.stats.duplicated)
        };
        let (n, lost, dup) = run();
        assert_eq!(run(), (n, lost, dup), "same seed, same drops");
        assert!((800..1200).contains(&lost), "{lost} lost of 10000 at 10%");
        assert!((300..700).contains(&dup), "{dup} duplicated at 5%");
        assert_eq!(n as u64, 10_000 - lost + dup);
    }

    #[test]
    fn link_down_drops() {
        let mut s = Switch::new(1_000_000_000, 0, 0, Impairments::default(), 1);
        let a = s.attach(Attached::Dpu(0), 100);
        let b = s.attach(Attached::Target(0), 100);
        s.forward(b, 0, &frame(A, B, 64));
        s.set_link(b, false);
        assert!(s.forward(a, 10, &frame(B, A, 64)).is_empty());
        assert_eq!(s.ingress(b, 20, 64), None);
        s.set_link(b, true);
        assert_eq!(s.forward(a, 30, &frame(B, A, 64)).len(), 1, "flooded again after the flush");
    }
}
