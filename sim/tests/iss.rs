//! Instruction semantics, written from the RISC-V unprivileged spec
//! (v20191213) and privileged spec (v1.12), run on the simulator's hart.

mod common;
use common::*;
use dpu_hal::regs::csr as c;
use dpu_sim::Outcome;

const OP: u32 = 0b0110011;
const OPW: u32 = 0b0111011;
const OPI: u32 = 0b0010011;
const OPIW: u32 = 0b0011011;
const AMO: u32 = 0b0101111;

fn r(f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    asm::r(OP, rd, f3, rs1, rs2, f7)
}
fn rw(f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    asm::r(OPW, rd, f3, rs1, rs2, f7)
}
/// Runs `a0 = A, a1 = B; <insn writes a2>` and returns a2.
fn binop(insn: u32, a: u64, b: u64) -> u64 {
    let m = run1(Prog::new().li(A0, a).li(A1, b).i(insn).halt());
    m.harts[0].reg(A2 as usize)
}

#[test]
fn rv64i_alu_and_word_ops_sign_extend() {
    let add = r(0, 0, A2, A0, A1);
    assert_eq!(binop(add, u64::MAX, 2), 1);
    let sub = r(0, 0x20, A2, A0, A1);
    assert_eq!(binop(sub, 0, 1), u64::MAX);
    // addw wraps at 32 bits and sign-extends (§5.2).
    assert_eq!(binop(rw(0, 0, A2, A0, A1), 0x7fff_ffff, 1), 0xffff_ffff_8000_0000);
    assert_eq!(binop(rw(0, 0x20, A2, A0, A1), 0x1_0000_0000, 1), u64::MAX);
    // Shifts use the low 6 (64-bit) or 5 (word) bits of rs2.
    assert_eq!(binop(r(1, 0, A2, A0, A1), 1, 65), 2);
    assert_eq!(binop(r(5, 0x20, A2, A0, A1), 0x8000_0000_0000_0000, 63), u64::MAX);
    assert_eq!(binop(r(5, 0, A2, A0, A1), 0x8000_0000_0000_0000, 63), 1);
    assert_eq!(binop(rw(1, 0, A2, A0, A1), 1, 31 + 32), 0xffff_ffff_8000_0000);
    assert_eq!(binop(rw(5, 0, A2, A0, A1), 0xffff_ffff_8000_0000, 31), 1);
    assert_eq!(binop(rw(5, 0x20, A2, A0, A1), 0x8000_0000, 31), u64::MAX);
    // slt / sltu.
    assert_eq!(binop(r(2, 0, A2, A0, A1), u64::MAX, 0), 1);
    assert_eq!(binop(r(3, 0, A2, A0, A1), u64::MAX, 0), 0);
    // Immediate forms.
    let m = run1(
        Prog::new()
            .li(A0, 5)
            .i(asm::i(OPI, A1, 3, A0, -1)) // sltiu a1, a0, -1  -> 5 < 2^64-1
            .i(asm::i(OPI, A2, 2, A0, -1)) // slti a2, a0, -1   -> 5 < -1 false
            .i(asm::i(OPIW, A3, 0, A0, -6)) // addiw a3, a0, -6 -> -1
            .i(asm::lui(A4, 0x8000_0000)) // lui sign-extends
            .i(asm::i(OPI, A5, 5, A4, 0x400 | 60)) // srai a5, a4, 60
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A1 as usize), 1);
    assert_eq!(h.reg(A2 as usize), 0);
    assert_eq!(h.reg(A3 as usize), u64::MAX);
    assert_eq!(h.reg(A4 as usize), 0xffff_ffff_8000_0000);
    assert_eq!(h.reg(A5 as usize), u64::MAX);
}

#[test]
fn x0_is_hardwired_to_zero() {
    let m = run1(Prog::new().i(asm::addi(0, 0, 5)).i(asm::addi(A0, 0, 0)).halt());
    assert_eq!(m.harts[0].reg(0), 0);
    assert_eq!(m.harts[0].reg(A0 as usize), 0);
}

#[test]
fn m_extension_edge_cases() {
    // Table 7.1: division by zero and signed overflow.
    let div = r(4, 1, A2, A0, A1);
    let divu = r(5, 1, A2, A0, A1);
    let rem = r(6, 1, A2, A0, A1);
    let remu = r(7, 1, A2, A0, A1);
    assert_eq!(binop(div, 7, 0), u64::MAX);
    assert_eq!(binop(divu, 7, 0), u64::MAX);
    assert_eq!(binop(rem, 7, 0), 7);
    assert_eq!(binop(remu, 7, 0), 7);
    let min = i64::MIN as u64;
    assert_eq!(binop(div, min, u64::MAX), min);
    assert_eq!(binop(rem, min, u64::MAX), 0);
    assert_eq!(binop(div, (-7i64) as u64, 2), (-3i64) as u64, "rounds toward zero");
    assert_eq!(binop(rem, (-7i64) as u64, 2), (-1i64) as u64, "remainder has the dividend's sign");
    // Word forms.
    let divw = rw(4, 1, A2, A0, A1);
    let divuw = rw(5, 1, A2, A0, A1);
    let remw = rw(6, 1, A2, A0, A1);
    let remuw = rw(7, 1, A2, A0, A1);
    assert_eq!(binop(divw, 0x8000_0000, u64::MAX), 0xffff_ffff_8000_0000);
    assert_eq!(binop(remw, 0x8000_0000, u64::MAX), 0);
    assert_eq!(binop(divuw, 5, 0), u64::MAX);
    assert_eq!(binop(remuw, 0x8000_0005, 0), 0xffff_ffff_8000_0005);
    assert_eq!(binop(remw, 0xffff_fff9, 0), u64::MAX - 6);
    // High multiplies.
    let mulh = r(1, 1, A2, A0, A1);
    let mulhsu = r(2, 1, A2, A0, A1);
    let mulhu = r(3, 1, A2, A0, A1);
    assert_eq!(binop(mulh, u64::MAX, u64::MAX), 0, "(-1)*(-1) = 1, high half 0");
    assert_eq!(binop(mulhsu, u64::MAX, u64::MAX), u64::MAX, "(-1)*(2^64-1) high half is -1");
    assert_eq!(binop(mulhu, u64::MAX, u64::MAX), u64::MAX - 1);
    assert_eq!(binop(rw(0, 1, A2, A0, A1), 0x1_0000_0003, 0x7fff_ffff), 0x7fff_fffd);
}

