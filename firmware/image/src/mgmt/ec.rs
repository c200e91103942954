//! Erasure-coded volumes made at run time (ours: `bdev_ec_create` /
//! `bdev_ec_delete`; SPDK's nearest is `bdev_raid_create`, whose `name`
//! and `base_bdevs` they keep).
//!
//! The members are namespaces of remote controllers attached at run time
//! (`<ctrl>n<nsid>`, `super::nvme`), by block device name: k + m in slot
//! order, then the spares. The server checks everything first (names,
//! members free and of one block size, their controllers connected, a
//! free volume index and device entry), so a refused create leaves
//! nothing; then the volume becomes a run-time block device (mapped with
//! `dpu_ns_attach` like the others), its members are claimed, and the
//! whole table of run-time volumes is published to the data plane
//! (`crate::block::ec::live`, a seqlock, never shared mutable state).
//! The volume's repair core starts it as a new volume: a fresh identity,
//! every member in service, superblocks written (`ec::superblock`); I/O
//! waits until they are on the media.
//!
//! A delete is refused while the volume is mapped (or being unmapped) or
//! under a crypto device; otherwise the members are free again at once
//! and the volume leaves the publication. Its index is reused only after
//! its repair core dropped it ([`ecl::dropped`]).

use super::live::{parse_fn_name, Live, Malloc, Map, NAME_MAX};
use super::Name;
use crate::block::ec::live::{self as ecl, Vol, MAX_EC_VOLUMES};
use crate::bootcfg::{self, EcVolume, MAX_EC_MEMBERS};
use dpu_hal::regs::bootcfg as b;
use dpu_rpc::ec_create::{self as ecc, EcCreate, Limits};
use dpu_rpc::{code, Params, RpcError, Writer};

/// SPDK answers a device that cannot be reached with -ENXIO.
const NO_DEVICE_OR_ADDRESS: i32 = super::nvme::NO_DEVICE_OR_ADDRESS;

/// The published table, in DDR (4.6 KiB: not on the network service's
/// 64 KiB stack, where the server lives).
struct VolTable([Option<Vol>; MAX_EC_VOLUMES]);

impl dpu_rt::ConstInit for VolTable {
    const INIT: VolTable = VolTable([None; MAX_EC_VOLUMES]);
}

/// The management server's run-time volumes (the publication's source).
pub struct EcVols {
    /// `None`: no memory for it (every create is refused).
    vols: Option<&'static mut VolTable>,
    /// The generation of the last volume made at each index.
    last: [u32; MAX_EC_VOLUMES],
    next_generation: u32,
}

impl EcVols {
    pub fn new() -> EcVols {
        EcVols { vols: dpu_rt::alloc::ddr_static::<VolTable>(), last: [0; MAX_EC_VOLUMES], next_generation: 1 }
    }

    fn get(&self, vol: usize) -> Option<&Vol> {
        self.vols.as_deref()?.0.get(vol)?.as_ref()
    }

    fn set(&mut self, vol: usize, v: Option<Vol>) {
        if let Some(slot) = self.vols.as_deref_mut().and_then(|t| t.0.get_mut(vol)) {
            *slot = v;
        }
    }

    fn publish(&self) {
        let Some(t) = self.vols.as_deref() else { return };
        ecl::publish(&t.0);
        for q in 0..crate::net::DATA_CORES {
            dpu_hal::mailbox::ring(crate::net::FIRST_DATA_HART + q, crate::nvmf::DOORBELL_NVMF);
        }
    }

    /// A free volume index: no boot volume, no run-time one, and the
    /// last one made there dropped by the data plane.
    fn free_index(&self) -> Option<usize> {
        self.vols.as_ref()?;
        (0..MAX_EC_VOLUMES).find(|&i| bootcfg::ec_volume(i as u16).is_none() && self.get(i).is_none() && ecl::dropped(i) == self.last[i])
    }
}

/// The card's limits for `bdev_ec_create`.
pub fn limits() -> Limits {
    Limits { max_k: dpu_hal::memory_map::EC_MAX_K as u8, max_m: dpu_hal::memory_map::EC_MAX_M as u8, max_members: MAX_EC_MEMBERS }
}

impl Live {
    /// The name of run-time EC volume `vol`.
    pub fn ec_name(&self, vol: u16) -> &str {
        // (Not a crypto device on it, which shares `ec`.)
        self.bdevs().find(|b| b.ec == Some(vol) && b.crypto.is_none()).map_or("?", |b| b.name())
    }

    /// Run-time EC volume `vol` as published.
    pub fn ec_volume(&self, vol: u16) -> Option<&Vol> {
        self.ecs.get(usize::from(vol))
    }

