//! A pre-OS boot host (scenario `[preos]`): the NVMe driver of a UEFI
//! firmware or an option ROM, reading a boot disk right after power-on.
//!
//! It is shaped like EDK2's `NvmExpressDxe`: MSI-X stays disabled and
//! pin interrupts are masked (INTMS), completions are polled in host
//! memory; one small admin queue and one small I/O queue (created with
//! interrupts off); PRPs only; one command outstanding at a time, each
//! bounded by a timeout (UEFI: 5 s). It enables the controller and waits
//! for CSTS.RDY up to CAP.TO, identifies the controller and the boot
//! namespace, reads LBA 0 (the partition table), then a kernel-sized
//! range from LBA 0 in large reads, checks the data, and shuts the
//! controller down as at ExitBootServices. It knows nothing of the
//! firmware: only the specification (NVMe Base 2.0 §3.5.1, §4) and what
//! a boot loader needs.

use super::nvme::{build_prps, opc, reg, Cqe, DataBuf, Sqe};
use super::pci::{self, PciFunction};
use super::workload::check_sector;
use super::Host;
use crate::net::nvmf_target::store::{FILL_GEN, FILL_TAG};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;

/// What the data read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// The target model namespace's fill pattern.
    Pattern,
    Zero,
    None,
}

/// One boot driver instance.
#[derive(Clone, Debug)]
pub struct BootSpec {
    pub function: u16,
    pub nsid: u32,
    pub read: u64,
    pub bs: u32,
    pub verify: Verify,
    pub admin_depth: u16,
    pub io_depth: u16,
    pub timeout_ns: u64,
    pub max_ready_ns: Option<u64>,
}

impl BootSpec {
    pub fn from_cfg(p: &dpu_targets::PreOsCfg, function: u16) -> BootSpec {
        BootSpec {
            function,
            nsid: p.nsid,
            read: p.read_bytes(),
            bs: p.bs_bytes(),
            verify: match p.verify.as_str() {
                "pattern" => Verify::Pattern,
                "zero" => Verify::Zero,
                _ => Verify::None,
            },
            admin_depth: p.admin_queue_depth,
            io_depth: p.io_queue_depth,
            timeout_ns: p.command_timeout_ns(),
            max_ready_ns: p.max_ready_ns(),
        }
    }
}

/// What one boot driver saw (times in microseconds from power-on).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BootReport {
    pub function: u16,
    /// The function answered configuration requests.
    pub visible_us: f64,
    /// CC.EN = 1 written.
    pub enabled_us: f64,
    /// CSTS.RDY = 1 seen.
    pub ready_us: f64,
    /// CAP.TO (milliseconds).
    pub cap_to_ms: u64,
    pub model: String,
    pub blocks: u64,
    pub block_size: u32,
    /// LBA 0 read and checked.
    pub lba0_us: f64,
    /// The whole range read and checked.
    pub done_us: f64,
    pub bytes_read: u64,
    /// Reading rate of the range (from LBA 0's completion).
    pub mb_per_s: f64,
    pub commands: u64,
    /// Commands sent again after a status with DNR clear.
    pub retries: u64,
    /// Slowest command (microseconds).
    pub max_command_us: f64,
    pub verify_checked: u64,
    pub verify_errors: u64,
    /// Why the boot failed, if it did.
    pub error: Option<String>,
    pub first_errors: Vec<String>,
}

impl BootReport {
    pub fn text(&self) -> String {
        let mut o = format!(
            "pre-OS boot fn{} ({}, boot namespace {} blocks of {} B)\n",
            self.function,
            if self.model.is_empty() { "no model" } else { self.model.trim() },
            self.blocks,
            self.block_size
        );
        o.push_str(&format!(
            "  controller: visible at {:.1} us, CC.EN at {:.1} us, ready at {:.1} us ({:.1} us after CC.EN; CAP.TO {} ms)\n",
            self.visible_us,
            self.enabled_us,
            self.ready_us,
            self.ready_us - self.enabled_us,
            self.cap_to_ms
        ));
        o.push_str(&format!(
            "  reads     : LBA 0 at {:.1} us; {} KiB by {:.1} us ({:.1} MB/s); {} commands, {} retries, slowest {:.1} us\n",
            self.lba0_us,
            self.bytes_read >> 10,
            self.done_us,
            self.mb_per_s,
            self.commands,
            self.retries,
            self.max_command_us
        ));
        o.push_str(&format!("  verify    : {} blocks checked, {} errors\n", self.verify_checked, self.verify_errors));
        if let Some(e) = &self.error {
            o.push_str(&format!("  ! boot failed: {e}\n"));
        }
        for e in &self.first_errors {
            o.push_str(&format!("    ! {e}\n"));
        }
        o
    }
}

