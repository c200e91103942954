//! The NVM subsystem of a target model: namespaces, dynamic controllers
//! (NVMe Base 2.0 §3.1.2: the admin-queue Connect creates one, I/O queue
//! Connects attach to it), their properties (CAP, VS, CC, CSTS), the
//! admin commands a fabrics host uses, keep-alive supervision, and the
//! discovery controller answering on the same port.

use super::store::Namespace;
use super::TargetParams;
use dpu_nvme::{Sqe, Status};
use dpu_nvme_tcp::discovery::{self, EntryRepr};
use dpu_nvme_tcp::fabrics::property::offset as prop;
use dpu_nvme_tcp::DISCOVERY_NQN;
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
}

pub struct Subsystem {
    pub nqn: String,
    pub namespaces: Vec<Namespace>,
    pub ctrls: BTreeMap<u16, Controller>,
    next_cntlid: u16,
    pub params: TargetParams,
    clock_hz: u64,
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

fn put_str(b: &mut [u8], s: &str) {
    let n = s.len().min(b.len());
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    b[n..].fill(b' ');
}

impl Subsystem {
    pub fn new(p: &TargetParams) -> Subsystem {
        Subsystem {
            nqn: p.nqn.clone(),
            namespaces: p.namespaces.iter().map(|&(bytes, bs)| Namespace::new(bytes, bs)).collect(),
            ctrls: BTreeMap::new(),
            next_cntlid: 1,
            params: p.clone(),
            clock_hz: 1_000_000_000,
        }
    }

    /// Admin-queue Connect: a new controller (dynamic controller model).
    pub fn connect_admin(&mut self, subnqn: &str, hostnqn: &str, kato_ms: u32, now: u64) -> Result<u16, Status> {
        let discovery = subnqn == DISCOVERY_NQN;
        if !discovery && subnqn != self.nqn {
            return Err(dpu_nvme_tcp::fabrics::connect::status::INVALID_PARAMETERS);
        }
        if self.ctrls.len() >= 0xffef {
            return Err(dpu_nvme_tcp::fabrics::connect::status::CONTROLLER_BUSY);
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
            },
        );
        Ok(id)
    }

