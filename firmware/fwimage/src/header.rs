//! The image header (layout: `dpu_hal::regs::image`).

use dpu_hal::regs::image as h;

/// Image version (MCUboot's `ih_ver`): major.minor.revision+build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    pub build: u32,
}

impl Version {
    pub fn from_bytes(b: &[u8; 8]) -> Version {
        Version { major: b[0], minor: b[1], revision: u16::from_le_bytes([b[2], b[3]]), build: u32::from_le_bytes([b[4], b[5], b[6], b[7]]) }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.major;
        b[1] = self.minor;
        b[2..4].copy_from_slice(&self.revision.to_le_bytes());
        b[4..8].copy_from_slice(&self.build.to_le_bytes());
        b
    }

    /// "major.minor.revision" in ASCII, space padded to 8 bytes (NVMe's
    /// Firmware Revision fields; the build number is left out).
    pub fn revision_string(self) -> [u8; 8] {
        let mut out = [b' '; 8];
        let mut n = 0;
        let parts = [u32::from(self.major), u32::from(self.minor), u32::from(self.revision)];
        for (i, v) in parts.into_iter().enumerate() {
            if i > 0 && n < 8 {
                out[n] = b'.';
                n += 1;
            }
            let mut digits = [0u8; 10];
            let (mut k, mut v) = (0, v);
            loop {
                digits[k] = b'0' + (v % 10) as u8;
                k += 1;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            while k > 0 && n < 8 {
                k -= 1;
                out[n] = digits[k];
                n += 1;
            }
        }
        out
    }
}

/// A load segment: `file_size` payload bytes from `offset` go to `load`,
/// then zeros up to `mem_size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub load: u64,
    pub offset: u32,
    pub file_size: u32,
    pub mem_size: u32,
}

/// Why bytes are not an image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeaderError {
    /// Erased flash: no image.
    Blank,
    BadMagic,
    BadFormat,
    /// Segment table out of bounds (count, offsets, sizes, overlap with
    /// the payload's end) or an image larger than its slot.
    BadLayout,
}

/// A parsed header (the raw bytes are kept: they are signed).
#[derive(Clone, Debug)]
pub struct Header {
    pub raw: [u8; h::HEADER_SIZE],
    pub kind: u8,
    pub version: Version,
    pub security_counter: u32,
    pub entry: u64,
    pub payload_size: u32,
    pub chip: u64,
    pub payload_hash: [u8; 32],
    pub public_key: [u8; 32],
    pub segments: [Segment; h::MAX_SEGMENTS],
    pub nsegments: usize,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32_at(b, o)) | u64::from(u32_at(b, o + 4)) << 32
}

/// Total bytes of an image with `payload` payload bytes (header, payload
/// padded to 8, signature).
pub const fn image_len(payload: u32) -> usize {
    h::HEADER_SIZE + (payload as usize).next_multiple_of(8) + h::SIGNATURE_SIZE
}

impl Header {
    /// Parses a header; the whole image must fit `max_len` bytes.
    pub fn parse(raw: &[u8; h::HEADER_SIZE], max_len: usize) -> Result<Header, HeaderError> {
        if raw.iter().all(|&b| b == 0xff) {
            return Err(HeaderError::Blank);
        }
        if u32_at(raw, h::OFF_MAGIC) != h::MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if u16_at(raw, h::OFF_FORMAT) != h::FORMAT || usize::from(u16_at(raw, h::OFF_HEADER_SIZE)) != h::HEADER_SIZE {
            return Err(HeaderError::BadFormat);
        }
        let payload_size = u32_at(raw, h::OFF_PAYLOAD_SIZE);
        let nsegments = usize::from(u16_at(raw, h::OFF_SEGMENTS));
        if nsegments == 0 || nsegments > h::MAX_SEGMENTS || image_len(payload_size) > max_len {
            return Err(HeaderError::BadLayout);
        }
        let mut segments = [Segment::default(); h::MAX_SEGMENTS];
        for (i, s) in segments.iter_mut().enumerate().take(nsegments) {
            let o = h::OFF_SEGMENT_TABLE + i * h::SEGMENT;
            *s = Segment {
                load: u64_at(raw, o + h::SEG_LOAD),
                offset: u32_at(raw, o + h::SEG_OFFSET),
                file_size: u32_at(raw, o + h::SEG_FILE_SIZE),
                mem_size: u32_at(raw, o + h::SEG_MEM_SIZE),
            };
            if u64::from(s.offset) + u64::from(s.file_size) > u64::from(payload_size) || s.file_size > s.mem_size {
                return Err(HeaderError::BadLayout);
            }
        }
        let mut payload_hash = [0u8; 32];
        payload_hash.copy_from_slice(&raw[h::OFF_PAYLOAD_HASH..h::OFF_PAYLOAD_HASH + 32]);
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&raw[h::OFF_PUBLIC_KEY..h::OFF_PUBLIC_KEY + 32]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&raw[h::OFF_VERSION..h::OFF_VERSION + 8]);
        Ok(Header {
            raw: *raw,
            kind: raw[h::OFF_KIND],
            version: Version::from_bytes(&v),
            security_counter: u32_at(raw, h::OFF_SECURITY_COUNTER),
            entry: u64_at(raw, h::OFF_ENTRY),
            payload_size,
            chip: u64_at(raw, h::OFF_CHIP),
            payload_hash,
            public_key,
            segments,
            nsegments,
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.nsegments]
    }

