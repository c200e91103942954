//! Ethernet controller driver (layout: [`crate::regs::nic`]).
//!
//! [`Port`] configures a port (filters, RSS, MTU, offloads); a
//! [`QueuePair`] is one hart's RX and TX descriptor rings. RX buffers are
//! posted by address and size; received frames come back in order with the
//! descriptor's done bit, so polling costs one memory read and no MMIO.
//! TX descriptors are written, handed over with one TAIL write per batch,
//! and reaped in order when the NIC sets their done bit.

use crate::memory_map::{NIC_BASE, NIC_PORTS, NIC_QUEUES};
use crate::regs::nic as r;
use crate::{mem, mmio};

fn port_reg(port: usize, off: u64) -> usize {
    NIC_BASE + port * r::PORT as usize + off as usize
}

fn queue_reg(port: usize, queue: usize, off: u64) -> usize {
    NIC_BASE + port * r::PORT as usize + r::QUEUE_BASE as usize + queue * r::QUEUE as usize + off as usize
}

/// A port's configuration registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub usize);

impl Port {
    /// `None` if the chip has no such port.
    pub fn new(port: usize) -> Option<Port> {
        (port < NIC_PORTS).then_some(Port(port))
    }

    pub fn mac(self) -> [u8; 6] {
        let v = mmio::read64(port_reg(self.0, r::MAC)).to_le_bytes();
        [v[0], v[1], v[2], v[3], v[4], v[5]]
    }

    /// (link up, speed in Gb/s).
    pub fn link(self) -> (bool, u32) {
        let v = mmio::read32(port_reg(self.0, r::LINK));
        (v & r::LINK_UP != 0, v >> 16)
    }

    pub fn set_control(self, bits: u32) {
        mmio::write32(port_reg(self.0, r::CONTROL), bits);
    }

    pub fn set_mtu(self, mtu: u32) {
        mmio::write32(port_reg(self.0, r::MTU), mtu);
    }

    /// Queue for frames that neither a steering rule nor RSS places.
    pub fn set_default_queue(self, q: usize) {
        mmio::write32(port_reg(self.0, r::DEFAULT_QUEUE), q as u32);
    }

    /// Link changes ring `hart`'s mailbox with `regs::nic::MAILBOX_LINK`.
    pub fn notify_link(self, hart: usize) {
        mmio::write32(port_reg(self.0, r::LINK_NOTIFY), r::NOTIFY_ENABLE | hart as u32);
    }

    /// TCP frames to local ports `lo..=hi` go to queue `q` (rule `slot`).
    pub fn steer(self, slot: usize, lo: u16, hi: u16, q: usize) {
        if slot < r::STEER_RULES {
            let v = r::STEER_VALID | (q as u64 & 0xff) << 40 | u64::from(hi) << 16 | u64::from(lo);
            mmio::write64(port_reg(self.0, r::STEER + 8 * slot as u64), v);
        }
    }

