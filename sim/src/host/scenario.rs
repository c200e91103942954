//! Runs a scenario's host side: enumerate the PF, enable VFs, probe one
//! NVMe controller per function in use, run the jobs, check expectations.

use super::nvme::{Controller, DriverOptions};
use super::pci;
use super::workload::{run_job, IoPath, JobResult, JobSpec, Report, Rw};
use crate::net::nvmf_host::shared::Handle;
use super::Host;
use dpu_targets::{parse_size, parse_time_ns, JobCfg, Scenario};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Builds the boot configuration blob (`dpu_hal::regs::bootcfg`) for the scenario.
pub fn bootcfg_blob(sc: &Scenario) -> Vec<u8> {
    crate::bootcfg::BootConfig::from_scenario(sc).to_bytes()
}

/// Boot configuration for RAM namespaces given as (function, nsid, bytes, block size).
pub fn bootcfg_for(ns: &[(u16, u32, u64, u32)]) -> Vec<u8> {
    crate::bootcfg::BootConfig::ram(ns).to_bytes()
}

/// Driver options from the scenario's `[host]`.
pub fn driver_options(sc: &Scenario) -> DriverOptions {
    let h = &sc.host;
    DriverOptions {
        io_queues: h.io_queues,
        io_queue_depth: h.io_queue_depth,
        admin_queue_depth: 32,
        io_timeout_ns: h.io_timeout_ms * 1_000_000,
        admin_timeout_ns: h.io_timeout_ms * 2_000_000,
        use_sgl: h.use_sgl,
        submit_ns: h.submit_ns,
        complete_ns: h.complete_ns,
        namespace_notices: h.namespace_notices,
    }
}

/// One instance of job `j` (index `ji`): what is the same for PCIe and
/// initiator jobs; the caller names it and places its region.
#[allow(clippy::too_many_arguments)]
fn instance(h: &Host, j: &JobCfg, name: String, function: u16, initiator: Option<String>, offset: u64, len: u64, seed: u64) -> JobSpec {
    let time = |t: &Option<String>| t.as_deref().and_then(|r| parse_time_ns(r).ok()).map(|ns| h.cycles(ns));
    JobSpec {
        name,
        function,
        initiator,
        nsid: j.nsid,
        rw: Rw::parse(&j.rw).unwrap_or(Rw::RandRead),
        read_pct: j.rwmixread,
        bs: parse_size(&j.bs).unwrap_or(4096) as u32,
        iodepth: j.iodepth,
        ramp: time(&j.ramp_time).unwrap_or(0),
        runtime: time(&j.runtime),
        size: j.size.as_deref().and_then(|s| parse_size(s).ok()),
        verify: j.verify,
        verify_at_end: j.verify_at_end,
        compare: j.compare,
        offset,
        len,
        seed,
        scattered: j.scattered,
        buf_offset: j.buf_offset,
        startdelay: time(&j.startdelay),
    }
}

/// `name` for instance `n` of a job run `numjobs` times.
fn instance_name(j: &JobCfg, on: &str, n: u32) -> String {
    if j.numjobs > 1 {
        format!("{}.{on}.{n}", j.name)
    } else {
        format!("{}.{on}", j.name)
    }
}

