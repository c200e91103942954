//! The host side of one NVMe/TCP queue (NVMe/TCP Transport 1.0 §3.3,
//! §3.6): connection setup (ICReq/ICResp), command tracking by CID, and a
//! receive state machine that walks the TCP byte stream PDU by PDU.
//!
//! It never touches payload bytes: for C2HData it tells the caller which
//! command, offset and length sit at the front of the stream, so the
//! caller can move them where they belong (by DMA straight out of its
//! socket buffer) and then report how much it consumed. Everything the
//! target sends is checked against what the host asked for; a violation
//! is a [`Fatal`] error: the caller sends the H2CTermReq this module
//! builds and closes the connection.
//!
//! The caller drives it like this:
//! * `rx_want()` says what the stream must deliver next: header bytes
//!   (copy them out, then `on_header`), data for a command (move it, then
//!   `on_data`), a data digest (`on_digest`), or bytes to skip.
//! * `on_header` returns an [`Event`]: a completion, an R2T to answer with
//!   H2CData, or nothing.
//! * TX: `icreq`, `capsule`, `h2c_data` write PDU headers; the caller
//!   appends payload and `data_digest`.

use crate::cqe::parse_cqe;
use crate::digest::{to_wire, Crc32c};
use crate::pdu::{self, C2hData, DataSpan, Digests, Fes, H2cData, IcReq, Pdu, PduError, PduType, R2t, Role, RxConfig, TermReq, TxConfig, CH_LEN};
use dpu_nvme::{Cqe, Sqe};

/// Connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// ICReq not sent yet.
    Idle,
    /// ICReq sent, waiting for ICResp.
    IcSent,
    /// Connection parameters agreed: commands may be sent.
    Established,
    /// A fatal error happened; the connection must be closed.
    Failed,
}

/// Why the queue must be torn down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fatal {
    /// A malformed or unexpected PDU (header parse or check failed).
    Pdu(PduError),
    /// A data digest mismatch on C2HData of command `cid`.
    DataDigest { cid: u16 },
    /// A PDU names a command that is not outstanding (or not a read / a write).
    UnknownCommand { cid: u16 },
    /// C2HData out of order (offset != bytes received so far).
    OutOfOrder { cid: u16, offset: u32, expected: u32 },
    /// The target terminated the connection (C2HTermReq).
    Terminated { fes: u16, fei: u32 },
    /// The ICResp asked for something we cannot do (digests we did not ask
    /// for, data alignment we cannot honour).
    Unsupported,
}

impl Fatal {
    /// The H2CTermReq to send the target for this error, if any.
    pub fn term_req(&self) -> Option<TermReq> {
        match *self {
            Fatal::Pdu(e) => e.term_req(),
            Fatal::DataDigest { .. } => None,
            Fatal::UnknownCommand { .. } => Some(TermReq::new(Fes::InvalidHeaderField, 8)),
            Fatal::OutOfOrder { .. } => Some(TermReq::new(Fes::DataOutOfRange, 12)),
            Fatal::Terminated { .. } => None,
            Fatal::Unsupported => Some(TermReq::new(Fes::UnsupportedParameter, 0)),
        }
    }
}

/// What the next bytes of the stream are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Want {
    /// Copy this many header bytes (all of them, in one piece) to `on_header`.
    Header(usize),
    /// `len` bytes of command `cid`'s data, for offset `offset` of its
    /// transfer: move any prefix of them, then `on_data(n)`.
    Data { cid: u16, offset: u32, len: u32 },
    /// The 4-byte data digest: copy it to `on_digest`.
    Digest,
    /// Bytes to drop (padding, TermReq error data): consume, then `on_skip(n)`.
    Skip(u32),
}

/// What a complete header meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// Nothing for the caller (more bytes to come for this PDU).
    None,
    /// ICResp accepted: commands may flow. `maxh2cdata` bounds H2CData PDUs.
    Established { maxh2cdata: u32, digests: Digests },
    /// Command `cid` completed (its slot is free again).
    Completed { cid: u16, tag: u32, cqe: Cqe },
    /// The target wants `len` bytes of write `cid` from `offset`.
    R2t { cid: u16, tag: u32, ttag: u16, offset: u32, len: u32 },
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    active: bool,
    write: bool,
    /// Transfer length.
    len: u32,
    /// Read: bytes received so far. Write: bytes requested by R2Ts.
    done: u32,
    tag: u32,
}

