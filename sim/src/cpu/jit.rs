//! Second execution tier: hot straight-line bodies compiled to host code
//! with Cranelift.
//!
//! A body that ran `threshold` times through the interpreter is translated
//! once. The compiled function has exactly the interpreter's semantics and
//! timing (the differential tests run both and compare every stop):
//!
//! * guest registers read in the body are loaded once and kept in host
//!   registers; writes go to host registers and through to the hart at
//!   once, so the hart is always current for call-outs and exits;
//! * ALU, multiply, branch and jump instructions run inline; loads and
//!   stores that hit the hart's software TLB access host memory inline and
//!   call the interpreter's timing code (region latency, L1D tags,
//!   bandwidth windows, misalignment, LR/SC snooping); TLB misses, MMIO,
//!   faults, division and `mulhsu` call the interpreter's own handler for
//!   the op, so behaviour and timing are exactly the interpreter's;
//! * each instruction adds its cycle cost; after each one that does not
//!   end the body, `cycle >= until` leaves through a side exit that records
//!   where to resume (`Hart::body_resume`), so a time limit stops a compiled
//!   body where the interpreter would stop.
//!
//! Costs are the chip's (`CoreCosts` is the same for every hart of a chip)
//! and are compiled in as constants.
//!
//! The protocol with the executor loop is the interpreted body loop's:
//! the function returns the cycle count, or it with `BODY_END` set when
//! the body was left (after its last op, or at a taken branch; the next pc
//! is in `Hart::body_npc`), or `EXIT` when a called handler left the
//! hart's state in `Hart` (a trap, the finisher). Except on `EXIT`,
//! `Hart::body_resume` holds the index of the op after the last one run.

use super::exec::{BodyOp, JIT_BODY_END as BODY_END, JIT_EXIT as EXIT};
use super::{CoreCosts, Hart, TlbEntry, TLB_ENTRIES};
use crate::bus::Bus;
use crate::isa::{Kind, SINK};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, Block, InstBuilder, MemFlagsData, Signature, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use std::mem::offset_of;

/// A compiled body: `(hart, bus, cycle, until)` -> cycle (see the module docs).
pub type JitFn = unsafe extern "C" fn(*mut Hart, *mut Bus, u64, u64) -> u64;

/// Timing of a load that hit the read TLB (`Hart::ram_load_cycles`, as
/// the interpreter's `load`).
unsafe extern "C" fn load_timing(h: *mut Hart, bus: *mut Bus, region: u64, addr: u64, size: u64) -> u64 {
    // SAFETY: called by a compiled body with its own hart and bus.
    unsafe { (*h).ram_load_cycles(&mut *bus, region as u8, addr, size) }
}

/// Timing and LR/SC snooping of a store that hit the write TLB
/// (`Hart::ram_store_cycles`, as the interpreter's `store`).
unsafe extern "C" fn store_timing(h: *mut Hart, bus: *mut Bus, region: u64, addr: u64, size: u64) -> u64 {
    // SAFETY: called by a compiled body with its own hart and bus.
    unsafe { (*h).ram_store_cycles(&mut *bus, region as u8, addr, size) }
}


/// What the compiling tier did (`--stats-json`: `jit`).
#[derive(serde::Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct JitStats {
    /// Interpreted runs before a body is compiled.
    pub threshold: u32,
    /// Bodies compiled.
    pub bodies: u64,
    /// Guest instructions in them.
    pub instructions: u64,
    /// Bodies Cranelift refused (they stay interpreted).
    pub failed: u64,
    /// Host time spent compiling.
    pub compile_host_seconds: f64,
}

/// The compiler: one Cranelift JIT module for the whole simulation
/// (compiled code lives as long as the simulator).
pub struct Jit {
    /// Always `Some` until drop.
    module: Option<JITModule>,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Counters; `stats.threshold` is the interpreted runs before a body
    /// is compiled.
    pub stats: JitStats,
    costs: CoreCosts,
    /// Hot bodies waiting to be compiled, and hart runs since the first
    /// of them came. Bodies are compiled in batches: code made executable
    /// together shares pages (one page per body would spread hot code
    /// over thousands of pages and thrash the host's iTLB).
    pending: Vec<*mut BodyOp>,
    waited: u32,
    /// Compile the queue when the first body in it waited this many hart
    /// runs (or when `BATCH` bodies wait).
    pub max_wait: u32,
}

