//! defmt trace port (`dpu_hal::regs::trace`): one byte stream per writing
//! hart. Frames are rzCOBS-encoded and end with a zero byte; each complete
//! frame is decoded against the ELF's defmt table.
//!
//! Booting from flash, the image that runs is whichever slot the
//! bootloader chose: the port is given every candidate ELF
//! ([`TracePort::with_candidates`]) and, at the first frame, keeps the
//! one whose code is what memory holds.

use crate::console::{Console, Source};
use crate::defmt_log::DefmtTable;
use dpu_hal::regs::trace::DATA;

pub struct TracePort {
    streams: Vec<Vec<u8>>,
    table: Option<DefmtTable>,
    /// Frames that failed to decode.
    pub bad_frames: u64,
    /// ELFs the running image may be: (defmt table, executable segments
    /// as (address, bytes)); resolved at the first frame.
    candidates: Vec<(Option<DefmtTable>, Vec<(u64, Vec<u8>)>)>,
    /// The candidate that matched memory (index), once resolved.
    pub resolved: Option<usize>,
}

impl TracePort {
    pub fn new(harts: usize, table: Option<DefmtTable>) -> TracePort {
        TracePort { streams: vec![Vec::new(); harts], table, bad_frames: 0, candidates: Vec::new(), resolved: None }
    }

    /// A port that decodes with the table of whichever candidate's code
    /// is in memory when the first frame arrives.
    pub fn with_candidates(harts: usize, candidates: Vec<(Option<DefmtTable>, Vec<(u64, Vec<u8>)>)>) -> TracePort {
        TracePort { streams: vec![Vec::new(); harts], table: None, bad_frames: 0, candidates, resolved: None }
    }

    /// The harts restart (warm restart): partial frames are dropped.
    pub fn restart(&mut self) {
        for s in self.streams.iter_mut() {
            s.clear();
        }
    }

    /// Whether [`TracePort::resolve`] still has to run.
    pub fn unresolved(&self) -> bool {
        self.resolved.is_none() && !self.candidates.is_empty()
    }

    /// Picks the candidate whose executable segments memory holds.
    pub fn resolve(&mut self, mem: &mut crate::mem::Memory) {
        let found = self.candidates.iter().position(|(_, segs)| {
            segs.iter().all(|(addr, bytes)| {
                let mut buf = vec![0u8; bytes.len()];
                mem.read_bytes(*addr, &mut buf).is_some() && &buf == bytes
            })
        });
        // Resolved either way: without a match, frames are reported as
        // undecodable (once) rather than decoded with a wrong table.
        self.resolved = Some(found.unwrap_or(usize::MAX));
        if let Some(i) = found {
            self.table = self.candidates[i].0.clone();
        }
        self.candidates.clear();
    }

    pub fn write(&mut self, hart: u32, now: u64, off: u64, size: u8, v: u64, console: &mut Console) -> bool {
        if off != DATA || size != 1 {
            return false;
        }
        let b = v as u8;
        let s = &mut self.streams[hart as usize];
        s.push(b);
        if b != 0 && s.len() < 64 * 1024 {
            return true;
        }
        let frame = std::mem::take(s);
        if frame == [0] {
            // The encoder's leading frame separator (an empty frame).
            return true;
        }
        match &self.table {
            Some(t) => match t.decode_frame(&frame) {
                Ok((level, text)) => console.emit(now, hart, Source::Defmt, level, text),
                Err(e) => {
                    self.bad_frames += 1;
                    console.emit(now, hart, Source::Defmt, Some("ERROR".into()), format!("<undecodable defmt frame: {e}: {frame:02x?}>"));
                }
            },
            None => {
                if self.bad_frames == 0 {
                    let why = if self.resolved == Some(usize::MAX) {
                        "defmt output from an image that none of the --elf files is (pass the ELF of the image in flash): it cannot be decoded"
                    } else {
                        "defmt output, but the ELF has no defmt table: it cannot be decoded"
                    };
                    console.emit(now, hart, Source::Defmt, Some("WARN".into()), why.into());
                }
                self.bad_frames += 1;
            }
        }
        true
    }
}
