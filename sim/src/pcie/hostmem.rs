//! Host physical memory (sparse) and the IOMMU-like access windows: a
//! function's DMA may only touch host pages the host granted to it (as the
//! host's IOMMU would after `dma_map`). A violation is refused and reported
//! in the DMA completion; nothing is written.

use crate::mem::{Memory, Region, RegionKind, PAGE_SHIFT, PAGE_SIZE};
use rustc_hash::FxHashMap;

/// Host DRAM size modeled (sparse: only touched pages cost memory).
pub const HOST_DRAM: u64 = 64 << 30;

pub struct HostMemory {
    pub mem: Memory,
    /// (function, page) -> grant count.
    grants: FxHashMap<(u16, u64), u32>,
    /// DMA accesses refused (statistics).
    pub denied: u64,
}

impl Default for HostMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl HostMemory {
    pub fn new() -> HostMemory {
        let region = Region { name: "host".into(), base: 0, size: HOST_DRAM, kind: RegionKind::Ddr, id: 0, writable: true };
        HostMemory { mem: Memory::new(vec![region]), grants: FxHashMap::default(), denied: 0 }
    }

    fn pages(addr: u64, len: u64) -> impl Iterator<Item = u64> {
        let first = addr >> PAGE_SHIFT;
        let last = (addr + len.max(1) - 1) >> PAGE_SHIFT;
        first..=last
    }

    /// Lets `function` DMA to/from `[addr, addr+len)` (page granular, counted).
    pub fn grant(&mut self, function: u16, addr: u64, len: u64) {
        for p in Self::pages(addr, len) {
            *self.grants.entry((function, p)).or_insert(0) += 1;
        }
    }

    /// Withdraws one grant of `[addr, addr+len)` from `function`.
    pub fn revoke(&mut self, function: u16, addr: u64, len: u64) {
        for p in Self::pages(addr, len) {
            if let Some(c) = self.grants.get_mut(&(function, p)) {
                *c -= 1;
                if *c == 0 {
                    self.grants.remove(&(function, p));
                }
            }
        }
    }

    /// Withdraws every grant of `function` (function reset).
    pub fn revoke_all(&mut self, function: u16) {
        self.grants.retain(|(f, _), _| *f != function);
    }

    /// Whether `function` may access `[addr, addr+len)`.
    pub fn allowed(&self, function: u16, addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some_and(|e| e <= HOST_DRAM)
            && Self::pages(addr, len).all(|p| self.grants.contains_key(&(function, p)))
    }

    pub fn read(&mut self, addr: u64, out: &mut [u8]) -> bool {
        self.mem.read_bytes(addr, out).is_some()
    }

    pub fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        self.mem.write_bytes(addr, data).is_some()
    }

    pub fn read_u64(&mut self, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(addr, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write_u32(&mut self, addr: u64, v: u32) {
        self.write(addr, &v.to_le_bytes());
    }

    pub const PAGE: u64 = PAGE_SIZE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_per_function_and_counted() {
        let mut h = HostMemory::new();
        h.grant(1, 0x10_0000, 0x2000);
        assert!(h.allowed(1, 0x10_0800, 0x1000));
        assert!(!h.allowed(2, 0x10_0800, 16), "another function");
        assert!(!h.allowed(1, 0x10_1800, 0x1000), "runs past the grant");
        h.grant(1, 0x10_0000, 16);
        h.revoke(1, 0x10_0000, 0x2000);
        assert!(h.allowed(1, 0x10_0000, 16), "second grant of page 0 remains");
        assert!(!h.allowed(1, 0x10_1000, 16));
        h.revoke_all(1);
        assert!(!h.allowed(1, 0x10_0000, 16));
        assert!(!h.allowed(1, u64::MAX - 4, 16), "wrapping range");
    }
}
