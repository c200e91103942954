//! A smoltcp device over one NIC queue pair. smoltcp runs in IP mode; the
//! device strips the Ethernet header on receive (the frame is handed over
//! in place, no copy) and adds it on transmit from the shared neighbor
//! table. Checksums are the NIC's job both ways (offload), so frames the
//! NIC flagged bad are dropped here. The queue that receives non-IP frames
//! (the control plane's) also answers and learns ARP.

use super::NEIGHBORS;
use dpu_hal::nic::{QueuePair, RxFrame, TxFrame};
use dpu_hal::regs::nic as r;
use dpu_net::{arp, eth, Ipv4, Mac};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::socket::tcp::FastTxSegment;
use smoltcp::wire::IpAddress;
use smoltcp::time::Instant;

/// Largest number of RX buffers re-posted per `flush`.
const REPOST: usize = 64;

/// Device counters.
#[derive(Clone, Copy, Default, Debug)]
pub struct DevStats {
    pub rx_frames: u64,
    /// IPv4 frames a socket's receive fast path took
    /// ([`NicDevice::fast_receive`]).
    pub rx_fast: u64,
    /// IPv4 frames handed to the interface (smoltcp's general path).
    pub rx_slow: u64,
    /// Of `tx_frames`, the TCP segments a socket's transmit fast path
    /// sent ([`TxSide::send_tcp`]).
    pub tx_fast: u64,
    pub rx_dropped: u64,
    pub rx_csum_bad: u64,
    pub tx_frames: u64,
    pub tx_no_buffer: u64,
    /// Packets dropped because the next hop's MAC was unknown (an ARP
    /// request went out instead; TCP retransmits).
    pub no_neighbor: u64,
    pub arp_replies: u64,
}

/// The RX side: buffers by index, and the ones to give back to the NIC.
pub struct RxSide {
    area: &'static mut [u8],
    base: u64,
    buf: usize,
    /// Zero each IPv4 frame once the stack has taken it (the management
    /// server's stack: requests may carry keys, `accel_crypto_key_create`).
    pub wipe: bool,
    repost: [u64; REPOST],
    nrepost: usize,
    /// A frame the receive fast path took off the ring but left to the
    /// interface: `receive` hands it over before any later frame.
    held: Option<RxFrame>,
}

/// The TX side: the queue pair, buffers, addressing.
pub struct TxSide {
    pub qp: QueuePair,
    area: &'static mut [u8],
    base: u64,
    buf: usize,
    free: [u16; 256],
    nfree: usize,
    pub mac: Mac,
    pub ip: Ipv4,
    pub prefix: u8,
    pub mtu: usize,
    /// Answer and learn ARP (the control plane's queue only).
    arp_owner: bool,
    pub stats: DevStats,
}

pub struct NicDevice {
    pub rx: RxSide,
    pub tx: TxSide,
}

impl NicDevice {
    /// A device on a started queue pair with `rx_bufs` RX buffers and
    /// `tx_bufs` TX buffers (<= 256) of `buf` bytes each, carved from DDR.
    /// `rx_smem`: put the RX buffers in the core's SMEM when they fit (the
    /// core reads every received byte once; SMEM is 2 cycles away, DDR
    /// 100 with a cold cache).
    #[allow(clippy::too_many_arguments)]
    pub fn new(mut qp: QueuePair, rx_bufs: usize, tx_bufs: usize, buf: usize, mac: Mac, ip: Ipv4, prefix: u8, mtu: usize, arp_owner: bool, rx_smem: bool) -> Option<NicDevice> {
        let rx_area = match rx_smem.then(|| dpu_rt::alloc::smem_bytes(rx_bufs * buf, 64)).flatten() {
            Some(a) => a,
            None => dpu_rt::alloc::ddr_bytes(rx_bufs * buf, 64)?,
        };
        let tx_area = dpu_rt::alloc::ddr_bytes(tx_bufs.min(256) * buf, 64)?;
        let rx_base = rx_area.as_ptr() as u64;
        let tx_base = tx_area.as_ptr() as u64;
        for i in 0..rx_bufs {
            if !qp.post_rx(rx_base + (i * buf) as u64, buf as u16) {
                break;
            }
        }
        qp.flush();
        let mut free = [0u16; 256];
        let n = tx_bufs.min(256);
        for (i, f) in free.iter_mut().take(n).enumerate() {
            *f = i as u16;
        }
        Some(NicDevice {
            rx: RxSide { area: rx_area, base: rx_base, buf, wipe: false, repost: [0; REPOST], nrepost: 0, held: None },
            tx: TxSide { qp, area: tx_area, base: tx_base, buf, free, nfree: n, mac, ip, prefix, mtu, arp_owner, stats: DevStats::default() },
        })
    }

