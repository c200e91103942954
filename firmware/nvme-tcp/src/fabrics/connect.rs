//! The Connect command (NVMe Base 2.0 §6.3; NVMe over Fabrics 1.1 §3.3):
//! its SQE, its 1024 bytes of in-capsule data, and its response.

use dpu_nvme::{Cqe, Sqe, Status};

use super::nqn::{read_nqn, write_nqn};
use super::{expect, fabrics_sqe, FabricsError, FcType};
use crate::le::{put_u16, u16_at};
use crate::sgl::Dptr;

/// Size of the Connect data.
pub const CONNECT_DATA_LEN: usize = 1024;
/// CNTLID in Connect data asking for any controller (dynamic model).
pub const CNTLID_DYNAMIC: u16 = 0xffff;
/// CNTLID in Connect data asking for any controller (static model).
pub const CNTLID_STATIC_ANY: u16 = 0xfffe;

/// Byte offsets used as IPO (Invalid Parameter Offset) in a Connect
/// response: in the SQE (`sqe_*`) or in the Connect data (`data_*`).
pub mod offset {
    pub const SQE_RECFMT: u16 = 40;
    pub const SQE_QID: u16 = 42;
    pub const SQE_SQSIZE: u16 = 44;
    pub const SQE_CATTR: u16 = 46;
    pub const SQE_KATO: u16 = 48;
    pub const DATA_HOSTID: u16 = 0;
    pub const DATA_CNTLID: u16 = 16;
    pub const DATA_SUBNQN: u16 = 256;
    pub const DATA_HOSTNQN: u16 = 512;
}

/// Connect-specific status codes (SCT 1h; NVMe Base 2.0 §6.3, "Connect
/// Command Specific Status Values").
pub mod status {
    use dpu_nvme::Status;
    pub const INCOMPATIBLE_FORMAT: Status = Status::specific(0x80);
    pub const CONTROLLER_BUSY: Status = Status::specific(0x81);
    pub const INVALID_PARAMETERS: Status = Status::specific(0x82);
    pub const RESTART_DISCOVERY: Status = Status::specific(0x83);
    pub const INVALID_HOST: Status = Status::specific(0x84);
}

/// Connect command fields (SQE bytes 40-51).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectCmd {
    /// Record Format (bytes 41:40): 0.
    pub recfmt: u16,
    /// Queue to create: 0 = admin queue (bytes 43:42).
    pub qid: u16,
    /// Submission queue size, 0's based (bytes 45:44).
    pub sqsize: u16,
    /// Connect Attributes (byte 46; bit 2 = disable SQ flow control).
    pub cattr: u8,
    /// Keep Alive Timeout in milliseconds (bytes 51:48); 0 = none.
    pub kato: u32,
}

/// CATTR bit 2: the host asks to disable SQ flow control (SQHD updates).
pub const CATTR_DISABLE_SQ_FLOW_CONTROL: u8 = 1 << 2;

impl ConnectCmd {
    /// The SQE: FCTYPE 01h, PSDT SGL, SGL1 = in-capsule Data Block
    /// (type 0h, subtype 1h offset) of 1024 bytes at offset 0.
    pub fn to_sqe(&self, cid: u16) -> Sqe {
        let mut s = fabrics_sqe(cid, FcType::Connect, Dptr::in_capsule(CONNECT_DATA_LEN as u32));
        s.0[40..42].copy_from_slice(&self.recfmt.to_le_bytes());
        s.0[42..44].copy_from_slice(&self.qid.to_le_bytes());
        s.0[44..46].copy_from_slice(&self.sqsize.to_le_bytes());
        s.0[46] = self.cattr;
        s.set_dw(12, self.kato);
        s
    }

    /// Decodes a Connect SQE (target side). SGL1 is checked separately
    /// with [`Dptr::of`].
    pub fn parse(sqe: &Sqe) -> Result<ConnectCmd, FabricsError> {
        expect(sqe, FcType::Connect)?;
        let b = &sqe.0;
        Ok(ConnectCmd {
            recfmt: u16_at(b, 40),
            qid: u16_at(b, 42),
            sqsize: u16_at(b, 44),
            cattr: b[46],
            kato: sqe.dw(12),
        })
    }
}

