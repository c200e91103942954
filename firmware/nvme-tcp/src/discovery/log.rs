//! The Discovery Log Page as a whole: the header (GENCTR 7:0, NUMREC
//! 15:8, RECFMT 17:16, reserved to byte 1023) and its entries (NVMe Base
//! 2.0 §5.16.1.23; NVMe over Fabrics 1.1 §5.3). Hosts read it in pieces
//! (often the header first, then everything), so parsing copes with a
//! buffer holding fewer entries than NUMREC, and rendering serves any
//! byte range.

use super::entry::{EntryRepr, EntryView};
use super::{DiscoveryError, RECORD_LEN};
use crate::le::{put_u16, put_u64, u16_at, u64_at};

/// The Discovery Log Page header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogHeader {
    /// Generation counter: changes whenever the log changes.
    pub genctr: u64,
    /// Number of records (entries).
    pub numrec: u64,
    /// Record format: 0.
    pub recfmt: u16,
}

impl LogHeader {
    /// Parses the first 1024 bytes of `b`; RECFMT must be 0.
    pub fn parse(b: &[u8]) -> Result<LogHeader, DiscoveryError> {
        if b.len() < RECORD_LEN {
            return Err(DiscoveryError::Truncated { need: RECORD_LEN });
        }
        let h = LogHeader { genctr: u64_at(b, 0), numrec: u64_at(b, 8), recfmt: u16_at(b, 16) };
        if h.recfmt != 0 {
            return Err(DiscoveryError::UnsupportedRecfmt(h.recfmt));
        }
        Ok(h)
    }

    /// Writes the 1024-byte header into `out[..1024]`.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), DiscoveryError> {
        let out = out.get_mut(..RECORD_LEN).ok_or(DiscoveryError::Truncated { need: RECORD_LEN })?;
        out.fill(0);
        put_u64(out, 0, self.genctr);
        put_u64(out, 8, self.numrec);
        put_u16(out, 16, self.recfmt);
        Ok(())
    }

    /// Bytes of the whole log.
    pub fn log_len(&self) -> u64 {
        self.numrec.saturating_add(1).saturating_mul(RECORD_LEN as u64)
    }
}

/// A Discovery Log Page read by a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscoveryLog<'a> {
    pub header: LogHeader,
    entries: &'a [u8],
}

impl<'a> DiscoveryLog<'a> {
    /// Parses the header; entries are read lazily from the rest of `b`.
    pub fn parse(b: &'a [u8]) -> Result<DiscoveryLog<'a>, DiscoveryError> {
        let header = LogHeader::parse(b)?;
        Ok(DiscoveryLog { header, entries: &b[RECORD_LEN..] })
    }

    /// Entries whose 1024 bytes are all in the buffer (at most NUMREC).
    pub fn entries_present(&self) -> usize {
        let whole = self.entries.len() / RECORD_LEN;
        usize::try_from(self.header.numrec).map_or(whole, |n| n.min(whole))
    }

    /// The buffer holds all NUMREC entries (else read `header.log_len()`
    /// bytes and parse again).
    pub fn is_complete(&self) -> bool {
        self.entries_present() as u64 == self.header.numrec
    }

    /// The entries present, in order.
    pub fn entries(&self) -> EntryIter<'a> {
        EntryIter { rest: &self.entries[..self.entries_present() * RECORD_LEN] }
    }
}

/// Iterator over the entries of a [`DiscoveryLog`].
#[derive(Clone, Debug)]
pub struct EntryIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = EntryView<'a>;

    fn next(&mut self) -> Option<EntryView<'a>> {
        let (head, tail) = self.rest.split_first_chunk::<RECORD_LEN>()?;
        self.rest = tail;
        Some(EntryView::new(head))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / RECORD_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for EntryIter<'_> {}

/// Renders bytes `offset..offset + out.len()` of the Discovery Log Page
/// made of a header with `genctr` and `entries`, into `out`, one 1024-byte
/// record at a time (no buffer for the whole log). Returns the log bytes
/// written; the part of `out` past the end of the log is zeroed.
pub fn write_log_range(
    genctr: u64,
    entries: &[EntryRepr<'_>],
    offset: u64,
    out: &mut [u8],
) -> Result<usize, DiscoveryError> {
    out.fill(0);
    let header = LogHeader { genctr, numrec: entries.len() as u64, recfmt: 0 };
    let total = header.log_len();
    if offset >= total {
        return Ok(0);
    }
    let n = usize::try_from((total - offset).min(out.len() as u64)).unwrap_or(out.len());
    let mut rec = [0u8; RECORD_LEN];
    let mut done = 0usize;
    while done < n {
        let pos = offset + done as u64;
        // pos < total = (entries + 1) * 1024, so the index fits.
        let idx = (pos / RECORD_LEN as u64) as usize;
        let within = (pos % RECORD_LEN as u64) as usize;
        match idx.checked_sub(1) {
            None => header.emit(&mut rec)?,
            Some(i) => match entries.get(i) {
                Some(e) => e.emit(&mut rec)?,
                None => break,
            },
        }
        let take = (RECORD_LEN - within).min(n - done);
        out[done..done + take].copy_from_slice(&rec[within..within + take]);
        done += take;
    }
    Ok(n)
}