#[test]
fn loads_extend_and_misaligned_access_works() {
    let d = data_addr();
    let m = run1(
        Prog::new()
            .li(S0, d)
            .li(A0, 0x8081_8283_8485_8687)
            .i(asm::sd(A0, S0, 0))
            .i(asm::i(0b0000011, A1, 0, S0, 0)) // lb
            .i(asm::i(0b0000011, A2, 4, S0, 0)) // lbu
            .i(asm::i(0b0000011, A3, 2, S0, 4)) // lw  (0x80818283)
            .i(asm::i(0b0000011, A4, 6, S0, 4)) // lwu
            .i(asm::sd(A0, S0, 0x103)) // misaligned store
            .i(asm::ld(A5, S0, 0x103)) // misaligned load
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A1 as usize), 0xffff_ffff_ffff_ff87);
    assert_eq!(h.reg(A2 as usize), 0x87);
    assert_eq!(h.reg(A3 as usize), 0xffff_ffff_8081_8283);
    assert_eq!(h.reg(A4 as usize), 0x8081_8283);
    assert_eq!(h.reg(A5 as usize), 0x8081_8283_8485_8687);
}

#[test]
fn misaligned_access_across_pages() {
    let d = data_addr() + 0xffc; // 4 bytes before a page boundary
    let mut m = run1(Prog::new().li(S0, d).li(A0, 0x1122_3344_5566_7788).i(asm::sd(A0, S0, 0)).i(asm::ld(A1, S0, 0)).halt());
    assert_eq!(m.harts[0].reg(A1 as usize), 0x1122_3344_5566_7788);
    assert_eq!(read_u64(&mut m, d), 0x1122_3344_5566_7788);
}

#[test]
fn compressed_instructions() {
    // Hand-encoded from the C extension tables (§16.3-16.6).
    let m = run1(
        Prog::new()
            .li(SP, data_addr() + 0x1000)
            .c(0x1141) // c.addi sp, -16
            .c(0x4515) // c.li a0, 5
            .c(0xe42a) // c.sdsp a0, 8(sp)
            .c(0x65a2) // c.ldsp a1, 8(sp)
            .c(0x95aa) // c.add a1, a0      -> 10
            .c(0x862e) // c.mv a2, a1       -> 10
            .c(0x2605) // c.addiw a2, 1     -> 11
            .c(0x0606) // c.slli a2, 1      -> 22
            .c(0x8a1d) // c.andi a2, 7      -> 6
            .c(0x0141) // c.addi sp, 16
            .c(0x4681) // c.li a3, 0
            .c(0xc291) // c.beqz a3, +4 (skips next)
            .c(0x4685) // c.li a3, 1 (skipped)
            .c(0xa011) // c.j +4 (skips next)
            .c(0x4705) // c.li a4, 1 (skipped)
            .c(0x6785) // c.lui a5, 1       -> 0x1000
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A0 as usize), 5);
    assert_eq!(h.reg(A1 as usize), 10);
    assert_eq!(h.reg(A2 as usize), 6);
    assert_eq!(h.reg(A3 as usize), 0);
    assert_eq!(h.reg(A4 as usize), 0);
    assert_eq!(h.reg(A5 as usize), 0x1000);
    assert_eq!(h.reg(SP as usize), data_addr() + 0x1000);
}

/// Sets distinct values in every register but sp (which stays 0) so a
/// HINT that wrote anything would show.
fn hint_setup() -> Prog {
    let mut p = Prog::new();
    for r in 1..32u32 {
        if r != SP {
            p = p.li(r, 0x1111_0000_0000_0000 | (u64::from(r) << 8) | u64::from(r));
        }
    }
    p
}

/// Runs `setup; hints; halt` and `setup; halt` and checks that the HINTs
/// retired (one instruction each) without trapping or changing a register.
fn assert_hints_are_noops(what: &str, hints: Prog, count: u64) {
    let with = run1({
        let mut p = hint_setup();
        p.bytes.extend_from_slice(&hints.bytes);
        p.halt()
    });
    let without = run1(hint_setup().halt());
    let (a, b) = (&with.harts[0], &without.harts[0]);
    assert_eq!(a.traps_taken, 0, "{what}: a HINT trapped");
    for r in 0..32 {
        assert_eq!(a.reg(r), b.reg(r), "{what}: x{r} changed");
    }
    assert_eq!(a.instret, b.instret + count, "{what}: every HINT retires");
}

#[test]
fn rvc_hints_execute_as_noops() {
    // RVC HINTs, unprivileged spec v20191213 §16.7 table 16.3 (RV64C).
    let hints: &[(u16, &str)] = &[
        (0x0005, "c.nop with nzimm=1"),
        (0x1005, "c.nop with nzimm=-32"), // b12 set, imm[4:0] = 1
        (0x0501, "c.addi a0, 0 (rd!=x0, nzimm=0)"),
        (0x4015, "c.li x0, 5"),
        (0x5001, "c.li x0, -32"),
        (0x6005, "c.lui x0, 1 (nzimm!=0)"),
        (0x707d, "c.lui x0, -1 (nzimm!=0)"),
        (0x802a, "c.mv x0, a0"),
        (0x902a, "c.add x0, a0"),
        (0x0006, "c.slli x0, 1"),
        (0x1006, "c.slli x0, 32"),
        (0x0002, "c.slli64 x0 (shamt=0)"),
        (0x0502, "c.slli64 a0 (shamt=0)"),
        (0x8101, "c.srli64 a0 (shamt=0)"),
        (0x8501, "c.srai64 a0 (shamt=0)"),
    ];
    for &(h, what) in hints {
        let op = dpu_sim::isa::decode(u32::from(h));
        assert_ne!(op.kind, dpu_sim::isa::Kind::Illegal, "{what} ({h:#06x}) is a HINT, not illegal");
        assert_hints_are_noops(what, Prog::new().c(h), 1);
    }
    // Still reserved (not HINTs): c.lui with nzimm=0, c.addi16sp with
    // nzimm=0, c.addiw x0, c.lwsp/c.ldsp x0, c.jr x0, c.addi4spn 0.
    for (h, what) in [(0x6001u16, "c.lui x0, 0"), (0x6101, "c.addi16sp 0"), (0x2001, "c.addiw x0"), (0x4002, "c.lwsp x0"), (0x6002, "c.ldsp x0"), (0x8002, "c.jr x0"), (0x0000, "all-zero")] {
        assert_eq!(dpu_sim::isa::decode(u32::from(h)).kind, dpu_sim::isa::Kind::Illegal, "{what} ({h:#06x}) is reserved");
    }
}

