//! PDU types, their fixed header lengths and directions, and the flag
//! bits of the common header (NVMe/TCP Transport 1.0 §3.6.2.1 "PDU
//! Header Format" and "PDU Types"; Linux `include/linux/nvme-tcp.h`
//! `enum nvme_tcp_pdu_type`, `enum nvme_tcp_pdu_flags`).

/// PDU-Type, byte 0 of every PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PduType {
    IcReq,
    IcResp,
    H2cTermReq,
    C2hTermReq,
    CapsuleCmd,
    CapsuleResp,
    H2cData,
    C2hData,
    R2t,
}

/// FLAGS bit 0: a header digest follows the header.
pub const FLAG_HDGSTF: u8 = 1 << 0;
/// FLAGS bit 1: a data digest follows the data.
pub const FLAG_DDGSTF: u8 = 1 << 1;
/// FLAGS bit 2 (H2CData, C2HData): last data PDU of the transfer.
pub const FLAG_LAST_PDU: u8 = 1 << 2;
/// FLAGS bit 3 (C2HData): the command succeeded, no CapsuleResp follows.
pub const FLAG_SUCCESS: u8 = 1 << 3;

/// Bytes of the common header (PDU-Type, FLAGS, HLEN, PDO, PLEN).
pub const COMMON_HEADER_LEN: usize = 8;
/// Bytes of a header or data digest.
pub const DIGEST_LEN: usize = 4;

/// Which end of a connection a PDU is sent by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Host,
    Controller,
}

impl Role {
    pub fn peer(self) -> Role {
        match self {
            Role::Host => Role::Controller,
            Role::Controller => Role::Host,
        }
    }
}

impl PduType {
    pub const ALL: [PduType; 9] = [
        PduType::IcReq,
        PduType::IcResp,
        PduType::H2cTermReq,
        PduType::C2hTermReq,
        PduType::CapsuleCmd,
        PduType::CapsuleResp,
        PduType::H2cData,
        PduType::C2hData,
        PduType::R2t,
    ];

    pub fn from_u8(v: u8) -> Option<PduType> {
        PduType::ALL.into_iter().find(|t| t.code() == v)
    }

    pub fn code(self) -> u8 {
        match self {
            PduType::IcReq => 0x00,
            PduType::IcResp => 0x01,
            PduType::H2cTermReq => 0x02,
            PduType::C2hTermReq => 0x03,
            PduType::CapsuleCmd => 0x04,
            PduType::CapsuleResp => 0x05,
            PduType::H2cData => 0x06,
            PduType::C2hData => 0x07,
            PduType::R2t => 0x09,
        }
    }

    /// HLEN: every type has a fixed header length.
    pub fn hlen(self) -> u8 {
        match self {
            PduType::IcReq | PduType::IcResp => 128,
            // CH (8) + the 64-byte submission queue entry.
            PduType::CapsuleCmd => 72,
            // CH (8) + the 16-byte completion queue entry.
            PduType::CapsuleResp => 24,
            PduType::H2cTermReq | PduType::C2hTermReq | PduType::H2cData | PduType::C2hData | PduType::R2t => 24,
        }
    }

    /// Who sends it.
    pub fn sender(self) -> Role {
        match self {
            PduType::IcReq | PduType::H2cTermReq | PduType::CapsuleCmd | PduType::H2cData => Role::Host,
            _ => Role::Controller,
        }
    }

    pub fn is_ic(self) -> bool {
        matches!(self, PduType::IcReq | PduType::IcResp)
    }

    pub fn is_term(self) -> bool {
        matches!(self, PduType::H2cTermReq | PduType::C2hTermReq)
    }

    /// Carries a header digest when header digests were negotiated (all
    /// but the IC and TermReq PDUs).
    pub fn has_hdgst(self) -> bool {
        !self.is_ic() && !self.is_term()
    }

    /// May carry PDU data placed by PDO and covered by the data digest.
    pub fn has_data(self) -> bool {
        matches!(self, PduType::CapsuleCmd | PduType::H2cData | PduType::C2hData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lengths_and_senders() {
        let want = [(0x00, 128, Role::Host), (0x01, 128, Role::Controller), (0x02, 24, Role::Host), (0x03, 24, Role::Controller), (0x04, 72, Role::Host), (0x05, 24, Role::Controller), (0x06, 24, Role::Host), (0x07, 24, Role::Controller), (0x09, 24, Role::Controller)];
        for (t, (code, hlen, who)) in PduType::ALL.into_iter().zip(want) {
            assert_eq!((t.code(), t.hlen(), t.sender()), (code, hlen, who), "{t:?}");
            assert_eq!(PduType::from_u8(code), Some(t));
        }
        assert_eq!(PduType::from_u8(0x08), None, "08h is not defined");
        assert_eq!(PduType::from_u8(0x0a), None);
    }
}
