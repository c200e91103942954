//! fio-like workload generator with data verification.
//!
//! A job keeps `iodepth` I/Os in flight on one namespace of one function
//! (or of one NVMe/TCP initiator model, `crate::net::nvmf_host`), spread
//! over the controller's I/O queues ([`IoPath`]). With `verify`, every sector
//! written carries its LBA, a write generation, the job's tag and a
//! checksum; every read checks them against what the job last wrote there
//! (never-written sectors must read as zeros).

use super::nvme::{opc, CmdError, Controller, Cqe, DataBuf, Namespace, Sqe};
use crate::net::nvmf_host::shared::{Handle, IoError, IoOp};
use super::Host;
use serde::Serialize;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Access pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rw {
    Read,
    Write,
    RandRead,
    RandWrite,
    RandRw,
    ReadWrite,
}

impl Rw {
    pub fn parse(s: &str) -> Option<Rw> {
        Some(match s {
            "read" => Rw::Read,
            "write" => Rw::Write,
            "randread" => Rw::RandRead,
            "randwrite" => Rw::RandWrite,
            "randrw" => Rw::RandRw,
            "readwrite" | "rw" => Rw::ReadWrite,
            _ => return None,
        })
    }
    fn random(self) -> bool {
        matches!(self, Rw::RandRead | Rw::RandWrite | Rw::RandRw)
    }
}

/// Where a job's I/Os go: the host's NVMe driver on a PCIe function, or
/// an NVMe/TCP initiator model on the network.
#[derive(Clone)]
pub enum IoPath {
    Pcie(Controller),
    Fabric(Handle),
}

/// A job's data buffer: host memory for PCIe (the controller moves the
/// data by DMA), the initiator's own memory for NVMe/TCP.
pub enum JobBuf {
    Pcie(DataBuf),
    Fabric(Rc<RefCell<Vec<u8>>>),
}

impl JobBuf {
    pub fn write(&self, h: &Host, data: &[u8]) {
        match self {
            JobBuf::Pcie(b) => b.write(h, data),
            JobBuf::Fabric(b) => b.borrow_mut().copy_from_slice(data),
        }
    }

    pub fn read(&self, h: &Host, out: &mut [u8]) {
        match self {
            JobBuf::Pcie(b) => b.read(h, out),
            JobBuf::Fabric(b) => out.copy_from_slice(&b.borrow()),
        }
    }
}

impl IoPath {
    fn namespace(&self, nsid: u32) -> Option<Namespace> {
        match self {
            IoPath::Pcie(c) => c.namespaces().into_iter().find(|n| n.nsid == nsid),
            IoPath::Fabric(f) => f.namespace(nsid).map(|g| Namespace { nsid, blocks: g.blocks, block_size: g.block_size }),
        }
    }

    fn io_qids(&self) -> Vec<u16> {
        match self {
            IoPath::Pcie(c) => c.io_qids(),
            IoPath::Fabric(f) => f.io_qids(),
        }
    }

    fn alloc(&self, h: &Host, len: u32, scattered: bool, offset: u32) -> JobBuf {
        match self {
            IoPath::Pcie(_) if scattered => JobBuf::Pcie(DataBuf::alloc_scattered(h, len, offset)),
            IoPath::Pcie(_) => JobBuf::Pcie(DataBuf::alloc(h, len, offset)),
            IoPath::Fabric(_) => JobBuf::Fabric(Rc::new(RefCell::new(vec![0u8; len as usize]))),
        }
    }

    /// A Read or Write of `nlb0 + 1` blocks at `slba` moving `buf`.
    async fn rw(&self, qid: u16, op: u8, nsid: u32, slba: u64, nlb0: u32, buf: &JobBuf) -> Result<(), CmdError> {
        match (self, buf) {
            (IoPath::Pcie(c), JobBuf::Pcie(b)) => {
                let sqe = Sqe::new(op).nsid(nsid).cdw(10, slba as u32).cdw(11, (slba >> 32) as u32).cdw(12, nlb0);
                c.data_command(qid, sqe, b).await.map(|_| ())
            }
            (IoPath::Fabric(f), JobBuf::Fabric(b)) => {
                let op = match op {
                    opc::READ => IoOp::Read,
                    opc::COMPARE => IoOp::Compare,
                    _ => IoOp::Write,
                };
                f.io(qid, op, nsid, slba, nlb0 as u16, b.clone()).await.map_err(fabric_error)
            }
            _ => Err(CmdError::Dead("buffer of another transport".into())),
        }
    }
}

