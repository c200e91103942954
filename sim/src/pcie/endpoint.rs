//! The PCIe endpoint: the PF and its SR-IOV VFs as the host sees them
//! (configuration space, BAR0, MSI-X), and as the firmware sees them (shadow
//! BAR0, doorbell notifications, MSI-X triggers). Layouts: `dpu_hal::regs::{pcie, bar0}`.
//!
//! Host writes to BAR0 registers and doorbells land in the function's
//! shadow and queue a notification for the hart the doorbell is steered to
//! (register writes go to the function's admin hart). Notifications are
//! coalesced per register: while one is queued, further writes to the same
//! register only update the shadow, so a doorbell storm costs the firmware
//! one notification and can never overflow a FIFO or delay another function.

use super::config::*;
use crate::dev::{reg_read, reg_write};
use dpu_hal::regs::{bar0, pcie as regs};
use std::collections::VecDeque;

/// Something the bus must do after an endpoint access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Ring this hart's mailbox (a notification is queued for it).
    Notify(u32),
    /// Deliver an MSI-X write to the host: (function, vector, address, data).
    Msi { function: u16, vector: u16, addr: u64, data: u32 },
}

/// Why a host config access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgError {
    /// No such function (VF not enabled): the root complex sees an Unsupported Request.
    NoFunction,
    /// The firmware has not initialized the function yet: Configuration
    /// Request Retry Status, the host retries (PCIe 4.0 §2.3.1).
    Retry,
    /// Bad offset/size.
    Malformed,
}

const REG_DWORDS: usize = (bar0::REGISTERS_END / 4) as usize;

pub struct Function {
    pub cfg: ConfigSpace,
    pub shadow: Vec<u8>,
    pub ready: bool,
    pub admin_hart: u32,
    vectors: u32,
    db_pending: Vec<bool>,
    reg_pending: Vec<bool>,
}

impl Function {
    fn new(id: &Identity, is_vf: bool, admin_hart: u32) -> Function {
        let mut f = Function {
            cfg: ConfigSpace::new(id, is_vf),
            shadow: vec![0; bar0::SIZE as usize],
            ready: false,
            admin_hart,
            vectors: id.msix_vectors,
            db_pending: vec![false; regs::DOORBELLS as usize],
            reg_pending: vec![false; REG_DWORDS],
        };
        // MSI-X vector control: every vector starts masked (PCIe 4.0 §7.7.2.4).
        for v in 0..id.msix_vectors as usize {
            f.shadow[bar0::MSIX_TABLE as usize + 16 * v + 12] = 1;
        }
        f
    }

    fn shadow32(&self, off: u64) -> u32 {
        let o = off as usize;
        u32::from_le_bytes(self.shadow[o..o + 4].try_into().unwrap())
    }

    fn vector_masked(&self, v: u32) -> bool {
        self.shadow32(bar0::MSIX_TABLE + 16 * u64::from(v) + 12) & 1 != 0
    }

    fn set_pba(&mut self, v: u32, on: bool) {
        let byte = bar0::MSIX_PBA as usize + (v / 8) as usize;
        if on {
            self.shadow[byte] |= 1 << (v % 8);
        } else {
            self.shadow[byte] &= !(1 << (v % 8));
        }
    }

    fn pba(&self, v: u32) -> bool {
        self.shadow[bar0::MSIX_PBA as usize + (v / 8) as usize] & (1 << (v % 8)) != 0
    }
}

/// Endpoint statistics.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct EndpointStats {
    pub doorbell_writes: u64,
    pub doorbell_notifications: u64,
    pub register_writes: u64,
    pub msix_sent: u64,
    pub msix_pended: u64,
    pub msix_dropped: u64,
    pub unsupported_requests: u64,
}

pub struct Endpoint {
    pub funcs: Vec<Function>,
    id: Identity,
    /// The VFs the SR-IOV capability offers (its TotalVFs and InitialVFs),
    /// set by the firmware (`regs::TOTAL_VFS`); at most `id.total_vfs`.
    offered: u16,
    steer: Vec<u16>,
    notify: Vec<VecDeque<u64>>,
    pub stats: EndpointStats,
}

