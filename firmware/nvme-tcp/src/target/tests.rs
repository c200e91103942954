extern crate std;

use super::*;
use crate::fabrics::{admin, command_sqe};
use crate::pdu::IcReq;

const SUB: &str = "nqn.2026-12.io.dpusim:ram0";
const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:a";

fn connect(qid: u16, sqsize: u16, cntlid: u16, subnqn: &str, hostnqn: &str) -> (Sqe, [u8; 1024]) {
    let sqe = ConnectCmd { recfmt: 0, qid, sqsize, cattr: 0, kato: 5000 }.to_sqe(7);
    let mut data = [0u8; 1024];
    ConnectData { hostid: [1; 16], cntlid, subnqn, hostnqn }.emit(&mut data).unwrap();
    (sqe, data)
}

fn check(sqe: &Sqe, data: &[u8]) -> Result<Connect<'static>, ConnectResponse> {
    let data: &'static [u8] = std::boxed::Box::leak(data.to_vec().into_boxed_slice());
    check_connect(sqe, data, MQES, |n| (n == SUB).then_some(0), |_, h| h == HOST)
}

#[test]
fn icresp_turns_on_what_both_sides_want() {
    let req = IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 };
    let r = answer_icreq(&req, true, false, 128 * 1024);
    assert_eq!((r.pfv, r.cpda, r.hdgst, r.ddgst, r.maxh2cdata), (0, 0, true, false, 128 * 1024));
    let r = answer_icreq(&IcReq { hdgst: false, ..req }, true, true, 4096);
    assert_eq!((r.hdgst, r.ddgst), (false, true));
}

#[test]
fn connect_admin_and_io_queues() {
    let (s, d) = connect(0, 31, 0xffff, SUB, HOST);
    assert_eq!(check(&s, &d), Ok(Connect::Admin { subsys: 0, sqsize: 31, kato_ms: 5000, hostnqn: HOST, hostid: [1; 16] }));
    let (s, d) = connect(3, 127, 5, SUB, HOST);
    assert_eq!(check(&s, &d), Ok(Connect::Io { subsys: 0, qid: 3, sqsize: 127, cntlid: 5, hostnqn: HOST, hostid: [1; 16] }));
}

#[test]
fn connect_refusals_carry_the_spec_status() {
    let (s, d) = connect(0, 31, 0xffff, "nqn.2026-12.io.dpusim:nope", HOST);
    let r = check(&s, &d).unwrap_err();
    assert_eq!(r, ConnectResponse::InvalidParameter { in_data: true, offset: 256 }, "unknown SUBNQN: IATTR data, IPO 256");
    assert_eq!((r.status().sct, r.status().sc, r.dw0()), (1, 0x82, 256 | 1 << 16));
    let (s, d) = connect(0, 31, 0xffff, SUB, "nqn.2014-08.org.nvmexpress:uuid:b");
    let r = check(&s, &d).unwrap_err();
    assert_eq!((r.status().sct, r.status().sc), (1, 0x84), "host not allowed: Connect Invalid Host");
    let (s, d) = connect(0, 0, 0xffff, SUB, HOST);
    assert_eq!(check(&s, &d), Err(ConnectResponse::InvalidParameter { in_data: false, offset: 44 }), "SQSIZE 0");
    let (s, d) = connect(1, MQES + 1, 1, SUB, HOST);
    assert_eq!(check(&s, &d), Err(ConnectResponse::InvalidParameter { in_data: false, offset: 44 }), "SQSIZE above MQES");
    let (s, d) = connect(0, 31, 3, SUB, HOST);
    assert_eq!(check(&s, &d), Err(ConnectResponse::InvalidParameter { in_data: true, offset: 16 }), "static CNTLID on a dynamic subsystem");
    let (s, d) = connect(2, 31, 0xffff, SUB, HOST);
    assert_eq!(check(&s, &d), Err(ConnectResponse::InvalidParameter { in_data: true, offset: 16 }), "I/O queue without a controller");
    let (mut s, d) = connect(0, 31, 0xffff, SUB, HOST);
    s.0[40] = 1;
    assert_eq!(check(&s, &d).unwrap_err().status().sc, 0x80, "record format 1: Incompatible Format");
    let (s, mut d) = connect(0, 31, 0xffff, SUB, HOST);
    d[256..512].fill(b'x'); // no NUL in SUBNQN
    assert_eq!(check(&s, &d), Err(ConnectResponse::InvalidParameter { in_data: true, offset: 256 }));
}

