//! First-stage bootloader (MCUboot's job, without image swapping: each
//! slot's image is loaded from flash into DDR and runs there).
//!
//! The boot ROM verified this program against the OTP key hash, loaded it
//! at the top of the image region and started every hart at `_start`.
//! Hart 0 does the work; the others sleep until it releases them.
//!
//! 1. Read the OTP: root key hash, anti-rollback counter.
//! 2. Read the boot journal (`dpu_fwimage::state`) and decide: a slot on
//!    trial that never confirmed itself is reverted; a pending slot boots
//!    on trial (recorded before it runs); else the confirmed slot, else
//!    the other one.
//! 3. Verify a slot's image (`dpu_fwimage::verify`: kind, chip, load
//!    addresses, signer key against the OTP hash, security counter against
//!    the OTP counter, Ed25519 signature, payload SHA-256) while copying
//!    its payload to its load addresses; zero the rest of each segment.
//! 4. Leave the hand-off block (`regs::bootinfo`: slot, mode, counters,
//!    version) for the firmware, release the harts (`msip`), wait until
//!    all have left, and jump to the image's entry with `a0 = mhartid`.
//!
//! Every decision is logged on the UART (the boot log). When no slot may
//! boot, the bootloader says why and reports it through the finisher
//! (`finisher::no_bootable_image`); a card would wait for recovery.
#![no_std]
#![no_main]

mod log;

use core::fmt::Write;
use dpu_fwimage::state::{decide, Journal, Mode, Note};
use dpu_fwimage::verify::Trust;
use dpu_fwimage::{Header, ImageError, Slot};
use dpu_hal::memory_map as mm;
use dpu_hal::regs::{bootinfo as bi, image as h};
use dpu_spi_nor::{Flash, Geometry, SpiNor, Timing};

/// Chip stamp (as `dpu-rt` writes it): the packer reads the chip layout
/// fingerprint from it into the image header.
#[used]
#[unsafe(link_section = ".dpu_chip")]
static CHIP_STAMP: [u8; 48] = chip_stamp();

const fn chip_stamp() -> [u8; 48] {
    let mut out = [0u8; 48];
    let fp = mm::CHIP_FINGERPRINT.to_le_bytes();
    let bfp = mm::BOARD_FINGERPRINT.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        out[i] = fp[i];
        out[8 + i] = bfp[i];
        i += 1;
    }
    let name = mm::CHIP_NAME.as_bytes();
    let mut j = 0;
    while j < name.len() && j < 31 {
        out[16 + j] = name[j];
        j += 1;
    }
    out
}

core::arch::global_asm!(
    r#"
    .option arch, +m, +a
    .section .text.start, "ax"
    .global _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    csrw    mie, zero
    csrci   mstatus, 8
    la      t1, _bl_trap
    csrw    mtvec, t1
    csrr    t0, mhartid
    bnez    t0, 20f
    # hart 0: stack at the top of cluster 0's SMEM (the firmware's hart 0
    # stack; the firmware starts over with its own sp).
    li      sp, {smem_end}
    call    bl_main
1:  wfi
    j       1b

    # other harts: sleep until hart 0 raises msip, clear it, count
    # ourselves out, jump to the entry it left in the hand-off block.
20: li      t1, 8
    csrw    mie, t1
21: wfi
    csrr    t1, mip
    andi    t1, t1, 8
    beqz    t1, 21b
    li      t1, {clint}
    slli    t2, t0, 2
    add     t1, t1, t2
    sw      zero, 0(t1)
    csrw    mie, zero
    fence   rw, rw
    li      t1, {bootinfo}
    ld      t2, {off_entry}(t1)
    fence.i
    addi    t3, t1, {off_released}
    li      t4, 1
    amoadd.w.aqrl zero, t4, (t3)
    mv      a0, t0
    jr      t2

    # A trap in the bootloader: report it (the simulator prints a fault
    # report) and stop.
    .align 2
_bl_trap:
    li      t0, {finisher}
    li      t1, {fault}
    sw      t1, 0(t0)
2:  wfi
    j       2b
    "#,
    smem_end = const mm::SMEM_BASE + mm::SMEM_SIZE,
    clint = const mm::CLINT_BASE,
    bootinfo = const mm::BOOTINFO_BASE,
    off_entry = const bi::OFF_ENTRY,
    off_released = const bi::OFF_RELEASED,
    finisher = const mm::FINISHER_BASE,
    fault = const (1u32 << 16) | dpu_hal::regs::finisher::FAULT,
);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(dpu_hal::uart::Writer, "boot: panic: {info}");
    dpu_hal::finisher::fail(0xdead);
    park()
}

