//! Register layouts of the on-chip devices (offsets from each device base,
//! bit positions). Used by the firmware drivers and the simulator models.

/// Machine-mode CSR numbers and bits (RISC-V privileged spec v1.12 §2.2, §3.1).
pub mod csr {
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const MCYCLE: u16 = 0xB00;
    pub const MINSTRET: u16 = 0xB02;
    pub const CYCLE: u16 = 0xC00;
    pub const TIME: u16 = 0xC01;
    pub const INSTRET: u16 = 0xC02;
    pub const MVENDORID: u16 = 0xF11;
    pub const MARCHID: u16 = 0xF12;
    pub const MIMPID: u16 = 0xF13;
    pub const MHARTID: u16 = 0xF14;

    /// mstatus.MIE (§3.1.6.1).
    pub const MSTATUS_MIE: u64 = 1 << 3;
    /// mstatus.MPIE.
    pub const MSTATUS_MPIE: u64 = 1 << 7;
    /// mstatus.MPP (two bits).
    pub const MSTATUS_MPP: u64 = 3 << 11;

    /// mip/mie bit numbers (§3.1.9).
    pub const IRQ_MSI: u64 = 3;
    pub const IRQ_MTI: u64 = 7;
    pub const IRQ_MEI: u64 = 11;
    pub const MIP_MSIP: u64 = 1 << IRQ_MSI;
    pub const MIP_MTIP: u64 = 1 << IRQ_MTI;
    pub const MIP_MEIP: u64 = 1 << IRQ_MEI;

    /// mcause interrupt flag (bit XLEN-1).
    pub const MCAUSE_INTERRUPT: u64 = 1 << 63;

    /// Exception codes (§3.1.15, table 3.6).
    pub const EXC_INST_MISALIGNED: u64 = 0;
    pub const EXC_INST_ACCESS: u64 = 1;
    pub const EXC_ILLEGAL: u64 = 2;
    pub const EXC_BREAKPOINT: u64 = 3;
    pub const EXC_LOAD_MISALIGNED: u64 = 4;
    pub const EXC_LOAD_ACCESS: u64 = 5;
    pub const EXC_STORE_MISALIGNED: u64 = 6;
    pub const EXC_STORE_ACCESS: u64 = 7;
    pub const EXC_ECALL_M: u64 = 11;
}

/// Core-local interruptor (SiFive CLINT layout).
pub mod clint {
    /// `msip[hart]`: u32 at MSIP + 4 * hart; bit 0 raises mip.MSIP.
    pub const MSIP: u64 = 0x0000;
    /// `mtimecmp[hart]`: u64 at MTIMECMP + 8 * hart.
    pub const MTIMECMP: u64 = 0x4000;
    /// `mtime`: u64, counts at `timebase_hz`.
    pub const MTIME: u64 = 0xBFF8;
}

/// Platform-level interrupt controller (RISC-V PLIC spec 1.0.0 §3 memory map).
/// Context `h` is hart `h`'s machine mode.
pub mod plic {
    /// u32 priority per source at PRIORITY + 4 * id (0 = never interrupts).
    pub const PRIORITY: u64 = 0x0000;
    /// Pending bits, 32 sources per u32 word.
    pub const PENDING: u64 = 0x1000;
    /// Enable bits for context c at ENABLE + ENABLE_STRIDE * c.
    pub const ENABLE: u64 = 0x2000;
    pub const ENABLE_STRIDE: u64 = 0x80;
    /// Threshold of context c at CONTEXT + CONTEXT_STRIDE * c; claim/complete at +CLAIM.
    pub const CONTEXT: u64 = 0x20_0000;
    pub const CONTEXT_STRIDE: u64 = 0x1000;
    pub const THRESHOLD: u64 = 0x0;
    pub const CLAIM: u64 = 0x4;
}

/// 16550-compatible UART, byte registers.
pub mod uart {
    /// Transmit holding (write) / receive buffer (read).
    pub const THR: u64 = 0;
    pub const RBR: u64 = 0;
    /// Interrupt enable.
    pub const IER: u64 = 1;
    /// Line status.
    pub const LSR: u64 = 5;
    pub const LSR_DATA_READY: u8 = 0x01;
    pub const LSR_THR_EMPTY: u8 = 0x20;
    pub const LSR_TX_IDLE: u8 = 0x40;
}

/// Test finisher (SiFive "test" device): one u32 register at offset 0.
pub mod finisher {
    pub const REG: u64 = 0;
    /// Low 16 bits: command; high 16 bits: code.
    pub const PASS: u32 = 0x5555;
    pub const FAIL: u32 = 0x3333;
    /// Our extension: the writing hart took a fatal trap; the simulator prints
    /// a fault report from the trap it recorded and exits non-zero.
    pub const FAULT: u32 = 0x4444;
    /// Our extension: the firmware rejected the boot configuration; the
    /// high 16 bits say why (`bootcfg::REJECT_*` << 12 | record index).
    pub const CONFIG_REJECTED: u32 = 0x6666;
    /// Our extension: the bootloader refused every firmware slot (its
    /// boot log says why); a card would wait for recovery.
    pub const NO_BOOTABLE_IMAGE: u32 = 0x7777;
    /// Our extension (the system controller's reset): a warm restart of
    /// the card. Every hart restarts at the boot ROM, which verifies and
    /// loads the first-stage bootloader again; the card-internal devices
    /// (mailboxes, timers, interrupt controller, DMA engines, NIC queues,
    /// accelerators, the endpoint's doorbell steering and notifications)
    /// return to their reset state. The PCIe link, configuration space,
    /// BAR0 registers and doorbells, MSI-X tables, host memory, DDR and
    /// SMEM contents, the flash and the OTP stay. Used for firmware
    /// activation without reset (NVMe Base 2.0 §5.12, commit action 011b).
    pub const WARM_RESTART: u32 = 0x8888;
}

/// defmt trace port: DATA takes one byte of the writing hart's stream.
pub mod trace {
    pub const DATA: u64 = 0;
}

/// Mailboxes: one 16-byte slot per hart at `hart * SLOT`.
pub mod mailbox {
    pub const SLOT: u64 = 0x10;
    /// u64, write: OR the value into the target's pending doorbells.
    pub const DOORBELL: u64 = 0x0;
    /// u64, read: pending doorbells; write: clear the bits written (W1C).
    pub const PENDING: u64 = 0x8;
}

/// PCIe endpoint controller, DPU side (base `memory_map::PCIE_BASE`).
///
/// The host sees each function's BAR0 (see [`bar0`]); the endpoint keeps a
/// shadow copy the firmware reads and writes at `BAR_SHADOW + fn * BAR_SIZE`.
/// Host writes to a doorbell push a notification to the hart the doorbell is
/// steered to; host writes to other registers notify the function's admin hart.
pub mod pcie {
    /// u32 RO: bits 15:0 TotalVFs, bits 31:16 functions (PF + TotalVFs).
    pub const INFO: u64 = 0x0000;
    /// u32 RO: VFs the host has enabled (NumVFs while VF Enable is set, else 0).
    pub const NUM_VFS: u64 = 0x0008;
    /// u32 RW: the VFs the PF's SR-IOV capability offers the host: its
    /// TotalVFs and InitialVFs (PCIe Base 4.0 §9.3.3.10 and §9.3.3.11:
    /// read-only to the host, set by the device). Bits 15:0 the value
    /// (reset: the endpoint's maximum, `INFO` bits 15:0; a write above it
    /// is clamped to it); bit 16 (RO) VF Enable as the host set it. A
    /// write while VF Enable is set is ignored: the capability does not
    /// change under enabled VFs.
    pub const TOTAL_VFS: u64 = 0x0010;
    pub const TOTAL_VFS_VF_ENABLE: u32 = 1 << 16;
    /// u64 RO per hart at NOTIFY + 8 * hart: pops one notification (0 = none).
    pub const NOTIFY: u64 = 0x1000;
    /// Per-function control block at FN_CTRL + FN_CTRL_STRIDE * fn.
    pub const FN_CTRL: u64 = 0x1_0000;
    pub const FN_CTRL_STRIDE: u64 = 0x40;
    /// u32 RW: 1 = the firmware initialized the function (host may use it).
    pub const FN_READY: u64 = 0x00;
    /// u32 RW: hart that gets register-write and function events.
    pub const FN_ADMIN_HART: u64 = 0x04;
    /// u32 RO: function state (`FN_STATUS_*`).
    pub const FN_STATUS: u64 = 0x08;
    /// u32 WO: send MSI-X vector (pended in the PBA while masked).
    pub const FN_MSIX_TRIGGER: u64 = 0x0c;
    pub const FN_STATUS_PRESENT: u32 = 1 << 0;
    pub const FN_STATUS_MEMORY: u32 = 1 << 1;
    pub const FN_STATUS_BUS_MASTER: u32 = 1 << 2;
    pub const FN_STATUS_MSIX: u32 = 1 << 3;
    pub const FN_STATUS_MSIX_MASKED: u32 = 1 << 4;
    /// u16 per doorbell at STEER + 2 * (fn * DOORBELLS + db): hart that
    /// gets the doorbell's notifications (`STEER_ADMIN` = the admin hart).
    pub const STEER: u64 = 0x2_0000;
    pub const STEER_ADMIN: u16 = 0xffff;
    /// Doorbells per function: SQ y tail = 2y, CQ y head = 2y + 1 (y = 0..=64).
    pub const DOORBELLS: u64 = 130;
    /// Shadow BAR0 windows.
    pub const BAR_SHADOW: u64 = 0x10_0000;
    pub const BAR_SIZE: u64 = 0x4000;

