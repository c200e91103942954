//! Firmware update service (control plane, [`FW_HART`]).
//!
//! The host downloads an image with NVMe Firmware Image Download; the
//! admin service DMAs the pieces into a staging buffer in DDR
//! ([`staging`]). Firmware Commit (NVMe Base 2.0 §5.12) sends a
//! [`Request`] here, and this core does the slow part, so that the admin
//! service keeps serving every function and no data-plane core is ever
//! involved. The management server (`dpu_fw_download` / `dpu_fw_commit`,
//! `dpuctl fw update`) is a second client with its own staging buffer
//! ([`mgmt_staging`]) and request ring; both are served the same way
//! (and the server's configuration saves, [`SaveConfig`], are written
//! here too: this core owns the slow flash work):
//!
//! 1. replace actions: the staged image is verified the way the
//!    bootloader verifies a slot (`dpu_fwimage::verify` against the OTP
//!    key hash and anti-rollback counter; refused: Invalid Firmware
//!    Image, the flash untouched); a pending activation of the target
//!    slot is withdrawn from the boot journal; the slot is erased and
//!    programmed through the SPI NOR driver, then read back and verified
//!    again from the flash;
//! 2. activating actions: the slot's image (in flash) is verified and
//!    the boot journal records it as pending: the next boot runs it on
//!    trial, it confirms itself or the bootloader reverts it.
//!
//! A power cut at any point leaves the confirmed slot and the journal's
//! last complete record: the card boots the image it booted before, or
//! the new one on trial once the pending record is complete.
//!
//! What the slots hold (for the Firmware Slot Information log) is
//! published in atomics ([`slot_log`]).

use crate::boot;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use dpu_fwimage::state::Journal;
use dpu_fwimage::verify::Trust;
use dpu_fwimage::{Header, ImageError, Slot};
use dpu_hal::memory_map as mm;
use dpu_hal::regs::image as h;
use dpu_nvme::firmware::SlotLog;
use dpu_ring::{Consumer, Producer, Ring};
use dpu_rt::HartId;
use dpu_spi_nor::Flash;

/// The control-plane core that writes firmware slots.
pub const FW_HART: usize = 3;

/// Doorbell bit: "a firmware update reply is waiting" (to the admin hart).
pub const DOORBELL_FW: u64 = 1 << 9;

/// Admin service -> update service.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Echoed in the reply.
    pub tag: u32,
    pub slot: Slot,
    /// Bytes staged (replace actions).
    pub len: u32,
    /// Write the staged image into the slot first.
    pub replace: bool,
    /// Make the slot the one the next boot tries (its image on trial).
    pub activate: bool,
}

/// How a commit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Outcome {
    Done,
    /// The staged image (or the slot's, for an activation) does not verify.
    InvalidImage,
    /// The slot holds the confirmed image, the card's fallback.
    SlotInUse,
    /// The flash failed (does not answer, or the written image does not
    /// read back verified).
    FlashError,
}

/// Update service -> admin service.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub tag: u32,
    pub outcome: Outcome,
    /// Bytes of the image the slot now holds (header, payload,
    /// signature), when the commit verified it; 0 otherwise.
    pub image_len: u32,
}

/// Requests (and replies) in flight per client.
pub const DEPTH: usize = 4;
static REQUESTS: Ring<Request, DEPTH> = Ring::new();
static REPLIES: Ring<Reply, DEPTH> = Ring::new();
/// The management server's own pair (`dpu_fw_commit`).
static MGMT_REQUESTS: Ring<Request, DEPTH> = Ring::new();
static MGMT_REPLIES: Ring<Reply, DEPTH> = Ring::new();

/// Staging buffer address in DDR (0: the service is not up).
static STAGING: AtomicUsize = AtomicUsize::new(0);
/// The management server's staging buffer (`dpu_fw_download`): its own,
/// so an image pushed over the management API and one downloaded by the
/// host never mix.
static MGMT_STAGING: AtomicUsize = AtomicUsize::new(0);
/// Set once the service serves commits (booted from flash, buffer there).
static READY: AtomicBool = AtomicBool::new(false);
/// Per slot: bit 32 set = an image header is there; major (bits 7:0),
/// minor (15:8), revision (31:16).
static SLOT_VERSION: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Slot index pending in the journal (0xff: none).
static PENDING: AtomicU8 = AtomicU8::new(0xff);

/// Largest image: a flash slot.
pub const MAX_IMAGE: u32 = mm::FLASH_SLOT_A_SIZE as u32;

