//! PDU types, their fixed header lengths, directions and the common
//! header flag bits (NVMe/TCP Transport 1.0 §3.6.2.1).

/// PDU-Type (common header byte 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum PduType {
    /// Initialize Connection Request (§3.6.2.2).
    IcReq = 0x00,
    /// Initialize Connection Response (§3.6.2.3).
    IcResp = 0x01,
    /// Host to Controller Terminate Connection Request (§3.6.2.4).
    H2cTermReq = 0x02,
    /// Controller to Host Terminate Connection Request (§3.6.2.5).
    C2hTermReq = 0x03,
    /// Command Capsule (§3.6.2.6).
    CapsuleCmd = 0x04,
    /// Response Capsule (§3.6.2.7).
    CapsuleResp = 0x05,
    /// Host to Controller Data (§3.6.2.8).
    H2cData = 0x06,
    /// Controller to Host Data (§3.6.2.9).
    C2hData = 0x07,
    /// Ready to Transfer (§3.6.2.10).
    R2t = 0x09,
}

/// Which way a PDU travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    HostToController,
    ControllerToHost,
}

/// Which end of the connection we are; decides which PDU types we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Receives controller-to-host PDUs.
    Host,
    /// Receives host-to-controller PDUs.
    Controller,
}

impl Role {
    /// The direction of PDUs this end receives.
    pub const fn receives(self) -> Direction {
        match self {
            Role::Host => Direction::ControllerToHost,
            Role::Controller => Direction::HostToController,
        }
    }
}

/// Header Digest present (FLAGS bit 0).
pub const HDGSTF: u8 = 1 << 0;
/// Data Digest present (FLAGS bit 1).
pub const DDGSTF: u8 = 1 << 1;
/// Last PDU of a data transfer (FLAGS bit 2; H2CData and C2HData).
pub const LAST_PDU: u8 = 1 << 2;
/// Command completed successfully, no CapsuleResp follows (FLAGS bit 3;
/// C2HData only, and only together with [`LAST_PDU`]).
pub const SUCCESS: u8 = 1 << 3;

/// Length of the common header.
pub const CH_LEN: usize = 8;

impl PduType {
    pub const fn from_u8(v: u8) -> Option<PduType> {
        Some(match v {
            0x00 => PduType::IcReq,
            0x01 => PduType::IcResp,
            0x02 => PduType::H2cTermReq,
            0x03 => PduType::C2hTermReq,
            0x04 => PduType::CapsuleCmd,
            0x05 => PduType::CapsuleResp,
            0x06 => PduType::H2cData,
            0x07 => PduType::C2hData,
            0x09 => PduType::R2t,
            _ => return None,
        })
    }

    /// The fixed HLEN of this type (PDU header without digest).
    pub const fn hlen(self) -> u8 {
        match self {
            PduType::IcReq | PduType::IcResp => 128,
            PduType::CapsuleCmd => 72,
            PduType::H2cTermReq
            | PduType::C2hTermReq
            | PduType::CapsuleResp
            | PduType::H2cData
            | PduType::C2hData
            | PduType::R2t => 24,
        }
    }

    pub const fn direction(self) -> Direction {
        match self {
            PduType::IcReq | PduType::H2cTermReq | PduType::CapsuleCmd | PduType::H2cData => {
                Direction::HostToController
            }
            PduType::IcResp | PduType::C2hTermReq | PduType::CapsuleResp | PduType::C2hData | PduType::R2t => {
                Direction::ControllerToHost
            }
        }
    }

    /// ICReq or ICResp: never digested, only before connection setup ends.
    pub const fn is_ic(self) -> bool {
        matches!(self, PduType::IcReq | PduType::IcResp)
    }

    /// H2CTermReq or C2HTermReq: never digested, error data right after
    /// the header.
    pub const fn is_term(self) -> bool {
        matches!(self, PduType::H2cTermReq | PduType::C2hTermReq)
    }

    /// Types that carry a header digest when header digests are enabled.
    pub const fn takes_hdgst(self) -> bool {
        !self.is_ic() && !self.is_term()
    }

    /// Types whose data is placed by PDO and covered by a data digest.
    pub const fn takes_data(self) -> bool {
        matches!(self, PduType::CapsuleCmd | PduType::H2cData | PduType::C2hData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_round_trip_and_gaps_are_rejected() {
        for v in 0..=255u8 {
            match PduType::from_u8(v) {
                Some(t) => assert_eq!(t as u8, v),
                None => assert!(v == 8 || v > 9, "{v:#x} should be a type"),
            }
        }
    }

    #[test]
    fn fixed_header_lengths() {
        assert_eq!(PduType::IcReq.hlen(), 128);
        assert_eq!(PduType::IcResp.hlen(), 128);
        assert_eq!(PduType::H2cTermReq.hlen(), 24);
        assert_eq!(PduType::CapsuleCmd.hlen(), 72);
        assert_eq!(PduType::CapsuleResp.hlen(), 24);
        assert_eq!(PduType::C2hData.hlen(), 24);
        assert_eq!(PduType::R2t.hlen(), 24);
    }

    #[test]
    fn roles_receive_opposite_directions() {
        assert_eq!(Role::Host.receives(), PduType::C2hData.direction());
        assert_eq!(Role::Controller.receives(), PduType::CapsuleCmd.direction());
        assert_eq!(PduType::R2t.direction(), Direction::ControllerToHost);
        assert_eq!(PduType::H2cTermReq.direction(), Direction::HostToController);
    }
}
