//! Control plane (cluster 0).
//!
//! Core 0 runs the management main loop: at boot it pings every data-plane
//! reactor through its channel and logs a role summary with round-trip
//! times; then it sends a heartbeat round every millisecond. A reactor in
//! the middle of a long I/O pass (128 KiB transfers with digests computed
//! by the core) answers a round late: its pong arrives in a later round and
//! still counts as a sign of life. Only a reactor silent for
//! `SILENT_ROUNDS` rounds in a row is reported (WARN). Later issues
//! add the JSON-RPC server, configuration and telemetry here. The other
//! cluster-0 cores are reserved for management services.

use crate::channel::{self, Reply, Request, DEPTH};
use dpu_hal::memory_map::{CLUSTERS, CORES_PER_CLUSTER, HARTS, TIMEBASE_HZ};
use dpu_hal::{clint, csr, HartId};
use dpu_ring::{Consumer, Producer};

type Ends = (Producer<'static, Request, DEPTH>, Consumer<'static, Reply, DEPTH>);

/// Result of one ping round.
struct Round {
    /// Reactors that answered this round in time.
    answered: usize,
    rtt_min: u64,
    rtt_max: u64,
    rtt_sum: u64,
}

const HEARTBEAT_TICKS: u64 = TIMEBASE_HZ / 1000;

/// Heartbeat rounds a reactor may stay silent (busy) before a warning:
/// 10 ms. A reactor moving 128 KiB transfers with NVMe/TCP digests
/// computed by the core can spend 5 ms in one pass.
const SILENT_ROUNDS: u32 = 10;

/// Sends ping `seq` to every reactor and collects the answers for up to
/// 100 us. `last_seen[h]` is the latest round hart `h` answered (late
/// answers to earlier rounds included).
fn ping_round(seq: u32, ends: &mut [Option<Ends>; HARTS], reactors: usize, last_seen: &mut [u32; HARTS]) -> Round {
    let now = csr::mcycle();
    for (h, e) in ends.iter_mut().enumerate() {
        if let Some((tx, _)) = e {
            if tx.push(Request::Ping { seq, sent: now }).is_ok() {
                channel::ring(h);
            }
        }
    }
    let mut r = Round { answered: 0, rtt_min: u64::MAX, rtt_max: 0, rtt_sum: 0 };
    // Wait up to 100 us for the answers (woken by doorbells or the timer).
    let deadline = csr::time() + TIMEBASE_HZ / 10_000;
    clint::set_timer(0, deadline);
    while r.answered < reactors && csr::time() < deadline {
        channel::take_doorbells(0);
        for (h, e) in ends.iter_mut().enumerate() {
            let Some((_, rx)) = e else { continue };
            while let Some(Reply::Pong { seq: s, sent, hart }) = rx.pop() {
                if s > seq || usize::from(hart) != h {
                    defmt::warn!("stray pong {=u32} from hart {=u16} on channel {=usize}", s, hart, h);
                    continue;
                }
                last_seen[h] = last_seen[h].max(s);
                if s != seq {
                    // A busy reactor's answer to an earlier round.
                    continue;
                }
                let rtt = csr::mcycle() - sent;
                r.answered += 1;
                r.rtt_min = r.rtt_min.min(rtt);
                r.rtt_max = r.rtt_max.max(rtt);
                r.rtt_sum += rtt;
            }
        }
        if r.answered < reactors {
            csr::wfi();
        }
    }
    clint::set_timer(0, u64::MAX);
    r
}

pub fn main(hart: HartId) -> ! {
    defmt::info!(
        "control plane up: chip {=str}, {=usize} clusters x {=usize} cores",
        dpu_hal::memory_map::CHIP_NAME,
        CLUSTERS,
        CORES_PER_CLUSTER
    );
    let mut ends: [Option<Ends>; HARTS] = [const { None }; HARTS];
    let mut reactors = 0;
    for (h, e) in ends.iter_mut().enumerate() {
        if !HartId(h).is_control_plane() {
            *e = channel::control_ends(h);
            reactors += 1;
        }
    }
    channel::enable_doorbell(hart.0);
    csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    crate::boot::announce();

    // Boot round: every reactor must answer.
    let mut last_seen = [0u32; HARTS];
    let r = ping_round(0, &mut ends, reactors, &mut last_seen);
    let control = HARTS - reactors;
    defmt::info!(
        "roles: {=usize} control-plane cores (cluster 0), {=usize} data-plane reactors (clusters 1-{=usize})",
        control,
        reactors,
        CLUSTERS - 1
    );
    if r.answered == reactors {
        defmt::info!(
            "boot: {=usize}/{=usize} data-plane reactors answered; ping rtt min/avg/max = {=u64}/{=u64}/{=u64} cycles",
            r.answered,
            reactors,
            r.rtt_min,
            r.rtt_sum / r.answered.max(1) as u64,
            r.rtt_max
        );
    } else {
        defmt::error!("boot: only {=usize}/{=usize} data-plane reactors answered", r.answered, reactors);
    }
    // Up: every reactor answered and the configuration is served. An
    // image on trial confirms itself now (else the next boot reverts).
    if r.answered == reactors && crate::boot::info().is_some_and(|i| i.trial) {
        while !crate::bootcfg::loaded() {
            clint::set_timer(0, csr::time() + TIMEBASE_HZ / 100_000);
            csr::wfi();
            channel::take_doorbells(0);
        }
        crate::boot::confirm_if_on_trial(hart.0);
    }

    let mut seq = 1u32;
    let mut next = csr::time() + HEARTBEAT_TICKS;
    loop {
        clint::set_timer(0, next);
        while csr::time() < next {
            csr::wfi();
            channel::take_doorbells(0);
        }
        let r = ping_round(seq, &mut ends, reactors, &mut last_seen);
        // Alive: answered one of the last SILENT_ROUNDS rounds (late or not).
        let mut silent = 0;
        let mut first_silent = 0;
        for (h, e) in ends.iter().enumerate() {
            if e.is_some() && seq.wrapping_sub(last_seen[h]) >= SILENT_ROUNDS {
                if silent == 0 {
                    first_silent = h;
                }
                silent += 1;
            }
        }
        if silent == 0 {
            defmt::info!(
                "heartbeat {=u32}: {=usize}/{=usize} reactors alive, max rtt {=u64} cycles ({=usize} answered late)",
                seq,
                reactors,
                reactors,
                r.rtt_max,
                reactors - r.answered
            );
        } else {
            defmt::warn!(
                "heartbeat {=u32}: {=usize}/{=usize} reactors silent for {=u32}+ rounds (first: hart {=usize}, last answer in round {=u32})",
                seq,
                silent,
                reactors,
                SILENT_ROUNDS,
                first_silent,
                last_seen[first_silent]
            );
        }
        seq = seq.wrapping_add(1);
        next += HEARTBEAT_TICKS;
    }
}

/// Cluster-0 cores other than 0: reserved for management services.
pub fn worker(_hart: HartId) -> ! {
    dpu_rt::park()
}
