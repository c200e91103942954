//! NVMe/TCP target subsystems (`[[subsystems]]`): namespaces of the card
//! (RAM or a local SSD) served to remote hosts over the DPU's ports,
//! instead of to a PCIe function.
//!
//! ```toml
//! [[subsystems]]
//! nqn = "nqn.2026-12.io.dpusim:ram0"
//! allow_hosts = ["nqn.2014-08.org.nvmexpress:uuid:..."]   # empty = any host
//! trsvcid = 4420                                           # default 4420
//! ports = [0, 1]                                           # default: every port
//! [[subsystems.namespaces]]                                # nsid 1, 2, ... in order
//! backend = "ram"
//! size = "64MiB"
//! block_size = 512
//! [[subsystems.namespaces]]
//! backend = "local"
//! ssd = 0
//! size = "256MiB"
//! ```

use crate::scenario::{check_nqn, parse_size, Backend, NamespaceCfg, Scenario};
use crate::limits::{DISCOVERY_LISTENERS, TARGET_LISTENERS, TARGET_SOCKETS};
use crate::ConfigError;
use serde::Deserialize;

/// Most subsystems, allowed hosts per subsystem and namespaces per
/// subsystem the firmware holds (`dpu_bootcfg`, `regs::bootcfg`).
pub const MAX_SUBSYSTEMS: usize = 8;
pub const MAX_ALLOWED_HOSTS: usize = 4;
pub const MAX_SUBSYSTEM_NAMESPACES: usize = 16;

fn d_port() -> u16 {
    4420
}
fn d_bsize() -> u32 {
    512
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsystemCfg {
    pub nqn: String,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default = "d_port")]
    pub trsvcid: u16,
    /// DPU ports it listens on (default: all configured ports).
    pub ports: Option<Vec<u8>>,
    pub namespaces: Vec<SubsystemNsCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsystemNsCfg {
    /// "ram" or "local".
    pub backend: String,
    pub size: Option<String>,
    #[serde(default = "d_bsize")]
    pub block_size: u32,
    /// local: the SSD's slot.
    pub ssd: Option<u32>,
}

/// A resolved subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subsystem {
    pub nqn: String,
    pub allow_hosts: Vec<String>,
    pub trsvcid: u16,
    /// Bit p: DPU port p.
    pub ports: u8,
    /// nsid = position + 1; `function` is `u16::MAX` (no PCIe function).
    pub namespaces: Vec<NamespaceCfg>,
}

