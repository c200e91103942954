//! The executor: runs a hart until a time limit, charging cycles from the
//! timing model. Semantics follow the RISC-V unprivileged spec v20191213
//! (RV64I ch. 2/5, M ch. 7, A ch. 8, Zicsr ch. 9, Zifencei ch. 3, C ch. 16).
//!
//! Misaligned loads and stores to RAM are performed in hardware (two
//! accesses, `misaligned_penalty` extra cycles), also across pages. LR/SC
//! and AMOs must be naturally aligned (address-misaligned exception
//! otherwise) and must target RAM (access fault otherwise). Device
//! registers must be accessed naturally aligned.
//!
//! Three ways to run an instruction, all with the same semantics and
//! timing (tests run them in lockstep):
//! * one at a time through its *slot handler* (per decoded-cache slot;
//!   used with hooks on, after a time-limit stop until the next jump, and
//!   for instructions no body can hold);
//! * inside a *straight-line body*: pre-decoded ops run back to back along
//!   the not-taken path of branches (`handlers`), built on first entry;
//! * a hot body compiled to host code (`super::jit`).
//!
//! Instructions that need the whole hart state (CSRs, atomics, system
//! instructions) run out of line in `exec_rare`.

use super::csr::TrapOutcome;
use super::{Hart, RunState, TlbEntry, CODE_PAGES, TLB_ENTRIES};
use super::code::{fetch_decode, CodeCache, NO_BODY};
use crate::bus::Bus;
use crate::isa::{Kind, Op, SINK};

mod handlers;
pub use handlers::{Body, BodyOp};
pub(crate) use handlers::{BODY_END as JIT_BODY_END, EXIT as JIT_EXIT};
use handlers::{slot_index, BODY_END, EXIT, HANDLERS};
use crate::mem::{PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};
use dpu_hal::regs::csr::*;

/// Why [`Hart::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Reached the time limit.
    Quantum,
    /// Executed `wfi` with nothing pending: the hart sleeps.
    Wfi,
    /// A store to the test finisher ended the simulation.
    Finish,
    /// Unrecoverable fault detected by the simulator; the hart is halted.
    Fatal(String),
    /// About to execute an instruction at a debugger breakpoint.
    Breakpoint,
}

/// A memory access that did not complete normally.
enum MemErr {
    Exception(u64, u64),
    Finish,
}

#[inline(always)]
unsafe fn read_le(p: *const u8, size: u64) -> u64 {
    // SAFETY (caller): `p..p+size` lies inside one live page.
    unsafe {
        match size {
            1 => u64::from(*p),
            2 => u64::from(u16::from_le(std::ptr::read_unaligned(p as *const u16))),
            4 => u64::from(u32::from_le(std::ptr::read_unaligned(p as *const u32))),
            _ => u64::from_le(std::ptr::read_unaligned(p as *const u64)),
        }
    }
}

#[inline(always)]
unsafe fn write_le(p: *mut u8, size: u64, v: u64) {
    // SAFETY (caller): `p..p+size` lies inside one live page.
    unsafe {
        match size {
            1 => *p = v as u8,
            2 => std::ptr::write_unaligned(p as *mut u16, (v as u16).to_le()),
            4 => std::ptr::write_unaligned(p as *mut u32, (v as u32).to_le()),
            _ => std::ptr::write_unaligned(p as *mut u64, v.to_le()),
        }
    }
}

#[inline(always)]
fn tlb_index(vpn: u64) -> usize {
    (vpn as usize) & (TLB_ENTRIES - 1)
}

impl Hart {
    /// Runs until `self.cycle >= until`, a `wfi`, the finisher, or a fatal
    /// fault, on `bus` with the machine's decoded-instruction cache `code`.
    pub fn run(&mut self, bus: &mut Bus, code: &mut CodeCache, until: u64) -> Stop {
        // Drop what writes since the last run made stale, then (no body
        // runs between two `run`s) free the dropped bodies.
        code.sync(&mut bus.mem);
        code.reap();
        if self.trace.is_some() || self.profile.is_some() || self.debug {
            self.run_inner::<true>(bus, code, until)
        } else {
            self.run_inner::<false>(bus, code, until)
        }
    }