    /// I/O-queue Connect to controller `cntlid`.
    pub fn connect_io(&mut self, cntlid: u16, qid: u16, subnqn: &str, hostnqn: &str) -> Result<(), Status> {
        use dpu_nvme_tcp::fabrics::connect::status as cs;
        let max = self.params.max_queues;
        let c = self.ctrls.get_mut(&cntlid).ok_or(cs::INVALID_PARAMETERS)?;
        if subnqn != self.nqn || c.hostnqn != hostnqn || c.discovery {
            return Err(cs::INVALID_PARAMETERS);
        }
        if c.cc & 1 == 0 || c.csts & 1 == 0 {
            return Err(Status::COMMAND_SEQUENCE_ERROR);
        }
        let limit = if c.queues_granted > 0 { c.queues_granted } else { max };
        if qid == 0 || qid > limit || c.queues.contains(&qid) {
            return Err(cs::INVALID_PARAMETERS);
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
    fn identify(&self, c: &Controller, sqe: &Sqe) -> AdminResult {
        let cns = sqe.cdw10() as u8;
        let nsid = sqe.nsid();
        let mut d = vec![0u8; 4096];
        match cns {
            0x01 => {
                d[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
                d[2..4].copy_from_slice(&0x1af4u16.to_le_bytes());
                put_str(&mut d[4..24], &format!("SIMT{:08}", c.cntlid));
                put_str(&mut d[24..64], "dpusim NVMe/TCP target model");
                put_str(&mut d[64..72], "1.0");
                d[77] = MDTS;
                d[78..80].copy_from_slice(&c.cntlid.to_le_bytes());
                d[80..84].copy_from_slice(&0x0001_0400u32.to_le_bytes());
                d[111] = if c.discovery { 2 } else { 1 };
                d[259] = 3; // AERL
                d[261] = 0x04; // LPA: extended data for Get Log Page
                d[512] = 0x66; // SQES
                d[513] = 0x44; // CQES
                d[514..516].copy_from_slice(&(QUEUE_ENTRIES as u16).to_le_bytes());
                let nn = if c.discovery { 0 } else { self.namespaces.len() as u32 };
                d[516..520].copy_from_slice(&nn.to_le_bytes());
                // ONCS: Write Zeroes, DSM; SGLS: SGLs supported, keyed
                // and offset data blocks (bit 20: in-capsule offsets).
                d[520..522].copy_from_slice(&0x000cu16.to_le_bytes());
                d[536..540].copy_from_slice(&(1u32 | 1 << 20).to_le_bytes());
                let nqn = if c.discovery { DISCOVERY_NQN } else { &self.nqn };
                d[768..768 + nqn.len()].copy_from_slice(nqn.as_bytes());
                // IOCCSZ / IORCSZ in 16-byte units, ICDOFF 0, MSDBD 1.
                let ioccsz = (64 + self.params.inline_data) / 16;
                d[1792..1796].copy_from_slice(&ioccsz.to_le_bytes());
                d[1796..1800].copy_from_slice(&1u32.to_le_bytes());
                d[1803] = 1;
            }
            0x00 => {
                let Some(ns) = (nsid >= 1).then(|| self.namespaces.get(nsid as usize - 1)).flatten() else {
                    return AdminResult::err(Status::INVALID_NAMESPACE);
                };
                d[0..8].copy_from_slice(&ns.blocks.to_le_bytes());
                d[8..16].copy_from_slice(&ns.blocks.to_le_bytes());
                d[16..24].copy_from_slice(&ns.blocks.to_le_bytes());
                d[128 + 2] = ns.block_shift;
            }
            0x02 => {
                let mut at = 0;
                for i in 1..=self.namespaces.len() as u32 {
                    if i > nsid && at < 4096 {
                        d[at..at + 4].copy_from_slice(&i.to_le_bytes());
                        at += 4;
                    }
                }
            }
            0x03 => {
                // Namespace identification descriptors: one NGUID.
                if nsid == 0 || nsid as usize > self.namespaces.len() {
                    return AdminResult::err(Status::INVALID_NAMESPACE);
                }
                d[0] = 2;
                d[1] = 16;
                d[4..12].copy_from_slice(&u64::from(nsid).to_le_bytes());
                d[12] = self.params.mac[5];
            }
            _ => return AdminResult::err(Status::INVALID_FIELD),
        }
        AdminResult::ok(0, d)
    }

    /// Runs an admin command of controller `cntlid` (not Fabrics commands).
    pub fn admin(&mut self, cntlid: u16, sqe: &Sqe, now: u64) -> Option<AdminResult> {
        self.keep_alive(cntlid, now);
        let c = self.ctrls.get(&cntlid)?;
        if c.cc & 1 == 0 || c.csts & 1 == 0 {
            return Some(AdminResult::err(Status::COMMAND_SEQUENCE_ERROR));
        }
        Some(match sqe.opcode() {
            0x06 => self.identify(c, sqe),
            0x18 => AdminResult::ok(0, Vec::new()),
            0x09 => {
                let fid = sqe.cdw10() as u8;
                match fid {
                    0x07 => {
                        let want = (sqe.cdw11() & 0xffff).min(sqe.cdw11() >> 16) as u16;
                        let granted = (want + 1).min(self.params.max_queues);
                        if let Some(c) = self.ctrls.get_mut(&cntlid) {
                            c.queues_granted = granted;
                        }
                        let g = u32::from(granted - 1);
                        AdminResult::ok(g | g << 16, Vec::new())
                    }
                    0x0b | 0x0f => AdminResult::ok(0, Vec::new()),
                    _ => AdminResult::err(Status::INVALID_FIELD),
                }
            }
            0x02 => {
                let lid = sqe.cdw10() as u8;
                let numd = u64::from(sqe.cdw10() >> 16) | u64::from(sqe.cdw11() & 0xffff) << 16;
                let len = ((numd + 1) * 4).min(1 << 20) as usize;
                let off = u64::from(sqe.cdw12()) | u64::from(sqe.cdw13()) << 32;
                let mut d = vec![0u8; len];
                match lid {
                    discovery::LID_DISCOVERY if c.discovery => {
                        let ip = self.params.ip.to_string();
                        let svc = self.params.port.to_string();
                        let e = EntryRepr {
                            trtype: discovery::trtype::TCP,
                            adrfam: discovery::adrfam::IPV4,
                            subtype: discovery::subtype::NVM,
                            treq: 0,
                            portid: 1,
                            cntlid: 0xffff,
                            asqsz: 32,
                            eflags: 0,
                            trsvcid: &svc,
                            traddr: &ip,
                            subnqn: &self.nqn,
                            tsas: &[],
                        };
                        if discovery::write_log_range(1, &[e], off, &mut d).is_err() {
                            return Some(AdminResult::err(Status::INVALID_FIELD));
                        }
                    }
                    0x01..=0x03 if !c.discovery => {}
                    _ => return Some(AdminResult::err(Status::INVALID_LOG_PAGE)),
                }
                AdminResult::ok(0, d)
            }
            _ => AdminResult::err(Status::INVALID_OPCODE),
        })
    }

    /// The namespace `nsid` (1-based) for I/O.
    pub fn namespace(&mut self, nsid: u32) -> Option<&mut Namespace> {
        (nsid >= 1).then(|| self.namespaces.get_mut(nsid as usize - 1)).flatten()
    }

    pub fn set_clock(&mut self, hz: u64) {
        self.clock_hz = hz;
    }
}
