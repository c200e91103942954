//! A boot configuration the firmware cannot serve ends the run with the
//! reason (finisher `CONFIG_REJECTED`, exit status 5) instead of booting
//! controllers without namespaces. The scenario loader refuses these
//! configurations first; the simulator's own writer is used here to get
//! them past it.

mod common;
use common::fw::firmware;
use dpu_hal::regs::bootcfg as b;
use dpu_sim::dev::finisher::Finish;
use dpu_sim::elf::Image;
use dpu_sim::{Machine, Outcome, SimConfig};
use dpu_targets::{Board, Chip};

const MIB: u64 = 1 << 20;

/// Boots the firmware with RAM namespaces (function, nsid, bytes, block
/// size) for at most 20 simulated ms.
fn boot(ns: &[(u16, u32, u64, u32)]) -> (Machine, Outcome) {
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let board = Board::load(dpu_targets::default_board_path()).unwrap();
    let image = Image::load(firmware()).unwrap();
    let cfg = SimConfig { quiet: true, capture_log: true, max_cycles: Some(20_000_000), ..SimConfig::default() };
    let mut m = Machine::new(chip, board, image, cfg).unwrap();
    m.set_namespaces(ns).unwrap();
    let out = m.run();
    (m, out)
}

fn rejected(ns: &[(u16, u32, u64, u32)], reason: u16, index: u16, says: &str) {
    let (m, out) = boot(ns);
    assert_eq!(out, Outcome::Finished(Finish::ConfigRejected { reason, index }));
    assert_eq!(out.exit_code(), i32::from(dpu_sim::exit::BOOT_CONFIG_REJECTED));
    let msg = m.outcome_message(&out).expect("a rejection has a message");
    assert!(msg.contains(says), "{msg}");
}

#[test]
fn nsid_beyond_the_firmware_limit_ends_the_run() {
    let nsid = dpu_targets::MAX_NSID + 1;
    rejected(&[(0, 1, MIB, 512), (0, nsid, MIB, 512)], b::REJECT_BAD_RECORD, 1, &format!("namespace record 1 (function 0, nsid {nsid}, RAM"));
}

#[test]
fn too_many_namespaces_end_the_run() {
    let ns: Vec<(u16, u32, u64, u32)> = (0..=dpu_targets::MAX_NAMESPACES).map(|i| ((i / 32) as u16, (i % 32) as u32 + 1, MIB, 512)).collect();
    rejected(&ns, b::REJECT_TOO_MANY, ns.len() as u16, "too many records");
}

#[test]
fn ram_beyond_the_ddr_pool_ends_the_run() {
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let (_, pool) = chip.ram_namespace_pool();
    // The first fills the pool to the last 4 KiB; the second does not fit.
    rejected(&[(0, 1, pool - 4096, 512), (0, 2, 8192, 512)], b::REJECT_OUT_OF_MEMORY, 1, "out of memory");
}

#[test]
fn a_pool_filled_exactly_boots() {
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let (_, pool) = chip.ram_namespace_pool();
    let (m, out) = boot(&[(0, 1, pool - 4096, 512), (0, 2, 4096, 512)]);
    assert_eq!(out, Outcome::TimeLimit);
    assert!(m.outcome_message(&out).is_none());
}