    /// The executor loop. `SLOW` is a separate instantiation with the
    /// per-instruction hooks (instruction trace, profiler, debugger
    /// breakpoints), so the normal path pays nothing for them.
    ///
    /// Each instruction runs in its own small handler function, called
    /// through [`HANDLERS`] by the decoded kind (call threading): the loop
    /// keeps only the program counter and the two counters live, and every
    /// handler is compiled on its own, so no giant `match` spills state to
    /// the stack on every instruction.
    fn run_inner<const SLOW: bool>(&mut self, bus: &mut Bus, code: &mut CodeCache, until: u64) -> Stop {
        if self.state != RunState::Running {
            return Stop::Wfi;
        }
        self.sync_epoch(bus);
        self.check_interrupts(bus);
        // The program counter, cycle and instruction counters live in locals
        // (registers) while instructions run; `self` is brought up to date
        // (`save!`) before anything that reads or changes them there and
        // read back (`load_state!`) after a handler left them there.
        let mut pc = self.pc;
        let mut cycle = self.cycle;
        let mut instret = self.instret;
        macro_rules! save {
            () => {
                self.pc = pc;
                self.cycle = cycle;
                self.instret = instret;
            };
        }
        macro_rules! load_state {
            () => {
                pc = self.pc;
                cycle = self.cycle;
                instret = self.instret;
            };
        }
        // Takes exception `cause` at the current instruction.
        macro_rules! trap {
            ($cause:expr, $tval:expr) => {{
                save!();
                if let Some(s) = self.exception(bus, $cause, $tval) {
                    return s;
                }
                load_state!();
                continue;
            }};
        }

        // The pc a run starts at is usually where the last one hit its time
        // limit, somewhere inside a body. Building bodies at such points
        // would make one per instruction of every hot body (cold copies,
        // touched once per quantum), so until the next jump or taken
        // branch the hart runs one instruction at a time, unless a body
        // already starts there.
        let mut resuming = true;
        // Better: the last run stopped inside a body that still exists, at
        // this pc; go on inside it (interpreted; compiled code has no
        // entry points inside).
        let mut resume_in: Option<(*mut BodyOp, u32, u64)> = None;
        if !SLOW && !self.resume_head.is_null() && self.resume_pc == pc && self.resume_gen == code.body_gen {
            resume_in = Some((self.resume_head, self.resume_at, self.resume_body_pc));
        }
        self.resume_head = std::ptr::null_mut();
        while cycle < until {
            let vpn = pc >> PAGE_SHIFT;
            if vpn != self.code_vpn {
                // Code written during this run (a store, a DMA it
                // started) is dropped before anything is looked up: such
                // a write forgets the current page (`code_written`), so
                // this costs the hot path nothing.
                code.sync(&mut bus.mem);
                let cached = self.code_pages[vpn as usize % CODE_PAGES];
                let page = if cached.0 == vpn { Some(cached.1) } else { code.page(&mut bus.mem, vpn) };
                match page {
                    Some(p) => {
                        self.code_pages[vpn as usize % CODE_PAGES] = (vpn, p);
                        // Decoded pages are never freed.
                        self.code_page = p;
                        self.code_vpn = vpn;
                        self.sync_epoch(bus);
                    }
                    None => trap!(EXC_INST_ACCESS, pc),
                }
            }
            let index = ((pc & PAGE_MASK) >> 1) as usize;
            if !SLOW {
                // A straight-line body starts here? Run it whole.
                // SAFETY: `code_page` is live (above); `index` < 2048.
                let (body, at, body_pc) = match resume_in.take() {
                    Some(r) => r,
                    None => (unsafe { *(*self.code_page).body_of.get_unchecked(index) }, 0, pc),
                };
                if body != NO_BODY && !(body.is_null() && resuming) {
                    if body.is_null() {
                        self.build_body(bus, pc, index);
                        continue;
                    }
                    // SAFETY (for the body below): `body_of` points at one
                    // of the page's boxed bodies (it is cleared whenever
                    // they are dropped); a body's memory stays valid until
                    // `CodeCache::reap` even if a store in it drops the page's
                    // bodies.
                    self.body_pc = body_pc;
                    self.body_instret = instret - u64::from(at);
                    let head = body;
                    // SAFETY: the ops follow the header.
                    let first = unsafe { head.add(1) } as *const BodyOp;
                    let mut op;
                    // SAFETY: as above.
                    let compiled = if at == 0 { unsafe { (*head).compiled() } } else { None };
                    if let Some(f) = compiled {
                        // SAFETY: a compiled body runs with its hart and bus
                        // (`body_pc` / `body_instret` set above).
                        cycle = unsafe { f(self, bus, cycle, until) };
                        // SAFETY: one past the last op run (EXIT: unused).
                        op = unsafe { first.add(self.body_resume as usize) };
                    } else {
                        // SAFETY: as above.
                        if at == 0 {
                            // SAFETY: as above.
                            unsafe { self.count_run(code, body) };
                        }
                        // One compare per instruction: EXIT and the end
                        // marker's flag are both >= `until`.
                        // SAFETY: `at` is an op of this body (saved below).
                        op = unsafe { first.add(at as usize) };
                        loop {
                            // SAFETY: handler contract: `op` is a live op of
                            // the body starting at `self.body_pc`; its last
                            // op (a jump or the end marker) and any taken
                            // branch set BODY_END, so we stop there.
                            cycle = unsafe { ((*op).handler)(self, bus, op, cycle) };
                            // SAFETY: at most one past the last op.
                            op = unsafe { op.add(1) };
                            if cycle >= until {
                                break;
                            }
                        }
                    }
                    resuming = false;
                    if cycle == EXIT {
                        if let Some(s) = self.stop.take() {
                            return s;
                        }
                        load_state!();
                        continue;
                    }
                    if cycle & BODY_END != 0 {
                        // Left the body: a taken branch, the final jump or
                        // the end marker left the next pc.
                        cycle &= !BODY_END;
                        // SAFETY: `op` is one past the last op run.
                        let last = unsafe { &*op.sub(1) };
                        pc = self.body_npc;
                        instret = self.body_instret + u64::from(last.index) + u64::from(last.len != 0);
                    } else {
                        // Out of time inside: resume at the next op, in
                        // this body if it is still there next run.
                        // SAFETY: a body op or its end, not past it.
                        let next = unsafe { &*op };
                        pc = self.body_pc + u64::from(next.offset);
                        instret = self.body_instret + u64::from(next.index);
                        self.resume_head = head;
                        self.resume_at = u32::from(next.index);
                        self.resume_pc = pc;
                        self.resume_body_pc = self.body_pc;
                        self.resume_gen = code.body_gen;
                    }
                    continue;
                }
            }
            // SAFETY: `code_page` is the live decoded page of `pc` and the
            // index is < 2048.
            let slot = unsafe { (&raw mut (*self.code_page).ops).cast::<Op>().add(index) };
            if SLOW {
                // The hooks need the decoded instruction first (the fast
                // path decodes in the `NotDecoded` handler).
                // SAFETY: as above; no reference to the slot is held.
                if unsafe { (*slot).kind } == Kind::NotDecoded {
                    match fetch_decode(&mut bus.mem, pc) {
                        Ok(o) => {
                            // SAFETY: as above.
                            unsafe { slot.write(o) };
                            self.sync_epoch(bus);
                        }
                        Err(addr) => trap!(EXC_INST_ACCESS, addr),
                    }
                }
                if self.debug && bus.breakpoints.contains(&pc) {
                    if self.bp_skip == pc {
                        self.bp_skip = u64::MAX;
                    } else {
                        save!();
                        return Stop::Breakpoint;
                    }
                }
                if self.trace.is_some() {
                    self.cycle = cycle;
                    // SAFETY: as above.
                    self.record_trace(pc, unsafe { slot.read() });
                }
            }
            // SAFETY: as above.
            let h = unsafe { slot_index((*slot).kind, (*slot).len) };
            // SAFETY: `slot` is the live decoded slot of `pc` (handler contract).
            let (npc, ncycle) = unsafe { HANDLERS[h](self, bus, slot, pc, cycle, instret) };
            if npc == EXIT {
                if let Some(s) = self.stop.take() {
                    return s;
                }
                // A trap entered its handler: a natural body start.
                resuming = false;
                load_state!();
                continue;
            }
            // SAFETY: as above.
            if resuming && npc != pc.wrapping_add(u64::from(unsafe { (*slot).len })) {
                // A jump or taken branch: bodies may start again.
                resuming = false;
            }
            if SLOW {
                if let Some(p) = self.profile.as_mut() {
                    // SAFETY: as above.
                    p.step(unsafe { &*slot }, pc, npc, ncycle - cycle);
                }
            }
            pc = npc;
            cycle = ncycle;
            instret += 1;
        }
        save!();
        debug_assert_eq!(self.x[0], 0);
        Stop::Quantum
    }

