//! Scenario `[[hostile]]` entries: a function whose host driver misbehaves
//! on purpose (malformed commands, bad data pointers, doorbell storms,
//! queue deletion, FLR and controller resets under I/O) while the other
//! functions run verified jobs that must not notice.

use crate::scenario::{parse_time_ns, Backend, NamespaceCfg, Scenario};
use crate::ConfigError;
use serde::Deserialize;

/// What a hostile host can do, by scenario name (`actions = [...]`; "all"
/// selects every one, in this order).
pub const HOSTILE_ACTIONS: &[&str] = &[
    "bad-opcode",
    "reserved-fields",
    "fused",
    "bad-nsid",
    "bad-psdt",
    "sgl-garbage",
    "lba-wrap",
    "prp-outside",
    "sgl-outside",
    "prp-list-loop",
    "doorbell-storm",
    "doorbell-no-queue",
    "cq-head-beyond-tail",
    "delete-queue-under-io",
    "flr-under-io",
    "reset-loop",
];

fn d_nsids() -> Vec<u32> {
    vec![1]
}
fn d_rounds() -> u32 {
    1
}
fn d_start() -> String {
    "100us".into()
}

/// One hostile function.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostileCfg {
    /// The misbehaving function (0 = PF, n = VF n); it runs no `[[jobs]]`.
    pub function: u16,
    /// Its namespaces the actions use (in turn).
    #[serde(default = "d_nsids")]
    pub nsids: Vec<u32>,
    /// Actions from [`HOSTILE_ACTIONS`], or "all".
    pub actions: Vec<String>,
    /// Times the whole list is performed.
    #[serde(default = "d_rounds")]
    pub rounds: u32,
    /// Delay after the jobs start before the first action, e.g. "100us".
    #[serde(default = "d_start")]
    pub start: String,
    /// Seed of the random choices (values, delays).
    #[serde(default)]
    pub seed: u64,
    /// Every I/O of every other function's job, and their admin commands,
    /// must complete within this (e.g. "5ms"); unset: not checked.
    pub others_max_latency: Option<String>,
}

impl HostileCfg {
    /// The actions in order, "all" expanded.
    pub fn action_list(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for a in &self.actions {
            if a == "all" {
                out.extend_from_slice(HOSTILE_ACTIONS);
            } else if let Some(&k) = HOSTILE_ACTIONS.iter().find(|&&k| k == a) {
                out.push(k);
            }
        }
        out
    }

    /// `others_max_latency` in nanoseconds (validated when loaded).
    pub fn others_max_latency_ns(&self) -> Option<u64> {
        self.others_max_latency.as_deref().and_then(|t| parse_time_ns(t).ok())
    }
}

