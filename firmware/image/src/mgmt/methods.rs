//! The management methods. Names and result shapes follow SPDK's JSON-RPC
//! (`doc/jsonrpc.md` in SPDK) where SPDK has the concept; `dpu_*` are
//! ours. The methods that change the configuration are in [`super::live`]
//! (block devices, their mapping to functions), [`super::nvmf`] (the
//! NVMe/TCP target's subsystems) and [`super::settings`] (port
//! addresses, initiator and TCP settings, the management rules);
//! unknown parameters and wrong types are -32602 naming the parameter.
//!
//! Block devices are named `fn<F>n<N>`: namespace N of PCIe function F
//! (0 = PF, F = VF F); `sub<S>n<N>`: namespace N of NVMe/TCP target
//! subsystem S (its index in the configuration). Remote controllers are `nvme<i>`, i their index
//! in the configuration; one attached at run time keeps the name it was
//! given, and its block devices are `<name>n<nsid>` ([`super::nvme`]). RAM block devices created at run time keep the
//! name they were given (`Malloc0`, ...).

use super::crypto::Keys;
use super::live::{self, Live};
use super::nvme::Nvme;
use super::nvmf::Nvmf;
use super::persist::Persist;
use super::update::Update;
use crate::bootcfg::{self, Backend};
use crate::net;
use dpu_hal::memory_map::{MAX_FUNCTIONS, TIMEBASE_HZ};
use dpu_rpc::json::Value;
use dpu_rpc::{code, Params, RpcError, Writer};

