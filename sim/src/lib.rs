//! `dpu-sim`: a cycle-level simulator of the DPU card that runs the same
//! firmware ELF that would be flashed to it.
//!
//! * [`isa`]: RV64IMAC+Zicsr+Zifencei decoder, disassembler, encoder.
//! * [`cpu`]: harts, CSRs, traps, the executor and its cycle model.
//! * [`mem`], [`bus`]: sparse physical memory, device routing, LR/SC,
//!   decoded-instruction cache, contention windows.
//! * [`dev`]: CLINT, PLIC, UART, mailboxes, finisher, defmt trace port.
//! * [`machine`]: the chip and the deterministic discrete-event engine.
//! * [`secure_boot`]: the boot ROM's check of the first-stage bootloader
//!   in flash (`dpusim --flash`); `dev::nor_flash`, `dev::spi`, `dev::otp`:
//!   the boot flash, its SPI controller, the OTP fuses.
//! * [`net`]: the network model (frames, RSS, checksum/TSO/LRO offloads, pcap).
//! * [`elf`], [`report`], [`console`]: images, statistics, fault reports, logs.
//! * [`exit`]: the table of `dpusim` exit statuses.

pub mod accel;
pub mod at_rest;
pub mod bootcfg;
pub mod bootrom;
pub mod bus;
pub mod bus_accel;
pub mod bus_pcie;
pub mod bus_ssd;
pub mod bus_net;
pub mod console;
pub mod cpu;
pub mod defmt_log;
pub mod dev;
pub mod dma;
pub mod elf;
pub mod event;
pub mod exit;
pub mod gdb;
pub mod host;
pub mod iotrace;
pub mod isa;
pub mod machine;
pub mod mem;
pub mod net;
pub mod net_setup;
pub mod pcie;
pub mod report;
pub mod secure_boot;
pub mod ssd;

pub use machine::{FlashBoot, Machine, Outcome, SimConfig};
