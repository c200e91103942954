//! Cycle costs of the core model, taken from `[timing]` in the chip file.

use dpu_targets::Chip;

/// Per-instruction-class costs (cycles). `*_extra` values are added on top of
/// the base `alu` cost every instruction pays.
#[derive(Clone, Copy, Debug)]
pub struct CoreCosts {
    pub base: u64,
    pub branch_taken: u64,
    pub jump: u64,
    pub mul_extra: u64,
    pub div_extra: u64,
    pub div64_extra: u64,
    pub csr_extra: u64,
    pub trap: u64,
    pub fence_i: u64,
    pub store: u64,
    pub amo_extra: u64,
    pub misaligned: u64,
    pub mmio: u64,
    pub l1d_hit: u64,
    pub ddr: u64,
    pub l1d_line_shift: u32,
    pub l1d_lines: usize,
    pub l1d_line: u64,
}

impl CoreCosts {
    pub fn from_chip(chip: &Chip) -> CoreCosts {
        let c = &chip.timing.core;
        let m = &chip.timing.memory;
        let base = u64::from(c.alu);
        CoreCosts {
            base,
            branch_taken: u64::from(c.branch_taken_penalty),
            jump: u64::from(c.jump_penalty),
            mul_extra: u64::from(c.mul).saturating_sub(base),
            div_extra: u64::from(c.div).saturating_sub(base),
            div64_extra: u64::from(c.div64).saturating_sub(base),
            csr_extra: u64::from(c.csr).saturating_sub(base),
            trap: u64::from(c.trap),
            fence_i: u64::from(c.fence_i),
            store: u64::from(m.store).saturating_sub(base),
            amo_extra: u64::from(m.amo_extra),
            misaligned: u64::from(m.misaligned_penalty),
            mmio: u64::from(m.mmio),
            l1d_hit: u64::from(m.l1d_hit),
            ddr: u64::from(m.ddr),
            l1d_line_shift: m.l1d_line.trailing_zeros(),
            l1d_lines: (m.l1d_size / m.l1d_line) as usize,
            l1d_line: u64::from(m.l1d_line),
        }
    }
}