/// What the fabrics service knows beyond what it publishes: each remote
/// controller's admin-queue step, by index.
pub struct Ctx {
    pub ctrl_state: [&'static str; bootcfg::MAX_CTRLS],
}

/// Every method, in the order `rpc_get_methods` lists them.
pub const METHODS: &[&str] = &[
    "rpc_get_methods",
    "spdk_get_version",
    "framework_get_reactors",
    "bdev_get_bdevs",
    "bdev_nvme_get_controllers",
    "dpu_get_ports",
    "dpu_fw_get_status",
    "bdev_malloc_create",
    "bdev_malloc_delete",
    "dpu_ns_attach",
    "dpu_ns_detach",
    "dpu_fw_download",
    "dpu_fw_commit",
    "dpu_config_get_status",
    "nvmf_get_subsystems",
    "nvmf_create_subsystem",
    "nvmf_delete_subsystem",
    "nvmf_subsystem_add_listener",
    "nvmf_subsystem_remove_listener",
    "nvmf_subsystem_add_ns",
    "nvmf_subsystem_remove_ns",
    "nvmf_subsystem_add_host",
    "nvmf_subsystem_remove_host",
    "bdev_nvme_attach_controller",
    "bdev_nvme_detach_controller",
    "accel_crypto_key_create",
    "accel_crypto_keys_get",
    "accel_crypto_key_destroy",
    "bdev_crypto_create",
    "bdev_crypto_delete",
    "bdev_ec_create",
    "bdev_ec_delete",
    "dpu_set_port",
    "dpu_nvme_set_options",
    "dpu_nvme_get_options",
    "dpu_port_set_options",
    "dpu_port_get_options",
    "dpu_mgmt_set",
    "dpu_mgmt_get",
    "bdev_get_iostat",
    "dpu_get_function_iostat",
    "dpu_sriov_get",
    "dpu_sriov_set_total_vfs",
];

/// What the methods that change something keep between calls.
pub struct Changes {
    pub live: Live,
    /// The NVMe/TCP target's subsystems made at run time.
    pub nvmf: Nvmf,
    pub update: Update,
    pub persist: Persist,
    /// Remote controllers attached at run time.
    pub nvme: Nvme,
    /// Crypto keys (wrapped) made at run time.
    pub keys: Keys,
}

/// Runs `method`, writing its result.
pub fn call(method: &str, params: Option<Value<'_>>, w: &mut Writer<'_>, ctx: &Ctx, st: &mut Changes) -> Result<(), RpcError> {
    let p = Params::new(params)?;
    let live = &mut st.live;
    let nvme = &mut st.nvme;
    match method {
        "rpc_get_methods" => {
            // SPDK's `current` (methods allowed in the current state):
            // all of ours always are.
            p.only(&["current"])?;
            p.bool("current")?;
            w.begin_array();
            for m in METHODS {
                w.string(m);
            }
            w.end_array();
            Ok(())
        }
        "spdk_get_version" => {
            p.only(&[])?;
            version(w);
            Ok(())
        }
        "framework_get_reactors" => {
            p.only(&[])?;
            reactors(w);
            Ok(())
        }
        "bdev_get_bdevs" => {
            p.only(&["name"])?;
            let mut b = [0u8; 32];
            bdevs(w, p.str("name", &mut b)?, live, nvme)
        }
        "bdev_nvme_get_controllers" => {
            p.only(&["name"])?;
            let mut b = [0u8; 32];
            controllers(w, p.str("name", &mut b)?, ctx, nvme)
        }
        "dpu_get_ports" => {
            p.only(&[])?;
            ports(w);
            Ok(())
        }
        "dpu_fw_get_status" => {
            p.only(&[])?;
            fw_status(w, &st.update);
            Ok(())
        }
        "dpu_config_get_status" => {
            p.only(&[])?;
            st.persist.status(&st.live, &st.nvmf, &st.nvme, &st.keys, w);
            Ok(())
        }
        "nvmf_get_subsystems" => {
            p.only(&[])?;
            subsystems(w, &st.nvmf, live);
            Ok(())
        }
        "dpu_fw_download" => st.update.download(&p, w),
        "dpu_fw_commit" => st.update.commit(&p, w),
        "bdev_malloc_create" => live.malloc_create(&p, w),
        "bdev_malloc_delete" => {
            in_subsystem(&p, &st.nvmf, "name")?;
            live.malloc_delete(&p, w)
        }
        "dpu_ns_attach" => {
            in_subsystem(&p, &st.nvmf, "bdev")?;
            live.ns_attach(&p, w)
        }
        "nvmf_create_subsystem" => st.nvmf.create(&p, w),
        "nvmf_delete_subsystem" => st.nvmf.delete(&p, w),
        "nvmf_subsystem_add_listener" => st.nvmf.add_listener(&p, w),
        "nvmf_subsystem_remove_listener" => st.nvmf.remove_listener(&p, w),
        "nvmf_subsystem_add_ns" => st.nvmf.add_ns(&p, w, live),
        "nvmf_subsystem_remove_ns" => st.nvmf.remove_ns(&p, w),
        "nvmf_subsystem_add_host" => st.nvmf.host(&p, w, true),
        "nvmf_subsystem_remove_host" => st.nvmf.host(&p, w, false),
        "dpu_ns_detach" => live.ns_detach(&p, w),
        "accel_crypto_key_create" => st.keys.create(&p, w),
        "accel_crypto_keys_get" => st.keys.list(&p, w),
        "accel_crypto_key_destroy" => st.keys.destroy(&p, w, live),
        "bdev_crypto_create" => {
            in_subsystem(&p, &st.nvmf, "base_bdev_name")?;
            st.keys.bdev_create(&p, w, live)
        }
        "bdev_crypto_delete" => st.keys.bdev_delete(&p, w, live),
        "bdev_ec_create" => live.ec_create(&p, w),
        "bdev_ec_delete" => live.ec_delete(&p, w),
        "bdev_get_iostat" => super::iostat::bdev_get_iostat(&p, w, live),
        "dpu_get_function_iostat" => super::iostat::function_iostat(&p, w),
        "dpu_sriov_get" => super::sriov::get(&p, w),
        "dpu_sriov_set_total_vfs" => super::sriov::set_total_vfs(&p, w, live),
        "bdev_nvme_detach_controller" => nvme.detach(&p, w, live),
        "dpu_set_port" => super::settings::set_port(&p, w, nvme, &st.nvmf, &mut st.persist),
        "dpu_nvme_set_options" => super::settings::nvme_set_options(&p, w, &mut st.persist),
        "dpu_nvme_get_options" => super::settings::nvme_get_options(&p, w),
        "dpu_port_set_options" => super::settings::port_set_options(&p, w, &mut st.persist),
        "dpu_port_get_options" => super::settings::port_get_options(&p, w),
        // Answered by the server, which owns its rules (`super::server`).
        "dpu_mgmt_set" | "dpu_mgmt_get" => Err(RpcError::new(code::INTERNAL_ERROR, "internal error: not handled by the server")),
        // Answered when the connection is made (`super::server`).
        "bdev_nvme_attach_controller" => Err(RpcError::new(code::INTERNAL_ERROR, "internal error: attach not deferred")),
        _ => Err(RpcError::fmt(code::METHOD_NOT_FOUND, format_args!("method not found: `{method}` (rpc_get_methods lists them)"))),
    }
}

/// -16 when block device parameter `param` is a namespace of a target
/// subsystem (it cannot be deleted or mapped to a function meanwhile).
fn in_subsystem(p: &Params<'_>, nvmf: &Nvmf, param: &str) -> Result<(), RpcError> {
    let mut nb = [0u8; live::NAME_MAX + 1];
    if let Ok(Some(name)) = p.str(param, &mut nb) {
        if let Some(nqn) = nvmf.user_of(name) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is a namespace of {nqn}; remove it first")));
        }
    }
    Ok(())
}

