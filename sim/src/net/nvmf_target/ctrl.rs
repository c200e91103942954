//! The NVM subsystem of a target model: namespaces, dynamic controllers
//! (NVMe Base 2.0 §3.1.2: the admin-queue Connect creates one, I/O queue
//! Connects attach to it), their properties (CAP, VS, CC, CSTS), the
//! admin commands a fabrics host uses, keep-alive supervision, and the
//! discovery controller answering on the same port. Namespace changes
//! ([`Subsystem::namespace_changed`], a test's doing) go on each
//! controller's Changed Namespace List (log page 04h, cleared when read
//! with RAE clear) and, with Asynchronous Event Configuration bit 8 set,
//! make a Namespace Attribute Changed notice due (the session completes
//! a held AER with it; NVMe Base 2.0 §5.2, §5.16.1.5).

use super::store::Namespace;
use super::TargetParams;
use crate::net::nvmf_wire::commands::{admin_opc, cns, fid, GetLogPage, Identify};
use crate::net::nvmf_wire::discovery::{self, EntryRepr};
use crate::net::nvmf_wire::fabrics::{property as prop, DISCOVERY_NQN};
use crate::net::nvmf_wire::identify::{cntrltype, oncs, ControllerIdentity, NamespaceIdentity};
use crate::net::nvmf_wire::{Command, Status};
use std::collections::BTreeMap;

/// Entries per queue the controllers accept (CAP.MQES + 1).
pub const QUEUE_ENTRIES: u32 = 128;
/// Maximum data transfer: 2^5 x 4 KiB = 128 KiB (Identify MDTS).
pub const MDTS: u8 = 5;

pub struct Controller {
    pub cntlid: u16,
    pub hostnqn: String,
    pub discovery: bool,
    /// Keep Alive Timeout in cycles (0 = none) and the last keep-alive.
    pub kato: u64,
    pub last_ka: u64,
    pub cc: u32,
    pub csts: u32,
    /// I/O queues granted by Set Features Number of Queues and connected.
    pub queues_granted: u16,
    pub queues: Vec<u16>,
    /// Asynchronous Event Configuration (Set Features 0Bh).
    pub aec: u32,
    /// Changed Namespace List (log page 04h).
    pub changed: Vec<u32>,
    /// A Namespace Attribute Changed notice waits for an AER.
    pub notice_due: bool,
}

pub struct Subsystem {
    pub nqn: String,
    pub namespaces: Vec<Namespace>,
    pub ctrls: BTreeMap<u16, Controller>,
    next_cntlid: u16,
    pub params: TargetParams,
    clock_hz: u64,
    /// Media time replacing `params.latency` (slow-media fault).
    pub latency_override: Option<u64>,
}

/// What an admin command produced: status, DW0, data for the host.
pub struct AdminResult {
    pub status: Status,
    pub dw0: u32,
    pub data: Vec<u8>,
}

impl AdminResult {
    fn ok(dw0: u32, data: Vec<u8>) -> AdminResult {
        AdminResult { status: Status::SUCCESS, dw0, data }
    }
    fn err(status: Status) -> AdminResult {
        AdminResult { status, dw0: 0, data: Vec::new() }
    }
}

impl Subsystem {
    pub fn new(p: &TargetParams) -> Subsystem {
        Subsystem {
            nqn: p.nqn.clone(),
            namespaces: p
                .namespaces
                .iter()
                .zip(1u32..)
                .map(|(&(bytes, bs), nsid)| if p.patterned.contains(&nsid) { Namespace::patterned(bytes, bs) } else { Namespace::new(bytes, bs) })
                .collect(),
            ctrls: BTreeMap::new(),
            next_cntlid: 1,
            params: p.clone(),
            clock_hz: 1_000_000_000,
            latency_override: None,
        }
    }

