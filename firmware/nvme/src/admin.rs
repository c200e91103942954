//! The admin command set as every controller of the card serves it,
//! whatever transport carries the commands (NVMe Base 2.0 §5): Identify
//! (§5.17), Get Log Page (§5.16), Get / Set Features (§5.15, §5.27),
//! Abort (§5.1), Asynchronous Event Request (§5.2) and Keep Alive (§5.21).
//! Both front ends use it: the PCIe admin service (`dpu-fw`
//! `nvme::admin`) and the NVMe/TCP target (`dpu-nvme-tcp` `target`).
//!
//! Pure: a front end hands in one admin SQE, a [`Context`] (namespaces,
//! identity, counters, limits) and a 4 KiB output page; [`AdminState::serve`]
//! says how the command ends ([`Reply`]). Data movement (PRPs, C2HData),
//! queue creation and deletion, firmware commands and the transport's own
//! commands (Fabrics) stay with the front end ([`Reply::NotMine`]).
//!
//! Asynchronous events (§5.2.1): AERs are held ([`Reply::Held`], at most
//! [`AER_SLOTS`], AERL + 1); an event is queued with
//! [`AdminState::queue_event`] and completes a held AER when
//! [`AdminState::next_completion`] is asked (the front end asks whenever
//! it can post a completion). Once an event of a type is reported, that
//! type is masked until the host reads the event's log page with Retain
//! Asynchronous Event (RAE) clear (§5.16, figure 191 "RAE"); events of a
//! masked type are not reported (their log page has them).

use crate::features::{Features, Limits};
use crate::firmware::SlotLog;
use crate::identify::{self, ControllerIdentity, NamespaceInfo, Request};
use crate::logs::{self, ChangedNs, ErrorEntry, ErrorLog, Health};
use crate::{Sqe, Status};

/// Admin opcodes (NVMe Base 2.0 figure 139).
pub mod opc {
    pub const DELETE_SQ: u8 = 0x00;
    pub const CREATE_SQ: u8 = 0x01;
    pub const GET_LOG_PAGE: u8 = 0x02;
    pub const DELETE_CQ: u8 = 0x04;
    pub const CREATE_CQ: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
    pub const ABORT: u8 = 0x08;
    pub const SET_FEATURES: u8 = 0x09;
    pub const GET_FEATURES: u8 = 0x0a;
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0c;
    pub const KEEP_ALIVE: u8 = 0x18;
    pub const FABRICS: u8 = 0x7f;
}

/// Keep Alive Timer feature (NVMe Base 2.0 §5.27.1.12): KATO in ms.
pub const FID_KEEP_ALIVE_TIMER: u8 = 0x0f;
/// Asynchronous Event Requests a controller holds at once (Identify
/// Controller AERL + 1, §5.2).
pub const AER_SLOTS: usize = 4;
/// Abort Command Limit (0's based) every controller reports.
pub const ACL: u8 = 3;
/// Events waiting for an AER (distinct CQE DW0 values).
const PENDING: usize = 8;

/// Asynchronous Event Type values (NVMe Base 2.0 §5.2.1, figure 146).
pub mod event_type {
    pub const ERROR: u8 = 0;
    pub const SMART: u8 = 1;
    pub const NOTICE: u8 = 2;
}

/// One asynchronous event (CQE DW0 of the AER it completes, figure 146:
/// type bits 2:0, information bits 15:8, log page bits 23:16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub ty: u8,
    pub info: u8,
    pub lid: u8,
}

impl Event {
    /// Notice: Namespace Attribute Changed (info 00h, figure 149), with
    /// the Changed Namespace List log page (04h).
    pub const NAMESPACE_ATTRIBUTE_CHANGED: Event = Event { ty: event_type::NOTICE, info: 0x00, lid: logs::LID_CHANGED_NS };