/// Checks every `[[hostile]]` entry (field names in the errors) against
/// the scenario's resolved `namespaces`.
pub(crate) fn validate(sc: &Scenario, namespaces: &[NamespaceCfg]) -> Result<(), ConfigError> {
    let f = &sc.source;
    let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
    let mut seen: Vec<u16> = Vec::new();
    for (i, h) in sc.hostile.iter().enumerate() {
        let at = |field: &str| format!("hostile[{i}].{field}");
        if !(h.function == 0 || h.function <= sc.host.vfs) {
            return err(at("function"), format!("function {} does not exist (host.vfs = {})", h.function, sc.host.vfs));
        }
        if seen.contains(&h.function) {
            return err(at("function"), format!("function {} is hostile twice", h.function));
        }
        seen.push(h.function);
        if let Some(j) = sc.jobs.iter().position(|j| j.functions.contains(&h.function)) {
            return err(at("function"), format!("function {} also runs jobs[{j}]; a hostile function drives its own I/O", h.function));
        }
        if h.nsids.is_empty() {
            return err(at("nsids"), "lists no namespace".into());
        }
        for (k, &n) in h.nsids.iter().enumerate() {
            let Some(ns) = namespaces.iter().find(|ns| ns.function == h.function && ns.nsid == n) else {
                return err(at(&format!("nsids[{k}]")), format!("function {} has no namespace {n} in [[storage]]", h.function));
            };
            // The hostile host writes its namespaces; a verified job on the
            // same remote blocks would read its data as errors.
            if let Backend::Nvmf { .. } = &ns.backend {
                for (j, job) in sc.jobs.iter().enumerate().filter(|(_, j)| j.verify) {
                    let shared = job.functions.iter().any(|&jf| namespaces.iter().any(|o| o.function == jf && o.nsid == job.nsid && o.backend == ns.backend));
                    if shared {
                        return err(
                            at(&format!("nsids[{k}]")),
                            format!(
                                "function {}'s namespace {n} is the remote namespace job `{}` (jobs[{j}]) verifies; the hostile host writes it",
                                h.function, job.name
                            ),
                        );
                    }
                }
            }
        }
        if h.actions.is_empty() {
            return err(at("actions"), format!("lists no action (use \"all\" or some of: {})", HOSTILE_ACTIONS.join(", ")));
        }
        for (k, a) in h.actions.iter().enumerate() {
            if a != "all" && !HOSTILE_ACTIONS.contains(&a.as_str()) {
                return err(at(&format!("actions[{k}]")), format!("`{a}` is not a hostile action (all, {})", HOSTILE_ACTIONS.join(", ")));
            }
        }
        let flr = h.action_list().contains(&"flr-under-io");
        if flr && h.function == 0 && sc.host.vfs > 0 {
            return err(at("actions"), "flr-under-io on the PF would reset every VF with it (SR-IOV 1.1 §2.2.2); make a VF hostile".into());
        }
        if !(1..=1000).contains(&h.rounds) {
            return err(at("rounds"), format!("{} is out of range 1..=1000", h.rounds));
        }
        parse_time_ns(&h.start).map_err(|m| ConfigError::field(f, at("start"), m))?;
        if let Some(t) = &h.others_max_latency {
            parse_time_ns(t).map_err(|m| ConfigError::field(f, at("others_max_latency"), m))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Scenario;

    const BASE: &str = r#"
[scenario]
name = "h"
[host]
vfs = 3
[[storage]]
functions = [1, 2, 3]
backend = "ram"
size = "1MiB"
[[jobs]]
name = "j"
functions = [1, 2]
rw = "randrw"
bs = "4k"
iodepth = 8
runtime = "1ms"
verify = true
[[hostile]]
function = 3
actions = ["bad-opcode", "flr-under-io"]
others_max_latency = "2ms"
"#;

    fn load(text: &str) -> Result<Scenario, String> {
        Scenario::parse("h.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn hostile_entry_parses_and_expands_all() {
        let s = load(BASE).unwrap();
        assert_eq!(s.hostile[0].action_list(), vec!["bad-opcode", "flr-under-io"]);
        assert_eq!(s.hostile[0].others_max_latency_ns(), Some(2_000_000));
        let all = load(&BASE.replace("[\"bad-opcode\", \"flr-under-io\"]", "[\"all\"]")).unwrap();
        assert_eq!(all.hostile[0].action_list(), super::HOSTILE_ACTIONS.to_vec());
    }

    #[test]
    fn bad_hostile_fields_are_named() {
        let cases = [
            ("function = 3", "function = 9", "hostile[0].function"),
            ("function = 3", "function = 2", "hostile[0].function"),
            ("actions = [\"bad-opcode\", \"flr-under-io\"]", "actions = [\"bad-opcode\", \"meteor\"]", "hostile[0].actions[1]"),
            ("actions = [\"bad-opcode\", \"flr-under-io\"]", "actions = []", "hostile[0].actions"),
            ("function = 3", "function = 3\nnsids = [1, 4]", "hostile[0].nsids[1]"),
            ("function = 3", "function = 3\nrounds = 0", "hostile[0].rounds"),
            ("function = 3", "function = 3\nstart = \"later\"", "hostile[0].start"),
            ("others_max_latency = \"2ms\"", "others_max_latency = \"2 parsecs\"", "hostile[0].others_max_latency"),
            ("function = 3", "function = 3\nspeed = 1", "hostile[0].speed"),
        ];
        for (from, to, field) in cases {
            let e = load(&BASE.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(field), "{to}: {e}");
        }
        let pf = BASE.replacen("function = 3", "function = 0", 1).replacen("functions = [1, 2, 3]", "functions = [0, 1, 2, 3]", 1);
        assert!(load(&pf).unwrap_err().contains("hostile[0].actions"), "a PF FLR resets the VFs");
        let twice = format!("{BASE}[[hostile]]\nfunction = 3\nactions = [\"fused\"]\n");
        assert!(load(&twice).unwrap_err().contains("hostile[1].function"));
    }

    #[test]
    fn hostile_writes_never_land_in_verified_remote_blocks() {
        let remote = r#"
[scenario]
name = "h"
[host]
vfs = 2
[[targets]]
name = "t0"
ip = "10.0.0.10"
nqn = "nqn.2026-11.io.dpusim:t0"
namespaces = [{ size = "1MiB" }, { size = "1MiB" }]
[[storage]]
functions = [1, 2]
backend = "nvmf"
target = "t0"
[[jobs]]
name = "j"
functions = [1]
rw = "randrw"
bs = "4k"
iodepth = 8
runtime = "1ms"
verify = true
[[hostile]]
function = 2
actions = ["bad-opcode"]
"#;
        let e = load(remote).unwrap_err();
        assert!(e.contains("hostile[0].nsids[0]") && e.contains("`j`"), "{e}");
        // Its own remote namespace is fine.
        let own = remote.replacen("functions = [1, 2]\nbackend", "functions = [1]\nbackend", 1)
            + "[[storage]]\nfunctions = [2]\nbackend = \"nvmf\"\ntarget = \"t0\"\nremote_nsid = 2\n";
        load(&own).unwrap();
    }
}
