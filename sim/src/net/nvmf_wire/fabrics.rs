//! Fabrics commands (NVMe over Fabrics 1.1 §3 "Fabrics Command Set" and
//! §6 "Fabrics Commands"; Linux `struct nvmf_common_command`,
//! `nvmf_connect_command`, `nvmf_connect_data`,
//! `nvmf_property_get_command`, `nvmf_property_set_command`):
//!
//! * every Fabrics command: opcode 7Fh, CID 3:2, FCTYPE byte 4, SGL1
//!   39:24, type-specific bytes 63:40;
//! * Connect (FCTYPE 01h): RECFMT 41:40, QID 43:42, SQSIZE 45:44 (0's
//!   based), CATTR 46, KATO 51:48 (ms); 1024 bytes of data: HOSTID 15:0,
//!   CNTLID 17:16, SUBNQN 511:256, HOSTNQN 767:512 (NUL terminated);
//!   response DW0: CNTLID 15:0 (and AUTHREQ 31:16) on success, IPO 15:0
//!   and IATTR 23:16 with status Connect Invalid Parameters;
//! * Property Set (00h): ATTRIB 40 (bits 2:0 size: 0 = 4 bytes, 1 = 8),
//!   OFST 47:44, VALUE 55:48; Property Get (04h): ATTRIB 40, OFST 47:44,
//!   value in DW0 (and DW1 for 8 bytes).

use super::bytes::{nul_terminated, put, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at};
use super::command::Command;
use super::sgl::Sgl;

/// Opcode of every Fabrics command.
pub const OPC_FABRICS: u8 = 0x7f;
/// Bytes of Connect data.
pub const CONNECT_DATA_LEN: usize = 1024;
/// Connect CNTLID asking for any controller of a dynamic subsystem.
pub const CNTLID_DYNAMIC: u16 = 0xffff;
/// NQN fields are 256 bytes; an NQN is at most 223 bytes plus a NUL.
pub const NQN_FIELD_LEN: usize = 256;
pub const NQN_MAX_LEN: usize = 223;
/// The well-known NQN of a discovery subsystem.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// Fabrics Command Types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FcType {
    PropertySet,
    Connect,
    PropertyGet,
    AuthenticationSend,
    AuthenticationReceive,
    Disconnect,
    Other(u8),
}

impl FcType {
    pub fn from_u8(v: u8) -> FcType {
        match v {
            0x00 => FcType::PropertySet,
            0x01 => FcType::Connect,
            0x04 => FcType::PropertyGet,
            0x05 => FcType::AuthenticationSend,
            0x06 => FcType::AuthenticationReceive,
            0x08 => FcType::Disconnect,
            v => FcType::Other(v),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            FcType::PropertySet => 0x00,
            FcType::Connect => 0x01,
            FcType::PropertyGet => 0x04,
            FcType::AuthenticationSend => 0x05,
            FcType::AuthenticationReceive => 0x06,
            FcType::Disconnect => 0x08,
            FcType::Other(v) => v,
        }
    }

    /// The Fabrics command type of `c`, when it is a Fabrics command.
    pub fn of(c: &Command) -> Option<FcType> {
        (c.opcode() == OPC_FABRICS).then(|| FcType::from_u8(c.0[4]))
    }
}

/// A Fabrics command with `fctype` and `sgl`.
fn fabrics_command(cid: u16, fctype: FcType, sgl: Sgl) -> Command {
    let mut c = Command::new(OPC_FABRICS, cid);
    c.0[4] = fctype.code();
    c.set_sgl(sgl);
    c
}

/// A Disconnect command (FCTYPE 08h, NVMe Base 2.0 §6.4): ends the
/// queue it is sent on.
pub fn disconnect_command(cid: u16) -> Command {
    fabrics_command(cid, FcType::Disconnect, Sgl::NONE)
}

/// Connect command fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect {
    pub recfmt: u16,
    pub qid: u16,
    /// Entries in the submission queue, 0's based.
    pub sqsize: u16,
    pub cattr: u8,
    /// Keep Alive Timeout in milliseconds (admin queue).
    pub kato: u32,
}

impl Connect {
    pub fn parse(c: &Command) -> Option<Connect> {
        if FcType::of(c)? != FcType::Connect {
            return None;
        }
        Some(Connect { recfmt: u16_at(&c.0, 40)?, qid: u16_at(&c.0, 42)?, sqsize: u16_at(&c.0, 44)?, cattr: c.0[46], kato: u32_at(&c.0, 48)? })
    }

    /// The command, with its 1024 bytes of data in the capsule.
    pub fn to_command(&self, cid: u16) -> Command {
        let mut c = fabrics_command(cid, FcType::Connect, Sgl::in_capsule(CONNECT_DATA_LEN as u32));
        put_u16(&mut c.0, 40, self.recfmt);
        put_u16(&mut c.0, 42, self.qid);
        put_u16(&mut c.0, 44, self.sqsize);
        c.0[46] = self.cattr;
        put_u32(&mut c.0, 48, self.kato);
        c
    }
}