    /// Programs the Toeplitz key and the indirection table.
    pub fn set_rss(self, key: &[u8; r::RSS_KEY_LEN], table: &[u8; r::RSS_TABLE_LEN]) {
        for (i, w) in key.chunks_exact(4).enumerate() {
            mmio::write32(port_reg(self.0, r::RSS_KEY + 4 * i as u64), u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
        for (i, w) in table.chunks_exact(4).enumerate() {
            mmio::write32(port_reg(self.0, r::RSS_TABLE + 4 * i as u64), u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
    }

    /// A port counter (`regs::nic::RX_FRAMES` ...).
    pub fn counter(self, reg: u64) -> u64 {
        mmio::read64(port_reg(self.0, reg))
    }
}

/// One 16-byte RX or TX descriptor (layout `regs::nic::DESC_*`): buffer
/// address, length (RX: buffer size when posted, frame length written
/// back), flags, and `aux`: RX the RSS hash written back, TX the MSS of a
/// `TX_TSO` frame. The driver writes and reads it as two words, the
/// simulator's NIC as bytes: one definition of the layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u16,
    pub flags: u16,
    pub aux: u32,
}

const _: () = assert!(r::DESC_SIZE == 16 && r::DESC_ADDR == 0 && r::DESC_LEN == 8 && r::DESC_FLAGS == 10 && r::DESC_RSS == 12 && r::DESC_MSS == 12);

impl Desc {
    pub const fn words(&self) -> [u64; 2] {
        [self.addr, self.len as u64 | (self.flags as u64) << 16 | (self.aux as u64) << 32]
    }

    pub const fn from_words(w: &[u64; 2]) -> Desc {
        Desc { addr: w[0], len: w[1] as u16, flags: (w[1] >> 16) as u16, aux: (w[1] >> 32) as u32 }
    }

    pub fn from_bytes(b: &[u8; r::DESC_SIZE]) -> Desc {
        Desc::from_words(&crate::dma::le_words(b))
    }

    pub fn to_bytes(&self) -> [u8; r::DESC_SIZE] {
        crate::dma::le_bytes(&self.words())
    }
}

/// A received frame: where it is and what the NIC found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFrame {
    pub addr: u64,
    pub len: u16,
    pub flags: u16,
    pub hash: u32,
}

/// A TX request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxFrame {
    pub addr: u64,
    pub len: u16,
    /// `regs::nic::TX_CSUM_IP` ...
    pub flags: u16,
    pub mss: u16,
}

/// One hart's queue pair on one port.
pub struct QueuePair {
    port: usize,
    queue: usize,
    rx_ring: usize,
    rx_size: u32,
    /// Next descriptor the NIC fills / the driver posts.
    rx_head: u32,
    rx_tail: u32,
    tx_ring: usize,
    tx_size: u32,
    /// Next descriptor to write / to reap.
    tx_tail: u32,
    tx_head: u32,
    tx_dirty: bool,
    rx_dirty: bool,
}

impl QueuePair {
    /// Bytes of ring memory for `rx` + `tx` descriptors.
    pub const fn memory(rx: u32, tx: u32) -> usize {
        (rx + tx) as usize * r::DESC_SIZE
    }

    /// Starts queue `queue` of `port` with its rings at `ring_mem`
    /// (16-byte aligned, `memory(rx, tx)` bytes). Frames and TX
    /// completions ring `notify_hart`'s mailbox. `None` if the queue does
    /// not exist or the NIC refused the configuration.
    pub fn start(port: usize, queue: usize, ring_mem: usize, rx: u32, tx: u32, notify_hart: Option<usize>) -> Option<QueuePair> {
        if port >= NIC_PORTS || queue >= NIC_QUEUES {
            return None;
        }
        let tx_ring = ring_mem + rx as usize * r::DESC_SIZE;
        mem::zero(ring_mem, QueuePair::memory(rx, tx));
        mmio::write64(queue_reg(port, queue, r::RX_BASE), ring_mem as u64);
        mmio::write32(queue_reg(port, queue, r::RX_SIZE), rx);
        mmio::write64(queue_reg(port, queue, r::TX_BASE), tx_ring as u64);
        mmio::write32(queue_reg(port, queue, r::TX_SIZE), tx);
        mmio::write32(queue_reg(port, queue, r::Q_NOTIFY), notify_hart.map_or(0, |h| r::NOTIFY_ENABLE | h as u32));
        mmio::write32(queue_reg(port, queue, r::Q_CONTROL), 1);
        if mmio::read32(queue_reg(port, queue, r::Q_STATUS)) != 1 {
            return None;
        }
        Some(QueuePair {
            port,
            queue,
            rx_ring: ring_mem,
            rx_size: rx,
            rx_head: 0,
            rx_tail: 0,
            tx_ring,
            tx_size: tx,
            tx_tail: 0,
            tx_head: 0,
            tx_dirty: false,
            rx_dirty: false,
        })
    }

    pub fn port(&self) -> usize {
        self.port
    }

    pub fn queue(&self) -> usize {
        self.queue
    }

    /// RX descriptors without a buffer.
    pub fn rx_free(&self) -> u32 {
        self.rx_size - self.rx_tail.wrapping_sub(self.rx_head)
    }

