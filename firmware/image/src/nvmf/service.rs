//! The fabrics service on the control plane ([`crate::net::NET_HART`]):
//! configures the NIC ports, answers ARP, and keeps one admin queue per
//! remote NVMe/TCP controller. The first time, it reads the discovery log
//! of the discovery controller at the same address (and checks the
//! configured subsystem is offered there). Then: TCP connect, ICReq,
//! Fabrics Connect (admin queue, dynamic controller), Property Get CAP / Set CC.EN / Get CSTS
//! until ready, Identify Controller, Identify Namespace of every
//! configured remote namespace (its geometry must match the
//! configuration), Set Features Number of Queues, then Keep Alive at half
//! the keep-alive timeout. On any failure the controller is published
//! down (data-plane cores drop their I/O queues and hold their I/O), its
//! namespaces go offline, and the service reconnects with backoff.
//!
//! Controllers attached at run time (`bdev_nvme_attach_controller`, asked
//! by the management server on this same hart: [`Request`]) take a free
//! index above the boot configuration's. Their definition is published
//! to the data plane (`super::ctrls`); their admin queue skips discovery
//! and, instead of checking configured namespaces, reads the Identify
//! Active Namespace List and identifies up to [`MAX_CTRL_NS`] of them.
//! The first time it goes live the management server gets the
//! namespaces found ([`Outcome::Attached`]); a failure before that (the
//! address does not answer ARP within [`ARP_LIMIT`], TCP refused or
//! timed out, Connect or a command refused) ends the attach
//! ([`Outcome::Failed`]): the admin queue is dropped and the definition
//! withdrawn, so no core keeps anything of it. A detach closes the
//! admin queue (FIN) and withdraws the definition: every core closes
//! its I/O queue.

use super::conn::{Conn, Phase};
use crate::bootcfg::{self, Backend, MAX_CTRLS};
use crate::net::{self, stack::Stack, CONTROL_QUEUE, NEIGHBORS, NET_HART};
use dpu_hal::memory_map::{NIC_PORTS, TIMEBASE_HZ};
use dpu_hal::HartId;
use dpu_nvme::Sqe;
use dpu_nvme_tcp::fabrics::property::offset as prop;
use dpu_nvme_tcp::fabrics::{admin, ConnectCmd, ConnectData, ConnectResponse, PropertyGet, PropertySet, PropertySize};
use dpu_nvme_tcp::host::Event;
use super::ctrls::Def;

const US: u64 = TIMEBASE_HZ / 1_000_000;
/// Keep Alive Timeout asked for in Connect (ms); keep-alives go at half.
const KATO_MS: u32 = 10_000;
/// A step (a command) must finish within this: several TCP
/// retransmissions at the data-center minimum RTO (`tcp_min_rto`, 5 ms by
/// default, doubling), and far less than the host's CAP.TO (15 s).
const STEP_TIMEOUT: u64 = 1_000_000 * US;
/// A step of the advisory discovery association must finish within this;
/// otherwise the subsystem is connected directly (a slow or absent
/// discovery service must not delay the namespaces).
const DISCOVERY_STEP_TIMEOUT: u64 = 100_000 * US;
/// Admin queue size (0's based in Connect).
const ADMIN_DEPTH: u16 = 32;
/// Most namespaces of a controller attached at run time that become
/// block devices (the first active NSIDs).
pub const MAX_CTRL_NS: usize = 8;
/// An address attached at run time that does not answer ARP within this
/// fails the attach (a data-center neighbor answers in microseconds).
pub const ARP_LIMIT: u64 = 10_000 * US;
/// An attach at run time that has no association after this fails (each
/// step has its own timeout, but a controller may take up to CAP.TO,
/// 127.5 s, to become ready: the operator's request must not wait that).
pub const ATTACH_LIMIT: u64 = 5_000_000 * US;

/// The management server asks (on this hart, by call).
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// Connect to `def` as controller `index` (free, above the boot ones).
    /// `retry`: restored from flash at boot, so a failure does not end
    /// it: it reconnects with backoff, as a boot controller does.
    Attach { index: usize, def: Def, retry: bool },
    /// Close controller `index` (attached at run time).
    Detach { index: usize },
}

/// A namespace of a controller attached at run time: NSID, blocks, log2
/// of the block size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoundNs {
    pub nsid: u32,
    pub blocks: u64,
    pub block_shift: u8,
}

/// What became of an attach.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Live; its active namespaces (the first `count`).
    Attached { index: usize, ns: [FoundNs; MAX_CTRL_NS], count: usize },
    /// Not attached: why (and the NVMe status of a refused command, 0 if none).
    Failed { index: usize, why: &'static str, status: u16 },
}

