//! `cargo xtask test`: host tests, then firmware tests under the simulator.
//!
//! A system test runs `dpusim` on an image and checks what a user would
//! see: the exit status, log lines, the fault report, the stats JSON. A
//! failing test prints the decoded log of its run.

use crate::build::{self, root, show, Built};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What one run of dpusim produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    stats: Option<Value>,
}

impl Run {
    fn count(&self, needle: &str) -> usize {
        self.stdout.lines().filter(|l| l.contains(needle)).count()
    }
    fn stat(&self, key: &str) -> Option<&Value> {
        self.stats.as_ref()?.get(key)
    }
}

struct Ctx {
    built: Built,
    tmp: PathBuf,
}

impl Ctx {
    fn image(&self, name: &str) -> PathBuf {
        self.built.test_images.join(format!("{name}.elf"))
    }

    /// Runs dpusim with `args` (plus --stats-json).
    fn dpusim(&self, tag: &str, args: &[&str]) -> Result<Run, String> {
        let stats = self.tmp.join(format!("{tag}.json"));
        let _ = std::fs::remove_file(&stats);
        let mut c = Command::new(&self.built.dpusim);
        c.args(args).arg("--stats-json").arg(&stats);
        let out = c.output().map_err(|e| format!("cannot run {}: {e}", show(&c)))?;
        let stats = std::fs::read_to_string(&stats).ok().and_then(|s| serde_json::from_str(&s).ok());
        Ok(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            stats,
        })
    }

    fn run_image(&self, tag: &str, elf: &Path, extra: &[&str]) -> Result<Run, String> {
        let elf = elf.to_string_lossy().to_string();
        let mut args = vec!["--elf", &elf];
        args.extend_from_slice(extra);
        self.dpusim(tag, &args)
    }
}

type Check = fn(&Ctx) -> Result<(), (String, Option<Run>)>;

fn fail<T>(msg: impl Into<String>, run: Run) -> Result<T, (String, Option<Run>)> {
    Err((msg.into(), Some(run)))
}

fn expect_code(run: Run, code: i32) -> Result<Run, (String, Option<Run>)> {
    if run.code != code {
        return fail(format!("exit code {} (expected {code})", run.code), run);
    }
    Ok(run)
}

fn need(run: Run, needles: &[&str]) -> Result<Run, (String, Option<Run>)> {
    for n in needles {
        if !run.stdout.contains(n) && !run.stderr.contains(n) {
            return fail(format!("output lacks `{n}`"), run);
        }
    }
    Ok(run)
}

fn io(e: String) -> (String, Option<Run>) {
    (e, None)
}

// ------------------------------------------------------------------ tests

fn boot_all_roles(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("boot", &fw, &["--max-time", "2500us"]).map_err(io)?;
    let run = expect_code(run, 0)?;
    let run = need(run, &["boot: 64/64 data-plane reactors answered", "heartbeat 2: 64/64 reactors alive"])?;
    let (dp, cp) = (run.count("role data-plane reactor"), run.count("role control-plane"));
    if dp != 64 || cp != 16 {
        return fail(format!("{dp} data-plane and {cp} control-plane role lines (expected 64 and 16)"), run);
    }
    for h in 0..80 {
        if run.count(&format!("INFO  hart {h}: cluster ")) != 1 {
            return fail(format!("hart {h} did not report its role exactly once"), run);
        }
    }
    let harts = run.stat("harts").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
    let silent = run
        .stat("harts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|h| h["instret"].as_u64() == Some(0)).count())
        .unwrap_or(usize::MAX);
    if harts != 80 || silent != 0 {
        return fail(format!("stats: {harts} harts, {silent} executed nothing"), run);
    }
    if run.stat("undecodable_defmt_frames").and_then(Value::as_u64) != Some(0) || run.stat("log_errors").and_then(Value::as_u64) != Some(0) {
        return fail("undecodable defmt frames or ERROR lines", run);
    }
    Ok(())
}

fn determinism(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let fw = cx.built.firmware.clone();
    let strip = |r: &Run| {
        let mut v = r.stats.clone().unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("host_seconds");
            o.remove("mips");
        }
        v
    };
    let a = cx.run_image("det-a", &fw, &["--max-time", "1500us", "-q"]).map_err(io)?;
    let b = cx.run_image("det-b", &fw, &["--max-time", "1500us", "-q"]).map_err(io)?;
    if a.stats.is_none() || strip(&a) != strip(&b) {
        return fail("two identical runs produced different stats", b);
    }
    let b2 = cx.run_image("det-c", &fw, &["--max-time", "1500us"]).map_err(io)?;
    let a2 = cx.run_image("det-d", &fw, &["--max-time", "1500us"]).map_err(io)?;
    // The summary's host time and MIPS differ between runs; nothing else may.
    let sim_only = |r: &Run| r.stdout.lines().filter(|l| !l.contains("| host ")).collect::<Vec<_>>().join("\n");
    if a2.stdout.lines().count() < 82 || sim_only(&a2) != sim_only(&b2) {
        return fail("two identical runs printed different logs", b2);
    }
    Ok(())
}

