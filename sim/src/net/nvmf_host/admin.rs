//! Setting up the association, step by step, as Linux `nvme-tcp` and
//! `nvme-fabrics` do it (NVMe-oF 1.1 §3.3 "Connect Command and
//! Response", §3.4 "Property Get/Set"; NVMe Base 2.0 §3.5.2 "Controller
//! Initialization", §3.1.4 "Controller Properties", §5.15 "Identify",
//! §5.27.1.5 "Number of Queues", §5.16 "Keep Alive"):
//!
//! 1. TCP connect to traddr:trsvcid (retried every millisecond while the
//!    controller refuses, a new SYN every 5 ms while it does not answer,
//!    until `connect_timeout`), ICReq/ICResp;
//! 2. Connect: qid 0, SQSIZE 31, KATO, CNTLID 0xFFFF (dynamic), host and
//!    subsystem NQN; the response's DW0 is the CNTLID;
//! 3. Property Get CAP (8 bytes: MQES, TO, MPSMIN) and VS, Property Set
//!    CC = EN | IOSQES 6 | IOCQES 4, Property Get CSTS every 100 us until
//!    RDY (at most CAP.TO x 500 ms);
//! 4. Identify Controller (IOCCSZ: in-capsule data size; MDTS), Identify
//!    Namespace for every namespace the jobs use (NSZE, LBA format);
//! 5. Set Features Number of Queues (NSQR = NCQR = queues - 1; fewer may
//!    be granted);
//! 6. one TCP connection per I/O queue, Connect with qid and CNTLID;
//! 7. Keep Alive every KATO/2 while the admin queue lives.
//!
//! With `namespace_notices`, as Linux's `nvme_enable_aen` and
//! `nvme_queue_async_events` do once the queues are set up: Set Features
//! Asynchronous Event Configuration with bit 8 (Namespace Attribute
//! Notices, NVMe Base 2.0 §5.27.1.7) and one Asynchronous Event Request
//! (§5.2). A completion of type Notice (2h), information 00h, log page
//! 04h is a namespace change: another AER goes out at once, the Changed
//! Namespace List (§5.16.1.5) is read with RAE clear, and each listed
//! namespace the jobs use (all of them for FFFFFFFFh) is identified again
//! (an inactive one - zero NSZE or an error - is dropped).
//!
//! With `discover`, step 1 is preceded by a discovery association, as
//! `nvme discover` makes one (NVMe Base 2.0 §3.1.3.3, §5.16.1.23; NVMe/TCP
//! Transport 1.0: TCP 8009): TCP to traddr:8009, Connect to the
//! well-known discovery NQN, Property Set CC.EN, Property Get CSTS (RDY
//! must be set), Get Log Page LID 70h (4 KiB: the header and up to three
//! entries), then the connection closes. The log must list traddr,
//! trsvcid and subnqn as an NVMe/TCP IPv4 NVM subsystem entry; otherwise
//! the setup fails.

use super::queue::{DataDir, Done};
use super::shared::{NsGeometry, Phase};
use super::{CmdInfo, InitiatorModel, InitiatorParams};
use crate::net::nvmf_wire::commands::{admin_opc, cns, fid, no_data, set_features, GetLogPage, Identify, IDENTIFY_LEN};
use crate::net::nvmf_wire::discovery;
use crate::net::nvmf_wire::fabrics::{property, Connect, ConnectData, PropertyCommand, CNTLID_DYNAMIC, DISCOVERY_NQN};
use crate::net::nvmf_wire::identify::{ControllerIdentity, NamespaceIdentity};
use crate::net::nvmf_wire::Command;

