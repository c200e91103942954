//! Namespaces attached after boot (through the management API), on top
//! of the boot [`Table`](crate::Table), which stays read-only. Each core
//! that serves namespaces keeps its own [`LiveTable`] and changes it only
//! when a message tells it to (the firmware's `nvme::live`); nothing here
//! is shared between cores.

use crate::{Backend, Namespace, MAX_NSID};
use dpu_bdev::{Geometry, RamBdev};

/// Most namespaces attached at run time at once (over all functions).
pub const MAX_LIVE: usize = 16;

/// Index of a live namespace (beyond any slot of the boot table's
/// per-namespace state, which a RAM namespace does not need).
pub const LIVE_INDEX: u16 = u16::MAX;

/// Where a namespace attached at run time keeps its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveBackend {
    /// A RAM block device in DPU DDR from this address.
    Ram { base: u64 },
    /// Namespace `nsid` of remote controller `ctrl` (a controller
    /// attached at run time, `bdev_nvme_attach_controller`).
    Remote { ctrl: u16, nsid: u32 },
    /// Erasure-coded volume `vol` (an index of the data plane's run-time
    /// volume table, `bdev_ec_create`).
    Ec { vol: u16 },
}

/// A namespace attached at run time: namespace `nsid` of PCIe function
/// `function`, `blocks` blocks of 2^`block_shift` bytes held by
/// `backend`, encrypted with the crypto engines' key slot `crypto` if
/// set (a crypto block device, `bdev_crypto_create`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveNs {
    pub function: u16,
    pub nsid: u32,
    pub backend: LiveBackend,
    pub blocks: u64,
    pub block_shift: u8,
    pub crypto: Option<u16>,
    /// The management server's slot of the block device (0..[`MAX_LIVE`]):
    /// its I/O statistics are counted in slot `MAX_NAMESPACES + stat`
    /// ([`Namespace::stat`]), so they follow the device, not the mapping.
    pub stat: u8,
    /// The device's first mapping since it was made: each core clears
    /// the statistics slot before counting in it (a deleted device's
    /// counts do not carry over to the next one in its slot).
    pub fresh: bool,
}

impl LiveNs {
    /// The namespace as the block layer and Identify see it.
    pub fn namespace(&self) -> Namespace {
        Namespace {
            function: self.function,
            nsid: self.nsid,
            geometry: Geometry { blocks: self.blocks, block_shift: self.block_shift },
            backend: match self.backend {
                LiveBackend::Ram { base } => Backend::Ram(RamBdev::new(base, self.blocks, self.block_shift)),
                LiveBackend::Remote { ctrl, nsid } => Backend::Remote { ctrl, nsid },
                LiveBackend::Ec { vol } => Backend::Ec { vol },
            },
            index: LIVE_INDEX,
            crypto: self.crypto,
            subsystem: None,
            stat: (crate::MAX_NAMESPACES + usize::from(self.stat)) as u16,
        }
    }
}

/// One core's copy of the namespaces attached at run time.
#[derive(Clone, Copy)]
pub struct LiveTable {
    slots: [Option<Namespace>; MAX_LIVE],
}

impl LiveTable {
    pub const EMPTY: LiveTable = LiveTable { slots: [None; MAX_LIVE] };

    /// Namespace `nsid` of function `f`, if attached.
    pub fn get(&self, f: u16, nsid: u32) -> Option<&Namespace> {
        self.slots.iter().flatten().find(|n| n.function == f && n.nsid == nsid)
    }

