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

/// Most device events handled at one simulated instant before the run is
/// declared stuck (a busy instant has hundreds: every queue, port and
/// engine at once).
pub const LIVELOCK_EVENTS: u32 = 1_000_000;

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

    /// Like [`pop_due`](EventQueue::pop_due), for a caller that handles
    /// every due event before time moves on: `handled` counts the events
    /// taken at this instant, and more than [`LIVELOCK_EVENTS`] of them
    /// is an error naming the last one (a model that keeps scheduling
    /// itself at the same instant would otherwise stop simulated time
    /// and hang the run).
    pub fn pop_due_bounded(&mut self, now: u64, handled: &mut u32) -> Result<Option<Event>, String> {
        let Some((_, e)) = self.pop_due(now) else { return Ok(None) };
        *handled += 1;
        if *handled > LIVELOCK_EVENTS {
            return Err(format!("livelock: more than {LIVELOCK_EVENTS} device events at cycle {now} (the last: {e:?}); simulated time stopped"));
        }
        Ok(Some(e))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that schedules its event again at the same instant is
    /// caught (and named) instead of looping forever; events that move
    /// time on are not.
    #[test]
    fn an_event_rescheduled_at_the_same_instant_is_a_livelock() {
        let mut q = EventQueue::default();
        q.push(5, Event::OperatorPoll);
        let mut handled = 0;
        let err = loop {
            match q.pop_due_bounded(5, &mut handled) {
                Ok(Some(e)) => q.push(5, e),
                Ok(None) => panic!("the queue ran dry"),
                Err(e) => break e,
            }
        };
        assert!(err.contains("livelock") && err.contains("OperatorPoll") && err.contains("cycle 5"), "{err}");
        let mut q = EventQueue::default();
        let mut handled = 0;
        for t in 0..2 * u64::from(LIVELOCK_EVENTS) {
            q.push(t, Event::OperatorPoll);
            if t % 2 == 0 {
                handled = 0; // time moved on
            }
            assert!(q.pop_due_bounded(t, &mut handled).unwrap().is_some());
        }
    }
}
