//! CPU primitives that need inline assembly.

#[cfg(target_arch = "riscv64")]
use core::sync::atomic::AtomicU64;

/// Adds `v` to `*a` with an explicit `lr.d`/`sc.d` loop (RISC-V
/// unprivileged spec §8.2) and returns the old value. `AtomicU64::fetch_add`
/// compiles to `amoadd.d`; this exercises the reservation path instead.
#[cfg(target_arch = "riscv64")]
pub fn lr_sc_add(a: &AtomicU64, v: u64) -> u64 {
    let old: u64;
    // SAFETY: `a` is a valid, aligned AtomicU64; the loop only touches it.
    unsafe {
        core::arch::asm!(
            "1: lr.d.aqrl {old}, ({p})",
            "add {new}, {old}, {v}",
            "sc.d.rl {fail}, {new}, ({p})",
            "bnez {fail}, 1b",
            p = in(reg) a.as_ptr(),
            v = in(reg) v,
            old = out(reg) old,
            new = out(reg) _,
            fail = out(reg) _,
            options(nostack),
        );
    }
    old
}

/// Executes an illegal instruction (`unimp`): raises an illegal-instruction
/// exception on this hart. Used by fault-path tests.
#[cfg(target_arch = "riscv64")]
pub fn illegal_instruction() {
    // SAFETY: raising a synchronous exception is the point; the trap
    // handler never returns from it.
    unsafe { core::arch::asm!("unimp", options(nostack)) };
}
