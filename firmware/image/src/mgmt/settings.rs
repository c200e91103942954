//! Live changes to the settings the boot configuration carries outside
//! its lists (issue 13): a data port's address, the NVMe/TCP initiator's
//! defaults, the TCP stacks' settings and the management server's rules.
//! Each is checked whole first (a bad value is -32602 naming the field,
//! and nothing changes anywhere), then applied, then saved to the
//! configuration in flash ([`super::persist`]), from which the next boot
//! takes it.
//!
//! * `dpu_set_port {port, ip, prefix, mtu?}`: the data plane hears of it
//!   by message (`crate::net::settings`): every core re-addresses its own
//!   stack on that port, the control queue's stack announces the address
//!   (gratuitous ARP). A port something uses is not moved: a remote
//!   controller reached through it (its admin and I/O connections are
//!   bound to the address), a target subsystem listening on it, or the
//!   management server itself is -16 (busy) naming it. The MTU may only
//!   go down to 576 or stay: the receive buffers are sized for the boot
//!   MTU, so a larger one needs the boot configuration and a restart.
//! * `dpu_nvme_set_options {hostnqn?, hdgst?, ddgst?, io_timeout_us?}`:
//!   `io_timeout_us` applies at once on every core (to commands in
//!   flight too); `hostnqn`, `hdgst`, `ddgst` are negotiated at ICReq
//!   and Connect, so they are the defaults of controllers attached from
//!   then on (SPDK `bdev_nvme_set_options` semantics); the boot
//!   configuration's controllers take them at the next restart.
//! * `dpu_port_set_options {tcp_min_rto_ms?, lro?}`: the minimum RTO
//!   applies by message to every socket of every core's stacks; LRO
//!   changes the receive buffers' size, so it is refused (restart).
//! * `dpu_mgmt_set {allow?, token?, request_timeout_ms?}`: handled by
//!   the server ([`super::server`]), which owns its rules: see
//!   [`mgmt_set`].

use super::nvme::Nvme;
use super::nvmf::Nvmf;
use super::persist::Persist;
use crate::bootcfg::{self, MgmtCfg, PortCfg};
use crate::net::settings::{self as ns, Change};
use core::sync::atomic::{AtomicU8, Ordering};
use dpu_nvme_tcp::pdu::Digests;
use dpu_rpc::nvme_attach::parse_ipv4;
use dpu_rpc::{code, Params, RpcError, Writer};

/// Longest host NQN (NVMe Base 2.0 §4.5).
const NQN_MAX: usize = crate::nvmf::ctrls::NQN_MAX;
/// Smallest MTU (the configuration's bound; IPv4 hosts take 576).
const MTU_MIN: u16 = 576;

/// The initiator's defaults for controllers attached from now on: the
/// digests (bit 0 header, bit 1 data; bit 7: set at run time) and the
/// host NQN (length 0xff: the boot configuration's). This hart only.
static DIGESTS: AtomicU8 = AtomicU8::new(0);
static HOSTNQN: [AtomicU8; NQN_MAX] = [const { AtomicU8::new(0) }; NQN_MAX];
static HOSTNQN_LEN: AtomicU8 = AtomicU8::new(0xff);

/// The digests a controller attached now asks for when the request
/// does not say.
pub fn default_digests() -> Digests {
    let d = DIGESTS.load(Ordering::Relaxed);
    if d & 0x80 == 0 {
        return crate::nvmf::ctrls::boot_digests();
    }
    Digests { header: d & 1 != 0, data: d & 2 != 0 }
}

/// The host NQN a controller attached now presents when the request
/// does not say: empty while it is the boot configuration's (the
/// controller then presents the card's), else the one set.
pub fn default_hostnqn(buf: &mut [u8; NQN_MAX]) -> &str {
    let n = HOSTNQN_LEN.load(Ordering::Relaxed);
    if n == 0xff {
        return "";
    }
    let n = usize::from(n).min(NQN_MAX);
    for (b, a) in buf.iter_mut().zip(&HOSTNQN[..n]) {
        *b = a.load(Ordering::Relaxed);
    }
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}

fn ip_text(a: [u8; 4]) -> impl core::fmt::Display {
    struct Ip([u8; 4]);
    impl core::fmt::Display for Ip {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "{}.{}.{}.{}", self.0[0], self.0[1], self.0[2], self.0[3])
        }
    }
    Ip(a)
}

/// An IPv4 address parameter.
fn ipv4_param(p: &Params<'_>, name: &str) -> Result<Option<[u8; 4]>, RpcError> {
    let mut b = [0u8; 16];
    match p.str(name, &mut b)? {
        None => Ok(None),
        Some(s) => parse_ipv4(s).map(Some).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `{name}` must be a dotted-quad IPv4 address"))),
    }
}

