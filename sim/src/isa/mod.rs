//! RV64IMAC + Zicsr + Zifencei instruction set: one decoder ([`decode`])
//! produces [`Op`]s that the executor, the disassembler ([`disasm`]) and the
//! tracer all use.

pub mod decode;
pub mod disasm;

pub use decode::{decode, Kind, Op, SINK};

/// ABI register names (RISC-V psABI).
pub const REG_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
];

/// Name of register `r` as the decoder stores it (the write sink prints as `zero`).
pub fn reg_name(r: u8) -> &'static str {
    REG_NAMES[(r as usize) & 31]
}

pub mod asm;
