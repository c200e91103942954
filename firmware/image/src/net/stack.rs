//! One core's TCP/IP stack on one port: a smoltcp interface (IP mode) on
//! the core's own NIC queue pair, and its sockets. Nothing here is shared
//! with other cores (DESIGN.md §3).

use super::device::NicDevice;
use dpu_net::Ipv4;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

/// Sockets of the control plane's stacks.
pub const SOCKETS: usize = 20;
/// Most sockets a stack holds (a data-plane stack: one per remote
/// controller on the port, plus the NVMe/TCP target's listeners).
pub const MAX_SOCKETS: usize = 40;

pub struct Stack {
    pub dev: NicDevice,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub port: usize,
    /// When the interface next needs a poll (mtime), as of the last poll.
    due: Option<u64>,
    /// A socket got data to send since the last poll.
    pub dirty: bool,
    /// Sockets the set holds at most (adding past it would panic).
    cap: usize,
}

/// Offers IPv4 packet `ip` to the receive fast path of the socket it is
/// for; true if that socket took it.
fn fast_rx(sockets: &mut SocketSet<'static>, t: Instant, ip: &[u8]) -> bool {
    if let Some(c) = dpu_net::tcpfast::candidate(ip) {
        let src = IpAddress::Ipv4(Ipv4Address::new(c.src[0], c.src[1], c.src[2], c.src[3]));
        let dst = IpAddress::Ipv4(Ipv4Address::new(c.dst[0], c.dst[1], c.dst[2], c.dst[3]));
        for (_, s) in sockets.iter_mut() {
            let smoltcp::socket::Socket::Tcp(s) = s;
            match s.fast_rx(t, src, dst, &c.seg) {
                tcp::FastRx::Taken => return true,
                tcp::FastRx::Fallback => break,
                tcp::FastRx::NotMine => {}
            }
        }
    }
    false
}

/// Most segments one socket sends by the transmit fast path per poll
/// (a bound, not a limit met in practice: the send window ends first).
const FAST_TX_BURST: usize = 64;

/// Runs every socket's transmit fast path. Returns the segments sent and
/// whether a socket may have more for the interface to send (it fell
/// back, or reached the burst bound).
fn fast_tx(cx: &mut smoltcp::iface::Context, sockets: &mut SocketSet<'static>, t: Instant, tx: &mut super::device::TxSide) -> (usize, bool) {
    let (mut n, mut rest) = (0, false);
    for (_, s) in sockets.iter_mut() {
        let smoltcp::socket::Socket::Tcp(s) = s;
        let mut idle = false;
        for _ in 0..FAST_TX_BURST {
            match s.fast_tx(cx, t, |seg| tx.send_tcp(seg)) {
                tcp::FastTx::Sent => n += 1,
                tcp::FastTx::Idle => {
                    idle = true;
                    break;
                }
                tcp::FastTx::Fallback => break,
            }
        }
        rest |= !idle;
    }
    (n, rest)
}

/// The current time in smoltcp's unit.
pub fn now() -> Instant {
    let t = dpu_hal::csr::time();
    Instant::from_micros((t / (dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000)) as i64)
}

/// smoltcp time back to `mtime` ticks.
pub fn ticks(i: Instant) -> u64 {
    i.total_micros().max(0) as u64 * (dpu_hal::memory_map::TIMEBASE_HZ / 1_000_000)
}

