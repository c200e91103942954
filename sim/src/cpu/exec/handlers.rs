//! Instruction handlers of the executor (call threading).
//!
//! Every instruction the hot loop runs itself has two handlers generated
//! from one definition of its semantics:
//! * a *slot* handler, run on one decoded-cache slot at a time; it knows
//!   the instruction length as a constant (`LEN`), so the next pc does not
//!   wait for a load of the slot;
//! * for straight-line instructions (ALU, multiply/divide, loads, stores,
//!   `fence`), a *body* handler, run from a dense array of [`BodyOp`]s
//!   (a straight-line body) without per-instruction fetch, page and
//!   next-pc bookkeeping.
//!
//! Everything else (LR/SC, AMOs, CSRs, system instructions, first
//! execution of a slot) goes to `Hart::exec_rare` through [`rare`].

use super::super::Hart;
use crate::bus::Bus;
use crate::isa::{Kind, Op};

/// The next pc (slot handlers) or cycle (body handlers) a handler returns
/// when it left the hart's state in `Hart` (trap, CSR access, sleep,
/// stop): the loop reloads it, and returns `Hart::stop` if set. Never a
/// real pc (those are even) nor a reachable cycle count.
pub(crate) const EXIT: u64 = u64::MAX;

/// A slot handler: `(hart, bus, slot, pc, cycle, instret)` ->
/// `(next pc, cycle after the instruction)`, or `(EXIT, _)`.
///
/// # Safety
/// `slot` is the live decoded-cache slot of `pc`.
pub(super) type Handler = unsafe fn(&mut Hart, &mut Bus, *const Op, u64, u64, u64) -> (u64, u64);

/// A body handler: `(hart, bus, op, cycle)` -> cycle after the
/// instruction, or `EXIT`.
///
/// # Safety
/// `op` is a live op of the body that starts at `Hart::body_pc`, and
/// `Hart::body_instret` is the instructions retired before that body.
pub(crate) type BodyHandler = unsafe extern "C" fn(&mut Hart, &mut Bus, *const BodyOp, u64) -> u64;

/// One instruction of a straight-line body.
#[derive(Clone, Copy)]
pub struct BodyOp {
    pub(crate) handler: BodyHandler,
    pub(crate) imm: i32,
    pub(crate) rd: u8,
    pub(crate) rs1: u8,
    pub(crate) rs2: u8,
    /// Instruction length in bytes (0 for the end marker).
    pub(crate) len: u8,
    /// Byte offset of the instruction from the body's first pc.
    pub(crate) offset: u16,
    /// Position in the body (instructions before it).
    pub(crate) index: u16,
    pub(crate) kind: Kind,
}

/// A straight-line body, in one allocation: a header, then its ops (the
/// last one a jump or the end marker). The header's `handler` is
/// `interpreted` until the body is compiled, then the compiled function;
/// its `imm` counts interpreted runs.
pub type Body = [BodyOp];

/// Header marker of a body that is not compiled (never called).
unsafe extern "C" fn interpreted(_: &mut Hart, _: &mut Bus, _: *const BodyOp, _: u64) -> u64 {
    EXIT
}

/// Flag the end marker of a body adds to the cycle count (>= any `until`).
pub(crate) const BODY_END: u64 = 1 << 63;

/// The end marker of a body that ends without a branch or jump: the next
/// pc is the one after the body.
unsafe extern "C" fn body_end(h: &mut Hart, _: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
    // SAFETY: `op` is a live body op (handler contract).
    h.body_npc = h.body_pc.wrapping_add(u64::from(unsafe { (*op).offset }));
    cycle | BODY_END
}

impl BodyOp {
    /// The header of a new body of `n` ops (kept in `index`).
    pub(super) fn header(n: usize) -> BodyOp {
        BodyOp { handler: interpreted, imm: 0, rd: 0, rs1: 0, rs2: 0, len: 0, offset: 0, index: n as u16, kind: Kind::Fence }
    }

