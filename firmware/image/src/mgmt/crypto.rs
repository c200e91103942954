//! Crypto keys and crypto block devices made through the management API
//! (SPDK `accel_crypto_key_create`, `accel_crypto_keys_get`,
//! `accel_crypto_key_destroy`, `bdev_crypto_create`,
//! `bdev_crypto_delete`).
//!
//! A key arrives in the clear (hex, AES-256-XTS: `key` and `key2`); the
//! crypto engines wrap it at once with the card's device key (RFC 3394,
//! `OP_KEY_WRAP`, the key-encryption key in the OTP fuses) and only the
//! wrapped blob is kept, listed (by name) and saved to flash; the clear
//! key is wiped from the server's buffers and never logged or answered.
//! A crypto device takes a free key slot of the engines (beyond the boot
//! configuration's) and the engines unwrap its key into that slot
//! (`OP_KEY_UNWRAP`): the key never passes through the cores again. The
//! device has its base's blocks; mapped with `dpu_ns_attach`, the
//! namespace carries the slot, and every data-plane core's crypto
//! device encrypts its writes and decrypts its reads
//! (`crate::block::crypto`).
//!
//! The server's hart spins on the engines for these (setup) operations,
//! as the admin service does for the boot keys.

use super::live::Live;
use crate::bootcfg;
use dpu_config::{CryptoKey, CRYPTO_KEY_NAME_MAX, MAX_CRYPTO_KEYS, WRAPPED_KEY_LEN};
use dpu_hal::crypto::Engines;
use dpu_hal::memory_map::CRYPTO_KEY_SLOTS;
use dpu_hal::regs::{accel as st, crypto as cr};
use dpu_rpc::crypto::{Buffers, CryptoCreate, KeyBuffers, KeyCreate};
use dpu_rpc::{code, Params, RpcError, Writer};

const _: () = assert!(CRYPTO_KEY_NAME_MAX == dpu_rpc::crypto::NAME_MAX && WRAPPED_KEY_LEN == 2 * dpu_rpc::crypto::XTS_HALF + cr::WRAP_OVERHEAD);

/// A key, wrapped with the device key.
#[derive(Clone, Copy)]
struct Key {
    name: super::Name<CRYPTO_KEY_NAME_MAX>,
    wrapped: [u8; WRAPPED_KEY_LEN],
}

impl Key {
    fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// The server's queue on every engine and its scratch memory (DDR).
struct Eng {
    eng: Engines,
    scratch: usize,
}

/// Bytes of scratch: a key, its wrapped blob (see `Engines::wrap_key`).
const SCRATCH: usize = 2 * 64 + 8 + 64;

pub struct Keys {
    keys: [Option<Key>; MAX_CRYPTO_KEYS],
    eng: Option<Eng>,
}

impl Keys {
    pub fn new() -> Keys {
        Keys { keys: [None; MAX_CRYPTO_KEYS], eng: None }
    }

    /// The server's engine queues, started at first use.
    fn engines(&mut self) -> Result<&mut Eng, RpcError> {
        if self.eng.is_none() {
            let (Some(rings), Some(scratch)) = (dpu_rt::alloc::ddr(Engines::memory(2) as u64, 64), dpu_rt::alloc::ddr(SCRATCH as u64, 64)) else {
                return Err(RpcError::new(code::NO_MEMORY, "out of memory: no room for the crypto engines' queues"));
            };
            let mut eng = Engines::NONE;
            if !eng.start(crate::net::NET_HART, rings as usize, 2) {
                return Err(RpcError::new(code::INTERNAL_ERROR, "internal error: the crypto engines refused the management queue"));
            }
            self.eng = Some(Eng { eng, scratch: scratch as usize });
        }
        self.eng.as_mut().ok_or_else(|| RpcError::new(code::INTERNAL_ERROR, "internal error: no crypto engine queue"))
    }

    fn find(&self, name: &str) -> Option<&Key> {
        self.keys.iter().flatten().find(|k| k.name() == name)
    }

