//! Test harness: hand-assembled programs on a small chip.
#![allow(dead_code)]

use dpu_sim::elf::{Image, Segment};
pub use dpu_sim::isa::asm;
use dpu_sim::{Machine, Outcome, SimConfig};
use dpu_targets::Chip;

pub const ZERO: u32 = 0;
pub const RA: u32 = 1;
pub const SP: u32 = 2;
pub const T0: u32 = 5;
pub const T1: u32 = 6;
pub const T2: u32 = 7;
pub const A0: u32 = 10;
pub const A1: u32 = 11;
pub const A2: u32 = 12;
pub const A3: u32 = 13;
pub const A4: u32 = 14;
pub const A5: u32 = 15;
pub const S0: u32 = 8;
pub const S1: u32 = 9;

/// The default chip, optionally reshaped to `clusters` x `cores`.
pub fn chip(clusters: u32, cores: u32) -> Chip {
    let text = std::fs::read_to_string(dpu_targets::default_chip_path()).unwrap();
    let positions: Vec<String> = (0..clusters).map(|c| format!("[{c}, 0]")).collect();
    let text = text
        .replacen("clusters = 5", &format!("clusters = {clusters}"), 1)
        .replacen("cores_per_cluster = 16", &format!("cores_per_cluster = {cores}"), 1)
        .replacen(
            "positions = [[1, 1], [0, 0], [2, 0], [0, 2], [2, 2]]",
            &format!("positions = [{}]", positions.join(", ")),
            1,
        );
    Chip::parse("test-chip.toml", &text).unwrap()
}

/// A program under construction (32-bit and 16-bit instructions, data words).
#[derive(Default, Clone)]
pub struct Prog {
    pub bytes: Vec<u8>,
}

impl Prog {
    pub fn new() -> Prog {
        Prog::default()
    }
    /// Appends a 32-bit instruction.
    pub fn i(mut self, w: u32) -> Prog {
        self.bytes.extend_from_slice(&w.to_le_bytes());
        self
    }
    /// Appends a 16-bit (compressed) instruction.
    pub fn c(mut self, h: u16) -> Prog {
        self.bytes.extend_from_slice(&h.to_le_bytes());
        self
    }
    /// Current offset from the start of the program.
    pub fn here(&self) -> i32 {
        self.bytes.len() as i32
    }
    /// Loads a 64-bit constant into `rd` (17 instructions: byte by byte).
    pub fn li(self, rd: u32, v: u64) -> Prog {
        let mut p = self.i(asm::addi(rd, 0, 0));
        for byte in v.to_be_bytes() {
            p = p.i(asm::i(0b0010011, rd, 1, rd, 8)); // slli rd, rd, 8
            p = p.i(asm::i(0b0010011, rd, 6, rd, i32::from(byte))); // ori rd, rd, byte
        }
        p
    }
    /// Ends with an endless `wfi` loop (the hart sleeps; run ends in deadlock).
    pub fn halt(self) -> Prog {
        let p = self.i(asm::WFI);
        p.i(asm::j(0, -4))
    }
    pub fn word(mut self, w: u64) -> Prog {
        self.bytes.extend_from_slice(&w.to_le_bytes());
        self
    }
}

/// Builds a machine running `prog` at the start of DDR on a chip of
/// `clusters` x `cores` harts.
pub fn machine_on(prog: &Prog, clusters: u32, cores: u32) -> Machine {
    let chip = chip(clusters, cores);
    let base = chip.memory.ddr.base;
    let image = Image::from_segments(
        "test-prog",
        base,
        vec![Segment { paddr: base, data: prog.bytes.clone(), mem_size: prog.bytes.len() as u64, writable: true }],
    );
    let cfg = SimConfig { quiet: true, capture_log: true, max_cycles: Some(50_000_000), ..SimConfig::default() };
    let board = dpu_targets::Board::load(dpu_targets::default_board_path()).unwrap();
    Machine::new(chip, board, image, cfg).unwrap()
}

/// Runs `prog` on one hart until it sleeps for good.
pub fn run1(prog: Prog) -> Machine {
    let mut m = machine_on(&prog, 1, 1);
    let out = m.run();
    if let Outcome::Fatal { hart, message } = &out {
        panic!("{}", m.fault_report(*hart, message));
    }
    assert!(all_asleep(&m), "program should end in its wfi loop, got {out:?}");
    m
}

/// Whether every hart sleeps in `wfi` (how test programs end).
pub fn all_asleep(m: &Machine) -> bool {
    m.harts.iter().all(|h| h.state == dpu_sim::cpu::RunState::Waiting)
}

/// Address of DDR base on the test chips (where programs live).
pub fn ddr_base() -> u64 {
    chip(1, 1).memory.ddr.base
}

/// A data area in DDR well after the code.
pub fn data_addr() -> u64 {
    ddr_base() + 0x10_0000
}

pub fn read_u64(m: &mut Machine, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    m.bus.mem.read_bytes(addr, &mut b).unwrap();
    u64::from_le_bytes(b)
}
pub mod fw;
