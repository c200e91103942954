//! The controller (target) side of NVMe/TCP, without MMIO, time or data
//! movement: what a target answers to a host's ICReq, Fabrics Connect,
//! Property Get/Set and admin commands, and how it checks an I/O command
//! before the data moves. The firmware's per-core target
//! (`dpu-fw` `nvmf::target`) wires it to sockets and block devices.
//!
//! * [`answer_icreq`]: ICResp for an ICReq (NVMe/TCP Transport 1.0
//!   §3.6.2.2-3).
//! * [`check_connect`]: a Connect command and its data against the
//!   subsystems and their allowed hosts (NVMe Base 2.0 §6.3; status
//!   values of figure 551: Connect Invalid Parameters with IATTR/IPO,
//!   Connect Invalid Host, Incompatible Format).
//! * [`Properties`]: CAP, VS, CC, CSTS of a fabrics controller (§3.1.4;
//!   CC.EN -> CSTS.RDY, CC.SHN -> CSTS.SHST complete at once).
//! * [`admin_command`]: the admin commands of a dynamic I/O controller:
//!   the fabrics ones (Property Get/Set) and the SGL data pointer checks
//!   here; Identify, Get/Set Features, Get Log Page, Keep Alive,
//!   Asynchronous Event Request and Abort are `dpu_nvme::admin`'s, the
//!   code the PCIe controllers serve them with too.
//! * [`check_io_sgl`], [`check_dsm_sgl`], [`R2tWindow::check`]: an I/O command's data
//!   pointer, and each H2CData PDU against the R2T it answers
//!   (§3.3.2.2, §3.6.2.8; the FES of each violation as SPDK's target
//!   reports it).
//! * [`discovery`]: the discovery controller a Connect to the well-known
//!   discovery NQN creates, and the Discovery Log Page it serves.

pub mod discovery;
#[cfg(test)]
mod tests;

use crate::fabrics::connect::{offset as coff, status as cstatus};
use crate::fabrics::{ConnectCmd, ConnectData, ConnectResponse, FcType, PropertyGet, PropertySet, PropertySize};
use crate::pdu::{offset as poffset, Fes, H2cData, IcReq, IcResp};
use crate::sgl::Dptr;
use dpu_nvme::admin::Reply;
use dpu_nvme::features::Limits;
use dpu_nvme::identify::{self, ControllerIdentity, NamespaceInfo};
use dpu_nvme::regs::{Cc, CSTS_RDY, CSTS_SHST_COMPLETE, CSTS_SHST_MASK};
use dpu_nvme::{Sqe, Status};

/// Admin opcodes (NVMe Base 2.0 figure 139).
pub use dpu_nvme::admin::opc;
/// Keep Alive Timer feature (NVMe Base 2.0 §5.27.1.12).
pub use dpu_nvme::admin::FID_KEEP_ALIVE_TIMER;
/// Asynchronous Event Request Limit Exceeded (SCT 1h, SC 05h).
pub const AER_LIMIT_EXCEEDED: Status = Status::AER_LIMIT_EXCEEDED;
/// Outstanding AERs a controller holds (Identify AERL + 1).
pub const MAX_AERS: u8 = dpu_nvme::admin::AER_SLOTS as u8;

/// The ICResp for `req` (PFV 1.0 was checked by the parser): CPDA 0 (no
/// alignment asked of the host), each digest on when the host asks for
/// it and the target offers it, MAXH2CDATA `maxh2cdata`. The host's HPDA
/// is honoured by sending with `TxConfig { pda: req.hpda, .. }`.
pub fn answer_icreq(req: &IcReq, offer_hdgst: bool, offer_ddgst: bool, maxh2cdata: u32) -> IcResp {
    IcResp { pfv: crate::PFV_1_0, cpda: 0, hdgst: req.hdgst && offer_hdgst, ddgst: req.ddgst && offer_ddgst, maxh2cdata }
}

