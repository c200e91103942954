//! The boot configuration (`dpu_hal::regs::bootcfg`): namespaces and their
//! backends (RAM carved from DDR at boot, or a remote NVMe-oF namespace),
//! the DPU port addresses, the remote controllers and the host NQN.
//! Parsed once by the admin service at boot; read-only afterwards.
//!
//! Where the blob is: loaded as an ELF (development, the simulator), the
//! boot configuration window; booted from flash, the blob the firmware
//! renders from the configuration persisted in flash (`crate::boot`).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use dpu_bdev::{Geometry, RamBdev};
use dpu_hal::memory_map::{BOOTCFG_BASE, BOOTCFG_SIZE, MAX_FUNCTIONS, MAX_NAMESPACES, MAX_NSID, MAX_PORTS};
use dpu_hal::regs::bootcfg as b;

/// Most remote controllers the configuration names (the limits come from
/// `targets/src/limits.rs`, which the scenario loader checks too).
pub const MAX_CTRLS: usize = dpu_hal::memory_map::MAX_REMOTE_CONTROLLERS;
// Identify Controller reports dpu-nvme's NN; the configuration must agree.
const _: () = assert!(dpu_nvme::MAX_NSID == MAX_NSID);

/// Where a namespace's blocks live.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Ram(RamBdev),
    /// Namespace `nsid` of remote controller `ctrl` (index into `controllers()`).
    Remote { ctrl: u16, nsid: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Namespace {
    pub function: u16,
    pub nsid: u32,
    pub geometry: Geometry,
    pub backend: Backend,
    /// Index in the table (for per-namespace state such as readiness).
    pub index: u16,
}

impl Namespace {
    /// Whether I/O can be served: always for RAM; for a remote namespace,
    /// once the fabrics service has attached it.
    pub fn ready(&self) -> bool {
        match self.backend {
            Backend::Ram(_) => true,
            Backend::Remote { .. } => READY[usize::from(self.index)].load(Ordering::Acquire) == NS_READY,
        }
    }
}

/// Readiness of remote namespaces (written by the fabrics service).
pub const NS_PENDING: u8 = 0;
pub const NS_READY: u8 = 1;
/// Attached but the remote geometry differs from the configuration.
pub const NS_MISMATCH: u8 = 2;
/// The remote controller is unreachable (reconnecting).
pub const NS_OFFLINE: u8 = 3;
static READY: [AtomicU8; MAX_NAMESPACES] = [const { AtomicU8::new(NS_PENDING) }; MAX_NAMESPACES];

/// Sets the state of namespace `index` (fabrics service).
pub fn set_state(index: u16, state: u8) {
    if let Some(r) = READY.get(usize::from(index)) {
        r.store(state, Ordering::Release);
    }
}

pub fn state(index: u16) -> u8 {
    READY.get(usize::from(index)).map_or(NS_OFFLINE, |r| r.load(Ordering::Acquire))
}

/// A DPU port's address.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortCfg {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub mtu: u16,
}

/// A remote NVMe/TCP controller to connect to.
#[derive(Clone, Copy, Debug)]
pub struct CtrlCfg {
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub subnqn: [u8; b::NQN_LEN],
    pub subnqn_len: usize,
}

impl CtrlCfg {
    pub fn subnqn(&self) -> &[u8] {
        &self.subnqn[..self.subnqn_len]
    }
}

pub struct Table {
    entries: [Option<Namespace>; MAX_NAMESPACES],
    /// (function, nsid) -> index + 1 (0 = none).
    index: [[u16; MAX_NSID as usize + 1]; MAX_FUNCTIONS],
    ports: [PortCfg; MAX_PORTS],
    nports: usize,
    ctrls: [Option<CtrlCfg>; MAX_CTRLS],
    host_nqn: [u8; b::NQN_LEN],
    host_nqn_len: usize,
    host_id: [u8; 16],
    flags: u16,
    tcp_min_rto_ms: u16,
    io_timeout_us: u32,
}

static TABLE: spin::Once<&'static Table> = spin::Once::new();