    /// Notification word layout: valid bit, kind, function, index.
    pub const NOTE_VALID: u64 = 1 << 63;
    pub const NOTE_KIND_SHIFT: u32 = 48;
    pub const NOTE_FN_SHIFT: u32 = 32;
    /// Doorbell write: index = doorbell number (2y SQ tail, 2y+1 CQ head).
    pub const NOTE_DOORBELL: u64 = 1;
    /// Register write: index = BAR0 byte offset.
    pub const NOTE_REGISTER: u64 = 2;
    /// Function event: index = `EVENT_*`.
    pub const NOTE_FUNCTION: u64 = 3;
    /// VF Enable / NumVFs changed (sent to the PF's admin hart).
    pub const EVENT_VFS_CHANGED: u64 = 1;
    /// Function Level Reset requested by the host.
    pub const EVENT_FLR: u64 = 2;
    /// Bus master enable changed.
    pub const EVENT_BUS_MASTER: u64 = 3;

    /// Mailbox doorbell bit the endpoint rings when it queues a notification.
    pub const MAILBOX_BIT: u64 = 1 << 2;

    /// Encodes a notification.
    pub const fn note(kind: u64, function: u64, index: u64) -> u64 {
        NOTE_VALID | (kind << NOTE_KIND_SHIFT) | (function << NOTE_FN_SHIFT) | (index & 0xffff_ffff)
    }
}

/// Host-visible layout of each function's BAR0 (16 KiB, 64-bit memory BAR).
pub mod bar0 {
    pub const SIZE: u64 = 0x4000;
    /// Controller registers (NVMe "controller properties") live below this.
    pub const REGISTERS_END: u64 = 0x1000;
    /// Doorbell registers: 4 bytes each from here (DSTRD = 0).
    pub const DOORBELL: u64 = 0x1000;
    /// MSI-X table (16 bytes per vector) and PBA (BIR 0).
    pub const MSIX_TABLE: u64 = 0x2000;
    pub const MSIX_PBA: u64 = 0x3000;
}

/// Local NVMe SSDs on the card's downstream PCIe side (base
/// `memory_map::SSD_BASE`): SSD i's BAR0 at `SSD_BASE + i * WINDOW`, the
/// NVMe controller registers of NVMe Base 2.0 §3.1.4 ("controller
/// properties") with doorbells at `DOORBELL`, stride 4 bytes (CAP.DSTRD = 0).
/// Only the layout lives here; what the registers mean is the firmware
/// driver's and the simulator model's, each written from the spec.
pub mod ssd {
    /// BAR0 bytes mapped per SSD.
    pub const WINDOW: u64 = 0x4000;
    /// u64 Controller Capabilities (§3.1.4.1).
    pub const CAP: u64 = 0x00;
    /// u32 Version (§3.1.4.2).
    pub const VS: u64 = 0x08;
    /// u32 Controller Configuration (§3.1.4.5).
    pub const CC: u64 = 0x14;
    /// u32 Controller Status (§3.1.4.6).
    pub const CSTS: u64 = 0x1c;
    /// u32 Admin Queue Attributes (§3.1.4.8).
    pub const AQA: u64 = 0x24;
    /// u64 Admin Submission / Completion Queue Base Address (§3.1.4.9-10).
    pub const ASQ: u64 = 0x28;
    pub const ACQ: u64 = 0x30;
    /// Doorbells (§3.1.4.21-22): SQ y tail at `DOORBELL + 8y`, CQ y head
    /// at `DOORBELL + 8y + 4`.
    pub const DOORBELL: u64 = 0x1000;
    /// Queue pairs the window has doorbells for (admin + I/O).
    pub const MAX_QUEUES: u64 = (WINDOW - DOORBELL) / 8;

    pub const fn sq_tail(qid: u16) -> u64 {
        DOORBELL + 8 * qid as u64
    }

    pub const fn cq_head(qid: u16) -> u64 {
        DOORBELL + 8 * qid as u64 + 4
    }
}

/// DMA engines (base `memory_map::DMA_BASE`): channel c's registers at
/// `c * CHANNEL`. A channel owns a descriptor ring and a completion ring
/// in DPU memory; the owner hart is the only one to use it.
pub mod dma {
    pub const CHANNEL: u64 = 0x40;
    /// u64: descriptor ring address (32-byte descriptors).
    pub const RING_BASE: u64 = 0x00;
    /// u32: ring entries (power of two, 2..=4096).
    pub const RING_SIZE: u64 = 0x08;
    /// u32: bit 31 = notify; bits 15:0 = hart whose mailbox gets
    /// `MAILBOX_BIT` when a completion is written.
    pub const NOTIFY: u64 = 0x0c;
    pub const NOTIFY_ENABLE: u32 = 1 << 31;
    /// u64: completion ring address (16-byte entries, same size as the ring).
    pub const COMP_BASE: u64 = 0x10;
    /// u32 W: 1 = start the channel (resets indices and phase), 0 = stop.
    pub const CONTROL: u64 = 0x18;
    /// u32 RO: 1 = running, 2 = stopped on a bad configuration.
    pub const STATUS: u64 = 0x1c;
    /// u32 W: producer index (doorbell; counts descriptors, wraps at 2^32).
    pub const TAIL: u64 = 0x20;
    /// u32 RO: descriptors consumed.
    pub const HEAD: u64 = 0x24;
    /// Mailbox doorbell bit a channel rings on completion.
    pub const MAILBOX_BIT: u64 = 1 << 1;

    /// Descriptor layout (32 bytes).
    pub const DESC_SIZE: usize = 32;
    pub const DESC_HOST: usize = 0x00;
    pub const DESC_LOCAL: usize = 0x08;
    pub const DESC_LEN: usize = 0x10;
    pub const DESC_FUNCTION: usize = 0x14;
    pub const DESC_OP: usize = 0x16;
    pub const DESC_FLAGS: usize = 0x17;
    pub const DESC_MSIX: usize = 0x18;
    pub const DESC_COOKIE: usize = 0x1c;
    /// Ops: host memory -> DPU memory, DPU -> host, DPU -> DPU (source in
    /// the host field), zero-fill of DPU memory.
    pub const OP_H2D: u8 = 0;
    pub const OP_D2H: u8 = 1;
    pub const OP_COPY: u8 = 2;
    pub const OP_ZERO: u8 = 3;
    /// CRC32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 3720
    /// §12.1, the NVMe/TCP digest: NVMe/TCP 1.0 §3.6.2.1) of `len` bytes
    /// of DPU memory at `local`. The running CRC is a u32 in DPU memory at
    /// `host` (4-byte aligned): the engine reads it, continues it over the
    /// data and writes it back, so descriptors of a chain that name the
    /// same word compute the CRC of their ranges concatenated. The word
    /// holds a finished CRC (initial value and final XOR of 0xFFFF_FFFF
    /// applied), so 0 starts a new CRC and a finished CRC seeds the next.
    pub const OP_CRC32C: u8 = 4;
    /// Last descriptor of a chain: write one completion for the chain.
    pub const FLAG_END: u8 = 1 << 0;
    /// After the chain's host writes are posted, send MSI-X `DESC_MSIX` of
    /// the function (ordered after the data, as PCIe ordering guarantees).
    pub const FLAG_MSIX: u8 = 1 << 1;
    /// Largest descriptor length.
    pub const MAX_LEN: u32 = 1 << 20;

