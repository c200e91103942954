//! The block layer (DESIGN.md §3): block devices that namespaces map to.
//!
//! A block device does not move data itself: for an I/O it answers with a
//! plan of [`Move`]s (host <-> device memory, DPU memory <-> device
//! memory, zero-fill) that the calling core executes on its own DMA
//! channel, so payloads never pass through a CPU. This crate holds the
//! pure parts of the block layer (planning, layouts); the firmware image's
//! `block` module runs the stacks of devices on the data-plane cores.
#![no_std]

pub mod ec_health;
pub mod ec_super;

/// What an I/O does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    WriteZeroes,
    /// Deallocate (trim): deallocated blocks read back as zeros.
    Deallocate,
    Flush,
}

/// Size of a block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    /// log2 of the block size.
    pub block_shift: u8,
}

/// Where an I/O's data is (Read: where it goes; Write: where it comes from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf<'a> {
    /// No data (Flush, Write Zeroes, Deallocate).
    None,
    /// Host memory segments, in transfer order (moved by DMA over PCIe).
    Host(&'a [(u64, u32)]),
    /// DPU memory segments, in transfer order (a stacked device's
    /// staging pages).
    Local(&'a [(u64, u32)]),
}

/// One I/O on a block device.
#[derive(Clone, Copy, Debug)]
pub struct Io<'a> {
    pub op: Op,
    pub lba: u64,
    pub blocks: u32,
    /// The data (Read/Write only).
    pub buf: Buf<'a>,
}

/// One data movement of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// Device memory -> host memory.
    ToHost { host: u64, local: u64, len: u32 },
    /// Host memory -> device memory.
    FromHost { host: u64, local: u64, len: u32 },
    /// Zero-fill device memory.
    Zero { local: u64, len: u32 },
    /// DPU memory -> DPU memory (a local buffer to or from the device).
    Copy { from: u64, to: u64, len: u32 },
}

/// Why an I/O cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    OutOfRange,
    /// Host segments do not add up to the I/O size.
    LengthMismatch,
    /// The plan does not fit the caller's buffer.
    TooManyMoves,
}

/// Largest single move (the DMA engines' descriptor limit).
pub const MAX_MOVE: u32 = 1 << 20;

/// A block device backed by DPU memory (DDR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamBdev {
    /// DPU physical address of block 0.
    pub base: u64,
    pub geometry: Geometry,
}

impl RamBdev {
    pub fn new(base: u64, blocks: u64, block_shift: u8) -> RamBdev {
        RamBdev { base, geometry: Geometry { blocks, block_shift } }
    }

    /// The plan of a read (`read`) or write of `blocks` blocks at `lba`
    /// whose data is one host segment `seg`: the one move [`Self::plan`]
    /// gives for it, or its error (`TooManyMoves`: the segment needs more
    /// than one move). The fast path of a 4 KiB I/O: nothing to collect.
    /// `blocks` is at least 1 (a transfer of nothing is `plan`'s).
    #[inline]
    pub fn host_move(&self, read: bool, lba: u64, blocks: u32, seg: (u64, u32)) -> Result<Move, Error> {
        let g = self.geometry;
        let end = lba.checked_add(u64::from(blocks)).ok_or(Error::OutOfRange)?;
        if end > g.blocks {
            return Err(Error::OutOfRange);
        }
        if u64::from(seg.1) != u64::from(blocks) << g.block_shift {
            return Err(Error::LengthMismatch);
        }
        if seg.1 > MAX_MOVE {
            return Err(Error::TooManyMoves);
        }
        let (host, local, len) = (seg.0, self.base + (lba << g.block_shift), seg.1);
        Ok(if read { Move::ToHost { host, local, len } } else { Move::FromHost { host, local, len } })
    }

