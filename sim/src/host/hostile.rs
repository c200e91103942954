//! A hostile host driver on one function (scenario `[[hostile]]`).
//!
//! It starts like the Linux-like driver (`nvme.rs`), then misbehaves on
//! purpose: malformed submission queue entries (unknown opcodes, reserved
//! bits, fused bits, bad namespace IDs, reserved PSDT, SGL garbage, LBA
//! ranges that wrap), data pointers outside the memory the host granted
//! the function (including other functions' queues), PRP lists and SGL
//! segments that chain onto themselves, doorbell storms and doorbells of
//! queues that do not exist, CQ heads beyond the tail, queue deletion,
//! Function Level Reset and controller reset loops under I/O.
//!
//! Each malformed command must complete with a status the specification
//! (NVMe Base 2.0 figures 101-104, NVM Command Set 1.0) allows for it;
//! each bad doorbell must raise an error asynchronous event (§5.2, figure
//! 150), masked until the host reads the Error Information log; queue
//! deletion, FLR and resets must finish in bounded time and leave a
//! controller the host can bring up again (CSTS.RDY within CAP.TO) and
//! whose data path works. Anything else is counted as a violation.
//! While it runs, it measures how long the other functions' admin
//! commands take (their jobs measure their I/O).

use super::nvme::{build_prps, opc, reg, CmdError, Controller, Cqe, DataBuf, DriverOptions, Sqe};
use super::pci::PciFunction;
use super::workload::{check_sector, fill_sector, Rng};
use super::Host;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What a hostile host does (scenario names in `dpu_targets::HOSTILE_ACTIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    BadOpcode,
    ReservedFields,
    Fused,
    BadNsid,
    BadPsdt,
    SglGarbage,
    LbaWrap,
    PrpOutside,
    SglOutside,
    PrpListLoop,
    DoorbellStorm,
    DoorbellNoQueue,
    CqHeadBeyondTail,
    DeleteQueueUnderIo,
    FlrUnderIo,
    ResetLoop,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::BadOpcode,
        Action::ReservedFields,
        Action::Fused,
        Action::BadNsid,
        Action::BadPsdt,
        Action::SglGarbage,
        Action::LbaWrap,
        Action::PrpOutside,
        Action::SglOutside,
        Action::PrpListLoop,
        Action::DoorbellStorm,
        Action::DoorbellNoQueue,
        Action::CqHeadBeyondTail,
        Action::DeleteQueueUnderIo,
        Action::FlrUnderIo,
        Action::ResetLoop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::BadOpcode => "bad-opcode",
            Action::ReservedFields => "reserved-fields",
            Action::Fused => "fused",
            Action::BadNsid => "bad-nsid",
            Action::BadPsdt => "bad-psdt",
            Action::SglGarbage => "sgl-garbage",
            Action::LbaWrap => "lba-wrap",
            Action::PrpOutside => "prp-outside",
            Action::SglOutside => "sgl-outside",
            Action::PrpListLoop => "prp-list-loop",
            Action::DoorbellStorm => "doorbell-storm",
            Action::DoorbellNoQueue => "doorbell-no-queue",
            Action::CqHeadBeyondTail => "cq-head-beyond-tail",
            Action::DeleteQueueUnderIo => "delete-queue-under-io",
            Action::FlrUnderIo => "flr-under-io",
            Action::ResetLoop => "reset-loop",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == s)
    }
}

/// One hostile function, from the scenario.
#[derive(Clone, Debug)]
pub struct HostileSpec {
    pub function: u16,
    pub nsids: Vec<u32>,
    pub actions: Vec<Action>,
    pub rounds: u32,
    /// Cycles after the jobs start.
    pub start: u64,
    pub seed: u64,
    /// Bound on the other functions' latencies (ns).
    pub others_max_latency_ns: Option<u64>,
}

impl HostileSpec {
    pub fn from_cfg(h: &Host, c: &dpu_targets::HostileCfg) -> HostileSpec {
        HostileSpec {
            function: c.function,
            nsids: c.nsids.clone(),
            actions: c.action_list().into_iter().filter_map(Action::parse).collect(),
            rounds: c.rounds,
            start: h.cycles(dpu_targets::parse_time_ns(&c.start).unwrap_or(100_000)),
            seed: c.seed,
            others_max_latency_ns: c.others_max_latency_ns(),
        }
    }
}

/// What the hostile host did and what it got.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostileReport {
    pub function: u16,
    /// Action name -> times performed.
    pub actions: BTreeMap<String, u64>,
    /// Malformed or checked commands submitted.
    pub commands: u64,
    /// "SCT/SC name" -> completions with that status (also "no completion ...").
    pub statuses: BTreeMap<String, u64>,
    /// Asynchronous events received, by type and information.
    pub events: BTreeMap<String, u64>,
    /// Times a second error event was (correctly) held back until the
    /// Error Information log was read.
    pub events_masked: u64,
    pub doorbell_writes: u64,
    pub flrs: u64,
    /// Longest time from Initiate FLR until the function answered
    /// configuration requests again (PCIe: at most 100 ms).
    pub flr_max_us: f64,
    /// CC.EN 1 -> 0 transitions the host made.
    pub controller_resets: u64,
    /// Times the host brought the controller up again from scratch.
    pub reprobes: u64,
    /// I/O in flight at a queue deletion, FLR or reset: completed
    /// normally, completed with an error status, or never answered (all
    /// allowed).
    pub teardown_completed: u64,
    pub teardown_failed: u64,
    pub teardown_unanswered: u64,
    /// Admin commands the other functions sent meanwhile, and the
    /// slowest (microseconds).
    pub others_admin_commands: u64,
    pub others_admin_max_us: f64,
    pub others_admin_errors: u64,
    pub started_us: f64,
    pub ended_us: f64,
    /// The controller worked (verified write + read) after the last action.
    pub final_check: bool,
    pub violations: u64,
    pub first_violations: Vec<String>,
}

impl HostileReport {
    /// Human-readable summary.
    pub fn text(&self) -> String {
        let join = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{k} x{v}")).collect::<Vec<_>>().join(", ");
        let mut o = format!(
            "hostile fn{}: {} actions from {:.1} us to {:.1} us, {} commands, {} doorbell writes\n",
            self.function,
            self.actions.values().sum::<u64>(),
            self.started_us,
            self.ended_us,
            self.commands,
            self.doorbell_writes
        );
        o.push_str(&format!("  actions : {}\n", join(&self.actions)));
        o.push_str(&format!("  statuses: {}\n", join(&self.statuses)));
        o.push_str(&format!("  events  : {} ({} held back until the log was read)\n", join(&self.events), self.events_masked));
        o.push_str(&format!(
            "  teardown: {} FLRs (slowest {:.1} us), {} controller resets, {} re-probes; I/O in flight: {} completed, {} failed, {} unanswered\n",
            self.flrs, self.flr_max_us, self.controller_resets, self.reprobes, self.teardown_completed, self.teardown_failed, self.teardown_unanswered
        ));
        o.push_str(&format!(
            "  others  : {} admin commands, slowest {:.1} us, {} errors\n",
            self.others_admin_commands, self.others_admin_max_us, self.others_admin_errors
        ));
        o.push_str(&format!("  final check: {}; spec violations: {}\n", if self.final_check { "ok" } else { "FAILED" }, self.violations));
        for v in &self.first_violations {
            o.push_str(&format!("    ! {v}\n"));
        }
        o
    }
}

/// Status codes (SCT, SC) the hostile host expects (NVMe Base 2.0 figures
/// 101-103, NVM Command Set 1.0 figure 34).
pub mod st {
    pub const SUCCESS: (u8, u8) = (0, 0x00);
    pub const INVALID_OPCODE: (u8, u8) = (0, 0x01);
    pub const INVALID_FIELD: (u8, u8) = (0, 0x02);
    pub const DATA_TRANSFER_ERROR: (u8, u8) = (0, 0x04);
    pub const ABORTED_SQ_DELETION: (u8, u8) = (0, 0x08);
    pub const INVALID_NAMESPACE: (u8, u8) = (0, 0x0b);
    pub const INVALID_SGL_SEGMENT: (u8, u8) = (0, 0x0d);
    pub const INVALID_SGL_COUNT: (u8, u8) = (0, 0x0e);
    pub const SGL_LENGTH_INVALID: (u8, u8) = (0, 0x0f);
    pub const SGL_TYPE_INVALID: (u8, u8) = (0, 0x11);
    pub const PRP_OFFSET_INVALID: (u8, u8) = (0, 0x13);
    pub const LBA_OUT_OF_RANGE: (u8, u8) = (0, 0x80);
    pub const INVALID_QID: (u8, u8) = (1, 0x01);
    pub const INVALID_QUEUE_DELETION: (u8, u8) = (1, 0x0c);
}

/// "SCT/SC name" of a status.
pub fn status_name(code: (u8, u8)) -> String {
    let name = match code {
        (0, 0x00) => "Success",
        (0, 0x01) => "Invalid Command Opcode",
        (0, 0x02) => "Invalid Field in Command",
        (0, 0x03) => "Command ID Conflict",
        (0, 0x04) => "Data Transfer Error",
        (0, 0x06) => "Internal Error",
        (0, 0x07) => "Command Abort Requested",
        (0, 0x08) => "Command Aborted due to SQ Deletion",
        (0, 0x0b) => "Invalid Namespace or Format",
        (0, 0x0c) => "Command Sequence Error",
        (0, 0x0d) => "Invalid SGL Segment Descriptor",
        (0, 0x0e) => "Invalid Number of SGL Descriptors",
        (0, 0x0f) => "Data SGL Length Invalid",
        (0, 0x11) => "SGL Descriptor Type Invalid",
        (0, 0x13) => "PRP Offset Invalid",
        (0, 0x80) => "LBA Out of Range",
        (0, 0x82) => "Namespace Not Ready",
        (1, 0x00) => "Completion Queue Invalid",
        (1, 0x01) => "Invalid Queue Identifier",
        (1, 0x02) => "Invalid Queue Size",
        (1, 0x05) => "Asynchronous Event Request Limit Exceeded",
        (1, 0x08) => "Invalid Interrupt Vector",
        (1, 0x06) => "Invalid Firmware Slot",
        (1, 0x07) => "Invalid Firmware Image",
        (1, 0x09) => "Invalid Log Page",
        (1, 0x0b) => "Firmware Activation Requires Conventional Reset",
        (1, 0x0c) => "Invalid Queue Deletion",
        (1, 0x10) => "Firmware Activation Requires NVM Subsystem Reset",
        (1, 0x11) => "Firmware Activation Requires Controller Level Reset",
        (1, 0x12) => "Firmware Activation Requires Maximum Time Violation",
        (1, 0x13) => "Firmware Activation Prohibited",
        (1, 0x14) => "Overlapping Range",
        (2, 0x85) => "Compare Failure",
        (3, 0x00) => "Internal Path Error",
        _ => "",
    };
    format!("{}/{:02x} {name}", code.0, code.1).trim_end().to_string()
}

/// Name of an asynchronous event (completion DW0 of an AER, figure 146).
pub fn event_name(dw0: u32) -> String {
    let (kind, info, lid) = (dw0 & 7, (dw0 >> 8) & 0xff, (dw0 >> 16) & 0xff);
    let what = match (kind, info) {
        (0, 0x00) => "error: write to invalid doorbell register",
        (0, 0x01) => "error: invalid doorbell write value",
        (0, _) => "error",
        (1, _) => "SMART / health",
        (2, _) => "notice",
        (6, _) => "I/O command set specific",
        (7, _) => "vendor specific",
        _ => "reserved type",
    };
    format!("{what} (type {kind}, info {info:02x}h, log {lid:02x}h)")
}

const EVENT_ERROR: u32 = 0;
const INFO_INVALID_DOORBELL: u32 = 0x00;
const INFO_INVALID_DOORBELL_VALUE: u32 = 0x01;
/// Outstanding Asynchronous Event Requests the hostile host keeps.
const AERS: usize = 2;
/// Verify pattern tag of the hostile host's own checks.
const TAG: u32 = 0x4057_1e00;

/// Events delivered by the AER tasks, shared with them.
#[derive(Default)]
struct Events {
    /// DW0 values not looked at yet.
    pending: Vec<u32>,
    /// Every one received, by name.
    counts: BTreeMap<String, u64>,
    /// AER tasks alive, per controller generation.
    live: usize,
    gen: u64,
}

struct Actor {
    h: Host,
    f: u16,
    ctrl: Controller,
    pci: PciFunction,
    opts: DriverOptions,
    spec: HostileSpec,
    rng: Rng,
    rep: HostileReport,
    events: Rc<RefCell<Events>>,
    nsi: usize,
    gen: u32,
    action: &'static str,
    /// Other functions' queue memory (addresses this function must not reach).
    foreign: Vec<u64>,
}

/// Runs the hostile host on `ctrl` (brought up by the Linux-like driver)
/// while `others` run their jobs. Returns its report.
pub async fn run(h: Host, ctrl: Controller, others: Vec<Controller>, spec: HostileSpec, opts: DriverOptions) -> HostileReport {
    let f = spec.function;
    let foreign: Vec<u64> =
        others.iter().flat_map(|c| c.0.borrow().queues.iter().flatten().flat_map(|q| [q.sq, q.cq]).collect::<Vec<_>>()).collect();
    let mut a = Actor {
        h: h.clone(),
        f,
        pci: ctrl.pci(),
        ctrl,
        opts,
        rng: Rng::new(spec.seed ^ 0x4057_11e5 ^ u64::from(f)),
        spec: spec.clone(),
        rep: HostileReport { function: f, ..Default::default() },
        events: Rc::new(RefCell::new(Events::default())),
        nsi: 0,
        gen: 0,
        action: "start",
        foreign,
    };
    h.sleep(spec.start).await;
    a.rep.started_us = h.ns(h.now()) as f64 / 1000.0;
    h.log(format!("hostile fn{f}: starting {} actions x {} rounds", spec.actions.len(), spec.rounds));
    // The other functions' admin commands are timed while this runs.
    let done = Rc::new(std::cell::Cell::new(false));
    let admin_lat = Rc::new(RefCell::new((0u64, 0u64, 0u64)));
    for c in others {
        let (h2, done, lat) = (h.clone(), done.clone(), admin_lat.clone());
        h.spawn(async move {
            while !done.get() {
                let t0 = h2.now();
                let r = c.identify(1, 0).await;
                let ns = h2.ns(h2.now() - t0);
                {
                    let mut l = lat.borrow_mut();
                    l.0 += 1;
                    l.1 = l.1.max(ns);
                    l.2 += u64::from(r.is_err());
                }
                h2.sleep(h2.cycles(100_000)).await;
            }
        });
    }
    a.arm_aers();
    for _ in 0..spec.rounds {
        for &act in &spec.actions {
            a.action = act.name();
            h.log(format!("hostile fn{f}: {}", act.name()));
            *a.rep.actions.entry(act.name().to_string()).or_insert(0) += 1;
            a.perform(act).await;
            if a.ctrl.0.borrow().dead.is_some() {
                a.violation("the controller is dead after this action (the driver gave up on it)".into());
                a.reprobe().await;
            }
        }
    }
    a.action = "final check";
    a.rep.final_check = a.verify().await;
    if let Err(e) = a.ctrl.shutdown().await {
        a.violation(format!("orderly shutdown after the actions: {e}"));
    }
    done.set(true);
    a.rep.ended_us = h.ns(h.now()) as f64 / 1000.0;
    let (n, max, errors) = *admin_lat.borrow();
    a.rep.others_admin_commands = n;
    a.rep.others_admin_max_us = max as f64 / 1000.0;
    a.rep.others_admin_errors = errors;
    a.rep.events = a.events.borrow().counts.clone();
    h.log(format!("hostile fn{f}: done, {} spec violations", a.rep.violations));
    a.rep
}

fn rw(op: u8, nsid: u32, slba: u64, blocks: u32) -> Sqe {
    Sqe::new(op).nsid(nsid).cdw(10, slba as u32).cdw(11, (slba >> 32) as u32).cdw(12, blocks.saturating_sub(1))
}

fn sgl_desc(addr: u64, len: u32, kind: u8, sub: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[15] = (kind << 4) | (sub & 0xf);
    d
}

impl Actor {
    fn violation(&mut self, what: String) {
        self.rep.violations += 1;
        let line = format!("{}: {what}", self.action);
        self.h.log(format!("hostile fn{}: VIOLATION {line}", self.f));
        if self.rep.first_violations.len() < 20 {
            self.rep.first_violations.push(line);
        }
    }

    fn count(&mut self, key: String) {
        *self.rep.statuses.entry(key).or_insert(0) += 1;
    }

    /// Records a command's outcome; a status outside `allowed` is a violation.
    fn check(&mut self, what: &str, r: &Result<Cqe, CmdError>, allowed: &[(u8, u8)]) {
        self.rep.commands += 1;
        let (key, ok) = match r {
            Ok(_) => (status_name(st::SUCCESS), allowed.contains(&st::SUCCESS)),
            Err(CmdError::Status(c)) => (status_name(c.code()), allowed.contains(&c.code())),
            Err(CmdError::Timeout) | Err(CmdError::Reset) => ("no completion (timed out, controller reset)".to_string(), false),
            Err(CmdError::Dead(_)) => ("no completion (controller dead)".to_string(), false),
        };
        self.count(key.clone());
        if !ok {
            let want: Vec<String> = allowed.iter().map(|&c| status_name(c)).collect();
            self.violation(format!("{what}: got {key}; expected {}", want.join(" or ")));
        }
    }

    /// Next namespace of the function (round robin over `nsids`).
    fn ns(&mut self) -> (u32, u64, u32) {
        let nss = self.ctrl.namespaces();
        let want = self.spec.nsids[self.nsi % self.spec.nsids.len()];
        self.nsi += 1;
        nss.iter().find(|n| n.nsid == want).map_or((want, 0, 512), |n| (n.nsid, n.blocks, n.block_size))
    }

    fn io_qid(&mut self) -> u16 {
        let q = self.ctrl.io_qids();
        if q.is_empty() {
            return 1;
        }
        q[self.rng.below(q.len() as u64) as usize]
    }

    /// A granted buffer of `len` bytes.
    fn buffer(&self, len: u32) -> DataBuf {
        let b = DataBuf::alloc(&self.h, len, 0);
        b.grant(&self.h, self.f);
        b
    }

    /// Host pages never granted to anybody.
    fn ungranted(&self, pages: u64) -> u64 {
        self.h.alloc_pages(pages)
    }

    async fn io(&mut self, what: &str, sqe: Sqe, allowed: &[(u8, u8)]) {
        let q = self.io_qid();
        let r = self.ctrl.submit(q, sqe).await;
        self.check(what, &r, allowed);
    }

    async fn admin(&mut self, what: &str, sqe: Sqe, allowed: &[(u8, u8)]) {
        let r = self.ctrl.submit(0, sqe).await;
        self.check(what, &r, allowed);
    }

    async fn perform(&mut self, a: Action) {
        match a {
            Action::BadOpcode => self.bad_opcode().await,
            Action::ReservedFields => self.reserved_fields().await,
            Action::Fused => self.fused().await,
            Action::BadNsid => self.bad_nsid().await,
            Action::BadPsdt => self.bad_psdt().await,
            Action::SglGarbage => self.sgl_garbage().await,
            Action::LbaWrap => self.lba_wrap().await,
            Action::PrpOutside => self.prp_outside().await,
            Action::SglOutside => self.sgl_outside().await,
            Action::PrpListLoop => self.prp_list_loop().await,
            Action::DoorbellStorm => self.doorbell_storm().await,
            Action::DoorbellNoQueue => self.doorbell_no_queue().await,
            Action::CqHeadBeyondTail => self.cq_head_beyond_tail().await,
            Action::DeleteQueueUnderIo => self.delete_queue_under_io().await,
            Action::FlrUnderIo => self.flr_under_io().await,
            Action::ResetLoop => self.reset_loop().await,
        }
    }

    // ------------------------------------------------ malformed commands

    async fn bad_opcode(&mut self) {
        // Opcodes the controller does not implement (optional NVM and
        // admin commands, reserved and vendor specific ones).
        const IO: [u8; 14] = [0x03, 0x04, 0x06, 0x07, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x11, 0x19, 0x7c, 0x81, 0xff];
        const ADMIN: [u8; 14] = [0x03, 0x07, 0x0b, 0x0d, 0x10, 0x11, 0x14, 0x15, 0x18, 0x19, 0x7c, 0x80, 0x84, 0xc0];
        for _ in 0..4 {
            let (nsid, _, _) = self.ns();
            let op = IO[self.rng.below(IO.len() as u64) as usize];
            self.io(&format!("I/O opcode {op:#04x}"), Sqe::new(op).nsid(nsid), &[st::INVALID_OPCODE]).await;
            let op = ADMIN[self.rng.below(ADMIN.len() as u64) as usize];
            self.admin(&format!("admin opcode {op:#04x}"), Sqe::new(op), &[st::INVALID_OPCODE]).await;
        }
    }

    async fn reserved_fields(&mut self) {
        let (nsid, blocks, bsz) = self.ns();
        let n = (4096 / bsz).max(1);
        let buf = self.buffer(n * bsz);
        for k in 0..4u32 {
            let slba = self.rng.below(blocks.saturating_sub(u64::from(n)).max(1));
            let mut sqe = rw(opc::READ, nsid, slba, n);
            match k {
                0 => sqe.0[0] |= 0xf << 10,   // CDW0 bits 13:10
                1 => sqe.0[2] = 0xdead_beef, // CDW2
                2 => sqe.0[3] = 0x1234_5678, // CDW3
                _ => sqe.0[13] |= 0xffff_ff00, // CDW13 31:8
            }
            let (sqe, scratch) = build_prps(&self.h, self.f, sqe, &buf);
            let q = self.io_qid();
            let r = self.ctrl.submit_with(q, sqe, scratch).await;
            self.check(&format!("read with reserved bits (variant {k})"), &r, &[st::SUCCESS, st::INVALID_FIELD]);
        }
        let idbuf = self.buffer(4096);
        let mut id = Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(idbuf.addr(0), 0);
        id.0[0] |= 0xf << 10;
        id.0[15] = 0xffff_ffff;
        self.admin("identify with reserved bits", id, &[st::SUCCESS, st::INVALID_FIELD]).await;
        idbuf.revoke(&self.h, self.f);
        buf.revoke(&self.h, self.f);
    }

    async fn fused(&mut self) {
        let (nsid, _, bsz) = self.ns();
        let buf = self.buffer(bsz);
        for fuse in 1..=3u32 {
            let mut sqe = rw(opc::READ, nsid, 0, 1).prp(buf.addr(0), 0);
            sqe.0[0] |= fuse << 8;
            self.io(&format!("read with FUSE {fuse:02b}b"), sqe, &[st::INVALID_FIELD]).await;
        }
        // A Compare + Write fused pair (the controller reports FUSES = 0).
        let mut first = rw(opc::COMPARE, nsid, 0, 1).prp(buf.addr(0), 0);
        first.0[0] |= 1 << 8;
        let mut second = rw(opc::WRITE, nsid, 0, 1).prp(buf.addr(0), 0);
        second.0[0] |= 2 << 8;
        let q = self.io_qid();
        let (c1, c2) = (self.ctrl.clone(), self.ctrl.clone());
        let r1 = Rc::new(RefCell::new(None));
        let r1b = r1.clone();
        self.h.spawn(async move {
            *r1b.borrow_mut() = Some(c1.submit(q, first).await);
        });
        let r2 = c2.submit(q, second).await;
        while r1.borrow().is_none() {
            self.h.sleep(self.h.cycles(1000)).await;
        }
        let r1 = r1.borrow_mut().take().unwrap();
        self.check("fused compare (first)", &r1, &[st::INVALID_FIELD]);
        self.check("fused write (second)", &r2, &[st::INVALID_FIELD]);
        let mut id = Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(buf.addr(0), 0);
        id.0[0] |= 1 << 8;
        self.admin("fused admin command", id, &[st::INVALID_FIELD]).await;
        buf.revoke(&self.h, self.f);
    }

    async fn bad_nsid(&mut self) {
        let (_, _, bsz) = self.ns();
        let buf = self.buffer(bsz);
        let nn = self.ctrl.info().nn;
        let bad = [0, nn.saturating_add(1).max(2), 0x1234_5678, 0xffff_fffe, 0xffff_ffff];
        for (k, &nsid) in bad.iter().enumerate() {
            let nsid = if self.ctrl.namespaces().iter().any(|n| n.nsid == nsid) { 0xffff_fff0 } else { nsid };
            let sqe = rw(opc::READ, nsid, 0, 1).prp(buf.addr(0), 0);
            self.io(&format!("read of namespace {nsid:#x}"), sqe, &[st::INVALID_NAMESPACE]).await;
            let sqe = match k % 3 {
                0 => Sqe::new(opc::WRITE_ZEROES).nsid(nsid),
                1 => rw(opc::COMPARE, nsid, 0, 1).prp(buf.addr(0), 0),
                _ => Sqe::new(opc::FLUSH).nsid(nsid),
            };
            // Flush to FFFFFFFFh is a broadcast (all namespaces): valid.
            let allowed: &[(u8, u8)] = if k % 3 == 2 && nsid == 0xffff_ffff { &[st::SUCCESS] } else { &[st::INVALID_NAMESPACE] };
            self.io(&format!("opcode {:#04x} on namespace {nsid:#x}", sqe.opcode()), sqe, allowed).await;
        }
        buf.revoke(&self.h, self.f);
    }

    async fn bad_psdt(&mut self) {
        let (nsid, _, _) = self.ns();
        let buf = self.buffer(4096);
        for psdt in [2u32, 3] {
            let mut sqe = rw(opc::READ, nsid, 0, 1).prp(buf.addr(0), 0);
            sqe.0[0] |= psdt << 14;
            self.io(&format!("read with PSDT {psdt:02b}b"), sqe, &[st::INVALID_FIELD]).await;
        }
        // Admin commands over PCIe use PRPs only (PSDT 00b).
        let mut id = Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(buf.addr(0), 0);
        id.0[0] |= 1 << 14;
        self.admin("admin command with an SGL", id, &[st::INVALID_FIELD]).await;
        buf.revoke(&self.h, self.f);
    }

    async fn sgl_garbage(&mut self) {
        let (nsid, _, bsz) = self.ns();
        let n = (4096 / bsz).max(1);
        let len = n * bsz;
        let sgls = self.ctrl.info().sgls & 3 != 0;
        let buf = self.buffer(len);
        let seg = self.buffer(8192);
        let read = |d: [u8; 16]| rw(opc::READ, nsid, 0, n).sgl(d);
        if !sgls {
            // Without SGL support, PSDT 01b is an invalid field.
            self.io("SGL to a controller without SGLs", read(sgl_desc(buf.addr(0), len, 0, 0)), &[st::INVALID_FIELD]).await;
            return;
        }
        let data = buf.addr(0);
        // Unsupported types: bit bucket, keyed data block, transport, reserved, vendor.
        for kind in [0x1u8, 0x4, 0x5, 0x6, 0xe, 0xf] {
            self.io(&format!("SGL descriptor type {kind:#x}"), read(sgl_desc(data, len, kind, 0)), &[st::SGL_TYPE_INVALID, st::INVALID_FIELD])
                .await;
        }
        self.io("SGL data block with sub type 1h", read(sgl_desc(data, len, 0, 1)), &[st::SGL_TYPE_INVALID, st::INVALID_FIELD]).await;
        for l in [len / 2, len + 512, 0] {
            self.io(&format!("SGL data block of {l} bytes for {len}"), read(sgl_desc(data, l, 0, 0)), &[st::SGL_LENGTH_INVALID]).await;
        }
        for l in [0u32, 20, 24] {
            self.io(&format!("SGL last segment of {l} bytes"), read(sgl_desc(seg.addr(0), l, 3, 0)), &[st::INVALID_SGL_SEGMENT]).await;
        }
        // 257 descriptors in one segment.
        self.io("SGL segment of 257 descriptors", read(sgl_desc(seg.addr(0), 257 * 16, 3, 0)), &[st::INVALID_SGL_COUNT, st::INVALID_SGL_SEGMENT])
            .await;
        // A segment of random bytes.
        let mut junk = vec![0u8; 4096];
        for b in junk.chunks_mut(8) {
            b.copy_from_slice(&self.rng.next().to_le_bytes());
        }
        seg.write(&self.h, &junk);
        let any_sgl_error = [
            st::INVALID_SGL_SEGMENT,
            st::INVALID_SGL_COUNT,
            st::SGL_LENGTH_INVALID,
            st::SGL_TYPE_INVALID,
            st::DATA_TRANSFER_ERROR,
            st::INVALID_FIELD,
        ];
        for k in 0..3u64 {
            let count = 1 + self.rng.below(16) as u32;
            let at = seg.addr(0) + 16 * k;
            self.io("SGL segment of random descriptors", read(sgl_desc(at, 16 * count, 2 + (k % 2) as u8, 0)), &any_sgl_error).await;
        }
        // A Segment whose only descriptor points to itself: must end.
        let me = seg.addr(4096);
        self.h.write(me, &sgl_desc(me, 16, 2, 0));
        self.io("SGL segment that chains onto itself", read(sgl_desc(me, 16, 2, 0)), &[st::INVALID_SGL_SEGMENT, st::INVALID_SGL_COUNT, st::INVALID_FIELD])
            .await;
        // Two segments chaining onto each other.
        let other = seg.addr(4096 + 64);
        self.h.write(me, &sgl_desc(other, 16, 2, 0));
        self.h.write(other, &sgl_desc(me, 16, 2, 0));
        self.io("two SGL segments chaining onto each other", read(sgl_desc(me, 16, 2, 0)), &[st::INVALID_SGL_SEGMENT, st::INVALID_SGL_COUNT, st::INVALID_FIELD])
            .await;
        seg.revoke(&self.h, self.f);
        buf.revoke(&self.h, self.f);
    }

    async fn lba_wrap(&mut self) {
        let (nsid, blocks, bsz) = self.ns();
        let n = (4096 / bsz).max(1);
        let buf = self.buffer(n * bsz);
        let p = |s: Sqe| s.prp(buf.addr(0), 0);
        let wrap = u64::MAX - self.rng.below(u64::from(n));
        self.io("read wrapping past 2^64", p(rw(opc::READ, nsid, wrap, n)), &[st::LBA_OUT_OF_RANGE]).await;
        self.io("write wrapping past 2^64", p(rw(opc::WRITE, nsid, wrap, n)), &[st::LBA_OUT_OF_RANGE]).await;
        self.io("read past the last block", p(rw(opc::READ, nsid, blocks.saturating_sub(1), n.max(2))), &[st::LBA_OUT_OF_RANGE]).await;
        self.io("read at the namespace size", p(rw(opc::READ, nsid, blocks, 1)), &[st::LBA_OUT_OF_RANGE]).await;
        self.io("compare wrapping", p(rw(opc::COMPARE, nsid, u64::MAX, n)), &[st::LBA_OUT_OF_RANGE]).await;
        let wz = Sqe::new(opc::WRITE_ZEROES).nsid(nsid).cdw(10, u32::MAX).cdw(11, u32::MAX).cdw(12, 7);
        self.io("write zeroes wrapping", wz, &[st::LBA_OUT_OF_RANGE]).await;
        // 65536 blocks: more than MDTS and maybe past the end.
        self.io("read of 65536 blocks", p(rw(opc::READ, nsid, 0, 65536)), &[st::INVALID_FIELD, st::LBA_OUT_OF_RANGE]).await;
        // A DSM range wrapping past 2^64.
        let ranges = self.buffer(16);
        let mut r = [0u8; 16];
        r[4..8].copy_from_slice(&8u32.to_le_bytes());
        r[8..16].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        ranges.write(&self.h, &r);
        let dsm = Sqe::new(opc::DSM).nsid(nsid).cdw(10, 0).cdw(11, 1 << 2).prp(ranges.addr(0), 0);
        self.io("deallocate range wrapping", dsm, &[st::LBA_OUT_OF_RANGE]).await;
        ranges.revoke(&self.h, self.f);
        buf.revoke(&self.h, self.f);
    }

    // ------------------------------------------------ bad data pointers

    async fn prp_outside(&mut self) {
        let (nsid, blocks, bsz) = self.ns();
        let n = (8192 / bsz).max(2);
        let slba = self.rng.below(blocks.saturating_sub(u64::from(n)).max(1));
        let dte = [st::DATA_TRANSFER_ERROR];
        let free = self.ungranted(4);
        self.io("read into memory never granted", rw(opc::READ, nsid, slba, n).prp(free, free + 4096), &dte).await;
        self.io("write from memory never granted", rw(opc::WRITE, nsid, slba, n).prp(free, free + 4096), &dte).await;
        // Other functions' queues: a read would overwrite them, a write leak them.
        let foreign = self.foreign.clone();
        for (k, &addr) in foreign.iter().enumerate().take(6) {
            let op = if k % 2 == 0 { opc::READ } else { opc::WRITE };
            let sqe = rw(op, nsid, slba, n).prp(addr, addr + 4096);
            self.io(&format!("opcode {op:#04x} with data in another function's queue"), sqe, &dte).await;
        }
        // PRP list in ungranted memory, and a granted list of ungranted pages.
        let data = self.buffer(16384);
        let big = (16384 / bsz).max(4);
        self.io("PRP list never granted", rw(opc::READ, nsid, 0, big).prp(data.addr(0), free), &dte).await;
        let list = self.buffer(4096);
        let mut entries = Vec::new();
        for i in 0..3u64 {
            entries.extend_from_slice(&(free + 4096 * i).to_le_bytes());
        }
        self.h.write(list.addr(0), &entries);
        self.io("PRP list of ungranted pages", rw(opc::READ, nsid, 0, big).prp(data.addr(0), list.addr(0)), &dte).await;
        // Addresses at the top of the 64-bit space (a transfer would wrap).
        let top = 0xffff_ffff_ffff_f000u64;
        self.io("read at the top of the address space", rw(opc::READ, nsid, 0, n).prp(top, 0), &[st::DATA_TRANSFER_ERROR, st::PRP_OFFSET_INVALID])
            .await;
        self.io("PRP1 not dword aligned", rw(opc::READ, nsid, 0, 1).prp(data.addr(0) + 2, 0), &[st::PRP_OFFSET_INVALID]).await;
        // Admin data outside granted memory.
        self.admin("identify into memory never granted", Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(free, 0), &dte).await;
        if let Some(&q) = foreign.first() {
            self.admin("identify into another function's queue", Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(q, 0), &dte).await;
        }
        list.revoke(&self.h, self.f);
        data.revoke(&self.h, self.f);
    }

    async fn sgl_outside(&mut self) {
        if self.ctrl.info().sgls & 3 == 0 {
            return;
        }
        let (nsid, _, bsz) = self.ns();
        let n = (4096 / bsz).max(1);
        let len = n * bsz;
        let free = self.ungranted(2);
        let dte = [st::DATA_TRANSFER_ERROR];
        self.io("SGL data block never granted", rw(opc::READ, nsid, 0, n).sgl(sgl_desc(free, len, 0, 0)), &dte).await;
        self.io("SGL segment never granted", rw(opc::READ, nsid, 0, n).sgl(sgl_desc(free, 32, 3, 0)), &dte).await;
        if let Some(&q) = self.foreign.clone().get(1) {
            self.io("SGL data block in another function's queue", rw(opc::READ, nsid, 0, n).sgl(sgl_desc(q, len, 0, 0)), &dte).await;
        }
    }

    async fn prp_list_loop(&mut self) {
        let (nsid, _, bsz) = self.ns();
        let data = self.buffer(4096);
        let list = self.buffer(8192);
        // A list starting in the last slot of its page: that slot must
        // chain; it chains onto itself.
        let me = list.addr(4096 - 8);
        self.h.write(me, &me.to_le_bytes());
        let blocks = (16384 / bsz).max(4);
        let allowed = [st::PRP_OFFSET_INVALID, st::INVALID_FIELD, st::DATA_TRANSFER_ERROR];
        self.io("PRP list chaining onto itself", rw(opc::READ, nsid, 0, blocks).prp(data.addr(0), me), &allowed).await;
        // Two lists chaining onto each other.
        let other = list.addr(8192 - 8);
        self.h.write(me, &other.to_le_bytes());
        self.h.write(other, &me.to_le_bytes());
        self.io("two PRP lists chaining onto each other", rw(opc::READ, nsid, 0, blocks).prp(data.addr(0), me), &allowed).await;
        // The admin queue walks PRP lists too: 64 KiB of error log.
        let numd = (65536 / 4 - 1) as u32;
        let log = Sqe::new(opc::GET_LOG_PAGE).cdw(10, (numd << 16) | (1 << 15) | 0x01).prp(data.addr(0), me);
        self.admin("get log page with a PRP list chaining onto itself", log, &allowed).await;
        list.revoke(&self.h, self.f);
        data.revoke(&self.h, self.f);
    }

    // ------------------------------------------------ doorbells and events

    /// Keeps `AERS` Asynchronous Event Requests outstanding on the
    /// current controller.
    fn arm_aers(&mut self) {
        let gen = {
            let e = self.events.borrow_mut();
            if e.live >= AERS {
                return;
            }
            e.gen
        };
        let want = AERS - self.events.borrow().live;
        for _ in 0..want {
            let (c, ev) = (self.ctrl.clone(), self.events.clone());
            ev.borrow_mut().live += 1;
            self.h.spawn(async move {
                loop {
                    let r = c.submit(0, Sqe::new(opc::AER)).await;
                    let mut e = ev.borrow_mut();
                    if e.gen != gen {
                        return; // a newer controller's tasks took over
                    }
                    match r {
                        Ok(cqe) => {
                            e.pending.push(cqe.dw0);
                            *e.counts.entry(event_name(cqe.dw0)).or_insert(0) += 1;
                        }
                        Err(_) => {
                            e.live -= 1;
                            return;
                        }
                    }
                }
            });
        }
    }

    /// Waits up to `us` for an error event with information `info`.
    async fn wait_event(&mut self, info: u32, us: u64) -> bool {
        let deadline = self.h.now() + self.h.cycles(us * 1000);
        loop {
            {
                let mut e = self.events.borrow_mut();
                if let Some(i) = e.pending.iter().position(|&d| d & 7 == EVENT_ERROR && (d >> 8) & 0xff == info) {
                    e.pending.remove(i);
                    return true;
                }
            }
            if self.h.now() >= deadline {
                return false;
            }
            self.h.sleep(self.h.cycles(2_000)).await;
        }
    }

    /// Reads the Error Information log with RAE clear: the error event
    /// type is unmasked (§5.2).
    async fn read_error_log(&mut self) {
        let buf = self.buffer(4096);
        let numd = 64 / 4 - 1;
        let sqe = Sqe::new(opc::GET_LOG_PAGE).cdw(10, (numd << 16) | 0x01);
        let r = self.ctrl.data_command(0, sqe, &buf).await;
        if let Err(e) = r {
            self.violation(format!("reading the Error Information log: {e}"));
        }
        buf.revoke(&self.h, self.f);
        self.events.borrow_mut().pending.clear();
    }

    /// One bad doorbell write (`index`, `value`) that must raise an error
    /// event `info`; a second one right after must be held back until the
    /// log is read.
    async fn bad_doorbell(&mut self, what: &str, index: u32, value: u32, info: u32) {
        self.arm_aers();
        self.read_error_log().await;
        self.ctrl.ring_raw(index, value);
        self.rep.doorbell_writes += 1;
        if !self.wait_event(info, 300).await {
            self.violation(format!("{what}: no error event (info {info:02x}h) within 300 us"));
            return;
        }
        self.arm_aers();
        self.ctrl.ring_raw(index, value);
        self.rep.doorbell_writes += 1;
        if self.wait_event(info, 100).await {
            self.violation(format!("{what}: a second error event came before the Error Information log was read (not masked)"));
        } else {
            self.rep.events_masked += 1;
        }
    }

    async fn doorbell_no_queue(&mut self) {
        let n = self.ctrl.io_qids().iter().copied().max().unwrap_or(0);
        let max = if self.f == 0 { 64 } else { 16 };
        for k in 0..3u32 {
            let qid = u32::from(n) + 1 + self.rng.below(u64::from(max - u32::from(n).min(max - 1))) as u32;
            let cq = k % 2;
            self.bad_doorbell(&format!("{} doorbell of queue {qid}, which does not exist", if cq == 1 { "CQ head" } else { "SQ tail" }), 2 * qid + cq, 1, INFO_INVALID_DOORBELL)
                .await;
        }
        let q = self.io_qid();
        if !self.works(q).await {
            self.violation(format!("queue {q} does not work after doorbells of absent queues"));
        }
    }

    async fn cq_head_beyond_tail(&mut self) {
        let q = self.io_qid();
        let (depth, head) = {
            let c = self.ctrl.0.borrow();
            c.queues[usize::from(q)].as_ref().map_or((2, 0), |x| (x.depth, x.cq_head))
        };
        // The queue is idle: every entry beyond the head is unposted.
        let beyond = (u32::from(head) + 1 + self.rng.below(u64::from(depth - 1)) as u32) % u32::from(depth);
        self.bad_doorbell(&format!("CQ {q} head {beyond} beyond the tail"), 2 * u32::from(q) + 1, beyond, INFO_INVALID_DOORBELL_VALUE).await;
        self.bad_doorbell(&format!("CQ {q} head {} past the queue size", u32::from(depth) + 3), 2 * u32::from(q) + 1, u32::from(depth) + 3, INFO_INVALID_DOORBELL_VALUE)
            .await;
        self.bad_doorbell(&format!("SQ {q} tail {} past the queue size", u32::from(depth)), 2 * u32::from(q), u32::from(depth), INFO_INVALID_DOORBELL_VALUE).await;
        if !self.works(q).await {
            self.violation(format!("queue {q} does not work after CQ head values beyond its tail"));
        }
    }

    async fn doorbell_storm(&mut self) {
        self.arm_aers();
        self.read_error_log().await;
        let burst = self.burst(16);
        self.h.sleep(self.h.cycles(1000 + self.rng.below(20_000))).await;
        let qids: Vec<(u16, u16)> = {
            let c = self.ctrl.0.borrow();
            c.queues.iter().flatten().map(|q| (q.qid, q.depth)).collect()
        };
        for _ in 0..200 {
            let (q, depth) = qids[self.rng.below(qids.len() as u64) as usize];
            let index = 2 * u32::from(q) + self.rng.below(2) as u32;
            let value = match self.rng.below(3) {
                0 => self.rng.below(u64::from(depth)) as u32,
                1 => u32::from(depth) + self.rng.below(1000) as u32,
                _ => self.rng.next() as u32,
            };
            self.ctrl.ring_raw(index, value);
            self.rep.doorbell_writes += 1;
            if self.rng.below(4) == 0 {
                self.h.sleep(self.h.cycles(self.rng.below(3000))).await;
            }
        }
        if !self.wait_event(INFO_INVALID_DOORBELL_VALUE, 300).await {
            self.violation("no invalid doorbell value event after 200 random doorbell writes".into());
        }
        // Host and controller now disagree on every queue: start over.
        self.teardown(burst, "doorbell storm").await;
        self.reprobe().await;
        if !self.verify().await {
            self.violation("data path broken after a doorbell storm and a controller reset".into());
        }
    }

    // ------------------------------------------------ teardown under I/O

    /// `n` reads and writes on the function's own namespaces, spread over
    /// its queues (results collected, not checked).
    fn burst(&mut self, n: usize) -> Rc<RefCell<Vec<Result<Cqe, CmdError>>>> {
        let out = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..n {
            let (nsid, blocks, bsz) = self.ns();
            let nb = ((4096 << self.rng.below(3)) / bsz).max(1);
            let slba = self.rng.below(blocks.saturating_sub(u64::from(nb)).max(1));
            let op = if self.rng.below(2) == 0 { opc::READ } else { opc::WRITE };
            let q = self.io_qid();
            let (c, h, o) = (self.ctrl.clone(), self.h.clone(), out.clone());
            self.h.spawn(async move {
                let buf = DataBuf::alloc(&h, nb * bsz, 0);
                let r = c.data_command(q, rw(op, nsid, slba, nb), &buf).await;
                o.borrow_mut().push(r);
            });
        }
        out
    }

    /// Counts what became of a burst once its queues are gone.
    async fn teardown(&mut self, burst: Rc<RefCell<Vec<Result<Cqe, CmdError>>>>, _what: &str) {
        self.ctrl.abandon();
        // Let the abandoned commands' futures observe it.
        self.h.sleep(self.h.cycles(1000)).await;
        for r in burst.borrow().iter() {
            match r {
                Ok(_) => self.rep.teardown_completed += 1,
                Err(CmdError::Status(_)) => self.rep.teardown_failed += 1,
                Err(_) => self.rep.teardown_unanswered += 1,
            }
        }
    }

    /// Brings the controller up again from scratch (the Linux probe path:
    /// disable, wait CSTS.RDY = 0, enable within CAP.TO, queues).
    async fn reprobe(&mut self) {
        self.ctrl.abandon();
        self.events.borrow_mut().gen += 1;
        self.events.borrow_mut().live = 0;
        self.events.borrow_mut().pending.clear();
        self.rep.reprobes += 1;
        match Controller::probe(&self.h, self.pci.clone(), self.opts.clone()).await {
            Ok(c) => self.ctrl = c,
            Err(e) => {
                self.violation(format!("bringing the controller up again failed: {e}"));
                return;
            }
        }
        self.arm_aers();
    }

    async fn delete_queue_under_io(&mut self) {
        let q = self.io_qid();
        let (depth, cq) = {
            let c = self.ctrl.0.borrow();
            c.queues[usize::from(q)].as_ref().map_or((16, 0), |x| (x.depth, x.cq))
        };
        let burst = self.burst(12);
        self.h.sleep(self.h.cycles(self.rng.below(20_000))).await;
        self.admin("delete CQ before its SQ", Sqe::new(opc::DELETE_CQ).cdw(10, u32::from(q)), &[st::INVALID_QUEUE_DELETION]).await;
        self.admin("delete the admin SQ", Sqe::new(opc::DELETE_SQ).cdw(10, 0), &[st::INVALID_QID]).await;
        self.admin("delete an SQ that does not exist", Sqe::new(opc::DELETE_SQ).cdw(10, 65), &[st::INVALID_QID]).await;
        self.admin(&format!("delete SQ {q} under I/O"), Sqe::new(opc::DELETE_SQ).cdw(10, u32::from(q)), &[st::SUCCESS]).await;
        let mut before = vec![0u8; usize::from(depth) * 16];
        self.h.read(cq, &mut before);
        self.admin(&format!("delete SQ {q} again"), Sqe::new(opc::DELETE_SQ).cdw(10, u32::from(q)), &[st::INVALID_QID]).await;
        self.admin(&format!("delete CQ {q}"), Sqe::new(opc::DELETE_CQ).cdw(10, u32::from(q)), &[st::SUCCESS]).await;
        self.h.sleep(self.h.cycles(50_000)).await;
        let mut after = vec![0u8; before.len()];
        self.h.read(cq, &mut after);
        if before != after {
            self.violation(format!("a completion was written to CQ {q} after its SQ was deleted"));
        }
        // Commands of the deleted queue: completed before the deletion
        // (success or Command Aborted due to SQ Deletion) or never.
        self.ctrl.forget_queue(q);
        self.h.sleep(self.h.cycles(1000)).await;
        for r in burst.borrow().iter() {
            match r {
                Ok(_) => self.rep.teardown_completed += 1,
                Err(CmdError::Status(c)) if c.code() == st::ABORTED_SQ_DELETION => self.rep.teardown_failed += 1,
                Err(CmdError::Status(c)) => {
                    let c = *c;
                    self.teardown_status(c);
                }
                Err(_) => self.rep.teardown_unanswered += 1,
            }
        }
        if let Err(e) = self.ctrl.create_queue_pair(q, depth).await {
            self.violation(format!("recreating queue pair {q}: {e}"));
            self.reprobe().await;
        }
        if !self.verify().await {
            self.violation(format!("data path broken after deleting and recreating queue {q}"));
        }
    }

    /// A burst command that failed with a status while its queue went away.
    fn teardown_status(&mut self, c: Cqe) {
        self.rep.teardown_failed += 1;
        let allowed = [st::ABORTED_SQ_DELETION, (0, 0x07), st::DATA_TRANSFER_ERROR, (3, 0x00)];
        if !allowed.contains(&c.code()) {
            self.violation(format!("I/O in flight at a teardown ended with {}", status_name(c.code())));
        }
    }

    async fn flr_under_io(&mut self) {
        let pcie = self.pci.pcie_cap;
        let burst = self.burst(16);
        self.h.sleep(self.h.cycles(self.rng.below(30_000))).await;
        let cqs: Vec<(u64, usize)> = {
            let c = self.ctrl.0.borrow();
            c.queues.iter().flatten().map(|q| (q.cq, usize::from(q.depth) * 16)).collect()
        };
        let devctl = self.h.cfg_read(self.f, pcie + 8, 2).await.unwrap_or(0);
        let t0 = self.h.now();
        self.ctrl.abandon();
        // Initiate Function Level Reset (PCIe Base 4.0 §7.5.3.4), and do
        // not wait the 100 ms a polite host waits: poll at once (CRS).
        self.h.cfg_write(self.f, pcie + 8, 2, devctl | 0x8000).await;
        self.rep.flrs += 1;
        let id = self.h.cfg_read(self.f, 0, 2).await;
        let us = self.h.ns(self.h.now() - t0) as f64 / 1000.0;
        self.rep.flr_max_us = self.rep.flr_max_us.max(us);
        if id.is_none() {
            self.violation("the function did not answer configuration requests after FLR".into());
            return;
        }
        if us > 100_000.0 {
            self.violation(format!("FLR took {us:.0} us (PCIe allows 100 ms)"));
        }
        let snapshot: Vec<Vec<u8>> = cqs
            .iter()
            .map(|&(a, n)| {
                let mut b = vec![0u8; n];
                self.h.read(a, &mut b);
                b
            })
            .collect();
        self.teardown(burst, "FLR").await;
        // The host restores what FLR cleared in configuration space (Linux:
        // pci_restore_state): the PF's BAR, memory decoding, bus mastering.
        let bar = self.pci.bar0;
        if self.f == 0 {
            self.h.cfg_write(0, 0x10, 4, bar as u32).await;
            self.h.cfg_write(0, 0x14, 4, (bar >> 32) as u32).await;
        }
        let cmd = self.h.cfg_read(self.f, 0x04, 2).await.unwrap_or(0);
        self.h.cfg_write(self.f, 0x04, 2, cmd | 0x6).await;
        // Registers are back at their reset values.
        let cc = self.h.mmio_read(bar + reg::CC, 4).await.unwrap_or(u64::MAX);
        let csts = self.h.mmio_read(bar + reg::CSTS, 4).await.unwrap_or(u64::MAX);
        let aqa = self.h.mmio_read(bar + reg::AQA, 4).await.unwrap_or(u64::MAX);
        if cc != 0 || csts != 0 || aqa != 0 {
            self.violation(format!("after FLR: CC {cc:#x}, CSTS {csts:#x}, AQA {aqa:#x} (expected all 0)"));
        }
        self.h.sleep(self.h.cycles(20_000)).await;
        for (k, &(a, n)) in cqs.iter().enumerate() {
            let mut b = vec![0u8; n];
            self.h.read(a, &mut b);
            if b != snapshot[k] {
                self.violation("a completion was written to a queue of the function after its FLR finished".into());
                break;
            }
        }
        self.reprobe().await;
        if !self.verify().await {
            self.violation("data path broken after FLR".into());
        }
    }

    async fn csts(&self) -> u32 {
        self.h.mmio_read(self.pci.bar0 + reg::CSTS, 4).await.map_or(u32::MAX, |v| v as u32)
    }

    /// Polls CSTS until `pred` holds, up to CAP.TO; the time it took, or
    /// `None` (and a violation) if it never did.
    async fn wait_csts(&mut self, what: &str, pred: impl Fn(u32) -> bool) -> Option<u64> {
        let cap_to = self.ctrl.0.borrow().timeout_ns.max(500_000_000);
        let t0 = self.h.now();
        loop {
            let s = self.csts().await;
            if s != u32::MAX && pred(s) {
                return Some(self.h.ns(self.h.now() - t0));
            }
            if self.h.ns(self.h.now() - t0) > cap_to {
                self.violation(format!("{what}: CSTS {s:#x} after CAP.TO ({} ms)", cap_to / 1_000_000));
                return None;
            }
            self.h.sleep(self.h.cycles(5_000)).await;
        }
    }

    async fn reset_loop(&mut self) {
        let bar = self.pci.bar0;
        let burst = self.burst(12);
        self.h.sleep(self.h.cycles(self.rng.below(20_000))).await;
        let cc_on = (4 << 20) | (6 << 16) | 1u64;
        // The admin queue the host keeps giving the controller.
        let sq = self.h.alloc_pages(1);
        let cq = self.h.alloc_pages(1);
        let io_sq = self.h.alloc_pages(1);
        let io_cq = self.h.alloc_pages(1);
        let data = self.buffer(4096);
        self.h.with_mem(|m| {
            for p in [sq, cq, io_sq, io_cq] {
                m.grant(self.f, p, 4096);
            }
        });
        self.teardown(burst, "reset").await;
        for i in 0..8u32 {
            let variant = self.rng.below(5);
            // CC.EN = 0 under whatever is in flight.
            self.h.mmio_write(bar + reg::CC, 4, 0);
            self.rep.controller_resets += 1;
            match variant {
                0 => {
                    // Enable again at once, without waiting for RDY = 0.
                    self.h.sleep(self.h.cycles(self.rng.below(5_000))).await;
                }
                1 => {
                    // Shutdown notification on top, then enable again soon.
                    self.h.mmio_write(bar + reg::CC, 4, cc_on & !1 | (1 << 14));
                    self.h.sleep(self.h.cycles(self.rng.below(20_000))).await;
                }
                _ => {
                    let _ = self.wait_csts("disable in a reset loop", |s| s & reg::CSTS_RDY == 0).await;
                }
            }
            for p in [sq, cq, io_cq] {
                self.h.write(p, &[0u8; 4096]);
            }
            self.h.mmio_write(bar + reg::AQA, 4, (7 << 16) | 7);
            self.h.mmio_write(bar + reg::ASQ, 8, sq);
            self.h.mmio_write(bar + reg::ACQ, 8, cq);
            self.h.mmio_write(bar + reg::CC, 4, cc_on);
            if variant >= 2 {
                if self.wait_csts("enable in a reset loop", |s| s & reg::CSTS_RDY != 0).await.is_none() {
                    break;
                }
                // Queue creation and I/O raced by the next disable.
                let mut cmds = vec![
                    Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(data.addr(0), 0),
                    Sqe::new(opc::SET_FEATURES).cdw(10, 7).cdw(11, 0),
                    Sqe::new(opc::CREATE_CQ).prp(io_cq, 0).cdw(10, (15 << 16) | 1).cdw(11, 1),
                    Sqe::new(opc::CREATE_SQ).prp(io_sq, 0).cdw(10, (15 << 16) | 1).cdw(11, (1 << 16) | 1),
                ];
                let take = 1 + self.rng.below(cmds.len() as u64) as usize;
                cmds.truncate(take);
                for (k, mut s) in cmds.into_iter().enumerate() {
                    s.set_cid(100 + i as u16 * 8 + k as u16);
                    self.h.write(sq + 64 * k as u64, &s.bytes());
                }
                self.ctrl.ring_raw(0, take as u32);
                self.rep.doorbell_writes += 1;
                self.h.sleep(self.h.cycles(self.rng.below(30_000))).await;
                if variant == 4 && take == 4 {
                    // I/O on the queue just created (polled: IEN = 0).
                    let (nsid, _, _) = self.ns();
                    for k in 0..4u64 {
                        let mut r = rw(opc::READ, nsid, k, 1).prp(data.addr(0), 0);
                        r.set_cid(k as u16);
                        self.h.write(io_sq + 64 * k, &r.bytes());
                    }
                    self.ctrl.ring_raw(2, 4);
                    self.rep.doorbell_writes += 1;
                    self.h.sleep(self.h.cycles(self.rng.below(10_000))).await;
                }
            }
        }
        // Then an orderly reset must work: RDY = 0, then RDY = 1 within CAP.TO.
        self.h.mmio_write(bar + reg::CC, 4, 0);
        self.rep.controller_resets += 1;
        if self.wait_csts("disable after a reset loop", |s| s & reg::CSTS_RDY == 0).await.is_some() {
            let s = self.csts().await;
            if s & reg::CSTS_CFS != 0 {
                self.violation(format!("CSTS.CFS after a reset loop (CSTS {s:#x})"));
            }
        }
        data.revoke(&self.h, self.f);
        self.reprobe().await;
        if !self.verify().await {
            self.violation("data path broken after a controller reset loop".into());
        }
    }

    // ------------------------------------------------ checks

    /// A read on queue `q` completes successfully.
    async fn works(&mut self, q: u16) -> bool {
        let (nsid, _, bsz) = self.ns();
        let buf = DataBuf::alloc(&self.h, bsz, 0);
        let r = self.ctrl.data_command(q, rw(opc::READ, nsid, 0, 1), &buf).await;
        if let Err(e) = &r {
            self.h.log(format!("hostile fn{}: read on queue {q}: {e}", self.f));
        }
        r.is_ok()
    }

    /// Writes fresh verify data to every namespace and reads it back.
    async fn verify(&mut self) -> bool {
        if self.ctrl.0.borrow().dead.is_some() {
            return false;
        }
        let mut ok = true;
        for _ in 0..self.spec.nsids.len() {
            let (nsid, blocks, bsz) = self.ns();
            let n = (8192 / bsz).max(1);
            let slba = self.rng.below(blocks.saturating_sub(u64::from(n)).max(1));
            self.gen += 1;
            let gen = self.gen;
            let tag = TAG ^ u32::from(self.f);
            let mut d = vec![0u8; (n * bsz) as usize];
            for (i, s) in d.chunks_mut(bsz as usize).enumerate() {
                fill_sector(s, slba + i as u64, gen, tag);
            }
            let buf = DataBuf::alloc(&self.h, n * bsz, 0);
            buf.write(&self.h, &d);
            let q = self.io_qid();
            if let Err(e) = self.ctrl.data_command(q, rw(opc::WRITE, nsid, slba, n), &buf).await {
                self.violation(format!("verify write to namespace {nsid}: {e}"));
                ok = false;
                continue;
            }
            // The last block zeroed by Write Zeroes (NVM Command Set 1.0
            // §3.2.8): it reads back as zeroes, the others keep their data.
            let zeroed = (n >= 2).then(|| slba + u64::from(n) - 1);
            if let Some(z) = zeroed {
                let q = self.io_qid();
                let wz = Sqe::new(opc::WRITE_ZEROES).nsid(nsid).cdw(10, z as u32).cdw(11, (z >> 32) as u32).cdw(12, 0);
                if let Err(e) = self.ctrl.submit(q, wz).await {
                    self.violation(format!("write zeroes on namespace {nsid}: {e}"));
                    ok = false;
                    continue;
                }
            }
            buf.write(&self.h, &vec![0xeeu8; d.len()]);
            let q = self.io_qid();
            if let Err(e) = self.ctrl.data_command(q, rw(opc::READ, nsid, slba, n), &buf).await {
                self.violation(format!("verify read of namespace {nsid}: {e}"));
                ok = false;
                continue;
            }
            buf.read(&self.h, &mut d);
            for (i, s) in d.chunks(bsz as usize).enumerate() {
                let lba = slba + i as u64;
                let r = if Some(lba) == zeroed {
                    if s.iter().all(|&b| b == 0) { Ok(()) } else { Err(format!("LBA {lba}: not zeroes after Write Zeroes")) }
                } else {
                    check_sector(s, lba, gen, tag)
                };
                if let Err(e) = r {
                    self.violation(format!("verify namespace {nsid}: {e}"));
                    ok = false;
                    break;
                }
            }
            // Deallocate that block again (Dataset Management, AD): the
            // command succeeds (what a deallocated block reads as is the
            // namespace's DLFEAT, not checked here).
            if let Some(z) = zeroed {
                let ranges = self.buffer(16);
                let mut r = [0u8; 16];
                r[4..8].copy_from_slice(&1u32.to_le_bytes());
                r[8..16].copy_from_slice(&z.to_le_bytes());
                ranges.write(&self.h, &r);
                let q = self.io_qid();
                let dsm = Sqe::new(opc::DSM).nsid(nsid).cdw(10, 0).cdw(11, 1 << 2).prp(ranges.addr(0), 0);
                if let Err(e) = self.ctrl.submit(q, dsm).await {
                    self.violation(format!("deallocate on namespace {nsid}: {e}"));
                    ok = false;
                }
                ranges.revoke(&self.h, self.f);
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_action_name_is_known() {
        for &n in dpu_targets::HOSTILE_ACTIONS {
            assert_eq!(Action::parse(n).map(Action::name), Some(n), "{n}");
        }
        assert_eq!(Action::ALL.len(), dpu_targets::HOSTILE_ACTIONS.len());
    }

    #[test]
    fn names_of_statuses_and_events() {
        assert_eq!(status_name((0, 0x01)), "0/01 Invalid Command Opcode");
        assert_eq!(status_name((5, 0x33)), "5/33");
        assert_eq!(event_name(0x0001_0100), "error: invalid doorbell write value (type 0, info 01h, log 01h)");
    }
}

/// The scenario's hostile hosts, started next to its jobs: reports land
/// in the returned list as each finishes.
pub fn spawn_all(
    h: &Host,
    sc: &dpu_targets::Scenario,
    ctrls: &BTreeMap<u16, Controller>,
    opts: &DriverOptions,
) -> Result<Rc<RefCell<Vec<HostileReport>>>, String> {
    let out = Rc::new(RefCell::new(Vec::new()));
    let hostile: Vec<u16> = sc.hostile.iter().map(|x| x.function).collect();
    for cfg in &sc.hostile {
        let spec = HostileSpec::from_cfg(h, cfg);
        let ctrl = ctrls.get(&spec.function).cloned().ok_or(format!("hostile function {} has no controller", spec.function))?;
        let others: Vec<Controller> = ctrls.iter().filter(|(f, _)| !hostile.contains(f)).map(|(_, c)| c.clone()).collect();
        let (h2, o, opts) = (h.clone(), out.clone(), opts.clone());
        h.spawn(async move {
            let r = run(h2, ctrl, others, spec, opts).await;
            o.borrow_mut().push(r);
        });
    }
    Ok(out)
}

/// What the scenario expects of its hostile hosts and of the functions
/// they share the card with: no violation, a working controller at the
/// end, the other functions' jobs and admin commands within the latency
/// bound, every action done while the jobs still ran.
/// `jobs_end_us`: when the last job ended (from power-on), if any ran.
pub fn problems(sc: &dpu_targets::Scenario, reports: &[HostileReport], jobs: &[super::workload::JobResult], jobs_end_us: Option<f64>) -> Vec<String> {
    let mut p = Vec::new();
    for (cfg, r) in sc.hostile.iter().filter_map(|c| Some((c, reports.iter().find(|r| r.function == c.function)?))) {
        let f = r.function;
        if r.violations > 0 {
            p.push(format!("hostile fn{f}: {} spec violations (first: {})", r.violations, r.first_violations.first().map_or("", String::as_str)));
        }
        if !r.final_check {
            p.push(format!("hostile fn{f}: the controller did not work after the last action"));
        }
        if let Some(bound) = cfg.others_max_latency_ns() {
            let bound_us = bound as f64 / 1000.0;
            for j in jobs.iter().filter(|j| j.function != f) {
                if j.total.lat_max_us > bound_us {
                    p.push(format!("job {} (fn {}) next to hostile fn{f}: I/O latency up to {:.1} us (bound {bound_us:.1} us)", j.name, j.function, j.total.lat_max_us));
                }
            }
            if r.others_admin_max_us > bound_us {
                p.push(format!("other functions' admin commands next to hostile fn{f}: up to {:.1} us (bound {bound_us:.1} us)", r.others_admin_max_us));
            }
        }
        if r.others_admin_errors > 0 {
            p.push(format!("{} admin commands of other functions failed next to hostile fn{f}", r.others_admin_errors));
        }
        if let Some(end) = jobs_end_us {
            if r.ended_us > end {
                p.push(format!("hostile fn{f} was still at work {:.1} us after the other functions' jobs ended (give them a longer runtime)", r.ended_us - end));
            }
        }
    }
    if reports.len() < sc.hostile.len() {
        p.push(format!("{} of {} hostile hosts did not finish", sc.hostile.len() - reports.len(), sc.hostile.len()));
    }
    p
}
