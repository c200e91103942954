//! The A/B boot journal (flash `boot_state` partition: two subsectors)
//! and the boot decision.
//!
//! The journal is a sequence of 32-byte records appended to one
//! subsector; when it is full, the other is erased and the next record
//! starts it. A record: u32 magic "DPUS", u32 sequence, u8 confirmed
//! slot, u8 pending slot (FFh: none), u8 slot on trial (FFh: none), 17
//! reserved bytes, u32 CRC-32 (ISO-HDLC) of the first 28 bytes. The
//! valid record with the highest sequence is the state; a record torn by
//! a power cut fails its CRC and the previous one stands. Blank flash
//! means slot A confirmed, nothing pending.
//!
//! Decision (MCUboot's revert mode, without swapping: images run from
//! their slot's copy in DDR):
//! 1. a slot on trial that never confirmed itself: the trial is over,
//!    back to the confirmed slot (reverted);
//! 2. a pending slot: recorded as on trial, then booted once;
//! 3. else the confirmed slot; if it does not verify, the other one.

use dpu_spi_nor::Flash;

pub const MAGIC: u32 = 0x5355_5044;
pub const RECORD: usize = 32;
const NONE: u8 = 0xff;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A firmware slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
    pub fn from_index(i: usize) -> Option<Slot> {
        match i {
            0 => Some(Slot::A),
            1 => Some(Slot::B),
            _ => None,
        }
    }
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
    /// Flash offset of the slot (board layout).
    pub fn offset(self) -> u32 {
        match self {
            Slot::A => dpu_hal::memory_map::FLASH_SLOT_A_OFFSET as u32,
            Slot::B => dpu_hal::memory_map::FLASH_SLOT_B_OFFSET as u32,
        }
    }
}

fn slot_byte(s: Option<Slot>) -> u8 {
    s.map_or(NONE, |s| s.index() as u8)
}

fn byte_slot(b: u8) -> Option<Slot> {
    Slot::from_index(usize::from(b))
}

/// What the journal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootState {
    pub seq: u32,
    /// The slot whose image confirmed itself last.
    pub confirmed: Slot,
    /// A slot to try at the next boot (Firmware Commit, activate).
    pub pending: Option<Slot>,
    /// A slot booted on trial that has not confirmed yet.
    pub trying: Option<Slot>,
}

impl Default for BootState {
    fn default() -> BootState {
        BootState { seq: 0, confirmed: Slot::A, pending: None, trying: None }
    }
}

impl BootState {
    fn encode(&self) -> [u8; RECORD] {
        let mut r = [0u8; RECORD];
        r[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        r[4..8].copy_from_slice(&self.seq.to_le_bytes());
        r[8] = self.confirmed.index() as u8;
        r[9] = slot_byte(self.pending);
        r[10] = slot_byte(self.trying);
        let crc = CRC.checksum(&r[..28]);
        r[28..32].copy_from_slice(&crc.to_le_bytes());
        r
    }

    fn decode(r: &[u8]) -> Option<BootState> {
        if u32::from_le_bytes([r[0], r[1], r[2], r[3]]) != MAGIC || CRC.checksum(&r[..28]).to_le_bytes() != r[28..32] {
            return None;
        }
        Some(BootState { seq: u32::from_le_bytes([r[4], r[5], r[6], r[7]]), confirmed: byte_slot(r[8])?, pending: byte_slot(r[9]), trying: byte_slot(r[10]) })
    }
}

/// The journal partition: two halves of one subsector each.
#[derive(Clone, Copy, Debug)]
pub struct Journal {
    pub offset: u32,
    pub half: u32,
}

/// Where the journal stands: the state and where the next record goes.
#[derive(Clone, Copy, Debug)]
struct Scan {
    state: Option<BootState>,
    /// Half holding the newest record, and the slot after its last used one.
    half: usize,
    next: u32,
}

impl Journal {
    /// The board's `boot_state` partition.
    pub const fn board() -> Journal {
        Journal { offset: dpu_hal::memory_map::FLASH_BOOT_STATE_OFFSET as u32, half: (dpu_hal::memory_map::FLASH_BOOT_STATE_SIZE / 2) as u32 }
    }

