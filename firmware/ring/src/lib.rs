//! Single-producer single-consumer message rings between cores.
//!
//! A [`Ring`] lives in a `static` shared by two harts. Each side claims its
//! endpoint once ([`Ring::producer`] / [`Ring::consumer`]); a second claim
//! returns `None`, so the single-producer/single-consumer contract is
//! enforced by the API rather than by convention. Messages are `Copy`
//! values; the ring never allocates. Paired with a mailbox doorbell, a ring
//! is how the control plane and the data-plane reactors talk (DESIGN.md §3).
//!
//! Ordering: the producer writes the slot, then publishes `tail` with
//! Release; the consumer reads `tail` with Acquire before reading the slot,
//! and publishes `head` with Release after it (and vice versa for space).
#![no_std]

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Keeps the producer and consumer indices on separate cache lines.
#[repr(align(64))]
struct Padded<T>(T);

/// A bounded SPSC ring of `N` slots (`N` a power of two, at most 2^31).
pub struct Ring<T: Copy, const N: usize> {
    /// Next slot to read (owned by the consumer).
    head: Padded<AtomicU32>,
    /// Next slot to write (owned by the producer).
    tail: Padded<AtomicU32>,
    producer_claimed: AtomicBool,
    consumer_claimed: AtomicBool,
    slots: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: slots are only written by the single producer before publishing
// `tail` and only read by the single consumer after observing it; endpoint
// uniqueness is enforced by the claim flags.
unsafe impl<T: Copy + Send, const N: usize> Sync for Ring<T, N> {}

impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Ring<T, N> {
    const CHECK: () = assert!(N.is_power_of_two() && N <= 1 << 31, "ring size must be a power of two");

    /// An empty ring (usable in `static` initializers).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        Ring {
            head: Padded(AtomicU32::new(0)),
            tail: Padded(AtomicU32::new(0)),
            producer_claimed: AtomicBool::new(false),
            consumer_claimed: AtomicBool::new(false),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Claims the producer endpoint (once).
    pub fn producer(&self) -> Option<Producer<'_, T, N>> {
        (!self.producer_claimed.swap(true, Ordering::AcqRel)).then_some(Producer { ring: self })
    }

    /// Claims the consumer endpoint (once).
    pub fn consumer(&self) -> Option<Consumer<'_, T, N>> {
        (!self.consumer_claimed.swap(true, Ordering::AcqRel)).then_some(Consumer { ring: self })
    }

    /// Messages currently queued (a snapshot).
    pub fn len(&self) -> usize {
        self.tail.0.load(Ordering::Acquire).wrapping_sub(self.head.0.load(Ordering::Acquire)) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub const fn capacity(&self) -> usize {
        N
    }
}

/// The sending side of a ring.
pub struct Producer<'a, T: Copy, const N: usize> {
    ring: &'a Ring<T, N>,
}

impl<T: Copy, const N: usize> Producer<'_, T, N> {
    /// Enqueues `v`; gives it back if the ring is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let r = self.ring;
        let tail = r.tail.0.load(Ordering::Relaxed);
        let head = r.head.0.load(Ordering::Acquire);
        if tail.wrapping_sub(head) as usize >= N {
            return Err(v);
        }
        // SAFETY: slot `tail` is not visible to the consumer until `tail`
        // is published below, and only this (unique) producer writes it.
        unsafe { (*r.slots[tail as usize & (N - 1)].get()).write(v) };
        r.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Free slots (a lower bound: the consumer may free more meanwhile).
    pub fn free(&self) -> usize {
        N - self.ring.len()
    }
}

/// The receiving side of a ring.
pub struct Consumer<'a, T: Copy, const N: usize> {
    ring: &'a Ring<T, N>,
}

impl<T: Copy, const N: usize> Consumer<'_, T, N> {
    /// Dequeues the oldest message.
    pub fn pop(&mut self) -> Option<T> {
        let r = self.ring;
        let head = r.head.0.load(Ordering::Relaxed);
        let tail = r.tail.0.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: the producer published slot `head` (tail moved past it)
        // and will not touch it until `head` is advanced below.
        let v = unsafe { (*r.slots[head as usize & (N - 1)].get()).assume_init_read() };
        r.head.0.store(head.wrapping_add(1), Ordering::Release);
        Some(v)
    }

    /// Whether a message is waiting.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn fifo_order_full_and_empty() {
        let r: Ring<u32, 4> = Ring::new();
        let mut p = r.producer().unwrap();
        let mut c = r.consumer().unwrap();
        assert_eq!(c.pop(), None);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(9), Err(9), "full ring gives the value back");
        assert_eq!(r.len(), 4);
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        let got: Vec<u32> = core::iter::from_fn(|| c.pop()).collect();
        assert_eq!(got, [1, 2, 3, 4]);
        assert!(r.is_empty());
    }

    #[test]
    fn endpoints_are_claimed_once() {
        let r: Ring<u8, 2> = Ring::new();
        assert!(r.producer().is_some());
        assert!(r.producer().is_none());
        assert!(r.consumer().is_some());
        assert!(r.consumer().is_none());
    }

    #[test]
    fn indices_wrap_around_u32() {
        let r: Ring<u64, 8> = Ring::new();
        r.head.0.store(u32::MAX - 2, Ordering::Relaxed);
        r.tail.0.store(u32::MAX - 2, Ordering::Relaxed);
        let mut p = r.producer().unwrap();
        let mut c = r.consumer().unwrap();
        for i in 0..8 {
            p.push(i).unwrap();
        }
        assert!(p.push(8).is_err());
        for i in 0..8 {
            assert_eq!(c.pop(), Some(i));
        }
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn two_threads_transfer_every_message_in_order() {
        static R: Ring<u64, 16> = Ring::new();
        const COUNT: u64 = 200_000;
        let prod = std::thread::spawn(|| {
            let mut p = R.producer().unwrap();
            let mut i = 0;
            while i < COUNT {
                if p.push(i).is_ok() {
                    i += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut c = R.consumer().unwrap();
        let mut expect = 0;
        while expect < COUNT {
            if let Some(v) = c.pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        prod.join().unwrap();
    }
}
