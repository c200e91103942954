//! The bus's PCIe side: endpoint effects (notifications, MSI-X), DMA
//! execution between host and DPU memory, and host accesses arriving over
//! the link.

use crate::bus::Bus;
use crate::dma::{Desc, InFlight};
use crate::event::Event;
use crate::pcie::{CfgError, Dir, Effect};
use dpu_hal::regs::{dma as r, mailbox, pcie as pregs};

/// A host access travelling down the link.
#[derive(Clone, Copy, Debug)]
pub enum HostOp {
    MmioRead { addr: u64, size: u8 },
    MmioWrite { addr: u64, size: u8, value: u64 },
    CfgRead { function: u16, off: u16, size: u8 },
    CfgWrite { function: u16, off: u16, size: u8, value: u32 },
}

/// What the endpoint answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostReply {
    Value(u64),
    /// Unsupported Request (no such function / address, bad access): reads
    /// complete with all ones.
    Unsupported,
    /// Configuration Request Retry Status.
    Retry,
    /// Posted write accepted.
    Done,
}

impl Bus {
    /// Carries out endpoint effects at time `now`.
    pub fn apply_effects(&mut self, now: u64, effects: &mut Vec<Effect>) {
        for e in effects.drain(..) {
            match e {
                Effect::Notify(h) => self.ring_mailbox(h, pregs::MAILBOX_BIT),
                Effect::Msi { addr, data, .. } => {
                    let end = self.link.send(Dir::Up, now, 4);
                    self.events.push(end + self.link.posted_latency, Event::HostMsi { addr, data });
                }
            }
        }
    }

    /// A device rings hart `h`'s mailbox.
    pub fn ring_mailbox(&mut self, h: u32, bits: u64) {
        let off = u64::from(h) * mailbox::SLOT + mailbox::DOORBELL;
        self.mailbox.write(off, 8, bits, &mut self.plic, &mut self.lines);
    }

    /// Host access arriving at the endpoint at `now`.
    pub fn host_access(&mut self, op: HostOp, now: u64) -> HostReply {
        let mut fx = Vec::new();
        let reply = match op {
            HostOp::MmioRead { addr, size } => match self.pcie.decode(addr) {
                Some((f, off)) => self.pcie.bar_read(f, off, size).map_or(HostReply::Unsupported, HostReply::Value),
                None => {
                    self.pcie.stats.unsupported_requests += 1;
                    HostReply::Unsupported
                }
            },
            HostOp::MmioWrite { addr, size, value } => {
                match self.pcie.decode(addr) {
                    Some((f, off)) => {
                        let db = dpu_hal::regs::bar0::DOORBELL;
                        if let (Some(t), true) = (&self.iotrace, off >= db && off < db + 4 * pregs::DOORBELLS) {
                            let index = (off - db) / 4;
                            if index % 2 == 0 {
                                t.borrow_mut().doorbell(now, f as u16, (index / 2) as u16);
                            }
                        }
                        self.pcie.bar_write(f, off, size, value, &mut fx)
                    }
                    None => self.pcie.stats.unsupported_requests += 1,
                }
                HostReply::Done
            }
            HostOp::CfgRead { function, off, size } => {
                match self.pcie.cfg_read(usize::from(function), usize::from(off), usize::from(size)) {
                    Ok(v) => HostReply::Value(u64::from(v)),
                    Err(CfgError::Retry) => HostReply::Retry,
                    Err(_) => HostReply::Unsupported,
                }
            }
            HostOp::CfgWrite { function, off, size, value } => {
                match self.pcie.cfg_write(usize::from(function), usize::from(off), usize::from(size), value, &mut fx) {
                    Ok(()) => HostReply::Done,
                    Err(CfgError::Retry) => HostReply::Retry,
                    Err(_) => HostReply::Unsupported,
                }
            }
        };
        self.apply_effects(now, &mut fx);
        reply
    }

    /// Firmware moved a channel's TAIL: schedule the new descriptors.
    pub fn dma_kick(&mut self, ch: usize, now: u64) {
        let engine = ch / self.dma.per_engine;
        loop {
            let c = &self.dma.channels[ch];
            if c.head == c.tail {
                break;
            }
            let slot = u64::from(c.head & (c.ring_size - 1));
            let addr = c.ring_base + slot * r::DESC_SIZE as u64;
            let mut b = [0u8; 32];
            let desc = if self.mem.read_bytes(addr, &mut b).is_some() {
                Desc::from_bytes(&b)
            } else {
                // The ring itself is not RAM: a bad descriptor with the END flag.
                Desc { host: 0, local: 0, len: 0, function: 0, op: 0xff, flags: r::FLAG_END, msix: 0, cookie: 0 }
            };
            self.dma.channels[ch].head = self.dma.channels[ch].head.wrapping_add(1);
            let start = now.max(self.dma.engine_free[engine]);
            let engine_end = start + self.dma.engine_cycles(desc.len);
            self.dma.engine_free[engine] = engine_end;
            let len = u64::from(desc.len);
            let mut done = match desc.op {
                r::OP_H2D => engine_end.max(self.link.send(Dir::Down, start + self.link.host_read_latency, len)),
                r::OP_D2H => engine_end.max(self.link.send(Dir::Up, start, len)) + self.link.posted_latency,
                _ => engine_end,
            };
            if let Some((f, from, until)) = self.dma.stall {
                if f == desc.function && (from..until).contains(&start) {
                    // A hung transfer holds its engine.
                    done = until;
                    self.dma.engine_free[engine] = self.dma.engine_free[engine].max(until);
                }
            }
            self.dma.stats.descriptors += 1;
            self.dma.inflight[engine].push_back(InFlight { start, done, channel: ch, desc });
            self.events.push(done, Event::DmaDone { engine: engine as u32 });
        }
    }

