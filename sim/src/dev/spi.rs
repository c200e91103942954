//! SPI master of the boot flash (`dpu_hal::regs::spi`), with the flash
//! behind its one chip select. An access to DATA shifts 1-8 bytes and
//! holds the peripheral bus meanwhile: the accessing hart is stalled for
//! 8 SCK periods per byte (SCK = core clock / (2 * (CLKDIV + 1))).

use super::nor_flash::NorFlash;
use dpu_hal::regs::spi::{CLKDIV, CLKDIV_RESET, CS, DATA, RX};

pub struct Spi {
    cs: bool,
    clkdiv: u32,
    rx: u64,
    pub flash: NorFlash,
}

impl Spi {
    pub fn new(flash: NorFlash) -> Spi {
        Spi { cs: false, clkdiv: CLKDIV_RESET, rx: 0, flash }
    }

    /// Core cycles to shift one byte.
    pub fn byte_cycles(&self) -> u64 {
        16 * (u64::from(self.clkdiv) + 1)
    }

    /// Register read: (value, cycles the bus is held beyond the access).
    pub fn read(&mut self, off: u64, size: u8, now: u64) -> Option<(u64, u64)> {
        match (off, size) {
            (CS, 4) => Some((u64::from(self.cs), 0)),
            (CLKDIV, 4) => Some((u64::from(self.clkdiv), 0)),
            (RX, 8) => Some((self.rx, 0)),
            (DATA, 1 | 2 | 4 | 8) => {
                let t = self.byte_cycles();
                let mut v = 0u64;
                for i in 0..u64::from(size) {
                    let b = if self.cs { self.flash.exchange(0x00, now + i * t) } else { 0xff };
                    v |= u64::from(b) << (8 * i);
                }
                Some((v, t * u64::from(size)))
            }
            _ => None,
        }
    }

    /// Register write: `Some(stall cycles)`, `None` = access fault.
    pub fn write(&mut self, off: u64, size: u8, v: u64, now: u64) -> Option<u64> {
        match (off, size) {
            (CS, 4) => {
                let on = v & 1 != 0;
                if on && !self.cs {
                    self.flash.select(now);
                } else if !on && self.cs {
                    self.flash.deselect(now);
                }
                self.cs = on;
                Some(0)
            }
            (CLKDIV, 4) => {
                self.clkdiv = (v as u32).min(0xffff);
                Some(0)
            }
            (DATA, 1 | 2 | 4 | 8) => {
                let t = self.byte_cycles();
                let mut rx = 0u64;
                for i in 0..u64::from(size) {
                    let b = if self.cs { self.flash.exchange((v >> (8 * i)) as u8, now + i * t) } else { 0xff };
                    rx |= u64::from(b) << (8 * i);
                }
                self.rx = rx;
                Some(t * u64::from(size))
            }
            _ => None,
        }
    }
}
