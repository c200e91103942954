//! An SSD's media: the blocks of its one namespace (backed sparsely,
//! unwritten blocks read as zeroes) and the timing of a media operation,
//! the latency / bandwidth / parallelism model of the board's `[ssd]`
//! profile, with the slowdown a scenario fault imposes.

use rustc_hash::FxHashMap;

/// Bytes per backing chunk.
const CHUNK: u64 = 4096;

/// Timing of one SSD, in core cycles (the board's nanoseconds converted
/// at the chip clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub read_cycles: u64,
    pub write_cycles: u64,
    /// Admin commands (handled by the SSD controller's firmware).
    pub admin_cycles: u64,
    /// Transfer rate, bytes per second, and the clock it is timed at.
    pub bytes_per_s: u64,
    pub clock_hz: u64,
    /// Media operations in flight at once.
    pub channels: u32,
}

impl Timing {
    /// Cycles `bytes` take on the SSD's link.
    pub fn transfer_cycles(&self, bytes: u64) -> u64 {
        (u128::from(bytes) * u128::from(self.clock_hz)).div_ceil(u128::from(self.bytes_per_s.max(1))) as u64
    }
}

/// What a media operation does, for its timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    /// No data, no media time beyond one write's (Flush: the write cache
    /// is power-loss protected, so draining it is not waited for).
    Flush,
}

/// The blocks and the busy state of an SSD.
pub struct Media {
    blocks: u64,
    lba_shift: u32,
    data: FxHashMap<u64, Box<[u8; CHUNK as usize]>>,
    timing: Timing,
    /// When each parallel unit is next free.
    units: Vec<u64>,
    /// When the link is next free.
    link_free: u64,
    /// A `slow` fault: media time per operation until the given cycle
    /// (`None`: for good).
    slow: Option<(u64, Option<u64>)>,
}

impl Media {
    pub fn new(capacity: u64, lba_shift: u32, timing: Timing) -> Media {
        Media {
            blocks: capacity >> lba_shift,
            lba_shift,
            data: FxHashMap::default(),
            timing,
            units: vec![0; timing.channels.max(1) as usize],
            link_free: 0,
            slow: None,
        }
    }

    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    pub fn lba_shift(&self) -> u32 {
        self.lba_shift
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// From now on (until `until`), every media operation takes `cycles`.
    pub fn set_slow(&mut self, cycles: u64, until: Option<u64>) {
        self.slow = Some((cycles, until));
    }

    pub fn clear_slow(&mut self) {
        self.slow = None;
    }

    fn media_cycles(&self, now: u64, kind: Kind) -> u64 {
        if let Some((c, until)) = self.slow {
            if until.is_none_or(|u| now < u) {
                return c;
            }
        }
        match kind {
            Kind::Read => self.timing.read_cycles,
            Kind::Write | Kind::Flush => self.timing.write_cycles,
        }
    }

    /// Schedules an operation of `bytes` submitted at `now`; returns when
    /// it completes. A read takes the earliest free unit for its media
    /// time, then the link for its bytes; a write takes the link first
    /// (the SSD fetches the data), then a unit.
    pub fn schedule(&mut self, now: u64, kind: Kind, bytes: u64) -> u64 {
        let media = self.media_cycles(now, kind);
        let xfer = self.timing.transfer_cycles(bytes);
        let (u, free) = self.units.iter().copied().enumerate().min_by_key(|&(_, t)| t).unwrap_or((0, 0));
        match kind {
            Kind::Read => {
                let media_end = now.max(free) + media;
                self.units[u] = media_end;
                let start = media_end.max(self.link_free);
                self.link_free = start + xfer;
                start + xfer
            }
            Kind::Write | Kind::Flush => {
                let start = now.max(self.link_free);
                self.link_free = start + xfer;
                let end = (start + xfer).max(free) + media;
                self.units[u] = end;
                end
            }
        }
    }

    /// Whether blocks `lba .. lba + n` exist.
    pub fn in_range(&self, lba: u64, n: u64) -> bool {
        lba.checked_add(n).is_some_and(|e| e <= self.blocks)
    }

    /// Bytes at byte offset `off` into `out` (zeroes where never written).
    pub fn read(&self, mut off: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let (chunk, at) = (off / CHUNK, (off % CHUNK) as usize);
            let n = (CHUNK as usize - at).min(out.len() - done);
            match self.data.get(&chunk) {
                Some(c) => out[done..done + n].copy_from_slice(&c[at..at + n]),
                None => out[done..done + n].fill(0),
            }
            done += n;
            off += n as u64;
        }
    }

    /// `data` at byte offset `off`.
    /// Makes `len` bytes at `off` read as zeroes (chunks wholly inside
    /// the range are dropped).
    pub fn zero(&mut self, mut off: u64, len: u64) {
        let end = off + len;
        while off < end {
            let (chunk, at) = (off / CHUNK, off % CHUNK);
            let n = (CHUNK - at).min(end - off);
            if at == 0 && n == CHUNK {
                self.data.remove(&chunk);
            } else if let Some(c) = self.data.get_mut(&chunk) {
                c[at as usize..(at + n) as usize].fill(0);
            }
            off += n;
        }
    }

    pub fn write(&mut self, mut off: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let (chunk, at) = (off / CHUNK, (off % CHUNK) as usize);
            let n = (CHUNK as usize - at).min(data.len() - done);
            let c = self.data.entry(chunk).or_insert_with(|| Box::new([0; CHUNK as usize]));
            c[at..at + n].copy_from_slice(&data[done..done + n]);
            done += n;
            off += n as u64;
        }
    }
}
