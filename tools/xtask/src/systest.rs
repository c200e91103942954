//! `cargo xtask test`: host tests, then firmware tests under the simulator.
//!
//! A system test runs `dpusim` on an image and checks what a user would
//! see: the exit status, log lines, the fault report, the stats JSON. A
//! failing test prints the decoded log of its run.

mod isal;
mod mgmt;
mod secure_boot;

use crate::build::{self, root, show, Built};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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

/// What a test gets: the build, a scratch directory of its own (tests
/// run side by side), the interop guest.
struct Ctx<'a> {
    built: &'a Built,
    tmp: PathBuf,
    /// The interop guest, booting in the background since the suite began.
    guest: &'a Mutex<Option<EarlyGuest>>,
}

impl Ctx<'_> {
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

type Check = fn(&Ctx<'_>) -> Result<(), (String, Option<Run>)>;

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

/// A healthy run logs no WARN or ERROR line (a warning must mean something).
fn no_warnings(run: &Run) -> Result<(), (String, Option<Run>)> {
    let (w, e) = (run.stat("log_warnings").and_then(Value::as_u64), run.stat("log_errors").and_then(Value::as_u64));
    let shown: Vec<&str> = run.stdout.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).take(5).collect();
    if w != Some(0) || e != Some(0) || !shown.is_empty() {
        return Err((format!("a healthy run logged {w:?} WARN and {e:?} ERROR lines: {shown:?}"), None));
    }
    Ok(())
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
        // Host-time figures (the run's, the compiler tier's) differ
        // between runs; nothing else may.
        if let Some(o) = v.as_object_mut() {
            o.remove("host_seconds");
            o.remove("mips");
            if let Some(j) = o.get_mut("jit").and_then(|j| j.as_object_mut()) {
                j.remove("compile_host_seconds");
            }
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

fn accel_drivers(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let run = cx.run_image("accel", &cx.image("accel"), &["--max-time", "20ms"]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "trng: two words differ and fill_bytes works: true",
            "crypto: key loaded true on every engine true, scratch wiped true, equal halves refused true",
            "crypto: IEEE 1619 vector 10 on 10/10 engines, one each true; decrypted back true",
            "crypto: key ladder without a device key: wrap and unwrap refused true",
            "test passed",
        ],
    )?;
    // The key ladder, on a chip with a device key in its fuses.
    let otp = cx.tmp.join("accel-device-key.otp");
    let mut words = vec![0u32; 64];
    dpu_imgtool::devkey::DeviceKey::generate().map_err(io)?.provision(&mut words);
    std::fs::write(&otp, dpu_imgtool::flash::otp_bytes(&words)).map_err(|e| io(e.to_string()))?;
    let ladder = cx.run_image("accel-ladder", &cx.image("accel"), &["--max-time", "20ms", "--otp", &otp.to_string_lossy()]).map_err(io)?;
    need(
        expect_code(ladder, 0)?,
        &[
            "crypto: key ladder: device key hidden true, wrapped true (scratch wiped true), unwrapped into every engine true, vector 10 with it on 10/10 engines, tampered blob refused true",
            "test passed",
        ],
    )?;
    if !run.stdout.lines().any(|l| l.contains("dma crc32c") && l.ends_with(": true")) {
        return fail("the DMA engine's CRC32C differs from the software digest", run);
    }
    let keys = run.stat("crypto").and_then(|c| c["descriptors"].as_u64()).unwrap_or(0);
    if keys < 31 || run.stat("dma").and_then(|d| d["bytes_crc"].as_u64()) != Some(3000) {
        return fail(format!("crypto/DMA counters do not show the work ({keys} crypto descriptors)"), run);
    }
    // A stuck noise source fails the TRNG's health test: no random numbers.
    let run = cx.run_image("accel-stuck", &cx.image("accel"), &["--max-time", "20ms", "--trng-fault", "stuck"]).map_err(io)?;
    let run = need(run, &["TRNG not ready"])?;
    if run.code == 0 || run.stat("trng").and_then(|t| t["failures"].as_u64()).unwrap_or(0) == 0 {
        return fail("a stuck TRNG source was not caught", run);
    }
    Ok(())
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
    // Firmware failure codes have their own exit statuses (16 + code, 116
    // for codes of 100 and more), never 1-15; the raw code is on stderr.
    let run = need(expect_code(run, 116)?, &["h05 ERROR panic: ", "deliberate panic 42", "fail (code 57005)"])?;
    if !run.stderr.contains("the firmware panicked (failure code 57005 = 0xdead) (exit status 116)") {
        return fail("stderr does not name the raw failure code", run);
    }
    Ok(())
}

fn moved_chip_boots(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let chip = root().join("targets/chips/mppa80-moved.toml");
    let out = build::build_firmware(Some(&chip), Some(&root().join("target/variant")), false).map_err(io)?;
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
    let run = need(expect_code(run, 2)?, &["bad-chip.toml: field `chip.cores_per_cluster`"])?;
    drop(run);
    // Another chip without --board takes the board that carries it: no
    // "board carries another chip" warning (the qemu benchmark's path).
    let qemu = root().join("targets/chips/qemu-virt.toml").to_string_lossy().to_string();
    let run = cx.dpusim("qemu-board", &["--chip", &qemu, "--elf", "/nonexistent/fw.elf"]).map_err(io)?;
    let run = need(expect_code(run, 2)?, &["/nonexistent/fw.elf: cannot read"])?;
    if run.stderr.contains("warning") {
        return fail("a warning on the qemu-virt chip's path", run);
    }
    Ok(())
}

/// A configuration the loader accepts but the firmware cannot serve ends
/// the run with the firmware's reason (exit 7), even with `-q`. Here the
/// chip file given to dpusim promises more DDR for RAM namespaces than the
/// image was built with (a smaller `firmware.ddr_heap_size`, forced with
/// --ignore-chip-mismatch).
fn config_rejected(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let text = std::fs::read_to_string(dpu_targets::default_chip_path()).map_err(|e| io(e.to_string()))?;
    let chip = dpu_targets::Chip::load(dpu_targets::default_chip_path()).map_err(|e| io(e.to_string()))?;
    let heap = chip.firmware.ddr_heap_size;
    let from = text.lines().find(|l| l.starts_with("ddr_heap_size")).ok_or_else(|| io("chip has no ddr_heap_size".into()))?;
    let small = cx.tmp.join("small-heap.toml");
    std::fs::write(&small, text.replacen(from, &format!("ddr_heap_size = {:#x}", heap / 2), 1)).map_err(|e| io(e.to_string()))?;
    // Fits the pool the chip file describes, not the image's.
    let mib = (chip.ram_namespace_pool().1 + heap / 4) >> 20;
    let sc = cx.tmp.join("big-ram.toml");
    let scenario = format!(
        "[scenario]\nname = \"big-ram\"\n[[storage]]\nfunctions = [0]\nbackend = \"ram\"\nsize = \"{mib}MiB\"\n\
         [[jobs]]\nname = \"j\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"1ms\"\n"
    );
    std::fs::write(&sc, scenario).map_err(|e| io(e.to_string()))?;
    let (small_s, sc_s, fw) = (small.to_string_lossy().to_string(), sc.to_string_lossy().to_string(), cx.built.firmware.to_string_lossy().to_string());
    let run = cx.dpusim("config-rejected", &["--chip", &small_s, "--ignore-chip-mismatch", "--elf", &fw, "--scenario", &sc_s, "-q"]).map_err(io)?;
    let run = expect_code(run, 7)?;
    if !run.stderr.contains("dpusim: error: the firmware rejected its boot configuration: namespace record 0 (function 0, nsid 1, RAM") || !run.stderr.contains("out of memory") {
        return fail("stderr lacks the firmware's reason", run);
    }
    // The chip the image was built for: the loader refuses it up front.
    let run = cx.dpusim("config-refused", &["--elf", &fw, "--scenario", &sc_s, "-q"]).map_err(io)?;
    need(expect_code(run, 2)?, &["field `storage[0].size`", "firmware.ddr_heap_size"]).map(drop)
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
    no_warnings(&run)?;
    for f in 1..=8 {
        if run.count(&format!("randrw.fn{f}: (fn {f}, ns 1)")) != 1 {
            return fail(format!("no job result for VF {f}"), run);
        }
    }
    // Every VF's written blocks were checked at the end by NVMe Compare.
    if run.count("NVMe Compares at the end (the first of altered data)") != 8 {
        return fail("the end-of-run check did not run by Compare on all 8 VFs", run);
    }
    Ok(())
}

/// The NVMe/TCP initiator model against a target model over the switch:
/// both jobs verified, small writes in the capsule, large ones on R2T.
fn initiator_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/initiator-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("initiator-verify", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (2 jobs)", "small.h0: (initiator h0, ns 1)", "large.h0: (initiator h0, ns 2)", "initiator h0: ready: controller"],
    )?;
    let Some(s) = run.stat("initiators").and_then(|i| i.get(0)).cloned() else { return fail("no initiators[] in the stats JSON", run) };
    let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    if s.get("name").and_then(Value::as_str) != Some("h0") || n("connections") != 3 || n("in_capsule_writes") == 0 || n("r2ts") == 0 || n("io_errors") != 0 || n("protocol_errors") != 0 {
        return fail(format!("initiator stats: {s}"), run);
    }
    Ok(())
}

/// The job block headed `header` in the report: its verify line's
/// (verify errors, I/O errors) and its first error lines.
fn job_errors(run: &Run, header: &str) -> Option<(u64, u64, Vec<String>)> {
    let mut lines = run.stdout.lines().skip_while(|l| !l.starts_with(header));
    lines.next()?;
    let verify = lines.by_ref().find(|l| l.trim_start().starts_with("verify:"))?;
    let num_before = |tag: &str| verify.split(tag).next()?.split_whitespace().last()?.parse::<u64>().ok();
    let io = verify.split("I/O errors ").nth(1)?.split(',').next()?.trim().parse().ok()?;
    let firsts = lines.take_while(|l| l.trim_start().starts_with('!')).map(String::from).collect();
    Some((num_before(" errors (")?, io, firsts))
}

