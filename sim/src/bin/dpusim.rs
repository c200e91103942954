//! `dpusim`: runs a DPU firmware ELF on the simulated card.

use clap::Parser;
use dpu_sim::elf::Image;
use dpu_sim::exit;
use dpu_sim::{Machine, Outcome, SimConfig};
use dpu_targets::{Board, Chip};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(version, about = "Cycle-level simulator of the DPU card (runs the firmware ELF)")]
struct Cli {
    /// Chip description (targets/chips/*.toml).
    #[arg(long, value_name = "FILE", default_value_os_t = dpu_targets::default_chip_path())]
    chip: PathBuf,
    /// Board description (targets/boards/*.toml). Default: the board in
    /// targets/boards/ that carries the chip (dpu-card.toml for mppa80).
    #[arg(long, value_name = "FILE")]
    board: Option<PathBuf>,
    /// Firmware image (RV64 ELF), loaded directly. With --flash: the ELFs
    /// of the images in flash (symbols and log decoding; may be given
    /// several times, the one whose code runs is used).
    #[arg(long, value_name = "FILE", required_unless_present = "flash")]
    elf: Vec<PathBuf>,
    /// Boot from this SPI flash image (`cargo xtask flash` builds one):
    /// the boot ROM verifies the signed bootloader, which picks a signed
    /// firmware slot. What the card writes to its flash is written back
    /// to FILE when the run ends (the next run is the next boot).
    #[arg(long, value_name = "FILE")]
    flash: Option<PathBuf>,
    /// OTP fuses (little-endian 32-bit words: root key hash, lock,
    /// anti-rollback counter, device key), written back like the flash.
    /// Default: the --flash file with the extension `.otp`, if it exists
    /// (else blank fuses: an unprovisioned chip). With --elf alone: the
    /// fuses the chip starts with (not written back).
    #[arg(long, value_name = "FILE")]
    otp: Option<PathBuf>,
    /// Power-cut test: cut the power once this many bytes of flash program
    /// or erase are done (the operation in progress stops half way).
    #[arg(long, value_name = "BYTES", requires = "flash")]
    power_cut_after_flash_bytes: Option<u64>,
    /// Power-cut test: cut the power at this simulated time (e.g. 30ms).
    #[arg(long, value_name = "TIME", value_parser = dpu_targets::parse_time_ns, requires = "flash")]
    power_cut_at: Option<u64>,
    /// Keep the target models' media in DIR across runs: each namespace
    /// is loaded from `DIR/<target>.ns<nsid>.media` at start if the file
    /// exists and written back when the run ends (a second run is a
    /// restart with the data the first one left).
    #[arg(long, value_name = "DIR", requires = "scenario")]
    target_media: Option<PathBuf>,
    /// Stop after this many simulated core cycles.
    #[arg(long, value_name = "N")]
    max_cycles: Option<u64>,
    /// Stop after this much simulated time, e.g. 500us, 2ms, 1s.
    #[arg(long, value_name = "TIME", value_parser = dpu_targets::parse_time_ns)]
    max_time: Option<u64>,
    /// Scenario: host workload, storage configuration, expected outcome
    /// (targets/scenarios/*.toml).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Print JSON on stdout and nothing else: the scenario's workload
    /// report (fio --output-format=json style), or the run's statistics
    /// (as --stats-json) without a scenario or report. The firmware log and
    /// every table go to stderr.
    #[arg(long)]
    json: bool,
    /// Write run statistics as JSON.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// At the end, report every place in card memory (SMEM, DDR) that
    /// holds these bytes (hex; repeatable): an audit of where a secret,
    /// such as a key sent over the management API, was left.
    #[arg(long, value_name = "HEX", value_parser = parse_hex_bytes)]
    find_bytes: Vec<Vec<u8>>,
    /// Scheduling quantum in cycles.
    #[arg(long, value_name = "CYCLES", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    quantum: u64,
    /// Do not print firmware log lines (the summary is still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Record an instruction trace of this hart (see --trace-limit).
    #[arg(long, value_name = "HART")]
    trace_hart: Option<u32>,
    /// Instructions to record with --trace-hart.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    trace_limit: usize,
    /// Write the instruction trace here instead of stderr.
    #[arg(long, value_name = "FILE")]
    trace_out: Option<PathBuf>,
    /// Write a per-I/O trace (Chrome/Perfetto JSON: open in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Most I/Os recorded with --trace.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    trace_ios: usize,
    /// Wait for a GDB connection on this address (e.g. 127.0.0.1:1234)
    /// before running; every hart is a thread.
    #[arg(long, value_name = "ADDR")]
    gdb: Option<String>,
    /// Profile cycles per function; write folded stacks (flamegraph input) here.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Harts to profile: all, data, control, or a list like 16,17.
    #[arg(long, value_name = "SET", default_value = "all")]
    profile_harts: String,
    /// Capture every DPU port's frames: FILE.pcap becomes FILE-eth0.pcap,
    /// FILE-eth1.pcap (Wireshark/tshark; NVMe/TCP decodes on port 4420).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Join a real peer's Ethernet segment over UDP in QEMU `-netdev dgram`
    /// format: udp:LOCAL_ADDR:LOCAL_PORT:REMOTE_ADDR:REMOTE_PORT. Simulated
    /// time is then paced to wall-clock time.
    #[arg(long, value_name = "SPEC", value_parser = clap::value_parser!(dpu_sim::net::bridge::BridgeSpec))]
    bridge: Option<dpu_sim::net::bridge::BridgeSpec>,
    /// Forward a host TCP port to the card's management server (the
    /// scenario's [management]), QEMU `hostfwd` style: tcp:ADDR:PORT
    /// (port 0 picks a free one; dpusim prints it). Simulated time is then
    /// paced to wall-clock time, and the run goes on after the scenario
    /// ends, until Ctrl-C or --max-time (the exit status is the scenario's).
    #[arg(long, value_name = "SPEC", value_parser = dpu_sim::net::hostfwd::parse_spec)]
    hostfwd: Option<std::net::SocketAddr>,
    /// Keep the card running after the scenario's host work ends (its
    /// verdict is kept), until Ctrl-C or --max-time: a card that serves a
    /// bridged peer (e.g. the NVMe/TCP target for a Linux initiator).
    #[arg(long)]
    run_on: bool,
    /// Run an image built for a different chip layout anyway.
    #[arg(long)]
    ignore_chip_mismatch: bool,
    /// Interpreter only: do not compile hot code to host code (results are
    /// identical either way; this only changes simulator speed).
    #[arg(long)]
    no_jit: bool,
    /// Interpreted runs of a straight-line body before it is compiled.
    #[arg(long, value_name = "N", default_value_t = dpu_sim::machine::DEFAULT_JIT_THRESHOLD,
          value_parser = clap::value_parser!(u32).range(1..))]
    jit_threshold: u32,
    /// Stop with a fault report when an exception is raised inside the
    /// firmware's exception handler (before mret), instead of taking it
    /// again as the hardware does. A debugging aid.
    #[arg(long)]
    stop_on_nested_trap: bool,
    /// Seed of the TRNG's noise source (runs repeat exactly per seed).
    #[arg(long, value_name = "N", default_value_t = 0)]
    trng_seed: u64,
    /// Break the TRNG's noise source: `stuck` (one value repeats: the
    /// repetition count test fails) or `biased` (one value takes a fifth
    /// of the samples: the adaptive proportion test fails).
    #[arg(long, value_name = "KIND", default_value = "none")]
    trng_fault: dpu_sim::accel::trng::TrngFault,
}

