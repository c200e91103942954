//! PCIe link timing: per-direction serialization (payload plus per-TLP
//! overhead at the coded, DLLP-reduced line rate) and fixed latencies from
//! the board file. Times are core cycles.

use dpu_targets::Board;

/// Direction of traffic on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Host -> DPU (MMIO writes to BARs, DMA read completions).
    Down,
    /// DPU -> host (DMA writes, MSI-X, MMIO read completions).
    Up,
}

pub struct Link {
    /// Wire bytes per core cycle, per direction.
    bytes_per_cycle: f64,
    mps: u64,
    tlp_overhead: u64,
    pub host_read_latency: u64,
    pub posted_latency: u64,
    pub mmio_read_latency: u64,
    free: [u64; 2],
    /// Payload bytes moved per direction (statistics).
    pub bytes: [u64; 2],
}

fn ns_to_cycles(ns: u64, clock_hz: u64) -> u64 {
    (u128::from(ns) * u128::from(clock_hz) / 1_000_000_000) as u64
}

impl Link {
    pub fn new(board: &Board, clock_hz: u64) -> Link {
        let p = &board.pcie;
        Link {
            bytes_per_cycle: p.link_bytes_per_sec() / clock_hz as f64,
            mps: u64::from(p.max_payload),
            tlp_overhead: u64::from(p.tlp_overhead_bytes),
            host_read_latency: ns_to_cycles(p.host_read_latency_ns, clock_hz),
            posted_latency: ns_to_cycles(p.posted_latency_ns, clock_hz),
            mmio_read_latency: ns_to_cycles(p.mmio_read_latency_ns, clock_hz),
            free: [0; 2],
            bytes: [0; 2],
        }
    }

    /// Cycles `payload` bytes occupy the wire (split into max-payload TLPs).
    pub fn wire_cycles(&self, payload: u64) -> u64 {
        let tlps = payload.div_ceil(self.mps).max(1);
        let wire = payload + tlps * self.tlp_overhead;
        (wire as f64 / self.bytes_per_cycle).ceil() as u64
    }

    /// Reserves the wire for `payload` bytes starting no earlier than
    /// `earliest`; returns when the last byte has been sent.
    pub fn send(&mut self, dir: Dir, earliest: u64, payload: u64) -> u64 {
        let i = dir as usize;
        let start = earliest.max(self.free[i]);
        let end = start + self.wire_cycles(payload);
        self.free[i] = end;
        self.bytes[i] += payload;
        end
    }

    /// Peak payload bandwidth in bytes per cycle (for reports).
    pub fn payload_bytes_per_cycle(&self) -> f64 {
        self.bytes_per_cycle * self.mps as f64 / (self.mps + self.tlp_overhead) as f64
    }
}
