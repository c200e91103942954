//! The bus's network side: the NIC moving frames between its descriptor
//! rings in DPU memory and the wire (TX: read, offload, serialize; RX:
//! filter, steer, validate, write, write back, notify), and frames moving
//! hop by hop through the switch to the target models and the bridge.

use crate::bus::Bus;
use crate::event::Payload;
use crate::net::network::{payload, Hop};
use crate::net::switch::Attached;
use crate::net::{checksum, frame, offload, rss};
use dpu_hal::regs::nic as r;
use dpu_hal::nic::Desc as NicDesc;

/// Ethernet header plus one VLAN tag on top of the MTU.
const L2_OVERHEAD: usize = 18;

/// LRO holds a flow's segments at most this long (cycles): 2 us, about 16
/// full-size frames at 100 Gb/s.
const LRO_HOLD: u64 = 2000;

impl Bus {
    /// The firmware moved TX_TAIL of (port, queue): send the new frames.
    pub fn nic_tx_kick(&mut self, p: usize, q: usize, now: u64) {
        let mut last_done = now;
        let mut any = false;
        loop {
            let qu = &self.net.nic.ports[p].queues[q];
            if qu.tx_head == qu.tx_tail {
                break;
            }
            let index = qu.tx_head;
            let at = qu.tx_base + u64::from(index & (qu.tx_size - 1)) * r::DESC_SIZE as u64;
            self.net.nic.ports[p].queues[q].tx_head = index.wrapping_add(1);
            any = true;
            let mut d = [0u8; r::DESC_SIZE];
            let ok = self.mem.read_bytes(at, &mut d).is_some();
            let d = NicDesc::from_bytes(&d);
            let (addr, len, flags, mss) = (d.addr, usize::from(d.len), d.flags, d.aux as u16);
            let port = &self.net.nic.ports[p];
            let max = usize::from(port.mtu as u16) + L2_OVERHEAD;
            let mut frame = vec![0u8; len];
            let readable = ok && len >= 14 && self.mem.read_bytes(addr, &mut frame).is_some();
            let dma_start = now.max(port.dma_free);
            let dma_end = dma_start + self.net.nic.dma_cycles(len);
            self.net.nic.ports[p].dma_free = dma_end;
            last_done = last_done.max(dma_end);
            let frames = if !readable || (flags & r::TX_TSO == 0 && len > max) {
                Err(())
            } else {
                tx_offloads(frame, flags, mss, max)
            };
            let wb = match frames {
                Ok(frames) => {
                    for f in frames {
                        if let Some(t) = &self.iotrace {
                            t.borrow_mut().frame(dma_end, self.net.nic.queue_hart(p, q), true, &f);
                        }
                        self.nic_transmit(p, q, dma_end, f);
                    }
                    r::TX_DD
                }
                Err(()) => {
                    self.net.nic.ports[p].counters.tx_errors += 1;
                    r::TX_DD | r::TX_ERR
                }
            };
            self.net.tx_writeback.entry((p, q)).or_default().push_back((index, wb));
        }
        if any {
            self.events.push(last_done, self.net.id, Payload::new(payload::TX_DONE, p as u64, q as u64));
        }
    }

    /// One frame leaves DPU port `p` once it is read from memory (`ready`).
    fn nic_transmit(&mut self, p: usize, q: usize, ready: u64, f: Vec<u8>) {
        let port = &mut self.net.nic.ports[p];
        if !port.link_up || port.control & r::CTL_TX_ENABLE == 0 {
            port.counters.link_down_drops += 1;
            return;
        }
        port.counters.tx_frames += 1;
        port.counters.tx_bytes += f.len() as u64;
        port.queues[q].tx_frames += 1;
        port.queues[q].tx_bytes += f.len() as u64;
        self.net.capture(p, ready, &f);
        let Some(sp) = self.net.switch.port_of(Attached::Dpu(p)) else { return };
        if let Some(at) = self.net.switch.ingress(sp, ready, f.len()) {
            let id = self.net.stash(Hop::Switch { ingress: sp }, f);
            self.events.push(at, self.net.id, Payload::new(payload::FRAME, id, 0));
        }
    }