/// Connect data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectData {
    pub hostid: [u8; 16],
    pub cntlid: u16,
    pub subnqn: String,
    pub hostnqn: String,
}

/// Why Connect data is unusable: the byte offset of the field (what a
/// target reports as IPO with IATTR 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Connect data: bad field at byte {0}")]
pub struct BadConnectData(pub u16);

impl ConnectData {
    pub fn parse(b: &[u8]) -> Result<ConnectData, BadConnectData> {
        let b = b.get(..CONNECT_DATA_LEN).ok_or(BadConnectData(0))?;
        // An NQN is at most 223 bytes (NVMe Base 2.0 §4.5): a longer one
        // is refused as `to_bytes` refuses it.
        let nqn = |at: usize| {
            nul_terminated(&b[at..at + NQN_FIELD_LEN]).filter(|s| s.len() <= NQN_MAX_LEN).map(str::to_string).ok_or(BadConnectData(at as u16))
        };
        let mut hostid = [0u8; 16];
        hostid.copy_from_slice(&b[..16]);
        Ok(ConnectData { hostid, cntlid: u16_at(b, 16).unwrap_or(0), subnqn: nqn(256)?, hostnqn: nqn(512)? })
    }

    /// The 1024 bytes; `None` when an NQN is longer than 223 bytes.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        if self.subnqn.len() > NQN_MAX_LEN || self.hostnqn.len() > NQN_MAX_LEN {
            return None;
        }
        let mut b = vec![0u8; CONNECT_DATA_LEN];
        b[..16].copy_from_slice(&self.hostid);
        put_u16(&mut b, 16, self.cntlid);
        put(&mut b, 256, self.subnqn.as_bytes());
        put(&mut b, 512, self.hostnqn.as_bytes());
        Some(b)
    }
}

/// The Connect response's DW0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectResponse {
    Accepted { cntlid: u16, authreq: u16 },
    /// With status Connect Invalid Parameters: the offset of the bad field
    /// (IPO), in the data when `in_data` (IATTR bit 0), else in the SQE.
    InvalidParameter { in_data: bool, offset: u16 },
}

impl ConnectResponse {
    pub fn dw0(&self) -> u32 {
        match *self {
            ConnectResponse::Accepted { cntlid, authreq } => u32::from(cntlid) | u32::from(authreq) << 16,
            ConnectResponse::InvalidParameter { in_data, offset } => u32::from(offset) | u32::from(in_data) << 16,
        }
    }
}

/// Controller property offsets (NVMe Base 2.0 "Controller Registers";
/// over fabrics read with Property Get).
pub mod property {
    pub const CAP: u32 = 0x00;
    pub const VS: u32 = 0x08;
    pub const CC: u32 = 0x14;
    pub const CSTS: u32 = 0x1c;
    pub const NSSR: u32 = 0x20;
}

/// Property Get / Property Set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyCommand {
    Get { eight_bytes: bool, offset: u32 },
    Set { eight_bytes: bool, offset: u32, value: u64 },
}

impl PropertyCommand {
    /// Decodes a Property Get/Set; `None` for other commands or a
    /// reserved size. A 4-byte Set takes the low dword of VALUE.
    pub fn parse(c: &Command) -> Option<PropertyCommand> {
        let eight_bytes = match c.0[40] & 7 {
            0 => false,
            1 => true,
            _ => return None,
        };
        let offset = u32_at(&c.0, 44)?;
        match FcType::of(c)? {
            FcType::PropertyGet => Some(PropertyCommand::Get { eight_bytes, offset }),
            FcType::PropertySet => {
                let value = if eight_bytes { u64_at(&c.0, 48)? } else { u64::from(u32_at(&c.0, 48)?) };
                Some(PropertyCommand::Set { eight_bytes, offset, value })
            }
            _ => None,
        }
    }

    pub fn to_command(&self, cid: u16) -> Command {
        let (fctype, eight, offset, value) = match *self {
            PropertyCommand::Get { eight_bytes, offset } => (FcType::PropertyGet, eight_bytes, offset, None),
            PropertyCommand::Set { eight_bytes, offset, value } => (FcType::PropertySet, eight_bytes, offset, Some(value)),
        };
        let mut c = fabrics_command(cid, fctype, Sgl::NONE);
        c.0[40] = u8::from(eight);
        put_u32(&mut c.0, 44, offset);
        if let Some(v) = value {
            put_u64(&mut c.0, 48, v);
        }
        c
    }

