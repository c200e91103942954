//! The parameters of SPDK's `bdev_nvme_attach_controller` as the card
//! takes them (`scripts/rpc.py bdev_nvme_attach_controller` in SPDK):
//! `name`, `trtype` ("tcp", any case: the only transport), `adrfam`
//! (optional, "ipv4"), `traddr` (dotted IPv4), `trsvcid` (optional, the
//! TCP port as a string, default 4420), `subnqn`, `hostnqn` (optional),
//! `hdgst` / `ddgst` (optional booleans). Any other parameter, a missing
//! one or a wrong type is -32602 naming it. What depends on the card's
//! state (names taken, limits, the address's subnet) the caller checks.

use crate::params::Params;
use crate::RpcError;

/// Longest controller name (its block devices add `n<nsid>`).
pub const NAME_MAX: usize = 24;
/// Longest NQN (NVMe Base 2.0 §4.5).
pub const NQN_MAX: usize = 223;
/// NVMe/TCP's IANA port, SPDK's default `trsvcid`.
pub const DEFAULT_TRSVCID: u16 = 4420;

/// Where the parsed strings are unescaped to.
pub struct Buffers {
    name: [u8; NAME_MAX + 1],
    subnqn: [u8; NQN_MAX + 1],
    hostnqn: [u8; NQN_MAX + 1],
}

impl Buffers {
    pub const fn new() -> Buffers {
        Buffers { name: [0; NAME_MAX + 1], subnqn: [0; NQN_MAX + 1], hostnqn: [0; NQN_MAX + 1] }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

/// A checked `bdev_nvme_attach_controller` request.
#[derive(Debug, PartialEq, Eq)]
pub struct AttachController<'b> {
    pub name: &'b str,
    pub traddr: [u8; 4],
    pub trsvcid: u16,
    pub subnqn: &'b str,
    /// Empty: the card's host NQN.
    pub hostnqn: &'b str,
    /// `None`: the card's setting.
    pub hdgst: Option<bool>,
    pub ddgst: Option<bool>,
}

impl<'b> AttachController<'b> {
    pub fn parse(p: &Params<'_>, b: &'b mut Buffers) -> Result<AttachController<'b>, RpcError> {
        p.only(&["name", "trtype", "adrfam", "traddr", "trsvcid", "subnqn", "hostnqn", "hdgst", "ddgst"])?;
        let name = Params::required("name", p.str("name", &mut b.name)?)?;
        if name.is_empty() || name.len() > NAME_MAX || !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
            return Err(RpcError::invalid_params(format_args!("invalid params: `name` must be 1..={NAME_MAX} letters, digits, `_`, `-` or `.`")));
        }
        let mut tb = [0u8; 8];
        let trtype = Params::required("trtype", p.str("trtype", &mut tb).map_err(|_| wrong_trtype())?)?;
        if !trtype.eq_ignore_ascii_case("tcp") {
            return Err(wrong_trtype());
        }
        let mut ab = [0u8; 8];
        let adrfam = p.str("adrfam", &mut ab).map_err(|_| wrong_adrfam())?;
        if adrfam.is_some_and(|a| !a.eq_ignore_ascii_case("ipv4")) {
            return Err(wrong_adrfam());
        }
        let mut ib = [0u8; 16];
        let traddr = Params::required("traddr", p.str("traddr", &mut ib)?)?;
        let traddr = parse_ipv4(traddr).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `traddr` must be a dotted IPv4 address")))?;
        let mut sb = [0u8; 8];
        let trsvcid = match p.str("trsvcid", &mut sb)? {
            Some(s) => s.parse::<u16>().ok().filter(|&v| v != 0).ok_or_else(|| RpcError::invalid_params(format_args!("invalid params: `trsvcid` must be a TCP port 1..=65535 (a string)")))?,
            None => DEFAULT_TRSVCID,
        };
        let subnqn = Params::required("subnqn", p.str("subnqn", &mut b.subnqn)?)?;
        check_nqn("subnqn", subnqn)?;
        let hostnqn = p.str("hostnqn", &mut b.hostnqn)?.unwrap_or("");
        if !hostnqn.is_empty() {
            check_nqn("hostnqn", hostnqn)?;
        }
        Ok(AttachController { name, traddr, trsvcid, subnqn, hostnqn, hdgst: p.bool("hdgst")?, ddgst: p.bool("ddgst")? })
    }
}

fn wrong_trtype() -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `trtype` must be \"tcp\" (the only transport)"))
}

fn wrong_adrfam() -> RpcError {
    RpcError::invalid_params(format_args!("invalid params: `adrfam` must be \"ipv4\""))
}

/// An NQN: `nqn.`..., printable ASCII, at most [`NQN_MAX`] bytes.
fn check_nqn(field: &str, n: &str) -> Result<(), RpcError> {
    if !n.starts_with("nqn.") || n.len() > NQN_MAX || !n.bytes().all(|c| (0x20..0x7f).contains(&c)) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `{field}` must be an NQN (nqn...., printable, <= {NQN_MAX} bytes)")));
    }
    Ok(())
}

/// A dotted-quad IPv4 address (each part 0..=255, no sign, no spaces).
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut a = [0u8; 4];
    let mut parts = s.split('.');
    for b in a.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *b = p.parse().ok()?;
    }
    parts.next().is_none().then_some(a)
}
