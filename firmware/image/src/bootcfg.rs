//! The boot configuration (`dpu_hal::regs::bootcfg`): namespaces and their
//! backends (RAM carved from DDR at boot, a remote NVMe-oF namespace, an
//! erasure-coded volume or a local SSD's namespace),
//! the DPU port addresses, the remote controllers, the host NQN and the
//! keys of encrypted namespaces (in the clear in the window; wrapped with
//! the device key, RFC 3394, in a configuration from flash: only the
//! crypto engines unwrap those, `crate::block::crypto::load_keys`).
//! Read and parsed (`dpu_bootcfg`) once by the admin service at boot;
//! read-only afterwards. Loaded as an ELF (development, the simulator), the
//! blob comes from the boot configuration window; booted from flash, the
//! firmware renders it from the configuration persisted there
//! (`crate::boot::config_blob`).

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use dpu_hal::memory_map::{BOOTCFG_BASE, BOOTCFG_SIZE};
use dpu_hal::regs::bootcfg as b;

pub use dpu_bootcfg::{Backend, ConfigError, CtrlCfg, SubsysCfg, EcVolume, MgmtCfg, Namespace, PortCfg, Table, MAX_CTRLS, MAX_EC_MEMBERS, MAX_NAMESPACES, MAX_NSID, NO_STAT};

/// Whether I/O can be served: always for RAM; for a remote namespace,
/// once the fabrics service has attached it.
pub fn ready(ns: &Namespace) -> bool {
    if ns.crypto.is_some() && !key_usable(ns) {
        return false;
    }
    match ns.backend {
        Backend::Ram(_) => true,
        Backend::Remote { .. } => READY[usize::from(ns.index)].load(Ordering::Acquire) == NS_READY,
        // Every member's controller has been connected once (a member
        // lost later makes the volume degraded, not unready).
        Backend::Ec { .. } => remote_ctrls(ns).all(|c| crate::nvmf::published(usize::from(c)).generation > 0),
        // The SSD service brought its SSD up and the namespace matched.
        Backend::Local { .. } => state(ns.index) == NS_READY,
    }
}

/// The remote controllers a namespace's blocks live on (none for RAM,
/// one for a remote namespace, the members' for an EC volume).
pub fn remote_ctrls(ns: &Namespace) -> impl Iterator<Item = u16> {
    let mut a = [0u16; MAX_EC_MEMBERS];
    let mut n = 0;
    match ns.backend {
        Backend::Ram(_) | Backend::Local { .. } => {}
        Backend::Remote { ctrl, .. } => {
            a[0] = ctrl;
            n = 1;
        }
        Backend::Ec { vol } => {
            if let Some(v) = ec_volume(vol) {
                n = v.width();
                for (j, m) in v.members[..n].iter().enumerate() {
                    a[j] = m.0;
                }
            }
        }
    }
    (0..n).map(move |j| a[j])
}

/// Erasure-coded volume `vol` of the configuration.
pub fn ec_volume(vol: u16) -> Option<&'static EcVolume> {
    TABLE.get()?.ec_volume(usize::from(vol))
}

/// Readiness of remote namespaces (written by the fabrics service).
pub const NS_PENDING: u8 = 0;
pub const NS_READY: u8 = 1;
/// Attached but the remote geometry differs from the configuration.
pub const NS_MISMATCH: u8 = 2;
/// The remote controller is unreachable (reconnecting).
pub const NS_OFFLINE: u8 = 3;
/// Whether the namespace keys are in the crypto engines' key slots
/// (`KEYS_*`, written once by the admin service at boot).
static KEYS: AtomicU8 = AtomicU8::new(KEYS_PENDING);
pub const KEYS_PENDING: u8 = 0;
/// The keys were loaded, but for those in [`set_key_failed`].
pub const KEYS_LOADED: u8 = 1;
/// No key could be loaded (no memory, no engine queue): encrypted
/// namespaces fail their I/O.
pub const KEYS_FAILED: u8 = 2;
/// Key records the engines refused (bit k: key record k; one per key
/// slot, at most 64): their namespaces fail their I/O, the others serve.
static KEY_FAILED: AtomicU64 = AtomicU64::new(0);

/// Marks key record `k` refused by the engines.
pub fn set_key_failed(k: u16) {
    KEY_FAILED.fetch_or(1u64.checked_shl(u32::from(k)).unwrap_or(0), Ordering::AcqRel);
}

