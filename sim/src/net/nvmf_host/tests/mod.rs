//! The initiator model against the simulator's own NVMe/TCP target model
//! (`nvmf_target`), frames carried between them with a 1 us link delay,
//! its jobs run by the host's workload code (`host::workload`) on a
//! detached host: verified random read/write with writes in the capsule
//! and through R2T, digests, NVMe error statuses, a refused Connect, a
//! controller that is not there, malformed PDUs and a restart.

mod pdus;

use super::*;
use crate::host::workload::{run_job, IoPath, JobResult, JobSpec, Rw};
use crate::host::DetachedHost;
use crate::net::nvmf_target::{TargetModel, TargetParams};

const CLOCK: u64 = 1_000_000_000;
const NQN: &str = "nqn.2026-12.io.dpusim:fabhost";
/// Link delay between the two models (cycles).
const LINK: u64 = 1_000;

fn target(inline_data: u32) -> TargetModel {
    TargetModel::new(
        TargetParams {
            name: "t0".into(),
            ip: Ipv4Addr::new(10, 0, 0, 10),
            prefix: 24,
            mac: [2, 0x7a, 0, 0, 1, 1],
            port: 4420,
            nqn: NQN.into(),
            namespaces: vec![(4 << 20, 512), (4 << 20, 4096)],
            patterned: Vec::new(),
        at_rest_keys: Vec::new(),
            latency: 5_000,
            max_queues: 4,
            inline_data,
            mtu: 1500,
            speed_gbps: 100,
            min_rto_ms: 5,
            sq_flow_disable: true,
        },
        CLOCK,
    )
}

fn params(digests: Digests) -> InitiatorParams {
    InitiatorParams {
        name: "h0".into(),
        ip: Ipv4Addr::new(10, 0, 0, 50),
        prefix: 24,
        mac: [2, 0x7a, 0, 0, 2, 1],
        traddr: Ipv4Addr::new(10, 0, 0, 10),
        trsvcid: 4420,
        subnqn: NQN.into(),
        hostnqn: "nqn.2014-08.org.nvmexpress:uuid:fabhost-test".into(),
        io_queues: 2,
        queue_depth: 32,
        digests,
        kato_ms: 2_000,
        start_delay: 0,
        connect_timeout: 5_000_000,
        io_timeout: 100_000_000,
        nsids: vec![1, 2],
        mtu: 1500,
        min_rto_ms: 5,
        discover: false,
        namespace_notices: false,
        disable_sqflow: false,
    }
}

fn spec(name: &str, nsid: u32, bs: u32, iodepth: u32, size: u64) -> JobSpec {
    JobSpec {
        name: name.into(),
        function: 0,
        initiator: Some("h0".into()),
        nsid,
        rw: Rw::RandRw,
        read_pct: 50,
        bs,
        iodepth,
        ramp: 0,
        runtime: None,
        size: Some(size),
        verify: true,
        verify_at_end: true,
        compare: false,
        offset: 0,
        len: 1 << 20,
        seed: 7,
        scattered: false,
        buf_offset: 0,
        startdelay: None,
    }
}

/// A fault a test injects into the bench.
type Fault = fn(&mut Bench);

/// The two models, a detached host running jobs, and the wire.
struct Bench {
    t: TargetModel,
    m: InitiatorModel,
    host: DetachedHost,
    /// Frames in flight: (arrival, to the target?, frame).
    wire: Vec<(u64, bool, Vec<u8>)>,
    now: u64,
    /// Called once at this time (a fault), with the bench.
    fault: Option<(u64, Fault)>,
    /// Frames sent before this time are lost (a controller not up yet).
    dark_until: u64,
}

impl Bench {
    fn new(t: TargetModel, p: InitiatorParams) -> Bench {
        Bench { t, m: InitiatorModel::new(p, CLOCK), host: DetachedHost::new(CLOCK), wire: Vec::new(), now: 0, fault: None, dark_until: 0 }
    }

