//! `cargo xtask bench [NAME]`: benchmarks measure; they never fail a build
//! on a number. Results go to `bench/results/NAME.json` and the tables in
//! `BENCHMARKS.md` (between `<!-- bench:NAME -->` markers) are regenerated.

use crate::build::{self, root};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Every benchmark: name and what it measures (shown by `--help`).
pub const BENCHES: &[(&str, &str)] = &[
    ("sim", "simulator speed: compute-bound kernel on 1, 4 and 80 harts, and the idle firmware"),
    ("qemu", "simulator speed against QEMU TCG on the same bare-metal ELF"),
    ("nvme-ram", "NVMe emulation over RAM: 4 KiB random reads on the PF, IOPS and cycles per I/O"),
    ("adapter", "storage adapter: 4 KiB random reads/writes over NVMe/TCP to a target model, 4-64 cores"),
    ("target", "NVMe/TCP target: 4 KiB random reads/writes from initiator models over both ports, 4-64 connections"),
    ("services", "inline data services: 4 KiB random reads/writes, plain vs AES-XTS vs AES-XTS + EC 4+2 vs EC 8+2"),
];

/// The `cargo xtask bench NAME` argument: one of [`BENCHES`], each listed
/// with its description in `--help`; anything else is refused with the list.
pub fn names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(BENCHES.iter().map(|&(n, help)| clap::builder::PossibleValue::new(n).help(help)))
}

