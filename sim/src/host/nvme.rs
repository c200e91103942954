//! Host NVMe driver model, shaped like Linux's `nvme` (drivers/nvme/host/
//! pci.c + core.c): controller enable per NVMe Base 2.0 §3.5.1, admin queue,
//! Identify, Set Features (Number of Queues), I/O queue pairs with one
//! MSI-X vector each, PRP lists (and SGLs when the controller offers them),
//! completion by phase tag, timeout -> Abort -> controller reset.
//!
//! It is an independent peer of the firmware's NVMe emulation: it shares no
//! code with it, only the specification.

use super::pci::{self, PciFunction};
use super::Host;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Controller registers (NVMe Base 2.0 §3.1.4, figure 35).
pub mod reg {
    pub const CAP: u64 = 0x00;
    pub const VS: u64 = 0x08;
    pub const INTMS: u64 = 0x0c;
    pub const INTMC: u64 = 0x10;
    pub const CC: u64 = 0x14;
    pub const CSTS: u64 = 0x1c;
    pub const AQA: u64 = 0x24;
    pub const ASQ: u64 = 0x28;
    pub const ACQ: u64 = 0x30;
    pub const CSTS_RDY: u32 = 1;
    pub const CSTS_CFS: u32 = 2;
    /// Processing Paused (NVMe Base 2.0 §3.1.4.6).
    pub const CSTS_PP: u32 = 1 << 5;
    pub const CSTS_SHST_MASK: u32 = 3 << 2;
    pub const CSTS_SHST_DONE: u32 = 2 << 2;
}

/// Opcodes (NVMe Base 2.0 figure 28, NVM Command Set 1.0 figure 18).
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
    pub const AER: u8 = 0x0c;
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const COMPARE: u8 = 0x05;
    pub const WRITE_ZEROES: u8 = 0x08;
    pub const DSM: u8 = 0x09;
}

/// A submission queue entry (64 bytes, 16 dwords).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sqe(pub [u32; 16]);

impl Sqe {
    pub fn new(opcode: u8) -> Sqe {
        let mut s = Sqe::default();
        s.0[0] = u32::from(opcode);
        s
    }
    pub fn opcode(&self) -> u8 {
        self.0[0] as u8
    }
    pub fn cid(&self) -> u16 {
        (self.0[0] >> 16) as u16
    }
    pub fn set_cid(&mut self, cid: u16) {
        self.0[0] = (self.0[0] & 0xffff) | (u32::from(cid) << 16);
    }
    pub fn nsid(mut self, n: u32) -> Sqe {
        self.0[1] = n;
        self
    }
    pub fn cdw(mut self, i: usize, v: u32) -> Sqe {
        self.0[i] = v;
        self
    }
    pub fn prp(mut self, p1: u64, p2: u64) -> Sqe {
        self.0[6] = p1 as u32;
        self.0[7] = (p1 >> 32) as u32;
        self.0[8] = p2 as u32;
        self.0[9] = (p2 >> 32) as u32;
        self
    }
    /// Marks the data pointer as an SGL (PSDT = 01b) and sets its descriptor.
    pub fn sgl(mut self, desc: [u8; 16]) -> Sqe {
        self.0[0] = (self.0[0] & !(3 << 14)) | (1 << 14);
        for i in 0..4 {
            self.0[6 + i] = u32::from_le_bytes(desc[4 * i..4 * i + 4].try_into().unwrap());
        }
        self
    }
    pub fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        for (i, d) in self.0.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&d.to_le_bytes());
        }
        b
    }
}

/// A completion queue entry (NVMe Base 2.0 §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub dw0: u32,
    pub dw1: u32,
    pub sq_head: u16,
    pub sq_id: u16,
    pub cid: u16,
    /// Status field without the phase bit: SC 7:0, SCT 10:8, CRD, M, DNR 14.
    pub status: u16,
}

impl Cqe {
    fn parse(b: &[u8; 16]) -> (Cqe, bool) {
        let dw = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        let d3 = dw(3);
        (
            Cqe {
                dw0: dw(0),
                dw1: dw(1),
                sq_head: dw(2) as u16,
                sq_id: (dw(2) >> 16) as u16,
                cid: d3 as u16,
                status: (d3 >> 17) as u16,
            },
            (d3 >> 16) & 1 == 1,
        )
    }
    pub fn sc(&self) -> u8 {
        self.status as u8
    }
    pub fn sct(&self) -> u8 {
        ((self.status >> 8) & 7) as u8
    }
    pub fn dnr(&self) -> bool {
        self.status & (1 << 14) != 0
    }
    pub fn ok(&self) -> bool {
        self.status & 0x7ff == 0
    }
    /// (SCT, SC).
    pub fn code(&self) -> (u8, u8) {
        (self.sct(), self.sc())
    }
}

/// Why a command did not complete successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// The controller completed it with an error status.
    Status(Cqe),
    /// No completion before the timeout, and the abort/reset path took it.
    Timeout,
    /// The controller was reset while the command was outstanding.
    Reset,
    /// The controller is not usable.
    Dead(String),
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmdError::Status(c) => write!(f, "status SCT {:#x} SC {:#04x}{}", c.sct(), c.sc(), if c.dnr() { " DNR" } else { "" }),
            CmdError::Timeout => write!(f, "timeout"),
            CmdError::Reset => write!(f, "controller reset"),
            CmdError::Dead(s) => write!(f, "controller dead: {s}"),
        }
    }
}

/// Driver tunables (scenario `[host]`).
#[derive(Clone, Debug)]
pub struct DriverOptions {
    pub io_queues: u16,
    pub io_queue_depth: u16,
    pub admin_queue_depth: u16,
    pub io_timeout_ns: u64,
    pub admin_timeout_ns: u64,
    /// Use SGLs for I/O when the controller supports them.
    pub use_sgl: bool,
    /// Host CPU time per submission and per reaped completion.
    pub submit_ns: u64,
    pub complete_ns: u64,
    /// Enable Namespace Attribute Notices and listen for them
    /// ([`Controller::enable_namespace_notices`]).
    pub namespace_notices: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            io_queues: 4,
            io_queue_depth: 256,
            admin_queue_depth: 32,
            io_timeout_ns: 30_000_000,
            admin_timeout_ns: 60_000_000,
            use_sgl: false,
            submit_ns: 300,
            complete_ns: 300,
            namespace_notices: false,
        }
    }
}

struct Slot {
    deadline: u64,
    aborted: bool,
    result: Option<Result<Cqe, CmdError>>,
    waker: Option<Waker>,
    /// Host pages to revoke and free when the command ends (PRP/SGL lists).
    scratch: Vec<u64>,
}

/// One queue pair as the host driver keeps it.
pub struct Queue {
    pub qid: u16,
    pub depth: u16,
    pub sq: u64,
    pub cq: u64,
    pub sq_tail: u16,
    pub sq_head: u16,
    pub cq_head: u16,
    pub phase: bool,
    pub irq: u32,
    pub vector: u16,
    slots: Vec<Option<Slot>>,
    free_cids: VecDeque<u16>,
    /// Submitters waiting for a free command ID, oldest first.
    space_waiters: VecDeque<Waker>,
    /// Generation: bumped when the queue is rebuilt by a reset.
    epoch: u64,
}

