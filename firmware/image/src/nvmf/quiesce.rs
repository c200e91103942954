//! Closing every NVMe/TCP connection of the initiator before a warm
//! restart (firmware activation without reset, `crate::nvme::admin`'s
//! `activate`).
//!
//! Without it the old image's connections vanish with the restart: the
//! target keeps their controllers until its keep-alive timer expires
//! (NVMe Base 2.0 §3.9.5; two minutes with Linux's default KATO) and the
//! new image's first connects can run into the old connections' TCP
//! state. As Linux's `nvme_tcp` does on a controller delete, the I/O
//! queues close first (FIN, NVMe/TCP 1.0 §3.6.2.3: an orderly teardown is
//! a TCP close), then the admin queues, which ends each association on
//! the target (NVMe over Fabrics 1.1 §3.5: the admin queue's connection
//! going away ends the controller).
//!
//! One request, many closers, no lock: the admin service sets
//! [`request`]; each data-plane core's initiator that started
//! ([`join`]) shuts its queues down and, once every FIN is acknowledged
//! (or the connection was not open), counts itself in [`io_closed`];
//! the fabrics service then does the same for the admin queues
//! ([`admin_closed`]). The admin service restarts the card when
//! [`all_closed`] says so, or after a bounded wait (a target that does
//! not answer must not hold the activation past MTFA).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Data-plane initiators that started, and those that closed.
static JOINED: AtomicU32 = AtomicU32::new(0);
static CLOSED: AtomicU32 = AtomicU32::new(0);
/// The fabrics service runs (it has admin queues to close), and it did.
static SERVICE: AtomicBool = AtomicBool::new(false);
static SERVICE_CLOSED: AtomicBool = AtomicBool::new(false);

/// A data-plane initiator started on this core (it will take part).
pub fn join() {
    JOINED.fetch_add(1, Ordering::Relaxed);
}

/// The fabrics service runs its loop (it will take part).
pub fn service_up() {
    SERVICE.store(true, Ordering::Release);
}

/// Asks every initiator to close its connections. Returns whether any
/// takes part (else there is nothing to wait for).
pub fn request() -> bool {
    REQUESTED.store(true, Ordering::Release);
    JOINED.load(Ordering::Acquire) > 0 || SERVICE.load(Ordering::Acquire)
}

/// Whether a close was asked for (one Acquire load: checked every pass).
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Acquire)
}

/// This core's I/O queues are closed.
pub fn io_closed() {
    CLOSED.fetch_add(1, Ordering::Release);
}

/// Every data-plane initiator closed its I/O queues.
pub fn io_done() -> bool {
    CLOSED.load(Ordering::Acquire) >= JOINED.load(Ordering::Acquire)
}

/// The admin queues are closed.
pub fn admin_closed() {
    SERVICE_CLOSED.store(true, Ordering::Release);
}

/// Every connection is closed: (I/O queues closed, admin queues closed).
pub fn all_closed() -> (bool, bool) {
    (io_done(), !SERVICE.load(Ordering::Acquire) || SERVICE_CLOSED.load(Ordering::Acquire))
}