/// A Connect the target accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect<'a> {
    /// qid 0: a new dynamic controller of subsystem `subsys`.
    Admin { subsys: usize, sqsize: u16, kato_ms: u32, hostnqn: &'a str, hostid: [u8; 16] },
    /// qid > 0: an I/O queue of controller `cntlid` (the caller checks it
    /// exists, belongs to `subsys` and to `hostnqn`).
    Io { subsys: usize, qid: u16, sqsize: u16, cntlid: u16, hostnqn: &'a str, hostid: [u8; 16] },
    /// qid 0 to the well-known discovery NQN: a new discovery controller
    /// (any host; [`discovery`]).
    Discovery { sqsize: u16, kato_ms: u32, hostnqn: &'a str, hostid: [u8; 16] },
}

/// Checks a Connect (`sqe`, with its in-capsule `data`): record format 0,
/// SGL1 an in-capsule 1024-byte block, SQSIZE within `mqes` (0's based,
/// at least 1), a known subsystem (`find` gives its index) whose
/// allow-list (`allows`) takes the host, CNTLID FFFFh for an admin queue.
/// The discovery NQN ([`crate::DISCOVERY_NQN`]) is the discovery
/// subsystem, open to every host, with an admin queue only (an I/O queue
/// Connect to it is Connect Invalid Parameters on QID, as Linux nvmet
/// answers). Errors are the completion to send.
pub fn check_connect<'a>(
    sqe: &Sqe,
    data: &'a [u8],
    mqes: u16,
    find: impl Fn(&str) -> Option<usize>,
    allows: impl Fn(usize, &str) -> bool,
) -> Result<Connect<'a>, ConnectResponse> {
    let sqe_field = |offset: u16| ConnectResponse::InvalidParameter { in_data: false, offset };
    let data_field = |offset: u16| ConnectResponse::InvalidParameter { in_data: true, offset };
    let cmd = ConnectCmd::parse(sqe).map_err(|_| ConnectResponse::Failed(Status::INVALID_FIELD))?;
    if cmd.recfmt != 0 {
        return Err(ConnectResponse::Failed(cstatus::INCOMPATIBLE_FORMAT));
    }
    match Dptr::of(sqe) {
        Ok(Dptr::InCapsule { offset: 0, len }) if len as usize >= crate::fabrics::connect::CONNECT_DATA_LEN => {}
        _ => return Err(ConnectResponse::Failed(Status::DATA_SGL_LENGTH_INVALID)),
    }
    let d = ConnectData::parse(data).map_err(|_| data_field(coff::DATA_SUBNQN))?;
    // Hostnqn checked too: a bad one cannot be allowed.
    if crate::fabrics::check_nqn(d.hostnqn).is_err() || d.hostnqn.is_empty() {
        return Err(data_field(coff::DATA_HOSTNQN));
    }
    if d.subnqn == crate::DISCOVERY_NQN {
        if cmd.qid != 0 {
            return Err(sqe_field(coff::SQE_QID));
        }
        if cmd.sqsize == 0 || cmd.sqsize > mqes {
            return Err(sqe_field(coff::SQE_SQSIZE));
        }
        if d.cntlid != crate::fabrics::connect::CNTLID_DYNAMIC {
            return Err(data_field(coff::DATA_CNTLID));
        }
        return Ok(Connect::Discovery { sqsize: cmd.sqsize, kato_ms: cmd.kato, hostnqn: d.hostnqn, hostid: d.hostid });
    }
    let Some(subsys) = find(d.subnqn) else { return Err(data_field(coff::DATA_SUBNQN)) };
    if !allows(subsys, d.hostnqn) {
        return Err(ConnectResponse::Failed(cstatus::INVALID_HOST));
    }
    if cmd.sqsize == 0 || cmd.sqsize > mqes {
        return Err(sqe_field(coff::SQE_SQSIZE));
    }
    if cmd.qid == 0 {
        if d.cntlid != crate::fabrics::connect::CNTLID_DYNAMIC {
            return Err(data_field(coff::DATA_CNTLID));
        }
        Ok(Connect::Admin { subsys, sqsize: cmd.sqsize, kato_ms: cmd.kato, hostnqn: d.hostnqn, hostid: d.hostid })
    } else {
        if d.cntlid == 0 || d.cntlid >= crate::fabrics::connect::CNTLID_STATIC_ANY {
            return Err(data_field(coff::DATA_CNTLID));
        }
        Ok(Connect::Io { subsys, qid: cmd.qid, sqsize: cmd.sqsize, cntlid: d.cntlid, hostnqn: d.hostnqn, hostid: d.hostid })
    }
}

/// Property offsets (NVMe Base 2.0 §3.1.4, figure 36).
use crate::fabrics::property::offset as poff;

/// The controller properties of a fabrics controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Properties {
    pub cc: u32,
    pub csts: u32,
}

impl Properties {
    /// CAP: MQES `mqes` (0's based), CQR, TO 7.5 s, CSS NVM, MPSMIN 4 KiB.
    pub fn cap(mqes: u16) -> u64 {
        (dpu_nvme::regs::cap(15) & !0xffff) | u64::from(mqes)
    }

