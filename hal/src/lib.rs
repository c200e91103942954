//! Hardware abstraction layer of the DPU.
//!
//! * [`memory_map`]: addresses and counts generated from `targets/chips/*.toml`
//!   (the chip is chosen with `$DPU_CHIP` at build time).
//! * [`regs`]: register layouts (offsets, bits) of every device. The firmware
//!   drivers below AND the simulator's device models use them, so a layout
//!   exists exactly once.
//! * [`csr`]: machine-mode CSR access (RISC-V privileged spec §3.1).
//! * Drivers: [`clint`], [`plic`], [`uart`], [`mailbox`], [`finisher`], [`trace`],
//!   [`dma`] (copies and CRC32C), [`accel`] queues, [`crypto`] engines, [`trng`],
//!   [`spi`] (boot flash SPI master, an `embedded-hal` `SpiDevice`), [`otp`], [`delay`].
//!
//! All `unsafe` MMIO lives in this crate.
#![no_std]

pub mod memory_map {
    //! Generated from the chip description; never edit by hand.
    include!(concat!(env!("OUT_DIR"), "/memory_map.rs"));
}

pub mod accel;
pub mod clint;
pub mod cpu;
pub mod crypto;
pub mod csr;
pub mod delay;
pub mod dma;
pub mod ec;
pub mod finisher;
pub mod mailbox;
pub mod mem;
pub mod mmio;
pub mod nic;
pub mod otp;
pub mod pcie;
pub mod plic;
pub mod regs;
pub mod spi;
pub mod trace;
pub mod trng;
pub mod uart;

/// Identity of a hart derived from `mhartid` (`cluster * CORES_PER_CLUSTER + core`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HartId(pub usize);

impl HartId {
    /// Cluster index.
    pub const fn cluster(self) -> usize {
        self.0 / memory_map::CORES_PER_CLUSTER
    }
    /// Core index inside the cluster.
    pub const fn core(self) -> usize {
        self.0 % memory_map::CORES_PER_CLUSTER
    }
    /// Whether this hart's cluster runs the control plane.
    pub const fn is_control_plane(self) -> bool {
        memory_map::CONTROL_CLUSTER_MASK & (1 << self.cluster()) != 0
    }
    /// Base of this hart's cluster SMEM.
    pub const fn smem_base(self) -> usize {
        memory_map::SMEM_BASE + self.cluster() * memory_map::SMEM_STRIDE
    }
}