    /// Notice: Firmware Activation Starting (info 01h, figure 149), with
    /// the Firmware Slot Information log page (03h); enabled by
    /// Asynchronous Event Configuration bit 9.
    pub const FIRMWARE_ACTIVATION_STARTING: Event = Event { ty: event_type::NOTICE, info: 0x01, lid: logs::LID_FIRMWARE_SLOT };

    /// Error status events (figure 147): Invalid Doorbell Register (00h),
    /// Invalid Doorbell Write Value (01h), with the Error Information log.
    pub const fn error(info: u8) -> Event {
        Event { ty: event_type::ERROR, info, lid: logs::LID_ERROR }
    }

    pub fn dw0(self) -> u32 {
        u32::from(self.lid) << 16 | u32::from(self.info) << 8 | u32::from(self.ty & 7)
    }
}

/// A completion of a held AER: the event (`dw0`) or Command Abort
/// Requested after an Abort took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AerCompletion {
    pub cid: u16,
    pub dw0: u32,
    pub status: Status,
}

/// How an admin command ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Complete with `status`, `dw0`, `dw1`, after moving `data_len` bytes
    /// to the host: the first (up to 4096) from the output page, zeroes
    /// after it.
    Complete { status: Status, dw0: u32, dw1: u32, data_len: u32 },
    /// An AER, parked: it completes through [`AdminState::next_completion`].
    Held,
    /// Not served here: the front end's own (queue creation and deletion,
    /// Abort of an I/O command, firmware commands, Fabrics commands) or an
    /// opcode it answers with Invalid Opcode.
    NotMine,
}

impl Reply {
    pub fn status(status: Status) -> Reply {
        Reply::Complete { status, dw0: 0, dw1: 0, data_len: 0 }
    }

    pub fn ok(dw0: u32) -> Reply {
        Reply::Complete { status: Status::SUCCESS, dw0, dw1: 0, data_len: 0 }
    }

    fn data(data_len: u32) -> Reply {
        Reply::Complete { status: Status::SUCCESS, dw0: 0, dw1: 0, data_len }
    }
}

/// What the front end knows of its controller.
pub trait Context {
    /// Identity for Identify Controller (AERL and ELPE are the shared
    /// layer's: [`AER_SLOTS`] - 1 and the error log's entries - 1).
    fn identity(&self) -> ControllerIdentity<'_>;
    /// Transport-specific Identify Controller fields, written over the
    /// common ones (NVMe over Fabrics: IOCCSZ, SGLS, KAS, ...).
    fn identify_extra(&self, _out: &mut [u8; 4096]) {}
    /// Identify Controller NN: NSIDs 1..=this may be active; an inactive
    /// one of them reads as a zeroed Identify Namespace (§5.17.2.1), one
    /// above is Invalid Namespace.
    fn max_nsid(&self) -> u32;
    /// An active namespace.
    fn namespace(&self, nsid: u32) -> Option<NamespaceInfo>;
    /// SMART / Health counters (log page 02h).
    fn health(&self) -> Health {
        Health::default()
    }
    /// The Firmware Slot Information log (03h); `None`: the controller
    /// has no such log (Invalid Log Page).
    fn firmware_slots(&self) -> Option<SlotLog>;
    /// Queue and vector limits (Number of Queues, Interrupt Vector
    /// Configuration).
    fn limits(&self) -> Limits;
    /// I/O queues were created since the last reset (Set Features Number
    /// of Queues is then a Command Sequence Error).
    fn io_queues_exist(&self) -> bool {
        false
    }
    /// The controller supports Keep Alive (KAS non-zero): the Keep Alive
    /// command and the Keep Alive Timer feature (§5.21, §5.27.1.12).
    fn keep_alive(&self) -> bool {
        false
    }
}

