//! Physical memory of the chip: RAM regions (boot ROM, cluster SMEMs, DDR)
//! backed sparsely by 4 KiB pages allocated on first touch.
//!
//! Pages are boxed and never freed or moved while the machine lives, so harts
//! may cache raw pointers to them in their software TLBs (the ISS memory fast
//! path). Device windows are not memory: the [`crate::bus::Bus`] routes them.
//!
//! Memory also keeps the memory side of instruction-cache coherence: which
//! pages hold decoded code ([`Memory::mark_code`], counted by
//! [`Memory::code_epoch`]) and which byte ranges of such pages were written
//! since the decoded-instruction cache (`cpu::code::CodeCache`) last looked
//! ([`Memory::note_code_write`], [`Memory::take_code_writes`]). Memory does
//! not know that cache; the cache acts on the record before it runs code.

use rustc_hash::FxHashMap;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// What a RAM region is; decides its timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    BootRom,
    Smem { cluster: u32 },
    Ddr,
}

/// A RAM region of the memory map.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
    pub base: u64,
    pub size: u64,
    pub kind: RegionKind,
    /// Index in [`Memory::regions`]; also the timing-table index.
    pub id: u8,
    pub writable: bool,
}

impl Region {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }
}

/// One allocated page.
pub struct Page {
    pub data: Box<[u8; PAGE_SIZE as usize]>,
    pub region: u8,
    /// Set once an instruction was decoded from this page
    /// ([`Memory::mark_code`]): stores must then take the slow path and
    /// record what they wrote ([`Memory::note_code_write`]).
    pub code: bool,
}

/// Sparse physical memory.
pub struct Memory {
    regions: Vec<Region>,
    index: FxHashMap<u64, u32>,
    pages: Vec<Page>,
    /// Bumped whenever a page becomes a code page (harts flush their write
    /// TLBs, which must not hold code pages, when they see a new epoch).
    code_epoch: u64,
    /// Ranges `(addr, len)` written in code pages and not yet taken by the
    /// decoded-instruction cache.
    code_writes: Vec<(u64, u64)>,
}

impl Memory {
    pub fn new(regions: Vec<Region>) -> Memory {
        Memory { regions, index: FxHashMap::default(), pages: Vec::new(), code_epoch: 0, code_writes: Vec::new() }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// RAM region containing `addr`.
    pub fn region_of(&self, addr: u64) -> Option<&Region> {
        self.regions.iter().find(|r| r.contains(addr))
    }

    /// Page number -> page slot, allocating a zero page inside a RAM region.
    pub fn page_slot(&mut self, vpn: u64) -> Option<u32> {
        if let Some(&s) = self.index.get(&vpn) {
            return Some(s);
        }
        let addr = vpn << PAGE_SHIFT;
        let region = self.region_of(addr)?.id;
        let slot = self.pages.len() as u32;
        self.pages.push(Page { data: Box::new([0; PAGE_SIZE as usize]), region, code: false });
        self.index.insert(vpn, slot);
        Some(slot)
    }

    pub fn page(&self, slot: u32) -> &Page {
        &self.pages[slot as usize]
    }

    pub fn page_mut(&mut self, slot: u32) -> &mut Page {
        &mut self.pages[slot as usize]
    }

    /// Marks page `slot` as holding decoded instructions (from now on,
    /// writes to it are recorded); bumps the code epoch if it was not.
    pub fn mark_code(&mut self, slot: u32) {
        let page = &mut self.pages[slot as usize];
        if !page.code {
            page.code = true;
            self.code_epoch += 1;
        }
    }

    /// How many times a page became a code page (write TLBs taken before
    /// the last change may map a code page).
    #[inline(always)]
    pub fn code_epoch(&self) -> u64 {
        self.code_epoch
    }

    /// Records that `[addr, addr + len)`, in code pages, was written: the
    /// decoded instructions it overlaps are stale. Writers that bypass
    /// [`Memory::write_bytes`] (a hart's store through a page pointer)
    /// call this themselves.
    pub fn note_code_write(&mut self, addr: u64, len: u64) {
        if len != 0 {
            self.code_writes.push((addr, len));
        }
    }

    /// Whether code was written since [`Memory::take_code_writes`].
    #[inline(always)]
    pub fn code_written(&self) -> bool {
        !self.code_writes.is_empty()
    }

    /// The code writes recorded since the last call, oldest first.
    pub fn take_code_writes(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.code_writes)
    }

