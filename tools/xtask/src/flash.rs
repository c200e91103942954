//! `cargo xtask flash`: the card's flash image and OTP fuse file.
//!
//! Signs the first-stage bootloader and the firmware (slot A; optionally
//! another image in slot B, pending its trial boot), writes the
//! configuration a scenario describes into the flash's configuration
//! partition, and provisions an OTP file with the signing key's hash (and
//! an anti-rollback counter) and a new device key, generated from the
//! operating system's random source, that wraps the keys of the
//! scenario's encrypted namespaces in the configuration (RFC 3394; only
//! the card's crypto engines can unwrap them). `dpusim --flash FILE` boots
//! the result.

use crate::build::{root, Built};
use dpu_imgtool::devkey::DeviceKey;
use dpu_imgtool::flash::{self, Card};
use dpu_imgtool::image::{self, Kind, Meta, Version};
use dpu_imgtool::key::{self, Key};
use std::path::{Path, PathBuf};

/// What `cargo xtask flash` was asked for.
#[derive(Clone, Debug, clap::Args)]
pub struct FlashArgs {
    /// Where to write the flash image; the OTP file goes next to it with
    /// the extension `.otp`.
    #[arg(long, value_name = "FILE", default_value = "target/flash/card.bin")]
    pub out: PathBuf,
    /// The configuration to persist: a scenario in targets/scenarios/ (by
    /// name), a scenario file, or `none` (an empty configuration).
    #[arg(long, default_value = "adapter-verify")]
    pub scenario: String,
    /// Signing key file (default: $DPU_SIGNING_KEY, else the development
    /// key target/keys/dev-signing-key, generated on first use).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Version of the slot A image.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub version: Version,
    /// Security counter of the slot A image (anti-rollback).
    #[arg(long, default_value_t = 0)]
    pub security_counter: u32,
    /// An ELF for slot B (default: slot B stays empty).
    #[arg(long, value_name = "ELF")]
    pub slot_b: Option<PathBuf>,
    /// Version of the slot B image.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub slot_b_version: Version,
    /// Security counter of the slot B image.
    #[arg(long, default_value_t = 0)]
    pub slot_b_security_counter: u32,
    /// Record slot B as pending: the next boot runs it on trial (as after
    /// a firmware update); it stays only if it confirms itself.
    #[arg(long, requires = "slot_b")]
    pub pending_b: bool,
    /// OTP anti-rollback counter to provision.
    #[arg(long, default_value_t = 0)]
    pub otp_counter: u32,
}

/// The scenario file `name` means (`None` for `none`).
pub fn scenario_path(name: &str) -> Result<Option<PathBuf>, String> {
    match name {
        "none" => Ok(None),
        s if Path::new(s).is_file() => Ok(Some(PathBuf::from(s))),
        s => {
            let p = root().join("targets/scenarios").join(format!("{s}.toml"));
            if p.is_file() {
                Ok(Some(p))
            } else {
                Err(format!("no scenario `{s}` (looked for {}); use a file path or `none`", p.display()))
            }
        }
    }
}

/// The signing key (announcing a freshly generated development key).
pub fn signing_key(explicit: Option<&Path>) -> Result<Key, String> {
    let k = key::select(explicit, &root().join("target")).map_err(|e| e.to_string())?;
    if k.generated {
        eprintln!("xtask: generated a development signing key: {} (target/ is never committed; production cards use --key)", k.path.display());
    }
    Ok(k)
}

/// Signs `elf` as `kind`.
pub fn sign(elf: &Path, kind: Kind, version: Version, security_counter: u32, key: &Key) -> Result<Vec<u8>, String> {
    let e = image::read_elf(elf).map_err(|e| e.to_string())?;
    image::pack(&e, Meta { kind, version, security_counter }, &key.signing).map_err(|e| format!("{}: {e}", elf.display()))
}

/// Writes the flash image and its OTP file (`out` with `.otp`).
pub fn write_card(out: &Path, card: &Card, otp: &[u32]) -> Result<PathBuf, String> {
    let board = dpu_targets::Board::load(dpu_targets::default_board_path()).map_err(|e| e.to_string())?;
    let bytes = flash::compose(&board, card).map_err(|e| e.to_string())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let otp_path = out.with_extension("otp");
    std::fs::write(&otp_path, flash::otp_bytes(otp)).map_err(|e| format!("{}: {e}", otp_path.display()))?;
    Ok(otp_path)
}

