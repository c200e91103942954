//! The meeting point of the initiator model (run by network events) and
//! the host's async jobs (`crate::host::workload`): jobs queue I/Os here
//! and wait; the model takes them at its next poll, and wakes the job
//! when the controller answered.

use crate::net::nvmf_wire::Status;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// An I/O command a job asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    Read,
    Write,
    Flush,
    /// NVM Command Set 1.0 §3.2.1: the buffer goes to the controller like
    /// a Write's; it completes with Compare Failure if the media differs.
    Compare,
}

/// Where the association is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not asked to connect yet.
    Idle,
    /// Connecting, setting up the controller and the I/O queues.
    Starting,
    Ready,
    /// It could not be set up (why).
    Failed(String),
}

/// A namespace as Identify Namespace described it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsGeometry {
    pub nsid: u32,
    pub blocks: u64,
    pub block_size: u32,
}

/// Why an I/O failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The controller completed it with this status.
    Status(Status),
    /// The transport failed it (connection dropped, timeout, digest,
    /// queue not usable).
    Transport(String),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::Status(s) => write!(f, "status SCT {:#x} SC {:#04x}{}", s.sct, s.sc, if s.dnr { " DNR" } else { "" }),
            IoError::Transport(why) => write!(f, "transport: {why}"),
        }
    }
}

/// One queued I/O. `buf` holds the data to write, or receives the data
/// read.
pub struct Submission {
    pub id: u64,
    pub qid: u16,
    pub op: IoOp,
    pub nsid: u32,
    pub slba: u64,
    /// Blocks, 0's based.
    pub nlb0: u16,
    pub buf: Rc<RefCell<Vec<u8>>>,
}

#[derive(Default)]
pub struct Shared {
    pub phase: Option<Phase>,
    pub namespaces: Vec<NsGeometry>,
    /// I/O queue ids usable (1..=n).
    pub io_qids: Vec<u16>,
    /// The host asked the model to start.
    pub start_requested: bool,
    pub submissions: VecDeque<Submission>,
    done: BTreeMap<u64, Result<(), IoError>>,
    wakers: BTreeMap<u64, Waker>,
    phase_wakers: Vec<Waker>,
    next_id: u64,
}

impl Shared {
    pub fn phase(&self) -> Phase {
        self.phase.clone().unwrap_or(Phase::Idle)
    }

    /// The model sets the phase; waiting jobs wake on Ready or Failed.
    pub fn set_phase(&mut self, p: Phase) {
        let wake = matches!(p, Phase::Ready | Phase::Failed(_));
        self.phase = Some(p);
        if wake {
            for w in self.phase_wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// The model finished I/O `id`.
    pub fn complete(&mut self, id: u64, r: Result<(), IoError>) {
        self.done.insert(id, r);
        if let Some(w) = self.wakers.remove(&id) {
            w.wake();
        }
    }

    /// Whether the model has work from the host (start or I/O).
    pub fn has_work(&self) -> bool {
        (self.start_requested && self.phase.is_none()) || !self.submissions.is_empty()
    }
}

/// A job's handle on an initiator.
#[derive(Clone, Default)]
pub struct Handle(pub Rc<RefCell<Shared>>);

impl Handle {
    /// Asks the model to connect (once; later calls do nothing).
    pub fn start(&self) {
        self.0.borrow_mut().start_requested = true;
    }

    /// Waits until the association is up (or failed).
    pub fn ready(&self) -> impl Future<Output = Result<(), String>> {
        PhaseWait(self.clone())
    }

    pub fn namespace(&self, nsid: u32) -> Option<NsGeometry> {
        self.0.borrow().namespaces.iter().find(|n| n.nsid == nsid).copied()
    }

    pub fn io_qids(&self) -> Vec<u16> {
        self.0.borrow().io_qids.clone()
    }

    /// Queues an I/O and waits for its outcome.
    pub fn io(&self, qid: u16, op: IoOp, nsid: u32, slba: u64, nlb0: u16, buf: Rc<RefCell<Vec<u8>>>) -> impl Future<Output = Result<(), IoError>> {
        let mut s = self.0.borrow_mut();
        s.next_id += 1;
        let id = s.next_id;
        s.submissions.push_back(Submission { id, qid, op, nsid, slba, nlb0, buf });
        IoWait { handle: self.clone(), id }
    }
}

struct PhaseWait(Handle);

impl Future for PhaseWait {
    type Output = Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        let mut s = self.0 .0.borrow_mut();
        match s.phase() {
            Phase::Ready => Poll::Ready(Ok(())),
            Phase::Failed(why) => Poll::Ready(Err(why)),
            _ => {
                s.phase_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct IoWait {
    handle: Handle,
    id: u64,
}

impl Future for IoWait {
    type Output = Result<(), IoError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), IoError>> {
        let mut s = self.handle.0.borrow_mut();
        match s.done.remove(&self.id) {
            Some(r) => Poll::Ready(r),
            None => {
                s.wakers.insert(self.id, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