    /// The receive fast path's side of the device: offers the received
    /// IPv4 packets, in arrival order, to `take`, which returns whether
    /// it consumed one (the frame's buffer then goes back to the NIC).
    /// Stops at the first frame it does not take, or that is not IPv4 or
    /// that the NIC flagged bad: that frame stays first in line for
    /// `receive`, so the interface still sees the rest in order. Returns
    /// the number of frames taken.
    pub fn fast_receive(&mut self, mut take: impl FnMut(&[u8]) -> bool) -> usize {
        let mut n = 0;
        while self.rx.held.is_none() {
            let Some(f) = self.tx.qp.poll_rx() else { break };
            let len = usize::from(f.len);
            let taken = f.flags & r::RX_CSUM_BAD == 0
                && len > eth::HEADER
                && self.rx.frame(f.addr, len).is_some_and(|fr| eth::ethertype(fr) == Some(eth::ETHERTYPE_IPV4) && take(&fr[eth::HEADER..]));
            if !taken {
                self.rx.held = Some(f);
                break;
            }
            self.tx.stats.rx_frames += 1;
            self.tx.stats.rx_fast += 1;
            if self.rx.wipe {
                if let Some(fr) = self.rx.frame_mut(f.addr, len) {
                    fr[eth::HEADER..].fill(0);
                }
            }
            self.rx.give_back(f.addr, &mut self.tx);
            n += 1;
        }
        n
    }

    /// Whether a received frame waits for the interface (the receive fast
    /// path stopped at it).
    pub fn rx_held(&self) -> bool {
        self.rx.held.is_some()
    }

    /// After an `Interface::poll`: gives consumed RX buffers back, reclaims
    /// sent TX buffers and rings the NIC once.
    pub fn flush(&mut self) {
        for i in 0..self.rx.nrepost {
            self.tx.qp.post_rx(self.rx.repost[i], self.rx.buf as u16);
        }
        self.rx.nrepost = 0;
        self.tx.reap();
        self.tx.qp.flush();
    }
}

impl RxSide {
    /// Whether the RX buffers are in the core's SMEM.
    pub fn in_smem(&self) -> bool {
        let smem = dpu_hal::HartId(dpu_hal::csr::mhartid() as usize).smem_base();
        (self.base as usize) >= smem && (self.base as usize) < smem + dpu_hal::memory_map::SMEM_SIZE
    }

    fn give_back(&mut self, addr: u64, tx: &mut TxSide) {
        if self.nrepost == REPOST {
            for i in 0..self.nrepost {
                tx.qp.post_rx(self.repost[i], self.buf as u16);
            }
            self.nrepost = 0;
        }
        self.repost[self.nrepost] = addr;
        self.nrepost += 1;
    }

    fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let off = addr.checked_sub(self.base)? as usize;
        self.area.get(off..off + len.min(self.buf))
    }

    fn frame_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let off = addr.checked_sub(self.base)? as usize;
        self.area.get_mut(off..off + len.min(self.buf))
    }
}

