//! Command and response capsules: CapsuleCmd (NVMe/TCP Transport 1.0
//! §3.6.2.6) carries a 64-byte SQE and optional in-capsule
//! data placed by PDO; CapsuleResp (§3.6.2.7) carries a 16-byte
//! CQE and never data.

/// Command Capsule header fields: the submission queue entry. In-capsule
/// data, if any, is described by the [`super::DataSpan`] of the parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapsuleCmd {
    pub sqe: [u8; 64],
}

/// Response Capsule header fields: the completion queue entry (decode it
/// with [`crate::cqe::parse_cqe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapsuleResp {
    pub cqe: [u8; 16],
}

impl CapsuleCmd {
    pub(crate) fn decode(h: &[u8]) -> CapsuleCmd {
        let mut sqe = [0u8; 64];
        sqe.copy_from_slice(&h[8..72]);
        CapsuleCmd { sqe }
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        Self::encode_sqe(&self.sqe, h);
    }

    /// Writes `sqe` into the SQE field of a CapsuleCmd header `h`.
    pub(crate) fn encode_sqe(sqe: &[u8; 64], h: &mut [u8]) {
        h[8..72].copy_from_slice(sqe);
    }
}

impl CapsuleResp {
    pub(crate) fn decode(h: &[u8]) -> CapsuleResp {
        let mut cqe = [0u8; 16];
        cqe.copy_from_slice(&h[8..24]);
        CapsuleResp { cqe }
    }

    pub(crate) fn encode(&self, h: &mut [u8]) {
        h[8..24].copy_from_slice(&self.cqe);
    }
}
