//! The block layer of one data-plane core (DESIGN.md §3, "Block layer"):
//! every namespace is a stack of block devices behind one asynchronous
//! interface. The NVMe I/O engine submits an [`Io`] to the top of a
//! namespace's stack under a tag of its own ([`Stack::submit`]) and later
//! takes the completion, `(tag, status)` ([`Stack::take_done`]); nothing
//! below knows about NVMe queues, and the engine knows nothing of what is
//! below (SPDK's bdev model: submit, completion on the owning core).
//!
//! * [`ram`]: a namespace in DPU memory (DDR), moved by the core's DMA
//!   channel.
//! * remote NVMe-oF namespaces: the core's NVMe/TCP initiator
//!   ([`crate::nvmf::initiator::Fabric`]), with its own command IDs.
//! * [`crypto`]: AES-256-XTS data-at-rest encryption on the crypto
//!   engines, stacked on either of the above (the namespace's `crypto`
//!   key slot); its lower I/Os carry [`crypto::LOWER`] tags and staged
//!   data.
//! * [`ec`]: an erasure-coded volume striped over k + m remote namespaces
//!   (parity on the EC engine), below a crypto device or directly under
//!   the namespace; its member I/Os carry [`ec::LOWER`] tags and go to
//!   the initiator with staged data.
//! * [`ssd`]: a namespace of one of the card's local NVMe SSDs, through
//!   this core's queue pair on it (data staged, moved by the SSD).
//!
//! An I/O's data is in the host's memory (PCIe function + segments, as
//! the NVMe data pointer described them) or in this core's staging pages
//! ([`staging`]), where stacked devices keep what they transform. Data
//! moves by DMA (or an accelerator), never by the CPU.
//!
//! The layer owns a part of the core's DMA cookie space ([`cookie`]): the
//! engine hands every completion of kind [`cookie::KIND`] to
//! [`Stack::dma_done`].

pub mod crypto;
pub mod ec;
pub mod ram;
pub mod ssd;
pub mod staging;

use crate::bootcfg::{self as config, Backend, Namespace};
use crate::nvmf::initiator::{Fabric, PATH_ERROR};
use dpu_hal::dma::Channel;
use dpu_nvme::Status;
use staging::{Pages, Pool};

/// The submitter's name for an I/O (the NVMe engine: its command slot).
pub type Tag = u16;

/// Most I/Os the engine has in the layer at once (its command slots).
pub const MAX_TAGS: usize = 128;

/// Most host segments an upper-layer I/O carries (the PRP/SGL walk's).
pub const MAX_SEGS: usize = dpu_nvme::dptr::MAX_SEGMENTS;

/// The host segments of each I/O context of a device that moves host
/// data itself (crypto, EC, local SSD), in DDR. Built at start, not part
/// of the device's `ConstInit` (as a constant, 128 contexts of 64
/// segments were a 128 KiB template in the image).
pub struct SegTable(Option<&'static mut [[(u64, u32); MAX_SEGS]]>);

impl SegTable {
    pub const NONE: SegTable = SegTable(None);

    /// Room for `contexts` contexts; false when DDR is out.
    pub fn start(&mut self, contexts: usize) -> bool {
        self.0 = dpu_rt::alloc::ddr_slice_with(contexts, |_| [(0, 0); MAX_SEGS]);
        self.0.is_some()
    }

    /// Stores `segs` as context `i`'s; false when they do not fit.
    pub fn set(&mut self, i: usize, segs: &[(u64, u32)]) -> bool {
        match self.0.as_deref_mut().and_then(|t| t.get_mut(i)) {
            Some(row) if segs.len() <= MAX_SEGS => {
                row[..segs.len()].copy_from_slice(segs);
                true
            }
            _ => false,
        }
    }

    /// Context `i`'s first `n` segments.
    pub fn get(&self, i: usize, n: u8) -> &[(u64, u32)] {
        self.0.as_deref().and_then(|t| t.get(i)).map_or(&[][..], |row| &row[..usize::from(n).min(MAX_SEGS)])
    }
}

/// Namespace Not Ready with DNR: the remote namespace differs from the
/// configuration (NVMe Base 2.0 §4.6.1.2.1, status 82h).
pub(crate) const NAMESPACE_NOT_READY_DNR: Status = Status { sct: 0, sc: 0x82, dnr: true };

/// What an I/O does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Flush,
    WriteZeroes,
    /// Compare the device's blocks with the I/O's data.
    Compare,
    /// Dataset Management (NVM Command Set 1.0 §3.2.3): the data is the
    /// list of `nr0 + 1` ranges; `attributes` is CDW11 (bit 2: deallocate).
    Dsm { nr0: u8, attributes: u32 },
}