/// Runs with a live status line: simulated time, simulator speed, live IOPS.
fn run_with_bar(m: &mut Machine) -> Outcome {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
    let start = std::time::Instant::now();
    let mut last = (0u64, 0u64); // (simulated ns, I/Os) at the previous tick
    let out = m.run_with_progress(|m| {
        let ns = m.sim_time_ns();
        let instr: u64 = m.harts.iter().map(|h| h.instret).sum();
        let ios = m.host.as_ref().map_or(0, |h| h.host.state().ios_done);
        let dt = (ns - last.0) as f64 / 1e9;
        let iops = if dt > 0.0 { (ios - last.1.min(ios)) as f64 / dt } else { 0.0 };
        let mips = instr as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e6;
        let mut msg = format!("simulated {:.3} ms | {mips:.0} MIPS", ns as f64 / 1e6);
        if m.host.is_some() {
            msg.push_str(&format!(" | {ios} I/Os, {:.2} M IOPS now", iops / 1e6));
        }
        bar.set_message(msg);
        bar.tick();
        last = (ns, ios);
    });
    bar.finish_and_clear();
    out
}

/// Standard output that goes quiet once it is closed (`dpusim | head`):
/// the run finishes and still writes `--stats-json`.
#[derive(Default)]
struct Stdout {
    closed: bool,
}