    /// The compiled form of the body this is the header of.
    #[inline(always)]
    pub(crate) fn compiled(&self) -> Option<crate::cpu::jit::JitFn> {
        if self.handler as usize == interpreted as BodyHandler as usize {
            None
        } else {
            // SAFETY: a header's handler is `interpreted` or was set by
            // `set_compiled` from a `JitFn`.
            Some(unsafe { std::mem::transmute::<BodyHandler, crate::cpu::jit::JitFn>(self.handler) })
        }
    }

    /// Installs the compiled form of the body this is the header of.
    pub(crate) fn set_compiled(&mut self, f: crate::cpu::jit::JitFn) {
        // SAFETY: only ever read back as a `JitFn` by `compiled`.
        self.handler = unsafe { std::mem::transmute::<crate::cpu::jit::JitFn, BodyHandler>(f) };
    }

    /// Counts an interpreted run (header); returns the count.
    #[inline(always)]
    pub(crate) fn count_run(&mut self) -> u32 {
        let n = (self.imm as u32).saturating_add(1);
        self.imm = n as i32;
        n
    }

    /// The marker after the last op of a body (`offset` = the body's
    /// length in bytes, `index` = its number of instructions).
    pub(super) fn end(offset: u16, index: u16) -> BodyOp {
        BodyOp { handler: body_end, imm: 0, rd: 0, rs1: 0, rs2: 0, len: 0, offset, index, kind: Kind::Fence }
    }

    /// The body op for `op` at `offset` / `index`, if `op` can run inside a
    /// straight-line body.
    pub(super) fn new(op: &Op, offset: u16, index: u16) -> Option<BodyOp> {
        let handler = BODY_HANDLERS[op.kind as usize]?;
        Some(BodyOp { handler, imm: op.imm, rd: op.rd, rs1: op.rs1, rs2: op.rs2, len: op.len, offset, index, kind: op.kind })
    }
}

impl Hart {
    /// A failed memory access of body op `op`: takes the exception or ends
    /// the run at the finisher.
    #[cold]
    #[inline(never)]
    fn body_fault(&mut self, bus: &mut Bus, e: super::MemErr, op: &BodyOp, cycle: u64) -> u64 {
        let pc = self.body_pc + u64::from(op.offset);
        let instret = self.body_instret + u64::from(op.index);
        self.mem_fault(bus, e, pc, pc + u64::from(op.len), cycle, instret);
        EXIT
    }
}

/// Register-register or register-immediate operation `rd = $e`, costing
/// the base cycles plus `$extra` (a [`crate::cpu::CoreCosts`] field).
macro_rules! alu {
    ($name:ident $(+ $extra:ident)?, |$a:ident, $b:ident, $imm:ident, $pc:ident| $e:expr) => {
        pub(super) mod $name {
            use super::*;

            #[allow(unused_variables)]
            pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, _: &mut Bus, op: *const Op, $pc: u64, cycle: u64, _: u64) -> (u64, u64) {
                // SAFETY: `op` is a live slot (handler contract).
                let op = unsafe { &*op };
                let $a = h.x[(op.rs1 & 63) as usize];
                let $b = h.x[(op.rs2 & 63) as usize];
                let $imm = op.imm as i64 as u64;
                h.x[(op.rd & 63) as usize] = $e;
                ($pc.wrapping_add(LEN), cycle + h.costs.base $(+ h.costs.$extra)?)
            }

            #[allow(unused_variables)]
            pub(crate) unsafe extern "C" fn body(h: &mut Hart, _: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
                // SAFETY: `op` is a live body op (handler contract).
                let op = unsafe { &*op };
                let $a = h.x[(op.rs1 & 63) as usize];
                let $b = h.x[(op.rs2 & 63) as usize];
                let $imm = op.imm as i64 as u64;
                let $pc = h.body_pc.wrapping_add(u64::from(op.offset));
                h.x[(op.rd & 63) as usize] = $e;
                cycle + h.costs.base $(+ h.costs.$extra)?
            }
        }
    };
}