#[test]
fn base_isa_hints_execute_as_noops() {
    // Base-ISA HINTs, unprivileged spec v20191213 §2.9 table 2.3 (RV32I)
    // and §5.4 (RV64I): integer computations with rd = x0, FENCE with
    // pred or succ 0 (PAUSE included), and FENCE's reserved fields.
    let hints: &[(u32, &str)] = &[
        (asm::lui(0, 0x1000), "lui x0"),
        (asm::auipc(0, 0x1000), "auipc x0"),
        (asm::addi(0, A0, 1), "addi x0, a0, 1"),
        (asm::addi(0, 0, 5), "addi x0, x0, 5"),
        (asm::i(OPI, 0, 2, A0, 3), "slti x0"),
        (asm::i(OPI, 0, 3, A0, 3), "sltiu x0"),
        (asm::i(OPI, 0, 4, A0, 3), "xori x0"),
        (asm::i(OPI, 0, 6, A0, 3), "ori x0"),
        (asm::i(OPI, 0, 7, A0, 3), "andi x0"),
        (asm::i(OPI, 0, 1, A0, 33), "slli x0, a0, 33"),
        (asm::i(OPI, 0, 5, A0, 33), "srli x0, a0, 33"),
        (asm::i(OPI, 0, 5, A0, 0x400 | 33), "srai x0, a0, 33"),
        (asm::i(OPIW, 0, 0, A0, 7), "addiw x0"),
        (asm::i(OPIW, 0, 1, A0, 3), "slliw x0"),
        (asm::i(OPIW, 0, 5, A0, 3), "srliw x0"),
        (asm::i(OPIW, 0, 5, A0, 0x400 | 3), "sraiw x0"),
        (r(0, 0, 0, A0, A1), "add x0"),
        (r(0, 0b0100000, 0, A0, A1), "sub x0"),
        (r(1, 0, 0, A0, A1), "sll x0"),
        (r(2, 0, 0, A0, A1), "slt x0"),
        (r(3, 0, 0, A0, A1), "sltu x0"),
        (r(4, 0, 0, A0, A1), "xor x0"),
        (r(5, 0, 0, A0, A1), "srl x0"),
        (r(5, 0b0100000, 0, A0, A1), "sra x0"),
        (r(6, 0, 0, A0, A1), "or x0"),
        (r(7, 0, 0, A0, A1), "and x0"),
        (rw(0, 0, 0, A0, A1), "addw x0"),
        (rw(0, 0b0100000, 0, A0, A1), "subw x0"),
        (rw(1, 0, 0, A0, A1), "sllw x0"),
        (rw(5, 0, 0, A0, A1), "srlw x0"),
        (rw(5, 0b0100000, 0, A0, A1), "sraw x0"),
        (0x0100_000f, "pause (fence w, 0)"),
        (0x0f00_000f, "fence iorw, 0 (succ=0)"),
        (0x00f0_000f, "fence 0, iorw (pred=0)"),
        (0x0ff5_050f, "fence with rs1, rd set (reserved fields ignored)"),
    ];
    for &(w, what) in hints {
        assert_hints_are_noops(what, Prog::new().i(w), 1);
    }
}

/// A trap inside a trap handler is taken again (privileged spec v1.12
/// §3.1.6.1, §3.3.1: M-mode has no double-fault rule; mepc, mcause and
/// mtval are overwritten). The handler below saves mepc before it traps
/// on purpose, as nesting handlers must.
fn nested_trap_prog() -> (Prog, u64, u64) {
    let d = data_addr();
    let setup_len = 17 * 4 * 2 + 4;
    let body = Prog::new().i(0xffff_ffff); // illegal
    let handler = ddr_base() + setup_len as u64 + 4 + 8;
    let mut p = Prog::new().li(S0, d).li(T0, handler).i(asm::csrrw(0, u32::from(c::MTVEC), T0));
    p.bytes.extend_from_slice(&body.bytes);
    p = p.halt();
    assert_eq!(ddr_base() + p.bytes.len() as u64, handler);
    // count += 1; last mcause -> s0+0, last mepc -> s0+8
    let h = Prog::new()
        .i(asm::ld(T1, S0, 24))
        .i(asm::addi(T1, T1, 1))
        .i(asm::sd(T1, S0, 24))
        .i(asm::csrrs(T0, u32::from(c::MCAUSE), 0))
        .i(asm::sd(T0, S0, 0))
        .i(asm::csrrs(T0, u32::from(c::MEPC), 0))
        .i(asm::sd(T0, S0, 8))
        .i(asm::addi(T2, 0, 1))
        .i(asm::b(1, T1, T2, 5 * 4)) // bne count, 1 -> ret_next
        .i(asm::sd(T0, S0, 32)) // save mepc
        .i(asm::ECALL) // the nested trap
        .i(asm::ld(T0, S0, 32))
        .i(asm::csrrw(0, u32::from(c::MEPC), T0)) // restore mepc
        // ret_next: mepc += 4; mret
        .i(asm::csrrs(T0, u32::from(c::MEPC), 0))
        .i(asm::addi(T0, T0, 4))
        .i(asm::csrrw(0, u32::from(c::MEPC), T0))
        .i(asm::MRET);
    let ecall_at = handler + 10 * 4;
    p.bytes.extend_from_slice(&h.bytes);
    (p, handler, ecall_at)
}

