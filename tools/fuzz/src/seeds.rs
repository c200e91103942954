//! The seed corpus, built from real bytes: PDUs, SQEs and logs emitted by
//! the protocol crates, boot configuration blobs the simulator builds for
//! the shipped scenarios, the shipped TOML files, and a tiny hand-made
//! RV64 ELF. `dpu-fuzz seed` writes them to `corpus/<target>/`; each
//! input is laid out the way its target reads it (see the target docs).

use crate::targets::sim_target;
use dpu_hal::regs::bootcfg as b;
use dpu_nvme::Sqe;
use dpu_nvme_tcp::cqe::cqe_bytes;
use dpu_nvme_tcp::discovery::{adrfam, subtype, trtype, write_log_range, EntryRepr};
use dpu_nvme_tcp::fabrics::admin::{self, GetLogPage};
use dpu_nvme_tcp::fabrics::{io, ConnectCmd, ConnectData, PropertyGet, PropertySet, PropertySize};
use dpu_nvme_tcp::pdu::{C2hData, CapsuleResp, Digests, Fes, H2cData, IcReq, IcResp, Pdu, R2t, TermReq, TxConfig};
use dpu_nvme_tcp::sgl::Dptr;
use std::path::Path;

/// (target, file name, bytes) of every generated seed.
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut add = |t: &'static str, seeds: Vec<(String, Vec<u8>)>| v.extend(seeds.into_iter().map(|(n, b)| (t, n, b)));
    add("nvme_cmd", nvme_cmd());
    add("nvme_dptr", nvme_dptr());
    add("tcp_pdu", tcp_pdu());
    add("tcp_host", tcp_host());
    add("tcp_fabrics", tcp_fabrics());
    add("tcp_discovery", vec![("two-entries".into(), discovery_log())]);
    add("net_frames", net_frames());
    add("sim_wire", sim_wire());
    add("sim_target", sim_target());
    add("bootcfg", bootcfg());
    add("rpc", rpc());
    add("boot_flash", boot_flash());
    add("scenario", files("targets/scenarios"));
    add("chip", files("targets/chips"));
    add("board", files("targets/boards"));
    add("elf", vec![("tiny-rv64".into(), tiny_elf())]);
    v
}