    /// Admin-queue Connect: a new controller (dynamic controller model).
    pub fn connect_admin(&mut self, subnqn: &str, hostnqn: &str, kato_ms: u32, now: u64) -> Result<u16, Status> {
        let discovery = subnqn == DISCOVERY_NQN;
        if !discovery && subnqn != self.nqn {
            return Err(Status::CONNECT_INVALID_PARAMETERS);
        }
        if self.ctrls.len() >= 0xffef {
            return Err(Status::CONNECT_CONTROLLER_BUSY);
        }
        let mut id = self.next_cntlid;
        while self.ctrls.contains_key(&id) || id == 0 || id >= 0xfff0 {
            id = if id >= 0xffef { 1 } else { id + 1 };
        }
        self.next_cntlid = if id >= 0xffef { 1 } else { id + 1 };
        let kato = u64::from(kato_ms) * self.clock_hz / 1000;
        self.ctrls.insert(
            id,
            Controller {
                cntlid: id,
                hostnqn: hostnqn.to_string(),
                discovery,
                kato,
                last_ka: now,
                cc: 0,
                csts: 0,
                queues_granted: 0,
                queues: Vec::new(),
                aec: 0,
                changed: Vec::new(),
                notice_due: false,
            },
        );
        Ok(id)
    }

    /// I/O-queue Connect to controller `cntlid`.
    pub fn connect_io(&mut self, cntlid: u16, qid: u16, subnqn: &str, hostnqn: &str) -> Result<(), Status> {
        let max = self.params.max_queues;
        let c = self.ctrls.get_mut(&cntlid).ok_or(Status::CONNECT_INVALID_PARAMETERS)?;
        if subnqn != self.nqn || c.hostnqn != hostnqn || c.discovery {
            return Err(Status::CONNECT_INVALID_PARAMETERS);
        }
        if c.cc & 1 == 0 || c.csts & 1 == 0 {
            return Err(Status::COMMAND_SEQUENCE_ERROR);
        }
        let limit = if c.queues_granted > 0 { c.queues_granted } else { max };
        if qid == 0 || qid > limit || c.queues.contains(&qid) {
            return Err(Status::CONNECT_INVALID_PARAMETERS);
        }
        c.queues.push(qid);
        Ok(())
    }

    /// A queue's connection closed: an admin queue takes its controller down.
    pub fn queue_closed(&mut self, s: &super::session::Session, _now: u64) {
        let (Some(cntlid), Some(qid)) = (s.cntlid(), s.qid()) else { return };
        if qid == 0 {
            self.ctrls.remove(&cntlid);
        } else if let Some(c) = self.ctrls.get_mut(&cntlid) {
            c.queues.retain(|&q| q != qid);
        }
    }

    pub fn reset_all(&mut self) {
        self.ctrls.clear();
    }

    /// Any command on the admin queue (Keep Alive in particular) restarts
    /// the keep-alive timer (NVMe Base 2.0 §3.9.5, "traffic based" off).
    pub fn keep_alive(&mut self, cntlid: u16, now: u64) {
        if let Some(c) = self.ctrls.get_mut(&cntlid) {
            c.last_ka = now;
        }
    }

    /// Every keep-alive timer starts again at `now`.
    pub fn restart_keep_alive(&mut self, now: u64) {
        for c in self.ctrls.values_mut() {
            c.last_ka = now;
        }
    }

    /// Controllers whose keep-alive timer expired (they are removed).
    pub fn expired(&mut self, now: u64, stats: &mut super::TargetStats) -> Vec<u16> {
        let gone: Vec<u16> = self.ctrls.values().filter(|c| c.kato > 0 && now > c.last_ka + c.kato).map(|c| c.cntlid).collect();
        for id in &gone {
            self.ctrls.remove(id);
            stats.keep_alive_expired += 1;
        }
        gone
    }

