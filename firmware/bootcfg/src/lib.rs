//! The boot configuration blob (layout: `dpu_hal::regs::bootcfg`):
//! namespaces and their backends (RAM carved from DDR at boot, a remote
//! NVMe-oF namespace, an erasure-coded volume or a local SSD's namespace), the DPU port addresses, the remote controllers and
//! the host NQN, the keys of encrypted namespaces and the erasure-coded
//! volumes (k, m, member namespaces), parsed from the bytes of the
//! configuration window.
//!
//! Pure: no MMIO, no global state. The firmware image copies the window
//! ([`blob_len`] says how much of it the records take), calls [`parse`]
//! with a DDR allocator for RAM namespaces, and keeps the [`Table`]; the
//! parser is unit-tested and fuzzed on the host.
#![no_std]

pub mod live;
pub mod live_target;

use dpu_bdev::{Geometry, RamBdev};
use dpu_hal::memory_map::MAX_FUNCTIONS;
use dpu_hal::regs::bootcfg as b;

/// The limits come from `targets/src/limits.rs` (through `dpu-hal`),
/// which the scenario loader checks too.
pub use dpu_hal::memory_map::{MAX_NAMESPACES, MAX_NSID, MAX_PORTS};
/// Most remote controllers the configuration names.
pub const MAX_CTRLS: usize = dpu_hal::memory_map::MAX_REMOTE_CONTROLLERS;
// Identify Controller reports dpu-nvme's NN; the configuration must agree.
const _: () = assert!(dpu_nvme::MAX_NSID == MAX_NSID);

/// Largest blob a valid header can describe (every table at its maximum).
pub const MAX_BLOB: usize = b::HEADER
    + MAX_NAMESPACES * b::RECORD
    + MAX_PORTS * b::PORT_RECORD
    + MAX_CTRLS * b::CTRL_RECORD
    + b::HOST_RECORD
    + MAX_KEYS * b::KEY_RECORD_WRAPPED
    + MAX_EC_VOLUMES * b::EC_RECORD
    + b::MGMT_RECORD
    + MAX_SUBSYSTEMS * b::SUBSYS_RECORD;

/// Most NVMe/TCP target subsystems the configuration names.
pub use dpu_hal::memory_map::MAX_SUBSYSTEMS;
const _: () = assert!(dpu_hal::memory_map::MAX_ALLOWED_HOSTS <= b::SUBSYS_HOSTS_MAX);

/// Most erasure-coded volume records, and members of one volume.
pub use dpu_hal::memory_map::{MAX_EC_MEMBERS, MAX_EC_VOLUMES};
const _: () = assert!(MAX_EC_MEMBERS * b::EC_MEMBER + b::EC_MEMBERS <= b::EC_RECORD);

/// Most key records: one per key slot of the crypto engines.
pub const MAX_KEYS: usize = dpu_hal::memory_map::CRYPTO_KEY_SLOTS;

/// Where a namespace's blocks live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Ram(RamBdev),
    /// Namespace `nsid` of remote controller `ctrl` (index into the controllers).
    Remote { ctrl: u16, nsid: u32 },
    /// Erasure-coded volume `vol` (index into the EC volumes).
    Ec { vol: u16 },
    /// Namespace `nsid` of the card's local NVMe SSD in slot `ssd`
    /// (format 7).
    Local { ssd: u16, nsid: u32 },
}

/// An erasure-coded volume: stripes of k data and m parity fragments of
/// `b::EC_CHUNK` bytes over k + m remote namespaces (the members).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcVolume {
    pub k: u8,
    pub m: u8,
    /// (remote controller index, remote nsid) of each member, k + m used.
    pub members: [(u16, u32); MAX_EC_MEMBERS],
    /// Spare namespaces, in `members[k + m..k + m + spares]` (format 6).
    pub spares: u8,
    /// Card time (us since reset) of one scrub pass; 0 = none (format 6).
    pub scrub_at_us: u32,
    /// A scrub pass again this long (ms) after the last one ended; 0 =
    /// none (format 9).
    pub scrub_every_ms: u32,
}

