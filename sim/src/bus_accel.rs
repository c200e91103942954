//! The bus's accelerator side: crypto engines, the erasure-coding engine
//! and the TRNG ([`crate::accel`]) reading and writing DPU memory and
//! (crypto) host memory through the PCIe link, with their timing.
//!
//! Like the DMA engines, a write to a queue's TAIL hands descriptors over;
//! each descriptor takes its engine's datapath for `engine_cycles` (the
//! chip file's rates) after the work queued on that engine before it, by
//! any queue (contention), and, with a host source or destination, the
//! link time of its bytes. Data moves and the completion is written when
//! the descriptor is done; a chain's completion rings the queue's NOTIFY
//! hart with the engine's mailbox bit.

use crate::accel::crypto::{self, Desc as CDesc, Job as CJob, KeySlot};
use crate::accel::ec::{Desc as EDesc, Job as EJob};
use crate::accel::gf;
use crate::bus::Bus;
use crate::event::Event;
use crate::pcie::Dir;
use dpu_hal::regs::{accel as st, crypto as cr, ec as er, queue as q};
use sha2::Digest;

/// Where a crypto descriptor reads or writes.
#[derive(Clone, Copy)]
enum Side {
    Dpu(u64),
    Host { function: u16, addr: u64 },
}

impl Bus {
    // ------------------------------------------------------------ crypto

    /// Firmware moved TAIL of queue `qi` of crypto engine `e`.
    pub fn crypto_kick(&mut self, e: usize, qi: usize, now: u64) {
        loop {
            let Some(addr) = self.crypto.engines[e].queues[qi].next_descriptor() else { break };
            let mut b = [0u8; 64];
            let desc = if self.mem.read_bytes(addr, &mut b).is_some() {
                CDesc::from_bytes(&b)
            } else {
                // The ring is not RAM: a bad descriptor that ends its chain.
                CDesc { op: 0xff, flags: q::FLAG_END, ..CDesc::default() }
            };
            let cycles = self.crypto.engine_cycles(&desc);
            let eng = &mut self.crypto.engines[e];
            let start = now.max(eng.free_at);
            if start > now && eng.last_queue != qi {
                // Waiting behind another queue's work (not its own chain).
                self.crypto.stats.contended += 1;
                self.crypto.stats.wait_cycles += start - now;
            }
            eng.last_queue = qi;
            let engine_end = start + cycles;
            eng.free_at = engine_end;
            self.crypto.stats.busy_cycles += cycles;
            let (rd, wr) = desc.io_lengths();
            let mut done = engine_end;
            if desc.flags & cr::FLAG_SRC_HOST != 0 {
                done = done.max(self.link.send(Dir::Down, start + self.link.host_read_latency, rd));
            }
            if desc.flags & cr::FLAG_DST_HOST != 0 {
                done = done.max(self.link.send(Dir::Up, engine_end, wr) + self.link.posted_latency);
            }
            self.crypto.stats.descriptors += 1;
            self.crypto.engines[e].inflight.push_back(CJob { start, done, queue: qi, desc });
            self.events.push(done, Event::CryptoDone { engine: e as u32 });
        }
    }

    /// Completes the descriptors of crypto engine `e` due at `now`.
    pub fn crypto_done(&mut self, e: usize, now: u64) {
        while let Some(j) = self.crypto.engines[e].inflight.front() {
            if j.done > now {
                break;
            }
            let j = self.crypto.engines[e].inflight.pop_front().unwrap();
            let d = j.desc;
            let end = d.flags & q::FLAG_END != 0;
            let status = if self.crypto.engines[e].queues[j.queue].chain_failed() {
                st::ST_OK // skipped: the chain already failed
            } else {
                self.crypto_execute(e, j.queue, &d)
            };
            if end {
                // A chain's SHA-256 ends with it (finished or failed).
                self.crypto.engines[e].sha[j.queue] = None;
            }
            let eng = &mut self.crypto.engines[e];
            if status == st::ST_OK {
                eng.descriptors += 1;
                eng.bytes += u64::from(d.len);
                self.crypto.stats.bytes += u64::from(d.len);
            }
            if status == st::ST_AUTH_FAILED {
                self.crypto.stats.auth_failures += 1;
            }
            let (_, wr) = d.io_lengths();
            let Some((addr, entry, notify, chain_status)) = eng.queues[j.queue].record(status, wr as u32, end, d.cookie) else { continue };
            self.crypto.stats.completions += 1;
            if chain_status != st::ST_OK {
                self.crypto.stats.errors += 1;
            }
            self.dma_write_local(addr, &entry);
            if notify & q::NOTIFY_ENABLE != 0 {
                self.ring_mailbox(notify & 0xffff, cr::MAILBOX_BIT);
            }
        }
    }

