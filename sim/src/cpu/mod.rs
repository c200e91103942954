//! One RISC-V hart: architectural state ([`Hart`]), CSRs and traps
//! ([`csr`]), the executor with its cycle model ([`exec`]), the
//! decoded-instruction cache and compiled tier the harts share
//! ([`code`], [`jit`]) and the cycle profiler ([`profile`]).

pub mod code;
pub mod csr;
pub mod exec;
pub mod jit;
pub mod profile;
pub mod timing;

pub use exec::Stop;
pub use timing::CoreCosts;


use crate::isa::Op;

/// Software TLB entry: a RAM page the hart may access directly.
#[derive(Clone, Copy)]
pub(crate) struct TlbEntry {
    pub vpn: u64,
    pub ptr: *mut u8,
    pub region: u8,
}

impl TlbEntry {
    pub const EMPTY: TlbEntry = TlbEntry { vpn: u64::MAX, ptr: std::ptr::null_mut(), region: 0 };
}

pub(crate) const TLB_ENTRIES: usize = 64;
pub(crate) const CODE_PAGES: usize = 32;

/// Run state of a hart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// In `wfi`, waiting for an enabled interrupt.
    Waiting,
    /// Stopped for good (fatal fault).
    Halted,
}

/// Machine state captured when an exception is taken (fault reports).
#[derive(Clone, Debug)]
pub struct TrapRecord {
    pub pc: u64,
    pub cause: u64,
    pub tval: u64,
    pub cycle: u64,
    pub regs: [u64; 32],
    /// The instruction at `pc`, if it could be read.
    pub insn: Option<(u32, Op)>,
}

/// Architectural and timing state of one hart.
pub struct Hart {
    /// x0..x31; index 32 is the write sink for x0 (see `isa::SINK`); the
    /// array is 64 long so `r & 63` indexing needs no bounds check.
    pub x: [u64; 64],
    pub pc: u64,
    pub id: u32,
    pub cluster: u32,
    pub state: RunState,
    // Machine CSRs (privileged spec §3.1).
    pub mstatus: u64,
    pub mie: u64,
    pub mtvec: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub mscratch: u64,
    mcycle_offset: u64,
    minstret_offset: u64,
    // Counters.
    /// Local time in core cycles (mcycle before offset).
    pub cycle: u64,
    pub instret: u64,
    pub idle_cycles: u64,
    pub sleep_since: u64,
    /// Exceptions taken and not yet returned from with `mret`.
    pub exception_depth: u32,
    /// Stop the run (fatal) on an exception inside an exception handler
    /// instead of taking it again as the hardware does (a debugging aid:
    /// `--stop-on-nested-trap`).
    pub stop_on_nested_trap: bool,
    pub last_trap: Option<Box<TrapRecord>>,
    pub traps_taken: u64,
    pub interrupts_taken: u64,
    // Timing model.
    pub(crate) costs: CoreCosts,
    /// Load latency per memory region from this hart's cluster.
    pub(crate) region_latency: Vec<u32>,
    pub(crate) ddr_region: u8,
    pub(crate) l1d: Vec<u64>,
    // Fast paths.
    pub(crate) rtlb: [TlbEntry; TLB_ENTRIES],
    pub(crate) wtlb: [TlbEntry; TLB_ENTRIES],
    pub(crate) tlb_epoch: u64,
    pub(crate) code_vpn: u64,
    pub(crate) code_page: *mut code::DecodedPage,
    /// Recently used decoded pages, direct-mapped by page number (saves the
    /// code cache's hash lookup when code calls across pages).
    pub(crate) code_pages: [(u64, *mut code::DecodedPage); CODE_PAGES],
    /// The straight-line body running now: its first pc and the
    /// instructions retired before it (for faults inside it).
    pub(crate) body_pc: u64,
    pub(crate) body_instret: u64,
    /// The pc after the body, left by its last op.
    pub(crate) body_npc: u64,
    /// Where a compiled body stopped at the time limit (op index).
    pub(crate) body_resume: u32,
    /// The body the last run stopped in at its time limit: header, op to
    /// go on with, the pc there, the body's first pc, and `CodeCache::body_gen`
    /// then (the body may since have been dropped).
    pub(crate) resume_head: *mut crate::cpu::exec::BodyOp,
    pub(crate) resume_at: u32,
    pub(crate) resume_pc: u64,
    pub(crate) resume_body_pc: u64,
    pub(crate) resume_gen: u64,
    /// Instruction trace (enabled per hart): executed (cycle, pc, op).
    pub trace: Option<InsnTrace>,
    /// Cycle profile (enabled per hart).
    pub profile: Option<Box<profile::Profile>>,
    /// Check debugger breakpoints (`Bus::breakpoints`) before each instruction.
    pub debug: bool,
    /// Resume past a breakpoint at this pc once (the one the hart stopped on).
    pub bp_skip: u64,
    /// Why the run must stop, left by an instruction handler (see `exec`).
    pub(crate) stop: Option<Stop>,
}

