//! Inter-core mailboxes (`dpu_hal::regs::mailbox`): 64 doorbell bits per
//! hart. While any bit of hart h is pending, PLIC source `irq_base + h` is high.

use super::plic::Plic;
use super::{reg_read, reg_write};
use dpu_hal::regs::mailbox::{DOORBELL, PENDING, SLOT};

pub struct Mailbox {
    pending: Vec<u64>,
    irq_base: u32,
    /// Doorbell writes per target hart (statistics).
    pub rings: Vec<u64>,
}

impl Mailbox {
    pub fn new(harts: usize, irq_base: u32) -> Mailbox {
        Mailbox { pending: vec![0; harts], irq_base, rings: vec![0; harts] }
    }

    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let h = (off / SLOT) as usize;
        let r = off % SLOT;
        let p = *self.pending.get(h)?;
        match r - r % 8 {
            DOORBELL | PENDING => Some(reg_read(p, r % 8, size)),
            _ => None,
        }
    }

    pub fn write(&mut self, off: u64, size: u8, v: u64, plic: &mut Plic, lines: &mut [u64]) -> bool {
        let h = (off / SLOT) as usize;
        let r = off % SLOT;
        let Some(&old) = self.pending.get(h) else { return false };
        let bits = reg_write(0, r % 8, size, v);
        let new = match r - r % 8 {
            DOORBELL => {
                self.rings[h] += 1;
                old | bits
            }
            PENDING => old & !bits,
            _ => return false,
        };
        self.pending[h] = new;
        if (old == 0) != (new == 0) {
            plic.set_level(self.irq_base + h as u32, new != 0, lines);
        }
        true
    }
}
