//! Remote NVMe/TCP controllers attached and detached at run time (SPDK
//! `bdev_nvme_attach_controller` / `bdev_nvme_detach_controller`).
//!
//! The management server checks the parameters and the limits, picks a
//! free controller index above the boot configuration's and asks the
//! fabrics service (same hart, [`Request`]) to connect; the service
//! publishes the controller to the data plane (`crate::nvmf::ctrls`)
//! and answers with the namespaces it found or why it failed
//! ([`Outcome`]). Only then is the JSON-RPC request answered (the
//! server holds it, as SPDK does): with the block devices made,
//! `<name>n<nsid>`, one per active namespace (they are run-time block
//! devices of [`Live`], mapped with `dpu_ns_attach` like RAM ones). A
//! failed attach leaves nothing: no block device, no index, no
//! publication. A detach is refused while one of the controller's
//! devices is mapped; otherwise the devices go and every core closes
//! its connection.

use super::live::{Live, Map, NAME_MAX};
use crate::bootcfg::{self, MAX_CTRLS};
use crate::net;
use crate::nvmf::ctrls::Def;
use crate::nvmf::initiator::LIVE_CTRL_SOCKETS;
pub use crate::nvmf::service::{FoundNs, Outcome, Request, MAX_CTRL_NS};
use dpu_nvme_tcp::pdu::Digests;
use dpu_rpc::nvme_attach::{AttachController, Buffers};
use dpu_rpc::{code, Params, RpcError, Writer};
use heapless::Deque;

/// Most controllers attached at run time at once (the rest of the
/// `MAX_CTRLS` indices may be the boot configuration's).
pub const MAX_NVME: usize = dpu_config::MAX_NVME;
/// Longest controller name: its devices add `n<nsid>` (at most 4 more
/// with `MAX_CTRL_NS` namespaces of NSID up to 999) within [`NAME_MAX`].
pub const CTRL_NAME_MAX: usize = dpu_config::NVME_NAME_MAX;
const _: () = assert!(CTRL_NAME_MAX + 4 <= NAME_MAX && CTRL_NAME_MAX == dpu_rpc::nvme_attach::NAME_MAX);

/// SPDK answers a controller that could not be reached or refused
/// Connect with -ENXIO.
pub const NO_DEVICE_OR_ADDRESS: i32 = -6;

/// Where a controller attached at run time stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlState {
    /// Connecting; the request waits for the outcome.
    Attaching,
    /// Attached: its block devices exist.
    Attached,
}

/// A controller attached at run time.
#[derive(Clone, Debug)]
pub struct Ctrl {
    name: heapless::String<CTRL_NAME_MAX>,
    pub index: usize,
    pub def: Def,
    pub state: CtrlState,
    /// Its namespaces (block devices `<name>n<nsid>`).
    pub ns: [FoundNs; MAX_CTRL_NS],
    pub count: usize,
    /// Mappings to restore once attached (from flash): (remote NSID,
    /// function, NSID).
    pub remap: [Option<(u32, u16, u32)>; MAX_CTRL_NS],
    /// A request waits for the attach's answer (not one restored from flash).
    answer: bool,
}

impl Ctrl {
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// The outcome of an attach, for the request waiting on it.
pub enum Answer {
    /// Attached: the block devices' names.
    Attached { index: usize },
    Failed(RpcError),
}

/// The management server's run-time controllers.
pub struct Nvme {
    ctrls: [Option<Ctrl>; MAX_NVME],
    /// Requests for the fabrics service (taken by its loop).
    requests: Deque<Request, 4>,
    /// Attaches that ended and whose request has not been answered yet:
    /// (controller index, answer).
    answers: Deque<(usize, Answer), 4>,
}

impl Nvme {
    pub fn new() -> Nvme {
        Nvme { ctrls: [const { None }; MAX_NVME], requests: Deque::new(), answers: Deque::new() }
    }

    pub fn ctrls(&self) -> impl Iterator<Item = &Ctrl> {
        self.ctrls.iter().flatten()
    }

    pub fn by_index(&self, index: usize) -> Option<&Ctrl> {
        self.ctrls().find(|c| c.index == index)
    }

    fn by_name(&self, name: &str) -> Option<usize> {
        self.ctrls.iter().position(|c| c.as_ref().is_some_and(|c| c.name() == name))
    }