    /// Builds the straight-line body that starts at `pc` (slot `index` of
    /// the current code page): the instructions up to and including the
    /// next jump, or up to the next instruction that needs the hart's full
    /// state (LR/SC, AMOs, CSRs, system instructions), at most `MAX_BODY`,
    /// never past the page (an instruction that straddles into the next
    /// page ends it too). Conditional branches do not end a body: taken,
    /// they leave it; not taken, the body runs on (a superblock along the
    /// fall-through path). Decodes the slots it reads.
    #[cold]
    #[inline(never)]
    fn build_body(&mut self, bus: &mut Bus, pc: u64, index: usize) {
        const MAX_BODY: usize = 64;
        let page = self.code_page;
        let mut ops = Vec::new();
        let mut offset = 0u64;
        let mut terminated = false;
        while ops.len() < MAX_BODY {
            let at = pc + offset;
            let i = index + (offset >> 1) as usize;
            if i >= 2048 {
                break;
            }
            // SAFETY: `page` is the live decoded page of `pc`; `i` < 2048.
            let mut op = unsafe { (*page).ops[i] };
            if op.kind == Kind::NotDecoded {
                match fetch_decode(&mut bus.mem, at) {
                    Ok(o) => {
                        op = o;
                        // SAFETY: as above.
                        unsafe { (*page).ops[i] = o };
                        self.sync_epoch(bus);
                    }
                    // The slot path reports the fault when it gets there.
                    Err(_) => break,
                }
            }
            if (at & PAGE_MASK) + u64::from(op.len) > PAGE_SIZE {
                break;
            }
            match BodyOp::new(&op, offset as u16, ops.len() as u16) {
                Some(b) => ops.push(b),
                None => break,
            }
            offset += u64::from(op.len);
            // Jumps end a body; conditional branches leave it only when
            // taken, so the body runs on along the not-taken path.
            if matches!(op.kind, Kind::Jal | Kind::Jalr) {
                terminated = true;
                break;
            }
        }
        // SAFETY: as above; no body of this page is borrowed here.
        unsafe {
            let p = &mut *page;
            p.body_of[index] = if ops.is_empty() {
                NO_BODY
            } else {
                if !terminated {
                    ops.push(BodyOp::end(offset as u16, ops.len() as u16));
                }
                let mut all = Vec::with_capacity(ops.len() + 1);
                all.push(BodyOp::header(ops.len()));
                all.extend_from_slice(&ops);
                let mut b: Box<Body> = all.into_boxed_slice();
                let ptr = b.as_mut_ptr();
                p.bodies.push(b);
                ptr
            };
        }
    }

