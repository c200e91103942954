//! Scenario files (`targets/scenarios/*.toml`): what the simulated host
//! does (PCIe setup, NVMe driver options, fio-like jobs), what storage the
//! firmware is configured with, and what outcome is expected.

use crate::limits::{MAX_NAMESPACES, MAX_NSID, MAX_PORTS, MAX_REMOTE_CONTROLLERS};
use crate::{load_toml, Board, Chip, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most `[[targets]]` and most `[[initiators]]` models of a scenario.
pub const MAX_MODELS: usize = 254;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: ScenarioInfo,
    #[serde(default)]
    pub host: HostCfg,
    #[serde(default)]
    pub storage: Vec<StorageCfg>,
    #[serde(default)]
    pub jobs: Vec<JobCfg>,
    #[serde(default)]
    pub expect: ExpectCfg,
    #[serde(default)]
    pub network: NetworkCfg,
    #[serde(default)]
    pub targets: Vec<TargetCfg>,
    #[serde(default)]
    pub faults: Vec<FaultCfg>,
    /// Misbehaving functions (`crate::hostile`).
    #[serde(default)]
    pub hostile: Vec<crate::hostile::HostileCfg>,
    /// A pre-OS boot host instead of jobs (`crate::preos`).
    pub preos: Option<crate::preos::PreOsCfg>,
    /// Firmware updates by the host over NVMe (`crate::firmware`).
    #[serde(default)]
    pub firmware: Vec<crate::firmware::FirmwareCfg>,
    /// The management server (`crate::management`).
    pub management: Option<crate::management::ManagementCfg>,
    /// Scripted management calls (`crate::management`).
    #[serde(default)]
    pub rpc: Vec<crate::management::RpcCfg>,
    /// NVMe/TCP initiator models on the switch (`crate::initiator`).
    #[serde(default)]
    pub initiators: Vec<crate::initiator::InitiatorCfg>,
    /// NVMe/TCP target subsystems (`crate::subsystem`).
    #[serde(default)]
    pub subsystems: Vec<crate::subsystem::SubsystemCfg>,
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

fn d_settle() -> u64 {
    100
}
fn d_queues() -> u16 {
    4
}
fn d_depth() -> u16 {
    256
}
fn d_timeout() -> u64 {
    30
}
fn d_cpu() -> u64 {
    300
}

/// Host driver settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCfg {
    /// VFs to enable through SR-IOV (0 = PF only).
    #[serde(default)]
    pub vfs: u16,
    /// Wait after VF Enable before touching VFs (SR-IOV: 100 ms).
    #[serde(default = "d_settle")]
    pub vf_settle_ms: u64,
    /// I/O queue pairs per controller.
    #[serde(default = "d_queues")]
    pub io_queues: u16,
    #[serde(default = "d_depth")]
    pub io_queue_depth: u16,
    /// Command timeout before Abort (Linux: 30 s; shorter here).
    #[serde(default = "d_timeout")]
    pub io_timeout_ms: u64,
    /// Use SGLs for I/O if the controller supports them.
    #[serde(default)]
    pub use_sgl: bool,
    /// Host CPU time per submission / per completion.
    #[serde(default = "d_cpu")]
    pub submit_ns: u64,
    #[serde(default = "d_cpu")]
    pub complete_ns: u64,
    /// The driver enables Namespace Attribute Notices and keeps an
    /// Asynchronous Event Request outstanding, rescanning namespaces on a
    /// notice (as Linux does). Off by default: it holds an AER slot.
    #[serde(default)]
    pub namespace_notices: bool,
    /// The operator disables SR-IOV on the host during the workload and
    /// enables it again (Linux: `echo 0 > sriov_numvfs`, then
    /// `echo N > sriov_numvfs`), e.g. around a change of the card's VF
    /// count. No job may run on a VF.
    #[serde(default)]
    pub sriov_cycle: Option<SriovCycle>,
}

/// `[host] sriov_cycle`: VF Enable cleared at `disable_at` after the
/// workload starts, then `vfs` VFs enabled at `enable_at` (refused, like
/// Linux, above the TotalVFs the PF offers then: the run fails).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SriovCycle {
    pub disable_at: String,
    pub enable_at: String,
    pub vfs: u16,
}

impl Default for HostCfg {
    fn default() -> Self {
        HostCfg {
            vfs: 0,
            vf_settle_ms: d_settle(),
            io_queues: d_queues(),
            io_queue_depth: d_depth(),
            io_timeout_ms: d_timeout(),
            use_sgl: false,
            submit_ns: d_cpu(),
            complete_ns: d_cpu(),
            namespace_notices: false,
            sriov_cycle: None,
        }
    }
}

fn d_nsid() -> u32 {
    1
}
fn d_bsize() -> u32 {
    512
}

/// Namespaces the firmware exposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageCfg {
    /// Functions (0 = PF, n = VF n) that each get this namespace.
    pub functions: Vec<u16>,
    #[serde(default = "d_nsid")]
    pub nsid: u32,
    /// Backing block device: "ram" (DPU DDR), "nvmf" (a remote
    /// namespace over NVMe/TCP), "ec" or "local" (namespace
    /// `remote_nsid` of the card's local NVMe SSD `ssd`).
    pub backend: String,
    /// Capacity, e.g. "64MiB" (ram: required; nvmf: the remote namespace's
    /// size, required for a target outside the simulation).
    pub size: Option<String>,
    #[serde(default = "d_bsize")]
    pub block_size: u32,
    /// nvmf: a `[[targets]]` model by name ...
    pub target: Option<String>,
    /// ... or a real target's address, port and subsystem NQN.
    pub traddr: Option<String>,
    #[serde(default = "d_nvmf_port")]
    pub trsvcid: u16,
    pub subnqn: Option<String>,
    /// nvmf: namespace ID on the remote subsystem; local: on the SSD.
    #[serde(default = "d_nsid")]
    pub remote_nsid: u32,
    /// local: the SSD (slot 0..board `ssd.count`).
    pub ssd: Option<u32>,
    /// Data-at-rest encryption of the namespace: "aes-xts" (AES-256-XTS,
    /// IEEE 1619-2018, data unit = the block size, tweak = the LBA), done
    /// by the card's crypto engines; absent or "none": stored as written.
    pub encryption: Option<String>,
    /// The XTS-AES-256 key: 128 hex digits (Key1, the data key, then Key2,
    /// the tweak key; the halves must differ).
    pub key: Option<String>,
    /// backend = "ec": the erasure-coded volume's geometry and members.
    pub ec: Option<EcCfg>,
}

/// An erasure-coded volume (`[[storage]] backend = "ec"`): stripes of `k`
/// data and `m` parity fragments of 4 KiB (Reed-Solomon, ISA-L's Cauchy
/// matrix, on the card's EC engine) over k + m remote namespaces on
/// distinct target models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcCfg {
    pub k: u32,
    pub m: u32,
    /// k + m members, in fragment order.
    pub members: Vec<EcMemberCfg>,
    /// Spare namespaces (on targets that hold no member): the card puts
    /// one in place of a lost member and rebuilds its fragments.
    #[serde(default)]
    pub spares: Vec<EcMemberCfg>,
    /// Card time (since reset, e.g. "20ms") at which the card checks every
    /// stripe's parity once (scrub); none if left out.
    pub scrub_at: Option<String>,
    /// A scrub again this long after the last one ended (e.g. "20ms"); the
    /// first at `scrub_at`, or this long after boot.
    pub scrub_every: Option<String>,
}

/// One member of an erasure-coded volume: a namespace of a target model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcMemberCfg {
    pub target: String,
    #[serde(default = "d_nsid")]
    pub nsid: u32,
}

/// Bytes per fragment of an erasure-coded volume (`dpu_hal::regs::bootcfg::EC_CHUNK`).
pub const EC_CHUNK: u64 = 4096;
/// Fragments' worth of each member kept for its superblock, after the
/// last stripe (`dpu_bdev::ec_super`).
pub const EC_SUPERBLOCK_CHUNKS: u64 = 1;

fn d_nvmf_port() -> u16 {
    4420
}
fn d_mtu() -> u32 {
    1500
}
fn d_min_rto() -> String {
    "5ms".into()
}

fn d_link_latency() -> u64 {
    200
}
fn d_switch_latency() -> u64 {
    300
}
fn d_ports() -> Vec<String> {
    vec!["10.0.0.1/24".into(), "10.0.1.1/24".into()]
}
fn d_host_nqn() -> String {
    "nqn.2014-08.org.nvmexpress:uuid:00000000-d9d0-4000-8000-000000000001".into()
}
fn d_speed() -> u32 {
    100
}
fn d_target_latency() -> String {
    "10us".into()
}
fn d_target_queues() -> u16 {
    128
}
fn d_inline() -> u32 {
    8192
}

/// The network the DPU ports sit on: addresses, one switch, impairments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCfg {
    /// Address/prefix of each DPU port, in port order ("10.0.0.1/24").
    #[serde(default = "d_ports")]
    pub ports: Vec<String>,
    /// MTU of the DPU ports and the target models: 1500 or 9000.
    #[serde(default = "d_mtu")]
    pub mtu: u32,
    /// One-way latency of each cable (propagation + PHY).
    #[serde(default = "d_link_latency")]
    pub link_latency_ns: u64,
    /// Store-and-forward switch: port-to-port latency after the frame is in.
    #[serde(default = "d_switch_latency")]
    pub switch_latency_ns: u64,
    /// Frames dropped / reordered / duplicated on the switch, in percent.
    #[serde(default)]
    pub loss_percent: f64,
    #[serde(default)]
    pub reorder_percent: f64,
    #[serde(default)]
    pub duplicate_percent: f64,
    /// Seed of the impairments (deterministic).
    #[serde(default)]
    pub seed: u64,
    /// The DPU's NVMe host NQN toward remote targets.
    #[serde(default = "d_host_nqn")]
    pub host_nqn: String,
    /// NVMe/TCP header and data digests (CRC32C) the DPU asks for.
    #[serde(default)]
    pub header_digest: bool,
    #[serde(default)]
    pub data_digest: bool,
    /// Large receive offload on the DPU NIC.
    #[serde(default)]
    pub lro: bool,
    /// Lower bound of the TCP retransmission timeout of every simulated
    /// endpoint (the DPU's stacks and the target models), e.g. "5ms";
    /// 1 ms ..= 60 s in whole milliseconds. RFC 6298 says 1 s, which makes
    /// one lost tail segment stall a queue for a second.
    #[serde(default = "d_min_rto")]
    pub tcp_min_rto: String,
    /// How long a command the DPU sent to a remote target may go
    /// unanswered before the DPU tears that queue's connection down,
    /// reconnects and sends the command again (Linux nvme-tcp: the I/O
    /// timeout, 30 s), e.g. "20ms"; 1 ms ..= 60 s, and at least twice
    /// `tcp_min_rto` so that one retransmission does not trigger it.
    /// Default: 20 ms or four times `tcp_min_rto`, whichever is longer.
    #[serde(default)]
    pub io_timeout: Option<String>,
}

impl NetworkCfg {
    /// `tcp_min_rto` in milliseconds (validated when the scenario loads).
    pub fn tcp_min_rto_ms(&self) -> u16 {
        parse_time_ns(&self.tcp_min_rto).map_or(5, |ns| (ns / 1_000_000).clamp(1, 60_000) as u16)
    }
    /// `io_timeout` in microseconds (validated when the scenario loads).
    pub fn io_timeout_us(&self) -> u32 {
        let default = (u32::from(self.tcp_min_rto_ms()) * 4_000).max(20_000);
        self.io_timeout.as_deref().and_then(|t| parse_time_ns(t).ok()).map_or(default, |ns| (ns / 1_000).clamp(1_000, 60_000_000) as u32)
    }
}

impl Default for NetworkCfg {
    fn default() -> Self {
        NetworkCfg {
            ports: d_ports(),
            mtu: d_mtu(),
            link_latency_ns: d_link_latency(),
            switch_latency_ns: d_switch_latency(),
            loss_percent: 0.0,
            reorder_percent: 0.0,
            duplicate_percent: 0.0,
            seed: 0,
            host_nqn: d_host_nqn(),
            header_digest: false,
            data_digest: false,
            lro: false,
            tcp_min_rto: d_min_rto(),
            io_timeout: None,
        }
    }
}

/// A namespace of a target model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetNsCfg {
    pub size: String,
    #[serde(default = "d_bsize")]
    pub block_size: u32,
    /// What unwritten blocks read as: "zero" (default) or "pattern" (the
    /// host model's verify pattern, a disk image to boot from; see
    /// `crate::preos`).
    pub fill: Option<String>,
    /// The AES-256-XTS key (128 hex digits, Key1 then Key2) the card is
    /// expected to encrypt this namespace's blocks with, e.g. a crypto
    /// block device made on it through the management API
    /// (`bdev_crypto_create`): the report's media check (`at_rest`)
    /// then scans it as it does an encrypted boot namespace's.
    pub at_rest_key: Option<String>,
}