    /// Completion layout (16 bytes).
    pub const COMP_SIZE: usize = 16;
    pub const COMP_COOKIE: usize = 0x0;
    pub const COMP_STATUS: usize = 0x4;
    pub const COMP_BYTES: usize = 0x8;
    /// Byte 15 bit 0: phase (starts at 1 after CONTROL = 1, flips on wrap).
    pub const COMP_PHASE: usize = 0xf;
    /// Completion statuses.
    pub const ST_OK: u32 = 0;
    /// The function may not access that host memory (IOMMU).
    pub const ST_HOST_DENIED: u32 = 1;
    /// Local address is not RAM.
    pub const ST_LOCAL_FAULT: u32 = 2;
    /// The function is absent or bus mastering is disabled.
    pub const ST_NO_BUS_MASTER: u32 = 3;
    /// Malformed descriptor (length 0 or > MAX_LEN, unknown op, a
    /// misaligned CRC word).
    pub const ST_BAD_DESCRIPTOR: u32 = 4;
    /// The host side failed the transfer: a PCIe completion with an error
    /// status (Unsupported Request, Completer Abort) or a poisoned TLP
    /// (PCIe Base 5.0 §2.2.9, §2.7.2); nothing was written.
    pub const ST_HOST_ERROR: u32 = 5;
}

