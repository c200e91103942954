//! Data pointers: PRP entries and PRP lists (NVMe Base 2.0 §4.3.1) and SGL
//! descriptors (§4.3.2), turned into host (address, length) segments.
//!
//! Both walkers are incremental: when a list lives in host memory they
//! say where to fetch it (by DMA) and continue when fed its bytes, so the
//! firmware never blocks and never copies payload data.

use crate::status::Status;
use crate::PAGE_SIZE;

/// Most segments one command may have (128 KiB in 4 KiB pages, plus one).
pub const MAX_SEGMENTS: usize = 64;

/// Host memory segments of one transfer (adjacent ones merged), at most
/// `N`. The walkers fill a list the caller owns, so nothing large is moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegList<const N: usize = MAX_SEGMENTS> {
    segs: [(u64, u32); N],
    n: usize,
}

impl<const N: usize> Default for SegList<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SegList<N> {
    pub const fn new() -> Self {
        SegList { segs: [(0, 0); N], n: 0 }
    }

    /// Empties the list.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Copies another list's segments in (false if they do not fit).
    pub fn extend_from(&mut self, other: &[(u64, u32)]) -> bool {
        other.iter().all(|&(a, l)| self.push(a, l))
    }

    /// Appends a segment, merging with the previous one when contiguous.
    pub fn push(&mut self, addr: u64, len: u32) -> bool {
        if len == 0 {
            return true;
        }
        if self.n > 0 {
            let last = &mut self.segs[self.n - 1];
            // A segment ending at the top of the address space does not
            // continue at address 0.
            if last.0.checked_add(u64::from(last.1)) == Some(addr) && last.1.checked_add(len).is_some() {
                last.1 += len;
                return true;
            }
        }
        if self.n == N {
            return false;
        }
        self.segs[self.n] = (addr, len);
        self.n += 1;
        true
    }
    pub fn as_slice(&self) -> &[(u64, u32)] {
        &self.segs[..self.n]
    }
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|s| u64::from(s.1)).sum()
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Next step of a data pointer walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// All segments known.
    Done,
    /// Fetch `len` bytes of list at host address `addr`, then `feed` them.
    Fetch { addr: u64, len: u32 },
}

/// PRP walker (the segments go to a caller-owned [`SegList`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PrpWalk {
    /// Bytes still to describe.
    remaining: u32,
}

/// The host segments of a PRP data pointer that needs no PRP list
/// (NVMe Base 2.0 §4.3.1: PRP1 alone, or PRP1 and PRP2 as the second and
/// last page), as [`PrpWalk::start`] would give them (adjacent pages
/// merged), without building a walker: the fast path of a 4 KiB I/O.
/// `None` when the transfer needs a PRP list (or moves nothing): walk it.
#[inline]
pub fn prp_direct(prp1: u64, prp2: u64, len: u32) -> Option<Result<([(u64, u32); 2], usize), Status>> {
    if len == 0 {
        return None;
    }
    if prp1 & 3 != 0 {
        return Some(Err(Status::PRP_OFFSET_INVALID));
    }
    let first = PAGE_SIZE - prp1 % PAGE_SIZE;
    if u64::from(len) <= first {
        return Some(Ok(([(prp1, len), (0, 0)], 1)));
    }
    let rest = len - first as u32;
    if u64::from(rest) > PAGE_SIZE {
        return None;
    }
    if prp2 % PAGE_SIZE != 0 {
        return Some(Err(Status::PRP_OFFSET_INVALID));
    }
    // Pages that follow each other are one segment (as `SegList::push`).
    if prp1.checked_add(first) == Some(prp2) {
        return Some(Ok(([(prp1, len), (0, 0)], 1)));
    }
    Some(Ok(([(prp1, first as u32), (prp2, rest)], 2)))
}

