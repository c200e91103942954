//! Builds the boot configuration blob the firmware reads at boot
//! (layout: `dpu_hal::regs::bootcfg`): namespaces and their backends, the
//! DPU port addresses, the remote NVMe-oF controllers, the host NQN, the
//! keys of encrypted namespaces and the erasure-coded volumes.

use dpu_hal::regs::bootcfg as b;
use dpu_targets::{Backend, NamespaceCfg, Scenario};
use std::net::Ipv4Addr;

/// Everything the blob carries.
#[derive(Clone, Debug)]
pub struct BootConfig {
    pub namespaces: Vec<NamespaceCfg>,
    /// (address, prefix, MTU) per DPU port.
    pub ports: Vec<(Ipv4Addr, u8, u16)>,
    pub host_nqn: String,
    pub host_id: [u8; 16],
    pub flags: u16,
    pub tcp_min_rto_ms: u16,
    /// Remote I/O timeout in microseconds (0: the firmware's default).
    pub io_timeout_us: u32,
    /// The management server's record (`[management]`).
    pub management: Option<dpu_targets::Management>,
    /// NVMe/TCP target subsystems (`[[subsystems]]`, format 8); their
    /// namespaces follow `namespaces` in the namespace records.
    pub subsystems: Vec<dpu_targets::Subsystem>,
}

impl BootConfig {
    /// RAM namespaces given as (function, nsid, bytes, block size), default network.
    pub fn ram(ns: &[(u16, u32, u64, u32)]) -> BootConfig {
        let namespaces = ns
            .iter()
            .map(|&(function, nsid, bytes, block_size)| NamespaceCfg { function, nsid, bytes, block_size, backend: Backend::Ram, encryption: None })
            .collect();
        let sc = dpu_targets::NetworkCfg::default();
        BootConfig::with(namespaces, &sc)
    }

    fn with(namespaces: Vec<NamespaceCfg>, n: &dpu_targets::NetworkCfg) -> BootConfig {
        let ports = n.ports.iter().filter_map(|p| dpu_targets::parse_cidr(p).ok()).map(|(a, p)| (a, p, n.mtu as u16)).collect();
        let mut flags = 0;
        if n.header_digest {
            flags |= b::FLAG_HDGST;
        }
        if n.data_digest {
            flags |= b::FLAG_DDGST;
        }
        if n.lro {
            flags |= b::FLAG_LRO;
        }
        // Host ID: a stable UUID derived from the host NQN (FNV-1a).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for c in n.host_nqn.bytes() {
            h ^= u64::from(c);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut host_id = [0u8; 16];
        host_id[..8].copy_from_slice(&h.to_le_bytes());
        host_id[8..].copy_from_slice(&h.rotate_left(29).to_le_bytes());
        BootConfig { namespaces, ports, host_nqn: n.host_nqn.clone(), host_id, flags, tcp_min_rto_ms: n.tcp_min_rto_ms(), io_timeout_us: n.io_timeout_us(), management: None, subsystems: Vec::new() }
    }

    pub fn from_scenario(sc: &Scenario) -> BootConfig {
        let mut c = BootConfig::with(sc.namespace_cfgs(), &sc.network);
        c.management = sc.management();
        c.subsystems = sc.subsystems();
        c
    }

    /// Remote controllers in record order: (address, port, subsystem NQN).
    pub fn controllers(&self) -> Vec<(Ipv4Addr, u16, String)> {
        let mut v: Vec<(Ipv4Addr, u16, String)> = Vec::new();
        for n in &self.namespaces {
            for k in n.backend.remotes() {
                if !v.contains(&k) {
                    v.push(k);
                }
            }
        }
        v
    }

