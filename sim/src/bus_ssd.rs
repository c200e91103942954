//! The bus's local-SSD side: the `devices.ssd` window onto the SSD
//! models ([`crate::ssd`]), their peer-to-peer DMA into DPU memory and
//! the events that finish their commands. A slot with no SSD fitted
//! answers like an empty PCIe slot: reads return all ones, writes vanish.

use crate::bus::Bus;
use crate::event::Event;
use crate::ssd::{Dma, Ssd};
use dpu_hal::regs::ssd as r;

/// DPU memory as the SSDs reach it (RAM only; writes also break LR/SC
/// reservations and decoded code, like every DMA write).
struct P2p<'a>(&'a mut Bus);

impl Dma for P2p<'_> {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> bool {
        self.0.mem.range_is_ram(addr, out.len() as u64) && self.0.mem.read_bytes(addr, out).is_some()
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let ok = self.0.mem.range_is_ram(addr, data.len() as u64) && self.0.mem.region_of(addr).is_some_and(|r| r.writable);
        if ok {
            self.0.dma_write_local(addr, data);
        }
        ok
    }
}

impl Bus {
    /// A read of the SSD window at `off`.
    pub(crate) fn ssd_read(&self, off: u64, size: u8) -> Option<u64> {
        let (i, reg) = ((off / r::WINDOW) as usize, off % r::WINDOW);
        match self.ssds.get(i) {
            Some(s) => s.read(reg, size),
            None => Some(u64::MAX >> (64 - 8 * u32::from(size))),
        }
    }

    /// A write to the SSD window at `off`, at `now`.
    pub(crate) fn ssd_write(&mut self, off: u64, size: u8, v: u64, now: u64) -> bool {
        let (i, reg) = ((off / r::WINDOW) as usize, off % r::WINDOW);
        if i >= self.ssds.len() {
            return true;
        }
        let ok = self.with_ssd(i, |s, dma| s.write(reg, size, v, now, dma));
        self.ssd_arm(i);
        ok
    }

    /// Runs `f` on SSD `i` with DPU memory as its DMA target.
    fn with_ssd<T>(&mut self, i: usize, f: impl FnOnce(&mut Ssd, &mut dyn Dma) -> T) -> T {
        let mut ssds = std::mem::take(&mut self.ssds);
        let t = f(&mut ssds[i], &mut P2p(self));
        self.ssds = ssds;
        t
    }

    /// Makes sure an event comes when SSD `i`'s next command is due.
    fn ssd_arm(&mut self, i: usize) {
        if let Some(t) = self.ssds[i].next_due() {
            if t < self.ssd_armed[i] {
                self.ssd_armed[i] = t;
                self.events.push(t, Event::SsdDone { ssd: i as u32 });
            }
        }
    }

    /// `Event::SsdDone`: SSD `i`'s commands due at `now` finish.
    pub fn ssd_done(&mut self, i: usize, now: u64) {
        if i >= self.ssds.len() {
            return;
        }
        if self.ssd_armed[i] <= now {
            self.ssd_armed[i] = u64::MAX;
        }
        self.with_ssd(i, |s, dma| s.complete_due(now, dma));
        self.ssd_arm(i);
    }

    /// Scenario fault on SSD `i`: `fail` (every command from now on), or a
    /// media time of `slow` cycles; `end` undoes either.
    pub fn ssd_fault(&mut self, i: usize, now: u64, fail: bool, slow: Option<u64>, end: bool) {
        let Some(s) = self.ssds.get_mut(i) else { return };
        if end {
            s.recover();
        } else if fail {
            s.fail(now);
        } else if let Some(c) = slow {
            s.slow(c, None);
        }
    }
}
