//! The network as a component: the NIC moving frames between its
//! descriptor rings in DPU memory and the wire (TX: read, offload,
//! serialize; RX: filter, steer, validate, write, write back, notify), and
//! frames moving hop by hop through the switch to the target, initiator
//! and operator models and the bridge.
//!
//! Its events (kinds in [`super::network::payload`]) come back to
//! [`Network`] as a [`Component`]; it acts through a [`DevCtx`] (DPU
//! memory, mailboxes, the event queue, the I/O trace). Callers holding
//! the whole bus use the `Bus` entry points at the end.

use super::network::{payload, Hop, Network};
use super::switch::Attached;
use super::{checksum, frame, offload, rss};
use crate::bus::Bus;
use crate::devctx::{Component, DevCtx};
use crate::event::Payload;
use dpu_hal::nic::Desc as NicDesc;
use dpu_hal::regs::nic as r;

/// Ethernet header plus one VLAN tag on top of the MTU.
const L2_OVERHEAD: usize = 18;

/// LRO holds a flow's segments at most this long (cycles): 2 us, about 16
/// full-size frames at 100 Gb/s.
const LRO_HOLD: u64 = 2000;

impl Network {
    /// The firmware moved TX_TAIL of (port, queue): send the new frames.
    pub fn nic_tx_kick(&mut self, p: usize, q: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let mut last_done = now;
        let mut any = false;
        loop {
            let qu = &self.nic.ports[p].queues[q];
            if qu.tx_head == qu.tx_tail {
                break;
            }
            let index = qu.tx_head;
            let at = qu.tx_base + u64::from(index & (qu.tx_size - 1)) * r::DESC_SIZE as u64;
            self.nic.ports[p].queues[q].tx_head = index.wrapping_add(1);
            any = true;
            let mut d = [0u8; r::DESC_SIZE];
            let ok = ctx.mem.read(at, &mut d).is_some();
            let d = NicDesc::from_bytes(&d);
            let (addr, len, flags, mss) = (d.addr, usize::from(d.len), d.flags, d.aux as u16);
            let port = &self.nic.ports[p];
            let max = usize::from(port.mtu as u16) + L2_OVERHEAD;
            let mut frame = vec![0u8; len];
            let readable = ok && len >= 14 && ctx.mem.read(addr, &mut frame).is_some();
            let dma_start = now.max(port.dma_free);
            let dma_end = dma_start + self.nic.dma_cycles(len);
            self.nic.ports[p].dma_free = dma_end;
            last_done = last_done.max(dma_end);
            let frames = if !readable || (flags & r::TX_TSO == 0 && len > max) {
                Err(())
            } else {
                tx_offloads(frame, flags, mss, max)
            };
            let wb = match frames {
                Ok(frames) => {
                    for f in frames {
                        if let Some(t) = ctx.iotrace {
                            t.borrow_mut().frame(dma_end, self.nic.queue_hart(p, q), true, &f);
                        }
                        self.nic_transmit(p, q, dma_end, f, ctx);
                    }
                    r::TX_DD
                }
                Err(()) => {
                    self.nic.ports[p].counters.tx_errors += 1;
                    r::TX_DD | r::TX_ERR
                }
            };
            self.tx_writeback.entry((p, q)).or_default().push_back((index, wb));
        }
        if any {
            ctx.events.push(last_done, self.id, Payload::new(payload::TX_DONE, p as u64, q as u64));
        }
    }

    /// One frame leaves DPU port `p` once it is read from memory (`ready`).
    fn nic_transmit(&mut self, p: usize, q: usize, ready: u64, f: Vec<u8>, ctx: &mut DevCtx<'_>) {
        let port = &mut self.nic.ports[p];
        if !port.link_up || port.control & r::CTL_TX_ENABLE == 0 {
            port.counters.link_down_drops += 1;
            return;
        }
        port.counters.tx_frames += 1;
        port.counters.tx_bytes += f.len() as u64;
        port.queues[q].tx_frames += 1;
        port.queues[q].tx_bytes += f.len() as u64;
        self.capture(p, ready, &f);
        let Some(sp) = self.switch.port_of(Attached::Dpu(p)) else { return };
        if let Some(at) = self.switch.ingress(sp, ready, f.len()) {
            let id = self.stash(Hop::Switch { ingress: sp }, f);
            ctx.events.push(at, self.id, Payload::new(payload::FRAME, id, 0));
        }
    }

