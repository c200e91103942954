//! Messages between the admin service and the reactors' I/O engines, and
//! the rings that carry them (one pair per data-plane hart).

use dpu_hal::memory_map::HARTS;
use dpu_ring::{Consumer, Producer, Ring};

/// Admin service -> I/O engine.
#[derive(Clone, Copy, Debug)]
pub enum ToEngine {
    /// `tail`, `head`, `phase`: where the queue stands (a new queue: 0, 0,
    /// true; one handed over by the previous image: its record).
    CreateCq { func: u16, qid: u16, entries: u16, vector: u16, irq: bool, thr: u8, time: u8, addr: u64, tail: u16, head: u16, phase: bool },
    /// `head`: the next entry to fetch (0 for a new queue).
    CreateSq { func: u16, qid: u16, entries: u16, cqid: u16, addr: u64, head: u16 },
    /// Firmware activation without reset: stop fetching the commands of
    /// the functions in the mask (bit f of `lo` | `hi` << 64: function f;
    /// one message for all, whatever the number of VFs); once none of a
    /// function's is in flight, report every queue of it
    /// (`ToAdmin::Queue`), then `Done::Paused` (one per function).
    Pause { lo: u64, hi: u64 },
    /// The activation did not happen after all (the handover record
    /// could not be written): the functions in the mask fetch again.
    Unpause { lo: u64, hi: u64 },
    /// Re-read the doorbells of queue `qid` of `func` from the endpoint
    /// (handed-over queues: the host may have rung them while no core
    /// was listening).
    Resync { func: u16, qid: u16 },
    DeleteSq { func: u16, qid: u16 },
    DeleteCq { func: u16, qid: u16 },
    /// Drop every queue of the function once its commands have drained
    /// (controller reset / shutdown); no completions are posted for them.
    Reset { func: u16 },
    /// Abort command `cid` of SQ `sqid` if not started yet.
    Abort { func: u16, sqid: u16, cid: u16 },
    /// New interrupt coalescing settings for CQ `qid`.
    Coalesce { func: u16, qid: u16, thr: u8, time: u8 },
    /// A namespace attached at run time (`super::live`): served from the
    /// next command on.
    Attach { ns: super::live::LiveNs },
    /// Namespace `nsid` of `func` is detached: new commands to it fail
    /// (Invalid Namespace); answer `ToAdmin::Detached` once none of its
    /// commands is in flight.
    Detach { func: u16, nsid: u32 },
}

/// What an engine finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Done {
    CreateCq,
    CreateSq,
    DeleteSq,
    DeleteCq,
    Reset,
    Paused,
}

/// Errors an engine reports for the Asynchronous Event Request path
/// (NVMe Base 2.0 figure 150, error status events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum HostError {
    /// Write to a doorbell of a queue that does not exist (info 00h).
    InvalidDoorbell,
    /// Doorbell value out of range (info 01h).
    InvalidDoorbellValue,
}

/// I/O engine -> admin service.
#[derive(Clone, Copy, Debug)]
pub enum ToAdmin {
    Done { func: u16, what: Done, qid: u16 },
    AbortResult { func: u16, aborted: bool },
    Error { func: u16, kind: HostError, qid: u16 },
    /// No command of detached namespace `nsid` of `func` is in flight here.
    Detached { func: u16, nsid: u32 },
    /// A paused queue (`ToEngine::Pause`): its definition (`link`: a CQ's
    /// interrupt vector, an SQ's CQ; `irq`: a CQ's interrupts enabled) and
    /// where it stands (a CQ: `a` tail, `b` head, `phase`; an SQ: `a`
    /// head, `b` tail).
    Queue { func: u16, qid: u16, cq: bool, entries: u16, addr: u64, link: u16, irq: bool, a: u16, b: u16, phase: bool },
}

pub const DEPTH: usize = 32;

static TO_ENGINE: [Ring<ToEngine, DEPTH>; HARTS] = [const { Ring::new() }; HARTS];
static TO_ADMIN: [Ring<ToAdmin, DEPTH>; HARTS] = [const { Ring::new() }; HARTS];

/// Doorbell bit for "admin message waiting".
pub const DOORBELL_NVME: u64 = 1 << 3;

/// The admin service's ends of engine `hart`'s rings.
pub fn admin_ends(hart: usize) -> Option<(Producer<'static, ToEngine, DEPTH>, Consumer<'static, ToAdmin, DEPTH>)> {
    Some((TO_ENGINE[hart].producer()?, TO_ADMIN[hart].consumer()?))
}

/// Engine `hart`'s ends.
pub fn engine_ends(hart: usize) -> Option<(Consumer<'static, ToEngine, DEPTH>, Producer<'static, ToAdmin, DEPTH>)> {
    Some((TO_ENGINE[hart].consumer()?, TO_ADMIN[hart].producer()?))
}
