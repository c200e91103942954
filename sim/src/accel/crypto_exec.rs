//! The crypto engines at work ([`super::crypto`] holds their registers,
//! key slots and cryptography): descriptors handed over by a TAIL write
//! take their engine's datapath for `engine_cycles` (the chip file's
//! rates) after the work queued on that engine before it, by any queue
//! (contention), and, with a host source or destination, the link time of
//! their bytes. Data moves and the completion is written when the
//! descriptor is done; a chain's completion rings the queue's NOTIFY hart
//! with the engine's mailbox bit.
//!
//! A [`Component`]: the event of an engine's earliest descriptor (payload
//! `a`: the engine) completes what is due. It acts through a [`DevCtx`]:
//! DPU memory, the PCIe endpoint, link and host memory, the mailboxes,
//! the OTP device key.

use super::crypto::{self, CryptoEngines, Desc as CDesc, Job as CJob, KeySlot};
use crate::devctx::{Component, DevCtx};
use crate::event::Payload;
use crate::pcie::Dir;
use dpu_hal::regs::{accel as st, crypto as cr, queue as q};
use sha2::Digest;

/// Where a crypto descriptor reads or writes.
#[derive(Clone, Copy)]
enum Side {
    Dpu(u64),
    Host { function: u16, addr: u64 },
}

impl CryptoEngines {
    /// Firmware moved TAIL of queue `qi` of crypto engine `e`.
    pub fn kick(&mut self, e: usize, qi: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        loop {
            let Some(addr) = self.engines[e].queues[qi].next_descriptor() else { break };
            let mut b = [0u8; 64];
            let desc = if ctx.mem.read(addr, &mut b).is_some() {
                CDesc::from_bytes(&b)
            } else {
                // The ring is not RAM: a bad descriptor that ends its chain.
                CDesc { op: 0xff, flags: q::FLAG_END, ..CDesc::default() }
            };
            let cycles = self.engine_cycles(&desc);
            let eng = &mut self.engines[e];
            let start = now.max(eng.free_at);
            if start > now && eng.last_queue != qi {
                // Waiting behind another queue's work (not its own chain).
                self.stats.contended += 1;
                self.stats.wait_cycles += start - now;
            }
            eng.last_queue = qi;
            let engine_end = start + cycles;
            eng.free_at = engine_end;
            self.stats.busy_cycles += cycles;
            let (rd, wr) = desc.io_lengths();
            let mut done = engine_end;
            if desc.flags & cr::FLAG_SRC_HOST != 0 {
                done = done.max(ctx.pcie.link.send(Dir::Down, start + ctx.pcie.link.host_read_latency, rd));
            }
            if desc.flags & cr::FLAG_DST_HOST != 0 {
                done = done.max(ctx.pcie.link.send(Dir::Up, engine_end, wr) + ctx.pcie.link.posted_latency);
            }
            self.stats.descriptors += 1;
            self.engines[e].inflight.push_back(CJob { start, done, queue: qi, desc });
            ctx.events.push(done, self.id, Payload::new(0, e as u64, 0));
        }
    }

    /// Completes the descriptors of crypto engine `e` due at `now`.
    pub fn complete_due(&mut self, e: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        while let Some(j) = self.engines[e].inflight.front() {
            if j.done > now {
                break;
            }
            let j = self.engines[e].inflight.pop_front().unwrap();
            let d = j.desc;
            let end = d.flags & q::FLAG_END != 0;
            let status = if self.engines[e].queues[j.queue].chain_failed() {
                st::ST_OK // skipped: the chain already failed
            } else {
                self.execute(e, j.queue, &d, ctx)
            };
            if end {
                // A chain's SHA-256 ends with it (finished or failed).
                self.engines[e].sha[j.queue] = None;
            }
            let eng = &mut self.engines[e];
            if status == st::ST_OK {
                eng.descriptors += 1;
                eng.bytes += u64::from(d.len);
                self.stats.bytes += u64::from(d.len);
            }
            if status == st::ST_AUTH_FAILED {
                self.stats.auth_failures += 1;
            }
            let (_, wr) = d.io_lengths();
            let Some((addr, entry, notify, chain_status)) = eng.queues[j.queue].record(status, wr as u32, end, d.cookie) else { continue };
            self.stats.completions += 1;
            if chain_status != st::ST_OK {
                self.stats.errors += 1;
            }
            ctx.mem.write(addr, &entry);
            if notify & q::NOTIFY_ENABLE != 0 {
                ctx.irq.ring_mailbox(notify & 0xffff, cr::MAILBOX_BIT);
            }
        }
    }

