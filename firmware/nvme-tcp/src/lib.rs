//! NVMe/TCP transport wire formats (NVMe/TCP Transport 1.0) and NVMe over
//! Fabrics command helpers (NVMe over Fabrics 1.1, NVMe Base 2.0 §6), with
//! no MMIO, no allocation and no global state, so they unit-test on the
//! host and serve the firmware initiator, the firmware target and the
//! simulator's target model alike.
//!
//! * [`pdu`]: PDU headers (ICReq ... R2T): a stream receiver learns from
//!   the first 8 bytes how many header bytes to read, then gets a typed
//!   PDU plus a [`pdu::DataSpan`] saying where the data and its digest
//!   lie, so payload never passes through this crate. Every malformed
//!   header maps to a [`pdu::PduError`] that knows its Fatal Error Status.
//! * [`digest`]: CRC32C header/data digests, one-shot and incremental.
//! * [`sgl`]: SGL descriptors NVMe/TCP puts in SGL1 (in-capsule, transport).
//! * [`cqe`]: decoding the 16-byte completion a CapsuleResp carries.
//! * [`fabrics`]: Connect, Property Get/Set and admin/I/O SQE builders.
//! * [`discovery`]: the Discovery Log Page (LID 70h), parsed and emitted.
//! * [`target`]: the controller side: ICResp, Connect checks, properties,
//!   the admin commands of a dynamic I/O controller.
//! * [`consts`]: well-known NQN, ports, protocol version.
#![no_std]

pub mod consts;
pub mod cqe;
pub mod digest;
pub mod discovery;
pub mod fabrics;
pub mod host;
pub mod pdu;
pub mod sgl;
pub mod target;

mod le;

pub use consts::*;
