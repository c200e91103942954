//! Discrete-event queue: device events ordered by (cycle, insertion order),
//! so equal-time events run in a deterministic order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Something a device scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// Re-evaluate hart's mtimecmp (timer may have fired).
    Timer { hart: u32 },
    /// A DMA engine's earliest descriptor is due.
    DmaDone { engine: u32 },
    /// A crypto engine's earliest descriptor is due.
    CryptoDone { engine: u32 },
    /// The erasure-coding engine's earliest descriptor is due.
    EcDone,
    /// A local SSD's earliest command is due.
    SsdDone { ssd: u32 },
    /// A host request (see `Machine::host_ops`) reaches the endpoint.
    HostToDevice { id: u64 },
    /// The completion of host request `id` reaches the host.
    HostReply { id: u64 },
    /// An MSI-X write reaches the host.
    HostMsi { addr: u64, data: u32 },
    /// A host timer expires.
    HostTimer { id: u64 },
    /// Frame `id` reaches its next hop (see `net::network::Hop`).
    Net { id: u64 },
    /// TX descriptors of a NIC queue are written back.
    NicTxDone { port: u8, queue: u16 },
    /// The LRO hold time of a NIC queue ends.
    NicLroFlush { port: u8, queue: u16 },
    /// A target model's timers (TCP, media latency) are due.
    NetPoll { target: u32 },
    /// The operator node's timers or calls are due.
    OperatorPoll,
    /// An initiator model's timers (TCP, setup, keep-alive, I/O timeouts) are due.
    InitiatorPoll { initiator: u32 },
    /// Scenario fault `index` starts (`start`) or ends.
    Fault { index: u32, start: bool },
    /// Power goes away (a power-cut test): the run ends, the flash keeps
    /// what a running program or erase had done.
    PowerCut,
}

#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, e)));
    }

    /// Time of the earliest event.
    pub fn next_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Pops the earliest event if it is due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, Event)> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse((t, _, e))| (t, e)),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
