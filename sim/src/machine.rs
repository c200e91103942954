//! The whole chip and the engine that runs it.
//!
//! Single-threaded and deterministic: harts run one after another in
//! quanta of simulated time; device events run between quanta at their
//! exact cycle (quanta end early at the next event). Harts in `wfi` cost
//! nothing; when no hart can run, time jumps to the next event. Nothing
//! reads the wall clock except the host-time statistic.

use crate::bootrom;
use crate::bus::Bus;
use crate::cpu::code::CodeCache;
use crate::cpu::{CoreCosts, Hart, RunState, Stop};
use crate::defmt_log::DefmtTable;
use crate::dev::finisher::Finish;
use crate::dev::trace::TracePort;
use crate::elf::Image;
use crate::event::{ComponentId, Event, Payload};
use crate::host::{Host, HostModel};
use crate::mem::{Memory, Region, RegionKind};
use dpu_targets::{Board, Chip};
use std::time::Instant;

/// Simulator settings that are not hardware facts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Scheduling quantum in cycles (max time a hart runs before others).
    pub quantum: u64,
    /// Stop after this many cycles of simulated time.
    pub max_cycles: Option<u64>,
    /// Do not print firmware log lines as they come.
    pub quiet: bool,
    /// Keep every log line in memory (tests, reports).
    pub capture_log: bool,
    /// Accept an image built for another chip layout.
    pub ignore_chip_mismatch: bool,
    /// Compile straight-line bodies to host code after this many
    /// interpreted runs (`None`: interpreter only). Results are identical.
    pub jit_threshold: Option<u32>,
    /// Stop with a fatal error when an exception is raised inside an
    /// exception handler (before `mret`) instead of taking it again as the
    /// hardware does (`--stop-on-nested-trap`, a debugging aid).
    pub stop_on_nested_trap: bool,
}

/// Interpreted runs of a body before it is compiled (`--jit-threshold`).
pub const DEFAULT_JIT_THRESHOLD: u32 = 50_000;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            quantum: 256,
            max_cycles: None,
            quiet: false,
            capture_log: false,
            ignore_chip_mismatch: false,
            jit_threshold: Some(DEFAULT_JIT_THRESHOLD),
            stop_on_nested_trap: false,
        }
    }
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The firmware wrote the test finisher.
    Finished(Finish),
    /// `max_cycles` reached (no scenario running).
    TimeLimit,
    /// `max_cycles` reached while the scenario's jobs were still running:
    /// no report, `[expect]` never checked.
    Unfinished,
    /// Every hart waits for an interrupt and no event is pending.
    Deadlock,
    /// A device model keeps scheduling work at the same instant: simulated
    /// time cannot move on (a simulator bug; what was scheduled).
    Livelock(String),
    /// The simulator stopped a hart it could not let continue.
    Fatal { hart: u32, message: String },
    /// The host's scenario finished: Ok, or what went wrong.
    Host(Result<(), String>),
    /// A hart reached a debugger breakpoint.
    Breakpoint { hart: u32 },
    /// The user asked the run to stop (Ctrl-C; see `Machine::stop_request`).
    Interrupted,
    /// Secure boot found nothing it may run: the boot ROM refused the
    /// first-stage bootloader (the reason), or the bootloader refused both
    /// firmware slots (its boot log says why).
    BootRefused(String),
    /// The power went away (a power-cut test): the flash and the fuses
    /// keep what the interrupted program or erase had done.
    PowerCut,
}

impl Outcome {
    /// Process exit status for this outcome (the table in [`crate::exit`]).
    pub fn exit_code(&self) -> i32 {
        use crate::exit;
        i32::from(match self {
            Outcome::Finished(Finish::Pass) | Outcome::TimeLimit => exit::PASS,
            Outcome::Finished(Finish::Fail(c)) => exit::firmware_fail(*c),
            Outcome::Finished(Finish::Fault { .. }) | Outcome::Fatal { .. } => exit::FIRMWARE_FAULT,
            Outcome::Deadlock | Outcome::Livelock(_) => exit::DEADLOCK,
            Outcome::Finished(Finish::ConfigRejected { .. }) => exit::BOOT_CONFIG_REJECTED,
            Outcome::Unfinished => exit::TIME_LIMIT,
            Outcome::Interrupted => exit::INTERRUPTED,
            Outcome::Host(Ok(())) | Outcome::Breakpoint { .. } => exit::PASS,
            Outcome::Host(Err(_)) => exit::SCENARIO_FAILED,
            Outcome::BootRefused(_) | Outcome::Finished(Finish::NoBootableImage) => exit::SECURE_BOOT_REFUSED,
            Outcome::PowerCut => exit::POWER_CUT,
        })
    }
}