    fn scan<F: Flash>(&self, flash: &mut F) -> Result<Scan, F::Error> {
        let mut best: Option<(BootState, usize)> = None;
        let mut used = [0u32; 2];
        let mut r = [0u8; RECORD];
        for half in 0..2 {
            let base = self.offset + half as u32 * self.half;
            let mut at = 0;
            while at + RECORD as u32 <= self.half {
                flash.read(base + at, &mut r)?;
                at += RECORD as u32;
                if r.iter().all(|&b| b == 0xff) {
                    continue;
                }
                used[half] = at;
                if let Some(s) = BootState::decode(&r) {
                    if best.is_none_or(|(b, _)| s.seq > b.seq) {
                        best = Some((s, half));
                    }
                }
            }
        }
        Ok(match best {
            Some((s, half)) => Scan { state: Some(s), half, next: used[half] },
            None => Scan { state: None, half: 0, next: used[0] },
        })
    }

    /// The current state (defaults on a blank journal).
    pub fn read<F: Flash>(&self, flash: &mut F) -> Result<BootState, F::Error> {
        Ok(self.scan(flash)?.state.unwrap_or_default())
    }

    /// Records that the image running from `running` (booted on trial)
    /// confirmed itself: it becomes the confirmed slot and nothing is on
    /// trial. A pending activation of the other slot, committed by the
    /// host before the confirmation, is kept (dropping it would lose the
    /// host's commit); one naming `running` is spent. Read and write go
    /// under one hold of the flash, so the caller holds its lock across.
    pub fn confirm<F: Flash>(&self, flash: &mut F, running: Slot) -> Result<BootState, F::Error> {
        let now = self.read(flash)?;
        let pending = now.pending.filter(|&p| p != running);
        self.write(flash, BootState { seq: 0, confirmed: running, pending, trying: None })
    }

    /// Appends `state` (its sequence is set to the next one); returns it.
    /// After sequence `u32::MAX` (only a corrupted or hostile journal gets
    /// there) the journal starts over: the record goes first into the
    /// other half, freshly erased, with sequence 1, then the half holding
    /// the old records is erased. A power cut in between leaves the old
    /// state in effect.
    pub fn write<F: Flash>(&self, flash: &mut F, state: BootState) -> Result<BootState, F::Error> {
        let s = self.scan(flash)?;
        let mut st = state;
        let top = s.state.map_or(0, |c| c.seq);
        let wrap = top == u32::MAX;
        st.seq = if wrap { 1 } else { top + 1 };
        let (half, at) = if !wrap && s.next + RECORD as u32 <= self.half {
            (s.half, s.next)
        } else {
            // Full (or starting over): the other half, erased first.
            let other = 1 - s.half;
            flash.erase(self.offset + other as u32 * self.half, self.half)?;
            (other, 0)
        };
        flash.program(self.offset + half as u32 * self.half + at, &st.encode())?;
        if wrap {
            flash.erase(self.offset + s.half as u32 * self.half, self.half)?;
        }
        Ok(st)
    }
}

/// How the chosen image runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// The confirmed image.
    Confirmed,
    /// A new image on trial: it must confirm itself.
    Trial,
}

/// Something the decision did that the boot log must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note<E> {
    /// `slot` was on trial and never confirmed: back to `to`.
    Reverted { slot: Slot, to: Slot },
    /// `slot`'s image was refused.
    Refused { slot: Slot, error: E },
    /// The confirmed slot failed; the other one boots and is now confirmed.
    FellBack { from: Slot, to: Slot },
}

/// The outcome of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Slot to run and how; `None`: nothing bootable.
    pub boot: Option<(Slot, Mode)>,
    /// The state to record before running it (`None`: unchanged).
    pub record: Option<BootState>,
}