    /// Property Get: the value, or Invalid Field for an offset the
    /// controller has not (or a size that does not match it).
    pub fn get(&self, g: &PropertyGet, mqes: u16) -> Result<u64, Status> {
        let want = PropertySize::of(g.offset);
        let v = match g.offset {
            poff::CAP => Properties::cap(mqes),
            poff::VS => u64::from(dpu_nvme::regs::VERSION),
            poff::CC => u64::from(self.cc),
            poff::CSTS => u64::from(self.csts),
            _ => return Err(Status::INVALID_FIELD),
        };
        if g.size != want {
            return Err(Status::INVALID_FIELD);
        }
        Ok(v)
    }

    /// Property Set: CC only (CAP, VS, CSTS are read-only). EN 0 -> 1
    /// makes the controller ready at once (CSTS.RDY); EN 1 -> 0 resets it
    /// (RDY, SHST clear); SHN non-zero completes a shutdown at once
    /// (SHST = 10b). Returns whether EN went 1 -> 0 (a reset: the caller
    /// drops the I/O queues' state).
    pub fn set(&mut self, s: &PropertySet) -> Result<bool, Status> {
        if s.offset != poff::CC || s.size != PropertySize::Four {
            return Err(Status::INVALID_FIELD);
        }
        let new = Cc(s.value as u32);
        let old = Cc(self.cc);
        if new.en() && !old.en() && (new.iosqes() != 6 || new.iocqes() != 4 || new.css() != 0 || new.mps() != 0) {
            // Unsupported queue entry sizes, command set or page size:
            // the controller does not become ready (CSTS.CFS would be
            // for a fatal error; Invalid Field lets the host see why).
            return Err(Status::INVALID_FIELD);
        }
        self.cc = new.0;
        let mut reset = false;
        if new.en() {
            self.csts |= CSTS_RDY;
        } else {
            reset = old.en();
            self.csts &= !(CSTS_RDY | CSTS_SHST_MASK);
        }
        if new.shn() != 0 {
            self.csts = (self.csts & !CSTS_SHST_MASK) | CSTS_SHST_COMPLETE;
        } else if old.shn() != 0 {
            self.csts &= !CSTS_SHST_MASK;
        }
        Ok(reset)
    }

    pub fn ready(&self) -> bool {
        self.csts & CSTS_RDY != 0
    }
}

/// What a dynamic controller is, for Identify.
pub struct Identity<'a> {
    pub subnqn: &'a str,
    pub serial: &'a str,
    pub model: &'a str,
    pub firmware: &'a str,
    pub cntlid: u16,
    /// Command capsule bytes the I/O queues take (SQE + in-capsule data).
    pub ioccsz_bytes: u32,
    /// Namespaces 1..=`namespaces`.
    pub namespaces: u32,
}

/// One controller's admin state (the admin queue's core keeps it): its
/// properties, and the state `dpu_nvme::admin` keeps for every
/// controller (features, KATO, held AERs and events, logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminState {
    pub props: Properties,
    pub ctrl: dpu_nvme::admin::AdminState,
}

impl AdminState {
    pub fn new(kato_ms: u32) -> AdminState {
        AdminState { props: Properties::default(), ctrl: dpu_nvme::admin::AdminState::new(kato_ms) }
    }

    /// Keep Alive Timeout in ms (0: none).
    pub fn kato_ms(&self) -> u32 {
        self.ctrl.kato_ms
    }
}

/// How an admin command ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminReply {
    /// Send `data_len` bytes of the output page (C2HData), then the
    /// completion with `status`, `dw0`, `dw1`.
    Complete { status: Status, dw0: u32, dw1: u32, data_len: u32 },
    /// Held (an Asynchronous Event Request): no completion now.
    Held,
    /// Property Set cleared CC.EN: complete, and the controller reset.
    Reset,
}

impl AdminReply {
    fn status(status: Status) -> AdminReply {
        AdminReply::Complete { status, dw0: 0, dw1: 0, data_len: 0 }
    }

    fn ok(dw0: u32) -> AdminReply {
        AdminReply::Complete { status: Status::SUCCESS, dw0, dw1: 0, data_len: 0 }
    }
}

/// I/O queues a host may ask for (Number of Queues): one per data-plane core.
pub const MAX_IO_QUEUES: u16 = 64;
/// Queue entries (MQES + 1) a queue may have.
pub const MQES: u16 = 127;

