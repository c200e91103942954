//! Live changes survive a restart: the RAM block devices made through the
//! management API and their mappings are part of the configuration in
//! flash (`dpu_config::Config::mallocs`, schema version 3), and so are
//! the NVMe/TCP target's subsystems made through it
//! (`dpu_config::Config::nvmf`, schema version 5), and the remote
//! controllers attached through it with their namespaces' mappings
//! (`dpu_config::Config::nvme`, schema version 7), and the crypto keys
//! (wrapped) and crypto devices made through it with their mappings
//! (`dpu_config::Config::crypto_keys`, `crypto_bdevs`, schema version 9),
//! and the erasure-coded volumes made through it with their mappings
//! (`dpu_config::Config::ec_bdevs`, schema version 10).
//! The settings changed through [`super::settings`] (port addresses,
//! the initiator's defaults, the TCP minimum RTO, the management rules)
//! are written into the fields the configuration always had
//! ([`Persist::update`]); the next boot's configuration blob carries
//! them, so nothing needs restoring.
//! The SR-IOV VF count (`dpu_config::Config::sriov_total_vfs`, schema
//! version 11: what the endpoint offers, once it is not the board's
//! maximum; applied at boot by `crate::boot::config_blob`).
//!
//! * At boot (booted from flash), the devices the flash configuration
//!   lists are made again (empty: their data lived in DPU memory) and
//!   mapped through the same path as `dpu_ns_attach`, so the admin
//!   service and every engine hear of them by message; then the
//!   subsystems, through the same checks as the `nvmf_*` methods
//!   (published to every core's target); then the remote controllers,
//!   attached again (retried until their target answers) and their
//!   devices mapped once they are. The wrapped keys are kept again at
//!   once; each crypto device is made again (its key unwrapped into a
//!   key slot) and mapped as soon as its base device is back. Each
//!   erasure-coded volume is made again (not as a new volume: its
//!   superblocks decide which members are trusted) and mapped as soon as
//!   all its members are back, before the crypto devices (one may sit on
//!   it).
//! * After that, whenever what [`Live`] holds differs from what was last
//!   saved, the server hands the whole configuration (the flashed one
//!   with the new device list) to the firmware update service's core,
//!   which writes it as the newest of the two copies
//!   (`dpu_config::store`: a power cut during the save leaves the
//!   previous copy). One save is outstanding at a time; changes made
//!   during a save are saved next.
//!
//! Loaded as an ELF (no flash), nothing is restored or saved.

use super::crypto::Keys;
use super::live::Live;
use super::nvme::{Nvme, MAX_NVME};
use super::nvmf::Nvmf;
use crate::fwupdate::{SaveConfig, Saved};
use dpu_config::{Config, CryptoBdev, CryptoKey, EcBdev, Malloc, NvmeController, NvmfSubsystem, MAX_CRYPTO_BDEVS, MAX_CRYPTO_KEYS, MAX_EC_BDEVS, MAX_MALLOC};
use dpu_hal::memory_map::MAX_SUBSYSTEMS;
use dpu_ring::{Consumer, Producer};
use heapless::Vec;

pub struct Persist {
    ends: Option<(Producer<'static, SaveConfig, 2>, Consumer<'static, Saved, 2>)>,
    /// The configuration as saved (or being saved), in DDR.
    config: Option<&'static mut Config>,
    /// Its encoding while a save is outstanding.
    bytes: Option<&'static mut [u8]>,
    /// Devices of the flash configuration made again so far, of `boot`.
    restored: usize,
    boot: usize,
    saving: Option<u32>,
    tag: u32,
    /// The last save that reached flash: (copy, sequence).
    saved: Option<(usize, u32)>,
    /// Scratch for comparing (DDR, not the stack).
    now: Option<&'static mut Vec<Malloc, MAX_MALLOC>>,
    now_nvmf: Option<&'static mut Vec<NvmfSubsystem, MAX_SUBSYSTEMS>>,
    now_nvme: Option<&'static mut Vec<NvmeController, MAX_NVME>>,
    /// The flash configuration's subsystems were made again.
    nvmf_restored: bool,
    now_keys: Option<&'static mut Vec<CryptoKey, MAX_CRYPTO_KEYS>>,
    now_crypto: Option<&'static mut Vec<CryptoBdev, MAX_CRYPTO_BDEVS>>,
    /// The flash configuration's crypto devices, and which of them are
    /// not made again yet (bit i: device i; waiting for their base).
    flash_crypto: Option<&'static mut Vec<CryptoBdev, MAX_CRYPTO_BDEVS>>,
    crypto_pending: u32,
    /// The same for the erasure-coded volumes (waiting for their members).
    now_ec: Option<&'static mut Vec<EcBdev, MAX_EC_BDEVS>>,
    flash_ec: Option<&'static mut Vec<EcBdev, MAX_EC_BDEVS>>,
    ec_pending: u32,
    /// Settings outside the lists changed (`super::settings`): save even
    /// when the lists did not.
    dirty: bool,
}