    /// Checks that `len` bytes at `side` may be read (`write` false) or
    /// written; the status that refuses it.
    fn side_check(&mut self, side: Side, len: u64, write: bool) -> u32 {
        match side {
            Side::Dpu(a) => {
                let ok = self.mem.range_is_ram(a, len) && (!write || self.mem.region_of(a).is_some_and(|r| r.writable));
                if ok {
                    st::ST_OK
                } else {
                    st::ST_LOCAL_FAULT
                }
            }
            Side::Host { function, addr } => {
                if !self.pcie.bus_master(usize::from(function)) {
                    return st::ST_NO_BUS_MASTER;
                }
                let mut h = self.host_mem.borrow_mut();
                if !h.allowed(function, addr, len) {
                    h.denied += 1;
                    return st::ST_HOST_DENIED;
                }
                st::ST_OK
            }
        }
    }

    fn side_read(&mut self, side: Side, buf: &mut [u8]) {
        match side {
            Side::Dpu(a) => {
                self.mem.read_bytes(a, buf);
            }
            Side::Host { addr, .. } => {
                self.host_mem.borrow_mut().read(addr, buf);
            }
        }
    }

    fn side_write(&mut self, side: Side, data: &[u8]) {
        match side {
            Side::Dpu(a) => self.dma_write_local(a, data),
            Side::Host { addr, .. } => {
                self.host_mem.borrow_mut().write(addr, data);
            }
        }
    }

