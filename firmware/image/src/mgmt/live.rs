//! Live configuration changes through the management API: RAM block
//! devices (SPDK `bdev_malloc_create` / `bdev_malloc_delete`) and their
//! mapping to a PCIe function's namespace (ours: `dpu_ns_attach` /
//! `dpu_ns_detach`, SPDK has no equivalent).
//!
//! The management server owns this state; the data plane learns of a
//! change only by message (`crate::nvme::live`): the admin service
//! applies it to its copy and every engine's, and answers when an
//! attach is served and when a detached namespace's last command has
//! completed. Until then the mapping shows as `attaching` /
//! `detaching`, and a detaching namespace ID or block device cannot be
//! mapped again, nor the device deleted (-16).
//!
//! A deleted device's memory is not reused: the RAM pool is a bump
//! allocator, and a new device must not show an old one's data.

use crate::bootcfg;
use crate::nvme::live::{self as nlive, Change, LiveBackend, LiveNs, Outcome};
use dpu_hal::memory_map::{MAX_FUNCTIONS, MAX_NSID};
use dpu_ring::{Consumer, Producer};
use dpu_rpc::{code, Params, RpcError, Writer};

/// Most RAM block devices created at run time.
pub const MAX_MALLOC: usize = nlive::MAX_LIVE;
// Every device the server can hold can be saved in flash.
const _: () = assert!(MAX_MALLOC == dpu_config::MAX_MALLOC && NAME_MAX == dpu_config::MALLOC_NAME_MAX);
/// Longest block device name.
pub const NAME_MAX: usize = 31;

/// Where a block device is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    None,
    /// Sent to the admin service, not confirmed yet.
    Attaching { function: u16, nsid: u32 },
    Attached { function: u16, nsid: u32 },
    /// Detached; commands of the namespace may still be in flight.
    Detaching { function: u16, nsid: u32 },
}

impl Map {
    /// The (function, NSID) it is or is being mapped to, or left.
    pub fn target(self) -> Option<(u16, u32)> {
        match self {
            Map::None => None,
            Map::Attaching { function, nsid } | Map::Attached { function, nsid } | Map::Detaching { function, nsid } => Some((function, nsid)),
        }
    }

    /// The mapping the configuration in flash keeps: the one asked for
    /// (attaching or attached); a detaching device is unmapped.
    pub fn kept(self) -> Option<(u16, u32)> {
        match self {
            Map::Attaching { function, nsid } | Map::Attached { function, nsid } => Some((function, nsid)),
            Map::None | Map::Detaching { .. } => None,
        }
    }

    pub fn state(self) -> &'static str {
        match self {
            Map::None => "unmapped",
            Map::Attaching { .. } => "attaching",
            Map::Attached { .. } => "ready",
            Map::Detaching { .. } => "detaching",
        }
    }
}

/// A crypto block device's layer (`bdev_crypto_create`): the engines'
/// key slot its key was unwrapped into, its base device and key names.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub slot: u16,
    base: super::Name<NAME_MAX>,
    key: super::Name<NAME_MAX>,
}

impl Layer {
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    pub fn key(&self) -> &str {
        self.key.as_str()
    }
}

/// A block device made at run time: a RAM device, a namespace of a
/// remote controller attached at run time (`remote`), or a crypto
/// device on one of those (`crypto`: same blocks, encrypted).
#[derive(Clone, Copy, Debug)]
pub struct Malloc {
    pub(super) name: super::Name<NAME_MAX>,
    /// (controller index, remote NSID) of a remote controller's
    /// namespace (`bdev_nvme_attach_controller`); `None`: RAM at `base`.
    pub remote: Option<(u16, u32)>,
    pub base: u64,
    pub blocks: u64,
    pub block_shift: u8,
    pub map: Map,
    /// A crypto device: its layer.
    pub crypto: Option<Layer>,
    /// A crypto device sits on it (it cannot be mapped or deleted).
    pub claimed: bool,
    /// An erasure-coded volume (`bdev_ec_create`): its index in the data
    /// plane's volume table (`crate::block::ec::live`).
    pub ec: Option<u16>,
    /// A member or spare of that erasure-coded volume (it cannot be
    /// mapped, deleted, encrypted or its controller detached).
    pub member_of: Option<u16>,
    /// It has been mapped since it was made: the data plane counts its
    /// I/O statistics (`crate::nvme::iostat`, cleared at the first mapping).
    pub counted: bool,
}