#[test]
fn trap_inside_the_trap_handler_is_taken_again() {
    let (p, _, ecall_at) = nested_trap_prog();
    let mut m = run1(p);
    let d = data_addr();
    assert_eq!(read_u64(&mut m, d + 24), 2, "the handler ran twice");
    assert_eq!(read_u64(&mut m, d), c::EXC_ECALL_M, "the nested trap overwrote mcause");
    assert_eq!(read_u64(&mut m, d + 8), ecall_at, "the nested trap overwrote mepc");
    assert_eq!(m.harts[0].traps_taken, 2);
    let t = m.harts[0].last_trap.as_ref().expect("recorded");
    assert_eq!((t.pc, t.cause), (ecall_at, c::EXC_ECALL_M), "the last trap is recorded");
}

#[test]
fn stop_on_nested_trap_is_an_opt_in_debugging_aid() {
    let (p, _, ecall_at) = nested_trap_prog();
    let mut m = machine_on(&p, 1, 1);
    m.harts[0].stop_on_nested_trap = true;
    match m.run() {
        Outcome::Fatal { hart: 0, message } => {
            assert!(message.contains(&format!("environment call from M-mode at {ecall_at:#x}")), "{message}");
            assert!(message.contains("inside the handler of illegal instruction at"), "{message}");
            let report = m.fault_report(0, &message);
            assert!(report.contains(&format!("pc    : {ecall_at:#x}")), "the report names the nested trap's pc: {report}");
        }
        o => panic!("unexpected outcome {o:?}"),
    }
}

#[test]
fn atomics_return_old_value_and_apply_op() {
    let d = data_addr();
    let amo = |f5: u32, f3: u32, rd: u32| asm::r(AMO, rd, f3, S0, A1, f5 << 2);
    let m = run1(
        Prog::new()
            .li(S0, d)
            .li(A0, (-5i64) as u64)
            .i(asm::sd(A0, S0, 0))
            .li(A1, 3)
            .i(amo(0b00000, 3, A2)) // amoadd.d a2 <- -5, mem = -2
            .i(amo(0b10000, 3, A3)) // amomin.d a3 <- -2, mem = min(-2, 3) = -2
            .i(amo(0b11100, 3, A4)) // amomaxu.d a4 <- -2, mem = max_u = -2
            .i(amo(0b00001, 2, A5)) // amoswap.w a5 <- sext(low32(-2)), mem low = 3
            .i(asm::ld(T0, S0, 0))
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A2 as usize), (-5i64) as u64);
    assert_eq!(h.reg(A3 as usize), (-2i64) as u64);
    assert_eq!(h.reg(A4 as usize), (-2i64) as u64);
    assert_eq!(h.reg(A5 as usize), (-2i64) as u64);
    assert_eq!(h.reg(T0 as usize), 0xffff_ffff_0000_0003);
}

#[test]
fn lr_sc_success_and_failure() {
    let d = data_addr();
    let lr = |rd: u32| asm::r(AMO, rd, 3, S0, 0, 0b00010 << 2);
    let sc = |rd: u32| asm::r(AMO, rd, 3, S0, A1, 0b00011 << 2);
    let m = run1(
        Prog::new()
            .li(S0, d)
            .li(A1, 42)
            .i(sc(A2)) // no reservation: fails (1)
            .i(lr(A3))
            .i(sc(A4)) // succeeds (0)
            .i(sc(A5)) // reservation consumed: fails
            .i(lr(T0))
            .i(asm::sd(ZERO, S0, 8)) // store to the same 64-byte granule breaks it
            .i(sc(T1))
            .i(asm::ld(T2, S0, 0))
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A2 as usize), 1);
    assert_eq!(h.reg(A4 as usize), 0);
    assert_eq!(h.reg(A5 as usize), 1);
    assert_eq!(h.reg(T0 as usize), 42);
    assert_eq!(h.reg(T1 as usize), 1);
    assert_eq!(h.reg(T2 as usize), 42);
}

/// A trap handler at `handler` that records mcause/mepc/mtval into
/// s0+0/8/16 (incrementing a count at s0+24) and returns past the faulting
/// 4-byte instruction.
fn with_handler(body: Prog) -> Prog {
    let d = data_addr();
    // Layout: [setup][body][halt][handler]
    let setup_len = 17 * 4 * 2 + 4; // two li + csrw
    let body_len = body.bytes.len() as u64;
    let handler = ddr_base() + setup_len as u64 + body_len + 8;
    let mut p = Prog::new().li(S0, d).li(T0, handler).i(asm::csrrw(0, u32::from(c::MTVEC), T0));
    assert_eq!(p.bytes.len(), setup_len);
    p.bytes.extend_from_slice(&body.bytes);
    p = p.halt();
    p.i(asm::csrrs(T0, u32::from(c::MCAUSE), 0))
        .i(asm::sd(T0, S0, 0))
        .i(asm::csrrs(T0, u32::from(c::MEPC), 0))
        .i(asm::sd(T0, S0, 8))
        .i(asm::addi(T0, T0, 4))
        .i(asm::csrrw(0, u32::from(c::MEPC), T0))
        .i(asm::csrrs(T0, u32::from(c::MTVAL), 0))
        .i(asm::sd(T0, S0, 16))
        .i(asm::ld(T0, S0, 24))
        .i(asm::addi(T0, T0, 1))
        .i(asm::sd(T0, S0, 24))
        .i(asm::MRET)
}

/// Runs one faulting instruction; returns (mcause, mepc offset from the
/// instruction, mtval, traps).
fn trap_of(insn: u32, pre: Prog) -> (u64, u64, u64, u64) {
    let mut body = pre;
    let at = body.bytes.len() as u64;
    body = body.i(insn);
    let prog = with_handler(body);
    let insn_addr = ddr_base() + (17 * 4 * 2 + 4) as u64 + at;
    let mut m = run1(prog);
    let d = data_addr();
    let mepc = read_u64(&mut m, d + 8);
    (read_u64(&mut m, d), mepc.wrapping_sub(insn_addr), read_u64(&mut m, d + 16), read_u64(&mut m, d + 24))
}

