//! Machine-mode CSRs, traps and interrupts (RISC-V privileged spec v1.12
//! §3.1, §3.3). Only M-mode exists: no S/U-mode CSRs, `mstatus.MPP` reads 3.

use super::{Hart, TrapRecord};
use crate::bus::Bus;
use dpu_hal::regs::csr::*;

/// `misa`: MXL = 64 and extensions A, C, I, M.
pub const MISA_VALUE: u64 = (2 << 62) | (1 << 0) | (1 << 2) | (1 << 8) | (1 << 12);
/// Interrupt-enable bits that exist (MSIE, MTIE, MEIE).
const MIE_MASK: u64 = MIP_MSIP | MIP_MTIP | MIP_MEIP;

/// Outcome of an exception, as seen by the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrapOutcome {
    /// The hart now runs its trap handler.
    Handled,
    /// The firmware cannot handle it (no trap vector, or a fault inside the
    /// exception handler): the simulator reports a fault.
    Fatal(String),
}

/// Readable name of an `mcause` value.
pub fn cause_name(cause: u64) -> String {
    if cause & MCAUSE_INTERRUPT != 0 {
        return match cause & !MCAUSE_INTERRUPT {
            IRQ_MSI => "machine software interrupt".into(),
            IRQ_MTI => "machine timer interrupt".into(),
            IRQ_MEI => "machine external interrupt".into(),
            c => format!("interrupt {c}"),
        };
    }
    match cause {
        EXC_INST_MISALIGNED => "instruction address misaligned",
        EXC_INST_ACCESS => "instruction access fault",
        EXC_ILLEGAL => "illegal instruction",
        EXC_BREAKPOINT => "breakpoint",
        EXC_LOAD_MISALIGNED => "load address misaligned",
        EXC_LOAD_ACCESS => "load access fault",
        EXC_STORE_MISALIGNED => "store/AMO address misaligned",
        EXC_STORE_ACCESS => "store/AMO access fault",
        EXC_ECALL_M => "environment call from M-mode",
        _ => return format!("exception {cause}"),
    }
    .into()
}

impl Hart {
    /// Reads CSR `n`; `None` if it does not exist (illegal instruction).
    pub fn csr_read(&self, bus: &Bus, n: u16) -> Option<u64> {
        Some(match n {
            MSTATUS => self.mstatus,
            MISA => MISA_VALUE,
            MIE => self.mie,
            MIP => bus.lines[self.id as usize],
            MTVEC => self.mtvec,
            MSCRATCH => self.mscratch,
            MEPC => self.mepc,
            MCAUSE => self.mcause,
            MTVAL => self.mtval,
            MCYCLE | CYCLE => self.cycle.wrapping_add(self.mcycle_offset),
            MINSTRET | INSTRET => self.instret.wrapping_add(self.minstret_offset),
            TIME => bus.clint.mtime(self.cycle),
            MVENDORID | MARCHID | MIMPID => 0,
            MHARTID => u64::from(self.id),
            0xF15 => 0, // mconfigptr
            _ => return None,
        })
    }

    /// Writes CSR `n` (WARL fields legalized); `false` if it does not exist
    /// or is read-only (illegal instruction, §2.1).
    pub fn csr_write(&mut self, n: u16, v: u64) -> bool {
        if n >> 10 == 3 {
            return false; // read-only space
        }
        match n {
            MSTATUS => {
                // Only MIE and MPIE are writable; MPP is hard-wired to M.
                self.mstatus = (v & (MSTATUS_MIE | MSTATUS_MPIE)) | MSTATUS_MPP;
            }
            MISA => {} // WARL, not writable
            MIE => self.mie = v & MIE_MASK,
            MIP => {} // MSIP/MTIP/MEIP are driven by devices in M-only systems
            MTVEC => {
                // Modes 0 (direct) and 1 (vectored); reserved modes read as direct.
                let mode = if v & 3 == 1 { 1 } else { 0 };
                self.mtvec = (v & !3) | mode;
            }
            MSCRATCH => self.mscratch = v,
            MEPC => self.mepc = v & !1, // IALIGN = 16
            MCAUSE => self.mcause = v,
            MTVAL => self.mtval = v,
            MCYCLE => self.mcycle_offset = v.wrapping_sub(self.cycle),
            MINSTRET => self.minstret_offset = v.wrapping_sub(self.instret + 1),
            _ => return false,
        }
        true
    }