/// An initiator's I/O error as the driver's: an NVMe status is retried
/// the same way (DNR clear), a transport failure is not.
fn fabric_error(e: IoError) -> CmdError {
    match e {
        IoError::Status(s) => CmdError::Status(Cqe { dw0: 0, dw1: 0, sq_head: 0, sq_id: 0, cid: 0, status: s.to_field() }),
        IoError::Transport(why) => CmdError::Dead(format!("NVMe/TCP transport: {why}")),
    }
}

/// One job.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub name: String,
    pub function: u16,
    /// The initiator model it runs on (NVMe/TCP) instead of `function`.
    pub initiator: Option<String>,
    pub nsid: u32,
    pub rw: Rw,
    /// Percentage of reads for mixed patterns.
    pub read_pct: u32,
    pub bs: u32,
    pub iodepth: u32,
    /// Warm-up (cycles) before measuring: I/Os submitted earlier are
    /// verified but not counted; `runtime` starts after it.
    pub ramp: u64,
    /// Stop after this much simulated time (cycles) ...
    pub runtime: Option<u64>,
    /// ... or after this many bytes.
    pub size: Option<u64>,
    pub verify: bool,
    /// After the run, read back every block the job wrote and check it
    /// (lost writes show up even where the workload never read again).
    pub verify_at_end: bool,
    /// The end-of-job check by NVMe Compare instead of Read.
    pub compare: bool,
    /// Region of the namespace (bytes): [offset, offset + len).
    pub offset: u64,
    pub len: u64,
    pub seed: u64,
    /// Allocate data buffers on non-contiguous pages.
    pub scattered: bool,
    /// Byte offset of data buffers inside their first page.
    pub buf_offset: u32,
    /// Start this long (cycles) after the workload, after rescanning the
    /// function's namespaces (fio's `startdelay`; a namespace attached at
    /// run time).
    pub startdelay: Option<u64>,
}

impl JobSpec {
    /// Where it runs, for messages: "fn1 ns2" or "h0 ns2".
    pub fn label(&self) -> String {
        match &self.initiator {
            Some(i) => format!("{i} ns{}", self.nsid),
            None => format!("fn{} ns{}", self.function, self.nsid),
        }
    }
}

/// Latency percentiles and rates of one direction.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirStats {
    pub ios: u64,
    pub bytes: u64,
    pub iops: f64,
    pub mb_per_s: f64,
    pub lat_avg_us: f64,
    pub lat_p50_us: f64,
    pub lat_p99_us: f64,
    pub lat_p999_us: f64,
    pub lat_max_us: f64,
    /// Latency distribution: (percentile, microseconds) points.
    pub lat_cdf: Vec<(f64, f64)>,
}

/// One job's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JobResult {
    pub name: String,
    pub function: u16,
    /// The initiator model it ran on (NVMe/TCP jobs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    pub nsid: u32,
    pub rw: String,
    pub bs: u32,
    pub iodepth: u32,
    pub elapsed_us: f64,
    pub read: DirStats,
    pub write: DirStats,
    pub total: DirStats,
    pub errors: u64,
    pub retries: u64,
    pub verify_checked: u64,
    pub verify_errors: u64,
    /// Of the verify errors: acknowledged writes not found (an older
    /// generation of the block's data, or nothing at all) ...
    pub verify_lost: u64,
    /// ... and data that is no version of the block (wrong block, wrong
    /// job, bad checksum).
    pub verify_corrupt: u64,
    /// Sectors read back by the end-of-job sweep (`verify_at_end`).
    pub swept: u64,
    /// NVMe Compares the sweep sent (`compare`; one of altered data).
    pub compares: u64,
    pub first_errors: Vec<String>,
}

/// What a scenario's host reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub jobs: Vec<JobResult>,
    pub total: DirStats,
    pub verify_errors: u64,
    pub errors: u64,
    /// The scenario's hostile hosts (`[[hostile]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostile: Vec<super::hostile::HostileReport>,
    /// The scenario's pre-OS boots (`[preos]`), one per function.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boot: Vec<super::preos::BootReport>,
    /// The scenario's firmware updates (`[[firmware]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub firmware: Vec<super::fwupdate::FirmwareReport>,
}

