//! Scenario `[[initiators]]` entries: simulated remote hosts on a DPU
//! port's segment of the switch that connect to an NVMe/TCP controller
//! (the card's NVMe-oF target, or a target model) and run `[[jobs]]` that
//! name them with `initiator = "name"` instead of `functions`.

use crate::scenario::{check_nqn, parse_cidr, parse_size, parse_time_ns, same_subnet, Scenario};
use crate::ConfigError;
use serde::Deserialize;

fn d_trsvcid() -> u16 {
    4420
}
fn d_hostnqn() -> String {
    "nqn.2014-08.org.nvmexpress:uuid:00000000-d9d0-4000-8000-0000000000a1".into()
}
fn d_io_queues() -> u16 {
    1
}
fn d_queue_depth() -> u16 {
    32
}
fn d_kato() -> String {
    "5s".into()
}
fn d_connect_timeout() -> String {
    "200ms".into()
}
fn d_io_timeout() -> String {
    "1s".into()
}

/// One NVMe/TCP initiator model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiatorCfg {
    pub name: String,
    /// Its own address and prefix, "10.0.0.50/24", in the subnet of
    /// DPU port `port`.
    pub ip: String,
    /// Which DPU port's segment it sits on (index into `network.ports`).
    #[serde(default)]
    pub port: u8,
    /// The controller's address and TCP port (e.g. the card's port
    /// address, 10.0.0.1, or a `[[targets]]` model's).
    pub traddr: String,
    #[serde(default = "d_trsvcid")]
    pub trsvcid: u16,
    pub subnqn: String,
    #[serde(default = "d_hostnqn")]
    pub hostnqn: String,
    /// I/O queues (one TCP connection each), 1..=64.
    #[serde(default = "d_io_queues")]
    pub io_queues: u16,
    /// Entries per I/O queue (Connect SQSIZE + 1), 2..=1024.
    #[serde(default = "d_queue_depth")]
    pub queue_depth: u16,
    /// NVMe/TCP header and data digests (CRC32C) asked for in ICReq.
    #[serde(default)]
    pub hdgst: bool,
    #[serde(default)]
    pub ddgst: bool,
    /// Keep Alive Timeout sent in the admin Connect ("5s"; "off" sends
    /// 0, keep-alive off); a Keep Alive command goes out every KATO/2.
    #[serde(default = "d_kato")]
    pub kato: String,
    /// When it starts connecting, from the start of the workload
    /// (default: at once).
    pub start: Option<String>,
    /// How long it keeps trying to open the admin connection (a
    /// controller still booting refuses or does not answer).
    #[serde(default = "d_connect_timeout")]
    pub connect_timeout: String,
    /// How long an I/O may stay unanswered before its queue's
    /// connection is torn down and what it carried fails.
    #[serde(default = "d_io_timeout")]
    pub io_timeout: String,
    /// Read the controller's discovery log first (TCP 8009, the
    /// discovery NQN) and require an entry for traddr:trsvcid and subnqn.
    #[serde(default)]
    pub discover: bool,
    /// Listen for Namespace Attribute Changed notices as Linux does:
    /// Asynchronous Event Configuration bit 8 and one Asynchronous Event
    /// Request outstanding once the queues are set up; on a notice, read
    /// the Changed Namespace List and identify those namespaces again.
    #[serde(default)]
    pub namespace_notices: bool,
    /// Connect every queue with SQ flow control disabled (CATTR bit 2,
    /// NVMe over Fabrics 1.1 §3.3), as Linux `nvme connect
    /// --disable-sqflow` does: a successful read may then end with a
    /// C2HData flagged SUCCESS and no CapsuleResp (NVMe/TCP 1.0
    /// §3.6.2.8), which is a protocol error otherwise.
    #[serde(default)]
    pub disable_sqflow: bool,
}

impl InitiatorCfg {
    /// KATO in nanoseconds (0: off), valid after the scenario loaded.
    pub fn kato_ns(&self) -> u64 {
        if self.kato == "off" {
            0
        } else {
            parse_time_ns(&self.kato).unwrap_or(0)
        }
    }

