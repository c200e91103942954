//! The superblock each device of an erasure-coded volume carries (a
//! member, or a spare once it serves a slot), and the rule that decides
//! at volume start which devices are trusted: Linux md's version-1
//! superblock and its `events` counter (drivers/md/md.c: `super_1_load`,
//! `super_1_validate`, `md_update_sb`), cut down to what this layout
//! needs.
//!
//! It sits in the 4 KiB block after the volume's last stripe (member byte
//! stripes x 4 KiB), which the data layout never uses. Format (64 bytes,
//! little-endian; the rest of the block is zeros):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `DPUECSB1` |
//! | 8..10 | format version (1) |
//! | 10, 11 | k, m |
//! | 12..14 | volume index |
//! | 14 | this device's slot |
//! | 16..24 | volume identity: a random nonce chosen when the volume was first initialized |
//! | 24..32 | `events`: one more at every update |
//! | 32..36 | slots lost as of `events` (bit = slot) |
//! | 60..64 | CRC32C (RFC 3720) of bytes 0..60 |
//!
//! **Start** ([`assemble`]): the highest `events` among valid superblocks
//! of this volume (magic, version, CRC, k, m, volume index) wins, and its
//! nonce names the volume; a device is trusted for the slot its
//! superblock names if its `events` is the winner's or one less (md
//! accepts one behind while assembling: an update cut short by a power
//! loss) and the winner does not list that slot lost. Everything else
//! (unreachable, blank, corrupt, foreign, older, listed lost) is lost and
//! must be rebuilt before it is read. Blank everywhere is a new volume.
//!
//! **Updates** (the firmware, `block::ec`): one at a time, each to every
//! device in service, `events` one more than the last; host writes that
//! complete while a slot is lost wait until an update recording it lost
//! is on the media (md holds writes while `MD_SB_CHANGE_PENDING`). So an
//! in-service device is never more than one update behind, and a device
//! that missed writes is either listed lost by a newer superblock or two
//! or more updates behind.

/// Bytes of the superblock proper (the CRC covers the first 60).
pub const SB_BYTES: usize = 64;
/// The format's magic.
pub const MAGIC: [u8; 8] = *b"DPUECSB1";
/// Format version.
pub const VERSION: u16 = 1;
/// Devices of one volume at most (k + m members and spares).
pub const MAX_DEVICES: usize = 32;
const CRC_AT: usize = 60;

/// One device's superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub k: u8,
    pub m: u8,
    pub volume: u16,
    pub slot: u8,
    pub nonce: u64,
    pub events: u64,
    pub lost: u32,
}

/// What a device's superblock block held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Not read: the device was not reachable when the volume started.
    Unreachable,
    /// Zeros: never initialized.
    Blank,
    /// Not a superblock of this format (bad magic, version or CRC).
    Invalid,
    Sb(Superblock),
}