    /// Every address where `needle` (non-empty) starts in the RAM backed
    /// so far, ascending (a match may straddle two backed pages). For
    /// audits: where secrets are left in card memory.
    pub fn find(&self, needle: &[u8]) -> Vec<u64> {
        let mut out = Vec::new();
        if needle.is_empty() {
            return out;
        }
        let mut vpns: Vec<u64> = self.index.keys().copied().collect();
        vpns.sort_unstable();
        for &vpn in &vpns {
            let page = &self.pages[self.index[&vpn] as usize].data[..];
            // The page, followed by the start of the next one when backed.
            let mut hay = page.to_vec();
            if let Some(&next) = self.index.get(&(vpn + 1)) {
                hay.extend_from_slice(&self.pages[next as usize].data[..needle.len() - 1]);
            }
            let base = vpn << PAGE_SHIFT;
            for (i, w) in hay.windows(needle.len()).enumerate().take(PAGE_SIZE as usize) {
                if w == needle {
                    out.push(base + i as u64);
                }
            }
        }
        out
    }

    /// Number of pages backed so far (for memory statistics).
    pub fn pages_allocated(&self) -> usize {
        self.pages.len()
    }

    /// Copies bytes out of RAM (debugger, loader checks). `None` if any byte
    /// is outside RAM.
    pub fn read_bytes(&mut self, addr: u64, out: &mut [u8]) -> Option<()> {
        let mut done = 0usize;
        while done < out.len() {
            let a = addr.checked_add(done as u64)?;
            let off = (a & PAGE_MASK) as usize;
            let n = (PAGE_SIZE as usize - off).min(out.len() - done);
            let slot = self.page_slot(a >> PAGE_SHIFT)?;
            out[done..done + n].copy_from_slice(&self.pages[slot as usize].data[off..off + n]);
            done += n;
        }
        Some(())
    }

    /// Copies bytes into RAM regardless of write protection (loader,
    /// debugger, DMA, a hart's store across pages). Bytes written into code
    /// pages are recorded ([`Memory::note_code_write`]). Returns the page
    /// slots touched.
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Option<Vec<u32>> {
        let mut done = 0usize;
        let mut touched = Vec::new();
        while done < data.len() {
            let a = addr.checked_add(done as u64)?;
            let off = (a & PAGE_MASK) as usize;
            let n = (PAGE_SIZE as usize - off).min(data.len() - done);
            let slot = self.page_slot(a >> PAGE_SHIFT)?;
            let page = &mut self.pages[slot as usize];
            page.data[off..off + n].copy_from_slice(&data[done..done + n]);
            if page.code {
                self.note_code_write(a, n as u64);
            }
            touched.push(slot);
            done += n;
        }
        Some(touched)
    }

    /// Whether `[addr, addr + len)` lies inside one RAM region.
    pub fn range_is_ram(&self, addr: u64, len: u64) -> bool {
        match self.region_of(addr) {
            Some(r) => len == 0 || (addr - r.base).checked_add(len).is_some_and(|end| end <= r.size),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Memory {
        Memory::new(vec![
            Region { name: "rom".into(), base: 0x1000, size: 0x1000, kind: RegionKind::BootRom, id: 0, writable: false },
            Region { name: "ddr".into(), base: 0x4000_0000, size: 1 << 33, kind: RegionKind::Ddr, id: 1, writable: true },
        ])
    }

    /// `find` reports every start, including one whose bytes straddle
    /// two backed pages, and nothing in pages never written.
    #[test]
    fn find_reports_every_copy_even_across_pages() {
        let mut m = mem();
        let key = [0xde, 0xad, 0xbe, 0xef, 0x01];
        m.write_bytes(0x4000_0010, &key).unwrap();
        m.write_bytes(0x4000_1ffe, &key).unwrap();
        m.write_bytes(0x4000_5000, &[0xde, 0xad, 0xbe, 0xef]).unwrap();
        assert_eq!(m.find(&key), vec![0x4000_0010, 0x4000_1ffe]);
        assert_eq!(m.find(&[0xde, 0xad, 0xbe, 0xef]), vec![0x4000_0010, 0x4000_1ffe, 0x4000_5000]);
        assert!(m.find(&[1, 2, 3, 4]).is_empty());
    }

    #[test]
    fn sparse_pages_allocate_on_touch() {
        let mut m = mem();
        assert_eq!(m.pages_allocated(), 0);
        m.write_bytes(0x4000_0ffe, &[1, 2, 3, 4]).unwrap();
        assert_eq!(m.pages_allocated(), 2);
        let mut b = [0u8; 4];
        m.read_bytes(0x4000_0ffe, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        // Far away in DDR: still cheap.
        m.write_bytes(0x2_0000_0000, &[9]).unwrap();
        assert_eq!(m.pages_allocated(), 3);
    }

    #[test]
    fn outside_ram_is_none() {
        let mut m = mem();
        assert!(m.write_bytes(0x3000, &[1]).is_none());
        assert!(!m.range_is_ram(0x1ff0, 0x20));
        assert!(m.range_is_ram(0x1ff0, 0x10));
    }
}
