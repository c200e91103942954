//! The NVMe/TCP I/O side of one data-plane core (DESIGN.md §3a steps 4-7):
//! one I/O queue per remote controller, on the core's own TCP/IP stack and
//! NIC queue (its local port is chosen so the NIC's RSS hash brings the
//! replies back to this core).
//!
//! It is the block layer's remote-namespace device ([`crate::block`]):
//! the stack submits an I/O under its tag; the initiator gives it a
//! command ID of its own (a slot of its command table) and reports the
//! completion under the tag.
//!
//! * Read: Read capsule -> C2HData arrives in the socket buffer -> the
//!   DMA engine moves it from there straight into the host's PRP/SGL
//!   pages (or into the staging pages of a stacked device) -> the bytes
//!   leave the socket buffer -> CapsuleResp completes.
//! * Write: the host data is staged in DPU memory by DMA (data already in
//!   staging pages is sent from there), then sent in the capsule (up to
//!   the target's in-capsule size) or as H2CData PDUs answering the
//!   target's R2T.
//! * Loss of the connection or of the controller: every outstanding
//!   command goes back to the queue and is sent again once a new
//!   association exists; one that cannot be sent within
//!   `IO_RETRY_TICKS`, or that was sent `MAX_TRIES` times, fails with a
//!   path error. A command completes once, from exactly one response.
//! * A target that stops answering: a command unanswered for the remote
//!   I/O timeout (`bootcfg::remote_io_timeout`) tears its queue's
//!   association down, as Linux's nvme-tcp error recovery does; the
//!   commands go back to the queue as above.
//! * Cancellation (host Abort, SQ deletion, controller reset): a command
//!   not yet sent completes at once; one the target holds completes when
//!   its response comes (read data is then not written to the host) or,
//!   after `CANCEL_GRACE_TICKS`, by tearing the association down. So a
//!   reset never waits on a remote target for longer than that.
//! * Queues: only the I/O queues the target granted are connected (cores
//!   whose queue index is below the grant; the NVMe admin service places
//!   host queues that use this controller on those cores), and a Connect
//!   refused for a reason that will not change is not retried until the
//!   controller's next association.

use super::conn::{Conn, Data as RxData, Phase};
use super::{published, Published, CANCEL_GRACE_TICKS, IO_RETRY_TICKS, MAX_TRIES};
use crate::block::staging::{Pages, Pool, PAGE};
use crate::block::{cookie, Data, Io, Op as IoOp, Tag};
use crate::bootcfg::{self, MAX_CTRLS};
use crate::net::{self, stack::Stack};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::memory_map::{NIC_PORTS, TIMEBASE_HZ};
use dpu_hal::regs::dma as dr;
use dpu_nvme::Status;
use dpu_nvme_tcp::fabrics::{io, ConnectCmd, ConnectData, ConnectResponse};
use dpu_nvme_tcp::host::Event;
use dpu_nvme_tcp::sgl::Dptr;

/// Commands in flight on one core (command IDs: slots of the table).
pub const MAXCMD: usize = 128;
/// Connects refused with a do-not-retry status before a queue gives up
/// until the controller's next association.
const CONNECT_REFUSALS: u8 = 3;
/// CID of the Fabrics Connect command.
const CID_CONNECT: u16 = MAXCMD as u16;
/// Host data segments one command may have (128 KiB in 4 KiB pages + 1).
const MAXSEG: usize = 34;
/// Segments kept in the (hot) command slot itself.
const INLINE_SEGS: usize = 2;

/// The host segments of command `slot`.
fn segs_of<'a>(c: &'a Cmd, ext: &'a [[(u64, u32); MAXSEG]], slot: usize) -> &'a [(u64, u32)] {
    let n = usize::from(c.nsegs);
    if n <= INLINE_SEGS {
        &c.segs[..n]
    } else {
        ext.get(slot).map_or(&[][..], |e| &e[..n.min(MAXSEG)])
    }
}
/// Socket buffers of an I/O queue, each way (receive: see `rx_window`).
const SOCK_BUF: usize = 256 * 1024;
/// RX buffers per port queue if they were in SMEM (`rx_window`).
const RX_SMEM_BUFS: u32 = 20;

/// Receive buffer (= the TCP window the target may fill) of each of the
/// `conns` connections on one port: were the NIC buffers in SMEM, the
/// windows together would have to fit in them; with DDR buffers (today),
/// the full size.
fn rx_window(conns: usize, smem: bool) -> usize {
    if !smem {
        return SOCK_BUF;
    }
    let payload = RX_SMEM_BUFS as usize * 1460 - 2048;
    (payload / conns.max(1)).clamp(8 * 1024, 64 * 1024) & !1023
}
const US: u64 = TIMEBASE_HZ / 1_000_000;

/// Status for I/O whose remote path stayed down (SCT 3h Path Related,
/// 00h Internal Path Error; DNR clear so the host retries).
pub const PATH_ERROR: Status = Status { sct: 3, sc: 0x00, dnr: false };


#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Free,
    /// Write data being staged by DMA.
    Staging,
    /// Waiting to be sent (no queue, no room, or retrying).
    Queued,
    /// Sent; waiting for R2T / data / response.
    Sent,
}

#[derive(Clone, Copy)]
struct Cmd {
    st: St,
    /// The block layer's name for the I/O.
    tag: Tag,
    ctrl: u8,
    func: u16,
    op: IoOp,
    nsid: u32,
    slba: u64,
    nlb: u32,
    len: u32,
    /// The first host data segments (4 KiB I/O has one or two); longer
    /// lists live in `Fabric::ext_segs[slot]` (DDR).
    segs: [(u64, u32); INLINE_SEGS],
    nsegs: u8,
    /// Staging pages holding the data (write: to send; read with staged
    /// data: the destination).
    pages: Pages,
    /// `pages` belong to the submitter (staged data), not to this table.
    staged: bool,
    /// Fail with a path error if still unsent then (mtime).
    deadline: u64,
    /// Pending R2T (ttag, offset, len) not yet answered.
    r2t: Option<(u16, u32, u32)>,
    /// When it was sent (or cancelled while sent): the remote I/O timeout
    /// (cancel grace) runs from here.
    sent_at: u64,
    /// Times it was sent again after a torn-down association.
    tries: u8,
    /// Cancelled by the engine: completes with this status, whatever the
    /// target answers.
    cancel: Option<Status>,
    /// Some of its read data could not be written to host memory (the
    /// IOMMU refused the DMA): it completes with Data Transfer Error,
    /// however the target's response ends it.
    data_error: bool,
    /// With data digests: the CRC32C of the whole staged write data,
    /// computed by the DMA engine right after it staged the data; read
    /// when the data goes out in one PDU (in the capsule, or one
    /// H2CData for all of it). `data_crc` says the word is valid.
    crc_word: u32,
    data_crc: bool,
}

impl Cmd {
    /// The DMA engine's CRC32C of all of the staged write data, if it
    /// computed one.
    fn staged_crc(&self) -> Option<u32> {
        self.data_crc.then(|| dpu_hal::mem::read_u32(core::ptr::addr_of!(self.crc_word) as usize))
    }

    const FREE: Cmd = Cmd {
        st: St::Free,
        tag: 0,
        ctrl: 0,
        func: 0,
        op: IoOp::Read,
        nsid: 0,
        slba: 0,
        nlb: 0,
        len: 0,
        segs: [(0, 0); INLINE_SEGS],
        nsegs: 0,
        pages: Pages::NONE,
        staged: false,
        deadline: 0,
        r2t: None,
        sent_at: 0,
        tries: 0,
        cancel: None,
        data_error: false,
        crc_word: 0,
        data_crc: false,
    };
}