impl Endpoint {
    pub fn new(pf: Identity, vf_vectors: u32, harts: usize) -> Endpoint {
        let total = usize::from(pf.total_vfs);
        let mut funcs = vec![Function::new(&pf, false, 0)];
        let vf_id = Identity { msix_vectors: vf_vectors, ..pf.clone() };
        for _ in 0..total {
            funcs.push(Function::new(&vf_id, true, 0));
        }
        Endpoint {
            steer: vec![regs::STEER_ADMIN; (total + 1) * regs::DOORBELLS as usize],
            funcs,
            offered: pf.total_vfs,
            id: pf,
            notify: vec![VecDeque::new(); harts],
            stats: EndpointStats::default(),
        }
    }

    /// The firmware sets the VFs offered (`regs::TOTAL_VFS`): the SR-IOV
    /// capability's TotalVFs and InitialVFs become `n` (at most the
    /// endpoint's maximum), unless the host has VF Enable set.
    fn offer_vfs(&mut self, n: u16) {
        if self.sriov_ctrl() & SRIOV_VF_ENABLE != 0 {
            return;
        }
        self.offered = n.min(self.id.total_vfs);
        self.funcs[0].cfg.set16(EXT_SRIOV + SRIOV_TOTAL_VFS, self.offered);
        self.funcs[0].cfg.set16(EXT_SRIOV + SRIOV_INITIAL_VFS, self.offered);
    }

    fn vf_identity(&self) -> Identity {
        Identity { msix_vectors: self.funcs.get(1).map_or(1, |f| f.vectors), ..self.id.clone() }
    }

    fn sriov_ctrl(&self) -> u16 {
        self.funcs[0].cfg.read16(EXT_SRIOV + SRIOV_CTRL)
    }

    /// VFs currently enabled by the host.
    pub fn num_vfs(&self) -> u16 {
        if self.id.total_vfs == 0 || self.sriov_ctrl() & SRIOV_VF_ENABLE == 0 {
            0
        } else {
            self.funcs[0].cfg.read16(EXT_SRIOV + SRIOV_NUM_VFS).min(self.offered)
        }
    }

    /// Whether function `f` exists on the bus now.
    pub fn present(&self, f: usize) -> bool {
        f == 0 || (f <= usize::from(self.num_vfs()) && f < self.funcs.len())
    }

    /// Whether function `f` may master the bus (DMA, MSI-X).
    pub fn bus_master(&self, f: usize) -> bool {
        self.present(f) && self.funcs[f].cfg.command() & CMD_BUS_MASTER != 0
    }

    fn memory_enabled(&self, f: usize) -> bool {
        if f == 0 {
            self.funcs[0].cfg.command() & CMD_MEMORY != 0
        } else {
            self.present(f) && self.sriov_ctrl() & SRIOV_VF_MSE != 0
        }
    }

    /// Maps a host physical address to (function, BAR0 offset).
    pub fn decode(&self, addr: u64) -> Option<(usize, u64)> {
        let pf = self.funcs[0].cfg.bar64(BAR0);
        if pf != 0 && self.memory_enabled(0) && addr >= pf && addr - pf < bar0::SIZE {
            return Some((0, addr - pf));
        }
        let vfs = u64::from(self.num_vfs());
        let vf0 = self.funcs[0].cfg.bar64(EXT_SRIOV + SRIOV_VF_BAR0);
        if vfs > 0 && vf0 != 0 && self.sriov_ctrl() & SRIOV_VF_MSE != 0 && addr >= vf0 && addr - vf0 < vfs * bar0::SIZE {
            let n = (addr - vf0) / bar0::SIZE;
            return Some((1 + n as usize, (addr - vf0) % bar0::SIZE));
        }
        None
    }

    fn push_note(&mut self, hart: u32, note: u64, out: &mut Vec<Effect>) {
        if let Some(q) = self.notify.get_mut(hart as usize) {
            q.push_back(note);
            out.push(Effect::Notify(hart));
        }
    }

    // ------------------------------------------------------------ host side