impl EcVolume {
    /// Members (k + m).
    pub fn width(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// The member that holds fragment `frag` of stripe `stripe` (data
    /// 0..k, parity k..k+m): fragments rotate over the members.
    pub fn member_of(&self, stripe: u64, frag: usize) -> usize {
        let n = self.width() as u64;
        ((frag as u64 + stripe % n) % n) as usize
    }

    /// The (controller, nsid) of spare `s`.
    pub fn spare(&self, s: usize) -> Option<(u16, u32)> {
        (s < usize::from(self.spares)).then(|| self.members[self.width() + s])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub function: u16,
    pub nsid: u32,
    pub geometry: Geometry,
    pub backend: Backend,
    /// Index in the table (for per-namespace state such as readiness).
    pub index: u16,
    /// AES-256-XTS data-at-rest encryption: the key record, which is also
    /// the crypto engines' key slot.
    pub crypto: Option<u16>,
    /// Served by NVMe/TCP target subsystem `s` (format 8) instead of a
    /// PCIe function (`function` is then `u16::MAX`).
    pub subsystem: Option<u8>,
    /// Slot of its I/O statistics (the firmware's `nvme::iostat`): a boot
    /// namespace's is its `index`, a run-time block device's
    /// [`MAX_NAMESPACES`] + its management slot ([`live::LiveNs::stat`]);
    /// [`NO_STAT`]: not counted.
    pub stat: u16,
}

/// [`Namespace::stat`] of a namespace whose I/O is not counted.
pub const NO_STAT: u16 = u16::MAX;

/// An NVMe/TCP target subsystem (format 8): remote hosts connect to it
/// on `trsvcid` of the DPU ports in `ports`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubsysCfg {
    nqn: [u8; b::NQN_LEN],
    nqn_len: usize,
    pub trsvcid: u16,
    /// Bit p: listens on DPU port p.
    pub ports: u8,
    hosts: [[u8; b::NQN_LEN]; b::SUBSYS_HOSTS_MAX],
    host_lens: [usize; b::SUBSYS_HOSTS_MAX],
    nhosts: usize,
}

impl SubsysCfg {
    pub fn nqn(&self) -> &[u8] {
        &self.nqn[..self.nqn_len]
    }

    /// The allowed host NQNs (none: any host).
    pub fn hosts(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.nhosts).map(|k| &self.hosts[k][..self.host_lens[k]])
    }

    /// Whether host `hostnqn` may connect (no allow-list: any host).
    pub fn allows(&self, hostnqn: &[u8]) -> bool {
        self.nhosts == 0 || (0..self.nhosts).any(|k| &self.hosts[k][..self.host_lens[k]] == hostnqn)
    }
}

/// A DPU port's address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCfg {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub mtu: u16,
}

/// The management server's settings (the JSON-RPC server on a data port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MgmtCfg {
    /// Index of the port whose address serves.
    pub port: u8,
    pub tcp_port: u16,
    /// How long a begun request may take to arrive whole, ms (> 0).
    pub request_timeout_ms: u16,
    /// Allowed client prefixes (address, prefix length); none = any client.
    pub allow: [([u8; 4], u8); b::MGMT_ALLOW_MAX],
    pub allow_count: usize,
    token: [u8; b::MGMT_TOKEN_LEN],
    token_len: usize,
}

impl MgmtCfg {
    /// The access token every request must carry (empty: none needed).
    pub fn token(&self) -> &[u8] {
        &self.token[..self.token_len]
    }

    /// Sets the access token (empty: none); false (unchanged) if longer
    /// than `MGMT_TOKEN_LEN`.
    pub fn set_token(&mut self, t: &[u8]) -> bool {
        let Some(dst) = self.token.get_mut(..t.len()) else { return false };
        dst.copy_from_slice(t);
        self.token[t.len()..].fill(0);
        self.token_len = t.len();
        true
    }

    /// Sets the allow-list (empty: any client); false (unchanged) if it
    /// has more than `MGMT_ALLOW_MAX` entries.
    pub fn set_allow(&mut self, allow: &[([u8; 4], u8)]) -> bool {
        let Some(dst) = self.allow.get_mut(..allow.len()) else { return false };
        dst.copy_from_slice(allow);
        self.allow_count = allow.len();
        true
    }

    /// Whether a client at `ip` may connect.
    pub fn allows(&self, ip: [u8; 4]) -> bool {
        self.allow_count == 0
            || self.allow[..self.allow_count].iter().any(|&(net, prefix)| {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
                u32::from_be_bytes(net) & mask == u32::from_be_bytes(ip) & mask
            })
    }
}

