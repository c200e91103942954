//! What boot code reads from a flash an attacker may have written: the
//! boot ROM model's check of the first-stage bootloader
//! (`dpu_sim::secure_boot`), the bootloader's image verifier
//! (`dpu_fwimage::verify`), the boot journal and the A/B decision
//! (`dpu_fwimage::state`), and the configuration copies (`dpu_config`).
//! They must refuse, never panic; what they accept must hold what the
//! code after them relies on.
//!
//! Input: the first bytes of a 1 MiB flash (the rest reads erased):
//! `[0, 0x2000)` a bootloader image (the ROM's), `[0x2000, 0x4000)` a
//! firmware slot, `[0x4000, 0x6000)` the journal, `[0x6000, 0xa000)` the
//! two configuration copies. The trusted key is whatever key the image
//! headers name (so the signature check is reached), and the ROM's chip
//! is the default chip file's.

use dpu_config::store::{Store, SCRATCH};
use dpu_config::Config;
use dpu_fwimage::state::{decide, Journal};
use dpu_fwimage::verify::Trust;
use dpu_hal::regs::image as h;
use dpu_spi_nor::ram::RamFlash;
use dpu_spi_nor::{Flash, Geometry};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

pub const SLOT: u32 = 0x2000;
const SLOT_SIZE: usize = 0x2000;
pub const JOURNAL: Journal = Journal { offset: 0x4000, half: 0x1000 };
pub const STORE: Store = Store { offset: 0x6000, size: 0x4000 };
pub const LEN: usize = 0xa000;
const GEOMETRY: Geometry = Geometry { size: 1 << 20, page: 256, subsector: 4096, sector: 65536 };

fn chip() -> &'static dpu_targets::Chip {
    static CHIP: OnceLock<dpu_targets::Chip> = OnceLock::new();
    CHIP.get_or_init(|| dpu_targets::Chip::load(dpu_targets::default_chip_path()).expect("the default chip file loads"))
}

fn key_hash_at(flash: &RamFlash, at: usize) -> [u8; 32] {
    Sha256::digest(&flash.bytes[at + h::OFF_PUBLIC_KEY..at + h::OFF_PUBLIC_KEY + 32]).into()
}

pub fn run(data: &[u8]) {
    let mut flash = RamFlash::new(GEOMETRY);
    let n = data.len().min(LEN);
    flash.bytes[..n].copy_from_slice(&data[..n]);

    rom(&flash);
    slot(&mut flash);

    // The journal and the decision: with both slots loadable, something boots.
    let st = JOURNAL.read(&mut flash).expect("RAM flash reads");
    let d = decide(st, &mut |_| Ok::<(), ()>(()), &mut |_| {});
    assert!(d.boot.is_some(), "{st:?}: nothing boots though both slots load");
    if let Some(r) = d.record {
        let written = JOURNAL.write(&mut flash, r).expect("RAM flash writes");
        assert_eq!(JOURNAL.read(&mut flash).expect("reads"), written, "a journal record does not read back");
    }

    // The configuration: what loads is valid and renders into the blob.
    let mut scratch = vec![0u8; SCRATCH];
    let mut config = Box::new(Config::default());
    let r = STORE.load(&mut flash, &mut scratch, &mut config).expect("RAM flash reads");
    if r.copy.is_some() {
        assert_eq!(config.validate(), Ok(()), "a loaded configuration does not validate");
        let mut blob = vec![0u8; dpu_bootcfg::MAX_BLOB];
        let len = dpu_config::blob::render(&config, &mut blob).expect("a valid configuration fits the blob");
        let mut t = Box::new(dpu_bootcfg::Table::EMPTY);
        let mut next = 0x4400_0000u64;
        let parsed = dpu_bootcfg::parse(&blob[..len], &mut t, |b| {
            let base = next;
            next = next.checked_add(b.next_multiple_of(4096))?;
            Some(base)
        });
        assert!(parsed.is_ok(), "the firmware rejects a configuration the store validated: {parsed:?}");
        assert_eq!(t.namespaces().count(), config.namespaces.len());
    } else {
        assert_eq!(*config, Config::EMPTY);
    }
}

/// The boot ROM model on the bootloader partition.
fn rom(flash: &RamFlash) {
    let chip = chip();
    let mut otp = vec![0u32; chip.devices.otp.words as usize];
    let kh = key_hash_at(flash, 0);
    for i in 0..dpu_hal::regs::otp::KEY_HASH_WORDS {
        otp[dpu_hal::regs::otp::KEY_HASH + i] = u32::from_le_bytes(kh[4 * i..4 * i + 4].try_into().expect("4"));
    }
    otp[dpu_hal::regs::otp::LOCK] = dpu_hal::regs::otp::LOCK_KEY_HASH;
    let array = dpu_sim::dev::nor_flash::FlashArray::from_bytes(GEOMETRY.size.into(), &flash.bytes[..SLOT as usize]);
    let (base, size) = chip.bootloader_region();
    let ddr = dpu_sim::mem::Region { name: "ddr".into(), base: chip.memory.ddr.base, size: chip.memory.ddr.image_size, kind: dpu_sim::mem::RegionKind::Ddr, id: 0, writable: true };
    let mut mem = dpu_sim::mem::Memory::new(vec![ddr]);
    if let Ok(s) = dpu_sim::secure_boot::rom_stage(chip, &array, &otp, &mut mem) {
        assert!(s.entry >= base && s.entry < base + size, "entry {:#x} outside the bootloader region", s.entry);
    }
}

/// The bootloader's verifier on the firmware slot.
fn slot(flash: &mut RamFlash) {
    let kh = key_hash_at(flash, SLOT as usize);
    let chip = u64::from_le_bytes(flash.bytes[SLOT as usize + h::OFF_CHIP..][..8].try_into().expect("8"));
    let window = (0x4000_0000u64, 0x43f0_0000u64);
    let trust = Trust { key_hash: kh, rollback: 1, kind: h::KIND_FIRMWARE, chip, max_len: SLOT_SIZE, load_window: window };
    let mut placed = 0u64;
    let mut fed = 0u64;
    let r = dpu_fwimage::verify(
        &trust,
        &mut |off, buf: &mut [u8]| flash.read(SLOT + off, buf),
        &mut |hdr, off, bytes| {
            fed += bytes.len() as u64;
            hdr.place(off, bytes.len(), &mut |addr, r| {
                assert!(addr >= window.0 && addr + r.len() as u64 <= window.1, "payload placed outside the load window");
                placed += r.len() as u64;
            });
        },
    );
    if let Ok(hdr) = r {
        assert!(hdr.security_counter >= 1);
        assert_eq!(fed, u64::from(hdr.payload_size), "the verifier hashed a different length than the header says");
        let file: u64 = hdr.segments().iter().map(|s| u64::from(s.file_size)).sum();
        assert!(placed <= file && hdr.segments().iter().all(|s| s.load >= window.0 && s.load + u64::from(s.mem_size) <= window.1));
    }
}
