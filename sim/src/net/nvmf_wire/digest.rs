//! NVMe/TCP header and data digests: CRC32C (Castagnoli, the iSCSI
//! CRC; NVMe/TCP Transport 1.0 §3.6.1 "PDU Digests", RFC 3720 B.4),
//! stored little endian. HDGST covers the HLEN bytes of a PDU header,
//! DDGST the PDU data only (not the PDO padding). The CRC comes from the
//! `crc` crate's catalogued CRC-32/ISCSI, not from the firmware.

use crc::{Crc, Digest, CRC_32_ISCSI};

static CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// The 4 digest bytes as they travel (little endian).
pub fn digest_bytes(data: &[u8]) -> [u8; 4] {
    crc32c(data).to_le_bytes()
}

/// A digest computed over several pieces (data spread over buffers).
pub struct Crc32c(Digest<'static, u32>);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    pub fn new() -> Crc32c {
        Crc32c(CASTAGNOLI.digest())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The 4 digest bytes as they travel.
    pub fn finish(self) -> [u8; 4] {
        self.0.finalize().to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // The catalogue's check value, and the RFC 3720 B.4 vectors.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
        assert_eq!(digest_bytes(b"123456789"), [0x83, 0x92, 0x06, 0xe3], "little endian on the wire");
    }

    #[test]
    fn pieces_give_the_same_digest() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut d = Crc32c::new();
        for chunk in data.chunks(333) {
            d.update(chunk);
        }
        assert_eq!(d.finish(), digest_bytes(&data));
    }
}