    /// A request for the fabrics service.
    pub fn take_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The answer for the request waiting on controller `index`, if its
    /// attach has ended.
    pub fn take_answer(&mut self, index: usize) -> Option<Answer> {
        let n = self.answers.len();
        for _ in 0..n {
            let (i, a) = self.answers.pop_front()?;
            if i == index {
                return Some(a);
            }
            let _ = self.answers.push_back((i, a));
        }
        None
    }

    /// SPDK `bdev_nvme_attach_controller`: checks the parameters and the
    /// limits and asks the fabrics service to connect. Returns the index
    /// the answer will come for.
    pub fn attach(&mut self, p: &Params<'_>, live: &Live) -> Result<usize, RpcError> {
        let mut bufs = Buffers::new();
        let a = AttachController::parse(p, &mut bufs)?;
        let (name, traddr, trsvcid, subnqn, hostnqn) = (a.name, a.traddr, a.trsvcid, a.subnqn, a.hostnqn);
        // The defaults in force (`dpu_nvme_set_options`).
        let dflt = super::settings::default_digests();
        let digests = Digests { header: a.hdgst.unwrap_or(dflt.header), data: a.ddgst.unwrap_or(dflt.data) };
        let mut hb = [0u8; crate::nvmf::ctrls::NQN_MAX];
        let hostnqn = if hostnqn.is_empty() { super::settings::default_hostnqn(&mut hb) } else { hostnqn };
        check_ctrl_name(name)?;
        // Names and limits, before anything is published.
        if self.by_name(name).is_some() || (0..bootcfg::controllers()).any(|i| eq_nvme(name, i)) {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a controller named `{name}` exists")));
        }
        if let Some(b) = live.bdevs().find(|b| b.name().strip_prefix(name).is_some_and(|r| r.starts_with('n') && r[1..].parse::<u32>().is_ok())) {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: block device `{}` would clash with `{name}`'s", b.name())));
        }
        let port = net::port_for(traddr).ok_or_else(|| {
            let t = traddr;
            RpcError::invalid_params(format_args!("invalid params: `traddr` {}.{}.{}.{} is in the subnet of no DPU port", t[0], t[1], t[2], t[3]))
        })?;
        if let Some(c) = self.ctrls().find(|c| c.def.traddr == traddr && c.def.trsvcid == trsvcid && c.def.subnqn() == subnqn.as_bytes()) {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: `{}` is attached to that subsystem at that address", c.name())));
        }
        let slot = self.ctrls.iter().position(|c| c.is_none()).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_NVME} controllers attached at run time")))?;
        let used: [bool; MAX_CTRLS] = core::array::from_fn(|i| i < bootcfg::controllers() || self.by_index(i).is_some());
        let index = used.iter().position(|u| !u).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: all {MAX_CTRLS} remote controller slots are taken")))?;
        // Each data-plane core keeps LIVE_CTRL_SOCKETS sockets per port
        // for the I/O queues of run-time controllers.
        let on_port = self.ctrls().filter(|c| net::port_for(c.def.traddr) == Some(port)).count();
        if on_port >= LIVE_CTRL_SOCKETS {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: each core has {LIVE_CTRL_SOCKETS} connections per port for run-time controllers")));
        }
        if self.requests.is_full() || self.answers.is_full() {
            return Err(RpcError::new(code::BUSY, "busy: other attaches are in progress; retry"));
        }
        let def = Def::new(traddr, trsvcid, subnqn.as_bytes(), hostnqn.as_bytes(), digests).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `subnqn` or `hostnqn` too long")))?;
        self.start(slot, name, index, def, false);
        Ok(index)
    }

    /// Records controller `name` at `index` and asks for its connection
    /// (`retry`: until it is made, restored from flash).
    fn start(&mut self, slot: usize, name: &str, index: usize, def: Def, retry: bool) {
        let _ = self.requests.push_back(Request::Attach { index, def, retry });
        self.ctrls[slot] = Some(Ctrl {
            name: heapless::String::try_from(name).unwrap_or_default(),
            index,
            def,
            state: CtrlState::Attaching,
            ns: [FoundNs::default(); MAX_CTRL_NS],
            count: 0,
            remap: [None; MAX_CTRL_NS],
            answer: !retry,
        });
        defmt::info!("mgmt: attaching controller {=str} as index {=usize}", name, index);
    }

