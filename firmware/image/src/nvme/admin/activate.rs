//! Firmware activation without reset (NVMe Base 2.0 §5.12, Firmware
//! Commit action 011b; Identify Controller FRMW bit 4, MTFA).
//!
//! The old image, once the update service has verified the slot and
//! recorded it in the boot journal as pending (on trial, as for an
//! activation at reset): the PF's CSTS.PP is set (§3.1.4.6), a Firmware
//! Activation Starting notice goes to a host that enabled it (AEC bit 9),
//! every engine stops fetching the PF's commands and, once none is in
//! flight, reports its queues; the admin service writes the controller
//! handover record (`dpu_nvme::handover`) at `HANDOVER_BASE` and asks for
//! a warm restart (the PCIe side, host memory and DDR stay).
//!
//! The new image, at boot: a valid record restores the PF as the host
//! left it - CC, admin queue pair with its pointers, features, held AERs,
//! every I/O queue on an engine with its pointers - without a CC.EN
//! toggle; the Commit command is completed (success) and CSTS.PP cleared
//! once the engines hold the queues. A record that is torn, of another
//! format or names something this image cannot restore gives a normal
//! boot: a controller the host had enabled is not ready (CSTS.RDY clear
//! with CC.EN set), and the host resets it.
//!
//! Only the PF is handed over: with VFs enabled, action 011b activates at
//! the next reset instead (Firmware Activation Requires Conventional
//! Reset), as before.

use super::*;
use dpu_hal::memory_map::{HANDOVER_BASE, HANDOVER_SIZE};
use dpu_nvme::handover::{self, Controller, IoCq, IoSq, Writer};
use dpu_nvme::queue::{CreateCq, CreateSq};

/// Maximum Time for Firmware Activation reported in Identify Controller
/// (100 ms units): 500 ms. Measured on the simulated card (system test
/// `host_activate_now`, an 876 KB image): CSTS.PP set to clear in 192 ms
/// - the boot ROM reads and checks the bootloader (30 ms), the bootloader
/// reads and verifies the slot from flash (158 ms, about 180 ns a byte),
/// the image starts and restores the controller (3 ms).
pub const MTFA: u16 = 5;

/// Largest image activated without reset within [`MTFA`]: (500 ms - 40 ms)
/// at 180 ns a byte is 2.5 MB; 2 MiB leaves a margin. A larger one is
/// committed with Firmware Activation Requires Maximum Time Violation
/// (1/12h) and activates at the next reset.
pub const MAX_IMAGE_NOW: u32 = 2 << 20;

/// Bytes of record this image writes and reads (the PF: its block and up
/// to 2 x 127 queues).
pub const RECORD_BYTES: usize = 8192;

/// Where an activation without reset stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    /// Engines still to report their queues; whether the notice's CQE is
    /// still being written.
    Pausing { acks: u16 },
    /// Handed-over queues being created on the engines.
    Restoring { acks: u16 },
}

/// A queue reported by an engine while pausing (PF).
#[derive(Clone, Copy)]
pub struct Paused {
    pub cq: Option<IoCq>,
    pub sq: Option<IoSq>,
}

impl Paused {
    pub const NONE: Paused = Paused { cq: None, sq: None };
}

impl Admin {
    /// Whether a commit of action 011b may activate now: the PF is the
    /// only function (VFs are not handed over) and it is enabled.
    pub(super) fn may_activate_now(&self) -> bool {
        pcie::num_vfs() == 0 && self.funcs[0].enabled && self.funcs[0].reset == Reset::None && self.handover_buf.is_some()
    }