    /// Keeps key `name`, wrapped (from flash at boot, or just wrapped).
    pub fn add(&mut self, name: &str, wrapped: &[u8]) -> Result<(), RpcError> {
        if self.find(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a crypto key named `{name}` exists")));
        }
        if wrapped.len() != WRAPPED_KEY_LEN || name.is_empty() || name.len() > CRYPTO_KEY_NAME_MAX {
            return Err(RpcError::new(code::INTERNAL_ERROR, "internal error: a malformed wrapped key"));
        }
        let slot = self.keys.iter().position(|k| k.is_none()).ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_CRYPTO_KEYS} crypto keys")))?;
        let mut k = Key { name: super::Name::new(name), wrapped: [0; WRAPPED_KEY_LEN] };
        k.wrapped.copy_from_slice(wrapped);
        self.keys[slot] = Some(k);
        Ok(())
    }

    /// SPDK `accel_crypto_key_create` {cipher, name, key, key2,
    /// tweak_mode}: the engines wrap the key; only the blob is kept.
    pub fn create(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        let mut b = KeyBuffers::new();
        let r = self.create_with(p, &mut b);
        b.wipe();
        r?;
        w.bool(true);
        Ok(())
    }

    fn create_with(&mut self, p: &Params<'_>, b: &mut KeyBuffers) -> Result<(), RpcError> {
        let k = KeyCreate::parse(p, b)?;
        let name = super::Name::<CRYPTO_KEY_NAME_MAX>::new(k.name);
        let name = name.as_str();
        if self.find(name).is_some() {
            return Err(RpcError::fmt(code::EXISTS, format_args!("exists: a crypto key named `{name}` exists")));
        }
        if self.keys.iter().all(|k| k.is_some()) {
            return Err(RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: at most {MAX_CRYPTO_KEYS} crypto keys")));
        }
        let e = self.engines()?;
        let mut wrapped = [0u8; WRAPPED_KEY_LEN];
        e.eng.wrap_key(cr::KEY_XTS_AES256, &b.key, &mut wrapped, e.scratch).map_err(|s| match s {
            st::ST_NO_DEVICE_KEY => RpcError::new(code::NO_SUCH_DEVICE, "No such device: this card has no device key in its OTP fuses to wrap keys with"),
            _ => RpcError::fmt(code::INTERNAL_ERROR, format_args!("internal error: the crypto engine refused to wrap the key (status {s})")),
        })?;
        self.add(name, &wrapped)?;
        defmt::info!("mgmt: crypto key {=str} (AES_XTS) created, kept wrapped with the device key", name);
        Ok(())
    }

    /// SPDK `accel_crypto_keys_get` {key_name?}: name and cipher of each
    /// key (never the key).
    pub fn list(&self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["key_name"])?;
        let mut nb = [0u8; CRYPTO_KEY_NAME_MAX + 1];
        let only = p.str("key_name", &mut nb)?;
        if let Some(n) = only.filter(|n| self.find(n).is_none()) {
            return Err(super::methods::no_device("crypto key", n));
        }
        w.begin_array();
        for k in self.keys.iter().flatten().filter(|k| only.is_none_or(|n| n == k.name())) {
            w.begin_object();
            w.field_str("name", k.name());
            w.field_str("cipher", "AES_XTS");
            w.field_str("tweak_mode", "SIMPLE_LBA");
            w.end_object();
        }
        w.end_array();
        Ok(())
    }

    /// SPDK `accel_crypto_key_destroy` {key_name}: refused while a crypto
    /// device uses the key.
    pub fn destroy(&mut self, p: &Params<'_>, w: &mut Writer<'_>, live: &Live) -> Result<(), RpcError> {
        p.only(&["key_name"])?;
        let mut nb = [0u8; CRYPTO_KEY_NAME_MAX + 1];
        let name = Params::required("key_name", p.str("key_name", &mut nb)?)?;
        let i = self.keys.iter().position(|k| k.is_some_and(|k| k.name() == name)).ok_or_else(|| super::methods::no_device("crypto key", name))?;
        if let Some((user, _)) = live.cryptos().find(|(_, c)| c.key() == name) {
            return Err(RpcError::fmt(code::BUSY, format_args!("busy: crypto device `{}` uses key `{name}`; delete it first", user.name())));
        }
        if let Some(k) = self.keys[i].as_mut() {
            k.wrapped.fill(0);
        }
        self.keys[i] = None;
        defmt::info!("mgmt: crypto key {=str} destroyed", name);
        w.bool(true);
        Ok(())
    }

