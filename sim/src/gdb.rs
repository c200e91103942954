//! GDB remote stub (`dpusim --gdb ADDR`), built on the `gdbstub` crate.
//!
//! Every hart is a thread (thread id = hart + 1). All-stop mode: while GDB
//! looks, nothing runs. Continue runs the whole machine in slices of
//! simulated time, checking for a GDB interrupt between slices; single step
//! executes one instruction on the stepped hart only (the others stay
//! frozen, as with `set scheduler-locking step`). Software breakpoints are
//! checked by the harts' debug execution path before each instruction.
//!
//! A session never ends the simulation: on detach, on a dropped
//! connection (GDB killed, network gone) or on a session error, `serve`
//! returns and the run goes on without the debugger. Packets are checked
//! before `gdbstub` sees them: a bad checksum or an overlong packet is
//! answered with a NAK (`-`, "send again"), a well-framed packet the stub
//! cannot parse with an error reply (`E01`); the session continues (after
//! a parse error with a fresh protocol state: no-ack mode is off again).

use crate::machine::{Machine, Outcome};
use gdbstub::common::{Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::riscv::reg::RiscvCoreRegs;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::rc::Rc;

/// Simulated time per run slice between checks for a GDB interrupt.
const SLICE: u64 = 200_000;

/// The machine as a GDB target.
pub struct GdbTarget<'a> {
    pub m: &'a mut Machine,
    /// Hart to single-step, if the last resume asked for one.
    step: Option<usize>,
}

fn tid(hart: usize) -> Tid {
    NonZeroUsize::new(hart + 1).expect("hart + 1 is non-zero")
}

impl<'a> GdbTarget<'a> {
    pub fn new(m: &'a mut Machine) -> GdbTarget<'a> {
        for h in m.harts.iter_mut() {
            h.debug = true;
        }
        GdbTarget { m, step: None }
    }

    fn hart(&self, t: Tid) -> Option<usize> {
        let h = t.get() - 1;
        (h < self.m.harts.len()).then_some(h)
    }
}

impl Drop for GdbTarget<'_> {
    fn drop(&mut self) {
        for h in self.m.harts.iter_mut() {
            h.debug = false;
        }
        self.m.bus.breakpoints.clear();
    }
}

