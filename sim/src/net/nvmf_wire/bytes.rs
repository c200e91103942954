//! Little-endian integers and fixed-width text fields inside byte buffers,
//! the building blocks of every NVMe and NVMe/TCP structure (all of them
//! are little endian; NVMe Base 2.0 §1.5 "Conventions").
//!
//! The readers take a slice and an offset and return `None` past its end,
//! so a parser checks lengths by construction and never panics.

/// `N` bytes at `off`, or `None` when `b` is too short.
pub fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    array_at(b, off).map(u16::from_le_bytes)
}

pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_le_bytes)
}

pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_le_bytes)
}

/// Writes `v` at `off` when it fits; returns whether it did.
pub fn put_u16(b: &mut [u8], off: usize, v: u16) -> bool {
    put(b, off, &v.to_le_bytes())
}

pub fn put_u32(b: &mut [u8], off: usize, v: u32) -> bool {
    put(b, off, &v.to_le_bytes())
}

pub fn put_u64(b: &mut [u8], off: usize, v: u64) -> bool {
    put(b, off, &v.to_le_bytes())
}

pub fn put(b: &mut [u8], off: usize, v: &[u8]) -> bool {
    match off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
        Some(dst) => {
            dst.copy_from_slice(v);
            true
        }
        None => false,
    }
}

/// Text of a fixed ASCII field without its trailing padding (spaces or
/// NULs), or `None` when it is not UTF-8.
pub fn padded_text(field: &[u8]) -> Option<&str> {
    let end = field.iter().rposition(|&c| c != b' ' && c != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&field[..end]).ok()
}

/// Text of a NUL-terminated field (an NQN): the bytes before the first
/// NUL; `None` when there is no NUL or the text is not UTF-8.
pub fn nul_terminated(field: &[u8]) -> Option<&str> {
    let n = field.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&field[..n]).ok()
}

/// Fills `field` with `text` followed by `pad` bytes; false (and nothing
/// written) when the text is longer than the field.
pub fn put_padded(field: &mut [u8], text: &[u8], pad: u8) -> bool {
    if text.len() > field.len() {
        return false;
    }
    field[..text.len()].copy_from_slice(text);
    field[text.len()..].fill(pad);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_and_never_overflow() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(u16_at(&b, 0), Some(0x0201));
        assert_eq!(u32_at(&b, 1), Some(0x0504_0302));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u64_at(&b, 0), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
        let mut w = [0u8; 4];
        assert!(put_u16(&mut w, 2, 0xbeef));
        assert_eq!(w, [0, 0, 0xef, 0xbe]);
        assert!(!put_u32(&mut w, 1, 1), "does not fit");
        assert!(!put(&mut w, usize::MAX, &[1]));
    }

    #[test]
    fn text_fields() {
        assert_eq!(padded_text(b"4420    "), Some("4420"));
        assert_eq!(padded_text(b"4420\0\0\0\0"), Some("4420"));
        assert_eq!(padded_text(b"    "), Some(""));
        assert_eq!(padded_text(&[0xff, b' ']), None);
        assert_eq!(nul_terminated(b"nqn.x\0junk"), Some("nqn.x"));
        assert_eq!(nul_terminated(b"nqn.x"), None, "no terminator");
        let mut f = [0xeeu8; 6];
        assert!(put_padded(&mut f, b"ab", b' '));
        assert_eq!(&f, b"ab    ");
        assert!(!put_padded(&mut f, b"toolong", 0));
        assert_eq!(&f, b"ab    ", "unchanged");
    }
}