/// The port `p` would route `ip` to with port `port` at `new` (the
/// first configured subnet that holds it, as `crate::net::port_for`).
fn port_with(port: usize, new: PortCfg, ip: [u8; 4]) -> Option<usize> {
    ns::addresses().map(|(i, c)| if i == port { (i, new) } else { (i, c) }).find(|(_, c)| dpu_net::same_subnet(c.ip, ip, c.prefix)).map(|(i, _)| i)
}

/// `dpu_set_port {port, ip, prefix, mtu?}` (ours): see the module doc.
pub fn set_port(p: &Params<'_>, w: &mut Writer<'_>, nvme: &Nvme, nvmf: &Nvmf, persist: &mut Persist) -> Result<(), RpcError> {
    p.only(&["port", "ip", "prefix", "mtu"])?;
    let nports = ns::ports();
    let port = Params::required("port", p.u64("port")?)?;
    let port = usize::try_from(port).ok().filter(|&i| i < nports).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `port` must be 0..{nports} (the configured ports)")))?;
    let cur = ns::port(port).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `port` {port} is not configured")))?;
    let ip = Params::required("ip", ipv4_param(p, "ip")?)?;
    if ip == [0; 4] || ip[0] >= 224 || ip[0] == 127 {
        return Err(RpcError::invalid_params(format_args!("invalid params: `ip` must be a unicast address")));
    }
    let prefix = Params::required("prefix", p.u64_in("prefix", 8..=30)?)? as u8;
    // The receive buffers were sized for the boot MTU.
    let boot_mtu = bootcfg::ports().get(port).map_or(cur.mtu, |c| c.mtu);
    let mtu = match p.u64("mtu")? {
        None => cur.mtu,
        Some(m) if m < u64::from(MTU_MIN) => return Err(RpcError::invalid_params(format_args!("invalid params: `mtu` must be in {MTU_MIN}..={boot_mtu}"))),
        Some(m) if m > u64::from(boot_mtu) => {
            return Err(RpcError::invalid_params(format_args!("invalid params: `mtu` above {boot_mtu} (the boot MTU) needs a restart: RX buffers are sized at boot")))
        }
        Some(m) => m as u16,
    };
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    let host = u32::from_be_bytes(ip) & !mask;
    if host == 0 || host == !mask {
        return Err(RpcError::invalid_params(format_args!("invalid params: `ip` is the subnet's network or broadcast address")));
    }
    if let Some((i, _)) = ns::addresses().find(|(i, c)| *i != port && c.ip == ip) {
        return Err(RpcError::fmt(code::EXISTS, format_args!("exists: eth{i} has address {}", ip_text(ip))));
    }
    let new = PortCfg { ip, prefix, mtu };
    // Who uses the port now, or would be routed through it after.
    let busy = |who: &dyn core::fmt::Display| RpcError::fmt(code::BUSY, format_args!("busy: {who} uses eth{port}; detach or remove it first"));
    if bootcfg::management().is_some_and(|m| usize::from(m.port) == port) && (cur.ip, cur.prefix) != (ip, prefix) {
        return Err(RpcError::fmt(code::BUSY, format_args!("busy: the management server listens on eth{port}: change it in the boot configuration")));
    }
    let uses = |t: [u8; 4]| crate::net::port_for(t) == Some(port) || port_with(port, new, t) == Some(port);
    for i in 0..bootcfg::controllers() {
        if bootcfg::controller(i).is_some_and(|c| uses(c.traddr)) {
            return Err(busy(&format_args!("controller nvme{i}")));
        }
    }
    if let Some(c) = nvme.ctrls().find(|c| uses(c.def.traddr)) {
        return Err(busy(&format_args!("controller {}", c.name())));
    }
    for i in 0..bootcfg::subsystems() {
        if let Some(s) = bootcfg::subsystem(i).filter(|s| port < 8 && s.ports & (1 << port) != 0) {
            return Err(busy(&format_args!("the listener of {}", core::str::from_utf8(s.nqn()).unwrap_or("?"))));
        }
    }
    let mut listener: Option<RpcError> = None;
    nvmf.each(|s, _| {
        if listener.is_none() && s.listeners.iter().flatten().any(|l| usize::from(l.port) == port) {
            listener = Some(busy(&format_args!("the listener of {}", s.nqn.as_str())));
        }
    });
    if let Some(e) = listener {
        return Err(e);
    }
    // Checked: apply. The NIC drops frames above the new MTU.
    if mtu != cur.mtu {
        if let Some(nic) = dpu_hal::nic::Port::new(port) {
            nic.set_mtu(u32::from(mtu));
        }
    }
    ns::publish(Change { port: Some((port, new)), ..Change::default() });
    persist.update(|c| {
        if let Some(pc) = c.ports.get_mut(port) {
            *pc = dpu_config::Port { ip, prefix, mtu };
        }
    });
    defmt::info!("mgmt: port {=usize} is now {=u8}.{=u8}.{=u8}.{=u8}/{=u8} mtu {=u16}", port, ip[0], ip[1], ip[2], ip[3], prefix, mtu);
    w.bool(true);
    Ok(())
}

