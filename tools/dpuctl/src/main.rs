//! `dpuctl`: manage a DPU card over its JSON-RPC management API, in the
//! spirit of SPDK's `rpc.py` and `nvme-cli`. Human tables by default,
//! `--json` prints the method's result as JSON for scripts. Errors name
//! the likely cause and exit non-zero (1: the card answered with an
//! error; 2: bad arguments; 3: no connection or no valid answer).

mod settings;

use clap::{Parser, Subcommand};
use dpuctl::{table, Client, Error};
use settings::{MgmtCmd, NvmeCmd, PortCmd};
use serde_json::Value;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dpuctl", version, about = "Manage a DPU card over its JSON-RPC management API")]
struct Cli {
    /// The card's management address (with dpusim: its --hostfwd port).
    #[arg(long, default_value = "127.0.0.1:5260", global = true)]
    addr: String,
    /// Access token, when the card's configuration requires one.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Print the result as JSON (for scripts) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Block devices: bdev_get_bdevs, bdev_malloc_create, bdev_malloc_delete,
    /// bdev_get_iostat; erasure-coded volumes, live: bdev_ec_create, bdev_ec_delete.
    Bdev {
        #[command(subcommand)]
        cmd: BdevCmd,
    },
    /// The SR-IOV VF count: dpu_sriov_get, dpu_sriov_set_total_vfs.
    Sriov {
        #[command(subcommand)]
        cmd: SriovCmd,
    },
    /// A PCIe function's namespaces: dpu_ns_attach, dpu_ns_detach.
    Ns {
        #[command(subcommand)]
        cmd: NsCmd,
    },
    /// Remote NVMe-oF controllers: bdev_nvme_get_controllers,
    /// bdev_nvme_attach_controller, bdev_nvme_detach_controller.
    Ctrl {
        #[command(subcommand)]
        cmd: CtrlCmd,
    },
    /// NVMe/TCP target subsystems, live: nvmf_get_subsystems,
    /// nvmf_create_subsystem, nvmf_delete_subsystem, nvmf_subsystem_add_listener,
    /// nvmf_subsystem_remove_listener, nvmf_subsystem_add_ns,
    /// nvmf_subsystem_remove_ns, nvmf_subsystem_add_host, nvmf_subsystem_remove_host.
    Nvmf {
        #[command(subcommand)]
        cmd: NvmfCmd,
    },
    /// Data-at-rest encryption, live: accel_crypto_key_create,
    /// accel_crypto_keys_get, accel_crypto_key_destroy, bdev_crypto_create,
    /// bdev_crypto_delete. The card keeps keys only wrapped with its device
    /// key and never shows them.
    Crypto {
        #[command(subcommand)]
        cmd: CryptoCmd,
    },
    /// Ethernet ports and TCP settings: dpu_get_ports, dpu_set_port,
    /// dpu_port_get_options, dpu_port_set_options.
    Port {
        #[command(subcommand)]
        cmd: PortCmd,
    },
    /// The NVMe/TCP initiator's defaults: dpu_nvme_get_options, dpu_nvme_set_options.
    Nvme {
        #[command(subcommand)]
        cmd: NvmeCmd,
    },
    /// The management server's allow-list, token and request timeout:
    /// dpu_mgmt_get, dpu_mgmt_set.
    Mgmt {
        #[command(subcommand)]
        cmd: MgmtCmd,
    },
    /// Firmware: dpu_fw_get_status; update (dpu_fw_download + dpu_fw_commit).
    Fw {
        #[command(subcommand)]
        cmd: FwCmd,
    },
    /// Whether live changes are saved in the card's flash: dpu_config_get_status.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Data-plane reactors and their I/O counters: framework_get_reactors.
    Reactors,
    /// The methods the card serves: rpc_get_methods.
    Methods,
    /// The firmware version: spdk_get_version.
    Version,
    /// Any method, with params as a JSON object (prints the raw result).
    Rpc {
        method: String,
        /// e.g. '{"name": "fn1n1"}'
        params: Option<String>,
    },
}

