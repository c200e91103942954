//! The card's configuration as an operator sets it, and how it survives
//! in flash.
//!
//! * [`Config`]: namespaces and their backends, DPU port addresses,
//!   remote NVMe-oF controllers, host identity, transport settings, the
//!   management server; encoded with postcard (serde), checked by
//!   [`Config::validate`].
//! * [`store`]: the flash `config` partition holds two copies; a save
//!   writes the copy that does not hold the newest valid configuration,
//!   so a power cut at any moment leaves at least one good copy. Each
//!   copy is a header (magic, record format, schema version, sequence,
//!   length, CRC-32) and the postcard bytes. Loading takes the valid copy
//!   with the highest sequence; a bad copy (CRC, unknown version, a value
//!   out of range) falls back to the other, else to an empty
//!   configuration, and says why.
//! * [`blob`]: renders a configuration into the boot configuration blob
//!   the firmware's namespace table is built from (`dpu_hal::regs::bootcfg`).
//!
//! Keys: an encrypted namespace's AES-256-XTS key (IEEE 1619-2018) is
//! kept only wrapped with the card's device key ([`NsKey`]: AES key wrap,
//! RFC 3394 / NIST SP 800-38F KW); the key itself is never in flash. Only
//! the crypto engines, which read the device key from the OTP fuses, can
//! unwrap it (`dpu_hal::regs::crypto::OP_KEY_UNWRAP`).
#![no_std]

pub mod blob;
pub mod store;

use dpu_hal::memory_map::{DISCOVERY_LISTENERS, EC_MAX_K, EC_MAX_M, MAX_EC_MEMBERS, MAX_EC_VOLUMES, MAX_FUNCTIONS, MAX_NAMESPACES, MAX_NSID, MAX_PORTS, MAX_REMOTE_CONTROLLERS, SSD_SLOTS, TARGET_LISTENERS, TARGET_SOCKETS};
pub use dpu_hal::memory_map::{MAX_ALLOWED_HOSTS, MAX_SUBSYSTEMS, MAX_SUBSYSTEM_NAMESPACES};
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Longest NQN (NVMe Base 2.0 §4.5: 223 bytes).
pub const NQN_MAX: usize = 223;

/// The well-known discovery subsystem NQN (NVMe Base 2.0 §4.5): never a
/// configured subsystem.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// Version of the [`Config`] schema a record carries; a record of an
/// unknown version is refused (and the other copy used).
///
/// Versions extend the record at its end: version 1 is the postcard
/// encoding of [`Config`] without [`Config::management`] and
/// [`Config::mallocs`]; version 2 appends `Option<Management>` after it;
/// version 3 then appends the run-time block devices (`Vec<Malloc>`);
/// version 4 adds the local SSD backend ([`Backend::Local`], a new last
/// variant, so older records decode unchanged) and appends the NVMe/TCP
/// target's subsystems (`Vec<Subsystem>`); version 5 appends the
/// target subsystems made through the management API
/// (`Vec<NvmfSubsystem>`); version 6 adds erasure-coded volumes
/// ([`Backend::Ec`], a new last variant, and `Vec<EcVolume>` appended);
/// version 7 appends the remote NVMe/TCP controllers attached through the
/// management API (`Vec<NvmeController>`); version 8 appends the wrapped
/// keys of encrypted namespaces (`Vec<NsKey>`); version 9 appends the
/// crypto keys made through the management API, wrapped
/// (`Vec<CryptoKey>`, SPDK `accel_crypto_key_create`), and the crypto
/// block devices stacked on run-time devices with their mappings
/// (`Vec<CryptoBdev>`, SPDK `bdev_crypto_create`); version 10 appends
/// the erasure-coded volumes made through the management API
/// (`Vec<EcBdev>`, ours `bdev_ec_create`);
/// version 11 appends the VFs the PF's SR-IOV capability offers
/// ([`Config::sriov_total_vfs`], `Option<u16>`).
/// A card written by an older firmware keeps its configuration after an
/// update (with what that version could hold).
pub const SCHEMA_VERSION: u16 = 11;

/// The oldest schema version still read.
pub const SCHEMA_VERSION_MIN: u16 = 1;

/// Most client prefixes in the management allow-list.
pub const MGMT_ALLOW_MAX: usize = dpu_hal::regs::bootcfg::MGMT_ALLOW_MAX;

/// Longest management access token (bytes).
pub const MGMT_TOKEN_MAX: usize = dpu_hal::regs::bootcfg::MGMT_TOKEN_LEN;

/// Most RAM block devices created through the management API.
pub const MAX_MALLOC: usize = 16;

/// Longest name of such a block device.
pub const MALLOC_NAME_MAX: usize = 31;

/// Most remote controllers attached through the management API.
pub const MAX_NVME: usize = 4;

/// Longest name of such a controller (its block devices are
/// `<name>n<nsid>`, within [`MALLOC_NAME_MAX`]).
pub const NVME_NAME_MAX: usize = 24;

/// Most namespaces of such a controller that are mapped to functions.
pub const NVME_MAPS_MAX: usize = 8;

/// Most listeners (DPU port, TCP port) of a subsystem made through the
/// management API.
pub const NVMF_LISTENERS_MAX: usize = 4;

/// Bytes of a wrapped AES-256-XTS key (RFC 3394: the 64-byte key plus
/// one 8-byte integrity block).
pub const WRAPPED_KEY_LEN: usize = dpu_hal::regs::crypto::WRAPPED_XTS_KEY;

/// Most encrypted namespaces: one key slot of the crypto engines each.
pub const MAX_KEYS: usize = dpu_hal::memory_map::CRYPTO_KEY_SLOTS;

/// Most crypto keys made through the management API.
pub const MAX_CRYPTO_KEYS: usize = 16;

/// Longest name of such a key.
pub const CRYPTO_KEY_NAME_MAX: usize = 31;

/// Most crypto block devices made through the management API.
pub const MAX_CRYPTO_BDEVS: usize = 16;

/// Most erasure-coded volumes made through the management API.
pub const MAX_EC_BDEVS: usize = 8;

/// Most base block devices (members and spares) of one of them.
pub const EC_BASE_MAX: usize = 16;

/// Identify Controller SN and MN lengths (NVMe Base 2.0 §5.17.2.1).
pub const SERIAL_MAX: usize = 20;
pub const MODEL_MAX: usize = 40;

/// Everything the operator configures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub namespaces: Vec<Namespace, MAX_NAMESPACES>,
    pub ports: Vec<Port, MAX_PORTS>,
    pub controllers: Vec<Controller, MAX_REMOTE_CONTROLLERS>,
    /// Host NQN and host ID presented to remote targets.
    pub host_nqn: String<NQN_MAX>,
    pub host_id: [u8; 16],
    /// NVMe/TCP header and data digests toward remote targets.
    pub header_digest: bool,
    pub data_digest: bool,
    /// Large receive offload on the NIC.
    pub lro: bool,
    /// Minimum TCP retransmission timeout (0: the firmware's default).
    pub tcp_min_rto_ms: u16,
    /// Remote I/O timeout in microseconds (0: the firmware's default).
    pub io_timeout_us: u32,
    /// The JSON-RPC management server, if the card serves one (schema
    /// version 2: encoded after the fields above, see [`SCHEMA_VERSION`]).
    #[serde(skip)]
    pub management: Option<Management>,
    /// RAM block devices created through the management API
    /// (`bdev_malloc_create`, `dpu_ns_attach`), saved when they change
    /// and created again at boot, empty (schema version 3).
    #[serde(skip)]
    pub mallocs: Vec<Malloc, MAX_MALLOC>,
    /// The NVMe/TCP target's subsystems (schema version 4).
    #[serde(skip)]
    pub subsystems: Vec<Subsystem, MAX_SUBSYSTEMS>,
    /// Target subsystems made through the management API (SPDK
    /// `nvmf_create_subsystem` and the `nvmf_subsystem_*` methods), saved
    /// when they change and made again at boot (schema version 5).
    #[serde(skip)]
    pub nvmf: Vec<NvmfSubsystem, MAX_SUBSYSTEMS>,
    /// Erasure-coded volumes the namespaces with [`Backend::Ec`] are
    /// (schema version 6).
    #[serde(skip)]
    pub ec_volumes: Vec<EcVolume, MAX_EC_VOLUMES>,
    /// Remote NVMe/TCP controllers attached through the management API
    /// (SPDK `bdev_nvme_attach_controller`), attached again at boot, and
    /// the mappings of their namespaces (schema version 7).
    #[serde(skip)]
    pub nvme: Vec<NvmeController, MAX_NVME>,
    /// Encrypted function namespaces and their wrapped keys (schema
    /// version 8).
    #[serde(skip)]
    pub ns_keys: Vec<NsKey, MAX_KEYS>,
    /// Crypto keys made through the management API, wrapped with the
    /// device key (schema version 9).
    #[serde(skip)]
    pub crypto_keys: Vec<CryptoKey, MAX_CRYPTO_KEYS>,
    /// Crypto block devices made through the management API and their
    /// mappings (schema version 9).
    #[serde(skip)]
    pub crypto_bdevs: Vec<CryptoBdev, MAX_CRYPTO_BDEVS>,
    /// Erasure-coded volumes made through the management API and their
    /// mappings (schema version 10).
    #[serde(skip)]
    pub ec_bdevs: Vec<EcBdev, MAX_EC_BDEVS>,
    /// The VFs the PF's SR-IOV capability offers the host (its TotalVFs
    /// and InitialVFs), set through the management API
    /// (`dpu_sriov_set_total_vfs`) and applied at boot before the host
    /// sees the PF; `None`: the board's maximum (schema version 11).
    #[serde(skip)]
    pub sriov_total_vfs: Option<u16>,
}