/// `target-verify`: the card as an all-flash-array target. Two NVMe/TCP
/// initiator models (their own PDU code) run verified randrw through the
/// card's NVMe/TCP target, one per port, on namespaces of the 4 local
/// SSDs; SSD 3 fails mid-run: only its namespace's I/O fails, with the
/// SSD's status passed through (Internal Error, DNR). h1 connects with
/// SQ flow control disabled: its reads end with SUCCESS data.
fn target_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/target-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("target-verify", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0",
            "TOTAL (4 jobs)",
            "nvmf target: nqn.2026-12.io.dpusim:aff0 listening on 10.0.0.1:4420 (port 0)",
            "nvmf target: nqn.2026-12.io.dpusim:aff1 listening on 10.0.1.1:4420 (port 1)",
            "fault: local SSD 3 fails every command",
        ],
    )?;
    for (header, healthy) in [("ssd0.h0: ", true), ("ssd1.h0: ", true), ("ssd2.h1: ", true), ("ssd3.h1: ", false)] {
        let Some((verify, ios, firsts)) = job_errors(&run, header) else { return fail(format!("no job result `{header}`"), run) };
        if verify != 0 || (healthy && ios != 0) {
            return fail(format!("job `{header}`: {verify} verify errors, {ios} I/O errors"), run);
        }
        if !healthy && (ios == 0 || firsts.is_empty() || !firsts.iter().all(|l| l.contains("status SCT 0x0 SC 0x06 DNR"))) {
            return fail(format!("job `{header}` on the failed SSD: {ios} I/O errors, first: {firsts:?} (want Internal Error, DNR)"), run);
        }
    }
    // Both hosts: a discovery, an admin and 4 I/O queue connections each,
    // reads and writes; h1's only errors are the failed SSD's. Every SSD
    // served I/O. The discovery log lists what each host may reach: h0
    // (on no allow-list) aff0 only, h1 both subsystems. h1's AER (it
    // listens for namespace notices) is held: sent once, never answered.
    // h1 connected with SQ flow control disabled: its successful reads
    // ended with a SUCCESS C2HData (h0's never: a protocol error there).
    // (The admin queue's answers keep their CapsuleResp.)
    let inits = run.stat("initiators").and_then(Value::as_array).cloned().unwrap_or_default();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let ok = inits.len() == 2
        && (n(&inits[1], "aers"), n(&inits[1], "aer_errors"), n(&inits[1], "namespace_notices")) == (1, 0, 0)
        && n(&inits[0], "aers") == 0
        && n(&inits[0], "c2h_success") == 0
        && n(&inits[1], "c2h_success") > 50
        && inits.iter().all(|i| n(i, "connections") == 6 && n(i, "reads") > 50 && n(i, "writes") > 50 && n(i, "protocol_errors") == 0)
        && (n(&inits[0], "discovery_entries"), n(&inits[1], "discovery_entries")) == (1, 2)
        && n(&inits[0], "io_errors") == 0
        && n(&inits[1], "io_errors") == inits[1]["errors_by_status"]["0x0/0x06"].as_u64().unwrap_or(u64::MAX);
    if !ok {
        return fail(format!("initiator stats: {inits:?}"), run);
    }
    let ssds = run.stat("ssds").and_then(Value::as_array).cloned().unwrap_or_default();
    if ssds.len() != 4 || ssds.iter().any(|s| n(s, "reads") == 0) || ssds[..3].iter().any(|s| n(s, "errors") != 0) {
        return fail(format!("SSD stats: {ssds:?}"), run);
    }
    Ok(())
}

/// `target-digest`: an initiator model asking for header and data
/// digests runs verified randrw through the card's NVMe/TCP target on a
/// RAM and a local SSD namespace; 4 KiB writes go in the capsule, 16 and
/// 128 KiB writes by R2T/H2CData (the I/O queues take 8 KiB in capsule).
/// No I/O, digest or protocol error; both write paths were taken. The 4
/// and 16 KiB jobs check every block they wrote at the end by NVMe
/// Compare (in the capsule and by R2T), after one Compare of altered data
/// each, which must fail with Compare Failure (SCT 2h, SC 85h).
fn target_digest(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/target-digest.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("target-digest", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0", "TOTAL (3 jobs)"])?;
    for header in ["small.h0: ", "mid.h0: ", "large.h0: "] {
        let Some((verify, ios, _)) = job_errors(&run, header) else { return fail(format!("no job result `{header}`"), run) };
        if verify != 0 || ios != 0 {
            return fail(format!("job `{header}`: {verify} verify errors, {ios} I/O errors"), run);
        }
    }
    // Both write paths taken (a 128 KiB write: 4 H2CData PDUs), digests
    // on every PDU and none wrong.
    let inits = run.stat("initiators").and_then(Value::as_array).cloned().unwrap_or_default();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let ok = inits.len() == 1
        && inits.iter().all(|i| {
            n(i, "connections") == 5
                && n(i, "reads") > 50
                && n(i, "in_capsule_writes") > 20
                && n(i, "r2ts") > 20
                && n(i, "h2c_data") > n(i, "r2ts")
                && n(i, "digest_errors") == 0
                && n(i, "protocol_errors") == 0
                && n(i, "compares") > 100
                // Only the two Compares of altered data failed.
                && n(i, "io_errors") == 2
                && i["errors_by_status"]["0x2/0x85"].as_u64() == Some(2)
        });
    if !ok {
        return fail(format!("initiator stats (want in-capsule and R2T writes, no digest error): {inits:?}"), run);
    }
    // The target's data digests ran on the CRC32C engine.
    if run.stat("dma").and_then(|d| d.get("bytes_crc")).and_then(Value::as_u64).unwrap_or(0) == 0 {
        return fail("no bytes through the DMA CRC32C engine: the target's data digests did not run there", run);
    }
    no_warnings(&run)?;
    Ok(())
}

/// `target-bad-input`: the card's NVMe/TCP target against bad input from
/// an initiator model (h1: malformed PDU, bad in-capsule data digest,
/// Disconnect, Keep Alive stopped) while another (h0) runs clean. h0 sees
/// no error of any kind; h1 saw each fault's effect (C2HTermReq FES 01h
/// and a queue reconnect, a 0h/22h completion retried, the Disconnect
/// completed and the queue reconnected, the controller lost and set up
/// again) and no I/O error; verify clean on both; the target logged it.
fn target_bad_input(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/target-bad-input.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("target-bad-input", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0",
            "TOTAL (2 jobs)",
            "fatal transport error (FES 0x1",
            "keep alive timeout",
            "nvmf target: Disconnect on qid",
            "fault: initiator `h1`: queue 1: CapsuleCmd with a wrong HLEN sent",
        ],
    )?;
    for header in ["ram0.h0: ", "ram1.h1: "] {
        let Some((verify, ios, _)) = job_errors(&run, header) else { return fail(format!("no job result `{header}`"), run) };
        if verify != 0 || ios != 0 {
            return fail(format!("job `{header}`: {verify} verify errors, {ios} I/O errors"), run);
        }
    }
    let inits = run.stat("initiators").and_then(Value::as_array).cloned().unwrap_or_default();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let Some((h0, h1)) = inits.first().zip(inits.get(1)) else { return fail(format!("initiator stats: {inits:?}"), run) };
    let h0_clean = ["io_errors", "transport_errors", "protocol_errors", "term_reqs_received", "connection_drops", "digest_errors", "timeouts", "retries", "reconnects", "controller_lost"]
        .iter()
        .all(|k| n(h0, k) == 0)
        && n(h0, "connections") == 3
        && n(h0, "reads") > 50
        && n(h0, "writes") > 50;
    if !h0_clean {
        return fail(format!("h0 (healthy) saw errors: {h0:?}"), run);
    }
    let h1_ok = n(h1, "io_errors") == 0
        && n(h1, "protocol_errors") == 0
        && n(h1, "term_reqs_received") == 1
        && h1["term_reqs_by_fes"]["0x1"].as_u64() == Some(1)
        && h1["retried_by_status"]["0x0/0x22"].as_u64() == Some(1)
        && n(h1, "disconnects_completed") == 1
        && n(h1, "reconnects") == 2
        && n(h1, "controller_lost") == 1
        && n(h1, "controller_reconnects") == 1
        && n(h1, "reads") > 50
        && n(h1, "writes") > 50;
    if !h1_ok {
        return fail(format!("h1 (faulted) stats: want 1 C2HTermReq FES 0x1, one 0h/22h retried, 1 Disconnect completed, 2 queue reconnects, 1 controller lost and set up again, no I/O error: {h1:?}"), run);
    }
    Ok(())
}

fn local_ssd_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/local-ssd-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("local-ssd-verify", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0", "TOTAL (4 jobs)", "fault: local SSD 1 fails every command"])?;
    // Every SSD was brought up by the firmware's driver.
    for k in 0..4 {
        if run.count(&format!("ssd {k}: up: 64 I/O queue pairs of 64, namespace 1")) != 1 {
            return fail(format!("SSD {k} not brought up (controller init, identify, queue pairs)"), run);
        }
    }
    // The healthy namespaces: no error at all; the failed one: its I/O
    // failed with the SSD's status (Internal Error, DNR), none hung.
    for (header, healthy) in [("small.fn1: ", true), ("small.fn2: ", false), ("large.fn3: ", true), ("small.fn4: ", true)] {
        let Some((verify, ios, firsts)) = job_errors(&run, header) else { return fail(format!("no job result `{header}`"), run) };
        if verify != 0 || (healthy && ios != 0) {
            return fail(format!("job `{header}`: {verify} verify errors, {ios} I/O errors"), run);
        }
        if !healthy && (ios == 0 || firsts.is_empty() || !firsts.iter().all(|l| l.contains("status SCT 0x0 SC 0x06 DNR"))) {
            return fail(format!("job `{header}` on the failed SSD: {ios} I/O errors, first: {firsts:?} (want Internal Error, DNR)"), run);
        }
    }
    // The data went to the SSDs (both ways), 128 KiB commands on SSD 2;
    // the failed SSD's errors are its own, the others had none.
    let ssds = run.stat("ssds").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let n = |k: usize, f: &str| ssds.get(k).and_then(|s| s[f].as_u64()).unwrap_or(0);
    if ssds.len() != 4 || (0..4).any(|k| n(k, "reads") == 0 || n(k, "writes") == 0) {
        return fail(format!("SSD counters: {ssds:?}"), run);
    }
    if n(0, "errors") + n(2, "errors") + n(3, "errors") != 0 || n(1, "errors") == 0 || (0..4).any(|k| n(k, "bad_doorbells") != 0) {
        return fail(format!("SSD error counters: {ssds:?}"), run);
    }
    if n(2, "bytes") != (n(2, "reads") + n(2, "writes")) * 128 * 1024 {
        return fail(format!("SSD 2 did not see 128 KiB commands: {ssds:?}"), run);
    }
    Ok(())
}