    /// TX descriptors read by the NIC are written back (buffers reusable).
    pub fn nic_tx_done(&mut self, p: usize, q: usize, now: u64) {
        let Some(wb) = self.net.tx_writeback.get_mut(&(p, q)) else { return };
        let pending: Vec<(u32, u16)> = wb.drain(..).collect();
        let qu = &self.net.nic.ports[p].queues[q];
        let (base, size, notify) = (qu.tx_base, qu.tx_size, qu.notify);
        if !qu.running() || size == 0 {
            return;
        }
        for (index, flags) in pending {
            let at = base + u64::from(index & (size - 1)) * r::DESC_SIZE as u64;
            let wb = NicDesc { flags, ..NicDesc::default() }.to_bytes();
            self.dma_write_local(at + r::DESC_FLAGS as u64, &wb[r::DESC_FLAGS..r::DESC_FLAGS + 2]);
            let qu = &mut self.net.nic.ports[p].queues[q];
            qu.tx_done = index.wrapping_add(1);
        }
        let _ = now;
        if notify & r::NOTIFY_ENABLE != 0 {
            self.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
        }
    }

    /// A frame's last bit reached DPU port `p` at `now`.
    pub fn nic_receive(&mut self, p: usize, f: Vec<u8>, now: u64) {
        self.net.capture(p, now, &f);
        let port = &mut self.net.nic.ports[p];
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
            let max = self.rx_buffer_size(p, queue).unwrap_or(0).min(r::MAX_FRAME);
            let l = self.net.lro.entry((p, queue)).or_insert_with(|| crate::net::offload::Lro::new(max, 8));
            let ready = l.push(f);
            let held = l.held_flows() > 0;
            for fr in ready {
                self.nic_deliver(p, queue, fr, flags, rss_value, now);
            }
            if held && self.net.lro_flush.insert((p, queue)) {
                self.events.push(now + LRO_HOLD, self.net.id, Payload::new(payload::LRO_FLUSH, p as u64, queue as u64));
            }
            return;
        }
        self.nic_deliver(p, queue, f, flags, rss_value, now);
    }

    /// Size of the buffer the next frame on (port, queue) would land in.
    fn rx_buffer_size(&mut self, p: usize, q: usize) -> Option<usize> {
        let qu = self.net.nic.ports.get(p)?.queues.get(q)?;
        if !qu.running() || qu.rx_head == qu.rx_tail {
            return None;
        }
        let at = qu.rx_base + u64::from(qu.rx_head & (qu.rx_size - 1)) * r::DESC_SIZE as u64;
        let mut d = [0u8; r::DESC_SIZE];
        self.mem.read_bytes(at, &mut d)?;
        Some(usize::from(NicDesc::from_bytes(&d).len))
    }

    /// The LRO hold time of (port, queue) ended: deliver what it holds.
    pub fn nic_lro_flush(&mut self, p: usize, q: usize, now: u64) {
        self.net.lro_flush.remove(&(p, q));
        let Some(l) = self.net.lro.get_mut(&(p, q)) else { return };
        let frames = l.flush();
        for f in frames {
            let flags = r::RX_DD | r::RX_CSUM_OK | r::RX_RSS_TCP;
            let hash = crate::net::rss::hash_frame(&self.net.nic.ports[p].rss_key, &f).map_or(0, |h| h.0);
            self.nic_deliver(p, q, f, flags, hash, now);
        }
    }

    /// Puts a classified frame into the next RX buffer of (port, queue).
    fn nic_deliver(&mut self, p: usize, queue: usize, f: Vec<u8>, mut flags: u16, rss_value: u32, now: u64) {
        let port = &mut self.net.nic.ports[p];
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
        if self.mem.read_bytes(at, &mut d).is_none() {
            self.net.nic.ports[p].counters.rx_no_buffer += 1;
            return;
        }
        let bufsize = usize::from(NicDesc::from_bytes(&d).len);
        let port = &mut self.net.nic.ports[p];
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
        let end = start + self.net.nic.dma_cycles(f.len());
        self.net.nic.ports[p].dma_free = end;
        // Flags and hash ride in the frame's stash: (flags, hash) appended.
        let mut f = f;
        f.extend_from_slice(&flags.to_le_bytes());
        f.extend_from_slice(&rss_value.to_le_bytes());
        let id = self.net.stash(Hop::RxWrite { port: p, queue, index }, f);
        self.events.push(end, self.net.id, Payload::new(payload::FRAME, id, 0));
    }

    /// The NIC writes a received frame and its descriptor.
    fn nic_rx_write(&mut self, p: usize, q: usize, index: u32, mut f: Vec<u8>, now: u64) {
        let tail = f.split_off(f.len() - 6);
        let flags = u16::from_le_bytes([tail[0], tail[1]]);
        let hash = u32::from_le_bytes(tail[2..6].try_into().unwrap());
        let qu = &self.net.nic.ports[p].queues[q];
        if !qu.running() {
            return; // the queue was stopped while the frame was in flight
        }
        let (base, size, notify) = (qu.rx_base, qu.rx_size, qu.notify);
        let at = base + u64::from(index & (size - 1)) * r::DESC_SIZE as u64;
        let mut d = [0u8; r::DESC_SIZE];
        if self.mem.read_bytes(at, &mut d).is_none() {
            return;
        }
        let addr = NicDesc::from_bytes(&d).addr;
        if !self.mem.range_is_ram(addr, f.len() as u64) || !self.mem.region_of(addr).is_some_and(|r| r.writable) {
            self.net.nic.ports[p].counters.rx_no_buffer += 1;
            return;
        }
        self.dma_write_local(addr, &f);
        if let Some(t) = &self.iotrace {
            t.borrow_mut().frame(now, self.net.nic.queue_hart(p, q), false, &f);
        }
        // Write-back: length, flags, hash (the address stays).
        let wb = NicDesc { addr, len: f.len() as u16, flags, aux: hash }.to_bytes();
        self.dma_write_local(at + r::DESC_LEN as u64, &wb[r::DESC_LEN..]);
        if notify & r::NOTIFY_ENABLE != 0 {
            self.ring_mailbox(notify & 0xffff, r::MAILBOX_BIT);
        }
    }

    /// An event addressed to the network component, at `now`.
    pub fn net_event(&mut self, p: Payload, now: u64) {
        match p.kind {
            payload::FRAME => self.net_frame(p.a, now),
            payload::TX_DONE => self.nic_tx_done(p.a as usize, p.b as usize, now),
            payload::LRO_FLUSH => self.nic_lro_flush(p.a as usize, p.b as usize, now),
            payload::TARGET_POLL => self.target_poll(p.a as usize, now),
            payload::OPERATOR_POLL => self.operator_poll(now),
            payload::INITIATOR_POLL => self.initiator_poll(p.a as usize, now),
            _ => {}
        }
    }

    /// Frame `id` reached its next hop.
    pub fn net_frame(&mut self, id: u64, now: u64) {
        let Some(inf) = self.net.take(id) else { return };
        match inf.hop {
            Hop::Switch { ingress } => {
                let out = self.net.switch.forward(ingress, now, &inf.frame);
                let n = out.len();
                let mut frame = Some(inf.frame);
                for (k, d) in out.into_iter().enumerate() {
                    let f = if k + 1 == n { frame.take().unwrap_or_default() } else { frame.clone().unwrap_or_default() };
                    let id = self.net.stash(Hop::Endpoint { port: d.port }, f);
                    self.events.push(d.at, self.net.id, Payload::new(payload::FRAME, id, 0));
                }
            }
            Hop::Endpoint { port } => match self.net.switch.ports[port].attached {
                Attached::Dpu(p) => self.nic_receive(p, inf.frame, now),
                Attached::Target(t) => {
                    self.net.targets[t].receive(now, inf.frame);
                    self.target_poll(t, now);
                }
                Attached::Bridge => {
                    if let Some(b) = self.net.bridge.as_mut() {
                        b.send(&inf.frame);
                    }
                }
                Attached::Initiator(i) => {
                    if let Some(m) = self.net.initiators.get_mut(i) {
                        m.receive(inf.frame);
                        self.initiator_poll(i, now);
                    }
                }
                Attached::Operator => {
                    if let Some(o) = self.net.operator.as_mut() {
                        o.receive(inf.frame);
                    }
                    self.operator_poll(now);
                }
            },
            Hop::RxWrite { port, queue, index } => self.nic_rx_write(port, queue, index, inf.frame, now),
        }
    }

    /// Runs target model `t` at `now`: frames it sends go into the switch.
    pub fn target_poll(&mut self, t: usize, now: u64) {
        let out = self.net.targets[t].poll(now);
        let Some(sp) = self.net.switch.port_of(Attached::Target(t)) else { return };
        for f in out {
            if let Some(at) = self.net.switch.ingress(sp, now, f.len()) {
                let id = self.net.stash(Hop::Switch { ingress: sp }, f);
                self.events.push(at, self.net.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let Some(at) = self.net.targets[t].next_poll(now) {
            if self.net.targets[t].schedule(at) {
                self.events.push(at, self.net.id, Payload::new(payload::TARGET_POLL, t as u64, 0));
            }
        }
    }

    /// Runs initiator model `i` at `now`: frames it sends go into the
    /// switch; its next poll is queued.
    pub fn initiator_poll(&mut self, i: usize, now: u64) {
        let Some(m) = self.net.initiators.get_mut(i) else { return };
        let out = m.poll(now);
        let next = m.next_poll(now);
        let Some(sp) = self.net.switch.port_of(Attached::Initiator(i)) else { return };
        for f in out {
            if let Some(at) = self.net.switch.ingress(sp, now, f.len()) {
                let id = self.net.stash(Hop::Switch { ingress: sp }, f);
                self.events.push(at, self.net.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let Some(at) = next {
            if self.net.initiators[i].schedule(at) {
                self.events.push(at, self.net.id, Payload::new(payload::INITIATOR_POLL, i as u64, 0));
            }
        }
    }

    /// Runs the initiator models the host's jobs gave work (a start, new
    /// I/Os) since they last ran.
    pub fn poke_initiators(&mut self, now: u64) -> bool {
        let mut any = false;
        for i in 0..self.net.initiators.len() {
            if self.net.initiators[i].has_work() {
                self.initiator_poll(i, now);
                any = true;
            }
        }
        any
    }

    /// Runs the operator node at `now`: frames it sends go into the switch.
    pub fn operator_poll(&mut self, now: u64) {
        let Some(o) = self.net.operator.as_mut() else { return };
        let out = o.poll(now);
        let next = o.next_poll(now);
        let Some(sp) = self.net.switch.port_of(Attached::Operator) else { return };
        for f in out {
            if let Some(at) = self.net.switch.ingress(sp, now, f.len()) {
                let id = self.net.stash(Hop::Switch { ingress: sp }, f);
                self.events.push(at, self.net.id, Payload::new(payload::FRAME, id, 0));
            }
        }
        if let (Some(at), Some(o)) = (next, self.net.operator.as_mut()) {
            if o.schedule(at) {
                self.events.push(at, self.net.id, Payload::new(payload::OPERATOR_POLL, 0, 0));
            }
        }
    }

    /// Frames that arrived from the bridge enter the switch at `now`.
    pub fn bridge_poll(&mut self, now: u64) {
        let Some(b) = self.net.bridge.as_mut() else { return };
        let frames = b.receive();
        let Some(sp) = self.net.switch.port_of(Attached::Bridge) else { return };
        for f in frames {
            if let Some(at) = self.net.switch.ingress(sp, now, f.len()) {
                let id = self.net.stash(Hop::Switch { ingress: sp }, f);
                self.events.push(at, self.net.id, Payload::new(payload::FRAME, id, 0));
            }
        }
    }

    /// DPU port `p` loses or regains its link.
    pub fn set_port_link(&mut self, p: usize, up: bool) {
        let Some(port) = self.net.nic.ports.get_mut(p) else { return };
        if port.link_up == up || port.speed_gbps == 0 {
            return;
        }
        port.link_up = up;
        let notify = port.link_notify;
        if let Some(sp) = self.net.switch.port_of(Attached::Dpu(p)) {
            self.net.switch.set_link(sp, up);
        }
        if notify & r::NOTIFY_ENABLE != 0 {
            self.ring_mailbox(notify & 0xffff, r::MAILBOX_LINK);
        }
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
