//! The erasure-coding engine at work ([`super::ec`] holds its registers
//! and queues, [`super::gf`] the Reed-Solomon arithmetic): descriptors
//! handed over by a TAIL write run one after another on its datapath
//! (`engine_cycles`, the chip file's rates); fragments are read and
//! written in DPU memory when a descriptor is done, and a chain's
//! completion rings the queue's NOTIFY hart with the engine's mailbox bit.
//!
//! A [`Component`]: the event of its earliest descriptor completes what
//! is due. It acts through a [`DevCtx`] (DPU memory, the mailboxes).

use super::ec::{Desc as EDesc, EcEngine, Job as EJob};
use super::gf;
use crate::devctx::{Component, DevCtx};
use crate::event::Payload;
use dpu_hal::regs::{accel as st, ec as er, queue as q};

impl EcEngine {
    /// Firmware moved TAIL of EC queue `qi`.
    pub fn kick(&mut self, qi: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        loop {
            let Some(addr) = self.queues[qi].next_descriptor() else { break };
            let mut b = [0u8; 64];
            let desc = if ctx.mem.read(addr, &mut b).is_some() {
                EDesc::from_bytes(&b)
            } else {
                EDesc { op: 0xff, flags: q::FLAG_END, ..EDesc::default() }
            };
            let start = now.max(self.free_at);
            let other = self.last_queue != qi;
            self.last_queue = qi;
            if start > now && other {
                self.stats.contended += 1;
                self.stats.wait_cycles += start - now;
            }
            let cycles = self.engine_cycles(&desc);
            self.stats.busy_cycles += cycles;
            let done = start + cycles;
            self.free_at = done;
            self.stats.descriptors += 1;
            self.inflight.push_back(EJob { start, done, queue: qi, desc });
            ctx.events.push(done, self.id, Payload::default());
        }
    }

    /// Completes the EC descriptors due at `now`.
    pub fn complete_due(&mut self, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        while let Some(j) = self.inflight.front() {
            if j.done > now {
                break;
            }
            let j = self.inflight.pop_front().unwrap();
            let d = j.desc;
            let status = if self.queues[j.queue].chain_failed() { st::ST_OK } else { self.execute(&d, ctx) };
            let written = d.outputs() * d.len;
            let end = d.flags & q::FLAG_END != 0;
            let Some((addr, entry, notify, chain_status)) = self.queues[j.queue].record(status, written, end, d.cookie) else { continue };
            self.stats.completions += 1;
            if chain_status != st::ST_OK {
                self.stats.errors += 1;
            }
            ctx.mem.write(addr, &entry);
            if notify & q::NOTIFY_ENABLE != 0 {
                ctx.irq.ring_mailbox(notify & 0xffff, er::MAILBOX_BIT);
            }
        }
    }

    /// Runs one EC descriptor; its status.
    fn execute(&mut self, d: &EDesc, ctx: &mut DevCtx<'_>) -> u32 {
        if d.op != er::OP_ENCODE && d.op != er::OP_RECONSTRUCT {
            return st::ST_BAD_DESCRIPTOR;
        }
        let (k, m) = (usize::from(d.k), usize::from(d.m));
        if d.k == 0 || d.m == 0 || d.k > self.max_k || d.m > self.max_m {
            return st::ST_BAD_GEOMETRY;
        }
        let n = k + m;
        let all = (1u64 << n) - 1;
        if d.op == er::OP_RECONSTRUCT && (d.present & !all != 0 || d.rebuild & !all != 0 || d.present & d.rebuild != 0 || d.rebuild == 0) {
            return st::ST_BAD_GEOMETRY;
        }
        if d.len == 0 || d.len % 8 != 0 || d.len > er::MAX_LEN {
            return st::ST_BAD_LENGTH;
        }
        let len = u64::from(d.len);
        if d.frags % 8 != 0 {
            return st::ST_BAD_LENGTH;
        }
        if !ctx.mem.is_ram(d.frags, n as u64 * 8) {
            return st::ST_LOCAL_FAULT;
        }
        let mut table = vec![0u8; n * 8];
        ctx.mem.read(d.frags, &mut table);
        let addrs: Vec<u64> = table.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        let (inputs, outputs): (Vec<usize>, Vec<usize>) = match d.op {
            er::OP_ENCODE => ((0..k).collect(), (k..n).collect()),
            _ => {
                if d.present.count_ones() < d.k.into() {
                    return st::ST_NOT_RECOVERABLE;
                }
                ((0..n).filter(|i| d.present >> i & 1 == 1).take(k).collect(), (0..n).filter(|i| d.rebuild >> i & 1 == 1).collect())
            }
        };
        for &i in inputs.iter().chain(&outputs) {
            if addrs[i] % 8 != 0 {
                return st::ST_BAD_LENGTH;
            }
        }
        for &i in &inputs {
            if !ctx.mem.is_ram(addrs[i], len) {
                return st::ST_LOCAL_FAULT;
            }
        }
        for &i in &outputs {
            if !ctx.mem.is_writable_ram(addrs[i], len) {
                return st::ST_LOCAL_FAULT;
            }
        }
        let mut frags = vec![Vec::new(); n];
        for &i in &inputs {
            let mut b = vec![0u8; d.len as usize];
            ctx.mem.read(addrs[i], &mut b);
            frags[i] = b;
        }
        let results: Vec<(usize, Vec<u8>)> = if d.op == er::OP_ENCODE {
            let refs: Vec<&[u8]> = frags[..k].iter().map(|f| f.as_slice()).collect();
            gf::encode(k, m, &refs).into_iter().enumerate().map(|(i, p)| (k + i, p)).collect()
        } else {
            let empty = vec![0u8; d.len as usize];
            let refs: Vec<&[u8]> = frags.iter().map(|f| if f.is_empty() { empty.as_slice() } else { f.as_slice() }).collect();
            match gf::reconstruct(k, m, &refs, d.present, d.rebuild) {
                Some(v) => v,
                None => return st::ST_NOT_RECOVERABLE,
            }
        };
        for (i, data) in results {
            ctx.mem.write(addrs[i], &data);
            if d.op == er::OP_ENCODE {
                self.stats.encoded_bytes += len;
            } else {
                self.stats.rebuilt_bytes += len;
            }
        }
        st::ST_OK
    }
}

impl Component for EcEngine {
    /// The engine's earliest descriptor is due.
    fn on_event(&mut self, _payload: Payload, ctx: &mut DevCtx<'_>) {
        self.complete_due(ctx);
    }
}