    /// Controller `c` from the configuration in flash: attached again
    /// the same way (its mappings follow once it is), but retried until
    /// the target answers (a card restarted while its target is down
    /// keeps the controller).
    pub fn restore(&mut self, c: &dpu_config::NvmeController, live: &Live) {
        if self.by_name(&c.name).is_some() {
            return;
        }
        let digests = Digests { header: c.hdgst, data: c.ddgst };
        let used: [bool; MAX_CTRLS] = core::array::from_fn(|i| i < bootcfg::controllers() || self.by_index(i).is_some());
        let (Some(slot), Some(index), Some(def)) = (
            self.ctrls.iter().position(|c| c.is_none()),
            used.iter().position(|u| !u),
            Def::new(c.traddr, c.trsvcid, c.subnqn.as_bytes(), c.hostnqn.as_bytes(), digests),
        ) else {
            defmt::error!("mgmt: controller {=str} from flash not restored: no free slot", c.name.as_str());
            return;
        };
        let _ = live;
        self.start(slot, &c.name, index, def, true);
        if let Some(ctrl) = self.ctrls[slot].as_mut() {
            for (r, m) in ctrl.remap.iter_mut().zip(c.maps.iter()) {
                *r = Some(*m);
            }
        }
    }

    /// The fabrics service's word on an attach: the block devices are
    /// made (or the controller forgotten), and the waiting request gets
    /// its answer.
    pub fn outcome(&mut self, o: Outcome, live: &mut Live) {
        match o {
            Outcome::Attached { index, ns, count } => {
                let Some(c) = self.ctrls.iter_mut().flatten().find(|c| c.index == index) else { return };
                c.state = CtrlState::Attached;
                let mut made = 0;
                for f in &ns[..count.min(MAX_CTRL_NS)] {
                    let name = bdev_name(c.name(), f.nsid);
                    match live.add_remote(&name, index as u16, f.nsid, f.blocks, f.block_shift) {
                        Ok(()) => {
                            c.ns[made] = *f;
                            made += 1;
                        }
                        Err(e) => defmt::error!("mgmt: {=str}: no block device: {=str}", name.as_str(), e.message()),
                    }
                }
                c.count = made;
                defmt::info!("mgmt: controller {=str} attached: {=usize} namespace(s)", c.name(), made);
                // Mappings from flash.
                let remap = core::mem::replace(&mut c.remap, [None; MAX_CTRL_NS]);
                for (rn, f, nsid) in remap.into_iter().flatten() {
                    if let Err(e) = live.attach(&bdev_name(c.name(), rn), f, nsid) {
                        defmt::error!("mgmt: {=str}n{=u32} from flash not mapped: {=str}", c.name(), rn, e.message());
                    }
                }
                if c.answer {
                    let _ = self.answers.push_back((index, Answer::Attached { index }));
                }
            }
            Outcome::Failed { index, why, status } => {
                let Some(k) = self.ctrls.iter().position(|c| c.as_ref().is_some_and(|c| c.index == index)) else { return };
                let Some(c) = self.ctrls[k].take() else { return };
                let name = c.name;
                defmt::warn!("mgmt: controller {=str} not attached: {=str}", name.as_str(), why);
                let e = if status != 0 {
                    RpcError::fmt(NO_DEVICE_OR_ADDRESS, format_args!("attach `{}` failed: {why} (status {status:#x})", name.as_str()))
                } else {
                    RpcError::fmt(NO_DEVICE_OR_ADDRESS, format_args!("attach `{}` failed: {why}", name.as_str()))
                };
                if c.answer {
                    let _ = self.answers.push_back((index, Answer::Failed(e)));
                }
            }
        }
    }

    /// Writes the answer of an attach that succeeded: the block devices'
    /// names (SPDK's result).
    pub fn names(&self, index: usize, w: &mut Writer<'_>) {
        w.begin_array();
        if let Some(c) = self.by_index(index) {
            for f in &c.ns[..c.count] {
                w.string_fmt(format_args!("{}n{}", c.name(), f.nsid));
            }
        }
        w.end_array();
    }