    /// Host configuration read of function `f`.
    pub fn cfg_read(&self, f: usize, off: usize, size: usize) -> Result<u32, CfgError> {
        if !self.present(f) {
            return Err(CfgError::NoFunction);
        }
        if !self.funcs[f].ready {
            return Err(CfgError::Retry);
        }
        self.funcs[f].cfg.read(off, size).ok_or(CfgError::Malformed)
    }

    /// Host configuration write of function `f`.
    pub fn cfg_write(&mut self, f: usize, off: usize, size: usize, v: u32, out: &mut Vec<Effect>) -> Result<(), CfgError> {
        if !self.present(f) {
            return Err(CfgError::NoFunction);
        }
        if !self.funcs[f].ready {
            return Err(CfgError::Retry);
        }
        let vfs_before = (self.num_vfs(), self.sriov_ctrl() & SRIOV_VF_MSE);
        let cmd_before = self.funcs[f].cfg.command();
        let msix_before = self.funcs[f].cfg.msix_control();
        let num_vfs_before = self.funcs[0].cfg.read16(EXT_SRIOV + SRIOV_NUM_VFS);
        let enable_before = self.sriov_ctrl() & SRIOV_VF_ENABLE;
        self.funcs[f].cfg.write(off, size, v).ok_or(CfgError::Malformed)?;

        if f == 0 && self.id.total_vfs > 0 {
            // NumVFs may only change while VF Enable is clear (SR-IOV §9.3.3.7).
            if enable_before != 0 && self.funcs[0].cfg.read16(EXT_SRIOV + SRIOV_NUM_VFS) != num_vfs_before {
                self.funcs[0].cfg.set16(EXT_SRIOV + SRIOV_NUM_VFS, num_vfs_before);
            }
            let nv = self.funcs[0].cfg.read16(EXT_SRIOV + SRIOV_NUM_VFS);
            if nv > self.offered {
                self.funcs[0].cfg.set16(EXT_SRIOV + SRIOV_NUM_VFS, self.offered);
            }
            if (self.num_vfs(), self.sriov_ctrl() & SRIOV_VF_MSE) != vfs_before {
                if self.num_vfs() < vfs_before.0 {
                    // Disabled VFs lose all state.
                    let vf_id = self.vf_identity();
                    for n in usize::from(self.num_vfs()) + 1..=usize::from(vfs_before.0) {
                        self.reset_function(n, &vf_id);
                    }
                }
                let admin = self.funcs[0].admin_hart;
                self.push_note(admin, regs::note(regs::NOTE_FUNCTION, 0, regs::EVENT_VFS_CHANGED), out);
            }
        }
        // Function Level Reset (PCIe 4.0 §6.6.2).
        if off <= CAP_PCIE + PCIE_DEVCTL + 1 && off + size > CAP_PCIE + PCIE_DEVCTL + 1 {
            let devctl_hi = (v >> (8 * (CAP_PCIE + PCIE_DEVCTL + 1 - off))) as u8;
            if devctl_hi & 0x80 != 0 {
                let id = if f == 0 { self.id.clone() } else { self.vf_identity() };
                let admin = self.funcs[f].admin_hart;
                self.reset_function(f, &id);
                self.funcs[f].ready = false;
                self.push_note(admin, regs::note(regs::NOTE_FUNCTION, f as u64, regs::EVENT_FLR), out);
                return Ok(());
            }
        }
        let cmd = self.funcs[f].cfg.command();
        if (cmd ^ cmd_before) & CMD_BUS_MASTER != 0 {
            let admin = self.funcs[f].admin_hart;
            self.push_note(admin, regs::note(regs::NOTE_FUNCTION, f as u64, regs::EVENT_BUS_MASTER), out);
        }
        if self.funcs[f].cfg.msix_control() != msix_before {
            self.deliver_pending(f, out);
        }
        Ok(())
    }

    /// The card's cores restart (warm restart): the firmware's doorbell
    /// steering is gone (every doorbell goes to the function's admin hart
    /// again) and so are the notifications it had not taken; the host's
    /// side - configuration space, BAR0 registers and doorbell values,
    /// MSI-X tables and pending bits, readiness - stays.
    pub fn card_reset(&mut self) {
        self.steer.fill(regs::STEER_ADMIN);
        for q in self.notify.iter_mut() {
            q.clear();
        }
        for f in self.funcs.iter_mut() {
            f.db_pending.fill(false);
            f.reg_pending.fill(false);
        }
    }