fn enabled() -> AdminState {
    let mut st = AdminState::new(5000);
    assert_eq!(st.props.set(&PropertySet { size: PropertySize::Four, offset: poff::CC, value: 1 | 6 << 16 | 4 << 20 }), Ok(false));
    st
}

#[test]
fn properties_follow_cc() {
    let mut p = Properties::default();
    let get = |p: &Properties, offset, size| p.get(&PropertyGet { size, offset }, MQES);
    assert_eq!(get(&p, poff::CAP, PropertySize::Eight).map(|c| (c & 0xffff, c >> 37 & 1, c >> 24 & 0xff)), Ok((127, 1, 15)));
    assert_eq!(get(&p, poff::VS, PropertySize::Four), Ok(0x0002_0000));
    assert_eq!(get(&p, poff::CAP, PropertySize::Four), Err(Status::INVALID_FIELD), "CAP is 8 bytes");
    assert_eq!(get(&p, 0x24, PropertySize::Four), Err(Status::INVALID_FIELD), "no AQA on a fabrics controller");
    assert_eq!(get(&p, poff::CSTS, PropertySize::Four), Ok(0));
    let cc = |value| PropertySet { size: PropertySize::Four, offset: poff::CC, value };
    assert_eq!(p.set(&cc(1 | 5 << 16 | 4 << 20)), Err(Status::INVALID_FIELD), "IOSQES must be 64 B");
    assert_eq!(p.set(&cc(1 | 6 << 16 | 4 << 20)), Ok(false));
    assert_eq!(get(&p, poff::CSTS, PropertySize::Four), Ok(1), "CC.EN -> CSTS.RDY");
    assert_eq!(p.set(&cc(1 | 6 << 16 | 4 << 20 | 1 << 14)), Ok(false));
    assert_eq!(get(&p, poff::CSTS, PropertySize::Four), Ok(1 | 2 << 2), "CC.SHN -> CSTS.SHST complete");
    assert_eq!(p.set(&cc(6 << 16 | 4 << 20)), Ok(true), "EN 1 -> 0 is a reset");
    assert_eq!(get(&p, poff::CSTS, PropertySize::Four), Ok(0));
    assert_eq!(p.set(&PropertySet { size: PropertySize::Eight, offset: poff::CAP, value: 0 }), Err(Status::INVALID_FIELD), "CAP is read-only");
}

fn id() -> Identity<'static> {
    Identity { subnqn: SUB, serial: "DPU0001", model: "DPU NVMe/TCP target", firmware: "1.0", cntlid: 9, ioccsz_bytes: 64 + 131072, namespaces: 2 }
}

fn ns(n: u32) -> Option<NamespaceInfo> {
    (n == 1).then_some(NamespaceInfo { nsid: 1, blocks: 2048, lba_shift: 9, nguid: [2; 16], eui64: [3; 8], deallocated_zeroes: true, shared: true })
}

fn run(st: &mut AdminState, sqe: &Sqe, out: &mut [u8; 4096]) -> AdminReply {
    admin_command(st, &id(), sqe, &ns, out)
}

#[test]
fn identify_controller_is_a_fabrics_io_controller() {
    let mut st = enabled();
    let mut out = [0u8; 4096];
    let r = run(&mut st, &admin::identify(1, 0, admin::cns::CONTROLLER, 0), &mut out);
    assert_eq!(r, AdminReply::Complete { status: Status::SUCCESS, dw0: 0, dw1: 0, data_len: 4096 });
    assert_eq!(u16::from_le_bytes([out[78], out[79]]), 9, "CNTLID");
    assert_eq!(out[111], 1, "CNTRLTYPE I/O controller");
    assert_eq!(u32::from_le_bytes(out[1792..1796].try_into().unwrap()), (64 + 131072) / 16, "IOCCSZ");
    assert_eq!(u32::from_le_bytes(out[1796..1800].try_into().unwrap()), 1, "IORCSZ");
    assert_eq!(out[77], 5, "MDTS 128 KiB");
    assert_eq!(u32::from_le_bytes(out[536..540].try_into().unwrap()) & 1, 1, "SGLS supported");
    assert_eq!(u32::from_le_bytes(out[516..520].try_into().unwrap()), 2, "NN");
    assert!(out[768..].starts_with(SUB.as_bytes()) && out[768 + SUB.len()] == 0, "SUBNQN");
}

