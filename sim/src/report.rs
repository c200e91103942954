//! Run statistics (`--stats-json`), the end-of-run summary table and fault
//! reports.

use crate::cpu::csr::cause_name;
use crate::isa::{disasm::disasm, REG_NAMES};
use crate::machine::{Machine, Outcome};
use serde::Serialize;

/// Per-hart counters.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct HartStats {
    pub hart: u32,
    pub cluster: u32,
    pub role: &'static str,
    pub instret: u64,
    pub cycles: u64,
    pub idle_cycles: u64,
    pub traps: u64,
    pub interrupts: u64,
}

/// Per-cluster totals.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ClusterStats {
    pub cluster: u32,
    pub role: &'static str,
    pub instret: u64,
    pub cycles: u64,
    pub idle_cycles: u64,
    pub ipc: f64,
    pub idle_percent: f64,
}

/// Everything `--stats-json` writes.
#[derive(Serialize, Clone, Debug)]
pub struct Stats {
    pub chip: String,
    pub outcome: String,
    pub exit_code: i32,
    pub sim_cycles: u64,
    pub sim_time_ns: u64,
    pub host_seconds: f64,
    /// Retired instructions per host second, in millions.
    pub mips: f64,
    pub instret_total: u64,
    pub pages_backed: usize,
    pub mmio_accesses: u64,
    pub contention_stall_cycles: u64,
    pub log_errors: u64,
    pub log_warnings: u64,
    pub undecodable_defmt_frames: u64,
    pub clusters: Vec<ClusterStats>,
    pub harts: Vec<HartStats>,
    /// The host's measurement window (the jobs' run), if any.
    pub window: Option<WindowStats>,
    /// NIC ports, switch and bridge counters.
    pub network: crate::net::network::NetStats,
    /// DMA engines: descriptors, bytes host->DPU, DPU->host, local copies.
    pub dma: crate::dma::DmaStats,
    /// Crypto engines (all engines together).
    pub crypto: crate::accel::crypto::CryptoStats,
    /// Erasure-coding engine.
    pub ec: crate::accel::ec::EcStats,
    /// TRNG: raw samples tested, health-test failures.
    pub trng: crate::accel::trng::TrngStats,
    /// Encrypted namespaces on target models: what their media hold
    /// (`crate::at_rest`).
    pub at_rest: Vec<crate::at_rest::AtRest>,
    /// Erasure-coded volumes' members scanned for plaintext sectors.
    pub ec_at_rest: Vec<crate::at_rest::EcAtRest>,
    /// NVMe/TCP target models.
    pub targets: Vec<TargetReport>,
    /// NVMe/TCP initiator models (absent when the scenario has none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initiators: Vec<InitiatorReport>,
    /// Bytes flipped by `target-corrupt` faults and what they hold at the
    /// end of the run.
    pub corruptions: Vec<crate::net_setup::Corruption>,
    /// Local NVMe SSDs, by slot (`crate::ssd`).
    pub ssds: Vec<crate::ssd::Stats>,
    /// The compiling tier (`None` with `--no-jit`).
    pub jit: Option<crate::cpu::jit::JitStats>,
}

/// A target model's name and counters.
#[derive(Serialize, Clone, Debug)]
pub struct TargetReport {
    pub name: String,
    #[serde(flatten)]
    pub stats: crate::net::nvmf_target::TargetStats,
}

/// One initiator model's counters (`crate::net::nvmf_host::InitiatorStats`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct InitiatorReport {
    pub name: String,
    #[serde(flatten)]
    pub stats: crate::net::nvmf_host::InitiatorStats,
}

/// Work done inside the measurement window.
#[derive(Serialize, Clone, Debug)]
pub struct WindowStats {
    pub sim_ns: u64,
    pub data_busy_cycles: u64,
    pub data_instructions: u64,
    pub control_busy_cycles: u64,
    pub control_instructions: u64,
    /// Data-plane harts busy for more than 1% of the window.
    pub data_harts_active: u32,
    /// Crypto engine datapath cycles (all engines) and EC engine cycles
    /// spent on descriptors submitted inside the window.
    pub crypto_busy_cycles: u64,
    pub ec_busy_cycles: u64,
    /// Busy fractions: crypto over all engines, EC over its one datapath.
    pub crypto_utilization: f64,
    pub ec_utilization: f64,
}

