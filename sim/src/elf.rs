//! Firmware image loading: ELF checks, loadable segments, symbols and the
//! chip fingerprint the image was built for.

use object::elf::{EM_RISCV, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use std::path::{Path, PathBuf};

/// Why an image was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: cannot read: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not an ELF file ({reason})", path.display())]
    NotElf { path: PathBuf, reason: String },
    #[error("{}: {what}; the DPU cores are RV64 (riscv64imac-unknown-none-elf)", path.display())]
    WrongArch { path: PathBuf, what: String },
    #[error("{}: has no loadable segments", path.display())]
    Empty { path: PathBuf },
}

/// One `PT_LOAD` segment (loaded at its physical address).
#[derive(Clone, Debug)]
pub struct Segment {
    pub paddr: u64,
    pub data: Vec<u8>,
    pub mem_size: u64,
    /// `PF_W`: the program may change it (not part of its code identity).
    pub writable: bool,
}

/// A function or object symbol.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub addr: u64,
    pub size: u64,
    pub name: String,
}

/// Sorted symbol table for address lookups.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    syms: Vec<Symbol>,
}

impl Symbols {
    /// Symbol containing `addr` (or the nearest one below it) and the offset.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let s = self.syms.get(i.checked_sub(1)?)?;
        // `addr - s.addr`: a symbol may end at the top of the address space.
        if s.size == 0 || addr - s.addr < s.size {
            Some((&s.name, addr - s.addr))
        } else {
            None
        }
    }

    /// Address of a symbol by exact (demangled) name.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| s.name == name).map(|s| s.addr)
    }

    /// Adds a symbol (e.g. for code the simulator itself provides).
    pub fn add(&mut self, addr: u64, size: u64, name: &str) {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        self.syms.insert(i, Symbol { addr, size, name: name.to_string() });
    }

    /// Formats `addr` as `name+0xoff`, or `?`.
    pub fn describe(&self, addr: u64) -> String {
        match self.lookup(addr) {
            Some((n, 0)) => n.to_string(),
            Some((n, off)) => format!("{n}+{off:#x}"),
            None => "?".to_string(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Symbol> {
        self.syms.iter()
    }
}

/// A parsed firmware image.
#[derive(Debug)]
pub struct Image {
    pub path: PathBuf,
    #[doc = "The whole ELF file."]
    pub bytes: Vec<u8>,
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub symbols: Symbols,
    /// (chip fingerprint, board fingerprint, chip name) from the
    /// `.dpu_chip` section, if present.
    pub chip_stamp: Option<(u64, u64, String)>,
}

impl Image {
    /// An image made of raw segments (hand-assembled test programs).
    pub fn from_segments(name: &str, entry: u64, segments: Vec<Segment>) -> Image {
        Image {
            path: PathBuf::from(name),
            bytes: Vec::new(),
            entry,
            segments,
            symbols: Symbols::default(),
            chip_stamp: None,
        }
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Image, ImageError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ImageError::Io { path: path.into(), source: e })?;
        Image::parse(path, bytes)
    }

    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Image, ImageError> {
        let not_elf = |reason: String| ImageError::NotElf { path: path.into(), reason };
        if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
            return Err(not_elf("missing the \\x7fELF magic".into()));
        }
        if bytes[4] != 2 {
            return Err(ImageError::WrongArch { path: path.into(), what: "32-bit ELF".into() });
        }
        let hdr = object::elf::FileHeader64::<object::Endianness>::parse(&*bytes).map_err(|e| not_elf(e.to_string()))?;
        let endian = hdr.endian().map_err(|e| not_elf(e.to_string()))?;
        if hdr.e_machine(endian) != EM_RISCV {
            return Err(ImageError::WrongArch {
                path: path.into(),
                what: format!("ELF machine {} is not RISC-V ({EM_RISCV})", hdr.e_machine(endian)),
            });
        }
        if bytes[5] != 1 {
            return Err(ImageError::WrongArch { path: path.into(), what: "big-endian ELF".into() });
        }
        let mut segments = Vec::new();
        for ph in hdr.program_headers(endian, &*bytes).map_err(|e| not_elf(e.to_string()))? {
            if ph.p_type(endian) != PT_LOAD || ph.p_memsz(endian) == 0 {
                continue;
            }
            let data = ph.data(endian, &*bytes).map_err(|_| not_elf("segment data outside the file".into()))?;
            segments.push(Segment { paddr: ph.p_paddr(endian), data: data.to_vec(), mem_size: ph.p_memsz(endian), writable: ph.p_flags(endian) & object::elf::PF_W != 0 });
        }
        if segments.is_empty() {
            return Err(ImageError::Empty { path: path.into() });
        }
        let entry = hdr.e_entry(endian);

        let file = object::File::parse(&*bytes).map_err(|e| not_elf(e.to_string()))?;
        let mut syms: Vec<Symbol> = file
            .symbols()
            .filter(|s| {
                matches!(s.kind(), SymbolKind::Text | SymbolKind::Data | SymbolKind::Unknown) && s.address() != 0
            })
            .filter_map(|s| {
                let name = s.name().ok()?;
                if name.is_empty() || name.starts_with(".L") || name.starts_with("$") {
                    return None;
                }
                Some(Symbol { addr: s.address(), size: s.size(), name: rustc_demangle::demangle(name).to_string() })
            })
            .collect();
        syms.sort_by_key(|s| (s.addr, std::cmp::Reverse(s.size)));
        syms.dedup_by_key(|s| s.addr);
        let chip_stamp = file.section_by_name(".dpu_chip").and_then(|s| s.data().ok()).and_then(|d| {
            if d.len() < 16 {
                return None;
            }
            let fp = u64::from_le_bytes(d[..8].try_into().ok()?);
            let bfp = u64::from_le_bytes(d[8..16].try_into().ok()?);
            let name = String::from_utf8_lossy(&d[16..]).trim_end_matches('\0').to_string();
            Some((fp, bfp, name))
        });
        Ok(Image { path: path.into(), bytes, entry, segments, symbols: Symbols { syms }, chip_stamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        let e = Image::parse(Path::new("x.bin"), b"hello world, not an elf".to_vec()).unwrap_err();
        assert!(e.to_string().contains("not an ELF"), "{e}");
    }

    #[test]
    fn rejects_32_bit() {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1;
        let e = Image::parse(Path::new("x.elf"), b).unwrap_err();
        assert!(e.to_string().contains("32-bit"), "{e}");
    }

    #[test]
    fn rejects_host_elf() {
        // The test binary itself is an x86-64 (or other host) ELF.
        let exe = std::env::current_exe().unwrap();
        let e = Image::load(&exe).unwrap_err();
        assert!(e.to_string().contains("not RISC-V"), "{e}");
    }

    #[test]
    fn symbol_lookup() {
        let s = Symbols {
            syms: vec![
                Symbol { addr: 0x100, size: 0x10, name: "a".into() },
                Symbol { addr: 0x200, size: 0, name: "b".into() },
            ],
        };
        assert_eq!(s.lookup(0x104), Some(("a", 4)));
        assert_eq!(s.lookup(0x110), None);
        assert_eq!(s.lookup(0x250), Some(("b", 0x50)));
        assert_eq!(s.describe(0x50), "?");
    }

    #[test]
    fn symbol_at_the_top_of_the_address_space() {
        // Found by the elf fuzz target: the end of a symbol whose address
        // plus size passes 2^64 overflowed.
        let s = Symbols { syms: vec![Symbol { addr: u64::MAX - 3, size: 0x10, name: "top".into() }] };
        assert_eq!(s.lookup(u64::MAX), Some(("top", 3)));
        assert_eq!(s.lookup(u64::MAX - 4), None);
    }
}
