//! Disassembler over decoded [`Op`]s (same decoder as the executor).
//! Output follows the GNU/LLVM assembler syntax with ABI register names.

use super::decode::{Kind, Op};
use super::reg_name;
use dpu_hal::regs::csr;

/// Mnemonic of a kind.
pub fn mnemonic(k: Kind) -> &'static str {
    use Kind::*;
    match k {
        NotDecoded => "<not-decoded>",
        Illegal => "<illegal>",
        Lui => "lui",
        Auipc => "auipc",
        Jal => "jal",
        Jalr => "jalr",
        Beq => "beq",
        Bne => "bne",
        Blt => "blt",
        Bge => "bge",
        Bltu => "bltu",
        Bgeu => "bgeu",
        Lb => "lb",
        Lh => "lh",
        Lw => "lw",
        Ld => "ld",
        Lbu => "lbu",
        Lhu => "lhu",
        Lwu => "lwu",
        Sb => "sb",
        Sh => "sh",
        Sw => "sw",
        Sd => "sd",
        Addi => "addi",
        Slti => "slti",
        Sltiu => "sltiu",
        Xori => "xori",
        Ori => "ori",
        Andi => "andi",
        Slli => "slli",
        Srli => "srli",
        Srai => "srai",
        Add => "add",
        Sub => "sub",
        Sll => "sll",
        Slt => "slt",
        Sltu => "sltu",
        Xor => "xor",
        Srl => "srl",
        Sra => "sra",
        Or => "or",
        And => "and",
        Addiw => "addiw",
        Slliw => "slliw",
        Srliw => "srliw",
        Sraiw => "sraiw",
        Addw => "addw",
        Subw => "subw",
        Sllw => "sllw",
        Srlw => "srlw",
        Sraw => "sraw",
        Fence => "fence",
        FenceI => "fence.i",
        Ecall => "ecall",
        Ebreak => "ebreak",
        Mret => "mret",
        Wfi => "wfi",
        Mul => "mul",
        Mulh => "mulh",
        Mulhsu => "mulhsu",
        Mulhu => "mulhu",
        Div => "div",
        Divu => "divu",
        Rem => "rem",
        Remu => "remu",
        Mulw => "mulw",
        Divw => "divw",
        Divuw => "divuw",
        Remw => "remw",
        Remuw => "remuw",
        LrW => "lr.w",
        ScW => "sc.w",
        AmoswapW => "amoswap.w",
        AmoaddW => "amoadd.w",
        AmoxorW => "amoxor.w",
        AmoandW => "amoand.w",
        AmoorW => "amoor.w",
        AmominW => "amomin.w",
        AmomaxW => "amomax.w",
        AmominuW => "amominu.w",
        AmomaxuW => "amomaxu.w",
        LrD => "lr.d",
        ScD => "sc.d",
        AmoswapD => "amoswap.d",
        AmoaddD => "amoadd.d",
        AmoxorD => "amoxor.d",
        AmoandD => "amoand.d",
        AmoorD => "amoor.d",
        AmominD => "amomin.d",
        AmomaxD => "amomax.d",
        AmominuD => "amominu.d",
        AmomaxuD => "amomaxu.d",
        Csrrw => "csrrw",
        Csrrs => "csrrs",
        Csrrc => "csrrc",
        Csrrwi => "csrrwi",
        Csrrsi => "csrrsi",
        Csrrci => "csrrci",
    }
}

/// Name of a CSR number, or its hex value.
pub fn csr_name(n: u16) -> String {
    let s = match n {
        csr::MSTATUS => "mstatus",
        csr::MISA => "misa",
        csr::MEDELEG => "medeleg",
        csr::MIDELEG => "mideleg",
        csr::MIE => "mie",
        csr::MTVEC => "mtvec",
        csr::MCOUNTEREN => "mcounteren",
        csr::MSCRATCH => "mscratch",
        csr::MEPC => "mepc",
        csr::MCAUSE => "mcause",
        csr::MTVAL => "mtval",
        csr::MIP => "mip",
        csr::MCYCLE => "mcycle",
        csr::MINSTRET => "minstret",
        csr::CYCLE => "cycle",
        csr::TIME => "time",
        csr::INSTRET => "instret",
        csr::MVENDORID => "mvendorid",
        csr::MARCHID => "marchid",
        csr::MIMPID => "mimpid",
        csr::MHARTID => "mhartid",
        _ => return format!("{n:#x}"),
    };
    s.to_string()
}

fn fence_set(bits: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(8, 'i'), (4, 'o'), (2, 'r'), (1, 'w')] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Disassembles `op` located at `pc` (branch/jump targets are absolute).
pub fn disasm(op: &Op, pc: u64) -> String {
    use Kind::*;
    let m = mnemonic(op.kind);
    let (rd, rs1, rs2) = (reg_name(op.rd), reg_name(op.rs1), reg_name(op.rs2));
    let target = pc.wrapping_add(op.imm as i64 as u64);
    match op.kind {
        NotDecoded => m.to_string(),
        Illegal => {
            if op.len == 2 {
                format!("<illegal {:#06x}>", op.imm as u32 & 0xffff)
            } else {
                format!("<illegal {:#010x}>", op.imm as u32)
            }
        }
        Lui | Auipc => format!("{m} {rd}, {:#x}", (op.imm as u32) >> 12),
        Jal => format!("{m} {rd}, {target:#x}"),
        Jalr => format!("{m} {rd}, {}({rs1})", op.imm),
        Beq | Bne | Blt | Bge | Bltu | Bgeu => format!("{m} {rs1}, {rs2}, {target:#x}"),
        Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu => format!("{m} {rd}, {}({rs1})", op.imm),
        Sb | Sh | Sw | Sd => format!("{m} {rs2}, {}({rs1})", op.imm),
        Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw | Srliw | Sraiw => {
            format!("{m} {rd}, {rs1}, {}", op.imm)
        }
        Fence => format!("{m} {}, {}", fence_set((op.imm >> 4) & 15), fence_set(op.imm & 15)),
        FenceI | Ecall | Ebreak | Mret | Wfi => m.to_string(),
        LrW | LrD => format!("{m}{} {rd}, ({rs1})", aqrl(op.imm)),
        ScW | ScD | AmoswapW | AmoaddW | AmoxorW | AmoandW | AmoorW | AmominW | AmomaxW | AmominuW | AmomaxuW
        | AmoswapD | AmoaddD | AmoxorD | AmoandD | AmoorD | AmominD | AmomaxD | AmominuD | AmomaxuD => {
            format!("{m}{} {rd}, {rs2}, ({rs1})", aqrl(op.imm))
        }
        Csrrw | Csrrs | Csrrc => format!("{m} {rd}, {}, {rs1}", csr_name(op.imm as u16)),
        Csrrwi | Csrrsi | Csrrci => format!("{m} {rd}, {}, {}", csr_name(op.imm as u16), op.rs1),
        _ => format!("{m} {rd}, {rs1}, {rs2}"),
    }
}

fn aqrl(bits: i32) -> &'static str {
    match bits & 3 {
        0 => "",
        1 => ".rl",
        2 => ".aq",
        _ => ".aqrl",
    }
}
