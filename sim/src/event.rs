//! Discrete-event queue: events ordered by (cycle, insertion order), so
//! equal-time events run in a deterministic order.
//!
//! An event is addressed to a component by id ([`ComponentId`], handed
//! out by [`EventQueue::register`]) and carries a small [`Payload`] whose
//! meaning belongs to that component alone. The machine keeps a table
//! from id to handler (`Machine::handle`, `Bus::deliver`): a new device
//! registers itself and its handler instead of adding a variant to a
//! central enum and an arm to a central match.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Which component an event goes to (an index into the registry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(pub u16);

impl ComponentId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// What a component scheduled for itself (or another component): `kind`
/// says what happened, `a` and `b` its arguments (engine, queue, id,
/// address...), each as the receiving component defines them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Payload {
    pub kind: u16,
    pub a: u64,
    pub b: u64,
}

impl Payload {
    pub const fn new(kind: u16, a: u64, b: u64) -> Payload {
        Payload { kind, a, b }
    }
}

/// Something a component scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    pub to: ComponentId,
    pub payload: Payload,
}

/// Most device events handled at one simulated instant before the run is
/// declared stuck (a busy instant has hundreds: every queue, port and
/// engine at once).
pub const LIVELOCK_EVENTS: u32 = 1_000_000;

#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    /// Registered components' names, by id (error messages).
    names: Vec<&'static str>,
}

impl EventQueue {
    /// Registers a component that receives events; its id. Ids are
    /// handed out in registration order, so the same order of
    /// registrations gives the same ids (a warm restart's fresh devices
    /// keep theirs).
    pub fn register(&mut self, name: &'static str) -> ComponentId {
        let id = ComponentId(u16::try_from(self.names.len()).expect("fewer than 65536 components"));
        self.names.push(name);
        id
    }

    /// Name a component registered with (`?` if none did).
    pub fn name(&self, id: ComponentId) -> &'static str {
        self.names.get(id.index()).copied().unwrap_or("?")
    }

    /// Schedules `payload` for component `to` at cycle `at`.
    #[inline]
    pub fn push(&mut self, at: u64, to: ComponentId, payload: Payload) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, Event { to, payload })));
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
            let name = self.name(e.to);
            return Err(format!(
                "livelock: more than {LIVELOCK_EVENTS} device events at cycle {now} (the last: {name} {:?}); simulated time stopped",
                e.payload
            ));
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

    /// Events run in time order, and events due at the same cycle in the
    /// order they were scheduled, whichever components they go to (the
    /// simulator's determinism rests on it); each reaches the component
    /// it was addressed to with its payload.
    #[test]
    fn events_run_by_time_then_scheduling_order_across_components() {
        let mut q = EventQueue::default();
        let (dma, net) = (q.register("dma"), q.register("network"));
        assert_eq!((q.name(dma), q.name(net), q.name(ComponentId(9))), ("dma", "network", "?"));
        q.push(20, net, Payload::new(1, 0, 0));
        q.push(10, net, Payload::new(2, 0, 0));
        q.push(10, dma, Payload::new(3, 0, 0));
        q.push(10, net, Payload::new(4, 5, 6));
        assert_eq!(q.pop_due(9), None, "nothing is due before cycle 10");
        let order: Vec<(u64, ComponentId, u16)> = std::iter::from_fn(|| q.pop_due(100)).map(|(t, e)| (t, e.to, e.payload.kind)).collect();
        assert_eq!(order, vec![(10, net, 2), (10, dma, 3), (10, net, 4), (20, net, 1)]);
    }

    /// A handler that schedules its event again at the same instant is
    /// caught (and named) instead of looping forever; events that move
    /// time on are not.
    #[test]
    fn an_event_rescheduled_at_the_same_instant_is_a_livelock() {
        let mut q = EventQueue::default();
        let op = q.register("operator");
        q.push(5, op, Payload::new(0, 7, 0));
        let mut handled = 0;
        let err = loop {
            match q.pop_due_bounded(5, &mut handled) {
                Ok(Some(e)) => q.push(5, e.to, e.payload),
                Ok(None) => panic!("the queue ran dry"),
                Err(e) => break e,
            }
        };
        assert!(err.contains("livelock") && err.contains("operator") && err.contains("a: 7") && err.contains("cycle 5"), "{err}");
        let mut q = EventQueue::default();
        let op = q.register("operator");
        let mut handled = 0;
        for t in 0..2 * u64::from(LIVELOCK_EVENTS) {
            q.push(t, op, Payload::default());
            if t % 2 == 0 {
                handled = 0; // time moved on
            }
            assert!(q.pop_due_bounded(t, &mut handled).unwrap().is_some());
        }
    }
}
