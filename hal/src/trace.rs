//! defmt trace port: a byte stream per hart (the port demultiplexes by hart).

use crate::memory_map::TRACE_BASE;
use crate::mmio;
use crate::regs::trace::DATA;

/// Appends bytes to the calling hart's trace stream.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        mmio::write8(TRACE_BASE + DATA as usize, b);
    }
}
