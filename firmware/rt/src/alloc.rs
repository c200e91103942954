//! Boot-time memory for firmware services: a per-hart arena in the hart's
//! own cluster SMEM (DMA rings, staging buffers: fast and local), and a
//! shared DDR heap after the image (large buffers and tables), and the DDR
//! above it for RAM namespaces. Nothing is
//! ever freed: services allocate once when they start.

use core::sync::atomic::{AtomicUsize, Ordering};
use dpu_hal::memory_map::{CORES_PER_CLUSTER, DDR_BASE, DDR_HEAP_SIZE, HANDOVER_SIZE, HARTS, IMAGE_SIZE, RAM_NAMESPACE_BASE, RAM_NAMESPACE_SIZE, SMEM_SIZE, STACK_SIZE};
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

/// Allocates `size` bytes aligned to `align` in DDR after the image (the
/// firmware's heap, `DDR_HEAP_SIZE` bytes).
pub fn ddr(size: u64, align: u64) -> Option<u64> {
    // The top HANDOVER_SIZE bytes hold the controller handover record.
    bump(&DDR_USED, (DDR_BASE + IMAGE_SIZE) as u64, (DDR_BASE + IMAGE_SIZE + DDR_HEAP_SIZE - HANDOVER_SIZE) as u64, size, align)
}

/// Allocates a RAM namespace of `size` bytes (4 KiB aligned) from the DDR
/// above the heap; the scenario loader checks the same capacity
/// (`dpu_targets::Chip::ram_namespace_pool`).
pub fn ram_namespace(size: u64) -> Option<u64> {
    bump(&NAMESPACE_USED, RAM_NAMESPACE_BASE as u64, (RAM_NAMESPACE_BASE + RAM_NAMESPACE_SIZE) as u64, size, 4096)
}

static NAMESPACE_USED: AtomicUsize = AtomicUsize::new(0);

/// Lock-free bump allocation in `base..limit`; `used` counts bytes from `base`.
fn bump(used: &AtomicUsize, base: u64, limit: u64, size: u64, align: u64) -> Option<u64> {
    let mut cur = used.load(Ordering::Relaxed) as u64;
    loop {
        let start = (base + cur).next_multiple_of(align.max(1));
        let end = start.checked_add(size)?;
        if end > limit {
            return None;
        }
        match used.compare_exchange_weak(cur as usize, (end - base) as usize, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some(start),
            Err(now) => cur = now as u64,
        }
    }
}

/// Moves `v` into the calling hart's SMEM arena; `None` if it does not fit.
/// For per-core state built at run time (network stacks, ...).
pub fn smem_put<T>(v: T) -> Option<&'static mut T> {
    let addr = smem(core::mem::size_of::<T>(), core::mem::align_of::<T>())?;
    // SAFETY: fresh, aligned, never-freed allocation of size_of::<T>()
    // bytes that nothing else references (see `smem_static`).
    unsafe {
        let p = addr as *mut T;
        p.write(v);
        Some(&mut *p)
    }
}

/// Moves `v` into DDR after the image; `None` if DDR is exhausted.
pub fn ddr_put<T>(v: T) -> Option<&'static mut T> {
    let addr = ddr(core::mem::size_of::<T>() as u64, core::mem::align_of::<T>() as u64)?;
    // SAFETY: fresh, aligned, never-freed allocation (the DDR arena only
    // grows, concurrent callers get disjoint ranges by compare-exchange).
    unsafe {
        let p = addr as usize as *mut T;
        p.write(v);
        Some(&mut *p)
    }
}

/// A byte buffer of `len` bytes in DDR, aligned to `align` (packet
/// buffers, socket buffers, staging). Not cleared: it holds whatever the
/// DRAM holds (zeros after reset); users write before they read. `None`
/// if DDR is exhausted.
pub fn ddr_bytes(len: usize, align: usize) -> Option<&'static mut [u8]> {
    let addr = ddr(len as u64, align as u64)? as usize;
    // SAFETY: fresh, never-freed allocation of `len` bytes of physical
    // DRAM (outside any Rust allocation, so its bytes are plain values);
    // nothing else references it.
    unsafe { Some(core::slice::from_raw_parts_mut(addr as *mut u8, len)) }
}

/// Places `T::INIT` in DDR (written in place, never on the stack): large
/// tables built once at boot.
pub fn ddr_static<T: crate::ConstInit>() -> Option<&'static mut T> {
    let addr = ddr(core::mem::size_of::<T>() as u64, core::mem::align_of::<T>() as u64)? as usize;
    let p = addr as *mut T;
    // SAFETY: fresh, aligned, never-freed allocation (see `ddr_put`),
    // initialized before the reference is created.
    unsafe {
        p.write(T::INIT);
        Some(&mut *p)
    }
}

/// A byte buffer of `len` bytes in the calling hart's SMEM arena (fast,
/// local: packet buffers the core parses). Not cleared. `None` if it does
/// not fit.
pub fn smem_bytes(len: usize, align: usize) -> Option<&'static mut [u8]> {
    let addr = smem(len, align)?;
    // SAFETY: fresh, never-freed allocation of `len` bytes of this hart's
    // SMEM arena (physical memory outside any Rust allocation); nothing
    // else references it.
    unsafe { Some(core::slice::from_raw_parts_mut(addr as *mut u8, len)) }
}

/// `n` values built by `f(i)`, placed in the calling hart's SMEM when they
/// fit, else in DDR. For per-core tables sized at run time.
pub fn slice_with<T>(n: usize, f: impl FnMut(usize) -> T) -> Option<&'static mut [T]> {
    slice_in(n, f, true)
}

/// `n` values built by `f(i)` in DDR (large, rarely touched tables).
pub fn ddr_slice_with<T>(n: usize, f: impl FnMut(usize) -> T) -> Option<&'static mut [T]> {
    slice_in(n, f, false)
}

fn slice_in<T>(n: usize, mut f: impl FnMut(usize) -> T, near: bool) -> Option<&'static mut [T]> {
    let bytes = core::mem::size_of::<T>().checked_mul(n)?;
    let align = core::mem::align_of::<T>();
    let addr = match near.then(|| smem(bytes, align)).flatten() {
        Some(a) => a,
        None => ddr(bytes as u64, align as u64)? as usize,
    };
    let p = addr as *mut T;
    // SAFETY: fresh, aligned, never-freed allocation of `n` elements that
    // nothing else references; every element is written before the slice
    // is created.
    unsafe {
        for i in 0..n {
            p.add(i).write(f(i));
        }
        Some(core::slice::from_raw_parts_mut(p, n))
    }
}

/// Moves `v` into SMEM when it fits, else DDR.
pub fn put_near<T>(v: T) -> Option<&'static mut T> {
    let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
    let addr = match smem(size, align) {
        Some(a) => a,
        None => ddr(size as u64, align as u64)? as usize,
    };
    // SAFETY: fresh, aligned, never-freed allocation (see `smem_put`).
    unsafe {
        let p = addr as *mut T;
        p.write(v);
        Some(&mut *p)
    }
}

/// Places `T::INIT` in SMEM when it fits, else DDR (written in place).
pub fn static_near<T: crate::ConstInit>() -> Option<&'static mut T> {
    let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
    let addr = match smem(size, align) {
        Some(a) => a,
        None => ddr(size as u64, align as u64)? as usize,
    };
    let p = addr as *mut T;
    // SAFETY: as `ddr_static`.
    unsafe {
        p.write(T::INIT);
        Some(&mut *p)
    }
}
