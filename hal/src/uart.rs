//! Console UART (16550 subset): polled transmit.

use crate::memory_map::UART_BASE;
use crate::mmio;
use crate::regs::uart::{LSR, LSR_THR_EMPTY, THR};

/// Writes bytes, waiting for the transmit holding register each time.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        while mmio::read8(UART_BASE + LSR as usize) & LSR_THR_EMPTY == 0 {}
        mmio::write8(UART_BASE + THR as usize, b);
    }
}

/// `core::fmt` adapter for the UART.
pub struct Writer;

impl core::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write(s.as_bytes());
        Ok(())
    }
}
