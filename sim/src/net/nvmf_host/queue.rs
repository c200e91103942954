//! One NVMe/TCP queue of the initiator model, host side, without the
//! socket: the bytes to send and the bytes received go through `out`
//! and [`Queue::receive`] (NVMe/TCP Transport 1.0 §3.3 "Transport
//! Binding Protocol" and §3.6 "PDU Structure").
//!
//! * Connection setup: ICReq (PFV 0, HPDA 0, the digests asked for,
//!   MAXR2T) and the ICResp check (§3.6.2.2, §3.6.2.3): the controller must
//!   grant exactly the digests asked for (as Linux `nvme_tcp_init_connection`
//!   requires), H2C data is aligned to its CPDA and cut at its MAXH2CDATA.
//! * Commands: a CapsuleCmd, with in-capsule data for small writes
//!   (§3.3.2 "In-Capsule Data"); C2HData for reads, with or without the
//!   SUCCESS flag (§3.6.2.8); R2T answered with H2CData PDUs of at most
//!   MAXH2CDATA bytes, LAST_PDU on the last one of each R2T (§3.6.2.9,
//!   §3.6.2.10); the CapsuleResp (§3.6.2.6) ends the command.
//! * A PDU the host rejects (bad header, digest, unknown CID, data out of
//!   range) makes it send an H2CTermReq (§3.6.2.4) and close; a
//!   C2HTermReq from the controller ends the connection. Nothing the
//!   controller sends makes it panic.

use crate::net::nvmf_wire::pdu::{self, C2hData, Digests, H2cData, IcReq, Pdu, PduError, R2t, Role, RxConfig, TxConfig};
use crate::net::nvmf_wire::{Command, Completion, Status};
use std::collections::BTreeMap;

/// How a command moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDir {
    None,
    /// Controller to host (C2HData).
    Read,
    /// Host to controller, in the command capsule.
    WriteInCapsule,
    /// Host to controller, on R2T (H2CData).
    WriteR2t,
}

/// A command that ended: its completion and, for a read, the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub cid: u16,
    pub completion: Completion,
    pub data: Vec<u8>,
    /// A C2HData PDU of this command failed its data digest (the command
    /// is failed whatever its completion says).
    pub digest_error: bool,
}

/// What the queue saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// ICResp accepted: the queue can carry commands.
    Established { maxh2cdata: u32, cpda: u8 },
    Completed(Done),
}

/// Why a queue is dead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    #[error("controller sent a malformed PDU: {0} (H2CTermReq FES {fes:#x} sent)", fes = .0.fes().code())]
    Malformed(PduError),
    #[error("controller broke the protocol: {1} (H2CTermReq FES {fes:#x} sent)", fes = .0.code())]
    Protocol(pdu::Fes, String),
    #[error("controller terminated the connection: C2HTermReq FES {fes:#x} FEI {fei:#x}")]
    Terminated { fes: u16, fei: u32 },
}

/// Counters a queue keeps (added into the initiator's stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub r2ts: u64,
    pub h2c_data: u64,
    pub c2h_data: u64,
    pub c2h_success: u64,
    pub digest_errors: u64,
}

struct Outstanding {
    dir: DataDir,
    /// Bytes to send (writes) or received so far (reads).
    data: Vec<u8>,
    /// Total bytes of the transfer.
    len: u32,
    received: u32,
    digest_error: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitIcResp,
    Ready,
    Dead,
}

pub struct Queue {
    pub qid: u16,
    phase: Phase,
    want: Digests,
    rx_cfg: RxConfig,
    tx_cfg: TxConfig,
    maxh2cdata: u32,
    rx: Vec<u8>,
    /// Bytes to send, not yet taken by the socket.
    pub out: Vec<u8>,
    outstanding: BTreeMap<u16, Outstanding>,
    next_cid: u16,
    pub counts: Counts,
    /// Fault injection: the next in-capsule write goes out with a wrong
    /// data digest.
    pub corrupt_next_ddgst: bool,
    /// The queue's Connect disabled SQ flow control: a C2HData may carry
    /// SUCCESS (a protocol error otherwise, NVMe/TCP 1.0 §3.6.2.8).
    sq_flow_disabled: bool,
}

impl Queue {
    /// A queue whose ICReq (asking for `digests`, MAXR2T `maxr2t`, 0's
    /// based) is ready in `out`.
    pub fn new(qid: u16, digests: Digests, maxr2t: u32) -> Queue {
        let mut q = Queue {
            qid,
            phase: Phase::AwaitIcResp,
            want: digests,
            rx_cfg: RxConfig::awaiting_ic(Role::Host),
            tx_cfg: TxConfig::default(),
            maxh2cdata: pdu::MIN_MAXH2CDATA,
            rx: Vec::new(),
            out: Vec::new(),
            outstanding: BTreeMap::new(),
            next_cid: 0,
            counts: Counts::default(),
            corrupt_next_ddgst: false,
            sq_flow_disabled: false,
        };
        let ic = IcReq { pfv: pdu::PFV_1_0, hpda: 0, hdgst: digests.header, ddgst: digests.data, maxr2t };
        let _ = pdu::emit(&Pdu::IcReq(ic), &[], &TxConfig::default(), &mut q.out);
        q
    }

