//! Links the benchmark at the selected chip's DDR base ($DPU_CHIP, normally
//! targets/chips/qemu-virt.toml) and passes the finisher address.

use std::path::PathBuf;

fn main() {
    let chip = dpu_targets::build_chip();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let script = format!(
        "MEMORY {{ RAM : ORIGIN = {:#x}, LENGTH = {:#x} }}\nENTRY(_start)\n\
         SECTIONS {{\n  .text : {{ KEEP(*(.text.start)); *(.text .text.*); }} > RAM\n  \
         .rodata : {{ *(.rodata .rodata.*); }} > RAM\n  .dpu_chip : {{ KEEP(*(.dpu_chip)); }} > RAM\n  .data : {{ *(.data .data.* .sdata .sdata.*); }} > RAM\n  \
         .bss (NOLOAD) : {{ *(.bss .bss.* .sbss .sbss.*); }} > RAM\n  _stack_top = ORIGIN(RAM) + LENGTH(RAM);\n  \
         /DISCARD/ : {{ *(.eh_frame .eh_frame_hdr); }}\n}}\n",
        chip.memory.ddr.base, chip.memory.ddr.image_size
    );
    std::fs::write(out.join("bare.x"), script).unwrap();
    std::fs::write(out.join("finisher.rs"), format!("const FINISHER: usize = {:#x};\n", chip.devices.finisher.base)).unwrap();
    // The chip stamp dpusim checks (layout as dpu-rt writes it: chip and
    // board fingerprints, chip name), so it knows the image's chip.
    let board = dpu_targets::build_board();
    let mut stamp = [0u8; 48];
    stamp[..8].copy_from_slice(&chip.layout_fingerprint().to_le_bytes());
    stamp[8..16].copy_from_slice(&board.layout_fingerprint().to_le_bytes());
    let name = chip.chip.name.as_bytes();
    let n = name.len().min(31);
    stamp[16..16 + n].copy_from_slice(&name[..n]);
    std::fs::write(out.join("stamp.rs"), format!("const CHIP_STAMP_BYTES: [u8; 48] = {stamp:?};\n")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
}
