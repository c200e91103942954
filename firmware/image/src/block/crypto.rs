//! The crypto block device: data-at-rest encryption of a namespace with
//! AES-256-XTS (IEEE 1619-2018) on the card's crypto engines, stacked on
//! the namespace's RAM or remote device. The data unit is the namespace's
//! block, its tweak the LBA; the key sits in the engines' key slot named
//! by the boot configuration (loaded once at boot by [`load_keys`]; from
//! a flash configuration the engines unwrap it there with the device key,
//! so the key itself never passes through the cores).
//!
//! * Write: the engine reads the host's pages (PCIe, behind the IOMMU)
//!   and writes ciphertext into this core's staging pages; the lower
//!   device then writes from staging.
//! * Read: the lower device reads into staging pages; the engine
//!   decrypts from there straight into the host's pages.
//!
//! Reads ask the engine to pass all-zero ciphertext units through as
//! zeros (`FLAG_ZERO_PASS`): blocks never written read as zeros, as on an
//! unencrypted namespace. No CPU touches payload bytes. When the host's segments do not split
//! at data-unit boundaries (a PRP list whose first page starts mid-block,
//! byte-granular SGLs), the data bounces through staging by DMA and the
//! engine works on the staging pages in place: still no CPU copy.
//!
//! Work spreads over the 10 engines (the hart's queue on each; the one
//! with the fewest chains in flight). Each I/O is one context walking
//! [`Step`]s; one that finds no staging pages or no engine room waits in
//! a FIFO and is retried on the next pass.

use super::staging::{Pages, Pool, PAGE};
use super::{cookie, Done, Data, Io, Op, SegTable, Tag, MAX_SEGS, MAX_TAGS, NAMESPACE_NOT_READY_DNR};
use crate::bootcfg::{self as config, Namespace};
use dpu_hal::crypto::{Desc as CDesc, Engines};
use dpu_hal::dma::Channel;
use dpu_hal::regs::{accel as st, bootcfg as b, crypto as cr};
use dpu_nvme::Status;

/// Descriptor ring entries of each engine queue: a 128 KiB I/O in 4 KiB
/// host pages takes at most 64 segments + 32 page splits.
const RING: u32 = 128;
/// Tags of the lower device's I/Os: this bit plus the context index.
pub const LOWER: Tag = 0x8000;

/// Where an I/O is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for staging pages.
    Pages,
    /// Write, bounce: host data -> staging by DMA.
    Fetch,
    /// Write: encrypt into staging.
    Encrypt,
    /// At the lower device.
    Lower,
    /// Read: decrypt out of staging (into the host, or in place).
    Decrypt,
    /// Read, bounce: staging -> host by DMA.
    Deliver,
}

#[derive(Clone, Copy)]
struct Ctx {
    used: bool,
    step: Step,
    /// An operation of `step` is in flight.
    busy: bool,
    tag: Tag,
    write: bool,
    /// A copy: a namespace attached at run time has no static description
    /// (each engine's live table holds it; a detach may drop it while
    /// the context finishes).
    ns: Option<Namespace>,
    lba: u64,
    blocks: u32,
    len: u32,
    function: u16,
    /// Its host segments are `Crypto::segs[context][..nsegs]`.
    nsegs: u8,
    pages: Pages,
    bounce: bool,
    cancel: Option<Status>,
}

impl Ctx {
    const FREE: Ctx = Ctx {
        used: false,
        step: Step::Pages,
        busy: false,
        tag: 0,
        write: false,
        ns: None,
        lba: 0,
        blocks: 0,
        len: 0,
        function: 0,
        nsegs: 0,
        pages: Pages::NONE,
        bounce: false,
        cancel: None,
    };

    fn du_shift(&self) -> u8 {
        self.ns.as_ref().map_or(9, |n| n.geometry.block_shift)
    }
}

/// What a cancel did (see [`Crypto::cancel`]).
pub enum Cancelled {
    /// Not an I/O of this device.
    NotHere,
    /// It completes with the status soon (now, or when its engine or DMA
    /// step ends).
    Soon,
    /// It is at the lower device: cancel the lower I/O with this tag.
    Lower(Tag),
}

pub struct Crypto {
    eng: Engines,
    ctx: [Ctx; MAX_TAGS],
    /// Host segments of each context's I/O: built at start, not part of
    /// `INIT` (as a constant they were a 128 KiB template in the image).
    segs: SegTable,
    /// Contexts waiting for pages or engine / DMA room, oldest first.
    wait: [u8; MAX_TAGS],
    nwait: usize,
    /// Contexts ready for the lower device ([`take_lower`](Self::take_lower)).
    lower: [u8; MAX_TAGS],
    nlower: usize,
    pub(super) done: Done,
    /// DMA pushed (the owner kicks the channel).
    pub kick: bool,
}

