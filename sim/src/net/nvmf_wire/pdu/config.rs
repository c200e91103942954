//! What a connection negotiated with ICReq/ICResp (NVMe/TCP Transport
//! 1.0 §3.6.2.2 "Initialize Connection Request PDU", §3.6.2.3 "Initialize
//! Connection Response PDU"): digests and PDU data alignment, as the
//! receiver and the sender of PDUs need them.

use super::kind::Role;

/// Digests in force on a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub header: bool,
    pub data: bool,
}

impl Digests {
    pub const NONE: Digests = Digests { header: false, data: false };
    pub const BOTH: Digests = Digests { header: true, data: true };
}

/// Largest HPDA/CPDA (0's based dwords: 128 bytes).
pub const MAX_PDA: u8 = 31;

/// Bytes of alignment an HPDA/CPDA value asks for: (PDA + 1) x 4.
pub fn pda_bytes(pda: u8) -> usize {
    (usize::from(pda) + 1) * 4
}

/// The receiving end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxConfig {
    /// Who we are: PDUs must come from the other role.
    pub role: Role,
    /// ICReq/ICResp were exchanged.
    pub ic_done: bool,
    pub digests: Digests,
    /// The alignment we asked for (our HPDA or CPDA); 0 = none checked.
    pub pda: u8,
}

impl RxConfig {
    /// Before ICReq/ICResp.
    pub fn awaiting_ic(role: Role) -> RxConfig {
        RxConfig { role, ic_done: false, digests: Digests::NONE, pda: 0 }
    }

    pub fn established(role: Role, digests: Digests, pda: u8) -> RxConfig {
        RxConfig { role, ic_done: true, digests, pda }
    }
}

/// The sending end of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxConfig {
    pub digests: Digests,
    /// The alignment the peer asked for (its HPDA or CPDA).
    pub pda: u8,
}
