//! Firmware update from the host: Firmware Image Download (NVMe Base 2.0
//! §5.13, opcode 11h), Firmware Commit (§5.12, opcode 10h) and the
//! Firmware Slot Information log page (§5.16.1.4, figure 209).
//!
//! The card has two firmware slots, NVMe slot 1 = flash slot A and NVMe
//! slot 2 = flash slot B (Identify Controller FRMW: two slots, none read
//! only; bit 4, activation without reset, where the firmware offers it). This module decides what a command
//! asks and whether it may; moving the data and writing the flash is the
//! firmware's business.
//!
//! * [`decode_download`] + [`Assembly`]: NUMD/OFST are in dwords; pieces
//!   must arrive in order, each starting at a multiple of the update
//!   granularity ([`GRANULARITY`], FWUG); a piece at offset 0 starts a new
//!   image; a piece that overlaps what was already received is refused
//!   with Overlapping Range (SC 14h), a gap with Invalid Field.
//! * [`decode_commit`] + [`Commit::plan`]: commit actions 000b-011b
//!   (011b without a newly downloaded image activates the slot's image);
//!   the boot partition actions (110b, 111b) and reserved ones are
//!   Invalid Field; slots above the number supported are Invalid Firmware
//!   Slot (SC 06h), and so is the slot the card runs from (it is the
//!   fallback of a new image until that one confirms itself).
//! * [`SlotLog`]: AFI and FRS1..FRS7.

use crate::sqe::Sqe;
use crate::status::Status;

/// Firmware Commit (figure 28).
pub const OPC_FIRMWARE_COMMIT: u8 = 0x10;
/// Firmware Image Download (figure 28).
pub const OPC_FIRMWARE_DOWNLOAD: u8 = 0x11;
/// Firmware slots (FRMW.NOFS).
pub const SLOTS: u8 = 2;
/// Firmware Update Granularity in bytes (FWUG = 1: 4 KiB units, §5.17.2.1
/// figure 275 byte 319). Every piece's offset must be a multiple of it;
/// only the last piece of an image may be shorter than a multiple.
pub const GRANULARITY: u32 = 4096;
/// Identify Controller FWUG value (4 KiB units).
pub const FWUG: u8 = (GRANULARITY / 4096) as u8;
/// Identify Controller FRMW of a controller that offers firmware update:
/// bit 0 clear (slot 1 writable), bits 3:1 = number of slots; bit 4
/// (activation without reset) is added by `identify::controller` when
/// the controller gives an MTFA.
pub const FRMW: u8 = SLOTS << 1;

/// One piece of an image (Firmware Image Download CDW10/CDW11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Download {
    /// Byte offset in the image (OFST x 4).
    pub offset: u32,
    /// Bytes in this piece ((NUMD + 1) x 4).
    pub len: u32,
}

/// Decodes Firmware Image Download: CDW10 = NUMD (0's based dwords),
/// CDW11 = OFST (dwords). A piece above the maximum data transfer size
/// (MDTS) or an offset past 4 GiB is Invalid Field.
pub fn decode_download(sqe: &Sqe) -> Result<Download, Status> {
    let len = (u64::from(sqe.cdw10()) + 1) * 4;
    let offset = u64::from(sqe.cdw11()) * 4;
    if len > crate::MAX_TRANSFER || offset + len > u64::from(u32::MAX) {
        return Err(Status::INVALID_FIELD);
    }
    Ok(Download { offset: offset as u32, len: len as u32 })
}

/// The image being downloaded: how many bytes arrived in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assembly {
    /// Bytes received (a prefix of the image).
    pub received: u32,
    /// Largest image (the staging buffer, the flash slot).
    pub max: u32,
}

impl Assembly {
    pub const fn new(max: u32) -> Assembly {
        Assembly { received: 0, max }
    }

    /// Checks that `d` may be received now (before its data moves).
    /// Offset 0 starts a new image (what was received is dropped once
    /// the piece arrives, see [`Assembly::arrived`]).
    pub fn check(&self, d: Download) -> Result<(), Status> {
        if d.offset % GRANULARITY != 0 {
            return Err(Status::INVALID_FIELD);
        }
        if u64::from(d.offset) + u64::from(d.len) > u64::from(self.max) {
            return Err(Status::INVALID_FIELD);
        }
        if d.offset != 0 {
            if d.offset < self.received {
                return Err(Status::OVERLAPPING_RANGE);
            }
            if d.offset > self.received {
                // A gap: pieces come in order.
                return Err(Status::INVALID_FIELD);
            }
        }
        Ok(())
    }