/// Serves admin command `sqe` (not Connect: the caller handles it) of the
/// controller in `st`. Data for the host goes to `out` (the first
/// `data_len` bytes of the reply); `host_len` is what SGL1 offers.
/// `ns(nsid)` describes an active namespace.
pub fn admin_command(st: &mut AdminState, id: &Identity, sqe: &Sqe, ns: &dyn Fn(u32) -> Option<NamespaceInfo>, out: &mut [u8; 4096]) -> AdminReply {
    let host_len = match Dptr::of(sqe) {
        Ok(Dptr::Transport { len }) => len,
        Ok(Dptr::None) => 0,
        Ok(Dptr::InCapsule { .. }) if sqe.opcode() == opc::FABRICS || sqe.opcode() == opc::SET_FEATURES => 0,
        _ => return AdminReply::status(Status::SGL_TYPE_INVALID),
    };
    if sqe.opcode() == opc::FABRICS {
        return match FcType::of(sqe) {
            Some(FcType::PropertyGet) => match PropertyGet::parse(sqe).map_err(|_| Status::INVALID_FIELD).and_then(|g| st.props.get(&g, MQES).map(|v| (g, v))) {
                Ok((g, v)) => {
                    let (dw0, dw1) = g.response_dwords(v);
                    AdminReply::Complete { status: Status::SUCCESS, dw0, dw1, data_len: 0 }
                }
                Err(s) => AdminReply::status(s),
            },
            Some(FcType::PropertySet) => match PropertySet::parse(sqe).map_err(|_| Status::INVALID_FIELD).and_then(|p| st.props.set(&p)) {
                Ok(true) => {
                    // A controller reset: features to defaults, held AERs gone.
                    st.ctrl.reset();
                    AdminReply::Reset
                }
                Ok(false) => AdminReply::ok(0),
                Err(s) => AdminReply::status(s),
            },
            // A second Connect on an admin queue, Disconnect, authentication.
            Some(FcType::Connect) => AdminReply::status(Status::COMMAND_SEQUENCE_ERROR),
            _ => AdminReply::status(Status::INVALID_OPCODE),
        };
    }
    // Every other admin command needs an enabled controller (§3.5.1).
    if !st.props.ready() {
        return AdminReply::status(Status::COMMAND_SEQUENCE_ERROR);
    }
    let ctx = FabricsController { id, ns };
    match st.ctrl.serve(&ctx, sqe, out) {
        // At most the output page, and what the host's buffer takes.
        Reply::Complete { status, dw0, dw1, data_len } => AdminReply::Complete { status, dw0, dw1, data_len: data_len.min(4096).min(host_len) },
        Reply::Held => AdminReply::Held,
        // Abort of an I/O command: not aborted (DW0 bit 0 set; I/O
        // commands run to completion on their own cores).
        Reply::NotMine if sqe.opcode() == opc::ABORT => AdminReply::ok(1),
        Reply::NotMine => AdminReply::status(Status::INVALID_OPCODE),
    }
}

/// A dynamic I/O controller as `dpu_nvme::admin` sees it: NN the
/// subsystem's namespaces, Keep Alive supported (KAS 100 ms), the NVMe
/// over Fabrics Identify fields, no firmware slot log, no health counters.
struct FabricsController<'a, 'b> {
    id: &'a Identity<'b>,
    ns: &'a dyn Fn(u32) -> Option<NamespaceInfo>,
}

impl dpu_nvme::admin::Context for FabricsController<'_, '_> {
    fn identity(&self) -> ControllerIdentity<'_> {
        ControllerIdentity {
            vid: 0x1d1d,
            ssvid: 0x1d1d,
            serial: self.id.serial,
            model: self.id.model,
            firmware: self.id.firmware,
            cntlid: self.id.cntlid,
            subnqn: self.id.subnqn,
            acl: dpu_nvme::admin::ACL,
            aerl: MAX_AERS - 1,
            elpe: (dpu_nvme::logs::ERROR_ENTRIES - 1) as u8,
            firmware_update: false,
            mtfa: 0,
        }
    }

    fn identify_extra(&self, out: &mut [u8; 4096]) {
        identify::fabrics(out, self.id.ioccsz_bytes, 16);
    }

    fn max_nsid(&self) -> u32 {
        self.id.namespaces
    }

    fn namespace(&self, nsid: u32) -> Option<NamespaceInfo> {
        (self.ns)(nsid)
    }

    fn firmware_slots(&self) -> Option<dpu_nvme::firmware::SlotLog> {
        None
    }

    fn limits(&self) -> Limits {
        Limits { max_io_queues: MAX_IO_QUEUES, vectors: 1 }
    }

    fn keep_alive(&self) -> bool {
        true
    }
}