/// Conditional branch (RV64I §2.5): taken costs `branch_taken` more. In a
/// body, taken leaves the body (next pc in `Hart::body_npc`, the end flag
/// set); not taken runs on with the next op (bodies extend past
/// conditional branches: superblocks).
macro_rules! branch {
    ($name:ident, |$a:ident, $b:ident| $cond:expr) => {
        pub(super) mod $name {
            use super::*;

            pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, _: &mut Bus, op: *const Op, pc: u64, cycle: u64, _: u64) -> (u64, u64) {
                // SAFETY: `op` is a live slot (handler contract).
                let op = unsafe { &*op };
                let $a = h.x[(op.rs1 & 63) as usize];
                let $b = h.x[(op.rs2 & 63) as usize];
                let cycle = cycle + h.costs.base;
                if $cond {
                    (pc.wrapping_add(op.imm as i64 as u64), cycle + h.costs.branch_taken)
                } else {
                    (pc.wrapping_add(LEN), cycle)
                }
            }

            pub(crate) unsafe extern "C" fn body(h: &mut Hart, _: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
                // SAFETY: `op` is a live body op (handler contract).
                let op = unsafe { &*op };
                let $a = h.x[(op.rs1 & 63) as usize];
                let $b = h.x[(op.rs2 & 63) as usize];
                let cycle = cycle + h.costs.base;
                if $cond {
                    h.body_npc = h.body_pc.wrapping_add(u64::from(op.offset)).wrapping_add(op.imm as i64 as u64);
                    (cycle + h.costs.branch_taken) | BODY_END
                } else {
                    cycle
                }
            }
        }
    };
}

macro_rules! load {
    ($name:ident, $size:expr, $conv:expr) => {
        pub(super) mod $name {
            use super::*;

            pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, bus: &mut Bus, op: *const Op, pc: u64, cycle: u64, instret: u64) -> (u64, u64) {
                // SAFETY: `op` is a live slot (handler contract).
                let op = unsafe { &*op };
                let addr = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64);
                let cycle = cycle + h.costs.base;
                let npc = pc.wrapping_add(LEN);
                match h.load(bus, cycle, addr, $size) {
                    Ok((v, lat)) => {
                        h.x[(op.rd & 63) as usize] = $conv(v);
                        (npc, cycle + lat)
                    }
                    Err(e) => h.mem_fault(bus, e, pc, npc, cycle, instret),
                }
            }

            pub(crate) unsafe extern "C" fn body(h: &mut Hart, bus: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
                // SAFETY: `op` is a live body op (handler contract).
                let op = unsafe { &*op };
                let addr = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64);
                let cycle = cycle + h.costs.base;
                match h.load(bus, cycle, addr, $size) {
                    Ok((v, lat)) => {
                        h.x[(op.rd & 63) as usize] = $conv(v);
                        cycle + lat
                    }
                    Err(e) => h.body_fault(bus, e, op, cycle),
                }
            }
        }
    };
}

macro_rules! store {
    ($name:ident, $size:expr) => {
        pub(super) mod $name {
            use super::*;

            pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, bus: &mut Bus, op: *const Op, pc: u64, cycle: u64, instret: u64) -> (u64, u64) {
                // SAFETY: `op` is a live slot (handler contract).
                let op = unsafe { &*op };
                let addr = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64);
                let v = h.x[(op.rs2 & 63) as usize];
                let cycle = cycle + h.costs.base;
                let npc = pc.wrapping_add(LEN);
                match h.store(bus, cycle, addr, $size, v) {
                    Ok(lat) => (npc, cycle + lat),
                    Err(e) => h.mem_fault(bus, e, pc, npc, cycle, instret),
                }
            }

            pub(crate) unsafe extern "C" fn body(h: &mut Hart, bus: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
                // SAFETY: `op` is a live body op (handler contract).
                let op = unsafe { &*op };
                let addr = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64);
                let v = h.x[(op.rs2 & 63) as usize];
                let cycle = cycle + h.costs.base;
                match h.store(bus, cycle, addr, $size, v) {
                    Ok(lat) => cycle + lat,
                    Err(e) => h.body_fault(bus, e, op, cycle),
                }
            }
        }
    };
}