impl Stdout {
    fn put(&mut self, s: &str) {
        if !self.closed {
            let mut o = std::io::stdout().lock();
            self.closed = o.write_all(s.as_bytes()).and_then(|()| o.flush()).is_err();
        }
    }
}

/// A line on stderr; a closed stderr is ignored (never a panic).
fn note(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            note(&format!("dpusim: error: {e}"));
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

/// Checks before the run that an output file can be written (creating
/// and removing it when it did not exist), naming the option on failure.
fn check_writable(option: &str, path: &Path) -> Result<(), String> {
    let existed = path.exists();
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(format!("{option} {}: cannot write: {e}", path.display())),
    }
}

/// The board for `chip`: the default board if it carries that chip,
/// else the board in the same directory that does (e.g. qemu-virt.toml).
fn board_for(chip: &Path) -> PathBuf {
    let default = dpu_targets::default_board_path();
    let Some(chip_file) = chip.file_name().map(|f| f.to_string_lossy().to_string()) else { return default };
    let carries = |p: &Path| Board::load(p).is_ok_and(|b| b.board.chip == chip_file);
    if carries(&default) {
        return default;
    }
    let dir = default.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut boards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect())
        .unwrap_or_default();
    boards.sort();
    boards.into_iter().find(|p| carries(p)).unwrap_or(default)
}

/// `--find-bytes`: an even number of hex digits, at least 4 bytes (a
/// shorter pattern matches by chance).
fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`{s}` is not hex bytes (an even number of 0-9a-f digits)"));
    }
    let b: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect();
    if b.len() < 4 {
        return Err(format!("`{s}`: at least 4 bytes, or matches are chance"));
    }
    Ok(b)
}

