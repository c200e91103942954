//! Get Log Page (NVMe Base 2.0 §5.16): Error Information (01h),
//! SMART / Health Information (02h), Firmware Slot Information (03h,
//! rendered by [`crate::firmware::SlotLog`]), Changed Namespace List
//! (04h, [`ChangedNs`]).

use crate::sqe::Sqe;
use crate::status::Status;

pub const LID_ERROR: u8 = 0x01;
pub const LID_SMART: u8 = 0x02;
pub const LID_FIRMWARE_SLOT: u8 = 0x03;
pub const LID_CHANGED_NS: u8 = 0x04;

/// Size of the Changed Namespace List log page (1024 NSIDs).
pub const CHANGED_NS_BYTES: usize = 4096;

/// Namespace IDs whose attributes changed since the Changed Namespace
/// List log page was last read (NVMe Base 2.0 §5.16.1.5): kept in
/// increasing order; more than [`ChangedNs::MAX`] reads as the single
/// entry FFFFFFFFh ("more than fit: rescan all"), as more than 1024
/// does in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangedNs {
    nsids: [u32; ChangedNs::MAX],
    n: u8,
    overflow: bool,
}

impl ChangedNs {
    pub const MAX: usize = 16;
    pub const EMPTY: ChangedNs = ChangedNs { nsids: [0; ChangedNs::MAX], n: 0, overflow: false };

    /// Notes that namespace `nsid` changed (once, however often).
    pub fn record(&mut self, nsid: u32) {
        let list = &self.nsids[..usize::from(self.n)];
        if self.overflow || list.contains(&nsid) {
            return;
        }
        if usize::from(self.n) == Self::MAX {
            self.overflow = true;
            return;
        }
        let at = list.iter().position(|&x| x > nsid).unwrap_or(list.len());
        self.nsids.copy_within(at..usize::from(self.n), at + 1);
        self.nsids[at] = nsid;
        self.n += 1;
    }

    /// Notes that more namespaces changed than the list holds: it reads
    /// as the single entry FFFFFFFFh (the host rescans them all).
    pub fn record_all(&mut self) {
        self.overflow = true;
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0 && !self.overflow
    }

    /// Renders the page's first `out.len()` bytes (cleared first).
    pub fn render(&self, out: &mut [u8]) {
        out.fill(0);
        let one = [u32::MAX];
        let list: &[u32] = if self.overflow { &one } else { &self.nsids[..usize::from(self.n)] };
        for (slot, &nsid) in out.chunks_exact_mut(4).zip(list) {
            slot.copy_from_slice(&nsid.to_le_bytes());
        }
    }
}

/// Entries kept in the error log.
pub const ERROR_ENTRIES: usize = 16;

/// A decoded Get Log Page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub lid: u8,
    /// Byte offset into the log.
    pub offset: u64,
    /// Bytes to transfer.
    pub len: u32,
    /// Retain Asynchronous Event.
    pub rae: bool,
}

/// Decodes CDW10-13 (NUMDL/NUMDU, LPOL/LPOU). Unknown pages are Invalid
/// Log Page; offsets must be dword aligned and inside the page.
pub fn decode(sqe: &Sqe) -> Result<Request, Status> {
    let lid = sqe.cdw10() as u8;
    let numd = (sqe.cdw10() >> 16) | (sqe.cdw11() & 0xffff) << 16;
    let offset = u64::from(sqe.cdw12()) | u64::from(sqe.cdw13()) << 32;
    let size = match lid {
        LID_ERROR => (64 * ERROR_ENTRIES) as u64,
        LID_SMART | LID_FIRMWARE_SLOT => 512,
        LID_CHANGED_NS => CHANGED_NS_BYTES as u64,
        _ => return Err(Status::INVALID_LOG_PAGE),
    };
    if offset % 4 != 0 || offset >= size {
        return Err(Status::INVALID_FIELD);
    }
    let len = (u64::from(numd) + 1) * 4;
    if len > crate::MAX_TRANSFER {
        return Err(Status::INVALID_FIELD);
    }
    Ok(Request { lid, offset, len: len as u32, rae: sqe.cdw10() & (1 << 15) != 0 })
}

/// One error information entry (figure 206).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorEntry {
    pub count: u64,
    pub sqid: u16,
    pub cid: u16,
    pub status: u16,
    pub lba: u64,
    pub nsid: u32,
}

/// Controller health counters (figure 207).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_commands: u64,
    pub write_commands: u64,
    pub busy_minutes: u64,
    pub power_cycles: u64,
    pub power_on_hours: u64,
    pub unsafe_shutdowns: u64,
    pub media_errors: u64,
}

/// Error log: the newest entries, newest first when rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorLog {
    entries: [ErrorEntry; ERROR_ENTRIES],
    /// Total errors logged (the entry's Error Count).
    pub count: u64,
}

impl ErrorLog {
    pub const EMPTY: ErrorLog = ErrorLog {
        entries: [ErrorEntry { count: 0, sqid: 0, cid: 0, status: 0, lba: 0, nsid: 0 }; ERROR_ENTRIES],
        count: 0,
    };

    pub fn record(&mut self, mut e: ErrorEntry) {
        self.count += 1;
        e.count = self.count;
        self.entries[(self.count as usize - 1) % ERROR_ENTRIES] = e;
    }