/// The admin state of one controller that outlives single commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminState {
    pub features: Features,
    /// Keep Alive Timeout in ms (0: none).
    pub kato_ms: u32,
    pub errors: ErrorLog,
    /// Namespaces changed since the host last read log page 04h with RAE
    /// clear (§5.16.1.5).
    pub changed: ChangedNs,
    aers: [u16; AER_SLOTS],
    naers: u8,
    /// AERs an Abort took, still to complete with Command Abort Requested.
    aborted: [u16; AER_SLOTS],
    naborted: u8,
    /// Events (CQE DW0) waiting for an AER.
    events: [u32; PENDING],
    nevents: u8,
    /// Event types (bit = type) reported and not yet cleared by reading
    /// their log page.
    masked: u8,
}

impl AdminState {
    pub const INIT: AdminState = AdminState {
        features: Features::DEFAULT,
        kato_ms: 0,
        errors: ErrorLog::EMPTY,
        changed: ChangedNs::EMPTY,
        aers: [0; AER_SLOTS],
        naers: 0,
        aborted: [0; AER_SLOTS],
        naborted: 0,
        events: [0; PENDING],
        nevents: 0,
        masked: 0,
    };

    pub fn new(kato_ms: u32) -> AdminState {
        AdminState { kato_ms, ..AdminState::INIT }
    }

    /// A controller reset (§3.7.2): features to their defaults; held
    /// AERs are gone (the reset ends every outstanding command), so are
    /// pending events and the masks. The error log, the Changed
    /// Namespace List and KATO stay.
    pub fn reset(&mut self) {
        *self = AdminState { kato_ms: self.kato_ms, errors: self.errors, changed: self.changed, ..AdminState::INIT };
    }

    /// Logs a failed command in the Error Information log.
    pub fn record_error(&mut self, sqid: u16, cid: u16, status: Status, nsid: u32) {
        self.errors.record(ErrorEntry { sqid, cid, status: status.field(), nsid, ..Default::default() });
    }

    /// AERs held.
    pub fn held_aers(&self) -> usize {
        usize::from(self.naers)
    }

    /// The command ids of the held AERs, oldest first (for a handover
    /// to the next firmware image, `crate::handover`).
    pub fn held_cids(&self) -> &[u16] {
        &self.aers[..usize::from(self.naers)]
    }

    /// Holds AERs handed over by the previous firmware image (those
    /// above [`AER_SLOTS`] are dropped).
    pub fn hold_handed_over(&mut self, cids: &[u16]) {
        for &c in cids {
            if usize::from(self.naers) < AER_SLOTS {
                self.aers[usize::from(self.naers)] = c;
                self.naers += 1;
            }
        }
    }

    /// Whether events of type `ty` are masked (reported, log not read).
    pub fn masked(&self, ty: u8) -> bool {
        self.masked & (1 << (ty & 7)) != 0
    }

    /// Whether the host enabled events like `e` (Asynchronous Event
    /// Configuration, §5.27.1.7: bits 7:0 SMART critical warnings, bit 8
    /// Namespace Attribute Notices, bit 9 Firmware Activation Notices;
    /// error events cannot be disabled).
    fn enabled(&self, e: Event) -> bool {
        let aec = self.features.async_events;
        match e.ty {
            event_type::ERROR => true,
            event_type::SMART => aec & 0xff != 0,
            event_type::NOTICE if e.info < 8 => aec & (1 << (8 + e.info)) != 0,
            _ => true,
        }
    }

    /// Queues event `e` for the next AER, unless its type is masked or
    /// the host did not enable it (or the same event already waits).
    /// Returns whether it was queued.
    pub fn queue_event(&mut self, e: Event) -> bool {
        if !self.enabled(e) || self.masked(e.ty) {
            return false;
        }
        let dw0 = e.dw0();
        let n = usize::from(self.nevents);
        if self.events[..n].contains(&dw0) {
            return true;
        }
        if n == PENDING {
            return false;
        }
        self.events[n] = dw0;
        self.nevents += 1;
        true
    }