mod ops {
    use super::{BodyOp, Bus, Hart, Op, BODY_END};

    alu!(lui, |a, b, imm, pc| imm);
    alu!(auipc, |a, b, imm, pc| pc.wrapping_add(imm));
    alu!(addi, |a, b, imm, pc| a.wrapping_add(imm));
    alu!(slti, |a, b, imm, pc| ((a as i64) < (imm as i64)) as u64);
    alu!(sltiu, |a, b, imm, pc| (a < imm) as u64);
    alu!(xori, |a, b, imm, pc| a ^ imm);
    alu!(ori, |a, b, imm, pc| a | imm);
    alu!(andi, |a, b, imm, pc| a & imm);
    alu!(slli, |a, b, imm, pc| a << (imm & 63));
    alu!(srli, |a, b, imm, pc| a >> (imm & 63));
    alu!(srai, |a, b, imm, pc| ((a as i64) >> (imm & 63)) as u64);
    alu!(add, |a, b, imm, pc| a.wrapping_add(b));
    alu!(sub, |a, b, imm, pc| a.wrapping_sub(b));
    alu!(sll, |a, b, imm, pc| a << (b & 63));
    alu!(slt, |a, b, imm, pc| ((a as i64) < (b as i64)) as u64);
    alu!(sltu, |a, b, imm, pc| (a < b) as u64);
    alu!(xor, |a, b, imm, pc| a ^ b);
    alu!(srl, |a, b, imm, pc| a >> (b & 63));
    alu!(sra, |a, b, imm, pc| ((a as i64) >> (b & 63)) as u64);
    alu!(or, |a, b, imm, pc| a | b);
    alu!(and, |a, b, imm, pc| a & b);
    alu!(addiw, |a, b, imm, pc| (a as i32).wrapping_add(imm as i32) as i64 as u64);
    alu!(slliw, |a, b, imm, pc| ((a as u32) << (imm & 31)) as i32 as i64 as u64);
    alu!(srliw, |a, b, imm, pc| ((a as u32) >> (imm & 31)) as i32 as i64 as u64);
    alu!(sraiw, |a, b, imm, pc| ((a as i32) >> (imm & 31)) as i64 as u64);
    alu!(addw, |a, b, imm, pc| (a as i32).wrapping_add(b as i32) as i64 as u64);
    alu!(subw, |a, b, imm, pc| (a as i32).wrapping_sub(b as i32) as i64 as u64);
    alu!(sllw, |a, b, imm, pc| ((a as u32) << (b & 31)) as i32 as i64 as u64);
    alu!(srlw, |a, b, imm, pc| ((a as u32) >> (b & 31)) as i32 as i64 as u64);
    alu!(sraw, |a, b, imm, pc| ((a as i32) >> (b & 31)) as i64 as u64);
    // `fence` orders nothing here: every access is performed in program
    // order. (Decoded with rd = x0: the write of 0 keeps x0 zero.)
    alu!(fence, |a, b, imm, pc| 0);
    // M (§7.1).
    alu!(mul + mul_extra, |a, b, imm, pc| a.wrapping_mul(b));
    alu!(mulh + mul_extra, |a, b, imm, pc| ((i128::from(a as i64) * i128::from(b as i64)) >> 64) as u64);
    alu!(mulhsu + mul_extra, |a, b, imm, pc| ((i128::from(a as i64) * i128::from(b)) >> 64) as u64);
    alu!(mulhu + mul_extra, |a, b, imm, pc| ((u128::from(a) * u128::from(b)) >> 64) as u64);
    alu!(mulw + mul_extra, |a, b, imm, pc| (a as i32).wrapping_mul(b as i32) as i64 as u64);
    // Division by zero and overflow per §7.2, table 7.1.
    alu!(div + div64_extra, |a, b, imm, pc| if b == 0 { u64::MAX } else { (a as i64).wrapping_div(b as i64) as u64 });
    alu!(divu + div64_extra, |a, b, imm, pc| a.checked_div(b).unwrap_or(u64::MAX));
    alu!(rem + div64_extra, |a, b, imm, pc| if b == 0 { a } else { (a as i64).wrapping_rem(b as i64) as u64 });
    alu!(remu + div64_extra, |a, b, imm, pc| if b == 0 { a } else { a % b });
    alu!(divw + div_extra, |a, b, imm, pc| {
        let (a, b) = (a as i32, b as i32);
        if b == 0 { u64::MAX } else { a.wrapping_div(b) as i64 as u64 }
    });
    alu!(divuw + div_extra, |a, b, imm, pc| {
        let (a, b) = (a as u32, b as u32);
        if b == 0 { u64::MAX } else { (a / b) as i32 as i64 as u64 }
    });
    alu!(remw + div_extra, |a, b, imm, pc| {
        let (a, b) = (a as i32, b as i32);
        if b == 0 { a as i64 as u64 } else { a.wrapping_rem(b) as i64 as u64 }
    });
    alu!(remuw + div_extra, |a, b, imm, pc| {
        let (a, b) = (a as u32, b as u32);
        if b == 0 { a as i32 as i64 as u64 } else { (a % b) as i32 as i64 as u64 }
    });

