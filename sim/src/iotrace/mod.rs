//! Per-I/O trace in the Chrome/Perfetto JSON format (`--trace FILE`).
//!
//! Built from what the simulator observes, with no firmware cooperation:
//! the host model reports submissions and completions, the endpoint the
//! doorbell arrivals, the DMA engines every transfer (SQE fetch, data,
//! CQE) and the host the MSI-X arrivals. Transfers are matched to commands
//! by host address (SQ slot, data buffer) or by the CQE's contents.
//!
//! For namespaces behind NVMe/TCP, the NIC reports every frame it sends and
//! receives; [`nvmf::Stream`] follows each TCP direction's PDUs. A Command
//! Capsule is matched to the host command it carries by opcode, starting
//! LBA and length (the adapter maps LBAs 1:1), then its R2T, H2CData,
//! C2HData and CapsuleResp PDUs by the fabric command ID on that
//! connection. Times are when the DPU's NIC moved the frame (TX: read from
//! memory; RX: written to the core's buffer).

pub mod nvmf;

use crate::net::frame::FlowKey;
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    hart: u32,
}

/// The NVMe/TCP life of a host command on a remote namespace.
#[derive(Clone, Debug)]
struct Fabric {
    /// Hart that owns the NIC queue the capsule left on.
    hart: u32,
    /// The connection (DPU side first) and the fabric command ID.
    flow: FlowKey,
    cid: u16,
    /// Command Capsule handed to the wire.
    capsule: u64,
    /// First R2T received, first H2CData sent (writes beyond the in-capsule size).
    r2t: Option<u64>,
    h2c: Option<u64>,
    /// First C2HData received (reads).
    data: Option<u64>,
    /// CapsuleResp (or C2HData with SUCCESS) received.
    resp: Option<u64>,
}

#[derive(Clone, Debug)]
struct Io {
    func: u16,
    qid: u16,
    cid: u16,
    opcode: u8,
    slba: u64,
    nlb: u16,
    fabric: Option<Fabric>,
    sq_slot: u64,
    data: Vec<(u64, u32)>,
    submit: u64,
    doorbell: Option<u64>,
    fetch: Option<Span>,
    dma: Option<Span>,
    cqe: Option<Span>,
    msi: Option<u64>,
    done: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Queue {
    cq: u64,
    cq_len: u64,
}

/// The trace being collected.
pub struct IoTrace {
    limit: usize,
    clock_hz: u64,
    ios: Vec<Io>,
    open: FxHashMap<(u16, u16, u16), usize>,
    queues: FxHashMap<(u16, u16), Queue>,
    irqs: FxHashMap<u32, (u16, u16)>,
    /// NVMe/TCP byte streams by (direction is TX, DPU-side flow key).
    streams: FxHashMap<(bool, FlowKey), nvmf::Stream>,
    /// Fabric commands in flight: (connection, fabric CID) -> I/O.
    fabric_open: FxHashMap<(FlowKey, u16), usize>,
    /// I/Os not traced because the limit was reached.
    pub dropped: u64,
}

impl IoTrace {
    pub fn new(limit: usize, clock_hz: u64) -> IoTrace {
        IoTrace {
            limit,
            clock_hz,
            ios: Vec::new(),
            open: FxHashMap::default(),
            queues: FxHashMap::default(),
            irqs: FxHashMap::default(),
            streams: FxHashMap::default(),
            fabric_open: FxHashMap::default(),
            dropped: 0,
        }
    }

    /// The host created queue pair `qid` of `func` (CQ entries of 16 bytes).
    pub fn queue(&mut self, func: u16, qid: u16, cq: u64, entries: u16, irq: u32) {
        self.queues.insert((func, qid), Queue { cq, cq_len: 16 * u64::from(entries) });
        self.irqs.insert(irq, (func, qid));
    }

