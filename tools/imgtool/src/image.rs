//! Signed images (layout: `dpu_hal::regs::image`): a 512-byte header,
//! the payload (the ELF's loadable segments' bytes, each 8-byte aligned),
//! the Ed25519 signature of the header. The header carries the payload's
//! SHA-256, so signing it covers the payload.

use crate::Error;
use dpu_hal::regs::image as h;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use object::elf::{FileHeader64, PF_W, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Object, ObjectSection};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What an image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bootloader,
    Firmware,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Bootloader => h::KIND_BOOTLOADER,
            Kind::Firmware => h::KIND_FIRMWARE,
        }
    }
    fn from_code(c: u8) -> Option<Kind> {
        match c {
            h::KIND_BOOTLOADER => Some(Kind::Bootloader),
            h::KIND_FIRMWARE => Some(Kind::Firmware),
            _ => None,
        }
    }
}

/// major.minor.revision+build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    pub build: u32,
}

impl std::str::FromStr for Version {
    type Err = String;
    /// "1.2.3" or "1.2.3+45".
    fn from_str(s: &str) -> Result<Version, String> {
        let bad = || format!("`{s}` is not a version (major.minor.revision[+build], e.g. 1.2.3)");
        let (v, build) = match s.split_once('+') {
            Some((v, b)) => (v, b.parse::<u32>().map_err(|_| bad())?),
            None => (s, 0),
        };
        let p: Vec<&str> = v.split('.').collect();
        let [a, b, c] = p.as_slice() else { return Err(bad()) };
        Ok(Version { major: a.parse().map_err(|_| bad())?, minor: b.parse().map_err(|_| bad())?, revision: c.parse().map_err(|_| bad())?, build })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.revision)?;
        if self.build != 0 {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// A loadable segment of an ELF.
#[derive(Clone, Debug)]
pub struct ElfSegment {
    pub addr: u64,
    pub data: Vec<u8>,
    pub mem_size: u64,
    pub writable: bool,
}

/// What the packer takes from an ELF.
#[derive(Clone, Debug)]
pub struct Elf {
    pub entry: u64,
    pub segments: Vec<ElfSegment>,
    /// Chip layout fingerprint from the `.dpu_chip` stamp.
    pub chip: u64,
}

/// Reads an RV64 ELF's entry, loadable segments and chip stamp.
pub fn read_elf(path: &Path) -> Result<Elf, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::bad(path, m);
    let hdr = FileHeader64::<object::Endianness>::parse(&*bytes).map_err(|e| bad(format!("not an ELF64 file ({e})")))?;
    let endian = hdr.endian().map_err(|e| bad(e.to_string()))?;
    if hdr.e_machine(endian) != object::elf::EM_RISCV {
        return Err(bad("not a RISC-V ELF".into()));
    }
    let mut segments = Vec::new();
    for ph in hdr.program_headers(endian, &*bytes).map_err(|e| bad(e.to_string()))? {
        if ph.p_type(endian) != PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let data = ph.data(endian, &*bytes).map_err(|_| bad("segment data outside the file".into()))?;
        segments.push(ElfSegment { addr: ph.p_paddr(endian), data: data.to_vec(), mem_size: ph.p_memsz(endian), writable: ph.p_flags(endian) & PF_W != 0 });
    }
    if segments.is_empty() {
        return Err(bad("no loadable segments".into()));
    }
    let file = object::File::parse(&*bytes).map_err(|e| bad(e.to_string()))?;
    let stamp = file.section_by_name(".dpu_chip").and_then(|s| s.data().ok()).filter(|d| d.len() >= 8);
    let Some(stamp) = stamp else {
        return Err(bad("no .dpu_chip section: not an image built for a DPU chip".into()));
    };
    let chip = u64::from_le_bytes(stamp[..8].try_into().expect("8 bytes"));
    Ok(Elf { entry: hdr.e_entry(endian), segments, chip })
}

/// What goes into a header besides the ELF.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub kind: Kind,
    pub version: Version,
    pub security_counter: u32,
}

