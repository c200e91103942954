//! Brings up the local SSDs at boot (on [`super::SSD_HART`]) and checks
//! their namespaces against the configuration: controller reset and
//! enable with the admin queue (NVMe Base 2.0 §3.5.1, waiting CSTS.RDY
//! for at most CAP.TO), Identify Controller (MDTS) and Namespace (size,
//! LBA format: NVM Command Set 1.0 §4.1.5.1), Set Features Number of
//! Queues, then a polled I/O queue pair per data-plane core, created in
//! batches on the admin queue. Every step has a deadline; an SSD that
//! misses one is published failed and its namespaces fail their I/O.

use super::{QP_BYTES, IO_ENTRIES};
use crate::bootcfg::{self, Backend};
use dpu_hal::memory_map::{SSD_SLOTS, TIMEBASE_HZ};
use dpu_hal::regs::ssd as r;
use dpu_hal::{clint, csr, mmio, HartId};
use dpu_nvme::host::{self, Completion, QueuePair};
use dpu_nvme::{Sqe, Status};

/// Admin queue entries (both queues).
const ADMIN_ENTRIES: u16 = 32;
/// How long one admin command may take: 100 ms.
const ADMIN_TIMEOUT: u64 = TIMEBASE_HZ / 10;
/// Poll interval while waiting for the SSD: 5 us.
const POLL_TICKS: u64 = TIMEBASE_HZ / 200_000;

/// Why an SSD did not come up.
#[derive(Clone, Copy, Debug, defmt::Format)]
enum Error {
    /// No SSD answers in the slot (reads return all ones).
    Absent,
    /// CSTS.RDY did not follow CC.EN within CAP.TO.
    NotReady,
    /// CSTS.CFS: the controller reported a fatal status.
    Fatal,
    /// An admin command got no completion in time.
    Timeout(u8),
    /// An admin command failed: opcode, status field.
    Failed(u8, u16),
    /// No DDR for the queues.
    NoMemory,
}

/// The admin queue pair of one SSD.
struct Admin {
    regs: usize,
    sq: usize,
    cq: usize,
    qp: QueuePair,
    cid: u16,
}

/// Sleeps until `deadline` (mtime) or a short while, whichever is first.
fn nap(deadline: u64) {
    clint::set_timer(super::SSD_HART, (csr::time() + POLL_TICKS).min(deadline));
    csr::wfi();
}

impl Admin {
    /// Sends `cmds` (at most the queue's room) at once and waits for all
    /// their completions; the first failure is the error. `out` gets the
    /// completions in command order.
    fn run(&mut self, cmds: &mut [Sqe], out: &mut [Completion]) -> Result<(), Error> {
        let base = self.cid;
        for c in cmds.iter_mut() {
            let Some(slot) = self.qp.push() else { return Err(Error::Timeout(c.opcode())) };
            c.set_dw(0, (c.dw(0) & 0xffff) | u32::from(self.cid) << 16);
            self.cid = self.cid.wrapping_add(1);
            dpu_hal::mem::write(self.sq + usize::from(slot) * 64, &c.0);
        }
        mmio::write32(self.regs + r::sq_tail(0) as usize, u32::from(self.qp.sq_tail));
        let deadline = csr::time() + ADMIN_TIMEOUT;
        let mut got = 0;
        while got < cmds.len() {
            let mut raw = [0u8; 16];
            dpu_hal::mem::read(self.cq + usize::from(self.qp.cq_head) * 16, &mut raw);
            if !self.qp.is_new(&raw) {
                if csr::time() >= deadline {
                    return Err(Error::Timeout(cmds[got].opcode()));
                }
                nap(deadline);
                continue;
            }
            let c = Completion::parse(&raw);
            let head = self.qp.pop(&c);
            mmio::write32(self.regs + r::cq_head(0) as usize, u32::from(head));
            let k = usize::from(c.cid.wrapping_sub(base));
            if k < cmds.len() {
                if let Some(o) = out.get_mut(k) {
                    *o = c;
                }
                got += 1;
            }
        }
        for (k, c) in out.iter().take(cmds.len()).enumerate() {
            if !c.status.is_success() {
                return Err(Error::Failed(cmds[k].opcode(), c.status.field()));
            }
        }
        Ok(())
    }