fn adapter_verify(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-verify", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (6 jobs)"])?;
    no_warnings(&run)?;
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
    // t3 refuses to disable SQ flow control: its queues connect again
    // with flow control on (and serve, per the stats below); the others
    // accept it.
    let fallbacks: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).filter(|l| l.contains("the target refused to disable SQ flow control")).collect();
    if fallbacks.is_empty() || fallbacks.iter().any(|l| !l.contains("ctrl 3:")) {
        return fail(format!("SQ flow control fall-back wanted for t3 (ctrl 3) alone: {fallbacks:?}"), run);
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

fn adapter_secure(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/adapter-secure.toml");
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-secure", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (3 jobs)", "crypto: 3 namespace key(s) loaded into 10 engines"])?;
    no_warnings(&run)?;
    // The keys never show in the log or the stats.
    let text = std::fs::read_to_string(&path).map_err(|e| io(format!("{}: {e}", path.display())))?;
    let stats_text = run.stats.as_ref().map(|s| s.to_string()).unwrap_or_default();
    for key in text.lines().filter_map(|l| l.strip_prefix("key = \"")) {
        let head = &key[..16];
        if run.stdout.contains(head) || run.stderr.contains(head) || stats_text.contains(head) {
            return fail(format!("key material {head}.. appears in the output"), run);
        }
    }
    // The targets hold ciphertext: the simulator decrypts every written
    // block with its own AES-XTS and finds the host's data for that LBA,
    // and finds no block of the host's data in plaintext.
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    let n = |a: &Value, k: &str| a[k].as_u64().unwrap_or(u64::MAX);
    if at_rest.len() != 2 || at_rest.iter().any(|a| n(a, "written") < 50 || n(a, "ciphertext_ok") != n(a, "written") || n(a, "plaintext") != 0 || n(a, "bad") != 0) {
        return fail(format!("media check of the encrypted remote namespaces: {at_rest:?}"), run);
    }
    if run.count("are AES-XTS ciphertext of the host's data, 0 plaintext, 0 neither") != 2 {
        return fail("no at-rest report line for each target", run);
    }
    // Encryption from the host's pages and decryption into them ran on
    // the engines; host buffers off data-unit boundaries bounced by DMA.
    let c = &doc["crypto"];
    if n(c, "errors") != 0 || n(c, "bytes_from_host") == 0 || n(c, "bytes_to_host") == 0 || n(c, "descriptors") < 200 {
        return fail(format!("crypto engine counters: {c}"), run);
    }
    if n(&doc["dma"], "bytes_h2d") < 1 << 18 || n(&doc["dma"], "bytes_d2h") < 1 << 18 {
        return fail(format!("no bounce through staging for the offset buffers: {}", doc["dma"]), run);
    }
    Ok(())
}

