//! Scenario files (`targets/scenarios/*.toml`): what the simulated host
//! does (PCIe setup, NVMe driver options, fio-like jobs), what storage the
//! firmware is configured with, and what outcome is expected.

use crate::{load_toml, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    /// Backing block device: "ram" (DPU DDR) or "nvmf" (a remote
    /// namespace over NVMe/TCP).
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
    /// nvmf: namespace ID on the remote subsystem.
    #[serde(default = "d_nsid")]
    pub remote_nsid: u32,
}

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
}

/// A timed fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCfg {
    /// "target-restart" (target drops every connection and refuses new
    /// ones for `duration`), "target-garbage" (target sends a malformed PDU
    /// on each of its I/O connections), "target-blackhole" (for
    /// `duration` the target keeps its connections up but answers
    /// nothing, and loses the commands it held or receives) or
    /// "link-down" (DPU port `port` loses link for `duration`).
    pub kind: String,
    /// Time after the workload starts, e.g. "1ms".
    pub at: String,
    /// How long (target-restart, link-down).
    pub duration: Option<String>,
    pub target: Option<String>,
    pub port: Option<u32>,
}

/// Where a namespace's blocks live (resolved from `[[storage]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Ram,
    /// A remote namespace: target address, port, subsystem NQN, remote nsid.
    Nvmf { traddr: std::net::Ipv4Addr, trsvcid: u16, subnqn: String, nsid: u32 },
}

/// One namespace of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceCfg {
    pub function: u16,
    pub nsid: u32,
    pub bytes: u64,
    pub block_size: u32,
    pub backend: Backend,
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
    pub functions: Vec<u16>,
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
    /// Bytes per job, e.g. "16MiB".
    pub size: Option<String>,
    #[serde(default)]
    pub verify: bool,
    #[serde(default)]
    pub scattered: bool,
    #[serde(default)]
    pub buf_offset: u32,
    #[serde(default)]
    pub seed: u64,
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

