//! Namespace changes of one NVM subsystem, told to all its controllers
//! wherever they run: a subsystem's dynamic controllers (NVMe over
//! Fabrics, one per connected host) live on the data-plane cores that
//! hold their admin queues, and the namespace set is changed by the
//! management core. Each change bumps a generation and stamps the NSID
//! with it; a controller remembers the generation it last looked at and,
//! on its next poll, puts every NSID stamped after it on its Changed
//! Namespace List (NVMe Base 2.0 §5.16.1.5) and raises a Namespace
//! Attribute Changed notice (§5.2.1, figure 149).
//!
//! Readers take no lock (atomic loads); writers (rare: a management
//! request) serialize on a small spin lock.

use crate::logs::ChangedNs;
use crate::MAX_NSID;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The change feed of one subsystem (a `static` the front end keeps).
pub struct NamespaceFeed {
    lock: AtomicBool,
    generation: AtomicU32,
    /// Generation of the last change of NSID n at index n; index 0: a
    /// change of an NSID outside 1..=[`MAX_NSID`] (or of all of them),
    /// which reads as "rescan all" (FFFFFFFFh).
    stamp: [AtomicU32; MAX_NSID as usize + 1],
}

impl Default for NamespaceFeed {
    fn default() -> Self {
        NamespaceFeed::NEW
    }
}

impl NamespaceFeed {
    #[allow(clippy::declare_interior_mutable_const)] // a template for statics
    pub const NEW: NamespaceFeed = NamespaceFeed { lock: AtomicBool::new(false), generation: AtomicU32::new(0), stamp: [const { AtomicU32::new(0) }; MAX_NSID as usize + 1] };

    /// The current generation: a controller created now starts from it
    /// (changes before it are not news to its host).
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Namespace `nsid` changed (attached, detached, resized); `0` or an
    /// NSID above [`MAX_NSID`]: rescan all.
    pub fn publish(&self, nsid: u32) {
        while self.lock.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let g = self.generation.load(Ordering::Relaxed).wrapping_add(1);
        let at = if (1..=MAX_NSID).contains(&nsid) { nsid as usize } else { 0 };
        // The stamp first: a reader that sees generation `g` sees it.
        self.stamp[at].store(g, Ordering::Relaxed);
        self.generation.store(g, Ordering::Release);
        self.lock.store(false, Ordering::Release);
    }

    /// The changes after generation `*seen`, onto `list`; `*seen` moves
    /// to the current generation. Returns whether there was any change.
    pub fn collect(&self, seen: &mut u32, list: &mut ChangedNs) -> bool {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return false;
        }
        for (n, s) in self.stamp.iter().enumerate() {
            let at = s.load(Ordering::Relaxed);
            // After `seen`, not after `g` (a change still being published
            // is taken on the next look).
            let after_seen = at.wrapping_sub(*seen) as i32 > 0;
            let up_to_g = g.wrapping_sub(at) as i32 >= 0;
            if after_seen && up_to_g {
                if n == 0 {
                    list.record_all();
                } else {
                    list.record(n as u32);
                }
            }
        }
        *seen = g;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(c: &ChangedNs) -> [u32; 4] {
        let mut b = [0u8; 16];
        c.render(&mut b);
        core::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
    }

    /// Two controllers that looked at different times each get the
    /// changes after their own look, once.
    #[test]
    fn each_controller_gets_the_changes_after_its_own_look() {
        let feed = NamespaceFeed::NEW;
        let mut early = feed.generation();
        feed.publish(3);
        let mut late = feed.generation();
        feed.publish(1);
        feed.publish(3);
        let (mut a, mut b) = (ChangedNs::EMPTY, ChangedNs::EMPTY);
        assert!(feed.collect(&mut early, &mut a));
        assert_eq!(words(&a), [1, 3, 0, 0]);
        assert!(feed.collect(&mut late, &mut b));
        assert_eq!(words(&b), [1, 3, 0, 0], "3 changed again after the late look");
        let mut c = ChangedNs::EMPTY;
        assert!(!feed.collect(&mut early, &mut c), "nothing new");
        assert!(c.is_empty());
        feed.publish(7);
        assert!(feed.collect(&mut early, &mut c));
        assert_eq!(words(&c), [7, 0, 0, 0], "only the change after the last look");
    }

    #[test]
    fn an_nsid_out_of_range_means_rescan_all() {
        let feed = NamespaceFeed::NEW;
        let mut seen = feed.generation();
        feed.publish(MAX_NSID + 1);
        let mut c = ChangedNs::EMPTY;
        assert!(feed.collect(&mut seen, &mut c));
        assert_eq!(words(&c), [u32::MAX, 0, 0, 0]);
    }
}
