//! The NIC's registers and per-port / per-queue state (layout:
//! `dpu_hal::regs::nic`). Frame movement between DPU memory and the wire
//! is in [`super::component`]; this file only decodes register accesses and keeps
//! the configuration and counters.

use dpu_hal::regs::nic as r;

/// Default Microsoft RSS key (the NIC's reset value).
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30,
    0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

pub const Q_RUNNING: u32 = 1;
pub const Q_BAD_CONFIG: u32 = 2;

/// One queue pair.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    pub rx_base: u64,
    pub rx_size: u32,
    pub rx_tail: u32,
    pub rx_head: u32,
    pub tx_base: u64,
    pub tx_size: u32,
    pub tx_tail: u32,
    pub tx_head: u32,
    /// TX descriptors read by the NIC but not yet written back (done).
    pub tx_done: u32,
    pub notify: u32,
    pub status: u32,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub rx_no_buffer: u64,
}

impl Queue {
    pub fn running(&self) -> bool {
        self.status == Q_RUNNING
    }
}

/// Port counters (`RX_FRAMES` ...).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PortCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub rx_filtered: u64,
    pub rx_no_buffer: u64,
    pub rx_csum_errors: u64,
    pub rx_oversize: u64,
    pub tx_errors: u64,
    /// Frames dropped while the link was down (both directions).
    pub link_down_drops: u64,
}

/// One Ethernet port.
#[derive(Clone, Debug)]
pub struct Port {
    pub mac: [u8; 6],
    pub speed_gbps: u32,
    pub link_up: bool,
    pub control: u32,
    pub default_queue: u32,
    pub link_notify: u32,
    pub mtu: u32,
    pub mac_filters: [u64; r::MAC_FILTERS],
    pub steer: [u64; r::STEER_RULES],
    pub rss_key: [u8; r::RSS_KEY_LEN],
    pub rss_table: [u8; r::RSS_TABLE_LEN],
    pub counters: PortCounters,
    pub queues: Vec<Queue>,
    /// The TX serializer is busy until this cycle.
    pub tx_free: u64,
    /// The port's DMA (frames in and out of DPU memory) is busy until.
    pub dma_free: u64,
}

/// Result of a register write the caller must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    None,
    /// New TX descriptors on (port, queue).
    Tx(usize, usize),
    /// New RX buffers on (port, queue) (frames waiting may now land).
    Rx(usize, usize),
}

/// The whole controller.
pub struct Nic {
    pub ports: Vec<Port>,
    pub bytes_per_cycle: u64,
    pub desc_cycles: u64,
}

impl Nic {
    /// `ports`: (MAC, speed) of each wired port; the chip may have more
    /// port register blocks than the board wires (those stay link-down).
    pub fn new(chip_ports: usize, queues: usize, wired: &[([u8; 6], u32)], bytes_per_cycle: u64, desc_cycles: u64) -> Nic {
        let ports = (0..chip_ports)
            .map(|p| {
                let (mac, speed_gbps) = wired.get(p).copied().unwrap_or(([0; 6], 0));
                Port {
                    mac,
                    speed_gbps,
                    link_up: wired.get(p).is_some(),
                    control: 0,
                    default_queue: 0,
                    link_notify: 0,
                    mtu: 1500,
                    mac_filters: [0; r::MAC_FILTERS],
                    steer: [0; r::STEER_RULES],
                    rss_key: DEFAULT_RSS_KEY,
                    rss_table: std::array::from_fn(|i| (i % queues.max(1)) as u8),
                    counters: PortCounters::default(),
                    queues: vec![Queue::default(); queues],
                    tx_free: 0,
                    dma_free: 0,
                }
            })
            .collect();
        Nic { ports, bytes_per_cycle: bytes_per_cycle.max(1), desc_cycles }
    }

