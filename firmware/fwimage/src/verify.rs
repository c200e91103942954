//! Image verification, as the bootloader does it before it runs an image
//! and as the firmware does it before it commits a downloaded one.
//!
//! Order of the checks: header layout, kind, chip, load addresses, a
//! signature present, the signer key against the OTP key hash, the
//! anti-rollback counter, the Ed25519 signature (RFC 8032) over the
//! 512-byte header, then the payload's SHA-256 against the header's
//! (the header binds the payload through that hash, as MCUboot's signed
//! image hash does).

use crate::header::{Header, HeaderError};
use dpu_hal::regs::image as h;
use ed25519_compact::{PublicKey, Signature};
use sha2::{Digest, Sha256};

/// What an image is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Trust {
    /// SHA-256 of the only accepted signing key (the OTP fuses).
    pub key_hash: [u8; 32],
    /// The OTP anti-rollback counter: lower security counters are refused.
    pub rollback: u32,
    /// Image kind expected (`KIND_BOOTLOADER` / `KIND_FIRMWARE`).
    pub kind: u8,
    /// Layout fingerprint of this chip.
    pub chip: u64,
    /// Largest image (the slot size).
    pub max_len: usize,
    /// Every segment must load inside `[start, end)`.
    pub load_window: (u64, u64),
}

/// Why an image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ImageError {
    Header(HeaderError),
    WrongKind(u8),
    /// Built for another chip layout.
    WrongChip(u64),
    /// A segment outside the load window.
    BadLoadAddress(u64),
    /// No signature (or no signer key) at all.
    Unsigned,
    /// The signer's key is not the one whose hash is in the OTP fuses.
    UntrustedKey,
    /// Security counter below the OTP anti-rollback counter.
    RolledBack { image: u32, otp: u32 },
    /// The payload is not what the header describes (tampered payload).
    PayloadHash,
    /// The signature does not verify (tampered header, or a forged one).
    BadSignature,
    /// The flash could not be read.
    Read,
}

impl ImageError {
    /// A short reason for boot logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::Header(HeaderError::Blank) => "empty slot",
            ImageError::Header(HeaderError::BadMagic) => "no image header (bad magic)",
            ImageError::Header(HeaderError::BadFormat) => "unknown header format",
            ImageError::Header(HeaderError::BadLayout) => "bad segment table or image size",
            ImageError::WrongKind(_) => "wrong image kind",
            ImageError::WrongChip(_) => "built for another chip layout",
            ImageError::BadLoadAddress(_) => "segment outside the firmware's memory",
            ImageError::Unsigned => "unsigned image",
            ImageError::UntrustedKey => "signed with a key the OTP does not trust",
            ImageError::RolledBack { .. } => "rolled back: security counter below the OTP anti-rollback counter",
            ImageError::PayloadHash => "payload hash mismatch (tampered payload)",
            ImageError::BadSignature => "bad signature (tampered header or forged signature)",
            ImageError::Read => "flash read error",
        }
    }
}

/// Checks the image that `read(offset, buf)` returns bytes of. Payload
/// bytes are handed to `sink(header, payload_offset, bytes)` as they are
/// hashed, once the header and signature passed (the bootloader copies
/// them to their load addresses, see [`Header::place`]); the caller must
/// not run what it received unless the result is `Ok`.
pub fn verify<E>(
    trust: &Trust,
    read: &mut dyn FnMut(u32, &mut [u8]) -> Result<(), E>,
    sink: &mut dyn FnMut(&Header, u32, &[u8]),
) -> Result<Header, ImageError> {
    let mut raw = [0u8; h::HEADER_SIZE];
    read(0, &mut raw).map_err(|_| ImageError::Read)?;
    let hdr = Header::parse(&raw, trust.max_len).map_err(ImageError::Header)?;
    if hdr.kind != trust.kind {
        return Err(ImageError::WrongKind(hdr.kind));
    }
    if hdr.chip != trust.chip {
        return Err(ImageError::WrongChip(hdr.chip));
    }
    for s in hdr.segments() {
        let end = s.load.checked_add(u64::from(s.mem_size));
        if s.load < trust.load_window.0 || end.is_none_or(|e| e > trust.load_window.1) {
            return Err(ImageError::BadLoadAddress(s.load));
        }
    }
    if hdr.entry < trust.load_window.0 || hdr.entry >= trust.load_window.1 {
        return Err(ImageError::BadLoadAddress(hdr.entry));
    }
    let mut sig = [0u8; h::SIGNATURE_SIZE];
    read(hdr.signature_offset() as u32, &mut sig).map_err(|_| ImageError::Read)?;
    if sig.iter().all(|&b| b == 0xff) || sig.iter().all(|&b| b == 0) || hdr.public_key.iter().all(|&b| b == 0) {
        return Err(ImageError::Unsigned);
    }
    if Sha256::digest(hdr.public_key).as_slice() != trust.key_hash {
        return Err(ImageError::UntrustedKey);
    }
    if hdr.security_counter < trust.rollback {
        return Err(ImageError::RolledBack { image: hdr.security_counter, otp: trust.rollback });
    }
    // The signature covers the header, which carries the payload's
    // SHA-256: check it first (cheap), then hash the payload once.
    PublicKey::new(hdr.public_key).verify(hdr.raw, &Signature::new(sig)).map_err(|_| ImageError::BadSignature)?;
    let mut hash = Sha256::new();
    let mut buf = [0u8; 4096];
    let mut off = 0u32;
    while off < hdr.payload_size {
        let n = (hdr.payload_size - off).min(buf.len() as u32) as usize;
        read(h::HEADER_SIZE as u32 + off, &mut buf[..n]).map_err(|_| ImageError::Read)?;
        hash.update(&buf[..n]);
        sink(&hdr, off, &buf[..n]);
        off += n as u32;
    }
    if hash.finalize().as_slice() != hdr.payload_hash {
        return Err(ImageError::PayloadHash);
    }
    Ok(hdr)
}

