//! Boot-time memory for firmware services: a per-hart arena in the hart's
//! own cluster SMEM (DMA rings, staging buffers: fast and local), and a
//! shared DDR area after the image (namespaces, large buffers). Nothing is
//! ever freed: services allocate once when they start.

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_hal::memory_map::{CORES_PER_CLUSTER, DDR_BASE, DDR_SIZE, HARTS, IMAGE_SIZE, SMEM_SIZE, STACK_SIZE};
use dpu_hal::HartId;

/// Bytes of SMEM each hart may allocate (the data area below the stacks,
/// split evenly between the cluster's cores).
pub const SMEM_ARENA: usize = ((SMEM_SIZE - CORES_PER_CLUSTER * STACK_SIZE) / CORES_PER_CLUSTER) & !0xfff;

static SMEM_USED: [AtomicUsize; HARTS] = [const { AtomicUsize::new(0) }; HARTS];
static DDR_USED: AtomicUsize = AtomicUsize::new(0);

/// Allocates `size` bytes aligned to `align` from the calling hart's SMEM
/// arena. Returns the physical address.
pub fn smem(size: usize, align: usize) -> Option<usize> {
    let h = crate::hart();
    let base = HartId(h.0).smem_base() + h.core() * SMEM_ARENA;
    let used = &SMEM_USED[h.0];
    let cur = used.load(Ordering::Relaxed);
    let start = (base + cur).next_multiple_of(align.max(1));
    let end = start.checked_add(size)?;
    if end > base + SMEM_ARENA {
        return None;
    }
    used.store(end - base, Ordering::Relaxed);
    Some(start)
}

/// Places `T::INIT` in the calling hart's SMEM arena and returns it: a
/// core's private, statically sized state in its fast local memory
/// (2-cycle access instead of DDR behind the L1). `None` if it does not fit.
pub fn smem_static<T: crate::ConstInit>() -> Option<&'static mut T> {
    let addr = smem(core::mem::size_of::<T>(), core::mem::align_of::<T>())?;
    let p = addr as *mut T;
    // SAFETY: `addr` is a fresh, suitably aligned allocation of size_of::<T>
    // bytes in this hart's arena that nothing else references (the arena
    // only grows); it is initialized before the reference is created and
    // never freed, so the `'static` exclusive reference is unique.
    unsafe {
        p.write(T::INIT);
        Some(&mut *p)
    }
}

/// Bytes left in the calling hart's SMEM arena.
pub fn smem_free() -> usize {
    SMEM_ARENA - SMEM_USED[crate::hart().0].load(Ordering::Relaxed)
}

/// Allocates `size` bytes aligned to `align` in DDR after the image.
pub fn ddr(size: u64, align: u64) -> Option<u64> {
    let base = (DDR_BASE + IMAGE_SIZE) as u64;
    let limit = (DDR_BASE + DDR_SIZE) as u64;
    let mut cur = DDR_USED.load(Ordering::Relaxed) as u64;
    loop {
        let start = (base + cur).next_multiple_of(align.max(1));
        let end = start.checked_add(size)?;
        if end > limit {
            return None;
        }
        match DDR_USED.compare_exchange_weak(cur as usize, (end - base) as usize, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some(start),
            Err(now) => cur = now as u64,
        }
    }
}