    branch!(beq, |a, b| a == b);
    branch!(bne, |a, b| a != b);
    branch!(blt, |a, b| (a as i64) < (b as i64));
    branch!(bge, |a, b| (a as i64) >= (b as i64));
    branch!(bltu, |a, b| a < b);
    branch!(bgeu, |a, b| a >= b);

    pub(super) mod jal {
        use super::*;

        pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, _: &mut Bus, op: *const Op, pc: u64, cycle: u64, _: u64) -> (u64, u64) {
            // SAFETY: `op` is a live slot (handler contract).
            let op = unsafe { &*op };
            h.x[(op.rd & 63) as usize] = pc.wrapping_add(LEN);
            (pc.wrapping_add(op.imm as i64 as u64), cycle + h.costs.base + h.costs.jump)
        }

        pub(crate) unsafe extern "C" fn body(h: &mut Hart, _: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
            // SAFETY: `op` is a live body op (handler contract).
            let op = unsafe { &*op };
            let pc = h.body_pc.wrapping_add(u64::from(op.offset));
            h.x[(op.rd & 63) as usize] = pc.wrapping_add(u64::from(op.len));
            h.body_npc = pc.wrapping_add(op.imm as i64 as u64);
            (cycle + h.costs.base + h.costs.jump) | BODY_END
        }
    }

    pub(super) mod jalr {
        use super::*;

        pub(crate) unsafe fn slot<const LEN: u64>(h: &mut Hart, _: &mut Bus, op: *const Op, pc: u64, cycle: u64, _: u64) -> (u64, u64) {
            // SAFETY: `op` is a live slot (handler contract).
            let op = unsafe { &*op };
            // Target from rs1 before rd is written (rd may equal rs1).
            let target = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64) & !1;
            h.x[(op.rd & 63) as usize] = pc.wrapping_add(LEN);
            (target, cycle + h.costs.base + h.costs.branch_taken)
        }

        pub(crate) unsafe extern "C" fn body(h: &mut Hart, _: &mut Bus, op: *const BodyOp, cycle: u64) -> u64 {
            // SAFETY: `op` is a live body op (handler contract).
            let op = unsafe { &*op };
            let pc = h.body_pc.wrapping_add(u64::from(op.offset));
            // Target from rs1 before rd is written (rd may equal rs1).
            h.body_npc = h.x[(op.rs1 & 63) as usize].wrapping_add(op.imm as i64 as u64) & !1;
            h.x[(op.rd & 63) as usize] = pc.wrapping_add(u64::from(op.len));
            (cycle + h.costs.base + h.costs.branch_taken) | BODY_END
        }
    }

    load!(lb, 1, |v: u64| v as i8 as i64 as u64);
    load!(lh, 2, |v: u64| v as i16 as i64 as u64);
    load!(lw, 4, |v: u64| v as i32 as i64 as u64);
    load!(ld, 8, |v: u64| v);
    load!(lbu, 1, |v: u64| v);
    load!(lhu, 2, |v: u64| v);
    load!(lwu, 4, |v: u64| v);
    store!(sb, 1);
    store!(sh, 2);
    store!(sw, 4);
    store!(sd, 8);
}