/// One remote controller's I/O queue on this core.
struct Queue {
    /// Index of the remote controller (boot configuration order, then
    /// those attached at run time): its NQNs are read at Connect
    /// (`super::ctrls::def`), not kept in this hot state.
    index: usize,
    conn: Conn<{ MAXCMD + 2 }>,
    /// Generation of the association this queue belongs to.
    generation: u32,
    info: Published,
    /// The published state word `info` was read under.
    info_word: u32,
    /// Bytes of C2HData being moved by DMA out of the socket buffer, the
    /// command they belong to, and whether the DMA engine also runs the
    /// data digest over them (into `crc_word`).
    rx_dma: Option<(usize, u16, bool)>,
    /// The running NVMe/TCP data digest of the C2HData being moved: the
    /// core seeds it, the DMA engine's `OP_CRC32C` continues it over the
    /// moved bytes (NVMe/TCP 1.0 §3.6.1: DDGST is CRC32C of the data).
    crc_word: u32,
    /// Commands waiting to be sent, in arrival order.
    fifo: [u8; MAXCMD],
    head: usize,
    count: usize,
    r2ts: u128,
    next_port: u16,
    /// Socket receive buffer (TCP window) of this queue.
    rx_buf: usize,
    /// Earliest time a sent command of this queue may time out (or a
    /// cancelled one run out of grace); `u64::MAX` when none is sent.
    check_at: u64,
    /// The association generation whose Connect of this queue the target
    /// refused for good (no retry until the next association).
    refused: Option<u32>,
    /// Connects refused in a row with a status that says not to retry.
    refusals: u8,
}

/// Counters (per core).
#[derive(Clone, Copy, Default, defmt::Format)]
pub struct Stats {
    pub submitted: u64,
    pub completed: u64,
    pub retried: u64,
    pub path_errors: u64,
    pub reconnects: u64,
    pub fatal: u64,
    /// Associations torn down because a command went unanswered.
    pub timeouts: u64,
    /// Commands cancelled by the engine while the target held them.
    pub cancelled: u64,
}

/// The command table of one core: commands (slot = command ID), free
/// slots, finished commands waiting for the block layer, counters.
struct Book {
    cmds: [Cmd; MAXCMD],
    slots: [u8; MAXCMD],
    nslots: usize,
    /// Finished commands (tag, status) not yet taken by the block layer.
    done: [(Tag, Status); MAXCMD],
    ndone: usize,
    stats: Stats,
}

impl Book {
    /// A free command slot (= command ID).
    fn alloc(&mut self) -> Option<usize> {
        self.nslots = self.nslots.checked_sub(1)?;
        Some(usize::from(self.slots[self.nslots]))
    }

    /// Gives back the staging pages of `slot` that this table staged.
    fn release_pages(&mut self, pool: &mut Pool, slot: usize) {
        let c = &mut self.cmds[slot];
        if c.staged {
            c.pages.clear();
            c.staged = false;
        } else {
            pool.free(&mut c.pages);
        }
    }

    /// A command is over: free its slot and report it under its tag.
    fn finish(&mut self, pool: &mut Pool, slot: usize, st: Status) {
        let Some(c) = self.cmds.get(slot) else { return };
        if c.st == St::Free {
            return;
        }
        let tag = c.tag;
        self.release_pages(pool, slot);
        self.cmds[slot].st = St::Free;
        self.slots[self.nslots] = slot as u8;
        self.nslots += 1;
        if self.ndone < self.done.len() {
            self.done[self.ndone] = (tag, st);
            self.ndone += 1;
        }
        self.stats.completed += 1;
        if st == PATH_ERROR {
            self.stats.path_errors += 1;
        }
    }

    /// The target answered command `cid` with `st` (ignored unless the
    /// command is outstanding there; a cancelled one reports its cancel
    /// status instead).
    fn answered(&mut self, pool: &mut Pool, cid: u16, st: Status) {
        let slot = usize::from(cid);
        let Some(c) = self.cmds.get(slot) else { return };
        if c.st != St::Sent {
            return;
        }
        let st = c.cancel.unwrap_or(st);
        let st = if c.data_error && st.is_success() { Status::DATA_TRANSFER_ERROR } else { st };
        self.finish(pool, slot, st);
    }
}

impl dpu_rt::ConstInit for Fabric {
    const INIT: Fabric = Fabric {
        hart: 0,
        queue: 0,
        stacks: [const { None }; NIC_PORTS],
        queues: [const { None }; MAX_CTRLS],
        live: 0,
        book: Book {
            cmds: [Cmd::FREE; MAXCMD],
            slots: [0; MAXCMD],
            nslots: 0,
            done: [(0, Status::SUCCESS); MAXCMD],
            ndone: 0,
            stats: Stats { submitted: 0, completed: 0, retried: 0, path_errors: 0, reconnects: 0, fatal: 0, timeouts: 0, cancelled: 0 },
        },
        ext_segs: None,
        kick: false,
        poll_stacks: true,
        next_due: 0,
        waiting_pages: 0,
        timeout: 0,
        settings_seen: 0,
        data_digest: false,
        seen: [0; MAX_CTRLS],
        synced: false,
        closing: 0,
        spare: [const { None }; MAX_CTRLS],
        free_socks: [[None; LIVE_CTRL_SOCKETS]; NIC_PORTS],
        idle: [Idle::NOT; MAX_CTRLS],
    };
}

const _: () = assert!(MAX_CTRLS <= 32, "Fabric::live has a bit per controller");

/// Sockets each data-plane stack keeps for controllers attached at run
/// time (one I/O queue each): the most such controllers on one port
/// (`bdev_nvme_attach_controller` refuses more).
pub const LIVE_CTRL_SOCKETS: usize = 4;