/// Parses "250us", "2ms", "1.5s", "100ns" into nanoseconds.
pub fn parse_time_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).ok_or(format!("`{s}` has no unit (ns, us, ms or s)"))?;
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().map_err(|_| format!("`{num}` is not a number"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        u => return Err(format!("unknown time unit `{u}` (use ns, us, ms or s)")),
    };
    if !(v.is_finite() && v > 0.0) {
        return Err("time must be positive".into());
    }
    Ok((v * scale).round() as u64)
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
        if h.io_queues == 0 || h.io_queues > 64 {
            return err("host.io_queues".into(), format!("{} is out of range 1..=64", h.io_queues));
        }
        if !(2..=4096).contains(&h.io_queue_depth) {
            return err("host.io_queue_depth".into(), format!("{} is out of range 2..=4096", h.io_queue_depth));
        }
        let exists = |fun: u16| fun == 0 || fun <= h.vfs;
        self.validate_network()?;
        let namespaces = self.resolve_namespaces()?;
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
            parse_time_ns(&fl.at).map_err(bad(at("at")))?;
            match &fl.duration {
                Some(d) => {
                    parse_time_ns(d).map_err(bad(at("duration")))?;
                }
                None if fl.kind != "target-garbage" => return err(at("duration"), format!("{} needs a duration", fl.kind)),
                None => {}
            }
            match fl.kind.as_str() {
                "target-restart" | "target-garbage" | "target-blackhole" => {
                    let Some(t) = &fl.target else { return err(at("target"), format!("{} needs a target name", fl.kind)) };
                    if !self.targets.iter().any(|x| &x.name == t) {
                        return err(at("target"), format!("no [[targets]] is named `{t}`"));
                    }
                }
                "link-down" => {
                    let Some(p) = fl.port else { return err(at("port"), "link-down needs a DPU port number".into()) };
                    if p as usize >= self.network.ports.len() {
                        return err(at("port"), format!("port {p} does not exist ({} ports)", self.network.ports.len()));
                    }
                }
                k => return err(at("kind"), format!("`{k}` is not a fault kind (target-restart, target-garbage, target-blackhole, link-down)")),
            }
        }
        for (i, j) in self.jobs.iter().enumerate() {
            let at = |field: &str| format!("jobs[{i}].{field}");
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
            if j.iodepth == 0 || j.iodepth >= u32::from(h.io_queue_depth) * u32::from(h.io_queues) {
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
            if let Some(s) = &j.size {
                parse_size(s).map_err(bad(at("size")))?;
            }
            if j.buf_offset % 4 != 0 || j.buf_offset >= 4096 {
                return err(at("buf_offset"), format!("{} must be dword aligned and below 4096", j.buf_offset));
            }
            for &fun in &j.functions {
                let Some(ns) = namespaces.iter().find(|n| n.function == fun && n.nsid == j.nsid) else {
                    return err(at("functions"), format!("function {fun} has no namespace {} in [[storage]]", j.nsid));
                };
                if bs % u64::from(ns.block_size) != 0 {
                    return err(at("bs"), format!("{bs} is not a multiple of the namespace block size {}", ns.block_size));
                }
            }
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
        let n = &self.network;
        if n.ports.is_empty() || n.ports.len() > 8 {
            return err("network.ports".into(), format!("{} addresses; give one per DPU port (1..=8)", n.ports.len()));
        }
        let mut ports = Vec::new();
        for (i, p) in n.ports.iter().enumerate() {
            let (addr, prefix) = parse_cidr(p).map_err(bad(format!("network.ports[{i}]")))?;
            if addr.is_unspecified() {
                return err(format!("network.ports[{i}]"), format!("{addr} is not a port address"));
            }
            ports.push((addr, prefix));
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
            if ip.is_unspecified() || !ports.iter().any(|&(a, p)| same_subnet(a, ip, p)) || ports.iter().any(|&(a, _)| a == ip) || addrs.contains(&ip) {
                return err(at("ip"), format!("{ip} must be a free address in the subnet of a DPU port ({})", n.ports.join(", ")));
            }
            addrs.push(ip);
            if t.port == 0 {
                return err(at("port"), "0 is not a TCP port".into());
            }
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
                return err(at("nsid"), format!("{} is not a namespace ID the firmware serves (1..={MAX_NSID})", s.nsid));
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
                        let traddr: std::net::Ipv4Addr =
                            addr.parse().map_err(|_| ConfigError::field(f, at("traddr"), format!("`{addr}` is not an IPv4 address")))?;
                        if traddr.is_unspecified() {
                            return err(at("traddr"), format!("{traddr} is not a target address"));
                        }
                        if s.trsvcid == 0 {
                            return err(at("trsvcid"), "0 is not a TCP port".into());
                        }
                        if s.remote_nsid == 0 || s.remote_nsid == u32::MAX {
                            return err(at("remote_nsid"), format!("{} is not a namespace ID", s.remote_nsid));
                        }
                        let Some(subnqn) = &s.subnqn else { return err(at("subnqn"), "a remote target needs its subsystem NQN".into()) };
                        check_nqn(subnqn).map_err(bad(at("subnqn")))?;
                        let Some(bytes) = given else { return err(at("size"), "give the remote namespace's size".into()) };
                        (bytes, s.block_size, Backend::Nvmf { traddr, trsvcid: s.trsvcid, subnqn: subnqn.clone(), nsid: s.remote_nsid })
                    }
                    _ => return err(at("target"), "an nvmf namespace names either a target model (`target`) or a remote (`traddr` + `subnqn`)".into()),
                },
                b => return err(at("backend"), format!("`{b}` is not a known backend (ram, nvmf)")),
            };
            if ![512, 4096].contains(&block_size) {
                return err(at("block_size"), format!("{block_size} must be 512 or 4096"));
            }
            if bytes == 0 || bytes % u64::from(block_size) != 0 {
                return err(at("size"), format!("{bytes} bytes is not a positive multiple of the block size"));
            }
            for &fun in &s.functions {
                if out.iter().any(|n| n.function == fun && n.nsid == s.nsid) {
                    return err(at("nsid"), format!("function {fun} already has namespace {}", s.nsid));
                }
                out.push(NamespaceCfg { function: fun, nsid: s.nsid, bytes, block_size, backend: backend.clone() });
            }
        }
        if out.len() > MAX_NAMESPACES {
            return err("storage".into(), format!("{} namespaces in all; the firmware serves at most {MAX_NAMESPACES}", out.len()));
        }
        let ctrls: std::collections::BTreeSet<(std::net::Ipv4Addr, u16, String)> = out
            .iter()
            .filter_map(|n| match &n.backend {
                Backend::Nvmf { traddr, trsvcid, subnqn, .. } => Some((*traddr, *trsvcid, subnqn.clone())),
                Backend::Ram => None,
            })
            .collect();
        if ctrls.len() > MAX_REMOTE_CONTROLLERS {
            return err("storage".into(), format!("{} remote subsystems; the firmware connects to at most {MAX_REMOTE_CONTROLLERS}", ctrls.len()));
        }
        Ok(out)
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

/// Remote NVMe-oF subsystems the firmware can connect to at once
/// (`dpu_bootcfg::MAX_CTRLS`).
pub const MAX_REMOTE_CONTROLLERS: usize = 16;
/// Highest namespace ID the firmware serves (`dpu_nvme::MAX_NSID`).
pub const MAX_NSID: u32 = 32;
/// Most namespaces (over all functions) the firmware serves
/// (`dpu_bootcfg::MAX_NAMESPACES`).
pub const MAX_NAMESPACES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        let mut s: Scenario = crate::parse_toml(Path::new("t.toml"), text)?;
        s.source = "t.toml".into();
        s.validate()?;
        Ok(s)
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
    fn valid_scenario_parses() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.namespaces(), vec![(1, 1, 1 << 20, 512), (2, 1, 1 << 20, 512)]);
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