/// Whether Firmware Image Download / Commit are offered (the card booted
/// from flash through the bootloader and the service is up).
pub fn available() -> bool {
    READY.load(Ordering::Acquire)
}

/// The staging buffer's DDR address, once [`available`].
pub fn staging() -> Option<usize> {
    available().then(|| STAGING.load(Ordering::Acquire))
}

/// Management server -> update service: save the configuration encoded
/// at `addr` (`len` bytes, `dpu_config::Config::encode`) as the newest
/// copy in flash. The server leaves those bytes alone until the answer.
#[derive(Clone, Copy, Debug)]
pub struct SaveConfig {
    pub tag: u32,
    pub addr: usize,
    pub len: u32,
}

/// Update service -> management server: where the copy went (copy,
/// sequence), or `None` (not decodable, not valid, too large, flash error).
#[derive(Clone, Copy, Debug)]
pub struct Saved {
    pub tag: u32,
    pub at: Option<(usize, u32)>,
}

static SAVES: Ring<SaveConfig, 2> = Ring::new();
static SAVED: Ring<Saved, 2> = Ring::new();

/// The management server's configuration-save ends (claimed once);
/// answers ring [`DOORBELL_FW`] on [`crate::net::NET_HART`].
pub fn config_ends() -> Option<(Producer<'static, SaveConfig, 2>, Consumer<'static, Saved, 2>)> {
    Some((SAVES.producer()?, SAVED.consumer()?))
}

/// The configuration as an operator's changes left it (DDR).
struct CfgBuf(dpu_config::Config);

impl dpu_rt::ConstInit for CfgBuf {
    const INIT: CfgBuf = CfgBuf(dpu_config::Config::EMPTY);
}

/// Saves one configuration (decoded from the server's bytes, checked).
fn save_config(hart: usize, r: SaveConfig, new: &mut dpu_config::Config, old: &mut dpu_config::Config, scratch: &mut [u8]) -> Option<(usize, u32)> {
    let len = (r.len as usize).min(scratch.len());
    dpu_hal::mem::read(r.addr, &mut scratch[..len]);
    // In place: a whole configuration does not fit this hart's stack twice.
    if !new.decode_into(dpu_config::SCHEMA_VERSION, &scratch[..len]) {
        return None;
    }
    new.validate().ok()?;
    boot::with_flash(hart, |flash| dpu_config::store::Store::board().save(flash, new, scratch, old).ok())?
}

/// The management server's staging buffer, once [`available`].
pub fn mgmt_staging() -> Option<usize> {
    available().then(|| MGMT_STAGING.load(Ordering::Acquire))
}

/// The admin service's ends (claimed once).
pub fn admin_ends() -> Option<(Producer<'static, Request, DEPTH>, Consumer<'static, Reply, DEPTH>)> {
    Some((REQUESTS.producer()?, REPLIES.consumer()?))
}

/// The management server's ends (claimed once); its replies ring
/// [`DOORBELL_FW`] on [`crate::net::NET_HART`].
pub fn mgmt_ends() -> Option<(Producer<'static, Request, DEPTH>, Consumer<'static, Reply, DEPTH>)> {
    Some((MGMT_REQUESTS.producer()?, MGMT_REPLIES.consumer()?))
}

/// NVMe slot number (1-based) of a flash slot.
pub fn nvme_slot(s: Slot) -> u8 {
    s.index() as u8 + 1
}

/// Flash slot of an NVMe slot number.
pub fn flash_slot(n: u8) -> Option<Slot> {
    Slot::from_index(usize::from(n).checked_sub(1)?)
}

/// The Firmware Slot Information log as of now.
pub fn slot_log() -> SlotLog {
    let mut log = SlotLog::default();
    if let Some(i) = boot::info() {
        log.active = nvme_slot(i.slot);
    }
    let p = PENDING.load(Ordering::Acquire);
    log.next = Slot::from_index(usize::from(p)).map(nvme_slot);
    for (k, v) in SLOT_VERSION.iter().enumerate() {
        let v = v.load(Ordering::Acquire);
        if v & (1 << 32) != 0 {
            let ver = dpu_fwimage::Version { major: v as u8, minor: (v >> 8) as u8, revision: (v >> 16) as u16, build: 0 };
            log.revisions[k] = Some(ver.revision_string());
        }
    }
    log
}