fn atomics(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = expect_code(cx.run_image("atomics", &cx.image("atomics"), &["--max-time", "50ms"]).map_err(io)?, 0)?;
    need(run, &["amoadd total 40000, lr/sc total 40000, expected 40000", "test passed"]).map(drop)
}

fn critical_section(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = cx.run_image("cs", &cx.image("critical_section"), &["--max-time", "50ms"]).map_err(io)?;
    need(expect_code(run, 0)?, &["critical-section counter 16000, nested 16000, expected 16000"]).map(drop)
}

fn timer_ipi(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = cx.run_image("timer", &cx.image("timer_ipi"), &["--max-time", "50ms"]).map_err(io)?;
    need(expect_code(run, 0)?, &["ipi: 79/79 harts took the software interrupt", "timer: deadline"]).map(drop)
}

fn log_storm(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = expect_code(cx.run_image("storm", &cx.image("log_storm"), &["--max-time", "50ms"]).map_err(io)?, 0)?;
    // Every hart's 20 lines, complete, in order, attributed to the right hart.
    let mut next = [0u32; 80];
    for l in run.stdout.lines().filter(|l| l.contains("storm hart")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(hp), Some(h), Some(n), Some(p)) = (f.get(3), f.get(7), f.get(9), f.get(11)) else {
            return fail(format!("malformed line `{l}`"), run);
        };
        let h: usize = h.parse().unwrap_or(999);
        let n: u32 = n.parse().unwrap_or(999);
        let want_payload = format!("{:#x}", ((h as u64) << 32) | u64::from(n));
        if h >= 80 || *hp != format!("h{h:02}") || n != next[h] || *p != want_payload {
            return fail(format!("line out of order or garbled: `{l}`"), run);
        }
        next[h] += 1;
    }
    if next.iter().any(|&n| n != 20) {
        return fail("not every hart logged its 20 lines", run);
    }
    if run.stat("undecodable_defmt_frames").and_then(Value::as_u64) != Some(0) {
        return fail("undecodable defmt frames", run);
    }
    Ok(())
}

fn fault_report(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = cx.run_image("fault", &cx.image("fault_illegal"), &["--max-time", "10ms"]).map_err(io)?;
    let run = expect_code(run, 3)?;
    need(
        run,
        &[
            "FIRMWARE FAULT on hart 17 (cluster 1, core 1, data plane)",
            "cause : illegal instruction (mcause 0x2)",
            "<fault_illegal::faulting_function",
            "insn  : 0x0000  <illegal 0x0000>",
            // Hart 17 = cluster 1 core 1: its stack is the second slot from
            // the top of cluster 1's SMEM (0x2100_0000 + 4 MiB - 64 KiB).
            "sp 0x00000000213eff",
            "hart 17 about to execute an illegal instruction",
        ],
    )
    .map(drop)
}

fn panic_is_reported(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = cx.run_image("panic", &cx.image("panic"), &["--max-time", "10ms"]).map_err(io)?;
    need(expect_code(run, 255)?, &["h05 ERROR panic: ", "deliberate panic 42", "fail (code 57005)"]).map(drop)
}