/// A named AES-256-XTS key made through the management API (SPDK
/// `accel_crypto_key_create`): only its wrapped form (RFC 3394 with the
/// card's device key, as [`NsKey`]) is ever kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoKey {
    /// 1..=CRYPTO_KEY_NAME_MAX letters, digits, `_`, `-`, `.`.
    pub name: String<CRYPTO_KEY_NAME_MAX>,
    /// Key then Key2 (64 bytes), wrapped: [`WRAPPED_KEY_LEN`] bytes.
    pub wrapped: Vec<u8, WRAPPED_KEY_LEN>,
}

/// A crypto block device made through the management API (SPDK
/// `bdev_crypto_create`): `name`, stacked on run-time block device
/// `base` (a RAM device or a run-time controller's namespace), encrypted
/// with key `key`, and the (function, NSID) it is mapped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoBdev {
    pub name: String<MALLOC_NAME_MAX>,
    pub base: String<MALLOC_NAME_MAX>,
    pub key: String<CRYPTO_KEY_NAME_MAX>,
    pub map: Option<(u16, u32)>,
}

/// An erasure-coded volume made through the management API (ours
/// `bdev_ec_create`): `name`, k data and m parity fragments per stripe
/// over `base_bdevs` (k + m members in slot order, then `spares`
/// spares: run-time controllers' namespaces `<controller>n<nsid>`), a
/// scrub every `scrub_every_ms` (0: none), and the (function, NSID) it
/// is mapped to. Made again at boot once its members are back; its
/// superblocks on the members then decide which are trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcBdev {
    pub name: String<MALLOC_NAME_MAX>,
    pub k: u8,
    pub m: u8,
    pub spares: u8,
    pub scrub_every_ms: u32,
    pub base_bdevs: Vec<String<MALLOC_NAME_MAX>, EC_BASE_MAX>,
    pub map: Option<(u16, u32)>,
}

/// Data-at-rest encryption of a function namespace: AES-256-XTS (IEEE
/// 1619-2018; data unit = block, tweak = LBA) with a key held only
/// wrapped with the card's device key (RFC 3394 AES key wrap, NIST SP
/// 800-38F §6.2 KW, AES-256 key-encryption key in the OTP fuses). The
/// crypto engines unwrap it into a key slot at boot; a blob wrapped with
/// another card's device key does not unwrap (the namespace is then not
/// served).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsKey {
    pub function: u16,
    pub nsid: u32,
    /// The 64-byte XTS key (Key1 then Key2), wrapped: [`WRAPPED_KEY_LEN`] bytes.
    pub wrapped: Vec<u8, WRAPPED_KEY_LEN>,
}

/// A remote NVMe/TCP controller attached through the management API.
/// Its namespaces are block devices `<name>n<nsid>` (the controller's
/// active namespaces when it attaches).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeController {
    /// 1..=NVME_NAME_MAX letters, digits, `_`, `-`, `.`.
    pub name: String<NVME_NAME_MAX>,
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub subnqn: String<NQN_MAX>,
    /// Empty: the card's host NQN.
    pub hostnqn: String<NQN_MAX>,
    pub hdgst: bool,
    pub ddgst: bool,
    /// (remote NSID, PCIe function, NSID): its namespaces mapped to
    /// functions (`dpu_ns_attach`).
    pub maps: Vec<(u32, u16, u32), NVME_MAPS_MAX>,
}

/// An erasure-coded volume (`dpu_hal::regs::bootcfg` EC record): k data
/// and m parity fragments of 4 KiB per stripe, rotating over k + m
/// members, then spares, each a namespace of a remote controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcVolume {
    pub k: u8,
    pub m: u8,
    /// (remote controller index, nsid): the k + m members, then the spares.
    pub members: Vec<(u16, u32), MAX_EC_MEMBERS>,
    /// How many of `members` (the last) are spares.
    pub spares: u8,
    /// Card time (us) of a scrub pass (0: none) and the period after it
    /// (ms, 0: none).
    pub scrub_at_us: u32,
    pub scrub_every_ms: u32,
}

/// A target subsystem made through the management API: its namespaces
/// are run-time RAM block devices ([`Config::mallocs`]) by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSubsystem {
    pub nqn: String<NQN_MAX>,
    /// Identify Controller SN and MN (empty: the firmware's own).
    pub serial_number: String<SERIAL_MAX>,
    pub model_number: String<MODEL_MAX>,
    /// Any host may connect; else only `hosts`.
    pub allow_any_host: bool,
    pub hosts: Vec<String<NQN_MAX>, MAX_ALLOWED_HOSTS>,
    /// Highest namespace ID (1..=MAX_SUBSYSTEM_NAMESPACES).
    pub max_namespaces: u32,
    /// (DPU port index, TCP port) it listens on.
    pub listeners: Vec<(u8, u16), NVMF_LISTENERS_MAX>,
    /// (NSID, run-time block device name).
    pub namespaces: Vec<(u32, String<MALLOC_NAME_MAX>), MAX_SUBSYSTEM_NAMESPACES>,
}

/// An NVMe/TCP target subsystem: what remote hosts reach on the card's
/// ports (NVMe-oF 1.1 §4; served by the firmware's `nvmf::target`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subsystem {
    /// NVMe Qualified Name (NVMe Base 2.0 §4.5), printable ASCII.
    pub nqn: String<NQN_MAX>,
    /// Host NQNs allowed to connect; empty: any host.
    pub allow_hosts: Vec<String<NQN_MAX>, MAX_ALLOWED_HOSTS>,
    /// TCP port it listens on.
    pub trsvcid: u16,
    /// DPU ports it listens on (bit p: port p).
    pub ports: u8,
    /// Namespace i has NSID i + 1.
    pub namespaces: Vec<SubsystemNs, MAX_SUBSYSTEM_NAMESPACES>,
}

/// A namespace of a target subsystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemNs {
    /// log2 of the block size (9 or 12).
    pub block_shift: u8,
    pub blocks: u64,
    /// [`Backend::Ram`] or [`Backend::Local`].
    pub backend: Backend,
}

/// A RAM block device made at run time, and where it is mapped. Its
/// data is not kept (DPU memory): after a restart it reads zeroes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Malloc {
    /// 1..=31 letters, digits, `_`, `-`, `.`.
    pub name: String<MALLOC_NAME_MAX>,
    pub blocks: u64,
    /// log2 of the block size (9 or 12).
    pub block_shift: u8,
    /// (PCIe function, namespace ID) it serves, if mapped.
    pub map: Option<(u16, u32)>,
}

/// The management (JSON-RPC) server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Management {
    /// Index of the port whose address serves.
    pub port: u8,
    pub tcp_port: u16,
    /// How long a begun request may take to arrive whole (ms, > 0).
    pub request_timeout_ms: u16,
    /// Client prefixes allowed to connect (address, prefix length);
    /// empty: any client.
    pub allow: Vec<([u8; 4], u8), MGMT_ALLOW_MAX>,
    /// Access token every request carries; empty: none.
    pub token: String<MGMT_TOKEN_MAX>,
}

/// A namespace of a PCIe function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub function: u16,
    pub nsid: u32,
    /// log2 of the block size (9..=12).
    pub block_shift: u8,
    pub blocks: u64,
    pub backend: Backend,
}

/// Where a namespace's blocks live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// DDR carved at boot.
    Ram,
    /// Namespace `nsid` of remote controller `controller` (index).
    Remote { controller: u16, nsid: u32 },
    /// Namespace `nsid` of the card's local NVMe SSD in slot `ssd`
    /// (schema version 4).
    Local { ssd: u16, nsid: u32 },
    /// Erasure-coded volume `volume` ([`Config::ec_volumes`], schema
    /// version 6).
    Ec { volume: u16 },
}

/// A DPU port's IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub mtu: u16,
}

/// A remote NVMe/TCP controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub subnqn: String<NQN_MAX>,
}

