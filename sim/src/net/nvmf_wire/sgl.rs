//! SGL1 of a command sent over NVMe/TCP (NVMe Base 2.0, "Scatter Gather
//! List (SGL)", "Generic SGL Descriptor Format": address
//! 7:0, length 11:8, SGL identifier byte 15 = type 7:4 and subtype 3:0;
//! NVMe/TCP Transport 1.0 §3.3 "Submission and Completion Queue
//! Entries"; NVMe over Fabrics 1.1 "Capsules and Data Transfer").
//! NVMe/TCP knows two descriptors:
//!
//! * SGL Data Block (type 0h) with the Offset subtype (1h): data inside
//!   the command capsule, the address being an offset into it.
//! * Transport SGL Data Block (type 5h), subtype Ah for NVMe/TCP: data
//!   moved by C2HData PDUs, or by R2T and H2CData PDUs.
//!
//! A command without data carries a Transport SGL Data Block of length 0
//! (Linux `nvme_tcp_set_sg_null`).

use super::bytes::{u32_at, u64_at};

/// Descriptor types ("SGL Descriptor Type").
pub const TYPE_DATA_BLOCK: u8 = 0x0;
pub const TYPE_TRANSPORT_DATA_BLOCK: u8 = 0x5;
/// Descriptor subtypes ("SGL Descriptor Sub Type").
pub const SUBTYPE_ADDRESS: u8 = 0x0;
pub const SUBTYPE_OFFSET: u8 = 0x1;
pub const SUBTYPE_TRANSPORT_A: u8 = 0xa;

/// SGL1 as NVMe/TCP uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sgl {
    /// `len` bytes of in-capsule data starting `offset` bytes into it.
    InCapsule { offset: u64, len: u32 },
    /// `len` bytes carried by data PDUs (0: no data).
    Transport { len: u32 },
}

/// A descriptor NVMe/TCP does not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SGL descriptor identifier {0:#04x} is not one NVMe/TCP uses")]
pub struct UnsupportedSgl(pub u8);

impl Sgl {
    pub fn len(&self) -> u32 {
        match *self {
            Sgl::InCapsule { len, .. } | Sgl::Transport { len } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No data.
    pub const NONE: Sgl = Sgl::Transport { len: 0 };

    /// In-capsule data at offset 0.
    pub const fn in_capsule(len: u32) -> Sgl {
        Sgl::InCapsule { offset: 0, len }
    }

    /// The SGL identifier byte.
    pub fn identifier(&self) -> u8 {
        match self {
            Sgl::InCapsule { .. } => TYPE_DATA_BLOCK << 4 | SUBTYPE_OFFSET,
            Sgl::Transport { .. } => TYPE_TRANSPORT_DATA_BLOCK << 4 | SUBTYPE_TRANSPORT_A,
        }
    }

    pub fn to_bytes(&self) -> [u8; 16] {
        let addr = match *self {
            Sgl::InCapsule { offset, .. } => offset,
            Sgl::Transport { .. } => 0,
        };
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len().to_le_bytes());
        b[15] = self.identifier();
        b
    }

    /// Decodes the 16 descriptor bytes. A zero-length Transport SGL Data
    /// Block is accepted with subtype 0h as well as Ah.
    pub fn parse(b: &[u8; 16]) -> Result<Sgl, UnsupportedSgl> {
        let addr = u64_at(b, 0).unwrap_or(0);
        let len = u32_at(b, 8).unwrap_or(0);
        let id = b[15];
        match (id >> 4, id & 0xf) {
            (TYPE_TRANSPORT_DATA_BLOCK, SUBTYPE_TRANSPORT_A) => Ok(Sgl::Transport { len }),
            (TYPE_TRANSPORT_DATA_BLOCK, SUBTYPE_ADDRESS) if len == 0 => Ok(Sgl::Transport { len: 0 }),
            (TYPE_DATA_BLOCK, SUBTYPE_OFFSET) => Ok(Sgl::InCapsule { offset: addr, len }),
            _ => Err(UnsupportedSgl(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_byte_by_byte() {
        // In-capsule 1024 bytes at offset 0 (a Connect's data): id 0x01.
        let mut ic = [0u8; 16];
        ic[9] = 0x04;
        ic[15] = 0x01;
        assert_eq!(Sgl::parse(&ic), Ok(Sgl::in_capsule(1024)));
        assert_eq!(Sgl::in_capsule(1024).to_bytes(), ic);
        // Transport data block of 4096 bytes: id 0x5a.
        let mut t = [0u8; 16];
        t[8..12].copy_from_slice(&4096u32.to_le_bytes());
        t[15] = 0x5a;
        assert_eq!(Sgl::parse(&t), Ok(Sgl::Transport { len: 4096 }));
        assert_eq!(Sgl::Transport { len: 4096 }.to_bytes(), t);
        // No data: 0x5a or 0x50 with length 0.
        let mut none = [0u8; 16];
        none[15] = 0x50;
        assert_eq!(Sgl::parse(&none), Ok(Sgl::NONE));
        none[8] = 1;
        assert_eq!(Sgl::parse(&none), Err(UnsupportedSgl(0x50)));
        // Keyed data block (RDMA) and a segment descriptor are refused.
        for id in [0x40, 0x20, 0x00] {
            let mut k = [0u8; 16];
            k[15] = id;
            assert_eq!(Sgl::parse(&k), Err(UnsupportedSgl(id)));
        }
    }
}