fn moved_chip_boots(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let chip = root().join("targets/chips/mppa80-moved.toml");
    let out = build::build_firmware(Some(&chip), Some(&root().join("target/variant"))).map_err(io)?;
    let elf = out.join("dpu-fw");
    let chip_s = chip.to_string_lossy().to_string();
    let run = cx.run_image("moved", &elf, &["--chip", &chip_s, "--max-time", "1500us"]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["boot: 64/64 data-plane reactors answered"])?;
    if run.count("role data-plane reactor") != 64 {
        return fail("not all reactors reported on the moved chip", run);
    }
    // The default image on the moved chip is refused, naming both chips.
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("moved-mismatch", &fw, &["--chip", &chip_s]).map_err(io)?;
    let run = need(expect_code(run, 2)?, &["built for chip `mppa80`", "runs `mppa80-moved`"])?;
    drop(run);
    // Forcing it: its segments are outside the moved chip's RAM.
    let run = cx.run_image("moved-outside", &fw, &["--chip", &chip_s, "--ignore-chip-mismatch"]).map_err(io)?;
    need(expect_code(run, 2)?, &["is outside the chip's RAM"]).map(drop)
}

fn bad_inputs(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let missing = cx.dpusim("missing", &["--elf", "/nonexistent/fw.elf"]).map_err(io)?;
    let missing = need(expect_code(missing, 2)?, &["/nonexistent/fw.elf: cannot read"])?;
    drop(missing);
    let readme = root().join("README.md").to_string_lossy().to_string();
    let not_elf = need(expect_code(cx.dpusim("notelf", &["--elf", &readme]).map_err(io)?, 2)?, &["not an ELF file"])?;
    drop(not_elf);
    let host = cx.built.dpusim.to_string_lossy().to_string();
    let host_elf = need(expect_code(cx.dpusim("hostelf", &["--elf", &host]).map_err(io)?, 2)?, &["is not RISC-V"])?;
    drop(host_elf);
    // A chip file with a wrong-typed field: the error names file and field.
    let bad = cx.tmp.join("bad-chip.toml");
    let text = std::fs::read_to_string(dpu_targets::default_chip_path()).map_err(|e| io(e.to_string()))?;
    std::fs::write(&bad, text.replacen("cores_per_cluster = 16", "cores_per_cluster = \"sixteen\"", 1))
        .map_err(|e| io(e.to_string()))?;
    let (bad_s, fw) = (bad.to_string_lossy().to_string(), cx.built.firmware.to_string_lossy().to_string());
    let run = cx.dpusim("badchip", &["--chip", &bad_s, "--elf", &fw]).map_err(io)?;
    need(expect_code(run, 2)?, &["bad-chip.toml: field `chip.cores_per_cluster`"]).map(drop)
}

fn instruction_trace(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("itrace", &fw, &["--max-time", "50us", "-q", "--trace-hart", "17", "--trace-limit", "6"]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &["h17 0x00001000 <bootrom::reset_stub>", "csrrs a0, mhartid, zero", "<_start>", "auipc gp, 0x"],
    )?;
    let traced = run.stderr.lines().filter(|l| l.contains(" h17 0x")).count();
    if traced != 6 {
        return fail(format!("{traced} traced instructions (expected 6)"), run);
    }
    Ok(())
}

fn ram_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/ram-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("ram-verify", &fw, &["--scenario", &sc, "-q"]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (8 jobs)"])?;
    for f in 1..=8 {
        if run.count(&format!("randrw.fn{f}: (fn {f}, ns 1)")) != 1 {
            return fail(format!("no job result for VF {f}"), run);
        }
    }
    Ok(())
}

