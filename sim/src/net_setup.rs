//! Wiring a scenario's network into the bus: switch settings and
//! impairments, target, initiator and operator models, packet captures,
//! the UDP bridge with wall-clock pacing, and timed faults (target
//! restarts, malformed PDUs, stalls, slow media, link flaps).
//!
//! Free functions over the [`Bus`] (and the clock rate); the machine
//! calls them (`Machine::configure`, its fault component, `--pcap`,
//! `--bridge`, `--hostfwd`) and this module knows nothing of the machine.

use crate::bus::Bus;
use crate::event::{ComponentId, Payload};
use crate::net::bridge::{Bridge, BridgeSpec};
use crate::net::pcap::PcapWriter;
use crate::net::switch::{Attached, Impairments};
use crate::net::{node_mac, Node};
use crate::net::nvmf_target::{TargetModel, TargetParams};
use std::time::{Duration, Instant};

/// A scenario fault, in cycles from the start of the workload.
/// One byte a `target-corrupt` fault flipped on a target's media; `at_end`
/// is read back when the report is made.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Corruption {
    pub target: String,
    pub nsid: u32,
    pub offset: u64,
    pub original: u8,
    pub corrupted: u8,
    pub at_end: Option<u8>,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    pub at: u64,
    /// How long it holds; `None`: until the end of the run (or, for a
    /// one-shot fault such as malformed PDUs, no duration at all).
    pub duration: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    TargetRestart(usize),
    LinkDown(usize),
    /// The target sends malformed PDUs on its I/O connections.
    TargetGarbage(usize),
    /// The target answers nothing on live connections; what it holds or
    /// receives meanwhile is lost.
    TargetBlackhole(usize),
    /// The target answers no NVMe/TCP PDU (TCP stays up).
    TargetStall(usize),
    /// The target's media time is this many cycles.
    TargetSlow { target: usize, latency: u64 },
    /// DMA to or from this function's host memory fails.
    DmaError(u16),
    /// One byte of a target namespace's media flips.
    TargetCorrupt { target: usize, nsid: u32, offset: u64 },
    /// A local SSD fails every command.
    SsdFail(usize),
    /// A local SSD's media time is this many cycles.
    SsdSlow { ssd: usize, latency: u64 },
    /// An initiator model injects a fault on itself (`initiator-*`).
    Initiator { initiator: usize, fault: crate::net::nvmf_host::InitiatorFault },
}

/// Keeps simulated time from running ahead of wall-clock time while a
/// real peer (with real timers) is bridged in.
#[derive(Clone, Debug)]
pub struct Pacing {
    pub wall_start: Instant,
    pub sim_start: u64,
}