    /// TX descriptors read by the NIC are written back (buffers reusable).
    pub fn nic_tx_done(&mut self, p: usize, q: usize, ctx: &mut DevCtx<'_>) {
        let Some(wb) = self.tx_writeback.get_mut(&(p, q)) else { return };
        let pending: Vec<(u32, u16)> = wb.drain(..).collect();
        let qu = &self.nic.ports[p].queues[q];
        let (base, size, notify) = (qu.tx_base, qu.tx_size, qu.notify);
        if !qu.running() || size == 0 {
            return;
        }
        for (index, flags) in pending {
            let at = base + u64::from(index & (size - 1)) * r::DESC_SIZE as u64;
            let wb = NicDesc { flags, ..NicDesc::default() }.to_bytes();
            ctx.mem.write(at + r::DESC_FLAGS as u64, &wb[r::DESC_FLAGS..r::DESC_FLAGS + 2]);
            let qu = &mut self.nic.ports[p].queues[q];
            qu.tx_done = index.wrapping_add(1);
        }
        if notify & r::NOTIFY_ENABLE != 0 {
            ctx.irq.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
        }
    }

    /// A frame's last bit reached DPU port `p` at `now`.
    pub fn nic_receive(&mut self, p: usize, f: Vec<u8>, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        self.capture(p, now, &f);
        let port = &mut self.nic.ports[p];
        if !port.link_up {
            port.counters.link_down_drops += 1;
            return;
        }
        if port.control & r::CTL_RX_ENABLE == 0 {
            port.counters.rx_filtered += 1;
            return;
        }
        let Some(dst) = frame::dst_mac(&f) else {
            port.counters.rx_filtered += 1;
            return;
        };
        let bcast = dst == [0xff; 6];
        let mine = dst == port.mac
            || port.control & r::CTL_PROMISC != 0
            || (bcast && port.control & r::CTL_BROADCAST != 0)
            || port.mac_filters.iter().any(|&m| m & r::MAC_FILTER_VALID != 0 && m.to_le_bytes()[..6] == dst);
        if !mine {
            port.counters.rx_filtered += 1;
            return;
        }
        if f.len() > port.mtu as usize + L2_OVERHEAD {
            port.counters.rx_oversize += 1;
            return;
        }
        // Steering: exact rules, then RSS, then the default queue.
        let hash = rss::hash_frame(&port.rss_key, &f);
        let key = frame::flow_key(&f);
        let mut queue = port.default_queue as usize;
        let mut steered = false;
        if let Some(k) = key {
            for &rule in &port.steer {
                let (lo, hi) = (rule as u16, (rule >> 16) as u16);
                if rule & r::STEER_VALID != 0 && (lo..=hi).contains(&k.dst_port) {
                    queue = ((rule >> 40) & 0xff) as usize;
                    steered = true;
                    break;
                }
            }
        }
        let mut flags = r::RX_DD;
        let mut rss_value = 0u32;
        if let Some((h, kind)) = hash {
            rss_value = h;
            flags |= if kind == rss::HashType::Ipv4Tcp { r::RX_RSS_TCP } else { r::RX_RSS_IPV4 };
            if !steered && port.control & r::CTL_RSS != 0 {
                queue = usize::from(port.rss_table[(h & 0x7f) as usize]);
            }
        }
        if port.control & r::CTL_RX_CSUM != 0 && frame::ethertype(&f) == Some(0x0800) {
            let good = checksum::ipv4_header_ok(&f) && checksum::l4_checksum_ok(&f) != Some(false);
            if good {
                flags |= r::RX_CSUM_OK;
            } else {
                flags |= r::RX_CSUM_BAD;
                port.counters.rx_csum_errors += 1;
            }
        }
        let lro = port.control & r::CTL_LRO != 0 && flags & r::RX_CSUM_OK != 0 && key.is_some();
        if lro {
            // Large receive offload: hold in-order segments of a flow and
            // deliver them as one frame (at a PSH, a gap, a size limit, or
            // after LRO_HOLD cycles).
            let max = self.rx_buffer_size(p, queue, ctx).unwrap_or(0).min(r::MAX_FRAME);
            let l = self.lro.entry((p, queue)).or_insert_with(|| crate::net::offload::Lro::new(max, 8));
            let ready = l.push(f);
            let held = l.held_flows() > 0;
            for fr in ready {
                self.nic_deliver(p, queue, fr, flags, rss_value, ctx);
            }
            if held && self.lro_flush.insert((p, queue)) {
                ctx.events.push(now + LRO_HOLD, self.id, Payload::new(payload::LRO_FLUSH, p as u64, queue as u64));
            }
            return;
        }
        self.nic_deliver(p, queue, f, flags, rss_value, ctx);
    }

