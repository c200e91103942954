//! `cargo xtask`: the project's build, run, test and benchmark driver.
//!
//! * `cargo xtask build` - firmware (riscv64imac, release) and simulator;
//!   the image lands in `target/firmware/dpu-fw.elf`.
//! * `cargo xtask run`   - build, then boot the image in `dpusim`.
//! * `cargo xtask test`  - every host test, then every firmware test under
//!   the simulator (see `systest.rs`).
//! * `cargo xtask bench` - benchmarks; results in `bench/results/`, tables
//!   in `BENCHMARKS.md`.
//! * `cargo xtask flash` - a signed flash image for the card (bootloader,
//!   slots, configuration) and its OTP fuse file (see `flash.rs`).
//! * `cargo xtask fuzz [TARGET] [--time 60s] [--engine libfuzzer|builtin]`
//!   - run the fuzz targets of `tools/fuzz` (see `fuzz.rs`).
//! * `cargo xtask interop linux-target --guest-only` - boot the Linux
//!   NVMe/TCP target guest in QEMU and run its self-test (see `interop.rs`).
//! * `cargo xtask interop linux-initiator` - the Linux kernel NVMe/TCP
//!   host in QEMU against the card's NVMe/TCP target (`interop/initiator.rs`).
//! * `cargo xtask interop two-cards` - two simulated cards bridged
//!   together, each the other's NVMe/TCP target (`interop/two_cards.rs`).

mod bench;
mod build;
mod faults;
mod flash;
mod fuzz;
mod interop;
mod plot;
mod systest;
mod toolchain;
mod tshark;
mod wirescan;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Build, run, test and benchmark the DPU firmware and simulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the firmware images and the simulator.
    Build {
        /// Chip description to build the firmware for.
        #[arg(long, value_name = "FILE")]
        chip: Option<PathBuf>,
    },
    /// Build, then run the main scenario (the storage adapter:
    /// targets/scenarios/adapter-verify.toml) on a card booted the way a
    /// real one boots: a freshly signed flash image (ROM, bootloader,
    /// slot A) holding the scenario's configuration.
    Run {
        /// Scenario: a name in targets/scenarios/, a file, or `none` (boot
        /// only, for `--time`).
        #[arg(long, default_value = "adapter-verify")]
        scenario: String,
        /// Simulated time limit.
        #[arg(long)]
        time: Option<String>,
        /// Load the ELF directly, with the configuration in the simulator's
        /// boot configuration window, instead of booting a flash image.
        /// (A scenario the flash configuration cannot hold is loaded this
        /// way, with a note.)
        #[arg(long, conflicts_with = "flash")]
        elf: bool,
        /// Boot from a signed flash image (the default; kept for scripts).
        #[arg(long, hide = true)]
        flash: bool,
        /// Extra arguments passed to dpusim (after `--`).
        #[arg(last = true)]
        dpusim_args: Vec<String>,
    },
    /// Build a signed flash image for the card: first-stage bootloader,
    /// firmware in slot A (and optionally slot B), the configuration of a
    /// scenario, and an OTP fuse file provisioned with the signing key's
    /// hash. Boot it with `dpusim --flash FILE`.
    Flash(flash::FlashArgs),
    /// Run every test: host unit tests, then firmware tests under the simulator.
    Test {
        /// Run only what is named: system tests whose name contains this
        /// text, and/or host test crates named exactly (e.g. `dpu-targets`).
        /// Comma-separated; a name that matches nothing is an error.
        #[arg(long, value_name = "NAMES")]
        only: Option<String>,
        /// Skip the host `cargo test` step.
        #[arg(long)]
        no_host: bool,
        /// Print the host test crates and the system test names, and exit.
        #[arg(long)]
        list: bool,
        /// System tests run side by side (default: one per CPU).
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
    },
    /// Run benchmarks (all, or one by name).
    Bench {
        /// The benchmark to run (all when omitted).
        #[arg(value_parser = bench::names())]
        name: Option<String>,
    },
    /// Fuzz the parsers of hostile input (tools/fuzz), each target for a
    /// bounded time.
    Fuzz {
        /// One target (default: all; `cargo run -p dpu-fuzz -- list`).
        target: Option<String>,
        /// Time per target.
        #[arg(long, default_value = "60s")]
        time: String,
        /// libfuzzer (coverage guided; installs nightly and cargo-fuzz on
        /// first use) or builtin (stable mutation engine).
        #[arg(long, default_value = "libfuzzer")]
        engine: String,
    },
    /// The fault campaign: the storage adapter under verified I/O, once
    /// per fault kind (link flap, loss, reordering, duplication, target
    /// restart / stall / black hole / slowness, malformed PDUs, DMA
    /// errors); one line per fault: survived, blocks lost or corrupt, I/O
    /// errors, longest I/O.
    Faults {
        /// Only the faults whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Interoperability with other NVMe/TCP implementations.
    Interop {
        #[command(subcommand)]
        peer: InteropPeer,
    },
}

