//! The host: a PCIe root complex plus software (the NVMe driver and the
//! fio-like workload) written as async tasks over simulated time.
//!
//! Host tasks never block the simulation: an MMIO read, a configuration
//! access, a timer or an interrupt wait becomes a request the machine turns
//! into link events; the task resumes when its reply arrives. Host CPU time
//! is charged explicitly (`Host::cpu`), not simulated instruction by
//! instruction.

pub mod exec;
pub mod fwupdate;
pub mod hostile;
pub mod nvme;
pub mod pci;
pub mod preos;
pub mod scenario;
pub mod workload;

use crate::bus::Bus;
use crate::pcie::{HostOp, HostReply};
use crate::event::Payload;
use crate::pcie::{Dir, HostMemory};
use exec::{Executor, Task};
use rustc_hash::FxHashMap;
use std::cell::{RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// MSI address the host's interrupt controller decodes (x86 LAPIC window).
pub const MSI_ADDR: u64 = 0xfee0_0000;

/// A request a host task made, for the machine to carry out.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    Op(HostOp),
    Timer { at: u64 },
}

#[derive(Default)]
struct Irq {
    count: u64,
    wakers: Vec<Waker>,
}

/// State shared by all host tasks.
pub struct HostState {
    pub now: u64,
    pub clock_hz: u64,
    pub mem: Rc<RefCell<HostMemory>>,
    next_id: u64,
    requests: Vec<(u64, Request)>,
    replies: FxHashMap<u64, HostReply>,
    waiting: FxHashMap<u64, Waker>,
    irqs: FxHashMap<u32, Irq>,
    spawned: Vec<Task>,
    next_page: u64,
    free_pages: Vec<u64>,
    next_msi: u32,
    pub quiet: bool,
    /// Print log lines on stderr (`dpusim --json` keeps stdout for JSON).
    pub log_to_stderr: bool,
    /// Printing failed (closed pipe); lines are only kept from then on.
    output_closed: bool,
    /// Host log lines (time, text).
    pub log: Vec<(u64, String)>,
    /// Set by the main task when the host's work is done.
    pub finished: Option<Result<(), String>>,
    /// Fio-like results, filled by the workload.
    pub report: Option<workload::Report>,
    /// Measurement window marks (true = start, false = end) not yet seen
    /// by the machine.
    pub marks: Vec<bool>,
    /// Per-I/O trace, when enabled.
    pub iotrace: Option<Rc<RefCell<crate::iotrace::IoTrace>>>,
    /// I/Os the workload completed (live progress).
    pub ios_done: u64,
}

/// A handle on the host, cloned into every task.
#[derive(Clone)]
pub struct Host(Rc<RefCell<HostState>>);

/// Future resolving when request `id`'s reply arrives.
struct Reply {
    host: Host,
    id: u64,
}