    /// Posts an RX buffer (visible to the NIC after `flush`).
    pub fn post_rx(&mut self, addr: u64, len: u16) -> bool {
        if self.rx_free() == 0 {
            return false;
        }
        let d = self.rx_ring + (self.rx_tail & (self.rx_size - 1)) as usize * r::DESC_SIZE;
        mem::write_words(d, &Desc { addr, len, flags: 0, aux: 0 }.words());
        self.rx_tail = self.rx_tail.wrapping_add(1);
        self.rx_dirty = true;
        true
    }

    /// Whether the NIC has written the next RX descriptor back (one memory
    /// read, no MMIO).
    #[inline]
    pub fn rx_ready(&self) -> bool {
        if self.rx_head == self.rx_tail {
            return false;
        }
        let d = self.rx_ring + (self.rx_head & (self.rx_size - 1)) as usize * r::DESC_SIZE;
        (mmio::read64(d + 8) >> 16) as u16 & r::RX_DD != 0
    }

    /// The next received frame, if the NIC has written it.
    #[inline]
    pub fn poll_rx(&mut self) -> Option<RxFrame> {
        if self.rx_head == self.rx_tail {
            return None;
        }
        let d = self.rx_ring + (self.rx_head & (self.rx_size - 1)) as usize * r::DESC_SIZE;
        let w1 = mmio::read64(d + 8);
        let flags = (w1 >> 16) as u16;
        if flags & r::RX_DD == 0 {
            return None;
        }
        let x = Desc::from_words(&[mmio::read64(d), w1]);
        self.rx_head = self.rx_head.wrapping_add(1);
        Some(RxFrame { addr: x.addr, len: x.len, flags: x.flags, hash: x.aux })
    }

    /// TX descriptors free.
    pub fn tx_space(&self) -> u32 {
        self.tx_size - self.tx_tail.wrapping_sub(self.tx_head)
    }

    /// Queues a frame (sent after `flush`).
    pub fn push_tx(&mut self, f: &TxFrame) -> bool {
        if self.tx_space() == 0 {
            return false;
        }
        let d = self.tx_ring + (self.tx_tail & (self.tx_size - 1)) as usize * r::DESC_SIZE;
        mem::write_words(d, &Desc { addr: f.addr, len: f.len, flags: f.flags, aux: u32::from(f.mss) }.words());
        self.tx_tail = self.tx_tail.wrapping_add(1);
        self.tx_dirty = true;
        true
    }

    /// The oldest TX descriptor the NIC is done with: (buffer, error).
    #[inline]
    pub fn reap_tx(&mut self) -> Option<(u64, bool)> {
        if self.tx_head == self.tx_tail {
            return None;
        }
        let d = self.tx_ring + (self.tx_head & (self.tx_size - 1)) as usize * r::DESC_SIZE;
        let w1 = mmio::read64(d + 8);
        let flags = (w1 >> 16) as u16;
        if flags & r::TX_DD == 0 {
            return None;
        }
        self.tx_head = self.tx_head.wrapping_add(1);
        Some((mmio::read64(d), flags & r::TX_ERR != 0))
    }

    /// Whether the oldest TX descriptor is done (ready to reap).
    #[inline]
    pub fn tx_reapable(&self) -> bool {
        if self.tx_head == self.tx_tail {
            return false;
        }
        let d = self.tx_ring + (self.tx_head & (self.tx_size - 1)) as usize * r::DESC_SIZE;
        (mmio::read64(d + 8) >> 16) as u16 & r::TX_DD != 0
    }

    /// TX descriptors not reaped yet.
    pub fn tx_pending(&self) -> u32 {
        self.tx_tail.wrapping_sub(self.tx_head)
    }

    /// Hands posted RX buffers and queued TX frames to the NIC.
    pub fn flush(&mut self) {
        if self.rx_dirty {
            self.rx_dirty = false;
            mmio::write32(queue_reg(self.port, self.queue, r::RX_TAIL), self.rx_tail);
        }
        if self.tx_dirty {
            self.tx_dirty = false;
            mmio::write32(queue_reg(self.port, self.queue, r::TX_TAIL), self.tx_tail);
        }
    }
}