#[test]
fn exceptions_set_mcause_mepc_mtval() {
    // Illegal instruction: mtval holds the instruction bits.
    assert_eq!(trap_of(0xffff_ffff, Prog::new()), (c::EXC_ILLEGAL, 0, 0xffff_ffff, 1));
    // ecall / ebreak.
    assert_eq!(trap_of(asm::ECALL, Prog::new()).0, c::EXC_ECALL_M);
    let (cause, off, tval, _) = trap_of(asm::EBREAK, Prog::new());
    assert_eq!((cause, off), (c::EXC_BREAKPOINT, 0));
    assert_eq!(tval, ddr_base() + (17 * 4 * 2 + 4) as u64, "ebreak mtval = pc");
    // Load from an unmapped address: access fault with the address.
    assert_eq!(trap_of(asm::ld(A0, ZERO, 0x100), Prog::new()), (c::EXC_LOAD_ACCESS, 0, 0x100, 1));
    // Store to the boot ROM: store access fault.
    let rom = Prog::new().li(A1, 0x1000);
    assert_eq!(trap_of(asm::sd(A0, A1, 8), rom), (c::EXC_STORE_ACCESS, 0, 0x1008, 1));
    // Misaligned AMO: store/AMO address misaligned.
    let mis = Prog::new().li(A1, data_addr() + 0x102);
    let amoadd = asm::r(AMO, A2, 3, A1, A0, 0);
    assert_eq!(trap_of(amoadd, mis.clone()), (c::EXC_STORE_MISALIGNED, 0, data_addr() + 0x102, 1));
    // Misaligned LR: load address misaligned.
    let lr = asm::r(AMO, A2, 2, A1, 0, 0b00010 << 2);
    assert_eq!(trap_of(lr, mis).0, c::EXC_LOAD_MISALIGNED);
    // Writing a read-only CSR (mhartid) is illegal; reading it is not.
    let w = asm::csrrw(0, u32::from(c::MHARTID), A0);
    assert_eq!(trap_of(w, Prog::new()), (c::EXC_ILLEGAL, 0, u64::from(w), 1));
    let rd_only = asm::csrrs(A0, u32::from(c::MHARTID), 0);
    assert_eq!(trap_of(rd_only, Prog::new()).3, 0, "csrr of a read-only CSR does not trap");
    // Unknown CSR (satp: no S-mode here).
    assert_eq!(trap_of(asm::csrrs(A0, 0x180, 0), Prog::new()).0, c::EXC_ILLEGAL);
}

#[test]
fn csrs_report_machine_identity_and_warl() {
    let m = run1(
        Prog::new()
            .i(asm::csrrs(A0, u32::from(c::MISA), 0))
            .li(T0, u64::MAX)
            .i(asm::csrrw(0, u32::from(c::MSTATUS), T0))
            .i(asm::csrrs(A1, u32::from(c::MSTATUS), 0))
            .i(asm::csrrw(0, u32::from(c::MTVEC), T0))
            .i(asm::csrrs(A2, u32::from(c::MTVEC), 0))
            .i(asm::csrrw(0, u32::from(c::MSTATUS), 0))
            .i(asm::csrrs(A3, u32::from(c::MINSTRET), 0))
            .i(asm::csrrs(A4, u32::from(c::MINSTRET), 0))
            .i(asm::csrrs(A5, u32::from(c::MCYCLE), 0))
            .i(asm::csrrs(S1, u32::from(c::MCYCLE), 0))
            .halt(),
    );
    let h = &m.harts[0];
    assert_eq!(h.reg(A0 as usize), (2 << 62) | (1 << 12) | (1 << 8) | (1 << 2) | 1, "RV64 IMAC: M, I, C, A");
    assert_eq!(h.reg(A1 as usize), c::MSTATUS_MIE | c::MSTATUS_MPIE | c::MSTATUS_MPP);
    assert_eq!(h.reg(A2 as usize), u64::MAX & !3, "reserved mtvec mode 3 reads as direct (0)");
    assert_eq!(h.reg(A4 as usize), h.reg(A3 as usize) + 1);
    assert!(h.reg(S1 as usize) > h.reg(A5 as usize));
}

#[test]
fn mhartid_identifies_each_hart() {
    // Every hart stores its a0 (mhartid from the ROM) at data + 8*hartid.
    let d = data_addr();
    let prog = Prog::new()
        .li(S0, d)
        .i(asm::i(OPI, T0, 1, A0, 3)) // slli t0, a0, 3
        .i(asm::r(OP, T0, 0, S0, T0, 0)) // add t0, s0, t0
        .i(asm::csrrs(T1, u32::from(c::MHARTID), 0))
        .i(asm::addi(T1, T1, 1))
        .i(asm::sd(T1, T0, 0))
        .halt();
    let mut m = machine_on(&prog, 5, 16);
    m.run();
    assert!(all_asleep(&m));
    for h in 0..80u64 {
        assert_eq!(read_u64(&mut m, d + 8 * h), h + 1);
    }
}

/// All harts increment one counter `n` times with `amoadd.d`, then with
/// an LR/SC loop: the total is exact.
#[test]
fn eighty_harts_amoadd_and_lrsc_counters_are_exact() {
    let d = data_addr();
    let n = 200;
    let amoadd = asm::r(AMO, 0, 3, S0, T1, 0); // amoadd.d x0, t1, (s0)
    let lr = asm::r(AMO, T2, 3, S1, 0, 0b00010 << 2); // lr.d t2, (s1)
    let sc = asm::r(AMO, A2, 3, S1, T2, 0b00011 << 2); // sc.d a2, t2, (s1)
    let prog = Prog::new()
        .li(S0, d)
        .li(S1, d + 64)
        .i(asm::addi(T0, 0, n)) // t0 = n
        .i(asm::addi(T1, 0, 1)) // t1 = 1
        // loop1: amoadd; t0 -= 1; bnez t0, loop1
        .i(amoadd)
        .i(asm::addi(T0, T0, -1))
        .i(asm::b(1, T0, 0, -8))
        .i(asm::addi(T0, 0, n))
        // loop2: lr; addi; sc; bnez a2, loop2; t0 -= 1; bnez t0, loop2
        .i(lr)
        .i(asm::addi(T2, T2, 1))
        .i(sc)
        .i(asm::b(1, A2, 0, -12))
        .i(asm::addi(T0, T0, -1))
        .i(asm::b(1, T0, 0, -20))
        .halt();
    let mut m = machine_on(&prog, 5, 16);
    m.run();
    assert!(all_asleep(&m));
    assert_eq!(read_u64(&mut m, d), 80 * n as u64);
    assert_eq!(read_u64(&mut m, d + 64), 80 * n as u64);
}

