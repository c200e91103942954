//! The management server: JSON-RPC 2.0 over TCP on a data port's address
//! (the boot configuration's management record), run by the network
//! service ([`crate::net::NET_HART`]) in its control-queue stack.
//!
//! * [`server`]: listening sockets, the client allow-list, request
//!   framing and size/time bounds, the access token (`dpu-rpc` does the
//!   JSON).
//! * [`methods`]: the methods, SPDK's names where SPDK has the concept.
//!   They only read: the configuration (read-only after boot), what the
//!   fabrics service and the firmware update service publish, the NIC's
//!   counters, the data-plane engines' counters. Nothing here writes
//!   state the data plane uses.
//! * [`live`]: the methods that change the configuration at run time
//!   (RAM block devices, namespace-to-function mapping); the data plane
//!   hears of them by message only (`crate::nvme::live`).
//! * [`ec`]: erasure-coded volumes made at run time (`bdev_ec_create`,
//!   `bdev_ec_delete`), published to the data plane
//!   (`crate::block::ec::live`).
//! * [`nvmf`]: the NVMe/TCP target's subsystems made at run time (SPDK's
//!   `nvmf_*` methods), published to the data plane's targets
//!   (`crate::nvmf::live`).
//! * [`nvme`]: remote NVMe/TCP controllers attached and detached at run
//!   time (SPDK `bdev_nvme_attach_controller` / `_detach_controller`),
//!   connected by the fabrics service and published to the data plane
//!   (`crate::nvmf::ctrls`); their namespaces are run-time block devices.
//! * [`settings`]: port addresses, the initiator's defaults, TCP
//!   settings and the management server's rules changed at run time
//!   (`dpu_set_port`, `dpu_nvme_set_options`, `dpu_port_set_options`,
//!   `dpu_mgmt_set`), told to the data plane by message
//!   (`crate::net::settings`).
//! * [`update`]: firmware update (`dpu_fw_download`, `dpu_fw_commit`)
//!   through the firmware update service (`crate::fwupdate`).
//! * [`iostat`]: I/O statistics per block device (SPDK
//!   `bdev_get_iostat`) and per PCIe function, read from the data-plane
//!   cores' counters.
//! * [`sriov`]: the VFs the PF's SR-IOV capability offers the host
//!   (`dpu_sriov_get`, `dpu_sriov_set_total_vfs`).
//! * [`persist`]: the live changes saved to the configuration in flash,
//!   and made again at boot.

pub mod crypto;
pub mod ec;
pub mod iostat;
pub mod live;
pub mod methods;
pub mod nvme;
pub mod nvmf;
pub mod persist;
pub mod server;
pub mod settings;
pub mod sriov;
pub mod update;

/// A name kept in place (`Copy`, no heap): at most `N` bytes of UTF-8.
/// The run-time block devices, their crypto layers and the crypto keys
/// hold theirs this way.
#[derive(Clone, Copy, Debug)]
pub struct Name<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Name<N> {
    /// `s`, cut to `N` bytes (callers check names against `N` first).
    pub fn new(s: &str) -> Name<N> {
        let n = s.len().min(N);
        let mut bytes = [0u8; N];
        bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        Name { bytes, len: n as u8 }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}