/// Client byte streams for the management server: a request, two in a
/// row, a batch, escapes and nesting, half a request, not JSON.
fn rpc() -> Vec<(String, Vec<u8>)> {
    [
        ("request", &br#"{"jsonrpc":"2.0","id":1,"method":"bdev_get_bdevs","params":{"name":"fn1n1"}}"#[..]),
        ("two-requests", b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"m\",\"params\":{\"count\":3,\"flag\":true}}\n{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"token\":\"t\"}"),
        ("batch", br#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#),
        ("escapes", br#"{"jsonrpc":"2.0","id":1,"method":"m\u00e9\ud83d\ude00","params":[[[{"a":-1.5e-7}]]]}"#),
        ("truncated", br#"{"jsonrpc":"2.0","id":1,"#),
        ("not-json", b"GET / HTTP/1.1\r\n\r\n"),
    ]
    .into_iter()
    .map(|(n, b)| (s(n), b.to_vec()))
    .collect()
}

fn s(name: &str) -> String {
    name.to_string()
}

fn repo_root() -> std::path::PathBuf {
    crate::fuzz_dir().join("../..")
}

/// The shipped TOML files of a `targets/` folder.
fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    crate::read_dir_files(&repo_root().join(dir))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "toml"))
        .map(|(p, b)| (p.file_name().unwrap().to_string_lossy().to_string(), b))
        .collect()
}

fn sqe(opc: u8, cid: u16, nsid: u32, dws: &[(usize, u32)]) -> [u8; 64] {
    let mut s = Sqe::ZERO;
    s.0[0] = opc;
    s.0[2..4].copy_from_slice(&cid.to_le_bytes());
    s.set_dw(1, nsid);
    for &(i, v) in dws {
        s.set_dw(i, v);
    }
    s.0
}

fn nvme_cmd() -> Vec<(String, Vec<u8>)> {
    // Limits, two namespaces (nsid 1: 2048 x 512 B, nsid 2: 4 KiB blocks).
    let mut head = vec![15u8, 16, 2];
    for (nsid, blocks, shift) in [(1u8, 2048u64, 0u8), (2, 1 << 20, 3)] {
        head.push(nsid);
        head.extend_from_slice(&blocks.to_le_bytes());
        head.push(0); // no shift of the block count
        head.push(shift);
    }
    let op = |v: &mut Vec<u8>, kind: u8, s: [u8; 64]| {
        v.push(kind);
        v.extend_from_slice(&s);
    };
    let mut queues = head.clone();
    op(&mut queues, 6, sqe(0x09, 1, 0, &[(10, 7), (11, (3 << 16) | 3)])); // Number of Queues
    op(&mut queues, 1, sqe(0x05, 2, 0, &[(6, 0x10_0000), (10, (63 << 16) | 1), (11, (1 << 16) | 3)])); // Create CQ 1
    op(&mut queues, 2, sqe(0x01, 3, 0, &[(6, 0x20_0000), (10, (63 << 16) | 1), (11, (1 << 16) | 1)])); // Create SQ 1
    op(&mut queues, 10, sqe(0, 0, 5, &[(2, 4)]));
    op(&mut queues, 11, sqe(0, 0, 2, &[(2, 3)]));
    op(&mut queues, 4, sqe(0x04, 4, 0, &[(10, 1)])); // Delete CQ 1 (refused: SQ bound)
    op(&mut queues, 3, sqe(0x00, 5, 0, &[(10, 1)])); // Delete SQ 1
    op(&mut queues, 4, sqe(0x04, 6, 0, &[(10, 1)])); // Delete CQ 1
    let mut io_cmds = head.clone();
    op(&mut io_cmds, 0, sqe(0x02, 1, 1, &[(10, 8), (12, 7)])); // Read 8 blocks
    op(&mut io_cmds, 0, sqe(0x01, 2, 2, &[(10, 100), (12, 31)])); // Write 32 x 4 KiB
    op(&mut io_cmds, 0, sqe(0x08, 3, 1, &[(10, 0), (12, 0xffff)])); // Write Zeroes
    op(&mut io_cmds, 0, sqe(0x09, 4, 1, &[(10, 3), (11, 4)])); // DSM deallocate
    op(&mut io_cmds, 0, sqe(0x00, 5, 0xffff_ffff, &[])); // Flush all
    let mut admin = head;
    op(&mut admin, 7, sqe(0x02, 1, 0, &[(10, 0x007f_0002)])); // SMART log
    op(&mut admin, 7, sqe(0x02, 2, 0, &[(10, 0x00ff_0001), (12, 64)])); // error log at 64
    op(&mut admin, 8, sqe(0x06, 3, 0, &[(10, 1)])); // Identify Controller
    op(&mut admin, 8, sqe(0x06, 4, 1, &[(10, 0)])); // Identify Namespace 1
    op(&mut admin, 8, sqe(0x06, 5, 0, &[(10, 2)])); // Active list
    op(&mut admin, 5, sqe(0x0a, 6, 0, &[(10, 4), (11, 0x10_0000)])); // Get temperature threshold
    op(&mut admin, 6, sqe(0x09, 7, 0, &[(10, 8), (11, 0x0207)])); // Set coalescing
    op(&mut admin, 6, sqe(0x09, 8, 0, &[(10, 9), (11, 0x1_0003)])); // Vector config
    op(&mut admin, 9, sqe(0x01, 0x46, 0x001f_001f, &[(4, 0x10_0000), (6, 0x20_0000), (2, 0x0046_0000)])); // CC/AQA
    vec![(s("queues"), queues), (s("io"), io_cmds), (s("admin"), admin)]
}

fn nvme_dptr() -> Vec<(String, Vec<u8>)> {
    let seed = |mode: u8, len: u32, d: [u8; 16], mem: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&d);
        v.extend_from_slice(mem);
        v
    };
    let prp = |p1: u64, p2: u64| {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&p1.to_le_bytes());
        d[8..].copy_from_slice(&p2.to_le_bytes());
        d
    };
    let desc = |addr: u64, len: u32, kind: u8| {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[15] = kind << 4;
        d
    };
    // A PRP list page: entries 0x10000, 0x11000, ...; memory is 4 KiB, so
    // the list pointer 0x3000 reads it from offset 0.
    let list: Vec<u8> = (0..512u64).flat_map(|i| (0x10_000 + i * 0x1000).to_le_bytes()).collect();
    let mut sgl_mem = vec![0u8; 4096];
    sgl_mem[..16].copy_from_slice(&desc(0x5000, 1024, 0));
    sgl_mem[16..32].copy_from_slice(&desc(0x7000, 1024, 0));
    sgl_mem[32..48].copy_from_slice(&desc(0x40, 16, 3));
    sgl_mem[64..80].copy_from_slice(&desc(0x9000, 1024, 0));
    vec![
        (s("prp-one-page"), seed(0, 4096, prp(0x1000, 0), &[])),
        (s("prp-two-pages"), seed(0, 8192, prp(0x1200, 0x8000), &[])),
        (s("prp-list"), seed(0, 64 * 1024, prp(0x1000, 0x3000), &list)),
        (s("prp-list-chained"), seed(0, 128 * 1024, prp(0x800, 0x3ff0), &list)),
        (s("sgl-data-block"), seed(1, 4096, desc(0x1000, 4096, 0), &[])),
        (s("sgl-segments"), seed(1, 3072, desc(0, 48, 2), &sgl_mem)),
    ]
}