    /// Resets function `f` to its power-on state (VF disable, FLR). The
    /// firmware's steering and admin hart survive; queued notifications for
    /// it are dropped.
    fn reset_function(&mut self, f: usize, id: &Identity) {
        let admin = self.funcs[f].admin_hart;
        let ready = self.funcs[f].ready;
        self.funcs[f] = Function::new(id, f != 0, admin);
        self.funcs[f].ready = ready;
        for q in self.notify.iter_mut() {
            q.retain(|n| (n >> regs::NOTE_FN_SHIFT) & 0xffff != f as u64 || (n >> regs::NOTE_KIND_SHIFT) & 0x7fff == regs::NOTE_FUNCTION);
        }
    }

    /// Host read of BAR0 of function `f` (memory read TLP).
    pub fn bar_read(&mut self, f: usize, off: u64, size: u8) -> Option<u64> {
        if !self.memory_enabled(f) || !matches!(size, 4 | 8) || off % u64::from(size) != 0 || off + u64::from(size) > bar0::SIZE {
            self.stats.unsupported_requests += 1;
            return None;
        }
        if (bar0::DOORBELL..bar0::MSIX_TABLE).contains(&off) {
            return Some(0); // doorbells are write-only
        }
        let fun = &self.funcs[f];
        let mut v = 0u64;
        for i in 0..size as usize {
            v |= u64::from(fun.shadow[off as usize + i]) << (8 * i);
        }
        Some(v)
    }

    /// Host write of BAR0 of function `f` (memory write TLP).
    pub fn bar_write(&mut self, f: usize, off: u64, size: u8, v: u64, out: &mut Vec<Effect>) {
        if !self.memory_enabled(f) || !matches!(size, 4 | 8) || off % u64::from(size) != 0 || off + u64::from(size) > bar0::SIZE {
            self.stats.unsupported_requests += 1;
            return;
        }
        let doorbells_end = bar0::DOORBELL + 4 * regs::DOORBELLS;
        if off < bar0::REGISTERS_END {
            self.write_shadow(f, off, size, v);
            self.stats.register_writes += 1;
            let fun = &mut self.funcs[f];
            let admin = fun.admin_hart;
            let mut notes = Vec::new();
            for dw in (off / 4)..((off + u64::from(size)) / 4) {
                if !std::mem::replace(&mut fun.reg_pending[dw as usize], true) {
                    notes.push(regs::note(regs::NOTE_REGISTER, f as u64, dw * 4));
                }
            }
            for n in notes {
                self.push_note(admin, n, out);
            }
        } else if off < doorbells_end {
            if size != 4 {
                self.stats.unsupported_requests += 1;
                return;
            }
            self.write_shadow(f, off, size, v);
            self.stats.doorbell_writes += 1;
            let db = ((off - bar0::DOORBELL) / 4) as usize;
            if !std::mem::replace(&mut self.funcs[f].db_pending[db], true) {
                let target = match self.steer[f * regs::DOORBELLS as usize + db] {
                    regs::STEER_ADMIN => self.funcs[f].admin_hart,
                    h => u32::from(h),
                };
                self.stats.doorbell_notifications += 1;
                self.push_note(target, regs::note(regs::NOTE_DOORBELL, f as u64, db as u64), out);
            }
        } else if off >= bar0::MSIX_TABLE && off < bar0::MSIX_TABLE + 16 * u64::from(self.funcs[f].vectors) {
            self.write_shadow(f, off, size, v);
            self.deliver_pending(f, out);
        }
        // Other offsets (gap, PBA) ignore writes.
    }

    fn write_shadow(&mut self, f: usize, off: u64, size: u8, v: u64) {
        let s = &mut self.funcs[f].shadow[off as usize..off as usize + size as usize];
        s.copy_from_slice(&v.to_le_bytes()[..size as usize]);
    }