    /// Earliest keep-alive deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.ctrls.values().filter(|c| c.kato > 0).map(|c| c.last_ka + c.kato + 1).min()
    }

    fn cap(&self) -> u64 {
        // MQES (0's based), CQR, TO = 10 x 500 ms, CSS bit 37 (NVM).
        u64::from(QUEUE_ENTRIES - 1) | 1 << 16 | 10 << 24 | 1 << 37
    }

    pub fn property_get(&self, cntlid: u16, offset: u32) -> Option<u64> {
        let c = self.ctrls.get(&cntlid)?;
        Some(match offset {
            prop::CAP => self.cap(),
            prop::VS => 0x0001_0400,
            prop::CC => u64::from(c.cc),
            prop::CSTS => u64::from(c.csts),
            _ => return None,
        })
    }

    pub fn property_set(&mut self, cntlid: u16, offset: u32, value: u64) -> Result<(), Status> {
        let c = self.ctrls.get_mut(&cntlid).ok_or(Status::INVALID_FIELD)?;
        match offset {
            prop::CC => {
                let cc = value as u32;
                // Enable: ready at once; disable: not ready; shutdown
                // notification (SHN): shutdown complete.
                c.csts = (c.csts & !1) | (cc & 1);
                if (cc >> 14) & 3 != 0 {
                    c.csts = (c.csts & !0xc) | 0x8;
                }
                c.cc = cc;
                Ok(())
            }
            _ => Err(Status::INVALID_FIELD),
        }
    }

    /// Identify (opcode 06h) for controller `cntlid`.
    fn identify(&self, c: &Controller, sqe: &Command) -> AdminResult {
        let id = Identify::parse(sqe);
        let nsid = id.nsid;
        let d = match id.cns {
            cns::CONTROLLER => {
                let nqn = if c.discovery { DISCOVERY_NQN } else { &self.nqn };
                ControllerIdentity {
                    vid: 0x1b36,
                    ssvid: 0x1af4,
                    sn: format!("SIMT{:08}", c.cntlid),
                    mn: "dpusim NVMe/TCP target model".into(),
                    fr: "1.0".into(),
                    mdts: MDTS,
                    cntlid: c.cntlid,
                    ver: 0x0001_0400,
                    cntrltype: if c.discovery { cntrltype::DISCOVERY } else { cntrltype::IO },
                    aerl: 3,
                    // LPA: extended data for Get Log Page.
                    lpa: 0x04,
                    sqes: 0x66,
                    cqes: 0x44,
                    maxcmd: QUEUE_ENTRIES as u16,
                    nn: if c.discovery { 0 } else { self.namespaces.len() as u32 },
                    oncs: oncs::WRITE_ZEROES | oncs::DATASET_MANAGEMENT,
                    // SGLs supported; bit 20: in-capsule data offsets.
                    sgls: 1 | 1 << 20,
                    subnqn: nqn.to_string(),
                    // In 16-byte units: the SQE plus the in-capsule data.
                    ioccsz: (64 + self.params.inline_data) / 16,
                    iorcsz: 1,
                    icdoff: 0,
                    fcatt: 0,
                    msdbd: 1,
                }
                .to_bytes()
            }
            cns::NAMESPACE => {
                let Some(ns) = (nsid >= 1).then(|| self.namespaces.get(nsid as usize - 1)).flatten() else {
                    return AdminResult::err(Status::INVALID_NAMESPACE);
                };
                NamespaceIdentity { nsze: ns.blocks, ncap: ns.blocks, nuse: ns.blocks, dlfeat: 0, lbads: ns.block_shift }.to_bytes()
            }
            cns::ACTIVE_NSID_LIST => {
                let mut d = vec![0u8; 4096];
                let list = (1..=self.namespaces.len() as u32).filter(|&i| i > nsid).take(1024);
                for (slot, i) in d.chunks_exact_mut(4).zip(list) {
                    slot.copy_from_slice(&i.to_le_bytes());
                }
                d
            }
            cns::NS_ID_DESCRIPTORS => {
                // One NGUID descriptor (NIDT 2, NIDL 16).
                if nsid == 0 || nsid as usize > self.namespaces.len() {
                    return AdminResult::err(Status::INVALID_NAMESPACE);
                }
                let mut d = vec![0u8; 4096];
                d[0] = 2;
                d[1] = 16;
                d[4..12].copy_from_slice(&u64::from(nsid).to_le_bytes());
                d[12] = self.params.mac[5];
                d
            }
            _ => return AdminResult::err(Status::INVALID_FIELD),
        };
        AdminResult::ok(0, d)
    }

    /// Whether a host may disable SQ flow control on its queues.
    pub fn sq_flow_disable(&self) -> bool {
        self.params.sq_flow_disable
    }

    /// The discovery log entry of this subsystem on its port.
    fn discovery_entry(&self) -> EntryRepr {
        EntryRepr {
            trtype: discovery::trtype::TCP,
            adrfam: discovery::adrfam::IPV4,
            subtype: discovery::subtype::NVM,
            treq: 0,
            portid: 1,
            cntlid: 0xffff,
            asqsz: 32,
            eflags: 0,
            trsvcid: self.params.port.to_string(),
            subnqn: self.nqn.clone(),
            traddr: self.params.ip.to_string(),
            tsas: Vec::new(),
        }
    }

    /// Runs an admin command of controller `cntlid` (not Fabrics commands).
    pub fn admin(&mut self, cntlid: u16, sqe: &Command, now: u64) -> Option<AdminResult> {
        self.keep_alive(cntlid, now);
        let c = self.ctrls.get(&cntlid)?;
        if c.cc & 1 == 0 || c.csts & 1 == 0 {
            return Some(AdminResult::err(Status::COMMAND_SEQUENCE_ERROR));
        }
        Some(match sqe.opcode() {
            admin_opc::IDENTIFY => self.identify(c, sqe),
            admin_opc::KEEP_ALIVE => AdminResult::ok(0, Vec::new()),
            admin_opc::SET_FEATURES => match sqe.cdw(10) as u8 {
                fid::NUMBER_OF_QUEUES => {
                    let want = (sqe.cdw(11) & 0xffff).min(sqe.cdw(11) >> 16) as u16;
                    let granted = (want + 1).min(self.params.max_queues);
                    if let Some(c) = self.ctrls.get_mut(&cntlid) {
                        c.queues_granted = granted;
                    }
                    let g = u32::from(granted - 1);
                    AdminResult::ok(g | g << 16, Vec::new())
                }
                fid::ASYNC_EVENT_CONFIG => {
                    if let Some(c) = self.ctrls.get_mut(&cntlid) {
                        c.aec = sqe.cdw(11);
                    }
                    AdminResult::ok(0, Vec::new())
                }
                fid::KEEP_ALIVE_TIMER => AdminResult::ok(0, Vec::new()),
                _ => AdminResult::err(Status::INVALID_FIELD),
            },
            admin_opc::GET_LOG_PAGE => {
                let g = GetLogPage::parse(sqe);
                let len = g.bytes().min(1 << 20) as usize;
                let d = match g.lid {
                    discovery::LID_DISCOVERY if c.discovery => match discovery::log_range(1, &[self.discovery_entry()], g.offset, len) {
                        Ok(d) => d,
                        Err(_) => return Some(AdminResult::err(Status::INVALID_FIELD)),
                    },
                    0x01..=0x03 if !c.discovery => vec![0u8; len],
                    0x04 if !c.discovery => {
                        // NSIDs in increasing order, zero after; more than
                        // 1024: FFFFFFFFh alone.
                        let mut page = vec![0u8; 4096];
                        let list = &c.changed;
                        let list: Vec<u32> = if list.len() > 1024 { vec![u32::MAX] } else { list.clone() };
                        for (w, n) in page.chunks_exact_mut(4).zip(list) {
                            w.copy_from_slice(&n.to_le_bytes());
                        }
                        if !g.rae {
                            if let Some(c) = self.ctrls.get_mut(&cntlid) {
                                c.changed.clear();
                            }
                        }
                        let from = (g.offset as usize).min(page.len());
                        let mut d = page[from..].to_vec();
                        d.resize(len, 0);
                        d
                    }
                    _ => return Some(AdminResult::err(Status::INVALID_LOG_PAGE)),
                };
                AdminResult::ok(0, d)
            }
            _ => AdminResult::err(Status::INVALID_OPCODE),
        })
    }

    /// Namespace `nsid` changed: on every I/O controller's Changed
    /// Namespace List, and a notice due where the host enabled them.
    pub fn namespace_changed(&mut self, nsid: u32) {
        for c in self.ctrls.values_mut().filter(|c| !c.discovery) {
            if let Err(at) = c.changed.binary_search(&nsid) {
                c.changed.insert(at, nsid);
            }
            if c.aec & (1 << 8) != 0 {
                c.notice_due = true;
            }
        }
    }

    /// Takes controller `cntlid`'s due notice, if any.
    pub fn take_notice(&mut self, cntlid: u16) -> bool {
        self.ctrls.get_mut(&cntlid).is_some_and(|c| std::mem::take(&mut c.notice_due))
    }

    /// The namespace `nsid` (1-based) for I/O.
    pub fn namespace(&mut self, nsid: u32) -> Option<&mut Namespace> {
        (nsid >= 1).then(|| self.namespaces.get_mut(nsid as usize - 1)).flatten()
    }

    pub fn set_clock(&mut self, hz: u64) {
        self.clock_hz = hz;
    }

    /// Media service time per read/write now, in cycles.
    pub fn latency(&self) -> u64 {
        self.latency_override.unwrap_or(self.params.latency)
    }
}
