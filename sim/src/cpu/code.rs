//! The decoded-instruction cache and the compiled tier: one component,
//! [`CodeCache`], owned by the [`crate::Machine`] and handed to
//! [`super::Hart::run`] next to the bus.
//!
//! It holds, per code page, the decoded instructions ([`DecodedPage`]) and
//! the straight-line bodies built from them (`super::exec`), the bodies
//! dropped while a hart may still run one (the graveyard), and the
//! Cranelift compiler of hot bodies (`super::jit`).
//!
//! Coherence: the cache never sees a write happen. Memory records every
//! write into a page an instruction was decoded from
//! ([`crate::mem::Memory::note_code_write`]: hart stores and AMOs, DMA and
//! device writes, the loader, the debugger, a warm restart's new image);
//! [`CodeCache::sync`] takes that record and drops exactly the decoded
//! instructions the writes overlapped, and the bodies of their pages.
//! Harts call it at the start of each run, and a write recorded during a
//! run (a hart's own store, a DMA that store started) makes the hart look
//! its code page up again, which syncs first; so no hart ever runs a stale
//! decoded instruction, and the hot path pays nothing. A body already
//! running finishes with the instructions it was built from, as before. `fence.i` has nothing left
//! to drop. This keeps `bus` and `mem` free of any `cpu` type.

use super::exec::{Body, BodyOp};
use super::jit::{Jit, JitStats};
use crate::isa::{decode, Kind, Op};
use crate::mem::{Memory, PAGE_MASK, PAGE_SHIFT};
use rustc_hash::FxHashMap;

/// The decoded instructions of one 4 KiB code page: one slot per 2-byte
/// offset, plus the straight-line bodies the executor built from them
/// (see `cpu::exec`).
pub struct DecodedPage {
    pub(crate) ops: [Op; 2048],
    /// Per slot: the header of the body that starts there (one of
    /// `bodies`), null if not looked at yet, [`NO_BODY`] if none can.
    pub(crate) body_of: [*mut BodyOp; 2048],
    /// Boxed: a body keeps its address while the vector grows (`body_of`
    /// and the compiler's queue point at bodies).
    pub(crate) bodies: Vec<Box<Body>>,
}

/// `DecodedPage::body_of` value of a slot where no body can start (never
/// dereferenced).
pub(crate) const NO_BODY: *mut BodyOp = std::ptr::dangling_mut();

/// `DecodedPage::body_of` value of a slot not looked at yet.
const NOT_LOOKED_AT: *mut BodyOp = std::ptr::null_mut();

impl DecodedPage {
    /// Drops the bodies (their instructions changed). They go to `graveyard`:
    /// a hart may be running one of them right now.
    fn forget_bodies(&mut self, graveyard: &mut Vec<Box<Body>>) {
        if !self.bodies.is_empty() {
            graveyard.append(&mut self.bodies);
        }
        self.body_of.fill(NOT_LOOKED_AT);
    }
}

/// Decoded pages, their bodies and the compiler of hot bodies.
#[derive(Default)]
pub struct CodeCache {
    /// Decoded pages by page number; boxed and never freed (harts keep
    /// pointers to them).
    decoded: FxHashMap<u64, Box<DecodedPage>>,
    /// Bodies dropped by invalidation, freed when no hart runs (`reap`).
    graveyard: Vec<Box<Body>>,
    /// Compiler of hot bodies (`None`: interpreter only).
    pub jit: Option<Box<Jit>>,
    /// Bumped whenever bodies are dropped (harts' saved resume points in
    /// bodies are then void).
    pub(crate) body_gen: u64,
}

impl CodeCache {
    /// An empty cache; `jit` compiles hot bodies (`None`: interpreter only).
    pub fn new(jit: Option<Box<Jit>>) -> CodeCache {
        CodeCache { jit, ..CodeCache::default() }
    }

    /// What the compiling tier did, if there is one.
    pub fn jit_stats(&self) -> Option<JitStats> {
        self.jit.as_ref().map(|j| j.stats)
    }