/// Connect data (NVMe Base 2.0 §6.3, "Connect Command - Data").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectData<'a> {
    /// Host Identifier (bytes 15:0), the same on every connection of a host.
    pub hostid: [u8; 16],
    /// Controller ID (bytes 17:16): [`CNTLID_DYNAMIC`] for the admin queue
    /// on a dynamic controller; the admin queue's CNTLID for I/O queues.
    pub cntlid: u16,
    /// NVM subsystem NQN (bytes 511:256).
    pub subnqn: &'a str,
    /// Host NQN (bytes 767:512).
    pub hostnqn: &'a str,
}

impl<'a> ConnectData<'a> {
    /// Writes the 1024 bytes into `out[..1024]` (reserved bytes zeroed).
    pub fn emit(&self, out: &mut [u8]) -> Result<(), FabricsError> {
        let out = out.get_mut(..CONNECT_DATA_LEN).ok_or(FabricsError::Truncated { need: CONNECT_DATA_LEN })?;
        super::check_nqn(self.subnqn)?;
        super::check_nqn(self.hostnqn)?;
        out.fill(0);
        out[..16].copy_from_slice(&self.hostid);
        put_u16(out, 16, self.cntlid);
        write_nqn(&mut out[256..512], self.subnqn)?;
        write_nqn(&mut out[512..768], self.hostnqn)?;
        Ok(())
    }

    /// Parses Connect data (target side); `b` holds at least 1024 bytes.
    pub fn parse(b: &'a [u8]) -> Result<ConnectData<'a>, FabricsError> {
        let b = b.get(..CONNECT_DATA_LEN).ok_or(FabricsError::Truncated { need: CONNECT_DATA_LEN })?;
        let mut hostid = [0u8; 16];
        hostid.copy_from_slice(&b[..16]);
        Ok(ConnectData {
            hostid,
            cntlid: u16_at(b, 16),
            subnqn: read_nqn(&b[256..512])?,
            hostnqn: read_nqn(&b[512..768])?,
        })
    }
}

/// What a Connect completion says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectResponse {
    /// Success: DW0 bits 15:0 are the controller ID; bits 31:16 carry the
    /// authentication requirements (AUTHREQ; Linux: bit 17 ATR, bit 18
    /// ASCR), 0 when no in-band authentication is needed.
    Accepted { cntlid: u16, authreq: u16 },
    /// Connect Invalid Parameters (SCT 1h, SC 82h): DW0 bits 15:0 IPO, the
    /// byte offset of the bad field, in the Connect data when IATTR
    /// (bits 23:16) bit 0 is set, else in the SQE.
    InvalidParameter { in_data: bool, offset: u16 },
    /// Any other failure; DW0 is reserved.
    Failed(Status),
}

impl ConnectResponse {
    /// Decodes a Connect completion (host side).
    pub fn from_cqe(c: &Cqe) -> ConnectResponse {
        if c.status.is_success() {
            return ConnectResponse::Accepted { cntlid: c.dw0 as u16, authreq: (c.dw0 >> 16) as u16 };
        }
        let s = c.status;
        if s.sct == status::INVALID_PARAMETERS.sct && s.sc == status::INVALID_PARAMETERS.sc {
            return ConnectResponse::InvalidParameter { in_data: c.dw0 & (1 << 16) != 0, offset: c.dw0 as u16 };
        }
        ConnectResponse::Failed(s)
    }

    pub fn status(&self) -> Status {
        match *self {
            ConnectResponse::Accepted { .. } => Status::SUCCESS,
            ConnectResponse::InvalidParameter { .. } => status::INVALID_PARAMETERS,
            ConnectResponse::Failed(s) => s,
        }
    }

    /// CQE DW0 for this response.
    pub fn dw0(&self) -> u32 {
        match *self {
            ConnectResponse::Accepted { cntlid, authreq } => u32::from(cntlid) | u32::from(authreq) << 16,
            ConnectResponse::InvalidParameter { in_data, offset } => u32::from(offset) | u32::from(in_data) << 16,
            ConnectResponse::Failed(_) => 0,
        }
    }

