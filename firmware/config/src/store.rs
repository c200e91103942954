//! The two configuration copies in the flash `config` partition.
//!
//! Copy `i` starts at `offset + i * size / 2`. A copy is a 24-byte header
//! and the postcard encoding of a [`Config`]:
//!
//! | offset | field |
//! |---|---|
//! | 0 | u32 magic "DCFG" |
//! | 4 | u16 record format (1) |
//! | 6 | u16 schema version ([`SCHEMA_VERSION`]) |
//! | 8 | u32 sequence (the newer copy has the higher one) |
//! | 12 | u32 payload bytes |
//! | 16 | u32 CRC-32 (ISO-HDLC) of bytes 0..16 and the payload |
//! | 20 | u32 reserved (0) |
//!
//! A save erases and writes the copy that does not hold the newest valid
//! configuration, header page last; the other copy stays untouched, so a
//! power cut during a save leaves the previous configuration readable.

use crate::{Config, Invalid, SCHEMA_VERSION, SCHEMA_VERSION_MIN};
use dpu_spi_nor::Flash;

pub const MAGIC: u32 = 0x4746_4344;
pub const RECORD_FORMAT: u16 = 1;
pub const HEADER: usize = 24;
/// Largest encoded configuration (256 namespaces, 16 controllers with
/// full NQNs and every other field fit in well under this).
pub const MAX_ENCODED: usize = 16 * 1024;
/// Scratch space `load` and `save` need.
pub const SCRATCH: usize = HEADER + MAX_ENCODED;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What a copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CopyState {
    /// Erased: never written.
    Blank,
    Valid { seq: u32 },
    BadMagic,
    BadFormat(u16),
    UnknownVersion(u16),
    BadLength(u32),
    BadCrc,
    /// The CRC matched but postcard could not decode it.
    Undecodable,
    /// Decoded, but a value is out of range.
    Invalid(Invalid),
}

impl CopyState {
    pub fn is_valid(&self) -> bool {
        matches!(self, CopyState::Valid { .. })
    }
}

/// What [`Store::load`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The copy the configuration came from (`None`: no valid copy, empty
    /// configuration).
    pub copy: Option<usize>,
    pub seq: u32,
    /// What each copy held (`Valid` only for copies that decoded and
    /// validated, or that were not needed).
    pub copies: [CopyState; 2],
}

/// The `config` partition.
#[derive(Clone, Copy, Debug)]
pub struct Store {
    pub offset: u32,
    pub size: u32,
}

/// A save that did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveError<E> {
    Flash(E),
    /// The encoded configuration does not fit a copy.
    TooLarge,
}

impl Store {
    /// The partition of the board's flash layout.
    pub const fn board() -> Store {
        Store { offset: dpu_hal::memory_map::FLASH_CONFIG_OFFSET as u32, size: dpu_hal::memory_map::FLASH_CONFIG_SIZE as u32 }
    }

    pub fn copy_addr(&self, i: usize) -> u32 {
        self.offset + i as u32 * (self.size / 2)
    }

    fn capacity(&self) -> usize {
        ((self.size / 2) as usize - HEADER).min(MAX_ENCODED)
    }