    /// The next completion of a held AER, if one is due: an aborted AER
    /// (Command Abort Requested), else a queued event of an unmasked type
    /// for the oldest held AER (its type is masked from now on).
    pub fn next_completion(&mut self) -> Option<AerCompletion> {
        if self.naborted > 0 {
            self.naborted -= 1;
            let cid = self.aborted[usize::from(self.naborted)];
            return Some(AerCompletion { cid, dw0: 0, status: Status::ABORT_REQUESTED });
        }
        if self.naers == 0 {
            return None;
        }
        let n = usize::from(self.nevents);
        let k = self.events[..n].iter().position(|&e| self.masked & (1 << (e & 7)) == 0)?;
        let dw0 = self.events[k];
        self.events.copy_within(k + 1..n, k);
        self.nevents -= 1;
        self.masked |= 1 << (dw0 & 7);
        let cid = self.aers[0];
        self.aers.copy_within(1..usize::from(self.naers), 0);
        self.naers -= 1;
        Some(AerCompletion { cid, dw0, status: Status::SUCCESS })
    }

    /// Whether [`AdminState::next_completion`] has something.
    pub fn completion_due(&self) -> bool {
        let n = usize::from(self.nevents);
        self.naborted > 0 || (self.naers > 0 && self.events[..n].iter().any(|&e| self.masked & (1 << (e & 7)) == 0))
    }

    /// Queues event `e` and returns the AER completion now due, if any.
    pub fn post_event(&mut self, e: Event) -> Option<AerCompletion> {
        self.queue_event(e);
        self.next_completion()
    }

    /// Namespace `nsid` was attached, detached or changed: it goes on the
    /// Changed Namespace List (`u32::MAX`: more than it holds, rescan
    /// all) and a Namespace Attribute Changed notice is queued.
    pub fn namespace_changed(&mut self, nsid: u32) {
        if nsid == u32::MAX {
            self.changed.record_all();
        } else {
            self.changed.record(nsid);
        }
        self.queue_event(Event::NAMESPACE_ATTRIBUTE_CHANGED);
    }

    /// Serves admin command `sqe`; data for the host goes to `out`.
    pub fn serve(&mut self, ctx: &dyn Context, sqe: &Sqe, out: &mut [u8; 4096]) -> Reply {
        let r = match sqe.opcode() {
            opc::IDENTIFY => identify_command(ctx, sqe, out),
            opc::GET_LOG_PAGE => self.get_log(ctx, sqe, out),
            opc::GET_FEATURES if ctx.keep_alive() && sqe.cdw10() as u8 == FID_KEEP_ALIVE_TIMER => Ok(Reply::ok(self.kato_ms)),
            opc::SET_FEATURES if ctx.keep_alive() && sqe.cdw10() as u8 == FID_KEEP_ALIVE_TIMER => {
                if sqe.cdw10() & (1 << 31) != 0 {
                    Err(Status::FEATURE_NOT_SAVEABLE)
                } else {
                    self.kato_ms = sqe.cdw11();
                    Ok(Reply::ok(0))
                }
            }
            opc::GET_FEATURES => self.features.get(sqe, ctx.limits()).map(Reply::ok),
            opc::SET_FEATURES => self.features.set(sqe, ctx.limits(), ctx.io_queues_exist()).map(Reply::ok),
            opc::ABORT => Ok(self.abort(sqe)),
            opc::ASYNC_EVENT_REQUEST => {
                let n = usize::from(self.naers);
                if n == AER_SLOTS {
                    Err(Status::AER_LIMIT_EXCEEDED)
                } else {
                    self.aers[n] = sqe.cid();
                    self.naers += 1;
                    Ok(Reply::Held)
                }
            }
            opc::KEEP_ALIVE if ctx.keep_alive() => Ok(Reply::ok(0)),
            _ => Ok(Reply::NotMine),
        };
        r.unwrap_or_else(Reply::status)
    }