impl Malloc {
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// The management server's live configuration.
pub struct Live {
    pub(super) bdevs: [Option<Malloc>; MAX_MALLOC],
    /// Erasure-coded volumes made at run time (`super::ec`).
    pub(super) ecs: super::ec::EcVols,
    /// Next automatic name (`Malloc<n>`, as SPDK names them).
    next_auto: u32,
    tx: Option<Producer<'static, Change, { nlive::DEPTH }>>,
    rx: Option<Consumer<'static, Outcome, { nlive::DEPTH }>>,
}

impl Live {
    pub fn new() -> Live {
        let (tx, rx) = match nlive::mgmt_ends() {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        Live { bdevs: [None; MAX_MALLOC], ecs: super::ec::EcVols::new(), next_auto: 0, tx, rx }
    }

    /// Takes the admin service's answers; returns how many.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        while let Some(o) = self.rx.as_mut().and_then(|rx| rx.pop()) {
            n += 1;
            for b in self.bdevs.iter_mut().flatten() {
                match (o, b.map) {
                    (Outcome::Attached { function, nsid }, Map::Attaching { function: f, nsid: n }) if (f, n) == (function, nsid) => {
                        b.map = Map::Attached { function, nsid };
                    }
                    (Outcome::Refused { function, nsid }, Map::Attaching { function: f, nsid: n }) if (f, n) == (function, nsid) => {
                        defmt::error!("mgmt: {=str}: the admin service refused namespace {=u32} of function {=u16}", b.name(), nsid, function);
                        b.map = Map::None;
                    }
                    (Outcome::Drained { function, nsid }, Map::Detaching { function: f, nsid: n }) if (f, n) == (function, nsid) => {
                        b.map = Map::None;
                    }
                    _ => {}
                }
            }
        }
        n
    }

    /// What the configuration in flash keeps of the RAM devices: name,
    /// size, and the mapping asked for ([`Map::kept`]). (A remote
    /// controller's devices are kept with it: `super::nvme`.)
    pub fn snapshot(&self, out: &mut heapless::Vec<dpu_config::Malloc, { dpu_config::MAX_MALLOC }>) {
        out.clear();
        for b in self.bdevs().filter(|b| b.remote.is_none() && b.crypto.is_none() && b.ec.is_none()) {
            let name = heapless::String::try_from(b.name()).unwrap_or_default();
            let _ = out.push(dpu_config::Malloc { name, blocks: b.blocks, block_shift: b.block_shift, map: b.map.kept() });
        }
    }

    /// The RAM block devices created at run time.
    pub fn bdevs(&self) -> impl Iterator<Item = &Malloc> {
        self.bdevs.iter().flatten()
    }

    pub fn bdev(&self, name: &str) -> Option<&Malloc> {
        self.bdevs().find(|b| b.name() == name)
    }