impl Stack {
    /// Builds the stack for up to `sockets` sockets, in the core's SMEM
    /// when it fits (it is touched on every frame), else DDR. `seed` varies
    /// ISNs.
    pub fn new(mut dev: NicDevice, port: usize, seed: u64, sockets: usize) -> Option<&'static mut Stack> {
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut dev, now());
        let ip = dev.tx.ip;
        let prefix = dev.tx.prefix;
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(ip[0], ip[1], ip[2], ip[3])), prefix));
        });
        let cap = sockets.clamp(1, MAX_SOCKETS);
        let storage = dpu_rt::alloc::slice_with(cap, |_| SocketStorage::EMPTY)?;
        let sockets = SocketSet::new(storage);
        dpu_rt::alloc::put_near(Stack { dev, iface, sockets, port, due: None, dirty: false, cap })
    }

    /// Runs the receive fast path, then the interface (ingress of what
    /// the fast path left, then egress), then hands buffers back to the
    /// NIC. Returns whether any socket may have changed.
    ///
    /// The fast path (in the spirit of TAS, EuroSys '19) gives each
    /// received frame that is a plain in-sequence segment on an
    /// ESTABLISHED connection straight to its socket
    /// (`tcp::Socket::fast_rx`, which updates it as the interface's path
    /// would), skipping the interface's IP and TCP parsing and socket
    /// search. At the first frame it cannot take, it stops and leaves that
    /// frame and all later ones to the interface, in order.
    ///
    /// When the fast path took every frame, each socket's transmit fast
    /// path (`tcp::Socket::fast_tx`) then sends what it has in the common
    /// case, headers written straight into the NIC buffer, instead of one
    /// segment per socket per pass of the interface's dispatch; what it
    /// leaves (timers, retransmissions, connection setup and teardown)
    /// the interface sends. When the fast paths left it nothing (no
    /// frame held, every socket idle), the interface is not run at all:
    /// its ingress would find the queue empty and its dispatch nothing to
    /// send (the next frame makes `needs_poll` true again).
    pub fn poll(&mut self) -> bool {
        self.dirty = false;
        let t = now();
        let Stack { dev, sockets, iface, .. } = self;
        let taken = dev.fast_receive(|ip| fast_rx(sockets, t, ip));
        let (sent, rest) = if dev.rx_held() { (0, true) } else { fast_tx(iface.context(), sockets, t, &mut dev.tx) };
        let changed = rest && iface.poll(t, dev, sockets) == smoltcp::iface::PollResult::SocketStateChanged;
        dev.flush();
        self.due = self.iface.poll_at(t, &self.sockets).map(ticks);
        taken + sent > 0 || changed
    }

    /// Whether a poll has anything to do at mtime `now`: a received frame,
    /// data queued on a socket, or a TCP timer. (Sent frames' buffers are
    /// reclaimed after every poll and when the device runs short.)
    pub fn needs_poll(&self, now: u64) -> bool {
        self.dirty || self.dev.tx.qp.rx_ready() || self.due.is_some_and(|d| now >= d)
    }

    /// When the stack next needs to run (TCP timers), in `mtime` ticks,
    /// as of the last `poll` (every socket change is followed by one).
    pub fn poll_at(&self) -> Option<u64> {
        self.due
    }

    /// Opens a TCP connection from `local_port` to `remote:rport` with
    /// receive and send buffers of the given sizes (from DDR; the receive
    /// buffer is the window the peer may fill). The socket is kept for
    /// the life of the stack: reconnecting reuses it (`reconnect`).
    pub fn connect(&mut self, remote: Ipv4, rport: u16, local_port: u16, rx_buf: usize, tx_buf: usize) -> Option<SocketHandle> {
        let rx = dpu_rt::alloc::ddr_bytes(rx_buf, 64)?;
        let tx = dpu_rt::alloc::ddr_bytes(tx_buf, 64)?;
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        // Responses carry the ACK; a short delay still batches pure ACKs.
        s.set_ack_delay(Some(smoltcp::time::Duration::from_micros(200)));
        // A data-center RTO: a lost tail segment costs milliseconds, not 1 s.
        s.set_min_rto(smoltcp::time::Duration::from_millis(u64::from(super::settings::tcp_min_rto_ms())));
        let h = self.sockets.add(s);
        self.reconnect(h, remote, rport, local_port).then_some(h)
    }

    /// A socket listening on TCP `port` with receive and send buffers of
    /// the given sizes (from DDR); after a connection ends, the owner
    /// calls `listen` on it again.
    pub fn listen(&mut self, port: u16, rx_buf: usize, tx_buf: usize) -> Option<SocketHandle> {
        if self.full() {
            return None;
        }
        let rx = dpu_rt::alloc::ddr_bytes(rx_buf, 64)?;
        let tx = dpu_rt::alloc::ddr_bytes(tx_buf, 64)?;
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        s.set_min_rto(smoltcp::time::Duration::from_millis(u64::from(super::settings::tcp_min_rto_ms())));
        s.listen(port).ok()?;
        Some(self.sockets.add(s))
    }

    /// Gives the interface address `ip`/`prefix` (a port's address
    /// changed at run time: [`super::settings`]). The ARP owner announces
    /// it with a gratuitous ARP request (RFC 5227 §2.3: sender and target
    /// address both the new one) so neighbors update their caches.
    pub fn set_addr(&mut self, ip: Ipv4, prefix: u8) {
        if (self.dev.tx.ip, self.dev.tx.prefix) == (ip, prefix) {
            return;
        }
        self.iface.update_ip_addrs(|a| {
            a.clear();
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(ip[0], ip[1], ip[2], ip[3])), prefix));
        });
        self.dev.tx.ip = ip;
        self.dev.tx.prefix = prefix;
        if self.dev.tx.arp_owner() {
            self.dev.tx.arp_request(ip);
        }
        self.dirty = true;
    }

    /// Applies the TCP minimum retransmission timeout in force to every
    /// socket (new ones take it when made).
    pub fn set_min_rto(&mut self, ms: u16) {
        for (_, s) in self.sockets.iter_mut() {
            let smoltcp::socket::Socket::Tcp(s) = s;
            s.set_min_rto(smoltcp::time::Duration::from_millis(u64::from(ms)));
        }
    }

    /// Takes this port's address and MTU and the TCP settings in force
    /// ([`super::settings`]), after a publication. (An MTU is only ever
    /// set up to the boot MTU: the buffers, sized for it, stay large
    /// enough.)
    pub fn apply_settings(&mut self) {
        if let Some(c) = super::settings::port(self.port) {
            self.set_addr(c.ip, c.prefix);
            self.dev.tx.mtu = usize::from(c.mtu);
        }
        self.set_min_rto(super::settings::tcp_min_rto_ms());
    }

    /// Whether the socket set has no room for another socket.
    pub fn full(&self) -> bool {
        self.sockets.iter().count() >= self.cap
    }

    /// Takes socket `h` out of this stack (aborted), to move it with its
    /// buffers to another port's stack ([`Stack::adopt`]).
    pub fn take(&mut self, h: SocketHandle) -> tcp::Socket<'static> {
        let smoltcp::socket::Socket::Tcp(mut s) = self.sockets.remove(h);
        s.abort();
        self.dirty = true;
        s
    }

    /// Adds a socket taken from another stack, listening on `port`;
    /// `Err` gives it back when the set is full or it cannot listen.
    pub fn adopt(&mut self, mut s: tcp::Socket<'static>, port: u16) -> Result<SocketHandle, tcp::Socket<'static>> {
        if self.full() || s.listen(port).is_err() {
            return Err(s);
        }
        self.dirty = true;
        Ok(self.sockets.add(s))
    }

    /// Connects a closed socket again (after a reset or an abort).
    pub fn reconnect(&mut self, h: SocketHandle, remote: Ipv4, rport: u16, local_port: u16) -> bool {
        let ep = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(remote[0], remote[1], remote[2], remote[3])), rport);
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        self.dirty = true;
        if s.is_open() {
            s.abort();
            return false;
        }
        s.connect(cx, ep, local_port).is_ok()
    }

    /// A socket, for the caller to use; the next `needs_poll` is true (a
    /// send, a receive that opens the window, an abort all need the stack).
    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}