    /// The block devices of volume `vol`'s member records (members in slot
    /// order, then spares).
    pub fn ec_members(&self, vol: u16) -> impl Iterator<Item = &str> {
        let v = self.ec_volume(vol).map(|v| v.def);
        let n = v.map_or(0, |v| v.width() + usize::from(v.spares));
        (0..n).map(move |j| {
            let r = v.map(|v| v.members[j]);
            self.bdevs().find(|b| b.member_of == Some(vol) && b.remote == r).map_or("?", |b| b.name())
        })
    }

    /// Ours, `bdev_ec_create` {name, k, m, base_bdevs, spares?,
    /// scrub_every_ms?}: returns the name.
    pub fn ec_create(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        let c = EcCreate::parse(p, limits())?;
        self.ec_make(&c, true)?;
        w.string(c.name());
        Ok(())
    }

    /// Makes volume `c` (checked here against the card's state first:
    /// nothing is changed when it is refused); `fresh`: a new volume
    /// (else one restored from flash, whose superblocks decide).
    pub fn ec_make(&mut self, c: &EcCreate, fresh: bool) -> Result<u16, RpcError> {
        let name = c.name();
        if self.bdev(name).is_some() || parse_fn_name(name).is_some() || super::methods::boot_bdev(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a block device named `{name}` exists (or the name is reserved)")));
        }
        let mut members = [(0u16, 0u32); MAX_EC_MEMBERS];
        let (mut shift, mut smallest) = (0u8, u64::MAX);
        for (i, base) in c.bases().enumerate() {
            let m = self.member_check(i, base)?;
            let Some((ctrl, nsid)) = m.remote else { return Err(member_error(i, base, "is no remote namespace")) };
            if i == 0 {
                shift = m.block_shift;
            } else if m.block_shift != shift {
                return Err(RpcError::invalid_params(format_args!(
                    "invalid params: `base_bdevs[{i}]` `{base}` has blocks of {} B, `base_bdevs[0]` of {} B: members must have one block size",
                    1u64 << m.block_shift,
                    1u64 << shift
                )));
            }
            if !crate::nvmf::published(usize::from(ctrl)).up {
                return Err(RpcError::fmt(NO_DEVICE_OR_ADDRESS, format_args!("cannot reach `base_bdevs[{i}]` `{base}`: its controller is not connected")));
            }
            members[i] = (ctrl, nsid);
            smallest = smallest.min(m.blocks << m.block_shift);
        }
        if usize::from(shift) > b::EC_CHUNK.trailing_zeros() as usize {
            return Err(RpcError::invalid_params(format_args!("invalid params: members have blocks of {} B, at most {} B (a fragment)", 1u64 << shift, b::EC_CHUNK)));
        }
        let stripes = ecc::stripes(smallest, b::EC_CHUNK as u64);
        if stripes == 0 {
            return Err(RpcError::invalid_params(format_args!("invalid params: the smallest member ({smallest} B) holds no stripe besides its superblock")));
        }
        // Room: a device entry for the volume, a volume index.
        if self.bdevs.iter().all(|b| b.is_some()) {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {} run-time block devices", super::live::MAX_MALLOC)));
        }
        let Some(vol) = self.ecs.free_index() else {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: all {MAX_EC_VOLUMES} EC volume slots are taken (or a deleted volume's is still being dropped; retry)")));
        };
        let def = EcVolume { k: c.k, m: c.m, members, spares: c.spares, scrub_at_us: 0, scrub_every_ms: c.scrub_every_ms };
        let generation = self.ecs.next_generation;
        let v = Vol { def, shift, stripes, generation, fresh };
        let Some(slot) = self.bdevs.iter().position(|b| b.is_none()) else { return Err(RpcError::new(code::NO_MEMORY, "out of memory: no run-time block device entry")) };
        self.bdevs[slot] = Some(Malloc { name: Name::new(name), remote: None, base: 0, blocks: v.blocks(), block_shift: shift, map: Map::None, crypto: None, claimed: false, ec: Some(vol as u16), member_of: None, counted: false });
        for base in c.bases() {
            if let Some(b) = self.position(base).and_then(|i| self.bdevs[i].as_mut()) {
                b.member_of = Some(vol as u16);
            }
        }
        self.ecs.next_generation = generation.wrapping_add(1).max(1);
        self.ecs.last[vol] = generation;
        self.ecs.set(vol, Some(v));
        self.ecs.publish();
        defmt::info!("mgmt: EC volume {=str}: {=u8}+{=u8} ({=u8} spare(s)) as volume {=usize}, {=u64} blocks of {=u32} B ({=u64} stripes)", name, c.k, c.m, c.spares, vol, v.blocks(), 1u32 << shift, stripes);
        Ok(vol as u16)
    }

    /// Base block device `base` (`base_bdevs[i]`) can be a member: it
    /// exists (-19), is a remote namespace (-32602), and is not in use:
    /// mapped, under a crypto device or another volume's member (-16).
    fn member_check(&self, i: usize, base: &str) -> Result<Malloc, RpcError> {
        let Some(m) = self.bdev(base).copied() else {
            if let Some((f, n)) = parse_fn_name(base).filter(|&(f, n)| bootcfg::namespace(f, n).is_some()) {
                return Err(RpcError::fmt(code::BUSY, format_args!("busy: `base_bdevs[{i}]` `{base}` is namespace {n} of function {f} (boot configuration)")));
            }
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `base_bdevs[{i}]` `{base}`")));
        };
        if m.crypto.is_some() || m.ec.is_some() || m.remote.is_none() {
            return Err(member_error(i, base, "is no namespace of a remote controller (members are `<controller>n<nsid>` devices)"));
        }
        if let Some(vol) = m.member_of {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `base_bdevs[{i}]` `{base}` is a member of EC volume `{}`", self.ec_name(vol))));
        }
        if let Some((f, n)) = m.map.target() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `base_bdevs[{i}]` `{base}` is {} as namespace {n} of function {f}", m.map.state())));
        }
        if m.claimed {
            let user = self.crypto_on(base).unwrap_or("a crypto device");
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `base_bdevs[{i}]` `{base}` is under crypto device `{user}`")));
        }
        Ok(m)
    }