/// `dpu_nvme_set_options {hostnqn?, hdgst?, ddgst?, io_timeout_us?}`
/// (ours; SPDK's `bdev_nvme_set_options` has no host NQN): see the
/// module doc.
pub fn nvme_set_options(p: &Params<'_>, w: &mut Writer<'_>, persist: &mut Persist) -> Result<(), RpcError> {
    p.only(&["hostnqn", "hdgst", "ddgst", "io_timeout_us"])?;
    let mut nb = [0u8; NQN_MAX + 1];
    let hostnqn = p.str("hostnqn", &mut nb)?;
    if let Some(h) = hostnqn {
        if !h.starts_with("nqn.") || h.len() > NQN_MAX || !h.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(RpcError::invalid_params(format_args!("invalid params: `hostnqn` must be an NQN (nqn...., printable, <= {NQN_MAX} bytes)")));
        }
    }
    let (hdgst, ddgst) = (p.bool("hdgst")?, p.bool("ddgst")?);
    // Up to a minute: past that a host's own timeout would fire first.
    let timeout = p.u64_in("io_timeout_us", 100..=60_000_000)?.map(|t| t as u32);
    let d = default_digests();
    let (h, dd) = (hdgst.unwrap_or(d.header), ddgst.unwrap_or(d.data));
    if hdgst.is_some() || ddgst.is_some() {
        DIGESTS.store(0x80 | u8::from(h) | u8::from(dd) << 1, Ordering::Relaxed);
    }
    if let Some(n) = hostnqn {
        for (a, &b) in HOSTNQN.iter().zip(n.as_bytes()) {
            a.store(b, Ordering::Relaxed);
        }
        HOSTNQN_LEN.store(n.len() as u8, Ordering::Relaxed);
    }
    if timeout.is_some() {
        ns::publish(Change { io_timeout_us: timeout, ..Change::default() });
    }
    persist.update(|c| {
        c.header_digest = h;
        c.data_digest = dd;
        if let Some(t) = timeout {
            c.io_timeout_us = t;
        }
        if let Some(n) = hostnqn.and_then(|n| heapless::String::try_from(n).ok()) {
            c.host_nqn = n;
        }
    });
    w.bool(true);
    Ok(())
}

/// `dpu_nvme_get_options` (ours): the initiator's settings in force.
pub fn nvme_get_options(p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
    p.only(&[])?;
    let mut nb = [0u8; NQN_MAX];
    let set = default_hostnqn(&mut nb);
    let boot = core::str::from_utf8(bootcfg::host().0).unwrap_or("");
    let d = default_digests();
    let id = bootcfg::host().1;
    w.begin_object();
    w.field_str("hostnqn", if set.is_empty() { boot } else { set });
    w.key("hostid");
    w.string_fmt(format_args!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]
    ));
    w.field_bool("hdgst", d.header);
    w.field_bool("ddgst", d.data);
    w.field_u64("io_timeout_us", u64::from(ns::io_timeout_us()));
    w.end_object();
    Ok(())
}

/// `dpu_port_set_options {tcp_min_rto_ms?, lro?}` (ours): see the
/// module doc.
pub fn port_set_options(p: &Params<'_>, w: &mut Writer<'_>, persist: &mut Persist) -> Result<(), RpcError> {
    p.only(&["tcp_min_rto_ms", "lro"])?;
    let rto = p.u64_in("tcp_min_rto_ms", 1..=u64::from(ns::MAX_MIN_RTO_MS))?.map(|v| v as u16);
    let lro_now = bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0;
    if p.bool("lro")?.is_some_and(|l| l != lro_now) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `lro` needs a restart: RX buffers are sized for it at boot")));
    }
    if let Some(ms) = rto {
        ns::publish(Change { tcp_min_rto_ms: Some(ms), ..Change::default() });
        persist.update(|c| c.tcp_min_rto_ms = ms);
    }
    w.bool(true);
    Ok(())
}

/// `dpu_port_get_options` (ours): the TCP stacks' settings in force.
pub fn port_get_options(p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
    p.only(&[])?;
    w.begin_object();
    w.field_u64("tcp_min_rto_ms", u64::from(ns::tcp_min_rto_ms()));
    w.field_bool("lro", bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0);
    w.end_object();
    Ok(())
}