/// Admin queue entries (Connect SQSIZE + 1), as Linux `NVME_AQ_DEPTH`.
pub const ADMIN_QUEUE_ENTRIES: u16 = 32;
/// CC: EN (bit 0), IOSQES = 6 (64-byte SQEs, bits 19:16), IOCQES = 4
/// (16-byte CQEs, bits 23:20); NVM command set, 4 KiB pages.
pub const CC_ENABLE: u64 = 0x0046_0001;
/// Time between two CSTS reads while waiting for RDY.
const CSTS_POLL_US: u64 = 100;
/// Time between two connect attempts while the controller refuses.
pub(super) const RETRY_US: u64 = 1000;
/// A SYN unanswered this long is given up for a fresh attempt (a
/// controller still booting answers neither ARP nor SYN; TCP's own
/// backoff would leave it waiting far longer once it is up).
const SYN_RETRY_US: u64 = 5000;

/// The discovery service's TCP port (NVMe/TCP Transport 1.0, IANA
/// "nvme-disc").
pub const DISCOVERY_PORT: u16 = 8009;
/// Bytes of the discovery log read: the header and three entries.
const DISCOVERY_READ: u32 = 4096;
/// Asynchronous Event Configuration: Namespace Attribute Notices (bit 8).
const AEC_NAMESPACE_NOTICES: u32 = 1 << 8;
/// The Changed Namespace List log page and its size (1024 NSIDs).
const LID_CHANGED_NS: u8 = 0x04;
const CHANGED_NS_LEN: u32 = 4096;

/// One command of the discovery association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscStep {
    Connect,
    SetCc,
    GetCsts,
    GetLog,
}

/// One admin command of the setup (or the keep-alive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    GetCap,
    GetVs,
    SetCc,
    GetCsts,
    IdentifyController,
    IdentifyNamespace(u32),
    SetNumberOfQueues,
    KeepAlive,
    SetAsyncEventConfig,
    AsyncEventRequest,
    ChangedNsLog,
    RescanNamespace(u32),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Stage {
    #[default]
    Idle,
    Starting,
    Ready,
    Failed(String),
}

/// What the setup knows and waits for.
#[derive(Debug, Default)]
pub struct Setup {
    stage: Stage,
    start_at: Option<u64>,
    connect_deadline: u64,
    retry_at: Option<u64>,
    /// When the pending admin connect attempt is given up.
    syn_retry_at: Option<u64>,
    csts_at: Option<u64>,
    csts_deadline: u64,
    keep_alive_at: Option<u64>,
    pub cntlid: u16,
    pub cap: u64,
    pub vs: u32,
    pub ioccsz: u32,
    pub mdts: u8,
    pub namespaces: Vec<NsGeometry>,
    ns_todo: Vec<u32>,
    /// Namespaces to identify again after a notice.
    rescan_todo: Vec<u32>,
    /// I/O queues granted by Set Features.
    pub io_granted: u16,
    pub io_connected: u16,
    admin: Option<usize>,
    /// The admin queue's Connect succeeded.
    admin_up: bool,
    /// The discovery log was read and lists the subsystem (`discover`).
    pub discovered: bool,
}

impl Setup {
    pub fn phase(&self) -> Phase {
        match &self.stage {
            Stage::Idle => Phase::Idle,
            Stage::Starting => Phase::Starting,
            Stage::Ready => Phase::Ready,
            Stage::Failed(w) => Phase::Failed(w.clone()),
        }
    }

    fn fail(&mut self, why: String) {
        if !matches!(self.stage, Stage::Failed(_)) {
            self.stage = Stage::Failed(why);
        }
        self.retry_at = None;
        self.csts_at = None;
    }

    /// The next time a timer of the setup is due.
    pub fn next_due(&self) -> Option<u64> {
        let waiting = self.stage == Stage::Starting && !self.admin_up;
        let deadline = waiting.then_some(self.connect_deadline);
        let syn = self.syn_retry_at.filter(|_| waiting);
        [self.start_at, self.retry_at, self.csts_at, self.keep_alive_at, deadline, syn].into_iter().flatten().min()
    }

