//! The NVMe/TCP target's subsystems made at run time through the
//! management API (SPDK's `nvmf_*` methods): what a subsystem holds
//! (NQN, SN, MN, allowed hosts, listeners, RAM namespaces), the table of
//! them, and their fixed-size encoding, in which the firmware's
//! management server publishes the table to every data-plane core
//! (`dpu_fw::nvmf::live`: a seqlock over atomics). Pure data, no shared
//! state: host-tested.
//!
//! Live subsystems are subsystem indices [`LIVE_BASE`]` + k` (k their
//! slot); the boot configuration's are below. Each carries a `uid`, new
//! for every creation, so that a connection of a deleted subsystem never
//! takes a later one in the same slot for its own. `ns_generation`
//! counts a subsystem's namespace changes: where a Namespace Attribute
//! Changed event (NVMe Base 2.0 §5.2.2) can be raised from later.

use crate::{Backend, Namespace};
use dpu_bdev::{Geometry, RamBdev};
use dpu_hal::memory_map::{MAX_ALLOWED_HOSTS, MAX_SUBSYSTEMS, MAX_SUBSYSTEM_NAMESPACES};

/// Most subsystems made at run time.
pub const MAX_LIVE: usize = MAX_SUBSYSTEMS;
/// The subsystem index of live slot 0 (boot subsystems are below).
pub const LIVE_BASE: u8 = MAX_SUBSYSTEMS as u8;
const _: () = assert!(MAX_SUBSYSTEMS + MAX_LIVE < u8::MAX as usize, "subsystem indices fit a u8 below the discovery index");
/// Most listeners (DPU port, TCP port) of one live subsystem.
pub const MAX_LISTENERS: usize = 4;
/// Longest NQN (NVMe Base 2.0 §4.5: 223 bytes).
pub const NQN_MAX: usize = 223;
/// Identify Controller SN and MN (NVMe Base 2.0 §5.17.2.1: 20 and 40 bytes).
pub const SERIAL_MAX: usize = 20;
pub const MODEL_MAX: usize = 40;

/// Up to `N` bytes of printable ASCII.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize> {
    b: [u8; N],
    len: u8,
}

impl<const N: usize> Text<N> {
    pub const EMPTY: Self = Text { b: [0; N], len: 0 };

    /// `s` if it fits and every byte is printable ASCII (spaces allowed
    /// only when `spaces`).
    pub fn new(s: &str, spaces: bool) -> Option<Self> {
        if s.len() > N || s.len() > 255 || !s.bytes().all(|c| c.is_ascii_graphic() || (spaces && c == b' ')) {
            return None;
        }
        let mut t = Self::EMPTY;
        t.b[..s.len()].copy_from_slice(s.as_bytes());
        t.len = s.len() as u8;
        Some(t)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.b[..usize::from(self.len).min(N)]
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes()).unwrap_or("")
    }
}

/// A (DPU port, TCP port) a subsystem listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub port: u8,
    pub trsvcid: u16,
}

/// A namespace of a live subsystem: a RAM block device's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamNs {
    pub nsid: u32,
    pub base: u64,
    pub blocks: u64,
    pub block_shift: u8,
}

impl RamNs {
    /// As the block layer and Identify see it, served by subsystem `s`.
    pub fn namespace(&self, s: u8) -> Namespace {
        Namespace {
            function: u16::MAX,
            nsid: self.nsid,
            geometry: Geometry { blocks: self.blocks, block_shift: self.block_shift },
            backend: Backend::Ram(RamBdev::new(self.base, self.blocks, self.block_shift)),
            index: crate::live::LIVE_INDEX,
            crypto: None,
            subsystem: Some(s),
            stat: crate::NO_STAT,
        }
    }
}

/// A subsystem made at run time.
#[derive(Clone, Copy)]
pub struct Subsys {
    /// New for every creation (never 0).
    pub uid: u32,
    pub nqn: Text<NQN_MAX>,
    pub serial: Text<SERIAL_MAX>,
    pub model: Text<MODEL_MAX>,
    /// SPDK's `allow_any_host`: when false only `hosts` may connect.
    pub allow_any: bool,
    pub hosts: [Text<NQN_MAX>; MAX_ALLOWED_HOSTS],
    pub nhosts: u8,
    pub listeners: [Option<Listener>; MAX_LISTENERS],
    pub ns: [Option<RamNs>; MAX_SUBSYSTEM_NAMESPACES],
    /// Highest NSID (Identify Controller NN).
    pub max_namespaces: u32,
    /// Bumped at every namespace added or removed (for a later
    /// Namespace Attribute Changed event).
    pub ns_generation: u32,
}

