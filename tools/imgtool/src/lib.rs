//! Host side of secure boot and flashing.
//!
//! * [`key`]: Ed25519 signing keys: a development key generated on first
//!   use (under `target/keys/`, never committed), or a production key file.
//! * [`image`]: packs an ELF into a signed image (`dpu_hal::regs::image`
//!   layout), inspects and verifies one (with `ed25519-dalek`, not the
//!   firmware's verifier).
//! * [`flash`]: the card's flash image: signed bootloader, slots A and B,
//!   the boot journal (a slot to boot on trial), the configuration copies;
//!   and the OTP fuse file (root key hash, lock, anti-rollback counter).
//! * [`config`]: a scenario's storage and network settings as the
//!   operator configuration (`dpu_config::Config`) the card keeps in flash.
//! * [`devkey`]: the card's device key (OTP), and the AES key wrap (RFC
//!   3394) of namespace keys with it for the flash configuration.

pub mod config;
pub mod devkey;
pub mod flash;
pub mod image;
pub mod key;

/// What went wrong, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
    #[error("{0}")]
    Msg(String),
}

impl Error {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }

    pub fn bad(path: &std::path::Path, msg: impl Into<String>) -> Error {
        Error::Bad { path: path.display().to_string(), msg: msg.into() }
    }
}
