//! NVMe controller emulation logic (NVMe Base 2.0, NVM Command Set 1.0,
//! NVMe over PCIe Transport 1.0), with no MMIO and no global state so it
//! unit-tests on the host. The firmware feeds it submission queue entries
//! and register values and carries out what it decides (DMA, completions).
//!
//! * [`status`]: completion status codes.
//! * [`sqe`], [`cqe`]: queue entry views.
//! * [`regs`]: controller registers (CAP, VS, CC, CSTS, AQA) and the
//!   enable/disable/shutdown state machine.
//! * [`queue`]: queue state and doorbell validation; queue creation checks.
//! * [`dptr`]: data pointers: PRP entries and lists, SGL descriptors.
//! * [`identify`], [`features`], [`logs`]: admin data structures.
//! * [`admin`]: the admin command set both front ends (PCIe, NVMe/TCP)
//!   serve through it: Identify, Get Log Page, Get/Set Features, Abort,
//!   Keep Alive, asynchronous events.
//! * [`ns_feed`]: namespace changes told across cores to every
//!   controller of a subsystem (atomics, no locks on the reading side).
//! * [`io`]: NVM command set I/O command decoding.
//! * [`firmware`]: Firmware Image Download / Commit, the slot log.
//! * [`handover`]: the controller handover record one image leaves the
//!   next for firmware activation without reset (format only).
//! * [`host`]: the other side, for the driver of the card's local SSDs:
//!   commands it builds, completions it reads, its queue-pair view, PRPs.
#![no_std]

pub mod admin;
pub mod cqe;
pub mod dptr;
pub mod features;
pub mod firmware;
pub mod handover;
pub mod host;
pub mod identify;
pub mod io;
pub mod logs;
pub mod ns_feed;
pub mod queue;
pub mod regs;
pub mod sqe;
pub mod status;

pub use cqe::Cqe;
pub use sqe::Sqe;
pub use status::Status;

/// Memory page size the controller supports (CAP.MPSMIN = MPSMAX = 4 KiB).
pub const PAGE_SIZE: u64 = 4096;
/// Maximum data transfer size as a power of two of pages (MDTS = 5: 128 KiB).
pub const MDTS: u8 = 5;
/// Largest transfer in bytes.
pub const MAX_TRANSFER: u64 = PAGE_SIZE << MDTS;
/// Maximum queue entries supported (CAP.MQES is this minus one).
pub const MAX_QUEUE_ENTRIES: u32 = 1024;
/// Highest namespace ID a controller reports (Identify Controller NN).
pub const MAX_NSID: u32 = 32;
