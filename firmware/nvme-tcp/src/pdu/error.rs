//! Why a PDU header was rejected, and the Fatal Error Status (FES) and
//! Field Error Information (FEI) a receiver puts in the H2CTermReq or
//! C2HTermReq it sends before closing the connection (NVMe/TCP
//! Transport 1.0 §3.6.2.4; §3.6.2.5).

use super::kind::PduType;
use super::term::TermReq;

/// Fatal Error Status (H2CTermReq/C2HTermReq FES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum Fes {
    /// A header field is invalid; FEI is the byte offset of the field.
    InvalidHeaderField = 0x01,
    /// A PDU arrived that is not allowed at this point of the protocol.
    SequenceError = 0x02,
    /// The header digest did not match.
    HeaderDigest = 0x03,
    /// Data outside the command's data buffer (DATAO/DATAL vs transfer).
    DataOutOfRange = 0x04,
    /// More data in one H2CData PDU than MAXH2CDATA (named "R2T Limit
    /// Exceeded" in the TP 8000 draft and older Linux headers).
    DataLimitExceeded = 0x05,
    /// A parameter value that is valid but not supported; FEI is the byte
    /// offset of the field.
    UnsupportedParameter = 0x06,
}

impl Fes {
    pub const fn from_u16(v: u16) -> Option<Fes> {
        Some(match v {
            0x01 => Fes::InvalidHeaderField,
            0x02 => Fes::SequenceError,
            0x03 => Fes::HeaderDigest,
            0x04 => Fes::DataOutOfRange,
            0x05 => Fes::DataLimitExceeded,
            0x06 => Fes::UnsupportedParameter,
            _ => return None,
        })
    }
}

/// Byte offsets of header fields, used as FEI.
pub mod offset {
    pub const PDU_TYPE: u32 = 0;
    pub const FLAGS: u32 = 1;
    pub const HLEN: u32 = 2;
    pub const PDO: u32 = 3;
    pub const PLEN: u32 = 4;
    /// ICReq/ICResp PFV.
    pub const PFV: u32 = 8;
    /// ICReq HPDA / ICResp CPDA.
    pub const PDA: u32 = 10;
    /// ICResp MAXH2CDATA.
    pub const MAXH2CDATA: u32 = 12;
    /// H2CData/C2HData DATAL, R2T R2TL.
    pub const DATAL: u32 = 16;
}

/// A rejected PDU header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PduError {
    /// Not a protocol error: the buffer holds fewer than `need` bytes.
    Truncated { need: usize },
    /// PDU-Type is not one NVMe/TCP 1.0 defines.
    BadType(u8),
    /// A PDU type that travels the other way (e.g. a CapsuleCmd at a host).
    WrongDirection(PduType),
    /// Anything but ICReq/ICResp or a TermReq before connection setup.
    IcExpected(PduType),
    /// A second ICReq/ICResp after connection setup.
    IcRepeated(PduType),
    /// HLEN differs from the fixed value for the type.
    BadHlen { pdu_type: PduType, hlen: u8 },
    /// HDGSTF set although header digests are off (or on an IC/TermReq PDU).
    UnexpectedHeaderDigestFlag,
    /// HDGSTF clear although header digests are on.
    MissingHeaderDigestFlag,
    /// DDGSTF set although data digests are off, on a PDU without data,
    /// or on an IC/TermReq PDU.
    UnexpectedDataDigestFlag,
    /// DDGSTF clear on a PDU with data although data digests are on.
    MissingDataDigestFlag,
    /// C2HData with SUCCESS but without LAST_PDU.
    SuccessWithoutLast,
    /// PLEN inconsistent with HLEN, digests or the type's rules.
    BadPlen { plen: u32 },
    /// H2CData/C2HData without any data.
    MissingData,
    /// PDO is not where data may start (0 without data; at or after the
    /// header digest and before the end of the PDU with data).
    BadPdo { pdo: u8 },
    /// PDO is not a multiple of the PDU data alignment we asked for.
    MisalignedPdo { pdo: u8, align: u32 },
    /// The header digest does not match the header.
    HeaderDigest { computed: u32, received: u32 },
    /// DATAL differs from the length of the data the PDU carries.
    DatalMismatch { datal: u32, data_len: u32 },
    /// R2T asking for zero bytes.
    ZeroR2tLength,
    /// PFV other than 0 (PDU format 1.0).
    UnsupportedPfv(u16),
    /// HPDA/CPDA above 31.
    BadPda(u8),
    /// MAXH2CDATA below 4096 or not a multiple of 4.
    BadMaxH2cData(u32),
    /// DATAO/DATAL (or R2TO/R2TL) reach outside the command's data.
    DataOutOfRange { offset: u32, len: u32, limit: u32 },
    /// DATAL of an H2CData PDU exceeds MAXH2CDATA.
    DataLimitExceeded { len: u32, limit: u32 },
}