    /// Drops what the code writes recorded in `mem` made stale (see the
    /// module docs).
    #[inline(always)]
    pub fn sync(&mut self, mem: &mut Memory) {
        if mem.code_written() {
            self.apply_code_writes(mem);
        }
    }

    #[cold]
    #[inline(never)]
    fn apply_code_writes(&mut self, mem: &mut Memory) {
        for (addr, len) in mem.take_code_writes() {
            self.invalidate(addr, len);
        }
    }

    /// Drops decoded instructions overlapping a write to `[addr, addr+len)`,
    /// and the bodies of every page where it dropped one.
    fn invalidate(&mut self, addr: u64, len: u64) {
        // An instruction starting up to 2 bytes before the write overlaps it.
        let end = addr.saturating_add(len);
        let mut a = addr.saturating_sub(2) & !1;
        while a < end {
            let stop = end.min((a | PAGE_MASK).saturating_add(1));
            if let Some(p) = self.decoded.get_mut(&(a >> PAGE_SHIFT)) {
                let mut hit = false;
                while a < stop {
                    let slot = &mut p.ops[((a & PAGE_MASK) >> 1) as usize];
                    // Bodies hold decoded instructions only: a write to
                    // bytes never decoded (data next to code) leaves them
                    // alone.
                    if slot.kind != Kind::NotDecoded {
                        *slot = Op::NOT_DECODED;
                        hit = true;
                    }
                    a += 2;
                }
                if hit {
                    p.forget_bodies(&mut self.graveyard);
                    self.body_gen += 1;
                }
            }
            a = stop.max(a);
        }
    }

    /// Decoded page for code page `vpn` (created on first use, which makes
    /// it a code page of `mem`). `None` if the page is not RAM
    /// (instruction access fault).
    pub(crate) fn page(&mut self, mem: &mut Memory, vpn: u64) -> Option<*mut DecodedPage> {
        if let Some(p) = self.decoded.get_mut(&vpn) {
            return Some(&mut **p);
        }
        let slot = mem.page_slot(vpn)?;
        mem.mark_code(slot);
        let mut b = Box::new(DecodedPage {
            ops: [Op::NOT_DECODED; 2048],
            body_of: [NOT_LOOKED_AT; 2048],
            bodies: Vec::new(),
        });
        let ptr: *mut DecodedPage = &mut *b;
        self.decoded.insert(vpn, b);
        Some(ptr)
    }

    /// Decoded instructions held (all pages), after the pending code
    /// writes in `mem`: for tests of what a write or a `fence.i` keeps.
    pub fn decoded_instructions(&mut self, mem: &mut Memory) -> usize {
        self.sync(mem);
        self.decoded.values().map(|p| p.ops.iter().filter(|o| o.kind != Kind::NotDecoded).count()).sum()
    }

    /// Between two hart runs (no body is running): compiles the queued hot
    /// bodies when it is time, then frees dropped bodies (queued ones are
    /// compiled first, while they are surely alive).
    #[inline]
    pub(crate) fn reap(&mut self) {
        if let Some(jit) = self.jit.as_deref_mut() {
            jit.tick();
        }
        if !self.graveyard.is_empty() {
            if let Some(jit) = self.jit.as_deref_mut() {
                jit.flush();
            }
            self.graveyard.clear();
        }
    }
}

