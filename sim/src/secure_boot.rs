//! The boot ROM's secure-boot stage, booting from the SPI flash
//! (`dpusim --flash`): the ROM reads the signed first-stage bootloader at
//! the chip's `memory.bootrom.stage1_flash_offset`, checks it against the
//! root-of-trust key hash in the OTP fuses, loads it into the bootloader
//! region at the top of the image region and starts every hart at its
//! entry. A refused image starts nothing; the reason is the boot log.
//!
//! Written from the image layout (`dpu_hal::regs::image`) with its own
//! parser and the `ed25519-dalek` verifier, not with the firmware's
//! `dpu-fwimage` (which the bootloader uses for the slots): the two
//! verifiers check each other in the system tests.
//!
//! Checks, in order: magic, format and header size; image kind
//! (bootloader); chip layout fingerprint; a provisioned, locked key hash;
//! the signer key's SHA-256 against it; the Ed25519 signature over the
//! header (`verify_strict`: no small-order keys, canonical S); the payload
//! SHA-256 against the header's; every segment and the entry inside the
//! bootloader region (above its hand-off block).
//!
//! Time: the ROM reads the image at the SPI controller's reset clock
//! (`regs::spi::CLKDIV_RESET`, 8 SCK periods per byte); the harts start
//! once it is read. Hashing and the signature check inside the ROM are
//! not charged.

use crate::dev::nor_flash::FlashArray;
use crate::mem::Memory;
use dpu_hal::regs::{bootinfo, image as h, otp as o, spi};
use dpu_targets::Chip;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// A first-stage bootloader the ROM accepted and loaded.
#[derive(Clone, Debug)]
pub struct Stage1 {
    pub entry: u64,
    /// Cycles the ROM spent reading it from flash.
    pub cycles: u64,
    /// What the ROM says on the boot log.
    pub log: Vec<String>,
}

/// Why the ROM refused to boot (its log so far, then the reason).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub log: Vec<String>,
    pub reason: String,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The OTP key hash (words little-endian) and whether it is locked.
fn otp_key(words: &[u32]) -> ([u8; 32], bool) {
    let mut k = [0u8; 32];
    for i in 0..o::KEY_HASH_WORDS {
        k[4 * i..4 * i + 4].copy_from_slice(&words.get(o::KEY_HASH + i).copied().unwrap_or(0).to_le_bytes());
    }
    (k, words.get(o::LOCK).is_some_and(|w| w & o::LOCK_KEY_HASH != 0))
}