impl TxSide {
    fn reap(&mut self) {
        while let Some((addr, _err)) = self.qp.reap_tx() {
            let i = ((addr - self.base) as usize) / self.buf;
            if self.nfree < self.free.len() {
                self.free[self.nfree] = i as u16;
                self.nfree += 1;
            }
        }
    }

    fn take_buf(&mut self) -> Option<usize> {
        if self.nfree == 0 {
            self.reap();
        }
        if self.nfree == 0 || self.qp.tx_space() == 0 {
            return None;
        }
        self.nfree -= 1;
        Some(usize::from(self.free[self.nfree]))
    }

    fn send(&mut self, idx: usize, len: usize, flags: u16) {
        let addr = self.base + (idx * self.buf) as u64;
        self.qp.push_tx(&TxFrame { addr, len: len as u16, flags, mss: 0 });
        self.stats.tx_frames += 1;
    }

    /// Sends a raw Ethernet frame built by `f` (ARP).
    fn send_raw(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> bool {
        let Some(idx) = self.take_buf() else {
            self.stats.tx_no_buffer += 1;
            return false;
        };
        let at = idx * self.buf;
        let n = f(&mut self.area[at..at + self.buf]);
        if n == 0 {
            self.free[self.nfree] = idx as u16;
            self.nfree += 1;
            return false;
        }
        // Pad to the 60-byte Ethernet minimum (without FCS).
        let len = n.max(60);
        self.area[at + n..at + len].fill(0);
        self.send(idx, len, 0);
        true
    }

    /// Sends a segment of a socket's transmit fast path: the headers
    /// written in place ([`dpu_net::tcpfast::write_headers`]), the payload
    /// copied after them, checksums left to the NIC. False, with nothing
    /// sent, when no TX buffer is free or the next hop's MAC is not known
    /// yet: the interface's path then sends it (or asks ARP first).
    pub fn send_tcp(&mut self, seg: &FastTxSegment<'_>) -> bool {
        #[allow(irrefutable_let_patterns)] // IPv6 may be compiled in on the host
        let IpAddress::Ipv4(dst) = seg.dst else { return false };
        let Some(mac) = eth::next_hop(dst.octets(), self.ip, self.prefix, None).and_then(|h| NEIGHBORS.lookup(h)) else {
            return false;
        };
        let total = dpu_net::tcpfast::HEADERS + seg.payload.len();
        if total > self.buf {
            return false;
        }
        let Some(idx) = self.take_buf() else { return false };
        let at = idx * self.buf;
        let frame = &mut self.area[at..at + total];
        if dpu_net::tcpfast::write_headers(frame, mac, self.mac, seg).is_none() {
            self.free[self.nfree] = idx as u16;
            self.nfree += 1;
            return false;
        }
        frame[dpu_net::tcpfast::HEADERS..].copy_from_slice(seg.payload);
        self.send(idx, total, r::TX_CSUM_IP | r::TX_CSUM_L4);
        self.stats.tx_fast += 1;
        true
    }

    /// Whether this side answers and learns ARP (the control queue).
    pub fn arp_owner(&self) -> bool {
        self.arp_owner
    }

    /// Asks who has `ip` (the reply reaches the ARP owner, which fills
    /// the neighbor table).
    pub fn arp_request(&mut self, ip: Ipv4) -> bool {
        let (mac, me) = (self.mac, self.ip);
        self.send_raw(|b| arp::request(b, mac, me, ip))
    }

    /// Handles a non-IP frame; true if it was ARP.
    fn arp(&mut self, frame: &[u8]) -> bool {
        if !self.arp_owner {
            return false;
        }
        let mut reply = [0u8; arp::FRAME_LEN];
        match arp::handle(frame, self.mac, self.ip, &mut reply) {
            Some(arp::Arp::Learned { ip, mac, reply_len }) => {
                if dpu_net::same_subnet(ip, self.ip, self.prefix) {
                    NEIGHBORS.insert(ip, mac);
                }
                if reply_len > 0 && self.send_raw(|b| {
                    b[..reply_len].copy_from_slice(&reply[..reply_len]);
                    reply_len
                }) {
                    self.stats.arp_replies += 1;
                }
                true
            }
            None => false,
        }
    }
}

pub struct RxToken<'a> {
    data: &'a mut [u8],
    wipe: bool,
}

