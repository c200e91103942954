//! DMA engines (layout: `dpu_hal::regs::dma`).
//!
//! Each channel has a descriptor ring and a completion ring in DPU memory.
//! A write to TAIL hands new descriptors to the channel's engine, which
//! runs them in order: the engine's copy rate, the PCIe link (shared by all
//! engines, per direction) and the host read / posted-write latencies set
//! the completion time. Data moves at completion time. A chain of
//! descriptors ends at one with `FLAG_END`, which writes one completion
//! (first error wins) and may send an MSI-X after the chain's host writes.
//!
//! The engines are a [`Component`]: a TAIL write schedules the new
//! descriptors ([`DmaEngines::kick`]), and the event of each engine's
//! earliest descriptor (payload `a`: the engine) completes what is due.
//! They act through a [`DevCtx`]: DPU memory, the PCIe endpoint, link and
//! host memory, the mailboxes, the event queue.

use crate::devctx::{Component, DevCtx};
use crate::event::{ComponentId, Payload};
use crate::pcie::{Dir, Effect};
use dpu_hal::regs::dma as r;

/// One descriptor: `dpu_hal`'s typed view (the driver writes it with
/// `Desc::words`, the engine reads it with `Desc::from_bytes`: one
/// definition of the layout).
pub use dpu_hal::dma::{Completion, Desc};

#[derive(Clone, Debug, Default)]
pub struct Channel {
    pub ring_base: u64,
    pub ring_size: u32,
    pub notify: u32,
    pub comp_base: u64,
    pub status: u32,
    /// Descriptors handed over by the firmware / taken by the engine.
    pub tail: u32,
    pub head: u32,
    /// Next completion slot and its phase.
    pub comp_index: u32,
    pub phase: bool,
    /// Running status of the current chain.
    pub chain_status: u32,
    pub chain_bytes: u32,
}

pub const STATUS_RUNNING: u32 = 1;
pub const STATUS_BAD_CONFIG: u32 = 2;

/// A descriptor on its way.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    pub start: u64,
    pub done: u64,
    pub channel: usize,
    pub desc: Desc,
}

/// DMA statistics.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct DmaStats {
    pub descriptors: u64,
    pub bytes_h2d: u64,
    pub bytes_d2h: u64,
    pub bytes_local: u64,
    pub completions: u64,
    pub errors: u64,
    /// Transfers failed by the `dma-error` fault.
    pub host_errors: u64,
    /// Bytes run through CRC32C (`OP_CRC32C`).
    pub bytes_crc: u64,
}