/// An NVMe/TCP target model on the switch (in-memory namespaces).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCfg {
    pub name: String,
    pub ip: String,
    #[serde(default = "d_nvmf_port")]
    pub port: u16,
    /// Subsystem NQN.
    pub nqn: String,
    /// Namespaces 1, 2, ... in order.
    pub namespaces: Vec<TargetNsCfg>,
    /// Media service time of each read/write, e.g. "10us".
    #[serde(default = "d_target_latency")]
    pub latency: String,
    #[serde(default = "d_speed")]
    pub speed_gbps: u32,
    /// I/O queues one controller accepts.
    #[serde(default = "d_target_queues")]
    pub max_queues: u16,
    /// Largest write carried in the command capsule (the rest uses R2T).
    #[serde(default = "d_inline")]
    pub inline_data: u32,
    /// The target lets a host disable SQ flow control (Connect CATTR bit
    /// 2, NVMe over Fabrics 1.1 §3.3) and then ends successful reads with
    /// a SUCCESS C2HData, as Linux nvmet does; `false`: it refuses such a
    /// Connect with Connect Invalid Parameters naming CATTR, as a
    /// controller without the feature does.
    #[serde(default = "d_sq_flow_disable")]
    pub sq_flow_disable: bool,
}

fn d_sq_flow_disable() -> bool {
    true
}

/// A timed fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCfg {
    /// "target-restart" (target drops every connection and refuses new
    /// ones for `duration`), "target-garbage" (target sends a malformed PDU
    /// on each of its I/O connections), "target-stall" (target keeps TCP
    /// up but answers no NVMe/TCP PDU for `duration`, or for good without
    /// one), "target-blackhole" (for `duration` the target keeps its
    /// connections up but answers nothing, and loses the commands it held
    /// or receives), "target-slow" (target's media time is `latency` for
    /// `duration`, or for good without one), "target-corrupt" (one byte of
    /// namespace `nsid` of the target, at byte `offset`, is flipped on its
    /// media, as bit rot would: nothing notices until the block is read
    /// or scrubbed), "link-down" (DPU port
    /// `port` loses link for `duration`) or "dma-error" (every DMA
    /// transfer to or from the host memory of PCIe function `function`
    /// fails, as on a PCIe completion error, for `duration`), "ssd-fail"
    /// (local SSD `ssd` fails every command, those in flight too, with
    /// Internal Error, for `duration` or for good) or "ssd-slow" (its
    /// media time per operation is `latency`, for `duration` or for good);
    /// faults an NVMe/TCP initiator model (`initiator`) injects on itself:
    /// "initiator-bad-pdu" (a CapsuleCmd with a wrong HLEN on one I/O
    /// queue), "initiator-bad-ddgst" (its next in-capsule write on one I/O
    /// queue has a wrong data digest; needs `ddgst = true`),
    /// "initiator-silent" (no Keep Alive for `duration`) and
    /// "initiator-disconnect" (a Fabrics Disconnect on one I/O queue);
    /// after one, that initiator recovers as Linux does (reconnects,
    /// retries).
    pub kind: String,
    /// Time after the workload starts, e.g. "1ms".
    pub at: String,
    /// How long (target-restart, link-down; optional for target-stall
    /// and target-slow).
    pub duration: Option<String>,
    pub target: Option<String>,
    pub port: Option<u32>,
    /// Media time per read/write while a target-slow fault holds, e.g. "2ms".
    pub latency: Option<String>,
    /// The PCIe function (0 = PF, n = VF n) of a dma-error fault.
    pub function: Option<u16>,
    /// target-corrupt: the namespace (default 1) and the byte offset in
    /// it, e.g. "2044KiB".
    pub nsid: Option<u32>,
    pub offset: Option<String>,
    /// ssd-fail / ssd-slow: the local SSD (slot).
    pub ssd: Option<u32>,
    /// initiator-*: the `[[initiators]]` name.
    pub initiator: Option<String>,
}

/// Fault kinds a scenario may name.
pub const FAULT_KINDS: [&str; 14] = [
    "target-restart",
    "target-garbage",
    "target-stall",
    "target-slow",
    "target-blackhole",
    "target-corrupt",
    "link-down",
    "dma-error",
    "ssd-fail",
    "ssd-slow",
    "initiator-bad-pdu",
    "initiator-bad-ddgst",
    "initiator-silent",
    "initiator-disconnect",
];

/// Where a namespace's blocks live (resolved from `[[storage]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Ram,
    /// A remote namespace: target address, port, subsystem NQN, remote nsid.
    Nvmf { traddr: std::net::Ipv4Addr, trsvcid: u16, subnqn: String, nsid: u32 },
    /// Namespace `nsid` of the card's local NVMe SSD `ssd`.
    Local { ssd: u32, nsid: u32 },
    /// An erasure-coded volume over k + m remote namespaces (each as in
    /// `Nvmf`: address, port, subsystem NQN, nsid), in fragment order.
    /// `spares` likewise; `scrub_at_us`: card time of a scrub (0 = none);
    /// `scrub_every_ms`: a scrub again this long after one ended (0 = none).
    Ec { k: u8, m: u8, members: Vec<(std::net::Ipv4Addr, u16, String, u32)>, spares: Vec<(std::net::Ipv4Addr, u16, String, u32)>, scrub_at_us: u32, scrub_every_ms: u32 },
}

impl Backend {
    /// The remote subsystems (address, port, NQN) the backend uses.
    pub fn remotes(&self) -> Vec<(std::net::Ipv4Addr, u16, String)> {
        match self {
            Backend::Ram | Backend::Local { .. } => Vec::new(),
            Backend::Nvmf { traddr, trsvcid, subnqn, .. } => vec![(*traddr, *trsvcid, subnqn.clone())],
            Backend::Ec { members, spares, .. } => members.iter().chain(spares).map(|(a, p, n, _)| (*a, *p, n.clone())).collect(),
        }
    }
}

/// One namespace of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceCfg {
    pub function: u16,
    pub nsid: u32,
    pub bytes: u64,
    pub block_size: u32,
    pub backend: Backend,
    /// AES-256-XTS key when the namespace is encrypted.
    pub encryption: Option<XtsKey>,
}

/// A 64-byte XTS-AES-256 key (Key1 then Key2). Its `Debug` shows no key
/// bytes, so the key stays out of logs and error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct XtsKey(pub [u8; 64]);

impl std::fmt::Debug for XtsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XtsKey(..)")
    }
}

/// Parses a `[[storage]] key`: 128 hex digits, halves differing
/// (IEEE 1619-2018 §5.1: Key1 and Key2 are distinct keys).
pub fn parse_xts_key(s: &str) -> Result<XtsKey, String> {
    let s = s.trim();
    if s.len() != 128 {
        return Err(format!("an AES-256-XTS key is 128 hex digits (64 bytes), not {} characters", s.len()));
    }
    let mut k = [0u8; 64];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| format!("character {} is not a hex digit", 2 * i + 1))?;
    }
    if k[..32] == k[32..] {
        return Err("the two halves (Key1, Key2) are equal; XTS needs two distinct keys".into());
    }
    Ok(XtsKey(k))
}

/// Parses "10.0.0.1/24".
pub fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (a, p) = s.split_once('/').ok_or(format!("`{s}` is not address/prefix (e.g. 10.0.0.1/24)"))?;
    let addr: std::net::Ipv4Addr = a.parse().map_err(|_| format!("`{a}` is not an IPv4 address"))?;
    let prefix: u8 = p.parse().map_err(|_| format!("`{p}` is not a prefix length"))?;
    if !(8..=30).contains(&prefix) {
        return Err(format!("prefix /{prefix} is out of range 8..=30"));
    }
    Ok((addr, prefix))
}

/// Whether `a` and `b` are in the same /`prefix` subnet.
pub fn same_subnet(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(a) & mask == u32::from(b) & mask
}

/// Checks an NQN (NVMe Base 2.0 §4.5: at most 223 bytes, "nqn." prefix).
/// The firmware takes printable ASCII without spaces (its boot
/// configuration parser refuses anything else).
pub fn check_nqn(s: &str) -> Result<(), String> {
    if !s.starts_with("nqn.") || s.len() > 223 || !s.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(format!("`{s}` is not an NQN (printable ASCII without spaces, starts with `nqn.`, at most 223 bytes)"));
    }
    Ok(())
}

fn d_mix() -> u32 {
    50
}
fn d_one() -> u32 {
    1
}

/// One fio-like job (instantiated per function and per `numjobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCfg {
    pub name: String,
    /// PCIe functions the job runs on (one instance each) ...
    #[serde(default)]
    pub functions: Vec<u16>,
    /// ... or the `[[initiators]]` entry it runs on, over NVMe/TCP.
    pub initiator: Option<String>,
    #[serde(default = "d_nsid")]
    pub nsid: u32,
    pub rw: String,
    #[serde(default = "d_mix")]
    pub rwmixread: u32,
    pub bs: String,
    pub iodepth: u32,
    #[serde(default = "d_one")]
    pub numjobs: u32,
    /// Simulated run time, e.g. "2ms".
    pub runtime: Option<String>,
    /// Like fio's `ramp_time`: run this long before measuring (warm-up,
    /// connection setup); I/Os submitted during the ramp are verified but
    /// not counted, and `runtime` starts after it.
    pub ramp_time: Option<String>,
    /// Bytes per job, e.g. "16MiB" (fio's `io_size`).
    pub size: Option<String>,
    /// Where the job's region of the namespace starts (bytes, a multiple
    /// of `bs`; fio's `offset`). Default 0.
    pub offset: Option<String>,
    /// Bytes of the namespace the job's blocks are drawn from, from
    /// `offset` (fio's `size` as a region; shared by `numjobs` instances).
    /// Default: the rest of the namespace.
    pub region: Option<String>,
    #[serde(default)]
    pub verify: bool,
    /// After the run, read back every block the job wrote and check it
    /// (needs `verify`; the time it takes is not in the job's figures).
    #[serde(default)]
    pub verify_at_end: bool,
    /// The end-of-job check sends each written block's expected data with
    /// NVMe Compare (NVM Command Set 1.0 §3.2.1) instead of reading it
    /// back (needs `verify_at_end`); one Compare of altered data must fail
    /// with Compare Failure first (the check can fail).
    #[serde(default)]
    pub compare: bool,
    #[serde(default)]
    pub scattered: bool,
    #[serde(default)]
    pub buf_offset: u32,
    #[serde(default)]
    pub seed: u64,
    /// Like fio's `startdelay`: the job starts this long after the
    /// workload ("2ms"). The host first rescans the function's namespaces
    /// (as `nvme ns-rescan` would after an attach).
    pub startdelay: Option<String>,
    /// The namespace is not in [[storage]]: an `[[rpc]]` call attaches it
    /// at run time, before `startdelay`; this says its geometry.
    pub attached: Option<AttachedCfg>,
}

/// A namespace attached at run time, as a job sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedCfg {
    pub size: String,
    #[serde(default = "d_block_size")]
    pub block_size: u32,
}

fn d_block_size() -> u32 {
    512
}

/// Expected outcome.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpectCfg {
    #[serde(default)]
    pub verify_errors: u64,
    #[serde(default)]
    pub io_errors: u64,
    /// At least this many I/Os in total.
    #[serde(default)]
    pub min_ios: u64,
}

/// Parses "4k", "128KiB", "64MiB", "1G", "512" into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.trim().parse().map_err(|_| format!("`{s}` is not a size (e.g. 4k, 128KiB, 64MiB)"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit `{u}` in `{s}`")),
    };
    n.checked_mul(mul).ok_or(format!("`{s}` is too large"))
}

/// Longest time a scenario (or `dpusim --max-time`) can name: one hour of
/// simulated time. Far beyond any run (they cover milliseconds), and sums
/// of such times stay far inside simulated cycles (u64) at any chip clock
/// up to 1 THz.
pub const MAX_TIME_NS: u64 = 3_600 * 1_000_000_000;

/// Parses "250us", "2ms", "1.5s", "100ns" (also "5µs") into nanoseconds:
/// a positive whole number of nanoseconds up to [`MAX_TIME_NS`]. Decimal
/// arithmetic is exact ("0.4ns" is refused, not rounded to 0).
pub fn parse_time_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let like = || format!("`{s}` is not a time like 10us (a number, then ns, us, ms or s)");
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let unit = unit.trim();
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(like());
    }
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "" => return Err(format!("`{s}` has no unit (ns, us, ms or s)")),
        u => return Err(format!("unknown time unit `{u}` in `{s}` (use ns, us, ms or s)")),
    };
    let too_long = || format!("`{s}` is more than one hour ({}s), the longest simulated time a run can name", MAX_TIME_NS / 1_000_000_000);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(too_long());
    }
    let mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| like())? };
    let den = 10u128.pow(frac.len().min(38) as u32);
    let scaled = mantissa.checked_mul(scale).ok_or_else(too_long)?;
    if frac.len() > 38 || scaled % den != 0 {
        return Err(format!("`{s}` is not a whole number of nanoseconds"));
    }
    let ns = scaled / den;
    if ns == 0 {
        return Err(format!("`{s}` is zero; give a positive time"));
    }
    if ns > u128::from(MAX_TIME_NS) {
        return Err(too_long());
    }
    Ok(ns as u64)
}

/// Checks a time given as a plain number of `unit`s (`link_latency_ns`,
/// `io_timeout_ms`, ...): at most [`MAX_TIME_NS`].
fn check_time_field(v: u64, unit_ns: u64, unit: &str) -> Result<(), String> {
    if v.checked_mul(unit_ns).is_none_or(|ns| ns > MAX_TIME_NS) {
        return Err(format!("{v} {unit} is more than one hour ({}s), the longest simulated time a run can name", MAX_TIME_NS / 1_000_000_000));
    }
    Ok(())
}

