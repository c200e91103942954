//! `cargo xtask`: the project's build, run, test and benchmark driver.
//!
//! * `cargo xtask build` - firmware (riscv64imac, release) and simulator;
//!   the image lands in `target/firmware/dpu-fw.elf`.
//! * `cargo xtask run`   - build, then boot the image in `dpusim`.
//! * `cargo xtask test`  - every host test, then every firmware test under
//!   the simulator (see `systest.rs`).
//! * `cargo xtask bench` - benchmarks; results in `bench/results/`, tables
//!   in `BENCHMARKS.md`.
//! * `cargo xtask fuzz [TARGET] [--time 60s] [--engine libfuzzer|builtin]`
//!   - run the fuzz targets of `tools/fuzz` (see `fuzz.rs`).
//! * `cargo xtask interop linux-target --guest-only` - boot the Linux
//!   NVMe/TCP target guest in QEMU and run its self-test (see `interop.rs`).

mod bench;
mod build;
mod fuzz;
mod interop;
mod plot;
mod systest;
mod toolchain;

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
    /// targets/scenarios/adapter-verify.toml).
    Run {
        /// Scenario: a name in targets/scenarios/, a file, or `none` (boot
        /// only, for `--time`).
        #[arg(long, default_value = "adapter-verify")]
        scenario: String,
        /// Simulated time limit.
        #[arg(long)]
        time: Option<String>,
        /// Extra arguments passed to dpusim (after `--`).
        #[arg(last = true)]
        dpusim_args: Vec<String>,
    },
    /// Run every test: host unit tests, then firmware tests under the simulator.
    Test {
        /// Only run system tests whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Skip the host `cargo test` step.
        #[arg(long)]
        no_host: bool,
    },
    /// Run benchmarks (all, or one by name: sim).
    Bench {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Build { chip } => build::build_all(chip.as_deref()).map(|_| ()),
        Cmd::Run { scenario, time, dpusim_args } => run(&scenario, time.as_deref(), &dpusim_args),
        Cmd::Test { only, no_host } => systest::test_all(only.as_deref(), no_host),
        Cmd::Bench { name } => bench::run(name.as_deref()),
        Cmd::Fuzz { target, time, engine } => fuzz::fuzz(target.as_deref(), &time, &engine),
        Cmd::Interop { peer: InteropPeer::LinuxTarget { guest_only: true } } => interop::guest_self_test(),
        Cmd::Interop { peer: InteropPeer::LinuxTarget { guest_only: false } } => build::build_all(None)
            .and_then(|built| interop::adapter_against_linux(&built.dpusim, &built.firmware))
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

fn run(scenario: &str, time: Option<&str>, extra: &[String]) -> Result<(), String> {
    let sc = match scenario {
        "none" => None,
        s if std::path::Path::new(s).is_file() => Some(PathBuf::from(s)),
        s => {
            let p = build::root().join("targets/scenarios").join(format!("{s}.toml"));
            if !p.is_file() {
                return Err(format!("no scenario `{s}` (looked for {}); use a file path or `none`", p.display()));
            }
            Some(p)
        }
    };
    let out = build::build_all(None)?;
    let mut cmd = std::process::Command::new(&out.dpusim);
    cmd.arg("--chip").arg(dpu_targets::default_chip_path()).arg("--board").arg(dpu_targets::default_board_path()).arg("--elf").arg(&out.firmware);
    if let Some(p) = &sc {
        cmd.arg("--scenario").arg(p);
    }
    match (time, &sc) {
        (Some(t), _) => {
            cmd.arg("--max-time").arg(t);
        }
        (None, None) => {
            cmd.arg("--max-time").arg("5ms");
        }
        (None, Some(_)) => {}
    }
    cmd.args(extra);
    eprintln!("xtask: running {}", build::show(&cmd));
    let status = cmd.status().map_err(|e| format!("cannot start dpusim: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("dpusim exited with {status}"))
    }
}
