//! The Discovery Log Page (Get Log Page LID 70h; NVMe Base 2.0 "Discovery
//! Log Page", NVMe over Fabrics 1.1 §5.3; Linux `struct
//! nvmf_disc_rsp_page_hdr` and `struct nvmf_disc_rsp_page_entry`).
//!
//! Header (1024 bytes): GENCTR 7:0, NUMREC 15:8, RECFMT 17:16, reserved.
//!
//! Entry (1024 bytes each):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | TRTYPE |
//! | 1 | ADRFAM |
//! | 2 | SUBTYPE |
//! | 3 | TREQ |
//! | 5:4 | PORTID |
//! | 7:6 | CNTLID |
//! | 9:8 | ASQSZ |
//! | 11:10 | EFLAGS |
//! | 31:12 | reserved |
//! | 63:32 | TRSVCID (ASCII, space padded) |
//! | 255:64 | reserved |
//! | 511:256 | SUBNQN (NUL terminated) |
//! | 767:512 | TRADDR (ASCII, space padded) |
//! | 1023:768 | TSAS |

use super::bytes::{nul_terminated, padded_text, put_padded, put_u16, put_u64, u16_at, u64_at};
use super::fabrics::NQN_MAX_LEN;

/// Get Log Page identifier of the Discovery Log Page.
pub const LID_DISCOVERY: u8 = 0x70;
/// Bytes of the header and of each entry.
pub const RECORD_LEN: usize = 1024;

const TRSVCID: std::ops::Range<usize> = 32..64;
const SUBNQN: std::ops::Range<usize> = 256..512;
const TRADDR: std::ops::Range<usize> = 512..768;
const TSAS: std::ops::Range<usize> = 768..1024;

pub mod trtype {
    pub const RDMA: u8 = 1;
    pub const FC: u8 = 2;
    pub const TCP: u8 = 3;
}
pub mod adrfam {
    pub const IPV4: u8 = 1;
    pub const IPV6: u8 = 2;
}
pub mod subtype {
    pub const DISCOVERY_REFERRAL: u8 = 1;
    pub const NVM: u8 = 2;
    pub const CURRENT_DISCOVERY: u8 = 3;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("fewer than {0} bytes")]
    Truncated(usize),
    #[error("RECFMT {0}, only 0 is defined")]
    Recfmt(u16),
    #[error("a text field does not fit")]
    TooLong,
}

/// The log page header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader {
    pub genctr: u64,
    pub numrec: u64,
    pub recfmt: u16,
}

impl LogHeader {
    pub fn parse(b: &[u8]) -> Result<LogHeader, DiscoveryError> {
        let b = b.get(..RECORD_LEN).ok_or(DiscoveryError::Truncated(RECORD_LEN))?;
        let h = LogHeader { genctr: u64_at(b, 0).unwrap_or(0), numrec: u64_at(b, 8).unwrap_or(0), recfmt: u16_at(b, 16).unwrap_or(0) };
        if h.recfmt != 0 {
            return Err(DiscoveryError::Recfmt(h.recfmt));
        }
        Ok(h)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_LEN];
        put_u64(&mut b, 0, self.genctr);
        put_u64(&mut b, 8, self.numrec);
        put_u16(&mut b, 16, self.recfmt);
        b
    }
}

/// A typed view of one 1024-byte entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryView<'a>(&'a [u8]);

impl<'a> EntryView<'a> {
    pub fn new(b: &'a [u8]) -> Result<EntryView<'a>, DiscoveryError> {
        b.get(..RECORD_LEN).map(EntryView).ok_or(DiscoveryError::Truncated(RECORD_LEN))
    }
    pub fn trtype(&self) -> u8 {
        self.0[0]
    }
    pub fn adrfam(&self) -> u8 {
        self.0[1]
    }
    pub fn subtype(&self) -> u8 {
        self.0[2]
    }
    pub fn treq(&self) -> u8 {
        self.0[3]
    }
    pub fn portid(&self) -> u16 {
        u16_at(self.0, 4).unwrap_or(0)
    }
    pub fn cntlid(&self) -> u16 {
        u16_at(self.0, 6).unwrap_or(0)
    }
    pub fn asqsz(&self) -> u16 {
        u16_at(self.0, 8).unwrap_or(0)
    }
    pub fn eflags(&self) -> u16 {
        u16_at(self.0, 10).unwrap_or(0)
    }
    pub fn trsvcid(&self) -> Option<&'a str> {
        padded_text(&self.0[TRSVCID])
    }
    pub fn subnqn(&self) -> Option<&'a str> {
        nul_terminated(&self.0[SUBNQN])
    }
    pub fn traddr(&self) -> Option<&'a str> {
        padded_text(&self.0[TRADDR])
    }
    pub fn tsas(&self) -> &'a [u8] {
        &self.0[TSAS]
    }
}

/// The log as a host reads it: header and the entries present.
pub fn entries(log: &[u8]) -> Result<(LogHeader, Vec<EntryView<'_>>), DiscoveryError> {
    let h = LogHeader::parse(log)?;
    let present = (log.len() / RECORD_LEN).saturating_sub(1) as u64;
    let n = h.numrec.min(present) as usize;
    let v = (1..=n).filter_map(|i| EntryView::new(&log[i * RECORD_LEN..]).ok()).collect();
    Ok((h, v))
}

/// An entry to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRepr {
    pub trtype: u8,
    pub adrfam: u8,
    pub subtype: u8,
    pub treq: u8,
    pub portid: u16,
    pub cntlid: u16,
    pub asqsz: u16,
    pub eflags: u16,
    pub trsvcid: String,
    pub subnqn: String,
    pub traddr: String,
    pub tsas: Vec<u8>,
}