#[derive(Subcommand)]
enum BdevCmd {
    /// List block devices (or one, by name: fn<F>n<N>, Malloc0, ...).
    List { name: Option<String> },
    /// Create a RAM block device in DPU memory (bdev_malloc_create).
    CreateMalloc {
        /// Number of blocks.
        #[arg(long)]
        num_blocks: u64,
        /// Block size in bytes (512 or 4096).
        #[arg(long, default_value_t = 512)]
        block_size: u64,
        /// Name (default: the card picks Malloc<N>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete a RAM block device that no namespace maps (bdev_malloc_delete).
    DeleteMalloc { name: String },
    /// I/O statistics of every block device, or one (bdev_get_iostat).
    Iostat { name: Option<String> },
    /// Erasure-coded volumes over run-time controllers' namespaces.
    Ec {
        #[command(subcommand)]
        cmd: EcCmd,
    },
}

#[derive(Subcommand)]
enum EcCmd {
    /// Make an erasure-coded volume (bdev_ec_create): k data and m parity
    /// fragments of 4 KiB per stripe over k + m members (namespaces of
    /// run-time controllers, `<ctrl>n<nsid>`, one block size), then the
    /// spares. Map it with `ns attach`.
    Create {
        name: String,
        /// Data fragments per stripe.
        #[arg(long)]
        k: u8,
        /// Parity fragments per stripe (members that may be lost).
        #[arg(long)]
        m: u8,
        /// Members in slot order, then the spares.
        #[arg(required = true)]
        base_bdevs: Vec<String>,
        /// How many of the base devices (the last ones) are spares.
        #[arg(long, default_value_t = 0)]
        spares: u8,
        /// A scrub pass this often (ms; 0: none).
        #[arg(long, default_value_t = 0)]
        scrub_every_ms: u32,
    },
    /// Delete an unmapped erasure-coded volume (bdev_ec_delete); its
    /// members are free again (their data stays on them).
    Delete { name: String },
}

/// `bdev ec` subcommands: the method and its parameters.
fn ec_request(cmd: &EcCmd) -> (&'static str, Option<Value>) {
    match cmd {
        EcCmd::Create { name, k, m, base_bdevs, spares, scrub_every_ms } => {
            let mut p = serde_json::json!({ "name": name, "k": k, "m": m, "base_bdevs": base_bdevs });
            if *spares > 0 {
                p["spares"] = Value::from(*spares);
            }
            if *scrub_every_ms > 0 {
                p["scrub_every_ms"] = Value::from(*scrub_every_ms);
            }
            ("bdev_ec_create", Some(p))
        }
        EcCmd::Delete { name } => ("bdev_ec_delete", Some(serde_json::json!({ "name": name }))),
    }
}

#[derive(Subcommand)]
enum SriovCmd {
    /// The VFs the card offers the host and those the host enabled (dpu_sriov_get).
    Get,
    /// Set how many VFs the PF's SR-IOV capability offers (TotalVFs); the
    /// host must have SR-IOV disabled (dpu_sriov_set_total_vfs).
    Set { total_vfs: u16 },
}

#[derive(Subcommand)]
enum CryptoCmd {
    /// Hand the card an AES-256-XTS key (accel_crypto_key_create); it
    /// keeps it wrapped with its device key.
    KeyCreate {
        name: String,
        /// Key1 (data key): 64 hex digits. Prefer --key-file: a command
        /// line is seen by other users and kept in shell history.
        #[arg(long, requires = "key2", conflicts_with = "key_file")]
        key: Option<String>,
        /// Key2 (tweak key): 64 hex digits, not equal to --key.
        #[arg(long, requires = "key")]
        key2: Option<String>,
        /// A file holding Key1 then Key2: 128 hex digits (whitespace ignored).
        #[arg(long, required_unless_present = "key")]
        key_file: Option<std::path::PathBuf>,
    },
    /// List the keys: name and cipher, never the key (accel_crypto_keys_get).
    KeyList,
    /// Forget a key no crypto device uses (accel_crypto_key_destroy).
    KeyDestroy { name: String },
    /// Stack an encrypted block device on a run-time one (bdev_crypto_create);
    /// map it with `ns attach`.
    Create {
        name: String,
        /// The block device it encrypts (unmapped: a RAM device, or a
        /// remote controller's namespace such as Nvme0n1).
        #[arg(long)]
        base: String,
        /// The key (from `crypto key-create`).
        #[arg(long)]
        key_name: String,
    },
    /// Delete an unmapped crypto device (bdev_crypto_delete); its base keeps the (encrypted) data.
    Delete { name: String },
}

/// `crypto` subcommands: SPDK's method and parameters; the key halves
/// from the arguments or the key file (`Err`: a usage error).
fn crypto_request(cmd: &CryptoCmd) -> Result<(&'static str, Option<Value>), String> {
    Ok(match cmd {
        CryptoCmd::KeyCreate { name, key, key2, key_file } => {
            let (k1, k2) = match (key, key2, key_file) {
                (Some(k1), Some(k2), None) => (k1.clone(), k2.clone()),
                (None, None, Some(f)) => {
                    let text = std::fs::read_to_string(f).map_err(|e| format!("--key-file {}: {e}", f.display()))?;
                    let hex: String = text.split_whitespace().collect();
                    if hex.len() != 128 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!("--key-file {}: expected 128 hex digits (Key1 then Key2)", f.display()));
                    }
                    (hex[..64].to_string(), hex[64..].to_string())
                }
                _ => return Err("give --key and --key2, or --key-file".into()),
            };
            ("accel_crypto_key_create", Some(serde_json::json!({ "cipher": "AES_XTS", "name": name, "key": k1, "key2": k2 })))
        }
        CryptoCmd::KeyList => ("accel_crypto_keys_get", None),
        CryptoCmd::KeyDestroy { name } => ("accel_crypto_key_destroy", Some(serde_json::json!({ "key_name": name }))),
        CryptoCmd::Create { name, base, key_name } => ("bdev_crypto_create", Some(serde_json::json!({ "base_bdev_name": base, "name": name, "key_name": key_name }))),
        CryptoCmd::Delete { name } => ("bdev_crypto_delete", Some(serde_json::json!({ "name": name }))),
    })
}

#[derive(Subcommand)]
enum NsCmd {
    /// Map block device BDEV as namespace NSID of PCIe function FUNCTION
    /// (0 = PF, N = VF N), live (dpu_ns_attach).
    Attach {
        #[arg(long)]
        function: u16,
        #[arg(long)]
        nsid: u32,
        #[arg(long)]
        bdev: String,
    },
    /// Remove namespace NSID from FUNCTION; its commands in flight complete
    /// first (dpu_ns_detach).
    Detach {
        #[arg(long)]
        function: u16,
        #[arg(long)]
        nsid: u32,
    },
}

#[derive(Subcommand)]
enum CtrlCmd {
    /// List the remote controllers (the boot configuration's, then those
    /// attached at run time).
    List,
    /// Connect to a remote NVMe/TCP subsystem, live; each of its active
    /// namespaces becomes block device NAMEn<NSID> (bdev_nvme_attach_controller).
    Attach {
        /// The controller's name (its block devices are NAMEn1, NAMEn2, ...).
        name: String,
        #[arg(long)]
        traddr: String,
        #[arg(long, default_value_t = 4420)]
        trsvcid: u16,
        #[arg(long)]
        subnqn: String,
        /// Host NQN presented to the target (default: the card's).
        #[arg(long)]
        hostnqn: Option<String>,
        /// NVMe/TCP header digest (default: the card's setting).
        #[arg(long)]
        hdgst: bool,
        /// NVMe/TCP data digest (default: the card's setting).
        #[arg(long)]
        ddgst: bool,
    },
    /// Disconnect a controller attached at run time; refused while one of
    /// its block devices is mapped (bdev_nvme_detach_controller).
    Detach { name: String },
}

/// The method and params of a `ctrl` subcommand (SPDK's shapes: trtype
/// and adrfam given, trsvcid a string).
fn ctrl_request(cmd: &CtrlCmd) -> (&'static str, Option<Value>) {
    match cmd {
        CtrlCmd::List => ("bdev_nvme_get_controllers", None),
        CtrlCmd::Attach { name, traddr, trsvcid, subnqn, hostnqn, hdgst, ddgst } => {
            let mut p = serde_json::json!({ "name": name, "trtype": "tcp", "adrfam": "ipv4", "traddr": traddr, "trsvcid": trsvcid.to_string(), "subnqn": subnqn });
            if let Some(h) = hostnqn {
                p["hostnqn"] = Value::from(h.as_str());
            }
            if *hdgst {
                p["hdgst"] = Value::from(true);
            }
            if *ddgst {
                p["ddgst"] = Value::from(true);
            }
            ("bdev_nvme_attach_controller", Some(p))
        }
        CtrlCmd::Detach { name } => ("bdev_nvme_detach_controller", Some(serde_json::json!({ "name": name }))),
    }
}

