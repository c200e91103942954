//! A scenario's storage and network settings as the operator's
//! configuration (`dpu_config::Config`), the way `cargo xtask flash
//! --scenario` writes it into the card's flash (the AES-XTS keys of
//! encrypted namespaces wrapped with the card's device key,
//! [`crate::devkey`], never in the clear). The simulator fills the
//! boot configuration window from the same scenario when it loads an ELF
//! directly (`sim/src/bootcfg.rs`); a test checks both give the firmware
//! the same configuration.

use crate::devkey::DeviceKey;
use dpu_config::{Backend, Config, Controller, EcVolume, Management, Namespace, NsKey, Port, Subsystem, SubsystemNs};
use dpu_targets::Scenario;
use heapless::String as HString;

/// Host ID derived from the host NQN as the simulator does (FNV-1a), so
/// both boot paths present the same host to remote targets.
fn host_id(nqn: &str) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in nqn.bytes() {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&h.to_le_bytes());
    id[8..].copy_from_slice(&h.rotate_left(29).to_le_bytes());
    id
}

fn nqn(s: &str, what: &str) -> Result<HString<{ dpu_config::NQN_MAX }>, String> {
    HString::try_from(s).map_err(|_| format!("{what} `{s}` is longer than {} bytes", dpu_config::NQN_MAX))
}

