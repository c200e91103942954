//! In-memory namespace storage of a target model: sparse 4 KiB pages
//! (unwritten blocks read as zeros, or as the verify pattern of a
//! namespace with `fill = "pattern"`), so a 64 GiB namespace costs only
//! what the workload touches.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

const PAGE: u64 = 4096;

/// Verify pattern generation (`crate::host::workload::fill_sector`) of
/// the unwritten blocks of a patterned namespace: a disk image that was
/// there before power-on, for a boot host to read and check.
pub const FILL_GEN: u32 = 1;
/// Verify pattern tag of those blocks.
pub const FILL_TAG: u32 = 0xb007_d15c;

pub struct Namespace {
    pub blocks: u64,
    pub block_shift: u8,
    /// Unwritten blocks hold the verify pattern (not zeros).
    patterned: bool,
    pages: FxHashMap<u64, Box<[u8; PAGE as usize]>>,
    /// Of a patterned namespace: page ranges (start -> end, exclusive,
    /// disjoint) zeroed as a whole, held by no page. A page in `pages`
    /// overrides them.
    zeroed: BTreeMap<u64, u64>,
}

impl Namespace {
    pub fn new(bytes: u64, block_size: u32) -> Namespace {
        Namespace {
            blocks: bytes / u64::from(block_size),
            block_shift: block_size.trailing_zeros() as u8,
            patterned: false,
            pages: FxHashMap::default(),
            zeroed: BTreeMap::new(),
        }
    }

    /// A namespace whose unwritten blocks hold the verify pattern of
    /// ([`FILL_GEN`], [`FILL_TAG`]).
    pub fn patterned(bytes: u64, block_size: u32) -> Namespace {
        Namespace { patterned: true, ..Namespace::new(bytes, block_size) }
    }

    /// What page `pg` holds before anything is written to it.
    fn initial(&self, pg: u64) -> Box<[u8; PAGE as usize]> {
        let mut p = Box::new([0u8; PAGE as usize]);
        if self.patterned && !self.is_zeroed(pg) {
            // Blocks are 512 B or 4 KiB: a page holds whole blocks.
            let bs = 1usize << self.block_shift;
            let first = (pg * PAGE) >> self.block_shift;
            for (i, b) in p.chunks_mut(bs).enumerate() {
                crate::host::workload::fill_sector(b, first + i as u64, FILL_GEN, FILL_TAG);
            }
        }
        p
    }

    pub fn bytes(&self) -> u64 {
        self.blocks << self.block_shift
    }

    /// Whether blocks `lba .. lba + n` exist.
    pub fn in_range(&self, lba: u64, n: u64) -> bool {
        lba.checked_add(n).is_some_and(|e| e <= self.blocks)
    }

    /// Whether page `pg` lies in a zeroed range.
    fn is_zeroed(&self, pg: u64) -> bool {
        self.zeroed.range(..=pg).next_back().is_some_and(|(_, &end)| pg < end)
    }

