//! The bus's PCIe side: endpoint effects (notifications, MSI-X) and host
//! accesses arriving over the link. (DMA execution is the DMA engines'
//! own, in [`crate::dma`].)

use crate::bus::Bus;
use crate::pcie::{CfgError, Effect};
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

impl Bus {
    /// Carries out endpoint effects at time `now`.
    pub fn apply_effects(&mut self, now: u64, effects: &mut Vec<Effect>) {
        if !effects.is_empty() {
            self.with_devices(now, |_, ctx| ctx.apply_effects(effects));
        }
    }

    /// Host access arriving at the endpoint at `now`.
    pub fn host_access(&mut self, op: HostOp, now: u64) -> HostReply {
        let mut fx = Vec::new();
        let reply = match op {
            HostOp::MmioRead { addr, size } => match self.pcie.decode(addr) {
                Some((f, off)) => self.pcie.bar_read(f, off, size).map_or(HostReply::Unsupported, HostReply::Value),
                None => {
                    self.pcie.stats.unsupported_requests += 1;
                    HostReply::Unsupported
                }
            },
            HostOp::MmioWrite { addr, size, value } => {
                match self.pcie.decode(addr) {
                    Some((f, off)) => {
                        let db = dpu_hal::regs::bar0::DOORBELL;
                        if let (Some(t), true) = (&self.iotrace, off >= db && off < db + 4 * pregs::DOORBELLS) {
                            let index = (off - db) / 4;
                            if index % 2 == 0 {
                                t.borrow_mut().doorbell(now, f as u16, (index / 2) as u16);
                            }
                        }
                        self.pcie.bar_write(f, off, size, value, &mut fx)
                    }
                    None => self.pcie.stats.unsupported_requests += 1,
                }
                HostReply::Done
            }
            HostOp::CfgRead { function, off, size } => {
                match self.pcie.cfg_read(usize::from(function), usize::from(off), usize::from(size)) {
                    Ok(v) => HostReply::Value(u64::from(v)),
                    Err(CfgError::Retry) => HostReply::Retry,
                    Err(_) => HostReply::Unsupported,
                }
            }
            HostOp::CfgWrite { function, off, size, value } => {
                match self.pcie.cfg_write(usize::from(function), usize::from(off), usize::from(size), value, &mut fx) {
                    Ok(()) => HostReply::Done,
                    Err(CfgError::Retry) => HostReply::Retry,
                    Err(_) => HostReply::Unsupported,
                }
            }
        };
        self.apply_effects(now, &mut fx);
        reply
    }
}