    /// Size of the buffer the next frame on (port, queue) would land in.
    fn rx_buffer_size(&self, p: usize, q: usize, ctx: &mut DevCtx<'_>) -> Option<usize> {
        let qu = self.nic.ports.get(p)?.queues.get(q)?;
        if !qu.running() || qu.rx_head == qu.rx_tail {
            return None;
        }
        let at = qu.rx_base + u64::from(qu.rx_head & (qu.rx_size - 1)) * r::DESC_SIZE as u64;
        let mut d = [0u8; r::DESC_SIZE];
        ctx.mem.read(at, &mut d)?;
        Some(usize::from(NicDesc::from_bytes(&d).len))
    }

    /// The LRO hold time of (port, queue) ended: deliver what it holds.
    pub fn nic_lro_flush(&mut self, p: usize, q: usize, ctx: &mut DevCtx<'_>) {
        self.lro_flush.remove(&(p, q));
        let Some(l) = self.lro.get_mut(&(p, q)) else { return };
        let frames = l.flush();
        for f in frames {
            let flags = r::RX_DD | r::RX_CSUM_OK | r::RX_RSS_TCP;
            let hash = crate::net::rss::hash_frame(&self.nic.ports[p].rss_key, &f).map_or(0, |h| h.0);
            self.nic_deliver(p, q, f, flags, hash, ctx);
        }
    }

    /// Puts a classified frame into the next RX buffer of (port, queue).
    fn nic_deliver(&mut self, p: usize, queue: usize, f: Vec<u8>, mut flags: u16, rss_value: u32, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let port = &mut self.nic.ports[p];
        if f.len() > port.mtu as usize + L2_OVERHEAD {
            flags |= r::RX_LRO;
        }
        let Some(qu) = port.queues.get_mut(queue) else { return };
        if !qu.running() || qu.rx_head == qu.rx_tail {
            qu.rx_no_buffer += 1;
            port.counters.rx_no_buffer += 1;
            return;
        }
        let index = qu.rx_head;
        let at = qu.rx_base + u64::from(index & (qu.rx_size - 1)) * r::DESC_SIZE as u64;
        let mut d = [0u8; r::DESC_SIZE];
        if ctx.mem.read(at, &mut d).is_none() {
            self.nic.ports[p].counters.rx_no_buffer += 1;
            return;
        }
        let bufsize = usize::from(NicDesc::from_bytes(&d).len);
        let port = &mut self.nic.ports[p];
        if f.len() > bufsize {
            port.counters.rx_oversize += 1;
            return;
        }
        let qu = &mut port.queues[queue];
        qu.rx_head = index.wrapping_add(1);
        qu.rx_frames += 1;
        qu.rx_bytes += f.len() as u64;
        port.counters.rx_frames += 1;
        port.counters.rx_bytes += f.len() as u64;
        let start = now.max(port.dma_free);
        let end = start + self.nic.dma_cycles(f.len());
        self.nic.ports[p].dma_free = end;
        // Flags and hash ride in the frame's stash: (flags, hash) appended.
        let mut f = f;
        f.extend_from_slice(&flags.to_le_bytes());
        f.extend_from_slice(&rss_value.to_le_bytes());
        let id = self.stash(Hop::RxWrite { port: p, queue, index }, f);
        ctx.events.push(end, self.id, Payload::new(payload::FRAME, id, 0));
    }

    /// The NIC writes a received frame and its descriptor.
    fn nic_rx_write(&mut self, p: usize, q: usize, index: u32, mut f: Vec<u8>, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let tail = f.split_off(f.len() - 6);
        let flags = u16::from_le_bytes([tail[0], tail[1]]);
        let hash = u32::from_le_bytes(tail[2..6].try_into().unwrap());
        let qu = &self.nic.ports[p].queues[q];
        if !qu.running() {
            return; // the queue was stopped while the frame was in flight
        }
        let (base, size, notify) = (qu.rx_base, qu.rx_size, qu.notify);
        let at = base + u64::from(index & (size - 1)) * r::DESC_SIZE as u64;
        let mut d = [0u8; r::DESC_SIZE];
        if ctx.mem.read(at, &mut d).is_none() {
            return;
        }
        let addr = NicDesc::from_bytes(&d).addr;
        if !ctx.mem.is_writable_ram(addr, f.len() as u64) {
            self.nic.ports[p].counters.rx_no_buffer += 1;
            return;
        }
        ctx.mem.write(addr, &f);
        if let Some(t) = ctx.iotrace {
            t.borrow_mut().frame(now, self.nic.queue_hart(p, q), false, &f);
        }
        // Write-back: length, flags, hash (the address stays).
        let wb = NicDesc { addr, len: f.len() as u16, flags, aux: hash }.to_bytes();
        ctx.mem.write(at + r::DESC_LEN as u64, &wb[r::DESC_LEN..]);
        if notify & r::NOTIFY_ENABLE != 0 {
            ctx.irq.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
        }
    }

