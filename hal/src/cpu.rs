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

/// Loads 8 bytes from `p`, which may be misaligned, with one `ld` (the
/// cores do misaligned accesses in hardware: the chip's
/// `misaligned_penalty`). LLVM only emits single loads for misaligned
/// data with its `unaligned-scalar-mem` feature, which stable rustc
/// warns about; this says it explicitly where it matters (copies,
/// staging buffers). Elsewhere (host tests) it is `read_unaligned`.
///
/// # Safety
/// `p..p+8` must be readable.
#[inline(always)]
pub unsafe fn load_u64_unaligned(p: *const u8) -> u64 {
    #[cfg(target_arch = "riscv64")]
    {
        let v: u64;
        // SAFETY: the caller guarantees `p..p+8` is readable; a
        // misaligned `ld` is executed by the hardware.
        unsafe { core::arch::asm!("ld {v}, 0({p})", v = out(reg) v, p = in(reg) p, options(nostack, readonly, preserves_flags)) };
        v
    }
    #[cfg(not(target_arch = "riscv64"))]
    // SAFETY: the caller guarantees `p..p+8` is readable.
    unsafe {
        (p as *const u64).read_unaligned()
    }
}

/// Loads 32 bytes from `p`, which may be misaligned, as four words with
/// four `ld`s (offsets in the instructions; see [`load_u64_unaligned`]).
///
/// # Safety
/// `p..p+32` must be readable.
#[inline(always)]
pub unsafe fn load_4x_u64_unaligned(p: *const u8) -> [u64; 4] {
    #[cfg(target_arch = "riscv64")]
    {
        let (a, b, c, d): (u64, u64, u64, u64);
        // SAFETY: the caller guarantees `p..p+32` is readable; misaligned
        // `ld`s are executed by the hardware.
        unsafe {
            core::arch::asm!(
                "ld {a}, 0({p})",
                "ld {b}, 8({p})",
                "ld {c}, 16({p})",
                "ld {d}, 24({p})",
                a = out(reg) a, b = out(reg) b, c = out(reg) c, d = out(reg) d, p = in(reg) p,
                options(nostack, readonly, preserves_flags)
            )
        };
        [a, b, c, d]
    }
    #[cfg(not(target_arch = "riscv64"))]
    // SAFETY: the caller guarantees `p..p+32` is readable.
    unsafe {
        [0, 8, 16, 24].map(|o| (p.add(o) as *const u64).read_unaligned())
    }
}

/// Stores 8 bytes at `p`, which may be misaligned, with one `sd` (see
/// [`load_u64_unaligned`]).
///
/// # Safety
/// `p..p+8` must be writable.
#[inline(always)]
pub unsafe fn store_u64_unaligned(p: *mut u8, v: u64) {
    #[cfg(target_arch = "riscv64")]
    // SAFETY: the caller guarantees `p..p+8` is writable; a misaligned
    // `sd` is executed by the hardware.
    unsafe {
        core::arch::asm!("sd {v}, 0({p})", v = in(reg) v, p = in(reg) p, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "riscv64"))]
    // SAFETY: the caller guarantees `p..p+8` is writable.
    unsafe {
        (p as *mut u64).write_unaligned(v)
    }
}

/// `fence rw, rw`: every memory access before it is visible before any after it.
#[cfg(target_arch = "riscv64")]
pub fn fence() {
    // SAFETY: a fence has no operands and no effect besides ordering.
    unsafe { core::arch::asm!("fence rw, rw", options(nostack, preserves_flags)) };
}

/// Starts a loaded image: `fence.i` (its code was written as data), then
/// jumps to `entry` with `a0 = a0`, interrupts masked. The bootloader's
/// last act on each hart.
#[cfg(target_arch = "riscv64")]
pub fn jump_to_image(entry: u64, a0: u64) -> ! {
    // SAFETY: the caller loaded and verified an image whose entry is
    // `entry`; control never comes back, so no Rust state outlives this.
    unsafe {
        core::arch::asm!(
            "csrw mie, zero",
            "fence rw, rw",
            "fence.i",
            "jr {entry}",
            entry = in(reg) entry,
            in("a0") a0,
            options(noreturn, nostack),
        )
    }
}