/// Boot configuration window (base `memory_map::BOOTCFG_BASE`): a header,
/// then `ns count` namespace records, `port count` port records,
/// `ctrl count` remote-controller records, one host record and `key
/// count` key records and `ec count` erasure-coded volume records, packed
/// in that order. All fields little-endian;
/// IPv4 addresses in network order.
/// Booted from flash, the firmware renders the same blob in RAM from the
/// configuration persisted in flash (`dpu-config`) and parses that.
pub mod bootcfg {
    /// u32 "DPUC".
    pub const MAGIC: u32 = 0x4355_5044;
    /// Format 10 adds wrapped key records (`FLAG_KEYS_WRAPPED`).
    /// Format 9 adds a periodic scrub to EC volume records
    /// (`EC_SCRUB_EVERY_MS`, records of `EC_RECORD` bytes; format 5 to 8
    /// records are `EC_RECORD_V8` bytes, see [`ec_record`]).
    /// Format 8 adds NVMe/TCP target subsystems (`HDR_SUBSYS`,
    /// `SUBSYS_RECORD`, `REC_SUBSYS`); format 7 added the local SSD
    /// backend (`BACKEND_LOCAL`); format 6 EC spares and scrub time
    /// (`EC_SPARES`, `EC_SCRUB_AT_US`). Format 5 to 7 blobs still parse
    /// (they name no subsystem and byte `REC_SUBSYS` is 0 there).
    pub const VERSION: u16 = 10;
    /// The oldest format the parser still reads.
    pub const VERSION_MIN: u16 = 5;
    pub const HDR_MAGIC: usize = 0;
    pub const HDR_VERSION: usize = 4;
    pub const HDR_COUNT: usize = 6;
    pub const HDR_PORTS: usize = 8;
    pub const HDR_CTRLS: usize = 10;
    /// u16 flags below.
    pub const HDR_FLAGS: usize = 12;
    /// NVMe/TCP header / data digests toward remote targets.
    pub const FLAG_HDGST: u16 = 1 << 0;
    pub const FLAG_DDGST: u16 = 1 << 1;
    /// Large receive offload on the NIC.
    pub const FLAG_LRO: u16 = 1 << 2;
    /// Format 10: the key records are wrapped keys (`KEY_RECORD_WRAPPED`
    /// bytes each: the XTS key wrapped with the chip's device key, RFC
    /// 3394; the crypto engines unwrap them into their key slots with
    /// `crypto::OP_KEY_UNWRAP`), not keys in the clear. The configuration
    /// in flash only ever holds such records.
    pub const FLAG_KEYS_WRAPPED: u16 = 1 << 3;
    /// u16: minimum TCP retransmission timeout in ms (0 = firmware default).
    pub const HDR_TCP_MIN_RTO_MS: usize = 14;
    /// u32: how long a command sent to a remote controller may go
    /// unanswered before its queue's association is torn down and the
    /// command retried, in microseconds (0 = firmware default).
    pub const HDR_IO_TIMEOUT_US: usize = 16;
    /// u16: key records.
    pub const HDR_KEYS: usize = 20;
    /// u16: erasure-coded volume records (format 5).
    pub const HDR_EC_VOLUMES: usize = 22;
    /// u16: management records (0 or 1), after the EC volume records. A
    /// blob written before there was one has 0 here: no management server.
    pub const HDR_MGMT: usize = 24;
    /// u16: NVMe/TCP target subsystem records (format 8), after the
    /// management record.
    pub const HDR_SUBSYS: usize = 26;
    pub const HEADER: usize = 32;
    /// Namespace record (32 bytes).
    pub const RECORD: usize = 32;
    pub const REC_FUNCTION: usize = 0;
    pub const REC_BACKEND: usize = 2;
    pub const REC_LBA_SHIFT: usize = 3;
    pub const REC_NSID: usize = 4;
    pub const REC_BLOCKS: usize = 8;
    /// NVMF: index of the remote controller record, and the remote nsid.
    /// EC: `REC_CTRL` holds the index of the EC volume record.
    pub const REC_CTRL: usize = 16;
    pub const REC_REMOTE_NSID: usize = 20;
    /// u8: data-at-rest encryption (`CRYPTO_*`).
    pub const REC_CRYPTO: usize = 24;
    /// u8 (format 8): 0 = a namespace of PCIe function `REC_FUNCTION`;
    /// s + 1 = namespace `REC_NSID` of NVMe/TCP target subsystem record s
    /// (`REC_FUNCTION` is then ignored: the namespace is served to remote
    /// hosts only).
    pub const REC_SUBSYS: usize = 25;
    /// u16: the key record of an encrypted namespace (its index is also
    /// the crypto engines' key slot).
    pub const REC_KEY: usize = 26;
    pub const CRYPTO_NONE: u8 = 0;
    /// AES-256-XTS (IEEE 1619-2018), data unit = block, tweak = LBA.
    pub const CRYPTO_AES_XTS: u8 = 1;
    /// Key record (64 bytes): an XTS-AES-256 key, Key1 then Key2.
    pub const KEY_RECORD: usize = 64;
    /// Key record with `FLAG_KEYS_WRAPPED` (72 bytes): that key wrapped
    /// with the device key (`crypto::WRAPPED_XTS_KEY`).
    pub const KEY_RECORD_WRAPPED: usize = super::crypto::WRAPPED_XTS_KEY;
    /// Backends.
    pub const BACKEND_RAM: u8 = 1;
    pub const BACKEND_NVMF: u8 = 2;
    /// An erasure-coded volume striped over k + m remote namespaces.
    pub const BACKEND_EC: u8 = 3;
    /// Format 7: namespace `REC_REMOTE_NSID` of the card's local NVMe SSD
    /// in slot `REC_CTRL` (`regs::ssd`).
    pub const BACKEND_LOCAL: u8 = 4;
    /// Erasure-coded volume record (264 bytes): k data and m parity
    /// fragments per stripe, then k + m member records (remote controller
    /// record index, remote nsid). Fragment f of stripe s (data 0..k,
    /// parity k..k+m) is on member (f + s) mod (k + m) at member byte
    /// offset s x `EC_CHUNK` (parity rotates over the members, as in
    /// RAID 6). A fragment is `EC_CHUNK` bytes; the `EC_CHUNK` bytes after
    /// the namespace's last stripe hold each member's superblock
    /// (`dpu_bdev::ec_super`), so members are at least one fragment larger
    /// than (namespace bytes / k). Format 6: `EC_SPARES`
    /// spare namespaces follow the k + m members in the member records
    /// (k + m + spares <= 32); a spare replaces a lost member and is
    /// rebuilt in the background. `EC_SCRUB_AT_US`: card time (us since
    /// reset) of one parity check pass over the volume (0 = none).
    /// Format 9: `EC_SCRUB_EVERY_MS` (u32) after the member records: a
    /// scrub pass again this many ms after the last one ended (0: only
    /// the one at `EC_SCRUB_AT_US`, or none).
    pub const EC_RECORD: usize = EC_SCRUB_EVERY_MS + 8;
    pub const EC_SCRUB_EVERY_MS: usize = EC_RECORD_V8;
    /// An EC volume record of formats 5 to 8.
    pub const EC_RECORD_V8: usize = 8 + 32 * EC_MEMBER;
    /// Bytes of an EC volume record in format `version`.
    pub const fn ec_record(version: u16) -> usize {
        if version >= 9 {
            EC_RECORD
        } else {
            EC_RECORD_V8
        }
    }
    pub const EC_K: usize = 0;
    pub const EC_M: usize = 1;
    pub const EC_SPARES: usize = 2;
    pub const EC_SCRUB_AT_US: usize = 4;
    pub const EC_MEMBERS: usize = 8;
    pub const EC_MEMBER: usize = 8;
    pub const EC_MEMBER_CTRL: usize = 0;
    pub const EC_MEMBER_NSID: usize = 4;
    /// Bytes per fragment (a stripe holds k of them of data).
    pub const EC_CHUNK: usize = 4096;
    /// Management record (144 bytes): the JSON-RPC server's address (a
    /// data port's address and a TCP port), the client allow-list (IPv4
    /// prefixes; none = any client) and the access token (none = no token).
    pub const MGMT_RECORD: usize = 144;
    /// u8: index of the port record whose address serves.
    pub const MGMT_PORT: usize = 0;
    /// u8: allow-list entries used.
    pub const MGMT_ALLOW_COUNT: usize = 1;
    /// u16: TCP port (5260 when the scenario does not say).
    pub const MGMT_TCP_PORT: usize = 2;
    /// u16: how long a client may take to finish a request it began, in ms.
    pub const MGMT_REQUEST_TIMEOUT_MS: usize = 4;
    /// u8: token length (0..=`MGMT_TOKEN_LEN`).
    pub const MGMT_TOKEN_LEN_OFF: usize = 6;
    /// Allow-list entries (8 bytes each: IPv4 address, prefix length).
    pub const MGMT_ALLOW: usize = 8;
    pub const MGMT_ALLOW_ENTRY: usize = 8;
    pub const MGMT_ALLOW_MAX: usize = 8;
    /// The token: printable ASCII, NUL padded.
    pub const MGMT_TOKEN: usize = MGMT_ALLOW + MGMT_ALLOW_MAX * MGMT_ALLOW_ENTRY;
    pub const MGMT_TOKEN_LEN: usize = 64;
    /// NVMe/TCP target subsystem record (format 8, 256 + 4 x 224 bytes):
    /// the subsystem NQN (NUL padded), the TCP port it listens on, the
    /// DPU ports (bit p = port p), the hosts allowed (none = any host)
    /// and their NQNs. Its namespaces are namespace records whose
    /// `REC_SUBSYS` names it.
    pub const SUBSYS_RECORD: usize = 256 + SUBSYS_HOSTS_MAX * NQN_LEN;
    pub const SUBSYS_NQN: usize = 0;
    /// u16.
    pub const SUBSYS_TRSVCID: usize = 224;
    /// u8 bit mask of DPU ports.
    pub const SUBSYS_PORTS: usize = 226;
    /// u8: allowed host NQNs that follow (0 = any host).
    pub const SUBSYS_HOST_COUNT: usize = 227;
    pub const SUBSYS_HOSTS: usize = 256;
    pub const SUBSYS_HOSTS_MAX: usize = 4;
    /// Port record (16 bytes): address, prefix length, MTU.
    pub const PORT_RECORD: usize = 16;
    pub const PORT_IP: usize = 0;
    pub const PORT_PREFIX: usize = 4;
    pub const PORT_MTU: usize = 6;
    /// Remote controller record (256 bytes): target address and TCP
    /// port, subsystem NQN (NUL padded).
    pub const CTRL_RECORD: usize = 256;
    pub const CTRL_TRADDR: usize = 0;
    pub const CTRL_TRSVCID: usize = 4;
    pub const CTRL_SUBNQN: usize = 8;
    pub const NQN_LEN: usize = 224;
    /// Host record (256 bytes): host NQN (NUL padded) and host ID.
    pub const HOST_RECORD: usize = 256;
    pub const HOST_NQN: usize = 0;
    pub const HOST_ID: usize = 224;
    /// Why the firmware rejected the configuration (reported through the
    /// finisher's `CONFIG_REJECTED`, with the record index).
    pub const REJECT_BAD_MAGIC: u16 = 1;
    pub const REJECT_BAD_VERSION: u16 = 2;
    pub const REJECT_TOO_MANY: u16 = 3;
    pub const REJECT_BAD_RECORD: u16 = 4;
    pub const REJECT_BAD_PORT: u16 = 5;
    pub const REJECT_BAD_CONTROLLER: u16 = 6;
    pub const REJECT_OUT_OF_MEMORY: u16 = 7;
    /// An encrypted namespace's key record is missing or not a valid key.
    pub const REJECT_BAD_KEY: u16 = 8;
    /// An erasure-coded namespace's volume record is missing or invalid
    /// (k, m, members, size not whole stripes).
    pub const REJECT_BAD_EC: u16 = 9;
    /// The management record is invalid (port, TCP port, allow-list, token).
    pub const REJECT_BAD_MGMT: u16 = 10;
    /// A target subsystem record is invalid (NQN, TCP port, ports, host
    /// NQNs) or a namespace names a subsystem that is not there.
    pub const REJECT_BAD_SUBSYS: u16 = 11;
    /// Index bits of the report (the reason sits above them).
    pub const REJECT_INDEX_BITS: u32 = 12;
}