#[test]
fn identify_namespaces() {
    let mut st = enabled();
    let mut out = [0u8; 4096];
    assert!(matches!(run(&mut st, &admin::identify(1, 1, admin::cns::NAMESPACE, 0), &mut out), AdminReply::Complete { status: Status::SUCCESS, data_len: 4096, .. }));
    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), 2048);
    assert_eq!(out[130], 9, "LBADS");
    // nsid 2 exists in NN but is not active: a zero page.
    out.fill(0xff);
    assert!(matches!(run(&mut st, &admin::identify(1, 2, admin::cns::NAMESPACE, 0), &mut out), AdminReply::Complete { status: Status::SUCCESS, .. }));
    assert!(out.iter().all(|&b| b == 0));
    assert_eq!(run(&mut st, &admin::identify(1, 9, admin::cns::NAMESPACE, 0), &mut out), AdminReply::Complete { status: Status::INVALID_NAMESPACE, dw0: 0, dw1: 0, data_len: 0 });
    run(&mut st, &admin::identify(1, 0, admin::cns::ACTIVE_NAMESPACES, 0), &mut out);
    assert_eq!(&out[..8], &[1, 0, 0, 0, 0, 0, 0, 0], "one active namespace");
    run(&mut st, &admin::identify(1, 1, admin::cns::NS_ID_DESCRIPTORS, 0), &mut out);
    assert_eq!((out[0], out[1], &out[4..12]), (1, 8, &[3u8; 8][..]), "EUI64 descriptor");
}

#[test]
fn admin_commands_of_a_dynamic_controller() {
    let mut st = AdminState::new(5000);
    let mut out = [0u8; 4096];
    let idc = admin::identify(1, 0, admin::cns::CONTROLLER, 0);
    assert_eq!(run(&mut st, &idc, &mut out), AdminReply::Complete { status: Status::COMMAND_SEQUENCE_ERROR, dw0: 0, dw1: 0, data_len: 0 }, "not enabled yet");
    let mut st = enabled();
    // Set Features Number of Queues: 0's based, capped at 64.
    let mut s = command_sqe(opc::SET_FEATURES, 2, 0, Dptr::None);
    s.set_dw(10, u32::from(dpu_nvme::features::FID_NUMBER_OF_QUEUES));
    s.set_dw(11, 200 | 200 << 16);
    assert_eq!(run(&mut st, &s, &mut out), AdminReply::Complete { status: Status::SUCCESS, dw0: 63 | 63 << 16, dw1: 0, data_len: 0 });
    // Keep Alive Timer.
    let mut s = command_sqe(opc::SET_FEATURES, 3, 0, Dptr::None);
    s.set_dw(10, u32::from(FID_KEEP_ALIVE_TIMER));
    s.set_dw(11, 15_000);
    run(&mut st, &s, &mut out);
    assert_eq!(st.kato_ms(), 15_000);
    assert_eq!(run(&mut st, &admin::keep_alive(4), &mut out), AdminReply::Complete { status: Status::SUCCESS, dw0: 0, dw1: 0, data_len: 0 });
    // AERs are held, up to the limit.
    let aer = command_sqe(opc::ASYNC_EVENT_REQUEST, 5, 0, Dptr::None);
    for _ in 0..MAX_AERS {
        assert_eq!(run(&mut st, &aer, &mut out), AdminReply::Held);
    }
    assert!(matches!(run(&mut st, &aer, &mut out), AdminReply::Complete { status: AER_LIMIT_EXCEEDED, .. }));
    // Abort: of an I/O command, not aborted; of a held AER, aborted
    // (it completes with Command Abort Requested next).
    let mut abort = command_sqe(opc::ABORT, 6, 0, Dptr::None);
    abort.set_dw(10, 1 | 5 << 16);
    assert!(matches!(run(&mut st, &abort, &mut out), AdminReply::Complete { status: Status::SUCCESS, dw0: 1, .. }));
    abort.set_dw(10, 5 << 16);
    assert!(matches!(run(&mut st, &abort, &mut out), AdminReply::Complete { status: Status::SUCCESS, dw0: 0, .. }));
    assert_eq!(st.ctrl.next_completion().map(|c| (c.cid, c.status)), Some((5, Status::ABORT_REQUESTED)));
    // Unknown opcode.
    assert!(matches!(run(&mut st, &command_sqe(0x81, 7, 0, Dptr::None), &mut out), AdminReply::Complete { status: Status::INVALID_OPCODE, .. }));
    // Get Log Page SMART, 512 bytes.
    let glp = admin::GetLogPage { nsid: 0xffff_ffff, lid: 2, lsp: 0, rae: false, offset: 0, len: 512 }.to_sqe(8).unwrap();
    assert!(matches!(run(&mut st, &glp, &mut out), AdminReply::Complete { status: Status::SUCCESS, data_len: 512, .. }));
    assert_eq!(out[3], 100, "available spare");
    // A log read longer than the page: at most the 4 KiB output page.
    let glp = admin::GetLogPage { nsid: 0xffff_ffff, lid: 2, lsp: 0, rae: false, offset: 0, len: 16384 }.to_sqe(9).unwrap();
    assert!(matches!(run(&mut st, &glp, &mut out), AdminReply::Complete { status: Status::SUCCESS, data_len: 4096, .. }));
}

