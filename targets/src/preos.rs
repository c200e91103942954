//! Scenario `[preos]`: a pre-OS boot host (UEFI / option-ROM NVMe driver)
//! that reads a boot disk right after power-on, and the target-model
//! setting it relies on: namespaces whose unwritten blocks hold a
//! verifiable pattern (`fill = "pattern"`, a disk image). A target slow
//! to answer at power-on is a `[[faults]]` entry: in a `[preos]` scenario
//! fault times count from power-on.

use crate::scenario::{parse_size, parse_time_ns, Backend, NamespaceCfg, Scenario};
use crate::ConfigError;
use serde::Deserialize;

fn d_nsid() -> u32 {
    1
}
fn d_read() -> String {
    "16MiB".into()
}
fn d_bs() -> String {
    "128k".into()
}
fn d_verify() -> String {
    "pattern".into()
}
fn d_admin_depth() -> u16 {
    2
}
fn d_io_depth() -> u16 {
    8
}
fn d_timeout() -> String {
    "5s".into()
}

/// The pre-OS boot host: one polled admin queue and one polled I/O queue
/// per function (no MSI-X), PRPs only, one command at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreOsCfg {
    /// Functions booted from (0 = PF, n = VF n), each by its own driver
    /// instance, all at once from power-on.
    pub functions: Vec<u16>,
    /// The boot namespace.
    #[serde(default = "d_nsid")]
    pub nsid: u32,
    /// Bytes read from LBA 0 on after LBA 0 itself ("the kernel").
    #[serde(default = "d_read")]
    pub read: String,
    /// Size of each read (at most 128 KiB, the controller's MDTS).
    #[serde(default = "d_bs")]
    pub bs: String,
    /// What the data must be: "pattern" (the target model namespace's
    /// fill pattern), "zero" or "none".
    #[serde(default = "d_verify")]
    pub verify: String,
    /// Admin queue entries (2..=64).
    #[serde(default = "d_admin_depth")]
    pub admin_queue_depth: u16,
    /// I/O queue entries (2..=64).
    #[serde(default = "d_io_depth")]
    pub io_queue_depth: u16,
    /// A command not completed within this fails the boot (UEFI: 5 s).
    #[serde(default = "d_timeout")]
    pub command_timeout: String,
    /// The controller must be ready this soon after CC.EN = 1 (always
    /// also within CAP.TO), e.g. "1200ms".
    pub max_ready: Option<String>,
}

impl PreOsCfg {
    pub fn read_bytes(&self) -> u64 {
        parse_size(&self.read).unwrap_or(0)
    }
    pub fn bs_bytes(&self) -> u32 {
        parse_size(&self.bs).unwrap_or(131_072) as u32
    }
    pub fn command_timeout_ns(&self) -> u64 {
        parse_time_ns(&self.command_timeout).unwrap_or(5_000_000_000)
    }
    pub fn max_ready_ns(&self) -> Option<u64> {
        self.max_ready.as_deref().and_then(|t| parse_time_ns(t).ok())
    }
}

/// Fill of a target model namespace: what unwritten blocks read as.
pub const FILLS: &[&str] = &["zero", "pattern"];

/// Checks `[preos]` and the target fields it relies on, against the
/// scenario's resolved `namespaces`.
pub(crate) fn validate(sc: &Scenario, namespaces: &[NamespaceCfg]) -> Result<(), ConfigError> {
    let f = &sc.source;
    let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
    let bad = |field: String| move |msg: String| ConfigError::field(f, field, msg);
    for (i, t) in sc.targets.iter().enumerate() {
        for (k, ns) in t.namespaces.iter().enumerate() {
            if let Some(fill) = &ns.fill {
                if !FILLS.contains(&fill.as_str()) {
                    return err(format!("targets[{i}].namespaces[{k}].fill"), format!("`{fill}` is not one of {}", FILLS.join(", ")));
                }
            }
        }
    }
    let Some(p) = &sc.preos else { return Ok(()) };
    // The boot is the whole run: no OS driver comes after it here.
    if !sc.jobs.is_empty() {
        return err("preos".into(), "a [preos] scenario runs the boot only; it cannot also have [[jobs]]".into());
    }
    if !sc.hostile.is_empty() {
        return err("preos".into(), "a [preos] scenario runs the boot only; it cannot also have [[hostile]]".into());
    }
    if sc.expect.min_ios > 0 {
        return err("expect.min_ios".into(), "a [preos] scenario runs no jobs (its reads are checked by [preos] itself)".into());
    }
    if p.functions.is_empty() {
        return err("preos.functions".into(), "lists no function".into());
    }
    let bs = parse_size(&p.bs).map_err(bad("preos.bs".into()))?;
    if !(512..=128 * 1024).contains(&bs) || bs % 512 != 0 {
        return err("preos.bs".into(), format!("{bs} must be a multiple of 512 between 512 B and 128 KiB"));
    }
    let read = parse_size(&p.read).map_err(bad("preos.read".into()))?;
    if read % bs != 0 {
        return err("preos.read".into(), format!("{read} is not a multiple of bs ({bs})"));
    }
    if !["pattern", "zero", "none"].contains(&p.verify.as_str()) {
        return err("preos.verify".into(), format!("`{}` is not one of pattern, zero, none", p.verify));
    }
    for (field, v) in [("admin_queue_depth", p.admin_queue_depth), ("io_queue_depth", p.io_queue_depth)] {
        if !(2..=64).contains(&v) {
            return err(format!("preos.{field}"), format!("{v} is out of range 2..=64"));
        }
    }
    parse_time_ns(&p.command_timeout).map_err(bad("preos.command_timeout".into()))?;
    if let Some(t) = &p.max_ready {
        parse_time_ns(t).map_err(bad("preos.max_ready".into()))?;
    }
    for (k, &fun) in p.functions.iter().enumerate() {
        let at = format!("preos.functions[{k}]");
        if !(fun == 0 || fun <= sc.host.vfs) {
            return err(at, format!("function {fun} does not exist (host.vfs = {})", sc.host.vfs));
        }
        if p.functions[..k].contains(&fun) {
            return err(at, format!("function {fun} is listed twice"));
        }
        let Some(ns) = namespaces.iter().find(|n| n.function == fun && n.nsid == p.nsid) else {
            return err(at, format!("function {fun} has no namespace {} in [[storage]]", p.nsid));
        };
        if bs % u64::from(ns.block_size) != 0 {
            return err("preos.bs".into(), format!("{bs} is not a multiple of function {fun}'s block size {}", ns.block_size));
        }
        if read > ns.bytes {
            return err("preos.read".into(), format!("{read} bytes is more than function {fun}'s namespace ({} bytes)", ns.bytes));
        }
        if p.verify == "pattern" && !patterned(sc, &ns.backend) {
            return err(
                "preos.verify".into(),
                format!("\"pattern\" needs function {fun}'s namespace on a [[targets]] namespace with fill = \"pattern\""),
            );
        }
    }
    Ok(())
}

