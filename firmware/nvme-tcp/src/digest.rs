//! CRC32C header and data digests (NVMe/TCP Transport 1.0 §3.6.1:
//! HDGST and DDGST are CRC32C, the iSCSI CRC of RFC 3720 §12.1).
//!
//! On the wire the 32-bit CRC (already complemented, i.e. the standard
//! CRC-32C value) is stored little-endian, as every NVMe multi-byte field
//! is, and as Linux `nvme-tcp` stores it (`__le32`); RFC 3720 appendix B.4
//! gives test vectors in exactly that byte order. The header digest covers
//! the `hlen` header bytes only; the data digest covers the PDU data only
//! (not the padding before it).

use crc::{Crc, Digest, CRC_32_ISCSI};

static CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
/// The same, as a constant so `Crc32c::new` can be `const` (the table is
/// promoted to static memory, not copied).
const CASTAGNOLI_CONST: &Crc<u32> = &Crc::<u32>::new(&CRC_32_ISCSI);

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// The four wire bytes of a digest value.
pub fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

/// A digest value from its four wire bytes.
pub fn from_wire(b: [u8; 4]) -> u32 {
    u32::from_le_bytes(b)
}

/// An incremental CRC32C over several slices, e.g. PDU data that wraps
/// around the end of a receive ring or lies in several DMA segments.
#[derive(Clone)]
pub struct Crc32c {
    digest: Digest<'static, u32>,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    pub const fn new() -> Self {
        Crc32c { digest: CASTAGNOLI_CONST.digest() }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// Continues a CRC whose bytes so far have the finished CRC32C
    /// `finished` (0 for none), e.g. a value an offload engine computed
    /// over part of the data: `resume(crc32c(a))` fed `b` finishes to
    /// `crc32c(a ++ b)`. The register of a reflected CRC with all-ones
    /// init and final XOR is the finished value XOR all-ones; the `crc`
    /// crate takes an initial value in unreflected form.
    pub fn resume(finished: u32) -> Self {
        Crc32c { digest: CASTAGNOLI_CONST.digest_with_initial((finished ^ u32::MAX).reverse_bits()) }
    }

    /// The finished CRC32C of what was fed so far (the state goes on).
    pub fn value(&self) -> u32 {
        self.digest.clone().finalize()
    }

    /// The CRC32C of everything fed so far.
    pub fn finish(self) -> u32 {
        self.digest.finalize()
    }

    /// True when everything fed so far matches the received wire digest.
    pub fn matches(self, wire: [u8; 4]) -> bool {
        self.finish() == from_wire(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogue check value of CRC-32C (Castagnoli).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(to_wire(crc32c(b"123456789")), [0x83, 0x92, 0x06, 0xE3]);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn rfc3720_vectors_in_wire_order() {
        // RFC 3720 B.4 lists the CRC bytes as they go on the wire.
        assert_eq!(to_wire(crc32c(&[0u8; 32])), [0xaa, 0x36, 0x91, 0x8a]);
        assert_eq!(to_wire(crc32c(&[0xffu8; 32])), [0x43, 0xab, 0xa8, 0x62]);
        let inc: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(to_wire(crc32c(&inc)), [0x4e, 0x79, 0xdd, 0x46]);
        let dec: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(to_wire(crc32c(&dec)), [0x5c, 0xdb, 0x3f, 0x11]);
        assert_eq!(from_wire([0xaa, 0x36, 0x91, 0x8a]), 0x8a91_36aa);
    }

    #[test]
    fn resuming_from_a_finished_value_continues_the_crc() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        for split in [0, 1, 7, 150, 299, 300] {
            let mut d = Crc32c::resume(crc32c(&data[..split]));
            d.update(&data[split..]);
            assert_eq!(d.value(), crc32c(&data), "split at {split}");
            assert_eq!(d.finish(), crc32c(&data));
        }
        assert_eq!(Crc32c::resume(0).finish(), 0, "resuming nothing is a new CRC");
        let mut d = Crc32c::new();
        d.update(b"1234");
        assert_eq!(d.value(), crc32c(b"1234"));
        d.update(b"56789");
        assert_eq!(d.finish(), 0xE306_9283);
    }

    #[test]
    fn incremental_equals_one_shot_at_every_split() {
        let data: [u8; 97] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let whole = crc32c(&data);
        for split in 0..=data.len() {
            // A ring that wraps at `split`, fed in two pieces.
            let mut d = Crc32c::new();
            d.update(&data[..split]);
            d.update(&data[split..]);
            assert_eq!(d.finish(), whole, "split at {split}");
        }
        let mut d = Crc32c::new();
        for b in data.chunks(7) {
            d.update(b);
        }
        assert!(d.matches(to_wire(whole)));
        let mut d = Crc32c::new();
        d.update(&data[1..]);
        assert!(!d.matches(to_wire(whole)));
    }
}