/// Packs and signs: header || payload || pad to 8 || signature.
pub fn pack(elf: &Elf, meta: Meta, key: &SigningKey) -> Result<Vec<u8>, Error> {
    if elf.segments.len() > h::MAX_SEGMENTS {
        return Err(Error::Msg(format!("{} loadable segments; an image holds at most {}", elf.segments.len(), h::MAX_SEGMENTS)));
    }
    let mut payload = Vec::new();
    let mut table = Vec::new();
    for s in &elf.segments {
        let off = payload.len().next_multiple_of(8);
        payload.resize(off, 0);
        payload.extend_from_slice(&s.data);
        let mem = u32::try_from(s.mem_size).map_err(|_| Error::Msg(format!("segment at {:#x} is larger than 4 GiB", s.addr)))?;
        table.push((s.addr, off as u32, s.data.len() as u32, mem));
    }
    let payload_size = u32::try_from(payload.len()).map_err(|_| Error::Msg("payload larger than 4 GiB".into()))?;
    let mut hdr = [0u8; h::HEADER_SIZE];
    let put = |hdr: &mut [u8; h::HEADER_SIZE], at: usize, b: &[u8]| hdr[at..at + b.len()].copy_from_slice(b);
    put(&mut hdr, h::OFF_MAGIC, &h::MAGIC.to_le_bytes());
    put(&mut hdr, h::OFF_FORMAT, &h::FORMAT.to_le_bytes());
    put(&mut hdr, h::OFF_HEADER_SIZE, &(h::HEADER_SIZE as u16).to_le_bytes());
    hdr[h::OFF_KIND] = meta.kind.code();
    let v = meta.version;
    let mut vb = [v.major, v.minor, 0, 0, 0, 0, 0, 0];
    vb[2..4].copy_from_slice(&v.revision.to_le_bytes());
    vb[4..8].copy_from_slice(&v.build.to_le_bytes());
    put(&mut hdr, h::OFF_VERSION, &vb);
    put(&mut hdr, h::OFF_SECURITY_COUNTER, &meta.security_counter.to_le_bytes());
    put(&mut hdr, h::OFF_ENTRY, &elf.entry.to_le_bytes());
    put(&mut hdr, h::OFF_PAYLOAD_SIZE, &payload_size.to_le_bytes());
    put(&mut hdr, h::OFF_SEGMENTS, &(table.len() as u16).to_le_bytes());
    put(&mut hdr, h::OFF_CHIP, &elf.chip.to_le_bytes());
    put(&mut hdr, h::OFF_PAYLOAD_HASH, &Sha256::digest(&payload));
    put(&mut hdr, h::OFF_PUBLIC_KEY, &key.verifying_key().to_bytes());
    for (i, (load, off, file, mem)) in table.iter().enumerate() {
        let e = h::OFF_SEGMENT_TABLE + i * h::SEGMENT;
        put(&mut hdr, e + h::SEG_LOAD, &load.to_le_bytes());
        put(&mut hdr, e + h::SEG_OFFSET, &off.to_le_bytes());
        put(&mut hdr, e + h::SEG_FILE_SIZE, &file.to_le_bytes());
        put(&mut hdr, e + h::SEG_MEM_SIZE, &mem.to_le_bytes());
    }
    let sig = key.sign(&hdr);
    let mut out = hdr.to_vec();
    out.extend_from_slice(&payload);
    out.resize(h::HEADER_SIZE + payload.len().next_multiple_of(8), 0);
    out.extend_from_slice(&sig.to_bytes());
    Ok(out)
}