impl dpu_rt::ConstInit for Crypto {
    const INIT: Crypto = Crypto {
        eng: Engines::NONE,
        ctx: [Ctx::FREE; MAX_TAGS],
        segs: SegTable::NONE,
        wait: [0; MAX_TAGS],
        nwait: 0,
        lower: [0; MAX_TAGS],
        nlower: 0,
        done: Done::EMPTY,
        kick: false,
    };
}

/// The NVMe status of an engine error.
fn engine_status(s: u32) -> Status {
    match s {
        st::ST_HOST_DENIED | st::ST_NO_BUS_MASTER | st::ST_HOST_ERROR => Status::DATA_TRANSFER_ERROR,
        _ => Status::INTERNAL_ERROR,
    }
}

impl Crypto {
    /// The crypto device of data-plane hart `hart` (its queue on every
    /// engine), in DDR; `None` when memory or queues are missing.
    pub fn start(hart: usize) -> Option<&'static mut Crypto> {
        let c = dpu_rt::alloc::ddr_static::<Crypto>()?;
        if !c.segs.start(MAX_TAGS) {
            return None;
        }
        let rings = dpu_rt::alloc::ddr(Engines::memory(RING) as u64, 64)?;
        if !c.eng.start(hart, rings as usize, RING) {
            return None;
        }
        Some(c)
    }

    fn finish(&mut self, pool: &mut Pool, i: usize, st: Status) {
        let c = &mut self.ctx[i];
        let st = c.cancel.unwrap_or(st);
        pool.free(&mut c.pages);
        c.used = false;
        let tag = c.tag;
        self.push_done(tag, st);
    }

    fn push_done(&mut self, tag: Tag, st: Status) {
        self.done.push(tag, st);
    }

    pub fn take_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        self.done.take(out)
    }

    /// Starts a read or write of encrypted namespace `ns`.
    pub fn submit(&mut self, chan: &mut Channel, pool: &mut Pool, ns: &Namespace, tag: Tag, io: &Io) {
        if !config::key_usable(ns) {
            return self.push_done(tag, NAMESPACE_NOT_READY_DNR);
        }
        let Data::Host { function, segs } = io.data else { return self.push_done(tag, Status::INTERNAL_ERROR) };
        let du = 1u32 << ns.geometry.block_shift;
        if segs.len() > MAX_SEGS || io.len == 0 || io.len % du != 0 || io.len as usize > super::staging::MAX_IO_PAGES * PAGE {
            return self.push_done(tag, Status::INTERNAL_ERROR);
        }
        let Some(i) = self.ctx.iter().position(|c| !c.used) else { return self.push_done(tag, Status::INTERNAL_ERROR) };
        let c = &mut self.ctx[i];
        *c = Ctx { used: true, tag, write: io.op == Op::Write, ns: Some(*ns), lba: io.lba, blocks: io.blocks, len: io.len, function, ..Ctx::FREE };
        if !self.segs.set(i, segs) {
            return self.push_done(tag, Status::INTERNAL_ERROR);
        }
        c.nsegs = segs.len() as u8;
        c.bounce = segs.iter().any(|&(_, l)| l % du != 0);
        if !self.advance(chan, pool, i) {
            self.wait[self.nwait] = i as u8;
            self.nwait += 1;
        }
    }

    /// Runs the current step of context `i`; false if it must wait for
    /// pages or ring room.
    fn advance(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize) -> bool {
        // Fields, not the context: it carries the segment list (copying
        // it was a memcpy of ~600 bytes per step).
        let (busy, step) = (self.ctx[i].busy, self.ctx[i].step);
        if busy {
            return true;
        }
        match step {
            Step::Pages => {
                let c = &mut self.ctx[i];
                if !pool.alloc_into(c.len as usize, &mut c.pages) {
                    return false;
                }
                c.step = match (c.write, c.bounce) {
                    (true, true) => Step::Fetch,
                    (true, false) => Step::Encrypt,
                    (false, _) => Step::Lower,
                };
                self.advance(chan, pool, i)
            }
            Step::Fetch | Step::Deliver => self.dma(chan, pool, i),
            Step::Encrypt | Step::Decrypt => self.engine(pool, i),
            Step::Lower => {
                self.ctx[i].busy = true;
                self.lower[self.nlower] = i as u8;
                self.nlower += 1;
                true
            }
        }
    }


    /// The DMA of a bounce: host -> staging (Fetch), staging -> host (Deliver).
    fn dma(&mut self, chan: &mut Channel, pool: &Pool, i: usize) -> bool {
        let c = &self.ctx[i];
        let segs = self.segs.get(i, c.nsegs);
        if !pool.push_host_chain(chan, &c.pages, segs, c.function, c.step == Step::Fetch, cookie::make(cookie::CRYPTO, i as u32)) {
            return false;
        }
        self.ctx[i].busy = true;
        self.kick = true;
        true
    }

    /// The engine step: encrypt (host -> staging, or staging in place
    /// after a bounce) or decrypt (staging -> host, or in place).
    fn engine(&mut self, pool: &Pool, i: usize) -> bool {
        let c = &self.ctx[i];
        let Some(ns) = c.ns else { return true };
        let Some(slot) = ns.crypto else { return true };
        let shift = c.du_shift();
        let du_4k = shift == 12;
        let encrypt = c.step == Step::Encrypt;
        let pages = (c.len as usize).div_ceil(PAGE);
        let mut n = 0u32;
        if c.bounce {
            n = pages as u32;
        } else {
            pool.pieces(&c.pages, self.segs.get(i, c.nsegs), |_, _, _, _| n += 1);
        }
        let Some(e) = self.eng.pick(n) else { return false };
        let mut k = 0;
        let mut push = |eng: &mut Engines, d: CDesc| {
            k += 1;
            eng.push(e, &CDesc { cookie: i as u32, ..d }, k == n);
        };
        if c.bounce {
            for p in 0..pages {
                let at = pool.addr(c.pages.page(p));
                let len = (c.len as usize - p * PAGE).min(PAGE) as u32;
                let dun = c.lba + ((p * PAGE) >> shift) as u64;
                let d = CDesc::xts(encrypt, at, at, len, slot, dun, du_4k);
                push(&mut self.eng, if encrypt { d } else { d.zero_pass() });
            }
        } else {
            let eng = &mut self.eng;
            pool.pieces(&c.pages, self.segs.get(i, c.nsegs), |host, local, len, pos| {
                let dun = c.lba + (pos >> shift) as u64;
                let d = if encrypt {
                    CDesc::xts(true, host, local, len, slot, dun, du_4k).from_host(c.function)
                } else {
                    CDesc::xts(false, local, host, len, slot, dun, du_4k).to_host(c.function).zero_pass()
                };
                push(eng, d);
            });
        }
        self.eng.kick(e);
        self.ctx[i].busy = true;
        true
    }

    /// Contexts ready for the lower device: (context, the lower I/O).
    pub fn take_lower(&mut self) -> Option<(usize, Namespace, Op, u64, u32, u32, Pages)> {
        while self.nlower > 0 {
            self.nlower -= 1;
            let i = usize::from(self.lower[self.nlower]);
            let c = &self.ctx[i];
            if let (true, Some(ns)) = (c.used, c.ns) {
                return Some((i, ns, if c.write { Op::Write } else { Op::Read }, c.lba, c.blocks, c.len, c.pages));
            }
        }
        None
    }

    /// The lower device finished context `i`'s I/O.
    pub fn lower_done(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize, st: Status) {
        let Some(c) = self.ctx.get_mut(i) else { return };
        if !c.used || c.step != Step::Lower {
            return;
        }
        c.busy = false;
        if c.write || !st.is_success() || c.cancel.is_some() {
            return self.finish(pool, i, st);
        }
        c.step = Step::Decrypt;
        self.step_on(chan, pool, i);
    }

    /// Runs context `i`'s new step, or queues it to wait.
    fn step_on(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize) {
        if !self.advance(chan, pool, i) {
            self.wait[self.nwait] = i as u8;
            self.nwait += 1;
        }
    }

    /// A bounce DMA of context `i` finished.
    pub fn dma_done(&mut self, chan: &mut Channel, pool: &mut Pool, i: usize, ok: bool) {
        let Some(c) = self.ctx.get_mut(i) else { return };
        if !c.used || !c.busy || !matches!(c.step, Step::Fetch | Step::Deliver) {
            return;
        }
        c.busy = false;
        if !ok {
            return self.finish(pool, i, Status::DATA_TRANSFER_ERROR);
        }
        if c.step == Step::Deliver || c.cancel.is_some() {
            return self.finish(pool, i, Status::SUCCESS);
        }
        c.step = Step::Encrypt;
        self.step_on(chan, pool, i);
    }

    /// Takes engine completions and retries waiting contexts; returns the
    /// work done.
    pub fn poll(&mut self, chan: &mut Channel, pool: &mut Pool) -> usize {
        let mut work = 0;
        if self.eng.busy() > 0 {
            while let Some(comp) = self.eng.poll() {
                work += 1;
                let i = comp.cookie as usize;
                let Some(c) = self.ctx.get_mut(i) else { continue };
                if !c.used || !c.busy || !matches!(c.step, Step::Encrypt | Step::Decrypt) {
                    continue;
                }
                c.busy = false;
                if comp.status != st::ST_OK {
                    defmt::error!("crypto: engine status {=u32} for LBA {=u64}", comp.status, c.lba);
                    self.finish(pool, i, engine_status(comp.status));
                    continue;
                }
                if c.cancel.is_some() {
                    self.finish(pool, i, Status::SUCCESS);
                    continue;
                }
                match (c.step, c.bounce) {
                    (Step::Encrypt, _) => c.step = Step::Lower,
                    (Step::Decrypt, true) => c.step = Step::Deliver,
                    _ => {
                        self.finish(pool, i, Status::SUCCESS);
                        continue;
                    }
                }
                self.step_on(chan, pool, i);
            }
        }
        // Waiting contexts, oldest first, until one still cannot start.
        while self.nwait > 0 {
            let i = usize::from(self.wait[0]);
            if self.ctx[i].used && !self.ctx[i].busy && !self.advance(chan, pool, i) {
                break;
            }
            self.wait.copy_within(1..self.nwait, 0);
            self.nwait -= 1;
            work += 1;
        }
        work
    }

    /// Gives up on I/O `tag` with status `st`.
    pub fn cancel(&mut self, pool: &mut Pool, tag: Tag, st: Status) -> Cancelled {
        let Some(i) = self.ctx.iter().position(|c| c.used && c.tag == tag) else { return Cancelled::NotHere };
        let c = &mut self.ctx[i];
        c.cancel = Some(st);
        if !c.busy {
            // Waiting (pages or ring room): nothing is in flight.
            if let Some(k) = self.wait[..self.nwait].iter().position(|&w| usize::from(w) == i) {
                self.wait.copy_within(k + 1..self.nwait, k);
                self.nwait -= 1;
            }
            self.finish(pool, i, st);
            return Cancelled::Soon;
        }
        if c.step == Step::Lower {
            return Cancelled::Lower(LOWER | i as Tag);
        }
        Cancelled::Soon
    }

}

