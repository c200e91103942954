//! CLINT model (SiFive layout, `dpu_hal::regs::clint`): per-hart `msip`
//! (software interrupt) and `mtimecmp`, and the shared `mtime` counter
//! derived from simulated time (RISC-V privileged spec §3.2.1).

use super::{reg_read, reg_write};
use crate::event::{ComponentId, EventQueue, Payload};
use dpu_hal::regs::clint::{MSIP, MTIME, MTIMECMP};
use dpu_hal::regs::csr::{MIP_MSIP, MIP_MTIP};

pub struct Clint {
    msip: Vec<bool>,
    mtimecmp: Vec<u64>,
    /// Core cycles per mtime tick.
    cycles_per_tick: u64,
    /// Added to the cycle-derived tick count (mtime is writable).
    mtime_offset: u64,
    /// Its component id: timer events (payload `a`: the hart) come back
    /// to it (`Clint::update_timer`).
    pub id: ComponentId,
}

impl Clint {
    pub fn new(harts: usize, cycles_per_tick: u64, id: ComponentId) -> Clint {
        Clint { msip: vec![false; harts], mtimecmp: vec![u64::MAX; harts], cycles_per_tick, mtime_offset: 0, id }
    }

    /// `mtime` at core cycle `now`.
    pub fn mtime(&self, now: u64) -> u64 {
        (now / self.cycles_per_tick).wrapping_add(self.mtime_offset)
    }

    /// Core cycle at which `mtime` reaches `tick` (None if never / already).
    fn cycle_of_tick(&self, tick: u64) -> Option<u64> {
        let raw = tick.checked_sub(self.mtime_offset)?;
        raw.checked_mul(self.cycles_per_tick)
    }

    /// Recomputes hart `h`'s MTIP at `now`; schedules the rising edge if future.
    pub fn update_timer(&self, h: usize, now: u64, lines: &mut [u64], events: &mut EventQueue) {
        let cmp = self.mtimecmp[h];
        if self.mtime(now) >= cmp {
            lines[h] |= MIP_MTIP;
        } else {
            lines[h] &= !MIP_MTIP;
            if cmp != u64::MAX {
                if let Some(at) = self.cycle_of_tick(cmp) {
                    events.push(at, self.id, Payload::new(0, h as u64, 0));
                }
            }
        }
    }

    pub fn read(&self, now: u64, off: u64, size: u8) -> Option<u64> {
        let harts = self.msip.len() as u64;
        if off < MSIP + 4 * harts {
            let h = ((off - MSIP) / 4) as usize;
            return Some(reg_read(self.msip[h] as u64, off % 4, size));
        }
        if (MTIMECMP..MTIMECMP + 8 * harts).contains(&off) {
            let h = ((off - MTIMECMP) / 8) as usize;
            return Some(reg_read(self.mtimecmp[h], off % 8, size));
        }
        if (MTIME..MTIME + 8).contains(&off) {
            return Some(reg_read(self.mtime(now), off - MTIME, size));
        }
        None
    }

    pub fn write(&mut self, now: u64, off: u64, size: u8, v: u64, lines: &mut [u64], events: &mut EventQueue) -> bool {
        let harts = self.msip.len() as u64;
        if off < MSIP + 4 * harts {
            let h = ((off - MSIP) / 4) as usize;
            if off % 4 == 0 {
                self.msip[h] = v & 1 != 0;
                if self.msip[h] {
                    lines[h] |= MIP_MSIP;
                } else {
                    lines[h] &= !MIP_MSIP;
                }
            }
            return true;
        }
        if (MTIMECMP..MTIMECMP + 8 * harts).contains(&off) {
            let h = ((off - MTIMECMP) / 8) as usize;
            self.mtimecmp[h] = reg_write(self.mtimecmp[h], off % 8, size, v);
            self.update_timer(h, now, lines, events);
            return true;
        }
        if (MTIME..MTIME + 8).contains(&off) {
            let new = reg_write(self.mtime(now), off - MTIME, size, v);
            self.mtime_offset = new.wrapping_sub(now / self.cycles_per_tick);
            for h in 0..self.msip.len() {
                self.update_timer(h, now, lines, events);
            }
            return true;
        }
        false
    }
}
