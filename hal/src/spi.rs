//! SPI master of the boot flash (`regs::spi`) as an
//! `embedded_hal::spi::SpiDevice`: a transaction asserts the chip select,
//! shifts its operations 8 bytes per register access where it can, and
//! releases it. One owner at a time: the bootloader, then the firmware's
//! flash service.

use crate::memory_map::{CLOCK_HZ, SPI_BASE};
use crate::mmio;
use crate::regs::spi::{CLKDIV, CS, DATA, RX};
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};

/// The boot flash's chip select on the SPI master.
pub struct FlashSpi(());

impl FlashSpi {
    /// Takes the controller and sets SCK to the fastest rate not above
    /// `max_hz` (SCK = core clock / (2 * (CLKDIV + 1))).
    pub fn new(max_hz: u64) -> FlashSpi {
        let div = CLOCK_HZ.div_ceil(2 * max_hz.max(1)).saturating_sub(1).min(0xffff) as u32;
        mmio::write32(SPI_BASE + CLKDIV as usize, div);
        mmio::write32(SPI_BASE + CS as usize, 0);
        FlashSpi(())
    }

    fn write(bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            mmio::write64(SPI_BASE + DATA as usize, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            mmio::write8(SPI_BASE + DATA as usize, b);
        }
    }

    fn read(buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&mmio::read64(SPI_BASE + DATA as usize).to_le_bytes());
        }
        for b in chunks.into_remainder() {
            *b = mmio::read8(SPI_BASE + DATA as usize);
        }
    }

    fn transfer(read: &mut [u8], write: &[u8]) {
        let n = read.len().max(write.len());
        for i in 0..n {
            mmio::write8(SPI_BASE + DATA as usize, write.get(i).copied().unwrap_or(0));
            let rx = mmio::read64(SPI_BASE + RX as usize) as u8;
            if let Some(r) = read.get_mut(i) {
                *r = rx;
            }
        }
    }
}

impl ErrorType for FlashSpi {
    type Error = core::convert::Infallible;
}

impl SpiDevice for FlashSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        mmio::write32(SPI_BASE + CS as usize, 1);
        for op in operations {
            match op {
                Operation::Read(buf) => Self::read(buf),
                Operation::Write(buf) => Self::write(buf),
                Operation::Transfer(r, w) => Self::transfer(r, w),
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        mmio::write8(SPI_BASE + DATA as usize, *b);
                        *b = mmio::read64(SPI_BASE + RX as usize) as u8;
                    }
                }
                Operation::DelayNs(ns) => crate::delay::spin_ns(u64::from(*ns)),
            }
        }
        mmio::write32(SPI_BASE + CS as usize, 0);
        Ok(())
    }
}