pub struct TxToken<'a> {
    tx: &'a mut TxSide,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(self.data);
        if self.wipe {
            self.data.fill(0);
        }
        r
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let tx = self.tx;
        let Some(idx) = tx.take_buf() else {
            // `transmit` checked for a buffer; only reachable if the NIC
            // ring filled in between. The packet is lost (TCP retransmits).
            tx.stats.tx_no_buffer += 1;
            let mut scratch = [0u8; 64];
            let n = len.min(scratch.len());
            return f(&mut scratch[..n]);
        };
        let at = idx * tx.buf;
        let total = (len + eth::HEADER).min(tx.buf);
        let frame = &mut tx.area[at..at + total];
        let r = f(&mut frame[eth::HEADER..]);
        let hop = eth::ipv4_dst(&frame[eth::HEADER..]).and_then(|d| eth::next_hop(d, tx.ip, tx.prefix, None));
        match hop.and_then(|h| NEIGHBORS.lookup(h).map(|m| (h, m))) {
            Some((_, mac)) => {
                let src = tx.mac;
                eth::write_header(frame, mac, src, eth::ETHERTYPE_IPV4);
                tx.send(idx, total, r::TX_CSUM_IP | r::TX_CSUM_L4);
            }
            None => {
                tx.stats.no_neighbor += 1;
                // Reuse the buffer for a who-has.
                tx.free[tx.nfree] = idx as u16;
                tx.nfree += 1;
                if let Some(h) = hop {
                    tx.arp_request(h);
                }
            }
        }
        r
    }
}

impl phy::Device for NicDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        loop {
            let f = match self.rx.held.take() {
                Some(f) => f,
                None => self.tx.qp.poll_rx()?,
            };
            let len = usize::from(f.len);
            self.tx.stats.rx_frames += 1;
            let Some(frame) = self.rx.frame(f.addr, len) else {
                self.tx.stats.rx_dropped += 1;
                continue; // not one of our buffers: never give it back
            };
            if f.flags & r::RX_CSUM_BAD != 0 {
                self.tx.stats.rx_csum_bad += 1;
                self.rx.give_back(f.addr, &mut self.tx);
                continue;
            }
            match eth::ethertype(frame) {
                Some(eth::ETHERTYPE_IPV4) if len > eth::HEADER => {
                    self.tx.stats.rx_slow += 1;
                    // The buffer goes back to the NIC after smoltcp copied
                    // what it needs (it copies payload into socket buffers).
                    self.rx.give_back(f.addr, &mut self.tx);
                    let NicDevice { rx, tx } = self;
                    let wipe = rx.wipe;
                    let data = rx.frame_mut(f.addr, len).map_or(&mut [][..], |fr| &mut fr[eth::HEADER..]);
                    return Some((RxToken { data, wipe }, TxToken { tx }));
                }
                _ => {
                    let handled = {
                        let NicDevice { rx, tx } = self;
                        let fr = rx.frame(f.addr, len).unwrap_or(&[]);
                        tx.arp(fr)
                    };
                    if !handled {
                        self.tx.stats.rx_dropped += 1;
                    }
                    self.rx.give_back(f.addr, &mut self.tx);
                }
            }
        }
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxToken<'_>> {
        if self.tx.nfree == 0 {
            self.tx.reap();
        }
        (self.tx.nfree > 0 && self.tx.qp.tx_space() > 0).then_some(TxToken { tx: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.tx.mtu;
        c.max_burst_size = Some(32);
        // The NIC inserts and verifies IPv4 and TCP checksums.
        c.checksum.ipv4 = Checksum::None;
        c.checksum.tcp = Checksum::None;
        c.checksum.udp = Checksum::None;
        c
    }
}
