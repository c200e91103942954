//! The SGL1 descriptor of commands sent over NVMe/TCP (NVMe/TCP Transport
//! 1.0 §3.3; NVMe Base 2.0 §4.3.2) and PSDT.
//!
//! NVMe/TCP uses exactly two descriptors: an SGL Data Block with the
//! Offset subtype (type 0h, subtype 1h) for data inside the command
//! capsule, and the Transport SGL Data Block (type 5h, subtype Ah) for
//! data moved by C2HData or R2T/H2CData PDUs. Every command over fabrics
//! sets PSDT to 01b (SGL); the Linux target fails commands without it
//! with Invalid Field in Command.

use dpu_nvme::Sqe;

use crate::le::{put_u32, put_u64, u32_at, u64_at};

/// SGL descriptor type: Data Block.
pub const TYPE_DATA_BLOCK: u8 = 0x0;
/// SGL descriptor type: Transport SGL Data Block.
pub const TYPE_TRANSPORT_DATA_BLOCK: u8 = 0x5;
/// Data Block subtype: the address field is an offset into the capsule.
pub const SUBTYPE_OFFSET: u8 = 0x1;
/// Transport SGL Data Block subtype NVMe/TCP uses.
pub const SUBTYPE_TRANSPORT_TCP: u8 = 0xA;

/// SQE byte 1 (CDW0 bits 15:8) value of PSDT = 01b: SGL for data,
/// MPTR is an address.
pub const PSDT_SGL: u8 = 0x40;

/// Where a command's data lives, as SGL1 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dptr {
    /// No data (written as a Transport SGL Data Block of length 0).
    None,
    /// `len` bytes inside the command capsule, starting `offset` bytes
    /// into the in-capsule data (ICDOFF; 0 for every target we know).
    InCapsule { offset: u64, len: u32 },
    /// `len` bytes moved by C2HData PDUs, or R2T and H2CData PDUs.
    Transport { len: u32 },
}

/// SGL1 that NVMe/TCP does not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SglError {
    /// PSDT is not 01b.
    NotSgl,
    /// A descriptor type/subtype (SGL identifier byte) other than the two
    /// NVMe/TCP defines, or a non-zero length with subtype 0 of type 5h.
    UnsupportedDescriptor(u8),
}

impl Dptr {
    /// Data bytes described.
    pub fn len(&self) -> u32 {
        match *self {
            Dptr::None => 0,
            Dptr::InCapsule { len, .. } | Dptr::Transport { len } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// In-capsule data at offset 0.
    pub const fn in_capsule(len: u32) -> Dptr {
        Dptr::InCapsule { offset: 0, len }
    }

    /// The 16 descriptor bytes: address (7:0), length (11:8), SGL
    /// identifier (15: type in bits 7:4, subtype in bits 3:0).
    pub fn to_bytes(&self) -> [u8; 16] {
        let (addr, len, id) = match *self {
            Dptr::None => (0, 0, TYPE_TRANSPORT_DATA_BLOCK << 4 | SUBTYPE_TRANSPORT_TCP),
            Dptr::InCapsule { offset, len } => (offset, len, TYPE_DATA_BLOCK << 4 | SUBTYPE_OFFSET),
            Dptr::Transport { len } => (0, len, TYPE_TRANSPORT_DATA_BLOCK << 4 | SUBTYPE_TRANSPORT_TCP),
        };
        let mut b = [0u8; 16];
        put_u64(&mut b, 0, addr);
        put_u32(&mut b, 8, len);
        b[15] = id;
        b
    }

    /// Decodes a descriptor. A zero-length Transport SGL Data Block (of
    /// subtype Ah, or 0h as Linux writes it) is [`Dptr::None`].
    pub fn from_bytes(b: &[u8; 16]) -> Result<Dptr, SglError> {
        let addr = u64_at(b, 0);
        let len = u32_at(b, 8);
        let id = b[15];
        match (id >> 4, id & 0xf) {
            (TYPE_TRANSPORT_DATA_BLOCK, 0) | (TYPE_TRANSPORT_DATA_BLOCK, SUBTYPE_TRANSPORT_TCP) if len == 0 => {
                Ok(Dptr::None)
            }
            (TYPE_TRANSPORT_DATA_BLOCK, SUBTYPE_TRANSPORT_TCP) => Ok(Dptr::Transport { len }),
            (TYPE_DATA_BLOCK, SUBTYPE_OFFSET) => Ok(Dptr::InCapsule { offset: addr, len }),
            _ => Err(SglError::UnsupportedDescriptor(id)),
        }
    }

    /// Writes SGL1 (bytes 39:24) and sets PSDT to 01b.
    pub fn apply(&self, sqe: &mut Sqe) {
        self.apply_to(&mut sqe.0);
    }

    /// [`apply`](Self::apply) on the 64 SQE bytes where they lie (in a
    /// capsule being written).
    pub fn apply_to(&self, sqe: &mut [u8; 64]) {
        sqe[24..40].copy_from_slice(&self.to_bytes());
        sqe[1] = (sqe[1] & 0x3f) | PSDT_SGL;
    }

    /// Reads SGL1 of a command received over NVMe/TCP (target side).
    pub fn of(sqe: &Sqe) -> Result<Dptr, SglError> {
        if sqe.0[1] & 0xc0 != PSDT_SGL {
            return Err(SglError::NotSgl);
        }
        Dptr::from_bytes(&sqe.dptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_bytes() {
        let mut want = [0u8; 16];
        want[8..12].copy_from_slice(&1024u32.to_le_bytes());
        want[15] = 0x01;
        assert_eq!(Dptr::in_capsule(1024).to_bytes(), want);
        want[8..12].copy_from_slice(&0x2_0000u32.to_le_bytes());
        want[15] = 0x5a;
        assert_eq!(Dptr::Transport { len: 0x2_0000 }.to_bytes(), want);
        let none = Dptr::None.to_bytes();
        assert_eq!(&none[..15], &[0u8; 15]);
        assert_eq!(none[15], 0x5a);
    }

    #[test]
    fn round_trip_and_linux_null_descriptor() {
        for d in
            [Dptr::None, Dptr::in_capsule(512), Dptr::InCapsule { offset: 64, len: 8 }, Dptr::Transport { len: 4096 }]
        {
            assert_eq!(Dptr::from_bytes(&d.to_bytes()), Ok(d));
        }
        // Linux nvme_tcp_set_sg_null(): type 5h, subtype 0h, length 0.
        let mut b = [0u8; 16];
        b[15] = 0x50;
        assert_eq!(Dptr::from_bytes(&b), Ok(Dptr::None));
        b[8] = 1;
        assert_eq!(Dptr::from_bytes(&b), Err(SglError::UnsupportedDescriptor(0x50)));
        // Keyed/segment descriptors are not NVMe/TCP's.
        b[15] = 0x20;
        assert_eq!(Dptr::from_bytes(&b), Err(SglError::UnsupportedDescriptor(0x20)));
    }

    #[test]
    fn apply_sets_psdt_and_keeps_fuse() {
        let mut s = Sqe::ZERO;
        s.0[1] = 0x01; // FUSE bits must survive
        Dptr::Transport { len: 4096 }.apply(&mut s);
        assert_eq!(s.0[1], 0x41);
        assert_eq!(Dptr::of(&s), Ok(Dptr::Transport { len: 4096 }));
        s.0[1] = 0x80;
        assert_eq!(Dptr::of(&s), Err(SglError::NotSgl));
    }
}