struct JobState {
    gens: Vec<u32>,
    unknown: Vec<bool>,
    inflight: Vec<bool>,
    seq_next: u64,
    bytes_done: u64,
    /// Latencies in nanoseconds.
    lat_read: Vec<u64>,
    lat_write: Vec<u64>,
    bytes_read: u64,
    bytes_write: u64,
    errors: u64,
    retries: u64,
    checked: u64,
    verify_errors: u64,
    lost: u64,
    corrupt: u64,
    /// NVMe Compares the sweep sent (`compare`).
    compares: u64,
    first_errors: Vec<String>,
    workers_left: u32,
    done_waker: Option<Waker>,
    stop: bool,
}

struct AllDone(Rc<RefCell<JobState>>);

impl Future for AllDone {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.borrow_mut();
        if s.workers_left == 0 {
            Poll::Ready(())
        } else {
            s.done_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// xorshift64* (deterministic per job and worker).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

const MAGIC: u32 = 0x5645_5044; // "DPEV"

/// Whether `data` is a sector of the verify pattern of any LBA (header
/// magic and checksum), e.g. plaintext found where it has no place.
pub fn is_pattern(data: &[u8]) -> bool {
    let n = data.len();
    n >= 24 && u32::from_le_bytes(data[0..4].try_into().unwrap()) == MAGIC && fnv32(&data[..n - 4]) == u32::from_le_bytes(data[n - 4..].try_into().unwrap())
}

/// Whether `data` is a sector of the verify pattern written for `lba` (by
/// any job, any generation): its header names that LBA and its checksum
/// holds.
pub fn is_pattern_of(data: &[u8], lba: u64) -> bool {
    let n = data.len();
    n >= 24
        && u32::from_le_bytes(data[0..4].try_into().unwrap()) == MAGIC
        && u64::from_le_bytes(data[8..16].try_into().unwrap()) == lba
        && fnv32(&data[..n - 4]) == u32::from_le_bytes(data[n - 4..].try_into().unwrap())
}

/// Fills one sector with the verify pattern of (lba, gen, tag).
pub fn fill_sector(out: &mut [u8], lba: u64, gen: u32, tag: u32) {
    let n = out.len();
    out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&gen.to_le_bytes());
    out[8..16].copy_from_slice(&lba.to_le_bytes());
    out[16..20].copy_from_slice(&tag.to_le_bytes());
    let mut r = Rng::new(lba ^ (u64::from(gen) << 40) ^ u64::from(tag));
    for chunk in out[20..n - 4].chunks_mut(8) {
        let v = r.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let c = fnv32(&out[..n - 4]);
    out[n - 4..].copy_from_slice(&c.to_le_bytes());
}

/// What a sector that fails verification holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// An older generation of this block's own data, or zeros: an
    /// acknowledged write is missing.
    Lost,
    /// Anything else: another block's or job's data, a bad checksum,
    /// garbage where nothing was written.
    Corrupt,
}

/// Checks one sector; `gen == 0` means never written (zeros expected).
pub fn check_sector(data: &[u8], lba: u64, gen: u32, tag: u32) -> Result<(), String> {
    sector_damage(data, lba, gen, tag).map_err(|(_, e)| e)
}

/// [`check_sector`] telling a lost write from corruption.
pub fn sector_damage(data: &[u8], lba: u64, gen: u32, tag: u32) -> Result<(), (Damage, String)> {
    let n = data.len();
    if gen == 0 {
        return if data.iter().all(|&b| b == 0) { Ok(()) } else { Err((Damage::Corrupt, format!("lba {lba}: never written but not zero"))) };
    }
    if data.iter().all(|&b| b == 0) {
        return Err((Damage::Lost, format!("lba {lba}: zeros, expected generation {gen}")));
    }
    let corrupt = |e: String| Err((Damage::Corrupt, e));
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let g = u32::from_le_bytes(data[4..8].try_into().unwrap());
    let l = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let t = u32::from_le_bytes(data[16..20].try_into().unwrap());
    let c = u32::from_le_bytes(data[n - 4..].try_into().unwrap());
    if magic != MAGIC {
        return corrupt(format!("lba {lba}: no verify header (magic {magic:#x})"));
    }
    if l != lba {
        return corrupt(format!("lba {lba}: holds data of lba {l}"));
    }
    if t != tag {
        return corrupt(format!("lba {lba}: holds data of another job (tag {t:#x})"));
    }
    if fnv32(&data[..n - 4]) != c {
        return corrupt(format!("lba {lba}: checksum mismatch"));
    }
    if g != gen {
        let damage = if g < gen { Damage::Lost } else { Damage::Corrupt };
        return Err((damage, format!("lba {lba}: generation {g}, expected {gen}")));
    }
    Ok(())
}

fn dir_stats(lat: &mut [u64], bytes: u64, secs: f64) -> DirStats {
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            0.0
        } else {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i] as f64 / 1000.0
        }
    };
    let ios = lat.len() as u64;
    DirStats {
        ios,
        bytes,
        iops: if secs > 0.0 { ios as f64 / secs } else { 0.0 },
        mb_per_s: if secs > 0.0 { bytes as f64 / secs / 1e6 } else { 0.0 },
        lat_avg_us: if ios > 0 { lat.iter().map(|&x| x as f64).sum::<f64>() / ios as f64 / 1000.0 } else { 0.0 },
        lat_p50_us: pct(0.50),
        lat_p99_us: pct(0.99),
        lat_p999_us: pct(0.999),
        lat_max_us: lat.last().map_or(0.0, |&x| x as f64 / 1000.0),
        lat_cdf: if lat.is_empty() {
            Vec::new()
        } else {
            (0..=100).map(|p| f64::from(p) / 100.0).chain([0.995, 0.999, 0.9999]).map(|p| (p * 100.0, pct(p.max(0.0001)))).collect()
        },
    }
}

