//! Identify data structures, the fields the models fill and read (NVMe
//! Base 2.0 "Identify Controller Data Structure": VID 1:0, SSVID 3:2,
//! SN 23:4, MN 63:24, FR 71:64, MDTS 77, CNTLID 79:78, VER 83:80,
//! CNTRLTYPE 111, AERL 259, LPA 261, SQES 512, CQES 513, MAXCMD 515:514,
//! NN 519:516, ONCS 521:520, SGLS 539:536, SUBNQN 1023:768, and the
//! Fabrics fields IOCCSZ 1795:1792, IORCSZ 1799:1796, ICDOFF 1801:1800,
//! FCATT 1802, MSDBD 1803; NVM Command Set 1.0 "Identify Namespace Data
//! Structure": NSZE 7:0, NCAP 15:8, NUSE 23:16, NLBAF 25, FLBAS 26,
//! DLFEAT 33, LBA Format 0 at 131:128 with LBADS in byte 130).

use super::bytes::{padded_text, put, put_padded, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at};

pub const IDENTIFY_DATA_LEN: usize = 4096;

/// Controller types (CNTRLTYPE).
pub mod cntrltype {
    pub const IO: u8 = 1;
    pub const DISCOVERY: u8 = 2;
    pub const ADMIN: u8 = 3;
}

/// ONCS bits.
pub mod oncs {
    pub const COMPARE: u16 = 1 << 0;
    pub const DATASET_MANAGEMENT: u16 = 1 << 2;
    pub const WRITE_ZEROES: u16 = 1 << 3;
}

/// The Identify Controller fields a fabrics target fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerIdentity {
    pub vid: u16,
    pub ssvid: u16,
    pub sn: String,
    pub mn: String,
    pub fr: String,
    pub mdts: u8,
    pub cntlid: u16,
    pub ver: u32,
    pub cntrltype: u8,
    pub aerl: u8,
    pub lpa: u8,
    pub sqes: u8,
    pub cqes: u8,
    pub maxcmd: u16,
    pub nn: u32,
    pub oncs: u16,
    pub sgls: u32,
    pub subnqn: String,
    /// I/O command capsule size in 16-byte units (SQE + in-capsule data).
    pub ioccsz: u32,
    pub iorcsz: u32,
    pub icdoff: u16,
    pub fcatt: u8,
    pub msdbd: u8,
}

impl ControllerIdentity {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut d = vec![0u8; IDENTIFY_DATA_LEN];
        put_u16(&mut d, 0, self.vid);
        put_u16(&mut d, 2, self.ssvid);
        // Text fields are ASCII, space padded; too long is cut.
        let text = |d: &mut [u8], r: std::ops::Range<usize>, s: &str| {
            let n = s.len().min(r.len());
            put_padded(&mut d[r], &s.as_bytes()[..n], b' ');
        };
        text(&mut d, 4..24, &self.sn);
        text(&mut d, 24..64, &self.mn);
        text(&mut d, 64..72, &self.fr);
        d[77] = self.mdts;
        put_u16(&mut d, 78, self.cntlid);
        put_u32(&mut d, 80, self.ver);
        d[111] = self.cntrltype;
        d[259] = self.aerl;
        d[261] = self.lpa;
        d[512] = self.sqes;
        d[513] = self.cqes;
        put_u16(&mut d, 514, self.maxcmd);
        put_u32(&mut d, 516, self.nn);
        put_u16(&mut d, 520, self.oncs);
        put_u32(&mut d, 536, self.sgls);
        let nqn = &self.subnqn.as_bytes()[..self.subnqn.len().min(255)];
        put(&mut d, 768, nqn);
        put_u32(&mut d, 1792, self.ioccsz);
        put_u32(&mut d, 1796, self.iorcsz);
        put_u16(&mut d, 1800, self.icdoff);
        d[1802] = self.fcatt;
        d[1803] = self.msdbd;
        d
    }

    /// Reads the fields back; `None` when `d` is shorter than 4096 bytes.
    pub fn parse(d: &[u8]) -> Option<ControllerIdentity> {
        let d = d.get(..IDENTIFY_DATA_LEN)?;
        let text = |r: std::ops::Range<usize>| padded_text(&d[r]).unwrap_or("").to_string();
        Some(ControllerIdentity {
            vid: u16_at(d, 0)?,
            ssvid: u16_at(d, 2)?,
            sn: text(4..24),
            mn: text(24..64),
            fr: text(64..72),
            mdts: d[77],
            cntlid: u16_at(d, 78)?,
            ver: u32_at(d, 80)?,
            cntrltype: d[111],
            aerl: d[259],
            lpa: d[261],
            sqes: d[512],
            cqes: d[513],
            maxcmd: u16_at(d, 514)?,
            nn: u32_at(d, 516)?,
            oncs: u16_at(d, 520)?,
            sgls: u32_at(d, 536)?,
            subnqn: super::bytes::nul_terminated(&d[768..1024]).unwrap_or("").to_string(),
            ioccsz: u32_at(d, 1792)?,
            iorcsz: u32_at(d, 1796)?,
            icdoff: u16_at(d, 1800)?,
            fcatt: d[1802],
            msdbd: d[1803],
        })
    }
}

