//! Firmware activation without reset (NVMe Base 2.0 §5.12, Firmware
//! Commit action 011b; Identify Controller FRMW bit 4, MTFA).
//!
//! The old image, once the update service has verified the slot and
//! recorded it in the boot journal as pending (on trial, as for an
//! activation at reset): every enabled controller - the PF and each
//! enabled VF - gets CSTS.PP (§3.1.4.6) and a Firmware Activation
//! Starting notice if its host enabled them (AEC bit 9); no new admin
//! command is fetched and those in progress finish; then every engine
//! stops fetching the functions' I/O commands and, once none is in flight
//! (local or remote: NVMe/TCP commands complete first), reports their
//! queues; the admin service writes the controller handover record
//! (`dpu_nvme::handover`, one block per function) at `HANDOVER_BASE` and
//! asks for a warm restart (the PCIe side with the SR-IOV state, host
//! memory and DDR stay).
//!
//! The new image, at boot: a valid record restores each function as the
//! host left it - the VFs the host enabled (NumVFs as the endpoint still
//! shows it), CC, admin queue pair with its pointers, features, held
//! AERs, every I/O queue on an engine with its pointers - without a CC.EN
//! toggle. Functions with remote namespaces wait (at most
//! [`ATTACH_WAIT_NOW`]) for their NVMe/TCP controllers to connect, as at
//! boot, before their queues are placed; then the queues go to the
//! engines, their doorbells are re-read, the Commit command is completed
//! (success) and CSTS.PP cleared everywhere. A record that is torn, of
//! another format or names something this image cannot restore gives a
//! normal boot: a controller the host had enabled is not ready (CSTS.RDY
//! clear with CC.EN set), and the host resets it.
//!
//! 011b activates at the next reset instead (1/0Bh, logged with the
//! reason) when a controller is being reset or the queues would not fit
//! the record.

use super::*;
use dpu_hal::memory_map::{HANDOVER_BASE, HANDOVER_SIZE};
use dpu_nvme::handover::{self, Controller, IoCq, IoSq, Writer};
use dpu_nvme::queue::{CreateCq, CreateSq};

/// Maximum Time for Firmware Activation reported in Identify Controller
/// (100 ms units): 500 ms. Measured on the simulated card (system test
/// `host_activate_now`, an 876 KB image): CSTS.PP set to clear in 192 ms
/// - the boot ROM reads and checks the bootloader (30 ms), the bootloader
/// reads and verifies the slot from flash (158 ms, about 180 ns a byte),
/// the image starts and restores the controllers (3 ms, plus the NVMe/TCP
/// connections of remote namespaces).
pub const MTFA: u16 = 5;

/// Largest image activated without reset within [`MTFA`]: (500 ms - 40 ms)
/// at 180 ns a byte is 2.5 MB; 2 MiB leaves a margin. A larger one is
/// committed with Firmware Activation Requires Maximum Time Violation
/// (1/12h) and activates at the next reset.
pub const MAX_IMAGE_NOW: u32 = 2 << 20;

/// The new image waits this long (mtime ticks: 200 ms) for the restored
/// functions' remote namespaces to connect before it places their queues
/// anyway (I/O to a namespace still attaching then waits for it): with
/// the restart itself, the pause stays within [`MTFA`].
pub const ATTACH_WAIT_NOW: u64 = dpu_hal::memory_map::TIMEBASE_HZ / 5;

/// Longest wait for the NVMe/TCP connections to close before the
/// restart (mtime ticks: 20 ms; a FIN is acknowledged within a round
/// trip, tens of microseconds, unless the target is gone).
const CLOSE_WAIT: u64 = dpu_hal::memory_map::TIMEBASE_HZ / 50;
/// Time left for the last ACKs to leave the NIC once every connection
/// is closed (mtime ticks: 20 us).
const SETTLE: u64 = 20 * US;
/// mtime ticks per microsecond.
const US: u64 = dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000;

/// Restarts the card into the new image (the handover record is written).
fn restart() -> ! {
    dpu_hal::finisher::warm_restart();
    dpu_rt::park();
}

