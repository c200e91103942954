//! NVMe commands from a hostile host (`dpu-nvme`): a controller model with
//! namespaces, queues and features runs a sequence of submission queue
//! entries through the same checks the firmware's admin service and I/O
//! engines use, and every accepted command must respect the limits those
//! checks promise (LBA range, MDTS, queue IDs and sizes, log page bounds,
//! firmware download pieces in order and inside the staging buffer,
//! commit slots that exist and never the running one replaced).
//!
//! Input: limits (2 bytes), namespaces (1 + 4 x 10 bytes), then operations:
//! a kind byte and a 64-byte SQE (or register values) each.

use crate::input::Input;
use dpu_nvme::features::{Features, Limits};
use dpu_nvme::io::{self, Geometry, Op};
use dpu_nvme::queue::{self, CqPointers, SqPointers};
use dpu_nvme::regs::{self, Cc};
use dpu_nvme::firmware::{self, Assembly, GRANULARITY, SLOTS};
use dpu_nvme::{identify, logs, Sqe, MAX_NSID, MAX_QUEUE_ENTRIES, MAX_TRANSFER, PAGE_SIZE};
use std::collections::BTreeMap;

struct Ctrl {
    limits: Limits,
    ns: Vec<(u32, Geometry)>,
    features: Features,
    /// qid -> (pointers, vector)
    cqs: BTreeMap<u16, (CqPointers, u16)>,
    /// qid -> (pointers, cqid)
    sqs: BTreeMap<u16, (SqPointers, u16)>,
    /// The firmware image being downloaded.
    fw: Assembly,
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let limits = Limits { max_io_queues: 1 + u16::from(i.u8() % 64), vectors: 1 + u16::from(i.u8() % 129) };
    let mut ns = Vec::new();
    for _ in 0..i.below(5) {
        let nsid = u32::from(i.u8()) % (MAX_NSID + 2);
        let blocks = i.u64() >> i.below(64);
        let lba_shift = 9 + i.below(4) as u8;
        if blocks > 0 && !ns.iter().any(|&(n, _)| n == nsid) {
            ns.push((nsid, Geometry { blocks, lba_shift }));
        }
    }
    let mut c = Ctrl { limits, ns, features: Features::default(), cqs: BTreeMap::new(), sqs: BTreeMap::new(), fw: Assembly::new(1 << 20) };
    let mut steps = 0;
    while !i.is_empty() && steps < 256 {
        steps += 1;
        let kind = i.u8();
        let sqe = Sqe(i.fixed::<64>());
        c.step(kind, &sqe);
    }
}

impl Ctrl {
    fn step(&mut self, kind: u8, sqe: &Sqe) {
        match kind % 13 {
            0 => self.io(sqe),
            1 => self.create_cq(sqe),
            2 => self.create_sq(sqe),
            3 => {
                if let Ok(q) = queue::delete_sq(sqe, |q| self.sqs.contains_key(&q)) {
                    assert!(self.sqs.remove(&q).is_some() && q != 0);
                }
            }
            4 => {
                let r = queue::delete_cq(sqe, |q| self.cqs.contains_key(&q), |q| self.sqs.values().any(|&(_, cq)| cq == q));
                if let Ok(q) = r {
                    assert!(!self.sqs.values().any(|&(_, cq)| cq == q), "CQ {q} deleted with an SQ bound to it");
                    assert!(self.cqs.remove(&q).is_some());
                }
            }
            5 => {
                let _ = self.features.get(sqe, self.limits);
            }
            6 => {
                let exist = !self.sqs.is_empty() || !self.cqs.is_empty();
                if let Ok(dw0) = self.features.set(sqe, self.limits, exist) {
                    let (s, c) = self.features.allocated(self.limits);
                    assert!(s < self.limits.max_io_queues && c < self.limits.max_io_queues, "allocated beyond the limit: {dw0:#x}");
                }
            }
            7 => self.log(sqe),
            8 => self.identify(sqe),
            9 => self.enable(sqe),
            10 => self.sq_doorbell(sqe),
            11 => self.cq_doorbell(sqe),
            _ => self.firmware(sqe),
        }
    }