    /// Runs everything at `now`, then moves time to the next thing due,
    /// until `done` or `limit` cycles.
    fn run_until(&mut self, limit: u64, done: impl Fn(&Bench) -> bool) {
        while self.now < limit && !done(self) {
            if let Some((at, f)) = self.fault {
                if self.now >= at {
                    self.fault = None;
                    f(self);
                }
            }
            let now = self.now;
            let arrived: Vec<(bool, Vec<u8>)> = {
                let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire).into_iter().partition(|w| w.0 <= now);
                self.wire = rest;
                due.into_iter().map(|(_, to_t, f)| (to_t, f)).collect()
            };
            for (to_target, f) in arrived {
                if to_target {
                    self.t.receive(now, f);
                } else {
                    self.m.receive(f);
                }
            }
            for _ in 0..1000 {
                self.host.run(now);
                let from_m = self.m.poll(now);
                let from_t = self.t.poll(now);
                let quiet = from_m.is_empty() && from_t.is_empty() && !self.m.has_work();
                let (from_m, from_t) = if now < self.dark_until { (Vec::new(), Vec::new()) } else { (from_m, from_t) };
                self.wire.extend(from_m.into_iter().map(|f| (now + LINK, true, f)));
                self.wire.extend(from_t.into_iter().map(|f| (now + LINK, false, f)));
                if quiet {
                    break;
                }
            }
            self.host.run(now);
            let busy = self.m.has_work().then_some(now + 1);
            let next = [busy, self.m.next_poll(now), self.t.next_poll(now), self.host.next_timer(), self.wire.iter().map(|w| w.0).min(), self.fault.map(|f| f.0)]
                .into_iter()
                .flatten()
                .min();
            if std::env::var("FABHOST_DEBUG").is_ok() {
                eprintln!("now {now} next {next:?} m {:?} t {:?} phase {:?}", self.m.next_poll(now), self.t.next_poll(now), self.m.handle().0.borrow().phase());
            }
            self.now = next.unwrap_or(limit).max(now + 1);
        }
    }

    /// Starts `specs` as the scenario does (start, wait ready, run_job)
    /// and runs until they end; returns their results by name.
    fn jobs(&mut self, specs: Vec<JobSpec>, limit: u64) -> Vec<JobResult> {
        let handle = self.m.handle();
        let results = Rc::new(RefCell::new(Vec::new()));
        let n = specs.len();
        for s in specs {
            let (h, handle, results) = (self.host.host.clone(), handle.clone(), results.clone());
            self.host.host.spawn(async move {
                handle.start();
                let r = match handle.ready().await {
                    Ok(()) => run_job(h, IoPath::Fabric(handle), s).await,
                    Err(e) => JobResult::failed(&s, e),
                };
                results.borrow_mut().push(r);
            });
        }
        let done = results.clone();
        self.run_until(limit, move |_| done.borrow().len() == n);
        let mut r = results.borrow().clone();
        assert_eq!(r.len(), n, "jobs unfinished at {} ns; log: {:?}", self.now, self.m.log);
        r.sort_by(|a, b| a.name.cmp(&b.name));
        r
    }
}

fn clean(r: &JobResult) {
    assert_eq!((r.errors, r.verify_errors), (0, 0), "{}: {:?}", r.name, r.first_errors);
    assert!(r.verify_checked > 0 && r.swept > 0, "{}: nothing verified", r.name);
}

/// Verified randrw, 4 KiB (writes in the capsule) on one namespace and
/// 128 KiB (writes through R2T/H2CData) on the other, with and without
/// digests.
#[test]
fn verified_randrw_in_capsule_and_through_r2t() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut b = Bench::new(target(8192), params(digests));
        let results = b.jobs(vec![spec("a4k", 1, 4096, 16, 2 << 20), spec("b128k", 2, 128 * 1024, 4, 4 << 20)], 2_000_000_000);
        for r in &results {
            clean(r);
            assert!(r.read.ios > 0 && r.write.ios > 0, "{}: {} reads {} writes", r.name, r.read.ios, r.write.ios);
            assert_eq!(r.initiator.as_deref(), Some("h0"));
        }
        let s = &b.m.stats;
        assert_eq!((s.connections, s.io_errors, s.protocol_errors, s.connection_drops), (3, 0, 0, 0), "admin + 2 I/O queues");
        assert!(s.in_capsule_writes > 0, "4 KiB writes go in the capsule (IOCCSZ allows 8 KiB)");
        assert!(s.r2ts > 0 && s.h2c_data >= s.r2ts, "128 KiB writes go through R2T");
        assert_eq!(s.writes, s.in_capsule_writes + s.r2ts, "one R2T per 128 KiB write (MAXH2CDATA 128 KiB)");
        assert!(s.c2h_data >= s.reads && s.bytes_read > 0 && s.bytes_written > 0);
        assert_eq!(s.commands, s.reads + s.writes);
        assert_eq!(b.t.stats.protocol_errors, 0);
        assert_eq!(b.t.stats.digest_errors, 0);
        // The target served every write sent (the end-of-job sweep read
        // every written block back and checked it).
        assert!(b.t.stats.writes >= s.writes);
    }
}