/// Bytes of record this image writes and reads: every function (PF and
/// all VFs) with all its I/O queues, the largest configuration.
pub const RECORD_BYTES: usize = handover::record_bytes(MAX_FUNCTIONS, MAX_FUNCTIONS * 2 * (QIDS - 1));
const _: () = assert!(RECORD_BYTES <= HANDOVER_SIZE, "the reserved handover region holds the largest record");

/// Where an activation without reset stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    /// CSTS.PP set and the notices queued: the admin commands in
    /// progress finish (none is fetched), the notices go out.
    Draining,
    /// Engines still to report the functions' queues (`Done::Paused`s).
    Pausing { acks: u16 },
    /// Record written: the NVMe/TCP connections close in order
    /// (`crate::nvmf::quiesce`), until mtime `until` at most; then the
    /// card restarts at mtime `settle` (set once all are closed: the
    /// last ACKs leave the NIC).
    Closing { until: u64, settle: u64 },
    /// New image: the restored functions' remote namespaces connecting
    /// (until mtime `until`).
    Attaching { until: u64 },
    /// Handed-over queues being created on the engines: `next` walks
    /// (function, CQs then SQs, QID), `acks` creates not yet answered.
    Restoring { acks: u16, next: u32 },
    /// Their doorbells re-read (`next` walks (function, QID)), then the
    /// Commit completes.
    Resuming { next: u32 },
}

/// A queue reported by an engine while pausing.
#[derive(Clone, Copy)]
pub struct Paused {
    pub cq: Option<IoCq>,
    pub sq: Option<IoSq>,
}

impl Paused {
    pub const NONE: Paused = Paused { cq: None, sq: None };
}

/// Steps of the restore walk per function: CQs, then SQs.
const WALK: u32 = 2 * QIDS as u32;

impl Admin {
    /// The functions handed over: present (the PF, enabled VFs), enabled
    /// by their host and not being reset (one whose host disables it
    /// during the pause is torn down as usual and comes back disabled).
    fn handed(&self) -> u128 {
        let mut m = 0u128;
        for (f, fun) in self.funcs.iter().enumerate() {
            if fun.present && fun.enabled && fun.reset == Reset::None {
                m |= 1u128 << f;
            }
        }
        m
    }

