//! Board description (`targets/boards/*.toml`): what sits on the card.

use crate::{load_toml, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A card: the chip it carries and the devices around it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub board: BoardInfo,
    pub pcie: Pcie,
    pub flash: Flash,
    pub network: Network,
    /// Local NVMe SSDs on the card's downstream PCIe side (none if absent).
    #[serde(default)]
    pub ssd: Ssds,
    #[serde(skip)]
    pub source: PathBuf,
}

/// The card's local NVMe SSDs: how many are fitted (slots 0..count of the
/// chip's `devices.ssd` window) and the profile they share. The model is
/// `dpu_sim::ssd`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ssds {
    pub count: u32,
    /// Bytes of the one namespace (NSID 1) of each SSD.
    pub capacity: u64,
    /// Logical block size: 512 or 4096.
    pub lba_size: u32,
    /// Media time of one read / one write (to the SSD's write cache).
    pub read_latency_ns: u64,
    pub write_latency_ns: u64,
    /// Time of one admin command (Identify, queue creation: handled by
    /// the SSD controller's firmware).
    pub admin_latency_ns: u64,
    /// Transfer rate between the SSD and DPU memory, MB/s (10^6 bytes).
    pub bandwidth_mbps: u64,
    /// Media operations in progress at once (channels x dies).
    pub channels: u32,
    /// Entries per queue (CAP.MQES + 1).
    pub max_queue_entries: u32,
    /// I/O queue pairs (Set Features Number of Queues grants at most this).
    pub io_queues: u32,
}

impl Default for Ssds {
    fn default() -> Ssds {
        Ssds {
            count: 0,
            capacity: 1 << 30,
            lba_size: 512,
            read_latency_ns: 80_000,
            write_latency_ns: 20_000,
            admin_latency_ns: 50_000,
            bandwidth_mbps: 7_000,
            channels: 128,
            max_queue_entries: 1024,
            io_queues: 64,
        }
    }
}

impl Ssds {
    /// Checks the section; `(field, message)` on error.
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: String| Err((format!("ssd.{f}"), m));
        if self.count > 64 {
            return bad("count", format!("{} is out of range 0..=64", self.count));
        }
        if ![512, 4096].contains(&self.lba_size) {
            return bad("lba_size", format!("{} is not 512 or 4096", self.lba_size));
        }
        if self.capacity == 0 || self.capacity % u64::from(self.lba_size) != 0 {
            return bad("capacity", format!("{} must be a non-zero multiple of lba_size", self.capacity));
        }
        for (f, v) in [("read_latency_ns", self.read_latency_ns), ("write_latency_ns", self.write_latency_ns), ("admin_latency_ns", self.admin_latency_ns), ("bandwidth_mbps", self.bandwidth_mbps)] {
            if v == 0 {
                return bad(f, "must be non-zero".into());
            }
        }
        if !(1..=4096).contains(&self.channels) {
            return bad("channels", format!("{} is out of range 1..=4096", self.channels));
        }
        if !(2..=65536).contains(&self.max_queue_entries) {
            return bad("max_queue_entries", format!("{} is out of range 2..=65536 (NVMe Base 2.0 §3.1.4.1 MQES)", self.max_queue_entries));
        }
        if !(1..=511).contains(&self.io_queues) {
            return bad("io_queues", format!("{} is out of range 1..=511 (doorbells of the 16 KiB BAR0)", self.io_queues));
        }
        Ok(())
    }

    /// Checks that the fitted SSDs have slots in `chip`'s window.
    pub fn check_slots(&self, board: &Path, chip: &crate::Chip) -> Result<(), ConfigError> {
        if self.count > chip.devices.ssd.slots {
            return Err(ConfigError::field(board, "ssd.count", format!("{} SSDs, but chip `{}` has {} slots (devices.ssd.slots)", self.count, chip.chip.name, chip.devices.ssd.slots)));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    pub name: String,
    /// Chip file name (relative to `targets/chips/`) this board carries.
    pub chip: String,
}

/// Host-facing PCIe endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcie {
    pub gen: u32,
    pub lanes: u32,
    pub total_vfs: u32,
    pub vendor_id: u16,
    pub device_id: u16,
    pub vf_device_id: u16,
    pub max_payload: u32,
    pub max_read_request: u32,
    pub tlp_overhead_bytes: u32,
    pub dllp_overhead_percent: u32,
    pub host_read_latency_ns: u64,
    pub posted_latency_ns: u64,
    pub mmio_read_latency_ns: u64,
    pub pf_msix_vectors: u32,
    pub vf_msix_vectors: u32,
    pub pf_io_queues: u32,
    pub vf_io_queues: u32,
}