/// A controller attached at run time, until its first association.
struct Attaching {
    since: u64,
    /// Failures do not end it (restored from flash).
    retry: bool,
    /// The NVMe status of the last refused command.
    status: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
enum Step {
    /// First association only: the discovery controller at the same
    /// address (Connect, CC.EN, CSTS.RDY, Get Log Page 70h), then close.
    DiscConnect,
    DiscEnable,
    DiscReady,
    DiscLog,
    Connect,
    GetCap,
    Enable,
    WaitReady,
    IdentifyCtrl,
    /// Identify the k-th configured namespace of this controller.
    IdentifyNs(u16),
    /// Run time: Identify Active Namespace List (CNS 02h).
    ActiveList,
    /// Run time: Identify Namespace of the k-th active namespace.
    IdentifyFound(u16),
    SetQueues,
    Live,
}

/// One remote controller's admin queue.
struct Admin {
    index: usize,
    def: Def,
    /// Attached at run time (not the boot configuration's).
    run_time: bool,
    /// Run time, not live yet: the attach waits on it.
    attaching: Option<Attaching>,
    /// The attach ended ([`Outcome`]) for the management server.
    outcome: Option<Outcome>,
    /// Active namespaces identified (run time), kept for reconnects.
    found: [FoundNs; MAX_CTRL_NS],
    nfound: usize,
    conn: Conn<8>,
    step: Step,
    /// A command of the current step is outstanding.
    busy: bool,
    cntlid: u16,
    cap_to: u64,
    inline: u32,
    max_transfer: u32,
    next_ka: u64,
    ka_outstanding: bool,
    /// Next retry of a Property Get CSTS.
    retry_at: u64,
    arp_at: u64,
    attempts: u32,
    /// The discovery log was read (or discovery is not offered).
    discovered: bool,
    /// Added to the attempt count in the local port: a controller index
    /// attached again does not start from the local port its previous
    /// association used (the target may still hold that connection).
    port_salt: u32,
    buf: [u8; 4096],
}

struct Service {
    stacks: [Option<&'static mut Stack>; NIC_PORTS],
    /// One admin queue per remote controller: built at start, not part of
    /// `INIT` (as a constant, 16 empty 4.6 KiB slots were a 74 KiB
    /// template in the image).
    admins: Option<&'static mut [Option<Admin>]>,
    /// The management server, when the configuration has one.
    mgmt: Option<crate::mgmt::server::Server>,
    /// Sockets of detached run-time controllers, per port, for the next.
    free_socks: [[Option<smoltcp::iface::SocketHandle>; 4]; NIC_PORTS],
    /// Attaches at run time so far, per controller index.
    attaches: [u32; MAX_CTRLS],
}

impl dpu_rt::ConstInit for Service {
    const INIT: Service = Service { stacks: [const { None }; NIC_PORTS], admins: None, mgmt: None, free_socks: [[None; 4]; NIC_PORTS], attaches: [0; MAX_CTRLS] };
}

/// The service's main loop (never returns).
pub fn run(hart: HartId) -> ! {
    crate::channel::enable_doorbell(hart.0);
    dpu_hal::csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    // The admin service parses the boot configuration first.
    while !bootcfg::loaded() {
        dpu_hal::clint::set_timer(hart.0, dpu_hal::csr::time() + 10 * US);
        dpu_hal::csr::wfi();
    }
    if bootcfg::ports().is_empty() {
        defmt::info!("nvmf: no network configured");
        dpu_rt::park();
    }
    net::setup_ports();
    // Built in place in DDR (one 4 KiB buffer per controller).
    let Some(svc) = dpu_rt::alloc::ddr_static::<Service>() else {
        defmt::error!("nvmf: out of DDR");
        dpu_rt::park();
    };
    svc.admins = dpu_rt::alloc::ddr_slice_with(MAX_CTRLS, |_| None);
    if svc.admins.is_none() {
        defmt::error!("nvmf: out of DDR for the admin queues");
        dpu_rt::park();
    }
    for p in 0..bootcfg::ports().len().min(NIC_PORTS) {
        svc.stacks[p] = net::start_stack(hart.0, p, CONTROL_QUEUE, true, 128, 64, false, net::stack::SOCKETS);
        if svc.stacks[p].is_none() {
            defmt::error!("nvmf: port {=usize}: control queue did not start", p);
        }
    }
    if let Some(m) = bootcfg::management() {
        svc.mgmt = svc.stacks.get_mut(usize::from(m.port)).and_then(|s| s.as_deref_mut()).and_then(crate::mgmt::server::Server::start);
        if svc.mgmt.is_none() {
            defmt::error!("mgmt: the management server did not start (no stack on port {=u8}, or out of memory)", m.port);
        }
    }
    let mut links = [false; NIC_PORTS];
    for (p, l) in links.iter_mut().enumerate() {
        *l = dpu_hal::nic::Port::new(p).is_some_and(|x| x.link().0);
    }
    for i in 0..bootcfg::controllers().min(MAX_CTRLS) {
        let Some(def) = super::ctrls::def(i) else { continue };
        let Some(slot) = svc.admins.as_deref_mut().and_then(|a| a.get_mut(i)) else { continue };
        *slot = Some(Admin::new(i, def, false, None, false));
    }
    defmt::info!("nvmf: service up: {=usize} port(s), {=usize} remote controller(s)", bootcfg::ports().len(), bootcfg::controllers());
    super::quiesce::service_up();
    // Closing before a warm restart (`super::quiesce`): 0 no, 1 waiting
    // for the data plane's I/O queues, 2 admin queues' FINs sent, 3 done.
    let mut closing = 0u8;
    let mut settings_seen = net::settings::version();
    loop {
        let now = dpu_hal::csr::time();
        // A port address or TCP setting changed by the management server
        // (this hart): the control queues' stacks take it (the ARP owner
        // announces a new address).
        if net::settings::changed(&mut settings_seen) {
            for s in svc.stacks.iter_mut().flatten() {
                s.apply_settings();
            }
        }
        for s in svc.stacks.iter_mut().flatten() {
            s.poll();
        }
        if closing > 0 || super::quiesce::requested() {
            closing = svc.close_admins(closing, now);
            dpu_hal::clint::set_timer(NET_HART, now + 20 * US);
            dpu_hal::csr::wfi();
            continue;
        }
        let mut next = now + 100_000 * US;
        for a in svc.admins.iter_mut().flat_map(|a| a.iter_mut()).flatten() {
            let Some(port) = net::port_for(a.conn.remote) else { continue };
            let Some(stack) = svc.stacks[port].as_deref_mut() else { continue };
            if !links[port] {
                // No carrier: drop the association (the data plane holds
                // its I/O) and wait for the link to come back.
                if !matches!(a.conn.phase, Phase::Down { .. }) {
                    a.fail(stack, now, "link down");
                }
                continue;
            }
            next = next.min(a.advance(stack, now));
        }
        svc.attach_outcomes(now);
        if let Some(m) = svc.mgmt.as_mut() {
            if let Some(stack) = svc.stacks[m.port].as_deref_mut() {
                let mut ctx = crate::mgmt::methods::Ctx { ctrl_state: ["unconfigured"; MAX_CTRLS] };
                for a in svc.admins.iter().flat_map(|a| a.iter()).flatten() {
                    ctx.ctrl_state[a.index] = a.state_name();
                }
                stack.poll();
                next = next.min(m.poll(stack, now, &ctx));
            }
            while let Some(r) = svc.mgmt.as_mut().and_then(|m| m.take_ctrl_request()) {
                svc.request(r, now);
                next = now;
            }
        }
        for s in svc.stacks.iter_mut().flatten() {
            s.poll();
            if let Some(t) = s.poll_at() {
                next = next.min(t);
            }
        }
        let bits = crate::channel::take_doorbells(hart.0);
        if bits & dpu_hal::regs::nic::MAILBOX_LINK != 0 {
            for (p, l) in links.iter_mut().enumerate() {
                let up = dpu_hal::nic::Port::new(p).is_some_and(|x| x.link().0);
                if up != *l {
                    defmt::warn!("net: port {=usize}: link {=str}", p, if up { "up" } else { "down" });
                    *l = up;
                }
            }
            continue;
        }
        if bits == 0 && dpu_hal::csr::time() < next {
            dpu_hal::clint::set_timer(NET_HART, next.max(now + US));
            dpu_hal::csr::wfi();
        }
    }
}

impl Service {
    /// Before a warm restart (`super::quiesce`), from `state`: once the
    /// data plane's I/O queues are closed, every admin queue closes (FIN),
    /// which ends its association on the target; once each FIN is
    /// acknowledged the service reports it. Nothing reconnects; the
    /// management server is not served any more. Returns the new state.
    fn close_admins(&mut self, state: u8, now: u64) -> u8 {
        let admins = self.admins.iter_mut().flat_map(|a| a.iter_mut()).flatten();
        match state {
            0 | 1 if !super::quiesce::io_done() => 1,
            0 | 1 => {
                let mut n = 0u32;
                for a in admins {
                    if let Some(stack) = net::port_for(a.conn.remote).and_then(|p| self.stacks[p].as_deref_mut()) {
                        a.conn.shutdown(stack, now);
                        n += 1;
                    }
                }
                defmt::info!("nvmf: I/O queues closed; closing {=u32} admin queue(s) before the restart", n);
                2
            }
            2 => {
                let stacks = &mut self.stacks;
                if admins.into_iter().all(|a| net::port_for(a.conn.remote).and_then(|p| stacks[p].as_deref_mut()).is_none_or(|st| a.conn.closed_both_ways(st))) {
                    super::quiesce::admin_closed();
                    3
                } else {
                    2
                }
            }
            s => s,
        }
    }