impl Stats {
    /// Drops host-dependent fields (for determinism comparisons).
    pub fn without_host_time(&self) -> Stats {
        let jit = self.jit.map(|j| crate::cpu::jit::JitStats { compile_host_seconds: 0.0, ..j });
        Stats { host_seconds: 0.0, mips: 0.0, jit, ..self.clone() }
    }
}

/// Short text of an outcome.
pub fn outcome_text(o: &Outcome) -> String {
    use crate::dev::finisher::Finish;
    match o {
        Outcome::Finished(Finish::Pass) => "pass".into(),
        Outcome::Finished(Finish::Fail(c)) => format!("fail (code {c})"),
        Outcome::Finished(Finish::Fault { hart }) => format!("firmware fault on hart {hart}"),
        Outcome::Finished(Finish::ConfigRejected { .. }) => "boot configuration rejected".into(),
        Outcome::TimeLimit => "time limit".into(),
        Outcome::Unfinished => "time limit reached before the scenario's jobs finished".into(),
        Outcome::Interrupted => "interrupted".into(),
        Outcome::Deadlock => "deadlock: every hart waits in wfi and no device event is pending".into(),
        Outcome::Livelock(why) => format!("{why} (a simulator bug: please report it with the scenario)"),
        Outcome::Fatal { hart, message } => format!("hart {hart} halted: {message}"),
        Outcome::Host(Ok(())) => "scenario passed".into(),
        Outcome::Host(Err(e)) => format!("scenario failed: {e}"),
        Outcome::Breakpoint { hart } => format!("hart {hart} at a breakpoint"),
        Outcome::BootRefused(why) => format!("secure boot refused: {why}"),
        Outcome::Finished(Finish::NoBootableImage) => "secure boot refused: no bootable firmware slot".into(),
        Outcome::PowerCut => "power cut".into(),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Strips the `::h0123456789abcdef` hash Rust appends to symbol names.
pub fn short_name(name: &str) -> &str {
    match name.rfind("::h") {
        Some(i) if name.len() - i == 19 && name[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => &name[..i],
        _ => name,
    }
}

impl Machine {
    /// Folded stacks and per-function costs of the profiled harts in `harts`.
    pub fn profile_report(&self, harts: &[u32]) -> (String, Vec<crate::cpu::profile::FunctionCost>) {
        let mut paths = Vec::new();
        for &h in harts {
            if let Some(p) = self.harts.get(h as usize).and_then(|h| h.profile.as_ref()) {
                paths.extend(p.paths());
            }
        }
        let syms = &self.image.symbols;
        crate::cpu::profile::summarize(&paths, |a| match syms.lookup(a) {
            Some((n, 0)) => short_name(n).to_string(),
            Some((n, off)) => format!("{}+{off:#x}", short_name(n)),
            None => format!("{a:#x}"),
        })
    }

    /// A table of the `top` most expensive functions (self cycles).
    pub fn profile_table(&self, harts: &[u32], top: usize) -> String {
        let (_, funcs) = self.profile_report(harts);
        let total: u64 = funcs.iter().map(|f| f.self_cycles).sum::<u64>().max(1);
        let mut o = format!("\nprofile of {} hart(s): {} cycles\n", harts.len(), total);
        o.push_str("  self %   self cycles  instructions   total cycles  function\n");
        for f in funcs.iter().take(top) {
            o.push_str(&format!(
                "  {:>5.1}% {:>13} {:>13} {:>14}  {}\n",
                100.0 * f.self_cycles as f64 / total as f64,
                f.self_cycles,
                f.self_instructions,
                f.total_cycles,
                f.name
            ));
        }
        o
    }

    pub fn stats(&self, outcome: &Outcome) -> Stats {
        let harts: Vec<HartStats> = self
            .harts
            .iter()
            .map(|h| HartStats {
                hart: h.id,
                cluster: h.cluster,
                role: self.role_of(h.id),
                instret: h.instret,
                cycles: h.cycle,
                idle_cycles: h.idle_cycles,
                traps: h.traps_taken,
                interrupts: h.interrupts_taken,
            })
            .collect();
        let clusters = (0..self.chip.chip.clusters)
            .map(|c| {
                let hs = harts.iter().filter(|h| h.cluster == c);
                let (mut i, mut cy, mut idle) = (0u64, 0u64, 0u64);
                for h in hs {
                    i += h.instret;
                    cy += h.cycles;
                    idle += h.idle_cycles;
                }
                ClusterStats {
                    cluster: c,
                    role: if self.chip.is_control_cluster(c) { "control" } else { "data" },
                    instret: i,
                    cycles: cy,
                    idle_cycles: idle,
                    ipc: ratio(i, cy.saturating_sub(idle)),
                    idle_percent: 100.0 * ratio(idle, cy),
                }
            })
            .collect();
        let instret_total: u64 = harts.iter().map(|h| h.instret).sum();
        Stats {
            chip: self.chip.chip.name.clone(),
            outcome: outcome_text(outcome),
            exit_code: outcome.exit_code(),
            sim_cycles: self.now,
            sim_time_ns: self.sim_time_ns(),
            host_seconds: self.host_seconds,
            mips: if self.host_seconds > 0.0 { instret_total as f64 / self.host_seconds / 1e6 } else { 0.0 },
            instret_total,
            pages_backed: self.bus.mem.pages_allocated(),
            mmio_accesses: self.bus.mmio_accesses,
            contention_stall_cycles: self.bus.window.stall_cycles,
            log_errors: self.bus.console.errors,
            log_warnings: self.bus.console.warnings,
            undecodable_defmt_frames: self.bus.trace.bad_frames,
            clusters,
            harts,
            window: self.window_stats(),
            network: self.bus.net.stats(),
            dma: self.bus.dma.stats.clone(),
            crypto: self.bus.crypto.stats.clone(),
            ec: self.bus.ec.stats.clone(),
            trng: self.bus.trng.stats(),
            at_rest: self.at_rest(),
            ec_at_rest: self.ec_at_rest(),
            targets: self.bus.net.targets.iter().map(|t| TargetReport { name: t.params.name.clone(), stats: t.stats.clone() }).collect(),
            initiators: self.bus.net.initiators.iter().map(|m| InitiatorReport { name: m.params.name.clone(), stats: m.stats.clone() }).collect(),
            corruptions: self.corruptions_now(),
            ssds: self.bus.ssds.drives.iter().map(|s| s.stats).collect(),
            jit: self.code.jit_stats(),
        }
    }

    /// The `target-corrupt` bytes with what the media hold now.
    fn corruptions_now(&self) -> Vec<crate::net_setup::Corruption> {
        let mut v = self.corruptions.clone();
        for c in &mut v {
            let t = self.bus.net.targets.iter().find(|t| t.params.name == c.target);
            if let Some(n) = t.and_then(|t| t.subsystem.namespaces.get((c.nsid as usize).wrapping_sub(1))) {
                let mut b = [0u8; 1];
                n.read(c.offset, &mut b);
                c.at_end = Some(b[0]);
            }
        }
        v
    }

    fn window_stats(&self) -> Option<WindowStats> {
        let w = self.window.as_ref()?;
        let end = w.end?;
        let mut ws = WindowStats {
            sim_ns: (u128::from(end - w.start) * 1_000_000_000 / u128::from(self.chip.chip.clock_hz)) as u64,
            data_busy_cycles: 0,
            data_instructions: 0,
            control_busy_cycles: 0,
            control_instructions: 0,
            data_harts_active: 0,
            crypto_busy_cycles: w.accel_at_end.0.saturating_sub(w.accel_at_start.0),
            ec_busy_cycles: w.accel_at_end.1.saturating_sub(w.accel_at_start.1),
            crypto_utilization: 0.0,
            ec_utilization: 0.0,
        };
        let window_cycles = end - w.start;
        if window_cycles > 0 {
            let engines = self.bus.crypto.engines.len().max(1) as f64;
            ws.crypto_utilization = ws.crypto_busy_cycles as f64 / (engines * window_cycles as f64);
            ws.ec_utilization = ws.ec_busy_cycles as f64 / window_cycles as f64;
        }
        for (i, (a, b)) in w.at_start.iter().zip(&w.at_end).enumerate() {
            let (cy, ins) = (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1));
            if self.role_of(i as u32) == "data" {
                ws.data_busy_cycles += cy;
                ws.data_instructions += ins;
                ws.data_harts_active += u32::from(cy * 100 > window_cycles);
            } else {
                ws.control_busy_cycles += cy;
                ws.control_instructions += ins;
            }
        }
        Some(ws)
    }

    /// The end-of-run table: per cluster instructions, cycles, IPC, idle %.
    pub fn summary_table(&self, outcome: &Outcome) -> String {
        let s = self.stats(outcome);
        let mut out = String::new();
        out.push_str(&format!(
            "\n{} | outcome: {} | simulated {:.3} ms | host {:.2} s | {:.1} MIPS\n",
            s.chip,
            s.outcome,
            s.sim_time_ns as f64 / 1e6,
            s.host_seconds,
            s.mips
        ));
        out.push_str("cluster  role     harts  instructions        cycles    IPC  idle %\n");
        for c in &s.clusters {
            out.push_str(&format!(
                "{:>7}  {:<7}  {:>5}  {:>12}  {:>12}  {:>5.2}  {:>6.1}\n",
                c.cluster,
                c.role,
                self.chip.chip.cores_per_cluster,
                c.instret,
                c.cycles,
                c.ipc,
                c.idle_percent
            ));
        }
        out.push_str(&format!("{:>7}  {:<7}  {:>5}  {:>12}\n", "total", "", self.harts.len(), s.instret_total));
        out
    }

    /// The recorded instruction trace of `hart` (cycle, pc, symbol, disassembly).
    pub fn trace_listing(&self, hart: u32) -> String {
        let Some(t) = &self.harts[hart as usize].trace else { return String::new() };
        let mut o = String::new();
        for (cycle, pc, op) in &t.entries {
            o.push_str(&format!(
                "{cycle:>10} h{hart:02} {pc:#010x} {:<40} {}\n",
                format!("<{}>", self.image.symbols.describe(*pc)),
                disasm(op, *pc)
            ));
        }
        o
    }

    /// A fault report for `hart`: cause, pc with symbol, instruction,
    /// registers and the last log lines.
    pub fn fault_report(&self, hart: u32, reason: &str) -> String {
        let h = &self.harts[hart as usize];
        let syms = &self.image.symbols;
        let mut o = String::new();
        o.push_str(&format!(
            "FIRMWARE FAULT on hart {} (cluster {}, core {}, {} plane) at {:.6} ms: {}\n",
            hart,
            h.cluster,
            hart % self.chip.chip.cores_per_cluster,
            self.role_of(hart),
            self.sim_time_ns() as f64 / 1e6,
            reason
        ));
        match &h.last_trap {
            Some(t) => {
                o.push_str(&format!("  cause : {} (mcause {:#x}), mtval {:#x}\n", cause_name(t.cause), t.cause, t.tval));
                o.push_str(&format!("  pc    : {:#x} <{}>\n", t.pc, syms.describe(t.pc)));
                match &t.insn {
                    Some((bits, op)) => {
                        let w = if op.len == 2 { 6 } else { 10 };
                        o.push_str(&format!("  insn  : {:#0w$x}  {}\n", bits, disasm(op, t.pc), w = w))
                    }
                    None => o.push_str("  insn  : <not readable>\n"),
                }
                o.push_str(&format!("  cycle : {}\n  registers:\n", t.cycle));
                for row in 0..8 {
                    o.push_str("   ");
                    for col in 0..4 {
                        let r = row * 4 + col;
                        o.push_str(&format!(" {:>4} {:#018x}", REG_NAMES[r], t.regs[r]));
                    }
                    o.push('\n');
                }
                let ra = t.regs[1];
                o.push_str(&format!("  ra    : <{}>\n", syms.describe(ra)));
            }
            None => o.push_str(&format!("  pc    : {:#x} <{}> (no exception recorded)\n", h.pc, syms.describe(h.pc))),
        }
        o.push_str("  last log lines:\n");
        let lines: Vec<_> = self.bus.console.recent().collect();
        if lines.is_empty() {
            o.push_str("    (none)\n");
        }
        for l in lines.iter().skip(lines.len().saturating_sub(12)) {
            o.push_str(&format!("    {}\n", self.bus.console.format(l)));
        }
        o
    }
}