    /// MSI-X for (f, v): delivered, pended (masked), or dropped.
    pub fn msix(&mut self, f: usize, v: u32, out: &mut Vec<Effect>) {
        let Some(fun) = self.funcs.get(f) else { return };
        if v >= fun.vectors || !self.bus_master(f) || fun.cfg.msix_control() & MSIX_ENABLE == 0 {
            self.stats.msix_dropped += 1;
            return;
        }
        if fun.cfg.msix_control() & MSIX_FUNCTION_MASK != 0 || fun.vector_masked(v) {
            self.funcs[f].set_pba(v, true);
            self.stats.msix_pended += 1;
            return;
        }
        self.send_msi(f, v, out);
    }

    fn send_msi(&mut self, f: usize, v: u32, out: &mut Vec<Effect>) {
        let fun = &self.funcs[f];
        let e = bar0::MSIX_TABLE + 16 * u64::from(v);
        let addr = u64::from(fun.shadow32(e)) | u64::from(fun.shadow32(e + 4)) << 32;
        let data = fun.shadow32(e + 8);
        self.stats.msix_sent += 1;
        out.push(Effect::Msi { function: f as u16, vector: v as u16, addr, data });
    }

    /// Sends pending vectors that are no longer masked.
    fn deliver_pending(&mut self, f: usize, out: &mut Vec<Effect>) {
        let fun = &self.funcs[f];
        if fun.cfg.msix_control() & (MSIX_ENABLE | MSIX_FUNCTION_MASK) != MSIX_ENABLE || !self.bus_master(f) {
            return;
        }
        for v in 0..fun.vectors {
            if self.funcs[f].pba(v) && !self.funcs[f].vector_masked(v) {
                self.funcs[f].set_pba(v, false);
                self.send_msi(f, v, out);
            }
        }
    }

    // ------------------------------------------------------------ DPU side

    /// Firmware read of the endpoint's registers.
    pub fn dpu_read(&mut self, off: u64, size: u8) -> Option<u64> {
        let funcs = self.funcs.len() as u64;
        if off < regs::NOTIFY {
            let v = match off & !7 {
                regs::INFO => u64::from(self.id.total_vfs) | (funcs << 16),
                regs::NUM_VFS => u64::from(self.num_vfs()),
                regs::TOTAL_VFS => u64::from(self.offered) | if self.sriov_ctrl() & SRIOV_VF_ENABLE != 0 { u64::from(regs::TOTAL_VFS_VF_ENABLE) } else { 0 },
                _ => return None,
            };
            return Some(reg_read(v, off & 7, size));
        }
        if off < regs::NOTIFY + 8 * self.notify.len() as u64 {
            if size != 8 || off % 8 != 0 {
                return None;
            }
            let h = ((off - regs::NOTIFY) / 8) as usize;
            let Some(n) = self.notify[h].pop_front() else { return Some(0) };
            let f = ((n >> regs::NOTE_FN_SHIFT) & 0xffff) as usize;
            let index = n & 0xffff_ffff;
            match (n >> regs::NOTE_KIND_SHIFT) & 0x7fff {
                regs::NOTE_DOORBELL => self.funcs[f].db_pending[index as usize] = false,
                regs::NOTE_REGISTER => self.funcs[f].reg_pending[(index / 4) as usize] = false,
                _ => {}
            }
            return Some(n);
        }
        if (regs::FN_CTRL..regs::FN_CTRL + regs::FN_CTRL_STRIDE * funcs).contains(&off) {
            let f = ((off - regs::FN_CTRL) / regs::FN_CTRL_STRIDE) as usize;
            let r = (off - regs::FN_CTRL) % regs::FN_CTRL_STRIDE;
            if size != 4 || r % 4 != 0 {
                return None;
            }
            let fun = &self.funcs[f];
            let v = match r {
                regs::FN_READY => u32::from(fun.ready),
                regs::FN_ADMIN_HART => fun.admin_hart,
                regs::FN_STATUS => {
                    let mut s = 0;
                    if self.present(f) {
                        s |= regs::FN_STATUS_PRESENT;
                    }
                    if self.memory_enabled(f) {
                        s |= regs::FN_STATUS_MEMORY;
                    }
                    if self.bus_master(f) {
                        s |= regs::FN_STATUS_BUS_MASTER;
                    }
                    let c = fun.cfg.msix_control();
                    if c & MSIX_ENABLE != 0 {
                        s |= regs::FN_STATUS_MSIX;
                    }
                    if c & MSIX_FUNCTION_MASK != 0 {
                        s |= regs::FN_STATUS_MSIX_MASKED;
                    }
                    s
                }
                _ => 0,
            };
            return Some(u64::from(v));
        }
        let steer_end = regs::STEER + 2 * self.steer.len() as u64;
        if (regs::STEER..steer_end).contains(&off) {
            if size != 2 || off % 2 != 0 {
                return None;
            }
            return Some(u64::from(self.steer[((off - regs::STEER) / 2) as usize]));
        }
        if (regs::BAR_SHADOW..regs::BAR_SHADOW + regs::BAR_SIZE * funcs).contains(&off) {
            let f = ((off - regs::BAR_SHADOW) / regs::BAR_SIZE) as usize;
            let o = ((off - regs::BAR_SHADOW) % regs::BAR_SIZE) as usize;
            if o + size as usize > regs::BAR_SIZE as usize {
                return None;
            }
            let mut v = 0u64;
            for i in 0..size as usize {
                v |= u64::from(self.funcs[f].shadow[o + i]) << (8 * i);
            }
            return Some(v);
        }
        None
    }