    /// Carries out a management request (same hart).
    fn request(&mut self, r: Request, now: u64) {
        let Some(admins) = self.admins.as_deref_mut() else { return };
        match r {
            Request::Attach { index, def, retry } => {
                let Some(slot) = admins.get_mut(index) else { return };
                if slot.is_some() {
                    // The management server picks free indices: never here.
                    defmt::error!("nvmf: ctrl {=usize}: attach to an index in use", index);
                    return;
                }
                // A socket of a detached controller on that port is reused.
                let port = net::port_for(def.traddr);
                let sock = port.and_then(|p| self.free_socks.get_mut(p)).and_then(|f| f.iter_mut().find_map(|s| s.take()));
                let mut a = Admin::new(index, def, true, Some(now), retry);
                a.conn.sock = sock;
                self.attaches[index] = self.attaches[index].wrapping_add(1);
                a.port_salt = self.attaches[index].wrapping_mul(7);
                super::ctrls::publish(index, Some(&def));
                ring_data_plane();
                defmt::info!(
                    "nvmf: ctrl {=usize}: attaching {=u8}.{=u8}.{=u8}.{=u8}:{=u16} (run time)",
                    index, def.traddr[0], def.traddr[1], def.traddr[2], def.traddr[3], def.trsvcid
                );
                *slot = Some(a);
            }
            Request::Detach { index } => {
                if let Some(a) = admins.get_mut(index).and_then(|s| s.take()) {
                    self.drop_admin(a, now);
                    defmt::info!("nvmf: ctrl {=usize}: detached", index);
                }
            }
        }
    }