/// A bounded record of executed instructions.
#[derive(Default)]
pub struct InsnTrace {
    pub limit: usize,
    pub entries: Vec<(u64, u64, Op)>,
}

impl Hart {
    pub fn new(id: u32, cluster: u32, costs: CoreCosts, region_latency: Vec<u32>, ddr_region: u8) -> Hart {
        let lines = costs.l1d_lines;
        Hart {
            x: [0; 64],
            pc: 0,
            id,
            cluster,
            state: RunState::Running,
            mstatus: dpu_hal::regs::csr::MSTATUS_MPP,
            mie: 0,
            mtvec: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            mscratch: 0,
            mcycle_offset: 0,
            minstret_offset: 0,
            cycle: 0,
            instret: 0,
            idle_cycles: 0,
            sleep_since: 0,
            exception_depth: 0,
            stop_on_nested_trap: false,
            last_trap: None,
            traps_taken: 0,
            interrupts_taken: 0,
            costs,
            region_latency,
            ddr_region,
            l1d: vec![u64::MAX; lines],
            rtlb: [TlbEntry::EMPTY; TLB_ENTRIES],
            wtlb: [TlbEntry::EMPTY; TLB_ENTRIES],
            tlb_epoch: 0,
            code_vpn: u64::MAX,
            code_page: std::ptr::null_mut(),
            code_pages: [(u64::MAX, std::ptr::null_mut()); CODE_PAGES],
            body_pc: 0,
            body_instret: 0,
            body_npc: 0,
            body_resume: 0,
            resume_head: std::ptr::null_mut(),
            resume_at: 0,
            resume_pc: 0,
            resume_body_pc: 0,
            resume_gen: 0,
            trace: None,
            profile: None,
            debug: false,
            bp_skip: u64::MAX,
            stop: None,
        }
    }

    /// Records one executed instruction while the trace has room.
    #[cold]
    pub(crate) fn record_trace(&mut self, pc: u64, op: Op) {
        let cycle = self.cycle;
        if let Some(t) = &mut self.trace {
            if t.entries.len() < t.limit {
                t.entries.push((cycle, pc, op));
            }
        }
    }

    /// Register `r` (x0..x31).
    pub fn reg(&self, r: usize) -> u64 {
        self.x[r & 31]
    }

    /// Sets register `r`; writes to x0 are ignored.
    pub fn set_reg(&mut self, r: usize, v: u64) {
        if r != 0 && r < 32 {
            self.x[r] = v;
        }
    }

    /// The 32 integer registers.
    pub fn regs(&self) -> [u64; 32] {
        let mut r = [0u64; 32];
        r.copy_from_slice(&self.x[..32]);
        r[0] = 0;
        r
    }

    /// Forgets all cached translations (after the memory map changes).
    pub fn flush_tlbs(&mut self) {
        self.rtlb = [TlbEntry::EMPTY; TLB_ENTRIES];
        self.wtlb = [TlbEntry::EMPTY; TLB_ENTRIES];
        self.code_vpn = u64::MAX;
        self.code_pages = [(u64::MAX, std::ptr::null_mut()); CODE_PAGES];
    }

    /// Puts the hart to sleep in `wfi` at its current time.
    pub fn sleep(&mut self) {
        self.state = RunState::Waiting;
        self.sleep_since = self.cycle;
    }

    /// Wakes a sleeping hart at time `now`.
    pub fn wake(&mut self, now: u64) {
        if self.state == RunState::Waiting {
            self.state = RunState::Running;
            if now > self.cycle {
                self.idle_cycles += now - self.cycle;
                self.cycle = now;
            }
        }
    }
}