/// Why the boot configuration was rejected (logged and reported through
/// the finisher, which ends a simulation; the firmware serves no
/// namespaces rather than wrong ones).
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum ConfigError {
    BadMagic(u32),
    BadVersion(u16),
    TooMany(u16),
    BadRecord { index: usize },
    BadPort { index: usize },
    BadController { index: usize },
    OutOfMemory { index: usize },
}

impl ConfigError {
    /// (reason, record index) for the finisher report (`b::REJECT_*`).
    pub fn code(self) -> (u16, usize) {
        match self {
            ConfigError::BadMagic(_) => (b::REJECT_BAD_MAGIC, 0),
            ConfigError::BadVersion(_) => (b::REJECT_BAD_VERSION, 0),
            ConfigError::TooMany(n) => (b::REJECT_TOO_MANY, usize::from(n)),
            ConfigError::BadRecord { index } => (b::REJECT_BAD_RECORD, index),
            ConfigError::BadPort { index } => (b::REJECT_BAD_PORT, index),
            ConfigError::BadController { index } => (b::REJECT_BAD_CONTROLLER, index),
            ConfigError::OutOfMemory { index } => (b::REJECT_OUT_OF_MEMORY, index),
        }
    }
}

/// Where the blob being parsed is (address, bytes).
static BLOB_BASE: AtomicUsize = AtomicUsize::new(BOOTCFG_BASE);
static BLOB_SIZE: AtomicUsize = AtomicUsize::new(BOOTCFG_SIZE);

fn read<const N: usize>(off: usize) -> [u8; N] {
    let mut v = [0u8; N];
    if off + N <= BLOB_SIZE.load(Ordering::Relaxed) {
        dpu_hal::mem::read(BLOB_BASE.load(Ordering::Relaxed) + off, &mut v);
    }
    v
}

fn read_u16(off: usize) -> u16 {
    u16::from_le_bytes(read(off))
}

fn read_u32(off: usize) -> u32 {
    u32::from_le_bytes(read(off))
}

fn read_u64(off: usize) -> u64 {
    u64::from_le_bytes(read(off))
}

/// Reads a NUL-padded NQN; `None` if it is empty, unterminated or not ASCII.
fn read_nqn(off: usize) -> Option<([u8; b::NQN_LEN], usize)> {
    let v: [u8; b::NQN_LEN] = read(off);
    let len = v.iter().position(|&c| c == 0)?;
    (len > 0 && v[..len].iter().all(|c| c.is_ascii_graphic())).then_some((v, len))
}

impl dpu_rt::ConstInit for Table {
    const INIT: Table = Table {
        entries: [None; MAX_NAMESPACES],
        index: [[0; MAX_NSID as usize + 1]; MAX_FUNCTIONS],
        ports: [PortCfg { ip: [0; 4], prefix: 0, mtu: 0 }; MAX_PORTS],
        nports: 0,
        ctrls: [None; MAX_CTRLS],
        host_nqn: [0; b::NQN_LEN],
        host_nqn_len: 0,
        host_id: [0; 16],
        flags: 0,
        tcp_min_rto_ms: 0,
        io_timeout_us: 0,
    };
}