impl Slot {
    const FREE: Slot = Slot { active: false, write: false, len: 0, done: 0, tag: 0 };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rx {
    /// Waiting for the 8-byte common header.
    Common,
    /// Waiting for the rest of the header (total bytes given).
    Header(usize),
    /// Padding before data.
    Pad { left: u32, then: DataOf },
    /// Data of a command still to come.
    Data { cid: u16, offset: u32, left: u32, last: bool, success: bool, ddgst: bool },
    Digest { cid: u16, last: bool, success: bool },
    /// TermReq error data or other bytes to drop, then a fatal error.
    SkipThenFail { left: u32, fatal: Fatal },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DataOf {
    cid: u16,
    offset: u32,
    len: u32,
    last: bool,
    success: bool,
    ddgst: bool,
}

/// One host queue with room for `N` outstanding commands (CID 0..N).
pub struct HostQueue<const N: usize> {
    pub qid: u16,
    state: State,
    want_digests: Digests,
    digests: Digests,
    /// The target's CPDA: alignment of the data we send.
    cpda: u8,
    maxh2cdata: u32,
    slots: [Slot; N],
    outstanding: usize,
    rx: Rx,
    crc: Crc32c,
    /// The last header parsed (for the TermReq error data).
    hdr: [u8; pdu::MAX_HEADER_LEN],
    hdr_len: usize,
}

impl<const N: usize> HostQueue<N> {
    pub const fn new(qid: u16, digests: Digests) -> Self {
        HostQueue {
            qid,
            state: State::Idle,
            want_digests: digests,
            digests: Digests::NONE,
            cpda: 0,
            maxh2cdata: 0,
            slots: [Slot::FREE; N],
            outstanding: 0,
            rx: Rx::Common,
            crc: Crc32c::new(),
            hdr: [0; pdu::MAX_HEADER_LEN],
            hdr_len: 0,
        }
    }

    /// Forgets everything (connection closed): returns to `Idle`. Use
    /// `drain` first to learn which commands were outstanding.
    pub fn reset(&mut self) {
        *self = HostQueue::new(self.qid, self.want_digests);
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn digests(&self) -> Digests {
        self.digests
    }

    pub fn maxh2cdata(&self) -> u32 {
        self.maxh2cdata
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Whether `cid` is in flight.
    pub fn active(&self, cid: u16) -> bool {
        self.slots.get(usize::from(cid)).is_some_and(|s| s.active)
    }

    /// Outstanding commands as (cid, tag), freeing them (after a failure).
    pub fn drain(&mut self, mut f: impl FnMut(u16, u32)) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.active {
                f(i as u16, s.tag);
                *s = Slot::FREE;
            }
        }
        self.outstanding = 0;
    }

    fn tx_cfg(&self) -> TxConfig {
        TxConfig { digests: self.digests, pda: self.cpda }
    }

    fn rx_cfg(&self) -> RxConfig {
        if self.state == State::Established {
            RxConfig::established(Role::Host, self.digests, 0)
        } else {
            RxConfig::awaiting_ic(Role::Host)
        }
    }

    /// Writes the ICReq (asking for the digests given at creation, HPDA 0,
    /// MAXR2T 0 = one outstanding R2T per command). Returns its length.
    pub fn icreq(&mut self, buf: &mut [u8]) -> Result<usize, pdu::EmitError> {
        let p = Pdu::IcReq(IcReq { pfv: 0, hpda: 0, hdgst: self.want_digests.header, ddgst: self.want_digests.data, maxr2t: 0 });
        let n = p.emit(0, &TxConfig::PLAIN, buf)?;
        self.state = State::IcSent;
        self.rx = Rx::Common;
        Ok(n)
    }

    /// Starts command `sqe` (its CID picks the slot): `len` bytes of data
    /// (read into the host, or written from it), of which `in_capsule`
    /// bytes follow the header in the capsule. Writes the CapsuleCmd header
    /// and returns its length; the caller appends the in-capsule data and,
    /// if `data_digest()`, its CRC32C. `tag` comes back with the completion.
    pub fn capsule(&mut self, sqe: &Sqe, write: bool, len: u32, in_capsule: u32, tag: u32, buf: &mut [u8]) -> Result<usize, pdu::EmitError> {
        self.capsule_with(write, len, in_capsule, tag, buf, |s| s.copy_from_slice(&sqe.0))
    }

    /// [`capsule`](Self::capsule) with the SQE written by `sqe` straight
    /// into the header's 64 SQE bytes, which it gets zeroed (e.g.
    /// [`crate::fabrics::io::read_into`]): no SQE value is built and
    /// copied. The CID it writes picks the slot.
    pub fn capsule_with(&mut self, write: bool, len: u32, in_capsule: u32, tag: u32, buf: &mut [u8], sqe: impl FnOnce(&mut [u8; 64])) -> Result<usize, pdu::EmitError> {
        if self.state != State::Established {
            return Err(pdu::EmitError::DataNotAllowed);
        }
        let mut cid = usize::MAX;
        let n = pdu::emit_with(PduType::CapsuleCmd, 0, in_capsule, &self.tx_cfg(), buf, |h| {
            let s: &mut [u8; 64] = (&mut h[8..72]).try_into().map_err(|_| pdu::EmitError::BufferTooSmall { need: 72 })?;
            sqe(s);
            cid = usize::from(u16::from_le_bytes([s[2], s[3]]));
            Ok(())
        })?;
        // (Checked once the SQE is written; on an error the caller sends
        // nothing of what was written.)
        if cid >= N || self.slots[cid].active {
            return Err(pdu::EmitError::DataNotAllowed);
        }
        self.slots[cid] = Slot { active: true, write, len, done: in_capsule, tag };
        self.outstanding += 1;
        Ok(n)
    }

    /// Writes the header of one H2CData PDU answering R2T `ttag` of write
    /// `cid`: `len` bytes at `offset`; `last` on the final PDU of the R2T.
    pub fn h2c_data(&self, cid: u16, ttag: u16, offset: u32, len: u32, last: bool, buf: &mut [u8]) -> Result<usize, pdu::EmitError> {
        Pdu::H2cData(H2cData { cccid: cid, ttag, datao: offset, datal: len, last }).emit(len, &self.tx_cfg(), buf)
    }

    /// Whether data PDUs we send carry a data digest.
    pub fn data_digest(&self) -> bool {
        self.digests.data
    }

    /// The data digest trailer for `data` (CRC32C, wire order).
    pub fn digest_of(parts: &[&[u8]]) -> [u8; 4] {
        let mut c = Crc32c::new();
        for p in parts {
            c.update(p);
        }
        to_wire(c.finish())
    }

    /// What the receiver must take from the stream next.
    pub fn rx_want(&self) -> Want {
        match self.rx {
            Rx::Common => Want::Header(CH_LEN),
            Rx::Header(n) => Want::Header(n),
            Rx::Pad { left, .. } => Want::Skip(left),
            Rx::Data { cid, offset, left, .. } => Want::Data { cid, offset, len: left },
            Rx::Digest { .. } => Want::Digest,
            Rx::SkipThenFail { left, .. } => Want::Skip(left),
        }
    }

    fn fail(&mut self, f: Fatal) -> Result<Event, Fatal> {
        self.state = State::Failed;
        Err(f)
    }

    /// Feeds the header bytes `rx_want` asked for.
    pub fn on_header(&mut self, h: &[u8]) -> Result<Event, Fatal> {
        if self.state == State::Failed {
            return Err(Fatal::Unsupported);
        }
        let cfg = self.rx_cfg();
        match self.rx {
            Rx::Common => {
                // Kept first: a bad common header is the TermReq's data too.
                self.keep_header(h.get(..CH_LEN).unwrap_or(h));
                let total = match pdu::header_total_len(h, &cfg) {
                    Ok(t) => t,
                    Err(e) => return self.fail(Fatal::Pdu(e)),
                };
                if total > CH_LEN {
                    self.rx = Rx::Header(total - CH_LEN);
                    return Ok(Event::None);
                }
                // No PDU type has a header of just 8 bytes.
                self.fail(Fatal::Unsupported)
            }
            Rx::Header(n) => {
                if h.len() < n || self.hdr_len + n > self.hdr.len() {
                    return self.fail(Fatal::Pdu(PduError::Truncated { need: n }));
                }
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&h[..n]);
                self.hdr_len += n;
                let r = match pdu::parse_header(&self.hdr[..self.hdr_len], &cfg) {
                    Ok(r) => r,
                    Err(e) => return self.fail(Fatal::Pdu(e)),
                };
                self.rx = Rx::Common;
                self.handle(r.pdu, r.data, r.header_len)
            }
            _ => self.fail(Fatal::Unsupported),
        }
    }

    /// The whole header of the next PDU at once, when the caller sees it
    /// in one piece (`h` starts at the PDU and may run past its header):
    /// the same checks and result as `on_header` for the common header
    /// and then the rest, without copying the header. `None` when `rx_want`
    /// does not ask for a PDU's first byte or `h` does not hold its whole
    /// header (use `on_header` then); `Some((header bytes consumed,
    /// event))` otherwise (0 bytes on a bad common header).
    pub fn on_pdu(&mut self, h: &[u8]) -> Option<(usize, Result<Event, Fatal>)> {
        if !matches!(self.rx, Rx::Common) || self.state == State::Failed {
            return None;
        }
        if self.state == State::Established {
            if let Some(r) = self.on_io_header(h) {
                return Some(r);
            }
        }
        let cfg = self.rx_cfg();
        let ch = pdu::CommonHeader::parse(h, &cfg);
        let total = match ch.map(|c| c.header_total_len()) {
            Ok(t) if t > CH_LEN => t,
            Ok(_) => {
                self.keep_header(&h[..CH_LEN]);
                return Some((0, self.fail(Fatal::Unsupported)));
            }
            Err(PduError::Truncated { .. }) => return None,
            Err(e) => {
                self.keep_header(&h[..CH_LEN]);
                return Some((0, self.fail(Fatal::Pdu(e))));
            }
        };
        let (Some(h), Ok(ch)) = (h.get(..total), ch) else { return None };
        let r = match pdu::parse_after_common(&ch, h) {
            Ok(r) => self.handle(r.pdu, r.data, r.header_len),
            Err(e) => self.fail(Fatal::Pdu(e)),
        };
        if r.is_err() {
            self.keep_header(h);
        }
        Some((total, r))
    }

    /// The I/O fast path of [`on_pdu`](Self::on_pdu): the three PDUs an
    /// established host queue receives for every command - CapsuleResp
    /// (NVMe/TCP 1.0 §3.6.2.7), C2HData (§3.6.2.9) and R2T (§3.6.2.10) -
    /// without header digest, checked and decoded in one pass with
    /// fixed-offset loads from the 24-byte header where it lies (no copy,
    /// no [`Pdu`] built, no table look-up). It takes a header only if every
    /// check of the full parser ([`pdu::CommonHeader::parse`],
    /// [`pdu::parse_after_common`]) would pass; anything else (another
    /// type, header digests, any field the full parser refuses) returns
    /// `None` and goes through that parser, which then names the error.
    /// The command-level checks (CID outstanding, data range and order)
    /// are the full path's own (`on_resp`, `on_c2h`, `on_r2t`).
    #[inline]
    fn on_io_header(&mut self, h: &[u8]) -> Option<(usize, Result<Event, Fatal>)> {
        const HLEN: u32 = 24;
        let h: &[u8; HLEN as usize] = h.get(..HLEN as usize)?.try_into().ok()?;
        let (ty, flags, pdo) = (h[0], h[1], u32::from(h[3]));
        let plen = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        // HLEN is 24 for all three; no header digest on the connection
        // nor announced by the PDU.
        if u32::from(h[2]) != HLEN || flags & pdu::HDGSTF != 0 || self.digests.header {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let cid = u16::from_le_bytes([h[8], h[9]]);
        // (An if chain, not a `match`: a jump table's load from .rodata
        // missed in L1 on most PDUs.)
        let r = if ty == PduType::CapsuleResp as u8 {
            // Header only: PLEN = HLEN, PDO 0, no data digest flag.
            if flags & pdu::DDGSTF != 0 || pdo != 0 || plen != HLEN {
                return None;
            }
            // The CQE (bytes 8..24) read where it lies, as `parse_cqe` does.
            let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
            self.on_resp(Cqe { dw0: u32_at(8), dw1: u32_at(12), sq_head: u16_at(16), sq_id: u16_at(18), cid: u16_at(20), status: crate::cqe::status_from_field(u16_at(22) >> 1) })
        } else if ty == PduType::C2hData as u8 {
            let dd = flags & pdu::DDGSTF != 0;
            let dd_len = if dd { 4 } else { 0 };
            // SUCCESS only with LAST_PDU; the data digest flag as
            // negotiated; at least one data byte; PDO after the header,
            // data and digest inside PLEN; DATAL the data's length.
            if flags & pdu::SUCCESS != 0 && flags & pdu::LAST_PDU == 0 {
                return None;
            }
            if dd != self.digests.data || plen <= HLEN + dd_len || pdo < HLEN || pdo + dd_len >= plen {
                return None;
            }
            let len = plen - pdo - dd_len;
            let d = C2hData { cccid: cid, datao: u32_at(12), datal: u32_at(16), last: flags & pdu::LAST_PDU != 0, success: flags & pdu::SUCCESS != 0 };
            if d.datal != len {
                return None;
            }
            self.on_c2h(d, DataSpan { offset_from_pdu_start: pdo, len, ddgst: dd, pad_before: pdo - HLEN }, HLEN)
        } else if ty == PduType::R2t as u8 {
            // Header only, and a non-zero R2TL.
            let r = R2t { cccid: cid, ttag: u16::from_le_bytes([h[10], h[11]]), r2to: u32_at(12), r2tl: u32_at(16) };
            if flags & pdu::DDGSTF != 0 || pdo != 0 || plen != HLEN || r.r2tl == 0 {
                return None;
            }
            self.on_r2t(r)
        } else {
            return None;
        };
        if r.is_err() {
            self.keep_header(h);
        }
        Some((HLEN as usize, r))
    }

    /// Keeps the header of a PDU that failed (the TermReq error data).
    fn keep_header(&mut self, h: &[u8]) {
        let n = h.len().min(self.hdr.len());
        self.hdr[..n].copy_from_slice(&h[..n]);
        self.hdr_len = n;
    }

    fn handle(&mut self, p: Pdu, span: Option<DataSpan>, header_len: u32) -> Result<Event, Fatal> {
        match p {
            Pdu::IcResp(r) => {
                if self.state != State::IcSent {
                    return self.fail(Fatal::Pdu(PduError::IcRepeated(pdu::PduType::IcResp)));
                }
                if (r.hdgst && !self.want_digests.header) || (r.ddgst && !self.want_digests.data) || r.cpda > pdu::MAX_PDA {
                    return self.fail(Fatal::Unsupported);
                }
                self.digests = Digests { header: r.hdgst, data: r.ddgst };
                self.cpda = r.cpda;
                self.maxh2cdata = r.maxh2cdata;
                self.state = State::Established;
                Ok(Event::Established { maxh2cdata: r.maxh2cdata, digests: self.digests })
            }
            Pdu::CapsuleResp(r) => self.on_resp(parse_cqe(&r.cqe)),
            Pdu::C2hData(d) => {
                let Some(span) = span else { return self.fail(Fatal::Pdu(PduError::MissingData)) };
                self.on_c2h(d, span, header_len)
            }
            Pdu::R2t(r) => self.on_r2t(r),
            Pdu::C2hTermReq(t) => {
                let skip = span.map_or(0, |s| s.len + (s.offset_from_pdu_start - header_len));
                let fatal = Fatal::Terminated { fes: t.fes, fei: t.fei };
                if skip > 0 {
                    self.rx = Rx::SkipThenFail { left: skip, fatal };
                    return Ok(Event::None);
                }
                self.fail(fatal)
            }
            // The receive configuration lets only controller-to-host PDUs through.
            other => self.fail(Fatal::Pdu(PduError::WrongDirection(other.pdu_type()))),
        }
    }

    /// A CapsuleResp: completes its command.
    fn on_resp(&mut self, mut cqe: Cqe) -> Result<Event, Fatal> {
        let cid = cqe.cid;
        let Some(s) = self.slots.get_mut(usize::from(cid)).filter(|s| s.active) else {
            return self.fail(Fatal::UnknownCommand { cid });
        };
        if !s.write && s.done != s.len && cqe.status.is_success() {
            // Success without all the data: the data is missing.
            cqe.status = dpu_nvme::Status::DATA_TRANSFER_ERROR;
        }
        let tag = s.tag;
        *s = Slot::FREE;
        self.outstanding -= 1;
        Ok(Event::Completed { cid, tag, cqe })
    }

    /// A C2HData header whose data lies at `span`: checked against its
    /// read, then the data is due.
    fn on_c2h(&mut self, d: C2hData, span: DataSpan, header_len: u32) -> Result<Event, Fatal> {
        let cid = d.cccid;
        let Some(s) = self.slots.get(usize::from(cid)).filter(|s| s.active && !s.write) else {
            return self.fail(Fatal::UnknownCommand { cid });
        };
        if let Err(e) = d.check(s.len) {
            return self.fail(Fatal::Pdu(e));
        }
        if d.datao != s.done {
            return self.fail(Fatal::OutOfOrder { cid, offset: d.datao, expected: s.done });
        }
        let pad = span.offset_from_pdu_start - header_len;
        let of = DataOf { cid, offset: d.datao, len: d.datal, last: d.last, success: d.success, ddgst: span.ddgst };
        self.crc = Crc32c::new();
        self.rx = if pad > 0 { Rx::Pad { left: pad, then: of } } else { Self::data_state(of) };
        Ok(Event::None)
    }

    /// An R2T: checked against its write, then reported.
    fn on_r2t(&mut self, r: R2t) -> Result<Event, Fatal> {
        let cid = r.cccid;
        let Some(s) = self.slots.get_mut(usize::from(cid)).filter(|s| s.active && s.write) else {
            return self.fail(Fatal::UnknownCommand { cid });
        };
        if let Err(e) = r.check(s.len) {
            return self.fail(Fatal::Pdu(e));
        }
        s.done = s.done.max(r.r2to + r.r2tl);
        Ok(Event::R2t { cid, tag: s.tag, ttag: r.ttag, offset: r.r2to, len: r.r2tl })
    }

    fn data_state(of: DataOf) -> Rx {
        Rx::Data { cid: of.cid, offset: of.offset, left: of.len, last: of.last, success: of.success, ddgst: of.ddgst }
    }

    /// `n` bytes of padding / dropped data were consumed.
    pub fn on_skip(&mut self, n: u32) -> Result<Event, Fatal> {
        match self.rx {
            Rx::Pad { left, then } => {
                let n = n.min(left);
                self.rx = if left == n { Self::data_state(then) } else { Rx::Pad { left: left - n, then } };
                Ok(Event::None)
            }
            Rx::SkipThenFail { left, fatal } => {
                if n >= left {
                    return self.fail(fatal);
                }
                self.rx = Rx::SkipThenFail { left: left - n, fatal };
                Ok(Event::None)
            }
            _ => Ok(Event::None),
        }
    }

    /// The caller consumed the first `data.len()` bytes `Want::Data`
    /// asked for (pass the bytes when a data digest is in use so the CRC
    /// can be checked, or an empty slice with `n` otherwise).
    pub fn on_data(&mut self, n: u32, data: &[u8]) -> Result<Event, Fatal> {
        if let Rx::Data { ddgst: true, .. } = self.rx {
            self.crc.update(data);
        }
        self.data_consumed(n)
    }

    /// The running data digest of the current C2HData: the finished
    /// CRC32C of its data consumed so far (0 before any), to seed an
    /// offload engine that continues it over the next bytes.
    /// `None` when the current data carries no digest (or no data is due).
    pub fn data_crc(&self) -> Option<u32> {
        matches!(self.rx, Rx::Data { ddgst: true, .. }).then(|| self.crc.value())
    }

    /// As [`on_data`](Self::on_data), for bytes whose CRC an engine
    /// computed: `crc_after` is the finished CRC32C of the PDU's data
    /// consumed so far, these `n` bytes included (the engine continued
    /// [`data_crc`](Self::data_crc)). Ignored without a data digest.
    pub fn on_data_crc(&mut self, n: u32, crc_after: u32) -> Result<Event, Fatal> {
        if let Rx::Data { ddgst: true, .. } = self.rx {
            self.crc = Crc32c::resume(crc_after);
        }
        self.data_consumed(n)
    }

    fn data_consumed(&mut self, n: u32) -> Result<Event, Fatal> {
        let Rx::Data { cid, offset, left, last, success, ddgst } = self.rx else { return Ok(Event::None) };
        let n = n.min(left);
        if let Some(s) = self.slots.get_mut(usize::from(cid)) {
            s.done += n;
        }
        if n < left {
            self.rx = Rx::Data { cid, offset: offset + n, left: left - n, last, success, ddgst };
            return Ok(Event::None);
        }
        if ddgst {
            self.rx = Rx::Digest { cid, last, success };
            return Ok(Event::None);
        }
        self.rx = Rx::Common;
        Ok(self.data_finished(cid, last, success))
    }

    /// The data digest of the current C2HData.
    pub fn on_digest(&mut self, d: [u8; 4]) -> Result<Event, Fatal> {
        let Rx::Digest { cid, last, success } = self.rx else { return Ok(Event::None) };
        let crc = core::mem::replace(&mut self.crc, Crc32c::new());
        if !crc.matches(d) {
            return self.fail(Fatal::DataDigest { cid });
        }
        self.rx = Rx::Common;
        Ok(self.data_finished(cid, last, success))
    }

    /// After the last data of a C2HData with SUCCESS, the command is done
    /// without a CapsuleResp (NVMe/TCP 1.0 §3.6.2.8).
    fn data_finished(&mut self, cid: u16, last: bool, success: bool) -> Event {
        if !(last && success) {
            return Event::None;
        }
        let Some(s) = self.slots.get_mut(usize::from(cid)).filter(|s| s.active) else { return Event::None };
        let status = if s.done == s.len { dpu_nvme::Status::SUCCESS } else { dpu_nvme::Status::DATA_TRANSFER_ERROR };
        let tag = s.tag;
        *s = Slot::FREE;
        self.outstanding -= 1;
        Event::Completed { cid, tag, cqe: Cqe { dw0: 0, dw1: 0, sq_head: 0, sq_id: self.qid, cid, status } }
    }

    /// The header bytes of the PDU that caused a fatal error (TermReq data).
    pub fn last_header(&self) -> &[u8] {
        &self.hdr[..self.hdr_len]
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fabrics::io;
    use std::{vec, vec::Vec};
    use crate::pdu::{C2hData, CapsuleResp, IcResp, R2t};
    use crate::sgl::Dptr;

    /// Feeds a byte stream through the queue the way a socket reader does,
    /// collecting events and the data delivered per command.
    fn feed<const N: usize>(q: &mut HostQueue<N>, stream: &[u8], data: &mut [u8]) -> Result<Vec<Event>, Fatal> {
        feed_with(q, stream, data, false)
    }

    /// [`feed`]; `whole`: headers in one piece through `on_pdu` where the
    /// rest of the stream holds them.
    fn feed_with<const N: usize>(q: &mut HostQueue<N>, stream: &[u8], data: &mut [u8], whole: bool) -> Result<Vec<Event>, Fatal> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < stream.len() {
            if let Some((n, r)) = whole.then(|| q.on_pdu(&stream[at..])).flatten() {
                at += n;
                let e = r?;
                if e != Event::None {
                    out.push(e);
                }
                continue;
            }
            match q.rx_want() {
                Want::Header(n) => {
                    let e = q.on_header(&stream[at..at + n])?;
                    at += n;
                    if e != Event::None {
                        out.push(e);
                    }
                }
                Want::Skip(n) => {
                    at += n as usize;
                    q.on_skip(n)?;
                }
                Want::Data { offset, len, .. } => {
                    // Deliver in two pieces to exercise partial consumption.
                    let first = (len / 2).max(1);
                    for (o, l) in [(0, first), (first, len - first)] {
                        if l == 0 {
                            continue;
                        }
                        let s = &stream[at..at + l as usize];
                        data[(offset + o) as usize..(offset + o + l) as usize].copy_from_slice(s);
                        at += l as usize;
                        let e = q.on_data(l, s)?;
                        if e != Event::None {
                            out.push(e);
                        }
                    }
                }
                Want::Digest => {
                    let d = [stream[at], stream[at + 1], stream[at + 2], stream[at + 3]];
                    at += 4;
                    let e = q.on_digest(d)?;
                    if e != Event::None {
                        out.push(e);
                    }
                }
            }
        }
        Ok(out)
    }

    fn target_pdu(p: Pdu, data: &[u8], dg: Digests) -> Vec<u8> {
        let mut b = vec![0u8; 256];
        let n = p.emit(data.len() as u32, &TxConfig { digests: dg, pda: 0 }, &mut b).unwrap();
        b.truncate(n);
        b.extend_from_slice(data);
        if dg.data && !data.is_empty() {
            b.extend_from_slice(&HostQueue::<4>::digest_of(&[data]));
        }
        b
    }

    fn established(dg: Digests) -> HostQueue<8> {
        let mut q = HostQueue::<8>::new(1, dg);
        let mut b = [0u8; 128];
        assert_eq!(q.icreq(&mut b), Ok(128));
        let resp = target_pdu(Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: dg.header, ddgst: dg.data, maxh2cdata: 65536 }), &[], Digests::NONE);
        let ev = feed(&mut q, &resp, &mut []).unwrap();
        assert_eq!(ev, vec![Event::Established { maxh2cdata: 65536, digests: dg }]);
        q
    }