    /// Counts an interpreted run of `body`; queues it for compilation once
    /// it is hot.
    ///
    /// # Safety
    /// `body` is a live body of the current code page.
    #[inline(always)]
    unsafe fn count_run(&mut self, code: &mut CodeCache, body: *mut BodyOp) {
        if let Some(jit) = code.jit.as_deref_mut() {
            // SAFETY: caller (`body` is the header).
            let runs = unsafe { (*body).count_run() };
            if runs == jit.stats.threshold {
                // SAFETY: bodies live until `CodeCache::reap`, which flushes first.
                unsafe { jit.enqueue(body) };
            }
        }
    }

    /// Leaves the state of the instruction at `pc` in `self` (for handlers
    /// that take the slow way out).
    #[inline(always)]
    fn park(&mut self, pc: u64, cycle: u64, instret: u64) {
        self.pc = pc;
        self.cycle = cycle;
        self.instret = instret;
    }

    /// A failed memory access of the instruction at `pc` (`npc` follows it):
    /// takes the exception or ends the run at the finisher.
    #[cold]
    #[inline(never)]
    fn mem_fault(&mut self, bus: &mut Bus, e: MemErr, pc: u64, npc: u64, cycle: u64, instret: u64) -> (u64, u64) {
        match e {
            MemErr::Exception(cause, tval) => {
                self.park(pc, cycle, instret);
                self.stop = self.exception(bus, cause, tval);
            }
            MemErr::Finish => {
                // The store to the test finisher (MMIO) completed.
                self.park(npc, cycle + self.costs.mmio, instret + 1);
                self.stop = Some(Stop::Finish);
            }
        }
        (EXIT, 0)
    }