fn adapter_secure_ec(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-secure-ec.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let pcap = cx.tmp.join("secure-ec.pcap");
    let run = cx.run_image("adapter-secure-ec", &fw, &["--scenario", &sc, "--pcap", &pcap.to_string_lossy()]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (3 jobs)", "erasure-coded volume 0 (4+2", "erasure-coded volume 1 (4+2"],
    )?;
    // Both dead targets were found lost, on both volumes (members 1 and 4),
    // and nothing else was.
    for vol in 0..2 {
        for member in [1, 4] {
            if !run.stdout.contains(&format!("ec: volume {vol}: member {member} lost")) {
                return fail(format!("volume {vol}: member {member} was not marked lost"), run);
            }
        }
        for member in [0, 2, 3, 5] {
            if run.stdout.contains(&format!("ec: volume {vol}: member {member} lost")) {
                return fail(format!("volume {vol}: member {member} (a live target) was marked lost"), run);
            }
        }
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let n = |a: &Value, k: &str| a[k].as_u64().unwrap_or(u64::MAX);
    // Parity came from the EC engine, and so did the lost members'
    // fragments on degraded reads; it never reported an error.
    let ec = &doc["ec"];
    if n(ec, "errors") != 0 || n(ec, "encoded_bytes") < 1 << 18 || n(ec, "rebuilt_bytes") < 1 << 16 {
        return fail(format!("EC engine counters: {ec}"), run);
    }
    // Every target held fragments; the four live ones served reads and
    // writes to the end.
    let targets = doc["targets"].as_array().cloned().unwrap_or_default();
    if targets.len() != 6 || targets.iter().any(|t| n(t, "writes") == 0 || n(t, "reads") == 0) {
        return fail(format!("every target must have served reads and writes: {targets:?}"), run);
    }
    // No member of the encrypted volume holds a sector of the host's data
    // in the clear; the plain volume's members do (the scan sees it).
    let scan = doc["ec_at_rest"].as_array().cloned().unwrap_or_default();
    let vol = |enc: bool| scan.iter().find(|a| a["encrypted"].as_bool() == Some(enc)).cloned().unwrap_or_default();
    let (enc, plain) = (vol(true), vol(false));
    if scan.len() != 2 || n(&enc, "written") < 300 || n(&enc, "plaintext") != 0 || n(&plain, "plaintext") < 20 {
        return fail(format!("plaintext scan of the EC volumes' members: {scan:?}"), run);
    }
    // Nor does the wire: both ports' captures, every TCP stream
    // reassembled. The encrypted volume has 512-byte sectors, the plain
    // one 4 KiB sectors, which the scan must see in the clear.
    let caps = [cx.tmp.join("secure-ec-eth0.pcap"), cx.tmp.join("secure-ec-eth1.pcap")];
    let wire = crate::wirescan::scan(&[&caps[0], &caps[1]], &[512, 4096]).map_err(io)?;
    for c in &caps {
        let _ = std::fs::remove_file(c);
    }
    let found = |n: usize| wire.plaintext.get(&n).copied().unwrap_or(0);
    if wire.streams < 12 || wire.payload_bytes < 2 << 20 || found(512) != 0 || found(4096) < 20 {
        return fail(format!("plaintext scan of the wire (pcap): {wire:?}"), run);
    }
    // The crypto engines encrypted the first volume's data above the stripes.
    if n(&doc["crypto"], "errors") != 0 || n(&doc["crypto"], "descriptors") < 100 {
        return fail(format!("crypto engine counters: {}", doc["crypto"]), run);
    }
    // A third target (t3) dies at 4 ms: more than m = 2 members lost. I/O
    // that needs a lost fragment fails with Unrecovered Read Error (SCT 2h
    // SC 81h) or Write Fault (80h), with DNR; no block reads back wrong.
    let text = std::fs::read_to_string(&sc).map_err(|e| io(format!("{sc}: {e}")))?;
    let Some(at) = text.find("[expect]") else { return Err(("the scenario has no [expect]".into(), None)) };
    let three = format!(
        "{}[[faults]]\nkind = \"target-blackhole\"\ntarget = \"t3\"\nat = \"4ms\"\n\n[expect]\nverify_errors = 0\nio_errors = 100000\n",
        &text[..at]
    );
    let sc3 = cx.tmp.join("adapter-secure-ec-3-dead.toml");
    std::fs::write(&sc3, three).map_err(|e| io(e.to_string()))?;
    let run = cx.run_image("adapter-secure-ec-3-dead", &fw, &["--scenario", &sc3.to_string_lossy()]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: ", "SC 0x81 DNR", "SC 0x80 DNR", "ec: volume 0: member 3 lost"])?;
    if run.count("0 errors (0 lost, 0 corrupt)") != 3 || run.count("; I/O errors 0,") != 0 {
        return fail("with 3 of 6 members lost: every job must see I/O errors and no wrong data", run);
    }
    Ok(())
}

/// Spares and rebuild: two members die, spares take their slots and are
/// rebuilt while verified I/O goes on, a scrub finds every stripe
/// consistent, then two more originals die and every read still comes
/// back right (the spares hold the right fragments). A second run flips
/// one byte of one parity fragment on a target's media: the scrub names
/// exactly that stripe.
fn adapter_ec_rebuild(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-ec-rebuild.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-ec-rebuild", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (3 jobs)"])?;
    for vol in 0..2 {
        // Members 1 and 4 died and were rebuilt onto spares 0 and 1; then
        // 0 and 2 died (after the scrub); 3 and 5 never.
        for (member, spare) in [(1, 0), (4, 1)] {
            for line in [
                format!("ec: volume {vol}: member {member} lost"),
                format!("ec: volume {vol}: rebuilding member {member} onto spare {spare} (32 stripes)"),
                format!("ec: volume {vol}: rebuild of member {member} complete: 32 stripes"),
            ] {
                if !run.stdout.contains(&line) {
                    return fail(format!("no `{line}`"), run);
                }
            }
        }
        for member in [0, 2] {
            if !run.stdout.contains(&format!("ec: volume {vol}: member {member} lost")) {
                return fail(format!("volume {vol}: member {member} was not marked lost after the rebuilds"), run);
            }
        }
        for member in [3, 5] {
            if run.stdout.contains(&format!("ec: volume {vol}: member {member} lost")) {
                return fail(format!("volume {vol}: member {member} (a live target) was marked lost"), run);
            }
        }
        // The scrub ran with every member healthy, after both rebuilds.
        let clean = format!("ec: volume {vol}: scrub done: 32 stripes checked, 0 mismatches (0 repaired), 0 skipped");
        let (Some(scrub), Some(rebuilt)) = (run.stdout.find(&clean), run.stdout.find(&format!("ec: volume {vol}: rebuild of member 4 complete"))) else {
            return fail(format!("volume {vol}: no `{clean}`"), run);
        };
        if scrub < rebuilt || run.stdout.find(&format!("ec: volume {vol}: member 0 lost")).is_some_and(|l| l < scrub) {
            return fail(format!("volume {vol}: the scrub must come after the rebuilds and before members 0 and 2 die"), run);
        }
        if run.stdout.contains(&format!("ec: volume {vol}: rebuild of member 1 stopped")) || run.stdout.contains("parity mismatch") {
            return fail(format!("volume {vol}: a rebuild stopped or the scrub found a mismatch"), run);
        }
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let n = |a: &Value, k: &str| a[k].as_u64().unwrap_or(0);
    let targets = doc["targets"].as_array().cloned().unwrap_or_default();
    let t = |name: &str| targets.iter().find(|t| t["name"] == name).cloned().unwrap_or(Value::Null);
    // The spares took every rebuilt fragment (2 volumes x 32 stripes
    // each) and then served reads for their slots.
    for spare in ["t6", "t7"] {
        if n(&t(spare), "writes") < 64 || n(&t(spare), "reads") == 0 {
            return fail(format!("spare {spare} must have been written (rebuild) and read: {}", t(spare)), run);
        }
    }
    if n(&doc["ec"], "errors") != 0 || n(&doc["ec"], "rebuilt_bytes") < 4 * 32 * 4096 {
        return fail(format!("EC engine counters: {}", doc["ec"]), run);
    }

    // Bit rot: one byte of parity fragment 0 of stripe 31 (the last) of
    // volume 1 (on member (4 + 31) mod 6 = 5: t5's namespace 2, byte
    // 31 x 4 KiB + 100), and one byte of data fragment 0 of stripe 30 (on
    // member 30 mod 6 = 0: t0, byte 30 x 4 KiB + 100): stripes no job
    // touches; no target dies.
    let text = std::fs::read_to_string(&sc).map_err(|e| io(format!("{sc}: {e}")))?;
    let Some(at) = text.find("[[faults]]") else { return Err(("the scenario has no [[faults]]".into(), None)) };
    let rot = format!(
        "{}[[faults]]\nkind = \"target-corrupt\"\ntarget = \"t5\"\nnsid = 2\noffset = \"127076\"\nat = \"1ms\"\n\n[[faults]]\nkind = \"target-corrupt\"\ntarget = \"t0\"\nnsid = 2\noffset = \"122980\"\nat = \"1ms\"\n\n[expect]\nverify_errors = 0\nio_errors = 0\nmin_ios = 100\n",
        // Shorter: the scrub right after the corruption, 20 ms of jobs.
        &text[..at]
            .replace("region = \"256KiB\"\nruntime", "region = \"224KiB\"\nruntime")
            .replace("scrub_at = \"140ms\"", "scrub_at = \"106ms\"")
            .replace("runtime = \"60ms\"", "runtime = \"20ms\"")
    );
    if !rot.contains("offset = \"256KiB\"\nregion = \"224KiB\"") {
        return Err(("the partial-stripe job's region was not narrowed".into(), None));
    }
    let sc2 = cx.tmp.join("adapter-ec-rebuild-rot.toml");
    std::fs::write(&sc2, rot).map_err(|e| io(e.to_string()))?;
    let run = cx.run_image("adapter-ec-rebuild-rot", &fw, &["--scenario", &sc2.to_string_lossy()]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "fault: target `t5` namespace 2: byte 127076 corrupted",
            "ec: volume 0: scrub done: 32 stripes checked, 0 mismatches (0 repaired), 0 skipped",
            "ec: volume 1: scrub done: 32 stripes checked, 2 mismatches (1 repaired), 0 skipped",
            "ec: volume 1: scrub: stripe 31: parity fragments 0b1 rewritten",
            "ec: volume 1: scrub: stripe 30 parity mismatch (parity fragments 0b11;",
            "ec: volume 1: scrub: stripe 30: every parity fragment disagrees, a data fragment may be bad: not rewritten",
            "ec: volume 1: scrub: stripe 31 parity mismatch (parity fragments 0b1; parity 0 is on member 5)",
        ],
    )?;
    if run.count("parity mismatch") != 2 || run.count("rewritten") != 2 || run.count("not rewritten") != 1 || run.stdout.contains("rebuilding member") {
        return fail("exactly two mismatching stripes, one rewritten, and no rebuild (no member was lost)", run);
    }
    // The repair put the byte back: read from t5's media by the simulator
    // at the end (no job writes that stripe, so only the scrub could).
    let c = run.stat("corruptions").and_then(|c| c.get(0)).cloned().unwrap_or_default();
    if c["offset"].as_u64() != Some(127076) || c["at_end"] != c["original"] || c["original"] == c["corrupted"] {
        return fail(format!("the corrupted parity byte was not restored by the scrub: {c}"), run);
    }
    // The corrupted data fragment was left alone (which fragment is bad
    // cannot be told from two disagreeing parities).
    let d = run.stat("corruptions").and_then(|c| c.get(1)).cloned().unwrap_or_default();
    if d["offset"].as_u64() != Some(122980) || d["at_end"] != d["corrupted"] {
        return fail(format!("the scrub wrote over a stripe it could not judge: {d}"), run);
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
    // Data digests are the DMA engines' CRC32C both ways (C2HData
    // checked, H2CData and in-capsule data sent): at least the data of
    // the >= 1000 4 KiB I/Os; and the targets found every one right.
    if doc["dma"]["bytes_crc"].as_u64().unwrap_or(0) < 1000 * 4096 {
        return fail("the DMA engines' CRC32C did not run the data digests", run);
    }
    for name in ["t0", "t1", "t2", "t3"] {
        if t(name, "digest_errors") != 0 {
            return fail(format!("target {name} got data with a wrong digest"), run);
        }
    }
    // Every data core that got one closed that connection (and recovered),
    // naming what was wrong.
    for kind in ["BadType", "UnknownCommand", "BadHlen", "BadPlen", "DataDigest"] {
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
    // The stall and the slow media happened and were ridden out (zero
    // verify or I/O errors above).
    if t("t3", "stalls") != 1 || t("t2", "slowdowns") != 1 || !run.stderr.contains("fault: target `t3` answers again") {
        return fail("target t3 stall or t2 slow media not seen", run);
    }
    Ok(())
}

/// The adapter's line-rate layout on an impaired network
/// (`targets/scenarios/adapter-lossy.toml`): 1% loss, 1% reordering and
/// 0.5% duplication for the whole run on both ports, with digests and
/// jumbo frames; verified 4 KiB and 128 KiB randrw. TCP must recover
/// every loss and drop every duplicate without tearing an association
/// down, and every PDU must reach both sides intact.
fn adapter_lossy(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-lossy.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-lossy", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0"])?;
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let sw = &doc["network"]["switch"];
    for (what, at_least) in [("lost", 50), ("reordered", 50), ("duplicated", 25)] {
        let n = sw[what].as_u64().unwrap_or(0);
        if n < at_least {
            return fail(format!("the switch {what} only {n} frames (expected at least {at_least}): the impairments did not happen"), run);
        }
    }
    if let Some(l) = run.stdout.lines().find(|l| l.contains("reconnecting") || l.contains("fatal transport error")) {
        return fail(format!("an association was torn down instead of TCP recovering: {l}"), run);
    }
    // Recovery is TCP's, bounded by the 5 ms minimum RTO and its backoff
    // (5 + 10 + 20 ms for a segment lost three times): no I/O may wait
    // anywhere near the 1 s I/O timeout (a socket stuck at the initial
    // 1 s RTO did).
    let worst = run
        .stdout
        .lines()
        .filter_map(|l| l.split("max=").nth(1))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .fold(0.0f64, f64::max);
    if worst == 0.0 || worst > 100_000.0 {
        return fail(format!("the slowest I/O took {worst} us (expected under 100 ms: TCP recovers within a few RTOs)"), run);
    }
    for t in doc["targets"].as_array().into_iter().flatten() {
        for key in ["digest_errors", "protocol_errors", "restarts"] {
            if t[key].as_u64().unwrap_or(0) != 0 {
                return fail(format!("target {} counts {key} {}", t["name"], t[key]), run);
            }
        }
        // Every target took part. How much each serves swings with where
        // the losses fall (a namespace whose segments were lost three
        // times waits 35 ms of RTOs): 57 to 773 reads per target in one
        // run, so the floor only says that I/O reached it.
        if t["writes"].as_u64().unwrap_or(0) < 10 || t["reads"].as_u64().unwrap_or(0) < 10 {
            return fail(format!("target {} served too little I/O ({} reads, {} writes)", t["name"], t["reads"], t["writes"]), run);
        }
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

/// A lost member that comes back (`targets/scenarios/adapter-ec-return.toml`,
/// no spares): t1 restarts, member 1 is lost; once t1 accepts a new
/// association the card rebuilds member 1 onto it in full under verified
/// I/O, and only then trusts it: after t0 and t2 die every read needs
/// t1's fragments, and every block still reads back right. The periodic
/// scrub runs while member 1 is out (it skips stripes, which once left
/// the repair context waiting for good: no rebuild then), and a pass
/// after the rebuild checks every stripe, clean.
fn adapter_ec_return(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-ec-return.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-ec-return", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "TOTAL (3 jobs)"])?;
    for vol in 0..2 {
        let lines = [
            format!("ec: volume {vol}: member 1 lost"),
            format!("ec: volume {vol}: scrub done: "),
            format!("ec: volume {vol}: member 1 (record 1) is back (association 2): rebuilding it in full (32 stripes)"),
            format!("ec: volume {vol}: rebuild of member 1 complete: 32 stripes"),
            format!("ec: volume {vol}: scrub done: 32 stripes checked, 0 mismatches (0 repaired), 0 skipped"),
            format!("ec: volume {vol}: member 0 lost"),
        ];
        // In this order: lost, scrubbed while out, back and rebuilt, a
        // clean full pass, then the other two die.
        let mut from = 0;
        for line in &lines {
            match run.stdout[from..].find(line.as_str()) {
                Some(at) => from += at,
                None => return fail(format!("volume {vol}: no `{line}` (after the lines before it)"), run),
            }
        }
        if run.stdout.contains(&format!("ec: volume {vol}: rebuild of member 1 stopped")) || run.stdout.contains("parity mismatch") {
            return fail(format!("volume {vol}: the rebuild stopped, or a scrub found a mismatch"), run);
        }
        // Every 3 ms after the pass at 100 ms: passes 1 to 3 at least.
        if !run.stdout.contains(&format!("ec: volume {vol}: scrub done: ")) || !run.stdout.lines().any(|l| l.contains(&format!("ec: volume {vol}: scrub done: ")) && l.ends_with("(pass 3)")) {
            return fail(format!("volume {vol}: no third scrub pass (scrub_every = 3ms)"), run);
        }
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let targets = doc["targets"].as_array().cloned().unwrap_or_default();
    let t1 = targets.iter().find(|t| t["name"] == "t1").cloned().unwrap_or(Value::Null);
    // The rebuild wrote t1 every stripe of both volumes.
    if t1["writes"].as_u64().unwrap_or(0) < 64 {
        return fail(format!("t1 must have been rewritten by the rebuild: {t1}"), run);
    }
    Ok(())
}

/// A card restart with a member that missed writes
/// (`targets/scenarios/adapter-ec-restart.toml`, EC 2+1, media kept with
/// `--target-media`): run 1 loses t1 for good mid-run and writes on
/// degraded; run 2, on the same media with every target up, must find
/// member 1 stale from the superblocks, rebuild it before trusting it,
/// scrub clean after the rebuild, and leave every written stripe's parity
/// consistent with its data (the simulator's own check of the media).
/// Run 2 writes only the first 64 KiB, so the stripes run 1 left are
/// judged as the restart found them. Runs 3 and 4 do the same with a
/// spare, which takes member 1's slot and must keep it after the restart.
fn adapter_ec_restart(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/adapter-ec-restart.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let media = cx.tmp.join("ec-restart-media");
    let _ = std::fs::remove_dir_all(&media);
    let dir = media.to_string_lossy().to_string();
    let run = cx.run_image("adapter-ec-restart-1", &fw, &["--scenario", &sc, "--target-media", &dir]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "ec: volume 0: member 1 lost", "target media: 3 namespace(s) written"])?;
    // t1 missed writes: the media hold stripes whose parity disagrees
    // with their data (what a restart must not trust).
    let scan = run.stat("ec_at_rest").and_then(|a| a.get(0)).cloned().unwrap_or_default();
    let n = |k: &str| scan[k].as_u64().unwrap_or(0);
    if scan["parity_checked"] != true || n("stripes_written") < 24 || n("stripes_inconsistent") == 0 {
        return fail(format!("run 1 must leave stripes t1 missed: {scan}"), run);
    }
    // (Its superblock lines are checked after run 2, whose media checks
    // come first: they are what fails without superblocks.)
    let first = run;
    // Run 2: no fault, writes to the first 64 KiB only.
    let text = std::fs::read_to_string(&sc).map_err(|e| io(format!("{sc}: {e}")))?;
    let Some(at) = text.find("[[faults]]") else { return Err(("the scenario has no [[faults]]".into(), None)) };
    let second = text[..at].replace("rw = \"randrw\"\nrwmixread = 30\n", "rw = \"randwrite\"\noffset = \"0\"\nregion = \"64KiB\"\n");
    if !second.contains("region = \"64KiB\"") {
        return Err(("the job of run 2 was not narrowed".into(), None));
    }
    let sc2 = cx.tmp.join("adapter-ec-restart-2.toml");
    std::fs::write(&sc2, format!("{second}[expect]\nverify_errors = 0\nio_errors = 0\nmin_ios = 50\n")).map_err(|e| io(e.to_string()))?;
    let run = cx.run_image("adapter-ec-restart-2", &fw, &["--scenario", &sc2.to_string_lossy(), "--target-media", &dir]).map_err(io)?;
    let _ = std::fs::remove_dir_all(&media);
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0", "target media: 3 namespace(s) loaded"])?;
    if run.stdout.contains("parity mismatch") {
        return fail("after the restart a scrub found stripes whose parity disagrees with their data (a stale member trusted)", run);
    }
    let scan = run.stat("ec_at_rest").and_then(|a| a.get(0)).cloned().unwrap_or_default();
    let n = |k: &str| scan[k].as_u64().unwrap_or(u64::MAX);
    if scan["parity_checked"] != true || n("stripes_written") < 24 || n("stripes_consistent") != n("stripes_written") || n("stripes_inconsistent") != 0 {
        return fail(format!("after the restart every written stripe's parity must match its data on the media: {scan}"), run);
    }
    // In this order: the superblocks say member 1 is stale, it is rebuilt
    // in full, then a scrub checks every stripe, clean.
    let lines = [
        "ec: volume 0: superblocks read: events 2",
        "ec: volume 0: member 1 is stale (lost as of events 2): lost, rebuilt before it is trusted",
        "ec: volume 0: started at events 3; members lost 0b10",
        "ec: volume 0: member 1 (record 1) is back",
        "ec: volume 0: rebuild of member 1 complete: 32 stripes",
        "ec: volume 0: superblocks updated: events 5, members lost 0b0",
        "ec: volume 0: scrub done: 32 stripes checked, 0 mismatches (0 repaired), 0 skipped",
    ];
    let mut from = 0;
    for line in lines {
        match run.stdout[from..].find(line) {
            Some(i) => from += i,
            None => return fail(format!("no `{line}` (after the lines before it)"), run),
        }
    }
    if run.stdout.contains("member 0 is") || run.stdout.contains("member 2 is") {
        return fail("a member that never missed a write was not trusted", run);
    }
    // Run 1 made a new volume and recorded the loss before writing on.
    need(first, &["ec: volume 0: new volume: no superblock on any member", "ec: volume 0: superblocks updated: events 2, members lost 0b10"])?;

    // With a spare (t3): run 3 rebuilds member 1 onto it after t1 dies;
    // run 4, every target up, must keep the spare in slot 1 (its
    // superblock says so), not the stale t1: no rebuild, scrub clean.
    let t3 = "[[targets]]\nname = \"t3\"\nip = \"10.0.1.13\"\nnqn = \"nqn.2026-12.io.dpusim:ecr3\"\nnamespaces = [{ size = \"132KiB\", block_size = 4096 }]\n\n[[storage]]";
    let spared = text
        .replacen("[[storage]]", t3, 1)
        .replacen("{ target = \"t2\" }], scrub_at", "{ target = \"t2\" }], spares = [{ target = \"t3\" }], scrub_at", 1)
        .replacen("runtime = \"10ms\"", "runtime = \"20ms\"", 1);
    if !spared.contains("spares = [{ target = \"t3\" }]") || !spared.contains("runtime = \"20ms\"") {
        return Err(("the spare variant of the scenario was not made".into(), None));
    }
    let (sc3, sc4) = (cx.tmp.join("adapter-ec-restart-3.toml"), cx.tmp.join("adapter-ec-restart-4.toml"));
    std::fs::write(&sc3, &spared).map_err(|e| io(e.to_string()))?;
    let Some(at) = spared.find("[[faults]]") else { return Err(("the scenario has no [[faults]]".into(), None)) };
    let fourth = spared[..at].replace("rw = \"randrw\"\nrwmixread = 30\n", "rw = \"randwrite\"\noffset = \"0\"\nregion = \"64KiB\"\n");
    std::fs::write(&sc4, format!("{fourth}[expect]\nverify_errors = 0\nio_errors = 0\nmin_ios = 50\n")).map_err(|e| io(e.to_string()))?;
    let run = cx.run_image("adapter-ec-restart-3", &fw, &["--scenario", &sc3.to_string_lossy(), "--target-media", &dir]).map_err(io)?;
    need(
        expect_code(run, 0)?,
        &["scenario passed", "verify errors: 0, I/O errors: 0", "ec: volume 0: rebuilding member 1 onto spare 0", "ec: volume 0: rebuild of member 1 complete: 32 stripes", "superblocks updated: events 4, members lost 0b0"],
    )?;
    let run = cx.run_image("adapter-ec-restart-4", &fw, &["--scenario", &sc4.to_string_lossy(), "--target-media", &dir]).map_err(io)?;
    let _ = std::fs::remove_dir_all(&media);
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "ec: volume 0: superblocks read: events 4",
            "ec: volume 0: member 1 is served by spare 0 (its superblock)",
            "ec: volume 0: started at events 5; members lost 0b0",
            "ec: volume 0: scrub done: 32 stripes checked, 0 mismatches (0 repaired), 0 skipped",
        ],
    )?;
    if run.stdout.contains("parity mismatch") || run.stdout.contains("rebuilding member") || run.stdout.contains("is stale") {
        return fail("after the restart the spare must serve slot 1 as it is (no rebuild, no stale member, scrub clean)", run);
    }
    let targets = run.stat("targets").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    let reads = |name: &str| targets.iter().find(|t| t["name"] == name).and_then(|t| t["reads"].as_u64()).unwrap_or(0);
    if reads("t3") < 32 {
        return fail(format!("the spare (t3) must serve slot 1's reads (the scrub's at least): {} reads", reads("t3")), run);
    }
    Ok(())
}

/// A hostile host on VF 3 (`targets/scenarios/hostile-host.toml`): every
/// action of the hostile host model once, each malformed thing answered
/// with a status the specification allows, bad doorbells with masked
/// error events, FLR and reset loops under I/O survived; VFs 1 and 2 run
/// verified I/O meanwhile with no error, their I/O and admin commands
/// within 2 ms.
fn hostile_host(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/hostile-host.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("hostile-host", &fw, &["--scenario", &sc, "--json", "-q"]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed"])?;
    let doc: Value = match serde_json::from_str(&run.stdout) {
        Ok(v) => v,
        Err(e) => return fail(format!("stdout is not JSON: {e}"), run),
    };
    let jobs = doc["jobs"].as_array().cloned().unwrap_or_default();
    let fns: Vec<u64> = jobs.iter().filter_map(|j| j["function"].as_u64()).collect();
    if fns != [2, 1] && fns != [1, 2] {
        return fail(format!("jobs on functions {fns:?} (expected 1 and 2)"), run);
    }
    for j in &jobs {
        if j["verify_errors"] != 0 || j["errors"] != 0 || j["total"]["ios"].as_u64().unwrap_or(0) < 200 || j["verify_checked"].as_u64().unwrap_or(0) == 0 {
            return fail(format!("job {} next to the hostile host: {} verify errors, {} I/O errors, {} I/Os", j["name"], j["verify_errors"], j["errors"], j["total"]["ios"]), run);
        }
    }
    let Some(h) = doc["hostile"].as_array().and_then(|a| a.first()).cloned() else { return fail("no hostile host in the report", run) };
    if h["violations"] != 0 || h["final_check"] != true {
        return fail(format!("hostile host: {} violations ({}), final check {}", h["violations"], h["first_violations"], h["final_check"]), run);
    }
    for a in dpu_targets::HOSTILE_ACTIONS {
        if h["actions"][a].as_u64() != Some(1) {
            return fail(format!("hostile action {a} done {} times (expected once)", h["actions"][a]), run);
        }
    }
    // What the firmware must have answered (a status per kind of fault).
    let statuses = h["statuses"].as_object().cloned().unwrap_or_default();
    for want in [
        "Invalid Command Opcode",
        "Invalid Field in Command",
        "Data Transfer Error",
        "Invalid Namespace or Format",
        "Invalid SGL Segment Descriptor",
        "Invalid Number of SGL Descriptors",
        "Data SGL Length Invalid",
        "SGL Descriptor Type Invalid",
        "PRP Offset Invalid",
        "LBA Out of Range",
        "Invalid Queue Identifier",
        "Invalid Queue Deletion",
    ] {
        if !statuses.keys().any(|k| k.ends_with(want)) {
            return fail(format!("the hostile host never got {want}: {statuses:?}"), run);
        }
    }
    if statuses.keys().any(|k| k.starts_with("no completion")) {
        return fail(format!("a malformed command was never answered: {statuses:?}"), run);
    }
    let events = h["events"].as_object().map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    if !events.iter().any(|e| e.contains("invalid doorbell write value")) || !events.iter().any(|e| e.contains("write to invalid doorbell register")) {
        return fail(format!("bad doorbells raised events {events:?} (expected both error kinds)"), run);
    }
    if h["events_masked"].as_u64().unwrap_or(0) == 0 || h["flrs"].as_u64() != Some(1) || h["reprobes"].as_u64().unwrap_or(0) < 3 {
        return fail(format!("masked events {}, FLRs {}, re-probes {}", h["events_masked"], h["flrs"], h["reprobes"]), run);
    }
    if h["others_admin_commands"].as_u64().unwrap_or(0) == 0 || h["others_admin_errors"] != 0 {
        return fail(format!("other functions' admin commands: {} sent, {} failed", h["others_admin_commands"], h["others_admin_errors"]), run);
    }
    Ok(())
}

/// Boot from NVMe-oF disks at power-on (`targets/scenarios/preos-boot.toml`):
/// UEFI-like drivers on the PF and VF 1 (polled, one I/O queue, PRPs)
/// while the card's connections come up and target t1 answers nothing for
/// its first 6 ms. Both controllers ready within CAP.TO (after t1 came
/// back: the card waits for its remote namespaces), LBA 0 and an 8 MiB
/// kernel read and checked block by block against the disk image.
fn preos_boot(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/preos-boot.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("preos-boot", &fw, &["--scenario", &sc, "--json", "-q"]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "fault: target `t1` stalls", "fault: target `t1` answers again"])?;
    let doc: Value = match serde_json::from_str(&run.stdout) {
        Ok(v) => v,
        Err(e) => return fail(format!("stdout is not JSON: {e}"), run),
    };
    let boots = doc["boot"].as_array().cloned().unwrap_or_default();
    if boots.iter().filter_map(|b| b["function"].as_u64()).collect::<Vec<_>>() != [0, 1] {
        return fail(format!("{} boot reports (expected the PF's and VF 1's)", boots.len()), run);
    }
    let stall_end_us = 6_001.0;
    for b in &boots {
        let f = &b["function"];
        let num = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
        if !b["error"].is_null() {
            return fail(format!("boot of fn{f} failed: {}", b["error"]), run);
        }
        // 8 MiB from LBA 0 plus LBA 0 itself, 512-byte blocks.
        if b["bytes_read"].as_u64() != Some(8 << 20) || b["verify_checked"].as_u64() != Some(16_385) || b["verify_errors"] != 0 {
            return fail(format!("fn{f}: {} bytes read, {} blocks checked, {} wrong", b["bytes_read"], b["verify_checked"], b["verify_errors"]), run);
        }
        let ready = num("ready_us") - num("enabled_us");
        if !(ready > 0.0 && ready < num("cap_to_ms") * 1000.0 && num("ready_us") < 50_000.0) {
            return fail(format!("fn{f}: ready {ready:.1} us after CC.EN, at {:.1} us (CAP.TO {} ms)", num("ready_us"), num("cap_to_ms")), run);
        }
        // The controllers were enabled while the card was still connecting,
        // and both waited for the slow target (the PF has a disk on it too).
        if num("enabled_us") > 2_000.0 || num("ready_us") < stall_end_us {
            return fail(format!("fn{f}: CC.EN at {:.1} us, ready at {:.1} us (t1 answered at {stall_end_us} us)", num("enabled_us"), num("ready_us")), run);
        }
        if b["retries"] != 0 || num("lba0_us") > num("done_us") {
            return fail(format!("fn{f}: {} retries, LBA 0 at {:.1} us, done at {:.1} us", b["retries"], num("lba0_us"), num("done_us")), run);
        }
    }
    let Some(stats) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let t1 = stats["targets"].as_array().and_then(|v| v.iter().find(|t| t["name"] == "t1")).cloned().unwrap_or_default();
    if t1["stalls"] != 1 || t1["bytes_read"].as_u64().unwrap_or(0) < 8 << 20 {
        return fail(format!("target t1: {} stalls, {} bytes read (expected 1 stall, the 8 MiB VF 1 booted from)", t1["stalls"], t1["bytes_read"]), run);
    }
    Ok(())
}

/// Wireshark's NVMe/TCP dissector reads a capture of the firmware and a
/// target model talking with header and data digests: every PDU type,
/// CCCIDs, DATAO/DATAL, R2T answers, ICResp MAXH2CDATA and every digest
/// checked by tshark (installs the Debian package on first use).
fn tshark_cross_check(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    crate::tshark::ensure_tshark().map_err(io)?;
    let sc = root().join("targets/scenarios/tshark-nvme-tcp.toml").to_string_lossy().to_string();
    let pcap = cx.tmp.join("tshark.pcap");
    let eth0 = cx.tmp.join("tshark-eth0.pcap");
    let _ = std::fs::remove_file(&eth0);
    let pcap_s = pcap.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("tshark", &fw, &["--scenario", &sc, "-q", "--pcap", &pcap_s]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0"])?;
    let d = match crate::tshark::dissect(&eth0, 4420) {
        Ok(d) => d,
        Err(e) => return fail(e, run),
    };
    // The target model offers MAXH2CDATA = 128 KiB (nvmf_target/session.rs)
    // and lists its subsystem in its discovery log.
    match crate::tshark::check_session(&d, 4420, 128 * 1024, ("nqn.2026-11.io.dpusim:t0", "10.0.0.10", "4420")) {
        Ok(summary) => {
            eprintln!("          tshark: {summary}");
            Ok(())
        }
        Err(e) => fail(format!("{e} (capture {})", eth0.display()), run),
    }
}

/// The fault campaign (`cargo xtask faults`): every fault kind under
/// verified I/O; nothing lost or corrupt, the card alive after each.
fn fault_campaign(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let runs = crate::faults::campaign(&cx.built, None).map_err(io)?;
    let failed: Vec<String> = runs.iter().filter(|r| !r.survived).map(|r| format!("{}: {}", r.name, r.why)).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err((failed.join("; "), None))
    }
}

/// The adapter against the Linux kernel's NVMe/TCP target in a QEMU guest
/// (installs QEMU and the guest kernel from Debian on first use).
fn interop_linux(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    // The guest was started when the suite began (it boots for ~30 s
    // under TCG while the other tests run).
    let r = match cx.guest.lock().map(|mut g| g.take()) {
        Ok(Some(early)) => {
            let _ = early.go.send(());
            early.thread.join().unwrap_or_else(|_| Err("the interop thread panicked".into()))
        }
        _ => crate::interop::adapter_against_linux(&cx.built.dpusim, &cx.built.firmware),
    };
    r.map(|_| ()).map_err(|e| (e, None))
}

/// The card's NVMe/TCP target against the Linux kernel's NVMe/TCP host
/// in a QEMU guest (`interop/initiator.rs`).
fn interop_linux_initiator(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    crate::interop::initiator::linux_against_card(&cx.built.dpusim, &cx.built.firmware).map(|_| ()).map_err(|e| (e, None))
}

/// Two cards (two dpusim processes bridged over UDP), each the other's
/// NVMe/TCP target while its adapter verifies I/O on the other
/// (`interop/two_cards.rs`).
fn interop_two_cards(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    crate::interop::two_cards::two_cards(&cx.built.dpusim, &cx.built.firmware).map(|_| ()).map_err(|e| (e, None))
}

/// The target scenario boots without a peer: every subsystem listens on
/// its port, the local SSD behind one is brought up, no warning.
fn target_boot(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/interop-linux-initiator.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("target-boot", &fw, &["--scenario", &sc, "--run-on", "--max-time", "10ms"]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "nvmf target: nqn.2026-12.io.dpusim:ram listening on 10.0.0.1:4420 (port 0), 1 namespace(s)",
            "nvmf target: nqn.2026-12.io.dpusim:ssd listening on 10.0.0.1:4420 (port 0), 1 namespace(s)",
            "nvmf target: discovery service listening on 10.0.0.1:8009 (port 0)",
            "ssd 0: up:",
        ],
    )?;
    no_warnings(&run)?;
    Ok(())
}

/// The interop guest booted by a thread of its own, which also runs the
/// scenarios against it when told to: QEMU dies with the thread that
/// started it (`--pdeathsig`), so that thread lives until the end.
struct EarlyGuest {
    go: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Result<String, String>>,
}

impl EarlyGuest {
    fn start(dpusim: PathBuf, firmware: PathBuf) -> EarlyGuest {
        let (go, wait) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let guest = crate::interop::Guest::boot()?;
            // A closed channel (the suite ended early): the guest stops.
            wait.recv().map_err(|_| "not run".to_string())?;
            guest.run_adapter(&dpusim, &firmware)
        });
        EarlyGuest { go, thread }
    }
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