/// Sets up the scenario's network on `bus` (a chip clocked at `hz`):
/// switch latencies and impairments, DPU port MTU, the target, initiator
/// and operator models; returns the scenario's faults.
pub fn attach_network(bus: &mut Bus, hz: u64, sc: &dpu_targets::Scenario) -> Result<Vec<Fault>, String> {
    let mut faults = Vec::new();
    let n = &sc.network;
    let impair = Impairments { loss: n.loss_percent, reorder: n.reorder_percent, duplicate: n.duplicate_percent };
    bus.net.configure(n.link_latency_ns, n.switch_latency_ns, impair, n.seed);
    let ports = sc.port_addrs();
    for (i, t) in sc.targets.iter().enumerate() {
        let ip: std::net::Ipv4Addr = t.ip.parse().map_err(|_| format!("targets[{i}].ip: bad address"))?;
        let mut at_rest_keys = Vec::new();
        for (j, ns) in t.namespaces.iter().enumerate() {
            if let Some(k) = &ns.at_rest_key {
                let key = dpu_targets::parse_xts_key(k).map_err(|e| format!("targets[{i}].namespaces[{j}].at_rest_key: {e}"))?;
                at_rest_keys.push((j as u32 + 1, key));
            }
        }
        let prefix = ports.iter().find(|&&(a, p)| dpu_targets::same_subnet(a, ip, p)).map_or(24, |&(_, p)| p);
        let params = TargetParams {
            name: t.name.clone(),
            ip,
            prefix,
            mac: node_mac(Node::Target(i)),
            port: t.port,
            nqn: t.nqn.clone(),
            namespaces: t.namespaces.iter().map(|ns| (dpu_targets::parse_size(&ns.size).unwrap_or(0), ns.block_size)).collect(),
            patterned: t.namespaces.iter().zip(1u32..).filter(|(ns, _)| ns.fill.as_deref() == Some("pattern")).map(|(_, nsid)| nsid).collect(),
            at_rest_keys,
            latency: dpu_targets::ns_to_cycles(dpu_targets::parse_time_ns(&t.latency).unwrap_or(0), hz),
            max_queues: t.max_queues,
            inline_data: t.inline_data,
            mtu: n.mtu,
            speed_gbps: t.speed_gbps,
            min_rto_ms: n.tcp_min_rto_ms(),
        };
        let idx = bus.net.targets.len();
        bus.net.targets.push(TargetModel::new(params, hz));
        bus.net.switch.attach(Attached::Target(idx), t.speed_gbps);
    }
    attach_initiators(bus, hz, sc)?;
    attach_operator(bus, hz, sc)?;
    let cyc = |s: &str| dpu_targets::parse_time_ns(s).map(|ns| dpu_targets::ns_to_cycles(ns, hz)).unwrap_or(0);
    for f in &sc.faults {
        let target = || {
            let name = f.target.clone().unwrap_or_default();
            sc.targets.iter().position(|t| t.name == name).ok_or(format!("fault: no target `{name}`"))
        };
        let initiator = || {
            let name = f.initiator.clone().unwrap_or_default();
            sc.initiators.iter().position(|t| t.name == name).ok_or(format!("fault: no initiator `{name}`"))
        };
        use crate::net::nvmf_host::InitiatorFault as If;
        let kind = match f.kind.as_str() {
            "initiator-bad-pdu" => FaultKind::Initiator { initiator: initiator()?, fault: If::BadPdu },
            "initiator-bad-ddgst" => FaultKind::Initiator { initiator: initiator()?, fault: If::BadDdgst },
            "initiator-silent" => FaultKind::Initiator { initiator: initiator()?, fault: If::Silent(f.duration.as_deref().map_or(0, cyc)) },
            "initiator-disconnect" => FaultKind::Initiator { initiator: initiator()?, fault: If::Disconnect },
            "target-restart" => FaultKind::TargetRestart(target()?),
            "target-garbage" => FaultKind::TargetGarbage(target()?),
            "target-stall" => FaultKind::TargetStall(target()?),
            "target-slow" => FaultKind::TargetSlow { target: target()?, latency: f.latency.as_deref().map_or(0, cyc) },
            "target-blackhole" => FaultKind::TargetBlackhole(target()?),
            "dma-error" => FaultKind::DmaError(f.function.unwrap_or(0)),
            "target-corrupt" => FaultKind::TargetCorrupt {
                target: target()?,
                nsid: f.nsid.unwrap_or(1),
                offset: f.offset.as_deref().and_then(|o| dpu_targets::parse_size(o).ok()).unwrap_or(0),
            },
            "ssd-fail" => FaultKind::SsdFail(f.ssd.unwrap_or(0) as usize),
            "ssd-slow" => FaultKind::SsdSlow { ssd: f.ssd.unwrap_or(0) as usize, latency: f.latency.as_deref().map_or(0, cyc) },
            _ => FaultKind::LinkDown(f.port.unwrap_or(0) as usize),
        };
        faults.push(Fault { kind, at: cyc(&f.at), duration: f.duration.as_deref().map(cyc) });
    }
    Ok(faults)
}

/// The `[[initiators]]`: NVMe/TCP initiator models on the switch.
fn attach_initiators(bus: &mut Bus, hz: u64, sc: &dpu_targets::Scenario) -> Result<(), String> {
    for (i, c) in sc.initiators.iter().enumerate() {
        let Some(((ip, prefix), traddr)) = c.addrs() else { return Err(format!("initiators[{i}]: bad address")) };
        let cyc = |s: &str| dpu_targets::parse_time_ns(s).map(|ns| dpu_targets::ns_to_cycles(ns, hz)).unwrap_or(0);
        let mut nsids: Vec<u32> = sc.jobs.iter().filter(|j| j.initiator.as_deref() == Some(c.name.as_str())).map(|j| j.nsid).collect();
        nsids.sort_unstable();
        nsids.dedup();
        let params = crate::net::nvmf_host::InitiatorParams {
            name: c.name.clone(),
            ip,
            prefix,
            mac: node_mac(Node::Initiator(i)),
            traddr,
            trsvcid: c.trsvcid,
            subnqn: c.subnqn.clone(),
            hostnqn: c.hostnqn.clone(),
            io_queues: c.io_queues,
            queue_depth: c.queue_depth,
            digests: crate::net::nvmf_wire::pdu::Digests { header: c.hdgst, data: c.ddgst },
            kato_ms: (c.kato_ns() / 1_000_000).min(u64::from(u32::MAX)) as u32,
            start_delay: c.start.as_deref().map_or(0, cyc),
            connect_timeout: cyc(&c.connect_timeout),
            io_timeout: cyc(&c.io_timeout),
            nsids,
            mtu: sc.network.mtu,
            min_rto_ms: sc.network.tcp_min_rto_ms(),
            discover: c.discover,
            namespace_notices: c.namespace_notices,
        };
        let idx = bus.net.initiators.len();
        bus.net.initiators.push(crate::net::nvmf_host::InitiatorModel::new(params, hz));
        bus.net.switch.attach(Attached::Initiator(idx), 100);
    }
    Ok(())
}

