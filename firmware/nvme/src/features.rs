//! Get/Set Features (NVMe Base 2.0 §5.15, §5.27, figure 317).

use crate::sqe::Sqe;
use crate::status::Status;

pub const FID_ARBITRATION: u8 = 0x01;
pub const FID_POWER_MANAGEMENT: u8 = 0x02;
pub const FID_TEMPERATURE_THRESHOLD: u8 = 0x04;
pub const FID_ERROR_RECOVERY: u8 = 0x05;
pub const FID_VOLATILE_WRITE_CACHE: u8 = 0x06;
pub const FID_NUMBER_OF_QUEUES: u8 = 0x07;
pub const FID_INTERRUPT_COALESCING: u8 = 0x08;
pub const FID_INTERRUPT_VECTOR_CONFIG: u8 = 0x09;
pub const FID_WRITE_ATOMICITY: u8 = 0x0a;
pub const FID_ASYNC_EVENT_CONFIG: u8 = 0x0b;

/// Limits of one controller.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// I/O queues (SQs and CQs each) the controller can allocate.
    pub max_io_queues: u16,
    /// MSI-X vectors of the function.
    pub vectors: u16,
}

/// Current feature values of a controller (reset to defaults by a
/// controller reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub arbitration: u32,
    pub temp_over: u16,
    pub temp_under: u16,
    pub error_recovery: u32,
    pub write_cache: bool,
    /// Allocated (NSQA, NCQA), 0's based, once Set Features was done.
    pub queues: Option<(u16, u16)>,
    /// Aggregation threshold (0's based) and time (100 us units).
    pub coalesce_threshold: u8,
    pub coalesce_time: u8,
    /// Per-vector Coalescing Disable bits (vectors 0..128).
    pub coalesce_disabled: u128,
    pub write_atomicity: bool,
    pub async_events: u32,
}

impl Default for Features {
    fn default() -> Self {
        Features::DEFAULT
    }
}

impl Features {
    /// Power-on values.
    pub const DEFAULT: Features = Features {
            arbitration: 0,
            temp_over: 0x0157,
            temp_under: 0,
            error_recovery: 0,
            write_cache: true,
            queues: None,
            coalesce_threshold: 0,
            coalesce_time: 0,
            // Coalescing never applies to the admin vector.
            coalesce_disabled: 1,
            write_atomicity: false,
            async_events: 0,
        };

    /// Allocated queues (0's based) as Get Features reports them.
    pub fn allocated(&self, l: Limits) -> (u16, u16) {
        self.queues.unwrap_or((l.max_io_queues - 1, l.max_io_queues - 1))
    }

    /// Whether interrupt coalescing applies to `vector`.
    pub fn coalescing(&self, vector: u16) -> Option<(u8, u8)> {
        let on = (self.coalesce_threshold != 0 || self.coalesce_time != 0)
            && (vector >= 128 || self.coalesce_disabled & (1 << vector) == 0);
        on.then_some((self.coalesce_threshold, self.coalesce_time))
    }

    fn value(&self, fid: u8, cdw11: u32, l: Limits) -> Result<u32, Status> {
        Ok(match fid {
            FID_ARBITRATION => self.arbitration,
            FID_POWER_MANAGEMENT => 0,
            FID_TEMPERATURE_THRESHOLD => {
                let (sel, th) = ((cdw11 >> 16) & 0xf, (cdw11 >> 20) & 3);
                if sel != 0 || th > 1 {
                    return Err(Status::INVALID_FIELD);
                }
                u32::from(if th == 0 { self.temp_over } else { self.temp_under })
            }
            FID_ERROR_RECOVERY => self.error_recovery,
            FID_VOLATILE_WRITE_CACHE => u32::from(self.write_cache),
            FID_NUMBER_OF_QUEUES => {
                let (s, c) = self.allocated(l);
                u32::from(s) | u32::from(c) << 16
            }
            FID_INTERRUPT_COALESCING => u32::from(self.coalesce_threshold) | u32::from(self.coalesce_time) << 8,
            FID_INTERRUPT_VECTOR_CONFIG => {
                let iv = cdw11 as u16;
                if iv >= l.vectors {
                    return Err(Status::INVALID_FIELD);
                }
                let cd = iv < 128 && self.coalesce_disabled & (1 << iv) != 0;
                u32::from(iv) | u32::from(cd) << 16
            }
            FID_WRITE_ATOMICITY => u32::from(self.write_atomicity),
            FID_ASYNC_EVENT_CONFIG => self.async_events,
            _ => return Err(Status::INVALID_FIELD),
        })
    }

    /// Get Features: returns CQE DW0.
    pub fn get(&self, sqe: &Sqe, l: Limits) -> Result<u32, Status> {
        let fid = sqe.cdw10() as u8;
        match (sqe.cdw10() >> 8) & 7 {
            // Current; saved = default (nothing can be saved).
            0 => self.value(fid, sqe.cdw11(), l),
            1 | 2 => Features::default().value(fid, sqe.cdw11(), l),
            // Supported capabilities: changeable, not saveable, not per namespace.
            3 => self.value(fid, sqe.cdw11(), l).map(|_| 0b100),
            _ => Err(Status::INVALID_FIELD),
        }
    }