/// What makes a configuration unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Invalid {
    /// Function beyond the board, nsid outside 1..=MAX_NSID, block size
    /// not 512..4096, no blocks, a size overflowing 64 bits, a duplicate,
    /// or a remote backend naming no controller / an invalid nsid.
    Namespace { index: u16 },
    /// Prefix outside 8..=30, MTU outside 576..=9000, or address 0.0.0.0.
    Port { index: u16 },
    /// Address 0.0.0.0, port 0, or a subsystem NQN that is empty or not
    /// printable ASCII.
    Controller { index: u16 },
    /// A host NQN that is not printable ASCII.
    HostNqn,
    /// A management port that is not configured, TCP port 0, no request
    /// timeout, an allow-list prefix over 32, or a token that is not
    /// printable ASCII.
    Management,
    /// A bad name (or one used twice), block size, block count, or a
    /// mapping outside the functions or namespace IDs, or taken by a
    /// namespace or another device.
    Malloc { index: u16 },
    /// A subsystem NQN that is empty, not printable or used twice, a bad
    /// allowed host NQN, TCP port 0, no port or one not configured, no
    /// namespace, a namespace with a bad size or backend, a local SSD
    /// that backs something else too, or more listening sockets than a
    /// core's target has (too many TCP ports per DPU port).
    Subsystem { index: u16 },
    /// A subsystem made through the management API with an NQN that is
    /// empty, not printable or used twice, a bad SN, MN or host NQN, a
    /// listener on a port not configured or on TCP port 0, an NSID
    /// outside 1..=max_namespaces or used twice, or a namespace naming no
    /// run-time block device, one mapped to a function or used twice.
    Nvmf { index: u16 },
    /// A controller attached through the management API with a bad name
    /// (or one used twice), address, TCP port 0, a subsystem or host NQN
    /// that is empty or not printable, or a mapping to a function
    /// namespace out of range or taken.
    Nvme { index: u16 },
    /// An erasure-coded volume with k or m outside what the engine does
    /// (k 1..=EC_MAX_K, m 1..=EC_MAX_M), members not k + m + spares (at
    /// most 32), a member naming no controller, nsid 0, or one twice; or
    /// no namespace using it.
    Ec { index: u16 },
    /// A wrapped key naming no function namespace, or one named twice, or
    /// a blob that is not [`WRAPPED_KEY_LEN`] bytes.
    Key { index: u16 },
    /// A crypto key made through the management API with a bad name (or
    /// one used twice), or a blob that is not [`WRAPPED_KEY_LEN`] bytes.
    CryptoKey { index: u16 },
    /// A crypto block device with a bad name (or one used twice, or a
    /// run-time device's), a base that is no run-time block device (or
    /// is mapped, or under another crypto device), a key that is not
    /// kept, or a mapping out of range or taken.
    CryptoBdev { index: u16 },
    /// An erasure-coded volume made through the management API with a bad
    /// name (or one used twice, or another run-time device's), k or m
    /// outside what the engine does, base devices that are not k + m +
    /// spares distinct run-time controllers' namespaces (unmapped, in no
    /// other volume), or a mapping out of range or taken.
    EcBdev { index: u16 },
    /// An SR-IOV VF count beyond the functions the board has.
    SriovTotalVfs,
}

fn printable(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_graphic())
}

impl Config {
    /// The empty configuration (no namespaces, ports or controllers), as a
    /// constant for static storage.
    pub const EMPTY: Config = Config {
        namespaces: Vec::new(),
        ports: Vec::new(),
        controllers: Vec::new(),
        host_nqn: String::new(),
        host_id: [0; 16],
        header_digest: false,
        data_digest: false,
        lro: false,
        tcp_min_rto_ms: 0,
        io_timeout_us: 0,
        management: None,
        mallocs: Vec::new(),
        subsystems: Vec::new(),
        nvmf: Vec::new(),
        ec_volumes: Vec::new(),
        nvme: Vec::new(),
        ns_keys: Vec::new(),
        crypto_keys: Vec::new(),
        crypto_bdevs: Vec::new(),
        ec_bdevs: Vec::new(),
        sriov_total_vfs: None,
    };