/// Namespace notices as Linux listens for them: Asynchronous Event
/// Configuration bit 8 and one AER, held by the controller. A change of
/// namespace 2 completes it; the model sends the next AER, reads the
/// Changed Namespace List with RAE clear (the target's list is empty
/// after) and identifies namespace 2 again.
#[test]
fn a_namespace_notice_is_read_and_the_namespace_identified_again() {
    let mut b = Bench::new(target(8192), InitiatorParams { namespace_notices: true, ..params(Digests::NONE) });
    let handle = b.m.handle();
    let h2 = handle.clone();
    b.host.host.spawn(async move {
        h2.start();
        h2.ready().await.unwrap();
    });
    b.run_until(1_000_000_000, |b| b.m.stats.aers == 1);
    let settle = b.now + 1_000_000;
    b.run_until(settle, |_| false);
    let s = &b.m.stats;
    assert_eq!((s.aers, s.aer_errors, s.namespace_notices), (1, 0, 0), "the AER is held; log: {:?}", b.m.log);
    b.t.subsystem.namespace_changed(2);
    let limit = b.now + 100_000_000;
    b.run_until(limit, |b| b.m.stats.namespace_rescans == 1);
    let s = &b.m.stats;
    assert_eq!((s.aers, s.namespace_notices, s.namespace_rescans, s.aer_errors), (2, 1, 1, 0), "log: {:?}", b.m.log);
    assert!(b.t.subsystem.ctrls.values().all(|c| c.changed.is_empty()), "read with RAE clear");
    assert_eq!(handle.namespace(2), Some(shared::NsGeometry { nsid: 2, blocks: 1024, block_size: 4096 }));
}

/// Errors the controller reports come back as NVMe statuses of the one
/// I/O (counted by status); the association stays.
#[test]
fn error_statuses_fail_only_their_io() {
    let mut b = Bench::new(target(8192), params(Digests::NONE));
    let handle = b.m.handle();
    let out: Rc<RefCell<Vec<Result<(), IoError>>>> = Rc::default();
    let (h2, o2) = (handle.clone(), out.clone());
    b.host.host.spawn(async move {
        h2.start();
        h2.ready().await.unwrap();
        let buf = Rc::new(RefCell::new(vec![0u8; 4096]));
        // Past the end of namespace 1 (8192 blocks), then a namespace that
        // does not exist, then a good read.
        let r = h2.io(1, IoOp::Read, 1, 8190, 7, buf.clone()).await;
        o2.borrow_mut().push(r);
        let r = h2.io(1, IoOp::Read, 9, 0, 7, buf.clone()).await;
        o2.borrow_mut().push(r);
        let r = h2.io(2, IoOp::Read, 1, 0, 7, buf.clone()).await;
        o2.borrow_mut().push(r);
        let r = h2.io(1, IoOp::Flush, 1, 0, 0, Rc::new(RefCell::new(Vec::new()))).await;
        o2.borrow_mut().push(r);
    });
    let o3 = out.clone();
    b.run_until(1_000_000_000, move |_| o3.borrow().len() == 4);
    let out = out.borrow();
    assert_eq!(out[0], Err(IoError::Status(Status::LBA_OUT_OF_RANGE)));
    assert_eq!(out[1], Err(IoError::Status(Status::INVALID_NAMESPACE)));
    assert_eq!((&out[2], &out[3]), (&Ok(()), &Ok(())));
    assert_eq!(IoError::Status(Status::LBA_OUT_OF_RANGE).to_string(), "status SCT 0x0 SC 0x80 DNR");
    let s = &b.m.stats;
    assert_eq!(s.io_errors, 2);
    assert_eq!(s.errors_by_status.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("0x0/0x0b", 1), ("0x0/0x80", 1)]);
    assert_eq!((s.flushes, s.connection_drops), (1, 0));
    // The namespaces as Identify Namespace told them.
    assert_eq!(handle.namespace(2), Some(shared::NsGeometry { nsid: 2, blocks: 1024, block_size: 4096 }));
    assert_eq!(handle.io_qids(), vec![1, 2]);
}

