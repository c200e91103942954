//! The local SSDs as one component: the `devices.ssd` window onto the
//! SSD models (one [`Ssd`] per fitted slot), their peer-to-peer DMA into
//! DPU memory through a [`DevCtx`], and the events that finish their
//! commands (payload `a`: the slot). A slot with no SSD fitted answers
//! like an empty PCIe slot: reads return all ones, writes vanish.

use super::{Dma, Ssd};
use crate::devctx::{Component, DevCtx, LocalMem};
use crate::event::{ComponentId, Payload};
use dpu_hal::regs::ssd as r;

/// DPU memory as the SSDs reach it (RAM only; writes also break LR/SC
/// reservations and decoded code, like every device write).
impl Dma for LocalMem<'_> {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> bool {
        self.is_ram(addr, out.len() as u64) && LocalMem::read(self, addr, out).is_some()
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let ok = self.is_writable_ram(addr, data.len() as u64);
        if ok {
            LocalMem::write(self, addr, data);
        }
        ok
    }
}

/// The fitted SSDs and their pending events.
pub struct SsdBay {
    /// Its component id.
    pub id: ComponentId,
    pub drives: Vec<Ssd>,
    /// Per SSD: the earliest completion event queued (`u64::MAX`: none).
    armed: Vec<u64>,
}

impl SsdBay {
    pub fn new(id: ComponentId, drives: Vec<Ssd>) -> SsdBay {
        let armed = vec![u64::MAX; drives.len()];
        SsdBay { id, drives, armed }
    }

    /// A read of the SSD window at `off`.
    pub fn mmio_read(&self, off: u64, size: u8) -> Option<u64> {
        let (i, reg) = ((off / r::WINDOW) as usize, off % r::WINDOW);
        match self.drives.get(i) {
            Some(s) => s.read(reg, size),
            None => Some(u64::MAX >> (64 - 8 * u32::from(size))),
        }
    }

    /// A write to the SSD window at `off`, at `ctx.now`.
    pub fn mmio_write(&mut self, off: u64, size: u8, v: u64, ctx: &mut DevCtx<'_>) -> bool {
        let (i, reg) = ((off / r::WINDOW) as usize, off % r::WINDOW);
        if i >= self.drives.len() {
            return true;
        }
        let ok = self.drives[i].write(reg, size, v, ctx.now, &mut ctx.mem);
        self.arm(i, ctx);
        ok
    }

    /// Makes sure an event comes when SSD `i`'s next command is due.
    fn arm(&mut self, i: usize, ctx: &mut DevCtx<'_>) {
        if let Some(t) = self.drives[i].next_due() {
            if t < self.armed[i] {
                self.armed[i] = t;
                ctx.events.push(t, self.id, Payload::new(0, i as u64, 0));
            }
        }
    }

    /// SSD `i`'s commands due now finish.
    pub fn complete_due(&mut self, i: usize, ctx: &mut DevCtx<'_>) {
        if i >= self.drives.len() {
            return;
        }
        let now = ctx.now;
        if self.armed[i] <= now {
            self.armed[i] = u64::MAX;
        }
        self.drives[i].complete_due(now, &mut ctx.mem);
        self.arm(i, ctx);
    }

    /// Scenario fault on SSD `i`: `fail` (every command from now on), or a
    /// media time of `slow` cycles; `end` undoes either.
    pub fn fault(&mut self, i: usize, now: u64, fail: bool, slow: Option<u64>, end: bool) {
        let Some(s) = self.drives.get_mut(i) else { return };
        if end {
            s.recover();
        } else if fail {
            s.fail(now);
        } else if let Some(c) = slow {
            s.slow(c, None);
        }
    }
}

impl Component for SsdBay {
    /// SSD `payload.a`'s earliest command is due.
    fn on_event(&mut self, payload: Payload, ctx: &mut DevCtx<'_>) {
        self.complete_due(payload.a as usize, ctx);
    }
}