impl Target for GdbTarget<'_> {
    type Arch = gdbstub_arch::riscv::Riscv64;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for GdbTarget<'_> {
    fn read_registers(&mut self, regs: &mut RiscvCoreRegs<u64>, t: Tid) -> TargetResult<(), Self> {
        let h = self.hart(t).ok_or(TargetError::NonFatal)?;
        let hart = &self.m.harts[h];
        regs.x = hart.regs();
        regs.pc = hart.pc;
        Ok(())
    }

    fn write_registers(&mut self, regs: &RiscvCoreRegs<u64>, t: Tid) -> TargetResult<(), Self> {
        let h = self.hart(t).ok_or(TargetError::NonFatal)?;
        let hart = &mut self.m.harts[h];
        for (r, v) in regs.x.iter().enumerate() {
            hart.set_reg(r, *v);
        }
        hart.pc = regs.pc;
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _t: Tid) -> TargetResult<usize, Self> {
        // RAM only: reading device registers could change device state.
        match self.m.bus.mem.read_bytes(start, data) {
            Some(()) => Ok(data.len()),
            None => Err(TargetError::NonFatal),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _t: Tid) -> TargetResult<(), Self> {
        if !self.m.bus.mem.range_is_ram(start, data.len() as u64) {
            return Err(TargetError::NonFatal);
        }
        // Patched code is decoded again: memory records the write into
        // code pages and the harts' code cache drops what it overlapped.
        self.m.bus.mem.write_bytes(start, data);
        Ok(())
    }

    fn list_active_threads(&mut self, thread_is_active: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for h in 0..self.m.harts.len() {
            thread_is_active(tid(h));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadResume for GdbTarget<'_> {
    fn resume(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.step = None;
        Ok(())
    }

    fn set_resume_action_continue(&mut self, _t: Tid, signal: Option<Signal>) -> Result<(), Self::Error> {
        if signal.is_some() {
            return Err("signals cannot be injected into the firmware".into());
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

/// A single step always runs only the stepped hart (the others stay
/// frozen), which is what scheduler locking asks for.
impl MultiThreadSchedulerLocking for GdbTarget<'_> {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl MultiThreadSingleStep for GdbTarget<'_> {
    fn set_resume_action_step(&mut self, t: Tid, signal: Option<Signal>) -> Result<(), Self::Error> {
        if signal.is_some() {
            return Err("signals cannot be injected into the firmware".into());
        }
        self.step = self.hart(t);
        Ok(())
    }
}

impl Breakpoints for GdbTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.m.bus.breakpoints.insert(addr);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.m.bus.breakpoints.remove(&addr))
    }
}

/// What a run of the machine ended with, as GDB sees it.
fn stop_of(o: Outcome) -> Option<MultiThreadStopReason<u64>> {
    Some(match o {
        Outcome::Breakpoint { hart } => MultiThreadStopReason::SwBreak(tid(hart as usize)),
        Outcome::Fatal { hart, .. } => MultiThreadStopReason::SignalWithThread { tid: tid(hart as usize), signal: Signal::SIGSEGV },
        o => MultiThreadStopReason::Exited(o.exit_code().clamp(0, 255) as u8),
    })
}

struct EventLoop<'a>(std::marker::PhantomData<&'a ()>);

impl<'a> BlockingEventLoop for EventLoop<'a> {
    type Target = GdbTarget<'a>;
    type Connection = RspConn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut Self::Target,
        conn: &mut Self::Connection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, std::io::Error>> {
        if let Some(h) = target.step.take() {
            if let Some(o) = target.m.step_hart(h) {
                return Ok(Event::TargetStopped(stop_of(o).expect("some")));
            }
            return Ok(Event::TargetStopped(MultiThreadStopReason::SignalWithThread { tid: tid(h), signal: Signal::SIGTRAP }));
        }
        // Harts sitting on a breakpoint step past it first.
        let bps = target.m.bus.breakpoints.clone();
        for h in target.m.harts.iter_mut() {
            if bps.contains(&h.pc) {
                h.bp_skip = h.pc;
            }
        }
        loop {
            if let Some(o) = target.m.run_slice(SLICE) {
                if let Some(s) = stop_of(o) {
                    return Ok(Event::TargetStopped(s));
                }
            }
            if conn.peek().map_err(WaitForStopReasonError::Connection)?.is_some() {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
        }
    }

    fn on_interrupt(_target: &mut Self::Target) -> Result<Option<Self::StopReason>, String> {
        Ok(Some(MultiThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// Longest packet passed to the stub (its packet buffer).
const MAX_PACKET: usize = 4096;

/// The TCP connection to GDB with remote-protocol framing checked: only
/// complete packets with a good checksum, acks and interrupts reach the
/// stub. Shared (`Rc`) so a session can go on after a stub error.
#[derive(Clone)]
pub struct RspConn(Rc<RefCell<RspInner>>);

struct RspInner {
    stream: TcpStream,
    /// Checked bytes for the stub.
    ready: VecDeque<u8>,
    /// The packet being received (from `$`), if any.
    packet: Vec<u8>,
    /// Bytes of the packet's checksum still to come after `#`.
    checksum_left: u8,
}

impl RspConn {
    pub fn new(stream: TcpStream) -> RspConn {
        RspConn(Rc::new(RefCell::new(RspInner { stream, ready: VecDeque::new(), packet: Vec::new(), checksum_left: 0 })))
    }
}

impl RspInner {
    /// Takes one byte from GDB.
    fn feed(&mut self, b: u8) -> std::io::Result<()> {
        if self.packet.is_empty() {
            match b {
                b'$' => self.packet.push(b),
                // Acks and the interrupt byte pass; a NAK from GDB (asking
                // for a resend) and noise between packets are dropped.
                b'+' | 0x03 => self.ready.push_back(b),
                _ => {}
            }
            return Ok(());
        }
        self.packet.push(b);
        if self.checksum_left > 0 {
            self.checksum_left -= 1;
            if self.checksum_left == 0 {
                let p = std::mem::take(&mut self.packet);
                if packet_ok(&p) {
                    self.ready.extend(p);
                } else {
                    Write::write_all(&mut self.stream, b"-")?;
                }
            }
        } else if b == b'#' {
            self.checksum_left = 2;
        } else if self.packet.len() > MAX_PACKET {
            self.packet.clear();
            Write::write_all(&mut self.stream, b"-")?;
        }
        Ok(())
    }

    /// Reads what the socket has (blocking: at least one byte).
    fn fill(&mut self, block: bool) -> std::io::Result<()> {
        self.stream.set_nonblocking(!block)?;
        let mut buf = [0u8; 512];
        let n = match Read::read(&mut self.stream, &mut buf) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            self.feed(b)?;
        }
        Ok(())
    }
}

/// `$body#xx` with a matching checksum.
fn packet_ok(p: &[u8]) -> bool {
    let n = p.len();
    if n < 4 || p[n - 3] != b'#' {
        return false;
    }
    let Some(sum) = std::str::from_utf8(&p[n - 2..]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) else { return false };
    p[1..n - 3].iter().fold(0u8, |a, &x| a.wrapping_add(x)) == sum
}

impl gdbstub::conn::Connection for RspConn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        Write::write_all(&mut self.0.borrow_mut().stream, &[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        Write::write_all(&mut self.0.borrow_mut().stream, buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Write::flush(&mut self.0.borrow_mut().stream)
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.0.borrow_mut().stream.set_nodelay(true)
    }
}

impl ConnectionExt for RspConn {
    fn read(&mut self) -> Result<u8, Self::Error> {
        let mut c = self.0.borrow_mut();
        loop {
            if let Some(b) = c.ready.pop_front() {
                return Ok(b);
            }
            c.fill(true)?;
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        let mut c = self.0.borrow_mut();
        if c.ready.is_empty() {
            c.fill(false)?;
        }
        Ok(c.ready.front().copied())
    }
}

/// Serves one GDB connection on `stream` until GDB detaches, kills, or
/// the connection drops. Returns how the session ended; the caller runs on.
pub fn serve(m: &mut Machine, stream: TcpStream) -> String {
    let mut target = GdbTarget::new(m);
    let conn = RspConn::new(stream);
    loop {
        let stub = GdbStub::new(conn.clone());
        match stub.run_blocking::<EventLoop<'_>>(&mut target) {
            Ok(DisconnectReason::Disconnect) => return "GDB detached".into(),
            Ok(DisconnectReason::Kill) => return "GDB killed the session".into(),
            Ok(DisconnectReason::TargetExited(c)) => return format!("firmware exited ({c})"),
            Ok(DisconnectReason::TargetTerminated(s)) => return format!("firmware terminated ({s})"),
            Err(e) if e.is_connection_error() => return format!("GDB connection lost without a detach ({e})"),
            Err(e) if e.is_target_error() => return format!("GDB session ended: {e}"),
            Err(_) => {
                // A packet the stub could not parse: answer with an error
                // and go on with a fresh stub on the same connection.
                let mut c = conn.clone();
                if gdbstub::conn::Connection::write_all(&mut c, b"$E01#a6").is_err() {
                    return "GDB connection lost without a detach".into();
                }
            }
        }
    }
}