fn pdu(p: Pdu, data: &[u8], digests: Digests, pda: u8) -> Vec<u8> {
    let mut b = [0u8; 256];
    let n = p.emit(data.len() as u32, &TxConfig { digests, pda }, &mut b).expect("seed PDU emits");
    let mut v = b[..n].to_vec();
    v.extend_from_slice(data);
    if digests.data && !data.is_empty() {
        v.extend_from_slice(&dpu_nvme_tcp::host::HostQueue::<1>::digest_of(&[data]));
    }
    v
}

fn cqe(cid: u16, sc: u8) -> [u8; 16] {
    let status = if sc == 0 { dpu_nvme::Status::SUCCESS } else { dpu_nvme::Status::generic(sc) };
    cqe_bytes(&dpu_nvme::Cqe { dw0: 0, dw1: 0, sq_head: 1, sq_id: 1, cid, status })
}

fn tcp_pdu() -> Vec<(String, Vec<u8>)> {
    // Config byte: bit 0 role (0 host, 1 controller), bits 1-2 digests, bit 3 IC done.
    let mut v = Vec::new();
    let mut add = |name: &str, cfg: u8, pda: u8, bytes: Vec<u8>| {
        let mut b = vec![cfg, pda];
        b.extend(bytes);
        v.push((s(name), b));
    };
    let none = Digests::NONE;
    let both = Digests::BOTH;
    add("icreq", 1, 0, pdu(Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 }), &[], none, 0));
    add("icresp", 0, 0, pdu(Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxh2cdata: 131072 }), &[], none, 0));
    let read = io::read(3, 1, 8, 7, 4096);
    add("capsule-cmd", 9, 0, pdu(Pdu::CapsuleCmd(dpu_nvme_tcp::pdu::CapsuleCmd { sqe: read.0 }), &[], none, 0));
    let write = io::write(4, 1, 0, 0, Dptr::in_capsule(512));
    add("capsule-cmd-in-capsule-digests", 15, 0, pdu(Pdu::CapsuleCmd(dpu_nvme_tcp::pdu::CapsuleCmd { sqe: write.0 }), &[0x5a; 512], both, 0));
    add("capsule-resp", 8, 0, pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe(3, 0) }), &[], none, 0));
    add("capsule-resp-hdgst", 10, 0, pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe(3, 2) }), &[], Digests { header: true, data: false }, 0));
    add("c2h-data", 8, 0, pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 64, last: true, success: true }), &[1; 64], none, 0));
    add("c2h-data-digests-pda", 14, 7, pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 512, datal: 64, last: false, success: false }), &[2; 64], both, 7));
    add("h2c-data", 9, 0, pdu(Pdu::H2cData(H2cData { cccid: 4, ttag: 1, datao: 0, datal: 128, last: true }), &[3; 128], none, 0));
    add("r2t", 8, 0, pdu(Pdu::R2t(R2t { cccid: 4, ttag: 1, r2to: 0, r2tl: 8192 }), &[], none, 0));
    let mut term = [0u8; 160];
    let n = TermReq::new(Fes::InvalidHeaderField, 2).emit_with_data(false, &[0x42; 24], &mut term).unwrap();
    add("c2h-term-req", 0, 0, term[..n].to_vec());
    let n = TermReq::new(Fes::HeaderDigest, 0).emit_with_data(true, &[0x05; 24], &mut term).unwrap();
    add("h2c-term-req", 9, 0, term[..n].to_vec());
    v
}

