//! Secure boot as the firmware sees it.
//!
//! * [`info`]: what the first-stage bootloader handed over
//!   (`regs::bootinfo`): the slot, whether this image runs on trial, the
//!   OTP anti-rollback counter, this image's security counter and
//!   version. Loaded as an ELF directly (development), there is none.
//! * [`config_blob`]: booted from flash, the operator's configuration is
//!   read from the flash `config` partition (`dpu-config`: two copies,
//!   CRC-checked, the newest valid one wins) and rendered into the boot
//!   configuration blob the namespace table is parsed from.
//! * [`confirm_if_on_trial`]: an image on trial confirms itself once the
//!   card is up (every reactor answered, the configuration is served):
//!   the boot journal records its slot as confirmed, and the OTP
//!   anti-rollback counter is raised to its security counter (images
//!   below it are refused from then on). An image that never gets there
//!   is reverted by the bootloader at the next boot.

use dpu_config::store::{CopyState, Store, SCRATCH};
use dpu_config::Config;
use dpu_fwimage::state::Journal;
use dpu_fwimage::{Slot, Version};
use dpu_hal::memory_map as mm;
use dpu_hal::regs::bootinfo as bi;
use dpu_spi_nor::{Geometry, SpiNor, Timing};

/// The bootloader's hand-off.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub slot: Slot,
    pub trial: bool,
    pub otp_counter: u32,
    pub security_counter: u32,
    pub version: Version,
}

fn read_u32(off: usize) -> u32 {
    let mut b = [0u8; 4];
    dpu_hal::mem::read(mm::BOOTINFO_BASE + off, &mut b);
    u32::from_le_bytes(b)
}

/// The hand-off block, if a bootloader started this image.
pub fn info() -> Option<BootInfo> {
    if read_u32(bi::OFF_MAGIC) != bi::MAGIC {
        return None;
    }
    let mut b = [0u8; 8];
    dpu_hal::mem::read(mm::BOOTINFO_BASE + bi::OFF_SLOT, &mut b[..2]);
    let (slot, mode) = (b[0], b[1]);
    dpu_hal::mem::read(mm::BOOTINFO_BASE + bi::OFF_VERSION, &mut b);
    Some(BootInfo {
        slot: Slot::from_index(usize::from(slot))?,
        trial: mode == bi::MODE_TRIAL,
        otp_counter: read_u32(bi::OFF_OTP_COUNTER),
        security_counter: read_u32(bi::OFF_SECURITY_COUNTER),
        version: Version::from_bytes(&b),
    })
}

/// Set while a hart drives the boot flash (one SPI master, one owner at
/// a time: the configuration read, the confirmation, firmware updates).
static FLASH_BUSY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The boot flash as [`with_flash`] lends it.
pub type Flash = SpiNor<dpu_hal::spi::FlashSpi, dpu_hal::delay::Sleep>;

/// Runs `f` on the boot flash, driven by `hart`, once no other hart uses
/// it (waiting in `wfi`, 100 us at a time). `None`: the flash does not
/// answer (or is another part).
pub fn with_flash<R>(hart: usize, f: impl FnOnce(&mut Flash) -> R) -> Option<R> {
    use core::sync::atomic::Ordering;
    use embedded_hal::delay::DelayNs;
    while FLASH_BUSY.swap(true, Ordering::Acquire) {
        dpu_hal::delay::Sleep { hart }.delay_ns(100_000);
    }
    let r = open_flash(hart).ok().map(|mut flash| f(&mut flash));
    FLASH_BUSY.store(false, Ordering::Release);
    r
}

/// The boot flash (board geometry, datasheet timing), driven by `hart`.
fn open_flash(hart: usize) -> Result<SpiNor<dpu_hal::spi::FlashSpi, dpu_hal::delay::Sleep>, dpu_spi_nor::Error<core::convert::Infallible>> {
    let g = Geometry { size: mm::FLASH_SIZE as u32, page: mm::FLASH_PAGE_SIZE as u32, subsector: mm::FLASH_SUBSECTOR_SIZE as u32, sector: mm::FLASH_SECTOR_SIZE as u32 };
    let t = Timing {
        page_program_ns: mm::FLASH_PAGE_PROGRAM_NS as u32,
        subsector_erase_ns: mm::FLASH_SUBSECTOR_ERASE_NS as u32,
        sector_erase_ns: mm::FLASH_SECTOR_ERASE_NS as u32,
    };
    SpiNor::new(dpu_hal::spi::FlashSpi::new(mm::FLASH_MAX_SCK_HZ), dpu_hal::delay::Sleep { hart }, g, t, mm::FLASH_JEDEC_ID)
}

/// Logs which image runs and how it was started (control plane, at boot).
pub fn announce() {
    match info() {
        Some(i) => defmt::info!(
            "boot: slot {=str}, image {=u8}.{=u8}.{=u16} (security counter {=u32}, OTP anti-rollback counter {=u32}){=str}",
            i.slot.name(),
            i.version.major,
            i.version.minor,
            i.version.revision,
            i.security_counter,
            i.otp_counter,
            if i.trial { ", on trial" } else { "" }
        ),
        None => defmt::info!("boot: image loaded directly (no bootloader); configuration from the boot configuration window"),
    }
}