fn version(w: &mut Writer<'_>) {
    w.begin_object();
    w.field_str("version", concat!("dpu-fw v", env!("CARGO_PKG_VERSION")));
    w.key("fields");
    w.begin_object();
    for (k, v) in [("major", env!("CARGO_PKG_VERSION_MAJOR")), ("minor", env!("CARGO_PKG_VERSION_MINOR")), ("patch", env!("CARGO_PKG_VERSION_PATCH"))] {
        w.field_u64(k, v.parse().unwrap_or(0));
    }
    w.field_str("suffix", "");
    w.end_object();
    w.end_object();
}

/// The data-plane reactors (one per core) and their NVMe engines' I/O
/// counters, summed over the functions that have namespaces (the
/// counters live in other clusters' memory: reading every function's of
/// every core would hold the network service for a millisecond).
fn reactors(w: &mut Writer<'_>) {
    use core::sync::atomic::Ordering::Relaxed;
    let mut used = [false; MAX_FUNCTIONS];
    for ns in bootcfg::namespaces() {
        if let Some(u) = used.get_mut(usize::from(ns.function)) {
            *u = true;
        }
    }
    w.begin_object();
    w.field_u64("tick_rate", TIMEBASE_HZ);
    w.key("reactors");
    w.begin_array();
    for q in 0..net::DATA_CORES {
        let hart = net::FIRST_DATA_HART + q;
        let (mut rd, mut wr, mut br, mut bw) = (0, 0, 0, 0);
        for (c, _) in crate::nvme::io::COUNTERS[hart].iter().zip(used).filter(|(_, u)| *u) {
            rd += c.read_cmds.load(Relaxed);
            wr += c.write_cmds.load(Relaxed);
            br += c.bytes_read.load(Relaxed);
            bw += c.bytes_written.load(Relaxed);
        }
        w.begin_object();
        w.field_u64("lcore", hart as u64);
        w.field_u64("cluster", (hart / dpu_hal::memory_map::CORES_PER_CLUSTER) as u64);
        w.field_u64("read_cmds", rd);
        w.field_u64("write_cmds", wr);
        w.field_u64("bytes_read", br);
        w.field_u64("bytes_written", bw);
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

fn ip(w: &mut Writer<'_>, a: [u8; 4]) {
    w.string_fmt(format_args!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]));
}

/// An NVMe/TCP transport ID's address fields (SPDK's `trid`,
/// `listen_addresses`): trtype, adrfam, traddr, trsvcid.
fn trid(w: &mut Writer<'_>, addr: [u8; 4], trsvcid: u16) {
    w.field_str("trtype", "TCP");
    w.field_str("adrfam", "IPv4");
    w.key("traddr");
    ip(w, addr);
    w.key("trsvcid");
    w.string_fmt(format_args!("{trsvcid}"));
}

fn state_name(ns: &bootcfg::Namespace) -> &'static str {
    if bootcfg::ready(ns) {
        return "ready";
    }
    if matches!(ns.backend, Backend::Remote { .. } | Backend::Local { .. }) {
        return match bootcfg::state(ns.index) {
            bootcfg::NS_MISMATCH => "mismatch",
            bootcfg::NS_OFFLINE => "offline",
            _ => "pending",
        };
    }
    if bootcfg::key_failed(ns) {
        return "key-failed";
    }
    "pending"
}