    /// Firmware write of the endpoint's registers.
    pub fn dpu_write(&mut self, off: u64, size: u8, v: u64, out: &mut Vec<Effect>) -> bool {
        let funcs = self.funcs.len() as u64;
        if off == regs::TOTAL_VFS {
            if size != 4 || self.id.total_vfs == 0 {
                return false;
            }
            self.offer_vfs(v as u16);
            return true;
        }
        if (regs::FN_CTRL..regs::FN_CTRL + regs::FN_CTRL_STRIDE * funcs).contains(&off) {
            let f = ((off - regs::FN_CTRL) / regs::FN_CTRL_STRIDE) as usize;
            let r = (off - regs::FN_CTRL) % regs::FN_CTRL_STRIDE;
            if size != 4 || r % 4 != 0 {
                return false;
            }
            match r {
                regs::FN_READY => self.funcs[f].ready = v & 1 != 0,
                regs::FN_ADMIN_HART => {
                    if v as usize >= self.notify.len() {
                        return false;
                    }
                    self.funcs[f].admin_hart = v as u32;
                }
                regs::FN_MSIX_TRIGGER => self.msix(f, v as u32, out),
                _ => return false,
            }
            return true;
        }
        let steer_end = regs::STEER + 2 * self.steer.len() as u64;
        if (regs::STEER..steer_end).contains(&off) {
            if size != 2 || off % 2 != 0 {
                return false;
            }
            let h = v as u16;
            if h != regs::STEER_ADMIN && usize::from(h) >= self.notify.len() {
                return false;
            }
            self.steer[((off - regs::STEER) / 2) as usize] = h;
            return true;
        }
        if (regs::BAR_SHADOW..regs::BAR_SHADOW + regs::BAR_SIZE * funcs).contains(&off) {
            let f = ((off - regs::BAR_SHADOW) / regs::BAR_SIZE) as usize;
            let o = (off - regs::BAR_SHADOW) % regs::BAR_SIZE;
            if o + u64::from(size) > regs::BAR_SIZE {
                return false;
            }
            let old = {
                let mut b = [0u8; 8];
                b[..size as usize].copy_from_slice(&self.funcs[f].shadow[o as usize..o as usize + size as usize]);
                u64::from_le_bytes(b)
            };
            let new = reg_write(old, 0, size, v);
            self.write_shadow(f, o, size, new);
            return true;
        }
        false
    }

    /// Queued notifications for a hart (statistics, tests).
    pub fn pending_notes(&self, hart: usize) -> usize {
        self.notify.get(hart).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        let id = Identity {
            vendor: 0x1dad,
            device: 0x0a01,
            vf_device: 0x0a02,
            bar_size: 0x4000,
            msix_vectors: 65,
            msix_table: 0x2000,
            msix_pba: 0x3000,
            link: (4, 16),
            max_payload: 256,
            total_vfs: 4,
        };
        let mut e = Endpoint::new(id, 17, 80);
        for f in e.funcs.iter_mut() {
            f.ready = true;
        }
        e
    }