    /// Abort (§5.1) of an admin command: only a held AER can be aborted
    /// (DW0 bit 0 clear; it completes with Command Abort Requested next);
    /// otherwise DW0 bit 0 set, not aborted. Abort of an I/O command is
    /// the front end's.
    fn abort(&mut self, sqe: &Sqe) -> Reply {
        let sqid = sqe.cdw10() as u16;
        let cid = (sqe.cdw10() >> 16) as u16;
        if sqid != 0 {
            return Reply::NotMine;
        }
        let n = usize::from(self.naers);
        let Some(i) = self.aers[..n].iter().position(|&c| c == cid) else { return Reply::ok(1) };
        self.aers.copy_within(i + 1..n, i);
        self.naers -= 1;
        self.aborted[usize::from(self.naborted)] = cid;
        self.naborted += 1;
        Reply::ok(0)
    }

    /// Get Log Page (§5.16): the page rendered, then the requested window
    /// of it (offset, length) moved to the start of `out`; bytes past the
    /// page read as zero. Read with RAE clear, the event type reported
    /// through the page is unmasked, and the Changed Namespace List
    /// starts over.
    fn get_log(&mut self, ctx: &dyn Context, sqe: &Sqe, out: &mut [u8; 4096]) -> Result<Reply, Status> {
        let r = logs::decode(sqe)?;
        match r.lid {
            logs::LID_FIRMWARE_SLOT => {
                let slots = ctx.firmware_slots().ok_or(Status::INVALID_LOG_PAGE)?;
                logs::render(r.lid, out, &self.errors, &Health::default(), &slots);
            }
            logs::LID_CHANGED_NS => {
                self.changed.render(out);
                if !r.rae {
                    self.changed = ChangedNs::EMPTY;
                }
            }
            logs::LID_SMART => logs::render(r.lid, out, &self.errors, &ctx.health(), &SlotLog::default()),
            _ => logs::render(r.lid, out, &self.errors, &Health::default(), &SlotLog::default()),
        }
        if !r.rae {
            let ty = match r.lid {
                logs::LID_ERROR => event_type::ERROR,
                logs::LID_SMART => event_type::SMART,
                _ => event_type::NOTICE,
            };
            self.masked &= !(1 << ty);
        }
        let off = (r.offset as usize).min(out.len());
        out.copy_within(off.., 0);
        let end = out.len() - off;
        out[end..].fill(0);
        Ok(Reply::data(r.len))
    }
}

/// Identify (§5.17): CNS 00h, 01h, 02h, 03h, and 06h with CSI 00h (the
/// NVM command set's I/O Command Set specific Identify Controller: all
/// zero, no extra limits).
fn identify_command(ctx: &dyn Context, sqe: &Sqe, out: &mut [u8; 4096]) -> Result<Reply, Status> {
    const CNS_IO_CONTROLLER: u32 = 0x06;
    let csi = sqe.0[47];
    if sqe.cdw10() & 0xff == CNS_IO_CONTROLLER && csi == 0 {
        out.fill(0);
        return Ok(Reply::data(4096));
    }
    let nn = ctx.max_nsid();
    match identify::decode(sqe)? {
        Request::Controller => {
            let id = ControllerIdentity { acl: ACL, aerl: (AER_SLOTS - 1) as u8, elpe: (logs::ERROR_ENTRIES - 1) as u8, ..ctx.identity() };
            identify::controller(out, &id);
            out[516..520].copy_from_slice(&nn.to_le_bytes());
            ctx.identify_extra(out);
        }
        Request::Namespace(n) => match ctx.namespace(n) {
            Some(info) => identify::namespace(out, &info),
            // An inactive NSID: a zeroed structure (§5.17.2.1).
            None if n <= nn => out.fill(0),
            None => return Err(Status::INVALID_NAMESPACE),
        },
        Request::ActiveList(after) => identify::active_list(out, &mut (1..=nn).filter(|&n| ctx.namespace(n).is_some()), after),
        Request::Descriptors(n) => {
            let info = ctx.namespace(n).ok_or(Status::INVALID_NAMESPACE)?;
            identify::descriptors(out, &info);
        }
    }
    Ok(Reply::data(4096))
}

#[cfg(test)]
mod tests;