fn park() -> ! {
    loop {
        dpu_hal::csr::wfi();
    }
}

/// The boot flash with the board's geometry and datasheet timing.
fn open_flash() -> Result<SpiNor<dpu_hal::spi::FlashSpi, dpu_hal::delay::Sleep>, dpu_spi_nor::Error<core::convert::Infallible>> {
    let g = Geometry { size: mm::FLASH_SIZE as u32, page: mm::FLASH_PAGE_SIZE as u32, subsector: mm::FLASH_SUBSECTOR_SIZE as u32, sector: mm::FLASH_SECTOR_SIZE as u32 };
    let t = Timing {
        page_program_ns: mm::FLASH_PAGE_PROGRAM_NS as u32,
        subsector_erase_ns: mm::FLASH_SUBSECTOR_ERASE_NS as u32,
        sector_erase_ns: mm::FLASH_SECTOR_ERASE_NS as u32,
    };
    SpiNor::new(dpu_hal::spi::FlashSpi::new(mm::FLASH_MAX_SCK_HZ), dpu_hal::delay::Sleep { hart: 0 }, g, t, mm::FLASH_JEDEC_ID)
}

/// Verifies slot `slot` and loads its image; returns its header.
fn load<F: Flash>(flash: &mut F, slot: Slot, otp_key: &[u8; 32], otp_counter: u32) -> Result<Header, ImageError> {
    let trust = Trust {
        key_hash: *otp_key,
        rollback: otp_counter,
        kind: h::KIND_FIRMWARE,
        chip: mm::CHIP_FINGERPRINT,
        max_len: mm::FLASH_SLOT_A_SIZE,
        load_window: (mm::DDR_BASE as u64, mm::BOOTLOADER_BASE as u64),
    };
    let base = slot.offset();
    let hdr = dpu_fwimage::verify(
        &trust,
        &mut |off, buf: &mut [u8]| flash.read(base + off, buf),
        &mut |hdr, off, bytes| hdr.place(off, bytes.len(), &mut |addr, r| dpu_hal::mem::write(addr as usize, &bytes[r])),
    )?;
    // What the segments hold beyond their file bytes (.bss) reads zero.
    let zeros = [0u8; 256];
    for s in hdr.segments() {
        let mut a = s.load + u64::from(s.file_size);
        let end = s.load + u64::from(s.mem_size);
        while a < end {
            let n = (end - a).min(zeros.len() as u64) as usize;
            dpu_hal::mem::write(a as usize, &zeros[..n]);
            a += n as u64;
        }
    }
    Ok(hdr)
}

