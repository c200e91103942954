//! Host accesses arriving at the endpoint over the link (the host model
//! sends them as events; `HostModel::arrive`), carried out through a
//! [`DevCtx`].

use super::CfgError;
use crate::devctx::DevCtx;
use dpu_hal::regs::pcie as pregs;

/// A host access travelling down the link.
#[derive(Clone, Copy, Debug)]
pub enum HostOp {
    MmioRead { addr: u64, size: u8 },
    MmioWrite { addr: u64, size: u8, value: u64 },
    CfgRead { function: u16, off: u16, size: u8 },
    CfgWrite { function: u16, off: u16, size: u8, value: u32 },
}

/// What the endpoint answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostReply {
    Value(u64),
    /// Unsupported Request (no such function / address, bad access): reads
    /// complete with all ones.
    Unsupported,
    /// Configuration Request Retry Status.
    Retry,
    /// Posted write accepted.
    Done,
}

/// A host access arriving at the endpoint at `ctx.now`: BAR and
/// configuration space accesses (an access to no function or address is
/// an Unsupported Request); what the endpoint does in turn (doorbell
/// notifications, MSI-X) is carried out.
pub fn host_access(op: HostOp, ctx: &mut DevCtx<'_>) -> HostReply {
    let now = ctx.now;
    let endpoint = &mut *ctx.pcie.endpoint;
    let mut fx = Vec::new();
    let reply = match op {
        HostOp::MmioRead { addr, size } => match endpoint.decode(addr) {
            Some((f, off)) => endpoint.bar_read(f, off, size).map_or(HostReply::Unsupported, HostReply::Value),
            None => {
                endpoint.stats.unsupported_requests += 1;
                HostReply::Unsupported
            }
        },
        HostOp::MmioWrite { addr, size, value } => {
            match endpoint.decode(addr) {
                Some((f, off)) => {
                    let db = dpu_hal::regs::bar0::DOORBELL;
                    if let (Some(t), true) = (ctx.iotrace, off >= db && off < db + 4 * pregs::DOORBELLS) {
                        let index = (off - db) / 4;
                        if index % 2 == 0 {
                            t.borrow_mut().doorbell(now, f as u16, (index / 2) as u16);
                        }
                    }
                    endpoint.bar_write(f, off, size, value, &mut fx)
                }
                None => endpoint.stats.unsupported_requests += 1,
            }
            HostReply::Done
        }
        HostOp::CfgRead { function, off, size } => {
            match endpoint.cfg_read(usize::from(function), usize::from(off), usize::from(size)) {
                Ok(v) => HostReply::Value(u64::from(v)),
                Err(CfgError::Retry) => HostReply::Retry,
                Err(_) => HostReply::Unsupported,
            }
        }
        HostOp::CfgWrite { function, off, size, value } => {
            match endpoint.cfg_write(usize::from(function), usize::from(off), usize::from(size), value, &mut fx) {
                Ok(()) => HostReply::Done,
                Err(CfgError::Retry) => HostReply::Retry,
                Err(_) => HostReply::Unsupported,
            }
        }
    };
    ctx.apply_effects(&mut fx);
    reply
}
