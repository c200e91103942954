//! Property Get and Property Set (NVMe Base 2.0 §6.5, §6.6): the fabrics
//! way to read and write controller properties (CAP, VS, CC, CSTS, ...),
//! which sit at the same offsets as the PCIe registers.
//!
//! SQE layout (as Linux `nvmf_property_*_command`): FCTYPE byte 4,
//! ATTRIB byte 40 (bits 2:0 size: 0 = 4 bytes, 1 = 8 bytes), OFST bytes
//! 47:44, and for Property Set VALUE bytes 55:48. A Property Get
//! completion returns the value in DW0 (and DW1 for 8 bytes).

use dpu_nvme::{Cqe, Sqe};

use super::{expect, fabrics_sqe, FabricsError, FcType};
use crate::le::{u32_at, u64_at};
use crate::sgl::Dptr;

/// Property offsets (NVMe Base 2.0 §3.1.4; the same as the PCIe BAR0
/// register offsets in `dpu_nvme::regs::off`).
pub mod offset {
    pub const CAP: u32 = 0x00;
    pub const VS: u32 = 0x08;
    pub const CC: u32 = 0x14;
    pub const CSTS: u32 = 0x1c;
    pub const NSSR: u32 = 0x20;
}

/// Property size (ATTRIB bits 2:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PropertySize {
    Four,
    Eight,
}

impl PropertySize {
    fn attrib(self) -> u8 {
        match self {
            PropertySize::Four => 0,
            PropertySize::Eight => 1,
        }
    }

    fn from_attrib(a: u8) -> Result<PropertySize, FabricsError> {
        match a & 7 {
            0 => Ok(PropertySize::Four),
            1 => Ok(PropertySize::Eight),
            other => Err(FabricsError::BadPropertySize(other)),
        }
    }

    /// The size a property has (CAP is the only 8-byte one of the base set).
    pub fn of(offset: u32) -> PropertySize {
        if offset == offset::CAP {
            PropertySize::Eight
        } else {
            PropertySize::Four
        }
    }
}

/// A Property Get command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PropertyGet {
    pub size: PropertySize,
    pub offset: u32,
}

/// A Property Set command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PropertySet {
    pub size: PropertySize,
    pub offset: u32,
    /// The value; only the low 32 bits count for a 4-byte property.
    pub value: u64,
}

impl PropertyGet {
    /// The SQE: FCTYPE 04h, no data (SGL1 null transport descriptor).
    pub fn to_sqe(&self, cid: u16) -> Sqe {
        let mut s = fabrics_sqe(cid, FcType::PropertyGet, Dptr::None);
        s.0[40] = self.size.attrib();
        s.set_dw(11, self.offset);
        s
    }

    /// Decodes a Property Get SQE (target side).
    pub fn parse(sqe: &Sqe) -> Result<PropertyGet, FabricsError> {
        expect(sqe, FcType::PropertyGet)?;
        Ok(PropertyGet { size: PropertySize::from_attrib(sqe.0[40])?, offset: sqe.dw(11) })
    }

    /// The value in a successful Property Get completion (host side).
    pub fn value(&self, c: &Cqe) -> u64 {
        match self.size {
            PropertySize::Four => u64::from(c.dw0),
            PropertySize::Eight => u64::from(c.dw0) | u64::from(c.dw1) << 32,
        }
    }

    /// CQE DW0 and DW1 carrying `value` (target side).
    pub fn response_dwords(&self, value: u64) -> (u32, u32) {
        match self.size {
            PropertySize::Four => (value as u32, 0),
            PropertySize::Eight => (value as u32, (value >> 32) as u32),
        }
    }
}

impl PropertySet {
    /// The SQE: FCTYPE 00h, no data.
    pub fn to_sqe(&self, cid: u16) -> Sqe {
        let mut s = fabrics_sqe(cid, FcType::PropertySet, Dptr::None);
        s.0[40] = self.size.attrib();
        s.set_dw(11, self.offset);
        let v = match self.size {
            PropertySize::Four => self.value & 0xffff_ffff,
            PropertySize::Eight => self.value,
        };
        s.set_dw(12, v as u32);
        s.set_dw(13, (v >> 32) as u32);
        s
    }

    /// Decodes a Property Set SQE (target side).
    pub fn parse(sqe: &Sqe) -> Result<PropertySet, FabricsError> {
        expect(sqe, FcType::PropertySet)?;
        let size = PropertySize::from_attrib(sqe.0[40])?;
        let raw = u64_at(&sqe.0, 48);
        let value = match size {
            PropertySize::Four => u64::from(u32_at(&sqe.0, 48)),
            PropertySize::Eight => raw,
        };
        Ok(PropertySet { size, offset: sqe.dw(11), value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpu_nvme::Status;

    #[test]
    fn property_set_cc_en_layout() {
        // The Linux host's first Property Set: CC = 0x00460001 (EN, IOSQES 6, IOCQES 4).
        let s = PropertySet { size: PropertySize::Four, offset: offset::CC, value: 0x0046_0001 }.to_sqe(5);
        let mut want = [0u8; 64];
        want[0] = 0x7f;
        want[1] = 0x40;
        want[2] = 5;
        want[4] = 0x00; // FCTYPE Property Set
        want[39] = 0x5a; // SGL1: transport data block, length 0
        want[40] = 0; // ATTRIB: 4 bytes
        want[44] = 0x14; // OFST
        want[48..52].copy_from_slice(&[0x01, 0x00, 0x46, 0x00]);
        assert_eq!(s.0, want);
        assert_eq!(
            PropertySet::parse(&s),
            Ok(PropertySet { size: PropertySize::Four, offset: 0x14, value: 0x0046_0001 })
        );
    }

    #[test]
    fn property_get_cap_layout_and_value() {
        let g = PropertyGet { size: PropertySize::of(offset::CAP), offset: offset::CAP };
        let s = g.to_sqe(0x0102);
        assert_eq!(s.0[4], 0x04);
        assert_eq!(s.0[40], 1, "ATTRIB: 8 bytes");
        assert_eq!(&s.0[44..48], &[0, 0, 0, 0]);
        assert_eq!(PropertyGet::parse(&s), Ok(g));
        let (dw0, dw1) = g.response_dwords(0x0000_0020_3c03_3fff);
        let c = Cqe { dw0, dw1, sq_head: 0, sq_id: 0, cid: 0x0102, status: Status::SUCCESS };
        assert_eq!(g.value(&c), 0x0000_0020_3c03_3fff);
        let csts = PropertyGet { size: PropertySize::Four, offset: offset::CSTS };
        assert_eq!(csts.value(&Cqe { dw1: 0xffff_ffff, ..c }), u64::from(dw0), "DW1 ignored for 4 bytes");
    }

    #[test]
    fn bad_attrib_and_wrong_fctype() {
        let mut s = PropertyGet { size: PropertySize::Four, offset: 0x1c }.to_sqe(1);
        s.0[40] = 2;
        assert_eq!(PropertyGet::parse(&s), Err(FabricsError::BadPropertySize(2)));
        assert_eq!(PropertySet::parse(&s), Err(FabricsError::NotThisCommand));
        let eight = PropertySet { size: PropertySize::Eight, offset: 0, value: u64::MAX }.to_sqe(1);
        assert_eq!(PropertySet::parse(&eight).unwrap().value, u64::MAX);
        let four = PropertySet { size: PropertySize::Four, offset: 0x14, value: u64::MAX }.to_sqe(1);
        assert_eq!(&four.0[52..56], &[0, 0, 0, 0], "upper half not sent for 4 bytes");
    }
}
