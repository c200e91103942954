//! Networking: the NIC ports, one TCP/IP stack per core and port.
//!
//! * Queue q < data-plane cores of each port belongs to data-plane core q
//!   (hart `FIRST_DATA_HART + q`); RSS spreads connections over them, and
//!   each core picks local ports whose return traffic hashes to its own
//!   queue, so a connection lives on one core from end to end.
//! * The last queue belongs to the control plane's network service
//!   ([`NET_HART`]): frames no rule or hash places (ARP) land there, and a
//!   steering rule sends the control plane's own TCP ports to it.
//! * [`device`]: smoltcp device over a queue pair; [`stack`]: a core's
//!   interface and sockets; [`settings`]: the port addresses and
//!   transport settings in force (changed at run time by message).

pub mod device;
pub mod settings;
pub mod stack;

use crate::bootcfg;
use core::sync::atomic::{AtomicBool, Ordering};
use dpu_hal::memory_map::{CLUSTERS, CORES_PER_CLUSTER, NIC_PORTS, NIC_QUEUES};
use dpu_hal::nic::{Port, QueuePair};
use dpu_hal::regs::nic as r;
use dpu_net::neighbor::NeighborTable;

/// The control-plane core running ARP and the NVMe-oF admin connections.
pub const NET_HART: usize = 2;
/// First data-plane hart (cluster 1, core 0).
pub const FIRST_DATA_HART: usize = CORES_PER_CLUSTER;
/// Data-plane cores (one NIC queue each per port).
pub const DATA_CORES: usize = (CLUSTERS - 1) * CORES_PER_CLUSTER;
/// The control plane's queue on every port.
pub const CONTROL_QUEUE: usize = NIC_QUEUES - 1;
const _: () = assert!(DATA_CORES < NIC_QUEUES, "one queue per data-plane core plus the control queue");

/// Local TCP ports of the control plane (steered to `CONTROL_QUEUE`).
pub const CONTROL_PORTS: core::ops::RangeInclusive<u16> = 40000..=40999;
/// Local TCP ports data-plane cores pick from (by RSS hash).
pub const DATA_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// IPv4 -> MAC, written by `NET_HART` (ARP), read by every core.
pub static NEIGHBORS: NeighborTable<64> = NeighborTable::new();

/// Set once the ports are configured (RSS, filters, MTU).
static PORTS_READY: AtomicBool = AtomicBool::new(false);

/// RSS indirection table: entry i -> data queue i mod DATA_CORES.
pub fn rss_table() -> [u8; r::RSS_TABLE_LEN] {
    core::array::from_fn(|i| (i % DATA_CORES) as u8)
}

/// The queue of data-plane hart `hart`.
pub fn data_queue(hart: usize) -> Option<usize> {
    hart.checked_sub(FIRST_DATA_HART).filter(|&q| q < DATA_CORES)
}

/// RX buffer size with large receive offload on (merged frames).
pub const LRO_BUFFER: usize = 16 * 1024;

/// Bytes per packet buffer for `mtu` (frame + headroom, 64-byte multiple).
pub fn buffer_size(mtu: u16) -> usize {
    (usize::from(mtu) + 14 + 4).next_multiple_of(64).max(1536)
}

/// Configures every port named in the boot configuration (network service
/// at boot): filters, checksum offload, RSS, steering, MTU, link events.
pub fn setup_ports() {
    let lro = bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0;
    for (i, cfg) in bootcfg::ports().iter().enumerate().take(NIC_PORTS) {
        let Some(p) = Port::new(i) else { continue };
        p.set_mtu(u32::from(cfg.mtu));
        p.set_default_queue(CONTROL_QUEUE);
        p.set_rss(&dpu_net::rss::DEFAULT_KEY, &rss_table());
        p.steer(0, *CONTROL_PORTS.start(), *CONTROL_PORTS.end(), CONTROL_QUEUE);
        // The management server listens in the control queue's stack.
        if let Some(m) = bootcfg::management().filter(|m| usize::from(m.port) == i) {
            p.steer(1, m.tcp_port, m.tcp_port, CONTROL_QUEUE);
        }
        p.notify_link(NET_HART);
        let mut ctl = r::CTL_RX_ENABLE | r::CTL_TX_ENABLE | r::CTL_BROADCAST | r::CTL_RX_CSUM | r::CTL_RSS;
        if lro {
            ctl |= r::CTL_LRO;
        }
        p.set_control(ctl);
        let (up, speed) = p.link();
        let m = p.mac();
        defmt::info!(
            "net: port {=usize}: {=u8}.{=u8}.{=u8}.{=u8}/{=u8} mtu {=u16} mac {=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x} link {=str} {=u32} Gb/s",
            i, cfg.ip[0], cfg.ip[1], cfg.ip[2], cfg.ip[3], cfg.prefix, cfg.mtu, m[0], m[1], m[2], m[3], m[4], m[5],
            if up { "up" } else { "down" }, speed
        );
    }
    settings::init();
    PORTS_READY.store(true, Ordering::Release);
}

pub fn ports_ready() -> bool {
    PORTS_READY.load(Ordering::Acquire)
}

/// Starts this hart's queue on `port` and a stack on it. `queue` is the
/// hart's queue index; `arp_owner` for the control queue; `rx_smem` puts
/// the descriptor rings and RX buffers in the core's SMEM when they fit.
#[allow(clippy::too_many_arguments)]
pub fn start_stack(hart: usize, port: usize, queue: usize, arp_owner: bool, rx_bufs: u32, tx_bufs: u32, rx_smem: bool, sockets: usize) -> Option<&'static mut stack::Stack> {
    let cfg = settings::port(port)?;
    // Rings are powers of two; there may be fewer buffers than descriptors.
    let (rx_ring, tx_ring) = (rx_bufs.next_power_of_two(), tx_bufs.next_power_of_two());
    let ring = dpu_rt::alloc::smem(QueuePair::memory(rx_ring, tx_ring), 64)
        .or_else(|| dpu_rt::alloc::ddr(QueuePair::memory(rx_ring, tx_ring) as u64, 64).map(|a| a as usize))?;
    let qp = QueuePair::start(port, queue, ring, rx_ring, tx_ring, Some(hart))?;
    let mac = Port::new(port)?.mac();
    // With LRO the NIC merges segments up to the buffer size.
    let lro = bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0;
    let buf = if lro && !arp_owner { LRO_BUFFER } else { buffer_size(cfg.mtu) };
    let dev = device::NicDevice::new(qp, rx_bufs as usize, tx_bufs as usize, buf, mac, cfg.ip, cfg.prefix, usize::from(cfg.mtu), arp_owner, rx_smem)?;
    // smoltcp draws TCP initial sequence numbers and ephemeral ports from it.
    let seed = crate::random::u64_or((hart as u64) << 32 | (port as u64) << 16 | dpu_hal::csr::time() & 0xffff, "the TCP stack seed");
    stack::Stack::new(dev, port, seed, sockets)
}

/// The port whose subnet holds `ip` (the addresses in force).
pub fn port_for(ip: dpu_net::Ipv4) -> Option<usize> {
    settings::addresses().find(|(_, p)| dpu_net::same_subnet(p.ip, ip, p.prefix)).map(|(i, _)| i)
}
