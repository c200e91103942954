//! Renders `linker/dpu.x.in` with the selected chip's memory map into
//! `link.x` (linked with `-Tlink.x`, see .cargo/config.toml).

use std::path::PathBuf;

fn main() {
    let chip = dpu_targets::build_firmware_chip();
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../../linker/dpu.x.in");
    println!("cargo:rerun-if-changed={}", root.display());
    let template = std::fs::read_to_string(&root).unwrap_or_else(|e| {
        eprintln!("error: {}: {e}", root.display());
        std::process::exit(1);
    });
    let m = &chip.memory;
    let mut out = template;
    // The top of the image region belongs to the first-stage bootloader.
    let firmware_size = m.ddr.image_size - chip.firmware.bootloader_size;
    for (k, v) in [("ddr_base", m.ddr.base), ("firmware_size", firmware_size)] {
        out = out.replace(&format!("{{{{{k}}}}}"), &format!("{v:#x}"));
    }
    if let Some(i) = out.find("{{") {
        let end = out[i..].find("}}").map_or(out.len(), |e| i + e + 2);
        eprintln!("error: {}: unknown placeholder {}", root.display(), &out[i..end]);
        std::process::exit(1);
    }
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::write(dir.join("link.x"), out).unwrap();
    println!("cargo:rustc-link-search={}", dir.display());
}