impl Pcie {
    /// Raw signalling rate per lane in GT/s and the line-code efficiency.
    fn lane_rate(&self) -> (f64, f64) {
        match self.gen {
            1 => (2.5, 0.8),
            2 => (5.0, 0.8),
            3 => (8.0, 128.0 / 130.0),
            4 => (16.0, 128.0 / 130.0),
            _ => (32.0, 128.0 / 130.0),
        }
    }

    /// Link bytes per second per direction after line coding and DLLP
    /// overhead (before per-TLP overhead).
    pub fn link_bytes_per_sec(&self) -> f64 {
        let (gt, eff) = self.lane_rate();
        gt * 1e9 * eff / 8.0 * f64::from(self.lanes) * (1.0 - f64::from(self.dllp_overhead_percent) / 100.0)
    }

    /// Payload efficiency of full-size TLPs.
    pub fn tlp_efficiency(&self) -> f64 {
        f64::from(self.max_payload) / f64::from(self.max_payload + self.tlp_overhead_bytes)
    }

    /// Functions (PF + VFs) the endpoint can expose.
    pub fn max_functions(&self) -> u32 {
        1 + self.total_vfs
    }
}

/// Ethernet ports wired on the card (the NIC itself is on the chip).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub ports: Vec<Port>,
}

/// One Ethernet port: its MAC address (from the card's EEPROM) and PHY speed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub name: String,
    /// "02:00:00:00:00:01" style.
    pub mac: String,
    pub speed_gbps: u32,
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(format!("`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"));
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| format!("`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
    }
    Ok(m)
}

/// SPI NOR boot flash: geometry, identity and timing of the part (from
/// its datasheet), and the partition layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flash {
    pub size: u64,
    /// READ ID (9Fh) answer: manufacturer, memory type, capacity.
    pub jedec_id: [u8; 3],
    pub page_size: u64,
    pub subsector_size: u64,
    pub sector_size: u64,
    /// Highest SCK the part takes for every command.
    pub max_sck_hz: u64,
    /// Typical PAGE PROGRAM time (tPP), SUBSECTOR ERASE (tSSE), SECTOR ERASE (tSE).
    pub page_program_ns: u64,
    pub subsector_erase_ns: u64,
    pub sector_erase_ns: u64,
    pub layout: FlashLayout,
}

/// A flash partition.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub offset: u64,
    pub size: u64,
}

