//! NVMe over Fabrics commands as submission queue entries ready for a
//! CapsuleCmd (NVMe Base 2.0 §6; NVMe over Fabrics 1.1 §3), plus the
//! admin and I/O commands a fabrics host sends, all with PSDT = SGL and
//! an NVMe/TCP SGL1 descriptor.
//!
//! * [`connect`]: Connect command, its 1024-byte data and its response.
//! * [`property`]: Property Get/Set (the fabrics stand-in for registers).
//! * [`admin`]: Keep Alive, Identify, Get Log Page.
//! * [`io`]: Read, Write, Flush.

pub mod admin;
pub mod connect;
pub mod io;
pub mod property;

mod nqn;

pub use connect::{ConnectCmd, ConnectData, ConnectResponse};
pub use nqn::check_nqn;
pub use property::{PropertyGet, PropertySet, PropertySize};

use dpu_nvme::Sqe;

use crate::sgl::Dptr;

/// Opcode of every Fabrics command (NVMe Base 2.0 §6).
pub const OPC_FABRICS: u8 = 0x7f;

/// Fabrics Command Type (FCTYPE, SQE byte 4; NVMe Base 2.0 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum FcType {
    PropertySet = 0x00,
    Connect = 0x01,
    PropertyGet = 0x04,
    AuthenticationSend = 0x05,
    AuthenticationReceive = 0x06,
    Disconnect = 0x08,
}

impl FcType {
    pub const fn from_u8(v: u8) -> Option<FcType> {
        Some(match v {
            0x00 => FcType::PropertySet,
            0x01 => FcType::Connect,
            0x04 => FcType::PropertyGet,
            0x05 => FcType::AuthenticationSend,
            0x06 => FcType::AuthenticationReceive,
            0x08 => FcType::Disconnect,
            _ => return None,
        })
    }

    /// The FCTYPE of a Fabrics command SQE (`None` if it is not one, or the
    /// type is unknown).
    pub fn of(sqe: &Sqe) -> Option<FcType> {
        if sqe.opcode() != OPC_FABRICS {
            return None;
        }
        FcType::from_u8(sqe.0[4])
    }
}

/// Why a Fabrics structure could not be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FabricsError {
    /// Not a Fabrics command of the expected FCTYPE.
    NotThisCommand,
    /// A buffer shorter than the structure (`need` bytes).
    Truncated { need: usize },
    /// An NQN longer than 223 bytes, with no terminating NUL in its field,
    /// with an embedded NUL, or not UTF-8.
    BadNqn,
    /// Property ATTRIB size other than 4 or 8 bytes.
    BadPropertySize(u8),
    /// A transfer length or offset that is zero or not dword aligned
    /// where the command needs dwords.
    BadLength(u64),
}

/// A Fabrics command SQE with OPC, CID, FCTYPE, PSDT = SGL and SGL1.
fn fabrics_sqe(cid: u16, fctype: FcType, dptr: Dptr) -> Sqe {
    let mut s = Sqe::ZERO;
    s.0[0] = OPC_FABRICS;
    s.0[2..4].copy_from_slice(&cid.to_le_bytes());
    s.0[4] = fctype as u8;
    dptr.apply(&mut s);
    s
}

/// An admin or I/O SQE with OPC, CID, NSID, PSDT = SGL and SGL1.
pub fn command_sqe(opcode: u8, cid: u16, nsid: u32, dptr: Dptr) -> Sqe {
    let mut s = Sqe::ZERO;
    command_sqe_into(&mut s.0, opcode, cid, nsid, dptr);
    s
}

/// [`command_sqe`] written into 64 zeroed SQE bytes where they lie.
pub fn command_sqe_into(s: &mut [u8; 64], opcode: u8, cid: u16, nsid: u32, dptr: Dptr) {
    s[0] = opcode;
    s[2..4].copy_from_slice(&cid.to_le_bytes());
    s[4..8].copy_from_slice(&nsid.to_le_bytes());
    dptr.apply_to(s);
}

fn expect(sqe: &Sqe, fctype: FcType) -> Result<(), FabricsError> {
    if FcType::of(sqe) != Some(fctype) {
        return Err(FabricsError::NotThisCommand);
    }
    Ok(())
}