impl PduError {
    /// The Fatal Error Status to report, or `None` for [`PduError::Truncated`]
    /// (read more bytes; nothing is wrong yet).
    pub fn fes(&self) -> Option<Fes> {
        use PduError::*;
        Some(match self {
            Truncated { .. } => return None,
            IcExpected(_) | IcRepeated(_) => Fes::SequenceError,
            HeaderDigest { .. } => Fes::HeaderDigest,
            DataOutOfRange { .. } => Fes::DataOutOfRange,
            DataLimitExceeded { .. } => Fes::DataLimitExceeded,
            UnsupportedPfv(_) => Fes::UnsupportedParameter,
            BadType(_)
            | WrongDirection(_)
            | BadHlen { .. }
            | UnexpectedHeaderDigestFlag
            | MissingHeaderDigestFlag
            | UnexpectedDataDigestFlag
            | MissingDataDigestFlag
            | SuccessWithoutLast
            | BadPlen { .. }
            | MissingData
            | BadPdo { .. }
            | MisalignedPdo { .. }
            | DatalMismatch { .. }
            | ZeroR2tLength
            | BadPda(_)
            | BadMaxH2cData(_) => Fes::InvalidHeaderField,
        })
    }

    /// Field Error Information: the byte offset of the offending field for
    /// Invalid PDU Header Field and Unsupported Parameter; 0 (reserved)
    /// for the other statuses.
    pub fn fei(&self) -> u32 {
        use PduError::*;
        match self {
            BadType(_) | WrongDirection(_) => offset::PDU_TYPE,
            UnexpectedHeaderDigestFlag
            | MissingHeaderDigestFlag
            | UnexpectedDataDigestFlag
            | MissingDataDigestFlag
            | SuccessWithoutLast => offset::FLAGS,
            BadHlen { .. } => offset::HLEN,
            BadPdo { .. } | MisalignedPdo { .. } => offset::PDO,
            BadPlen { .. } | MissingData => offset::PLEN,
            DatalMismatch { .. } | ZeroR2tLength => offset::DATAL,
            UnsupportedPfv(_) => offset::PFV,
            BadPda(_) => offset::PDA,
            BadMaxH2cData(_) => offset::MAXH2CDATA,
            Truncated { .. }
            | IcExpected(_)
            | IcRepeated(_)
            | HeaderDigest { .. }
            | DataOutOfRange { .. }
            | DataLimitExceeded { .. } => 0,
        }
    }

    /// The TermReq fields to send for this error (`None` for `Truncated`).
    pub fn term_req(&self) -> Option<TermReq> {
        Some(TermReq { fes: self.fes()? as u16, fei: self.fei() })
    }
}

/// Why a header could not be emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EmitError {
    /// The output buffer needs at least `need` bytes.
    BufferTooSmall { need: usize },
    /// This PDU type carries no data but a data length was given.
    DataNotAllowed,
    /// H2CData/C2HData with DATAL 0.
    MissingData,
    /// The data length given differs from the PDU's DATAL.
    DatalMismatch { datal: u32, data_len: u32 },
    /// PLEN would not fit in 32 bits.
    TooLong,
    /// More than 128 bytes of TermReq error data.
    TooMuchErrorData,
    /// C2HData with SUCCESS but not LAST.
    SuccessWithoutLast,
    /// HPDA/CPDA (or the configured alignment) above 31.
    BadPda(u8),
    /// MAXH2CDATA below 4096 or not a multiple of 4.
    BadMaxH2cData(u32),
    /// R2T with R2TL 0.
    ZeroR2tLength,
}