    /// Starts the pause: CSTS.PP, the notice, every engine told.
    pub(super) fn start_activation(&mut self) {
        if self.paused.is_none() {
            // Taken once, when first needed: an ordinary boot spends nothing.
            self.paused = dpu_rt::alloc::ddr_put([Paused::NONE; QIDS]);
            if self.paused.is_none() {
                defmt::error!("nvme fn0: no memory to hand the controller over: the new image activates at the next reset");
                self.post(0, Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
                return;
            }
        }
        defmt::info!("nvme fn0: firmware activation without reset: pausing command processing");
        self.set_csts(0, self.funcs[0].csts | regs::CSTS_PP);
        if let Some(p) = self.paused.as_deref_mut() {
            *p = [Paused::NONE; QIDS];
        }
        let fun = &mut self.funcs[0];
        if fun.admin.queue_event(shared::Event::FIRMWARE_ACTIVATION_STARTING) && fun.cq.available() > 0 {
            if let Some(c) = fun.admin.next_completion() {
                // Posted now, the Commit still outstanding: the CQE slot
                // of the function is free (its command waits).
                fun.cq.reserve();
                let mut sqe = Sqe::ZERO;
                sqe.0[0] = OPC_AER;
                sqe.0[2..4].copy_from_slice(&c.cid.to_le_bytes());
                let commit = fun.sqe;
                fun.sqe = sqe;
                fun.dw0 = c.dw0;
                self.post(0, c.status);
                let fun = &mut self.funcs[0];
                fun.sqe = commit;
                fun.cur = Cur::Waiting;
                self.notice_posting = true;
            }
        }
        let mut acks = 0;
        for h in 0..HARTS {
            if self.to[h].is_some() && self.send(h, ToEngine::Pause { func: 0 }) {
                acks += 1;
            }
        }
        self.activation = Activation::Pausing { acks };
    }

    /// An engine's report of a paused PF queue.
    pub(super) fn queue_report(&mut self, func: u16, qid: u16, cq: bool, entries: u16, addr: u64, link: u16, irq: bool, a: u16, b: u16, phase: bool) {
        if func != 0 || usize::from(qid) >= QIDS || !matches!(self.activation, Activation::Pausing { .. }) {
            return;
        }
        let Some(p) = self.paused.as_deref_mut().map(|p| &mut p[usize::from(qid)]) else { return };
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
            (Activation::Restoring { acks }, Done::CreateCq | Done::CreateSq) => {
                let acks = acks.saturating_sub(1);
                self.activation = Activation::Restoring { acks };
                if acks == 0 {
                    self.resume();
                }
                true
            }
            _ => false,
        }
    }