    /// The same queue, whose Connect asks (`on`) to disable SQ flow control.
    pub fn with_sq_flow_disabled(mut self, on: bool) -> Queue {
        self.sq_flow_disabled = on;
        self
    }

    /// Fault injection: sends a CapsuleCmd whose header claims a wrong
    /// HLEN (16 instead of 72), which the controller must reject with a
    /// C2HTermReq (FES Invalid Header Field) and close.
    pub fn send_malformed(&mut self) {
        let mut p = Vec::new();
        let _ = pdu::emit(&Pdu::CapsuleCmd(crate::net::nvmf_wire::commands::no_data(crate::net::nvmf_wire::commands::nvm_opc::FLUSH, 0xfff0, 1)), &[], &self.tx_cfg, &mut p);
        if p.len() > 2 {
            p[2] = 16;
        }
        self.out.extend_from_slice(&p);
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    pub fn maxh2cdata(&self) -> u32 {
        self.maxh2cdata
    }

    /// A CID no outstanding command uses.
    fn free_cid(&mut self) -> u16 {
        while self.outstanding.contains_key(&self.next_cid) {
            self.next_cid = self.next_cid.wrapping_add(1);
        }
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        cid
    }

    /// Sends `cmd` (its CID replaced by a free one, returned) moving
    /// `data` as `dir` says: for writes `data` is what to send, for reads
    /// its length is what to receive.
    pub fn submit(&mut self, mut cmd: Command, dir: DataDir, data: Vec<u8>) -> u16 {
        let cid = self.free_cid();
        cmd.set_cid(cid);
        let capsule: &[u8] = if dir == DataDir::WriteInCapsule { &data } else { &[] };
        let _ = pdu::emit(&Pdu::CapsuleCmd(cmd), capsule, &self.tx_cfg, &mut self.out);
        if self.corrupt_next_ddgst && !capsule.is_empty() && self.tx_cfg.digests.data {
            // The DDGST ends the PDU.
            self.corrupt_next_ddgst = false;
            if let Some(b) = self.out.last_mut() {
                *b ^= 0xff;
            }
        }
        let len = data.len() as u32;
        let data = if dir == DataDir::Read { vec![0u8; data.len()] } else { data };
        self.outstanding.insert(cid, Outstanding { dir, data, len, received: 0, digest_error: false });
        cid
    }

    /// Takes in received bytes and handles every whole PDU. A fatal error
    /// leaves an H2CTermReq (when the host found the fault) in `out` and
    /// the queue dead; what was outstanding is lost (see
    /// [`Queue::take_outstanding`]).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Event>, Fatal> {
        if self.phase == Phase::Dead {
            return Ok(Vec::new());
        }
        self.rx.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut off = 0;
        let result = loop {
            let parsed = pdu::parse(&self.rx[off..], &self.rx_cfg);
            let (p, data, len, ddgst_ok) = match parsed {
                Ok(Some(r)) => (r.pdu, r.data.to_vec(), r.len, r.data_digest_ok),
                Ok(None) => break Ok(()),
                Err(e) => break Err((Fatal::Malformed(e), Some(e))),
            };
            match self.handle(p, data, ddgst_ok, &mut events) {
                Ok(()) => off += len,
                Err(f) => break Err((f, None)),
            }
        };
        match result {
            Ok(()) => {
                self.rx.drain(..off);
                Ok(events)
            }
            Err((fatal, malformed)) => {
                if !matches!(fatal, Fatal::Terminated { .. }) {
                    let e = malformed.unwrap_or(PduError::OutOfRange { offset: 0, len: 0 });
                    let end = (off + pdu::TERM_MAX_DATA).min(self.rx.len());
                    let (t, err_data) = pdu::term_req_for(&e, &self.rx[off..end]);
                    let t = match &fatal {
                        Fatal::Protocol(fes, _) => pdu::TermReq { fes: fes.code(), fei: 0 },
                        _ => t,
                    };
                    let _ = pdu::emit(&Pdu::H2cTermReq(t), &err_data, &self.tx_cfg, &mut self.out);
                }
                self.phase = Phase::Dead;
                self.rx.clear();
                Err(fatal)
            }
        }
    }

    /// The commands still outstanding (a dead connection's), by CID.
    pub fn take_outstanding(&mut self) -> Vec<u16> {
        std::mem::take(&mut self.outstanding).into_keys().collect()
    }

