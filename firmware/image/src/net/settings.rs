//! The port addresses and transport settings that change at run time
//! (`dpu_set_port`, `dpu_port_set_options`, `bdev_nvme_set_options`:
//! [`crate::mgmt::settings`]), published from the management server to
//! every core.
//!
//! One writer (the network service's hart, [`super::NET_HART`]), many
//! readers, no lock: each port's address is one 64-bit word (address,
//! prefix, MTU), each setting one 32-bit word, so a reader never sees
//! half a change. After a change the writer bumps [`version`] (Release)
//! and rings `DOORBELL_NVMF` on every data-plane core; a core compares
//! the version with the one it last applied ([`changed`]) on that
//! doorbell and then re-addresses its own stacks and takes the new
//! settings (its sockets, its timers) itself: no core touches another's
//! state.
//!
//! At boot [`init`] takes the boot configuration's values (the
//! configuration in flash, where the changes are saved).

use crate::bootcfg::{self, PortCfg};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use dpu_hal::memory_map::{NIC_PORTS, TIMEBASE_HZ};

/// Port p's address: bit 63 set, address (32 bits, big-endian order)
/// at 24, prefix at 16, MTU at 0; 0: not configured.
static PORTS: [AtomicU64; NIC_PORTS] = [const { AtomicU64::new(0) }; NIC_PORTS];
/// Remote I/O timeout (us, 0: not set yet).
static IO_TIMEOUT_US: AtomicU32 = AtomicU32::new(0);
/// Lower bound of the TCP retransmission timeout (ms, 0: not set yet).
static MIN_RTO_MS: AtomicU32 = AtomicU32::new(0);
/// Bumped after every change (even at boot: 1).
static VERSION: AtomicU32 = AtomicU32::new(0);

/// The remote I/O timeout when the configuration leaves it 0 (us).
pub const DEFAULT_IO_TIMEOUT_US: u32 = 20_000;
/// The TCP minimum RTO when the configuration leaves it 0 (ms).
pub const DEFAULT_MIN_RTO_MS: u16 = 5;
/// Largest TCP minimum RTO (ms).
pub const MAX_MIN_RTO_MS: u16 = 60_000;

fn pack(c: PortCfg) -> u64 {
    1 << 63 | u64::from(u32::from_be_bytes(c.ip)) << 24 | u64::from(c.prefix) << 16 | u64::from(c.mtu)
}

fn unpack(w: u64) -> Option<PortCfg> {
    if w >> 63 == 0 {
        return None;
    }
    Some(PortCfg { ip: ((w >> 24) as u32).to_be_bytes(), prefix: (w >> 16) as u8, mtu: w as u16 })
}

/// Takes the boot configuration's values (the network service, before
/// the ports are ready).
pub fn init() {
    for (w, c) in PORTS.iter().zip(bootcfg::ports()) {
        w.store(pack(*c), Ordering::Relaxed);
    }
    IO_TIMEOUT_US.store(bootcfg::io_timeout_us(), Ordering::Relaxed);
    MIN_RTO_MS.store(u32::from(bootcfg::tcp_min_rto_ms()), Ordering::Relaxed);
    VERSION.store(1, Ordering::Release);
}

/// Port `p`'s address now.
pub fn port(p: usize) -> Option<PortCfg> {
    unpack(PORTS.get(p)?.load(Ordering::Acquire))
}

/// How many ports the configuration names (fixed at boot).
pub fn ports() -> usize {
    bootcfg::ports().len().min(NIC_PORTS)
}

/// Every configured port's address now, by index.
pub fn addresses() -> impl Iterator<Item = (usize, PortCfg)> {
    (0..ports()).filter_map(|p| port(p).map(|c| (p, c)))
}

/// The remote I/O timeout (us).
pub fn io_timeout_us() -> u32 {
    match IO_TIMEOUT_US.load(Ordering::Relaxed) {
        0 => DEFAULT_IO_TIMEOUT_US,
        us => us,
    }
}

/// The remote I/O timeout in mtime ticks.
pub fn io_timeout_ticks() -> u64 {
    u64::from(io_timeout_us()) * (TIMEBASE_HZ / 1_000_000)
}

/// The TCP minimum retransmission timeout (ms).
pub fn tcp_min_rto_ms() -> u16 {
    match MIN_RTO_MS.load(Ordering::Relaxed) {
        0 => DEFAULT_MIN_RTO_MS,
        ms => (ms as u16).min(MAX_MIN_RTO_MS),
    }
}

/// The current version (see the module doc).
pub fn version() -> u32 {
    VERSION.load(Ordering::Acquire)
}

/// Whether a change was published since `seen`; updates `seen`.
pub fn changed(seen: &mut u32) -> bool {
    let v = version();
    core::mem::replace(seen, v) != v
}

/// What a publication changes (the writer, [`super::NET_HART`], only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Change {
    pub port: Option<(usize, PortCfg)>,
    pub io_timeout_us: Option<u32>,
    pub tcp_min_rto_ms: Option<u16>,
}

/// Publishes `c` and rings every data-plane core (the management
/// server, on [`super::NET_HART`], only: one writer).
pub fn publish(c: Change) {
    if let Some((p, cfg)) = c.port {
        if let Some(w) = PORTS.get(p) {
            w.store(pack(cfg), Ordering::Relaxed);
        }
    }
    if let Some(us) = c.io_timeout_us {
        IO_TIMEOUT_US.store(us, Ordering::Relaxed);
    }
    if let Some(ms) = c.tcp_min_rto_ms {
        MIN_RTO_MS.store(u32::from(ms), Ordering::Relaxed);
    }
    VERSION.fetch_add(1, Ordering::Release);
    for q in 0..super::DATA_CORES {
        dpu_hal::mailbox::ring(super::FIRST_DATA_HART + q, crate::nvmf::DOORBELL_NVMF);
    }
}