    fn enable_pf(e: &mut Endpoint, out: &mut Vec<Effect>) {
        e.cfg_write(0, BAR0, 4, 0xf000_0000, out).unwrap();
        e.cfg_write(0, COMMAND, 2, u32::from(CMD_MEMORY | CMD_BUS_MASTER), out).unwrap();
    }

    #[test]
    fn doorbells_coalesce_per_register_and_follow_steering() {
        let mut e = ep();
        let mut out = Vec::new();
        enable_pf(&mut e, &mut out);
        // Steer SQ 1 tail (doorbell 2) of the PF to hart 17.
        assert!(e.dpu_write(regs::STEER + 2 * 2, 2, 17, &mut out));
        out.clear();
        for t in 1..=5 {
            e.bar_write(0, bar0::DOORBELL + 8, 4, t, &mut out);
        }
        assert_eq!(out, vec![Effect::Notify(17)], "five writes, one notification");
        let n = e.dpu_read(regs::NOTIFY + 8 * 17, 8).unwrap();
        assert_eq!(n, regs::note(regs::NOTE_DOORBELL, 0, 2));
        assert_eq!(e.dpu_read(regs::NOTIFY + 8 * 17, 8), Some(0));
        assert_eq!(e.dpu_read(regs::BAR_SHADOW + bar0::DOORBELL + 8, 4), Some(5), "latest tail in the shadow");
        // After the pop, a new write notifies again.
        e.bar_write(0, bar0::DOORBELL + 8, 4, 6, &mut out);
        assert_eq!(e.pending_notes(17), 1);
    }

    #[test]
    fn register_writes_notify_admin_hart() {
        let mut e = ep();
        let mut out = Vec::new();
        enable_pf(&mut e, &mut out);
        e.dpu_write(regs::FN_CTRL + regs::FN_ADMIN_HART, 4, 1, &mut out);
        out.clear();
        e.bar_write(0, 0x14, 4, 0x0046_0001, &mut out); // CC
        assert_eq!(out, vec![Effect::Notify(1)]);
        assert_eq!(e.dpu_read(regs::NOTIFY + 8, 8).unwrap(), regs::note(regs::NOTE_REGISTER, 0, 0x14));
        assert_eq!(e.bar_read(0, 0x14, 4), Some(0x0046_0001));
    }

    #[test]
    fn vfs_appear_with_vf_enable_and_decode_by_bar() {
        let mut e = ep();
        let mut out = Vec::new();
        enable_pf(&mut e, &mut out);
        assert!(!e.present(1));
        assert_eq!(e.cfg_read(1, 0, 2), Err(CfgError::NoFunction));
        e.cfg_write(0, EXT_SRIOV + SRIOV_NUM_VFS, 2, 3, &mut out).unwrap();
        e.cfg_write(0, EXT_SRIOV + SRIOV_VF_BAR0, 4, 0xe000_0000, &mut out).unwrap();
        out.clear();
        e.cfg_write(0, EXT_SRIOV + SRIOV_CTRL, 2, u32::from(SRIOV_VF_ENABLE | SRIOV_VF_MSE), &mut out).unwrap();
        assert_eq!(out, vec![Effect::Notify(0)], "PF admin hart learns about the VFs");
        assert!(e.present(3) && !e.present(4));
        assert_eq!(e.decode(0xe000_4010), Some((2, 0x10)));
        assert_eq!(e.decode(0xe000_c000), None, "beyond NumVFs");
        assert_eq!(e.decode(0xf000_0100), Some((0, 0x100)));
        // NumVFs is frozen while VF Enable is set.
        e.cfg_write(0, EXT_SRIOV + SRIOV_NUM_VFS, 2, 1, &mut out).unwrap();
        assert_eq!(e.num_vfs(), 3);
    }