/// A parsed image header.
#[derive(Clone, Debug)]
pub struct Info {
    pub kind: Option<Kind>,
    pub version: Version,
    pub security_counter: u32,
    pub entry: u64,
    pub payload_size: u32,
    pub chip: u64,
    pub payload_hash: [u8; 32],
    pub public_key: [u8; 32],
    /// (load address, payload offset, file bytes, memory bytes).
    pub segments: Vec<(u64, u32, u32, u32)>,
    /// Bytes of the whole image.
    pub len: usize,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8"))
}

/// Parses an image's header (no signature check).
pub fn info(img: &[u8]) -> Result<Info, String> {
    if img.len() < h::HEADER_SIZE {
        return Err(format!("{} bytes: shorter than an image header", img.len()));
    }
    if u32_at(img, h::OFF_MAGIC) != h::MAGIC {
        return Err("no image header (bad magic)".into());
    }
    if u16_at(img, h::OFF_FORMAT) != h::FORMAT || usize::from(u16_at(img, h::OFF_HEADER_SIZE)) != h::HEADER_SIZE {
        return Err("unknown image format".into());
    }
    let payload_size = u32_at(img, h::OFF_PAYLOAD_SIZE);
    let n = usize::from(u16_at(img, h::OFF_SEGMENTS)).min(h::MAX_SEGMENTS);
    let segments = (0..n)
        .map(|i| {
            let e = h::OFF_SEGMENT_TABLE + i * h::SEGMENT;
            (u64_at(img, e + h::SEG_LOAD), u32_at(img, e + h::SEG_OFFSET), u32_at(img, e + h::SEG_FILE_SIZE), u32_at(img, e + h::SEG_MEM_SIZE))
        })
        .collect();
    let v = &img[h::OFF_VERSION..h::OFF_VERSION + 8];
    Ok(Info {
        kind: Kind::from_code(img[h::OFF_KIND]),
        version: Version { major: v[0], minor: v[1], revision: u16_at(v, 2), build: u32_at(v, 4) },
        security_counter: u32_at(img, h::OFF_SECURITY_COUNTER),
        entry: u64_at(img, h::OFF_ENTRY),
        payload_size,
        chip: u64_at(img, h::OFF_CHIP),
        payload_hash: img[h::OFF_PAYLOAD_HASH..h::OFF_PAYLOAD_HASH + 32].try_into().expect("32"),
        public_key: img[h::OFF_PUBLIC_KEY..h::OFF_PUBLIC_KEY + 32].try_into().expect("32"),
        segments,
        len: h::HEADER_SIZE + (payload_size as usize).next_multiple_of(8) + h::SIGNATURE_SIZE,
    })
}

/// Checks an image's payload hash and signature; `trusted`: the public
/// key it must be signed with.
pub fn verify(img: &[u8], trusted: &[u8; 32]) -> Result<Info, String> {
    let i = info(img)?;
    if img.len() < i.len {
        return Err(format!("truncated: {} bytes of {}", img.len(), i.len));
    }
    let payload = &img[h::HEADER_SIZE..h::HEADER_SIZE + i.payload_size as usize];
    if Sha256::digest(payload).as_slice() != i.payload_hash {
        return Err("payload hash mismatch (tampered payload)".into());
    }
    if &i.public_key != trusted {
        return Err("signed with another key".into());
    }
    let key = VerifyingKey::from_bytes(trusted).map_err(|_| "the trusted key is not a valid Ed25519 key".to_string())?;
    let sig = Signature::from_bytes(img[i.len - h::SIGNATURE_SIZE..i.len].try_into().expect("64"));
    key.verify_strict(&img[..h::HEADER_SIZE], &sig).map_err(|_| "bad signature".to_string())?;
    Ok(i)
}