/// A polled queue pair in host memory.
struct Polled {
    qid: u16,
    depth: u16,
    sq: u64,
    cq: u64,
    tail: u16,
    head: u16,
    phase: bool,
    cid: u16,
}

struct Boot {
    h: Host,
    pci: PciFunction,
    spec: BootSpec,
    dstrd: u32,
    timeout_cycles: u64,
    rep: BootReport,
}

fn us(h: &Host) -> f64 {
    h.ns(h.now()) as f64 / 1000.0
}

impl Boot {
    fn bar(&self) -> u64 {
        self.pci.bar0
    }

    async fn read32(&self, off: u64) -> Result<u32, String> {
        self.h.mmio_read(self.bar() + off, 4).await.map(|v| v as u32).ok_or(format!("register {off:#x} unreadable"))
    }

    fn write32(&self, off: u64, v: u32) {
        self.h.mmio_write(self.bar() + off, 4, u64::from(v));
    }

    /// Polls CSTS until `pred` holds, at most `limit_ns` (CAP.TO, or less;
    /// checks CFS).
    async fn wait_csts(&self, what: &str, limit_ns: u64, pred: impl Fn(u32) -> bool) -> Result<(), String> {
        let deadline = self.h.now() + self.h.cycles(limit_ns);
        loop {
            let s = self.read32(reg::CSTS).await?;
            if s == u32::MAX {
                return Err("CSTS reads all ones".into());
            }
            if pred(s) {
                return Ok(());
            }
            if s & reg::CSTS_CFS != 0 {
                return Err(format!("controller fatal status (CSTS {s:#x}) while waiting to {what}"));
            }
            if self.h.now() > deadline {
                return Err(format!("not {what} within {:.3} ms (CAP.TO is {} ms; CSTS {s:#x})", limit_ns as f64 / 1e6, self.rep.cap_to_ms));
            }
            self.h.sleep(self.h.cycles(10_000)).await;
        }
    }

    fn queue(&self, qid: u16, depth: u16) -> Polled {
        let f = self.spec.function;
        let sq = self.h.alloc_pages((u64::from(depth) * 64).div_ceil(4096));
        let cq = self.h.alloc_pages((u64::from(depth) * 16).div_ceil(4096));
        self.h.with_mem(|m| {
            m.grant(f, sq, (u64::from(depth) * 64).div_ceil(4096) * 4096);
            m.grant(f, cq, (u64::from(depth) * 16).div_ceil(4096) * 4096);
        });
        Polled { qid, depth, sq, cq, tail: 0, head: 0, phase: true, cid: 0 }
    }

    fn doorbell(&self, index: u32, v: u16) {
        self.write32(0x1000 + u64::from(index) * (4 << self.dstrd), u32::from(v));
    }

    /// Submits `sqe` on `q` and polls its completion (one at a time).
    async fn command(&mut self, q: &mut Polled, mut sqe: Sqe) -> Result<Cqe, String> {
        q.cid = q.cid.wrapping_add(1);
        sqe.set_cid(q.cid);
        self.h.write(q.sq + 64 * u64::from(q.tail), &sqe.bytes());
        q.tail = (q.tail + 1) % q.depth;
        self.doorbell(2 * u32::from(q.qid), q.tail);
        self.rep.commands += 1;
        let t0 = self.h.now();
        loop {
            let mut b = [0u8; 16];
            self.h.read(q.cq + 16 * u64::from(q.head), &mut b);
            let d3 = u32::from_le_bytes(b[12..16].try_into().unwrap());
            if (d3 >> 16) & 1 == u32::from(q.phase) {
                q.head = (q.head + 1) % q.depth;
                if q.head == 0 {
                    q.phase = !q.phase;
                }
                self.doorbell(2 * u32::from(q.qid) + 1, q.head);
                let lat = self.h.ns(self.h.now() - t0) as f64 / 1000.0;
                self.rep.max_command_us = self.rep.max_command_us.max(lat);
                let cqe = Cqe {
                    dw0: u32::from_le_bytes(b[0..4].try_into().unwrap()),
                    dw1: u32::from_le_bytes(b[4..8].try_into().unwrap()),
                    sq_head: u16::from_le_bytes([b[8], b[9]]),
                    sq_id: u16::from_le_bytes([b[10], b[11]]),
                    cid: d3 as u16,
                    status: (d3 >> 17) as u16,
                };
                if cqe.cid != q.cid {
                    return Err(format!("completion for command {} while waiting for {} on queue {}", cqe.cid, q.cid, q.qid));
                }
                return Ok(cqe);
            }
            if self.h.now() - t0 > self.timeout_cycles {
                return Err(format!("opcode {:#04x} on queue {} not completed within {} ms", sqe.opcode(), q.qid, self.spec.timeout_ns / 1_000_000));
            }
            // Polling host memory costs the CPU nothing on the link.
            self.h.sleep(self.h.cycles(1_000)).await;
        }
    }