/// Compile when this many bodies wait.
const BATCH: usize = 64;

impl Jit {
    /// A compiler for the host, or `None` if Cranelift does not support it.
    pub fn new(costs: CoreCosts, threshold: u32) -> Option<Jit> {
        let mut flags = settings::builder();
        // Bodies are straight-line code we generate already simplified:
        // Cranelift's optimizer buys nothing measurable, and costs compile time.
        flags.set("opt_level", "none").ok()?;
        flags.set("is_pic", "false").ok()?;
        flags.set("use_colocated_libcalls", "false").ok()?;
        // Bodies are small and generated by us: skip the IR verifier.
        flags.set("enable_verifier", "false").ok()?;
        let isa = cranelift_native::builder().ok()?.finish(settings::Flags::new(flags)).ok()?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ctx = module.make_context();
        let stats = JitStats { threshold, ..JitStats::default() };
        Some(Jit {
            module: Some(module),
            ctx,
            fctx: FunctionBuilderContext::new(),
            stats,
            costs,
            pending: Vec::new(),
            waited: 0,
            max_wait: 8192,
        })
    }

    fn module(&mut self) -> &mut JITModule {
        self.module.as_mut().expect("module lives until drop")
    }

    /// Queues a hot body for compilation.
    ///
    /// # Safety
    /// `body` (a body's header) stays alive until the next [`Jit::flush`]
    /// (bodies are boxed and only freed by `CodeCache::reap`, which flushes
    /// first).
    pub unsafe fn enqueue(&mut self, body: *mut BodyOp) {
        self.pending.push(body);
    }

    /// Called between hart runs: compiles the queue when it is full or old.
    #[inline]
    pub fn tick(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.waited += 1;
        if self.pending.len() >= BATCH || self.waited >= self.max_wait {
            self.flush();
        }
    }

    /// Compiles every queued body (no body may be running).
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let start = std::time::Instant::now();
        let pending = std::mem::take(&mut self.pending);
        self.waited = 0;
        let mut done = Vec::with_capacity(pending.len());
        for &body in &pending {
            // SAFETY: queued bodies are alive until this flush (`enqueue`);
            // the ops follow the header.
            let ops = unsafe { std::slice::from_raw_parts(body.add(1), usize::from((*body).index)) };
            // A Cranelift failure (error or panic) leaves the body to the
            // interpreter; the simulation goes on.
            let id = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.translate(ops))).unwrap_or_else(|_| {
                self.ctx.clear();
                self.fctx = FunctionBuilderContext::new();
                None
            });
            match id {
                Some(id) => done.push((body, id, ops.iter().filter(|o| o.len != 0).count() as u64)),
                None => self.stats.failed += 1,
            }
        }
        if self.module().finalize_definitions().is_ok() {
            for (body, id, n) in done {
                let code = self.module().get_finalized_function(id);
                // SAFETY: the function was built with `JitFn`'s signature
                // (four pointer-sized arguments, one result, the host's C
                // convention); `body` is alive (above).
                unsafe { (*body).set_compiled(std::mem::transmute::<*const u8, JitFn>(code)) };
                self.stats.bodies += 1;
                self.stats.instructions += n;
            }
        } else {
            self.stats.failed += done.len() as u64;
        }
        self.stats.compile_host_seconds += start.elapsed().as_secs_f64();
    }

    /// Defines the function for `ops` (a whole body, ending with a jump or
    /// the end marker); `None` if Cranelift refused it (the body stays
    /// interpreted).
    fn translate(&mut self, ops: &[BodyOp]) -> Option<cranelift_module::FuncId> {
        let ptr = types::I64;
        let mut sig = self.module().make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.returns.push(AbiParam::new(ptr));
        let mut call_sig = Signature::new(sig.call_conv);
        for _ in 0..4 {
            call_sig.params.push(AbiParam::new(ptr));
        }
        call_sig.returns.push(AbiParam::new(ptr));
        let mut timing_sig = Signature::new(sig.call_conv);
        for _ in 0..5 {
            timing_sig.params.push(AbiParam::new(ptr));
        }
        timing_sig.returns.push(AbiParam::new(ptr));

        let id = self.module().declare_anonymous_function(&sig).ok()?;
        self.module.as_mut().expect("module lives until drop").clear_context(&mut self.ctx);
        let target = self.module().target_config();
        self.ctx.func.signature = sig;
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let call_sig = b.import_signature(call_sig);
            let timing_sig = b.import_signature(timing_sig);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let p = b.block_params(entry).to_vec();
            let body_pc = b.ins().load(types::I64, Translator::flags(), p[0], offset_of!(Hart, body_pc) as i32);
            let mut t = Translator {
                b,
                costs: self.costs,
                hart: p[0],
                bus: p[1],
                cycle: p[2],
                until: p[3],
                regs: [None; 32],
                time_exit: None,
                body_pc,
                n_ops: ops.len(),
                call_sig,
                timing_sig,
            };
            t.body(ops);
            t.exit_block();
            t.b.seal_all_blocks();
            t.b.finalize(target);
        }
        let ok = self.module.as_mut().expect("module lives until drop").define_function(id, &mut self.ctx).is_ok();
        self.module.as_mut().expect("module lives until drop").clear_context(&mut self.ctx);
        ok.then_some(id)
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the compiler is dropped with its code cache: no hart can run
            // compiled code any more.
            unsafe { m.free_memory() };
        }
    }
}

