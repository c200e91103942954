//! The neighbor table: IPv4 address -> MAC, written by one core (the ARP
//! owner on the control plane) and read by every data-plane core without
//! locks. Each entry is a seqlock: the writer makes the sequence odd,
//! stores, makes it even; a reader retries while it sees an odd or
//! changed sequence, so it never returns a torn entry.

use crate::{Ipv4, Mac};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

struct Entry {
    seq: AtomicU32,
    ip: AtomicU32,
    /// MAC in bits 47:0; 0 = empty.
    mac: AtomicU64,
}

/// A fixed-size table (open addressing over the low address bits).
pub struct NeighborTable<const N: usize> {
    entries: [Entry; N],
}

fn mac_word(m: Mac) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&m);
    u64::from_le_bytes(b) | 1 << 63
}

impl<const N: usize> Default for NeighborTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> NeighborTable<N> {
    pub const fn new() -> Self {
        NeighborTable { entries: [const { Entry { seq: AtomicU32::new(0), ip: AtomicU32::new(0), mac: AtomicU64::new(0) } }; N] }
    }

    fn slot(ip: u32, k: usize) -> usize {
        (ip as usize).wrapping_add(k) % N
    }

    /// Inserts or updates `ip` (single writer). False if the table is full.
    pub fn insert(&self, ip: Ipv4, mac: Mac) -> bool {
        let key = u32::from_be_bytes(ip);
        for k in 0..N {
            let e = &self.entries[Self::slot(key, k)];
            let used = e.mac.load(Ordering::Relaxed) != 0;
            if used && e.ip.load(Ordering::Relaxed) != key {
                continue;
            }
            let s = e.seq.load(Ordering::Relaxed);
            e.seq.store(s.wrapping_add(1), Ordering::Relaxed);
            core::sync::atomic::fence(Ordering::Release);
            e.ip.store(key, Ordering::Relaxed);
            e.mac.store(mac_word(mac), Ordering::Relaxed);
            e.seq.store(s.wrapping_add(2), Ordering::Release);
            return true;
        }
        false
    }

    /// The MAC of `ip`, if known.
    pub fn lookup(&self, ip: Ipv4) -> Option<Mac> {
        let key = u32::from_be_bytes(ip);
        for k in 0..N {
            let e = &self.entries[Self::slot(key, k)];
            loop {
                let s1 = e.seq.load(Ordering::Acquire);
                if s1 & 1 != 0 {
                    core::hint::spin_loop();
                    continue;
                }
                let a = e.ip.load(Ordering::Relaxed);
                let m = e.mac.load(Ordering::Relaxed);
                core::sync::atomic::fence(Ordering::Acquire);
                if e.seq.load(Ordering::Relaxed) != s1 {
                    continue;
                }
                if m == 0 {
                    return None; // empty slot ends the probe
                }
                if a == key {
                    let b = m.to_le_bytes();
                    return Some([b[0], b[1], b[2], b[3], b[4], b[5]]);
                }
                break;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_update() {
        let t: NeighborTable<4> = NeighborTable::new();
        assert_eq!(t.lookup([10, 0, 0, 1]), None);
        assert!(t.insert([10, 0, 0, 1], [2, 0, 0, 0, 0, 1]));
        assert!(t.insert([10, 0, 0, 5], [2, 0, 0, 0, 0, 5]), "collides with .1 mod 4, probes on");
        assert_eq!(t.lookup([10, 0, 0, 5]), Some([2, 0, 0, 0, 0, 5]));
        assert!(t.insert([10, 0, 0, 1], [2, 0, 0, 0, 0, 9]));
        assert_eq!(t.lookup([10, 0, 0, 1]), Some([2, 0, 0, 0, 0, 9]));
        assert!(t.insert([10, 0, 0, 2], [2; 6]));
        assert!(t.insert([10, 0, 0, 3], [2; 6]));
        assert!(!t.insert([10, 0, 0, 4], [2; 6]), "full");
        assert_eq!(t.lookup([10, 0, 0, 4]), None);
    }
}