/// The verified result (alias kept for callers that name it).
pub type Verified = Header;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_compact::{KeyPair, Seed};
    extern crate std;
    use std::vec::Vec;

    /// Builds a signed image the way imgtool does (one segment).
    pub fn image(kp: &KeyPair, counter: u32, payload: &[u8], load: u64) -> Vec<u8> {
        let mut hdr = [0u8; h::HEADER_SIZE];
        hdr[0..4].copy_from_slice(&h::MAGIC.to_le_bytes());
        hdr[4..6].copy_from_slice(&h::FORMAT.to_le_bytes());
        hdr[6..8].copy_from_slice(&(h::HEADER_SIZE as u16).to_le_bytes());
        hdr[h::OFF_KIND] = h::KIND_FIRMWARE;
        hdr[h::OFF_VERSION] = 1;
        hdr[h::OFF_SECURITY_COUNTER..][..4].copy_from_slice(&counter.to_le_bytes());
        hdr[h::OFF_ENTRY..][..8].copy_from_slice(&load.to_le_bytes());
        hdr[h::OFF_PAYLOAD_SIZE..][..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        hdr[h::OFF_SEGMENTS..][..2].copy_from_slice(&1u16.to_le_bytes());
        hdr[h::OFF_CHIP..][..8].copy_from_slice(&7u64.to_le_bytes());
        hdr[h::OFF_PAYLOAD_HASH..][..32].copy_from_slice(&Sha256::digest(payload));
        hdr[h::OFF_PUBLIC_KEY..][..32].copy_from_slice(kp.pk.as_ref());
        let t = h::OFF_SEGMENT_TABLE;
        hdr[t..t + 8].copy_from_slice(&load.to_le_bytes());
        hdr[t + 12..t + 16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        hdr[t + 16..t + 20].copy_from_slice(&(payload.len() as u32 + 64).to_le_bytes());
        let sig = kp.sk.sign(hdr, None);
        let mut v = hdr.to_vec();
        v.extend_from_slice(payload);
        v.resize(crate::header::image_len(payload.len() as u32) - 64, 0);
        v.extend_from_slice(sig.as_ref());
        v
    }

    pub fn trust(kp: &KeyPair, rollback: u32) -> Trust {
        let mut key_hash = [0u8; 32];
        key_hash.copy_from_slice(&Sha256::digest(kp.pk.as_ref()));
        Trust { key_hash, rollback, kind: h::KIND_FIRMWARE, chip: 7, max_len: 1 << 20, load_window: (0x4000_0000, 0x4400_0000) }
    }

    fn check(t: &Trust, img: &[u8]) -> Result<Vec<u8>, ImageError> {
        let mut loaded = Vec::new();
        verify(
            t,
            &mut |off, buf: &mut [u8]| -> Result<(), ()> {
                let o = off as usize;
                buf.copy_from_slice(img.get(o..o + buf.len()).ok_or(())?);
                Ok(())
            },
            &mut |_, _, b| loaded.extend_from_slice(b),
        )
        .map(|_| loaded)
    }

    #[test]
    fn good_image_and_every_kind_of_bad_one() {
        let kp = KeyPair::from_seed(Seed::new([1; 32]));
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let img = image(&kp, 3, &payload, 0x4000_0000);
        let t = trust(&kp, 2);
        assert_eq!(check(&t, &img).unwrap(), payload);

        let mut bad = img.clone();
        bad[h::HEADER_SIZE + 5000] ^= 1;
        assert_eq!(check(&t, &bad), Err(ImageError::PayloadHash), "tampered payload");
        let mut bad = img.clone();
        bad[h::OFF_VERSION] = 9;
        assert_eq!(check(&t, &bad), Err(ImageError::BadSignature), "tampered header");
        let other = KeyPair::from_seed(Seed::new([2; 32]));
        assert_eq!(check(&t, &image(&other, 3, &payload, 0x4000_0000)), Err(ImageError::UntrustedKey), "wrong key");
        assert_eq!(check(&trust(&kp, 4), &img), Err(ImageError::RolledBack { image: 3, otp: 4 }));
        let mut unsigned = img.clone();
        let n = unsigned.len();
        unsigned[n - 64..].fill(0xff);
        assert_eq!(check(&t, &unsigned), Err(ImageError::Unsigned));
        // A forged signature: the header's key replaced by the OTP's, signed by another.
        let mut forged = image(&other, 3, &payload, 0x4000_0000);
        forged[h::OFF_PUBLIC_KEY..h::OFF_PUBLIC_KEY + 32].copy_from_slice(kp.pk.as_ref());
        assert_eq!(check(&t, &forged), Err(ImageError::BadSignature));
        assert_eq!(check(&t, &image(&kp, 3, &payload, 0x1000)), Err(ImageError::BadLoadAddress(0x1000)));
        assert_eq!(check(&t, &[0xff; 1024]), Err(ImageError::Header(HeaderError::Blank)));
    }
}