    /// Bytes of the whole image.
    pub fn image_len(&self) -> usize {
        image_len(self.payload_size)
    }

    /// Where payload bytes `[off, off + len)` go: calls `put(address,
    /// range within those bytes)` for each segment they overlap.
    pub fn place(&self, off: u32, len: usize, put: &mut dyn FnMut(u64, core::ops::Range<usize>)) {
        let (start, end) = (u64::from(off), u64::from(off) + len as u64);
        for s in self.segments() {
            let (s0, s1) = (u64::from(s.offset), u64::from(s.offset) + u64::from(s.file_size));
            let (a, b) = (start.max(s0), end.min(s1));
            if a < b {
                put(s.load + (a - s0), (a - start) as usize..(b - start) as usize);
            }
        }
    }

    /// Where the signature starts.
    pub fn signature_offset(&self) -> usize {
        self.image_len() - h::SIGNATURE_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_strings() {
        let v = Version { major: 2, minor: 10, revision: 3, build: 99 };
        assert_eq!(&v.revision_string(), b"2.10.3  ");
        assert_eq!(&Version { major: 1, minor: 0, revision: 0, build: 0 }.revision_string(), b"1.0.0   ");
        assert_eq!(Version::from_bytes(&v.to_bytes()), v);
        assert!(Version { major: 1, minor: 2, revision: 0, build: 0 } < Version { major: 1, minor: 10, revision: 0, build: 0 });
    }

    #[test]
    fn payload_bytes_go_to_their_segments() {
        let mut raw = [0u8; 512];
        raw[h::OFF_MAGIC..h::OFF_MAGIC + 4].copy_from_slice(&h::MAGIC.to_le_bytes());
        raw[h::OFF_FORMAT..h::OFF_FORMAT + 2].copy_from_slice(&h::FORMAT.to_le_bytes());
        raw[h::OFF_HEADER_SIZE..h::OFF_HEADER_SIZE + 2].copy_from_slice(&512u16.to_le_bytes());
        raw[h::OFF_PAYLOAD_SIZE..h::OFF_PAYLOAD_SIZE + 4].copy_from_slice(&300u32.to_le_bytes());
        raw[h::OFF_SEGMENTS..h::OFF_SEGMENTS + 2].copy_from_slice(&2u16.to_le_bytes());
        for (i, (load, off, len)) in [(0x1000u64, 0u32, 100u32), (0x8000, 104, 196)].into_iter().enumerate() {
            let e = h::OFF_SEGMENT_TABLE + i * h::SEGMENT;
            raw[e..e + 8].copy_from_slice(&load.to_le_bytes());
            raw[e + 8..e + 12].copy_from_slice(&off.to_le_bytes());
            raw[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
            raw[e + 16..e + 20].copy_from_slice(&len.to_le_bytes());
        }
        let hdr = Header::parse(&raw, 1 << 20).unwrap();
        let mut got = [(0u64, 0usize, 0usize); 2];
        let mut n = 0;
        hdr.place(90, 50, &mut |a, r| {
            got[n] = (a, r.start, r.end);
            n += 1;
        });
        // Bytes 90..100 end segment 0; 100..104 are padding; 104..140 start segment 1.
        assert_eq!((n, got), (2, [(0x1000 + 90, 0, 10), (0x8000, 14, 50)]));
    }

    #[test]
    fn blank_and_garbage_headers() {
        assert_eq!(Header::parse(&[0xff; 512], 1 << 20).unwrap_err(), HeaderError::Blank);
        assert_eq!(Header::parse(&[0; 512], 1 << 20).unwrap_err(), HeaderError::BadMagic);
    }
}