/// SPDK `bdev_get_bdevs`: every namespace of the boot configuration and
/// every RAM block device created since as a block device (or the one
/// named). Key material is never reported, only the cipher.
fn bdevs(w: &mut Writer<'_>, name: Option<&str>, live: &Live, nvme: &Nvme) -> Result<(), RpcError> {
    let (only, only_live) = match name {
        Some(n) => match (boot_bdev(n), live.bdev(n)) {
            (Some(ns), _) => (Some(ns), None),
            (None, Some(m)) => (None, Some(m)),
            (None, None) => return Err(no_device("bdev", n)),
        },
        None => (None, None),
    };
    w.begin_array();
    let boot = bootcfg::namespaces().filter(|ns| only_live.is_none() && only.is_none_or(|o| o.index == ns.index));
    for ns in boot {
        let g = ns.geometry;
        w.begin_object();
        w.key("name");
        bdev_name(w, ns);
        let (product, kind) = match ns.backend {
            Backend::Ram(_) => ("RAM disk", "ram"),
            Backend::Remote { .. } => ("NVMe-oF namespace", "remote"),
            Backend::Ec { .. } => ("Erasure-coded volume", "ec"),
            Backend::Local { .. } => ("Local NVMe SSD namespace", "local"),
        };
        w.field_str("product_name", product);
        w.field_u64("block_size", 1u64 << g.block_shift);
        w.field_u64("num_blocks", g.blocks);
        w.key("driver_specific");
        w.begin_object();
        match ns.subsystem.and_then(|s| bootcfg::subsystem(usize::from(s))) {
            Some(s) => w.field_str("subsystem", core::str::from_utf8(s.nqn()).unwrap_or("")),
            None => w.field_u64("function", u64::from(ns.function)),
        }
        w.field_u64("nsid", u64::from(ns.nsid));
        w.field_str("backend", kind);
        w.field_str("state", state_name(ns));
        w.key("encryption");
        match ns.crypto {
            Some(_) => w.string("aes-256-xts"),
            None => w.null(),
        }
        match ns.backend {
            Backend::Ram(_) => {}
            Backend::Local { ssd, nsid } => {
                w.field_u64("ssd", u64::from(ssd));
                w.field_u64("ssd_nsid", u64::from(nsid));
            }
            Backend::Remote { ctrl, nsid } => {
                w.key("controller");
                w.string_fmt(format_args!("nvme{ctrl}"));
                w.field_u64("remote_nsid", u64::from(nsid));
            }
            Backend::Ec { vol } => {
                if let Some(v) = bootcfg::ec_volume(vol) {
                    w.field_u64("k", u64::from(v.k));
                    w.field_u64("m", u64::from(v.m));
                    w.key("members");
                    w.begin_array();
                    for &(c, n) in &v.members[..v.width()] {
                        w.string_fmt(format_args!("nvme{c}n{n}"));
                    }
                    w.end_array();
                }
            }
        }
        w.end_object();
        w.end_object();
    }
    for m in live.bdevs().filter(|m| only.is_none() && only_live.is_none_or(|o| o.name() == m.name())) {
        malloc_bdev(w, m, live, nvme);
    }
    w.end_array();
    Ok(())
}

/// The namespace of the boot configuration named `name` (`fn<F>n<N>`,
/// `sub<S>n<N>`).
pub(super) fn boot_bdev(name: &str) -> Option<&'static bootcfg::Namespace> {
    if let Some((f, nsid)) = live::parse_fn_name(name) {
        return bootcfg::namespace(f, nsid);
    }
    let (s, n) = name.strip_prefix("sub")?.split_once('n')?;
    bootcfg::subsystem_namespace(s.parse().ok()?, n.parse().ok()?)
}

/// A namespace of the boot configuration's block device name.
fn bdev_name(w: &mut Writer<'_>, ns: &bootcfg::Namespace) {
    match ns.subsystem {
        Some(s) => w.string_fmt(format_args!("sub{}n{}", s, ns.nsid)),
        None => w.string_fmt(format_args!("fn{}n{}", ns.function, ns.nsid)),
    }
}