/// The configuration `sc` describes (checked with `Config::validate`),
/// for a card whose device key is `device_key`: encrypted namespaces'
/// keys wrapped with it.
pub fn from_scenario(sc: &Scenario, device_key: &DeviceKey) -> Result<Config, String> {
    let n = &sc.network;
    let mut c = Config::default();
    for p in sc.port_addrs() {
        c.ports.push(Port { ip: p.0.octets(), prefix: p.1, mtu: n.mtu as u16 }).map_err(|_| "too many ports".to_string())?;
    }
    let mut ctrls: Vec<(std::net::Ipv4Addr, u16, String)> = Vec::new();
    // EC volumes in namespace order, each once (as the simulator's window).
    let mut vols: Vec<&dpu_targets::Backend> = Vec::new();
    let cfgs = sc.namespace_cfgs();
    for ns in &cfgs {
        if let Some(key) = &ns.encryption {
            let wrapped = device_key.wrap(&key.0)?;
            let wrapped = heapless::Vec::from_slice(&wrapped).map_err(|_| "a wrapped key of an unexpected length".to_string())?;
            c.ns_keys
                .push(NsKey { function: ns.function, nsid: ns.nsid, wrapped })
                .map_err(|_| format!("more than {} encrypted namespaces (one crypto key slot each)", dpu_config::MAX_KEYS))?;
        }
        // Controllers in the order the namespaces name them (members,
        // then spares, for a volume), each once.
        for k in ns.backend.remotes() {
            if !ctrls.contains(&k) {
                ctrls.push(k);
            }
        }
        let ctrl = |k: &(std::net::Ipv4Addr, u16, String)| ctrls.iter().position(|x| x == k).unwrap_or(0) as u16;
        let backend = match &ns.backend {
            dpu_targets::Backend::Ram => Backend::Ram,
            dpu_targets::Backend::Nvmf { traddr, trsvcid, subnqn, nsid } => Backend::Remote { controller: ctrl(&(*traddr, *trsvcid, subnqn.clone())), nsid: *nsid },
            dpu_targets::Backend::Ec { k, m, members, spares, scrub_at_us, scrub_every_ms } => {
                let volume = match vols.iter().position(|v| **v == ns.backend) {
                    Some(i) => i,
                    None => {
                        let mut v = EcVolume { k: *k, m: *m, spares: spares.len() as u8, scrub_at_us: *scrub_at_us, scrub_every_ms: *scrub_every_ms, ..EcVolume::default() };
                        for (a, p, n, nsid) in members.iter().chain(spares) {
                            v.members.push((ctrl(&(*a, *p, n.clone())), *nsid)).map_err(|_| "too many EC members".to_string())?;
                        }
                        c.ec_volumes.push(v).map_err(|_| "too many erasure-coded volumes".to_string())?;
                        vols.push(&ns.backend);
                        vols.len() - 1
                    }
                };
                Backend::Ec { volume: volume as u16 }
            }
            dpu_targets::Backend::Local { ssd, nsid } => Backend::Local { ssd: *ssd as u16, nsid: *nsid },
        };
        let block_shift = ns.block_size.trailing_zeros() as u8;
        let ns = Namespace { function: ns.function, nsid: ns.nsid, block_shift, blocks: ns.bytes / u64::from(ns.block_size), backend };
        c.namespaces.push(ns).map_err(|_| "too many namespaces".to_string())?;
    }
    for (addr, port, subnqn) in ctrls {
        let k = Controller { traddr: addr.octets(), trsvcid: port, subnqn: nqn(&subnqn, "subsystem NQN")? };
        c.controllers.push(k).map_err(|_| "too many remote controllers".to_string())?;
    }
    // The NVMe/TCP target's subsystems (validated with the scenario).
    for (i, sub) in sc.resolve_subsystems().map_err(|e| e.to_string())?.iter().enumerate() {
        let mut allow_hosts = heapless::Vec::new();
        for h in &sub.allow_hosts {
            allow_hosts.push(nqn(h, "allowed host NQN")?).map_err(|_| format!("subsystems[{i}].allow_hosts: more than {}", dpu_config::MAX_ALLOWED_HOSTS))?;
        }
        let mut namespaces = heapless::Vec::new();
        for n in &sub.namespaces {
            let backend = match n.backend {
                dpu_targets::Backend::Ram => Backend::Ram,
                dpu_targets::Backend::Local { ssd, nsid } => Backend::Local { ssd: ssd as u16, nsid },
                _ => return Err(format!("subsystems[{i}]: a namespace backend a subsystem does not serve")),
            };
            let ns = SubsystemNs { block_shift: n.block_size.trailing_zeros() as u8, blocks: n.bytes / u64::from(n.block_size), backend };
            namespaces.push(ns).map_err(|_| format!("subsystems[{i}].namespaces: too many"))?;
        }
        let s = Subsystem { nqn: nqn(&sub.nqn, "subsystem NQN")?, allow_hosts, trsvcid: sub.trsvcid, ports: sub.ports, namespaces };
        c.subsystems.push(s).map_err(|_| "too many subsystems".to_string())?;
    }
    if sc.management.is_some() {
        // Validated with the scenario (`Scenario::load`): resolves.
        let m = sc.management().ok_or("[management]: not a valid section")?;
        let mut allow = heapless::Vec::new();
        for (ip, prefix) in &m.allow {
            allow.push((ip.octets(), *prefix)).map_err(|_| format!("[management].allow: more than {} prefixes", dpu_config::MGMT_ALLOW_MAX))?;
        }
        let token = m.token.as_deref().unwrap_or("");
        let token = HString::try_from(token).map_err(|_| format!("[management].token: longer than {} bytes", dpu_config::MGMT_TOKEN_MAX))?;
        c.management = Some(Management { port: m.port as u8, tcp_port: m.tcp_port, request_timeout_ms: m.request_timeout_ms, allow, token });
    }
    c.host_nqn = nqn(&n.host_nqn, "host NQN")?;
    c.host_id = host_id(&n.host_nqn);
    c.header_digest = n.header_digest;
    c.data_digest = n.data_digest;
    c.lro = n.lro;
    c.tcp_min_rto_ms = n.tcp_min_rto_ms();
    c.io_timeout_us = n.io_timeout_us();
    c.validate().map_err(|e| format!("{}: the configuration is not one the firmware serves: {e:?}", sc.source.display()))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[management]` section is carried into the flash configuration.
    #[test]
    fn management_settings_are_flashed() {
        let dir = std::env::temp_dir().join(format!("imgtool-mgmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.toml");
        std::fs::write(
            &p,
            "[scenario]\nname = \"m\"\n[network]\nports = [\"10.0.0.1/24\"]\n[[storage]]\nfunctions = [0]\nbackend = \"ram\"\nsize = \"1MiB\"\n[management]\nport = \"eth0\"\nallow = [\"10.0.0.0/24\"]\ntoken = \"tok\"\n",
        )
        .unwrap();
        let sc = Scenario::load(&p).unwrap();
        let m = from_scenario(&sc, &DeviceKey::generate().unwrap()).unwrap().management.unwrap();
        assert_eq!((m.port, m.tcp_port, m.allow.as_slice(), m.token.as_str()), (0, 5260, &[([10, 0, 0, 0], 24)][..], "tok"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every shipped scenario gives the firmware the same boot
    /// configuration through flash as through the simulator's window.
    #[test]
    fn flash_and_window_configurations_agree_for_every_scenario() {
        let dir = dpu_targets::default_chip_path().parent().unwrap().parent().unwrap().join("scenarios");
        let (mut n, mut m, mut t, mut l, mut ec, mut enc) = (0, 0, 0, 0, 0, 0);
        let dk = DeviceKey::generate().unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let sc = Scenario::load(&p).unwrap();
            let c = from_scenario(&sc, &dk).unwrap();
            enc += usize::from(!c.ns_keys.is_empty());
            ec += usize::from(!c.ec_volumes.is_empty());
            m += usize::from(c.management.is_some());
            t += usize::from(!c.subsystems.is_empty());
            l += usize::from(c.namespaces.iter().any(|n| matches!(n.backend, Backend::Local { .. })));
            let mut blob = vec![0u8; 1 << 16];
            let len = dpu_config::blob::render(&c, &mut blob).unwrap();
            let window = dpu_sim::bootcfg::BootConfig::from_scenario(&sc).to_bytes();
            let flash = unwrapped(&blob[..len], &dk);
            assert!(flash == window, "{}: the flash configuration renders differently from the window's", p.display());
            // No key of the scenario is in the flash configuration.
            let mut record = vec![0u8; dpu_config::store::SCRATCH];
            let rn = c.encode(&mut record).unwrap();
            for ns in sc.namespace_cfgs().iter().filter_map(|n| n.encryption.as_ref()) {
                for part in [&ns.0[..], &ns.0[..32], &ns.0[32..]] {
                    assert!(!record[..rn].windows(part.len()).any(|w| w == part), "{}: a key in the clear", p.display());
                    assert!(!blob[..len].windows(part.len()).any(|w| w == part), "{}: a key in the clear in the blob", p.display());
                }
            }
            // And it survives the flash store (postcard, CRC).
            assert_eq!(stored_and_loaded(&c), c);
            n += 1;
        }
        assert!(n >= 5, "scenarios found: {n}");
        assert!(m >= 1, "no scenario with a [management] section was compared");
        assert!(t >= 2, "scenarios with target subsystems compared: {t}");
        assert!(l >= 1, "scenarios with local SSD namespaces compared: {l}");
        assert!(ec >= 3, "scenarios with erasure-coded volumes compared: {ec}");
        assert!(enc >= 2, "scenarios with encrypted namespaces compared: {enc}");
    }

    /// The blob with its wrapped key records unwrapped with `dk` (64-byte
    /// key records, `FLAG_KEYS_WRAPPED` cleared): what the window holds.
    fn unwrapped(blob: &[u8], dk: &DeviceKey) -> Vec<u8> {
        use dpu_hal::regs::bootcfg as b;
        let u16_at = |at: usize| usize::from(u16::from_le_bytes([blob[at], blob[at + 1]]));
        let flags = u16_at(b::HDR_FLAGS) as u16;
        if flags & b::FLAG_KEYS_WRAPPED == 0 {
            return blob.to_vec();
        }
        let key_off = b::HEADER + u16_at(b::HDR_COUNT) * b::RECORD + u16_at(b::HDR_PORTS) * b::PORT_RECORD + u16_at(b::HDR_CTRLS) * b::CTRL_RECORD + b::HOST_RECORD;
        let n = u16_at(b::HDR_KEYS);
        let mut out = blob[..key_off].to_vec();
        out[b::HDR_FLAGS..b::HDR_FLAGS + 2].copy_from_slice(&(flags & !b::FLAG_KEYS_WRAPPED).to_le_bytes());
        for k in 0..n {
            let r = key_off + k * b::KEY_RECORD_WRAPPED;
            out.extend(dk.unwrap(&blob[r..r + b::KEY_RECORD_WRAPPED]).expect("a key wrapped with this device key"));
        }
        out.extend_from_slice(&blob[key_off + n * b::KEY_RECORD_WRAPPED..]);
        out
    }

    fn stored_and_loaded(c: &Config) -> Config {
        use dpu_spi_nor::{ram::RamFlash, Geometry};
        let mut f = RamFlash::new(Geometry { size: 1 << 20, page: 256, subsector: 4096, sector: 65536 });
        let store = dpu_config::store::Store { offset: 0, size: 0x2_0000 };
        let mut scratch = vec![0u8; dpu_config::store::SCRATCH];
        store.save(&mut f, c, &mut scratch, &mut Config::default()).unwrap();
        let mut back = Config::default();
        let r = store.load(&mut f, &mut scratch, &mut back).unwrap();
        assert_eq!(r.copy, Some(0));
        back
    }
}