    /// Closes an admin queue of a run-time controller (FIN), withdraws
    /// its definition and keeps its socket for a later attach.
    fn drop_admin(&mut self, mut a: Admin, now: u64) {
        let port = net::port_for(a.def.traddr);
        if let Some(stack) = port.and_then(|p| self.stacks.get_mut(p)).and_then(|s| s.as_deref_mut()) {
            a.conn.shutdown(stack, now);
        }
        super::publish_down(a.index);
        super::ctrls::publish(a.index, None);
        ring_data_plane();
        dpu_hal::mailbox::ring(crate::nvme::ADMIN_HART, super::DOORBELL_NVMF);
        if let (Some(p), Some(h)) = (port, a.conn.sock.take()) {
            if let Some(free) = self.free_socks.get_mut(p).and_then(|f| f.iter_mut().find(|s| s.is_none())) {
                *free = Some(h);
            }
        }
    }

    /// Hands the attaches that ended to the management server; a failed
    /// one's admin queue goes (nothing of it stays on any core).
    fn attach_outcomes(&mut self, now: u64) {
        for i in 0..MAX_CTRLS {
            let Some(o) = self.admins.as_deref_mut().and_then(|a| a.get_mut(i)).and_then(|a| a.as_mut()).and_then(|a| a.outcome.take()) else { continue };
            if let Outcome::Failed { .. } = o {
                if let Some(a) = self.admins.as_deref_mut().and_then(|a| a.get_mut(i)).and_then(|s| s.take()) {
                    self.drop_admin(a, now);
                }
            }
            match self.mgmt.as_mut() {
                Some(m) => m.ctrl_outcome(o),
                None => defmt::error!("nvmf: ctrl {=usize}: an attach ended without a management server", i),
            }
        }
    }
}

/// Configured namespaces served by remote controller `ctrl`, in order.
fn remote_namespaces(ctrl: usize) -> impl Iterator<Item = &'static bootcfg::Namespace> {
    bootcfg::namespaces().filter(move |ns| matches!(ns.backend, Backend::Remote { ctrl: c, .. } if usize::from(c) == ctrl))
}

impl Admin {
    /// Controller `index`'s admin queue; `attach_at`: attached at run
    /// time then (the attach waits for its first association).
    fn new(index: usize, def: Def, run_time: bool, attach_at: Option<u64>, retry: bool) -> Admin {
        let mut conn = Conn::new(0, def.digests);
        conn.remote = def.traddr;
        conn.rport = def.trsvcid;
        Admin {
            index,
            def,
            run_time,
            attaching: attach_at.map(|since| Attaching { since, retry, status: 0 }),
            outcome: None,
            found: [FoundNs::default(); MAX_CTRL_NS],
            nfound: 0,
            conn,
            step: Step::Connect,
            busy: false,
            cntlid: 0,
            cap_to: 0,
            inline: 0,
            max_transfer: 0,
            next_ka: 0,
            ka_outstanding: false,
            retry_at: 0,
            arp_at: 0,
            attempts: 0,
            // A run-time attach connects to the subsystem directly.
            discovered: run_time,
            port_salt: 0,
            buf: [0; 4096],
        }
    }

    /// Advances the state machine; returns when it next needs to run.
    fn advance(&mut self, stack: &mut Stack, now: u64) -> u64 {
        if let Some(at) = self.attaching.as_ref().filter(|a| !a.retry) {
            if now >= at.since + ATTACH_LIMIT {
                return self.fail(stack, now, "no association within 5 s");
            }
            let limit = at.since + ATTACH_LIMIT;
            return self.step_machine(stack, now).min(limit);
        }
        self.step_machine(stack, now)
    }

