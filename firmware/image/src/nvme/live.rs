//! Namespaces attached and detached at run time through the management
//! API (`dpu_ns_attach` / `dpu_ns_detach`), on top of the boot
//! configuration's read-only table (which stays the initial version).
//!
//! No core shares a mutable table. The management server (network
//! service) decides a change and sends it to the admin service over
//! [`mgmt_ends`]; the admin service keeps its own [`Table`] (Identify,
//! the Changed Namespace List) and forwards the change to every I/O
//! engine (`ToEngine::Attach` / `ToEngine::Detach`), each of which keeps
//! its own copy and swaps it between commands. A detached namespace's
//! commands already in flight complete; each engine reports
//! `ToAdmin::Detached` once it holds none, and when every engine has,
//! the admin service answers [`Outcome::Drained`]: only then may the
//! management server map that (function, NSID) or its block device
//! again.

use dpu_ring::{Consumer, Producer, Ring};

pub use dpu_bootcfg::live::{LiveBackend, LiveNs, LiveTable as Table, MAX_LIVE};

/// Management server -> admin service.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    Attach(LiveNs),
    Detach { function: u16, nsid: u32 },
}

/// Admin service -> management server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every engine has been told (I/O to it is served from now on).
    Attached { function: u16, nsid: u32 },
    /// Not attached: the namespace ID is taken or the table is full (the
    /// management server checks both first; this keeps it from waiting
    /// forever if they ever disagree).
    Refused { function: u16, nsid: u32 },
    /// No engine holds a command of the detached namespace any more.
    Drained { function: u16, nsid: u32 },
}

pub const DEPTH: usize = 8;

static CHANGES: Ring<Change, DEPTH> = Ring::new();
static OUTCOMES: Ring<Outcome, DEPTH> = Ring::new();

/// The management server's ends.
pub fn mgmt_ends() -> Option<(Producer<'static, Change, DEPTH>, Consumer<'static, Outcome, DEPTH>)> {
    Some((CHANGES.producer()?, OUTCOMES.consumer()?))
}

/// The admin service's ends.
pub fn admin_ends() -> Option<(Consumer<'static, Change, DEPTH>, Producer<'static, Outcome, DEPTH>)> {
    Some((CHANGES.consumer()?, OUTCOMES.producer()?))
}