/// Errors building a machine.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Image(#[from] crate::elf::ImageError),
    #[error("{path}: segment at {start:#x}..{end:#x} is outside the chip's RAM ({chip}); memory map:\n{map}")]
    SegmentOutside { path: String, start: u64, end: u64, chip: String, map: String },
    #[error("{path}: entry point {entry:#x} is not in RAM")]
    BadEntry { path: String, entry: u64 },
    #[error(
        "{path}: built for chip `{image_chip}` (layout {image_fp:#018x}) but the simulator runs `{chip}` \
         (layout {chip_fp:#018x}); rebuild the firmware for this chip (DPU_CHIP={chip_file})"
    )]
    ChipMismatch { path: String, image_chip: String, image_fp: u64, chip: String, chip_fp: u64, chip_file: String },
    #[error(
        "{path}: built for another board layout than `{board}` (PCIe functions, queues or vectors differ); \
         rebuild the firmware for this board (DPU_BOARD={board_file})"
    )]
    BoardMismatch { path: String, image_chip: String, board: String, board_file: String },
    #[error("{0}")]
    Defmt(String),
}

/// The event handler of a component the machine runs itself.
type MachineRoute = fn(&mut Machine, Payload);

/// A simulated chip running one firmware image.
pub struct Machine {
    pub chip: Chip,
    pub board: Board,
    pub harts: Vec<Hart>,
    pub bus: Bus,
    /// Decoded instructions and compiled code of every hart
    /// (`cpu::code`), handed to `Hart::run` next to the bus.
    pub code: CodeCache,
    /// Global simulated time (cycles): start of the next quantum.
    pub now: u64,
    pub image: Image,
    pub config: SimConfig,
    /// Host seconds spent in `run`.
    pub host_seconds: f64,
    /// Warnings produced while loading (printed by the CLI).
    pub warnings: Vec<String>,
    /// The boot configuration given to the firmware (to explain a rejection).
    pub boot_config: Option<crate::bootcfg::BootConfig>,
    /// The host model, when a scenario is attached.
    pub host: Option<HostModel>,
    /// Per-hart (busy cycles, instructions) at the measurement window's
    /// start and end, with the times.
    pub window: Option<Window>,
    /// Harts in `RunState::Running`, in id order.
    running: Vec<u32>,
    /// `running` must be rebuilt (a hart slept, or state changed outside the loop).
    running_dirty: bool,
    /// Interrupt lines when sleeping harts were last checked.
    seen_lines: Vec<u64>,
    /// Bytes flipped by `target-corrupt` faults (reported at the end with
    /// what they hold then: a scrub repair puts the original back).
    pub corruptions: Vec<crate::net_setup::Corruption>,
    /// Scenario faults, armed when the host opens its measurement window.
    pub faults: Vec<crate::net_setup::Fault>,
    faults_armed: bool,
    /// Wall-clock pacing when a real peer is bridged in.
    pub pacing: Option<crate::net_setup::Pacing>,
    /// `--hostfwd` is on: the run goes on after the scenario ends (its
    /// verdict is kept) until Ctrl-C or the time limit.
    pub(crate) hostfwd: bool,
    held: Option<Result<(), String>>,
    /// A scenario's workload runs on the host model (`attach_scenario`):
    /// reaching the time limit before it finishes is `Outcome::Unfinished`.
    scenario_running: bool,
    /// Set (e.g. by a Ctrl-C handler) to end the run with
    /// `Outcome::Interrupted`; checked between quanta, every 1024 of them.
    pub stop_request: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Event handlers of the components the machine itself runs (the
    /// host model, the scenario's faults), by component id; the bus's
    /// own components are routed by `Bus::deliver`.
    routes: Vec<Option<MachineRoute>>,
    /// The scenario faults' component id (payload `a`: the fault, `b`: 1
    /// when it starts, 0 when it ends).
    pub(crate) faults_id: ComponentId,
    /// Booted from the SPI flash (`from_flash`): the firmware reads its
    /// configuration from flash, so a scenario leaves the boot
    /// configuration window empty.
    pub flash_boot: bool,
    /// The boot ROM refused the first-stage bootloader: why.
    boot_refused: Option<String>,
    /// Further symbol files (`from_flash`); the one the trace port matches
    /// becomes `image` (symbols of fault reports and profiles).
    other_images: Vec<Image>,
}

/// What `Machine::from_flash` boots: the flash contents, the OTP fuse
/// words, and the ELFs the flash's images were built from.
pub struct FlashBoot {
    pub array: crate::dev::nor_flash::FlashArray,
    pub otp: Vec<u32>,
    pub symbols: Vec<Image>,
}

/// A measurement window opened and closed by the host.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub start: u64,
    pub end: Option<u64>,
    pub at_start: Vec<(u64, u64)>,
    pub at_end: Vec<(u64, u64)>,
    /// Crypto and EC engine busy cycles at the start and end.
    pub accel_at_start: (u64, u64),
    pub accel_at_end: (u64, u64),
}