    /// [`Self::advance`] without the attach limit.
    fn step_machine(&mut self, stack: &mut Stack, now: u64) -> u64 {
        match self.conn.phase {
            Phase::Down { until } => {
                if now < until {
                    return until;
                }
                let Some(_) = NEIGHBORS.lookup(self.conn.remote) else {
                    if let Some(at) = self.attaching.as_ref().filter(|a| !a.retry) {
                        if now >= at.since + ARP_LIMIT {
                            return self.fail(stack, now, "no answer to ARP from the address");
                        }
                    }
                    if now >= self.arp_at {
                        stack.dev.tx.arp_request(self.conn.remote);
                        self.arp_at = now + 1000 * US;
                    }
                    return self.arp_at;
                };
                // A fresh local port per attempt: the target may still hold
                // the old connection.
                let span = u32::from(CONTROL_SPAN);
                self.conn.local_port = *net::CONTROL_PORTS.start() + (self.index as u16) * CONTROL_SPAN + ((self.attempts + self.port_salt) % span) as u16;
                self.attempts = self.attempts.wrapping_add(1);
                self.step = if self.discovered { Step::Connect } else { Step::DiscConnect };
                self.busy = false;
                // (A reused socket still closing is aborted and tried again
                // after the backoff; only no socket at all ends an attach.)
                if !self.conn.open(stack, now, 64 * 1024, 64 * 1024) && self.conn.sock.is_none() && self.attaching.as_ref().is_some_and(|a| !a.retry) {
                    return self.fail(stack, now, "no free socket on the control plane");
                }
                now + STEP_TIMEOUT
            }
            Phase::Tcp => match self.conn.tcp_state(stack) {
                smoltcp::socket::tcp::State::Established => {
                    self.conn.start_ic(stack, now);
                    now + STEP_TIMEOUT
                }
                smoltcp::socket::tcp::State::Closed | smoltcp::socket::tcp::State::TimeWait => self.fail(stack, now, "connection refused"),
                _ if now > self.conn.since + super::conn::CONNECT_TIMEOUT => self.fail(stack, now, "TCP connect timed out"),
                _ => self.conn.since + super::conn::CONNECT_TIMEOUT,
            },
            Phase::Ic | Phase::Connect | Phase::Ready => {
                if !matches!(self.conn.tcp_state(stack), smoltcp::socket::tcp::State::Established) {
                    return self.fail(stack, now, "connection lost");
                }
                let mut events: [Option<Event>; 8] = [None; 8];
                let mut n = 0;
                let buf = &mut self.buf;
                let r = self.conn.pump(
                    stack,
                    |e| {
                        events[n] = Some(e);
                        n += 1;
                        n < events.len()
                    },
                    |d| {
                        let super::conn::Data::Bytes { offset, bytes, .. } = d;
                        let o = offset as usize;
                        let k = bytes.len().min(buf.len().saturating_sub(o));
                        buf[o..o + k].copy_from_slice(&bytes[..k]);
                        Some(bytes.len())
                    },
                );
                if let Err(f) = r {
                    defmt::warn!("nvmf: ctrl {=usize}: fatal transport error: {}", self.index, f);
                    self.conn.terminate(stack, &f);
                    return self.fail_with(stack, now, "protocol error", true);
                }
                for e in events.iter().take(n).flatten() {
                    if let Some(t) = self.event(stack, now, *e) {
                        return t;
                    }
                }
                // A command outstanding, or the ICResp awaited.
                let waiting = self.busy || self.conn.phase == Phase::Ic;
                if waiting && self.discovering() && now > self.conn.since + DISCOVERY_STEP_TIMEOUT {
                    defmt::info!("nvmf: ctrl {=usize}: discovery step {} unanswered; connecting directly", self.index, self.step);
                    return self.end_discovery(stack, now);
                }
                if waiting && self.step != Step::Live && now > self.conn.since + STEP_TIMEOUT {
                    return self.fail(stack, now, "target did not answer");
                }
                self.drive(stack, now)
            }
        }
    }

    /// Handles one protocol event; `Some(t)` if the connection failed.
    fn event(&mut self, stack: &mut Stack, now: u64, e: Event) -> Option<u64> {
        match e {
            Event::Established { .. } => {
                self.conn.phase = Phase::Connect;
                self.conn.since = now;
                None
            }
            Event::Completed { cqe, .. } => {
                self.busy = false;
                self.conn.since = now;
                if self.step == Step::Live {
                    self.ka_outstanding = false;
                    if !cqe.status.is_success() {
                        return Some(self.fail(stack, now, "keep alive failed"));
                    }
                    return None;
                }
                let disc = self.discovering();
                let refused = disc && (!cqe.status.is_success() || (self.step == Step::DiscConnect && !matches!(ConnectResponse::from_cqe(&cqe), ConnectResponse::Accepted { .. })));
                if refused {
                    // No discovery service there: connect to the subsystem directly.
                    defmt::info!("nvmf: ctrl {=usize}: no discovery controller ({=u16:#x}); connecting directly", self.index, cqe.status.field());
                    return Some(self.end_discovery(stack, now));
                }
                if !cqe.status.is_success() && self.step != Step::SetQueues {
                    if let Some(at) = self.attaching.as_mut() {
                        at.status = cqe.status.field();
                    }
                    if self.step == Step::Connect && self.attaching.as_ref().is_some_and(|a| !a.retry) {
                        return Some(self.fail(stack, now, "the target refused Connect"));
                    }
                    defmt::warn!("nvmf: ctrl {=usize}: step {} failed: status {=u16:#x}", self.index, self.step, cqe.status.field());
                    return Some(self.fail(stack, now, "admin command failed"));
                }
                self.completed(now, cqe);
                if self.discovered && disc {
                    return Some(self.end_discovery(stack, now));
                }
                None
            }
            Event::R2t { .. } => Some(self.fail(stack, now, "unexpected R2T on the admin queue")),
            Event::None => None,
        }
    }

    /// The admin queue's state, for the management API.
    fn state_name(&self) -> &'static str {
        match (self.conn.phase, self.step) {
            (Phase::Down { .. }, _) if self.attempts == 0 => "connecting",
            (Phase::Down { .. }, _) => "reconnecting",
            (Phase::Tcp | Phase::Ic, _) => "connecting",
            (_, Step::DiscConnect | Step::DiscEnable | Step::DiscReady | Step::DiscLog) => "discovery",
            (_, Step::Connect | Step::GetCap | Step::Enable | Step::WaitReady) => "enabling",
            (_, Step::IdentifyCtrl | Step::IdentifyNs(_) | Step::ActiveList | Step::IdentifyFound(_) | Step::SetQueues) => "identifying",
            (_, Step::Live) => "live",
        }
    }

    /// Whether the current step belongs to the discovery association.
    fn discovering(&self) -> bool {
        matches!(self.step, Step::DiscConnect | Step::DiscEnable | Step::DiscReady | Step::DiscLog)
    }

