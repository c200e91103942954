//! Scenario files (`targets/scenarios/*.toml`): what the simulated host
//! does (PCIe setup, NVMe driver options, fio-like jobs), what storage the
//! firmware is configured with, and what outcome is expected.

use crate::{load_toml, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: ScenarioInfo,
    #[serde(default)]
    pub host: HostCfg,
    #[serde(default)]
    pub storage: Vec<StorageCfg>,
    #[serde(default)]
    pub jobs: Vec<JobCfg>,
    #[serde(default)]
    pub expect: ExpectCfg,
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

fn d_settle() -> u64 {
    100
}
fn d_queues() -> u16 {
    4
}
fn d_depth() -> u16 {
    256
}
fn d_timeout() -> u64 {
    30
}
fn d_cpu() -> u64 {
    300
}

/// Host driver settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCfg {
    /// VFs to enable through SR-IOV (0 = PF only).
    #[serde(default)]
    pub vfs: u16,
    /// Wait after VF Enable before touching VFs (SR-IOV: 100 ms).
    #[serde(default = "d_settle")]
    pub vf_settle_ms: u64,
    /// I/O queue pairs per controller.
    #[serde(default = "d_queues")]
    pub io_queues: u16,
    #[serde(default = "d_depth")]
    pub io_queue_depth: u16,
    /// Command timeout before Abort (Linux: 30 s; shorter here).
    #[serde(default = "d_timeout")]
    pub io_timeout_ms: u64,
    /// Use SGLs for I/O if the controller supports them.
    #[serde(default)]
    pub use_sgl: bool,
    /// Host CPU time per submission / per completion.
    #[serde(default = "d_cpu")]
    pub submit_ns: u64,
    #[serde(default = "d_cpu")]
    pub complete_ns: u64,
}

impl Default for HostCfg {
    fn default() -> Self {
        HostCfg {
            vfs: 0,
            vf_settle_ms: d_settle(),
            io_queues: d_queues(),
            io_queue_depth: d_depth(),
            io_timeout_ms: d_timeout(),
            use_sgl: false,
            submit_ns: d_cpu(),
            complete_ns: d_cpu(),
        }
    }
}

fn d_nsid() -> u32 {
    1
}
fn d_bsize() -> u32 {
    512
}

/// Namespaces the firmware exposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageCfg {
    /// Functions (0 = PF, n = VF n) that each get this namespace.
    pub functions: Vec<u16>,
    #[serde(default = "d_nsid")]
    pub nsid: u32,
    /// Backing block device: "ram".
    pub backend: String,
    /// Capacity, e.g. "64MiB".
    pub size: String,
    #[serde(default = "d_bsize")]
    pub block_size: u32,
}

fn d_mix() -> u32 {
    50
}
fn d_one() -> u32 {
    1
}

/// One fio-like job (instantiated per function and per `numjobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCfg {
    pub name: String,
    pub functions: Vec<u16>,
    #[serde(default = "d_nsid")]
    pub nsid: u32,
    pub rw: String,
    #[serde(default = "d_mix")]
    pub rwmixread: u32,
    pub bs: String,
    pub iodepth: u32,
    #[serde(default = "d_one")]
    pub numjobs: u32,
    /// Simulated run time, e.g. "2ms".
    pub runtime: Option<String>,
    /// Bytes per job, e.g. "16MiB".
    pub size: Option<String>,
    #[serde(default)]
    pub verify: bool,
    #[serde(default)]
    pub scattered: bool,
    #[serde(default)]
    pub buf_offset: u32,
    #[serde(default)]
    pub seed: u64,
}

/// Expected outcome.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpectCfg {
    #[serde(default)]
    pub verify_errors: u64,
    #[serde(default)]
    pub io_errors: u64,
    /// At least this many I/Os in total.
    #[serde(default)]
    pub min_ios: u64,
}

/// Parses "4k", "128KiB", "64MiB", "1G", "512" into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.trim().parse().map_err(|_| format!("`{s}` is not a size (e.g. 4k, 128KiB, 64MiB)"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit `{u}` in `{s}`")),
    };
    n.checked_mul(mul).ok_or(format!("`{s}` is too large"))
}

/// Parses "250us", "2ms", "1.5s", "100ns" into nanoseconds.
pub fn parse_time_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).ok_or(format!("`{s}` has no unit (ns, us, ms or s)"))?;
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().map_err(|_| format!("`{num}` is not a number"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        u => return Err(format!("unknown time unit `{u}` (use ns, us, ms or s)")),
    };
    if !(v.is_finite() && v > 0.0) {
        return Err("time must be positive".into());
    }
    Ok((v * scale).round() as u64)
}