/// `--max-time` ending a scenario before its jobs finished is a failure
/// with its own status (5) and a message, not a pass.
fn scenario_time_limit(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/ram-verify.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("sc-timeout", &fw, &["--scenario", &sc, "-q", "--max-time", "1ms"]).map_err(io)?;
    let run = need(expect_code(run, 5)?, &["ended the run before the scenario's jobs finished", "(exit status 5)"])?;
    if run.stat("exit_code").and_then(Value::as_u64) != Some(5) {
        return fail("stats JSON exit_code is not 5", run);
    }
    Ok(())
}

/// `dpusim | head`: a closed stdout ends printing quietly (no panic, no
/// backtrace); the run finishes and writes its stats.
fn closed_stdout(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let stats = cx.tmp.join("closed-stdout.json");
    let _ = std::fs::remove_file(&stats);
    let mut c = Command::new(&cx.built.dpusim);
    c.arg("--elf").arg(&cx.built.firmware).args(["--max-time", "1500us", "--stats-json"]).arg(&stats);
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| io(format!("cannot run {}: {e}", show(&c))))?;
    drop(child.stdout.take()); // the reader goes away at once, like `head` would
    let out = child.wait_with_output().map_err(|e| io(e.to_string()))?;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        stats: std::fs::read_to_string(&stats).ok().and_then(|s| serde_json::from_str(&s).ok()),
    };
    if run.stderr.contains("panicked") || run.stderr.contains("Broken pipe") {
        return fail("dpusim panicked on a closed stdout", run);
    }
    let run = expect_code(run, 0)?;
    if run.stat("sim_time_ns").and_then(Value::as_u64) != Some(1_500_000) {
        return fail("no stats JSON of the whole run", run);
    }
    Ok(())
}

