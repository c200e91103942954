//! What the firmware's boot configuration can describe. The firmware
//! (through the constants `dpu-hal` generates from this file) and the
//! scenario loader both use these, so a scenario the loader accepts is one
//! the firmware can serve.

/// Namespace records (one per function and namespace) the firmware serves.
pub const MAX_NAMESPACES: usize = 256;
/// Highest namespace ID of a function (Identify Controller NN; NVMe Base
/// 2.0 §5.17.2.1). `dpu-nvme` reports the same number and the firmware
/// checks at build time that they agree.
pub const MAX_NSID: u32 = 32;
/// Remote NVMe-oF subsystems (address, port, NQN) the firmware connects to.
pub const MAX_REMOTE_CONTROLLERS: usize = 16;
/// DPU port addresses the boot configuration carries.
pub const MAX_PORTS: usize = 8;
/// Encrypted namespace records (each has its key record and crypto
/// engine key slot); a chip must have at least this many key slots for
/// a scenario to use them all (`Scenario::check_platform`).
pub const MAX_KEYS: usize = 64;
/// Erasure-coded volume records (each names its k + m member namespaces).
pub const MAX_EC_VOLUMES: usize = 16;
/// Members (k + m) of one erasure-coded volume: one staging page per
/// fragment of a stripe, at most the pages one I/O may hold (32).
pub const MAX_EC_MEMBERS: usize = 32;

/// NVMe/TCP target listening sockets each data-plane core opens per
/// (DPU port, TCP port) of the subsystems (connections RSS places on one
/// core at the same time) ...
pub const TARGET_LISTENERS: usize = 4;
/// ... per DPU port that has a subsystem, for the discovery service
/// (TCP 8009; hosts connect to it briefly) ...
pub const DISCOVERY_LISTENERS: usize = 2;
/// ... and at most this many in all (the target's connection table).
pub const TARGET_SOCKETS: usize = 16;

/// Cycles in `ns` nanoseconds at `clock_hz`, saturating instead of
/// wrapping (scenario times are at most [`crate::MAX_TIME_NS`]).
pub fn ns_to_cycles(ns: u64, clock_hz: u64) -> u64 {
    u64::try_from(u128::from(ns) * u128::from(clock_hz) / 1_000_000_000).unwrap_or(u64::MAX)
}