/// Everything without a handler of its own runs in `Hart::exec_rare` with
/// the state in the hart.
unsafe fn rare(h: &mut Hart, bus: &mut Bus, op: *const Op, pc: u64, cycle: u64, instret: u64) -> (u64, u64) {
    h.park(pc, cycle + h.costs.base, instret);
    // SAFETY: `op` is a live slot (handler contract); the copy is taken
    // before `exec_rare` may rewrite the slot through the same pointer.
    let o = unsafe { op.read() };
    h.stop = h.exec_rare(bus, o, op as *mut Op);
    (EXIT, 0)
}

/// The slot handler index of a decoded instruction: its kind, plus 128
/// for the 2-byte (compressed) form.
#[inline(always)]
pub(super) fn slot_index(kind: Kind, len: u8) -> usize {
    kind as usize | (usize::from(len & 2) << 6)
}

/// Fills both tables from `Kind => ops module` pairs.
macro_rules! tables {
    ($($k:ident => $m:ident),* $(,)?) => {
        /// The slot handler of each instruction (indexed by [`slot_index`]).
        pub(super) static HANDLERS: [Handler; 256] = {
            use Kind as K;
            let mut t: [Handler; 256] = [rare as Handler; 256];
            $(
                t[K::$k as usize] = ops::$m::slot::<4>;
                t[K::$k as usize | 128] = ops::$m::slot::<2>;
            )*
            t
        };

        /// The body handler of each kind that may run in a straight-line body.
        static BODY_HANDLERS: [Option<BodyHandler>; 128] = {
            use Kind as K;
            let mut t: [Option<BodyHandler>; 128] = [None; 128];
            $( t[K::$k as usize] = Some(ops::$m::body); )*
            t
        };
    };
}

tables! {
        Lui => lui, Auipc => auipc,
        Lb => lb, Lh => lh, Lw => lw, Ld => ld, Lbu => lbu, Lhu => lhu, Lwu => lwu,
        Sb => sb, Sh => sh, Sw => sw, Sd => sd,
        Addi => addi, Slti => slti, Sltiu => sltiu, Xori => xori, Ori => ori, Andi => andi,
        Slli => slli, Srli => srli, Srai => srai,
        Add => add, Sub => sub, Sll => sll, Slt => slt, Sltu => sltu, Xor => xor,
        Srl => srl, Sra => sra, Or => or, And => and,
        Addiw => addiw, Slliw => slliw, Srliw => srliw, Sraiw => sraiw,
        Addw => addw, Subw => subw, Sllw => sllw, Srlw => srlw, Sraw => sraw,
        Fence => fence,
        Mul => mul, Mulh => mulh, Mulhsu => mulhsu, Mulhu => mulhu, Mulw => mulw,
        Div => div, Divu => divu, Rem => rem, Remu => remu,
        Divw => divw, Divuw => divuw, Remw => remw, Remuw => remuw,
        Jal => jal, Jalr => jalr,
        Beq => beq, Bne => bne, Blt => blt, Bge => bge, Bltu => bltu, Bgeu => bgeu,
}
