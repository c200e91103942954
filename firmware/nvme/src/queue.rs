//! Queue state, doorbell validation (§3.1.4.22-23) and the checks of
//! Create/Delete I/O Submission/Completion Queue (§5.4-5.7).

use crate::sqe::Sqe;
use crate::status::Status;
use crate::{MAX_QUEUE_ENTRIES, PAGE_SIZE};

/// Entries from `from` to `to` on a ring of `entries` (both below
/// `entries`): `(to - from) mod entries` without a division (this runs for
/// every doorbell and command; a divide costs tens of cycles).
fn distance(to: u16, from: u16, entries: u16) -> u16 {
    let (to, from, e) = (u32::from(to), u32::from(from), u32::from(entries));
    let d = if to >= from { to - from } else { (e + to).wrapping_sub(from) };
    let d = if d < e { d } else { d.checked_rem(e).unwrap_or(0) };
    d as u16
}

/// Position `n` entries after `at` on a ring of `entries` (`at` below
/// `entries`, `n` at most `entries`; else the plain remainder).
fn step(at: u16, n: u16, entries: u16) -> u16 {
    let (at, n, e) = (u32::from(at), u32::from(n), u32::from(entries));
    let p = at + n;
    let p = if p < e { p } else if n <= e && at < e { p - e } else { p.checked_rem(e).unwrap_or(0) };
    p as u16
}

/// Submission queue pointers (controller side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SqPointers {
    pub entries: u16,
    /// Next entry the controller fetches (reported in CQEs as SQ head).
    pub head: u16,
    /// Last tail the host wrote.
    pub tail: u16,
}

impl SqPointers {
    pub fn new(entries: u16) -> SqPointers {
        SqPointers { entries, head: 0, tail: 0 }
    }
    /// Accepts a tail doorbell value; `false` for an invalid value
    /// (≥ entries): the controller ignores it (and may report an
    /// Invalid Doorbell Write Value asynchronous event).
    pub fn set_tail(&mut self, v: u32) -> bool {
        if v >= u32::from(self.entries) {
            return false;
        }
        self.tail = v as u16;
        true
    }
    /// Entries waiting to be fetched (none for a queue of no entries:
    /// the pointer arithmetic never divides by zero, whatever state a
    /// caller gets wrong).
    pub fn pending(&self) -> u16 {
        distance(self.tail, self.head, self.entries)
    }
    /// Entries that can be fetched with one contiguous read (up to the wrap).
    pub fn contiguous(&self) -> u16 {
        if self.tail >= self.head {
            self.tail - self.head
        } else {
            self.entries - self.head
        }
    }
    pub fn advance(&mut self, n: u16) {
        self.head = step(self.head, n, self.entries);
    }
}

/// Completion queue pointers (controller side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CqPointers {
    pub entries: u16,
    /// Next slot the controller writes.
    pub tail: u16,
    /// Last head the host wrote.
    pub head: u16,
    pub phase: bool,
    /// Slots promised to commands in flight (not yet posted).
    pub reserved: u16,
}

impl CqPointers {
    pub fn new(entries: u16) -> CqPointers {
        CqPointers { entries, tail: 0, head: 0, phase: true, reserved: 0 }
    }
    /// Entries posted and not yet consumed by the host.
    pub fn occupied(&self) -> u16 {
        distance(self.tail, self.head, self.entries)
    }
    /// Free slots not promised to anybody (a full CQ keeps one slot empty;
    /// a queue of no entries has none).
    pub fn available(&self) -> u16 {
        self.entries.saturating_sub(1).saturating_sub(self.occupied()).saturating_sub(self.reserved)
    }
    /// Reserves a slot for a command about to be processed.
    pub fn reserve(&mut self) -> bool {
        if self.available() == 0 {
            return false;
        }
        self.reserved += 1;
        true
    }
    /// Gives back a reservation (command completed without a CQE).
    pub fn unreserve(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
    }
    /// Takes the next slot for a reserved completion: (index, phase).
    pub fn post(&mut self) -> (u16, bool) {
        self.reserved = self.reserved.saturating_sub(1);
        let r = (self.tail, self.phase);
        self.tail = step(self.tail, 1, self.entries);
        if self.tail == 0 {
            self.phase = !self.phase;
        }
        r
    }
    /// Accepts a head doorbell value: it must lie within the occupied
    /// entries (§3.1.4.23; otherwise Invalid Doorbell Write Value).
    pub fn set_head(&mut self, v: u32) -> bool {
        if v >= u32::from(self.entries) {
            return false;
        }
        let consumed = distance(v as u16, self.head, self.entries);
        if consumed > self.occupied() {
            return false;
        }
        self.head = v as u16;
        true
    }
}

/// Parameters of Create I/O Completion Queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateCq {
    pub qid: u16,
    pub entries: u16,
    pub addr: u64,
    pub vector: u16,
    pub interrupts: bool,
}

