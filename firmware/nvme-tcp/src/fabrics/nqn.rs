//! NVMe Qualified Names in fixed 256-byte fields (NVMe Base 2.0 §4.5):
//! UTF-8, at most 223 bytes, NUL terminated, NUL padded.

use super::FabricsError;
use crate::consts::{NQN_FIELD_LEN, NQN_MAX_LEN};

/// Checks an NQN can be written into a field: at most 223 bytes and no
/// embedded NUL. (Whether it is well formed, e.g. starts with "nqn.", is
/// the caller's policy.)
pub fn check_nqn(nqn: &str) -> Result<(), FabricsError> {
    if nqn.len() > NQN_MAX_LEN || nqn.as_bytes().contains(&0) {
        return Err(FabricsError::BadNqn);
    }
    Ok(())
}

/// Writes `nqn` NUL-padded into a 256-byte field.
pub(crate) fn write_nqn(field: &mut [u8], nqn: &str) -> Result<(), FabricsError> {
    check_nqn(nqn)?;
    let f = &mut field[..NQN_FIELD_LEN];
    f.fill(0);
    f[..nqn.len()].copy_from_slice(nqn.as_bytes());
    Ok(())
}

/// Reads a NUL-terminated NQN from a 256-byte field.
pub(crate) fn read_nqn(field: &[u8]) -> Result<&str, FabricsError> {
    let f = &field[..NQN_FIELD_LEN];
    let n = f.iter().position(|&c| c == 0).ok_or(FabricsError::BadNqn)?;
    if n > NQN_MAX_LEN {
        return Err(FabricsError::BadNqn);
    }
    core::str::from_utf8(&f[..n]).map_err(|_| FabricsError::BadNqn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let mut f = [0xffu8; 256];
        let long = core::str::from_utf8(&[b'a'; 224]).unwrap();
        assert_eq!(write_nqn(&mut f, long), Err(FabricsError::BadNqn));
        assert_eq!(write_nqn(&mut f, "a\0b"), Err(FabricsError::BadNqn));
        write_nqn(&mut f, &long[..223]).unwrap();
        assert_eq!(read_nqn(&f).unwrap().len(), 223);
        assert!(f[223..].iter().all(|&b| b == 0));
        // No terminator anywhere / terminator too late / bad UTF-8.
        assert_eq!(read_nqn(&[b'x'; 256]), Err(FabricsError::BadNqn));
        let mut g = [b'x'; 256];
        g[240] = 0;
        assert_eq!(read_nqn(&g), Err(FabricsError::BadNqn));
        g[0] = 0xff;
        g[1] = 0;
        assert_eq!(read_nqn(&g), Err(FabricsError::BadNqn));
    }
}