/// The Identify Namespace fields of a namespace with one LBA format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceIdentity {
    pub nsze: u64,
    pub ncap: u64,
    pub nuse: u64,
    /// Deallocated blocks read as zeroes (DLFEAT bits 2:0 = 001b).
    pub dlfeat: u8,
    /// log2 of the block size (LBA format 0's LBADS).
    pub lbads: u8,
}

impl NamespaceIdentity {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut d = vec![0u8; IDENTIFY_DATA_LEN];
        put_u64(&mut d, 0, self.nsze);
        put_u64(&mut d, 8, self.ncap);
        put_u64(&mut d, 16, self.nuse);
        // NLBAF 0 (one format, 0's based), FLBAS 0: format 0 in use.
        d[33] = self.dlfeat;
        d[130] = self.lbads;
        d
    }

    /// The fields, for FLBAS's format; `None` when `d` is short.
    pub fn parse(d: &[u8]) -> Option<NamespaceIdentity> {
        let d = d.get(..IDENTIFY_DATA_LEN)?;
        let format = usize::from(d[26] & 0x0f);
        Some(NamespaceIdentity { nsze: u64_at(d, 0)?, ncap: u64_at(d, 8)?, nuse: u64_at(d, 16)?, dlfeat: d[33], lbads: d[128 + 4 * format + 2] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_fields_at_spec_offsets() {
        let id = ControllerIdentity {
            vid: 0x1b36,
            ssvid: 0x1af4,
            sn: "SN1".into(),
            mn: "model".into(),
            fr: "1.0".into(),
            mdts: 5,
            cntlid: 0x0102,
            ver: 0x0001_0400,
            cntrltype: cntrltype::IO,
            aerl: 3,
            lpa: 4,
            sqes: 0x66,
            cqes: 0x44,
            maxcmd: 128,
            nn: 2,
            oncs: oncs::DATASET_MANAGEMENT | oncs::WRITE_ZEROES,
            sgls: 1 | 1 << 20,
            subnqn: "nqn.x".into(),
            ioccsz: 260,
            iorcsz: 1,
            icdoff: 0,
            fcatt: 0,
            msdbd: 1,
        };
        let d = id.to_bytes();
        assert_eq!(&d[0..4], &[0x36, 0x1b, 0xf4, 0x1a]);
        assert_eq!(&d[4..24], b"SN1                 ");
        assert_eq!(&d[24..29], b"model");
        assert_eq!((d[77], d[78], d[79], d[83], d[82]), (5, 0x02, 0x01, 0, 1));
        assert_eq!((d[111], d[512], d[513], d[516], d[520]), (1, 0x66, 0x44, 2, 0x0c));
        assert_eq!(&d[536..540], &[1, 0, 0x10, 0]);
        assert_eq!(&d[768..774], b"nqn.x\0");
        assert_eq!(&d[1792..1796], &260u32.to_le_bytes());
        assert_eq!(d[1803], 1);
        assert_eq!(ControllerIdentity::parse(&d), Some(id));
        assert_eq!(ControllerIdentity::parse(&d[..4095]), None);
    }

    #[test]
    fn namespace_fields() {
        let ns = NamespaceIdentity { nsze: 256, ncap: 256, nuse: 256, dlfeat: 1, lbads: 12 };
        let d = ns.to_bytes();
        assert_eq!((d[0], d[1], d[8], d[16], d[33], d[130]), (0, 1, 0, 0, 1, 12));
        assert_eq!(NamespaceIdentity::parse(&d), Some(ns));
    }
}
