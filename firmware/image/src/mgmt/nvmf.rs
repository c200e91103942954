//! The NVMe/TCP target's subsystems made and changed at run time, with
//! SPDK's method names and parameters (SPDK `doc/jsonrpc.md`):
//! `nvmf_create_subsystem`, `nvmf_delete_subsystem`,
//! `nvmf_subsystem_add_listener` / `_remove_listener`,
//! `nvmf_subsystem_add_ns` / `_remove_ns`, `nvmf_subsystem_add_host` /
//! `_remove_host`.
//!
//! The management server owns the table; every change is checked here
//! first, then published whole to every data-plane core's target
//! (`crate::nvmf::live`: a seqlock of atomics, one writer) and each core
//! is rung. The boot configuration's subsystems stay as they are: they
//! cannot be deleted or changed here (-16), and their NQNs are taken.
//!
//! * A namespace is a RAM block device made by `bdev_malloc_create`. One
//!   mapped to a PCIe function (`dpu_ns_attach`), or a boot namespace's
//!   device (`fn<F>n<N>`), is refused (-16): two hosts writing one
//!   device through two paths that know nothing of each other would
//!   corrupt it. A device in a subsystem cannot be mapped to a function
//!   or deleted either (-16) until it is removed from the subsystem.
//! * Listeners: `traddr` must be one of the card's port addresses;
//!   every core listens on each (port, TCP port) with a fixed number of
//!   sockets, so a listener that would need more sockets than a core's
//!   target has is refused (-12), as are more than
//!   [`MAX_LISTENERS`] per subsystem.
//! * Hosts: `allow_any_host` false (SPDK's default) admits only the
//!   hosts added; removing one leaves its connections up (SPDK does the
//!   same) and refuses its next Connect.
//! * Errors: -32602 naming the parameter, -19 an unknown NQN, device,
//!   NSID, listener or host, -17 a duplicate NQN, NSID, listener or host,
//!   -16 busy, -12 a limit.

use super::live::{self as mlive, Live, NAME_MAX};
use crate::bootcfg;
use crate::nvmf::live::{self as tl, Listener, RamNs, Subsys, Table, Text, MAX_LISTENERS, MODEL_MAX, NQN_MAX, SERIAL_MAX};
use dpu_hal::memory_map::{MAX_ALLOWED_HOSTS, MAX_SUBSYSTEM_NAMESPACES};
use dpu_rpc::{code, Params, RpcError, Writer};
use heapless::String;

/// The management server's view: the table it publishes and, per
/// namespace, the block device's name.
pub struct State {
    table: Table,
    names: [[Option<String<NAME_MAX>>; MAX_SUBSYSTEM_NAMESPACES]; tl::MAX_LIVE],
    scratch: tl::Scratch,
    next_uid: u32,
}

impl dpu_rt::ConstInit for State {
    const INIT: State = State { table: Table::EMPTY, names: [const { [const { None }; MAX_SUBSYSTEM_NAMESPACES] }; tl::MAX_LIVE], scratch: [0; core::mem::size_of::<tl::Scratch>()], next_uid: 1 };
}

pub struct Nvmf {
    st: Option<&'static mut State>,
}

/// An NQN parameter: 1..=223 printable ASCII bytes starting `nqn.`
/// (NVMe Base 2.0 §4.5).
fn nqn_param(p: &Params<'_>, name: &str, buf: &mut [u8; NQN_MAX + 1]) -> Result<Text<NQN_MAX>, RpcError> {
    let s = Params::required(name, p.str(name, &mut buf[..])?)?;
    match Text::new(s, false) {
        Some(t) if s.starts_with("nqn.") => Ok(t),
        _ => Err(RpcError::invalid_params(format_args!("invalid params: `{name}` must be an NQN (nqn., printable, at most {NQN_MAX} bytes)"))),
    }
}

fn nqn_str(p: &Params<'_>, buf: &mut [u8; NQN_MAX + 1]) -> Result<Text<NQN_MAX>, RpcError> {
    nqn_param(p, "nqn", buf)
}