#[derive(Subcommand)]
enum NvmfCmd {
    /// List the subsystems: where they listen, who may connect, namespaces.
    List,
    /// Create a subsystem (no namespace, no listener, no host allowed yet
    /// unless --allow-any-host) (nvmf_create_subsystem).
    CreateSubsystem {
        /// Its NQN, e.g. nqn.2026-12.io.example:disk0.
        nqn: String,
        /// Identify Controller serial number (at most 20 characters).
        #[arg(long)]
        serial_number: Option<String>,
        /// Identify Controller model number (at most 40 characters).
        #[arg(long)]
        model_number: Option<String>,
        /// Let any host connect (else only those added with add-host).
        #[arg(long)]
        allow_any_host: bool,
        /// Highest namespace ID (default: the most the card serves).
        #[arg(long)]
        max_namespaces: Option<u32>,
    },
    /// Delete a subsystem; its hosts' connections are closed (nvmf_delete_subsystem).
    DeleteSubsystem { nqn: String },
    /// Listen on one of the card's port addresses (nvmf_subsystem_add_listener).
    AddListener {
        nqn: String,
        /// The card's port address, e.g. 10.0.0.1.
        #[arg(long)]
        traddr: String,
        /// TCP port.
        #[arg(long, default_value_t = 4420)]
        trsvcid: u16,
    },
    /// Stop listening there; connections that came in through it close
    /// (nvmf_subsystem_remove_listener).
    RemoveListener {
        nqn: String,
        #[arg(long)]
        traddr: String,
        #[arg(long, default_value_t = 4420)]
        trsvcid: u16,
    },
    /// Serve a block device (e.g. one from `bdev create-malloc`) as a
    /// namespace; prints its NSID (nvmf_subsystem_add_ns).
    AddNs {
        nqn: String,
        #[arg(long)]
        bdev: String,
        /// NSID (default: the lowest free).
        #[arg(long)]
        nsid: Option<u32>,
    },
    /// Remove a namespace (nvmf_subsystem_remove_ns).
    RemoveNs {
        nqn: String,
        #[arg(long)]
        nsid: u32,
    },
    /// Allow a host NQN to connect (nvmf_subsystem_add_host).
    AddHost {
        nqn: String,
        #[arg(long)]
        host: String,
    },
    /// Take a host off the allow-list: its connections stay, it cannot
    /// connect again (nvmf_subsystem_remove_host).
    RemoveHost {
        nqn: String,
        #[arg(long)]
        host: String,
    },
}

/// An NVMe/TCP transport ID as SPDK's listener methods take it.
fn listen_address(traddr: &str, trsvcid: u16) -> Value {
    serde_json::json!({ "trtype": "TCP", "adrfam": "IPv4", "traddr": traddr, "trsvcid": trsvcid.to_string() })
}

/// The method and params of an `nvmf` subcommand (SPDK's shapes).
fn nvmf_request(cmd: &NvmfCmd) -> (&'static str, Option<Value>) {
    use serde_json::json;
    match cmd {
        NvmfCmd::List => ("nvmf_get_subsystems", None),
        NvmfCmd::CreateSubsystem { nqn, serial_number, model_number, allow_any_host, max_namespaces } => {
            let mut p = json!({ "nqn": nqn, "allow_any_host": allow_any_host });
            if let Some(v) = serial_number {
                p["serial_number"] = Value::from(v.as_str());
            }
            if let Some(v) = model_number {
                p["model_number"] = Value::from(v.as_str());
            }
            if let Some(v) = max_namespaces {
                p["max_namespaces"] = Value::from(*v);
            }
            ("nvmf_create_subsystem", Some(p))
        }
        NvmfCmd::DeleteSubsystem { nqn } => ("nvmf_delete_subsystem", Some(json!({ "nqn": nqn }))),
        NvmfCmd::AddListener { nqn, traddr, trsvcid } => ("nvmf_subsystem_add_listener", Some(json!({ "nqn": nqn, "listen_address": listen_address(traddr, *trsvcid) }))),
        NvmfCmd::RemoveListener { nqn, traddr, trsvcid } => {
            ("nvmf_subsystem_remove_listener", Some(json!({ "nqn": nqn, "listen_address": listen_address(traddr, *trsvcid) })))
        }
        NvmfCmd::AddNs { nqn, bdev, nsid } => {
            let mut ns = json!({ "bdev_name": bdev });
            if let Some(n) = nsid {
                ns["nsid"] = Value::from(*n);
            }
            ("nvmf_subsystem_add_ns", Some(json!({ "nqn": nqn, "namespace": ns })))
        }
        NvmfCmd::RemoveNs { nqn, nsid } => ("nvmf_subsystem_remove_ns", Some(json!({ "nqn": nqn, "nsid": nsid }))),
        NvmfCmd::AddHost { nqn, host } => ("nvmf_subsystem_add_host", Some(json!({ "nqn": nqn, "host": host }))),
        NvmfCmd::RemoveHost { nqn, host } => ("nvmf_subsystem_remove_host", Some(json!({ "nqn": nqn, "host": host }))),
    }
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Saved or not: the last save's copy and sequence, changes pending.
    Status,
}

#[derive(Subcommand)]
enum FwCmd {
    /// Boot slot, versions, update availability.
    Status,
    /// Push a signed firmware image (as `cargo xtask flash` signs them:
    /// `imgtool sign`) into a flash slot; the card verifies it before
    /// writing. With action 1 (default) the slot boots on trial at the
    /// next reset and must confirm itself, else the card goes back.
    Update {
        /// The signed image file.
        file: std::path::PathBuf,
        /// Flash slot: 1 (A) or 2 (B); not the one running.
        #[arg(long, default_value_t = 2)]
        slot: u8,
        /// NVMe Firmware Commit action: 0 write only, 1 write and boot it
        /// at the next reset, 2 only boot the slot's image at the next reset.
        #[arg(long, default_value_t = 1)]
        action: u8,
    },
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn size(v: &Value) -> String {
    let bytes = v["block_size"].as_u64().unwrap_or(0) * v["num_blocks"].as_u64().unwrap_or(0);
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} B"),
    }
}

fn rows(v: &Value, f: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    v.as_array().into_iter().flatten().map(f).collect()
}

/// `bdev iostat`: SPDK's `bdev_get_iostat` result as a table: operations,
/// megabytes (10^6 bytes, as fio and iostat print MB) and the mean
/// latency of reads and writes in microseconds (`tick_rate` ticks per
/// second; `-` with no I/O).
fn iostat_table(r: &Value) -> String {
    let rate = r["tick_rate"].as_u64().filter(|&t| t > 0).unwrap_or(1) as f64;
    let n = |b: &Value, k: &str| b[k].as_u64().unwrap_or(0);
    let avg = |b: &Value, ops: &str, ticks: &str| match n(b, ops) {
        0 => "-".to_string(),
        o => format!("{:.1}", n(b, ticks) as f64 / o as f64 / rate * 1e6),
    };
    let mb = |v: u64| format!("{:.1}", v as f64 / 1e6);
    let rows: Vec<Vec<String>> = r["bdevs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            vec![
                s(b, "name"),
                n(b, "num_read_ops").to_string(),
                mb(n(b, "bytes_read")),
                n(b, "num_write_ops").to_string(),
                mb(n(b, "bytes_written")),
                avg(b, "num_read_ops", "read_latency_ticks"),
                avg(b, "num_write_ops", "write_latency_ticks"),
            ]
        })
        .collect();
    table(&["NAME", "READ OPS", "READ MB", "WRITE OPS", "WRITE MB", "READ LAT US", "WRITE LAT US"], &rows)
}

