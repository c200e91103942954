//! Crypto engines (layout: `dpu_hal::regs::crypto`): key slots, queues,
//! descriptor decoding, and the cryptography itself, done with RustCrypto
//! crates (`aes`, `xts-mode`, `aes-gcm`, `sha2`, `aes-kw` for the key
//! ladder's AES key wrap under the OTP device key). Timing, memory and host
//! accesses: [`super::crypto_exec`].
//!
//! An engine runs the descriptors of all its queues on one datapath in the
//! order they were handed over: a queue's descriptors wait for the work
//! other queues put on the engine before them (contention). A key slot
//! holds a key and its kind; nothing reads a key back through registers,
//! and an engine reset zeroizes every slot.

use super::queue::Queue;
use aes::cipher::KeyInit;
use aes::Aes256;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use dpu_hal::regs::{crypto as r, queue as q};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use xts_mode::{get_tweak_default, Xts128};

/// One 64-byte descriptor: `dpu_hal`'s typed view (one definition of
/// the layout, and of what its fields mean: data unit, first data unit
/// number, bytes read and written).
pub use dpu_hal::crypto::Desc;

/// What a key slot holds.
#[derive(Clone, Default)]
pub enum KeySlot {
    #[default]
    Empty,
    Xts(Box<[u8; 64]>),
    Gcm(Box<[u8; 32]>),
}

/// A descriptor on the engine.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub start: u64,
    pub done: u64,
    pub queue: usize,
    pub desc: Desc,
}

pub struct Engine {
    pub queues: Vec<Queue>,
    /// Running SHA-256 of each queue's open chain.
    pub sha: Vec<Option<Sha256>>,
    pub slots: Vec<KeySlot>,
    /// When the datapath is free again.
    pub free_at: u64,
    pub inflight: VecDeque<Job>,
    /// Queue of the work last put on the datapath.
    pub last_queue: usize,
    pub descriptors: u64,
    pub bytes: u64,
}

/// Crypto statistics (`--stats-json` `crypto`).
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct CryptoStats {
    pub descriptors: u64,
    pub bytes: u64,
    pub completions: u64,
    pub errors: u64,
    pub auth_failures: u64,
    /// Descriptors that waited for another queue's work on their engine.
    pub contended: u64,
    /// Cycles those descriptors waited.
    pub wait_cycles: u64,
    /// Datapath cycles of all descriptors, all engines together (busy
    /// fraction = busy_cycles / (engines x cycles)).
    pub busy_cycles: u64,
    /// Data read from / written to host memory (encrypt from the host's
    /// pages, decrypt into them).
    pub bytes_from_host: u64,
    pub bytes_to_host: u64,
}

/// Rates from `[devices.crypto]`.
#[derive(Clone, Copy, Debug)]
pub struct CryptoTiming {
    pub aes_bytes_per_cycle: u64,
    pub sha_bytes_per_cycle: u64,
    pub descriptor_cycles: u64,
    pub data_unit_cycles: u64,
}

pub struct CryptoEngines {
    /// Its component id (events of its engines).
    pub id: crate::event::ComponentId,
    pub engines: Vec<Engine>,
    pub timing: CryptoTiming,
    pub stats: CryptoStats,
}

impl CryptoEngines {
    pub fn new(id: crate::event::ComponentId, engines: usize, queues: usize, key_slots: usize, timing: CryptoTiming) -> CryptoEngines {
        let engines = (0..engines)
            .map(|_| Engine {
                queues: vec![Queue::default(); queues],
                sha: vec![None; queues],
                slots: vec![KeySlot::Empty; key_slots],
                free_at: 0,
                inflight: VecDeque::new(),
                last_queue: 0,
                descriptors: 0,
                bytes: 0,
            })
            .collect();
        CryptoEngines { id, engines, timing, stats: CryptoStats::default() }
    }

