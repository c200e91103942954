//! `dpuctl port|nvme|mgmt`: the settings the card's boot configuration
//! carries outside its lists, read and changed live (`dpu_get_ports`,
//! `dpu_set_port`, `dpu_port_get_options`, `dpu_port_set_options`,
//! `dpu_nvme_get_options`, `dpu_nvme_set_options`, `dpu_mgmt_get`,
//! `dpu_mgmt_set`). The card checks every value (a bad one is refused
//! naming the field, and nothing changes) and saves the change to its
//! flash configuration.

use clap::Subcommand;
use dpuctl::table;
use serde_json::{json, Map, Value};

#[derive(Subcommand)]
pub enum PortCmd {
    /// The Ethernet ports, their addresses, link and counters (dpu_get_ports).
    List,
    /// Give a data port a new address, live (dpu_set_port). Refused (busy)
    /// while a remote controller, a target listener or the management
    /// server uses the port; the MTU may only stay or go down (a larger
    /// one needs the boot configuration and a restart).
    Set {
        /// Port index (0 = eth0).
        port: u32,
        /// Address and prefix length, e.g. 10.0.1.77/24.
        address: String,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Show the TCP settings, or change them with the flags
    /// (dpu_port_get_options / dpu_port_set_options): the minimum RTO
    /// applies at once to every connection.
    Options {
        /// TCP minimum retransmission timeout, ms (1..=60000).
        #[arg(long)]
        tcp_min_rto_ms: Option<u32>,
    },
}

#[derive(Subcommand)]
pub enum NvmeCmd {
    /// Show the NVMe/TCP initiator's defaults, or change them with the
    /// flags (dpu_nvme_get_options / dpu_nvme_set_options). The I/O
    /// timeout applies at once; host NQN and digests to controllers
    /// attached from then on (they are negotiated at connect).
    Options {
        #[arg(long)]
        hostnqn: Option<String>,
        /// Header digest: true or false.
        #[arg(long)]
        hdgst: Option<bool>,
        /// Data digest: true or false.
        #[arg(long)]
        ddgst: Option<bool>,
        /// Remote I/O timeout, us (100..=60000000).
        #[arg(long)]
        io_timeout_us: Option<u64>,
    },
}

#[derive(Subcommand)]
pub enum MgmtCmd {
    /// The management server's rules (dpu_mgmt_get; the token is never shown).
    Show,
    /// Change the rules, live (dpu_mgmt_set). A list that leaves out the
    /// client making the change is refused (it would lock you out); after
    /// a new token, pass it with --token.
    Set {
        /// Allowed client prefix a.b.c.d/len (repeat for several); replaces the list.
        #[arg(long)]
        allow: Vec<String>,
        /// Let any client connect (an empty allow-list).
        #[arg(long, conflicts_with = "allow")]
        allow_any: bool,
        /// The new access token ("" for none).
        #[arg(long)]
        new_token: Option<String>,
        /// How long a begun request may take to arrive whole, ms.
        #[arg(long)]
        request_timeout_ms: Option<u32>,
    },
}

/// The method and params of `port ...`.
pub fn port_request(cmd: &PortCmd) -> Result<(&'static str, Option<Value>), String> {
    Ok(match cmd {
        PortCmd::List => ("dpu_get_ports", None),
        PortCmd::Set { port, address, mtu } => {
            let (ip, prefix) = address.split_once('/').ok_or_else(|| format!("`{address}`: give ADDRESS/PREFIX, e.g. 10.0.1.77/24"))?;
            let prefix: u32 = prefix.parse().map_err(|_| format!("`{prefix}`: the prefix length must be a number, e.g. 24"))?;
            let mut p = json!({ "port": port, "ip": ip, "prefix": prefix });
            if let Some(m) = mtu {
                p["mtu"] = Value::from(*m);
            }
            ("dpu_set_port", Some(p))
        }
        PortCmd::Options { tcp_min_rto_ms: None } => ("dpu_port_get_options", None),
        PortCmd::Options { tcp_min_rto_ms: Some(ms) } => ("dpu_port_set_options", Some(json!({ "tcp_min_rto_ms": ms }))),
    })
}

/// The method and params of `nvme ...`.
pub fn nvme_request(cmd: &NvmeCmd) -> (&'static str, Option<Value>) {
    let NvmeCmd::Options { hostnqn, hdgst, ddgst, io_timeout_us } = cmd;
    let mut p = Map::new();
    if let Some(h) = hostnqn {
        p.insert("hostnqn".into(), h.as_str().into());
    }
    if let Some(h) = hdgst {
        p.insert("hdgst".into(), (*h).into());
    }
    if let Some(d) = ddgst {
        p.insert("ddgst".into(), (*d).into());
    }
    if let Some(t) = io_timeout_us {
        p.insert("io_timeout_us".into(), (*t).into());
    }
    if p.is_empty() {
        ("dpu_nvme_get_options", None)
    } else {
        ("dpu_nvme_set_options", Some(Value::Object(p)))
    }
}

/// The method and params of `mgmt ...`.
pub fn mgmt_request(cmd: &MgmtCmd) -> Result<(&'static str, Option<Value>), String> {
    Ok(match cmd {
        MgmtCmd::Show => ("dpu_mgmt_get", None),
        MgmtCmd::Set { allow, allow_any, new_token, request_timeout_ms } => {
            let mut p = Map::new();
            if *allow_any {
                p.insert("allow".into(), json!([]));
            } else if !allow.is_empty() {
                p.insert("allow".into(), allow.iter().map(|a| Value::from(a.as_str())).collect());
            }
            if let Some(t) = new_token {
                p.insert("token".into(), t.as_str().into());
            }
            if let Some(t) = request_timeout_ms {
                p.insert("request_timeout_ms".into(), (*t).into());
            }
            if p.is_empty() {
                return Err("nothing to change: give --allow, --allow-any, --new-token or --request-timeout-ms".into());
            }
            ("dpu_mgmt_set", Some(Value::Object(p)))
        }
    })
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn on(v: &Value, k: &str) -> &'static str {
    if v[k] == Value::Bool(true) {
        "on"
    } else {
        "off"
    }
}

/// What `port set|options` prints (`port list` is the port table).
pub fn render_port(cmd: &PortCmd, r: &Value) -> Option<String> {
    match cmd {
        PortCmd::List => None,
        PortCmd::Set { port, address, .. } => Some(format!("eth{port} is now {address} (saved; every core took it)\n")),
        PortCmd::Options { tcp_min_rto_ms: Some(ms) } => Some(format!("TCP minimum RTO is now {ms} ms on every connection (saved)\n")),
        PortCmd::Options { tcp_min_rto_ms: None } => Some(table(&["TCP MIN RTO (ms)", "LRO"], &[vec![s(r, "tcp_min_rto_ms"), on(r, "lro").into()]])),
    }
}

pub fn render_nvme(cmd: &NvmeCmd, r: &Value) -> String {
    match nvme_request(cmd).1 {
        Some(_) => "saved: the I/O timeout applies now; host NQN and digests to controllers attached from now on\n".into(),
        None => table(
            &["HOST NQN", "HOST ID", "HDGST", "DDGST", "I/O TIMEOUT (us)"],
            &[vec![s(r, "hostnqn"), s(r, "hostid"), on(r, "hdgst").into(), on(r, "ddgst").into(), s(r, "io_timeout_us")]],
        ),
    }
}

pub fn render_mgmt(cmd: &MgmtCmd, r: &Value) -> String {
    match cmd {
        MgmtCmd::Set { .. } => "saved: the rules apply now (clients outside the allow-list are disconnected)\n".into(),
        MgmtCmd::Show => {
            let allow: Vec<String> = r["allow"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
            let allow = if allow.is_empty() { "any client".to_string() } else { allow.join(" ") };
            let token = if r["token_required"] == Value::Bool(true) { "required" } else { "none" };
            table(&["PORT", "TCP PORT", "REQUEST TIMEOUT (ms)", "ALLOW", "TOKEN"], &[vec![s(r, "port"), s(r, "tcp_port"), s(r, "request_timeout_ms"), allow, token.into()]])
        }
    }
}