    /// Called every pass: once every engine reported and the notice is
    /// written, the record goes to DDR and the card restarts.
    pub(super) fn activation_step(&mut self) {
        if self.activation != (Activation::Pausing { acks: 0 }) || self.notice_posting || self.data_owner.is_some() {
            return;
        }
        let revision = running_revision();
        let (Some(buf), Some(paused)) = (self.handover_buf.as_deref_mut(), self.paused.as_deref()) else { return };
        let fun = &self.funcs[0];
        let f = &fun.admin.features;
        let mut c = Controller::new(0);
        c.cc = fun.cc;
        c.aqa = pcie::bar_read32(0, off::AQA);
        c.asq = fun.asq;
        c.acq = fun.acq;
        c.admin_sq = fun.sq;
        c.admin_cq = CqPointers { reserved: 0, ..fun.cq };
        c.queues = f.queues;
        c.coalesce_threshold = f.coalesce_threshold;
        c.coalesce_time = f.coalesce_time;
        c.coalesce_disabled = f.coalesce_disabled;
        c.async_events = f.async_events;
        c.arbitration = f.arbitration;
        let held = fun.admin.held_cids();
        c.naers = held.len() as u8;
        c.aers[..held.len()].copy_from_slice(held);
        c.commit_cid = Some(fun.sqe.cid());
        let written = (|| {
            let mut w = Writer::new(buf, revision)?;
            w.function(&c)?;
            for p in paused.iter() {
                if let Some(q) = &p.cq {
                    w.cq(q)?;
                }
            }
            for p in paused.iter() {
                if let Some(q) = &p.sq {
                    w.sq(q)?;
                }
            }
            w.finish()
        })();
        match written {
            Ok(n) => {
                dpu_hal::mem::write(HANDOVER_BASE, &buf[..n]);
                defmt::info!("nvme fn0: handover record written ({=usize} bytes): warm restart into the new image", n);
                dpu_hal::finisher::warm_restart();
                dpu_rt::park();
            }
            Err(e) => {
                // Cannot hand over: the image activates at the next reset.
                defmt::error!("nvme fn0: handover record not written: {=str}; the new image activates at the next reset", e.reason());
                self.activation = Activation::None;
                self.set_csts(0, self.funcs[0].csts & !regs::CSTS_PP);
                self.post(0, Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
            }
        }
    }

    /// At boot: restores the PF from a handover record, if there is a
    /// valid one. Returns whether the PF is initialized (restored, or
    /// not ready after a refused record); else the caller
    /// initializes it as at power-on.
    pub(super) fn restore(&mut self) -> bool {
        // The header first: an ordinary boot finds none and goes on at once.
        let mut header = [0u8; handover::HEADER_BYTES];
        dpu_hal::mem::read(HANDOVER_BASE, &mut header);
        if matches!(handover::parse(&header), Err(handover::Error::Blank)) {
            return false;
        }
        if self.paused.is_none() {
            self.paused = dpu_rt::alloc::ddr_put([Paused::NONE; QIDS]);
        }
        let (Some(buf), Some(queues)) = (self.handover_buf.take(), self.paused.take()) else { return false };
        let len = (u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize).saturating_add(handover::HEADER_BYTES).min(buf.len());
        dpu_hal::mem::read(HANDOVER_BASE, &mut buf[..len]);
        buf[len..].fill(0);
        // Used once, whatever it holds.
        dpu_hal::mem::write(HANDOVER_BASE, &[0u8; handover::HEADER_BYTES]);
        const _: () = assert!(RECORD_BYTES <= HANDOVER_SIZE);
        *queues = [Paused::NONE; QIDS];
        let read = read_record(buf, queues);
        self.handover_buf = Some(buf);
        let done = self.restore_with(read, queues);
        self.paused = Some(queues);
        done
    }

    /// [`Admin::restore`] once the record is read.
    fn restore_with(&mut self, read: Result<(Controller, [u8; 8]), Option<&'static str>>, queues: &[Paused; QIDS]) -> bool {
        let (c, revision) = match read {
            Ok(r) => r,
            Err(None) => return false,
            Err(Some(why)) => {
                defmt::warn!("nvme admin: handover record refused ({=str}): controllers start as after a reset", why);
                self.host_saw_enabled();
                return true;
            }
        };
        if c.func != 0 || c.cc & 1 == 0 {
            defmt::warn!("nvme admin: handover record of a disabled or unknown controller: ignored");
            return false;
        }
        self.init_function(0);
        // init_function cleared the host's registers: as they were.
        pcie::bar_write32(0, off::CC, c.cc);
        pcie::bar_write32(0, off::AQA, c.aqa);
        pcie::bar_write64(0, off::ASQ, c.asq);
        pcie::bar_write64(0, off::ACQ, c.acq);
        let fun = &mut self.funcs[0];
        fun.cc = c.cc;
        fun.enabled = true;
        fun.asq = c.asq;
        fun.acq = c.acq;
        fun.sq = c.admin_sq;
        fun.cq = c.admin_cq;
        // The host may have rung the admin doorbells meanwhile.
        let _ = fun.sq.set_tail(pcie::doorbell(0, 0));
        let _ = fun.cq.set_head(pcie::doorbell(0, 1));
        let f = &mut fun.admin.features;
        f.queues = c.queues;
        f.coalesce_threshold = c.coalesce_threshold;
        f.coalesce_time = c.coalesce_time;
        f.coalesce_disabled = c.coalesce_disabled;
        f.async_events = c.async_events;
        f.arbitration = c.arbitration;
        fun.admin.hold_handed_over(c.held_aers());
        // The Commit command: completed once the queues are back.
        let mut sqe = Sqe::ZERO;
        sqe.0[0] = OPC_FIRMWARE_COMMIT;
        sqe.0[2..4].copy_from_slice(&c.commit_cid.unwrap_or(0).to_le_bytes());
        fun.sqe = sqe;
        fun.cur = Cur::Waiting;
        fun.pending_qid = 0xfffd;
        fun.cq.reserve();
        self.set_csts(0, regs::CSTS_RDY | regs::CSTS_PP);
        let mut acks = 0u16;
        let reach = remote_queue_limit(0, &self.live);
        for q in queues.iter().filter_map(|p| p.cq) {
            let Some(owner) = (0..HARTS)
                .filter(|&h| self.to[h].is_some() && crate::net::data_queue(h).is_none_or(|n| n < reach))
                .min_by_key(|&h| self.load[h])
                .or_else(|| (0..HARTS).filter(|&h| self.to[h].is_some()).min_by_key(|&h| self.load[h]))
            else {
                break;
            };
            let (thr, time) = self.funcs[0].admin.features.coalescing(q.def.vector).unwrap_or((0, 0));
            let d = q.def;
            let m = ToEngine::CreateCq { func: 0, qid: d.qid, entries: d.entries, vector: d.vector, irq: d.interrupts, thr, time, addr: d.addr, tail: q.tail, head: q.head, phase: q.phase };
            if self.send(owner, m) {
                acks += 1;
                self.load[owner] += 1;
                let fun = &mut self.funcs[0];
                fun.cq_exists |= bit(d.qid);
                fun.owner[usize::from(d.qid)] = owner as u8;
                fun.io_created = true;
            }
        }
        for q in queues.iter().filter_map(|p| p.sq) {
            let fun = &self.funcs[0];
            if fun.cq_exists & bit(q.def.cqid) == 0 {
                continue;
            }
            let owner = usize::from(fun.owner[usize::from(q.def.cqid)]);
            let d = q.def;
            if self.send(owner, ToEngine::CreateSq { func: 0, qid: d.qid, entries: d.entries, cqid: d.cqid, addr: d.addr, head: q.head }) {
                acks += 1;
                let fun = &mut self.funcs[0];
                fun.sq_exists |= bit(d.qid);
                fun.sq_cq[usize::from(d.qid)] = d.cqid as u8;
            }
        }
        defmt::info!(
            "nvme fn0: restored from the handover record of image {=str}: {=u32} I/O queue(s) being handed to the engines",
            core::str::from_utf8(&revision).unwrap_or("?").trim_end(),
            u32::from(acks)
        );
        self.activation = Activation::Restoring { acks };
        if acks == 0 {
            self.resume();
        }
        true
    }

    /// The engines hold the handed-over queues: their doorbells go to
    /// them (read again, the host may have rung them meanwhile), the
    /// Commit completes and command processing resumes.
    fn resume(&mut self) {
        self.activation = Activation::None;
        let fun = self.funcs[0];
        for q in 1..QIDS as u16 {
            let owner = usize::from(fun.owner[usize::from(q)]);
            if fun.cq_exists & bit(q) != 0 {
                pcie::steer(0, 2 * q + 1, Some(owner));
            }
            if fun.sq_exists & bit(q) != 0 {
                let sq_owner = usize::from(fun.owner[usize::from(fun.sq_cq[usize::from(q)])]);
                pcie::steer(0, 2 * q, Some(sq_owner));
            }
            if (fun.cq_exists | fun.sq_exists) & bit(q) != 0 {
                self.send(owner, ToEngine::Resync { func: 0, qid: q });
                if fun.sq_exists & bit(q) != 0 {
                    let sq_owner = usize::from(fun.owner[usize::from(fun.sq_cq[usize::from(q)])]);
                    if sq_owner != owner {
                        self.send(sq_owner, ToEngine::Resync { func: 0, qid: q });
                    }
                }
            }
        }
        self.funcs[0].dw0 = 0;
        self.post(0, Status::SUCCESS);
        self.set_csts(0, regs::CSTS_RDY);
        // The image confirms itself as after any boot (`crate::control`).
        defmt::info!("nvme fn0: firmware activation complete: Firmware Commit completed, processing resumed");
    }

    /// A normal boot after a refused record: a controller the host had
    /// enabled shows CC as the host wrote it and is not ready (CSTS.RDY
    /// clear), so that the host resets it; the firmware counts it as
    /// disabled, so the host's next CC.EN = 1 enables it whether or not
    /// the CC.EN = 0 before it was seen.
    fn host_saw_enabled(&mut self) {
        let cc = pcie::bar_read32(0, off::CC);
        self.init_function(0);
        if cc & 1 != 0 {
            pcie::bar_write32(0, off::CC, cc);
        }
    }
}

/// Checks the record in `buf` and copies the PF's controller and queues
/// out (queues into `queues`, by QID). `Err(None)`: no record;
/// `Err(Some(why))`: a record this image does not restore.
fn read_record(buf: &[u8], queues: &mut [Paused; QIDS]) -> Result<(Controller, [u8; 8]), Option<&'static str>> {
    let record = match handover::parse(buf) {
        Ok(r) => r,
        Err(handover::Error::Blank) => return Err(None),
        Err(e) => return Err(Some(e.reason())),
    };
    let mut functions = record.functions();
    let (Some(pf), None) = (functions.next(), functions.next()) else {
        return Err(Some("it holds other functions than the PF"));
    };
    if pf.controller.func != 0 || pf.controller.cc & 1 == 0 {
        return Err(Some("its controller is not the enabled PF"));
    }
    for q in pf.cqs() {
        let p = queues.get_mut(usize::from(q.def.qid)).ok_or(Some("a queue id above this image's"))?;
        p.cq = Some(q);
    }
    for q in pf.sqs() {
        let p = queues.get_mut(usize::from(q.def.qid)).ok_or(Some("a queue id above this image's"))?;
        p.sq = Some(q);
    }
    Ok((pf.controller, record.revision))
}
