//! The card's configuration as an operator sets it, and how it survives
//! in flash.
//!
//! * [`Config`]: namespaces and their backends, DPU port addresses,
//!   remote NVMe-oF controllers, host identity, transport settings;
//!   encoded with postcard (serde), checked by [`Config::validate`].
//! * [`store`]: the flash `config` partition holds two copies; a save
//!   writes the copy that does not hold the newest valid configuration,
//!   so a power cut at any moment leaves at least one good copy. Each
//!   copy is a header (magic, record format, schema version, sequence,
//!   length, CRC-32) and the postcard bytes. Loading takes the valid copy
//!   with the highest sequence; a bad copy (CRC, unknown version, a value
//!   out of range) falls back to the other, else to an empty
//!   configuration, and says why.
//! * [`blob`]: renders a configuration into the boot configuration blob
//!   the firmware's namespace table is built from (`dpu_hal::regs::bootcfg`).
#![no_std]

pub mod blob;
pub mod store;

use dpu_hal::memory_map::{MAX_FUNCTIONS, MAX_NAMESPACES, MAX_NSID, MAX_PORTS, MAX_REMOTE_CONTROLLERS};
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Longest NQN (NVMe Base 2.0 §4.5: 223 bytes).
pub const NQN_MAX: usize = 223;

/// Version of the [`Config`] schema a record carries; a record of
/// another version is refused (and the other copy used).
pub const SCHEMA_VERSION: u16 = 1;

/// Everything the operator configures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub namespaces: Vec<Namespace, MAX_NAMESPACES>,
    pub ports: Vec<Port, MAX_PORTS>,
    pub controllers: Vec<Controller, MAX_REMOTE_CONTROLLERS>,
    /// Host NQN and host ID presented to remote targets.
    pub host_nqn: String<NQN_MAX>,
    pub host_id: [u8; 16],
    /// NVMe/TCP header and data digests toward remote targets.
    pub header_digest: bool,
    pub data_digest: bool,
    /// Large receive offload on the NIC.
    pub lro: bool,
    /// Minimum TCP retransmission timeout (0: the firmware's default).
    pub tcp_min_rto_ms: u16,
    /// Remote I/O timeout in microseconds (0: the firmware's default).
    pub io_timeout_us: u32,
}

/// A namespace of a PCIe function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub function: u16,
    pub nsid: u32,
    /// log2 of the block size (9..=12).
    pub block_shift: u8,
    pub blocks: u64,
    pub backend: Backend,
}

/// Where a namespace's blocks live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// DDR carved at boot.
    Ram,
    /// Namespace `nsid` of remote controller `controller` (index).
    Remote { controller: u16, nsid: u32 },
}

/// A DPU port's IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub mtu: u16,
}

/// A remote NVMe/TCP controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub subnqn: String<NQN_MAX>,
}

/// What makes a configuration unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Invalid {
    /// Function beyond the board, nsid outside 1..=MAX_NSID, block size
    /// not 512..4096, no blocks, a size overflowing 64 bits, a duplicate,
    /// or a remote backend naming no controller / an invalid nsid.
    Namespace { index: u16 },
    /// Prefix outside 8..=30, MTU outside 576..=9000, or address 0.0.0.0.
    Port { index: u16 },
    /// Address 0.0.0.0, port 0, or a subsystem NQN that is empty or not
    /// printable ASCII.
    Controller { index: u16 },
    /// A host NQN that is not printable ASCII.
    HostNqn,
}

fn printable(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_graphic())
}

impl Config {
    /// The empty configuration (no namespaces, ports or controllers), as a
    /// constant for static storage.
    pub const EMPTY: Config = Config {
        namespaces: Vec::new(),
        ports: Vec::new(),
        controllers: Vec::new(),
        host_nqn: String::new(),
        host_id: [0; 16],
        header_digest: false,
        data_digest: false,
        lro: false,
        tcp_min_rto_ms: 0,
        io_timeout_us: 0,
    };

    /// Checks every value against what the firmware can serve.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (i, p) in self.ports.iter().enumerate() {
            if !(8..=30).contains(&p.prefix) || !(576..=9000).contains(&p.mtu) || p.ip == [0; 4] {
                return Err(Invalid::Port { index: i as u16 });
            }
        }
        for (i, c) in self.controllers.iter().enumerate() {
            if c.traddr == [0; 4] || c.trsvcid == 0 || c.subnqn.is_empty() || !printable(&c.subnqn) {
                return Err(Invalid::Controller { index: i as u16 });
            }
        }
        if !printable(&self.host_nqn) {
            return Err(Invalid::HostNqn);
        }
        for (i, n) in self.namespaces.iter().enumerate() {
            let bad = Err(Invalid::Namespace { index: i as u16 });
            if usize::from(n.function) >= MAX_FUNCTIONS || n.nsid == 0 || n.nsid > MAX_NSID || !(9..=12).contains(&n.block_shift) || n.blocks == 0 {
                return bad;
            }
            if n.blocks.checked_shl(u32::from(n.block_shift)).is_none_or(|b| b >> n.block_shift != n.blocks) {
                return bad;
            }
            if self.namespaces[..i].iter().any(|m| m.function == n.function && m.nsid == n.nsid) {
                return bad;
            }
            if let Backend::Remote { controller, nsid } = n.backend {
                if usize::from(controller) >= self.controllers.len() || nsid == 0 || nsid == u32::MAX {
                    return bad;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Config {
        let mut c = Config::default();
        c.namespaces.push(Namespace { function: 0, nsid: 1, block_shift: 9, blocks: 2048, backend: Backend::Ram }).unwrap();
        c.controllers.push(Controller { traddr: [10, 0, 0, 10], trsvcid: 4420, subnqn: String::try_from("nqn.2014-08.org.example:t0").unwrap() }).unwrap();
        c.namespaces.push(Namespace { function: 1, nsid: 1, block_shift: 12, blocks: 256, backend: Backend::Remote { controller: 0, nsid: 3 } }).unwrap();
        c.ports.push(Port { ip: [10, 0, 0, 1], prefix: 24, mtu: 1500 }).unwrap();
        c.host_nqn = String::try_from("nqn.2014-08.org.nvmexpress:uuid:1").unwrap();
        c.lro = true;
        c
    }

    #[test]
    fn a_sample_is_valid_and_round_trips_through_postcard() {
        let c = sample();
        c.validate().unwrap();
        let mut buf = [0u8; 1024];
        let bytes = postcard::to_slice(&c, &mut buf).unwrap();
        let back: Config = postcard::from_bytes(bytes).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn out_of_range_values_are_named() {
        let mut c = sample();
        c.namespaces[1].nsid = MAX_NSID + 1;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }));
        let mut c = sample();
        c.namespaces[1].backend = Backend::Remote { controller: 1, nsid: 1 };
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }), "no controller 1");
        let mut c = sample();
        c.namespaces[0].block_shift = 13;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 0 }));
        let mut c = sample();
        c.namespaces[1].function = 0;
        c.namespaces[1].nsid = 1;
        assert_eq!(c.validate(), Err(Invalid::Namespace { index: 1 }), "duplicate");
        let mut c = sample();
        c.ports[0].mtu = 100;
        assert_eq!(c.validate(), Err(Invalid::Port { index: 0 }));
        let mut c = sample();
        c.controllers[0].subnqn.clear();
        assert_eq!(c.validate(), Err(Invalid::Controller { index: 0 }));
    }
}