fn adapter_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-verify", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (6 jobs)"])?;
    for f in 1..=4 {
        if run.count(&format!("randrw.fn{f}: (fn {f}, ns 1)")) != 1 {
            return fail(format!("no job result for VF {f}"), run);
        }
    }
    // 32 KiB I/O on the second namespaces (writes through R2T/H2CData).
    for f in [1, 3] {
        if run.count(&format!("large.fn{f}: (fn {f}, ns 2)")) != 1 {
            return fail(format!("no 32 KiB job result for VF {f}"), run);
        }
    }
    // Each remote controller was looked up in its target's discovery log.
    for k in 0..4 {
        if run.count(&format!("ctrl {k}: discovery: nqn.2026-11.io.dpusim:t{k} at")) != 1 {
            return fail(format!("no discovery log entry for controller {k}"), run);
        }
    }
    // The I/O really went over NVMe/TCP to all four targets, on both ports.
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let targets = doc["targets"].as_array().cloned().unwrap_or_default();
    if targets.len() != 4 || targets.iter().any(|t| t["reads"].as_u64().unwrap_or(0) == 0 || t["writes"].as_u64().unwrap_or(0) == 0) {
        return fail(format!("every target model must have served reads and writes: {targets:?}"), run);
    }
    if targets.iter().any(|t| t["protocol_errors"].as_u64() != Some(0)) {
        return fail("a target model saw protocol errors", run);
    }
    // TCP payload copies went to the cores' DMA copy channels.
    if doc["dma"]["bytes_local"].as_u64().unwrap_or(0) < 1 << 20 {
        return fail(format!("no copy offload: {}", doc["dma"]), run);
    }
    let ports = doc["network"]["ports"].as_array().cloned().unwrap_or_default();
    if ports.len() != 2 || ports.iter().any(|p| p["rx_frames"].as_u64().unwrap_or(0) < 100) {
        return fail(format!("both DPU ports must carry traffic: {ports:?}"), run);
    }
    Ok(())
}

fn adapter_faults(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-faults.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-faults", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "fault: port 1 link down", "link up"])?;
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let t = |name: &str, key: &str| doc["targets"].as_array().and_then(|v| v.iter().find(|t| t["name"] == name)).and_then(|t| t[key].as_u64()).unwrap_or(0);
    if t("t0", "garbage_sent") == 0 {
        return fail("target t0 sent no malformed PDUs", run);
    }
    // Every data core that got one closed that connection (and recovered),
    // naming what was wrong.
    for kind in ["BadType", "UnknownCommand", "BadHlen", "BadPlen"] {
        if !run.stdout.lines().any(|l| l.contains("fatal transport error") && l.contains(kind)) {
            return fail(format!("the DPU did not report closing a connection on a malformed PDU ({kind})"), run);
        }
    }
    // The DPU told the target why it closed (H2CTermReq on the wire, not
    // lost to a reset of the connection).
    if t("t0", "term_reqs_received") == 0 {
        return fail("target t0 received no H2CTermReq for the malformed PDUs it sent", run);
    }
    if t("t1", "restarts") != 1 || run.count("ctrl 1: 10.0.0.11:4420 cntlid") < 2 {
        return fail("target t1 restart not seen or not recovered from", run);
    }
    if doc["network"]["switch"]["lost"].as_u64().unwrap_or(0) == 0 {
        return fail("no frames were lost", run);
    }
    Ok(())
}

/// A target that answers nothing on live connections for 8 ms and loses
/// what it held: the card times the commands out, reconnects and sends
/// them again; the host sees only delayed completions. The other target
/// grants 4 I/O queues: 4 are connected, none refused.
fn adapter_blackhole(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-blackhole.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-blackhole", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "fault: target `t1` stops answering"])?;
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let t = |name: &str, key: &str| doc["targets"].as_array().and_then(|v| v.iter().find(|t| t["name"] == name)).and_then(|t| t[key].as_u64()).unwrap_or(0);
    if t("t1", "swallowed") == 0 {
        return fail("target t1 swallowed nothing: the fault did not bite", run);
    }
    if run.count("command unanswered; reconnecting") == 0 {
        return fail("no I/O queue noticed the unanswered commands", run);
    }
    if run.count("target grants 4 I/O queues") != 1 || run.count("refused") != 0 {
        return fail("t0's grant of 4 I/O queues was not honoured", run);
    }
    // Discovery, admin and 4 I/O queues (plus reconnects: a handful).
    if t("t0", "connections") > 8 {
        return fail(format!("{} connections to t0, which grants 4 I/O queues", t("t0", "connections")), run);
    }
    Ok(())
}

/// The adapter against the Linux kernel's NVMe/TCP target in a QEMU guest
/// (installs QEMU and the guest kernel from Debian on first use).
fn interop_linux(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    crate::interop::adapter_against_linux(&cx.built.dpusim, &cx.built.firmware).map(|_| ()).map_err(|e| (e, None))
}