impl Op {
    /// The I/O carries data to the device (Write, and the operands of
    /// Compare and Dataset Management).
    pub fn sends_data(self) -> bool {
        matches!(self, Op::Write | Op::Compare | Op::Dsm { .. })
    }
}

/// Where an I/O's data is.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    None,
    /// Host memory of PCIe function `function`, in transfer order.
    Host { function: u16, segs: &'a [(u64, u32)] },
    /// This core's staging pages, from the first page's first byte.
    Staged(&'a Pages),
}

/// One I/O.
#[derive(Clone, Copy)]
pub struct Io<'a> {
    pub op: Op,
    pub lba: u64,
    /// Blocks (not 0's based; 0 for Flush and Dataset Management).
    pub blocks: u32,
    /// Bytes of data (`blocks` x block size, or the DSM range list).
    pub len: u32,
    pub data: Data<'a>,
}

/// The block layer's DMA cookies: [`KIND`](cookie::KIND) in the top 4
/// bits (the engine dispatches on it), a device kind in bits 27:24, the
/// device's own index below.
pub mod cookie {
    /// Engine-level cookie kind of everything the block layer moves.
    pub const KIND: u32 = 8;
    /// RAM device data moves (index: tag).
    pub const RAM: u32 = 1;
    /// RAM device: host operands fetched for Compare / DSM (index: context).
    pub const RAM_FETCH: u32 = 2;
    /// NVMe/TCP write data staged from the host (index: command slot).
    pub const NET_STAGE: u32 = 3;
    /// NVMe/TCP read data moved out of a socket buffer (index: controller).
    pub const NET_RX: u32 = 4;
    /// Crypto device bounce moves (index: its context).
    pub const CRYPTO: u32 = 5;
    /// EC device moves between the upper buffer and fragments (index: its context).
    pub const EC: u32 = 6;
    /// Local SSD device moves between the host and staging (index: its context).
    pub const SSD: u32 = 7;

    pub const fn make(device: u32, index: u32) -> u32 {
        KIND << 28 | device << 24 | (index & 0x00ff_ffff)
    }
}

/// Finished I/Os of one device waiting for `take_done`: one slot per tag,
/// so it cannot overflow (a tag finishes once).
/// Most I/Os in the layer at once from all its submitters: the engine's
/// command slots and the NVMe/TCP target's. Every one of them may finish
/// in one pass, so the finished list holds that many.
const MAX_IN_LAYER: usize = MAX_TAGS + crate::nvmf::target::MAXCMD;

struct Done {
    list: [(Tag, Status); MAX_IN_LAYER],
    n: usize,
}

impl Done {
    const EMPTY: Done = Done { list: [(0, Status::SUCCESS); MAX_IN_LAYER], n: 0 };

    fn push(&mut self, tag: Tag, st: Status) {
        if self.n < self.list.len() {
            self.list[self.n] = (tag, st);
            self.n += 1;
        } else {
            // More I/Os than the submitters can have in the layer: a
            // bookkeeping bug; say so instead of losing it silently.
            defmt::error!("block: finished list full, I/O {=u16:#x} lost", tag);
        }
    }

    /// Moves finished I/Os into `out`; returns how many.
    fn take(&mut self, out: &mut [(Tag, Status)]) -> usize {
        let mut k = 0;
        while k < out.len() && self.n > 0 {
            self.n -= 1;
            out[k] = self.list[self.n];
            k += 1;
        }
        k
    }

    fn any(&self) -> bool {
        self.n > 0
    }
}

/// The block devices of one data-plane core.
pub struct Stack {
    pub pool: Pool,
    ram: ram::Ram,
    fabric: Option<&'static mut Fabric>,
    crypto: Option<&'static mut crypto::Crypto>,
    ec: Option<&'static mut ec::Ec>,
    ssd: Option<&'static mut ssd::Ssd>,
    /// Completions decided at submission (bad request, no path).
    done: Done,
    /// DMA pushed: the owner must kick its channel.
    pub kick: bool,
}

impl Stack {
    pub const INIT: Stack = Stack { pool: Pool::EMPTY, ram: ram::Ram::INIT, fabric: None, crypto: None, ec: None, ssd: None, done: Done::EMPTY, kick: false };

    /// Allocates the core's staging pages and device buffers.
    pub fn start(&mut self) -> bool {
        self.pool.start() && self.ram.start()
    }

