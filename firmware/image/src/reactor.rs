//! Data-plane reactor: one per data-plane core, run to completion.
//!
//! Each pass polls the core's sources (for now: the control channel);
//! with nothing to do the core sleeps in `wfi` until a doorbell. Later
//! issues add NVMe queues, NIC rings and accelerator completions as sources.

use crate::channel::{self, Reply, Request};
use dpu_rt::HartId;

pub fn run(hart: HartId) -> ! {
    let me = hart.0;
    let Some((mut rx, mut tx)) = channel::reactor_ends(me) else {
        defmt::error!("hart {=usize}: control channel already claimed", me);
        dpu_rt::park();
    };
    channel::enable_doorbell(me);
    loop {
        channel::take_doorbells(me);
        let mut work = 0;
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
        } else {
            dpu_hal::csr::wfi();
        }
    }
}