/// Loads every namespace key of the boot configuration into its key
/// slot on every crypto engine (admin service at boot, hart `hart`'s
/// queues), then marks the keys loaded (or failed). Keys in the clear
/// (the window) pass through a stack buffer and a DDR scratch buffer, both
/// wiped. Wrapped keys (a configuration from flash) are unwrapped by the
/// engines with the device key (RFC 3394): the key never reaches the
/// cores; a blob that does not unwrap (wrapped for another card's device
/// key, or altered) leaves its namespaces unserved, named in the log.
pub fn load_keys(hart: usize) {
    let n = config::key_count();
    if n == 0 {
        return;
    }
    let (Some(rings), Some(scratch)) = (dpu_rt::alloc::ddr(Engines::memory(2) as u64, 64), dpu_rt::alloc::ddr(b::KEY_RECORD_WRAPPED as u64, 64)) else {
        defmt::error!("crypto: no memory to load the namespace keys");
        return config::set_keys(config::KEYS_FAILED);
    };
    let mut eng = Engines::NONE;
    if !eng.start(hart, rings as usize, 2) {
        defmt::error!("crypto: engine queues refused");
        return config::set_keys(config::KEYS_FAILED);
    }
    let wrapped = config::keys_wrapped();
    let mut failed = 0;
    for k in 0..n {
        let r = if wrapped {
            let mut blob = [0u8; b::KEY_RECORD_WRAPPED];
            if config::read_wrapped_key(k, &mut blob) {
                eng.unwrap_key(k as u16, cr::KEY_XTS_AES256, &blob, scratch as usize)
            } else {
                Err(st::ST_BAD_DESCRIPTOR)
            }
        } else {
            let mut key = [0u8; b::KEY_RECORD];
            let r = if config::read_key(k, &mut key) { eng.load_key(k as u16, cr::KEY_XTS_AES256, &key, scratch as usize) } else { Err(st::ST_BAD_DESCRIPTOR) };
            dpu_hal::mem::wipe(&mut key);
            r
        };
        if let Err(s) = r {
            failed += 1;
            config::set_key_failed(k as u16);
            let why = match s {
                st::ST_AUTH_FAILED => "its wrapped key does not unwrap with this card's device key (wrapped for another card, or altered)",
                st::ST_NO_DEVICE_KEY => "this card has no device key in its OTP fuses to unwrap its key",
                _ => "the crypto engines refused its key",
            };
            for ns in config::namespaces().filter(|ns| ns.crypto == Some(k as u16)) {
                defmt::error!("crypto: fn{=u16} nsid {=u32}: {=str} (status {=u32}): the namespace is not served", ns.function, ns.nsid, why, s);
            }
        }
    }
    config::set_keys(config::KEYS_LOADED);
    let how = if wrapped { "unwrapped with the device key into" } else { "loaded into" };
    if failed == 0 {
        defmt::info!("crypto: {=usize} namespace key(s) {=str} {=usize} engines", n, how, dpu_hal::memory_map::CRYPTO_ENGINES);
    } else {
        defmt::error!("crypto: {=usize} of {=usize} namespace key(s) refused", failed, n);
    }
}