    /// The host wrote an SQE (before ringing the doorbell).
    pub fn submit(&mut self, now: u64, func: u16, qid: u16, sqe: &[u32; 16], sq_slot: u64, data: &[(u64, u32)]) {
        let (opcode, cid) = (sqe[0] as u8, (sqe[0] >> 16) as u16);
        let slba = u64::from(sqe[10]) | u64::from(sqe[11]) << 32;
        if self.ios.len() >= self.limit {
            self.dropped += 1;
            return;
        }
        self.open.insert((func, qid, cid), self.ios.len());
        self.ios.push(Io {
            func,
            qid,
            cid,
            opcode,
            slba,
            nlb: sqe[12] as u16,
            fabric: None,
            sq_slot,
            data: data.to_vec(),
            submit: now,
            doorbell: None,
            fetch: None,
            dma: None,
            cqe: None,
            msi: None,
            done: None,
        });
    }

    /// An SQ tail doorbell write reached the endpoint.
    pub fn doorbell(&mut self, now: u64, func: u16, qid: u16) {
        for (&(f, q, _), &i) in &self.open {
            if f == func && q == qid && self.ios[i].doorbell.is_none() {
                self.ios[i].doorbell = Some(now);
            }
        }
    }

    /// A DMA transfer finished. `bytes` is the data of a 16-byte D2H write.
    #[allow(clippy::too_many_arguments)]
    pub fn dma(&mut self, start: u64, end: u64, hart: u32, func: u16, to_host: bool, host: u64, len: u32, bytes: Option<&[u8]>) {
        let span = Span { start, end, hart };
        let (lo, hi) = (host, host + u64::from(len));
        if to_host {
            if let Some(b) = bytes {
                // A write into a CQ: one CQE or several consecutive ones.
                let mut cqes = 0;
                for e in b.chunks_exact(16) {
                    let qid = u16::from_le_bytes([e[10], e[11]]);
                    let cid = u16::from_le_bytes([e[12], e[13]]);
                    let in_cq = self.queues.get(&(func, qid)).is_some_and(|q| lo >= q.cq && hi <= q.cq + q.cq_len);
                    if let (true, Some(&i)) = (in_cq, self.open.get(&(func, qid, cid))) {
                        self.ios[i].cqe = Some(span);
                        cqes += 1;
                    }
                }
                if cqes > 0 {
                    return;
                }
            }
        }
        for &i in self.open.values() {
            let io = &mut self.ios[i];
            if io.func != func {
                continue;
            }
            if !to_host && io.fetch.is_none() && io.sq_slot >= lo && io.sq_slot < hi {
                io.fetch = Some(span);
                continue;
            }
            let touches = io.data.iter().any(|&(a, l)| a < hi && lo < a + u64::from(l));
            if touches && io.fetch.is_some() && io.cqe.is_none() {
                io.dma = Some(match io.dma {
                    Some(d) => Span { start: d.start.min(start), end: d.end.max(end), hart },
                    None => span,
                });
            }
        }
    }

    /// An MSI-X message reached the host.
    pub fn msi(&mut self, now: u64, data: u32) {
        let Some(&(func, qid)) = self.irqs.get(&data) else { return };
        for (&(f, q, _), &i) in &self.open {
            if f == func && q == qid && self.ios[i].cqe.is_some() && self.ios[i].msi.is_none() {
                self.ios[i].msi = Some(now);
            }
        }
    }

    /// The host reaped the command's completion.
    pub fn complete(&mut self, now: u64, func: u16, qid: u16, cid: u16) {
        if let Some(i) = self.open.remove(&(func, qid, cid)) {
            self.ios[i].done = Some(now);
        }
    }

    /// The DPU's NIC sent (`tx`) or received a frame on a queue of `hart`.
    pub fn frame(&mut self, now: u64, hart: u32, tx: bool, f: &[u8]) {
        let Some(seg) = nvmf::segment(f) else { return };
        let flow = if tx { seg.key } else { seg.key.reversed() };
        let headers = self.streams.entry((tx, flow)).or_default().feed(&seg);
        for h in headers {
            self.pdu(now, hart, tx, flow, &h);
        }
    }