    /// The blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ctrls = self.controllers();
        let ns_off = b::HEADER;
        // (namespace, subsystem record + 1 or 0): the functions' first.
        let records: Vec<(&NamespaceCfg, u8)> = self
            .namespaces
            .iter()
            .map(|n| (n, 0))
            .chain(self.subsystems.iter().enumerate().flat_map(|(s, sub)| sub.namespaces.iter().map(move |n| (n, s as u8 + 1))))
            .collect();
        let port_off = ns_off + records.len() * b::RECORD;
        let ctrl_off = port_off + self.ports.len() * b::PORT_RECORD;
        let host_off = ctrl_off + ctrls.len() * b::CTRL_RECORD;
        let key_off = host_off + b::HOST_RECORD;
        let keys: Vec<&[u8; 64]> = records.iter().map(|r| r.0).filter_map(|n| n.encryption.as_ref().map(|k| &k.0)).collect();
        let ec_off = key_off + keys.len() * b::KEY_RECORD;
        // One EC volume record per distinct volume (a volume listed for
        // several functions is one volume).
        let mut vols: Vec<&Backend> = Vec::new();
        for n in &self.namespaces {
            if matches!(n.backend, Backend::Ec { .. }) && !vols.contains(&&n.backend) {
                vols.push(&n.backend);
            }
        }
        let mgmt_off = ec_off + vols.len() * b::EC_RECORD;
        let sub_off = mgmt_off + usize::from(self.management.is_some()) * b::MGMT_RECORD;
        let mut v = vec![0u8; sub_off + self.subsystems.len() * b::SUBSYS_RECORD];
        let put = |v: &mut Vec<u8>, at: usize, bytes: &[u8]| v[at..at + bytes.len()].copy_from_slice(bytes);
        put(&mut v, b::HDR_MAGIC, &b::MAGIC.to_le_bytes());
        put(&mut v, b::HDR_VERSION, &b::VERSION.to_le_bytes());
        put(&mut v, b::HDR_COUNT, &(records.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_SUBSYS, &(self.subsystems.len() as u16).to_le_bytes());
        for (i, sub) in self.subsystems.iter().enumerate() {
            let r = sub_off + i * b::SUBSYS_RECORD;
            let n = sub.nqn.len().min(b::NQN_LEN - 1);
            put(&mut v, r + b::SUBSYS_NQN, &sub.nqn.as_bytes()[..n]);
            put(&mut v, r + b::SUBSYS_TRSVCID, &sub.trsvcid.to_le_bytes());
            put(&mut v, r + b::SUBSYS_PORTS, &[sub.ports, sub.allow_hosts.len().min(b::SUBSYS_HOSTS_MAX) as u8]);
            for (k, h) in sub.allow_hosts.iter().take(b::SUBSYS_HOSTS_MAX).enumerate() {
                let n = h.len().min(b::NQN_LEN - 1);
                put(&mut v, r + b::SUBSYS_HOSTS + k * b::NQN_LEN, &h.as_bytes()[..n]);
            }
        }
        put(&mut v, b::HDR_PORTS, &(self.ports.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_CTRLS, &(ctrls.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_FLAGS, &self.flags.to_le_bytes());
        put(&mut v, b::HDR_TCP_MIN_RTO_MS, &self.tcp_min_rto_ms.to_le_bytes());
        put(&mut v, b::HDR_IO_TIMEOUT_US, &self.io_timeout_us.to_le_bytes());
        put(&mut v, b::HDR_KEYS, &(keys.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_EC_VOLUMES, &(vols.len() as u16).to_le_bytes());
        if let Some(m) = &self.management {
            put(&mut v, b::HDR_MGMT, &1u16.to_le_bytes());
            let r = mgmt_off;
            put(&mut v, r + b::MGMT_PORT, &[m.port as u8, m.allow.len().min(b::MGMT_ALLOW_MAX) as u8]);
            put(&mut v, r + b::MGMT_TCP_PORT, &m.tcp_port.to_le_bytes());
            put(&mut v, r + b::MGMT_REQUEST_TIMEOUT_MS, &m.request_timeout_ms.to_le_bytes());
            let token = m.token.as_deref().unwrap_or("").as_bytes();
            let token = &token[..token.len().min(b::MGMT_TOKEN_LEN)];
            put(&mut v, r + b::MGMT_TOKEN_LEN_OFF, &[token.len() as u8]);
            put(&mut v, r + b::MGMT_TOKEN, token);
            for (i, (ip, prefix)) in m.allow.iter().take(b::MGMT_ALLOW_MAX).enumerate() {
                let e = r + b::MGMT_ALLOW + i * b::MGMT_ALLOW_ENTRY;
                put(&mut v, e, &ip.octets());
                put(&mut v, e + 4, &[*prefix]);
            }
        }
        let ctrl_index = |traddr: &Ipv4Addr, trsvcid: &u16, subnqn: &String| ctrls.iter().position(|c| c.0 == *traddr && c.1 == *trsvcid && &c.2 == subnqn).unwrap_or(0);
        for (i, vol) in vols.iter().enumerate() {
            let Backend::Ec { k, m, members, spares, scrub_at_us, scrub_every_ms } = vol else { continue };
            let r = ec_off + i * b::EC_RECORD;
            put(&mut v, r + b::EC_K, &[*k, *m]);
            // Spares follow the members (the scenario checked they fit).
            put(&mut v, r + b::EC_SPARES, &[spares.len() as u8]);
            put(&mut v, r + b::EC_SCRUB_AT_US, &scrub_at_us.to_le_bytes());
            put(&mut v, r + b::EC_SCRUB_EVERY_MS, &scrub_every_ms.to_le_bytes());
            for (j, (a, p, n, nsid)) in members.iter().chain(spares).enumerate().take(dpu_targets::MAX_EC_MEMBERS) {
                let e = r + b::EC_MEMBERS + j * b::EC_MEMBER;
                put(&mut v, e + b::EC_MEMBER_CTRL, &(ctrl_index(a, p, n) as u16).to_le_bytes());
                put(&mut v, e + b::EC_MEMBER_NSID, &nsid.to_le_bytes());
            }
        }
        for (i, k) in keys.iter().enumerate() {
            put(&mut v, key_off + i * b::KEY_RECORD, &k[..]);
        }
        let mut next_key = 0u16;
        for (i, &(n, sub)) in records.iter().enumerate() {
            let r = ns_off + i * b::RECORD;
            put(&mut v, r + b::REC_FUNCTION, &n.function.to_le_bytes());
            put(&mut v, r + b::REC_SUBSYS, &[sub]);
            put(&mut v, r + b::REC_LBA_SHIFT, &[n.block_size.trailing_zeros() as u8]);
            put(&mut v, r + b::REC_NSID, &n.nsid.to_le_bytes());
            put(&mut v, r + b::REC_BLOCKS, &(n.bytes / u64::from(n.block_size)).to_le_bytes());
            if n.encryption.is_some() {
                put(&mut v, r + b::REC_CRYPTO, &[b::CRYPTO_AES_XTS]);
                put(&mut v, r + b::REC_KEY, &next_key.to_le_bytes());
                next_key += 1;
            }
            match &n.backend {
                Backend::Ram => put(&mut v, r + b::REC_BACKEND, &[b::BACKEND_RAM]),
                Backend::Nvmf { traddr, trsvcid, subnqn, nsid } => {
                    put(&mut v, r + b::REC_BACKEND, &[b::BACKEND_NVMF]);
                    let k = ctrl_index(traddr, trsvcid, subnqn);
                    put(&mut v, r + b::REC_CTRL, &(k as u16).to_le_bytes());
                    put(&mut v, r + b::REC_REMOTE_NSID, &nsid.to_le_bytes());
                }
                Backend::Local { ssd, nsid } => {
                    put(&mut v, r + b::REC_BACKEND, &[b::BACKEND_LOCAL]);
                    put(&mut v, r + b::REC_CTRL, &(*ssd as u16).to_le_bytes());
                    put(&mut v, r + b::REC_REMOTE_NSID, &nsid.to_le_bytes());
                }
                Backend::Ec { .. } => {
                    put(&mut v, r + b::REC_BACKEND, &[b::BACKEND_EC]);
                    let k = vols.iter().position(|x| *x == &n.backend).unwrap_or(0);
                    put(&mut v, r + b::REC_CTRL, &(k as u16).to_le_bytes());
                }
            }
        }
        for (i, (addr, prefix, mtu)) in self.ports.iter().enumerate() {
            let r = port_off + i * b::PORT_RECORD;
            put(&mut v, r + b::PORT_IP, &addr.octets());
            put(&mut v, r + b::PORT_PREFIX, &[*prefix]);
            put(&mut v, r + b::PORT_MTU, &mtu.to_le_bytes());
        }
        for (i, (addr, port, nqn)) in ctrls.iter().enumerate() {
            let r = ctrl_off + i * b::CTRL_RECORD;
            put(&mut v, r + b::CTRL_TRADDR, &addr.octets());
            put(&mut v, r + b::CTRL_TRSVCID, &port.to_le_bytes());
            let n = nqn.len().min(b::NQN_LEN - 1);
            put(&mut v, r + b::CTRL_SUBNQN, &nqn.as_bytes()[..n]);
        }
        let n = self.host_nqn.len().min(b::NQN_LEN - 1);
        put(&mut v, host_off + b::HOST_NQN, &self.host_nqn.as_bytes()[..n]);
        put(&mut v, host_off + b::HOST_ID, &self.host_id);
        v
    }
}

/// Explains a rejection the firmware reported (`REJECT_*` reason, record
/// index) in terms of the configuration it was given.
pub fn describe_rejection(cfg: Option<&BootConfig>, reason: u16, index: usize, chip: &dpu_targets::Chip) -> String {
    let ns = || match cfg.and_then(|c| c.namespaces.get(index)) {
        Some(n) => {
            let backend = match &n.backend {
                Backend::Ram => format!("RAM, {} bytes", n.bytes),
                Backend::Nvmf { traddr, trsvcid, subnqn, nsid } => format!("namespace {nsid} of {subnqn} at {traddr}:{trsvcid}"),
                Backend::Ec { k, m, members, spares, .. } => format!("EC {k}+{m} over {} members, {} spares", members.len(), spares.len()),
                Backend::Local { ssd, nsid } => format!("namespace {nsid} of local SSD {ssd}"),
            };
            format!("namespace record {index} (function {}, nsid {}, {backend})", n.function, n.nsid)
        }
        None => format!("namespace record {index}"),
    };
    match reason {
        b::REJECT_BAD_MAGIC => "no valid header (bad magic)".into(),
        b::REJECT_BAD_VERSION => "layout version differs from the firmware's (rebuild both)".into(),
        b::REJECT_TOO_MANY => format!(
            "too many records ({index} namespaces; at most {} namespaces, {} ports and {} remote controllers fitting {} bytes)",
            dpu_targets::MAX_NAMESPACES,
            dpu_targets::MAX_PORTS,
            dpu_targets::MAX_REMOTE_CONTROLLERS,
            chip.devices.bootcfg.size
        ),
        b::REJECT_BAD_RECORD => format!(
            "{}: bad record (function beyond the board, nsid outside 1..={}, block size, duplicate or remote nsid)",
            ns(),
            dpu_targets::MAX_NSID
        ),
        b::REJECT_BAD_PORT => {
            let port = cfg.and_then(|c| c.ports.get(index)).map_or(String::new(), |(a, p, m)| format!(" ({a}/{p}, MTU {m})"));
            format!("port {index}{port}: bad address, prefix or MTU")
        }
        b::REJECT_BAD_CONTROLLER => {
            let ctrl = cfg.and_then(|c| c.controllers().get(index).cloned()).map_or(String::new(), |(a, p, n)| format!(" ({a}:{p} {n})"));
            format!("remote controller {index}{ctrl}: bad address, port or subsystem NQN")
        }
        b::REJECT_OUT_OF_MEMORY => format!(
            "{}: out of memory (the image's DDR pool for RAM namespaces is full; {} says {} MiB)",
            ns(),
            chip.source.display(),
            chip.ram_namespace_pool().1 >> 20
        ),
        b::REJECT_BAD_KEY => format!("{}: bad encryption setting or key record (unknown cipher, missing key, equal key halves)", ns()),
        b::REJECT_BAD_EC => format!("{}: bad erasure-coded volume record (k, m, members, or a size that is not whole stripes)", ns()),
        b::REJECT_BAD_MGMT => "the management record: a port that is not configured, TCP port 0, a bad allow-list entry or token".into(),
        b::REJECT_BAD_SUBSYS => {
            let sub = cfg.and_then(|c| c.subsystems.get(index)).map_or(String::new(), |s| format!(" ({} on TCP port {})", s.nqn, s.trsvcid));
            format!("target subsystem {index}{sub}: bad NQN, TCP port, ports or allowed host NQN")
        }
        r => format!("reason {r}, record {index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sit_where_the_layout_says() {
        let mut c = BootConfig::ram(&[(1, 1, 1 << 20, 512)]);
        c.namespaces.push(NamespaceCfg {
            function: 2,
            nsid: 1,
            bytes: 1 << 20,
            block_size: 4096,
            backend: Backend::Nvmf { traddr: Ipv4Addr::new(10, 0, 0, 10), trsvcid: 4420, subnqn: "nqn.x:t0".into(), nsid: 3 },
            encryption: None,
        });
        let v = c.to_bytes();
        assert_eq!(&v[..4], b"DPUC");
        assert_eq!(u16::from_le_bytes([v[b::HDR_COUNT], v[b::HDR_COUNT + 1]]), 2);
        assert_eq!(u16::from_le_bytes([v[b::HDR_PORTS], v[b::HDR_PORTS + 1]]), 2);
        assert_eq!(u16::from_le_bytes([v[b::HDR_CTRLS], v[b::HDR_CTRLS + 1]]), 1);
        let r1 = b::HEADER + b::RECORD;
        assert_eq!(v[r1 + b::REC_BACKEND], b::BACKEND_NVMF);
        assert_eq!(v[r1 + b::REC_LBA_SHIFT], 12);
        assert_eq!(u32::from_le_bytes(v[r1 + b::REC_REMOTE_NSID..][..4].try_into().unwrap()), 3);
        let ports = b::HEADER + 2 * b::RECORD;
        assert_eq!(&v[ports..ports + 4], &[10, 0, 0, 1]);
        assert_eq!(v[ports + b::PORT_PREFIX], 24);
        let ctrl = ports + 2 * b::PORT_RECORD;
        assert_eq!(&v[ctrl..ctrl + 4], &[10, 0, 0, 10]);
        assert_eq!(&v[ctrl + b::CTRL_SUBNQN..ctrl + b::CTRL_SUBNQN + 9], b"nqn.x:t0\0");
        let host = ctrl + b::CTRL_RECORD;
        assert!(v[host..].starts_with(b"nqn.2014-08.org.nvmexpress:uuid:"));
        assert_eq!(v.len(), host + b::HOST_RECORD);
    }

    #[test]
    fn encrypted_namespaces_carry_a_key_record() {
        let mut c = BootConfig::ram(&[(1, 1, 1 << 20, 512), (1, 2, 1 << 20, 4096)]);
        let key: [u8; 64] = core::array::from_fn(|i| i as u8);
        c.namespaces[1].encryption = Some(dpu_targets::XtsKey(key));
        let v = c.to_bytes();
        assert_eq!(u16::from_le_bytes([v[b::HDR_KEYS], v[b::HDR_KEYS + 1]]), 1);
        let (r0, r1) = (b::HEADER, b::HEADER + b::RECORD);
        assert_eq!(v[r0 + b::REC_CRYPTO], b::CRYPTO_NONE);
        assert_eq!(v[r1 + b::REC_CRYPTO], b::CRYPTO_AES_XTS);
        assert_eq!(u16::from_le_bytes([v[r1 + b::REC_KEY], v[r1 + b::REC_KEY + 1]]), 0);
        let key_off = b::HEADER + 2 * b::RECORD + 2 * b::PORT_RECORD + b::HOST_RECORD;
        assert_eq!(&v[key_off..], &key[..]);
    }

    #[test]
    fn ec_volumes_carry_their_members() {
        let mut c = BootConfig::ram(&[(1, 1, 1 << 20, 512)]);
        let t = |i: u8| (Ipv4Addr::new(10, 0, 0, 10 + i), 4420, format!("nqn.x:t{i}"), 1);
        let ec = Backend::Ec { k: 2, m: 1, members: vec![t(0), t(1), t(2)], spares: vec![t(3)], scrub_at_us: 7_000, scrub_every_ms: 25 };
        c.namespaces.push(NamespaceCfg { function: 1, nsid: 2, bytes: 3 << 13, block_size: 512, backend: ec.clone(), encryption: None });
        c.namespaces.push(NamespaceCfg { function: 2, nsid: 1, bytes: 3 << 13, block_size: 512, backend: ec, encryption: None });
        c.namespaces.push(NamespaceCfg {
            function: 3,
            nsid: 1,
            bytes: 1 << 20,
            block_size: 512,
            backend: Backend::Nvmf { traddr: Ipv4Addr::new(10, 0, 0, 11), trsvcid: 4420, subnqn: "nqn.x:t1".into(), nsid: 2 },
            encryption: None,
        });
        let v = c.to_bytes();
        // Four controllers (t1 shared; the spare t3), one volume record for two namespaces.
        assert_eq!(u16::from_le_bytes([v[b::HDR_CTRLS], v[b::HDR_CTRLS + 1]]), 4);
        assert_eq!(u16::from_le_bytes([v[b::HDR_EC_VOLUMES], v[b::HDR_EC_VOLUMES + 1]]), 1);
        for r in [b::HEADER + b::RECORD, b::HEADER + 2 * b::RECORD] {
            assert_eq!(v[r + b::REC_BACKEND], b::BACKEND_EC);
            assert_eq!(u16::from_le_bytes([v[r + b::REC_CTRL], v[r + b::REC_CTRL + 1]]), 0);
        }
        let ec = v.len() - b::EC_RECORD;
        assert_eq!(&v[ec..ec + 3], &[2, 1, 1], "k, m, one spare");
        assert_eq!(&v[ec + b::EC_SCRUB_AT_US..ec + b::EC_SCRUB_AT_US + 4], &7_000u32.to_le_bytes());
        assert_eq!(&v[ec + b::EC_SCRUB_EVERY_MS..ec + b::EC_SCRUB_EVERY_MS + 4], &25u32.to_le_bytes());
        let member = |j: usize| {
            let e = ec + b::EC_MEMBERS + j * b::EC_MEMBER;
            (u16::from_le_bytes([v[e], v[e + 1]]), u32::from_le_bytes(v[e + b::EC_MEMBER_NSID..e + b::EC_MEMBER_NSID + 4].try_into().unwrap()))
        };
        // The spare (t3, the fourth controller) follows the members.
        assert_eq!([member(0), member(1), member(2), member(3), member(4)], [(0, 1), (1, 1), (2, 1), (3, 1), (0, 0)]);
        let r3 = b::HEADER + 3 * b::RECORD;
        assert_eq!(u16::from_le_bytes([v[r3 + b::REC_CTRL], v[r3 + b::REC_CTRL + 1]]), 1, "the remote namespace's controller is the member's");
    }

    #[test]
    fn subsystems_and_their_namespaces_follow_the_functions_namespaces() {
        let text = r#"
[scenario]
name = "t"
[network]
ports = ["10.0.0.1/24"]
[[storage]]
functions = [0]
backend = "ram"
size = "1MiB"
[[subsystems]]
nqn = "nqn.2026-12.io.dpusim:ram"
allow_hosts = ["nqn.2014-08.org.nvmexpress:uuid:a"]
[[subsystems.namespaces]]
backend = "ram"
size = "2MiB"
block_size = 4096
"#;
        let sc = dpu_targets::Scenario::parse("t.toml", text).unwrap();
        let v = BootConfig::from_scenario(&sc).to_bytes();
        let u16_at = |at: usize| u16::from_le_bytes([v[at], v[at + 1]]);
        assert_eq!((u16_at(b::HDR_VERSION), u16_at(b::HDR_COUNT), u16_at(b::HDR_SUBSYS)), (b::VERSION, 2, 1));
        let (r0, r1) = (b::HEADER, b::HEADER + b::RECORD);
        assert_eq!((v[r0 + b::REC_SUBSYS], v[r1 + b::REC_SUBSYS]), (0, 1), "the function's namespace, then subsystem 0's");
        assert_eq!((v[r1 + b::REC_BACKEND], v[r1 + b::REC_LBA_SHIFT], u32::from_le_bytes(v[r1 + b::REC_NSID..][..4].try_into().unwrap())), (b::BACKEND_RAM, 12, 1));
        let sub = v.len() - b::SUBSYS_RECORD;
        assert!(v[sub..].starts_with(b"nqn.2026-12.io.dpusim:ram\0"));
        assert_eq!((u16_at(sub + b::SUBSYS_TRSVCID), v[sub + b::SUBSYS_PORTS], v[sub + b::SUBSYS_HOST_COUNT]), (4420, 1, 1));
        assert!(v[sub + b::SUBSYS_HOSTS..].starts_with(b"nqn.2014-08.org.nvmexpress:uuid:a\0"));
    }
}