pub(crate) fn memory_for(chip: &Chip) -> Memory {
    let m = &chip.memory;
    let mut regions = vec![Region {
        name: "bootrom".into(),
        base: m.bootrom.base,
        size: m.bootrom.size,
        kind: RegionKind::BootRom,
        id: 0,
        writable: false,
    }];
    for c in 0..chip.chip.clusters {
        regions.push(Region {
            name: format!("smem{c}"),
            base: chip.smem_base(c),
            size: m.smem.size,
            kind: RegionKind::Smem { cluster: c },
            id: regions.len() as u8,
            writable: true,
        });
    }
    regions.push(Region {
        name: "ddr".into(),
        base: m.ddr.base,
        size: m.ddr.size,
        kind: RegionKind::Ddr,
        id: regions.len() as u8,
        writable: true,
    });
    Memory::new(regions)
}

/// Load latency (cycles beyond the base cost) of every region for a hart in `cluster`.
fn region_latencies(chip: &Chip, mem: &Memory, cluster: u32) -> Vec<u32> {
    let t = &chip.timing.memory;
    let base = chip.timing.core.alu;
    mem.regions()
        .iter()
        .map(|r| {
            let total = match r.kind {
                RegionKind::Smem { cluster: c } if c == cluster => t.smem_local,
                RegionKind::Smem { cluster: c } => t.noc_base + t.noc_hop * chip.noc_hops(cluster, c),
                RegionKind::Ddr => t.ddr,
                RegionKind::BootRom => t.mmio,
            };
            total.saturating_sub(base)
        })
        .collect()
}

impl Machine {
    /// Checks the chip stamp of `image` against the chip and board.
    fn check_stamp(chip: &Chip, board: &Board, image: &Image, config: &SimConfig, warnings: &mut Vec<String>) -> Result<(), SetupError> {
        let path = image.path.display().to_string();
        match &image.chip_stamp {
            Some((_, board_fp, name)) if *board_fp != board.layout_fingerprint() && !config.ignore_chip_mismatch => Err(SetupError::BoardMismatch {
                path,
                image_chip: name.clone(),
                board: board.board.name.clone(),
                board_file: board.source.display().to_string(),
            }),
            Some((fp, _, name)) if *fp != chip.layout_fingerprint() && !config.ignore_chip_mismatch => Err(SetupError::ChipMismatch {
                path,
                image_chip: name.clone(),
                image_fp: *fp,
                chip: chip.chip.name.clone(),
                chip_fp: chip.layout_fingerprint(),
                chip_file: chip.source.display().to_string(),
            }),
            Some(_) => Ok(()),
            None => {
                warnings.push(format!("{path}: no .dpu_chip section; cannot check that it was built for chip `{}`", chip.chip.name));
                Ok(())
            }
        }
    }

    /// Builds the chip, loads the image and resets every hart to the boot ROM.
    pub fn new(chip: Chip, board: Board, image: Image, config: SimConfig) -> Result<Machine, SetupError> {
        let mut warnings = Vec::new();
        Self::check_stamp(&chip, &board, &image, &config, &mut warnings)?;
        let path = image.path.display().to_string();
        let mut mem = memory_for(&chip);
        let map = mem
            .regions()
            .iter()
            .map(|r| format!("  {:<8} {:#012x}..{:#012x}", r.name, r.base, r.base + r.size))
            .collect::<Vec<_>>()
            .join("\n");
        for s in &image.segments {
            let end = s.paddr.saturating_add(s.mem_size);
            let region = mem.region_of(s.paddr).map(|r| r.kind);
            if !mem.range_is_ram(s.paddr, s.mem_size) || region == Some(RegionKind::BootRom) {
                return Err(SetupError::SegmentOutside {
                    path,
                    start: s.paddr,
                    end,
                    chip: chip.chip.name.clone(),
                    map,
                });
            }
            mem.write_bytes(s.paddr, &s.data).expect("range checked");
            // The tail (.bss in the segment) is zero on fresh pages already.
        }
        if !mem.range_is_ram(image.entry, 2) {
            return Err(SetupError::BadEntry { path, entry: image.entry });
        }
        let stub = bootrom::reset_stub(image.entry);
        mem.write_bytes(chip.memory.bootrom.base, &stub).expect("boot ROM is RAM");
        let mut image = image;
        image.symbols.add(chip.memory.bootrom.base, stub.len() as u64, "bootrom::reset_stub");

        // An image without a defmt table (a bare-metal benchmark) is fine
        // until it writes to the trace port: the trace port says so then.
        let table = DefmtTable::from_elf(&image.bytes).map_err(SetupError::Defmt)?;
        let trace = TracePort::new(chip.harts() as usize, table);
        Ok(Self::assemble(chip, board, mem, image, trace, config, warnings))
    }