    /// Plans `io` into `out`; returns how many moves it takes (0: nothing
    /// to move, e.g. Flush: RAM has no volatile cache to write back).
    pub fn plan(&self, io: &Io, out: &mut [Move]) -> Result<usize, Error> {
        let g = self.geometry;
        let end = io.lba.checked_add(u64::from(io.blocks)).ok_or(Error::OutOfRange)?;
        if io.op != Op::Flush && end > g.blocks {
            return Err(Error::OutOfRange);
        }
        let local0 = self.base + (io.lba << g.block_shift);
        let bytes = u64::from(io.blocks) << g.block_shift;
        let mut n = 0;
        let mut emit = |m: Move| -> Result<(), Error> {
            *out.get_mut(n).ok_or(Error::TooManyMoves)? = m;
            n += 1;
            Ok(())
        };
        match io.op {
            Op::Flush => {}
            Op::Read | Op::Write => {
                let (segs, host) = match io.buf {
                    Buf::Host(segs) => (segs, true),
                    Buf::Local(segs) => (segs, false),
                    Buf::None => return Err(Error::LengthMismatch),
                };
                let total: u64 = segs.iter().map(|s| u64::from(s.1)).sum();
                if total != bytes {
                    return Err(Error::LengthMismatch);
                }
                let mut local = local0;
                for &(addr, len) in segs {
                    let mut done = 0;
                    while done < len {
                        let l = (len - done).min(MAX_MOVE);
                        let a = addr + u64::from(done);
                        emit(match (io.op == Op::Read, host) {
                            (true, true) => Move::ToHost { host: a, local, len: l },
                            (false, true) => Move::FromHost { host: a, local, len: l },
                            (true, false) => Move::Copy { from: local, to: a, len: l },
                            (false, false) => Move::Copy { from: a, to: local, len: l },
                        })?;
                        local += u64::from(l);
                        done += l;
                    }
                }
            }
            Op::WriteZeroes | Op::Deallocate => {
                let mut off = 0u64;
                while off < bytes {
                    let l = (bytes - off).min(u64::from(MAX_MOVE)) as u32;
                    emit(Move::Zero { local: local0 + off, len: l })?;
                    off += u64::from(l);
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: RamBdev = RamBdev { base: 0x1_0000_0000, geometry: Geometry { blocks: 1 << 20, block_shift: 9 } };

    #[test]
    fn read_maps_host_segments_to_consecutive_blocks() {
        let mut out = [Move::Zero { local: 0, len: 0 }; 8];
        let io = Io { op: Op::Read, lba: 8, blocks: 16, buf: Buf::Host(&[(0x1000, 4096), (0x9000, 4096)]) };
        assert_eq!(DEV.plan(&io, &mut out), Ok(2));
        assert_eq!(out[0], Move::ToHost { host: 0x1000, local: DEV.base + 8 * 512, len: 4096 });
        assert_eq!(out[1], Move::ToHost { host: 0x9000, local: DEV.base + 8 * 512 + 4096, len: 4096 });
    }

    /// The one-segment fast path plans what `plan` plans, errors included.
    #[test]
    fn host_move_is_the_plan_of_one_segment() {
        for read in [true, false] {
            for (lba, blocks, seg) in [(8, 8, (0x1000, 4096)), (0, 1, (0x2000, 512)), ((1 << 20) - 8, 8, (0x1000, 4096)), ((1 << 20) - 7, 8, (0x1000, 4096)), (u64::MAX, 1, (0, 512)), (0, 8, (0x1000, 2048)), (0, 4096, (0x1000, 2 << 20)), (4, 2048, (0x3000, 1 << 20))] {
                let op = if read { Op::Read } else { Op::Write };
                let segs = [seg];
                let mut out = [Move::Zero { local: 0, len: 0 }; 1];
                let planned = DEV.plan(&Io { op, lba, blocks, buf: Buf::Host(&segs) }, &mut out).map(|n| (n, out[0]));
                let direct = DEV.host_move(read, lba, blocks, seg).map(|m| (1, m));
                assert_eq!(direct, planned, "{read} {lba} {blocks} {seg:?}");
            }
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut out = [Move::Zero { local: 0, len: 0 }; 1];
        let io = Io { op: Op::Write, lba: (1 << 20) - 1, blocks: 2, buf: Buf::Host(&[(0, 1024)]) };
        assert_eq!(DEV.plan(&io, &mut out), Err(Error::OutOfRange));
        let io = Io { op: Op::Write, lba: 0, blocks: 2, buf: Buf::Host(&[(0, 512)]) };
        assert_eq!(DEV.plan(&io, &mut out), Err(Error::LengthMismatch));
        let io = Io { op: Op::Write, lba: 0, blocks: 2, buf: Buf::Host(&[(0, 512), (4096, 512)]) };
        assert_eq!(DEV.plan(&io, &mut out), Err(Error::TooManyMoves));
    }

    #[test]
    fn a_local_buffer_is_copied_to_and_from_the_device() {
        let mut out = [Move::Zero { local: 0, len: 0 }; 4];
        let pages = [(0x5000, 2048), (0x9000, 2048)];
        let w = Io { op: Op::Write, lba: 2, blocks: 8, buf: Buf::Local(&pages) };
        assert_eq!(DEV.plan(&w, &mut out), Ok(2));
        assert_eq!(out[0], Move::Copy { from: 0x5000, to: DEV.base + 1024, len: 2048 });
        assert_eq!(out[1], Move::Copy { from: 0x9000, to: DEV.base + 1024 + 2048, len: 2048 });
        let r = Io { op: Op::Read, lba: 2, blocks: 8, buf: Buf::Local(&pages) };
        assert_eq!(DEV.plan(&r, &mut out), Ok(2));
        assert_eq!(out[0], Move::Copy { from: DEV.base + 1024, to: 0x5000, len: 2048 });
        let none = Io { op: Op::Read, lba: 2, blocks: 8, buf: Buf::None };
        assert_eq!(DEV.plan(&none, &mut out), Err(Error::LengthMismatch));
    }

    #[test]
    fn zeroes_are_split_at_the_move_limit() {
        let mut out = [Move::Zero { local: 0, len: 0 }; 8];
        let io = Io { op: Op::WriteZeroes, lba: 0, blocks: 5000, buf: Buf::None };
        assert_eq!(DEV.plan(&io, &mut out), Ok(3), "2.44 MiB in 1 MiB moves");
        assert_eq!(out[2], Move::Zero { local: DEV.base + 2 * (1 << 20), len: 5000 * 512 - 2 * (1 << 20) });
        let flush = Io { op: Op::Flush, lba: 0, blocks: 0, buf: Buf::None };
        assert_eq!(DEV.plan(&flush, &mut out), Ok(0));
    }
}
