//! PRP and SGL walks (`dpu_nvme::dptr`) over a host memory the input
//! describes. A walk must end (within a bound that follows from the
//! transfer length), never panic, ask only for sane list fetches, and
//! never describe more bytes than the transfer: when it says Done, the
//! segments add up to exactly the transfer length and none wraps the
//! address space.
//!
//! Input: mode (1 byte), transfer length (4), PRP1/PRP2 or the SGL1
//! descriptor (16), then the host memory: reading address `a` gives memory
//! byte `a % len`, so list entries that point anywhere still land in
//! bytes the fuzzer controls (self-referencing lists included).

use crate::input::Input;
use dpu_nvme::dptr::{PrpWalk, SegList, SglWalk, Step};
use dpu_nvme::{MAX_TRANSFER, PAGE_SIZE};

/// Host memory as the walker's DMA reads see it.
struct Memory<'a>(&'a [u8]);

impl Memory<'_> {
    fn read(&self, addr: u64, len: u32) -> Vec<u8> {
        if self.0.is_empty() {
            return vec![0; len as usize];
        }
        let n = self.0.len() as u64;
        (0..u64::from(len)).map(|i| self.0[(addr.wrapping_add(i) % n) as usize]).collect()
    }
}

/// Most list fetches a walk of `MAX_TRANSFER` bytes may need: one per PRP
/// list page (each holds 511 data entries and a chain pointer, the first
/// one may hold a single entry), or one per SGL segment (at most
/// `MAX_SEGMENTS` after the first).
const MAX_FETCHES: usize = 2 + dpu_nvme::dptr::MAX_SEGMENTS + 1;

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let mode = i.u8();
    // Mostly lengths a command can have (MDTS), sometimes anything.
    let raw = i.u32();
    let len = if mode & 0x80 != 0 { raw } else { raw % (MAX_TRANSFER as u32 + 1) };
    let dptr: [u8; 16] = i.fixed();
    let mem = Memory(i.rest());
    let mut segs = SegList::new();
    let walk = if mode & 1 == 0 { prp(&dptr, len, &mem, &mut segs) } else { sgl(&dptr, len, &mem, &mut segs) };
    let total: u128 = segs.as_slice().iter().map(|&(_, l)| u128::from(l)).sum();
    assert!(total <= u128::from(len), "segments describe {total} bytes of a {len}-byte transfer: {:?}", segs.as_slice());
    for &(a, l) in segs.as_slice() {
        assert!(l > 0, "empty segment");
        assert!(u128::from(a) + u128::from(l) <= 1 << 64, "segment {a:#x}+{l:#x} wraps the address space");
    }
    if walk.is_ok() {
        assert_eq!(total, u128::from(len), "walk done but the segments do not cover the transfer: {:?}", segs.as_slice());
    }
}

fn prp(dptr: &[u8; 16], len: u32, mem: &Memory, segs: &mut SegList) -> Result<(), ()> {
    let prp1 = u64::from_le_bytes(dptr[..8].try_into().unwrap());
    let prp2 = u64::from_le_bytes(dptr[8..].try_into().unwrap());
    let (mut w, mut step) = PrpWalk::start(prp1, prp2, len, segs).map_err(|_| ())?;
    for _ in 0..MAX_FETCHES {
        match step {
            Step::Done => return Ok(()),
            Step::Fetch { addr, len: n } => {
                assert!(n > 0 && n % 8 == 0 && u64::from(n) <= PAGE_SIZE, "PRP list fetch of {n} bytes");
                assert!(addr % PAGE_SIZE + u64::from(n) <= PAGE_SIZE, "PRP list fetch {addr:#x}+{n} crosses a page");
                step = w.feed(&mem.read(addr, n), segs).map_err(|_| ())?;
            }
        }
    }
    panic!("PRP walk of {len} bytes still fetching after {MAX_FETCHES} lists: {:?}", segs.as_slice());
}

fn sgl(dptr: &[u8; 16], len: u32, mem: &Memory, segs: &mut SegList) -> Result<(), ()> {
    let (mut w, mut step) = SglWalk::start(dptr, len, segs).map_err(|_| ())?;
    for _ in 0..MAX_FETCHES {
        match step {
            Step::Done => return Ok(()),
            Step::Fetch { addr: _, len: n } if n == 0 || n % 16 != 0 || n > 4096 => {
                panic!("SGL segment fetch of {n} bytes")
            }
            Step::Fetch { addr, len: n } => step = w.feed(&mem.read(addr, n), segs).map_err(|_| ())?,
        }
    }
    panic!("SGL walk of {len} bytes still fetching after {MAX_FETCHES} segments: {:?}", segs.as_slice());
}