/// The job instances of a scenario (per function and per `numjobs`).
pub fn job_specs(h: &Host, sc: &Scenario) -> Vec<JobSpec> {
    let mut out = Vec::new();
    let namespaces = sc.namespaces();
    for (ji, j) in sc.jobs.iter().enumerate() {
        let bs = parse_size(&j.bs).unwrap_or(4096) as u32;
        for &f in &j.functions {
            let attached = j.attached.as_ref().and_then(|a| parse_size(&a.size).ok());
            let ns_bytes = namespaces.iter().find(|n| n.0 == f && n.1 == j.nsid).map(|n| n.2).or(attached).unwrap_or(0);
            let start = j.offset.as_deref().and_then(|o| parse_size(o).ok()).unwrap_or(0).min(ns_bytes);
            let region = j.region.as_deref().and_then(|r| parse_size(r).ok()).unwrap_or(ns_bytes - start).min(ns_bytes - start);
            let slice = (region / u64::from(j.numjobs)) / u64::from(bs) * u64::from(bs);
            for n in 0..j.numjobs {
                let seed = j.seed ^ ((ji as u64) << 40) ^ (u64::from(f) << 20) ^ u64::from(n) ^ 0x00d0_0d1e;
                out.push(instance(h, j, instance_name(j, &format!("fn{f}"), n), f, None, start + u64::from(n) * slice, slice, seed));
            }
        }
    }
    out
}

/// The job instances that run on initiator models (per `numjobs`): the
/// region is resolved against the namespace's size when the job starts.
pub fn initiator_job_specs(h: &Host, sc: &Scenario) -> Vec<JobSpec> {
    let mut out = Vec::new();
    for (ji, j) in sc.jobs.iter().enumerate() {
        let Some(name) = &j.initiator else { continue };
        let bs = parse_size(&j.bs).unwrap_or(4096) as u32;
        let start = j.offset.as_deref().and_then(|o| parse_size(o).ok()).unwrap_or(0);
        let region = j.region.as_deref().and_then(|r| parse_size(r).ok()).unwrap_or(u64::MAX - start);
        let slice = if region == u64::MAX - start { u64::MAX } else { (region / u64::from(j.numjobs)) / u64::from(bs) * u64::from(bs) };
        for n in 0..j.numjobs {
            let offset = if slice == u64::MAX { start } else { start + u64::from(n) * slice };
            let seed = j.seed ^ ((ji as u64) << 40) ^ 0x1e17_0000 ^ u64::from(n) ^ 0x00d0_0d1e;
            let mut spec = instance(h, j, instance_name(j, name, n), 0, Some(name.clone()), offset, slice, seed);
            // Refused for initiator jobs by the scenario check; never used.
            (spec.scattered, spec.buf_offset, spec.startdelay) = (false, 0, None);
            out.push(spec);
        }
    }
    out
}