/// Prints what the initiator models logged since the last call (unless `quiet`).
pub(crate) fn initiator_log(bus: &mut Bus, hz: u64, quiet: bool) {
    for m in bus.net.initiators.iter_mut() {
        for (at, line) in std::mem::take(&mut m.log) {
            if !quiet {
                eprintln!("dpusim: {} ns: {line}", u128::from(at) * 1_000_000_000 / u128::from(hz));
            }
        }
    }
}

/// The operator node for `[management]`, with the `[[rpc]]` calls.
fn attach_operator(bus: &mut Bus, hz: u64, sc: &dpu_targets::Scenario) -> Result<(), String> {
    let Some(m) = sc.management() else { return Ok(()) };
    let mut addrs = vec![m.operator];
    let mut calls = Vec::new();
    for (i, r) in sc.rpc.iter().enumerate() {
        let from = match &r.from {
            Some(f) => f.parse().map_err(|_| format!("rpc[{i}].from: bad address"))?,
            None => m.operator,
        };
        if !addrs.contains(&from) {
            addrs.push(from);
        }
        let (request, id) = crate::net::operator::request_bytes(i, r, m.token.as_deref())?;
        let at = dpu_targets::parse_time_ns(&r.at).map(|ns| dpu_targets::ns_to_cycles(ns, hz)).unwrap_or(0);
        let expect = crate::net::operator::Expect {
            error: r.expect_error,
            message: r.expect_error_message.clone(),
            result: r.expect_result.as_ref().map(|v| serde_json::to_value(v).unwrap_or(serde_json::Value::Null)),
            close: r.expect_close,
            refused: r.expect_refused,
        };
        calls.push(crate::net::operator::Call { label: r.label(), at, from, request, id, expect });
    }
    // A call may take the server's request timeout plus 50 ms.
    let call_timeout = dpu_targets::ns_to_cycles((u64::from(m.request_timeout_ms) + 50) * 1_000_000, hz);
    let op = crate::net::operator::Operator::new(&addrs, m.prefix, (m.addr, m.tcp_port), sc.network.mtu, call_timeout, calls, hz);
    bus.net.operator = Some(op);
    bus.net.switch.attach(Attached::Operator, 10);
    Ok(())
}

/// `--hostfwd`: relays host TCP connections to the management server
/// through the operator node (the caller paces simulated time to the
/// wall clock); the address bound.
pub fn attach_hostfwd(bus: &mut Bus, now: u64, addr: std::net::SocketAddr) -> Result<std::net::SocketAddr, String> {
    let Some(op) = bus.net.operator.as_mut() else {
        return Err("--hostfwd: the scenario has no [management] section (the card's management address)".into());
    };
    let l = crate::net::hostfwd::bind(addr)?;
    let bound = l.local_addr().map_err(|e| format!("--hostfwd: {e}"))?;
    op.listener = Some(l);
    bus.operator_poll(now);
    Ok(bound)
}

/// Prints what the operator node logged since the last call.
pub(crate) fn operator_log(bus: &mut Bus, hz: u64) {
    let Some(op) = bus.net.operator.as_mut() else { return };
    let lines = std::mem::take(&mut op.log);
    for (at, line) in lines {
        let ns = u128::from(at) * 1_000_000_000 / u128::from(hz);
        eprintln!("dpusim: {ns} ns: {line}");
    }
}

