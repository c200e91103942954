//! defmt trace port (`dpu_hal::regs::trace`): one byte stream per writing
//! hart. Frames are rzCOBS-encoded and end with a zero byte; each complete
//! frame is decoded against the ELF's defmt table.

use crate::console::{Console, Source};
use crate::defmt_log::DefmtTable;
use dpu_hal::regs::trace::DATA;

pub struct TracePort {
    streams: Vec<Vec<u8>>,
    table: Option<DefmtTable>,
    /// Frames that failed to decode.
    pub bad_frames: u64,
}

impl TracePort {
    pub fn new(harts: usize, table: Option<DefmtTable>) -> TracePort {
        TracePort { streams: vec![Vec::new(); harts], table, bad_frames: 0 }
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
                    console.emit(now, hart, Source::Defmt, Some("WARN".into()), "defmt output, but the ELF has no defmt table: it cannot be decoded".into());
                }
                self.bad_frames += 1;
            }
        }
        true
    }
}