/// The OTP words of a chip provisioned for `key` with counter `counter`
/// and device key `device_key` (locked).
pub fn otp_for(key: &Key, counter: u32, device_key: &DeviceKey) -> Result<Vec<u32>, String> {
    let chip = dpu_targets::Chip::load(dpu_targets::default_chip_path()).map_err(|e| e.to_string())?;
    let mut w = flash::otp_words(chip.devices.otp.words as usize, &key.public_hash(), counter);
    device_key.provision(&mut w);
    Ok(w)
}

/// The operator configuration of scenario `name` (`None` for `none`) for
/// a card with device key `device_key` (the keys of encrypted namespaces
/// wrapped with it).
pub fn config_of(name: &str, device_key: &DeviceKey) -> Result<Option<dpu_config::Config>, String> {
    let Some(p) = scenario_path(name)? else { return Ok(None) };
    let sc = dpu_targets::Scenario::load(&p).map_err(|e| e.to_string())?;
    dpu_imgtool::config::from_scenario(&sc, device_key).map(Some)
}

/// `cargo xtask flash`.
pub fn flash(built: &Built, a: &FlashArgs) -> Result<(), String> {
    let key = signing_key(a.key.as_deref())?;
    let bl_version: Version = env!("CARGO_PKG_VERSION").parse()?;
    let bootloader = sign(&built.bootloader, Kind::Bootloader, bl_version, 0, &key)?;
    let slot_a = sign(&built.firmware, Kind::Firmware, a.version, a.security_counter, &key)?;
    let slot_b = match &a.slot_b {
        Some(elf) => Some(sign(elf, Kind::Firmware, a.slot_b_version, a.slot_b_security_counter, &key)?),
        None => None,
    };
    // A new card: a new device key (not reproducible, by design).
    let device_key = DeviceKey::generate()?;
    let config = config_of(&a.scenario, &device_key)?;
    let configs: Vec<dpu_config::Config> = config.iter().cloned().collect();
    let card = Card { bootloader: Some(&bootloader), slot_a: Some(&slot_a), slot_b: slot_b.as_deref(), pending_b: a.pending_b, configs: &configs };
    let otp = otp_for(&key, a.otp_counter, &device_key)?;
    let otp_path = write_card(&a.out, &card, &otp)?;
    let kib = |n: usize| n.div_ceil(1024);
    eprintln!("xtask: flash image {} ({} KiB):", a.out.display(), kib(std::fs::metadata(&a.out).map(|m| m.len() as usize).unwrap_or(0)));
    eprintln!("  bootloader  {bl_version}, {} KiB (from {})", kib(bootloader.len()), built.bootloader.display());
    eprintln!("  slot A      firmware {}, security counter {}, {} KiB (from {})", a.version, a.security_counter, kib(slot_a.len()), built.firmware.display());
    if let (Some(b), Some(elf)) = (&slot_b, &a.slot_b) {
        let how = if a.pending_b { ", pending: boots on trial next" } else { "" };
        eprintln!("  slot B      firmware {}, security counter {}, {} KiB (from {}){how}", a.slot_b_version, a.slot_b_security_counter, kib(b.len()), elf.display());
    }
    match &config {
        Some(c) => eprintln!(
            "  config      from scenario `{}`: {} namespace(s) ({} encrypted, keys wrapped with the device key), {} port(s), {} remote controller(s), {} target subsystem(s)",
            a.scenario,
            c.namespaces.len(),
            c.ns_keys.len(),
            c.ports.len(),
            c.controllers.len(),
            c.subsystems.len()
        ),
        None => eprintln!("  config      none (the card serves no namespaces)"),
    }
    let hash: String = key.public_hash().iter().take(8).map(|b| format!("{b:02x}")).collect();
    eprintln!(
        "xtask: OTP fuses {}: root key hash {hash}... (locked), anti-rollback counter {}, device key (new, locked: only the crypto engines use it)",
        otp_path.display(),
        a.otp_counter
    );
    eprintln!("xtask: signed with {}", key.path.display());
    Ok(())
}