#[test]
fn self_modifying_code_takes_effect_after_store() {
    // The instruction at `patch` is `addi a0, zero, 1`; the program first
    // executes it, then overwrites it with `addi a0, zero, 2`, runs fence.i
    // and executes it again.
    let base = ddr_base();
    let prefix_len = 17 * 4 * 2; // two li
    let patch = base + prefix_len as u64 + 4 * 3; // after li,li, jal, ..., see below
    let prog = Prog::new()
        .li(S0, patch)
        .li(T1, u64::from(asm::addi(A0, 0, 2)))
        .i(asm::j(RA, 12)) // call patch (skips the next 2 words)
        .i(asm::addi(A1, A0, 0)) // a1 = first result
        .i(asm::j(0, 12)) // -> patching code
        .i(asm::addi(A0, 0, 1)) // patch:
        .i(asm::jalr(0, RA, 0)) // ret
        .i(asm::sw(T1, S0, 0))
        .i(0x0000_100f) // fence.i
        .i(asm::jalr(RA, S0, 0)) // call patch again
        .halt();
    assert_eq!(&prog.bytes[(patch - base) as usize..][..4], &asm::addi(A0, 0, 1).to_le_bytes());
    let m = run1(prog);
    assert_eq!(m.harts[0].reg(A1 as usize), 1);
    assert_eq!(m.harts[0].reg(A0 as usize), 2);
}

#[test]
fn fence_i_keeps_decoded_code_that_no_write_touched() {
    // Twenty instructions run once, then `fence.i`: the decoded cache is
    // kept coherent by every write, so the fence drops nothing (the
    // self-modifying test above shows a patched instruction still takes
    // effect); it used to empty the whole cache.
    let mut prog = Prog::new();
    for k in 0..20 {
        prog = prog.i(asm::addi(A0, A0, k));
    }
    let m = run1(prog.i(0x0000_100f).halt());
    assert_eq!(m.harts[0].reg(A0 as usize), (0..20).sum::<u64>());
    let mut m = m;
    let left = m.code.decoded_instructions(&mut m.bus.mem);
    assert!(left >= 21, "fence.i dropped decoded code: {left} left");
}

#[test]
fn timer_interrupt_wakes_wfi_and_traps() {
    let chip = chip(1, 1);
    let clint = chip.devices.clint.base;
    let d = data_addr();
    // Build the real program with a correct handler address.
    let build = |handler: u64| {
        Prog::new()
            .li(S0, d)
            .li(S1, clint + 0x4000)
            .li(T0, handler)
            .i(asm::csrrw(0, u32::from(c::MTVEC), T0))
            .i(asm::csrrs(A0, u32::from(c::TIME), 0))
            .i(asm::addi(A0, A0, 100))
            .i(asm::sd(A0, S1, 0))
            .li(T0, c::MIP_MTIP)
            .i(asm::csrrw(0, u32::from(c::MIE), T0))
            .i(0x3004_6073) // csrsi mstatus, 8 (MIE)
            .i(asm::WFI)
            .i(asm::csrrs(A3, u32::from(c::TIME), 0))
            .halt()
    };
    let main_len = build(0).bytes.len() as u64;
    let handler = ddr_base() + main_len;
    let prog = build(handler)
        .i(asm::csrrs(T0, u32::from(c::MCAUSE), 0))
        .i(asm::sd(T0, S0, 0))
        .i(asm::csrrs(T0, u32::from(c::TIME), 0))
        .i(asm::sd(T0, S0, 8))
        .i(asm::addi(T0, 0, -1))
        .i(asm::sd(T0, S1, 0))
        .i(asm::MRET);
    let mut m = run1(prog);
    let cause = read_u64(&mut m, d);
    assert_eq!(cause, c::MCAUSE_INTERRUPT | c::IRQ_MTI);
    let fired_at = read_u64(&mut m, d + 8);
    let deadline = m.harts[0].reg(A0 as usize);
    assert!(fired_at >= deadline, "timer fired at {fired_at} before deadline {deadline}");
    assert!(fired_at < deadline + 10, "timer fired late: {fired_at} vs {deadline}");
    assert_eq!(m.harts[0].interrupts_taken, 1);
    assert!(m.harts[0].idle_cycles > 500, "the hart slept in wfi");
}

#[test]
fn ipi_wakes_wfi_without_trap_when_mie_clear() {
    // Hart 1 sleeps in wfi with MSIE enabled but mstatus.MIE clear; hart 0
    // raises its msip. Hart 1 must resume after wfi (no trap) and record it.
    let chip = chip(1, 2);
    let msip1 = chip.devices.clint.base + 4;
    let d = data_addr();
    let prog = Prog::new()
        .li(S0, d)
        .li(S1, msip1)
        .i(asm::b(0, A0, 0, 32)) // hart 0 -> +32 (sender)
        // hart 1 (8 instructions):
        .i(asm::addi(T0, 0, 8)) // MSIE
        .i(asm::csrrw(0, u32::from(c::MIE), T0))
        .i(asm::WFI)
        .i(asm::csrrs(T1, u32::from(c::MIP), 0))
        .i(asm::sd(T1, S0, 0)) // record mip
        .i(asm::sw(0, S1, 0)) // clear own msip
        .i(asm::addi(T2, 0, 1))
        .i(asm::sd(T2, S0, 8)) // woke = 1
        // hart 0 (sender): spin ~2000 cycles, then msip[1] = 1
        .i(asm::addi(T0, 0, 1000))
        .i(asm::addi(T0, T0, -1))
        .i(asm::b(1, T0, 0, -4))
        .i(asm::addi(T1, 0, 1))
        .i(asm::sw(T1, S1, 0))
        .halt();
    let mut m = machine_on(&prog, 1, 2);
    // Hart 1 falls through into the sender code afterwards and keeps
    // raising its own msip, so the run is bounded by time.
    m.config.max_cycles = Some(20_000);
    m.run();
    assert_eq!(read_u64(&mut m, d + 8), 1, "hart 1 woke up");
    assert_eq!(read_u64(&mut m, d) & c::MIP_MSIP, c::MIP_MSIP);
    assert_eq!(m.harts[1].interrupts_taken, 0, "no trap with mstatus.MIE clear");
    assert!(m.harts[1].idle_cycles > 1000, "hart 1 slept while hart 0 spun");
}