    /// Runs one crypto descriptor; its status. Nothing is written unless
    /// every check passed (and, for GCM open, the tag matched).
    fn crypto_execute(&mut self, e: usize, qi: usize, d: &CDesc) -> u32 {
        let src = if d.flags & cr::FLAG_SRC_HOST != 0 { Side::Host { function: d.src_fn, addr: d.src } } else { Side::Dpu(d.src) };
        let dst = if d.flags & cr::FLAG_DST_HOST != 0 { Side::Host { function: d.dst_fn, addr: d.dst } } else { Side::Dpu(d.dst) };
        let (rd, wr) = d.io_lengths();
        let slot = usize::from(d.key);
        let nslots = self.crypto.engines[e].slots.len();
        match d.op {
            cr::OP_XTS_ENCRYPT
            | cr::OP_XTS_DECRYPT
            | cr::OP_GCM_SEAL
            | cr::OP_GCM_OPEN
            | cr::OP_SHA256
            | cr::OP_KEY_LOAD
            | cr::OP_KEY_CLEAR
            | cr::OP_KEY_UNWRAP
            | cr::OP_KEY_WRAP => {}
            _ => return st::ST_BAD_DESCRIPTOR,
        }
        if d.len > cr::MAX_LEN || (d.len == 0 && d.op != cr::OP_SHA256 && d.op != cr::OP_KEY_CLEAR) {
            return st::ST_BAD_LENGTH;
        }
        match d.op {
            cr::OP_KEY_CLEAR => {
                let Some(s) = self.crypto.engines[e].slots.get_mut(slot) else { return st::ST_BAD_KEY };
                crypto::zeroize_slot(s);
                return st::ST_OK;
            }
            cr::OP_KEY_LOAD | cr::OP_KEY_UNWRAP | cr::OP_KEY_WRAP => {
                // Key material (and blobs) come from, and go to, DPU memory only.
                if d.flags & (cr::FLAG_SRC_HOST | cr::FLAG_DST_HOST) != 0 {
                    return st::ST_BAD_DESCRIPTOR;
                }
                if d.op != cr::OP_KEY_WRAP && slot >= nslots {
                    return st::ST_BAD_KEY;
                }
                let s = self.side_check(src, rd, false);
                if s != st::ST_OK {
                    return s;
                }
                if wr > 0 {
                    let s = self.side_check(dst, wr, true);
                    if s != st::ST_OK {
                        return s;
                    }
                }
                let mut input = vec![0u8; d.len as usize];
                self.side_read(src, &mut input);
                // The key ladder: the device key comes from the fuses
                // over the engines' own path (`Otp::device_key`).
                let kek = if d.op == cr::OP_KEY_LOAD { None } else { self.otp.device_key() };
                if d.op != cr::OP_KEY_LOAD && kek.is_none() {
                    input.fill(0);
                    return st::ST_NO_DEVICE_KEY;
                }
                let mut k = match (d.op, kek) {
                    (cr::OP_KEY_UNWRAP, Some(kek)) => {
                        let r = crypto::key_unwrap(&kek, &input);
                        input.fill(0);
                        match r {
                            Some(k) => k,
                            // Too short for KW, or not whole blocks.
                            None if input.len() < 24 || input.len() % 8 != 0 => return st::ST_BAD_KEY,
                            // RFC 3394 §2.2.3: the integrity check failed.
                            None => return st::ST_AUTH_FAILED,
                        }
                    }
                    _ => std::mem::take(&mut input),
                };
                let new = match (d.param[0], k.len()) {
                    // IEEE 1619-2018 §5.1: Key1 and Key2 are distinct.
                    (cr::KEY_XTS_AES256, 64) if k[..32] != k[32..] => KeySlot::Xts(Box::new(k[..].try_into().unwrap())),
                    (cr::KEY_GCM_AES256, 32) => KeySlot::Gcm(Box::new(k[..].try_into().unwrap())),
                    _ => {
                        k.fill(0);
                        return st::ST_BAD_KEY;
                    }
                };
                if let (cr::OP_KEY_WRAP, Some(kek)) = (d.op, kek) {
                    let mut new = new;
                    crypto::zeroize_slot(&mut new);
                    let blob = crypto::key_wrap(&kek, &k);
                    k.fill(0);
                    let Some(blob) = blob else { return st::ST_BAD_KEY };
                    self.side_write(dst, &blob);
                    return st::ST_OK;
                }
                k.fill(0);
                let s = &mut self.crypto.engines[e].slots[slot];
                crypto::zeroize_slot(s);
                *s = new;
                return st::ST_OK;
            }
            _ => {}
        }
        // Key checks before any data moves.
        let key_ok = match (d.op, self.crypto.engines[e].slots.get(slot)) {
            (cr::OP_SHA256, _) => true,
            (cr::OP_XTS_ENCRYPT | cr::OP_XTS_DECRYPT, Some(KeySlot::Xts(_))) => true,
            (cr::OP_GCM_SEAL | cr::OP_GCM_OPEN, Some(KeySlot::Gcm(_))) => true,
            _ => false,
        };
        if !key_ok {
            return st::ST_BAD_KEY;
        }
        if matches!(d.op, cr::OP_XTS_ENCRYPT | cr::OP_XTS_DECRYPT) && d.len % d.data_unit() != 0 {
            return st::ST_BAD_LENGTH;
        }
        let aad_len = u64::from(d.aad_len);
        if matches!(d.op, cr::OP_GCM_SEAL | cr::OP_GCM_OPEN) && aad_len > 0 {
            if d.aad_len > 4096 {
                return st::ST_BAD_LENGTH;
            }
            let s = self.side_check(Side::Dpu(d.aad), aad_len, false);
            if s != st::ST_OK {
                return s;
            }
        }
        if rd > 0 {
            let s = self.side_check(src, rd, false);
            if s != st::ST_OK {
                return s;
            }
        }
        if wr > 0 {
            let s = self.side_check(dst, wr, true);
            if s != st::ST_OK {
                return s;
            }
        }
        let mut buf = vec![0u8; rd as usize];
        self.side_read(src, &mut buf);
        let mut aad = vec![0u8; aad_len as usize];
        if aad_len > 0 {
            self.mem.read_bytes(d.aad, &mut aad);
        }
        let out: Vec<u8> = if d.op == cr::OP_SHA256 {
            let h = self.crypto.engines[e].sha[qi].get_or_insert_with(sha2::Sha256::new);
            h.update(&buf);
            if d.flags & q::FLAG_END == 0 {
                return st::ST_OK;
            }
            let h = self.crypto.engines[e].sha[qi].take().unwrap_or_default();
            h.finalize().to_vec()
        } else {
            match (d.op, &self.crypto.engines[e].slots[slot]) {
                (cr::OP_XTS_DECRYPT, KeySlot::Xts(k)) if d.flags & cr::FLAG_ZERO_PASS != 0 => {
                    let du = d.data_unit() as usize;
                    for (u, unit) in buf.chunks_mut(du).enumerate() {
                        if unit.iter().any(|&b| b != 0) {
                            crypto::xts(k, d.dun() + u as u64, du, unit, false);
                        }
                    }
                    buf
                }
                (cr::OP_XTS_ENCRYPT | cr::OP_XTS_DECRYPT, KeySlot::Xts(k)) => {
                    crypto::xts(k, d.dun(), d.data_unit() as usize, &mut buf, d.op == cr::OP_XTS_ENCRYPT);
                    buf
                }
                (cr::OP_GCM_SEAL, KeySlot::Gcm(k)) => {
                    let iv: [u8; 12] = d.param[..12].try_into().unwrap();
                    let tag = crypto::gcm_seal(k, &iv, &aad, &mut buf);
                    buf.extend_from_slice(&tag);
                    buf
                }
                (cr::OP_GCM_OPEN, KeySlot::Gcm(k)) => {
                    let iv: [u8; 12] = d.param[..12].try_into().unwrap();
                    let n = d.len as usize;
                    let tag: [u8; 16] = buf[n..].try_into().unwrap();
                    buf.truncate(n);
                    if !crypto::gcm_open(k, &iv, &aad, &mut buf, &tag) {
                        return st::ST_AUTH_FAILED;
                    }
                    buf
                }
                _ => return st::ST_BAD_KEY,
            }
        };
        self.side_write(dst, &out);
        if let Side::Host { .. } = dst {
            self.crypto.stats.bytes_to_host += out.len() as u64;
        }
        if let Side::Host { .. } = src {
            self.crypto.stats.bytes_from_host += rd;
        }
        st::ST_OK
    }