    /// `d` (checked) arrived whole.
    pub fn arrived(&mut self, d: Download) {
        self.received = d.offset + d.len;
    }

    /// The image was committed (or refused): the next one starts afresh.
    pub fn reset(&mut self) {
        self.received = 0;
    }
}

/// Commit Action (CDW10 bits 5:3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// 000b: the downloaded image replaces the slot's; not activated.
    Replace,
    /// 001b: replace, activate at the next reset.
    ReplaceAndActivate,
    /// 010b: activate the slot's existing image at the next reset.
    Activate,
    /// 011b: the downloaded image, if there is one, replaces the slot's;
    /// the slot is activated at once, without reset (the firmware's
    /// business: it may instead activate at the next reset and say so,
    /// see [`Commit::done_status`]). Without a newly downloaded image the
    /// slot's existing image is activated.
    ReplaceAndActivateNow,
}

impl Action {
    /// Whether a downloaded image is written into the slot (for 011b:
    /// when one was downloaded, see [`Commit::plan`]).
    pub fn replaces(self) -> bool {
        !matches!(self, Action::Activate)
    }
    /// Whether the slot boots next.
    pub fn activates(self) -> bool {
        !matches!(self, Action::Replace)
    }
}

/// A decoded Firmware Commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Firmware Slot (CDW10 bits 2:0): 0 = the controller chooses.
    pub slot: u8,
    pub action: Action,
}

/// Decodes Firmware Commit CDW10: FS bits 2:0, CA bits 5:3, BPID bit 31.
/// Boot partitions are not supported (CA 110b/111b, BPID set: Invalid
/// Field); CA 100b and 101b are reserved (Invalid Field).
pub fn decode_commit(sqe: &Sqe) -> Result<Commit, Status> {
    let c = sqe.cdw10();
    if c & (1 << 31) != 0 {
        return Err(Status::INVALID_FIELD);
    }
    let action = match (c >> 3) & 7 {
        0 => Action::Replace,
        1 => Action::ReplaceAndActivate,
        2 => Action::Activate,
        3 => Action::ReplaceAndActivateNow,
        _ => return Err(Status::INVALID_FIELD),
    };
    Ok(Commit { slot: (c & 7) as u8, action })
}

/// What a commit does, resolved against the running slot and what was
/// downloaded ([`Commit::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// NVMe slot (1-based).
    pub slot: u8,
    /// Write the downloaded image into the slot first.
    pub replace: bool,
    /// Make the slot's image the one the next boot runs.
    pub activate: bool,
}

impl Commit {
    /// What this commit does, given the slot the card runs from and the
    /// bytes downloaded and not yet committed (`staged`), per §5.12
    /// figure 189: 000b and 001b replace the slot's image with the
    /// downloaded one (none downloaded: Invalid Firmware Image); 010b
    /// activates the slot's existing image; 011b replaces it if an image
    /// was downloaded, and "if there is not a newly downloaded image,
    /// then the existing image in the specified firmware slot is
    /// activated". Slot checks as in [`Commit::resolve`], applied to
    /// what the commit really does.
    pub fn plan(&self, running: u8, staged: u32) -> Result<Plan, Status> {
        let replace = match self.action {
            Action::Replace | Action::ReplaceAndActivate => true,
            Action::Activate => false,
            Action::ReplaceAndActivateNow => staged > 0,
        };
        let effective = Commit { slot: self.slot, action: if replace { self.action } else { Action::Activate } };
        let slot = effective.resolve(running)?;
        if replace && staged == 0 {
            // Nothing downloaded to replace the slot's image with.
            return Err(Status::INVALID_FIRMWARE_IMAGE);
        }
        Ok(Plan { slot, replace, activate: self.action.activates() })
    }

    /// The NVMe slot (1-based) the commit acts on, given the slot the
    /// card runs from. Slot 0: the controller chooses the slot it does
    /// not run from. Slots above [`SLOTS`] are Invalid Firmware Slot; so
    /// is replacing the running slot (it is what the card falls back to).
    /// Activating the running slot is allowed: it cancels a pending one.
    pub fn resolve(&self, running: u8) -> Result<u8, Status> {
        let slot = match self.slot {
            0 => {
                if running == 1 {
                    2
                } else {
                    1
                }
            }
            s if s > SLOTS => return Err(Status::INVALID_FIRMWARE_SLOT),
            s => s,
        };
        if self.action.replaces() && slot == running {
            return Err(Status::INVALID_FIRMWARE_SLOT);
        }
        Ok(slot)
    }

