//! `memcpy`, `memmove` and `memset` for the firmware image.
//!
//! The generic versions in `compiler_builtins` copy byte by byte when the
//! source and the destination are not equally aligned, which is the
//! common case for packet payloads (a TCP payload sits 54 or 66 bytes into
//! a frame). The DPU cores perform misaligned loads in hardware (one extra
//! cycle, see the chip's `misaligned_penalty`), so these versions align
//! the destination and then move 8 bytes per load/store pair whatever the
//! source alignment. They replace the weak `compiler_builtins` symbols at
//! link time.
//!
//! `#![no_builtins]` keeps LLVM from turning these loops back into calls
//! to themselves; that attribute is why this is a crate of its own. It is
//! part of the runtime (`dpu-rt` links it), which is where `unsafe` may live.
#![no_std]
#![no_builtins]

use core::sync::atomic::{AtomicPtr, Ordering};
// One `ld`/`sd` whatever the alignment (LLVM would split `read_unaligned`
// into byte loads without the unstable `unaligned-scalar-mem` feature).
use dpu_hal::cpu::{load_4x_u64_unaligned as load4, load_u64_unaligned as load};

const WORD: usize = core::mem::size_of::<u64>();

/// Copies at least this long are offered to the copy offload.
pub const OFFLOAD_MIN: usize = 512;

/// A copy engine for long `memcpy`s: `(dst, src, n) -> copied`. Returning
/// false (no engine on this hart, busy, error) makes `memcpy` copy with the
/// core.
pub type Offload = unsafe fn(*mut u8, *const u8, usize) -> bool;

static OFFLOAD: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the copy offload used by `memcpy` for copies of at least
/// [`OFFLOAD_MIN`] bytes (the runtime installs its DMA copier).
pub fn set_offload(f: Offload) {
    OFFLOAD.store(f as *mut (), Ordering::Release);
}

/// Copies `n` bytes forward (also correct for overlapping moves with
/// `dst < src`).
///
/// # Safety
/// `src..src+n` readable, `dst..dst+n` writable.
#[inline(always)]
unsafe fn copy_forward(mut dst: *mut u8, mut src: *const u8, mut n: usize) {
    // SAFETY (whole body): the caller guarantees both ranges; every access
    // below stays inside them. Word loads may be misaligned (`load`).
    unsafe {
        if n >= 2 * WORD {
            while (dst as usize) % WORD != 0 {
                *dst = *src;
                dst = dst.add(1);
                src = src.add(1);
                n -= 1;
            }
            while n >= 4 * WORD {
                let [a, b, c, d] = load4(src);
                (dst as *mut u64).write(a);
                (dst.add(WORD) as *mut u64).write(b);
                (dst.add(2 * WORD) as *mut u64).write(c);
                (dst.add(3 * WORD) as *mut u64).write(d);
                dst = dst.add(4 * WORD);
                src = src.add(4 * WORD);
                n -= 4 * WORD;
            }
            while n >= WORD {
                (dst as *mut u64).write(load(src));
                dst = dst.add(WORD);
                src = src.add(WORD);
                n -= WORD;
            }
        }
        while n > 0 {
            *dst = *src;
            dst = dst.add(1);
            src = src.add(1);
            n -= 1;
        }
    }
}

/// Copies `n` bytes backward (overlapping moves with `dst > src`).
///
/// # Safety
/// As `copy_forward`.
#[inline(always)]
unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (whole body): as `copy_forward`, walking from the end.
    unsafe {
        let mut d = dst.add(n);
        let mut s = src.add(n);
        let mut n = n;
        if n >= 2 * WORD {
            while (d as usize) % WORD != 0 {
                d = d.sub(1);
                s = s.sub(1);
                *d = *s;
                n -= 1;
            }
            while n >= WORD {
                d = d.sub(WORD);
                s = s.sub(WORD);
                (d as *mut u64).write(load(s));
                n -= WORD;
            }
        }
        while n > 0 {
            d = d.sub(1);
            s = s.sub(1);
            *d = *s;
            n -= 1;
        }
    }
}

/// # Safety
/// C `memcpy`: non-overlapping valid ranges.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n >= OFFLOAD_MIN {
        let f = OFFLOAD.load(Ordering::Acquire);
        if !f.is_null() {
            // SAFETY: only `set_offload` stores here, always an `Offload`;
            // the offload gets memcpy's own contract.
            let f: Offload = unsafe { core::mem::transmute::<*mut (), Offload>(f) };
            // SAFETY: the C contract of memcpy.
            if unsafe { f(dst, src, n) } {
                return dst;
            }
        }
    }
    // SAFETY: the C contract of memcpy.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// # Safety
/// C `memmove`: valid ranges, possibly overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the C contract of memmove; the direction avoids clobbering
    // source bytes before they are read.
    unsafe {
        if (dst as usize).wrapping_sub(src as usize) >= n {
            copy_forward(dst, src, n);
        } else {
            copy_backward(dst, src, n);
        }
    }
    dst
}

/// # Safety
/// C `memset`: `dst..dst+n` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the C contract of memset; word stores only after aligning.
    unsafe {
        let mut d = dst;
        let mut n = n;
        let b = c as u8;
        if n >= 2 * WORD {
            while (d as usize) % WORD != 0 {
                *d = b;
                d = d.add(1);
                n -= 1;
            }
            let w = u64::from(b) * 0x0101_0101_0101_0101;
            while n >= WORD {
                (d as *mut u64).write(w);
                d = d.add(WORD);
                n -= WORD;
            }
        }
        while n > 0 {
            *d = b;
            d = d.add(1);
            n -= 1;
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn copies_and_moves_every_alignment() {
        for len in [0usize, 1, 7, 8, 15, 16, 17, 31, 64, 100, 4096 + 3] {
            for so in 0..8 {
                for d_o in 0..8 {
                    let src: Vec<u8> = (0..len + 16).map(|i| (i * 31 + 7) as u8).collect();
                    let mut dst = std::vec![0u8; len + 16];
                    // SAFETY: in-bounds ranges of two separate vectors.
                    unsafe { super::memcpy(dst.as_mut_ptr().add(d_o), src.as_ptr().add(so), len) };
                    assert_eq!(&dst[d_o..d_o + len], &src[so..so + len], "memcpy len {len} src+{so} dst+{d_o}");
                    assert!(dst[..d_o].iter().all(|&b| b == 0) && dst[d_o + len..].iter().all(|&b| b == 0));
                    // Overlapping moves both ways.
                    let mut buf = src.clone();
                    let mut expect = src.clone();
                    expect.copy_within(so..so + len, d_o);
                    // SAFETY: both ranges inside `buf`.
                    unsafe { super::memmove(buf.as_mut_ptr().add(d_o), buf.as_ptr().add(so), len) };
                    assert_eq!(buf, expect, "memmove len {len} {so}->{d_o}");
                }
            }
        }
    }

    #[test]
    fn sets_every_alignment() {
        for len in [0usize, 3, 16, 33, 4099] {
            for o in 0..8 {
                let mut v = std::vec![1u8; len + 16];
                // SAFETY: in bounds.
                unsafe { super::memset(v.as_mut_ptr().add(o), 0xab, len) };
                assert!(v[o..o + len].iter().all(|&b| b == 0xab));
                assert!(v[..o].iter().chain(&v[o + len..]).all(|&b| b == 1));
            }
        }
    }
}
