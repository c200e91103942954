//! Decoding the 16-byte completion queue entry a CapsuleResp carries
//! (NVMe Base 2.0 §4.6, figure 91; status field §4.6.1.2), into the
//! `dpu-nvme` [`Cqe`] the emulated controller side already uses. Over
//! fabrics there is no completion queue in memory and the phase tag has
//! no meaning, so it is dropped.

use dpu_nvme::{Cqe, Status};

use crate::le::{u16_at, u32_at};

/// Decodes a CQE.
pub fn parse_cqe(b: &[u8; 16]) -> Cqe {
    Cqe {
        dw0: u32_at(b, 0),
        dw1: u32_at(b, 4),
        sq_head: u16_at(b, 8),
        sq_id: u16_at(b, 10),
        cid: u16_at(b, 12),
        status: status_from_field(u16_at(b, 14) >> 1),
    }
}

/// Decodes the 15-bit status field (DW3 bits 31:17, i.e. the upper 16
/// bits shifted right by one): SC in bits 7:0, SCT in 10:8, DNR in 14.
/// CRD (12:11) and More (13) are not kept.
pub fn status_from_field(field: u16) -> Status {
    Status { sc: field as u8, sct: ((field >> 8) & 7) as u8, dnr: field & (1 << 14) != 0 }
}

/// Encodes a CQE for a CapsuleResp (phase tag 0).
pub fn cqe_bytes(c: &Cqe) -> [u8; 16] {
    c.bytes(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_dpu_nvme_emits() {
        for status in [
            Status::SUCCESS,
            Status::INVALID_FIELD,
            Status::INVALID_QID,
            Status::COMPARE_FAILURE,
            Status::DATA_TRANSFER_ERROR,
        ] {
            let c = Cqe { dw0: 0xdead_beef, dw1: 0x0102_0304, sq_head: 31, sq_id: 2, cid: 0x1234, status };
            assert_eq!(parse_cqe(&cqe_bytes(&c)), c);
            assert_eq!(parse_cqe(&c.bytes(true)), c, "phase ignored");
        }
    }

    #[test]
    fn linux_connect_failure_0x4002() {
        // Linux reports status 0x4002 for a Connect without the SGL flag:
        // DNR set, SCT 0, SC 02h (Invalid Field in Command).
        let mut b = [0u8; 16];
        b[14..16].copy_from_slice(&(0x4002u16 << 1).to_le_bytes());
        let c = parse_cqe(&b);
        assert_eq!(c.status, Status::INVALID_FIELD);
        assert!(c.status.dnr);
    }
}