impl PrpWalk {
    /// Starts from PRP1/PRP2 for a transfer of `len` bytes; at most two
    /// segments are pushed before a list is needed.
    pub fn start<const N: usize>(prp1: u64, prp2: u64, len: u32, segs: &mut SegList<N>) -> Result<(PrpWalk, Step), Status> {
        if prp1 & 3 != 0 {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        let mut w = PrpWalk { remaining: len };
        let first = ((PAGE_SIZE - prp1 % PAGE_SIZE) as u32).min(len);
        segs.push(prp1, first);
        w.remaining -= first;
        if w.remaining == 0 {
            return Ok((w, Step::Done));
        }
        if u64::from(w.remaining) <= PAGE_SIZE {
            // PRP2 is the second (and last) data page.
            if prp2 % PAGE_SIZE != 0 {
                return Err(Status::PRP_OFFSET_INVALID);
            }
            segs.push(prp2, w.remaining);
            w.remaining = 0;
            return Ok((w, Step::Done));
        }
        // PRP2 points to a PRP list: qword aligned, may have an offset.
        if prp2 & 7 != 0 {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        Ok((w, w.list_step(prp2)))
    }

    /// Entries to read from a list starting at `list`: up to the end of its
    /// page; when more are needed than fit, the last one chains.
    fn list_step(&self, list: u64) -> Step {
        let needed = u64::from(self.remaining).div_ceil(PAGE_SIZE);
        let room = (PAGE_SIZE - list % PAGE_SIZE) / 8;
        let entries = if needed <= room { needed } else { room };
        Step::Fetch { addr: list, len: (entries * 8) as u32 }
    }

    /// Consumes a fetched PRP list chunk (the bytes the last [`Step::Fetch`]
    /// asked for).
    pub fn feed<const N: usize>(&mut self, list: &[u8], segs: &mut SegList<N>) -> Result<Step, Status> {
        let entries: usize = list.len() / 8;
        if entries == 0 {
            return Err(Status::INVALID_FIELD);
        }
        let needed = u64::from(self.remaining).div_ceil(PAGE_SIZE) as usize;
        let chains = needed > entries;
        let data_entries = if chains { entries - 1 } else { entries };
        for i in 0..data_entries {
            let e = u64::from_le_bytes(list[8 * i..8 * i + 8].try_into().unwrap());
            if e % PAGE_SIZE != 0 {
                return Err(Status::PRP_OFFSET_INVALID);
            }
            let n = (PAGE_SIZE as u32).min(self.remaining);
            if !segs.push(e, n) {
                return Err(Status::INVALID_FIELD);
            }
            self.remaining -= n;
        }
        if self.remaining == 0 {
            return Ok(Step::Done);
        }
        if !chains {
            return Err(Status::INVALID_FIELD);
        }
        let next = u64::from_le_bytes(list[8 * entries - 8..8 * entries].try_into().unwrap());
        // Like every entry of a PRP list, the pointer to the next list has
        // no page offset (§4.3.1): each further list holds 511 data
        // entries, so the walk always advances.
        if next % PAGE_SIZE != 0 {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        Ok(self.list_step(next))
    }
}

/// SGL descriptor types (figure 113) we understand.
pub const SGL_DATA_BLOCK: u8 = 0x0;
pub const SGL_BIT_BUCKET: u8 = 0x1;
pub const SGL_SEGMENT: u8 = 0x2;
pub const SGL_LAST_SEGMENT: u8 = 0x3;
/// Most descriptors in one segment we accept.
pub const MAX_SGL_DESCRIPTORS: u32 = 256;
/// Most segments (lists fetched) in one command's SGL: as many as the
/// segments it may describe; a walk through more is cut short, so a
/// chain that loops back on itself ends.
pub const MAX_SGL_SEGMENTS: u32 = MAX_SEGMENTS as u32;

fn desc(b: &[u8]) -> (u64, u32, u8, u8) {
    let addr = u64::from_le_bytes(b[0..8].try_into().unwrap());
    let len = u32::from_le_bytes(b[8..12].try_into().unwrap());
    (addr, len, b[15] >> 4, b[15] & 0xf)
}

/// SGL walker (the segments go to a caller-owned [`SegList`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SglWalk {
    want: u32,
    got: u64,
    /// The list being fetched is a Last Segment (no further segments).
    last: bool,
    /// Segments fetched so far.
    segments: u32,
}

impl SglWalk {
    /// Starts from the command's data pointer for a `len`-byte transfer;
    /// at most one segment is pushed before a list is needed.
    pub fn start<const N: usize>(dptr: &[u8; 16], len: u32, segs: &mut SegList<N>) -> Result<(SglWalk, Step), Status> {
        let mut w = SglWalk { want: len, got: 0, last: false, segments: 0 };
        let (addr, dlen, kind, sub) = desc(dptr);
        if sub != 0 {
            return Err(Status::SGL_TYPE_INVALID);
        }
        match kind {
            SGL_DATA_BLOCK => {
                w.data(addr, dlen, segs)?;
                Ok((w, w.finish()?))
            }
            SGL_SEGMENT | SGL_LAST_SEGMENT => {
                w.last = kind == SGL_LAST_SEGMENT;
                let step = w.segment(addr, dlen)?;
                Ok((w, step))
            }
            _ => Err(Status::SGL_TYPE_INVALID),
        }
    }

    fn segment(&mut self, addr: u64, len: u32) -> Result<Step, Status> {
        if len == 0 || len % 16 != 0 {
            return Err(Status::INVALID_SGL_SEGMENT);
        }
        if len / 16 > MAX_SGL_DESCRIPTORS {
            return Err(Status::INVALID_SGL_COUNT);
        }
        self.segments += 1;
        if self.segments > MAX_SGL_SEGMENTS {
            return Err(Status::INVALID_SGL_COUNT);
        }
        Ok(Step::Fetch { addr, len })
    }

    fn data<const N: usize>(&mut self, addr: u64, len: u32, segs: &mut SegList<N>) -> Result<(), Status> {
        if len > 0 && addr.checked_add(u64::from(len) - 1).is_none() {
            // The block would wrap past the top of the address space.
            return Err(Status::INVALID_FIELD);
        }
        self.got += u64::from(len);
        if self.got > u64::from(self.want) {
            // Oversized SGLs are not supported (SGLS bit 18 clear).
            return Err(Status::DATA_SGL_LENGTH_INVALID);
        }
        if !segs.push(addr, len) {
            return Err(Status::INVALID_SGL_COUNT);
        }
        Ok(())
    }

    fn finish(&self) -> Result<Step, Status> {
        if self.got != u64::from(self.want) {
            return Err(Status::DATA_SGL_LENGTH_INVALID);
        }
        Ok(Step::Done)
    }

    /// Consumes a fetched segment's descriptors.
    pub fn feed<const N: usize>(&mut self, list: &[u8], segs: &mut SegList<N>) -> Result<Step, Status> {
        let n = list.len() / 16;
        for i in 0..n {
            let (addr, len, kind, sub) = desc(&list[16 * i..16 * i + 16]);
            if sub != 0 {
                return Err(Status::SGL_TYPE_INVALID);
            }
            match kind {
                SGL_DATA_BLOCK => self.data(addr, len, segs)?,
                SGL_SEGMENT | SGL_LAST_SEGMENT => {
                    // Only the last descriptor of a (non-last) segment may chain.
                    if self.last || i != n - 1 {
                        return Err(Status::INVALID_SGL_SEGMENT);
                    }
                    self.last = kind == SGL_LAST_SEGMENT;
                    return self.segment(addr, len);
                }
                _ => return Err(Status::SGL_TYPE_INVALID),
            }
        }
        if !self.last {
            // A Segment must end with a pointer to the next segment.
            return Err(Status::INVALID_SGL_SEGMENT);
        }
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct path gives what the walker gives, for every transfer
    /// that needs no list, and declines the others.
    #[test]
    fn prp_direct_matches_the_walker() {
        let p = PAGE_SIZE;
        for prp1 in [0x1000, 0x1004, 0x1800, 0x1ffc, 0x1002, 0x2000 - 512, 0x7000] {
            for prp2 in [0u64, 0x2000, 0x9000, 0x9008, 0x9001] {
                for len in [0u32, 4, 512, 2048, 4096 - 4, 4096, 4100, 6144, 8192, 8196, 12288] {
                    let direct = prp_direct(prp1, prp2, len);
                    let walked = prp(prp1, prp2, len);
                    match (direct, walked) {
                        (Some(Ok((segs, n))), Ok((_, Step::Done, list))) => assert_eq!(&segs[..n], list.as_slice(), "{prp1:#x} {prp2:#x} {len}"),
                        (Some(Err(a)), Err(b)) => assert_eq!(a, b, "{prp1:#x} {prp2:#x} {len}"),
                        (None, Ok((_, Step::Fetch { .. }, _))) => assert!(u64::from(len) > p),
                        (None, Ok((_, Step::Done, list))) => assert!(len == 0 && list.is_empty()),
                        (None, Err(_)) => assert!(len == 0 || u64::from(len) > p, "{prp1:#x} {prp2:#x} {len}"),
                        (d, w) => panic!("{prp1:#x} {prp2:#x} {len}: direct {d:?}, walker {w:?}"),
                    }
                }
            }
        }
    }

    fn entries(v: &[u64]) -> [u8; 4096] {
        let mut b = [0u8; 4096];
        for (i, e) in v.iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&e.to_le_bytes());
        }
        b
    }

    fn prp(prp1: u64, prp2: u64, len: u32) -> Result<(PrpWalk, Step, SegList), Status> {
        let mut segs = SegList::new();
        PrpWalk::start(prp1, prp2, len, &mut segs).map(|(w, s)| (w, s, segs))
    }

    #[test]
    fn prp1_only_and_two_pages() {
        let (_, s, segs) = prp(0x1000, 0, 4096).unwrap();
        assert_eq!((s, segs.as_slice()), (Step::Done, &[(0x1000, 4096)][..]));
        let (_, s, segs) = prp(0x1200, 0x8000, 4096).unwrap();
        assert_eq!(s, Step::Done);
        assert_eq!(segs.as_slice(), &[(0x1200, 0xe00), (0x8000, 0x200)]);
        // Contiguous second page merges.
        let (_, _, segs) = prp(0x1000, 0x2000, 8192).unwrap();
        assert_eq!(segs.as_slice(), &[(0x1000, 8192)]);
        // A small list is enough for the direct cases.
        let mut small = SegList::<2>::new();
        assert_eq!(PrpWalk::start(0x1200, 0x8000, 4096, &mut small).unwrap().1, Step::Done);
    }

    #[test]
    fn segments_at_the_top_of_the_address_space_do_not_wrap_to_zero() {
        // Found by the nvme_dptr fuzz target: merging computed the end of
        // the last segment with an overflowing add.
        let mut segs = SegList::<4>::new();
        assert!(segs.push(0xffff_ffff_ffff_f000, 4096));
        assert!(segs.push(0, 4096));
        assert_eq!(segs.as_slice(), &[(0xffff_ffff_ffff_f000, 4096), (0, 4096)]);
        let (_, s, segs) = prp(0xffff_ffff_ffff_f000, 0, 8192).unwrap();
        assert_eq!((s, segs.as_slice()), (Step::Done, &[(0xffff_ffff_ffff_f000, 4096), (0, 4096)][..]));
    }

    #[test]
    fn prp_offsets_are_checked() {
        assert_eq!(prp(0x1002, 0, 16).unwrap_err(), Status::PRP_OFFSET_INVALID);
        assert_eq!(prp(0x1000, 0x2010, 8192).unwrap_err(), Status::PRP_OFFSET_INVALID);
        assert_eq!(prp(0x1000, 0x3004, 16384).unwrap_err(), Status::PRP_OFFSET_INVALID, "list pointer not qword aligned");
        let (mut w, s, mut segs) = prp(0x1000, 0x9000, 3 * 4096).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x9000, len: 16 });
        assert_eq!(w.feed(&entries(&[0x5000, 0x7008])[..16], &mut segs).unwrap_err(), Status::PRP_OFFSET_INVALID);
    }

    #[test]
    fn prp_chain_pointer_must_be_page_aligned() {
        // Found by the nvme_dptr fuzz target: a list starting in the last
        // slot of a page holds only the chain pointer; pointing it back at
        // that slot made the walk fetch the same 8 bytes forever.
        let (mut w, s, mut segs) = prp(0x1000, 0x3ff8, 3 * 4096).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x3ff8, len: 8 });
        assert_eq!(w.feed(&entries(&[0x3ff8])[..8], &mut segs).unwrap_err(), Status::PRP_OFFSET_INVALID);
        let (mut w, _, mut segs) = prp(0x1000, 0x3ff8, 3 * 4096).unwrap();
        assert_eq!(w.feed(&entries(&[0x5000])[..8], &mut segs).unwrap(), Step::Fetch { addr: 0x5000, len: 16 });
        assert_eq!(w.feed(&[], &mut segs).unwrap_err(), Status::INVALID_FIELD, "no entries fetched");
    }

    #[test]
    fn prp_list_crossing_pages_chains() {
        // 128 KiB starting at offset 0x800: first page 0x800 bytes, then 32
        // entries (31 full pages + 0x800). The list starts 16 bytes before
        // the end of its page: 2 slots, so entry 1 chains to the next list.
        let len = 128 * 1024;
        let (mut w, s, mut segs) = prp(0x10_0800, 0x20_0ff0, len).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x20_0ff0, len: 16 });
        let s = w.feed(&entries(&[0x40_0000, 0x30_0000])[..16], &mut segs).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x30_0000, len: 31 * 8 });
        let mut rest = [0u64; 31];
        for (i, r) in rest.iter_mut().enumerate() {
            *r = 0x40_0000 + 0x1000 * (i as u64 + 1);
        }
        assert_eq!(w.feed(&entries(&rest)[..31 * 8], &mut segs).unwrap(), Step::Done);
        assert_eq!(segs.total(), u64::from(len));
        assert_eq!(segs.as_slice(), &[(0x10_0800, 0x800), (0x40_0000, len - 0x800)], "contiguous pages merged");
    }

    fn d(addr: u64, len: u32, kind: u8) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[15] = kind << 4;
        b
    }

    fn sgl(dptr: [u8; 16], len: u32) -> Result<(SglWalk, Step, SegList), Status> {
        let mut segs = SegList::new();
        SglWalk::start(&dptr, len, &mut segs).map(|(w, s)| (w, s, segs))
    }

    #[test]
    fn sgl_data_block_and_segments() {
        let (_, s, segs) = sgl(d(0x1000, 4096, SGL_DATA_BLOCK), 4096).unwrap();
        assert_eq!((s, segs.as_slice()), (Step::Done, &[(0x1000, 4096)][..]));
        assert_eq!(sgl(d(0x1000, 512, SGL_DATA_BLOCK), 4096).unwrap_err(), Status::DATA_SGL_LENGTH_INVALID);
        assert_eq!(sgl(d(0x1000, 8192, SGL_DATA_BLOCK), 4096).unwrap_err(), Status::DATA_SGL_LENGTH_INVALID);
        assert_eq!(sgl(d(0x1000, 16, SGL_BIT_BUCKET), 16).unwrap_err(), Status::SGL_TYPE_INVALID);
        // Segment -> [data, data, last segment] -> [data]
        let (mut w, s, mut segs) = sgl(d(0x9000, 48, SGL_SEGMENT), 3 * 1024).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x9000, len: 48 });
        let mut seg1 = [0u8; 48];
        seg1[0..16].copy_from_slice(&d(0x1000, 1024, SGL_DATA_BLOCK));
        seg1[16..32].copy_from_slice(&d(0x5000, 1024, SGL_DATA_BLOCK));
        seg1[32..48].copy_from_slice(&d(0xa000, 16, SGL_LAST_SEGMENT));
        assert_eq!(w.feed(&seg1, &mut segs).unwrap(), Step::Fetch { addr: 0xa000, len: 16 });
        assert_eq!(w.feed(&d(0x7000, 1024, SGL_DATA_BLOCK), &mut segs).unwrap(), Step::Done);
        assert_eq!(segs.as_slice(), &[(0x1000, 1024), (0x5000, 1024), (0x7000, 1024)]);
    }

    #[test]
    fn sgl_data_block_wrapping_the_address_space_is_invalid() {
        // Found by the nvme_dptr fuzz target: the block became a segment
        // that wraps from the top of the address space to 0.
        assert_eq!(sgl(d(0xffff_ffff_ffff_fff8, 1024, SGL_DATA_BLOCK), 1024).unwrap_err(), Status::INVALID_FIELD);
        let (mut w, _, mut segs) = sgl(d(0x9000, 16, SGL_LAST_SEGMENT), 1024).unwrap();
        assert_eq!(w.feed(&d(u64::MAX, 1024, SGL_DATA_BLOCK), &mut segs).unwrap_err(), Status::INVALID_FIELD);
        // Ending exactly at the top is not a wrap.
        let (_, s, segs) = sgl(d(0xffff_ffff_ffff_fc00, 1024, SGL_DATA_BLOCK), 1024).unwrap();
        assert_eq!((s, segs.as_slice()), (Step::Done, &[(0xffff_ffff_ffff_fc00, 1024)][..]));
    }

    #[test]
    fn sgl_segment_chain_is_bounded() {
        // Found by the nvme_dptr fuzz target: a Segment whose only
        // descriptor points to itself made the walk fetch it forever.
        let (mut w, s, mut segs) = sgl(d(0x9000, 16, SGL_SEGMENT), 1024).unwrap();
        assert_eq!(s, Step::Fetch { addr: 0x9000, len: 16 });
        let mut fetches = 1;
        let end = loop {
            match w.feed(&d(0x9000, 16, SGL_SEGMENT), &mut segs) {
                Ok(Step::Fetch { .. }) => fetches += 1,
                other => break other,
            }
            assert!(fetches <= MAX_SGL_SEGMENTS, "no end to the chain");
        };
        assert_eq!((end, fetches), (Err(Status::INVALID_SGL_COUNT), MAX_SGL_SEGMENTS));
    }

    #[test]
    fn sgl_malformed_segments() {
        assert_eq!(sgl(d(0x9000, 20, SGL_LAST_SEGMENT), 16).unwrap_err(), Status::INVALID_SGL_SEGMENT);
        let (mut w, _, mut segs) = sgl(d(0x9000, 32, SGL_LAST_SEGMENT), 1024).unwrap();
        let mut seg = [0u8; 32];
        seg[0..16].copy_from_slice(&d(0xa000, 16, SGL_SEGMENT));
        seg[16..32].copy_from_slice(&d(0x1000, 1024, SGL_DATA_BLOCK));
        assert_eq!(w.feed(&seg, &mut segs).unwrap_err(), Status::INVALID_SGL_SEGMENT, "a last segment cannot chain");
        let (mut w, _, mut segs) = sgl(d(0x9000, 16, SGL_SEGMENT), 1024).unwrap();
        assert_eq!(w.feed(&d(0x1000, 1024, SGL_DATA_BLOCK), &mut segs).unwrap_err(), Status::INVALID_SGL_SEGMENT, "segment must chain");
    }
}
