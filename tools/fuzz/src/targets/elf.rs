//! The simulator's firmware image loader (`dpu_sim::elf::Image::parse`)
//! and the defmt table it reads from the same file, fed arbitrary bytes
//! as a user's `--elf` file: each either loads or says why not, and a
//! loaded image's segments and symbols are usable.
//!
//! Input: the file.

use dpu_sim::defmt_log::DefmtTable;
use dpu_sim::elf::Image;
use std::path::Path;

pub fn run(data: &[u8]) {
    let Ok(img) = Image::parse(Path::new("fuzz.elf"), data.to_vec()) else { return };
    assert!(!img.segments.is_empty());
    for s in &img.segments {
        assert!(s.data.len() <= data.len(), "segment larger than the file");
        let _ = s.paddr.checked_add(s.mem_size);
    }
    for sym in img.symbols.iter().take(64) {
        let _ = img.symbols.lookup(sym.addr);
        let _ = img.symbols.describe(sym.addr.wrapping_add(sym.size));
    }
    let _ = img.symbols.lookup(img.entry);
    let _ = DefmtTable::from_elf(&img.bytes);
}
