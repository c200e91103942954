//! Erasure-coding engine (layout: `dpu_hal::regs::ec`): queues feeding
//! one Reed-Solomon datapath ([`super::gf`]). Timing, memory accesses and
//! completions: [`super::ec_exec`].

use super::queue::Queue;
use dpu_hal::regs::{ec as r, queue as q};
use std::collections::VecDeque;

/// One descriptor: `dpu_hal`'s typed view (one definition of the layout).
pub use dpu_hal::ec::Desc;

#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub start: u64,
    pub done: u64,
    pub queue: usize,
    pub desc: Desc,
}

/// EC statistics (`--stats-json` `ec`).
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct EcStats {
    pub descriptors: u64,
    pub encoded_bytes: u64,
    pub rebuilt_bytes: u64,
    pub completions: u64,
    pub errors: u64,
    /// Descriptors that waited for another queue's work.
    pub contended: u64,
    pub wait_cycles: u64,
    /// Datapath cycles of all descriptors (busy fraction = busy_cycles /
    /// cycles).
    pub busy_cycles: u64,
}

pub struct EcEngine {
    /// Its component id (events of its datapath).
    pub id: crate::event::ComponentId,
    pub queues: Vec<Queue>,
    pub max_k: u8,
    pub max_m: u8,
    pub bytes_per_cycle: u64,
    pub descriptor_cycles: u64,
    pub invert_cycles_per_row: u64,
    pub free_at: u64,
    pub inflight: VecDeque<Job>,
    /// Queue of the work last put on the datapath.
    pub last_queue: usize,
    pub stats: EcStats,
}

impl EcEngine {
    pub fn new(id: crate::event::ComponentId, queues: usize, max_k: u8, max_m: u8, bytes_per_cycle: u64, descriptor_cycles: u64, invert_cycles_per_row: u64) -> EcEngine {
        EcEngine {
            id,
            queues: vec![Queue::default(); queues],
            max_k,
            max_m,
            bytes_per_cycle,
            descriptor_cycles,
            invert_cycles_per_row,
            free_at: 0,
            inflight: VecDeque::new(),
            last_queue: 0,
            stats: EcStats::default(),
        }
    }

    /// Datapath cycles: stream k inputs in and the outputs out; a
    /// reconstruction inverts its matrix first.
    pub fn engine_cycles(&self, d: &Desc) -> u64 {
        let k = u64::from(d.k.min(self.max_k));
        let bytes = (k + u64::from(d.outputs().min(64))) * u64::from(d.len);
        let invert = if d.op == r::OP_RECONSTRUCT { self.invert_cycles_per_row * k } else { 0 };
        self.descriptor_cycles + invert + bytes.div_ceil(self.bytes_per_cycle)
    }

    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        if off >= r::QUEUES {
            let qi = ((off - r::QUEUES) / q::SIZE) as usize;
            return self.queues.get(qi)?.read((off - r::QUEUES) % q::SIZE, size);
        }
        Some(match (off, size) {
            (r::INFO, 4) => (self.queues.len() as u64) << 16 | u64::from(self.max_m) << 8 | u64::from(self.max_k),
            (r::DESCRIPTORS, 8) => self.stats.descriptors,
            _ => return None,
        })
    }

    /// Register write; `Ok(Some(queue))` when a TAIL moved.
    pub fn write(&mut self, off: u64, size: u8, v: u64) -> Result<Option<usize>, ()> {
        if off < r::QUEUES {
            return Err(());
        }
        let qi = ((off - r::QUEUES) / q::SIZE) as usize;
        let queue = self.queues.get_mut(qi).ok_or(())?;
        Ok(queue.write((off - r::QUEUES) % q::SIZE, size, v)?.then_some(qi))
    }
}