/// Fills `t` (built in place in DDR: the table is too big for a stack).
fn parse(t: &mut Table) -> Result<(), ConfigError> {
    let magic = read_u32(b::HDR_MAGIC);
    if magic == 0 {
        return Ok(()); // no configuration: no namespaces
    }
    if magic != b::MAGIC {
        return Err(ConfigError::BadMagic(magic));
    }
    let version = read_u16(b::HDR_VERSION);
    if version != b::VERSION {
        return Err(ConfigError::BadVersion(version));
    }
    let count = usize::from(read_u16(b::HDR_COUNT));
    let nports = usize::from(read_u16(b::HDR_PORTS));
    let nctrls = usize::from(read_u16(b::HDR_CTRLS));
    let port_off = b::HEADER + count * b::RECORD;
    let ctrl_off = port_off + nports * b::PORT_RECORD;
    let host_off = ctrl_off + nctrls * b::CTRL_RECORD;
    if count > MAX_NAMESPACES || nports > MAX_PORTS || nctrls > MAX_CTRLS || host_off + b::HOST_RECORD > BLOB_SIZE.load(Ordering::Relaxed) {
        return Err(ConfigError::TooMany(count as u16));
    }
    t.flags = read_u16(b::HDR_FLAGS);
    t.tcp_min_rto_ms = read_u16(b::HDR_TCP_MIN_RTO_MS);
    t.io_timeout_us = read_u32(b::HDR_IO_TIMEOUT_US);
    for i in 0..nports {
        let r = port_off + i * b::PORT_RECORD;
        let p = PortCfg { ip: read(r + b::PORT_IP), prefix: read::<1>(r + b::PORT_PREFIX)[0], mtu: read_u16(r + b::PORT_MTU) };
        if !(8..=30).contains(&p.prefix) || !(576..=9000).contains(&p.mtu) || p.ip == [0; 4] {
            return Err(ConfigError::BadPort { index: i });
        }
        t.ports[i] = p;
    }
    t.nports = nports;
    for i in 0..nctrls {
        let r = ctrl_off + i * b::CTRL_RECORD;
        let Some((subnqn, subnqn_len)) = read_nqn(r + b::CTRL_SUBNQN) else {
            return Err(ConfigError::BadController { index: i });
        };
        let c = CtrlCfg { traddr: read(r + b::CTRL_TRADDR), trsvcid: read_u16(r + b::CTRL_TRSVCID), subnqn, subnqn_len };
        if c.traddr == [0; 4] || c.trsvcid == 0 {
            return Err(ConfigError::BadController { index: i });
        }
        t.ctrls[i] = Some(c);
    }
    if let Some((nqn, len)) = read_nqn(host_off + b::HOST_NQN) {
        t.host_nqn = nqn;
        t.host_nqn_len = len;
    }
    t.host_id = read(host_off + b::HOST_ID);
    for i in 0..count {
        let r = b::HEADER + i * b::RECORD;
        let function = read_u16(r + b::REC_FUNCTION);
        let [backend, shift]: [u8; 2] = read(r + b::REC_BACKEND);
        let nsid = read_u32(r + b::REC_NSID);
        let blocks = read_u64(r + b::REC_BLOCKS);
        if usize::from(function) >= MAX_FUNCTIONS
            || nsid == 0
            || nsid > MAX_NSID
            || !(9..=12).contains(&shift)
            || blocks == 0
            || t.index[usize::from(function)][nsid as usize] != 0
        {
            return Err(ConfigError::BadRecord { index: i });
        }
        let bytes = blocks.checked_shl(u32::from(shift)).filter(|b| b >> shift == blocks).ok_or(ConfigError::BadRecord { index: i })?;
        let backend = match backend {
            b::BACKEND_RAM => {
                let base = dpu_rt::alloc::ram_namespace(bytes).ok_or(ConfigError::OutOfMemory { index: i })?;
                Backend::Ram(RamBdev::new(base, blocks, shift))
            }
            b::BACKEND_NVMF => {
                let ctrl = read_u16(r + b::REC_CTRL);
                let rnsid = read_u32(r + b::REC_REMOTE_NSID);
                if usize::from(ctrl) >= nctrls || rnsid == 0 || rnsid == u32::MAX {
                    return Err(ConfigError::BadRecord { index: i });
                }
                Backend::Remote { ctrl, nsid: rnsid }
            }
            _ => return Err(ConfigError::BadRecord { index: i }),
        };
        t.entries[i] = Some(Namespace { function, nsid, geometry: Geometry { blocks, block_shift: shift }, backend, index: i as u16 });
        t.index[usize::from(function)][nsid as usize] = i as u16 + 1;
    }
    Ok(())
}

