//! Namespaces from the boot configuration (`dpu_hal::regs::bootcfg`),
//! each backed by a RAM block device carved from DDR at boot.

use dpu_bdev::RamBdev;
use dpu_hal::memory_map::{BOOTCFG_BASE, BOOTCFG_SIZE, MAX_FUNCTIONS};
use dpu_hal::regs::bootcfg as b;
use dpu_nvme::MAX_NSID;

/// Most namespaces the firmware serves.
pub const MAX_NAMESPACES: usize = 256;

#[derive(Clone, Copy, Debug)]
pub struct Namespace {
    pub function: u16,
    pub nsid: u32,
    pub bdev: RamBdev,
}

pub struct Table {
    entries: [Option<Namespace>; MAX_NAMESPACES],
    /// (function, nsid) -> index + 1 (0 = none).
    index: [[u16; MAX_NSID as usize + 1]; MAX_FUNCTIONS],
}

static TABLE: spin::Once<Table> = spin::Once::new();

/// Why the boot configuration was rejected (logged; the firmware then
/// serves no namespaces rather than wrong ones).
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum ConfigError {
    BadMagic(u32),
    BadVersion(u16),
    TooMany(u16),
    BadRecord { index: usize },
    OutOfMemory { index: usize },
}

fn read_u16(off: usize) -> u16 {
    let mut v = [0u8; 2];
    dpu_hal::mem::read(BOOTCFG_BASE + off, &mut v);
    u16::from_le_bytes(v)
}

fn read_u32(off: usize) -> u32 {
    let mut v = [0u8; 4];
    dpu_hal::mem::read(BOOTCFG_BASE + off, &mut v);
    u32::from_le_bytes(v)
}

fn read_u64(off: usize) -> u64 {
    let mut v = [0u8; 8];
    dpu_hal::mem::read(BOOTCFG_BASE + off, &mut v);
    u64::from_le_bytes(v)
}

fn parse() -> Result<Table, ConfigError> {
    let mut t = Table { entries: [None; MAX_NAMESPACES], index: [[0; MAX_NSID as usize + 1]; MAX_FUNCTIONS] };
    let magic = read_u32(b::HDR_MAGIC);
    if magic == 0 {
        return Ok(t); // no configuration: no namespaces
    }
    if magic != b::MAGIC {
        return Err(ConfigError::BadMagic(magic));
    }
    let version = read_u16(b::HDR_VERSION);
    if version != b::VERSION {
        return Err(ConfigError::BadVersion(version));
    }
    let count = read_u16(b::HDR_COUNT);
    if usize::from(count) > MAX_NAMESPACES || b::HEADER + usize::from(count) * b::RECORD > BOOTCFG_SIZE {
        return Err(ConfigError::TooMany(count));
    }
    for i in 0..usize::from(count) {
        let r = b::HEADER + i * b::RECORD;
        let function = read_u16(r + b::REC_FUNCTION);
        let mut kind = [0u8; 2];
        dpu_hal::mem::read(BOOTCFG_BASE + r + b::REC_BACKEND, &mut kind);
        let (backend, shift) = (kind[0], kind[1]);
        let nsid = read_u32(r + b::REC_NSID);
        let blocks = read_u64(r + b::REC_BLOCKS);
        if backend != b::BACKEND_RAM
            || usize::from(function) >= MAX_FUNCTIONS
            || nsid == 0
            || nsid > MAX_NSID
            || !(9..=12).contains(&shift)
            || blocks == 0
            || t.index[usize::from(function)][nsid as usize] != 0
        {
            return Err(ConfigError::BadRecord { index: i });
        }
        let bytes = blocks.checked_shl(u32::from(shift)).ok_or(ConfigError::BadRecord { index: i })?;
        let base = dpu_rt::alloc::ddr(bytes, 4096).ok_or(ConfigError::OutOfMemory { index: i })?;
        t.entries[i] = Some(Namespace { function, nsid, bdev: RamBdev::new(base, blocks, shift) });
        t.index[usize::from(function)][nsid as usize] = i as u16 + 1;
    }
    Ok(t)
}

/// Parses the boot configuration once (admin service at boot).
pub fn load() -> Result<usize, ConfigError> {
    let t = parse()?;
    let n = t.entries.iter().flatten().count();
    for ns in t.entries.iter().flatten() {
        let g = ns.bdev.geometry;
        defmt::info!(
            "nvme: fn{=u16} nsid {=u32}: RAM, {=u64} blocks of {=u32} B at {=u64:#x}",
            ns.function,
            ns.nsid,
            g.blocks,
            1u32 << g.block_shift,
            ns.bdev.base
        );
    }
    TABLE.call_once(|| t);
    Ok(n)
}

/// Namespace `nsid` of function `f`, if configured (after `load`).
pub fn namespace(f: u16, nsid: u32) -> Option<&'static Namespace> {
    let t = TABLE.get()?;
    let i = *t.index.get(usize::from(f))?.get(nsid as usize)?;
    if i == 0 {
        None
    } else {
        t.entries[usize::from(i) - 1].as_ref()
    }
}

/// NSIDs of function `f`, ascending.
pub fn nsids(f: u16) -> impl Iterator<Item = u32> {
    (1..=MAX_NSID).filter(move |&n| namespace(f, n).is_some())
}