/// `--json` prints one valid JSON document on stdout whatever else is on:
/// the stats without a scenario, the report with one.
fn json_output(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let fw = cx.built.firmware.clone();
    let folded = cx.tmp.join("json.folded").to_string_lossy().to_string();
    let run = cx.run_image("json-boot", &fw, &["--json", "--max-time", "1ms", "--profile", &folded, "--trace-hart", "0", "--trace-limit", "5"]).map_err(io)?;
    let run = expect_code(run, 0)?;
    let doc: Value = match serde_json::from_str(&run.stdout) {
        Ok(v) => v,
        Err(e) => return fail(format!("stdout is not JSON: {e}"), run),
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            for k in ["host_seconds", "mips", "jit"] {
                o.remove(k);
            }
        }
        v
    };
    if run.stats.as_ref().map(strip) != Some(strip(&doc)) {
        return fail("--json without a scenario must print the --stats-json object", run);
    }
    if !run.stderr.contains("role data-plane reactor") || !run.stderr.contains("outcome: time limit") {
        return fail("the firmware log and the summary belong on stderr with --json", run);
    }
    let sc = root().join("targets/scenarios/pf-randread-qd1.toml").to_string_lossy().to_string();
    let run = expect_code(cx.run_image("json-scenario", &fw, &["--json", "--scenario", &sc, "--profile", &folded]).map_err(io)?, 0)?;
    match serde_json::from_str::<Value>(&run.stdout) {
        Ok(v) if v.get("jobs").is_some() => Ok(()),
        Ok(v) => fail(format!("no `jobs` in the report: {}", v.to_string().chars().take(200).collect::<String>()), run),
        Err(e) => fail(format!("stdout is not JSON: {e}"), run),
    }
}