#[test]
fn fault_without_trap_vector_is_fatal_with_report() {
    let mut m = machine_on(&Prog::new().i(asm::addi(A0, 0, 7)).i(0), 1, 1);
    let out = m.run();
    match &out {
        Outcome::Fatal { hart: 0, message } => assert!(message.contains("no trap vector"), "{message}"),
        o => panic!("unexpected outcome {o:?}"),
    }
    let report = m.fault_report(0, "test");
    assert!(report.contains("illegal instruction"), "{report}");
    assert!(report.contains("<illegal 0x0000>"), "{report}");
    assert!(report.contains("a0 0x0000000000000007"), "{report}");
}

#[test]
fn runs_are_deterministic() {
    let d = data_addr();
    let amoadd = asm::r(AMO, 0, 3, S0, T1, 0);
    let prog = Prog::new()
        .li(S0, d)
        .i(asm::addi(T0, 0, 300))
        .i(asm::addi(T1, 0, 1))
        .i(amoadd)
        .i(asm::addi(T0, T0, -1))
        .i(asm::b(1, T0, 0, -8))
        .halt();
    let run = || {
        let mut m = machine_on(&prog, 5, 16);
        let o = m.run();
        serde_json::to_string(&m.stats(&o).without_host_time()).unwrap()
    };
    assert_eq!(run(), run());
}

const A6: u32 = 16;
const A7: u32 = 17;
const LOAD: u32 = 0b0000011;
const STORE: u32 = 0b0100011;

/// Runs `prog` on two one-hart machines in lockstep: `fast` on the normal
/// path (straight-line bodies; with `jit`, every body compiled to host code
/// after its first run) and `slow` one instruction at a time (`debug`).
/// Irregular time limits make runs stop at every position inside bodies;
/// after each stop the two must agree exactly on the stop reason, pc,
/// cycle, retired instructions and registers.
fn lockstep(prog: &Prog, jit: bool) -> (dpu_sim::Machine, dpu_sim::Machine) {
    let mut fast = machine_on(prog, 1, 1);
    let mut slow = machine_on(prog, 1, 1);
    fast.code.jit = None;
    if jit {
        let costs = dpu_sim::cpu::CoreCosts::from_chip(&chip(1, 1));
        let mut j = dpu_sim::cpu::jit::Jit::new(costs, 1).expect("Cranelift supports this host");
        j.max_wait = 1;
        fast.code.jit = Some(Box::new(j));
    }
    slow.harts[0].debug = true;
    let mut until = 0u64;
    let mut step = 1u64;
    let mut stops = 0;
    loop {
        step = (step * 7 + 3) % 23 + 1;
        until += step;
        let a = fast.harts[0].run(&mut fast.bus, &mut fast.code, until);
        let b = slow.harts[0].run(&mut slow.bus, &mut slow.code, until);
        let (hf, hs) = (&fast.harts[0], &slow.harts[0]);
        assert_eq!(a, b, "stop reason at until={until}");
        assert_eq!(
            (hf.pc, hf.cycle, hf.instret, hf.regs()),
            (hs.pc, hs.cycle, hs.instret, hs.regs()),
            "state at until={until}"
        );
        stops += 1;
        if a == dpu_sim::cpu::Stop::Wfi {
            break;
        }
        assert!(stops < 1_000_000, "program should reach its wfi");
    }
    if jit {
        let stats = fast.code.jit.as_ref().unwrap().stats;
        assert!(stats.bodies > 0 && stats.failed == 0, "bodies were compiled: {stats:?}");
    }
    (fast, slow)
}

/// A loop with a trap inside a body, compressed instructions, and a
/// straight run longer than one body that crosses a page end.
fn bodies_program() -> (Prog, u64) {
    // The trap handler records at data_addr()..+32; the loop's data follows.
    let d = data_addr() + 64;
    let c_addi_a0_1: u16 = 0x0505; // c.addi a0, 1
    let mut body = Prog::new()
        .li(S1, d)
        .i(asm::addi(T2, 0, 40)); // loop counter
    let top = body.here();
    body = body
        .i(asm::ld(A0, S1, 0))
        .c(c_addi_a0_1)
        .c(0x0001) // c.nop (keeps the handler 4-byte aligned)
        .i(r(0, 1, A1, A0, A0)) // mul a1, a0, a0
        .i(asm::sd(A1, S1, 8))
        .i(asm::sw(A0, S1, 0))
        .i(asm::ld(A2, ZERO, 0x100)) // access fault: the handler skips it
        .i(r(4, 1, A3, A1, A0)) // div a3, a1, a0
        .i(asm::auipc(A4, 0))
        .i(asm::addi(T2, T2, -1));
    let back = top - body.here();
    body = body.i(asm::b(1, T2, ZERO, back)); // bne t2, zero, top
    // A long straight run: more than one 64-instruction body, across the
    // end of the first 4 KiB page.
    for k in 0..1100 {
        body = body.i(asm::addi(A5, A5, k % 7));
    }
    let prog = with_handler(body);
    assert!(prog.bytes.len() > 4096 + 64);
    (prog, d)
}

/// The executor runs straight-line bodies (a basic block as one unit) on
/// the fast path and one instruction at a time when hooks are on (`debug`).
/// Both must agree exactly at every stop, including stops inside a body at
/// the time limit, traps inside a body, compressed instructions, bodies cut
/// at the 64-instruction limit and at a page end.
#[test]
fn straight_line_bodies_match_single_stepping_at_every_stop() {
    let (prog, d) = bodies_program();
    let (mut fast, mut slow) = lockstep(&prog, false);
    assert_eq!(read_u64(&mut fast, data_addr() + 24), 40, "one trap per iteration");
    assert_eq!(read_u64(&mut fast, d + 8), read_u64(&mut slow, d + 8));
    assert_eq!(fast.harts[0].reg(A5 as usize), (0..1100u64).map(|k| k % 7).sum::<u64>());
}