/// Parameters of Create I/O Submission Queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateSq {
    pub qid: u16,
    pub entries: u16,
    pub addr: u64,
    pub cqid: u16,
    pub priority: u8,
}

/// Decodes and checks Create I/O CQ (§5.4). `exists(qid)` tells whether a
/// CQ already exists; `max_qid` is the highest I/O CQ ID allowed (from the
/// Number of Queues feature); `vectors` is the function's MSI-X count.
pub fn create_cq(sqe: &Sqe, max_qid: u16, vectors: u16, exists: impl Fn(u16) -> bool) -> Result<CreateCq, Status> {
    let qid = sqe.cdw10() as u16;
    let qsize = (sqe.cdw10() >> 16) as u16;
    let pc = sqe.cdw11() & 1 != 0;
    let ien = sqe.cdw11() & 2 != 0;
    let vector = (sqe.cdw11() >> 16) as u16;
    if qid == 0 || qid > max_qid || exists(qid) {
        return Err(Status::INVALID_QID);
    }
    if qsize == 0 || u32::from(qsize) >= MAX_QUEUE_ENTRIES {
        return Err(Status::INVALID_QUEUE_SIZE);
    }
    if !pc {
        // CAP.CQR = 1: queues must be physically contiguous.
        return Err(Status::INVALID_FIELD);
    }
    if sqe.prp1() % PAGE_SIZE != 0 || sqe.prp1() == 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    if vector >= vectors {
        return Err(Status::INVALID_VECTOR);
    }
    Ok(CreateCq { qid, entries: qsize + 1, addr: sqe.prp1(), vector, interrupts: ien })
}

/// Decodes and checks Create I/O SQ (§5.5). `cq_exists` tells whether the
/// completion queue it binds to exists.
pub fn create_sq(
    sqe: &Sqe,
    max_qid: u16,
    sq_exists: impl Fn(u16) -> bool,
    cq_exists: impl Fn(u16) -> bool,
) -> Result<CreateSq, Status> {
    let qid = sqe.cdw10() as u16;
    let qsize = (sqe.cdw10() >> 16) as u16;
    let pc = sqe.cdw11() & 1 != 0;
    let priority = ((sqe.cdw11() >> 1) & 3) as u8;
    let cqid = (sqe.cdw11() >> 16) as u16;
    if cqid == 0 || !cq_exists(cqid) {
        return Err(Status::CQ_INVALID);
    }
    if qid == 0 || qid > max_qid || sq_exists(qid) {
        return Err(Status::INVALID_QID);
    }
    if qsize == 0 || u32::from(qsize) >= MAX_QUEUE_ENTRIES {
        return Err(Status::INVALID_QUEUE_SIZE);
    }
    if !pc {
        return Err(Status::INVALID_FIELD);
    }
    if sqe.prp1() % PAGE_SIZE != 0 || sqe.prp1() == 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    Ok(CreateSq { qid, entries: qsize + 1, addr: sqe.prp1(), cqid, priority })
}

/// Checks Delete I/O SQ (§5.7): the queue must exist (not the admin queue).
pub fn delete_sq(sqe: &Sqe, exists: impl Fn(u16) -> bool) -> Result<u16, Status> {
    let qid = sqe.cdw10() as u16;
    if qid == 0 || !exists(qid) {
        return Err(Status::INVALID_QID);
    }
    Ok(qid)
}