impl Scenario {
    /// The `[[subsystems]]`, checked; every error names its field.
    pub fn resolve_subsystems(&self) -> Result<Vec<Subsystem>, ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        if self.subsystems.len() > MAX_SUBSYSTEMS {
            return err("subsystems".into(), format!("{} subsystems; the firmware serves at most {MAX_SUBSYSTEMS}", self.subsystems.len()));
        }
        let nports = self.network.ports.len();
        let mut out: Vec<Subsystem> = Vec::new();
        for (i, s) in self.subsystems.iter().enumerate() {
            let at = |field: &str| format!("subsystems[{i}].{field}");
            check_nqn(&s.nqn).map_err(|m| ConfigError::field(f, at("nqn"), m))?;
            if s.nqn == dpu_discovery_nqn() {
                return err(at("nqn"), "the discovery NQN names the card's discovery service (TCP 8009 on every port with a subsystem), not a subsystem".into());
            }
            if out.iter().any(|o| o.nqn == s.nqn) {
                return err(at("nqn"), format!("`{}` names another subsystem already", s.nqn));
            }
            if s.allow_hosts.len() > MAX_ALLOWED_HOSTS {
                return err(at("allow_hosts"), format!("{} hosts; at most {MAX_ALLOWED_HOSTS} (or none: any host)", s.allow_hosts.len()));
            }
            for (k, h) in s.allow_hosts.iter().enumerate() {
                check_nqn(h).map_err(|m| ConfigError::field(f, format!("subsystems[{i}].allow_hosts[{k}]"), m))?;
            }
            if s.trsvcid == 0 {
                return err(at("trsvcid"), "port 0 is not a TCP port to listen on".into());
            }
            if (40000..=40999).contains(&s.trsvcid) || s.trsvcid >= 49152 {
                return err(at("trsvcid"), format!("{}: the card's own connections use 40000-40999 and 49152-65535", s.trsvcid));
            }
            if s.trsvcid == DISCOVERY_PORT {
                return err(at("trsvcid"), format!("{DISCOVERY_PORT}: the card's discovery service listens there"));
            }
            if self.management().is_some_and(|m| m.tcp_port == DISCOVERY_PORT) {
                return err(at("trsvcid"), format!("the management server's TCP port {DISCOVERY_PORT} is the discovery service's, on every port with a subsystem"));
            }
            if self.management().is_some_and(|m| m.tcp_port == s.trsvcid) {
                return err(at("trsvcid"), format!("{}: the management server listens there", s.trsvcid));
            }
            if nports == 0 {
                return err(at("ports"), "the card has no network ports configured ([network] ports)".into());
            }
            let ports = match &s.ports {
                None => ((1u16 << nports) - 1) as u8,
                Some(list) if list.is_empty() => return err(at("ports"), "lists no port".into()),
                Some(list) => {
                    let mut m = 0u8;
                    for &p in list {
                        if usize::from(p) >= nports {
                            return err(at("ports"), format!("port {p}; [network] configures ports 0..{nports}"));
                        }
                        m |= 1 << p;
                    }
                    m
                }
            };
            // Several subsystems may share a (port, TCP port): the
            // subsystem NQN in Connect picks one.
            if s.namespaces.is_empty() {
                return err(at("namespaces"), "lists no namespace".into());
            }
            if s.namespaces.len() > MAX_SUBSYSTEM_NAMESPACES {
                return err(at("namespaces"), format!("{} namespaces; at most {MAX_SUBSYSTEM_NAMESPACES}", s.namespaces.len()));
            }
            let mut namespaces = Vec::new();
            for (j, n) in s.namespaces.iter().enumerate() {
                let at = |field: &str| format!("subsystems[{i}].namespaces[{j}].{field}");
                let Some(size) = &n.size else { return err(at("size"), "a namespace needs a size".into()) };
                let bytes = parse_size(size).map_err(|m| ConfigError::field(f, at("size"), m))?;
                if ![512, 4096].contains(&n.block_size) {
                    return err(at("block_size"), format!("{} must be 512 or 4096", n.block_size));
                }
                if bytes == 0 || bytes % u64::from(n.block_size) != 0 {
                    return err(at("size"), format!("{bytes} bytes is not a positive multiple of the block size"));
                }
                let backend = match n.backend.as_str() {
                    "ram" => {
                        if n.ssd.is_some() {
                            return err(at("ssd"), "only a namespace with `backend = \"local\"` takes `ssd`".into());
                        }
                        Backend::Ram
                    }
                    "local" => {
                        let Some(ssd) = n.ssd else { return err(at("ssd"), "a local namespace needs `ssd`, the SSD's slot".into()) };
                        // v1: a namespace is either the host's or remote hosts'.
                        if let Some(k) = self.storage.iter().position(|x| x.backend == "local" && x.ssd == Some(ssd)) {
                            return err(at("ssd"), format!("SSD {ssd} backs storage[{k}] (a PCIe function's namespace); a target namespace may not be mapped to a function too"));
                        }
                        if out.iter().flat_map(|o| &o.namespaces).chain(&namespaces).any(|x: &NamespaceCfg| x.backend == Backend::Local { ssd, nsid: 1 }) {
                            return err(at("ssd"), format!("SSD {ssd} backs another subsystem namespace"));
                        }
                        Backend::Local { ssd, nsid: 1 }
                    }
                    b => return err(at("backend"), format!("`{b}` is not a backend a subsystem serves (ram, local)")),
                };
                namespaces.push(NamespaceCfg { function: u16::MAX, nsid: j as u32 + 1, bytes, block_size: n.block_size, backend, encryption: None });
            }
            out.push(Subsystem { nqn: s.nqn.clone(), allow_hosts: s.allow_hosts.clone(), trsvcid: s.trsvcid, ports, namespaces });
        }
        // Every data-plane core listens on each (port, TCP port) and on
        // the discovery port of each port used: within its socket table.
        let mut points: Vec<(u8, u16)> = Vec::new();
        let mut used = 0u8;
        for o in &out {
            used |= o.ports;
            for p in (0..8).filter(|p| o.ports & (1 << p) != 0) {
                if !points.contains(&(p, o.trsvcid)) {
                    points.push((p, o.trsvcid));
                }
            }
        }
        let sockets = points.len() * TARGET_LISTENERS + used.count_ones() as usize * DISCOVERY_LISTENERS;
        if sockets > TARGET_SOCKETS {
            return err(
                "subsystems".into(),
                format!(
                    "{} (DPU port, TCP port) pairs and discovery on {} port(s) need {sockets} listening sockets per core; the target has {TARGET_SOCKETS} ({TARGET_LISTENERS} per pair, {DISCOVERY_LISTENERS} per port for discovery): share TCP ports between subsystems",
                    points.len(),
                    used.count_ones()
                ),
            );
        }
        Ok(out)
    }

    /// The subsystems (empty when they do not validate).
    pub fn subsystems(&self) -> Vec<Subsystem> {
        self.resolve_subsystems().unwrap_or_default()
    }
}

