//! What went over the wire, checked from the simulator's pcap files and
//! nothing else: every TCP stream of a capture is reassembled (by
//! sequence number, so retransmissions and segments split or merged by
//! TSO/LRO land where they belong) and searched for sectors of the host
//! model's verify pattern in the clear. A sector of the pattern starts
//! with the magic "DPEV" and ends with the FNV-1a checksum of the rest
//! (the host model's `fill_sector`, restated here so that this check does
//! not use the simulator's code), so a hit is a whole plaintext sector of
//! that size, wherever the NVMe/TCP PDUs put it in the stream.

use pcap_file::pcap::PcapReader;
use std::collections::BTreeMap;
use std::path::Path;

/// Magic of a pattern sector's first 4 bytes (little-endian "DPEV").
const MAGIC: [u8; 4] = 0x5645_5044u32.to_le_bytes();

fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Whether `s` is one whole pattern sector.
fn is_pattern_sector(s: &[u8]) -> bool {
    let n = s.len();
    n >= 24 && s[..4] == MAGIC && fnv32(&s[..n - 4]).to_le_bytes() == s[n - 4..]
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub frames: u64,
    /// TCP streams (one per direction of a connection) with payload.
    pub streams: usize,
    pub payload_bytes: u64,
    /// Plaintext pattern sectors found, by sector size.
    pub plaintext: BTreeMap<usize, u64>,
}

/// One direction of a TCP connection: (source, source port, destination,
/// destination port).
type Flow = ([u8; 4], u16, [u8; 4], u16);

/// Scans the captures in `paths` for plaintext sectors of each size in `sizes`.
pub fn scan(paths: &[&Path], sizes: &[usize]) -> Result<Scan, String> {
    let mut out = Scan::default();
    // Per flow: the first sequence number seen (SYN: + 1) and the segments.
    let mut flows: BTreeMap<Flow, (u32, Vec<(u32, Vec<u8>)>)> = BTreeMap::new();
    for p in paths {
        let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut r = PcapReader::new(f).map_err(|e| format!("{}: {e}", p.display()))?;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.map_err(|e| format!("{}: {e}", p.display()))?;
            out.frames += 1;
            let Some((flow, seq, syn, payload)) = tcp(&pkt.data) else { continue };
            let e = flows.entry(flow).or_insert((seq.wrapping_add(u32::from(syn)), Vec::new()));
            if syn {
                e.0 = seq.wrapping_add(1);
            }
            if !payload.is_empty() {
                e.1.push((seq, payload.to_vec()));
            }
        }
    }
    for (base, segs) in flows.into_values() {
        if segs.is_empty() {
            continue;
        }
        out.streams += 1;
        // Offsets from the first byte; a segment before it (never, unless
        // the capture began mid-connection) is left out.
        let placed: Vec<(usize, &[u8])> = segs.iter().filter_map(|(seq, d)| {
            let off = seq.wrapping_sub(base);
            (off < 1 << 31).then_some((off as usize, d.as_slice()))
        }).collect();
        let len = placed.iter().map(|(o, d)| o + d.len()).max().unwrap_or(0);
        let mut stream = vec![0u8; len];
        for (o, d) in placed {
            stream[o..o + d.len()].copy_from_slice(d);
            out.payload_bytes += d.len() as u64;
        }
        for i in 0..stream.len().saturating_sub(3) {
            if stream[i..i + 4] != MAGIC {
                continue;
            }
            for &n in sizes {
                if stream.get(i..i + n).is_some_and(is_pattern_sector) {
                    *out.plaintext.entry(n).or_default() += 1;
                }
            }
        }
    }
    Ok(out)
}

/// An Ethernet II / IPv4 / TCP frame's flow, sequence number, SYN flag
/// and payload (RFC 791 §3.1, RFC 9293 §3.1).
fn tcp(f: &[u8]) -> Option<(Flow, u32, bool, &[u8])> {
    if f.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = f.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || *ip.get(9)? != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let t = ip.get(ihl..total)?;
    let doff = usize::from(t.get(12)? >> 4) * 4;
    let src: [u8; 4] = ip[12..16].try_into().ok()?;
    let dst: [u8; 4] = ip[16..20].try_into().ok()?;
    let flow = (src, u16::from_be_bytes([t[0], t[1]]), dst, u16::from_be_bytes([t[2], t[3]]));
    let seq = u32::from_be_bytes(t[4..8].try_into().ok()?);
    Some((flow, seq, t[13] & 0x02 != 0, t.get(doff..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(n: usize, lba: u64) -> Vec<u8> {
        let mut s = vec![0u8; n];
        s[..4].copy_from_slice(&MAGIC);
        s[8..16].copy_from_slice(&lba.to_le_bytes());
        for (i, b) in s[20..n - 4].iter_mut().enumerate() {
            *b = (i * 7 + lba as usize) as u8;
        }
        let c = fnv32(&s[..n - 4]);
        s[n - 4..].copy_from_slice(&c.to_le_bytes());
        s
    }

    fn frame(seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 10]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
        let t = &mut ip[20..];
        t[0..2].copy_from_slice(&4420u16.to_be_bytes());
        t[2..4].copy_from_slice(&50000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = if syn { 0x12 } else { 0x10 };
        f.extend_from_slice(payload);
        f
    }

    /// A 512-byte sector split over two segments that arrive out of order
    /// and once more as a retransmission, after a 24-byte PDU header: found
    /// once; a 4 KiB one in one segment: found; a corrupted one: not.
    #[test]
    fn sectors_across_segments_are_found() {
        let dir = std::env::temp_dir().join(format!("wirescan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.pcap");
        let mut stream = vec![0xaau8; 24];
        stream.extend(sector(512, 7));
        stream.extend(sector(4096, 8));
        let mut bad = sector(512, 9);
        bad[100] ^= 1;
        stream.extend(bad);
        let isn = 0xffff_ff00u32; // the sequence space wraps inside the stream
        let cut = 300;
        {
            let w = std::fs::File::create(&p).unwrap();
            let mut w = pcap_file::pcap::PcapWriter::new(w).unwrap();
            let mut put = |f: Vec<u8>| {
                w.write_packet(&pcap_file::pcap::PcapPacket::new(std::time::Duration::ZERO, f.len() as u32, &f)).unwrap();
            };
            put(frame(isn, true, &[]));
            put(frame(isn.wrapping_add(1 + cut as u32), false, &stream[cut..]));
            put(frame(isn.wrapping_add(1), false, &stream[..cut]));
            put(frame(isn.wrapping_add(1), false, &stream[..cut]));
        }
        let s = scan(&[&p], &[512, 4096]).unwrap();
        assert_eq!((s.frames, s.streams), (4, 1));
        assert_eq!(s.plaintext.get(&512), Some(&1));
        assert_eq!(s.plaintext.get(&4096), Some(&1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
