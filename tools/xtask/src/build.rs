//! Building the firmware images and the simulator.

use crate::toolchain::{ensure_target, FIRMWARE_TARGET};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a build produced.
pub struct Built {
    /// `target/firmware/dpu-fw.elf`
    pub firmware: PathBuf,
    /// `target/firmware/bootloader.elf`: the first-stage bootloader.
    pub bootloader: PathBuf,
    /// Directory with the test and benchmark images (`*.elf`).
    pub test_images: PathBuf,
    /// The simulator binary.
    pub dpusim: PathBuf,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Shell-like rendering of a command, for logs.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().to_string();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd` (echoed first); an error naming it when it fails.
pub(crate) fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: {}", show(&cmd));
    let st = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({st})", show(&cmd)))
    }
}

/// Builds the firmware image for `chip` (default chip if None) into
/// `target_dir` (the workspace target dir if None); with `all`, also the
/// test images and the first-stage bootloader.
pub fn build_firmware(chip: Option<&Path>, target_dir: Option<&Path>, all: bool) -> Result<PathBuf, String> {
    ensure_target()?;
    let mut c = cargo();
    c.args(["build", "--profile", "fw", "--target", FIRMWARE_TARGET, "-p", "dpu-fw"]);
    if all {
        c.args(["-p", "dpu-fw-tests", "-p", "dpu-bootloader"]);
    }
    if let Some(chip) = chip {
        let abs = chip.canonicalize().map_err(|e| format!("{}: {e}", chip.display()))?;
        c.env("DPU_CHIP", abs);
    } else {
        c.env_remove("DPU_CHIP");
    }
    if let Some(t) = target_dir {
        // A variant built into its own directory (a test's chip variant):
        // without fat LTO, in 16 codegen units and without debug info it
        // builds in about 70% of the time, and a variant boot test does
        // not measure cycles.
        c.arg("--target-dir").arg(t);
        c.env("CARGO_PROFILE_FW_LTO", "false").env("CARGO_PROFILE_FW_CODEGEN_UNITS", "16").env("CARGO_PROFILE_FW_DEBUG", "0");
    }
    run(c)?;
    Ok(target_dir.map(Path::to_path_buf).unwrap_or_else(|| root().join("target")).join(FIRMWARE_TARGET).join("fw"))
}

/// Copies the built images to `target/firmware/` (the main image as
/// `dpu-fw.elf`, the bootloader as `bootloader.elf`, the others under
/// `tests/`).
fn collect(out: &Path) -> Result<(PathBuf, PathBuf), String> {
    let dest = root().join("target/firmware");
    let tests = dest.join("tests");
    std::fs::create_dir_all(&tests).map_err(|e| format!("{}: {e}", tests.display()))?;
    let copy = |from: PathBuf, to: PathBuf| std::fs::copy(&from, &to).map(|_| ()).map_err(|e| format!("{}: {e}", from.display()));
    copy(out.join("dpu-fw"), dest.join("dpu-fw.elf"))?;
    copy(out.join("dpu-bootloader"), dest.join("bootloader.elf"))?;
    let bins = root().join("firmware/tests/src/bin");
    for e in std::fs::read_dir(&bins).map_err(|e| format!("{}: {e}", bins.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
            copy(out.join(stem), tests.join(format!("{stem}.elf")))?;
        }
    }
    Ok((dest.join("dpu-fw.elf"), tests))
}

/// Builds the simulator (release).
pub fn build_sim() -> Result<PathBuf, String> {
    let mut c = cargo();
    c.args(["build", "--release", "-p", "dpu-sim", "--bin", "dpusim"]);
    run(c)?;
    Ok(root().join("target/release/dpusim"))
}

/// The simulator in the `dev` profile (the interpreter optimized, see the
/// workspace Cargo.toml): what `cargo xtask test` runs, built from the
/// same dependency artifacts as the host tests.
fn build_sim_for_tests() -> Result<PathBuf, String> {
    let mut c = cargo();
    c.args(["build", "-p", "dpu-sim", "--bin", "dpusim"]);
    run(c)?;
    Ok(root().join("target/debug/dpusim"))
}

/// Firmware for the default chip (and `chip` if given) plus the simulator.
pub fn build_all(chip: Option<&Path>) -> Result<Built, String> {
    let out = build_firmware(chip, None, true)?;
    let (firmware, test_images) = collect(&out)?;
    let dpusim = build_sim()?;
    eprintln!("xtask: firmware image: {}", firmware.display());
    let bootloader = firmware.with_file_name("bootloader.elf");
    Ok(Built { firmware, bootloader, test_images, dpusim })
}

/// [`build_all`] for `cargo xtask test`: the simulator in the test profile.
pub fn build_all_for_tests() -> Result<Built, String> {
    let out = build_firmware(None, None, true)?;
    let (firmware, test_images) = collect(&out)?;
    let dpusim = build_sim_for_tests()?;
    eprintln!("xtask: firmware image: {}", firmware.display());
    let bootloader = firmware.with_file_name("bootloader.elf");
    Ok(Built { firmware, bootloader, test_images, dpusim })
}
