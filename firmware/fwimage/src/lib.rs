//! Signed firmware images and the A/B boot decision, with no MMIO: the
//! bootloader, the firmware (checking a downloaded image before it
//! commits it) and `imgtool` (host tests) share it.
//!
//! * [`header`]: the image header (`dpu_hal::regs::image` layout): kind,
//!   version, security counter, entry, load segments, payload hash,
//!   signer key.
//! * [`verify`]: checks an image the way the bootloader does: header,
//!   chip, signer key against the OTP key hash, anti-rollback counter,
//!   payload SHA-256, Ed25519 signature (RFC 8032) over header || payload,
//!   streaming the payload once (the bootloader loads it as it goes).
//! * [`state`]: the boot journal in the flash `boot_state` partition
//!   (confirmed slot, pending slot, trial in progress) and the decision
//!   MCUboot's "revert" mode makes from it: a new image boots once on
//!   trial and stays only if it confirms itself.
#![no_std]

pub mod header;
pub mod state;
pub mod verify;

pub use header::{Header, HeaderError, Segment, Version};
pub use state::{BootState, Decision, Slot};
pub use verify::{verify, ImageError, Verified};