    /// Checks a descriptor and moves its data; returns its status.
    fn dma_execute(&mut self, d: &Desc) -> u32 {
        let len = u64::from(d.len);
        if d.len == 0 || d.len > r::MAX_LEN || d.op > r::OP_CRC32C {
            return r::ST_BAD_DESCRIPTOR;
        }
        if d.op == r::OP_CRC32C {
            // The running CRC word (in the host field) and the data are
            // DPU memory; the data is only read.
            if d.host % 4 != 0 {
                return r::ST_BAD_DESCRIPTOR;
            }
            if !self.mem.range_is_ram(d.local, len) || !self.mem.range_is_ram(d.host, 4) || !self.mem.region_of(d.host).is_some_and(|reg| reg.writable) {
                return r::ST_LOCAL_FAULT;
            }
            let mut buf = vec![0u8; d.len as usize];
            self.mem.read_bytes(d.local, &mut buf);
            let mut w = [0u8; 4];
            self.mem.read_bytes(d.host, &mut w);
            let crc = crate::dma::crc32c(u32::from_le_bytes(w), &buf);
            self.dma_write_local(d.host, &crc.to_le_bytes());
            self.dma.stats.bytes_crc += len;
            return r::ST_OK;
        }
        let local_ok = |bus: &Bus, a: u64| bus.mem.region_of(a).is_some_and(|reg| reg.writable) && bus.mem.range_is_ram(a, len);
        if !local_ok(self, d.local) || (d.op == r::OP_COPY && !self.mem.range_is_ram(d.host, len)) {
            return r::ST_LOCAL_FAULT;
        }
        let mut buf = vec![0u8; d.len as usize];
        match d.op {
            r::OP_H2D | r::OP_D2H => {
                if !self.pcie.bus_master(usize::from(d.function)) {
                    return r::ST_NO_BUS_MASTER;
                }
                if self.dma.host_errors.contains(&d.function) {
                    self.dma.stats.host_errors += 1;
                    return r::ST_HOST_ERROR;
                }
                let mut host = self.host_mem.borrow_mut();
                if !host.allowed(d.function, d.host, len) {
                    host.denied += 1;
                    return r::ST_HOST_DENIED;
                }
                if d.op == r::OP_H2D {
                    host.read(d.host, &mut buf);
                    drop(host);
                    self.dma_write_local(d.local, &buf);
                    self.dma.stats.bytes_h2d += len;
                } else {
                    self.mem.read_bytes(d.local, &mut buf);
                    host.write(d.host, &buf);
                    self.dma.stats.bytes_d2h += len;
                }
            }
            r::OP_COPY => {
                self.mem.read_bytes(d.host, &mut buf);
                self.dma_write_local(d.local, &buf);
                self.dma.stats.bytes_local += len;
            }
            _ => {
                self.dma_write_local(d.local, &buf);
                self.dma.stats.bytes_local += len;
            }
        }
        r::ST_OK
    }

    /// DMA write into DPU memory: breaks LR/SC reservations; memory
    /// records what it wrote into code pages (decoded code is dropped).
    pub(crate) fn dma_write_local(&mut self, addr: u64, data: &[u8]) {
        let _ = self.mem.write_bytes(addr, data);
        self.snoop_store(addr, data.len() as u64);
    }

    /// Completes every descriptor of `engine` due at `now`.
    pub fn dma_done(&mut self, engine: usize, now: u64) {
        while let Some(f) = self.dma.inflight[engine].front() {
            if f.done > now {
                break;
            }
            let f = self.dma.inflight[engine].pop_front().unwrap();
            let st = self.dma_execute(&f.desc);
            if let Some(t) = &self.iotrace {
                let d = &f.desc;
                if st == r::ST_OK && (d.op == r::OP_H2D || d.op == r::OP_D2H) {
                    // Writes of whole 16-byte entries may be CQEs (the
                    // firmware posts consecutive ones in one write).
                    let mut b = vec![0u8; if d.op == r::OP_D2H && d.len % 16 == 0 && d.len <= 4096 { d.len as usize } else { 0 }];
                    let bytes = (!b.is_empty() && self.mem.read_bytes(d.local, &mut b).is_some()).then_some(&b[..]);
                    let hart = self.dma.channels[f.channel].notify & 0xffff;
                    t.borrow_mut().dma(f.start, now, hart, d.function, d.op == r::OP_D2H, d.host, d.len, bytes);
                }
            }
            let c = &mut self.dma.channels[f.channel];
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
            let e = crate::dma::Completion { cookie: f.desc.cookie, status, bytes }.entry(c.phase);
            c.comp_index = c.comp_index.wrapping_add(1);
            if c.comp_index & (c.ring_size - 1) == 0 {
                c.phase = !c.phase;
            }
            let notify = c.notify;
            self.dma.stats.completions += 1;
            if status != r::ST_OK {
                self.dma.stats.errors += 1;
            }
            self.dma_write_local(addr, &e);
            if f.desc.flags & r::FLAG_MSIX != 0 && status == r::ST_OK {
                let mut fx = Vec::new();
                self.pcie.msix(usize::from(f.desc.function), u32::from(f.desc.msix), &mut fx);
                // The data is already visible to the host at `now`; the
                // MSI-X follows it (posted writes stay ordered).
                for e in fx {
                    if let Effect::Msi { addr, data, .. } = e {
                        self.events.push(now, Event::HostMsi { addr, data });
                    }
                }
            }
            if notify & r::NOTIFY_ENABLE != 0 {
                self.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
            }
        }
    }
}