    fn one(&mut self, mut cmd: Sqe) -> Result<Completion, Error> {
        let mut out = [Completion { dw0: 0, sq_head: 0, sq_id: 0, cid: 0, phase: false, status: Status::SUCCESS }];
        self.run(core::slice::from_mut(&mut cmd), &mut out)?;
        Ok(out[0])
    }
}

/// Waits until CSTS.RDY equals `ready`, for at most CAP.TO.
fn wait_ready(regs: usize, cap: u64, ready: bool) -> Result<(), Error> {
    let to = ((cap >> 24) & 0xff).max(1) * TIMEBASE_HZ / 2;
    let deadline = csr::time() + to;
    loop {
        let csts = mmio::read32(regs + r::CSTS as usize);
        if csts & 2 != 0 && ready {
            return Err(Error::Fatal);
        }
        if (csts & 1 != 0) == ready {
            return Ok(());
        }
        if csr::time() >= deadline {
            return Err(Error::NotReady);
        }
        nap(deadline);
    }
}

/// What Identify Namespace said: (blocks, LBA data size shift).
fn namespace_geometry(page: &[u8]) -> (u64, u8) {
    let nsze = u64::from_le_bytes(page[0..8].try_into().unwrap_or([0; 8]));
    let flbas = usize::from(page[26] & 0xf);
    let lbads = page.get(128 + 4 * flbas + 2).copied().unwrap_or(0);
    (nsze, lbads)
}

/// Brings SSD `ssd` up for namespace `nsid`; publishes its queues.
fn bring_up(ssd: usize, nsid: u32, cores: usize) -> Result<(u64, u8), Error> {
    let regs = super::regs(ssd);
    let cap = mmio::read64(regs + r::CAP as usize);
    if cap == u64::MAX {
        return Err(Error::Absent);
    }
    // Reset, then the admin queue, then enable (§3.5.1).
    mmio::write32(regs + r::CC as usize, 0);
    wait_ready(regs, cap, false)?;
    let mqes = (cap & 0xffff) as u16 + 1;
    let admin_entries = ADMIN_ENTRIES.min(mqes);
    let mem = dpu_rt::alloc::ddr(3 * 4096, 4096).ok_or(Error::NoMemory)? as usize;
    dpu_hal::mem::zero(mem, 3 * 4096);
    let (sq, cq, page) = (mem, mem + 4096, mem + 8192);
    let a = u32::from(admin_entries - 1);
    mmio::write32(regs + r::AQA as usize, a << 16 | a);
    mmio::write64(regs + r::ASQ as usize, sq as u64);
    mmio::write64(regs + r::ACQ as usize, cq as u64);
    // EN, CSS = NVM, MPS = 4 KiB, IOSQES = 6, IOCQES = 4.
    mmio::write32(regs + r::CC as usize, 1 | 6 << 16 | 4 << 20);
    wait_ready(regs, cap, true)?;
    let mut admin = Admin { regs, sq, cq, qp: QueuePair::new(admin_entries), cid: 0 };

    admin.one(host::identify(0, host::CNS_CONTROLLER, 0, page as u64))?;
    let mdts = dpu_hal::mem::read_u8(page + 77);
    let max_transfer = if mdts == 0 { 0 } else { 4096u32.checked_shl(u32::from(mdts)).unwrap_or(0) };
    admin.one(host::identify(0, host::CNS_NAMESPACE, nsid, page as u64))?;
    let mut id = [0u8; 192];
    dpu_hal::mem::read(page, &mut id);
    let geometry = namespace_geometry(&id);

    let granted = admin.one(host::set_queue_count(0, cores as u16))?;
    let queues = cores.min(usize::from(granted.dw0 as u16) + 1).min(usize::from((granted.dw0 >> 16) as u16) + 1);
    let entries = IO_ENTRIES.min(mqes);
    let base = dpu_rt::alloc::ddr(QP_BYTES * queues as u64, 4096).ok_or(Error::NoMemory)?;
    dpu_hal::mem::zero(base as usize, (QP_BYTES * queues as u64) as usize);
    // Completion queues first (an SQ names its CQ), in batches.
    for sqs in [false, true] {
        let mut q = 0;
        while q < queues {
            let n = (queues - q).min(usize::from(admin_entries) - 1);
            let mut cmds = [Sqe::ZERO; ADMIN_ENTRIES as usize];
            for (k, c) in cmds[..n].iter_mut().enumerate() {
                let (qid, sq_at, cq_at, _) = pair(base, q + k);
                *c = if sqs { host::create_sq(0, qid, entries, sq_at, qid) } else { host::create_cq(0, qid, entries, cq_at) };
            }
            let mut out = [Completion { dw0: 0, sq_head: 0, sq_id: 0, cid: 0, phase: false, status: Status::SUCCESS }; ADMIN_ENTRIES as usize];
            admin.run(&mut cmds[..n], &mut out)?;
            q += n;
        }
    }
    super::publish_ready(ssd, queues as u16, entries, base, max_transfer);
    defmt::info!(
        "ssd {=usize}: up: {=usize} I/O queue pairs of {=u16}, namespace {=u32}: {=u64} blocks of {=u32} B, max transfer {=u32} B",
        ssd,
        queues,
        entries,
        nsid,
        geometry.0,
        1u32 << geometry.1,
        max_transfer
    );
    Ok(geometry)
}