impl JobResult {
    /// The result of a job that could not start: one error, `why`.
    pub fn failed(spec: &JobSpec, why: String) -> JobResult {
        let mut r = JobResult::empty(spec);
        r.errors = 1;
        r.first_errors.push(why);
        r
    }

    fn empty(spec: &JobSpec) -> JobResult {
        JobResult {
            name: spec.name.clone(),
            function: spec.function,
            initiator: spec.initiator.clone(),
            nsid: spec.nsid,
            rw: format!("{:?}", spec.rw).to_lowercase(),
            bs: spec.bs,
            iodepth: spec.iodepth,
            ..Default::default()
        }
    }
}

/// Runs one job to completion on `ctrl`.
pub async fn run_job(h: Host, ctrl: IoPath, spec: JobSpec) -> JobResult {
    let ns = ctrl.namespace(spec.nsid);
    let mut result = JobResult::empty(&spec);
    let Some(ns) = ns else {
        return match &spec.initiator {
            Some(i) => JobResult::failed(&spec, format!("initiator {i}: the controller has no namespace {}", spec.nsid)),
            None => JobResult::failed(&spec, format!("function {} has no namespace {}", spec.function, spec.nsid)),
        };
    };
    let bs = spec.bs;
    if bs % ns.block_size != 0 {
        result.errors = 1;
        result.first_errors.push(format!("bs {bs} is not a multiple of the {} B block size", ns.block_size));
        return result;
    }
    let ns_bytes = ns.blocks * u64::from(ns.block_size);
    let len = spec.len.min(ns_bytes.saturating_sub(spec.offset));
    let nblocks = len / u64::from(bs);
    if nblocks == 0 {
        result.errors = 1;
        result.first_errors.push(format!("region of {len} bytes holds no {bs}-byte block"));
        return result;
    }
    let qids = ctrl.io_qids();
    let state = Rc::new(RefCell::new(JobState {
        gens: vec![0; nblocks as usize],
        unknown: vec![false; nblocks as usize],
        inflight: vec![false; nblocks as usize],
        seq_next: 0,
        bytes_done: 0,
        lat_read: Vec::new(),
        lat_write: Vec::new(),
        bytes_read: 0,
        bytes_write: 0,
        errors: 0,
        retries: 0,
        checked: 0,
        verify_errors: 0,
        lost: 0,
        corrupt: 0,
        compares: 0,
        first_errors: Vec::new(),
        workers_left: spec.iodepth,
        done_waker: None,
        stop: false,
    }));
    let start = h.now();
    let tag = (spec.seed as u32) ^ (u32::from(spec.function) << 16) ^ spec.nsid;
    for w in 0..spec.iodepth {
        let (h2, ctrl, spec, state) = (h.clone(), ctrl.clone(), spec.clone(), state.clone());
        let qid = qids[w as usize % qids.len().max(1)];
        h.spawn(async move {
            worker(h2, ctrl, spec, state.clone(), qid, w, start, nblocks, tag, ns.block_size).await;
            let mut s = state.borrow_mut();
            s.workers_left -= 1;
            if s.workers_left == 0 {
                if let Some(wk) = s.done_waker.take() {
                    wk.wake();
                }
            }
        });
    }
    AllDone(state.clone()).await;
    let elapsed = h.ns(h.now().saturating_sub(start + spec.ramp));
    if spec.verify && spec.verify_at_end {
        result.swept = sweep(&h, &ctrl, &spec, &state, qids.first().copied().unwrap_or(1), tag, ns.block_size).await;
    }
    let secs = elapsed as f64 / 1e9;
    let mut s = state.borrow_mut();
    let (br, bw) = (s.bytes_read, s.bytes_write);
    let mut all: Vec<u64> = s.lat_read.iter().chain(s.lat_write.iter()).copied().collect();
    result.read = dir_stats(&mut s.lat_read, br, secs);
    result.write = dir_stats(&mut s.lat_write, bw, secs);
    result.total = dir_stats(&mut all, br + bw, secs);
    result.elapsed_us = elapsed as f64 / 1000.0;
    result.errors = s.errors;
    result.retries = s.retries;
    result.verify_checked = s.checked;
    result.verify_errors = s.verify_errors;
    result.verify_lost = s.lost;
    result.verify_corrupt = s.corrupt;
    result.compares = s.compares;
    result.first_errors = std::mem::take(&mut s.first_errors);
    result
}