impl Subsys {
    pub const EMPTY: Subsys = Subsys {
        uid: 0,
        nqn: Text::EMPTY,
        serial: Text::EMPTY,
        model: Text::EMPTY,
        allow_any: false,
        hosts: [Text::EMPTY; MAX_ALLOWED_HOSTS],
        nhosts: 0,
        listeners: [None; MAX_LISTENERS],
        ns: [None; MAX_SUBSYSTEM_NAMESPACES],
        max_namespaces: 0,
        ns_generation: 0,
    };

    /// The allowed host NQNs.
    pub fn hosts(&self) -> impl Iterator<Item = &Text<NQN_MAX>> {
        self.hosts.iter().take(usize::from(self.nhosts))
    }

    /// Whether host `hostnqn` may connect now.
    pub fn allows(&self, hostnqn: &[u8]) -> bool {
        self.allow_any || self.hosts().any(|h| h.bytes() == hostnqn)
    }

    pub fn namespace(&self, nsid: u32) -> Option<&RamNs> {
        self.ns.iter().flatten().find(|n| n.nsid == nsid)
    }

    pub fn listens(&self, port: usize, trsvcid: u16) -> bool {
        self.listeners.iter().flatten().any(|l| usize::from(l.port) == port && l.trsvcid == trsvcid)
    }
}

/// The live subsystems, by slot.
#[derive(Clone, Copy)]
pub struct Table {
    /// The publication this copy is of (even; 0: none yet).
    pub version: u32,
    pub subsys: [Option<Subsys>; MAX_LIVE],
}

impl Table {
    pub const EMPTY: Table = Table { version: 0, subsys: [None; MAX_LIVE] };

    /// Live subsystem of index `s` (`LIVE_BASE + slot`).
    pub fn get(&self, s: u8) -> Option<&Subsys> {
        self.subsys.get(usize::from(s.checked_sub(LIVE_BASE)?))?.as_ref()
    }

    /// (index, subsystem) of every live subsystem.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Subsys)> {
        self.subsys.iter().enumerate().filter_map(|(k, s)| s.as_ref().map(|s| (LIVE_BASE + k as u8, s)))
    }

    pub fn find(&self, nqn: &[u8]) -> Option<u8> {
        self.iter().find(|(_, s)| s.nqn.bytes() == nqn).map(|(i, _)| i)
    }
}

// ------------------------------------------------------------ encoding

/// Bytes of one encoded subsystem.
const ENC: usize = 24 + MAX_LISTENERS * 4 + MAX_SUBSYSTEM_NAMESPACES * 24 + (NQN_MAX + 1) * (1 + MAX_ALLOWED_HOSTS) + SERIAL_MAX + 1 + MODEL_MAX + 1;
/// 32-bit words of one encoded subsystem (as the firmware publishes it).
pub const WORDS: usize = ENC.div_ceil(4);

/// One encoded subsystem.
pub type Scratch = [u8; WORDS * 4];

fn put_text(out: &mut [u8], at: &mut usize, t: &[u8], cap: usize) {
    out[*at] = t.len() as u8;
    out[*at + 1..*at + 1 + t.len()].copy_from_slice(t);
    *at += 1 + cap;
}

fn get_text<const N: usize>(b: &[u8], at: &mut usize) -> Text<N> {
    let len = usize::from(b[*at]).min(N);
    let mut t = Text::EMPTY;
    t.b[..len].copy_from_slice(&b[*at + 1..*at + 1 + len]);
    t.len = len as u8;
    *at += 1 + N;
    t
}

/// Encodes `s` (all zeroes: no subsystem is uid 0).
pub fn encode(s: &Subsys, out: &mut Scratch) {
    out.fill(0);
    out[0..4].copy_from_slice(&s.uid.to_le_bytes());
    out[4] = u8::from(s.allow_any);
    out[5] = s.nhosts;
    out[8..12].copy_from_slice(&s.max_namespaces.to_le_bytes());
    out[12..16].copy_from_slice(&s.ns_generation.to_le_bytes());
    let mut at = 24;
    for l in &s.listeners {
        if let Some(l) = l {
            out[at] = l.port;
            out[at + 1] = 1;
            out[at + 2..at + 4].copy_from_slice(&l.trsvcid.to_le_bytes());
        }
        at += 4;
    }
    for n in &s.ns {
        if let Some(n) = n {
            out[at..at + 4].copy_from_slice(&n.nsid.to_le_bytes());
            out[at + 4] = n.block_shift;
            out[at + 8..at + 16].copy_from_slice(&n.base.to_le_bytes());
            out[at + 16..at + 24].copy_from_slice(&n.blocks.to_le_bytes());
        }
        at += 24;
    }
    put_text(out, &mut at, s.nqn.bytes(), NQN_MAX);
    for h in &s.hosts {
        put_text(out, &mut at, h.bytes(), NQN_MAX);
    }
    put_text(out, &mut at, s.serial.bytes(), SERIAL_MAX);
    put_text(out, &mut at, s.model.bytes(), MODEL_MAX);
}