/// tcp_host records: 0 = capsule (cid, write, len u16 (1 + len % 65536),
/// in-capsule), 1 = stream bytes (u16 length, bytes, piece byte).
fn tcp_host() -> Vec<(String, Vec<u8>)> {
    let none = Digests::NONE;
    let icresp = |dg: Digests| pdu(Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: dg.header, ddgst: dg.data, maxh2cdata: 65536 }), &[], none, 0);
    let capsule = |v: &mut Vec<u8>, cid: u8, write: bool, len: u16, in_capsule: bool| {
        v.extend_from_slice(&[0, cid, u8::from(write)]);
        v.extend_from_slice(&(len - 1).to_le_bytes());
        if write {
            v.push(u8::from(in_capsule));
        }
    };
    let stream = |v: &mut Vec<u8>, bytes: &[u8], piece: u16| {
        v.push(1);
        v.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        v.extend_from_slice(bytes);
        v.extend_from_slice(&piece.to_le_bytes());
    };
    let mut out = Vec::new();
    for (name, dg) in [("read", none), ("read-digests", Digests::BOTH)] {
        let mut v = vec![u8::from(dg.header) | u8::from(dg.data) << 1];
        stream(&mut v, &icresp(dg), 200);
        capsule(&mut v, 3, false, 1024, false);
        let mut st = pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 512, last: false, success: false }), &[7; 512], dg, 0);
        st.extend(pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 512, datal: 512, last: true, success: false }), &[8; 512], dg, 0));
        st.extend(pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe(3, 0) }), &[], dg, 0));
        stream(&mut v, &st, 100);
        out.push((s(name), v));
    }
    let mut v = vec![0];
    stream(&mut v, &icresp(none), 128);
    capsule(&mut v, 2, true, 8192, false);
    capsule(&mut v, 5, false, 512, false);
    let mut st = pdu(Pdu::R2t(R2t { cccid: 2, ttag: 1, r2to: 0, r2tl: 8192 }), &[], none, 0);
    st.extend(pdu(Pdu::C2hData(C2hData { cccid: 5, datao: 0, datal: 512, last: true, success: true }), &[9; 512], none, 0));
    st.extend(pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe(2, 0) }), &[], none, 0));
    stream(&mut v, &st, 4096);
    v.extend_from_slice(&[3, 2, 1, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 1]);
    out.push((s("write-r2t-and-success-flag"), v));
    let mut v = vec![0];
    stream(&mut v, &icresp(none), 128);
    let mut term = [0u8; 160];
    let n = TermReq::new(Fes::DataOutOfRange, 12).emit_with_data(false, &[0x07; 24], &mut term).unwrap();
    stream(&mut v, &term[..n], 5);
    out.push((s("c2h-term-req"), v));
    out
}