pub struct Fabric {
    hart: usize,
    queue: usize,
    stacks: [Option<&'static mut Stack>; NIC_PORTS],
    queues: [Option<&'static mut Queue>; MAX_CTRLS],
    /// Bit `i`: `queues[i]` is there (the poll loop walks only these).
    live: u32,
    book: Book,
    /// Host segments of commands with more than `INLINE_SEGS` (DDR).
    ext_segs: Option<&'static mut [[(u64, u32); MAXSEG]]>,
    /// Staging or data DMA pushed: the engine must kick its channel.
    pub kick: bool,
    poll_stacks: bool,
    /// Earliest timer-driven work (mtime), from `deadline`.
    next_due: u64,
    /// Writes waiting for staging pages.
    waiting_pages: usize,
    /// Remote I/O timeout (mtime ticks).
    timeout: u64,
    /// The version of `net::settings` last taken.
    settings_seen: u32,
    /// Data digests are asked for: staged writes get their CRC32C from
    /// the DMA engine.
    data_digest: bool,
    /// Version of each run-time controller publication taken
    /// (`super::ctrls`).
    seen: [u32; MAX_CTRLS],
    /// The publications were looked at once (at the first pass).
    synced: bool,
    /// Closing every connection before a warm restart (`super::quiesce`):
    /// 0 no, 1 FINs sent, 2 all acknowledged and reported.
    closing: u8,
    /// Queues of controllers detached at run time, for the next attach.
    spare: [Option<&'static mut Queue>; MAX_CTRLS],
    /// Their sockets, per port, for the next attach on that port.
    free_socks: [[Option<smoltcp::iface::SocketHandle>; LIVE_CTRL_SOCKETS]; NIC_PORTS],
    /// Per controller: its queue was left idle by its last pass (kept
    /// here, in the core's SMEM with the rest of `Fabric`, so that
    /// skipping an idle queue touches neither the queue, which may be in
    /// DDR, nor anything but its socket).
    idle: [Idle; MAX_CTRLS],
}

/// An I/O queue left idle by its last pass: ready, nothing queued, no R2T
/// to answer, no data being moved. It stays idle, and its pass is
/// skipped, while its controller's published state word is `word` (no
/// new association, not lost), no sent command's timer is due (`until`,
/// the queue's `check_at`), and its socket is established with no byte
/// received. Anything else that gives the queue work (a command queued,
/// a cancel, a finished data move, the queue added or removed) clears it.
#[derive(Clone, Copy)]
struct Idle {
    /// 0: not idle (a published state word is never 0 for a ready queue:
    /// bit 0 is "up").
    word: u32,
    until: u64,
    port: u8,
    sock: Option<smoltcp::iface::SocketHandle>,
}

impl Idle {
    const NOT: Idle = Idle { word: 0, until: 0, port: 0, sock: None };

    /// Whether the queue of controller `ci` is still idle at `now`.
    fn holds(&self, ci: usize, now: u64, stacks: &mut [Option<&'static mut Stack>; NIC_PORTS]) -> bool {
        if self.word == 0 || now >= self.until || super::published_state(ci) != self.word {
            return false;
        }
        match (self.sock, stacks[usize::from(self.port)].as_deref_mut()) {
            (Some(h), Some(stack)) => super::conn::socket_quiet(stack, h),
            _ => false,
        }
    }
}

impl Fabric {
    /// The fabric side of data-plane hart `hart` (`None` when the boot
    /// configuration names no remote controller).
    pub fn start(hart: usize) -> Option<&'static mut Fabric> {
        let queue = net::data_queue(hart)?;
        if (bootcfg::controllers() == 0 && bootcfg::subsystems() == 0 && !super::target::live_possible()) || bootcfg::ports().is_empty() {
            return None;
        }
        while !net::ports_ready() {
            dpu_hal::clint::set_timer(hart, dpu_hal::csr::time() + 10 * US);
            dpu_hal::csr::wfi();
        }
        // Built in place in DDR: the command table is larger than a stack.
        // Hot state first into SMEM (when it fits), cold tables in DDR.
        let f = dpu_rt::alloc::static_near::<Fabric>()?;
        f.hart = hart;
        f.queue = queue;
        f.timeout = net::settings::io_timeout_ticks();
        f.settings_seen = net::settings::version();
        f.ext_segs = Some(dpu_rt::alloc::ddr_slice_with(MAXCMD, |_| [(0u64, 0u32); MAXSEG])?);
        for (i, s) in f.book.slots.iter_mut().enumerate() {
            *s = (MAXCMD - 1 - i) as u8;
        }
        f.book.nslots = MAXCMD;
        f.data_digest = super::ctrls::boot_digests().data;
        let lro = bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0;
        let on_port = |port: usize| (0..bootcfg::controllers()).filter(|&k| bootcfg::controller(k).and_then(|c| net::port_for(c.traddr)) == Some(port)).count();
        // One stack per port that reaches a controller. RX buffers live in
        // DDR: bursts of small frames (ACKs, responses) need many buffers,
        // more than SMEM holds (a frame without a buffer is dropped and
        // costs a TCP retransmission).
        for port in 0..bootcfg::ports().len().min(NIC_PORTS) {
            let conns = on_port(port);
            // The NVMe/TCP target's listening sockets share the stack.
            let listeners = super::target::sockets_on(port);
            if conns == 0 && listeners == 0 {
                continue;
            }
            let smem = false;
            let rx = if lro { 64 } else { 256 };
            // Room for the target's whole connection table when
            // listeners may be added at run time.
            // and for the controllers attached at run time.
            let target = if super::target::live_possible() { super::target::MAX_CONNS + LIVE_CTRL_SOCKETS } else { listeners };
            f.stacks[port] = net::start_stack(hart, port, queue, false, rx, 128, smem, conns + 1 + target);
            if f.stacks[port].is_none() {
                defmt::error!("hart {=usize}: port {=usize}: queue {=usize} did not start", hart, port, queue);
            }
        }
        for i in 0..bootcfg::controllers().min(MAX_CTRLS) {
            let Some(d) = super::ctrls::def(i) else { continue };
            let Some(port) = net::port_for(d.traddr) else {
                defmt::warn!("hart {=usize}: remote controller {=usize} is on no configured subnet", hart, i);
                continue;
            };
            let Some(stack) = f.stacks[port].as_deref() else { continue };
            // With RX buffers in SMEM the windows must fit in them.
            let rx_buf = rx_window(on_port(port), stack.dev.rx.in_smem());
            f.queues[i] = dpu_rt::alloc::put_near(Self::new_queue(hart, queue, i, &d, port, rx_buf, None));
            if f.queues[i].is_some() {
                f.live |= 1 << i;
            }
        }
        super::quiesce::join();
        Some(f)
    }

    /// Queue `i` of this core toward controller `d` on `port` (`sock`: a
    /// socket of that port's stack to reuse).
    fn new_queue(hart: usize, queue: usize, i: usize, d: &super::ctrls::Def, port: usize, rx_buf: usize, sock: Option<smoltcp::iface::SocketHandle>) -> Queue {
        let mut conn = Conn::new(queue as u16 + 1, d.digests);
        conn.remote = d.traddr;
        conn.rport = d.trsvcid;
        conn.port = port;
        conn.sock = sock;
        // The first local port tried is random (RFC 6056 §3.3.1); the
        // search then walks the range for one RSS steers back here.
        let span = u64::from(*net::DATA_PORTS.end() - *net::DATA_PORTS.start()) + 1;
        let fallback = u64::from(hart as u32 * 7919 + i as u32 * 104_729);
        let spread = (crate::random::u64_or(fallback, "the local port choice") % span.min(8192)) as u16;
        Queue {
            index: i,
            conn,
            generation: 0,
            info: published(i),
            info_word: u32::MAX,
            rx_dma: None,
            crc_word: 0,
            fifo: [0; MAXCMD],
            head: 0,
            count: 0,
            r2ts: 0,
            next_port: *net::DATA_PORTS.start() + spread,
            rx_buf,
            check_at: u64::MAX,
            refused: None,
            refusals: 0,
        }
    }

    /// Takes the fabrics service's run-time controller publications
    /// (`super::ctrls`) that changed since the last look: a new
    /// controller gets an I/O queue on this core (it connects once the
    /// controller is published up), a detached one's queue closes (FIN)
    /// and its commands, if any, fail with a path error.
    fn sync_live(&mut self, pool: &mut Pool) {
        for i in bootcfg::controllers().min(MAX_CTRLS)..MAX_CTRLS {
            let v = super::ctrls::version(i);
            if v == self.seen[i] {
                continue;
            }
            // Being written: taken at the next doorbell.
            let Some((v, d)) = super::ctrls::read(i) else { continue };
            self.seen[i] = v;
            self.remove_queue(pool, i);
            if let Some(d) = d {
                self.add_queue(i, &d);
            }
        }
    }

    /// Takes what the management server changed (`net::settings`): the
    /// remote I/O timeout applies to the commands in flight at once; each
    /// stack takes its port's address and the TCP minimum RTO (the
    /// management server refuses to move an address a queue or listener
    /// uses, so no connection is on a stack that changes address).
    /// Rare: kept out of the reactor's poll loop.
    #[cold]
    #[inline(never)]
    fn sync_settings(&mut self) {
        self.timeout = net::settings::io_timeout_ticks();
        for s in self.stacks.iter_mut().flatten() {
            s.apply_settings();
        }
        self.poll_stacks = true;
        if self.hart == net::FIRST_DATA_HART {
            defmt::info!(
                "hart {=usize}: settings version {=u32} taken: I/O timeout {=u32} us, TCP min RTO {=u16} ms",
                self.hart, self.settings_seen, net::settings::io_timeout_us(), net::settings::tcp_min_rto_ms()
            );
        }
    }

    /// Gives controller `i` (attached at run time) an I/O queue here.
    fn add_queue(&mut self, i: usize, d: &super::ctrls::Def) {
        self.idle[i] = Idle::NOT;
        let Some(port) = net::port_for(d.traddr) else {
            defmt::warn!("hart {=usize}: remote controller {=usize} is on no configured subnet", self.hart, i);
            return;
        };
        let sock = self.free_socks[port].iter_mut().find_map(|s| s.take());
        let Some(stack) = self.stack_or_start(port) else { return };
        let rx_buf = rx_window(1, stack.dev.rx.in_smem());
        let q = Self::new_queue(self.hart, self.queue, i, d, port, rx_buf, sock);
        let slot = match self.spare.iter_mut().find_map(|s| s.take()) {
            Some(spare) => {
                *spare = q;
                Some(spare)
            }
            None => dpu_rt::alloc::put_near(q),
        };
        if slot.is_none() {
            defmt::error!("hart {=usize}: no memory for the I/O queue of controller {=usize}", self.hart, i);
        }
        self.data_digest |= d.digests.data;
        if slot.is_some() {
            self.live |= 1 << i;
        }
        self.queues[i] = slot;
        self.poll_stacks = true;
        defmt::info!("hart {=usize}: ctrl {=usize}: I/O queue added (run time)", self.hart, i);
    }

    /// Closes controller `i`'s I/O queue (FIN) and keeps its memory and
    /// socket for a later attach; its commands fail with a path error.
    fn remove_queue(&mut self, pool: &mut Pool, i: usize) {
        self.idle[i] = Idle::NOT;
        self.live &= !(1 << i);
        let Some(q) = self.queues[i].take() else { return };
        let port = q.conn.port;
        if let Some(stack) = self.stacks[port].as_deref_mut() {
            q.conn.shutdown(stack, dpu_hal::csr::time());
        }
        for slot in 0..MAXCMD {
            let c = &mut self.book.cmds[slot];
            if c.st == St::Free || usize::from(c.ctrl) != i {
                continue;
            }
            if c.st == St::Staging {
                // Its staging DMA ends it (`stage_done`).
                c.cancel = Some(PATH_ERROR);
            } else {
                self.book.finish(pool, slot, PATH_ERROR);
            }
        }
        if let Some(h) = q.conn.sock.take() {
            if let Some(free) = self.free_socks[port].iter_mut().find(|s| s.is_none()) {
                *free = Some(h);
            }
        }
        if let Some(spare) = self.spare.iter_mut().find(|s| s.is_none()) {
            *spare = Some(q);
        }
        self.poll_stacks = true;
        defmt::info!("hart {=usize}: ctrl {=usize}: I/O queue closed (detached)", self.hart, i);
    }

    /// This core's stack on `port` (the target listens there too).
    pub fn stack(&mut self, port: usize) -> Option<&mut Stack> {
        self.stacks.get_mut(port)?.as_deref_mut()
    }

    /// This core's stack on `port`, started now when nothing used the
    /// port at boot (a target listener added at run time).
    pub fn stack_or_start(&mut self, port: usize) -> Option<&mut Stack> {
        if port >= NIC_PORTS || port >= bootcfg::ports().len() {
            return None;
        }
        if self.stacks[port].is_none() {
            let lro = bootcfg::flags() & dpu_hal::regs::bootcfg::FLAG_LRO != 0;
            let rx = if lro { 64 } else { 256 };
            self.stacks[port] = net::start_stack(self.hart, port, self.queue, false, rx, 128, false, 1 + super::target::MAX_CONNS + LIVE_CTRL_SOCKETS);
            if self.stacks[port].is_none() {
                defmt::error!("hart {=usize}: port {=usize}: queue {=usize} did not start", self.hart, port, self.queue);
            }
            self.poll_stacks = true;
        }
        self.stacks[port].as_deref_mut()
    }

    /// Free command slots (a device that fans one I/O out into several
    /// checks there is room for all of them first).
    pub fn free_slots(&self) -> usize {
        self.book.nslots
    }

    /// Takes I/O `tag` of the block layer for namespace `nsid` of remote
    /// controller `ctrl`.
    pub fn submit(&mut self, chan: &mut Channel, pool: &mut Pool, tag: Tag, ctrl: u16, nsid: u32, io: &Io) {
        let now = dpu_hal::csr::time();
        let ci = usize::from(ctrl);
        let fail = |b: &mut Book, st: Status| {
            if b.ndone < b.done.len() {
                b.done[b.ndone] = (tag, st);
                b.ndone += 1;
            }
        };
        let Some(q) = self.queues.get(ci).and_then(|q| q.as_deref()) else {
            return fail(&mut self.book, Status::INTERNAL_ERROR);
        };
        let (func, segs, staged): (u16, &[(u64, u32)], Option<&Pages>) = match io.data {
            Data::None => (0, &[], None),
            Data::Host { function, segs } => (function, segs, None),
            Data::Staged(p) => (0, &[], Some(p)),
        };
        if segs.len() > MAXSEG || (io.op.sends_data() && io.len as usize > 32 * PAGE) {
            return fail(&mut self.book, Status::INTERNAL_ERROR);
        }
        if q.unservable(self.queue) {
            return fail(&mut self.book, PATH_ERROR);
        }
        let Some(slot) = self.book.alloc() else {
            // The block layer never has more I/Os on a core than this
            // table has slots.
            defmt::error!("hart {=usize}: NVMe/TCP command table full", self.hart);
            return fail(&mut self.book, Status::INTERNAL_ERROR);
        };
        // Field by field (a whole `Cmd` value, ~190 bytes with its page
        // list, was built on the stack and copied in: ~250 cycles per
        // I/O in memset and memcpy). A free slot's pages are empty
        // (`Book::finish` gave them back).
        let c = &mut self.book.cmds[slot];
        c.st = St::Queued;
        c.tag = tag;
        c.ctrl = ctrl as u8;
        c.func = func;
        c.op = io.op;
        c.nsid = nsid;
        c.slba = io.lba;
        c.nlb = io.blocks;
        c.len = io.len;
        c.staged = false;
        c.deadline = now + IO_RETRY_TICKS;
        c.r2t = None;
        c.sent_at = 0;
        c.tries = 0;
        c.cancel = None;
        c.data_error = false;
        c.data_crc = false;
        if segs.len() <= INLINE_SEGS {
            c.segs[..segs.len()].copy_from_slice(segs);
        } else if let Some(e) = self.ext_segs.as_deref_mut().and_then(|e| e.get_mut(slot)) {
            e[..segs.len()].copy_from_slice(segs);
        }
        c.nsegs = segs.len() as u8;
        if let Some(p) = staged {
            c.pages = *p;
            c.staged = true;
        }
        self.book.stats.submitted += 1;
        if io.op.sends_data() && staged.is_none() {
            if (io.len as usize).div_ceil(PAGE) > pool.available() {
                // No staging room now: the command waits for pages (see `poll`).
                self.book.cmds[slot].st = St::Staging;
                self.waiting_pages += 1;
                return;
            }
            self.stage(chan, pool, slot);
            return;
        }
        self.enqueue(ci, slot);
    }

    /// Starts the DMA that copies a write's host data into staging pages.
    fn stage(&mut self, chan: &mut Channel, pool: &mut Pool, slot: usize) {
        let ext: &[[(u64, u32); MAXSEG]] = self.ext_segs.as_deref().unwrap_or(&[]);
        let c = &mut self.book.cmds[slot];
        c.st = St::Staging;
        if !pool.alloc_into(c.len as usize, &mut c.pages) {
            // Checked by the caller; should pages run out anyway, the
            // command waits for them like any other (see `poll`).
            self.waiting_pages += 1;
            return;
        }
        let c: &Cmd = c;
        let cookie = cookie::make(cookie::NET_STAGE, slot as u32);
        let pool_ro: &Pool = pool;
        // Host segments -> consecutive staging bytes, split at page ends:
        // counted first (the last copy may end the chain), then pushed.
        let pieces = |f: &mut dyn FnMut(u64, u64, u32)| {
            let mut at = 0usize;
            for &(host, len) in segs_of(c, ext, slot) {
                let mut done = 0usize;
                while done < len as usize {
                    let pos = at + done;
                    let n = (PAGE - pos % PAGE).min(len as usize - done);
                    f(host + done as u64, pool_ro.addr(c.pages.page(pos / PAGE)) + (pos % PAGE) as u64, n as u32);
                    done += n;
                }
                at += len as usize;
            }
        };
        let mut nd = 0usize;
        pieces(&mut |_, _, _| nd += 1);
        if nd == 0 {
            return self.stage_done(pool, slot, false);
        }
        // The data digest, by the engine after the copies of this chain
        // (a channel runs its descriptors in order): one CRC32C
        // descriptor per staged page, continuing one word.
        let npages = (c.len as usize).div_ceil(PAGE);
        let data_crc = self.data_digest && chan.space() as usize >= nd + npages;
        let mut k = 0usize;
        pieces(&mut |host, local, len| {
            k += 1;
            let flags = if k == nd && !data_crc { dr::FLAG_END } else { 0 };
            chan.push(&Desc { host, local, len, function: c.func, op: dr::OP_H2D, flags, msix: 0, cookie });
        });
        let c = &mut self.book.cmds[slot];
        c.data_crc = data_crc;
        if data_crc {
            let word = core::ptr::addr_of_mut!(c.crc_word) as usize;
            dpu_hal::mem::write(word, &0u32.to_le_bytes());
            for k in 0..npages {
                let n = (c.len as usize - k * PAGE).min(PAGE) as u32;
                let mut d = Desc::crc32c(pool.addr(c.pages.page(k)), n, word as u64, cookie);
                if k + 1 == npages {
                    d.flags = dr::FLAG_END;
                }
                chan.push(&d);
            }
        }
        self.kick = true;
    }

    /// The staging DMA of `slot` finished.
    pub fn stage_done(&mut self, pool: &mut Pool, slot: usize, ok: bool) {
        let Some(c) = self.book.cmds.get_mut(slot) else { return };
        if c.st != St::Staging {
            return;
        }
        if let Some(st) = c.cancel {
            return self.book.finish(pool, slot, st);
        }
        if !ok {
            return self.book.finish(pool, slot, Status::DATA_TRANSFER_ERROR);
        }
        c.st = St::Queued;
        let ci = usize::from(c.ctrl);
        self.enqueue(ci, slot);
    }

    fn enqueue(&mut self, ci: usize, slot: usize) {
        self.idle[ci] = Idle::NOT;
        let Some(q) = self.queues[ci].as_deref_mut() else { return };
        if q.count < MAXCMD {
            q.fifo[(q.head + q.count) % MAXCMD] = slot as u8;
            q.count += 1;
        }
    }

    /// The engine gives up on command `slot` (host Abort, SQ deletion,
    /// controller reset): it completes with `st` once nothing refers to
    /// it any more. Not sent yet: at once. Sent: when the target answers
    /// (read data is no longer written to the host), or by tearing the
    /// association down after `CANCEL_GRACE_TICKS`.
    pub fn cancel(&mut self, pool: &mut Pool, tag: Tag, st: Status) -> bool {
        let Some(slot) = self.book.cmds.iter().position(|c| c.st != St::Free && c.tag == tag) else { return false };
        let c = &mut self.book.cmds[slot];
        match c.st {
            St::Free => {}
            // Waiting for staging pages: nothing is in flight.
            St::Staging if c.pages.is_empty() => {
                self.waiting_pages = self.waiting_pages.saturating_sub(1);
                self.book.finish(pool, slot, st);
            }
            // The staging DMA is running: `stage_done` finishes it.
            St::Staging => c.cancel = Some(st),
            St::Queued => {
                if let Some(q) = self.queues[usize::from(c.ctrl)].as_deref_mut() {
                    q.unqueue(slot);
                }
                self.book.finish(pool, slot, st);
            }
            St::Sent => {
                let now = dpu_hal::csr::time();
                self.idle[usize::from(c.ctrl)] = Idle::NOT;
                c.cancel = Some(st);
                c.sent_at = now;
                if let Some(q) = self.queues[usize::from(c.ctrl)].as_deref_mut() {
                    q.check_at = q.check_at.min(now + CANCEL_GRACE_TICKS);
                }
                self.book.stats.cancelled += 1;
            }
        }
        true
    }

    /// Finished I/Os (tag, status) into `out`; returns how many.
    /// Whether finished commands wait in [`take_done`](Self::take_done).
    #[inline]
    pub fn has_done(&self) -> bool {
        self.book.ndone > 0
    }

    pub fn take_done(&mut self, out: &mut [(Tag, Status)]) -> usize {
        let n = self.book.ndone.min(out.len());
        out[..n].copy_from_slice(&self.book.done[self.book.ndone - n..self.book.ndone]);
        self.book.ndone -= n;
        n
    }

    /// The C2HData DMA of controller `ci` finished.
    pub fn rx_dma_done(&mut self, pool: &mut Pool, ci: usize, ok: bool) {
        if let Some(i) = self.idle.get_mut(ci) {
            *i = Idle::NOT;
        }
        let Some(q) = self.queues.get_mut(ci).and_then(|q| q.as_deref_mut()) else { return };
        let Some((n, cid, crc)) = q.rx_dma.take() else { return };
        // A failed chain may have stopped before its CRC: the core then
        // checks the digest over the bytes still in the socket buffer.
        let crc = (crc && ok).then(|| dpu_hal::mem::read_u32(core::ptr::addr_of!(q.crc_word) as usize));
        if !ok {
            if let Some(c) = self.book.cmds.get_mut(usize::from(cid)) {
                c.data_error = true;
            }
        }
        let Some(stack) = self.stacks[q.conn.port].as_deref_mut() else { return };
        match q.conn.data_moved(stack, n, crc) {
            // The host memory could not be written: the command fails
            // (the data is consumed regardless).
            Ok(Event::Completed { cid, cqe, .. }) => self.book.answered(pool, cid, if ok { cqe.status } else { Status::DATA_TRANSFER_ERROR }),
            Ok(_) => {}
            Err(f) => {
                defmt::warn!("hart {=usize}: ctrl {=usize}: fatal transport error: {}", self.hart, ci, f);
                self.book.stats.fatal += 1;
                q.conn.terminate(stack, &f);
                Self::drop_conn(q, stack, &mut self.book, pool, true);
            }
        }
    }

    /// Drops a queue's connection (`graceful`: after what is queued, e.g.
    /// an H2CTermReq). Outstanding commands go back to the queue for a
    /// retry on the next association, unless they were cancelled or have
    /// used up their tries.
    fn drop_conn(q: &mut Queue, stack: &mut Stack, book: &mut Book, pool: &mut Pool, graceful: bool) {
        let now = dpu_hal::csr::time();
        if graceful {
            q.conn.shutdown(stack, now);
        } else {
            q.conn.close(stack, now);
        }
        let mut back = [0u8; MAXCMD];
        let mut n = 0;
        q.conn.q.drain(|cid, _| {
            if usize::from(cid) < MAXCMD && n < MAXCMD {
                back[n] = cid as u8;
                n += 1;
            }
        });
        // Re-queue in front of what was waiting (they are older).
        let waiting = q.count;
        let mut fifo = [0u8; MAXCMD];
        let mut k = 0;
        for &cid in &back[..n] {
            let slot = usize::from(cid);
            let c = &mut book.cmds[slot];
            if c.st != St::Sent {
                continue;
            }
            if let Some(st) = c.cancel {
                book.finish(pool, slot, st);
                continue;
            }
            if c.tries >= MAX_TRIES {
                book.finish(pool, slot, PATH_ERROR);
                continue;
            }
            c.tries += 1;
            c.st = St::Queued;
            c.r2t = None;
            c.deadline = now + IO_RETRY_TICKS;
            book.stats.retried += 1;
            if k < MAXCMD {
                fifo[k] = cid;
                k += 1;
            }
        }
        for i in 0..waiting {
            if k < MAXCMD {
                fifo[k] = q.fifo[(q.head + i) % MAXCMD];
                k += 1;
            }
        }
        q.fifo = fifo;
        q.head = 0;
        q.count = k;
        q.r2ts = 0;
        q.check_at = u64::MAX;
        book.stats.reconnects += 1;
    }

    /// Work of one reactor pass. `nic` when the NIC rang this core.
    ///
    /// Not inlined, nor are `receive`, the deadlines and the EC device's
    /// poll: fat LTO folded them all into the NVMe engine's poll loop,
    /// and keeping them out measured +11% 4 KiB read IOPS on 4 cores
    /// (services-bench setting; 144 K -> 160 K), the same for writes.
    #[inline(never)]
    pub fn poll(&mut self, chan: &mut Channel, pool: &mut Pool, nic: bool, nvmf: bool) -> usize {
        let now = dpu_hal::csr::time();
        let mut work = 0;
        if self.closing != 0 || (nvmf && super::quiesce::requested()) {
            return self.close_pass(now);
        }
        // Only stacks with something to do: a frame in, data to send, sent
        // frames to reclaim, a TCP timer.
        let _ = nic;
        if nvmf || !self.synced {
            self.synced = true;
            self.sync_live(pool);
            if net::settings::changed(&mut self.settings_seen) {
                self.sync_settings();
            }
        }
        let force = core::mem::replace(&mut self.poll_stacks, false);
        for s in self.stacks.iter_mut().flatten() {
            if force || s.needs_poll(now) {
                s.poll();
            }
        }
        // Writes waiting for staging pages.
        if self.waiting_pages > 0 && pool.available() > 0 {
            for slot in 0..MAXCMD {
                let c = &self.book.cmds[slot];
                if c.st == St::Staging && c.pages.is_empty() && (c.len as usize).div_ceil(PAGE) <= pool.available() {
                    self.waiting_pages -= 1;
                    self.stage(chan, pool, slot);
                }
            }
        }
        // Only the controllers this core has a queue for (`live`).
        let mut live = self.live;
        while live != 0 {
            let ci = live.trailing_zeros() as usize;
            live &= live - 1;
            // With many controllers (EC members) most queues of a core are
            // idle on most passes: one socket look-up each.
            if self.idle[ci].word != 0 {
                if self.idle[ci].holds(ci, now, &mut self.stacks) {
                    continue;
                }
                self.idle[ci].word = 0;
            }
            work += self.queue_pass(chan, pool, ci, now, nvmf);
        }
        for s in self.stacks.iter_mut().flatten() {
            if s.dirty {
                s.poll();
            }
        }
        work
    }

    /// Before a warm restart (`super::quiesce`): every I/O queue closes
    /// (FIN; nothing is in flight, the engines paused first) and nothing
    /// reconnects; once every FIN is acknowledged the core reports it.
    /// Only the stacks run from then on.
    fn close_pass(&mut self, now: u64) -> usize {
        if self.closing == 0 {
            self.closing = 1;
            let mut n = 0u32;
            for q in self.queues.iter_mut().flatten() {
                if let Some(stack) = self.stacks[q.conn.port].as_deref_mut() {
                    q.conn.shutdown(stack, now);
                    n += 1;
                }
            }
            defmt::info!("hart {=usize}: closing {=u32} NVMe/TCP I/O queue(s) before the restart", self.hart, n);
        }
        for s in self.stacks.iter_mut().flatten() {
            s.poll();
        }
        if self.closing == 1 {
            let stacks = &mut self.stacks;
            let done = self.queues.iter().flatten().all(|q| stacks[q.conn.port].as_deref_mut().is_none_or(|st| q.conn.closed_both_ways(st)));
            if done {
                self.closing = 2;
                super::quiesce::io_closed();
            }
        }
        0
    }

    fn queue_pass(&mut self, chan: &mut Channel, pool: &mut Pool, ci: usize, now: u64, _nvmf: bool) -> usize {
        let Fabric { stacks, queues, book, hart, queue, ext_segs, timeout, idle, .. } = self;
        let ext: &[[(u64, u32); MAXSEG]] = ext_segs.as_deref().unwrap_or(&[]);
        let Some(q) = queues[ci].as_deref_mut() else { return 0 };
        let Some(stack) = stacks[q.conn.port].as_deref_mut() else { return 0 };
        let word = super::published_state(ci);
        // The rest of the publication only when its state word changed
        // (every publication bumps the generation or the up bit).
        let info = if word == q.info_word { q.info } else { published(ci) };
        q.info_word = word;
        let mut work = 0;
        // A new or lost association drops the current connection.
        if !matches!(q.conn.phase, Phase::Down { .. }) && (!info.up || info.generation != q.generation) {
            Self::drop_conn(q, stack, book, pool, false);
            work += 1;
        }
        q.info = info;
        match q.conn.phase {
            Phase::Down { until } => {
                if info.up && now >= until && q.rx_dma.is_none() && !q.unservable(*queue) {
                    let ip = stack.dev.tx.ip;
                    let table = net::rss_table();
                    let start = q.next_port;
                    match dpu_net::rss::pick_local_port(&dpu_net::rss::DEFAULT_KEY, &table, ip, q.conn.remote, q.conn.rport, *queue as u8, net::DATA_PORTS, start) {
                        Some(p) => {
                            q.conn.local_port = p;
                            q.next_port = if p == *net::DATA_PORTS.end() { *net::DATA_PORTS.start() } else { p + 1 };
                            q.generation = info.generation;
                            q.conn.open(stack, now, q.rx_buf, SOCK_BUF);
                            work += 1;
                        }
                        None => defmt::error!("hart {=usize}: no local port hashes to queue {=usize}", *hart, *queue),
                    }
                }
            }
            Phase::Tcp => match q.conn.tcp_state(stack) {
                smoltcp::socket::tcp::State::Established => {
                    q.conn.start_ic(stack, now);
                    work += 1;
                }
                smoltcp::socket::tcp::State::Closed | smoltcp::socket::tcp::State::TimeWait => {
                    Self::drop_conn(q, stack, book, pool, false);
                }
                _ if now > q.conn.since + super::conn::CONNECT_TIMEOUT => {
                    Self::drop_conn(q, stack, book, pool, false);
                }
                _ => {}
            },
            Phase::Ic | Phase::Connect | Phase::Ready => {
                // (One socket look-up for both questions.)
                let (established, has_rx) = q.conn.rx_state(stack);
                if !established && q.rx_dma.is_none() {
                    Self::drop_conn(q, stack, book, pool, false);
                    return work + 1;
                }
                if q.rx_dma.is_none() && has_rx {
                    work += Self::receive(q, stack, chan, book, pool, ext, *hart, ci);
                    if q.rx_dma.is_some() {
                        // The engine starts on the data now, not at the
                        // end of the reactor pass (~0.5 us at depth 1;
                        // one 20-cycle register write per C2HData).
                        chan.kick();
                    }
                }
                if q.conn.phase == Phase::Connect && !q.conn.q.active(CID_CONNECT) {
                    work += usize::from(Self::send_connect(q, stack));
                }
                // ICResp or the Connect response overdue: the target is
                // not answering this association.
                if matches!(q.conn.phase, Phase::Ic | Phase::Connect) && now > q.conn.since + *timeout && q.rx_dma.is_none() {
                    defmt::warn!("hart {=usize}: ctrl {=usize}: I/O queue {=u16} setup unanswered; reconnecting", *hart, ci, q.conn.q.qid);
                    Self::drop_conn(q, stack, book, pool, false);
                    return work + 1;
                }
            }
        }
        if q.conn.ready() {
            work += Self::send_queued(q, stack, book, pool, now, *timeout);
        }
        // Sent commands unanswered too long: tear the association down
        // (Linux nvme-tcp: I/O timeout -> error recovery); they are sent
        // again on the next one.
        if now >= q.check_at {
            let mut next = u64::MAX;
            let mut expired = false;
            for c in book.cmds.iter().filter(|c| c.st == St::Sent && usize::from(c.ctrl) == ci) {
                let at = c.sent_at + if c.cancel.is_some() { CANCEL_GRACE_TICKS } else { *timeout };
                if now >= at {
                    expired = true;
                } else {
                    next = next.min(at);
                }
            }
            q.check_at = next;
            if expired && q.rx_dma.is_none() {
                defmt::warn!("hart {=usize}: ctrl {=usize}: I/O queue {=u16}: command unanswered; reconnecting", *hart, ci, q.conn.q.qid);
                book.stats.timeouts += 1;
                Self::drop_conn(q, stack, book, pool, false);
                work += 1;
            } else if expired {
                q.check_at = now; // data is being moved: look again next pass
            }
        }
        // Commands that waited too long for a queue, or whose queue will
        // not come (not granted, refused), fail with a path error.
        let unservable = q.unservable(*queue);
        if q.count > 0 && (!q.conn.ready() || unservable) {
            let mut k = 0;
            let n = q.count;
            let mut keep = [0u8; MAXCMD];
            for i in 0..n {
                let slot = q.fifo[(q.head + i) % MAXCMD];
                let c = &book.cmds[usize::from(slot)];
                if c.st != St::Queued {
                    continue;
                }
                if unservable || now > c.deadline {
                    book.finish(pool, usize::from(slot), PATH_ERROR);
                    work += 1;
                } else {
                    keep[k] = slot;
                    k += 1;
                }
            }
            q.fifo = keep;
            q.head = 0;
            q.count = k;
        }
        if q.conn.ready() && q.count == 0 && q.r2ts == 0 && q.rx_dma.is_none() && info.generation == word >> 1 {
            idle[ci] = Idle { word, until: q.check_at, port: q.conn.port as u8, sock: q.conn.sock };
        }
        work
    }

    fn send_connect(q: &mut Queue, stack: &mut Stack) -> bool {
        let (_, hostid) = bootcfg::host();
        // (None while a publication is being written: tried next pass.)
        let Some(def) = super::ctrls::def(q.index) else { return false };
        let Ok(hostnqn) = core::str::from_utf8(def.hostnqn()) else { return false };
        let Ok(subnqn) = core::str::from_utf8(def.subnqn()) else { return false };
        let mut data = [0u8; 1024];
        if (ConnectData { hostid, cntlid: q.info.cntlid, subnqn, hostnqn }).emit(&mut data).is_err() {
            return false;
        }
        let sqe = ConnectCmd { recfmt: 0, qid: q.conn.q.qid, sqsize: MAXCMD as u16 - 1, cattr: 0, kato: 0 }.to_sqe(CID_CONNECT);
        q.conn.submit(stack, &sqe, true, 1024, &[&data], u32::MAX)
    }

    /// Walks received PDUs of queue `ci`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn receive(q: &mut Queue, stack: &mut Stack, chan: &mut Channel, book: &mut Book, pool: &mut Pool, ext: &[[(u64, u32); MAXSEG]], hart: usize, ci: usize) -> usize {
        let mut events: [Option<Event>; 8] = [None; 8];
        let mut nev = 0;
        let mut rx_dma = None;
        let cmds = &book.cmds;
        let pool_ro: &Pool = pool;
        let crc_word = core::ptr::addr_of_mut!(q.crc_word) as usize;
        let r = q.conn.pump(
            stack,
            |e| {
                events[nev] = Some(e);
                nev += 1;
                nev < events.len()
            },
            |d| {
                let RxData::Bytes { cid, offset, bytes, crc } = d;
                // Data of a command we no longer know or want (cancelled:
                // the host's pages may be reused) is consumed unread; the
                // protocol state has already checked it belongs to an
                // outstanding read.
                let Some(c) = cmds.get(usize::from(cid)).filter(|c| c.st == St::Sent && c.op == IoOp::Read && c.cancel.is_none()) else {
                    return Some(bytes.len());
                };
                // Destination segments covering [offset, offset + len):
                // the host's pages, or the submitter's staging pages
                // (copied inside DPU memory). Counted first (the last
                // descriptor ends the chain), then pushed.
                let local = bytes.as_ptr() as u64;
                let len = bytes.len() as u32;
                // (The staged table only for staged commands: zeroing it
                // for every received segment cost ~2% of a read.)
                let staged;
                let segs = if c.staged {
                    let mut t = [(0u64, 0u32); crate::block::staging::MAX_IO_PAGES];
                    let n = pool_ro.segments(&c.pages, 0, c.len as usize, &mut t);
                    staged = t;
                    &staged[..n]
                } else {
                    segs_of(c, ext, usize::from(cid))
                };
                let pieces = |f: &mut dyn FnMut(u64, u32)| {
                    let (mut skip, mut want) = (offset, len);
                    for &(host, l) in segs {
                        if want == 0 {
                            break;
                        }
                        if skip >= l {
                            skip -= l;
                            continue;
                        }
                        let take = (l - skip).min(want);
                        f(host + u64::from(skip), take);
                        want -= take;
                        skip = 0;
                    }
                    want
                };
                let mut nd = 0usize;
                let missing = pieces(&mut |_, _| nd += 1);
                if nd == 0 || missing != 0 {
                    return Some(bytes.len());
                }
                if (chan.space() as usize) < nd + usize::from(crc.is_some()) {
                    return Some(0); // DMA ring full: try again next pass
                }
                let (func, mut src, mut k) = (c.func, local, 0usize);
                let ck = cookie::make(cookie::NET_RX, ci as u32);
                if let Some(seed) = crc {
                    // The data digest by the engine, in the same chain
                    // (it only reads the socket bytes).
                    dpu_hal::mem::write(crc_word, &seed.to_le_bytes());
                    chan.push(&Desc::crc32c(local, len, crc_word as u64, ck));
                }
                pieces(&mut |dst, take| {
                    k += 1;
                    let flags = if k == nd { dr::FLAG_END } else { 0 };
                    // OP_COPY reads `host` (a DPU address) and writes `local`.
                    let d = if c.staged {
                        Desc { host: src, local: dst, len: take, function: 0, op: dr::OP_COPY, flags, msix: 0, cookie: ck }
                    } else {
                        Desc { host: dst, local: src, len: take, function: func, op: dr::OP_D2H, flags, msix: 0, cookie: ck }
                    };
                    chan.push(&d);
                    src += u64::from(take);
                });
                rx_dma = Some((bytes.len(), cid, crc.is_some()));
                None
            },
        );
        let mut work = nev;
        if rx_dma.is_some() {
            q.rx_dma = rx_dma;
            work += 1;
        }
        for e in events.iter().take(nev).flatten() {
            match *e {
                Event::Established { .. } => {
                    q.conn.phase = Phase::Connect;
                    q.conn.since = dpu_hal::csr::time();
                }
                Event::Completed { cid, cqe, .. } if cid == CID_CONNECT => match ConnectResponse::from_cqe(&cqe) {
                    ConnectResponse::Accepted { .. } => {
                        q.conn.phase = Phase::Ready;
                        q.conn.failures = 0;
                        q.refusals = 0;
                        defmt::info!("hart {=usize}: ctrl {=usize}: I/O queue {=u16} ready (local port {=u16})", hart, ci, q.conn.q.qid, q.conn.local_port);
                    }
                    _ => {
                        // A busy controller (Connect Controller Busy) or a
                        // status with DNR clear may change: retried with
                        // backoff. DNR or a Connect-specific refusal
                        // (invalid parameters, invalid host) is retried
                        // `CONNECT_REFUSALS` times (a target may still hold
                        // this qid from a connection it has not seen close:
                        // Linux answers that with DNR too), then not again
                        // on this association.
                        let st = cqe.status;
                        let busy = st.sct == 1 && st.sc == 0x81;
                        if !busy && (st.dnr || st.sct == 1) {
                            q.refusals = q.refusals.saturating_add(1);
                        }
                        let give_up = q.refusals >= CONNECT_REFUSALS;
                        defmt::warn!(
                            "hart {=usize}: ctrl {=usize}: I/O queue {=u16} refused: {=u16:#x}{=str}",
                            hart, ci, q.conn.q.qid, st.field(), if give_up { " (not retried on this association)" } else { "" }
                        );
                        if give_up {
                            q.refused = Some(q.generation);
                            q.refusals = 0;
                        }
                        Self::drop_conn(q, stack, book, pool, false);
                        return work;
                    }
                },
                Event::Completed { cid, cqe, .. } => book.answered(pool, cid, cqe.status),
                Event::R2t { cid, ttag, offset, len, .. } => {
                    if let Some(c) = book.cmds.get_mut(usize::from(cid)) {
                        c.r2t = Some((ttag, offset, len));
                        q.r2ts |= 1 << cid;
                    }
                }
                Event::None => {}
            }
        }
        if let Err(f) = r {
            defmt::warn!("hart {=usize}: ctrl {=usize}: fatal transport error: {}", hart, ci, f);
            book.stats.fatal += 1;
            q.conn.terminate(stack, &f);
            if q.rx_dma.is_none() {
                Self::drop_conn(q, stack, book, pool, true);
            }
        }
        work
    }

    /// Sends R2T answers and queued commands while the socket has room.
    fn send_queued(q: &mut Queue, stack: &mut Stack, book: &mut Book, pool: &Pool, now: u64, timeout: u64) -> usize {
        let cmds = &mut book.cmds;
        let mut work = 0;
        // Answer R2Ts first: the target holds resources for them.
        while q.r2ts != 0 {
            let cid = q.r2ts.trailing_zeros() as usize;
            let c = &cmds[cid];
            let Some((ttag, offset, len)) = c.r2t else {
                q.r2ts &= !(1 << cid);
                continue;
            };
            let max = if q.conn.maxh2cdata == 0 { len } else { q.conn.maxh2cdata };
            let mut sent = 0;
            let mut ok = true;
            while sent < len {
                let n = (len - sent).min(max);
                if !Self::send_h2c(q, stack, c, cid as u16, pool, ttag, offset + sent, n, sent + n == len) {
                    ok = false;
                    break;
                }
                sent += n;
            }
            if !ok {
                // Partially sent R2Ts are finished next pass from `sent`.
                if sent > 0 {
                    cmds[cid].r2t = Some((ttag, offset + sent, len - sent));
                }
                return work;
            }
            cmds[cid].r2t = None;
            q.r2ts &= !(1 << cid);
            work += 1;
        }
        while q.count > 0 {
            let slot = usize::from(q.fifo[q.head]);
            let c = &cmds[slot];
            if c.st != St::Queued {
                q.head = (q.head + 1) % MAXCMD;
                q.count -= 1;
                continue;
            }
            let cid = slot as u16;
            let nlb0 = (c.nlb.max(1) - 1) as u16;
            // Reads and writes: the SQE is written into the capsule where
            // it lies (`read_into`, `write_into`).
            let sent = match c.op {
                IoOp::Read => {
                    let (nsid, slba, len) = (c.nsid, c.slba, c.len);
                    q.conn.submit_sqe_with(stack, &|s: &mut [u8; 64]| io::read_into(s, cid, nsid, slba, nlb0, len), false, len, &[], None, slot as u32)
                }
                op @ (IoOp::Write | IoOp::Compare | IoOp::Dsm { .. }) => {
                    let inline = c.len <= q.info.inline;
                    let dptr = if inline { Dptr::in_capsule(c.len) } else { Dptr::Transport { len: c.len } };
                    let other = match op {
                        IoOp::Compare => Some(io::compare(cid, c.nsid, c.slba, nlb0, dptr)),
                        IoOp::Dsm { nr0, attributes } => Some(io::dsm(cid, c.nsid, nr0, attributes, dptr)),
                        _ => None,
                    };
                    let (nsid, slba) = (c.nsid, c.slba);
                    let write_sqe = |s: &mut [u8; 64]| match &other {
                        Some(sqe) => s.copy_from_slice(&sqe.0),
                        None => io::write_into(s, cid, nsid, slba, nlb0, dptr),
                    };
                    if inline {
                        let mut parts: [&[u8]; 32] = [&[]; 32];
                        let np = c.pages.len();
                        for (k, part) in parts.iter_mut().enumerate().take(np) {
                            let n = (c.len as usize - k * PAGE).min(PAGE);
                            *part = pool.bytes(c.pages.page(k), n);
                        }
                        q.conn.submit_sqe_with(stack, &write_sqe, true, c.len, &parts[..np], c.staged_crc(), slot as u32)
                    } else {
                        q.conn.submit_sqe_with(stack, &write_sqe, true, c.len, &[], None, slot as u32)
                    }
                }
                IoOp::Flush => q.conn.submit(stack, &io::flush(cid, c.nsid), false, 0, &[], slot as u32),
                IoOp::WriteZeroes => {
                    let mut sqe = dpu_nvme_tcp::fabrics::command_sqe(0x08, cid, c.nsid, Dptr::None);
                    sqe.set_dw(10, c.slba as u32);
                    sqe.set_dw(11, (c.slba >> 32) as u32);
                    sqe.set_dw(12, u32::from(nlb0));
                    q.conn.submit(stack, &sqe, false, 0, &[], slot as u32)
                }
            };
            if !sent {
                break;
            }
            cmds[slot].st = St::Sent;
            cmds[slot].sent_at = now;
            q.check_at = q.check_at.min(now + timeout);
            q.head = (q.head + 1) % MAXCMD;
            q.count -= 1;
            work += 1;
        }
        work
    }

    /// One H2CData PDU: `len` bytes of `c`'s staged data from `offset`.
    #[allow(clippy::too_many_arguments)]
    fn send_h2c(q: &mut Queue, stack: &mut Stack, c: &Cmd, cid: u16, pool: &Pool, ttag: u16, offset: u32, len: u32, last: bool) -> bool {
        let digest = q.conn.q.data_digest();
        let need = 24 + 4 + 128 + len as usize + 4;
        if q.conn.send_room(stack) < need {
            return false;
        }
        let mut hdr = [0u8; 160];
        let Ok(n) = q.conn.q.h2c_data(cid, ttag, offset, len, last, &mut hdr) else { return false };
        let mut parts: [&[u8]; 34] = [&[]; 34];
        let mut np = 0;
        parts[np] = &hdr[..n];
        np += 1;
        let mut pos = offset as usize;
        let end = (offset + len) as usize;
        while pos < end && np < parts.len() {
            let page = pos / PAGE;
            let in_page = (PAGE - pos % PAGE).min(end - pos);
            let base = pool.bytes(c.pages.page(page), PAGE);
            parts[np] = &base[pos % PAGE..pos % PAGE + in_page];
            np += 1;
            pos += in_page;
        }
        let dg = match c.staged_crc() {
            _ if !digest => [0; 4],
            // All of the command's data in this PDU: the engine's CRC.
            Some(crc) if offset == 0 && len == c.len => dpu_nvme_tcp::digest::to_wire(crc),
            _ => dpu_nvme_tcp::host::HostQueue::<1>::digest_of(&parts[1..np]),
        };
        if digest && np < parts.len() {
            parts[np] = &dg;
            np += 1;
        }
        q.conn.send(stack, &parts[..np])
    }

    /// When this core's fabric next needs to run without an interrupt
    /// (TCP timers, reconnect backoff, retry deadlines, remote I/O
    /// timeouts), in mtime ticks.
    #[inline(never)]
    pub fn deadline(&mut self) -> u64 {
        let mut t = u64::MAX;
        for s in self.stacks.iter_mut().flatten() {
            if let Some(at) = s.poll_at() {
                t = t.min(at);
            }
        }
        for q in self.queues.iter().flatten() {
            match q.conn.phase {
                Phase::Down { until } if q.info.up && !q.unservable(self.queue) => t = t.min(until),
                Phase::Tcp => t = t.min(q.conn.since + super::conn::CONNECT_TIMEOUT + 1),
                Phase::Ic | Phase::Connect => t = t.min(q.conn.since + self.timeout + 1),
                _ => {}
            }
            t = t.min(q.check_at);
            // Queued commands only wait on a deadline while the queue is down.
            if q.count > 0 && !q.conn.ready() {
                for i in 0..q.count {
                    let c = &self.book.cmds[usize::from(q.fifo[(q.head + i) % MAXCMD])];
                    t = t.min(c.deadline);
                }
            }
        }
        self.next_due = t;
        t
    }
}

impl Queue {
    /// Whether this queue can never carry commands on the current
    /// association: the target granted fewer I/O queues than this core's
    /// index (`core_queue`), or refused its Connect for good.
    fn unservable(&self, core_queue: usize) -> bool {
        self.info.up && (core_queue >= self.info.queues as usize || self.refused == Some(self.info.generation))
    }

    /// Takes `slot` out of the waiting list.
    fn unqueue(&mut self, slot: usize) {
        let mut keep = [0u8; MAXCMD];
        let mut k = 0;
        for i in 0..self.count {
            let s = self.fifo[(self.head + i) % MAXCMD];
            if usize::from(s) != slot {
                keep[k] = s;
                k += 1;
            }
        }
        self.fifo = keep;
        self.head = 0;
        self.count = k;
    }
}