    fn handle(&mut self, p: Pdu, data: Vec<u8>, ddgst_ok: Option<bool>, events: &mut Vec<Event>) -> Result<(), Fatal> {
        match p {
            Pdu::IcResp(r) => {
                if r.hdgst != self.want.header || r.ddgst != self.want.data {
                    return Err(Fatal::Protocol(pdu::Fes::UnsupportedParameter, format!(
                        "ICResp grants digests header {} data {}, asked for header {} data {}",
                        r.hdgst, r.ddgst, self.want.header, self.want.data
                    )));
                }
                self.maxh2cdata = r.maxh2cdata;
                self.rx_cfg = RxConfig::established(Role::Host, self.want, 0);
                self.tx_cfg = TxConfig { digests: self.want, pda: r.cpda };
                self.phase = Phase::Ready;
                events.push(Event::Established { maxh2cdata: r.maxh2cdata, cpda: r.cpda });
                Ok(())
            }
            Pdu::C2hTermReq(t) => Err(Fatal::Terminated { fes: t.fes, fei: t.fei }),
            Pdu::CapsuleResp(c) => self.on_response(c, events),
            Pdu::C2hData(d) => self.on_c2h_data(d, &data, ddgst_ok, events),
            Pdu::R2t(r) => self.on_r2t(r),
            // The parser refuses host-to-controller types on a host.
            other => Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("{:?} sent to a host", other.pdu_type()))),
        }
    }

    fn on_response(&mut self, c: Completion, events: &mut Vec<Event>) -> Result<(), Fatal> {
        let Some(o) = self.outstanding.get(&c.cid) else {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("CapsuleResp for CID {} with no command outstanding", c.cid)));
        };
        if o.dir == DataDir::Read && c.status.is_success() && o.received != o.len {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("successful CapsuleResp for CID {} after {} of {} read bytes", c.cid, o.received, o.len)));
        }
        let o = self.outstanding.remove(&c.cid).unwrap_or_else(|| unreachable!());
        events.push(Event::Completed(Done { cid: c.cid, completion: c, data: o.data, digest_error: o.digest_error }));
        Ok(())
    }

    fn on_c2h_data(&mut self, d: C2hData, data: &[u8], ddgst_ok: Option<bool>, events: &mut Vec<Event>) -> Result<(), Fatal> {
        let Some(o) = self.outstanding.get_mut(&d.cccid) else {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("C2HData for CID {} with no command outstanding", d.cccid)));
        };
        if o.dir != DataDir::Read {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("C2HData for CID {}, which reads nothing", d.cccid)));
        }
        if d.check(o.len).is_err() || d.datao != o.received {
            return Err(Fatal::Protocol(pdu::Fes::DataTransferOutOfRange, format!("C2HData for CID {} at {}+{} (expected offset {} of {})", d.cccid, d.datao, d.datal, o.received, o.len)));
        }
        self.counts.c2h_data += 1;
        let at = d.datao as usize;
        o.data[at..at + data.len()].copy_from_slice(data);
        o.received += d.datal;
        if ddgst_ok == Some(false) {
            o.digest_error = true;
            self.counts.digest_errors += 1;
        }
        if d.last && o.received != o.len {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("C2HData LAST_PDU for CID {} after {} of {} bytes", d.cccid, o.received, o.len)));
        }
        if d.success && !self.sq_flow_disabled {
            return Err(Fatal::Protocol(pdu::Fes::InvalidPduHeaderField, format!("C2HData SUCCESS for CID {} on a queue with SQ flow control", d.cccid)));
        }
        if d.success {
            // §3.6.2.8: no CapsuleResp follows; the command succeeded.
            self.counts.c2h_success += 1;
            let o = self.outstanding.remove(&d.cccid).unwrap_or_else(|| unreachable!());
            let completion = Completion { dw0: 0, dw1: 0, sqhd: 0, sqid: self.qid, cid: d.cccid, status: Status::SUCCESS };
            events.push(Event::Completed(Done { cid: d.cccid, completion, data: o.data, digest_error: o.digest_error }));
        }
        Ok(())
    }

    fn on_r2t(&mut self, r: R2t) -> Result<(), Fatal> {
        let Some(o) = self.outstanding.get(&r.cccid) else {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("R2T for CID {} with no command outstanding", r.cccid)));
        };
        if o.dir != DataDir::WriteR2t {
            return Err(Fatal::Protocol(pdu::Fes::PduSequenceError, format!("R2T for CID {}, which sends no data by R2T", r.cccid)));
        }
        let end = u64::from(r.r2to) + u64::from(r.r2tl);
        if end > u64::from(o.len) {
            return Err(Fatal::Protocol(pdu::Fes::DataTransferOutOfRange, format!("R2T for CID {} asks for {}+{} of {} bytes", r.cccid, r.r2to, r.r2tl, o.len)));
        }
        self.counts.r2ts += 1;
        let mut off = r.r2to;
        while off < end as u32 {
            let n = (end as u32 - off).min(self.maxh2cdata);
            let last = off + n == end as u32;
            let h = H2cData { cccid: r.cccid, ttag: r.ttag, datao: off, datal: n, last };
            let chunk = &o.data[off as usize..(off + n) as usize];
            let _ = pdu::emit(&Pdu::H2cData(h), chunk, &self.tx_cfg, &mut self.out);
            self.counts.h2c_data += 1;
            off += n;
        }
        Ok(())
    }
}