/// The table for a subcommand's result.
fn render(cmd: &Cmd, r: &Value) -> String {
    match cmd {
        Cmd::Bdev { cmd: BdevCmd::CreateMalloc { .. } } => format!("created {}\n", r.as_str().unwrap_or("?")),
        Cmd::Bdev { cmd: BdevCmd::DeleteMalloc { name } } => format!("deleted {name}\n"),
        Cmd::Bdev { cmd: BdevCmd::Ec { cmd: EcCmd::Create { k, m, base_bdevs, spares, .. } } } => {
            let width = usize::from(*k) + usize::from(*m);
            let spare = if *spares > 0 { format!(", spares {}", base_bdevs[width.min(base_bdevs.len())..].join(", ")) } else { String::new() };
            format!("created {} ({k}+{m} over {}{spare}); map it with `ns attach`\n", r.as_str().unwrap_or("?"), base_bdevs[..width.min(base_bdevs.len())].join(", "))
        }
        Cmd::Bdev { cmd: BdevCmd::Ec { cmd: EcCmd::Delete { name } } } => format!("deleted {name} (its members are free again)\n"),
        Cmd::Bdev { cmd: BdevCmd::Iostat { .. } } => iostat_table(r),
        Cmd::Sriov { cmd: SriovCmd::Get } => format!(
            "VFs offered (TotalVFs): {} of at most {}\nVFs the host enabled: {} (VF Enable {})\n",
            s(r, "total_vfs"),
            s(r, "max_vfs"),
            s(r, "num_vfs"),
            if r["vf_enable"].as_bool() == Some(true) { "set" } else { "clear" }
        ),
        Cmd::Sriov { cmd: SriovCmd::Set { total_vfs } } => format!("the card offers {total_vfs} VFs; the host may enable up to that many (echo N > /sys/bus/pci/devices/<PF>/sriov_numvfs)\n"),
        Cmd::Ns { cmd: NsCmd::Attach { function, nsid, bdev } } => format!("{bdev} attached as namespace {nsid} of function {function}\n"),
        Cmd::Ns { cmd: NsCmd::Detach { function, nsid } } => {
            format!("namespace {nsid} of function {function} detached (its commands in flight complete; `bdev list` shows when)\n")
        }
        Cmd::Crypto { cmd: CryptoCmd::KeyCreate { name, .. } } => format!("key {name} kept (wrapped with the card's device key)\n"),
        Cmd::Crypto { cmd: CryptoCmd::KeyDestroy { name } } => format!("key {name} destroyed\n"),
        Cmd::Crypto { cmd: CryptoCmd::Create { base, key_name, .. } } => format!("created {} on {base} (key {key_name}); map it with `ns attach`\n", r.as_str().unwrap_or("?")),
        Cmd::Crypto { cmd: CryptoCmd::Delete { name } } => format!("deleted {name}\n"),
        Cmd::Crypto { cmd: CryptoCmd::KeyList } => table(&["NAME", "CIPHER", "TWEAK"], &rows(r, |k| vec![s(k, "name"), s(k, "cipher"), s(k, "tweak_mode")])),
        Cmd::Bdev { .. } => table(
            &["NAME", "BACKEND", "BLOCK", "BLOCKS", "SIZE", "ENCRYPTION", "STATE", "WHERE"],
            &rows(r, |b| {
                let d = &b["driver_specific"];
                let place = match d["backend"].as_str() {
                    Some("remote") => format!("{} nsid {}", s(d, "controller"), s(d, "remote_nsid")),
                    // A run-time volume names its members (and health).
                    Some("ec") if d["members"].as_array().is_some_and(|m| m.iter().any(|x| !x.as_str().unwrap_or("").starts_with("nvme"))) => {
                        let names = |k: &str| d[k].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>()).join(",");
                        let spares = names("spares");
                        let mapped = d.get("function").map_or(String::new(), |_| format!(", fn{} nsid {}", s(d, "function"), s(d, "nsid")));
                        format!("{}+{} over {}{}, {}{mapped}", s(d, "k"), s(d, "m"), names("members"), if spares.is_empty() { String::new() } else { format!(" spares {spares}") }, s(d, "health"))
                    }
                    Some("ec") => format!("{}+{} over {}", s(d, "k"), s(d, "m"), d["members"].as_array().map_or(0, |m| m.len())),
                    Some("local") => format!("SSD {} nsid {}", s(d, "ssd"), s(d, "ssd_nsid")),
                    _ if d.get("function").is_some() => format!("DPU memory, fn{} nsid {}", s(d, "function"), s(d, "nsid")),
                    _ => "DPU memory".into(),
                };
                // A crypto device made at run time: its cipher and key name.
                let enc = if d.get("key_name").is_some() { format!("{} key {}", s(d, "cipher"), s(d, "key_name")) } else { s(d, "encryption") };
                let place = if d.get("base_bdev_name").is_some() {
                    format!("on {}{}", s(d, "base_bdev_name"), d.get("function").map_or(String::new(), |_| format!(", fn{} nsid {}", s(d, "function"), s(d, "nsid"))))
                } else {
                    place
                };
                vec![s(b, "name"), s(d, "backend"), s(b, "block_size"), s(b, "num_blocks"), size(b), enc, s(d, "state"), place]
            }),
        ),
        Cmd::Ctrl { cmd: CtrlCmd::Attach { name, .. } } => {
            let names: Vec<&str> = r.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|v| v.as_str()).collect());
            format!("attached {name}: block devices {}\n", if names.is_empty() { "(none: no active namespace)".to_string() } else { names.join(", ") })
        }
        Cmd::Ctrl { cmd: CtrlCmd::Detach { name } } => format!("detached {name} (its connections are closed, its block devices gone)\n"),
        Cmd::Ctrl { cmd: CtrlCmd::List } => table(
            &["NAME", "STATE", "ADMIN QUEUE", "ADDRESS", "SUBSYSTEM", "CNTLID", "IO QUEUES"],
            &rows(r, |c| {
                let k = &c["ctrlrs"][0];
                let t = &k["trid"];
                vec![s(c, "name"), s(k, "state"), s(k, "admin_queue"), format!("{}:{}", s(t, "traddr"), s(t, "trsvcid")), s(t, "subnqn"), s(k, "cntlid"), s(k, "io_queues")]
            }),
        ),
        Cmd::Nvmf { cmd: NvmfCmd::CreateSubsystem { nqn, .. } } => format!("created {nqn}\n"),
        Cmd::Nvmf { cmd: NvmfCmd::DeleteSubsystem { nqn } } => format!("deleted {nqn} (its connections are closed)\n"),
        Cmd::Nvmf { cmd: NvmfCmd::AddListener { nqn, traddr, trsvcid } } => format!("{nqn} listens on {traddr}:{trsvcid}\n"),
        Cmd::Nvmf { cmd: NvmfCmd::RemoveListener { nqn, traddr, trsvcid } } => format!("{nqn} no longer listens on {traddr}:{trsvcid}\n"),
        Cmd::Nvmf { cmd: NvmfCmd::AddNs { nqn, bdev, .. } } => format!("{bdev} is namespace {} of {nqn}\n", r),
        Cmd::Nvmf { cmd: NvmfCmd::RemoveNs { nqn, nsid } } => format!("namespace {nsid} removed from {nqn}\n"),
        Cmd::Nvmf { cmd: NvmfCmd::AddHost { nqn, host } } => format!("{host} may connect to {nqn}\n"),
        Cmd::Nvmf { cmd: NvmfCmd::RemoveHost { nqn, host } } => format!("{host} removed from {nqn}'s hosts (its connections stay)\n"),
        Cmd::Nvmf { cmd: NvmfCmd::List } => table(
            &["NQN", "LISTEN", "HOSTS", "NAMESPACES"],
            &rows(r, |x| {
                let listen: Vec<String> = x["listen_addresses"].as_array().into_iter().flatten().map(|a| format!("{}:{}", s(a, "traddr"), s(a, "trsvcid"))).collect();
                let hosts = if x["allow_any_host"] == Value::Bool(true) {
                    "any".to_string()
                } else {
                    x["hosts"].as_array().into_iter().flatten().map(|h| s(h, "nqn")).collect::<Vec<_>>().join(" ")
                };
                let ns: Vec<String> = x["namespaces"].as_array().into_iter().flatten().map(|n| format!("{}={}", s(n, "nsid"), s(n, "bdev_name"))).collect();
                vec![s(x, "nqn"), listen.join(" "), hosts, ns.join(" ")]
            }),
        ),
        Cmd::Port { cmd } if settings::render_port(cmd, r).is_some() => settings::render_port(cmd, r).unwrap_or_default(),
        Cmd::Nvme { cmd } => settings::render_nvme(cmd, r),
        Cmd::Mgmt { cmd } => settings::render_mgmt(cmd, r),
        Cmd::Port { .. } => table(
            &["NAME", "MAC", "ADDRESS", "MTU", "LINK", "RX FRAMES", "TX FRAMES", "MGMT"],
            &rows(r, |p| {
                let link = if s(p, "link") == "up" { format!("up {} Gb/s", s(p, "speed_gbps")) } else { "down".into() };
                let c = &p["counters"];
                let mgmt = if p["management"] == Value::Bool(true) { "yes" } else { "" };
                vec![s(p, "name"), s(p, "mac"), format!("{}/{}", s(p, "ip"), s(p, "prefix")), s(p, "mtu"), link, s(c, "rx_frames"), s(c, "tx_frames"), mgmt.into()]
            }),
        ),
        Cmd::Fw { cmd: FwCmd::Update { slot, action, .. } } => format!(
            "slot {slot}: {}\n",
            if *action == 0 { "image written (not activated)" } else { "image ready; it boots on trial at the next reset" }
        ),
        Cmd::Fw { .. } => {
            let mut out = format!(
                "running {} (booted from {}, slot {}{}), update {}\n",
                s(r, "running_version"),
                s(r, "booted_from"),
                s(r, "active_slot"),
                if r["trial"] == Value::Bool(true) { ", on trial" } else { "" },
                if r["update_available"] == Value::Bool(true) { "available" } else { "not available" }
            );
            out.push_str(&table(
                &["SLOT", "REVISION", "ACTIVE", "NEXT"],
                &rows(&r["slots"], |x| {
                    let yes = |k: &str| if x[k] == Value::Bool(true) { "yes".to_string() } else { String::new() };
                    vec![s(x, "slot"), s(x, "revision"), yes("active"), yes("next")]
                }),
            ));
            out
        }
        Cmd::Config { .. } => {
            if r["persistent"] != Value::Bool(true) {
                return "not saved: the card was not booted from flash (live changes last until it restarts)\n".into();
            }
            let state = if r["saving"] == Value::Bool(true) {
                "saving"
            } else if r["pending"] == Value::Bool(true) {
                "changes not saved yet"
            } else {
                "saved"
            };
            format!(
                "{state}: {} run-time block device(s), {} run-time target subsystem(s); last save: copy {}, sequence {}\n",
                s(r, "run_time_bdevs"),
                s(r, "run_time_subsystems"),
                s(r, "copy"),
                s(r, "sequence")
            )
        }
        Cmd::Reactors => table(
            &["LCORE", "CLUSTER", "READS", "WRITES", "BYTES READ", "BYTES WRITTEN"],
            &rows(&r["reactors"], |x| vec![s(x, "lcore"), s(x, "cluster"), s(x, "read_cmds"), s(x, "write_cmds"), s(x, "bytes_read"), s(x, "bytes_written")]),
        ),
        Cmd::Methods => r.as_array().into_iter().flatten().filter_map(Value::as_str).map(|m| format!("{m}\n")).collect(),
        Cmd::Version => format!("{}\n", s(r, "version")),
        Cmd::Rpc { .. } => format!("{}\n", serde_json::to_string_pretty(r).unwrap_or_default()),
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs().map_err(|e| format!("--addr `{addr}`: {e} (expected HOST:PORT, e.g. 127.0.0.1:5260)"))?.next().ok_or_else(|| format!("--addr `{addr}`: no address"))
}

