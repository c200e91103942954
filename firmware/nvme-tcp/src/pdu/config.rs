//! What a receiver or sender must know about its connection to parse or
//! build PDU headers: the digests negotiated by ICReq/ICResp and the PDU
//! data alignment (NVMe/TCP Transport 1.0 §3.6.2.2, §3.6.2.3).

use super::kind::Role;

/// Which digests are in use on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Digests {
    /// HDGST on every PDU type that supports it.
    pub header: bool,
    /// DDGST after the data of every PDU that carries data.
    pub data: bool,
}

impl Digests {
    pub const NONE: Digests = Digests { header: false, data: false };
    pub const BOTH: Digests = Digests { header: true, data: true };
}

/// Largest HPDA/CPDA value (0's based dwords: 128-byte alignment).
pub const MAX_PDA: u8 = 31;

/// Bytes of PDU data alignment for an HPDA/CPDA value: (PDA + 1) * 4.
pub const fn pda_bytes(pda: u8) -> u32 {
    (pda as u32 + 1) * 4
}

/// Receive-side view of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RxConfig {
    /// Our end: decides which direction of PDUs we accept.
    pub role: Role,
    /// ICReq/ICResp exchange finished. Before it only IC and TermReq PDUs
    /// are accepted; after it IC PDUs are a sequence error.
    pub ic_done: bool,
    /// Digests in force (ignored for IC and TermReq PDUs).
    pub digests: Digests,
    /// The PDA we asked the peer for (HPDA in our ICReq when we are the
    /// host, CPDA in our ICResp when we are the controller). When non-zero,
    /// PDO of data-bearing PDUs must be a multiple of `pda_bytes(pda)`.
    pub pda: u8,
}

impl RxConfig {
    /// Before connection setup: expect the IC PDU for this role.
    pub const fn awaiting_ic(role: Role) -> RxConfig {
        RxConfig { role, ic_done: false, digests: Digests::NONE, pda: 0 }
    }

    /// After connection setup, with what was negotiated.
    pub const fn established(role: Role, digests: Digests, pda: u8) -> RxConfig {
        RxConfig { role, ic_done: true, digests, pda }
    }
}

/// Send-side view of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TxConfig {
    /// Digests in force (ignored for IC and TermReq PDUs).
    pub digests: Digests,
    /// The PDA the peer asked for (CPDA from its ICResp when we are the
    /// host, HPDA from its ICReq when we are the controller): data starts
    /// at the next multiple of `pda_bytes(pda)` after the header digest.
    pub pda: u8,
}

impl TxConfig {
    /// No digests, no alignment padding.
    pub const PLAIN: TxConfig = TxConfig { digests: Digests::NONE, pda: 0 };
}