impl Future for Reply {
    type Output = HostReply;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HostReply> {
        let mut s = self.host.0.borrow_mut();
        match s.replies.remove(&self.id) {
            Some(r) => Poll::Ready(r),
            None => {
                s.waiting.insert(self.id, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Future resolving when interrupt `data` has fired more than `seen` times.
struct IrqWait {
    host: Host,
    data: u32,
    seen: u64,
}

impl Future for IrqWait {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut s = self.host.0.borrow_mut();
        let irq = s.irqs.entry(self.data).or_default();
        if irq.count > self.seen {
            Poll::Ready(irq.count)
        } else {
            irq.wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// First host DRAM page handed out (keeps page 0 and low memory unused).
const FIRST_PAGE: u64 = 0x10_0000 >> 12;

impl Host {
    pub fn new(clock_hz: u64, mem: Rc<RefCell<HostMemory>>, quiet: bool) -> Host {
        Host(Rc::new(RefCell::new(HostState {
            now: 0,
            clock_hz,
            mem,
            next_id: 1,
            requests: Vec::new(),
            replies: FxHashMap::default(),
            waiting: FxHashMap::default(),
            irqs: FxHashMap::default(),
            spawned: Vec::new(),
            next_page: FIRST_PAGE,
            free_pages: Vec::new(),
            next_msi: 0x40,
            quiet,
            log_to_stderr: false,
            output_closed: false,
            log: Vec::new(),
            finished: None,
            report: None,
            marks: Vec::new(),
            iotrace: None,
            ios_done: 0,
        })))
    }

    pub fn state(&self) -> RefMut<'_, HostState> {
        self.0.borrow_mut()
    }

    /// Current simulated time (cycles).
    pub fn now(&self) -> u64 {
        self.0.borrow().now
    }

    /// Cycles in `ns` nanoseconds.
    pub fn cycles(&self, ns: u64) -> u64 {
        dpu_targets::ns_to_cycles(ns, self.0.borrow().clock_hz)
    }

    /// Nanoseconds in `cycles`.
    pub fn ns(&self, cycles: u64) -> u64 {
        (u128::from(cycles) * 1_000_000_000 / u128::from(self.0.borrow().clock_hz)) as u64
    }

    /// Runs `f` as a new task.
    pub fn spawn(&self, f: impl Future<Output = ()> + 'static) {
        self.0.borrow_mut().spawned.push(Box::pin(f));
    }

    fn request(&self, r: Request) -> u64 {
        let mut s = self.0.borrow_mut();
        let id = s.next_id;
        s.next_id += 1;
        s.requests.push((id, r));
        id
    }

    /// Waits `cycles` of simulated time.
    pub async fn sleep(&self, cycles: u64) {
        let at = self.now() + cycles.max(1);
        let id = self.request(Request::Timer { at });
        Reply { host: self.clone(), id }.await;
    }

    /// Charges host CPU time (driver code path) before continuing.
    pub async fn cpu(&self, ns: u64) {
        if ns > 0 {
            self.sleep(self.cycles(ns)).await;
        }
    }

    /// Reads a device register (non-posted). `None`: Unsupported Request
    /// (the CPU would see all ones).
    pub async fn mmio_read(&self, addr: u64, size: u8) -> Option<u64> {
        let id = self.request(Request::Op(HostOp::MmioRead { addr, size }));
        match (Reply { host: self.clone(), id }).await {
            HostReply::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Writes a device register (posted: returns at once, ordered with the
    /// host's other writes to the device).
    pub fn mmio_write(&self, addr: u64, size: u8, value: u64) {
        self.request(Request::Op(HostOp::MmioWrite { addr, size, value }));
    }

    /// Configuration read; retried while the function answers with CRS.
    pub async fn cfg_read(&self, function: u16, off: u16, size: u8) -> Option<u32> {
        for _ in 0..100_000 {
            let id = self.request(Request::Op(HostOp::CfgRead { function, off, size }));
            match (Reply { host: self.clone(), id }).await {
                HostReply::Value(v) => return Some(v as u32),
                HostReply::Retry => self.sleep(self.cycles(10_000)).await,
                _ => return None,
            }
        }
        None
    }

    /// Configuration write (non-posted); retried while CRS.
    pub async fn cfg_write(&self, function: u16, off: u16, size: u8, value: u32) -> bool {
        for _ in 0..100_000 {
            let id = self.request(Request::Op(HostOp::CfgWrite { function, off, size, value }));
            match (Reply { host: self.clone(), id }).await {
                HostReply::Done => return true,
                HostReply::Retry => self.sleep(self.cycles(10_000)).await,
                _ => return false,
            }
        }
        false
    }

    /// A fresh MSI data value (one per vector the host programs).
    pub fn alloc_msi(&self) -> u32 {
        let mut s = self.0.borrow_mut();
        s.next_msi += 1;
        s.next_msi
    }

    /// Waits until interrupt `data` has fired more than `seen` times; returns the count.
    pub async fn wait_irq(&self, data: u32, seen: u64) -> u64 {
        IrqWait { host: self.clone(), data, seen }.await
    }

    /// Times interrupt `data` has fired.
    pub fn irq_count(&self, data: u32) -> u64 {
        self.0.borrow().irqs.get(&data).map_or(0, |i| i.count)
    }

    /// Allocates `pages` physically contiguous 4 KiB host pages (zeroed).
    pub fn alloc_pages(&self, pages: u64) -> u64 {
        let mut s = self.0.borrow_mut();
        if pages == 1 {
            if let Some(p) = s.free_pages.pop() {
                let addr = p << 12;
                s.mem.borrow_mut().write(addr, &[0u8; 4096]);
                return addr;
            }
        }
        let addr = s.next_page << 12;
        s.next_page += pages;
        addr
    }

    /// Returns single pages to the allocator (zeroed again on reuse).
    pub fn free_page(&self, addr: u64) {
        self.0.borrow_mut().free_pages.push(addr >> 12);
    }

    /// Runs `f` on host memory.
    pub fn with_mem<R>(&self, f: impl FnOnce(&mut HostMemory) -> R) -> R {
        let mem = self.0.borrow().mem.clone();
        let mut m = mem.borrow_mut();
        f(&mut m)
    }

    /// Reads host memory.
    pub fn read(&self, addr: u64, out: &mut [u8]) {
        self.with_mem(|m| m.read(addr, out));
    }

    /// Writes host memory (a CPU store: visible at once).
    pub fn write(&self, addr: u64, data: &[u8]) {
        self.with_mem(|m| m.write(addr, data));
    }

    /// Logs a host message with the current time.
    pub fn log(&self, msg: impl Into<String>) {
        let mut s = self.0.borrow_mut();
        let now = s.now;
        let msg = msg.into();
        if !s.quiet && !s.output_closed {
            use std::io::Write;
            let ms = now as f64 * 1000.0 / s.clock_hz as f64;
            let line = format!("[{ms:>11.6} ms] host  {msg}\n");
            let r = if s.log_to_stderr { std::io::stderr().lock().write_all(line.as_bytes()) } else { std::io::stdout().lock().write_all(line.as_bytes()) };
            s.output_closed = r.is_err();
        }
        s.log.push((now, msg));
    }

    /// Opens (`true`) or closes the measurement window: the machine records
    /// every hart's busy cycles and instructions at that moment.
    pub fn mark_window(&self, start: bool) {
        self.0.borrow_mut().marks.push(start);
    }

    /// Runs `f` on the I/O trace, if one is being recorded.
    pub fn trace(&self, f: impl FnOnce(&mut crate::iotrace::IoTrace, u64)) {
        let s = self.0.borrow();
        if let Some(t) = &s.iotrace {
            f(&mut t.borrow_mut(), s.now);
        }
    }

    /// Ends the host's work with a verdict.
    pub fn finish(&self, r: Result<(), String>) {
        let mut s = self.0.borrow_mut();
        if s.finished.is_none() {
            s.finished = Some(r);
        }
    }
}

/// Payload kinds of the events addressed to the host model (its
/// component id is `Bus::host_id`, the far end of the PCIe link).
pub mod payload {
    /// Host request `a` reaches the endpoint.
    pub const TO_DEVICE: u16 = 0;
    /// The completion of host request `a` reaches the host.
    pub const REPLY: u16 = 1;
    /// Host timer `a` expires.
    pub const TIMER: u16 = 2;
    /// An MSI-X write (address `a`, data `b`) reaches the host.
    pub const MSI: u16 = 3;
}

/// The event payload of an MSI-X write to `addr` with `data` reaching the host.
pub fn msi_payload(addr: u64, data: u32) -> Payload {
    Payload::new(payload::MSI, addr, u64::from(data))
}

/// The host model as the machine drives it.
pub struct HostModel {
    pub host: Host,
    exec: Executor,
    /// Requests on the link: id -> (operation, issue time).
    ops: FxHashMap<u64, (HostOp, u64)>,
    replies: FxHashMap<u64, HostReply>,
    /// Task polls so far: what the host model costs the simulator.
    pub polls: u64,
}

impl HostModel {
    pub fn new(host: Host) -> HostModel {
        HostModel { host, exec: Executor::default(), ops: FxHashMap::default(), replies: FxHashMap::default(), polls: 0 }
    }

    /// Runs every task that can run at `now`, then turns their requests
    /// into link events.
    pub fn step(&mut self, now: u64, bus: &mut Bus) {
        self.host.0.borrow_mut().now = now;
        let h = self.host.clone();
        self.polls += self.exec.run_ready(|| std::mem::take(&mut h.0.borrow_mut().spawned)) as u64;
        // Initiator models take the I/Os the tasks queued; what they
        // answer at once (a failure) wakes tasks again at this time.
        for _ in 0..100_000 {
            if !bus.poke_initiators(now) {
                break;
            }
            self.polls += self.exec.run_ready(|| std::mem::take(&mut h.0.borrow_mut().spawned)) as u64;
        }
        let requests = std::mem::take(&mut self.host.0.borrow_mut().requests);
        for (id, r) in requests {
            match r {
                Request::Timer { at } => bus.events.push(at.max(now), bus.host_id, Payload::new(payload::TIMER, id, 0)),
                Request::Op(op) => {
                    let size = match op {
                        HostOp::MmioWrite { size, .. } => u64::from(size),
                        _ => 0,
                    };
                    let arrive = bus.link.send(Dir::Down, now, size) + bus.link.posted_latency;
                    self.ops.insert(id, (op, now));
                    bus.events.push(arrive, bus.host_id, Payload::new(payload::TO_DEVICE, id, 0));
                }
            }
        }
    }

    /// A request reached the endpoint.
    pub fn arrive(&mut self, id: u64, now: u64, bus: &mut Bus) {
        let Some((op, issued)) = self.ops.remove(&id) else { return };
        let reply = bus.host_access(op, now);
        if !matches!(op, HostOp::MmioWrite { .. }) {
            let at = (issued + bus.link.mmio_read_latency).max(now + 1);
            self.replies.insert(id, reply);
            bus.events.push(at, bus.host_id, Payload::new(payload::REPLY, id, 0));
        }
    }

    /// An event addressed to the host model, at `now`.
    pub fn on_event(&mut self, p: Payload, now: u64, bus: &mut Bus) {
        match p.kind {
            payload::TO_DEVICE => self.arrive(p.a, now, bus),
            payload::REPLY | payload::TIMER => self.reply(p.a),
            payload::MSI => self.msi(p.a, p.b as u32),
            _ => {}
        }
    }

    /// A reply (or timer) reached the host.
    pub fn reply(&mut self, id: u64) {
        let r = self.replies.remove(&id).unwrap_or(HostReply::Done);
        let mut s = self.host.0.borrow_mut();
        s.replies.insert(id, r);
        if let Some(w) = s.waiting.remove(&id) {
            w.wake();
        }
    }

    /// An MSI write reached the host.
    pub fn msi(&mut self, addr: u64, data: u32) {
        self.host.trace(|t, now| t.msi(now, data));
        if addr != MSI_ADDR {
            self.host.log(format!("MSI to unexpected address {addr:#x} (data {data:#x}) ignored"));
            return;
        }
        let mut s = self.host.0.borrow_mut();
        let irq = s.irqs.entry(data).or_default();
        irq.count += 1;
        for w in irq.wakers.drain(..) {
            w.wake();
        }
    }

    /// Window marks made since the last call.
    pub fn take_marks(&mut self) -> Vec<bool> {
        std::mem::take(&mut self.host.0.borrow_mut().marks)
    }

    /// Whether the host has finished its work.
    pub fn finished(&self) -> Option<Result<(), String>> {
        self.host.0.borrow().finished.clone()
    }

    pub fn live_tasks(&self) -> usize {
        self.exec.live()
    }
}

/// A host without a machine, for tests of models that do not need the
/// PCIe side (the NVMe/TCP initiator's jobs): it runs the tasks and
/// fires their timers at the times the test gives.
#[cfg(test)]
pub(crate) struct DetachedHost {
    pub host: Host,
    exec: Executor,
    /// Timer requests: (due, request id).
    timers: Vec<(u64, u64)>,
}

#[cfg(test)]
impl DetachedHost {
    pub fn new(clock_hz: u64) -> DetachedHost {
        let mem = Rc::new(RefCell::new(HostMemory::new()));
        DetachedHost { host: Host::new(clock_hz, mem, true), exec: Executor::default(), timers: Vec::new() }
    }

    /// Fires the timers due at `now` and runs every ready task.
    pub fn run(&mut self, now: u64) {
        let h = self.host.clone();
        h.0.borrow_mut().now = now;
        let due: Vec<u64> = self.timers.iter().filter(|t| t.0 <= now).map(|t| t.1).collect();
        self.timers.retain(|t| t.0 > now);
        for id in due {
            let mut s = h.0.borrow_mut();
            s.replies.insert(id, HostReply::Done);
            if let Some(w) = s.waiting.remove(&id) {
                w.wake();
            }
        }
        self.exec.run_ready(|| std::mem::take(&mut h.0.borrow_mut().spawned));
        for (id, r) in std::mem::take(&mut h.0.borrow_mut().requests) {
            if let Request::Timer { at } = r {
                self.timers.push((at, id));
            }
        }
    }

    /// The earliest timer.
    pub fn next_timer(&self) -> Option<u64> {
        self.timers.iter().map(|t| t.0).min()
    }
}