struct EcList(Vec<EcBdev, MAX_EC_BDEVS>);

impl dpu_rt::ConstInit for EcList {
    const INIT: EcList = EcList(Vec::new());
}
const _: () = assert!(MAX_EC_BDEVS <= 32);

struct KeyList(Vec<CryptoKey, MAX_CRYPTO_KEYS>);

impl dpu_rt::ConstInit for KeyList {
    const INIT: KeyList = KeyList(Vec::new());
}

struct CryptoList(Vec<CryptoBdev, MAX_CRYPTO_BDEVS>);

impl dpu_rt::ConstInit for CryptoList {
    const INIT: CryptoList = CryptoList(Vec::new());
}
const _: () = assert!(MAX_CRYPTO_BDEVS <= 32);

struct NvmeList(Vec<NvmeController, MAX_NVME>);

impl dpu_rt::ConstInit for NvmeList {
    const INIT: NvmeList = NvmeList(Vec::new());
}

struct NvmfList(Vec<NvmfSubsystem, MAX_SUBSYSTEMS>);

impl dpu_rt::ConstInit for NvmfList {
    const INIT: NvmfList = NvmfList(Vec::new());
}

struct CfgCopy(Config);

impl dpu_rt::ConstInit for CfgCopy {
    const INIT: CfgCopy = CfgCopy(Config::EMPTY);
}

struct List(Vec<Malloc, MAX_MALLOC>);

impl dpu_rt::ConstInit for List {
    const INIT: List = List(Vec::new());
}

impl Persist {
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn new() -> Persist {
        let mut p = Persist { ends: None, config: None, bytes: None, restored: 0, boot: 0, saving: None, tag: 0, saved: None, now: None, now_nvmf: None, now_nvme: None, nvmf_restored: false, now_keys: None, now_crypto: None, flash_crypto: None, crypto_pending: 0, now_ec: None, flash_ec: None, ec_pending: 0, dirty: false };
        let Some(flash) = crate::boot::flash_config() else { return p };
        let (Some(c), Some(b), Some(l), Some(v), Some(n), Some(ends)) = (
            dpu_rt::alloc::ddr_static::<CfgCopy>(),
            dpu_rt::alloc::ddr_bytes(dpu_config::store::MAX_ENCODED, 8),
            dpu_rt::alloc::ddr_static::<List>(),
            dpu_rt::alloc::ddr_static::<NvmfList>(),
            dpu_rt::alloc::ddr_static::<NvmeList>(),
            crate::fwupdate::config_ends(),
        ) else {
            defmt::error!("mgmt: no memory for the configuration: live changes are not saved");
            return p;
        };
        let (Some(k), Some(cb), Some(fc), Some(ne), Some(fe)) = (
            dpu_rt::alloc::ddr_static::<KeyList>(),
            dpu_rt::alloc::ddr_static::<CryptoList>(),
            dpu_rt::alloc::ddr_static::<CryptoList>(),
            dpu_rt::alloc::ddr_static::<EcList>(),
            dpu_rt::alloc::ddr_static::<EcList>(),
        ) else {
            defmt::error!("mgmt: no memory for the configuration: live changes are not saved");
            return p;
        };
        // In place (a configuration is tens of KiB: not via the stack).
        c.0.copy_from(flash);
        for d in c.0.crypto_bdevs.iter() {
            let _ = fc.0.push(d.clone());
        }
        for e in c.0.ec_bdevs.iter() {
            let _ = fe.0.push(e.clone());
        }
        p.ec_pending = (1u32 << fe.0.len()).wrapping_sub(1);
        p.now_ec = Some(&mut ne.0);
        p.flash_ec = Some(&mut fe.0);
        p.boot = c.0.mallocs.len();
        p.config = Some(&mut c.0);
        p.bytes = Some(b);
        p.now = Some(&mut l.0);
        p.now_nvmf = Some(&mut v.0);
        p.now_nvme = Some(&mut n.0);
        p.crypto_pending = (1u32 << fc.0.len()).wrapping_sub(1);
        p.now_keys = Some(&mut k.0);
        p.now_crypto = Some(&mut cb.0);
        p.flash_crypto = Some(&mut fc.0);
        p.ends = Some(ends);
        p
    }