/// What a configuration copy holds, for the log.
fn copy_state(s: CopyState) -> &'static str {
    match s {
        CopyState::Blank => "blank",
        CopyState::Valid { .. } => "valid",
        CopyState::BadMagic => "not a configuration record",
        CopyState::BadFormat(_) => "unknown record format",
        CopyState::UnknownVersion(_) => "unknown schema version",
        CopyState::BadLength(_) => "bad length",
        CopyState::BadCrc => "CRC mismatch",
        CopyState::Undecodable => "undecodable",
        CopyState::Invalid(_) => "a value out of range",
    }
}

/// The configuration read from flash (too big for a stack: in DDR).
struct Stored(Config);

/// The configuration [`config_blob`] read from flash (set once, then
/// only read): the management server starts from it.
static FLASH_CONFIG: spin::Once<&'static Config> = spin::Once::new();

/// Booted from flash: the configuration read there at boot (empty if
/// none was valid). `None` when the ELF was loaded directly.
pub fn flash_config() -> Option<&'static Config> {
    FLASH_CONFIG.get().copied()
}

impl dpu_rt::ConstInit for Stored {
    const INIT: Stored = Stored(Config::EMPTY);
}

/// Booted from flash: the configuration persisted there, rendered as a
/// boot configuration blob. `None`: loaded directly, the window holds the
/// configuration. A flash that cannot be read or holds no valid copy
/// gives an empty configuration (no namespaces), logged.
pub fn config_blob() -> Option<&'static mut [u8]> {
    info()?;
    let (Some(config), Some(scratch), Some(blob)) =
        (dpu_rt::alloc::ddr_static::<Stored>(), dpu_rt::alloc::ddr_bytes(SCRATCH, 8), dpu_rt::alloc::ddr_bytes(dpu_bootcfg::MAX_BLOB, 8))
    else {
        defmt::error!("config: no memory to read the configuration from flash: serving nothing");
        return Some(&mut []);
    };
    let config = &mut config.0;
    let hart = dpu_hal::csr::mhartid() as usize;
    match with_flash(hart, |flash| Store::board().load(flash, scratch, config)) {
        Some(r) => match r {
            Ok(r) => match r.copy {
                Some(c) => defmt::info!(
                    "config: from flash copy {=usize} (sequence {=u32}; other copy {=str}): {=usize} namespace(s), {=usize} port(s), {=usize} remote controller(s), {=usize} target subsystem(s)",
                    c,
                    r.seq,
                    copy_state(r.copies[1 - c]),
                    config.namespaces.len(),
                    config.ports.len(),
                    config.controllers.len(),
                    config.subsystems.len()
                ),
                None => defmt::warn!(
                    "config: no valid copy in flash (copy 0 {=str}, copy 1 {=str}): no namespaces",
                    copy_state(r.copies[0]),
                    copy_state(r.copies[1])
                ),
            },
            Err(_) => defmt::error!("config: flash read error: no namespaces"),
        },
        None => defmt::error!("config: the boot flash does not answer: no namespaces"),
    }
    // The VFs offered to the host, before any function is made visible
    // to it (`dpu_sriov_set_total_vfs` saved it).
    if let Some(n) = config.sriov_total_vfs {
        dpu_hal::pcie::offer_vfs(n);
        defmt::info!("config: SR-IOV TotalVFs {=u16} (of {=u16})", dpu_hal::pcie::offered_vfs().0, dpu_hal::pcie::functions().saturating_sub(1));
    }
    let config: &'static Config = config;
    FLASH_CONFIG.call_once(|| config);
    match dpu_config::blob::render(config, blob) {
        Some(len) => Some(&mut blob[..len]),
        None => {
            defmt::error!("config: the configuration does not fit the {=usize}-byte blob: no namespaces", dpu_bootcfg::MAX_BLOB);
            Some(&mut [])
        }
    }
}

/// An image on trial makes itself permanent (control plane, once up).
pub fn confirm_if_on_trial(hart: usize) {
    let Some(i) = info() else { return };
    if !i.trial {
        return;
    }
    let journal = Journal::board();
    match with_flash(hart, |flash| journal.confirm(flash, i.slot).is_ok()) {
        Some(true) => {}
        Some(false) => {
            defmt::error!("boot: cannot confirm slot {=str}: journal write failed (the next boot reverts)", i.slot.name());
            return;
        }
        None => {
            defmt::error!("boot: cannot confirm slot {=str}: the boot flash does not answer (the next boot reverts)", i.slot.name());
            return;
        }
    }
    let mut counter = i.otp_counter;
    if i.security_counter > i.otp_counter {
        match dpu_hal::otp::raise_rollback_counter(i.security_counter) {
            Ok(()) => counter = dpu_hal::otp::rollback_counter(),
            Err(_) => defmt::error!("boot: the OTP refused to raise the anti-rollback counter to {=u32}", i.security_counter),
        }
    }
    defmt::info!(
        "boot: slot {=str} confirmed: image {=u8}.{=u8}.{=u16} stays; OTP anti-rollback counter {=u32} -> {=u32}",
        i.slot.name(),
        i.version.major,
        i.version.minor,
        i.version.revision,
        i.otp_counter,
        counter
    );
}