#[test]
fn io_sgl_must_match_the_transfer() {
    let inline = 131072;
    let mut w = command_sqe(0x01, 1, 1, Dptr::in_capsule(4096));
    assert_eq!(check_io_sgl(&w, 4096, true, inline), Ok(Dptr::in_capsule(4096)));
    assert_eq!(check_io_sgl(&w, 8192, true, inline), Err(Status::DATA_SGL_LENGTH_INVALID));
    assert_eq!(check_io_sgl(&w, 4096, true, 1024), Err(Status::DATA_SGL_LENGTH_INVALID), "above the in-capsule size");
    Dptr::Transport { len: 8192 }.apply(&mut w);
    assert_eq!(check_io_sgl(&w, 8192, true, inline), Ok(Dptr::Transport { len: 8192 }));
    let r = command_sqe(0x02, 1, 1, Dptr::in_capsule(4096));
    assert_eq!(check_io_sgl(&r, 4096, false, inline), Err(Status::DATA_SGL_LENGTH_INVALID), "read data never in the capsule");
    let mut prp = r;
    prp.0[1] = 0;
    assert_eq!(check_io_sgl(&prp, 4096, false, inline), Err(Status::SGL_TYPE_INVALID));
}

#[test]
fn h2c_data_checked_against_its_r2t() {
    use crate::pdu::{Fes, H2cData};
    let w = R2tWindow { cccid: 9, ttag: 3, r2to: 0, r2tl: 65536, got: 0 };
    let h = |ttag, cccid, datao, datal, last| H2cData { cccid, ttag, datao, datal, last };
    // In order, 32 KiB each: the second one is the last.
    assert_eq!(R2tWindow::check(Some(&w), &h(3, 9, 0, 32768, false), 32768), Ok(false));
    let w2 = R2tWindow { got: 32768, ..w };
    assert_eq!(R2tWindow::check(Some(&w2), &h(3, 9, 32768, 32768, true), 32768), Ok(true));
    // An unknown transfer tag (no R2T outstanding under it, or another one's).
    assert_eq!(R2tWindow::check(None, &h(7, 9, 0, 4096, false), 32768), Err((Fes::InvalidHeaderField, 10)));
    assert_eq!(R2tWindow::check(Some(&w), &h(4, 9, 0, 4096, false), 32768), Err((Fes::InvalidHeaderField, 10)));
    // The right tag for another command.
    assert_eq!(R2tWindow::check(Some(&w), &h(3, 8, 0, 4096, false), 32768), Err((Fes::InvalidHeaderField, 8)));
    // Above MAXH2CDATA.
    assert_eq!(R2tWindow::check(Some(&w), &h(3, 9, 0, 65536, true), 32768), Err((Fes::DataLimitExceeded, 0)));
    // A gap, a repeat, past the end (no u32 overflow).
    assert_eq!(R2tWindow::check(Some(&w), &h(3, 9, 4096, 4096, false), 32768), Err((Fes::DataOutOfRange, 0)));
    assert_eq!(R2tWindow::check(Some(&w2), &h(3, 9, 0, 4096, false), 32768), Err((Fes::DataOutOfRange, 0)));
    assert_eq!(R2tWindow::check(Some(&w2), &h(3, 9, 32768, 32772, true), 65536), Err((Fes::DataOutOfRange, 0)));
    let far = R2tWindow { r2to: u32::MAX - 4095, r2tl: 4096, got: 0, ..w };
    assert_eq!(R2tWindow::check(Some(&far), &h(3, 9, u32::MAX - 4095, 8192, true), 32768), Err((Fes::DataOutOfRange, 0)));
    // LAST_PDU early, or missing at the end.
    assert_eq!(R2tWindow::check(Some(&w), &h(3, 9, 0, 4096, true), 32768), Err((Fes::InvalidHeaderField, 1)));
    assert_eq!(R2tWindow::check(Some(&w2), &h(3, 9, 32768, 32768, false), 32768), Err((Fes::InvalidHeaderField, 1)));
}

