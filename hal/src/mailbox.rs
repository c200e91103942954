//! Inter-core mailbox driver: 64 doorbell bits per hart, raising that hart's
//! PLIC source `MAILBOX_IRQ_BASE + hart` while any bit is pending.

use crate::memory_map::{MAILBOX_BASE, MAILBOX_IRQ_BASE};
use crate::mmio;
use crate::regs::mailbox::{DOORBELL, PENDING, SLOT};

/// Rings doorbell bits `bits` of hart `target`.
pub fn ring(target: usize, bits: u64) {
    mmio::write64(MAILBOX_BASE + SLOT as usize * target + DOORBELL as usize, bits);
}

/// Reads and clears the pending doorbells of hart `me`.
pub fn take(me: usize) -> u64 {
    let addr = MAILBOX_BASE + SLOT as usize * me + PENDING as usize;
    let v = mmio::read64(addr);
    if v != 0 {
        mmio::write64(addr, v);
    }
    v
}

/// PLIC source of hart `hart`'s mailbox.
pub const fn irq(hart: usize) -> u32 {
    MAILBOX_IRQ_BASE + hart as u32
}