    /// NIC DMA cycles to move one frame of `len` bytes (plus its descriptor).
    /// The hart a queue notifies (its owner), or `u32::MAX` if none.
    pub fn queue_hart(&self, p: usize, q: usize) -> u32 {
        match self.ports.get(p).and_then(|port| port.queues.get(q)) {
            Some(qu) if qu.notify & r::NOTIFY_ENABLE != 0 => qu.notify & 0xffff,
            _ => u32::MAX,
        }
    }

    pub fn dma_cycles(&self, len: usize) -> u64 {
        self.desc_cycles + (len as u64).div_ceil(self.bytes_per_cycle)
    }

    fn split(off: u64) -> (usize, u64) {
        ((off / r::PORT) as usize, off % r::PORT)
    }

    /// Register read. `None` = access fault.
    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let (p, reg) = Self::split(off);
        let port = self.ports.get(p)?;
        if reg >= r::QUEUE_BASE {
            let q = ((reg - r::QUEUE_BASE) / r::QUEUE) as usize;
            let qreg = (reg - r::QUEUE_BASE) % r::QUEUE;
            let qu = port.queues.get(q)?;
            return Some(match (qreg, size) {
                (r::RX_BASE, 8) => qu.rx_base,
                (r::RX_SIZE, 4) => qu.rx_size.into(),
                (r::RX_TAIL, 4) => qu.rx_tail.into(),
                (r::RX_HEAD, 4) => qu.rx_head.into(),
                (r::TX_BASE, 8) => qu.tx_base,
                (r::TX_SIZE, 4) => qu.tx_size.into(),
                (r::TX_TAIL, 4) => qu.tx_tail.into(),
                (r::TX_HEAD, 4) => qu.tx_head.into(),
                (r::Q_NOTIFY, 4) => qu.notify.into(),
                (r::Q_CONTROL, 4) => u64::from(qu.running()),
                (r::Q_STATUS, 4) => qu.status.into(),
                (r::Q_RX_FRAMES, 8) => qu.rx_frames,
                (r::Q_RX_BYTES, 8) => qu.rx_bytes,
                (r::Q_TX_FRAMES, 8) => qu.tx_frames,
                (r::Q_TX_BYTES, 8) => qu.tx_bytes,
                (r::Q_RX_NO_BUFFER, 8) => qu.rx_no_buffer,
                _ => return None,
            });
        }
        let c = &port.counters;
        let in_window = |base: u64, len: usize| reg >= base && reg < base + len as u64;
        Some(match (reg, size) {
            (r::MAC, 8) => {
                let mut b = [0u8; 8];
                b[..6].copy_from_slice(&port.mac);
                u64::from_le_bytes(b)
            }
            (r::LINK, 4) => u64::from((port.link_up as u32 * r::LINK_UP) | (port.speed_gbps << 16)),
            (r::CONTROL, 4) => port.control.into(),
            (r::DEFAULT_QUEUE, 4) => port.default_queue.into(),
            (r::LINK_NOTIFY, 4) => port.link_notify.into(),
            (r::MTU, 4) => port.mtu.into(),
            (r::RX_FRAMES, 8) => c.rx_frames,
            (r::RX_BYTES, 8) => c.rx_bytes,
            (r::TX_FRAMES, 8) => c.tx_frames,
            (r::TX_BYTES, 8) => c.tx_bytes,
            (r::RX_FILTERED, 8) => c.rx_filtered,
            (r::RX_NO_BUFFER, 8) => c.rx_no_buffer,
            (r::RX_CSUM_ERRORS, 8) => c.rx_csum_errors,
            (r::RX_OVERSIZE, 8) => c.rx_oversize,
            (r::TX_ERRORS, 8) => c.tx_errors,
            (o, 8) if in_window(r::MAC_FILTER, r::MAC_FILTERS * 8) && o % 8 == 0 => port.mac_filters[((o - r::MAC_FILTER) / 8) as usize],
            (o, 8) if in_window(r::STEER, r::STEER_RULES * 8) && o % 8 == 0 => port.steer[((o - r::STEER) / 8) as usize],
            (o, s) if in_window(r::RSS_KEY, r::RSS_KEY_LEN) && o + u64::from(s) <= r::RSS_KEY + r::RSS_KEY_LEN as u64 => {
                le_read(&port.rss_key[(o - r::RSS_KEY) as usize..], s)
            }
            (o, s) if in_window(r::RSS_TABLE, r::RSS_TABLE_LEN) && o + u64::from(s) <= r::RSS_TABLE + r::RSS_TABLE_LEN as u64 => {
                le_read(&port.rss_table[(o - r::RSS_TABLE) as usize..], s)
            }
            _ => return None,
        })
    }

    /// Register write. `Err` = access fault.
    pub fn write(&mut self, off: u64, size: u8, v: u64) -> Result<Kick, ()> {
        let (p, reg) = Self::split(off);
        let nq = self.ports.first().map_or(0, |x| x.queues.len());
        let port = self.ports.get_mut(p).ok_or(())?;
        if reg >= r::QUEUE_BASE {
            let q = ((reg - r::QUEUE_BASE) / r::QUEUE) as usize;
            let qreg = (reg - r::QUEUE_BASE) % r::QUEUE;
            let qu = port.queues.get_mut(q).ok_or(())?;
            match (qreg, size) {
                (r::RX_BASE, 8) => qu.rx_base = v,
                (r::RX_SIZE, 4) => qu.rx_size = v as u32,
                (r::TX_BASE, 8) => qu.tx_base = v,
                (r::TX_SIZE, 4) => qu.tx_size = v as u32,
                (r::Q_NOTIFY, 4) => qu.notify = v as u32,
                (r::Q_CONTROL, 4) => {
                    let ok = |base: u64, n: u32| n.is_power_of_two() && (2..=4096).contains(&n) && base % 16 == 0;
                    qu.status = if v & 1 == 0 {
                        0
                    } else if ok(qu.rx_base, qu.rx_size) && ok(qu.tx_base, qu.tx_size) {
                        Q_RUNNING
                    } else {
                        Q_BAD_CONFIG
                    };
                    qu.rx_head = 0;
                    qu.rx_tail = 0;
                    qu.tx_head = 0;
                    qu.tx_tail = 0;
                    qu.tx_done = 0;
                }
                (r::RX_TAIL, 4) => {
                    if !qu.running() {
                        return Ok(Kick::None);
                    }
                    // At most a ring's worth of buffers may be outstanding.
                    let t = v as u32;
                    if t.wrapping_sub(qu.rx_head) <= qu.rx_size {
                        qu.rx_tail = t;
                    }
                    return Ok(Kick::Rx(p, q));
                }
                (r::TX_TAIL, 4) => {
                    if !qu.running() {
                        return Ok(Kick::None);
                    }
                    let t = v as u32;
                    if t.wrapping_sub(qu.tx_done) <= qu.tx_size {
                        qu.tx_tail = t;
                    }
                    return Ok(Kick::Tx(p, q));
                }
                _ => return Err(()),
            }
            return Ok(Kick::None);
        }
        let in_window = |base: u64, len: usize| reg >= base && reg < base + len as u64;
        match (reg, size) {
            (r::CONTROL, 4) => port.control = v as u32,
            (r::DEFAULT_QUEUE, 4) => {
                if (v as usize) < nq {
                    port.default_queue = v as u32;
                }
            }
            (r::LINK_NOTIFY, 4) => port.link_notify = v as u32,
            (r::MTU, 4) => port.mtu = (v as u32).clamp(576, 9000),
            (o, 8) if in_window(r::MAC_FILTER, r::MAC_FILTERS * 8) && o % 8 == 0 => port.mac_filters[((o - r::MAC_FILTER) / 8) as usize] = v,
            (o, 8) if in_window(r::STEER, r::STEER_RULES * 8) && o % 8 == 0 => port.steer[((o - r::STEER) / 8) as usize] = v,
            (o, s) if in_window(r::RSS_KEY, r::RSS_KEY_LEN) && o + u64::from(s) <= r::RSS_KEY + r::RSS_KEY_LEN as u64 => {
                le_write(&mut port.rss_key[(o - r::RSS_KEY) as usize..], s, v)
            }
            (o, s) if in_window(r::RSS_TABLE, r::RSS_TABLE_LEN) && o + u64::from(s) <= r::RSS_TABLE + r::RSS_TABLE_LEN as u64 => {
                let at = (o - r::RSS_TABLE) as usize;
                le_write(&mut port.rss_table[at..], s, v);
                // Entries naming a queue that does not exist steer to queue 0.
                for e in port.rss_table[at..at + usize::from(s)].iter_mut() {
                    if usize::from(*e) >= nq {
                        *e = 0;
                    }
                }
            }
            _ => return Err(()),
        }
        Ok(Kick::None)
    }
}