    /// What the configuration in flash keeps of the run-time volumes.
    pub fn ec_snapshot(&self, out: &mut heapless::Vec<dpu_config::EcBdev, { dpu_config::MAX_EC_BDEVS }>) {
        out.clear();
        for b in self.bdevs().filter(|b| b.crypto.is_none()) {
            let (Some(vol), Some(v)) = (b.ec, b.ec.and_then(|vol| self.ec_volume(vol))) else { continue };
            let d = v.def;
            let mut base_bdevs = heapless::Vec::new();
            for name in self.ec_members(vol) {
                let _ = base_bdevs.push(heapless::String::try_from(name).unwrap_or_default());
            }
            let name = heapless::String::try_from(b.name()).unwrap_or_default();
            let _ = out.push(dpu_config::EcBdev { name, k: d.k, m: d.m, spares: d.spares, scrub_every_ms: d.scrub_every_ms, base_bdevs, map: b.map.kept() });
        }
    }

    /// Volume `e` from the configuration in flash, made again once every
    /// base device is back (its controller attached again): `Ok(false)`
    /// while one is missing or not connected yet. Its superblocks decide
    /// which members are trusted (not a new volume).
    pub fn ec_restore(&mut self, e: &dpu_config::EcBdev) -> Result<bool, RpcError> {
        if self.bdev(&e.name).is_some() {
            return Ok(true);
        }
        let back = e.base_bdevs.iter().all(|b| self.bdev(b).and_then(|m| m.remote).is_some_and(|(ctrl, _)| crate::nvmf::published(usize::from(ctrl)).up));
        if !back {
            return Ok(false);
        }
        let c = EcCreate::from_parts(&e.name, e.k, e.m, e.spares, e.scrub_every_ms, e.base_bdevs.iter().map(|b| b.as_str())).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: a name is not valid")))?;
        self.ec_make(&c, false)?;
        Ok(true)
    }

    /// Ours, `bdev_ec_delete` {name}: refused while mapped or under a
    /// crypto device (-16); the members are free again.
    pub fn ec_delete(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["name"])?;
        let mut nb = [0u8; NAME_MAX + 1];
        let name = Params::required("name", p.str("name", &mut nb)?)?;
        let i = self.position(name).ok_or_else(|| super::methods::no_device("EC bdev", name))?;
        let Some(m) = self.bdevs[i] else { return Err(super::methods::no_device("EC bdev", name)) };
        let Some(vol) = m.ec.filter(|_| m.crypto.is_none()) else {
            return Err(RpcError::fmt(code::NO_SUCH_DEVICE, format_args!("No such device: `{name}` is no EC volume")));
        };
        if let Some((f, n)) = m.map.target() {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: `{name}` is {} as namespace {n} of function {f}; detach it first", m.map.state())));
        }
        if let Some(user) = self.crypto_on(name) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{user}` sits on `{name}`; delete it first")));
        }
        self.bdevs[i] = None;
        for b in self.bdevs.iter_mut().flatten() {
            if b.member_of == Some(vol) {
                b.member_of = None;
            }
        }
        self.ecs.set(usize::from(vol), None);
        self.ecs.publish();
        defmt::info!("mgmt: EC volume {=str} (volume {=u16}) deleted; its members are free", name, vol);
        w.bool(true);
        Ok(())
    }
}

fn member_error(i: usize, base: &str, what: &str) -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `base_bdevs[{i}]` `{base}` {what}"))
}
