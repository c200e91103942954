//! The one pending poll event of a simulated network endpoint (a target
//! model, the operator node): a new event is queued only when it is
//! earlier than the one already pending, so events never pile up.

#[derive(Clone, Copy, Debug, Default)]
pub struct PendingPoll(Option<u64>);

impl PendingPoll {
    /// Records that a poll event is queued at `at`; false if an earlier
    /// one already is (the caller then queues nothing).
    pub fn schedule(&mut self, at: u64) -> bool {
        match self.0 {
            Some(t) if t <= at => false,
            _ => {
                self.0 = Some(at);
                true
            }
        }
    }

    /// The endpoint runs at `now`: a pending event due by then is spent.
    pub fn ran(&mut self, now: u64) {
        if self.0.is_some_and(|t| t <= now) {
            self.0 = None;
        }
    }

    /// Forgets the pending event (its firing finds nothing to do).
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::PendingPoll;

    #[test]
    fn only_earlier_events_are_queued_and_a_run_spends_the_due_one() {
        let mut p = PendingPoll::default();
        assert!(p.schedule(100));
        assert!(!p.schedule(100) && !p.schedule(150), "not later or equal");
        assert!(p.schedule(50), "earlier");
        p.ran(40);
        assert!(!p.schedule(60), "not due at 40: still pending at 50");
        p.ran(50);
        assert!(p.schedule(60), "spent at 50");
        p.clear();
        assert!(p.schedule(70));
    }
}