    /// Restores what is left to restore, then saves what changed.
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn poll(&mut self, live: &mut Live, nvmf: &mut Nvmf, nvme: &mut Nvme, keys: &mut Keys) {
        let (Some(config), Some(now), Some(now_nvmf), Some(now_nvme), Some(now_keys), Some(now_crypto), Some(flash_crypto), Some((tx, rx))) = (
            self.config.as_deref_mut(),
            self.now.as_deref_mut(),
            self.now_nvmf.as_deref_mut(),
            self.now_nvme.as_deref_mut(),
            self.now_keys.as_deref_mut(),
            self.now_crypto.as_deref_mut(),
            self.flash_crypto.as_deref(),
            self.ends.as_mut(),
        ) else {
            return;
        };
        let (Some(now_ec), Some(flash_ec)) = (self.now_ec.as_deref_mut(), self.flash_ec.as_deref()) else { return };
        while let Some(r) = rx.pop() {
            if Some(r.tag) != self.saving {
                continue;
            }
            self.saving = None;
            if r.at.is_some() {
                self.saved = r.at;
            }
            match r.at {
                Some((copy, seq)) => defmt::info!(
                    "mgmt: configuration saved to flash (copy {=usize}, sequence {=u32}): {=usize} run-time block device(s), {=usize} run-time subsystem(s)",
                    copy,
                    seq,
                    config.mallocs.len(),
                    config.nvmf.len()
                ),
                None => defmt::error!("mgmt: the configuration could not be saved to flash (see the update service's log); retrying at the next change"),
            }
        }
        // Boot: the devices the flash configuration lists, one step at a
        // time (an attach waits while the admin service's ring is full).
        while let Some(m) = config.mallocs.get(self.restored).filter(|_| self.restored < self.boot) {
            if live.bdev(&m.name).is_none() {
                if let Err(e) = live.create(&m.name, m.blocks, m.block_shift) {
                    defmt::error!("mgmt: {=str} from flash not restored: {=str}", m.name.as_str(), e.message());
                }
            }
            if let Some((f, nsid)) = m.map {
                if live.bdev(&m.name).is_some_and(|b| b.map.state() == "unmapped") {
                    match live.attach(&m.name, f, nsid) {
                        Ok(()) => {}
                        Err(e) if e.code == dpu_rpc::code::BUSY => return,
                        Err(e) => defmt::error!("mgmt: {=str} from flash not mapped: {=str}", m.name.as_str(), e.message()),
                    }
                }
            }
            self.restored += 1;
            if self.restored == self.boot {
                defmt::info!("mgmt: restored {=usize} run-time block device(s) from flash", self.restored);
            }
        }
        if self.restored < self.boot {
            return; // the flash's list is not all back yet
        }
        // Then the subsystems (their namespaces name those devices).
        if !self.nvmf_restored {
            self.nvmf_restored = true;
            if !config.nvmf.is_empty() {
                nvmf.restore(&config.nvmf, live);
                defmt::info!("mgmt: restored {=usize} run-time subsystem(s) from flash", config.nvmf.len());
            }
            // Then the remote controllers (attached again in the background).
            for c in config.nvme.iter() {
                nvme.restore(c, live);
            }
            if !config.nvme.is_empty() {
                defmt::info!("mgmt: attaching {=usize} run-time controller(s) from flash", config.nvme.len());
            }
            // The wrapped keys (their devices unwrap them when made).
            for k in config.crypto_keys.iter() {
                if let Err(e) = keys.add(&k.name, &k.wrapped) {
                    defmt::error!("mgmt: crypto key {=str} from flash not kept: {=str}", k.name.as_str(), e.message());
                }
            }
        }
        // The EC volumes whose members are back (their controllers
        // attached again), then mapped.
        let mut pending = self.ec_pending;
        for (i, e) in flash_ec.iter().enumerate() {
            if pending & (1 << i) == 0 {
                continue;
            }
            match live.ec_restore(e) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(err) => {
                    defmt::error!("mgmt: EC volume {=str} from flash not made: {=str}", e.name.as_str(), err.message());
                    pending &= !(1 << i);
                    continue;
                }
            }
            if let Some((f, nsid)) = e.map {
                match live.attach(&e.name, f, nsid) {
                    Ok(()) => {}
                    Err(err) if err.code == dpu_rpc::code::BUSY && live.bdev(&e.name).is_some_and(|b| b.map.state() == "unmapped") => {
                        self.ec_pending = pending;
                        return;
                    }
                    Err(err) => defmt::error!("mgmt: EC volume {=str} from flash not mapped: {=str}", e.name.as_str(), err.message()),
                }
            }
            pending &= !(1 << i);
            defmt::info!("mgmt: EC volume {=str} restored from flash", e.name.as_str());
        }
        self.ec_pending = pending;
        // The crypto devices whose base is back (a remote controller's
        // namespace once the controller attached again).
        let mut pending = self.crypto_pending;
        for (i, d) in flash_crypto.iter().enumerate() {
            if pending & (1 << i) == 0 {
                continue;
            }
            if live.bdev(&d.base).is_none() {
                continue;
            }
            if live.bdev(&d.name).is_none() {
                if let Err(e) = keys.make(&d.name, &d.base, &d.key, live) {
                    defmt::error!("mgmt: crypto device {=str} from flash not made: {=str}", d.name.as_str(), e.message());
                    pending &= !(1 << i);
                    continue;
                }
            }
            if let Some((f, nsid)) = d.map {
                match live.attach(&d.name, f, nsid) {
                    Ok(()) => {}
                    // The admin service's ring is full: the next poll.
                    Err(e) if e.code == dpu_rpc::code::BUSY && live.bdev(&d.name).is_some_and(|b| b.map.state() == "unmapped") => {
                        self.crypto_pending = pending;
                        return;
                    }
                    Err(e) => defmt::error!("mgmt: crypto device {=str} from flash not mapped: {=str}", d.name.as_str(), e.message()),
                }
            }
            pending &= !(1 << i);
            defmt::info!("mgmt: crypto device {=str} restored from flash", d.name.as_str());
        }
        self.crypto_pending = pending;
        if self.saving.is_some() {
            return;
        }
        live.snapshot(now);
        nvmf.snapshot(now_nvmf);
        nvme.snapshot(live, now_nvme);
        keys.snapshot(now_keys);
        crypto_snapshot(live, flash_crypto, self.crypto_pending, now_crypto);
        ec_snapshot(live, flash_ec, self.ec_pending, now_ec);
        // The VFs offered (`super::sriov`): kept once set, as long as
        // they are not the maximum a configuration without it gives.
        let (offered, _) = dpu_hal::pcie::offered_vfs();
        let max = dpu_hal::pcie::functions().saturating_sub(1);
        let vfs = (offered != max || config.sriov_total_vfs.is_some()).then_some(offered);
        if !self.dirty && *now == config.mallocs && *now_nvmf == config.nvmf && *now_nvme == config.nvme && *now_keys == config.crypto_keys && *now_crypto == config.crypto_bdevs && *now_ec == config.ec_bdevs && vfs == config.sriov_total_vfs {
            return;
        }
        let vfs_before = core::mem::replace(&mut config.sriov_total_vfs, vfs);
        core::mem::swap(&mut config.mallocs, now);
        core::mem::swap(&mut config.nvmf, now_nvmf);
        core::mem::swap(&mut config.nvme, now_nvme);
        core::mem::swap(&mut config.crypto_keys, now_keys);
        core::mem::swap(&mut config.crypto_bdevs, now_crypto);
        core::mem::swap(&mut config.ec_bdevs, now_ec);
        let Some(bytes) = self.bytes.as_deref_mut() else { return };
        let Some(len) = config.encode(bytes) else {
            defmt::error!("mgmt: the configuration does not encode: not saved");
            return;
        };
        self.tag = self.tag.wrapping_add(1);
        let r = SaveConfig { tag: self.tag, addr: bytes.as_ptr() as usize, len: len as u32 };
        if tx.push(r).is_ok() {
            self.dirty = false;
            self.saving = Some(self.tag);
            dpu_hal::mailbox::ring(crate::fwupdate::FW_HART, crate::fwupdate::DOORBELL_FW);
        } else {
            // Tried again at the next poll.
            core::mem::swap(&mut config.mallocs, now);
            core::mem::swap(&mut config.nvmf, now_nvmf);
            core::mem::swap(&mut config.nvme, now_nvme);
            core::mem::swap(&mut config.crypto_keys, now_keys);
            core::mem::swap(&mut config.crypto_bdevs, now_crypto);
            core::mem::swap(&mut config.ec_bdevs, now_ec);
            config.sriov_total_vfs = vfs_before;
        }
    }

    /// Changes the configuration's settings outside the lists (port
    /// addresses, initiator and TCP settings, the management server's
    /// rules: `super::settings`) and saves it at the next poll. False
    /// when nothing is saved (loaded as an ELF: no flash).
    pub fn update(&mut self, f: impl FnOnce(&mut Config)) -> bool {
        let Some(c) = self.config.as_deref_mut() else { return false };
        f(c);
        self.dirty = true;
        true
    }

    /// `dpu_config_get_status` (ours): whether run-time changes are kept
    /// (`persistent`: booted from flash), the last save (`copy`,
    /// `sequence`), whether one is in progress and whether changes wait
    /// to be saved (`pending`).
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn status(&mut self, live: &Live, nvmf: &Nvmf, nvme: &Nvme, keys: &Keys, w: &mut dpu_rpc::Writer<'_>) {
        w.begin_object();
        w.field_bool("persistent", self.config.is_some());
        w.field_u64("run_time_bdevs", live.bdevs().count() as u64);
        let mut subsystems = 0u64;
        nvmf.each(|_, _| subsystems += 1);
        w.field_u64("run_time_subsystems", subsystems);
        w.field_u64("run_time_controllers", nvme.ctrls().count() as u64);
        w.field_bool("saving", self.saving.is_some());
        // What a save would write now, as `poll` compares it.
        let pending = match (self.config.as_deref(), self.now.as_deref_mut(), self.now_nvmf.as_deref_mut(), self.now_nvme.as_deref_mut(), self.saving) {
            (Some(c), Some(now), Some(now_nvmf), Some(now_nvme), None) => {
                live.snapshot(now);
                nvmf.snapshot(now_nvmf);
                nvme.snapshot(live, now_nvme);
                let crypto_changed = match (self.now_keys.as_deref_mut(), self.now_crypto.as_deref_mut(), self.flash_crypto.as_deref()) {
                    (Some(nk), Some(nc), Some(fc)) => {
                        keys.snapshot(nk);
                        crypto_snapshot(live, fc, self.crypto_pending, nc);
                        *nk != c.crypto_keys || *nc != c.crypto_bdevs
                    }
                    _ => false,
                };
                let ec_changed = match (self.now_ec.as_deref_mut(), self.flash_ec.as_deref()) {
                    (Some(ne), Some(fe)) => {
                        ec_snapshot(live, fe, self.ec_pending, ne);
                        *ne != c.ec_bdevs
                    }
                    _ => false,
                };
                self.dirty || self.restored < self.boot || *now != c.mallocs || *now_nvmf != c.nvmf || *now_nvme != c.nvme || crypto_changed || ec_changed
            }
            (Some(_), _, _, _, Some(_)) => true,
            _ => false,
        };
        w.field_bool("pending", pending);
        match self.saved {
            Some((copy, seq)) => {
                w.field_u64("copy", copy as u64);
                w.field_u64("sequence", u64::from(seq));
            }
            None => {
                w.key("sequence");
                w.null();
            }
        }
        w.end_object();
    }
}