    /// Builds the chip booting from its SPI flash (`dpusim --flash`): the
    /// boot ROM model verifies and loads the first-stage bootloader
    /// ([`crate::secure_boot`]), which picks and loads a firmware slot.
    /// `symbols`: ELFs of the images the flash may hold (symbols, defmt
    /// tables; the one whose code runs is picked at its first log frame).
    /// A refused bootloader ends the run at once ([`Outcome::BootRefused`]).
    pub fn from_flash(chip: Chip, board: Board, flash: FlashBoot, config: SimConfig) -> Result<Machine, SetupError> {
        let mut warnings = Vec::new();
        let mut candidates = Vec::new();
        for image in &flash.symbols {
            Self::check_stamp(&chip, &board, image, &config, &mut warnings)?;
            let table = DefmtTable::from_elf(&image.bytes).map_err(SetupError::Defmt)?;
            let code = image.segments.iter().filter(|s| !s.writable && !s.data.is_empty()).map(|s| (s.paddr, s.data.clone())).collect();
            candidates.push((table, code));
        }
        let mut mem = memory_for(&chip);
        let rom = crate::secure_boot::rom_stage(&chip, &flash.array, &flash.otp, &mut mem);
        let (entry, start, log, refused) = match rom {
            Ok(s) => (Some(s.entry), s.cycles, s.log, None),
            Err(r) => (None, 0, r.log, Some(r.reason)),
        };
        // Refused: the ROM parks every hart (a jump to itself after wfi).
        let stub = match entry {
            Some(e) => bootrom::reset_stub(e),
            None => bootrom::halt_stub(),
        };
        mem.write_bytes(chip.memory.bootrom.base, &stub).expect("boot ROM is RAM");
        let mut symbols = flash.symbols;
        let mut image = if symbols.is_empty() { Image::from_segments("flash", entry.unwrap_or(0), Vec::new()) } else { symbols.remove(0) };
        image.symbols.add(chip.memory.bootrom.base, stub.len() as u64, "bootrom::rom_stage");
        let mut rest = vec![];
        std::mem::swap(&mut rest, &mut symbols);
        let trace = TracePort::with_candidates(chip.harts() as usize, candidates);
        let mut m = Self::assemble(chip, board, mem, image, trace, config, warnings);
        m.other_images = rest;
        m.flash_boot = true;
        m.bus.spi.flash.array = flash.array;
        for (w, v) in m.bus.otp.words.iter_mut().zip(&flash.otp) {
            *w = *v;
        }
        for line in log {
            m.bus.console.emit(start, 0, crate::console::Source::Uart, Some("ROM".into()), line);
        }
        if let Some(r) = &refused {
            m.bus.console.emit(start, 0, crate::console::Source::Uart, Some("ROM".into()), format!("boot refused: {r}"));
        }
        m.boot_refused = refused;
        m.now = start;
        for h in m.harts.iter_mut() {
            h.cycle = start;
            h.idle_cycles = start;
        }
        Ok(m)
    }

    fn assemble(chip: Chip, board: Board, mem: Memory, image: Image, trace: TracePort, config: SimConfig, warnings: Vec<String>) -> Machine {
        let harts_n = chip.harts() as usize;
        let costs = CoreCosts::from_chip(&chip);
        let ddr_region = mem.regions().iter().find(|r| r.kind == RegionKind::Ddr).map(|r| r.id).unwrap_or(0);
        let mut harts = Vec::with_capacity(harts_n);
        for h in 0..chip.harts() {
            let cluster = chip.cluster_of(h);
            let mut hart = Hart::new(h, cluster, costs, region_latencies(&chip, &mem, cluster), ddr_region);
            hart.pc = chip.memory.bootrom.base;
            hart.stop_on_nested_trap = config.stop_on_nested_trap;
            harts.push(hart);
        }
        let mut bus = Bus::new(&chip, &board, mem, trace);
        bus.console.quiet = config.quiet;
        // Hosts Cranelift cannot target run the interpreter only.
        let code = CodeCache::new(config.jit_threshold.and_then(|n| crate::cpu::jit::Jit::new(costs, n)).map(Box::new));
        bus.console.capture_all = config.capture_log;
        let faults_id = bus.events.register("faults");
        let mut routes: Vec<Option<MachineRoute>> = vec![None; faults_id.index() + 1];
        routes[bus.host_id.index()] = Some(|m, p| {
            if let Some(h) = &mut m.host {
                h.on_event(p, m.now, &mut m.bus);
            }
        });
        routes[faults_id.index()] = Some(|m, p| m.fault(p.a as usize, p.b != 0));
        Machine {
            chip,
            board,
            harts,
            bus,
            code,
            now: 0,
            image,
            config,
            host_seconds: 0.0,
            warnings,
            boot_config: None,
            host: None,
            window: None,
            running: Vec::new(),
            running_dirty: true,
            seen_lines: Vec::new(),
            corruptions: Vec::new(),
            faults: Vec::new(),
            faults_armed: false,
            pacing: None,
            hostfwd: false,
            held: None,
            scenario_running: false,
            stop_request: None,
            routes,
            faults_id,
            flash_boot: false,
            boot_refused: None,
            other_images: Vec::new(),
        }
    }

