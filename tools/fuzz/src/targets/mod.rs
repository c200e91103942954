//! The fuzz targets, one module per parser (or family of parsers).

pub mod boot_flash;
pub mod bootcfg;
pub mod rpc;
pub mod elf;
pub mod net_frames;
pub mod nvme_cmd;
pub mod nvme_dptr;
pub mod sim_target;
pub mod sim_wire;
pub mod tcp_discovery;
pub mod tcp_fabrics;
pub mod tcp_host;
pub mod tcp_pdu;
pub mod toml;