/// Whether encrypted namespace `ns`'s key is in the engines' key slot.
/// A namespace attached at run time (`dpu_bootcfg::live::LIVE_INDEX`)
/// is a crypto device of the management server, which sends it only
/// after the engines unwrapped its key into the slot and clears the slot
/// only after the namespace was detached and drained: the message
/// itself says the key is there.
pub fn key_usable(ns: &Namespace) -> bool {
    if ns.index == dpu_bootcfg::live::LIVE_INDEX {
        return ns.crypto.is_some();
    }
    ns.crypto.is_some_and(|k| keys() == KEYS_LOADED && k < 64 && KEY_FAILED.load(Ordering::Acquire) & (1 << k) == 0)
}

/// Whether encrypted namespace `ns`'s key was refused (it will never serve).
pub fn key_failed(ns: &Namespace) -> bool {
    ns.crypto.is_some() && keys() != KEYS_PENDING && !key_usable(ns)
}

pub fn set_keys(state: u8) {
    KEYS.store(state, Ordering::Release);
}

pub fn keys() -> u8 {
    KEYS.load(Ordering::Acquire)
}

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

static TABLE: spin::Once<&'static Table> = spin::Once::new();

/// The table, built in place in DDR (it is too big for a stack).
struct InDdr(Table);

impl dpu_rt::ConstInit for InDdr {
    const INIT: InDdr = InDdr(Table::EMPTY);
}

/// Copies the configuration window to DDR: its header, then as many bytes
/// as the header says the records take (at most the window).
fn read_window() -> Option<&'static mut [u8]> {
    let mut header = [0u8; b::HEADER];
    dpu_hal::mem::read(BOOTCFG_BASE, &mut header);
    let len = dpu_bootcfg::blob_len(&header).min(BOOTCFG_SIZE).min(dpu_bootcfg::MAX_BLOB);
    let blob = dpu_rt::alloc::ddr_bytes(len, 8)?;
    dpu_hal::mem::read(BOOTCFG_BASE, blob);
    Some(blob)
}

/// Parses the boot configuration once (admin service at boot): from
/// flash when the bootloader started this image, else from the window.
pub fn load() -> Result<usize, ConfigError> {
    let t = dpu_rt::alloc::ddr_static::<InDdr>().ok_or(ConfigError::OutOfMemory { index: 0 })?;
    let blob = match crate::boot::config_blob() {
        // The configuration persisted in flash carries wrapped keys only.
        Some(blob) => blob,
        None => read_window().ok_or(ConfigError::OutOfMemory { index: 0 })?,
    };
    if let Err(e) = dpu_bootcfg::parse(blob, &mut t.0, dpu_rt::alloc::ram_namespace) {
        // Serve nothing rather than half a configuration.
        if let Some(empty) = dpu_rt::alloc::ddr_static::<InDdr>() {
            let empty: &'static InDdr = empty;
            TABLE.call_once(|| &empty.0);
        }
        return Err(e);
    }
    if t.0.keys_wrapped() {
        // Wrapped keys (from flash) are no secret without the device key:
        // `read_wrapped_key` reads them from this copy.
        let blob: &'static [u8] = blob;
        WRAPPED.call_once(|| blob);
    } else {
        // The DDR copy keeps no key: `read_key` reads the window.
        for k in 0..t.0.key_count() {
            if let Some(r) = t.0.key_range(k) {
                dpu_hal::mem::wipe(&mut blob[r]);
            }
        }
    }
    let t: &'static InDdr = t;
    let t: &'static Table = &t.0;
    let n = t.namespaces().count();
    for ns in t.namespaces() {
        let g = ns.geometry;
        if let Some(slot) = ns.crypto {
            defmt::info!("nvme: fn{=u16} nsid {=u32}: encrypted (AES-256-XTS, data unit {=u32} B, key slot {=u16})", ns.function, ns.nsid, 1u32 << g.block_shift, slot);
        }
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
            Backend::Local { ssd, nsid } => defmt::info!(
                "nvme: fn{=u16} nsid {=u32}: local SSD {=u16} nsid {=u32}, {=u64} blocks of {=u32} B",
                ns.function,
                ns.nsid,
                ssd,
                nsid,
                g.blocks,
                1u32 << g.block_shift
            ),
            Backend::Ec { vol } => {
                let (k, m) = t.ec_volume(usize::from(vol)).map_or((0, 0), |v| (v.k, v.m));
                defmt::info!(
                    "nvme: fn{=u16} nsid {=u32}: erasure-coded volume {=u16} ({=u8}+{=u8}, 4 KiB fragments), {=u64} blocks of {=u32} B",
                    ns.function,
                    ns.nsid,
                    vol,
                    k,
                    m,
                    g.blocks,
                    1u32 << g.block_shift
                )
            }
        }
    }
    TABLE.call_once(|| t);
    Ok(n)
}