    /// Engine cycles for a descriptor.
    pub fn engine_cycles(&self, d: &Desc) -> u64 {
        let t = &self.timing;
        let len = u64::from(d.len);
        t.descriptor_cycles
            + match d.op {
                r::OP_XTS_ENCRYPT | r::OP_XTS_DECRYPT => {
                    len.div_ceil(t.aes_bytes_per_cycle) + len.div_ceil(u64::from(d.data_unit())) * t.data_unit_cycles
                }
                r::OP_GCM_SEAL | r::OP_GCM_OPEN => (len + u64::from(d.aad_len)).div_ceil(t.aes_bytes_per_cycle),
                r::OP_SHA256 => len.div_ceil(t.sha_bytes_per_cycle),
                _ => 0,
            }
    }

    fn split(off: u64) -> (usize, u64) {
        ((off / r::ENGINE) as usize, off % r::ENGINE)
    }

    /// Register read.
    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let (e, reg) = Self::split(off);
        let eng = self.engines.get(e)?;
        if reg >= r::QUEUES {
            let qi = ((reg - r::QUEUES) / q::SIZE) as usize;
            return eng.queues.get(qi)?.read((reg - r::QUEUES) % q::SIZE, size);
        }
        Some(match (reg, size) {
            (r::INFO, 4) => (eng.queues.len() as u64) << 16 | eng.slots.len() as u64,
            (r::ENGINE_CONTROL, 4) => 0,
            (r::LOAD, 4) => eng.inflight.iter().map(|j| u64::from(j.desc.len)).sum::<u64>().min(u64::from(u32::MAX)),
            (r::KEYS_LOADED, 4) => eng.slots.iter().filter(|s| !matches!(s, KeySlot::Empty)).count() as u64,
            (r::DESCRIPTORS, 8) => eng.descriptors,
            (r::BYTES, 8) => eng.bytes,
            _ => return None,
        })
    }

    /// Register write; `Ok(Some((engine, queue)))` when a TAIL moved.
    pub fn write(&mut self, off: u64, size: u8, v: u64) -> Result<Option<(usize, usize)>, ()> {
        let (e, reg) = Self::split(off);
        let eng = self.engines.get_mut(e).ok_or(())?;
        if reg >= r::QUEUES {
            let qi = ((reg - r::QUEUES) / q::SIZE) as usize;
            let queue = eng.queues.get_mut(qi).ok_or(())?;
            if (reg - r::QUEUES) % q::SIZE == q::CONTROL {
                eng.sha[qi] = None;
            }
            return Ok(queue.write((reg - r::QUEUES) % q::SIZE, size, v)?.then_some((e, qi)));
        }
        match (reg, size) {
            (r::ENGINE_CONTROL, 4) if v as u32 & r::CTRL_RESET != 0 => {
                eng.reset();
                Ok(None)
            }
            (r::ENGINE_CONTROL, 4) => Ok(None),
            _ => Err(()),
        }
    }
}

impl Engine {
    /// Engine reset: every key slot zeroized, queues stopped, work dropped.
    pub fn reset(&mut self) {
        for s in self.slots.iter_mut() {
            zeroize_slot(s);
        }
        for q in self.queues.iter_mut() {
            q.stop();
        }
        self.sha.iter_mut().for_each(|s| *s = None);
        self.inflight.clear();
    }
}

/// Overwrites a slot's key bytes with zeros, then empties it.
pub fn zeroize_slot(s: &mut KeySlot) {
    match s {
        KeySlot::Xts(k) => k.fill(0),
        KeySlot::Gcm(k) => k.fill(0),
        KeySlot::Empty => {}
    }
    *s = KeySlot::Empty;
}