    /// Executes an instruction that has no handler of its own: LR/SC and
    /// AMOs, CSR accesses, `fence.i`, `ecall`, `ebreak`, `mret`, `wfi`,
    /// illegal encodings, and the first execution of a decoded-cache slot
    /// (which only decodes; the loop then runs the slot again). The state
    /// is in `self`: `pc` is this instruction's and `cycle` already carries
    /// its base cost. `Some` stops the run.
    fn exec_rare(&mut self, bus: &mut Bus, op: Op, slot: *mut Op) -> Option<Stop> {
        use Kind::*;
        let c = self.costs;
        let pc = self.pc;
        let cycle_before = self.cycle - c.base;
        let rs1 = self.x[(op.rs1 & 63) as usize];
        let rs2 = self.x[(op.rs2 & 63) as usize];
        let rd = (op.rd & 63) as usize;
        let next = pc.wrapping_add(u64::from(op.len));
        // Retires the instruction (profiled) and moves to `npc`.
        macro_rules! retire {
            ($npc:expr) => {{
                let npc = $npc;
                if let Some(p) = self.profile.as_mut() {
                    p.step(&op, pc, npc, self.cycle - cycle_before);
                }
                self.pc = npc;
                self.instret += 1;
            }};
        }
        macro_rules! trap {
            ($cause:expr, $tval:expr) => {
                return self.exception(bus, $cause, $tval)
            };
        }
        macro_rules! mem_err {
            ($e:expr) => {
                match $e {
                    MemErr::Exception(cause, tval) => trap!(cause, tval),
                    MemErr::Finish => {
                        // The store to the test finisher (MMIO) completed.
                        self.cycle += c.mmio;
                        retire!(next);
                        return Some(Stop::Finish);
                    }
                }
            };
        }
        macro_rules! amo {
            ($size:expr, $f:expr) => {{
                let (p, region) = match self.amo_ptr(bus, rs1, $size) {
                    Ok(x) => x,
                    Err(e) => mem_err!(e),
                };
                // SAFETY: `amo_ptr` checked alignment and that the access
                // lies in one live RAM page.
                let old = unsafe { read_le(p, $size) };
                let old = if $size == 4 { old as i32 as i64 as u64 } else { old };
                let new: u64 = $f(old, rs2);
                // SAFETY: as above.
                unsafe { write_le(p, $size, new) };
                bus.snoop_store(rs1, $size);
                self.cycle += self.atomic_latency(bus, region);
                self.x[rd] = old;
            }};
        }
        match op.kind {
            NotDecoded => {
                // First execution of this slot: decode only.
                self.cycle = cycle_before;
                match fetch_decode(&mut bus.mem, pc) {
                    Ok(o) => {
                        // SAFETY: `slot` is the live decoded-cache slot of `pc`.
                        unsafe { slot.write(o) };
                        self.sync_epoch(bus);
                        return None;
                    }
                    Err(addr) => trap!(EXC_INST_ACCESS, addr),
                }
            }
            Illegal => trap!(EXC_ILLEGAL, op.imm as u32 as u64),
            Ecall => trap!(EXC_ECALL_M, 0),
            Ebreak => trap!(EXC_BREAKPOINT, pc),
            // Nothing to drop: every write into DPU memory (hart stores
            // and AMOs, DMA, NIC and accelerator writes, the debugger)
            // was recorded by memory and the code cache dropped exactly
            // the decoded instructions it overlapped before this one ran
            // (`CodeCache::sync`), so none is stale when a hart
            // synchronizes its instruction stream; only the refetch
            // costs (chip file). Emptying the whole cache here cost host
            // time in proportion to code size at every `fence.i`.
            FenceI => self.cycle += c.fence_i,
            Mret => {
                self.mret();
                let target = self.pc;
                self.pc = pc;
                retire!(target);
                self.check_interrupts(bus);
                return None;
            }
            Wfi => {
                if !self.interrupt_waiting(bus) {
                    retire!(next);
                    self.sleep();
                    return Some(Stop::Wfi);
                }
            }
            // ------------------------------------------------------- A
            LrW | LrD => {
                let size = if op.kind == LrW { 4 } else { 8 };
                if rs1 & (size - 1) != 0 {
                    trap!(EXC_LOAD_MISALIGNED, rs1);
                }
                if bus.mem.region_of(rs1).is_none() {
                    // LR from a device or unmapped address: access fault.
                    trap!(EXC_LOAD_ACCESS, rs1);
                }
                match self.load(bus, self.cycle, rs1, size) {
                    Ok((v, lat)) => {
                        self.x[rd] = if size == 4 { v as i32 as i64 as u64 } else { v };
                        bus.reserve(self.id, rs1);
                        self.cycle += lat + c.amo_extra;
                    }
                    Err(e) => mem_err!(e),
                }
            }
            ScW | ScD => {
                let size = if op.kind == ScW { 4 } else { 8 };
                if rs1 & (size - 1) != 0 {
                    trap!(EXC_STORE_MISALIGNED, rs1);
                }
                if bus.take_reservation(self.id, rs1) {
                    let (p, region) = match self.amo_ptr(bus, rs1, size) {
                        Ok(x) => x,
                        Err(e) => mem_err!(e),
                    };
                    // SAFETY: `amo_ptr` checked the access is in one live RAM page.
                    unsafe { write_le(p, size, rs2) };
                    bus.snoop_store(rs1, size);
                    self.cycle += self.atomic_latency(bus, region);
                    self.x[rd] = 0;
                } else {
                    self.cycle += c.amo_extra;
                    self.x[rd] = 1;
                }
            }
            AmoswapW => amo!(4, |_o: u64, s: u64| s),
            AmoaddW => amo!(4, |o: u64, s: u64| o.wrapping_add(s)),
            AmoxorW => amo!(4, |o: u64, s: u64| o ^ s),
            AmoandW => amo!(4, |o: u64, s: u64| o & s),
            AmoorW => amo!(4, |o: u64, s: u64| o | s),
            AmominW => amo!(4, |o: u64, s: u64| (o as i32).min(s as i32) as u64),
            AmomaxW => amo!(4, |o: u64, s: u64| (o as i32).max(s as i32) as u64),
            AmominuW => amo!(4, |o: u64, s: u64| (o as u32).min(s as u32) as u64),
            AmomaxuW => amo!(4, |o: u64, s: u64| (o as u32).max(s as u32) as u64),
            AmoswapD => amo!(8, |_o: u64, s: u64| s),
            AmoaddD => amo!(8, |o: u64, s: u64| o.wrapping_add(s)),
            AmoxorD => amo!(8, |o: u64, s: u64| o ^ s),
            AmoandD => amo!(8, |o: u64, s: u64| o & s),
            AmoorD => amo!(8, |o: u64, s: u64| o | s),
            AmominD => amo!(8, |o: u64, s: u64| (o as i64).min(s as i64) as u64),
            AmomaxD => amo!(8, |o: u64, s: u64| (o as i64).max(s as i64) as u64),
            AmominuD => amo!(8, |o: u64, s: u64| o.min(s)),
            AmomaxuD => amo!(8, |o: u64, s: u64| o.max(s)),
            // --------------------------------------------------- Zicsr
            Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci => {
                let n = (op.imm as u16) & 0xfff;
                let src = match op.kind {
                    Csrrwi | Csrrsi | Csrrci => u64::from(op.rs1),
                    _ => rs1,
                };
                // csrrs/csrrc with rs1 = x0 (or uimm = 0) do not write (§9.1).
                let writes = matches!(op.kind, Csrrw | Csrrwi) || op.rs1 != 0;
                // mcycle/minstret/time read the counters (in `self`).
                let Some(old) = self.csr_read(bus, n) else { trap!(EXC_ILLEGAL, op_bits(&op)) };
                if writes {
                    let new = match op.kind {
                        Csrrw | Csrrwi => src,
                        Csrrs | Csrrsi => old | src,
                        _ => old & !src,
                    };
                    if !self.csr_write(n, new) {
                        trap!(EXC_ILLEGAL, op_bits(&op));
                    }
                }
                self.x[rd] = old;
                self.cycle += c.csr_extra;
                if writes && (n == MSTATUS || n == MIE) {
                    // Enabling may make a pending interrupt take effect now.
                    retire!(next);
                    self.check_interrupts(bus);
                    return None;
                }
            }
            _ => unreachable!("{:?} runs in the hot loop", op.kind),
        }
        retire!(next);
        None
    }