/// Parses the boot configuration once (admin service at boot): from
/// flash when the bootloader started this image, else from the window.
pub fn load() -> Result<usize, ConfigError> {
    if let Some((base, size)) = crate::boot::config_blob() {
        BLOB_BASE.store(base, Ordering::Relaxed);
        BLOB_SIZE.store(size, Ordering::Relaxed);
    }
    let t = dpu_rt::alloc::ddr_static::<Table>().ok_or(ConfigError::OutOfMemory { index: 0 })?;
    if let Err(e) = parse(t) {
        // Serve nothing rather than half a configuration.
        if let Some(empty) = dpu_rt::alloc::ddr_static::<Table>() {
            TABLE.call_once(|| empty);
        }
        return Err(e);
    }
    let t: &'static Table = t;
    let n = t.entries.iter().flatten().count();
    for ns in t.entries.iter().flatten() {
        let g = ns.geometry;
        match ns.backend {
            Backend::Ram(bdev) => defmt::info!(
                "nvme: fn{=u16} nsid {=u32}: RAM, {=u64} blocks of {=u32} B at {=u64:#x}",
                ns.function,
                ns.nsid,
                g.blocks,
                1u32 << g.block_shift,
                bdev.base
            ),
            Backend::Remote { ctrl, nsid } => defmt::info!(
                "nvme: fn{=u16} nsid {=u32}: remote controller {=u16} nsid {=u32}, {=u64} blocks of {=u32} B",
                ns.function,
                ns.nsid,
                ctrl,
                nsid,
                g.blocks,
                1u32 << g.block_shift
            ),
        }
    }
    TABLE.call_once(|| t);
    Ok(n)
}

/// Whether `load` has run (other services wait for it).
pub fn loaded() -> bool {
    TABLE.get().is_some()
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

/// Every configured namespace.
pub fn namespaces() -> impl Iterator<Item = &'static Namespace> {
    TABLE.get().into_iter().flat_map(|t| t.entries.iter().flatten())
}

/// NSIDs of function `f`, ascending.
pub fn nsids(f: u16) -> impl Iterator<Item = u32> {
    (1..=MAX_NSID).filter(move |&n| namespace(f, n).is_some())
}

/// Whether every remote namespace of function `f` has been looked at by
/// the fabrics service: attached, or found not to match the configuration
/// (that namespace then fails its I/O; the others work).
pub fn function_ready(f: u16) -> bool {
    nsids(f).all(|n| namespace(f, n).is_none_or(|ns| ns.ready() || state(ns.index) == NS_MISMATCH))
}

/// DPU port addresses.
pub fn ports() -> &'static [PortCfg] {
    TABLE.get().map_or(&[], |t| &t.ports[..t.nports])
}

/// Remote controllers, by index.
pub fn controller(i: usize) -> Option<&'static CtrlCfg> {
    TABLE.get()?.ctrls.get(i)?.as_ref()
}

pub fn controllers() -> usize {
    TABLE.get().map_or(0, |t| t.ctrls.iter().flatten().count())
}

/// The host NQN and host ID presented to remote targets.
pub fn host() -> (&'static [u8], [u8; 16]) {
    TABLE.get().map_or((&[][..], [0; 16]), |t| (&t.host_nqn[..t.host_nqn_len], t.host_id))
}

/// Header flags (`FLAG_HDGST`, ...).
pub fn flags() -> u16 {
    TABLE.get().map_or(0, |t| t.flags)
}

/// Lower bound of the TCP retransmission timeout, in ms (5 when the
/// configuration leaves it 0).
pub fn tcp_min_rto_ms() -> u16 {
    match TABLE.get().map_or(0, |t| t.tcp_min_rto_ms) {
        0 => 5,
        ms => ms.min(60_000),
    }
}

/// How long a command sent to a remote controller may stay unanswered
/// before the queue's association is torn down and the command retried,
/// in mtime ticks (20 ms when the configuration leaves it 0).
pub fn remote_io_timeout() -> u64 {
    let us = match TABLE.get().map_or(0, |t| t.io_timeout_us) {
        0 => 20_000,
        us => us,
    };
    u64::from(us) * (dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000)
}