/// Checks Delete I/O CQ (§5.6): the queue must exist and no SQ may still
/// be bound to it (Invalid Queue Deletion).
pub fn delete_cq(sqe: &Sqe, exists: impl Fn(u16) -> bool, has_sqs: impl Fn(u16) -> bool) -> Result<u16, Status> {
    let qid = sqe.cdw10() as u16;
    if qid == 0 || !exists(qid) {
        return Err(Status::INVALID_QID);
    }
    if has_sqs(qid) {
        return Err(Status::INVALID_QUEUE_DELETION);
    }
    Ok(qid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe(cdw10: u32, cdw11: u32, prp1: u64) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(10, cdw10);
        s.set_dw(11, cdw11);
        s.set_dw(6, prp1 as u32);
        s.set_dw(7, (prp1 >> 32) as u32);
        s
    }

    #[test]
    fn sq_doorbells() {
        let mut sq = SqPointers::new(8);
        assert!(sq.set_tail(5));
        assert_eq!(sq.pending(), 5);
        assert!(!sq.set_tail(8), "tail beyond the queue");
        sq.advance(5);
        assert!(sq.set_tail(2));
        assert_eq!((sq.pending(), sq.contiguous()), (5, 3), "wraps: 3 to the end, then 2");
    }

    /// The division-free ring arithmetic gives the remainders it
    /// replaces, wrap included (queues of 1 to 2 entries and the largest).
    #[test]
    fn ring_arithmetic_matches_the_remainder() {
        for e in [1u32, 2, 3, 8, 65535] {
            let points = [0, 1, e / 2, e.saturating_sub(2), e - 1];
            for &a in &points {
                for &b in &points {
                    assert_eq!(u32::from(distance(a as u16, b as u16, e as u16)), (a + e - b) % e, "distance {a} {b} of {e}");
                    assert_eq!(u32::from(step(a as u16, b as u16, e as u16)), (a + b) % e, "step {a} + {b} of {e}");
                }
            }
        }
    }

    #[test]
    fn pointers_of_no_queue_never_divide_by_zero() {
        let mut sq = SqPointers::default();
        assert_eq!((sq.pending(), sq.contiguous()), (0, 0));
        sq.advance(1);
        assert!(!sq.set_tail(0));
        let mut cq = CqPointers::default();
        assert_eq!((cq.occupied(), cq.available()), (0, 0));
        assert!(!cq.reserve());
        assert!(!cq.set_head(0));
        let _ = cq.post();
    }

    #[test]
    fn cq_space_and_phase() {
        let mut cq = CqPointers::new(4);
        assert_eq!(cq.available(), 3, "one slot always free");
        assert!(cq.reserve() && cq.reserve() && cq.reserve());
        assert!(!cq.reserve(), "full");
        assert_eq!(cq.post(), (0, true));
        assert_eq!(cq.post(), (1, true));
        assert_eq!(cq.post(), (2, true));
        assert!(!cq.set_head(4), "out of range");
        assert!(cq.set_head(3), "host consumed all three");
        assert_eq!(cq.post(), (3, true));
        assert_eq!(cq.post(), (0, false), "phase flips on wrap");
        assert!(!cq.set_head(2), "host cannot consume entries not posted");
    }

    #[test]
    fn create_cq_checks() {
        let ok = create_cq(&sqe((15 << 16) | 1, (2 << 16) | 3, 0x10_0000), 4, 5, |_| false).unwrap();
        assert_eq!((ok.qid, ok.entries, ok.vector, ok.interrupts), (1, 16, 2, true));
        assert_eq!(create_cq(&sqe((15 << 16) | 5, 1, 0x1000), 4, 5, |_| false), Err(Status::INVALID_QID));
        assert_eq!(create_cq(&sqe((15 << 16) | 1, 1, 0x1000), 4, 5, |q| q == 1), Err(Status::INVALID_QID));
        assert_eq!(create_cq(&sqe(1, 1, 0x1000), 4, 5, |_| false), Err(Status::INVALID_QUEUE_SIZE));
        assert_eq!(create_cq(&sqe((1024 << 16) | 1, 1, 0x1000), 4, 5, |_| false), Err(Status::INVALID_QUEUE_SIZE));
        assert_eq!(create_cq(&sqe((15 << 16) | 1, 0, 0x1000), 4, 5, |_| false), Err(Status::INVALID_FIELD));
        assert_eq!(create_cq(&sqe((15 << 16) | 1, 1, 0x1010), 4, 5, |_| false), Err(Status::PRP_OFFSET_INVALID));
        assert_eq!(create_cq(&sqe((15 << 16) | 1, (5 << 16) | 1, 0x1000), 4, 5, |_| false), Err(Status::INVALID_VECTOR));
    }

    #[test]
    fn create_and_delete_sq_checks() {
        let ok = create_sq(&sqe((31 << 16) | 2, (1 << 16) | 1, 0x2000), 4, |_| false, |q| q == 1).unwrap();
        assert_eq!((ok.qid, ok.entries, ok.cqid), (2, 32, 1));
        assert_eq!(create_sq(&sqe((31 << 16) | 2, (3 << 16) | 1, 0x2000), 4, |_| false, |q| q == 1), Err(Status::CQ_INVALID));
        assert_eq!(create_sq(&sqe((31 << 16) | 2, 1, 0x2000), 4, |_| false, |_| true), Err(Status::CQ_INVALID), "CQ 0 is the admin CQ");
        assert_eq!(create_sq(&sqe(31 << 16, (1 << 16) | 1, 0x2000), 4, |_| false, |_| true), Err(Status::INVALID_QID));
        assert_eq!(delete_sq(&sqe(0, 0, 0), |_| true), Err(Status::INVALID_QID), "admin SQ cannot be deleted");
        assert_eq!(delete_sq(&sqe(3, 0, 0), |q| q == 2), Err(Status::INVALID_QID));
        assert_eq!(delete_cq(&sqe(1, 0, 0), |_| true, |_| true), Err(Status::INVALID_QUEUE_DELETION));
        assert_eq!(delete_cq(&sqe(1, 0, 0), |_| true, |_| false), Ok(1));
    }
}