/// Byte offset of guest register `r` in `Hart`.
fn reg_offset(r: u8) -> i32 {
    (offset_of!(Hart, x) + 8 * usize::from(r)) as i32
}

struct Translator<'a> {
    b: FunctionBuilder<'a>,
    costs: CoreCosts,
    hart: Value,
    bus: Value,
    cycle: Value,
    until: Value,
    /// Host values of guest registers loaded or computed so far.
    regs: [Option<Value>; 32],
    /// The side exit taken at the time limit: (resume index, cycle).
    time_exit: Option<Block>,
    /// `Hart::body_pc`, loaded in the entry block (dominates every use).
    body_pc: Value,
    /// Ops in the body (incl. the end marker).
    n_ops: usize,
    call_sig: cranelift_codegen::ir::SigRef,
    timing_sig: cranelift_codegen::ir::SigRef,
}

impl Translator<'_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    /// Value of guest register `r` (x0 reads as zero).
    fn get(&mut self, r: u8) -> Value {
        let r = r & 63;
        if r == 0 || r >= 32 {
            return self.b.ins().iconst(types::I64, 0);
        }
        if let Some(v) = self.regs[r as usize] {
            return v;
        }
        let v = self.b.ins().load(types::I64, Self::flags(), self.hart, reg_offset(r));
        self.regs[r as usize] = Some(v);
        v
    }

    /// Writes guest register `r` (writes to x0 / the sink vanish). Written
    /// through to the hart at once (a store is cheap in host code), so the
    /// hart's registers are always current: exits and calls need no flush.
    fn set(&mut self, r: u8, v: Value) {
        let r = r & 63;
        if r == 0 || r >= 32 {
            return;
        }
        self.regs[r as usize] = Some(v);
        self.b.ins().store(Self::flags(), v, self.hart, reg_offset(r));
    }

    fn add_cycles(&mut self, n: u64) {
        if n != 0 {
            self.cycle = self.b.ins().iadd_imm_s(self.cycle, n as i64);
        }
    }

    fn store_field(&mut self, v: Value, offset: usize) {
        self.b.ins().store(Self::flags(), v, self.hart, offset as i32);
    }

    fn body(&mut self, ops: &[BodyOp]) {
        for (i, op) in ops.iter().enumerate() {
            let last = i + 1 == ops.len();
            if op.len == 0 {
                // End marker: the next pc is the one after the body.
                let npc = self.pc_plus(op, 0);
                self.finish(npc);
                return;
            }
            match op.kind {
                Kind::Beq | Kind::Bne | Kind::Blt | Kind::Bge | Kind::Bltu | Kind::Bgeu => {
                    // Taken: leave the body; not taken: go on.
                    self.branch(op, i + 1);
                    if !last {
                        self.time_check(i + 1);
                    }
                    continue;
                }
                Kind::Jal => {
                    let link = self.pc_plus(op, i64::from(op.len));
                    self.set(op.rd, link);
                    let npc = self.pc_plus(op, i64::from(op.imm));
                    self.add_cycles(self.costs.base + self.costs.jump);
                    self.finish(npc);
                    return;
                }
                Kind::Jalr => {
                    let base = self.get(op.rs1);
                    let t = self.b.ins().iadd_imm_s(base, i64::from(op.imm));
                    let npc = self.b.ins().band_imm_s(t, !1);
                    let link = self.pc_plus(op, i64::from(op.len));
                    self.set(op.rd, link);
                    self.add_cycles(self.costs.base + self.costs.branch_taken);
                    self.finish(npc);
                    return;
                }
                _ => {}
            }
            if !self.alu(op) && !self.memory(op) {
                self.call_out(op);
            }
            if !last {
                self.time_check(i + 1);
            }
        }
        // A body always ends with a branch, a jump or the end marker.
        let npc = self.b.ins().iconst(types::I64, 0);
        self.finish(npc);
    }

    /// `body_pc + offset of op + delta` (computed at run time: bodies do
    /// not know their pc, only offsets).
    fn pc_plus(&mut self, op: &BodyOp, delta: i64) -> Value {
        let pc = self.body_pc;
        self.b.ins().iadd_imm_s(pc, i64::from(op.offset) + delta)
    }

    /// Records the index of the op after the last one run (every exit
    /// does: the executor resumes or accounts from it).
    fn store_resume(&mut self, resume: usize) {
        let at = self.b.ins().iconst(types::I32, resume as i64);
        self.b.ins().store(Self::flags(), at, self.hart, offset_of!(Hart, body_resume) as i32);
    }

    /// Ends the body after its last op: next pc to `body_npc`, `cycle | BODY_END`.
    fn finish(&mut self, npc: Value) {
        self.store_field(npc, offset_of!(Hart, body_npc));
        self.store_resume(self.n_ops);
        let r = self.b.ins().bor_imm_s(self.cycle, BODY_END as i64);
        self.b.ins().return_(&[r]);
    }

    /// After op `resume - 1`: leave if the time limit is reached.
    fn time_check(&mut self, resume: usize) {
        // One shared exit for the body, filled in by `exit_block` at the end.
        let exit = match self.time_exit {
            Some(b) => b,
            None => {
                let exit = self.b.create_block();
                self.b.append_block_param(exit, types::I32);
                self.b.append_block_param(exit, types::I64);
                self.time_exit = Some(exit);
                exit
            }
        };
        let out = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, self.cycle, self.until);
        let next: Block = self.b.create_block();
        let at = self.b.ins().iconst(types::I32, resume as i64);
        self.b.ins().brif(out, exit, &[at.into(), self.cycle.into()], next, &[]);
        self.b.switch_to_block(next);
    }

    /// The time-limit exit (after the body, whose blocks are all filled):
    /// record where to resume, return the cycle.
    fn exit_block(&mut self) {
        if let Some(exit) = self.time_exit {
            self.b.switch_to_block(exit);
            let p = self.b.block_params(exit).to_vec();
            self.b.ins().store(Self::flags(), p[0], self.hart, offset_of!(Hart, body_resume) as i32);
            self.b.ins().return_(&[p[1]]);
        }
    }

    /// Runs `op` through its interpreter handler.
    fn call_out(&mut self, op: &BodyOp) {
        // The handler reads its sources from, and may trap with, the hart
        // (always current: registers are written through).
        // Body handlers use the C convention: call the handler itself.
        let f = self.b.ins().iconst(types::I64, op.handler as *const () as usize as i64);
        let opp = self.b.ins().iconst(types::I64, op as *const BodyOp as i64);
        let call = self.b.ins().call_indirect(self.call_sig, f, &[self.hart, self.bus, opp, self.cycle]);
        let r = self.b.inst_results(call)[0];
        // The handler wrote rd in the hart; reload everything after the
        // call (see `memory`).
        self.regs = [None; 32];
        // EXIT: the handler left the state in the hart; pass it on.
        let exited = self.b.ins().icmp_imm_s(IntCC::Equal, r, EXIT as i64);
        let exit = self.b.create_block();
        let next = self.b.create_block();
        self.b.ins().brif(exited, exit, &[], next, &[]);
        self.b.switch_to_block(exit);
        self.b.ins().return_(&[r]);
        self.b.switch_to_block(next);
        self.cycle = r;
    }

    /// Inline load or store: the TLB hit path in host code (timing by a
    /// direct call), everything else through the interpreter's handler.
    /// False if `op` is not a load or store.
    fn memory(&mut self, op: &BodyOp) -> bool {
        use Kind::*;
        let (size, store, signed): (u64, bool, bool) = match op.kind {
            Lb => (1, false, true),
            Lh => (2, false, true),
            Lw => (4, false, true),
            Ld => (8, false, false),
            Lbu => (1, false, false),
            Lhu => (2, false, false),
            Lwu => (4, false, false),
            Sb => (1, true, false),
            Sh => (2, true, false),
            Sw => (4, true, false),
            Sd => (8, true, false),
            _ => return false,
        };
        let i64t = types::I64;
        let base = self.get(op.rs1);
        let data = if store { Some(self.get(op.rs2)) } else { None };
        let addr = self.b.ins().iadd_imm_s(base, i64::from(op.imm));
        // TLB entry of the page (same lookup as `Hart::load` / `store`).
        let tlb = if store { offset_of!(Hart, wtlb) } else { offset_of!(Hart, rtlb) };
        let vpn = self.b.ins().ushr_imm_u(addr, i64::from(crate::mem::PAGE_SHIFT));
        let idx = self.b.ins().band_imm_s(vpn, (TLB_ENTRIES - 1) as i64);
        let scaled = self.b.ins().imul_imm_s(idx, std::mem::size_of::<TlbEntry>() as i64);
        let entry = self.b.ins().iadd(self.hart, scaled);
        let evpn = self.b.ins().load(i64t, Self::flags(), entry, (tlb + offset_of!(TlbEntry, vpn)) as i32);
        let off = self.b.ins().band_imm_s(addr, crate::mem::PAGE_MASK as i64);
        let hit = self.b.ins().icmp(IntCC::Equal, evpn, vpn);
        let fits = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, off, (crate::mem::PAGE_SIZE - size) as i64);
        let ok = self.b.ins().band(hit, fits);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let merge = self.b.create_block();
        self.b.append_block_param(merge, i64t); // loaded value (loads)
        self.b.append_block_param(merge, i64t); // extra cycles
        self.b.ins().brif(ok, fast, &[], slow, &[]);

        // Fast: host access through the TLB pointer.
        self.b.switch_to_block(fast);
        let page = self.b.ins().load(i64t, Self::flags(), entry, (tlb + offset_of!(TlbEntry, ptr)) as i32);
        let region = self.b.ins().uload8(i64t, Self::flags(), entry, (tlb + offset_of!(TlbEntry, region)) as i32);
        let host = self.b.ins().iadd(page, off);
        // Guest memory is little-endian like the host; accesses may be
        // misaligned (hardware-performed on this core).
        let raw = MemFlagsData::new().with_notrap();
        let value = if let Some(v) = data {
            match size {
                1 => self.b.ins().istore8(raw, v, host, 0),
                2 => self.b.ins().istore16(raw, v, host, 0),
                4 => self.b.ins().istore32(raw, v, host, 0),
                _ => self.b.ins().store(raw, v, host, 0),
            };
            self.b.ins().iconst(i64t, 0)
        } else {
            match (size, signed) {
                (1, true) => self.b.ins().sload8(i64t, raw, host, 0),
                (1, false) => self.b.ins().uload8(i64t, raw, host, 0),
                (2, true) => self.b.ins().sload16(i64t, raw, host, 0),
                (2, false) => self.b.ins().uload16(i64t, raw, host, 0),
                (4, true) => self.b.ins().sload32(raw, host, 0),
                (4, false) => self.b.ins().uload32(raw, host, 0),
                _ => self.b.ins().load(i64t, raw, host, 0),
            }
        };
        let helper = if store { store_timing as *const () } else { load_timing as *const () };
        let f = self.b.ins().iconst(i64t, helper as usize as i64);
        let size_v = self.b.ins().iconst(i64t, size as i64);
        let call = self.b.ins().call_indirect(self.timing_sig, f, &[self.hart, self.bus, region, addr, size_v]);
        let lat = self.b.inst_results(call)[0];
        self.b.ins().jump(merge, &[value.into(), lat.into()]);

        // Slow: the interpreter's handler (page walk, MMIO, faults).
        self.b.switch_to_block(slow);
        let f = self.b.ins().iconst(i64t, op.handler as *const () as usize as i64);
        let opp = self.b.ins().iconst(i64t, op as *const BodyOp as i64);
        let call = self.b.ins().call_indirect(self.call_sig, f, &[self.hart, self.bus, opp, self.cycle]);
        let r = self.b.inst_results(call)[0];
        let exited = self.b.ins().icmp_imm_s(IntCC::Equal, r, EXIT as i64);
        let exit = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(exited, exit, &[], cont, &[]);
        self.b.switch_to_block(exit);
        self.b.ins().return_(&[r]);
        self.b.switch_to_block(cont);
        let rd = op.rd & 63;
        let value = if !store && rd != 0 && rd < 32 {
            self.b.ins().load(i64t, Self::flags(), self.hart, reg_offset(rd))
        } else {
            self.b.ins().iconst(i64t, 0)
        };
        // The handler returned cycle + base + latency.
        let before = self.b.ins().iadd_imm_s(self.cycle, self.costs.base as i64);
        let lat = self.b.ins().isub(r, before);
        self.b.ins().jump(merge, &[value.into(), lat.into()]);

        self.b.switch_to_block(merge);
        // Values kept across calls cost the register allocator dearly
        // (compile time grows fast with them); reload after the call.
        self.regs = [None; 32];
        let params = self.b.block_params(merge).to_vec();
        if !store {
            self.set(op.rd, params[0]);
        }
        self.add_cycles(self.costs.base);
        self.cycle = self.b.ins().iadd(self.cycle, params[1]);
        true
    }

    /// Conditional branch inside a body (RV64I §2.5): taken leaves the
    /// body (next pc to `body_npc`, `cycle | BODY_END`), not taken goes on
    /// with the next op.
    fn branch(&mut self, op: &BodyOp, resume: usize) {
        let a = self.get(op.rs1);
        let c = self.get(op.rs2);
        let cc = match op.kind {
            Kind::Beq => IntCC::Equal,
            Kind::Bne => IntCC::NotEqual,
            Kind::Blt => IntCC::SignedLessThan,
            Kind::Bge => IntCC::SignedGreaterThanOrEqual,
            Kind::Bltu => IntCC::UnsignedLessThan,
            _ => IntCC::UnsignedGreaterThanOrEqual,
        };
        let taken = self.b.ins().icmp(cc, a, c);
        self.add_cycles(self.costs.base);
        let out = self.b.create_block();
        let next = self.b.create_block();
        self.b.ins().brif(taken, out, &[], next, &[]);
        self.b.switch_to_block(out);
        let target = self.pc_plus(op, i64::from(op.imm));
        self.store_field(target, offset_of!(Hart, body_npc));
        self.store_resume(resume);
        let c = self.b.ins().iadd_imm_s(self.cycle, self.costs.branch_taken as i64);
        let r = self.b.ins().bor_imm_s(c, BODY_END as i64);
        self.b.ins().return_(&[r]);
        self.b.switch_to_block(next);
    }

    /// Inline ALU op; false if `op` needs its interpreter handler.
    fn alu(&mut self, op: &BodyOp) -> bool {
        use Kind::*;
        let imm = i64::from(op.imm);
        let i64t = types::I64;
        let i32t = types::I32;
        let mut extra = 0;
        let v = match op.kind {
            Lui => self.b.ins().iconst(i64t, imm),
            Auipc => self.pc_plus(op, imm),
            Addi => {
                let a = self.get(op.rs1);
                self.b.ins().iadd_imm_s(a, imm)
            }
            Slti | Sltiu => {
                let a = self.get(op.rs1);
                let cc = if op.kind == Slti { IntCC::SignedLessThan } else { IntCC::UnsignedLessThan };
                let f = self.b.ins().icmp_imm_s(cc, a, imm);
                self.b.ins().uextend(i64t, f)
            }
            Xori => {
                let a = self.get(op.rs1);
                self.b.ins().bxor_imm_s(a, imm)
            }
            Ori => {
                let a = self.get(op.rs1);
                self.b.ins().bor_imm_s(a, imm)
            }
            Andi => {
                let a = self.get(op.rs1);
                self.b.ins().band_imm_s(a, imm)
            }
            Slli => {
                let a = self.get(op.rs1);
                self.b.ins().ishl_imm_u(a, imm & 63)
            }
            Srli => {
                let a = self.get(op.rs1);
                self.b.ins().ushr_imm_u(a, imm & 63)
            }
            Srai => {
                let a = self.get(op.rs1);
                self.b.ins().sshr_imm_u(a, imm & 63)
            }
            Add | Sub | Sll | Slt | Sltu | Xor | Srl | Sra | Or | And | Mul | Mulh | Mulhu => {
                let a = self.get(op.rs1);
                let c = self.get(op.rs2);
                let ins = self.b.ins();
                match op.kind {
                    Add => ins.iadd(a, c),
                    Sub => ins.isub(a, c),
                    // Cranelift masks the shift amount to the type's width,
                    // as RV64 does (low 6 bits of rs2).
                    Sll => ins.ishl(a, c),
                    Srl => ins.ushr(a, c),
                    Sra => ins.sshr(a, c),
                    Slt | Sltu => {
                        let cc = if op.kind == Slt { IntCC::SignedLessThan } else { IntCC::UnsignedLessThan };
                        let f = ins.icmp(cc, a, c);
                        self.b.ins().uextend(i64t, f)
                    }
                    Xor => ins.bxor(a, c),
                    Or => ins.bor(a, c),
                    And => ins.band(a, c),
                    Mul => {
                        extra = self.costs.mul_extra;
                        ins.imul(a, c)
                    }
                    Mulh => {
                        extra = self.costs.mul_extra;
                        ins.smulhi(a, c)
                    }
                    _ => {
                        extra = self.costs.mul_extra;
                        ins.umulhi(a, c)
                    }
                }
            }
            // Word ops: compute in 32 bits, sign-extend (RV64I §5.2).
            Addiw | Slliw | Srliw | Sraiw => {
                let a = self.get(op.rs1);
                let a = self.b.ins().ireduce(i32t, a);
                let ins = self.b.ins();
                let w = match op.kind {
                    Addiw => ins.iadd_imm_s(a, imm),
                    Slliw => ins.ishl_imm_u(a, imm & 31),
                    Srliw => ins.ushr_imm_u(a, imm & 31),
                    _ => ins.sshr_imm_u(a, imm & 31),
                };
                self.b.ins().sextend(i64t, w)
            }
            Addw | Subw | Sllw | Srlw | Sraw | Mulw => {
                let a = self.get(op.rs1);
                let c = self.get(op.rs2);
                let a = self.b.ins().ireduce(i32t, a);
                let c = self.b.ins().ireduce(i32t, c);
                let ins = self.b.ins();
                let w = match op.kind {
                    Addw => ins.iadd(a, c),
                    Subw => ins.isub(a, c),
                    Sllw => ins.ishl(a, c),
                    Srlw => ins.ushr(a, c),
                    Sraw => ins.sshr(a, c),
                    _ => {
                        extra = self.costs.mul_extra;
                        ins.imul(a, c)
                    }
                };
                self.b.ins().sextend(i64t, w)
            }
            Fence => {
                self.add_cycles(self.costs.base);
                return true;
            }
            _ => return false,
        };
        // Destination x0 (or the sink) is dropped by `set`.
        let _ = SINK;
        self.set(op.rd, v);
        self.add_cycles(self.costs.base + extra);
        true
    }
}