/// The rest of the hand-off: bootinfo, release the other harts, jump.
fn hand_off(slot: Slot, mode: Mode, hdr: &Header, otp_counter: u32) -> ! {
    let b = mm::BOOTINFO_BASE;
    let put = |off: usize, v: &[u8]| dpu_hal::mem::write(b + off, v);
    put(bi::OFF_RELEASED, &0u32.to_le_bytes());
    put(bi::OFF_SLOT, &[slot.index() as u8]);
    put(bi::OFF_MODE, &[if mode == Mode::Trial { bi::MODE_TRIAL } else { bi::MODE_CONFIRMED }]);
    put(bi::OFF_OTP_COUNTER, &otp_counter.to_le_bytes());
    put(bi::OFF_SECURITY_COUNTER, &hdr.security_counter.to_le_bytes());
    put(bi::OFF_VERSION, &hdr.version.to_bytes());
    put(bi::OFF_ENTRY, &hdr.entry.to_le_bytes());
    put(bi::OFF_MAGIC, &bi::MAGIC.to_le_bytes());
    dpu_hal::cpu::fence();
    for hart in 1..mm::HARTS {
        dpu_hal::clint::send_ipi(hart);
    }
    // Every other hart has read the entry and left before hart 0 runs the
    // firmware (whose hart 0 raises their msip again).
    let mut released = [0u8; 4];
    loop {
        dpu_hal::mem::read(b + bi::OFF_RELEASED, &mut released);
        if u32::from_le_bytes(released) as usize >= mm::HARTS - 1 {
            break;
        }
        dpu_hal::delay::spin_ns(1_000);
    }
    dpu_hal::cpu::jump_to_image(hdr.entry, 0)
}

#[unsafe(no_mangle)]
extern "C" fn bl_main() -> ! {
    log!("DPU bootloader {} (chip {}, board {})", env!("CARGO_PKG_VERSION"), mm::CHIP_NAME, mm::BOARD_NAME);
    let otp_key = dpu_hal::otp::key_hash();
    let otp_counter = dpu_hal::otp::rollback_counter();
    log!("otp: root key hash {}..., anti-rollback counter {}", log::Hex(&otp_key[..8]), otp_counter);
    let mut flash = match open_flash() {
        Ok(f) => f,
        Err(e) => {
            log!("flash: {:?}: cannot read the boot flash", e);
            no_bootable_image()
        }
    };
    let journal = Journal::board();
    let state = match journal.read(&mut flash) {
        Ok(s) => s,
        Err(e) => {
            log!("journal: read error {:?}: starting from slot A", e);
            Default::default()
        }
    };
    log!(
        "journal: confirmed slot {}, pending {}, on trial {}",
        state.confirmed.name(),
        state.pending.map_or("-", Slot::name),
        state.trying.map_or("-", Slot::name)
    );
    let mut chosen: Option<Header> = None;
    let decision = decide(
        state,
        &mut |slot| {
            let r = load(&mut flash, slot, &otp_key, otp_counter);
            if let Ok(hdr) = &r {
                log!(
                    "slot {}: image {} (security counter {}, {} bytes) verified",
                    slot.name(),
                    log::Version(hdr.version),
                    hdr.security_counter,
                    hdr.payload_size
                );
            }
            let r = r.map(|hdr| chosen = Some(hdr));
            r
        },
        &mut |note| match note {
            Note::Reverted { slot, to } => log!("slot {}: was on trial and never confirmed itself: reverting to slot {}", slot.name(), to.name()),
            Note::Refused { slot, error: ImageError::RolledBack { image, otp } } => log!(
                "slot {}: refused: rolled back: security counter {} is below the OTP anti-rollback counter {}",
                slot.name(),
                image,
                otp
            ),
            Note::Refused { slot, error } => log!("slot {}: refused: {}", slot.name(), error.reason()),
            Note::FellBack { from, to } => log!("slot {}: unusable; slot {} is now the confirmed one", from.name(), to.name()),
        },
    );
    if let Some(record) = decision.record {
        if let Err(e) = journal.write(&mut flash, record) {
            // Booting on trial without a record would never revert: refuse.
            log!("journal: write error {:?}", e);
            if matches!(decision.boot, Some((_, Mode::Trial))) {
                no_bootable_image()
            }
        }
    }
    let (Some((slot, mode)), Some(hdr)) = (decision.boot, chosen) else {
        log!("no bootable firmware image");
        no_bootable_image()
    };
    let how = if mode == Mode::Trial { "on trial: it must confirm itself or the next boot reverts" } else { "confirmed" };
    log!("booting slot {} ({}), entry {:#x}", slot.name(), how, hdr.entry);
    hand_off(slot, mode, &hdr, otp_counter)
}

fn no_bootable_image() -> ! {
    dpu_hal::finisher::no_bootable_image();
    park()
}