/// A refused Connect (another subsystem), and nobody at traddr: the jobs
/// fail with the reason, nothing panics, the run ends.
#[test]
fn setup_failures_fail_the_jobs_with_the_reason() {
    let mut p = params(Digests::NONE);
    p.subnqn = "nqn.2026-12.io.dpusim:other".into();
    let mut b = Bench::new(target(8192), p);
    let r = b.jobs(vec![spec("x", 1, 4096, 4, 1 << 20)], 1_000_000_000);
    assert_eq!(r[0].errors, 1);
    assert!(r[0].first_errors[0].contains("Connect refused: status SCT 0x1 SC 0x82"), "{:?}", r[0].first_errors);
    // Nothing listens on that port: refused (RST) until connect_timeout.
    let mut p = params(Digests::NONE);
    p.trsvcid = 4421;
    let mut b = Bench::new(target(8192), p);
    let r = b.jobs(vec![spec("x", 1, 4096, 4, 1 << 20)], 1_000_000_000);
    assert!(r[0].first_errors[0].contains("within connect_timeout"), "{:?}", r[0].first_errors);
    assert!(b.m.stats.connect_attempts > 2, "retried every millisecond");
    // A namespace the controller does not have: the job says so.
    let mut b = Bench::new(target(8192), params(Digests::NONE));
    let r = b.jobs(vec![spec("x", 3, 4096, 4, 1 << 20)], 1_000_000_000);
    assert!(r[0].first_errors[0].contains("no namespace 3"), "{:?}", r[0].first_errors);
}

/// Malformed PDUs from the controller (its garbage fault) and a restart
/// under verified I/O: the connections are closed and counted, their
/// I/Os fail with a transport error, the jobs end, nothing panics.
#[test]
fn malformed_pdus_and_a_restart_fail_io_without_panic() {
    let garbage: Fault = |b| {
        let now = b.now;
        assert!(b.t.inject_garbage(now) > 0);
    };
    let restart: Fault = |b| {
        let now = b.now;
        b.t.restart(now, now + 1_000_000);
    };
    for (fault, what) in [(garbage, "garbage"), (restart, "restart")] {
        let mut b = Bench::new(target(8192), params(Digests::BOTH));
        b.fault = Some((3_000_000, fault));
        let mut s = spec("g", 1, 4096, 16, 64 << 20);
        s.verify_at_end = false;
        let r = b.jobs(vec![s], 2_000_000_000);
        let st = &b.m.stats;
        assert!(r[0].errors > 0 && r[0].verify_errors == 0, "{what}: {:?}", r[0]);
        assert!(st.connection_drops >= 1 && st.transport_errors > 0, "{what}: {st:?}");
        assert!(r[0].first_errors.iter().any(|e| e.contains("transport")), "{what}: {:?}", r[0].first_errors);
        if what == "garbage" {
            assert!(st.protocol_errors + st.term_reqs_received + st.digest_errors > 0, "{st:?}");
        }
    }
}

/// A controller that answers nothing for its first 12 ms (booting): the
/// initiator sends a fresh SYN every 5 ms and is up soon after it is.
#[test]
fn a_controller_that_comes_up_late_is_reached() {
    let mut p = params(Digests::NONE);
    p.connect_timeout = 50_000_000;
    let mut b = Bench::new(target(8192), p);
    b.dark_until = 12_000_000;
    let r = b.jobs(vec![spec("late", 1, 4096, 4, 256 << 10)], 1_000_000_000);
    clean(&r[0]);
    let ready = b.m.log.iter().find(|(_, l)| l.contains("ready")).map(|(t, _)| *t).expect("ready");
    assert!((12_000_000..18_000_000).contains(&ready), "ready at {ready} ns");
    assert!(b.m.stats.connect_attempts >= 3 + 2, "{:?}", b.m.stats);
}