impl Superblock {
    /// The first [`SB_BYTES`] of the block, CRC field zero: the caller
    /// puts [`Superblock::seal`]'s word in after computing the CRC32C of
    /// `out[..60]` (on the DMA engine).
    pub fn encode(&self, out: &mut [u8; SB_BYTES]) {
        *out = [0; SB_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10] = self.k;
        out[11] = self.m;
        out[12..14].copy_from_slice(&self.volume.to_le_bytes());
        out[14] = self.slot;
        out[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        out[24..32].copy_from_slice(&self.events.to_le_bytes());
        out[32..36].copy_from_slice(&self.lost.to_le_bytes());
    }

    /// Puts CRC32C `crc` (of bytes 0..60) into an encoded superblock.
    pub fn seal(out: &mut [u8; SB_BYTES], crc: u32) {
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    }

    /// The bytes the CRC covers.
    pub fn covered(b: &[u8; SB_BYTES]) -> &[u8] {
        &b[..CRC_AT]
    }

    /// Reads a block's first [`SB_BYTES`]; `crc` is the CRC32C of its
    /// bytes 0..60. Every field is checked: never panics.
    pub fn parse(b: &[u8; SB_BYTES], crc: u32) -> Found {
        if b.iter().all(|&x| x == 0) {
            return Found::Blank;
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let stored = u32::from_le_bytes([b[CRC_AT], b[CRC_AT + 1], b[CRC_AT + 2], b[CRC_AT + 3]]);
        if b[0..8] != MAGIC || u16_at(8) != VERSION || stored != crc {
            return Found::Invalid;
        }
        let sb = Superblock {
            k: b[10],
            m: b[11],
            volume: u16_at(12),
            slot: b[14],
            nonce: u64_at(16),
            events: u64_at(24),
            lost: u32::from_le_bytes([b[32], b[33], b[34], b[35]]),
        };
        if usize::from(sb.slot) >= usize::from(sb.k) + usize::from(sb.m) || sb.events == 0 {
            return Found::Invalid;
        }
        Found::Sb(sb)
    }
}

/// What a volume does about its start, with `up` of its `width` members'
/// controllers connected and `waited` true once the start wait is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Wait for more members (I/O waits too).
    Wait,
    /// Read the superblocks of the devices that are up.
    Read,
    /// Fewer than k members after the wait: no stripe can be read. Keep
    /// waiting for them, refusing I/O meanwhile.
    Refuse,
}

/// The start rule: every member up, or the wait over with at least k.
pub fn when_to_start(up: usize, width: usize, k: usize, waited: bool) -> Start {
    if up >= width {
        Start::Read
    } else if !waited {
        Start::Wait
    } else if up >= k {
        Start::Read
    } else {
        Start::Refuse
    }
}

/// Why a slot is not trusted at start (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Its member was not reachable (and no spare holds the slot).
    Unreachable,
    /// No superblock (blank) on a volume that has some elsewhere.
    Blank,
    /// Not a valid superblock.
    Invalid,
    /// A valid superblock of another volume (k, m, index or nonce).
    Foreign,
    /// Its superblock is this many events old (more than one behind).
    Stale { events: u64 },
    /// The newest superblock lists the slot lost.
    ListedLost,
}

/// The outcome of a volume's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assembly {
    /// Blank everywhere: a new volume (no device needs a rebuild except
    /// those unreachable).
    pub new: bool,
    /// The winning superblock's nonce and events (0 for a new volume:
    /// the caller picks a nonce).
    pub nonce: u64,
    pub events: u64,
    /// Per slot: the device trusted for it (device index: member slots
    /// 0..k+m, spares after), or `None`: the slot is lost.
    pub serve: [Option<u8>; MAX_DEVICES],
    /// Per lost slot: why (`None` for trusted slots).
    pub why: [Option<Untrusted>; MAX_DEVICES],
}

impl Assembly {
    /// Slots with no trusted device.
    pub fn lost(&self, width: usize) -> u32 {
        (0..width.min(MAX_DEVICES)).filter(|&s| self.serve[s].is_none()).fold(0, |a, s| a | 1 << s)
    }
}

