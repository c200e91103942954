//! One NVMe/TCP connection of a target model, controller side (NVMe/TCP
//! Transport 1.0 §3): ICReq/ICResp, command capsules (Fabrics Connect and
//! Property Get/Set, admin commands, Read/Write/Flush/Write Zeroes/DSM),
//! C2HData + CapsuleResp for reads (or, on a queue whose host disabled SQ
//! flow control, a last C2HData with SUCCESS and no CapsuleResp, as Linux
//! nvmet-tcp does), in-capsule data or R2T/H2CData for writes,
//! header/data digests. A malformed PDU from the host ends the
//! connection with a C2HTermReq carrying the right Fatal Error Status.

use super::ctrl::Subsystem;
use super::TargetStats;
use crate::net::nvmf_wire::commands::{admin_opc, nvm_opc, BlockRange, Dsm, DsmRange};
use crate::net::nvmf_wire::fabrics::{Connect, ConnectData, ConnectResponse, FcType, PropertyCommand};
use crate::net::nvmf_wire::pdu::{self, C2hData, Digests, IcResp, Pdu, PduError, R2t, Role, RxConfig, TxConfig};
use crate::net::nvmf_wire::{Command, Completion, Sgl, Status};
use smoltcp::socket::tcp;
use std::collections::BTreeMap;

/// Largest H2CData the host may send in one PDU (we ask for all of MDTS).
const MAXH2CDATA: u32 = 128 * 1024;

/// Connect CATTR bit 2 (NVMe over Fabrics 1.1 §3.3): the host disables SQ
/// flow control on the queue it creates.
const CATTR_DISABLE_SQ_FLOW_CONTROL: u8 = 1 << 2;

/// A data digest mismatch fails the command with Transient Transport Error.
const TRANSIENT_TRANSPORT_ERROR: Status = Status::TRANSIENT_TRANSPORT_ERROR;

/// What a command that carries data to the target does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Write,
    /// Compare (NVM Command Set §3.2.1): Compare Failure on a mismatch.
    Compare,
    /// Dataset Management (§3.2.3): `data` is the range list.
    Dsm { deallocate: bool },
}

enum Work {
    Read { nsid: u32, off: u64, len: u32 },
    /// `data` fills up to `len` from in-capsule data or H2CData PDUs.
    Write { kind: Out, nsid: u32, off: u64, len: u32, data: Vec<u8>, ttag: u16, bad_digest: bool },
    WriteZeroes { nsid: u32, off: u64, len: u64 },
    Done(Status),
}

struct Cmd {
    /// When the media finishes (None: still waiting for write data).
    due: Option<u64>,
    work: Work,
}