    fn io(&self, sqe: &Sqe) {
        let Ok(cmd) = io::decode(sqe, |n| self.ns.iter().find(|&&(k, _)| k == n).map(|&(_, g)| g)) else { return };
        assert!(u64::from(cmd.data_len) <= MAX_TRANSFER, "{cmd:?} moves more than MDTS");
        match cmd.op {
            Op::Flush => assert_eq!(cmd.data_len, 0),
            Op::Dsm { ranges, .. } => {
                assert!((1..=256).contains(&ranges));
                assert_eq!(cmd.data_len, u32::from(ranges) * 16);
                // The range list as the engine walks it.
                let list = [0xa5u8; 16 * 256];
                for e in list[..cmd.data_len as usize].chunks_exact(16) {
                    let _ = io::dsm_range(e);
                }
            }
            _ => {
                let g = self.ns.iter().find(|&&(k, _)| k == cmd.nsid).expect("decoded for an active namespace").1;
                let end = cmd.slba.checked_add(u64::from(cmd.nlb)).expect("LBA range wraps");
                assert!(end <= g.blocks, "{cmd:?} ends past the namespace ({} blocks)", g.blocks);
                assert!(cmd.nlb >= 1 && cmd.nlb <= 65536);
                if cmd.op != Op::WriteZeroes {
                    assert_eq!(u64::from(cmd.data_len), u64::from(cmd.nlb) << g.lba_shift);
                }
            }
        }
    }

    fn create_cq(&mut self, sqe: &Sqe) {
        let max_qid = self.features.allocated(self.limits).1 + 1;
        let Ok(q) = queue::create_cq(sqe, max_qid, self.limits.vectors, |q| self.cqs.contains_key(&q)) else { return };
        assert!(q.qid >= 1 && q.qid <= max_qid && !self.cqs.contains_key(&q.qid));
        assert!(q.entries >= 2 && u32::from(q.entries) <= MAX_QUEUE_ENTRIES);
        assert!(q.addr != 0 && q.addr % PAGE_SIZE == 0);
        assert!(q.vector < self.limits.vectors);
        self.cqs.insert(q.qid, (CqPointers::new(q.entries), q.vector));
    }

    fn create_sq(&mut self, sqe: &Sqe) {
        let max_qid = self.features.allocated(self.limits).0 + 1;
        let r = queue::create_sq(sqe, max_qid, |q| self.sqs.contains_key(&q), |q| self.cqs.contains_key(&q));
        let Ok(q) = r else { return };
        assert!(q.qid >= 1 && q.qid <= max_qid && !self.sqs.contains_key(&q.qid));
        assert!(self.cqs.contains_key(&q.cqid), "SQ bound to a CQ that does not exist");
        assert!(q.entries >= 2 && u32::from(q.entries) <= MAX_QUEUE_ENTRIES);
        assert!(q.addr != 0 && q.addr % PAGE_SIZE == 0);
        self.sqs.insert(q.qid, (SqPointers::new(q.entries), q.cqid));
    }

    fn log(&self, sqe: &Sqe) {
        let Ok(r) = logs::decode(sqe) else { return };
        let size = if r.lid == logs::LID_ERROR { 64 * logs::ERROR_ENTRIES } else { 512 };
        assert!(r.offset % 4 == 0 && r.offset < size as u64, "{r:?}");
        assert!(r.len >= 4 && u64::from(r.len) <= MAX_TRANSFER);
        // Render the page and take the requested bytes, as the admin service does.
        let mut page = vec![0u8; size];
        let mut errors = logs::ErrorLog::EMPTY;
        errors.record(logs::ErrorEntry { sqid: 1, cid: sqe.cid(), status: 0x4002, ..Default::default() });
        logs::render(r.lid, &mut page, &errors, &logs::Health::default(), &firmware::SlotLog::default());
        let start = r.offset as usize;
        let end = (start + r.len as usize).min(size);
        assert!(page.get(start..end).is_some());
    }

