//! A NOR flash in RAM for host tests: programming ANDs, erasing sets FFh,
//! and power can be cut after any number of programmed or erased bytes,
//! leaving the operation at the cut half done (like the simulator's
//! model: bytes before the cut done, the byte at the cut half done).

use super::{Flash, Geometry};
use std::vec;
use std::vec::Vec;

/// Power went away (the operation that hit the cut is partly done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerCut;

#[derive(Clone, Debug)]
pub struct RamFlash {
    pub bytes: Vec<u8>,
    geometry: Geometry,
    /// Program/erase bytes still allowed before power is cut.
    budget: Option<u64>,
    /// Program/erase bytes done so far (for sweeping cut points).
    pub work: u64,
}

impl RamFlash {
    pub fn new(geometry: Geometry) -> RamFlash {
        RamFlash { bytes: vec![0xff; geometry.size as usize], geometry, budget: None, work: 0 }
    }

    /// Power is cut once `n` more program/erase bytes are done.
    pub fn cut_after(&mut self, n: u64) {
        self.budget = Some(n);
    }

    /// Power is back: no cut pending.
    pub fn restore(&mut self) {
        self.budget = None;
    }

    /// Spends one byte of budget; `Err` if the power is (now) off.
    fn step(&mut self) -> Result<(), PowerCut> {
        match &mut self.budget {
            Some(0) => Err(PowerCut),
            Some(n) => {
                *n -= 1;
                self.work += 1;
                Ok(())
            }
            None => {
                self.work += 1;
                Ok(())
            }
        }
    }
}

impl Flash for RamFlash {
    type Error = PowerCut;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), PowerCut> {
        if self.budget == Some(0) {
            return Err(PowerCut);
        }
        let a = addr as usize;
        buf.copy_from_slice(&self.bytes[a..a + buf.len()]);
        Ok(())
    }

    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), PowerCut> {
        for (i, &d) in data.iter().enumerate() {
            let a = addr as usize + i;
            if self.step().is_err() {
                // The byte at the cut: half of its cleared bits.
                let clear = self.bytes[a] & !d;
                let keep = clear.count_ones().div_ceil(2);
                let mut half = 0u8;
                let mut n = 0;
                for b in 0..8 {
                    if clear & (1 << b) != 0 && n < keep {
                        half |= 1 << b;
                        n += 1;
                    }
                }
                self.bytes[a] &= !half;
                return Err(PowerCut);
            }
            self.bytes[a] &= d;
        }
        Ok(())
    }

    fn erase(&mut self, addr: u32, unit: u32) -> Result<(), PowerCut> {
        let base = (addr - addr % unit) as usize;
        for i in 0..unit as usize {
            if self.step().is_err() {
                self.bytes[base + i] |= 0x0f;
                return Err(PowerCut);
            }
            self.bytes[base + i] = 0xff;
        }
        Ok(())
    }
}