    /// Marks pages `start .. end` zeroed (merging with neighbouring ranges).
    fn mark_zeroed(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.zeroed.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
            }
        }
        let inside: Vec<u64> = self.zeroed.range(start..=end).map(|(&s, _)| s).collect();
        for s in inside {
            if let Some(e) = self.zeroed.remove(&s) {
                end = end.max(e);
            }
        }
        self.zeroed.insert(start, end);
    }

    /// Reads `out.len()` bytes at byte offset `off` (caller checked the range).
    pub fn read(&self, off: u64, out: &mut [u8]) {
        let mut done = 0usize;
        while done < out.len() {
            let a = off + done as u64;
            let (pg, o) = (a / PAGE, (a % PAGE) as usize);
            let n = (PAGE as usize - o).min(out.len() - done);
            match self.pages.get(&pg) {
                Some(p) => out[done..done + n].copy_from_slice(&p[o..o + n]),
                None if self.patterned => out[done..done + n].copy_from_slice(&self.initial(pg)[o..o + n]),
                None => out[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes `data` at byte offset `off` (caller checked the range).
    pub fn write(&mut self, off: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let a = off + done as u64;
            let (pg, o) = (a / PAGE, (a % PAGE) as usize);
            let n = (PAGE as usize - o).min(data.len() - done);
            if !self.pages.contains_key(&pg) {
                let fresh = self.initial(pg);
                self.pages.insert(pg, fresh);
            }
            let p = self.pages.get_mut(&pg).expect("inserted above");
            p[o..o + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }

    /// Makes `len` bytes at byte offset `off` read as zeroes: whole pages
    /// are dropped (no memory is spent on zeroes), partial ones cleared.
    pub fn zero(&mut self, off: u64, len: u64) {
        let end = off.saturating_add(len);
        if self.patterned && end > off {
            // Whole pages inside the range: zeroed as a range (no memory
            // per page, however large); partial ones below.
            let (first, last) = (off.div_ceil(PAGE), end / PAGE);
            if first < last {
                self.mark_zeroed(first, last);
                self.pages.retain(|&pg, _| !(first..last).contains(&pg));
            }
        }
        let mut a = off;
        while a < end {
            let (pg, o) = (a / PAGE, a % PAGE);
            let n = (PAGE - o).min(end - a);
            if n == PAGE && self.patterned {
                // Done above, as a range: skip to its end.
                a = (end / PAGE * PAGE).max(a + n);
                continue;
            } else if n == PAGE {
                self.pages.remove(&pg);
            } else if self.patterned && !self.pages.contains_key(&pg) {
                // Zeros are not what an unwritten page holds here: keep them.
                let mut fresh = self.initial(pg);
                fresh[o as usize..(o + n) as usize].fill(0);
                self.pages.insert(pg, fresh);
            } else if let Some(p) = self.pages.get_mut(&pg) {
                p[o as usize..(o + n) as usize].fill(0);
            }
            a += n;
        }
    }

    /// The backed 4 KiB pages (number, bytes), in address order: what the
    /// medium holds beyond zeros.
    pub fn backed_pages(&self) -> Vec<(u64, &[u8; PAGE as usize])> {
        let mut v: Vec<(u64, &[u8; PAGE as usize])> = self.pages.iter().map(|(&k, p)| (k, &**p)).collect();
        v.sort_by_key(|&(k, _)| k);
        v
    }

    /// Pages holding data (for tests).
    pub fn pages_in_use(&self) -> usize {
        self.pages.len()
    }

    /// The medium as a file (`dpusim --target-media`): what it holds
    /// beyond its initial contents, sparse. Little-endian: magic
    /// [`MEDIA_MAGIC`], bytes (u64), block size (u32), patterned (u8),
    /// the zeroed page ranges (count u64, then start and end u64 each),
    /// the backed pages (count u64, then page number u64 and 4096 bytes
    /// each).
    pub fn save(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.pages.len() * (8 + PAGE as usize));
        v.extend_from_slice(MEDIA_MAGIC);
        v.extend_from_slice(&self.bytes().to_le_bytes());
        v.extend_from_slice(&(1u32 << self.block_shift).to_le_bytes());
        v.push(u8::from(self.patterned));
        v.extend_from_slice(&(self.zeroed.len() as u64).to_le_bytes());
        for (&s, &e) in &self.zeroed {
            v.extend_from_slice(&s.to_le_bytes());
            v.extend_from_slice(&e.to_le_bytes());
        }
        let pages = self.backed_pages();
        v.extend_from_slice(&(pages.len() as u64).to_le_bytes());
        for (pg, p) in pages {
            v.extend_from_slice(&pg.to_le_bytes());
            v.extend_from_slice(p);
        }
        v
    }

    /// Replaces the medium's contents with a [`save`](Self::save)d file's;
    /// the file must describe a namespace of this size, block size and
    /// initial contents. Every length and page number is checked.
    pub fn load(&mut self, b: &[u8]) -> Result<(), String> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = b.get(at..at + n).ok_or_else(|| format!("truncated at byte {at}"))?;
            at += n;
            Ok(s)
        };
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        if take(8)? != MEDIA_MAGIC {
            return Err("not a target namespace medium (bad magic)".into());
        }
        let bytes = u64_of(take(8)?);
        let bs = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let patterned = take(1)?[0] != 0;
        if bytes != self.bytes() || bs != 1 << self.block_shift || patterned != self.patterned {
            return Err(format!(
                "holds a namespace of {bytes} bytes, {bs} B blocks{}; the scenario's has {} bytes, {} B blocks{}",
                if patterned { ", patterned" } else { "" },
                self.bytes(),
                1u32 << self.block_shift,
                if self.patterned { ", patterned" } else { "" }
            ));
        }
        let npages = self.bytes().div_ceil(PAGE);
        let nz = u64_of(take(8)?);
        let mut zeroed = BTreeMap::new();
        for _ in 0..nz {
            let (s, e) = (u64_of(take(8)?), u64_of(take(8)?));
            if s >= e || e > npages {
                return Err(format!("zeroed range {s}..{e} is outside the namespace's {npages} pages"));
            }
            zeroed.insert(s, e);
        }
        let np = u64_of(take(8)?);
        let mut pages = FxHashMap::default();
        for _ in 0..np {
            let pg = u64_of(take(8)?);
            if pg >= npages {
                return Err(format!("page {pg} is outside the namespace's {npages} pages"));
            }
            let mut p = Box::new([0u8; PAGE as usize]);
            p.copy_from_slice(take(PAGE as usize)?);
            pages.insert(pg, p);
        }
        if at != b.len() {
            return Err(format!("{} bytes after the last page", b.len() - at));
        }
        (self.zeroed, self.pages) = (zeroed, pages);
        Ok(())
    }
}

/// First bytes of a saved medium.
pub const MEDIA_MAGIC: &[u8; 8] = b"DPUNSMD1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_read_write_across_pages() {
        let mut ns = Namespace::new(1 << 30, 512);
        assert_eq!(ns.blocks, 1 << 21);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        ns.write(4000, &data);
        let mut back = vec![0u8; 10_100];
        ns.read(3950, &mut back);
        assert!(back[..50].iter().all(|&b| b == 0));
        assert_eq!(&back[50..10_050], &data[..]);
        assert!(back[10_050..].iter().all(|&b| b == 0));
        assert!(ns.in_range((1 << 21) - 8, 8));
        assert!(!ns.in_range((1 << 21) - 8, 9));
        assert!(!ns.in_range(u64::MAX, 2));
        // Zeroing drops whole pages and clears partial ones.
        ns.zero(4001, 9000);
        ns.read(3950, &mut back);
        assert_eq!(&back[50..51], &data[..1]);
        assert!(back[51..9051].iter().all(|&b| b == 0));
        assert_eq!(&back[9051..10_050], &data[9001..]);
        assert_eq!(ns.pages_in_use(), 2, "pages 1 and 2 dropped, 0 and 3 kept (partly zeroed)");
        ns.zero(0, 1 << 40);
        assert_eq!(ns.pages_in_use(), 0);
    }

    #[test]
    fn patterned_namespace_reads_the_pattern_until_written() {
        use crate::host::workload::check_sector;
        for bs in [512u32, 4096] {
            let mut ns = Namespace::patterned(1 << 20, bs);
            let mut b = vec![0u8; 3 * bs as usize];
            ns.read(5 * u64::from(bs), &mut b);
            for (i, blk) in b.chunks(bs as usize).enumerate() {
                check_sector(blk, 5 + i as u64, FILL_GEN, FILL_TAG).unwrap();
            }
            assert_eq!(ns.pages_in_use(), 0, "reading costs no memory");
            // A partial write keeps the pattern around it; zeroing reads as zeros.
            ns.write(6 * u64::from(bs) + 100, &[0xaa; 8]);
            ns.read(5 * u64::from(bs), &mut b);
            check_sector(&b[..bs as usize], 5, FILL_GEN, FILL_TAG).unwrap();
            assert_eq!(&b[bs as usize + 100..bs as usize + 108], &[0xaa; 8]);
            check_sector(&b[2 * bs as usize..], 7, FILL_GEN, FILL_TAG).unwrap();
            ns.zero(0, 8 * u64::from(bs));
            ns.read(5 * u64::from(bs), &mut b);
            assert!(b.iter().all(|&x| x == 0));
            // Zeroing the whole namespace costs no memory per page; a write
            // into a zeroed page keeps the zeros around it.
            ns.zero(0, 1 << 20);
            assert_eq!(ns.pages_in_use(), 0);
            ns.write(9 * 4096 + 8, &[0x55; 4]);
            let mut p = vec![0u8; 4096];
            ns.read(9 * 4096, &mut p);
            assert!(p[..8].iter().chain(&p[12..]).all(|&x| x == 0) && p[8..12] == [0x55; 4]);
        }
    }

    #[test]
    fn a_saved_medium_loads_back_and_a_bad_one_is_refused() {
        let mut ns = Namespace::patterned(1 << 20, 512);
        ns.write(5000, &[7u8; 9000]);
        ns.zero(64 * 4096, 8 * 4096);
        let file = ns.save();
        let mut back = Namespace::patterned(1 << 20, 512);
        back.load(&file).unwrap();
        let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        ns.read(0, &mut a);
        back.read(0, &mut b);
        assert!(a == b && back.pages_in_use() == ns.pages_in_use());
        // Another geometry, a cut file, a flipped magic, trailing bytes,
        // a page beyond the end: each an error, the medium untouched.
        let mut other = Namespace::new(1 << 20, 4096);
        assert!(other.load(&file).unwrap_err().contains("4096 B blocks"));
        assert!(back.load(&file[..file.len() - 1]).unwrap_err().contains("truncated"));
        let mut bad = file.clone();
        bad[0] ^= 1;
        assert!(back.load(&bad).unwrap_err().contains("magic"));
        let mut long = file.clone();
        long.push(0);
        assert!(back.load(&long).unwrap_err().contains("after the last page"));
        let mut far = Namespace::new(1 << 20, 512);
        far.write(0, &[1; 4]);
        let mut f = far.save();
        let at = f.len() - 4096 - 8;
        f[at..at + 8].copy_from_slice(&1000u64.to_le_bytes());
        assert!(far.load(&f).unwrap_err().contains("outside"));
        back.read(0, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn zeroed_ranges_merge() {
        let mut ns = Namespace::patterned(1 << 30, 512);
        ns.zero(4096, 4096 * 3);
        ns.zero(4096 * 10, 4096);
        ns.zero(4096 * 3, 4096 * 8);
        assert_eq!(ns.zeroed.iter().map(|(&s, &e)| (s, e)).collect::<Vec<_>>(), vec![(1, 11)]);
        assert!(ns.is_zeroed(1) && ns.is_zeroed(10) && !ns.is_zeroed(0) && !ns.is_zeroed(11));
        ns.zero(0, 1 << 40);
        assert_eq!(ns.zeroed.len(), 1);
    }
}
