//! Ed25519 signing keys.
//!
//! A key file holds the 32-byte secret seed (RFC 8032 §5.1.5) as 64 hex
//! digits on one line, after optional `#` comment lines. The development
//! key is generated from the OS random source the first time it is needed
//! (`target/keys/dev-signing-key`, mode 0600; `target/` is never
//! committed); a production key is a file the operator keeps elsewhere and
//! names explicitly (`--key`, or `DPU_SIGNING_KEY`): it is never created.

use crate::Error;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The environment variable naming a production key file.
pub const KEY_ENV: &str = "DPU_SIGNING_KEY";

/// A signing key and where it came from.
pub struct Key {
    pub signing: SigningKey,
    pub path: PathBuf,
    /// Generated just now (the development key's first use).
    pub generated: bool,
}

impl Key {
    /// The 32-byte public key.
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// SHA-256 of the public key: what the OTP fuses hold.
    pub fn public_hash(&self) -> [u8; 32] {
        Sha256::digest(self.public()).into()
    }
}

/// The development key's path under a workspace's target directory.
pub fn dev_key_path(target_dir: &Path) -> PathBuf {
    target_dir.join("keys/dev-signing-key")
}

/// Reads a key file.
pub fn load(path: &Path) -> Result<Key, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let hex: String = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::bad(path, "not a signing key: expected 64 hex digits (a 32-byte Ed25519 seed)"));
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex checked");
    }
    Ok(Key { signing: SigningKey::from_bytes(&seed), path: path.to_path_buf(), generated: false })
}

/// Writes a new random key to `path` (which must not exist).
pub fn generate(path: &Path, comment: &str) -> Result<Key, Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::bad(path, format!("no random source for a new key: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("# {comment}\n{hex}\n");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(path, e))?;
    Ok(Key { signing: SigningKey::from_bytes(&seed), path: path.to_path_buf(), generated: true })
}

/// The key to sign with: `explicit` (or `$DPU_SIGNING_KEY`) if given, it
/// must exist; else the development key, generated on first use.
pub fn select(explicit: Option<&Path>, target_dir: &Path) -> Result<Key, Error> {
    let from_env = std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    match explicit.map(Path::to_path_buf).or(from_env) {
        Some(p) => load(&p),
        None => {
            let p = dev_key_path(target_dir);
            if p.exists() {
                load(&p)
            } else {
                generate(&p, "DPU development signing key (generated on first use; do not ship cards trusting it)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dpu-imgtool-key-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_generated_key_loads_back_and_is_private() {
        let d = tmp("gen");
        let p = d.join("k");
        let k = generate(&p, "test").unwrap();
        assert!(k.generated);
        let back = load(&p).unwrap();
        assert_eq!(back.public(), k.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(generate(&p, "again").is_err(), "an existing key is never overwritten");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_dev_key_is_made_once_and_a_missing_production_key_is_an_error() {
        let d = tmp("select");
        let a = select(None, &d).unwrap();
        let b = select(None, &d).unwrap();
        assert!(a.generated && !b.generated);
        assert_eq!(a.public(), b.public());
        let e = select(Some(&d.join("prod.key")), &d).err().expect("missing production key");
        assert!(e.to_string().contains("prod.key"), "{e}");
        std::fs::write(d.join("bad.key"), "xyz\n").unwrap();
        let e = load(&d.join("bad.key")).err().expect("garbage");
        assert!(e.to_string().contains("64 hex digits"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