/// XTS-AES-256 over `data` (a whole number of `du`-byte data units
/// numbered from `first_dun`), in place (IEEE 1619-2018 §5.3.1 / §5.4.1;
/// the tweak is the data-unit number as a 128-bit little-endian integer).
pub fn xts(key: &[u8; 64], first_dun: u64, du: usize, data: &mut [u8], encrypt: bool) {
    let k1 = Aes256::new_from_slice(&key[..32]).expect("32-byte key");
    let k2 = Aes256::new_from_slice(&key[32..]).expect("32-byte key");
    let x = Xts128::<Aes256>::new(k1, k2);
    if encrypt {
        x.encrypt_area(data, du, u128::from(first_dun), get_tweak_default);
    } else {
        x.decrypt_area(data, du, u128::from(first_dun), get_tweak_default);
    }
}

/// AES-256-GCM seal (NIST SP 800-38D §7.1): ciphertext in place, tag returned.
pub fn gcm_seal(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
    let c = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let tag = c.encrypt_in_place_detached(Nonce::from_slice(iv), aad, data).expect("length within GCM limits");
    tag.into()
}

/// AES-256-GCM open (§7.2): plaintext in place if the tag matches.
pub fn gcm_open(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
    let c = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    c.decrypt_in_place_detached(Nonce::from_slice(iv), aad, data, Tag::from_slice(tag)).is_ok()
}

/// AES key wrap of `key` under the 256-bit key-encryption key `kek` (RFC
/// 3394 §2.2.1, NIST SP 800-38F §6.2 KW-AE with the default IV
/// A6A6A6A6A6A6A6A6): `key.len() + 8` bytes. `None` unless `key` is a
/// whole number (at least 2) of 64-bit blocks.
pub fn key_wrap(kek: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
    aes_kw::KekAes256::from(*kek).wrap_vec(key).ok()
}

/// AES key unwrap (RFC 3394 §2.2.2, SP 800-38F §6.2 KW-AD): the key, or
/// `None` when the integrity check fails (the blob was altered or wrapped
/// under another key) or the length is not whole blocks.
pub fn key_unwrap(kek: &[u8; 32], blob: &[u8]) -> Option<Vec<u8>> {
    aes_kw::KekAes256::from(*kek).unwrap_vec(blob).ok()
}

