//! NVMe/TCP and NVMe over Fabrics wire formats, written for the
//! simulator's test peers from the specifications (NVMe/TCP Transport
//! 1.0, NVMe over Fabrics 1.1, NVMe Base 2.0, NVM Command Set 1.0) and
//! checked against bytes Linux sent and against Wireshark's dissector.
//! It deliberately shares no code with the firmware's `dpu-nvme` and
//! `dpu-nvme-tcp` crates: a peer that reuses the firmware's code would
//! repeat its mistakes where no test could see them (DESIGN.md §5).
//!
//! Used by the target models (`nvmf_target`) and the initiator models
//! (`nvmf_host`): every parser works for either role.
//!
//! * [`pdu`]: PDUs, stream parsing and building, digests, TermReq FES.
//! * [`command`], [`completion`], [`status`], [`sgl`]: queue entries.
//! * [`fabrics`]: Connect, Property Get/Set.
//! * [`commands`]: admin and NVM command fields.
//! * [`identify`], [`discovery`]: data structures a controller returns.
//! * [`digest`]: CRC32C (from the `crc` crate).
//! * [`bytes`]: little-endian fields and padded text.
//!
//! Tests hold it against real bytes: a Linux nvmet-tcp capture
//! (`linux_fixture`, `sim/tests/fixtures/`) and, in `cargo xtask test`,
//! tshark's dissector reading a capture of the firmware and a target model.

pub mod bytes;
pub mod command;
pub mod commands;
pub mod completion;
pub mod digest;
pub mod discovery;
pub mod fabrics;
pub mod identify;
#[cfg(test)]
pub mod linux_fixture;
pub mod pdu;
pub mod sgl;
pub mod status;

pub use command::Command;
pub use completion::Completion;
pub use sgl::Sgl;
pub use status::Status;
