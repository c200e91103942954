//! Harness for tests that boot the real firmware image and drive it with
//! the host model.
#![allow(dead_code)]

use dpu_sim::elf::Image;
use dpu_sim::host::nvme::{Controller, DriverOptions};
use dpu_sim::host::{pci, Host};
use dpu_sim::{Machine, Outcome, SimConfig};
use dpu_targets::{Board, Chip};
use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The firmware image: `$DPU_FW_ELF` (set by `cargo xtask test`), or built
/// here once with cargo.
pub fn firmware() -> PathBuf {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        if let Some(p) = std::env::var_os("DPU_FW_ELF") {
            return PathBuf::from(p);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--profile", "fw", "--target", "riscv64imac-unknown-none-elf", "-p", "dpu-fw"])
            .env_remove("DPU_CHIP")
            .env_remove("DPU_BOARD")
            .status()
            .expect("cannot run cargo to build the firmware");
        assert!(st.success(), "building the firmware failed (try `cargo xtask build`)");
        root.join("target/riscv64imac-unknown-none-elf/fw/dpu-fw")
    })
    .clone()
}

/// Boots the firmware with `namespaces` (function, nsid, bytes, block size)
/// and runs `body` as the host; returns the machine after the body ends.
/// Panics with the firmware's recent log if the body fails.
pub fn run_host<F, Fut>(namespaces: &[(u16, u32, u64, u32)], body: F) -> Machine
where
    F: FnOnce(Host) -> Fut + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    run_host_with(namespaces, |_| {}, body)
}

/// Like [`run_host`], with `setup` applied to the machine first (faults).
pub fn run_host_with<F, Fut>(namespaces: &[(u16, u32, u64, u32)], setup: impl FnOnce(&mut Machine), body: F) -> Machine
where
    F: FnOnce(Host) -> Fut + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let board = Board::load(dpu_targets::default_board_path()).unwrap();
    let image = Image::load(firmware()).unwrap();
    let cfg = SimConfig { quiet: true, capture_log: true, max_cycles: Some(2_000_000_000), ..SimConfig::default() };
    let mut m = Machine::new(chip, board, image, cfg).unwrap();
    m.set_namespaces(namespaces).unwrap();
    setup(&mut m);
    let h = m.new_host();
    let h2 = h.clone();
    h.spawn(async move {
        let r = body(h2.clone()).await;
        h2.finish(r);
    });
    let out = m.run();
    if out != Outcome::Host(Ok(())) {
        let log: Vec<String> = m.bus.console.all.iter().rev().take(30).rev().map(|l| m.bus.console.format(l)).collect();
        let host_log: Vec<String> = m.host.as_ref().unwrap().host.state().log.iter().rev().take(15).rev().map(|(_, s)| s.clone()).collect();
        panic!("host body did not pass: {out:?}\nfirmware log:\n{}\nhost log:\n{}", log.join("\n"), host_log.join("\n"));
    }
    m
}

/// Small driver settings for tests.
pub fn opts() -> DriverOptions {
    DriverOptions { io_queues: 2, io_queue_depth: 16, io_timeout_ns: 5_000_000, admin_timeout_ns: 10_000_000, ..DriverOptions::default() }
}

/// Enumerates the PF and brings its controller up.
pub async fn pf(h: &Host, o: DriverOptions) -> Result<Controller, String> {
    let f = pci::probe_pf(h).await?;
    Controller::probe(h, f, o).await
}

/// Asserts a command's status (SCT, SC).
pub fn expect_status(r: Result<dpu_sim::host::nvme::Cqe, dpu_sim::host::nvme::CmdError>, want: (u8, u8), what: &str) -> Result<(), String> {
    match r {
        Ok(c) if want == (0, 0) => {
            let _ = c;
            Ok(())
        }
        Ok(_) => Err(format!("{what}: succeeded, expected status {want:02x?}")),
        Err(dpu_sim::host::nvme::CmdError::Status(c)) if c.code() == want => Ok(()),
        Err(e) => Err(format!("{what}: {e}, expected status {want:02x?}")),
    }
}