fn no_subsystem(nqn: &Text<NQN_MAX>) -> RpcError {
    RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: subsystem `{}`", nqn.as_str()))
}

/// Whether `nqn` is a boot configuration subsystem's.
fn boot_subsystem(nqn: &[u8]) -> bool {
    (0..bootcfg::subsystems()).any(|s| bootcfg::subsystem(s).is_some_and(|c| c.nqn() == nqn))
}

impl Nvmf {
    pub fn new() -> Nvmf {
        let st = dpu_rt::alloc::ddr_static::<State>();
        if st.is_none() {
            defmt::error!("mgmt: no memory for the target's run-time subsystems");
        }
        Nvmf { st }
    }

    /// The live subsystems (for `nvmf_get_subsystems`): each with its
    /// namespaces' block device names.
    pub fn each(&self, mut f: impl FnMut(&Subsys, &[Option<String<NAME_MAX>>; MAX_SUBSYSTEM_NAMESPACES])) {
        let Some(st) = self.st.as_deref() else { return };
        for (k, s) in st.table.subsys.iter().enumerate() {
            if let Some(s) = s {
                f(s, &st.names[k]);
            }
        }
    }

    /// The subsystem whose namespace block device `name` is.
    pub fn user_of(&self, name: &str) -> Option<&str> {
        let st = self.st.as_deref()?;
        for (k, s) in st.table.subsys.iter().enumerate() {
            if let Some(s) = s {
                if st.names[k].iter().flatten().any(|n| n.as_str() == name) {
                    return Some(s.nqn.as_str());
                }
            }
        }
        None
    }

    fn state(&mut self) -> Result<&mut State, RpcError> {
        self.st.as_deref_mut().ok_or_else(|| RpcError::new(code::INTERNAL_ERROR, "internal error: no memory for run-time subsystems"))
    }

    /// Every core's target hears of the table now.
    fn publish(st: &mut State) {
        let v = tl::publish(&st.table, &mut st.scratch);
        for q in 0..crate::net::DATA_CORES {
            dpu_hal::mailbox::ring(crate::net::FIRST_DATA_HART + q, crate::nvmf::DOORBELL_NVMF);
        }
        defmt::info!("mgmt: target subsystems published (version {=u32}, {=usize} run-time subsystem(s))", v, st.table.iter().count());
    }