/// Queue pair `q` at `base` (the layout `super::queue_pair` reads).
fn pair(base: u64, q: usize) -> (u16, u64, u64, u32) {
    let sq = base + q as u64 * QP_BYTES;
    (q as u16 + 1, sq, sq + (IO_ENTRIES as u64 * 64).next_multiple_of(4096), 0)
}

pub fn run(hart: HartId) -> ! {
    // Asleep until the admin service has the configuration and a
    // namespace is on a local SSD (`super::wake_service`).
    crate::channel::enable_doorbell(hart.0);
    // (It rings after loading: the configuration is there once woken.)
    while crate::channel::take_doorbells(hart.0) & super::DOORBELL_SSD == 0 {
        csr::wfi();
    }
    // From here the timer wakes `wfi` (mie.MTIE) while the SSDs answer.
    csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    let mut any = false;
    for ssd in 0..SSD_SLOTS {
        let local = |n: &&bootcfg::Namespace| matches!(n.backend, Backend::Local { ssd: s, .. } if usize::from(s) == ssd);
        let Some(first) = bootcfg::namespaces().find(local) else { continue };
        let Backend::Local { nsid, .. } = first.backend else { continue };
        any = true;
        match bring_up(ssd, nsid, crate::net::DATA_CORES) {
            Ok((blocks, lbads)) => {
                for ns in bootcfg::namespaces().filter(local) {
                    let g = ns.geometry;
                    let ok = lbads == g.block_shift && blocks >= g.blocks;
                    if !ok {
                        defmt::error!("ssd {=usize}: namespace {=u32} has {=u64} blocks of 2^{=u8} B; fn{=u16} nsid {=u32} wants {=u64} of 2^{=u8}", ssd, nsid, blocks, lbads, ns.function, ns.nsid, g.blocks, g.block_shift);
                    }
                    bootcfg::set_state(ns.index, if ok { bootcfg::NS_READY } else { bootcfg::NS_MISMATCH });
                }
            }
            Err(e) => {
                defmt::error!("ssd {=usize}: not brought up: {}", ssd, e);
                super::publish_failed(ssd);
                for ns in bootcfg::namespaces().filter(local) {
                    bootcfg::set_state(ns.index, bootcfg::NS_MISMATCH);
                }
            }
        }
    }
    if any {
        // The NVMe admin service holds CSTS.RDY until namespaces are known.
        dpu_hal::mailbox::ring(crate::nvme::ADMIN_HART, crate::nvmf::DOORBELL_NVMF);
    }
    dpu_rt::park()
}