    // ------------------------------------------------------------ erasure coding

    /// Firmware moved TAIL of EC queue `qi`.
    pub fn ec_kick(&mut self, qi: usize, now: u64) {
        loop {
            let Some(addr) = self.ec.queues[qi].next_descriptor() else { break };
            let mut b = [0u8; 64];
            let desc = if self.mem.read_bytes(addr, &mut b).is_some() {
                EDesc::from_bytes(&b)
            } else {
                EDesc { op: 0xff, flags: q::FLAG_END, ..EDesc::default() }
            };
            let start = now.max(self.ec.free_at);
            let other = self.ec.last_queue != qi;
            self.ec.last_queue = qi;
            if start > now && other {
                self.ec.stats.contended += 1;
                self.ec.stats.wait_cycles += start - now;
            }
            let cycles = self.ec.engine_cycles(&desc);
            self.ec.stats.busy_cycles += cycles;
            let done = start + cycles;
            self.ec.free_at = done;
            self.ec.stats.descriptors += 1;
            self.ec.inflight.push_back(EJob { start, done, queue: qi, desc });
            self.events.push(done, Event::EcDone);
        }
    }

    /// Completes the EC descriptors due at `now`.
    pub fn ec_done(&mut self, now: u64) {
        while let Some(j) = self.ec.inflight.front() {
            if j.done > now {
                break;
            }
            let j = self.ec.inflight.pop_front().unwrap();
            let d = j.desc;
            let status = if self.ec.queues[j.queue].chain_failed() { st::ST_OK } else { self.ec_execute(&d) };
            let written = d.outputs() * d.len;
            let end = d.flags & q::FLAG_END != 0;
            let Some((addr, entry, notify, chain_status)) = self.ec.queues[j.queue].record(status, written, end, d.cookie) else { continue };
            self.ec.stats.completions += 1;
            if chain_status != st::ST_OK {
                self.ec.stats.errors += 1;
            }
            self.dma_write_local(addr, &entry);
            if notify & q::NOTIFY_ENABLE != 0 {
                self.ring_mailbox(notify & 0xffff, er::MAILBOX_BIT);
            }
        }
    }

    /// Runs one EC descriptor; its status.
    fn ec_execute(&mut self, d: &EDesc) -> u32 {
        if d.op != er::OP_ENCODE && d.op != er::OP_RECONSTRUCT {
            return st::ST_BAD_DESCRIPTOR;
        }
        let (k, m) = (usize::from(d.k), usize::from(d.m));
        if d.k == 0 || d.m == 0 || d.k > self.ec.max_k || d.m > self.ec.max_m {
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
        if !self.mem.range_is_ram(d.frags, n as u64 * 8) {
            return st::ST_LOCAL_FAULT;
        }
        let mut table = vec![0u8; n * 8];
        self.mem.read_bytes(d.frags, &mut table);
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
            if !self.mem.range_is_ram(addrs[i], len) {
                return st::ST_LOCAL_FAULT;
            }
        }
        for &i in &outputs {
            if !(self.mem.range_is_ram(addrs[i], len) && self.mem.region_of(addrs[i]).is_some_and(|r| r.writable)) {
                return st::ST_LOCAL_FAULT;
            }
        }
        let mut frags = vec![Vec::new(); n];
        for &i in &inputs {
            let mut b = vec![0u8; d.len as usize];
            self.mem.read_bytes(addrs[i], &mut b);
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
            self.dma_write_local(addrs[i], &data);
            if d.op == er::OP_ENCODE {
                self.ec.stats.encoded_bytes += len;
            } else {
                self.ec.stats.rebuilt_bytes += len;
            }
        }
        st::ST_OK
    }

    // ------------------------------------------------------------ TRNG

    /// Drives the TRNG's health-failure line into the PLIC.
    pub fn trng_irq(&mut self) {
        if self.trng.irq_pending {
            self.trng.irq_pending = false;
            let irq = self.trng.irq;
            self.plic.set_level(irq, true, &mut self.lines);
            self.plic.set_level(irq, false, &mut self.lines);
        }
    }
}