/// Runs `scenario` with `--trace` and returns the run and the trace events.
fn traced(cx: &Ctx, tag: &str, scenario: &str) -> Result<(Run, Vec<Value>), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios").join(scenario).to_string_lossy().to_string();
    let trace = cx.tmp.join(format!("{tag}-io-trace.json"));
    let t = trace.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image(tag, &fw, &["--scenario", &sc, "-q", "--trace", &t]).map_err(io)?;
    let run = expect_code(run, 0)?;
    let doc: Value = match std::fs::read_to_string(&trace).ok().and_then(|s| serde_json::from_str(&s).ok()) {
        Some(v) => v,
        None => return fail("no readable trace JSON", run),
    };
    let ev = doc["traceEvents"].as_array().cloned().unwrap_or_default();
    Ok((run, ev))
}

fn io_trace(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let (run, ev) = traced(cx, "iotrace", "pf-randread-qd1.toml")?;
    let ios: Vec<&Value> = ev.iter().filter(|e| e["cat"] == "io" && e["name"].as_str().is_some_and(|n| n.starts_with("read "))).collect();
    if ios.len() < 10 {
        return fail(format!("{} I/Os in the trace", ios.len()), run);
    }
    // Every traced read has its stages, in order, inside its host span.
    for io in &ios[1..] {
        let (name, seq) = (io["name"].as_str().unwrap_or(""), &io["args"]["seq"]);
        let (t0, t1) = (io["ts"].as_f64().unwrap_or(0.0), io["ts"].as_f64().unwrap_or(0.0) + io["dur"].as_f64().unwrap_or(0.0));
        let stage = |s: &str| ev.iter().find(|e| e["name"] == s && e["args"]["seq"] == *seq).and_then(|e| e["ts"].as_f64());
        let (Some(f), Some(d), Some(c)) = (stage("SQ fetch"), stage("data DMA"), stage("CQE + MSI-X")) else {
            return fail(format!("{name}: missing stages"), run);
        };
        if !(t0 <= f && f <= d && d <= c && c <= t1) {
            return fail(format!("{name}: stages out of order ({t0} {f} {d} {c} {t1})"), run);
        }
    }
    io_trace_nvmf(cx)
}

/// The same trace over NVMe/TCP: every remote read and write shows its
/// capsule leaving after the SQ fetch, the response arriving before the
/// CQE, and the 32 KiB writes their R2T and H2CData.
fn io_trace_nvmf(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let (run, ev) = traced(cx, "iotrace-nvmf", "adapter-randrw-qd4.toml")?;
    let ios: Vec<&Value> = ev.iter().filter(|e| e["cat"] == "io" && !e["name"].as_str().unwrap_or("admin").starts_with("admin")).collect();
    let (mut remote, mut r2t) = (0, 0);
    for io in &ios {
        let (name, seq) = (io["name"].as_str().unwrap_or(""), &io["args"]["seq"]);
        let n = &io["args"]["nvmf"];
        let us = |v: &Value| v.as_f64();
        let stage = |s: &str| ev.iter().find(|e| e["name"] == s && e["args"]["seq"] == *seq).and_then(|e| Some((e["ts"].as_f64()?, e["ts"].as_f64()? + e["dur"].as_f64()?)));
        let (Some(capsule), Some(resp), Some(fetch), Some(cqe), Some(submit), Some(complete)) =
            (us(&n["capsule_us"]), us(&n["resp_us"]), stage("SQ fetch"), stage("CQE + MSI-X"), stage("NVMe/TCP submit"), stage("NVMe/TCP complete"))
        else {
            continue; // still in flight when the run ended
        };
        remote += 1;
        let end = io["ts"].as_f64().unwrap_or(0.0) + io["dur"].as_f64().unwrap_or(0.0);
        // Times are in microseconds with float round-off: compare to 1 ns.
        let le = |a: f64, b: f64| a <= b + 1e-3;
        let same = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-3 && (a.1 - b.1).abs() < 1e-3;
        if !(le(fetch.1, capsule) && capsule < resp && le(resp, cqe.0) && le(cqe.1, end) && same(submit, (fetch.1, capsule)) && same(complete, (resp, cqe.0))) {
            return fail(format!("{name}: NVMe/TCP stages out of order: fetch {fetch:?} capsule {capsule} response {resp} CQE {cqe:?} done {end}"), run);
        }
        if let (Some(r), Some(h)) = (us(&n["r2t_us"]), us(&n["h2c_us"])) {
            if !(capsule < r && r < h && h < resp) {
                return fail(format!("{name}: R2T {r} / H2CData {h} outside capsule {capsule} .. response {resp}"), run);
            }
            r2t += 1;
        }
    }
    if remote < 10 || r2t == 0 || ios.len() > remote + 8 {
        return fail(format!("{} I/Os, {remote} with NVMe/TCP stages, {r2t} with R2T", ios.len()), run);
    }
    Ok(())
}

