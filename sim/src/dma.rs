//! DMA engines (layout: `dpu_hal::regs::dma`).
//!
//! Each channel has a descriptor ring and a completion ring in DPU memory.
//! A write to TAIL hands new descriptors to the channel's engine, which
//! runs them in order: the engine's copy rate, the PCIe link (shared by all
//! engines, per direction) and the host read / posted-write latencies set
//! the completion time. Data moves at completion time. A chain of
//! descriptors ends at one with `FLAG_END`, which writes one completion
//! (first error wins) and may send an MSI-X after the chain's host writes.

use dpu_hal::regs::dma as r;

/// One decoded descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub host: u64,
    pub local: u64,
    pub len: u32,
    pub function: u16,
    pub op: u8,
    pub flags: u8,
    pub msix: u16,
    pub cookie: u32,
}

impl Desc {
    pub fn parse(b: &[u8; 32]) -> Desc {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
        Desc {
            host: u64_at(r::DESC_HOST),
            local: u64_at(r::DESC_LOCAL),
            len: u32_at(r::DESC_LEN),
            function: u16_at(r::DESC_FUNCTION),
            op: b[r::DESC_OP],
            flags: b[r::DESC_FLAGS],
            msix: u16_at(r::DESC_MSIX),
            cookie: u32_at(r::DESC_COOKIE),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Channel {
    pub ring_base: u64,
    pub ring_size: u32,
    pub notify: u32,
    pub comp_base: u64,
    pub status: u32,
    /// Descriptors handed over by the firmware / taken by the engine.
    pub tail: u32,
    pub head: u32,
    /// Next completion slot and its phase.
    pub comp_index: u32,
    pub phase: bool,
    /// Running status of the current chain.
    pub chain_status: u32,
    pub chain_bytes: u32,
}

pub const STATUS_RUNNING: u32 = 1;
pub const STATUS_BAD_CONFIG: u32 = 2;

/// A descriptor on its way.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    pub start: u64,
    pub done: u64,
    pub channel: usize,
    pub desc: Desc,
}

/// DMA statistics.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct DmaStats {
    pub descriptors: u64,
    pub bytes_h2d: u64,
    pub bytes_d2h: u64,
    pub bytes_local: u64,
    pub completions: u64,
    pub errors: u64,
    /// Transfers failed by the `dma-error` fault.
    pub host_errors: u64,
}

pub struct DmaEngines {
    pub channels: Vec<Channel>,
    pub per_engine: usize,
    pub engine_free: Vec<u64>,
    pub inflight: Vec<std::collections::VecDeque<InFlight>>,
    pub bytes_per_cycle: u64,
    pub desc_cycles: u64,
    pub stats: DmaStats,
    /// Fault injection: (function, from, until): descriptors of that
    /// function started in [from, until) do not complete before `until`
    /// (a hung transfer).
    pub stall: Option<(u16, u64, u64)>,
    /// Fault injection: host-side errors (`ST_HOST_ERROR`) for the
    /// descriptors of these functions that execute while the flag holds.
    pub host_errors: std::collections::BTreeSet<u16>,
}

impl DmaEngines {
    pub fn new(engines: usize, per_engine: usize, bytes_per_cycle: u64, desc_cycles: u64) -> DmaEngines {
        DmaEngines {
            channels: vec![Channel::default(); engines * per_engine],
            per_engine,
            engine_free: vec![0; engines],
            inflight: vec![Default::default(); engines],
            bytes_per_cycle,
            desc_cycles,
            stats: DmaStats::default(),
            stall: None,
            host_errors: Default::default(),
        }
    }

    /// Engine cycles for a descriptor of `len` bytes.
    pub fn engine_cycles(&self, len: u32) -> u64 {
        self.desc_cycles + u64::from(len).div_ceil(self.bytes_per_cycle)
    }

    /// Register read of channel registers.
    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        let ch = (off / r::CHANNEL) as usize;
        let reg = off % r::CHANNEL;
        let c = self.channels.get(ch)?;
        let v = match (reg, size) {
            (r::RING_BASE, 8) => c.ring_base,
            (r::RING_SIZE, 4) => u64::from(c.ring_size),
            (r::NOTIFY, 4) => u64::from(c.notify),
            (r::COMP_BASE, 8) => c.comp_base,
            (r::STATUS, 4) => u64::from(c.status),
            (r::TAIL, 4) => u64::from(c.tail),
            (r::HEAD, 4) => u64::from(c.head),
            (r::CONTROL, 4) => u64::from(c.status == STATUS_RUNNING),
            _ => return None,
        };
        Some(v)
    }

    /// Register write; returns Some(channel) when TAIL moved (work to start).
    pub fn write(&mut self, off: u64, size: u8, v: u64) -> Result<Option<usize>, ()> {
        let ch = (off / r::CHANNEL) as usize;
        let reg = off % r::CHANNEL;
        let c = self.channels.get_mut(ch).ok_or(())?;
        match (reg, size) {
            (r::RING_BASE, 8) => c.ring_base = v,
            (r::RING_SIZE, 4) => c.ring_size = v as u32,
            (r::NOTIFY, 4) => c.notify = v as u32,
            (r::COMP_BASE, 8) => c.comp_base = v,
            (r::CONTROL, 4) => {
                if v & 1 == 0 {
                    c.status = 0;
                } else if c.ring_size.is_power_of_two()
                    && (2..=4096).contains(&c.ring_size)
                    && c.ring_base % 32 == 0
                    && c.comp_base % 16 == 0
                {
                    c.status = STATUS_RUNNING;
                } else {
                    c.status = STATUS_BAD_CONFIG;
                }
                c.head = 0;
                c.tail = 0;
                c.comp_index = 0;
                c.phase = true;
                c.chain_status = r::ST_OK;
                c.chain_bytes = 0;
            }
            (r::TAIL, 4) => {
                if c.status != STATUS_RUNNING {
                    return Ok(None);
                }
                c.tail = v as u32;
                return Ok(Some(ch));
            }
            _ => return Err(()),
        }
        Ok(None)
    }
}