    /// Checks every value against what the firmware can serve.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (i, p) in self.ports.iter().enumerate() {
            if !(8..=30).contains(&p.prefix) || !(576..=9000).contains(&p.mtu) || p.ip == [0; 4] {
                return Err(Invalid::Port { index: i as u16 });
            }
        }
        for (i, c) in self.controllers.iter().enumerate() {
            if c.traddr == [0; 4] || c.trsvcid == 0 || c.subnqn.is_empty() || !printable(&c.subnqn) {
                return Err(Invalid::Controller { index: i as u16 });
            }
        }
        if !printable(&self.host_nqn) {
            return Err(Invalid::HostNqn);
        }
        if let Some(m) = &self.management {
            if usize::from(m.port) >= self.ports.len() || m.tcp_port == 0 || m.request_timeout_ms == 0 || m.allow.iter().any(|a| a.1 > 32) || !printable(&m.token) {
                return Err(Invalid::Management);
            }
        }
        for (i, m) in self.mallocs.iter().enumerate() {
            let name_ok = !m.name.is_empty() && m.name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
            let twice = self.mallocs[..i].iter().any(|o| o.name == m.name);
            let size_ok = matches!(m.block_shift, 9 | 12) && (1..=u64::from(u32::MAX)).contains(&m.blocks);
            let map_ok = m.map.is_none_or(|(f, nsid)| {
                usize::from(f) < MAX_FUNCTIONS
                    && (1..=MAX_NSID).contains(&nsid)
                    && !self.namespaces.iter().any(|n| (n.function, n.nsid) == (f, nsid))
                    && !self.mallocs[..i].iter().any(|o| o.map == m.map)
            });
            if !name_ok || twice || !size_ok || !map_ok {
                return Err(Invalid::Malloc { index: i as u16 });
            }
        }
        for (i, n) in self.namespaces.iter().enumerate() {
            let bad = Err(Invalid::Namespace { index: i as u16 });
            if usize::from(n.function) >= MAX_FUNCTIONS || n.nsid == 0 || n.nsid > MAX_NSID || !(9..=12).contains(&n.block_shift) || n.blocks == 0 {
                return bad;
            }
            if n.blocks.checked_shl(u32::from(n.block_shift)).is_none_or(|b| b >> n.block_shift != n.blocks) {
                return bad;
            }
            if self.namespaces[..i].iter().any(|m| m.function == n.function && m.nsid == n.nsid) {
                return bad;
            }
            match n.backend {
                Backend::Remote { controller, nsid } if usize::from(controller) >= self.controllers.len() || nsid == 0 || nsid == u32::MAX => return bad,
                Backend::Local { ssd, nsid } if !self.local_ok(ssd, nsid, false) => return bad,
                Backend::Ec { volume } => {
                    // Whole stripes of k 4 KiB data fragments.
                    let Some(v) = self.ec_volumes.get(usize::from(volume)) else { return bad };
                    let stripe = u64::from(v.k) * dpu_hal::regs::bootcfg::EC_CHUNK as u64;
                    // (k 0 is the volume's error, below.)
                    if stripe != 0 && (n.blocks << n.block_shift) % stripe != 0 {
                        return bad;
                    }
                }
                _ => {}
            }
        }
        for (i, v) in self.ec_volumes.iter().enumerate() {
            let n = usize::from(v.k) + usize::from(v.m) + usize::from(v.spares);
            let members_ok = v.members.iter().enumerate().all(|(j, &(c, nsid))| usize::from(c) < self.controllers.len() && nsid != 0 && nsid != u32::MAX && !v.members[..j].contains(&(c, nsid)));
            let used = self.namespaces.iter().any(|ns| ns.backend == Backend::Ec { volume: i as u16 });
            if !(1..=EC_MAX_K).contains(&usize::from(v.k)) || !(1..=EC_MAX_M).contains(&usize::from(v.m)) || n > MAX_EC_MEMBERS || v.members.len() != n || !members_ok || !used {
                return Err(Invalid::Ec { index: i as u16 });
            }
        }
        for (i, k) in self.ns_keys.iter().enumerate() {
            let known = self.namespaces.iter().any(|n| (n.function, n.nsid) == (k.function, k.nsid));
            let twice = self.ns_keys[..i].iter().any(|o| (o.function, o.nsid) == (k.function, k.nsid));
            if !known || twice || k.wrapped.len() != WRAPPED_KEY_LEN {
                return Err(Invalid::Key { index: i as u16 });
            }
        }
        let records = self.namespaces.len() + self.subsystems.iter().map(|s| s.namespaces.len()).sum::<usize>();
        // Every data-plane core listens on each (port, TCP port) and on
        // the discovery port of each port used, within its socket table.
        let mut sockets = 0;
        let mut used = 0u8;
        for (i, s) in self.subsystems.iter().enumerate() {
            let new_pairs = (0..8).filter(|p| s.ports & (1 << p) != 0 && !self.subsystems[..i].iter().any(|o| o.trsvcid == s.trsvcid && o.ports & (1 << p) != 0));
            sockets += new_pairs.count() * TARGET_LISTENERS;
            used |= s.ports;
            if sockets + used.count_ones() as usize * DISCOVERY_LISTENERS > TARGET_SOCKETS {
                return Err(Invalid::Subsystem { index: i as u16 });
            }
        }
        for (i, s) in self.subsystems.iter().enumerate() {
            let bad = Err(Invalid::Subsystem { index: i as u16 });
            let nqn_ok = |n: &str| !n.is_empty() && printable(n);
            if !nqn_ok(&s.nqn) || s.nqn == DISCOVERY_NQN || self.subsystems[..i].iter().any(|o| o.nqn == s.nqn) || !s.allow_hosts.iter().all(|h| nqn_ok(h)) {
                return bad;
            }
            // The card's own connections use 40000-40999 and the
            // ephemeral range (as the scenario loader says).
            let port_taken = (40000..=40999).contains(&s.trsvcid) || s.trsvcid >= 49152 || self.management.as_ref().is_some_and(|m| m.tcp_port == s.trsvcid);
            if s.trsvcid == 0 || port_taken || s.ports == 0 || u32::from(s.ports) >> self.ports.len().min(8) != 0 || s.namespaces.is_empty() || records > MAX_NAMESPACES {
                return bad;
            }
            for n in &s.namespaces {
                let backend_ok = match n.backend {
                    Backend::Ram => true,
                    Backend::Local { ssd, nsid } => self.local_ok(ssd, nsid, true),
                    Backend::Remote { .. } | Backend::Ec { .. } => false,
                };
                if !matches!(n.block_shift, 9 | 12) || n.blocks == 0 || n.blocks > u64::MAX >> 12 || !backend_ok {
                    return bad;
                }
            }
        }
        for (i, s) in self.nvmf.iter().enumerate() {
            let nqn_ok = |n: &str| !n.is_empty() && printable(n);
            let text_ok = |t: &str| t.bytes().all(|c| c.is_ascii_graphic() || c == b' ');
            let twice = self.nvmf[..i].iter().any(|o| o.nqn == s.nqn) || self.subsystems.iter().any(|o| o.nqn == s.nqn);
            let max = s.max_namespaces;
            let listeners_ok = s.listeners.iter().enumerate().all(|(k, &(p, t))| usize::from(p) < self.ports.len() && t != 0 && !s.listeners[..k].contains(&(p, t)));
            let ns_ok = s.namespaces.iter().enumerate().all(|(k, (nsid, name))| {
                (1..=max).contains(nsid)
                    && !s.namespaces[..k].iter().any(|o| o.0 == *nsid)
                    && self.mallocs.iter().any(|m| m.name == *name && m.map.is_none())
                    && self.nvmf.iter().flat_map(|o| &o.namespaces).filter(|o| o.1 == *name).count() == 1
            });
            if !nqn_ok(&s.nqn)
                || s.nqn == DISCOVERY_NQN
                || twice
                || !text_ok(&s.serial_number)
                || !text_ok(&s.model_number)
                || !s.hosts.iter().all(|h| nqn_ok(h))
                || !(1..=MAX_SUBSYSTEM_NAMESPACES as u32).contains(&max)
                || !listeners_ok
                || !ns_ok
            {
                return Err(Invalid::Nvmf { index: i as u16 });
            }
        }
        for (i, c) in self.nvme.iter().enumerate() {
            let name_ok = !c.name.is_empty() && c.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            let twice = self.nvme[..i].iter().any(|o| o.name == c.name);
            let nqn_ok = !c.subnqn.is_empty() && printable(&c.subnqn) && printable(&c.hostnqn);
            let taken = |f: u16, nsid: u32| {
                self.namespaces.iter().any(|n| (n.function, n.nsid) == (f, nsid))
                    || self.mallocs.iter().any(|m| m.map == Some((f, nsid)))
                    || self.nvme[..i].iter().flat_map(|o| &o.maps).any(|m| (m.1, m.2) == (f, nsid))
            };
            let maps_ok = c.maps.iter().enumerate().all(|(k, &(rn, f, nsid))| {
                rn != 0 && usize::from(f) < MAX_FUNCTIONS && (1..=MAX_NSID).contains(&nsid) && !taken(f, nsid) && !c.maps[..k].iter().any(|o| o.0 == rn || (o.1, o.2) == (f, nsid))
            });
            if !name_ok || twice || c.traddr == [0; 4] || c.trsvcid == 0 || !nqn_ok || !maps_ok {
                return Err(Invalid::Nvme { index: i as u16 });
            }
        }
        let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        for (i, k) in self.crypto_keys.iter().enumerate() {
            if !name_ok(&k.name) || self.crypto_keys[..i].iter().any(|o| o.name == k.name) || k.wrapped.len() != WRAPPED_KEY_LEN {
                return Err(Invalid::CryptoKey { index: i as u16 });
            }
        }
        // A base is a RAM device (unmapped) or a run-time controller's
        // namespace `<name>n<nsid>` (unmapped).
        let ns_of_ctrl = |b: &str| {
            self.nvme.iter().any(|c| b.strip_prefix(c.name.as_str()).and_then(|r| r.strip_prefix('n')).and_then(|r| r.parse::<u32>().ok()).is_some_and(|n| n != 0 && !c.maps.iter().any(|m| m.0 == n)))
        };
        for (i, e) in self.ec_bdevs.iter().enumerate() {
            let earlier = &self.ec_bdevs[..i];
            let width = usize::from(e.k) + usize::from(e.m);
            let bases_ok = e.base_bdevs.len() == width + usize::from(e.spares)
                && e.base_bdevs.iter().enumerate().all(|(j, b)| ns_of_ctrl(b) && !e.base_bdevs[..j].contains(b) && !earlier.iter().any(|o| o.base_bdevs.contains(b)));
            let taken = |f: u16, nsid: u32| {
                self.namespaces.iter().any(|n| (n.function, n.nsid) == (f, nsid))
                    || self.mallocs.iter().any(|m| m.map == Some((f, nsid)))
                    || self.nvme.iter().flat_map(|o| &o.maps).any(|m| (m.1, m.2) == (f, nsid))
                    || earlier.iter().any(|o| o.map == Some((f, nsid)))
            };
            let map_ok = e.map.is_none_or(|(f, nsid)| usize::from(f) < MAX_FUNCTIONS && (1..=MAX_NSID).contains(&nsid) && !taken(f, nsid));
            let twice = earlier.iter().any(|o| o.name == e.name) || self.mallocs.iter().any(|m| m.name == e.name) || ns_of_ctrl(&e.name);
            let km_ok = (1..=EC_MAX_K).contains(&usize::from(e.k)) && (1..=EC_MAX_M).contains(&usize::from(e.m)) && width + usize::from(e.spares) <= MAX_EC_MEMBERS.min(EC_BASE_MAX);
            if !name_ok(&e.name) || twice || !km_ok || !bases_ok || !map_ok {
                return Err(Invalid::EcBdev { index: i as u16 });
            }
        }
        let base_ok = |b: &str| {
            self.ec_bdevs.iter().any(|e| e.name == b && e.map.is_none())
                || self.mallocs.iter().any(|m| m.name == b && m.map.is_none())
                || self.nvme.iter().any(|c| b.strip_prefix(c.name.as_str()).and_then(|r| r.strip_prefix('n')).and_then(|r| r.parse::<u32>().ok()).is_some_and(|n| n != 0 && !c.maps.iter().any(|m| m.0 == n)))
        };
        for (i, c) in self.crypto_bdevs.iter().enumerate() {
            let earlier = &self.crypto_bdevs[..i];
            let taken = |f: u16, nsid: u32| {
                self.namespaces.iter().any(|n| (n.function, n.nsid) == (f, nsid))
                    || self.mallocs.iter().any(|m| m.map == Some((f, nsid)))
                    || self.nvme.iter().flat_map(|o| &o.maps).any(|m| (m.1, m.2) == (f, nsid))
                    || earlier.iter().any(|o| o.map == Some((f, nsid)))
                    || self.ec_bdevs.iter().any(|o| o.map == Some((f, nsid)))
            };
            let map_ok = c.map.is_none_or(|(f, nsid)| usize::from(f) < MAX_FUNCTIONS && (1..=MAX_NSID).contains(&nsid) && !taken(f, nsid));
            let in_ec = self.ec_bdevs.iter().any(|e| e.base_bdevs.contains(&c.base));
            let twice = earlier.iter().any(|o| o.name == c.name || o.base == c.base) || self.mallocs.iter().any(|m| m.name == c.name) || base_ok(&c.name) || in_ec;
            if !name_ok(&c.name) || twice || !base_ok(&c.base) || !self.crypto_keys.iter().any(|k| k.name == c.key) || !map_ok {
                return Err(Invalid::CryptoBdev { index: i as u16 });
            }
        }
        if self.sriov_total_vfs.is_some_and(|n| usize::from(n) >= MAX_FUNCTIONS) {
            return Err(Invalid::SriovTotalVfs);
        }
        Ok(())
    }

    /// Whether local SSD `ssd`'s namespace `nsid` exists on the board
    /// (`exclusive`: and backs no function namespace and at most one
    /// subsystem namespace: a target namespace is the remote hosts' alone).
    fn local_ok(&self, ssd: u16, nsid: u32, exclusive: bool) -> bool {
        let this = Backend::Local { ssd, nsid };
        let shared = exclusive
            && (self.namespaces.iter().any(|n| n.backend == this) || self.subsystems.iter().flat_map(|s| &s.namespaces).filter(|n| n.backend == this).count() > 1);
        usize::from(ssd) < SSD_SLOTS && nsid != 0 && nsid != u32::MAX && !shared
    }

    /// Encodes the record of [`SCHEMA_VERSION`] into `out`; returns its
    /// length, `None` if it does not fit.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let n = postcard::to_slice(self, out).ok()?.len();
        let m = postcard::to_slice(&self.management, out.get_mut(n..)?).ok()?.len();
        let l = postcard::to_slice(&self.mallocs, out.get_mut(n + m..)?).ok()?.len();
        let s = postcard::to_slice(&self.subsystems, out.get_mut(n + m + l..)?).ok()?.len();
        let v = postcard::to_slice(&self.nvmf, out.get_mut(n + m + l + s..)?).ok()?.len();
        let e = postcard::to_slice(&self.ec_volumes, out.get_mut(n + m + l + s + v..)?).ok()?.len();
        let c = postcard::to_slice(&self.nvme, out.get_mut(n + m + l + s + v + e..)?).ok()?.len();
        let k = postcard::to_slice(&self.ns_keys, out.get_mut(n + m + l + s + v + e + c..)?).ok()?.len();
        let ck = postcard::to_slice(&self.crypto_keys, out.get_mut(n + m + l + s + v + e + c + k..)?).ok()?.len();
        let cb = postcard::to_slice(&self.crypto_bdevs, out.get_mut(n + m + l + s + v + e + c + k + ck..)?).ok()?.len();
        let eb = postcard::to_slice(&self.ec_bdevs, out.get_mut(n + m + l + s + v + e + c + k + ck + cb..)?).ok()?.len();
        let sv = postcard::to_slice(&self.sriov_total_vfs, out.get_mut(n + m + l + s + v + e + c + k + ck + cb + eb..)?).ok()?.len();
        Some(n + m + l + s + v + e + c + k + ck + cb + eb + sv)
    }

    /// Makes `self` a copy of `other`, list element by list element (as
    /// [`Config::decode_into`], no whole configuration is a temporary on
    /// the stack: `clone_from` builds the clone first).
    pub fn copy_from(&mut self, other: &Config) {
        fn each<T: Clone, const N: usize>(to: &mut Vec<T, N>, from: &Vec<T, N>) {
            to.clear();
            for x in from {
                let _ = to.push(x.clone());
            }
        }
        each(&mut self.namespaces, &other.namespaces);
        each(&mut self.ports, &other.ports);
        each(&mut self.controllers, &other.controllers);
        self.host_nqn.clone_from(&other.host_nqn);
        self.host_id = other.host_id;
        self.header_digest = other.header_digest;
        self.data_digest = other.data_digest;
        self.lro = other.lro;
        self.tcp_min_rto_ms = other.tcp_min_rto_ms;
        self.io_timeout_us = other.io_timeout_us;
        self.management.clone_from(&other.management);
        each(&mut self.mallocs, &other.mallocs);
        each(&mut self.subsystems, &other.subsystems);
        each(&mut self.nvmf, &other.nvmf);
        each(&mut self.ec_volumes, &other.ec_volumes);
        each(&mut self.nvme, &other.nvme);
        each(&mut self.ns_keys, &other.ns_keys);
        each(&mut self.crypto_keys, &other.crypto_keys);
        each(&mut self.crypto_bdevs, &other.crypto_bdevs);
        each(&mut self.ec_bdevs, &other.ec_bdevs);
        self.sriov_total_vfs = other.sriov_total_vfs;
    }

    /// Decodes a record of schema `version` (every byte used), `None` if
    /// it does not decode or the version is unknown.
    pub fn decode(version: u16, bytes: &[u8]) -> Option<Config> {
        let mut c = Config::default();
        c.decode_into(version, bytes).then_some(c)
    }

    /// [`Config::decode`] into `self`, field by field and list element by
    /// list element, so that no whole configuration (tens of KiB) is ever
    /// a temporary on the caller's stack (the firmware decodes on 64 KiB
    /// hart stacks). On `false` `self` holds part of the record: the
    /// caller discards it.
    pub fn decode_into(&mut self, version: u16, bytes: &[u8]) -> bool {
        self.decode_fields(version, bytes).is_some_and(|rest| rest.is_empty())
    }

    fn decode_fields<'a>(&mut self, version: u16, bytes: &'a [u8]) -> Option<&'a [u8]> {
        if !(SCHEMA_VERSION_MIN..=SCHEMA_VERSION).contains(&version) {
            return None;
        }
        // The fields in the order `Config`'s serde derive writes them
        // (postcard: a struct is its fields one after the other).
        let mut rest = take_vec(bytes, &mut self.namespaces)?;
        rest = take_vec(rest, &mut self.ports)?;
        rest = take_vec(rest, &mut self.controllers)?;
        rest = take(rest, &mut self.host_nqn)?;
        rest = take(rest, &mut self.host_id)?;
        rest = take(rest, &mut self.header_digest)?;
        rest = take(rest, &mut self.data_digest)?;
        rest = take(rest, &mut self.lro)?;
        rest = take(rest, &mut self.tcp_min_rto_ms)?;
        rest = take(rest, &mut self.io_timeout_us)?;
        self.management = None;
        self.mallocs.clear();
        self.subsystems.clear();
        self.nvmf.clear();
        self.ec_volumes.clear();
        self.nvme.clear();
        self.ns_keys.clear();
        self.crypto_keys.clear();
        self.crypto_bdevs.clear();
        self.ec_bdevs.clear();
        self.sriov_total_vfs = None;
        if version >= 2 {
            rest = take(rest, &mut self.management)?;
        }
        if version >= 3 {
            rest = take_vec(rest, &mut self.mallocs)?;
        }
        if version >= 4 {
            rest = take_vec(rest, &mut self.subsystems)?;
        }
        if version >= 5 {
            rest = take_vec(rest, &mut self.nvmf)?;
        }
        if version >= 6 {
            rest = take_vec(rest, &mut self.ec_volumes)?;
        }
        if version >= 7 {
            rest = take_vec(rest, &mut self.nvme)?;
        }
        if version >= 8 {
            rest = take_vec(rest, &mut self.ns_keys)?;
        }
        if version >= 9 {
            rest = take_vec(rest, &mut self.crypto_keys)?;
            rest = take_vec(rest, &mut self.crypto_bdevs)?;
        }
        if version >= 10 {
            rest = take_vec(rest, &mut self.ec_bdevs)?;
        }
        if version >= 11 {
            rest = take(rest, &mut self.sriov_total_vfs)?;
        }
        Some(rest)
    }
}