    /// The slot of device `name` (its I/O statistics' slot, `LiveNs::stat`).
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.bdevs.iter().position(|b| b.is_some_and(|b| b.name() == name))
    }

    /// Who uses namespace `nsid` of function `f`: a boot namespace, or a
    /// run-time block device (by name).
    fn user_of(&self, f: u16, nsid: u32) -> Option<&str> {
        if bootcfg::namespace(f, nsid).is_some() {
            return Some("the boot configuration");
        }
        self.bdevs().find(|b| b.map.target() == Some((f, nsid))).map(|b| b.name())
    }

    fn send(&mut self, c: Change) -> Result<(), RpcError> {
        let tx = self.tx.as_mut().ok_or_else(|| RpcError::new(code::INTERNAL_ERROR, "internal error: no channel to the admin service"))?;
        tx.push(c).map_err(|_| RpcError::new(code::BUSY, "busy: the admin service has not taken the previous changes yet; retry"))?;
        dpu_hal::mailbox::ring(crate::nvme::ADMIN_HART, crate::nvme::msg::DOORBELL_NVME);
        Ok(())
    }

    /// SPDK `bdev_malloc_create`: `num_blocks`, `block_size` (512 or
    /// 4096), optional `name`. Returns the name.
    pub fn malloc_create(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["name", "num_blocks", "block_size"])?;
        let mut nb = [0u8; NAME_MAX];
        let given = p.str("name", &mut nb)?;
        let blocks = Params::required("num_blocks", p.u64_in("num_blocks", 1..=u64::from(u32::MAX))?)?;
        let bs = Params::required("block_size", p.u64("block_size")?)?;
        if bs != 512 && bs != 4096 {
            return Err(RpcError::invalid_params(format_args!("invalid params: `block_size` must be 512 or 4096, got {bs}")));
        }
        let auto;
        let name = match given {
            Some(n) => {
                check_name(n)?;
                n
            }
            None => {
                // Past the names taken (devices restored from flash keep theirs).
                while self.bdev(&auto_name(self.next_auto)).is_some() {
                    self.next_auto += 1;
                }
                auto = auto_name(self.next_auto);
                auto.as_str()
            }
        };
        self.create(name, blocks, bs.trailing_zeros() as u8)?;
        if given.is_none() {
            self.next_auto += 1;
        }
        w.string(name);
        Ok(())
    }

    /// Makes RAM block device `name` (checked) of `blocks` blocks of
    /// 2^`block_shift` bytes.
    pub fn create(&mut self, name: &str, blocks: u64, block_shift: u8) -> Result<(), RpcError> {
        let bs = 1u64 << block_shift;
        if self.bdev(name).is_some() || parse_fn_name(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a block device named `{name}` exists (or the name is reserved)")));
        }
        let slot = self.bdevs.iter().position(|b| b.is_none()).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_MALLOC} RAM block devices")))?;
        let bytes = blocks * bs;
        let base = dpu_rt::alloc::ram_namespace(bytes).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: no room for {bytes} bytes in the RAM namespace pool")))?;
        self.bdevs[slot] = Some(Malloc { name: super::Name::new(name), remote: None, base, blocks, block_shift, map: Map::None, crypto: None, claimed: false, ec: None, member_of: None, counted: false });
        defmt::info!("mgmt: RAM block device {=str}: {=u64} blocks of {=u64} B at {=u64:#x}", name, blocks, bs, base);
        Ok(())
    }

    /// Block device `name` for namespace `nsid` of run-time remote
    /// controller `ctrl`: `blocks` blocks of 2^`block_shift` bytes.
    pub fn add_remote(&mut self, name: &str, ctrl: u16, nsid: u32, blocks: u64, block_shift: u8) -> Result<(), RpcError> {
        if self.bdev(name).is_some() || parse_fn_name(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a block device named `{name}` exists (or the name is reserved)")));
        }
        let slot = self.bdevs.iter().position(|b| b.is_none()).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_MALLOC} run-time block devices")))?;
        self.bdevs[slot] = Some(Malloc { name: super::Name::new(name), remote: Some((ctrl, nsid)), base: 0, blocks, block_shift, map: Map::None, crypto: None, claimed: false, ec: None, member_of: None, counted: false });
        Ok(())
    }

    /// A block device of remote controller `ctrl` that is mapped (or
    /// being mapped or drained).
    pub fn remote_user(&self, ctrl: u16) -> Option<&Malloc> {
        self.bdevs().find(|b| b.remote.is_some_and(|(c, _)| c == ctrl) && (b.map != Map::None || b.crypto.is_some() || b.member_of.is_some()))
    }

    /// Removes remote controller `ctrl`'s block devices (none mapped).
    pub fn remove_remote(&mut self, ctrl: u16) {
        for b in self.bdevs.iter_mut() {
            if b.is_some_and(|m| m.remote.is_some_and(|(c, _)| c == ctrl)) {
                *b = None;
            }
        }
    }

    /// SPDK `bdev_malloc_delete` {name}: refused while mapped.
    pub fn malloc_delete(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["name"])?;
        let mut nb = [0u8; NAME_MAX];
        let name = Params::required("name", p.str("name", &mut nb)?)?;
        let i = self.position(name).ok_or_else(|| super::methods::no_device("bdev", name))?;
        if self.bdevs[i].is_some_and(|m| m.remote.is_some()) {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{name}` is no RAM device (bdev_nvme_detach_controller)")));
        }
        if self.bdevs[i].is_some_and(|m| m.crypto.is_some()) {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{name}` is no RAM device (bdev_crypto_delete)")));
        }
        if self.bdevs[i].is_some_and(|m| m.ec.is_some()) {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{name}` is no RAM device (bdev_ec_delete)")));
        }
        if let Some(user) = self.crypto_on(name) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{user}` sits on `{name}`; delete it first")));
        }
        if let Some(m) = self.bdevs[i].filter(|m| m.map != Map::None) {
            let (f, n) = m.map.target().unwrap_or((0, 0));
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is {} as namespace {n} of function {f}; detach it first", m.map.state())));
        }
        self.bdevs[i] = None;
        defmt::info!("mgmt: RAM block device {=str} deleted", name);
        w.bool(true);
        Ok(())
    }

    /// Ours, `dpu_ns_attach` {function, nsid, bdev}: block device `bdev`
    /// becomes namespace `nsid` of PCIe function `function`.
    pub fn ns_attach(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["function", "nsid", "bdev"])?;
        let (f, nsid) = function_nsid(p)?;
        let mut nb = [0u8; NAME_MAX];
        let name = Params::required("bdev", p.str("bdev", &mut nb)?)?;
        self.attach(name, f, nsid)?;
        w.bool(true);
        Ok(())
    }

    /// Maps block device `name` as namespace `nsid` of function `f`.
    pub fn attach(&mut self, name: &str, f: u16, nsid: u32) -> Result<(), RpcError> {
        let i = self.position(name).ok_or_else(|| super::methods::no_device("bdev", name))?;
        let Some(m) = self.bdevs[i] else { return Err(super::methods::no_device("bdev", name)) };
        if m.map != Map::None {
            let (f2, n2) = m.map.target().unwrap_or((0, 0));
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is {} as namespace {n2} of function {f2}", m.map.state())));
        }
        if m.claimed {
            let user = self.crypto_on(name).unwrap_or("a crypto device");
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{user}` sits on `{name}`; map that instead")));
        }
        if let Some(vol) = m.member_of {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is a member of EC volume `{}`; map that instead", self.ec_name(vol))));
        }
        if let Some(user) = self.user_of(f, nsid) {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: namespace {nsid} of function {f} is taken by {user}")));
        }
        let backend = match (m.ec, m.remote) {
            (Some(vol), _) => LiveBackend::Ec { vol },
            (None, Some((ctrl, nsid))) => LiveBackend::Remote { ctrl, nsid },
            (None, None) => LiveBackend::Ram { base: m.base },
        };
        let ns = LiveNs { function: f, nsid, backend, blocks: m.blocks, block_shift: m.block_shift, crypto: m.crypto.map(|c| c.slot), stat: i as u8, fresh: !m.counted };
        self.send(Change::Attach(ns))?;
        if let Some(b) = self.bdevs[i].as_mut() {
            b.map = Map::Attaching { function: f, nsid };
            b.counted = true;
        }
        Ok(())
    }

    /// The crypto device on block device `base`, if any.
    pub fn crypto_on(&self, base: &str) -> Option<&str> {
        self.bdevs().find(|b| b.crypto.is_some_and(|c| c.base() == base)).map(|b| b.name())
    }

    /// The crypto devices.
    pub fn cryptos(&self) -> impl Iterator<Item = (&Malloc, &Layer)> {
        self.bdevs().filter_map(|b| b.crypto.as_ref().map(|c| (b, c)))
    }

    /// Checks that crypto device `name` can be made on `base`: the name
    /// is free (-17), the base exists (-19), is no crypto device, not
    /// mapped nor under another crypto device (-16), and a device entry
    /// is free (-12).
    pub fn crypto_check(&self, name: &str, base: &str) -> Result<(), RpcError> {
        if self.bdev(name).is_some() || parse_fn_name(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a block device named `{name}` exists (or the name is reserved)")));
        }
        let Some(b) = self.bdev(base) else {
            if let Some((f, n)) = parse_fn_name(base).filter(|&(f, n)| bootcfg::namespace(f, n).is_some()) {
                return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{base}` is namespace {n} of function {f} (boot configuration)")));
            }
            return Err(super::methods::no_device("bdev", base));
        };
        if b.crypto.is_some() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{base}` is a crypto device (one layer only)")));
        }
        if let Some(user) = self.crypto_on(base) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{user}` sits on `{base}`")));
        }
        if let Some(vol) = b.member_of {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{base}` is a member of EC volume `{}`", self.ec_name(vol))));
        }
        if let Some((f, n)) = b.map.target() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{base}` is {} as namespace {n} of function {f}; detach it first", b.map.state())));
        }
        if self.bdevs.iter().all(|b| b.is_some()) {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_MALLOC} run-time block devices")));
        }
        Ok(())
    }

    /// Makes crypto device `name` on `base` with key `key` in key slot
    /// `slot` (after [`Live::crypto_check`]).
    pub fn crypto_add(&mut self, name: &str, base: &str, key: &str, slot: u16) -> Result<(), RpcError> {
        self.crypto_check(name, base)?;
        let Some(bi) = self.position(base) else { return Err(super::methods::no_device("bdev", base)) };
        let Some(b) = self.bdevs[bi] else { return Err(super::methods::no_device("bdev", base)) };
        let Some(i) = self.bdevs.iter().position(|b| b.is_none()) else {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_MALLOC} run-time block devices")));
        };
        let layer = Layer { slot, base: super::Name::new(base), key: super::Name::new(key) };
        // (On an EC volume, the crypto device's I/O goes to that volume.)
        self.bdevs[i] = Some(Malloc { name: super::Name::new(name), map: Map::None, crypto: Some(layer), claimed: false, member_of: None, counted: false, ..b });
        if let Some(b) = self.bdevs[bi].as_mut() {
            b.claimed = true;
        }
        Ok(())
    }

    /// Removes crypto device `name` (unmapped: -16 otherwise, -19 if
    /// there is none); returns its key slot.
    pub fn crypto_remove(&mut self, name: &str) -> Result<u16, RpcError> {
        let i = self.position(name).ok_or_else(|| super::methods::no_device("crypto bdev", name))?;
        let Some(m) = self.bdevs[i] else { return Err(super::methods::no_device("crypto bdev", name)) };
        let Some(layer) = m.crypto else {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{name}` is no crypto device")));
        };
        if let Some((f, n)) = m.map.target() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is {} as namespace {n} of function {f}; detach it first", m.map.state())));
        }
        self.bdevs[i] = None;
        if let Some(b) = self.position(layer.base()).and_then(|bi| self.bdevs[bi].as_mut()) {
            b.claimed = false;
        }
        Ok(layer.slot)
    }

    /// What the configuration in flash keeps of the crypto devices.
    pub fn crypto_snapshot(&self, out: &mut heapless::Vec<dpu_config::CryptoBdev, { dpu_config::MAX_CRYPTO_BDEVS }>) {
        out.clear();
        for (b, c) in self.cryptos() {
            let _ = out.push(dpu_config::CryptoBdev {
                name: heapless::String::try_from(b.name()).unwrap_or_default(),
                base: heapless::String::try_from(c.base()).unwrap_or_default(),
                key: heapless::String::try_from(c.key()).unwrap_or_default(),
                map: b.map.kept(),
            });
        }
    }

    /// Ours, `dpu_ns_detach` {function, nsid}: the namespace leaves the
    /// function (its commands in flight complete first).
    pub fn ns_detach(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["function", "nsid"])?;
        let (f, nsid) = function_nsid(p)?;
        if bootcfg::namespace(f, nsid).is_some() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: namespace {nsid} of function {f} comes from the boot configuration")));
        }
        let i = self
            .bdevs
            .iter()
            .position(|b| b.is_some_and(|b| matches!(b.map, Map::Attaching { .. } | Map::Attached { .. }) && b.map.target() == Some((f, nsid))))
            .ok_or_else(|| RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: function {f} has no attached namespace {nsid}")))?;
        self.send(Change::Detach { function: f, nsid })?;
        if let Some(b) = self.bdevs[i].as_mut() {
            b.map = Map::Detaching { function: f, nsid };
        }
        w.bool(true);
        Ok(())
    }
}

/// `function` and `nsid`, both required and in range.
fn function_nsid(p: &Params<'_>) -> Result<(u16, u32), RpcError> {
    let f = Params::required("function", p.u64_in("function", 0..=MAX_FUNCTIONS as u64 - 1)?)?;
    let nsid = Params::required("nsid", p.u64_in("nsid", 1..=u64::from(MAX_NSID))?)?;
    Ok((f as u16, nsid as u32))
}

/// A name of 1..=31 letters, digits, `_`, `-` or `.`.
fn check_name(n: &str) -> Result<(), RpcError> {
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `name` must be 1..={NAME_MAX} letters, digits, `_`, `-` or `.`")));
    }
    Ok(())
}

/// `Malloc<n>`, SPDK's automatic name.
fn auto_name(n: u32) -> heapless::String<NAME_MAX> {
    let mut s = heapless::String::new();
    // "Malloc" and at most 10 digits fit NAME_MAX.
    let _ = core::fmt::Write::write_fmt(&mut s, format_args!("Malloc{n}"));
    s
}

/// `fn<F>n<N>`: the name of a boot namespace's block device.
pub fn parse_fn_name(name: &str) -> Option<(u16, u32)> {
    let rest = name.strip_prefix("fn")?;
    let (f, n) = rest.split_once('n')?;
    let f: u16 = f.parse().ok()?;
    let n: u32 = n.parse().ok()?;
    (usize::from(f) < MAX_FUNCTIONS).then_some((f, n))
}
