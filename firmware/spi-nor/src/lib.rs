//! Boot flash access, with no MMIO of its own.
//!
//! * [`Flash`]: what the persistence code (configuration copies, the A/B
//!   boot journal, firmware slots) needs from a NOR flash: read, program
//!   inside a page (bits only go 1 -> 0), erase a subsector or a sector.
//! * [`SpiNor`]: a driver for JEDEC SPI NOR parts (Micron MT25Q command
//!   set, 4-byte address opcodes) on any `embedded_hal::spi::SpiDevice`,
//!   waiting on the status register's WIP bit with an
//!   `embedded_hal::delay::DelayNs`.
//! * [`ram::RamFlash`] (feature `std`): the same semantics in RAM, with a
//!   power cut after any number of programmed or erased bytes, for tests.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod ram;

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{Operation, SpiDevice};

/// Geometry of a NOR flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub size: u32,
    pub page: u32,
    pub subsector: u32,
    pub sector: u32,
}

/// What a NOR flash offers the persistence code.
pub trait Flash {
    type Error: core::fmt::Debug;
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Programs `data` at `addr` (any length; split at page boundaries):
    /// each byte becomes old AND new.
    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// Erases (to FFh) the subsector or sector (`unit` bytes) holding `addr`.
    fn erase(&mut self, addr: u32, unit: u32) -> Result<(), Self::Error>;

    /// Erases `[addr, addr + len)` (subsector aligned) with the fewest
    /// operations: whole sectors where they fit, subsectors elsewhere.
    fn erase_range(&mut self, addr: u32, len: u32) -> Result<(), Self::Error> {
        let g = self.geometry();
        let (mut a, end) = (addr, addr + len);
        while a < end {
            if a % g.sector == 0 && end - a >= g.sector {
                self.erase(a, g.sector)?;
                a += g.sector;
            } else {
                self.erase(a, g.subsector)?;
                a += g.subsector;
            }
        }
        Ok(())
    }
}

/// SPI NOR command opcodes (MT25Q datasheet command table; same values
/// as `dpu_hal::regs::spi_nor`, which the simulator's model decodes).
pub mod opcode {
    pub const READ_ID: u8 = 0x9f;
    pub const READ_STATUS: u8 = 0x05;
    pub const WRITE_ENABLE: u8 = 0x06;
    pub const FAST_READ4: u8 = 0x0c;
    pub const PAGE_PROGRAM4: u8 = 0x12;
    pub const SUBSECTOR_ERASE4: u8 = 0x21;
    pub const SECTOR_ERASE4: u8 = 0xdc;
    pub const SR_WIP: u8 = 1 << 0;
}

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    Spi(E),
    /// READ ID answered something else than the expected part.
    WrongPart([u8; 3]),
    /// WIP stayed set far beyond the operation's typical time.
    Timeout,
    /// An address or length outside the flash or not aligned to the unit.
    Range,
}

/// Typical operation times (datasheet), in ns: the driver first waits
/// that long, then polls.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub page_program_ns: u32,
    pub subsector_erase_ns: u32,
    pub sector_erase_ns: u32,
}

/// A JEDEC SPI NOR flash on an `embedded-hal` SPI device.
pub struct SpiNor<S, D> {
    spi: S,
    delay: D,
    geometry: Geometry,
    timing: Timing,
}

impl<S: SpiDevice, D: DelayNs> SpiNor<S, D> {
    /// Checks READ ID against `jedec_id`.
    pub fn new(spi: S, delay: D, geometry: Geometry, timing: Timing, jedec_id: [u8; 3]) -> Result<Self, Error<S::Error>> {
        let mut f = SpiNor { spi, delay, geometry, timing };
        let id = f.read_id()?;
        if id != jedec_id {
            return Err(Error::WrongPart(id));
        }
        Ok(f)
    }

    /// READ ID (9Fh): manufacturer, memory type, capacity.
    pub fn read_id(&mut self) -> Result<[u8; 3], Error<S::Error>> {
        let mut id = [0u8; 3];
        self.spi.transaction(&mut [Operation::Write(&[opcode::READ_ID]), Operation::Read(&mut id)]).map_err(Error::Spi)?;
        Ok(id)
    }