    /// The completion a target sends (target side). `sq_head` is SQHD of
    /// the new queue; SQID is the queue the Connect created.
    pub fn to_cqe(&self, cid: u16, sq_id: u16, sq_head: u16) -> Cqe {
        Cqe { dw0: self.dw0(), dw1: 0, sq_head, sq_id, cid, status: self.status() }
    }

    /// Whether this refusal of a Connect that asked for `cattr` was for
    /// the SQ flow control attribute (host side), so the host may ask
    /// again without it: Connect Invalid Parameters whose IPO is CATTR
    /// (SQE byte 46; NVMe over Fabrics 1.1 §3.3), or Invalid Field in
    /// Command (a controller that refuses reserved bits without naming
    /// the field). Always `false` when `cattr` did not disable it.
    pub fn refuses_sq_flow_disable(&self, cattr: u8) -> bool {
        cattr & CATTR_DISABLE_SQ_FLOW_CONTROL != 0
            && match *self {
                ConnectResponse::InvalidParameter { in_data: false, offset: o } => o == offset::SQE_CATTR,
                ConnectResponse::Failed(st) => st.sct == Status::INVALID_FIELD.sct && st.sc == Status::INVALID_FIELD.sc,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::DISCOVERY_NQN;
    use crate::cqe::{cqe_bytes, parse_cqe};

    #[test]
    fn refusals_of_the_sq_flow_attribute_are_recognised() {
        let off = CATTR_DISABLE_SQ_FLOW_CONTROL;
        let at = |in_data, o| ConnectResponse::InvalidParameter { in_data, offset: o };
        assert!(at(false, offset::SQE_CATTR).refuses_sq_flow_disable(off));
        assert!(ConnectResponse::Failed(Status::INVALID_FIELD).refuses_sq_flow_disable(off));
        // Not without the attribute asked for, nor another field or status.
        assert!(!at(false, offset::SQE_CATTR).refuses_sq_flow_disable(0));
        assert!(!at(false, offset::SQE_SQSIZE).refuses_sq_flow_disable(off));
        assert!(!at(true, offset::SQE_CATTR).refuses_sq_flow_disable(off), "byte 46 of the data is not CATTR");
        assert!(!ConnectResponse::Failed(status::INVALID_HOST).refuses_sq_flow_disable(off));
        assert!(!ConnectResponse::Failed(status::CONTROLLER_BUSY).refuses_sq_flow_disable(off));
        assert!(!ConnectResponse::Accepted { cntlid: 1, authreq: 0 }.refuses_sq_flow_disable(off));
        // As decoded from a CQE.
        let c = at(false, offset::SQE_CATTR).to_cqe(9, 1, 0);
        assert!(ConnectResponse::from_cqe(&c).refuses_sq_flow_disable(off));
    }

    #[test]
    fn connect_sqe_layout() {
        let c = ConnectCmd { recfmt: 0, qid: 3, sqsize: 127, cattr: CATTR_DISABLE_SQ_FLOW_CONTROL, kato: 120_000 };
        let s = c.to_sqe(0xabcd);
        let mut want = [0u8; 64];
        want[0] = 0x7f; // OPC
        want[1] = 0x40; // PSDT = 01b (SGL), the Linux "SGL flag"
        want[2] = 0xcd; // CID
        want[3] = 0xab;
        want[4] = 0x01; // FCTYPE Connect
                        // SGL1 bytes 39:24: address/offset 0, length 1024, type 0 subtype 1.
        want[24 + 8] = 0x00;
        want[24 + 9] = 0x04;
        want[39] = 0x01;
        want[42] = 3; // QID
        want[44] = 127; // SQSIZE
        want[46] = 0x04; // CATTR
        want[48..52].copy_from_slice(&[0xc0, 0xd4, 0x01, 0x00]); // KATO 120000
        assert_eq!(s.0, want);
        assert_eq!(ConnectCmd::parse(&s), Ok(c));
        assert_eq!(Dptr::of(&s), Ok(Dptr::in_capsule(1024)));
    }

    #[test]
    fn parse_rejects_other_commands() {
        let mut s = ConnectCmd { recfmt: 0, qid: 0, sqsize: 31, cattr: 0, kato: 0 }.to_sqe(1);
        s.0[4] = 0x04;
        assert_eq!(ConnectCmd::parse(&s), Err(FabricsError::NotThisCommand));
        s.0[4] = 0x01;
        s.0[0] = 0x06;
        assert_eq!(ConnectCmd::parse(&s), Err(FabricsError::NotThisCommand));
    }

    #[test]
    fn connect_data_layout() {
        let hostid: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
        let d = ConnectData {
            hostid,
            cntlid: CNTLID_DYNAMIC,
            subnqn: DISCOVERY_NQN,
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:1",
        };
        let mut b = [0x55u8; 1024];
        d.emit(&mut b).unwrap();
        assert_eq!(&b[..16], &hostid);
        assert_eq!(&b[16..18], &[0xff, 0xff]);
        assert!(b[18..256].iter().all(|&x| x == 0), "reserved 255:18");
        assert_eq!(&b[256..256 + DISCOVERY_NQN.len()], DISCOVERY_NQN.as_bytes());
        assert!(b[256 + DISCOVERY_NQN.len()..512].iter().all(|&x| x == 0));
        assert_eq!(&b[512..545], b"nqn.2014-08.org.nvmexpress:uuid:1");
        assert!(b[545..1024].iter().all(|&x| x == 0), "NUL padding and reserved 1023:768");
        assert_eq!(ConnectData::parse(&b), Ok(d));
        assert_eq!(ConnectData::parse(&b[..1023]), Err(FabricsError::Truncated { need: 1024 }));
        let mut short = [0u8; 100];
        assert_eq!(d.emit(&mut short), Err(FabricsError::Truncated { need: 1024 }));
    }

    #[test]
    fn connect_data_with_unterminated_nqn_is_rejected() {
        let mut b = [0u8; 1024];
        ConnectData { hostid: [0; 16], cntlid: 1, subnqn: "nqn.a", hostnqn: "nqn.b" }.emit(&mut b).unwrap();
        b[512..768].fill(b'h');
        assert_eq!(ConnectData::parse(&b), Err(FabricsError::BadNqn));
    }

    #[test]
    fn responses_decode_and_round_trip() {
        let ok = Cqe { dw0: 0x0000_0007, dw1: 0, sq_head: 1, sq_id: 0, cid: 9, status: Status::SUCCESS };
        assert_eq!(
            ConnectResponse::from_cqe(&parse_cqe(&cqe_bytes(&ok))),
            ConnectResponse::Accepted { cntlid: 7, authreq: 0 }
        );
        // Linux nvmet: invalid CNTLID in the Connect data => IATTR 1, IPO 16.
        let bad = Cqe { dw0: 0x0001_0010, dw1: 0, sq_head: 0, sq_id: 0, cid: 9, status: status::INVALID_PARAMETERS };
        let r = ConnectResponse::from_cqe(&bad);
        assert_eq!(r, ConnectResponse::InvalidParameter { in_data: true, offset: offset::DATA_CNTLID });
        assert_eq!(r.to_cqe(9, 0, 0), bad);
        let sqe_bad = Cqe { dw0: u32::from(offset::SQE_SQSIZE), ..bad };
        assert_eq!(
            ConnectResponse::from_cqe(&sqe_bad),
            ConnectResponse::InvalidParameter { in_data: false, offset: 44 }
        );
        let busy = Cqe { dw0: 0x1234, status: status::CONTROLLER_BUSY, ..bad };
        assert_eq!(ConnectResponse::from_cqe(&busy), ConnectResponse::Failed(status::CONTROLLER_BUSY));
        assert_eq!(ConnectResponse::Failed(status::INVALID_HOST).to_cqe(1, 0, 0).dw0, 0);
    }
}
