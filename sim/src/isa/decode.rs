//! Instruction decoder: 32-bit base encodings (RISC-V unprivileged spec v20191213
//! ch. 2, 5, 7, 8, 9, 24) and the 16-bit C extension (ch. 16), which expands to
//! the same [`Op`]s with `len = 2`.
//!
//! Writes to `x0` are decoded with `rd = SINK` (register 32, never read), so
//! the executor needs no `rd != 0` checks; disassembly prints it as `zero`.

/// Register index that absorbs writes to `x0`.
pub const SINK: u8 = 32;

/// Operation kinds. Names follow the base mnemonics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[rustfmt::skip]
pub enum Kind {
    /// Slot not decoded yet (decoded-instruction cache).
    NotDecoded,
    /// Illegal instruction; `imm` holds the raw bits (for `mtval`).
    Illegal,
    Lui, Auipc, Jal, Jalr,
    Beq, Bne, Blt, Bge, Bltu, Bgeu,
    Lb, Lh, Lw, Ld, Lbu, Lhu, Lwu,
    Sb, Sh, Sw, Sd,
    Addi, Slti, Sltiu, Xori, Ori, Andi, Slli, Srli, Srai,
    Add, Sub, Sll, Slt, Sltu, Xor, Srl, Sra, Or, And,
    Addiw, Slliw, Srliw, Sraiw,
    Addw, Subw, Sllw, Srlw, Sraw,
    Fence, FenceI, Ecall, Ebreak, Mret, Wfi,
    Mul, Mulh, Mulhsu, Mulhu, Div, Divu, Rem, Remu,
    Mulw, Divw, Divuw, Remw, Remuw,
    LrW, ScW, AmoswapW, AmoaddW, AmoxorW, AmoandW, AmoorW, AmominW, AmomaxW, AmominuW, AmomaxuW,
    LrD, ScD, AmoswapD, AmoaddD, AmoxorD, AmoandD, AmoorD, AmominD, AmomaxD, AmominuD, AmomaxuD,
    Csrrw, Csrrs, Csrrc, Csrrwi, Csrrsi, Csrrci,
}

/// A decoded instruction.
///
/// * `imm`: immediate (sign-extended), CSR number for CSR ops, `aq/rl` bits
///   for atomics, raw bits for `Illegal`.
/// * For `Csrr*i`, `rs1` holds the 5-bit unsigned immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub kind: Kind,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    /// Instruction length in bytes (2 or 4).
    pub len: u8,
    pub imm: i32,
}

impl Op {
    /// The empty decoded-cache slot.
    pub const NOT_DECODED: Op = Op { kind: Kind::NotDecoded, rd: 0, rs1: 0, rs2: 0, len: 0, imm: 0 };

    fn new(kind: Kind, rd: u32, rs1: u32, rs2: u32, imm: i32, len: u8) -> Op {
        let rd = if rd == 0 { SINK } else { rd as u8 };
        Op { kind, rd, rs1: rs1 as u8, rs2: rs2 as u8, len, imm }
    }

    fn illegal(bits: u32, len: u8) -> Op {
        Op { kind: Kind::Illegal, rd: 0, rs1: 0, rs2: 0, len, imm: bits as i32 }
    }
}

/// Length in bytes of the instruction whose low halfword is `lo`.
/// Encodings longer than 32 bits are not supported (decoded as illegal).
pub fn insn_len(lo: u16) -> u8 {
    if lo & 3 == 3 {
        4
    } else {
        2
    }
}

/// Decodes one instruction. `bits` holds 16 or 32 bits; the low two bits
/// select the length (`0b11` = 32-bit).
pub fn decode(bits: u32) -> Op {
    if bits & 3 == 3 {
        decode32(bits)
    } else {
        decode16(bits as u16)
    }
}

#[inline]
fn field(bits: u32, lo: u32, width: u32) -> u32 {
    (bits >> lo) & ((1 << width) - 1)
}