    /// One PDU header seen on `flow` (DPU side first).
    fn pdu(&mut self, now: u64, hart: u32, tx: bool, flow: FlowKey, h: &[u8]) {
        let u16_at = |o: usize| h.get(o..o + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        match (tx, h[0]) {
            (true, nvmf::pdu::CAPSULE_CMD) if h.len() >= 72 => {
                // The SQE starts at byte 8 (NVMe/TCP 1.0 §3.6.2.2).
                let dw = |i: usize| u32::from_le_bytes(h[8 + 4 * i..12 + 4 * i].try_into().unwrap());
                let (opcode, cid) = (dw(0) as u8, (dw(0) >> 16) as u16);
                let slba = u64::from(dw(10)) | u64::from(dw(11)) << 32;
                let nlb = dw(12) as u16;
                let found = self.open.values().copied().find(|&i| {
                    let io = &self.ios[i];
                    // Fetched by the core that sends the capsule; a command
                    // resent on a new association matches again.
                    io.opcode == opcode
                        && io.slba == slba
                        && io.nlb == nlb
                        && io.fetch.is_some_and(|f| f.hart == hart)
                        && io.fabric.as_ref().is_none_or(|f| f.resp.is_none())
                });
                if let Some(i) = found {
                    if let Some(old) = &self.ios[i].fabric {
                        self.fabric_open.remove(&(old.flow, old.cid));
                    }
                    self.ios[i].fabric = Some(Fabric { hart, flow, cid, capsule: now, r2t: None, h2c: None, data: None, resp: None });
                    self.fabric_open.insert((flow, cid), i);
                }
            }
            (true, nvmf::pdu::H2C_DATA) => self.fabric_stage(flow, u16_at(8), |f| f.h2c = f.h2c.or(Some(now))),
            (false, nvmf::pdu::R2T) => self.fabric_stage(flow, u16_at(8), |f| f.r2t = f.r2t.or(Some(now))),
            (false, nvmf::pdu::C2H_DATA) => {
                let success = h[1] & nvmf::pdu::C2H_SUCCESS != 0;
                self.fabric_stage(flow, u16_at(8), |f| {
                    f.data = f.data.or(Some(now));
                    if success {
                        f.resp = Some(now);
                    }
                });
                if success {
                    self.fabric_open.remove(&(flow, u16_at(8)));
                }
            }
            (false, nvmf::pdu::CAPSULE_RESP) => {
                // CQE at byte 8; its CID is CQE bytes 12..14 (NVMe Base 2.0 §4.2.2).
                let cid = u16_at(8 + 12);
                self.fabric_stage(flow, cid, |f| f.resp = Some(now));
                self.fabric_open.remove(&(flow, cid));
            }
            _ => {}
        }
    }

    fn fabric_stage(&mut self, flow: FlowKey, cid: u16, f: impl FnOnce(&mut Fabric)) {
        if let Some(&i) = self.fabric_open.get(&(flow, cid)) {
            if let Some(fab) = self.ios[i].fabric.as_mut() {
                f(fab);
            }
        }
    }

    /// I/Os recorded.
    pub fn len(&self) -> usize {
        self.ios.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ios.is_empty()
    }

    fn us(&self, cycles: u64) -> f64 {
        cycles as f64 * 1e6 / self.clock_hz as f64
    }

    /// The Chrome trace-event JSON document.
    pub fn to_json(&self) -> Value {
        let mut ev = vec![
            json!({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "host"}}),
            json!({"name": "process_name", "ph": "M", "pid": 2, "args": {"name": "DPU"}}),
        ];
        let mut harts: Vec<u32> = Vec::new();
        for (index, io) in self.ios.iter().enumerate() {
            let op = match io.opcode {
                0x01 => "write",
                0x02 => "read",
                0x00 => "flush",
                _ => "cmd",
            };
            let tid = u32::from(io.func) * 1000 + u32::from(io.qid);
            let name = if io.qid == 0 {
                format!("admin {:#04x} fn{} cid{}", io.opcode, io.func, io.cid)
            } else {
                format!("{op} fn{} q{} cid{}", io.func, io.qid, io.cid)
            };
            let end = io.done.unwrap_or(io.submit);
            let fabric = io.fabric.as_ref().map(|f| {
                json!({"cid": f.cid, "capsule_us": self.us(f.capsule), "r2t_us": f.r2t.map(|t| self.us(t)),
                    "h2c_us": f.h2c.map(|t| self.us(t)), "c2h_us": f.data.map(|t| self.us(t)), "resp_us": f.resp.map(|t| self.us(t))})
            });
            ev.push(json!({"name": name, "cat": "io", "ph": "X", "pid": 1, "tid": tid,
                "ts": self.us(io.submit), "dur": self.us(end - io.submit),
                "args": {"seq": index, "doorbell_us": io.doorbell.map(|t| self.us(t)), "msix_us": io.msi.map(|t| self.us(t)), "nvmf": fabric}}));
            let mut stages = vec![("SQ fetch", io.fetch), ("data DMA", io.dma), ("CQE + MSI-X", io.cqe)];
            if let Some(f) = &io.fabric {
                // On the core: from the fetched SQE to the capsule on the
                // wire, and from the response to the CQE.
                if let Some(fe) = io.fetch {
                    stages.push(("NVMe/TCP submit", Some(Span { start: fe.end, end: f.capsule.max(fe.end), hart: f.hart })));
                }
                if let (Some(r), Some(c)) = (f.resp, io.cqe) {
                    stages.push(("NVMe/TCP complete", Some(Span { start: r, end: c.start.max(r), hart: f.hart })));
                }
                // Off the core: the remote part, as an async slice (many
                // overlap on one connection).
                let fname = format!("{op} fcid{} ({}:{})", f.cid, f.flow.dst_addr, f.flow.dst_port);
                let conn = format!("{}:{} -> {}:{}", f.flow.src_addr, f.flow.src_port, f.flow.dst_addr, f.flow.dst_port);
                let id = format!("0x{index:x}");
                let end = f.resp.unwrap_or(f.capsule);
                ev.push(json!({"name": fname, "cat": "nvmf", "ph": "b", "id": id, "pid": 3, "tid": f.hart, "ts": self.us(f.capsule),
                    "args": {"io": name, "connection": conn, "r2t_us": f.r2t.map(|t| self.us(t)), "h2c_us": f.h2c.map(|t| self.us(t)), "c2h_us": f.data.map(|t| self.us(t))}}));
                ev.push(json!({"name": fname, "cat": "nvmf", "ph": "e", "id": id, "pid": 3, "tid": f.hart, "ts": self.us(end)}));
            }
            for (stage, s) in stages {
                if let Some(s) = s {
                    if !harts.contains(&s.hart) {
                        harts.push(s.hart);
                    }
                    ev.push(json!({"name": stage, "cat": "dpu", "ph": "X", "pid": 2, "tid": s.hart,
                        "ts": self.us(s.start), "dur": self.us(s.end - s.start), "args": {"io": name, "seq": index}}));
                }
            }
            if let Some(t) = io.msi {
                ev.push(json!({"name": "MSI-X", "cat": "irq", "ph": "i", "s": "t", "pid": 1, "tid": tid, "ts": self.us(t)}));
            }
        }
        for h in harts {
            ev.push(json!({"name": "thread_name", "ph": "M", "pid": 2, "tid": h, "args": {"name": format!("hart {h}")}}));
        }
        if self.ios.iter().any(|io| io.fabric.is_some()) {
            ev.push(json!({"name": "process_name", "ph": "M", "pid": 3, "args": {"name": "NVMe/TCP (capsule sent -> response received)"}}));
        }
        json!({"traceEvents": ev, "displayTimeUnit": "ns"})
    }
}