/// A remote NVMe/TCP controller to connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The parsed configuration.
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
    /// Where the key records start in the blob, and how many there are.
    key_off: usize,
    nkeys: usize,
    /// Bytes of a key record (`KEY_RECORD`, or `KEY_RECORD_WRAPPED` when
    /// the records are wrapped keys).
    key_len: usize,
    ecs: [Option<EcVolume>; MAX_EC_VOLUMES],
    mgmt: Option<MgmtCfg>,
    subsystems: [Option<SubsysCfg>; MAX_SUBSYSTEMS],
}

/// Why the boot configuration was rejected (logged and reported through
/// the finisher, which ends a simulation; the firmware serves no
/// namespaces rather than wrong ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    BadMagic(u32),
    BadVersion(u16),
    TooMany(u16),
    BadRecord { index: usize },
    BadPort { index: usize },
    BadController { index: usize },
    OutOfMemory { index: usize },
    /// An encrypted namespace's cipher or key record is not valid.
    BadKey { index: usize },
    /// An erasure-coded namespace's volume record is not valid (k, m,
    /// members, a size that is not whole stripes).
    BadEc { index: usize },
    /// The management record is not valid (a port that is not
    /// configured, TCP port 0, a bad allow-list entry or token).
    BadMgmt,
    /// A target subsystem record is not valid, or a namespace names a
    /// subsystem that is not there (index: the subsystem record).
    BadSubsystem { index: usize },
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
            ConfigError::BadKey { index } => (b::REJECT_BAD_KEY, index),
            ConfigError::BadEc { index } => (b::REJECT_BAD_EC, index),
            ConfigError::BadMgmt => (b::REJECT_BAD_MGMT, 0),
            ConfigError::BadSubsystem { index } => (b::REJECT_BAD_SUBSYS, index),
        }
    }
}

/// `N` bytes at `off`; zeros past the end of the blob.
fn read<const N: usize>(blob: &[u8], off: usize) -> [u8; N] {
    let mut v = [0u8; N];
    if let Some(s) = off.checked_add(N).and_then(|end| blob.get(off..end)) {
        v.copy_from_slice(s);
    }
    v
}

fn read_u16(blob: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(read(blob, off))
}

fn read_u32(blob: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(read(blob, off))
}

fn read_u64(blob: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(read(blob, off))
}

/// Reads a NUL-padded NQN; `None` if it is empty, unterminated or not ASCII.
fn read_nqn(blob: &[u8], off: usize) -> Option<([u8; b::NQN_LEN], usize)> {
    let v: [u8; b::NQN_LEN] = read(blob, off);
    let len = v.iter().position(|&c| c == 0)?;
    (len > 0 && v[..len].iter().all(|c| c.is_ascii_graphic())).then_some((v, len))
}

/// Bytes of one key record of a blob with this header: wrapped keys
/// (format 10, `FLAG_KEYS_WRAPPED`) or keys in the clear.
pub fn key_record_len(header: &[u8]) -> usize {
    if read_u16(header, b::HDR_VERSION) >= 10 && read_u16(header, b::HDR_FLAGS) & b::FLAG_KEYS_WRAPPED != 0 {
        b::KEY_RECORD_WRAPPED
    } else {
        b::KEY_RECORD
    }
}

/// The bytes the records of a configuration take, from its header (the
/// first [`b::HEADER`] bytes; missing bytes count as zero). The firmware
/// reads this much of the window (at most the window) before [`parse`].
pub fn blob_len(header: &[u8]) -> usize {
    let count = usize::from(read_u16(header, b::HDR_COUNT));
    let nports = usize::from(read_u16(header, b::HDR_PORTS));
    let nctrls = usize::from(read_u16(header, b::HDR_CTRLS));
    let nkeys = usize::from(read_u16(header, b::HDR_KEYS));
    let nec = usize::from(read_u16(header, b::HDR_EC_VOLUMES));
    let nmgmt = usize::from(read_u16(header, b::HDR_MGMT));
    let nsub = if read_u16(header, b::HDR_VERSION) >= 8 { usize::from(read_u16(header, b::HDR_SUBSYS)) } else { 0 };
    b::HEADER
        + count * b::RECORD
        + nports * b::PORT_RECORD
        + nctrls * b::CTRL_RECORD
        + b::HOST_RECORD
        + nkeys * key_record_len(header)
        + nec * b::ec_record(read_u16(header, b::HDR_VERSION))
        + nmgmt * b::MGMT_RECORD
        + nsub * b::SUBSYS_RECORD
}