/// One postcard value from `bytes` into `out`; the bytes after it.
fn take<'a, T: serde::de::DeserializeOwned>(bytes: &'a [u8], out: &mut T) -> Option<&'a [u8]> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).ok()?;
    *out = v;
    Some(rest)
}

/// A postcard sequence (its length, then its elements) into `out`, one
/// element at a time; the bytes after it.
fn take_vec<'a, T: serde::de::DeserializeOwned, const N: usize>(bytes: &'a [u8], out: &mut Vec<T, N>) -> Option<&'a [u8]> {
    out.clear();
    let (n, mut rest) = postcard::take_from_bytes::<usize>(bytes).ok()?;
    if n > N {
        return None;
    }
    for _ in 0..n {
        let (v, r) = postcard::take_from_bytes::<T>(rest).ok()?;
        out.push(v).ok()?;
        rest = r;
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Config {
        let mut c = Config::default();
        c.namespaces.push(Namespace { function: 0, nsid: 1, block_shift: 9, blocks: 2048, backend: Backend::Ram }).unwrap();
        c.controllers.push(Controller { traddr: [10, 0, 0, 10], trsvcid: 4420, subnqn: String::try_from("nqn.2014-08.org.example:t0").unwrap() }).unwrap();
        c.namespaces.push(Namespace { function: 1, nsid: 1, block_shift: 12, blocks: 256, backend: Backend::Remote { controller: 0, nsid: 3 } }).unwrap();
        c.ports.push(Port { ip: [10, 0, 0, 1], prefix: 24, mtu: 1500 }).unwrap();
        c.host_nqn = String::try_from("nqn.2014-08.org.nvmexpress:uuid:1").unwrap();
        c.lro = true;
        c.management = Some(Management {
            port: 0,
            tcp_port: 5260,
            request_timeout_ms: 5000,
            allow: Vec::from_slice(&[([10, 0, 0, 240], 28)]).unwrap(),
            token: String::try_from("t0ken").unwrap(),
        });
        c.mallocs.push(Malloc { name: String::try_from("Malloc0").unwrap(), blocks: 256, block_shift: 12, map: Some((1, 2)) }).unwrap();
        c.mallocs.push(Malloc { name: String::try_from("spare").unwrap(), blocks: 8, block_shift: 9, map: None }).unwrap();
        c.mallocs.push(Malloc { name: String::try_from("Malloc1").unwrap(), blocks: 2048, block_shift: 9, map: None }).unwrap();
        c.nvmf
            .push(NvmfSubsystem {
                nqn: String::try_from("nqn.2026-12.io.dpusim:live0").unwrap(),
                serial_number: String::try_from("SPDK00000000000001").unwrap(),
                model_number: String::try_from("DPU live").unwrap(),
                allow_any_host: false,
                hosts: Vec::from_slice(&[String::try_from("nqn.2014-08.org.nvmexpress:uuid:h2").unwrap()]).unwrap(),
                max_namespaces: 4,
                listeners: Vec::from_slice(&[(0, 4421)]).unwrap(),
                namespaces: Vec::from_slice(&[(2, String::try_from("Malloc1").unwrap())]).unwrap(),
            })
            .unwrap();
        c.subsystems
            .push(Subsystem {
                nqn: String::try_from("nqn.2026-12.io.dpusim:aff0").unwrap(),
                allow_hosts: Vec::from_slice(&[String::try_from("nqn.2014-08.org.nvmexpress:uuid:h1").unwrap()]).unwrap(),
                trsvcid: 4420,
                ports: 1,
                namespaces: Vec::from_slice(&[
                    SubsystemNs { block_shift: 12, blocks: 1024, backend: Backend::Ram },
                    SubsystemNs { block_shift: 9, blocks: 1 << 17, backend: Backend::Local { ssd: 2, nsid: 1 } },
                ])
                .unwrap(),
            })
            .unwrap();
        c.nvme
            .push(NvmeController {
                name: String::try_from("Nvme0").unwrap(),
                traddr: [10, 0, 0, 20],
                trsvcid: 4420,
                subnqn: String::try_from("nqn.2026-12.io.dpusim:live").unwrap(),
                hostnqn: String::new(),
                hdgst: false,
                ddgst: true,
                maps: Vec::from_slice(&[(1, 3, 1)]).unwrap(),
            })
            .unwrap();
        c
    }

    /// Run-time controllers: every field is checked, and they survive
    /// the record (schema version 7).
    #[test]
    fn run_time_controllers_are_checked_and_kept() {
        let c = sample();
        let mut buf = [0u8; 4096];
        let n = c.encode(&mut buf).unwrap();
        let back = Config::decode(SCHEMA_VERSION, &buf[..n]).unwrap();
        assert_eq!(back.nvme, c.nvme);
        assert_eq!(back.nvme[0].maps.as_slice(), &[(1, 3, 1)]);
        for (why, bad) in [
            ("empty name", (|c: &mut Config| c.nvme[0].name.clear()) as fn(&mut Config)),
            ("name with a space", |c| c.nvme[0].name = String::try_from("a b").unwrap()),
            ("name twice", |c| {
                let mut o = c.nvme[0].clone();
                o.maps.clear();
                c.nvme.push(o).unwrap();
            }),
            ("address 0", |c| c.nvme[0].traddr = [0; 4]),
            ("TCP port 0", |c| c.nvme[0].trsvcid = 0),
            ("no subsystem NQN", |c| c.nvme[0].subnqn.clear()),
            ("a mapping onto a boot namespace", |c| c.nvme[0].maps[0] = (1, 0, 1)),
            ("a mapping onto a RAM device's namespace", |c| c.nvme[0].maps[0] = (1, 1, 2)),
            ("a mapping to function 9999", |c| c.nvme[0].maps[0] = (1, 9999, 1)),
            ("remote NSID 0", |c| c.nvme[0].maps[0] = (0, 3, 1)),
        ] {
            let mut c = sample();
            bad(&mut c);
            let i = if why == "name twice" { 1 } else { 0 };
            assert_eq!(c.validate(), Err(Invalid::Nvme { index: i }), "{why}");
        }
    }

    #[test]
    fn copy_from_copies_every_field() {
        let mut c = Config::default();
        c.copy_from(&sample());
        assert_eq!(c, sample());
        c.copy_from(&Config::default());
        assert_eq!(c, Config::default());
    }

    #[test]
    fn a_sample_is_valid_and_round_trips_through_postcard() {
        let c = sample();
        c.validate().unwrap();
        let mut buf = [0u8; 1024];
        let n = c.encode(&mut buf).unwrap();
        let back = Config::decode(SCHEMA_VERSION, &buf[..n]).unwrap();
        assert_eq!(back, c);
    }

    /// A version-1 record (no management) still decodes; its bytes are a
    /// prefix of the version-2 record of the same configuration.
    #[test]
    fn a_version_1_record_decodes_without_management() {
        extern crate std;
        std::thread::Builder::new().stack_size(8 << 20).spawn(older_records_decode).unwrap().join().unwrap();
    }

    fn older_records_decode() {
        let c = sample();
        let mut v1 = [0u8; 1024];
        let n1 = postcard::to_slice(&c, &mut v1).unwrap().len();
        let back = Config::decode(1, &v1[..n1]).unwrap();
        assert_eq!(back, Config { management: None, mallocs: Vec::new(), subsystems: Vec::new(), nvmf: Vec::new(), ec_volumes: Vec::new(), nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() });
        let mut v2 = [0u8; 4096];
        let n2 = c.encode(&mut v2).unwrap();
        assert_eq!(&v2[..n1], &v1[..n1]);
        assert!(n2 > n1);
        assert_eq!(Config::decode(1, &v2[..n2]), None, "trailing bytes in a version-1 record");
        assert_eq!(Config::decode(2, &v1[..n1]), None, "a version-2 record lacks its tail");
        assert_eq!(Config::decode(SCHEMA_VERSION + 1, &v2[..n2]), None);
        // (Each older record lacks the empty Vecs' length bytes that
        // follow it, the two of version 9 and the one of version 10
        // included.)
        // A version-2 record: the management record, no run-time devices
        // (without the empty Vecs' length bytes).
        let no_live = Config { mallocs: Vec::new(), subsystems: Vec::new(), nvmf: Vec::new(), ec_volumes: Vec::new(), nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() };
        let n = no_live.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(2, &v2[..n - 10]), Some(no_live.clone()));
        // A version-3 record: the run-time devices, no subsystems.
        let no_target = Config { subsystems: Vec::new(), nvmf: Vec::new(), ec_volumes: Vec::new(), nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() };
        let n = no_target.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(3, &v2[..n - 9]), Some(no_target));
        assert_eq!(Config::decode(4, &v2[..n - 9]), None, "a version-4 record lacks its subsystems");
        // A version-4 record: the boot subsystems, none made at run time.
        let no_nvmf = Config { nvmf: Vec::new(), ec_volumes: Vec::new(), nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() };
        let n = no_nvmf.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(4, &v2[..n - 8]), Some(no_nvmf));
        assert_eq!(Config::decode(5, &v2[..n - 8]), None, "a version-5 record lacks its run-time subsystems");
        // A version-5 record: no erasure-coded volumes.
        let no_ec = Config { ec_volumes: Vec::new(), nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() };
        let n = no_ec.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(5, &v2[..n - 7]), Some(no_ec));
        assert_eq!(Config::decode(6, &v2[..n - 7]), None, "a version-6 record lacks its volumes");
        // A version-6 record: no run-time controllers.
        let no_nvme = Config { nvme: Vec::new(), ns_keys: Vec::new(), ..c.clone() };
        let n = no_nvme.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(6, &v2[..n - 6]), Some(no_nvme));
        assert_eq!(Config::decode(7, &v2[..n - 6]), None, "a version-7 record lacks its controllers");
        // A version-7 record: no wrapped keys.
        let no_keys = Config { ns_keys: Vec::new(), ..c.clone() };
        let n = no_keys.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(7, &v2[..n - 5]), Some(no_keys));
        assert_eq!(Config::decode(8, &v2[..n - 5]), None, "a version-8 record lacks its keys");
        // A version-8 record: no crypto keys or devices made at run time.
        let n = c.encode(&mut v2).unwrap();
        assert_eq!(Config::decode(8, &v2[..n - 4]), Some(c.clone()));
        assert_eq!(Config::decode(9, &v2[..n - 4]), None, "a version-9 record lacks its crypto keys and devices");
        // A version-9 record: no EC volumes made at run time, no VF count.
        assert_eq!(Config::decode(9, &v2[..n - 2]), Some(c.clone()));
        assert_eq!(Config::decode(10, &v2[..n - 2]), None, "a version-10 record lacks its EC volumes");
        // A version-10 record: everything but the VF count.
        assert_eq!(Config::decode(10, &v2[..n - 1]), Some(c.clone()));
        assert_eq!(Config::decode(11, &v2[..n - 1]), None, "a version-11 record lacks its VF count");
    }

    /// What `dpu_set_port`, `dpu_nvme_set_options`, `dpu_port_set_options`
    /// and `dpu_mgmt_set` change lives in fields every schema version has:
    /// a configuration changed that way validates, survives the record
    /// round trip at the current version, and its boot blob carries the
    /// new values; the values those methods refuse are refused here too.
    #[test]
    fn live_settings_round_trip_into_the_boot_blob() {
        let mut c = sample();
        c.ports[0] = Port { ip: [10, 0, 0, 77], prefix: 16, mtu: 1400 };
        c.host_nqn = String::try_from("nqn.2026-12.io.dpusim:new-host").unwrap();
        (c.header_digest, c.data_digest, c.io_timeout_us, c.tcp_min_rto_ms) = (true, true, 40_000, 7);
        let m = c.management.as_mut().unwrap();
        m.allow = Vec::from_slice(&[([192, 168, 0, 0], 16), ([10, 0, 0, 250], 32)]).unwrap();
        m.token = String::try_from("n3w").unwrap();
        m.request_timeout_ms = 7;
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]), Some(c.clone()));
        let mut blob = [0u8; 8192];
        let len = blob::render(&c, &mut blob).unwrap();
        let b = &blob[..len];
        let find = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        assert!(find(&[10, 0, 0, 77, 16]), "the port record");
        assert!(find(b"nqn.2026-12.io.dpusim:new-host") && find(b"n3w\0") && find(&[192, 168, 0, 0, 16]));
        let flags = u16::from_le_bytes([b[dpu_hal::regs::bootcfg::HDR_FLAGS], b[dpu_hal::regs::bootcfg::HDR_FLAGS + 1]]);
        assert_ne!(flags & dpu_hal::regs::bootcfg::FLAG_HDGST, 0);
        assert_ne!(flags & dpu_hal::regs::bootcfg::FLAG_DDGST, 0);
        let at = dpu_hal::regs::bootcfg::HDR_IO_TIMEOUT_US;
        assert_eq!(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()), 40_000);
        for (why, bad) in [
            ("prefix 31", (|c: &mut Config| c.ports[0].prefix = 31) as fn(&mut Config)),
            ("address 0.0.0.0", |c| c.ports[0].ip = [0; 4]),
            ("MTU 9001", |c| c.ports[0].mtu = 9001),
        ] {
            let mut c = c.clone();
            bad(&mut c);
            assert_eq!(c.validate(), Err(Invalid::Port { index: 0 }), "{why}");
        }
        let mut bad = c.clone();
        bad.management.as_mut().unwrap().allow[0].1 = 33;
        assert_eq!(bad.validate(), Err(Invalid::Management), "allow prefix 33");
        let mut bad = c.clone();
        bad.management.as_mut().unwrap().request_timeout_ms = 0;
        assert_eq!(bad.validate(), Err(Invalid::Management), "request timeout 0");
    }

    /// Function 1's namespace 1 encrypted, its key held wrapped.
    fn with_key() -> Config {
        let mut c = sample();
        let wrapped = Vec::from_slice(&[0x5a; WRAPPED_KEY_LEN]).unwrap();
        c.ns_keys.push(NsKey { function: 1, nsid: 1, wrapped }).unwrap();
        c
    }

    /// The SR-IOV VF count (schema 10) round-trips, is copied, and one
    /// beyond the board's functions is refused.
    #[test]
    fn sriov_total_vfs_is_kept_and_checked() {
        let mut c = sample();
        c.sriov_total_vfs = Some(3);
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]).and_then(|b| b.sriov_total_vfs), Some(3));
        assert_eq!(&buf[n - 2..n], &[1, 3], "Some(3) ends the record");
        let mut copy = Config::default();
        copy.copy_from(&c);
        assert_eq!(copy, c);
        c.sriov_total_vfs = Some((MAX_FUNCTIONS - 1) as u16);
        c.validate().unwrap();
        c.sriov_total_vfs = Some(MAX_FUNCTIONS as u16);
        assert_eq!(c.validate(), Err(Invalid::SriovTotalVfs));
    }

    #[test]
    fn wrapped_keys_are_checked_and_kept() {
        let c = with_key();
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]), Some(c.clone()));
        // The record ends with the blob, byte for byte (then the empty
        // lists of schemas 9 and 10 and the VF count of schema 11).
        assert_eq!(&buf[n - 4 - WRAPPED_KEY_LEN..n - 4], &[0x5a; WRAPPED_KEY_LEN]);
        let mut copy = Config::default();
        copy.copy_from(&c);
        assert_eq!(copy, c);
        for (why, bad) in [
            ("no such namespace", (|c: &mut Config| c.ns_keys[0].nsid = 9) as fn(&mut Config)),
            ("a namespace twice", |c| {
                let k = c.ns_keys[0].clone();
                c.ns_keys.push(k).unwrap()
            }),
            ("a short blob", |c| {
                c.ns_keys[0].wrapped.pop();
            }),
        ] {
            let mut c = with_key();
            bad(&mut c);
            assert_eq!(c.validate(), Err(Invalid::Key { index: c.ns_keys.len() as u16 - 1 }), "{why}");
        }
    }

    /// Key `k0` (wrapped) and crypto device `secret` on RAM device
    /// `spare`, mapped as function 4's namespace 1.
    fn with_crypto() -> Config {
        let mut c = sample();
        c.crypto_keys.push(CryptoKey { name: String::try_from("k0").unwrap(), wrapped: Vec::from_slice(&[0xa5; WRAPPED_KEY_LEN]).unwrap() }).unwrap();
        c.crypto_bdevs
            .push(CryptoBdev { name: String::try_from("secret").unwrap(), base: String::try_from("spare").unwrap(), key: String::try_from("k0").unwrap(), map: Some((4, 1)) })
            .unwrap();
        c
    }

    #[test]
    fn crypto_keys_and_devices_are_checked_and_kept() {
        let c = with_crypto();
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]), Some(c.clone()));
        assert_eq!(Config::decode(8, &buf[..n]), None, "version 8 does not read the crypto lists");
        let mut copy = Config::default();
        copy.copy_from(&c);
        assert_eq!(copy, c);
        // A remote controller's namespace is a base too.
        let mut r = with_crypto();
        r.nvme.push(NvmeController { name: String::try_from("tgt").unwrap(), traddr: [10, 0, 0, 9], trsvcid: 4420, subnqn: String::try_from("nqn.x").unwrap(), ..Default::default() }).unwrap();
        r.crypto_bdevs[0].base = String::try_from("tgtn1").unwrap();
        r.validate().unwrap();
        for (why, bad) in [
            ("a short key blob", (|c: &mut Config| {
                c.crypto_keys[0].wrapped.pop();
            }) as fn(&mut Config)),
            ("a key name twice", |c| {
                let k = c.crypto_keys[0].clone();
                c.crypto_keys.push(k).unwrap()
            }),
            ("a bad key name", |c| c.crypto_keys[0].name = String::try_from("k 0").unwrap()),
        ] {
            let mut c = with_crypto();
            bad(&mut c);
            assert_eq!(c.validate(), Err(Invalid::CryptoKey { index: c.crypto_keys.len() as u16 - 1 }), "{why}");
        }
        for (why, bad) in [
            ("no such key", (|c: &mut Config| c.crypto_bdevs[0].key = String::try_from("k1").unwrap()) as fn(&mut Config)),
            ("no such base", |c| c.crypto_bdevs[0].base = String::try_from("nothing").unwrap()),
            ("a mapped base", |c| c.crypto_bdevs[0].base = String::try_from("Malloc0").unwrap()),
            ("a RAM device's name", |c| c.crypto_bdevs[0].name = String::try_from("Malloc1").unwrap()),
            ("a mapping taken by a RAM device", |c| c.crypto_bdevs[0].map = Some((1, 2))),
            ("a mapping taken by a controller's namespace", |c| c.crypto_bdevs[0].map = Some((3, 1))),
            ("a mapping past the functions", |c| c.crypto_bdevs[0].map = Some((MAX_FUNCTIONS as u16, 1))),
            ("a base twice", |c| {
                let mut d = c.crypto_bdevs[0].clone();
                d.name = String::try_from("other").unwrap();
                d.map = None;
                c.crypto_bdevs.push(d).unwrap()
            }),
        ] {
            let mut c = with_crypto();
            bad(&mut c);
            assert_eq!(c.validate(), Err(Invalid::CryptoBdev { index: c.crypto_bdevs.len() as u16 - 1 }), "{why}");
        }
    }

    /// Run-time controllers `Ta`, `Tb`, `Tc` and EC volume `ec0` (2+1)
    /// over their namespaces 1, mapped as function 2's namespace 5, with
    /// crypto device `sec` on a second volume `ec1` over their namespaces 2.
    fn with_ec_bdev() -> Config {
        let mut c = sample();
        for (i, n) in ["Ta", "Tb", "Tc"].into_iter().enumerate() {
            let name = String::try_from(n).unwrap();
            c.nvme.push(NvmeController { name, traddr: [10, 0, 0, 30 + i as u8], trsvcid: 4420, subnqn: String::try_from("nqn.x").unwrap(), ..Default::default() }).unwrap();
        }
        let bases = |ns: u32| {
            ["Ta", "Tb", "Tc"]
                .iter()
                .map(|t| {
                    let mut s = String::new();
                    core::fmt::Write::write_fmt(&mut s, format_args!("{t}n{ns}")).unwrap();
                    s
                })
                .collect()
        };
        c.ec_bdevs.push(EcBdev { name: String::try_from("ec0").unwrap(), k: 2, m: 1, spares: 0, scrub_every_ms: 500, base_bdevs: bases(1), map: Some((2, 5)) }).unwrap();
        c.ec_bdevs.push(EcBdev { name: String::try_from("ec1").unwrap(), k: 1, m: 1, spares: 1, scrub_every_ms: 0, base_bdevs: bases(2), map: None }).unwrap();
        c.crypto_keys.push(CryptoKey { name: String::try_from("k0").unwrap(), wrapped: Vec::from_slice(&[0xa5; WRAPPED_KEY_LEN]).unwrap() }).unwrap();
        c.crypto_bdevs.push(CryptoBdev { name: String::try_from("sec").unwrap(), base: String::try_from("ec1").unwrap(), key: String::try_from("k0").unwrap(), map: Some((2, 6)) }).unwrap();
        c
    }

    #[test]
    fn ec_bdevs_are_checked_and_kept() {
        let c = with_ec_bdev();
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]), Some(c.clone()));
        assert_eq!(Config::decode(9, &buf[..n]), None, "version 9 does not read the EC volumes");
        let mut copy = Config::default();
        copy.copy_from(&c);
        assert_eq!(copy, c);
        for (why, bad) in [
            ("k 0", (|c: &mut Config| c.ec_bdevs[1].k = 0) as fn(&mut Config)),
            ("m past the engine", |c| c.ec_bdevs[1].m = EC_MAX_M as u8 + 1),
            ("too few bases", |c| {
                c.ec_bdevs[1].base_bdevs.pop();
            }),
            ("a base twice", |c| c.ec_bdevs[1].base_bdevs[2] = String::try_from("Tan2").unwrap()),
            ("a base in another volume", |c| c.ec_bdevs[1].base_bdevs[0] = String::try_from("Tan1").unwrap()),
            ("a base that is no controller's namespace", |c| c.ec_bdevs[1].base_bdevs[0] = String::try_from("spare").unwrap()),
            ("a base that is mapped", |c| c.nvme.iter_mut().find(|n| n.name == "Ta").unwrap().maps.push((2, 7, 1)).unwrap()),
            ("a name taken by another volume", |c| c.ec_bdevs[1].name = String::try_from("ec0").unwrap()),
            ("a RAM device's name", |c| c.ec_bdevs[1].name = String::try_from("Malloc1").unwrap()),
            ("a bad name", |c| c.ec_bdevs[1].name = String::try_from("ec 1").unwrap()),
            ("a mapping taken by another volume", |c| c.ec_bdevs[1].map = Some((2, 5))),
            ("a mapping taken by a RAM device", |c| c.ec_bdevs[1].map = Some((1, 2))),
            ("a mapping past the functions", |c| c.ec_bdevs[1].map = Some((MAX_FUNCTIONS as u16, 1))),
        ] {
            let mut c = with_ec_bdev();
            bad(&mut c);
            c.crypto_bdevs.clear();
            let got = c.validate();
            assert_eq!(got, Err(Invalid::EcBdev { index: 1 }), "{why}");
        }
        // A crypto device on a volume's member, or mapped where a volume is.
        let mut m = with_ec_bdev();
        m.crypto_bdevs[0].base = String::try_from("Tbn1").unwrap();
        assert_eq!(m.validate(), Err(Invalid::CryptoBdev { index: 0 }), "crypto on a member");
        let mut m = with_ec_bdev();
        m.crypto_bdevs[0].map = Some((2, 5));
        assert_eq!(m.validate(), Err(Invalid::CryptoBdev { index: 0 }), "crypto mapped where ec0 is");
    }

    /// An EC 2+1 volume with a spare over four remote controllers, as
    /// function 2's namespace 1 (16 KiB: two stripes of 2 x 4 KiB).
    fn with_ec() -> Config {
        let mut c = sample();
        for i in 0..4u8 {
            c.controllers.push(Controller { traddr: [10, 0, 0, 20 + i], trsvcid: 4420, subnqn: String::try_from("nqn.2026-12.io.dpusim:ec").unwrap() }).unwrap();
        }
        let base = (c.controllers.len() - 4) as u16;
        let members = (0..4).map(|i| (base + i, 1)).collect();
        c.ec_volumes.push(EcVolume { k: 2, m: 1, members, spares: 1, scrub_at_us: 100_000, scrub_every_ms: 60_000 }).unwrap();
        c.namespaces.push(Namespace { function: 2, nsid: 1, block_shift: 12, blocks: 4, backend: Backend::Ec { volume: 0 } }).unwrap();
        c
    }

    #[test]
    fn erasure_coded_volumes_are_checked_and_kept() {
        let c = with_ec();
        c.validate().unwrap();
        let mut buf = [0u8; 8192];
        let n = c.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(SCHEMA_VERSION, &buf[..n]), Some(c.clone()));
        for (why, bad) in [
            ("k 0", (|c: &mut Config| c.ec_volumes[0].k = 0) as fn(&mut Config)),
            ("m above the engine's", |c| c.ec_volumes[0].m = 9),
            ("members not k + m + spares", |c| c.ec_volumes[0].spares = 0),
            ("a member naming no controller", |c| c.ec_volumes[0].members[1].0 = 99),
            ("a member with nsid 0", |c| c.ec_volumes[0].members[2].1 = 0),
            ("a member twice", |c| c.ec_volumes[0].members[3] = c.ec_volumes[0].members[0]),
            ("no namespace uses it", |c| c.namespaces.retain(|n| n.backend != Backend::Ec { volume: 0 })),
        ] {
            let mut c = with_ec();
            bad(&mut c);
            assert_eq!(c.validate(), Err(Invalid::Ec { index: 0 }), "{why}");
        }
        // A namespace naming no volume, or not whole stripes.
        let mut c = with_ec();
        c.namespaces.last_mut().unwrap().backend = Backend::Ec { volume: 1 };
        assert!(matches!(c.validate(), Err(Invalid::Namespace { .. })));
        let mut c = with_ec();
        c.namespaces.last_mut().unwrap().blocks = 3;
        assert!(matches!(c.validate(), Err(Invalid::Namespace { .. })));
    }

    #[test]
    fn run_time_subsystems_are_checked() {
        sample().validate().unwrap();
        for (why, bad) in [
            ("empty NQN", (|s: &mut NvmfSubsystem| s.nqn.clear()) as fn(&mut NvmfSubsystem)),
            ("a boot subsystem's NQN", |s| s.nqn = String::try_from("nqn.2026-12.io.dpusim:aff0").unwrap()),
            ("an unprintable host", |s| s.hosts[0] = String::try_from("a b").unwrap()),
            ("a port not configured", |s| s.listeners[0].0 = 1),
            ("TCP port 0", |s| s.listeners[0].1 = 0),
            ("a listener twice", |s| s.listeners.push((0, 4421)).unwrap()),
            ("NSID above max_namespaces", |s| s.namespaces[0].0 = 5),
            ("max_namespaces 0", |s| s.max_namespaces = 0),
            ("no such block device", |s| s.namespaces[0].1 = String::try_from("Malloc9").unwrap()),
            ("a block device mapped to a function", |s| s.namespaces[0].1 = String::try_from("Malloc0").unwrap()),
            ("one device twice", |s| s.namespaces.push((3, String::try_from("Malloc1").unwrap())).unwrap()),
        ] {
            let mut c = sample();
            bad(&mut c.nvmf[0]);
            assert_eq!(c.validate(), Err(Invalid::Nvmf { index: 0 }), "{why}");
        }
    }

    #[test]
    fn subsystems_are_checked() {
        let c = sample();
        for (why, bad) in [
            ("empty NQN", (|s: &mut Subsystem| s.nqn.clear()) as fn(&mut Subsystem)),
            ("the discovery NQN", |s| s.nqn = String::try_from(DISCOVERY_NQN).unwrap()),
            ("an unprintable host", |s| s.allow_hosts[0] = String::try_from("a b").unwrap()),
            ("TCP port 0", |s| s.trsvcid = 0),
            ("the management port", |s| s.trsvcid = 5260),
            ("an ephemeral port", |s| s.trsvcid = 50000),
            ("no port", |s| s.ports = 0),
            ("port 1 not configured", |s| s.ports = 0b10),
            ("no namespace", |s| s.namespaces.clear()),
            ("a remote backend", |s| s.namespaces[0].backend = Backend::Remote { controller: 0, nsid: 1 }),
            ("block size 1 KiB", |s| s.namespaces[0].block_shift = 10),
            ("no blocks", |s| s.namespaces[0].blocks = 0),
            ("an SSD slot the board lacks", |s| s.namespaces[1].backend = Backend::Local { ssd: SSD_SLOTS as u16, nsid: 1 }),
            ("one SSD twice", |s| s.namespaces[0].backend = s.namespaces[1].backend),
        ] {
            let mut c = c.clone();
            bad(&mut c.subsystems[0]);
            assert_eq!(c.validate(), Err(Invalid::Subsystem { index: 0 }), "{why}");
        }
        let mut c = sample();
        let mut twin = c.subsystems[0].clone();
        twin.namespaces.truncate(1);
        c.subsystems.push(twin).unwrap();
        assert_eq!(c.validate(), Err(Invalid::Subsystem { index: 1 }), "the same NQN twice");
        let mut c = sample();
        for t in 1..4u16 {
            let mut more = c.subsystems[0].clone();
            more.nqn = String::try_from(["nqn.2026-12.io.dpusim:more1", "nqn.2026-12.io.dpusim:more2", "nqn.2026-12.io.dpusim:more3"][usize::from(t) - 1]).unwrap();
            more.trsvcid = 4420 + t;
            more.namespaces.truncate(1);
            c.subsystems.push(more).unwrap();
        }
        assert_eq!(c.validate(), Err(Invalid::Subsystem { index: 3 }), "4 TCP ports and discovery on one port: 18 sockets of 16");
        c.subsystems.pop();
        assert_eq!(c.validate(), Ok(()));
        let mut c = sample();
        c.namespaces[0].backend = Backend::Local { ssd: 2, nsid: 1 };
        assert_eq!(c.validate(), Err(Invalid::Subsystem { index: 0 }), "an SSD of a function and a subsystem");
    }

    #[test]
    fn out_of_range_values_are_named() {
        let mut c = sample();
        c.namespaces[1].nsid = MAX_NSID + 1;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }));
        let mut c = sample();
        c.namespaces[1].backend = Backend::Remote { controller: 1, nsid: 1 };
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }), "no controller 1");
        let mut c = sample();
        c.namespaces[0].block_shift = 13;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 0 }));
        let mut c = sample();
        c.namespaces[1].function = 0;
        c.namespaces[1].nsid = 1;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }), "duplicate");
        let mut c = sample();
        c.ports[0].mtu = 100;
        assert_eq!(c.validate(), Err(Invalid::Port { index: 0 }));
        let mut c = sample();
        c.controllers[0].subnqn.clear();
        assert_eq!(c.validate(), Err(Invalid::Controller { index: 0 }));
        for bad in [
            |m: &mut Management| m.port = 1,
            |m: &mut Management| m.tcp_port = 0,
            |m: &mut Management| m.request_timeout_ms = 0,
            |m: &mut Management| m.allow[0].1 = 33,
            |m: &mut Management| m.token = String::try_from("a b").unwrap(),
        ] {
            let mut c = sample();
            bad(c.management.as_mut().unwrap());
            assert_eq!(c.validate(), Err(Invalid::Management));
        }
        for bad in [
            |m: &mut Malloc| m.name.clear(),
            |m: &mut Malloc| m.name = String::try_from("a b").unwrap(),
            |m: &mut Malloc| m.name = String::try_from("Malloc0").unwrap(),
            |m: &mut Malloc| m.block_shift = 10,
            |m: &mut Malloc| m.blocks = 0,
            |m: &mut Malloc| m.map = Some((1, 2)),
            |m: &mut Malloc| m.map = Some((0, 1)),
            |m: &mut Malloc| m.map = Some((MAX_FUNCTIONS as u16, 1)),
        ] {
            let mut c = sample();
            bad(&mut c.mallocs[1]);
            assert_eq!(c.validate(), Err(Invalid::Malloc { index: 1 }));
        }
    }
}
