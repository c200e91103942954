//! Completion status (NVMe Base 2.0 §4.6.1.2, figures 100-103).

/// A status field: Status Code Type (SCT) and Status Code (SC), plus the
/// Do Not Retry bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    pub sct: u8,
    pub sc: u8,
    pub dnr: bool,
}

impl Status {
    pub const fn generic(sc: u8) -> Status {
        Status { sct: 0, sc, dnr: sc != 0 }
    }
    pub const fn specific(sc: u8) -> Status {
        Status { sct: 1, sc, dnr: true }
    }
    pub const fn media(sc: u8) -> Status {
        Status { sct: 2, sc, dnr: true }
    }

    pub const SUCCESS: Status = Status { sct: 0, sc: 0, dnr: false };
    // Generic command status (figure 101).
    pub const INVALID_OPCODE: Status = Status::generic(0x01);
    pub const INVALID_FIELD: Status = Status::generic(0x02);
    pub const CID_CONFLICT: Status = Status::generic(0x03);
    pub const DATA_TRANSFER_ERROR: Status = Status { sct: 0, sc: 0x04, dnr: false };
    pub const INTERNAL_ERROR: Status = Status { sct: 0, sc: 0x06, dnr: false };
    pub const ABORT_REQUESTED: Status = Status { sct: 0, sc: 0x07, dnr: false };
    pub const ABORTED_SQ_DELETION: Status = Status { sct: 0, sc: 0x08, dnr: false };
    pub const INVALID_NAMESPACE: Status = Status::generic(0x0b);
    pub const COMMAND_SEQUENCE_ERROR: Status = Status::generic(0x0c);
    pub const INVALID_SGL_SEGMENT: Status = Status::generic(0x0d);
    pub const INVALID_SGL_COUNT: Status = Status::generic(0x0e);
    pub const DATA_SGL_LENGTH_INVALID: Status = Status::generic(0x0f);
    pub const SGL_TYPE_INVALID: Status = Status::generic(0x11);
    pub const PRP_OFFSET_INVALID: Status = Status::generic(0x13);
    /// Transient Transport Error (NVMe Base 2.0 figure 101, SC 22h): e.g.
    /// an NVMe/TCP data digest error; the host may retry.
    pub const TRANSIENT_TRANSPORT_ERROR: Status = Status { sct: 0, sc: 0x22, dnr: false };
    pub const LBA_OUT_OF_RANGE: Status = Status::generic(0x80);
    // Command specific status (figure 102).
    pub const CQ_INVALID: Status = Status::specific(0x00);
    pub const INVALID_QID: Status = Status::specific(0x01);
    pub const INVALID_QUEUE_SIZE: Status = Status::specific(0x02);
    pub const ABORT_LIMIT_EXCEEDED: Status = Status::specific(0x03);
    pub const AER_LIMIT_EXCEEDED: Status = Status::specific(0x05);
    pub const INVALID_FIRMWARE_SLOT: Status = Status::specific(0x06);
    pub const INVALID_FIRMWARE_IMAGE: Status = Status::specific(0x07);
    pub const INVALID_VECTOR: Status = Status::specific(0x08);
    pub const INVALID_LOG_PAGE: Status = Status::specific(0x09);
    /// Firmware Commit: the commit succeeded; the image activates at the
    /// next conventional reset (not at a controller reset).
    pub const FIRMWARE_REQUIRES_CONVENTIONAL_RESET: Status = Status::specific(0x0b);
    pub const INVALID_QUEUE_DELETION: Status = Status::specific(0x0c);
    /// Firmware Commit 011b: "the image specified if activated immediately
    /// would exceed the Maximum Time for Firmware Activation (MTFA)"; it
    /// was committed and activates at the next reset.
    pub const FIRMWARE_REQUIRES_MTFA_VIOLATION: Status = Status::specific(0x12);
    pub const FEATURE_NOT_SAVEABLE: Status = Status::specific(0x0d);
    /// Firmware Image Download: the piece overlaps one already received.
    pub const OVERLAPPING_RANGE: Status = Status::specific(0x14);
    // Media and data integrity errors (figure 103).
    /// Write Fault (80h): the write could not be made durable.
    pub const WRITE_FAULT: Status = Status::media(0x80);
    /// Unrecovered Read Error (81h): the data cannot be read.
    pub const UNRECOVERED_READ_ERROR: Status = Status::media(0x81);
    pub const COMPARE_FAILURE: Status = Status::media(0x85);

    pub fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// The 15-bit status field of a CQE (DW3 bits 31:17).
    pub fn field(self) -> u16 {
        u16::from(self.sc) | (u16::from(self.sct & 7) << 8) | (u16::from(self.dnr) << 14)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_layout() {
        assert_eq!(Status::SUCCESS.field(), 0);
        assert_eq!(Status::INVALID_OPCODE.field(), 0x4001, "SC 01, DNR");
        assert_eq!(Status::INVALID_QID.field(), 0x4101, "SCT 1");
        assert_eq!(Status::COMPARE_FAILURE.field(), 0x4285);
        assert!(!Status::DATA_TRANSFER_ERROR.dnr, "transient: may be retried");
    }
}