    /// A command that must succeed (an error with DNR clear is sent again,
    /// up to 3 times, 100 us apart).
    async fn must(&mut self, q: &mut Polled, sqe: Sqe, what: &str) -> Result<Cqe, String> {
        let mut attempt = 0;
        loop {
            let c = self.command(q, sqe).await?;
            if c.ok() {
                return Ok(c);
            }
            if c.dnr() || attempt == 3 {
                return Err(format!("{what}: status SCT {:#x} SC {:#04x}{}", c.sct(), c.sc(), if c.dnr() { " DNR" } else { "" }));
            }
            attempt += 1;
            self.rep.retries += 1;
            self.h.sleep(self.h.cycles(100_000)).await;
        }
    }

    async fn run(&mut self) -> Result<(), String> {
        let h = self.h.clone();
        let f = self.spec.function;
        let cap = h.mmio_read(self.bar() + reg::CAP, 8).await.ok_or("CAP unreadable")?;
        if (cap >> 37) & 1 == 0 {
            return Err("the controller does not support the NVM command set".into());
        }
        if (cap >> 48) & 0xf != 0 {
            return Err("CAP.MPSMIN above 4 KiB".into());
        }
        let mqes = (cap & 0xffff) as u16 + 1;
        self.dstrd = ((cap >> 32) & 0xf) as u32;
        let cap_to_ns = ((cap >> 24) & 0xff).max(1) * 500_000_000;
        self.rep.cap_to_ms = cap_to_ns / 1_000_000;
        // MSI-X stays off; pin interrupts are masked: completions are polled.
        self.write32(reg::INTMS, u32::MAX);
        let cc = self.read32(reg::CC).await?;
        if cc & 1 != 0 {
            self.write32(reg::CC, cc & !1);
            self.wait_csts("disabled", cap_to_ns, |s| s & reg::CSTS_RDY == 0).await?;
        }
        let mut admin = self.queue(0, self.spec.admin_depth);
        let d = u32::from(admin.depth - 1);
        self.write32(reg::AQA, (d << 16) | d);
        h.mmio_write(self.bar() + reg::ASQ, 8, admin.sq);
        h.mmio_write(self.bar() + reg::ACQ, 8, admin.cq);
        self.write32(reg::CC, (4 << 20) | (6 << 16) | 1);
        self.rep.enabled_us = us(&h);
        // A driver waits up to CAP.TO; past the scenario's `max_ready`
        // the boot has failed anyway, so the wait stops there.
        let ready_wait = self.spec.max_ready_ns.map_or(cap_to_ns, |m| m.min(cap_to_ns));
        self.wait_csts("ready", ready_wait, |s| s & reg::CSTS_RDY != 0).await?;
        self.rep.ready_us = us(&h);
        h.log(format!("pre-OS fn{f}: controller ready {:.1} us after CC.EN", self.rep.ready_us - self.rep.enabled_us));
        // Identify Controller, then the boot namespace.
        let id = DataBuf::alloc(&h, 4096, 0);
        id.grant(&h, f);
        self.must(&mut admin, Sqe::new(opc::IDENTIFY).cdw(10, 1).prp(id.addr(0), 0), "Identify Controller").await?;
        let mut d = vec![0u8; 4096];
        id.read(&h, &mut d);
        self.rep.model = String::from_utf8_lossy(&d[24..64]).trim().to_string();
        let mdts = d[77];
        let max_transfer = if mdts == 0 { u64::MAX } else { 4096u64 << mdts };
        if u64::from(self.spec.bs) > max_transfer {
            return Err(format!("reads of {} B are above MDTS ({max_transfer} B)", self.spec.bs));
        }
        self.must(&mut admin, Sqe::new(opc::IDENTIFY).nsid(self.spec.nsid).cdw(10, 0).prp(id.addr(0), 0), "Identify Namespace").await?;
        id.read(&h, &mut d);
        let nsze = u64::from_le_bytes(d[0..8].try_into().unwrap());
        let flbas = usize::from(d[26] & 0xf);
        let lbads = (u32::from_le_bytes(d[128 + 4 * flbas..132 + 4 * flbas].try_into().unwrap()) >> 16) & 0xff;
        if nsze == 0 || !(9..=12).contains(&lbads) {
            return Err(format!("namespace {} is inactive or has 2^{lbads}-byte blocks", self.spec.nsid));
        }
        let bsz = 1u32 << lbads;
        self.rep.blocks = nsze;
        self.rep.block_size = bsz;
        if self.spec.read > nsze * u64::from(bsz) || self.spec.bs % bsz != 0 {
            return Err(format!("the namespace ({nsze} x {bsz} B) cannot hold the boot range"));
        }
        // One I/O queue pair, interrupts off.
        self.must(&mut admin, Sqe::new(opc::SET_FEATURES).cdw(10, 0x07).cdw(11, 0), "Set Features (Number of Queues)").await?;
        let depth = self.spec.io_depth.min(mqes);
        let mut io = self.queue(1, depth);
        let q = u32::from(depth - 1);
        self.must(&mut admin, Sqe::new(opc::CREATE_CQ).prp(io.cq, 0).cdw(10, (q << 16) | 1).cdw(11, 1), "Create I/O CQ").await?;
        self.must(&mut admin, Sqe::new(opc::CREATE_SQ).prp(io.sq, 0).cdw(10, (q << 16) | 1).cdw(11, (1 << 16) | 1), "Create I/O SQ").await?;
        // LBA 0, then the range in `bs` reads.
        let buf = DataBuf::alloc(&h, self.spec.bs, 0);
        buf.grant(&h, f);
        self.read_blocks(&mut io, &buf, 0, 1, bsz).await?;
        self.rep.lba0_us = us(&h);
        h.log(format!("pre-OS fn{f}: LBA 0 read at {:.1} us", self.rep.lba0_us));
        let per = u64::from(self.spec.bs / bsz);
        let mut lba = 0u64;
        while lba * u64::from(bsz) < self.spec.read {
            self.read_blocks(&mut io, &buf, lba, per as u32, bsz).await?;
            self.rep.bytes_read += u64::from(self.spec.bs);
            lba += per;
        }
        self.rep.done_us = us(&h);
        let secs = (self.rep.done_us - self.rep.lba0_us) / 1e6;
        if secs > 0.0 {
            self.rep.mb_per_s = self.rep.bytes_read as f64 / secs / 1e6;
        }
        h.log(format!("pre-OS fn{f}: {} MiB read by {:.1} us", self.rep.bytes_read >> 20, self.rep.done_us));
        // ExitBootServices: shut the controller down for the OS.
        let cc = self.read32(reg::CC).await?;
        self.write32(reg::CC, (cc & !(3 << 14)) | (1 << 14));
        self.wait_csts("shut down", cap_to_ns, |s| s & reg::CSTS_SHST_MASK == reg::CSTS_SHST_DONE).await?;
        Ok(())
    }