pub struct Session {
    ic_done: bool,
    rx: Vec<u8>,
    rx_off: usize,
    out: Vec<u8>,
    out_off: usize,
    digests: Digests,
    /// The host's HPDA: alignment of the data we send it.
    hpda: u8,
    qid: Option<u16>,
    cntlid: Option<u16>,
    sq_head: u16,
    sqsize: u16,
    /// The host's Connect disabled SQ flow control (CATTR bit 2): CQEs
    /// carry no SQ head (0), and a successful command whose data goes
    /// to the host ends with that data's last C2HData, flagged SUCCESS,
    /// and no CapsuleResp (NVMe/TCP 1.0 §3.6.2.8; Linux nvmet-tcp
    /// `nvmet_setup_c2h_data_pdu` when `sqhd_disabled`).
    sq_flow_disabled: bool,
    cmds: BTreeMap<u16, Cmd>,
    next_ttag: u16,
    /// A fatal error was sent: close once it is out.
    closing: bool,
    /// Black-hole fault: PDUs are still parsed (the stream stays in
    /// step) but nothing is acted on or answered.
    blackhole: bool,
    /// Reads the host sent on this connection.
    reads: u64,
    /// Garbage fault: the next C2HData goes out with a wrong data digest.
    corrupt_next_data: bool,
    /// Asynchronous Event Requests held (admin queue), oldest first.
    aers: Vec<u16>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Session::inject_garbage`] variants for connections that carry reads.
pub const GARBAGE_BEYOND_READ: u8 = 5;
pub const GARBAGE_BAD_DIGEST: u8 = 6;

impl Session {
    pub fn new() -> Session {
        Session {
            ic_done: false,
            rx: Vec::new(),
            rx_off: 0,
            out: Vec::new(),
            out_off: 0,
            digests: Digests::NONE,
            hpda: 0,
            qid: None,
            cntlid: None,
            sq_head: 0,
            sqsize: 0,
            sq_flow_disabled: false,
            cmds: BTreeMap::new(),
            next_ttag: 1,
            closing: false,
            blackhole: false,
            reads: 0,
            corrupt_next_data: false,
            aers: Vec::new(),
        }
    }

    /// Starts or ends the black-hole fault: while on, every PDU from the
    /// host is parsed and dropped, nothing new is sent, and the commands
    /// it held are lost (they will never be answered).
    pub fn set_blackhole(&mut self, on: bool) {
        if on {
            self.cmds.clear();
        }
        self.blackhole = on;
    }

    pub fn cntlid(&self) -> Option<u16> {
        self.cntlid
    }

    pub fn qid(&self) -> Option<u16> {
        self.qid
    }

    /// Fault injection: queues a malformed PDU for the host on an I/O
    /// queue; `variant` picks which: an unknown PDU type, a response for a
    /// command that was never sent, C2HData for an unknown command, a
    /// header with the wrong HLEN, a PLEN shorter than the header,
    /// C2HData beyond the end of an outstanding read (else an unknown PDU
    /// type), or, with data digests, a wrong data digest on the next
    /// C2HData this connection sends (else an unknown PDU type). Returns
    /// false if the connection is not an established I/O queue.
    pub fn inject_garbage(&mut self, variant: u8) -> bool {
        if !self.ic_done || self.closing || self.qid.unwrap_or(0) == 0 {
            return false;
        }
        let read = self.cmds.iter().find_map(|(&cid, c)| matches!(c.work, Work::Read { .. }).then_some((cid, c)));
        // With header digests the HDGST flag must be set, or that is
        // what the host reports first.
        let hd = u8::from(self.digests.header);
        match variant % 7 {
            0 => self.out.extend_from_slice(&[0x42, 0, 24, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            1 => self.respond(0xbeef, Status::SUCCESS, 0, 0),
            2 => {
                self.send_data(0xbeef, &[0u8; 512], false);
            }
            // CapsuleResp with HLEN 20 instead of 24.
            3 => self.out.extend_from_slice(&[0x05, 0, 20, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // CapsuleResp whose PLEN (16) is shorter than its header.
            4 => self.out.extend_from_slice(&[0x05, hd, 24, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            GARBAGE_BAD_DIGEST if self.digests.data => self.corrupt_next_data = true,
            _ => match read {
                Some((cid, c)) => {
                    let Work::Read { len, .. } = c.work else { return false };
                    let p = Pdu::C2hData(C2hData { cccid: cid, datao: len, datal: 512, last: true, success: false });
                    self.emit(&p, &[0u8; 512]);
                }
                None => self.out.extend_from_slice(&[0x42, 0, 24, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            },
        }
        true
    }

    /// Whether the host sent reads on this connection.
    pub fn carries_reads(&self) -> bool {
        self.reads > 0
    }

    /// Earliest media completion; none once the connection is closing
    /// (it answers nothing more: its commands' completions never run).
    pub fn next_due(&self) -> Option<u64> {
        if self.closing {
            return None;
        }
        self.cmds.values().filter_map(|c| c.due).min()
    }

    fn rx_cfg(&self) -> RxConfig {
        if self.ic_done {
            RxConfig::established(Role::Controller, self.digests, 0)
        } else {
            RxConfig::awaiting_ic(Role::Controller)
        }
    }

    fn tx_cfg(&self) -> TxConfig {
        TxConfig { digests: self.digests, pda: self.hpda }
    }

    /// Moves bytes in and out of the socket, handles complete PDUs and due
    /// media completions. True if anything happened.
    pub fn pump(&mut self, s: &mut tcp::Socket, now: u64, sub: &mut Subsystem, stats: &mut TargetStats, log: &mut Vec<(u64, String)>) -> bool {
        let mut progress = self.flush(s);
        if self.closing {
            if self.out_off == self.out.len() && s.is_open() {
                s.close();
            }
            return progress;
        }
        while s.can_recv() {
            let n = s
                .recv(|b| {
                    self.rx.extend_from_slice(b);
                    (b.len(), b.len())
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            progress = true;
        }
        loop {
            match self.next_pdu(now, sub, stats) {
                Ok(true) => progress = true,
                Ok(false) => break,
                Err(e) => {
                    stats.protocol_errors += 1;
                    log.push((now, format!("target {}: closing connection (qid {:?}): {e:?}", sub.nqn, self.qid)));
                    self.fatal(e);
                    progress = true;
                    break;
                }
            }
        }
        if self.rx_off > 0 && (self.rx_off == self.rx.len() || self.rx_off > 1 << 16) {
            self.rx.drain(..self.rx_off);
            self.rx_off = 0;
        }
        progress |= self.run_due(now, sub, stats);
        progress |= self.notice(sub);
        progress |= self.flush(s);
        // The host closed its side (FIN) and everything it sent was read:
        // the queue ends, as Linux's nvmet_tcp releases a queue whose
        // socket reads EOF; the socket closes once the output is out (an
        // admin queue's controller goes with it, `Subsystem::queue_closed`).
        if s.state() == tcp::State::CloseWait && !s.can_recv() {
            self.closing = true;
            if self.out_off == self.out.len() {
                s.close();
            }
            progress = true;
        }
        progress
    }

    /// A held AER completed with a due Namespace Attribute Changed notice
    /// (type 2h, information 00h, log page 04h).
    fn notice(&mut self, sub: &mut Subsystem) -> bool {
        let (Some(0), Some(cntlid)) = (self.qid, self.cntlid) else { return false };
        if self.aers.is_empty() || !sub.take_notice(cntlid) {
            return false;
        }
        let cid = self.aers.remove(0);
        self.respond(cid, Status::SUCCESS, 0x0004_0002, 0);
        true
    }

    /// Sends a C2HTermReq for `e` (FES, FEI and the offending header as
    /// error data) and stops reading.
    fn fatal(&mut self, e: PduError) {
        let end = (self.rx_off + pdu::TERM_MAX_DATA).min(self.rx.len());
        let (t, err_data) = pdu::term_req_for(&e, &self.rx[self.rx_off..end]);
        let _ = pdu::emit(&Pdu::C2hTermReq(t), &err_data, &self.tx_cfg(), &mut self.out);
        self.closing = true;
    }

    fn flush(&mut self, s: &mut tcp::Socket) -> bool {
        if self.out_off == self.out.len() {
            return false;
        }
        let n = s.send_slice(&self.out[self.out_off..]).unwrap_or(0);
        self.out_off += n;
        if self.out_off == self.out.len() {
            self.out.clear();
            self.out_off = 0;
        }
        n > 0
    }

    /// Parses and handles one complete PDU; Ok(false) if more bytes are needed.
    fn next_pdu(&mut self, now: u64, sub: &mut Subsystem, stats: &mut TargetStats) -> Result<bool, PduError> {
        let cfg = self.rx_cfg();
        let Some(r) = pdu::parse(&self.rx[self.rx_off..], &cfg)? else { return Ok(false) };
        // A data digest error fails the command with a transient transport
        // error, the connection stays (NVMe/TCP 1.0 §3.6.2.7 "Data Digest").
        let digest_ok = r.data_digest_ok != Some(false);
        let (p, data, len) = (r.pdu, r.data.to_vec(), r.len);
        if self.blackhole {
            stats.swallowed += 1;
            self.rx_off += len;
            return Ok(true);
        }
        // The PDU is consumed once handled: on an error `rx_off` still
        // points at it, for the TermReq's error data.
        match p {
            Pdu::IcReq(req) => {
                self.digests = Digests { header: req.hdgst, data: req.ddgst };
                stats.hdgst_connections += u64::from(req.hdgst);
                stats.ddgst_connections += u64::from(req.ddgst);
                self.hpda = req.hpda;
                self.ic_done = true;
                let resp = Pdu::IcResp(IcResp { pfv: pdu::PFV_1_0, cpda: 0, hdgst: req.hdgst, ddgst: req.ddgst, maxh2cdata: MAXH2CDATA });
                self.emit(&resp, &[]);
            }
            Pdu::CapsuleCmd(c) => {
                stats.commands += 1;
                // SQHD wraps at SQSIZE + 1 entries (up to 65536 on an admin queue).
                self.sq_head = if self.sqsize > 0 { ((u32::from(self.sq_head) + 1) % (u32::from(self.sqsize) + 1)) as u16 } else { self.sq_head.wrapping_add(1) };
                if !digest_ok {
                    stats.digest_errors += 1;
                    self.respond(c.cid(), TRANSIENT_TRANSPORT_ERROR, 0, 0);
                } else {
                    self.command(c, &data, now, sub, stats);
                }
            }
            Pdu::H2cData(h) => {
                let unknown = PduError::OutOfRange { offset: h.datao, len: h.datal };
                let Some((&cid, cmd)) = self.cmds.iter_mut().find(|(_, c)| matches!(c.work, Work::Write { ttag, .. } if ttag == h.ttag)) else {
                    return Err(unknown);
                };
                if cid != h.cccid {
                    return Err(unknown);
                }
                let Work::Write { len, data: buf, bad_digest, .. } = &mut cmd.work else { return Err(unknown) };
                h.check(MAXH2CDATA, buf.len() as u32, *len - buf.len() as u32)?;
                // Data comes in order, without gaps (as Linux nvmet demands).
                if h.datao as usize != buf.len() {
                    return Err(unknown);
                }
                buf.extend_from_slice(&data);
                if !digest_ok {
                    stats.digest_errors += 1;
                    *bad_digest = true;
                }
                if buf.len() as u32 == *len {
                    cmd.due = Some(now + sub.latency());
                }
            }
            Pdu::H2cTermReq(_) => {
                stats.term_reqs_received += 1;
                self.closing = true;
            }
            // The receive configuration only lets host-to-controller PDUs through.
            other => return Err(PduError::WrongDirection(other.pdu_type())),
        }
        self.rx_off += len;
        Ok(true)
    }

    fn emit(&mut self, p: &Pdu, data: &[u8]) {
        let _ = pdu::emit(p, data, &self.tx_cfg(), &mut self.out);
    }

    fn respond(&mut self, cid: u16, status: Status, dw0: u32, dw1: u32) {
        // SQ flow control disabled: SQHD is not reported (Linux nvmet
        // leaves it 0).
        let sqhd = if self.sq_flow_disabled { 0 } else { self.sq_head };
        let cqe = Completion { dw0, dw1, sqhd, sqid: self.qid.unwrap_or(0), cid, status };
        self.emit(&Pdu::CapsuleResp(cqe), &[]);
    }

    /// Sends `data` of command `cid` in one C2HData. `may_succeed`: the
    /// command completed successfully; on a queue with SQ flow control
    /// disabled the PDU then carries SUCCESS (with LAST_PDU) and ends the
    /// command: returns `true` when it did, so no CapsuleResp may follow.
    fn send_data(&mut self, cid: u16, data: &[u8], may_succeed: bool) -> bool {
        if data.is_empty() {
            return false;
        }
        let success = may_succeed && self.sq_flow_disabled;
        let c = Pdu::C2hData(C2hData { cccid: cid, datao: 0, datal: data.len() as u32, last: true, success });
        self.emit(&c, data);
        if std::mem::take(&mut self.corrupt_next_data) {
            // DDGST is the PDU's last four bytes (header digest intact).
            let end = self.out.len();
            self.out[end - 1] ^= 0xff;
        }
        success
    }

    fn command(&mut self, sqe: Command, data: &[u8], now: u64, sub: &mut Subsystem, stats: &mut TargetStats) {
        let cid = sqe.cid();
        if self.cmds.contains_key(&cid) {
            return self.respond(cid, Status::CID_CONFLICT, 0, 0);
        }
        if let Some(fctype) = FcType::of(&sqe) {
            return self.fabrics(fctype, sqe, data, now, sub);
        }
        let (Some(qid), Some(cntlid)) = (self.qid, self.cntlid) else {
            return self.respond(cid, Status::COMMAND_SEQUENCE_ERROR, 0, 0);
        };
        if !sub.ctrls.contains_key(&cntlid) {
            return self.respond(cid, Status::COMMAND_SEQUENCE_ERROR, 0, 0);
        }
        if qid == 0 {
            let want = match sqe.sgl() {
                Some(Sgl::Transport { len }) => len as usize,
                _ => 0,
            };
            if sqe.opcode() == admin_opc::ASYNC_EVENT_REQUEST {
                // Held until an event (AERL 3: four at most).
                if self.aers.len() >= 4 {
                    return self.respond(cid, Status::AER_LIMIT_EXCEEDED, 0, 0);
                }
                self.aers.push(cid);
                return;
            }
            match sub.admin(cntlid, &sqe, now) {
                Some(r) => {
                    // (SUCCESS data only for a command without a result
                    // in DW0: the flag carries no CQE.)
                    if r.status.is_success() && self.send_data(cid, &r.data[..want.min(r.data.len())], r.dw0 == 0) {
                        return;
                    }
                    self.respond(cid, r.status, r.dw0, 0);
                }
                None => self.respond(cid, Status::COMMAND_SEQUENCE_ERROR, 0, 0),
            }
            return;
        }
        // I/O command (NVM Command Set 1.0).
        let nsid = sqe.nsid();
        let range = BlockRange::parse(&sqe);
        let (slba, nlb) = (range.slba, range.blocks());
        let Some(ns) = sub.namespace(nsid) else {
            return self.respond(cid, Status::INVALID_NAMESPACE, 0, 0);
        };
        let (shift, in_range) = (ns.block_shift, ns.in_range(slba, nlb));
        let due = Some(now + sub.latency());
        let work = match sqe.opcode() {
            nvm_opc::FLUSH => Work::Done(Status::SUCCESS),
            nvm_opc::READ | nvm_opc::WRITE | nvm_opc::COMPARE if !in_range => Work::Done(Status::LBA_OUT_OF_RANGE),
            nvm_opc::READ => {
                let len = (nlb << shift) as u32;
                match sqe.sgl() {
                    Some(Sgl::Transport { len: l }) if l == len => {}
                    _ => return self.respond(cid, Status::DATA_SGL_LENGTH_INVALID, 0, 0),
                }
                stats.reads += 1;
                self.reads += 1;
                stats.bytes_read += u64::from(len);
                Work::Read { nsid, off: slba << shift, len }
            }
            // Data to the target: in the capsule or by R2T/H2CData.
            op @ (nvm_opc::WRITE | nvm_opc::COMPARE | nvm_opc::DATASET_MANAGEMENT) => {
                let (kind, len) = match op {
                    nvm_opc::WRITE => (Out::Write, (nlb << shift) as u32),
                    nvm_opc::COMPARE => (Out::Compare, (nlb << shift) as u32),
                    _ => {
                        let d = Dsm::parse(&sqe);
                        (Out::Dsm { deallocate: d.deallocate }, d.list_len())
                    }
                };
                if kind == Out::Write {
                    stats.writes += 1;
                    stats.bytes_written += u64::from(len);
                }
                let off = slba << shift;
                match sqe.sgl() {
                    Some(Sgl::InCapsule { offset: 0, len: l }) if l == len && data.len() == len as usize => {
                        Work::Write { kind, nsid, off, len, data: data.to_vec(), ttag: 0, bad_digest: false }
                    }
                    Some(Sgl::Transport { len: l }) if l == len && len > 0 && data.is_empty() => {
                        let ttag = self.next_ttag;
                        self.next_ttag = self.next_ttag.wrapping_add(1).max(1);
                        self.emit(&Pdu::R2t(R2t { cccid: cid, ttag, r2to: 0, r2tl: len }), &[]);
                        let work = Work::Write { kind, nsid, off, len, data: Vec::with_capacity(len as usize), ttag, bad_digest: false };
                        self.cmds.insert(cid, Cmd { due: None, work });
                        return;
                    }
                    _ => return self.respond(cid, Status::DATA_SGL_LENGTH_INVALID, 0, 0),
                }
            }
            nvm_opc::WRITE_ZEROES if !in_range => Work::Done(Status::LBA_OUT_OF_RANGE),
            nvm_opc::WRITE_ZEROES => Work::WriteZeroes { nsid, off: slba << shift, len: nlb << shift },
            _ => Work::Done(Status::INVALID_OPCODE),
        };
        self.cmds.insert(cid, Cmd { due, work });
    }

    /// Fabrics commands (NVMe over Fabrics 1.1 §6): Connect and Property
    /// Get/Set; any other type is not supported.
    fn fabrics(&mut self, fctype: FcType, sqe: Command, data: &[u8], now: u64, sub: &mut Subsystem) {
        let cid = sqe.cid();
        match fctype {
            FcType::Connect => {
                if self.qid.is_some() {
                    return self.respond(cid, Status::COMMAND_SEQUENCE_ERROR, 0, 0);
                }
                let (Some(cmd), Ok(cd)) = (Connect::parse(&sqe), ConnectData::parse(data)) else {
                    return self.respond(cid, Status::INVALID_FIELD, 0, 0);
                };
                // Like Linux nvmet: SQSIZE 0 is refused, and an I/O queue
                // may not exceed CAP.MQES (the admin queue may); the error
                // points at SQSIZE (SQE byte 44).
                if cmd.sqsize == 0 || (cmd.qid != 0 && u32::from(cmd.sqsize) >= super::ctrl::QUEUE_ENTRIES) {
                    let ipo = ConnectResponse::InvalidParameter { in_data: false, offset: 44 };
                    return self.respond(cid, Status::CONNECT_INVALID_PARAMETERS, ipo.dw0(), 0);
                }
                // A target without the feature refuses to disable SQ flow
                // control, naming CATTR (SQE byte 46).
                if cmd.cattr & CATTR_DISABLE_SQ_FLOW_CONTROL != 0 && !sub.sq_flow_disable() {
                    let ipo = ConnectResponse::InvalidParameter { in_data: false, offset: 46 };
                    return self.respond(cid, Status::CONNECT_INVALID_PARAMETERS, ipo.dw0(), 0);
                }
                let result = if cmd.qid == 0 {
                    sub.connect_admin(&cd.subnqn, &cd.hostnqn, cmd.kato, now)
                } else {
                    sub.connect_io(cd.cntlid, cmd.qid, &cd.subnqn, &cd.hostnqn).map(|()| cd.cntlid)
                };
                match result {
                    Ok(cntlid) => {
                        self.qid = Some(cmd.qid);
                        self.cntlid = Some(cntlid);
                        self.sqsize = cmd.sqsize;
                        let dw0 = ConnectResponse::Accepted { cntlid, authreq: 0 }.dw0();
                        if cmd.cattr & CATTR_DISABLE_SQ_FLOW_CONTROL != 0 {
                            // Like Linux nvmet (`nvmet_install_queue`):
                            // the Connect response's SQHD is FFFFh.
                            self.sq_flow_disabled = true;
                            let cqe = Completion { dw0, dw1: 0, sqhd: 0xffff, sqid: cmd.qid, cid, status: Status::SUCCESS };
                            return self.emit(&Pdu::CapsuleResp(cqe), &[]);
                        }
                        self.respond(cid, Status::SUCCESS, dw0, 0);
                    }
                    Err(st) => self.respond(cid, st, 0, 0),
                }
            }
            FcType::PropertyGet | FcType::PropertySet => {
                let (Some(cntlid), Some(p)) = (self.cntlid, PropertyCommand::parse(&sqe)) else {
                    return self.respond(cid, Status::COMMAND_SEQUENCE_ERROR, 0, 0);
                };
                sub.keep_alive(cntlid, now);
                match p {
                    PropertyCommand::Get { eight_bytes, offset } => match sub.property_get(cntlid, offset) {
                        Some(v) => {
                            let (lo, hi) = PropertyCommand::get_response(eight_bytes, v);
                            self.respond(cid, Status::SUCCESS, lo, hi)
                        }
                        None => self.respond(cid, Status::INVALID_FIELD, 0, 0),
                    },
                    PropertyCommand::Set { offset, value, .. } => {
                        let st = sub.property_set(cntlid, offset, value).err().unwrap_or(Status::SUCCESS);
                        self.respond(cid, st, 0, 0)
                    }
                }
            }
            _ => self.respond(cid, Status::INVALID_OPCODE, 0, 0),
        }
    }

    /// Finishes commands whose media time has come.
    fn run_due(&mut self, now: u64, sub: &mut Subsystem, stats: &mut TargetStats) -> bool {
        let due: Vec<u16> = self.cmds.iter().filter(|(_, c)| c.due.is_some_and(|t| t <= now)).map(|(&k, _)| k).collect();
        let _ = stats;
        for cid in &due {
            let Some(cmd) = self.cmds.remove(cid) else { continue };
            match cmd.work {
                Work::Read { nsid, off, len } => {
                    let mut buf = vec![0u8; len as usize];
                    if let Some(ns) = sub.namespace(nsid) {
                        ns.read(off, &mut buf);
                    }
                    if !self.send_data(*cid, &buf, true) {
                        self.respond(*cid, Status::SUCCESS, 0, 0);
                    }
                }
                Work::Write { bad_digest: true, .. } => self.respond(*cid, TRANSIENT_TRANSPORT_ERROR, 0, 0),
                Work::Write { kind, nsid, off, data, .. } => {
                    let st = match (kind, sub.namespace(nsid)) {
                        (_, None) => Status::INVALID_NAMESPACE,
                        (Out::Write, Some(ns)) => {
                            ns.write(off, &data);
                            Status::SUCCESS
                        }
                        (Out::Compare, Some(ns)) => {
                            let mut have = vec![0u8; data.len()];
                            ns.read(off, &mut have);
                            if have == data { Status::SUCCESS } else { Status::COMPARE_FAILURE }
                        }
                        (Out::Dsm { deallocate }, Some(ns)) => dsm(ns, &data, deallocate),
                    };
                    self.respond(*cid, st, 0, 0);
                }
                Work::WriteZeroes { nsid, off, len } => {
                    if let Some(ns) = sub.namespace(nsid) {
                        ns.zero(off, len);
                    }
                    self.respond(*cid, Status::SUCCESS, 0, 0);
                }
                Work::Done(st) => self.respond(*cid, st, 0, 0),
            }
        }
        !due.is_empty()
    }
}

/// Dataset Management over a range list (16-byte entries: context
/// attributes, length in blocks, starting LBA; NVM Command Set §3.2.3):
/// every range is checked first; with the deallocate attribute the ranges
/// then read as zeroes (this target's DLFEAT).
fn dsm(ns: &mut super::store::Namespace, list: &[u8], deallocate: bool) -> Status {
    let ranges: Vec<(u64, u64)> = DsmRange::parse_list(list).iter().map(|r| (r.slba, u64::from(r.blocks))).collect();
    if ranges.iter().any(|&(slba, nlb)| nlb > 0 && !ns.in_range(slba, nlb)) {
        return Status::LBA_OUT_OF_RANGE;
    }
    if deallocate {
        let shift = ns.block_shift;
        for (slba, nlb) in ranges {
            ns.zero(slba << shift, nlb << shift);
        }
    }
    Status::SUCCESS
}
