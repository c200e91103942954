//! In-memory namespace storage of a target model: sparse 4 KiB pages
//! (unwritten blocks read as zeros), so a 64 GiB namespace costs only what
//! the workload touches.

use rustc_hash::FxHashMap;

const PAGE: u64 = 4096;

pub struct Namespace {
    pub blocks: u64,
    pub block_shift: u8,
    pages: FxHashMap<u64, Box<[u8; PAGE as usize]>>,
}

impl Namespace {
    pub fn new(bytes: u64, block_size: u32) -> Namespace {
        Namespace { blocks: bytes / u64::from(block_size), block_shift: block_size.trailing_zeros() as u8, pages: FxHashMap::default() }
    }

    pub fn bytes(&self) -> u64 {
        self.blocks << self.block_shift
    }

    /// Whether blocks `lba .. lba + n` exist.
    pub fn in_range(&self, lba: u64, n: u64) -> bool {
        lba.checked_add(n).is_some_and(|e| e <= self.blocks)
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
            let p = self.pages.entry(pg).or_insert_with(|| Box::new([0; PAGE as usize]));
            p[o..o + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }

    /// Makes `len` bytes at byte offset `off` read as zeroes: whole pages
    /// are dropped (no memory is spent on zeroes), partial ones cleared.
    pub fn zero(&mut self, off: u64, len: u64) {
        let end = off.saturating_add(len);
        let mut a = off;
        while a < end {
            let (pg, o) = (a / PAGE, a % PAGE);
            let n = (PAGE - o).min(end - a);
            if n == PAGE {
                self.pages.remove(&pg);
            } else if let Some(p) = self.pages.get_mut(&pg) {
                p[o as usize..(o + n) as usize].fill(0);
            }
            a += n;
        }
    }

    /// Pages holding data (for tests).
    pub fn pages_in_use(&self) -> usize {
        self.pages.len()
    }
}

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
}