/// Output files that cannot be written are refused before the run.
fn unwritable_outputs(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let fw = cx.built.firmware.to_string_lossy().to_string();
    for opt in ["--stats-json", "--trace", "--profile", "--trace-out", "--pcap"] {
        let bad = "/nonexistent-dir/out.file";
        let t = Instant::now();
        let mut c = Command::new(&cx.built.dpusim);
        c.args(["--elf", &fw, "--max-time", "200ms", opt, bad]);
        if opt == "--trace-out" {
            c.args(["--trace-hart", "0"]);
        }
        let out = c.output().map_err(|e| io(e.to_string()))?;
        let run = Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into(), stats: None };
        let run = expect_code(run, 2)?;
        let want = if opt == "--pcap" { format!("{opt} /nonexistent-dir/out-eth0.pcap") } else { format!("{opt} {bad}: cannot write") };
        let run = need(run, &[&want])?;
        if !run.stdout.is_empty() || t.elapsed().as_secs_f64() > 5.0 {
            return fail(format!("{opt}: the run started before the path was checked"), run);
        }
    }
    Ok(())
}

/// Without a limit dpusim says how to stop it; Ctrl-C (SIGINT) ends the
/// run with the summary printed, stats written and status 6.
fn interrupt(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let stats = cx.tmp.join("interrupt.json");
    let _ = std::fs::remove_file(&stats);
    let mut c = Command::new(&cx.built.dpusim);
    c.arg("--elf").arg(&cx.built.firmware).args(["-q", "--stats-json"]).arg(&stats);
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = c.spawn().map_err(|e| io(format!("cannot run {}: {e}", show(&c))))?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().map_err(|e| io(e.to_string()))?;
    if !st.success() {
        return Err(io("kill -INT failed".into()));
    }
    let out = child.wait_with_output().map_err(|e| io(e.to_string()))?;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        stats: std::fs::read_to_string(&stats).ok().and_then(|s| serde_json::from_str(&s).ok()),
    };
    let run = need(expect_code(run, 6)?, &["Ctrl-C stops it", "outcome: interrupted", "(exit status 6)"])?;
    if run.stat("outcome").and_then(Value::as_str) != Some("interrupted") || run.stat("sim_time_ns").and_then(Value::as_u64).unwrap_or(0) == 0 {
        return fail("no stats JSON of the interrupted run", run);
    }
    Ok(())
}

const TESTS: &[(&str, Check)] = &[
    ("boot: all 80 harts report their role", boot_all_roles),
    ("determinism: identical stats and logs", determinism),
    ("atomics: amoadd and lr/sc counters on 80 harts", atomics),
    ("critical-section across 80 harts", critical_section),
    ("accelerator drivers: TRNG, crypto engines (IEEE 1619 vector), DMA CRC32C", accel_drivers),
    ("erasure coding: the engine's parity equals ISA-L's ec_encode_data (live libisal), rebuilds", isal::ec_parity_equals_isal),
    ("timer interrupt, IPIs, wfi wake-up", timer_ipi),
    ("defmt: 80 harts logging at once", log_storm),
    ("fault report for an illegal instruction", fault_report),
    ("panic is logged and fails the run", panic_is_reported),
    ("chip variant with moved addresses boots", moved_chip_boots),
    ("bad input: clear errors, no panic", bad_inputs),
    ("boot configuration the firmware rejects: exit 7 with its reason", config_rejected),
    ("exit status 5 when --max-time ends a scenario early", scenario_time_limit),
    ("closed stdout (dpusim | head): quiet exit, stats written", closed_stdout),
    ("--json: valid JSON on stdout, everything else on stderr", json_output),
    ("unwritable output paths refused before the run", unwritable_outputs),
    ("Ctrl-C: summary, stats, exit status 6", interrupt),
    ("instruction trace with symbols", instruction_trace),
    ("ram-verify: 8 VFs, verified 4 KiB randrw", ram_verify),
    ("target-verify: NVMe/TCP initiator models -> the card's NVMe/TCP target -> 4 local SSDs, both ports; one SSD fails", target_verify),
    ("target-digest: NVMe/TCP initiator model with header and data digests -> the card's target: in-capsule and R2T writes (16, 128 KiB), verify", target_digest),
    ("target-bad-input: initiator models -> the card's target: malformed PDU (C2HTermReq), bad data digest (0h/22h), Disconnect, Keep Alive timeout; the faulted host recovers, the other sees nothing, verify", target_bad_input),
    ("initiator-verify: NVMe/TCP initiator model -> target model, verified 4 KiB (in capsule) and 128 KiB (R2T) randrw", initiator_verify),
    ("local-ssd-verify: 4 VFs on local NVMe SSDs (4 KiB, 128 KiB PRP lists, AES-XTS); one SSD fails mid-run", local_ssd_verify),
    ("I/O trace: stages of every I/O in order (RAM, NVMe/TCP)", io_trace),
    ("adapter-verify: 4 VFs over NVMe/TCP to 4 targets (4 KiB, 32 KiB via R2T)", adapter_verify),
    ("adapter-secure: AES-XTS namespaces (remote, RAM), ciphertext on the targets' media", adapter_secure),
    ("adapter-secure-ec: AES-XTS on EC 4+2 over 6 targets, two targets die, verified", adapter_secure_ec),
    ("adapter-ec-rebuild: two members die, spares rebuilt under verified I/O, scrub clean, two more die; bit rot found by scrub", adapter_ec_rebuild),
    ("adapter-ec-restart: a member lost before a card restart is found stale by the superblocks and rebuilt before it is trusted; media parity consistent; a spare keeps its slot", adapter_ec_restart),
    ("adapter-ec-return: a lost member comes back, is rebuilt in place under verified I/O, periodic scrub clean after it, then it carries reads when two others die", adapter_ec_return),
    ("adapter-faults: loss, bad PDUs, target restart, link flap, stall, slow media", adapter_faults),
    ("adapter-lossy: both ports, 16 cores, MTU 9000, digests under 1% loss, 1% reordering, 0.5% duplication; verified 4 KiB and 128 KiB randrw, no association torn down", adapter_lossy),
    ("adapter-blackhole: a target stops answering; a target grants 4 queues", adapter_blackhole),
    ("management-rpc: JSON-RPC calls during verified I/O (every read-only method, errors, bounds, allow-list, token)", mgmt::management_rpc),
    ("management-iostat: bdev_get_iostat and dpu_get_function_iostat during and after fixed-size verified I/O on two functions: exact counts, checked against the host's report; bad names refused", mgmt::management_iostat),
    ("management-sriov: dpu_sriov_set_total_vfs refused while VF Enable is set, above the maximum, below a VF with a namespace; the host disables SR-IOV, 3 VFs offered, the host enables exactly 3 (4 refused)", mgmt::management_sriov),
    ("management-live: bdev_malloc_create + dpu_ns_attach to VF 1 under verified I/O on the PF; verified I/O on the new namespace; detach, delete", mgmt::management_live),
    ("adapter-crypto-live: accel_crypto_key_create + bdev_crypto_create on a run-time remote namespace, mapped to VF 1 under verified I/O on the PF; XTS ciphertext on the target, no key in answers or log; refusals", mgmt::adapter_crypto_live),
    ("adapter-ec-live: bdev_ec_create over three run-time remote namespaces under verified I/O on the PF; refusals; the volume mapped to VF 1 with verified I/O; delete refused while mapped, then done, members free again", mgmt::adapter_ec_live),
    ("adapter-attach-live: bdev_nvme_attach_controller under verified I/O on the PF; its namespace mapped to VF 1 with verified I/O over NVMe/TCP; detach refused while mapped; failed attaches leave nothing", mgmt::adapter_attach_live),
    ("live-settings: dpu_set_port / dpu_nvme_set_options / dpu_port_set_options / dpu_mgmt_set under verified I/O; a controller attached after a port address change connects from the new address with the new digests; busy and bad input refused; allow-list and token applied at once", mgmt::live_settings),
    ("target-live: no boot subsystem; nvmf_create_subsystem/add_ns/add_listener/add_host over JSON-RPC, refusals; an initiator model connects and verifies; a host not allowed is refused", mgmt::target_live),
    ("management-hostfwd: dpuctl fw update onto a flash-booted card, then its trial boot", secure_boot::mgmt_fw_update),
    ("management-hostfwd: dpuctl's client through dpusim --hostfwd (wall-clock paced, bounded, sim killed after)", mgmt::hostfwd_dpuctl),
    ("fault campaign: every fault kind, nothing lost or corrupt", fault_campaign),
    ("hostile host: VF 3 misbehaves in every way, VFs 1 and 2 verified and unaffected", hostile_host),
    ("pre-OS boot: UEFI-like reads of LBA 0 and a kernel at power-on, one target slow to answer", preos_boot),
    ("tshark: Wireshark dissects the NVMe/TCP capture (digests, CCCID, DATAO/DATAL, R2T)", tshark_cross_check),
    ("interop: adapter against Linux nvmet-tcp in QEMU (plain; digests + AES-XTS, ciphertext only on the wire)", interop_linux),
    ("target-boot: NVMe/TCP target subsystems and the discovery service listen on every data-plane core (RAM and local SSD namespaces)", target_boot),
    ("interop: the card's NVMe/TCP target for Linux nvme-tcp in QEMU (nvme discover on 8009, RAM and SSD subsystems, dd O_DIRECT read-back, digests, R2T writes, discard, second controller, allow-list refusal)", interop_linux_initiator),
    ("interop: two cards bridged over UDP, each the other's NVMe/TCP target while its adapter verifies I/O on the other", interop_two_cards),
    ("secure boot: a flash image boots (ROM, bootloader, slot A, configuration from flash)", secure_boot::flash_boot),
    ("secure boot: tampered, unsigned, wrong-key, rolled-back images refused; fallback to slot B", secure_boot::bad_images),
    ("secure boot: trial boot confirms itself; a crashing trial image is reverted", secure_boot::trial_boot),
    ("config in flash: newest valid copy, CRC fallback, none", secure_boot::config_copies),
    ("config in flash: the management server starts from it (JSON-RPC on a flash-booted card)", secure_boot::flash_management),
    ("config in flash: NVMe/TCP target subsystems served from it; initiator verify; nvmf_get_subsystems", secure_boot::flash_target),
    ("config in flash: the SR-IOV VF count set through the API is saved and offered at the next boot; the host enables exactly that many (4 refused)", secure_boot::sriov_persist),
    ("config in flash: live changes (RAM block devices, mappings, target subsystems) are saved and made again at the next boot", secure_boot::live_changes_persist),
    ("config in flash: a remote controller attached at run time is saved, attached and mapped again at the next boot", secure_boot::live_controllers_persist),
    ("config in flash: an EC volume made at run time is saved and made again from its superblocks at the next boot, mapped, verified I/O", secure_boot::live_ec_persist),
    ("config in flash: port address, initiator defaults, TCP RTO and management rules changed live are saved and in force at the next boot", secure_boot::live_settings_persist),
    ("config in flash: a crypto key and crypto device made at run time are saved (key wrapped) and made, unwrapped and mapped again at the next boot", secure_boot::live_crypto_persist),
    ("config in flash: encrypted namespaces, keys wrapped with the OTP device key (none in the clear in flash; ciphertext at rest; another device key refuses them)", secure_boot::flash_keys),
    ("firmware update from the host: NVMe download + commit, trial boot, confirmed; a tampered image refused", secure_boot::host_update),
    ("firmware update from the host: power cuts swept over download, commit, first boot and confirmation leave a card booting a signed image with its configuration", secure_boot::update_power_cut_sweep),
    ("firmware update from the host: activation without reset (011b): verified I/O on the PF and on 2 VFs (one on an NVMe/TCP target) stalls while CSTS.PP is set, then goes on under the new image", secure_boot::host_activate_now),
    ("firmware update from the host: commit actions 010b and 011b without a download act on the slot's image (011b on the running slot withdraws the pending one)", secure_boot::host_commit_existing),
];