    fn slot(st: &State, nqn: &Text<NQN_MAX>) -> Result<usize, RpcError> {
        if boot_subsystem(nqn.bytes()) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: subsystem `{}` comes from the boot configuration", nqn.as_str())));
        }
        st.table.subsys.iter().position(|s| s.is_some_and(|s| s.nqn == *nqn)).ok_or_else(|| no_subsystem(nqn))
    }

    /// SPDK `nvmf_create_subsystem` {nqn, serial_number?, model_number?,
    /// allow_any_host?, max_namespaces?}.
    #[inline(never)]
    pub fn create(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["nqn", "serial_number", "model_number", "allow_any_host", "max_namespaces"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        if nqn.as_str() == dpu_nvme_tcp::DISCOVERY_NQN {
            return Err(RpcError::invalid_params(format_args!("invalid params: `nqn` is the discovery NQN")));
        }
        let mut sb = [0u8; SERIAL_MAX + 1];
        let serial = match p.str("serial_number", &mut sb)? {
            Some(s) => Text::new(s, true).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `serial_number` must be at most {SERIAL_MAX} printable ASCII")))?,
            None => Text::EMPTY,
        };
        let mut mb = [0u8; MODEL_MAX + 1];
        let model = match p.str("model_number", &mut mb)? {
            Some(s) => Text::new(s, true).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `model_number` must be at most {MODEL_MAX} printable ASCII")))?,
            None => Text::EMPTY,
        };
        let allow_any = p.bool("allow_any_host")?.unwrap_or(false);
        // SPDK: 0 is its default (no limit); ours is the most we serve.
        let max = match p.u64_in("max_namespaces", 0..=MAX_SUBSYSTEM_NAMESPACES as u64)? {
            None | Some(0) => MAX_SUBSYSTEM_NAMESPACES as u32,
            Some(m) => m as u32,
        };
        self.create_with(nqn, serial, model, allow_any, max)?;
        w.bool(true);
        Ok(())
    }

    fn create_with(&mut self, nqn: Text<NQN_MAX>, serial: Text<SERIAL_MAX>, model: Text<MODEL_MAX>, allow_any: bool, max: u32) -> Result<(), RpcError> {
        let st = self.state()?;
        if boot_subsystem(nqn.bytes()) || st.table.find(nqn.bytes()).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: subsystem `{}` exists", nqn.as_str())));
        }
        let k = st.table.subsys.iter().position(|s| s.is_none()).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {} run-time subsystems", tl::MAX_LIVE)))?;
        let uid = st.next_uid;
        st.next_uid = st.next_uid.wrapping_add(1).max(1);
        st.table.subsys[k] = Some(Subsys { uid, nqn, serial, model, allow_any, max_namespaces: max, ..Subsys::EMPTY });
        st.names[k] = [const { None }; MAX_SUBSYSTEM_NAMESPACES];
        defmt::info!("mgmt: nvmf subsystem {=str} created (allow any host: {=bool}, up to {=u32} namespaces)", nqn.as_str(), allow_any, max);
        Self::publish(st);
        Ok(())
    }

    /// SPDK `nvmf_delete_subsystem` {nqn}: its controllers are torn down
    /// (every core closes their connections).
    #[inline(never)]
    pub fn delete(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["nqn"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let st = self.state()?;
        let k = Self::slot(st, &nqn)?;
        st.table.subsys[k] = None;
        st.names[k] = [const { None }; MAX_SUBSYSTEM_NAMESPACES];
        defmt::info!("mgmt: nvmf subsystem {=str} deleted", nqn.as_str());
        Self::publish(st);
        w.bool(true);
        Ok(())
    }

    /// `listen_address` {trtype, adrfam?, traddr, trsvcid} of a listener
    /// method: (DPU port, TCP port).
    fn listen_address(p: &Params<'_>) -> Result<Listener, RpcError> {
        let a = Params::required("listen_address", p.object("listen_address")?)?;
        a.only(&["trtype", "adrfam", "traddr", "trsvcid"])?;
        let mut b = [0u8; 16];
        let trtype = Params::required("trtype", a.str("trtype", &mut b)?)?;
        if !trtype.eq_ignore_ascii_case("tcp") {
            return Err(RpcError::invalid_params(format_args!("invalid params: `trtype` must be TCP")));
        }
        if let Some(f) = a.str("adrfam", &mut b)? {
            if !f.eq_ignore_ascii_case("ipv4") {
                return Err(RpcError::invalid_params(format_args!("invalid params: `adrfam` must be IPv4")));
            }
        }
        let traddr = Params::required("traddr", a.str("traddr", &mut b)?)?;
        let ip = parse_ipv4(traddr);
        let port = ip.and_then(|ip| crate::net::settings::addresses().find(|(_, c)| c.ip == ip).map(|(p, _)| p)).filter(|&p| p < dpu_hal::memory_map::NIC_PORTS);
        let Some(port) = port else {
            return Err(RpcError::invalid_params(format_args!("invalid params: `traddr` must be one of the card's port addresses")));
        };
        let mut sb = [0u8; 8];
        let svc = Params::required("trsvcid", a.str("trsvcid", &mut sb)?)?;
        let t: u16 = svc.parse().ok().filter(|&t| t != 0).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `trsvcid` must be a TCP port 1..=65535")))?;
        // The card's own connections use 40000-40999 and the ephemeral
        // range; 8009 is the discovery service; and the management port.
        let taken = (40000..=40999).contains(&t) || t >= 49152 || t == dpu_nvme_tcp::DISCOVERY_PORT || bootcfg::management().is_some_and(|m| m.tcp_port == t);
        if taken {
            return Err(RpcError::invalid_params(format_args!("invalid params: `trsvcid` {t} is reserved on the card")));
        }
        Ok(Listener { port: port as u8, trsvcid: t })
    }

    /// SPDK `nvmf_subsystem_add_listener` {nqn, listen_address}.
    #[inline(never)]
    pub fn add_listener(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["nqn", "listen_address"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let l = Self::listen_address(p)?;
        self.add_listener_to(&nqn, l)?;
        w.bool(true);
        Ok(())
    }

    fn add_listener_to(&mut self, nqn: &Text<NQN_MAX>, l: Listener) -> Result<(), RpcError> {
        let st = self.state()?;
        let k = Self::slot(st, nqn)?;
        let Some(s) = st.table.subsys[k].as_mut() else { return Err(no_subsystem(nqn)) };
        if s.listens(usize::from(l.port), l.trsvcid) {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: `{}` listens on eth{}:{} already", nqn.as_str(), l.port, l.trsvcid)));
        }
        let Some(free) = s.listeners.iter_mut().find(|x| x.is_none()) else {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_LISTENERS} listeners per subsystem")));
        };
        *free = Some(l);
        let want = crate::nvmf::target::sockets_wanted(&st.table);
        if want > crate::nvmf::target::MAX_CONNS {
            if let Some(s) = st.table.subsys[k].as_mut() {
                for x in s.listeners.iter_mut() {
                    if *x == Some(l) {
                        *x = None;
                    }
                }
            }
            return Err(RpcError::fmt(
                code::NO_MEMORY,
                format_args!("out of memory: {want} listening sockets per core needed, {} max", crate::nvmf::target::MAX_CONNS),
            ));
        }
        defmt::info!("mgmt: nvmf subsystem {=str} listens on port {=u8} TCP {=u16}", nqn.as_str(), l.port, l.trsvcid);
        Self::publish(st);
        Ok(())
    }

    /// SPDK `nvmf_subsystem_remove_listener` {nqn, listen_address}: the
    /// connections that came in through it close.
    #[inline(never)]
    pub fn remove_listener(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["nqn", "listen_address"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let l = Self::listen_address(p)?;
        let st = self.state()?;
        let k = Self::slot(st, &nqn)?;
        let Some(s) = st.table.subsys[k].as_mut() else { return Err(no_subsystem(&nqn)) };
        let Some(x) = s.listeners.iter_mut().find(|x| **x == Some(l)) else {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{}` has no listener eth{}:{}", nqn.as_str(), l.port, l.trsvcid)));
        };
        *x = None;
        Self::publish(st);
        w.bool(true);
        Ok(())
    }

    /// SPDK `nvmf_subsystem_add_ns` {nqn, namespace: {bdev_name, nsid?}}:
    /// the NSID (the lowest free when not given).
    #[inline(never)]
    pub fn add_ns(&mut self, p: &Params<'_>, w: &mut Writer<'_>, live: &Live) -> Result<(), RpcError> {
        p.only(&["nqn", "namespace"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let ns = Params::required("namespace", p.object("namespace")?)?;
        ns.only(&["bdev_name", "nsid"])?;
        let mut nb = [0u8; NAME_MAX + 1];
        let name = Params::required("bdev_name", ns.str("bdev_name", &mut nb)?)?;
        let nsid = ns.u64_in("nsid", 1..=MAX_SUBSYSTEM_NAMESPACES as u64)?.map(|n| n as u32);
        let nsid = self.add_ns_with(&nqn, name, nsid, live)?;
        w.u64(u64::from(nsid));
        Ok(())
    }

    fn add_ns_with(&mut self, nqn: &Text<NQN_MAX>, name: &str, nsid: Option<u32>, live: &Live) -> Result<u32, RpcError> {
        if let Some((f, n)) = mlive::parse_fn_name(name).filter(|&(f, n)| bootcfg::namespace(f, n).is_some()) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is namespace {n} of function {f} (boot configuration)")));
        }
        let Some(m) = live.bdev(name) else { return Err(super::methods::no_device("bdev", name)) };
        if m.remote.is_some() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is a remote namespace; the target serves RAM devices only")));
        }
        if m.ec.is_some() || m.member_of.is_some() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is an EC volume or one's member; the target serves RAM devices only")));
        }
        if m.crypto.is_some() || m.claimed {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is a crypto device or under one; the target serves plain RAM devices only")));
        }
        if let Some((f, n)) = m.map.target() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is namespace {n} of function {f}; detach it first")));
        }
        if let Some(other) = self.user_of(name) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is a namespace of {other}")));
        }
        let (base, blocks, block_shift) = (m.base, m.blocks, m.block_shift);
        let st = self.state()?;
        let k = Self::slot(st, nqn)?;
        let Some(s) = st.table.subsys[k].as_mut() else { return Err(no_subsystem(nqn)) };
        let nsid = match nsid {
            Some(n) if n > s.max_namespaces => {
                return Err(RpcError::invalid_params(format_args!("invalid params: `nsid` must be in 1..={}", s.max_namespaces)));
            }
            Some(n) if s.namespace(n).is_some() => return Err(RpcError::fmt(code::EXISTS, format_args!("exists: `{}` has namespace {n}", nqn.as_str()))),
            Some(n) => n,
            None => (1..=s.max_namespaces)
                .find(|&n| s.namespace(n).is_none())
                .ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: `{}` has {} namespaces", nqn.as_str(), s.max_namespaces)))?,
        };
        let Some(i) = s.ns.iter().position(|x| x.is_none()) else {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_SUBSYSTEM_NAMESPACES} namespaces")));
        };
        s.ns[i] = Some(RamNs { nsid, base, blocks, block_shift });
        s.ns_generation = s.ns_generation.wrapping_add(1);
        st.names[k][i] = String::try_from(name).ok();
        defmt::info!("mgmt: nvmf subsystem {=str}: namespace {=u32} is {=str} ({=u64} blocks of {=u32} B)", nqn.as_str(), nsid, name, blocks, 1u32 << block_shift);
        Self::publish(st);
        // Its connected hosts get a Namespace Attribute Changed notice.
        crate::nvmf::target::namespaces_changed(tl::LIVE_BASE + k as u8, nsid);
        Ok(nsid)
    }

    /// SPDK `nvmf_subsystem_remove_ns` {nqn, nsid}: commands of it not yet
    /// in the block layer end with Invalid Namespace; those in it complete.
    #[inline(never)]
    pub fn remove_ns(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["nqn", "nsid"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let nsid = Params::required("nsid", p.u64_in("nsid", 1..=u64::from(u32::MAX))?)? as u32;
        let st = self.state()?;
        let k = Self::slot(st, &nqn)?;
        let Some(s) = st.table.subsys[k].as_mut() else { return Err(no_subsystem(&nqn)) };
        let Some(i) = s.ns.iter().position(|x| x.is_some_and(|x| x.nsid == nsid)) else {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{}` has no namespace {nsid}", nqn.as_str())));
        };
        s.ns[i] = None;
        s.ns_generation = s.ns_generation.wrapping_add(1);
        st.names[k][i] = None;
        defmt::info!("mgmt: nvmf subsystem {=str}: namespace {=u32} removed", nqn.as_str(), nsid);
        Self::publish(st);
        crate::nvmf::target::namespaces_changed(tl::LIVE_BASE + k as u8, nsid);
        w.bool(true);
        Ok(())
    }

    /// SPDK `nvmf_subsystem_add_host` {nqn, host} / `_remove_host`.
    #[inline(never)]
    pub fn host(&mut self, p: &Params<'_>, w: &mut Writer<'_>, add: bool) -> Result<(), RpcError> {
        p.only(&["nqn", "host"])?;
        let mut b = [0u8; NQN_MAX + 1];
        let nqn = nqn_str(p, &mut b)?;
        let mut hb = [0u8; NQN_MAX + 1];
        let host = nqn_param(p, "host", &mut hb)?;
        self.host_with(&nqn, host, add)?;
        w.bool(true);
        Ok(())
    }

    fn host_with(&mut self, nqn: &Text<NQN_MAX>, host: Text<NQN_MAX>, add: bool) -> Result<(), RpcError> {
        let st = self.state()?;
        let k = Self::slot(st, nqn)?;
        let Some(s) = st.table.subsys[k].as_mut() else { return Err(no_subsystem(nqn)) };
        let n = usize::from(s.nhosts).min(MAX_ALLOWED_HOSTS);
        let at = s.hosts[..n].iter().position(|h| *h == host);
        match (add, at) {
            (true, Some(_)) => return Err(RpcError::fmt(code::EXISTS, format_args!("exists: the host is on `{}`'s list", nqn.as_str()))),
            (true, None) if n == MAX_ALLOWED_HOSTS => {
                return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_ALLOWED_HOSTS} hosts per subsystem")));
            }
            (true, None) => {
                s.hosts[n] = host;
                s.nhosts += 1;
            }
            (false, None) => return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: the host is not on `{}`'s list", nqn.as_str()))),
            (false, Some(i)) => {
                s.hosts.copy_within(i + 1..n, i);
                s.hosts[n - 1] = Text::EMPTY;
                s.nhosts -= 1;
            }
        }
        defmt::info!("mgmt: nvmf subsystem {=str}: host {=str} {=str}", nqn.as_str(), host.as_str(), if add { "allowed" } else { "removed" });
        Self::publish(st);
        Ok(())
    }

    /// What the configuration in flash keeps of the subsystems.
    #[inline(never)]
    pub fn snapshot(&self, out: &mut heapless::Vec<dpu_config::NvmfSubsystem, { dpu_hal::memory_map::MAX_SUBSYSTEMS }>) {
        out.clear();
        self.each(|s, names| {
            let mut c = dpu_config::NvmfSubsystem {
                nqn: String::try_from(s.nqn.as_str()).unwrap_or_default(),
                serial_number: String::try_from(s.serial.as_str()).unwrap_or_default(),
                model_number: String::try_from(s.model.as_str()).unwrap_or_default(),
                allow_any_host: s.allow_any,
                max_namespaces: s.max_namespaces,
                ..Default::default()
            };
            for h in s.hosts() {
                let _ = c.hosts.push(String::try_from(h.as_str()).unwrap_or_default());
            }
            for l in s.listeners.iter().flatten() {
                let _ = c.listeners.push((l.port, l.trsvcid));
            }
            for (n, name) in s.ns.iter().zip(names) {
                if let (Some(n), Some(name)) = (n, name) {
                    let _ = c.namespaces.push((n.nsid, name.clone()));
                }
            }
            let _ = out.push(c);
        });
    }

    /// Makes the subsystems the flash configuration lists again (after
    /// its block devices), through the same checks as the methods.
    #[inline(never)]
    pub fn restore(&mut self, list: &[dpu_config::NvmfSubsystem], live: &Live) {
        for c in list {
            let (Some(nqn), Some(serial), Some(model)) = (Text::new(&c.nqn, false), Text::new(&c.serial_number, true), Text::new(&c.model_number, true)) else { continue };
            if let Err(e) = self.create_with(nqn, serial, model, c.allow_any_host, c.max_namespaces.clamp(1, MAX_SUBSYSTEM_NAMESPACES as u32)) {
                defmt::error!("mgmt: subsystem {=str} from flash not restored: {=str}", c.nqn.as_str(), e.message());
                continue;
            }
            for h in &c.hosts {
                if let Some(h) = Text::new(h, false) {
                    if let Err(e) = self.host_with(&nqn, h, true) {
                        defmt::error!("mgmt: {=str}: host from flash not restored: {=str}", c.nqn.as_str(), e.message());
                    }
                }
            }
            for (nsid, name) in &c.namespaces {
                if let Err(e) = self.add_ns_with(&nqn, name, Some(*nsid), live) {
                    defmt::error!("mgmt: {=str}: namespace from flash not restored: {=str}", c.nqn.as_str(), e.message());
                }
            }
            for &(port, trsvcid) in &c.listeners {
                if let Err(e) = self.add_listener_to(&nqn, Listener { port, trsvcid }) {
                    defmt::error!("mgmt: {=str}: listener from flash not restored: {=str}", c.nqn.as_str(), e.message());
                }
            }
        }
    }
}

/// "a.b.c.d" as four bytes.
fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = s.split('.');
    for b in ip.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *b = p.parse().ok()?;
    }
    parts.next().is_none().then_some(ip)
}
