//! Capture of simulated Ethernet links to classic pcap files that Wireshark
//! and tshark open: LINKTYPE_ETHERNET (1), nanosecond timestamps (magic
//! 0xA1B23C4D), simulated time since the start of the run.
//!
//! Format: draft-ietf-opsawg-pcap (§4 file header, §5 packet record) and
//! the tcpdump.org link-type registry. Frames are written without FCS, as
//! the simulator carries them.

use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// Writes one capture file. Buffered; flushed by [`PcapWriter::finish`] or,
/// ignoring errors, on drop.
pub struct PcapWriter {
    /// `None` only after `finish` took it.
    inner: Option<pcap_file::pcap::PcapWriter<BufWriter<File>>>,
}

impl PcapWriter {
    /// Longest frame stored whole (libpcap's `MAXIMUM_SNAPLEN`); longer
    /// frames are cut and keep their original length in the record.
    pub const SNAPLEN: u32 = 262_144;

    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        let header = PcapHeader {
            snaplen: Self::SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let inner = pcap_file::pcap::PcapWriter::with_header(file, header).map_err(into_io)?;
        Ok(PcapWriter { inner: Some(inner) })
    }

    /// Appends `frame` (Ethernet, no FCS) seen at `time_ns` of simulated
    /// time. Times past year 2106 (u32 seconds) are an `InvalidInput` error.
    pub fn write(&mut self, time_ns: u64, frame: &[u8]) -> io::Result<()> {
        let writer = self.inner.as_mut().ok_or_else(|| io::Error::other("pcap writer already finished"))?;
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let captured = &frame[..frame.len().min(Self::SNAPLEN as usize)];
        let packet = PcapPacket::new(Duration::from_nanos(time_ns), orig_len, captured);
        writer.write_packet(&packet).map(drop).map_err(into_io)
    }

    /// Flushes and closes the file, reporting any error.
    pub fn finish(mut self) -> io::Result<()> {
        match self.inner.take() {
            Some(writer) => writer.into_writer().flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        if let Some(writer) = self.inner.take() {
            // Errors cannot be reported from drop; `finish` reports them.
            let _ = writer.into_writer().flush();
        }
    }
}

fn into_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidInput, other),
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::testing::*;
    use super::*;
    use pcap_file::pcap::PcapReader;
    use std::path::PathBuf;

    /// A file in the temp directory, removed when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> Self {
            TempPath(std::env::temp_dir().join(format!("dpu-sim-{}-{name}.pcap", std::process::id())))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn frames_read_back_with_nanosecond_times() {
        let path = TempPath::new("read-back");
        let first = tcp_frame(flow(), 1, 2, true, b"first frame");
        let second = udp_frame(flow().dst_addr, flow().src_addr, 4420, 4421, &pseudo_random(11, 999));
        {
            let mut writer = PcapWriter::create(&path.0).unwrap();
            writer.write(1_234_567_891, &first).unwrap();
            writer.write(3_000_000_007, &second).unwrap();
            // Dropped without `finish`: drop flushes.
        }
        let mut reader = PcapReader::new(File::open(&path.0).unwrap()).unwrap();
        let header = reader.header();
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
        assert_eq!(header.snaplen, PcapWriter::SNAPLEN);
        let mut read = Vec::new();
        while let Some(packet) = reader.next_packet() {
            let packet = packet.unwrap();
            read.push((packet.timestamp, packet.orig_len, packet.data.into_owned()));
        }
        assert_eq!(
            read,
            vec![
                (Duration::new(1, 234_567_891), first.len() as u32, first),
                (Duration::new(3, 7), second.len() as u32, second),
            ]
        );
        // Little-endian nanosecond magic, as Wireshark expects.
        assert_eq!(std::fs::read(&path.0).unwrap()[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
    }

    #[test]
    fn oversized_frame_is_cut_to_snaplen() {
        let path = TempPath::new("snaplen");
        let big = pseudo_random(12, PcapWriter::SNAPLEN as usize + 100);
        let mut writer = PcapWriter::create(&path.0).unwrap();
        writer.write(5, &big).unwrap();
        writer.finish().unwrap();
        let mut reader = PcapReader::new(File::open(&path.0).unwrap()).unwrap();
        let raw = reader.next_raw_packet().unwrap().unwrap();
        assert_eq!(raw.incl_len, PcapWriter::SNAPLEN);
        assert_eq!(raw.orig_len as usize, big.len());
        assert_eq!(raw.data[..], big[..PcapWriter::SNAPLEN as usize]);
        assert!(reader.next_raw_packet().is_none());
    }

    #[test]
    fn errors_are_reported() {
        let path = TempPath::new("errors");
        let mut writer = PcapWriter::create(&path.0).unwrap();
        let err = writer.write(u64::MAX, b"frame").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        writer.finish().unwrap();
        let missing = std::env::temp_dir().join("dpu-sim-no-such-dir").join("x.pcap");
        assert!(PcapWriter::create(missing).is_err());
    }
}