impl Scenario {
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ConfigError> {
        let path = path.as_ref();
        let mut s: Scenario = load_toml(path)?;
        s.source = path.to_path_buf();
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.source;
        let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
        let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
        let h = &self.host;
        if h.vfs > 64 {
            return err("host.vfs".into(), format!("{} VFs; the board supports at most 64", h.vfs));
        }
        if h.io_queues == 0 || h.io_queues > 64 {
            return err("host.io_queues".into(), format!("{} is out of range 1..=64", h.io_queues));
        }
        if !(2..=4096).contains(&h.io_queue_depth) {
            return err("host.io_queue_depth".into(), format!("{} is out of range 2..=4096", h.io_queue_depth));
        }
        let exists = |fun: u16| fun == 0 || fun <= h.vfs;
        let mut namespaces: Vec<(u16, u32, u64, u32)> = Vec::new();
        for (i, s) in self.storage.iter().enumerate() {
            let at = |field: &str| format!("storage[{i}].{field}");
            if s.backend != "ram" {
                return err(at("backend"), format!("`{}` is not a known backend (ram)", s.backend));
            }
            if ![512, 4096].contains(&s.block_size) {
                return err(at("block_size"), format!("{} must be 512 or 4096", s.block_size));
            }
            let size = parse_size(&s.size).map_err(bad(at("size")))?;
            if size == 0 || size % u64::from(s.block_size) != 0 {
                return err(at("size"), format!("{size} bytes is not a positive multiple of the block size"));
            }
            if s.nsid == 0 || s.nsid == u32::MAX {
                return err(at("nsid"), format!("{} is not a valid namespace ID", s.nsid));
            }
            if s.functions.is_empty() {
                return err(at("functions"), "lists no function".into());
            }
            for &fun in &s.functions {
                if !exists(fun) {
                    return err(at("functions"), format!("function {fun} does not exist (host.vfs = {})", h.vfs));
                }
                if namespaces.iter().any(|n| n.0 == fun && n.1 == s.nsid) {
                    return err(at("nsid"), format!("function {fun} already has namespace {}", s.nsid));
                }
                namespaces.push((fun, s.nsid, size, s.block_size));
            }
        }
        for (i, j) in self.jobs.iter().enumerate() {
            let at = |field: &str| format!("jobs[{i}].{field}");
            if !["read", "write", "randread", "randwrite", "randrw", "readwrite", "rw"].contains(&j.rw.as_str()) {
                return err(at("rw"), format!("`{}` is not one of read, write, randread, randwrite, randrw, readwrite", j.rw));
            }
            if j.rwmixread > 100 {
                return err(at("rwmixread"), format!("{} is more than 100 percent", j.rwmixread));
            }
            let bs = parse_size(&j.bs).map_err(bad(at("bs")))?;
            if !(512..=128 * 1024).contains(&bs) || bs % 512 != 0 {
                return err(at("bs"), format!("{bs} must be a multiple of 512 between 512 B and 128 KiB"));
            }
            if j.iodepth == 0 || j.iodepth >= u32::from(h.io_queue_depth) * u32::from(h.io_queues) {
                return err(at("iodepth"), format!("{} must be 1..{} (queues x depth)", j.iodepth, u32::from(h.io_queue_depth) * u32::from(h.io_queues)));
            }
            if j.numjobs == 0 || j.numjobs > 64 {
                return err(at("numjobs"), format!("{} is out of range 1..=64", j.numjobs));
            }
            if j.runtime.is_none() && j.size.is_none() {
                return err(at("runtime"), "give a runtime or a size".into());
            }
            if let Some(r) = &j.runtime {
                parse_time_ns(r).map_err(bad(at("runtime")))?;
            }
            if let Some(s) = &j.size {
                parse_size(s).map_err(bad(at("size")))?;
            }
            if j.buf_offset % 4 != 0 || j.buf_offset >= 4096 {
                return err(at("buf_offset"), format!("{} must be dword aligned and below 4096", j.buf_offset));
            }
            for &fun in &j.functions {
                let Some(ns) = namespaces.iter().find(|n| n.0 == fun && n.1 == j.nsid) else {
                    return err(at("functions"), format!("function {fun} has no namespace {} in [[storage]]", j.nsid));
                };
                if bs % u64::from(ns.3) != 0 {
                    return err(at("bs"), format!("{bs} is not a multiple of the namespace block size {}", ns.3));
                }
            }
        }
        Ok(())
    }

    /// Namespaces as (function, nsid, bytes, block size).
    pub fn namespaces(&self) -> Vec<(u16, u32, u64, u32)> {
        let mut v = Vec::new();
        for s in &self.storage {
            let size = parse_size(&s.size).unwrap_or(0);
            for &f in &s.functions {
                v.push((f, s.nsid, size, s.block_size));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        let mut s: Scenario = crate::parse_toml(Path::new("t.toml"), text)?;
        s.source = "t.toml".into();
        s.validate()?;
        Ok(s)
    }

    const BASE: &str = r#"
[scenario]
name = "t"
[host]
vfs = 2
[[storage]]
functions = [1, 2]
backend = "ram"
size = "1MiB"
[[jobs]]
name = "j"
functions = [1]
rw = "randrw"
bs = "4k"
iodepth = 8
runtime = "1ms"
verify = true
"#;

    #[test]
    fn valid_scenario_parses() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.namespaces(), vec![(1, 1, 1 << 20, 512), (2, 1, 1 << 20, 512)]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("rw = \"randrw\"", "rw = \"random\"", "jobs[0].rw"),
            ("bs = \"4k\"", "bs = \"3000\"", "jobs[0].bs"),
            ("functions = [1]", "functions = [3]", "jobs[0].functions"),
            ("size = \"1MiB\"", "size = \"1000\"", "storage[0].size"),
            ("backend = \"ram\"", "backend = \"tape\"", "storage[0].backend"),
            ("runtime = \"1ms\"", "runtime = \"1 fortnight\"", "jobs[0].runtime"),
            ("iodepth = 8", "iodepth = 0", "jobs[0].iodepth"),
        ];
        for (from, to, field) in cases {
            let e = parse(&BASE.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("t.toml"), "{to}: {e}");
        }
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert!(parse_size("4x").is_err());
        assert_eq!(parse_time_ns("2ms").unwrap(), 2_000_000);
        assert!(parse_time_ns("-1ms").is_err());
    }
}