    /// Firmware Image Download (opcode bit 0 set) or Firmware Commit.
    fn firmware(&mut self, sqe: &Sqe) {
        if sqe.opcode() & 1 == 1 {
            let Ok(d) = firmware::decode_download(sqe) else { return };
            assert!(d.len >= 4 && d.len % 4 == 0 && u64::from(d.len) <= MAX_TRANSFER && d.offset % 4 == 0, "{d:?}");
            if self.fw.check(d).is_ok() {
                assert!(d.offset % GRANULARITY == 0 && u64::from(d.offset) + u64::from(d.len) <= u64::from(self.fw.max), "{d:?}");
                assert!(d.offset == 0 || d.offset == self.fw.received, "out of order: {d:?} after {}", self.fw.received);
                self.fw.arrived(d);
            }
        } else {
            let Ok(c) = firmware::decode_commit(sqe) else { return };
            let running = 1 + (sqe.cdw11() & 1) as u8;
            if let Ok(slot) = c.resolve(running) {
                assert!((1..=SLOTS).contains(&slot), "{c:?}");
                assert!(!(c.action.replaces() && slot == running), "the running slot replaced: {c:?}");
            }
        }
    }

    fn identify(&self, sqe: &Sqe) {
        let Ok(req) = identify::decode(sqe) else { return };
        let mut out = [0u8; 4096];
        match req {
            identify::Request::Namespace(n) | identify::Request::Descriptors(n) => {
                assert!(n >= 1 && n <= MAX_NSID);
                if let Some(&(_, g)) = self.ns.iter().find(|&&(k, _)| k == n) {
                    let info = identify::NamespaceInfo {
                        nsid: n,
                        blocks: g.blocks,
                        lba_shift: g.lba_shift,
                        nguid: [1; 16],
                        eui64: [2; 8],
                        deallocated_zeroes: true,
                        shared: false,
                    };
                    identify::namespace(&mut out, &info);
                    identify::descriptors(&mut out, &info);
                }
            }
            identify::Request::ActiveList(after) => {
                let mut ids = self.ns.iter().map(|&(n, _)| n).collect::<Vec<_>>();
                ids.sort();
                identify::active_list(&mut out, &mut ids.into_iter(), after);
                let listed: Vec<u32> = out.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).take_while(|&n| n != 0).collect();
                assert!(listed.iter().all(|&n| n > after), "active list below {after}: {listed:?}");
            }
            identify::Request::Controller => {}
        }
    }

    fn enable(&self, sqe: &Sqe) {
        let (cc, aqa, asq, acq) = (Cc(sqe.dw(0)), sqe.dw(1), sqe.mptr(), sqe.prp1());
        if let Ok(a) = regs::check_enable(cc, aqa, asq, acq) {
            assert!(a.sq_entries >= 2 && a.cq_entries >= 2 && a.sq_entries <= 4096 && a.cq_entries <= 4096);
            assert!(a.sq % PAGE_SIZE == 0 && a.cq % PAGE_SIZE == 0 && a.sq != 0 && a.cq != 0);
        }
        let _ = regs::cc_change(cc, Cc(sqe.dw(2)));
    }

    /// SQ tail doorbell, then the engine fetching what is pending.
    fn sq_doorbell(&mut self, sqe: &Sqe) {
        let Some((_, (sq, _))) = self.sqs.iter_mut().nth(sqe.0[0] as usize % 8) else { return };
        let before = *sq;
        if !sq.set_tail(sqe.dw(1)) {
            assert_eq!(*sq, before, "a rejected doorbell changed the queue");
            return;
        }
        assert!(sq.pending() < sq.entries && sq.contiguous() <= sq.pending());
        let n = sq.contiguous().min(u16::from(sqe.0[8]));
        sq.advance(n);
        assert!(sq.head < sq.entries);
    }

    /// Completions posted by the engine, then a CQ head doorbell.
    fn cq_doorbell(&mut self, sqe: &Sqe) {
        let Some((_, (cq, _))) = self.cqs.iter_mut().nth(sqe.0[0] as usize % 8) else { return };
        for _ in 0..sqe.0[8] % 8 {
            if cq.reserve() {
                let (slot, _) = cq.post();
                assert!(slot < cq.entries);
            }
        }
        if sqe.0[9] & 1 != 0 {
            if cq.reserve() {
                cq.unreserve();
            }
        }
        let before = *cq;
        if !cq.set_head(sqe.dw(1)) {
            assert_eq!(*cq, before, "a rejected doorbell changed the queue");
        }
        assert!(u32::from(cq.occupied()) + u32::from(cq.reserved) < u32::from(cq.entries), "CQ overfilled: {cq:?}");
    }
}
