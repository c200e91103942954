//! Controller registers (NVMe Base 2.0 §3.1.4) and the CC state machine
//! (§3.5.1 initialization, §3.6 shutdown, §3.7.2 controller reset).

use crate::{MAX_QUEUE_ENTRIES, PAGE_SIZE};

/// Register offsets in BAR0.
pub mod off {
    pub const CAP: u64 = 0x00;
    pub const VS: u64 = 0x08;
    pub const INTMS: u64 = 0x0c;
    pub const INTMC: u64 = 0x10;
    pub const CC: u64 = 0x14;
    pub const CSTS: u64 = 0x1c;
    pub const NSSR: u64 = 0x20;
    pub const AQA: u64 = 0x24;
    pub const ASQ: u64 = 0x28;
    pub const ACQ: u64 = 0x30;
}

/// NVMe version 2.0.0 (VS register).
pub const VERSION: u32 = 0x0002_0000;

/// CAP (§3.1.4.1): MQES, CQR = 1 (contiguous queues required), AMS = round
/// robin only, TO in 500 ms units, DSTRD = 0, CSS = NVM command set,
/// MPSMIN = MPSMAX = 4 KiB, NSSRS = 0.
pub fn cap(timeout_500ms: u8) -> u64 {
    let mqes = u64::from(MAX_QUEUE_ENTRIES - 1);
    mqes | (1 << 16) | (u64::from(timeout_500ms) << 24) | (1 << 37)
}

pub const CSTS_RDY: u32 = 1 << 0;
pub const CSTS_CFS: u32 = 1 << 1;
pub const CSTS_SHST_OCCURRING: u32 = 1 << 2;
pub const CSTS_SHST_COMPLETE: u32 = 2 << 2;
pub const CSTS_SHST_MASK: u32 = 3 << 2;
/// Processing Paused (§3.1.4.6): command processing is paused while a
/// firmware image is activated without reset.
pub const CSTS_PP: u32 = 1 << 5;

/// Controller Configuration (§3.1.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cc(pub u32);

impl Cc {
    pub fn en(self) -> bool {
        self.0 & 1 != 0
    }
    pub fn css(self) -> u32 {
        (self.0 >> 4) & 7
    }
    pub fn mps(self) -> u32 {
        (self.0 >> 7) & 0xf
    }
    pub fn ams(self) -> u32 {
        (self.0 >> 11) & 7
    }
    pub fn shn(self) -> u32 {
        (self.0 >> 14) & 3
    }
    pub fn iosqes(self) -> u32 {
        (self.0 >> 16) & 0xf
    }
    pub fn iocqes(self) -> u32 {
        (self.0 >> 20) & 0xf
    }
}

/// Admin queue configuration taken at enable time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminQueues {
    pub sq: u64,
    pub cq: u64,
    /// Entries (not 0's based).
    pub sq_entries: u16,
    pub cq_entries: u16,
}

/// Why enabling failed (the controller reports CSTS.CFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EnableError {
    AdminQueueAddress,
    AdminQueueSize,
    PageSize,
    CommandSet,
    Arbitration,
    EntrySizes,
}

/// Checks CC, AQA, ASQ and ACQ when the host sets CC.EN (§3.5.1).
pub fn check_enable(cc: Cc, aqa: u32, asq: u64, acq: u64) -> Result<AdminQueues, EnableError> {
    if cc.mps() != 0 {
        return Err(EnableError::PageSize);
    }
    if cc.css() != 0 {
        return Err(EnableError::CommandSet);
    }
    if cc.ams() != 0 {
        return Err(EnableError::Arbitration);
    }
    if cc.iosqes() != 6 || cc.iocqes() != 4 {
        return Err(EnableError::EntrySizes);
    }
    let sq_entries = (aqa & 0xfff) + 1;
    let cq_entries = ((aqa >> 16) & 0xfff) + 1;
    if sq_entries < 2 || cq_entries < 2 || sq_entries > 4096 || cq_entries > 4096 {
        return Err(EnableError::AdminQueueSize);
    }
    if asq % PAGE_SIZE != 0 || acq % PAGE_SIZE != 0 || asq == 0 || acq == 0 {
        return Err(EnableError::AdminQueueAddress);
    }
    Ok(AdminQueues { sq: asq, cq: acq, sq_entries: sq_entries as u16, cq_entries: cq_entries as u16 })
}

/// What a CC write asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CcChange {
    Enable,
    /// CC.EN 1 -> 0: controller reset.
    Disable,
    /// CC.SHN set while enabled.
    Shutdown,
    None,
}

/// Classifies a CC write given the previous value.
pub fn cc_change(old: Cc, new: Cc) -> CcChange {
    match (old.en(), new.en()) {
        (true, false) => CcChange::Disable,
        (false, true) => CcChange::Enable,
        (true, true) if old.shn() == 0 && new.shn() != 0 => CcChange::Shutdown,
        _ => CcChange::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_CC: Cc = Cc((4 << 20) | (6 << 16) | 1);

    #[test]
    fn cap_fields() {
        let c = cap(1);
        assert_eq!(c & 0xffff, 1023, "MQES 0's based");
        assert_eq!((c >> 16) & 1, 1, "CQR");
        assert_eq!((c >> 24) & 0xff, 1, "TO");
        assert_eq!((c >> 37) & 1, 1, "NVM command set");
        assert_eq!((c >> 48) & 0xff, 0, "MPSMIN = MPSMAX = 4 KiB");
    }

    #[test]
    fn enable_checks() {
        let aqa = (31 << 16) | 31;
        let q = check_enable(GOOD_CC, aqa, 0x1000, 0x2000).unwrap();
        assert_eq!((q.sq_entries, q.cq_entries), (32, 32));
        assert_eq!(check_enable(GOOD_CC, aqa, 0x1800, 0x2000), Err(EnableError::AdminQueueAddress));
        assert_eq!(check_enable(GOOD_CC, 0, 0x1000, 0x2000), Err(EnableError::AdminQueueSize));
        assert_eq!(check_enable(Cc(GOOD_CC.0 | (1 << 7)), aqa, 0x1000, 0x2000), Err(EnableError::PageSize));
        assert_eq!(check_enable(Cc(GOOD_CC.0 & !(0xf << 16)), aqa, 0x1000, 0x2000), Err(EnableError::EntrySizes));
        assert_eq!(check_enable(Cc(GOOD_CC.0 | (1 << 11)), aqa, 0x1000, 0x2000), Err(EnableError::Arbitration));
    }

    #[test]
    fn cc_transitions() {
        let off = Cc(0);
        assert_eq!(cc_change(off, GOOD_CC), CcChange::Enable);
        assert_eq!(cc_change(GOOD_CC, off), CcChange::Disable);
        assert_eq!(cc_change(GOOD_CC, Cc(GOOD_CC.0 | (1 << 14))), CcChange::Shutdown);
        assert_eq!(cc_change(GOOD_CC, GOOD_CC), CcChange::None);
    }
}