impl EntryRepr {
    pub fn to_bytes(&self) -> Result<Vec<u8>, DiscoveryError> {
        let mut b = vec![0u8; RECORD_LEN];
        b[0] = self.trtype;
        b[1] = self.adrfam;
        b[2] = self.subtype;
        b[3] = self.treq;
        put_u16(&mut b, 4, self.portid);
        put_u16(&mut b, 6, self.cntlid);
        put_u16(&mut b, 8, self.asqsz);
        put_u16(&mut b, 10, self.eflags);
        let ok = self.subnqn.len() <= NQN_MAX_LEN
            && put_padded(&mut b[TRSVCID], self.trsvcid.as_bytes(), b' ')
            && put_padded(&mut b[SUBNQN], self.subnqn.as_bytes(), 0)
            && put_padded(&mut b[TRADDR], self.traddr.as_bytes(), b' ')
            && put_padded(&mut b[TSAS], &self.tsas, 0);
        if ok {
            Ok(b)
        } else {
            Err(DiscoveryError::TooLong)
        }
    }
}

/// Bytes `offset .. offset + len` of the log made of a header with
/// `genctr` and `entries` (a host may read any piece); past the log's end
/// the bytes are zero.
pub fn log_range(genctr: u64, entries: &[EntryRepr], offset: u64, len: usize) -> Result<Vec<u8>, DiscoveryError> {
    let mut log = LogHeader { genctr, numrec: entries.len() as u64, recfmt: 0 }.to_bytes();
    for e in entries {
        log.extend_from_slice(&e.to_bytes()?);
    }
    let mut out = vec![0u8; len];
    if let Ok(start) = usize::try_from(offset) {
        if start < log.len() {
            let n = (log.len() - start).min(len);
            out[..n].copy_from_slice(&log[start..start + n]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry written byte by byte at the offsets of the Linux
    /// `struct nvmf_disc_rsp_page_entry` (SUBNQN before TRADDR).
    fn linux_entry() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[0] = 3; // TRTYPE tcp
        b[1] = 1; // ADRFAM ipv4
        b[2] = 2; // SUBTYPE nvm
        b[3] = 0x02 | 0x04; // TREQ: not required, SQ flow control disable
        b[4] = 1; // PORTID
        b[6..8].copy_from_slice(&[0xff, 0xff]); // CNTLID
        b[8] = 128; // ASQSZ
        b[32..64].fill(b' ');
        b[32..36].copy_from_slice(b"4420");
        b[256..256 + 27].copy_from_slice(b"nqn.2026-11.io.dpusim:linux");
        b[512..768].fill(b' ');
        b[512..521].copy_from_slice(b"10.0.0.10");
        b
    }

    #[test]
    fn entry_at_linux_offsets() {
        let b = linux_entry();
        let e = EntryView::new(&b).unwrap();
        assert_eq!((e.trtype(), e.adrfam(), e.subtype(), e.treq()), (3, 1, 2, 6));
        assert_eq!((e.portid(), e.cntlid(), e.asqsz(), e.eflags()), (1, 0xffff, 128, 0));
        assert_eq!(e.trsvcid(), Some("4420"));
        assert_eq!(e.subnqn(), Some("nqn.2026-11.io.dpusim:linux"));
        assert_eq!(e.traddr(), Some("10.0.0.10"));
        let r = EntryRepr {
            trtype: 3,
            adrfam: 1,
            subtype: 2,
            treq: 6,
            portid: 1,
            cntlid: 0xffff,
            asqsz: 128,
            eflags: 0,
            trsvcid: "4420".into(),
            subnqn: "nqn.2026-11.io.dpusim:linux".into(),
            traddr: "10.0.0.10".into(),
            tsas: vec![],
        };
        assert_eq!(r.to_bytes().unwrap(), b);
        assert!(EntryView::new(&b[..1023]).is_err());
    }

    #[test]
    fn log_in_pieces() {
        let e = EntryRepr {
            trtype: 3,
            adrfam: 1,
            subtype: 2,
            treq: 0,
            portid: 1,
            cntlid: 0xffff,
            asqsz: 32,
            eflags: 0,
            trsvcid: "4420".into(),
            subnqn: "nqn.a".into(),
            traddr: "10.0.0.10".into(),
            tsas: vec![],
        };
        let whole = log_range(7, &[e.clone(), e.clone()], 0, 3 * 1024).unwrap();
        assert_eq!(&whole[..18], &[7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (h, v) = entries(&whole).unwrap();
        assert_eq!((h.genctr, h.numrec, v.len()), (7, 2, 2));
        assert_eq!(v[1].traddr(), Some("10.0.0.10"));
        // The header alone, then a piece across the entry boundary, then past the end.
        let head = log_range(7, std::slice::from_ref(&e), 0, 1024).unwrap();
        let (h, v) = entries(&head).unwrap();
        assert_eq!((h.numrec, v.len()), (1, 0));
        let piece = log_range(7, std::slice::from_ref(&e), 1000, 100).unwrap();
        assert_eq!(&piece[..24], &[0; 24]);
        assert_eq!(piece[24], 3, "TRTYPE of entry 0");
        assert_eq!(log_range(7, &[e], 4096, 16).unwrap(), vec![0; 16]);
        let mut bad = whole.clone();
        bad[16] = 1;
        assert_eq!(entries(&bad).unwrap_err(), DiscoveryError::Recfmt(1));
    }
}