/// Decodes what [`encode`] wrote (uid 0: `None`).
pub fn decode(b: &Scratch, out: &mut Option<Subsys>) {
    let uid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if uid == 0 {
        *out = None;
        return;
    }
    let s = out.get_or_insert(Subsys::EMPTY);
    s.uid = uid;
    s.allow_any = b[4] != 0;
    s.nhosts = b[5].min(MAX_ALLOWED_HOSTS as u8);
    s.max_namespaces = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    s.ns_generation = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    let mut at = 24;
    for l in s.listeners.iter_mut() {
        *l = (b[at + 1] != 0).then(|| Listener { port: b[at], trsvcid: u16::from_le_bytes([b[at + 2], b[at + 3]]) });
        at += 4;
    }
    for n in s.ns.iter_mut() {
        let w = |o: usize| u64::from_le_bytes(b[at + o..at + o + 8].try_into().unwrap_or([0; 8]));
        let nsid = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        *n = (nsid != 0).then(|| RamNs { nsid, block_shift: b[at + 4], base: w(8), blocks: w(16) });
        at += 24;
    }
    s.nqn = get_text(b, &mut at);
    for h in s.hosts.iter_mut() {
        *h = get_text(b, &mut at);
    }
    s.serial = get_text(b, &mut at);
    s.model = get_text(b, &mut at);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn full() -> Subsys {
        let mut s = Subsys::EMPTY;
        s.uid = 7;
        s.nqn = Text::new("nqn.2026-12.io.example:a-very-long-name-to-fill-some-room", false).unwrap();
        s.serial = Text::new("SN 0123456789ABCDEFG", true).unwrap();
        s.model = Text::new("DPU live target model number 40 bytes ok", true).unwrap();
        s.allow_any = false;
        for k in 0..MAX_ALLOWED_HOSTS {
            s.hosts[k] = Text::new(&std::format!("nqn.2014-08.org.nvmexpress:uuid:host{k}"), false).unwrap();
        }
        s.nhosts = MAX_ALLOWED_HOSTS as u8;
        s.listeners[0] = Some(Listener { port: 0, trsvcid: 4420 });
        s.listeners[3] = Some(Listener { port: 1, trsvcid: 65000 });
        for (k, n) in s.ns.iter_mut().enumerate().filter(|(k, _)| k % 3 != 1) {
            *n = Some(RamNs { nsid: k as u32 + 1, base: 0x8000_0000 + (k as u64) << 20, blocks: u64::from(u32::MAX) + k as u64, block_shift: if k % 2 == 0 { 9 } else { 12 } });
        }
        s.max_namespaces = MAX_SUBSYSTEM_NAMESPACES as u32;
        s.ns_generation = 0xdead_beef;
        s
    }

    fn same(a: &Subsys, b: &Subsys) -> bool {
        a.uid == b.uid
            && a.nqn == b.nqn
            && a.serial == b.serial
            && a.model == b.model
            && a.allow_any == b.allow_any
            && a.hosts == b.hosts
            && a.nhosts == b.nhosts
            && a.listeners == b.listeners
            && a.ns == b.ns
            && a.max_namespaces == b.max_namespaces
            && a.ns_generation == b.ns_generation
    }

    /// Every field at its largest survives the encoding; no subsystem
    /// (all zeroes) decodes as `None`.
    #[test]
    fn a_full_subsystem_round_trips() {
        let s = full();
        let mut b: Scratch = [0; WORDS * 4];
        encode(&s, &mut b);
        let mut out = None;
        decode(&b, &mut out);
        assert!(same(out.as_ref().unwrap(), &s));
        b.fill(0);
        decode(&b, &mut out);
        assert!(out.is_none());
    }

    #[test]
    fn lookups_and_the_allow_list() {
        let mut t = Table::EMPTY;
        let mut s = full();
        t.subsys[2] = Some(s);
        let i = t.find(s.nqn.bytes()).unwrap();
        assert_eq!(i, LIVE_BASE + 2);
        assert!(t.get(i).is_some() && t.get(LIVE_BASE + 1).is_none() && t.get(0).is_none());
        assert!(t.get(i).unwrap().allows(b"nqn.2014-08.org.nvmexpress:uuid:host3"));
        assert!(!t.get(i).unwrap().allows(b"nqn.2014-08.org.nvmexpress:uuid:other"));
        s.allow_any = true;
        assert!(s.allows(b"nqn.2014-08.org.nvmexpress:uuid:other"));
        assert!(s.listens(1, 65000) && !s.listens(0, 65000));
        let n = s.namespace(1).unwrap().namespace(i);
        assert_eq!((n.subsystem, n.geometry.block_shift, n.nsid), (Some(i), 9, 1));
        assert!(s.namespace(2).is_none());
        assert!(Text::<4>::new("abcde", false).is_none() && Text::<8>::new("a b", false).is_none() && Text::<8>::new("a b", true).is_some());
    }
}
