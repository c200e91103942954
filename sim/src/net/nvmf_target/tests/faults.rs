//! The stall and slow-media faults of the target model.

use super::client::{Event, Host};
use super::*;

const MS: u64 = CLOCK / 1000;

fn read(cid: u16, slba: u64) -> crate::net::nvmf_wire::Command {
    rw(nvm_opc::READ, cid, 1, slba, 1, Sgl::Transport { len: 512 })
}

/// A stalled target keeps TCP up and ACKs, but sends nothing NVMe/TCP
/// (no response, no R2T, no data) until the stall ends; then everything
/// received meanwhile is answered.
#[test]
fn stall_holds_answers_until_it_ends() {
    let mut t = target();
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000);
    let c = q.cmd(&mut t, rw(nvm_opc::WRITE, 1, 1, 0, 1, Sgl::in_capsule(512)), &[0x77; 512]);
    assert!(c.status.is_success());
    let start = q.now.max(t.last_poll);
    let end = start + 30 * MS;
    t.stall(start, Some(end));
    q.submit(read(2, 0), &[]);
    q.data.insert(3, vec![0x33; 8192]);
    q.submit(rw(nvm_opc::WRITE, 3, 1, 8, 16, Sgl::Transport { len: 8192 }), &[]);
    // smoltcp delays a bare ACK by up to 10 ms.
    while q.now < start + 15 * MS {
        q.run(&mut t, |_| false);
    }
    assert!(q.now < end, "still inside the stall");
    assert!(q.events.is_empty(), "nothing answered during the stall: {:?}", q.events);
    assert!(!q.data.contains_key(&2), "no C2HData during the stall");
    assert_eq!(q.socket().state(), tcp::State::Established);
    assert_eq!(q.socket().send_queue(), 0, "the target ACKed the capsules");
    // After the stall: the R2T, the data and both completions.
    let c = q.wait(&mut t, 2);
    assert!(c.status.is_success(), "{c:?}");
    assert!(q.now >= end, "answered after the stall ended ({} < {end})", q.now);
    assert_eq!(q.data[&2], vec![0x77; 512]);
    let c = q.wait(&mut t, 3);
    assert!(c.status.is_success(), "{c:?}");
    assert_eq!(t.stats.stalls, 1);
    assert_eq!((t.stats.protocol_errors, t.stats.keep_alive_expired), (0, 0));
}

/// Without an end the target hangs for good: TCP still answers, NVMe/TCP
/// never does, and it schedules no pointless wake-ups.
#[test]
fn permanent_stall_never_answers() {
    let mut t = target();
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000);
    t.stall(q.now, None);
    q.submit(read(1, 0), &[]);
    for _ in 0..20 {
        q.run(&mut t, |_| false);
    }
    assert!(q.now > 30 * MS);
    assert!(q.events.is_empty() && q.fatal.is_none(), "{:?} {:?}", q.events, q.fatal);
    assert_eq!(q.socket().state(), tcp::State::Established);
    assert_eq!(q.socket().send_queue(), 0, "ACKed");
    // A new connection is accepted at TCP level but its ICReq is not answered.
    let mut late = Host::tcp(&mut t, 0, 40999);
    assert_eq!(late.socket().state(), tcp::State::Established);
    late.send_pdu(&crate::net::nvmf_wire::pdu::Pdu::IcReq(crate::net::nvmf_wire::pdu::IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), &[]);
    late.run(&mut t, |_| false);
    assert!(late.events.is_empty());
    let next = t.next_poll(q.now);
    assert!(next.is_none_or(|at| at <= q.now + 10 * MS + MS / 10), "only TCP timers (10 ms ACK delay at most): {next:?} at {}", q.now);
}

/// Slow media: reads submitted while the fault holds take its latency;
/// afterwards the configured time is back.
#[test]
fn slow_media_takes_the_given_latency() {
    let mut t = target();
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000);
    let timed = |q: &mut Host, t: &mut TargetModel, cid: u16| {
        let t0 = q.now.max(t.last_poll);
        let c = q.cmd(t, read(cid, 0), &[]);
        assert!(c.status.is_success());
        q.now - t0
    };
    let normal = timed(&mut q, &mut t, 1);
    assert!(normal < MS / 10, "5 us media: {normal} cycles");
    t.set_media_latency(q.now, Some(3 * MS));
    let slow = timed(&mut q, &mut t, 2);
    assert!((3 * MS..4 * MS).contains(&slow), "3 ms media: {slow} cycles");
    t.set_media_latency(q.now, None);
    let back = timed(&mut q, &mut t, 3);
    assert!(back < MS / 10, "{back} cycles");
    assert_eq!(t.stats.slowdowns, 1);
    assert!(matches!(q.events.last(), None | Some(Event::Completed(_))));
}

/// A connection the target closes after a malformed PDU from the host
/// answers nothing more, so the media completions of commands it still
/// holds never run: `next_poll` must not keep asking for a poll at an
/// instant already past for them while the socket closes (the engine's
/// livelock guard stopped an adapter-faults run on exactly that: a NetPoll
/// of this target rescheduled at the same cycle a million times).
#[test]
fn closing_connection_asks_for_no_past_poll() {
    let mut t = target();
    let (_a, cntlid) = admin_session(&mut t, Digests::NONE);
    let mut q = io_queue(&mut t, cntlid, 1, Digests::NONE, 50000);
    t.set_media_latency(q.now, Some(3 * MS));
    q.submit(read(1, 0), &[]);
    // An ICReq on an established queue: a fatal protocol error.
    q.send_pdu(&crate::net::nvmf_wire::pdu::Pdu::IcReq(crate::net::nvmf_wire::pdu::IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }), &[]);
    q.run(&mut t, |_| false);
    assert_eq!(t.stats.protocol_errors, 1);
    // Past the read's media completion; the host keeps its end open.
    let now = q.now.max(t.last_poll) + 4 * MS;
    t.poll(now);
    let next = t.next_poll(now);
    assert!(next.is_none_or(|at| at > now), "next poll {next:?} not after {now}");
}