/// On-chip Ethernet controller (base `memory_map::NIC_BASE`): port p's
/// registers at `p * PORT`, queue q of port p at `p * PORT + QUEUE_BASE +
/// q * QUEUE`. Each queue pair has an RX and a TX descriptor ring in DPU
/// memory, owned by one hart. Frames exclude the Ethernet FCS.
///
/// RX: the firmware posts buffers (descriptor address + size, flags 0) and
/// moves RX_TAIL; the NIC writes each received frame into the next posted
/// buffer and writes the descriptor back (length, flags with `RX_DD`, RSS
/// hash), in order. TX: the firmware writes descriptors and moves TX_TAIL;
/// the NIC reads each frame and writes `TX_DD` back when the buffer may be
/// reused. Indices count descriptors and wrap at 2^32 (like the DMA rings).
pub mod nic {
    /// Distance between ports.
    pub const PORT: u64 = 0x1_0000;
    /// u64 RO: the port's MAC address (bits 47:0, first octet in bits 7:0).
    pub const MAC: u64 = 0x000;
    /// u32 RO: bit 0 = link up; bits 31:16 = speed in Gb/s.
    pub const LINK: u64 = 0x008;
    pub const LINK_UP: u32 = 1;
    /// u32 RW: port control bits below.
    pub const CONTROL: u64 = 0x00c;
    pub const CTL_RX_ENABLE: u32 = 1 << 0;
    pub const CTL_TX_ENABLE: u32 = 1 << 1;
    /// Accept every unicast destination.
    pub const CTL_PROMISC: u32 = 1 << 2;
    /// Accept broadcast frames.
    pub const CTL_BROADCAST: u32 = 1 << 3;
    /// Validate IPv4 header and TCP/UDP checksums on receive.
    pub const CTL_RX_CSUM: u32 = 1 << 4;
    /// Large receive offload: merge in-order TCP segments of a flow.
    pub const CTL_LRO: u32 = 1 << 5;
    /// Steer IPv4 frames by RSS hash (else everything goes to DEFAULT_QUEUE).
    pub const CTL_RSS: u32 = 1 << 6;
    /// u32 RW: queue for frames without an RSS hash or steering match (ARP, ...).
    pub const DEFAULT_QUEUE: u64 = 0x010;
    /// u32 RW: bit 31 = enable; bits 15:0 = hart whose mailbox gets
    /// `MAILBOX_LINK` when the link goes up or down.
    pub const LINK_NOTIFY: u64 = 0x014;
    /// u32 RW: largest IP packet accepted / sent (MTU), 576..=9000.
    pub const MTU: u64 = 0x018;
    /// u64 RW x 8: extra unicast MAC filters; bit 63 = valid.
    pub const MAC_FILTER: u64 = 0x020;
    pub const MAC_FILTERS: usize = 8;
    pub const MAC_FILTER_VALID: u64 = 1 << 63;
    /// u64 RW x 8 at 0x200: steering rules checked before RSS: a TCP/IPv4
    /// frame whose destination (local) port is in [lo, hi] goes to the
    /// rule's queue. Bit 63 = valid; bits 47:40 = queue; bits 31:16 = hi;
    /// bits 15:0 = lo.
    pub const STEER: u64 = 0x200;
    pub const STEER_RULES: usize = 8;
    pub const STEER_VALID: u64 = 1 << 63;
    /// u64 RO port counters.
    pub const RX_FRAMES: u64 = 0x080;
    pub const RX_BYTES: u64 = 0x088;
    pub const TX_FRAMES: u64 = 0x090;
    pub const TX_BYTES: u64 = 0x098;
    /// Frames not addressed to the port (MAC filter).
    pub const RX_FILTERED: u64 = 0x0a0;
    /// Frames dropped because the queue had no posted buffer.
    pub const RX_NO_BUFFER: u64 = 0x0a8;
    /// Frames with a bad IPv4 header or TCP/UDP checksum (delivered, flagged).
    pub const RX_CSUM_ERRORS: u64 = 0x0b0;
    /// Frames larger than the MTU or the posted buffer (dropped).
    pub const RX_OVERSIZE: u64 = 0x0b8;
    /// TX descriptors rejected (bad length or address).
    pub const TX_ERRORS: u64 = 0x0c0;
    /// 40-byte Toeplitz key (10 little-endian u32 words; byte i of the key
    /// is byte i of this window).
    pub const RSS_KEY: u64 = 0x100;
    pub const RSS_KEY_LEN: usize = 40;
    /// 128 one-byte entries: hash bits 6:0 pick the entry, the entry is
    /// the queue (Microsoft RSS indirection table).
    pub const RSS_TABLE: u64 = 0x140;
    pub const RSS_TABLE_LEN: usize = 128;

    /// Queue registers start here within a port.
    pub const QUEUE_BASE: u64 = 0x1000;
    /// Distance between queues.
    pub const QUEUE: u64 = 0x80;
    /// u64: RX ring address (16-byte descriptors, 16-byte aligned).
    pub const RX_BASE: u64 = 0x00;
    /// u32: RX ring entries (power of two, 2..=4096).
    pub const RX_SIZE: u64 = 0x08;
    /// u32 W: RX buffers posted (producer index).
    pub const RX_TAIL: u64 = 0x0c;
    /// u32 RO: RX descriptors filled.
    pub const RX_HEAD: u64 = 0x10;
    /// u64: TX ring address.
    pub const TX_BASE: u64 = 0x18;
    pub const TX_SIZE: u64 = 0x20;
    /// u32 W: TX descriptors written (producer index).
    pub const TX_TAIL: u64 = 0x24;
    /// u32 RO: TX descriptors consumed.
    pub const TX_HEAD: u64 = 0x28;
    /// u32: bit 31 = enable; bits 15:0 = hart whose mailbox gets
    /// `MAILBOX_BIT` when a frame arrives or a TX descriptor is done.
    pub const Q_NOTIFY: u64 = 0x2c;
    pub const NOTIFY_ENABLE: u32 = 1 << 31;
    /// u32 W: 1 = start (resets indices), 0 = stop.
    pub const Q_CONTROL: u64 = 0x30;
    /// u32 RO: 1 = running, 2 = stopped on a bad configuration.
    pub const Q_STATUS: u64 = 0x34;
    /// u64 RO queue counters.
    pub const Q_RX_FRAMES: u64 = 0x40;
    pub const Q_RX_BYTES: u64 = 0x48;
    pub const Q_TX_FRAMES: u64 = 0x50;
    pub const Q_TX_BYTES: u64 = 0x58;
    pub const Q_RX_NO_BUFFER: u64 = 0x60;

    /// Mailbox bits the NIC rings.
    pub const MAILBOX_BIT: u64 = 1 << 4;
    pub const MAILBOX_LINK: u64 = 1 << 5;

    /// Descriptor layout (16 bytes, RX and TX).
    pub const DESC_SIZE: usize = 16;
    pub const DESC_ADDR: usize = 0x0;
    /// u16: RX: buffer size when posted, frame length on write-back;
    /// TX: frame length.
    pub const DESC_LEN: usize = 0x8;
    /// u16 flags.
    pub const DESC_FLAGS: usize = 0xa;
    /// RX: u32 RSS hash. TX: u16 MSS for `TX_TSO`.
    pub const DESC_RSS: usize = 0xc;
    pub const DESC_MSS: usize = 0xc;
    /// RX write-back flags.
    pub const RX_DD: u16 = 1 << 0;
    /// IPv4 header (and TCP/UDP) checksum verified good.
    pub const RX_CSUM_OK: u16 = 1 << 1;
    /// A checksum was verified bad.
    pub const RX_CSUM_BAD: u16 = 1 << 2;
    /// `DESC_RSS` holds an IPv4/TCP (4-tuple) or IPv4 (2-tuple) hash.
    pub const RX_RSS_TCP: u16 = 1 << 3;
    pub const RX_RSS_IPV4: u16 = 1 << 4;
    /// The frame is several TCP segments merged by LRO.
    pub const RX_LRO: u16 = 1 << 5;
    /// TX request flags.
    pub const TX_CSUM_IP: u16 = 1 << 0;
    pub const TX_CSUM_L4: u16 = 1 << 1;
    /// Segment the TCP payload into `DESC_MSS`-byte frames.
    pub const TX_TSO: u16 = 1 << 2;
    /// TX write-back: done (the NIC no longer needs the buffer).
    pub const TX_DD: u16 = 1 << 15;
    /// The frame was rejected (bad length / address / TSO request).
    pub const TX_ERR: u16 = 1 << 14;
    /// Largest frame a descriptor carries (TSO: before segmentation).
    pub const MAX_FRAME: usize = 65535;
}

/// Registers of one accelerator queue (crypto and erasure-coding engines):
/// the same registers, ring protocol and 16-byte completions as a DMA
/// channel ([`dma`]): RING_BASE, RING_SIZE (power of two, 2..=4096),
/// NOTIFY, COMP_BASE, CONTROL (1 = start: indices and phase reset),
/// STATUS, TAIL (doorbell), HEAD. Accelerator descriptors are 64 bytes
/// (64-byte aligned ring); a chain ends at a descriptor with `FLAG_END`
/// and gets one completion (the first error wins; descriptors of the chain
/// after an error are skipped, so nothing is written from a failed chain
/// onwards).
pub mod queue {
    pub use super::dma::{
        COMP_BYTES, COMP_COOKIE, COMP_PHASE, COMP_SIZE, COMP_STATUS, COMP_BASE, CONTROL, HEAD, NOTIFY, NOTIFY_ENABLE, RING_BASE,
        RING_SIZE, STATUS, TAIL,
    };
    /// Register block of one queue.
    pub const SIZE: u64 = 0x40;
    /// Descriptor size (all accelerator descriptors).
    pub const DESC_SIZE: usize = 64;
    /// STATUS values.
    pub const STATUS_RUNNING: u32 = 1;
    pub const STATUS_BAD_CONFIG: u32 = 2;
    /// Last descriptor of a chain (bit 0 of every accelerator's FLAGS).
    pub const FLAG_END: u8 = 1 << 0;
}

