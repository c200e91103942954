//! Board description (`targets/boards/*.toml`): what sits on the card.

use crate::{load_toml, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A card: the chip it carries and the devices around it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub board: BoardInfo,
    pub pcie: Pcie,
    pub flash: Flash,
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    pub name: String,
    /// Chip file name (relative to `targets/chips/`) this board carries.
    pub chip: String,
}

/// Host-facing PCIe endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcie {
    pub gen: u32,
    pub lanes: u32,
    pub total_vfs: u32,
}

/// SPI NOR boot flash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flash {
    pub size: u64,
}

impl Board {
    /// Loads and validates a board file.
    pub fn load(path: impl AsRef<Path>) -> Result<Board, ConfigError> {
        let path = path.as_ref();
        let mut b: Board = load_toml(path)?;
        b.source = path.to_path_buf();
        let err = |field: &str, msg: String| Err(ConfigError::field(path, field, msg));
        if b.board.name.is_empty() {
            return err("board.name", "must not be empty".into());
        }
        if !(1..=5).contains(&b.pcie.gen) {
            return err("pcie.gen", format!("{} is not a PCIe generation 1..=5", b.pcie.gen));
        }
        if ![1, 2, 4, 8, 16].contains(&b.pcie.lanes) {
            return err("pcie.lanes", format!("{} is not one of 1, 2, 4, 8, 16", b.pcie.lanes));
        }
        if b.pcie.total_vfs > 255 {
            return err("pcie.total_vfs", format!("{} exceeds the SR-IOV limit of 255 for one PF", b.pcie.total_vfs));
        }
        if b.flash.size == 0 || !b.flash.size.is_power_of_two() {
            return err("flash.size", format!("{:#x} must be a non-zero power of two", b.flash.size));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_board_is_valid() {
        let b = Board::load(crate::default_board_path()).unwrap();
        assert_eq!(b.pcie.total_vfs, 64);
        assert_eq!(b.board.chip, "mppa80.toml");
    }

    #[test]
    fn bad_lanes_named() {
        let dir = std::env::temp_dir().join(format!("dpu-board-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.toml");
        let text = std::fs::read_to_string(crate::default_board_path()).unwrap().replacen("lanes = 16", "lanes = 3", 1);
        std::fs::write(&p, text).unwrap();
        let e = Board::load(&p).unwrap_err().to_string();
        assert!(e.contains("pcie.lanes") && e.contains("b.toml"), "{e}");
    }
}