/// The configuration blob when its key records are wrapped keys.
static WRAPPED: spin::Once<&'static [u8]> = spin::Once::new();

/// Whether the key records are wrapped with the device key (a
/// configuration from flash): load them with [`read_wrapped_key`].
pub fn keys_wrapped() -> bool {
    WRAPPED.get().is_some()
}

/// Wrapped key record `k` into `out` (for the engines to unwrap).
pub fn read_wrapped_key(k: usize, out: &mut [u8; b::KEY_RECORD_WRAPPED]) -> bool {
    let (Some(blob), Some(r)) = (WRAPPED.get(), TABLE.get().and_then(|t| t.key_range(k))) else { return false };
    match blob.get(r) {
        Some(w) if w.len() == out.len() => {
            out.copy_from_slice(w);
            true
        }
        _ => false,
    }
}

/// Key records: how many (each one's index is its key slot).
pub fn key_count() -> usize {
    TABLE.get().map_or(0, |t| t.key_count())
}

/// Key record `k` (64 bytes), read from the boot configuration window
/// into `out` for loading into the crypto engines; never kept or logged.
pub fn read_key(k: usize, out: &mut [u8; b::KEY_RECORD]) -> bool {
    let Some(r) = TABLE.get().and_then(|t| t.key_range(k)) else { return false };
    if r.end > BOOTCFG_SIZE {
        return false;
    }
    dpu_hal::mem::read(BOOTCFG_BASE + r.start, out);
    true
}

/// Whether `load` has run (other services wait for it).
pub fn loaded() -> bool {
    TABLE.get().is_some()
}

/// Namespace `nsid` of function `f`, if configured (after `load`).
pub fn namespace(f: u16, nsid: u32) -> Option<&'static Namespace> {
    TABLE.get()?.namespace(f, nsid)
}

/// NVMe/TCP target subsystem `i` (after `load`).
pub fn subsystem(i: usize) -> Option<&'static SubsysCfg> {
    TABLE.get()?.subsystem(i)
}

/// Number of NVMe/TCP target subsystems.
pub fn subsystems() -> usize {
    TABLE.get().map_or(0, |t| t.subsystems())
}

/// Namespace `nsid` of target subsystem `s`.
pub fn subsystem_namespace(s: u8, nsid: u32) -> Option<&'static Namespace> {
    TABLE.get()?.subsystem_namespace(s, nsid)
}

/// Every configured namespace.
pub fn namespaces() -> impl Iterator<Item = &'static Namespace> {
    TABLE.get().into_iter().flat_map(|t| t.namespaces())
}

/// NSIDs of function `f`, ascending.
pub fn nsids(f: u16) -> impl Iterator<Item = u32> {
    (1..=MAX_NSID).filter(move |&n| namespace(f, n).is_some())
}

/// Whether every remote namespace of function `f` has been looked at by
/// the fabrics service: attached, or found not to match the configuration
/// (that namespace then fails its I/O; the others work).
pub fn function_ready(f: u16) -> bool {
    nsids(f).all(|n| namespace(f, n).is_none_or(|ns| ready(ns) || state(ns.index) == NS_MISMATCH || key_failed(ns)))
}

/// DPU port addresses.
pub fn ports() -> &'static [PortCfg] {
    TABLE.get().map_or(&[], |t| t.ports())
}

/// The management server's settings, if configured.
pub fn management() -> Option<&'static MgmtCfg> {
    TABLE.get()?.management()
}

/// Remote controllers, by index.
pub fn controller(i: usize) -> Option<&'static CtrlCfg> {
    TABLE.get()?.controller(i)
}

pub fn controllers() -> usize {
    TABLE.get().map_or(0, |t| t.controllers())
}

/// The host NQN and host ID presented to remote targets.
pub fn host() -> (&'static [u8], [u8; 16]) {
    TABLE.get().map_or((&[][..], [0; 16]), |t| t.host())
}

/// Header flags (`FLAG_HDGST`, ...).
pub fn flags() -> u16 {
    TABLE.get().map_or(0, |t| t.flags())
}

/// Lower bound of the TCP retransmission timeout, in ms (5 when the
/// configuration leaves it 0).
pub fn tcp_min_rto_ms() -> u16 {
    match TABLE.get().map_or(0, |t| t.tcp_min_rto_ms()) {
        0 => 5,
        ms => ms.min(60_000),
    }
}

/// The configuration's remote I/O timeout (us, 0: the firmware's
/// default); `crate::net::settings` holds the value in force.
pub fn io_timeout_us() -> u32 {
    TABLE.get().map_or(0, |t| t.io_timeout_us())
}