fn tcp_fabrics() -> Vec<(String, Vec<u8>)> {
    let mut data = [0u8; 1024];
    ConnectData { hostid: [1; 16], cntlid: 0xffff, subnqn: sim_target::NQN, hostnqn: sim_target::HOSTNQN }.emit(&mut data).unwrap();
    let seed = |sqe: Sqe, cqe: [u8; 16], data: &[u8]| {
        let mut v = sqe.0.to_vec();
        v.extend_from_slice(&cqe);
        v.extend_from_slice(data);
        v
    };
    let connect = ConnectCmd { recfmt: 0, qid: 0, sqsize: 31, cattr: 0, kato: 120_000 }.to_sqe(1);
    let invalid = cqe_bytes(&dpu_nvme::Cqe { dw0: 0x0001_0010, dw1: 0, sq_head: 0, sq_id: 0, cid: 1, status: dpu_nvme_tcp::fabrics::connect::status::INVALID_PARAMETERS });
    vec![
        (s("connect"), seed(connect, cqe(1, 0), &data)),
        (s("connect-invalid-parameter"), seed(connect, invalid, &data)),
        (s("property-get-cap"), seed(PropertyGet { size: PropertySize::Eight, offset: 0 }.to_sqe(2), cqe(2, 0), &[])),
        (s("property-set-cc"), seed(PropertySet { size: PropertySize::Four, offset: 0x14, value: 0x0046_0001 }.to_sqe(3), cqe(3, 0), &[])),
        (s("identify"), seed(admin::identify(4, 0, 1, 0), cqe(4, 0), &[])),
    ]
}

fn entry<'a>(traddr: &'a str, subnqn: &'a str) -> EntryRepr<'a> {
    EntryRepr {
        trtype: trtype::TCP,
        adrfam: adrfam::IPV4,
        subtype: subtype::NVM,
        treq: 0,
        portid: 1,
        cntlid: 0xffff,
        asqsz: 32,
        eflags: 0,
        trsvcid: "4420",
        traddr,
        subnqn,
        tsas: &[0],
    }
}

fn discovery_log() -> Vec<u8> {
    let e = [entry("10.0.0.10", "nqn.2026-11.io.dpusim:t0"), entry("10.0.1.10", "nqn.2026-11.io.dpusim:t1")];
    let mut v = vec![0u8; 3 * 1024];
    write_log_range(7, &e, 0, &mut v).unwrap();
    v
}

/// ARP requests and replies and an IPv4 frame, for a port 02:00:00:00:00:01 at 10.0.0.1/24.
fn net_frames() -> Vec<(String, Vec<u8>)> {
    let me = [2u8, 0, 0, 0, 0, 1];
    let peer = [2u8, 0x7a, 0, 0, 1, 1];
    let head = |v: &mut Vec<u8>| {
        v.extend_from_slice(&me);
        v.extend_from_slice(&[10, 0, 0, 1]);
        v.extend_from_slice(&[16, 64]); // prefix 8 + 16 = /24, a 64-byte reply buffer
    };
    let arp = |op: u16, target_mac: [u8; 6], target_ip: [u8; 4]| {
        let mut f = vec![0u8; 42];
        f[0..6].copy_from_slice(&if op == 1 { [0xff; 6] } else { me });
        f[6..12].copy_from_slice(&peer);
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op as u8]);
        f[22..28].copy_from_slice(&peer);
        f[28..32].copy_from_slice(&[10, 0, 0, 10]);
        f[32..38].copy_from_slice(&target_mac);
        f[38..42].copy_from_slice(&target_ip);
        f
    };
    let mut out = Vec::new();
    for (name, frame) in [("arp-request-for-us", arp(1, [0; 6], [10, 0, 0, 1])), ("arp-reply", arp(2, me, [10, 0, 0, 1])), ("arp-request-for-another", arp(1, [0; 6], [10, 0, 0, 7]))] {
        let mut v = Vec::new();
        head(&mut v);
        v.extend(frame);
        out.push((s(name), v));
    }
    let mut v = Vec::new();
    head(&mut v);
    v.extend_from_slice(&me);
    v.extend_from_slice(&peer);
    v.extend_from_slice(&0x0800u16.to_be_bytes());
    v.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 10, 10, 0, 0, 1]);
    out.push((s("ipv4"), v));
    out
}

