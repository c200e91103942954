//! One accelerator queue's registers (layout: `dpu_hal::regs::queue`, the
//! same as a DMA channel's): descriptor ring, completion ring with phase
//! bit, doorbell, and the running status of the chain being executed.

use dpu_hal::regs::{accel as st, queue as r};

#[derive(Clone, Debug, Default)]
pub struct Queue {
    pub ring_base: u64,
    pub ring_size: u32,
    pub notify: u32,
    pub comp_base: u64,
    pub status: u32,
    /// Descriptors handed over by the firmware / fetched by the engine.
    pub tail: u32,
    pub head: u32,
    /// Next completion slot and its phase.
    pub comp_index: u32,
    pub phase: bool,
    /// First error of the chain being executed, and bytes it wrote.
    pub chain_status: u32,
    pub chain_bytes: u32,
}

impl Queue {
    /// Register read at `reg` (offset inside the queue's block).
    pub fn read(&self, reg: u64, size: u8) -> Option<u64> {
        Some(match (reg, size) {
            (r::RING_BASE, 8) => self.ring_base,
            (r::RING_SIZE, 4) => u64::from(self.ring_size),
            (r::NOTIFY, 4) => u64::from(self.notify),
            (r::COMP_BASE, 8) => self.comp_base,
            (r::STATUS, 4) => u64::from(self.status),
            (r::TAIL, 4) => u64::from(self.tail),
            (r::HEAD, 4) => u64::from(self.head),
            (r::CONTROL, 4) => u64::from(self.status == r::STATUS_RUNNING),
            _ => return None,
        })
    }

    /// Register write; `Ok(true)` when TAIL moved on a running queue.
    pub fn write(&mut self, reg: u64, size: u8, v: u64) -> Result<bool, ()> {
        match (reg, size) {
            (r::RING_BASE, 8) => self.ring_base = v,
            (r::RING_SIZE, 4) => self.ring_size = v as u32,
            (r::NOTIFY, 4) => self.notify = v as u32,
            (r::COMP_BASE, 8) => self.comp_base = v,
            (r::CONTROL, 4) => {
                let ok = self.ring_size.is_power_of_two()
                    && (2..=4096).contains(&self.ring_size)
                    && self.ring_base % r::DESC_SIZE as u64 == 0
                    && self.comp_base % r::COMP_SIZE as u64 == 0;
                self.status = match (v & 1, ok) {
                    (0, _) => 0,
                    (_, true) => r::STATUS_RUNNING,
                    (_, false) => r::STATUS_BAD_CONFIG,
                };
                self.head = 0;
                self.tail = 0;
                self.comp_index = 0;
                self.phase = true;
                self.chain_status = st::ST_OK;
                self.chain_bytes = 0;
            }
            (r::TAIL, 4) => {
                if self.status != r::STATUS_RUNNING {
                    return Ok(false);
                }
                self.tail = v as u32;
                return Ok(true);
            }
            _ => return Err(()),
        }
        Ok(false)
    }

    /// Stops the queue (engine reset).
    pub fn stop(&mut self) {
        self.status = 0;
        self.head = self.tail;
    }

    /// Address of the next descriptor to fetch, advancing HEAD; None when
    /// the ring is empty.
    pub fn next_descriptor(&mut self) -> Option<u64> {
        if self.head == self.tail || self.status != r::STATUS_RUNNING {
            return None;
        }
        let slot = u64::from(self.head & (self.ring_size - 1));
        self.head = self.head.wrapping_add(1);
        Some(self.ring_base + slot * r::DESC_SIZE as u64)
    }

    /// Records one executed descriptor's result; with `end`, closes the
    /// chain and returns the completion entry to write (address, bytes),
    /// the NOTIFY register and the chain's status.
    pub fn record(&mut self, status: u32, bytes: u32, end: bool, cookie: u32) -> Option<(u64, [u8; 16], u32, u32)> {
        if self.chain_status == st::ST_OK {
            self.chain_status = status;
        }
        if status == st::ST_OK {
            self.chain_bytes = self.chain_bytes.wrapping_add(bytes);
        }
        if !end {
            return None;
        }
        let status = std::mem::replace(&mut self.chain_status, st::ST_OK);
        let bytes = std::mem::replace(&mut self.chain_bytes, 0);
        let slot = u64::from(self.comp_index & (self.ring_size - 1));
        let addr = self.comp_base + slot * r::COMP_SIZE as u64;
        let e = dpu_hal::dma::Completion { cookie, status, bytes }.entry(self.phase);
        self.comp_index = self.comp_index.wrapping_add(1);
        if self.comp_index & (self.ring_size - 1) == 0 {
            self.phase = !self.phase;
        }
        Some((addr, e, self.notify, status))
    }

    /// Whether the chain being executed already failed (its remaining
    /// descriptors are skipped).
    pub fn chain_failed(&self) -> bool {
        self.chain_status != st::ST_OK
    }
}