    /// Why a commit of action 011b may not activate now (then it
    /// activates at the next reset), or `None`.
    pub(super) fn activation_refusal(&self) -> Option<&'static str> {
        if !self.funcs[0].enabled {
            return Some("the PF is not enabled");
        }
        if self.funcs.iter().any(|f| f.present && f.reset != Reset::None) {
            return Some("a controller is being reset");
        }
        if self.awaiting != 0 {
            return Some("a controller waits for its remote namespaces");
        }
        let (mut n, mut queues) = (0usize, 0usize);
        for f in self.funcs.iter().filter(|f| f.present && f.enabled) {
            n += 1;
            queues += (f.cq_exists & !1).count_ones() as usize + (f.sq_exists & !1).count_ones() as usize;
        }
        if handover::record_bytes(n, queues) > RECORD_BYTES {
            return Some("the controllers' queues do not fit the handover record");
        }
        None
    }

    /// Takes the record buffer and a queue table for each function in
    /// `funcs` (DDR, once). False: no memory.
    fn take_memory(&mut self, funcs: u128) -> bool {
        if self.handover_buf.is_none() {
            self.handover_buf = dpu_rt::alloc::ddr_bytes(RECORD_BYTES, 64);
        }
        for f in 0..MAX_FUNCTIONS {
            if funcs & 1u128 << f != 0 && self.paused[f].is_none() {
                self.paused[f] = dpu_rt::alloc::ddr_put([Paused::NONE; QIDS]);
            }
            if funcs & 1u128 << f != 0 && self.paused[f].is_none() {
                return false;
            }
        }
        self.handover_buf.is_some()
    }

    /// Starts the pause: CSTS.PP on every enabled controller, the
    /// notices queued (the PF's posted now), admin fetching stopped.
    pub(super) fn start_activation(&mut self) {
        let handed = self.handed();
        if !self.take_memory(handed) {
            defmt::error!("nvme fn0: no memory to hand the controllers over: the new image activates at the next reset");
            self.post(0, Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
            return;
        }
        defmt::info!("nvme: firmware activation without reset: pausing command processing of {=u32} controller(s)", handed.count_ones());
        for f in 0..MAX_FUNCTIONS as u16 {
            if handed & 1u128 << f == 0 {
                continue;
            }
            self.set_csts(f, self.funcs[usize::from(f)].csts | regs::CSTS_PP);
            if let Some(p) = self.paused[usize::from(f)].as_deref_mut() {
                *p = [Paused::NONE; QIDS];
            }
            if f != 0 {
                // Posted by `step` once the VF's admin command in progress,
                // if any, is done (a held AER completes with it).
                self.funcs[usize::from(f)].admin.queue_event(shared::Event::FIRMWARE_ACTIVATION_STARTING);
            }
        }
        let fun = &mut self.funcs[0];
        if fun.admin.queue_event(shared::Event::FIRMWARE_ACTIVATION_STARTING) && fun.cq.available() > 0 {
            if let Some(c) = fun.admin.next_completion() {
                // Posted now, the Commit still outstanding: the CQE slot
                // of the function is free (its command waits).
                let commit = fun.sqe;
                self.post_held(0, OPC_AER, c.cid, c.dw0, c.status);
                let fun = &mut self.funcs[0];
                fun.sqe = commit;
                fun.cur = Cur::Waiting;
                self.notice_posting = true;
            }
        }
        self.activation = Activation::Draining;
    }

    /// An engine's report of a paused queue.
    pub(super) fn queue_report(&mut self, func: u16, qid: u16, cq: bool, entries: u16, addr: u64, link: u16, irq: bool, a: u16, b: u16, phase: bool) {
        if usize::from(func) >= MAX_FUNCTIONS || usize::from(qid) >= QIDS || !matches!(self.activation, Activation::Pausing { .. }) {
            return;
        }
        let Some(p) = self.paused[usize::from(func)].as_deref_mut().map(|p| &mut p[usize::from(qid)]) else { return };
        if cq {
            p.cq = Some(IoCq { def: CreateCq { qid, entries, addr, vector: link, interrupts: irq }, tail: a, head: b, phase });
        } else {
            p.sq = Some(IoSq { def: CreateSq { qid, entries, addr, cqid: link, priority: 0 }, head: a, tail: b });
        }
    }

    /// `Done::Paused` / a create acknowledged while restoring. Returns
    /// whether the message belonged to the activation.
    pub(super) fn activation_ack(&mut self, what: Done) -> bool {
        match (self.activation, what) {
            (Activation::Pausing { acks }, Done::Paused) => {
                self.activation = Activation::Pausing { acks: acks.saturating_sub(1) };
                true
            }
            (Activation::Restoring { acks, next }, Done::CreateCq | Done::CreateSq) => {
                self.activation = Activation::Restoring { acks: acks.saturating_sub(1), next };
                true
            }
            _ => false,
        }
    }

    /// Called every pass while an activation is under way: moves it on.
    pub(super) fn activation_step(&mut self) {
        match self.activation {
            Activation::None => {}
            Activation::Draining => self.drained(),
            Activation::Pausing { acks: 0 } => self.hand_over(),
            Activation::Pausing { .. } => {}
            Activation::Closing { until, settle } => {
                let (io, admin) = crate::nvmf::quiesce::all_closed();
                let now = dpu_hal::csr::time();
                if io && admin {
                    if settle == u64::MAX {
                        self.activation = Activation::Closing { until, settle: now + SETTLE };
                        self.timer = self.timer.min(now + SETTLE);
                    } else if now >= settle {
                        defmt::info!("nvme: NVMe/TCP connections closed: warm restart into the new image");
                        restart();
                    } else {
                        self.timer = self.timer.min(settle);
                    }
                } else if now >= until {
                    defmt::warn!("nvme: NVMe/TCP connections not all closed after {=u64} us (I/O queues {=bool}, admin queues {=bool}): warm restart anyway", CLOSE_WAIT / US, io, admin);
                    restart();
                } else {
                    self.timer = self.timer.min(now + 20 * US);
                }
            }
            Activation::Attaching { until } => {
                let handed = self.handed();
                let ready = (0..MAX_FUNCTIONS as u16).filter(|&f| handed & 1u128 << f != 0).all(config::function_ready);
                let now = dpu_hal::csr::time();
                if ready || now >= until {
                    if !ready {
                        defmt::warn!("nvme: remote namespaces still attaching: handed-over queues placed without them (their I/O waits)");
                    }
                    self.activation = Activation::Restoring { acks: 0, next: 0 };
                    self.place_queues();
                } else {
                    self.timer = self.timer.min(until);
                }
            }
            Activation::Restoring { .. } => self.place_queues(),
            Activation::Resuming { .. } => self.resume(),
        }
    }

    /// Draining: once every handed-over function's admin command is done
    /// and its notice posted, the engines are told to pause them all (one
    /// message each).
    fn drained(&mut self) {
        if self.notice_posting || self.data_owner.is_some() {
            return;
        }
        let handed = self.handed();
        for f in 1..MAX_FUNCTIONS {
            let fun = &self.funcs[f];
            if handed & 1u128 << f != 0 && (fun.cur != Cur::Idle || (fun.admin.completion_due() && fun.cq.available() > 0)) {
                return;
            }
        }
        let (lo, hi) = (handed as u64, (handed >> 64) as u64);
        let mut acks = 0u16;
        for h in 0..HARTS {
            if self.to[h].is_some() {
                if !self.send(h, ToEngine::Pause { lo, hi }) {
                    // A full ring: the engines already told are let go
                    // (no partial pause), and this is tried next pass.
                    for g in 0..h {
                        if self.to[g].is_some() {
                            self.send(g, ToEngine::Unpause { lo, hi });
                        }
                    }
                    return;
                }
                acks += handed.count_ones() as u16;
            }
        }
        self.activation = Activation::Pausing { acks };
    }

    /// Every engine reported: the record goes to DDR and the card
    /// restarts.
    fn hand_over(&mut self) {
        let revision = running_revision();
        let handed = self.handed();
        let Some(buf) = self.handover_buf.as_deref_mut() else { return };
        let written = (|| {
            let mut w = Writer::new(buf, revision)?;
            for f in 0..MAX_FUNCTIONS {
                if handed & 1u128 << f == 0 {
                    continue;
                }
                let fun = &self.funcs[f];
                let mut c = Controller::new(f as u16);
                c.cc = fun.cc;
                c.aqa = pcie::bar_read32(f as u16, off::AQA);
                c.asq = fun.asq;
                c.acq = fun.acq;
                c.admin_sq = fun.sq;
                c.admin_cq = CqPointers { reserved: 0, ..fun.cq };
                c.keep_features(&fun.admin.features);
                let held = fun.admin.held_cids();
                c.naers = held.len() as u8;
                c.aers[..held.len()].copy_from_slice(held);
                c.commit_cid = (f == 0).then(|| fun.sqe.cid());
                w.function(&c)?;
                let Some(paused) = self.paused[f].as_deref() else {
                    return Err(handover::Error::Field("a function's queue table"));
                };
                for q in paused.iter().filter_map(|p| p.cq.as_ref()) {
                    w.cq(q)?;
                }
                for q in paused.iter().filter_map(|p| p.sq.as_ref()) {
                    w.sq(q)?;
                }
            }
            w.finish()
        })();
        match written {
            Ok(n) => {
                dpu_hal::mem::write(HANDOVER_BASE, &buf[..n]);
                if crate::nvmf::quiesce::request() {
                    defmt::info!("nvme: handover record written ({=u32} controller(s), {=usize} bytes): closing the NVMe/TCP connections", handed.count_ones(), n);
                    // Every initiator looks at its next pass.
                    dpu_hal::mailbox::ring(crate::net::NET_HART, crate::nvmf::DOORBELL_NVMF);
                    for q in 0..crate::net::DATA_CORES {
                        dpu_hal::mailbox::ring(crate::net::FIRST_DATA_HART + q, crate::nvmf::DOORBELL_NVMF);
                    }
                    self.activation = Activation::Closing { until: dpu_hal::csr::time() + CLOSE_WAIT, settle: u64::MAX };
                } else {
                    defmt::info!("nvme: handover record written ({=u32} controller(s), {=usize} bytes): warm restart into the new image", handed.count_ones(), n);
                    restart();
                }
            }
            Err(e) => {
                // Cannot hand over: the engines fetch again, the image
                // activates at the next reset.
                defmt::error!("nvme: handover record not written: {=str}; the new image activates at the next reset", e.reason());
                let (lo, hi) = (handed as u64, (handed >> 64) as u64);
                for h in 0..HARTS {
                    if self.to[h].is_some() {
                        self.send(h, ToEngine::Unpause { lo, hi });
                    }
                }
                self.activation = Activation::None;
                for f in 0..MAX_FUNCTIONS as u16 {
                    if handed & 1u128 << f != 0 {
                        self.set_csts(f, self.funcs[usize::from(f)].csts & !regs::CSTS_PP);
                    }
                }
                self.post(0, Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
            }
        }
    }

    /// At boot: restores the functions from a handover record, if there
    /// is a valid one. Returns whether the PF is initialized (restored,
    /// or not ready after a refused record); else the caller
    /// initializes it as at power-on.
    pub(super) fn restore(&mut self) -> bool {
        // The header first: an ordinary boot finds none and goes on at once.
        let mut header = [0u8; handover::HEADER_BYTES];
        dpu_hal::mem::read(HANDOVER_BASE, &mut header);
        if matches!(handover::parse(&header), Err(handover::Error::Blank)) {
            return false;
        }
        let vfs = usize::from(pcie::num_vfs()).min(MAX_FUNCTIONS - 1);
        let all = if vfs + 1 >= 128 { u128::MAX } else { (1u128 << (vfs + 1)) - 1 };
        let memory = self.take_memory(all);
        let Some(buf) = self.handover_buf.take() else { return false };
        let len = (u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize).saturating_add(handover::HEADER_BYTES).min(buf.len());
        dpu_hal::mem::read(HANDOVER_BASE, &mut buf[..len]);
        buf[len..].fill(0);
        // Used once, whatever it holds.
        dpu_hal::mem::write(HANDOVER_BASE, &[0u8; handover::HEADER_BYTES]);
        let done = match check_record(buf, vfs as u16) {
            Err(None) => false,
            Err(Some(why)) => {
                defmt::warn!("nvme admin: handover record refused ({=str}): controllers start as after a reset", why);
                self.host_saw_enabled(vfs as u16);
                true
            }
            Ok(_) if !memory => {
                defmt::warn!("nvme admin: no memory to restore the handover record: controllers start as after a reset");
                self.host_saw_enabled(vfs as u16);
                true
            }
            Ok(record) => {
                self.restore_with(&record, vfs as u16);
                true
            }
        };
        self.handover_buf = Some(buf);
        done
    }

    /// [`Admin::restore`] once the record is checked: the enabled VFs
    /// come back (as after VF Enable), then each function in the record
    /// as it was.
    fn restore_with(&mut self, record: &handover::Record<'_>, vfs: u16) {
        for f in 0..=vfs {
            self.init_function(f);
            if let Some(p) = self.paused[usize::from(f)].as_deref_mut() {
                *p = [Paused::NONE; QIDS];
            }
        }
        if vfs > 0 {
            defmt::info!("nvme admin: {=u16} VF(s) enabled (kept across the activation)", vfs);
        }
        let (mut n, mut queues) = (0u32, 0u32);
        for r in record.functions() {
            let c = r.controller;
            let f = c.func;
            n += 1;
            // init_function cleared the host's registers: as they were.
            pcie::bar_write32(f, off::CC, c.cc);
            pcie::bar_write32(f, off::AQA, c.aqa);
            pcie::bar_write64(f, off::ASQ, c.asq);
            pcie::bar_write64(f, off::ACQ, c.acq);
            let fun = &mut self.funcs[usize::from(f)];
            fun.cc = c.cc;
            fun.enabled = true;
            fun.asq = c.asq;
            fun.acq = c.acq;
            fun.sq = c.admin_sq;
            fun.cq = c.admin_cq;
            // The host may have rung the admin doorbells meanwhile.
            let _ = fun.sq.set_tail(pcie::doorbell(f, 0));
            let _ = fun.cq.set_head(pcie::doorbell(f, 1));
            c.restore_features(&mut fun.admin.features);
            fun.admin.hold_handed_over(c.held_aers());
            if f == 0 {
                // The Commit command: completed once the queues are back.
                fun.sqe = held_sqe(OPC_FIRMWARE_COMMIT, c.commit_cid.unwrap_or(0));
                fun.cur = Cur::Waiting;
                fun.pending_qid = 0xfffd;
                fun.cq.reserve();
            }
            self.set_csts(f, regs::CSTS_RDY | regs::CSTS_PP);
            let Some(table) = self.paused[usize::from(f)].as_deref_mut() else { continue };
            for q in r.cqs() {
                table[usize::from(q.def.qid)].cq = Some(q);
                queues += 1;
            }
            for q in r.sqs() {
                table[usize::from(q.def.qid)].sq = Some(q);
                queues += 1;
            }
        }
        defmt::info!(
            "nvme: restored {=u32} controller(s) from the handover record of image {=str}: {=u32} I/O queue(s) to hand to the engines",
            n,
            core::str::from_utf8(&record.revision).unwrap_or("?").trim_end(),
            queues
        );
        self.activation = Activation::Attaching { until: dpu_hal::csr::time() + ATTACH_WAIT_NOW };
    }

    /// Restoring: the handed-over queues go to the engines, as many as
    /// their rings take this pass (CQs of a function before its SQs, an
    /// SQ to its CQ's engine); once all are acknowledged, resuming.
    fn place_queues(&mut self) {
        let Activation::Restoring { mut acks, mut next } = self.activation else { return };
        while next < MAX_FUNCTIONS as u32 * WALK {
            let f = (next / WALK) as u16;
            let fi = usize::from(f);
            let (sqs, q) = ((next % WALK) >= QIDS as u32, (next % QIDS as u32) as u16);
            let entry = self.paused[fi].as_deref().map(|t| t[usize::from(q)]).unwrap_or(Paused::NONE);
            let sent = match (sqs, entry) {
                (false, Paused { cq: Some(c), .. }) if self.funcs[fi].enabled => {
                    let reach = remote_queue_limit(f, &self.live);
                    let Some(owner) = (0..HARTS)
                        .filter(|&h| self.to[h].is_some() && crate::net::data_queue(h).is_none_or(|n| n < reach))
                        .min_by_key(|&h| self.load[h])
                        .or_else(|| (0..HARTS).filter(|&h| self.to[h].is_some()).min_by_key(|&h| self.load[h]))
                    else {
                        break;
                    };
                    let (thr, time) = self.funcs[fi].admin.features.coalescing(c.def.vector).unwrap_or((0, 0));
                    let d = c.def;
                    let m = ToEngine::CreateCq { func: f, qid: d.qid, entries: d.entries, vector: d.vector, irq: d.interrupts, thr, time, addr: d.addr, tail: c.tail, head: c.head, phase: c.phase };
                    if !self.send(owner, m) {
                        break;
                    }
                    self.load[owner] += 1;
                    let fun = &mut self.funcs[fi];
                    fun.cq_exists |= bit(d.qid);
                    fun.owner[usize::from(d.qid)] = owner as u8;
                    fun.io_created = true;
                    true
                }
                (true, Paused { sq: Some(s), .. }) if self.funcs[fi].cq_exists & bit(s.def.cqid) != 0 => {
                    let owner = usize::from(self.funcs[fi].owner[usize::from(s.def.cqid)]);
                    let d = s.def;
                    if !self.send(owner, ToEngine::CreateSq { func: f, qid: d.qid, entries: d.entries, cqid: d.cqid, addr: d.addr, head: s.head }) {
                        break;
                    }
                    let fun = &mut self.funcs[fi];
                    fun.sq_exists |= bit(d.qid);
                    fun.sq_cq[usize::from(d.qid)] = d.cqid as u8;
                    true
                }
                _ => false,
            };
            if sent {
                acks += 1;
            }
            next += 1;
        }
        self.activation = Activation::Restoring { acks, next };
        if next >= MAX_FUNCTIONS as u32 * WALK && acks == 0 {
            self.activation = Activation::Resuming { next: 0 };
            self.resume();
        }
    }

    /// The engines hold the handed-over queues: their doorbells go to
    /// them and are read again (the host may have rung them meanwhile),
    /// as many as the rings take this pass; then the Commit completes,
    /// CSTS.PP clears and command processing resumes.
    fn resume(&mut self) {
        let Activation::Resuming { mut next } = self.activation else { return };
        while next < (MAX_FUNCTIONS * QIDS) as u32 {
            let (fi, q) = (next as usize / QIDS, (next as usize % QIDS) as u16);
            let fun = &self.funcs[fi];
            let f = fi as u16;
            if q > 0 && fun.enabled && (fun.cq_exists | fun.sq_exists) & bit(q) != 0 {
                let owner = usize::from(fun.owner[usize::from(q)]);
                let has_sq = fun.sq_exists & bit(q) != 0;
                let sq_owner = usize::from(fun.owner[usize::from(fun.sq_cq[usize::from(q)])]);
                let has_cq = fun.cq_exists & bit(q) != 0;
                // Both messages or neither: retried whole next pass.
                let room = |a: &Self, h: usize| a.to[h].as_ref().map_or(0, |t| t.free());
                let need_own = usize::from(has_cq) + usize::from(has_sq && sq_owner == owner);
                if room(self, owner) < need_own || (has_sq && sq_owner != owner && room(self, sq_owner) < 1) {
                    break;
                }
                if has_cq {
                    pcie::steer(f, 2 * q + 1, Some(owner));
                    self.send(owner, ToEngine::Resync { func: f, qid: q });
                }
                if has_sq {
                    pcie::steer(f, 2 * q, Some(sq_owner));
                    self.send(sq_owner, ToEngine::Resync { func: f, qid: q });
                }
            }
            next += 1;
        }
        if next < (MAX_FUNCTIONS * QIDS) as u32 {
            self.activation = Activation::Resuming { next };
            return;
        }
        self.activation = Activation::None;
        self.funcs[0].dw0 = 0;
        self.post(0, Status::SUCCESS);
        let mut n = 0u32;
        for f in 0..MAX_FUNCTIONS as u16 {
            let fun = &self.funcs[usize::from(f)];
            if fun.present && fun.enabled && fun.csts & regs::CSTS_PP != 0 {
                self.set_csts(f, regs::CSTS_RDY);
                n += 1;
            }
        }
        // The image confirms itself as after any boot (`crate::control`).
        defmt::info!("nvme: firmware activation complete: Firmware Commit completed, processing resumed on {=u32} controller(s)", n);
    }

    /// A normal boot after a refused record: a controller the host had
    /// enabled (the PF, each VF the host enabled) shows CC as the host
    /// wrote it and is not ready (CSTS.RDY clear), so that the host
    /// resets it; the firmware counts it as disabled, so the host's next
    /// CC.EN = 1 enables it whether or not the CC.EN = 0 before it was
    /// seen.
    fn host_saw_enabled(&mut self, vfs: u16) {
        for f in 0..=vfs {
            let cc = pcie::bar_read32(f, off::CC);
            self.init_function(f);
            if cc & 1 != 0 {
                pcie::bar_write32(f, off::CC, cc);
            }
        }
    }
}

/// Checks the record in `buf` whole before anything is restored: the PF
/// enabled, every function one the host enabled (at most `vfs` VFs), each
/// queue id one this image tracks. `Err(None)`: no record;
/// `Err(Some(why))`: a record this image does not restore.
fn check_record(buf: &[u8], vfs: u16) -> Result<handover::Record<'_>, Option<&'static str>> {
    let record = match handover::parse(buf) {
        Ok(r) => r,
        Err(handover::Error::Blank) => return Err(None),
        Err(e) => return Err(Some(e.reason())),
    };
    let mut pf = false;
    for r in record.functions() {
        let c = &r.controller;
        if c.func > vfs {
            return Err(Some("a function the host has not enabled (NumVFs)"));
        }
        if c.cc & 1 == 0 {
            return Err(Some("a controller that is not enabled"));
        }
        pf |= c.func == 0 && c.commit_cid.is_some();
        if r.cqs().any(|q| usize::from(q.def.qid) >= QIDS) || r.sqs().any(|q| usize::from(q.def.qid) >= QIDS) {
            return Err(Some("a queue id above this image's"));
        }
    }
    if !pf {
        return Err(Some("no enabled PF with its Commit command"));
    }
    Ok(record)
}