fn publish_header(slot: Slot, hdr: Option<&Header>) {
    let v = hdr.map_or(0, |h| 1u64 << 32 | u64::from(h.version.major) | u64::from(h.version.minor) << 8 | u64::from(h.version.revision) << 16);
    SLOT_VERSION[slot.index()].store(v, Ordering::Release);
}

fn publish_pending(p: Option<Slot>) {
    PENDING.store(p.map_or(0xff, |s| s.index() as u8), Ordering::Release);
}

/// What the bootloader checks an image against.
fn trust() -> Trust {
    Trust {
        key_hash: dpu_hal::otp::key_hash(),
        rollback: dpu_hal::otp::rollback_counter(),
        kind: h::KIND_FIRMWARE,
        chip: mm::CHIP_FINGERPRINT,
        max_len: mm::FLASH_SLOT_A_SIZE,
        load_window: (mm::DDR_BASE as u64, mm::BOOTLOADER_BASE as u64),
    }
}

/// Verifies the image in flash slot `slot`.
fn verify_slot(flash: &mut boot::Flash, slot: Slot) -> Result<Header, ImageError> {
    let base = slot.offset();
    dpu_fwimage::verify(&trust(), &mut |off, buf: &mut [u8]| flash.read(base + off, buf), &mut |_, _, _| {})
}

/// Reads the slot's header (for the log; not a verification).
fn read_header(flash: &mut boot::Flash, slot: Slot) -> Option<Header> {
    let mut raw = [0u8; h::HEADER_SIZE];
    flash.read(slot.offset(), &mut raw).ok()?;
    Header::parse(&raw, mm::FLASH_SLOT_A_SIZE).ok()
}

/// The service's main loop (never returns). On a card not booted by the
/// bootloader (an ELF loaded directly) there is no slot to write: the
/// core parks and the admin service does not offer firmware update.
pub fn run(hart: HartId) -> ! {
    let Some(info) = boot::info() else { dpu_rt::park() };
    let (Some(buf), Some(mbuf), Some((mut rx, mut tx)), Some((mut mrx, mut mtx))) = (
        dpu_rt::alloc::ddr_bytes(MAX_IMAGE as usize, 4096),
        dpu_rt::alloc::ddr_bytes(MAX_IMAGE as usize, 4096),
        REQUESTS.consumer().zip(REPLIES.producer()),
        MGMT_REQUESTS.consumer().zip(MGMT_REPLIES.producer()),
    ) else {
        defmt::error!("fw update: no staging memory: firmware update disabled");
        dpu_rt::park()
    };
    let staging = buf.as_ptr() as usize;
    let mgmt_staging = mbuf.as_ptr() as usize;
    let (Some(cfg_new), Some(cfg_old), Some(scratch), Some((mut srx, mut stx))) = (
        dpu_rt::alloc::ddr_static::<CfgBuf>(),
        dpu_rt::alloc::ddr_static::<CfgBuf>(),
        dpu_rt::alloc::ddr_bytes(dpu_config::store::SCRATCH, 8),
        SAVES.consumer().zip(SAVED.producer()),
    ) else {
        defmt::error!("fw update: no memory for configuration saves: firmware update disabled");
        dpu_rt::park()
    };
    let seen = boot::with_flash(hart.0, |flash| {
        let st = Journal::board().read(flash).ok();
        for s in [Slot::A, Slot::B] {
            publish_header(s, read_header(flash, s).as_ref());
        }
        st
    });
    match seen {
        Some(Some(st)) => publish_pending(st.pending),
        _ => {
            defmt::error!("fw update: the boot flash does not answer: firmware update from the host disabled");
            dpu_rt::park()
        }
    }
    STAGING.store(staging, Ordering::Release);
    MGMT_STAGING.store(mgmt_staging, Ordering::Release);
    READY.store(true, Ordering::Release);
    crate::channel::enable_doorbell(hart.0);
    defmt::info!("fw update: ready (running slot {=str}; staging {=u32} KiB in DDR)", info.slot.name(), MAX_IMAGE / 1024);
    loop {
        crate::channel::take_doorbells(hart.0);
        let mut worked = false;
        // Each client (admin service, management server) has its own
        // staging buffer and rings, and at most one commit outstanding
        // (its reply ring holds DEPTH).
        for (rx, tx, staging, client) in [(&mut rx, &mut tx, staging, crate::nvme::ADMIN_HART), (&mut mrx, &mut mtx, mgmt_staging, crate::net::NET_HART)] {
            while let Some(r) = rx.pop() {
                worked = true;
                let (outcome, image_len) = commit(hart.0, info.slot, staging, r);
                let _ = tx.push(Reply { tag: r.tag, outcome, image_len });
                dpu_hal::mailbox::ring(client, DOORBELL_FW);
            }
        }
        while let Some(r) = srx.pop() {
            worked = true;
            let at = save_config(hart.0, r, &mut cfg_new.0, &mut cfg_old.0, scratch);
            // The server has one save outstanding.
            let _ = stx.push(Saved { tag: r.tag, at });
            dpu_hal::mailbox::ring(crate::net::NET_HART, DOORBELL_FW);
        }
        if !worked {
            dpu_hal::csr::wfi();
        }
    }
}

