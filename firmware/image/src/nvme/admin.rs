//! The NVMe admin service (one control-plane core, `ADMIN_HART`).
//!
//! For every function (PF and enabled VFs) it owns the controller
//! registers, the admin queue pair, features, logs and asynchronous
//! events. I/O queues live on data-plane cores: Create I/O CQ picks the
//! least loaded engine, Create I/O SQ goes to its CQ's engine, and the
//! endpoint steers each queue's doorbells there. One admin command per
//! function is in flight at a time; functions are served round robin, so
//! one function's admin traffic cannot stall another's.
//!
//! Firmware Image Download and Firmware Commit (PF only, card booted from
//! flash): pieces are DMAed into the update service's staging buffer;
//! a commit is handed to that service (`crate::fwupdate`, its own core),
//! and its completion posted when the flash work is done.

use crate::bootcfg as config;
use crate::fwupdate;
use super::io::COUNTERS;
use super::live::{self, Change, Outcome};
use super::msg::{self, Done, HostError, ToAdmin, ToEngine};
use super::{io_queues, vectors};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::memory_map::{HARTS, MAX_FUNCTIONS};
use dpu_hal::pcie::{self, Note};
use dpu_hal::regs::{dma as dr, pcie as pr};
use dpu_nvme::admin::{self as shared, AdminState, Event, Reply};
use dpu_nvme::dptr::{PrpWalk, SegList, Step};
use dpu_nvme::features::{self, Features, Limits};
use dpu_nvme::firmware::{self as fw, Assembly, Download};
use dpu_nvme::identify::{ControllerIdentity, NamespaceInfo};
use dpu_nvme::logs::{ErrorEntry, Health};
use dpu_nvme::queue::{self, CqPointers, SqPointers};
use dpu_nvme::regs::{self, off, Cc, CcChange};
use dpu_nvme::sqe::Psdt;
use dpu_nvme::{Cqe, Sqe, Status};
use dpu_ring::{Consumer, Producer};
use dpu_rt::{ConstInit, HartId};

mod activate;
use activate::{Activation, Paused};
pub use activate::MTFA;

const OPC_DELETE_SQ: u8 = shared::opc::DELETE_SQ;
const OPC_CREATE_SQ: u8 = shared::opc::CREATE_SQ;
const OPC_GET_LOG_PAGE: u8 = shared::opc::GET_LOG_PAGE;
const OPC_DELETE_CQ: u8 = shared::opc::DELETE_CQ;
const OPC_CREATE_CQ: u8 = shared::opc::CREATE_CQ;
const OPC_IDENTIFY: u8 = shared::opc::IDENTIFY;
const OPC_ABORT: u8 = shared::opc::ABORT;
const OPC_SET_FEATURES: u8 = shared::opc::SET_FEATURES;
const OPC_AER: u8 = shared::opc::ASYNC_EVENT_REQUEST;
const OPC_FIRMWARE_COMMIT: u8 = fw::OPC_FIRMWARE_COMMIT;
const OPC_FIRMWARE_DOWNLOAD: u8 = fw::OPC_FIRMWARE_DOWNLOAD;