/// SHA-256 of `data` (FIPS 180-4 §6.2).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// IEEE 1619-2018 Annex B, XTS-AES-256 vector 10 (data unit
    /// sequence number 0xff, 512 bytes, plaintext 00 01 .. ff 00 .. ff).
    #[test]
    fn ieee1619_xts_aes256_vector_10() {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&hex("2718281828459045235360287471352662497757247093699959574966967627"));
        key[32..].copy_from_slice(&hex("3141592653589793238462643383279502884197169399375105820974944592"));
        let pt: Vec<u8> = (0..512).map(|i| i as u8).collect();
        let want = hex(
            "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd\
             5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca\
             2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f\
             93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a\
             84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae\
             9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac\
             6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385\
             1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151",
        );
        let mut data = pt.clone();
        xts(&key, 0xff, 512, &mut data, true);
        assert_eq!(data, want);
        xts(&key, 0xff, 512, &mut data, false);
        assert_eq!(data, pt);
    }

    /// Several data units in one call equal one call per unit with the
    /// unit's own number.
    #[test]
    fn xts_units_are_numbered_consecutively() {
        let key: [u8; 64] = core::array::from_fn(|i| i as u8 ^ 0x5a);
        let pt: Vec<u8> = (0..4 * 512).map(|i| (i * 7) as u8).collect();
        let mut all = pt.clone();
        xts(&key, 1000, 512, &mut all, true);
        for u in 0..4 {
            let mut one = pt[u * 512..(u + 1) * 512].to_vec();
            xts(&key, 1000 + u as u64, 512, &mut one, true);
            assert_eq!(one, all[u * 512..(u + 1) * 512]);
        }
    }

    /// NIST GCM test vectors (McGrew & Viega, "The Galois/Counter Mode of
    /// Operation", test cases 14-16: AES-256).
    #[test]
    fn nist_gcm_aes256_vectors() {
        // Test case 14: zero key, zero IV, one zero block.
        let mut d = vec![0u8; 16];
        let tag = gcm_seal(&[0; 32], &[0; 12], &[], &mut d);
        assert_eq!(d, hex("cea7403d4d606b6e074ec5d3baf39d18"));
        assert_eq!(tag.to_vec(), hex("d0d1c8a799996bf0265b98b5d48ab919"));
        // Test case 16: with AAD, 60-byte plaintext.
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").try_into().unwrap();
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let mut d = pt.clone();
        let tag = gcm_seal(&key, &iv, &aad, &mut d);
        assert_eq!(
            d,
            hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
        );
        assert_eq!(tag.to_vec(), hex("76fc6ece0f4e1768cddf8853bb2d551b"));
        assert!(gcm_open(&key, &iv, &aad, &mut d, &tag));
        assert_eq!(d, pt);
        // A flipped tag bit: refused, buffer left as ciphertext.
        let mut d2 = pt.clone();
        let tag = gcm_seal(&key, &iv, &aad, &mut d2);
        let ct = d2.clone();
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!gcm_open(&key, &iv, &aad, &mut d2, &bad));
        assert_eq!(d2, ct);
    }

    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf").
    #[test]
    fn sha256_vectors() {
        assert_eq!(sha256(b"abc").to_vec(), hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(sha256(b"").to_vec(), hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert_eq!(
            sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_vec(),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
    }

    /// RFC 3394 §4.6: wrap 256 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_vector_4_6() {
        let kek: [u8; 32] = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F").try_into().unwrap();
        let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let want = hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
        assert_eq!(key_wrap(&kek, &data).unwrap(), want);
        assert_eq!(key_unwrap(&kek, &want).unwrap(), data);
    }

    /// A 64-byte XTS key wraps into 72 bytes and back; any flipped bit, or
    /// another KEK, fails the integrity check.
    #[test]
    fn wrapped_keys_round_trip_and_tampering_is_caught() {
        let kek = [0x42u8; 32];
        let key: Vec<u8> = (0..64).map(|i| (i * 13 + 1) as u8).collect();
        let blob = key_wrap(&kek, &key).unwrap();
        assert_eq!(blob.len(), r::WRAPPED_XTS_KEY);
        assert_eq!(key_unwrap(&kek, &blob).unwrap(), key);
        for bit in [0, 7, 100, 575] {
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(key_unwrap(&kek, &bad), None, "bit {bit}");
        }
        assert_eq!(key_unwrap(&[0x43; 32], &blob), None, "another device key");
        assert_eq!(key_unwrap(&kek, &blob[..71]), None, "not whole blocks");
    }

    #[test]
    fn registers_never_show_keys_and_reset_zeroizes() {
        let t = CryptoTiming { aes_bytes_per_cycle: 8, sha_bytes_per_cycle: 1, descriptor_cycles: 60, data_unit_cycles: 14 };
        let mut c = CryptoEngines::new(Default::default(), 2, 4, 8, t);
        c.engines[1].slots[3] = KeySlot::Gcm(Box::new([0xab; 32]));
        assert_eq!(c.read(r::ENGINE + r::KEYS_LOADED, 4), Some(1));
        assert_eq!(c.read(r::ENGINE + r::INFO, 4), Some(4 << 16 | 8));
        // No register of the engine reads back key bytes.
        let mut off = 0;
        while off < r::ENGINE {
            for size in [4u8, 8] {
                if let Some(v) = c.read(r::ENGINE + off, size) {
                    assert!(!v.to_le_bytes().windows(2).any(|w| w == [0xab, 0xab]), "offset {off:#x}");
                }
            }
            off += 4;
        }
        c.write(r::ENGINE + r::ENGINE_CONTROL, 4, u64::from(r::CTRL_RESET)).unwrap();
        assert_eq!(c.read(r::ENGINE + r::KEYS_LOADED, 4), Some(0));
    }
}