    /// SPDK `bdev_crypto_create` {base_bdev_name, name, key_name}: the
    /// name of the new device.
    pub fn bdev_create(&mut self, p: &Params<'_>, w: &mut Writer<'_>, live: &mut Live) -> Result<(), RpcError> {
        let mut b = Buffers::new();
        let c = CryptoCreate::parse(p, &mut b)?;
        self.make(c.name, c.base_bdev_name, c.key_name, live)?;
        w.string(c.name);
        Ok(())
    }

    /// Makes crypto device `name` on `base` with key `key`: a free key
    /// slot, the key unwrapped into it on every engine.
    pub fn make(&mut self, name: &str, base: &str, key: &str, live: &mut Live) -> Result<(), RpcError> {
        live.crypto_check(name, base)?;
        let wrapped = self.find(key).map(|k| k.wrapped).ok_or_else(|| super::methods::no_device("crypto key", key))?;
        // Slots past the boot configuration's, not taken by another device.
        let first = bootcfg::key_count() as u16;
        let last = CRYPTO_KEY_SLOTS.min(64) as u16;
        let slot = (first..last)
            .find(|&s| !live.cryptos().any(|(_, c)| c.slot == s))
            .ok_or_else(|| RpcError::fmt(code::NO_MEMORY, format_args!("out of memory: no free key slot on the crypto engines ({last} slots, {first} for the boot configuration)")))?;
        let e = self.engines()?;
        e.eng.unwrap_key(slot, cr::KEY_XTS_AES256, &wrapped, e.scratch).map_err(|s| match s {
            st::ST_AUTH_FAILED => RpcError::fmt(code::INTERNAL_ERROR, format_args!("internal error: key `{key}` does not unwrap with this card's device key")),
            st::ST_NO_DEVICE_KEY => RpcError::new(code::NO_SUCH_DEVICE, "No such device: this card has no device key in its OTP fuses"),
            _ => RpcError::fmt(code::INTERNAL_ERROR, format_args!("internal error: the crypto engines refused key `{key}` (status {s})")),
        })?;
        if let Err(err) = live.crypto_add(name, base, key, slot) {
            let _ = e.eng.clear_key(slot);
            return Err(err);
        }
        defmt::info!("mgmt: crypto device {=str} on {=str}, key {=str} in key slot {=u16}", name, base, key, slot);
        Ok(())
    }

    /// SPDK `bdev_crypto_delete` {name}: refused while mapped; its key
    /// slot is cleared on every engine.
    pub fn bdev_delete(&mut self, p: &Params<'_>, w: &mut Writer<'_>, live: &mut Live) -> Result<(), RpcError> {
        p.only(&["name"])?;
        let mut nb = [0u8; CRYPTO_KEY_NAME_MAX + 1];
        let name = Params::required("name", p.str("name", &mut nb)?)?;
        let slot = live.crypto_remove(name)?;
        if let Ok(e) = self.engines() {
            if e.eng.clear_key(slot).is_err() {
                defmt::warn!("mgmt: key slot {=u16} not cleared", slot);
            }
        }
        defmt::info!("mgmt: crypto device {=str} deleted (key slot {=u16} cleared)", name, slot);
        w.bool(true);
        Ok(())
    }

    /// What the configuration in flash keeps: the wrapped keys.
    pub fn snapshot(&self, out: &mut heapless::Vec<CryptoKey, MAX_CRYPTO_KEYS>) {
        out.clear();
        for k in self.keys.iter().flatten() {
            let _ = out.push(CryptoKey { name: heapless::String::try_from(k.name()).unwrap_or_default(), wrapped: heapless::Vec::from_slice(&k.wrapped).unwrap_or_default() });
        }
    }
}