/// Decides which devices of volume `volume` (k + m slots; `found[d]` is
/// device d's superblock: the k + m members in slot order, then the
/// spares) are trusted (module doc).
pub fn assemble(k: u8, m: u8, volume: u16, found: &[Found]) -> Assembly {
    let width = (usize::from(k) + usize::from(m)).min(MAX_DEVICES);
    let found = &found[..found.len().min(MAX_DEVICES)];
    let mut a = Assembly { new: false, nonce: 0, events: 0, serve: [None; MAX_DEVICES], why: [None; MAX_DEVICES] };
    let ours = |sb: &Superblock| sb.k == k && sb.m == m && sb.volume == volume;
    // The newest of this volume's superblocks (ties: the lowest device).
    let winner = found.iter().filter_map(|f| if let Found::Sb(sb) = f { Some(*sb) } else { None }).filter(ours).fold(None::<Superblock>, |w, sb| match w {
        Some(w) if w.events >= sb.events => Some(w),
        _ => Some(sb),
    });
    let Some(w) = winner else {
        // No superblock of this volume anywhere: new if everything
        // reachable is blank; else nothing can be trusted.
        let blank = found.iter().all(|f| matches!(f, Found::Blank | Found::Unreachable)) && found.iter().any(|f| *f == Found::Blank);
        for s in 0..width {
            let f = found.get(s).copied().unwrap_or(Found::Unreachable);
            if blank && f == Found::Blank {
                a.serve[s] = Some(s as u8);
            } else {
                a.why[s] = Some(match f {
                    Found::Unreachable => Untrusted::Unreachable,
                    Found::Blank => Untrusted::Blank,
                    Found::Invalid => Untrusted::Invalid,
                    Found::Sb(_) => Untrusted::Foreign,
                });
            }
        }
        a.new = blank;
        return a;
    };
    a.nonce = w.nonce;
    a.events = w.events;
    // Per slot, the freshest device claiming it (one behind at most).
    let mut best: [Option<(u8, u64)>; MAX_DEVICES] = [None; MAX_DEVICES];
    for (d, f) in found.iter().enumerate() {
        let Found::Sb(sb) = f else { continue };
        let s = usize::from(sb.slot);
        if !ours(sb) || sb.nonce != w.nonce || s >= width || sb.events + 1 < w.events || w.lost & 1 << s != 0 {
            continue;
        }
        // Ties: the slot's own member first.
        if best[s].is_none_or(|(bd, be)| sb.events > be || (sb.events == be && d == s && usize::from(bd) != s)) {
            best[s] = Some((d as u8, sb.events));
        }
    }
    for s in 0..width {
        if let Some((d, _)) = best[s] {
            a.serve[s] = Some(d);
            continue;
        }
        // Why not: what the slot's own member holds.
        a.why[s] = Some(if w.lost & 1 << s != 0 {
            Untrusted::ListedLost
        } else {
            match found.get(s).copied().unwrap_or(Found::Unreachable) {
                Found::Unreachable => Untrusted::Unreachable,
                Found::Blank => Untrusted::Blank,
                Found::Invalid => Untrusted::Invalid,
                Found::Sb(sb) if !ours(&sb) || sb.nonce != w.nonce || usize::from(sb.slot) != s => Untrusted::Foreign,
                Found::Sb(sb) => Untrusted::Stale { events: sb.events },
            }
        });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32c(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { c >> 1 ^ 0x82f6_3b78 } else { c >> 1 };
            }
        }
        !c
    }

    fn sb(slot: u8, events: u64, lost: u32) -> Found {
        Found::Sb(Superblock { k: 4, m: 2, volume: 1, slot, nonce: 0xfeed, events, lost })
    }

    #[test]
    fn a_superblock_reads_back_and_every_damage_is_seen() {
        let s = Superblock { k: 4, m: 2, volume: 1, slot: 5, nonce: 0x0123_4567_89ab_cdef, events: 42, lost: 0b10 };
        let mut b = [0u8; SB_BYTES];
        s.encode(&mut b);
        let crc = crc32c(Superblock::covered(&b));
        Superblock::seal(&mut b, crc);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283, "RFC 3720 check value");
        assert_eq!(Superblock::parse(&b, crc32c(Superblock::covered(&b))), Found::Sb(s));
        assert_eq!(&b[..8], b"DPUECSB1");
        // Any flipped byte: the CRC no longer matches (or the magic).
        for i in 0..SB_BYTES {
            let mut d = b;
            d[i] ^= 0x40;
            assert_eq!(Superblock::parse(&d, crc32c(Superblock::covered(&d))), Found::Invalid, "byte {i}");
        }
        assert_eq!(Superblock::parse(&[0; SB_BYTES], 0), Found::Blank);
        // A slot outside k + m is refused even with a good CRC.
        let mut bad = b;
        bad[14] = 6;
        let c = crc32c(Superblock::covered(&bad));
        Superblock::seal(&mut bad, c);
        assert_eq!(Superblock::parse(&bad, c), Found::Invalid);
    }

    #[test]
    fn a_volume_starts_with_every_member_or_after_the_wait_with_k() {
        assert_eq!(when_to_start(6, 6, 4, false), Start::Read);
        assert_eq!(when_to_start(5, 6, 4, false), Start::Wait);
        assert_eq!(when_to_start(4, 6, 4, true), Start::Read);
        assert_eq!(when_to_start(3, 6, 4, true), Start::Refuse);
        assert_eq!(when_to_start(0, 3, 2, true), Start::Refuse);
    }

    #[test]
    fn blank_everywhere_is_a_new_volume() {
        let a = assemble(4, 2, 1, &[Found::Blank; 6]);
        assert!(a.new && a.lost(6) == 0 && a.serve[3] == Some(3));
        // A member unreachable at the first start is lost (rebuilt later).
        let mut f = [Found::Blank; 6];
        f[2] = Found::Unreachable;
        let a = assemble(4, 2, 1, &f);
        assert!(a.new);
        assert_eq!((a.lost(6), a.why[2]), (0b100, Some(Untrusted::Unreachable)));
        // Blank next to garbage is not new: nothing is trusted.
        f[2] = Found::Invalid;
        let a = assemble(4, 2, 1, &f);
        assert!(!a.new && a.lost(6) == 0b11_1111);
    }

    #[test]
    fn the_newest_superblock_decides_and_a_member_that_missed_writes_stays_out() {
        // Member 1 was lost at events 2 (the others recorded it) and
        // missed writes since: its own superblock still says 1.
        let f = [sb(0, 2, 0b10), sb(1, 1, 0), sb(2, 2, 0b10), sb(3, 2, 0b10), sb(4, 2, 0b10), sb(5, 2, 0b10)];
        let a = assemble(4, 2, 1, &f);
        assert!(!a.new);
        assert_eq!((a.events, a.nonce, a.lost(6)), (2, 0xfeed, 0b10));
        assert_eq!(a.why[1], Some(Untrusted::ListedLost));
        // The loss reached only one member before the power went: that
        // one still wins; the others are one behind and trusted.
        let f = [sb(0, 3, 0b10), sb(1, 2, 0), sb(2, 2, 0), sb(3, 2, 0), sb(4, 2, 0), sb(5, 2, 0)];
        let a = assemble(4, 2, 1, &f);
        assert_eq!((a.events, a.lost(6)), (3, 0b10));
        // Two behind: it missed an update it was in service for (it was
        // out), so it is stale.
        let f = [sb(0, 4, 0), sb(1, 2, 0), sb(2, 4, 0), sb(3, 3, 0), sb(4, 4, 0), sb(5, 4, 0)];
        let a = assemble(4, 2, 1, &f);
        assert_eq!((a.lost(6), a.why[1]), (0b10, Some(Untrusted::Stale { events: 2 })));
    }

    #[test]
    fn foreign_blank_and_unreachable_members_are_not_trusted() {
        let mut f = [sb(0, 5, 0), sb(1, 5, 0), sb(2, 5, 0), sb(3, 5, 0), sb(4, 5, 0), sb(5, 5, 0)];
        // Another volume's superblock (another nonce), a blank (new disk),
        // one unreachable, one of another geometry.
        f[0] = Found::Sb(Superblock { k: 4, m: 2, volume: 1, slot: 0, nonce: 0xbad, events: 3, lost: 0 });
        f[1] = Found::Blank;
        f[2] = Found::Unreachable;
        f[3] = Found::Sb(Superblock { k: 8, m: 2, volume: 1, slot: 3, nonce: 0xfeed, events: 9, lost: 0 });
        let a = assemble(4, 2, 1, &f);
        assert_eq!(a.lost(6), 0b1111);
        assert_eq!(a.why[..4], [Some(Untrusted::Foreign), Some(Untrusted::Blank), Some(Untrusted::Unreachable), Some(Untrusted::Foreign)]);
        // A foreign superblock with more events does not win.
        assert_eq!(a.events, 5);
    }

    #[test]
    fn a_spare_that_took_a_slot_serves_it_after_a_restart() {
        // Spare (device 6) rebuilt slot 4 and the update after the rebuild
        // reached everyone; the old member 4 says events 2.
        let f = [sb(0, 4, 0), sb(1, 4, 0), sb(2, 4, 0), sb(3, 4, 0), sb(4, 2, 0), sb(5, 4, 0), sb(4, 4, 0)];
        let a = assemble(4, 2, 1, &f);
        assert_eq!((a.lost(6), a.serve[4]), (0, Some(6)));
        // The spare was still being rebuilt (the slot listed lost): the
        // slot is lost, whoever claims it.
        let f = [sb(0, 3, 0b1_0000), sb(1, 3, 0b1_0000), sb(2, 3, 0b1_0000), sb(3, 3, 0b1_0000), sb(4, 1, 0), sb(5, 3, 0b1_0000), sb(4, 3, 0b1_0000)];
        let a = assemble(4, 2, 1, &f);
        assert_eq!((a.lost(6), a.why[4]), (0b1_0000, Some(Untrusted::ListedLost)));
    }
}