fn run(cli: Cli) -> Result<u8, Box<dyn std::error::Error>> {
    // Output files are checked before anything runs.
    let outputs = [("--stats-json", &cli.stats_json), ("--trace", &cli.trace), ("--profile", &cli.profile), ("--trace-out", &cli.trace_out)];
    for (option, path) in outputs {
        if let Some(p) = path {
            check_writable(option, p)?;
        }
    }
    let chip = Chip::load(&cli.chip)?;
    let board_path = cli.board.clone().unwrap_or_else(|| board_for(&cli.chip));
    let board = Board::load(&board_path)?;
    board.ssd.check_slots(&board_path, &chip)?;
    let chip_file = cli.chip.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    if board.board.chip != chip_file {
        note(&format!(
            "dpusim: warning: board `{}` carries chip `{}`, running with `{}`",
            board.board.name, board.board.chip, chip_file
        ));
    }
    let mut max_cycles = cli.max_cycles;
    if let Some(ns) = cli.max_time {
        let c = dpu_targets::ns_to_cycles(ns, chip.chip.clock_hz);
        max_cycles = Some(max_cycles.map_or(c, |m| m.min(c)));
    }
    let config = SimConfig {
        quantum: cli.quantum,
        max_cycles,
        quiet: cli.quiet,
        capture_log: false,
        ignore_chip_mismatch: cli.ignore_chip_mismatch,
        jit_threshold: if cli.no_jit { None } else { Some(cli.jit_threshold) },
        stop_on_nested_trap: cli.stop_on_nested_trap,
    };
    let scenario = match &cli.scenario {
        Some(p) => Some(dpu_targets::Scenario::load(p)?),
        None => None,
    };
    let mut otp_path = None;
    let mut m = match &cli.flash {
        None => {
            let [elf] = cli.elf.as_slice() else {
                return Err("--elf: one firmware image (several only with --flash)".into());
            };
            let words = chip.devices.otp.words as usize;
            let mut m = Machine::new(chip, board, Image::load(elf)?, config)?;
            if let Some(p) = &cli.otp {
                m.bus.otp.words = dpu_sim::dev::otp::Otp::load(p, words, 1).map_err(|e| format!("--otp {e}"))?.words;
            }
            m
        }
        Some(flash) => {
            let array = dpu_sim::dev::nor_flash::FlashArray::load(flash, board.flash.size).map_err(|e| format!("--flash {e}"))?;
            let words = chip.devices.otp.words as usize;
            let otp = cli.otp.clone().or_else(|| Some(flash.with_extension("otp")).filter(|p| p.exists()));
            let fuses = match &otp {
                Some(p) => dpu_sim::dev::otp::Otp::load(p, words, 1).map_err(|e| format!("--otp {e}"))?.words,
                None => {
                    note(&format!("dpusim: warning: no OTP file ({} does not exist): blank fuses", flash.with_extension("otp").display()));
                    vec![0; words]
                }
            };
            otp_path = otp;
            let symbols = cli.elf.iter().map(Image::load).collect::<Result<Vec<_>, _>>()?;
            let mut m = Machine::from_flash(chip, board, dpu_sim::FlashBoot { array, otp: fuses, symbols }, config)?;
            if let Some(n) = cli.power_cut_after_flash_bytes {
                m.bus.spi.flash.cut_after_bytes(n);
            }
            if let Some(ns) = cli.power_cut_at {
                let at = dpu_targets::ns_to_cycles(ns, m.chip.chip.clock_hz);
                m.bus.power_cut_at(at.max(m.now));
            }
            m
        }
    };
    m.bus.trng = dpu_sim::accel::trng::Trng::new(cli.trng_seed, m.chip.devices.trng.min_entropy_bits, m.chip.devices.trng.irq, cli.trng_fault);
    // With --json, stdout carries the JSON document only.
    m.bus.console.to_stderr = cli.json;
    let iotrace = cli.trace.as_ref().map(|_| m.enable_iotrace(cli.trace_ios));
    if let Some(sc) = &scenario {
        m.attach_scenario(sc)?;
    }
    if let Some(dir) = &cli.target_media {
        if dir.exists() {
            let n = m.load_target_media(dir).map_err(|e| format!("--target-media {e}"))?;
            note(&format!("dpusim: target media: {n} namespace(s) loaded from {}", dir.display()));
        }
    }
    if let Some(h) = &m.host {
        h.host.state().log_to_stderr = cli.json;
    }
    if let Some(p) = &cli.pcap {
        for f in m.enable_pcap(p).map_err(|e| format!("--pcap {e}"))? {
            note(&format!("dpusim: capturing to {}", f.display()));
        }
    }
    if let Some(b) = cli.bridge.clone() {
        m.attach_bridge(b)?;
    }
    if cli.run_on {
        m.hold_after_scenario();
    }
    if let Some(addr) = cli.hostfwd {
        let bound = m.attach_hostfwd(addr)?;
        // On stderr even with -q: scripts read the port from here.
        eprintln!("dpusim: hostfwd: listening on tcp:{bound} -> the card's management server");
    }
    for w in &m.warnings {
        note(&format!("dpusim: warning: {w}"));
    }
    if let Some(h) = cli.trace_hart {
        let Some(hart) = m.harts.get_mut(h as usize) else {
            return Err(format!("--trace-hart {h}: the chip has {} harts", m.chip.harts()).into());
        };
        hart.trace = Some(dpu_sim::cpu::InsnTrace { limit: cli.trace_limit, entries: Vec::new() });
    }
    let profiled: Vec<u32> = match &cli.profile {
        None => Vec::new(),
        Some(_) => {
            let sel = cli.profile_harts.as_str();
            let v: Vec<u32> = match sel {
                "all" => (0..m.chip.harts()).collect(),
                "data" | "control" => (0..m.chip.harts()).filter(|&h| m.role_of(h) == sel).collect(),
                list => list
                    .split(',')
                    .map(|x| x.trim().parse::<u32>().map_err(|_| format!("--profile-harts: `{x}` is not a hart number")))
                    .collect::<Result<_, _>>()?,
            };
            for &h in &v {
                let Some(hart) = m.harts.get_mut(h as usize) else {
                    return Err(format!("--profile-harts: the chip has {} harts", m.chip.harts()).into());
                };
                hart.profile = Some(Box::default());
            }
            v
        }
    };
    if let Some(addr) = &cli.gdb {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("--gdb {addr}: {e}"))?;
        note(&format!("dpusim: waiting for GDB on {} (target extended-remote {0})", listener.local_addr()?));
        let (stream, peer) = listener.accept()?;
        note(&format!("dpusim: GDB connected from {peer}"));
        let how = dpu_sim::gdb::serve(&mut m, stream);
        note(&format!("dpusim: {how}; running on"));
    }
    // Ctrl-C ends the run between quanta; the summary and stats follow.
    // A second Ctrl-C exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                note("dpusim: interrupted again; exiting without a summary");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }
    m.stop_request = Some(stop);
    if max_cycles.is_none() && scenario.is_none() {
        note("dpusim: no --max-time, --max-cycles or --scenario: the run goes on until the firmware ends it; Ctrl-C stops it (summary and stats are still written)");
    }
    let outcome = if cli.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        m.run()
    } else {
        run_with_bar(&mut m)
    };
    finish(&cli, &mut m, &outcome, &profiled, iotrace.as_ref())?;
    if let Some(dir) = &cli.target_media {
        let n = m.save_target_media(dir).map_err(|e| format!("--target-media {e}"))?;
        note(&format!("dpusim: target media: {n} namespace(s) written to {}", dir.display()));
    }
    if let Some(flash) = &cli.flash {
        // The card's next boot: what it wrote to flash and fuses stays.
        let otp = otp_path.unwrap_or_else(|| flash.with_extension("otp"));
        let (array, fuses) = m.flash_state();
        array.save(flash).map_err(|e| format!("--flash {e}"))?;
        if fuses.iter().any(|&w| w != 0) {
            let bytes: Vec<u8> = fuses.iter().flat_map(|w| w.to_le_bytes()).collect();
            std::fs::write(&otp, bytes).map_err(|e| format!("--otp {}: {e}", otp.display()))?;
        }
    }
    Ok(outcome.exit_code() as u8)
}