pub fn run(name: Option<&str>) -> Result<(), String> {
    let known: Vec<&str> = BENCHES.iter().map(|b| b.0).collect();
    let names: Vec<&str> = match name {
        None => known,
        Some(n) if known.contains(&n) => vec![n],
        Some(n) => return Err(format!("unknown benchmark `{n}`; available: {}", known.join(", "))),
    };
    let built = build::build_all(None)?;
    for n in names {
        let (json, table) = match n {
            "sim" => sim(&built)?,
            "nvme-ram" => nvme_ram(&built)?,
            "adapter" => adapter(&built)?,
            "target" => target(&built)?,
            "services" => services(&built)?,
            "qemu" => qemu(&built)?,
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
        "| workload | busy harts | instructions | simulated | host time | MIPS (cycle model on) | MIPS, interpreter only (`--no-jit`) |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (busy, reps) in [(1, 3), (4, 3), (80, 1)] {
        let elf = built.test_images.join(format!("bench_compute_{busy}.elf"));
        let mut host = Vec::new();
        let mut interp = Vec::new();
        let mut last = Value::Null;
        for _ in 0..reps {
            last = dpusim_stats(&built.dpusim, &elf, &[])?;
            host.push(last["host_seconds"].as_f64().unwrap_or(0.0));
            let i = dpusim_stats(&built.dpusim, &elf, &["--no-jit"])?;
            interp.push(i["host_seconds"].as_f64().unwrap_or(0.0));
        }
        let instr = last["instret_total"].as_u64().unwrap_or(0);
        let secs = median(host);
        let interp_secs = median(interp);
        let mips = instr as f64 / secs / 1e6;
        let interp_mips = instr as f64 / interp_secs / 1e6;
        let sim_ms = last["sim_time_ns"].as_u64().unwrap_or(0) as f64 / 1e6;
        table.push_str(&format!(
            "| compute kernel | {busy} | {instr} | {sim_ms:.2} ms | {secs:.2} s | {mips:.0} | {interp_mips:.0} |\n"
        ));
        rows.push(json!({"workload": "compute", "busy_harts": busy, "instructions": instr,
            "sim_ms": sim_ms, "host_seconds": secs, "mips": mips, "interpreter_mips": interp_mips,
            "jit": last["jit"].clone(), "runs": reps}));
    }
    let idle = dpusim_stats(&built.dpusim, &built.firmware, &["--max-time", "10ms"])?;
    let idle_secs = idle["host_seconds"].as_f64().unwrap_or(0.0);
    let idle_instr = idle["instret_total"].as_u64().unwrap_or(0);
    table.push_str(&format!(
        "| idle firmware (heartbeat only), 10 ms | 0 | {idle_instr} | 10.00 ms | {idle_secs:.3} s | - | - |\n"
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

/// Runs a scenario and returns (report JSON, stats JSON).
fn scenario(built: &build::Built, name: &str, toml: &str) -> Result<(Value, Value), String> {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sc = dir.join(format!("{name}.toml"));
    let stats = dir.join(format!("{name}.stats.json"));
    std::fs::write(&sc, toml).map_err(|e| e.to_string())?;
    let out = Command::new(&built.dpusim)
        .arg("--elf")
        .arg(&built.firmware)
        .arg("--scenario")
        .arg(&sc)
        .arg("--json")
        .arg("-q")
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .map_err(|e| format!("cannot run dpusim: {e}"))?;
    if !out.status.success() {
        return Err(format!("scenario {name} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{name}: bad report JSON: {e}"))?;
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&stats).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok((report, st))
}

/// The latency CDF points (latency, fraction) of a report's `total`.
fn lat_cdf(total: &Value) -> Vec<(f64, f64)> {
    total["lat_cdf"].as_array().map(|a| a.iter().filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?))).collect()).unwrap_or_default()
}

/// What a closed-loop run measured (report `total`, stats `st`): the
/// table cells from IOPS to sim MIPS, the JSON fields of the same, and
/// how many data-plane harts were active.
fn measured(t: &Value, st: &Value) -> (String, serde_json::Map<String, Value>, u64) {
    let ios = t["ios"].as_u64().unwrap_or(0).max(1);
    let (cyc, ins, active) = per_io(st, ios);
    let f = |k: &str| t[k].as_f64().unwrap_or(0.0);
    let sim_ms = st["sim_time_ns"].as_f64().unwrap_or(0.0) / 1e6;
    let host_per_ms = st["host_seconds"].as_f64().unwrap_or(0.0) / sim_ms.max(1e-9);
    let cells = format!(
        "{:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {cyc:.0} | {ins:.0} | {:.0} | {host_per_ms:.2}",
        f("iops"),
        f("mb_per_s"),
        f("lat_avg_us"),
        f("lat_p50_us"),
        f("lat_p99_us"),
        f("lat_p999_us"),
        st["mips"].as_f64().unwrap_or(0.0)
    );
    let json = json!({"iops": f("iops"), "mb_per_s": f("mb_per_s"),
        "lat_avg_us": f("lat_avg_us"), "lat_p50_us": f("lat_p50_us"), "lat_p99_us": f("lat_p99_us"), "lat_p999_us": f("lat_p999_us"),
        "ios": ios, "cycles_per_io": cyc, "instructions_per_io": ins, "data_harts_active": active,
        "host_seconds_per_sim_ms": host_per_ms});
    (cells, json.as_object().cloned().unwrap_or_default(), active)
}

/// `fields` with `extra`'s fields first (a result row).
fn row(extra: Value, fields: &serde_json::Map<String, Value>) -> Value {
    let mut m = extra.as_object().cloned().unwrap_or_default();
    m.extend(fields.clone());
    Value::Object(m)
}

/// Data-plane cycles per I/O by stage as a table, from `stage_profile`.
fn stage_table(title: &str, stages: &[(&'static str, u64)], ios: u64) -> String {
    let total: u64 = stages.iter().map(|s| s.1).sum::<u64>().max(1);
    let mut t = format!("\n{title}:\n\n| stage | cycles / I/O | share |\n|---|---:|---:|\n");
    for (stage, cycles) in stages {
        t.push_str(&format!("| {stage} | {:.0} | {:.1}% |\n", *cycles as f64 / ios.max(1) as f64, 100.0 * *cycles as f64 / total as f64));
    }
    t.push_str(&format!("| **total** | {:.0} | 100% |\n", total as f64 / ios.max(1) as f64));
    t
}

/// Data-plane cycles and instructions per I/O inside the measurement
/// window of stats `st`, and how many data-plane harts were active.
fn per_io(st: &Value, ios: u64) -> (f64, f64, u64) {
    let w = &st["window"];
    let cyc = w["data_busy_cycles"].as_u64().unwrap_or(0) as f64 / ios as f64;
    let ins = w["data_instructions"].as_u64().unwrap_or(0) as f64 / ios as f64;
    (cyc, ins, w["data_harts_active"].as_u64().unwrap_or(0))
}

/// NVMe emulation over the RAM block device: 4 KiB random reads on the PF
/// with one I/O queue per data-plane core used.
fn nvme_ram(built: &build::Built) -> Result<(Value, String), String> {
    let mut rows = Vec::new();
    let mut cdfs: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut table = String::from(
        "| data-plane cores | iodepth | IOPS | MB/s | lat avg (us) | p50 | p99 | p99.9 | cycles / I/O | instructions / I/O | sim MIPS | host s / sim ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (cores, qd) in [(1, 1), (1, 128), (4, 128), (16, 128), (64, 1), (64, 128)] {
        let runtime = if qd == 1 { "300us" } else { "500us" };
        let toml = format!(
            "[scenario]\nname = \"nvme-ram-{cores}c-qd{qd}\"\n[host]\nio_queues = {cores}\nio_queue_depth = 256\n\
             [[storage]]\nfunctions = [0]\nbackend = \"ram\"\nsize = \"64MiB\"\n\
             [[jobs]]\nname = \"randread\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = {qd}\nruntime = \"{runtime}\"\n"
        );
        let (rep, st) = scenario(built, &format!("nvme-ram-{cores}c-qd{qd}"), &toml)?;
        let t = &rep["total"];
        if (cores, qd) == (1, 1) || (cores, qd) == (16, 128) || (cores, qd) == (64, 128) {
            let pts = lat_cdf(t);
            cdfs.push((format!("{cores} cores, iodepth {qd}"), pts));
        }
        let (cells, fields, active) = measured(t, &st);
        table.push_str(&format!("| {cores} ({active} active) | {qd} | {cells} |\n"));
        rows.push(row(json!({"cores": cores, "iodepth": qd}), &fields));
    }
    table.push_str(
        "\nCycles and instructions per I/O are data-plane core totals inside the job window (polling included), \
         divided by completed I/Os. Host CPU cost is modeled as 300 ns per submission and per completion.\n",
    );
    // Where the cycles go: profile the 16-core depth-128 run.
    let stages = stage_profile(built, "nvme-ram-16c-qd128")?;
    let ios = rows.iter().find(|r| r["cores"] == 16 && r["iodepth"] == 128).and_then(|r| r["ios"].as_u64()).unwrap_or(1).max(1);
    table.push_str(&stage_table("Data-plane cycles per I/O by stage (16 cores, depth 128, profiled)", &stages, ios));
    let stage_json: Vec<Value> = stages.iter().map(|(n, c)| json!({"stage": n, "cycles": c, "cycles_per_io": *c as f64 / ios as f64})).collect();
    let deep: Vec<Value> = rows.iter().filter(|r| r["iodepth"] == 128).cloned().collect();
    crate::plot::iops_vs_cores(&root().join("bench/results/nvme-ram-iops.svg"), &deep, "NVMe emulation over RAM: 4 KiB randread, iodepth 128", None)?;
    crate::plot::latency_cdf(&root().join("bench/results/nvme-ram-latency-cdf.svg"), &cdfs)?;
    table.push_str("\n![IOPS vs data-plane cores](bench/results/nvme-ram-iops.svg)\n![Latency CDF](bench/results/nvme-ram-latency-cdf.svg)\n");
    Ok((json!({"benchmark": "nvme-ram", "results": rows, "stages_16c_qd128": stage_json}), table))
}

/// Wire bytes per 4 KiB I/O on the port that carries its data, and the
/// resulting IOPS limit of the card's two 100GbE ports at `mtu`.
///
/// Counted: the data-carrying PDU of the I/O (reads: C2HData, 24-byte
/// header + 4,096 bytes, NVMe/TCP 1.0 §3.6.2.8; writes: the command capsule
/// with its in-capsule data, 72 + 4,096 bytes, §3.6.2.5), cut into TCP
/// segments of MSS = MTU - 52 (IPv4 20, TCP 20, timestamps option 12), and
/// per frame Ethernet's 14-byte header, 4-byte FCS, 8-byte preamble and
/// SFD and 12-byte inter-frame gap (IEEE 802.3 §4.4.2). Not counted: the
/// small PDUs of the other direction and ACKs (they ride the other
/// direction of the full-duplex link), nor the response capsule a target
/// may skip (C2HData SUCCESS flag, §3.6.2.8).
fn link_limit_iops(rw: &str, mtu: u32) -> f64 {
    const LINE_BYTES_PER_SEC: f64 = 100e9 / 8.0;
    const PORTS: f64 = 2.0;
    let pdu: u32 = if rw == "randread" { 24 + 4096 } else { 72 + 4096 };
    let mss = mtu - 52;
    let frames = pdu.div_ceil(mss);
    let wire = pdu + frames * (52 + 14 + 4 + 8 + 12);
    PORTS * LINE_BYTES_PER_SEC / f64::from(wire)
}

/// One `adapter` run: 4 KiB `rw` on the PF with one host I/O queue per
/// data-plane core used (`cores`), `depth` commands outstanding in all,
/// MTU `mtu`. With more than one command outstanding the PF has two
/// remote namespaces, one on a target model behind each port (10 us
/// media time), and a job of `depth / 2` on each, so both 100GbE ports
/// carry I/O; at depth 1 one job on the namespace behind port 0.
fn adapter_toml(name: &str, rw: &str, cores: u32, depth: u32, mtu: u32) -> String {
    let per_core = depth.div_ceil(cores);
    // Closed loop: measure after connections are up and the queues have
    // turned over (a core completes ~40 K I/Os per second, so 16
    // commands per core turn over in ~0.4 ms).
    let (ramp, runtime) = match per_core {
        1 => ("500us", "1ms"),
        2..=4 => ("1ms", "2ms"),
        _ => ("2ms", "2ms"),
    };
    let ports = if depth > 1 { 2 } else { 1 };
    let mut t = format!(
        "[scenario]\nname = \"{name}\"\n[host]\nio_queues = {cores}\nio_queue_depth = 256\nio_timeout_ms = 5000\n\
         [network]\nports = [\"10.0.0.1/24\", \"10.0.1.1/24\"]\nmtu = {mtu}\n"
    );
    for p in 0..ports {
        t.push_str(&format!(
            "[[targets]]\nname = \"t{p}\"\nip = \"10.0.{p}.10\"\nnqn = \"nqn.2026-11.io.dpusim:bench{p}\"\nnamespaces = [{{ size = \"1GiB\" }}]\nlatency = \"10us\"\n\
             [[storage]]\nfunctions = [0]\nnsid = {}\nbackend = \"nvmf\"\ntarget = \"t{p}\"\n\
             [[jobs]]\nname = \"{rw}{p}\"\nfunctions = [0]\nnsid = {}\nrw = \"{rw}\"\nbs = \"4k\"\niodepth = {}\nruntime = \"{runtime}\"\nramp_time = \"{ramp}\"\n",
            p + 1,
            p + 1,
            depth / ports
        ));
    }
    t
}

/// The storage adapter: 4 KiB random reads and writes on the PF, whose
/// namespaces are remote namespaces on NVMe/TCP target models behind both
/// ports: queue depth 1 on one core (latency), then 4, 16 and 64 cores at
/// 4 and 16 commands per core (16 saturates a core), at MTU 1500 and 9000.
fn adapter(built: &build::Built) -> Result<(Value, String), String> {
    let mut rows = Vec::new();
    let mut cdfs: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut table = String::from(
        "| rw | MTU | data-plane cores | iodepth | IOPS | of 2x100GbE | MB/s | lat avg (us) | p50 | p99 | p99.9 | cycles / I/O | instructions / I/O | sim MIPS | host s / sim ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for rw in ["randread", "randwrite"] {
        for mtu in [1500, 9000] {
            let mut runs = vec![(1, 1)];
            for cores in [4, 16, 64] {
                if mtu == 1500 {
                    runs.push((cores, 4 * cores));
                }
                runs.push((cores, 16 * cores));
            }
            for (cores, depth) in runs {
                let name = format!("adapter-{rw}-mtu{mtu}-{cores}c-qd{depth}");
                let (rep, st) = scenario(built, &name, &adapter_toml(&name, rw, cores, depth, mtu))?;
                let t = &rep["total"];
                if rw == "randread" && mtu == 1500 && (depth == 1 || depth == 16 * cores) {
                    cdfs.push((format!("read, {cores} cores, iodepth {depth}"), lat_cdf(t)));
                }
                let (cells, mut fields, active) = measured(t, &st);
                let limit = link_limit_iops(rw, mtu);
                let iops = fields["iops"].as_f64().unwrap_or(0.0);
                let (iops_cell, rest) = cells.split_once(" | ").unwrap_or((cells.as_str(), ""));
                table.push_str(&format!(
                    "| {} | {mtu} | {cores} ({active} active) | {depth} | {iops_cell} | {:.1}% | {rest} |\n",
                    if rw == "randread" { "read" } else { "write" },
                    100.0 * iops / limit
                ));
                fields.insert("link_limit_iops".into(), json!(limit));
                rows.push(row(json!({"rw": rw, "mtu": mtu, "cores": cores, "iodepth": depth}), &fields));
            }
        }
    }
    table.push_str(&format!(
        "\nPath: host -> PF (NVMe emulation) -> NVMe/TCP initiator -> per-core TCP/IP (smoltcp) -> NIC ports 0 and 1 -> switch -> \
         target models (10 us media time), one behind each port (depth 1: port 0 only). Cycles and instructions per I/O are \
         data-plane core totals inside the job window (polling included), divided by completed I/Os. Each run first ramps up \
         (connection setup, queues filling: 0.5 / 1 / 2 ms at 1 / 4 / 16 commands per core), then measures 1 / 2 / 2 ms. \
         \"of 2x100GbE\": IOPS against the two ports' limit for 4 KiB I/O at that MTU (the data PDU with its TCP/IP/Ethernet \
         framing: {:.2} M reads and {:.2} M writes at MTU 1500, {:.2} M / {:.2} M at 9000). Targets (issue 15): at least 5.4 M \
         IOPS at MTU 1500 and 5.8 M at 9000 on 64 cores, at most 8,000 cycles per I/O, depth-1 read p50 at most 20 us.\n",
        link_limit_iops("randread", 1500) / 1e6,
        link_limit_iops("randwrite", 1500) / 1e6,
        link_limit_iops("randread", 9000) / 1e6,
        link_limit_iops("randwrite", 9000) / 1e6,
    ));
    for (rw, label) in [("randread", "reads"), ("randwrite", "writes")] {
        let name = format!("adapter-{rw}-mtu1500-16c-qd256");
        let stages = stage_profile(built, &name)?;
        let r = rows.iter().find(|r| r["rw"] == rw && r["mtu"] == 1500 && r["cores"] == 16 && r["iodepth"] == 256);
        let ios = r.and_then(|r| r["ios"].as_u64()).unwrap_or(1);
        let measured = r.and_then(|r| r["cycles_per_io"].as_f64()).unwrap_or(0.0);
        table.push_str(&stage_table(&format!("Data-plane cycles per I/O by stage, {label} (16 cores, depth 256, profiled)"), &stages, ios));
        table.push_str(&format!("\nMeasured in the same window without the profiler: {measured:.0} cycles per I/O.\n"));
    }
    let limit = link_limit_iops("randread", 1500);
    let reads: Vec<Value> = rows.iter().filter(|r| r["rw"] == "randread" && r["mtu"] == 1500 && r["iodepth"].as_u64() == r["cores"].as_u64().map(|c| 16 * c)).cloned().collect();
    crate::plot::iops_vs_cores(
        &root().join("bench/results/adapter-iops.svg"),
        &reads,
        "Storage adapter (PF -> NVMe/TCP -> targets on both ports): 4 KiB randread, 16 per core",
        Some((limit / 1e6, "2x100GbE limit, MTU 1500")),
    )?;
    crate::plot::latency_cdf(&root().join("bench/results/adapter-latency-cdf.svg"), &cdfs)?;
    table.push_str("\n![IOPS vs data-plane cores (reads)](bench/results/adapter-iops.svg)\n![Latency CDF](bench/results/adapter-latency-cdf.svg)\n");
    Ok((json!({"benchmark": "adapter", "results": rows}), table))
}

/// The scenario of one `target` benchmark run: a subsystem with a RAM
/// namespace on each port, an initiator model on each port's segment
/// with `conns / 2` I/O queue connections (at least one), every
/// connection `qd` commands deep.
fn target_toml(name: &str, rw: &str, conns: u32, qd: u32) -> String {
    let (ramp, runtime) = if qd == 1 { ("300us", "1ms") } else { ("1ms", "2ms") };
    let mut t = format!("[scenario]\nname = \"{name}\"\n[network]\nports = [\"10.0.0.1/24\", \"10.0.1.1/24\"]\n");
    let per = (conns / 2).max(1);
    let hosts = if conns == 1 { 1 } else { 2 };
    for p in 0..hosts {
        t.push_str(&format!(
            "[[subsystems]]\nnqn = \"nqn.2026-12.io.dpusim:bench{p}\"\nports = [{p}]\n[[subsystems.namespaces]]\nbackend = \"ram\"\nsize = \"64MiB\"\n\
             [[initiators]]\nname = \"h{p}\"\nip = \"10.0.{p}.50/24\"\nport = {p}\ntraddr = \"10.0.{p}.1\"\nsubnqn = \"nqn.2026-12.io.dpusim:bench{p}\"\n\
             io_queues = {per}\nqueue_depth = {}\n\
             [[jobs]]\nname = \"{rw}{p}\"\ninitiator = \"h{p}\"\nnsid = 1\nrw = \"{rw}\"\nbs = \"4k\"\niodepth = {}\nruntime = \"{runtime}\"\nramp_time = \"{ramp}\"\n",
            (qd + 1).max(2),
            per * qd
        ));
    }
    t
}

/// The NVMe/TCP target: 4 KiB random reads and writes from initiator
/// models (the simulator's remote hosts) on both ports to RAM namespaces
/// of the card; the connections spread over the data-plane cores by RSS.
fn target(built: &build::Built) -> Result<(Value, String), String> {
    let mut rows = Vec::new();
    let mut table = String::from(
        "| rw | connections | data-plane cores active | depth per connection | IOPS | MB/s | lat avg (us) | p50 | p99 | p99.9 | cycles / I/O | instructions / I/O | sim MIPS | host s / sim ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for rw in ["randread", "randwrite"] {
        for (conns, qd) in [(1, 1), (4, 32), (16, 32), (64, 32)] {
            let name = format!("target-{rw}-{conns}conn-qd{qd}");
            let (rep, st) = scenario(built, &name, &target_toml(&name, rw, conns, qd))?;
            let (cells, fields, active) = measured(&rep["total"], &st);
            table.push_str(&format!("| {} | {conns} | {active} | {qd} | {cells} |\n", if rw == "randread" { "read" } else { "write" }));
            rows.push(row(json!({"rw": rw, "connections": conns, "iodepth_per_connection": qd}), &fields));
        }
    }
    table.push_str(
        "\nPath: initiator model (the simulator's remote host, its own NVMe/TCP and TCP code) -> switch -> DPU port -> per-core \
         TCP/IP (smoltcp) -> NVMe/TCP target -> block layer -> RAM namespace in DPU DDR. Half the connections come from a host \
         on each port (one connection: port 0 only); RSS places each on a data-plane core. Cycles and instructions per I/O are \
         data-plane core totals inside the job window (polling included), divided by completed I/Os; the window opens after \
         a ramp (0.3 ms at depth 1, else 1 ms) once the initiators are connected and lasts 1 / 2 ms. Target (issue 14): \
         5.4 M IOPS on 64 cores, at most 5,000 cycles per I/O.\n",
    );
    for (rw, label) in [("randread", "reads"), ("randwrite", "writes")] {
        let name = format!("target-{rw}-16conn-qd32");
        let stages = stage_profile(built, &name)?;
        let ios = rows.iter().find(|r| r["rw"] == rw && r["connections"] == 16).and_then(|r| r["ios"].as_u64()).unwrap_or(1);
        table.push_str(&stage_table(&format!("Data-plane cycles per I/O by stage, {label} (16 connections, depth 32, profiled)"), &stages, ios));
    }
    Ok((json!({"benchmark": "target", "results": rows}), table))
}

/// A namespace stack of the services benchmark.
#[derive(Clone, Copy)]
struct Stack {
    /// Row label and scenario name part.
    label: &'static str,
    slug: &'static str,
    encrypted: bool,
    /// Erasure coding (k, m) over k + m targets; `None`: one remote namespace.
    ec: Option<(u32, u32)>,
}

/// The stacks compared by `cargo xtask bench services`, plain path first.
const STACKS: &[Stack] = &[
    Stack { label: "plain (remote namespace)", slug: "plain", encrypted: false, ec: None },
    Stack { label: "AES-XTS", slug: "xts", encrypted: true, ec: None },
    Stack { label: "AES-XTS + EC 4+2", slug: "xts-ec42", encrypted: true, ec: Some((4, 2)) },
    Stack { label: "EC 8+2", slug: "ec82", encrypted: false, ec: Some((8, 2)) },
];

/// Data-plane cores (one host I/O queue each) and total iodepth of every
/// services row: 4 cores at depth 32 (8 per core) already saturate the
/// plain path's cores (the adapter bench: depth 128 adds nothing), so
/// cycles per I/O are the cost at saturation, and a run takes seconds of
/// host time.
const SERVICES_CORES: u32 = 4;
const SERVICES_QD: u32 = 32;

/// The scenario of one services row: 4 KiB-block namespaces of 256 MiB on
/// target models with 10 us media time behind the card's two ports, the
/// PF's namespace 1 stacked as `st` says.
fn services_toml(name: &str, rw: &str, st: &Stack) -> String {
    let targets = st.ec.map_or(1, |(k, m)| k + m);
    let mut t = format!(
        "[scenario]\nname = \"{name}\"\n[host]\nio_queues = {SERVICES_CORES}\nio_queue_depth = 256\nio_timeout_ms = 5000\n\
         [network]\nports = [\"10.0.0.1/24\", \"10.0.1.1/24\"]\n"
    );
    for i in 0..targets {
        t.push_str(&format!(
            "[[targets]]\nname = \"t{i}\"\nip = \"10.0.{}.{}\"\nnqn = \"nqn.2026-11.io.dpusim:svc{i}\"\n\
             namespaces = [{{ size = \"256MiB\", block_size = 4096 }}]\nlatency = \"10us\"\n",
            i % 2,
            10 + i
        ));
    }
    t.push_str("[[storage]]\nfunctions = [0]\n");
    match st.ec {
        None => t.push_str("backend = \"nvmf\"\ntarget = \"t0\"\n"),
        Some((k, m)) => {
            let members: Vec<String> = (0..k + m).map(|i| format!("{{ target = \"t{i}\" }}")).collect();
            t.push_str(&format!("backend = \"ec\"\nblock_size = 4096\nec = {{ k = {k}, m = {m}, members = [{}] }}\n", members.join(", ")));
        }
    }
    if st.encrypted {
        // A test key, as in targets/scenarios/adapter-secure.toml.
        t.push_str(
            "encryption = \"aes-xts\"\nkey = \"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n",
        );
    }
    t.push_str(&format!(
        "[[jobs]]\nname = \"{rw}\"\nfunctions = [0]\nrw = \"{rw}\"\nbs = \"4k\"\niodepth = {SERVICES_QD}\nruntime = \"10ms\"\nramp_time = \"2ms\"\n"
    ));
    t
}

/// Inline data services: the same 4 KiB random reads and writes through
/// each of [`STACKS`], same cores and depth; IOPS against the plain path,
/// latency, data-plane cycles per I/O and engine use inside the window.
fn services(built: &build::Built) -> Result<(Value, String), String> {
    let mut rows: Vec<Value> = Vec::new();
    let mut table = String::from(
        "| stack | rw | data-plane harts active | IOPS | vs plain | lat avg (us) | p50 | p99 | cycles / I/O | instructions / I/O | crypto engines busy | crypto cycles / I/O | EC engine busy | EC cycles / I/O |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for rw in ["randread", "randwrite"] {
        let mut plain_iops = 0.0;
        for st in STACKS {
            let name = format!("services-{}-{rw}", st.slug);
            let (rep, stats) = scenario(built, &name, &services_toml(&name, rw, st))?;
            let t = &rep["total"];
            let ios = t["ios"].as_u64().unwrap_or(0).max(1);
            let (cyc, ins, active) = per_io(&stats, ios);
            let f = |k: &str| t[k].as_f64().unwrap_or(0.0);
            let w = &stats["window"];
            let wf = |k: &str| w[k].as_f64().unwrap_or(0.0);
            let (crypto_busy, ec_busy) = (wf("crypto_utilization"), wf("ec_utilization"));
            let crypto_per_io = wf("crypto_busy_cycles") / ios as f64;
            let ec_per_io = wf("ec_busy_cycles") / ios as f64;
            if st.slug == "plain" {
                plain_iops = f("iops");
            }
            let rel = if plain_iops > 0.0 { f("iops") / plain_iops } else { 0.0 };
            table.push_str(&format!(
                "| {} | {} | {active} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {cyc:.0} | {ins:.0} | {:.2}% | {crypto_per_io:.0} | {:.1}% | {ec_per_io:.0} |\n",
                st.label,
                if rw == "randread" { "read" } else { "write" },
                f("iops"),
                100.0 * rel,
                f("lat_avg_us"),
                f("lat_p50_us"),
                f("lat_p99_us"),
                100.0 * crypto_busy,
                100.0 * ec_busy,
            ));
            rows.push(json!({"stack": st.slug, "label": st.label, "rw": rw, "cores": SERVICES_CORES, "iodepth": SERVICES_QD,
                "iops": f("iops"), "iops_vs_plain": rel, "mb_per_s": f("mb_per_s"),
                "lat_avg_us": f("lat_avg_us"), "lat_p50_us": f("lat_p50_us"), "lat_p99_us": f("lat_p99_us"), "lat_p999_us": f("lat_p999_us"),
                "ios": ios, "cycles_per_io": cyc, "instructions_per_io": ins, "data_harts_active": active,
                "crypto_utilization": crypto_busy, "crypto_engine_cycles_per_io": crypto_per_io,
                "ec_utilization": ec_busy, "ec_engine_cycles_per_io": ec_per_io,
                "crypto_bytes": stats["crypto"]["bytes"].clone(), "ec_encoded_bytes": stats["ec"]["encoded_bytes"].clone()}));
        }
    }
    table.push_str(&format!(
        "\nEvery row: the PF's namespace 1 (4 KiB blocks), {SERVICES_CORES} data-plane cores (one host I/O queue each), iodepth {SERVICES_QD} in all, \
         2 ms ramp then 10 ms measured (EC writes run at ~1.5 ms per I/O); members and plain namespaces are 256 MiB on target models with 10 us media time behind the two ports. \
         \"vs plain\" is IOPS against the plain row of the same rw (the issue's target: at least 90%). Cycles and instructions per I/O are \
         data-plane core totals in the window divided by completed host I/Os, as in the adapter bench; they count every data-plane hart busy in the window \
         (\"harts active\": busy more than 1% of it), not only the 4 serving host queues. Engine busy: datapath cycles of the \
         descriptors submitted in the window over the window (crypto: over all 10 engines; EC: its one datapath), and per host I/O.\n"
    ));
    Ok((json!({"benchmark": "services", "cores": SERVICES_CORES, "iodepth": SERVICES_QD, "results": rows}), table))
}

/// Stage of a firmware function (by its path), for per-stage cycle splits.
/// (The NIC queue side of the stacks, `net::device` and `hal::nic`, is the
/// NIC driver.)
/// On the target side (`target`) the PCIe engine does no NVMe emulation:
/// its loop hosts the target's poll (inlined into it), and the fabric
/// module polls the stacks the target's sockets live on.
fn stage_of(func: &str, target: bool) -> &'static str {
    let f = func.split('+').next().unwrap_or(func);
    if target && f.contains("nvme::io") {
        "per-core engine loop (hosts the target's poll)"
    } else if target && f.contains("nvmf::initiator") {
        "NVMe/TCP stack polling (nvmf::initiator::Fabric)"
    } else if f.contains("smoltcp") || f.contains("net::stack") || f.contains("dpu_net::tcpfast") {
        // The per-core stacks: smoltcp, and the fast paths in front of it
        // (`net::stack`, whose poll also inlines smoltcp's interface).
        "TCP/IP (smoltcp and its fast path)"
    } else if f.contains("nvmf::target") || f.contains("dpu_nvme_tcp::target") {
        "NVMe/TCP target"
    } else if f.contains("::block::") {
        "block layer"
    } else if target && (f.contains("nvmf::") || f.contains("dpu_nvme_tcp")) {
        "NVMe/TCP PDU code"
    } else if f.contains("nvmf::") || f.contains("dpu_nvme_tcp") {
        "NVMe/TCP initiator"
    } else if f.contains("net::device") || f.contains("net::stack") || f.contains("hal::nic") || f.contains("dpu_net") {
        "NIC driver"
    } else if f.contains("nvme::admin") {
        "NVMe admin service"
    } else if f.contains("dpu_bdev") || f.contains("nvme::config") {
        "block layer"
    } else if f.contains("nvme::io") || f.contains("dpu_nvme") {
        "NVMe emulation (SQ fetch, PRP/SGL, CQE)"
    } else if f.contains("hal::dma") || f.contains("hal::mem") {
        "DMA driver"
    } else if f.contains("hal::pcie") || f.contains("take_doorbells") || f.contains("mailbox") || f.contains("plic") {
        "doorbells and notifications"
    } else if f.contains("memcpy") || f.contains("memset") {
        "memcpy / memset"
    } else if f.contains("reactor") || f.contains("map_or") {
        "reactor loop"
    } else {
        "other"
    }
}

/// Runs an existing bench scenario with the profiler on the data plane and
/// sums self cycles (inside the job window) per stage.
fn stage_profile(built: &build::Built, name: &str) -> Result<Vec<(&'static str, u64)>, String> {
    let dir = root().join("target/bench");
    let folded = dir.join(format!("{name}.folded"));
    let out = Command::new(&built.dpusim)
        .arg("--elf")
        .arg(&built.firmware)
        .arg("--scenario")
        .arg(dir.join(format!("{name}.toml")))
        .args(["-q", "--profile-harts", "data", "--profile"])
        .arg(&folded)
        .output()
        .map_err(|e| format!("cannot run dpusim: {e}"))?;
    if !out.status.success() {
        return Err(format!("profiling {name} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = std::fs::read_to_string(&folded).map_err(|e| e.to_string())?;
    let mut stages: Vec<(&'static str, u64)> = Vec::new();
    for line in text.lines() {
        let Some((path, n)) = line.rsplit_once(' ') else { continue };
        let cycles: u64 = n.parse().unwrap_or(0);
        let leaf = path.rsplit(';').next().unwrap_or(path);
        let st = stage_of(leaf, name.starts_with("target-"));
        match stages.iter_mut().find(|s| s.0 == st) {
            Some(s) => s.1 += cycles,
            None => stages.push((st, cycles)),
        }
    }
    stages.sort_by(|a, b| b.1.cmp(&a.1));
    Ok(stages)
}

/// Makes sure `qemu-system-riscv64` exists, installing Debian's
/// qemu-system-misc when possible. Returns the reason when it cannot.
fn ensure_qemu() -> Result<(), String> {
    let have = || Command::new("qemu-system-riscv64").arg("--version").output().is_ok_and(|o| o.status.success());
    if have() {
        return Ok(());
    }
    eprintln!("xtask: installing qemu-system-misc (apt-get) for the QEMU comparison");
    let st = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "qemu-system-misc"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if st.is_ok_and(|s| s.success()) && have() {
        return Ok(());
    }
    Err("qemu-system-riscv64 is not installed and `apt-get install qemu-system-misc` failed; install it to run this comparison".into())
}

/// Simulator speed against QEMU TCG on the same bare-metal ELF.
fn qemu(built: &build::Built) -> Result<(Value, String), String> {
    let chip = root().join("targets/chips/qemu-virt.toml");
    let dir = root().join("target/bare");
    let mut c = build::cargo();
    c.args(["build", "--profile", "fw", "--target", crate::toolchain::FIRMWARE_TARGET, "-p", "dpu-bench-bare", "--target-dir"])
        .arg(&dir)
        .env("DPU_CHIP", &chip)
        .env("RUSTFLAGS", "-C link-arg=-Tbare.x");
    eprintln!("xtask: {}", build::show(&c));
    if !c.status().map_err(|e| e.to_string())?.success() {
        return Err("building the bare-metal benchmark failed".into());
    }
    let elf = dir.join(crate::toolchain::FIRMWARE_TARGET).join("fw/bench-bare");
    let stats = root().join("target/bench-bare.json");
    // dpusim as users run it (hot code compiled), then interpreter only.
    let mut runs = Vec::new();
    for extra in [&[][..], &["--no-jit"][..]] {
        let t = std::time::Instant::now();
        let out = Command::new(&built.dpusim)
            .arg("--chip")
            .arg(&chip)
            .arg("--elf")
            .arg(&elf)
            .arg("-q")
            .arg("--stats-json")
            .arg(&stats)
            .args(extra)
            .output()
            .map_err(|e| e.to_string())?;
        let wall = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("dpusim on the bare benchmark failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let st: Value = serde_json::from_str(&std::fs::read_to_string(&stats).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        runs.push((wall, st["instret_total"].as_u64().unwrap_or(0)));
    }
    let (sim_wall, instr) = runs[0];
    let (interp_wall, _) = runs[1];
    let sim_mips = instr as f64 / sim_wall / 1e6;
    let interp_mips = instr as f64 / interp_wall / 1e6;
    let mut table = String::from("| simulator | wall time | M instructions / s |\n|---|---:|---:|\n");
    table.push_str(&format!("| dpusim (cycle model on, hot code compiled) | {sim_wall:.2} s | {sim_mips:.0} |\n"));
    table.push_str(&format!("| dpusim --no-jit (interpreter only) | {interp_wall:.2} s | {interp_mips:.0} |\n"));
    let mut row = json!({"instructions": instr, "dpusim_seconds": sim_wall, "dpusim_mips": sim_mips,
        "dpusim_interpreter_seconds": interp_wall, "dpusim_interpreter_mips": interp_mips});
    match ensure_qemu() {
        Ok(()) => {
            let t = std::time::Instant::now();
            let q = Command::new("qemu-system-riscv64")
                .args(["-machine", "virt", "-bios", "none", "-smp", "1", "-m", "2G", "-nographic", "-monitor", "none", "-serial", "none", "-kernel"])
                .arg(&elf)
                .output()
                .map_err(|e| e.to_string())?;
            let qemu_wall = t.elapsed().as_secs_f64();
            if !q.status.success() {
                return Err(format!("QEMU run failed ({}): {}", q.status, String::from_utf8_lossy(&q.stderr)));
            }
            let qemu_mips = instr as f64 / qemu_wall / 1e6;
            table.push_str(&format!("| qemu-system-riscv64 (TCG) | {qemu_wall:.2} s | {qemu_mips:.0} |\n"));
            table.push_str(&format!("\ndpusim / QEMU speed ratio: {:.2} (same ELF, {} M instructions, one host core each)\n", sim_mips / qemu_mips, instr / 1_000_000));
            row["qemu_seconds"] = json!(qemu_wall);
            row["qemu_mips"] = json!(qemu_mips);
            row["ratio"] = json!(sim_mips / qemu_mips);
        }
        Err(e) => {
            table.push_str(&format!("| qemu-system-riscv64 | not run: {e} | - |\n"));
        }
    }
    Ok((json!({"benchmark": "qemu", "results": [row]}), table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_scenarios_are_valid_on_the_default_platform() {
        let chip = dpu_targets::Chip::load(dpu_targets::default_chip_path()).unwrap();
        let board = dpu_targets::Board::load(dpu_targets::default_board_path()).unwrap();
        for rw in ["randread", "randwrite"] {
            for st in STACKS {
                let name = format!("services-{}-{rw}", st.slug);
                let sc = dpu_targets::Scenario::parse(format!("{name}.toml"), &services_toml(&name, rw, st))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                sc.check_platform(&chip, &board).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(sc.targets.len() as u32, st.ec.map_or(1, |(k, m)| k + m), "{name}");
            }
        }
    }

    #[test]
    fn target_scenarios_are_valid_on_the_default_platform() {
        let chip = dpu_targets::Chip::load(dpu_targets::default_chip_path()).unwrap();
        let board = dpu_targets::Board::load(dpu_targets::default_board_path()).unwrap();
        for (conns, qd) in [(1, 1), (4, 32), (64, 32)] {
            let name = format!("target-randread-{conns}conn-qd{qd}");
            let sc = dpu_targets::Scenario::parse(format!("{name}.toml"), &target_toml(&name, "randread", conns, qd)).unwrap_or_else(|e| panic!("{name}: {e}"));
            sc.check_platform(&chip, &board).unwrap_or_else(|e| panic!("{name}: {e}"));
            let queues: u16 = sc.initiators.iter().map(|i| i.io_queues).sum();
            assert_eq!(u32::from(queues), conns.max(1), "{name}");
        }
    }
}