struct Gather {
    results: Rc<RefCell<Vec<JobResult>>>,
    want: usize,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl Future for Gather {
    type Output = Vec<JobResult>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<JobResult>> {
        if self.results.borrow().len() >= self.want {
            Poll::Ready(std::mem::take(&mut *self.results.borrow_mut()))
        } else {
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Brings up every function the scenario uses; returns their controllers.
pub async fn bring_up(h: &Host, sc: &Scenario) -> Result<BTreeMap<u16, Controller>, String> {
    let mut used: Vec<u16> = sc.storage.iter().flat_map(|s| s.functions.iter().copied()).collect();
    used.extend(sc.jobs.iter().flat_map(|j| j.functions.iter().copied()));
    if !sc.firmware.is_empty() {
        // Firmware updates go through the PF; VF 1 is checked to refuse them.
        used.push(0);
        if sc.host.vfs > 0 && sc.firmware.iter().any(|w| w.checks) {
            used.push(1);
        }
    }
    used.sort_unstable();
    used.dedup();
    if used.is_empty() && !sc.initiators.is_empty() {
        // Only initiator models run jobs: the PCIe side stays untouched.
        return Ok(BTreeMap::new());
    }
    let pf = pci::probe_pf(h).await?;
    let mut fns = vec![pf];
    if sc.host.vfs > 0 {
        fns.extend(pci::enable_vfs(h, sc.host.vfs, sc.host.vf_settle_ms).await?);
    }
    let opts = driver_options(sc);
    let mut ctrls = BTreeMap::new();
    for f in used {
        let pci = fns.get(usize::from(f)).cloned().ok_or(format!("function {f} was not enumerated"))?;
        ctrls.insert(f, Controller::probe(h, pci, opts.clone()).await?);
    }
    Ok(ctrls)
}

/// The host's main task for a scenario; `initiators` are the handles of
/// the scenario's initiator models, by name.
pub async fn run(h: Host, sc: Scenario, initiators: Vec<(String, Handle)>) {
    if sc.preos.is_some() {
        return boot(h, sc).await;
    }
    let r = async {
        let ctrls = bring_up(&h, &sc).await?;
        let hostile = super::hostile::spawn_all(&h, &sc, &ctrls, &driver_options(&sc))?;
        let firmware: Rc<RefCell<Vec<(usize, super::fwupdate::FirmwareReport)>>> = Rc::new(RefCell::new(Vec::new()));
        if let Some(pf) = ctrls.get(&0) {
            // In order, one after the other, as an operator would.
            let (h2, pf, vf, sc2, firmware) = (h.clone(), pf.clone(), ctrls.get(&1).cloned(), sc.clone(), firmware.clone());
            h.spawn(async move {
                for (i, cfg) in sc2.firmware.iter().enumerate() {
                    let r = super::fwupdate::run(h2.clone(), pf.clone(), vf.clone(), &sc2, cfg.clone()).await;
                    firmware.borrow_mut().push((i, r));
                }
            });
        }
        // `[host] sriov_cycle`: SR-IOV disabled, then enabled again.
        let sriov: Rc<RefCell<Option<Result<(), String>>>> = Rc::new(RefCell::new(None));
        if let Some(c) = sc.host.sriov_cycle.clone() {
            let (h2, sriov, settle) = (h.clone(), sriov.clone(), sc.host.vf_settle_ms);
            let at = |t: &str| h.cycles(dpu_targets::parse_time_ns(t).unwrap_or(0));
            let (disable, enable) = (at(&c.disable_at), at(&c.enable_at));
            h.spawn(async move {
                let start = h2.now();
                h2.sleep(disable).await;
                let mut r = pci::disable_vfs(&h2).await;
                if r.is_ok() {
                    h2.sleep((start + enable).saturating_sub(h2.now())).await;
                    r = pci::enable_vfs(&h2, c.vfs, settle).await.map(|vfs| h2.log(format!("sriov: {} VFs enumerated again", vfs.len())));
                }
                *sriov.borrow_mut() = Some(r.map_err(|e| format!("SR-IOV: {e}")));
            });
        }
        let specs = job_specs(&h, &sc);
        let fabric_specs = initiator_job_specs(&h, &sc);
        let results = Rc::new(RefCell::new(Vec::new()));
        let waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let want = specs.len() + fabric_specs.len();
        // The measurement window (stats JSON `window`) opens when the
        // longest ramp ends.
        let ramp = specs.iter().chain(fabric_specs.iter()).map(|s| s.ramp).max().unwrap_or(0);
        let jobs_done = Rc::new(std::cell::Cell::new(false));
        for (_, handle) in &initiators {
            handle.start();
        }
        if specs.is_empty() && !fabric_specs.is_empty() {
            // Only remote hosts run I/O: the workload (measurement
            // window, faults, scripted management calls) starts once
            // they are connected, whenever the card comes up.
            for (_, handle) in &initiators {
                let _ = handle.ready().await;
            }
        }
        if ramp == 0 {
            h.mark_window(true);
        } else {
            let (h2, jobs_done) = (h.clone(), jobs_done.clone());
            h.spawn(async move {
                h2.sleep(ramp).await;
                if !jobs_done.get() {
                    h2.mark_window(true);
                }
            });
        }
        for spec in specs {
            let ctrl = ctrls.get(&spec.function).cloned().ok_or("job on a function without controller")?;
            let (h2, results, waker) = (h.clone(), results.clone(), waker.clone());
            h.spawn(async move {
                let r = match spec.startdelay {
                    Some(d) => {
                        h2.sleep(d).await;
                        match ctrl.rescan_namespaces().await {
                            Ok(()) => run_job(h2, IoPath::Pcie(ctrl), spec).await,
                            Err(e) => super::workload::JobResult::failed(&spec, e),
                        }
                    }
                    None => run_job(h2, IoPath::Pcie(ctrl), spec).await,
                };
                results.borrow_mut().push(r);
                if let Some(w) = waker.borrow_mut().take() {
                    w.wake();
                }
            });
        }
        for spec in fabric_specs {
            let name = spec.initiator.clone().unwrap_or_default();
            let handle = initiators.iter().find(|(n, _)| *n == name).map(|(_, hd)| hd.clone()).ok_or(format!("no initiator model `{name}`"))?;
            let (h2, results, waker) = (h.clone(), results.clone(), waker.clone());
            h.spawn(async move {
                let r = match handle.ready().await {
                    Ok(()) => run_job(h2, IoPath::Fabric(handle), spec).await,
                    Err(e) => JobResult::failed(&spec, format!("initiator {name}: {e}")),
                };
                results.borrow_mut().push(r);
                if let Some(w) = waker.borrow_mut().take() {
                    w.wake();
                }
            });
        }
        let mut jobs = Gather { results, want, waker }.await;
        jobs_done.set(true);
        h.mark_window(false);
        let jobs_end_us = (want > 0).then(|| h.ns(h.now()) as f64 / 1000.0);
        while hostile.borrow().len() < sc.hostile.len() {
            h.sleep(h.cycles(10_000)).await;
        }
        let hostile = std::mem::take(&mut *hostile.borrow_mut());
        while firmware.borrow().len() < sc.firmware.len() {
            h.sleep(h.cycles(100_000)).await;
        }
        let firmware: Vec<_> = std::mem::take(&mut *firmware.borrow_mut()).into_iter().map(|(_, r)| r).collect();
        if sc.host.sriov_cycle.is_some() {
            while sriov.borrow().is_none() {
                h.sleep(h.cycles(100_000)).await;
            }
        }
        let sriov_problem = sriov.borrow_mut().take().and_then(Result::err);
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        let hostile_problems = super::hostile::problems(&sc, &hostile, &jobs, jobs_end_us);
        let mut report = Report::new(jobs);
        report.hostile = hostile;
        let firmware_problems: Vec<String> = firmware.iter().flat_map(|f| f.problems.iter().map(|p| format!("firmware: {p}"))).collect();
        report.firmware = firmware;
        // A hostile host shuts its own controller down.
        for c in ctrls.iter().filter(|(f, _)| !sc.hostile.iter().any(|x| x.function == **f)).map(|(_, c)| c) {
            if let Err(e) = c.shutdown().await {
                h.log(format!("shutdown: {e}"));
            }
        }
        let e = &sc.expect;
        let mut problems = Vec::new();
        if report.verify_errors > e.verify_errors {
            problems.push(format!("{} verify errors (expected at most {})", report.verify_errors, e.verify_errors));
        }
        if report.errors > e.io_errors {
            problems.push(format!("{} I/O errors (expected at most {})", report.errors, e.io_errors));
        }
        if report.total.ios < e.min_ios {
            problems.push(format!("{} I/Os (expected at least {})", report.total.ios, e.min_ios));
        }
        problems.extend(hostile_problems);
        problems.extend(firmware_problems);
        problems.extend(sriov_problem);
        h.state().report = Some(report);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
    .await;
    h.finish(r);
}

/// The host's main task for a `[preos]` scenario: the boot is the run.
async fn boot(h: Host, sc: Scenario) {
    let r = match super::preos::run_all(&h, &sc).await {
        Ok(boots) => {
            let problems = super::preos::problems(&sc, &boots);
            let mut report = Report::new(Vec::new());
            report.boot = boots;
            h.state().report = Some(report);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        }
        Err(e) => Err(e),
    };
    h.finish(r);
}
