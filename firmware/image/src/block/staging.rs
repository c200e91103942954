//! A data-plane core's staging pages: 4 KiB pages in DDR that hold data
//! on its way between the host and a device (write data before it is
//! sent to a remote target, ciphertext, erasure-coding fragments). Moved
//! by DMA or an accelerator, never by the CPU; one owner per page at a
//! time, handed over with the I/O.

use dpu_hal::dma::{Channel, Desc};
use dpu_hal::regs::dma as dr;

/// Bytes per staging page.
pub const PAGE: usize = 4096;
/// Pages per core: 2 MiB, 32 I/Os of 64 KiB or 512 of 4 KiB in flight.
pub const POOL_PAGES: usize = 512;
/// Most pages one I/O holds (128 KiB: MDTS).
pub const MAX_IO_PAGES: usize = 32;

/// The pages of one buffer, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    idx: [u16; MAX_IO_PAGES],
    n: u8,
}

impl Pages {
    pub const NONE: Pages = Pages { idx: [0; MAX_IO_PAGES], n: 0 };

    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Forgets the pages (they belong to someone else; nothing is
    /// freed): only the count is reset, not the ~64-byte index list.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    pub fn page(&self, k: usize) -> u16 {
        self.idx[k]
    }

    /// A buffer of one page: page `k` of this one (still owned here).
    pub fn single(&self, k: usize) -> Pages {
        let mut p = Pages::NONE;
        p.idx[0] = self.idx[k];
        p.n = 1;
        p
    }
}

pub struct Pool {
    bytes: Option<&'static mut [u8]>,
    free: [u16; POOL_PAGES],
    nfree: usize,
}

impl Pool {
    pub const EMPTY: Pool = Pool { bytes: None, free: [0; POOL_PAGES], nfree: 0 };

    /// Allocates the pages in DDR; false when out of memory.
    pub fn start(&mut self) -> bool {
        let Some(b) = dpu_rt::alloc::ddr_bytes(POOL_PAGES * PAGE, PAGE) else { return false };
        self.bytes = Some(b);
        for (i, p) in self.free.iter_mut().enumerate() {
            *p = i as u16;
        }
        self.nfree = POOL_PAGES;
        true
    }

    /// Pages for `len` bytes, or `None` if not enough are free now.
    pub fn alloc(&mut self, len: usize) -> Option<Pages> {
        let n = len.div_ceil(PAGE);
        if n > MAX_IO_PAGES || n > self.nfree {
            return None;
        }
        let mut p = Pages::NONE;
        for k in 0..n {
            self.nfree -= 1;
            p.idx[k] = self.free[self.nfree];
        }
        p.n = n as u8;
        Some(p)
    }

    /// Like [`alloc`](Pool::alloc), into `out` in place (an I/O context's
    /// own `Pages`: no ~70-byte value made and copied); false, `out`
    /// untouched, if the pages are not there.
    pub fn alloc_into(&mut self, len: usize, out: &mut Pages) -> bool {
        let n = len.div_ceil(PAGE);
        if n > MAX_IO_PAGES || n > self.nfree {
            return false;
        }
        for k in 0..n {
            self.nfree -= 1;
            out.idx[k] = self.free[self.nfree];
        }
        out.n = n as u8;
        true
    }

    /// Gives `p`'s pages back (and empties it).
    pub fn free(&mut self, p: &mut Pages) {
        for k in 0..p.len() {
            self.free[self.nfree] = p.idx[k];
            self.nfree += 1;
        }
        p.n = 0;
    }

    /// Free pages.
    pub fn available(&self) -> usize {
        self.nfree
    }

    /// DPU address of page `page`.
    pub fn addr(&self, page: u16) -> u64 {
        self.bytes.as_deref().map_or(0, |b| b.as_ptr() as u64) + u64::from(page) * PAGE as u64
    }

    /// The first `len` bytes of page `page`.
    pub fn bytes(&self, page: u16, len: usize) -> &[u8] {
        let at = usize::from(page) * PAGE;
        self.bytes.as_deref().map_or(&[][..], |b| &b[at..at + len.min(PAGE)])
    }

    /// Page `page`, to fill.
    pub fn bytes_mut(&mut self, page: u16) -> &mut [u8] {
        let at = usize::from(page) * PAGE;
        self.bytes.as_deref_mut().map_or(&mut [][..], |b| &mut b[at..at + PAGE])
    }

    /// Calls `f(host address, staging address, bytes, offset)` for data
    /// laid out as the host segments `segs` (in transfer order) and as
    /// `p` from its first byte, split at segment and page boundaries: the
    /// pieces of a DMA between the host and staging.
    pub fn pieces(&self, p: &Pages, segs: &[(u64, u32)], mut f: impl FnMut(u64, u64, u32, usize)) {
        let mut pos = 0usize;
        for &(addr, len) in segs {
            let mut done = 0usize;
            while done < len as usize {
                let at = pos + done;
                let take = (PAGE - at % PAGE).min(len as usize - done);
                f(addr + done as u64, self.addr(p.page(at / PAGE)) + (at % PAGE) as u64, take as u32, at);
                done += take;
            }
            pos += len as usize;
        }
    }

    /// One DMA chain moving an I/O's data between host segments `segs` of
    /// `function` and the staging pages `p` (host -> staging when
    /// `fetch`, else staging -> host), split as [`pieces`](Self::pieces)
    /// does, the last descriptor ending the chain. False, with nothing
    /// pushed, when `chan` lacks room or there is nothing to move.
    pub fn push_host_chain(&self, chan: &mut Channel, p: &Pages, segs: &[(u64, u32)], function: u16, fetch: bool, cookie: u32) -> bool {
        let mut n = 0u32;
        self.pieces(p, segs, |_, _, _, _| n += 1);
        if n == 0 || chan.space() < n {
            return false;
        }
        let op = if fetch { dr::OP_H2D } else { dr::OP_D2H };
        let mut k = 0;
        self.pieces(p, segs, |host, local, len, _| {
            k += 1;
            let flags = if k == n { dr::FLAG_END } else { 0 };
            chan.push(&Desc { host, local, len, function, op, flags, msix: 0, cookie });
        });
        true
    }

    /// `len` bytes of `p` from byte `offset` as DPU memory segments (one
    /// per page touched), into `out`; returns how many.
    pub fn segments(&self, p: &Pages, offset: usize, len: usize, out: &mut [(u64, u32)]) -> usize {
        let (mut pos, end, mut n) = (offset, offset + len, 0);
        while pos < end && n < out.len() && pos / PAGE < p.len() {
            let take = (PAGE - pos % PAGE).min(end - pos);
            out[n] = (self.addr(p.idx[pos / PAGE]) + (pos % PAGE) as u64, take as u32);
            n += 1;
            pos += take;
        }
        n
    }
}
