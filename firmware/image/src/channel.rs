//! Control-plane <-> reactor channels: one SPSC ring each way per
//! data-plane hart, plus the doorbell that wakes the receiver.

use dpu_hal::memory_map::HARTS;
use dpu_hal::{mailbox, plic};
use dpu_ring::{Consumer, Producer, Ring};

/// Messages from the control plane to a reactor.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// Liveness probe; `sent` is the sender's mcycle.
    Ping { seq: u32, sent: u64 },
}

/// Messages from a reactor to the control plane.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// `hart` is the replying hart (checked against the channel).
    Pong { seq: u32, sent: u64, hart: u16 },
}

pub const DEPTH: usize = 8;

/// Doorbell bit used for "ring has messages".
pub const DOORBELL_RING: u64 = 1;

static TO_REACTOR: [Ring<Request, DEPTH>; HARTS] = [const { Ring::new() }; HARTS];
static FROM_REACTOR: [Ring<Reply, DEPTH>; HARTS] = [const { Ring::new() }; HARTS];

/// The control plane's ends of every reactor's channel.
pub fn control_ends(
    hart: usize,
) -> Option<(Producer<'static, Request, DEPTH>, Consumer<'static, Reply, DEPTH>)> {
    Some((TO_REACTOR[hart].producer()?, FROM_REACTOR[hart].consumer()?))
}

/// A reactor's ends of its own channel.
pub fn reactor_ends(
    hart: usize,
) -> Option<(Consumer<'static, Request, DEPTH>, Producer<'static, Reply, DEPTH>)> {
    Some((TO_REACTOR[hart].consumer()?, FROM_REACTOR[hart].producer()?))
}

/// Routes this hart's mailbox interrupt to its own PLIC context and
/// enables external interrupts in `mie` (taken by `wfi`, not trapped:
/// mstatus.MIE stays clear in polling loops).
pub fn enable_doorbell(hart: usize) {
    let src = mailbox::irq(hart);
    plic::set_priority(src, 1);
    plic::set_threshold(hart, 0);
    plic::set_enabled(hart, src, true);
    dpu_hal::csr::mie_set(dpu_hal::regs::csr::MIP_MEIP);
}

/// Acknowledges this hart's doorbells (PLIC claim/complete + mailbox
/// clear). Returns the doorbell bits that were pending.
pub fn take_doorbells(hart: usize) -> u64 {
    let mut bits = 0;
    while let Some(src) = plic::claim(hart) {
        if src == mailbox::irq(hart) {
            bits |= mailbox::take(hart);
        }
        plic::complete(hart, src);
    }
    bits
}

/// Rings `target`'s doorbell.
pub fn ring(target: usize) {
    mailbox::ring(target, DOORBELL_RING);
}
