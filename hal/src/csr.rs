//! Machine-mode CSR access (RISC-V privileged spec v1.12 §2, §3.1).
//!
//! On non-RISC-V hosts these functions do not exist; the simulator uses only
//! [`crate::regs::csr`] numbers.

#[cfg(target_arch = "riscv64")]
mod imp {
    use core::arch::asm;

    macro_rules! read_csr {
        ($name:ident, $csr:literal) => {
            #[doc = concat!("Reads `", $csr, "`.")]
            #[inline(always)]
            pub fn $name() -> u64 {
                let v: u64;
                // SAFETY: reading this CSR has no side effects in M-mode.
                unsafe { asm!(concat!("csrr {0}, ", $csr), out(reg) v, options(nomem, nostack)) };
                v
            }
        };
    }
    read_csr!(mhartid, "mhartid");
    read_csr!(mcycle, "mcycle");
    read_csr!(minstret, "minstret");
    read_csr!(mcause, "mcause");
    read_csr!(mepc, "mepc");
    read_csr!(mtval, "mtval");
    read_csr!(mip, "mip");
    read_csr!(mie, "mie");
    read_csr!(mstatus, "mstatus");

    /// Reads the `time` CSR (mtime mirror).
    #[inline(always)]
    pub fn time() -> u64 {
        let v: u64;
        // SAFETY: `time` is a read-only counter.
        unsafe { asm!("csrr {0}, time", out(reg) v, options(nomem, nostack)) };
        v
    }

    /// Sets bits in `mie`.
    #[inline(always)]
    pub fn mie_set(bits: u64) {
        // SAFETY: enabling interrupt sources is what the caller asks for; the
        // trap vector is installed before any caller runs.
        unsafe { asm!("csrs mie, {0}", in(reg) bits, options(nomem, nostack)) };
    }

    /// Clears bits in `mie`.
    #[inline(always)]
    pub fn mie_clear(bits: u64) {
        // SAFETY: masking interrupt sources is always safe.
        unsafe { asm!("csrc mie, {0}", in(reg) bits, options(nomem, nostack)) };
    }

    /// Disables machine interrupts; returns whether they were enabled.
    #[inline(always)]
    pub fn interrupts_disable() -> bool {
        let old: u64;
        // SAFETY: clearing mstatus.MIE only masks interrupts on this hart.
        unsafe { asm!("csrrci {0}, mstatus, 8", out(reg) old, options(nostack)) };
        old & crate::regs::csr::MSTATUS_MIE != 0
    }

    /// Enables machine interrupts.
    #[inline(always)]
    pub fn interrupts_enable() {
        // SAFETY: the trap vector is installed by the runtime before main.
        unsafe { asm!("csrsi mstatus, 8", options(nostack)) };
    }

    /// Waits for an interrupt (returns when any enabled interrupt is pending,
    /// even with mstatus.MIE clear; privileged spec §3.3.3).
    #[inline(always)]
    pub fn wfi() {
        // SAFETY: wfi is a hint; it never changes architectural state.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

#[cfg(target_arch = "riscv64")]
pub use imp::*;
