//! Live changes survive a restart: the RAM block devices made through the
//! management API and their mappings are part of the configuration in
//! flash (`dpu_config::Config::mallocs`, schema version 3), and so are
//! the NVMe/TCP target's subsystems made through it
//! (`dpu_config::Config::nvmf`, schema version 5), and the remote
//! controllers attached through it with their namespaces' mappings
//! (`dpu_config::Config::nvme`, schema version 7).
//!
//! * At boot (booted from flash), the devices the flash configuration
//!   lists are made again (empty: their data lived in DPU memory) and
//!   mapped through the same path as `dpu_ns_attach`, so the admin
//!   service and every engine hear of them by message; then the
//!   subsystems, through the same checks as the `nvmf_*` methods
//!   (published to every core's target); then the remote controllers,
//!   attached again (retried until their target answers) and their
//!   devices mapped once they are.
//! * After that, whenever what [`Live`] holds differs from what was last
//!   saved, the server hands the whole configuration (the flashed one
//!   with the new device list) to the firmware update service's core,
//!   which writes it as the newest of the two copies
//!   (`dpu_config::store`: a power cut during the save leaves the
//!   previous copy). One save is outstanding at a time; changes made
//!   during a save are saved next.
//!
//! Loaded as an ELF (no flash), nothing is restored or saved.

use super::live::Live;
use super::nvme::{Nvme, MAX_NVME};
use super::nvmf::Nvmf;
use crate::fwupdate::{SaveConfig, Saved};
use dpu_config::{Config, Malloc, NvmeController, NvmfSubsystem, MAX_MALLOC};
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
}

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
        let mut p = Persist { ends: None, config: None, bytes: None, restored: 0, boot: 0, saving: None, tag: 0, saved: None, now: None, now_nvmf: None, now_nvme: None, nvmf_restored: false };
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
        // In place (a configuration is tens of KiB: not via the stack).
        c.0.copy_from(flash);
        p.boot = c.0.mallocs.len();
        p.config = Some(&mut c.0);
        p.bytes = Some(b);
        p.now = Some(&mut l.0);
        p.now_nvmf = Some(&mut v.0);
        p.now_nvme = Some(&mut n.0);
        p.ends = Some(ends);
        p
    }

    /// Restores what is left to restore, then saves what changed.
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn poll(&mut self, live: &mut Live, nvmf: &mut Nvmf, nvme: &mut Nvme) {
        let (Some(config), Some(now), Some(now_nvmf), Some(now_nvme), Some((tx, rx))) =
            (self.config.as_deref_mut(), self.now.as_deref_mut(), self.now_nvmf.as_deref_mut(), self.now_nvme.as_deref_mut(), self.ends.as_mut())
        else {
            return;
        };
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
        }
        if self.saving.is_some() {
            return;
        }
        live.snapshot(now);
        nvmf.snapshot(now_nvmf);
        nvme.snapshot(live, now_nvme);
        if *now == config.mallocs && *now_nvmf == config.nvmf && *now_nvme == config.nvme {
            return;
        }
        core::mem::swap(&mut config.mallocs, now);
        core::mem::swap(&mut config.nvmf, now_nvmf);
        core::mem::swap(&mut config.nvme, now_nvme);
        let Some(bytes) = self.bytes.as_deref_mut() else { return };
        let Some(len) = config.encode(bytes) else {
            defmt::error!("mgmt: the configuration does not encode: not saved");
            return;
        };
        self.tag = self.tag.wrapping_add(1);
        let r = SaveConfig { tag: self.tag, addr: bytes.as_ptr() as usize, len: len as u32 };
        if tx.push(r).is_ok() {
            self.saving = Some(self.tag);
            dpu_hal::mailbox::ring(crate::fwupdate::FW_HART, crate::fwupdate::DOORBELL_FW);
        } else {
            // Tried again at the next poll.
            core::mem::swap(&mut config.mallocs, now);
            core::mem::swap(&mut config.nvmf, now_nvmf);
            core::mem::swap(&mut config.nvme, now_nvme);
        }
    }

    /// `dpu_config_get_status` (ours): whether run-time changes are kept
    /// (`persistent`: booted from flash), the last save (`copy`,
    /// `sequence`), whether one is in progress and whether changes wait
    /// to be saved (`pending`).
    // Out of the network service's loop frame (its hart's stack is 64 KiB).
    #[inline(never)]
    pub fn status(&mut self, live: &Live, nvmf: &Nvmf, nvme: &Nvme, w: &mut dpu_rpc::Writer<'_>) {
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
                self.restored < self.boot || *now != c.mallocs || *now_nvmf != c.nvmf || *now_nvme != c.nvme
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