/// CRC32C table (reflected polynomial 0x82F63B78).
const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC32C (Castagnoli; RFC 3720 §12.1) of `data`, continuing `prev`, a
/// finished CRC of the bytes before (0 for none): the CRC of the bytes
/// before followed by `data`.
pub fn crc32c(prev: u32, data: &[u8]) -> u32 {
    let mut c = !prev;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub struct DmaEngines {
    /// Its component id (events of its engines).
    pub id: ComponentId,
    pub channels: Vec<Channel>,
    pub per_engine: usize,
    pub engine_free: Vec<u64>,
    pub inflight: Vec<std::collections::VecDeque<InFlight>>,
    pub bytes_per_cycle: u64,
    pub desc_cycles: u64,
    pub stats: DmaStats,
    /// Fault injection: (function, from, until): descriptors of that
    /// function started in [from, until) do not complete before `until`
    /// (a hung transfer).
    pub stall: Option<(u16, u64, u64)>,
    /// Fault injection: host-side errors (`ST_HOST_ERROR`) for the
    /// descriptors of these functions that execute while the flag holds.
    pub host_errors: std::collections::BTreeSet<u16>,
}

impl DmaEngines {
    pub fn new(id: ComponentId, engines: usize, per_engine: usize, bytes_per_cycle: u64, desc_cycles: u64) -> DmaEngines {
        DmaEngines {
            id,
            channels: vec![Channel::default(); engines * per_engine],
            per_engine,
            engine_free: vec![0; engines],
            inflight: vec![Default::default(); engines],
            bytes_per_cycle,
            desc_cycles,
            stats: DmaStats::default(),
            stall: None,
            host_errors: Default::default(),
        }
    }

    /// Engine cycles for a descriptor of `len` bytes.
    pub fn engine_cycles(&self, len: u32) -> u64 {
        self.desc_cycles + u64::from(len).div_ceil(self.bytes_per_cycle)
    }

    /// Register read of channel registers.
    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let ch = (off / r::CHANNEL) as usize;
        let reg = off % r::CHANNEL;
        let c = self.channels.get(ch)?;
        let v = match (reg, size) {
            (r::RING_BASE, 8) => c.ring_base,
            (r::RING_SIZE, 4) => u64::from(c.ring_size),
            (r::NOTIFY, 4) => u64::from(c.notify),
            (r::COMP_BASE, 8) => c.comp_base,
            (r::STATUS, 4) => u64::from(c.status),
            (r::TAIL, 4) => u64::from(c.tail),
            (r::HEAD, 4) => u64::from(c.head),
            (r::CONTROL, 4) => u64::from(c.status == STATUS_RUNNING),
            _ => return None,
        };
        Some(v)
    }

    /// Register write; returns Some(channel) when TAIL moved (work to start).
    pub fn write(&mut self, off: u64, size: u8, v: u64) -> Result<Option<usize>, ()> {
        let ch = (off / r::CHANNEL) as usize;
        let reg = off % r::CHANNEL;
        let c = self.channels.get_mut(ch).ok_or(())?;
        match (reg, size) {
            (r::RING_BASE, 8) => c.ring_base = v,
            (r::RING_SIZE, 4) => c.ring_size = v as u32,
            (r::NOTIFY, 4) => c.notify = v as u32,
            (r::COMP_BASE, 8) => c.comp_base = v,
            (r::CONTROL, 4) => {
                if v & 1 == 0 {
                    c.status = 0;
                } else if c.ring_size.is_power_of_two()
                    && (2..=4096).contains(&c.ring_size)
                    && c.ring_base % 32 == 0
                    && c.comp_base % 16 == 0
                {
                    c.status = STATUS_RUNNING;
                } else {
                    c.status = STATUS_BAD_CONFIG;
                }
                c.head = 0;
                c.tail = 0;
                c.comp_index = 0;
                c.phase = true;
                c.chain_status = r::ST_OK;
                c.chain_bytes = 0;
            }
            (r::TAIL, 4) => {
                if c.status != STATUS_RUNNING {
                    return Ok(None);
                }
                c.tail = v as u32;
                return Ok(Some(ch));
            }
            _ => return Err(()),
        }
        Ok(None)
    }

    /// Firmware moved channel `ch`'s TAIL: schedule the new descriptors.
    pub fn kick(&mut self, ch: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let engine = ch / self.per_engine;
        loop {
            let c = &self.channels[ch];
            if c.head == c.tail {
                break;
            }
            let slot = u64::from(c.head & (c.ring_size - 1));
            let addr = c.ring_base + slot * r::DESC_SIZE as u64;
            let mut b = [0u8; 32];
            let desc = if ctx.mem.read(addr, &mut b).is_some() {
                Desc::from_bytes(&b)
            } else {
                // The ring itself is not RAM: a bad descriptor with the END flag.
                Desc { host: 0, local: 0, len: 0, function: 0, op: 0xff, flags: r::FLAG_END, msix: 0, cookie: 0 }
            };
            self.channels[ch].head = self.channels[ch].head.wrapping_add(1);
            let start = now.max(self.engine_free[engine]);
            let engine_end = start + self.engine_cycles(desc.len);
            self.engine_free[engine] = engine_end;
            let len = u64::from(desc.len);
            let link = &mut *ctx.pcie.link;
            let mut done = match desc.op {
                r::OP_H2D => engine_end.max(link.send(Dir::Down, start + link.host_read_latency, len)),
                r::OP_D2H => engine_end.max(link.send(Dir::Up, start, len)) + link.posted_latency,
                _ => engine_end,
            };
            if let Some((f, from, until)) = self.stall {
                if f == desc.function && (from..until).contains(&start) {
                    // A hung transfer holds its engine.
                    done = until;
                    self.engine_free[engine] = self.engine_free[engine].max(until);
                }
            }
            self.stats.descriptors += 1;
            self.inflight[engine].push_back(InFlight { start, done, channel: ch, desc });
            ctx.events.push(done, self.id, Payload::new(0, engine as u64, 0));
        }
    }

    /// Checks a descriptor and moves its data; returns its status.
    fn execute(&mut self, d: &Desc, ctx: &mut DevCtx<'_>) -> u32 {
        let len = u64::from(d.len);
        if d.len == 0 || d.len > r::MAX_LEN || d.op > r::OP_CRC32C {
            return r::ST_BAD_DESCRIPTOR;
        }
        let mem = &mut ctx.mem;
        if d.op == r::OP_CRC32C {
            // The running CRC word (in the host field) and the data are
            // DPU memory; the data is only read.
            if d.host % 4 != 0 {
                return r::ST_BAD_DESCRIPTOR;
            }
            if !mem.is_ram(d.local, len) || !mem.is_writable_ram(d.host, 4) {
                return r::ST_LOCAL_FAULT;
            }
            let mut buf = vec![0u8; d.len as usize];
            mem.read(d.local, &mut buf);
            let mut w = [0u8; 4];
            mem.read(d.host, &mut w);
            let crc = crc32c(u32::from_le_bytes(w), &buf);
            mem.write(d.host, &crc.to_le_bytes());
            self.stats.bytes_crc += len;
            return r::ST_OK;
        }
        if !mem.is_writable_ram(d.local, len) || (d.op == r::OP_COPY && !mem.is_ram(d.host, len)) {
            return r::ST_LOCAL_FAULT;
        }
        let mut buf = vec![0u8; d.len as usize];
        match d.op {
            r::OP_H2D | r::OP_D2H => {
                if !ctx.pcie.endpoint.bus_master(usize::from(d.function)) {
                    return r::ST_NO_BUS_MASTER;
                }
                if self.host_errors.contains(&d.function) {
                    self.stats.host_errors += 1;
                    return r::ST_HOST_ERROR;
                }
                let mut host = ctx.pcie.host_mem.borrow_mut();
                if !host.allowed(d.function, d.host, len) {
                    host.denied += 1;
                    return r::ST_HOST_DENIED;
                }
                if d.op == r::OP_H2D {
                    host.read(d.host, &mut buf);
                    drop(host);
                    mem.write(d.local, &buf);
                    self.stats.bytes_h2d += len;
                } else {
                    mem.read(d.local, &mut buf);
                    host.write(d.host, &buf);
                    self.stats.bytes_d2h += len;
                }
            }
            r::OP_COPY => {
                mem.read(d.host, &mut buf);
                mem.write(d.local, &buf);
                self.stats.bytes_local += len;
            }
            _ => {
                mem.write(d.local, &buf);
                self.stats.bytes_local += len;
            }
        }
        r::ST_OK
    }

    /// Completes every descriptor of `engine` due now.
    pub fn complete_due(&mut self, engine: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        while let Some(f) = self.inflight[engine].front() {
            if f.done > now {
                break;
            }
            let f = self.inflight[engine].pop_front().unwrap();
            let st = self.execute(&f.desc, ctx);
            if let Some(t) = ctx.iotrace {
                let d = &f.desc;
                if st == r::ST_OK && (d.op == r::OP_H2D || d.op == r::OP_D2H) {
                    // Writes of whole 16-byte entries may be CQEs (the
                    // firmware posts consecutive ones in one write).
                    let mut b = vec![0u8; if d.op == r::OP_D2H && d.len % 16 == 0 && d.len <= 4096 { d.len as usize } else { 0 }];
                    let bytes = (!b.is_empty() && ctx.mem.read(d.local, &mut b).is_some()).then_some(&b[..]);
                    let hart = self.channels[f.channel].notify & 0xffff;
                    t.borrow_mut().dma(f.start, now, hart, d.function, d.op == r::OP_D2H, d.host, d.len, bytes);
                }
            }
            let c = &mut self.channels[f.channel];
            if c.chain_status == r::ST_OK {
                c.chain_status = st;
            }
            if st == r::ST_OK {
                c.chain_bytes = c.chain_bytes.wrapping_add(f.desc.len);
            }
            if f.desc.flags & r::FLAG_END == 0 {
                continue;
            }
            let status = std::mem::replace(&mut c.chain_status, r::ST_OK);
            let bytes = std::mem::replace(&mut c.chain_bytes, 0);
            let slot = u64::from(c.comp_index & (c.ring_size - 1));
            let addr = c.comp_base + slot * r::COMP_SIZE as u64;
            let e = Completion { cookie: f.desc.cookie, status, bytes }.entry(c.phase);
            c.comp_index = c.comp_index.wrapping_add(1);
            if c.comp_index & (c.ring_size - 1) == 0 {
                c.phase = !c.phase;
            }
            let notify = c.notify;
            self.stats.completions += 1;
            if status != r::ST_OK {
                self.stats.errors += 1;
            }
            ctx.mem.write(addr, &e);
            if f.desc.flags & r::FLAG_MSIX != 0 && status == r::ST_OK {
                let mut fx = Vec::new();
                ctx.pcie.endpoint.msix(usize::from(f.desc.function), u32::from(f.desc.msix), &mut fx);
                // The data is already visible to the host at `now`; the
                // MSI-X follows it (posted writes stay ordered).
                for e in fx {
                    if let Effect::Msi { addr, data, .. } = e {
                        ctx.events.push(now, ctx.pcie.host, crate::host::msi_payload(addr, data));
                    }
                }
            }
            if notify & r::NOTIFY_ENABLE != 0 {
                ctx.irq.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
            }
        }
    }
}

impl Component for DmaEngines {
    /// Engine `payload.a`'s earliest descriptor is due.
    fn on_event(&mut self, payload: Payload, ctx: &mut DevCtx<'_>) {
        self.complete_due(payload.a as usize, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    /// CRC-32C check value (RFC 3720 §B.4 polynomial; the catalogue's
    /// check of "123456789" is 0xE3069283) and the iSCSI test vector of
    /// 32 zero bytes (RFC 3720 §B.4: aa 36 91 8a, little-endian).
    #[test]
    fn crc32c_known_answers() {
        assert_eq!(crc32c(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(0, &[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(0, &[0xffu8; 32]), 0x62A8_AB43);
        // The crc crate's CRC-32/ISCSI agrees on arbitrary data.
        let data: Vec<u8> = (0..4099u32).map(|i| (i * 131 + 7) as u8).collect();
        let reference = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&data);
        assert_eq!(crc32c(0, &data), reference);
    }

    /// A chain continues the CRC: the CRC of the concatenation.
    #[test]
    fn crc32c_chains() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        let (a, b) = data.split_at(3_333);
        assert_eq!(crc32c(crc32c(0, a), b), crc32c(0, &data));
    }
}