fn imm_i(b: u32) -> i32 {
    (b as i32) >> 20
}
fn imm_s(b: u32) -> i32 {
    (((b as i32) >> 25) << 5) | field(b, 7, 5) as i32
}
fn imm_b(b: u32) -> i32 {
    (((b as i32) >> 31) << 12)
        | (field(b, 7, 1) << 11) as i32
        | (field(b, 25, 6) << 5) as i32
        | (field(b, 8, 4) << 1) as i32
}
fn imm_u(b: u32) -> i32 {
    (b & 0xffff_f000) as i32
}
fn imm_j(b: u32) -> i32 {
    (((b as i32) >> 31) << 20)
        | (field(b, 12, 8) << 12) as i32
        | (field(b, 20, 1) << 11) as i32
        | (field(b, 21, 10) << 1) as i32
}

fn decode32(b: u32) -> Op {
    use Kind::*;
    let rd = field(b, 7, 5);
    let rs1 = field(b, 15, 5);
    let rs2 = field(b, 20, 5);
    let f3 = field(b, 12, 3);
    let f7 = field(b, 25, 7);
    let op = |k: Kind, imm: i32| Op::new(k, rd, rs1, rs2, imm, 4);
    let bad = Op::illegal(b, 4);
    match field(b, 0, 7) {
        0b0110111 => op(Lui, imm_u(b)),
        0b0010111 => op(Auipc, imm_u(b)),
        0b1101111 => op(Jal, imm_j(b)),
        0b1100111 if f3 == 0 => op(Jalr, imm_i(b)),
        0b1100011 => {
            let k = match f3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return bad,
            };
            Op { kind: k, rd: 0, rs1: rs1 as u8, rs2: rs2 as u8, len: 4, imm: imm_b(b) }
        }
        0b0000011 => {
            let k = match f3 {
                0 => Lb,
                1 => Lh,
                2 => Lw,
                3 => Ld,
                4 => Lbu,
                5 => Lhu,
                6 => Lwu,
                _ => return bad,
            };
            op(k, imm_i(b))
        }
        0b0100011 => {
            let k = match f3 {
                0 => Sb,
                1 => Sh,
                2 => Sw,
                3 => Sd,
                _ => return bad,
            };
            Op { kind: k, rd: 0, rs1: rs1 as u8, rs2: rs2 as u8, len: 4, imm: imm_s(b) }
        }
        0b0010011 => {
            let imm = imm_i(b);
            let f6 = field(b, 26, 6);
            let shamt = field(b, 20, 6) as i32;
            match f3 {
                0 => op(Addi, imm),
                2 => op(Slti, imm),
                3 => op(Sltiu, imm),
                4 => op(Xori, imm),
                6 => op(Ori, imm),
                7 => op(Andi, imm),
                1 if f6 == 0 => op(Slli, shamt),
                5 if f6 == 0 => op(Srli, shamt),
                5 if f6 == 0b010000 => op(Srai, shamt),
                _ => bad,
            }
        }
        0b0011011 => {
            let shamt = field(b, 20, 5) as i32;
            match (f3, f7) {
                (0, _) => op(Addiw, imm_i(b)),
                (1, 0) => op(Slliw, shamt),
                (5, 0) => op(Srliw, shamt),
                (5, 0b0100000) => op(Sraiw, shamt),
                _ => bad,
            }
        }
        0b0110011 => {
            let k = match (f7, f3) {
                (0, 0) => Add,
                (0b0100000, 0) => Sub,
                (0, 1) => Sll,
                (0, 2) => Slt,
                (0, 3) => Sltu,
                (0, 4) => Xor,
                (0, 5) => Srl,
                (0b0100000, 5) => Sra,
                (0, 6) => Or,
                (0, 7) => And,
                (1, 0) => Mul,
                (1, 1) => Mulh,
                (1, 2) => Mulhsu,
                (1, 3) => Mulhu,
                (1, 4) => Div,
                (1, 5) => Divu,
                (1, 6) => Rem,
                (1, 7) => Remu,
                _ => return bad,
            };
            op(k, 0)
        }
        0b0111011 => {
            let k = match (f7, f3) {
                (0, 0) => Addw,
                (0b0100000, 0) => Subw,
                (0, 1) => Sllw,
                (0, 5) => Srlw,
                (0b0100000, 5) => Sraw,
                (1, 0) => Mulw,
                (1, 4) => Divw,
                (1, 5) => Divuw,
                (1, 6) => Remw,
                (1, 7) => Remuw,
                _ => return bad,
            };
            op(k, 0)
        }
        0b0001111 => match f3 {
            0 => Op { kind: Fence, rd: 0, rs1: 0, rs2: 0, len: 4, imm: field(b, 20, 12) as i32 },
            1 => Op { kind: FenceI, rd: 0, rs1: 0, rs2: 0, len: 4, imm: 0 },
            _ => bad,
        },
        0b1110011 => {
            let csr = field(b, 20, 12) as i32;
            match f3 {
                0 => match b {
                    0x0000_0073 => op(Ecall, 0),
                    0x0010_0073 => op(Ebreak, 0),
                    0x3020_0073 => op(Mret, 0),
                    0x1050_0073 => op(Wfi, 0),
                    _ => bad,
                },
                1 => op(Csrrw, csr),
                2 => op(Csrrs, csr),
                3 => op(Csrrc, csr),
                5 => op(Csrrwi, csr),
                6 => op(Csrrsi, csr),
                7 => op(Csrrci, csr),
                _ => bad,
            }
        }
        0b0101111 => {
            let aqrl = field(b, 25, 2) as i32;
            let f5 = field(b, 27, 5);
            let k = match (f3, f5) {
                (2, 0b00010) if rs2 == 0 => LrW,
                (2, 0b00011) => ScW,
                (2, 0b00001) => AmoswapW,
                (2, 0b00000) => AmoaddW,
                (2, 0b00100) => AmoxorW,
                (2, 0b01100) => AmoandW,
                (2, 0b01000) => AmoorW,
                (2, 0b10000) => AmominW,
                (2, 0b10100) => AmomaxW,
                (2, 0b11000) => AmominuW,
                (2, 0b11100) => AmomaxuW,
                (3, 0b00010) if rs2 == 0 => LrD,
                (3, 0b00011) => ScD,
                (3, 0b00001) => AmoswapD,
                (3, 0b00000) => AmoaddD,
                (3, 0b00100) => AmoxorD,
                (3, 0b01100) => AmoandD,
                (3, 0b01000) => AmoorD,
                (3, 0b10000) => AmominD,
                (3, 0b10100) => AmomaxD,
                (3, 0b11000) => AmominuD,
                (3, 0b11100) => AmomaxuD,
                _ => return bad,
            };
            op(k, aqrl)
        }
        _ => bad,
    }
}