    /// Attaches a scenario: the firmware's boot configuration and the host
    /// model running the scenario's workload.
    pub fn attach_scenario(&mut self, sc: &dpu_targets::Scenario) -> Result<(), String> {
        self.configure(sc)?;
        self.scenario_running = true;
        let host = self.new_host();
        let initiators = self.bus.net.initiators.iter().map(|m| (m.params.name.clone(), m.handle())).collect();
        host.spawn(crate::host::scenario::run(host.clone(), sc.clone(), initiators));
        Ok(())
    }

    /// Applies a scenario's boot configuration, network, targets and
    /// faults, without its host workload (tests drive the host themselves).
    pub fn configure(&mut self, sc: &dpu_targets::Scenario) -> Result<(), String> {
        sc.check_platform(&self.chip, &self.board).map_err(|e| e.to_string())?;
        let cfg = crate::bootcfg::BootConfig::from_scenario(sc);
        if self.flash_boot {
            // A card booted from flash reads its configuration from there
            // (`cargo xtask flash --scenario` wrote the scenario's); the
            // window stays empty, as on a card.
            self.boot_config = Some(cfg);
            return self.attach_network(sc);
        }
        let blob = cfg.to_bytes();
        if blob.len() > self.bus.bootcfg.len() {
            return Err(format!("{}: the configuration does not fit the {}-byte boot configuration window", sc.source.display(), self.bus.bootcfg.len()));
        }
        self.bus.bootcfg[..blob.len()].copy_from_slice(&blob);
        self.boot_config = Some(cfg);
        self.attach_network(sc)
    }

    /// Sets up the scenario's network, targets, initiators and operator
    /// ([`crate::net_setup`]) and keeps its faults (armed when the host
    /// opens its measurement window).
    fn attach_network(&mut self, sc: &dpu_targets::Scenario) -> Result<(), String> {
        let faults = crate::net_setup::attach_network(&mut self.bus, self.chip.chip.clock_hz, sc)?;
        self.faults.extend(faults);
        Ok(())
    }

    /// A scenario fault starts or ends (the faults component's events).
    fn fault(&mut self, index: usize, start: bool) {
        let Some(f) = self.faults.get(index).cloned() else { return };
        let ns = self.sim_time_ns();
        crate::net_setup::apply_fault(&mut self.bus, &f, start, self.now, ns, &mut self.corruptions);
    }

    /// Writes a pcap per DPU port: `cap.pcap` -> `cap-eth0.pcap`, `cap-eth1.pcap`.
    pub fn enable_pcap(&mut self, path: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
        crate::net_setup::enable_pcap(&mut self.bus, &self.board, path)
    }

    /// Joins a real peer's L2 segment through a UDP socket (QEMU
    /// `-netdev dgram` format) and paces simulated time to wall-clock time.
    pub fn attach_bridge(&mut self, spec: crate::net::bridge::BridgeSpec) -> Result<(), String> {
        crate::net_setup::attach_bridge(&mut self.bus, spec)?;
        self.pacing = Some(crate::net_setup::Pacing::starting(self.now));
        Ok(())
    }

    /// The run goes on after the scenario ends (`--run-on`), as with
    /// `--hostfwd`, until Ctrl-C or the time limit.
    pub fn hold_after_scenario(&mut self) {
        self.hostfwd = true;
    }

    /// `--hostfwd`: relays host TCP connections to the management server
    /// through the operator node, simulated time paced to the wall clock.
    pub fn attach_hostfwd(&mut self, addr: std::net::SocketAddr) -> Result<std::net::SocketAddr, String> {
        let bound = crate::net_setup::attach_hostfwd(&mut self.bus, self.now, addr)?;
        self.hostfwd = true;
        if self.pacing.is_none() {
            self.pacing = Some(crate::net_setup::Pacing::starting(self.now));
        }
        Ok(bound)
    }

    /// How far simulated time may advance toward `want` (no further than
    /// the wall clock allows while a real peer is bridged in).
    fn pace(&mut self, want: u64) -> u64 {
        match &self.pacing {
            Some(p) => p.pace(&mut self.bus, self.now, want, self.chip.chip.clock_hz),
            None => want,
        }
    }

    /// What went wrong, for outcomes the firmware reported with a reason
    /// the user must see (printed even with `--quiet`).
    pub fn outcome_message(&self, outcome: &Outcome) -> Option<String> {
        match outcome {
            Outcome::Finished(Finish::ConfigRejected { reason, index }) => Some(format!(
                "the firmware rejected its boot configuration: {}",
                crate::bootcfg::describe_rejection(self.boot_config.as_ref(), *reason, usize::from(*index), &self.chip)
            )),
            _ => None,
        }
    }