fn le_read(b: &[u8], size: u8) -> u64 {
    let mut v = [0u8; 8];
    v[..usize::from(size)].copy_from_slice(&b[..usize::from(size)]);
    u64::from_le_bytes(v)
}

fn le_write(b: &mut [u8], size: u8, v: u64) {
    b[..usize::from(size)].copy_from_slice(&v.to_le_bytes()[..usize::from(size)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic() -> Nic {
        Nic::new(2, 4, &[([2, 0, 0, 0, 0, 1], 100)], 32, 20)
    }

    #[test]
    fn mac_link_and_counters_read_back() {
        let n = nic();
        assert_eq!(n.read(r::MAC, 8), Some(u64::from_le_bytes([2, 0, 0, 0, 0, 1, 0, 0])));
        assert_eq!(n.read(r::LINK, 4), Some(u64::from(r::LINK_UP | 100 << 16)));
        // Port 1 is not wired: link down.
        assert_eq!(n.read(r::PORT + r::LINK, 4), Some(0));
        assert_eq!(n.read(2 * r::PORT + r::LINK, 4), None, "no port 2");
        assert_eq!(n.read(r::LINK, 8), None, "wrong size");
    }

    #[test]
    fn queue_start_checks_configuration() {
        let mut n = nic();
        let q = r::QUEUE_BASE + r::QUEUE;
        n.write(q + r::RX_BASE, 8, 0x1000).unwrap();
        n.write(q + r::RX_SIZE, 4, 64).unwrap();
        n.write(q + r::TX_BASE, 8, 0x2008).unwrap();
        n.write(q + r::TX_SIZE, 4, 64).unwrap();
        n.write(q + r::Q_CONTROL, 4, 1).unwrap();
        assert_eq!(n.read(q + r::Q_STATUS, 4), Some(u64::from(Q_BAD_CONFIG)), "misaligned TX ring");
        n.write(q + r::TX_BASE, 8, 0x2000).unwrap();
        n.write(q + r::Q_CONTROL, 4, 1).unwrap();
        assert_eq!(n.read(q + r::Q_STATUS, 4), Some(u64::from(Q_RUNNING)));
        assert_eq!(n.write(q + r::RX_TAIL, 4, 8), Ok(Kick::Rx(0, 1)));
        assert_eq!(n.write(q + r::TX_TAIL, 4, 3), Ok(Kick::Tx(0, 1)));
        // More buffers than the ring holds are refused.
        n.write(q + r::RX_TAIL, 4, 65).unwrap();
        assert_eq!(n.read(q + r::RX_TAIL, 4), Some(8));
        assert_eq!(n.write(4 * r::QUEUE + r::QUEUE_BASE + r::RX_TAIL, 4, 1), Err(()), "no queue 4");
    }

    #[test]
    fn rss_key_and_table_bytes() {
        let mut n = nic();
        n.write(r::RSS_KEY, 4, 0x0403_0201).unwrap();
        assert_eq!(&n.ports[0].rss_key[..4], &[1, 2, 3, 4]);
        n.write(r::RSS_TABLE + 4, 4, 0x0907_0301).unwrap();
        assert_eq!(&n.ports[0].rss_table[4..8], &[1, 3, 0, 0], "queues 7 and 9 do not exist");
        assert_eq!(n.write(r::RSS_KEY + 38, 4, 0), Err(()), "crosses the end of the key");
    }
}