/// Real bytes for the simulator's wire code: both directions of each
/// connection of the Linux nvmet-tcp capture (`sim/tests/fixtures/`),
/// from the ICReq/ICResp on, the first 8 KiB of each; plus the tcp_pdu
/// seeds, whose input layout is the same.
fn sim_wire() -> Vec<(String, Vec<u8>)> {
    const MAX: usize = 8 << 10;
    let path = repo_root().join("sim/tests/fixtures/linux-nvmet-tcp.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = |h: &str| (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex")).collect::<Vec<u8>>();
    // (name, receiver is the controller, stream)
    let mut streams: Vec<(String, bool, Vec<u8>)> = Vec::new();
    let mut conn = String::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("conn"), Some(order)) => conn = format!("linux-{}-{order}", w.next().unwrap_or("conn")),
            (Some(dir @ ("h2c" | "c2h")), Some(h)) => {
                let name = format!("{conn}-{dir}");
                if streams.last().is_none_or(|s| s.0 != name) {
                    streams.push((name, dir == "h2c", Vec::new()));
                }
                let s = &mut streams.last_mut().unwrap().2;
                if s.len() < MAX {
                    s.extend(hex(h));
                    s.truncate(MAX);
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<(String, Vec<u8>)> = streams.into_iter().map(|(n, to_ctrl, b)| (n, [vec![u8::from(to_ctrl), 0], b].concat())).collect();
    out.extend(tcp_pdu());
    out
}

fn sim_target() -> Vec<(String, Vec<u8>)> {
    let mut admin = sim_target::admin_setup();
    admin.extend(sim_target::capsule(admin::identify(2, 0, 1, 0).0, &[]));
    admin.extend(sim_target::capsule(PropertyGet { size: PropertySize::Four, offset: 0x1c }.to_sqe(3).0, &[]));
    let log = GetLogPage { nsid: 0, lid: 0x70, lsp: 0, rae: false, offset: 0, len: 1024 }.to_sqe(4).unwrap();
    admin.extend(sim_target::capsule(log.0, &[]));
    admin.extend(sim_target::capsule(admin::keep_alive(5).0, &[]));
    let mut io_q = sim_target::icreq();
    io_q.extend(sim_target::connect(1, 1, 0));
    io_q.extend(sim_target::capsule(io::read(1, 1, 0, 7, 4096).0, &[]));
    io_q.extend(sim_target::capsule(io::write(2, 1, 8, 0, Dptr::in_capsule(512)).0, &[0xab; 512]));
    io_q.extend(sim_target::capsule(io::write(3, 2, 0, 1, Dptr::Transport { len: 8192 }).0, &[]));
    // The target's first R2T has TTAG 1.
    io_q.extend(pdu(Pdu::H2cData(H2cData { cccid: 3, ttag: 1, datao: 0, datal: 8192, last: true }), &[0xcd; 8192], Digests::NONE, 0));
    io_q.extend(sim_target::capsule(io::flush(4, 1).0, &[]));
    io_q.extend(sim_target::capsule(io::dsm(5, 1, 0, 4, Dptr::in_capsule(16)).0, &[0; 16]));
    let with = |flags: u8, split: u8, s: &[u8]| {
        let mut v = vec![flags, split];
        v.extend_from_slice(s);
        v
    };
    vec![(s("admin-queue"), with(0, 3, &admin)), (s("io-queue"), with(1, 9, &io_q))]
}

fn bootcfg() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (p, _) in crate::read_dir_files(&repo_root().join("targets/scenarios")) {
        if let Ok(sc) = dpu_targets::Scenario::load(&p) {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            v.push((name, dpu_sim::host::scenario::bootcfg_blob(&sc)));
        }
    }
    v.push((s("ram-only"), dpu_sim::host::scenario::bootcfg_for(&[(0, 1, 1 << 20, 512), (3, 2, 1 << 24, 4096)])));
    let mut bad = v[0].1.clone();
    bad[b::HDR_VERSION] ^= 1;
    v.push((s("bad-version"), bad));
    v
}