/// The network and broadcast addresses of `addr`/`prefix`.
fn subnet_ends(addr: std::net::Ipv4Addr, prefix: u8) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let mask = u32::MAX << (32 - u32::from(prefix));
    let net = u32::from(addr) & mask;
    (net.into(), (net | !mask).into())
}

/// Why `ip` cannot be a host on `addr`/`prefix` (network or broadcast address).
fn not_a_host(ip: std::net::Ipv4Addr, addr: std::net::Ipv4Addr, prefix: u8) -> Option<String> {
    let (net, bcast) = subnet_ends(addr, prefix);
    if ip == net {
        Some(format!("{ip} is the network address of {net}/{prefix}, not a host"))
    } else if ip == bcast {
        Some(format!("{ip} is the broadcast address of {net}/{prefix}, not a host"))
    } else {
        None
    }
}

impl Scenario {
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ConfigError> {
        let path = path.as_ref();
        let mut s: Scenario = load_toml(path)?;
        s.source = path.to_path_buf();
        s.validate()?;
        Ok(s)
    }

    /// Parses and validates scenario TOML text; `path` is only used in messages.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Scenario, ConfigError> {
        let path = path.as_ref();
        let mut s: Scenario = crate::parse_toml(path, text)?;
        s.source = path.to_path_buf();
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
        let h = &self.host;
        if h.vfs > 64 {
            return err("host.vfs".into(), format!("{} VFs; the board supports at most 64", h.vfs));
        }
        if let Some(c) = &h.sriov_cycle {
            let d = parse_time_ns(&c.disable_at).map_err(bad("host.sriov_cycle.disable_at".into()))?;
            let e = parse_time_ns(&c.enable_at).map_err(bad("host.sriov_cycle.enable_at".into()))?;
            if e <= d {
                return err("host.sriov_cycle.enable_at".into(), format!("{} is not after disable_at ({})", c.enable_at, c.disable_at));
            }
            if c.vfs > 64 {
                return err("host.sriov_cycle.vfs".into(), format!("{} VFs; the board supports at most 64", c.vfs));
            }
            if self.jobs.iter().any(|j| j.functions.iter().any(|&f| f > 0)) {
                return err("host.sriov_cycle".into(), "a job runs on a VF, which disappears when SR-IOV is disabled".into());
            }
        }
        if h.io_queues == 0 || h.io_queues > 64 {
            return err("host.io_queues".into(), format!("{} is out of range 1..=64", h.io_queues));
        }
        if !(2..=4096).contains(&h.io_queue_depth) {
            return err("host.io_queue_depth".into(), format!("{} is out of range 2..=4096", h.io_queue_depth));
        }
        for (field, v, unit_ns, unit) in [
            ("vf_settle_ms", h.vf_settle_ms, 1_000_000, "ms"),
            ("io_timeout_ms", h.io_timeout_ms, 2_000_000, "ms (x2 for admin commands)"),
            ("submit_ns", h.submit_ns, 1, "ns"),
            ("complete_ns", h.complete_ns, 1, "ns"),
        ] {
            check_time_field(v, unit_ns, unit).map_err(bad(format!("host.{field}")))?;
        }
        let exists = |fun: u16| fun == 0 || fun <= h.vfs;
        // The simulator numbers its nodes' MACs with one byte per kind.
        for (field, n) in [("targets", self.targets.len()), ("initiators", self.initiators.len())] {
            if n > MAX_MODELS {
                return err(field.into(), format!("{n} models; at most {MAX_MODELS}"));
            }
        }
        self.validate_network()?;
        self.validate_management()?;
        let namespaces = self.resolve_namespaces()?;
        self.resolve_subsystems()?;
        for (i, s) in self.storage.iter().enumerate() {
            let at = |field: &str| format!("storage[{i}].{field}");
            if s.functions.is_empty() {
                return err(at("functions"), "lists no function".into());
            }
            for &fun in &s.functions {
                if !exists(fun) {
                    return err(at("functions"), format!("function {fun} does not exist (host.vfs = {})", h.vfs));
                }
            }
        }
        for (i, fl) in self.faults.iter().enumerate() {
            let at = |field: &str| format!("faults[{i}].{field}");
            if !FAULT_KINDS.contains(&fl.kind.as_str()) {
                return err(at("kind"), format!("`{}` is not a fault kind ({})", fl.kind, FAULT_KINDS.join(", ")));
            }
            parse_time_ns(&fl.at).map_err(bad(at("at")))?;
            match &fl.duration {
                Some(d) => {
                    parse_time_ns(d).map_err(bad(at("duration")))?;
                }
                None if matches!(fl.kind.as_str(), "target-restart" | "link-down" | "dma-error" | "initiator-silent") => return err(at("duration"), format!("{} needs a duration", fl.kind)),
                None => {}
            }
            if fl.ssd.is_some() && !fl.kind.starts_with("ssd-") {
                return err(at("ssd"), format!("only ssd-fail and ssd-slow take ssd, not {}", fl.kind));
            }
            if fl.initiator.is_some() && !fl.kind.starts_with("initiator-") {
                return err(at("initiator"), format!("only initiator-* faults take initiator, not {}", fl.kind));
            }
            if fl.kind != "target-corrupt" && (fl.nsid.is_some() || fl.offset.is_some()) {
                let field = if fl.nsid.is_some() { "nsid" } else { "offset" };
                return err(at(field), format!("only target-corrupt takes {field}, not {}", fl.kind));
            }
            match (&fl.latency, fl.kind.as_str()) {
                (Some(l), "target-slow" | "ssd-slow") => {
                    parse_time_ns(l).map_err(bad(at("latency")))?;
                }
                (None, k @ ("target-slow" | "ssd-slow")) => return err(at("latency"), format!("{k} needs a latency (the media time while it holds)")),
                (Some(_), k) => return err(at("latency"), format!("only target-slow and ssd-slow take a latency, not {k}")),
                (None, _) => {}
            }
            match fl.kind.as_str() {
                "target-restart" | "target-garbage" | "target-stall" | "target-slow" | "target-blackhole" | "target-corrupt" => {
                    let Some(t) = &fl.target else { return err(at("target"), format!("{} needs a target name", fl.kind)) };
                    let Some(tg) = self.targets.iter().find(|x| &x.name == t) else {
                        return err(at("target"), format!("no [[targets]] is named `{t}`"));
                    };
                    if fl.kind == "target-corrupt" {
                        let nsid = fl.nsid.unwrap_or(1);
                        let Some(ns) = (nsid >= 1).then(|| tg.namespaces.get(nsid as usize - 1)).flatten() else {
                            return err(at("nsid"), format!("target `{t}` has namespaces 1..={}", tg.namespaces.len()));
                        };
                        let Some(o) = &fl.offset else { return err(at("offset"), "target-corrupt needs the byte offset to flip, e.g. \"2044KiB\"".into()) };
                        let off = parse_size(o).map_err(bad(at("offset")))?;
                        let bytes = parse_size(&ns.size).unwrap_or(0);
                        if off >= bytes {
                            return err(at("offset"), format!("{off} is past the namespace's {bytes} bytes"));
                        }
                    }
                }
                "dma-error" => {
                    let Some(f) = fl.function else { return err(at("function"), "dma-error needs a PCIe function (0 = PF, n = VF n)".into()) };
                    if !exists(f) {
                        return err(at("function"), format!("function {f} does not exist (host.vfs = {})", h.vfs));
                    }
                }
                "initiator-bad-pdu" | "initiator-bad-ddgst" | "initiator-silent" | "initiator-disconnect" => {
                    let Some(n) = &fl.initiator else { return err(at("initiator"), format!("{} needs an initiator name", fl.kind)) };
                    let Some(c) = self.initiators.iter().find(|x| &x.name == n) else {
                        return err(at("initiator"), format!("no [[initiators]] is named `{n}`"));
                    };
                    if fl.kind == "initiator-bad-ddgst" && !c.ddgst {
                        return err(at("initiator"), format!("initiator-bad-ddgst needs data digests (`ddgst = true` on `{n}`)"));
                    }
                    if fl.kind == "initiator-silent" && c.kato_ns() == 0 {
                        return err(at("initiator"), format!("initiator-silent needs a Keep Alive Timeout (`kato` on `{n}`)"));
                    }
                }
                "ssd-fail" | "ssd-slow" => {
                    if fl.ssd.is_none() {
                        return err(at("ssd"), format!("{} needs the SSD's slot (`ssd`)", fl.kind));
                    }
                }
                "link-down" => {
                    let Some(p) = fl.port else { return err(at("port"), "link-down needs a DPU port number".into()) };
                    if p as usize >= self.network.ports.len() {
                        return err(at("port"), format!("port {p} does not exist ({} ports)", self.network.ports.len()));
                    }
                }
                k => return err(at("kind"), format!("`{k}` is not a fault kind ({})", FAULT_KINDS.join(", "))),
            }
        }
        for (i, j) in self.jobs.iter().enumerate() {
            let at = |field: &str| format!("jobs[{i}].{field}");
            if j.initiator.is_some() && !j.functions.is_empty() {
                return err(at("initiator"), "a job runs on PCIe functions or on an initiator, not both".into());
            }
            if !["read", "write", "randread", "randwrite", "randrw", "readwrite", "rw"].contains(&j.rw.as_str()) {
                return err(at("rw"), format!("`{}` is not one of read, write, randread, randwrite, randrw, readwrite", j.rw));
            }
            if j.rwmixread > 100 {
                return err(at("rwmixread"), format!("{} is more than 100 percent", j.rwmixread));
            }
            let bs = parse_size(&j.bs).map_err(bad(at("bs")))?;
            if !(512..=128 * 1024).contains(&bs) || bs % 512 != 0 {
                return err(at("bs"), format!("{bs} must be a multiple of 512 between 512 B and 128 KiB"));
            }
            if j.iodepth == 0 || (j.initiator.is_none() && j.iodepth >= u32::from(h.io_queue_depth) * u32::from(h.io_queues)) {
                return err(at("iodepth"), format!("{} must be 1..{} (queues x depth)", j.iodepth, u32::from(h.io_queue_depth) * u32::from(h.io_queues)));
            }
            if j.numjobs == 0 || j.numjobs > 64 {
                return err(at("numjobs"), format!("{} is out of range 1..=64", j.numjobs));
            }
            if j.runtime.is_none() && j.size.is_none() {
                return err(at("runtime"), "give a runtime or a size".into());
            }
            if let Some(r) = &j.runtime {
                parse_time_ns(r).map_err(bad(at("runtime")))?;
            }
            if let Some(r) = &j.ramp_time {
                parse_time_ns(r).map_err(bad(at("ramp_time")))?;
            }
            if let Some(r) = &j.startdelay {
                parse_time_ns(r).map_err(bad(at("startdelay")))?;
            }
            let attached = match &j.attached {
                Some(a) => {
                    if j.startdelay.is_none() {
                        return err(at("attached"), "a namespace attached at run time needs a startdelay (after the attach)".into());
                    }
                    if a.block_size != 512 && a.block_size != 4096 {
                        return err(at("attached.block_size"), format!("{} must be 512 or 4096", a.block_size));
                    }
                    let bytes = parse_size(&a.size).map_err(bad(at("attached.size")))?;
                    if bytes == 0 || bytes % u64::from(a.block_size) != 0 {
                        return err(at("attached.size"), format!("{bytes} must be a non-zero multiple of the block size"));
                    }
                    Some((bytes, a.block_size))
                }
                None => None,
            };
            if let Some(s) = &j.size {
                parse_size(s).map_err(bad(at("size")))?;
            }
            if j.buf_offset % 4 != 0 || j.buf_offset >= 4096 {
                return err(at("buf_offset"), format!("{} must be dword aligned and below 4096", j.buf_offset));
            }
            if j.verify_at_end && !j.verify {
                return err(at("verify_at_end"), "needs verify = true".into());
            }
            if j.compare && !j.verify_at_end {
                return err(at("compare"), "needs verify_at_end = true (the end-of-job check is what it does by Compare)".into());
            }
            let offset = j.offset.as_deref().map(parse_size).transpose().map_err(bad(at("offset")))?.unwrap_or(0);
            if offset % bs != 0 {
                return err(at("offset"), format!("{offset} is not a multiple of bs ({bs})"));
            }
            let region = j.region.as_deref().map(parse_size).transpose().map_err(bad(at("region")))?;
            if region == Some(0) {
                return err(at("region"), "must not be 0".into());
            }
            for &fun in &j.functions {
                let configured = namespaces.iter().find(|n| n.function == fun && n.nsid == j.nsid);
                let live;
                let ns = match (configured, attached) {
                    (Some(_), Some(_)) => return err(at("attached"), format!("function {fun} namespace {} is in [[storage]] already", j.nsid)),
                    (Some(ns), None) => ns,
                    (None, Some((bytes, block_size))) => {
                        live = NamespaceCfg { function: fun, nsid: j.nsid, bytes, block_size, backend: Backend::Ram, encryption: None };
                        &live
                    }
                    (None, None) => return err(at("functions"), format!("function {fun} has no namespace {} in [[storage]]", j.nsid)),
                };
                if bs % u64::from(ns.block_size) != 0 {
                    return err(at("bs"), format!("{bs} is not a multiple of the namespace block size {}", ns.block_size));
                }
                if offset >= ns.bytes {
                    return err(at("offset"), format!("{offset} is not inside function {fun} namespace {} ({} bytes)", j.nsid, ns.bytes));
                }
                if let Some(r) = region.filter(|&r| offset.saturating_add(r) > ns.bytes) {
                    return err(
                        at("region"),
                        format!("offset {offset} + region {r} is past the end of function {fun} namespace {} ({} bytes)", j.nsid, ns.bytes),
                    );
                }
                // Each of the numjobs instances gets its share of the
                // region and keeps at most one I/O per block in flight.
                let blocks = region.unwrap_or(ns.bytes - offset) / u64::from(j.numjobs) / bs;
                if u64::from(j.iodepth) > blocks {
                    return err(
                        at("iodepth"),
                        format!(
                            "{} is more than the {blocks} blocks of {bs} bytes in each job's share of function {fun} namespace {} \
                             ({} bytes of region / numjobs {}); a job keeps at most one I/O per block in flight",
                            j.iodepth, j.nsid, region.unwrap_or(ns.bytes - offset), j.numjobs
                        ),
                    );
                }
            }
        }
        self.check_shared_blocks(&namespaces)?;
        crate::initiator::validate(self)?;
        crate::hostile::validate(self, &namespaces)?;
        crate::firmware::validate(self)?;
        crate::preos::validate(self, &namespaces)
    }

    /// A verified job remembers what it wrote; another job writing the same
    /// blocks (the same RAM namespace, or the same remote namespace through
    /// any function) makes it report false errors. Refused here.
    fn check_shared_blocks(&self, namespaces: &[NamespaceCfg]) -> Result<(), ConfigError> {
        // (job, function, where the blocks live, byte range, writes?, verifies?)
        let mut users: Vec<(usize, u16, String, (u64, u64), bool, bool)> = Vec::new();
        for (i, j) in self.jobs.iter().enumerate() {
            let writes = !matches!(j.rw.as_str(), "read" | "randread") && j.rwmixread < 100 || matches!(j.rw.as_str(), "write" | "randwrite");
            let offset = j.offset.as_deref().and_then(|o| parse_size(o).ok()).unwrap_or(0);
            let region = j.region.as_deref().and_then(|r| parse_size(r).ok());
            for &fun in &j.functions {
                let Some(ns) = namespaces.iter().find(|n| n.function == fun && n.nsid == j.nsid) else { continue };
                let place = match &ns.backend {
                    Backend::Ram => format!("RAM namespace {} of function {fun}", ns.nsid),
                    Backend::Nvmf { traddr, trsvcid, subnqn, nsid } => format!("namespace {nsid} of {subnqn} at {traddr}:{trsvcid}"),
                    Backend::Ec { members, .. } => format!("EC volume over {members:?}"),
                    Backend::Local { ssd, nsid } => format!("namespace {nsid} of local SSD {ssd}"),
                };
                let range = (offset, region.map_or(ns.bytes, |r| offset + r));
                for (k, f2, p2, r2, w2, v2) in &users {
                    let overlap = range.0 < r2.1 && r2.0 < range.1;
                    if *p2 == place && overlap && ((j.verify && *w2) || (*v2 && writes)) {
                        let (verifier, writer) = if j.verify && *w2 { (i, *k) } else { (*k, i) };
                        let (vj, wj) = (&self.jobs[verifier], &self.jobs[writer]);
                        let what = if k == &i { format!("through functions {f2} and {fun}") } else { format!("(function {fun})") };
                        return Err(ConfigError::field(
                            &self.source,
                            format!("jobs[{i}].nsid"),
                            format!(
                                "job `{}` writes {place} {what}, which job `{}` verifies: a verified job must be the only writer of its \
                                 blocks (it would read the other job's data as errors); give the jobs separate namespaces \
                                 or separate regions (offset, region)",
                                wj.name, vj.name
                            ),
                        ));
                    }
                }
                users.push((i, fun, place, range, writes, j.verify));
            }
        }
        Ok(())
    }

    /// Checks an address the DPU connects to (a target): a host address in
    /// the subnet of a DPU port (the firmware has no gateway), not a port's own.
    fn check_peer_address(&self, ip: std::net::Ipv4Addr) -> Result<(), String> {
        let ports = self.port_addrs();
        let Some(&(addr, prefix)) = ports.iter().find(|&&(a, p)| same_subnet(a, ip, p)) else {
            return Err(format!(
                "{ip} is outside the subnet of every DPU port ({}); the firmware reaches targets on-link only",
                self.network.ports.join(", ")
            ));
        };
        if let Some(why) = not_a_host(ip, addr, prefix) {
            return Err(why);
        }
        if let Some(k) = ports.iter().position(|&(a, _)| a == ip) {
            return Err(format!("{ip} is the address of DPU port {k}"));
        }
        Ok(())
    }

    /// Local namespaces and SSD faults against the board's `[ssd]`: the
    /// SSD is fitted, the namespace fits it with its block size, and one
    /// `[[storage]]` entry per SSD (a second would share its blocks).
    fn check_ssds(&self, board: &Board) -> Result<(), ConfigError> {
        let f = &self.source;
        let b = &board.ssd;
        let mut used: Vec<u32> = Vec::new();
        for (i, s) in self.storage.iter().enumerate() {
            let Some(ssd) = s.ssd else { continue };
            let at = |field: &str| format!("storage[{i}].{field}");
            if ssd >= b.count {
                return Err(ConfigError::field(f, at("ssd"), format!("SSD {ssd}; board `{}` fits {} (ssd.count)", board.board.name, b.count)));
            }
            if used.contains(&ssd) {
                return Err(ConfigError::field(f, at("ssd"), format!("SSD {ssd} already backs another [[storage]] entry")));
            }
            used.push(ssd);
            if s.block_size != b.lba_size {
                return Err(ConfigError::field(f, at("block_size"), format!("{}: the SSDs have {} B blocks (board ssd.lba_size)", s.block_size, b.lba_size)));
            }
            let bytes = s.size.as_deref().and_then(|t| parse_size(t).ok()).unwrap_or(0);
            if bytes > b.capacity {
                return Err(ConfigError::field(f, at("size"), format!("{bytes} bytes; the SSDs hold {} (board ssd.capacity)", b.capacity)));
            }
        }
        for (i, fl) in self.faults.iter().enumerate() {
            if let Some(ssd) = fl.ssd.filter(|&s| s >= b.count) {
                return Err(ConfigError::field(f, format!("faults[{i}].ssd"), format!("SSD {ssd}; board `{}` fits {} (ssd.count)", board.board.name, b.count)));
            }
        }
        Ok(())
    }

    /// Checks the scenario against the chip and board it runs on: VFs the
    /// board has, RAM namespaces the chip's DDR can hold (what
    /// [`Chip::ram_namespace_pool`] leaves), ports the board wires.
    pub fn check_platform(&self, chip: &Chip, board: &Board) -> Result<(), ConfigError> {
        let f = &self.source;
        let total_vfs = board.pcie.total_vfs;
        if u32::from(self.host.vfs) > total_vfs {
            return Err(ConfigError::field(f, "host.vfs", format!("{} VFs; board `{}` has {total_vfs}", self.host.vfs, board.board.name)));
        }
        let wired = board.network.ports.len();
        if self.network.ports.len() > wired {
            return Err(ConfigError::field(
                f,
                "network.ports",
                format!("{} addresses; board `{}` wires {wired} ports", self.network.ports.len(), board.board.name),
            ));
        }
        self.check_ssds(board)?;
        let keys = self.namespace_cfgs().iter().filter(|n| n.encryption.is_some()).count();
        if keys > chip.devices.crypto.key_slots as usize {
            return Err(ConfigError::field(
                f,
                "storage",
                format!("{keys} encrypted namespaces; chip `{}` has {} crypto key slots", chip.chip.name, chip.devices.crypto.key_slots),
            ));
        }
        let (_, pool) = chip.ram_namespace_pool();
        let mut used: u64 = 0;
        for (i, s) in self.storage.iter().enumerate() {
            if s.backend != "ram" {
                continue;
            }
            let bytes = s.size.as_deref().and_then(|t| parse_size(t).ok()).unwrap_or(0);
            let each = bytes.checked_next_multiple_of(4096).unwrap_or(u64::MAX);
            used = used.saturating_add(each.saturating_mul(s.functions.len() as u64));
            if used > pool {
                let d = &chip.memory.ddr;
                return Err(ConfigError::field(
                    f,
                    format!("storage[{i}].size"),
                    format!(
                        "RAM namespaces need {} MiB up to here ({} function(s) x {}); the DPU's DDR holds {} MiB for them \
                         (memory.ddr.size {:#x} - image_size {:#x} - firmware.ddr_heap_size {:#x} in {})",
                        used >> 20,
                        s.functions.len(),
                        s.size.as_deref().unwrap_or("?"),
                        pool >> 20,
                        d.size,
                        d.image_size,
                        chip.firmware.ddr_heap_size,
                        chip.source.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
        let n = &self.network;
        if n.ports.is_empty() || n.ports.len() > MAX_PORTS {
            return err("network.ports".into(), format!("{} addresses; give one per DPU port (1..={MAX_PORTS})", n.ports.len()));
        }
        let mut ports: Vec<(std::net::Ipv4Addr, u8)> = Vec::new();
        for (i, p) in n.ports.iter().enumerate() {
            let field = format!("network.ports[{i}]");
            let (addr, prefix) = parse_cidr(p).map_err(bad(field.clone()))?;
            if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
                return err(field, format!("{addr} is not a unicast host address"));
            }
            if let Some(why) = not_a_host(addr, addr, prefix) {
                return err(field, why);
            }
            for (k, &(a, p2)) in ports.iter().enumerate() {
                if same_subnet(a, addr, prefix.min(p2)) {
                    let (net, _) = subnet_ends(addr, prefix);
                    return err(field, format!("subnet {net}/{prefix} overlaps network.ports[{k}] ({}): each port needs its own subnet", n.ports[k]));
                }
            }
            ports.push((addr, prefix));
        }
        for (field, v) in [("link_latency_ns", n.link_latency_ns), ("switch_latency_ns", n.switch_latency_ns)] {
            check_time_field(v, 1, "ns").map_err(bad(format!("network.{field}")))?;
        }
        if n.mtu != 1500 && n.mtu != 9000 {
            return err("network.mtu".into(), format!("{} must be 1500 or 9000", n.mtu));
        }
        for (field, v) in [("loss_percent", n.loss_percent), ("reorder_percent", n.reorder_percent), ("duplicate_percent", n.duplicate_percent)] {
            if !(0.0..=50.0).contains(&v) {
                return err(format!("network.{field}"), format!("{v} must be within 0..=50"));
            }
        }
        check_nqn(&n.host_nqn).map_err(bad("network.host_nqn".into()))?;
        let rto = parse_time_ns(&n.tcp_min_rto).map_err(bad("network.tcp_min_rto".into()))?;
        if rto % 1_000_000 != 0 || !(1..=60_000).contains(&(rto / 1_000_000)) {
            return err("network.tcp_min_rto".into(), format!("{} must be whole milliseconds within 1ms..=60s", n.tcp_min_rto));
        }
        if let Some(t) = &n.io_timeout {
            let io = parse_time_ns(t).map_err(bad("network.io_timeout".into()))?;
            if !(1_000_000..=60_000_000_000).contains(&io) || io % 1_000 != 0 {
                return err("network.io_timeout".into(), format!("{t} must be whole microseconds within 1ms..=60s"));
            }
            if io < 2 * rto {
                return err("network.io_timeout".into(), format!("{t} is shorter than twice tcp_min_rto ({}): one retransmission would trigger it", n.tcp_min_rto));
            }
        }
        let mut names: Vec<&str> = Vec::new();
        let mut addrs = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let at = |field: &str| format!("targets[{i}].{field}");
            if t.name.is_empty() || names.contains(&t.name.as_str()) {
                return err(at("name"), format!("`{}` is empty or used twice", t.name));
            }
            names.push(&t.name);
            let ip: std::net::Ipv4Addr = t.ip.parse().map_err(|_| ConfigError::field(f, at("ip"), format!("`{}` is not an IPv4 address", t.ip)))?;
            self.check_peer_address(ip).map_err(bad(at("ip")))?;
            if addrs.contains(&ip) {
                return err(at("ip"), format!("{ip} is used by another target"));
            }
            addrs.push(ip);
            check_nqn(&t.nqn).map_err(bad(at("nqn")))?;
            if t.namespaces.is_empty() || t.namespaces.len() > 32 {
                return err(at("namespaces"), format!("{} namespaces; a target model has 1..=32", t.namespaces.len()));
            }
            for (k, ns) in t.namespaces.iter().enumerate() {
                let size = parse_size(&ns.size).map_err(bad(at(&format!("namespaces[{k}].size"))))?;
                if ![512, 4096].contains(&ns.block_size) || size == 0 || size % u64::from(ns.block_size) != 0 {
                    return err(at(&format!("namespaces[{k}]")), format!("size {size} / block_size {} must be a positive multiple of 512 or 4096", ns.block_size));
                }
            }
            parse_time_ns(&t.latency).map_err(bad(at("latency")))?;
            if t.port == 0 {
                return err(at("port"), "port 0 is not a TCP port to listen on".into());
            }
            if ![10, 25, 40, 50, 100, 200, 400].contains(&t.speed_gbps) {
                return err(at("speed_gbps"), format!("{} is not an Ethernet speed", t.speed_gbps));
            }
            if t.max_queues == 0 {
                return err(at("max_queues"), "must be at least 1".into());
            }
            if t.inline_data % 16 != 0 || t.inline_data > 1 << 20 {
                return err(at("inline_data"), format!("{} must be a multiple of 16 up to 1 MiB", t.inline_data));
            }
        }
        Ok(())
    }

    /// Every (function, namespace) with its size and backend, checked.
    fn resolve_namespaces(&self) -> Result<Vec<NamespaceCfg>, ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
        let mut out: Vec<NamespaceCfg> = Vec::new();
        for (i, s) in self.storage.iter().enumerate() {
            let at = |field: &str| format!("storage[{i}].{field}");
            if s.nsid == 0 || s.nsid > MAX_NSID {
                return err(at("nsid"), format!("{} is out of range 1..={MAX_NSID} (namespace IDs the firmware serves)", s.nsid));
            }
            let given = match &s.size {
                Some(t) => Some(parse_size(t).map_err(bad(at("size")))?),
                None => None,
            };
            let (bytes, block_size, backend) = match s.backend.as_str() {
                "ram" => {
                    if s.target.is_some() || s.traddr.is_some() || s.subnqn.is_some() {
                        return err(at("backend"), "a ram namespace takes no target, traddr or subnqn".into());
                    }
                    let Some(bytes) = given else { return err(at("size"), "a ram namespace needs a size".into()) };
                    (bytes, s.block_size, Backend::Ram)
                }
                "nvmf" => match (&s.target, &s.traddr) {
                    (Some(name), None) => {
                        let Some(t) = self.targets.iter().find(|t| &t.name == name) else {
                            return err(at("target"), format!("no [[targets]] is named `{name}`"));
                        };
                        let k = s.remote_nsid as usize;
                        let Some(ns) = (k >= 1).then(|| t.namespaces.get(k - 1)).flatten() else {
                            return err(at("remote_nsid"), format!("target `{name}` has namespaces 1..={}", t.namespaces.len()));
                        };
                        let bytes = parse_size(&ns.size).unwrap_or(0);
                        if given.is_some_and(|g| g != bytes) {
                            return err(at("size"), format!("differs from target `{name}` namespace {k} ({bytes} bytes)"));
                        }
                        let traddr = t.ip.parse().map_err(|_| ConfigError::field(f, at("target"), "target has a bad ip".to_string()))?;
                        (bytes, ns.block_size, Backend::Nvmf { traddr, trsvcid: t.port, subnqn: t.nqn.clone(), nsid: s.remote_nsid })
                    }
                    (None, Some(addr)) => {
                        let traddr = addr.parse().map_err(|_| ConfigError::field(f, at("traddr"), format!("`{addr}` is not an IPv4 address")))?;
                        self.check_peer_address(traddr).map_err(bad(at("traddr")))?;
                        if s.trsvcid == 0 {
                            return err(at("trsvcid"), "port 0 is not a TCP port to connect to".into());
                        }
                        if s.remote_nsid == 0 || s.remote_nsid == u32::MAX {
                            return err(at("remote_nsid"), format!("{} is not a valid namespace ID", s.remote_nsid));
                        }
                        let Some(subnqn) = &s.subnqn else { return err(at("subnqn"), "a remote target needs its subsystem NQN".into()) };
                        check_nqn(subnqn).map_err(bad(at("subnqn")))?;
                        let Some(bytes) = given else { return err(at("size"), "give the remote namespace's size".into()) };
                        (bytes, s.block_size, Backend::Nvmf { traddr, trsvcid: s.trsvcid, subnqn: subnqn.clone(), nsid: s.remote_nsid })
                    }
                    _ => return err(at("target"), "an nvmf namespace names either a target model (`target`) or a remote (`traddr` + `subnqn`)".into()),
                },
                "ec" => {
                    if s.target.is_some() || s.traddr.is_some() || s.subnqn.is_some() {
                        return err(at("backend"), "an ec namespace names its members in `ec.members`, not a target, traddr or subnqn".into());
                    }
                    let Some(ec) = &s.ec else { return err(at("ec"), "an ec namespace needs `ec = { k, m, members }`".into()) };
                    self.resolve_ec(i, ec, given)?
                }
                "local" => {
                    if s.target.is_some() || s.traddr.is_some() || s.subnqn.is_some() {
                        return err(at("backend"), "a local namespace names its SSD (`ssd`), not a target, traddr or subnqn".into());
                    }
                    let Some(ssd) = s.ssd else { return err(at("ssd"), "a local namespace needs `ssd`, the SSD's slot".into()) };
                    if s.remote_nsid != 1 {
                        return err(at("remote_nsid"), format!("{}: the local SSDs have one namespace, 1", s.remote_nsid));
                    }
                    let Some(bytes) = given else { return err(at("size"), "a local namespace needs a size (at most the SSD's capacity)".into()) };
                    (bytes, s.block_size, Backend::Local { ssd, nsid: s.remote_nsid })
                }
                b => return err(at("backend"), format!("`{b}` is not a known backend (ram, nvmf, ec, local)")),
            };
            if s.ssd.is_some() && s.backend != "local" {
                return err(at("ssd"), "only a namespace with `backend = \"local\"` takes `ssd`".into());
            }
            if s.ec.is_some() && s.backend != "ec" {
                return err(at("ec"), "only a namespace with `backend = \"ec\"` takes `ec`".into());
            }
            if ![512, 4096].contains(&block_size) {
                return err(at("block_size"), format!("{block_size} must be 512 or 4096"));
            }
            let encryption = match (s.encryption.as_deref(), &s.key) {
                (None | Some("none"), None) => None,
                (None | Some("none"), Some(_)) => return err(at("key"), "a key needs `encryption = \"aes-xts\"`".into()),
                (Some("aes-xts"), Some(k)) => Some(parse_xts_key(k).map_err(bad(at("key")))?),
                (Some("aes-xts"), None) => return err(at("key"), "an encrypted namespace needs its 64-byte key (128 hex digits)".into()),
                (Some(e), _) => return err(at("encryption"), format!("`{e}` is not an encryption (aes-xts, none)")),
            };
            if bytes == 0 || bytes % u64::from(block_size) != 0 {
                return err(at("size"), format!("{bytes} bytes is not a positive multiple of the block size"));
            }
            for &fun in &s.functions {
                if out.iter().any(|n| n.function == fun && n.nsid == s.nsid) {
                    return err(at("nsid"), format!("function {fun} already has namespace {}", s.nsid));
                }
                out.push(NamespaceCfg { function: fun, nsid: s.nsid, bytes, block_size, backend: backend.clone(), encryption: encryption.clone() });
            }
        }
        let ctrls: std::collections::BTreeSet<(std::net::Ipv4Addr, u16, String)> = out.iter().flat_map(|n| n.backend.remotes()).collect();
        let ec_volumes = self.storage.iter().filter(|s| s.backend == "ec").count();
        if ec_volumes > crate::limits::MAX_EC_VOLUMES {
            return err("storage".into(), format!("{ec_volumes} erasure-coded volumes; the firmware holds at most {}", crate::limits::MAX_EC_VOLUMES));
        }
        if ctrls.len() > MAX_REMOTE_CONTROLLERS {
            return err("storage".into(), format!("{} remote subsystems; the firmware connects to at most {MAX_REMOTE_CONTROLLERS}", ctrls.len()));
        }
        let keys = out.iter().filter(|n| n.encryption.is_some()).count();
        if keys > crate::limits::MAX_KEYS {
            return err(
                "storage".into(),
                format!("{keys} encrypted namespaces (one per listed function and nsid); the firmware holds at most {} keys", crate::limits::MAX_KEYS),
            );
        }
        if out.len() > MAX_NAMESPACES {
            return err(
                "storage".into(),
                format!("{} namespaces (one per listed function and nsid); the firmware serves at most {MAX_NAMESPACES}", out.len()),
            );
        }
        Ok(out)
    }

    /// An erasure-coded volume of `storage[i]`: (bytes, block size,
    /// backend), every member checked.
    fn resolve_ec(&self, i: usize, ec: &EcCfg, given: Option<u64>) -> Result<(u64, u32, Backend), ConfigError> {
        let f = &self.source;
        let at = |field: &str| format!("storage[{i}].ec.{field}");
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        // ISA-L's limits (k <= 32, m <= 4), which the EC engine shares.
        if !(1..=32).contains(&ec.k) {
            return err(at("k"), format!("{} data fragments; 1..=32", ec.k));
        }
        if !(1..=4).contains(&ec.m) {
            return err(at("m"), format!("{} parity fragments; 1..=4", ec.m));
        }
        let n = (ec.k + ec.m) as usize;
        if n > crate::limits::MAX_EC_MEMBERS {
            return err(at("k"), format!("k + m = {n} members; the firmware stripes over at most {}", crate::limits::MAX_EC_MEMBERS));
        }
        if ec.members.len() != n {
            return err(at("members"), format!("{} members for k + m = {n}", ec.members.len()));
        }
        if n + ec.spares.len() > crate::limits::MAX_EC_MEMBERS {
            return err(at("spares"), format!("k + m + {} spares; the firmware records at most {} namespaces per volume", ec.spares.len(), crate::limits::MAX_EC_MEMBERS));
        }
        let mut members = Vec::new();
        let mut geometry: Option<(u64, u32)> = None;
        let all: Vec<&EcMemberCfg> = ec.members.iter().chain(&ec.spares).collect();
        for (j, mb) in all.iter().enumerate() {
            let (field, what) = if j < n { (format!("storage[{i}].ec.members[{j}]"), "a member") } else { (format!("storage[{i}].ec.spares[{}]", j - n), "a spare") };
            let Some(t) = self.targets.iter().find(|t| t.name == mb.target) else {
                return err(format!("{field}.target"), format!("no [[targets]] is named `{}`", mb.target));
            };
            if all[..j].iter().any(|o| o.target == mb.target) {
                return err(
                    format!("{field}.target"),
                    format!("target `{}` already holds a member or spare: members and spares sit on distinct targets ({what} must not fail with another)", mb.target),
                );
            }
            let k = mb.nsid as usize;
            let Some(ns) = (k >= 1).then(|| t.namespaces.get(k - 1)).flatten() else {
                return err(format!("{field}.nsid"), format!("target `{}` has namespaces 1..={}", t.name, t.namespaces.len()));
            };
            let bytes = parse_size(&ns.size).unwrap_or(0);
            match geometry {
                Some(g) if g != (bytes, ns.block_size) => {
                    return err(field, format!("{bytes} bytes of {} B blocks; member 0 has {} bytes of {} B blocks (members are alike)", ns.block_size, g.0, g.1));
                }
                _ => geometry = Some((bytes, ns.block_size)),
            }
            let traddr = t.ip.parse().map_err(|_| ConfigError::field(f, format!("{field}.target"), "target has a bad ip".to_string()))?;
            members.push((traddr, t.port, t.nqn.clone(), mb.nsid));
        }
        let spares = members.split_off(n);
        let scrub_at_us = match &ec.scrub_at {
            None => 0,
            Some(t) => {
                let ns = parse_time_ns(t).map_err(|m| ConfigError::field(f, at("scrub_at"), m))?;
                match u32::try_from(ns / 1000) {
                    Ok(us) if us > 0 => us,
                    _ => return err(at("scrub_at"), format!("`{t}`: between 1 us and {} s of card time", u32::MAX / 1_000_000)),
                }
            }
        };
        let scrub_every_ms = match &ec.scrub_every {
            None => 0,
            Some(t) => {
                let ns = parse_time_ns(t).map_err(|m| ConfigError::field(f, at("scrub_every"), m))?;
                match u32::try_from(ns / 1_000_000) {
                    Ok(ms) if ms > 0 => ms,
                    _ => return err(at("scrub_every"), format!("`{t}`: at least 1 ms")),
                }
            }
        };
        let (member_bytes, block_size) = geometry.unwrap_or((0, 512));
        // The volume's blocks are the members' (a fragment is whole blocks of each).
        let asked = self.storage.get(i).map_or(block_size, |s| s.block_size);
        if asked != block_size {
            return err(format!("storage[{i}].block_size"), format!("{asked}; the members have {block_size} B blocks (the volume's are the same)"));
        }
        // The 4 KiB after the last stripe holds the member's superblock
        // (`dpu_bdev::ec_super`).
        let stripes = (member_bytes / EC_CHUNK).saturating_sub(EC_SUPERBLOCK_CHUNKS);
        if stripes == 0 {
            return err(at("members"), format!("members of {member_bytes} bytes hold no {EC_CHUNK}-byte fragment next to their {EC_CHUNK}-byte superblock"));
        }
        let bytes = stripes * EC_CHUNK * u64::from(ec.k);
        if given.is_some_and(|g| g != bytes) {
            return err(format!("storage[{i}].size"), format!("the volume holds {bytes} bytes ({stripes} stripes of k x 4 KiB; each member keeps 4 KiB for its superblock); leave size out or give that"));
        }
        Ok((bytes, block_size, Backend::Ec { k: ec.k as u8, m: ec.m as u8, members, spares, scrub_at_us, scrub_every_ms }))
    }

    /// Every namespace of every function, with its backend.
    pub fn namespace_cfgs(&self) -> Vec<NamespaceCfg> {
        self.resolve_namespaces().unwrap_or_default()
    }

    /// Namespaces as (function, nsid, bytes, block size).
    pub fn namespaces(&self) -> Vec<(u16, u32, u64, u32)> {
        self.namespace_cfgs().iter().map(|n| (n.function, n.nsid, n.bytes, n.block_size)).collect()
    }

    /// The DPU port addresses as (address, prefix).
    pub fn port_addrs(&self) -> Vec<(std::net::Ipv4Addr, u8)> {
        self.network.ports.iter().filter_map(|p| parse_cidr(p).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        let mut s: Scenario = crate::parse_toml(Path::new("t.toml"), text)?;
        s.source = "t.toml".into();
        s.validate()?;
        Ok(s)
    }

    /// `[host] sriov_cycle`: its times parse, enable comes after disable,
    /// and no job may run on a VF that the cycle removes; each error
    /// names the field.
    #[test]
    fn sriov_cycle_is_checked() {
        let pf_job = BASE.replacen("functions = [1]\nrw", "functions = [0]\nrw", 1).replacen("functions = [1, 2]", "functions = [0, 1, 2]", 1);
        assert_ne!(pf_job, BASE, "BASE has a job on function 1");
        let with = |base: &str, c: &str| base.replacen("vfs = 2\n", &format!("vfs = 2\nsriov_cycle = {c}\n"), 1);
        let ok = parse(&with(&pf_job, "{ disable_at = \"1ms\", enable_at = \"2ms\", vfs = 3 }")).unwrap();
        let c = ok.host.sriov_cycle.unwrap();
        assert_eq!((c.disable_at.as_str(), c.enable_at.as_str(), c.vfs), ("1ms", "2ms", 3));
        for (base, c, field) in [
            (&pf_job, "{ disable_at = \"2ms\", enable_at = \"1ms\", vfs = 3 }", "host.sriov_cycle.enable_at"),
            (&pf_job, "{ disable_at = \"soon\", enable_at = \"1ms\", vfs = 3 }", "host.sriov_cycle.disable_at"),
            (&pf_job, "{ disable_at = \"1ms\", enable_at = \"2ms\", vfs = 65 }", "host.sriov_cycle.vfs"),
            (&BASE.to_string(), "{ disable_at = \"1ms\", enable_at = \"2ms\", vfs = 3 }", "host.sriov_cycle"),
        ] {
            let e = parse(&with(base, c)).map(|_| ()).expect_err(c).to_string();
            assert!(e.contains(field), "{c}: {e}");
        }
    }

    const BASE: &str = r#"
[scenario]
name = "t"
[host]
vfs = 2
[[storage]]
functions = [1, 2]
backend = "ram"
size = "1MiB"
[[jobs]]
name = "j"
functions = [1]
rw = "randrw"
bs = "4k"
iodepth = 8
runtime = "1ms"
verify = true
"#;

    #[test]
    fn management_and_rpc_entries_are_checked() {
        let m = format!("{BASE}\n[management]\nallow = [\"10.0.0.0/24\"]\ntoken = \"t0k\"\n[[rpc]]\nat = \"1ms\"\nmethod = \"bdev_get_bdevs\"\nparams = {{ name = \"fn1n1\" }}\nexpect_result = [{{ name = \"fn1n1\" }}]\n");
        let s = parse(&m).unwrap();
        let r = s.management().unwrap();
        assert_eq!((r.port, r.tcp_port, r.request_timeout_ms, r.token.as_deref()), (0, 5260, 5000, Some("t0k")));
        assert_eq!(r.operator, "10.0.0.250".parse::<std::net::Ipv4Addr>().unwrap());
        for (from, to, field) in [
            ("allow = [", "port = \"eth7\"\nallow = [", "management.port"),
            ("token = \"t0k\"", "token = \"has space\"", "management.token"),
            ("allow = [\"10.0.0.0/24\"]", "allow = [\"10.0.0.0\"]", "management.allow[0]"),
            ("allow = [", "request_timeout = \"1us\"\nallow = [", "management.request_timeout"),
            ("allow = [", "operator = \"10.9.9.9\"\nallow = [", "management.operator"),
            ("method = \"bdev_get_bdevs\"", "method = \"bdev_get_bdevs\"\nraw = \"{}\"", "rpc[0].method"),
            ("expect_result = [{ name = \"fn1n1\" }]", "", "rpc[0].expect_result"),
            ("at = \"1ms\"", "at = \"1ms\"\nfrom = \"10.0.5.5\"", "rpc[0].from"),
            ("at = \"1ms\"", "at = \"soon\"", "rpc[0].at"),
        ] {
            let bad = m.replacen(from, to, 1);
            assert_ne!(bad, m, "{from}");
            let e = parse(&bad).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        // [[rpc]] without [management].
        let e = parse(&format!("{BASE}\n[[rpc]]\nat = \"1ms\"\nmethod = \"m\"\nexpect_error = -32601\n")).unwrap_err().to_string();
        assert!(e.contains("need a [management] section"), "{e}");
    }

    #[test]
    fn valid_scenario_parses() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.namespaces(), vec![(1, 1, 1 << 20, 512), (2, 1, 1 << 20, 512)]);
    }

    #[test]
    fn encryption_keys_are_checked() {
        let key = format!("{}{}", "01".repeat(32), "02".repeat(32));
        let enc = BASE.replacen("size = \"1MiB\"", &format!("size = \"1MiB\"\nencryption = \"aes-xts\"\nkey = \"{key}\""), 1);
        let s = parse(&enc).unwrap();
        let ns = s.namespace_cfgs();
        assert_eq!(ns[0].encryption.as_ref().map(|k| k.0[0..2].to_vec()), Some(vec![1, 1]));
        assert_eq!(ns[0].encryption.as_ref().map(|k| k.0[63]), Some(2));
        assert!(!format!("{:?}", ns[0]).contains("1, 1, 1"), "Debug shows no key bytes");
        for (from, to, field, says) in [
            (key.as_str(), "0102", "storage[0].key", "128 hex digits"),
            (key.as_str(), &*format!("{}zz", &key[..126]), "storage[0].key", "not a hex digit"),
            (key.as_str(), &*"ab".repeat(64), "storage[0].key", "distinct"),
            ("aes-xts", "rot13", "storage[0].encryption", "not an encryption"),
            ("encryption = \"aes-xts\"\n", "", "storage[0].key", "needs `encryption"),
        ] {
            let e = parse(&enc.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(says), "{to}: {e}");
        }
        let nokey = enc.replacen(&format!("\nkey = \"{key}\""), "", 1);
        let e = parse(&nokey).unwrap_err().to_string();
        assert!(e.contains("storage[0].key") && e.contains("needs its 64-byte key"), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("rw = \"randrw\"", "rw = \"random\"", "jobs[0].rw"),
            ("bs = \"4k\"", "bs = \"3000\"", "jobs[0].bs"),
            ("functions = [1]", "functions = [3]", "jobs[0].functions"),
            ("size = \"1MiB\"", "size = \"1000\"", "storage[0].size"),
            ("backend = \"ram\"", "backend = \"tape\"", "storage[0].backend"),
            ("runtime = \"1ms\"", "runtime = \"1 fortnight\"", "jobs[0].runtime"),
            ("runtime = \"1ms\"", "runtime = \"1ms\"\nramp_time = \"soon\"", "jobs[0].ramp_time"),
            ("iodepth = 8", "iodepth = 0", "jobs[0].iodepth"),
        ];
        for (from, to, field) in cases {
            let e = parse(&BASE.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("t.toml"), "{to}: {e}");
        }
    }

    /// A `[[targets]]` entry and a fault block appended to BASE.
    fn with_fault(fault: &str) -> Result<Scenario, ConfigError> {
        let t = "[[targets]]\nname = \"t0\"\nip = \"10.0.0.10\"\nnqn = \"nqn.2026-11.io.dpusim:t0\"\nnamespaces = [{ size = \"1MiB\", block_size = 512 }]\n";
        parse(&format!("{BASE}{t}[[faults]]\n{fault}\n"))
    }

    #[test]
    fn fault_fields_are_checked() {
        let ok = [
            "kind = \"target-stall\"\ntarget = \"t0\"\nat = \"1ms\"\nduration = \"2ms\"",
            "kind = \"target-stall\"\ntarget = \"t0\"\nat = \"1ms\"",
            "kind = \"target-slow\"\ntarget = \"t0\"\nat = \"1ms\"\nduration = \"2ms\"\nlatency = \"500us\"",
            "kind = \"target-slow\"\ntarget = \"t0\"\nat = \"10us\"\nlatency = \"1ms\"",
            "kind = \"target-corrupt\"\ntarget = \"t0\"\nat = \"1ms\"\nnsid = 1\noffset = \"1020KiB\"",
        ];
        for f in ok {
            let s = with_fault(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(s.faults.len(), 1);
        }
        assert_eq!(with_fault(ok[2]).unwrap().faults[0].latency.as_deref(), Some("500us"));
        let bad = [
            ("kind = \"target-slow\"\ntarget = \"t0\"\nat = \"1ms\"", "faults[0].latency"),
            ("kind = \"target-slow\"\ntarget = \"t0\"\nat = \"1ms\"\nlatency = \"slowly\"", "faults[0].latency"),
            ("kind = \"target-stall\"\ntarget = \"t0\"\nat = \"1ms\"\nlatency = \"1ms\"", "faults[0].latency"),
            ("kind = \"target-stall\"\ntarget = \"t9\"\nat = \"1ms\"", "faults[0].target"),
            ("kind = \"target-corrupt\"\ntarget = \"t0\"\nat = \"1ms\"", "faults[0].offset"),
            ("kind = \"target-corrupt\"\ntarget = \"t0\"\nat = \"1ms\"\noffset = \"1GiB\"", "faults[0].offset"),
            ("kind = \"target-corrupt\"\ntarget = \"t0\"\nat = \"1ms\"\nnsid = 9\noffset = \"0\"", "faults[0].nsid"),
            ("kind = \"target-stall\"\ntarget = \"t0\"\nat = \"1ms\"\noffset = \"0\"", "faults[0].offset"),
            ("kind = \"target-stall\"\nat = \"1ms\"", "faults[0].target"),
            ("kind = \"target-stall\"\ntarget = \"t0\"\nat = \"1ms\"\nduration = \"ages\"", "faults[0].duration"),
            ("kind = \"target-restart\"\ntarget = \"t0\"\nat = \"1ms\"", "faults[0].duration"),
            ("kind = \"target-nap\"\ntarget = \"t0\"\nat = \"1ms\"", "faults[0].kind"),
        ];
        for (f, field) in bad {
            let e = with_fault(f).unwrap_err().to_string();
            assert!(e.contains(field), "{f}: {e}");
        }
        assert!(with_fault(bad[bad.len() - 1].0).unwrap_err().to_string().contains("target-stall, target-slow"));
    }

    #[test]
    fn tcp_min_rto_is_checked() {
        assert_eq!(parse(BASE).unwrap().network.tcp_min_rto_ms(), 5, "default");
        let with = |v: &str| parse(&format!("{BASE}[network]\ntcp_min_rto = \"{v}\"\n"));
        assert_eq!(with("200ms").unwrap().network.tcp_min_rto_ms(), 200);
        for bad in ["0ms", "1500us", "2min", "soon"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("network.tcp_min_rto"), "{bad}: {e}");
        }
    }

    /// `replacen(from, to)` applied to `base` must fail naming `field`.
    fn refused(base: &str, from: &str, to: &str, field: &str) -> String {
        assert!(base.contains(from), "{from}");
        let e = parse(&base.replacen(from, to, 1)).map(|_| ()).expect_err(to).to_string();
        assert!(e.contains(&format!("field `{field}`")) && e.contains("t.toml"), "{to}: {e}");
        e
    }

    const NET: &str = r#"
[scenario]
name = "t"
[host]
vfs = 1
[network]
ports = ["10.0.0.1/24", "10.0.1.1/24"]
[[targets]]
name = "t0"
ip = "10.0.0.10"
nqn = "nqn.2026-11.io.dpusim:t0"
namespaces = [{ size = "1MiB" }]
latency = "10us"
[[storage]]
functions = [1]
backend = "nvmf"
target = "t0"
"#;

    /// Six target models t0..t5 (1 MiB, 512 B blocks; t5's second
    /// namespace has 4 KiB blocks) and an EC 4+2 volume over t0..t5.
    fn ec_scenario() -> String {
        let mut s = String::from("[scenario]\nname = \"t\"\n[host]\nvfs = 1\n[network]\nports = [\"10.0.0.1/24\"]\n");
        for t in 0..6 {
            s += &format!("[[targets]]\nname = \"t{t}\"\nip = \"10.0.0.{}\"\nnqn = \"nqn.2026-11.io.dpusim:t{t}\"\nnamespaces = [{{ size = \"1MiB\" }}, {{ size = \"1MiB\", block_size = 4096 }}]\n", 10 + t);
        }
        // Candidate spares: t6 like the members (one namespace), t7 larger.
        s += "[[targets]]\nname = \"t6\"\nip = \"10.0.0.16\"\nnqn = \"nqn.2026-11.io.dpusim:t6\"\nnamespaces = [{ size = \"1MiB\" }]\n";
        s += "[[targets]]\nname = \"t7\"\nip = \"10.0.0.17\"\nnqn = \"nqn.2026-11.io.dpusim:t7\"\nnamespaces = [{ size = \"2MiB\" }]\n";
        s += "[[storage]]\nfunctions = [1]\nbackend = \"ec\"\n";
        s += "ec = { k = 4, m = 2, members = [{ target = \"t0\" }, { target = \"t1\" }, { target = \"t2\" }, { target = \"t3\" }, { target = \"t4\" }, { target = \"t5\" }] }\n";
        s
    }

    #[test]
    fn ec_volumes_are_checked_field_by_field() {
        let base = ec_scenario();
        let s = parse(&base).unwrap();
        let ns = s.namespace_cfgs();
        assert_eq!((ns.len(), ns[0].bytes, ns[0].block_size), (1, 4 * ((1 << 20) - 4096), 512), "k x the member size less its superblock");
        let Backend::Ec { k, m, members, spares, scrub_at_us, scrub_every_ms } = &ns[0].backend else { panic!("{:?}", ns[0].backend) };
        assert_eq!((*k, *m, members.len(), spares.len(), *scrub_at_us, *scrub_every_ms), (4, 2, 6, 0, 0, 0));
        assert_eq!(members[5], ("10.0.0.15".parse().unwrap(), 4420, "nqn.2026-11.io.dpusim:t5".to_string(), 1));
        assert_eq!(ns[0].backend.remotes().len(), 6);
        // A spare on a seventh target and a scrub time.
        let spared = base.replacen("t5\" }]", "t5\" }], spares = [{ target = \"t6\" }], scrub_at = \"20ms\"", 1);
        let ns = parse(&spared).unwrap().namespace_cfgs();
        let Backend::Ec { members, spares, scrub_at_us, .. } = &ns[0].backend else { panic!("{:?}", ns[0].backend) };
        assert_eq!((members.len(), *scrub_at_us), (6, 20_000));
        assert_eq!(spares[..], [("10.0.0.16".parse().unwrap(), 4420, "nqn.2026-11.io.dpusim:t6".to_string(), 1)]);
        assert_eq!(ns[0].backend.remotes().len(), 7, "the card connects to the spare too");
        let members = "members = [{ target = \"t0\" }, { target = \"t1\" }, { target = \"t2\" }, { target = \"t3\" }, { target = \"t4\" }, { target = \"t5\" }]";
        for (from, to, field, why) in [
            ("k = 4", "k = 0", "storage[0].ec.k", "1..=32"),
            ("k = 4, m = 2", "k = 33, m = 2", "storage[0].ec.k", "1..=32"),
            ("m = 2", "m = 5", "storage[0].ec.m", "1..=4"),
            ("m = 2", "m = 0", "storage[0].ec.m", "1..=4"),
            ("m = 2", "m = 3", "storage[0].ec.members", "6 members for k + m = 7"),
            ("{ target = \"t3\" }", "{ target = \"t9\" }", "storage[0].ec.members[3].target", "no [[targets]] is named `t9`"),
            ("{ target = \"t3\" }", "{ target = \"t0\" }", "storage[0].ec.members[3].target", "distinct targets"),
            ("{ target = \"t3\" }", "{ target = \"t3\", nsid = 3 }", "storage[0].ec.members[3].nsid", "namespaces 1..=2"),
            ("{ target = \"t5\" }", "{ target = \"t5\", nsid = 2 }", "storage[0].ec.members[5]", "members are alike"),
            ("{ target = \"t5\" }", "{ target = \"t5\", lun = 2 }", "unknown field `lun`", "expected `target` or `nsid`"),
            (members, "members = [{ target = \"t0\" }, { target = \"t1\" }, { target = \"t2\" }, { target = \"t3\" }, { target = \"t4\" }], spares = [{ target = \"t5\" }]", "storage[0].ec.members", "5 members for k + m = 6"),
            ("t5\" }]", "t5\" }], spares = [{ target = \"t9\" }]", "storage[0].ec.spares[0].target", "no [[targets]] is named `t9`"),
            ("t5\" }]", "t5\" }], spares = [{ target = \"t2\", nsid = 2 }]", "storage[0].ec.spares[0].target", "distinct targets"),
            ("t5\" }]", "t5\" }], spares = [{ target = \"t6\", nsid = 2 }]", "storage[0].ec.spares[0].nsid", "namespaces 1..=1"),
            ("t5\" }]", "t5\" }], spares = [{ target = \"t6\" }, { target = \"t6\" }]", "storage[0].ec.spares[1].target", "distinct targets"),
            ("t5\" }]", "t5\" }], spares = [{ target = \"t7\" }]", "storage[0].ec.spares[0]", "members are alike"),
            ("t5\" }]", "t5\" }], scrub_at = \"soon\"", "storage[0].ec.scrub_at", "soon"),
            ("t5\" }]", "t5\" }], scrub_at = \"0ms\"", "storage[0].ec.scrub_at", "positive"),
            ("t5\" }]", "t5\" }], scrub_every = \"500us\"", "storage[0].ec.scrub_every", "1 ms"),
            ("t5\" }]", "t5\" }], scrub_every = \"often\"", "storage[0].ec.scrub_every", "often"),
            ("backend = \"ec\"\n", "backend = \"ec\"\nsize = \"1MiB\"\n", "storage[0].size", "holds 4177920 bytes"),
            ("backend = \"ec\"\n", "backend = \"ec\"\ntarget = \"t0\"\n", "storage[0].backend", "ec.members"),
            ("backend = \"ec\"\n", "backend = \"ec\"\nblock_size = 4096\n", "storage[0].block_size", "the members have 512 B blocks"),
            (members, "members = []", "storage[0].ec.members", "0 members"),
        ] {
            let e = parse(&base.replacen(from, to, 1)).map(|_| ()).expect_err(to).to_string();
            assert!(e.contains(field) && e.contains(why), "{to}: {e}");
        }
        // `ec` without backend = "ec", and backend = "ec" without `ec`.
        let e = refused(&base, "backend = \"ec\"", "backend = \"ram\"\nsize = \"1MiB\"", "storage[0].ec");
        assert!(e.contains("only a namespace with `backend = \"ec\"`"), "{e}");
        let no_ec: String = base.lines().filter(|l| !l.starts_with("ec = ")).map(|l| format!("{l}\n")).collect();
        let e = parse(&no_ec).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `storage[0].ec`") && e.contains("needs `ec = { k, m, members }`"), "{e}");
    }

    #[test]
    fn times_are_exact_positive_and_bounded() {
        assert_eq!(parse_time_ns("5µs").unwrap(), 5_000);
        assert_eq!(parse_time_ns("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_time_ns("0.5us").unwrap(), 500);
        assert_eq!(parse_time_ns("3600s").unwrap(), MAX_TIME_NS);
        for (bad, why) in [
            ("99999999999s", "one hour"),
            ("3600.000000001s", "one hour"),
            ("123456789012345678901234567890123456789ms", "one hour"),
            ("0.4ns", "whole number of nanoseconds"),
            ("0s", "positive"),
            ("0.0us", "positive"),
            ("abc", "`abc` is not a time like 10us"),
            ("-1ms", "not a time like"),
            ("1.2.3ms", "not a time like"),
            ("10", "no unit"),
            ("2min", "unknown time unit `min`"),
        ] {
            let e = parse_time_ns(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn huge_times_are_refused_by_field() {
        let e = refused(BASE, "runtime = \"1ms\"", "runtime = \"99999999999s\"", "jobs[0].runtime");
        assert!(e.contains("one hour"), "{e}");
        refused(BASE, "runtime = \"1ms\"", "runtime = \"1ms\"\nramp_time = \"0.4ns\"", "jobs[0].ramp_time");
        refused(BASE, "vfs = 2", "vfs = 2\nio_timeout_ms = 18446744073709551", "host.io_timeout_ms");
        refused(BASE, "vfs = 2", "vfs = 2\nsubmit_ns = 9223372036854775807", "host.submit_ns");
        refused(NET, "latency = \"10us\"", "latency = \"99999999999s\"", "targets[0].latency");
        refused(NET, "[network]", "[network]\nlink_latency_ns = 9223372036854775807", "network.link_latency_ns");
        let fault = |at: &str, dur: &str| format!("{NET}[[faults]]\nkind = \"link-down\"\nport = 0\nat = \"{at}\"\nduration = \"{dur}\"\n");
        assert!(parse(&fault("1ms", "2ms")).is_ok());
        refused(&fault("1ms", "2ms"), "at = \"1ms\"", "at = \"99999999999s\"", "faults[0].at");
        refused(&fault("1ms", "2ms"), "duration = \"2ms\"", "duration = \"99999999999s\"", "faults[0].duration");
    }

    #[test]
    fn dma_error_needs_an_existing_function_and_a_duration() {
        let f = |extra: &str| format!("{BASE}[[faults]]\nkind = \"dma-error\"\nat = \"1ms\"\n{extra}");
        assert!(parse(&f("function = 2\nduration = \"100us\"\n")).is_ok());
        for (extra, field) in [("duration = \"100us\"\n", "faults[0].function"), ("function = 2\n", "faults[0].duration"), ("function = 9\nduration = \"100us\"\n", "faults[0].function")] {
            let e = parse(&f(extra)).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(field), "{extra}: {e}");
        }
        let e = parse(&BASE.replacen("verify = true", "verify = false\nverify_at_end = true", 1)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("jobs[0].verify_at_end"), "{e}");
    }

    #[test]
    fn unknown_fault_kind_is_named_before_its_duration() {
        let e = refused(NET, "[[storage]]", "[[faults]]\nkind = \"meteor\"\nat = \"1ms\"\n[[storage]]", "faults[0].kind");
        assert!(e.contains("`meteor` is not a fault kind"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_give_line_and_column() {
        let e = parse("[scenario]\nname = \"t\"\nbogus line\n").map(|_| ()).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:3:7: ") && !e.contains("top level"), "{e}");
        // A field error says where the value is, too.
        let e = parse(&BASE.replacen("iodepth = 8", "iodepth = \"eight\"", 1)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[0].iodepth`") && e.contains("(line 15, column 11)"), "{e}");
    }

    #[test]
    fn arrays_where_tables_belong_are_refused() {
        refused(BASE, "[host]\nvfs = 2", "host = [2, 100]", "host");
        refused(NET, "namespaces = [{ size = \"1MiB\" }]", "namespaces = [[\"1MiB\", 512]]", "targets[0].namespaces[0]");
        let no_storage = BASE.replacen("[[storage]]\nfunctions = [1, 2]\nbackend = \"ram\"\nsize = \"1MiB\"\n", "", 1);
        refused(&no_storage, "[scenario]", "storage = [[[1, 2], 1, \"ram\", \"1MiB\"]]\n[scenario]", "storage[0]");
    }

    #[test]
    fn network_addresses_are_checked() {
        assert!(parse(NET).is_ok());
        let e = refused(NET, "\"10.0.0.1/24\"", "\"10.0.0.255/24\"", "network.ports[0]");
        assert!(e.contains("broadcast"), "{e}");
        let e = refused(NET, "\"10.0.0.1/24\"", "\"10.0.0.0/24\"", "network.ports[0]");
        assert!(e.contains("network address"), "{e}");
        let e = refused(NET, "\"10.0.1.1/24\"", "\"10.0.0.2/16\"", "network.ports[1]");
        assert!(e.contains("overlaps network.ports[0]"), "{e}");
        refused(NET, "\"10.0.1.1/24\"", "\"10.0.0.2/24\"", "network.ports[1]");
        let e = refused(NET, "ip = \"10.0.0.10\"", "ip = \"10.0.0.255\"", "targets[0].ip");
        assert!(e.contains("broadcast"), "{e}");
        refused(NET, "ip = \"10.0.0.10\"", "ip = \"10.0.0.0\"", "targets[0].ip");
        refused(NET, "ip = \"10.0.0.10\"", "ip = \"10.0.0.1\"", "targets[0].ip");
        refused(NET, "ip = \"10.0.0.10\"", "ip = \"10.9.0.10\"", "targets[0].ip");
        refused(NET, "latency = \"10us\"", "latency = \"10us\"\nport = 0", "targets[0].port");
        let remote = NET.replacen("target = \"t0\"", "traddr = \"10.0.1.20\"\nsubnqn = \"nqn.x:r\"\nsize = \"1MiB\"", 1);
        assert!(parse(&remote).is_ok());
        let e = refused(&remote, "traddr = \"10.0.1.20\"", "traddr = \"10.9.9.9\"", "storage[0].traddr");
        assert!(e.contains("outside the subnet of every DPU port"), "{e}");
        refused(&remote, "traddr = \"10.0.1.20\"", "traddr = \"10.0.1.255\"", "storage[0].traddr");
        refused(&remote, "traddr = \"10.0.1.20\"", "traddr = \"10.0.1.20\"\ntrsvcid = 0", "storage[0].trsvcid");
        refused(NET, "nqn = \"nqn.2026-11.io.dpusim:t0\"", "nqn = \"nqn.with space\"", "targets[0].nqn");
    }

    #[test]
    fn what_the_firmware_cannot_serve_is_refused() {
        let e = refused(BASE, "backend = \"ram\"", "backend = \"ram\"\nnsid = 1024", "storage[0].nsid");
        assert!(e.contains(&format!("1..={MAX_NSID}")), "{e}");
        // 2 functions x (MAX_NAMESPACES / 2 + 1) namespaces.
        let mut many = BASE.to_string();
        for nsid in 2..=(MAX_NAMESPACES / 2 + 1).min(MAX_NSID as usize) {
            many.push_str(&format!("[[storage]]\nfunctions = [1, 2]\nnsid = {nsid}\nbackend = \"ram\"\nsize = \"1MiB\"\n"));
        }
        let many = many.replacen("vfs = 2", "vfs = 16", 1).replacen("functions = [1, 2]\nbackend", "functions = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\nbackend", 1);
        let many = many.replace("functions = [1, 2]\nnsid", "functions = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\nnsid");
        let e = parse(&many).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `storage`") && e.contains(&format!("at most {MAX_NAMESPACES}")), "{e}");
        // RAM beyond the chip's DDR pool: 8 x 4 GiB.
        let chip = Chip::load(crate::default_chip_path()).unwrap();
        let board = Board::load(crate::default_board_path()).unwrap();
        let big = parse(&BASE.replacen("vfs = 2", "vfs = 8", 1).replacen("functions = [1, 2]", "functions = [1, 2, 3, 4, 5, 6, 7, 8]", 1).replacen("size = \"1MiB\"", "size = \"4GiB\"", 1)).unwrap();
        let e = big.check_platform(&chip, &board).unwrap_err().to_string();
        assert!(e.contains("field `storage[0].size`") && e.contains("firmware.ddr_heap_size"), "{e}");
        let (_, pool) = chip.ram_namespace_pool();
        let fits = parse(&BASE.replacen("functions = [1, 2]", "functions = [1]", 1).replacen("size = \"1MiB\"", &format!("size = \"{}\"", pool), 1)).unwrap();
        fits.check_platform(&chip, &board).unwrap();
        let e = parse(&BASE.replacen("vfs = 2", "vfs = 2\nio_queues = 1", 1)).map(|s| s.check_platform(&chip, &board));
        assert!(matches!(e, Ok(Ok(()))));
    }

    #[test]
    fn local_ssd_namespaces_and_faults_are_checked() {
        let local = BASE.replacen("backend = \"ram\"", "backend = \"local\"\nssd = 2", 1);
        let s = parse(&local).unwrap();
        assert_eq!(s.namespace_cfgs()[0].backend, Backend::Local { ssd: 2, nsid: 1 });
        let chip = Chip::load(crate::default_chip_path()).unwrap();
        let board = Board::load(crate::default_board_path()).unwrap();
        s.check_platform(&chip, &board).unwrap();
        // Syntax: the SSD is named, only by a local namespace; one namespace.
        refused(&local, "ssd = 2\n", "", "storage[0].ssd");
        refused(BASE, "backend = \"ram\"", "backend = \"ram\"\nssd = 1", "storage[0].ssd");
        refused(&local, "ssd = 2", "ssd = 2\nremote_nsid = 2", "storage[0].remote_nsid");
        refused(&local, "ssd = 2", "ssd = 2\ntarget = \"t0\"", "storage[0].backend");
        // Against the board: fitted slot, block size, capacity, one entry per SSD.
        let platform = |text: &str| parse(text).unwrap().check_platform(&chip, &board).unwrap_err().to_string();
        let e = platform(&local.replacen("ssd = 2", "ssd = 4", 1));
        assert!(e.contains("field `storage[0].ssd`") && e.contains("fits 4"), "{e}");
        let e = platform(&local.replacen("ssd = 2", "ssd = 2\nblock_size = 4096", 1));
        assert!(e.contains("field `storage[0].block_size`"), "{e}");
        let e = platform(&local.replacen("size = \"1MiB\"", "size = \"2GiB\"", 1));
        assert!(e.contains("field `storage[0].size`") && e.contains("capacity"), "{e}");
        let twice = format!("{local}[[storage]]\nfunctions = [1]\nnsid = 2\nbackend = \"local\"\nssd = 2\nsize = \"1MiB\"\n");
        assert!(platform(&twice).contains("already backs"), "{twice}");
        // Faults: ssd-fail / ssd-slow name their SSD; only they take one.
        let fault = |body: &str| format!("{local}[[faults]]\nat = \"1ms\"\n{body}");
        assert!(parse(&fault("kind = \"ssd-fail\"\nssd = 1\n")).is_ok());
        assert!(parse(&fault("kind = \"ssd-slow\"\nssd = 1\nlatency = \"1ms\"\n")).is_ok());
        refused(&fault("kind = \"ssd-fail\"\nssd = 1\n"), "ssd = 1\n", "", "faults[0].ssd");
        refused(&fault("kind = \"ssd-slow\"\nssd = 1\nlatency = \"1ms\"\n"), "latency = \"1ms\"\n", "", "faults[0].latency");
        refused(&fault("kind = \"dma-error\"\nfunction = 1\nduration = \"1ms\"\n"), "function = 1", "function = 1\nssd = 0", "faults[0].ssd");
        let e = platform(&fault("kind = \"ssd-fail\"\nssd = 9\n"));
        assert!(e.contains("field `faults[0].ssd`"), "{e}");
    }

    #[test]
    fn initiator_faults_name_an_initiator_able_to_take_them() {
        let base = include_str!("../scenarios/target-bad-input.toml");
        let s = parse(base).unwrap();
        assert_eq!(s.faults.iter().filter(|f| f.initiator.as_deref() == Some("h1")).count(), 4);
        refused(base, "initiator = \"h1\"\nat = \"500us\"", "at = \"500us\"", "faults[0].initiator");
        let e = refused(base, "initiator = \"h1\"\nat = \"500us\"", "initiator = \"h9\"\nat = \"500us\"", "faults[0].initiator");
        assert!(e.contains("h9"), "{e}");
        refused(base, "kind = \"initiator-bad-pdu\"\ninitiator", "kind = \"link-down\"\nport = 0\nduration = \"1ms\"\ninitiator", "faults[0].initiator");
        refused(base, "ddgst = true\n", "", "faults[1].initiator");
        refused(base, "at = \"2ms\"\nduration = \"1500us\"", "at = \"2ms\"", "faults[3].duration");
        refused(base, "kato = \"1ms\"", "kato = \"off\"", "faults[3].initiator");
    }

    #[test]
    fn a_verified_job_has_its_blocks_to_itself() {
        let second = |extra: &str| format!("{BASE}[[jobs]]\nname = \"w\"\nfunctions = [1]\nrw = \"randwrite\"\nbs = \"4k\"\niodepth = 2\nruntime = \"1ms\"\n{extra}");
        let e = parse(&second("")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[1].nsid`") && e.contains("job `w` writes RAM namespace 1 of function 1") && e.contains("job `j` verifies"), "{e}");
        // Its own namespace, another function's RAM, or a reader: fine.
        let own = format!("{}[[storage]]\nfunctions = [1]\nnsid = 2\nbackend = \"ram\"\nsize = \"1MiB\"\n", second("nsid = 2\n"));
        assert!(parse(&own).is_ok());
        assert!(parse(&second("").replacen("functions = [1]\nrw = \"randwrite\"", "functions = [2]\nrw = \"randwrite\"", 1)).is_ok());
        assert!(parse(&second("").replacen("rw = \"randwrite\"", "rw = \"randread\"", 1)).is_ok());
        // Two functions on one remote namespace, one job verifying through both.
        let shared = NET.replacen("vfs = 1", "vfs = 2", 1).replacen("functions = [1]", "functions = [1, 2]", 1)
            + "[[jobs]]\nname = \"v\"\nfunctions = [1, 2]\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 2\nruntime = \"1ms\"\nverify = true\n";
        let e = parse(&shared).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[0].nsid`") && e.contains("through functions 1 and 2"), "{e}");
    }

    #[test]
    fn a_job_on_a_namespace_attached_at_run_time() {
        let live = |extra: &str| format!("{BASE}[[jobs]]\nname = \"l\"\nfunctions = [1]\nnsid = 2\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 2\nruntime = \"1ms\"\n{extra}");
        assert!(parse(&live("startdelay = \"2ms\"\nattached = { size = \"1MiB\" }\n")).is_ok());
        let e = parse(&live("")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[1].functions`") && e.contains("no namespace 2 in [[storage]]"), "{e}");
        let e = parse(&live("attached = { size = \"1MiB\" }\n")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[1].attached`") && e.contains("needs a startdelay"), "{e}");
        let e = parse(&live("startdelay = \"2ms\"\nattached = { size = \"1MiB\", block_size = 1000 }\n")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[1].attached.block_size`"), "{e}");
        let e = parse(&live("startdelay = \"2ms\"\nattached = { size = \"1MiB\" }\n").replacen("nsid = 2", "nsid = 1", 1)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("field `jobs[1].attached`") && e.contains("in [[storage]] already"), "{e}");
    }

    #[test]
    fn jobs_on_separate_regions_share_a_namespace() {
        let two = |a: &str, b: &str| {
            format!("{}offset = {a}\n[[jobs]]\nname = \"w\"\nfunctions = [1]\nrw = \"randwrite\"\nbs = \"4k\"\niodepth = 2\nruntime = \"1ms\"\n{b}", BASE.replacen("verify = true", "verify = true\nregion = \"512KiB\"", 1))
        };
        // [0, 512K) verified, [512K, 1M) written: fine; overlapping: refused.
        assert!(parse(&two("\"0\"", "offset = \"512KiB\"\n")).is_ok());
        let e = parse(&two("\"0\"", "offset = \"508KiB\"\n")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("separate regions"), "{e}");
        let bad = [
            ("\"1000\"", "", "jobs[0].offset", "not a multiple of bs"),
            ("\"1MiB\"", "", "jobs[0].offset", "not inside"),
            ("\"768KiB\"", "", "jobs[0].region", "past the end"),
            ("\"soon\"", "", "jobs[0].offset", ""),
        ];
        for (a, b, field, why) in bad {
            let e = parse(&two(a, b)).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(why), "{a}: {e}");
        }
    }

    #[test]
    fn shipped_scenarios_load() {
        let chip = Chip::load(crate::default_chip_path()).unwrap();
        let board = Board::load(crate::default_board_path()).unwrap();
        let dir = crate::targets_dir().join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
                s.check_platform(&chip, &board).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 7, "{n} scenarios in {}", dir.display());
    }

    #[test]
    fn io_timeout_is_checked() {
        assert_eq!(parse(BASE).unwrap().network.io_timeout_us(), 20_000, "default");
        let rto = parse(&format!("{BASE}[network]\ntcp_min_rto = \"200ms\"\n")).unwrap();
        assert_eq!(rto.network.io_timeout_us(), 800_000, "default: four minimum RTOs");
        let with = |v: &str| parse(&format!("{BASE}[network]\nio_timeout = \"{v}\"\n"));
        assert_eq!(with("250ms").unwrap().network.io_timeout_us(), 250_000);
        // 9 ms is below twice the default 5 ms minimum RTO.
        for bad in ["0ms", "500us", "9ms", "2min", "soon"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("network.io_timeout"), "{bad}: {e}");
        }
    }

    #[test]
    fn nqns_with_spaces_or_control_characters_are_rejected() {
        // Found by the scenario fuzz target: the firmware's boot
        // configuration parser refused such an NQN, so a scenario that
        // validated booted a card without its remote controllers.
        for bad in ["nqn.2026-11.io.x:a b", "nqn.2026-11.io.x:\\ttab", "nqn.2026-11.io.x:\\u007f"] {
            let e = Scenario::parse("t.toml", &format!("{BASE}[network]\nhost_nqn = \"{bad}\"\n")).unwrap_err().to_string();
            assert!(e.contains("network.host_nqn") && e.contains("t.toml"), "{bad}: {e}");
        }
        assert!(Scenario::parse("t.toml", &format!("{BASE}[network]\nhost_nqn = \"nqn.2026-11.io.x:a-b_c\"\n")).is_ok());
    }

    #[test]
    fn what_the_firmware_would_refuse_is_rejected() {
        // Found with the scenario fuzz target (its invariant: a valid
        // scenario's boot configuration parses in the firmware); each of
        // these validated, then the card booted serving nothing.
        let remote = |extra: &str| format!("{BASE}[[storage]]\nfunctions = [1]\nnsid = 2\nbackend = \"nvmf\"\ntraddr = \"10.0.0.10\"\nsubnqn = \"nqn.2026-11.io.x:r\"\nsize = \"1MiB\"\n{extra}");
        let cases = [
            (BASE.replacen("functions = [1, 2]", "functions = [1, 2]\nnsid = 33", 1), "storage[0].nsid"),
            (format!("{BASE}[network]\nports = [\"0.0.0.0/24\"]\n"), "network.ports[0]"),
            (remote("trsvcid = 0\n"), "storage[1].trsvcid"),
            (remote("remote_nsid = 4294967295\n"), "storage[1].remote_nsid"),
            (remote("").replace("10.0.0.10", "0.0.0.0"), "storage[1].traddr"),
            (format!("{BASE}[[targets]]\nname = \"t\"\nip = \"10.0.0.10\"\nport = 0\nnqn = \"nqn.2026-11.io.x:t\"\nnamespaces = [{{ size = \"1MiB\" }}]\n"), "targets[0].port"),
        ];
        for (text, field) in cases {
            let e = Scenario::parse("t.toml", &text).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        let mut many = BASE.replacen("vfs = 2", "vfs = 64", 1);
        for nsid in 2..=5 {
            many.push_str(&format!("[[storage]]\nfunctions = [{}]\nnsid = {nsid}\nbackend = \"ram\"\nsize = \"64KiB\"\n", (0..=64).map(|f| f.to_string()).collect::<Vec<_>>().join(", ")));
        }
        let e = Scenario::parse("t.toml", &many).unwrap_err().to_string();
        assert!(e.contains("storage") && e.contains("at most 256"), "{e}");
        assert!(Scenario::parse("t.toml", &remote("")).is_ok(), "the remote namespace itself is fine");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert!(parse_size("4x").is_err());
        assert_eq!(parse_time_ns("2ms").unwrap(), 2_000_000);
        assert!(parse_time_ns("-1ms").is_err());
    }
}