/// Completion statuses of the accelerators (the DMA engine's, extended).
pub mod accel {
    pub use super::dma::{ST_BAD_DESCRIPTOR, ST_HOST_DENIED, ST_HOST_ERROR, ST_LOCAL_FAULT, ST_NO_BUS_MASTER, ST_OK};
    /// The key slot is out of range, empty, or holds a key of another kind.
    pub const ST_BAD_KEY: u32 = 6;
    /// AES-GCM open: the tag did not match; nothing was written.
    pub const ST_AUTH_FAILED: u32 = 7;
    /// The length or an address does not suit the operation: zero (except
    /// SHA-256) or above `MAX_LEN`; XTS: not a multiple of the data unit;
    /// GCM: AAD above 4096 bytes; EC: fragment length not a multiple of 8,
    /// fragments or their table not 8-byte aligned.
    pub const ST_BAD_LENGTH: u32 = 8;
    /// EC: k or m is 0 or above what the engine supports, or the
    /// fragment masks name fragments beyond k + m.
    pub const ST_BAD_GEOMETRY: u32 = 9;
    /// EC reconstruct: fewer than k fragments present.
    pub const ST_NOT_RECOVERABLE: u32 = 10;
    /// Crypto key wrap / unwrap: the OTP holds no device key (all fuse
    /// words of `otp::DEVICE_KEY` unblown); no slot or memory changed.
    pub const ST_NO_DEVICE_KEY: u32 = 11;
}

/// Crypto engines (base `memory_map::CRYPTO_BASE`): engine e's registers at
/// `e * ENGINE`; its queue q at `e * ENGINE + QUEUES + q * queue::SIZE`
/// (registers as [`queue`]). Engine e's queue h belongs to hart h by
/// convention; every queue of an engine feeds the same AES/SHA datapath.
///
/// Operations (descriptor `OP`): AES-256-XTS encrypt / decrypt (IEEE
/// 1619-2018 §5.3, §5.4), AES-256-GCM seal / open (NIST SP 800-38D §7.1,
/// §7.2; 96-bit IV, 128-bit tag), SHA-256 (FIPS 180-4 §6.2), and key-slot
/// management. Keys live in key slots, loaded by `OP_KEY_LOAD` from DPU
/// memory or unwrapped by `OP_KEY_UNWRAP` with the device key; no register
/// reads a key back; `ENGINE_CONTROL = CTRL_RESET` zeroizes every slot of
/// the engine (and stops its queues).
///
/// Key ladder: every engine reads the chip's device key (key-encryption
/// key, `otp::DEVICE_KEY`) straight from the fuses, a path the cores do
/// not have once `otp::LOCK_DEVICE_KEY` is blown. `OP_KEY_WRAP` wraps a
/// key given in the clear under it and `OP_KEY_UNWRAP` unwraps such a
/// blob into a key slot, with AES key wrap (RFC 3394 §2.2, NIST SP
/// 800-38F §6.2 KW with the default IV, AES-256 KEK): a blob is the key
/// plus `WRAP_OVERHEAD` bytes, and a blob that fails KW's integrity check
/// (tampered, or wrapped under another device key) loads nothing.
///
/// Source and destination are DPU memory, or host memory of PCIe function
/// `SRC_FN` / `DST_FN` with `FLAG_SRC_HOST` / `FLAG_DST_HOST` (checked
/// against the function's IOMMU grant, like DMA), so a read can be
/// decrypted straight into the host's pages and a write encrypted from
/// them into DPU staging.
pub mod crypto {
    /// Distance between engines.
    pub const ENGINE: u64 = 0x2000;
    /// u32 RO: bits 15:0 key slots, bits 31:16 queues.
    pub const INFO: u64 = 0x00;
    /// u32 W: `CTRL_RESET` zeroizes every key slot and stops every queue.
    pub const ENGINE_CONTROL: u64 = 0x04;
    pub const CTRL_RESET: u32 = 1;
    /// u32 RO: bytes of work queued on the engine and not yet done (all
    /// queues): what a driver looks at to spread work.
    pub const LOAD: u64 = 0x08;
    /// u32 RO: key slots holding a key (never the keys themselves).
    pub const KEYS_LOADED: u64 = 0x0c;
    /// u64 RO: descriptors the engine finished.
    pub const DESCRIPTORS: u64 = 0x10;
    /// u64 RO: data bytes the engine processed.
    pub const BYTES: u64 = 0x18;
    /// Queue registers start here.
    pub const QUEUES: u64 = 0x100;
    /// Mailbox doorbell bit a queue rings on completion.
    pub const MAILBOX_BIT: u64 = 1 << 8;

    /// Descriptor layout (64 bytes).
    /// u64: source address (DPU, or host with `FLAG_SRC_HOST`).
    pub const DESC_SRC: usize = 0x00;
    /// u64: destination address (DPU, or host with `FLAG_DST_HOST`).
    pub const DESC_DST: usize = 0x08;
    /// u32: data bytes (GCM open: ciphertext bytes, without the tag).
    pub const DESC_LEN: usize = 0x10;
    pub const DESC_OP: usize = 0x14;
    pub const DESC_FLAGS: usize = 0x15;
    /// u16: key slot.
    pub const DESC_KEY: usize = 0x16;
    /// u16: PCIe function of a host source / destination (0 = PF, n = VF n).
    pub const DESC_SRC_FN: usize = 0x18;
    pub const DESC_DST_FN: usize = 0x1a;
    pub const DESC_COOKIE: usize = 0x1c;
    /// 16 bytes of parameters: XTS: u64 number of the first data unit
    /// (the tweak; IEEE 1619-2018 §5.1, little-endian); GCM: the 12-byte
    /// IV; key load: the key kind in the first byte.
    pub const DESC_PARAM: usize = 0x20;
    /// u64: GCM additional authenticated data (DPU memory).
    pub const DESC_AAD: usize = 0x30;
    /// u32: GCM AAD bytes (at most 4096).
    pub const DESC_AAD_LEN: usize = 0x38;

    /// XTS-AES-256: `LEN` (a multiple of the data unit, data 16-byte
    /// aligned) covers consecutive data units numbered from PARAM.
    pub const OP_XTS_ENCRYPT: u8 = 1;
    pub const OP_XTS_DECRYPT: u8 = 2;
    /// AES-256-GCM seal: `LEN` bytes of plaintext -> `LEN` bytes of
    /// ciphertext followed by the 16-byte tag at DST (`LEN + 16` bytes).
    pub const OP_GCM_SEAL: u8 = 3;
    /// AES-256-GCM open: `LEN` bytes of ciphertext followed by the tag at
    /// SRC -> `LEN` bytes of plaintext at DST, written only when the tag
    /// matches (else `ST_AUTH_FAILED`).
    pub const OP_GCM_OPEN: u8 = 4;
    /// SHA-256: the message is the sources of the chain's descriptors, in
    /// order; the chain's last descriptor (`FLAG_END`) writes the 32-byte
    /// digest to its DST.
    pub const OP_SHA256: u8 = 5;
    /// Loads `LEN` bytes of key material from DPU memory at SRC into slot
    /// `KEY`; PARAM byte 0 is the key kind. A wrong length or kind, or an
    /// XTS key whose halves are equal (IEEE 1619-2018 §5.1), is refused
    /// with `ST_BAD_KEY` and the slot keeps what it held.
    pub const OP_KEY_LOAD: u8 = 6;
    /// Zeroizes slot `KEY`.
    pub const OP_KEY_CLEAR: u8 = 7;
    /// Unwraps `LEN` bytes at SRC (DPU memory; the key's length plus
    /// `WRAP_OVERHEAD`) with the device key into slot `KEY`; PARAM byte 0
    /// is the key kind. A blob whose integrity check fails is refused with
    /// `ST_AUTH_FAILED`; a wrong length or kind, or an unwrapped key that
    /// is not a valid key of the kind, with `ST_BAD_KEY`; no device key
    /// with `ST_NO_DEVICE_KEY`. A refused unwrap leaves the slot as it was.
    pub const OP_KEY_UNWRAP: u8 = 8;
    /// Wraps `LEN` bytes of key material at SRC (DPU memory; PARAM byte 0
    /// the key kind, checked as `OP_KEY_LOAD` does) with the device key;
    /// writes the `LEN + WRAP_OVERHEAD`-byte blob to DST (DPU memory). No
    /// key slot changes.
    pub const OP_KEY_WRAP: u8 = 9;
    /// Bytes a wrapped blob adds to its key (RFC 3394 §2.2.1: one 64-bit
    /// integrity block).
    pub const WRAP_OVERHEAD: usize = 8;
    /// A wrapped XTS-AES-256 key (64 bytes of key, Key1 then Key2).
    pub const WRAPPED_XTS_KEY: usize = 64 + WRAP_OVERHEAD;