    /// Frame `id` reached its next hop.
    pub fn net_frame(&mut self, id: u64, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let Some(inf) = self.take(id) else { return };
        match inf.hop {
            Hop::Switch { ingress } => {
                let out = self.switch.forward(ingress, now, &inf.frame);
                let n = out.len();
                let mut frame = Some(inf.frame);
                for (k, d) in out.into_iter().enumerate() {
                    let f = if k + 1 == n { frame.take().unwrap_or_default() } else { frame.clone().unwrap_or_default() };
                    let id = self.stash(Hop::Endpoint { port: d.port }, f);
                    ctx.events.push(d.at, self.id, Payload::new(payload::FRAME, id, 0));
                }
            }
            Hop::Endpoint { port } => match self.switch.ports[port].attached {
                Attached::Dpu(p) => self.nic_receive(p, inf.frame, ctx),
                Attached::Target(t) => {
                    self.targets[t].receive(now, inf.frame);
                    self.target_poll(t, ctx);
                }
                Attached::Bridge => {
                    if let Some(b) = self.bridge.as_mut() {
                        b.send(&inf.frame);
                    }
                }
                Attached::Initiator(i) => {
                    if let Some(m) = self.initiators.get_mut(i) {
                        m.receive(inf.frame);
                        self.initiator_poll(i, ctx);
                    }
                }
                Attached::Operator => {
                    if let Some(o) = self.operator.as_mut() {
                        o.receive(inf.frame);
                    }
                    self.operator_poll(ctx);
                }
            },
            Hop::RxWrite { port, queue, index } => self.nic_rx_write(port, queue, index, inf.frame, ctx),
        }
    }