    /// Set Features: returns CQE DW0. `io_queues_exist` tells whether I/O
    /// queues were created since the last reset (Number of Queues is then a
    /// Command Sequence Error).
    pub fn set(&mut self, sqe: &Sqe, l: Limits, io_queues_exist: bool) -> Result<u32, Status> {
        let fid = sqe.cdw10() as u8;
        let v = sqe.cdw11();
        if sqe.cdw10() & (1 << 31) != 0 {
            // SV: saving is not supported (ONCS.SSFS = 0).
            return Err(Status::FEATURE_NOT_SAVEABLE);
        }
        match fid {
            FID_ARBITRATION => self.arbitration = v,
            FID_POWER_MANAGEMENT => {
                if v & 0x1f != 0 {
                    return Err(Status::INVALID_FIELD);
                }
            }
            FID_TEMPERATURE_THRESHOLD => {
                let (sel, th) = ((v >> 16) & 0xf, (v >> 20) & 3);
                if sel != 0 || th > 1 {
                    return Err(Status::INVALID_FIELD);
                }
                if th == 0 {
                    self.temp_over = v as u16;
                } else {
                    self.temp_under = v as u16;
                }
            }
            FID_ERROR_RECOVERY => self.error_recovery = v & 0x1_ffff,
            FID_VOLATILE_WRITE_CACHE => self.write_cache = v & 1 != 0,
            FID_NUMBER_OF_QUEUES => {
                let (nsqr, ncqr) = (v as u16, (v >> 16) as u16);
                if nsqr == 0xffff || ncqr == 0xffff {
                    return Err(Status::INVALID_FIELD);
                }
                if io_queues_exist {
                    return Err(Status::COMMAND_SEQUENCE_ERROR);
                }
                let max = l.max_io_queues - 1;
                self.queues = Some((nsqr.min(max), ncqr.min(max)));
                let (s, c) = self.allocated(l);
                return Ok(u32::from(s) | u32::from(c) << 16);
            }
            FID_INTERRUPT_COALESCING => {
                self.coalesce_threshold = v as u8;
                self.coalesce_time = (v >> 8) as u8;
            }
            FID_INTERRUPT_VECTOR_CONFIG => {
                let iv = v as u16;
                // The admin vector's coalescing cannot be configured.
                if iv == 0 || iv >= l.vectors || iv >= 128 {
                    return Err(Status::INVALID_FIELD);
                }
                if v & (1 << 16) != 0 {
                    self.coalesce_disabled |= 1 << iv;
                } else {
                    self.coalesce_disabled &= !(1 << iv);
                }
            }
            FID_WRITE_ATOMICITY => self.write_atomicity = v & 1 != 0,
            FID_ASYNC_EVENT_CONFIG => self.async_events = v,
            _ => return Err(Status::INVALID_FIELD),
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_io_queues: 16, vectors: 17 };

    fn cmd(cdw10: u32, cdw11: u32) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(10, cdw10);
        s.set_dw(11, cdw11);
        s
    }

    #[test]
    fn number_of_queues() {
        let mut f = Features::default();
        assert_eq!(f.get(&cmd(7, 0), L), Ok(0x000f_000f), "default: all");
        assert_eq!(f.set(&cmd(7, (63 << 16) | 3), L, false), Ok((15 << 16) | 3), "capped at the maximum");
        assert_eq!(f.set(&cmd(7, 0xffff), L, false), Err(Status::INVALID_FIELD));
        assert_eq!(f.set(&cmd(7, 1), L, true), Err(Status::COMMAND_SEQUENCE_ERROR));
    }

    #[test]
    fn coalescing_and_vectors() {
        let mut f = Features::default();
        assert_eq!(f.coalescing(3), None);
        f.set(&cmd(8, (2 << 8) | 7), L, false).unwrap();
        assert_eq!(f.coalescing(3), Some((7, 2)));
        assert_eq!(f.coalescing(0), None, "never the admin vector");
        f.set(&cmd(9, (1 << 16) | 3), L, false).unwrap();
        assert_eq!(f.coalescing(3), None, "coalescing disabled for vector 3");
        assert_eq!(f.get(&cmd(9, 3), L), Ok((1 << 16) | 3));
        assert_eq!(f.set(&cmd(9, 0), L, false), Err(Status::INVALID_FIELD));
        assert_eq!(f.set(&cmd(9, 17), L, false), Err(Status::INVALID_FIELD));
    }

    #[test]
    fn select_and_save() {
        let mut f = Features::default();
        f.set(&cmd(6, 0), L, false).unwrap();
        assert_eq!(f.get(&cmd(6, 0), L), Ok(0), "current");
        assert_eq!(f.get(&cmd(6 | (1 << 8), 0), L), Ok(1), "default");
        assert_eq!(f.get(&cmd(6 | (3 << 8), 0), L), Ok(0b100), "capabilities");
        assert_eq!(f.set(&cmd(6 | (1 << 31), 1), L, false), Err(Status::FEATURE_NOT_SAVEABLE));
        assert_eq!(f.get(&cmd(0x7f, 0), L), Err(Status::INVALID_FIELD));
        assert_eq!(f.set(&cmd(2, 1), L, false), Err(Status::INVALID_FIELD), "only power state 0");
    }
}