/// Workspace crates that are not host-testable (firmware, bare-metal).
const NOT_HOST: &[&str] = &["dpu-fw", "dpu-fw-tests", "dpu-rt", "dpu-bench-bare", "dpu-bootloader"];

/// Host test crates: the workspace's packages (from `cargo metadata`) less [`NOT_HOST`].
fn host_crates() -> Result<Vec<String>, String> {
    let mut c = build::cargo();
    c.args(["metadata", "--no-deps", "--format-version", "1"]).current_dir(root());
    let out = c.output().map_err(|e| format!("cannot run {}: {e}", show(&c)))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", show(&c), String::from_utf8_lossy(&out.stderr)));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut v: Vec<String> = doc["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| !NOT_HOST.contains(n))
        .map(String::from)
        .collect();
    v.sort();
    Ok(v)
}

/// `cargo xtask test --list`.
pub fn list() -> Result<(), String> {
    println!("host test crates (`--only NAME` runs `cargo test -p NAME`):");
    for c in host_crates()? {
        println!("  {c}");
    }
    println!("system tests (`--only TEXT` runs those whose name contains TEXT):");
    for (name, _) in TESTS {
        println!("  {name}");
    }
    Ok(())
}

/// What `--only` selects: host crates named exactly, system tests whose
/// name contains a given text. Every name must select something.
struct Selection {
    /// `None`: the whole workspace.
    host: Option<Vec<String>>,
    system: Vec<&'static str>,
}

fn select(only: Option<&str>, no_host: bool) -> Result<Selection, String> {
    let Some(only) = only else {
        return Ok(Selection { host: if no_host { Some(Vec::new()) } else { None }, system: TESTS.iter().map(|t| t.0).collect() });
    };
    let crates = host_crates()?;
    let mut host = Vec::new();
    let mut system: Vec<&'static str> = Vec::new();
    for want in only.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let is_crate = crates.iter().any(|c| c == want);
        let tests: Vec<&'static str> = TESTS.iter().map(|t| t.0).filter(|n| n.contains(want)).collect();
        if !is_crate && tests.is_empty() {
            let mut names = String::new();
            for c in &crates {
                names.push_str(&format!("\n  {c}"));
            }
            for (n, _) in TESTS {
                names.push_str(&format!("\n  {n}"));
            }
            return Err(format!("--only `{want}` matches no host test crate and no system test; there are:{names}"));
        }
        if is_crate && !no_host && !host.iter().any(|h| h == want) {
            host.push(want.to_string());
        }
        for t in tests {
            if !system.contains(&t) {
                system.push(t);
            }
        }
    }
    // Keep the suite's order.
    system.sort_by_key(|n| TESTS.iter().position(|t| t.0 == *n));
    if host.is_empty() && system.is_empty() {
        return Err(format!("--only `{only}` with --no-host selects nothing to run"));
    }
    Ok(Selection { host: Some(host), system })
}

/// Tests that run one at a time after the others: paced by the wall
/// clock, timing a signal, or running several simulators themselves.
const ALONE: &[&str] = &["management-hostfwd", "Ctrl-C", "interop:", "fault campaign", "chip variant"];

/// Prints one test's result (and the log of a failed run) in one piece.
fn report(name: &'static str, t: Instant, r: Result<(), (String, Option<Run>)>, failed: &Mutex<Vec<&'static str>>) {
    let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
    match r {
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
            failed.push(name);
        }
    }
}

/// The vendored smoltcp's own unit tests, with those of our patches (the
/// data-plane fast paths `Socket::fast_rx` / `fast_tx` checked against
/// smoltcp's `process` / `dispatch`; `firmware/vendor/README.md`). The crate
/// is a `[patch]`, not a workspace member (it is excluded, so it builds as a
/// workspace of its own, with its own lock file and target folder).
fn vendored_smoltcp_tests() -> Result<(), String> {
    let mut c = build::cargo();
    c.args(["test", "--lib", "--locked", "--manifest-path", "firmware/vendor/smoltcp/Cargo.toml", "--target-dir"]);
    c.arg(root().join("target/vendor-smoltcp"));
    build::run(c)
}

/// Runs the selected tests: `jobs` system tests at a time (default: one
/// per CPU; each is one single-threaded simulator), then [`ALONE`] ones.
pub fn test_all(only: Option<&str>, no_host: bool, jobs: Option<usize>) -> Result<(), String> {
    let t0 = Instant::now();
    let sel = select(only, no_host)?;
    let built = build::build_all_for_tests()?;
    if sel.host.as_ref().is_none_or(|h| !h.is_empty()) {
        // Host tests; the simulator's NVMe tests boot the image just built.
        let mut c = build::cargo();
        c.arg("test");
        match &sel.host {
            None => {
                c.arg("--workspace");
                for n in NOT_HOST {
                    c.args(["--exclude", n]);
                }
            }
            Some(crates) => {
                for n in crates {
                    c.args(["-p", n]);
                }
            }
        }
        c.env("DPU_FW_ELF", &built.firmware);
        eprintln!("xtask: {}", show(&c));
        let st = c.status().map_err(|e| format!("cannot run cargo test: {e}"))?;
        if !st.success() {
            return Err("host tests failed".into());
        }
        // Every parser of hostile input, fuzzed briefly (stable engine;
        // the test build above built its binary), with the whole host
        // suite or `--only dpu-fuzz`.
        if sel.host.as_ref().is_none_or(|h| h.iter().any(|c| c == "dpu-fuzz")) {
            crate::fuzz::smoke()?;
        }
        if sel.host.is_none() {
            vendored_smoltcp_tests()?;
        }
    }
    if sel.system.is_empty() {
        return Ok(());
    }
    let tmp = root().join("target/systest");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    // The interop test's guest boots (under TCG, ~30-45 s) while the
    // other tests run.
    let interop = TESTS.iter().map(|t| t.0).find(|n| n.starts_with("interop:"));
    let guest = interop.filter(|n| sel.system.contains(n)).map(|_| EarlyGuest::start(built.dpusim.clone(), built.firmware.clone()));
    let guest = Mutex::new(guest);
    if sel.system.iter().any(|n| n.starts_with("secure boot") || n.starts_with("firmware update") || n.starts_with("config in flash")) {
        // Made once, before tests that sign images run side by side.
        crate::flash::signing_key(None)?;
    }
    let chosen: Vec<(usize, &str, Check)> = TESTS.iter().enumerate().filter(|(_, t)| sel.system.contains(&t.0)).map(|(i, t)| (i, t.0, t.1)).collect();
    let (alone, shared): (Vec<_>, Vec<_>) = chosen.iter().partition(|(_, n, _)| ALONE.iter().any(|a| n.starts_with(a)));
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    eprintln!("\nfirmware tests under the simulator ({jobs} at a time, then {} alone):", alone.len());
    let failed = Mutex::new(Vec::new());
    let run_one = |&(i, name, f): &(usize, &'static str, Check)| {
        let cx = Ctx { built: &built, tmp: tmp.join(format!("t{i:02}")), guest: &guest };
        let t = Instant::now();
        let r = std::fs::create_dir_all(&cx.tmp).map_err(|e| io(format!("{}: {e}", cx.tmp.display()))).and_then(|()| f(&cx));
        report(name, t, r, &failed);
    };
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(shared.len()) {
            s.spawn(|| {
                while let Some(t) = shared.get(next.fetch_add(1, Ordering::Relaxed)) {
                    run_one(*t);
                }
            });
        }
    });
    alone.iter().for_each(|t| run_one(*t));
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    let ran = chosen.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runs_what_it_names() {
        let s = select(Some("ram-verify"), false).unwrap();
        assert_eq!(s.host, Some(Vec::new()), "no host crate named: no host tests");
        assert_eq!(s.system, vec!["ram-verify: 8 VFs, verified 4 KiB randrw"]);
        let s = select(Some("dpu-targets"), false).unwrap();
        assert_eq!(s.host, Some(vec!["dpu-targets".to_string()]));
        assert!(s.system.is_empty());
        let s = select(Some("adapter, dpu-sim"), false).unwrap();
        assert_eq!(s.host, Some(vec!["dpu-sim".to_string()]));
        assert!(s.system.len() >= 2 && s.system.iter().all(|n| n.contains("adapter")), "{:?}", s.system);
        let all = select(None, false).unwrap();
        assert_eq!((all.host, all.system.len()), (None, TESTS.len()));
    }

    #[test]
    fn an_unknown_name_is_an_error_listing_the_names() {
        let e = select(Some("nosuchtest"), false).map(|_| ()).unwrap_err();
        assert!(e.contains("`nosuchtest` matches no host test crate and no system test"), "{e}");
        assert!(e.contains("\n  dpu-targets") && e.contains("\n  ram-verify: 8 VFs"), "{e}");
        let e = select(Some("dpu-targets"), true).map(|_| ()).unwrap_err();
        assert!(e.contains("selects nothing"), "{e}");
        assert!(!host_crates().unwrap().iter().any(|c| NOT_HOST.contains(&c.as_str())));
    }
}
