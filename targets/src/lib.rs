//! Parser and validator for the hardware description files under `targets/`.
//!
//! `targets/` is the single source of truth for hardware facts: the firmware's
//! address constants (`dpu-hal`), the linker script (`dpu-rt`) and the
//! simulator (`dpu-sim`) all read the same files through this crate. Every
//! error names the file, the field and what is wrong.

mod board;
mod chip;
mod error;
mod firmware;
mod hostile;
mod initiator;
mod management;
pub mod limits;
mod preos;
mod scenario;
mod strict;
mod subsystem;

pub use board::{parse_mac, Board, Flash, FlashLayout, Network, Partition, Pcie, Port, Ssds};
pub use chip::{window, BootCfg, Crypto, Dma, Ec, Otp, SsdWindow, Trng,
    Bootrom, Chip, ChipInfo, Contention, CoreTiming, Ddr, Devices, Firmware, IrqDevice, Memory,
    Mailbox, MemoryTiming, MmioDevice, Nic, Noc, Plic, Smem, Timing, FIRMWARE_ADDRESS_LIMIT,
};
pub use error::ConfigError;
pub use firmware::{FirmwareCfg, COMMIT_STATUSES};
pub use hostile::{HostileCfg, HOSTILE_ACTIONS};
pub use initiator::InitiatorCfg;
pub use management::{Management, ManagementCfg, RpcCfg, DEFAULT_TCP_PORT, MAX_ALLOW, MAX_RPC_BYTES, MAX_TOKEN};
pub use subsystem::{Subsystem, SubsystemCfg, SubsystemNsCfg, MAX_ALLOWED_HOSTS, MAX_SUBSYSTEMS, MAX_SUBSYSTEM_NAMESPACES};
pub use preos::{PreOsCfg, FILLS};
pub use scenario::{MAX_MODELS, 
    check_nqn, parse_cidr, parse_size, parse_time_ns, same_subnet, Backend, ExpectCfg, FaultCfg, HostCfg, JobCfg, NamespaceCfg, NetworkCfg, Scenario, XtsKey, parse_xts_key,
    ScenarioInfo, StorageCfg, TargetCfg, TargetNsCfg, MAX_TIME_NS, EcCfg, EcMemberCfg, EC_CHUNK,
};
pub use limits::{ns_to_cycles, DISCOVERY_LISTENERS, TARGET_LISTENERS, TARGET_SOCKETS, MAX_EC_MEMBERS, MAX_EC_VOLUMES, MAX_KEYS, MAX_NAMESPACES, MAX_NSID, MAX_PORTS, MAX_REMOTE_CONTROLLERS};

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Reads and deserializes a TOML file, reporting the dotted field path on error.
pub(crate) fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.to_path_buf(),
        source: e,
    })?;
    parse_toml(path, &text)
}

/// Deserializes TOML text that came from `path` (used for error messages).
/// A syntax error gives its line and column; a field error names the
/// field (and where it is). An array where a table belongs is refused.
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(strict::Strict(de)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let at = inner.span().map(|s| line_column(text, s.start));
        let file = path.to_path_buf();
        let message = inner.message().trim_end().to_string();
        match (field.as_str(), at) {
            (".", Some((line, column))) => ConfigError::Syntax { file, line, column, message },
            (".", None) => ConfigError::Field { file, field: "(top level)".into(), message },
            (_, Some((line, column))) => ConfigError::Field { file, field, message: format!("{message} (line {line}, column {column})") },
            (_, None) => ConfigError::Field { file, field, message },
        }
    })
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(at.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The workspace's `targets/` directory (for tools running inside the repo).
pub fn targets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Path of the default chip description.
pub fn default_chip_path() -> PathBuf {
    targets_dir().join("chips/mppa80.toml")
}

/// Path of the default board description.
pub fn default_board_path() -> PathBuf {
    targets_dir().join("boards/dpu-card.toml")
}

/// For firmware build scripts: [`build_chip`] plus the firmware's address
/// reach check (image and stacks below 2 GiB).
pub fn build_firmware_chip() -> Chip {
    let chip = build_chip();
    if let Err(e) = chip.check_firmware_reach() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    chip
}

/// For build scripts: the chip selected by `$DPU_CHIP` (a path) or the
/// default chip. Prints the `cargo:rerun-if-*` lines; on a bad file prints
/// the error (file, field, reason) and exits.
pub fn build_chip() -> Chip {
    println!("cargo:rerun-if-env-changed=DPU_CHIP");
    let path = match std::env::var_os("DPU_CHIP") {
        Some(p) => PathBuf::from(p),
        None => default_chip_path(),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    match Chip::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// For build scripts: the board selected by `$DPU_BOARD` (a path) or the
/// default board (same conventions as [`build_chip`]).
pub fn build_board() -> Board {
    println!("cargo:rerun-if-env-changed=DPU_BOARD");
    let path = match std::env::var_os("DPU_BOARD") {
        Some(p) => PathBuf::from(p),
        None => default_board_path(),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    match Board::load(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