    /// The admin TCP connection was refused or reset before it was up:
    /// try again at `at` if that is before the connect deadline.
    pub fn admin_refused(&mut self, at: u64) {
        if self.stage != Stage::Starting {
            return;
        }
        self.admin = None;
        if at < self.connect_deadline {
            self.retry_at = Some(at);
        } else {
            self.fail("no connection to the controller within connect_timeout".into());
        }
    }

    /// The admin queue was lost after it was up.
    pub fn admin_lost(&mut self, _now: u64, why: &str) {
        self.keep_alive_at = None;
        if self.stage == Stage::Starting {
            self.fail(format!("admin queue: {why}"));
        }
    }

    /// The controller was lost while up: set the association up again
    /// from the admin connection at `at` (until `deadline`).
    pub fn restart(&mut self, at: u64, deadline: u64) {
        *self = Setup { stage: Stage::Starting, retry_at: Some(at), connect_deadline: deadline, ..Setup::default() };
    }

    /// An I/O queue could not be connected.
    pub fn io_queue_failed(&mut self, qid: u16, why: &str) {
        if self.stage == Stage::Starting {
            self.fail(format!("I/O queue {qid}: {why}"));
        }
    }

    /// Most outstanding commands per I/O queue: SQSIZE (entries - 1),
    /// bounded by CAP.MQES.
    pub fn io_sqsize(&self, p: &InitiatorParams) -> u16 {
        let mqes = (self.cap & 0xffff) as u16;
        let want = p.queue_depth.saturating_sub(1).max(1);
        if self.cap == 0 { want } else { want.min(mqes.max(1)) }
    }

    /// Largest write carried in the capsule: IOCCSZ x 16 - 64 (the SQE).
    pub fn in_capsule_max(&self) -> u32 {
        self.ioccsz.saturating_mul(16).saturating_sub(64)
    }

    /// MDTS in bytes (units of the minimum page size, CAP.MPSMIN); `None`:
    /// no limit.
    pub fn max_transfer(&self) -> Option<u32> {
        if self.mdts == 0 {
            return None;
        }
        let page = 4096u64 << ((self.cap >> 48) & 0xf);
        Some((page << self.mdts.min(20)).min(u64::from(u32::MAX)) as u32)
    }

    /// The Connect command and its data for queue `qid`.
    pub fn connect_command(&self, p: &InitiatorParams, qid: u16) -> (Command, Vec<u8>) {
        let (sqsize, kato, cntlid) = if qid == 0 {
            (ADMIN_QUEUE_ENTRIES - 1, p.kato_ms, CNTLID_DYNAMIC)
        } else {
            (self.io_sqsize(p), 0, self.cntlid)
        };
        // CATTR bit 2: disable SQ flow control (NVMe over Fabrics 1.1 §3.3).
        let cattr = if p.disable_sqflow { 1 << 2 } else { 0 };
        let cmd = Connect { recfmt: 0, qid, sqsize, cattr, kato }.to_command(0);
        let data = ConnectData { hostid: host_id(&p.hostnqn), cntlid, subnqn: p.subnqn.clone(), hostnqn: p.hostnqn.clone() };
        (cmd, data.to_bytes().unwrap_or_else(|| vec![0u8; 1024]))
    }
}