/// Everything after the run: tables, reports, trace files, stats, and the
/// message that explains a non-zero exit status.
fn finish(
    cli: &Cli,
    m: &mut Machine,
    outcome: &Outcome,
    profiled: &[u32],
    iotrace: Option<&std::rc::Rc<std::cell::RefCell<dpu_sim::iotrace::IoTrace>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = Stdout { closed: m.bus.console.output_closed && !cli.json };
    // Text that goes to stdout, or to stderr under --json.
    let text = |out: &mut Stdout, s: &str| {
        if cli.json {
            let _ = std::io::stderr().lock().write_all(s.as_bytes());
        } else {
            out.put(s);
        }
    };
    if let Some(path) = &cli.profile {
        let (folded, _) = m.profile_report(profiled);
        std::fs::write(path, folded).map_err(|e| format!("--profile {}: {e}", path.display()))?;
        text(&mut out, &m.profile_table(profiled, 15));
    }
    if let Some(h) = cli.trace_hart {
        let listing = m.trace_listing(h);
        match &cli.trace_out {
            Some(p) => std::fs::write(p, listing).map_err(|e| format!("--trace-out {}: {e}", p.display()))?,
            None => {
                let _ = std::io::stderr().lock().write_all(listing.as_bytes());
            }
        }
    }
    match outcome {
        Outcome::Fatal { hart, message } => {
            let _ = std::io::stderr().lock().write_all(m.fault_report(*hart, message).as_bytes());
        }
        Outcome::Finished(dpu_sim::dev::finisher::Finish::Fault { hart }) => {
            let r = m.fault_report(*hart, "the firmware's trap handler reported a fatal exception");
            let _ = std::io::stderr().lock().write_all(r.as_bytes());
        }
        _ => {}
    }
    if let Some(msg) = m.outcome_message(&outcome) {
        eprintln!("dpusim: error: {msg}");
    }
    if let (Some(path), Some(t)) = (&cli.trace, iotrace) {
        let t = t.borrow();
        std::fs::write(path, serde_json::to_string(&t.to_json())?).map_err(|e| format!("--trace {}: {e}", path.display()))?;
        note(&format!("dpusim: I/O trace of {} I/Os written to {} ({} not traced)", t.len(), path.display(), t.dropped));
    }
    let report = m.host.as_ref().and_then(|h| h.host.state().report.clone());
    let stats = m.stats(outcome);
    if cli.json {
        let doc = match &report {
            Some(r) => serde_json::to_string_pretty(r)?,
            None => serde_json::to_string_pretty(&stats)?,
        };
        out.put(&(doc + "\n"));
    } else if let Some(r) = &report {
        out.put(&format!("\n{}", r.text()));
    }
    text(&mut out, &dpu_sim::at_rest::text(&stats.at_rest));
    text(&mut out, &dpu_sim::at_rest::ec_text(&stats.ec_at_rest));
    text(&mut out, &m.summary_table(outcome));
    if let Some(p) = &cli.stats_json {
        std::fs::write(p, serde_json::to_string_pretty(&stats)? + "\n")
            .map_err(|e| format!("--stats-json {}: cannot write stats: {e}", p.display()))?;
    }
    for needle in &cli.find_bytes {
        let at = m.bus.mem.find(needle);
        let shown: Vec<String> = at.iter().take(8).map(|a| format!("{a:#x}")).collect();
        let more = if at.len() > shown.len() { format!(" (+{} more)", at.len() - shown.len()) } else { String::new() };
        let head: String = needle.iter().take(4).map(|b| format!("{b:02x}")).collect();
        note(&format!(
            "dpusim: find-bytes {head}.. ({} bytes): {} place(s) in card memory{}{}",
            needle.len(),
            at.len(),
            if at.is_empty() { String::new() } else { format!(": {}", shown.join(" ")) },
            more
        ));
    }
    if let Some(why) = exit_message(cli, outcome) {
        note(&format!("dpusim: {why} (exit status {})", outcome.exit_code()));
    }
    Ok(())
}