    /// SPDK `bdev_nvme_detach_controller` {name}: refused while one of
    /// its block devices is mapped.
    pub fn detach(&mut self, p: &Params<'_>, w: &mut Writer<'_>, live: &mut Live) -> Result<(), RpcError> {
        p.only(&["name"])?;
        let mut nb = [0u8; CTRL_NAME_MAX + 1];
        let name = Params::required("name", p.str("name", &mut nb)?)?;
        let Some(k) = self.by_name(name) else {
            if (0..bootcfg::controllers()).any(|i| eq_nvme(name, i)) {
                return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` comes from the boot configuration")));
            }
            return Err(super::methods::no_device("controller", name));
        };
        let Some((index, state, answer)) = self.ctrls[k].as_ref().map(|c| (c.index, c.state, c.answer)) else { return Err(super::methods::no_device("controller", name)) };
        // One restored from flash may wait on a target that is gone for
        // good: it can be detached while it retries.
        if state == CtrlState::Attaching && answer {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is still attaching")));
        }
        if let Some(b) = live.remote_user(index as u16) {
            if let (Some(vol), Map::None) = (b.member_of, b.map) {
                return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{}` is a member of EC volume `{}`; delete it first", b.name(), live.ec_name(vol))));
            }
            if let (Some(c), Map::None) = (b.crypto, b.map) {
                return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{}` sits on `{}`; delete it first", b.name(), c.base())));
            }
            let (f, n) = b.map.target().unwrap_or((0, 0));
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{}` is {} as namespace {n} of function {f}", b.name(), b.map.state())));
        }
        if self.requests.is_full() {
            return Err(RpcError::new(code::BUSY, "busy: other changes are in progress; retry"));
        }
        live.remove_remote(index as u16);
        let _ = self.requests.push_back(Request::Detach { index });
        self.ctrls[k] = None;
        defmt::info!("mgmt: controller {=str} detached", name);
        w.bool(true);
        Ok(())
    }

    /// What the configuration in flash keeps: every attached (or
    /// attaching) controller and the mappings of its devices.
    pub fn snapshot(&self, live: &Live, out: &mut heapless::Vec<dpu_config::NvmeController, MAX_NVME>) {
        out.clear();
        for c in self.ctrls() {
            let mut maps = heapless::Vec::new();
            match c.state {
                // Not back yet: keep what flash said.
                CtrlState::Attaching => {
                    for m in c.remap.iter().flatten() {
                        let _ = maps.push(*m);
                    }
                }
                CtrlState::Attached => {
                    for f in &c.ns[..c.count] {
                        if let Some((fun, nsid)) = live.bdev(&bdev_name(c.name(), f.nsid)).and_then(|b| b.map.kept()) {
                            let _ = maps.push((f.nsid, fun, nsid));
                        }
                    }
                }
            }
            let _ = out.push(dpu_config::NvmeController {
                name: heapless::String::try_from(c.name()).unwrap_or_default(),
                traddr: c.def.traddr,
                trsvcid: c.def.trsvcid,
                subnqn: core::str::from_utf8(c.def.subnqn()).ok().and_then(|s| heapless::String::try_from(s).ok()).unwrap_or_default(),
                hostnqn: core::str::from_utf8(c.def.own_hostnqn()).ok().and_then(|s| heapless::String::try_from(s).ok()).unwrap_or_default(),
                hdgst: c.def.digests.header,
                ddgst: c.def.digests.data,
                maps,
            });
        }
    }
}

/// `<name>n<nsid>`: a run-time controller's block device.
pub fn bdev_name(ctrl: &str, nsid: u32) -> heapless::String<NAME_MAX> {
    let mut s = heapless::String::new();
    let _ = core::fmt::Write::write_fmt(&mut s, format_args!("{ctrl}n{nsid}"));
    s
}

/// Whether `name` is `nvme<i>` (a boot controller's name).
fn eq_nvme(name: &str, i: usize) -> bool {
    name.strip_prefix("nvme").and_then(|d| d.parse::<usize>().ok()) == Some(i)
}

/// Names the card reserves (`fn<F>n<N>`: a boot namespace's device).
fn check_ctrl_name(n: &str) -> Result<(), RpcError> {
    if super::live::parse_fn_name(n).is_some() {
        return Err(RpcError::invalid_params(format_args!("invalid params: `name` `{n}` is reserved (fn<F>n<N>)")));
    }
    Ok(())
}