    /// Writes the firmware's boot configuration: namespaces as (function,
    /// nsid, bytes, block size).
    pub fn set_namespaces(&mut self, ns: &[(u16, u32, u64, u32)]) -> Result<(), String> {
        self.set_boot_config(crate::bootcfg::BootConfig::ram(ns))
    }

    /// Puts `cfg` in the boot-configuration window (before the run).
    pub fn set_boot_config(&mut self, cfg: crate::bootcfg::BootConfig) -> Result<(), String> {
        let blob = cfg.to_bytes();
        if blob.len() > self.bus.bootcfg.len() {
            return Err(format!("{} namespaces do not fit the {}-byte boot configuration window", cfg.namespaces.len(), self.bus.bootcfg.len()));
        }
        self.bus.bootcfg[..blob.len()].copy_from_slice(&blob);
        self.boot_config = Some(cfg);
        Ok(())
    }

    /// Starts recording a per-I/O trace of at most `limit` I/Os.
    pub fn enable_iotrace(&mut self, limit: usize) -> std::rc::Rc<std::cell::RefCell<crate::iotrace::IoTrace>> {
        let t = std::rc::Rc::new(std::cell::RefCell::new(crate::iotrace::IoTrace::new(limit, self.chip.chip.clock_hz)));
        self.bus.iotrace = Some(t.clone());
        let h = self.new_host();
        h.state().iotrace = Some(t.clone());
        t
    }

    /// Creates the host model (if none) and returns its handle, for tests
    /// that drive the host directly.
    pub fn new_host(&mut self) -> Host {
        if let Some(h) = &self.host {
            return h.host.clone();
        }
        let h = Host::new(self.chip.chip.clock_hz, self.bus.host_mem.clone(), self.config.quiet);
        self.host = Some(HostModel::new(h.clone()));
        h
    }

    /// Routes an event to the component it is addressed to.
    #[inline]
    fn handle(&mut self, e: Event) {
        if self.bus.deliver(e, self.now) {
            return;
        }
        if let Some(Some(route)) = self.routes.get(e.to.index()) {
            route(self, e.payload);
        }
    }

    /// Power goes away now: the flash and the OTP stop where they are.
    pub fn power_cut(&mut self) {
        self.bus.power_off(self.now);
    }

    /// A warm restart the firmware asked for (`regs::finisher::WARM_RESTART`):
    /// the card-internal devices reset ([`Bus::card_reset`]), the boot ROM
    /// stage runs again on the flash as it is now (verifying and loading
    /// the first-stage bootloader, [`crate::secure_boot::rom_stage`]) and
    /// every hart starts over at the ROM when it is done. Host, PCIe
    /// endpoint (host side), memory, flash and OTP carry on.
    pub fn warm_restart(&mut self) {
        self.bus.warm_restart = false;
        self.bus.card_reset(&self.chip, &self.board);
        let rom = crate::secure_boot::rom_stage(&self.chip, &self.bus.spi.flash.array, &self.bus.otp.words, &mut self.bus.mem);
        let (entry, cycles, log, refused) = match rom {
            Ok(s) => (Some(s.entry), s.cycles, s.log, None),
            Err(r) => (None, 0, r.log, Some(r.reason)),
        };
        let stub = match entry {
            Some(e) => bootrom::reset_stub(e),
            None => bootrom::halt_stub(),
        };
        let base = self.chip.memory.bootrom.base;
        // Memory records the rewritten ROM code (and the image the ROM
        // stage loaded) for the code cache.
        self.bus.mem.write_bytes(base, &stub).expect("boot ROM is RAM");
        let start = self.now + cycles;
        self.bus.console.emit(self.now, 0, crate::console::Source::Uart, Some("ROM".into()), "warm restart".into());
        for line in log {
            self.bus.console.emit(start, 0, crate::console::Source::Uart, Some("ROM".into()), line);
        }
        if let Some(r) = &refused {
            self.bus.console.emit(start, 0, crate::console::Source::Uart, Some("ROM".into()), format!("boot refused: {r}"));
        }
        self.boot_refused = refused;
        let costs = CoreCosts::from_chip(&self.chip);
        let ddr_region = self.bus.mem.regions().iter().find(|r| r.kind == RegionKind::Ddr).map(|r| r.id).unwrap_or(0);
        for i in 0..self.harts.len() {
            let old = &self.harts[i];
            let (id, cluster) = (old.id, old.cluster);
            let mut h = Hart::new(id, cluster, costs, region_latencies(&self.chip, &self.bus.mem, cluster), ddr_region);
            h.pc = base;
            h.stop_on_nested_trap = self.config.stop_on_nested_trap;
            // Counters run on: the restart is time the harts spent idle.
            h.cycle = start.max(old.cycle);
            h.idle_cycles = old.idle_cycles + (h.cycle - old.cycle.min(h.cycle));
            h.instret = old.instret;
            h.profile = self.harts[i].profile.take();
            h.debug = self.harts[i].debug;
            self.harts[i] = h;
        }
        self.running_dirty = true;
    }

