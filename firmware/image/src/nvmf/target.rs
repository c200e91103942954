//! The NVMe/TCP target of one data-plane core: the card's namespaces
//! (RAM, local SSD: any block device) served to remote hosts over the
//! DPU's ports (DESIGN.md §1 use case 2).
//!
//! * Every data-plane core listens on each subsystem's TCP port with
//!   [`LISTENERS`] sockets per port on its own stacks; the NIC's RSS
//!   hash places a host's connection on one core, where its queue pair
//!   lives from ICReq to close (no cross-core hop).
//! * Per connection: ICReq -> ICResp (header and data digests when
//!   asked, MAXH2CDATA [`MAXH2CDATA`]), Fabrics Connect (qid 0 creates
//!   a dynamic controller in [`CTRLS`], shared by all cores through
//!   atomics, slow path only; qid > 0 attaches to one by CNTLID), then
//!   the admin commands of `dpu_nvme_tcp::target` or I/O.
//! * Discovery (NVMe Base 2.0 §3.1.3.3, NVMe/TCP Transport 1.0: TCP 8009):
//!   every port with a subsystem also listens on 8009
//!   ([`DISCOVERY_LISTENERS`] sockets per core). A Connect to the
//!   well-known discovery NQN (any host) creates a discovery controller
//!   (a [`CTRLS`] slot too); its admin commands are
//!   `dpu_nvme_tcp::target::discovery`'s, and a Get Log Page of the
//!   Discovery Log Page (LID 70h) is streamed as one C2HData rendered 4
//!   KiB at a time: one entry per (subsystem, port) whose allow-list
//!   admits the host (the host's view is kept as a bitmask at Connect).
//! * I/O: Read, Write, Flush, Write Zeroes, Compare, Dataset Management
//!   go to the same block-device stack and block operations as the PCIe
//!   NVMe engine's commands ([`crate::block::Stack`]) with staging pages
//!   (`Data::Staged`) under tags [`TAG`] | slot (ONCS from the shared
//!   Identify code: Compare, DSM, Write Zeroes).
//!   Data to the controller (Write, Compare, DSM) comes in the capsule up
//!   to [`INLINE_MAX`] = 8 KiB (IOCCSZ), or by R2T (NVMe/TCP 1.0
//!   §3.3.2.2) for a Transport SGL data block up to MDTS: one R2T for all
//!   of it (TTAG = the slot), H2CData PDUs of up to MAXH2CDATA checked
//!   against it (`dpu_nvme_tcp::target::R2tWindow`: a wrong TTAG, CCCID,
//!   offset or LAST_PDU is a C2HTermReq). Either way it is received from
//!   the socket buffer straight into the staging pages; read data goes
//!   from the staging pages into the socket as C2HData PDUs of up to
//!   [`C2H_CHUNK`], then a CapsuleResp (none when the host's Connect
//!   disabled SQ flow control: the last C2HData then carries SUCCESS,
//!   NVMe/TCP 1.0 §3.6.2.8). Both copies are `memcpy`s of 512
//!   bytes or more, which run on the core's DMA copy channel
//!   (`dpu_rt::copy`); smoltcp copies frames to and from its socket
//!   buffers as for the initiator.
//! * Data digests (§3.6.1): CRC32C on the hart's CRC32C engine
//!   (`dpu_rt::copy::crc32c`) over received data where it lands and over C2HData as it is sent; a
//!   mismatch ends that command with Transient Transport Error (SCT 0h,
//!   SC 22h) and keeps the connection, as SPDK's target does.
//! * Bad input: a malformed PDU gets a C2HTermReq with its FES and only
//!   that connection closes; command errors are completions (Invalid
//!   Opcode, LBA Out of Range, Invalid Field for a transfer above MDTS,
//!   Command Sequence Error before Connect or on a disabled controller).
//! * Keep Alive: an admin queue that receives no command within KATO is
//!   torn down; its controller is freed and the I/O queues of it (on any
//!   core) see that and close. Disconnect (NVMe Base 2.0 §6.4) completes,
//!   then its queue's connection closes the same way (commands still in
//!   flight on it are dropped).
//!
//! * Asynchronous events (NVMe Base 2.0 §5.2): AERs are held by the
//!   admin state `dpu_nvme::admin` keeps for the controller. A change of
//!   a subsystem's namespaces ([`namespaces_changed`], any core) goes to
//!   the subsystem's [`NamespaceFeed`]; every admin queue of it, on
//!   whatever core, sees it on its next pass, puts the NSIDs on its
//!   Changed Namespace List (log page 04h) and completes a held AER with
//!   a Namespace Attribute Changed notice (if the host enabled those with
//!   Asynchronous Event Configuration bit 8) as a CapsuleResp.
//!
//! * Subsystems made at run time (`super::live`, through the management
//!   API's `nvmf_*` methods): each core copies the published table
//!   between passes, then closes the connections of a subsystem that is
//!   gone or no longer listens where they came in (FIN; their
//!   controllers are freed) and opens or frees listening sockets to
//!   match (a port's stack starts when a first listener comes to it;
//!   the connection table is [`MAX_CONNS`], which the management server
//!   checks a change against). A command of a namespace removed before
//!   it reached the block layer ends with Invalid Namespace or Format;
//!   those in the block layer complete (a RAM device's memory is never
//!   reused). A host taken off the allow-list keeps its connections and
//!   is refused at its next Connect (as SPDK).
//!
//! Not here yet: more than one R2T outstanding per command, referral and current-discovery
//! entries in the discovery log.

use crate::block::staging::{Pages, Pool, PAGE};
use crate::block::{self, Data, Io, Tag};
use crate::bootcfg;
use crate::net::stack::Stack;
use super::live::{self as tl, Table as LiveTable, LIVE_BASE};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use dpu_hal::dma::Channel;
use dpu_hal::memory_map::{NIC_PORTS, TIMEBASE_HZ};
use dpu_nvme::admin::Event;
use dpu_nvme::identify::NamespaceInfo;
use dpu_nvme::ns_feed::NamespaceFeed;
use dpu_nvme::{Cqe, Sqe, Status};
use dpu_nvme_tcp::fabrics::connect::status as cstatus;
use dpu_nvme_tcp::fabrics::connect::CATTR_DISABLE_SQ_FLOW_CONTROL;
use dpu_nvme_tcp::fabrics::{ConnectResponse, FcType};
use dpu_nvme_tcp::pdu::{self, CapsuleResp, C2hData, Digests, Fes, Pdu, R2t, Received, Role, RxConfig, TermReq, TxConfig};
use dpu_nvme_tcp::digest::Crc32c;
use dpu_nvme_tcp::sgl::Dptr;
use dpu_nvme_tcp::target::discovery::{self as disc, DiscoveryReply, Offer};
use dpu_nvme_tcp::target::{self as t, AdminReply, AdminState, Connect};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

/// Identify Controller MN of the target's controllers.
pub const MODEL: &str = "DPU NVMe/TCP target";

/// Tag bit of the target's block I/Os (the engine's are below 128; the
/// crypto and EC devices use 0x8000 and 0x4000).
pub const TAG: Tag = 0x2000;
/// Commands one core's target holds at once (slots).
pub const MAXCMD: usize = 64;
/// Listening sockets per (port, TCP port) on each core, per port for the
/// discovery service, and in all (`targets/src/limits.rs`, which the
/// scenario loader checks a configuration against).
pub use dpu_hal::memory_map::{DISCOVERY_LISTENERS, TARGET_LISTENERS as LISTENERS};
/// The subsystem index a discovery controller's connection carries.
const DISCOVERY: u8 = u8::MAX;
/// Most connections (sockets) one core's target keeps.
pub const MAX_CONNS: usize = dpu_hal::memory_map::TARGET_SOCKETS;
/// Socket buffers (receive = the window a host may fill).
const SOCK_RX: usize = 128 * 1024;
const SOCK_TX: usize = 128 * 1024;
/// In-capsule data an I/O queue takes (IOCCSZ = 64 + this, in 16-byte
/// units): 8 KiB, as SPDK's 4 KiB and Linux nvmet's 8 KiB (its
/// default inline_data_size): larger writes come by R2T/H2CData.
const INLINE_MAX: u32 = 8192;
/// MAXH2CDATA announced in ICResp: a 128 KiB (MDTS) write comes in four
/// H2CData PDUs.
const MAXH2CDATA: u32 = 32 * 1024;
/// Most data bytes per C2HData PDU.
pub const C2H_CHUNK: u32 = 32 * 1024;
/// Admin in-capsule data (Connect's 1024 bytes; Linux's admin capsules
/// take up to 8 KiB).
const SMALL: usize = 8192;
const US: u64 = TIMEBASE_HZ / 1_000_000;
/// A connection closing after a C2HTermReq is aborted after this.
const CLOSE_GRACE: u64 = 100_000 * US;

/// Controllers of all subsystems, in DDR (statics), shared by every
/// core: the admin queue's core creates and frees; I/O queues' cores
/// read. CNTLID = index + 1.
pub const MAX_CONTROLLERS: usize = 64;

struct CtrlSlot {
    /// Bit 0 live; bits 31:1 generation (bumped when freed or reset: an
    /// I/O queue of an older generation closes).
    state: AtomicU32,
    /// Subsystem index (bits 7:0), bit 8: enabled (CC.EN).
    info: AtomicU32,
    /// FNV-1a of the host NQN.
    host: AtomicU64,
}

static CTRLS: [CtrlSlot; MAX_CONTROLLERS] = [const { CtrlSlot { state: AtomicU32::new(0), info: AtomicU32::new(0), host: AtomicU64::new(0) } }; MAX_CONTROLLERS];

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Allocates a controller of subsystem `subsys` for host `hostnqn`:
/// (index, generation).
fn ctrl_alloc(subsys: u8, hostnqn: &str) -> Option<(usize, u32)> {
    for (i, c) in CTRLS.iter().enumerate() {
        let s = c.state.load(Ordering::Acquire);
        if s & 1 == 0 && c.state.compare_exchange(s, s | 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            c.info.store(u32::from(subsys), Ordering::Relaxed);
            c.host.store(fnv(hostnqn.as_bytes()), Ordering::Release);
            return Some((i, s >> 1));
        }
    }
    None
}