/// The peers `cargo xtask interop` works with.
#[derive(Subcommand)]
enum InteropPeer {
    /// The Linux kernel NVMe/TCP target (nvmet-tcp) in a QEMU guest.
    LinuxTarget {
        /// Only boot the guest and run its in-guest self-test (the guest's
        /// own NVMe/TCP host against its target; no simulator).
        #[arg(long)]
        guest_only: bool,
    },
    /// The Linux kernel NVMe/TCP host (nvme-tcp) in a QEMU guest, against
    /// the card's NVMe/TCP target.
    LinuxInitiator,
    /// Two simulated cards (two dpusim processes) joined through their UDP
    /// bridges: each serves a RAM subsystem and verifies I/O on the other's.
    TwoCards,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Build { chip } => build::build_all(chip.as_deref()).map(|_| ()),
        // dpusim's exit status is passed through (see its README table).
        Cmd::Run { scenario, time, elf, flash: _, dpusim_args } => match run(&scenario, time.as_deref(), !elf, &dpusim_args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Cmd::Test { list: true, .. } => systest::list(),
        Cmd::Test { only, no_host, list: false, jobs } => systest::test_all(only.as_deref(), no_host, jobs),
        Cmd::Bench { name } => bench::run(name.as_deref()),
        Cmd::Flash(a) => build::build_all(None).and_then(|built| flash::flash(&built, &a)).and_then(|()| {
            let sc = match flash::scenario_path(&a.scenario)? {
                Some(p) => format!("--scenario {}", p.strip_prefix(build::root()).unwrap_or(&p).display()),
                None => "--max-time 50ms".into(),
            };
            eprintln!("xtask: boot it: target/release/dpusim --flash {} --elf target/firmware/dpu-fw.elf {sc}", a.out.display());
            Ok(())
        }),
        Cmd::Fuzz { target, time, engine } => fuzz::fuzz(target.as_deref(), &time, &engine),
        Cmd::Faults { only } => build::build_all(None).and_then(|built| faults::campaign(&built, only.as_deref())).and_then(|runs| {
            let failed: Vec<&str> = runs.iter().filter(|r| !r.survived).map(|r| r.name).collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("not survived: {}", failed.join("; ")))
            }
        }),
        Cmd::Interop { peer: InteropPeer::LinuxTarget { guest_only: true } } => interop::guest_self_test(),
        Cmd::Interop { peer: InteropPeer::LinuxTarget { guest_only: false } } => build::build_all(None)
            .and_then(|built| interop::adapter_against_linux(&built.dpusim, &built.firmware))
            .map(|report| println!("{report}")),
        Cmd::Interop { peer: InteropPeer::LinuxInitiator } => build::build_all(None)
            .and_then(|built| interop::initiator::linux_against_card(&built.dpusim, &built.firmware))
            .map(|report| println!("{report}")),
        Cmd::Interop { peer: InteropPeer::TwoCards } => build::build_all(None)
            .and_then(|built| interop::two_cards::two_cards(&built.dpusim, &built.firmware))
            .map(|report| println!("{report}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds and runs dpusim; returns its exit status.
fn run(scenario: &str, time: Option<&str>, from_flash: bool, extra: &[String]) -> Result<u8, String> {
    let sc = flash::scenario_path(scenario)?;
    let out = build::build_all(None)?;
    let mut cmd = std::process::Command::new(&out.dpusim);
    cmd.arg("--chip").arg(dpu_targets::default_chip_path()).arg("--board").arg(dpu_targets::default_board_path()).arg("--elf").arg(&out.firmware);
    let from_flash = from_flash
        && match dpu_imgtool::devkey::DeviceKey::generate().and_then(|dk| flash::config_of(scenario, &dk)) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("xtask: the flash configuration cannot hold this scenario yet ({e}): loading the ELF with the scenario instead");
                false
            }
        };
    if from_flash {
        // A fresh card for every run (the simulator writes back to it).
        let card = build::root().join("target/flash/run.bin");
        let args = flash::FlashArgs {
            out: card.clone(),
            scenario: scenario.to_string(),
            key: None,
            version: env!("CARGO_PKG_VERSION").parse()?,
            security_counter: 0,
            slot_b: None,
            slot_b_version: env!("CARGO_PKG_VERSION").parse()?,
            slot_b_security_counter: 0,
            pending_b: false,
            otp_counter: 0,
        };
        flash::flash(&out, &args)?;
        cmd.arg("--flash").arg(&card);
    }
    if let Some(p) = &sc {
        cmd.arg("--scenario").arg(p);
    }
    match (time, &sc) {
        (Some(t), _) => {
            cmd.arg("--max-time").arg(t);
        }
        // Booted from flash, the firmware is up ~153 ms after reset (the
        // bootloader verifies the image first).
        (None, None) => {
            cmd.arg("--max-time").arg(if from_flash { "160ms" } else { "5ms" });
        }
        (None, Some(_)) => {}
    }
    cmd.args(extra);
    eprintln!("xtask: running {}", build::show(&cmd));
    let status = cmd.status().map_err(|e| format!("cannot start dpusim: {e}"))?;
    match status.code() {
        Some(c) => {
            if c != 0 {
                eprintln!("xtask: dpusim exited with status {c}");
            }
            Ok(u8::try_from(c).unwrap_or(1))
        }
        None => Err(format!("dpusim was killed ({status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn bench_help_lists_every_benchmark() {
        let mut cmd = Cli::command();
        let help = cmd.find_subcommand_mut("bench").unwrap().render_long_help().to_string();
        for (name, what) in bench::BENCHES {
            assert!(help.contains(name) && help.contains(what), "{name} missing from:\n{help}");
        }
    }

    #[test]
    fn an_unknown_benchmark_is_refused_with_the_list() {
        let e = Cli::try_parse_from(["xtask", "bench", "nosuch"]).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("nosuch") && ["sim", "qemu", "nvme-ram", "adapter"].iter().all(|n| e.contains(n)), "{e}");
        assert!(Cli::try_parse_from(["xtask", "bench", "nvme-ram"]).is_ok());
    }
}