    /// Once the trace port knows which symbol file's code runs, that file
    /// becomes `image` (fault reports, profiles).
    fn pick_image(&mut self) {
        let Some(i) = self.bus.trace.resolved else { return };
        let others = std::mem::take(&mut self.other_images);
        if i >= 1 && i <= others.len() {
            let mut others = others;
            let chosen = others.swap_remove(i - 1);
            let rom = self.image.symbols.lookup(self.chip.memory.bootrom.base).map(|(n, _)| n.to_string());
            self.image = chosen;
            if let Some(n) = rom {
                self.image.symbols.add(self.chip.memory.bootrom.base, 16, &n);
            }
        }
    }

    /// The flash contents and OTP words, as a run leaves them (to write
    /// back to the `--flash` and `--otp` files: the card's next boot).
    pub fn flash_state(&mut self) -> (&mut crate::dev::nor_flash::FlashArray, &[u32]) {
        let now = self.now;
        if !self.bus.power_cut {
            // The power stays on: a running program or erase completes.
            self.bus.spi.flash.finish(now);
            self.bus.otp.complete();
        }
        (&mut self.bus.spi.flash.array, &self.bus.otp.words)
    }

    /// Runs until the firmware finishes, a fault, a deadlock or the time limit.
    pub fn run(&mut self) -> Outcome {
        self.run_with_progress(|_| {})
    }

    /// Like `run`, calling `tick` about five times per host second.
    pub fn run_with_progress(&mut self, mut tick: impl FnMut(&Machine)) -> Outcome {
        let t0 = Instant::now();
        let out = self.run_inner(&mut tick);
        self.host_seconds += t0.elapsed().as_secs_f64();
        self.settle();
        out
    }

