//! Data-plane reactor: one per data-plane core, run to completion.
//!
//! Each pass polls the core's sources (for now: the control channel);
//! with nothing to do the core sleeps in `wfi` until a doorbell. Later
//! issues add NVMe queues, NIC rings and accelerator completions as sources.

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
    // Coalescing deadlines use this hart's timer (wfi wakes on it).
    dpu_hal::csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    // Everything may be pending before the first doorbell.
    let mut bits = u64::MAX;
    loop {
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
        let io = engine.as_mut().map_or(0, |e| e.poll(bits));
        if work == 0 && io == 0 {
            dpu_hal::csr::wfi();
        }
        // Only touch the PLIC and mailbox when an external interrupt is pending.
        bits = if dpu_hal::csr::mip() & dpu_hal::regs::csr::MIP_MEIP != 0 { channel::take_doorbells(me) } else { 0 };
    }
}