    /// Runs target model `t` at `now`: frames it sends go into the switch.
    pub fn target_poll(&mut self, t: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let out = self.targets[t].poll(now);
        let Some(sp) = self.switch.port_of(Attached::Target(t)) else { return };
        for f in out {
            if let Some(at) = self.switch.ingress(sp, now, f.len()) {
                let id = self.stash(Hop::Switch { ingress: sp }, f);
                ctx.events.push(at, self.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let Some(at) = self.targets[t].next_poll(now) {
            if self.targets[t].schedule(at) {
                ctx.events.push(at, self.id, Payload::new(payload::TARGET_POLL, t as u64, 0));
            }
        }
    }

    /// Runs initiator model `i` at `now`: frames it sends go into the
    /// switch; its next poll is queued.
    pub fn initiator_poll(&mut self, i: usize, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let Some(m) = self.initiators.get_mut(i) else { return };
        let out = m.poll(now);
        let next = m.next_poll(now);
        let Some(sp) = self.switch.port_of(Attached::Initiator(i)) else { return };
        for f in out {
            if let Some(at) = self.switch.ingress(sp, now, f.len()) {
                let id = self.stash(Hop::Switch { ingress: sp }, f);
                ctx.events.push(at, self.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let Some(at) = next {
            if self.initiators[i].schedule(at) {
                ctx.events.push(at, self.id, Payload::new(payload::INITIATOR_POLL, i as u64, 0));
            }
        }
    }

    /// Runs the initiator models the host's jobs gave work (a start, new
    /// I/Os) since they last ran.
    pub fn poke_initiators(&mut self, ctx: &mut DevCtx<'_>) -> bool {
        let mut any = false;
        for i in 0..self.initiators.len() {
            if self.initiators[i].has_work() {
                self.initiator_poll(i, ctx);
                any = true;
            }
        }
        any
    }

    /// Runs the operator node at `now`: frames it sends go into the switch.
    pub fn operator_poll(&mut self, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let Some(o) = self.operator.as_mut() else { return };
        let out = o.poll(now);
        let next = o.next_poll(now);
        let Some(sp) = self.switch.port_of(Attached::Operator) else { return };
        for f in out {
            if let Some(at) = self.switch.ingress(sp, now, f.len()) {
                let id = self.stash(Hop::Switch { ingress: sp }, f);
                ctx.events.push(at, self.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let (Some(at), Some(o)) = (next, self.operator.as_mut()) {
            if o.schedule(at) {
                ctx.events.push(at, self.id, Payload::new(payload::OPERATOR_POLL, 0, 0));
            }
        }
    }

    /// Frames that arrived from the bridge enter the switch at `now`.
    pub fn bridge_poll(&mut self, ctx: &mut DevCtx<'_>) {
        let now = ctx.now;
        let Some(b) = self.bridge.as_mut() else { return };
        let frames = b.receive();
        let Some(sp) = self.switch.port_of(Attached::Bridge) else { return };
        for f in frames {
            if let Some(at) = self.switch.ingress(sp, now, f.len()) {
                let id = self.stash(Hop::Switch { ingress: sp }, f);
                ctx.events.push(at, self.id, Payload::new(payload::FRAME, id, 0));
            }
        }
    }

    /// DPU port `p` loses or regains its link.
    pub fn set_port_link(&mut self, p: usize, up: bool, ctx: &mut DevCtx<'_>) {
        let Some(port) = self.nic.ports.get_mut(p) else { return };
        if port.link_up == up || port.speed_gbps == 0 {
            return;
        }
        port.link_up = up;
        let notify = port.link_notify;
        if let Some(sp) = self.switch.port_of(Attached::Dpu(p)) {
            self.switch.set_link(sp, up);
        }
        if notify & r::NOTIFY_ENABLE != 0 {
            ctx.irq.ring_mailbox(notify & 0xffff, r::MAILBOX_LINK);
        }
    }
}

impl Component for Network {
    /// Its events (kinds in [`payload`]): frames reaching their next hop,
    /// NIC write-backs and LRO flushes, the models' timers.
    fn on_event(&mut self, p: Payload, ctx: &mut DevCtx<'_>) {
        match p.kind {
            payload::FRAME => self.net_frame(p.a, ctx),
            payload::TX_DONE => self.nic_tx_done(p.a as usize, p.b as usize, ctx),
            payload::LRO_FLUSH => self.nic_lro_flush(p.a as usize, p.b as usize, ctx),
            payload::TARGET_POLL => self.target_poll(p.a as usize, ctx),
            payload::OPERATOR_POLL => self.operator_poll(ctx),
            payload::INITIATOR_POLL => self.initiator_poll(p.a as usize, ctx),
            _ => {}
        }
    }
}

/// The network's entry points for callers holding the whole bus (the
/// machine, the host model, scenario set-up, tests).
impl Bus {
    /// A frame's last bit reached DPU port `p` at `now`.
    pub fn nic_receive(&mut self, p: usize, f: Vec<u8>, now: u64) {
        self.with_devices(now, |d, ctx| d.net.nic_receive(p, f, ctx));
    }

    /// Runs target model `t` at `now`.
    pub fn target_poll(&mut self, t: usize, now: u64) {
        self.with_devices(now, |d, ctx| d.net.target_poll(t, ctx));
    }

    /// Runs initiator model `i` at `now`.
    pub fn initiator_poll(&mut self, i: usize, now: u64) {
        self.with_devices(now, |d, ctx| d.net.initiator_poll(i, ctx));
    }

    /// Runs the initiator models the host's jobs gave work since they last ran.
    pub fn poke_initiators(&mut self, now: u64) -> bool {
        if self.net.initiators.is_empty() {
            return false;
        }
        self.with_devices(now, |d, ctx| d.net.poke_initiators(ctx))
    }

    /// Runs the operator node at `now`.
    pub fn operator_poll(&mut self, now: u64) {
        self.with_devices(now, |d, ctx| d.net.operator_poll(ctx));
    }

    /// Frames that arrived from the bridge enter the switch at `now`.
    pub fn bridge_poll(&mut self, now: u64) {
        self.with_devices(now, |d, ctx| d.net.bridge_poll(ctx));
    }

    /// DPU port `p` loses or regains its link (at `now`).
    pub fn set_port_link(&mut self, p: usize, up: bool, now: u64) {
        self.with_devices(now, |d, ctx| d.net.set_port_link(p, up, ctx));
    }
}

/// TX offloads of one descriptor: TSO, then checksum insertion.
fn tx_offloads(frame: Vec<u8>, flags: u16, mss: u16, max: usize) -> Result<Vec<Vec<u8>>, ()> {
    let mut frames = if flags & r::TX_TSO != 0 {
        if mss == 0 || usize::from(mss) + 54 > max {
            return Err(());
        }
        let mut out = Vec::new();
        offload::tso_segment(&frame, mss, &mut out).map_err(|_| ())?;
        out
    } else {
        vec![frame]
    };
    let (ip, l4) = (flags & r::TX_CSUM_IP != 0, flags & r::TX_CSUM_L4 != 0);
    if ip || l4 {
        for f in frames.iter_mut() {
            checksum::insert_checksums(f, ip, l4).map_err(|_| ())?;
        }
    }
    Ok(frames)
}