/// Checks an I/O command's transfer against what NVMe/TCP carries it
/// in: commands that send data (Write, Compare, DSM) carry it in the
/// capsule (up to `inline_max` bytes) or by R2T/H2CData (a Transport SGL
/// Data Block); Read's data goes back as C2HData (Transport block). The
/// SGL length must equal the command's data length.
pub fn check_io_sgl(sqe: &Sqe, data_len: u32, sends_data: bool, inline_max: u32) -> Result<Dptr, Status> {
    let d = Dptr::of(sqe).map_err(|_| Status::SGL_TYPE_INVALID)?;
    match d {
        Dptr::None if data_len == 0 => Ok(d),
        Dptr::InCapsule { offset: 0, len } if sends_data && len == data_len && len <= inline_max => Ok(d),
        Dptr::InCapsule { .. } => Err(Status::DATA_SGL_LENGTH_INVALID),
        Dptr::Transport { len } if len == data_len && data_len > 0 => Ok(d),
        _ => Err(Status::DATA_SGL_LENGTH_INVALID),
    }
}

/// H2CData header offsets used as FEI (NVMe/TCP Transport 1.0 figure 32).
pub mod h2c_offset {
    pub const CCCID: u32 = 8;
    pub const TTAG: u32 = 10;
}

/// The data an R2T the target sent asks for (NVMe/TCP Transport 1.0
/// §3.6.2.10): command `cccid`, tag `ttag`, bytes `[r2to, r2to + r2tl)`,
/// of which `got` already arrived (in order, from `r2to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct R2tWindow {
    pub cccid: u16,
    pub ttag: u16,
    pub r2to: u32,
    pub r2tl: u32,
    pub got: u32,
}

impl R2tWindow {
    /// Checks an H2CData PDU `h` against the R2T whose tag it carries
    /// (`window`: `None` when no R2T of this connection is outstanding
    /// under `h.ttag`) and the MAXH2CDATA the target announced. Ok(true)
    /// when `h` is the last PDU of the R2T. Errors are the FES and FEI of
    /// the C2HTermReq to send (§3.6.2.8; §3.3.2.2: the host sends an
    /// R2T's data in order, DATAO continuing where the previous PDU ended,
    /// LAST_PDU on the final one):
    /// * unknown TTAG: Invalid PDU Header Field at TTAG;
    /// * CCCID not the R2T's command: Invalid PDU Header Field at CCCID;
    /// * DATAL above MAXH2CDATA: Data Transfer Limit Exceeded;
    /// * DATAO not the next byte, or the data past the R2T's end: Data
    ///   Transfer Out of Range;
    /// * LAST_PDU set before the end, or clear at it: Invalid PDU Header
    ///   Field at FLAGS.
    pub fn check(window: Option<&R2tWindow>, h: &H2cData, maxh2cdata: u32) -> Result<bool, (Fes, u32)> {
        let Some(w) = window.filter(|w| w.ttag == h.ttag) else { return Err((Fes::InvalidHeaderField, h2c_offset::TTAG)) };
        if w.cccid != h.cccid {
            return Err((Fes::InvalidHeaderField, h2c_offset::CCCID));
        }
        if h.datal > maxh2cdata {
            return Err((Fes::DataLimitExceeded, 0));
        }
        let next = u64::from(w.r2to) + u64::from(w.got);
        let end = u64::from(h.datao) + u64::from(h.datal);
        let w_end = u64::from(w.r2to) + u64::from(w.r2tl);
        if u64::from(h.datao) != next || end > w_end {
            return Err((Fes::DataOutOfRange, 0));
        }
        let last = end == w_end;
        if h.last != last {
            return Err((Fes::InvalidHeaderField, poffset::FLAGS));
        }
        Ok(last)
    }
}

/// Dataset Management's data pointer: as [`check_io_sgl`], but the SGL
/// may describe more than the NR + 1 ranges the command uses, up to the
/// 256 ranges' 4096 bytes. Linux's host sends every DSM with a 4 KiB
/// range buffer (`NVME_DSM_MAX_RANGES` entries) whatever NR says, and
/// Linux's target only refuses an SGL shorter than the ranges
/// (`nvmet_check_data_len_lte`); the controller uses the first
/// `data_len` bytes.
pub fn check_dsm_sgl(sqe: &Sqe, data_len: u32, inline_max: u32) -> Result<Dptr, Status> {
    const MAX_DSM_DATA: u32 = 256 * 16;
    let d = Dptr::of(sqe).map_err(|_| Status::SGL_TYPE_INVALID)?;
    match d {
        Dptr::InCapsule { offset: 0, len } if len >= data_len && len <= inline_max.min(MAX_DSM_DATA) => Ok(d),
        Dptr::Transport { len } if len >= data_len && len <= MAX_DSM_DATA => Ok(d),
        _ => Err(Status::DATA_SGL_LENGTH_INVALID),
    }
}
