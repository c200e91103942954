//! Generates `memory_map.rs` from the chip description in `targets/chips/`.
//!
//! The chip file is `$DPU_CHIP` if set (a path), else the default chip. The
//! same file feeds the linker script (dpu-rt) and the simulator.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let chip = dpu_targets::build_firmware_chip();
    let board = dpu_targets::build_board();
    let c = &chip.chip;
    let m = &chip.memory;
    let d = &chip.devices;
    let mut control_mask = 0u64;
    for &cl in &c.control_clusters {
        control_mask |= 1 << cl;
    }
    let mut s = String::new();
    let mut k = |name: &str, ty: &str, value: String, doc: &str| {
        writeln!(s, "/// {doc}\npub const {name}: {ty} = {value};").unwrap();
    };
    k("CHIP_NAME", "&str", format!("{:?}", c.name), "Chip description this image was built for.");
    k("CHIP_FINGERPRINT", "u64", format!("{:#x}", chip.layout_fingerprint()), "Hash of the chip layout; the simulator checks it.");
    k("CLUSTERS", "usize", c.clusters.to_string(), "Number of clusters.");
    k("CORES_PER_CLUSTER", "usize", c.cores_per_cluster.to_string(), "Cores per cluster.");
    k("HARTS", "usize", chip.harts().to_string(), "Total harts; `mhartid = cluster * CORES_PER_CLUSTER + core`.");
    k("CLOCK_HZ", "u64", c.clock_hz.to_string(), "Core clock.");
    k("TIMEBASE_HZ", "u64", c.timebase_hz.to_string(), "`mtime` tick rate.");
    k("CONTROL_CLUSTER_MASK", "u64", format!("{control_mask:#x}"), "Bit c set: cluster c runs the control plane.");
    k("BOOTROM_BASE", "usize", format!("{:#x}", m.bootrom.base), "Boot ROM base.");
    k("SMEM_BASE", "usize", format!("{:#x}", m.smem.base), "Cluster 0 SMEM base.");
    k("SMEM_STRIDE", "usize", format!("{:#x}", m.smem.stride), "Distance between cluster SMEMs.");
    k("SMEM_SIZE", "usize", format!("{:#x}", m.smem.size), "SMEM size per cluster.");
    k("DDR_BASE", "usize", format!("{:#x}", m.ddr.base), "DDR base.");
    k("DDR_SIZE", "usize", format!("{:#x}", m.ddr.size), "DDR size.");
    k("IMAGE_SIZE", "usize", format!("{:#x}", m.ddr.image_size), "DDR bytes reserved for the firmware image.");
    k("STACK_SIZE", "usize", format!("{:#x}", chip.firmware.stack_size), "Per-hart stack size (top of the hart's cluster SMEM).");
    k("DDR_HEAP_SIZE", "usize", format!("{:#x}", chip.firmware.ddr_heap_size), "DDR after the image for the firmware's own allocations (its last HANDOVER_SIZE bytes excepted).");
    // The controller handover record (firmware activation without reset):
    // the top of the heap's range, never allocated, so both images agree.
    let handover_size: u64 = 0x8_0000;
    k("HANDOVER_SIZE", "usize", format!("{handover_size:#x}"), "Bytes of the controller handover record region (`dpu_nvme::handover`).");
    k("HANDOVER_BASE", "usize", format!("{:#x}", m.ddr.base + m.ddr.image_size + chip.firmware.ddr_heap_size - handover_size), "DDR the firmware leaves the next image its controllers' state in (activation without reset); not part of the heap.");
    let (pool_base, pool_size) = chip.ram_namespace_pool();
    k("RAM_NAMESPACE_BASE", "usize", format!("{pool_base:#x}"), "Start of the DDR that RAM namespaces are carved from.");
    k("RAM_NAMESPACE_SIZE", "usize", format!("{pool_size:#x}"), "Bytes of DDR for RAM namespaces.");
    k("MAX_NAMESPACES", "usize", dpu_targets::MAX_NAMESPACES.to_string(), "Namespace records the boot configuration may carry.");
    k("MAX_NSID", "u32", dpu_targets::MAX_NSID.to_string(), "Highest namespace ID of a function.");
    k("MAX_REMOTE_CONTROLLERS", "usize", dpu_targets::MAX_REMOTE_CONTROLLERS.to_string(), "Remote NVMe-oF controllers the firmware connects to.");
    k("MAX_PORTS", "usize", dpu_targets::MAX_PORTS.to_string(), "DPU port addresses the boot configuration may carry.");
    k("MAX_EC_VOLUMES", "usize", dpu_targets::MAX_EC_VOLUMES.to_string(), "Erasure-coded volume records the boot configuration may carry.");
    k("MAX_EC_MEMBERS", "usize", dpu_targets::MAX_EC_MEMBERS.to_string(), "Members (k + m) of one erasure-coded volume.");
    k("TARGET_LISTENERS", "usize", dpu_targets::TARGET_LISTENERS.to_string(), "NVMe/TCP target listening sockets per core per (port, TCP port).");
    k("DISCOVERY_LISTENERS", "usize", dpu_targets::DISCOVERY_LISTENERS.to_string(), "Discovery service listening sockets per core per port.");
    k("TARGET_SOCKETS", "usize", dpu_targets::TARGET_SOCKETS.to_string(), "NVMe/TCP target sockets per core in all.");
    k("MAX_SUBSYSTEMS", "usize", dpu_targets::MAX_SUBSYSTEMS.to_string(), "NVMe/TCP target subsystems the configuration may carry.");
    k("MAX_SUBSYSTEM_NAMESPACES", "usize", dpu_targets::MAX_SUBSYSTEM_NAMESPACES.to_string(), "Namespaces of one target subsystem.");
    k("MAX_ALLOWED_HOSTS", "usize", dpu_targets::MAX_ALLOWED_HOSTS.to_string(), "Host NQNs on one subsystem's allow-list (none: any host).");
    k("FINISHER_BASE", "usize", format!("{:#x}", d.finisher.base), "Test finisher base.");
    k("CLINT_BASE", "usize", format!("{:#x}", d.clint.base), "CLINT base.");
    k("PLIC_BASE", "usize", format!("{:#x}", d.plic.base), "PLIC base.");
    k("PLIC_SOURCES", "u32", d.plic.sources.to_string(), "Number of PLIC sources (ids 1..=N).");
    k("UART_BASE", "usize", format!("{:#x}", d.uart.base), "Console UART base.");
    k("UART_IRQ", "u32", d.uart.irq.to_string(), "Console UART PLIC source.");
    k("TRACE_BASE", "usize", format!("{:#x}", d.trace.base), "defmt trace port base.");
    k("MAILBOX_BASE", "usize", format!("{:#x}", d.mailbox.base), "Mailbox block base.");
    k("MAILBOX_IRQ_BASE", "u32", d.mailbox.irq_base.to_string(), "PLIC source of hart 0's mailbox; hart h uses base + h.");
    k("PCIE_BASE", "usize", format!("{:#x}", d.pcie.base), "PCIe endpoint controller (DPU side).");
    k("DMA_BASE", "usize", format!("{:#x}", d.dma.base), "DMA engine registers.");
    k("DMA_ENGINES", "usize", d.dma.engines.to_string(), "DMA engines.");
    k("DMA_CHANNELS_PER_ENGINE", "usize", d.dma.channels_per_engine.to_string(), "Channels per DMA engine.");
    k("DMA_CHANNELS", "usize", chip.dma_channels().to_string(), "DMA channels in total (channel c is on engine c / per_engine).");
    k("NIC_BASE", "usize", format!("{:#x}", d.nic.base), "Ethernet controller registers.");
    k("NIC_PORTS", "usize", d.nic.ports.to_string(), "Ethernet ports of the NIC.");
    k("NIC_QUEUES", "usize", d.nic.queues_per_port.to_string(), "Queue pairs per port.");
    let cr = &d.crypto;
    k("CRYPTO_BASE", "usize", format!("{:#x}", cr.base), "Crypto engine registers.");
    k("CRYPTO_ENGINES", "usize", cr.engines.to_string(), "Crypto engines.");
    k("CRYPTO_QUEUES_PER_ENGINE", "usize", cr.queues_per_engine.to_string(), "Queues of each crypto engine (one per hart).");
    k("CRYPTO_KEY_SLOTS", "usize", cr.key_slots.to_string(), "Key slots of each crypto engine.");
    k("EC_BASE", "usize", format!("{:#x}", d.ec.base), "Erasure-coding engine registers.");
    k("EC_QUEUES", "usize", d.ec.queues.to_string(), "Queues of the erasure-coding engine.");
    k("EC_MAX_K", "usize", d.ec.max_k.to_string(), "Most data fragments of an EC descriptor.");
    k("EC_MAX_M", "usize", d.ec.max_m.to_string(), "Most parity fragments of an EC descriptor.");
    k("SSD_BASE", "usize", format!("{:#x}", d.ssd.base), "Local NVMe SSD window: SSD i's BAR0 at SSD_BASE + i * regs::ssd::WINDOW.");
    k("SSD_SLOTS", "usize", d.ssd.slots.to_string(), "SSD slots of the local SSD window.");
    k("TRNG_BASE", "usize", format!("{:#x}", d.trng.base), "True random number generator registers.");
    k("TRNG_IRQ", "u32", d.trng.irq.to_string(), "TRNG health-failure PLIC source.");
    k("BOOTCFG_BASE", "usize", format!("{:#x}", d.bootcfg.base), "Boot configuration blob.");
    k("BOOTCFG_SIZE", "usize", format!("{:#x}", d.bootcfg.size), "Boot configuration window size.");
    // Secure boot: flash controller, fuses, bootloader region.
    k("SPI_BASE", "usize", format!("{:#x}", d.spi.base), "SPI controller of the boot flash.");
    k("OTP_BASE", "usize", format!("{:#x}", d.otp.base), "OTP fuse controller.");
    k("OTP_WORDS", "usize", d.otp.words.to_string(), "32-bit OTP fuse words.");
    let (bl_base, bl_size) = chip.bootloader_region();
    k("BOOTLOADER_BASE", "usize", format!("{bl_base:#x}"), "Where the first-stage bootloader runs (top of the image region); its first 4 KiB are the hand-off block.");
    k("BOOTLOADER_SIZE", "usize", format!("{bl_size:#x}"), "Bytes of the bootloader region.");
    k("BOOTINFO_BASE", "usize", format!("{bl_base:#x}"), "Hand-off block the bootloader leaves for the firmware (`regs::bootinfo`).");
    k("FIRMWARE_IMAGE_SIZE", "usize", format!("{:#x}", m.ddr.image_size - chip.firmware.bootloader_size), "Bytes of DDR the firmware image may occupy (below the bootloader region).");
    let p = &board.pcie;
    k("BOARD_NAME", "&str", format!("{:?}", board.board.name), "Board description this image was built for.");
    k("BOARD_FINGERPRINT", "u64", format!("{:#x}", board.layout_fingerprint()), "Hash of the board facts baked in.");
    k("TOTAL_VFS", "usize", p.total_vfs.to_string(), "SR-IOV TotalVFs of the PF.");
    k("MAX_FUNCTIONS", "usize", p.max_functions().to_string(), "PF + VFs.");
    k("PF_IO_QUEUES", "usize", p.pf_io_queues.to_string(), "I/O queue pairs of the PF.");
    k("VF_IO_QUEUES", "usize", p.vf_io_queues.to_string(), "I/O queue pairs of each VF.");
    k("PF_MSIX_VECTORS", "usize", p.pf_msix_vectors.to_string(), "MSI-X vectors of the PF.");
    k("VF_MSIX_VECTORS", "usize", p.vf_msix_vectors.to_string(), "MSI-X vectors of each VF.");
    k("PCI_VENDOR_ID", "u16", format!("{:#06x}", p.vendor_id), "PCI vendor ID of the functions.");
    let f = &board.flash;
    k("FLASH_SIZE", "usize", format!("{:#x}", f.size), "Boot flash bytes.");
    k("FLASH_JEDEC_ID", "[u8; 3]", format!("{:?}", f.jedec_id), "READ ID answer of the boot flash part.");
    k("FLASH_PAGE_SIZE", "usize", f.page_size.to_string(), "Program page of the boot flash.");
    k("FLASH_SUBSECTOR_SIZE", "usize", format!("{:#x}", f.subsector_size), "Smallest erase unit.");
    k("FLASH_SECTOR_SIZE", "usize", format!("{:#x}", f.sector_size), "Sector erase unit.");
    k("FLASH_MAX_SCK_HZ", "u64", f.max_sck_hz.to_string(), "Highest SPI clock the flash takes.");
    k("FLASH_PAGE_PROGRAM_NS", "u64", f.page_program_ns.to_string(), "Typical page program time.");
    k("FLASH_SUBSECTOR_ERASE_NS", "u64", f.subsector_erase_ns.to_string(), "Typical subsector erase time.");
    k("FLASH_SECTOR_ERASE_NS", "u64", f.sector_erase_ns.to_string(), "Typical sector erase time.");
    for (name, part) in f.layout.all() {
        let n = name.trim_start_matches("flash.layout.").to_uppercase();
        k(&format!("FLASH_{n}_OFFSET"), "usize", format!("{:#x}", part.offset), &format!("Offset of the `{name}` partition."));
        k(&format!("FLASH_{n}_SIZE"), "usize", format!("{:#x}", part.size), &format!("Bytes of the `{name}` partition."));
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("memory_map.rs");
    std::fs::write(out, s).unwrap();
}
