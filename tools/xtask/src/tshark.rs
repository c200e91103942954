//! The Wireshark cross-check of the NVMe/TCP the simulator puts on the
//! wire (`cargo xtask test`, test "tshark"): a capture of the firmware
//! talking to a target model, with header and data digests, is read back
//! by tshark's NVMe/TCP dissector, an implementation neither side shares
//! code with. tshark comes from Debian (package `tshark`), installed with
//! apt-get on first use like QEMU for the interop test.

use crate::interop::image::{apt_get_retrying, installed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub const TSHARK: &str = "/usr/bin/tshark";

/// Installs tshark when it is missing. DEBIAN_FRONTEND=noninteractive
/// (set by `apt_get`) takes the default "no" for wireshark-common's
/// question about capturing as a non-root user.
pub fn ensure_tshark() -> Result<(), String> {
    if installed("tshark") && Path::new(TSHARK).exists() {
        return Ok(());
    }
    crate::interop::progress("installing the Debian package tshark");
    apt_get_retrying(&["install", "-y", "--no-install-recommends", "tshark"], None).map_err(|e| {
        format!(
            "cannot install the Debian package tshark: {e}\ninstall it as root, then retry:\n  \
             apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark"
        )
    })?;
    if !Path::new(TSHARK).exists() {
        return Err(format!("{TSHARK} is missing although tshark is installed; reinstall it: apt-get install --reinstall tshark"));
    }
    Ok(())
}

/// One NVMe/TCP PDU as tshark dissected it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DissectedPdu {
    pub frame: u64,
    /// TCP source port: 4420 for what the target sent.
    pub src_port: u16,
    pub pdu_type: u8,
    pub flags: u8,
    pub hlen: u8,
    pub pdo: u8,
    pub plen: u32,
    /// CID of a command, response or data PDU (`nvme-tcp.cmd.cid`).
    pub cid: Option<u16>,
    /// DATAO/DATAL of H2CData/C2HData.
    pub data: Option<(u32, u32)>,
    /// R2TO/R2TL.
    pub r2t: Option<(u32, u32)>,
    pub maxh2cdata: Option<u32>,
    /// Digest verdicts (`nvme-tcp.hdgst.status`, `nvme-tcp.ddgst.status`).
    pub hdgst_status: Option<u64>,
    pub ddgst_status: Option<u64>,
}

/// tshark's digest status value for a digest that matched (Wireshark's
/// checksum status: 0 bad, 1 good, 2 unverified, 3 not present).
pub const DIGEST_GOOD: u64 = 1;