/// Flash contents laid out as the `boot_flash` target reads them: a
/// signed bootloader for the default chip, a signed firmware image, a
/// journal naming slot B pending, two configuration copies (the shipped
/// scenarios' configurations); and the same with one copy torn.
fn boot_flash() -> Vec<(String, Vec<u8>)> {
    use crate::targets::boot_flash::{JOURNAL, LEN, SLOT, STORE};
    use dpu_imgtool::image::{pack, Elf, ElfSegment, Kind, Meta, Version};
    use dpu_spi_nor::{ram::RamFlash, Flash, Geometry};
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let chip = dpu_targets::Chip::load(dpu_targets::default_chip_path()).expect("default chip");
    let (base, _) = chip.bootloader_region();
    let code: Vec<u8> = (0..64u8).collect();
    let seg = |addr: u64| ElfSegment { addr, data: code.clone(), mem_size: 256, writable: false };
    let bl = Elf { entry: base + 0x1000, segments: vec![seg(base + 0x1000)], chip: chip.layout_fingerprint() };
    let fw = Elf { entry: 0x4000_0000, segments: vec![seg(0x4000_0000), seg(0x4001_0000)], chip: 7 };
    let v = Version { major: 1, minor: 2, revision: 3, build: 0 };
    let bl = pack(&bl, Meta { kind: Kind::Bootloader, version: v, security_counter: 0 }, &key).expect("packs");
    let fw = pack(&fw, Meta { kind: Kind::Firmware, version: v, security_counter: 2 }, &key).expect("packs");
    let mut f = RamFlash::new(Geometry { size: 1 << 20, page: 256, subsector: 4096, sector: 65536 });
    f.program(0, &bl).expect("fits");
    f.program(SLOT, &fw).expect("fits");
    let st = dpu_fwimage::state::BootState { seq: 0, confirmed: dpu_fwimage::Slot::A, pending: Some(dpu_fwimage::Slot::B), trying: None };
    JOURNAL.write(&mut f, st).expect("journal");
    let mut scratch = vec![0u8; dpu_config::store::SCRATCH];
    for name in ["adapter-verify", "ram-verify"] {
        let sc = dpu_targets::Scenario::load(repo_root().join(format!("targets/scenarios/{name}.toml"))).expect("scenario");
        let c = dpu_imgtool::config::from_scenario(&sc, &dpu_imgtool::devkey::DeviceKey::from_bytes([0x5e; 32])).expect("configuration");
        STORE.save(&mut f, &c, &mut scratch, &mut dpu_config::Config::default()).expect("saves");
    }
    let good = f.bytes[..LEN].to_vec();
    let mut torn = good.clone();
    torn[(STORE.offset + STORE.size / 2) as usize + dpu_config::store::HEADER + 3] ^= 0x10;
    vec![(s("signed-all"), good), (s("torn-config-copy"), torn)]
}