    /// Closes the discovery association; the subsystem association follows
    /// at once.
    fn end_discovery(&mut self, stack: &mut Stack, now: u64) -> u64 {
        self.discovered = true;
        self.busy = false;
        self.conn.shutdown(stack, now);
        self.conn.failures = 0;
        self.conn.phase = Phase::Down { until: now };
        now
    }

    /// Logs the discovery log page and checks the configured subsystem is
    /// offered at this address.
    fn discovery_log(&self) {
        let c = &self.def;
        let Ok(log) = dpu_nvme_tcp::discovery::DiscoveryLog::parse(&self.buf) else {
            defmt::warn!("nvmf: ctrl {=usize}: malformed discovery log", self.index);
            return;
        };
        let mut listed = false;
        for e in log.entries() {
            let (Ok(nqn), Ok(addr)) = (e.subnqn(), e.traddr()) else { continue };
            defmt::info!(
                "nvmf: ctrl {=usize}: discovery: {=str} at {=str}:{=u16} (trtype {=u8}, subtype {=u8})",
                self.index, nqn, addr, e.port().unwrap_or(0), e.trtype(), e.subtype()
            );
            if nqn.as_bytes() == c.subnqn() && e.ipv4() == Some(c.traddr) && e.port() == Some(c.trsvcid) {
                listed = true;
            }
        }
        if !listed {
            defmt::warn!("nvmf: ctrl {=usize}: the configured subsystem is not in the discovery log; connecting anyway", self.index);
        }
    }

