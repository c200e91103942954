//! The firmware's NVMe/TCP host queue (`dpu_nvme_tcp::host::HostQueue`)
//! fed what a hostile target sends: a byte stream delivered in pieces of
//! arbitrary sizes, interleaved with the host starting reads and writes.
//! The queue must never panic, never hand the caller data outside a
//! command's transfer, complete each command at most once, and once it
//! reports a fatal error, accept nothing more.
//!
//! Input: digests asked for (1 byte), then records: a kind byte and its
//! fields. Kinds: start a read or write (CID, length, in-capsule bytes),
//! deliver the next stream bytes (a length, then that many bytes; the
//! caller moves data in sub-pieces whose size comes from the input), or
//! answer an R2T.

use crate::input::Input;
use dpu_nvme_tcp::fabrics::io;
use dpu_nvme_tcp::host::{Event, HostQueue, State, Want};
use dpu_nvme_tcp::pdu::Digests;
use dpu_nvme_tcp::sgl::Dptr;

const N: usize = 8;

#[derive(Clone, Copy, Default)]
struct Cmd {
    active: bool,
    write: bool,
    len: u32,
    /// Read data delivered so far.
    got: u32,
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let d = i.u8();
    let mut q = HostQueue::<N>::new(1, Digests { header: d & 1 != 0, data: d & 2 != 0 });
    let mut hdr = [0u8; 128];
    q.icreq(&mut hdr).expect("ICReq fits 128 bytes");
    let mut cmds = [Cmd::default(); N];
    // Bytes received but not yet consumed by the queue.
    let mut pending: Vec<u8> = Vec::new();
    let mut steps = 0;
    while !i.is_empty() && steps < 512 {
        steps += 1;
        match i.u8() % 4 {
            0 => {
                let cid = i.below(N) as u16;
                let write = i.bool();
                let len = 1 + i.below(64 * 1024) as u32;
                let in_capsule = if write && i.bool() { len.min(8192) } else { 0 };
                let sqe = if write {
                    let dptr = if in_capsule > 0 { Dptr::in_capsule(in_capsule) } else { Dptr::Transport { len } };
                    io::write(cid, 1, 0, (len.div_ceil(512) - 1) as u16, dptr)
                } else {
                    io::read(cid, 1, 0, (len.div_ceil(512) - 1) as u16, len)
                };
                let ok = q.capsule(&sqe, write, len, in_capsule, u32::from(cid) + 1000, &mut hdr).is_ok();
                if ok {
                    assert!(!cmds[usize::from(cid)].active, "capsule accepted for CID {cid} already in flight");
                    cmds[usize::from(cid)] = Cmd { active: true, write, len, got: 0 };
                }
            }
            1 | 2 => {
                let n = usize::from(i.u16() % 2048);
                pending.extend_from_slice(i.bytes(n));
                let piece = 1 + i.below(4096);
                if !drain(&mut q, &mut pending, &mut cmds, piece) {
                    return;
                }
            }
            _ => {
                // The host answers an R2T it saw with H2CData headers.
                let cid = i.below(N) as u16;
                let _ = q.h2c_data(cid, i.u16(), i.u32() % 65536, 1 + i.u32() % 65536, i.bool(), &mut hdr);
            }
        }
        assert!(q.outstanding() <= N);
        assert_eq!(q.outstanding(), cmds.iter().filter(|c| c.active).count(), "outstanding count drifted");
    }
}

/// Walks `pending` through the queue like the firmware's socket reader,
/// moving data `piece` bytes at a time. False once the queue failed.
fn drain<const M: usize>(q: &mut HostQueue<M>, pending: &mut Vec<u8>, cmds: &mut [Cmd; N], piece: usize) -> bool {
    let mut at = 0;
    let mut guard = 0;
    let ok = loop {
        guard += 1;
        assert!(guard < 100_000, "the receive loop does not advance");
        let left = &pending[at..];
        let r = match q.rx_want() {
            Want::Header(n) => {
                assert!((8..=132).contains(&n), "header read of {n} bytes");
                if left.len() < n {
                    break true;
                }
                at += n;
                q.on_header(&left[..n])
            }
            Want::Skip(n) => {
                let k = (n as usize).min(left.len()).min(piece);
                if k == 0 {
                    break true;
                }
                at += k;
                q.on_skip(k as u32)
            }
            Want::Data { cid, offset, len } => {
                let c = cmds.get(usize::from(cid)).copied().unwrap_or_default();
                assert!(c.active && !c.write, "data for CID {cid}, which is not a read in flight");
                assert_eq!(offset, c.got, "data out of order for CID {cid}");
                assert!(u64::from(offset) + u64::from(len) <= u64::from(c.len), "data beyond the transfer of CID {cid}");
                let k = (len as usize).min(left.len()).min(piece);
                if k == 0 {
                    break true;
                }
                at += k;
                cmds[usize::from(cid)].got += k as u32;
                q.on_data(k as u32, &left[..k])
            }
            Want::Digest => {
                if left.len() < 4 {
                    break true;
                }
                at += 4;
                q.on_digest([left[0], left[1], left[2], left[3]])
            }
        };
        match r {
            Ok(Event::Completed { cid, tag, .. }) => {
                let c = &mut cmds[usize::from(cid)];
                assert!(c.active, "CID {cid} completed twice (or never started)");
                assert_eq!(tag, u32::from(cid) + 1000);
                *c = Cmd::default();
            }
            Ok(Event::R2t { cid, offset, len, .. }) => {
                let c = cmds[usize::from(cid)];
                assert!(c.active && c.write, "R2T for CID {cid}, which is not a write in flight");
                assert!(len > 0 && u64::from(offset) + u64::from(len) <= u64::from(c.len), "R2T beyond the write");
            }
            Ok(Event::Established { maxh2cdata, .. }) => assert!(maxh2cdata >= 4096),
            Ok(Event::None) => {}
            Err(f) => {
                assert_eq!(q.state(), State::Failed);
                let _ = f.term_req();
                let _ = q.last_header();
                // After a failure the queue accepts nothing more.
                assert!(q.on_header(&[0u8; 8]).is_err());
                let mut drained = 0;
                q.drain(|cid, _| {
                    drained += 1;
                    assert!(cmds[usize::from(cid)].active, "drained CID {cid} was not in flight");
                });
                assert_eq!(drained, cmds.iter().filter(|c| c.active).count());
                *cmds = [Cmd::default(); N];
                break false;
            }
        }
    };
    pending.drain(..at);
    ok
}