    async fn read_blocks(&mut self, io: &mut Polled, buf: &DataBuf, lba: u64, n: u32, bsz: u32) -> Result<(), String> {
        let len = n * bsz;
        let b = DataBuf { pages: buf.pages.clone(), offset: 0, len };
        let sqe = Sqe::new(opc::READ).nsid(self.spec.nsid).cdw(10, lba as u32).cdw(11, (lba >> 32) as u32).cdw(12, n - 1);
        let (sqe, lists) = build_prps(&self.h, self.spec.function, sqe, &b);
        let r = self.must(io, sqe, &format!("read of LBA {lba}")).await;
        for p in lists {
            self.h.with_mem(|m| m.revoke(self.spec.function, p, 4096));
            self.h.free_page(p);
        }
        r?;
        if self.spec.verify == Verify::None {
            return Ok(());
        }
        let mut data = vec![0u8; len as usize];
        b.read(&self.h, &mut data);
        for (i, blk) in data.chunks(bsz as usize).enumerate() {
            self.rep.verify_checked += 1;
            let l = lba + i as u64;
            let r = match self.spec.verify {
                Verify::Pattern => check_sector(blk, l, FILL_GEN, FILL_TAG),
                _ => check_sector(blk, l, 0, 0),
            };
            if let Err(e) = r {
                self.rep.verify_errors += 1;
                if self.rep.first_errors.len() < 8 {
                    self.rep.first_errors.push(format!("fn{} ns{}: {e}", self.spec.function, self.spec.nsid));
                }
            }
        }
        Ok(())
    }
}

