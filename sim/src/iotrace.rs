//! Per-I/O trace in the Chrome/Perfetto JSON format (`--trace FILE`).
//!
//! Built from what the simulator observes, with no firmware cooperation:
//! the host model reports submissions and completions, the endpoint the
//! doorbell arrivals, the DMA engines every transfer (SQE fetch, data,
//! CQE) and the host the MSI-X arrivals. Transfers are matched to commands
//! by host address (SQ slot, data buffer) or by the CQE's contents.

use rustc_hash::FxHashMap;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    hart: u32,
}

#[derive(Clone, Debug)]
struct Io {
    func: u16,
    qid: u16,
    cid: u16,
    opcode: u8,
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
            dropped: 0,
        }
    }

    /// The host created queue pair `qid` of `func` (CQ entries of 16 bytes).
    pub fn queue(&mut self, func: u16, qid: u16, cq: u64, entries: u16, irq: u32) {
        self.queues.insert((func, qid), Queue { cq, cq_len: 16 * u64::from(entries) });
        self.irqs.insert(irq, (func, qid));
    }

    /// The host wrote an SQE (before ringing the doorbell).
    pub fn submit(&mut self, now: u64, func: u16, qid: u16, cid: u16, opcode: u8, sq_slot: u64, data: &[(u64, u32)]) {
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
        if to_host && len == 16 {
            if let Some(b) = bytes {
                let qid = u16::from_le_bytes([b[10], b[11]]);
                let cid = u16::from_le_bytes([b[12], b[13]]);
                let in_cq = self.queues.get(&(func, qid)).is_some_and(|q| lo >= q.cq && lo < q.cq + q.cq_len);
                if in_cq {
                    if let Some(&i) = self.open.get(&(func, qid, cid)) {
                        self.ios[i].cqe = Some(span);
                        return;
                    }
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
        for io in &self.ios {
            let op = match io.opcode {
                0x01 => "write",
                0x02 => "read",
                0x00 => "flush",
                _ => "cmd",
            };
            let tid = u32::from(io.func) * 1000 + u32::from(io.qid);
            let name = format!("{op} fn{} q{} cid{}", io.func, io.qid, io.cid);
            let end = io.done.unwrap_or(io.submit);
            ev.push(json!({"name": name, "cat": "io", "ph": "X", "pid": 1, "tid": tid,
                "ts": self.us(io.submit), "dur": self.us(end - io.submit),
                "args": {"doorbell_us": io.doorbell.map(|t| self.us(t)), "msix_us": io.msi.map(|t| self.us(t))}}));
            for (stage, s) in [("SQ fetch", io.fetch), ("data DMA", io.dma), ("CQE + MSI-X", io.cqe)] {
                if let Some(s) = s {
                    if !harts.contains(&s.hart) {
                        harts.push(s.hart);
                    }
                    ev.push(json!({"name": stage, "cat": "dpu", "ph": "X", "pid": 2, "tid": s.hart,
                        "ts": self.us(s.start), "dur": self.us(s.end - s.start), "args": {"io": name}}));
                }
            }
            if let Some(t) = io.msi {
                ev.push(json!({"name": "MSI-X", "cat": "irq", "ph": "i", "s": "t", "pid": 1, "tid": tid, "ts": self.us(t)}));
            }
        }
        for h in harts {
            ev.push(json!({"name": "thread_name", "ph": "M", "pid": 2, "tid": h, "args": {"name": format!("hart {h} (DMA channel owner)")}}));
        }
        json!({"traceEvents": ev, "displayTimeUnit": "ns"})
    }
}
