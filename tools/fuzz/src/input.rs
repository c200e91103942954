//! Reading a fuzz input as a sequence of small decisions (which operation,
//! which length, which field value): structured harnesses draw from it
//! front to back, and an exhausted input reads as zeros, so every byte
//! string is a valid (if short) program.

/// A cursor over the input bytes.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    /// No bytes left.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        for b in &mut v {
            *b = self.u8();
        }
        v
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// A value in `0..n` (`n` > 0) from one or two bytes.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.u8()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// Exactly `N` bytes, zero padded.
    pub fn fixed<const N: usize>(&mut self) -> [u8; N] {
        self.array()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_zeros_past_the_end() {
        let mut i = Input::new(&[1, 2, 3, 4, 5]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.bytes(2), &[3, 4]);
        assert_eq!(i.u32(), 5, "exhausted bytes read as zero");
        assert!(i.is_empty());
        assert_eq!(i.bytes(10), &[] as &[u8]);
        assert_eq!(i.rest(), &[] as &[u8]);
        assert_eq!(Input::new(&[7, 1]).below(5), 2);
    }
}
