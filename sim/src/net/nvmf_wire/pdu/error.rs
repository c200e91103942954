//! Why a received PDU is rejected, and what the receiver reports in the
//! H2CTermReq/C2HTermReq it sends before closing the connection: Fatal
//! Error Status and Field Error Information (NVMe/TCP Transport 1.0
//! §3.6.2.4 "H2C Terminate Connection Request PDU", §3.6.2.5 "C2H
//! Terminate Connection Request PDU"; Linux `enum
//! nvme_tcp_fatal_error_status`).

use super::kind::PduType;

/// Fatal Error Status values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fes {
    /// 01h: FEI is the byte offset of the bad header field.
    InvalidPduHeaderField,
    /// 02h: a PDU not allowed at this point of the connection.
    PduSequenceError,
    /// 03h.
    HeaderDigestError,
    /// 04h: DATAO/DATAL (or R2TO/R2TL) outside the command's data.
    DataTransferOutOfRange,
    /// 05h: more than MAXH2CDATA in one H2CData PDU ("R2T Limit Exceeded"
    /// in older texts).
    DataTransferLimitExceeded,
    /// 06h: FEI is the byte offset of the unsupported field.
    UnsupportedParameter,
}

impl Fes {
    pub fn code(self) -> u16 {
        match self {
            Fes::InvalidPduHeaderField => 0x01,
            Fes::PduSequenceError => 0x02,
            Fes::HeaderDigestError => 0x03,
            Fes::DataTransferOutOfRange => 0x04,
            Fes::DataTransferLimitExceeded => 0x05,
            Fes::UnsupportedParameter => 0x06,
        }
    }

    pub fn from_code(v: u16) -> Option<Fes> {
        [
            Fes::InvalidPduHeaderField,
            Fes::PduSequenceError,
            Fes::HeaderDigestError,
            Fes::DataTransferOutOfRange,
            Fes::DataTransferLimitExceeded,
            Fes::UnsupportedParameter,
        ]
        .into_iter()
        .find(|f| f.code() == v)
    }
}

/// Byte offsets of header fields, reported as FEI.
pub mod field {
    pub const PDU_TYPE: u32 = 0;
    pub const FLAGS: u32 = 1;
    pub const HLEN: u32 = 2;
    pub const PDO: u32 = 3;
    pub const PLEN: u32 = 4;
    pub const PFV: u32 = 8;
    pub const PDA: u32 = 10;
    pub const MAXH2CDATA: u32 = 12;
    pub const DATAL: u32 = 16;
}

/// A received PDU the receiver must not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("PDU-Type {0:#04x} is not defined")]
    UnknownType(u8),
    #[error("{0:?} travels the other way")]
    WrongDirection(PduType),
    #[error("{0:?} before ICReq/ICResp")]
    BeforeIc(PduType),
    #[error("{0:?} after the connection was set up")]
    RepeatedIc(PduType),
    #[error("{pdu_type:?} with HLEN {hlen}")]
    BadHlen { pdu_type: PduType, hlen: u8 },
    #[error("HDGSTF does not match the negotiated header digest")]
    HeaderDigestFlag,
    #[error("DDGSTF does not match the negotiated data digest or the PDU's data")]
    DataDigestFlag,
    #[error("C2HData with SUCCESS but without LAST_PDU")]
    SuccessWithoutLast,
    #[error("PLEN {0} does not fit the header, digests and data rules")]
    BadPlen(u32),
    #[error("PDO {0} is not where the data may start")]
    BadPdo(u8),
    #[error("H2CData/C2HData without data")]
    NoData,
    #[error("header digest mismatch")]
    HeaderDigest,
    #[error("PFV {0} (only 0, format 1.0, exists)")]
    UnsupportedPfv(u16),
    #[error("PDA {0} above 31")]
    BadPda(u8),
    #[error("MAXH2CDATA {0} below 4096 or not a multiple of 4")]
    BadMaxH2cData(u32),
    #[error("DATAL {datal} but the PDU carries {carried} data bytes")]
    DatalMismatch { datal: u32, carried: u32 },
    #[error("R2T for 0 bytes")]
    ZeroR2tl,
    #[error("data {offset}+{len} outside the transfer")]
    OutOfRange { offset: u32, len: u32 },
    #[error("H2CData of {len} bytes, MAXH2CDATA is {max}")]
    LimitExceeded { len: u32, max: u32 },
}

impl PduError {
    pub fn fes(&self) -> Fes {
        use PduError::*;
        match self {
            BeforeIc(_) | RepeatedIc(_) => Fes::PduSequenceError,
            HeaderDigest => Fes::HeaderDigestError,
            OutOfRange { .. } => Fes::DataTransferOutOfRange,
            LimitExceeded { .. } => Fes::DataTransferLimitExceeded,
            UnsupportedPfv(_) => Fes::UnsupportedParameter,
            UnknownType(_) | WrongDirection(_) | BadHlen { .. } | HeaderDigestFlag | DataDigestFlag | SuccessWithoutLast | BadPlen(_) | BadPdo(_) | NoData | BadPda(_) | BadMaxH2cData(_) | DatalMismatch { .. } | ZeroR2tl => {
                Fes::InvalidPduHeaderField
            }
        }
    }

    /// FEI: the offending field's offset for FES 01h and 06h, else 0.
    pub fn fei(&self) -> u32 {
        use PduError::*;
        match self {
            UnknownType(_) | WrongDirection(_) => field::PDU_TYPE,
            HeaderDigestFlag | DataDigestFlag | SuccessWithoutLast => field::FLAGS,
            BadHlen { .. } => field::HLEN,
            BadPdo(_) => field::PDO,
            BadPlen(_) | NoData => field::PLEN,
            UnsupportedPfv(_) => field::PFV,
            BadPda(_) => field::PDA,
            BadMaxH2cData(_) => field::MAXH2CDATA,
            DatalMismatch { .. } | ZeroR2tl => field::DATAL,
            BeforeIc(_) | RepeatedIc(_) | HeaderDigest | OutOfRange { .. } | LimitExceeded { .. } => 0,
        }
    }
}

/// A PDU that cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("this PDU type carries no data")]
    DataNotAllowed,
    #[error("DATAL {datal} but {given} data bytes given")]
    DatalMismatch { datal: u32, given: usize },
    #[error("TermReq error data above 128 bytes")]
    TooMuchErrorData,
    #[error("PDA {0} above 31")]
    BadPda(u8),
    #[error("MAXH2CDATA {0} below 4096 or not a multiple of 4")]
    BadMaxH2cData(u32),
    #[error("PDU longer than PLEN can say")]
    TooLong,
}