/// Why the exit status is what it is, when that is not obvious from the
/// output above it.
fn exit_message(cli: &Cli, outcome: &Outcome) -> Option<String> {
    use dpu_sim::dev::finisher::Finish;
    match outcome {
        Outcome::Unfinished => Some(format!(
            "the time limit ({}) ended the run before the scenario's jobs finished: no report, [expect] not checked",
            match (cli.max_time, cli.max_cycles) {
                (Some(ns), _) => format!("--max-time {:.3} ms", ns as f64 / 1e6),
                (None, Some(c)) => format!("--max-cycles {c}"),
                (None, None) => "none".into(),
            }
        )),
        Outcome::Interrupted => Some("interrupted; the run is incomplete".into()),
        Outcome::Finished(Finish::Fail(c)) if *c == exit::PANIC_CODE => {
            Some(format!("the firmware panicked (failure code {c} = {c:#x})"))
        }
        Outcome::Finished(Finish::Fail(c)) => Some(format!("the firmware failed with code {c} ({c:#x})")),
        Outcome::Deadlock => Some("deadlock".into()),
        Outcome::Livelock(_) => Some("livelock".into()),
        Outcome::BootRefused(why) => Some(format!("secure boot: the boot ROM refused the first-stage bootloader: {why}")),
        Outcome::Finished(Finish::NoBootableImage) => Some("secure boot: the bootloader found no firmware slot it may boot (see its log above)".into()),
        Outcome::PowerCut => Some("the power was cut; the flash file keeps what was written".into()),
        _ => None,
    }
}
