//! `dpu-fuzz`: the stable fuzzing engine's command line (`cargo xtask
//! fuzz --engine builtin` and the smoke run of `cargo xtask test` call it).
//!
//! * `dpu-fuzz list`: the targets.
//! * `dpu-fuzz run [TARGET...] [--time 60s] [--iterations N] [--seed N]`:
//!   replay each target's corpus and crash regressions, then fuzz it.
//! * `dpu-fuzz smoke`: every target, a fixed seed and a small budget
//!   (at most 2 s per target, about 10-30 s in all): what CI runs.
//! * `dpu-fuzz replay TARGET FILE...`: run inputs once (reproduce a crash).
//! * `dpu-fuzz seed`: regenerate the generated seed corpus files.
//!
//! A failing input is saved to `target/fuzz/artifacts/<target>/`; once
//! the bug is fixed, copy it to `tools/fuzz/crashes/<target>/`.

use clap::{Parser, Subcommand};
use dpu_fuzz::engine::{self, Budget, Failure};
use dpu_fuzz::{Target, TARGETS};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Fuzz the parsers of hostile input with the stable (builtin) engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the targets.
    List,
    /// Replay the corpus and crash regressions, then fuzz for a budget.
    Run {
        /// Targets (default: all).
        targets: Vec<String>,
        /// Time per target (e.g. 60s, 5m).
        #[arg(long, default_value = "60s")]
        time: String,
        /// Most mutants per target.
        #[arg(long, default_value_t = u64::MAX)]
        iterations: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// An input running longer than this is a hang.
        #[arg(long, default_value = "10s")]
        timeout: String,
    },
    /// Every target with a fixed seed and a small budget (at most 2 s each).
    Smoke,
    /// Run the given input files through a target once.
    Replay { target: String, files: Vec<PathBuf> },
    /// Regenerate the generated seeds in tools/fuzz/corpus/.
    Seed,
}

fn main() -> ExitCode {
    match run(Cli::parse().cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpu-fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pick(names: &[String]) -> Result<Vec<&'static Target>, String> {
    if names.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    names
        .iter()
        .map(|n| dpu_fuzz::target(n).ok_or_else(|| format!("no target `{n}`; `dpu-fuzz list` shows them")))
        .collect()
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::List => {
            for t in TARGETS {
                println!("{:<14} {}", t.name, t.about);
            }
            Ok(())
        }
        Cmd::Run { targets, time, iterations, seed, timeout } => {
            let budget = Budget { time: engine::parse_duration(&time)?, iterations, seed, timeout: engine::parse_duration(&timeout)? };
            fuzz_all(&pick(&targets)?, &budget)
        }
        Cmd::Smoke => {
            // `cargo xtask test` runs this on a 2-core CI machine: at most
            // 2 s per target (under 30 s for all), usually less; the
            // iteration cap keeps a fast machine's run the same inputs.
            let budget = Budget { time: Duration::from_secs(2), iterations: 20_000, seed: 1, timeout: Duration::from_secs(20) };
            fuzz_all(&pick(&[])?, &budget)
        }
        Cmd::Replay { target, files } => {
            let t = pick(&[target])?[0];
            let mut inputs = Vec::new();
            for f in &files {
                inputs.push((f.display().to_string(), std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?));
            }
            let r = engine::replay(t, &inputs, Duration::from_secs(10)).map_err(|f| failure(t, &f))?;
            println!("{}: {} input(s) ok (slowest {:.1} ms)", t.name, r.replayed, r.slowest.as_secs_f64() * 1e3);
            Ok(())
        }
        Cmd::Seed => {
            let n = dpu_fuzz::seeds::write_all(&dpu_fuzz::fuzz_dir().join("corpus")).map_err(|e| format!("writing the corpus: {e}"))?;
            println!("wrote {n} seed files under {}", dpu_fuzz::fuzz_dir().join("corpus").display());
            Ok(())
        }
    }
}

fn fuzz_all(targets: &[&'static Target], budget: &Budget) -> Result<(), String> {
    let t0 = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    let mut first_error = None;
    for &t in targets {
        let inputs = engine::inputs_of(t);
        match engine::fuzz(t, &inputs, budget) {
            Ok(r) => {
                passed += 1;
                println!(
                    "fuzz {:<14} ok: {} seeds/regressions, {} mutants in {:.1} s ({:.0}/s, slowest input {:.1} ms)",
                    t.name,
                    r.replayed,
                    r.execs,
                    r.elapsed.as_secs_f64(),
                    r.execs as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    r.slowest.as_secs_f64() * 1e3
                );
            }
            Err(f) => {
                failed += 1;
                let msg = failure(t, &f);
                println!("fuzz {:<14} FAILED: {msg}", t.name);
                first_error.get_or_insert(msg);
                if matches!(f.kind, engine::FailureKind::Hang(_)) {
                    // The hung worker cannot be stopped: report and leave.
                    println!("{passed} passed, {failed} failed");
                    return Err(first_error.unwrap());
                }
            }
        }
    }
    println!("fuzzed {} target(s) in {:.0} s", targets.len(), t0.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Saves the failing input and says how to reproduce it.
fn failure(t: &Target, f: &Failure) -> String {
    let dir = dpu_fuzz::fuzz_dir().join("../../target/fuzz/artifacts").join(t.name);
    let kind = if matches!(f.kind, engine::FailureKind::Hang(_)) { "hang" } else { "crash" };
    let path = dir.join(format!("{kind}-{:016x}", engine::fnv(&f.input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &f.input));
    let path = path.canonicalize().unwrap_or(path);
    match saved {
        Ok(()) => format!(
            "{f}\n  input saved to {}\n  reproduce: cargo run -p dpu-fuzz -- replay {} {}\n  once fixed, keep it as a regression: cp {} tools/fuzz/crashes/{}/",
            path.display(),
            t.name,
            path.display(),
            path.display(),
            t.name
        ),
        Err(e) => format!("{f}\n  (could not save the input to {}: {e})", path.display()),
    }
}
