//! Remote controllers attached at run time (SPDK
//! `bdev_nvme_attach_controller`), published by the fabrics service to
//! every data-plane core's initiator.
//!
//! The boot configuration's controllers keep indices `0..n` (read-only
//! after boot); a controller attached at run time takes a free index
//! above them. What a data-plane core needs to connect its I/O queue to
//! it (address, subsystem and host NQN, digests) is published here by
//! one writer, the fabrics service (the network service's hart), per
//! index: a sequence counter made odd, the definition stored word by
//! word in atomics, the counter made even with Release ordering (a
//! seqlock, as `super::live`). A core reads an index again only when its
//! counter moved (after a `DOORBELL_NVMF`), and takes the copy only if
//! the counter did not move meanwhile. Whether the controller is up (and
//! its CNTLID, grant) is the separate publication of [`super::CTRLS`].

use crate::bootcfg::{self, MAX_CTRLS};
use core::sync::atomic::{fence, AtomicU32, Ordering};
use dpu_nvme_tcp::pdu::Digests;

/// Longest NQN (NVMe Base 2.0 §4.5: 223 bytes).
pub const NQN_MAX: usize = 223;

/// A remote controller to connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub digests: Digests,
    subnqn: [u8; NQN_MAX],
    subnqn_len: u8,
    hostnqn: [u8; NQN_MAX],
    hostnqn_len: u8,
}

impl Def {
    /// `None` if an NQN is longer than [`NQN_MAX`]. An empty `hostnqn`
    /// means the card's (the configuration's host NQN).
    pub fn new(traddr: [u8; 4], trsvcid: u16, subnqn: &[u8], hostnqn: &[u8], digests: Digests) -> Option<Def> {
        if subnqn.len() > NQN_MAX || hostnqn.len() > NQN_MAX {
            return None;
        }
        let mut d = Def { traddr, trsvcid, digests, subnqn: [0; NQN_MAX], subnqn_len: subnqn.len() as u8, hostnqn: [0; NQN_MAX], hostnqn_len: hostnqn.len() as u8 };
        d.subnqn[..subnqn.len()].copy_from_slice(subnqn);
        d.hostnqn[..hostnqn.len()].copy_from_slice(hostnqn);
        Some(d)
    }

    pub fn subnqn(&self) -> &[u8] {
        &self.subnqn[..usize::from(self.subnqn_len)]
    }

    /// The host NQN presented in Connect: this controller's, or the card's.
    pub fn hostnqn(&self) -> &[u8] {
        match self.hostnqn_len {
            0 => bootcfg::host().0,
            n => &self.hostnqn[..usize::from(n)],
        }
    }

    /// Only the NQN this controller was given (empty: the card's).
    pub fn own_hostnqn(&self) -> &[u8] {
        &self.hostnqn[..usize::from(self.hostnqn_len)]
    }
}

/// Header and data digests of the boot configuration.
pub fn boot_digests() -> Digests {
    let f = bootcfg::flags();
    Digests { header: f & dpu_hal::regs::bootcfg::FLAG_HDGST != 0, data: f & dpu_hal::regs::bootcfg::FLAG_DDGST != 0 }
}

/// Controller `i`: the boot configuration's, or the one published at
/// run time at that index (`None`: no controller there).
pub fn def(i: usize) -> Option<Def> {
    if i < bootcfg::controllers() {
        let c = bootcfg::controller(i)?;
        return Def::new(c.traddr, c.trsvcid, c.subnqn(), &[], boot_digests());
    }
    read(i).and_then(|(_, d)| d)
}

// ------------------------------------------------------------ encoding

/// Bytes: traddr 4, trsvcid 2, flags 1, subnqn length 1, subnqn,
/// hostnqn length 1, hostnqn; rounded up to words.
const BYTES: usize = 4 + 2 + 1 + 1 + NQN_MAX + 1 + NQN_MAX;
const WORDS: usize = BYTES.div_ceil(4);
const PRESENT: u8 = 1;
const HDGST: u8 = 2;
const DDGST: u8 = 4;

fn encode(d: Option<&Def>, out: &mut [u8; WORDS * 4]) {
    out.fill(0);
    let Some(d) = d else { return };
    out[..4].copy_from_slice(&d.traddr);
    out[4..6].copy_from_slice(&d.trsvcid.to_le_bytes());
    out[6] = PRESENT | if d.digests.header { HDGST } else { 0 } | if d.digests.data { DDGST } else { 0 };
    out[7] = d.subnqn_len;
    out[8..8 + NQN_MAX].copy_from_slice(&d.subnqn);
    out[8 + NQN_MAX] = d.hostnqn_len;
    out[9 + NQN_MAX..9 + 2 * NQN_MAX].copy_from_slice(&d.hostnqn);
}

fn decode(b: &[u8; WORDS * 4]) -> Option<Def> {
    if b[6] & PRESENT == 0 {
        return None;
    }
    let digests = Digests { header: b[6] & HDGST != 0, data: b[6] & DDGST != 0 };
    let sl = usize::from(b[7]).min(NQN_MAX);
    let hl = usize::from(b[8 + NQN_MAX]).min(NQN_MAX);
    Def::new([b[0], b[1], b[2], b[3]], u16::from_le_bytes([b[4], b[5]]), &b[8..8 + sl], &b[9 + NQN_MAX..9 + NQN_MAX + hl], digests)
}

// ------------------------------------------------------------ publication

static SEQ: [AtomicU32; MAX_CTRLS] = [const { AtomicU32::new(0) }; MAX_CTRLS];
static WORDS_PUB: [[AtomicU32; WORDS]; MAX_CTRLS] = [const { [const { AtomicU32::new(0) }; WORDS] }; MAX_CTRLS];

/// Publishes controller `i` (`None`: gone). The fabrics service only.
pub fn publish(i: usize, d: Option<&Def>) {
    let (Some(seq), Some(words)) = (SEQ.get(i), WORDS_PUB.get(i)) else { return };
    let mut b = [0u8; WORDS * 4];
    encode(d, &mut b);
    let odd = seq.load(Ordering::Relaxed).wrapping_add(1) | 1;
    seq.store(odd, Ordering::Relaxed);
    fence(Ordering::Release);
    for (w, c) in words.iter().zip(b.chunks_exact(4)) {
        w.store(u32::from_le_bytes([c[0], c[1], c[2], c[3]]), Ordering::Relaxed);
    }
    seq.store(odd.wrapping_add(1), Ordering::Release);
}

/// The version of index `i`'s publication (0: never published).
pub fn version(i: usize) -> u32 {
    SEQ.get(i).map_or(0, |s| s.load(Ordering::Acquire))
}

/// Index `i`'s publication and its version; `None` while it is being
/// written (read it again later).
pub fn read(i: usize) -> Option<(u32, Option<Def>)> {
    let (seq, words) = (SEQ.get(i)?, WORDS_PUB.get(i)?);
    let v = seq.load(Ordering::Acquire);
    if v & 1 == 1 {
        return None;
    }
    let mut b = [0u8; WORDS * 4];
    for (w, c) in words.iter().zip(b.chunks_exact_mut(4)) {
        c.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    fence(Ordering::Acquire);
    if seq.load(Ordering::Relaxed) != v {
        return None;
    }
    Some((v, decode(&b)))
}