    fn run_inner(&mut self, tick: &mut dyn FnMut(&Machine)) -> Outcome {
        let max = self.config.max_cycles.unwrap_or(u64::MAX);
        self.running_dirty = true;
        if let Some(why) = self.boot_refused.clone() {
            return Outcome::BootRefused(why);
        }
        let mut last_tick = Instant::now();
        let mut iterations = 0u32;
        loop {
            iterations = iterations.wrapping_add(1);
            if iterations % 1024 == 0 {
                if self.stop_request.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                    if let Some(r) = self.held.take() {
                        return Outcome::Host(r);
                    }
                    return Outcome::Interrupted;
                }
                if last_tick.elapsed().as_millis() >= 200 {
                    last_tick = Instant::now();
                    tick(self);
                }
            }
            if let Some(f) = self.bus.finish {
                return Outcome::Finished(f);
            }
            if self.bus.power_cut {
                return Outcome::PowerCut;
            }
            if self.bus.warm_restart {
                self.warm_restart();
                if let Some(why) = self.boot_refused.clone() {
                    return Outcome::BootRefused(why);
                }
            }
            if !self.other_images.is_empty() {
                self.pick_image();
            }
            if self.now >= max {
                if let Some(r) = self.held.take() {
                    return Outcome::Host(r);
                }
                return if self.scenario_running { Outcome::Unfinished } else { Outcome::TimeLimit };
            }
            let mut handled = 0;
            loop {
                match self.bus.events.pop_due_bounded(self.now, &mut handled) {
                    Ok(Some(e)) => self.handle(e),
                    Ok(None) => break,
                    Err(why) => return Outcome::Livelock(why),
                }
            }
            if let Some(h) = &mut self.host {
                h.step(self.now, &mut self.bus);
                for start in h.take_marks() {
                    let snap: Vec<(u64, u64)> = self.harts.iter().map(|h| (h.cycle - h.idle_cycles, h.instret)).collect();
                    let accel = (self.bus.crypto.stats.busy_cycles, self.bus.ec.stats.busy_cycles);
                    if start && !self.faults_armed {
                        self.faults_armed = true;
                        crate::net_setup::arm_faults(&mut self.bus, &self.faults, self.faults_id, self.now);
                    }
                    if start {
                        for h in self.harts.iter_mut() {
                            if let Some(p) = h.profile.as_mut() {
                                p.reset_counts();
                            }
                        }
                        self.window =
                            Some(Window { start: self.now, end: None, at_start: snap, at_end: Vec::new(), accel_at_start: accel, accel_at_end: accel });
                    } else if let Some(w) = &mut self.window {
                        w.end = Some(self.now);
                        w.at_end = snap;
                        w.accel_at_end = accel;
                    }
                }
                if self.held.is_none() {
                    if let Some(r) = self.host.as_ref().and_then(|h| h.finished()) {
                        self.scenario_running = false;
                        crate::net_setup::initiator_log(&mut self.bus, self.chip.chip.clock_hz, self.config.quiet);
                        let r = r.and_then(|()| crate::net_setup::rpc_verdict(&mut self.bus, self.chip.chip.clock_hz));
                        if !self.hostfwd {
                            return Outcome::Host(r);
                        }
                        eprintln!("dpusim: the scenario ended ({}); --hostfwd/--run-on keep the card running until Ctrl-C or --max-time", if r.is_ok() { "passed" } else { "failed" });
                        self.held = Some(r);
                    }
                }
                if iterations % 1024 == 0 {
                    crate::net_setup::operator_log(&mut self.bus, self.chip.chip.clock_hz);
                    crate::net_setup::initiator_log(&mut self.bus, self.chip.chip.clock_hz, self.config.quiet);
                }
            }
            // Sleeping harts can only wake when an interrupt line changed.
            if self.bus.lines != self.seen_lines || self.running_dirty {
                for h in self.harts.iter_mut() {
                    if h.state == RunState::Waiting && h.interrupt_waiting(&self.bus) {
                        h.wake(self.now);
                    }
                }
                self.seen_lines.clone_from(&self.bus.lines);
                self.running.clear();
                self.running.extend((0..self.harts.len() as u32).filter(|&i| self.harts[i as usize].state == RunState::Running));
                self.running_dirty = false;
            }
            let next_event = self.bus.events.next_time();
            if self.running.is_empty() {
                let want = match next_event {
                    Some(t) => t.min(max),
                    None if max != u64::MAX => max,
                    // A bridged peer may still send: wait for it.
                    None if self.pacing.is_some() => self.now + self.chip.chip.clock_hz / 1000,
                    None => return Outcome::Deadlock,
                };
                self.now = self.pace(want);
                continue;
            }
            let mut until = self.now.saturating_add(self.config.quantum).min(max);
            if let Some(t) = next_event {
                until = until.min(t.max(self.now + 1));
            }
            if self.pacing.is_some() {
                until = self.pace(until);
                if until <= self.now {
                    continue;
                }
            }
            self.bus.window.start(until - self.now);
            for k in 0..self.running.len() {
                let i = self.running[k] as usize;
                match self.harts[i].run(&mut self.bus, &mut self.code, until) {
                    Stop::Quantum => {}
                    Stop::Wfi => self.running_dirty = true,
                    Stop::Finish => {
                        self.now = until;
                        return Outcome::Finished(self.bus.finish.expect("finisher wrote"));
                    }
                    Stop::Fatal(message) => {
                        self.now = until;
                        return Outcome::Fatal { hart: i as u32, message };
                    }
                    Stop::Breakpoint => return Outcome::Breakpoint { hart: i as u32 },
                }
            }
            self.now = until;
        }
    }

    /// Runs at most `cycles` more cycles of simulated time (debugger
    /// slices). `None` when the slice ended with nothing to report.
    pub fn run_slice(&mut self, cycles: u64) -> Option<Outcome> {
        let saved = self.config.max_cycles;
        let limit = self.now.saturating_add(cycles);
        self.config.max_cycles = Some(saved.map_or(limit, |m| m.min(limit)));
        let out = self.run();
        self.config.max_cycles = saved;
        match out {
            Outcome::TimeLimit | Outcome::Unfinished if saved.is_none_or(|m| self.now < m) => None,
            o => Some(o),
        }
    }

    /// Executes one instruction on hart `h` (debugger single step).
    pub fn step_hart(&mut self, h: usize) -> Option<Outcome> {
        let hart = &mut self.harts[h];
        hart.bp_skip = hart.pc;
        let until = hart.cycle + 1;
        match self.harts[h].run(&mut self.bus, &mut self.code, until) {
            Stop::Fatal(message) => Some(Outcome::Fatal { hart: h as u32, message }),
            Stop::Finish => self.bus.finish.map(Outcome::Finished),
            _ => None,
        }
    }

    /// Brings sleeping harts' counters up to the current time.
    fn settle(&mut self) {
        for h in self.harts.iter_mut() {
            if h.state != RunState::Running && h.cycle < self.now {
                h.idle_cycles += self.now - h.cycle;
                h.cycle = self.now;
            }
        }
    }

    /// Simulated time in nanoseconds.
    pub fn sim_time_ns(&self) -> u64 {
        (u128::from(self.now) * 1_000_000_000 / u128::from(self.chip.chip.clock_hz)) as u64
    }

    /// Role of a hart per the chip description.
    pub fn role_of(&self, hart: u32) -> &'static str {
        if self.chip.is_control_cluster(self.chip.cluster_of(hart)) {
            "control"
        } else {
            "data"
        }
    }
}