/// The scripted calls' verdict once the workload is over: every call
/// answered as expected.
pub(crate) fn rpc_verdict(bus: &mut Bus, hz: u64) -> Result<(), String> {
    operator_log(bus, hz);
    let Some(op) = bus.net.operator.as_ref() else { return Ok(()) };
    let mut bad: Vec<String> = op.outcomes.iter().filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.label))).collect();
    for p in op.pending() {
        bad.push(format!("rpc `{p}`: not finished when the workload ended (make the jobs run past its time)"));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("management calls failed:\n  {}", bad.join("\n  ")))
    }
}

/// Queues the faults relative to `now` (the workload's start) as events
/// of component `to` (payload `a`: the fault's index, `b`: 1 when it
/// starts, 0 when it ends), and starts the operator's scripted calls.
pub(crate) fn arm_faults(bus: &mut Bus, faults: &[Fault], to: ComponentId, now: u64) {
    if let Some(op) = bus.net.operator.as_mut() {
        op.arm(now);
        bus.operator_poll(now);
    }
    for (i, f) in faults.iter().enumerate() {
        let start = now.saturating_add(f.at);
        bus.events.push(start, to, Payload::new(0, i as u64, 1));
        if let Some(d) = f.duration {
            bus.events.push(start.saturating_add(d), to, Payload::new(0, i as u64, 0));
        }
    }
}

/// Fault `f` starts or ends at `now` (`ns`: the same in nanoseconds, for
/// the messages); bytes a `target-corrupt` flips go to `corruptions`.
pub(crate) fn apply_fault(bus: &mut Bus, f: &Fault, start: bool, now: u64, ns: u64, corruptions: &mut Vec<Corruption>) {
    match f.kind.clone() {
        FaultKind::TargetRestart(t) => {
            if start {
                let d = f.duration.unwrap_or(0);
                bus.net.targets[t].restart(now, now + d);
                bus.target_poll(t, now);
                eprintln!("dpusim: {ns} ns: fault: target `{}` restarts for {} us", bus.net.targets[t].params.name, d / 1000);
            } else {
                bus.target_poll(t, now);
            }
        }
        FaultKind::TargetStall(t) => {
            let name = bus.net.targets[t].params.name.clone();
            if start {
                bus.net.targets[t].stall(now, f.duration.map(|d| now + d));
                match f.duration {
                    Some(d) => eprintln!("dpusim: {ns} ns: fault: target `{name}` stalls for {} us", d / 1000),
                    None => eprintln!("dpusim: {ns} ns: fault: target `{name}` stalls for good"),
                }
            } else {
                eprintln!("dpusim: {ns} ns: fault: target `{name}` answers again");
            }
            bus.target_poll(t, now);
        }
        FaultKind::TargetSlow { target: t, latency } => {
            let name = bus.net.targets[t].params.name.clone();
            if start {
                bus.net.targets[t].set_media_latency(now, Some(latency));
                eprintln!("dpusim: {ns} ns: fault: target `{name}` media time {} us", latency / 1000);
            } else {
                bus.net.targets[t].set_media_latency(now, None);
                eprintln!("dpusim: {ns} ns: fault: target `{name}` media time back to normal");
            }
            bus.target_poll(t, now);
        }
        FaultKind::TargetGarbage(t) => {
            if start {
                let n = bus.net.targets[t].inject_garbage(now);
                bus.target_poll(t, now);
                eprintln!("dpusim: {ns} ns: fault: target `{}` sends malformed PDUs on {n} I/O connections", bus.net.targets[t].params.name);
            }
        }
        FaultKind::TargetBlackhole(t) => {
            bus.net.targets[t].set_blackhole(now, start);
            bus.target_poll(t, now);
            let what = match (start, f.duration) {
                (true, Some(d)) => format!("stops answering for {} us", d / 1000),
                (true, None) => "stops answering for good".into(),
                (false, _) => "answers again".into(),
            };
            eprintln!("dpusim: {ns} ns: fault: target `{}` {what}", bus.net.targets[t].params.name);
        }
        FaultKind::TargetCorrupt { target, nsid, offset } => {
            if start {
                let t = &mut bus.net.targets[target];
                let name = t.params.name.clone();
                match t.subsystem.namespaces.get_mut((nsid as usize).wrapping_sub(1)) {
                    Some(n) if offset < n.bytes() => {
                        let mut b = [0u8; 1];
                        n.read(offset, &mut b);
                        n.write(offset, &[b[0] ^ 0x5a]);
                        eprintln!("dpusim: {ns} ns: fault: target `{name}` namespace {nsid}: byte {offset} corrupted ({:#04x} -> {:#04x})", b[0], b[0] ^ 0x5a);
                        corruptions.push(Corruption { target: name, nsid, offset, original: b[0], corrupted: b[0] ^ 0x5a, at_end: None });
                    }
                    _ => eprintln!("dpusim: {ns} ns: fault: target `{name}` has no byte {offset} in namespace {nsid}"),
                }
            }
        }
        FaultKind::DmaError(function) => {
            if start {
                bus.dma.host_errors.insert(function);
            } else {
                bus.dma.host_errors.remove(&function);
            }
            eprintln!("dpusim: {ns} ns: fault: DMA with function {function}'s host memory {}", if start { "fails" } else { "works again" });
        }
        FaultKind::SsdFail(i) => {
            bus.ssds.fault(i, now, true, None, !start);
            let what = if start { "fails every command" } else { "works again" };
            eprintln!("dpusim: {ns} ns: fault: local SSD {i} {what}");
        }
        FaultKind::SsdSlow { ssd, latency } => {
            bus.ssds.fault(ssd, now, false, Some(latency), !start);
            let what = if start { format!("media time {} us", latency / 1000) } else { "media time back to normal".into() };
            eprintln!("dpusim: {ns} ns: fault: local SSD {ssd} {what}");
        }
        FaultKind::Initiator { initiator, fault } => {
            if start {
                let Some(m) = bus.net.initiators.get_mut(initiator) else { return };
                let what = m.inject(fault, now);
                let name = m.params.name.clone();
                eprintln!("dpusim: {ns} ns: fault: initiator `{name}`: {what}");
                bus.initiator_poll(initiator, now);
            }
        }
        FaultKind::LinkDown(p) => {
            bus.set_port_link(p, !start, now);
            eprintln!("dpusim: {ns} ns: fault: port {p} link {}", if start { "down" } else { "up" });
        }
    }
}

