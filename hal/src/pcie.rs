//! PCIe endpoint controller driver (layout: [`crate::regs::pcie`]).

use crate::memory_map::PCIE_BASE;
use crate::mmio;
use crate::regs::pcie as r;

/// A notification from the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// Doorbell `index` (2y = SQ y tail, 2y+1 = CQ y head) of `function`.
    Doorbell { function: u16, index: u16 },
    /// BAR0 register at byte `offset` written.
    Register { function: u16, offset: u16 },
    /// Function event (`r::EVENT_*`).
    Function { function: u16, event: u16 },
}

/// Pops the next notification for `hart`.
pub fn pop(hart: usize) -> Option<Note> {
    let v = mmio::read64(PCIE_BASE + r::NOTIFY as usize + 8 * hart);
    if v & r::NOTE_VALID == 0 {
        return None;
    }
    let function = ((v >> r::NOTE_FN_SHIFT) & 0xffff) as u16;
    let index = (v & 0xffff) as u16;
    Some(match (v >> r::NOTE_KIND_SHIFT) & 0x7fff {
        r::NOTE_DOORBELL => Note::Doorbell { function, index },
        r::NOTE_REGISTER => Note::Register { function, offset: index },
        _ => Note::Function { function, event: index },
    })
}

/// VFs currently enabled by the host.
pub fn num_vfs() -> u16 {
    mmio::read32(PCIE_BASE + r::NUM_VFS as usize) as u16
}

/// The VFs the SR-IOV capability offers the host (its TotalVFs), and
/// whether the host has VF Enable set ([`r::TOTAL_VFS`]).
pub fn offered_vfs() -> (u16, bool) {
    let v = mmio::read32(PCIE_BASE + r::TOTAL_VFS as usize);
    (v as u16, v & r::TOTAL_VFS_VF_ENABLE != 0)
}

/// Sets the SR-IOV capability's TotalVFs and InitialVFs to `n` (clamped
/// to the endpoint's maximum; ignored while the host has VF Enable set).
pub fn offer_vfs(n: u16) {
    mmio::write32(PCIE_BASE + r::TOTAL_VFS as usize, u32::from(n));
}

/// Functions the endpoint has (PF + TotalVFs).
pub fn functions() -> u16 {
    (mmio::read32(PCIE_BASE + r::INFO as usize) >> 16) as u16
}

fn fn_reg(f: u16, reg: u64) -> usize {
    PCIE_BASE + (r::FN_CTRL + r::FN_CTRL_STRIDE * u64::from(f) + reg) as usize
}

/// Marks function `f` initialized (the host's config accesses succeed).
pub fn set_ready(f: u16, ready: bool) {
    mmio::write32(fn_reg(f, r::FN_READY), u32::from(ready));
}

/// Routes register-write and function events of `f` to `hart`.
pub fn set_admin_hart(f: u16, hart: usize) {
    mmio::write32(fn_reg(f, r::FN_ADMIN_HART), hart as u32);
}

/// Function state (`r::FN_STATUS_*`).
pub fn status(f: u16) -> u32 {
    mmio::read32(fn_reg(f, r::FN_STATUS))
}

/// Sends MSI-X `vector` of `f` (pended by the endpoint while masked).
pub fn msix(f: u16, vector: u16) {
    mmio::write32(fn_reg(f, r::FN_MSIX_TRIGGER), u32::from(vector));
}

/// Steers doorbell `index` of `f` to `hart` (None: the admin hart).
pub fn steer(f: u16, index: u16, hart: Option<usize>) {
    let addr = PCIE_BASE + (r::STEER + 2 * (u64::from(f) * r::DOORBELLS + u64::from(index))) as usize;
    let v = hart.map_or(r::STEER_ADMIN, |h| h as u16);
    mmio::write16(addr, v);
}

fn shadow(f: u16, off: u64) -> usize {
    PCIE_BASE + (r::BAR_SHADOW + r::BAR_SIZE * u64::from(f) + off) as usize
}

/// Reads a u32 of function `f`'s BAR0 shadow.
pub fn bar_read32(f: u16, off: u64) -> u32 {
    mmio::read32(shadow(f, off))
}

/// Writes a u32 of function `f`'s BAR0 shadow (what the host reads).
pub fn bar_write32(f: u16, off: u64, v: u32) {
    mmio::write32(shadow(f, off), v);
}

pub fn bar_read64(f: u16, off: u64) -> u64 {
    mmio::read64(shadow(f, off))
}

pub fn bar_write64(f: u16, off: u64, v: u64) {
    mmio::write64(shadow(f, off), v);
}

/// Reads doorbell `index` of `f` (the last value the host wrote).
pub fn doorbell(f: u16, index: u16) -> u32 {
    bar_read32(f, crate::regs::bar0::DOORBELL + 4 * u64::from(index))
}