/// `dpu_mgmt_set {allow?, token?, request_timeout_ms?}` (ours): the
/// management server's rules, changed in `cfg` (the server's own copy)
/// at once; `caller` is the address of the client asking. Every
/// connection is checked against the new allow-list at its next turn
/// (one outside it is reset), and every request from then on must
/// carry the new token, the caller's next ones too. Refused (-32602,
/// nothing changed): an allow-list that leaves the caller out (it
/// would lock the operator out), an entry that is not `a.b.c.d/len`
/// with len 0..=32, more than the server holds, a token that is not
/// printable or too long, `tcp_port` other than the current one (the
/// NIC steers it at boot: change the boot configuration).
pub fn mgmt_set(p: &Params<'_>, w: &mut Writer<'_>, cfg: &mut MgmtCfg, caller: [u8; 4], persist: &mut Persist) -> Result<(), RpcError> {
    use dpu_hal::regs::bootcfg::{MGMT_ALLOW_MAX, MGMT_TOKEN_LEN};
    p.only(&["allow", "token", "request_timeout_ms", "tcp_port"])?;
    if p.u64("tcp_port")?.is_some_and(|t| t != u64::from(cfg.tcp_port)) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `tcp_port` is steered by the NIC at boot: change the boot configuration")));
    }
    let timeout = p.u64_in("request_timeout_ms", 1..=u64::from(u16::MAX))?.map(|t| t as u16);
    let mut tb = [0u8; MGMT_TOKEN_LEN + 1];
    let token = p.str("token", &mut tb)?;
    if let Some(t) = token {
        if t.len() > MGMT_TOKEN_LEN || !t.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(RpcError::invalid_params(format_args!("invalid params: `token` must be 0..={MGMT_TOKEN_LEN} printable characters")));
        }
    }
    let mut allow = [([0u8; 4], 0u8); MGMT_ALLOW_MAX];
    let mut n = 0;
    let given = p.array("allow")?.is_some();
    if let Some(elems) = p.array("allow")? {
        for e in elems {
            let mut b = [0u8; 24];
            let text = e.unescape(&mut b).filter(|_| e.kind() == dpu_rpc::json::Kind::String);
            let entry = text.and_then(|t| {
                let (a, l) = t.split_once('/').unwrap_or((t, "32"));
                let len = l.parse::<u8>().ok().filter(|&l| l <= 32)?;
                Some((parse_ipv4(a)?, len))
            });
            let Some(entry) = entry else {
                return Err(RpcError::invalid_params(format_args!("invalid params: `allow` entries must be strings a.b.c.d/len, len 0..=32")));
            };
            let Some(slot) = allow.get_mut(n) else {
                return Err(RpcError::invalid_params(format_args!("invalid params: `allow` has more than {MGMT_ALLOW_MAX} entries")));
            };
            *slot = entry;
            n += 1;
        }
    }
    let mut next = *cfg;
    if given {
        next.set_allow(&allow[..n]);
    }
    if let Some(t) = token {
        next.set_token(t.as_bytes());
    }
    if let Some(t) = timeout {
        next.request_timeout_ms = t;
    }
    if !next.allows(caller) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `allow` leaves out this client {}: it would lock you out", ip_text(caller))));
    }
    *cfg = next;
    persist.update(|c| {
        if let Some(m) = c.management.as_mut() {
            if given {
                m.allow = allow[..n].iter().copied().collect();
            }
            if let Some(t) = token.and_then(|t| heapless::String::try_from(t).ok()) {
                m.token = t;
            }
            if let Some(t) = timeout {
                m.request_timeout_ms = t;
            }
        }
    });
    defmt::info!("mgmt: rules changed: {=usize} allow-list entries, token {=str}", next.allow_count, if next.token().is_empty() { "not required" } else { "required" });
    w.bool(true);
    Ok(())
}

/// `dpu_mgmt_get` (ours): the management server's rules in force (the
/// token itself is never shown, only whether one is required).
pub fn mgmt_get(p: &Params<'_>, w: &mut Writer<'_>, cfg: &MgmtCfg) -> Result<(), RpcError> {
    p.only(&[])?;
    w.begin_object();
    w.key("port");
    w.string_fmt(format_args!("eth{}", cfg.port));
    w.field_u64("tcp_port", u64::from(cfg.tcp_port));
    w.field_u64("request_timeout_ms", u64::from(cfg.request_timeout_ms));
    w.key("allow");
    w.begin_array();
    for (a, l) in &cfg.allow[..cfg.allow_count] {
        w.string_fmt(format_args!("{}/{}", ip_text(*a), l));
    }
    w.end_array();
    w.field_bool("token_required", !cfg.token().is_empty());
    w.end_object();
    Ok(())
}
