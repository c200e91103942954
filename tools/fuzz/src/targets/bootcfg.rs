//! The firmware's boot configuration parser (`dpu_bootcfg::parse`) over
//! the bytes of the configuration window. Whatever it accepts must be
//! what the firmware relies on: namespaces with a valid function, NSID
//! and block size, RAM sizes that do not overflow, remote namespaces that
//! name an existing controller, ports and controllers with addresses.
//!
//! Input: the window's bytes.

use dpu_bootcfg::{Backend, Table, MAX_NAMESPACES};
use dpu_hal::memory_map::MAX_FUNCTIONS;
use dpu_nvme::MAX_NSID;

pub fn run(data: &[u8]) {
    let _ = dpu_bootcfg::blob_len(data);
    let mut t = Box::new(Table::EMPTY);
    let mut next = 0x4400_0000u64;
    let mut allocated = 0u64;
    let r = dpu_bootcfg::parse(data, &mut t, |bytes| {
        allocated = allocated.checked_add(bytes)?;
        // A DDR of 8 GiB: larger requests fail like the real allocator.
        if allocated > 8 << 30 {
            return None;
        }
        let base = next;
        next += bytes.next_multiple_of(4096);
        Some(base)
    });
    if r.is_err() {
        return;
    }
    let mut n = 0;
    for ns in t.namespaces() {
        n += 1;
        assert!(usize::from(ns.function) < MAX_FUNCTIONS && ns.nsid >= 1 && ns.nsid <= MAX_NSID, "{ns:?}");
        assert!((9..=12).contains(&ns.geometry.block_shift) && ns.geometry.blocks > 0);
        assert!(ns.geometry.blocks.checked_shl(u32::from(ns.geometry.block_shift)).is_some_and(|b| b >> ns.geometry.block_shift == ns.geometry.blocks));
        assert_eq!(t.namespace(ns.function, ns.nsid).map(|x| x.index), Some(ns.index), "index lookup disagrees");
        match ns.backend {
            Backend::Ram(b) => assert_eq!(b.geometry, ns.geometry),
            Backend::Remote { ctrl, nsid } => {
                assert!(t.controller(usize::from(ctrl)).is_some(), "remote namespace names a missing controller: {ns:?}");
                assert!(nsid != 0 && nsid != u32::MAX);
            }
            Backend::Ec { vol } => {
                let v = t.ec_volume(usize::from(vol)).expect("EC namespace names a missing volume");
                assert!(v.k >= 1 && v.m >= 1 && v.width() <= dpu_bootcfg::MAX_EC_MEMBERS, "{v:?}");
                assert!(v.width() + usize::from(v.spares) <= dpu_bootcfg::MAX_EC_MEMBERS, "{v:?}");
                for &(ctrl, nsid) in &v.members[..v.width() + usize::from(v.spares)] {
                    assert!(t.controller(usize::from(ctrl)).is_some() && nsid != 0 && nsid != u32::MAX, "{v:?}");
                }
                let stripe_blocks = u64::from(v.k) * (4096 >> ns.geometry.block_shift);
                assert_eq!(ns.geometry.blocks % stripe_blocks, 0, "not whole stripes: {ns:?}");
            }
            Backend::Local { ssd, nsid } => {
                assert!(usize::from(ssd) < dpu_hal::memory_map::SSD_SLOTS && nsid != 0 && nsid != u32::MAX, "{ns:?}");
            }
        }
    }
    assert!(n <= MAX_NAMESPACES);
    for p in t.ports() {
        assert!(p.ip != [0; 4] && (8..=30).contains(&p.prefix) && (576..=9000).contains(&p.mtu), "{p:?}");
    }
    for k in 0..t.controllers() {
        let c = t.controller(k).expect("controllers are dense");
        assert!(c.traddr != [0; 4] && c.trsvcid != 0 && !c.subnqn().is_empty());
        assert!(c.subnqn().iter().all(|b| b.is_ascii_graphic()));
    }
    let (nqn, _) = t.host();
    assert!(nqn.iter().all(|b| b.is_ascii_graphic()));
}