/// The NVMe/TCP discovery service's TCP port (NVMe/TCP Transport 1.0,
/// IANA "nvme-disc"), on every DPU port with a subsystem.
pub const DISCOVERY_PORT: u16 = 8009;

fn dpu_discovery_nqn() -> &'static str {
    "nqn.2014-08.org.nvmexpress.discovery"
}

#[cfg(test)]
mod tests {
    use crate::Scenario;

    const BASE: &str = r#"
[scenario]
name = "t"
[network]
ports = ["10.0.0.1/24", "10.0.1.1/24"]
[[subsystems]]
nqn = "nqn.2026-12.io.dpusim:ram0"
allow_hosts = ["nqn.2014-08.org.nvmexpress:uuid:a"]
ports = [0]
[[subsystems.namespaces]]
backend = "ram"
size = "8MiB"
"#;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse("t.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_subsystem_resolves() {
        let s = parse(BASE).unwrap();
        let v = s.subsystems();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].trsvcid, v[0].ports, v[0].namespaces.len()), (4420, 1, 1));
        assert_eq!((v[0].namespaces[0].nsid, v[0].namespaces[0].bytes, v[0].namespaces[0].block_size), (1, 8 << 20, 512));
        // Without `ports`: every configured port.
        let all = parse(&BASE.replace("ports = [0]\n", "")).unwrap();
        assert_eq!(all.subsystems()[0].ports, 0b11);
    }

    #[test]
    fn errors_name_the_field() {
        for (from, to, field) in [
            ("nqn = \"nqn.2026-12.io.dpusim:ram0\"", "nqn = \"ram0\"", "subsystems[0].nqn"),
            ("uuid:a\"]", "uuid:a\", \"bad host\"]", "subsystems[0].allow_hosts[1]"),
            ("ports = [0]", "ports = [2]", "subsystems[0].ports"),
            ("ports = [0]", "ports = [0]\ntrsvcid = 0", "subsystems[0].trsvcid"),
            ("ports = [0]", "ports = [0]\ntrsvcid = 8009", "subsystems[0].trsvcid"),
            ("nqn = \"nqn.2026-12.io.dpusim:ram0\"", "nqn = \"nqn.2014-08.org.nvmexpress.discovery\"", "subsystems[0].nqn"),
            ("backend = \"ram\"", "backend = \"nvmf\"", "subsystems[0].namespaces[0].backend"),
            ("size = \"8MiB\"", "size = \"8MiB\"\nblock_size = 1000", "subsystems[0].namespaces[0].block_size"),
            ("backend = \"ram\"", "backend = \"local\"", "subsystems[0].namespaces[0].ssd"),
        ] {
            let e = parse(&BASE.replace(from, to)).unwrap_err();
            assert!(e.contains(field), "{to}: {e}");
        }
    }

    /// Each core listens on every (port, TCP port) and on 8009 of every
    /// port used: four TCP ports on one port do not fit with discovery.
    #[test]
    fn listening_sockets_fit_a_core() {
        let sub = |i: u16| format!("[[subsystems]]\nnqn = \"nqn.2026-12.io.dpusim:s{i}\"\ntrsvcid = {}\nports = [0]\n[[subsystems.namespaces]]\nbackend = \"ram\"\nsize = \"1MiB\"\n", 4420 + i);
        let head = "[scenario]\nname = \"t\"\n[network]\nports = [\"10.0.0.1/24\"]\n";
        let three: String = head.to_string() + &(0..3).map(sub).collect::<String>();
        parse(&three).unwrap();
        let four: String = head.to_string() + &(0..4).map(sub).collect::<String>();
        let e = parse(&four).unwrap_err();
        assert!(e.contains("subsystems") && e.contains("18 listening sockets per core"), "{e}");
    }

    #[test]
    fn an_ssd_is_either_the_hosts_or_remote_hosts() {
        let text = format!(
            "{}\n[[storage]]\nfunctions = [0]\nbackend = \"local\"\nssd = 0\nsize = \"1MiB\"\n",
            BASE.replace("backend = \"ram\"", "backend = \"local\"\nssd = 0")
        );
        let e = parse(&text).unwrap_err();
        assert!(e.contains("subsystems[0].namespaces[0].ssd") && e.contains("storage[0]"), "{e}");
    }
}