/// Firmware revision reported by an image loaded without the bootloader.
const FIRMWARE_REV: [u8; 8] = *b"0.1.0   ";
/// CAP.TO: 500 ms units.
/// CAP.TO: worst-case time to become ready after CC.EN (500 ms units):
/// 15 s, far above `ATTACH_WAIT`.
const TIMEOUT_500MS: u8 = 30;
/// Enabling waits for the function's remote namespaces to attach over
/// NVMe/TCP at most this long (mtime ticks: 1 s). Then the controller
/// becomes ready anyway: a slow or absent target must not keep a host -
/// or a pre-OS driver booting from another namespace - from using the
/// controller. Identify answers from the configured geometry, and I/O
/// to a namespace still attaching waits for it (`nvmf::IO_RETRY_TICKS`)
/// or fails with a path error the host retries.
const ATTACH_WAIT: u64 = dpu_hal::memory_map::TIMEBASE_HZ;
const DATA_BUF: usize = 8192;
const DMA_RING: u32 = 256;
/// Queue IDs tracked (admin + 64 I/O).
const QIDS: usize = 65;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cur {
    Idle,
    /// Admin SQE being fetched.
    Fetching,
    /// Fetched; waiting to run (e.g. the data buffer is busy).
    Ready,
    /// Waiting for engines (queue create/delete, abort).
    Waiting,
    /// PRP list of the data buffer being fetched.
    Listing,
    /// Data going to the host.
    Data,
    /// CQE being written.
    Posting,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reset {
    None,
    /// CC.EN cleared: drain engines, then CSTS.RDY = 0.
    Disable,
    /// CC.SHN set: drain, then CSTS.SHST = complete.
    Shutdown,
    /// FLR or VF disable: drain, then re-initialize the registers.
    Function,
}

#[derive(Clone, Copy)]
struct Func {
    present: bool,
    cc: u32,
    csts: u32,
    enabled: bool,
    asq: u64,
    acq: u64,
    sq: SqPointers,
    cq: CqPointers,
    /// Features, error log, held AERs and events, the Changed Namespace
    /// List: the state `dpu_nvme::admin` keeps for every controller.
    admin: AdminState,
    cq_exists: u128,
    sq_exists: u128,
    sq_cq: [u8; QIDS],
    owner: [u8; QIDS],
    io_created: bool,
    /// Host errors not logged while their events were masked (a doorbell
    /// storm logs one line, not thousands), told with the next one logged.
    quiet: u32,
    reset: Reset,
    acks: u16,
    cur: Cur,
    sqe: Sqe,
    /// CQE DW0 of the current command.
    dw0: u32,
    /// Queue being waited for (create/delete).
    pending_qid: u16,
    /// When the host set CC.EN (mtime): CSTS.RDY waits for remote
    /// namespaces at most `ATTACH_WAIT` from here.
    enabled_at: u64,
}

impl Func {
    const INIT: Func = Func {
        present: false,
        cc: 0,
        csts: 0,
        enabled: false,
        asq: 0,
        acq: 0,
        sq: SqPointers { entries: 0, head: 0, tail: 0 },
        cq: CqPointers { entries: 0, tail: 0, head: 0, phase: true, reserved: 0 },
        admin: AdminState::INIT,
        cq_exists: 0,
        sq_exists: 0,
        sq_cq: [0; QIDS],
        owner: [0; QIDS],
        io_created: false,
        quiet: 0,
        reset: Reset::None,
        acks: 0,
        cur: Cur::Idle,
        sqe: Sqe::ZERO,
        dw0: 0,
        pending_qid: 0,
        enabled_at: 0,
    };
}

pub struct Admin {
    funcs: [Func; MAX_FUNCTIONS],
    chan: Option<Channel>,
    to: [Option<Producer<'static, ToEngine, { msg::DEPTH }>>; HARTS],
    from: [Option<Consumer<'static, ToAdmin, { msg::DEPTH }>>; HARTS],
    engines: u16,
    load: [u16; HARTS],
    fetch_area: usize,
    cqe_area: usize,
    data: usize,
    zero: usize,
    list: usize,
    /// Function using the data buffer, if any (a DMA of it is in flight
    /// whenever this is set; a reset leaves it to that DMA to clear).
    data_owner: Option<u16>,
    /// Per function, bumped by every reset: DMA completions carry it, so
    /// one that belongs to a command from before a reset is recognized.
    gens: [u16; MAX_FUNCTIONS],
    walk: Option<PrpWalk>,
    segs: SegList,
    data_len: u32,
    next: usize,
    kick: bool,
    /// Functions enabled by the host whose remote namespaces are not
    /// attached yet: CSTS.RDY waits for them (bit f).
    awaiting: u128,
    /// Earliest end of such a wait (mtime; `u64::MAX`: none).
    timer: u64,
    /// Where host data of the transfer in progress goes (Firmware Image
    /// Download: the staging buffer); `None`: data goes to the host.
    recv_to: Option<u64>,
    /// The download piece whose data is moving.
    download: Option<Download>,
    /// The image downloaded so far (PF).
    assembly: Assembly,
    fw_tx: Option<Producer<'static, fwupdate::Request, 4>>,
    fw_rx: Option<Consumer<'static, fwupdate::Reply, 4>>,
    /// A commit is with the update service (it reads the staging buffer).
    fw_busy: bool,
    fw_tag: u32,
    /// The commit the PF waits for.
    fw_commit: Option<fw::Commit>,
    /// The namespaces attached at run time (this core's copy).
    live: live::Table,
    changes: Option<Consumer<'static, Change, { live::DEPTH }>>,
    outcomes: Option<Producer<'static, Outcome, { live::DEPTH }>>,
    /// Detaches waiting for engines: (function, nsid, engines still to answer).
    detaches: [(u16, u32, u16); DETACHES],
    ndetaches: usize,
    /// The commit the PF waits for is action 011b of another slot.
    fw_now: bool,
    /// CID of a commit with the update service that does not activate now:
    /// the PF's admin queue goes on meanwhile (writing a slot takes
    /// seconds); `fw_done` gets its status when the service replies.
    fw_parked: Option<u16>,
    /// The parked commit's completion (CID, status), posted by `step`
    /// when the PF's admin queue is between commands.
    fw_done: Option<(u16, Status)>,
    /// Firmware activation without reset (`activate`).
    activation: Activation,
    /// Per function, its queues reported by the engines while pausing,
    /// or read from a handover record (by QID; DDR, taken for a function
    /// when an activation first needs it: the hot state stays small in
    /// SMEM and an ordinary boot spends nothing).
    paused: [Option<&'static mut [Paused; QIDS]>; MAX_FUNCTIONS],
    /// The Firmware Activation Starting notice's CQE is being written.
    notice_posting: bool,
    /// Where the handover record is built / read (DDR, taken when an
    /// activation or a restore first needs it).
    handover_buf: Option<&'static mut [u8]>,
}

/// Detaches in progress at once (more wait in the change ring).
const DETACHES: usize = 8;

impl ConstInit for Admin {
    const INIT: Admin = Admin {
        funcs: [Func::INIT; MAX_FUNCTIONS],
        chan: None,
        to: [const { None }; HARTS],
        from: [const { None }; HARTS],
        engines: 0,
        load: [0; HARTS],
        fetch_area: 0,
        cqe_area: 0,
        data: 0,
        zero: 0,
        list: 0,
        data_owner: None,
        gens: [0; MAX_FUNCTIONS],
        walk: None,
        segs: SegList::new(),
        data_len: 0,
        next: 0,
        kick: false,
        awaiting: 0,
        timer: u64::MAX,
        recv_to: None,
        download: None,
        assembly: Assembly::new(fwupdate::MAX_IMAGE),
        fw_tx: None,
        fw_rx: None,
        fw_busy: false,
        fw_tag: 0,
        fw_commit: None,
        live: live::Table::EMPTY,
        changes: None,
        outcomes: None,
        detaches: [(0, 0, 0); DETACHES],
        ndetaches: 0,
        fw_now: false,
        fw_parked: None,
        fw_done: None,
        activation: Activation::None,
        paused: [const { None }; MAX_FUNCTIONS],
        notice_posting: false,
        handover_buf: None,
    };
}

// DMA cookies: kind << 28 | generation (12 bits) << 16 | function.
const K_FETCH: u32 = 1;
const K_LIST: u32 = 2;
const K_DATA: u32 = 3;
const K_CQE: u32 = 4;

/// The admin service's main loop (never returns).
pub fn run(hart: HartId) -> ! {
    let Some(a) = dpu_rt::alloc::smem_static::<Admin>() else {
        defmt::error!("nvme admin: state does not fit in SMEM");
        dpu_rt::park();
    };
    match config::load() {
        Ok(n) => {
            defmt::info!("nvme: {=usize} namespace(s) configured", n);
            // Encrypted namespaces: their keys into the crypto engines.
            crate::block::crypto::load_keys(hart.0);
            // Namespaces on local SSDs: those SSDs brought up.
            crate::ssd::wake_service();
            // The data-plane reactors set up their devices for these
            // namespaces now, not at their first I/O.
            for h in crate::net::FIRST_DATA_HART..crate::net::FIRST_DATA_HART + crate::net::DATA_CORES {
                crate::channel::ring(h);
            }
        }
        Err(e) => {
            defmt::error!("nvme: boot configuration rejected: {}", e);
            // Serving nothing would only show up as I/O errors later: end
            // the run with the reason (the simulator prints it).
            let (reason, index) = e.code();
            dpu_hal::finisher::config_rejected(reason, index);
        }
    }
    if !a.start(hart.0) {
        defmt::error!("nvme admin: cannot allocate DMA channel or buffers");
        dpu_rt::park();
    }
    crate::channel::enable_doorbell(hart.0);
    dpu_hal::csr::mie_set(dpu_hal::regs::csr::MIP_MTIP);
    if !a.restore() {
        a.init_function(0);
    }
    defmt::info!("nvme admin: PF ready ({=u16} data-plane engines)", a.engines);
    loop {
        crate::channel::take_doorbells(hart.0);
        if a.poll() == 0 {
            // Woken by a doorbell, or by the timer when a function's wait
            // for its remote namespaces runs out.
            dpu_hal::clint::set_timer(hart.0, a.timer);
            dpu_hal::csr::wfi();
        }
    }
}

fn bit(q: u16) -> u128 {
    1u128 << (q & 127)
}

impl Admin {
    fn start(&mut self, hart: usize) -> bool {
        let ring = dpu_rt::alloc::smem(Channel::memory(DMA_RING), 64);
        let fetch = dpu_rt::alloc::smem(MAX_FUNCTIONS * 64, 64);
        let cqes = dpu_rt::alloc::smem(MAX_FUNCTIONS * 16, 64);
        let data = dpu_rt::alloc::smem(DATA_BUF, 4096);
        let zero = dpu_rt::alloc::smem(4096, 4096);
        let list = dpu_rt::alloc::smem(4096, 4096);
        let (Some(ring), Some(fetch), Some(cqes), Some(data), Some(zero), Some(list)) = (ring, fetch, cqes, data, zero, list) else {
            return false;
        };
        dpu_hal::mem::write(zero, &[0u8; 4096]);
        let chan = Channel::start(super::dma_channel(hart), ring, DMA_RING, Some(hart));
        if !chan.running() {
            return false;
        }
        self.chan = Some(chan);
        self.fetch_area = fetch;
        self.cqe_area = cqes;
        self.data = data;
        self.zero = zero;
        self.list = list;
        if let Some((tx, rx)) = fwupdate::admin_ends() {
            self.fw_tx = Some(tx);
            self.fw_rx = Some(rx);
        }
        if let Some((rx, tx)) = live::admin_ends() {
            self.changes = Some(rx);
            self.outcomes = Some(tx);
        }
        for h in 0..HARTS {
            if !HartId(h).is_control_plane() {
                if let Some((tx, rx)) = msg::admin_ends(h) {
                    self.to[h] = Some(tx);
                    self.from[h] = Some(rx);
                    self.engines += 1;
                }
            }
        }
        true
    }

    fn chan(&mut self) -> &mut Channel {
        self.chan.as_mut().expect("started")
    }

    fn cookie_gen(&self, f: u16) -> u32 {
        u32::from(self.gens[usize::from(f)]) & 0xfff
    }

    /// DMA cookie of `kind` for function `f`'s current generation.
    fn cookie(&self, kind: u32, f: u16) -> u32 {
        (kind << 28) | (self.cookie_gen(f) << 16) | u32::from(f)
    }

    /// Writes the power-on register values of function `f` and makes it
    /// visible to the host.
    fn init_function(&mut self, f: u16) {
        let mut fun = Func::INIT;
        fun.present = true;
        self.funcs[usize::from(f)] = fun;
        pcie::set_admin_hart(f, super::ADMIN_HART);
        pcie::bar_write64(f, off::CAP, regs::cap(TIMEOUT_500MS));
        pcie::bar_write32(f, off::VS, regs::VERSION);
        for r in [off::INTMS, off::INTMC, off::CC, off::CSTS, off::NSSR, off::AQA] {
            pcie::bar_write32(f, r, 0);
        }
        pcie::bar_write64(f, off::ASQ, 0);
        pcie::bar_write64(f, off::ACQ, 0);
        for q in 0..pr::DOORBELLS as u16 {
            pcie::steer(f, q, None);
        }
        pcie::set_ready(f, true);
    }

    fn send(&mut self, hart: usize, m: ToEngine) -> bool {
        let Some(tx) = self.to[hart].as_mut() else { return false };
        if tx.push(m).is_err() {
            return false;
        }
        dpu_hal::mailbox::ring(hart, msg::DOORBELL_NVME);
        true
    }

    fn poll(&mut self) -> usize {
        let mut work = 0;
        while let Some(n) = pcie::pop(super::ADMIN_HART) {
            work += 1;
            self.note(n);
        }
        work += self.engine_messages();
        work += self.fw_replies();
        work += self.live_changes();
        while let Some(c) = self.chan().poll() {
            work += 1;
            let f = (c.cookie & 0xffff) as u16;
            let ok = c.status == dr::ST_OK;
            if usize::from(f) >= MAX_FUNCTIONS {
                continue;
            }
            if (c.cookie >> 16) & 0xfff != self.cookie_gen(f) {
                // Issued before a reset of the function: its command is
                // gone. Only the data buffer it held is given back.
                if matches!(c.cookie >> 28, K_LIST | K_DATA) && self.data_owner == Some(f) {
                    self.data_owner = None;
                    self.walk = None;
                    self.recv_to = None;
                    self.download = None;
                }
                continue;
            }
            match c.cookie >> 28 {
                K_FETCH => self.fetched(f, ok),
                K_LIST => self.listed(f, c.bytes, ok),
                K_DATA => self.data_done(f, ok),
                K_CQE => self.posted(f),
                _ => {}
            }
        }
        self.timer = u64::MAX;
        if self.awaiting != 0 {
            let now = dpu_hal::csr::time();
            let mut next = u64::MAX;
            let mut bits = self.awaiting;
            while bits != 0 {
                let f = bits.trailing_zeros() as u16;
                bits &= bits - 1;
                let fi = usize::from(f);
                let give_up = self.funcs[fi].enabled_at + ATTACH_WAIT;
                if !self.funcs[fi].enabled || self.funcs[fi].cc & 1 == 0 {
                    self.awaiting &= !(1u128 << f);
                } else if config::function_ready(f) {
                    self.awaiting &= !(1u128 << f);
                    self.set_csts(f, regs::CSTS_RDY);
                    defmt::info!("nvme fn{=u16}: remote namespaces attached, controller ready", f);
                    work += 1;
                } else if now >= give_up {
                    self.awaiting &= !(1u128 << f);
                    self.set_csts(f, regs::CSTS_RDY);
                    defmt::warn!("nvme fn{=u16}: remote namespaces still attaching; controller ready without them", f);
                    work += 1;
                } else {
                    next = next.min(give_up);
                }
            }
            self.timer = next;
        }
        // Round robin over functions with admin work.
        for i in 0..MAX_FUNCTIONS {
            let f = ((self.next + i) % MAX_FUNCTIONS) as u16;
            work += self.step(f);
        }
        self.next = (self.next + 1) % MAX_FUNCTIONS;
        if self.activation != Activation::None {
            self.activation_step();
        }
        if self.kick {
            self.kick = false;
            self.chan().kick();
        }
        work
    }

    // ------------------------------------------------------------ events

    fn note(&mut self, n: Note) {
        match n {
            Note::Register { function, offset } => self.register(function, u64::from(offset)),
            Note::Doorbell { function, index } => {
                let fun = &mut self.funcs[usize::from(function)];
                let v = pcie::doorbell(function, index);
                let ok = match index {
                    0 if fun.enabled => fun.sq.set_tail(v),
                    1 if fun.enabled => fun.cq.set_head(v),
                    // An I/O queue's doorbell rung before its engine took
                    // it (a queue handed over at a firmware activation):
                    // the engine reads the value when it does.
                    i if (i % 2 == 0 && fun.sq_exists & bit(i / 2) != 0) || (i % 2 == 1 && fun.cq_exists & bit(i / 2) != 0) => return,
                    _ => {
                        // A doorbell of a queue that does not exist.
                        self.async_error(function, HostError::InvalidDoorbell, index / 2);
                        return;
                    }
                };
                if !ok {
                    self.async_error(function, HostError::InvalidDoorbellValue, index / 2);
                }
            }
            Note::Function { function, event } => match u64::from(event) {
                pr::EVENT_VFS_CHANGED => self.vfs_changed(),
                pr::EVENT_FLR => self.start_reset(function, Reset::Function),
                _ => {}
            },
        }
    }

    fn vfs_changed(&mut self) {
        let n = pcie::num_vfs();
        for f in 1..MAX_FUNCTIONS as u16 {
            let present = f <= n;
            let was = self.funcs[usize::from(f)].present;
            if present && !was {
                self.init_function(f);
            } else if !present && was {
                // VF gone: drop its queues everywhere (nothing to answer).
                for h in 0..HARTS {
                    if self.to[h].is_some() {
                        self.send(h, ToEngine::Reset { func: f });
                    }
                }
                self.funcs[usize::from(f)] = Func::INIT;
                self.gens[usize::from(f)] = self.gens[usize::from(f)].wrapping_add(1);
            }
        }
        defmt::info!("nvme admin: {=u16} VF(s) enabled", n);
    }

    fn register(&mut self, f: u16, offset: u64) {
        let fi = usize::from(f);
        if !self.funcs[fi].present {
            return;
        }
        match offset {
            off::CC => {
                let new = Cc(pcie::bar_read32(f, off::CC));
                let old = Cc(self.funcs[fi].cc);
                self.funcs[fi].cc = new.0;
                match regs::cc_change(old, new) {
                    // While a reset is still tearing queues down, the enable
                    // waits for it (`finish_reset` looks at CC again).
                    CcChange::Enable if self.funcs[fi].reset != Reset::None => {}
                    CcChange::Enable => self.enable(f, new),
                    CcChange::Disable => self.start_reset(f, Reset::Disable),
                    CcChange::Shutdown => {
                        self.set_csts(f, (self.funcs[fi].csts & !regs::CSTS_SHST_MASK) | regs::CSTS_SHST_OCCURRING);
                        self.start_reset(f, Reset::Shutdown);
                    }
                    CcChange::None => {}
                }
            }
            // Read-only registers: undo host writes.
            off::CAP | 0x04 => pcie::bar_write64(f, off::CAP, regs::cap(TIMEOUT_500MS)),
            off::VS => pcie::bar_write32(f, off::VS, regs::VERSION),
            off::CSTS => pcie::bar_write32(f, off::CSTS, self.funcs[fi].csts),
            // AQA/ASQ/ACQ are read at enable; INTMS/INTMC do not apply with MSI-X.
            _ => {}
        }
    }

    fn set_csts(&mut self, f: u16, v: u32) {
        self.funcs[usize::from(f)].csts = v;
        pcie::bar_write32(f, off::CSTS, v);
    }

    fn enable(&mut self, f: u16, cc: Cc) {
        let aqa = pcie::bar_read32(f, off::AQA);
        let asq = pcie::bar_read64(f, off::ASQ);
        let acq = pcie::bar_read64(f, off::ACQ);
        match regs::check_enable(cc, aqa, asq, acq) {
            Ok(q) => {
                let fun = &mut self.funcs[usize::from(f)];
                fun.enabled = true;
                fun.asq = q.sq;
                fun.acq = q.cq;
                fun.sq = SqPointers::new(q.sq_entries);
                fun.cq = CqPointers::new(q.cq_entries);
                fun.admin.features = Features::DEFAULT;
                fun.cur = Cur::Idle;
                fun.enabled_at = dpu_hal::csr::time();
                if config::function_ready(f) {
                    self.set_csts(f, regs::CSTS_RDY);
                } else {
                    // Remote namespaces are still being attached: the host
                    // keeps polling CSTS (up to CAP.TO) until they are.
                    self.awaiting |= 1u128 << f;
                }
            }
            Err(e) => {
                defmt::warn!("nvme fn{=u16}: enable refused: {}", f, e);
                self.set_csts(f, regs::CSTS_CFS);
            }
        }
    }

    /// Starts tearing down a function's I/O queues on every engine (at
    /// once when it never had any).
    fn start_reset(&mut self, f: u16, kind: Reset) {
        let fi = usize::from(f);
        self.gens[fi] = self.gens[fi].wrapping_add(1);
        if self.funcs[fi].reset != Reset::None {
            // Already tearing down: every engine was told once and acks
            // once. A Function Level Reset outranks the rest.
            let fun = &mut self.funcs[fi];
            if kind == Reset::Function || fun.reset != Reset::Function {
                fun.reset = kind;
            }
            fun.enabled = false;
            return;
        }
        let mut acks = 0;
        if self.funcs[fi].io_created {
            for h in 0..HARTS {
                if self.to[h].is_some() && self.send(h, ToEngine::Reset { func: f }) {
                    acks += 1;
                }
            }
        }
        let fun = &mut self.funcs[fi];
        fun.reset = kind;
        fun.acks = acks;
        fun.enabled = false;
        if acks == 0 {
            self.finish_reset(f);
        }
    }

    fn finish_reset(&mut self, f: u16) {
        let fi = usize::from(f);
        let kind = self.funcs[fi].reset;
        for q in 1..QIDS as u16 {
            if self.funcs[fi].cq_exists & bit(q) != 0 {
                let o = usize::from(self.funcs[fi].owner[usize::from(q)]);
                self.load[o] = self.load[o].saturating_sub(1);
            }
        }
        for q in 0..pr::DOORBELLS as u16 {
            pcie::steer(f, q, None);
        }
        let keep_cc = self.funcs[fi].cc;
        let fun = &mut self.funcs[fi];
        fun.cq_exists = 0;
        fun.sq_exists = 0;
        fun.io_created = false;
        // Held AERs, pending events and masks go; features to defaults.
        fun.admin.reset();
        if f == 0 {
            // A parked Firmware Commit is dropped with the queue (the
            // update service still finishes it; its reply is ignored).
            self.fw_parked = None;
            self.fw_done = None;
        }
        let fun = &mut self.funcs[fi];
        fun.reset = Reset::None;
        fun.cur = Cur::Idle;
        fun.sq = SqPointers::default();
        fun.cq = CqPointers::default();
        // A data buffer this function holds is still being moved by DMA:
        // the completion (of an older generation) gives it back.
        match kind {
            Reset::Disable => {
                self.set_csts(f, 0);
                // The host set CC.EN again meanwhile (without waiting for
                // CSTS.RDY = 0): enable now.
                let cc = Cc(self.funcs[fi].cc);
                if cc.en() {
                    self.enable(f, cc);
                }
            }
            Reset::Shutdown => {
                self.funcs[fi].cc = keep_cc;
                self.set_csts(f, (self.funcs[fi].csts & !regs::CSTS_SHST_MASK) | regs::CSTS_SHST_COMPLETE);
            }
            Reset::Function => self.init_function(f),
            Reset::None => {}
        }
    }

    fn engine_messages(&mut self) -> usize {
        let mut work = 0;
        for h in 0..HARTS {
            while let Some(m) = self.from[h].as_mut().and_then(|rx| rx.pop()) {
                work += 1;
                match m {
                    ToAdmin::Done { func, what, qid } => self.engine_done(func, what, qid, h),
                    ToAdmin::AbortResult { func, aborted } => {
                        let fun = &mut self.funcs[usize::from(func)];
                        if fun.cur == Cur::Waiting && fun.sqe.opcode() == OPC_ABORT {
                            fun.dw0 = u32::from(!aborted);
                            self.post(func, Status::SUCCESS);
                        }
                    }
                    ToAdmin::Error { func, kind, qid } => self.async_error(func, kind, qid),
                    ToAdmin::Detached { func, nsid } => self.engine_detached(func, nsid),
                    ToAdmin::Queue { func, qid, cq, entries, addr, link, irq, a, b, phase } => self.queue_report(func, qid, cq, entries, addr, link, irq, a, b, phase),
                }
            }
        }
        work
    }

    /// Applies the management server's changes (`super::live`): this
    /// core's copy first, then every engine's, by message.
    fn live_changes(&mut self) -> usize {
        let mut work = 0;
        // A detach is taken only when it can be tracked.
        while self.ndetaches < DETACHES {
            let Some(c) = self.changes.as_mut().and_then(|rx| rx.pop()) else { break };
            work += 1;
            match c {
                Change::Attach(ns) => self.live_attach(ns),
                Change::Detach { function, nsid } => self.live_detach(function, nsid),
            }
        }
        work
    }

    fn live_attach(&mut self, ns: live::LiveNs) {
        if config::namespace(ns.function, ns.nsid).is_some() || !self.live.insert(ns.namespace()) {
            defmt::error!("nvme fn{=u16}: live namespace {=u32} refused (taken or table full)", ns.function, ns.nsid);
            return self.tell_mgmt(Outcome::Refused { function: ns.function, nsid: ns.nsid });
        }
        for h in 0..HARTS {
            if self.to[h].is_some() && !self.send(h, ToEngine::Attach { ns }) {
                defmt::error!("nvme: engine {=usize} did not take the attach of fn{=u16} nsid {=u32}", h, ns.function, ns.nsid);
            }
        }
        match ns.backend {
            live::LiveBackend::Ram { .. } => defmt::info!("nvme fn{=u16}: namespace {=u32} attached (RAM, {=u64} blocks of {=u32} B)", ns.function, ns.nsid, ns.blocks, 1u32 << ns.block_shift),
            live::LiveBackend::Remote { ctrl, nsid } => defmt::info!(
                "nvme fn{=u16}: namespace {=u32} attached (remote controller {=u16} nsid {=u32}, {=u64} blocks of {=u32} B)",
                ns.function, ns.nsid, ctrl, nsid, ns.blocks, 1u32 << ns.block_shift
            ),
            live::LiveBackend::Ec { vol } => defmt::info!(
                "nvme fn{=u16}: namespace {=u32} attached (erasure-coded volume {=u16}, {=u64} blocks of {=u32} B)",
                ns.function, ns.nsid, vol, ns.blocks, 1u32 << ns.block_shift
            ),
        }
        self.namespace_changed(ns.function, ns.nsid);
        self.tell_mgmt(Outcome::Attached { function: ns.function, nsid: ns.nsid });
    }

    fn live_detach(&mut self, f: u16, nsid: u32) {
        if !self.live.remove(f, nsid) {
            return self.tell_mgmt(Outcome::Drained { function: f, nsid });
        }
        let mut told = 0;
        for h in 0..HARTS {
            if self.to[h].is_some() {
                if self.send(h, ToEngine::Detach { func: f, nsid }) {
                    told += 1;
                } else {
                    defmt::error!("nvme: engine {=usize} did not take the detach of fn{=u16} nsid {=u32}", h, f, nsid);
                }
            }
        }
        defmt::info!("nvme fn{=u16}: namespace {=u32} detached; waiting for {=u16} engine(s) to drain it", f, nsid, told);
        self.namespace_changed(f, nsid);
        if told == 0 {
            return self.tell_mgmt(Outcome::Drained { function: f, nsid });
        }
        self.detaches[self.ndetaches] = (f, nsid, told);
        self.ndetaches += 1;
    }

    /// An engine holds no command of detached namespace `nsid` of `f` any more.
    fn engine_detached(&mut self, f: u16, nsid: u32) {
        let Some(i) = self.detaches[..self.ndetaches].iter().position(|d| d.0 == f && d.1 == nsid) else { return };
        self.detaches[i].2 -= 1;
        if self.detaches[i].2 == 0 {
            self.detaches.copy_within(i + 1..self.ndetaches, i);
            self.ndetaches -= 1;
            defmt::info!("nvme fn{=u16}: namespace {=u32} drained", f, nsid);
            self.tell_mgmt(Outcome::Drained { function: f, nsid });
        }
    }

    fn tell_mgmt(&mut self, o: Outcome) {
        if let Some(tx) = self.outcomes.as_mut() {
            if tx.push(o).is_err() {
                defmt::warn!("nvme: management ring full, outcome dropped");
            }
            dpu_hal::mailbox::ring(crate::net::NET_HART, crate::channel::DOORBELL_RING);
        }
    }

    /// Namespace `nsid` of function `f` was attached or detached: it goes
    /// on the Changed Namespace List, and a Namespace Attribute Changed
    /// notice (type 2h, info 00h, log page 04h; NVMe Base 2.0 §5.2.1)
    /// is raised if the host enabled it (Asynchronous Event
    /// Configuration bit 8) and has not been told since it last read
    /// the list.
    fn namespace_changed(&mut self, f: u16, nsid: u32) {
        let Some(fun) = self.funcs.get_mut(usize::from(f)).filter(|x| x.present) else { return };
        fun.admin.namespace_changed(nsid);
    }

    fn engine_done(&mut self, f: u16, what: Done, qid: u16, hart: usize) {
        if self.activation_ack(what) {
            return;
        }
        let fi = usize::from(f);
        if what == Done::Reset {
            let fun = &mut self.funcs[fi];
            if fun.reset != Reset::None && fun.acks > 0 {
                fun.acks -= 1;
                if fun.acks == 0 {
                    self.finish_reset(f);
                }
            }
            return;
        }
        let fun = &mut self.funcs[fi];
        if fun.reset != Reset::None {
            // The reset drops what the engine just did; a CQ it created
            // is not in `cq_exists`, so its load is given back here.
            if what == Done::CreateCq {
                self.load[hart] = self.load[hart].saturating_sub(1);
            }
            return;
        }
        if fun.cur != Cur::Waiting || fun.pending_qid != qid {
            return;
        }
        match what {
            Done::CreateCq => {
                fun.cq_exists |= bit(qid);
                fun.owner[usize::from(qid)] = hart as u8;
                fun.io_created = true;
                pcie::steer(f, 2 * qid + 1, Some(hart));
            }
            Done::CreateSq => {
                fun.sq_exists |= bit(qid);
                fun.io_created = true;
                pcie::steer(f, 2 * qid, Some(hart));
            }
            Done::DeleteSq => {
                fun.sq_exists &= !bit(qid);
                pcie::steer(f, 2 * qid, None);
            }
            Done::DeleteCq => {
                fun.cq_exists &= !bit(qid);
                self.load[hart] = self.load[hart].saturating_sub(1);
                pcie::steer(f, 2 * qid + 1, None);
            }
            Done::Reset | Done::Paused => {}
        }
        self.post(f, Status::SUCCESS);
    }

    /// Records a host error and raises an async event (error type, §5.2).
    fn async_error(&mut self, f: u16, kind: HostError, qid: u16) {
        let fi = usize::from(f);
        if fi >= MAX_FUNCTIONS || !self.funcs[fi].present {
            return;
        }
        let info = match kind {
            HostError::InvalidDoorbell => 0x00,
            HostError::InvalidDoorbellValue => 0x01,
        };
        let fun = &mut self.funcs[fi];
        fun.admin.errors.record(ErrorEntry { sqid: qid, cid: 0xffff, status: 0, ..Default::default() });
        if fun.admin.masked(shared::event_type::ERROR) {
            // Error events are masked until the host reads the Error
            // Information log (the entry above is there for it); so is
            // the log line.
            fun.quiet = fun.quiet.saturating_add(1);
            return;
        }
        defmt::warn!("nvme fn{=u16}: {} on queue {=u16} ({=u32} more not logged before it)", f, kind, qid, fun.quiet);
        fun.quiet = 0;
        fun.admin.queue_event(Event::error(info));
    }

    // ------------------------------------------------------------ commands

    /// Advances function `f`'s admin queue; returns work done.
    fn step(&mut self, f: u16) -> usize {
        let fi = usize::from(f);
        // Called for every function on every pass: read the few fields it
        // needs in place (a copy of the whole state, error log included,
        // made each pass of the service cost tens of microseconds).
        let fun = &self.funcs[fi];
        if !fun.present || !fun.enabled || fun.reset != Reset::None {
            return 0;
        }
        let (cur, room, pending) = (fun.cur, fun.cq.available() > 0, fun.sq.pending());
        // Complete a parked Firmware Commit, then aborted AERs, then
        // deliver async events to parked AERs, when the queue is quiet.
        if f == 0 && cur == Cur::Idle && room {
            if let Some((cid, st)) = self.fw_done.take() {
                self.post_held(f, OPC_FIRMWARE_COMMIT, cid, 0, st);
                return 1;
            }
        }
        let fun = &self.funcs[fi];
        if cur == Cur::Idle && room && fun.admin.completion_due() {
            if let Some(c) = self.funcs[fi].admin.next_completion() {
                self.post_held(f, OPC_AER, c.cid, c.dw0, c.status);
                return 1;
            }
        }
        match cur {
            // No new admin command while an activation pauses or
            // restores the controllers (the notices still go out).
            Cur::Idle if pending > 0 && room && self.activation == Activation::None => {
                let fun = &mut self.funcs[fi];
                fun.cq.reserve();
                let host = fun.asq + 64 * u64::from(fun.sq.head);
                fun.sq.advance(1);
                fun.cur = Cur::Fetching;
                let local = (self.fetch_area + fi * 64) as u64;
                self.dma(Desc { host, local, len: 64, function: f, op: dr::OP_H2D, flags: dr::FLAG_END, msix: 0, cookie: self.cookie(K_FETCH, f) });
                1
            }
            Cur::Ready => {
                self.execute(f);
                1
            }
            _ => 0,
        }
    }

    fn dma(&mut self, d: Desc) {
        if !self.chan().push(&d) {
            defmt::error!("nvme admin: DMA ring full");
        }
        self.kick = true;
    }

    fn fetched(&mut self, f: u16, ok: bool) {
        let fi = usize::from(f);
        if self.funcs[fi].cur != Cur::Fetching {
            return;
        }
        if !ok {
            // The admin SQ is unreadable: nothing to complete against.
            self.funcs[fi].cq.unreserve();
            self.funcs[fi].cur = Cur::Idle;
            self.set_csts(f, self.funcs[fi].csts | regs::CSTS_CFS);
            defmt::warn!("nvme fn{=u16}: admin SQ unreadable, controller fatal", f);
            return;
        }
        let mut sqe = Sqe::ZERO;
        dpu_hal::mem::read(self.fetch_area + fi * 64, &mut sqe.0);
        self.funcs[fi].sqe = sqe;
        self.funcs[fi].cur = Cur::Ready;
        self.execute(f);
    }

    fn limits(f: u16) -> Limits {
        Limits { max_io_queues: io_queues(f), vectors: vectors(f) }
    }

    fn execute(&mut self, f: u16) {
        let fi = usize::from(f);
        let sqe = self.funcs[fi].sqe;
        self.funcs[fi].dw0 = 0;
        if sqe.fuse() != 0 || sqe.psdt() != Psdt::Prp {
            // No fused admin commands; admin commands use PRPs (NVMe/PCIe).
            return self.post(f, Status::INVALID_FIELD);
        }
        let r: Result<(), Status> = match sqe.opcode() {
            OPC_CREATE_CQ => self.create_cq(f, &sqe),
            OPC_CREATE_SQ => self.create_sq(f, &sqe),
            OPC_DELETE_SQ => self.delete_sq(f, &sqe),
            OPC_DELETE_CQ => self.delete_cq(f, &sqe),
            // Firmware update: the PF of a card booted from flash only
            // (Identify Controller OACS bit 2 says so; a VF is a secondary
            // controller and has no firmware of its own).
            OPC_FIRMWARE_DOWNLOAD if f == 0 && fwupdate::available() => self.fw_download(f, &sqe),
            OPC_FIRMWARE_COMMIT if f == 0 && fwupdate::available() => self.fw_commit(f, &sqe),
            _ => self.common(f, &sqe),
        };
        if let Err(st) = r {
            self.post(f, st);
        }
    }

    /// The admin commands every controller serves alike (`dpu_nvme::admin`:
    /// Identify, Get Log Page, Get/Set Features, Abort of an AER,
    /// Asynchronous Event Request); their data goes to the PRPs.
    fn common(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        if matches!(sqe.opcode(), OPC_IDENTIFY | OPC_GET_LOG_PAGE) && self.data_owner.is_some() {
            // Data buffer busy: retry on a later pass (before the command
            // changes any state: a log read clears events).
            self.funcs[fi].cur = Cur::Ready;
            return Ok(());
        }
        let mut buf = [0u8; 4096];
        let ctx = PcieController::new(f, &self.live, self.funcs[fi].io_created);
        let reply = self.funcs[fi].admin.serve(&ctx, sqe, &mut buf);
        match reply {
            Reply::Complete { status, dw0, data_len, .. } => {
                self.funcs[fi].dw0 = dw0;
                if !status.is_success() {
                    return Err(status);
                }
                if sqe.opcode() == OPC_SET_FEATURES {
                    self.features_changed(f, sqe.cdw10() as u8);
                }
                if data_len > 0 {
                    return self.send_data(f, sqe, &buf, data_len);
                }
                self.post(f, Status::SUCCESS);
                Ok(())
            }
            Reply::Held => {
                // Parked: no completion until an event; its CQ slot is released.
                let fun = &mut self.funcs[fi];
                fun.cq.unreserve();
                fun.cur = Cur::Idle;
                Ok(())
            }
            Reply::NotMine if sqe.opcode() == OPC_ABORT => self.abort(f, sqe),
            Reply::NotMine => Err(Status::INVALID_OPCODE),
        }
    }

    /// Sends `len` bytes (the first `data.len()` from `data`, zeros after)
    /// to the command's PRPs.
    fn send_data(&mut self, f: u16, sqe: &Sqe, data: &[u8], len: u32) -> Result<(), Status> {
        self.segs.clear();
        let (walk, step) = PrpWalk::start(sqe.prp1(), sqe.prp2(), len, &mut self.segs)?;
        dpu_hal::mem::write(self.data, &data[..data.len().min(DATA_BUF)]);
        self.data_owner = Some(f);
        self.walk = Some(walk);
        self.recv_to = None;
        self.download = None;
        self.data_len = data.len().min(DATA_BUF) as u32;
        self.data_step(f, step);
        Ok(())
    }

    fn data_step(&mut self, f: u16, step: Step) {
        match step {
            Step::Fetch { addr, len } => {
                self.funcs[usize::from(f)].cur = Cur::Listing;
                let local = self.list as u64;
                let cookie = self.cookie(K_LIST, f);
                self.dma(Desc { host: addr, local, len, function: f, op: dr::OP_H2D, flags: dr::FLAG_END, msix: 0, cookie });
            }
            Step::Done => {
                if self.walk.take().is_none() {
                    return;
                }
                self.funcs[usize::from(f)].cur = Cur::Data;
                let segs = self.segs;
                let mut offset = 0u32;
                let count = segs.len();
                if let Some(to) = self.recv_to {
                    // Host -> card (Firmware Image Download): each PRP
                    // segment lands at its offset in the destination.
                    for (i, &(host, len)) in segs.as_slice().iter().enumerate() {
                        let last = i + 1 == count;
                        self.dma(Desc {
                            host,
                            local: to + u64::from(offset),
                            len,
                            function: f,
                            op: dr::OP_H2D,
                            flags: if last { dr::FLAG_END } else { 0 },
                            msix: 0,
                            cookie: self.cookie(K_DATA, f),
                        });
                        offset += len;
                    }
                    return;
                }
                for (i, &(host, len)) in segs.as_slice().iter().enumerate() {
                    // Data comes from the buffer while it lasts, then from the zero page.
                    let mut done = 0;
                    while done < len {
                        let at = offset + done;
                        let (local, n) = if at < self.data_len {
                            ((self.data + at as usize) as u64, (self.data_len - at).min(len - done))
                        } else {
                            (self.zero as u64, (len - done).min(4096))
                        };
                        let last = i + 1 == count && done + n == len;
                        self.dma(Desc {
                            host: host + u64::from(done),
                            local,
                            len: n,
                            function: f,
                            op: dr::OP_D2H,
                            flags: if last { dr::FLAG_END } else { 0 },
                            msix: 0,
                            cookie: self.cookie(K_DATA, f),
                        });
                        done += n;
                    }
                    offset += len;
                }
            }
        }
    }

    fn listed(&mut self, f: u16, bytes: u32, ok: bool) {
        if !ok {
            self.walk = None;
            self.data_owner = None;
            self.recv_to = None;
            self.download = None;
            return self.post(f, Status::DATA_TRANSFER_ERROR);
        }
        let mut buf = [0u8; 4096];
        let n = (bytes as usize).min(4096);
        dpu_hal::mem::read(self.list, &mut buf[..n]);
        let r = match self.walk.as_mut() {
            Some(w) => w.feed(&buf[..n], &mut self.segs),
            None => Err(Status::INTERNAL_ERROR),
        };
        match r {
            Ok(step) => self.data_step(f, step),
            Err(st) => {
                self.walk = None;
                self.data_owner = None;
                self.recv_to = None;
                self.download = None;
                self.post(f, st);
            }
        }
    }

    fn data_done(&mut self, f: u16, ok: bool) {
        self.data_owner = None;
        self.recv_to = None;
        if let Some(d) = self.download.take() {
            if ok {
                self.assembly.arrived(d);
            }
        }
        self.post(f, if ok { Status::SUCCESS } else { Status::DATA_TRANSFER_ERROR });
    }

    /// Firmware Image Download (NVMe Base 2.0 §5.13): the piece's data
    /// goes by DMA into the staging buffer at its offset. Pieces come in
    /// order (`dpu_nvme::firmware::Assembly`); offset 0 starts a new image.
    fn fw_download(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let d = fw::decode_download(sqe)?;
        if self.data_owner.is_some() || self.fw_busy {
            // The data buffer, or the staging buffer (a commit reads it): later.
            self.funcs[usize::from(f)].cur = Cur::Ready;
            return Ok(());
        }
        self.assembly.check(d)?;
        let base = fwupdate::staging().ok_or(Status::INTERNAL_ERROR)?;
        if d.offset == 0 {
            // A new image: what was received is gone once this lands.
            self.assembly.reset();
        }
        self.segs.clear();
        let (walk, step) = PrpWalk::start(sqe.prp1(), sqe.prp2(), d.len, &mut self.segs)?;
        self.data_owner = Some(f);
        self.walk = Some(walk);
        self.recv_to = Some(base as u64 + u64::from(d.offset));
        self.download = Some(d);
        self.data_step(f, step);
        Ok(())
    }

    /// Firmware Commit (NVMe Base 2.0 §5.12): checked here, carried out
    /// by the update service; the completion comes with its reply.
    fn fw_commit(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let c = fw::decode_commit(sqe)?;
        if self.fw_busy {
            self.funcs[usize::from(f)].cur = Cur::Ready;
            return Ok(());
        }
        let running = crate::boot::info().map_or(1, |i| fwupdate::nvme_slot(i.slot));
        // 000b/001b without a downloaded image: Invalid Firmware Image;
        // 011b without one activates the slot's image (§5.12).
        let plan = c.plan(running, self.assembly.received)?;
        let n = plan.slot;
        let slot = fwupdate::flash_slot(n).ok_or(Status::INVALID_FIRMWARE_SLOT)?;
        let len = if plan.replace { self.assembly.received } else { 0 };
        if plan.replace {
            // Consumed by this commit, whatever its outcome.
            self.assembly.reset();
        }
        self.fw_tag = self.fw_tag.wrapping_add(1);
        let req = fwupdate::Request { tag: self.fw_tag, slot, len, replace: plan.replace, activate: plan.activate };
        if self.fw_tx.as_mut().is_none_or(|tx| tx.push(req).is_err()) {
            return Err(Status::INTERNAL_ERROR);
        }
        dpu_hal::mailbox::ring(fwupdate::FW_HART, fwupdate::DOORBELL_FW);
        defmt::info!("nvme fn{=u16}: firmware commit: action {}, slot {=u8} ({=u32} bytes staged)", f, c.action, n, len);
        self.fw_busy = true;
        self.fw_commit = Some(c);
        self.fw_now = c.action == fw::Action::ReplaceAndActivateNow && plan.activate && n != running;
        let fun = &mut self.funcs[usize::from(f)];
        if self.fw_now {
            // An activation pauses every controller anyway (§5.12: no
            // command is processed while it runs): the queue waits.
            fun.cur = Cur::Waiting;
            fun.pending_qid = 0xfffe;
        } else {
            // Parked: the PF's other admin commands go on while the slot
            // is written (commands complete in any order, §3.3.1); the
            // completion queue slot is reserved again when it completes.
            self.fw_parked = Some(fun.sqe.cid());
            fun.cq.unreserve();
            fun.cur = Cur::Idle;
        }
        Ok(())
    }

    /// Replies of the update service: the commit's completion (unless a
    /// reset of the PF dropped the command meanwhile).
    fn fw_replies(&mut self) -> usize {
        let mut work = 0;
        while let Some(r) = self.fw_rx.as_mut().and_then(|rx| rx.pop()) {
            work += 1;
            self.fw_busy = false;
            let commit = self.fw_commit.take();
            if r.tag != self.fw_tag {
                continue;
            }
            let parked = self.fw_parked.take();
            let fun = &self.funcs[0];
            let waiting = fun.cur == Cur::Waiting && fun.sqe.opcode() == OPC_FIRMWARE_COMMIT;
            if parked.is_none() && !waiting {
                // A reset of the PF dropped the command meanwhile.
                continue;
            }
            let Some(c) = commit else { continue };
            let mut done = c.done_status();
            if r.outcome == fwupdate::Outcome::Done && self.fw_now {
                if r.image_len > activate::MAX_IMAGE_NOW {
                    defmt::warn!("nvme fn0: 011b: a {=u32}-byte image does not activate within MTFA: it activates at the next reset", r.image_len);
                    done = Status::FIRMWARE_REQUIRES_MTFA_VIOLATION;
                } else if let Some(why) = self.activation_refusal() {
                    defmt::warn!("nvme fn0: 011b: {=str}: the image activates at the next reset", why);
                    done = Status::FIRMWARE_REQUIRES_CONVENTIONAL_RESET;
                } else {
                    // 011b: the slot is verified and pending (on trial);
                    // the Commit completes in the new image.
                    defmt::info!("nvme fn0: firmware commit done: activating the new image without reset");
                    self.start_activation();
                    continue;
                }
            }
            let st = match r.outcome {
                fwupdate::Outcome::Done => done,
                fwupdate::Outcome::InvalidImage => Status::INVALID_FIRMWARE_IMAGE,
                fwupdate::Outcome::SlotInUse => Status::INVALID_FIRMWARE_SLOT,
                fwupdate::Outcome::FlashError => Status::INTERNAL_ERROR,
            };
            defmt::info!("nvme fn0: firmware commit done: {} (status {=u8:#x}/{=u8:#x})", r.outcome, st.sct, st.sc);
            match parked {
                Some(cid) => self.fw_done = Some((cid, st)),
                None => self.post(0, st),
            }
        }
        work
    }

    /// Set Features changed feature `fid`: interrupt coalescing settings
    /// go to every engine hosting one of the function's CQs.
    fn features_changed(&mut self, f: u16, fid: u8) {
        let fi = usize::from(f);
        if fid == features::FID_INTERRUPT_COALESCING || fid == features::FID_INTERRUPT_VECTOR_CONFIG {
            for q in 1..QIDS as u16 {
                let fun = &self.funcs[fi];
                if fun.cq_exists & bit(q) == 0 {
                    continue;
                }
                let (thr, time) = fun.admin.features.coalescing(q).unwrap_or((0, 0));
                let owner = usize::from(fun.owner[usize::from(q)]);
                self.send(owner, ToEngine::Coalesce { func: f, qid: q, thr, time });
            }
        }
    }

    fn create_cq(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        let fun = self.funcs[fi];
        let (_, ncqa) = fun.admin.features.allocated(Self::limits(f));
        let c = queue::create_cq(sqe, ncqa + 1, vectors(f), |q| fun.cq_exists & bit(q) != 0)?;
        // Least-loaded engine (ties: lowest hart) among those that have an
        // NVMe/TCP I/O queue to every remote controller this function's
        // namespaces use (a target may grant fewer queues than cores).
        let reach = remote_queue_limit(f, &self.live);
        let Some(owner) = (0..HARTS)
            .filter(|&h| self.to[h].is_some() && crate::net::data_queue(h).is_none_or(|q| q < reach))
            .min_by_key(|&h| self.load[h])
            .or_else(|| (0..HARTS).filter(|&h| self.to[h].is_some()).min_by_key(|&h| self.load[h]))
        else {
            return Err(Status::INTERNAL_ERROR);
        };
        let (thr, time) = fun.admin.features.coalescing(c.vector).unwrap_or((0, 0));
        let m = ToEngine::CreateCq { func: f, qid: c.qid, entries: c.entries, vector: c.vector, irq: c.interrupts, thr, time, addr: c.addr, tail: 0, head: 0, phase: true };
        if !self.send(owner, m) {
            return Err(Status::INTERNAL_ERROR);
        }
        self.load[owner] += 1;
        let fun = &mut self.funcs[fi];
        // From now on an engine may hold a queue of this function: a
        // reset must tell the engines even if it comes before the ack.
        fun.io_created = true;
        fun.cur = Cur::Waiting;
        fun.pending_qid = c.qid;
        Ok(())
    }

    fn create_sq(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        let fun = self.funcs[fi];
        let (nsqa, _) = fun.admin.features.allocated(Self::limits(f));
        let s = queue::create_sq(sqe, nsqa + 1, |q| fun.sq_exists & bit(q) != 0, |q| fun.cq_exists & bit(q) != 0)?;
        let owner = usize::from(fun.owner[usize::from(s.cqid)]);
        if !self.send(owner, ToEngine::CreateSq { func: f, qid: s.qid, entries: s.entries, cqid: s.cqid, addr: s.addr, head: 0 }) {
            return Err(Status::INTERNAL_ERROR);
        }
        let fun = &mut self.funcs[fi];
        fun.sq_cq[usize::from(s.qid)] = s.cqid as u8;
        fun.cur = Cur::Waiting;
        fun.pending_qid = s.qid;
        Ok(())
    }

    fn delete_sq(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        let fun = self.funcs[fi];
        let qid = queue::delete_sq(sqe, |q| fun.sq_exists & bit(q) != 0)?;
        let owner = usize::from(fun.owner[usize::from(fun.sq_cq[usize::from(qid)])]);
        if !self.send(owner, ToEngine::DeleteSq { func: f, qid }) {
            return Err(Status::INTERNAL_ERROR);
        }
        let fun = &mut self.funcs[fi];
        fun.cur = Cur::Waiting;
        fun.pending_qid = qid;
        Ok(())
    }

    fn delete_cq(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        let fun = self.funcs[fi];
        let has_sqs = |q: u16| (1..QIDS as u16).any(|s| fun.sq_exists & bit(s) != 0 && u16::from(fun.sq_cq[usize::from(s)]) == q);
        let qid = queue::delete_cq(sqe, |q| fun.cq_exists & bit(q) != 0, has_sqs)?;
        let owner = usize::from(fun.owner[usize::from(qid)]);
        if !self.send(owner, ToEngine::DeleteCq { func: f, qid }) {
            return Err(Status::INTERNAL_ERROR);
        }
        let fun = &mut self.funcs[fi];
        fun.cur = Cur::Waiting;
        fun.pending_qid = qid;
        Ok(())
    }

    /// Abort of an I/O command (`dpu_nvme::admin` takes those of AERs):
    /// the engine holding its SQ is asked.
    fn abort(&mut self, f: u16, sqe: &Sqe) -> Result<(), Status> {
        let fi = usize::from(f);
        let sqid = sqe.cdw10() as u16;
        let cid = (sqe.cdw10() >> 16) as u16;
        let fun = self.funcs[fi];
        if fun.sq_exists & bit(sqid) == 0 {
            self.funcs[fi].dw0 = 1;
            self.post(f, Status::SUCCESS);
            return Ok(());
        }
        let owner = usize::from(fun.owner[usize::from(fun.sq_cq[usize::from(sqid)])]);
        if !self.send(owner, ToEngine::Abort { func: f, sqid, cid }) {
            return Err(Status::INTERNAL_ERROR);
        }
        let fun = &mut self.funcs[fi];
        fun.cur = Cur::Waiting;
        fun.pending_qid = 0xffff;
        Ok(())
    }

    /// Posts the current command's CQE on the admin CQ (slot reserved at
    /// fetch), with MSI-X vector 0.
    fn post(&mut self, f: u16, status: Status) {
        let fi = usize::from(f);
        let fun = &mut self.funcs[fi];
        if !status.is_success() {
            fun.admin.record_error(0, fun.sqe.cid(), status, fun.sqe.nsid());
        }
        let cqe = Cqe { dw0: fun.dw0, dw1: 0, sq_head: fun.sq.head, sq_id: 0, cid: fun.sqe.cid(), status };
        let (index, phase) = fun.cq.post();
        let host = fun.acq + 16 * u64::from(index);
        fun.cur = Cur::Posting;
        let local = self.cqe_area + fi * 16;
        dpu_hal::mem::write(local, &cqe.bytes(phase));
        self.dma(Desc {
            host,
            local: local as u64,
            len: 16,
            function: f,
            op: dr::OP_D2H,
            flags: dr::FLAG_END | dr::FLAG_MSIX,
            msix: 0,
            cookie: self.cookie(K_CQE, f),
        });
    }

    /// Completes a command held past its fetch (a parked AER or Firmware
    /// Commit; its SQE is gone): takes a CQ slot and posts `status` and
    /// `dw0` for `cid` with [`Admin::post`].
    fn post_held(&mut self, f: u16, opcode: u8, cid: u16, dw0: u32, status: Status) {
        let fun = &mut self.funcs[usize::from(f)];
        fun.cq.reserve();
        fun.sqe = held_sqe(opcode, cid);
        fun.dw0 = dw0;
        self.post(f, status);
    }

    fn posted(&mut self, f: u16) {
        if f == 0 && self.notice_posting {
            // The Firmware Activation Starting notice; the Commit waits.
            self.notice_posting = false;
            return;
        }
        let fun = &mut self.funcs[usize::from(f)];
        if fun.cur == Cur::Posting {
            fun.cur = Cur::Idle;
        }
    }
}


/// The SQE a held command is completed against: its opcode and CID.
fn held_sqe(opcode: u8, cid: u16) -> Sqe {
    let mut sqe = Sqe::ZERO;
    sqe.0[0] = opcode;
    sqe.0[2..4].copy_from_slice(&cid.to_le_bytes());
    sqe
}

/// Data-plane cores with a queue index below this have an NVMe/TCP I/O
/// queue to every live remote controller that serves a namespace of
/// function `f` (the smallest grant among them; `usize::MAX` when none is
/// live yet or the function has no remote namespace): the boot
/// configuration's namespaces and those attached at run time (`live`).
fn remote_queue_limit(f: u16, live: &live::Table) -> usize {
    let grant = |ns: &config::Namespace| {
        config::remote_ctrls(ns)
            .map(|ctrl| crate::nvmf::published(usize::from(ctrl)))
            .filter(|p| p.up)
            .map(|p| p.queues as usize)
            .min()
            .unwrap_or(usize::MAX)
    };
    let boot = config::namespaces().filter(|ns| ns.function == f).map(grant).min().unwrap_or(usize::MAX);
    let run_time = live.iter().filter(|ns| ns.function == f).map(grant).min().unwrap_or(usize::MAX);
    boot.min(run_time)
}

/// The running image's revision (Identify Controller FR): the version
/// the bootloader handed over, or [`FIRMWARE_REV`] without one.
fn running_revision() -> [u8; 8] {
    crate::boot::info().map_or(FIRMWARE_REV, |i| i.version.revision_string())
}

/// A PCIe function's controller as `dpu_nvme::admin` sees it: its
/// namespaces (boot configuration, then those attached at run time),
/// identity, health counters (summed over the engines), firmware slots.
struct PcieController<'a> {
    f: u16,
    live: &'a live::Table,
    io_created: bool,
    serial: [u8; 20],
    nqn: [u8; 28],
    revision: [u8; 8],
}

impl<'a> PcieController<'a> {
    const NQN_PREFIX: &'static [u8] = b"nqn.2026-11.io.dpu:ctrl-fn";

    fn new(f: u16, live: &'a live::Table, io_created: bool) -> PcieController<'a> {
        let hex = b"0123456789abcdef";
        let digits = [hex[usize::from(f >> 4) & 15], hex[usize::from(f) & 15]];
        let mut serial = [b' '; 20];
        let tag = *b"DPU0000000000000FN";
        serial[..tag.len()].copy_from_slice(&tag);
        serial[18..20].copy_from_slice(&digits);
        let mut nqn = [0u8; 28];
        let pre = Self::NQN_PREFIX;
        nqn[..pre.len()].copy_from_slice(pre);
        nqn[pre.len()..pre.len() + 2].copy_from_slice(&digits);
        PcieController { f, live, io_created, serial, nqn, revision: running_revision() }
    }
}

impl shared::Context for PcieController<'_> {
    fn identity(&self) -> ControllerIdentity<'_> {
        ControllerIdentity {
            vid: dpu_hal::memory_map::PCI_VENDOR_ID,
            ssvid: dpu_hal::memory_map::PCI_VENDOR_ID,
            serial: core::str::from_utf8(&self.serial).unwrap_or("DPU"),
            model: "DPU NVMe Controller",
            firmware: core::str::from_utf8(&self.revision).unwrap_or(""),
            cntlid: self.f + 1,
            subnqn: core::str::from_utf8(&self.nqn[..Self::NQN_PREFIX.len() + 2]).unwrap_or(""),
            acl: shared::ACL,
            aerl: (shared::AER_SLOTS - 1) as u8,
            elpe: (dpu_nvme::logs::ERROR_ENTRIES - 1) as u8,
            firmware_update: self.f == 0 && fwupdate::available(),
            // Every controller is paused by an activation without reset.
            mtfa: if fwupdate::available() { MTFA } else { 0 },
        }
    }

    fn max_nsid(&self) -> u32 {
        config::MAX_NSID
    }

    fn namespace(&self, n: u32) -> Option<NamespaceInfo> {
        let f = self.f;
        let ns = config::namespace(f, n).copied().or_else(|| self.live.get(f, n).copied())?;
        let mut nguid = [0u8; 16];
        nguid[0..4].copy_from_slice(b"DPU\0");
        nguid[4..6].copy_from_slice(&f.to_be_bytes());
        nguid[12..16].copy_from_slice(&n.to_be_bytes());
        let mut eui = [0u8; 8];
        eui[0..2].copy_from_slice(&f.to_be_bytes());
        eui[4..8].copy_from_slice(&n.to_be_bytes());
        eui[2] = 0xd9;
        // RAM namespaces zero deallocated blocks; a remote one does what
        // its target does (not relayed: "not reported").
        let deallocated_zeroes = matches!(ns.backend, config::Backend::Ram(_));
        Some(NamespaceInfo { nsid: n, blocks: ns.geometry.blocks, lba_shift: ns.geometry.block_shift, nguid, eui64: eui, deallocated_zeroes, shared: false })
    }

    fn health(&self) -> Health {
        let mut health = Health::default();
        for h in 0..HARTS {
            use core::sync::atomic::Ordering::Relaxed;
            let c = &COUNTERS[h][usize::from(self.f)];
            health.read_commands += c.read_cmds.load(Relaxed);
            health.write_commands += c.write_cmds.load(Relaxed);
            health.bytes_read += c.bytes_read.load(Relaxed);
            health.bytes_written += c.bytes_written.load(Relaxed);
        }
        health.power_cycles = 1;
        health
    }

    fn firmware_slots(&self) -> Option<fw::SlotLog> {
        Some(if fwupdate::available() {
            fwupdate::slot_log()
        } else {
            let mut l = fw::SlotLog { active: 1, ..Default::default() };
            l.revisions[0] = Some(FIRMWARE_REV);
            l
        })
    }

    fn limits(&self) -> Limits {
        Admin::limits(self.f)
    }

    fn io_queues_exist(&self) -> bool {
        self.io_created
    }
}
