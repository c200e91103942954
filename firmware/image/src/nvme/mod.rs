//! NVMe controller emulation for the host-facing PCIe functions.
//!
//! * [`admin`]: the admin service on one control-plane core: controller
//!   registers of every function, admin queues, queue creation (placing
//!   each I/O queue pair on a data-plane core), resets, async events.
//! * [`io`]: the I/O engine inside each data-plane reactor: doorbells,
//!   SQ fetch, PRP/SGL walks, data DMA through the block layer,
//!   completions, MSI-X and interrupt coalescing.
//!
//! * [`live`]: namespaces attached and detached at run time through the
//!   management API, each core holding its own copy.
//!
//! The cores talk through SPSC rings + mailbox doorbells only ([`msg`]).

pub mod admin;
pub mod io;
pub mod iostat;
pub mod live;
pub mod msg;

/// The control-plane core that runs the admin service.
pub const ADMIN_HART: usize = 1;

/// I/O queue pairs function `f` offers.
pub fn io_queues(f: u16) -> u16 {
    if f == 0 {
        dpu_hal::memory_map::PF_IO_QUEUES as u16
    } else {
        dpu_hal::memory_map::VF_IO_QUEUES as u16
    }
}

/// MSI-X vectors of function `f`.
pub fn vectors(f: u16) -> u16 {
    if f == 0 {
        dpu_hal::memory_map::PF_MSIX_VECTORS as u16
    } else {
        dpu_hal::memory_map::VF_MSIX_VECTORS as u16
    }
}

/// DMA channel owned by `hart` for host transfers (one per hart):
/// `dpu_rt::copy::host_channel`, which keeps them off the engines that
/// carry copies. Consecutive harts land on different engines, so the cores
/// of one cluster spread their traffic over all host engines.
pub fn dma_channel(hart: usize) -> usize {
    use dpu_hal::memory_map::{DMA_CHANNELS, HARTS};
    const _: () = assert!(DMA_CHANNELS >= HARTS, "one DMA channel per hart");
    const _: () = assert!(dpu_rt::copy::host_channel(HARTS - 1).is_some(), "one host-transfer channel per hart");
    dpu_rt::copy::host_channel(hart).unwrap_or(hart)
}