    /// Flags (bit 0 is `queue::FLAG_END`).
    pub const FLAG_END: u8 = super::queue::FLAG_END;
    pub const FLAG_SRC_HOST: u8 = 1 << 1;
    pub const FLAG_DST_HOST: u8 = 1 << 2;
    /// XTS data unit of 4096 bytes (else 512).
    pub const FLAG_DU_4K: u8 = 1 << 3;
    /// XTS decrypt: a data unit whose ciphertext is all zero bytes comes
    /// out as zeros instead of the decryption of zeros (a zero-detect on
    /// the input stream). A block never written on a zero-initialized
    /// medium then reads back as zeros, as it would unencrypted; the
    /// medium shows which blocks are unwritten either way, and a real
    /// ciphertext unit of all zeros has probability 2^-4096.
    pub const FLAG_ZERO_PASS: u8 = 1 << 4;

    /// Key kinds: XTS-AES-256 takes 64 bytes (Key1 for the data, then
    /// Key2 for the tweak: IEEE 1619-2018 §5.1); GCM 32 bytes.
    pub const KEY_XTS_AES256: u8 = 1;
    pub const KEY_GCM_AES256: u8 = 2;
    /// AES-GCM tag bytes.
    pub const GCM_TAG: usize = 16;
    /// Largest `LEN`.
    pub const MAX_LEN: u32 = 1 << 20;
}

/// Erasure-coding engine (base `memory_map::EC_BASE`): Reed-Solomon over
/// GF(2^8) with polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), k data and m
/// parity fragments, generator matrix [I_k ; C] with C the Cauchy matrix
/// C[i][j] = 1 / ((k + i) XOR j) of Intel ISA-L's `gf_gen_cauchy1_matrix`:
/// parity is byte-identical to ISA-L's `ec_encode_data`. Queue q at
/// `QUEUES + q * queue::SIZE` (registers as [`queue`]); queue h belongs to
/// hart h.
pub mod ec {
    /// u32 RO: bits 7:0 largest k, bits 15:8 largest m, bits 31:16 queues.
    pub const INFO: u64 = 0x00;
    /// u64 RO: descriptors done.
    pub const DESCRIPTORS: u64 = 0x08;
    pub const QUEUES: u64 = 0x100;
    /// Mailbox doorbell bit a queue rings on completion.
    pub const MAILBOX_BIT: u64 = 1 << 9;

    /// Descriptor layout (64 bytes).
    /// u64: address (DPU memory, 8-byte aligned) of a table of k + m u64
    /// fragment addresses: data fragments 0..k, then parity k..k+m.
    pub const DESC_FRAGS: usize = 0x00;
    /// u32: bytes per fragment (a multiple of 8; fragments 8-byte aligned).
    pub const DESC_LEN: usize = 0x08;
    pub const DESC_K: usize = 0x0c;
    pub const DESC_M: usize = 0x0d;
    pub const DESC_OP: usize = 0x0e;
    pub const DESC_FLAGS: usize = 0x0f;
    /// u64: reconstruct: bit i = fragment i holds valid data.
    pub const DESC_PRESENT: usize = 0x10;
    /// u64: reconstruct: bit i = write fragment i (not present).
    pub const DESC_REBUILD: usize = 0x18;
    pub const DESC_COOKIE: usize = 0x20;
    /// Encode: read the k data fragments, write the m parity fragments.
    pub const OP_ENCODE: u8 = 1;
    /// Reconstruct: from k of the present fragments (the lowest-numbered),
    /// write every fragment in REBUILD (data or parity).
    pub const OP_RECONSTRUCT: u8 = 2;
    pub const FLAG_END: u8 = super::queue::FLAG_END;
    /// Largest fragment.
    pub const MAX_LEN: u32 = 1 << 20;
}

/// True random number generator (base `memory_map::TRNG_BASE`): a noise
/// source of 8-bit samples under the continuous health tests of NIST SP
/// 800-90B §4.4 (repetition count test §4.4.1, adaptive proportion test
/// §4.4.2, window 512) with start-up testing (§4.3: 1024 samples), and a
/// SHA-256 conditioning component (§3.1.5.1.1). A failed test stops the
/// output until the firmware restarts the source.
pub mod trng {
    /// u32 RW: `CTL_ENABLE` starts the source (start-up tests first);
    /// writing `CTL_RESTART` clears a health failure and starts over.
    pub const CONTROL: u64 = 0x00;
    pub const CTL_ENABLE: u32 = 1 << 0;
    pub const CTL_RESTART: u32 = 1 << 1;
    /// u32 RO: status bits below.
    pub const STATUS: u64 = 0x04;
    /// DATA holds conditioned random bits.
    pub const ST_READY: u32 = 1 << 0;
    /// The repetition count test failed (§4.4.1).
    pub const ST_RCT_FAIL: u32 = 1 << 1;
    /// The adaptive proportion test failed (§4.4.2).
    pub const ST_APT_FAIL: u32 = 1 << 2;
    /// u64 RO: the next 64 conditioned bits (0 when not `ST_READY`).
    pub const DATA: u64 = 0x08;
    /// u32 RW: bit 0 = raise `TRNG_IRQ` on a health-test failure.
    pub const IRQ_ENABLE: u64 = 0x10;
    /// u32 RO: the repetition count test's cutoff C.
    pub const RCT_CUTOFF: u64 = 0x14;
    /// u32 RO: the adaptive proportion test's cutoff C (window 512).
    pub const APT_CUTOFF: u64 = 0x18;
    /// u64 RO: raw samples tested since reset.
    pub const SAMPLES: u64 = 0x20;
    /// u64 RO: health-test failures since reset.
    pub const FAILURES: u64 = 0x28;
    /// Adaptive proportion test window (§4.4.2, non-binary sources).
    pub const APT_WINDOW: u32 = 512;
    /// Start-up test samples (§4.3 item 1).
    pub const STARTUP_SAMPLES: u32 = 1024;
}

// ---------------------------------------------------------------------------
// Secure boot and the boot flash: SPI controller, SPI NOR commands, OTP
// fuses, the signed image layout, the bootloader's hand-off block.
// ---------------------------------------------------------------------------

/// SPI master of the boot flash (base `memory_map::SPI_BASE`), one chip
/// select. Every access holds the peripheral bus while the bytes shift.
pub mod spi {
    /// u32 RW: bit 0 = chip select asserted (CS# low). Clearing it ends the
    /// flash command (a program or erase starts on CS# rising).
    pub const CS: u64 = 0x00;
    /// u32 RW: SCK = core clock / (2 * (CLKDIV + 1)).
    pub const CLKDIV: u64 = 0x04;
    /// CLKDIV after reset (50 MHz at a 1 GHz core clock).
    pub const CLKDIV_RESET: u32 = 9;
    /// DATA, 1/2/4/8-byte accesses. Write: sends the bytes, lowest first;
    /// what the flash sent back meanwhile is kept in `RX`. Read: sends that
    /// many 00h bytes and returns the bytes received, first in bits 7:0.
    pub const DATA: u64 = 0x10;
    /// u64 RO: the bytes received during the last DATA write.
    pub const RX: u64 = 0x18;
}