    /// The status of a commit that did what it was asked and activates at
    /// the next card restart (the bootloader picks the slot), which a
    /// controller reset (CC.EN) does not do - so an activating action
    /// says Firmware Activation Requires Conventional Reset (SC 0Bh,
    /// §5.12.1: "the commit was successful, however, activation of the
    /// firmware image requires a conventional reset"). A 011b the
    /// firmware activates at once completes with Success instead, from
    /// the new image.
    pub fn done_status(&self) -> Status {
        if self.action.activates() {
            Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET
        } else {
            Status::SUCCESS
        }
    }
}

/// The Firmware Slot Information log (512 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotLog {
    /// The slot the running firmware came from (1-based; 0 if unknown).
    pub active: u8,
    /// The slot activated at the next reset, if any.
    pub next: Option<u8>,
    /// Revision (8 ASCII bytes) of the image in each slot; `None`: empty.
    pub revisions: [Option<[u8; 8]>; 7],
}

impl SlotLog {
    /// Renders figure 209: AFI (bits 2:0 active slot, bits 6:4 slot
    /// activated at the next reset), FRS1..FRS7 at bytes 8..64 (all zeros
    /// for a slot with no valid image).
    pub fn render(&self, out: &mut [u8]) {
        out[..512].fill(0);
        out[0] = (self.active & 7) | (self.next.unwrap_or(0) & 7) << 4;
        for (i, r) in self.revisions.iter().enumerate() {
            if let Some(r) = r {
                out[8 + 8 * i..16 + 8 * i].copy_from_slice(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dl(numd: u32, ofst: u32) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(10, numd);
        s.set_dw(11, ofst);
        s
    }

    fn commit(cdw10: u32) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(10, cdw10);
        s
    }

    #[test]
    fn download_fields_are_dwords() {
        assert_eq!(decode_download(&dl(1023, 0)), Ok(Download { offset: 0, len: 4096 }));
        assert_eq!(decode_download(&dl(0, 1024)), Ok(Download { offset: 4096, len: 4 }));
        // 128 KiB is MDTS; one dword more is not.
        assert_eq!(decode_download(&dl(32 * 1024 - 1, 0)).unwrap().len, 128 * 1024);
        assert_eq!(decode_download(&dl(32 * 1024, 0)), Err(Status::INVALID_FIELD));
        assert_eq!(decode_download(&dl(0, u32::MAX)), Err(Status::INVALID_FIELD), "offset past 4 GiB");
    }

    #[test]
    fn pieces_in_order_overlaps_and_gaps() {
        let mut a = Assembly::new(1 << 20);
        let p = |offset, len| Download { offset, len };
        a.check(p(0, 8192)).unwrap();
        a.arrived(p(0, 8192));
        a.check(p(8192, 4096)).unwrap();
        a.arrived(p(8192, 4096));
        assert_eq!(a.received, 12288);
        assert_eq!(a.check(p(4096, 4096)), Err(Status::OVERLAPPING_RANGE), "sent again");
        assert_eq!(a.check(p(16384, 4096)), Err(Status::INVALID_FIELD), "a gap");
        assert_eq!(a.check(p(12290, 4)), Err(Status::INVALID_FIELD), "not on the granularity");
        // A short last piece: nothing can follow it.
        a.check(p(12288, 100)).unwrap();
        a.arrived(p(12288, 100));
        assert_eq!(a.check(p(12388, 4)), Err(Status::INVALID_FIELD));
        // Past the staging buffer.
        assert_eq!(a.check(p(0, (1 << 20) + 4)), Err(Status::INVALID_FIELD));
        // Offset 0 starts over.
        a.check(p(0, 4096)).unwrap();
        a.arrived(p(0, 4096));
        assert_eq!(a.received, 4096);
        a.reset();
        assert_eq!(a.received, 0);
    }

    #[test]
    fn commit_actions_and_slots() {
        // FS 2, CA 001b.
        let c = decode_commit(&commit(2 | 1 << 3)).unwrap();
        assert_eq!(c, Commit { slot: 2, action: Action::ReplaceAndActivate });
        assert_eq!(c.resolve(1), Ok(2));
        assert_eq!(c.resolve(2), Err(Status::INVALID_FIRMWARE_SLOT), "the running slot is not replaced");
        assert_eq!(c.done_status(), Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
        // FS 0: the slot the card does not run from.
        assert_eq!(decode_commit(&commit(0)).unwrap().resolve(1), Ok(2));
        assert_eq!(decode_commit(&commit(0)).unwrap().resolve(2), Ok(1));
        assert_eq!(decode_commit(&commit(0)).unwrap().done_status(), Status::SUCCESS, "000b: not activated");
        // FS 3..7: no such slot.
        for fs in 3..8 {
            assert_eq!(decode_commit(&commit(fs | 2 << 3)).unwrap().resolve(1), Err(Status::INVALID_FIRMWARE_SLOT), "slot {fs}");
        }
        // 010b on the running slot: allowed (cancels a pending activation).
        assert_eq!(decode_commit(&commit(1 | 2 << 3)).unwrap().resolve(1), Ok(1));
        // 011b: replaced, activation needs a reset.
        let now = decode_commit(&commit(2 | 3 << 3)).unwrap();
        assert_eq!(now.action, Action::ReplaceAndActivateNow);
        assert!(now.action.replaces() && now.action.activates());
        // Boot partitions and reserved actions.
        for ca in 4..8 {
            assert_eq!(decode_commit(&commit(1 | ca << 3)), Err(Status::INVALID_FIELD), "CA {ca}");
        }
        assert_eq!(decode_commit(&commit(1 | 1 << 3 | 1 << 31)), Err(Status::INVALID_FIELD), "BPID");
    }

    #[test]
    fn activate_now_without_a_new_image_activates_the_slots_image() {
        // §5.12 figure 189, CA 011b: "Downloaded image replaces the
        // existing image, if any, in the specified Firmware Slot and is
        // then activated ... If there is not a newly downloaded image,
        // then the existing image in the specified firmware slot is
        // activated".
        let now = |fs: u32| decode_commit(&commit(fs | 3 << 3)).unwrap();
        assert_eq!(now(2).plan(1, 0), Ok(Plan { slot: 2, replace: false, activate: true }), "nothing downloaded: slot 2's image");
        assert_eq!(now(2).plan(1, 8192), Ok(Plan { slot: 2, replace: true, activate: true }), "a downloaded image replaces it");
        assert_eq!(now(0).plan(1, 0), Ok(Plan { slot: 2, replace: false, activate: true }), "FS 0: the slot not running");
        // Nothing downloaded, the running slot: activating what runs.
        assert_eq!(now(1).plan(1, 0), Ok(Plan { slot: 1, replace: false, activate: true }));
        // A downloaded image never replaces the running slot.
        assert_eq!(now(1).plan(1, 4096), Err(Status::INVALID_FIRMWARE_SLOT));
        assert_eq!(now(6).plan(1, 0), Err(Status::INVALID_FIRMWARE_SLOT));
        // 000b and 001b need a downloaded image; 010b ignores one.
        assert_eq!(decode_commit(&commit(2)).unwrap().plan(1, 0), Err(Status::INVALID_FIRMWARE_IMAGE));
        assert_eq!(decode_commit(&commit(2 | 1 << 3)).unwrap().plan(1, 0), Err(Status::INVALID_FIRMWARE_IMAGE));
        assert_eq!(decode_commit(&commit(2 | 1 << 3)).unwrap().plan(1, 4096), Ok(Plan { slot: 2, replace: true, activate: true }));
        assert_eq!(decode_commit(&commit(2)).unwrap().plan(1, 4096), Ok(Plan { slot: 2, replace: true, activate: false }));
        assert_eq!(decode_commit(&commit(2 | 2 << 3)).unwrap().plan(1, 4096), Ok(Plan { slot: 2, replace: false, activate: true }));
        // Slot checks come first.
        assert_eq!(decode_commit(&commit(1)).unwrap().plan(1, 0), Err(Status::INVALID_FIRMWARE_SLOT), "replacing the running slot");
        assert_eq!(decode_commit(&commit(5 | 1 << 3)).unwrap().plan(1, 0), Err(Status::INVALID_FIRMWARE_SLOT));
    }

    #[test]
    fn slot_log_layout() {
        let mut revisions = [None; 7];
        revisions[0] = Some(*b"0.1.0   ");
        revisions[1] = Some(*b"0.2.0   ");
        let log = SlotLog { active: 1, next: Some(2), revisions };
        let mut b = [0xaau8; 512];
        log.render(&mut b);
        assert_eq!(b[0], 0x21, "active 1, next 2");
        assert_eq!(&b[8..16], b"0.1.0   ");
        assert_eq!(&b[16..24], b"0.2.0   ");
        assert!(b[24..].iter().all(|&x| x == 0) && b[1..8].iter().all(|&x| x == 0));
        SlotLog { active: 2, next: None, revisions: [None; 7] }.render(&mut b);
        assert_eq!(b[0], 0x02);
    }
}