    /// Adds (or replaces) a namespace; false if its NSID is out of range
    /// or the table is full.
    pub fn insert(&mut self, ns: Namespace) -> bool {
        if !(1..=MAX_NSID).contains(&ns.nsid) {
            return false;
        }
        self.remove(ns.function, ns.nsid);
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(s) => {
                *s = Some(ns);
                true
            }
            None => false,
        }
    }

    /// The namespaces attached.
    pub fn iter(&self) -> impl Iterator<Item = &Namespace> {
        self.slots.iter().flatten()
    }

    /// Removes namespace `nsid` of function `f`; whether it was there.
    pub fn remove(&mut self, f: u16, nsid: u32) -> bool {
        match self.slots.iter_mut().find(|s| s.is_some_and(|n| n.function == f && n.nsid == nsid)) {
            Some(s) => {
                *s = None;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(function: u16, nsid: u32) -> LiveNs {
        LiveNs { function, nsid, backend: LiveBackend::Ram { base: 0x1000_0000 + u64::from(nsid) * 0x10_0000 }, blocks: 2048, block_shift: 9, crypto: None, stat: 0, fresh: false }
    }

    #[test]
    fn remote_namespace_keeps_its_controller_and_nsid() {
        let mut t = LiveTable::EMPTY;
        let ns = LiveNs { function: 2, nsid: 3, backend: LiveBackend::Remote { ctrl: 5, nsid: 7 }, blocks: 4096, block_shift: 12, crypto: Some(9), stat: 3, fresh: true };
        assert!(t.insert(ns.namespace()));
        let got = t.get(2, 3).unwrap();
        assert_eq!(got.backend, Backend::Remote { ctrl: 5, nsid: 7 });
        assert_eq!(got.crypto, Some(9), "a crypto device's namespace keeps its key slot");
        assert_eq!((got.geometry.blocks, got.geometry.block_shift, got.index), (4096, 12, LIVE_INDEX));
        assert_eq!(usize::from(got.stat), crate::MAX_NAMESPACES + 3, "statistics follow the management slot");
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn ec_namespace_keeps_its_volume() {
        let mut t = LiveTable::EMPTY;
        let ns = LiveNs { function: 1, nsid: 2, backend: LiveBackend::Ec { vol: 3 }, blocks: 1024, block_shift: 9, crypto: None, stat: 0, fresh: false };
        assert!(t.insert(ns.namespace()));
        assert_eq!(t.get(1, 2).unwrap().backend, Backend::Ec { vol: 3 });
    }

    #[test]
    fn attach_detach_and_bounds() {
        let mut t = LiveTable::EMPTY;
        assert!(t.insert(ns(1, 1).namespace()));
        let got = t.get(1, 1).unwrap();
        assert_eq!((got.geometry.blocks, got.geometry.block_shift, got.index, got.crypto), (2048, 9, LIVE_INDEX, None));
        assert_eq!(got.backend, Backend::Ram(RamBdev::new(0x1010_0000, 2048, 9)));
        assert!(t.get(2, 1).is_none() && t.get(1, 2).is_none(), "other function / nsid");
        // NSID 0 and past MAX_NSID are no namespace.
        assert!(!t.insert(ns(1, 0).namespace()));
        assert!(!t.insert(ns(1, MAX_NSID + 1).namespace()));
        // Replacing keeps one entry.
        let mut bigger = ns(1, 1);
        bigger.blocks = 4096;
        assert!(t.insert(bigger.namespace()));
        assert_eq!(t.get(1, 1).unwrap().geometry.blocks, 4096);
        assert!(t.remove(1, 1));
        assert!(!t.remove(1, 1), "gone");
        assert!(t.get(1, 1).is_none());
    }

    #[test]
    fn full_table_refuses_then_frees() {
        const _: () = assert!(MAX_LIVE < MAX_NSID as usize);
        let mut t = LiveTable::EMPTY;
        for i in 1..=MAX_LIVE as u32 {
            assert!(t.insert(ns(2, i).namespace()));
        }
        assert!(!t.insert(ns(3, 1).namespace()), "full");
        assert!(t.remove(2, 1));
        assert!(t.insert(ns(3, 1).namespace()), "a freed slot is reused");
        assert!(t.get(3, 1).is_some() && t.get(2, 1).is_none() && t.get(2, MAX_LIVE as u32).is_some());
    }
}
