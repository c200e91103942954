//! The parameters of `bdev_ec_create` (ours; SPDK's nearest is
//! `bdev_raid_create`, whose `name` and `base_bdevs` it keeps): `name`,
//! `k` data and `m` parity fragments per stripe, `base_bdevs` (the k + m
//! members in slot order, then the spares), `spares` (optional, default
//! 0: how many of `base_bdevs` are spares), `scrub_every_ms` (optional,
//! default 0: no periodic scrub). Any other parameter, a missing one, a
//! wrong type, k or m out of range, the wrong number of members or a
//! member named twice is -32602 naming the field. What depends on the
//! card's state (the names exist, are free, have one block size) the
//! caller checks.

use crate::params::Params;
use crate::RpcError;

/// Longest volume or member name (the card's block device names).
pub const NAME_MAX: usize = 31;
/// Most base block devices (members and spares) of one volume made at
/// run time.
pub const MAX_BASE: usize = 16;

/// The card's limits: k and m (the EC engine's) and the member records
/// a volume may have.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_k: u8,
    pub max_m: u8,
    pub max_members: usize,
}

/// A checked `bdev_ec_create` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcCreate {
    name: ([u8; NAME_MAX], u8),
    pub k: u8,
    pub m: u8,
    pub spares: u8,
    pub scrub_every_ms: u32,
    base: [([u8; NAME_MAX], u8); MAX_BASE],
    pub count: usize,
}

fn keep(s: &str) -> ([u8; NAME_MAX], u8) {
    let mut b = [0u8; NAME_MAX];
    let n = s.len().min(NAME_MAX);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    (b, n as u8)
}

fn text(b: &([u8; NAME_MAX], u8)) -> &str {
    core::str::from_utf8(&b.0[..usize::from(b.1)]).unwrap_or("")
}

/// A block device name: 1..=31 letters, digits, `_`, `-` or `.`.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= NAME_MAX && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

impl EcCreate {
    pub fn parse(p: &Params<'_>, lim: Limits) -> Result<EcCreate, RpcError> {
        p.only(&["name", "k", "m", "base_bdevs", "spares", "scrub_every_ms"])?;
        let mut nb = [0u8; NAME_MAX + 1];
        let name = Params::required("name", p.str("name", &mut nb)?)?;
        if !valid_name(name) {
            return Err(RpcError::invalid_params(format_args!("invalid params: `name` must be 1..={NAME_MAX} letters, digits, `_`, `-` or `.`")));
        }
        let k = Params::required("k", p.u64_in("k", 1..=u64::from(lim.max_k))?)? as u8;
        let m = Params::required("m", p.u64_in("m", 1..=u64::from(lim.max_m))?)? as u8;
        let spares = p.u64_in("spares", 0..=MAX_BASE as u64)?.unwrap_or(0) as u8;
        let scrub_every_ms = p.u64_in("scrub_every_ms", 0..=u64::from(u32::MAX))?.unwrap_or(0) as u32;
        let want = usize::from(k) + usize::from(m) + usize::from(spares);
        let most = lim.max_members.min(MAX_BASE);
        if want > most {
            return Err(RpcError::invalid_params(format_args!("invalid params: k + m + `spares` = {want} members, at most {most}")));
        }
        let mut c = EcCreate { name: keep(name), k, m, spares, scrub_every_ms, base: [([0; NAME_MAX], 0); MAX_BASE], count: 0 };
        let mut bb = [0u8; NAME_MAX + 1];
        let n = p.str_array("base_bdevs", &mut bb, |i, s| {
            if !valid_name(s) {
                return Err(RpcError::invalid_params(format_args!("invalid params: `base_bdevs[{i}]` is no block device name")));
            }
            if c.bases().any(|b| b == s) {
                return Err(RpcError::invalid_params(format_args!("invalid params: `base_bdevs[{i}]` `{s}` is named twice")));
            }
            if i >= MAX_BASE {
                return Err(RpcError::invalid_params(format_args!("invalid params: `base_bdevs` has more than {MAX_BASE} entries")));
            }
            c.base[i] = keep(s);
            c.count = i + 1;
            Ok(())
        })?;
        let n = Params::required("base_bdevs", n)?;
        if n != want {
            return Err(RpcError::invalid_params(format_args!("invalid params: `base_bdevs` must name k + m + spares = {want} block devices, got {n}")));
        }
        Ok(c)
    }

    /// A volume from the configuration in flash (checked there): `None`
    /// if a name is too long or there are too many bases.
    pub fn from_parts<'s>(name: &str, k: u8, m: u8, spares: u8, scrub_every_ms: u32, bases: impl Iterator<Item = &'s str>) -> Option<EcCreate> {
        if !valid_name(name) {
            return None;
        }
        let mut c = EcCreate { name: keep(name), k, m, spares, scrub_every_ms, base: [([0; NAME_MAX], 0); MAX_BASE], count: 0 };
        for b in bases {
            if !valid_name(b) || c.count == MAX_BASE {
                return None;
            }
            c.base[c.count] = keep(b);
            c.count += 1;
        }
        Some(c)
    }

    pub fn name(&self) -> &str {
        text(&self.name)
    }

    /// The base block devices: members (slot order), then spares.
    pub fn bases(&self) -> impl Iterator<Item = &str> {
        self.base[..self.count].iter().map(text)
    }

    /// Members and spares.
    pub fn width(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }
}

/// Stripes of a volume whose members hold `member_bytes` each (the
/// smallest member's): each stripe takes `chunk` bytes of every member,
/// and the `chunk` after the last stripe is the member's superblock.
pub fn stripes(member_bytes: u64, chunk: u64) -> u64 {
    (member_bytes / chunk).saturating_sub(1)
}
