//! The executor: runs a hart until a time limit, charging cycles from the
//! timing model. Semantics follow the RISC-V unprivileged spec v20191213
//! (RV64I ch. 2/5, M ch. 7, A ch. 8, Zicsr ch. 9, Zifencei ch. 3, C ch. 16).
//!
//! Misaligned loads and stores to RAM are performed in hardware (two
//! accesses, `misaligned_penalty` extra cycles), also across pages. LR/SC
//! and AMOs must be naturally aligned (address-misaligned exception
//! otherwise) and must target RAM (access fault otherwise). Device
//! registers must be accessed naturally aligned.

use super::csr::TrapOutcome;
use super::{Hart, RunState, TlbEntry, TLB_ENTRIES};
use crate::bus::Bus;
use crate::isa::{Kind, SINK};
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
    /// Runs until `self.cycle >= until`, a `wfi`, the finisher, or a fatal fault.
    pub fn run(&mut self, bus: &mut Bus, until: u64) -> Stop {
        if self.trace.is_some() || self.profile.is_some() || self.debug {
            self.run_inner::<true>(bus, until)
        } else {
            self.run_inner::<false>(bus, until)
        }
    }

    /// The executor loop. `SLOW` is a separate instantiation with the
    /// per-instruction hooks (instruction trace, profiler, debugger
    /// breakpoints), so the normal path pays nothing for them.
    fn run_inner<const SLOW: bool>(&mut self, bus: &mut Bus, until: u64) -> Stop {
        if self.state != RunState::Running {
            return Stop::Wfi;
        }
        self.sync_epoch(bus);
        self.check_interrupts(bus);
        let c = self.costs;
        // The program counter, cycle and instruction counters live in locals
        // (registers) while instructions run; `self` is brought up to date
        // (`save!`) before anything that reads or changes them there
        // (traps, CSRs, MMIO, sleeping) and read back (`load_state!`) after.
        let mut pc = self.pc;
        // SAFETY: plain loads of fields of `self` (volatile: see `save!`).
        let mut cycle = unsafe { std::ptr::read_volatile(&self.cycle) };
        let mut instret = unsafe { std::ptr::read_volatile(&self.instret) };
        // (Volatile stores: otherwise LLVM's SLP vectorizer pairs the two
        // adjacent counters into one vector register on the hot path, which
        // costs ~7% of simulator speed.)
        macro_rules! save {
            () => {
                self.pc = pc;
                // SAFETY: plain stores to fields of `self`.
                unsafe {
                    std::ptr::write_volatile(&mut self.cycle, cycle);
                    std::ptr::write_volatile(&mut self.instret, instret);
                }
            };
        }
        macro_rules! load_state {
            () => {
                pc = self.pc;
                // SAFETY: as above.
                cycle = unsafe { std::ptr::read_volatile(&self.cycle) };
                instret = unsafe { std::ptr::read_volatile(&self.instret) };
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

        // Handles a failed memory access inside the loop below.
        macro_rules! mem_err {
            ($e:expr, $npc:expr) => {
                match $e {
                    MemErr::Exception(cause, tval) => trap!(cause, tval),
                    MemErr::Finish => {
                        // The store to the test finisher (MMIO) completed.
                        pc = $npc;
                        cycle += c.mmio;
                        instret += 1;
                        save!();
                        return Stop::Finish;
                    }
                }
            };
        }
        macro_rules! illegal {
            ($bits:expr) => {{
                trap!(EXC_ILLEGAL, $bits)
            }};
        }

        while cycle < until {
            let vpn = pc >> PAGE_SHIFT;
            if vpn != self.code_vpn {
                match bus.code_page(vpn) {
                    Some(p) => {
                        self.code_ptr = p;
                        self.code_vpn = vpn;
                        self.sync_epoch(bus);
                    }
                    None => trap!(EXC_INST_ACCESS, pc),
                }
            }
            // SAFETY: `code_ptr` points to a live 2048-slot decoded page owned
            // by `bus` (decoded pages are never freed), and the index is < 2048.
            let slot = unsafe { self.code_ptr.add(((pc & PAGE_MASK) >> 1) as usize) };
            // SAFETY: as above; no reference to the slot is held.
            let mut op = unsafe { slot.read() };
            // The fast path decodes in the `NotDecoded` arm of the dispatch
            // below (one test fewer per instruction); the hooks need the
            // decoded instruction first.
            if SLOW && op.kind == Kind::NotDecoded {
                match bus.fetch_decode(pc) {
                    Ok(o) => {
                        op = o;
                        // SAFETY: as above.
                        unsafe { slot.write(o) };
                        self.sync_epoch(bus);
                    }
                    Err(addr) => trap!(EXC_INST_ACCESS, addr),
                }
            }

            if SLOW {
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
                    self.record_trace(pc, op);
                }
            }
            let cycle_before = cycle;
            cycle += c.base;
            let rs1 = self.x[(op.rs1 & 63) as usize];
            let rs2 = self.x[(op.rs2 & 63) as usize];
            let imm = op.imm as i64 as u64;
            let rd = (op.rd & 63) as usize;
            let next = pc.wrapping_add(u64::from(op.len));
            let mut npc = next;

            macro_rules! branch {
                ($cond:expr) => {
                    if $cond {
                        npc = pc.wrapping_add(imm);
                        cycle += c.branch_taken;
                    }
                };
            }
            macro_rules! load {
                ($size:expr, $conv:expr) => {
                    match self.load(bus, cycle, rs1.wrapping_add(imm), $size) {
                        Ok((v, lat)) => {
                            self.x[rd] = $conv(v);
                            cycle += lat;
                        }
                        Err(e) => mem_err!(e, npc),
                    }
                };
            }
            macro_rules! store {
                ($size:expr) => {
                    match self.store(bus, cycle, rs1.wrapping_add(imm), $size, rs2) {
                        Ok(lat) => cycle += lat,
                        Err(e) => mem_err!(e, npc),
                    }
                };
            }
            macro_rules! amo {
                ($size:expr, $f:expr) => {{
                    let (p, region) = match self.amo_ptr(bus, rs1, $size) {
                        Ok(x) => x,
                        Err(e) => mem_err!(e, npc),
                    };
                    // SAFETY: `amo_ptr` checked alignment and that the
                    // access lies in one live RAM page.
                    let old = unsafe { read_le(p, $size) };
                    let old = if $size == 4 { old as i32 as i64 as u64 } else { old };
                    let new: u64 = $f(old, rs2);
                    // SAFETY: as above.
                    unsafe { write_le(p, $size, new) };
                    bus.snoop_store(rs1, $size);
                    cycle += self.atomic_latency(bus, region);
                    self.x[rd] = old;
                }};
            }

            use Kind::*;
            match op.kind {
                // ---------------------------------------------------- RV64I
                Lui => self.x[rd] = imm,
                Auipc => self.x[rd] = pc.wrapping_add(imm),
                Jal => {
                    self.x[rd] = next;
                    npc = pc.wrapping_add(imm);
                    cycle += c.jump;
                }
                Jalr => {
                    self.x[rd] = next;
                    npc = rs1.wrapping_add(imm) & !1;
                    cycle += c.branch_taken;
                }
                Beq => branch!(rs1 == rs2),
                Bne => branch!(rs1 != rs2),
                Blt => branch!((rs1 as i64) < (rs2 as i64)),
                Bge => branch!((rs1 as i64) >= (rs2 as i64)),
                Bltu => branch!(rs1 < rs2),
                Bgeu => branch!(rs1 >= rs2),
                Lb => load!(1, |v: u64| v as i8 as i64 as u64),
                Lh => load!(2, |v: u64| v as i16 as i64 as u64),
                Lw => load!(4, |v: u64| v as i32 as i64 as u64),
                Ld => load!(8, |v: u64| v),
                Lbu => load!(1, |v: u64| v),
                Lhu => load!(2, |v: u64| v),
                Lwu => load!(4, |v: u64| v),
                Sb => store!(1),
                Sh => store!(2),
                Sw => store!(4),
                Sd => store!(8),
                Addi => self.x[rd] = rs1.wrapping_add(imm),
                Slti => self.x[rd] = ((rs1 as i64) < (imm as i64)) as u64,
                Sltiu => self.x[rd] = (rs1 < imm) as u64,
                Xori => self.x[rd] = rs1 ^ imm,
                Ori => self.x[rd] = rs1 | imm,
                Andi => self.x[rd] = rs1 & imm,
                Slli => self.x[rd] = rs1 << (imm & 63),
                Srli => self.x[rd] = rs1 >> (imm & 63),
                Srai => self.x[rd] = ((rs1 as i64) >> (imm & 63)) as u64,
                Add => self.x[rd] = rs1.wrapping_add(rs2),
                Sub => self.x[rd] = rs1.wrapping_sub(rs2),
                Sll => self.x[rd] = rs1 << (rs2 & 63),
                Slt => self.x[rd] = ((rs1 as i64) < (rs2 as i64)) as u64,
                Sltu => self.x[rd] = (rs1 < rs2) as u64,
                Xor => self.x[rd] = rs1 ^ rs2,
                Srl => self.x[rd] = rs1 >> (rs2 & 63),
                Sra => self.x[rd] = ((rs1 as i64) >> (rs2 & 63)) as u64,
                Or => self.x[rd] = rs1 | rs2,
                And => self.x[rd] = rs1 & rs2,
                Addiw => self.x[rd] = (rs1 as i32).wrapping_add(imm as i32) as i64 as u64,
                Slliw => self.x[rd] = ((rs1 as u32) << (imm & 31)) as i32 as i64 as u64,
                Srliw => self.x[rd] = ((rs1 as u32) >> (imm & 31)) as i32 as i64 as u64,
                Sraiw => self.x[rd] = ((rs1 as i32) >> (imm & 31)) as i64 as u64,
                Addw => self.x[rd] = (rs1 as i32).wrapping_add(rs2 as i32) as i64 as u64,
                Subw => self.x[rd] = (rs1 as i32).wrapping_sub(rs2 as i32) as i64 as u64,
                Sllw => self.x[rd] = ((rs1 as u32) << (rs2 & 31)) as i32 as i64 as u64,
                Srlw => self.x[rd] = ((rs1 as u32) >> (rs2 & 31)) as i32 as i64 as u64,
                Sraw => self.x[rd] = ((rs1 as i32) >> (rs2 & 31)) as i64 as u64,
                Fence => {}
                FenceI => {
                    bus.flush_decoded();
                    cycle += c.fence_i;
                }
                Ecall => trap!(EXC_ECALL_M, 0),
                Ebreak => trap!(EXC_BREAKPOINT, pc),
                Mret => {
                    save!();
                    self.mret();
                    self.instret += 1;
                    if SLOW {
                        if let Some(p) = self.profile.as_mut() {
                            p.step(&op, pc, self.pc, self.cycle - cycle_before);
                        }
                    }
                    self.check_interrupts(bus);
                    load_state!();
                    continue;
                }
                Wfi => {
                    if !self.interrupt_waiting(bus) {
                        pc = next;
                        instret += 1;
                        save!();
                        self.sleep();
                        return Stop::Wfi;
                    }
                }
                // ------------------------------------------------------- M
                Mul => {
                    self.x[rd] = rs1.wrapping_mul(rs2);
                    cycle += c.mul_extra;
                }
                Mulh => {
                    self.x[rd] = ((i128::from(rs1 as i64) * i128::from(rs2 as i64)) >> 64) as u64;
                    cycle += c.mul_extra;
                }
                Mulhsu => {
                    self.x[rd] = ((i128::from(rs1 as i64) * i128::from(rs2)) >> 64) as u64;
                    cycle += c.mul_extra;
                }
                Mulhu => {
                    self.x[rd] = ((u128::from(rs1) * u128::from(rs2)) >> 64) as u64;
                    cycle += c.mul_extra;
                }
                Mulw => {
                    self.x[rd] = (rs1 as i32).wrapping_mul(rs2 as i32) as i64 as u64;
                    cycle += c.mul_extra;
                }
                // Division by zero and overflow per §7.2, table 7.1.
                Div => {
                    self.x[rd] = if rs2 == 0 { u64::MAX } else { (rs1 as i64).wrapping_div(rs2 as i64) as u64 };
                    cycle += c.div64_extra;
                }
                Divu => {
                    self.x[rd] = rs1.checked_div(rs2).unwrap_or(u64::MAX);
                    cycle += c.div64_extra;
                }
                Rem => {
                    self.x[rd] = if rs2 == 0 { rs1 } else { (rs1 as i64).wrapping_rem(rs2 as i64) as u64 };
                    cycle += c.div64_extra;
                }
                Remu => {
                    self.x[rd] = if rs2 == 0 { rs1 } else { rs1 % rs2 };
                    cycle += c.div64_extra;
                }
                Divw => {
                    let (a, b) = (rs1 as i32, rs2 as i32);
                    self.x[rd] = if b == 0 { u64::MAX } else { a.wrapping_div(b) as i64 as u64 };
                    cycle += c.div_extra;
                }
                Divuw => {
                    let (a, b) = (rs1 as u32, rs2 as u32);
                    self.x[rd] = if b == 0 { u64::MAX } else { (a / b) as i32 as i64 as u64 };
                    cycle += c.div_extra;
                }
                Remw => {
                    let (a, b) = (rs1 as i32, rs2 as i32);
                    self.x[rd] = if b == 0 { a as i64 as u64 } else { a.wrapping_rem(b) as i64 as u64 };
                    cycle += c.div_extra;
                }
                Remuw => {
                    let (a, b) = (rs1 as u32, rs2 as u32);
                    self.x[rd] = if b == 0 { a as i32 as i64 as u64 } else { (a % b) as i32 as i64 as u64 };
                    cycle += c.div_extra;
                }
                // ------------------------------------------------------- A
                LrW | LrD => {
                    let size = if op.kind == LrW { 4 } else { 8 };
                    if rs1 & (size - 1) != 0 {
                        mem_err!(MemErr::Exception(EXC_LOAD_MISALIGNED, rs1), npc);
                    }
                    if bus.mem.region_of(rs1).is_none() {
                        // LR from a device or unmapped address: access fault.
                        mem_err!(MemErr::Exception(EXC_LOAD_ACCESS, rs1), npc);
                    }
                    match self.load(bus, cycle, rs1, size) {
                        Ok((v, lat)) => {
                            self.x[rd] = if size == 4 { v as i32 as i64 as u64 } else { v };
                            bus.reserve(self.id, rs1);
                            cycle += lat + c.amo_extra;
                        }
                        Err(e) => mem_err!(e, npc),
                    }
                }
                ScW | ScD => {
                    let size = if op.kind == ScW { 4 } else { 8 };
                    if rs1 & (size - 1) != 0 {
                        mem_err!(MemErr::Exception(EXC_STORE_MISALIGNED, rs1), npc);
                    }
                    if bus.take_reservation(self.id, rs1) {
                        let (p, region) = match self.amo_ptr(bus, rs1, size) {
                            Ok(x) => x,
                            Err(e) => mem_err!(e, npc),
                        };
                        // SAFETY: `amo_ptr` checked the access is in one live RAM page.
                        unsafe { write_le(p, size, rs2) };
                        bus.snoop_store(rs1, size);
                        cycle += self.atomic_latency(bus, region);
                        self.x[rd] = 0;
                    } else {
                        cycle += c.amo_extra;
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
                    // mcycle/minstret/time read the counters.
                    save!();
                    let Some(old) = self.csr_read(bus, n) else { illegal!(op_bits(&op)) };
                    if writes {
                        let new = match op.kind {
                            Csrrw | Csrrwi => src,
                            Csrrs | Csrrsi => old | src,
                            _ => old & !src,
                        };
                        if !self.csr_write(n, new) {
                            illegal!(op_bits(&op));
                        }
                    }
                    self.x[rd] = old;
                    cycle += c.csr_extra;
                    if writes && (n == MSTATUS || n == MIE) {
                        pc = next;
                        instret += 1;
                        save!();
                        self.check_interrupts(bus);
                        load_state!();
                        continue;
                    }
                }
                Illegal => illegal!(op.imm as u32 as u64),
                NotDecoded => {
                    // First execution of this slot: decode, then run it.
                    cycle = cycle_before;
                    match bus.fetch_decode(pc) {
                        Ok(o) => {
                            // SAFETY: as for `slot.read()` above.
                            unsafe { slot.write(o) };
                            self.sync_epoch(bus);
                            continue;
                        }
                        Err(addr) => trap!(EXC_INST_ACCESS, addr),
                    }
                }
            }
            pc = npc;
            instret += 1;
            if SLOW {
                let spent = cycle - cycle_before;
                if let Some(p) = self.profile.as_mut() {
                    p.step(&op, pc, npc, spent);
                }
            }
        }
        save!();
        debug_assert_eq!(self.x[0], 0);
        let _ = SINK;
        Stop::Quantum
    }

    /// Flushes the write TLB if some page became a code page since last look.
    #[inline(always)]
    fn sync_epoch(&mut self, bus: &Bus) {
        if self.tlb_epoch != bus.code_epoch {
            self.wtlb = [TlbEntry::EMPTY; TLB_ENTRIES];
            self.tlb_epoch = bus.code_epoch;
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
            let mut lat = self.load_latency(bus, e.region, addr);
            if addr & (size - 1) != 0 {
                lat += self.costs.misaligned;
            }
            return Ok((v, lat));
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
            let mut lat = self.load_latency(bus, entry.region, addr);
            if addr & (size - 1) != 0 {
                lat += self.costs.misaligned;
            }
            return Ok((v, lat));
        }
        match bus.mmio_read(self.id, now, addr, size as u8) {
            Some(v) => Ok((v, self.costs.mmio)),
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
            let mut lat = self.store_latency(bus, e.region, size);
            if addr & (size - 1) != 0 {
                lat += self.costs.misaligned;
            }
            bus.snoop_store(addr, size);
            return Ok(lat);
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
                let touched = bus.mem.write_bytes(addr, &v.to_le_bytes()[..size as usize]).expect("checked RAM above");
                touched.iter().any(|&s| bus.mem.page(s).code)
            };
            if code {
                bus.invalidate_code(addr, size);
            }
            let mut lat = self.store_latency(bus, region, size);
            if addr & (size - 1) != 0 {
                lat += self.costs.misaligned;
            }
            bus.snoop_store(addr, size);
            return Ok(lat);
        }
        if bus.mmio_write(self.id, now, addr, size as u8, v) {
            if bus.finish.is_some() {
                return Err(MemErr::Finish);
            }
            return Ok(self.costs.mmio);
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
            bus.invalidate_code(addr, size);
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