/// Bumps controller `i`'s generation: freed (`live` false) or reset.
fn ctrl_bump(i: usize, live: bool) -> u32 {
    let c = &CTRLS[i];
    let g = (c.state.load(Ordering::Relaxed) >> 1).wrapping_add(1);
    if !live {
        c.info.store(0, Ordering::Relaxed);
    }
    c.state.store(g << 1 | u32::from(live), Ordering::Release);
    g
}

/// Namespace changes of each subsystem (boot ones, then the run-time
/// ones from [`LIVE_BASE`]), for its controllers' admin queues (on every
/// core).
static NS_FEEDS: [NamespaceFeed; LIVE_BASE as usize + tl::MAX_LIVE] = [const { NamespaceFeed::NEW }; LIVE_BASE as usize + tl::MAX_LIVE];

/// Namespace `nsid` of target subsystem `subsys` was added, removed or
/// changed (`0` or an NSID above `dpu_nvme::MAX_NSID`: rescan all). Any
/// core may call it (the management core, after changing the subsystem's
/// namespace set). Every controller of the subsystem puts `nsid` on its
/// Changed Namespace List and raises a Namespace Attribute Changed
/// notice (NVMe Base 2.0 §5.2.1: type 2h, info 00h, log page 04h) on
/// its admin queue's next pass; the data-plane cores are woken for it.
/// An unknown subsystem is ignored. The management server calls it after
/// publishing a run-time subsystem's new namespace set
/// (`nvmf_subsystem_add_ns` / `nvmf_subsystem_remove_ns`).
pub fn namespaces_changed(subsys: u8, nsid: u32) {
    let Some(feed) = NS_FEEDS.get(usize::from(subsys)) else { return };
    feed.publish(nsid);
    for q in 0..crate::net::DATA_CORES {
        dpu_hal::mailbox::ring(crate::net::FIRST_DATA_HART + q, super::DOORBELL_NVMF);
    }
}

fn ctrl_current(i: usize, gen: u32) -> bool {
    CTRLS[i].state.load(Ordering::Acquire) == (gen << 1 | 1)
}

