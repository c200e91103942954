//! Chip description (`targets/chips/*.toml`): cores, memory map, devices, timing.

use crate::{load_toml, parse_toml, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Highest address (exclusive) that firmware code and data may use: RV64
/// `auipc`-based addressing reaches +-2 GiB and defmt's string symbols sit
/// near address 0, so the image must stay below 2 GiB.
pub const FIRMWARE_ADDRESS_LIMIT: u64 = 0x8000_0000;

/// A whole chip description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chip {
    pub chip: ChipInfo,
    pub memory: Memory,
    pub firmware: Firmware,
    pub devices: Devices,
    pub timing: Timing,
    pub noc: Noc,
    /// File this description came from (for messages).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipInfo {
    pub name: String,
    pub clusters: u32,
    pub cores_per_cluster: u32,
    pub clock_hz: u64,
    pub timebase_hz: u64,
    pub control_clusters: Vec<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub bootrom: Bootrom,
    pub smem: Smem,
    pub ddr: Ddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootrom {
    pub base: u64,
    pub size: u64,
    /// Flash offset where the ROM stage looks for the signed first-stage
    /// bootloader (the board's `flash.layout.bootloader` must start here).
    pub stage1_flash_offset: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smem {
    pub base: u64,
    pub stride: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ddr {
    pub base: u64,
    pub size: u64,
    pub image_size: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firmware {
    pub stack_size: u64,
    /// DDR after the image that the firmware keeps for its own tables and
    /// buffers; RAM namespaces are carved from the rest of DDR
    /// ([`Chip::ram_namespace_pool`]).
    pub ddr_heap_size: u64,
    /// Top of the image region kept for the first-stage bootloader and
    /// its hand-off block ([`Chip::bootloader_region`]); the firmware is
    /// linked below it.
    pub bootloader_size: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    pub finisher: MmioDevice,
    pub clint: MmioDevice,
    pub plic: Plic,
    pub uart: IrqDevice,
    pub trace: MmioDevice,
    pub mailbox: Mailbox,
    pub pcie: MmioDevice,
    pub dma: Dma,
    pub bootcfg: BootCfg,
    pub nic: Nic,
    pub crypto: Crypto,
    pub ec: Ec,
    pub trng: Trng,
    // Secure boot: the boot flash's SPI controller and the OTP fuses.
    pub spi: MmioDevice,
    pub otp: Otp,
    /// The downstream PCIe root port's window onto local NVMe SSDs.
    pub ssd: SsdWindow,
}

/// Where the card's local NVMe SSDs' BAR0s appear (SSD i at `base + i *
/// dpu_hal::regs::ssd::WINDOW`); how many are fitted is a board fact.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdWindow {
    pub base: u64,
    /// SSD slots the window decodes.
    pub slots: u32,
}

/// Crypto engines (AES-256-XTS, AES-256-GCM, SHA-256): queues, key slots,
/// rates (layout: `dpu_hal::regs::crypto`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crypto {
    pub base: u64,
    pub engines: u32,
    pub queues_per_engine: u32,
    pub key_slots: u32,
    /// AES-XTS / AES-GCM rate of one engine.
    pub aes_bytes_per_cycle: u32,
    /// SHA-256 rate of one engine.
    pub sha_bytes_per_cycle: u32,
    /// Fixed cost per descriptor.
    pub descriptor_cycles: u32,
    /// Extra cost per XTS data unit (its tweak encryption).
    pub data_unit_cycles: u32,
}

/// The erasure-coding engine (Reed-Solomon, GF(2^8)).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec {
    pub base: u64,
    pub queues: u32,
    pub max_k: u32,
    pub max_m: u32,
    pub bytes_per_cycle: u32,
    pub descriptor_cycles: u32,
    /// Reconstruction: cycles per data fragment (row) to invert the matrix.
    pub invert_cycles_per_row: u32,
}

/// The true random number generator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trng {
    pub base: u64,
    pub irq: u32,
    /// Min-entropy per raw 8-bit sample the health-test cutoffs assume.
    pub min_entropy_bits: u32,
}

/// OTP fuse array: `words` 32-bit words; programming one takes `program_ns`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Otp {
    pub base: u64,
    pub words: u32,
    pub program_ns: u64,
}

