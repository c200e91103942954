//! A tiny instruction encoder (base formats of the unprivileged spec §2.2-2.3)
//! used to build the boot-ROM stub and hand-assembled test programs.

/// R-type.
pub const fn r(opcode: u32, rd: u32, f3: u32, rs1: u32, rs2: u32, f7: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

/// I-type.
pub const fn i(opcode: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    (((imm as u32) & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

/// S-type.
pub const fn s(opcode: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | opcode
}

/// B-type (imm is the byte offset, even).
pub const fn b(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 12) & 1) << 31)
        | (((imm >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | (((imm >> 1) & 0xf) << 8)
        | (((imm >> 11) & 1) << 7)
        | 0b1100011
}

/// U-type (imm holds bits 31:12 already in place).
pub const fn u(opcode: u32, rd: u32, imm: u32) -> u32 {
    (imm & 0xffff_f000) | (rd << 7) | opcode
}

/// J-type (imm is the byte offset, even).
pub const fn j(rd: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    (((imm >> 20) & 1) << 31)
        | (((imm >> 1) & 0x3ff) << 21)
        | (((imm >> 11) & 1) << 20)
        | (((imm >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0b1101111
}

pub const fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0b0010011, rd, 0, rs1, imm)
}
pub const fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0b0000011, rd, 3, rs1, imm)
}
pub const fn sd(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s(0b0100011, 3, rs1, rs2, imm)
}
pub const fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s(0b0100011, 2, rs1, rs2, imm)
}
pub const fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0b1100111, rd, 0, rs1, imm)
}
pub const fn auipc(rd: u32, imm: u32) -> u32 {
    u(0b0010111, rd, imm)
}
pub const fn lui(rd: u32, imm: u32) -> u32 {
    u(0b0110111, rd, imm)
}
/// `csrrs rd, csr, rs1` (`csrr rd, csr` with rs1 = 0).
pub const fn csrrs(rd: u32, csr: u32, rs1: u32) -> u32 {
    (csr << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0b1110011
}
/// `csrrw rd, csr, rs1`.
pub const fn csrrw(rd: u32, csr: u32, rs1: u32) -> u32 {
    (csr << 20) | (rs1 << 15) | (1 << 12) | (rd << 7) | 0b1110011
}
pub const ECALL: u32 = 0x0000_0073;
pub const EBREAK: u32 = 0x0010_0073;
pub const MRET: u32 = 0x3020_0073;
pub const WFI: u32 = 0x1050_0073;