    fn status(&mut self) -> Result<u8, Error<S::Error>> {
        let mut sr = [0u8];
        self.spi.transaction(&mut [Operation::Write(&[opcode::READ_STATUS]), Operation::Read(&mut sr)]).map_err(Error::Spi)?;
        Ok(sr[0])
    }

    /// Waits for WIP to clear: the typical time first, then polls every
    /// eighth of it, giving up after 20 typical times.
    fn wait(&mut self, typical_ns: u32) -> Result<(), Error<S::Error>> {
        self.delay.delay_ns(typical_ns);
        for _ in 0..160 {
            if self.status()? & opcode::SR_WIP == 0 {
                return Ok(());
            }
            self.delay.delay_ns((typical_ns / 8).max(1000));
        }
        Err(Error::Timeout)
    }

    fn command(&mut self, op: u8, addr: u32) -> [u8; 5] {
        let a = addr.to_be_bytes();
        [op, a[0], a[1], a[2], a[3]]
    }

    pub fn into_parts(self) -> (S, D) {
        (self.spi, self.delay)
    }
}

impl<S: SpiDevice, D: DelayNs> Flash for SpiNor<S, D>
where
    S::Error: core::fmt::Debug,
{
    type Error = Error<S::Error>;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// FAST READ with a 4-byte address (0Ch, 8 dummy clocks).
    fn read(&mut self, addr: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        if u64::from(addr) + buf.len() as u64 > u64::from(self.geometry.size) {
            return Err(Error::Range);
        }
        let c = self.command(opcode::FAST_READ4, addr);
        self.spi.transaction(&mut [Operation::Write(&c), Operation::Write(&[0]), Operation::Read(buf)]).map_err(Error::Spi)
    }

    /// WRITE ENABLE + 4-BYTE PAGE PROGRAM (12h) per page piece.
    fn program(&mut self, addr: u32, data: &[u8]) -> Result<(), Self::Error> {
        if u64::from(addr) + data.len() as u64 > u64::from(self.geometry.size) {
            return Err(Error::Range);
        }
        let (mut a, mut rest) = (addr, data);
        while !rest.is_empty() {
            let room = (self.geometry.page - a % self.geometry.page) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.spi.transaction(&mut [Operation::Write(&[opcode::WRITE_ENABLE])]).map_err(Error::Spi)?;
            let c = self.command(opcode::PAGE_PROGRAM4, a);
            self.spi.transaction(&mut [Operation::Write(&c), Operation::Write(now)]).map_err(Error::Spi)?;
            self.wait(self.timing.page_program_ns)?;
            a += now.len() as u32;
            rest = later;
        }
        Ok(())
    }

    /// WRITE ENABLE + 4-byte SUBSECTOR ERASE (21h) or SECTOR ERASE (DCh).
    fn erase(&mut self, addr: u32, unit: u32) -> Result<(), Self::Error> {
        let (op, t) = if unit == self.geometry.sector {
            (opcode::SECTOR_ERASE4, self.timing.sector_erase_ns)
        } else if unit == self.geometry.subsector {
            (opcode::SUBSECTOR_ERASE4, self.timing.subsector_erase_ns)
        } else {
            return Err(Error::Range);
        };
        if addr % unit != 0 || addr >= self.geometry.size {
            return Err(Error::Range);
        }
        self.spi.transaction(&mut [Operation::Write(&[opcode::WRITE_ENABLE])]).map_err(Error::Spi)?;
        let c = self.command(op, addr);
        self.spi.transaction(&mut [Operation::Write(&c)]).map_err(Error::Spi)?;
        self.wait(t)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A SPI device that records transactions and answers READ ID / STATUS.
    struct Recorder {
        log: Vec<Vec<u8>>,
        status_polls: usize,
    }

    impl embedded_hal::spi::ErrorType for Recorder {
        type Error = core::convert::Infallible;
    }

    impl SpiDevice for Recorder {
        fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
            let mut sent = Vec::new();
            for op in ops.iter_mut() {
                match op {
                    Operation::Write(w) => sent.extend_from_slice(w),
                    Operation::Read(r) => {
                        match sent.first() {
                            Some(&opcode::READ_ID) => r.copy_from_slice(&[0x20, 0xba, 0x20][..r.len()]),
                            Some(&opcode::READ_STATUS) => {
                                self.status_polls += 1;
                                r[0] = if self.status_polls % 3 == 0 { 0 } else { opcode::SR_WIP };
                            }
                            _ => r.fill(0xab),
                        }
                        sent.extend(core::iter::repeat_n(0u8, r.len()));
                    }
                    _ => {}
                }
            }
            self.log.push(sent);
            Ok(())
        }
    }

    struct NoDelay(u64);
    impl DelayNs for NoDelay {
        fn delay_ns(&mut self, ns: u32) {
            self.0 += u64::from(ns);
        }
    }

    fn nor() -> SpiNor<Recorder, NoDelay> {
        let g = Geometry { size: 1 << 26, page: 256, subsector: 4096, sector: 65536 };
        let t = Timing { page_program_ns: 120_000, subsector_erase_ns: 50_000_000, sector_erase_ns: 150_000_000 };
        SpiNor::new(Recorder { log: Vec::new(), status_polls: 0 }, NoDelay(0), g, t, [0x20, 0xba, 0x20]).unwrap()
    }

    #[test]
    fn wrong_part_is_refused() {
        let g = Geometry { size: 1 << 26, page: 256, subsector: 4096, sector: 65536 };
        let t = Timing { page_program_ns: 1, subsector_erase_ns: 1, sector_erase_ns: 1 };
        let r = SpiNor::new(Recorder { log: Vec::new(), status_polls: 0 }, NoDelay(0), g, t, [0xef, 0x40, 0x20]);
        assert!(matches!(r, Err(Error::WrongPart([0x20, 0xba, 0x20]))));
    }

    #[test]
    fn program_splits_at_pages_and_waits_for_wip() {
        let mut f = nor();
        f.program(0x0100_00f0, &[7u8; 0x20]).unwrap();
        let (spi, delay) = f.into_parts();
        let cmds: Vec<&Vec<u8>> = spi.log.iter().filter(|c| c[0] == opcode::PAGE_PROGRAM4).collect();
        assert_eq!(cmds.len(), 2, "16 bytes in one page, 16 in the next");
        assert_eq!(&cmds[0][..5], &[0x12, 0x01, 0x00, 0x00, 0xf0]);
        assert_eq!(cmds[0].len(), 5 + 16);
        assert_eq!(&cmds[1][..5], &[0x12, 0x01, 0x00, 0x01, 0x00]);
        assert!(spi.log.iter().filter(|c| c[0] == opcode::WRITE_ENABLE).count() == 2);
        assert!(delay.0 >= 2 * 120_000, "waited at least tPP per page");
    }

    #[test]
    fn erase_range_uses_sectors_where_they_fit() {
        let mut f = nor();
        f.erase_range(0xf000, 0x1_2000).unwrap();
        let (spi, _) = f.into_parts();
        let erases: Vec<(u8, u32)> = spi
            .log
            .iter()
            .filter(|c| c[0] == opcode::SECTOR_ERASE4 || c[0] == opcode::SUBSECTOR_ERASE4)
            .map(|c| (c[0], u32::from_be_bytes([c[1], c[2], c[3], c[4]])))
            .collect();
        assert_eq!(erases, vec![(0x21, 0xf000), (0xdc, 0x1_0000), (0x21, 0x2_0000)]);
    }

    #[test]
    fn reads_are_fast_read4_with_a_dummy_byte() {
        let mut f = nor();
        let mut b = [0u8; 3];
        f.read(0x0200_0000, &mut b).unwrap();
        assert_eq!(b, [0xab; 3]);
        let (spi, _) = f.into_parts();
        assert_eq!(&spi.log.last().unwrap()[..6], &[0x0c, 0x02, 0, 0, 0, 0]);
        let mut f = nor();
        assert_eq!(f.read((1 << 26) - 1, &mut [0u8; 2]), Err(Error::Range));
    }
}
