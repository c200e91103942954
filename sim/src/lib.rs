//! `dpu-sim`: a cycle-level simulator of the DPU card that runs the same
//! firmware ELF that would be flashed to it.
//!
//! Modules (every one of them):
//!
//! * [`isa`]: RV64IMAC+Zicsr+Zifencei decoder, disassembler, encoder.
//! * [`cpu`]: harts, CSRs, traps, the executor, its cycle model, the
//!   decoded-instruction cache with the compiling (Cranelift) tier
//!   ([`cpu::code::CodeCache`]: owned by the [`Machine`] and passed to
//!   [`cpu::Hart::run`] next to the bus, so `bus` and `mem` import nothing
//!   from `cpu`) and the cycle profiler.
//! * [`mem`], [`bus`]: sparse physical memory (which records writes into
//!   code pages; the code cache acts on that record), device routing
//!   (MMIO windows), LR/SC reservations, contention windows, the registry
//!   of bus-side components.
//! * [`devctx`]: what a device acts through instead of the whole bus
//!   (`DevCtx`: DPU memory as a bus master, the event queue, mailboxes
//!   and PLIC, the PCIe endpoint, link and host memory) and the
//!   `Component` trait by which its events reach it.
//! * [`dev`]: CLINT, PLIC, UART, mailboxes, finisher, defmt trace port,
//!   SPI NOR boot flash, its SPI controller, OTP fuses.
//! * [`pcie`]: the PCIe endpoint (PF + SR-IOV VFs, configuration space,
//!   BAR0, MSI-X), host accesses arriving over the link and the link
//!   timing model; [`dma`]: the DMA engines
//!   (descriptor and completion rings, CRC32C, descriptor execution).
//! * [`accel`]: crypto engines, erasure-coding engine, TRNG, each engine
//!   running its own descriptors (`accel::crypto_exec`, `accel::ec_exec`).
//! * [`ssd`]: local NVMe SSDs on the card's PCIe side (controller,
//!   queues, PRPs, media timing, faults; `ssd::bay`: their window,
//!   peer-to-peer DMA and events).
//! * [`host`]: the host (root complex, NVMe driver, fio-like workload,
//!   hostile and pre-OS modes, firmware update) as async tasks.
//! * [`net`]: the network model (NIC and its frame movement as one
//!   component in `net::component`, switch, RSS, checksum/TSO/LRO
//!   offloads, pcap, NVMe/TCP target models and initiator models
//!   (`net::nvmf_host`: remote hosts running the workload's jobs over
//!   NVMe/TCP) with their own wire code, the operator node, UDP bridge,
//!   host port forwarding); [`net_setup`]: a scenario's network, target
//!   and initiator models and timed faults wired in.
//! * [`machine`]: the chip and the deterministic discrete-event engine;
//!   [`event`]: its event queue, events addressed to components by id.
//! * [`bootcfg`]: the boot configuration blob built from a scenario;
//!   [`bootrom`]: the reset stub; [`secure_boot`]: the boot ROM's check of
//!   the first-stage bootloader in flash (`dpusim --flash`).
//! * [`elf`], [`report`], [`console`], [`defmt_log`]: images, statistics
//!   and fault reports, log lines, defmt decoding.
//! * [`at_rest`]: what encrypted and erasure-coded namespaces left on the
//!   target models' media, checked independently of the card;
//!   [`target_media`]: those media kept across runs (`--target-media`).
//! * [`iotrace`]: the per-I/O Perfetto trace (`--trace`); [`gdb`]: the
//!   GDB remote stub (`--gdb`).
//! * [`exit`]: the table of `dpusim` exit statuses.

pub mod accel;
pub mod at_rest;
pub mod bootcfg;
pub mod bootrom;
pub mod bus;
pub mod console;
pub mod cpu;
pub mod defmt_log;
pub mod devctx;
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
pub mod target_media;

pub use machine::{FlashBoot, Machine, Outcome, SimConfig};