/// Reads and decodes the instruction at `pc`; `Err(addr)` if a byte of it
/// is not RAM. An instruction straddling into the next page makes that
/// page a code page too, so writes to it are recorded.
pub(crate) fn fetch_decode(mem: &mut Memory, pc: u64) -> Result<Op, u64> {
    let mut lo = [0u8; 2];
    mem.read_bytes(pc, &mut lo).ok_or(pc)?;
    let lo = u16::from_le_bytes(lo);
    if lo & 3 != 3 {
        return Ok(decode(u32::from(lo)));
    }
    let mut hi = [0u8; 2];
    mem.read_bytes(pc + 2, &mut hi).ok_or(pc + 2)?;
    if (pc + 2) & PAGE_MASK == 0 {
        if let Some(slot) = mem.page_slot((pc + 2) >> PAGE_SHIFT) {
            mem.mark_code(slot);
        }
    }
    Ok(decode(u32::from(lo) | u32::from(u16::from_le_bytes(hi)) << 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{Region, RegionKind};

    const BASE: u64 = 0x8000_0000;
    /// `addi a0, a0, 1`.
    const ADDI: u32 = 0x0015_0513;

    fn mem() -> Memory {
        let ddr = Region { name: "ddr".into(), base: BASE, size: 1 << 20, kind: RegionKind::Ddr, id: 0, writable: true };
        Memory::new(vec![ddr])
    }

    /// Decodes the `n` instructions at `BASE` into `cache`, as the executor does.
    fn decode_n(cache: &mut CodeCache, mem: &mut Memory, n: u64) {
        let page = cache.page(mem, BASE >> PAGE_SHIFT).unwrap();
        for i in 0..n {
            let op = fetch_decode(mem, BASE + 4 * i).unwrap();
            // SAFETY: `page` is a live decoded page; slot index < 2048.
            unsafe { (*page).ops[(2 * i) as usize] = op };
        }
    }

    /// A write through memory (DMA, loader, debugger: `write_bytes`) into
    /// a code page drops exactly the decoded instructions it overlaps, an
    /// instruction starting 2 bytes before it included; a write to bytes
    /// never decoded, or to a page never decoded from, drops nothing.
    #[test]
    fn writes_recorded_by_memory_drop_what_they_overlap() {
        let mut m = mem();
        let code: Vec<u8> = (0..8).flat_map(|_| ADDI.to_le_bytes()).collect();
        m.write_bytes(BASE, &code).unwrap();
        assert!(!m.code_written(), "not a code page yet: nothing recorded");
        let mut c = CodeCache::new(None);
        decode_n(&mut c, &mut m, 8);
        assert_eq!(c.decoded_instructions(&mut m), 8);
        let epoch = m.code_epoch();
        // Two bytes into the third instruction: only it goes.
        m.write_bytes(BASE + 10, &[0x13, 0x05]).unwrap();
        assert!(m.code_written());
        let gen = c.body_gen;
        c.sync(&mut m);
        assert!(!m.code_written(), "sync takes the record");
        assert_eq!(c.decoded_instructions(&mut m), 7);
        assert_eq!(c.body_gen, gen + 1, "bodies of the page dropped");
        // Bytes after the decoded code, and another page: nothing dropped.
        m.write_bytes(BASE + 64, &[0; 16]).unwrap();
        m.write_bytes(BASE + 0x2000, &[0; 16]).unwrap();
        c.sync(&mut m);
        assert_eq!(c.decoded_instructions(&mut m), 7);
        assert_eq!(c.body_gen, gen + 1, "bodies kept");
        // A hart's own store (through a page pointer) reports itself.
        m.note_code_write(BASE + 28, 4);
        assert_eq!(c.decoded_instructions(&mut m), 6);
        assert_eq!(m.code_epoch(), epoch, "no new code page");
    }

    /// An instruction straddling two pages makes the second a code page:
    /// a write there drops the instruction.
    #[test]
    fn a_straddling_instruction_is_dropped_by_a_write_to_its_second_page() {
        let mut m = mem();
        let at = BASE + 0x1000 - 2;
        m.write_bytes(at, &ADDI.to_le_bytes()).unwrap();
        let mut c = CodeCache::new(None);
        let page = c.page(&mut m, at >> PAGE_SHIFT).unwrap();
        let op = fetch_decode(&mut m, at).unwrap();
        assert_eq!(op.len, 4);
        // SAFETY: live page, last slot.
        unsafe { (*page).ops[2047] = op };
        m.write_bytes(BASE + 0x1000, &[0x13, 0x05]).unwrap();
        assert_eq!(c.decoded_instructions(&mut m), 0);
    }
}