/// Writes a pcap per DPU port of `board`: `cap.pcap` -> `cap-eth0.pcap`, `cap-eth1.pcap`.
pub fn enable_pcap(bus: &mut Bus, board: &dpu_targets::Board, path: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = path.with_extension("");
    let mut files = Vec::new();
    for (i, port) in board.network.ports.iter().enumerate() {
        let f = std::path::PathBuf::from(format!("{}-{}.pcap", stem.display(), port.name));
        let w = PcapWriter::create(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        if let Some(slot) = bus.net.pcap.get_mut(i) {
            *slot = Some(w);
        }
        files.push(f);
    }
    Ok(files)
}

/// Joins a real peer's L2 segment through a UDP socket (QEMU
/// `-netdev dgram` format); the caller paces simulated time to
/// wall-clock time ([`Pacing`]).
pub fn attach_bridge(bus: &mut Bus, spec: BridgeSpec) -> Result<(), String> {
    let b = Bridge::open(spec.clone()).map_err(|e| format!("bridge: cannot bind {}: {e}", spec.local))?;
    bus.net.bridge = Some(b);
    bus.net.switch.attach(Attached::Bridge, 100);
    Ok(())
}

impl Pacing {
    /// Pacing from now on: simulated cycle `now` is the wall clock's now.
    pub fn starting(now: u64) -> Pacing {
        Pacing { wall_start: Instant::now(), sim_start: now }
    }

    /// With a bridge: takes in the peer's frames and returns how far
    /// simulated time may advance from `now` toward `want` (a chip clocked
    /// at `clock` Hz) without running ahead of the wall clock (waiting for
    /// the peer when it would).
    pub(crate) fn pace(&self, bus: &mut Bus, now: u64, want: u64, clock: u64) -> u64 {
        let p = self;
        bus.bridge_poll(now);
        let allowed = |p: &Pacing| p.sim_start + (p.wall_start.elapsed().as_nanos() * u128::from(clock) / 1_000_000_000) as u64;
        let mut limit = allowed(p);
        if want > limit {
            let ahead_ns = (want - limit) * 1_000_000_000 / clock;
            if let Some(b) = &bus.net.bridge {
                b.wait(Duration::from_nanos(ahead_ns.min(1_000_000)));
            }
            bus.bridge_poll(now);
            limit = allowed(p);
        }
        want.min(limit.max(now))
    }
}
