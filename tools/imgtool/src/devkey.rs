//! The card's device key (hardware unique key): the AES-256
//! key-encryption key the factory blows into the OTP fuses
//! (`dpu_hal::regs::otp::DEVICE_KEY`, then `LOCK_DEVICE_KEY`), which only
//! the crypto engines can use afterwards. The flash tool generates one per
//! card from the operating system's random source and wraps the keys of
//! encrypted namespaces with it before they go into the flash
//! configuration: the flash never holds a namespace key in the clear.
//!
//! AES key wrap (RFC 3394 §2.2.1 / §2.2.2, NIST SP 800-38F §6.2 KW with
//! the default IV A6A6A6A6A6A6A6A6), written here from the RFC on the
//! `aes` block cipher: the simulator's crypto engine model unwraps with
//! the RustCrypto `aes-kw` crate, so the two implementations check each
//! other in the system tests.

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use dpu_hal::regs::otp as o;

/// RFC 3394 §2.2.3.1 default initial value.
const IV: [u8; 8] = [0xa6; 8];

/// A device key. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey([u8; 32]);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<DeviceKey, String> {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).map_err(|e| format!("no random source for a device key: {e}"))?;
        Ok(DeviceKey(k))
    }

    /// A given key (tests; an all-zero key means "none" to the chip).
    pub fn from_bytes(k: [u8; 32]) -> DeviceKey {
        DeviceKey(k)
    }

    /// Blows the key into OTP words `words` and locks it away from the cores.
    pub fn provision(&self, words: &mut [u32]) {
        for i in 0..o::DEVICE_KEY_WORDS {
            words[o::DEVICE_KEY + i] |= u32::from_le_bytes(self.0[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        }
        words[o::LOCK] |= o::LOCK_DEVICE_KEY;
    }

    /// The device key an OTP image holds (`None`: none provisioned).
    pub fn from_otp(words: &[u32]) -> Option<DeviceKey> {
        let mut k = [0u8; 32];
        for i in 0..o::DEVICE_KEY_WORDS {
            k[4 * i..4 * i + 4].copy_from_slice(&words.get(o::DEVICE_KEY + i).copied().unwrap_or(0).to_le_bytes());
        }
        (k != [0; 32]).then_some(DeviceKey(k))
    }

    fn cipher(&self) -> Aes256 {
        Aes256::new(GenericArray::from_slice(&self.0))
    }

    /// Wraps `key` (a whole number of 8-byte blocks, at least 2):
    /// `key.len() + 8` bytes (RFC 3394 §2.2.1, index-based form).
    pub fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, String> {
        if key.len() < 16 || key.len() % 8 != 0 {
            return Err(format!("a key to wrap is whole 8-byte blocks, at least 16 bytes (got {})", key.len()));
        }
        let aes = self.cipher();
        let n = key.len() / 8;
        let mut a = IV;
        let mut r: Vec<[u8; 8]> = key.chunks(8).map(|c| c.try_into().expect("8 bytes")).collect();
        for j in 0..6 {
            for (i, ri) in r.iter_mut().enumerate() {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&a);
                b[8..].copy_from_slice(ri);
                let blk = GenericArray::from_mut_slice(&mut b);
                aes.encrypt_block(blk);
                let t = (n * j + i + 1) as u64;
                for (k, x) in a.iter_mut().enumerate() {
                    *x = blk[k] ^ t.to_be_bytes()[k];
                }
                ri.copy_from_slice(&blk[8..]);
            }
        }
        let mut out = a.to_vec();
        r.iter().for_each(|b| out.extend_from_slice(b));
        Ok(out)
    }

    /// Unwraps `blob` (RFC 3394 §2.2.2); `None` if the integrity check
    /// (§2.2.3) fails or the length is not whole blocks.
    pub fn unwrap(&self, blob: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < 24 || blob.len() % 8 != 0 {
            return None;
        }
        let aes = self.cipher();
        let n = blob.len() / 8 - 1;
        let mut a: [u8; 8] = blob[..8].try_into().expect("8 bytes");
        let mut r: Vec<[u8; 8]> = blob[8..].chunks(8).map(|c| c.try_into().expect("8 bytes")).collect();
        for j in (0..6).rev() {
            for i in (0..n).rev() {
                let t = (n * j + i + 1) as u64;
                let mut b = [0u8; 16];
                for (k, x) in a.iter().enumerate() {
                    b[k] = x ^ t.to_be_bytes()[k];
                }
                b[8..].copy_from_slice(&r[i]);
                let blk = GenericArray::from_mut_slice(&mut b);
                aes.decrypt_block(blk);
                a.copy_from_slice(&blk[..8]);
                r[i].copy_from_slice(&blk[8..]);
            }
        }
        (a == IV).then(|| r.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_vector_4_6() {
        let k = DeviceKey::from_bytes(hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F").try_into().unwrap());
        let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let want = hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
        assert_eq!(k.wrap(&data).unwrap(), want);
        assert_eq!(k.unwrap(&want).unwrap(), data);
    }

    #[test]
    fn tampered_blobs_and_other_keys_fail_the_integrity_check() {
        let k = DeviceKey::generate().unwrap();
        let key: Vec<u8> = (0..64).collect();
        let blob = k.wrap(&key).unwrap();
        assert_eq!(blob.len(), 72);
        assert_eq!(k.unwrap(&blob).unwrap(), key);
        let mut bad = blob.clone();
        bad[50] ^= 4;
        assert_eq!(k.unwrap(&bad), None);
        assert_eq!(DeviceKey::generate().unwrap().unwrap(&blob), None);
        assert!(k.wrap(&key[..60]).is_err());
        assert!(!format!("{k:?}").contains(|c: char| c.is_ascii_digit()), "Debug shows no key bytes");
    }

    #[test]
    fn provisioning_blows_the_key_and_its_lock() {
        let k = DeviceKey::from_bytes([0x11; 32]);
        let mut w = vec![0u32; 64];
        k.provision(&mut w);
        assert_eq!(w[o::DEVICE_KEY], 0x1111_1111);
        assert_ne!(w[o::LOCK] & o::LOCK_DEVICE_KEY, 0);
        assert_eq!(DeviceKey::from_otp(&w), Some(k));
        assert_eq!(DeviceKey::from_otp(&[0; 64]), None);
    }
}