/// SPI NOR command set (JEDEC JESD216 basic commands as the Micron MT25Q
/// datasheet's command table lists them) and status bits.
pub mod spi_nor {
    pub const READ_ID: u8 = 0x9f;
    pub const READ_STATUS: u8 = 0x05;
    pub const READ_FLAG_STATUS: u8 = 0x70;
    pub const WRITE_ENABLE: u8 = 0x06;
    pub const WRITE_DISABLE: u8 = 0x04;
    /// 3-byte address READ / FAST READ (8 dummy clocks), PAGE PROGRAM,
    /// SUBSECTOR ERASE (4 KiB), SECTOR ERASE (64 KiB).
    pub const READ: u8 = 0x03;
    pub const FAST_READ: u8 = 0x0b;
    pub const PAGE_PROGRAM: u8 = 0x02;
    pub const SUBSECTOR_ERASE: u8 = 0x20;
    pub const SECTOR_ERASE: u8 = 0xd8;
    /// The same with a 4-byte address.
    pub const READ4: u8 = 0x13;
    pub const FAST_READ4: u8 = 0x0c;
    pub const PAGE_PROGRAM4: u8 = 0x12;
    pub const SUBSECTOR_ERASE4: u8 = 0x21;
    pub const SECTOR_ERASE4: u8 = 0xdc;
    pub const ENTER_4BYTE: u8 = 0xb7;
    pub const EXIT_4BYTE: u8 = 0xe9;
    pub const RESET_ENABLE: u8 = 0x66;
    pub const RESET_MEMORY: u8 = 0x99;
    /// Status register: write in progress, write enable latch.
    pub const SR_WIP: u8 = 1 << 0;
    pub const SR_WEL: u8 = 1 << 1;
    /// Flag status register: program/erase controller ready, erase and
    /// program errors, 4-byte address mode.
    pub const FSR_READY: u8 = 1 << 7;
    pub const FSR_ERASE_ERROR: u8 = 1 << 5;
    pub const FSR_PROGRAM_ERROR: u8 = 1 << 4;
    pub const FSR_ADDR4: u8 = 1 << 0;
}

/// OTP fuses (base `memory_map::OTP_BASE`): 32-bit words, a blown bit
/// reads 1 and never returns to 0.
pub mod otp {
    /// u32 RO: fuse word i at FUSE + 4 * i.
    pub const FUSE: u64 = 0x000;
    /// u32 W: word to program.
    pub const PROG_ADDR: u64 = 0x800;
    /// u32 W: bits to blow (ORed into the word).
    pub const PROG_DATA: u64 = 0x804;
    /// u32 W: writing `PROG_KEY` starts programming.
    pub const PROG_CMD: u64 = 0x808;
    pub const PROG_KEY: u32 = 0x4f54_5031;
    /// u32 RO: `STATUS_BUSY` while a word is being programmed;
    /// `STATUS_ERROR` if the last request was refused (locked or out of range).
    pub const STATUS: u64 = 0x80c;
    pub const STATUS_BUSY: u32 = 1 << 0;
    pub const STATUS_ERROR: u32 = 1 << 1;
    /// Fuse map: SHA-256 of the root public key (8 words, byte i of the
    /// hash is byte i of the words read little-endian).
    pub const KEY_HASH: usize = 0;
    pub const KEY_HASH_WORDS: usize = 8;
    /// Lock word: `LOCK_KEY_HASH` makes the key hash words read-only.
    pub const LOCK: usize = 8;
    pub const LOCK_KEY_HASH: u32 = 1 << 0;
    /// `LOCK_DEVICE_KEY` makes the device key words unreadable (they read
    /// as zero) and unprogrammable: only the crypto engines' key ladder
    /// (`crypto::OP_KEY_WRAP`, `OP_KEY_UNWRAP`) uses them from then on.
    pub const LOCK_DEVICE_KEY: u32 = 1 << 1;
    /// Anti-rollback counter: 8 words, a 256-bit thermometer code; the
    /// counter is the number of blown bits (bits are blown lowest first).
    pub const ROLLBACK: usize = 16;
    pub const ROLLBACK_WORDS: usize = 8;
    /// The device-unique key (hardware unique key, the key-encryption key
    /// of the crypto engines' key ladder): 8 words, an AES-256 key, byte i
    /// of the key is byte i of the words read little-endian. All zero:
    /// none provisioned.
    pub const DEVICE_KEY: usize = 32;
    pub const DEVICE_KEY_WORDS: usize = 8;
}

/// Signed image layout (first-stage bootloader and firmware slots), in
/// the spirit of MCUboot's: a 512-byte header, the payload (the load
/// segments' bytes, one after another), then an Ed25519 signature (RFC
/// 8032, 64 bytes) over the 512-byte header at `HEADER_SIZE +
/// align8(payload size)`. The header carries the payload's SHA-256, so the
/// signature covers the payload too. All fields little-endian; unused
/// header bytes are zero.
pub mod image {
    /// u32 "DPUI".
    pub const MAGIC: u32 = 0x4955_5044;
    pub const FORMAT: u16 = 1;
    pub const HEADER_SIZE: usize = 512;
    pub const SIGNATURE_SIZE: usize = 64;
    pub const OFF_MAGIC: usize = 0x00;
    /// u16 format version, u16 header size.
    pub const OFF_FORMAT: usize = 0x04;
    pub const OFF_HEADER_SIZE: usize = 0x06;
    /// u8: `KIND_*`.
    pub const OFF_KIND: usize = 0x08;
    pub const KIND_BOOTLOADER: u8 = 1;
    pub const KIND_FIRMWARE: u8 = 2;
    /// Version: u8 major, u8 minor, u16 revision, u32 build.
    pub const OFF_VERSION: usize = 0x0c;
    /// u32: anti-rollback security counter (checked against the OTP counter).
    pub const OFF_SECURITY_COUNTER: usize = 0x14;
    /// u64 entry point.
    pub const OFF_ENTRY: usize = 0x18;
    /// u32 payload bytes; u16 segment count.
    pub const OFF_PAYLOAD_SIZE: usize = 0x20;
    pub const OFF_SEGMENTS: usize = 0x24;
    /// u64: layout fingerprint of the chip the image was built for.
    pub const OFF_CHIP: usize = 0x28;
    /// SHA-256 of the payload.
    pub const OFF_PAYLOAD_HASH: usize = 0x30;
    /// Ed25519 public key of the signer (its SHA-256 must match the OTP).
    pub const OFF_PUBLIC_KEY: usize = 0x50;
    /// Segment table: `MAX_SEGMENTS` entries of `SEGMENT` bytes: u64 load
    /// address, u32 offset in the payload, u32 file bytes, u32 memory
    /// bytes (the rest zero-filled), u32 reserved.
    pub const OFF_SEGMENT_TABLE: usize = 0x80;
    pub const SEGMENT: usize = 24;
    pub const MAX_SEGMENTS: usize = 16;
    pub const SEG_LOAD: usize = 0;
    pub const SEG_OFFSET: usize = 8;
    pub const SEG_FILE_SIZE: usize = 12;
    pub const SEG_MEM_SIZE: usize = 16;
}

/// Hand-off block the first-stage bootloader leaves for the firmware at
/// `memory_map::BOOTINFO_BASE`. Without a bootloader (an ELF loaded
/// directly) it reads zero.
pub mod bootinfo {
    /// u32 "DPUB".
    pub const MAGIC: u32 = 0x4255_5044;
    pub const OFF_MAGIC: usize = 0x00;
    /// u8: slot booted (0 = A, 1 = B).
    pub const OFF_SLOT: usize = 0x04;
    /// u8: `MODE_*`.
    pub const OFF_MODE: usize = 0x05;
    /// The confirmed image of the slot.
    pub const MODE_CONFIRMED: u8 = 0;
    /// A new image on trial: it must confirm itself, or the next boot reverts.
    pub const MODE_TRIAL: u8 = 1;
    /// u32: the OTP anti-rollback counter at boot.
    pub const OFF_OTP_COUNTER: usize = 0x08;
    /// u32: the running image's security counter.
    pub const OFF_SECURITY_COUNTER: usize = 0x0c;
    /// 8 bytes: the running image's version (as in the image header).
    pub const OFF_VERSION: usize = 0x10;
    /// u64: entry point (where released harts jump), u32: harts that
    /// have left the bootloader (the releasing hart waits for all).
    pub const OFF_ENTRY: usize = 0x20;
    pub const OFF_RELEASED: usize = 0x28;
    pub const SIZE: usize = 0x1000;
}