    /// Response DW0/DW1 of a Property Get of `value`: a 4-byte property
    /// in DW0, an 8-byte one in DW0 (low) and DW1 (high).
    pub fn get_response(eight_bytes: bool, value: u64) -> (u32, u32) {
        if eight_bytes {
            (value as u32, (value >> 32) as u32)
        } else {
            (value as u32, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_command_byte_by_byte() {
        // As Linux `nvmf_connect_admin_queue` builds it: CID 0, SQSIZE 31,
        // KATO 5000 ms, in-capsule SGL of 1024 bytes, PSDT 01b.
        let mut want = [0u8; 64];
        want[0] = 0x7f;
        want[1] = 0x40;
        want[4] = 0x01;
        want[33] = 0x04; // SGL length 1024 (bytes 35:32)
        want[39] = 0x01; // Data Block, Offset subtype
        want[44] = 31;
        want[48..52].copy_from_slice(&5000u32.to_le_bytes());
        let c = Connect { recfmt: 0, qid: 0, sqsize: 31, cattr: 0, kato: 5000 };
        assert_eq!(c.to_command(0).0, want);
        assert_eq!(Connect::parse(&Command(want)), Some(c));
        let mut other = want;
        other[4] = 0x04;
        assert_eq!(Connect::parse(&Command(other)), None);
        assert_eq!(Command(want).sgl(), Some(Sgl::in_capsule(1024)));
    }

    #[test]
    fn connect_data_byte_by_byte() {
        let mut b = vec![0u8; 1024];
        b[..16].copy_from_slice(&[0xab; 16]);
        b[16..18].copy_from_slice(&[0xff, 0xff]);
        b[256..256 + DISCOVERY_NQN.len()].copy_from_slice(DISCOVERY_NQN.as_bytes());
        b[512..517].copy_from_slice(b"nqn.h");
        let d = ConnectData::parse(&b).unwrap();
        assert_eq!(d, ConnectData { hostid: [0xab; 16], cntlid: CNTLID_DYNAMIC, subnqn: DISCOVERY_NQN.into(), hostnqn: "nqn.h".into() });
        assert_eq!(d.to_bytes().unwrap(), b);
        b[512..768].fill(b'x');
        assert_eq!(ConnectData::parse(&b), Err(BadConnectData(512)), "HOSTNQN without NUL");
        assert_eq!(ConnectData::parse(&b[..1000]), Err(BadConnectData(0)));
        let long = ConnectData { subnqn: "n".repeat(224), ..d };
        assert!(long.to_bytes().is_none());
        // 224 bytes and a NUL fit the field but are no NQN: refused on parse too.
        b[512..768].fill(0);
        b[512..512 + 224].fill(b'n');
        assert_eq!(ConnectData::parse(&b), Err(BadConnectData(512)), "HOSTNQN of 224 bytes");
        b[512 + 223] = 0;
        assert!(ConnectData::parse(&b).is_ok(), "223 bytes is the longest NQN");
    }

    #[test]
    fn properties_and_responses() {
        // Property Set CC = 0x00460001 (4 bytes), as Linux enables a controller.
        let c = PropertyCommand::Set { eight_bytes: false, offset: property::CC, value: 0x0046_0001 }.to_command(3);
        assert_eq!((c.0[0], c.0[4], c.0[40], c.0[44]), (0x7f, 0x00, 0, 0x14));
        assert_eq!(&c.0[48..56], &[0x01, 0x00, 0x46, 0, 0, 0, 0, 0]);
        assert_eq!(c.0[39], 0x5a, "no data: transport SGL of length 0");
        assert_eq!(PropertyCommand::parse(&c), Some(PropertyCommand::Set { eight_bytes: false, offset: 0x14, value: 0x0046_0001 }));
        // Property Get CAP, 8 bytes.
        let g = PropertyCommand::Get { eight_bytes: true, offset: property::CAP }.to_command(4);
        assert_eq!((g.0[4], g.0[40]), (0x04, 1));
        assert_eq!(PropertyCommand::parse(&g), Some(PropertyCommand::Get { eight_bytes: true, offset: 0 }));
        let mut odd = g;
        odd.0[40] = 2;
        assert_eq!(PropertyCommand::parse(&odd), None, "size 010b is reserved");
        let mut wide = c;
        wide.0[52] = 0xff;
        assert_eq!(PropertyCommand::parse(&wide), Some(PropertyCommand::Set { eight_bytes: false, offset: 0x14, value: 0x0046_0001 }), "4-byte set: low dword");
        assert_eq!(PropertyCommand::get_response(true, 0x1122_3344_5566_7788), (0x5566_7788, 0x1122_3344));
        assert_eq!(PropertyCommand::get_response(false, 0x1122_3344_5566_7788), (0x5566_7788, 0));
        assert_eq!(ConnectResponse::Accepted { cntlid: 5, authreq: 0 }.dw0(), 5);
        assert_eq!(ConnectResponse::InvalidParameter { in_data: true, offset: 16 }.dw0(), 0x0001_0010);
    }
}