    /// (address, prefix) and traddr, valid after the scenario loaded.
    pub fn addrs(&self) -> Option<((std::net::Ipv4Addr, u8), std::net::Ipv4Addr)> {
        Some((parse_cidr(&self.ip).ok()?, self.traddr.parse().ok()?))
    }
}

/// Checks every `[[initiators]]` entry and the jobs that name one.
pub(crate) fn validate(sc: &Scenario) -> Result<(), ConfigError> {
    let f = &sc.source;
    let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
    let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
    let ports = sc.port_addrs();
    let mut names: Vec<&str> = Vec::new();
    let mut addrs: Vec<std::net::Ipv4Addr> = sc.targets.iter().filter_map(|t| t.ip.parse().ok()).collect();
    for (i, c) in sc.initiators.iter().enumerate() {
        let at = |field: &str| format!("initiators[{i}].{field}");
        if c.name.is_empty() || names.contains(&c.name.as_str()) {
            return err(at("name"), format!("`{}` is empty or used twice", c.name));
        }
        names.push(&c.name);
        let Some(&(port_addr, port_prefix)) = ports.get(usize::from(c.port)) else {
            return err(at("port"), format!("port {} does not exist ({} ports in network.ports)", c.port, ports.len()));
        };
        let (ip, prefix) = parse_cidr(&c.ip).map_err(bad(at("ip")))?;
        if prefix != port_prefix || !same_subnet(ip, port_addr, prefix) {
            return err(at("ip"), format!("{} is not in the subnet of DPU port {} ({})", c.ip, c.port, sc.network.ports[usize::from(c.port)]));
        }
        if ip == port_addr || addrs.contains(&ip) {
            return err(at("ip"), format!("{ip} is used by a DPU port, a target or another initiator"));
        }
        addrs.push(ip);
        let traddr: std::net::Ipv4Addr = c.traddr.parse().map_err(|_| ConfigError::field(f, at("traddr"), format!("`{}` is not an IPv4 address", c.traddr)))?;
        if !same_subnet(traddr, ip, prefix) || traddr == ip {
            return err(at("traddr"), format!("{traddr} is not another host on {}'s segment (the initiator has no gateway)", c.ip));
        }
        if c.trsvcid == 0 {
            return err(at("trsvcid"), "port 0 is not a TCP port".into());
        }
        check_nqn(&c.subnqn).map_err(bad(at("subnqn")))?;
        check_nqn(&c.hostnqn).map_err(bad(at("hostnqn")))?;
        if !(1..=64).contains(&c.io_queues) {
            return err(at("io_queues"), format!("{} is out of range 1..=64", c.io_queues));
        }
        if !(2..=1024).contains(&c.queue_depth) {
            return err(at("queue_depth"), format!("{} is out of range 2..=1024", c.queue_depth));
        }
        if c.kato != "off" {
            let kato = parse_time_ns(&c.kato).map_err(bad(at("kato")))?;
            if kato % 1_000_000 != 0 {
                return err(at("kato"), format!("{} must be whole milliseconds (or \"off\")", c.kato));
            }
        }
        if let Some(t) = &c.start {
            parse_time_ns(t).map_err(bad(at("start")))?;
        }
        parse_time_ns(&c.connect_timeout).map_err(bad(at("connect_timeout")))?;
        parse_time_ns(&c.io_timeout).map_err(bad(at("io_timeout")))?;
    }
    for (i, j) in sc.jobs.iter().enumerate() {
        let at = |field: &str| format!("jobs[{i}].{field}");
        let Some(name) = &j.initiator else {
            if j.functions.is_empty() {
                return err(at("functions"), "lists no function (or name an `initiator`)".into());
            }
            continue;
        };
        if !j.functions.is_empty() {
            return err(at("initiator"), "a job runs on PCIe functions or on an initiator, not both".into());
        }
        let Some(c) = sc.initiators.iter().find(|c| &c.name == name) else {
            return err(at("initiator"), format!("no [[initiators]] is named `{name}`"));
        };
        if j.nsid == 0 {
            return err(at("nsid"), "must be at least 1".into());
        }
        if j.attached.is_some() || j.startdelay.is_some() || j.scattered || j.buf_offset != 0 {
            return err(at("initiator"), "an initiator job takes no attached, startdelay, scattered or buf_offset (PCIe host options)".into());
        }
        if j.numjobs > 1 && j.region.is_none() {
            return err(at("region"), "an initiator job with numjobs > 1 needs a region to share out".into());
        }
        let slots = u32::from(c.io_queues) * u32::from(c.queue_depth - 1);
        if j.iodepth > slots {
            return err(at("iodepth"), format!("{} is more than initiator `{name}` has queue slots ({} queues x {} commands)", j.iodepth, c.io_queues, c.queue_depth - 1));
        }
        // When the controller is a target model of the scenario, the
        // namespace's size is known: check the job fits it.
        let bs = parse_size(&j.bs).unwrap_or(4096);
        let model = sc.targets.iter().find(|t| t.ip == c.traddr && t.port == c.trsvcid && t.nqn == c.subnqn);
        if let Some(ns) = model.and_then(|t| t.namespaces.get(j.nsid as usize - 1)) {
            let bytes = parse_size(&ns.size).unwrap_or(0);
            if !bs.is_multiple_of(u64::from(ns.block_size)) {
                return err(at("bs"), format!("{bs} is not a multiple of the namespace block size {}", ns.block_size));
            }
            let offset = j.offset.as_deref().and_then(|o| parse_size(o).ok()).unwrap_or(0);
            let region = j.region.as_deref().and_then(|r| parse_size(r).ok()).unwrap_or(bytes.saturating_sub(offset));
            if offset.saturating_add(region) > bytes {
                return err(at("region"), format!("offset {offset} + region {region} is past the end of namespace {} ({bytes} bytes)", j.nsid));
            }
            let blocks = region / u64::from(j.numjobs) / bs;
            if u64::from(j.iodepth) > blocks {
                return err(at("iodepth"), format!("{} is more than the {blocks} blocks of {bs} bytes in each job's share of the region", j.iodepth));
            }
        } else if model.is_some() {
            return err(at("nsid"), format!("the target model at {} has no namespace {}", c.traddr, j.nsid));
        }
    }
    // Two verified jobs on one initiator and namespace must not share blocks.
    for (i, a) in sc.jobs.iter().enumerate() {
        for (k, b) in sc.jobs.iter().enumerate().skip(i + 1) {
            let (Some(ia), Some(ib)) = (&a.initiator, &b.initiator) else { continue };
            let ca = sc.initiators.iter().find(|c| &c.name == ia);
            let cb = sc.initiators.iter().find(|c| &c.name == ib);
            let same_ns = match (ca, cb) {
                (Some(x), Some(y)) => x.traddr == y.traddr && x.trsvcid == y.trsvcid && x.subnqn == y.subnqn && a.nsid == b.nsid,
                _ => false,
            };
            if !same_ns || !(a.verify || b.verify) {
                continue;
            }
            let range = |j: &crate::scenario::JobCfg| {
                let o = j.offset.as_deref().and_then(|o| parse_size(o).ok()).unwrap_or(0);
                (o, j.region.as_deref().and_then(|r| parse_size(r).ok()).map_or(u64::MAX, |r| o + r))
            };
            let (ra, rb) = (range(a), range(b));
            if ra.0 < rb.1 && rb.0 < ra.1 {
                return err(
                    format!("jobs[{k}].region"),
                    format!("job `{}` shares blocks of namespace {} with verified job `{}`: give them separate regions (offset, region)", b.name, b.nsid, a.name),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{ConfigError, Scenario};

    const BASE: &str = r#"
[scenario]
name = "i"
[network]
ports = ["10.0.0.1/24", "10.0.1.1/24"]
[[targets]]
name = "t0"
ip = "10.0.0.10"
nqn = "nqn.2026-12.io.dpusim:t0"
namespaces = [{ size = "1MiB" }, { size = "1MiB", block_size = 4096 }]
[[initiators]]
name = "h0"
ip = "10.0.0.50/24"
traddr = "10.0.0.10"
subnqn = "nqn.2026-12.io.dpusim:t0"
io_queues = 2
queue_depth = 16
hdgst = true
[[jobs]]
name = "v"
initiator = "h0"
nsid = 2
rw = "randrw"
bs = "4k"
iodepth = 8
size = "256KiB"
verify = true
"#;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        Scenario::parse("t.toml", text)
    }

    fn field_of(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn an_initiator_and_its_job_parse_with_defaults() {
        let s = parse(BASE).unwrap();
        let c = &s.initiators[0];
        assert_eq!((c.port, c.trsvcid, c.io_queues, c.queue_depth, c.hdgst, c.ddgst), (0, 4420, 2, 16, true, false));
        assert_eq!((c.kato_ns(), c.start.as_deref(), c.connect_timeout.as_str()), (5_000_000_000, None, "200ms"));
        assert_eq!(c.addrs(), Some((("10.0.0.50".parse().unwrap(), 24), "10.0.0.10".parse().unwrap())));
        assert_eq!((s.jobs[0].initiator.as_deref(), s.jobs[0].functions.len()), (Some("h0"), 0));
        // The card's own port address is a valid controller address.
        assert!(parse(&BASE.replace("traddr = \"10.0.0.10\"", "traddr = \"10.0.0.1\"")).is_ok());
    }

    /// Each mistake is reported with the field that holds it.
    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            ("ip = \"10.0.0.50/24\"", "ip = \"10.0.1.50/24\"", "initiators[0].ip"),
            ("ip = \"10.0.0.50/24\"", "ip = \"10.0.0.10/24\"", "initiators[0].ip"),
            ("ip = \"10.0.0.50/24\"", "ip = \"10.0.0.50\"", "initiators[0].ip"),
            ("io_queues = 2", "io_queues = 2\nport = 2", "initiators[0].port"),
            ("traddr = \"10.0.0.10\"", "traddr = \"10.0.1.10\"", "initiators[0].traddr"),
            ("subnqn = \"nqn.2026-12.io.dpusim:t0\"\nio", "subnqn = \"x\"\nio", "initiators[0].subnqn"),
            ("io_queues = 2", "io_queues = 0", "initiators[0].io_queues"),
            ("queue_depth = 16", "queue_depth = 1", "initiators[0].queue_depth"),
            ("hdgst = true", "hdgst = true\nkato = \"1.5ms\"", "initiators[0].kato"),
            ("initiator = \"h0\"", "initiator = \"h9\"", "jobs[0].initiator"),
            ("initiator = \"h0\"", "initiator = \"h0\"\nfunctions = [0]", "jobs[0].initiator"),
            ("initiator = \"h0\"", "", "jobs[0].functions"),
            ("nsid = 2", "nsid = 3", "jobs[0].nsid"),
            ("iodepth = 8", "iodepth = 31", "jobs[0].iodepth"),
            ("bs = \"4k\"\n", "bs = \"512\"\n", "jobs[0].bs"),
            ("size = \"256KiB\"", "size = \"256KiB\"\nregion = \"2MiB\"", "jobs[0].region"),
            ("size = \"256KiB\"", "size = \"256KiB\"\nstartdelay = \"1ms\"", "jobs[0].initiator"),
        ];
        for (from, to, field) in cases {
            let text = BASE.replacen(from, to, 1);
            assert_ne!(text, BASE, "{from}");
            assert_eq!(field_of(&text), field, "{from} -> {to}");
        }
        let two = format!("{BASE}[[initiators]]\nname = \"h0\"\nip = \"10.0.0.51/24\"\ntraddr = \"10.0.0.10\"\nsubnqn = \"nqn.2026-12.io.dpusim:t0\"\n");
        assert_eq!(field_of(&two), "initiators[1].name");
        // A second verified job on the same namespace needs its own region.
        let second = format!("{BASE}[[jobs]]\nname = \"w\"\ninitiator = \"h0\"\nnsid = 2\nrw = \"randwrite\"\nbs = \"4k\"\niodepth = 2\nsize = \"64KiB\"\n");
        assert_eq!(field_of(&second), "jobs[1].region");
        let apart = BASE.replacen("verify = true", "verify = true\nregion = \"512KiB\"", 1) + "[[jobs]]\nname = \"w\"\ninitiator = \"h0\"\nnsid = 2\nrw = \"randwrite\"\nbs = \"4k\"\niodepth = 2\nsize = \"64KiB\"\noffset = \"512KiB\"\n";
        assert!(parse(&apart).is_ok(), "{:?}", parse(&apart).err());
    }
}