/// Whether `backend` is a target model namespace filled with the pattern.
fn patterned(sc: &Scenario, backend: &Backend) -> bool {
    let Backend::Nvmf { traddr, trsvcid, subnqn, nsid } = backend else { return false };
    sc.targets.iter().any(|t| {
        t.ip.parse().ok() == Some(*traddr)
            && t.port == *trsvcid
            && &t.nqn == subnqn
            && t.namespaces.get((*nsid as usize).wrapping_sub(1)).is_some_and(|ns| ns.fill.as_deref() == Some("pattern"))
    })
}

#[cfg(test)]
mod tests {
    use crate::Scenario;

    const BASE: &str = r#"
[scenario]
name = "boot"
[host]
vfs = 1
[[targets]]
name = "t0"
ip = "10.0.0.10"
nqn = "nqn.2026-11.io.dpusim:t0"
namespaces = [{ size = "64MiB", fill = "pattern" }, { size = "1MiB" }]
[[storage]]
functions = [0, 1]
backend = "nvmf"
target = "t0"
[[storage]]
functions = [0]
nsid = 2
backend = "nvmf"
target = "t0"
remote_nsid = 2
[preos]
functions = [0, 1]
read = "32MiB"
max_ready = "1200ms"
"#;

    fn load(text: &str) -> Result<Scenario, String> {
        Scenario::parse("b.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn preos_section_parses() {
        let s = load(BASE).unwrap();
        let p = s.preos.as_ref().unwrap();
        assert_eq!((p.read_bytes(), p.bs_bytes(), p.max_ready_ns()), (32 << 20, 128 << 10, Some(1_200_000_000)));
        assert_eq!((p.admin_queue_depth, p.io_queue_depth, p.command_timeout_ns()), (2, 8, 5_000_000_000));
        assert_eq!(s.targets[0].namespaces[0].fill.as_deref(), Some("pattern"));
    }

    #[test]
    fn bad_preos_fields_are_named() {
        let cases = [
            ("functions = [0, 1]\nread", "functions = [0, 2]\nread", "preos.functions[1]"),
            ("functions = [0, 1]\nread", "functions = [0, 0]\nread", "preos.functions[1]"),
            ("read = \"32MiB\"", "read = \"128MiB\"", "preos.read"),
            ("read = \"32MiB\"", "read = \"32MiB\"\nbs = \"256k\"", "preos.bs"),
            ("read = \"32MiB\"", "read = \"1000\"", "preos.read"),
            ("read = \"32MiB\"", "read = \"32MiB\"\nverify = \"maybe\"", "preos.verify"),
            ("read = \"32MiB\"", "read = \"1MiB\"\nnsid = 2\nverify = \"none\"", "preos.functions[1]"),
            ("read = \"32MiB\"", "read = \"32MiB\"\nio_queue_depth = 1", "preos.io_queue_depth"),
            ("max_ready = \"1200ms\"", "max_ready = \"soon\"", "preos.max_ready"),
            ("max_ready = \"1200ms\"", "max_ready = \"1200ms\"\ncommand_timeout = \"0s\"", "preos.command_timeout"),
            ("max_ready = \"1200ms\"", "max_ready = \"1200ms\"\nadmin_queue_depth = 65", "preos.admin_queue_depth"),
            ("functions = [0, 1]\nread", "functions = []\nread", "preos.functions"),
            ("functions = [0, 1]\nread", "functions = [0, 1]\nspeed = 3\nread", "preos.speed"),
            ("fill = \"pattern\"", "fill = \"zebra\"", "targets[0].namespaces[0].fill"),
        ];
        for (from, to, field) in cases {
            let e = load(&BASE.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(field), "{to}: {e}");
        }
        // "pattern" needs a patterned target namespace.
        let e = load(&BASE.replacen("fill = \"pattern\"", "fill = \"zero\"", 1)).unwrap_err();
        assert!(e.contains("preos.verify"), "{e}");
        // The boot is the whole run.
        let job = "[[jobs]]\nname = \"j\"\nfunctions = [1]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"1ms\"\n";
        let e = load(&format!("{BASE}{job}")).unwrap_err();
        assert!(e.contains("field `preos`") && e.contains("[[jobs]]"), "{e}");
        let e = load(&format!("{BASE}[expect]\nmin_ios = 5\n")).unwrap_err();
        assert!(e.contains("expect.min_ios"), "{e}");
    }
}