/// The signature's offset in an image.
pub fn signature_offset(img: &[u8]) -> Option<usize> {
    info(img).ok().map(|i| i.len - h::SIGNATURE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf() -> Elf {
        Elf {
            entry: 0x4000_0000,
            segments: vec![
                ElfSegment { addr: 0x4000_0000, data: vec![0x13; 100], mem_size: 100, writable: false },
                ElfSegment { addr: 0x4000_1000, data: vec![7; 13], mem_size: 4096, writable: true },
            ],
            chip: 0x1234,
        }
    }

    #[test]
    fn packs_verifies_and_refuses_tampering() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let meta = Meta { kind: Kind::Firmware, version: "1.2.3+4".parse().unwrap(), security_counter: 5 };
        let img = pack(&elf(), meta, &key).unwrap();
        let pk = key.verifying_key().to_bytes();
        let i = verify(&img, &pk).unwrap();
        assert_eq!((i.kind, i.security_counter, i.entry, i.chip), (Some(Kind::Firmware), 5, 0x4000_0000, 0x1234));
        assert_eq!(i.version.to_string(), "1.2.3+4");
        assert_eq!(i.segments, vec![(0x4000_0000, 0, 100, 100), (0x4000_1000, 104, 13, 4096)]);
        assert_eq!(img.len(), 512 + 120 + 64);
        assert_eq!(&img[512 + 104..512 + 117], &[7; 13]);
        let mut bad = img.clone();
        bad[600] ^= 1;
        assert!(verify(&bad, &pk).unwrap_err().contains("payload"));
        let mut bad = img.clone();
        bad[h::OFF_SECURITY_COUNTER] = 9;
        assert!(verify(&bad, &pk).unwrap_err().contains("signature"));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(verify(&img, &other).unwrap_err().contains("another key"));
    }

    /// The firmware's verifier (ed25519-compact, `dpu-fwimage`) accepts
    /// what this packer (ed25519-dalek) signs, loads the payload where the
    /// segments say, and refuses it with another key hash.
    #[test]
    fn the_bootloaders_verifier_accepts_packed_images() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let img = pack(&elf(), Meta { kind: Kind::Firmware, version: Version::default(), security_counter: 2 }, &key).unwrap();
        let mut trust = dpu_fwimage::verify::Trust {
            key_hash: Sha256::digest(key.verifying_key().to_bytes()).into(),
            rollback: 2,
            kind: h::KIND_FIRMWARE,
            chip: 0x1234,
            max_len: 1 << 20,
            load_window: (0x4000_0000, 0x4400_0000),
        };
        let mut mem = std::collections::BTreeMap::new();
        let check = |trust: &dpu_fwimage::verify::Trust, mem: &mut std::collections::BTreeMap<u64, u8>| {
            dpu_fwimage::verify(
                trust,
                &mut |off, buf: &mut [u8]| -> Result<(), ()> {
                    buf.copy_from_slice(img.get(off as usize..off as usize + buf.len()).ok_or(())?);
                    Ok(())
                },
                &mut |hdr, off, bytes| {
                    hdr.place(off, bytes.len(), &mut |a, r| {
                        for (i, b) in bytes[r].iter().enumerate() {
                            mem.insert(a + i as u64, *b);
                        }
                    })
                },
            )
        };
        let hdr = check(&trust, &mut mem).unwrap();
        assert_eq!((hdr.security_counter, hdr.entry), (2, 0x4000_0000));
        assert_eq!((mem.get(&0x4000_0063), mem.get(&0x4000_1000), mem.get(&0x4000_100c), mem.get(&0x4000_100d)), (Some(&0x13), Some(&7), Some(&7), None));
        trust.key_hash[0] ^= 1;
        assert_eq!(check(&trust, &mut mem).unwrap_err(), dpu_fwimage::ImageError::UntrustedKey);
    }

    #[test]
    fn versions_parse_and_print() {
        assert_eq!("0.1.0".parse::<Version>().unwrap(), Version { major: 0, minor: 1, revision: 0, build: 0 });
        assert!("1.2".parse::<Version>().is_err());
        assert!("1.2.x".parse::<Version>().is_err());
        assert!("256.0.0".parse::<Version>().is_err());
    }
}