/// A host identifier derived from the host NQN (the same on every queue
/// of the association, as Connect requires).
fn host_id(hostnqn: &str) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = [0u8; 16];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        for &b in hostnqn.as_bytes().iter().chain([k as u8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}

impl InitiatorModel {
    /// Starts when asked, runs the setup's timers (connect retries, CSTS
    /// polls, keep-alive).
    pub(super) fn setup_tick(&mut self, now: u64) {
        if self.setup.stage == Stage::Idle && self.handle.0.borrow().start_requested {
            self.setup.stage = Stage::Starting;
            let at = now + self.params.start_delay;
            self.setup.start_at = Some(at);
            self.setup.connect_deadline = at.saturating_add(self.params.connect_timeout);
            self.say(now, format!("connecting to {}:{} ({})", self.params.traddr, self.params.trsvcid, self.params.subnqn));
            self.publish_phase(now);
        }
        let due = |t: &mut Option<u64>| {
            if t.is_some_and(|x| x <= now) {
                *t = None;
                true
            } else {
                false
            }
        };
        if due(&mut self.setup.start_at) || due(&mut self.setup.retry_at) {
            self.open_admin(now);
        }
        if self.setup.stage == Stage::Starting && due(&mut self.setup.syn_retry_at) && now < self.setup.connect_deadline {
            if let Some(i) = self.setup.admin.filter(|&i| self.conns[i].queue.is_none() && !self.conns[i].dead) {
                // Unanswered: drop the attempt quietly, forget the
                // unanswered ARP, and send a new SYN.
                let h = self.conns[i].handle;
                self.sockets.remove(h);
                self.conns[i].dead = true;
                self.reset_interface(now);
                self.open_admin(now);
            }
        }
        if self.setup.stage == Stage::Starting && now >= self.setup.connect_deadline && !self.admin_connected() {
            self.setup.fail("no connection to the controller within connect_timeout".into());
            if let Some(i) = self.setup.admin.take() {
                self.teardown(i, now, "connect timeout".into());
            }
            self.publish_phase(now);
        }
        if due(&mut self.setup.csts_at) {
            self.admin_cmd(Step::GetCsts, now);
        }
        if self.setup.keep_alive_at.is_some_and(|t| t <= now) && now < self.silent_until {
            // Silenced (an injected fault): this Keep Alive is skipped.
            self.setup.keep_alive_at = Some(now + self.us(u64::from(self.params.kato_ms) * 500).max(1));
        }
        if due(&mut self.setup.keep_alive_at) && self.admin_connected() {
            self.stats.keep_alives += 1;
            self.admin_cmd(Step::KeepAlive, now);
            self.setup.keep_alive_at = Some(now + self.us(u64::from(self.params.kato_ms) * 500).max(1));
        }
    }

    fn open_admin(&mut self, now: u64) {
        // The discovery connection stands in for the admin one (same
        // connect retries) until the log is read.
        let i = if self.params.discover && !self.setup.discovered { self.open_to(0, DISCOVERY_PORT, true) } else { self.open(0) };
        self.setup.admin = Some(i);
        self.setup.syn_retry_at = Some(now + self.us(SYN_RETRY_US));
    }

    pub(super) fn admin_connected(&self) -> bool {
        self.setup.admin.is_some_and(|i| self.conns[i].connected && !self.conns[i].dead)
    }

    /// Sends the admin command of `step`.
    fn admin_cmd(&mut self, step: Step, now: u64) {
        let Some(i) = self.setup.admin else { return };
        let (cmd, dir, len) = match step {
            Step::GetCap => (PropertyCommand::Get { eight_bytes: true, offset: property::CAP }.to_command(0), DataDir::None, 0),
            Step::GetVs => (PropertyCommand::Get { eight_bytes: false, offset: property::VS }.to_command(0), DataDir::None, 0),
            Step::SetCc => (PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: CC_ENABLE }.to_command(0), DataDir::None, 0),
            Step::GetCsts => (PropertyCommand::Get { eight_bytes: false, offset: property::CSTS }.to_command(0), DataDir::None, 0),
            Step::IdentifyController => (Identify { cns: cns::CONTROLLER, cntid: 0, nsid: 0 }.to_command(0), DataDir::Read, IDENTIFY_LEN),
            Step::IdentifyNamespace(nsid) => (Identify { cns: cns::NAMESPACE, cntid: 0, nsid }.to_command(0), DataDir::Read, IDENTIFY_LEN),
            Step::SetNumberOfQueues => {
                let n = u32::from(self.params.io_queues.max(1) - 1);
                (set_features(0, fid::NUMBER_OF_QUEUES, n | n << 16), DataDir::None, 0)
            }
            Step::KeepAlive => (no_data(admin_opc::KEEP_ALIVE, 0, 0), DataDir::None, 0),
            Step::SetAsyncEventConfig => (set_features(0, fid::ASYNC_EVENT_CONFIG, AEC_NAMESPACE_NOTICES), DataDir::None, 0),
            Step::AsyncEventRequest => {
                self.stats.aers += 1;
                (no_data(admin_opc::ASYNC_EVENT_REQUEST, 0, 0), DataDir::None, 0)
            }
            Step::ChangedNsLog => (GetLogPage::new(LID_CHANGED_NS, 0, CHANGED_NS_LEN).to_command(0), DataDir::Read, CHANGED_NS_LEN),
            Step::RescanNamespace(nsid) => (Identify { cns: cns::NAMESPACE, cntid: 0, nsid }.to_command(0), DataDir::Read, IDENTIFY_LEN),
        };
        self.stats.admin_commands += 1;
        let setup = matches!(step, Step::GetCap | Step::GetVs | Step::SetCc | Step::GetCsts | Step::IdentifyController | Step::IdentifyNamespace(_) | Step::SetNumberOfQueues);
        if self.send(i, cmd, dir, vec![0u8; len as usize], CmdInfo::Admin(step)).is_none() && setup {
            self.setup.fail(format!("{step:?}: the admin queue cannot take commands"));
            self.publish_phase(now);
        }
    }

    /// Discovery connection `i` is up (ICResp): its Connect.
    pub(super) fn discovery_connect(&mut self, i: usize) {
        let cmd = Connect { recfmt: 0, qid: 0, sqsize: ADMIN_QUEUE_ENTRIES - 1, cattr: 0, kato: 0 }.to_command(0);
        let p = &self.params;
        let data = ConnectData { hostid: host_id(&p.hostnqn), cntlid: CNTLID_DYNAMIC, subnqn: DISCOVERY_NQN.into(), hostnqn: p.hostnqn.clone() };
        let data = data.to_bytes().unwrap_or_else(|| vec![0u8; 1024]);
        self.stats.admin_commands += 1;
        self.send(i, cmd, DataDir::WriteInCapsule, data, CmdInfo::Discovery(DiscStep::Connect));
    }

    fn discovery_cmd(&mut self, i: usize, step: DiscStep) {
        let (cmd, dir, len) = match step {
            DiscStep::Connect => return self.discovery_connect(i),
            DiscStep::SetCc => (PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: CC_ENABLE }.to_command(0), DataDir::None, 0),
            DiscStep::GetCsts => (PropertyCommand::Get { eight_bytes: false, offset: property::CSTS }.to_command(0), DataDir::None, 0),
            DiscStep::GetLog => (GetLogPage::new(discovery::LID_DISCOVERY, 0, DISCOVERY_READ).to_command(0), DataDir::Read, DISCOVERY_READ),
        };
        self.stats.admin_commands += 1;
        self.send(i, cmd, dir, vec![0u8; len as usize], CmdInfo::Discovery(step));
    }

    /// Closes discovery connection `i` (done, or failed) without counting
    /// it as a lost admin queue.
    fn end_discovery(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.dead = true;
        self.sockets.get_mut::<smoltcp::socket::tcp::Socket>(c.handle).close();
        if self.setup.admin == Some(i) {
            self.setup.admin = None;
        }
    }

    /// A command of discovery connection `i` completed.
    pub(super) fn on_discovery(&mut self, i: usize, step: DiscStep, done: Done, now: u64) {
        let c = &done.completion;
        let failed = |m: &mut InitiatorModel, why: String| {
            m.setup.fail(format!("discovery: {why}"));
            m.end_discovery(i);
            m.publish_phase(now);
        };
        if !c.status.is_success() || done.digest_error {
            let why = if done.digest_error { "data digest mismatch".into() } else { Self::status_text(&c.status, c.dw0) };
            return failed(self, format!("{step:?}: {why}"));
        }
        match step {
            DiscStep::Connect => {
                self.conns[i].connected = true;
                self.say(now, format!("discovery controller {} at {}:{DISCOVERY_PORT}", c.dw0 as u16, self.params.traddr));
                self.discovery_cmd(i, DiscStep::SetCc);
            }
            DiscStep::SetCc => self.discovery_cmd(i, DiscStep::GetCsts),
            DiscStep::GetCsts if c.dw0 & 1 == 0 => failed(self, format!("CSTS {:#x}: not ready after CC.EN", c.dw0)),
            DiscStep::GetCsts => self.discovery_cmd(i, DiscStep::GetLog),
            DiscStep::GetLog => {
                let (header, entries) = match discovery::entries(&done.data) {
                    Ok(v) => v,
                    Err(e) => return failed(self, format!("discovery log: {e}")),
                };
                self.stats.discovery_entries = header.numrec;
                let p = &self.params;
                let (addr, svc) = (p.traddr.to_string(), p.trsvcid.to_string());
                let listed = entries.iter().any(|e| {
                    e.trtype() == discovery::trtype::TCP
                        && e.adrfam() == discovery::adrfam::IPV4
                        && e.subtype() == discovery::subtype::NVM
                        && e.subnqn() == Some(p.subnqn.as_str())
                        && e.traddr() == Some(addr.as_str())
                        && e.trsvcid() == Some(svc.as_str())
                });
                if !listed {
                    let seen: Vec<String> = entries.iter().map(|e| format!("{}@{}:{}", e.subnqn().unwrap_or("?"), e.traddr().unwrap_or("?"), e.trsvcid().unwrap_or("?"))).collect();
                    let why = format!("the log (GENCTR {}, {} entries: {}) does not list {} at {addr}:{svc}", header.genctr, header.numrec, seen.join(", "), p.subnqn);
                    return failed(self, why);
                }
                let msg = format!("discovery log: {} entries (GENCTR {}), {} at {addr}:{svc} listed", header.numrec, header.genctr, p.subnqn);
                self.say(now, msg);
                self.setup.discovered = true;
                self.end_discovery(i);
                self.open_admin(now);
            }
        }
    }

    /// A Connect completed on connection `i`.
    pub(super) fn on_connect(&mut self, i: usize, done: &Done, now: u64) {
        let qid = self.conns[i].qid;
        let c = &done.completion;
        if !c.status.is_success() {
            let why = format!("Connect refused: {}", Self::status_text(&c.status, c.dw0));
            if qid == 0 {
                self.setup.fail(format!("admin queue: {why}"));
            } else {
                self.setup.io_queue_failed(qid, &why);
            }
            self.teardown(i, now, why);
            self.publish_phase(now);
            return;
        }
        self.conns[i].connected = true;
        if qid == 0 {
            self.setup.admin_up = true;
            self.setup.cntlid = c.dw0 as u16;
            let cntlid = self.setup.cntlid;
            self.say(now, format!("admin queue connected, controller {cntlid}"));
            self.admin_cmd(Step::GetCap, now);
            if self.params.kato_ms > 0 {
                self.setup.keep_alive_at = Some(now + self.us(u64::from(self.params.kato_ms) * 500).max(1));
            }
        } else if self.reconnecting.remove(&qid) {
            self.stats.reconnects += 1;
            self.say(now, format!("queue {qid}: reconnected"));
        } else {
            self.setup.io_connected += 1;
            if self.setup.io_connected == self.setup.io_granted && self.setup.stage == Stage::Starting {
                self.setup.stage = Stage::Ready;
                if self.ctrl_recovering {
                    self.ctrl_recovering = false;
                    self.stats.controller_reconnects += 1;
                    self.say(now, format!("controller {}: association set up again", self.setup.cntlid));
                }
                self.publish_phase(now);
            }
        }
    }

    /// An admin command of the setup completed.
    pub(super) fn on_admin(&mut self, step: Step, done: Done, now: u64) {
        let c = done.completion;
        if !c.status.is_success() || done.digest_error {
            let why = if done.digest_error { "data digest mismatch".into() } else { Self::status_text(&c.status, c.dw0) };
            if step == Step::KeepAlive {
                self.say(now, format!("Keep Alive failed: {why}"));
            } else if matches!(step, Step::SetAsyncEventConfig | Step::AsyncEventRequest | Step::ChangedNsLog | Step::RescanNamespace(_)) {
                // Notices are a service of their own: the I/O goes on.
                self.say(now, format!("{step:?} failed: {why}"));
                match step {
                    Step::AsyncEventRequest => self.stats.aer_errors += 1,
                    Step::RescanNamespace(nsid) => {
                        self.setup.namespaces.retain(|n| n.nsid != nsid);
                        self.next_rescan(now);
                    }
                    _ => {}
                }
            } else if let Step::IdentifyNamespace(nsid) = step {
                // Jobs on it fail with "no namespace"; the others run.
                self.say(now, format!("Identify Namespace {nsid} failed: {why}"));
                self.next_namespace(now);
            } else if step == Step::SetNumberOfQueues {
                // As many as asked; each queue's Connect says if not.
                self.say(now, format!("Set Features Number of Queues failed: {why}; trying {} I/O queue(s)", self.params.io_queues));
                self.open_io_queues(self.params.io_queues);
            } else {
                self.setup.fail(format!("{step:?}: {why}"));
                self.publish_phase(now);
            }
            return;
        }
        match step {
            Step::GetCap => {
                self.setup.cap = u64::from(c.dw0) | u64::from(c.dw1) << 32;
                let to_ms = ((self.setup.cap >> 24) & 0xff).max(1) * 500;
                self.setup.csts_deadline = now + self.us(to_ms * 1000);
                self.admin_cmd(Step::GetVs, now);
            }
            Step::GetVs => {
                self.setup.vs = c.dw0;
                self.admin_cmd(Step::SetCc, now);
            }
            Step::SetCc => self.admin_cmd(Step::GetCsts, now),
            Step::GetCsts => {
                if c.dw0 & 2 != 0 {
                    self.setup.fail("CSTS.CFS: controller fatal status".into());
                    self.publish_phase(now);
                } else if c.dw0 & 1 != 0 {
                    self.admin_cmd(Step::IdentifyController, now);
                } else if now >= self.setup.csts_deadline {
                    self.setup.fail("CSTS.RDY not set within CAP.TO".into());
                    self.publish_phase(now);
                } else {
                    self.setup.csts_at = Some(now + self.us(CSTS_POLL_US));
                }
            }
            Step::IdentifyController => self.identified_controller(&done.data, now),
            Step::IdentifyNamespace(nsid) => {
                match NamespaceIdentity::parse(&done.data) {
                    Some(ns) if ns.nsze > 0 && (9..=16).contains(&ns.lbads) => {
                        self.setup.namespaces.push(NsGeometry { nsid, blocks: ns.nsze, block_size: 1 << ns.lbads });
                    }
                    _ => self.say(now, format!("namespace {nsid} is inactive or has an unusable LBA format")),
                }
                self.next_namespace(now);
            }
            Step::SetNumberOfQueues => {
                let granted = ((c.dw0 & 0xffff).min(c.dw0 >> 16) + 1) as u16;
                let n = self.params.io_queues.min(granted).max(1);
                if n < self.params.io_queues {
                    self.say(now, format!("controller grants {n} of {} I/O queues", self.params.io_queues));
                }
                self.open_io_queues(n);
                if self.params.namespace_notices {
                    self.admin_cmd(Step::SetAsyncEventConfig, now);
                }
            }
            Step::KeepAlive => {}
            Step::SetAsyncEventConfig => self.admin_cmd(Step::AsyncEventRequest, now),
            Step::AsyncEventRequest => {
                let (ty, info, lid) = (c.dw0 & 7, (c.dw0 >> 8) & 0xff, (c.dw0 >> 16) & 0xff);
                self.say(now, format!("asynchronous event: type {ty:#x}, information {info:#x}, log page {lid:#x}"));
                // The next AER first, as Linux re-arms before handling.
                self.admin_cmd(Step::AsyncEventRequest, now);
                if (ty, info, u32::from(LID_CHANGED_NS)) == (2, 0, lid) {
                    self.stats.namespace_notices += 1;
                    self.admin_cmd(Step::ChangedNsLog, now);
                }
            }
            Step::ChangedNsLog => {
                let listed: Vec<u32> = done.data.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).take_while(|&n| n != 0).collect();
                let all = listed.contains(&u32::MAX);
                self.setup.rescan_todo = self.params.nsids.iter().rev().copied().filter(|n| all || listed.contains(n)).collect();
                self.say(now, format!("changed namespaces: {listed:?}"));
                self.next_rescan(now);
            }
            Step::RescanNamespace(nsid) => {
                self.stats.namespace_rescans += 1;
                self.setup.namespaces.retain(|n| n.nsid != nsid);
                match NamespaceIdentity::parse(&done.data) {
                    Some(ns) if ns.nsze > 0 && (9..=16).contains(&ns.lbads) => {
                        self.say(now, format!("namespace {nsid}: {} blocks of {} B", ns.nsze, 1u32 << ns.lbads));
                        self.setup.namespaces.push(NsGeometry { nsid, blocks: ns.nsze, block_size: 1 << ns.lbads });
                    }
                    _ => self.say(now, format!("namespace {nsid} is gone (inactive)")),
                }
                self.next_rescan(now);
            }
        }
    }

    /// The next namespace to identify again; when none is left, the jobs
    /// see the new geometry.
    fn next_rescan(&mut self, now: u64) {
        if let Some(nsid) = self.setup.rescan_todo.pop() {
            return self.admin_cmd(Step::RescanNamespace(nsid), now);
        }
        if self.setup.stage == Stage::Ready {
            self.handle.0.borrow_mut().namespaces = self.setup.namespaces.clone();
        }
    }

    /// Opens the connections of I/O queues 1..=n.
    fn open_io_queues(&mut self, n: u16) {
        self.setup.io_granted = n;
        for qid in 1..=n {
            self.open(qid);
        }
    }

    fn identified_controller(&mut self, data: &[u8], now: u64) {
        let Some(id) = ControllerIdentity::parse(data) else {
            self.setup.fail("Identify Controller: short data".into());
            return self.publish_phase(now);
        };
        self.setup.ioccsz = id.ioccsz;
        self.setup.mdts = id.mdts;
        let vs = self.setup.vs;
        self.say(
            now,
            format!(
                "controller {}: {} {} fw {} NVMe {}.{}, in-capsule {} B, MDTS {}",
                id.cntlid,
                id.mn,
                id.sn,
                id.fr,
                vs >> 16,
                (vs >> 8) & 0xff,
                self.setup.in_capsule_max(),
                self.setup.max_transfer().map_or("none".into(), |b| format!("{b} B"))
            ),
        );
        self.setup.ns_todo = self.params.nsids.iter().rev().copied().collect();
        self.next_namespace(now);
    }

    fn next_namespace(&mut self, now: u64) {
        match self.setup.ns_todo.pop() {
            Some(nsid) => self.admin_cmd(Step::IdentifyNamespace(nsid), now),
            None => self.admin_cmd(Step::SetNumberOfQueues, now),
        }
    }
}
