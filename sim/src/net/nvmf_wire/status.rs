//! The completion status field (NVMe Base 2.0, "Completion Queue Entry",
//! "Status Field": CQE DW3 bits 31:17 = SC 24:17, SCT 27:25, CRD 29:28,
//! More 30, DNR 31) and the status codes the models use ("Generic Command
//! Status", "Command Specific Status", "Media and Data Integrity Errors";
//! the Connect status codes of NVMe over Fabrics 1.1 "Connect Command"
//! and Linux `include/linux/nvme.h`).

/// One status: Status Code Type, Status Code and the Do Not Retry bit
/// (CRD and More are kept as received, 0 when sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub sct: u8,
    pub sc: u8,
    pub crd: u8,
    pub more: bool,
    pub dnr: bool,
}

/// Status Code Types.
pub mod sct {
    pub const GENERIC: u8 = 0x0;
    pub const COMMAND_SPECIFIC: u8 = 0x1;
    pub const MEDIA: u8 = 0x2;
    pub const PATH: u8 = 0x3;
}

impl Status {
    pub const fn new(sct: u8, sc: u8, dnr: bool) -> Status {
        Status { sct, sc, crd: 0, more: false, dnr }
    }

    pub const SUCCESS: Status = Status::new(sct::GENERIC, 0x00, false);
    pub const INVALID_OPCODE: Status = Status::new(sct::GENERIC, 0x01, true);
    pub const INVALID_FIELD: Status = Status::new(sct::GENERIC, 0x02, true);
    pub const CID_CONFLICT: Status = Status::new(sct::GENERIC, 0x03, true);
    pub const INVALID_NAMESPACE: Status = Status::new(sct::GENERIC, 0x0b, true);
    pub const COMMAND_SEQUENCE_ERROR: Status = Status::new(sct::GENERIC, 0x0c, true);
    pub const DATA_SGL_LENGTH_INVALID: Status = Status::new(sct::GENERIC, 0x0f, true);
    pub const SGL_DESCRIPTOR_TYPE_INVALID: Status = Status::new(sct::GENERIC, 0x11, true);
    /// 22h: a transport error that a retry may not see again (a data
    /// digest mismatch); DNR clear.
    pub const TRANSIENT_TRANSPORT_ERROR: Status = Status::new(sct::GENERIC, 0x22, false);
    pub const LBA_OUT_OF_RANGE: Status = Status::new(sct::GENERIC, 0x80, true);
    /// Asynchronous Event Request Limit Exceeded (NVMe Base 2.0 figure 102).
    pub const AER_LIMIT_EXCEEDED: Status = Status::new(sct::COMMAND_SPECIFIC, 0x05, true);
    pub const INVALID_LOG_PAGE: Status = Status::new(sct::COMMAND_SPECIFIC, 0x09, true);
    /// Fabrics Connect (NVMe over Fabrics 1.1, "Connect Response").
    pub const CONNECT_INCOMPATIBLE_FORMAT: Status = Status::new(sct::COMMAND_SPECIFIC, 0x80, true);
    pub const CONNECT_CONTROLLER_BUSY: Status = Status::new(sct::COMMAND_SPECIFIC, 0x81, true);
    pub const CONNECT_INVALID_PARAMETERS: Status = Status::new(sct::COMMAND_SPECIFIC, 0x82, true);
    pub const CONNECT_RESTART_DISCOVERY: Status = Status::new(sct::COMMAND_SPECIFIC, 0x83, true);
    pub const CONNECT_INVALID_HOST: Status = Status::new(sct::COMMAND_SPECIFIC, 0x84, true);
    pub const COMPARE_FAILURE: Status = Status::new(sct::MEDIA, 0x85, true);

    pub fn is_success(&self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// Same status code, whatever DNR/CRD/More say.
    pub fn same_code(&self, other: &Status) -> bool {
        self.sct == other.sct && self.sc == other.sc
    }

    /// The 15-bit field (DW3 bits 31:17 shifted down by 17).
    pub fn to_field(&self) -> u16 {
        u16::from(self.sc) | u16::from(self.sct & 7) << 8 | u16::from(self.crd & 3) << 11 | u16::from(self.more) << 13 | u16::from(self.dnr) << 14
    }

    pub fn from_field(f: u16) -> Status {
        Status { sc: f as u8, sct: ((f >> 8) & 7) as u8, crd: ((f >> 11) & 3) as u8, more: f & 1 << 13 != 0, dnr: f & 1 << 14 != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_bits_per_the_status_field_figure() {
        // Linux `NVME_SC_DNR` is 0x4000 and `NVME_SC_INVALID_FIELD` 0x2 in
        // the same shifted field.
        assert_eq!(Status::INVALID_FIELD.to_field(), 0x4002);
        assert_eq!(Status::COMPARE_FAILURE.to_field(), 0x4285);
        assert_eq!(Status::CONNECT_INVALID_PARAMETERS.to_field(), 0x4182, "Linux NVME_SC_CONNECT_INVALID_PARAM | DNR");
        assert_eq!(Status::TRANSIENT_TRANSPORT_ERROR.to_field(), 0x0022);
        let odd = Status { sct: 3, sc: 0x71, crd: 2, more: true, dnr: false };
        assert_eq!(odd.to_field(), 0x71 | 3 << 8 | 2 << 11 | 1 << 13);
        assert_eq!(Status::from_field(odd.to_field()), odd);
        assert!(Status::from_field(0x8000).is_success(), "bit 15 is the phase tag's neighbour, not status");
    }
}
