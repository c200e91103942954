//! `cargo xtask fuzz [TARGET] [--time 60s] [--engine libfuzzer|builtin]`:
//! runs the fuzz targets of `tools/fuzz` for a bounded time each.
//!
//! * `libfuzzer` (default): coverage-guided libFuzzer through cargo-fuzz,
//!   which needs a nightly toolchain; both are installed on first use
//!   (`rustup toolchain install nightly`, `cargo install cargo-fuzz`). Each
//!   target starts from its checked-in corpus and crash regressions; what
//!   it learns goes to `target/fuzz/corpus/<target>/`, crashes to
//!   `target/fuzz/artifacts/<target>/`.
//! * `builtin`: the stable mutation engine (`dpu-fuzz run`), nothing to
//!   install. `cargo xtask test` runs its smoke run (`dpu-fuzz smoke`).

use crate::build::{cargo, root, show};
use std::process::Command;

/// The targets (`dpu-fuzz list` prints the same list).
fn targets() -> Result<Vec<String>, String> {
    let out = cargo()
        .args(["run", "--quiet", "-p", "dpu-fuzz", "--", "list"])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("`cargo run -p dpu-fuzz -- list` failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next().map(String::from)).collect())
}

pub fn fuzz(target: Option<&str>, time: &str, engine: &str) -> Result<(), String> {
    let secs = parse_secs(time)?;
    match engine {
        "builtin" => {
            let mut c = cargo();
            c.args(["run", "-p", "dpu-fuzz", "--", "run", "--time", &format!("{secs}s")]);
            c.args(target);
            eprintln!("xtask: {}", show(&c));
            let st = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
            if st.success() {
                Ok(())
            } else {
                Err("fuzzing found a failure (see above)".into())
            }
        }
        "libfuzzer" => libfuzzer(target, secs),
        e => Err(format!("unknown engine `{e}` (libfuzzer or builtin)")),
    }
}

/// The smoke run of `cargo xtask test`: every target, stable engine,
/// fixed seed, at most 2 s per target.
pub fn smoke() -> Result<(), String> {
    let mut c = cargo();
    c.args(["run", "-p", "dpu-fuzz", "--", "smoke"]);
    eprintln!("xtask: {}", show(&c));
    let st = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err("the fuzz smoke run found a failure (see above)".into())
    }
}

fn parse_secs(time: &str) -> Result<u64, String> {
    let t = time.trim();
    let (num, mul) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600)
    } else {
        (t, 1)
    };
    let v: u64 = num.parse().map_err(|_| format!("`{time}` is not a time (e.g. 60s, 10m)"))?;
    Ok((v * mul).max(1))
}

fn ok(c: &mut Command) -> bool {
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs (if needed) nightly and cargo-fuzz, or says what to do.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let hint = "or run the stable engine instead: cargo xtask fuzz --engine builtin";
    if !ok(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        eprintln!("xtask: installing a nightly toolchain for libFuzzer (rustup toolchain install nightly --profile minimal)");
        let st = Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]).status();
        if !st.is_ok_and(|s| s.success()) {
            return Err(format!("cannot install a nightly toolchain (cargo-fuzz needs one); run `rustup toolchain install nightly` by hand, {hint}"));
        }
    }
    if !ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"]).current_dir(root())) {
        eprintln!("xtask: installing cargo-fuzz from crates.io (cargo install cargo-fuzz --locked; a few minutes)");
        let st = Command::new("cargo").args(["+nightly", "install", "cargo-fuzz", "--locked"]).current_dir(root()).status();
        if !st.is_ok_and(|s| s.success()) {
            return Err(format!("cannot install cargo-fuzz; run `cargo install cargo-fuzz` by hand, {hint}"));
        }
    }
    Ok(())
}

fn libfuzzer(target: Option<&str>, secs: u64) -> Result<(), String> {
    let names = match target {
        Some(t) => vec![t.to_string()],
        None => targets()?,
    };
    ensure_cargo_fuzz()?;
    let r = root();
    let fuzz_dir = r.join("tools/fuzz/libfuzzer");
    let build_dir = r.join("target/fuzz/build");
    let mut failed = Vec::new();
    for t in &names {
        let work = r.join("target/fuzz/corpus").join(t);
        let artifacts = r.join("target/fuzz/artifacts").join(t);
        for d in [&work, &artifacts] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let mut c = Command::new("cargo");
        c.current_dir(&r);
        // -a: debug assertions and overflow checks; -s none: the targets
        // are safe Rust, so AddressSanitizer would only slow them down.
        c.args(["+nightly", "fuzz", "run", "-a", "-s", "none", "--fuzz-dir"]).arg(&fuzz_dir).arg("--target-dir").arg(&build_dir).arg(t);
        c.arg(&work).arg(r.join("tools/fuzz/corpus").join(t));
        let crashes = r.join("tools/fuzz/crashes").join(t);
        if crashes.is_dir() {
            c.arg(&crashes);
        }
        c.arg("--");
        c.arg(format!("-max_total_time={secs}"));
        c.arg("-timeout=10");
        c.arg("-rss_limit_mb=4096");
        c.arg("-max_len=65536");
        c.arg(format!("-artifact_prefix={}/", artifacts.display()));
        eprintln!("xtask: {}", show(&c));
        let st = c.status().map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        if !st.success() {
            eprintln!(
                "xtask: fuzz target {t} failed; the input is in {} (reproduce: cargo run -p dpu-fuzz -- replay {t} FILE; once fixed, copy it to tools/fuzz/crashes/{t}/)",
                artifacts.display()
            );
            failed.push(t.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_secs;

    #[test]
    fn times() {
        assert_eq!(parse_secs("60s"), Ok(60));
        assert_eq!(parse_secs("5m"), Ok(300));
        assert_eq!(parse_secs("90"), Ok(90));
        assert!(parse_secs("later").is_err());
    }
}