/// A minimal RV64 executable: one PT_LOAD segment with 8 bytes of code,
/// a symbol table with `_start`, and a `.dpu_chip` stamp section.
pub fn tiny_elf() -> Vec<u8> {
    let code: [u8; 8] = [0x13, 0x00, 0x00, 0x00, 0x6f, 0x00, 0x00, 0x00]; // nop; j .
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0.dpu_chip\0";
    let strtab = b"\0_start\0";
    let mut stamp = Vec::new();
    stamp.extend_from_slice(&0x1234u64.to_le_bytes());
    stamp.extend_from_slice(&0x5678u64.to_le_bytes());
    stamp.extend_from_slice(b"mppa80\0");
    let entry = 0x4000_0000u64;
    // Layout: ELF header (64), program header (56), code, strtabs, symtab, stamp, section headers.
    let code_off = 64 + 56;
    let shstr_off = code_off + code.len();
    let str_off = shstr_off + shstrtab.len();
    let sym_off = (str_off + strtab.len()).next_multiple_of(8);
    let stamp_off = sym_off + 48;
    let sh_off = (stamp_off + stamp.len()).next_multiple_of(8);
    let mut f = vec![0u8; sh_off + 6 * 64];
    let put = |f: &mut Vec<u8>, at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
    put(&mut f, 0, b"\x7fELF\x02\x01\x01");
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &243u16.to_le_bytes()); // EM_RISCV
    put(&mut f, 20, &1u32.to_le_bytes());
    put(&mut f, 24, &entry.to_le_bytes());
    put(&mut f, 32, &64u64.to_le_bytes()); // phoff
    put(&mut f, 40, &(sh_off as u64).to_le_bytes());
    put(&mut f, 48, &5u32.to_le_bytes()); // flags: RVC, double float ABI
    put(&mut f, 52, &64u16.to_le_bytes());
    put(&mut f, 54, &56u16.to_le_bytes());
    put(&mut f, 56, &1u16.to_le_bytes());
    put(&mut f, 58, &64u16.to_le_bytes());
    put(&mut f, 60, &6u16.to_le_bytes()); // shnum
    put(&mut f, 62, &4u16.to_le_bytes()); // shstrndx
    // PT_LOAD, R+X.
    let ph = 64;
    put(&mut f, ph, &1u32.to_le_bytes());
    put(&mut f, ph + 4, &5u32.to_le_bytes());
    put(&mut f, ph + 8, &(code_off as u64).to_le_bytes());
    put(&mut f, ph + 16, &entry.to_le_bytes());
    put(&mut f, ph + 24, &entry.to_le_bytes());
    put(&mut f, ph + 32, &(code.len() as u64).to_le_bytes());
    put(&mut f, ph + 40, &(code.len() as u64).to_le_bytes());
    put(&mut f, ph + 48, &4u64.to_le_bytes());
    put(&mut f, code_off, &code);
    put(&mut f, shstr_off, shstrtab);
    put(&mut f, str_off, strtab);
    // Symbol 1: _start, FUNC GLOBAL, section 1.
    let sym = sym_off + 24;
    put(&mut f, sym, &1u32.to_le_bytes());
    f[sym + 4] = 0x12;
    put(&mut f, sym + 6, &1u16.to_le_bytes());
    put(&mut f, sym + 8, &entry.to_le_bytes());
    put(&mut f, sym + 16, &8u64.to_le_bytes());
    put(&mut f, stamp_off, &stamp);
    // Section headers: null, .text, .symtab, .strtab, .shstrtab, .dpu_chip.
    let sh = |f: &mut Vec<u8>, i: usize, name: u32, ty: u32, flags: u64, addr: u64, off: usize, size: usize, link: u32, info: u32, align: u64, entsize: u64| {
        let at = sh_off + 64 * i;
        put(f, at, &name.to_le_bytes());
        put(f, at + 4, &ty.to_le_bytes());
        put(f, at + 8, &flags.to_le_bytes());
        put(f, at + 16, &addr.to_le_bytes());
        put(f, at + 24, &(off as u64).to_le_bytes());
        put(f, at + 32, &(size as u64).to_le_bytes());
        put(f, at + 40, &link.to_le_bytes());
        put(f, at + 44, &info.to_le_bytes());
        put(f, at + 48, &align.to_le_bytes());
        put(f, at + 56, &entsize.to_le_bytes());
    };
    sh(&mut f, 1, 1, 1, 6, entry, code_off, code.len(), 0, 0, 4, 0);
    sh(&mut f, 2, 7, 2, 0, 0, sym_off, 48, 3, 1, 8, 24);
    sh(&mut f, 3, 15, 3, 0, 0, str_off, strtab.len(), 0, 0, 1, 0);
    sh(&mut f, 4, 23, 3, 0, 0, shstr_off, shstrtab.len(), 0, 0, 1, 0);
    sh(&mut f, 5, 33, 1, 0, 0, stamp_off, stamp.len(), 0, 0, 1, 0);
    f
}

/// Writes every generated seed under `dir/<target>/` (existing files of
/// the same name are replaced; other files are kept).
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    let seeds = all();
    for (t, name, bytes) in &seeds {
        let d = dir.join(t);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)?;
    }
    Ok(seeds.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_elf_loads_with_its_symbol_and_stamp() {
        let img = dpu_sim::elf::Image::parse(Path::new("tiny.elf"), tiny_elf()).expect("the tiny ELF loads");
        assert_eq!(img.entry, 0x4000_0000);
        assert_eq!(img.segments.len(), 1);
        assert_eq!(img.segments[0].data.len(), 8);
        assert_eq!(img.symbols.address_of("_start"), Some(0x4000_0000));
        assert_eq!(img.chip_stamp, Some((0x1234, 0x5678, "mppa80".into())));
    }

    #[test]
    fn every_target_has_seeds() {
        let seeds = all();
        for t in crate::TARGETS {
            assert!(seeds.iter().any(|(n, _, _)| *n == t.name), "no seeds for {}", t.name);
        }
    }
}