impl Queue {
    fn new(qid: u16, depth: u16, sq: u64, cq: u64, irq: u32, vector: u16) -> Queue {
        Queue {
            qid,
            depth,
            sq,
            cq,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            irq,
            vector,
            slots: (0..depth).map(|_| None).collect(),
            // Like Linux (the blk-mq tag set is q_depth - 1): at most
            // entries - 1 commands are outstanding, so the SQ can never
            // be overfilled whatever the controller reports as SQ head.
            free_cids: (0..depth.saturating_sub(1).max(1)).collect(),
            space_waiters: VecDeque::new(),
            epoch: 0,
        }
    }
    /// A command ID was freed: wakes the oldest submitter waiting for one
    /// only. Waking every waiter made each completion cost O(waiters),
    /// quadratic with thousands of workers per queue.
    fn wake_one_waiter(&mut self) {
        if let Some(w) = self.space_waiters.pop_front() {
            w.wake();
        }
    }
    pub fn outstanding(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// What Identify Controller told us.
#[derive(Clone, Debug, Default)]
pub struct CtrlInfo {
    pub vid: u16,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    pub mdts: u8,
    pub cntlid: u16,
    pub version: u32,
    pub aerl: u8,
    pub acl: u8,
    pub nn: u32,
    pub oncs: u16,
    pub vwc: u8,
    pub sgls: u32,
    pub sqes: u8,
    pub cqes: u8,
    /// Optional Asynchronous Events Supported (bit 8: namespace attribute
    /// notices, bit 9: firmware activation notices).
    pub oaes: u32,
    /// Maximum Time for Firmware Activation (100 ms units; 0: not given).
    pub mtfa: u16,
}

/// An active namespace.
#[derive(Clone, Debug)]
pub struct Namespace {
    pub nsid: u32,
    pub blocks: u64,
    pub block_size: u32,
}

/// Statistics of one controller.
#[derive(Clone, Debug, Default)]
pub struct CtrlStats {
    pub commands: u64,
    pub interrupts: u64,
    pub timeouts: u64,
    pub aborts_sent: u64,
    pub resets: u64,
    /// Firmware activations without reset the host saw through (the
    /// Firmware Activation Starting notice, CSTS.PP polled until clear).
    pub fw_activations: u64,
    /// The longest of them: notice to CSTS.PP clear (ns).
    pub fw_activation_ns: u64,
}

pub struct CtrlInner {
    pub h: Host,
    pub pci: PciFunction,
    pub opts: DriverOptions,
    pub cap: u64,
    pub dstrd: u32,
    pub mqes: u32,
    pub timeout_ns: u64,
    pub page_size: u64,
    pub msi: Vec<u32>,
    pub queues: Vec<Option<Queue>>,
    pub info: CtrlInfo,
    pub namespaces: Vec<Namespace>,
    pub stats: CtrlStats,
    pub resetting: bool,
    /// I/O queues quiesced (a firmware activation): no new I/O is
    /// submitted until they are resumed.
    pub quiesced: bool,
    pub dead: Option<String>,
    pub closed: bool,
    reset_waiters: Vec<Waker>,
}

/// A host-side NVMe controller (cheap to clone).
#[derive(Clone)]
pub struct Controller(pub Rc<RefCell<CtrlInner>>);

/// Future of one command's completion.
struct Completion {
    ctrl: Controller,
    qid: u16,
    cid: u16,
    epoch: u64,
}

impl Future for Completion {
    type Output = Result<Cqe, CmdError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut c = self.ctrl.0.borrow_mut();
        let Some(Some(q)) = c.queues.get_mut(usize::from(self.qid)) else {
            return Poll::Ready(Err(CmdError::Reset));
        };
        if q.epoch != self.epoch {
            return Poll::Ready(Err(CmdError::Reset));
        }
        let slot = q.slots[usize::from(self.cid)].as_mut().expect("slot of a pending command");
        if slot.result.is_some() {
            let s = q.slots[usize::from(self.cid)].take().unwrap();
            q.free_cids.push_back(self.cid);
            q.wake_one_waiter();
            let h = c.h.clone();
            let f = c.pci.function;
            drop(c);
            for p in &s.scratch {
                h.with_mem(|m| m.revoke(f, *p, 4096));
                h.free_page(*p);
            }
            return Poll::Ready(s.result.unwrap());
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Waits for a free command ID on queue `qid` (or for a reset to finish)
/// and takes it: `(cid, epoch)`, or `None` if the queue does not exist.
/// Taking the ID in the same step as the check keeps concurrent
/// submitters from all seeing room for one more command.
struct ClaimCid {
    ctrl: Controller,
    qid: u16,
}

impl Future for ClaimCid {
    type Output = Option<(u16, u64)>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut c = self.ctrl.0.borrow_mut();
        // During a reset or a firmware activation only the admin queue
        // takes commands.
        if (c.resetting || c.quiesced) && self.qid != 0 {
            c.reset_waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let Some(Some(q)) = c.queues.get_mut(usize::from(self.qid)) else { return Poll::Ready(None) };
        match q.free_cids.pop_front() {
            Some(cid) => Poll::Ready(Some((cid, q.epoch))),
            None => {
                q.space_waiters.push_back(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A data buffer in host memory: whole pages plus a starting offset.
#[derive(Clone, Debug)]
pub struct DataBuf {
    pub pages: Vec<u64>,
    pub offset: u32,
    pub len: u32,
}

impl DataBuf {
    /// Allocates `len` bytes on contiguous pages.
    pub fn alloc(h: &Host, len: u32, offset: u32) -> DataBuf {
        let pages = (u64::from(offset) + u64::from(len)).div_ceil(4096).max(1);
        let base = h.alloc_pages(pages);
        DataBuf { pages: (0..pages).map(|i| base + 4096 * i).collect(), offset, len }
    }

    /// Allocates `len` bytes on pages that are not contiguous (every other
    /// page), to exercise PRP lists and SGL segments.
    pub fn alloc_scattered(h: &Host, len: u32, offset: u32) -> DataBuf {
        let pages = (u64::from(offset) + u64::from(len)).div_ceil(4096).max(1);
        let base = h.alloc_pages(pages * 2);
        DataBuf { pages: (0..pages).map(|i| base + 8192 * i).collect(), offset, len }
    }

    /// Host address of byte `i`.
    pub fn addr(&self, i: u32) -> u64 {
        let o = u64::from(self.offset) + u64::from(i);
        self.pages[(o / 4096) as usize] + o % 4096
    }

    pub fn write(&self, h: &Host, data: &[u8]) {
        let mut done = 0u32;
        while (done as usize) < data.len() {
            let a = self.addr(done);
            let n = ((4096 - a % 4096) as u32).min(data.len() as u32 - done);
            h.write(a, &data[done as usize..(done + n) as usize]);
            done += n;
        }
    }

    pub fn read(&self, h: &Host, out: &mut [u8]) {
        let mut done = 0u32;
        while (done as usize) < out.len() {
            let a = self.addr(done);
            let n = ((4096 - a % 4096) as u32).min(out.len() as u32 - done);
            h.read(a, &mut out[done as usize..(done + n) as usize]);
            done += n;
        }
    }

    /// Contiguous (address, length) runs.
    pub fn segments(&self) -> Vec<(u64, u32)> {
        let mut segs: Vec<(u64, u32)> = Vec::new();
        let mut done = 0u32;
        while done < self.len {
            let a = self.addr(done);
            let n = ((4096 - a % 4096) as u32).min(self.len - done);
            match segs.last_mut() {
                Some((sa, sl)) if *sa + u64::from(*sl) == a => *sl += n,
                _ => segs.push((a, n)),
            }
            done += n;
        }
        segs
    }

    pub fn grant(&self, h: &Host, function: u16) {
        h.with_mem(|m| {
            for &(a, l) in &self.segments() {
                m.grant(function, a, u64::from(l));
            }
        });
    }

    pub fn revoke(&self, h: &Host, function: u16) {
        h.with_mem(|m| {
            for &(a, l) in &self.segments() {
                m.revoke(function, a, u64::from(l));
            }
        });
    }
}

impl Controller {
    fn inner(&self) -> std::cell::RefMut<'_, CtrlInner> {
        self.0.borrow_mut()
    }

    pub fn host(&self) -> Host {
        self.0.borrow().h.clone()
    }

    pub fn function(&self) -> u16 {
        self.0.borrow().pci.function
    }

    pub fn namespaces(&self) -> Vec<Namespace> {
        self.0.borrow().namespaces.clone()
    }

    pub fn info(&self) -> CtrlInfo {
        self.0.borrow().info.clone()
    }

    pub fn stats(&self) -> CtrlStats {
        self.0.borrow().stats.clone()
    }

    /// I/O queue ids currently live.
    pub fn io_qids(&self) -> Vec<u16> {
        self.0.borrow().queues.iter().skip(1).flatten().map(|q| q.qid).collect()
    }

    fn bar(&self) -> u64 {
        self.0.borrow().pci.bar0
    }

    pub async fn read32(&self, off: u64) -> Option<u32> {
        let h = self.host();
        h.mmio_read(self.bar() + off, 4).await.map(|v| v as u32)
    }

    pub async fn read64(&self, off: u64) -> Option<u64> {
        let h = self.host();
        h.mmio_read(self.bar() + off, 8).await
    }

    pub fn write32(&self, off: u64, v: u32) {
        self.host().mmio_write(self.bar() + off, 4, u64::from(v));
    }

    pub fn write64(&self, off: u64, v: u64) {
        self.host().mmio_write(self.bar() + off, 8, v);
    }

    /// Doorbell register offset: SQ y tail = 2y, CQ y head = 2y + 1 (§3.1.4.22).
    pub fn doorbell_offset(&self, index: u32) -> u64 {
        0x1000 + u64::from(index) * (4u64 << self.0.borrow().dstrd)
    }

    /// Writes a doorbell directly (tests of bad doorbell values).
    pub fn ring_raw(&self, index: u32, value: u32) {
        let off = self.doorbell_offset(index);
        self.write32(off, value);
    }

    /// Probes and enables the controller on `pci`: the Linux probe path.
    pub async fn probe(h: &Host, pci: PciFunction, opts: DriverOptions) -> Result<Controller, String> {
        let f = pci.function;
        let vectors = u32::from(opts.io_queues) + 1;
        let msi = pci::enable_msix(h, &pci, vectors).await?;
        let ctrl = Controller(Rc::new(RefCell::new(CtrlInner {
            h: h.clone(),
            pci,
            opts,
            cap: 0,
            dstrd: 0,
            mqes: 0,
            timeout_ns: 0,
            page_size: 4096,
            msi,
            queues: Vec::new(),
            info: CtrlInfo::default(),
            namespaces: Vec::new(),
            stats: CtrlStats::default(),
            resetting: false,
            quiesced: false,
            dead: None,
            closed: false,
            reset_waiters: Vec::new(),
        })));
        let cap = ctrl.read64(reg::CAP).await.ok_or(format!("function {f}: CAP unreadable"))?;
        {
            let mut c = ctrl.inner();
            c.cap = cap;
            c.mqes = (cap & 0xffff) as u32 + 1;
            c.dstrd = ((cap >> 32) & 0xf) as u32;
            c.timeout_ns = ((cap >> 24) & 0xff).max(1) * 500_000_000;
            if (cap >> 37) & 1 == 0 {
                return Err(format!("function {f}: controller does not support the NVM command set (CAP.CSS)"));
            }
            if (cap >> 48) & 0xf != 0 {
                return Err(format!("function {f}: CAP.MPSMIN > 4 KiB is not supported by the host"));
            }
        }
        ctrl.enable_admin().await?;
        ctrl.spawn_watchdog();
        ctrl.identify_controller().await?;
        ctrl.setup_io_queues().await?;
        ctrl.scan_namespaces().await?;
        let fw_notices = ctrl.info().oaes & (1 << 9) != 0;
        if ctrl.0.borrow().opts.namespace_notices || fw_notices {
            ctrl.enable_namespace_notices().await?;
        }
        let c = ctrl.0.borrow();
        h.log(format!(
            "nvme fn{f}: {} {} fw {} NVMe {}.{}, {} I/O queues, {} namespace(s)",
            c.info.model.trim(),
            c.info.serial.trim(),
            c.info.firmware.trim(),
            c.info.version >> 16,
            (c.info.version >> 8) & 0xff,
            c.queues.len() - 1,
            c.namespaces.len()
        ));
        drop(c);
        Ok(ctrl)
    }

    /// Waits until CSTS satisfies `pred`, up to CAP.TO; fails on CFS.
    async fn wait_csts(&self, what: &str, pred: impl Fn(u32) -> bool) -> Result<u32, String> {
        let h = self.host();
        let (f, to) = {
            let c = self.0.borrow();
            (c.pci.function, c.timeout_ns)
        };
        let deadline = h.now() + h.cycles(to);
        loop {
            let csts = self.read32(reg::CSTS).await.ok_or(format!("function {f}: CSTS unreadable"))?;
            if csts == 0xffff_ffff {
                return Err(format!("function {f}: controller gone (CSTS reads all ones)"));
            }
            if pred(csts) {
                return Ok(csts);
            }
            if csts & reg::CSTS_CFS != 0 && what != "disable" {
                return Err(format!("function {f}: controller fatal status (CSTS.CFS) while waiting to {what}"));
            }
            if h.now() > deadline {
                return Err(format!("function {f}: timeout waiting to {what} (CSTS {csts:#x}, CAP.TO {} ms)", to / 1_000_000));
            }
            h.sleep(h.cycles(10_000)).await;
        }
    }

    /// Disables the controller (CC.EN = 0) and waits for CSTS.RDY = 0.
    pub async fn disable(&self) -> Result<(), String> {
        let cc = self.read32(reg::CC).await.unwrap_or(0);
        self.write32(reg::CC, cc & !1);
        self.wait_csts("disable", |s| s & reg::CSTS_RDY == 0).await.map(drop)
    }

    /// Sets up the admin queue and enables the controller (§3.5.1 steps 1-7).
    async fn enable_admin(&self) -> Result<(), String> {
        let h = self.host();
        let csts = self.read32(reg::CSTS).await.unwrap_or(0);
        let cc = self.read32(reg::CC).await.unwrap_or(0);
        if cc & 1 != 0 || csts & reg::CSTS_RDY != 0 {
            self.disable().await?;
        }
        let (f, depth, irq) = {
            let c = self.0.borrow();
            (c.pci.function, c.opts.admin_queue_depth, c.msi[0])
        };
        let sq = h.alloc_pages(1);
        let cq = h.alloc_pages(1);
        h.with_mem(|m| {
            m.grant(f, sq, 4096);
            m.grant(f, cq, 4096);
        });
        {
            let mut c = self.inner();
            let mut q = Queue::new(0, depth, sq, cq, irq, 0);
            if let Some(Some(old)) = c.queues.first() {
                q.epoch = old.epoch + 1;
            }
            if c.queues.is_empty() {
                c.queues.push(Some(q));
            } else {
                c.queues[0] = Some(q);
            }
        }
        h.trace(|t, _| t.queue(f, 0, cq, depth, irq));
        let d = u32::from(depth) - 1;
        self.write32(reg::AQA, (d << 16) | d);
        self.write64(reg::ASQ, sq);
        self.write64(reg::ACQ, cq);
        // IOCQES = 4 (16 B), IOSQES = 6 (64 B), AMS round robin, MPS 4 KiB, CSS NVM, EN.
        self.write32(reg::CC, (4 << 20) | (6 << 16) | 1);
        self.wait_csts("enable", |s| s & reg::CSTS_RDY != 0).await?;
        self.spawn_reaper(0);
        Ok(())
    }

    fn spawn_reaper(&self, qid: u16) {
        let ctrl = self.clone();
        let h = self.host();
        let (irq, epoch) = {
            let c = self.0.borrow();
            let q = c.queues[usize::from(qid)].as_ref().unwrap();
            (q.irq, q.epoch)
        };
        h.clone().spawn(async move {
            let mut seen = h.irq_count(irq);
            loop {
                seen = h.wait_irq(irq, seen).await;
                {
                    let c = ctrl.0.borrow();
                    match c.queues.get(usize::from(qid)) {
                        Some(Some(q)) if q.epoch == epoch && !c.closed => {}
                        _ => return,
                    }
                }
                ctrl.0.borrow_mut().stats.interrupts += 1;
                ctrl.reap(qid).await;
            }
        });
    }

    /// Processes new completions of queue `qid` and updates its CQ head
    /// doorbell, then wakes the commands' waiters (like Linux's
    /// `nvme_poll_cq`: the doorbell is rung before the batch of requests
    /// completes, so nothing a waiter does next, such as deleting the
    /// queue, can come before it).
    async fn reap(&self, qid: u16) {
        let h = self.host();
        let complete_ns = self.0.borrow().opts.complete_ns;
        let mut reaped = 0u32;
        let mut wake: Vec<Waker> = Vec::new();
        loop {
            let (cq, head, phase, depth) = {
                let c = self.0.borrow();
                let Some(Some(q)) = c.queues.get(usize::from(qid)) else { return };
                (q.cq, q.cq_head, q.phase, q.depth)
            };
            let mut b = [0u8; 16];
            h.read(cq + 16 * u64::from(head), &mut b);
            let (cqe, p) = Cqe::parse(&b);
            if p != phase {
                break;
            }
            {
                let mut c = self.inner();
                let f = c.pci.function;
                let Some(Some(q)) = c.queues.get_mut(usize::from(qid)) else { return };
                q.cq_head = (head + 1) % depth;
                if q.cq_head == 0 {
                    q.phase = !q.phase;
                }
                if cqe.sq_id == qid && cqe.sq_head < q.depth {
                    q.sq_head = cqe.sq_head;
                }
                match q.slots.get_mut(usize::from(cqe.cid)).and_then(Option::as_mut) {
                    Some(slot) if slot.result.is_none() => {
                        slot.result = Some(if cqe.ok() { Ok(cqe) } else { Err(CmdError::Status(cqe)) });
                        wake.extend(slot.waker.take());
                    }
                    _ => {
                            let h = c.h.clone();
                        drop(c);
                        h.log(format!("nvme fn{f}: completion for unknown command {} on queue {qid} ignored", cqe.cid));
                        continue;
                    }
                }
            }
            reaped += 1;
            h.cpu(complete_ns).await;
        }
        if reaped > 0 {
            let head = self.0.borrow().queues[usize::from(qid)].as_ref().map_or(0, |q| q.cq_head);
            self.ring_raw(2 * u32::from(qid) + 1, u32::from(head));
        }
        for w in wake {
            w.wake();
        }
    }

    /// Submits `sqe` on queue `qid` and waits for its completion. `scratch`
    /// pages (PRP/SGL lists) are revoked and freed when it ends.
    pub async fn submit_with(&self, qid: u16, sqe: Sqe, scratch: Vec<u64>) -> Result<Cqe, CmdError> {
        self.submit_traced(qid, sqe, scratch, &[], None).await
    }

    /// Submits with `data` (host segments of the transfer) for the I/O
    /// trace; `timeout_ns` replaces the queue's command timeout (as
    /// nvme-cli's `--timeout` does for a slow admin command).
    async fn submit_traced(&self, qid: u16, mut sqe: Sqe, scratch: Vec<u64>, data: &[(u64, u32)], timeout_ns: Option<u64>) -> Result<Cqe, CmdError> {
        let h = self.host();
        if let Some(d) = self.0.borrow().dead.clone() {
            return Err(CmdError::Dead(d));
        }
        let submit_ns = self.0.borrow().opts.submit_ns;
        let (cid, epoch, slot_addr, tail) = loop {
            let Some((cid, epoch)) = (ClaimCid { ctrl: self.clone(), qid }).await else {
                return Err(CmdError::Dead(format!("queue {qid} does not exist")));
            };
            h.cpu(submit_ns).await;
            let mut c = self.inner();
            let timeout = timeout_ns.unwrap_or(if qid == 0 { c.opts.admin_timeout_ns } else { c.opts.io_timeout_ns });
            // Like Linux, an Asynchronous Event Request never times out:
            // it completes only when there is an event.
            let deadline = if qid == 0 && sqe.opcode() == opc::AER { u64::MAX } else { h.now() + h.cycles(timeout) };
            let Some(Some(q)) = c.queues.get_mut(usize::from(qid)) else {
                return Err(CmdError::Dead(format!("queue {qid} does not exist")));
            };
            if q.epoch != epoch {
                continue; // the queue was rebuilt by a reset meanwhile: its IDs are new
            }
            sqe.set_cid(cid);
            q.slots[usize::from(cid)] = Some(Slot { deadline, aborted: false, result: None, waker: None, scratch });
            let addr = q.sq + 64 * u64::from(q.sq_tail);
            q.sq_tail = (q.sq_tail + 1) % q.depth;
            let tail = q.sq_tail;
            c.stats.commands += 1;
            break (cid, epoch, addr, tail);
        };
        h.write(slot_addr, &sqe.bytes());
        let f = self.function();
        h.trace(|t, now| t.submit(now, f, qid, &sqe.0, slot_addr, data));
        self.ring_raw(2 * u32::from(qid), u32::from(tail));
        let r = Completion { ctrl: self.clone(), qid, cid, epoch }.await;
        h.trace(|t, now| t.complete(now, f, qid, cid));
        r
    }

    pub async fn submit(&self, qid: u16, sqe: Sqe) -> Result<Cqe, CmdError> {
        self.submit_with(qid, sqe, Vec::new()).await
    }

    /// Writes an SQE into queue `qid` without ringing the doorbell; returns
    /// (cid, new tail). Used to test Abort of a command not yet fetched.
    pub fn stage(&self, qid: u16, mut sqe: Sqe) -> Option<(u16, u16, impl Future<Output = Result<Cqe, CmdError>>)> {
        let h = self.host();
        let (cid, epoch, addr, tail) = {
            let mut c = self.inner();
            let deadline = h.now() + h.cycles(c.opts.io_timeout_ns);
            let q = c.queues.get_mut(usize::from(qid))?.as_mut()?;
            let cid = q.free_cids.pop_front()?;
            sqe.set_cid(cid);
            q.slots[usize::from(cid)] = Some(Slot { deadline, aborted: false, result: None, waker: None, scratch: Vec::new() });
            let addr = q.sq + 64 * u64::from(q.sq_tail);
            q.sq_tail = (q.sq_tail + 1) % q.depth;
            (cid, q.epoch, addr, q.sq_tail)
        };
        h.write(addr, &sqe.bytes());
        Some((cid, tail, Completion { ctrl: self.clone(), qid, cid, epoch }))
    }

    /// Reads data for a command: builds PRPs (or SGLs) for `buf`, grants it.
    pub async fn data_command(&self, qid: u16, sqe: Sqe, buf: &DataBuf) -> Result<Cqe, CmdError> {
        self.data_command_timeout(qid, sqe, buf, None).await
    }

    /// [`Controller::data_command`] with its own timeout (`None`: the queue's).
    pub async fn data_command_timeout(&self, qid: u16, sqe: Sqe, buf: &DataBuf, timeout_ns: Option<u64>) -> Result<Cqe, CmdError> {
        let h = self.host();
        let (f, use_sgl) = {
            let c = self.0.borrow();
            (c.pci.function, c.opts.use_sgl && c.info.sgls & 3 != 0 && qid != 0)
        };
        buf.grant(&h, f);
        let (sqe, scratch) = if use_sgl { build_sgl(&h, f, sqe, buf) } else { build_prps(&h, f, sqe, buf) };
        let r = self.submit_traced(qid, sqe, scratch, &buf.segments(), timeout_ns).await;
        buf.revoke(&h, f);
        r
    }

    /// Submits a command without data with its own timeout.
    pub async fn submit_timeout(&self, qid: u16, sqe: Sqe, timeout_ns: u64) -> Result<Cqe, CmdError> {
        self.submit_traced(qid, sqe, Vec::new(), &[], Some(timeout_ns)).await
    }

    /// Identify (CNS `cns`) into a fresh 4 KiB buffer.
    pub async fn identify(&self, cns: u32, nsid: u32) -> Result<Vec<u8>, CmdError> {
        let h = self.host();
        let buf = DataBuf::alloc(&h, 4096, 0);
        let r = self.data_command(0, Sqe::new(opc::IDENTIFY).nsid(nsid).cdw(10, cns), &buf).await;
        let mut out = vec![0u8; 4096];
        buf.read(&h, &mut out);
        h.free_page(buf.pages[0]);
        r.map(|_| out)
    }

    async fn identify_controller(&self) -> Result<(), String> {
        let f = self.function();
        let d = self.identify(1, 0).await.map_err(|e| format!("function {f}: Identify Controller failed: {e}"))?;
        let s = |a: usize, b: usize| String::from_utf8_lossy(&d[a..b]).to_string();
        let u16_at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
        let info = CtrlInfo {
            vid: u16_at(0),
            serial: s(4, 24),
            model: s(24, 64),
            firmware: s(64, 72),
            mdts: d[77],
            cntlid: u16_at(78),
            version: u32_at(80),
            acl: d[258],
            aerl: d[259],
            sqes: d[512],
            cqes: d[513],
            oaes: u32_at(92),
            mtfa: u16_at(270),
            nn: u32_at(516),
            oncs: u16_at(520),
            vwc: d[525],
            sgls: u32_at(536),
        };
        if info.sqes & 0xf > 6 || info.sqes >> 4 < 6 || info.cqes & 0xf > 4 || info.cqes >> 4 < 4 {
            return Err(format!("function {f}: SQES/CQES {:#x}/{:#x} do not allow 64/16-byte entries", info.sqes, info.cqes));
        }
        self.inner().info = info;
        Ok(())
    }

    /// Set Features (Number of Queues), then one CQ/SQ pair per vector.
    async fn setup_io_queues(&self) -> Result<(), String> {
        let (f, want, depth) = {
            let c = self.0.borrow();
            (c.pci.function, c.opts.io_queues.min(c.msi.len() as u16 - 1), c.opts.io_queue_depth.min(c.mqes as u16))
        };
        let n = u32::from(want.max(1) - 1);
        let cqe = self
            .submit(0, Sqe::new(opc::SET_FEATURES).cdw(10, 0x07).cdw(11, (n << 16) | n))
            .await
            .map_err(|e| format!("function {f}: Set Features (Number of Queues) failed: {e}"))?;
        let granted = ((cqe.dw0 & 0xffff).min(cqe.dw0 >> 16) + 1) as u16;
        let count = want.min(granted);
        if self.0.borrow().queues.len() < usize::from(count) + 1 {
            self.inner().queues.resize_with(usize::from(count) + 1, || None);
        }
        for qid in 1..=count {
            self.create_queue_pair(qid, depth).await.map_err(|e| format!("function {f}: queue {qid}: {e}"))?;
        }
        Ok(())
    }

    /// Creates I/O CQ and SQ `qid` with `depth` entries.
    pub async fn create_queue_pair(&self, qid: u16, depth: u16) -> Result<(), CmdError> {
        let h = self.host();
        let (f, irq) = {
            let c = self.0.borrow();
            (c.pci.function, c.msi[usize::from(qid) % c.msi.len()])
        };
        let vector = qid;
        let sq_pages = (u64::from(depth) * 64).div_ceil(4096);
        let cq_pages = (u64::from(depth) * 16).div_ceil(4096);
        let sq = h.alloc_pages(sq_pages);
        let cq = h.alloc_pages(cq_pages);
        h.with_mem(|m| {
            m.grant(f, sq, sq_pages * 4096);
            m.grant(f, cq, cq_pages * 4096);
        });
        let qsize = u32::from(depth) - 1;
        self.submit(
            0,
            Sqe::new(opc::CREATE_CQ).prp(cq, 0).cdw(10, (qsize << 16) | u32::from(qid)).cdw(11, (u32::from(vector) << 16) | 0b11),
        )
        .await?;
        {
            let mut c = self.inner();
            let old = c.queues.get(usize::from(qid)).and_then(Option::as_ref).map_or(0, |q| q.epoch + 1);
            let mut q = Queue::new(qid, depth, sq, cq, irq, vector);
            q.epoch = old;
            if c.queues.len() <= usize::from(qid) {
                c.queues.resize_with(usize::from(qid) + 1, || None);
            }
            c.queues[usize::from(qid)] = Some(q);
        }
        self.spawn_reaper(qid);
        h.trace(|t, _| t.queue(f, qid, cq, depth, irq));
        self.submit(0, Sqe::new(opc::CREATE_SQ).prp(sq, 0).cdw(10, (qsize << 16) | u32::from(qid)).cdw(11, (u32::from(qid) << 16) | 1))
            .await?;
        Ok(())
    }

    /// Linux's namespace change handling (`nvme_enable_aen`,
    /// `nvme_handle_aen_notice`): if the controller offers Namespace
    /// Attribute Notices (Identify Controller OAES bit 8), enables them
    /// (Set Features, Asynchronous Event Configuration 0Bh, bit 8) and
    /// keeps one Asynchronous Event Request outstanding. A notice of type
    /// 2h, information 00h, log page 04h makes the host read the Changed
    /// Namespace List (RAE clear: that clears it and unmasks the event)
    /// and rescan its namespaces, then re-arm (NVMe Base 2.0 §5.2,
    /// §5.16.1.5). Returns false if the controller does not offer them.
    ///
    /// Like Linux (`nvme_enable_aen`: `ctrl->oaes & NVME_AEN_SUPPORTED`),
    /// Firmware Activation Notices (OAES bit 9) are enabled too when the
    /// controller offers them; a notice of type 2h, information 01h, log
    /// page 03h runs [`Controller::firmware_activation`] before the AER is
    /// sent again.
    pub async fn enable_namespace_notices(&self) -> Result<bool, String> {
        let f = self.function();
        let oaes = self.info().oaes;
        let ns = self.0.borrow().opts.namespace_notices && oaes & (1 << 8) != 0;
        let aec = u32::from(ns) << 8 | (oaes & (1 << 9));
        if aec == 0 {
            return Ok(false);
        }
        self.submit(0, Sqe::new(opc::SET_FEATURES).cdw(10, 0x0b).cdw(11, aec))
            .await
            .map_err(|e| format!("function {f}: Set Features (Asynchronous Event Configuration) failed: {e}"))?;
        let (ctrl, h) = (self.clone(), self.host());
        h.clone().spawn(async move {
            loop {
                // No timeout: an AER completes only when an event occurs.
                let cqe = match ctrl.submit(0, Sqe::new(opc::AER)).await {
                    Ok(c) => c,
                    // Reset, shutdown or refused: the driver stops listening.
                    Err(_) => return,
                };
                let (kind, info, lid) = (cqe.dw0 & 7, (cqe.dw0 >> 8) & 0xff, (cqe.dw0 >> 16) & 0xff);
                if (kind, info, lid) == (2, 1, 3) {
                    if !ctrl.firmware_activation().await {
                        return;
                    }
                    continue;
                }
                if (kind, info, lid) != (2, 0, 4) {
                    h.log(format!("nvme fn{f}: asynchronous event {:#x} ignored", cqe.dw0));
                    continue;
                }
                let changed = match ctrl.changed_namespaces().await {
                    Ok(l) => l,
                    Err(e) => {
                        h.log(format!("nvme fn{f}: Changed Namespace List: {e}"));
                        return;
                    }
                };
                if let Err(e) = ctrl.scan_namespaces().await {
                    h.log(format!("nvme fn{f}: rescan after a namespace notice: {e}"));
                    return;
                }
                h.log(format!("nvme fn{f}: namespace attribute changed ({changed:?}); rescanned: {} namespace(s)", ctrl.namespaces().len()));
            }
        });
        Ok(true)
    }

    /// Linux's `nvme_fw_act_work` after a Firmware Activation Starting
    /// notice (NVMe Base 2.0 §5.12, §3.1.4.6): I/O queues quiesced, CSTS.PP
    /// polled every 100 ms until clear - or, past MTFA (the admin timeout
    /// without one), the controller is reset; then I/O resumes and the
    /// Firmware Slot Information log is read (RAE clear: that unmasks the
    /// notice). Returns false when the controller was reset or is gone
    /// (the AER listener stops, as after any reset).
    pub async fn firmware_activation(&self) -> bool {
        let h = self.host();
        let f = self.function();
        let t0 = h.now();
        let mtfa = self.info().mtfa;
        let limit_ns = if mtfa > 0 { u64::from(mtfa) * 100_000_000 } else { self.0.borrow().opts.admin_timeout_ns };
        self.inner().quiesced = true;
        h.log(format!("nvme fn{f}: firmware activation starting: I/O queues quiesced, polling CSTS.PP (MTFA {} ms)", limit_ns / 1_000_000));
        let mut polls = 0u32;
        let mut paused_seen = false;
        let timed_out = loop {
            let Some(csts) = self.read32(reg::CSTS).await.filter(|&v| v != u32::MAX) else {
                break true;
            };
            if csts & reg::CSTS_PP == 0 {
                break false;
            }
            paused_seen = true;
            if h.ns(h.now() - t0) > limit_ns {
                break true;
            }
            polls += 1;
            h.sleep(h.cycles(100_000_000)).await;
        };
        self.inner().quiesced = false;
        let waiters = std::mem::take(&mut self.inner().reset_waiters);
        for w in waiters {
            w.wake();
        }
        let took = h.ns(h.now() - t0);
        if timed_out {
            h.log(format!("nvme fn{f}: firmware activation timeout after {} ms, resetting controller", took / 1_000_000));
            if let Err(e) = self.reset().await {
                h.log(format!("nvme fn{f}: reset failed: {e}"));
                self.inner().dead = Some(e);
            }
            return false;
        }
        {
            let mut c = self.inner();
            c.stats.fw_activations += 1;
            c.stats.fw_activation_ns = c.stats.fw_activation_ns.max(took);
        }
        h.log(format!(
            "nvme fn{f}: firmware activation done after {} ms ({polls} CSTS.PP poll(s), processing paused {}); I/O queues resumed",
            took / 1_000_000,
            if paused_seen { "seen" } else { "not seen" }
        ));
        // Firmware Slot Information (LID 03h, NUMDL 127: 512 bytes), RAE clear.
        let buf = DataBuf::alloc(&h, 512, 0);
        let r = self.data_command(0, Sqe::new(opc::GET_LOG_PAGE).nsid(0xffff_ffff).cdw(10, (127 << 16) | 0x03), &buf).await;
        h.free_page(buf.pages[0]);
        if let Err(e) = r {
            h.log(format!("nvme fn{f}: Firmware Slot Information log after an activation: {e}"));
        }
        true
    }

    /// Get Log Page 04h (Changed Namespace List), RAE clear: the NSIDs
    /// listed (0xffffffff alone: more than fit).
    async fn changed_namespaces(&self) -> Result<Vec<u32>, CmdError> {
        let h = self.host();
        let buf = DataBuf::alloc(&h, 4096, 0);
        // NUMDL = 1023 dwords (0's based), LID 04h.
        let r = self.data_command(0, Sqe::new(opc::GET_LOG_PAGE).nsid(0xffff_ffff).cdw(10, (1023 << 16) | 0x04), &buf).await;
        let mut out = vec![0u8; 4096];
        buf.read(&h, &mut out);
        h.free_page(buf.pages[0]);
        r.map(|_| out.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).take_while(|&n| n != 0).collect())
    }

    /// Rescans the active namespaces (as `nvme ns-rescan`: Identify
    /// Active Namespace List, then each namespace).
    pub async fn rescan_namespaces(&self) -> Result<(), String> {
        self.scan_namespaces().await
    }

    async fn scan_namespaces(&self) -> Result<(), String> {
        let f = self.function();
        let list = self.identify(2, 0).await.map_err(|e| format!("function {f}: Identify NS list failed: {e}"))?;
        let mut nss = Vec::new();
        for chunk in list.chunks(4) {
            let nsid = u32::from_le_bytes(chunk.try_into().unwrap());
            if nsid == 0 {
                break;
            }
            let d = self.identify(0, nsid).await.map_err(|e| format!("function {f}: Identify NS {nsid} failed: {e}"))?;
            let nsze = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let flbas = d[26] & 0xf;
            let lbaf = u32::from_le_bytes(d[128 + 4 * flbas as usize..132 + 4 * flbas as usize].try_into().unwrap());
            let lbads = (lbaf >> 16) & 0xff;
            if !(9..=16).contains(&lbads) {
                return Err(format!("function {f}: namespace {nsid} has LBA data size 2^{lbads}"));
            }
            nss.push(Namespace { nsid, blocks: nsze, block_size: 1 << lbads });
        }
        self.inner().namespaces = nss;
        Ok(())
    }

    /// Watchdog: times out commands (Abort, then controller reset, like
    /// nvme_timeout()) and notices a fatal controller status.
    fn spawn_watchdog(&self) {
        let ctrl = self.clone();
        let h = self.host();
        h.clone().spawn(async move {
            let tick = h.cycles(1_000_000);
            loop {
                h.sleep(tick).await;
                if ctrl.0.borrow().closed {
                    return;
                }
                // A firmware activation bounds itself (MTFA).
                if ctrl.0.borrow().resetting || ctrl.0.borrow().quiesced {
                    continue;
                }
                let now = h.now();
                let mut abort = Vec::new();
                let mut reset = None;
                {
                    let mut c = ctrl.inner();
                    let io_to = h.cycles(c.opts.io_timeout_ns);
                    for q in c.queues.iter_mut().flatten() {
                        for (cid, s) in q.slots.iter_mut().enumerate() {
                            let Some(s) = s else { continue };
                            if s.result.is_some() || now < s.deadline {
                                continue;
                            }
                            if q.qid != 0 && !s.aborted {
                                s.aborted = true;
                                s.deadline = now + io_to;
                                abort.push((q.qid, cid as u16));
                            } else {
                                reset = Some(format!("command {cid} on queue {} timed out{}", q.qid, if s.aborted { " after abort" } else { "" }));
                            }
                        }
                    }
                    c.stats.timeouts += abort.len() as u64 + u64::from(reset.is_some());
                }
                for (qid, cid) in abort {
                    let f = ctrl.function();
                    h.log(format!("nvme fn{f}: I/O {cid} on queue {qid} timed out, aborting"));
                    ctrl.0.borrow_mut().stats.aborts_sent += 1;
                    let c2 = ctrl.clone();
                    h.spawn(async move {
                        let _ = c2.submit(0, Sqe::new(opc::ABORT).cdw(10, u32::from(qid) | (u32::from(cid) << 16))).await;
                    });
                }
                if let Some(why) = reset {
                    let f = ctrl.function();
                    h.log(format!("nvme fn{f}: {why}, resetting controller"));
                    if let Err(e) = ctrl.reset().await {
                        h.log(format!("nvme fn{f}: reset failed: {e}"));
                        ctrl.inner().dead = Some(e);
                        return;
                    }
                    continue;
                }
                if let Some(csts) = ctrl.read32(reg::CSTS).await {
                    if csts & reg::CSTS_CFS != 0 && !ctrl.0.borrow().resetting {
                        let f = ctrl.function();
                        h.log(format!("nvme fn{f}: controller fatal status, resetting"));
                        if let Err(e) = ctrl.reset().await {
                            ctrl.inner().dead = Some(e);
                            return;
                        }
                    }
                }
            }
        });
    }

    /// While reset `self`'s current reset runs, fails any admin command
    /// of it past its deadline with `Timeout` (the watchdog is the task
    /// running the reset, so it cannot): Linux's `nvme_timeout` on a
    /// controller that is resetting or connecting disables it and the
    /// reset work gives up (`nvme_remove_dead_ctrl`). Without this, a
    /// device that never answers the reset's Set Features or queue
    /// creation (its admin SQ unreadable, say) hung the driver for good.
    fn spawn_reset_timer(&self) {
        let ctrl = self.clone();
        let h = self.host();
        let gen = self.0.borrow().stats.resets;
        h.clone().spawn(async move {
            let tick = h.cycles(1_000_000);
            loop {
                h.sleep(tick).await;
                let now = h.now();
                let mut wake = Vec::new();
                {
                    let mut c = ctrl.inner();
                    if !c.resetting || c.closed || c.stats.resets != gen {
                        return;
                    }
                    let Some(Some(q)) = c.queues.get_mut(0) else { continue };
                    for s in q.slots.iter_mut().flatten() {
                        if s.result.is_none() && now >= s.deadline {
                            s.result = Some(Err(CmdError::Timeout));
                            wake.extend(s.waker.take());
                        }
                    }
                    c.stats.timeouts += wake.len() as u64;
                }
                if !wake.is_empty() {
                    h.log(format!("nvme fn{}: admin command timed out during reset", ctrl.function()));
                }
                for w in wake {
                    w.wake();
                }
            }
        });
    }

    /// Controller reset (nvme_reset_work): fail outstanding commands with
    /// `Reset`, disable, re-enable, rebuild the I/O queues.
    pub async fn reset(&self) -> Result<(), String> {
        let h = self.host();
        let f = self.function();
        {
            let mut c = self.inner();
            c.resetting = true;
            c.stats.resets += 1;
            for q in c.queues.iter_mut().flatten() {
                q.epoch += 1;
                for s in q.slots.iter_mut().flatten() {
                    if let Some(w) = s.waker.take() {
                        w.wake();
                    }
                }
                for w in q.space_waiters.drain(..) {
                    w.wake();
                }
            }
        }
        self.spawn_reset_timer();
        let r = async {
            self.disable().await?;
            let count = self.0.borrow().queues.len() - 1;
            let depth = {
                let c = self.0.borrow();
                c.queues.iter().skip(1).flatten().next().map_or(c.opts.io_queue_depth, |q| q.depth)
            };
            self.enable_admin().await?;
            self.inner().queues.truncate(1);
            self.inner().queues.resize_with(count + 1, || None);
            let n = (count.max(1) - 1) as u32;
            self.submit(0, Sqe::new(opc::SET_FEATURES).cdw(10, 0x07).cdw(11, (n << 16) | n))
                .await
                .map_err(|e| format!("Set Features after reset: {e}"))?;
            for qid in 1..=count as u16 {
                self.create_queue_pair(qid, depth).await.map_err(|e| format!("recreating queue {qid}: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let res = r.await;
        self.inner().resetting = false;
        let waiters = std::mem::take(&mut self.inner().reset_waiters);
        for w in waiters {
            w.wake();
        }
        if res.is_ok() {
            h.log(format!("nvme fn{f}: controller reset complete"));
        }
        res
    }

    /// Forgets the controller without touching it (a driver that crashed
    /// or was unbound): its tasks stop, every outstanding command fails
    /// with `Reset` on the host side, nothing is sent any more. What the
    /// device still does with those commands is its business.
    pub fn abandon(&self) {
        let mut wake = Vec::new();
        {
            let mut c = self.inner();
            c.closed = true;
            c.dead.get_or_insert_with(|| "abandoned by the host".into());
            for q in c.queues.iter_mut().flatten() {
                q.epoch += 1;
                wake.extend(q.slots.iter_mut().flatten().filter_map(|s| s.waker.take()));
                wake.extend(q.space_waiters.drain(..));
            }
            wake.append(&mut c.reset_waiters);
        }
        for w in wake {
            w.wake();
        }
    }

    /// Forgets I/O queue pair `qid` (after deleting it by hand): its
    /// outstanding commands fail with `Reset` on the host side and its
    /// reaper stops; `create_queue_pair` may build it again.
    pub fn forget_queue(&self, qid: u16) {
        let mut wake = Vec::new();
        {
            let mut c = self.inner();
            if let Some(Some(q)) = c.queues.get_mut(usize::from(qid)) {
                q.epoch += 1;
                wake.extend(q.slots.iter_mut().flatten().filter_map(|s| s.waker.take()));
                wake.extend(q.space_waiters.drain(..));
                q.free_cids.clear();
            }
        }
        for w in wake {
            w.wake();
        }
    }

    /// The PCI function this controller sits on.
    pub fn pci(&self) -> PciFunction {
        self.0.borrow().pci.clone()
    }

    /// Orderly shutdown (CC.SHN = normal, wait CSTS.SHST = complete).
    pub async fn shutdown(&self) -> Result<(), String> {
        let cc = self.read32(reg::CC).await.unwrap_or(0);
        self.write32(reg::CC, (cc & !(3 << 14)) | (1 << 14));
        let r = self.wait_csts("shut down", |s| s & reg::CSTS_SHST_MASK == reg::CSTS_SHST_DONE).await.map(drop);
        self.inner().closed = true;
        r
    }
}

/// Fills the data pointer with PRPs (NVMe Base 2.0 §4.3.1): PRP1 may carry
/// an offset; a PRP list (chained through its last entry when longer than a
/// page) describes the rest when the transfer spans more than two pages.
pub fn build_prps(h: &Host, function: u16, sqe: Sqe, buf: &DataBuf) -> (Sqe, Vec<u64>) {
    let first = buf.addr(0);
    let in_first = (4096 - first % 4096) as u32;
    if buf.len <= in_first {
        return (sqe.prp(first, 0), Vec::new());
    }
    // Page addresses after the first.
    let mut rest = Vec::new();
    let mut off = in_first;
    while off < buf.len {
        rest.push(buf.addr(off));
        off += 4096;
    }
    if rest.len() == 1 {
        return (sqe.prp(first, rest[0]), Vec::new());
    }
    let mut lists = Vec::new();
    let mut i = 0;
    let mut prev: Option<u64> = None;
    while i < rest.len() {
        let page = h.alloc_pages(1);
        h.with_mem(|m| m.grant(function, page, 4096));
        if let Some(p) = prev {
            // The previous list's last entry points to this one.
            h.write(p + 511 * 8, &page.to_le_bytes());
        }
        let remaining = rest.len() - i;
        let n = if remaining > 512 { 511 } else { remaining };
        for k in 0..n {
            h.write(page + 8 * k as u64, &rest[i + k].to_le_bytes());
        }
        i += n;
        prev = Some(page);
        lists.push(page);
    }
    (sqe.prp(first, lists[0]), lists)
}

/// SGL descriptor: (address, length, type byte) (NVMe Base 2.0 §4.3.2).
fn sgl_desc(addr: u64, len: u32, kind: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[15] = kind << 4;
    d
}

pub const SGL_DATA_BLOCK: u8 = 0x0;
pub const SGL_SEGMENT: u8 = 0x2;
pub const SGL_LAST_SEGMENT: u8 = 0x3;

/// Fills the data pointer with an SGL: one Data Block descriptor, or a Last
/// Segment descriptor pointing at a list of Data Block descriptors.
pub fn build_sgl(h: &Host, function: u16, sqe: Sqe, buf: &DataBuf) -> (Sqe, Vec<u64>) {
    let segs = buf.segments();
    if segs.len() == 1 {
        return (sqe.sgl(sgl_desc(segs[0].0, segs[0].1, SGL_DATA_BLOCK)), Vec::new());
    }
    let page = h.alloc_pages(1);
    h.with_mem(|m| m.grant(function, page, 4096));
    for (i, &(a, l)) in segs.iter().enumerate().take(256) {
        h.write(page + 16 * i as u64, &sgl_desc(a, l, SGL_DATA_BLOCK));
    }
    (sqe.sgl(sgl_desc(page, 16 * segs.len() as u32, SGL_LAST_SEGMENT)), vec![page])
}