    fn cqe_bytes(cid: u16, sc: u8) -> [u8; 16] {
        crate::cqe::cqe_bytes(&Cqe { dw0: 0, dw1: 0, sq_head: 1, sq_id: 1, cid, status: if sc == 0 { dpu_nvme::Status::SUCCESS } else { dpu_nvme::Status::generic(sc) } })
    }

    #[test]
    fn read_with_and_without_digests() {
        for dg in [Digests::NONE, Digests::BOTH] {
            let mut q = established(dg);
            let mut hdr = [0u8; 128];
            let sqe = io::read(3, 1, 8, 7, 4096);
            assert!(q.capsule(&sqe, false, 4096, 0, 77, &mut hdr).is_ok());
            let payload: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
            let mut s = target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 4096, last: true, success: false }), &payload, dg);
            s.extend(target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(3, 0) }), &[], dg));
            let mut got = vec![0u8; 4096];
            let ev = feed(&mut q, &s, &mut got).unwrap();
            assert_eq!(got, payload);
            assert!(matches!(ev[..], [Event::Completed { cid: 3, tag: 77, cqe }] if cqe.status.is_success()));
            assert_eq!(q.outstanding(), 0);
        }
    }

    /// A bitwise CRC32C continuing a finished value, as the DMA engine's
    /// `OP_CRC32C` does (written apart from `digest.rs` on purpose).
    fn engine_crc(prev: u32, data: &[u8]) -> u32 {
        let mut c = !prev;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn data_digest_checked_with_an_engine_computed_crc() {
        for corrupt in [false, true] {
            let mut q = established(Digests::BOTH);
            let mut hdr = [0u8; 128];
            q.capsule(&io::read(3, 1, 8, 7, 4096), false, 4096, 0, 77, &mut hdr).unwrap();
            let payload: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 1) as u8).collect();
            let s = target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 4096, last: true, success: true }), &payload, Digests::BOTH);
            let mut n = 0;
            while let Want::Header(k) = q.rx_want() {
                assert_eq!(q.on_header(&s[n..n + k]), Ok(Event::None));
                n += k;
            }
            assert!(matches!(q.rx_want(), Want::Data { cid: 3, offset: 0, len: 4096 }));
            let data = &s[n..n + 4096];
            // The first 1000 bytes by the core, the rest by the engine
            // continuing the running value, in two pieces.
            q.on_data(1000, &data[..1000]).unwrap();
            let mut seed = q.data_crc().unwrap();
            assert_eq!(seed, engine_crc(0, &data[..1000]));
            for piece in [&data[1000..3000], &data[3000..]] {
                let mut crc = engine_crc(seed, piece);
                if corrupt {
                    crc ^= 1;
                }
                assert_eq!(q.on_data_crc(piece.len() as u32, crc), Ok(Event::None));
                seed = q.data_crc().unwrap_or(0);
            }
            assert_eq!(q.rx_want(), Want::Digest);
            assert_eq!(q.data_crc(), None, "no data due");
            let d = [s[n + 4096], s[n + 4097], s[n + 4098], s[n + 4099]];
            let r = q.on_digest(d);
            if corrupt {
                assert_eq!(r, Err(Fatal::DataDigest { cid: 3 }));
            } else {
                assert!(matches!(r, Ok(Event::Completed { cid: 3, tag: 77, cqe }) if cqe.status.is_success()));
            }
        }
    }

    #[test]
    fn success_flag_completes_without_response() {
        let mut q = established(Digests::NONE);
        let mut hdr = [0u8; 128];
        q.capsule(&io::read(0, 1, 0, 0, 512), false, 512, 0, 5, &mut hdr).unwrap();
        let s = target_pdu(Pdu::C2hData(C2hData { cccid: 0, datao: 0, datal: 512, last: true, success: true }), &[9; 512], Digests::NONE);
        let ev = feed(&mut q, &s, &mut [0u8; 512]).unwrap();
        assert!(matches!(ev[..], [Event::Completed { cid: 0, tag: 5, cqe }] if cqe.status.is_success()));
    }

    #[test]
    fn write_r2t_is_reported_and_checked() {
        let mut q = established(Digests::NONE);
        let mut hdr = [0u8; 128];
        q.capsule(&io::write(2, 1, 0, 15, Dptr::Transport { len: 8192 }), true, 8192, 0, 9, &mut hdr).unwrap();
        let s = target_pdu(Pdu::R2t(R2t { cccid: 2, ttag: 4, r2to: 0, r2tl: 8192 }), &[], Digests::NONE);
        assert_eq!(feed(&mut q, &s, &mut []).unwrap(), vec![Event::R2t { cid: 2, tag: 9, ttag: 4, offset: 0, len: 8192 }]);
        let n = q.h2c_data(2, 4, 0, 8192, true, &mut hdr).unwrap();
        assert_eq!(n, 24);
        // An R2T beyond the command's data is fatal.
        let bad = target_pdu(Pdu::R2t(R2t { cccid: 2, ttag: 5, r2to: 4096, r2tl: 8192 }), &[], Digests::NONE);
        assert!(matches!(feed(&mut q, &bad, &mut []), Err(Fatal::Pdu(PduError::DataOutOfRange { .. }))));
        assert_eq!(q.state(), State::Failed);
        let mut drained = Vec::new();
        q.drain(|cid, tag| drained.push((cid, tag)));
        assert_eq!(drained, vec![(2, 9)]);
    }

    #[test]
    fn bad_input_from_the_target_is_fatal() {
        // A response for a command never sent.
        let mut q = established(Digests::NONE);
        let s = target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(6, 0) }), &[], Digests::NONE);
        assert_eq!(feed(&mut q, &s, &mut []), Err(Fatal::UnknownCommand { cid: 6 }));
        assert!(Fatal::UnknownCommand { cid: 6 }.term_req().is_some());
        // Data for a write, data out of order, data beyond the transfer.
        let mut q = established(Digests::NONE);
        let mut hdr = [0u8; 128];
        q.capsule(&io::read(1, 1, 0, 7, 4096), false, 4096, 0, 0, &mut hdr).unwrap();
        let s = target_pdu(Pdu::C2hData(C2hData { cccid: 1, datao: 512, datal: 512, last: false, success: false }), &[0; 512], Digests::NONE);
        assert!(matches!(feed(&mut q, &s, &mut [0u8; 4096]), Err(Fatal::OutOfOrder { cid: 1, offset: 512, expected: 0 })));
        let mut q = established(Digests::NONE);
        q.capsule(&io::read(1, 1, 0, 7, 4096), false, 4096, 0, 0, &mut hdr).unwrap();
        let s = target_pdu(Pdu::C2hData(C2hData { cccid: 1, datao: 0, datal: 8192, last: true, success: false }), &[0; 8192], Digests::NONE);
        assert!(matches!(feed(&mut q, &s, &mut [0u8; 8192]), Err(Fatal::Pdu(PduError::DataOutOfRange { .. }))));
        // A corrupted data digest.
        let mut q = established(Digests::BOTH);
        q.capsule(&io::read(1, 1, 0, 0, 512), false, 512, 0, 0, &mut hdr).unwrap();
        let mut s = target_pdu(Pdu::C2hData(C2hData { cccid: 1, datao: 0, datal: 512, last: true, success: false }), &[1; 512], Digests::BOTH);
        let l = s.len();
        s[l - 1] ^= 1;
        assert_eq!(feed(&mut q, &s, &mut [0u8; 512]), Err(Fatal::DataDigest { cid: 1 }));
        // A response claiming success before all the data arrived.
        let mut q = established(Digests::NONE);
        q.capsule(&io::read(1, 1, 0, 7, 4096), false, 4096, 0, 0, &mut hdr).unwrap();
        let s = target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(1, 0) }), &[], Digests::NONE);
        let ev = feed(&mut q, &s, &mut []).unwrap();
        assert!(matches!(ev[..], [Event::Completed { cqe, .. }] if cqe.status == dpu_nvme::Status::DATA_TRANSFER_ERROR));
        // Garbage instead of a header.
        let mut q = established(Digests::NONE);
        assert!(matches!(feed(&mut q, &[0x42; 8], &mut []), Err(Fatal::Pdu(PduError::BadType(_)))));
    }

    /// Whole headers through `on_pdu` give the same events, errors,
    /// state and (after an error) TermReq data as the header read in two
    /// steps.
    #[test]
    fn whole_headers_match_the_two_step_reader() {
        let payload: Vec<u8> = (0..4096u32).map(|i| (i * 3) as u8).collect();
        let mut cases: Vec<(Digests, Vec<u8>)> = Vec::new();
        for dg in [Digests::NONE, Digests::BOTH] {
            let mut s = target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 4096, last: true, success: false }), &payload, dg);
            s.extend(target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(3, 0) }), &[], dg));
            cases.push((dg, s));
        }
        let unknown = target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(6, 0) }), &[], Digests::NONE);
        let beyond = target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 8192, last: true, success: false }), &[0; 8192], Digests::NONE);
        let mut bad_hdgst = cases[1].1.clone();
        bad_hdgst[10] ^= 1;
        cases.extend([(Digests::NONE, unknown), (Digests::NONE, beyond), (Digests::BOTH, bad_hdgst), (Digests::NONE, vec![0x42; 8])]);
        for (dg, s) in &cases {
            let mut out = [vec![0u8; 8192], vec![0u8; 8192]];
            let mut results = Vec::new();
            for (whole, buf) in [false, true].into_iter().zip(out.iter_mut()) {
                let mut q = established(*dg);
                q.capsule(&io::read(3, 1, 8, 7, 4096), false, 4096, 0, 77, &mut [0u8; 128]).unwrap();
                let r = feed_with(&mut q, s, buf, whole);
                // The header kept for the TermReq matters after a failure.
                let kept = if r.is_err() { q.last_header().to_vec() } else { Vec::new() };
                results.push((r, q.state(), q.outstanding(), kept));
            }
            assert_eq!(results[0], results[1]);
            assert_eq!(out[0], out[1]);
        }
    }

    /// Feeds `stream` as far as it goes (a mutated header may announce
    /// more than there is): events or the error, then what the queue
    /// wants next. `whole`: headers through `on_pdu` (its fast path).
    fn feed_some<const N: usize>(q: &mut HostQueue<N>, stream: &[u8], whole: bool) -> (Result<Vec<Event>, Fatal>, Want) {
        let mut at = 0;
        let mut out = Vec::new();
        let r = (|| {
            while at < stream.len() {
                let rest = &stream[at..];
                if let Some((n, r)) = whole.then(|| q.on_pdu(rest)).flatten() {
                    at += n;
                    let e = r?;
                    if e != Event::None {
                        out.push(e);
                    }
                    continue;
                }
                let e = match q.rx_want() {
                    Want::Header(n) if rest.len() >= n => {
                        at += n;
                        q.on_header(&rest[..n])?
                    }
                    Want::Skip(n) => {
                        let n = (n as usize).min(rest.len());
                        at += n;
                        q.on_skip(n as u32)?
                    }
                    Want::Data { len, .. } => {
                        let n = (len as usize).min(rest.len());
                        at += n;
                        q.on_data(n as u32, &rest[..n])?
                    }
                    Want::Digest if rest.len() >= 4 => {
                        at += 4;
                        q.on_digest([rest[0], rest[1], rest[2], rest[3]])?
                    }
                    _ => break,
                };
                if e != Event::None {
                    out.push(e);
                }
            }
            Ok(())
        })();
        (r.map(|()| out), q.rx_want())
    }

    /// The fast path of `on_pdu` (CapsuleResp, C2HData and R2T read at
    /// fixed offsets in one pass) decides exactly as the full parser
    /// does: every byte of valid headers, set to a spread of values
    /// (types, flags, HLEN, PDO, PLEN, CIDs, offsets, lengths), gives the
    /// same events or error, state, outstanding commands, TermReq data
    /// and next want through `on_pdu` as through the two-step reader.
    #[test]
    fn fast_header_path_matches_the_full_parser_on_mutated_headers() {
        let values = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0c, 0x10, 0x17, 0x18, 0x19, 0x1c, 0x20, 0x40, 0x80, 0xfe, 0xff];
        let data_only = Digests { header: false, data: true };
        let mut fast_taken = 0;
        for dg in [Digests::NONE, data_only, Digests::BOTH] {
            let payload: Vec<u8> = (0..512u32).map(|i| (i * 5) as u8).collect();
            let bases = [
                target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 512, last: true, success: false }), &payload, dg),
                target_pdu(Pdu::C2hData(C2hData { cccid: 3, datao: 0, datal: 512, last: true, success: true }), &payload, dg),
                target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(3, 0) }), &[], dg),
                target_pdu(Pdu::CapsuleResp(CapsuleResp { cqe: cqe_bytes(2, 0x81) }), &[], dg),
                target_pdu(Pdu::R2t(R2t { cccid: 2, ttag: 7, r2to: 0, r2tl: 8192 }), &[], dg),
            ];
            let queue = || {
                let mut q = established(dg);
                q.capsule(&io::read(3, 1, 8, 0, 512), false, 512, 0, 77, &mut [0u8; 128]).unwrap();
                q.capsule(&io::write(2, 1, 0, 15, Dptr::Transport { len: 8192 }), true, 8192, 0, 9, &mut [0u8; 128]).unwrap();
                q
            };
            for base in &bases {
                if queue().on_io_header(base).is_some() {
                    fast_taken += 1;
                }
                for pos in 0..24 {
                    for &v in values.iter().chain([base[pos] ^ 1, base[pos] ^ 0x80].iter()) {
                        let mut s = base.clone();
                        s[pos] = v;
                        let mut got = Vec::new();
                        for whole in [false, true] {
                            let mut q = queue();
                            let (r, want) = feed_some(&mut q, &s, whole);
                            // After an error nothing more is read (the
                            // connection closes): the next want is moot.
                            let (kept, want) = if r.is_err() { (q.last_header().to_vec(), None) } else { (Vec::new(), Some(want)) };
                            got.push((r, want, q.state(), q.outstanding(), kept));
                        }
                        assert_eq!(got[0], got[1], "digests {dg:?}, byte {pos} = {v:#x} of {:02x?}", &base[..24]);
                    }
                }
            }
        }
        // Both digest-less settings take all five headers on the fast path.
        assert_eq!(fast_taken, 10);
    }

    #[test]
    fn digests_not_asked_for_are_refused() {
        let mut q = HostQueue::<4>::new(0, Digests::NONE);
        q.icreq(&mut [0u8; 128]).unwrap();
        let resp = target_pdu(Pdu::IcResp(IcResp { pfv: 0, cpda: 0, hdgst: true, ddgst: false, maxh2cdata: 8192 }), &[], Digests::NONE);
        assert_eq!(feed(&mut q, &resp, &mut []), Err(Fatal::Unsupported));
    }

    #[test]
    fn target_termination_is_reported() {
        let mut q = established(Digests::NONE);
        let mut b = [0u8; 160];
        let n = TermReq::new(Fes::InvalidHeaderField, 3).emit_with_data(false, &[1, 2, 3, 4, 5, 6, 7, 8], &mut b).unwrap();
        assert_eq!(feed(&mut q, &b[..n], &mut []), Err(Fatal::Terminated { fes: 1, fei: 3 }));
    }
}