impl JobState {
    /// Verifies `data` read from `slba` (sectors of `sector` bytes) against
    /// generation `gen`, counting what it finds.
    fn check(&mut self, data: &[u8], sector: u32, slba: u64, gen: u32, tag: u32, spec: &JobSpec) {
        for (i, sec) in data.chunks(sector as usize).enumerate() {
            self.checked += 1;
            if let Err((damage, e)) = sector_damage(sec, slba + i as u64, gen, tag) {
                self.verify_errors += 1;
                match damage {
                    Damage::Lost => self.lost += 1,
                    Damage::Corrupt => self.corrupt += 1,
                }
                if self.first_errors.len() < 8 {
                    self.first_errors.push(format!("{}: {e}", spec.label()));
                }
            }
        }
    }
}

/// Compare Failure (NVM Command Set 1.0 figure 37: SCT 2h Media and Data
/// Integrity Errors, SC 85h).
const COMPARE_FAILURE: u8 = 0x85;

/// Reads back every block the job wrote (known content only) after the
/// run, one I/O at a time on queue `qid`, or with `compare` sends it for
/// NVMe Compare; returns the sectors checked.
async fn sweep(h: &Host, ctrl: &IoPath, spec: &JobSpec, state: &Rc<RefCell<JobState>>, qid: u16, tag: u32, sector: u32) -> u64 {
    let buf = ctrl.alloc(h, spec.bs, false, 0);
    let mut data = vec![0u8; spec.bs as usize];
    let blocks_per_io = u64::from(spec.bs / sector);
    let first_lba = spec.offset / u64::from(sector);
    let nblocks = state.borrow().gens.len();
    let mut swept = 0;
    let mut altered_done = false;
    for b in 0..nblocks {
        let (gen, unknown) = {
            let s = state.borrow();
            (s.gens[b], s.unknown[b])
        };
        if gen == 0 || unknown {
            continue;
        }
        let slba = first_lba + b as u64 * blocks_per_io;
        let op = if spec.compare { opc::COMPARE } else { opc::READ };
        if spec.compare {
            // The block's expected content goes to the controller.
            for (i, sec) in data.chunks_mut(sector as usize).enumerate() {
                fill_sector(sec, slba + i as u64, gen, tag);
            }
            if !altered_done {
                // First, a Compare that must fail: the same data with one
                // byte changed (a check that cannot fail proves nothing).
                altered_done = true;
                let mut bad = data.clone();
                let mid = bad.len() / 2;
                bad[mid] ^= 0x5a;
                buf.write(h, &bad);
                let r = ctrl.rw(qid, opc::COMPARE, spec.nsid, slba, (blocks_per_io - 1) as u32, &buf).await;
                let failed_as_it_must = matches!(&r, Err(CmdError::Status(c)) if c.sct() == 2 && c.sc() == COMPARE_FAILURE);
                let mut s = state.borrow_mut();
                s.compares += 1;
                if !failed_as_it_must {
                    s.verify_errors += 1;
                    s.corrupt += 1;
                    if s.first_errors.len() < 8 {
                        s.first_errors.push(format!("{} sweep: Compare of altered data at lba {slba} did not fail with Compare Failure: {r:?}", spec.label()));
                    }
                }
            }
            buf.write(h, &data);
        }
        let check = || ctrl.rw(qid, op, spec.nsid, slba, (blocks_per_io - 1) as u32, &buf);
        let mut outcome = check().await;
        for _ in 0..5 {
            if !(matches!(&outcome, Err(CmdError::Reset)) || matches!(&outcome, Err(CmdError::Status(c)) if !c.dnr())) {
                break;
            }
            outcome = check().await;
        }
        let mut s = state.borrow_mut();
        match outcome {
            Ok(_) if spec.compare => {
                // Every sector equal to what the job last wrote.
                s.compares += 1;
                s.checked += blocks_per_io;
                swept += blocks_per_io;
            }
            Err(CmdError::Status(c)) if spec.compare && c.sct() == 2 && c.sc() == COMPARE_FAILURE => {
                s.compares += 1;
                s.verify_errors += 1;
                s.corrupt += 1;
                if s.first_errors.len() < 8 {
                    s.first_errors.push(format!("{} sweep: Compare Failure at lba {slba} (generation {gen})", spec.label()));
                }
            }
            Ok(_) => {
                drop(s);
                buf.read(h, &mut data);
                state.borrow_mut().check(&data, sector, slba, gen, tag, spec);
                swept += blocks_per_io;
            }
            Err(e) => {
                s.errors += 1;
                if s.first_errors.len() < 8 {
                    s.first_errors.push(format!("{} sweep read lba {slba}: {e}", spec.label()));
                }
            }
        }
    }
    swept
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    h: Host,
    ctrl: IoPath,
    spec: JobSpec,
    state: Rc<RefCell<JobState>>,
    qid: u16,
    index: u32,
    start: u64,
    nblocks: u64,
    tag: u32,
    sector: u32,
) {
    let mut rng = Rng::new(spec.seed ^ (u64::from(index) << 32) ^ 0x5151);
    let buf = ctrl.alloc(&h, spec.bs, spec.scattered, spec.buf_offset);
    let measure_from = start + spec.ramp;
    let runtime_end = spec.runtime.map(|r| measure_from + r);
    let mut data = vec![0u8; spec.bs as usize];
    let blocks_per_io = u64::from(spec.bs / sector);
    let first_lba = spec.offset / u64::from(sector);
    loop {
        // Pick the operation and a block nobody else is using.
        let (is_read, block) = {
            let mut s = state.borrow_mut();
            if s.stop || runtime_end.is_some_and(|e| h.now() >= e) || spec.size.is_some_and(|sz| s.bytes_done >= sz) {
                s.stop = true;
                break;
            }
            let is_read = match spec.rw {
                Rw::Read | Rw::RandRead => true,
                Rw::Write | Rw::RandWrite => false,
                Rw::RandRw | Rw::ReadWrite => rng.below(100) < u64::from(spec.read_pct),
            };
            let mut pick = None;
            for _ in 0..16 {
                let b = if spec.rw.random() {
                    rng.below(nblocks)
                } else {
                    let b = s.seq_next % nblocks;
                    s.seq_next += 1;
                    b
                };
                if !s.inflight[b as usize] {
                    pick = Some(b);
                    break;
                }
            }
            if pick.is_none() {
                // Nearly every block is busy: take the next free one after
                // a random start instead of polling (the scenario loader
                // keeps iodepth <= blocks, so one is free).
                let from = rng.below(nblocks);
                pick = (0..nblocks).map(|i| (from + i) % nblocks).find(|&b| !s.inflight[b as usize]);
            }
            let Some(b) = pick else {
                drop(s);
                h.sleep(h.cycles(1000)).await;
                continue;
            };
            s.inflight[b as usize] = true;
            if h.now() >= measure_from {
                s.bytes_done += u64::from(spec.bs);
            }
            (is_read, b)
        };
        let slba = first_lba + block * blocks_per_io;
        let nlb = (blocks_per_io - 1) as u32;
        let gen = {
            let s = state.borrow();
            if is_read { s.gens[block as usize] } else { s.gens[block as usize].wrapping_add(1).max(1) }
        };
        if !is_read {
            for (i, sec) in data.chunks_mut(sector as usize).enumerate() {
                fill_sector(sec, slba + i as u64, gen, tag);
            }
            buf.write(&h, &data);
        }
        let op = if is_read { opc::READ } else { opc::WRITE };
        let t0 = h.now();
        let mut outcome = ctrl.rw(qid, op, spec.nsid, slba, nlb, &buf).await;
        let mut tries = 0;
        // Like Linux (`nvme_decide_disposition`, `nvme_max_retries` = 5): a
        // command failed by a controller reset, or with a status whose DNR
        // bit is clear, is sent again.
        while matches!(&outcome, Err(CmdError::Reset)) || matches!(&outcome, Err(CmdError::Status(c)) if !c.dnr()) {
            if tries >= 5 {
                break;
            }
            tries += 1;
            state.borrow_mut().retries += 1;
            outcome = ctrl.rw(qid, op, spec.nsid, slba, nlb, &buf).await;
        }
        let lat = h.ns(h.now() - t0);
        // Ramp I/Os are verified and tracked, not counted.
        let counted = t0 >= measure_from;
        if counted {
            h.state().ios_done += 1;
        }
        let mut s = state.borrow_mut();
        s.inflight[block as usize] = false;
        match outcome {
            Ok(_) => {
                if is_read {
                    if counted {
                        s.lat_read.push(lat);
                        s.bytes_read += u64::from(spec.bs);
                    }
                    if spec.verify && !s.unknown[block as usize] {
                        drop(s);
                        buf.read(&h, &mut data);
                        let mut s = state.borrow_mut();
                        s.check(&data, sector, slba, gen, tag, &spec);
                    }
                } else {
                    if counted {
                        s.lat_write.push(lat);
                        s.bytes_write += u64::from(spec.bs);
                    }
                    s.gens[block as usize] = gen;
                    s.unknown[block as usize] = false;
                }
            }
            Err(e) => {
                s.errors += 1;
                if !is_read {
                    // The block may hold old or new data now.
                    s.unknown[block as usize] = true;
                }
                if s.first_errors.len() < 8 {
                    s.first_errors.push(format!("{} {} lba {slba}: {e}", spec.label(), if is_read { "read" } else { "write" }));
                }
            }
        }
    }
    let _ = &buf;
}

