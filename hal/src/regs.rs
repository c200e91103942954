//! Register layouts of the on-chip devices (offsets from each device base,
//! bit positions). Used by the firmware drivers and the simulator models.

/// Machine-mode CSR numbers and bits (RISC-V privileged spec v1.12 §2.2, §3.1).
pub mod csr {
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const MCYCLE: u16 = 0xB00;
    pub const MINSTRET: u16 = 0xB02;
    pub const CYCLE: u16 = 0xC00;
    pub const TIME: u16 = 0xC01;
    pub const INSTRET: u16 = 0xC02;
    pub const MVENDORID: u16 = 0xF11;
    pub const MARCHID: u16 = 0xF12;
    pub const MIMPID: u16 = 0xF13;
    pub const MHARTID: u16 = 0xF14;

    /// mstatus.MIE (§3.1.6.1).
    pub const MSTATUS_MIE: u64 = 1 << 3;
    /// mstatus.MPIE.
    pub const MSTATUS_MPIE: u64 = 1 << 7;
    /// mstatus.MPP (two bits).
    pub const MSTATUS_MPP: u64 = 3 << 11;

    /// mip/mie bit numbers (§3.1.9).
    pub const IRQ_MSI: u64 = 3;
    pub const IRQ_MTI: u64 = 7;
    pub const IRQ_MEI: u64 = 11;
    pub const MIP_MSIP: u64 = 1 << IRQ_MSI;
    pub const MIP_MTIP: u64 = 1 << IRQ_MTI;
    pub const MIP_MEIP: u64 = 1 << IRQ_MEI;

    /// mcause interrupt flag (bit XLEN-1).
    pub const MCAUSE_INTERRUPT: u64 = 1 << 63;

    /// Exception codes (§3.1.15, table 3.6).
    pub const EXC_INST_MISALIGNED: u64 = 0;
    pub const EXC_INST_ACCESS: u64 = 1;
    pub const EXC_ILLEGAL: u64 = 2;
    pub const EXC_BREAKPOINT: u64 = 3;
    pub const EXC_LOAD_MISALIGNED: u64 = 4;
    pub const EXC_LOAD_ACCESS: u64 = 5;
    pub const EXC_STORE_MISALIGNED: u64 = 6;
    pub const EXC_STORE_ACCESS: u64 = 7;
    pub const EXC_ECALL_M: u64 = 11;
}

/// Core-local interruptor (SiFive CLINT layout).
pub mod clint {
    /// `msip[hart]`: u32 at MSIP + 4 * hart; bit 0 raises mip.MSIP.
    pub const MSIP: u64 = 0x0000;
    /// `mtimecmp[hart]`: u64 at MTIMECMP + 8 * hart.
    pub const MTIMECMP: u64 = 0x4000;
    /// `mtime`: u64, counts at `timebase_hz`.
    pub const MTIME: u64 = 0xBFF8;
}

/// Platform-level interrupt controller (RISC-V PLIC spec 1.0.0 §3 memory map).
/// Context `h` is hart `h`'s machine mode.
pub mod plic {
    /// u32 priority per source at PRIORITY + 4 * id (0 = never interrupts).
    pub const PRIORITY: u64 = 0x0000;
    /// Pending bits, 32 sources per u32 word.
    pub const PENDING: u64 = 0x1000;
    /// Enable bits for context c at ENABLE + ENABLE_STRIDE * c.
    pub const ENABLE: u64 = 0x2000;
    pub const ENABLE_STRIDE: u64 = 0x80;
    /// Threshold of context c at CONTEXT + CONTEXT_STRIDE * c; claim/complete at +CLAIM.
    pub const CONTEXT: u64 = 0x20_0000;
    pub const CONTEXT_STRIDE: u64 = 0x1000;
    pub const THRESHOLD: u64 = 0x0;
    pub const CLAIM: u64 = 0x4;
}

/// 16550-compatible UART, byte registers.
pub mod uart {
    /// Transmit holding (write) / receive buffer (read).
    pub const THR: u64 = 0;
    pub const RBR: u64 = 0;
    /// Interrupt enable.
    pub const IER: u64 = 1;
    /// Line status.
    pub const LSR: u64 = 5;
    pub const LSR_DATA_READY: u8 = 0x01;
    pub const LSR_THR_EMPTY: u8 = 0x20;
    pub const LSR_TX_IDLE: u8 = 0x40;
}

/// Test finisher (SiFive "test" device): one u32 register at offset 0.
pub mod finisher {
    pub const REG: u64 = 0;
    /// Low 16 bits: command; high 16 bits: code.
    pub const PASS: u32 = 0x5555;
    pub const FAIL: u32 = 0x3333;
    /// Our extension: the writing hart took a fatal trap; the simulator prints
    /// a fault report from the trap it recorded and exits non-zero.
    pub const FAULT: u32 = 0x4444;
}

/// defmt trace port: DATA takes one byte of the writing hart's stream.
pub mod trace {
    pub const DATA: u64 = 0;
}

/// Mailboxes: one 16-byte slot per hart at `hart * SLOT`.
pub mod mailbox {
    pub const SLOT: u64 = 0x10;
    /// u64, write: OR the value into the target's pending doorbells.
    pub const DOORBELL: u64 = 0x0;
    /// u64, read: pending doorbells; write: clear the bits written (W1C).
    pub const PENDING: u64 = 0x8;
}