    /// Attaches this core's NVMe/TCP initiator (remote namespaces).
    pub fn attach_fabric(&mut self, f: &'static mut Fabric) {
        self.fabric = Some(f);
    }

    /// The staging pages and the NVMe/TCP side (its stacks serve the
    /// target too), borrowed together.
    pub fn parts(&mut self) -> (&mut Pool, Option<&mut Fabric>) {
        (&mut self.pool, self.fabric.as_deref_mut())
    }

    /// Attaches this core's crypto device (encrypted namespaces).
    pub fn attach_crypto(&mut self, c: &'static mut crypto::Crypto) {
        self.crypto = Some(c);
    }

    /// Attaches this core's EC device (erasure-coded namespaces).
    pub fn attach_ec(&mut self, e: &'static mut ec::Ec) {
        self.ec = Some(e);
    }

    /// Attaches this core's local SSD device (local namespaces).
    pub fn attach_ssd(&mut self, s: &'static mut ssd::Ssd) {
        self.ssd = Some(s);
    }

    fn finish(&mut self, tag: Tag, st: Status) {
        self.done.push(tag, st);
    }

    /// Starts `io` on namespace `ns` (of the boot table, or attached at
    /// run time: encrypted by a crypto device made through the
    /// management API); its completion comes back under `tag`.
    pub fn submit(&mut self, chan: &mut Channel, ns: &Namespace, tag: Tag, io: &Io) {
        if ns.crypto.is_none() {
            // A plain namespace (`submit_plain` without its check).
            self.submit_lower(chan, ns, tag, io);
            return self.fold_kicks();
        }
        match io.op {
            // Nothing to transform: straight to the lower device (not
            // through `submit_plain`, which refuses encrypted namespaces).
            Op::Flush => {
                self.submit_lower(chan, ns, tag, io);
                return self.fold_kicks();
            }
            Op::Read | Op::Write => {
                let Some(c) = self.crypto.as_deref_mut() else { return self.finish(tag, NAMESPACE_NOT_READY_DNR) };
                c.submit(chan, &mut self.pool, ns, tag, io);
                self.lower_pass(chan);
                return self.fold_kicks();
            }
            // Zeroes, compare and deallocate would have to be
            // encrypted too: not offered on an encrypted namespace.
            _ => self.finish(tag, Status::INVALID_OPCODE),
        }
    }

    /// Starts `io` on a namespace without encryption (an encrypted one is
    /// refused: the NVMe/TCP target serves plain devices only).
    pub fn submit_plain(&mut self, chan: &mut Channel, ns: &Namespace, tag: Tag, io: &Io) {
        if ns.crypto.is_some() {
            return self.finish(tag, NAMESPACE_NOT_READY_DNR);
        }
        self.submit_lower(chan, ns, tag, io);
        self.fold_kicks();
    }

    /// `io` to the device that holds `ns`'s blocks (RAM or remote).
    fn submit_lower(&mut self, chan: &mut Channel, ns: &Namespace, tag: Tag, io: &Io) {
        match ns.backend {
            Backend::Ram(dev) => self.ram.submit(chan, &self.pool, &dev, tag, io),
            Backend::Remote { ctrl, nsid } => {
                if config::state(ns.index) == config::NS_MISMATCH {
                    return self.finish(tag, NAMESPACE_NOT_READY_DNR);
                }
                let Some(f) = self.fabric.as_deref_mut() else { return self.finish(tag, PATH_ERROR) };
                f.submit(chan, &mut self.pool, tag, ctrl, nsid, io);
            }
            Backend::Ec { .. } => {
                let (Some(e), Some(f)) = (self.ec.as_deref_mut(), self.fabric.as_deref_mut()) else { return self.finish(tag, PATH_ERROR) };
                e.submit(chan, &mut self.pool, f, ns, tag, io);
            }
            Backend::Local { ssd, nsid } => {
                if config::state(ns.index) != config::NS_READY {
                    return self.finish(tag, NAMESPACE_NOT_READY_DNR);
                }
                let Some(s) = self.ssd.as_deref_mut() else { return self.finish(tag, NAMESPACE_NOT_READY_DNR) };
                s.submit(chan, &mut self.pool, ssd, nsid, tag, io);
            }
        }
    }

    /// Sends the crypto device's staged I/Os to their lower devices.
    #[inline(never)]
    fn lower_pass(&mut self, chan: &mut Channel) -> usize {
        let mut n = 0;
        while let Some((i, ns, op, lba, blocks, len, pages)) = self.crypto.as_deref_mut().and_then(|c| c.take_lower()) {
            let io = Io { op, lba, blocks, len, data: Data::Staged(&pages) };
            self.submit_lower(chan, &ns, crypto::LOWER | i as Tag, &io);
            n += 1;
        }
        n
    }

