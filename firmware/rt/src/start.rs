//! `_start`: the first code every hart runs after the boot ROM.
//!
//! 1. Mask interrupts, point `gp` at `__global_pointer$`, set `mtvec`.
//! 2. Stack: top of the hart's cluster SMEM minus `core * STACK_SIZE`.
//! 3. Hart 0 zeroes `.bss`, copies `.data` (LMA -> VMA), then raises
//!    `msip` of every other hart. The others sleep in `wfi` until their
//!    `msip` is set, clear it, and continue.
//! 4. Everyone calls `_dpu_rust_start(hartid)` -> the application entry.

use dpu_hal::memory_map::{CLINT_BASE, CORES_PER_CLUSTER, HARTS, SMEM_BASE, SMEM_SIZE, SMEM_STRIDE, STACK_SIZE};

core::arch::global_asm!(
    r#"
    .option arch, +m
    .section .text.start, "ax"
    .global _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    csrw    mie, zero
    csrci   mstatus, 8
    csrr    t0, mhartid
    li      t1, {harts}
    bgeu    t0, t1, 90f
    la      t1, _trap_entry
    csrw    mtvec, t1
    # sp = SMEM_BASE + SMEM_SIZE + cluster * SMEM_STRIDE - core * STACK_SIZE
    li      t1, {cores}
    divu    t2, t0, t1
    remu    t3, t0, t1
    li      t4, {smem_stride}
    mul     t2, t2, t4
    li      t4, {smem_end}
    add     t2, t2, t4
    li      t4, {stack_size}
    mul     t3, t3, t4
    sub     sp, t2, t3
    bnez    t0, 20f

    # hart 0: zero .bss
    la      t1, _sbss
    la      t2, _ebss
1:  bgeu    t1, t2, 2f
    sd      zero, 0(t1)
    addi    t1, t1, 8
    j       1b
    # copy .data from its load address
2:  la      t1, _sidata
    la      t2, _sdata
    la      t3, _edata
    beq     t1, t2, 4f
3:  bgeu    t2, t3, 4f
    ld      t4, 0(t1)
    sd      t4, 0(t2)
    addi    t1, t1, 8
    addi    t2, t2, 8
    j       3b
4:  fence   rw, rw
    # release harts 1..HARTS: msip[h] = 1
    li      t1, {clint}
    addi    t1, t1, 4
    li      t2, 1
    li      t3, {harts}
5:  bgeu    t2, t3, 30f
    li      t4, 1
    sw      t4, 0(t1)
    addi    t1, t1, 4
    addi    t2, t2, 1
    j       5b

    # other harts: wait for msip, then clear it
20: li      t1, 8
    csrw    mie, t1
21: wfi
    csrr    t1, mip
    andi    t1, t1, 8
    beqz    t1, 21b
    li      t1, {clint}
    slli    t2, t0, 2
    add     t1, t1, t2
    sw      zero, 0(t1)
    csrw    mie, zero
    fence   rw, rw

30: mv      a0, t0
    call    _dpu_rust_start
    # not reached
90: wfi
    j       90b
    "#,
    harts = const HARTS,
    cores = const CORES_PER_CLUSTER,
    smem_stride = const SMEM_STRIDE,
    smem_end = const SMEM_BASE + SMEM_SIZE,
    stack_size = const STACK_SIZE,
    clint = const CLINT_BASE,
);

unsafe extern "Rust" {
    fn __dpu_main(hart: crate::HartId) -> !;
}

#[unsafe(no_mangle)]
extern "C" fn _dpu_rust_start(hartid: usize) -> ! {
    // SAFETY: `__dpu_main` is defined by the application with `entry!`,
    // which checks its signature.
    unsafe { __dpu_main(crate::HartId(hartid)) }
}