/// Boots the scenario's `[preos]` functions from power-on, all at once
/// (VFs after the SR-IOV settle time); returns their reports.
pub async fn run_all(h: &Host, sc: &dpu_targets::Scenario) -> Result<Vec<BootReport>, String> {
    let Some(p) = &sc.preos else { return Ok(Vec::new()) };
    // The measurement window is the boot, from power-on: the scenario's
    // faults count from here.
    h.mark_window(true);
    let out = Rc::new(RefCell::new(Vec::new()));
    let pf = pci::probe_pf(h).await?;
    let visible = us(h);
    let mut started = 0;
    let spawn = |pf: PciFunction, f: u16, visible: f64| {
        let (h2, o, spec) = (h.clone(), out.clone(), BootSpec::from_cfg(p, f));
        h.spawn(async move {
            let mut b = Boot {
                h: h2.clone(),
                pci: pf,
                timeout_cycles: h2.cycles(spec.timeout_ns),
                spec,
                dstrd: 0,
                rep: BootReport { function: f, visible_us: visible, ..Default::default() },
            };
            if let Err(e) = b.run().await {
                h2.log(format!("pre-OS fn{f}: boot failed: {e}"));
                b.rep.error = Some(e);
            }
            o.borrow_mut().push(b.rep);
        });
    };
    if p.functions.contains(&0) {
        spawn(pf, 0, visible);
        started += 1;
    }
    if p.functions.iter().any(|&f| f > 0) {
        let vfs = pci::enable_vfs(h, sc.host.vfs, sc.host.vf_settle_ms).await?;
        let visible = us(h);
        for &f in p.functions.iter().filter(|&&f| f > 0) {
            let vf = vfs.get(usize::from(f) - 1).cloned().ok_or(format!("VF {f} was not enumerated"))?;
            spawn(vf, f, visible);
            started += 1;
        }
    }
    while out.borrow().len() < started {
        h.sleep(h.cycles(100_000)).await;
    }
    h.mark_window(false);
    let mut r = std::mem::take(&mut *out.borrow_mut());
    r.sort_by_key(|b| b.function);
    Ok(r)
}

/// What `[preos]` expects: every boot read its range, verified, from a
/// controller ready within CAP.TO (and `max_ready`, if given).
pub fn problems(sc: &dpu_targets::Scenario, reports: &[BootReport]) -> Vec<String> {
    let Some(p) = &sc.preos else { return Vec::new() };
    let mut out = Vec::new();
    for r in reports {
        let f = r.function;
        if let Some(e) = &r.error {
            out.push(format!("pre-OS boot fn{f} failed: {e}"));
            continue;
        }
        if r.verify_errors > 0 {
            out.push(format!("pre-OS boot fn{f}: {} blocks read wrong (first: {})", r.verify_errors, r.first_errors.first().map_or("", String::as_str)));
        }
        let ready = r.ready_us - r.enabled_us;
        if let Some(max) = p.max_ready_ns() {
            if ready * 1000.0 > max as f64 {
                out.push(format!("pre-OS boot fn{f}: ready {ready:.1} us after CC.EN (at most {} us expected)", max / 1000));
            }
        }
        if r.bytes_read < p.read_bytes() {
            out.push(format!("pre-OS boot fn{f}: read {} of {} bytes", r.bytes_read, p.read_bytes()));
        }
    }
    if reports.len() < p.functions.len() {
        out.push(format!("{} of {} pre-OS boots did not report", p.functions.len() - reports.len(), p.functions.len()));
    }
    out
}