    /// Enters the trap handler (§3.1.6.1, §3.1.7).
    fn enter_trap(&mut self, cause: u64, tval: u64) {
        self.mepc = self.pc;
        self.mcause = cause;
        self.mtval = tval;
        let mie = self.mstatus & MSTATUS_MIE != 0;
        self.mstatus = MSTATUS_MPP | if mie { MSTATUS_MPIE } else { 0 };
        let base = self.mtvec & !3;
        self.pc = if self.mtvec & 1 == 1 && cause & MCAUSE_INTERRUPT != 0 {
            base + 4 * (cause & !MCAUSE_INTERRUPT)
        } else {
            base
        };
        self.cycle += self.costs.trap;
        self.traps_taken += 1;
        if let Some(p) = self.profile.as_mut() {
            p.call(self.pc);
        }
    }

    /// Takes a synchronous exception at the current pc.
    pub fn take_exception(&mut self, bus: &mut Bus, cause: u64, tval: u64) -> TrapOutcome {
        let mut insn = None;
        let mut lo = [0u8; 4];
        if bus.mem.read_bytes(self.pc, &mut lo[..2]).is_some() {
            let half = u16::from_le_bytes([lo[0], lo[1]]);
            let bits = if half & 3 == 3 && bus.mem.read_bytes(self.pc + 2, &mut lo[2..]).is_some() {
                u32::from_le_bytes(lo)
            } else {
                u32::from(half)
            };
            insn = Some((bits, crate::isa::decode(bits)));
        }
        let record = TrapRecord { pc: self.pc, cause, tval, cycle: self.cycle, regs: self.regs(), insn };
        let vector = self.mtvec & !3;
        if vector == 0 || !bus.mem.range_is_ram(vector, 2) {
            self.last_trap = Some(Box::new(record));
            return TrapOutcome::Fatal(format!("exception with no trap vector installed (mtvec = {:#x})", self.mtvec));
        }
        // M-mode has no double-fault rule: an exception inside the handler
        // is taken again, overwriting mepc/mcause/mtval (privileged spec
        // §3.1.6.1, §3.3.1). Stopping there is an opt-in debugging aid.
        if self.stop_on_nested_trap && self.exception_depth > 0 {
            let outer = self.last_trap.as_ref().map_or(String::new(), |t| {
                format!(" inside the handler of {} at {:#x}", cause_name(t.cause), t.pc)
            });
            let message = format!("{} at {:#x}{outer} (nested trap, --stop-on-nested-trap)", cause_name(cause), record.pc);
            self.last_trap = Some(Box::new(record));
            return TrapOutcome::Fatal(message);
        }
        self.last_trap = Some(Box::new(record));
        self.exception_depth = self.exception_depth.saturating_add(1);
        self.enter_trap(cause, tval);
        TrapOutcome::Handled
    }

    /// Takes the highest-priority pending enabled interrupt, if interrupts
    /// are globally enabled (§3.1.9: MEI > MSI > MTI). Returns true if taken.
    pub fn check_interrupts(&mut self, bus: &Bus) -> bool {
        if self.mstatus & MSTATUS_MIE == 0 {
            return false;
        }
        let pending = bus.lines[self.id as usize] & self.mie;
        if pending == 0 {
            return false;
        }
        let irq = if pending & MIP_MEIP != 0 {
            IRQ_MEI
        } else if pending & MIP_MSIP != 0 {
            IRQ_MSI
        } else {
            IRQ_MTI
        };
        self.enter_trap(MCAUSE_INTERRUPT | irq, 0);
        self.interrupts_taken += 1;
        true
    }

    /// Whether an enabled interrupt is pending (wakes `wfi` regardless of mstatus.MIE).
    pub fn interrupt_waiting(&self, bus: &Bus) -> bool {
        bus.lines[self.id as usize] & self.mie != 0
    }

    /// `mret` (§3.3.2).
    pub fn mret(&mut self) {
        let mpie = self.mstatus & MSTATUS_MPIE != 0;
        self.mstatus = MSTATUS_MPP | MSTATUS_MPIE | if mpie { MSTATUS_MIE } else { 0 };
        self.pc = self.mepc;
        if self.mcause & MCAUSE_INTERRUPT == 0 {
            self.exception_depth = self.exception_depth.saturating_sub(1);
        }
        self.cycle += self.costs.trap;
    }
}