    /// A step's command completed successfully: take its result.
    fn completed(&mut self, now: u64, cqe: dpu_nvme::Cqe) {
        match self.step {
            Step::DiscConnect => {
                self.conn.phase = Phase::Ready;
                self.step = Step::DiscEnable;
            }
            Step::DiscEnable => {
                self.step = Step::DiscReady;
                self.retry_at = now;
                self.conn.since = now;
            }
            Step::DiscReady => {
                if cqe.dw0 & 1 == 1 {
                    self.step = Step::DiscLog;
                } else {
                    self.retry_at = now + 1000 * US;
                }
            }
            Step::DiscLog => {
                self.discovery_log();
                self.discovered = true;
            }
            Step::Connect => match ConnectResponse::from_cqe(&cqe) {
                ConnectResponse::Accepted { cntlid, .. } => {
                    self.cntlid = cntlid;
                    self.conn.phase = Phase::Ready;
                    self.step = Step::GetCap;
                }
                _ => self.step = Step::Connect,
            },
            Step::GetCap => {
                let cap = u64::from(cqe.dw0) | u64::from(cqe.dw1) << 32;
                self.cap_to = ((cap >> 24) & 0xff).max(1) * 500_000 * US;
                self.step = Step::Enable;
            }
            Step::Enable => {
                self.step = Step::WaitReady;
                self.retry_at = now;
                self.conn.since = now;
            }
            Step::WaitReady => {
                if cqe.dw0 & 1 == 1 {
                    self.step = Step::IdentifyCtrl;
                } else if cqe.dw0 & 2 != 0 {
                    self.step = Step::Connect; // CSTS.CFS: fail below
                } else {
                    self.retry_at = now + 1000 * US;
                }
            }
            Step::IdentifyCtrl => {
                let id = &self.buf;
                let ioccsz = u32::from_le_bytes([id[1792], id[1793], id[1794], id[1795]]);
                self.inline = (ioccsz * 16).saturating_sub(64);
                let mdts = id[77];
                self.max_transfer = if mdts == 0 { 0 } else { 4096u32 << mdts.min(20) };
                self.step = if self.run_time { Step::ActiveList } else { Step::IdentifyNs(0) };
            }
            Step::ActiveList => {
                // NVMe Base 2.0 §5.17.2.2: ascending NSIDs, zero-padded.
                let mut ns = [FoundNs::default(); MAX_CTRL_NS];
                let mut n = 0;
                for c in self.buf.chunks_exact(4) {
                    let id = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    if id == 0 || n == MAX_CTRL_NS {
                        break;
                    }
                    ns[n].nsid = id;
                    n += 1;
                }
                self.found = ns;
                self.nfound = n;
                self.step = Step::IdentifyFound(0);
            }
            Step::IdentifyFound(k) => {
                let id = &self.buf;
                let nsze = u64::from_le_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]);
                let flbas = usize::from(id[26] & 0xf);
                let lbads = id[128 + 4 * flbas + 2];
                if let Some(f) = self.found.get_mut(usize::from(k)) {
                    f.blocks = nsze;
                    f.block_shift = lbads;
                }
                self.step = Step::IdentifyFound(k + 1);
            }
            Step::IdentifyNs(k) => {
                if let Some(ns) = remote_namespaces(self.index).nth(usize::from(k)) {
                    let id = &self.buf;
                    let nsze = u64::from_le_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]);
                    let flbas = usize::from(id[26] & 0xf);
                    let lbads = id[128 + 4 * flbas + 2];
                    let ok = nsze == ns.geometry.blocks && lbads == ns.geometry.block_shift;
                    if !ok {
                        defmt::error!(
                            "nvmf: ctrl {=usize}: fn{=u16} nsid {=u32}: remote has {=u64} blocks of {=u32} B, configured {=u64} of {=u32} B",
                            self.index, ns.function, ns.nsid, nsze, 1u32 << lbads.min(31), ns.geometry.blocks, 1u32 << ns.geometry.block_shift
                        );
                    }
                    bootcfg::set_state(ns.index, if ok { bootcfg::NS_READY } else { bootcfg::NS_MISMATCH });
                }
                self.step = Step::IdentifyNs(k + 1);
            }
            Step::SetQueues => {
                // Number of Queues (NVMe Base 2.0 §5.27.1.5): dw0 holds the
                // I/O submission (15:0) and completion (31:16) queues
                // allocated, 0's based. A failed Set Features grants none
                // (as Linux treats it): the controller stays admin-only.
                let granted = if cqe.status.is_success() {
                    ((cqe.dw0 & 0xffff).min(cqe.dw0 >> 16) + 1).min(net::DATA_CORES as u32)
                } else {
                    defmt::warn!("nvmf: ctrl {=usize}: Set Features Number of Queues failed ({=u16:#x}): no I/O queues", self.index, cqe.status.field());
                    0
                };
                if granted < net::DATA_CORES as u32 {
                    defmt::info!("nvmf: ctrl {=usize}: target grants {=u32} I/O queues for {=usize} data-plane cores", self.index, granted, net::DATA_CORES);
                }
                self.step = Step::Live;
                self.next_ka = now + u64::from(KATO_MS) * 1000 * US / 2;
                super::publish_up(self.index, self.cntlid, self.inline, self.max_transfer, granted);
                ring_data_plane();
                dpu_hal::mailbox::ring(crate::nvme::ADMIN_HART, super::DOORBELL_NVMF);
                if self.attaching.take().is_some() {
                    // Only namespaces with a block size the card serves.
                    let mut ns = [FoundNs::default(); MAX_CTRL_NS];
                    let mut count = 0;
                    for f in self.found[..self.nfound].iter().filter(|f| f.blocks > 0 && (9..=12).contains(&f.block_shift)) {
                        ns[count] = *f;
                        count += 1;
                    }
                    self.outcome = Some(Outcome::Attached { index: self.index, ns, count });
                }
                let c = &self.def;
                defmt::info!(
                    "nvmf: ctrl {=usize}: {=u8}.{=u8}.{=u8}.{=u8}:{=u16} cntlid {=u16} live (in-capsule {=u32} B, max transfer {=u32} B)",
                    self.index, c.traddr[0], c.traddr[1], c.traddr[2], c.traddr[3], c.trsvcid, self.cntlid, self.inline, self.max_transfer
                );
                self.conn.failures = 0;
            }
            Step::Live => {}
        }
    }

    /// Issues the current step's command if none is outstanding.
    fn drive(&mut self, stack: &mut Stack, now: u64) -> u64 {
        if self.conn.phase == Phase::Ic || self.busy {
            return self.conn.since + if self.discovering() { DISCOVERY_STEP_TIMEOUT + 1 } else { STEP_TIMEOUT };
        }
        let sqe: Sqe;
        let mut len = 0u32;
        let mut connect_data = [0u8; 1024];
        let mut inline: &[u8] = &[];
        match self.step {
            Step::Connect | Step::DiscConnect => {
                let c = &self.def;
                let (_, hostid) = bootcfg::host();
                let subnqn = if self.step == Step::DiscConnect { Ok(dpu_nvme_tcp::DISCOVERY_NQN) } else { core::str::from_utf8(c.subnqn()) };
                let (Ok(subnqn), Ok(hostnqn)) = (subnqn, core::str::from_utf8(c.hostnqn())) else {
                    return self.fail(stack, now, "bad NQN");
                };
                if (ConnectData { hostid, cntlid: 0xffff, subnqn, hostnqn }).emit(&mut connect_data).is_err() {
                    return self.fail(stack, now, "bad NQN");
                }
                // No keep-alive on the short discovery association.
                let kato = if self.step == Step::DiscConnect { 0 } else { KATO_MS };
                sqe = ConnectCmd { recfmt: 0, qid: 0, sqsize: ADMIN_DEPTH - 1, cattr: 0, kato }.to_sqe(0);
                inline = &connect_data;
                len = 1024;
            }
            Step::DiscEnable => sqe = PropertySet { size: PropertySize::Four, offset: prop::CC, value: 1 | 6 << 16 | 4 << 20 }.to_sqe(2),
            Step::DiscReady => {
                if now < self.retry_at {
                    return self.retry_at;
                }
                if now > self.conn.since + DISCOVERY_STEP_TIMEOUT {
                    return self.end_discovery(stack, now);
                }
                sqe = PropertyGet { size: PropertySize::Four, offset: prop::CSTS }.to_sqe(3)
            }
            Step::DiscLog => {
                match (admin::GetLogPage { nsid: 0, lid: dpu_nvme_tcp::discovery::LID_DISCOVERY, lsp: 0, rae: false, offset: 0, len: 4096 }).to_sqe(4) {
                    Ok(s) => sqe = s,
                    Err(_) => return self.end_discovery(stack, now),
                }
                len = 4096;
            }
            Step::GetCap => sqe = PropertyGet { size: PropertySize::Eight, offset: prop::CAP }.to_sqe(1),
            Step::Enable => {
                // CC: EN, CSS = NVM, MPS = 4 KiB, IOSQES = 64 B, IOCQES = 16 B.
                sqe = PropertySet { size: PropertySize::Four, offset: prop::CC, value: 1 | 6 << 16 | 4 << 20 }.to_sqe(2)
            }
            Step::WaitReady => {
                if now < self.retry_at {
                    return self.retry_at;
                }
                if now > self.conn.since + self.cap_to {
                    return self.fail(stack, now, "controller did not become ready (CAP.TO)");
                }
                sqe = PropertyGet { size: PropertySize::Four, offset: prop::CSTS }.to_sqe(3)
            }
            Step::IdentifyCtrl => {
                sqe = admin::identify(4, 0, admin::cns::CONTROLLER, 0);
                len = 4096;
            }
            Step::IdentifyNs(k) => match remote_namespaces(self.index).nth(usize::from(k)) {
                Some(ns) => {
                    let Backend::Remote { nsid, .. } = ns.backend else { return now };
                    sqe = admin::identify(5, nsid, admin::cns::NAMESPACE, 0);
                    len = 4096;
                }
                None => {
                    self.step = Step::SetQueues;
                    return now;
                }
            },
            Step::ActiveList => {
                sqe = admin::identify(5, 0, admin::cns::ACTIVE_NAMESPACES, 0);
                len = 4096;
            }
            Step::IdentifyFound(k) => match self.found[..self.nfound].get(usize::from(k)) {
                Some(f) => {
                    sqe = admin::identify(5, f.nsid, admin::cns::NAMESPACE, 0);
                    len = 4096;
                }
                None => {
                    self.step = Step::SetQueues;
                    return now;
                }
            },
            Step::SetQueues => {
                // Set Features, Number of Queues (FID 07h): one I/O queue
                // per data-plane core, 0's based.
                let n = (net::DATA_CORES as u32 - 1) & 0xffff;
                let mut s = dpu_nvme_tcp::fabrics::command_sqe(0x09, 6, 0, dpu_nvme_tcp::sgl::Dptr::None);
                s.set_dw(10, 0x07);
                s.set_dw(11, n | n << 16);
                sqe = s;
            }
            Step::Live => {
                if self.ka_outstanding {
                    if now > self.conn.since + u64::from(KATO_MS) * 1000 * US {
                        return self.fail(stack, now, "keep alive unanswered");
                    }
                    return self.conn.since + u64::from(KATO_MS) * 1000 * US;
                }
                if now < self.next_ka {
                    return self.next_ka;
                }
                sqe = admin::keep_alive(7);
                self.ka_outstanding = true;
                self.next_ka = now + u64::from(KATO_MS) * 1000 * US / 2;
            }
        }
        let write = matches!(self.step, Step::Connect | Step::DiscConnect);
        if self.conn.submit(stack, &sqe, write, len, &[inline], 0) {
            self.busy = true;
            self.conn.since = now;
        }
        now + STEP_TIMEOUT.min(1000 * US)
    }

    /// Tears the association down (RST) and schedules a reconnect.
    fn fail(&mut self, stack: &mut Stack, now: u64, why: &'static str) -> u64 {
        self.fail_with(stack, now, why, false)
    }

    /// Tears the association down and schedules a reconnect; `graceful`
    /// sends what is queued (an H2CTermReq) before the FIN.
    fn fail_with(&mut self, stack: &mut Stack, now: u64, why: &'static str, graceful: bool) -> u64 {
        let was_live = self.step == Step::Live;
        if let Some(at) = self.attaching.take_if(|a| !a.retry) {
            // A run-time attach ends at its first failure.
            defmt::warn!("nvmf: ctrl {=usize}: attach failed: {=str}", self.index, why);
            if graceful {
                self.conn.shutdown(stack, now);
            } else {
                self.conn.close(stack, now);
            }
            self.outcome = Some(Outcome::Failed { index: self.index, why, status: at.status });
            return now;
        }
        // Every failure of a live association; while reconnecting, the
        // 1st, 2nd, 4th, 8th... failure in a row (a long outage stays
        // readable).
        let failures = self.conn.failures + 1;
        if was_live || failures.is_power_of_two() {
            defmt::warn!("nvmf: ctrl {=usize}: {=str}; reconnecting (failure {=u32} in a row)", self.index, why, failures);
        }
        if graceful {
            self.conn.shutdown(stack, now);
        } else {
            self.conn.close(stack, now);
        }
        self.busy = false;
        self.ka_outstanding = false;
        self.step = Step::Connect;
        // Discovery gets three attempts; failing there must not keep the
        // subsystem association from being made.
        if self.attempts >= 3 {
            self.discovered = true;
        }
        super::publish_down(self.index);
        for ns in remote_namespaces(self.index) {
            if bootcfg::state(ns.index) == bootcfg::NS_READY {
                bootcfg::set_state(ns.index, bootcfg::NS_OFFLINE);
            }
        }
        if was_live {
            ring_data_plane();
        }
        match self.conn.phase {
            Phase::Down { until } => until,
            _ => now,
        }
    }
}

/// Local control-plane ports per controller (one per reconnect attempt).
const CONTROL_SPAN: u16 = 50;
const _: () = assert!((MAX_CTRLS as u16) * CONTROL_SPAN <= 1000, "fits CONTROL_PORTS");

/// Tells every data-plane core that a controller's state changed.
fn ring_data_plane() {
    for q in 0..net::DATA_CORES {
        dpu_hal::mailbox::ring(net::FIRST_DATA_HART + q, super::DOORBELL_NVMF);
    }
}
