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

/// One descriptor: `dpu_hal`'s typed view (the driver writes it with
/// `Desc::words`, the engine reads it with `Desc::from_bytes`: one
/// definition of the layout).
pub use dpu_hal::dma::{Completion, Desc};

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
    /// Bytes run through CRC32C (`OP_CRC32C`).
    pub bytes_crc: u64,
}

/// CRC32C table (reflected polynomial 0x82F63B78).
const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC32C (Castagnoli; RFC 3720 §12.1) of `data`, continuing `prev`, a
/// finished CRC of the bytes before (0 for none): the CRC of the bytes
/// before followed by `data`.
pub fn crc32c(prev: u32, data: &[u8]) -> u32 {
    let mut c = !prev;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
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

#[cfg(test)]
mod tests {
    use super::crc32c;

    /// CRC-32C check value (RFC 3720 §B.4 polynomial; the catalogue's
    /// check of "123456789" is 0xE3069283) and the iSCSI test vector of
    /// 32 zero bytes (RFC 3720 §B.4: aa 36 91 8a, little-endian).
    #[test]
    fn crc32c_known_answers() {
        assert_eq!(crc32c(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(0, &[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(0, &[0xffu8; 32]), 0x62A8_AB43);
        // The crc crate's CRC-32/ISCSI agrees on arbitrary data.
        let data: Vec<u8> = (0..4099u32).map(|i| (i * 131 + 7) as u8).collect();
        let reference = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&data);
        assert_eq!(crc32c(0, &data), reference);
    }

    /// A chain continues the CRC: the CRC of the concatenation.
    #[test]
    fn crc32c_chains() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        let (a, b) = data.split_at(3_333);
        assert_eq!(crc32c(crc32c(0, a), b), crc32c(0, &data));
    }
}