impl Report {
    /// Combines job results.
    pub fn new(jobs: Vec<JobResult>) -> Report {
        let mut t = DirStats::default();
        let secs = jobs.iter().map(|j| j.elapsed_us).fold(0.0, f64::max) / 1e6;
        let mut lat_sum = 0.0;
        for j in &jobs {
            t.ios += j.total.ios;
            t.bytes += j.total.bytes;
            lat_sum += j.total.lat_avg_us * j.total.ios as f64;
            t.lat_p50_us = t.lat_p50_us.max(j.total.lat_p50_us);
            t.lat_p99_us = t.lat_p99_us.max(j.total.lat_p99_us);
            t.lat_p999_us = t.lat_p999_us.max(j.total.lat_p999_us);
            t.lat_max_us = t.lat_max_us.max(j.total.lat_max_us);
        }
        if secs > 0.0 {
            t.iops = t.ios as f64 / secs;
            t.mb_per_s = t.bytes as f64 / secs / 1e6;
        }
        if t.ios > 0 {
            t.lat_avg_us = lat_sum / t.ios as f64;
        }
        // The distribution of the busiest job stands for the total.
        if let Some(j) = jobs.iter().max_by_key(|j| j.total.ios) {
            t.lat_cdf = j.total.lat_cdf.clone();
        }
        Report {
            verify_errors: jobs.iter().map(|j| j.verify_errors).sum(),
            errors: jobs.iter().map(|j| j.errors).sum(),
            total: t,
            jobs,
            hostile: Vec::new(),
            boot: Vec::new(),
            firmware: Vec::new(),
        }
    }