fn ctrl_set_enabled(i: usize, on: bool) {
    let c = &CTRLS[i];
    let v = c.info.load(Ordering::Relaxed) & 0xff;
    c.info.store(v | u32::from(on) << 8, Ordering::Release);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotSt {
    Free,
    /// Receiving its in-capsule data.
    Receiving,
    /// Its data comes by R2T: the R2T waits in its connection's queue.
    R2tQueued,
    /// R2T sent; receiving its H2CData PDUs.
    H2c,
    /// Waiting to be submitted to the block layer (this pass).
    Submit,
    /// In the block layer.
    Block,
    /// Completed; in its connection's send FIFO.
    Reply,
}

#[derive(Clone, Copy)]
struct Slot {
    st: SlotSt,
    conn: u8,
    epoch: u32,
    cid: u16,
    sqhd: u16,
    sqid: u16,
    subsys: u8,
    op: block::Op,
    nsid: u32,
    lba: u64,
    blocks: u32,
    len: u32,
    pages: Pages,
    status: Status,
    /// Read data bytes already sent as C2HData.
    sent: u32,
    /// Write data by R2T: the bytes already received as H2CData.
    got: u32,
    /// The write's data comes by R2T (a Transport SGL data block).
    r2t: bool,
}

impl Slot {
    const FREE: Slot = Slot {
        st: SlotSt::Free,
        conn: 0,
        epoch: 0,
        cid: 0,
        sqhd: 0,
        sqid: 0,
        subsys: 0,
        op: block::Op::Flush,
        nsid: 0,
        lba: 0,
        blocks: 0,
        len: 0,
        pages: Pages::NONE,
        status: Status::SUCCESS,
        sent: 0,
        got: 0,
        r2t: false,
    };
}

/// Per-core counters.
#[derive(Clone, Copy, Default)]
pub struct Stats {
    pub connections: u64,
    pub commands: u64,
    pub reads: u64,
    pub writes: u64,
    pub errors: u64,
    pub term_reqs: u64,
    pub kato_expired: u64,
    /// R2Ts sent and H2CData PDUs received.
    pub r2ts: u64,
    pub h2c_pdus: u64,
    /// PDUs whose data digest did not match.
    pub ddgst_errors: u64,
    pub disconnects: u64,
}

struct Slots {
    s: [Slot; MAXCMD],
    free: [u8; MAXCMD],
    nfree: usize,
    submit: [u8; MAXCMD],
    nsubmit: usize,
    stats: Stats,
}

impl Slots {
    fn alloc(&mut self) -> Option<usize> {
        if self.nfree == 0 {
            return None;
        }
        self.nfree -= 1;
        Some(usize::from(self.free[self.nfree]))
    }

    fn release(&mut self, pool: &mut Pool, k: usize) {
        let s = &mut self.s[k];
        if s.st == SlotSt::Free {
            return;
        }
        pool.free(&mut s.pages);
        s.st = SlotSt::Free;
        self.free[self.nfree] = k as u8;
        self.nfree += 1;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Listening (or not yet connected).
    Idle,
    /// Connected; waiting for ICReq.
    Ic,
    /// ICResp sent.
    Live,
    /// A C2HTermReq was queued and FIN sent; aborted at `at` if not closed.
    Closing { at: u64 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Small,
    Slot(u8),
    Discard,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Reading a header (`hgot` bytes so far).
    Header,
    /// A header parsed; its command waits for a slot or pages.
    Parsed,
    /// Skipping `skip` bytes, then `left` data bytes to `dest` (at `off`),
    /// then `tail` bytes (a data digest).
    Body { skip: u32, left: u32, off: u32, tail: u32, dest: Dest },
    /// A whole PDU received; its command waits to be handled (room to
    /// answer).
    Complete,
}

struct Conn {
    /// Index in the target's connections (slots name it).
    idx: u8,
    /// Serving a listen point (else free for the next listener added).
    active: bool,
    /// `sock` is a socket of port `port`'s stack.
    bound: bool,
    /// Leaves `active` once its closing connection is closed (its
    /// listener was removed).
    retire: bool,
    /// The live subsystem's `uid` after Connect (0: a boot subsystem).
    uid: u32,
    sock: SocketHandle,
    port: usize,
    lport: u16,
    epoch: u32,
    phase: Phase,
    rx: Rx,
    hdr: [u8; pdu::MAX_HEADER_LEN + 8],
    hgot: usize,
    pdu: Option<Received>,
    rxcfg: RxConfig,
    txcfg: TxConfig,
    /// Connected queue: qid, SQSIZE (0's based), SQ head counter.
    qid: Option<u16>,
    sqsize: u16,
    sqhd: u16,
    /// The host's Connect disabled SQ flow control (CATTR bit 2, NVMe
    /// over Fabrics 1.1 §3.3; Linux `nvme connect --disable-sqflow`):
    /// CQEs report no SQ head (0, as Linux nvmet), and a successful I/O
    /// read ends with its last C2HData flagged SUCCESS and no CapsuleResp
    /// (NVMe/TCP 1.0 §3.6.2.8). Admin answers keep their CapsuleResp (the
    /// flag is the controller's option).
    sq_flow_off: bool,
    subsys: u8,
    /// A discovery controller's host: bit k, discovery log offer k
    /// admits it (as of its Connect).
    visible: u32,
    /// Controller (index, generation) after Connect.
    ctrl: Option<(usize, u32)>,
    admin: Option<AdminState>,
    /// The subsystem's namespace-change generation this admin queue has
    /// taken in (`NamespaceFeed::collect`).
    ns_seen: u32,
    last_cmd: u64,
    /// The command whose in-capsule data is being received or handled.
    cur_slot: Option<u8>,
    small_len: usize,
    /// Completed slots to answer, in order.
    fifo: SlotQueue,
    /// The running data digest (finished CRC32C) of the PDU data being
    /// received, its received DDGST bytes, and whether it mismatched.
    rx_crc: u32,
    ddgst: [u8; 4],
    ddgst_bad: bool,
    /// Write slots whose R2T is to be sent, in order.
    r2tq: SlotQueue,
    /// Admin in-capsule data (`SMALL` bytes, DDR).
    small: &'static mut [u8],
    /// Admin answer data (4 KiB, DDR).
    out: &'static mut [u8; 4096],
}

/// Slots of one connection waiting their turn, in order: a ring of
/// [`MAXCMD`] (a slot is in one queue at most, so it never fills).
#[derive(Clone, Copy)]
struct SlotQueue {
    q: [u8; MAXCMD],
    head: usize,
    len: usize,
}

impl SlotQueue {
    const EMPTY: SlotQueue = SlotQueue { q: [0; MAXCMD], head: 0, len: 0 };

    /// Appends slot `k`; false when full.
    fn push(&mut self, k: usize) -> bool {
        if self.len == MAXCMD {
            return false;
        }
        self.q[(self.head + self.len) % MAXCMD] = k as u8;
        self.len += 1;
        true
    }

    fn front(&self) -> Option<usize> {
        (self.len > 0).then(|| usize::from(self.q[self.head]))
    }

    fn pop(&mut self) -> Option<usize> {
        let k = self.front()?;
        self.head = (self.head + 1) % MAXCMD;
        self.len -= 1;
        Some(k)
    }

    fn clear(&mut self) {
        *self = SlotQueue::EMPTY;
    }
}

/// The target side of one data-plane core.
pub struct Target {
    hart: usize,
    conns: Option<&'static mut [Conn]>,
    nconns: usize,
    slots: Slots,
    /// This core's copy of the live subsystems (`super::live`), the next
    /// one being read, and scratch for reading it.
    live: LiveTable,
    next: LiveTable,
    scratch: tl::Scratch,
    /// Listening sockets wanted but not opened were reported.
    short_warned: bool,
}

impl dpu_rt::ConstInit for Target {
    const INIT: Target = Target {
        hart: 0,
        conns: None,
        nconns: 0,
        live: LiveTable::EMPTY,
        next: LiveTable::EMPTY,
        scratch: [0; core::mem::size_of::<tl::Scratch>()],
        short_warned: false,
        slots: Slots { s: [Slot::FREE; MAXCMD], free: [0; MAXCMD], nfree: 0, submit: [0; MAXCMD], nsubmit: 0, stats: Stats { connections: 0, commands: 0, reads: 0, writes: 0, errors: 0, term_reqs: 0, kato_expired: 0, r2ts: 0, h2c_pdus: 0, ddgst_errors: 0, disconnects: 0 } },
    };
}

/// Whether subsystems can be made at run time: the card serves the
/// management API (`crate::mgmt::nvmf`). Every core's target then starts
/// even without a subsystem, with a full connection table.
pub fn live_possible() -> bool {
    bootcfg::management().is_some()
}

/// (port, TCP port, listening sockets) the target listens on, each
/// (port, TCP port) once: the subsystems' TCP ports (the boot
/// configuration's, then the live ones' listeners) with [`LISTENERS`]
/// sockets, then the discovery service (NVMe/TCP Transport 1.0: TCP
/// 8009) with [`DISCOVERY_LISTENERS`] on every port that has a subsystem.
fn listen_points(live: &LiveTable, mut f: impl FnMut(usize, u16, usize)) {
    let mut seen: [(u8, u16); 48] = [(0, 0); 48];
    let mut n = 0;
    let mut used = 0u8;
    let nports = NIC_PORTS.min(bootcfg::ports().len()).min(8);
    let mut add = |p: usize, tcp: u16, k: usize, f: &mut dyn FnMut(usize, u16, usize)| {
        if seen[..n].contains(&(p as u8, tcp)) || n == seen.len() {
            return;
        }
        seen[n] = (p as u8, tcp);
        n += 1;
        f(p, tcp, k);
    };
    for s in 0..bootcfg::subsystems() {
        let Some(c) = bootcfg::subsystem(s) else { continue };
        for p in 0..nports {
            if c.ports & (1 << p) != 0 {
                used |= 1 << p;
                add(p, c.trsvcid, LISTENERS, &mut f);
            }
        }
    }
    for (_, s) in live.iter() {
        for l in s.listeners.iter().flatten().filter(|l| usize::from(l.port) < nports) {
            used |= 1 << l.port;
            add(usize::from(l.port), l.trsvcid, LISTENERS, &mut f);
        }
    }
    for p in 0..nports {
        if used & (1 << p) != 0 {
            add(p, dpu_nvme_tcp::DISCOVERY_PORT, DISCOVERY_LISTENERS, &mut f);
        }
    }
}

/// Listening sockets every core needs for the boot subsystems and the
/// live ones of `live` (the management server checks a change against
/// [`MAX_CONNS`] with it before publishing).
pub fn sockets_wanted(live: &LiveTable) -> usize {
    let mut n = 0;
    listen_points(live, |_, _, k| n += k);
    n
}

/// Most discovery log entries' offers (subsystem, TCP port).
const MAX_OFFERS: usize = 16;

/// Each subsystem's offer to the discovery log, in order: (subsystem
/// index, offer); a live subsystem has one per TCP port it listens on.
fn for_offers<'a>(live: &'a LiveTable, mut f: impl FnMut(u8, Offer<'a>)) {
    for s in 0..bootcfg::subsystems().min(usize::from(LIVE_BASE)) {
        let Some(c) = bootcfg::subsystem(s) else { continue };
        f(s as u8, Offer { subnqn: core::str::from_utf8(c.nqn()).unwrap_or(""), trsvcid: c.trsvcid, ports: u32::from(c.ports) });
    }
    for (i, s) in live.iter() {
        for (k, l) in s.listeners.iter().enumerate() {
            let Some(l) = l else { continue };
            if s.listeners[..k].iter().flatten().any(|o| o.trsvcid == l.trsvcid) {
                continue;
            }
            let ports = s.listeners.iter().flatten().filter(|o| o.trsvcid == l.trsvcid).fold(0u32, |m, o| m | 1u32.checked_shl(u32::from(o.port)).unwrap_or(0));
            f(i, Offer { subnqn: s.nqn.as_str(), trsvcid: l.trsvcid, ports });
        }
    }
}

/// The subsystems as the discovery log lists them, and the ports'
/// addresses (`f` gets both).
fn with_offers<R>(live: &LiveTable, f: impl FnOnce(&[Offer<'_>], &[[u8; 4]]) -> R) -> R {
    let mut offers = [Offer { subnqn: "", trsvcid: 0, ports: 0 }; MAX_OFFERS];
    let mut n = 0;
    for_offers(live, |_, o| {
        if n < MAX_OFFERS {
            offers[n] = o;
            n += 1;
        }
    });
    let mut ips = [[0u8; 4]; NIC_PORTS];
    let np = crate::net::settings::ports();
    for (p, pc) in crate::net::settings::addresses() {
        ips[p] = pc.ip;
    }
    f(&offers[..n], &ips[..np])
}

/// The offers (bit k: offer k of [`with_offers`]) host `hostnqn` may see.
fn visible_offers(live: &LiveTable, hostnqn: &[u8]) -> u32 {
    let mut m = 0u32;
    let mut k = 0;
    for_offers(live, |s, _| {
        if k < MAX_OFFERS && subsys_allows(live, s, hostnqn) {
            m |= 1 << k;
        }
        k += 1;
    });
    m
}

/// Listening sockets the target wants on `port` at boot (stack sizing;
/// a card with the management API sizes for [`MAX_CONNS`] more).
pub fn sockets_on(port: usize) -> usize {
    let mut n = 0;
    listen_points(&LiveTable::EMPTY, |p, _, k| {
        if p == port {
            n += k;
        }
    });
    n.min(MAX_CONNS)
}

/// Subsystem `s`'s NQN (a boot or a live one).
fn subsys_nqn(live: &LiveTable, s: u8) -> &[u8] {
    match live.get(s) {
        Some(l) => l.nqn.bytes(),
        None if s < LIVE_BASE => bootcfg::subsystem(usize::from(s)).map_or(&[][..], |c| c.nqn()),
        None => &[],
    }
}

/// The subsystem of NQN `nqn`.
fn find_subsys(live: &LiveTable, nqn: &[u8]) -> Option<u8> {
    (0..bootcfg::subsystems().min(usize::from(LIVE_BASE))).find(|&s| bootcfg::subsystem(s).is_some_and(|c| c.nqn() == nqn)).map(|s| s as u8).or_else(|| live.find(nqn))
}

/// Whether host `hostnqn` may connect to subsystem `s` now.
fn subsys_allows(live: &LiveTable, s: u8, hostnqn: &[u8]) -> bool {
    match live.get(s) {
        Some(l) => l.allows(hostnqn),
        None => s < LIVE_BASE && bootcfg::subsystem(usize::from(s)).is_some_and(|c| c.allows(hostnqn)),
    }
}

/// Namespace `nsid` of subsystem `s`, as the block layer takes it.
fn namespace_of(live: &LiveTable, s: u8, nsid: u32) -> Option<bootcfg::Namespace> {
    if s >= LIVE_BASE {
        return live.get(s)?.namespace(nsid).map(|n| n.namespace(s));
    }
    bootcfg::subsystem_namespace(s, nsid).copied()
}

/// Identify Controller NN of subsystem `s`.
fn subsys_namespaces(live: &LiveTable, s: u8) -> u32 {
    if let Some(l) = live.get(s) {
        return l.max_namespaces;
    }
    bootcfg::namespaces().filter(|n| n.subsystem == Some(s)).map(|n| n.nsid).max().unwrap_or(0)
}

fn ns_info(live: &LiveTable, s: u8, nsid: u32) -> Option<NamespaceInfo> {
    let ns = namespace_of(live, s, nsid)?;
    let nqn = subsys_nqn(live, s);
    let h = fnv(nqn) ^ u64::from(nsid).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut nguid = [0u8; 16];
    nguid[..8].copy_from_slice(&h.to_be_bytes());
    nguid[8..].copy_from_slice(&h.rotate_left(21).to_be_bytes());
    let mut eui64 = h.rotate_left(7).to_be_bytes();
    eui64[0] = 0x02; // locally administered
    Some(NamespaceInfo {
        nsid,
        blocks: ns.geometry.blocks,
        lba_shift: ns.geometry.block_shift,
        nguid,
        eui64,
        deallocated_zeroes: matches!(ns.backend, bootcfg::Backend::Ram(_)),
        shared: true,
    })
}

impl Target {
    /// The target side of data-plane hart `hart`, listening on the
    /// stacks of its NVMe/TCP side; `None` without subsystems on a card
    /// that cannot get any at run time ([`live_possible`]).
    pub fn start(hart: usize, fabric: &mut crate::nvmf::initiator::Fabric) -> Option<&'static mut Target> {
        let live_ok = live_possible();
        if bootcfg::subsystems() == 0 && !live_ok {
            return None;
        }
        let t = dpu_rt::alloc::ddr_static::<Target>()?;
        t.hart = hart;
        for i in 0..MAXCMD {
            t.slots.free[i] = (MAXCMD - 1 - i) as u8;
        }
        t.slots.nfree = MAXCMD;
        // Connections: those the boot subsystems listen with, or the whole
        // table when listeners may come at run time.
        let cap = if live_ok { MAX_CONNS } else { sockets_wanted(&LiveTable::EMPTY).min(MAX_CONNS) };
        let mut k = 0;
        let mut bufs: [Option<(&'static mut [u8], &'static mut [u8; 4096])>; MAX_CONNS] = [const { None }; MAX_CONNS];
        for b in bufs.iter_mut().take(cap) {
            let small = dpu_rt::alloc::ddr_bytes(SMALL, 64)?;
            let out: &'static mut [u8; 4096] = dpu_rt::alloc::ddr_bytes(4096, 64)?.try_into().ok()?;
            *b = Some((small, out));
        }
        t.conns = Some(dpu_rt::alloc::ddr_slice_with(cap, |_| {
            let (small, out) = bufs[k].take().expect("allocated above");
            k += 1;
            Conn {
                idx: (k - 1) as u8,
                active: false,
                bound: false,
                retire: false,
                uid: 0,
                sock: SocketHandle::default(),
                port: 0,
                lport: 0,
                epoch: 0,
                phase: Phase::Idle,
                rx: Rx::Header,
                hdr: [0; pdu::MAX_HEADER_LEN + 8],
                hgot: 0,
                pdu: None,
                rxcfg: RxConfig::awaiting_ic(Role::Controller),
                txcfg: TxConfig::PLAIN,
                qid: None,
                sqsize: 0,
                sqhd: 0,
                sq_flow_off: false,
                subsys: 0,
                visible: 0,
                ctrl: None,
                admin: None,
                ns_seen: 0,
                last_cmd: 0,
                cur_slot: None,
                small_len: 0,
                fifo: SlotQueue::EMPTY,
                rx_crc: 0,
                ddgst: [0; 4],
                ddgst_bad: false,
                r2tq: SlotQueue::EMPTY,
                small,
                out,
            }
        })?);
        t.nconns = cap;
        t.open_listeners(fabric);
        if hart == crate::net::FIRST_DATA_HART {
            for s in 0..bootcfg::subsystems() {
                let Some(c) = bootcfg::subsystem(s) else { continue };
                for (p, pc) in bootcfg::ports().iter().enumerate().take(NIC_PORTS) {
                    if c.ports & (1 << p) != 0 {
                        defmt::info!(
                            "nvmf target: {=str} listening on {=u8}.{=u8}.{=u8}.{=u8}:{=u16} (port {=usize}), {=u32} namespace(s), {=usize} sockets per core",
                            core::str::from_utf8(c.nqn()).unwrap_or("?"),
                            pc.ip[0], pc.ip[1], pc.ip[2], pc.ip[3], c.trsvcid, p, subsys_namespaces(&t.live, s as u8), LISTENERS
                        );
                    }
                }
            }
            listen_points(&t.live, |p, tcp, k| {
                if tcp == dpu_nvme_tcp::DISCOVERY_PORT {
                    let ip = bootcfg::ports().get(p).map_or([0; 4], |c| c.ip);
                    defmt::info!(
                        "nvmf target: discovery service listening on {=u8}.{=u8}.{=u8}.{=u8}:{=u16} (port {=usize}), {=usize} sockets per core",
                        ip[0], ip[1], ip[2], ip[3], tcp, p, k
                    );
                }
            });
            if live_ok {
                defmt::info!("nvmf target: subsystems can be added at run time (management API), {=usize} connections per core", cap);
            }
        }
        Some(t)
    }

    /// Opens the listening sockets the listen points want and the
    /// connections do not serve yet: a free connection whose socket is
    /// on that port's stack, else one without a socket (a new socket),
    /// else one whose socket moves over from another port's stack. The
    /// port's stack is started when this core has none on it yet.
    /// Returns how many opened.
    fn open_listeners(&mut self, fabric: &mut crate::nvmf::initiator::Fabric) -> usize {
        let Target { conns, live, hart, short_warned, .. } = self;
        let Some(conns) = conns.as_deref_mut() else { return 0 };
        let mut opened = 0;
        let mut short = false;
        listen_points(live, |p, tcp, k| {
            // (A connection closing because its listener went does not
            // count: it is freed once closed.)
            let have = conns.iter().filter(|c| c.active && !c.retire && c.port == p && c.lport == tcp).count();
            for _ in have..k {
                let pick = conns
                    .iter()
                    .position(|c| !c.active && c.bound && c.port == p)
                    .or_else(|| conns.iter().position(|c| !c.active && !c.bound))
                    .or_else(|| conns.iter().position(|c| !c.active));
                let Some(i) = pick else {
                    short = true;
                    return;
                };
                let c = &mut conns[i];
                if c.bound && c.port != p {
                    let Some(old) = fabric.stack(c.port) else { return };
                    let sock = old.take(c.sock);
                    c.bound = false;
                    let Some(st) = fabric.stack_or_start(p) else { return };
                    match st.adopt(sock, tcp) {
                        Ok(h) => c.sock = h,
                        // Dropped: its buffers stay allocated (DDR is never freed).
                        Err(_) => {
                            short = true;
                            return;
                        }
                    }
                } else if c.bound {
                    let Some(st) = fabric.stack(p) else { return };
                    st.dirty = true;
                    let s = st.tcp(c.sock);
                    if s.is_open() {
                        s.abort();
                    }
                    if s.listen(tcp).is_err() {
                        return;
                    }
                } else {
                    let Some(st) = fabric.stack_or_start(p) else { return };
                    match st.listen(tcp, SOCK_RX, SOCK_TX) {
                        Some(h) => c.sock = h,
                        None => {
                            short = true;
                            return;
                        }
                    }
                }
                c.bound = true;
                c.active = true;
                c.retire = false;
                c.port = p;
                c.lport = tcp;
                c.phase = Phase::Idle;
                c.epoch = c.epoch.wrapping_add(1);
                opened += 1;
            }
        });
        if short && !*short_warned {
            *short_warned = true;
            defmt::warn!(
                "hart {=usize}: nvmf target: not every listening socket could open (at most {=usize} per core: fewer TCP ports or subsystems per port)",
                *hart, MAX_CONNS
            );
        }
        opened
    }

    /// After a new live table: connections of a subsystem that is gone
    /// or no longer listens where they came in close (FIN, after what
    /// is queued; their controllers are freed, so their I/O queues on
    /// other cores close too); listening sockets no listen point wants
    /// any more are closed and their connections freed.
    fn close_stale(&mut self, fabric: &mut crate::nvmf::initiator::Fabric, pool: &mut Pool, now: u64) {
        let Target { conns, live, slots, hart, .. } = self;
        let Some(conns) = conns.as_deref_mut() else { return };
        let mut want: [(u8, u16); 48] = [(0, 0); 48];
        let mut n = 0;
        listen_points(live, |p, tcp, _| {
            if n < want.len() {
                want[n] = (p as u8, tcp);
                n += 1;
            }
        });
        for c in conns.iter_mut().filter(|c| c.active) {
            let Some(stack) = fabric.stack(c.port) else { continue };
            let wanted = want[..n].contains(&(c.port as u8, c.lport));
            let gone = c.qid.is_some() && c.subsys >= LIVE_BASE && c.subsys != DISCOVERY && live.get(c.subsys).is_none_or(|s| s.uid != c.uid || !s.listens(c.port, c.lport));
            match c.phase {
                Phase::Idle if !wanted => {
                    let s = c.tcp(stack);
                    if s.is_open() {
                        s.abort();
                    }
                    c.active = false;
                }
                Phase::Ic | Phase::Live if gone || !wanted => {
                    defmt::info!(
                        "hart {=usize}: nvmf target: closing a connection on TCP {=u16} (qid {=i32}): its subsystem or listener was removed",
                        *hart, c.lport, c.qid.map_or(-1, i32::from)
                    );
                    c.close_after(stack, pool, slots, now);
                    c.retire = !wanted;
                }
                Phase::Closing { .. } if !wanted => c.retire = true,
                _ => {}
            }
        }
    }

    /// A block I/O of the target (`tag` has [`TAG`]) finished.
    pub fn block_done(&mut self, pool: &mut Pool, tag: Tag, st: Status) {
        let k = usize::from(tag & !TAG);
        let Some(s) = self.slots.s.get_mut(k) else { return };
        if s.st != SlotSt::Block {
            return;
        }
        s.status = st;
        let (ci, epoch) = (usize::from(s.conn), s.epoch);
        match self.conns.as_deref_mut().and_then(|c| c.get_mut(ci)) {
            Some(c) if c.epoch == epoch => c.push_reply(pool, &mut self.slots, k),
            // Its connection is gone.
            _ => self.slots.release(pool, k),
        }
    }

    /// One pass: every connection's receive, submit, send. Returns work done.
    pub fn poll(&mut self, blk: &mut block::Stack, chan: &mut Channel) -> usize {
        let now = dpu_hal::csr::time();
        let mut work = 0;
        // Subsystems changed at run time: this core's copy, then its
        // connections and listening sockets follow (`super::live`).
        if tl::newer(&self.live) && tl::refresh(&mut self.live, &mut self.next, &mut self.scratch) {
            let (pool, fabric) = blk.parts();
            if let Some(fabric) = fabric {
                self.close_stale(fabric, pool, now);
                self.open_listeners(fabric);
                work += 1;
            }
        }
        let Target { conns, slots, hart, live, .. } = self;
        let Some(conns) = conns.as_deref_mut() else { return 0 };
        {
            let (pool, fabric) = blk.parts();
            let Some(fabric) = fabric else { return 0 };
            for (ci, c) in conns.iter_mut().enumerate().filter(|(_, c)| c.active) {
                let Some(stack) = fabric.stack(c.port) else { continue };
                work += c.pass(ci, stack, pool, slots, now, *hart, live);
            }
        }
        // Commands whose data is in: to the block layer.
        for i in 0..core::mem::take(&mut slots.nsubmit) {
            let k = usize::from(slots.submit[i]);
            let s = slots.s[k];
            if s.st != SlotSt::Submit {
                continue;
            }
            if conns.get(usize::from(s.conn)).is_none_or(|c| c.epoch != s.epoch) {
                slots.release(&mut blk.pool, k);
                continue;
            }
            // A namespace removed since the command came in (NVMe Base
            // 2.0 §3.2.1.4: an inactive NSID) fails it.
            let boot = if s.subsys < LIVE_BASE { bootcfg::subsystem_namespace(s.subsys, s.nsid) } else { None };
            let run_time = if boot.is_none() { namespace_of(live, s.subsys, s.nsid) } else { None };
            if boot.is_none() && run_time.is_none() {
                slots.s[k].status = Status::INVALID_NAMESPACE;
                conns[usize::from(s.conn)].push_reply(&mut blk.pool, slots, k);
                continue;
            }
            slots.s[k].st = SlotSt::Block;
            let pages = s.pages;
            let data = if s.len > 0 { Data::Staged(&pages) } else { Data::None };
            let io = Io { op: s.op, lba: s.lba, blocks: s.blocks, len: s.len, data };
            match (boot, run_time) {
                (Some(ns), _) => blk.submit(chan, ns, TAG | k as Tag, &io),
                // A live subsystem's namespace: this core's copy.
                (None, Some(ns)) => blk.submit_plain(chan, &ns, TAG | k as Tag, &io),
                (None, None) => {}
            }
            work += 1;
        }
        work
    }

    /// When the target next needs a pass without an interrupt (keep-alive
    /// expiry, closing connections), in mtime ticks.
    pub fn deadline(&self) -> u64 {
        let mut t = u64::MAX;
        for c in self.conns.as_deref().into_iter().flatten() {
            match c.phase {
                Phase::Closing { at } => t = t.min(at),
                Phase::Live => {
                    if let Some(a) = &c.admin {
                        if a.kato_ms() > 0 {
                            t = t.min(c.last_cmd + u64::from(a.kato_ms()) * 1000 * US + 1);
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }
}

/// The finished CRC32C `crc` (0: none yet) continued over `b`: on the
/// hart's CRC32C engine (its copy channel, `dpu_rt::copy::crc32c`, as
/// the initiator side's digests run on the engine), on the core when it
/// has none.
fn crc_over(crc: u32, b: &[u8]) -> u32 {
    dpu_rt::copy::crc32c(crc, b.as_ptr() as usize, b.len()).unwrap_or_else(|| {
        let mut c = Crc32c::resume(crc);
        c.update(b);
        c.finish()
    })
}

/// Room in a socket's send buffer.
fn room(s: &tcp::Socket) -> usize {
    if !s.may_send() {
        return 0;
    }
    s.send_capacity() - s.send_queue()
}

impl Conn {
    fn tcp<'a>(&self, stack: &'a mut Stack) -> &'a mut tcp::Socket<'static> {
        stack.dirty = true;
        stack.tcp(self.sock)
    }

    /// Back to listening: frees its controller (admin queue) and its
    /// commands (those in the block layer are freed when they finish).
    fn reset(&mut self, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, why: &str, hart: usize) {
        if self.phase != Phase::Idle {
            let c = &slots.stats;
            defmt::info!(
                "hart {=usize}: nvmf target: connection on TCP {=u16} qid {=i32} closed: {=str} (core: {=u64} connections, {=u64} commands, {=u64} reads, {=u64} writes, {=u64} errors, {=u64} R2Ts, {=u64} H2CData)",
                hart, self.lport, self.qid.map_or(-1, i32::from), why, c.connections, c.commands, c.reads, c.writes, c.errors, c.r2ts, c.h2c_pdus
            );
        }
        self.reset_keep_socket(pool, slots);
        self.epoch = self.epoch.wrapping_add(1);
        self.phase = Phase::Idle;
        self.rx = Rx::Header;
        self.hgot = 0;
        self.rxcfg = RxConfig::awaiting_ic(Role::Controller);
        self.txcfg = TxConfig::PLAIN;
        self.sqsize = 0;
        self.sqhd = 0;
        self.sq_flow_off = false;
        self.fifo.clear();
        self.r2tq.clear();
        let s = self.tcp(stack);
        if s.is_open() {
            s.abort();
        }
        let _ = s.listen(self.lport);
    }

    /// Sends a C2HTermReq for `e` (with the offending header) and closes.
    fn terminate(&mut self, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, fes: Fes, fei: u32, now: u64, hart: usize) {
        slots.stats.term_reqs += 1;
        defmt::warn!("hart {=usize}: nvmf target: fatal transport error (FES {=u16:#x}, FEI {=u32}); closing the connection", hart, fes as u16, fei);
        let mut b = [0u8; 24 + 128];
        let hg = self.hgot.min(self.hdr.len());
        let n = TermReq::new(fes, fei).emit_with_data(false, &self.hdr[..hg], &mut b).unwrap_or(0);
        let ep = self.epoch;
        self.reset_keep_socket(pool, slots);
        self.epoch = ep.wrapping_add(1);
        let s = self.tcp(stack);
        if n > 0 && room(s) >= n {
            let _ = s.send_slice(&b[..n]);
        }
        s.close();
        self.phase = Phase::Closing { at: now + CLOSE_GRACE };
    }

    /// Closes the connection after what is queued to send (Disconnect):
    /// frees its state at once, like [`Conn::terminate`] without a TermReq.
    fn close_after(&mut self, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, now: u64) {
        let ep = self.epoch;
        self.reset_keep_socket(pool, slots);
        self.epoch = ep.wrapping_add(1);
        self.rx = Rx::Header;
        self.hgot = 0;
        self.tcp(stack).close();
        self.phase = Phase::Closing { at: now + CLOSE_GRACE };
    }

    /// Frees the connection's state but keeps the socket (closing).
    fn reset_keep_socket(&mut self, pool: &mut Pool, slots: &mut Slots) {
        if let (Some((i, _)), Some(_)) = (self.ctrl, self.admin.as_ref()) {
            ctrl_bump(i, false);
        }
        while let Some(k) = self.fifo.pop() {
            slots.release(pool, k);
        }
        if let Some(k) = self.cur_slot.take() {
            if slots.s[usize::from(k)].st == SlotSt::Receiving {
                slots.release(pool, usize::from(k));
            }
        }
        // Writes waiting for their R2T or H2CData (in no FIFO).
        self.r2tq.clear();
        for k in 0..MAXCMD {
            let s = &slots.s[k];
            if matches!(s.st, SlotSt::R2tQueued | SlotSt::H2c) && s.conn == self.idx && s.epoch == self.epoch {
                slots.release(pool, k);
            }
        }
        self.ctrl = None;
        self.admin = None;
        self.qid = None;
        self.pdu = None;
    }

    /// One connection's pass.
    #[allow(clippy::too_many_arguments)]
    fn pass(&mut self, ci: usize, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, now: u64, hart: usize, live: &LiveTable) -> usize {
        let state = stack.tcp(self.sock).state();
        match self.phase {
            Phase::Closing { at } => {
                if matches!(state, tcp::State::Closed | tcp::State::TimeWait) || now >= at {
                    self.reset(stack, pool, slots, "closed after a transport error, a Disconnect or a removal", hart);
                    if self.retire {
                        // Its listener was removed: free for another.
                        let s = self.tcp(stack);
                        if s.is_open() {
                            s.abort();
                        }
                        self.retire = false;
                        self.active = false;
                    }
                    return 1;
                }
                return 0;
            }
            Phase::Idle => {
                match state {
                    tcp::State::Established => {
                        slots.stats.connections += 1;
                        self.phase = Phase::Ic;
                        self.last_cmd = now;
                    }
                    tcp::State::Listen | tcp::State::SynReceived => return 0,
                    _ => {
                        // Closed (or a half-open leftover): listen again.
                        let s = self.tcp(stack);
                        if s.is_open() {
                            s.abort();
                        }
                        let _ = s.listen(self.lport);
                        return 0;
                    }
                }
            }
            Phase::Ic | Phase::Live => {
                if state != tcp::State::Established {
                    self.reset(stack, pool, slots, "closed by the host", hart);
                    return 1;
                }
            }
        }
        // Keep Alive (admin queue) and controller lifetime (I/O queues).
        if let Some((i, g)) = self.ctrl {
            if let Some(a) = &self.admin {
                if a.kato_ms() > 0 && now > self.last_cmd + u64::from(a.kato_ms()) * 1000 * US {
                    slots.stats.kato_expired += 1;
                    self.reset(stack, pool, slots, "keep alive timeout", hart);
                    return 1;
                }
            } else if !ctrl_current(i, g) {
                self.reset(stack, pool, slots, "its controller is gone", hart);
                return 1;
            }
        }
        let mut work = self.async_events(stack);
        // Receive as far as resources allow.
        for _ in 0..64 {
            match self.receive(ci, stack, pool, slots, now, hart, live) {
                Ok(true) => work += 1,
                Ok(false) => break,
                Err((fes, fei)) => {
                    self.terminate(stack, pool, slots, fes, fei, now, hart);
                    return work + 1;
                }
            }
        }
        work + self.send(stack, pool, slots)
    }

    /// One receive step; Ok(false) when it must wait.
    #[allow(clippy::too_many_arguments)]
    fn receive(&mut self, ci: usize, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, now: u64, hart: usize, live: &LiveTable) -> Result<bool, (Fes, u32)> {
        match self.rx {
            Rx::Header => {
                let s = self.tcp(stack);
                let want = if self.hgot < pdu::CH_LEN {
                    pdu::CH_LEN
                } else {
                    pdu::header_total_len(&self.hdr[..self.hgot], &self.rxcfg).map_err(err_of)?
                };
                if want > self.hdr.len() {
                    return Err((Fes::InvalidHeaderField, pdu::offset::HLEN));
                }
                if self.hgot < want {
                    let n = s.recv_slice(&mut self.hdr[self.hgot..want]).unwrap_or(0);
                    self.hgot += n;
                    if self.hgot < want {
                        return Ok(n > 0);
                    }
                    if self.hgot == pdu::CH_LEN {
                        return Ok(true); // now the full header length is known
                    }
                }
                let r = pdu::parse_header(&self.hdr[..self.hgot], &self.rxcfg).map_err(err_of)?;
                self.pdu = Some(r);
                self.rx = Rx::Parsed;
                Ok(true)
            }
            Rx::Parsed => self.start_body(ci, pool, slots, live),
            Rx::Body { skip, left, off, tail, dest } => {
                let s = self.tcp(stack);
                if skip > 0 {
                    let mut junk = [0u8; 128];
                    let n = s.recv_slice(&mut junk[..(skip as usize).min(128)]).unwrap_or(0) as u32;
                    self.rx = Rx::Body { skip: skip - n, left, off, tail, dest };
                    return Ok(n > 0);
                }
                if left > 0 {
                    // With a data digest (`tail`), the CRC32C runs over the
                    // bytes where they landed.
                    let digest = tail > 0;
                    let mut crc = self.rx_crc;
                    let n = match dest {
                        Dest::Small => {
                            let b = &mut self.small[off as usize..(off + left) as usize];
                            let n = s.recv_slice(b).unwrap_or(0);
                            if digest {
                                crc = crc_over(crc, &b[..n]);
                            }
                            n
                        }
                        Dest::Discard => {
                            let mut junk = [0u8; 512];
                            let n = s.recv_slice(&mut junk[..(left as usize).min(512)]).unwrap_or(0);
                            if digest {
                                crc = crc_over(crc, &junk[..n]);
                            }
                            n
                        }
                        Dest::Slot(k) => {
                            // Straight into the staging page (a DMA copy
                            // for 512 bytes or more).
                            let p = &slots.s[usize::from(k)].pages;
                            let (page, at) = (p.page(off as usize / PAGE), off as usize % PAGE);
                            let take = (PAGE - at).min(left as usize);
                            let buf = pool.bytes_mut(page);
                            let n = s.recv_slice(&mut buf[at..at + take]).unwrap_or(0);
                            if digest {
                                crc = crc_over(crc, &buf[at..at + n]);
                            }
                            n
                        }
                    } as u32;
                    self.rx_crc = crc;
                    self.rx = Rx::Body { skip, left: left - n, off: off + n, tail, dest };
                    return Ok(n > 0);
                }
                if tail > 0 {
                    // DDGST (NVMe/TCP 1.0 §3.6.1): checked when complete.
                    let n = s.recv_slice(&mut self.ddgst[4 - tail as usize..4]).unwrap_or(0) as u32;
                    self.rx = Rx::Body { skip, left, off, tail: tail - n, dest };
                    if n == tail && dpu_nvme_tcp::digest::from_wire(self.ddgst) != self.rx_crc {
                        slots.stats.ddgst_errors += 1;
                        self.ddgst_bad = true;
                    }
                    return Ok(n > 0);
                }
                self.rx = Rx::Complete;
                Ok(true)
            }
            Rx::Complete => self.complete(stack, pool, slots, now, hart, live),
        }
    }

    /// A parsed header: decide where its data goes (taking a command
    /// slot and staging pages for I/O), or answer at once.
    fn start_body(&mut self, ci: usize, pool: &mut Pool, slots: &mut Slots, live: &LiveTable) -> Result<bool, (Fes, u32)> {
        let Some(r) = self.pdu else { return Err((Fes::SequenceError, 0)) };
        self.rx_crc = 0;
        self.ddgst_bad = false;
        let (skip, len, tail) = r.data.map_or((0, 0, 0), |d| (d.pad_before, d.len, if d.ddgst { 4 } else { 0 }));
        let body = |dest| Rx::Body { skip, left: len, off: 0, tail, dest };
        match r.pdu {
            Pdu::IcReq(_) | Pdu::H2cTermReq(_) => {
                self.rx = body(Dest::Discard);
                Ok(true)
            }
            Pdu::H2cData(h) => {
                // Data for an R2T of this connection: TTAG names its slot.
                let k = usize::from(h.ttag);
                let w = slots.s.get(k).filter(|s| s.st == SlotSt::H2c && usize::from(s.conn) == ci && s.epoch == self.epoch).map(|s| t::R2tWindow { cccid: s.cid, ttag: h.ttag, r2to: 0, r2tl: s.len, got: s.got });
                t::R2tWindow::check(w.as_ref(), &h, MAXH2CDATA)?;
                slots.stats.h2c_pdus += 1;
                self.rx = Rx::Body { skip, left: len, off: h.datao, tail, dest: Dest::Slot(k as u8) };
                Ok(true)
            }
            Pdu::CapsuleCmd(c) => {
                let sqe = Sqe(c.sqe);
                if self.qid.is_none_or(|q| q == 0) || sqe.opcode() == t::opc::FABRICS {
                    // Connect, admin and fabrics commands: data into `small`.
                    self.small_len = len as usize;
                    self.rx = body(if len as usize <= SMALL { Dest::Small } else { Dest::Discard });
                    return Ok(true);
                }
                // An I/O command: a slot, and pages for its data.
                let Some(k) = slots.alloc() else { return Ok(false) };
                let subsys = self.subsys;
                let geometry = |nsid| namespace_of(live, subsys, nsid).map(|n| dpu_nvme::io::Geometry { blocks: n.geometry.blocks, lba_shift: n.geometry.block_shift });
                let mut slot = Slot { st: SlotSt::Receiving, conn: ci as u8, epoch: self.epoch, cid: sqe.cid(), sqhd: self.next_sqhd(), sqid: self.qid.unwrap_or(0), subsys, ..Slot::FREE };
                let mut dest = Dest::Discard;
                let decoded = match dpu_nvme::io::decode(&sqe, geometry) {
                    Ok(io) => {
                        let op = io.op;
                        let sends = matches!(op, dpu_nvme::io::Op::Write | dpu_nvme::io::Op::Compare | dpu_nvme::io::Op::Dsm { .. });
                        let d = match op {
                            dpu_nvme::io::Op::Dsm { .. } => t::check_dsm_sgl(&sqe, io.data_len, INLINE_MAX),
                            _ => t::check_io_sgl(&sqe, io.data_len, sends, INLINE_MAX),
                        };
                        d.map(|d| (io, op, d, sends))
                    }
                    Err(e) => Err(e),
                };
                // In-capsule data bytes the SGL describes (DSM's may be
                // more than its ranges).
                let mut inlen = 0u32;
                match decoded {
                    Ok((io, op, dptr, sends)) => {
                        if let Dptr::InCapsule { len: l, .. } = dptr {
                            inlen = l;
                        }
                        // The same block operations as the PCIe engine's
                        // (`nvme::io`): Compare and Dataset Management too.
                        slot.op = match op {
                            dpu_nvme::io::Op::Read => block::Op::Read,
                            dpu_nvme::io::Op::Write => block::Op::Write,
                            dpu_nvme::io::Op::WriteZeroes => block::Op::WriteZeroes,
                            dpu_nvme::io::Op::Compare => block::Op::Compare,
                            dpu_nvme::io::Op::Dsm { ranges, .. } => block::Op::Dsm { nr0: (ranges - 1) as u8, attributes: sqe.cdw11() },
                            dpu_nvme::io::Op::Flush => block::Op::Flush,
                        };
                        slot.nsid = io.nsid;
                        slot.lba = io.slba;
                        slot.blocks = io.nlb;
                        slot.len = io.data_len;
                        if io.data_len > 0 {
                            match pool.alloc(io.data_len.max(inlen) as usize) {
                                Some(p) => slot.pages = p,
                                None => {
                                    slots.release(pool, k);
                                    return Ok(false);
                                }
                            }
                        }
                        if sends {
                            match dptr {
                                // Data by R2T/H2CData (NVMe/TCP 1.0 §3.3.2.2).
                                Dptr::Transport { .. } => slot.r2t = true,
                                _ => dest = Dest::Slot(k as u8),
                            }
                        }
                        if op == dpu_nvme::io::Op::Flush && io.nsid == 0xffff_ffff {
                            // Flush of every namespace: RAM and the SSDs' own.
                            slot.status = Status::SUCCESS;
                            slot.len = u32::MAX; // answered without the block layer
                        }
                    }
                    Err(st) => {
                        slot.status = st;
                        slot.len = u32::MAX;
                    }
                }
                slots.s[k] = slot;
                slots.stats.commands += 1;
                self.cur_slot = Some(k as u8);
                self.rx = body(if dest == Dest::Slot(k as u8) && len != inlen { Dest::Discard } else { dest });
                if (dest == Dest::Slot(k as u8) && len != inlen) || (slot.r2t && len != 0) {
                    // In-capsule data not matching the command (already
                    // refused by check_io_sgl), or data in the capsule of
                    // a command whose SGL says R2T: keep the stream in step.
                    slots.s[k].status = Status::DATA_SGL_LENGTH_INVALID;
                    slots.s[k].len = u32::MAX;
                    slots.s[k].r2t = false;
                }
                Ok(true)
            }
            // Controller-to-host types never parse on our side.
            _ => Err((Fes::InvalidHeaderField, 0)),
        }
    }

    /// The SQ head to report in the next CQE (0 when SQ flow control is
    /// disabled: the field is not reported).
    fn next_sqhd(&mut self) -> u16 {
        self.sqhd = if self.sqsize == 0 { 0 } else { (self.sqhd + 1) % (self.sqsize + 1) };
        if self.sq_flow_off {
            0
        } else {
            self.sqhd
        }
    }

    /// A whole PDU is in: handle it. Ok(false): no room to answer yet.
    fn complete(&mut self, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots, now: u64, hart: usize, live: &LiveTable) -> Result<bool, (Fes, u32)> {
        let Some(r) = self.pdu else { return Err((Fes::SequenceError, 0)) };
        match r.pdu {
            Pdu::IcReq(req) => {
                let s = self.tcp(stack);
                if room(s) < 128 {
                    return Ok(false);
                }
                let resp = t::answer_icreq(&req, true, true, MAXH2CDATA);
                let mut b = [0u8; 128];
                let n = Pdu::IcResp(resp).emit(0, &TxConfig::PLAIN, &mut b).map_err(|_| (Fes::InvalidHeaderField, 0))?;
                let _ = s.send_slice(&b[..n]);
                let d = Digests { header: resp.hdgst, data: resp.ddgst };
                self.rxcfg = RxConfig::established(Role::Controller, d, 0);
                self.txcfg = TxConfig { digests: d, pda: req.hpda };
                self.phase = Phase::Live;
            }
            Pdu::H2cTermReq(tr) => {
                defmt::warn!("hart {=usize}: nvmf target: the host terminated the connection (FES {=u16:#x})", hart, tr.fes);
                self.reset(stack, pool, slots, "H2CTermReq", hart);
                return Ok(false);
            }
            Pdu::CapsuleCmd(c) => {
                let sqe = Sqe(c.sqe);
                if let Some(k) = self.cur_slot {
                    // An I/O command: to the block layer, or answered now.
                    self.cur_slot = None;
                    let k = usize::from(k);
                    if self.ddgst_bad {
                        // In-capsule data digest error: the command ends
                        // with Transient Transport Error, the connection
                        // stays (as SPDK's target does).
                        slots.s[k].status = Status::TRANSIENT_TRANSPORT_ERROR;
                        slots.s[k].len = u32::MAX;
                        slots.s[k].r2t = false;
                    }
                    if slots.s[k].len == u32::MAX {
                        slots.s[k].len = 0;
                        slots.s[k].st = SlotSt::Block;
                        if !slots.s[k].status.is_success() {
                            slots.stats.errors += 1;
                        }
                        self.push_reply(pool, slots, k);
                    } else if slots.s[k].r2t {
                        // Ask for the data (one R2T for all of it; the
                        // host splits it by MAXH2CDATA).
                        slots.s[k].st = SlotSt::R2tQueued;
                        // A slot is in one queue at most: never full.
                        let _ = self.r2tq.push(k);
                    } else {
                        slots.s[k].st = SlotSt::Submit;
                        slots.submit[slots.nsubmit] = k as u8;
                        slots.nsubmit += 1;
                    }
                } else if self.qid.is_some() && sqe.opcode() == t::opc::FABRICS && FcType::of(&sqe) == Some(FcType::Disconnect) {
                    // Disconnect (NVMe Base 2.0 §6.4, FCTYPE 08h): complete
                    // it, then close this queue's connection; on the admin
                    // queue that frees the controller (its I/O queues see
                    // it gone and close too).
                    if room(self.tcp(stack)) < 256 {
                        return Ok(false);
                    }
                    let sqhd = self.next_sqhd();
                    let cqe = Cqe { dw0: 0, dw1: 0, sq_head: sqhd, sq_id: self.qid.unwrap_or(0), cid: sqe.cid(), status: Status::SUCCESS };
                    self.send_resp(stack, cqe, 0);
                    slots.stats.disconnects += 1;
                    defmt::info!("hart {=usize}: nvmf target: Disconnect on qid {=u16}", hart, self.qid.unwrap_or(0));
                    self.close_after(stack, pool, slots, now);
                    return Ok(false);
                } else if self.ddgst_bad {
                    if room(self.tcp(stack)) < 256 {
                        return Ok(false);
                    }
                    let sqhd = if self.qid.is_some() { self.next_sqhd() } else { 0 };
                    let cqe = Cqe { dw0: 0, dw1: 0, sq_head: sqhd, sq_id: self.qid.unwrap_or(0), cid: sqe.cid(), status: Status::TRANSIENT_TRANSPORT_ERROR };
                    self.send_resp(stack, cqe, 0);
                } else if !self.admin_or_connect(stack, &sqe, now, hart, live)? {
                    return Ok(false);
                }
            }
            Pdu::H2cData(h) => {
                // Checked against its R2T in `start_body`.
                let k = usize::from(h.ttag);
                let s = &mut slots.s[k];
                s.got += h.datal;
                if self.ddgst_bad {
                    // The rest of the R2T's data still comes; then the
                    // command ends with Transient Transport Error.
                    s.status = Status::TRANSIENT_TRANSPORT_ERROR;
                }
                if s.got == s.len {
                    if s.status.is_success() {
                        s.st = SlotSt::Submit;
                        slots.submit[slots.nsubmit] = k as u8;
                        slots.nsubmit += 1;
                    } else {
                        self.push_reply(pool, slots, k);
                    }
                }
            }
            _ => return Err((Fes::SequenceError, 0)),
        }
        self.rx = Rx::Header;
        self.hgot = 0;
        self.pdu = None;
        Ok(true)
    }

    fn push_reply(&mut self, pool: &mut Pool, slots: &mut Slots, k: usize) {
        if self.fifo.push(k) {
            slots.s[k].st = SlotSt::Reply;
        } else {
            slots.release(pool, k);
        }
    }

    /// Connect, fabrics and admin commands (answered at once). Ok(false):
    /// no room in the send buffer for the answer yet.
    fn admin_or_connect(&mut self, stack: &mut Stack, sqe: &Sqe, now: u64, hart: usize, live: &LiveTable) -> Result<bool, (Fes, u32)> {
        // Room for the largest answer: 4 KiB of C2HData (a discovery
        // log read: up to its MDTS) with header, digest, padding to the
        // host's HPDA, and a CapsuleResp.
        let largest = if self.admin.is_some() && self.subsys == DISCOVERY { disc::MAX_LOG_READ as usize } else { 4096 };
        if room(self.tcp(stack)) < largest + 256 {
            return Ok(false);
        }
        let cid = sqe.cid();
        let connect = FcType::of(sqe) == Some(FcType::Connect);
        if connect && self.qid.is_none() {
            let sq_id = u16::from_le_bytes([sqe.0[42], sqe.0[43]]);
            let data = &self.small[..self.small_len.min(SMALL)];
            let r = t::check_connect(
                sqe,
                data,
                t::MQES,
                |n| find_subsys(live, n.as_bytes()).map(usize::from),
                |s, h| subsys_allows(live, s as u8, h.as_bytes()),
            );
            let resp = match r {
                Ok(Connect::Admin { subsys, sqsize, kato_ms, hostnqn, .. }) => match ctrl_alloc(subsys as u8, hostnqn) {
                    Some((i, g)) => {
                        self.qid = Some(0);
                        self.sqsize = sqsize;
                        self.subsys = subsys as u8;
                        self.uid = live.get(subsys as u8).map_or(0, |l| l.uid);
                        self.ctrl = Some((i, g));
                        self.admin = Some(AdminState::new(kato_ms));
                        // Changes before the controller are not news to it.
                        self.ns_seen = NS_FEEDS.get(subsys).map_or(0, |f| f.generation());
                        self.last_cmd = now;
                        defmt::info!("hart {=usize}: nvmf target: controller {=usize} of subsystem {=usize} for {=str} (KATO {=u32} ms)", hart, i + 1, subsys, hostnqn, kato_ms);
                        ConnectResponse::Accepted { cntlid: (i + 1) as u16, authreq: 0 }
                    }
                    None => ConnectResponse::Failed(cstatus::CONTROLLER_BUSY),
                },
                Ok(Connect::Discovery { sqsize, kato_ms, hostnqn, .. }) => match ctrl_alloc(DISCOVERY, hostnqn) {
                    Some((i, g)) => {
                        self.qid = Some(0);
                        self.sqsize = sqsize;
                        self.subsys = DISCOVERY;
                        self.visible = visible_offers(live, hostnqn.as_bytes());
                        self.ctrl = Some((i, g));
                        self.admin = Some(AdminState::new(kato_ms));
                        self.last_cmd = now;
                        defmt::info!("hart {=usize}: nvmf target: discovery controller {=usize} for {=str} (KATO {=u32} ms)", hart, i + 1, hostnqn, kato_ms);
                        ConnectResponse::Accepted { cntlid: (i + 1) as u16, authreq: 0 }
                    }
                    None => ConnectResponse::Failed(cstatus::CONTROLLER_BUSY),
                },
                Ok(Connect::Io { subsys, qid, sqsize, cntlid, hostnqn, .. }) => {
                    let i = usize::from(cntlid) - 1;
                    let c = CTRLS.get(i);
                    let st = c.map_or(0, |c| c.state.load(Ordering::Acquire));
                    let info = c.map_or(0, |c| c.info.load(Ordering::Acquire));
                    let ok = st & 1 == 1 && info & 0xff == subsys as u32 && c.is_some_and(|c| c.host.load(Ordering::Acquire) == fnv(hostnqn.as_bytes()));
                    if !ok {
                        ConnectResponse::InvalidParameter { in_data: true, offset: dpu_nvme_tcp::fabrics::connect::offset::DATA_CNTLID }
                    } else if info & 0x100 == 0 {
                        ConnectResponse::Failed(Status::COMMAND_SEQUENCE_ERROR)
                    } else {
                        self.qid = Some(qid);
                        self.sqsize = sqsize;
                        self.subsys = subsys as u8;
                        self.uid = live.get(subsys as u8).map_or(0, |l| l.uid);
                        self.ctrl = Some((i, st >> 1));
                        ConnectResponse::Accepted { cntlid, authreq: 0 }
                    }
                }
                Err(r) => {
                    defmt::warn!("hart {=usize}: nvmf target: Connect refused (status {=u16:#x})", hart, r.status().field());
                    r
                }
            };
            // SQ flow control disabled as asked: the response's SQHD is
            // FFFFh (as Linux nvmet's `nvmet_install_queue` answers).
            let sq_flow_off = matches!(resp, ConnectResponse::Accepted { .. }) && sqe.0[46] & CATTR_DISABLE_SQ_FLOW_CONTROL != 0;
            self.sq_flow_off = sq_flow_off;
            self.send_resp(stack, resp.to_cqe(cid, sq_id, if sq_flow_off { 0xffff } else { 0 }), 0);
            return Ok(true);
        }
        let sqhd = self.next_sqhd();
        let qid = self.qid.unwrap_or(0);
        let Some(st) = self.admin.as_mut() else {
            // Before Connect, or a fabrics command on an I/O queue.
            let status = if self.qid.is_none() { Status::COMMAND_SEQUENCE_ERROR } else { Status::INVALID_OPCODE };
            self.send_resp(stack, Cqe { dw0: 0, dw1: 0, sq_head: sqhd, sq_id: qid, cid, status }, 0);
            return Ok(true);
        };
        self.last_cmd = now;
        let Some((ci, _)) = self.ctrl else { return Ok(true) };
        if self.subsys == DISCOVERY {
            self.discovery_command(stack, sqe, sqhd, ci, live);
            return Ok(true);
        }
        let s = self.subsys;
        let nqn = core::str::from_utf8(subsys_nqn(live, s)).unwrap_or("");
        let mut serial = *b"DPUTGT-S0-C00";
        serial[8] = b'0' + s % 10;
        serial[11] = b'0' + ((ci + 1) / 10 % 10) as u8;
        serial[12] = b'0' + ((ci + 1) % 10) as u8;
        // A live subsystem's own SN and MN (`nvmf_create_subsystem`).
        let own = live.get(s);
        let id = t::Identity {
            subnqn: nqn,
            serial: own.map(|l| l.serial.as_str()).filter(|x| !x.is_empty()).unwrap_or(core::str::from_utf8(&serial[..9]).unwrap_or("DPUTGT")),
            model: own.map(|l| l.model.as_str()).filter(|x| !x.is_empty()).unwrap_or(MODEL),
            firmware: "0.1.0",
            cntlid: (ci + 1) as u16,
            ioccsz_bytes: 64 + INLINE_MAX,
            namespaces: subsys_namespaces(live, s),
        };
        let was = st.props.ready();
        let reply = t::admin_command(st, &id, sqe, &|n| ns_info(live, s, n), &mut self.out);
        if let AdminReply::Complete { status, .. } = reply {
            if !status.is_success() {
                st.ctrl.record_error(0, cid, status, sqe.nsid());
            }
        }
        let ready = st.props.ready();
        if was != ready {
            ctrl_set_enabled(ci, ready);
        }
        match reply {
            AdminReply::Complete { status, dw0, dw1, data_len } => {
                self.send_resp(stack, Cqe { dw0, dw1, sq_head: sqhd, sq_id: qid, cid, status }, data_len);
            }
            AdminReply::Held => {}
            AdminReply::Reset => {
                // CC.EN 1 -> 0: the I/O queues go (their generation ends).
                let g = ctrl_bump(ci, true);
                self.ctrl = Some((ci, g));
                ctrl_set_enabled(ci, false);
                self.send_resp(stack, Cqe { dw0: 0, dw1: 0, sq_head: sqhd, sq_id: qid, cid, status: Status::SUCCESS }, 0);
            }
        }
        Ok(true)
    }

    /// Asynchronous events of an I/O controller's admin queue: namespace
    /// changes of its subsystem since its last look become a Namespace
    /// Attribute Changed event; a held AER that an event (or an Abort)
    /// completes is answered with a CapsuleResp while the socket has room.
    fn async_events(&mut self, stack: &mut Stack) -> usize {
        if self.phase != Phase::Live || self.subsys == DISCOVERY {
            return 0;
        }
        let Some(st) = self.admin.as_mut() else { return 0 };
        if let Some(feed) = NS_FEEDS.get(usize::from(self.subsys)) {
            if feed.collect(&mut self.ns_seen, &mut st.ctrl.changed) {
                st.ctrl.queue_event(Event::NAMESPACE_ATTRIBUTE_CHANGED);
            }
        }
        let mut work = 0;
        while self.admin.as_ref().is_some_and(|a| a.ctrl.completion_due()) && room(self.tcp(stack)) >= 256 {
            let Some(c) = self.admin.as_mut().and_then(|a| a.ctrl.next_completion()) else { break };
            let sq_head = if self.sq_flow_off { 0 } else { self.sqhd };
            let cqe = Cqe { dw0: c.dw0, dw1: 0, sq_head, sq_id: 0, cid: c.cid, status: c.status };
            self.send_resp(stack, cqe, 0);
            work += 1;
        }
        work
    }

    /// An admin command of a discovery controller (`dpu_nvme_tcp::target::
    /// discovery`; the caller checked the room for its largest answer).
    fn discovery_command(&mut self, stack: &mut Stack, sqe: &Sqe, sqhd: u16, ci: usize, live: &LiveTable) {
        let Some(st) = self.admin.as_mut() else { return };
        let cid = sqe.cid();
        let mut serial = *b"DPUDISC-C00";
        serial[9] = b'0' + ((ci + 1) / 10 % 10) as u8;
        serial[10] = b'0' + ((ci + 1) % 10) as u8;
        let id = t::Identity {
            subnqn: dpu_nvme_tcp::DISCOVERY_NQN,
            serial: core::str::from_utf8(&serial).unwrap_or("DPUDISC"),
            model: "DPU NVMe/TCP discovery",
            firmware: "0.1.0",
            cntlid: (ci + 1) as u16,
            ioccsz_bytes: 64,
            namespaces: 0,
        };
        let was = st.props.ready();
        let reply = disc::discovery_command(st, &id, sqe, &mut self.out);
        if st.props.ready() != was {
            ctrl_set_enabled(ci, !was);
        }
        let cqe = |status| Cqe { dw0: 0, dw1: 0, sq_head: sqhd, sq_id: 0, cid, status };
        match reply {
            DiscoveryReply::Admin(AdminReply::Complete { status, dw0, dw1, data_len }) => self.send_resp(stack, Cqe { dw0, dw1, ..cqe(status) }, data_len),
            DiscoveryReply::Admin(AdminReply::Held) => {}
            DiscoveryReply::Admin(AdminReply::Reset) => {
                let g = ctrl_bump(ci, true);
                self.ctrl = Some((ci, g));
                ctrl_set_enabled(ci, false);
                self.send_resp(stack, cqe(Status::SUCCESS), 0);
            }
            DiscoveryReply::Log { offset, len } => {
                // One C2HData of `len` bytes, rendered 4 KiB at a time
                // into the output page (the log is never held whole).
                let txcfg = self.txcfg;
                let visible = self.visible;
                let mut b = [0u8; 160];
                let s2 = self.tcp(stack);
                let n = Pdu::C2hData(C2hData { cccid: cid, datao: 0, datal: len, last: true, success: false }).emit(len, &txcfg, &mut b).unwrap_or(0);
                let _ = s2.send_slice(&b[..n]);
                let mut done = 0u32;
                let mut status = Status::SUCCESS;
                // One generation more per publication of the run-time
                // subsystems (versions are even, 0 before the first).
                let genctr = disc::GENCTR + u64::from(live.version / 2);
                while done < len {
                    let take = (len - done).min(4096) as usize;
                    let r = with_offers(live, |offers, ips| disc::log_page(genctr, offers, ips, |k| visible & (1 << k) != 0, t::MQES + 1, offset + u64::from(done), &mut self.out[..take]));
                    if r.is_err() {
                        // Too many entries for one log: zeroes, and the
                        // command fails (never seen with 8 subsystems).
                        self.out[..take].fill(0);
                        status = Status::INTERNAL_ERROR;
                    }
                    let _ = stack.tcp(self.sock).send_slice(&self.out[..take]);
                    done += take as u32;
                }
                let n = Pdu::CapsuleResp(CapsuleResp { cqe: cqe(status).bytes(false) }).emit(0, &txcfg, &mut b).unwrap_or(0);
                let _ = stack.tcp(self.sock).send_slice(&b[..n]);
            }
        }
    }

    /// Sends `data_len` bytes of `out` as one C2HData, then the CapsuleResp
    /// (the caller checked the room).
    fn send_resp(&mut self, stack: &mut Stack, cqe: Cqe, data_len: u32) {
        let txcfg = self.txcfg;
        let mut b = [0u8; 160];
        stack.dirty = true;
        let s2 = stack.tcp(self.sock);
        if data_len > 0 {
            let n = Pdu::C2hData(C2hData { cccid: cqe.cid, datao: 0, datal: data_len, last: true, success: false }).emit(data_len, &txcfg, &mut b).unwrap_or(0);
            let _ = s2.send_slice(&b[..n]);
            let _ = s2.send_slice(&self.out[..data_len as usize]);
            if txcfg.digests.data {
                let _ = s2.send_slice(&dpu_nvme_tcp::digest::to_wire(crc_over(0, &self.out[..data_len as usize])));
            }
        }
        let n = Pdu::CapsuleResp(CapsuleResp { cqe: cqe.bytes(false) }).emit(0, &txcfg, &mut b).unwrap_or(0);
        let _ = s2.send_slice(&b[..n]);
    }

    /// Answers completed I/O commands in order while the socket has room.
    fn send(&mut self, stack: &mut Stack, pool: &mut Pool, slots: &mut Slots) -> usize {
        let mut work = 0;
        let txcfg = self.txcfg;
        let hd = if txcfg.digests.header { 4 } else { 0 };
        // R2Ts (NVMe/TCP 1.0 §3.6.2.10): TTAG is the slot.
        while let Some(k) = self.r2tq.front() {
            let s = stack.tcp(self.sock);
            if room(s) < 24 + hd {
                break;
            }
            let sl = &mut slots.s[k];
            if sl.st == SlotSt::R2tQueued && sl.conn == self.idx && sl.epoch == self.epoch {
                let mut b = [0u8; 32];
                let n = Pdu::R2t(R2t { cccid: sl.cid, ttag: k as u16, r2to: 0, r2tl: sl.len }).emit(0, &txcfg, &mut b).unwrap_or(0);
                let _ = s.send_slice(&b[..n]);
                sl.st = SlotSt::H2c;
                slots.stats.r2ts += 1;
                stack.dirty = true;
            }
            self.r2tq.pop();
            work += 1;
        }
        while let Some(k) = self.fifo.front() {
            let sl = slots.s[k];
            let s = stack.tcp(self.sock);
            let mut b = [0u8; 160];
            if sl.op == block::Op::Read && sl.status.is_success() && sl.sent < sl.len {
                let free = room(s);
                let left = sl.len - sl.sent;
                let want = left.min(C2H_CHUNK);
                // Header, digests, padding to the host's HPDA (up to 128 B).
                let dd = if txcfg.digests.data { 4 } else { 0 };
                let overhead = 24 + hd + dd + 128;
                if free < overhead + (want as usize).min(4096) {
                    break;
                }
                let chunk = want.min((free - overhead) as u32 & !511);
                if chunk == 0 {
                    break;
                }
                let last = sl.sent + chunk == sl.len;
                // The last PDU of a successful read ends the command
                // when SQ flow control is off: no CapsuleResp follows.
                let success = last && self.sq_flow_off;
                let n = Pdu::C2hData(C2hData { cccid: sl.cid, datao: sl.sent, datal: chunk, last, success }).emit(chunk, &txcfg, &mut b).unwrap_or(0);
                let _ = s.send_slice(&b[..n]);
                // From the staging pages (a DMA copy per piece).
                let mut pos = sl.sent as usize;
                let end = pos + chunk as usize;
                let mut crc = 0;
                while pos < end {
                    let at = pos % PAGE;
                    let take = (PAGE - at).min(end - pos);
                    let piece = &pool.bytes(sl.pages.page(pos / PAGE), at + take)[at..at + take];
                    let _ = s.send_slice(piece);
                    if txcfg.digests.data {
                        crc = crc_over(crc, piece);
                    }
                    pos += take;
                }
                if txcfg.digests.data {
                    // DDGST over the PDU's data (NVMe/TCP 1.0 §3.6.1).
                    let _ = s.send_slice(&dpu_nvme_tcp::digest::to_wire(crc));
                }
                slots.s[k].sent += chunk;
                stack.dirty = true;
                work += 1;
                if success {
                    slots.stats.reads += 1;
                    self.fifo.pop();
                    slots.release(pool, k);
                }
                continue;
            }
            if room(s) < 24 + hd {
                break;
            }
            let cqe = Cqe { dw0: 0, dw1: 0, sq_head: sl.sqhd, sq_id: sl.sqid, cid: sl.cid, status: sl.status };
            let n = Pdu::CapsuleResp(CapsuleResp { cqe: cqe.bytes(false) }).emit(0, &txcfg, &mut b).unwrap_or(0);
            let _ = s.send_slice(&b[..n]);
            stack.dirty = true;
            if sl.status.is_success() {
                match sl.op {
                    block::Op::Read => slots.stats.reads += 1,
                    block::Op::Write => slots.stats.writes += 1,
                    _ => {}
                }
            } else {
                slots.stats.errors += 1;
            }
            self.fifo.pop();
            slots.release(pool, k);
            work += 1;
        }
        work
    }
}

fn err_of(e: pdu::PduError) -> (Fes, u32) {
    (e.fes().unwrap_or(Fes::InvalidHeaderField), e.fei())
}