impl Table {
    /// No configuration.
    pub const EMPTY: Table = Table {
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
        key_off: 0,
        nkeys: 0,
        key_len: b::KEY_RECORD,
        ecs: [None; MAX_EC_VOLUMES],
        mgmt: None,
        subsystems: [None; MAX_SUBSYSTEMS],
    };

    /// Namespace `nsid` of function `f`, if configured.
    pub fn namespace(&self, f: u16, nsid: u32) -> Option<&Namespace> {
        let i = *self.index.get(usize::from(f))?.get(nsid as usize)?;
        if i == 0 {
            None
        } else {
            self.entries[usize::from(i) - 1].as_ref()
        }
    }

    /// Every configured namespace, in record order.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.entries.iter().flatten()
    }

    /// DPU port addresses.
    pub fn ports(&self) -> &[PortCfg] {
        &self.ports[..self.nports]
    }

    /// Remote controller `i`.
    pub fn controller(&self, i: usize) -> Option<&CtrlCfg> {
        self.ctrls.get(i)?.as_ref()
    }

    /// Number of remote controllers.
    pub fn controllers(&self) -> usize {
        self.ctrls.iter().flatten().count()
    }

    /// The host NQN (empty when the configuration has none) and host ID.
    pub fn host(&self) -> (&[u8], [u8; 16]) {
        (&self.host_nqn[..self.host_nqn_len], self.host_id)
    }

    /// Header flags (`FLAG_HDGST`, ...).
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Minimum TCP retransmission timeout in ms as configured (0 = default).
    pub fn tcp_min_rto_ms(&self) -> u16 {
        self.tcp_min_rto_ms
    }

    /// Remote I/O timeout in microseconds as configured (0 = default).
    pub fn io_timeout_us(&self) -> u32 {
        self.io_timeout_us
    }

    /// Key records: how many, and the byte range of record `k` in the
    /// blob (the keys are not kept in the table).
    pub fn key_count(&self) -> usize {
        self.nkeys
    }

    /// Whether the key records are wrapped keys (`FLAG_KEYS_WRAPPED`:
    /// the crypto engines unwrap them with the device key), not keys.
    pub fn keys_wrapped(&self) -> bool {
        self.key_len == b::KEY_RECORD_WRAPPED
    }

    /// Erasure-coded volume `i`.
    pub fn ec_volume(&self, i: usize) -> Option<&EcVolume> {
        self.ecs.get(i)?.as_ref()
    }

    /// The management server's settings, if the configuration has them.
    pub fn management(&self) -> Option<&MgmtCfg> {
        self.mgmt.as_ref()
    }

    /// NVMe/TCP target subsystem `i`.
    pub fn subsystem(&self, i: usize) -> Option<&SubsysCfg> {
        self.subsystems.get(i)?.as_ref()
    }

    /// Number of target subsystems.
    pub fn subsystems(&self) -> usize {
        self.subsystems.iter().flatten().count()
    }

    /// Namespace `nsid` of target subsystem `s`.
    pub fn subsystem_namespace(&self, s: u8, nsid: u32) -> Option<&Namespace> {
        self.namespaces().find(|n| n.subsystem == Some(s) && n.nsid == nsid)
    }

    pub fn key_range(&self, k: usize) -> Option<core::ops::Range<usize>> {
        (k < self.nkeys).then(|| self.key_off + k * self.key_len..self.key_off + (k + 1) * self.key_len)
    }
}