    fn fold_kicks(&mut self) {
        self.kick |= self.ram.kick
            || self.fabric.as_deref().is_some_and(|f| f.kick)
            || self.crypto.as_deref().is_some_and(|c| c.kick)
            || self.ec.as_deref().is_some_and(|e| e.kick)
            || self.ssd.as_deref().is_some_and(|s| s.kick);
    }

    /// A lower I/O of the crypto device (`tag` has `crypto::LOWER`) or a
    /// member I/O of the EC device (`ec::LOWER`) finished.
    fn lower_done(&mut self, chan: &mut Channel, tag: Tag, st: Status) {
        if tag & crypto::LOWER != 0 {
            if let Some(c) = self.crypto.as_deref_mut() {
                c.lower_done(chan, &mut self.pool, usize::from(tag & !crypto::LOWER), st);
            }
        } else if let (Some(e), Some(f)) = (self.ec.as_deref_mut(), self.fabric.as_deref_mut()) {
            e.lower_done(chan, &mut self.pool, f, tag, st);
        }
    }

    /// Whether `tag` names a stacked device's lower I/O (not the engine's).
    fn is_lower(tag: Tag) -> bool {
        tag & (crypto::LOWER | ec::LOWER) != 0
    }

    /// A DMA chain of the block layer finished (`index`: the cookie's low
    /// 28 bits; `bytes` moved). An I/O this finishes is returned at once
    /// (the common case, a RAM read or write: no queueing); others come
    /// out of [`take_done`](Self::take_done).
    pub fn dma_done(&mut self, chan: &mut Channel, index: u32, bytes: u32, ok: bool) -> Option<(Tag, Status)> {
        let (device, i) = (index >> 24, (index & 0x00ff_ffff) as usize);
        match device {
            cookie::RAM => {
                let (tag, st) = self.ram.moved(i, ok);
                if !Self::is_lower(tag) {
                    return Some((tag, st));
                }
                self.lower_done(chan, tag, st);
            }
            cookie::EC => {
                if let (Some(e), Some(f)) = (self.ec.as_deref_mut(), self.fabric.as_deref_mut()) {
                    e.dma_done(chan, &mut self.pool, f, i, ok);
                }
            }
            cookie::CRYPTO => {
                if let Some(c) = self.crypto.as_deref_mut() {
                    c.dma_done(chan, &mut self.pool, i, ok);
                }
                self.lower_pass(chan);
            }
            cookie::SSD => {
                if let Some(s) = self.ssd.as_deref_mut() {
                    s.dma_done(chan, &mut self.pool, i, ok);
                }
            }
            cookie::RAM_FETCH => self.ram.fetched(chan, i, bytes, ok),
            cookie::NET_STAGE => {
                if let Some(f) = self.fabric.as_deref_mut() {
                    f.stage_done(&mut self.pool, i, ok);
                }
            }
            cookie::NET_RX => {
                if let Some(f) = self.fabric.as_deref_mut() {
                    f.rx_dma_done(&mut self.pool, i, ok);
                }
            }
            _ => defmt::error!("block: unknown DMA cookie index {=u32:#x}", index),
        }
        self.fold_kicks();
        None
    }

    /// Work of one reactor pass (`nic`: the NIC rang; `nvmf`: a remote
    /// controller's state changed).
    pub fn poll(&mut self, chan: &mut Channel, nic: bool, nvmf: bool) -> usize {
        let mut work = if self.ram.nwaiting > 0 { self.ram.poll(chan) } else { 0 };
        if let Some(f) = self.fabric.as_deref_mut() {
            work += f.poll(chan, &mut self.pool, nic, nvmf);
        }
        if let (Some(e), Some(f)) = (self.ec.as_deref_mut(), self.fabric.as_deref_mut()) {
            // Member I/Os unanswered too long: their member is lost.
            let mut late = [0 as Tag; 16];
            let n = e.expired(dpu_hal::csr::time(), &mut late);
            for &t in &late[..n] {
                f.cancel(&mut self.pool, t, PATH_ERROR);
            }
            work += n + e.poll(chan, &mut self.pool, f);
        }
        if let Some(s) = self.ssd.as_deref_mut() {
            work += s.poll(chan, &mut self.pool);
        }
        if let Some(c) = self.crypto.as_deref_mut() {
            work += c.poll(chan, &mut self.pool);
            work += self.lower_pass(chan);
        }
        self.fold_kicks();
        work
    }