/// Carries out one commit; with the length of the slot's image when it
/// was verified.
fn commit(hart: usize, running: Slot, staging: usize, r: Request) -> (Outcome, u32) {
    let trust = trust();
    let mut hdr = None;
    let mut image_len = 0u32;
    if r.replace {
        // The staged bytes, checked before the flash is touched.
        let len = r.len as usize;
        let checked = dpu_fwimage::verify(
            &trust,
            &mut |off, buf: &mut [u8]| {
                let o = off as usize;
                if o + buf.len() > len {
                    return Err(());
                }
                dpu_hal::mem::read(staging + o, buf);
                Ok(())
            },
            &mut |_, _, _| {},
        );
        match checked {
            Ok(h) => hdr = Some(h),
            Err(e) => {
                defmt::warn!("fw update: downloaded image refused: {=str}", e.reason());
                return (Outcome::InvalidImage, 0);
            }
        }
    }
    let journal = Journal::board();
    let r2 = boot::with_flash(hart, |flash| -> Outcome {
        let Ok(mut st) = journal.read(flash) else { return Outcome::FlashError };
        if let Some(hdr) = &hdr {
            if st.confirmed == r.slot && r.slot != running {
                defmt::warn!("fw update: slot {=str} holds the confirmed image: not replaced", r.slot.name());
                return Outcome::SlotInUse;
            }
            if st.pending == Some(r.slot) {
                // About to be erased: not to be tried by the next boot.
                st.pending = None;
                match journal.write(flash, st) {
                    Ok(s) => st = s,
                    Err(_) => return Outcome::FlashError,
                }
                publish_pending(None);
            }
            let base = r.slot.offset();
            let n = hdr.image_len() as u32;
            publish_header(r.slot, None);
            defmt::info!(
                "fw update: writing image {=u8}.{=u8}.{=u16} ({=u32} bytes) into slot {=str}",
                hdr.version.major,
                hdr.version.minor,
                hdr.version.revision,
                n,
                r.slot.name()
            );
            if flash.erase_range(base, n.next_multiple_of(mm::FLASH_SUBSECTOR_SIZE as u32)).is_err() {
                return Outcome::FlashError;
            }
            let mut chunk = [0u8; 4096];
            let mut off = 0u32;
            while off < n {
                let k = (n - off).min(chunk.len() as u32) as usize;
                dpu_hal::mem::read(staging + off as usize, &mut chunk[..k]);
                if flash.program(base + off, &chunk[..k]).is_err() {
                    return Outcome::FlashError;
                }
                off += k as u32;
            }
            match verify_slot(flash, r.slot) {
                Ok(h) => {
                    image_len = h.image_len() as u32;
                    publish_header(r.slot, Some(&h));
                }
                Err(e) => {
                    defmt::error!("fw update: slot {=str} does not read back verified: {=str}", r.slot.name(), e.reason());
                    return Outcome::FlashError;
                }
            }
        }
        if r.activate {
            if r.slot == running {
                // Activating what runs: nothing else is tried next.
                st.pending = None;
            } else {
                if !r.replace {
                    match verify_slot(flash, r.slot) {
                        Ok(h) => image_len = h.image_len() as u32,
                        Err(e) => {
                            defmt::warn!("fw update: slot {=str} cannot be activated: {=str}", r.slot.name(), e.reason());
                            return Outcome::InvalidImage;
                        }
                    }
                }
                st.pending = Some(r.slot);
            }
            if journal.write(flash, st).is_err() {
                return Outcome::FlashError;
            }
            publish_pending(st.pending);
            defmt::info!(
                "fw update: slot {=str} activates at the next reset{=str}",
                if r.slot == running { running.name() } else { r.slot.name() },
                if r.slot == running { " (nothing pending)" } else { " (on trial until it confirms itself)" }
            );
        }
        Outcome::Done
    });
    (r2.unwrap_or(Outcome::FlashError), image_len)
}
