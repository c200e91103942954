//! Links the benchmark at the selected chip's DDR base ($DPU_CHIP, normally
//! targets/chips/qemu-virt.toml) and passes the finisher address.

use std::path::PathBuf;

fn main() {
    let chip = dpu_targets::build_chip();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let script = format!(
        "MEMORY {{ RAM : ORIGIN = {:#x}, LENGTH = {:#x} }}\nENTRY(_start)\n\
         SECTIONS {{\n  .text : {{ KEEP(*(.text.start)); *(.text .text.*); }} > RAM\n  \
         .rodata : {{ *(.rodata .rodata.*); }} > RAM\n  .data : {{ *(.data .data.* .sdata .sdata.*); }} > RAM\n  \
         .bss (NOLOAD) : {{ *(.bss .bss.* .sbss .sbss.*); }} > RAM\n  _stack_top = ORIGIN(RAM) + LENGTH(RAM);\n  \
         /DISCARD/ : {{ *(.eh_frame .eh_frame_hdr); }}\n}}\n",
        chip.memory.ddr.base, chip.memory.ddr.image_size
    );
    std::fs::write(out.join("bare.x"), script).unwrap();
    std::fs::write(out.join("finisher.rs"), format!("const FINISHER: usize = {:#x};\n", chip.devices.finisher.base)).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
}