    /// Runs one crypto descriptor; its status. Nothing is written unless
    /// every check passed (and, for GCM open, the tag matched).
    fn execute(&mut self, e: usize, qi: usize, d: &CDesc, ctx: &mut DevCtx<'_>) -> u32 {
        let src = if d.flags & cr::FLAG_SRC_HOST != 0 { Side::Host { function: d.src_fn, addr: d.src } } else { Side::Dpu(d.src) };
        let dst = if d.flags & cr::FLAG_DST_HOST != 0 { Side::Host { function: d.dst_fn, addr: d.dst } } else { Side::Dpu(d.dst) };
        let (rd, wr) = d.io_lengths();
        let slot = usize::from(d.key);
        let nslots = self.engines[e].slots.len();
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
                let Some(s) = self.engines[e].slots.get_mut(slot) else { return st::ST_BAD_KEY };
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
                // (rd > 0: a key operation of length 0 was refused above.)
                let s = io_check(ctx, src, rd, dst, wr);
                if s != st::ST_OK {
                    return s;
                }
                let mut input = vec![0u8; d.len as usize];
                side_read(ctx, src, &mut input);
                // The key ladder: the device key comes from the fuses
                // over the engines' own path (`Otp::device_key`).
                let kek = if d.op == cr::OP_KEY_LOAD { None } else { ctx.fuses.device_key() };
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
                    side_write(ctx, dst, &blob);
                    return st::ST_OK;
                }
                k.fill(0);
                let s = &mut self.engines[e].slots[slot];
                crypto::zeroize_slot(s);
                *s = new;
                return st::ST_OK;
            }
            _ => {}
        }
        // Key checks before any data moves.
        let key_ok = match (d.op, self.engines[e].slots.get(slot)) {
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
            let s = side_check(ctx, Side::Dpu(d.aad), aad_len, false);
            if s != st::ST_OK {
                return s;
            }
        }
        let s = io_check(ctx, src, rd, dst, wr);
        if s != st::ST_OK {
            return s;
        }
        let mut buf = vec![0u8; rd as usize];
        side_read(ctx, src, &mut buf);
        let mut aad = vec![0u8; aad_len as usize];
        if aad_len > 0 {
            ctx.mem.read(d.aad, &mut aad);
        }
        let out: Vec<u8> = if d.op == cr::OP_SHA256 {
            let h = self.engines[e].sha[qi].get_or_insert_with(sha2::Sha256::new);
            h.update(&buf);
            if d.flags & q::FLAG_END == 0 {
                return st::ST_OK;
            }
            let h = self.engines[e].sha[qi].take().unwrap_or_default();
            h.finalize().to_vec()
        } else {
            match (d.op, &self.engines[e].slots[slot]) {
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
        side_write(ctx, dst, &out);
        if let Side::Host { .. } = dst {
            self.stats.bytes_to_host += out.len() as u64;
        }
        if let Side::Host { .. } = src {
            self.stats.bytes_from_host += rd;
        }
        st::ST_OK
    }
}

impl Component for CryptoEngines {
    /// Engine `payload.a`'s earliest descriptor is due.
    fn on_event(&mut self, payload: Payload, ctx: &mut DevCtx<'_>) {
        self.complete_due(payload.a as usize, ctx);
    }
}

/// Checks a descriptor's source (`rd` bytes read) and destination (`wr`
/// bytes written), each only when it moves bytes; the first refusal.
fn io_check(ctx: &mut DevCtx<'_>, src: Side, rd: u64, dst: Side, wr: u64) -> u32 {
    if rd > 0 {
        let s = side_check(ctx, src, rd, false);
        if s != st::ST_OK {
            return s;
        }
    }
    if wr > 0 {
        return side_check(ctx, dst, wr, true);
    }
    st::ST_OK
}

/// Checks that `len` bytes at `side` may be read (`write` false) or
/// written; the status that refuses it.
fn side_check(ctx: &mut DevCtx<'_>, side: Side, len: u64, write: bool) -> u32 {
    match side {
        Side::Dpu(a) => {
            let ok = if write { ctx.mem.is_writable_ram(a, len) } else { ctx.mem.is_ram(a, len) };
            if ok {
                st::ST_OK
            } else {
                st::ST_LOCAL_FAULT
            }
        }
        Side::Host { function, addr } => {
            if !ctx.pcie.endpoint.bus_master(usize::from(function)) {
                return st::ST_NO_BUS_MASTER;
            }
            let mut h = ctx.pcie.host_mem.borrow_mut();
            if !h.allowed(function, addr, len) {
                h.denied += 1;
                return st::ST_HOST_DENIED;
            }
            st::ST_OK
        }
    }
}

fn side_read(ctx: &mut DevCtx<'_>, side: Side, buf: &mut [u8]) {
    match side {
        Side::Dpu(a) => {
            ctx.mem.read(a, buf);
        }
        Side::Host { addr, .. } => {
            ctx.pcie.host_mem.borrow_mut().read(addr, buf);
        }
    }
}

fn side_write(ctx: &mut DevCtx<'_>, side: Side, data: &[u8]) {
    match side {
        Side::Dpu(a) => ctx.mem.write(a, data),
        Side::Host { addr, .. } => {
            ctx.pcie.host_mem.borrow_mut().write(addr, data);
        }
    }
}
