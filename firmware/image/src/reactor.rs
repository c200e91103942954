//! Data-plane reactor: one per data-plane core, run to completion.
//!
//! Each pass polls the core's sources: the control channel, the NVMe I/O
//! engine (doorbells, DMA completions) and, through it, the NVMe/TCP
//! initiator (NIC rings, TCP timers). With nothing to do the core sleeps
//! in `wfi` until a doorbell or its timer.

use crate::channel::{self, Reply, Request};
use crate::nvme::io::Engine;
use dpu_rt::HartId;

pub fn run(hart: HartId) -> ! {
    let me = hart.0;
    let Some((mut rx, mut tx)) = channel::reactor_ends(me) else {
        defmt::error!("hart {=usize}: control channel already claimed", me);
        dpu_rt::park();
    };
    channel::enable_doorbell(me);
    // The engine's state lives in this core's SMEM.
    let mut engine = dpu_rt::alloc::smem_static::<Engine>().and_then(|e| if e.start(me) { Some(e) } else { None });
    if engine.is_none() {
        defmt::error!("hart {=usize}: NVMe I/O engine could not start", me);
    }
    // Long copies (TCP payloads) go to a DMA channel of this core.
    if !dpu_rt::copy::start() && me == crate::net::FIRST_DATA_HART {
        defmt::warn!("hart {=usize}: no DMA copy channel; memcpy stays on the core", me);
    }
    // Coalescing deadlines and TCP timers use this hart's timer (wfi wakes on it).
    dpu_hal::csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    if me == crate::net::FIRST_DATA_HART {
        defmt::info!("hart {=usize}: SMEM free after the NVMe engine: {=usize} of {=usize} bytes", me, dpu_rt::alloc::smem_free(), dpu_rt::alloc::SMEM_ARENA);
    }
    let mut timer = u64::MAX;
    let mut fabric_checked = false;
    // Everything may be pending before the first doorbell.
    let mut bits = u64::MAX;
    // The last pass ended in `wfi`.
    let mut slept = false;
    loop {
        // Woken only by control-channel messages (the heartbeat ping),
        // with the engine's deadline still ahead: the engine has nothing
        // new, since it slept with every source of its work covered by a
        // doorbell bit or its deadline (controller publications ring
        // `DOORBELL_NVMF`). Answer and sleep again without a pass over
        // its queues and connections (~15 K cycles per wake on a core
        // with ten remote controllers).
        let quiet = slept && fabric_checked && bits == channel::DOORBELL_RING && dpu_hal::csr::time() < timer;
        let mut work = 0;
        if bits & channel::DOORBELL_RING != 0 {
            while let Some(req) = rx.pop() {
                work += 1;
                match req {
                    Request::Ping { seq, sent } => {
                        let reply = Reply::Pong { seq, sent, hart: me as u16 };
                        if tx.push(reply).is_err() {
                            defmt::warn!("hart {=usize}: reply ring full, dropping pong {=u32}", me, seq);
                        }
                    }
                }
            }
            if work > 0 {
                channel::ring(0);
            }
        }
        // Remote namespaces: this core's NVMe/TCP initiator, once the
        // boot configuration is known.
        if !fabric_checked && crate::bootcfg::loaded() {
            fabric_checked = true;
            // Encrypted namespaces: this core's queue on every crypto
            // engine (with the management API also without any: crypto
            // block devices may be mapped at run time).
            if crate::bootcfg::namespaces().any(|n| n.crypto.is_some()) || crate::nvmf::target::live_possible() {
                match (engine.as_mut(), crate::block::crypto::Crypto::start(me)) {
                    (Some(e), Some(c)) => e.attach_crypto(c),
                    _ => defmt::error!("hart {=usize}: crypto device could not start", me),
                }
            }
            // Erasure-coded namespaces: this core's queue on the EC engine
            // (with the management API also without any: volumes may be
            // made at run time, `bdev_ec_create`).
            if crate::bootcfg::namespaces().any(|n| matches!(n.backend, crate::bootcfg::Backend::Ec { .. })) || crate::nvmf::target::live_possible() {
                match (engine.as_mut(), crate::block::ec::Ec::start(me)) {
                    (Some(e), Some(x)) => e.attach_ec(x),
                    _ => defmt::error!("hart {=usize}: EC device could not start", me),
                }
            }
            // Local SSD namespaces: this core's queue pairs on the SSDs.
            if crate::bootcfg::namespaces().any(|n| matches!(n.backend, crate::bootcfg::Backend::Local { .. })) {
                match (engine.as_mut(), crate::block::ssd::Ssd::start(me)) {
                    (Some(e), Some(s)) => e.attach_ssd(s),
                    _ => defmt::error!("hart {=usize}: local SSD device could not start", me),
                }
            }
            if let (Some(e), Some(f)) = (engine.as_mut(), crate::nvmf::initiator::Fabric::start(me)) {
                e.attach_fabric(f);
                // The NVMe/TCP target listens on the same stacks.
                // (With the management API, also without subsystems: they
                // may come at run time.)
                if (crate::bootcfg::subsystems() > 0 || crate::nvmf::target::live_possible()) && !e.start_target() {
                    defmt::error!("hart {=usize}: NVMe/TCP target could not start", me);
                }
                if me == crate::net::FIRST_DATA_HART {
                    defmt::info!("hart {=usize}: SMEM free after the NVMe/TCP initiator: {=usize} bytes", me, dpu_rt::alloc::smem_free());
                }
            }
        }
        let io = if quiet {
            0
        } else {
            let io = engine.as_mut().map_or(0, |e| e.poll(bits));
            // The timer only matters to a core about to sleep: a pass that
            // did work is followed by another pass (which polls every
            // deadline itself), and the last pass before `wfi` did none.
            if io == 0 {
                let next = engine.as_mut().map_or(u64::MAX, |e| e.deadline());
                if next != timer {
                    timer = next;
                    dpu_hal::clint::set_timer(me, next);
                }
            }
            io
        };
        // Answering control messages makes no engine work: after a quiet
        // wake the core sleeps at once.
        slept = (work == 0 || quiet) && io == 0;
        if slept {
            dpu_hal::csr::wfi();
        }
        // Only touch the PLIC and mailbox when an external interrupt is pending.
        bits = if dpu_hal::csr::mip() & dpu_hal::regs::csr::MIP_MEIP != 0 { channel::take_doorbells(me) } else { 0 };
    }
}
