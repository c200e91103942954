//! The card's flash image and OTP fuse file.
//!
//! The flash is laid out by the board file (`[flash.layout]`): the signed
//! bootloader where the boot ROM looks for it, the boot journal, the two
//! configuration copies, slots A and B. The journal and the configuration
//! are written with the firmware's own code (`dpu-fwimage`, `dpu-config`)
//! on a RAM flash of the board's geometry, so they are exactly what the
//! card would have written itself.

use crate::Error;
use dpu_config::Config;
use dpu_fwimage::state::{BootState, Journal, Slot};
use dpu_hal::regs::otp as o;
use dpu_spi_nor::ram::RamFlash;
use dpu_spi_nor::{Flash, Geometry};
use dpu_targets::{Board, Partition};

/// What goes into the flash.
#[derive(Clone, Copy, Debug, Default)]
pub struct Card<'a> {
    /// Signed first-stage bootloader.
    pub bootloader: Option<&'a [u8]>,
    /// Signed firmware images (raw bytes: a test may put anything there).
    pub slot_a: Option<&'a [u8]>,
    pub slot_b: Option<&'a [u8]>,
    /// The boot journal names slot B to boot on trial next (what a
    /// firmware update's activation records).
    pub pending_b: bool,
    /// The operator's configuration: each saved in turn, as the card
    /// saves a change (copies alternate; the last is the newest).
    pub configs: &'a [Config],
}

fn geometry(board: &Board) -> Geometry {
    let f = &board.flash;
    Geometry { size: f.size as u32, page: f.page_size as u32, subsector: f.subsector_size as u32, sector: f.sector_size as u32 }
}

/// The journal partition as the bootloader reads it.
pub fn journal(board: &Board) -> Journal {
    let p = board.flash.layout.boot_state;
    Journal { offset: p.offset as u32, half: (p.size / 2) as u32 }
}

/// The configuration partition as the firmware reads it.
pub fn config_store(board: &Board) -> dpu_config::store::Store {
    let p = board.flash.layout.config;
    dpu_config::store::Store { offset: p.offset as u32, size: p.size as u32 }
}

fn place(f: &mut RamFlash, what: &str, part: Partition, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() as u64 > part.size {
        return Err(Error::Msg(format!("{what}: {} bytes do not fit its {:#x}-byte flash partition at {:#x}", bytes.len(), part.size, part.offset)));
    }
    f.program(part.offset as u32, bytes).map_err(|_| Error::Msg(format!("{what}: flash write failed")))
}

/// The flash image (up to its last non-erased 4 KiB block; the rest reads
/// erased).
pub fn compose(board: &Board, card: &Card) -> Result<Vec<u8>, Error> {
    let l = &board.flash.layout;
    let mut f = RamFlash::new(geometry(board));
    if let Some(b) = card.bootloader {
        place(&mut f, "bootloader", l.bootloader, b)?;
    }
    if let Some(a) = card.slot_a {
        place(&mut f, "slot A", l.slot_a, a)?;
    }
    if let Some(b) = card.slot_b {
        place(&mut f, "slot B", l.slot_b, b)?;
    }
    if card.pending_b {
        let st = BootState { seq: 0, confirmed: Slot::A, pending: Some(Slot::B), trying: None };
        journal(board).write(&mut f, st).map_err(|_| Error::Msg("boot journal write failed".into()))?;
    }
    let mut scratch = vec![0u8; dpu_config::store::SCRATCH];
    for c in card.configs {
        config_store(board).save(&mut f, c, &mut scratch, &mut Config::default()).map_err(|e| Error::Msg(format!("configuration: {e:?}")))?;
    }
    let end = f.bytes.chunks(4096).rposition(|b| b.iter().any(|&x| x != 0xff)).map_or(0, |i| (i + 1) * 4096);
    f.bytes.truncate(end);
    Ok(f.bytes)
}

/// OTP fuse words of a provisioned chip: the key hash (locked) and the
/// anti-rollback counter (a thermometer code of `rollback` bits).
pub fn otp_words(words: usize, key_hash: &[u8; 32], rollback: u32) -> Vec<u32> {
    let mut w = vec![0u32; words];
    for i in 0..o::KEY_HASH_WORDS {
        w[o::KEY_HASH + i] = u32::from_le_bytes(key_hash[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    }
    w[o::LOCK] = o::LOCK_KEY_HASH;
    let mut left = rollback.min((32 * o::ROLLBACK_WORDS) as u32);
    for i in 0..o::ROLLBACK_WORDS {
        let n = left.min(32);
        w[o::ROLLBACK + i] = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        left -= n;
    }
    w
}

/// The OTP file's bytes (little-endian words, as `dpusim --otp` reads them).
pub fn otp_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        Board::load(dpu_targets::default_board_path()).unwrap()
    }

    #[test]
    fn images_land_in_their_partitions_and_the_journal_names_b() {
        let b = board();
        let l = &b.flash.layout;
        let img = compose(&b, &Card { bootloader: Some(&[1; 100]), slot_a: Some(&[2; 10]), slot_b: Some(&[3; 10]), pending_b: true, configs: &[] }).unwrap();
        assert_eq!(img[l.bootloader.offset as usize], 1);
        assert_eq!(img[l.slot_a.offset as usize + 9], 2);
        assert_eq!(img[l.slot_b.offset as usize], 3);
        assert_eq!(img.len() as u64, l.slot_b.offset + 4096, "trimmed after the last written block");
        let mut f = RamFlash::new(geometry(&b));
        f.bytes[..img.len()].copy_from_slice(&img);
        let st = journal(&b).read(&mut f).unwrap();
        assert_eq!((st.confirmed, st.pending, st.trying), (Slot::A, Some(Slot::B), None));
        let too_big = vec![0u8; l.bootloader.size as usize + 1];
        assert!(compose(&b, &Card { bootloader: Some(&too_big), ..Default::default() }).is_err());
    }

    #[test]
    fn otp_words_hold_the_hash_lock_and_counter() {
        let w = otp_words(64, &[0xab; 32], 35);
        assert_eq!(w[o::KEY_HASH], 0xabab_abab);
        assert_eq!(w[o::LOCK], o::LOCK_KEY_HASH);
        assert_eq!(w[o::ROLLBACK..o::ROLLBACK + o::ROLLBACK_WORDS].iter().map(|x| x.count_ones()).sum::<u32>(), 35);
        assert_eq!(w[o::ROLLBACK + 1], 0b111);
    }
}