    /// Flushes the write TLB if some page became a code page since last look.
    #[inline(always)]
    fn sync_epoch(&mut self, bus: &Bus) {
        if self.tlb_epoch != bus.mem.code_epoch() {
            self.wtlb = [TlbEntry::EMPTY; TLB_ENTRIES];
            self.tlb_epoch = bus.mem.code_epoch();
        }
    }

    /// After a write that may have hit code (slow paths only): if memory
    /// recorded code writes, forgets the current code page so that the
    /// executor loop looks it up again, and drops the stale code there
    /// (`CodeCache::sync`) before the next instruction.
    #[inline(always)]
    fn code_written(&mut self, bus: &Bus) {
        if bus.mem.code_written() {
            self.code_vpn = u64::MAX;
        }
    }

    /// Takes an exception; `Some(stop)` if the simulator must stop the hart.
    fn exception(&mut self, bus: &mut Bus, cause: u64, tval: u64) -> Option<Stop> {
        match self.take_exception(bus, cause, tval) {
            TrapOutcome::Handled => None,
            TrapOutcome::Fatal(msg) => {
                self.state = RunState::Halted;
                Some(Stop::Fatal(msg))
            }
        }
    }

    /// Cycles (beyond the base cost) of a RAM access to `region` at `addr`.
    #[inline(always)]
    fn load_latency(&mut self, bus: &mut Bus, region: u8, addr: u64) -> u64 {
        if region == self.ddr_region {
            let line = addr >> self.costs.l1d_line_shift;
            let idx = (line as usize) & (self.costs.l1d_lines - 1);
            if self.l1d[idx] == line {
                return self.costs.l1d_hit.saturating_sub(self.costs.base);
            }
            self.l1d[idx] = line;
            return self.costs.ddr.saturating_sub(self.costs.base) + bus.window.charge(region, self.costs.l1d_line);
        }
        u64::from(self.region_latency[region as usize]) + bus.window.charge(region, 1)
    }