/// Expands a compressed instruction (unprivileged spec ch. 16, RV64C).
/// Reserved encodings and the F/D forms (no FPU here) decode as illegal.
fn decode16(h: u16) -> Op {
    use Kind::*;
    let b = u32::from(h);
    let bad = Op::illegal(b, 2);
    if h == 0 {
        // The all-zero halfword is defined to be illegal (§16.5).
        return bad;
    }
    let f3 = field(b, 13, 3);
    let rd = field(b, 7, 5); // also rs1 in CI/CR
    let rs2 = field(b, 2, 5);
    let rdp = field(b, 2, 3) + 8; // rd' / rs2'
    let rs1p = field(b, 7, 3) + 8; // rs1' / rd'
    let c = |k: Kind, rd: u32, rs1: u32, rs2: u32, imm: i32| Op::new(k, rd, rs1, rs2, imm, 2);
    // CI-format 6-bit signed immediate: imm[5] = b[12], imm[4:0] = b[6:2].
    let imm6 = ((((b >> 12) & 1) << 5 | field(b, 2, 5)) as i32) << 26 >> 26;
    let shamt6 = (((b >> 12) & 1) << 5 | field(b, 2, 5)) as i32;
    match (b & 3, f3) {
        // ---------------------------------------------------------- quadrant 0
        (0, 0b000) => {
            // C.ADDI4SPN: nzuimm[5:4|9:6|2|3] = b[12:11|10:7|6|5]
            let imm = field(b, 11, 2) << 4 | field(b, 7, 4) << 6 | field(b, 6, 1) << 2 | field(b, 5, 1) << 3;
            if imm == 0 {
                return bad;
            }
            c(Addi, rdp, 2, 0, imm as i32)
        }
        (0, 0b010) => {
            // C.LW: uimm[5:3] = b[12:10], uimm[2|6] = b[6|5]
            let imm = field(b, 10, 3) << 3 | field(b, 6, 1) << 2 | field(b, 5, 1) << 6;
            c(Lw, rdp, rs1p, 0, imm as i32)
        }
        (0, 0b011) => {
            // C.LD: uimm[5:3] = b[12:10], uimm[7:6] = b[6:5]
            let imm = field(b, 10, 3) << 3 | field(b, 5, 2) << 6;
            c(Ld, rdp, rs1p, 0, imm as i32)
        }
        (0, 0b110) => {
            let imm = field(b, 10, 3) << 3 | field(b, 6, 1) << 2 | field(b, 5, 1) << 6;
            Op { kind: Sw, rd: 0, rs1: rs1p as u8, rs2: rdp as u8, len: 2, imm: imm as i32 }
        }
        (0, 0b111) => {
            let imm = field(b, 10, 3) << 3 | field(b, 5, 2) << 6;
            Op { kind: Sd, rd: 0, rs1: rs1p as u8, rs2: rdp as u8, len: 2, imm: imm as i32 }
        }
        // ---------------------------------------------------------- quadrant 1
        // C.NOP / C.ADDI; the HINTs (C.NOP with nzimm != 0, C.ADDI with
        // nzimm = 0) are no-ops as decoded.
        (1, 0b000) => c(Addi, rd, rd, 0, imm6),
        (1, 0b001) => {
            if rd == 0 {
                return bad;
            }
            c(Addiw, rd, rd, 0, imm6)
        }
        (1, 0b010) => c(Addi, rd, 0, 0, imm6), // C.LI (rd = x0: HINT)
        (1, 0b011) => {
            if rd == 2 {
                // C.ADDI16SP: nzimm[9|4|6|8:7|5] = b[12|6|5|4:3|2]
                let imm = (field(b, 12, 1) << 9)
                    | (field(b, 6, 1) << 4)
                    | (field(b, 5, 1) << 6)
                    | (field(b, 3, 2) << 7)
                    | (field(b, 2, 1) << 5);
                let imm = (imm as i32) << 22 >> 22;
                if imm == 0 {
                    return bad;
                }
                c(Addi, 2, 2, 0, imm)
            } else {
                // C.LUI: nzimm[17|16:12] = b[12|6:2]. nzimm = 0 is
                // reserved; rd = x0 with nzimm != 0 is a HINT (§16.7), a
                // no-op here like every write to x0.
                if imm6 == 0 {
                    return bad;
                }
                c(Lui, rd, 0, 0, imm6 << 12)
            }
        }
        (1, 0b100) => {
            let f2 = field(b, 10, 2);
            // RV64: shamt = 0 (C.SRLI64/C.SRAI64) is a HINT, a no-op as decoded.
            match f2 {
                0b00 => c(Srli, rs1p, rs1p, 0, shamt6),
                0b01 => c(Srai, rs1p, rs1p, 0, shamt6),
                0b10 => c(Andi, rs1p, rs1p, 0, imm6),
                _ => {
                    let k = match (field(b, 12, 1), field(b, 5, 2)) {
                        (0, 0) => Sub,
                        (0, 1) => Xor,
                        (0, 2) => Or,
                        (0, 3) => And,
                        (1, 0) => Subw,
                        (1, 1) => Addw,
                        _ => return bad,
                    };
                    c(k, rs1p, rs1p, rdp, 0)
                }
            }
        }
        (1, 0b101) => {
            // C.J: offset[11|4|9:8|10|6|7|3:1|5] = b[12:2]
            let imm = (field(b, 12, 1) << 11)
                | (field(b, 11, 1) << 4)
                | (field(b, 9, 2) << 8)
                | (field(b, 8, 1) << 10)
                | (field(b, 7, 1) << 6)
                | (field(b, 6, 1) << 7)
                | (field(b, 3, 3) << 1)
                | (field(b, 2, 1) << 5);
            c(Jal, 0, 0, 0, (imm as i32) << 20 >> 20)
        }
        (1, 0b110) | (1, 0b111) => {
            // C.BEQZ/C.BNEZ: offset[8|4:3] = b[12:10], offset[7:6|2:1|5] = b[6:2]
            let imm = (field(b, 12, 1) << 8)
                | (field(b, 10, 2) << 3)
                | (field(b, 5, 2) << 6)
                | (field(b, 3, 2) << 1)
                | (field(b, 2, 1) << 5);
            let k = if f3 == 0b110 { Beq } else { Bne };
            Op { kind: k, rd: 0, rs1: rs1p as u8, rs2: 0, len: 2, imm: (imm as i32) << 23 >> 23 }
        }
        // ---------------------------------------------------------- quadrant 2
        // C.SLLI; rd = x0 or shamt = 0 (C.SLLI64) are HINTs, no-ops as decoded.
        (2, 0b000) => c(Slli, rd, rd, 0, shamt6),
        (2, 0b010) => {
            if rd == 0 {
                return bad;
            }
            // C.LWSP: uimm[5] = b[12], uimm[4:2|7:6] = b[6:2]
            let imm = field(b, 12, 1) << 5 | field(b, 4, 3) << 2 | field(b, 2, 2) << 6;
            c(Lw, rd, 2, 0, imm as i32)
        }
        (2, 0b011) => {
            if rd == 0 {
                return bad;
            }
            // C.LDSP: uimm[5] = b[12], uimm[4:3|8:6] = b[6:2]
            let imm = field(b, 12, 1) << 5 | field(b, 5, 2) << 3 | field(b, 2, 3) << 6;
            c(Ld, rd, 2, 0, imm as i32)
        }
        (2, 0b100) => {
            let bit12 = field(b, 12, 1);
            match (bit12, rd, rs2) {
                (0, 0, 0) => bad,
                (0, _, 0) => c(Jalr, 0, rd, 0, 0),       // C.JR
                (0, _, _) => c(Add, rd, 0, rs2, 0),      // C.MV (rd = x0: HINT)
                (1, 0, 0) => c(Ebreak, 0, 0, 0, 0),      // C.EBREAK
                (1, _, 0) => c(Jalr, 1, rd, 0, 0),       // C.JALR
                _ => c(Add, rd, rd, rs2, 0),             // C.ADD (rd = x0: HINT)
            }
        }
        (2, 0b110) => {
            // C.SWSP: uimm[5:2|7:6] = b[12:9|8:7]
            let imm = field(b, 9, 4) << 2 | field(b, 7, 2) << 6;
            Op { kind: Sw, rd: 0, rs1: 2, rs2: rs2 as u8, len: 2, imm: imm as i32 }
        }
        (2, 0b111) => {
            // C.SDSP: uimm[5:3|8:6] = b[12:10|9:7]
            let imm = field(b, 10, 3) << 3 | field(b, 7, 3) << 6;
            Op { kind: Sd, rd: 0, rs1: 2, rs2: rs2 as u8, len: 2, imm: imm as i32 }
        }
        _ => bad,
    }
}