fn num(v: &Value) -> Option<u64> {
    let s = v.as_str()?;
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The first value of `key` anywhere inside `v` (tshark nests fields in
/// `*_tree` objects).
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

/// What tshark read from a capture.
#[derive(Clone, Debug, Default)]
pub struct Dissection {
    /// Every NVMe/TCP PDU, in order.
    pub pdus: Vec<DissectedPdu>,
    /// Frames tshark flagged as malformed or with an error-level expert message.
    pub bad: Vec<String>,
    /// Discovery Log Page entries as the NVMe dissector reads them:
    /// (SUBNQN, TRADDR, TRSVCID), padding trimmed.
    pub discovery: Vec<(String, String, String)>,
}

/// Every value of `key` anywhere inside `v`, in order.
fn all<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k == key, x) {
                    (true, Value::String(s)) => out.push(s),
                    (true, Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
                    _ => all(x, key, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all(x, key, out)),
        _ => {}
    }
}

/// Runs tshark on `pcap` (NVMe/TCP on TCP port `port`, digests checked).
pub fn dissect(pcap: &Path, port: u16) -> Result<Dissection, String> {
    let mut c = Command::new(TSHARK);
    c.arg("-r")
        .arg(pcap)
        .args(["-d", &format!("tcp.port=={port},nvme-tcp"), "-o", "nvme-tcp.check_hdgst:TRUE", "-o", "nvme-tcp.check_ddgst:TRUE"])
        .args(["-Y", "nvme-tcp || _ws.malformed || _ws.expert.severity == error", "-T", "json", "--no-duplicate-keys"]);
    let out = c.output().map_err(|e| format!("cannot run {TSHARK}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} failed ({}): {}", crate::build::show(&c), out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("tshark's JSON: {e}"))?;
    let mut pdus = Vec::new();
    let mut bad = Vec::new();
    let mut discovery = Vec::new();
    for pkt in doc.as_array().into_iter().flatten() {
        let layers = &pkt["_source"]["layers"];
        let (mut nqn, mut addr, mut svc) = (Vec::new(), Vec::new(), Vec::new());
        all(layers, "nvme.cmd.get_logpage.identify.rcrd.subnqn", &mut nqn);
        all(layers, "nvme.cmd.get_logpage.identify.rcrd.traddr", &mut addr);
        all(layers, "nvme.cmd.get_logpage.identify.rcrd.trsvcid", &mut svc);
        for ((n, a), s) in nqn.iter().zip(&addr).zip(&svc) {
            let t = |x: &str| x.trim_end_matches([' ', '\0']).to_string();
            discovery.push((t(n), t(a), t(s)));
        }
        let frame = layers["frame"]["frame.number"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        if layers.get("_ws.malformed").is_some() || find(layers, "_ws.expert.severity").and_then(Value::as_str) == Some("8388608") {
            bad.push(format!("frame {frame}: {}", find(layers, "_ws.expert.message").and_then(Value::as_str).unwrap_or("malformed")));
        }
        let src_port = layers["tcp"]["tcp.srcport"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        // One object per PDU; an array when a segment carries several.
        let list: Vec<&Value> = match layers.get("nvme-tcp") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => continue,
        };
        for p in list {
            let f = |k: &str| find(p, k).and_then(num);
            let Some(pdu_type) = f("nvme-tcp.type") else { continue };
            pdus.push(DissectedPdu {
                frame,
                src_port,
                pdu_type: pdu_type as u8,
                flags: f("nvme-tcp.flags").unwrap_or(0) as u8,
                hlen: f("nvme-tcp.hlen").unwrap_or(0) as u8,
                pdo: f("nvme-tcp.pdo").unwrap_or(0) as u8,
                plen: f("nvme-tcp.plen").unwrap_or(0) as u32,
                cid: f("nvme-tcp.cmd.cid").map(|v| v as u16),
                data: f("nvme-tcp.data.offset").zip(f("nvme-tcp.data.length")).map(|(o, l)| (o as u32, l as u32)),
                r2t: f("nvme-tcp.r2t.offset").zip(f("nvme-tcp.r2t.length")).map(|(o, l)| (o as u32, l as u32)),
                maxh2cdata: f("nvme-tcp.icresp.maxdata").map(|v| v as u32),
                hdgst_status: f("nvme-tcp.hdgst.status"),
                ddgst_status: f("nvme-tcp.ddgst.status"),
            });
        }
    }
    Ok(Dissection { pdus, bad, discovery })
}

/// What a capture of an association with digests must show, judged by
/// tshark: returns a one-line summary or what is wrong.
///
/// * PDU types: ICReq, ICResp, CapsuleCmd, CapsuleResp, C2HData, R2T and
///   H2CData all present, each in its direction; no TermReq.
/// * HLEN per type; every header digest and data digest verified good.
/// * ICResp: MAXH2CDATA (the target model offers 128 KiB).
/// * C2HData: LAST_PDU set, DATAO 0, DATAL > 0; R2T: R2TO 0 and the
///   H2CData answering it has the R2T's CCCID and length.
/// * The Discovery Log Page lists `entry` (SUBNQN, TRADDR, TRSVCID) as
///   Wireshark's NVMe dissector reads the record.
pub fn check_session(d: &Dissection, target_port: u16, maxh2cdata: u32, entry: (&str, &str, &str)) -> Result<String, String> {
    let (pdus, bad) = (&d.pdus, &d.bad);
    if let Some(b) = bad.first() {
        return Err(format!("tshark flags {} frame(s) as malformed or erroneous, first: {b}", bad.len()));
    }
    if !d.discovery.iter().any(|(n, a, s)| (n.as_str(), a.as_str(), s.as_str()) == entry) {
        return Err(format!("no discovery log record {entry:?} as tshark reads them: {:?}", d.discovery));
    }
    let mut count: BTreeMap<u8, usize> = BTreeMap::new();
    for p in pdus {
        *count.entry(p.pdu_type).or_default() += 1;
        let from_target = p.src_port == target_port;
        let (hlen, by_target) = match p.pdu_type {
            0x00 => (128, false),
            0x01 => (128, true),
            0x04 => (72, false),
            0x05 => (24, true),
            0x06 => (24, false),
            0x07 | 0x09 => (24, true),
            t => return Err(format!("frame {}: PDU type {t:#04x} (a TermReq or unknown) in a clean session", p.frame)),
        };
        if p.hlen != hlen || by_target != from_target {
            return Err(format!("frame {}: {p:?}: HLEN {} (want {hlen}), sent by the {}", p.frame, p.hlen, if from_target { "target" } else { "host" }));
        }
        let is_ic = p.pdu_type <= 1;
        if !is_ic && (p.flags & 1 == 0 || p.hdgst_status != Some(DIGEST_GOOD)) {
            return Err(format!("frame {}: header digest missing or not good: {p:?}", p.frame));
        }
        let has_data = matches!(p.pdu_type, 0x06 | 0x07) || (p.pdu_type == 0x04 && p.plen > 72 + 4);
        if has_data && (p.flags & 2 == 0 || p.ddgst_status != Some(DIGEST_GOOD)) {
            return Err(format!("frame {}: data digest missing or not good: {p:?}", p.frame));
        }
        if p.pdu_type == 0x01 && p.maxh2cdata != Some(maxh2cdata) {
            return Err(format!("frame {}: ICResp MAXH2CDATA {:?} (want {maxh2cdata})", p.frame, p.maxh2cdata));
        }
        if p.pdu_type == 0x07 {
            match p.data {
                Some((0, len)) if len > 0 && p.flags & 4 != 0 => {}
                _ => return Err(format!("frame {}: C2HData not one whole LAST_PDU transfer: {p:?}", p.frame)),
            }
        }
        if p.pdu_type == 0x09 {
            let (Some(cid), Some((0, r2tl))) = (p.cid, p.r2t) else { return Err(format!("frame {}: R2T without CCCID or not at offset 0: {p:?}", p.frame)) };
            let answer = pdus.iter().find(|h| h.frame >= p.frame && h.pdu_type == 0x06 && h.cid == Some(cid));
            match answer {
                Some(h) if h.data == Some((0, r2tl)) && h.flags & 4 != 0 => {}
                other => return Err(format!("frame {}: R2T cid {cid} for {r2tl} B answered by {other:?}", p.frame)),
            }
        }
    }
    for (t, name) in [(0x00, "ICReq"), (0x01, "ICResp"), (0x04, "CapsuleCmd"), (0x05, "CapsuleResp"), (0x06, "H2CData"), (0x07, "C2HData"), (0x09, "R2T")] {
        if count.get(&t).copied().unwrap_or(0) == 0 {
            return Err(format!("no {name} PDU in the capture ({count:?})"));
        }
    }
    // The card's I/O queues disable SQ flow control and the target model
    // honours it: reads end with a C2HData flagged SUCCESS (FLAGS bit 3,
    // Wireshark's "PDU Data Success"; only with LAST_PDU, checked above).
    let success = pdus.iter().filter(|p| p.pdu_type == 0x07 && p.flags & 8 != 0).count();
    if success == 0 {
        return Err(format!("no C2HData with the SUCCESS flag in the capture ({count:?})"));
    }
    Ok(format!("{} PDUs by type {count:?} ({success} C2HData with SUCCESS), all digests good, discovery record {entry:?}", pdus.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(frame: u64, src_port: u16, pdu_type: u8, flags: u8, hlen: u8) -> DissectedPdu {
        DissectedPdu { frame, src_port, pdu_type, flags, hlen, hdgst_status: Some(DIGEST_GOOD), ddgst_status: Some(DIGEST_GOOD), ..Default::default() }
    }

    fn session() -> Vec<DissectedPdu> {
        vec![
            pdu(1, 40000, 0x00, 0, 128),
            DissectedPdu { maxh2cdata: Some(131_072), hdgst_status: None, ddgst_status: None, ..pdu(2, 4420, 0x01, 0, 128) },
            DissectedPdu { cid: Some(5), plen: 76, ..pdu(3, 40000, 0x04, 1, 72) },
            DissectedPdu { cid: Some(5), r2t: Some((0, 8192)), ..pdu(4, 4420, 0x09, 1, 24) },
            DissectedPdu { cid: Some(5), data: Some((0, 8192)), ..pdu(5, 40000, 0x06, 7, 24) },
            DissectedPdu { cid: Some(5), ..pdu(6, 4420, 0x05, 1, 24) },
            DissectedPdu { cid: Some(6), data: Some((0, 4096)), ..pdu(7, 4420, 0x07, 7, 24) },
            DissectedPdu { cid: Some(7), data: Some((0, 4096)), ..pdu(8, 4420, 0x07, 0x0f, 24) },
        ]
    }

    const ENTRY: (&str, &str, &str) = ("nqn.x", "10.0.0.10", "4420");

    fn check(pdus: &[DissectedPdu], bad: &[String]) -> Result<String, String> {
        let d = Dissection { pdus: pdus.to_vec(), bad: bad.to_vec(), discovery: vec![("nqn.x".into(), "10.0.0.10".into(), "4420".into())] };
        check_session(&d, 4420, 131_072, ENTRY)
    }

    #[test]
    fn a_clean_session_passes_and_each_defect_is_named() {
        assert!(check(&session(), &[]).is_ok());
        type Spoil = fn(&mut Vec<DissectedPdu>);
        let cases: [(Spoil, &str); 8] = [
            (|s| s[5].hdgst_status = Some(0), "header digest"),
            (|s| s[4].ddgst_status = None, "data digest"),
            (|s| s[1].maxh2cdata = Some(4096), "MAXH2CDATA"),
            (|s| s[4].data = Some((0, 4096)), "R2T cid 5"),
            (|s| s[6].flags = 3, "LAST_PDU"),
            (|s| s.retain(|p| p.pdu_type != 0x09 && p.pdu_type != 0x06), "no H2CData"),
            (|s| s[7].flags = 7, "SUCCESS"),
            (|s| s[7].flags = 0x0b, "LAST_PDU"),
        ];
        for (spoil, want) in cases {
            let mut s = session();
            spoil(&mut s);
            let e = check(&s, &[]).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        assert!(check(&session(), &["frame 9: malformed".into()]).is_err());
        // SUBNQN and TRADDR swapped, as the firmware once had them.
        let swapped = Dissection { pdus: session(), bad: vec![], discovery: vec![("10.0.0.10".into(), "nqn.x".into(), "4420".into())] };
        assert!(check_session(&swapped, 4420, 131_072, ENTRY).unwrap_err().contains("discovery log record"));
    }
}
