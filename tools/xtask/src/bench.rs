//! `cargo xtask bench [NAME]`: benchmarks measure; they never fail a build
//! on a number. Results go to `bench/results/NAME.json` and the tables in
//! `BENCHMARKS.md` (between `<!-- bench:NAME -->` markers) are regenerated.

use crate::build::{self, root};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const BENCHES: &[&str] = &["sim"];

pub fn run(name: Option<&str>) -> Result<(), String> {
    let names: Vec<&str> = match name {
        None => BENCHES.to_vec(),
        Some(n) if BENCHES.contains(&n) => vec![n],
        Some(n) => return Err(format!("unknown benchmark `{n}`; available: {}", BENCHES.join(", "))),
    };
    let built = build::build_all(None)?;
    for n in names {
        let (json, table) = match n {
            "sim" => sim(&built)?,
            _ => unreachable!(),
        };
        let dir = root().join("bench/results");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{n}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap() + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{table}");
        update_benchmarks_md(n, &table)?;
        eprintln!("xtask: wrote {} and BENCHMARKS.md", path.display());
    }
    Ok(())
}

/// Runs dpusim quietly and returns its stats JSON.
fn dpusim_stats(dpusim: &Path, elf: &Path, extra: &[&str]) -> Result<Value, String> {
    let stats = root().join("target/bench-stats.json");
    let out = Command::new(dpusim)
        .arg("--elf")
        .arg(elf)
        .arg("-q")
        .arg("--stats-json")
        .arg(&stats)
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run dpusim: {e}"))?;
    if !out.status.success() {
        return Err(format!("dpusim on {} failed:\n{}", elf.display(), String::from_utf8_lossy(&out.stderr)));
    }
    let text = std::fs::read_to_string(&stats).map_err(|e| format!("{}: {e}", stats.display()))?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Simulator speed: compute-bound kernel on 1, 4 and 80 busy harts, and
/// 10 simulated ms of the idle firmware.
fn sim(built: &build::Built) -> Result<(Value, String), String> {
    let mut rows = Vec::new();
    let mut table = String::from(
        "| workload | busy harts | instructions | simulated | host time | MIPS (cycle model on) |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (busy, reps) in [(1, 3), (4, 3), (80, 1)] {
        let elf = built.test_images.join(format!("bench_compute_{busy}.elf"));
        let mut host = Vec::new();
        let mut last = Value::Null;
        for _ in 0..reps {
            last = dpusim_stats(&built.dpusim, &elf, &[])?;
            host.push(last["host_seconds"].as_f64().unwrap_or(0.0));
        }
        let instr = last["instret_total"].as_u64().unwrap_or(0);
        let secs = median(host);
        let mips = instr as f64 / secs / 1e6;
        let sim_ms = last["sim_time_ns"].as_u64().unwrap_or(0) as f64 / 1e6;
        table.push_str(&format!(
            "| compute kernel | {busy} | {instr} | {sim_ms:.2} ms | {secs:.2} s | {mips:.0} |\n"
        ));
        rows.push(json!({"workload": "compute", "busy_harts": busy, "instructions": instr,
            "sim_ms": sim_ms, "host_seconds": secs, "mips": mips, "runs": reps}));
    }
    let idle = dpusim_stats(&built.dpusim, &built.firmware, &["--max-time", "10ms"])?;
    let idle_secs = idle["host_seconds"].as_f64().unwrap_or(0.0);
    let idle_instr = idle["instret_total"].as_u64().unwrap_or(0);
    table.push_str(&format!(
        "| idle firmware (heartbeat only), 10 ms | 0 | {idle_instr} | 10.00 ms | {idle_secs:.3} s | - |\n"
    ));
    rows.push(json!({"workload": "idle-10ms", "instructions": idle_instr, "host_seconds": idle_secs}));
    let r4 = rows[1]["host_seconds"].as_f64().unwrap_or(0.0);
    let r80 = rows[2]["host_seconds"].as_f64().unwrap_or(0.0);
    table.push_str(&format!(
        "\nSame per-hart work: 80 busy harts take {:.1}x the host time of 4 busy harts (idle harts cost nothing).\n",
        if r4 > 0.0 { r80 / r4 } else { 0.0 }
    ));
    Ok((json!({"benchmark": "sim", "host": host_info(), "results": rows}), table))
}

fn host_info() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    json!({"cpu": cpu, "threads_used": 1})
}

/// Replaces the block between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`.
fn update_benchmarks_md(name: &str, table: &str) -> Result<(), String> {
    let path = root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (open, close) = (format!("<!-- bench:{name} -->"), format!("<!-- /bench:{name} -->"));
    let block = format!("{open}\n{}\n{close}", table.trim_end());
    let new = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a], block, &text[b + close.len()..]),
        _ => format!("{}\n## {name}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}