/// SPDK `nvmf_get_subsystems`: the NVMe/TCP target's subsystems, where
/// they listen, who may connect, and their namespaces' block devices:
/// the boot configuration's, then those made at run time.
fn subsystems(w: &mut Writer<'_>, nvmf: &Nvmf, live: &Live) {
    w.begin_array();
    for i in 0..bootcfg::subsystems() {
        let Some(s) = bootcfg::subsystem(i) else { continue };
        w.begin_object();
        w.field_str("nqn", core::str::from_utf8(s.nqn()).unwrap_or(""));
        w.field_str("subtype", "NVMe");
        w.key("listen_addresses");
        w.begin_array();
        for (p, port) in net::settings::addresses().filter(|(p, _)| *p < 8 && s.ports & (1 << p) != 0) {
            w.begin_object();
            trid(w, port.ip, s.trsvcid);
            w.key("port");
            w.string_fmt(format_args!("eth{p}"));
            w.end_object();
        }
        w.end_array();
        w.field_bool("allow_any_host", s.hosts().next().is_none());
        w.key("hosts");
        w.begin_array();
        for h in s.hosts() {
            w.begin_object();
            w.field_str("nqn", core::str::from_utf8(h).unwrap_or(""));
            w.end_object();
        }
        w.end_array();
        w.field_str("model_number", crate::nvmf::target::MODEL);
        w.field_u64("max_namespaces", dpu_hal::memory_map::MAX_SUBSYSTEM_NAMESPACES as u64);
        w.key("namespaces");
        w.begin_array();
        for ns in bootcfg::namespaces().filter(|n| n.subsystem == Some(i as u8)) {
            w.begin_object();
            w.field_u64("nsid", u64::from(ns.nsid));
            w.key("bdev_name");
            bdev_name(w, ns);
            w.key("name");
            bdev_name(w, ns);
            w.end_object();
        }
        w.end_array();
        w.end_object();
    }
    nvmf.each(|s, names| {
        w.begin_object();
        w.field_str("nqn", s.nqn.as_str());
        w.field_str("subtype", "NVMe");
        w.key("listen_addresses");
        w.begin_array();
        for l in s.listeners.iter().flatten() {
            let Some(port) = net::settings::port(usize::from(l.port)) else { continue };
            w.begin_object();
            trid(w, port.ip, l.trsvcid);
            w.key("port");
            w.string_fmt(format_args!("eth{}", l.port));
            w.end_object();
        }
        w.end_array();
        w.field_bool("allow_any_host", s.allow_any);
        w.key("hosts");
        w.begin_array();
        for h in s.hosts() {
            w.begin_object();
            w.field_str("nqn", h.as_str());
            w.end_object();
        }
        w.end_array();
        w.field_str("serial_number", s.serial.as_str());
        w.field_str("model_number", if s.model.as_str().is_empty() { crate::nvmf::target::MODEL } else { s.model.as_str() });
        w.field_u64("max_namespaces", u64::from(s.max_namespaces));
        w.field_u64("ns_changes", u64::from(s.ns_generation));
        w.key("namespaces");
        w.begin_array();
        for (n, name) in s.ns.iter().zip(names) {
            let (Some(n), Some(name)) = (n, name) else { continue };
            w.begin_object();
            w.field_u64("nsid", u64::from(n.nsid));
            w.field_str("bdev_name", name);
            w.field_str("name", name);
            w.field_u64("num_blocks", live.bdev(name).map_or(n.blocks, |b| b.blocks));
            w.end_object();
        }
        w.end_array();
        w.end_object();
    });
    w.end_array();
}

