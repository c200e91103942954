//! Fuzz targets for every parser that reads hostile input, and the
//! in-house engine that runs them on stable Rust.
//!
//! Each target is a plain `fn(&[u8])` ([`TARGETS`]): it must return for
//! every input, quickly, without panicking; a panic (an assertion of one of
//! its invariants included) is a bug. The same functions run under
//! libFuzzer (`libfuzzer/`, built by `cargo fuzz` on nightly) and under
//! [`engine`], a deterministic mutation runner (bit flips, truncations,
//! splices, interesting integers) that needs nothing beyond stable and is
//! what `cargo xtask test` runs as its smoke run.
//!
//! `corpus/<target>/` holds the seeds (real bytes: PDUs, SQEs, discovery
//! logs, boot configuration blobs, the shipped TOML files, a tiny ELF;
//! `dpu-fuzz seed` regenerates the generated ones); `crashes/<target>/`
//! holds every input that ever crashed a target, replayed by a unit test
//! so a fixed bug stays fixed.

pub mod engine;
pub mod input;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::path::PathBuf;

/// A fuzz target.
pub struct Target {
    pub name: &'static str,
    /// What it feeds the input to.
    pub about: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "nvme_cmd", about: "NVMe SQE decoding: I/O decode, queue create/delete, features, logs, identify, CC/AQA, doorbells", run: targets::nvme_cmd::run },
    Target { name: "nvme_dptr", about: "PRP and SGL walks over a modeled host memory", run: targets::nvme_dptr::run },
    Target { name: "tcp_pdu", about: "NVMe/TCP PDU header parsing, both roles, every config; parse/emit round trip", run: targets::tcp_pdu::run },
    Target { name: "tcp_host", about: "NVMe/TCP host queue fed a target's byte stream split at arbitrary points", run: targets::tcp_host::run },
    Target { name: "tcp_fabrics", about: "Fabrics Connect/Property SQEs, Connect data, responses, SGL1, CQEs", run: targets::tcp_fabrics::run },
    Target { name: "tcp_discovery", about: "Discovery log page parsing and rendering", run: targets::tcp_discovery::run },
    Target { name: "net_frames", about: "the firmware's Ethernet/ARP handling of frames from the wire", run: targets::net_frames::run },
    Target { name: "sim_wire", about: "the simulator's own NVMe/TCP wire code (test peers): PDU streams in both roles, round trip, Fabrics/Identify/discovery decoders", run: targets::sim_wire::run },
    Target { name: "sim_target", about: "the simulator's NVMe/TCP target model fed a host byte stream over TCP", run: targets::sim_target::run },
    Target { name: "bootcfg", about: "the firmware's boot configuration parser", run: targets::bootcfg::run },
    Target { name: "rpc", about: "the management server's JSON-RPC framing, request parsing, params and answers on a client's byte stream", run: targets::rpc::run },
    Target { name: "boot_flash", about: "a hostile boot flash: the boot ROM's bootloader check, the image verifier, the A/B journal and decision, the configuration copies", run: targets::boot_flash::run },
    Target { name: "scenario", about: "scenario TOML parse + validation; a valid scenario's boot configuration must parse in the firmware", run: targets::toml::scenario },
    Target { name: "chip", about: "chip TOML parse + validation and the layout derived from it", run: targets::toml::chip },
    Target { name: "board", about: "board TOML parse + validation", run: targets::toml::board },
    Target { name: "elf", about: "the simulator's ELF loader and defmt table reader", run: targets::elf::run },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// `tools/fuzz/`.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The seed corpus of a target.
pub fn corpus_dir(name: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(name)
}

/// The crash regressions of a target.
pub fn crashes_dir(name: &str) -> PathBuf {
    fuzz_dir().join("crashes").join(name)
}

/// The files of a directory, sorted by name (none if it does not exist).
pub fn read_dir_files(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files.into_iter().filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b))).collect()
}