    fn render(&self, out: &mut [u8]) {
        let n = (self.count as usize).min(ERROR_ENTRIES);
        for i in 0..n {
            let idx = (self.count as usize - 1 - i) % ERROR_ENTRIES;
            let e = &self.entries[idx];
            let o = &mut out[64 * i..64 * i + 64];
            o[0..8].copy_from_slice(&e.count.to_le_bytes());
            o[8..10].copy_from_slice(&e.sqid.to_le_bytes());
            o[10..12].copy_from_slice(&e.cid.to_le_bytes());
            o[12..14].copy_from_slice(&(e.status << 1).to_le_bytes());
            o[14..16].copy_from_slice(&0xffffu16.to_le_bytes()); // no parameter location
            o[16..24].copy_from_slice(&e.lba.to_le_bytes());
            o[24..28].copy_from_slice(&e.nsid.to_le_bytes());
        }
    }
}

/// Data units: thousands of 512-byte units, rounded up (§5.16.1.3).
fn data_units(bytes: u64) -> u128 {
    u128::from(bytes.div_ceil(512)).div_ceil(1000)
}

/// Renders log page `lid` into `out` (cleared first; `out` must be at least
/// the page size: 1 KiB for the error log, 512 bytes otherwise).
pub fn render(lid: u8, out: &mut [u8], errors: &ErrorLog, health: &Health, slots: &crate::firmware::SlotLog) {
    out.fill(0);
    match lid {
        LID_ERROR => errors.render(out),
        LID_SMART => {
            out[1..3].copy_from_slice(&313u16.to_le_bytes()); // 40 C in Kelvin
            out[3] = 100; // available spare
            out[4] = 10; // spare threshold
            let put = |o: &mut [u8], at: usize, v: u128| o[at..at + 16].copy_from_slice(&v.to_le_bytes());
            put(out, 32, data_units(health.bytes_read));
            put(out, 48, data_units(health.bytes_written));
            put(out, 64, u128::from(health.read_commands));
            put(out, 80, u128::from(health.write_commands));
            put(out, 96, u128::from(health.busy_minutes));
            put(out, 112, u128::from(health.power_cycles));
            put(out, 128, u128::from(health.power_on_hours));
            put(out, 144, u128::from(health.unsafe_shutdowns));
            put(out, 160, u128::from(health.media_errors));
            put(out, 176, u128::from(errors.count));
        }
        _ => slots.render(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(cdw10: u32, cdw11: u32, off: u64) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(10, cdw10);
        s.set_dw(11, cdw11);
        s.set_dw(12, off as u32);
        s.set_dw(13, (off >> 32) as u32);
        s
    }

    #[test]
    fn decode_checks() {
        let r = decode(&cmd(0x007f_0002, 0, 0)).unwrap();
        assert_eq!((r.lid, r.len), (LID_SMART, 512));
        assert_eq!(decode(&cmd(0x0000_00c0, 0, 0)), Err(Status::INVALID_LOG_PAGE));
        assert_eq!(decode(&cmd(0x0000_0002, 0, 2)), Err(Status::INVALID_FIELD), "unaligned offset");
        assert_eq!(decode(&cmd(0x0000_0002, 0, 512)), Err(Status::INVALID_FIELD), "offset past the page");
        assert_eq!(decode(&cmd(0x0001_0003, 0, 8)).unwrap().offset, 8);
        // Changed Namespace List: 4 KiB, RAE in bit 15.
        let r = decode(&cmd(0x03ff_8004, 0, 0)).unwrap();
        assert_eq!((r.lid, r.len, r.rae), (LID_CHANGED_NS, 4096, true));
        assert_eq!(decode(&cmd(0x0000_0004, 0, 4096)), Err(Status::INVALID_FIELD), "offset past the page");
    }

    #[test]
    fn changed_namespace_list() {
        let mut c = ChangedNs::EMPTY;
        assert!(c.is_empty());
        for n in [5, 2, 5, 9] {
            c.record(n);
        }
        let mut b = [0xffu8; 64];
        c.render(&mut b);
        let words: [u32; 4] = core::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()));
        assert_eq!(words, [2, 5, 9, 0], "increasing, once each, zero after");
        for n in 100..100 + ChangedNs::MAX as u32 {
            c.record(n);
        }
        c.render(&mut b);
        assert_eq!(&b[0..8], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], "overflow: FFFFFFFFh alone");
        assert!(!c.is_empty());
    }

    #[test]
    fn error_log_newest_first_and_smart_counts() {
        let mut log = ErrorLog::default();
        for cid in 0..20u16 {
            log.record(ErrorEntry { cid, sqid: 1, status: 0x4002, ..Default::default() });
        }
        let mut b = [0u8; 1024];
        let slots = crate::firmware::SlotLog::default();
        render(LID_ERROR, &mut b, &log, &Health::default(), &slots);
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 20);
        assert_eq!(u16::from_le_bytes([b[10], b[11]]), 19, "newest first");
        assert_eq!(u64::from_le_bytes(b[64..72].try_into().unwrap()), 19);
        let h = Health { bytes_read: 512 * 1000 + 1, read_commands: 3, ..Default::default() };
        render(LID_SMART, &mut b, &log, &h, &slots);
        assert_eq!(u128::from_le_bytes(b[32..48].try_into().unwrap()), 2, "rounded up");
        assert_eq!(u128::from_le_bytes(b[64..80].try_into().unwrap()), 3);
        assert_eq!(u128::from_le_bytes(b[176..192].try_into().unwrap()), 20);
        let mut revisions = [None; 7];
        revisions[0] = Some(*b"0.1.0   ");
        render(LID_FIRMWARE_SLOT, &mut b, &log, &h, &crate::firmware::SlotLog { active: 1, next: None, revisions });
        assert_eq!((b[0], &b[8..13]), (1, &b"0.1.0"[..]));
    }
}