/// A block device made at run time (RAM, or a namespace of a remote
/// controller attached at run time), as `bdev_get_bdevs` lists it.
fn malloc_bdev(w: &mut Writer<'_>, m: &live::Malloc, live: &Live, nvme: &Nvme) {
    w.begin_object();
    w.field_str("name", m.name());
    let product = match (m.crypto, m.ec, m.remote) {
        (Some(_), _, _) => "crypto",
        (None, Some(_), _) => "Erasure-coded volume",
        (None, None, Some(_)) => "NVMe disk",
        (None, None, None) => "Malloc disk",
    };
    w.field_str("product_name", product);
    w.field_u64("block_size", 1u64 << m.block_shift);
    w.field_u64("num_blocks", m.blocks);
    w.key("driver_specific");
    w.begin_object();
    match (m.ec.filter(|_| m.crypto.is_none()), m.remote) {
        (Some(vol), _) => ec_fields(w, live, vol),
        (None, Some((ctrl, nsid))) => {
            w.field_str("backend", "remote");
            w.field_str("controller", nvme.by_index(usize::from(ctrl)).map_or("", |c| c.name()));
            w.field_u64("remote_nsid", u64::from(nsid));
        }
        (None, None) => w.field_str("backend", "ram"),
    }
    if let Some(vol) = m.member_of {
        w.field_str("ec_volume", live.ec_name(vol));
    }
    // SPDK's crypto bdev: its base and key names (never the key).
    if let Some(c) = m.crypto {
        w.field_str("base_bdev_name", c.base());
        w.field_str("key_name", c.key());
        w.field_str("cipher", "AES_XTS");
    }
    if m.claimed {
        w.field_bool("claimed", true);
    }
    w.field_str("state", m.map.state());
    match m.map {
        live::Map::Attaching { function, nsid } | live::Map::Attached { function, nsid } | live::Map::Detaching { function, nsid } => {
            w.field_u64("function", u64::from(function));
            w.field_u64("nsid", u64::from(nsid));
        }
        live::Map::None => {}
    }
    w.end_object();
    w.end_object();
}

/// A run-time EC volume's fields in `bdev_get_bdevs` (k, m and members
/// as for a boot volume, by block device name; its spares and health).
fn ec_fields(w: &mut Writer<'_>, live: &Live, vol: u16) {
    w.field_str("backend", "ec");
    let Some(v) = live.ec_volume(vol) else { return };
    let d = v.def;
    w.field_u64("volume", u64::from(vol));
    w.field_u64("k", u64::from(d.k));
    w.field_u64("m", u64::from(d.m));
    w.key("members");
    w.begin_array();
    for name in live.ec_members(vol).take(d.width()) {
        w.string(name);
    }
    w.end_array();
    w.key("spares");
    w.begin_array();
    for name in live.ec_members(vol).skip(d.width()) {
        w.string(name);
    }
    w.end_array();
    w.field_u64("stripes", v.stripes);
    let h = &crate::block::ec::HEALTH[usize::from(vol) % crate::block::ec::HEALTH.len()];
    w.field_str("health", if !h.started() { "starting" } else if h.lost() == 0 { "optimal" } else if h.lost().count_ones() <= u32::from(d.m) { "degraded" } else { "failed" });
    w.field_u64("members_lost", u64::from(h.lost().count_ones()));
}

/// SPDK answers a name that matches nothing with -ENODEV.
pub(crate) fn no_device(what: &str, name: &str) -> RpcError {
    RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: {what} `{name}`"))
}

/// SPDK `bdev_nvme_get_controllers`: the remote NVMe/TCP controllers,
/// with the state of the fabrics service's admin queue to each.
fn controllers(w: &mut Writer<'_>, name: Option<&str>, ctx: &Ctx, nvme: &Nvme) -> Result<(), RpcError> {
    let n = bootcfg::controllers().min(bootcfg::MAX_CTRLS);
    let only = match name {
        Some(s) => Some(
            nvme.ctrls()
                .find(|c| c.name() == s)
                .map(|c| c.index)
                .or_else(|| s.strip_prefix("nvme").and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < n))
                .ok_or_else(|| no_device("controller", s))?,
        ),
        None => None,
    };
    w.begin_array();
    for i in (0..bootcfg::MAX_CTRLS).filter(|&i| only.is_none_or(|o| o == i)) {
        let run_time = nvme.by_index(i);
        let Some(c) = crate::nvmf::ctrls::def(i).filter(|_| i < n || run_time.is_some()) else { continue };
        let p = crate::nvmf::published(i);
        w.begin_object();
        w.key("name");
        match run_time {
            Some(r) => w.string(r.name()),
            None => w.string_fmt(format_args!("nvme{i}")),
        }
        // Ours: attached through the API (its block devices `<name>n<nsid>`).
        w.field_bool("run_time", run_time.is_some());
        w.key("ctrlrs");
        w.begin_array();
        w.begin_object();
        w.field_str("state", if p.up { "enabled" } else { "disconnected" });
        w.field_str("admin_queue", ctx.ctrl_state[i]);
        w.key("trid");
        w.begin_object();
        trid(w, c.traddr, c.trsvcid);
        w.field_str("subnqn", core::str::from_utf8(c.subnqn()).unwrap_or(""));
        w.end_object();
        w.field_u64("cntlid", u64::from(p.cntlid));
        w.field_u64("associations", u64::from(p.generation));
        w.field_u64("io_queues", u64::from(p.queues));
        w.field_u64("max_transfer", u64::from(p.max_transfer));
        w.field_u64("in_capsule_data", u64::from(p.inline));
        w.key("host");
        w.begin_object();
        w.field_str("nqn", core::str::from_utf8(c.hostnqn()).unwrap_or(""));
        w.end_object();
        // Ours: the digests this controller's connections ask for.
        w.field_bool("hdgst", c.digests.header);
        w.field_bool("ddgst", c.digests.data);
        w.end_object();
        w.end_array();
        w.end_object();
    }
    w.end_array();
    Ok(())
}

