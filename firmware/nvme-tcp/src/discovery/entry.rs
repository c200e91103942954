//! One Discovery Log Page entry (NVMe Base 2.0 §5.16.1.23, "Discovery
//! Log Page Entry"; NVMe over Fabrics 1.1 §5.3; Linux `struct
//! nvmf_disc_rsp_page_entry`): TRTYPE 0, ADRFAM 1, SUBTYPE 2, TREQ 3,
//! PORTID 5:4, CNTLID 7:6, ASQSZ 9:8, EFLAGS 11:10, TRSVCID 63:32 (ASCII,
//! space padded), SUBNQN 511:256 (NUL terminated), TRADDR 767:512
//! (ASCII, space padded), TSAS 1023:768.

use super::{DiscoveryError, RECORD_LEN};
use crate::consts::NQN_FIELD_LEN;
use crate::fabrics::check_nqn;
use crate::le::{put_u16, u16_at};

const TRSVCID: core::ops::Range<usize> = 32..64;
const SUBNQN: core::ops::Range<usize> = 256..512;
const TRADDR: core::ops::Range<usize> = 512..768;
const TSAS: core::ops::Range<usize> = 768..1024;

/// A borrowed view of one 1024-byte entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryView<'a> {
    b: &'a [u8; RECORD_LEN],
}

/// Text of a fixed field without trailing space/NUL padding.
fn trim(f: &[u8]) -> &[u8] {
    let end = f.iter().rposition(|&c| c != b' ' && c != 0).map_or(0, |i| i + 1);
    &f[..end]
}

fn text(f: &[u8]) -> Result<&str, DiscoveryError> {
    core::str::from_utf8(trim(f)).map_err(|_| DiscoveryError::BadText)
}

impl<'a> EntryView<'a> {
    pub fn new(b: &'a [u8; RECORD_LEN]) -> EntryView<'a> {
        EntryView { b }
    }

    /// A view of the first 1024 bytes of `b`.
    pub fn from_slice(b: &'a [u8]) -> Result<EntryView<'a>, DiscoveryError> {
        let b = b.get(..RECORD_LEN).ok_or(DiscoveryError::Truncated { need: RECORD_LEN })?;
        // The length was just checked.
        Ok(EntryView { b: b.try_into().map_err(|_| DiscoveryError::Truncated { need: RECORD_LEN })? })
    }

    pub fn trtype(&self) -> u8 {
        self.b[0]
    }
    pub fn adrfam(&self) -> u8 {
        self.b[1]
    }
    pub fn subtype(&self) -> u8 {
        self.b[2]
    }
    pub fn treq(&self) -> u8 {
        self.b[3]
    }
    pub fn portid(&self) -> u16 {
        u16_at(self.b, 4)
    }
    pub fn cntlid(&self) -> u16 {
        u16_at(self.b, 6)
    }
    /// Admin max SQ size.
    pub fn asqsz(&self) -> u16 {
        u16_at(self.b, 8)
    }
    /// Entry flags (NVMe over Fabrics 1.1).
    pub fn eflags(&self) -> u16 {
        u16_at(self.b, 10)
    }
    /// Transport service ID (the TCP port, as text), padding removed.
    pub fn trsvcid(&self) -> Result<&'a str, DiscoveryError> {
        text(&self.b[TRSVCID])
    }
    /// TRSVCID as a TCP port number, when it is one.
    pub fn port(&self) -> Option<u16> {
        self.trsvcid().ok()?.parse().ok()
    }
    /// Transport address (e.g. "192.168.1.10"), padding removed.
    pub fn traddr(&self) -> Result<&'a str, DiscoveryError> {
        text(&self.b[TRADDR])
    }
    /// TRADDR as IPv4 octets, when ADRFAM is IPv4 and it parses.
    pub fn ipv4(&self) -> Option<[u8; 4]> {
        if self.adrfam() != super::adrfam::IPV4 {
            return None;
        }
        let s = self.traddr().ok()?;
        let mut out = [0u8; 4];
        let mut parts = s.split('.');
        for o in out.iter_mut() {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        parts.next().is_none().then_some(out)
    }
    /// Subsystem NQN (at most 223 bytes, NUL terminated).
    pub fn subnqn(&self) -> Result<&'a str, DiscoveryError> {
        let f = &self.b[SUBNQN];
        let n = f.iter().position(|&c| c == 0).ok_or(DiscoveryError::FieldTooLong)?;
        if n > crate::consts::NQN_MAX_LEN {
            return Err(DiscoveryError::FieldTooLong);
        }
        core::str::from_utf8(&f[..n]).map_err(|_| DiscoveryError::BadText)
    }
    /// Transport specific address subtype (for TCP byte 0 is SECTYPE).
    pub fn tsas(&self) -> &'a [u8] {
        &self.b[TSAS]
    }
}

/// An entry to render (target side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EntryRepr<'a> {
    pub trtype: u8,
    pub adrfam: u8,
    pub subtype: u8,
    pub treq: u8,
    pub portid: u16,
    /// 0xFFFF: dynamic controller model.
    pub cntlid: u16,
    pub asqsz: u16,
    pub eflags: u16,
    /// At most 32 bytes, space padded on the wire.
    pub trsvcid: &'a str,
    /// At most 256 bytes, space padded on the wire (bytes 767:512).
    pub traddr: &'a str,
    /// At most 223 bytes, NUL padded (bytes 511:256).
    pub subnqn: &'a str,
    /// At most 256 bytes, zero padded (TCP: SECTYPE byte, 0 = none).
    pub tsas: &'a [u8],
}

fn put_text(f: &mut [u8], s: &[u8], pad: u8) -> Result<(), DiscoveryError> {
    if s.len() > f.len() {
        return Err(DiscoveryError::FieldTooLong);
    }
    f.fill(pad);
    f[..s.len()].copy_from_slice(s);
    Ok(())
}

impl EntryRepr<'_> {
    /// Writes the 1024 bytes into `out[..1024]`.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), DiscoveryError> {
        let out = out.get_mut(..RECORD_LEN).ok_or(DiscoveryError::Truncated { need: RECORD_LEN })?;
        check_nqn(self.subnqn).map_err(|_| DiscoveryError::FieldTooLong)?;
        if self.trsvcid.len() > TRSVCID.len() || self.traddr.len() > TRADDR.len() || self.tsas.len() > TSAS.len() {
            return Err(DiscoveryError::FieldTooLong);
        }
        out.fill(0);
        out[0] = self.trtype;
        out[1] = self.adrfam;
        out[2] = self.subtype;
        out[3] = self.treq;
        put_u16(out, 4, self.portid);
        put_u16(out, 6, self.cntlid);
        put_u16(out, 8, self.asqsz);
        put_u16(out, 10, self.eflags);
        put_text(&mut out[TRSVCID], self.trsvcid.as_bytes(), b' ')?;
        put_text(&mut out[TRADDR], self.traddr.as_bytes(), b' ')?;
        put_text(&mut out[SUBNQN.start..SUBNQN.start + NQN_FIELD_LEN], self.subnqn.as_bytes(), 0)?;
        put_text(&mut out[TSAS], self.tsas, 0)?;
        Ok(())
    }
}