    /// fio-style text.
    pub fn text(&self) -> String {
        let mut o = String::new();
        if !self.boot.is_empty() {
            // A pre-OS boot runs no jobs: its reads are the report.
            for b in &self.boot {
                o.push_str(&b.text());
            }
            return o;
        }
        let line = |name: &str, d: &DirStats| {
            format!(
                "  {name:<5}: IOPS={:>9.0}, BW={:>8.1}MB/s, ios={:>8}, lat (us) avg={:>7.2} p50={:>7.2} p99={:>7.2} p99.9={:>7.2} max={:>7.2}\n",
                d.iops, d.mb_per_s, d.ios, d.lat_avg_us, d.lat_p50_us, d.lat_p99_us, d.lat_p999_us, d.lat_max_us
            )
        };
        for j in &self.jobs {
            let place = match &j.initiator {
                Some(i) => format!("initiator {i}"),
                None => format!("fn {}", j.function),
            };
            o.push_str(&format!(
                "{}: ({place}, ns {}) rw={} bs={} iodepth={} runtime={:.1}us\n",
                j.name, j.nsid, j.rw, j.bs, j.iodepth, j.elapsed_us
            ));
            if j.read.ios > 0 {
                o.push_str(&line("read", &j.read));
            }
            if j.write.ios > 0 {
                o.push_str(&line("write", &j.write));
            }
            o.push_str(&format!(
                "  verify: {} sectors checked, {} errors ({} lost, {} corrupt); I/O errors {}, retries {}{}\n",
                j.verify_checked,
                j.verify_errors,
                j.verify_lost,
                j.verify_corrupt,
                j.errors,
                j.retries,
                if j.compares > 0 { format!("; {} NVMe Compares at the end (the first of altered data)", j.compares) } else { String::new() }
            ));
            for e in &j.first_errors {
                o.push_str(&format!("    ! {e}\n"));
            }
        }
        o.push_str(&format!("TOTAL ({} jobs)\n", self.jobs.len()));
        o.push_str(&line("all", &self.total));
        o.push_str(&format!("  verify errors: {}, I/O errors: {}\n", self.verify_errors, self.errors));
        for h in &self.hostile {
            o.push_str(&h.text());
        }
        for f in &self.firmware {
            o.push_str(&f.text());
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(lba: u64, gen: u32, tag: u32) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        fill_sector(&mut s, lba, gen, tag);
        s
    }

    #[test]
    fn a_lost_write_is_told_from_corruption() {
        assert_eq!(sector_damage(&sector(7, 3, 1), 7, 3, 1), Ok(()));
        // An older generation of the same block, or nothing: lost.
        assert_eq!(sector_damage(&sector(7, 2, 1), 7, 3, 1).map_err(|e| e.0), Err(Damage::Lost));
        assert_eq!(sector_damage(&[0u8; 512], 7, 3, 1).map_err(|e| e.0), Err(Damage::Lost));
        // Another block's, another job's or a newer generation: corrupt.
        assert_eq!(sector_damage(&sector(8, 3, 1), 7, 3, 1).map_err(|e| e.0), Err(Damage::Corrupt));
        assert_eq!(sector_damage(&sector(7, 3, 2), 7, 3, 1).map_err(|e| e.0), Err(Damage::Corrupt));
        assert_eq!(sector_damage(&sector(7, 4, 1), 7, 3, 1).map_err(|e| e.0), Err(Damage::Corrupt));
        let mut flipped = sector(7, 3, 1);
        flipped[100] ^= 1;
        assert_eq!(sector_damage(&flipped, 7, 3, 1).map_err(|e| e.0), Err(Damage::Corrupt));
        // Never written: zeros expected, anything else is corrupt.
        assert_eq!(sector_damage(&[0u8; 512], 7, 0, 1), Ok(()));
        assert_eq!(sector_damage(&sector(7, 1, 1), 7, 0, 1).map_err(|e| e.0), Err(Damage::Corrupt));
    }
}