/// Ours: the Ethernet ports, their addresses, link and counters.
fn ports(w: &mut Writer<'_>) {
    use dpu_hal::regs::nic as r;
    let mgmt = bootcfg::management().map(|m| usize::from(m.port));
    w.begin_array();
    for (i, cfg) in net::settings::addresses() {
        let Some(p) = dpu_hal::nic::Port::new(i) else { continue };
        let (up, speed) = p.link();
        let m = p.mac();
        w.begin_object();
        w.key("name");
        w.string_fmt(format_args!("eth{i}"));
        w.key("mac");
        w.string_fmt(format_args!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]));
        w.key("ip");
        ip(w, cfg.ip);
        w.field_u64("prefix", u64::from(cfg.prefix));
        w.field_u64("mtu", u64::from(cfg.mtu));
        w.field_str("link", if up { "up" } else { "down" });
        w.field_u64("speed_gbps", u64::from(speed));
        w.field_bool("management", mgmt == Some(i));
        w.key("counters");
        w.begin_object();
        for (k, reg) in [
            ("rx_frames", r::RX_FRAMES),
            ("rx_bytes", r::RX_BYTES),
            ("tx_frames", r::TX_FRAMES),
            ("tx_bytes", r::TX_BYTES),
            ("rx_no_buffer", r::RX_NO_BUFFER),
            ("rx_csum_errors", r::RX_CSUM_ERRORS),
            ("rx_oversize", r::RX_OVERSIZE),
            ("tx_errors", r::TX_ERRORS),
        ] {
            w.field_u64(k, p.counter(reg));
        }
        w.end_object();
        w.end_object();
    }
    w.end_array();
}

/// Ours: how the card booted and what the firmware slots hold.
fn fw_status(w: &mut Writer<'_>, update: &Update) {
    let info = crate::boot::info();
    let log = crate::fwupdate::slot_log();
    w.begin_object();
    w.field_str("booted_from", if info.is_some() { "flash" } else { "elf" });
    w.field_str("running_version", concat!("dpu-fw v", env!("CARGO_PKG_VERSION")));
    match info {
        Some(i) => {
            w.field_u64("active_slot", u64::from(crate::fwupdate::nvme_slot(i.slot)));
            w.field_bool("trial", i.trial);
            w.key("image_version");
            w.string_fmt(format_args!("{}.{}.{}", i.version.major, i.version.minor, i.version.revision));
            w.field_u64("security_counter", u64::from(i.security_counter));
            w.field_u64("otp_counter", u64::from(i.otp_counter));
        }
        None => {
            w.key("active_slot");
            w.null();
        }
    }
    w.field_bool("update_available", crate::fwupdate::available());
    w.key("update");
    update.status(w);
    w.key("slots");
    w.begin_array();
    for k in 0..usize::from(dpu_nvme::firmware::SLOTS) {
        let n = k as u8 + 1;
        w.begin_object();
        w.field_u64("slot", u64::from(n));
        w.key("revision");
        match log.revisions[k].as_ref().and_then(|r| core::str::from_utf8(r).ok()) {
            Some(r) => w.string(r.trim_end()),
            None => w.null(),
        }
        w.field_bool("active", log.active == n);
        w.field_bool("next", log.next == Some(n));
        w.end_object();
    }
    w.end_array();
    w.end_object();
}