    /// Reads copy `i`'s header and payload into `scratch` and checks
    /// them (magic, format, version, length, CRC); `Valid` means the CRC
    /// matched (the payload is then `scratch[HEADER..HEADER + len]`).
    fn check_copy<F: Flash>(&self, flash: &mut F, i: usize, scratch: &mut [u8]) -> Result<(CopyState, usize, u16), F::Error> {
        let addr = self.copy_addr(i);
        let (hdr, rest) = scratch.split_at_mut(HEADER);
        flash.read(addr, hdr)?;
        if hdr.iter().all(|&b| b == 0xff) {
            return Ok((CopyState::Blank, 0, 0));
        }
        let u32_at = |o: usize| u32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]);
        let u16_at = |o: usize| u16::from_le_bytes([hdr[o], hdr[o + 1]]);
        if u32_at(0) != MAGIC {
            return Ok((CopyState::BadMagic, 0, 0));
        }
        if u16_at(4) != RECORD_FORMAT {
            return Ok((CopyState::BadFormat(u16_at(4)), 0, 0));
        }
        let version = u16_at(6);
        if !(SCHEMA_VERSION_MIN..=SCHEMA_VERSION).contains(&version) {
            return Ok((CopyState::UnknownVersion(version), 0, 0));
        }
        let (seq, len, crc) = (u32_at(8), u32_at(12), u32_at(16));
        if len as usize > self.capacity() || len as usize > rest.len() {
            return Ok((CopyState::BadLength(len), 0, 0));
        }
        let payload = &mut rest[..len as usize];
        flash.read(addr + HEADER as u32, payload)?;
        let mut d = CRC.digest();
        d.update(&hdr[..16]);
        d.update(payload);
        if d.finalize() != crc {
            return Ok((CopyState::BadCrc, 0, 0));
        }
        Ok((CopyState::Valid { seq }, len as usize, version))
    }

    /// Reads and checks copy `i`; a valid copy's configuration is decoded
    /// into `out` (in place: no configuration on the stack); after a copy
    /// that does not decode or validate `out` is empty, after one that
    /// fails its checks it is left alone. `scratch` must hold [`SCRATCH`]
    /// bytes.
    pub fn read_copy<F: Flash>(&self, flash: &mut F, i: usize, scratch: &mut [u8], out: &mut Config) -> Result<CopyState, F::Error> {
        let (st, len, version) = self.check_copy(flash, i, scratch)?;
        if !st.is_valid() {
            return Ok(st);
        }
        if !out.decode_into(version, &scratch[HEADER..HEADER + len]) {
            *out = Config::EMPTY;
            return Ok(CopyState::Undecodable);
        }
        if let Err(e) = out.validate() {
            *out = Config::EMPTY;
            return Ok(CopyState::Invalid(e));
        }
        Ok(st)
    }

    /// Loads the newest valid configuration into `out` (an empty one if
    /// neither copy is valid) and says where it came from and what each
    /// copy held. Only `out` holds a decoded configuration: the firmware
    /// keeps it (and `scratch`) in static memory, not on its stack.
    pub fn load<F: Flash>(&self, flash: &mut F, scratch: &mut [u8], out: &mut Config) -> Result<Report, F::Error> {
        let mut copies = [CopyState::Blank; 2];
        for (i, c) in copies.iter_mut().enumerate() {
            *c = self.check_copy(flash, i, scratch)?.0;
        }
        let seq = |s: CopyState| match s {
            CopyState::Valid { seq } => Some(seq),
            _ => None,
        };
        // Newest first (by sequence); a copy that does not decode or
        // validate gives way to the other.
        let order = match (seq(copies[0]), seq(copies[1])) {
            (Some(a), Some(b)) if b > a => [1, 0],
            _ => [0, 1],
        };
        for i in order {
            if let Some(s) = seq(copies[i]) {
                let st = self.read_copy(flash, i, scratch, out)?;
                copies[i] = st;
                if st.is_valid() {
                    return Ok(Report { copy: Some(i), seq: s, copies });
                }
            }
        }
        *out = Config::EMPTY;
        Ok(Report { copy: None, seq: 0, copies })
    }

    /// Saves `config` as the newest copy, in the copy that does not hold
    /// the configuration [`Store::load`] would return now (so that one
    /// survives a power cut during the save); returns (copy, sequence).
    /// `current` receives what was in effect before.
    pub fn save<F: Flash>(&self, flash: &mut F, config: &Config, scratch: &mut [u8], current: &mut Config) -> Result<(usize, u32), SaveError<F::Error>> {
        let before = self.load(flash, scratch, current).map_err(SaveError::Flash)?;
        let target = match before.copy {
            Some(i) => 1 - i,
            None => 0,
        };
        // The highest sequence either copy carries (a newer copy that
        // failed validation must not outrank this save).
        let top = before.copies.iter().filter_map(|c| match c {
            CopyState::Valid { seq } => Some(*seq),
            _ => None,
        });
        let top = top.fold(before.seq, u32::max);
        // After the last sequence number (a corrupted or hostile copy)
        // start over at 1, and then blank the other copy so the new one
        // is the newest; a power cut before that keeps the old one.
        let wrap = top == u32::MAX;
        let seq = if wrap { 1 } else { top + 1 };
        let cap = self.capacity().min(scratch.len() - HEADER);
        let Some(len) = config.encode(&mut scratch[HEADER..HEADER + cap]) else {
            return Err(SaveError::TooLarge);
        };
        scratch[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        scratch[4..6].copy_from_slice(&RECORD_FORMAT.to_le_bytes());
        scratch[6..8].copy_from_slice(&SCHEMA_VERSION.to_le_bytes());
        scratch[8..12].copy_from_slice(&seq.to_le_bytes());
        scratch[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        let mut d = CRC.digest();
        d.update(&scratch[..16]);
        d.update(&scratch[HEADER..HEADER + len]);
        scratch[16..20].copy_from_slice(&d.finalize().to_le_bytes());
        scratch[20..24].copy_from_slice(&0u32.to_le_bytes());
        write_record(flash, self.copy_addr(target), &scratch[..HEADER + len]).map_err(SaveError::Flash)?;
        if wrap {
            let unit = flash.geometry().subsector;
            flash.erase(self.copy_addr(1 - target), unit).map_err(SaveError::Flash)?;
        }
        Ok((target, seq))
    }
}

/// Erases what `record` needs at `addr` (subsector aligned) and programs
/// it page by page from the end, so the header is written last.
pub fn write_record<F: Flash>(flash: &mut F, addr: u32, record: &[u8]) -> Result<(), F::Error> {
    let g = flash.geometry();
    let span = (record.len() as u32).next_multiple_of(g.subsector);
    flash.erase_range(addr, span)?;
    let pages = record.len().div_ceil(g.page as usize);
    for p in (0..pages).rev() {
        let start = p * g.page as usize;
        let end = (start + g.page as usize).min(record.len());
        flash.program(addr + start as u32, &record[start..end])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample;
    use dpu_spi_nor::ram::RamFlash;
    use dpu_spi_nor::Geometry;

    extern crate std;
    use std::vec;

    const G: Geometry = Geometry { size: 1 << 20, page: 256, subsector: 4096, sector: 65536 };
    const STORE: Store = Store { offset: 0x1_0000, size: 0x2_0000 };

    /// What `load` returns, with the configuration.
    struct Loaded {
        config: Config,
        copy: Option<usize>,
        seq: u32,
        copies: [CopyState; 2],
    }

    fn loaded(f: &mut RamFlash) -> Loaded {
        let mut s = vec![0u8; SCRATCH];
        let mut config = Config::default();
        let r = STORE.load(f, &mut s, &mut config).unwrap();
        Loaded { config, copy: r.copy, seq: r.seq, copies: r.copies }
    }

    fn save(f: &mut RamFlash, c: &Config) -> Result<(usize, u32), SaveError<dpu_spi_nor::ram::PowerCut>> {
        let mut s = vec![0u8; SCRATCH];
        STORE.save(f, c, &mut s, &mut Config::default())
    }

    #[test]
    fn blank_flash_gives_an_empty_configuration() {
        let mut f = RamFlash::new(G);
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.copies), (None, [CopyState::Blank; 2]));
        assert_eq!(l.config, Config::default());
    }

    #[test]
    fn saves_alternate_between_the_copies() {
        let mut f = RamFlash::new(G);
        let mut c = sample();
        assert_eq!(save(&mut f, &c).unwrap(), (0, 1));
        c.tcp_min_rto_ms = 7;
        assert_eq!(save(&mut f, &c).unwrap(), (1, 2));
        c.tcp_min_rto_ms = 9;
        assert_eq!(save(&mut f, &c).unwrap(), (0, 3));
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.seq, l.config.tcp_min_rto_ms), (Some(0), 3, 9));
        assert_eq!(l.copies[1], CopyState::Valid { seq: 2 });
    }

    #[test]
    fn a_bad_copy_falls_back_to_the_other() {
        let mut f = RamFlash::new(G);
        let mut c = sample();
        save(&mut f, &c).unwrap();
        c.lro = false;
        save(&mut f, &c).unwrap(); // copy 1, newest
        let newest = STORE.copy_addr(1) as usize;
        // Bad CRC: a payload bit flipped.
        f.bytes[newest + HEADER + 3] ^= 0x01;
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.copies[1], l.config.lro), (Some(0), CopyState::BadCrc, true));
        // Unknown schema version.
        f.bytes[newest + HEADER + 3] ^= 0x01;
        let unknown = SCHEMA_VERSION + 1;
        f.bytes[newest + 6] = unknown as u8;
        assert_eq!(loaded(&mut f).copies[1], CopyState::UnknownVersion(unknown));
        assert_eq!(loaded(&mut f).copy, Some(0));
        // Both bad: empty configuration, both reasons known.
        f.bytes[STORE.copy_addr(0) as usize] = 0;
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.copies), (None, [CopyState::BadMagic, CopyState::UnknownVersion(unknown)]));
        assert_eq!(l.config, Config::default());
    }

    /// A copy written by a firmware of schema version 1 (no management
    /// record) is still read after an update; the next save writes the
    /// current version into the other copy.
    #[test]
    fn a_version_1_copy_is_still_read() {
        let mut f = RamFlash::new(G);
        let c = Config { management: None, mallocs: heapless::Vec::new(), subsystems: heapless::Vec::new(), nvmf: heapless::Vec::new(), nvme: heapless::Vec::new(), ..sample() };
        let mut rec = [0u8; 1024];
        let len = postcard::to_slice(&c, &mut rec[HEADER..]).unwrap().len();
        rec[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        rec[4..6].copy_from_slice(&RECORD_FORMAT.to_le_bytes());
        rec[6..8].copy_from_slice(&1u16.to_le_bytes());
        rec[8..12].copy_from_slice(&7u32.to_le_bytes());
        rec[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        let mut d = CRC.digest();
        d.update(&rec[..16]);
        d.update(&rec[HEADER..HEADER + len]);
        rec[16..20].copy_from_slice(&d.finalize().to_le_bytes());
        write_record(&mut f, STORE.copy_addr(0), &rec[..HEADER + len]).unwrap();
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.seq), (Some(0), 7));
        assert_eq!(l.config, c);
        let new = sample();
        assert_eq!(save(&mut f, &new).unwrap(), (1, 8));
        let l = loaded(&mut f);
        assert_eq!((l.copy, &l.config), (Some(1), &new));
        assert_eq!(f.bytes[STORE.copy_addr(1) as usize + 6], SCHEMA_VERSION as u8);
    }

    #[test]
    fn saves_go_on_after_the_last_sequence_number() {
        let mut f = RamFlash::new(G);
        let mut c = sample();
        save(&mut f, &c).unwrap();
        // Copy 0 claims the last sequence number (CRC fixed up).
        let a = STORE.copy_addr(0) as usize;
        f.bytes[a + 8..a + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let len = u32::from_le_bytes(f.bytes[a + 12..a + 16].try_into().unwrap()) as usize;
        let mut d = CRC.digest();
        d.update(&f.bytes[a..a + 16]);
        d.update(&f.bytes[a + HEADER..a + HEADER + len]);
        let crc = d.finalize().to_le_bytes();
        // The CRC field is programmed already: rewrite the page in RAM.
        f.bytes[a + 16..a + 20].copy_from_slice(&crc);
        assert_eq!(loaded(&mut f).seq, u32::MAX);
        c.tcp_min_rto_ms = 42;
        assert_eq!(save(&mut f, &c).unwrap(), (1, 1));
        let l = loaded(&mut f);
        assert_eq!((l.copy, l.seq, l.config.tcp_min_rto_ms, l.copies[0]), (Some(1), 1, 42, CopyState::Blank));
        c.tcp_min_rto_ms = 43;
        assert_eq!(save(&mut f, &c).unwrap(), (0, 2));
        assert_eq!(loaded(&mut f).config.tcp_min_rto_ms, 43);
    }

    #[test]
    fn a_value_out_of_range_is_refused_even_with_a_good_crc() {
        let mut f = RamFlash::new(G);
        save(&mut f, &sample()).unwrap();
        let mut bad = sample();
        bad.ports[0].prefix = 31;
        save(&mut f, &bad).unwrap();
        let l = loaded(&mut f);
        assert_eq!(l.copies[1], CopyState::Invalid(Invalid::Port { index: 0 }));
        assert_eq!((l.copy, l.config.ports[0].prefix), (Some(0), 24));
    }

    #[test]
    fn a_power_cut_at_any_byte_of_a_save_keeps_a_configuration() {
        let mut old = sample();
        old.tcp_min_rto_ms = 1;
        let mut new = sample();
        new.tcp_min_rto_ms = 2;
        // Two histories: the save goes to copy 1 (one save before), or to
        // copy 0 over an older record (two saves before).
        for before in 1..=2u16 {
            let mut base = RamFlash::new(G);
            for k in 0..before {
                let mut c = old.clone();
                c.io_timeout_us = u32::from(k);
                save(&mut base, &c).unwrap();
            }
            let mut probe = base.clone();
            let w0 = probe.work;
            save(&mut probe, &new).unwrap();
            let total = probe.work - w0;
            assert!(total > 4096, "an erase and a program");
            let mut n = 0;
            while n <= total {
                let mut f = base.clone();
                f.cut_after(n);
                let r = save(&mut f, &new);
                f.restore();
                let l = loaded(&mut f);
                let got = l.config.tcp_min_rto_ms;
                assert!(l.copy.is_some(), "cut after {n} of {total} bytes left no configuration: {:?}", l.copies);
                if r.is_ok() {
                    assert_eq!(got, 2, "a completed save is what loads");
                } else {
                    assert!(got == 1 || got == 2, "cut after {n}: {got}");
                }
                // Dense around the record, sparse in the erase.
                n += if n < 4096 - 64 { 61 } else { 1 };
            }
        }
    }
}