/// The same with every body compiled to host code (Cranelift).
#[test]
fn compiled_bodies_match_single_stepping_at_every_stop() {
    let (prog, d) = bodies_program();
    let (mut fast, mut slow) = lockstep(&prog, true);
    assert_eq!(read_u64(&mut fast, data_addr() + 24), 40, "one trap per iteration");
    assert_eq!(read_u64(&mut fast, d + 8), read_u64(&mut slow, d + 8));
}

/// Every instruction the compiler emits inline (ALU, word ops, multiply,
/// loads and stores of each width, every branch kind) and the ones it
/// hands back to the interpreter (division, `mulhsu`), on values that
/// change every iteration: compiled and single-stepped runs agree at every
/// stop and leave the same memory.
#[test]
fn compiled_alu_memory_and_branches_match_single_stepping() {
    let d = data_addr() + 64;
    let (opi, opiw) = (OPI, OPIW);
    // s0 points 3 bytes before a page end: accesses there cross pages.
    let cross = data_addr() + 0x2000 - 3;
    let mut p = Prog::new()
        .li(S1, d)
        .li(S0, cross)
        .li(A0, 0x9e37_79b9_7f4a_7c15)
        .i(asm::addi(T2, 0, 300));
    let top = p.here();
    p = p
        // xorshift state in a0
        .i(asm::i(opi, T0, 1, A0, 13))
        .i(r(4, 0, A0, A0, T0))
        .i(asm::i(opi, T0, 5, A0, 7))
        .i(r(4, 0, A0, A0, T0))
        .i(asm::i(opi, T0, 1, A0, 17))
        .i(r(4, 0, A0, A0, T0))
        // register-register
        .i(r(0, 0, A1, A0, T2)) // add
        .i(r(0, 0x20, A2, A1, A0)) // sub
        .i(r(1, 0, A3, A0, A1)) // sll
        .i(r(2, 0, A4, A0, A1)) // slt
        .i(r(3, 0, A5, A0, A1)) // sltu
        .i(r(5, 0, A6, A0, A1)) // srl
        .i(r(5, 0x20, A7, A0, A1)) // sra
        .i(r(6, 0, T0, A3, A6)) // or
        .i(r(7, 0, T1, A3, A7)) // and
        .i(rw(0, 0, A1, A0, T2)) // addw
        .i(rw(0, 0x20, A2, A0, A1)) // subw
        .i(rw(1, 0, A3, A0, A1)) // sllw
        .i(rw(5, 0, A4, A0, A1)) // srlw
        .i(rw(5, 0x20, A5, A0, A1)) // sraw
        .i(rw(0, 1, A6, A0, A1)) // mulw
        .i(r(1, 1, A7, A0, A1)) // mulh
        .i(r(3, 1, T0, A0, A7)) // mulhu
        .i(r(2, 1, T1, A0, A1)) // mulhsu (interpreter)
        .i(r(4, 1, A2, A0, T2)) // div (interpreter)
        .i(r(7, 1, A3, A0, A4)) // remu, divisor may be 0
        // immediates
        .i(asm::i(opi, A4, 2, A0, -5)) // slti
        .i(asm::i(opi, A5, 3, A0, -5)) // sltiu (sign-extended immediate)
        .i(asm::i(opi, A6, 4, A0, -1)) // xori (not)
        .i(asm::i(opi, A7, 6, A0, 0x7ff)) // ori
        .i(asm::i(opi, T0, 7, A0, -16)) // andi
        .i(asm::i(opi, T1, 5, A0, 0x400 | 3)) // srai
        .i(asm::i(opiw, A1, 0, A0, -2048)) // addiw
        .i(asm::i(opiw, A2, 1, A0, 31)) // slliw
        .i(asm::i(opiw, A3, 5, A0, 31)) // srliw
        .i(asm::i(opiw, A4, 5, A0, 0x400 | 31)) // sraiw
        .i(asm::lui(A5, 0x8000_0000))
        .i(asm::auipc(A6, 0x1000))
        // stores and loads of every width, misaligned ones too
        .i(asm::s(STORE, 3, S1, A0, 0)) // sd
        .i(asm::s(STORE, 2, S1, A1, 9)) // sw (misaligned)
        .i(asm::s(STORE, 1, S1, A2, 12)) // sh
        .i(asm::s(STORE, 0, S1, A3, 14)) // sb
        .i(asm::i(LOAD, A4, 0, S1, 0)) // lb
        .i(asm::i(LOAD, A5, 1, S1, 3)) // lh (misaligned)
        .i(asm::i(LOAD, A6, 2, S1, 4)) // lw
        .i(asm::i(LOAD, A7, 4, S1, 1)) // lbu
        .i(asm::i(LOAD, T0, 5, S1, 6)) // lhu
        .i(asm::i(LOAD, T1, 6, S1, 8)) // lwu
        .i(asm::i(LOAD, A1, 3, S1, 5)) // ld (misaligned)
        .i(asm::s(STORE, 3, S0, A0, 0)) // sd across the page end
        .i(asm::s(STORE, 2, S0, A7, 1)) // sw across the page end
        .i(asm::i(LOAD, A2, 3, S0, 0)) // ld across the page end
        .i(asm::i(LOAD, A3, 2, S0, 1)); // lw across the page end
    // Branches of every kind, each skipping one increment of t1.
    for f3 in [4u32, 7, 5, 6, 0, 1] {
        p = p.i(asm::b(f3, A0, A1, 8)).i(asm::addi(T1, T1, 1 + f3 as i32));
    }
    p = p.i(asm::addi(T2, T2, -1));
    let back = top - p.here();
    p = p.i(asm::b(1, T2, ZERO, back)).halt();
    let (mut fast, mut slow) = lockstep(&p, true);
    for at in [d, d + 8, d + 16, cross] {
        assert_eq!(read_u64(&mut fast, at), read_u64(&mut slow, at), "memory at {at:#x}");
    }
}