/// Fills `t` (an [`Table::EMPTY`], built in place by the caller: it is
/// too big for a stack) from `blob`, the configuration window's bytes (at
/// least [`blob_len`] of them: a shorter blob means the configuration does
/// not fit the window). `alloc_ram(bytes)` provides the DPU address of a
/// RAM namespace's blocks (`None`: out of memory).
pub fn parse(blob: &[u8], t: &mut Table, mut alloc_ram: impl FnMut(u64) -> Option<u64>) -> Result<(), ConfigError> {
    let magic = read_u32(blob, b::HDR_MAGIC);
    if magic == 0 {
        return Ok(()); // no configuration: no namespaces
    }
    if magic != b::MAGIC {
        return Err(ConfigError::BadMagic(magic));
    }
    let version = read_u16(blob, b::HDR_VERSION);
    if !(b::VERSION_MIN..=b::VERSION).contains(&version) {
        return Err(ConfigError::BadVersion(version));
    }
    let count = usize::from(read_u16(blob, b::HDR_COUNT));
    let nports = usize::from(read_u16(blob, b::HDR_PORTS));
    let nctrls = usize::from(read_u16(blob, b::HDR_CTRLS));
    let port_off = b::HEADER + count * b::RECORD;
    let ctrl_off = port_off + nports * b::PORT_RECORD;
    let host_off = ctrl_off + nctrls * b::CTRL_RECORD;
    let nkeys = usize::from(read_u16(blob, b::HDR_KEYS));
    let key_off = host_off + b::HOST_RECORD;
    let key_len = key_record_len(blob);
    let nec = usize::from(read_u16(blob, b::HDR_EC_VOLUMES));
    let ec_off = key_off + nkeys * key_len;
    let nmgmt = usize::from(read_u16(blob, b::HDR_MGMT));
    let ec_rec = b::ec_record(version);
    let mgmt_off = ec_off + nec * ec_rec;
    let nsub = if version >= 8 { usize::from(read_u16(blob, b::HDR_SUBSYS)) } else { 0 };
    let sub_off = mgmt_off + nmgmt * b::MGMT_RECORD;
    if count > MAX_NAMESPACES
        || nports > MAX_PORTS
        || nctrls > MAX_CTRLS
        || nkeys > MAX_KEYS
        || nec > MAX_EC_VOLUMES
        || nmgmt > 1
        || nsub > MAX_SUBSYSTEMS
        || sub_off + nsub * b::SUBSYS_RECORD > blob.len()
    {
        return Err(ConfigError::TooMany(count as u16));
    }
    t.key_off = key_off;
    t.nkeys = nkeys;
    t.key_len = key_len;
    t.flags = read_u16(blob, b::HDR_FLAGS);
    t.tcp_min_rto_ms = read_u16(blob, b::HDR_TCP_MIN_RTO_MS);
    t.io_timeout_us = read_u32(blob, b::HDR_IO_TIMEOUT_US);
    for i in 0..nports {
        let r = port_off + i * b::PORT_RECORD;
        let p = PortCfg {
            ip: read(blob, r + b::PORT_IP),
            prefix: read::<1>(blob, r + b::PORT_PREFIX)[0],
            mtu: read_u16(blob, r + b::PORT_MTU),
        };
        if !(8..=30).contains(&p.prefix) || !(576..=9000).contains(&p.mtu) || p.ip == [0; 4] {
            return Err(ConfigError::BadPort { index: i });
        }
        t.ports[i] = p;
    }
    t.nports = nports;
    if nmgmt == 1 {
        t.mgmt = Some(parse_mgmt(blob, mgmt_off, nports)?);
    }
    for i in 0..nsub {
        t.subsystems[i] = Some(parse_subsystem(blob, sub_off + i * b::SUBSYS_RECORD, nports).ok_or(ConfigError::BadSubsystem { index: i })?);
    }
    for i in 0..nctrls {
        let r = ctrl_off + i * b::CTRL_RECORD;
        let Some((subnqn, subnqn_len)) = read_nqn(blob, r + b::CTRL_SUBNQN) else {
            return Err(ConfigError::BadController { index: i });
        };
        let c = CtrlCfg {
            traddr: read(blob, r + b::CTRL_TRADDR),
            trsvcid: read_u16(blob, r + b::CTRL_TRSVCID),
            subnqn,
            subnqn_len,
        };
        if c.traddr == [0; 4] || c.trsvcid == 0 {
            return Err(ConfigError::BadController { index: i });
        }
        t.ctrls[i] = Some(c);
    }
    if let Some((nqn, len)) = read_nqn(blob, host_off + b::HOST_NQN) {
        t.host_nqn = nqn;
        t.host_nqn_len = len;
    }
    t.host_id = read(blob, host_off + b::HOST_ID);
    for v in 0..nec {
        let r = ec_off + v * ec_rec;
        let [k, m]: [u8; 2] = read(blob, r + b::EC_K);
        // Format 5 left the spare count and scrub time zero.
        let [spares]: [u8; 1] = read(blob, r + b::EC_SPARES);
        let scrub_at_us = read_u32(blob, r + b::EC_SCRUB_AT_US);
        let scrub_every_ms = if version >= 9 { read_u32(blob, r + b::EC_SCRUB_EVERY_MS) } else { 0 };
        let mut vol = EcVolume { k, m, members: [(0, 0); MAX_EC_MEMBERS], spares, scrub_at_us, scrub_every_ms };
        // The engine's limits (ISA-L's: k <= 32, m <= 4) and one staging
        // page per fragment; spares take member records after the members.
        let n = usize::from(k) + usize::from(m) + usize::from(spares);
        if k == 0 || m == 0 || usize::from(k) > dpu_hal::memory_map::EC_MAX_K || usize::from(m) > dpu_hal::memory_map::EC_MAX_M || n > MAX_EC_MEMBERS {
            continue; // rejected below if a namespace uses it
        }
        let mut ok = true;
        for j in 0..n {
            let e = r + b::EC_MEMBERS + j * b::EC_MEMBER;
            let (ctrl, nsid) = (read_u16(blob, e + b::EC_MEMBER_CTRL), read_u32(blob, e + b::EC_MEMBER_NSID));
            // Each member a distinct remote namespace.
            ok &= usize::from(ctrl) < nctrls && nsid != 0 && nsid != u32::MAX && !vol.members[..j].contains(&(ctrl, nsid));
            vol.members[j] = (ctrl, nsid);
        }
        if ok {
            t.ecs[v] = Some(vol);
        }
    }
    for i in 0..count {
        let r = b::HEADER + i * b::RECORD;
        let function = read_u16(blob, r + b::REC_FUNCTION);
        let [backend, shift]: [u8; 2] = read(blob, r + b::REC_BACKEND);
        let nsid = read_u32(blob, r + b::REC_NSID);
        let blocks = read_u64(blob, r + b::REC_BLOCKS);
        let subsystem = match read::<1>(blob, r + b::REC_SUBSYS)[0] {
            0 => None,
            s if version >= 8 && t.subsystems.get(usize::from(s) - 1).is_some_and(|x| x.is_some()) => Some(s - 1),
            s => return Err(ConfigError::BadSubsystem { index: usize::from(s) - 1 }),
        };
        if let Some(s) = subsystem {
            // A subsystem's namespace: no PCIe function, nsid unique in it.
            if nsid == 0 || nsid > MAX_NSID || !(9..=12).contains(&shift) || blocks == 0 || t.entries[..i].iter().flatten().any(|n| n.subsystem == Some(s) && n.nsid == nsid) {
                return Err(ConfigError::BadRecord { index: i });
            }
        } else if usize::from(function) >= MAX_FUNCTIONS
            || nsid == 0
            || nsid > MAX_NSID
            || !(9..=12).contains(&shift)
            || blocks == 0
            || t.index[usize::from(function)][nsid as usize] != 0
        {
            return Err(ConfigError::BadRecord { index: i });
        }
        let bytes = blocks
            .checked_shl(u32::from(shift))
            .filter(|b| b >> shift == blocks)
            .ok_or(ConfigError::BadRecord { index: i })?;
        let backend = match backend {
            b::BACKEND_RAM => {
                let base = alloc_ram(bytes).ok_or(ConfigError::OutOfMemory { index: i })?;
                Backend::Ram(RamBdev::new(base, blocks, shift))
            }
            b::BACKEND_NVMF => {
                let ctrl = read_u16(blob, r + b::REC_CTRL);
                let rnsid = read_u32(blob, r + b::REC_REMOTE_NSID);
                if usize::from(ctrl) >= nctrls || rnsid == 0 || rnsid == u32::MAX {
                    return Err(ConfigError::BadRecord { index: i });
                }
                Backend::Remote { ctrl, nsid: rnsid }
            }
            b::BACKEND_EC => {
                let vol = read_u16(blob, r + b::REC_CTRL);
                let Some(v) = t.ecs.get(usize::from(vol)).copied().flatten() else { return Err(ConfigError::BadEc { index: i }) };
                // Whole stripes of k fragments.
                let stripe = u64::from(v.k) * b::EC_CHUNK as u64;
                if bytes % stripe != 0 {
                    return Err(ConfigError::BadEc { index: i });
                }
                Backend::Ec { vol }
            }
            b::BACKEND_LOCAL if version >= 7 => {
                let ssd = read_u16(blob, r + b::REC_CTRL);
                let snsid = read_u32(blob, r + b::REC_REMOTE_NSID);
                if usize::from(ssd) >= dpu_hal::memory_map::SSD_SLOTS || snsid == 0 || snsid == u32::MAX {
                    return Err(ConfigError::BadRecord { index: i });
                }
                Backend::Local { ssd, nsid: snsid }
            }
            _ => return Err(ConfigError::BadRecord { index: i }),
        };
        let crypto = match read::<1>(blob, r + b::REC_CRYPTO)[0] {
            b::CRYPTO_NONE => None,
            b::CRYPTO_AES_XTS => {
                let k = usize::from(read_u16(blob, r + b::REC_KEY));
                let key: [u8; b::KEY_RECORD] = read(blob, key_off + k * key_len);
                // IEEE 1619-2018 §5.1: Key1 and Key2 are distinct keys (a
                // wrapped key is checked by the engine that unwraps it).
                if k >= nkeys || (key_len == b::KEY_RECORD && key[..32] == key[32..]) {
                    return Err(ConfigError::BadKey { index: i });
                }
                Some(k as u16)
            }
            _ => return Err(ConfigError::BadKey { index: i }),
        };
        t.entries[i] = Some(Namespace {
            function: if subsystem.is_some() { u16::MAX } else { function },
            nsid,
            geometry: Geometry { blocks, block_shift: shift },
            backend,
            index: i as u16,
            crypto,
            subsystem,
            stat: i as u16,
        });
        if subsystem.is_none() {
            t.index[usize::from(function)][nsid as usize] = i as u16 + 1;
        }
    }
    Ok(())
}