impl Partition {
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Partitions of the boot flash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashLayout {
    /// Signed first-stage bootloader (read by the boot ROM).
    pub bootloader: Partition,
    /// The bootloader's A/B state journal (two subsectors, alternately).
    pub boot_state: Partition,
    /// The persisted configuration: two copies, one per half.
    pub config: Partition,
    /// Signed firmware images.
    pub slot_a: Partition,
    pub slot_b: Partition,
}

impl FlashLayout {
    /// Every partition with its field name.
    pub fn all(&self) -> [(&'static str, Partition); 5] {
        [
            ("flash.layout.bootloader", self.bootloader),
            ("flash.layout.boot_state", self.boot_state),
            ("flash.layout.config", self.config),
            ("flash.layout.slot_a", self.slot_a),
            ("flash.layout.slot_b", self.slot_b),
        ]
    }
}

impl Flash {
    /// Checks geometry and layout; `Err((field, message))`.
    fn check(&self) -> Result<(), (String, String)> {
        let e = |f: &str, m: String| Err((f.to_string(), m));
        if self.size == 0 || !self.size.is_power_of_two() {
            return e("flash.size", format!("{:#x} must be a non-zero power of two", self.size));
        }
        if !self.page_size.is_power_of_two() || !(16..=4096).contains(&self.page_size) {
            return e("flash.page_size", format!("{} must be a power of two in 16..=4096", self.page_size));
        }
        if !self.subsector_size.is_power_of_two() || self.subsector_size < self.page_size {
            return e("flash.subsector_size", format!("{:#x} must be a power of two >= page_size", self.subsector_size));
        }
        if !self.sector_size.is_power_of_two() || self.sector_size < self.subsector_size || self.sector_size > self.size {
            return e("flash.sector_size", format!("{:#x} must be a power of two in subsector_size..=size", self.sector_size));
        }
        if self.max_sck_hz == 0 {
            return e("flash.max_sck_hz", "must be non-zero".into());
        }
        for (f, v) in [("flash.page_program_ns", self.page_program_ns), ("flash.subsector_erase_ns", self.subsector_erase_ns), ("flash.sector_erase_ns", self.sector_erase_ns)] {
            if v == 0 || v > 10_000_000_000 {
                return e(f, format!("{v} must be in 1..=10_000_000_000 ns"));
            }
        }
        let l = &self.layout;
        for (f, p) in l.all() {
            let align = if f.ends_with("boot_state") || f.ends_with("config") { self.subsector_size } else { self.sector_size };
            if p.size == 0 || p.offset % align != 0 || p.size % align != 0 || p.end() > self.size {
                return e(f, format!("{:#x}+{:#x} must be non-empty, {align:#x}-aligned and inside the {:#x}-byte flash", p.offset, p.size, self.size));
            }
        }
        if l.boot_state.size != 2 * self.subsector_size {
            return e("flash.layout.boot_state", format!("size {:#x} must be two subsectors ({:#x})", l.boot_state.size, 2 * self.subsector_size));
        }
        if l.config.size % (2 * self.subsector_size) != 0 {
            return e("flash.layout.config", format!("size {:#x} must hold two copies of whole subsectors", l.config.size));
        }
        if l.slot_a.size != l.slot_b.size {
            return e("flash.layout.slot_b", "slot_a and slot_b must have the same size".into());
        }
        let mut v: Vec<(&str, Partition)> = l.all().to_vec();
        v.sort_by_key(|p| p.1.offset);
        for w in v.windows(2) {
            if w[0].1.end() > w[1].1.offset {
                return e(w[1].0, format!("overlaps {}", w[0].0));
            }
        }
        Ok(())
    }
}

impl Board {
    /// Hash of what the firmware bakes in from the board (function and
    /// queue counts, MSI-X vectors); checked by the simulator like the chip's.
    pub fn layout_fingerprint(&self) -> u64 {
        let p = &self.pcie;
        let words = [
            u64::from(p.total_vfs),
            u64::from(p.pf_io_queues),
            u64::from(p.vf_io_queues),
            u64::from(p.pf_msix_vectors),
            u64::from(p.vf_msix_vectors),
            u64::from(p.vendor_id),
            u64::from(p.device_id),
            u64::from(p.vf_device_id),
            self.flash.size,
            self.flash.page_size,
            self.flash.subsector_size,
            self.flash.sector_size,
        ];
        let words: Vec<u64> = words.into_iter().chain(self.flash.layout.all().iter().flat_map(|(_, p)| [p.offset, p.size])).collect();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for w in words {
            for b in w.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Loads and validates a board file.
    pub fn load(path: impl AsRef<Path>) -> Result<Board, ConfigError> {
        let path = path.as_ref();
        let b: Board = load_toml(path)?;
        b.validated(path)
    }

    /// Parses and validates board TOML text; `path` is only used in messages.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Board, ConfigError> {
        let path = path.as_ref();
        let b: Board = crate::parse_toml(path, text)?;
        b.validated(path)
    }

    fn validated(self, path: &Path) -> Result<Board, ConfigError> {
        let mut b = self;
        b.source = path.to_path_buf();
        let err = |field: &str, msg: String| Err(ConfigError::field(path, field, msg));
        if b.board.name.is_empty() {
            return err("board.name", "must not be empty".into());
        }
        if !(1..=5).contains(&b.pcie.gen) {
            return err("pcie.gen", format!("{} is not a PCIe generation 1..=5", b.pcie.gen));
        }
        if ![1, 2, 4, 8, 16].contains(&b.pcie.lanes) {
            return err("pcie.lanes", format!("{} is not one of 1, 2, 4, 8, 16", b.pcie.lanes));
        }
        if b.pcie.total_vfs > 64 {
            return err("pcie.total_vfs", format!("{} exceeds the 64 VFs the endpoint supports", b.pcie.total_vfs));
        }
        let p = &b.pcie;
        if ![128, 256, 512, 1024, 2048, 4096].contains(&p.max_payload) {
            return err("pcie.max_payload", format!("{} is not a PCIe max payload size (128..4096, power of two)", p.max_payload));
        }
        if ![128, 256, 512, 1024, 2048, 4096].contains(&p.max_read_request) {
            return err("pcie.max_read_request", format!("{} is not a PCIe max read request size", p.max_read_request));
        }
        if p.dllp_overhead_percent >= 50 {
            return err("pcie.dllp_overhead_percent", format!("{} is implausible (must be < 50)", p.dllp_overhead_percent));
        }
        for (field, v, max) in [
            ("pcie.pf_msix_vectors", p.pf_msix_vectors, 256),
            ("pcie.vf_msix_vectors", p.vf_msix_vectors, 256),
            ("pcie.pf_io_queues", p.pf_io_queues, 64),
            ("pcie.vf_io_queues", p.vf_io_queues, 64),
        ] {
            if v == 0 || v > max {
                return err(field, format!("{v} is out of range 1..={max}"));
            }
        }
        if p.vendor_id == 0xffff || p.vendor_id == 0 {
            return err("pcie.vendor_id", "0x0000 and 0xffff are not valid vendor IDs".into());
        }
        if b.network.ports.is_empty() || b.network.ports.len() > 8 {
            return err("network.ports", format!("{} ports; a card has 1..=8", b.network.ports.len()));
        }
        let mut macs = Vec::new();
        for (i, port) in b.network.ports.iter().enumerate() {
            let mac = parse_mac(&port.mac).map_err(|m| ConfigError::field(path, format!("network.ports[{i}].mac"), m))?;
            if mac[0] & 1 != 0 || mac == [0; 6] {
                return err(&format!("network.ports[{i}].mac"), format!("{} is not a unicast address", port.mac));
            }
            if macs.contains(&mac) {
                return err(&format!("network.ports[{i}].mac"), format!("{} is used twice", port.mac));
            }
            macs.push(mac);
            if ![10, 25, 40, 50, 100, 200, 400].contains(&port.speed_gbps) {
                return err(&format!("network.ports[{i}].speed_gbps"), format!("{} is not an Ethernet speed (10, 25, 40, 50, 100, 200, 400)", port.speed_gbps));
            }
        }
        if let Err((field, msg)) = b.flash.check() {
            return err(&field, msg);
        }
        if let Err((field, msg)) = b.ssd.check() {
            return err(&field, msg);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_board_is_valid() {
        let b = Board::load(crate::default_board_path()).unwrap();
        assert_eq!(b.pcie.total_vfs, 64);
        assert_eq!(b.board.chip, "mppa80.toml");
    }

    #[test]
    fn bad_lanes_named() {
        let dir = std::env::temp_dir().join(format!("dpu-board-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.toml");
        let text = std::fs::read_to_string(crate::default_board_path()).unwrap().replacen("lanes = 16", "lanes = 3", 1);
        std::fs::write(&p, text).unwrap();
        let e = Board::load(&p).unwrap_err().to_string();
        assert!(e.contains("pcie.lanes") && e.contains("b.toml"), "{e}");
    }

    #[test]
    fn ssd_section_checked() {
        let text = std::fs::read_to_string(crate::default_board_path()).unwrap();
        let b = Board::parse("b.toml", &text).unwrap();
        assert_eq!((b.ssd.count, b.ssd.lba_size, b.ssd.channels), (4, 512, 128));
        for (from, to, field) in [
            ("lba_size = 512", "lba_size = 1024", "ssd.lba_size"),
            ("capacity = 0x4000_0000", "capacity = 1000", "ssd.capacity"),
            ("read_latency_ns = 80_000", "read_latency_ns = 0", "ssd.read_latency_ns"),
            ("max_queue_entries = 1024", "max_queue_entries = 1", "ssd.max_queue_entries"),
            ("\nio_queues = 64", "\nio_queues = 512", "ssd.io_queues"),
            ("count = 4", "count = 65", "ssd.count"),
        ] {
            assert!(text.contains(from), "{from}");
            let e = Board::parse("b.toml", &text.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(field), "{to}: {e}");
        }
        // No section: no SSDs. More SSDs than the chip has slots: refused.
        let none = Board::parse("b.toml", &text[..text.find("[ssd]").unwrap()]).unwrap();
        assert_eq!(none.ssd.count, 0);
        let chip = crate::Chip::load(crate::default_chip_path()).unwrap();
        b.ssd.check_slots(Path::new("b.toml"), &chip).unwrap();
        let many = Board::parse("b.toml", &text.replacen("count = 4", "count = 17", 1)).unwrap();
        let e = many.ssd.check_slots(Path::new("b.toml"), &chip).unwrap_err().to_string();
        assert!(e.contains("ssd.count") && e.contains("16 slots"), "{e}");
    }
}