fn fw_update(c: &Client, cli: &Cli, file: &std::path::Path, slot: u8, action: u8) -> ExitCode {
    if !(1..=2).contains(&slot) || action > 2 {
        eprintln!("dpuctl: fw update: --slot must be 1 or 2 and --action 0, 1 or 2");
        return ExitCode::from(2);
    }
    let image = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dpuctl: fw update: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let mut shown = 0;
    let r = c.fw_update(&image, slot, action, |sent, total| {
        // A line per tenth when a person watches.
        if !cli.json && sent * 10 / total > shown {
            shown = sent * 10 / total;
            eprintln!("dpuctl: fw update: {sent} of {total} bytes sent");
        }
    });
    match r {
        Ok(u) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&u).unwrap_or_default());
            } else {
                print!("{}", render(&cli.cmd, &u));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dpuctl: fw update: {e}");
            ExitCode::from(if matches!(e, dpuctl::UpdateError::Call(Error::Rpc { .. }) | dpuctl::UpdateError::Refused { .. }) { 1 } else { 3 })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let addr = match resolve(&cli.addr) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dpuctl: {e}");
            return ExitCode::from(2);
        }
    };
    let (method, params): (String, Option<Value>) = match &cli.cmd {
        Cmd::Bdev { cmd: BdevCmd::List { name } } => ("bdev_get_bdevs".into(), name.as_ref().map(|n| serde_json::json!({ "name": n }))),
        Cmd::Bdev { cmd: BdevCmd::CreateMalloc { num_blocks, block_size, name } } => {
            let mut p = serde_json::json!({ "num_blocks": num_blocks, "block_size": block_size });
            if let Some(n) = name {
                p["name"] = Value::from(n.as_str());
            }
            ("bdev_malloc_create".into(), Some(p))
        }
        Cmd::Bdev { cmd: BdevCmd::DeleteMalloc { name } } => ("bdev_malloc_delete".into(), Some(serde_json::json!({ "name": name }))),
        Cmd::Bdev { cmd: BdevCmd::Ec { cmd } } => {
            let (m, p) = ec_request(cmd);
            (m.into(), p)
        }
        Cmd::Bdev { cmd: BdevCmd::Iostat { name } } => ("bdev_get_iostat".into(), name.as_ref().map(|n| serde_json::json!({ "name": n }))),
        Cmd::Sriov { cmd: SriovCmd::Get } => ("dpu_sriov_get".into(), None),
        Cmd::Sriov { cmd: SriovCmd::Set { total_vfs } } => ("dpu_sriov_set_total_vfs".into(), Some(serde_json::json!({ "total_vfs": total_vfs }))),
        Cmd::Ns { cmd: NsCmd::Attach { function, nsid, bdev } } => {
            ("dpu_ns_attach".into(), Some(serde_json::json!({ "function": function, "nsid": nsid, "bdev": bdev })))
        }
        Cmd::Ns { cmd: NsCmd::Detach { function, nsid } } => ("dpu_ns_detach".into(), Some(serde_json::json!({ "function": function, "nsid": nsid }))),
        Cmd::Ctrl { cmd } => {
            let (m, p) = ctrl_request(cmd);
            (m.into(), p)
        }
        Cmd::Crypto { cmd } => match crypto_request(cmd) {
            Ok((m, p)) => (m.into(), p),
            Err(e) => {
                eprintln!("dpuctl: crypto: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Port { cmd } => match settings::port_request(cmd) {
            Ok((m, p)) => (m.into(), p),
            Err(e) => {
                eprintln!("dpuctl: port: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Nvme { cmd } => {
            let (m, p) = settings::nvme_request(cmd);
            (m.into(), p)
        }
        Cmd::Mgmt { cmd } => match settings::mgmt_request(cmd) {
            Ok((m, p)) => (m.into(), p),
            Err(e) => {
                eprintln!("dpuctl: mgmt: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Nvmf { cmd } => {
            let (m, p) = nvmf_request(cmd);
            (m.into(), p)
        }
        Cmd::Fw { cmd: FwCmd::Status } => ("dpu_fw_get_status".into(), None),
        Cmd::Fw { cmd: FwCmd::Update { .. } } => ("dpu_fw_download".into(), None),
        Cmd::Config { .. } => ("dpu_config_get_status".into(), None),
        Cmd::Reactors => ("framework_get_reactors".into(), None),
        Cmd::Methods => ("rpc_get_methods".into(), None),
        Cmd::Version => ("spdk_get_version".into(), None),
        Cmd::Rpc { method, params } => {
            let p = match params.as_deref().map(serde_json::from_str::<Value>) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    eprintln!("dpuctl: params: not JSON: {e} (e.g. '{{\"name\": \"fn1n1\"}}')");
                    return ExitCode::from(2);
                }
            };
            (method.clone(), p)
        }
    };
    let mut c = Client::new(addr);
    c.token = cli.token.clone();
    c.timeout = std::time::Duration::from_secs(cli.timeout.max(1));
    if let Cmd::Fw { cmd: FwCmd::Update { file, slot, action } } = &cli.cmd {
        return fw_update(&c, &cli, file, *slot, *action);
    }
    match c.call(&method, params) {
        Ok(r) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                print!("{}", render(&cli.cmd, &r));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dpuctl: {method}: {e}");
            ExitCode::from(if matches!(e, Error::Rpc { .. }) { 1 } else { 3 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `port set|options`, `nvme options`, `mgmt show|set`: the methods
    /// and params they send; a get when no change is given; bad
    /// arguments caught before anything is sent.
    #[test]
    fn settings_subcommands_send_their_requests() {
        let cli = |args: &[&str]| Cli::try_parse_from(std::iter::once("dpuctl").chain(args.iter().copied()));
        let port = |args: &[&str]| match cli(args).unwrap().cmd {
            Cmd::Port { cmd } => settings::port_request(&cmd),
            _ => panic!("not a port command"),
        };
        assert_eq!(port(&["port", "set", "1", "10.0.1.77/24"]).unwrap(), ("dpu_set_port", Some(serde_json::json!({ "port": 1, "ip": "10.0.1.77", "prefix": 24 }))));
        assert_eq!(port(&["port", "set", "1", "10.0.1.77/24", "--mtu", "1400"]).unwrap().1.unwrap()["mtu"], 1400);
        assert!(port(&["port", "set", "1", "10.0.1.77"]).unwrap_err().contains("ADDRESS/PREFIX"));
        assert!(port(&["port", "set", "1", "10.0.1.77/x"]).unwrap_err().contains("prefix"));
        assert_eq!(port(&["port", "list"]).unwrap(), ("dpu_get_ports", None));
        assert_eq!(port(&["port", "options"]).unwrap(), ("dpu_port_get_options", None));
        assert_eq!(port(&["port", "options", "--tcp-min-rto-ms", "7"]).unwrap(), ("dpu_port_set_options", Some(serde_json::json!({ "tcp_min_rto_ms": 7 }))));
        let nvme = |args: &[&str]| match cli(args).unwrap().cmd {
            Cmd::Nvme { cmd } => settings::nvme_request(&cmd),
            _ => panic!("not an nvme command"),
        };
        assert_eq!(nvme(&["nvme", "options"]), ("dpu_nvme_get_options", None));
        assert_eq!(
            nvme(&["nvme", "options", "--hdgst", "true", "--ddgst", "false", "--io-timeout-us", "40000", "--hostnqn", "nqn.h"]),
            ("dpu_nvme_set_options", Some(serde_json::json!({ "hdgst": true, "ddgst": false, "io_timeout_us": 40000, "hostnqn": "nqn.h" })))
        );
        assert!(cli(&["nvme", "options", "--hdgst", "maybe"]).is_err());
        let mgmt = |args: &[&str]| match cli(args).unwrap().cmd {
            Cmd::Mgmt { cmd } => settings::mgmt_request(&cmd),
            _ => panic!("not a mgmt command"),
        };
        assert_eq!(mgmt(&["mgmt", "show"]).unwrap(), ("dpu_mgmt_get", None));
        assert_eq!(
            mgmt(&["mgmt", "set", "--allow", "10.0.0.240/28", "--allow", "192.168.1.0/24", "--new-token", "t2"]).unwrap(),
            ("dpu_mgmt_set", Some(serde_json::json!({ "allow": ["10.0.0.240/28", "192.168.1.0/24"], "token": "t2" })))
        );
        assert_eq!(mgmt(&["mgmt", "set", "--allow-any"]).unwrap().1.unwrap()["allow"], serde_json::json!([]));
        assert!(mgmt(&["mgmt", "set"]).unwrap_err().contains("nothing to change"));
        assert!(cli(&["mgmt", "set", "--allow-any", "--allow", "10.0.0.0/8"]).is_err(), "conflicting flags");
    }

    /// What the settings subcommands print for the card's answers.
    #[test]
    fn settings_tables_show_the_answers() {
        let cli = |args: &[&str]| Cli::try_parse_from(std::iter::once("dpuctl").chain(args.iter().copied())).unwrap();
        let out = render(&cli(&["nvme", "options"]).cmd, &serde_json::json!({ "hostnqn": "nqn.h", "hostid": "ab", "hdgst": true, "ddgst": false, "io_timeout_us": 40000 }));
        assert!(out.contains("nqn.h") && out.contains("on") && out.contains("off") && out.contains("40000"), "{out}");
        let out = render(&cli(&["mgmt", "show"]).cmd, &serde_json::json!({ "port": "eth0", "tcp_port": 5260, "request_timeout_ms": 5000, "allow": [], "token_required": true }));
        assert!(out.contains("any client") && out.contains("required") && out.contains("5260"), "{out}");
        let out = render(&cli(&["port", "options"]).cmd, &serde_json::json!({ "tcp_min_rto_ms": 7, "lro": false }));
        assert!(out.contains('7') && out.contains("off"), "{out}");
        let out = render(&cli(&["port", "list"]).cmd, &serde_json::json!([{ "name": "eth1", "ip": "10.0.1.77", "prefix": 24, "mtu": 1500, "link": "up", "speed_gbps": 100, "counters": {} }]));
        assert!(out.contains("10.0.1.77/24"), "{out}");
    }

    fn request(args: &[&str]) -> (&'static str, Option<Value>) {
        let cli = Cli::try_parse_from(std::iter::once("dpuctl").chain(args.iter().copied())).unwrap();
        match &cli.cmd {
            Cmd::Nvmf { cmd } => nvmf_request(cmd),
            Cmd::Ctrl { cmd } => ctrl_request(cmd),
            Cmd::Bdev { cmd: BdevCmd::Ec { cmd } } => ec_request(cmd),
            _ => panic!("not an nvmf, ctrl or bdev ec command"),
        }
    }

    /// `bdev iostat [NAME]` sends `bdev_get_iostat` (with the name when
    /// given) and prints operations, MB and mean latency per device.
    #[test]
    fn bdev_iostat_request_and_table() {
        let cli = Cli::try_parse_from(["dpuctl", "bdev", "iostat", "fn0n1"]).unwrap();
        assert!(matches!(&cli.cmd, Cmd::Bdev { cmd: BdevCmd::Iostat { name: Some(n) } } if n == "fn0n1"));
        let cli = Cli::try_parse_from(["dpuctl", "bdev", "iostat"]).unwrap();
        assert!(matches!(&cli.cmd, Cmd::Bdev { cmd: BdevCmd::Iostat { name: None } }));
        let r = serde_json::json!({
            "tick_rate": 100_000_000u64, "ticks": 5,
            "bdevs": [
                { "name": "fn0n1", "num_read_ops": 184, "bytes_read": 753664, "num_write_ops": 72, "bytes_written": 294912, "read_latency_ticks": 184 * 1250, "write_latency_ticks": 72 * 1500 },
                { "name": "Malloc0", "num_read_ops": 0, "bytes_read": 0, "num_write_ops": 0, "bytes_written": 0, "read_latency_ticks": 0, "write_latency_ticks": 0 }
            ]
        });
        let t = iostat_table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        for (line, want) in [(lines[1], ["fn0n1", "184", "0.8", "72", "0.3", "12.5", "15.0"]), (lines[2], ["Malloc0", "0", "0.0", "0", "0.0", "-", "-"])] {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells, want, "{t}");
        }
    }

    /// `sriov get|set N` parse; a count that is no number is refused by
    /// the parser (the card checks the range and names the field).
    #[test]
    fn sriov_subcommands_parse() {
        let cli = Cli::try_parse_from(["dpuctl", "sriov", "set", "8"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Sriov { cmd: SriovCmd::Set { total_vfs: 8 } }));
        assert!(matches!(Cli::try_parse_from(["dpuctl", "sriov", "get"]).unwrap().cmd, Cmd::Sriov { cmd: SriovCmd::Get }));
        assert!(Cli::try_parse_from(["dpuctl", "sriov", "set", "many"]).is_err());
        assert!(Cli::try_parse_from(["dpuctl", "sriov", "set"]).is_err());
        let r = serde_json::json!({ "max_vfs": 64, "total_vfs": 3, "num_vfs": 0, "vf_enable": false });
        assert_eq!(render(&Cli::try_parse_from(["dpuctl", "sriov", "get"]).unwrap().cmd, &r), "VFs offered (TotalVFs): 3 of at most 64\nVFs the host enabled: 0 (VF Enable clear)\n");
    }

    /// `ctrl attach|detach|list` send SPDK's bdev_nvme_* methods with
    /// SPDK's parameter shapes.
    #[test]
    fn ctrl_subcommands_send_spdk_requests() {
        let nqn = "nqn.2026-12.io.example:r0";
        assert_eq!(
            request(&["ctrl", "attach", "Nvme0", "--traddr", "10.0.0.10", "--subnqn", nqn]),
            (
                "bdev_nvme_attach_controller",
                Some(serde_json::json!({ "name": "Nvme0", "trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.10", "trsvcid": "4420", "subnqn": nqn }))
            )
        );
        let p = request(&["ctrl", "attach", "Nvme1", "--traddr", "10.0.0.11", "--trsvcid", "4421", "--subnqn", nqn, "--hostnqn", "nqn.h", "--ddgst"]).1.unwrap();
        assert_eq!((p["trsvcid"].as_str(), p["hostnqn"].as_str(), p["ddgst"].as_bool(), p.get("hdgst")), (Some("4421"), Some("nqn.h"), Some(true), None));
        assert_eq!(request(&["ctrl", "detach", "Nvme0"]), ("bdev_nvme_detach_controller", Some(serde_json::json!({ "name": "Nvme0" }))));
        assert_eq!(request(&["ctrl", "list"]), ("bdev_nvme_get_controllers", None));
        assert!(Cli::try_parse_from(["dpuctl", "ctrl", "attach", "Nvme0", "--traddr", "10.0.0.10"]).is_err(), "subnqn is required");
    }

    /// `bdev ec create|delete` send bdev_ec_create / bdev_ec_delete with
    /// the members in order; the table shows a run-time volume's members,
    /// health and mapping.
    #[test]
    fn bdev_ec_subcommands_send_requests_and_show_volumes() {
        assert_eq!(
            request(&["bdev", "ec", "create", "ec0", "--k", "2", "--m", "1", "Tan1", "Tbn1", "Tcn1"]),
            ("bdev_ec_create", Some(serde_json::json!({ "name": "ec0", "k": 2, "m": 1, "base_bdevs": ["Tan1", "Tbn1", "Tcn1"] })))
        );
        let p = request(&["bdev", "ec", "create", "ec1", "--k", "2", "--m", "1", "a", "b", "c", "d", "--spares", "1", "--scrub-every-ms", "500"]).1.unwrap();
        assert_eq!((p["spares"].as_u64(), p["scrub_every_ms"].as_u64(), p["base_bdevs"].as_array().map(|a| a.len())), (Some(1), Some(500), Some(4)));
        assert_eq!(request(&["bdev", "ec", "delete", "ec0"]), ("bdev_ec_delete", Some(serde_json::json!({ "name": "ec0" }))));
        assert!(Cli::try_parse_from(["dpuctl", "bdev", "ec", "create", "ec0", "--k", "2", "--m", "1"]).is_err(), "members are required");
        assert!(Cli::try_parse_from(["dpuctl", "bdev", "ec", "create", "ec0", "--m", "1", "a", "b"]).is_err(), "k is required");
        let cli = Cli::try_parse_from(["dpuctl", "bdev", "ec", "create", "ec1", "--k", "2", "--m", "1", "a", "b", "c", "d", "--spares", "1"]).unwrap();
        assert_eq!(render(&cli.cmd, &serde_json::json!("ec1")), "created ec1 (2+1 over a, b, c, spares d); map it with `ns attach`\n");
        let r = serde_json::json!([{ "name": "ec0", "block_size": 512, "num_blocks": 4080, "driver_specific": { "backend": "ec", "k": 2, "m": 1, "members": ["Tan1", "Tbn1", "Tcn1"], "spares": [], "health": "optimal", "state": "ready", "function": 1, "nsid": 1 } }]);
        let cli = Cli::try_parse_from(["dpuctl", "bdev", "list"]).unwrap();
        let t = render(&cli.cmd, &r);
        assert!(t.contains("2+1 over Tan1,Tbn1,Tcn1, optimal, fn1 nsid 1") && t.contains("ready"), "{t}");
    }

    /// `crypto` subcommands send SPDK's accel/bdev crypto methods; a key
    /// file gives both halves.
    #[test]
    fn crypto_subcommands_send_spdk_requests() {
        let req = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("dpuctl").chain(args.iter().copied())).unwrap();
            let Cmd::Crypto { cmd } = &cli.cmd else { panic!("not a crypto command") };
            crypto_request(cmd)
        };
        let (k1, k2) = ("11".repeat(32), "22".repeat(32));
        assert_eq!(
            req(&["crypto", "key-create", "k0", "--key", &k1, "--key2", &k2]).unwrap(),
            ("accel_crypto_key_create", Some(serde_json::json!({ "cipher": "AES_XTS", "name": "k0", "key": k1, "key2": k2 })))
        );
        let f = std::env::temp_dir().join(format!("dpuctl-key-{}.hex", std::process::id()));
        std::fs::write(&f, format!("{k1}\n{k2}\n")).unwrap();
        assert_eq!(req(&["crypto", "key-create", "k1", "--key-file", f.to_str().unwrap()]).unwrap().1.unwrap()["key2"], k2.as_str());
        std::fs::write(&f, "abcd").unwrap();
        assert!(req(&["crypto", "key-create", "k1", "--key-file", f.to_str().unwrap()]).unwrap_err().contains("128 hex digits"));
        let _ = std::fs::remove_file(&f);
        assert!(Cli::try_parse_from(["dpuctl", "crypto", "key-create", "k0", "--key", &k1]).is_err(), "key2 is required with key");
        assert!(Cli::try_parse_from(["dpuctl", "crypto", "key-create", "k0"]).is_err(), "a key is required");
        assert_eq!(req(&["crypto", "key-list"]).unwrap(), ("accel_crypto_keys_get", None));
        assert_eq!(req(&["crypto", "key-destroy", "k0"]).unwrap(), ("accel_crypto_key_destroy", Some(serde_json::json!({ "key_name": "k0" }))));
        assert_eq!(
            req(&["crypto", "create", "crypt0", "--base", "Nvme0n1", "--key-name", "k0"]).unwrap(),
            ("bdev_crypto_create", Some(serde_json::json!({ "base_bdev_name": "Nvme0n1", "name": "crypt0", "key_name": "k0" })))
        );
        assert_eq!(req(&["crypto", "delete", "crypt0"]).unwrap(), ("bdev_crypto_delete", Some(serde_json::json!({ "name": "crypt0" }))));
        // The key list table shows names and ciphers only.
        let r = serde_json::json!([{ "name": "k0", "cipher": "AES_XTS", "tweak_mode": "SIMPLE_LBA" }]);
        let cli = Cli::try_parse_from(["dpuctl", "crypto", "key-list"]).unwrap();
        let t = render(&cli.cmd, &r);
        assert!(t.contains("k0") && t.contains("AES_XTS"), "{t}");
    }

    /// Each `nvmf` subcommand sends SPDK's method with SPDK's parameter
    /// shapes (listen_address and namespace as nested objects, trsvcid a
    /// string).
    #[test]
    fn nvmf_subcommands_send_spdk_requests() {
        let nqn = "nqn.2026-12.io.example:d0";
        assert_eq!(
            request(&["nvmf", "create-subsystem", nqn, "--serial-number", "SN1", "--max-namespaces", "4"]),
            ("nvmf_create_subsystem", Some(serde_json::json!({ "nqn": nqn, "allow_any_host": false, "serial_number": "SN1", "max_namespaces": 4 })))
        );
        assert_eq!(request(&["nvmf", "create-subsystem", nqn, "--allow-any-host"]).1.unwrap()["allow_any_host"], true);
        assert_eq!(request(&["nvmf", "delete-subsystem", nqn]), ("nvmf_delete_subsystem", Some(serde_json::json!({ "nqn": nqn }))));
        assert_eq!(
            request(&["nvmf", "add-listener", nqn, "--traddr", "10.0.0.1"]),
            (
                "nvmf_subsystem_add_listener",
                Some(serde_json::json!({ "nqn": nqn, "listen_address": { "trtype": "TCP", "adrfam": "IPv4", "traddr": "10.0.0.1", "trsvcid": "4420" } }))
            )
        );
        assert_eq!(request(&["nvmf", "remove-listener", nqn, "--traddr", "10.0.0.1", "--trsvcid", "4421"]).1.unwrap()["listen_address"]["trsvcid"], "4421");
        assert_eq!(
            request(&["nvmf", "add-ns", nqn, "--bdev", "Malloc0"]),
            ("nvmf_subsystem_add_ns", Some(serde_json::json!({ "nqn": nqn, "namespace": { "bdev_name": "Malloc0" } })))
        );
        assert_eq!(request(&["nvmf", "add-ns", nqn, "--bdev", "Malloc0", "--nsid", "3"]).1.unwrap()["namespace"]["nsid"], 3);
        assert_eq!(request(&["nvmf", "remove-ns", nqn, "--nsid", "3"]), ("nvmf_subsystem_remove_ns", Some(serde_json::json!({ "nqn": nqn, "nsid": 3 }))));
        let host = "nqn.2014-08.org.nvmexpress:uuid:h1";
        assert_eq!(request(&["nvmf", "add-host", nqn, "--host", host]), ("nvmf_subsystem_add_host", Some(serde_json::json!({ "nqn": nqn, "host": host }))));
        assert_eq!(request(&["nvmf", "remove-host", nqn, "--host", host]).0, "nvmf_subsystem_remove_host");
        assert_eq!(request(&["nvmf", "list"]), ("nvmf_get_subsystems", None));
        // A missing required argument is a usage error, not a request.
        assert!(Cli::try_parse_from(["dpuctl", "nvmf", "add-ns", nqn]).is_err());
    }
}