/// What the configuration in flash keeps of the crypto devices: those
/// made, and those of the flash configuration not made again yet
/// (`pending`, bit i: `flash[i]`) as flash had them.
fn crypto_snapshot(live: &Live, flash: &Vec<CryptoBdev, MAX_CRYPTO_BDEVS>, pending: u32, out: &mut Vec<CryptoBdev, MAX_CRYPTO_BDEVS>) {
    live.crypto_snapshot(out);
    for (_, d) in flash.iter().enumerate().filter(|(i, _)| pending & (1 << i) != 0) {
        match out.iter_mut().find(|o| o.name == d.name) {
            Some(o) => o.map = d.map,
            None => {
                let _ = out.push(d.clone());
            }
        }
    }
}

/// What the configuration in flash keeps of the EC volumes: those made,
/// and those of the flash configuration not made again yet (`pending`,
/// bit i: `flash[i]`) as flash had them.
fn ec_snapshot(live: &Live, flash: &Vec<EcBdev, MAX_EC_BDEVS>, pending: u32, out: &mut Vec<EcBdev, MAX_EC_BDEVS>) {
    live.ec_snapshot(out);
    for (_, e) in flash.iter().enumerate().filter(|(i, _)| pending & (1 << i) != 0) {
        if !out.iter().any(|o| o.name == e.name) {
            let _ = out.push(e.clone());
        }
    }
}
