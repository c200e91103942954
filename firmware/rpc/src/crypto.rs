//! The parameters of SPDK's crypto methods as the card takes them
//! (`scripts/rpc.py accel_crypto_key_create` and `bdev_crypto_create` in
//! SPDK):
//!
//! * `accel_crypto_key_create`: `cipher` ("AES_XTS", any case: the
//!   engines' only data-at-rest cipher), `name`, `key` and `key2` (hex
//!   strings of 32 bytes each: AES-256-XTS's data and tweak keys, IEEE
//!   1619-2018 §5.1; equal halves are refused, as SPDK and the standard's
//!   key-separation requirement ask), `tweak_mode` (optional,
//!   "SIMPLE_LBA": the tweak is the LBA, the only mode the engines do).
//! * `bdev_crypto_create`: `base_bdev_name`, `name`, `key_name`.
//!
//! Any other parameter, a missing one or a wrong type is -32602 naming
//! it. What depends on the card's state (names taken, the base, the key)
//! the caller checks. The key bytes are decoded into a buffer the caller
//! wipes; no error message ever quotes them.

use crate::params::Params;
use crate::RpcError;

/// Longest key or crypto block device name.
pub const NAME_MAX: usize = 31;
/// Bytes of each AES-256-XTS key half.
pub const XTS_HALF: usize = 32;

/// Where the parsed strings go; [`KeyBuffers::wipe`] clears the key text
/// and bytes.
pub struct KeyBuffers {
    name: [u8; NAME_MAX + 1],
    text: [u8; 2 * XTS_HALF + 1],
    /// Key then Key2: what the engines load as one XTS key.
    pub key: [u8; 2 * XTS_HALF],
}

impl KeyBuffers {
    pub const fn new() -> KeyBuffers {
        KeyBuffers { name: [0; NAME_MAX + 1], text: [0; 2 * XTS_HALF + 1], key: [0; 2 * XTS_HALF] }
    }

    /// Clears the key (and its hex text).
    pub fn wipe(&mut self) {
        self.text.fill(0);
        self.key.fill(0);
        // Keep the stores: the buffers may not be read again.
        core::hint::black_box(&mut *self);
    }
}

impl Default for KeyBuffers {
    fn default() -> Self {
        KeyBuffers::new()
    }
}

/// A checked `accel_crypto_key_create` request; the key is in the
/// buffers' `key`.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyCreate<'b> {
    pub name: &'b str,
}

impl<'b> KeyCreate<'b> {
    pub fn parse(p: &Params<'_>, b: &'b mut KeyBuffers) -> Result<KeyCreate<'b>, RpcError> {
        p.only(&["cipher", "name", "key", "key2", "tweak_mode"])?;
        let mut cb = [0u8; 16];
        let cipher = Params::required("cipher", p.str("cipher", &mut cb).map_err(|_| wrong_cipher())?)?;
        if !cipher.eq_ignore_ascii_case("AES_XTS") {
            return Err(wrong_cipher());
        }
        let mut tb = [0u8; 24];
        if let Some(t) = p.str("tweak_mode", &mut tb).map_err(|_| wrong_tweak())? {
            if !t.eq_ignore_ascii_case("SIMPLE_LBA") {
                return Err(wrong_tweak());
            }
        }
        for (field, at) in [("key", 0), ("key2", XTS_HALF)] {
            let text = Params::required(field, p.str(field, &mut b.text).map_err(|_| wrong_key(field))?)?;
            let ok = decode_hex(text, &mut b.key[at..at + XTS_HALF]);
            b.text.fill(0);
            if !ok {
                b.key.fill(0);
                return Err(wrong_key(field));
            }
        }
        if b.key[..XTS_HALF] == b.key[XTS_HALF..] {
            b.key.fill(0);
            return Err(RpcError::invalid_params(format_args!("invalid params: `key2` must differ from `key` (AES-XTS, IEEE 1619)")));
        }
        let name = Params::required("name", p.str("name", &mut b.name)?)?;
        check_name("name", name)?;
        Ok(KeyCreate { name })
    }
}

/// A checked `bdev_crypto_create` request.
#[derive(Debug, PartialEq, Eq)]
pub struct CryptoCreate<'b> {
    pub base_bdev_name: &'b str,
    pub name: &'b str,
    pub key_name: &'b str,
}

/// Where [`CryptoCreate`]'s strings are unescaped to.
pub struct Buffers {
    base: [u8; NAME_MAX + 1],
    name: [u8; NAME_MAX + 1],
    key: [u8; NAME_MAX + 1],
}

impl Buffers {
    pub const fn new() -> Buffers {
        Buffers { base: [0; NAME_MAX + 1], name: [0; NAME_MAX + 1], key: [0; NAME_MAX + 1] }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

impl<'b> CryptoCreate<'b> {
    pub fn parse(p: &Params<'_>, b: &'b mut Buffers) -> Result<CryptoCreate<'b>, RpcError> {
        p.only(&["base_bdev_name", "name", "key_name"])?;
        let base_bdev_name = Params::required("base_bdev_name", p.str("base_bdev_name", &mut b.base)?)?;
        check_name("base_bdev_name", base_bdev_name)?;
        let name = Params::required("name", p.str("name", &mut b.name)?)?;
        check_name("name", name)?;
        let key_name = Params::required("key_name", p.str("key_name", &mut b.key)?)?;
        check_name("key_name", key_name)?;
        Ok(CryptoCreate { base_bdev_name, name, key_name })
    }
}

fn wrong_cipher() -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `cipher` must be \"AES_XTS\" (the only data-at-rest cipher)"))
}

fn wrong_tweak() -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `tweak_mode` must be \"SIMPLE_LBA\" (the tweak is the LBA)"))
}

fn wrong_key(field: &str) -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `{field}` must be a string of {} hex digits (32 bytes)", 2 * XTS_HALF))
}

/// A name of 1..=[`NAME_MAX`] letters, digits, `_`, `-` or `.`.
pub fn check_name(field: &str, n: &str) -> Result<(), RpcError> {
    if n.is_empty() || n.len() > NAME_MAX || !n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `{field}` must be 1..={NAME_MAX} letters, digits, `_`, `-` or `.`")));
    }
    Ok(())
}

/// `text` as hex (either case) into exactly `out.len()` bytes.
pub fn decode_hex(text: &str, out: &mut [u8]) -> bool {
    let t = text.as_bytes();
    if t.len() != 2 * out.len() {
        return false;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    for (o, pair) in out.iter_mut().zip(t.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}
