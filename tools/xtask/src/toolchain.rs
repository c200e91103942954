//! Makes sure the Rust target the firmware needs is installed.

use std::process::Command;

pub const FIRMWARE_TARGET: &str = "riscv64imac-unknown-none-elf";

/// Installs the firmware target with rustup if it is missing, or explains
/// what to install.
pub fn ensure_target() -> Result<(), String> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc ({e}); install Rust with rustup: https://rustup.rs"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let lib = std::path::Path::new(&sysroot).join("lib/rustlib").join(FIRMWARE_TARGET);
    if lib.exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the {FIRMWARE_TARGET} target (rustup target add {FIRMWARE_TARGET})");
    let status = Command::new("rustup").args(["target", "add", FIRMWARE_TARGET]).status().map_err(|e| {
        format!("the {FIRMWARE_TARGET} target is missing and rustup cannot be run ({e}); run: rustup target add {FIRMWARE_TARGET}")
    })?;
    if !status.success() {
        return Err(format!("`rustup target add {FIRMWARE_TARGET}` failed; run it by hand and retry"));
    }
    Ok(())
}