/// Decides what to boot. `load(slot)` verifies and loads a slot's image
/// (the last successful call is what runs); `note` hears what happened.
pub fn decide<E: Copy>(state: BootState, load: &mut dyn FnMut(Slot) -> Result<(), E>, note: &mut dyn FnMut(Note<E>)) -> Decision {
    let mut st = state;
    let mut changed = false;
    if let Some(t) = st.trying {
        note(Note::Reverted { slot: t, to: st.confirmed });
        st.trying = None;
        st.pending = None;
        changed = true;
    }
    if let Some(p) = st.pending {
        st.pending = None;
        changed = true;
        match load(p) {
            Ok(()) => {
                st.trying = Some(p);
                return Decision { boot: Some((p, Mode::Trial)), record: Some(st) };
            }
            Err(error) => note(Note::Refused { slot: p, error }),
        }
    }
    let c = st.confirmed;
    match load(c) {
        Ok(()) => return Decision { boot: Some((c, Mode::Confirmed)), record: changed.then_some(st) },
        Err(error) => note(Note::Refused { slot: c, error }),
    }
    let o = c.other();
    match load(o) {
        Ok(()) => {
            note(Note::FellBack { from: c, to: o });
            st.confirmed = o;
            Decision { boot: Some((o, Mode::Confirmed)), record: Some(st) }
        }
        Err(error) => {
            note(Note::Refused { slot: o, error });
            Decision { boot: None, record: changed.then_some(st) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpu_spi_nor::ram::RamFlash;
    use dpu_spi_nor::Geometry;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    const G: Geometry = Geometry { size: 1 << 20, page: 256, subsector: 4096, sector: 65536 };
    const J: Journal = Journal { offset: 0x4_0000, half: 4096 };

    fn run(state: BootState, ok: [bool; 2]) -> (Decision, Vec<Note<&'static str>>) {
        let mut notes = Vec::new();
        let d = decide(state, &mut |s| if ok[s.index()] { Ok(()) } else { Err("bad") }, &mut |n| notes.push(n));
        (d, notes)
    }

    #[test]
    fn journal_appends_then_switches_halves() {
        let mut f = RamFlash::new(G);
        assert_eq!(J.read(&mut f).unwrap(), BootState::default());
        let mut last = BootState::default();
        for i in 0..300u32 {
            let s = BootState { pending: (i % 2 == 0).then_some(Slot::B), ..last };
            last = J.write(&mut f, s).unwrap();
            assert_eq!(J.read(&mut f).unwrap(), last, "record {i}");
        }
        assert_eq!(last.seq, 300);
    }

    #[test]
    fn confirming_a_trial_keeps_a_commit_made_before_it() {
        // Slot B runs on trial; before it confirms itself, the host
        // commits a new image into slot A with activation (pending A).
        let mut f = RamFlash::new(G);
        J.write(&mut f, BootState { seq: 0, confirmed: Slot::A, pending: None, trying: Some(Slot::B) }).unwrap();
        let mut st = J.read(&mut f).unwrap();
        st.pending = Some(Slot::A);
        J.write(&mut f, st).unwrap();
        let done = J.confirm(&mut f, Slot::B).unwrap();
        assert_eq!((done.confirmed, done.pending, done.trying), (Slot::B, Some(Slot::A), None));
        assert_eq!(J.read(&mut f).unwrap(), done);
        // A pending record naming the running slot is spent by confirming.
        let mut st = done;
        st.pending = Some(Slot::B);
        J.write(&mut f, st).unwrap();
        let done = J.confirm(&mut f, Slot::B).unwrap();
        assert_eq!((done.confirmed, done.pending, done.trying), (Slot::B, None, None));
    }

    #[test]
    fn the_journal_starts_over_after_the_last_sequence_number() {
        let mut f = RamFlash::new(G);
        let top = BootState { seq: u32::MAX, confirmed: Slot::B, pending: None, trying: None };
        f.program(J.offset + 5 * RECORD as u32, &top.encode()).unwrap();
        assert_eq!(J.read(&mut f).unwrap(), top);
        let want = BootState { pending: Some(Slot::A), ..top };
        // A power cut anywhere in the restart keeps a state: the old one
        // until the new record is complete, the new one after.
        let mut probe = f.clone();
        let w0 = probe.work;
        J.write(&mut probe, want).unwrap();
        let total = probe.work - w0;
        for n in (0..total).step_by(97).chain([4096, 4096 + 31, 4096 + 32]) {
            let mut g = f.clone();
            g.cut_after(n);
            if J.write(&mut g, want).is_ok() {
                continue;
            }
            g.restore();
            let got = J.read(&mut g).unwrap();
            assert!(got == top || got.pending == Some(Slot::A), "cut after {n}: {got:?}");
        }
        let written = J.write(&mut f, want).unwrap();
        assert_eq!(written.seq, 1);
        assert_eq!(J.read(&mut f).unwrap(), written, "the new record is in effect");
        let next = J.write(&mut f, BootState { pending: None, ..written }).unwrap();
        assert_eq!((next.seq, J.read(&mut f).unwrap().pending), (2, None));
    }

    #[test]
    fn a_torn_record_leaves_the_previous_state() {
        let mut base = RamFlash::new(G);
        // Nearly fill the first half so the sweep crosses the half switch.
        let mut s = BootState::default();
        for _ in 0..127 {
            s = J.write(&mut base, s).unwrap();
        }
        // First round: the record that fills the first half; second round:
        // the record that switches halves (erase + program).
        for _ in 0..2 {
            let before = J.read(&mut base).unwrap();
            let want = BootState { pending: Some(Slot::B), ..before };
            let mut probe = base.clone();
            let w0 = probe.work;
            J.write(&mut probe, want).unwrap();
            let total = probe.work - w0;
            for n in 0..total {
                let mut f = base.clone();
                f.cut_after(n);
                assert!(J.write(&mut f, want).is_err());
                f.restore();
                let got = J.read(&mut f).unwrap();
                assert!(got == before, "cut after {n}/{total}: {got:?}");
                // And the journal still takes a record afterwards.
                let after = J.write(&mut f, want).unwrap();
                assert_eq!(J.read(&mut f).unwrap(), after);
                assert_eq!(after.pending, Some(Slot::B));
            }
            J.write(&mut base, before).unwrap();
        }
    }

    #[test]
    fn trial_revert_and_fallback() {
        // Pending B: boots on trial, recorded before it runs.
        let (d, _) = run(BootState { pending: Some(Slot::B), ..Default::default() }, [true, true]);
        assert_eq!(d.boot, Some((Slot::B, Mode::Trial)));
        assert_eq!(d.record, Some(BootState { trying: Some(Slot::B), pending: None, ..Default::default() }));
        // B never confirmed: the next boot reverts to A.
        let (d, notes) = run(d.record.unwrap(), [true, true]);
        assert_eq!(d.boot, Some((Slot::A, Mode::Confirmed)));
        assert_eq!(notes, vec![Note::Reverted { slot: Slot::B, to: Slot::A }]);
        assert_eq!(d.record.unwrap().trying, None);
        // A pending image that does not verify: refused, A boots.
        let (d, notes) = run(BootState { pending: Some(Slot::B), ..Default::default() }, [true, false]);
        assert_eq!(d.boot, Some((Slot::A, Mode::Confirmed)));
        assert_eq!(notes, vec![Note::Refused { slot: Slot::B, error: "bad" }]);
        // Confirmed slot broken: the other one, now confirmed.
        let (d, notes) = run(BootState::default(), [false, true]);
        assert_eq!(d.boot, Some((Slot::B, Mode::Confirmed)));
        assert_eq!(d.record.unwrap().confirmed, Slot::B);
        assert_eq!(notes[1], Note::FellBack { from: Slot::A, to: Slot::B });
        // Nothing bootable.
        let (d, notes) = run(BootState::default(), [false, false]);
        assert_eq!((d.boot, notes.len()), (None, 2));
        // A confirmed state with nothing to do records nothing.
        assert_eq!(run(BootState::default(), [true, true]).0.record, None);
    }
}