/// Runs the ROM stage: verifies the bootloader in `flash` and loads it into `mem`.
pub fn rom_stage(chip: &Chip, flash: &FlashArray, otp_words: &[u32], mem: &mut Memory) -> Result<Stage1, Refusal> {
    let mut log = Vec::new();
    let at = chip.memory.bootrom.stage1_flash_offset;
    let refuse = |log: &mut Vec<String>, reason: String| Err(Refusal { log: std::mem::take(log), reason });
    let mut hdr = [0u8; h::HEADER_SIZE];
    flash.read(at, &mut hdr);
    if hdr.iter().all(|&b| b == 0xff) {
        return refuse(&mut log, format!("no first-stage bootloader: the flash is erased at {at:#x}"));
    }
    if u32_at(&hdr, h::OFF_MAGIC) != h::MAGIC {
        return refuse(&mut log, format!("no image header at flash {at:#x} (magic {:#010x})", u32_at(&hdr, h::OFF_MAGIC)));
    }
    if u16_at(&hdr, h::OFF_FORMAT) != h::FORMAT || usize::from(u16_at(&hdr, h::OFF_HEADER_SIZE)) != h::HEADER_SIZE {
        return refuse(&mut log, format!("unknown image format {} (header size {})", u16_at(&hdr, h::OFF_FORMAT), u16_at(&hdr, h::OFF_HEADER_SIZE)));
    }
    if hdr[h::OFF_KIND] != h::KIND_BOOTLOADER {
        return refuse(&mut log, format!("the image at flash {at:#x} is not a bootloader (kind {})", hdr[h::OFF_KIND]));
    }
    let v = &hdr[h::OFF_VERSION..h::OFF_VERSION + 8];
    let build = u32_at(v, 4);
    let version = format!("{}.{}.{}{}", v[0], v[1], u16_at(v, 2), if build == 0 { String::new() } else { format!("+{build}") });
    let image_chip = u64_at(&hdr, h::OFF_CHIP);
    if image_chip != chip.layout_fingerprint() {
        return refuse(
            &mut log,
            format!("bootloader {version} was built for another chip layout ({image_chip:#018x}; this chip is {:#018x})", chip.layout_fingerprint()),
        );
    }
    let payload_size = u32_at(&hdr, h::OFF_PAYLOAD_SIZE) as usize;
    let (bl_base, bl_size) = chip.bootloader_region();
    let max_payload = bl_size as usize;
    if payload_size > max_payload {
        return refuse(&mut log, format!("bootloader payload of {payload_size} bytes is larger than its {max_payload}-byte region"));
    }
    let (key_hash, locked) = otp_key(otp_words);
    if key_hash == [0; 32] {
        return refuse(&mut log, "the OTP holds no root key hash (an unprovisioned chip boots nothing)".into());
    }
    if !locked {
        log.push("warning: the OTP key hash is not locked".into());
    }
    let pk: [u8; 32] = hdr[h::OFF_PUBLIC_KEY..h::OFF_PUBLIC_KEY + 32].try_into().expect("32 bytes");
    let sig_off = h::HEADER_SIZE + payload_size.next_multiple_of(8);
    let mut sig = [0u8; h::SIGNATURE_SIZE];
    flash.read(at + sig_off as u64, &mut sig);
    if pk == [0; 32] || sig.iter().all(|&b| b == 0xff) || sig.iter().all(|&b| b == 0) {
        return refuse(&mut log, format!("bootloader {version} is unsigned"));
    }
    if Sha256::digest(pk).as_slice() != key_hash {
        return refuse(&mut log, format!("bootloader {version} is signed with key {}…, whose hash is not the OTP's", &hex(&pk)[..16]));
    }
    let key = match VerifyingKey::from_bytes(&pk) {
        Ok(k) => k,
        Err(_) => return refuse(&mut log, format!("bootloader {version}: its public key is not a valid Ed25519 point")),
    };
    if key.verify_strict(&hdr, &Signature::from_bytes(&sig)).is_err() {
        return refuse(&mut log, format!("bootloader {version}: bad signature (tampered header or forged signature)"));
    }
    let mut payload = vec![0u8; payload_size];
    flash.read(at + h::HEADER_SIZE as u64, &mut payload);
    if Sha256::digest(&payload).as_slice() != &hdr[h::OFF_PAYLOAD_HASH..h::OFF_PAYLOAD_HASH + 32] {
        return refuse(&mut log, format!("bootloader {version}: payload hash mismatch (tampered payload)"));
    }
    // Where the bootloader may load: its region above the hand-off block.
    let (lo, hi) = (bl_base + bootinfo::SIZE as u64, bl_base + bl_size);
    let nseg = usize::from(u16_at(&hdr, h::OFF_SEGMENTS));
    if nseg == 0 || nseg > h::MAX_SEGMENTS {
        return refuse(&mut log, format!("bootloader {version}: {nseg} segments (1..={})", h::MAX_SEGMENTS));
    }
    let mut segs = Vec::new();
    for i in 0..nseg {
        let e = h::OFF_SEGMENT_TABLE + i * h::SEGMENT;
        let (load, off, file, memsz) = (
            u64_at(&hdr, e + h::SEG_LOAD),
            u32_at(&hdr, e + h::SEG_OFFSET) as usize,
            u32_at(&hdr, e + h::SEG_FILE_SIZE) as usize,
            u64::from(u32_at(&hdr, e + h::SEG_MEM_SIZE)),
        );
        if off + file > payload_size || file as u64 > memsz || load < lo || load.saturating_add(memsz) > hi {
            return refuse(&mut log, format!("bootloader {version}: segment {i} ({load:#x}+{memsz:#x}) outside the bootloader region {lo:#x}..{hi:#x}"));
        }
        segs.push((load, off, file, memsz));
    }
    let entry = u64_at(&hdr, h::OFF_ENTRY);
    if entry < lo || entry >= hi {
        return refuse(&mut log, format!("bootloader {version}: entry {entry:#x} outside the bootloader region"));
    }
    for (load, off, file, memsz) in segs {
        mem.write_bytes(load, &payload[off..off + file]).expect("inside DDR");
        if memsz > file as u64 {
            mem.write_bytes(load + file as u64, &vec![0u8; (memsz - file as u64) as usize]).expect("inside DDR");
        }
    }
    // The hand-off block starts out empty.
    mem.write_bytes(bl_base, &[0u8; bootinfo::SIZE]).expect("inside DDR");
    let bytes = (sig_off + h::SIGNATURE_SIZE) as u64;
    let cycles = bytes * 16 * (u64::from(spi::CLKDIV_RESET) + 1);
    log.push(format!(
        "stage 1 bootloader {version} verified: {payload_size} bytes, key {}…, entry {entry:#x}",
        &hex(&pk)[..16]
    ));
    Ok(Stage1 { entry, cycles, log })
}