    /// Cycles of an atomic at memory (bypasses L1D).
    #[inline(always)]
    fn atomic_latency(&mut self, bus: &mut Bus, region: u8) -> u64 {
        let mem = if region == self.ddr_region {
            self.costs.ddr.saturating_sub(self.costs.base) + bus.window.charge(region, 8)
        } else {
            u64::from(self.region_latency[region as usize]) + bus.window.charge(region, 1)
        };
        mem + self.costs.amo_extra
    }

    #[inline(always)]
    fn store_latency(&mut self, bus: &mut Bus, region: u8, size: u64) -> u64 {
        let units = if region == self.ddr_region { size } else { 1 };
        self.costs.store + bus.window.charge(region, units)
    }

    /// Cycles (beyond the base cost) of a `size`-byte load from RAM at
    /// `addr` in `region`: latency, bandwidth window, misalignment.
    #[inline(always)]
    pub(crate) fn ram_load_cycles(&mut self, bus: &mut Bus, region: u8, addr: u64, size: u64) -> u64 {
        let mut lat = self.load_latency(bus, region, addr);
        if addr & (size - 1) != 0 {
            lat += self.costs.misaligned;
        }
        lat
    }

    /// Cycles (beyond the base cost) of a `size`-byte store to RAM at
    /// `addr` in `region`, after which it breaks LR reservations it hits.
    #[inline(always)]
    pub(crate) fn ram_store_cycles(&mut self, bus: &mut Bus, region: u8, addr: u64, size: u64) -> u64 {
        let mut lat = self.store_latency(bus, region, size);
        if addr & (size - 1) != 0 {
            lat += self.costs.misaligned;
        }
        bus.snoop_store(addr, size);
        lat
    }

    /// Loads `size` bytes at `addr` (the hart's time is `now`): the value
    /// and the cycles the access costs beyond the base cost.
    #[inline(always)]
    fn load(&mut self, bus: &mut Bus, now: u64, addr: u64, size: u64) -> Result<(u64, u64), MemErr> {
        let vpn = addr >> PAGE_SHIFT;
        let e = self.rtlb[tlb_index(vpn)];
        let off = addr & PAGE_MASK;
        if e.vpn == vpn && off + size <= PAGE_SIZE {
            // SAFETY: TLB entries point at live pages; `off + size <= PAGE_SIZE`.
            let v = unsafe { read_le(e.ptr.add(off as usize), size) };
            return Ok((v, self.ram_load_cycles(bus, e.region, addr, size)));
        }
        self.load_slow(bus, now, addr, size)
    }

    #[cold]
    fn load_slow(&mut self, bus: &mut Bus, now: u64, addr: u64, size: u64) -> Result<(u64, u64), MemErr> {
        let vpn = addr >> PAGE_SHIFT;
        let off = addr & PAGE_MASK;
        if let Some(slot) = bus.mem.page_slot(vpn) {
            let page = bus.mem.page_mut(slot);
            let entry = TlbEntry { vpn, ptr: page.data.as_mut_ptr(), region: page.region };
            self.rtlb[tlb_index(vpn)] = entry;
            let v = if off + size <= PAGE_SIZE {
                // SAFETY: the pointer was just taken from a live page.
                unsafe { read_le(entry.ptr.add(off as usize), size) }
            } else {
                let mut b = [0u8; 8];
                bus.mem
                    .read_bytes(addr, &mut b[..size as usize])
                    .ok_or(MemErr::Exception(EXC_LOAD_ACCESS, addr))?;
                u64::from_le_bytes(b)
            };
            return Ok((v, self.ram_load_cycles(bus, entry.region, addr, size)));
        }
        let v = bus.mmio_read(self.id, now, addr, size as u8);
        self.code_written(bus);
        match v {
            Some(v) => Ok((v, self.costs.mmio + std::mem::take(&mut bus.mmio_stall))),
            None => Err(MemErr::Exception(EXC_LOAD_ACCESS, addr)),
        }
    }