/// The target subsystem record at `r`; `None` if it is not valid.
fn parse_subsystem(blob: &[u8], r: usize, nports: usize) -> Option<SubsysCfg> {
    let (nqn, nqn_len) = read_nqn(blob, r + b::SUBSYS_NQN)?;
    let trsvcid = read_u16(blob, r + b::SUBSYS_TRSVCID);
    let [ports, nhosts]: [u8; 2] = read(blob, r + b::SUBSYS_PORTS);
    let nhosts = usize::from(nhosts);
    if trsvcid == 0 || ports == 0 || u32::from(ports) >> nports.min(8) != 0 || nhosts > b::SUBSYS_HOSTS_MAX {
        return None;
    }
    let mut s = SubsysCfg { nqn, nqn_len, trsvcid, ports, hosts: [[0; b::NQN_LEN]; b::SUBSYS_HOSTS_MAX], host_lens: [0; b::SUBSYS_HOSTS_MAX], nhosts };
    for k in 0..nhosts {
        let (h, len) = read_nqn(blob, r + b::SUBSYS_HOSTS + k * b::NQN_LEN)?;
        s.hosts[k] = h;
        s.host_lens[k] = len;
    }
    Some(s)
}

/// The management record at `r`.
fn parse_mgmt(blob: &[u8], r: usize, nports: usize) -> Result<MgmtCfg, ConfigError> {
    let [port, allow_count]: [u8; 2] = read(blob, r + b::MGMT_PORT);
    let tcp_port = read_u16(blob, r + b::MGMT_TCP_PORT);
    let request_timeout_ms = read_u16(blob, r + b::MGMT_REQUEST_TIMEOUT_MS);
    let token_len = usize::from(read::<1>(blob, r + b::MGMT_TOKEN_LEN_OFF)[0]);
    let allow_count = usize::from(allow_count);
    if usize::from(port) >= nports || tcp_port == 0 || request_timeout_ms == 0 || allow_count > b::MGMT_ALLOW_MAX || token_len > b::MGMT_TOKEN_LEN {
        return Err(ConfigError::BadMgmt);
    }
    let mut m = MgmtCfg { port, tcp_port, request_timeout_ms, allow: [([0; 4], 0); b::MGMT_ALLOW_MAX], allow_count, token: [0; b::MGMT_TOKEN_LEN], token_len };
    for (i, a) in m.allow.iter_mut().enumerate().take(allow_count) {
        let e = r + b::MGMT_ALLOW + i * b::MGMT_ALLOW_ENTRY;
        *a = (read(blob, e), read::<1>(blob, e + 4)[0]);
        if a.1 > 32 {
            return Err(ConfigError::BadMgmt);
        }
    }
    m.token = read(blob, r + b::MGMT_TOKEN);
    if !m.token[..token_len].iter().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::BadMgmt);
    }
    Ok(m)
}

#[cfg(test)]
mod tests;