const TESTS: &[(&str, Check)] = &[
    ("boot: all 80 harts report their role", boot_all_roles),
    ("determinism: identical stats and logs", determinism),
    ("atomics: amoadd and lr/sc counters on 80 harts", atomics),
    ("critical-section across 80 harts", critical_section),
    ("timer interrupt, IPIs, wfi wake-up", timer_ipi),
    ("defmt: 80 harts logging at once", log_storm),
    ("fault report for an illegal instruction", fault_report),
    ("panic is logged and fails the run", panic_is_reported),
    ("chip variant with moved addresses boots", moved_chip_boots),
    ("bad input: clear errors, no panic", bad_inputs),
    ("instruction trace with symbols", instruction_trace),
    ("ram-verify: 8 VFs, verified 4 KiB randrw", ram_verify),
    ("I/O trace: stages of every I/O in order (RAM, NVMe/TCP)", io_trace),
    ("adapter-verify: 4 VFs over NVMe/TCP to 4 targets (4 KiB, 32 KiB via R2T)", adapter_verify),
    ("adapter-faults: loss, bad PDUs, target restart, link flap", adapter_faults),
    ("adapter-blackhole: a target stops answering; a target grants 4 queues", adapter_blackhole),
    ("interop: adapter against Linux nvmet-tcp in QEMU (plain, digests)", interop_linux),
];

pub fn test_all(only: Option<&str>, no_host: bool) -> Result<(), String> {
    let t0 = Instant::now();
    let built = build::build_all(None)?;
    if !no_host {
        // Host tests; the simulator's NVMe tests boot the image just built.
        let mut c = build::cargo();
        c.args(["test", "--workspace", "--exclude", "dpu-fw", "--exclude", "dpu-fw-tests", "--exclude", "dpu-rt", "--exclude", "dpu-bench-bare"]);
        c.env("DPU_FW_ELF", &built.firmware);
        eprintln!("xtask: {}", show(&c));
        let st = c.status().map_err(|e| format!("cannot run cargo test: {e}"))?;
        if !st.success() {
            return Err("host tests failed".into());
        }
        // Every parser of hostile input, fuzzed briefly (stable engine).
        crate::fuzz::smoke()?;
    }
    let tmp = root().join("target/systest");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let cx = Ctx { built, tmp };
    let mut failed = Vec::new();
    let mut ran = 0;
    eprintln!("\nfirmware tests under the simulator:");
    for (name, f) in TESTS {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        ran += 1;
        let t = Instant::now();
        match f(&cx) {
            Ok(()) => eprintln!("  ok      {name} ({:.1} s)", t.elapsed().as_secs_f64()),
            Err((msg, run)) => {
                eprintln!("  FAILED  {name}: {msg}");
                if let Some(r) = run {
                    eprintln!("  ---- decoded log (last 60 lines) ----");
                    let lines: Vec<&str> = r.stdout.lines().chain(r.stderr.lines()).collect();
                    for l in &lines[lines.len().saturating_sub(60)..] {
                        eprintln!("  | {l}");
                    }
                }
                failed.push(*name);
            }
        }
    }
    eprintln!(
        "\n{} of {ran} firmware tests passed ({:.0} s in total)",
        ran - failed.len(),
        t0.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join("; ")))
    }
}