    /// Stores `size` bytes of `v` at `addr` (the hart's time is `now`):
    /// the cycles the access costs beyond the base cost.
    #[inline(always)]
    fn store(&mut self, bus: &mut Bus, now: u64, addr: u64, size: u64, v: u64) -> Result<u64, MemErr> {
        let vpn = addr >> PAGE_SHIFT;
        let e = self.wtlb[tlb_index(vpn)];
        let off = addr & PAGE_MASK;
        if e.vpn == vpn && off + size <= PAGE_SIZE {
            // SAFETY: write-TLB entries point at live, writable, non-code pages.
            unsafe { write_le(e.ptr.add(off as usize), size, v) };
            return Ok(self.ram_store_cycles(bus, e.region, addr, size));
        }
        self.store_slow(bus, now, addr, size, v)
    }

    #[cold]
    fn store_slow(&mut self, bus: &mut Bus, now: u64, addr: u64, size: u64, v: u64) -> Result<u64, MemErr> {
        let vpn = addr >> PAGE_SHIFT;
        let off = addr & PAGE_MASK;
        if let Some(slot) = bus.mem.page_slot(vpn) {
            let region = bus.mem.page(slot).region;
            let writable = bus.mem.regions()[region as usize].writable;
            let end_ok = off + size <= PAGE_SIZE
                || bus.mem.region_of(addr + size - 1).is_some_and(|r| r.writable && r.id == region);
            if !writable || !end_ok {
                return Err(MemErr::Exception(EXC_STORE_ACCESS, addr));
            }
            let code = if off + size <= PAGE_SIZE {
                let page = bus.mem.page_mut(slot);
                // SAFETY: in-page range of a live page.
                unsafe { write_le(page.data.as_mut_ptr().add(off as usize), size, v) };
                if !page.code {
                    self.wtlb[tlb_index(vpn)] = TlbEntry { vpn, ptr: page.data.as_mut_ptr(), region };
                }
                page.code
            } else {
                // Records the bytes it wrote into code pages itself.
                bus.mem.write_bytes(addr, &v.to_le_bytes()[..size as usize]).expect("checked RAM above");
                false
            };
            if code {
                bus.mem.note_code_write(addr, size);
            }
            self.code_written(bus);
            return Ok(self.ram_store_cycles(bus, region, addr, size));
        }
        let ok = bus.mmio_write(self.id, now, addr, size as u8, v);
        // A device may have written code (a DMA started by this write).
        self.code_written(bus);
        if ok {
            if bus.finish.is_some() {
                return Err(MemErr::Finish);
            }
            return Ok(self.costs.mmio + std::mem::take(&mut bus.mmio_stall));
        }
        Err(MemErr::Exception(EXC_STORE_ACCESS, addr))
    }

    /// Host pointer for an atomic access: naturally aligned, writable RAM.
    fn amo_ptr(&mut self, bus: &mut Bus, addr: u64, size: u64) -> Result<(*mut u8, u8), MemErr> {
        if addr & (size - 1) != 0 {
            return Err(MemErr::Exception(EXC_STORE_MISALIGNED, addr));
        }
        let vpn = addr >> PAGE_SHIFT;
        let off = (addr & PAGE_MASK) as usize;
        let e = self.wtlb[tlb_index(vpn)];
        if e.vpn == vpn {
            // SAFETY: live page, aligned access cannot cross it.
            return Ok((unsafe { e.ptr.add(off) }, e.region));
        }
        let Some(slot) = bus.mem.page_slot(vpn) else {
            return Err(MemErr::Exception(EXC_STORE_ACCESS, addr));
        };
        let region = bus.mem.page(slot).region;
        if !bus.mem.regions()[region as usize].writable {
            return Err(MemErr::Exception(EXC_STORE_ACCESS, addr));
        }
        let page = bus.mem.page_mut(slot);
        let ptr = page.data.as_mut_ptr();
        if page.code {
            bus.mem.note_code_write(addr, size);
            self.code_written(bus);
        } else {
            self.wtlb[tlb_index(vpn)] = TlbEntry { vpn, ptr, region };
        }
        // SAFETY: live page, aligned access cannot cross it.
        Ok((unsafe { ptr.add(off) }, region))
    }
}

/// Raw bits of an instruction for `mtval` on illegal-instruction traps.
fn op_bits(op: &crate::isa::Op) -> u64 {
    // CSR instructions re-encode exactly: opcode SYSTEM, funct3 from the kind.
    use Kind::*;
    let f3: u32 = match op.kind {
        Csrrw => 1,
        Csrrs => 2,
        Csrrc => 3,
        Csrrwi => 5,
        Csrrsi => 6,
        Csrrci => 7,
        _ => return 0,
    };
    let rd = if op.rd == SINK { 0 } else { u32::from(op.rd) };
    u64::from(((op.imm as u32 & 0xfff) << 20) | (u32::from(op.rs1) << 15) | (f3 << 12) | (rd << 7) | 0x73)
}