    /// The firmware sets the VFs offered: the host reads them as TotalVFs
    /// and InitialVFs, and a NumVFs above them enables only that many.
    /// Above the maximum is clamped; while VF Enable is set nothing changes.
    #[test]
    fn firmware_sets_total_vfs_the_host_sees() {
        let mut e = ep();
        let mut out = Vec::new();
        enable_pf(&mut e, &mut out);
        assert_eq!(e.dpu_read(regs::TOTAL_VFS, 4), Some(4), "reset: the maximum");
        assert!(e.dpu_write(regs::TOTAL_VFS, 4, 2, &mut out));
        assert_eq!(e.cfg_read(0, EXT_SRIOV + SRIOV_TOTAL_VFS, 2), Ok(2));
        assert_eq!(e.cfg_read(0, EXT_SRIOV + SRIOV_INITIAL_VFS, 2), Ok(2));
        // The host cannot change it.
        e.cfg_write(0, EXT_SRIOV + SRIOV_TOTAL_VFS, 2, 4, &mut out).unwrap();
        assert_eq!(e.cfg_read(0, EXT_SRIOV + SRIOV_TOTAL_VFS, 2), Ok(2));
        e.cfg_write(0, EXT_SRIOV + SRIOV_NUM_VFS, 2, 3, &mut out).unwrap();
        e.cfg_write(0, EXT_SRIOV + SRIOV_CTRL, 2, u32::from(SRIOV_VF_ENABLE | SRIOV_VF_MSE), &mut out).unwrap();
        assert_eq!(e.num_vfs(), 2);
        assert!(e.present(2) && !e.present(3), "only the VFs offered appear");
        assert_eq!(e.dpu_read(regs::TOTAL_VFS, 4), Some(2 | u64::from(regs::TOTAL_VFS_VF_ENABLE)));
        // Frozen while VF Enable is set.
        assert!(e.dpu_write(regs::TOTAL_VFS, 4, 1, &mut out));
        assert_eq!(e.cfg_read(0, EXT_SRIOV + SRIOV_TOTAL_VFS, 2), Ok(2));
        assert_eq!(e.num_vfs(), 2);
        // Disabled: a value above the maximum is clamped to it.
        e.cfg_write(0, EXT_SRIOV + SRIOV_CTRL, 2, 0, &mut out).unwrap();
        assert!(e.dpu_write(regs::TOTAL_VFS, 4, 9, &mut out));
        assert_eq!(e.dpu_read(regs::TOTAL_VFS, 4), Some(4));
        assert_eq!(e.cfg_read(0, EXT_SRIOV + SRIOV_TOTAL_VFS, 2), Ok(4));
    }

    #[test]
    fn msix_masking_pends_and_unmask_delivers() {
        let mut e = ep();
        let mut out = Vec::new();
        enable_pf(&mut e, &mut out);
        e.cfg_write(0, CAP_MSIX + MSIX_CTRL, 2, u32::from(MSIX_ENABLE), &mut out).unwrap();
        // Vector 3: address/data, still masked.
        e.bar_write(0, bar0::MSIX_TABLE + 48, 4, 0xfee0_0000, &mut out);
        e.bar_write(0, bar0::MSIX_TABLE + 56, 4, 0x43, &mut out);
        out.clear();
        e.msix(0, 3, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.bar_read(0, bar0::MSIX_PBA, 8), Some(1 << 3), "pending bit set");
        e.bar_write(0, bar0::MSIX_TABLE + 60, 4, 0, &mut out); // unmask
        assert_eq!(out, vec![Effect::Msi { function: 0, vector: 3, addr: 0xfee0_0000, data: 0x43 }]);
        assert_eq!(e.bar_read(0, bar0::MSIX_PBA, 8), Some(0));
        // Without bus mastering nothing is sent.
        e.cfg_write(0, COMMAND, 2, u32::from(CMD_MEMORY), &mut out).unwrap();
        out.clear();
        e.msix(0, 3, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.stats.msix_dropped, 1);
    }

    #[test]
    fn bad_host_accesses_are_unsupported_requests() {
        let mut e = ep();
        let mut out = Vec::new();
        assert_eq!(e.bar_read(0, 0, 4), None, "memory space disabled");
        enable_pf(&mut e, &mut out);
        out.clear();
        assert_eq!(e.bar_read(0, 2, 4), None, "misaligned");
        e.bar_write(0, bar0::DOORBELL, 8, 1, &mut out);
        assert!(out.is_empty(), "8-byte doorbell write is dropped");
        assert_eq!(e.stats.unsupported_requests, 3);
    }
}