/// The on-chip Ethernet controller: ports (MACs/PHYs are board facts),
/// queue pairs per port, its DMA into DPU memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    pub base: u64,
    pub ports: u32,
    pub queues_per_port: u32,
    /// NIC DMA rate into / out of DPU memory.
    pub bytes_per_cycle: u32,
    /// Fixed cost per descriptor (fetch + write-back).
    pub descriptor_cycles: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dma {
    pub base: u64,
    pub engines: u32,
    pub channels_per_engine: u32,
    pub bytes_per_cycle: u32,
    pub descriptor_cycles: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootCfg {
    pub base: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmioDevice {
    pub base: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrqDevice {
    pub base: u64,
    pub irq: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plic {
    pub base: u64,
    pub sources: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    pub base: u64,
    pub irq_base: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub core: CoreTiming,
    pub memory: MemoryTiming,
    pub contention: Contention,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreTiming {
    pub alu: u32,
    pub branch_taken_penalty: u32,
    pub jump_penalty: u32,
    pub mul: u32,
    pub div: u32,
    pub div64: u32,
    pub csr: u32,
    pub trap: u32,
    pub fence_i: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryTiming {
    pub smem_local: u32,
    pub noc_base: u32,
    pub noc_hop: u32,
    pub ddr: u32,
    pub l1d_size: u32,
    pub l1d_line: u32,
    pub l1d_hit: u32,
    pub store: u32,
    pub amo_extra: u32,
    pub misaligned_penalty: u32,
    pub mmio: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contention {
    pub smem_accesses_per_cycle: u32,
    pub ddr_bytes_per_cycle: u32,
    pub queue_penalty: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noc {
    pub positions: Vec<[u32; 2]>,
}

/// Sizes of the fixed device register windows (layouts live in `dpu-hal`).
pub mod window {
    pub const FINISHER: u64 = 0x1000;
    pub const CLINT: u64 = 0x1_0000;
    pub const PLIC: u64 = 0x400_0000;
    pub const UART: u64 = 0x100;
    pub const TRACE: u64 = 0x100;
    /// Per hart: one 16-byte slot.
    pub const MAILBOX_SLOT: u64 = 0x10;
    pub const PCIE: u64 = 0x40_0000;
    /// Per DMA channel.
    pub const DMA_CHANNEL: u64 = 0x40;
    /// Per NIC port (layout: `dpu_hal::regs::nic`).
    pub const NIC_PORT: u64 = 0x1_0000;
    /// Per crypto engine (layout: `dpu_hal::regs::crypto`).
    pub const CRYPTO_ENGINE: u64 = 0x2000;
    /// Crypto engine registers before its queues.
    pub const CRYPTO_QUEUES: u64 = 0x100;
    /// Per accelerator queue (same registers as a DMA channel).
    pub const ACCEL_QUEUE: u64 = 0x40;
    /// EC engine registers before its queues (layout: `dpu_hal::regs::ec`).
    pub const EC_QUEUES: u64 = 0x100;
    /// TRNG (layout: `dpu_hal::regs::trng`).
    pub const TRNG: u64 = 0x1000;
    /// SPI flash controller (layout: `dpu_hal::regs::spi`).
    pub const SPI: u64 = 0x1000;
    /// OTP controller and fuse words (layout: `dpu_hal::regs::otp`).
    pub const OTP: u64 = 0x1000;
    /// Per local SSD: its BAR0 (layout: `dpu_hal::regs::ssd::WINDOW`).
    pub const SSD: u64 = 0x4000;
}

impl Chip {
    /// Loads and validates a chip file.
    pub fn load(path: impl AsRef<Path>) -> Result<Chip, ConfigError> {
        let path = path.as_ref();
        let mut chip: Chip = load_toml(path)?;
        chip.source = path.to_path_buf();
        chip.validate()?;
        Ok(chip)
    }

    /// Parses and validates chip TOML text; `path` is only used in messages.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Chip, ConfigError> {
        let path = path.as_ref();
        let mut chip: Chip = parse_toml(path, text)?;
        chip.source = path.to_path_buf();
        chip.validate()?;
        Ok(chip)
    }

    /// Total number of harts (cores).
    pub fn harts(&self) -> u32 {
        self.chip.clusters * self.chip.cores_per_cluster
    }

    /// Cluster of a hart (`mhartid = cluster * cores_per_cluster + core`).
    pub fn cluster_of(&self, hart: u32) -> u32 {
        hart / self.chip.cores_per_cluster
    }

    /// Whether a cluster runs the control plane.
    pub fn is_control_cluster(&self, cluster: u32) -> bool {
        self.chip.control_clusters.contains(&cluster)
    }

    /// Base address of a cluster's SMEM.
    pub fn smem_base(&self, cluster: u32) -> u64 {
        self.memory.smem.base + u64::from(cluster) * self.memory.smem.stride
    }

    /// NoC hops between two clusters (Manhattan distance on the mesh).
    pub fn noc_hops(&self, a: u32, b: u32) -> u32 {
        let pa = self.noc.positions[a as usize];
        let pb = self.noc.positions[b as usize];
        pa[0].abs_diff(pb[0]) + pa[1].abs_diff(pb[1])
    }

    /// Number of DMA channels.
    pub fn dma_channels(&self) -> u32 {
        self.devices.dma.engines * self.devices.dma.channels_per_engine
    }

    /// Size of the DMA register window.
    pub fn dma_window(&self) -> u64 {
        (u64::from(self.dma_channels()) * window::DMA_CHANNEL).next_multiple_of(0x1000)
    }

    /// Size of the crypto register window.
    pub fn crypto_window(&self) -> u64 {
        u64::from(self.devices.crypto.engines) * window::CRYPTO_ENGINE
    }

    /// Size of the EC engine register window.
    pub fn ec_window(&self) -> u64 {
        (window::EC_QUEUES + u64::from(self.devices.ec.queues) * window::ACCEL_QUEUE).next_multiple_of(0x1000)
    }

    /// Size of the NIC register window.
    pub fn nic_window(&self) -> u64 {
        u64::from(self.devices.nic.ports) * window::NIC_PORT
    }

    /// Size of the local SSDs' window (every slot).
    pub fn ssd_window(&self) -> u64 {
        u64::from(self.devices.ssd.slots) * window::SSD
    }

    /// Size of the mailbox register window.
    pub fn mailbox_window(&self) -> u64 {
        u64::from(self.harts()) * window::MAILBOX_SLOT
    }

    /// Where the firmware carves RAM namespaces from: (address, bytes), the
    /// DDR above the image and the firmware's heap. Each namespace takes
    /// its size rounded up to 4 KiB.
    pub fn ram_namespace_pool(&self) -> (u64, u64) {
        let d = &self.memory.ddr;
        let base = d.base + d.image_size + self.firmware.ddr_heap_size;
        (base, d.base + d.size - base)
    }

    /// Where the first-stage bootloader runs: (address, bytes), the top
    /// of the image region. Its first 4 KiB are the hand-off block the
    /// firmware reads (`dpu_hal::regs::bootinfo`).
    pub fn bootloader_region(&self) -> (u64, u64) {
        let d = &self.memory.ddr;
        (d.base + d.image_size - self.firmware.bootloader_size, self.firmware.bootloader_size)
    }

    /// A hash of everything the firmware image bakes in at build time (hart
    /// counts, memory map, device bases, IRQ numbers). Timing is excluded: it
    /// can change without rebuilding the firmware. The simulator compares it
    /// with the value the image carries in its `.dpu_chip` section.
    pub fn layout_fingerprint(&self) -> u64 {
        let c = &self.chip;
        let m = &self.memory;
        let d = &self.devices;
        let mut words: Vec<u64> = vec![
            c.clusters.into(),
            c.cores_per_cluster.into(),
            c.clock_hz,
            c.timebase_hz,
            m.bootrom.base,
            m.bootrom.size,
            m.smem.base,
            m.smem.stride,
            m.smem.size,
            m.ddr.base,
            m.ddr.size,
            m.ddr.image_size,
            self.firmware.stack_size,
            self.firmware.ddr_heap_size,
            self.firmware.bootloader_size,
            m.bootrom.stage1_flash_offset,
            d.finisher.base,
            d.clint.base,
            d.plic.base,
            d.plic.sources.into(),
            d.uart.base,
            d.uart.irq.into(),
            d.trace.base,
            d.mailbox.base,
            d.mailbox.irq_base.into(),
            d.pcie.base,
            d.dma.base,
            d.dma.engines.into(),
            d.dma.channels_per_engine.into(),
            d.bootcfg.base,
            d.bootcfg.size,
            d.nic.base,
            d.nic.ports.into(),
            d.nic.queues_per_port.into(),
            d.crypto.base,
            d.crypto.engines.into(),
            d.crypto.queues_per_engine.into(),
            d.crypto.key_slots.into(),
            d.ec.base,
            d.ec.queues.into(),
            d.ec.max_k.into(),
            d.ec.max_m.into(),
            d.trng.base,
            d.trng.irq.into(),
            d.spi.base,
            d.otp.base,
            d.otp.words.into(),
            d.ssd.base,
            d.ssd.slots.into(),
        ];
        words.extend(c.control_clusters.iter().map(|&x| u64::from(x) | 1 << 32));
        // FNV-1a over the little-endian bytes: stable across Rust versions.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for w in words {
            for b in w.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Every address range the chip decodes, with the field that defines it.
    pub fn address_ranges(&self) -> Vec<(String, u64, u64)> {
        let m = &self.memory;
        let d = &self.devices;
        let mut v = vec![
            ("memory.bootrom".to_string(), m.bootrom.base, m.bootrom.size),
            ("memory.ddr".to_string(), m.ddr.base, m.ddr.size),
            ("devices.finisher".to_string(), d.finisher.base, window::FINISHER),
            ("devices.clint".to_string(), d.clint.base, window::CLINT),
            ("devices.plic".to_string(), d.plic.base, window::PLIC),
            ("devices.uart".to_string(), d.uart.base, window::UART),
            ("devices.trace".to_string(), d.trace.base, window::TRACE),
            ("devices.mailbox".to_string(), d.mailbox.base, self.mailbox_window()),
            ("devices.pcie".to_string(), d.pcie.base, window::PCIE),
            ("devices.dma".to_string(), d.dma.base, self.dma_window()),
            ("devices.bootcfg".to_string(), d.bootcfg.base, d.bootcfg.size),
            ("devices.nic".to_string(), d.nic.base, self.nic_window()),
            ("devices.crypto".to_string(), d.crypto.base, self.crypto_window()),
            ("devices.ec".to_string(), d.ec.base, self.ec_window()),
            ("devices.trng".to_string(), d.trng.base, window::TRNG),
            ("devices.spi".to_string(), d.spi.base, window::SPI),
            ("devices.otp".to_string(), d.otp.base, window::OTP),
            ("devices.ssd".to_string(), d.ssd.base, self.ssd_window()),
        ];
        for c in 0..self.chip.clusters {
            v.push((format!("memory.smem (cluster {c})"), self.smem_base(c), m.smem.size));
        }
        v
    }

    /// Checks that the firmware image and stacks sit below 2 GiB: RV64
    /// PC-relative addressing reaches +-2 GiB and defmt's string symbols
    /// sit near address 0. Firmware builds (dpu-hal, dpu-rt) require this;
    /// the simulator itself can run any layout.
    pub fn check_firmware_reach(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let m = &self.memory;
        if m.ddr.base + m.ddr.image_size > FIRMWARE_ADDRESS_LIMIT {
            return Err(ConfigError::field(
                f,
                "memory.ddr.base",
                format!(
                    "the firmware image region ends at {:#x}, above 2 GiB; RV64 PC-relative addressing and \
                     defmt's low string symbols need the image below {FIRMWARE_ADDRESS_LIMIT:#x}",
                    m.ddr.base + m.ddr.image_size
                ),
            ));
        }
        let last_smem_end = self.smem_base(self.chip.clusters - 1) + m.smem.size;
        if last_smem_end > FIRMWARE_ADDRESS_LIMIT {
            return Err(ConfigError::field(
                f,
                "memory.smem.base",
                format!("cluster SMEMs end at {last_smem_end:#x}; stacks must be below {FIRMWARE_ADDRESS_LIMIT:#x}"),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let err = |field: &str, msg: String| Err(ConfigError::field(f, field, msg));
        let c = &self.chip;
        if c.name.is_empty() {
            return err("chip.name", "must not be empty".into());
        }
        if c.clusters == 0 || c.clusters > 64 {
            return err("chip.clusters", format!("{} is out of range 1..=64", c.clusters));
        }
        if c.cores_per_cluster == 0 || c.cores_per_cluster > 64 {
            return err(
                "chip.cores_per_cluster",
                format!("{} is out of range 1..=64", c.cores_per_cluster),
            );
        }
        if self.harts() > 1024 {
            return err("chip.clusters", format!("{} harts in total; at most 1024 are supported", self.harts()));
        }
        if c.clock_hz == 0 {
            return err("chip.clock_hz", "must be non-zero".into());
        }
        if c.timebase_hz == 0 || c.timebase_hz > c.clock_hz || c.clock_hz % c.timebase_hz != 0 {
            return err(
                "chip.timebase_hz",
                format!("must be non-zero and divide clock_hz ({}) evenly", c.clock_hz),
            );
        }
        if c.control_clusters.is_empty() {
            return err("chip.control_clusters", "at least one control cluster is needed".into());
        }
        for &cl in &c.control_clusters {
            if cl >= c.clusters {
                return err("chip.control_clusters", format!("cluster {cl} does not exist (clusters = {})", c.clusters));
            }
        }
        if !c.control_clusters.contains(&0) {
            return err("chip.control_clusters", "cluster 0 must be a control cluster (hart 0 boots the chip)".into());
        }

        let m = &self.memory;
        for (field, base, size, align) in [
            ("memory.bootrom", m.bootrom.base, m.bootrom.size, 0x1000u64),
            ("memory.smem", m.smem.base, m.smem.size, 0x1000),
            ("memory.ddr", m.ddr.base, m.ddr.size, 0x1000),
        ] {
            if size == 0 || size % align != 0 {
                return err(&format!("{field}.size"), format!("{size:#x} must be a non-zero multiple of {align:#x}"));
            }
            if base % align != 0 {
                return err(&format!("{field}.base"), format!("{base:#x} must be aligned to {align:#x}"));
            }
            if base.checked_add(size).is_none() {
                return err(&format!("{field}.size"), "region wraps around the address space".into());
            }
        }
        if m.smem.stride < m.smem.size {
            return err(
                "memory.smem.stride",
                format!("{:#x} is smaller than memory.smem.size {:#x}: cluster SMEMs would overlap", m.smem.stride, m.smem.size),
            );
        }
        if m.bootrom.size < 64 {
            return err("memory.bootrom.size", "must hold the 64-byte reset stub".into());
        }
        if m.ddr.image_size == 0 || m.ddr.image_size > m.ddr.size || m.ddr.image_size % 0x1000 != 0 {
            return err(
                "memory.ddr.image_size",
                format!("{:#x} must be a non-zero multiple of 0x1000 no larger than memory.ddr.size", m.ddr.image_size),
            );
        }
        let fw = &self.firmware;
        if fw.ddr_heap_size == 0 || fw.ddr_heap_size % 0x1000 != 0 || m.ddr.image_size + fw.ddr_heap_size >= m.ddr.size {
            return err(
                "firmware.ddr_heap_size",
                format!(
                    "{:#x} must be a non-zero multiple of 0x1000 leaving DDR for RAM namespaces (memory.ddr.size {:#x} - image_size {:#x})",
                    fw.ddr_heap_size, m.ddr.size, m.ddr.image_size
                ),
            );
        }
        if fw.stack_size < 0x1000 || fw.stack_size % 16 != 0 {
            return err("firmware.stack_size", format!("{:#x} must be >= 0x1000 and 16-byte aligned", fw.stack_size));
        }
        if fw.stack_size * u64::from(c.cores_per_cluster) > m.smem.size {
            return err(
                "firmware.stack_size",
                format!(
                    "{} stacks of {:#x} do not fit in memory.smem.size {:#x}",
                    c.cores_per_cluster, fw.stack_size, m.smem.size
                ),
            );
        }

        let d = &self.devices;
        if d.plic.sources == 0 || d.plic.sources > 1023 {
            return err("devices.plic.sources", format!("{} is out of range 1..=1023", d.plic.sources));
        }
        if d.uart.irq == 0 || d.uart.irq > d.plic.sources {
            return err("devices.uart.irq", format!("{} is not a PLIC source (1..={})", d.uart.irq, d.plic.sources));
        }
        let mb_last = u64::from(d.mailbox.irq_base) + u64::from(self.harts()) - 1;
        if d.mailbox.irq_base == 0 || mb_last > u64::from(d.plic.sources) {
            return err(
                "devices.mailbox.irq_base",
                format!("sources {}..={} (one per hart) must be PLIC sources 1..={}", d.mailbox.irq_base, mb_last, d.plic.sources),
            );
        }
        if (u64::from(d.mailbox.irq_base)..=mb_last).contains(&u64::from(d.uart.irq)) {
            return err("devices.uart.irq", format!("{} collides with the mailbox sources", d.uart.irq));
        }
        for (field, base) in [
            ("devices.finisher.base", d.finisher.base),
            ("devices.clint.base", d.clint.base),
            ("devices.plic.base", d.plic.base),
            ("devices.uart.base", d.uart.base),
            ("devices.trace.base", d.trace.base),
            ("devices.mailbox.base", d.mailbox.base),
            ("devices.pcie.base", d.pcie.base),
            ("devices.dma.base", d.dma.base),
            ("devices.bootcfg.base", d.bootcfg.base),
            ("devices.nic.base", d.nic.base),
            ("devices.crypto.base", d.crypto.base),
            ("devices.ec.base", d.ec.base),
            ("devices.trng.base", d.trng.base),
            ("devices.spi.base", d.spi.base),
            ("devices.otp.base", d.otp.base),
            ("devices.ssd.base", d.ssd.base),
        ] {
            if base % 0x1000 != 0 {
                return err(field, format!("{base:#x} must be 4 KiB aligned"));
            }
        }

        // No two decoded ranges may overlap.
        let mut ranges = self.address_ranges();
        ranges.sort_by_key(|r| r.1);
        for w in ranges.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if a.1 + a.2 > b.1 {
                return err(
                    &format!("{}.base", b.0.split(' ').next().unwrap_or(&b.0)),
                    format!("{} at {:#x} overlaps {} ({:#x}..{:#x})", b.0, b.1, a.0, a.1, a.1 + a.2),
                );
            }
        }

        let dma = &d.dma;
        if dma.engines == 0 || dma.engines > 64 {
            return err("devices.dma.engines", format!("{} is out of range 1..=64", dma.engines));
        }
        if dma.channels_per_engine == 0 || dma.channels_per_engine > 64 {
            return err("devices.dma.channels_per_engine", format!("{} is out of range 1..=64", dma.channels_per_engine));
        }
        if dma.bytes_per_cycle == 0 {
            return err("devices.dma.bytes_per_cycle", "must be non-zero".into());
        }
        let nic = &d.nic;
        if nic.ports == 0 || nic.ports > 8 {
            return err("devices.nic.ports", format!("{} is out of range 1..=8", nic.ports));
        }
        // One queue pair per data-plane core plus one for the control plane.
        let data_cores = self.harts() - c.control_clusters.len() as u32 * c.cores_per_cluster;
        if nic.queues_per_port <= data_cores || nic.queues_per_port > 128 {
            return err(
                "devices.nic.queues_per_port",
                format!("{} must be more than the {data_cores} data-plane cores (one queue each, plus the control plane's) and at most 128", nic.queues_per_port),
            );
        }
        if nic.bytes_per_cycle == 0 {
            return err("devices.nic.bytes_per_cycle", "must be non-zero".into());
        }
        let cr = &d.crypto;
        if cr.engines == 0 || cr.engines > 64 {
            return err("devices.crypto.engines", format!("{} is out of range 1..=64", cr.engines));
        }
        let max_q = (window::CRYPTO_ENGINE - window::CRYPTO_QUEUES) / window::ACCEL_QUEUE;
        if cr.queues_per_engine == 0 || u64::from(cr.queues_per_engine) > max_q {
            return err("devices.crypto.queues_per_engine", format!("{} is out of range 1..={max_q}", cr.queues_per_engine));
        }
        if cr.key_slots == 0 || cr.key_slots > 1024 {
            return err("devices.crypto.key_slots", format!("{} is out of range 1..=1024", cr.key_slots));
        }
        if cr.aes_bytes_per_cycle == 0 {
            return err("devices.crypto.aes_bytes_per_cycle", "must be non-zero".into());
        }
        if cr.sha_bytes_per_cycle == 0 {
            return err("devices.crypto.sha_bytes_per_cycle", "must be non-zero".into());
        }
        let ec = &d.ec;
        if ec.queues == 0 || ec.queues > 256 {
            return err("devices.ec.queues", format!("{} is out of range 1..=256", ec.queues));
        }
        // Fragment bitmaps are 64 bits wide (`dpu_hal::regs::ec`).
        if ec.max_k == 0 || ec.max_m == 0 || ec.max_k + ec.max_m > 64 {
            return err("devices.ec.max_k", format!("k {} and m {} must be non-zero with k + m <= 64", ec.max_k, ec.max_m));
        }
        if ec.bytes_per_cycle == 0 {
            return err("devices.ec.bytes_per_cycle", "must be non-zero".into());
        }
        let tr = &d.trng;
        if tr.irq == 0 || tr.irq > d.plic.sources || tr.irq == d.uart.irq || (u64::from(d.mailbox.irq_base)..=mb_last).contains(&u64::from(tr.irq)) {
            return err("devices.trng.irq", format!("{} must be a free PLIC source (1..={}, not the UART's or a mailbox's)", tr.irq, d.plic.sources));
        }
        if tr.min_entropy_bits == 0 || tr.min_entropy_bits > 8 {
            return err("devices.trng.min_entropy_bits", format!("{} is out of range 1..=8 (bits per 8-bit sample)", tr.min_entropy_bits));
        }
        if d.bootcfg.size < 0x1000 || d.bootcfg.size % 0x1000 != 0 {
            return err("devices.bootcfg.size", format!("{:#x} must be a non-zero multiple of 0x1000", d.bootcfg.size));
        }
        // Key hash (8 words), lock word, anti-rollback counter (8 words at 16).
        if d.ssd.slots == 0 || d.ssd.slots > 64 {
            return err("devices.ssd.slots", format!("{} is out of range 1..=64", d.ssd.slots));
        }
        if d.otp.words < 24 || d.otp.words * 4 > 0x800 {
            return err("devices.otp.words", format!("{} must be 24..=512 (key hash, lock and rollback counter words)", d.otp.words));
        }
        if fw.bootloader_size < 0x1_0000 || fw.bootloader_size % 0x1000 != 0 || fw.bootloader_size >= m.ddr.image_size {
            return err(
                "firmware.bootloader_size",
                format!("{:#x} must be a multiple of 0x1000, at least 0x10000 and smaller than memory.ddr.image_size", fw.bootloader_size),
            );
        }

        let t = &self.timing;
        if t.core.alu == 0 {
            return err("timing.core.alu", "must be at least 1 cycle".into());
        }
        let ml = &t.memory;
        if !ml.l1d_line.is_power_of_two() || ml.l1d_line < 8 {
            return err("timing.memory.l1d_line", format!("{} must be a power of two >= 8", ml.l1d_line));
        }
        if !ml.l1d_size.is_power_of_two() || ml.l1d_size < ml.l1d_line {
            return err("timing.memory.l1d_size", format!("{} must be a power of two >= l1d_line", ml.l1d_size));
        }
        if t.contention.smem_accesses_per_cycle == 0 {
            return err("timing.contention.smem_accesses_per_cycle", "must be non-zero".into());
        }
        if t.contention.ddr_bytes_per_cycle == 0 {
            return err("timing.contention.ddr_bytes_per_cycle", "must be non-zero".into());
        }
        if self.noc.positions.len() != c.clusters as usize {
            return err(
                "noc.positions",
                format!("has {} entries; chip.clusters is {}", self.noc.positions.len(), c.clusters),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_text() -> String {
        std::fs::read_to_string(crate::default_chip_path()).unwrap()
    }

    #[test]
    fn default_chip_is_valid() {
        let chip = Chip::load(crate::default_chip_path()).unwrap();
        assert_eq!(chip.harts(), 80);
        assert_eq!(chip.cluster_of(17), 1);
        assert!(chip.is_control_cluster(0));
        assert!(!chip.is_control_cluster(3));
        assert_eq!(chip.smem_base(2), 0x2200_0000);
    }

    fn reject(patch: (&str, &str)) -> String {
        let text = default_text().replacen(patch.0, patch.1, 1);
        assert_ne!(text, default_text(), "patch {:?} did not apply", patch.0);
        Chip::parse("test.toml", &text).unwrap_err().to_string()
    }

    #[test]
    fn wrong_type_names_field() {
        let e = reject(("clusters = 5", "clusters = \"five\""));
        assert!(e.contains("test.toml"), "{e}");
        assert!(e.contains("chip.clusters"), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = reject(("timebase_hz = 100_000_000\n", ""));
        assert!(e.contains("chip") && e.contains("timebase_hz"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let e = reject(("cores_per_cluster = 16", "cores_per_cluster = 16\ncorse = 3"));
        assert!(e.contains("corse"), "{e}");
    }

    #[test]
    fn overlapping_devices_are_rejected() {
        let e = reject(("base = 0x1000_1000", "base = 0x1000_0000"));
        assert!(e.contains("overlaps"), "{e}");
        assert!(e.contains("devices."), "{e}");
    }

    #[test]
    fn image_above_2gib_is_rejected_for_firmware_builds() {
        let text = default_text().replacen("base = 0x4000_0000", "base = 0x9000_0000", 1);
        let chip = Chip::parse("test.toml", &text).expect("the simulator accepts any layout");
        let e = chip.check_firmware_reach().unwrap_err().to_string();
        assert!(e.contains("memory.ddr.base") && e.contains("2 GiB"), "{e}");
        assert!(Chip::parse("ok.toml", &default_text()).unwrap().check_firmware_reach().is_ok());
    }

    #[test]
    fn smem_stride_smaller_than_size_is_rejected() {
        let e = reject(("stride = 0x0100_0000", "stride = 0x0010_0000"));
        assert!(e.contains("memory.smem.stride"), "{e}");
    }

    #[test]
    fn noc_positions_must_match_clusters() {
        let e = reject(("clusters = 5", "clusters = 4"));
        assert!(e.contains("noc.positions"), "{e}");
    }

    #[test]
    fn mailbox_irqs_must_fit_plic() {
        let e = reject(("sources = 255", "sources = 100"));
        assert!(e.contains("devices.mailbox.irq_base"), "{e}");
    }

    #[test]
    fn accelerator_fields_are_checked() {
        let e = reject(("queues_per_engine = 80", "queues_per_engine = 200"));
        assert!(e.contains("devices.crypto.queues_per_engine"), "{e}");
        let e = reject(("max_m = 4", "max_m = 40"));
        assert!(e.contains("devices.ec.max_k"), "{e}");
        let e = reject(("irq = 11", "irq = 70"));
        assert!(e.contains("devices.trng.irq"), "{e}");
        let e = reject(("min_entropy_bits = 4", "min_entropy_bits = 9"));
        assert!(e.contains("devices.trng.min_entropy_bits"), "{e}");
        let chip = Chip::parse("ok", &default_text()).unwrap();
        assert_eq!(chip.devices.crypto.engines, 10);
        let moved = Chip::load(crate::default_chip_path().with_file_name("mppa80-moved.toml")).unwrap();
        assert_ne!(moved.devices.crypto.base, chip.devices.crypto.base);
    }

    #[test]
    fn fingerprint_tracks_layout_not_timing() {
        let a = Chip::parse("a", &default_text()).unwrap();
        let b = Chip::parse("b", &default_text().replacen("ddr = 100", "ddr = 150", 1)).unwrap();
        let c = Chip::parse("c", &default_text().replacen("base = 0x1000_0000", "base = 0x1000_4000", 1)).unwrap();
        assert_eq!(a.layout_fingerprint(), b.layout_fingerprint());
        assert_ne!(a.layout_fingerprint(), c.layout_fingerprint());
    }
}
