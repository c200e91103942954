//! One accelerator queue (layout: [`crate::regs::queue`]): the crypto
//! engines' and the erasure-coding engine's descriptor ring, 64-byte
//! descriptors, completion ring with phase bit. Like a DMA channel
//! ([`crate::dma::Channel`]), a queue is owned by one hart: descriptors are
//! written with `push`, handed over with `kick`, and completions (one per
//! chain) come back in order through `poll`.

use crate::regs::queue as r;

/// An accelerator queue: a DMA-style [`crate::dma::Ring`] of 64-byte
/// descriptors (eight words), at most 128 chains in flight.
pub type Queue = crate::dma::Ring<8, 128>;

const _: () = assert!(r::DESC_SIZE == 8 * 8 && r::STATUS_RUNNING == 1);