#[test]
fn writes_take_8k_in_capsule_and_the_rest_by_r2t() {
    use crate::sgl::Dptr;
    let mut sqe = Sqe([0; 64]);
    sqe.0[0] = 0x01;
    sqe.0[1] = 0x40; // PSDT 01b: SGL
    // SGL1: in-capsule data block (type 0h, subtype 1h offset) of `len`.
    let in_capsule = |sqe: &mut Sqe, len: u32| {
        sqe.0[24..40].fill(0);
        sqe.0[32..36].copy_from_slice(&len.to_le_bytes());
        sqe.0[39] = 0x01;
    };
    // SGL1: transport data block (type 5h, subtype Ah) of `len`.
    let transport = |sqe: &mut Sqe, len: u32| {
        sqe.0[24..40].fill(0);
        sqe.0[32..36].copy_from_slice(&len.to_le_bytes());
        sqe.0[39] = 0x5a;
    };
    in_capsule(&mut sqe, 8192);
    assert_eq!(check_io_sgl(&sqe, 8192, true, 8192), Ok(Dptr::InCapsule { offset: 0, len: 8192 }));
    in_capsule(&mut sqe, 12288);
    assert_eq!(check_io_sgl(&sqe, 12288, true, 8192), Err(Status::DATA_SGL_LENGTH_INVALID), "above IOCCSZ");
    transport(&mut sqe, 131072);
    assert_eq!(check_io_sgl(&sqe, 131072, true, 8192), Ok(Dptr::Transport { len: 131072 }));
    assert_eq!(check_io_sgl(&sqe, 65536, true, 8192), Err(Status::DATA_SGL_LENGTH_INVALID), "SGL length is not the command's");
    // Dataset Management as Linux sends it: one range (16 bytes) in a
    // 4 KiB in-capsule buffer; shorter than the ranges, or above 256 of
    // them, is refused.
    in_capsule(&mut sqe, 4096);
    assert_eq!(check_dsm_sgl(&sqe, 16, 8192), Ok(Dptr::InCapsule { offset: 0, len: 4096 }));
    assert_eq!(check_io_sgl(&sqe, 16, true, 8192), Err(Status::DATA_SGL_LENGTH_INVALID), "other commands: exact length");
    in_capsule(&mut sqe, 8);
    assert_eq!(check_dsm_sgl(&sqe, 16, 8192), Err(Status::DATA_SGL_LENGTH_INVALID));
    in_capsule(&mut sqe, 8192);
    assert_eq!(check_dsm_sgl(&sqe, 16, 8192), Err(Status::DATA_SGL_LENGTH_INVALID));
    transport(&mut sqe, 4096);
    assert_eq!(check_dsm_sgl(&sqe, 32, 8192), Ok(Dptr::Transport { len: 4096 }));
}

/// A namespace change completes a held AER of a controller whose host
/// enabled namespace attribute notices, and the Changed Namespace List
/// log names it (then reads empty: RAE clear).
#[test]
fn a_namespace_change_completes_a_held_aer() {
    let mut st = enabled();
    let mut out = [0u8; 4096];
    let mut aec = command_sqe(opc::SET_FEATURES, 1, 0, Dptr::None);
    aec.set_dw(10, u32::from(dpu_nvme::features::FID_ASYNC_EVENT_CONFIG));
    aec.set_dw(11, 1 << 8);
    assert_eq!(run(&mut st, &aec, &mut out), AdminReply::Complete { status: Status::SUCCESS, dw0: 0, dw1: 0, data_len: 0 });
    assert_eq!(run(&mut st, &command_sqe(opc::ASYNC_EVENT_REQUEST, 2, 0, Dptr::None), &mut out), AdminReply::Held);
    st.ctrl.namespace_changed(1);
    let c = st.ctrl.next_completion().unwrap();
    assert_eq!((c.cid, c.dw0, c.status), (2, 0x0004_0002, Status::SUCCESS));
    let glp = admin::GetLogPage { nsid: 0xffff_ffff, lid: 4, lsp: 0, rae: false, offset: 0, len: 4096 }.to_sqe(3).unwrap();
    assert!(matches!(run(&mut st, &glp, &mut out), AdminReply::Complete { status: Status::SUCCESS, data_len: 4096, .. }));
    assert_eq!(&out[..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
    run(&mut st, &glp, &mut out);
    assert!(out.iter().all(|&b| b == 0), "read with RAE clear: empty now");
}