    /// Whether DMA was pushed since the last call (the owner kicks).
    /// Every entry point folds its devices' kicks into `kick`.
    #[inline]
    pub fn take_kick(&mut self) -> bool {
        if !self.kick {
            return false;
        }
        self.kick = false;
        self.ram.kick = false;
        if let Some(f) = self.fabric.as_deref_mut() {
            f.kick = false;
        }
        if let Some(c) = self.crypto.as_deref_mut() {
            c.kick = false;
        }
        if let Some(e) = self.ec.as_deref_mut() {
            e.kick = false;
        }
        if let Some(s) = self.ssd.as_deref_mut() {
            s.kick = false;
        }
        true
    }

    /// Whether finished I/Os wait in [`take_done`](Self::take_done).
    #[inline]
    pub fn has_done(&self) -> bool {
        self.done.any()
            || self.ram.done.any()
            || self.fabric.as_deref().is_some_and(|f| f.has_done())
            || self.crypto.as_deref().is_some_and(|c| c.done.any())
            || self.ec.as_deref().is_some_and(|e| e.done.any())
            || self.ssd.as_deref().is_some_and(|s| s.done.any())
    }

    /// Finished I/Os (tag, status) into `out`; returns how many (call
    /// again while it fills `out`).
    #[inline(never)]
    pub fn take_done(&mut self, chan: &mut Channel, out: &mut [(Tag, Status)]) -> usize {
        if self.crypto.is_none() && self.ec.is_none() {
            // No stacked device: no lower I/O to route, the devices'
            // completions go straight to `out` (no staging list).
            let n = self.take_lower_done(out);
            self.fold_kicks();
            return n;
        }
        let mut n = 0;
        // The lower devices' completions; those of the crypto device's
        // lower I/Os go back to it (and may finish its I/Os).
        loop {
            let room = out.len() - n;
            if room == 0 {
                break;
            }
            let mut got = [(0 as Tag, Status::SUCCESS); 16];
            let want = room.min(got.len());
            let k = self.take_lower_done(&mut got[..want]);
            let last = k == 0;
            for &(tag, st) in &got[..k] {
                if Self::is_lower(tag) {
                    self.lower_done(chan, tag, st);
                } else {
                    out[n] = (tag, st);
                    n += 1;
                }
            }
            // Routing may have finished more (an EC I/O, then the crypto
            // I/O above it): go on until nothing comes.
            if last {
                break;
            }
        }
        if let Some(c) = self.crypto.as_deref_mut() {
            n += c.take_done(&mut out[n..]);
        }
        self.fold_kicks();
        n
    }

    fn take_lower_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        let mut n = self.done.take(out);
        n += self.ram.take_done(&mut out[n..]);
        if let Some(f) = self.fabric.as_deref_mut() {
            n += f.take_done(&mut out[n..]);
        }
        // The EC device's finished I/Os: the engine's, or the crypto
        // device's lower I/Os.
        if let Some(e) = self.ec.as_deref_mut() {
            n += e.take_done(&mut out[n..]);
        }
        if let Some(s) = self.ssd.as_deref_mut() {
            n += s.take_done(&mut out[n..]);
        }
        n
    }

    /// Gives up on I/O `tag` (host Abort, queue deletion, controller
    /// reset): it completes with `st` as soon as no device refers to it.
    /// False if the I/O cannot be cancelled (it runs to completion by
    /// itself, promptly: local DMA).
    pub fn cancel(&mut self, tag: Tag, st: Status) -> bool {
        let tag = match self.crypto.as_deref_mut().map(|c| c.cancel(&mut self.pool, tag, st)) {
            Some(crypto::Cancelled::Soon) => return true,
            Some(crypto::Cancelled::Lower(lower)) => lower,
            _ => tag,
        };
        if self.ec.as_deref_mut().is_some_and(|e| e.cancel(tag, st)) {
            return true;
        }
        let r = self.fabric.as_deref_mut().is_some_and(|f| f.cancel(&mut self.pool, tag, st));
        self.kick |= self.fabric.as_deref().is_some_and(|f| f.kick);
        r || tag & crypto::LOWER != 0
    }

    /// When the layer next needs a pass without an interrupt (timers of
    /// the devices), in mtime ticks.
    #[inline(never)]
    pub fn deadline(&mut self) -> u64 {
        let ec = self.ec.as_deref().map_or(u64::MAX, |e| e.deadline());
        let ssd = self.ssd.as_deref().map_or(u64::MAX, |s| s.deadline());
        self.fabric.as_deref_mut().map_or(u64::MAX, |f| f.deadline()).min(ec).min(ssd)
    }
}
